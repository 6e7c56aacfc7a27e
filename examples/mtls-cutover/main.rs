//! The flagship scenario of seed 000, end to end, on a fresh embedded store:
//! `cargo run --example mtls-cutover` (add `-- --keep DIR` to keep the ledger for exploring).
//!
//! Every step is a real `evl` command line, run through the same code path as the binary
//! (`evl::cli::run`), and echoed as `$ evl …` so the transcript doubles as a tutorial.

use std::path::{Path, PathBuf};

use clap::Parser;

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

    fn key(&self, name: &str) -> String {
        self.work
            .join("keys")
            .join(format!("{name}.key"))
            .display()
            .to_string()
    }

    fn public(&self, name: &str) -> String {
        self.work
            .join("keys")
            .join(format!("{name}.pub"))
            .display()
            .to_string()
    }
}

fn section(title: &str) {
    println!("\n==== {title} ====");
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

    section("Checkpoint and verify");
    let cp = work.join("checkpoint.note").display().to_string();
    run.evl(&["checkpoint", "--key", &admin_key, "-o", &cp]);
    run.evl(&["verify"]);
    if let Some(k) = keep {
        println!("\nledger kept in {}", k.join("ledger").display());
    }
}
