//! The flagship scenario of seed 000, end to end, on a fresh embedded store:
//! `cargo run --example mtls-cutover` (add `-- --keep DIR` to keep the ledger for exploring).
//!
//! Every step is a real `evl` command line, run through the same code path as the binary
//! (`evl::cli::run`), and echoed as `$ evl …` so the transcript doubles as a tutorial.

use std::path::{Path, PathBuf};

use clap::Parser;
use evl::entry::Payload;
use evl::store::{Ledger, OpenOptions};

const HERE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mtls-cutover");

/// Signers of the scenario and the roles the admin grants them (keys/README.md).
const SIGNERS: &[(&str, &[&str])] = &[
    ("hana-okafor", &["owner"]),
    ("reviewer-platform-security", &["reviewer"]),
    ("ns-payments-owner", &["security-signer"]),
    ("ns-identity-owner", &["security-signer"]),
    ("ns-edge-routing-owner", &["security-signer"]),
    ("ns-data-platform-owner", &["security-signer"]),
    ("ns-orders-owner", &["security-signer"]),
    ("omar-bennett", &["gate-chair"]),
];

struct Run {
    work: PathBuf,
    verbose: bool,
}

impl Run {
    /// Runs one evl command line in-process; exits the example if its exit code is not `want`.
    fn evl_expect(&self, want: i32, args: &[&str]) {
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                if a.contains(' ') {
                    format!("'{a}'")
                } else {
                    a.to_string()
                }
            })
            .map(|a| {
                a.replace(&format!("{}/", self.work.display()), "")
                    .replace(&format!("{HERE}/"), "$EX/")
            })
            .collect();
        if self.verbose {
            println!("\n$ evl {}", shown.join(" "));
        }
        let mut argv = vec![
            "evl".to_string(),
            "--ledger".into(),
            self.work.join("ledger").display().to_string(),
        ];
        argv.extend(args.iter().map(|s| s.to_string()));
        let code = evl::cli::run(evl::cli::Cli::parse_from(argv));
        if code != want {
            eprintln!(
                "example: `evl {}` exited {code}, expected {want}",
                shown.join(" ")
            );
            std::process::exit(1);
        }
    }

    fn evl(&self, args: &[&str]) {
        self.evl_expect(0, args);
    }

    /// Runs an appending command and returns a 12-character prefix of the entry it appended,
    /// the way a person would copy it from the output.
    fn evl_id(&self, args: &[&str]) -> String {
        self.evl(args);
        let ledger = Ledger::open(&self.work.join("ledger"), &OpenOptions::default())
            .expect("example: ledger opens");
        let last = ledger.size().expect("example: size") - 1;
        ledger.entry(last).expect("example: entry").id().to_hex()[..12].to_string()
    }

    /// Prefixes of every recorded disposition, in log order.
    fn dispositions(&self) -> Vec<String> {
        let ledger = Ledger::open(&self.work.join("ledger"), &OpenOptions::default())
            .expect("example: ledger opens");
        (0..ledger.size().expect("example: size"))
            .map(|i| ledger.entry(i).expect("example: entry"))
            .filter(|e| matches!(e.body.payload, Payload::Disposition(_)))
            .map(|e| e.id().to_hex()[..12].to_string())
            .collect()
    }

    fn key(&self, name: &str) -> String {
        self.key_file(name, "key")
    }

    fn public(&self, name: &str) -> String {
        self.key_file(name, "pub")
    }

    fn key_file(&self, name: &str, ext: &str) -> String {
        self.work
            .join("keys")
            .join(format!("{name}.{ext}"))
            .display()
            .to_string()
    }
}

fn section(title: &str) {
    println!("\n==== {title} ====");
}

fn banner(title: &str) {
    let rule = "#".repeat(title.len() + 4);
    println!("\n{rule}\n# {title} #\n{rule}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let keep = args
        .iter()
        .position(|a| a == "--keep")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let temp = tempfile::tempdir().expect("example: cannot create a temporary directory");
    let work = keep.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(work.join("keys")).expect("example: cannot create the work directory");
    let run = Run {
        work: work.clone(),
        verbose: true,
    };

    section("Signers (DEMO ONLY keys derived from published phrases; see keys/README.md)");
    for name in std::iter::once("mesh-admin").chain(SIGNERS.iter().map(|(n, _)| *n)) {
        if !Path::new(&run.key(name)).exists() {
            let phrase = format!("evl demo key: {name}");
            let dir = work.join("keys").display().to_string();
            run.evl(&["keygen", name, "--dir", &dir, "--demo-seed", &phrase]);
        }
    }

    section("A ledger whose trust root is the mesh admin");
    let (admin_pub, admin_key) = (run.public("mesh-admin"), run.key("mesh-admin"));
    run.evl(&[
        "init",
        "--origin",
        "example.org/platform-transport-security-gate",
        "--admin",
        &admin_pub,
        "--key",
        &admin_key,
        "--at",
        "2026-04-01T09:00:00Z",
    ]);
    for (name, roles) in SIGNERS {
        let public = run.public(name);
        let mut a = vec!["key", "add", name, "--pub", &public];
        for r in *roles {
            a.extend(["--role", r]);
        }
        a.extend(["--key", &admin_key, "--at", "2026-04-01T09:05:00Z"]);
        run.evl(&a);
    }

    let hana = run.key("hana-okafor");
    let reviewer = run.key("reviewer-platform-security");
    let ex = |f: &str| format!("{HERE}/{f}");
    // Authoritative, sealed evidence captured (and signed) by Hana at `at`.
    let add_sealed = |file: &str, kind: &str, at: &str| {
        run.evl_id(&[
            "add",
            &ex(file),
            "--kind",
            kind,
            "--tier",
            "authoritative",
            "--sealed",
            "--captured-at",
            at,
            "--at",
            at,
            "--key",
            &hana,
        ])
    };

    section("Evidence, as Hana Okafor (packet owner) records it");
    let at = "2026-04-10T08:00:00Z";
    let gate = add_sealed("gate.toml", "gate-definition", at);
    let at = "2026-04-18T08:00:00Z";
    let inventory = run.evl_id(&[
        "ingest",
        "inventory",
        &ex("mesh-enforcement-targets-2026-04-18.csv"),
        "--sealed",
        "--captured-at",
        at,
        "--at",
        at,
        "--key",
        &hana,
    ]);
    let at = "2026-04-06T01:00:00Z";
    let baseline_tel = run.evl_id(&[
        "ingest",
        "telemetry",
        &ex("mesh-mtls-baseline-2026-04-04T00Z-2026-04-06T00Z.csv"),
        "--window",
        "mesh-mtls-baseline-2026-04-04T00Z-2026-04-06T00Z",
        "--label",
        "telemetry=baseline",
        "--sealed",
        "--captured-at",
        at,
        "--at",
        at,
        "--key",
        &hana,
    ]);
    let at = "2026-04-13T01:00:00Z";
    let canary_open = run.evl_id(&[
        "ingest",
        "telemetry",
        &ex("mesh-mtls-canary-2026-04-11T00Z-2026-04-13T00Z.csv"),
        "--window",
        "mesh-mtls-canary-2026-04-11T00Z-2026-04-13T00Z",
        "--label",
        "telemetry=canary",
        "--captured-at",
        at,
        "--at",
        at,
        "--key",
        &hana,
    ]);
    let mut drills = Vec::new();
    for (file, at) in [
        (
            "drill-envoy-policy-reversal-2026-04-15.toml",
            "2026-04-15T15:00:00Z",
        ),
        (
            "drill-legacy-sidecar-bypass-2026-04-16.toml",
            "2026-04-16T11:00:00Z",
        ),
        (
            "drill-legacy-grpc-settlement-adapter-2026-04-05.toml",
            "2026-04-05T07:00:00Z",
        ),
    ] {
        drills.push(add_sealed(file, "rollback-drill", at));
    }
    let at = "2026-04-12T00:00:00Z";
    let authority = add_sealed(
        "Mesh-Gate-Authority-Snapshot-2026-04-12.toml",
        "authority-snapshot",
        at,
    );
    let at = "2026-04-17T12:00:00Z";
    let register = add_sealed(
        "certificate-exception-register-2026-04-17.toml",
        "certificate-exception-register",
        at,
    );
    let policy = run.evl_id(&[
        "ingest",
        "mesh",
        &ex("east-west-authorization-baseline-2026-04-17.yaml"),
        "--label",
        "baseline=east-west-authorization",
        "--sealed",
        "--captured-at",
        at,
        "--at",
        at,
        "--key",
        &hana,
    ]);
    let at = "2026-04-17T16:00:00Z";
    let standup = run.evl_id(&[
        "add",
        &ex("standup-notes-2026-04-17.md"),
        "--kind",
        "standup-notes",
        "--tier",
        "excluded",
        "--captured-at",
        at,
        "--at",
        at,
        "--key",
        &hana,
    ]);

    section("Packet v2: the canary window is captured but not sealed");
    let name = |rev: u32| format!("Service-Mesh-mTLS-Enforcement-Gate-Packet-v{rev}");
    let mut args: Vec<String> = [
        "packet",
        "create",
        "--name",
        &name(2),
        "--revision",
        "2",
        "--gate",
        &gate,
        "--checkpoint-at",
        "2026-04-30T00:00:00Z",
        "--workloads-from",
        &inventory,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for b in [
        &inventory,
        &baseline_tel,
        &canary_open,
        &drills[0],
        &drills[1],
        &drills[2],
        &authority,
        &register,
        &policy,
        &standup,
    ] {
        args.extend(["--basis".to_string(), b.clone()]);
    }
    args.extend([
        "--key".into(),
        hana.clone(),
        "--at".into(),
        "2026-04-18T12:00:00Z".into(),
    ]);
    let v2 = run.evl_id(&args.iter().map(String::as_str).collect::<Vec<_>>());
    run.evl(&[
        "evaluate",
        &v2,
        "--as-of",
        "2026-04-18T12:00:00Z",
        "--record",
        "--at",
        "2026-04-18T12:00:00Z",
        "--key",
        &hana,
    ]);

    section(
        "Packet v3: the sealed canary window supersedes the open capture; identity and edge-routing acknowledge",
    );
    let at = "2026-04-18T13:00:00Z";
    let canary = run.evl_id(&[
        "ingest",
        "telemetry",
        &ex("mesh-mtls-canary-2026-04-11T00Z-2026-04-13T00Z.csv"),
        "--window",
        "mesh-mtls-canary-2026-04-11T00Z-2026-04-13T00Z",
        "--label",
        "telemetry=canary",
        "--sealed",
        "--supersedes",
        &canary_open,
        "--captured-at",
        at,
        "--at",
        at,
        "--key",
        &hana,
    ]);
    let ack = |ns: &str, at: &str| {
        let statement = format!("East-west authorization baseline reviewed for {ns}.");
        run.evl_id(&[
            "ack",
            "--topic",
            "east-west-authorization-policy",
            "--subject",
            &policy,
            "--namespace",
            ns,
            "--statement",
            &statement,
            "--at",
            at,
            "--key",
            &run.key(&format!("ns-{ns}-owner")),
        ])
    };
    let ack_identity = ack("identity", "2026-04-18T14:00:00Z");
    let ack_edge = ack("edge-routing", "2026-04-18T14:10:00Z");
    let v3 = run.evl_id(&[
        "packet",
        "create",
        "--parent",
        &v2,
        "--name",
        &name(3),
        "--basis",
        &canary,
        "--basis",
        &ack_identity,
        "--basis",
        &ack_edge,
        "--drop",
        &canary_open,
        "--at",
        "2026-04-18T23:00:00Z",
        "--key",
        &hana,
    ]);
    run.evl(&[
        "evaluate",
        &v3,
        "--as-of",
        "2026-04-19T00:00:00Z",
        "--record",
        "--at",
        "2026-04-19T00:00:00Z",
        "--key",
        &hana,
    ]);

    section("Narrowing proposals on v3: one rejected as too narrow, one accepted");
    let stateless = [
        "payments/payments-api",
        "payments/payments-gateway",
        "identity/identity-token-service",
        "identity/identity-directory",
        "edge-routing/edge-router",
        "edge-routing/edge-gateway",
    ];
    let propose = |keep: &[&str], why: &str, at: &str| {
        let mut a = vec!["narrow", v3.as_str()];
        for k in keep {
            a.extend(["--keep", k]);
        }
        a.extend(["--rationale", why, "--at", at, "--key", hana.as_str()]);
        run.evl_id(&a)
    };
    let too_narrow = propose(
        &stateless[2..],
        "cut over identity and edge-routing only",
        "2026-04-19T08:00:00Z",
    );
    run.evl(&[
        "annotate",
        &too_narrow,
        "--kind",
        "reject",
        "--text",
        "Too narrow to justify a cutover window; obtain the payments and orders acknowledgments.",
        "--at",
        "2026-04-19T09:00:00Z",
        "--key",
        &reviewer,
    ]);
    let narrow = propose(
        &stateless,
        "validated stateless payments, identity and edge-routing workloads",
        "2026-04-19T10:00:00Z",
    );
    let accepted = run.evl_id(&[
        "annotate",
        &narrow,
        "--kind",
        "accept",
        "--text",
        "Accept narrowing to the validated stateless subset.",
        "--at",
        "2026-04-19T11:00:00Z",
        "--key",
        &reviewer,
    ]);

    section("Packet v4: payments and orders acknowledge; data-platform has not signed");
    let ack_payments = ack("payments", "2026-04-19T15:00:00Z");
    let ack_orders = ack("orders", "2026-04-19T15:30:00Z");
    let v4 = run.evl_id(&[
        "packet",
        "create",
        "--parent",
        &v3,
        "--name",
        &name(4),
        "--basis",
        &ack_payments,
        "--basis",
        &ack_orders,
        "--basis",
        &narrow,
        "--basis",
        &accepted,
        "--at",
        "2026-04-19T20:00:00Z",
        "--key",
        &hana,
    ]);

    banner("THE RECOMMENDATION FOR THE GATE CHAIR (Omar Bennett): packet v4 as of 2026-04-20");
    run.evl(&[
        "evaluate",
        &v4,
        "--as-of",
        "2026-04-20T00:00:00Z",
        "--record",
        "--at",
        "2026-04-20T00:00:00Z",
        "--key",
        &hana,
    ]);

    section("How the recommendation got here: lineage v2 -> v3 -> v4");
    run.evl(&["lineage", &v4]);

    section("When the result will change if nothing is done");
    run.evl(&["deadlines", &v4, "--as-of", "2026-04-20T00:00:00Z"]);
    section("... and indeed, one second after mesh-cert-exc-117 expires");
    run.evl(&[
        "evaluate",
        &v4,
        "--as-of",
        "2026-04-24T00:00:01Z",
        "--record",
        "--at",
        "2026-04-24T00:00:01Z",
        "--key",
        &hana,
    ]);

    section("What if the data-platform owner signs the missing acknowledgment? (packet v5)");
    let ack_data = ack("data-platform", "2026-04-20T09:00:00Z");
    let v5 = run.evl_id(&[
        "packet",
        "create",
        "--parent",
        &v4,
        "--name",
        &name(5),
        "--basis",
        &ack_data,
        "--at",
        "2026-04-20T10:00:00Z",
        "--key",
        &hana,
    ]);
    run.evl(&[
        "evaluate",
        &v5,
        "--as-of",
        "2026-04-20T12:00:00Z",
        "--record",
        "--at",
        "2026-04-20T12:00:00Z",
        "--key",
        &hana,
    ]);

    section("What if the delegated authority forbade narrowing? (v4 with another snapshot)");
    let at = "2026-04-12T00:00:01Z";
    let strict = add_sealed(
        "Mesh-Gate-Authority-Snapshot-2026-04-12-no-narrow.toml",
        "authority-snapshot",
        at,
    );
    let forbid = run.evl_id(&[
        "packet",
        "create",
        "--parent",
        &v3,
        "--revision",
        "4",
        "--name",
        "Service-Mesh-mTLS-Enforcement-Gate-Packet-v4-no-narrow-authority",
        "--basis",
        &ack_payments,
        "--basis",
        &ack_orders,
        "--basis",
        &narrow,
        "--basis",
        &accepted,
        "--basis",
        &strict,
        "--at",
        "2026-04-19T20:00:00Z",
        "--key",
        &hana,
    ]);
    run.evl(&[
        "evaluate",
        &forbid,
        "--as-of",
        "2026-04-20T00:00:00Z",
        "--record",
        "--at",
        "2026-04-20T00:00:00Z",
        "--key",
        &hana,
    ]);

    section("Every recorded disposition replays, byte for byte");
    for d in run.dispositions() {
        run.evl(&["replay", &d]);
    }

    section("The auditor's view: checkpoint, ledger verification, an offline bundle");
    let cp = work.join("checkpoint.note").display().to_string();
    run.evl(&["checkpoint", "--key", &admin_key, "-o", &cp]);
    // The auditor keeps their own state (here beside the ledger, not in the home directory):
    // the first verification pins the genesis, later ones must extend what it recorded.
    let state = work.join("auditor-state").display().to_string();
    run.evl(&["verify", "--checkpoint", &cp, "--state-dir", &state]);
    let bundle = work.join("packet-v4.evlb").display().to_string();
    run.evl(&["export", &v4, "-o", &bundle]);
    // Offline, a bundle verifies only from a trust root the auditor already holds — the
    // genesis id `evl init` printed, an admin public key, a checkpoint verifier key — or
    // from the auditor state; never from the keys it carries.
    run.evl_expect(1, &["verify-bundle", &bundle, "--no-state"]);
    let genesis = {
        let ledger = Ledger::open(&work.join("ledger"), &OpenOptions::default())
            .expect("example: ledger opens");
        ledger.entry(0).expect("example: genesis").id().to_hex()
    };
    run.evl(&[
        "verify-bundle",
        &bundle,
        "--genesis",
        &genesis,
        "--state-dir",
        &state,
    ]);
    section("The gate's own test cases (gate-tests/), evaluated in memory with no ledger");
    run.evl(&["gate", "test", &ex("gate-tests")]);
    if let Some(k) = keep {
        println!("\nledger kept in {}", k.join("ledger").display());
    }
}
