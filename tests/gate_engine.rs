//! The gate engine against a real ledger: the flagship mTLS cutover of seed 000 (packets v2,
//! v3, v4 and their variations), replay, deadlines, lineage, bundles, and the launch gate of
//! seed 004 expressed with the same engine.

use std::collections::BTreeMap;
use std::path::Path;

use evl::digest::EntryId;
use evl::disposition::{Disposition, Verdict};
use evl::entry::{
    Acknowledgment, Annotation, AnnotationKind, ArtifactMeta, DispositionRecord, KeyGrant,
    NarrowingProposal, PacketRevision, Payload, Scope, Tier, WorkloadRef,
};
use evl::evaluate::{self, EvalInput};
use evl::keys::{Role, SecretKey};
use evl::store::{Draft, Ledger};
use evl::timestamp::Timestamp;
use evl::{Digest, bundle, checkpoint, deadlines, lineage, replay};

const EX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mtls-cutover");
const LAUNCH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/launch-gate");
const ORIGIN: &str = "example.org/platform-transport-security-gate";

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn wl(s: &str) -> WorkloadRef {
    s.parse().unwrap()
}

struct Keys {
    admin: SecretKey,
    hana: SecretKey,
    reviewer: SecretKey,
    signers: BTreeMap<&'static str, SecretKey>,
}

fn keys() -> Keys {
    let k = |n: &str| SecretKey::demo_from_phrase(&format!("evl demo key: {n}"));
    let mut signers = BTreeMap::new();
    for ns in [
        "payments",
        "identity",
        "edge-routing",
        "data-platform",
        "orders",
    ] {
        signers.insert(ns, k(&format!("ns-{ns}-owner")));
    }
    Keys {
        admin: k("mesh-admin"),
        hana: k("hana-okafor"),
        reviewer: k("reviewer-platform-security"),
        signers,
    }
}

struct World {
    _dir: tempfile::TempDir,
    ledger: Ledger,
    k: Keys,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let k = keys();
        let grant = |name: &str, key: &SecretKey, role: Role| KeyGrant {
            name: name.into(),
            public_key: key.public(),
            roles: vec![role],
        };
        let ledger = Ledger::init(
            &dir.path().join("ledger"),
            ORIGIN,
            vec![grant("mesh-admin", &k.admin, Role::Admin)],
            &k.admin,
            t("2026-04-01T09:00:00Z"),
        )
        .unwrap();
        let w = World {
            _dir: dir,
            ledger,
            k,
        };
        let mut grants = vec![
            grant("hana-okafor", &w.k.hana, Role::Owner),
            grant("reviewer-platform-security", &w.k.reviewer, Role::Reviewer),
        ];
        for (ns, key) in &w.k.signers {
            grants.push(grant(&format!("ns-{ns}-owner"), key, Role::SecuritySigner));
        }
        for g in grants {
            w.append(
                Payload::KeyAdd(g),
                "2026-04-01T09:05:00Z",
                vec![],
                &w.k.admin,
            );
        }
        w
    }

    fn append(&self, p: Payload, at: &str, blobs: Vec<Vec<u8>>, key: &SecretKey) -> EntryId {
        self.ledger
            .append(
                Draft {
                    payload: p,
                    claimed_at: t(at),
                    blobs,
                },
                key,
            )
            .unwrap()
            .id
    }

    #[allow(clippy::too_many_arguments)]
    fn artifact_bytes(
        &self,
        bytes: Vec<u8>,
        file: &str,
        kind: &str,
        tier: Tier,
        captured: &str,
        sealed: bool,
        labels: &[(&str, &str)],
        supersedes: Option<EntryId>,
    ) -> EntryId {
        let meta = ArtifactMeta {
            content: Digest::of(&bytes),
            size: bytes.len() as u64,
            kind: kind.into(),
            file_name: file.into(),
            tier,
            captured_at: t(captured),
            valid_until: None,
            scope: Scope::default(),
            sealed,
            supersedes,
            labels: labels
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            facts: None,
        };
        self.append(Payload::Artifact(meta), captured, vec![bytes], &self.k.hana)
    }

    #[allow(clippy::too_many_arguments)]
    fn artifact(
        &self,
        dir: &str,
        file: &str,
        kind: &str,
        tier: Tier,
        captured: &str,
        sealed: bool,
        labels: &[(&str, &str)],
        supersedes: Option<EntryId>,
    ) -> EntryId {
        let bytes = std::fs::read(Path::new(dir).join(file)).unwrap();
        self.artifact_bytes(
            bytes, file, kind, tier, captured, sealed, labels, supersedes,
        )
    }

    fn ack(&self, ns: &'static str, subject: EntryId, at: &str) -> EntryId {
        self.append(
            Payload::Acknowledgment(Acknowledgment {
                topic: "east-west-authorization-policy".into(),
                subject: Some(subject),
                namespace: Some(ns.into()),
                statement: format!("East-west authorization baseline reviewed for {ns}."),
            }),
            at,
            vec![],
            &self.k.signers[ns],
        )
    }

    fn annotate(&self, subject: EntryId, kind: AnnotationKind, text: &str, at: &str) -> EntryId {
        self.append(
            Payload::Annotation(Annotation {
                subject,
                kind,
                scope: Scope::default(),
                text: text.into(),
            }),
            at,
            vec![],
            &self.k.reviewer,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn packet(
        &self,
        rev: u32,
        parent: Option<EntryId>,
        gate: EntryId,
        in_scope: &[&str],
        basis: &[EntryId],
        at: &str,
        name: &str,
    ) -> EntryId {
        let mut in_scope: Vec<WorkloadRef> = in_scope.iter().map(|s| wl(s)).collect();
        in_scope.sort();
        let mut basis = basis.to_vec();
        basis.sort();
        basis.dedup();
        self.append(
            Payload::Packet(PacketRevision {
                name: format!("{name}-v{rev}"),
                revision: rev,
                parent,
                gate,
                checkpoint_at: t("2026-04-30T00:00:00Z"),
                in_scope,
                basis,
            }),
            at,
            vec![],
            &self.k.hana,
        )
    }

    fn input(&self, packet: &EntryId) -> EvalInput {
        evaluate::load_input(&self.ledger, packet).unwrap()
    }

    fn eval(&self, packet: &EntryId, as_of: &str) -> Disposition {
        evaluate::evaluate(&self.input(packet), t(as_of)).unwrap()
    }

    fn record(&self, packet: &EntryId, as_of: &str) -> EntryId {
        let d = self.eval(packet, as_of);
        let doc = d.canonical_bytes();
        self.append(
            Payload::Disposition(DispositionRecord {
                packet: *packet,
                document: Digest::of(&doc),
                verdict: d.verdict.name().into(),
                as_of: d.as_of,
                engine_version: d.engine_version.clone(),
            }),
            as_of,
            vec![doc],
            &self.k.hana,
        )
    }
}

const ALL: [&str; 10] = [
    "payments/payments-api",
    "payments/payments-gateway",
    "payments/payments-ledger-sync",
    "identity/identity-token-service",
    "identity/identity-directory",
    "edge-routing/edge-router",
    "edge-routing/edge-gateway",
    "data-platform/data-platform-ingest",
    "data-platform/data-platform-etl",
    "orders/orders-journal-writer",
];

const STATELESS_VALIDATED: [&str; 6] = [
    "edge-routing/edge-gateway",
    "edge-routing/edge-router",
    "identity/identity-directory",
    "identity/identity-token-service",
    "payments/payments-api",
    "payments/payments-gateway",
];

/// The flagship scenario's entries.
struct Flagship {
    w: World,
    gate: EntryId,
    common: Vec<EntryId>,
    baseline_policy: EntryId,
    v2: EntryId,
    v3: EntryId,
    v4: EntryId,
    v4_basis: Vec<EntryId>,
    accepted: EntryId,
}

const PACKET: &str = "Service-Mesh-mTLS-Enforcement-Gate-Packet";

fn flagship() -> Flagship {
    let w = World::new();
    let a = Tier::Authoritative;
    let gate = w.artifact(
        EX,
        "gate.toml",
        "gate-definition",
        a,
        "2026-04-10T08:00:00Z",
        true,
        &[],
        None,
    );
    let inventory = w.artifact(
        EX,
        "mesh-enforcement-targets-2026-04-18.csv",
        "workload-inventory",
        a,
        "2026-04-18T08:00:00Z",
        true,
        &[],
        None,
    );
    let base_tel = w.artifact(
        EX,
        "mesh-mtls-baseline-2026-04-04T00Z-2026-04-06T00Z.csv",
        "telemetry",
        a,
        "2026-04-06T01:00:00Z",
        true,
        &[
            ("telemetry", "baseline"),
            ("window", "mesh-mtls-baseline-2026-04-04T00Z-2026-04-06T00Z"),
        ],
        None,
    );
    let canary_window = [
        ("telemetry", "canary"),
        ("window", "mesh-mtls-canary-2026-04-11T00Z-2026-04-13T00Z"),
    ];
    let canary_open = w.artifact(
        EX,
        "mesh-mtls-canary-2026-04-11T00Z-2026-04-13T00Z.csv",
        "telemetry",
        a,
        "2026-04-13T01:00:00Z",
        false,
        &canary_window,
        None,
    );
    let envoy = w.artifact(
        EX,
        "drill-envoy-policy-reversal-2026-04-15.toml",
        "rollback-drill",
        a,
        "2026-04-15T15:00:00Z",
        true,
        &[],
        None,
    );
    let bypass = w.artifact(
        EX,
        "drill-legacy-sidecar-bypass-2026-04-16.toml",
        "rollback-drill",
        a,
        "2026-04-16T11:00:00Z",
        true,
        &[],
        None,
    );
    let grpc = w.artifact(
        EX,
        "drill-legacy-grpc-settlement-adapter-2026-04-05.toml",
        "rollback-drill",
        a,
        "2026-04-05T07:00:00Z",
        true,
        &[],
        None,
    );
    let authority = w.artifact(
        EX,
        "Mesh-Gate-Authority-Snapshot-2026-04-12.toml",
        "authority-snapshot",
        a,
        "2026-04-12T00:00:00Z",
        true,
        &[],
        None,
    );
    let register = w.artifact(
        EX,
        "certificate-exception-register-2026-04-17.toml",
        "certificate-exception-register",
        a,
        "2026-04-17T12:00:00Z",
        true,
        &[],
        None,
    );
    let baseline_policy = w.artifact(
        EX,
        "east-west-authorization-baseline-2026-04-17.yaml",
        "mesh-policy",
        a,
        "2026-04-17T12:00:00Z",
        true,
        &[("baseline", "east-west-authorization")],
        None,
    );
    let standup = w.artifact(
        EX,
        "standup-notes-2026-04-17.md",
        "standup-notes",
        Tier::Excluded,
        "2026-04-17T16:00:00Z",
        false,
        &[],
        None,
    );
    let common = vec![
        inventory,
        base_tel,
        envoy,
        bypass,
        grpc,
        authority,
        register,
        baseline_policy,
        standup,
    ];

    // v2: the canary window is captured but not yet sealed.
    let mut b2 = common.clone();
    b2.push(canary_open);
    let v2 = w.packet(2, None, gate, &ALL, &b2, "2026-04-18T12:00:00Z", PACKET);

    // v3: sealed canary supersedes the open capture; identity and edge-routing acknowledge.
    let canary = w.artifact(
        EX,
        "mesh-mtls-canary-2026-04-11T00Z-2026-04-13T00Z.csv",
        "telemetry",
        a,
        "2026-04-18T13:00:00Z",
        true,
        &canary_window,
        Some(canary_open),
    );
    let ack_id = w.ack("identity", baseline_policy, "2026-04-18T14:00:00Z");
    let ack_edge = w.ack("edge-routing", baseline_policy, "2026-04-18T14:10:00Z");
    let mut b3 = common.clone();
    b3.extend([canary, ack_id, ack_edge]);
    let v3 = w.packet(3, Some(v2), gate, &ALL, &b3, "2026-04-18T23:00:00Z", PACKET);
    let narrow_too_far = w.append(
        Payload::Narrowing(NarrowingProposal {
            packet: v3,
            keep: STATELESS_VALIDATED[..4].iter().map(|s| wl(s)).collect(),
            rationale: "cut over identity and edge-routing only".into(),
        }),
        "2026-04-19T08:00:00Z",
        vec![],
        &w.k.hana,
    );
    w.annotate(
        narrow_too_far,
        AnnotationKind::Reject,
        "Too narrow to justify a cutover window; obtain the payments and orders acknowledgments.",
        "2026-04-19T09:00:00Z",
    );
    let narrow = w.append(
        Payload::Narrowing(NarrowingProposal {
            packet: v3,
            keep: STATELESS_VALIDATED.iter().map(|s| wl(s)).collect(),
            rationale: "validated stateless payments, identity and edge-routing workloads".into(),
        }),
        "2026-04-19T10:00:00Z",
        vec![],
        &w.k.hana,
    );
    let accepted = w.annotate(
        narrow,
        AnnotationKind::Accept,
        "Accept narrowing to the validated stateless subset.",
        "2026-04-19T11:00:00Z",
    );

    // v4: payments and orders acknowledge; data-platform still unsigned.
    let ack_pay = w.ack("payments", baseline_policy, "2026-04-19T15:00:00Z");
    let ack_orders = w.ack("orders", baseline_policy, "2026-04-19T15:30:00Z");
    let mut b4 = b3.clone();
    b4.extend([ack_pay, ack_orders, narrow, accepted]);
    let v4 = w.packet(4, Some(v3), gate, &ALL, &b4, "2026-04-19T20:00:00Z", PACKET);
    Flagship {
        w,
        gate,
        common,
        baseline_policy,
        v2,
        v3,
        v4,
        v4_basis: b4,
        accepted,
    }
}

fn blockers(d: &Disposition) -> Vec<String> {
    d.blocker_keys()
}

const V4_BLOCKERS: [&str; 6] = [
    "acknowledgment-missing namespace data-platform",
    "compatibility-unresolved workload orders/orders-journal-writer",
    "compatibility-unresolved workload payments/payments-ledger-sync",
    "exception-expires-before-checkpoint exception mesh-cert-exc-117",
    "exception-expires-before-checkpoint exception mesh-cert-exc-122",
    "rollback-drill-stale path legacy-grpc-settlement-adapter",
];

#[test]
fn v2_v3_v4_derive_hold_escalate_narrow() {
    let f = flagship();
    let d2 = f.w.eval(&f.v2, "2026-04-18T12:00:00Z");
    assert_eq!(d2.verdict, Verdict::Hold);
    assert!(
        blockers(&d2).contains(&"evidence-missing rule telemetry canary".to_string()),
        "{:#?}",
        blockers(&d2)
    );
    assert!(d2.trace.iter().any(|l| l.outcome == "ignored"
        && l.detail.contains("standup-notes")
        && l.detail.contains("excluded")));

    let d3 = f.w.eval(&f.v3, "2026-04-19T00:00:00Z");
    assert_eq!(d3.verdict, Verdict::Escalate);
    assert_eq!(d3.would_be, Some(Verdict::Narrow));
    assert_eq!(d3.scope.out_of_scope_share_pct, "60.00");
    assert!(d3.escalation[0].contains("60.00 %"), "{:?}", d3.escalation);
    assert!(
        !blockers(&d3)
            .iter()
            .any(|b| b.starts_with("rollback-drill-stale")),
        "the drill is still fresh at v3"
    );

    let d4 = f.w.eval(&f.v4, "2026-04-20T00:00:00Z");
    assert_eq!(d4.verdict, Verdict::Narrow, "{:#?}", d4.escalation);
    assert_eq!(blockers(&d4), V4_BLOCKERS);
    assert!(d4.blockers.iter().all(|b| b.scoped));
    assert_eq!(d4.scope.in_scope_workloads, STATELESS_VALIDATED);
    assert_eq!(
        d4.scope.out_of_scope_workloads,
        [
            "data-platform/data-platform-etl",
            "data-platform/data-platform-ingest",
            "orders/orders-journal-writer",
            "payments/payments-ledger-sync"
        ]
    );
    assert_eq!(
        d4.scope.in_scope_namespaces,
        ["edge-routing", "identity", "payments"]
    );
    assert_eq!(
        d4.scope.out_of_scope_namespaces,
        ["data-platform", "orders"]
    );
    assert_eq!(d4.scope.out_of_scope_share_pct, "40.00");
    let drill = d4
        .blockers
        .iter()
        .find(|b| b.code == "rollback-drill-stale")
        .unwrap();
    assert_eq!(
        drill.affects,
        [
            "orders/orders-journal-writer",
            "payments/payments-ledger-sync"
        ]
    );
    assert!(drill.reason.contains("14-day"), "{}", drill.reason);
    let p = d4
        .narrowing_proposals
        .iter()
        .find(|p| p.status == "accepted")
        .unwrap();
    assert!(p.matches_derived_scope);
    assert_eq!(
        d4.gate_id,
        "platform-transport-security/mtls-enforcement-cutover"
    );
}

#[test]
fn signing_the_data_platform_ack_removes_that_blocker() {
    let f = flagship();
    let ack =
        f.w.ack("data-platform", f.baseline_policy, "2026-04-20T09:00:00Z");
    let mut b = f.v4_basis.clone();
    b.push(ack);
    let p = f.w.packet(
        5,
        Some(f.v4),
        f.gate,
        &ALL,
        &b,
        "2026-04-20T10:00:00Z",
        PACKET,
    );
    let d = f.w.eval(&p, "2026-04-20T12:00:00Z");
    assert_eq!(d.verdict, Verdict::Narrow);
    let expect: Vec<&str> = V4_BLOCKERS
        .iter()
        .copied()
        .filter(|b| !b.starts_with("acknowledgment-missing"))
        .collect();
    assert_eq!(blockers(&d), expect);
    assert!(
        d.scope
            .in_scope_workloads
            .contains(&"data-platform/data-platform-ingest".to_string())
    );
    assert_eq!(d.scope.out_of_scope_namespaces, ["orders"]);

    // An acknowledgment by a key without the security-signer role does not count.
    let mut b = f.v4_basis.clone();
    let bogus = f.w.append(
        Payload::Annotation(Annotation {
            subject: f.baseline_policy,
            kind: AnnotationKind::Note,
            scope: Scope::default(),
            text: "looks fine".into(),
        }),
        "2026-04-20T09:00:00Z",
        vec![],
        &f.w.k.reviewer,
    );
    b.push(bogus);
    let p = f.w.packet(
        5,
        Some(f.v4),
        f.gate,
        &ALL,
        &b,
        "2026-04-20T10:30:00Z",
        PACKET,
    );
    assert!(blockers(&f.w.eval(&p, "2026-04-20T12:00:00Z")).contains(&V4_BLOCKERS[0].to_string()));
}

#[test]
fn an_authority_that_forbids_narrowing_escalates() {
    let f = flagship();
    let strict = f.w.artifact(
        EX,
        "Mesh-Gate-Authority-Snapshot-2026-04-12-no-narrow.toml",
        "authority-snapshot",
        Tier::Authoritative,
        "2026-04-12T00:00:01Z",
        true,
        &[],
        None,
    );
    let mut b = f.v4_basis.clone();
    b.push(strict);
    let p = f.w.packet(
        4,
        Some(f.v3),
        f.gate,
        &ALL,
        &b,
        "2026-04-19T20:00:00Z",
        "forbid",
    );
    let d = f.w.eval(&p, "2026-04-20T00:00:00Z");
    assert_eq!(d.verdict, Verdict::Escalate);
    assert_eq!(d.would_be, Some(Verdict::Narrow));
    assert!(
        d.escalation[0].contains("does not let") && d.escalation[0].contains("narrow"),
        "{:?}",
        d.escalation
    );
    assert_eq!(blockers(&d), V4_BLOCKERS);
}

#[test]
fn deadlines_predict_the_change_when_exception_117_expires() {
    let f = flagship();
    let input = f.w.input(&f.v4);
    let ds = deadlines::deadlines(&input, t("2026-04-20T00:00:00Z")).unwrap();
    let first = &ds[0];
    assert_eq!(first.at, t("2026-04-24T00:00:00Z"));
    assert_eq!(
        (first.verdict_before, first.verdict_after),
        (Verdict::Narrow, Verdict::Hold)
    );
    assert_eq!(
        first.blockers_added,
        ["exception-expired exception mesh-cert-exc-117"]
    );
    assert_eq!(
        first.blockers_removed,
        ["exception-expires-before-checkpoint exception mesh-cert-exc-117"]
    );
    // Evaluating after the expiry gives what deadlines predicted.
    let after = f.w.eval(&f.v4, "2026-04-24T00:00:01Z");
    assert_eq!(after.verdict, Verdict::Hold);
    assert!(
        blockers(&after).contains(&"exception-expired exception mesh-cert-exc-117".to_string())
    );
    let before = f.w.eval(&f.v4, "2026-04-23T23:59:59Z");
    assert_eq!(before.verdict, Verdict::Narrow);
    // Every later deadline is also real: re-evaluate on both sides of it.
    for d in &ds {
        let a = evaluate::evaluate(&input, d.at.plus_seconds(-1)).unwrap();
        let b = evaluate::evaluate(&input, d.at).unwrap();
        assert!(
            a.verdict != b.verdict || a.blocker_keys() != b.blocker_keys(),
            "no change at {}",
            d.at
        );
    }
    assert!(
        ds.iter().any(|d| d.at == t("2026-04-27T00:00:00Z")),
        "exception 122 expiry"
    );
}

#[test]
fn refreshing_the_drill_clears_the_stale_blocker() {
    let f = flagship();
    let old = f.w.input(&f.v4).basis.iter().find(|b| matches!(&b.entry.body.payload, Payload::Artifact(m) if m.file_name.contains("grpc"))).unwrap().id;
    let fresh = f.w.artifact(
        EX,
        "drill-legacy-grpc-settlement-adapter-2026-04-21.toml",
        "rollback-drill",
        Tier::Authoritative,
        "2026-04-21T10:00:00Z",
        true,
        &[],
        Some(old),
    );
    let mut b = f.v4_basis.clone();
    b.push(fresh);
    let p = f.w.packet(
        5,
        Some(f.v4),
        f.gate,
        &ALL,
        &b,
        "2026-04-21T11:00:00Z",
        PACKET,
    );
    let d = f.w.eval(&p, "2026-04-21T12:00:00Z");
    assert!(
        !blockers(&d)
            .iter()
            .any(|b| b.starts_with("rollback-drill-stale")),
        "{:?}",
        blockers(&d)
    );
    assert_eq!(d.verdict, Verdict::Narrow);
}

#[test]
fn lower_tiers_never_clear_a_blocker_and_reviewer_blockers_count() {
    let f = flagship();
    // An operational-tier fresh drill does not clear the stale authoritative one.
    let op = f.w.artifact(
        EX,
        "drill-legacy-grpc-settlement-adapter-2026-04-21.toml",
        "rollback-drill",
        Tier::Operational,
        "2026-04-21T10:00:00Z",
        true,
        &[],
        None,
    );
    let rb = f.w.append(
        Payload::Annotation(Annotation {
            subject: f.v4,
            kind: AnnotationKind::Blocker,
            scope: Scope {
                namespaces: vec![],
                workloads: vec!["payments/payments-gateway".into()],
            },
            text: "gateway p99 regressed in the canary; explain before cutover".into(),
        }),
        "2026-04-21T10:30:00Z",
        vec![],
        &f.w.k.reviewer,
    );
    let mut b = f.v4_basis.clone();
    b.extend([op, rb]);
    let p = f.w.packet(
        5,
        Some(f.v4),
        f.gate,
        &ALL,
        &b,
        "2026-04-21T11:00:00Z",
        PACKET,
    );
    let d = f.w.eval(&p, "2026-04-22T00:00:00Z");
    let keys = blockers(&d);
    assert!(keys.contains(&"rollback-drill-stale path legacy-grpc-settlement-adapter".to_string()));
    assert!(keys.contains(&"reviewer-blocker workload payments/payments-gateway".to_string()));
    assert!(
        d.scope
            .out_of_scope_workloads
            .contains(&"payments/payments-gateway".to_string())
    );
    assert!(
        d.trace
            .iter()
            .any(|l| l.detail.contains("tier operational is below"))
    );
    // A reviewer's accept on the blocker closes it.
    let close = f.w.annotate(
        rb,
        AnnotationKind::Accept,
        "explained: a noisy neighbour, fixed",
        "2026-04-21T12:00:00Z",
    );
    b.push(close);
    let p =
        f.w.packet(6, Some(p), f.gate, &ALL, &b, "2026-04-21T13:00:00Z", PACKET);
    assert!(
        !blockers(&f.w.eval(&p, "2026-04-22T00:00:00Z"))
            .iter()
            .any(|k| k.starts_with("reviewer-blocker"))
    );
}

#[test]
fn evaluation_is_deterministic_and_telemetry_thresholds_bite() {
    let f = flagship();
    let i = f.w.input(&f.v4);
    let a = evaluate::evaluate(&i, t("2026-04-20T00:00:00Z"))
        .unwrap()
        .canonical_bytes();
    let b = evaluate::evaluate(&i.clone(), t("2026-04-20T00:00:00Z"))
        .unwrap()
        .canonical_bytes();
    assert_eq!(a, b);
    // RFC 8785: no final newline (version 3).
    assert!(a.ends_with(b"}") && !a.contains(&b'\n'));
    assert_eq!(Disposition::from_bytes(&a).unwrap().canonical_bytes(), a);

    // A canary where payments-gateway errors at 6.2 % and identity-directory's p95 is up 60 %.
    let text = std::fs::read_to_string(
        Path::new(EX).join("mesh-mtls-canary-2026-04-11T00Z-2026-04-13T00Z.csv"),
    )
    .unwrap();
    let text = text
        .replace(
            "payments-gateway,payments,0.9987,0.0013",
            "payments-gateway,payments,0.9380,0.0620",
        )
        .replace(
            "identity-directory,identity,0.9996,0.0004,6.2,14.8",
            "identity-directory,identity,0.9996,0.0004,6.2,22.4",
        );
    let canary_id = i.basis.iter().find(|b| matches!(&b.entry.body.payload, Payload::Artifact(m) if m.sealed && m.labels.get("telemetry").map(String::as_str) == Some("canary"))).unwrap().id;
    let bad = f.w.artifact_bytes(
        text.into_bytes(),
        "canary-rerun.csv",
        "telemetry",
        Tier::Authoritative,
        "2026-04-19T13:00:00Z",
        true,
        &[("telemetry", "canary"), ("window", "rerun")],
        Some(canary_id),
    );
    let mut b = f.v4_basis.clone();
    b.push(bad);
    let p = f.w.packet(
        5,
        Some(f.v4),
        f.gate,
        &ALL,
        &b,
        "2026-04-19T21:00:00Z",
        PACKET,
    );
    let d = f.w.eval(&p, "2026-04-20T00:00:00Z");
    let tb: Vec<_> = d
        .blockers
        .iter()
        .filter(|b| b.code == "telemetry-threshold")
        .collect();
    assert_eq!(tb.len(), 2, "{:#?}", d.blockers);
    assert!(
        tb.iter()
            .any(|b| b.affects == ["identity/identity-directory"] && b.reason.contains("p95"))
    );
    assert!(
        tb.iter()
            .any(|b| b.affects == ["payments/payments-gateway"] && b.reason.contains("6.20 %"))
    );
}

#[test]
fn recorded_dispositions_replay_and_tampering_is_named() {
    let f = flagship();
    let r2 = f.w.record(&f.v2, "2026-04-18T12:00:00Z");
    let r4 = f.w.record(&f.v4, "2026-04-20T00:00:00Z");
    for r in [r2, r4] {
        let rep = replay::replay(&f.w.ledger, &r).unwrap();
        assert!(rep.matches, "{:?}", rep.differences);
        assert!(rep.engine_version.is_none());
    }
    // A hand-edited document: the verdict changed to proceed.
    let (_, e) = f.w.ledger.entry_by_id(&r4).unwrap();
    let Payload::Disposition(rec) = e.body.payload else {
        panic!()
    };
    let doc = f.w.ledger.blob(&rec.document).unwrap().unwrap();
    // (a version-3 document is RFC 8785 JSON: no space after the colon)
    let doc = String::from_utf8(doc).unwrap();
    let edited = doc.replacen("\"verdict\":\"narrow\"", "\"verdict\":\"proceed\"", 1);
    assert_ne!(edited, doc);
    let rep = replay::replay_with(&r4, &rec, Some(edited.as_bytes()), Ok(f.w.input(&f.v4)));
    assert!(!rep.matches);
    assert!(
        rep.differences
            .iter()
            .any(|d| d.contains("verdict: \"proceed\" → \"narrow\"")),
        "{:#?}",
        rep.differences
    );
    // A hand-edited basis: the inventory now claims payments-ledger-sync is validated.
    let mut input = f.w.input(&f.v4);
    let inv = input.basis.iter_mut().find(|b| matches!(&b.entry.body.payload, Payload::Artifact(m) if m.kind == "workload-inventory")).unwrap();
    let text = String::from_utf8(inv.artifact.clone().unwrap()).unwrap();
    inv.artifact = Some(
        text.replace(
            "true,legacy-bypass,unresolved,no,mesh-cert-exc-117,tier-1\ni",
            "true,legacy-bypass,validated,no,mesh-cert-exc-117,tier-1\ni",
        )
        .into_bytes(),
    );
    let doc = f.w.ledger.blob(&rec.document).unwrap().unwrap();
    let rep = replay::replay_with(&r4, &rec, Some(&doc), Ok(input));
    assert!(!rep.matches);
    assert!(
        rep.differences
            .iter()
            .any(|d| d.contains("blockers") && d.contains("payments-ledger-sync")),
        "{:#?}",
        rep.differences
    );
}

#[test]
fn lineage_names_the_delta_that_changed_each_verdict() {
    let f = flagship();
    f.w.record(&f.v2, "2026-04-18T12:00:00Z");
    f.w.record(&f.v3, "2026-04-19T00:00:00Z");
    f.w.record(&f.v4, "2026-04-20T00:00:00Z");
    let l = lineage::lineage(&f.w.ledger, &f.v4).unwrap();
    assert_eq!(l.iter().map(|r| r.revision).collect::<Vec<_>>(), [2, 3, 4]);
    assert_eq!(l[1].verdict_change.as_deref(), Some("HOLD → ESCALATE"));
    assert_eq!(l[1].parent_verdict, Some(Verdict::Hold));
    assert_eq!(l[1].parent_rederived, Some(Verdict::Hold));
    assert_eq!(l[2].parent_verdict, Some(Verdict::Escalate));
    assert_eq!(l[2].parent_rederived, Some(Verdict::Escalate));
    assert_eq!(l[0].parent_verdict, None, "v2 has no parent");
    assert_eq!(
        l[1].superseded.len(),
        1,
        "sealed canary supersedes the open capture"
    );
    assert_eq!(l[1].new_acknowledgments.len(), 2);
    assert!(
        l[1].blockers_removed
            .contains(&"evidence-missing rule telemetry canary".to_string())
    );
    assert_eq!(l[2].verdict_change.as_deref(), Some("ESCALATE → NARROW"));
    // The stale drill comes from time passing (v3 re-derived at v4's as-of has it too), so
    // lineage must not attribute it to v4's evidence delta.
    assert!(
        !l[2]
            .blockers_added
            .contains(&"rollback-drill-stale path legacy-grpc-settlement-adapter".to_string()),
        "{:?}",
        l[2].blockers_added
    );
    assert!(
        l[2].blockers_removed
            .contains(&"acknowledgment-missing namespace payments".to_string())
    );
    assert!(l[2].new_annotations.contains(&f.accepted));
    let statuses: Vec<&str> = l[1].proposals.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(statuses, ["rejected", "accepted"]);
    assert!(l[0].added.len() >= f.common.len() && l[0].removed.is_empty());
}

#[test]
fn a_missing_basis_entry_is_named() {
    let f = flagship();
    let ghost = Digest::of(b"never appended");
    let p = f.w.packet(
        9,
        None,
        f.gate,
        &ALL,
        &[ghost],
        "2026-04-20T00:00:00Z",
        "ghost",
    );
    let e = evaluate::load_input(&f.w.ledger, &p).unwrap_err();
    assert!(e.to_string().contains(&ghost.to_hex()), "{e}");
}

#[test]
fn bundles_verify_offline_and_any_altered_byte_fails() {
    let f = flagship();
    f.w.record(&f.v3, "2026-04-19T00:00:00Z");
    f.w.record(&f.v4, "2026-04-20T00:00:00Z");
    let size = f.w.ledger.size().unwrap();
    let root = f.w.ledger.root(size).unwrap();
    let note = checkpoint::sign(ORIGIN, size, root, &f.w.k.admin);
    let bytes = bundle::export(&f.w.ledger, &f.v4, &note).unwrap();
    // The auditor's trust root: the genesis id, known from the ledger, not from the bundle.
    let roots = evl::trust::Roots {
        genesis: Some(f.w.ledger.genesis_id().unwrap()),
        ..Default::default()
    };
    // Without one, nothing is verified.
    let r = bundle::verify_bundle(&bytes, &Default::default());
    assert!(r.failures[0].contains("no trust root"), "{:#?}", r.failures);
    assert_eq!(r.entries_checked, 0);
    let r = bundle::verify_bundle(&bytes, &roots);
    assert!(r.ok(), "{:#?}", r.failures);
    assert_eq!(r.dispositions_replayed, 2);
    assert!(r.artifacts_checked >= 12 && r.proofs_checked == r.entries_checked);
    // Flip bytes across the whole file (a stride keeps the test fast); every flip must fail.
    let stride = (bytes.len() / 1000).max(1);
    let mut positions: Vec<usize> = (0..bytes.len()).step_by(stride).collect();
    positions.push(bytes.len() - 1);
    for i in positions {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        let r = bundle::verify_bundle(&b, &roots);
        assert!(
            !r.ok(),
            "flipping byte {i} of {} went unnoticed",
            bytes.len()
        );
    }
    // A failure names what is wrong: alter the last byte of the last carried artifact.
    let body_start = evl::domain::BUNDLE_MAGIC.len();
    let mut b = bytes.clone();
    let n = b.len();
    b[n - 2] ^= 0x20;
    let r = bundle::verify_bundle(&b, &roots);
    assert!(
        r.failures
            .iter()
            .any(|f| f.contains("missing or altered") || f.contains("referenced by no")),
        "{:#?}",
        r.failures
    );
    assert!(body_start < n);
}

#[test]
fn the_launch_gate_runs_on_the_same_engine() {
    let w = World::new();
    let a = Tier::Authoritative;
    let gate = w.artifact(
        LAUNCH,
        "gate.toml",
        "gate-definition",
        a,
        "2026-05-01T00:00:00Z",
        true,
        &[],
        None,
    );
    let mut basis = vec![w.artifact(
        LAUNCH,
        "launch-authority-2026-05.toml",
        "authority-snapshot",
        a,
        "2026-05-01T00:00:00Z",
        true,
        &[],
        None,
    )];
    let files: Vec<String> = std::fs::read_dir(LAUNCH)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("control-"))
        .collect();
    let mut files = files;
    files.sort();
    for f in &files {
        let text = std::fs::read_to_string(Path::new(LAUNCH).join(f)).unwrap();
        let label = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap()
        };
        let (control, status, env, at) = (
            label("control"),
            label("status"),
            label("environment"),
            label("validated_at"),
        );
        basis.push(w.artifact(
            LAUNCH,
            f,
            "control-evidence",
            a,
            &at,
            true,
            &[
                ("control", &control),
                ("status", &status),
                ("environment", &env),
            ],
            None,
        ));
    }
    let scope = ["platform/api", "platform/worker"];
    let p = w.packet(
        1,
        None,
        gate,
        &scope,
        &basis,
        "2026-05-10T00:00:00Z",
        "public-launch",
    );
    let d = w.eval(&p, "2026-05-10T00:00:00Z");
    assert_eq!(d.verdict, Verdict::Hold, "{:#?}", d.blockers);
    assert_eq!(
        blockers(&d),
        [
            "control-unevidenced rule backup-restore-drills",
            "control-unevidenced rule secret-manager"
        ]
    );
    assert!(
        d.trace
            .iter()
            .any(|l| l.rule == "waf-at-edge" && l.outcome == "pass")
    );
}

/// A revision whose evidence delta changes nothing, recorded after the authority snapshot
/// lapsed: its recorded verdict (ESCALATE) differs from the parent's (HOLD), and lineage must
/// say so, attributing the change to time, not to the delta, instead of "verdict unchanged".
#[test]
fn lineage_tells_a_recorded_change_from_time_apart_from_one_the_delta_made() {
    let f = flagship();
    f.w.record(&f.v2, "2026-04-18T12:00:00Z");
    let note = f.w.annotate(
        f.v2,
        AnnotationKind::Note,
        "no change",
        "2026-05-12T01:00:00Z",
    );
    let mut b = f.common.clone();
    b.push(note);
    let later = f.w.packet(
        3,
        Some(f.v2),
        f.gate,
        &ALL,
        &b,
        "2026-05-12T02:00:00Z",
        "later",
    );
    let r = f.w.record(&later, "2026-05-12T03:00:00Z");
    let l = lineage::lineage(&f.w.ledger, &later).unwrap();
    assert_eq!(l.len(), 2);
    let rev = &l[1];
    assert_eq!(rev.dispositions[0].id, r);
    assert_eq!(rev.dispositions[0].verdict, Verdict::Escalate);
    assert_eq!(rev.parent_verdict, Some(Verdict::Hold));
    assert_eq!(rev.parent_rederived, Some(Verdict::Escalate));
    assert_eq!(
        rev.verdict_change, None,
        "the delta (a note) changed nothing"
    );
    let text = std::process::Command::new(env!("CARGO_BIN_EXE_evl"))
        .arg("--ledger")
        .arg(f.w.ledger.path())
        .args(["lineage", &later.to_hex()])
        .output()
        .unwrap();
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(!text.contains("verdict unchanged"), "{text}");
    assert!(
        text.contains(
            "  recorded verdict HOLD → ESCALATE (the parent's last recorded against this revision's first)\n  this evidence delta did not change the verdict: the parent re-derived as of 2026-05-12T03:00:00Z gives ESCALATE too; time passing changed it from HOLD\n"
        ),
        "{text}"
    );
}

/// A Prometheus response ingested with a label mapping (`--metric METRIC=MEASURE`,
/// `--workload-label`, `--namespace-label`, recorded as entry labels) is read by the engine
/// with that mapping: the same canary as the flagship's CSV, written as Istio-labelled series,
/// gives the same telemetry blockers. Read without its mapping it would be unreadable.
#[test]
fn a_prometheus_canary_is_read_with_the_label_mapping_its_entry_records() {
    let f = flagship();
    let i = f.w.input(&f.v4);
    let csv = std::fs::read_to_string(
        Path::new(EX).join("mesh-mtls-canary-2026-04-11T00Z-2026-04-13T00Z.csv"),
    )
    .unwrap()
    .replace(
        "payments-gateway,payments,0.9987,0.0013",
        "payments-gateway,payments,0.9380,0.0620",
    );
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut series = Vec::new();
    for row in lines {
        let cells: Vec<&str> = row.split(',').collect();
        for (measure, value) in header.iter().zip(&cells).skip(2) {
            if value.is_empty() {
                continue;
            }
            series.push(format!(
                r#"{{"metric":{{"__name__":"canary:{measure}","destination_workload":"{}","destination_workload_namespace":"{}","reporter":"destination"}},"value":[1712966400,"{value}"]}}"#,
                cells[0], cells[1]
            ));
        }
    }
    let json = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        series.join(",")
    );
    let metrics: Vec<String> = header[2..]
        .iter()
        .map(|m| format!("canary:{m}={m}"))
        .collect();
    let metrics = metrics.join(",");
    let canary_id = i.basis.iter().find(|b| matches!(&b.entry.body.payload, Payload::Artifact(m) if m.sealed && m.labels.get("telemetry").map(String::as_str) == Some("canary"))).unwrap().id;
    let prom = f.w.artifact_bytes(
        json.into_bytes(),
        "canary-rerun.json",
        "telemetry",
        Tier::Authoritative,
        "2026-04-19T13:00:00Z",
        true,
        &[
            ("telemetry", "canary"),
            ("window", "rerun"),
            ("telemetry-metric", &metrics),
            ("telemetry-workload-label", "destination_workload"),
            (
                "telemetry-namespace-label",
                "destination_workload_namespace",
            ),
        ],
        Some(canary_id),
    );
    let mut b = f.v4_basis.clone();
    b.push(prom);
    let p = f.w.packet(
        5,
        Some(f.v4),
        f.gate,
        &ALL,
        &b,
        "2026-04-19T21:00:00Z",
        PACKET,
    );
    let d = f.w.eval(&p, "2026-04-20T00:00:00Z");
    assert!(
        !d.blockers.iter().any(|b| b.code == "evidence-unreadable"),
        "{:#?}",
        d.blockers
    );
    let tb: Vec<_> = d
        .blockers
        .iter()
        .filter(|b| b.code == "telemetry-threshold")
        .collect();
    assert_eq!(tb.len(), 1, "{:#?}", d.blockers);
    assert_eq!(tb[0].affects, ["payments/payments-gateway"]);
    assert!(tb[0].reason.contains("6.20 %"), "{}", tb[0].reason);
}
