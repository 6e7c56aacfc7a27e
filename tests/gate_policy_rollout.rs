//! The policy-rollout gate of `examples/policy-rollout-gate/` (seed 003, identities from seed 002),
//! written from the documentation alone. Every situation of its SCENARIO.md is built through the
//! real `evl` binary on a fresh ledger in a temporary directory and its predicted verdict,
//! blocker codes and scope are asserted.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

const AS_OF: &str = "2026-11-20T12:00:00Z";
const CHECKPOINT: &str = "2026-11-27T00:00:00Z";
const CHANGE: &str = "change=payments-authz-v2";

const ALL: [&str; 6] = [
    "checkout/cart-service",
    "checkout/checkout-service",
    "frontend/frontend-bff",
    "frontend/frontend-web",
    "payments/payment-service",
    "payments/refund-service",
];

fn example(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/policy-rollout-gate")
        .join(file)
        .to_string_lossy()
        .into_owned()
}

/// Which variant of the evidence a packet pins.
#[derive(Clone, Copy)]
enum Canary {
    Good,
    P95Breach,
    AtThreshold,
}

#[derive(Clone, Copy)]
enum BffCert {
    /// re-issued SVID, notAfter 2026-12-15
    Renewed,
    /// notAfter 2026-11-25, ingested with --valid-until 2026-11-25T00:00:00Z
    ShortWithValidUntil,
    /// notAfter 2026-11-25, ingested without --valid-until
    ShortNoValidUntil,
}

struct Fixture {
    _tmp: tempfile::TempDir,
    ledger: PathBuf,
    keys: PathBuf,
    gate: String,
    inventory: String,
    mesh: String,
    baseline: String,
    canary_good: String,
    canary_breach: String,
    canary_threshold: String,
    drill: String,
    certs: Vec<String>,
    bff_renewed: String,
    bff_short: String,
    bff_short_no_valid_until: String,
    authority: String,
    authority_no_narrow: String,
    ack_payments: String,
    ack_checkout: String,
    ack_frontend: String,
}

impl Fixture {
    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("evl").unwrap();
        c.env_remove("EVL_LEDGER")
            .env_remove("EVL_KEY")
            .arg("--ledger")
            .arg(&self.ledger);
        c
    }

    fn key(&self, name: &str) -> String {
        self.keys
            .join(format!("{name}.key"))
            .to_string_lossy()
            .into_owned()
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "evl {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `evl add|ingest … --json`: the id of the single appended entry.
    fn append_json(&self, args: &[&str]) -> String {
        let mut a = args.to_vec();
        a.push("--json");
        let v: Value = serde_json::from_str(&self.run(&a)).unwrap();
        let arr = v
            .as_array()
            .expect("--json prints an array of appended entries");
        assert_eq!(arr.len(), 1, "{v}");
        arr[0]["id"].as_str().unwrap().to_string()
    }

    /// Verbs that print `KIND <id> at index N …`.
    fn append_text(&self, args: &[&str]) -> String {
        let out = self.run(args);
        out.split_whitespace()
            .nth(1)
            .expect("an entry id")
            .to_string()
    }

    fn build() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let keys = tmp.path().join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let ledger = tmp.path().join("ledger");
        let mut f = Fixture {
            _tmp: tmp,
            ledger,
            keys,
            gate: String::new(),
            inventory: String::new(),
            mesh: String::new(),
            baseline: String::new(),
            canary_good: String::new(),
            canary_breach: String::new(),
            canary_threshold: String::new(),
            drill: String::new(),
            certs: Vec::new(),
            bff_renewed: String::new(),
            bff_short: String::new(),
            bff_short_no_valid_until: String::new(),
            authority: String::new(),
            authority_no_narrow: String::new(),
            ack_payments: String::new(),
            ack_checkout: String::new(),
            ack_frontend: String::new(),
        };
        let kdir = f.keys.to_string_lossy().into_owned();
        for k in [
            "mesh-admin",
            "policy-owner",
            "sec-payments",
            "sec-checkout",
            "sec-frontend",
        ] {
            f.run(&["keygen", k, "--dir", &kdir]);
        }
        let admin = f.key("mesh-admin");
        let owner = f.key("policy-owner");
        let admin_pub = f.keys.join("mesh-admin.pub").to_string_lossy().into_owned();
        f.run(&[
            "init",
            "--origin",
            "example.org/mesh-policy-gate",
            "--admin",
            &admin_pub,
            "--key",
            &admin,
            "--at",
            "2026-11-15T00:00:00Z",
        ]);
        let pub_of = |k: &str| {
            f.keys
                .join(format!("{k}.pub"))
                .to_string_lossy()
                .into_owned()
        };
        f.run(&[
            "key",
            "add",
            "policy-owner",
            "--pub",
            &pub_of("policy-owner"),
            "--role",
            "owner",
            "--key",
            &admin,
            "--at",
            "2026-11-15T00:01:00Z",
        ]);
        for (i, k) in ["sec-payments", "sec-checkout", "sec-frontend"]
            .iter()
            .enumerate()
        {
            let at = format!("2026-11-15T00:0{}:00Z", i + 2);
            f.run(&[
                "key",
                "add",
                k,
                "--pub",
                &pub_of(k),
                "--role",
                "security-signer",
                "--key",
                &admin,
                "--at",
                &at,
            ]);
        }

        f.gate = f.append_json(&[
            "add",
            &example("gate.toml"),
            "--kind",
            "gate-definition",
            "--tier",
            "authoritative",
            "--key",
            &owner,
            "--at",
            "2026-11-16T00:00:00Z",
        ]);
        f.inventory = f.append_json(&[
            "ingest",
            "inventory",
            &example("policy-rollout-targets-2026-11-16.csv"),
            "--captured-at",
            "2026-11-16T08:00:00Z",
            "--key",
            &owner,
            "--at",
            "2026-11-16T08:05:00Z",
        ]);
        f.mesh = f.append_json(&[
            "ingest",
            "mesh",
            &example("payments-authz-v2-2026-11-16.yaml"),
            "--label",
            CHANGE,
            "--captured-at",
            "2026-11-16T09:00:00Z",
            "--key",
            &owner,
            "--at",
            "2026-11-16T09:05:00Z",
        ]);
        f.baseline = f.append_json(&[
            "ingest",
            "telemetry",
            &example("mesh-policy-baseline-2026-11-09T00Z-2026-11-11T00Z.csv"),
            "--window",
            "mesh-policy-baseline-2026-11-09T00Z-2026-11-11T00Z",
            "--sealed",
            "--label",
            "telemetry=baseline",
            "--captured-at",
            "2026-11-11T01:00:00Z",
            "--key",
            &owner,
            "--at",
            "2026-11-16T10:00:00Z",
        ]);
        f.authority = f.append_json(&[
            "add",
            &example("policy-rollout-authority-2026-11-16.toml"),
            "--kind",
            "authority-snapshot",
            "--tier",
            "authoritative",
            "--captured-at",
            "2026-11-16T00:00:00Z",
            "--key",
            &owner,
            "--at",
            "2026-11-16T11:00:00Z",
        ]);
        f.authority_no_narrow = f.append_json(&[
            "add",
            &example("policy-rollout-authority-2026-11-16-no-narrow.toml"),
            "--kind",
            "authority-snapshot",
            "--tier",
            "authoritative",
            "--captured-at",
            "2026-11-16T00:00:00Z",
            "--key",
            &owner,
            "--at",
            "2026-11-16T11:01:00Z",
        ]);
        f.drill = f.append_json(&[
            "add",
            &example("drill-authz-policy-revert-2026-11-18.toml"),
            "--kind",
            "rollback-drill",
            "--tier",
            "authoritative",
            "--namespace",
            "payments",
            "--namespace",
            "checkout",
            "--namespace",
            "frontend",
            "--key",
            &owner,
            "--at",
            "2026-11-18T15:00:00Z",
        ]);
        let canary = |f: &Fixture, file: &str, at: &str| {
            f.append_json(&[
                "ingest",
                "telemetry",
                &example(file),
                "--window",
                "mesh-policy-canary-2026-11-17T00Z-2026-11-19T00Z",
                "--sealed",
                "--label",
                "telemetry=canary",
                "--label",
                CHANGE,
                "--captured-at",
                "2026-11-19T01:00:00Z",
                "--key",
                &owner,
                "--at",
                at,
            ])
        };
        f.canary_good = canary(
            &f,
            "mesh-policy-canary-2026-11-17T00Z-2026-11-19T00Z.csv",
            "2026-11-19T01:05:00Z",
        );
        f.canary_breach = canary(
            &f,
            "mesh-policy-canary-p95-breach-2026-11-17T00Z-2026-11-19T00Z.csv",
            "2026-11-19T01:06:00Z",
        );
        f.canary_threshold = canary(
            &f,
            "mesh-policy-canary-at-threshold-2026-11-17T00Z-2026-11-19T00Z.csv",
            "2026-11-19T01:07:00Z",
        );

        let cert = |f: &Fixture, file: &str, wl: &str, valid_until: Option<&str>, at: &str| {
            let mut a = vec![
                "ingest",
                "cert",
                file,
                "--workload",
                wl,
                "--label",
                "purpose=workload-identity",
                "--captured-at",
                "2026-11-19T06:00:00Z",
                "--key",
                &owner,
                "--at",
                at,
            ];
            if let Some(v) = valid_until {
                a.push("--valid-until");
                a.push(v);
            }
            f.append_json(&a)
        };
        let dec = Some("2026-12-15T00:00:00Z");
        for (i, wl) in [
            "payments/payment-service",
            "payments/refund-service",
            "checkout/checkout-service",
            "checkout/cart-service",
            "frontend/frontend-web",
        ]
        .iter()
        .enumerate()
        {
            let file = example(&format!("svid-{}.pem", wl.replace('/', "-")));
            let at = format!("2026-11-19T06:0{}:00Z", i + 1);
            let id = cert(&f, &file, wl, dec, &at);
            f.certs.push(id);
        }
        f.bff_renewed = cert(
            &f,
            &example("svid-frontend-frontend-bff.pem"),
            "frontend/frontend-bff",
            dec,
            "2026-11-19T06:10:00Z",
        );
        f.bff_short = cert(
            &f,
            &example("svid-frontend-frontend-bff-2026-11-25.pem"),
            "frontend/frontend-bff",
            Some("2026-11-25T00:00:00Z"),
            "2026-11-19T06:11:00Z",
        );
        f.bff_short_no_valid_until = cert(
            &f,
            &example("svid-frontend-frontend-bff-2026-11-25.pem"),
            "frontend/frontend-bff",
            None,
            "2026-11-19T06:12:00Z",
        );

        let ack = |f: &Fixture, signer: &str, ns: &str, at: &str| {
            f.append_text(&["ack", "--topic", "mesh-policy-promotion", "--subject", &f.mesh.clone(),
                "--namespace", ns, "--statement",
                &format!("payments-authz-v2 reviewed for namespace {ns}: STRICT mTLS and caller allow-lists acceptable"),
                "--key", &f.key(signer), "--at", at])
        };
        f.ack_payments = ack(&f, "sec-payments", "payments", "2026-11-19T10:00:00Z");
        f.ack_checkout = ack(&f, "sec-checkout", "checkout", "2026-11-19T11:00:00Z");
        f.ack_frontend = ack(&f, "sec-frontend", "frontend", "2026-11-20T09:00:00Z");
        f
    }

    /// Pin a packet whose basis is the common evidence plus the chosen variants.
    fn packet(&self, canary: Canary, bff: BffCert, no_narrow: bool, acks: &[&str]) -> String {
        let canary = match canary {
            Canary::Good => &self.canary_good,
            Canary::P95Breach => &self.canary_breach,
            Canary::AtThreshold => &self.canary_threshold,
        };
        let bff = match bff {
            BffCert::Renewed => &self.bff_renewed,
            BffCert::ShortWithValidUntil => &self.bff_short,
            BffCert::ShortNoValidUntil => &self.bff_short_no_valid_until,
        };
        let authority = if no_narrow {
            &self.authority_no_narrow
        } else {
            &self.authority
        };
        let mut basis: Vec<&str> = vec![
            &self.inventory,
            &self.mesh,
            &self.baseline,
            canary,
            &self.drill,
            bff,
            authority,
        ];
        basis.extend(self.certs.iter().map(String::as_str));
        for ns in acks {
            basis.push(match *ns {
                "payments" => &self.ack_payments,
                "checkout" => &self.ack_checkout,
                "frontend" => &self.ack_frontend,
                other => panic!("no ack for {other}"),
            });
        }
        let owner = self.key("policy-owner");
        let mut a = vec![
            "packet",
            "create",
            "--name",
            "Mesh-Policy-Promotion-payments-authz-v2",
            "--revision",
            "1",
            "--gate",
            &self.gate,
            "--checkpoint-at",
            CHECKPOINT,
            "--workloads-from",
            &self.inventory,
            "--key",
            &owner,
            "--at",
            "2026-11-20T11:00:00Z",
        ];
        for b in basis {
            a.push("--basis");
            a.push(b);
        }
        self.append_text(&a)
    }

    fn evaluate(&self, packet: &str, as_of: &str) -> Value {
        serde_json::from_str(&self.run(&["evaluate", packet, "--as-of", as_of, "--json"])).unwrap()
    }
}

const ALL_ACKS: [&str; 3] = ["payments", "checkout", "frontend"];

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// (code, subject type, subject name, scoped, affects)
fn blockers(d: &Value) -> Vec<(String, String, String, bool, Vec<String>)> {
    d["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["code"].as_str().unwrap().to_string(),
                b["subject"]["type"].as_str().unwrap().to_string(),
                b["subject"]["name"].as_str().unwrap().to_string(),
                b["scoped"].as_bool().unwrap(),
                strs(&b["affects"]),
            )
        })
        .collect()
}

fn assert_full_scope(d: &Value) {
    let s = &d["scope"];
    assert_eq!(strs(&s["in_scope_workloads"]), ALL, "{d:#}");
    assert!(strs(&s["out_of_scope_workloads"]).is_empty(), "{d:#}");
    assert_eq!(
        strs(&s["in_scope_namespaces"]),
        ["checkout", "frontend", "payments"],
        "{d:#}"
    );
    assert!(strs(&s["out_of_scope_namespaces"]).is_empty(), "{d:#}");
    assert_eq!(s["out_of_scope_share_pct"], "0.00", "{d:#}");
}

fn assert_proceed(d: &Value) {
    assert_eq!(d["verdict"], "proceed", "{d:#}");
    assert!(d["blockers"].as_array().unwrap().is_empty(), "{d:#}");
    assert_full_scope(d);
}

fn assert_checkout_narrowed(d: &Value) {
    assert_eq!(
        blockers(d),
        vec![(
            "acknowledgment-missing".to_string(),
            "namespace".to_string(),
            "checkout".to_string(),
            true,
            vec![
                "checkout/cart-service".to_string(),
                "checkout/checkout-service".to_string()
            ],
        )],
        "{d:#}"
    );
    let s = &d["scope"];
    assert_eq!(
        strs(&s["in_scope_workloads"]),
        [
            "frontend/frontend-bff",
            "frontend/frontend-web",
            "payments/payment-service",
            "payments/refund-service"
        ],
        "{d:#}"
    );
    assert_eq!(
        strs(&s["out_of_scope_workloads"]),
        ["checkout/cart-service", "checkout/checkout-service"]
    );
    assert_eq!(strs(&s["in_scope_namespaces"]), ["frontend", "payments"]);
    assert_eq!(strs(&s["out_of_scope_namespaces"]), ["checkout"]);
    assert_eq!(s["out_of_scope_share_pct"], "33.33");
}

fn assert_bff_dropped(d: &Value) {
    assert_eq!(d["verdict"], "narrow", "{d:#}");
    let b = blockers(d);
    assert_eq!(b.len(), 1, "{d:#}");
    assert_eq!(b[0].0, "identity-certificate-expired", "{d:#}");
    assert!(b[0].3);
    assert_eq!(b[0].4, ["frontend/frontend-bff"]);
    let s = &d["scope"];
    assert_eq!(
        strs(&s["in_scope_workloads"]),
        [
            "checkout/cart-service",
            "checkout/checkout-service",
            "frontend/frontend-web",
            "payments/payment-service",
            "payments/refund-service"
        ],
        "{d:#}"
    );
    assert_eq!(
        strs(&s["out_of_scope_workloads"]),
        ["frontend/frontend-bff"]
    );
    assert_eq!(
        strs(&s["in_scope_namespaces"]),
        ["checkout", "frontend", "payments"]
    );
    assert!(strs(&s["out_of_scope_namespaces"]).is_empty());
    assert_eq!(s["out_of_scope_share_pct"], "16.66");
}

/// Situation 1: everything in order.
#[test]
fn s1_all_good_proceeds() {
    let f = Fixture::build();
    let p = f.packet(Canary::Good, BffCert::Renewed, false, &ALL_ACKS);
    let d = f.evaluate(&p, AS_OF);
    assert_eq!(
        d["gate_id"],
        "platform-mesh-policy/policy-rollout-promotion"
    );
    assert_proceed(&d);
}

/// Situation 2: payment-service canary p95 +62 % — a tripped rollback trigger holds the change.
#[test]
fn s2_canary_p95_plus_62_pct_holds() {
    let f = Fixture::build();
    let p = f.packet(Canary::P95Breach, BffCert::Renewed, false, &ALL_ACKS);
    let d = f.evaluate(&p, AS_OF);
    assert_eq!(d["verdict"], "hold", "{d:#}");
    let b = blockers(&d);
    assert_eq!(b.len(), 1, "{d:#}");
    assert_eq!(b[0].0, "telemetry-threshold");
    assert_eq!(
        (b[0].1.as_str(), b[0].2.as_str()),
        ("workload", "payments/payment-service")
    );
    assert!(
        !b[0].3,
        "telemetry-threshold is not in [blockers].scoped, so it must be global"
    );
    assert_full_scope(&d);
}

/// Situation 3: the checkout security signer has not acknowledged — promote the rest.
#[test]
fn s3_missing_checkout_ack_narrows() {
    let f = Fixture::build();
    let p = f.packet(
        Canary::Good,
        BffCert::Renewed,
        false,
        &["payments", "frontend"],
    );
    let d = f.evaluate(&p, AS_OF);
    assert_eq!(d["verdict"], "narrow", "{d:#}");
    assert_checkout_narrowed(&d);
}

/// Situation 4: as 3, but the delegated authority does not permit narrowing.
#[test]
fn s4_authority_forbids_narrowing_escalates() {
    let f = Fixture::build();
    let p = f.packet(
        Canary::Good,
        BffCert::Renewed,
        true,
        &["payments", "frontend"],
    );
    let d = f.evaluate(&p, AS_OF);
    assert_eq!(d["verdict"], "escalate", "{d:#}");
    assert_eq!(d["would_be"], "narrow", "{d:#}");
    assert_checkout_narrowed(&d);
}

/// Situation 5: canary exactly at the seed-003 triggers (error rate 5 %, p95 +50 %) passes.
#[test]
fn s5_canary_exactly_at_thresholds_proceeds() {
    let f = Fixture::build();
    let p = f.packet(Canary::AtThreshold, BffCert::Renewed, false, &ALL_ACKS);
    let d = f.evaluate(&p, AS_OF);
    assert_proceed(&d);
}

/// Situation 6: frontend-bff's SVID expires 2026-11-25, after as-of but before the 2026-11-27
/// checkpoint. A careful reviewer drops frontend-bff from the promotion.
#[test]
fn s6_identity_expiring_before_checkpoint_narrows() {
    let f = Fixture::build();
    let p = f.packet(Canary::Good, BffCert::ShortWithValidUntil, false, &ALL_ACKS);
    let d = f.evaluate(&p, AS_OF);
    assert_bff_dropped(&d);
}

/// Situation 7: the same packet evaluated after the SVID expired.
#[test]
fn s7_expired_identity_narrows() {
    let f = Fixture::build();
    let p = f.packet(Canary::Good, BffCert::ShortWithValidUntil, false, &ALL_ACKS);
    let d = f.evaluate(&p, "2026-11-25T00:00:01Z");
    assert_bff_dropped(&d);
}

/// Situation 8: as 7, but the SVID was ingested without `--valid-until`: the certificate's own
/// notAfter has passed, so it is no identity.
#[test]
fn s8_expired_identity_without_valid_until_narrows() {
    let f = Fixture::build();
    let p = f.packet(Canary::Good, BffCert::ShortNoValidUntil, false, &ALL_ACKS);
    let d = f.evaluate(&p, "2026-11-25T00:00:01Z");
    assert_bff_dropped(&d);
}
