//! Trust roots and the auditor's state, through the real binary on real ledgers in temporary
//! directories: a bundle verifies only from a root the auditor already holds (or an explicit
//! `--trust-on-first-use`, which says so loudly), never from the keys it carries; every
//! verification prints what it trusted; and `evl verify` keeps the newest tree verified per
//! origin, so a rollback or a fork of a ledger verified before is refused without notes kept
//! by hand (docs/FORMAT.md §"Auditor state", docs/THREAT-MODEL.md).

mod common;

use std::path::{Path, PathBuf};

use common::{Out, copy_dir, evl_bin, run};
use serde_json::Value;
use tempfile::TempDir;

const EX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mtls-cutover");
const ORIGIN: &str = "example.org/trust-roots";
const INVALID: i32 = 1;
const INPUT: i32 = 2;
const REFUSED: i32 = 3;

/// A ledger of one packet revision, checkpointed and exported: genesis, key-add owner, a gate
/// definition, a rollback drill, the packet (5 entries).
struct Source {
    dir: TempDir,
    genesis: String,
    admin_id: String,
    packet: String,
    verifier_key: String,
}

impl Source {
    /// A fresh ledger of `origin` with its own admin key; `co_admins` are public key files
    /// listed as further admins in its genesis (a forger can list anyone's public key).
    fn new(origin: &str, co_admins: &[&Path]) -> Source {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let keygen = |n: &str| {
            let o = run(evl_bin().args(["keygen", n, "--dir"]).arg(&keys)).ok();
            o.stdout
                .lines()
                .find_map(|l| l.strip_prefix("key id "))
                .unwrap()
                .to_string()
        };
        let admin_id = keygen("admin");
        keygen("owner");
        let mut s = Source {
            dir,
            genesis: String::new(),
            admin_id,
            packet: String::new(),
            verifier_key: String::new(),
        };
        let mut init = vec![
            "init".to_string(),
            "--origin".into(),
            origin.into(),
            "--admin".into(),
            s.public("admin"),
        ];
        for p in co_admins {
            init.extend(["--admin".into(), p.display().to_string()]);
        }
        init.extend(["--key".into(), s.key("admin")]);
        let out = s.evl(&init).ok();
        s.genesis = out.stdout.trim().rsplit(' ').next().unwrap().to_string();
        assert_eq!(s.genesis.len(), 64, "{out:#?}");
        s.evl(&[
            "key",
            "add",
            "owner",
            "--pub",
            &s.public("owner"),
            "--role",
            "owner",
            "--key",
            &s.key("admin"),
        ])
        .ok();
        let gate = s.add(&format!("{EX}/gate.toml"), "gate-definition");
        let drill = s.add(
            &format!("{EX}/drill-envoy-policy-reversal-2026-04-15.toml"),
            "rollback-drill",
        );
        let out = s
            .evl(&[
                "packet",
                "create",
                "--name",
                "Trust-Packet",
                "--revision",
                "1",
                "--gate",
                &gate,
                "--checkpoint-at",
                "2026-04-30",
                "--workload",
                "payments/payments-api",
                "--basis",
                &drill,
                "--key",
                &s.key("owner"),
            ])
            .ok();
        s.packet = out.stdout.split_whitespace().nth(1).unwrap().to_string();
        s.checkpoint();
        s.export("bundle.evlb", false);
        s
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn ledger(&self) -> PathBuf {
        self.path("ledger")
    }
    fn key(&self, name: &str) -> String {
        self.path(&format!("keys/{name}.key")).display().to_string()
    }
    fn public(&self, name: &str) -> String {
        self.path(&format!("keys/{name}.pub")).display().to_string()
    }
    fn bundle(&self) -> String {
        self.path("bundle.evlb").display().to_string()
    }

    /// `evl --ledger <ledger> ARGS…` as the ledger's owner runs it (no auditor state).
    fn evl<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Out {
        run(evl_bin().arg("--ledger").arg(self.ledger()).args(args))
    }

    /// Adds a file as an authoritative artifact; returns its entry id.
    fn add(&self, file: &str, kind: &str) -> String {
        let out = run(evl_bin().arg("--ledger").arg(self.ledger()).args([
            "add",
            file,
            "--kind",
            kind,
            "--tier",
            "authoritative",
            "--key",
            &self.key("owner"),
        ]))
        .ok();
        out.stdout.split_whitespace().nth(1).unwrap().to_string()
    }

    /// Signs a checkpoint of the whole ledger into `checkpoint.note`; keeps its verifier key.
    fn checkpoint(&mut self) {
        let note = self.path("checkpoint.note");
        let out = run(evl_bin().arg("--ledger").arg(self.ledger()).args([
            "checkpoint",
            "--key",
            &self.key("admin"),
            "--json",
            "-o",
            note.to_str().unwrap(),
        ]))
        .ok();
        self.verifier_key = out.json()["verifier_key"].as_str().unwrap().to_string();
    }

    /// Exports the packet to `name`, against a fresh checkpoint when `fresh`.
    fn export(&self, name: &str, fresh: bool) -> String {
        let file = self.path(name);
        let mut c = evl_bin();
        c.arg("--ledger")
            .arg(self.ledger())
            .args(["export", &self.packet, "-o"])
            .arg(&file);
        if fresh {
            c.args(["--checkpoint-key", &self.key("admin")]);
        }
        run(&mut c).ok();
        file.display().to_string()
    }

    /// A copy of the whole directory (ledger, keys, bundle) as it is now.
    fn copy(&self) -> Source {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(self.dir.path(), dir.path());
        Source {
            dir,
            genesis: self.genesis.clone(),
            admin_id: self.admin_id.clone(),
            packet: self.packet.clone(),
            verifier_key: self.verifier_key.clone(),
        }
    }
}

/// An auditor: their own state home (`XDG_STATE_HOME`), nothing else.
struct Auditor {
    home: TempDir,
}

impl Auditor {
    fn new() -> Auditor {
        Auditor {
            home: tempfile::tempdir().unwrap(),
        }
    }
    fn xdg(&self) -> PathBuf {
        self.home.path().join("xdg")
    }
    /// The state file of `origin`: `$XDG_STATE_HOME/evl/<hex BLAKE3(origin)>.json`.
    fn state_file(&self, origin: &str) -> PathBuf {
        self.xdg().join("evl").join(format!(
            "{}.json",
            evl::Digest::of(origin.as_bytes()).to_hex()
        ))
    }
    fn state(&self, origin: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.state_file(origin)).unwrap()).unwrap()
    }
    /// `evl verify-bundle FILE ARGS…`, with no ledger anywhere.
    fn verify_bundle(&self, file: &str, args: &[&str]) -> Out {
        run(evl_bin()
            .env("XDG_STATE_HOME", self.xdg())
            .arg("--ledger")
            .arg(self.home.path().join("no-ledger"))
            .args(["verify-bundle", file])
            .args(args))
    }
    /// `evl --ledger LEDGER verify ARGS…`.
    fn verify(&self, ledger: &Path, args: &[&str]) -> Out {
        run(evl_bin()
            .env("XDG_STATE_HOME", self.xdg())
            .arg("--ledger")
            .arg(ledger)
            .arg("verify")
            .args(args))
    }
}

/// Asserts a failed verification: exit 1, `FAIL` lines naming each needle, nothing on stdout.
fn fails(o: &Out, needles: &[&str]) {
    assert_eq!(o.code, INVALID, "{o:#?}");
    assert!(o.stdout.is_empty(), "a failed verification printed: {o:#?}");
    assert!(
        o.stderr.lines().last().unwrap().starts_with("evl: "),
        "{o:#?}"
    );
    for n in needles {
        assert!(
            o.stderr
                .lines()
                .any(|l| l.starts_with("FAIL") && l.contains(n)),
            "no FAIL line mentions {n:?}: {o:#?}"
        );
    }
}

#[test]
fn a_forged_bundle_of_the_same_origin_is_refused_unless_the_auditor_holds_its_root() {
    let real = Source::new(ORIGIN, &[]);
    // The forger lists the real admin's public key beside their own: listing is not signing.
    let real_hex = std::fs::read_to_string(real.path("keys/admin.pub"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let listed = real.path("real-admin.pub");
    std::fs::write(&listed, format!("ed25519 {real_hex} real-admin\n")).unwrap();
    let forged = Source::new(ORIGIN, &[&listed]);
    let auditor = Auditor::new();

    // No root at all: refused in one line naming the flags that supply one.
    auditor.verify_bundle(&forged.bundle(), &[]).refused(
        INVALID,
        &[
            "no trust root",
            "--genesis",
            "--admin-key",
            "--verifier-key",
            "--trust-on-first-use",
        ],
    );
    auditor
        .verify_bundle(&real.bundle(), &[])
        .refused(INVALID, &["no trust root"]);

    // The real ledger's roots refuse the forgery, each naming why.
    let pub_file = real.public("admin");
    for (args, needle) in [
        (
            vec!["--genesis", real.genesis.as_str()],
            "a different ledger",
        ),
        (vec!["--admin-key", pub_file.as_str()], "--admin-key"),
        (vec!["--admin-key", real_hex.as_str()], "--admin-key"),
        (
            vec!["--verifier-key", real.verifier_key.as_str()],
            "--verifier-key",
        ),
    ] {
        let o = auditor.verify_bundle(&forged.bundle(), &args);
        fails(&o, &["trust: ", needle]);
    }
    assert!(
        !auditor.xdg().join("evl").exists()
            || std::fs::read_dir(auditor.xdg().join("evl"))
                .unwrap()
                .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".json")),
        "a refused bundle recorded auditor state"
    );

    // The same roots accept the real bundle, and say which root held.
    for (args, said) in [
        (
            vec!["--genesis", real.genesis.as_str(), "--no-state"],
            "--genesis ".to_string(),
        ),
        (
            vec!["--admin-key", pub_file.as_str(), "--no-state"],
            format!("--admin-key {pub_file} signed the genesis entry"),
        ),
        (
            vec!["--admin-key", real_hex.as_str(), "--no-state"],
            "signed the genesis entry".to_string(),
        ),
        (
            vec!["--verifier-key", real.verifier_key.as_str(), "--no-state"],
            "signed the checkpoint of size 5".to_string(),
        ),
    ] {
        let o = auditor.verify_bundle(&real.bundle(), &args).ok();
        assert!(
            o.stdout.starts_with("verified offline: 5 entries"),
            "{o:#?}"
        );
        assert!(
            o.stdout
                .lines()
                .any(|l| l.starts_with("trusted") && l.contains(&said)),
            "{args:?}: {o:#?}"
        );
        assert!(
            o.stdout.contains("state       not kept (--no-state)"),
            "{o:#?}"
        );
    }
    // A verifier key must name the origin and carry a key id matching its key.
    let renamed: String = real.verifier_key.replacen(ORIGIN, "example.org/other", 1);
    auditor
        .verify_bundle(&real.bundle(), &["--verifier-key", &renamed])
        .refused(INPUT, &["--verifier-key", "not a C2SP note verifier key"]);
}

#[test]
fn every_verification_prints_what_it_trusted() {
    let real = Source::new(ORIGIN, &[]);
    let auditor = Auditor::new();
    let cp = std::fs::read_to_string(real.path("checkpoint.note")).unwrap();
    let root_b64 = cp.lines().nth(2).unwrap().to_string();

    let o = auditor
        .verify_bundle(&real.bundle(), &["--genesis", &real.genesis])
        .ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[1], format!("origin      {ORIGIN}"), "{o:#?}");
    assert_eq!(lines[2], format!("genesis     {}", real.genesis), "{o:#?}");
    let short = &real.admin_id[..12];
    assert_eq!(
        lines[3],
        format!("admin keys  at genesis: admin {short}; at size 5: admin {short}"),
        "{o:#?}"
    );
    assert!(lines[4].starts_with("checkpoint  size 5, root "), "{o:#?}");
    assert!(lines.iter().any(|l| l.starts_with("trusted     --genesis")));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("state       recorded size 5 in "))
    );

    let j = auditor
        .verify_bundle(&real.bundle(), &["--json"])
        .ok()
        .json();
    let t = &j["trusted"];
    assert_eq!(t["origin"], ORIGIN);
    assert_eq!(t["genesis"], real.genesis.as_str());
    assert_eq!(t["genesis_admins"][0]["id"], real.admin_id.as_str());
    assert_eq!(t["admins"][0]["name"], "admin");
    assert_eq!(t["checkpoint"]["size"], 5);
    assert_eq!(t["checkpoint"]["signer"], real.admin_id.as_str());
    assert_eq!(t["trust_on_first_use"], false);
    // The second time, the auditor state is the root, and the bundle is the tree it recorded.
    assert!(
        t["roots"][0]
            .as_str()
            .unwrap()
            .contains("pins this genesis"),
        "{j}"
    );
    assert_eq!(t["earlier"][0]["proven"], true, "{j}");
    assert_eq!(j["state"]["status"], "unchanged");
    // The root hash printed is the checkpoint's (hex of the note's base64 root).
    let root_hex = t["checkpoint"]["root"].as_str().unwrap();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&root_b64)
        .unwrap();
    assert_eq!(root_hex, hex_of(&bytes));

    // `evl verify` on the ledger says the same things, and that the state moved forward.
    let o = auditor.verify(&real.ledger(), &[]).ok();
    assert!(
        o.stdout.contains(&format!("genesis     {}", real.genesis)),
        "{o:#?}"
    );
    assert!(
        o.stdout.contains(&format!("origin      {ORIGIN}")),
        "{o:#?}"
    );
    assert!(
        o.stdout.contains(
            "earlier     consistent with the tree of size 5 you verified before (state file"
        ),
        "{o:#?}"
    );
    let j = auditor.verify(&real.ledger(), &["--json"]).ok().json();
    assert_eq!(j["report"]["trusted"]["genesis"], real.genesis.as_str());
    assert_eq!(j["report"]["trusted"]["size"], 5);
    assert_eq!(j["report"]["trusted"]["checkpoint"]["size"], 5);
    assert_eq!(j["state"]["status"], "unchanged");
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn trust_on_first_use_warns_loudly_and_records_what_it_trusted() {
    let real = Source::new(ORIGIN, &[]);
    let forged = Source::new(ORIGIN, &[]);
    let auditor = Auditor::new();
    let o = auditor
        .verify_bundle(&real.bundle(), &["--trust-on-first-use"])
        .ok();
    let warning: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(warning.len(), 1, "{o:#?}");
    assert!(
        warning[0].starts_with("evl: WARNING: trusted on first use"),
        "{o:#?}"
    );
    for needle in [ORIGIN, real.genesis.as_str(), &real.admin_id[..12]] {
        assert!(
            warning[0].contains(needle),
            "the warning lacks {needle}: {o:#?}"
        );
    }
    assert!(
        o.stdout
            .contains("trusted     nothing you held: trust on first use")
    );

    // Recorded: 0600 in a 0700 directory, the documented fields.
    let file = auditor.state_file(ORIGIN);
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    let st = auditor.state(ORIGIN);
    assert_eq!(st["format"], "evl-auditor-state/v1");
    assert_eq!(st["origin"], ORIGIN);
    assert_eq!(st["genesis"], real.genesis.as_str());
    assert_eq!(st["pinned_by"], "trust on first use");
    assert_eq!(st["tree"]["size"], 5);
    assert_eq!(st["checkpoint"]["size"], 5);
    assert_eq!(
        st["checkpoint"]["note"].as_str().unwrap(),
        std::fs::read_to_string(real.path("checkpoint.note")).unwrap()
    );

    // From now on the recorded genesis is the root: the forgery is refused even when the
    // auditor asks for trust on first use again, and the real bundle needs no flag.
    for args in [&[][..], &["--trust-on-first-use"][..]] {
        let o = auditor.verify_bundle(&forged.bundle(), args);
        fails(&o, &["a different ledger with the same origin"]);
    }
    let o = auditor.verify_bundle(&real.bundle(), &[]).ok();
    assert!(o.stderr.is_empty(), "no warning once pinned: {o:#?}");
    assert!(o.stdout.contains("pins this genesis"), "{o:#?}");
    // Without state, trust on first use still warns but records nothing.
    let fresh = Auditor::new();
    let o = fresh
        .verify_bundle(&real.bundle(), &["--trust-on-first-use", "--no-state"])
        .ok();
    assert!(o.stderr.contains("WARNING"), "{o:#?}");
    assert!(!fresh.xdg().exists());
}

#[test]
fn a_rolled_back_ledger_is_refused_against_the_auditor_state() {
    let src = Source::new(ORIGIN, &[]);
    let old = src.copy();
    src.add(
        &format!("{EX}/drill-legacy-sidecar-bypass-2026-04-16.toml"),
        "rollback-drill",
    );
    let auditor = Auditor::new();
    // The older copy first, then the newer: the state moves forward, proven consistent.
    let o = auditor.verify(&old.ledger(), &[]).ok();
    assert!(o.stdout.contains("recorded size 5 in"), "{o:#?}");
    assert!(o.stdout.contains("trust on first use"), "{o:#?}");
    let o = auditor.verify(&src.ledger(), &[]).ok();
    assert!(
        o.stdout
            .contains("consistent with the tree of size 5 you verified before"),
        "{o:#?}"
    );
    assert!(o.stdout.contains("recorded size 6 in"), "{o:#?}");
    assert_eq!(auditor.state(ORIGIN)["tree"]["size"], 6);
    let kept = std::fs::read(auditor.state_file(ORIGIN)).unwrap();

    // Someone restores the older copy: the auditor notices without any note of their own.
    let o = auditor.verify(&old.ledger(), &[]);
    fails(&o, &["rolled back or truncated", "state file"]);
    assert_eq!(std::fs::read(auditor.state_file(ORIGIN)).unwrap(), kept);
    let j = auditor.verify(&old.ledger(), &["--json"]).json();
    assert_eq!(j["verified"], false);
    assert!(
        j["report"]["failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["structure"] == "trust"),
        "{j}"
    );
    // Verifying an older copy on purpose: --no-state.
    let o = auditor.verify(&old.ledger(), &["--no-state"]).ok();
    assert!(
        o.stdout.contains("state       not kept (--no-state)"),
        "{o:#?}"
    );
}

#[test]
fn forks_of_an_origin_are_refused_against_the_auditor_state() {
    let a = Source::new(ORIGIN, &[]);
    let b = Source::new(ORIGIN, &[]);
    let auditor = Auditor::new();
    auditor.verify(&a.ledger(), &[]).ok();
    // Another ledger under the same origin: a different genesis.
    let o = auditor.verify(&b.ledger(), &[]);
    fails(&o, &["a different ledger with the same origin"]);
    // The same genesis, diverging after it: same size, another root.
    let fork = a.copy();
    a.add(
        &format!("{EX}/drill-legacy-sidecar-bypass-2026-04-16.toml"),
        "rollback-drill",
    );
    fork.add(
        &format!("{EX}/drill-legacy-grpc-settlement-adapter-2026-04-21.toml"),
        "rollback-drill",
    );
    auditor.verify(&a.ledger(), &[]).ok();
    let o = auditor.verify(&fork.ledger(), &[]);
    fails(&o, &["history was rewritten, or this is a fork"]);
    // A bundle exported from the fork at that size is refused the same way, with no flag.
    let bundle = fork.export("fork.evlb", true);
    let o = auditor.verify_bundle(&bundle, &[]);
    fails(&o, &["history was rewritten, or this is a fork"]);
    // And the honest ledger's own bundle of that size verifies from the state alone.
    let bundle = a.export("next.evlb", true);
    let o = auditor.verify_bundle(&bundle, &[]).ok();
    assert!(
        o.stdout.contains("consistent with the tree of size 6"),
        "{o:#?}"
    );
}

#[test]
fn a_newer_bundle_is_anchored_by_the_state_but_moves_it_only_when_proven() {
    let mut src = Source::new(ORIGIN, &[]);
    let auditor = Auditor::new();
    auditor
        .verify_bundle(&src.bundle(), &["--admin-key", &src.public("admin")])
        .ok();
    assert_eq!(auditor.state(ORIGIN)["tree"]["size"], 5);
    src.add(
        &format!("{EX}/drill-legacy-sidecar-bypass-2026-04-16.toml"),
        "rollback-drill",
    );
    src.checkpoint();
    let newer = src.export("newer.evlb", false);
    let o = auditor.verify_bundle(&newer, &[]).ok();
    assert!(
        o.stdout
            .contains("cannot be proven consistent with the tree of size 5 you verified before")
            && o.stdout.contains("from a bundle alone")
            && o.stdout.contains("evl proof consistency 5 6"),
        "{o:#?}"
    );
    assert!(o.stdout.contains("state       unchanged"), "{o:#?}");
    assert_eq!(auditor.state(ORIGIN)["tree"]["size"], 5);
    // Verifying the ledger proves it, and the state moves to 6 with the new checkpoint.
    auditor.verify(&src.ledger(), &[]).ok();
    let st = auditor.state(ORIGIN);
    assert_eq!(
        (
            st["tree"]["size"].as_u64(),
            st["checkpoint"]["size"].as_u64()
        ),
        (Some(6), Some(6))
    );
}

#[test]
fn a_kept_checkpoint_anchors_a_bundle_of_its_size_only() {
    let src = Source::new(ORIGIN, &[]);
    let forged = Source::new(ORIGIN, &[]);
    let auditor = Auditor::new();
    let note = src.path("kept.note");
    std::fs::copy(src.path("checkpoint.note"), &note).unwrap();
    let note = note.display().to_string();
    let o = auditor
        .verify_bundle(&src.bundle(), &["--checkpoint", &note, "--no-state"])
        .ok();
    assert!(
        o.stdout
            .contains("the tree of size 5 you kept is a prefix of this one"),
        "{o:#?}"
    );
    let o = auditor.verify_bundle(&forged.bundle(), &["--checkpoint", &note, "--no-state"]);
    fails(&o, &["this is a fork"]);
    // A bundle of another size cannot be linked to the kept note: not a root, and said so.
    src.add(
        &format!("{EX}/drill-legacy-sidecar-bypass-2026-04-16.toml"),
        "rollback-drill",
    );
    let newer = src.export("newer.evlb", true);
    let o = auditor.verify_bundle(&newer, &["--checkpoint", &note, "--no-state"]);
    fails(&o, &["from a bundle alone", "no trust root"]);
}

#[test]
fn roots_anchor_a_ledger_too() {
    let src = Source::new(ORIGIN, &[]);
    let other = Source::new(ORIGIN, &[]);
    let auditor = Auditor::new();
    let o = auditor.verify(&src.ledger(), &["--genesis", &other.genesis, "--no-state"]);
    fails(&o, &["a different ledger"]);
    let o = auditor.verify(
        &src.ledger(),
        &["--admin-key", &other.public("admin"), "--no-state"],
    );
    fails(&o, &["--admin-key"]);
    let o = auditor.verify(
        &src.ledger(),
        &["--verifier-key", &other.verifier_key, "--no-state"],
    );
    fails(&o, &["--verifier-key"]);
    let o = auditor
        .verify(
            &src.ledger(),
            &[
                "--genesis",
                &src.genesis,
                "--admin-key",
                &src.public("admin"),
                "--verifier-key",
                &src.verifier_key,
            ],
        )
        .ok();
    for said in ["--genesis", "--admin-key", "--verifier-key"] {
        assert!(
            o.stdout
                .lines()
                .any(|l| l.starts_with(&format!("trusted     {said}"))),
            "{said}: {o:#?}"
        );
    }
    assert!(
        auditor.state(ORIGIN)["pinned_by"]
            .as_str()
            .unwrap()
            .contains("--verifier-key")
    );
}

#[test]
fn damaged_or_open_state_is_one_clear_line() {
    let src = Source::new(ORIGIN, &[]);
    let auditor = Auditor::new();
    auditor.verify(&src.ledger(), &[]).ok();
    let file = auditor.state_file(ORIGIN);
    let good = std::fs::read(&file).unwrap();
    for bad in [
        b"{".to_vec(),
        b"".to_vec(),
        String::from_utf8(good.clone())
            .unwrap()
            .replace("evl-auditor-state/v1", "evl-auditor-state/v9")
            .into_bytes(),
        String::from_utf8(good.clone())
            .unwrap()
            .replace(ORIGIN, "example.org/elsewhere")
            .into_bytes(),
        vec![0xff; 40],
    ] {
        std::fs::write(&file, &bad).unwrap();
        let path = file.display().to_string();
        auditor.verify(&src.ledger(), &[]).refused(
            INPUT,
            &["auditor state file", &path, "damaged", "--no-state"],
        );
        auditor
            .verify_bundle(&src.bundle(), &[])
            .refused(INPUT, &["auditor state file", "damaged"]);
        assert_eq!(
            std::fs::read(&file).unwrap(),
            bad,
            "a damaged state was overwritten"
        );
    }
    std::fs::write(&file, &good).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o620)).unwrap();
    auditor
        .verify(&src.ledger(), &[])
        .refused(REFUSED, &["writable by others"]);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    auditor.verify(&src.ledger(), &[]).ok();
}

#[test]
fn the_state_lives_where_documented() {
    // The file name is the hex BLAKE3 of the origin; FORMAT.md's example, recomputed.
    assert_eq!(
        evl::Digest::of(b"example.org/platform-transport-security-gate").to_hex(),
        "57aca55280f1482f58ead88288d539ffb9c59395e01dbb28c5790040729544f1"
    );
    let src = Source::new(ORIGIN, &[]);
    let name = format!("{}.json", evl::Digest::of(ORIGIN.as_bytes()).to_hex());
    let t = tempfile::tempdir().unwrap();
    // Not through `run`, which gives every command a temporary HOME of its own.
    let verify = |envs: &[(&str, &Path)], args: &[&str]| -> Out {
        let mut c = evl_bin();
        for (k, v) in envs {
            c.env(k, v);
        }
        let o = c
            .arg("--ledger")
            .arg(src.ledger())
            .arg("verify")
            .args(args)
            .output()
            .unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    };
    // No XDG_STATE_HOME: ~/.local/state/evl. A relative XDG_STATE_HOME is ignored (XDG spec).
    let home = t.path().join("home");
    verify(
        &[("HOME", &home), ("XDG_STATE_HOME", Path::new("relative"))],
        &[],
    )
    .ok();
    assert!(home.join(".local/state/evl").join(&name).is_file());
    // XDG_STATE_HOME, then EVL_STATE_DIR, then --state-dir override it.
    let xdg = t.path().join("xdg");
    verify(&[("HOME", &home), ("XDG_STATE_HOME", &xdg)], &[]).ok();
    assert!(xdg.join("evl").join(&name).is_file());
    let env_dir = t.path().join("env-dir");
    verify(&[("HOME", &home), ("EVL_STATE_DIR", &env_dir)], &[]).ok();
    assert!(env_dir.join(&name).is_file());
    let flag_dir = t.path().join("flag-dir");
    let o = verify(
        &[("HOME", &home), ("EVL_STATE_DIR", &env_dir)],
        &["--state-dir", flag_dir.to_str().unwrap()],
    )
    .ok();
    assert!(flag_dir.join(&name).is_file(), "{o:#?}");
    // --no-state reads and writes nothing.
    let none = t.path().join("none");
    verify(
        &[("HOME", &none), ("XDG_STATE_HOME", &none)],
        &["--no-state"],
    )
    .ok();
    assert!(!none.exists());
}

#[test]
fn help_documents_roots_state_and_an_example() {
    for verb in ["verify", "verify-bundle"] {
        let o = run(evl_bin().args([verb, "--help"])).ok();
        for needle in [
            "--genesis",
            "--admin-key",
            "--verifier-key",
            "--state-dir",
            "--no-state",
            "EXAMPLE",
            "XDG_STATE_HOME",
        ] {
            assert!(
                o.stdout.contains(needle),
                "{verb} --help lacks {needle}: {}",
                o.stdout
            );
        }
    }
    let o = run(evl_bin().args(["verify-bundle", "--help"])).ok();
    assert!(o.stdout.contains("--trust-on-first-use"));
}
