//! The gate test cases every example gate ships (`examples/*/gate-tests/`), run through the
//! library and the real `evl gate test`; the harness's own failures (a wrong expectation names
//! its first difference, an unreadable case is refused); and, with exact verdicts, blocker
//! codes and trace lines, the engine branches the cases are there to reach: an unreadable
//! artifact, a lapsed authority snapshot, an out-of-scope share exactly at the authority's
//! limit, stale control evidence, and evidence captured after the as-of time.

mod common;

use std::path::{Path, PathBuf};

use common::{evl_bin, run};
use evl::deadlines;
use evl::disposition::{Blocker, Disposition, TraceLine, Verdict};
use evl::gate_test;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn cases(example: &str) -> PathBuf {
    Path::new(ROOT)
        .join("examples")
        .join(example)
        .join("gate-tests")
}

fn case(example: &str, file: &str) -> Disposition {
    let r = gate_test::run_case(&cases(example).join(file)).unwrap();
    assert_eq!(r.failure, None, "{file} fails its own expectations");
    r.disposition
}

fn blocker<'d>(d: &'d Disposition, key: &str) -> &'d Blocker {
    d.blockers
        .iter()
        .find(|b| format!("{} {}", b.code, b.subject) == key)
        .unwrap_or_else(|| panic!("no blocker {key}: {:#?}", d.blocker_keys()))
}

fn lines<'d>(d: &'d Disposition, rule: &str, outcome: &str) -> Vec<&'d TraceLine> {
    d.trace
        .iter()
        .filter(|t| t.rule == rule && t.outcome == outcome)
        .collect()
}

#[test]
fn every_example_gate_passes_its_cases_in_the_library_and_the_binary() {
    for (example, count) in [
        ("mtls-cutover", 18),
        ("launch-gate", 3),
        ("policy-rollout-gate", 7),
    ] {
        let dir = cases(example);
        let results = gate_test::run_dir(&dir).unwrap();
        assert_eq!(results.len(), count, "{example}");
        for r in &results {
            assert_eq!(r.failure, None, "{}", r.path.display());
        }
        let out = run(evl_bin().arg("gate").arg("test").arg(&dir)).ok();
        let text = out.stdout.clone();
        assert_eq!(
            text.lines().filter(|l| l.starts_with("PASS ")).count(),
            count,
            "{text}"
        );
        assert!(
            text.ends_with(&format!("PASS: {count}/{count}\n")),
            "{text}"
        );
    }
}

/// A copy of the mtls example (gate, evidence, cases) in a temporary directory.
fn mtls_copy() -> (tempfile::TempDir, PathBuf) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    let t = tempfile::tempdir().unwrap();
    let ex = t.path().join("mtls-cutover");
    copy(&Path::new(ROOT).join("examples/mtls-cutover"), &ex);
    let dir = ex.join("gate-tests");
    (t, dir)
}

fn edit(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

#[test]
fn a_failing_case_names_its_first_difference_and_exits_1() {
    let (_t, dir) = mtls_copy();
    let v4 = dir.join("v4-narrows-to-validated-stateless.toml");
    edit(&v4, "verdict = \"narrow\"", "verdict = \"proceed\"");
    let out = run(evl_bin().arg("gate").arg("test").arg(&dir));
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(out.stderr, "");
    let text = &out.stdout;
    assert!(
        text.contains(
            "FAIL v4-narrows-to-validated-stateless.toml: v4: NARROW to the six validated stateless workloads\n     verdict: expected PROCEED, derived NARROW\n"
        ),
        "{text}"
    );
    assert!(text.ends_with("PASS: 17/18\nFAIL: 1/18\n"), "{text}");

    // The verdict right, a blocker missing from the expectation: named as derived, unexpected.
    edit(&v4, "verdict = \"proceed\"", "verdict = \"narrow\"");
    edit(
        &v4,
        "  \"rollback-drill-stale path legacy-grpc-settlement-adapter\",\n",
        "",
    );
    let r = gate_test::run_case(&v4).unwrap();
    assert_eq!(
        r.failure.as_deref(),
        Some(
            "blockers: `rollback-drill-stale path legacy-grpc-settlement-adapter` is derived but not expected"
        )
    );
    // An expected trace line the engine does not write.
    let v2 = dir.join("v2-unsealed-canary-holds.toml");
    edit(&v2, "\"not sealed\",", "\"not sealed by anyone\",");
    let r = gate_test::run_case(&v2).unwrap();
    assert_eq!(
        r.failure.as_deref(),
        Some("trace: no line contains `not sealed by anyone`")
    );
    // The scope: a workload expected in scope that the derivation leaves out.
    let v5 = dir.join("v5-data-platform-signs.toml");
    edit(
        &v5,
        "out_of_scope = [\"data-platform/data-platform-etl\", ",
        "out_of_scope = [",
    );
    let r = gate_test::run_case(&v5).unwrap();
    assert_eq!(
        r.failure.as_deref(),
        Some("out_of_scope: `data-platform/data-platform-etl` is derived but not expected")
    );
}

#[test]
fn a_case_that_cannot_be_read_is_refused_naming_the_file_and_field() {
    let (_t, dir) = mtls_copy();
    let v4 = dir.join("v4-narrows-to-validated-stateless.toml");
    edit(&v4, "as_of = ", "as_off = ");
    let out = run(evl_bin().arg("gate").arg("test").arg(&dir));
    out.refused(2, &["v4-narrows-to-validated-stateless.toml", "as_off"]);
    edit(&v4, "as_off = ", "as_of = ");
    edit(
        &dir.join("common/v2.toml"),
        "drill-envoy-policy-reversal-2026-04-15.toml",
        "drill-envoy-policy-reversal-2026-04-15.tom",
    );
    let e = gate_test::run_case(&v4).unwrap_err().to_string();
    assert!(
        e.contains("drill-envoy-policy-reversal-2026-04-15.tom: ") && e.contains("No such file"),
        "{e}"
    );
    let e = gate_test::run_case(&dir.join("fixtures/authority-40pct.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("authority-40pct.toml: ") && e.contains("format"),
        "{e}"
    );
}

/// Issue 18 item 10: an artifact whose bytes do not parse.
#[test]
fn an_unreadable_drill_is_a_global_evidence_unreadable_blocker() {
    let d = case("mtls-cutover", "unreadable-drill-holds.toml");
    assert_eq!(d.verdict, Verdict::Hold);
    assert_eq!(d.would_be, None);
    assert_eq!(
        d.blocker_keys(),
        [
            "acknowledgment-missing namespace data-platform",
            "compatibility-unresolved workload orders/orders-journal-writer",
            "compatibility-unresolved workload payments/payments-ledger-sync",
            "evidence-unreadable rule rollback drills",
            "exception-expires-before-checkpoint exception mesh-cert-exc-117",
            "exception-expires-before-checkpoint exception mesh-cert-exc-122",
            "rollback-drill-stale path legacy-grpc-settlement-adapter",
        ]
    );
    let b = blocker(&d, "evidence-unreadable rule rollback drills");
    assert!(!b.scoped, "evidence-unreadable is global");
    assert!(b.affects.is_empty());
    assert_eq!(b.evidence.len(), 1);
    assert_eq!(
        b.reason,
        "drill-unreadable.toml: TOML parse error at line 5, column 11   | 5 | outcome = \"mostly-fine\"   |           ^^^^^^^^^^^^^ unknown variant `mostly-fine`, expected `pass` or `fail`"
    );
    let u = b.unblock.as_ref().unwrap();
    assert_eq!(u.action, "replace-evidence");
    assert_eq!(u.subject, Some(b.evidence[0]));
    assert_eq!(u.kind.as_deref(), Some("rollback-drill"));
    let t: Vec<&str> = lines(&d, "rollback drills", "blocker")
        .iter()
        .map(|t| t.detail.as_str())
        .collect();
    assert_eq!(
        t[0],
        format!("evidence-unreadable on rule rollback drills: {}", b.reason)
    );
    // The readable drills are still judged; the broken one is never evidence of a pass.
    assert_eq!(lines(&d, "rollback drills", "pass").len(), 2);
}

const LAPSED: &str = "authority snapshot Mesh-Gate-Authority-Snapshot-2026-04-12-lapsing lapsed at 2026-04-19T00:00:00Z; packaging a narrow needs a snapshot in force through the proposed checkpoint 2026-04-30T00:00:00Z, or the decision goes to Omar Bennett, Chair of the Platform Transport Security Gate";

/// Issue 18 item 10: a delegated-authority snapshot that lapsed before the as-of time.
#[test]
fn a_lapsed_authority_snapshot_escalates_naming_what_is_needed() {
    let d = case("mtls-cutover", "lapsed-authority-escalates.toml");
    assert_eq!(d.verdict, Verdict::Escalate);
    assert_eq!(d.would_be, Some(Verdict::Narrow));
    assert_eq!(d.escalation, [LAPSED]);
    assert_eq!(lines(&d, "escalation", "escalate")[0].detail, LAPSED);
    assert!(lines(&d, "authority", "pass").is_empty());
    // The scope of the would-be narrow is still shown exactly.
    assert_eq!(d.scope.out_of_scope_share_pct, "40.00");
    assert_eq!(d.scope.out_of_scope_namespaces, ["data-platform", "orders"]);
}

/// Issue 18 item 10: an out-of-scope share exactly at the authority's limit is within it; a
/// hundredth of a percent less is not.
#[test]
fn an_out_of_scope_share_exactly_at_the_limit_narrows_and_just_over_escalates() {
    let d = case(
        "mtls-cutover",
        "share-exactly-at-the-authority-limit-narrows.toml",
    );
    assert_eq!(d.verdict, Verdict::Narrow);
    assert!(d.escalation.is_empty());
    assert_eq!(d.scope.out_of_scope_share_pct, "40.00");
    let pass = lines(&d, "authority", "pass");
    assert_eq!(pass.len(), 1);
    assert!(
        pass[0]
            .detail
            .starts_with("authority snapshot Mesh-Gate-Authority-Snapshot-40pct (")
            && pass[0].detail.ends_with(
                ") held by Hana Okafor, Director of Service Mesh Readiness permits narrow leaving 40.00 % out of scope (at most 40.00 %)"
            ),
        "{}",
        pass[0].detail
    );
    let d = case(
        "mtls-cutover",
        "share-just-over-the-authority-limit-escalates.toml",
    );
    assert_eq!(d.verdict, Verdict::Escalate);
    assert_eq!(d.would_be, Some(Verdict::Narrow));
    assert_eq!(
        d.escalation,
        [
            "narrowing leaves 40.00 % of the packet's workloads out of scope, over the 39.99 % that authority snapshot Mesh-Gate-Authority-Snapshot-39.99pct allows; this narrow needs a snapshot allowing at least 40.00 %, or the decision goes to Omar Bennett, Chair of the Platform Transport Security Gate"
        ]
    );
}

/// Issue 18 item 10: launch controls validated more than 30 days before the as-of time.
#[test]
fn launch_controls_older_than_their_window_are_control_evidence_stale() {
    let d = case(
        "launch-gate",
        "launch-controls-older-than-30-days-are-stale.toml",
    );
    assert_eq!(d.verdict, Verdict::Hold);
    assert_eq!(
        d.blocker_keys(),
        [
            "control-evidence-stale rule admin-token-revocation",
            "control-evidence-stale rule public-ingress-gateway",
            "control-unevidenced rule backup-restore-drills",
            "control-unevidenced rule secret-manager",
        ]
    );
    let b = blocker(&d, "control-evidence-stale rule public-ingress-gateway");
    assert!(!b.scoped);
    assert_eq!(b.evidence.len(), 1);
    assert_eq!(
        b.reason,
        format!(
            "control-evidence evidence for rule public-ingress-gateway is not current: control-public-ingress-gateway.toml ({}) observed 2026-05-01T10:00:00Z, more than 30 days before the as-of time: its 30-day freshness window closed at 2026-05-31T10:00:00Z",
            b.evidence[0].short()
        )
    );
    let u = b.unblock.as_ref().unwrap();
    assert_eq!(u.action, "refresh-evidence");
    assert_eq!(u.kind.as_deref(), Some("control-evidence"));
    assert_eq!(
        u.labels.get("control").map(String::as_str),
        Some("public-ingress-gateway")
    );
    // Fresh through the checkpoint (2026-05-31T18:00Z): observed in its last 30 days.
    assert_eq!(
        u.observed_after,
        Some("2026-05-01T18:00:00Z".parse().unwrap())
    );
    // The rule's trace names the blocker once, as the blocker line.
    let stale = lines(&d, "public-ingress-gateway", "blocker");
    assert_eq!(
        stale.iter().map(|t| t.detail.as_str()).collect::<Vec<_>>(),
        [format!(
            "control-evidence-stale on rule public-ingress-gateway: {}",
            b.reason
        )]
    );
    // Twenty days earlier every validated record was inside its window.
    let d = case(
        "launch-gate",
        "launch-holds-on-two-unevidenced-controls.toml",
    );
    assert!(
        !d.blocker_keys()
            .iter()
            .any(|k| k.starts_with("control-evidence-stale"))
    );
}

/// Issue 13 item 3: evidence captured after the as-of time does not exist for the evaluation,
/// and appears, by itself, at its capture time.
#[test]
fn evidence_captured_after_as_of_does_not_count_until_it_is_captured() {
    let path =
        cases("mtls-cutover").join("refreshed-drill-captured-after-as-of-does-not-count.toml");
    let r = gate_test::run_case(&path).unwrap();
    assert_eq!(r.failure, None);
    let d = &r.disposition;
    assert_eq!(d.verdict, Verdict::Narrow);
    let later = lines(d, "as of", "ignored");
    assert_eq!(later.len(), 1);
    assert!(
        later[0]
            .detail
            .starts_with("drill-legacy-grpc-settlement-adapter-2026-04-21.toml (")
            && later[0].detail.ends_with(
                ") captured after as-of: captured 2026-04-21T10:00:00Z, signed 2026-04-21T10:00:00Z, performed 2026-04-21T09:00:00Z"
            ),
        "{}",
        later[0].detail
    );
    assert!(
        blocker(
            d,
            "rollback-drill-stale path legacy-grpc-settlement-adapter"
        )
        .reason
        .contains("drill-legacy-grpc-settlement-adapter-2026-04-05.toml")
    );
    // Deadlines know the drill appears at its capture time and clears the stale blocker then.
    let (input, as_of) = gate_test::load_case(&path).unwrap();
    let ds = deadlines::deadlines(&input, as_of).unwrap();
    assert_eq!(ds[0].at, "2026-04-21T10:00:00Z".parse().unwrap());
    assert_eq!(
        ds[0].blockers_removed,
        ["rollback-drill-stale path legacy-grpc-settlement-adapter"]
    );
    assert!(ds[0].blockers_added.is_empty());
    let before = evl::evaluate::evaluate(&input, "2026-04-21T09:59:59Z".parse().unwrap()).unwrap();
    assert!(
        before
            .blocker_keys()
            .contains(&"rollback-drill-stale path legacy-grpc-settlement-adapter".to_string())
    );
}

/// The v4 case's header: packet v4 as of 2026-04-20, all its workloads from the inventory.
const V4_HEADER: &str = r#"format = "evl-gate-test/v1"
gate = "../gate.toml"
include = ["common/v2.toml", "common/v3.toml", "common/v4.toml"]
drop = ["canary-open"]
as_of = 2026-04-20T00:00:00Z
checkpoint_at = 2026-04-30T00:00:00Z
workloads_from = "inventory"
"#;

/// Writes case `name` (the v4 header, then `body`) into `dir` and runs it; the case carries
/// only `[expect] verdict`, the test checks the rest.
fn v4_with(dir: &Path, name: &str, verdict: &str, body: &str) -> Disposition {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("{V4_HEADER}{body}\n[expect]\nverdict = \"{verdict}\"\n"),
    )
    .unwrap();
    let r = gate_test::run_case(&path).unwrap();
    assert_eq!(r.failure, None, "{name}");
    r.disposition
}

const LEDGER_SYNC: &str = "compatibility-unresolved workload payments/payments-ledger-sync";

/// Issue 13 item 1, the signer role: when the gate requires the inventory to be signed by a
/// security-signer, an inventory update signed by an owner without that role does not
/// supersede the one a security-signer signed, and the trace says why; the same update signed
/// by the security-signer does.
#[test]
fn a_supersession_by_a_signer_without_the_gates_role_is_ignored() {
    let (_t, dir) = mtls_copy();
    edit(
        &dir.join("../gate.toml"),
        "[inventory]\nselect = { kind = \"workload-inventory\" }\nsealed = true\n",
        "[inventory]\nselect = { kind = \"workload-inventory\" }\nsealed = true\nsigner_role = \"security-signer\"\n",
    );
    let update = |signer: &str| {
        format!(
            r#"
[signers]
hana-okafor = ["owner", "security-signer"]
olga-owner = ["owner"]

[[evidence]]
name = "inventory-update"
file = "fixtures/inventory-edited-2026-04-19.csv"
kind = "workload-inventory"
sealed = true
captured_at = 2026-04-19T18:00:00Z
supersedes = "inventory"
signer = "{signer}"
"#
        )
    };
    let d = v4_with(&dir, "by-owner.toml", "narrow", &update("olga-owner"));
    assert!(d.blocker_keys().contains(&LEDGER_SYNC.to_string()));
    let ignored: Vec<&str> = lines(&d, "inventory", "ignored")
        .iter()
        .map(|t| t.detail.as_str())
        .collect();
    assert_eq!(ignored.len(), 2, "{ignored:#?}");
    assert!(
        ignored[0].starts_with("inventory-edited-2026-04-19.csv (")
            && ignored[0].ends_with(
                " ignored: its signer 'olga-owner' did not hold the security-signer role"
            ),
        "{}",
        ignored[0]
    );
    assert!(
        ignored[1].starts_with("supersession of mesh-enforcement-targets-2026-04-18.csv (")
            && ignored[1]
                .ends_with(": its signer 'olga-owner' did not hold the security-signer role"),
        "{}",
        ignored[1]
    );
    let info = lines(&d, "inventory", "info");
    assert!(
        info[0]
            .detail
            .starts_with("inventory mesh-enforcement-targets-2026-04-18.csv ("),
        "{}",
        info[0].detail
    );
    // Signed by the security-signer, the same update supersedes and validates ledger-sync.
    let d = v4_with(&dir, "by-signer.toml", "narrow", &update("hana-okafor"));
    assert!(!d.blocker_keys().contains(&LEDGER_SYNC.to_string()));
    assert!(
        lines(&d, "inventory", "info")[0]
            .detail
            .starts_with("inventory inventory-edited-2026-04-19.csv (")
    );
}

/// Issue 13 item 2: `[exceptions]` and `[authority]` require `sealed` as `[[evidence]]` can.
/// A newer, unsealed register extending every exception past the checkpoint is not read (the
/// sealed one is, and its blockers stand); sealed, it is. Likewise an unsealed authority
/// snapshot that forbids narrowing is not read, and v4 stays NARROW; sealed, it escalates.
#[test]
fn exceptions_and_authority_read_only_what_meets_sealed() {
    let (_t, dir) = mtls_copy();
    let register = r#"format = "evl-exception-register/v1"

[[exception]]
id = "mesh-cert-exc-109"
workloads = ["identity/identity-directory"]
expires_at = 2026-06-30T00:00:00Z
reason = "r"

[[exception]]
id = "mesh-cert-exc-117"
workloads = ["payments/payments-ledger-sync", "orders/orders-journal-writer"]
expires_at = 2026-06-30T00:00:00Z
reason = "renewed"

[[exception]]
id = "mesh-cert-exc-122"
workloads = ["data-platform/data-platform-etl"]
expires_at = 2026-06-30T00:00:00Z
reason = "renewed"
"#;
    std::fs::write(dir.join("fixtures/register-renewed.toml"), register).unwrap();
    let renewed = |sealed: bool| {
        format!(
            r#"
[[evidence]]
name = "register-renewed"
file = "fixtures/register-renewed.toml"
kind = "certificate-exception-register"
sealed = {sealed}
captured_at = 2026-04-19T12:00:00Z
supersedes = "register"
signer = "hana-okafor"
"#
        )
    };
    let expiring = |d: &Disposition| {
        d.blocker_keys()
            .into_iter()
            .filter(|k| k.starts_with("exception-expires-before-checkpoint"))
            .count()
    };
    let d = v4_with(&dir, "register-unsealed.toml", "narrow", &renewed(false));
    assert_eq!(expiring(&d), 2, "{:#?}", d.blocker_keys());
    let ignored = lines(&d, "exceptions", "ignored");
    assert!(
        ignored
            .iter()
            .any(|t| t.detail.starts_with("register-renewed.toml (")
                && t.detail.ends_with(" ignored: not sealed")),
        "{ignored:#?}"
    );
    let d = v4_with(&dir, "register-sealed.toml", "narrow", &renewed(true));
    assert_eq!(expiring(&d), 0, "{:#?}", d.blocker_keys());

    let authority = |sealed: bool| {
        format!(
            r#"
[[evidence]]
name = "authority-no-narrow"
file = "../Mesh-Gate-Authority-Snapshot-2026-04-12-no-narrow.toml"
kind = "authority-snapshot"
sealed = {sealed}
captured_at = 2026-04-12T00:00:01Z
signer = "hana-okafor"
"#
        )
    };
    let d = v4_with(&dir, "authority-unsealed.toml", "narrow", &authority(false));
    assert!(d.escalation.is_empty(), "{:#?}", d.escalation);
    assert!(
        lines(&d, "authority", "ignored")
            .iter()
            .any(|t| t.detail.ends_with(" ignored: not sealed"))
    );
    let d = v4_with(&dir, "authority-sealed.toml", "escalate", &authority(true));
    assert_eq!(d.would_be, Some(Verdict::Narrow));
}

/// Issue 13 item 3, for reviewer annotations and narrowing decisions: a reviewer's blocker
/// signed after the as-of time does not block at it, and does from its signing; a proposal
/// and the decision on it count only from when they were signed.
#[test]
fn annotations_and_narrowing_decisions_signed_after_as_of_do_not_exist_yet() {
    let (_t, dir) = mtls_copy();
    let d = v4_with(
        &dir,
        "late-reviewer-blocker.toml",
        "narrow",
        r#"
[[annotation]]
kind = "blocker"
text = "Payments cutover needs the settlement team on call."
namespaces = ["payments"]
signer = "reviewer-platform-security"
at = 2026-04-20T09:00:00Z
"#,
    );
    assert!(
        !d.blocker_keys()
            .iter()
            .any(|k| k.starts_with("reviewer-blocker")),
        "{:#?}",
        d.blocker_keys()
    );
    let later = lines(&d, "as of", "ignored");
    assert_eq!(later.len(), 1, "{later:#?}");
    assert!(
        later[0].detail.starts_with("annotation ")
            && later[0].detail.ends_with(
                " by 'reviewer-platform-security' signed after as-of: signed 2026-04-20T09:00:00Z"
            ),
        "{}",
        later[0].detail
    );
    let (input, _) = gate_test::load_case(&dir.join("late-reviewer-blocker.toml")).unwrap();
    let at = |t: &str| evl::evaluate::evaluate(&input, t.parse().unwrap()).unwrap();
    assert!(
        at("2026-04-20T09:00:00Z")
            .blocker_keys()
            .contains(&"reviewer-blocker namespace payments".to_string())
    );

    // Packet v4's proposals: "stateless" signed at 10:00, accepted at 11:00 on 2026-04-19.
    let (input, _) =
        gate_test::load_case(&cases("mtls-cutover").join("v4-narrows-to-validated-stateless.toml"))
            .unwrap();
    let at = |t: &str| evl::evaluate::evaluate(&input, t.parse().unwrap()).unwrap();
    let stateless = |d: &Disposition| {
        d.narrowing_proposals
            .iter()
            .find(|p| p.keep.contains(&"payments/payments-api".to_string()))
            .map(|p| p.status.clone())
    };
    assert_eq!(stateless(&at("2026-04-19T09:59:59Z")), None);
    assert_eq!(
        stateless(&at("2026-04-19T10:00:00Z")).as_deref(),
        Some("open")
    );
    assert_eq!(
        stateless(&at("2026-04-19T10:59:59Z")).as_deref(),
        Some("open")
    );
    assert_eq!(
        stateless(&at("2026-04-19T11:00:00Z")).as_deref(),
        Some("accepted")
    );
}

/// Issue 13 item 9: in every case every example gate ships, every blocker names the action
/// that clears it and the time it must be done by, never after the proposed checkpoint;
/// evidence actions name the kind and minimum tier, the others the role that must act.
#[test]
fn every_blocker_of_every_case_names_what_clears_it_and_by_when() {
    let mut seen = 0;
    for example in ["mtls-cutover", "launch-gate", "policy-rollout-gate"] {
        for r in gate_test::run_dir(&cases(example)).unwrap() {
            let d = &r.disposition;
            for b in &d.blockers {
                let at = format!("{}: {} {}", r.path.display(), b.code, b.subject);
                let u = b
                    .unblock
                    .as_ref()
                    .unwrap_or_else(|| panic!("{at}: no unblock"));
                assert!(!u.action.is_empty() && !u.text.is_empty(), "{at}: {u:?}");
                let by = u.by.unwrap_or_else(|| panic!("{at}: no by"));
                assert!(
                    by <= d.checkpoint_at,
                    "{at}: by {by} is after the checkpoint"
                );
                assert!(u.text.contains(&by.to_string()), "{at}: {}", u.text);
                match u.action.as_str() {
                    "acknowledge" | "close-review" => {
                        assert!(u.role.is_some(), "{at}: which role? {u:?}")
                    }
                    _ => assert!(
                        u.kind.is_some() && u.min_tier.is_some(),
                        "{at}: which evidence? {u:?}"
                    ),
                }
                seen += 1;
            }
        }
    }
    assert!(seen > 100, "only {seen} blockers checked");
}

/// Issue 13 item 3, "(or signed)": an inventory update captured before the as-of time but
/// signed into the ledger after it did not exist at the as-of time; from its signing it
/// supersedes.
#[test]
fn an_artifact_signed_after_as_of_does_not_count_though_captured_before() {
    let (_t, dir) = mtls_copy();
    let name = "update-signed-late.toml";
    let d = v4_with(
        &dir,
        name,
        "narrow",
        r#"
[[evidence]]
name = "inventory-update"
file = "fixtures/inventory-edited-2026-04-19.csv"
kind = "workload-inventory"
sealed = true
captured_at = 2026-04-19T18:00:00Z
signed_at = 2026-04-20T06:00:00Z
supersedes = "inventory"
signer = "hana-okafor"
"#,
    );
    assert!(d.blocker_keys().contains(&LEDGER_SYNC.to_string()));
    let later = lines(&d, "as of", "ignored");
    assert_eq!(later.len(), 1, "{later:#?}");
    assert!(
        later[0]
            .detail
            .starts_with("inventory-edited-2026-04-19.csv (")
            && later[0].detail.ends_with(
                ") signed after as-of: captured 2026-04-19T18:00:00Z, signed 2026-04-20T06:00:00Z"
            ),
        "{}",
        later[0].detail
    );
    let (input, _) = gate_test::load_case(&dir.join(name)).unwrap();
    let at = |t: &str| evl::evaluate::evaluate(&input, t.parse().unwrap()).unwrap();
    assert!(
        at("2026-04-20T05:59:59Z")
            .blocker_keys()
            .contains(&LEDGER_SYNC.to_string())
    );
    assert!(
        !at("2026-04-20T06:00:00Z")
            .blocker_keys()
            .contains(&LEDGER_SYNC.to_string())
    );
}

/// Issue 13 item 2, "maximum age": `[inventory]` and `[exceptions]` with `max_age_days` raise a
/// global `evidence-stale` on the rule when the artifact they read is older (HOLD), naming it
/// and asking for a fresher one observed inside the window at the checkpoint; `[authority]`
/// with `max_age_days` escalates on a stale snapshot. Without the limit, v4 narrows.
#[test]
fn single_artifact_rules_honour_max_age_days() {
    let gate_rule = [
        (
            "inventory",
            "[inventory]\nselect = { kind = \"workload-inventory\" }\nsealed = true\n",
            "mesh-enforcement-targets-2026-04-18.csv",
        ),
        (
            "exceptions",
            "[exceptions]\nselect = { kind = \"certificate-exception-register\" }\nsealed = true\n",
            "certificate-exception-register-2026-04-17.toml",
        ),
    ];
    for (rule, table, file) in gate_rule {
        let (_t, dir) = mtls_copy();
        edit(
            &dir.join("../gate.toml"),
            table,
            &format!("{table}max_age_days = 1\n"),
        );
        let d = v4_with(&dir, "stale.toml", "hold", "");
        let key = format!("evidence-stale rule {rule}");
        let b = blocker(&d, &key);
        assert!(!b.scoped, "{key} is global");
        assert!(
            b.reason.starts_with(&format!("{file} (")) && b.reason.contains("more than 1 days"),
            "{}",
            b.reason
        );
        let u = b.unblock.as_ref().unwrap();
        assert_eq!(u.action, "refresh-evidence");
        assert_eq!(u.subject, Some(b.evidence[0]));
        assert_eq!(
            u.observed_after,
            Some("2026-04-29T00:00:00Z".parse().unwrap()),
            "inside its 1-day window at the checkpoint"
        );
    }
    let (_t, dir) = mtls_copy();
    edit(
        &dir.join("../gate.toml"),
        "[authority]\nselect = { kind = \"authority-snapshot\" }\nsealed = true\n",
        "[authority]\nselect = { kind = \"authority-snapshot\" }\nsealed = true\nmax_age_days = 1\n",
    );
    let d = v4_with(&dir, "stale-authority.toml", "escalate", "");
    assert_eq!(d.would_be, Some(Verdict::Narrow));
    assert!(
        d.escalation[0].starts_with(
            "authority snapshot Mesh-Gate-Authority-Snapshot-2026-04-12 is stale: Mesh-Gate-Authority-Snapshot-2026-04-12.toml ("
        ),
        "{:#?}",
        d.escalation
    );
    // The unedited gate: no freshness limit on these tables, v4 narrows.
    let (_t, dir) = mtls_copy();
    let d = v4_with(&dir, "fresh.toml", "narrow", "");
    assert!(
        !d.blocker_keys()
            .iter()
            .any(|k| k.starts_with("evidence-stale"))
    );
}
