//! The hostile-input catalogue (issue 6): each case runs the real `evl` binary on a real
//! ledger in a temp dir and checks one clear stderr line, the documented exit code
//! (`evl --help`, src/error.rs) and that the ledger is unchanged (`evl log --json` and the
//! root `evl verify --json` reports, before and after).
//!
//! Ordinary bad arguments, ambiguous prefixes and the busy ledger are in tests/cli_ledger.rs;
//! tampering with stored bytes is in tests/tamper.rs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;
use evl::entry::{Entry, Payload};
use evl::keys::read_secret;
use evl::store::{Ledger, OpenOptions};
use evl::{checkpoint, merkle};

const INVALID: i32 = 1;
const INPUT: i32 = 2;
const REFUSED: i32 = 3;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

struct Fx {
    _dir: tempfile::TempDir,
    root: PathBuf,
    /// The snapshot every refusal must leave in place, taken at the first refusal.
    baseline: OnceLock<(String, String)>,
}

impl Fx {
    fn ledger(&self) -> PathBuf {
        self.root.join("ledger")
    }
    fn key(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.key"))
    }
    fn public(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.pub"))
    }
    fn run_in(&self, ledger: &Path, args: &[&str]) -> Out {
        let o = Command::cargo_bin("evl")
            .unwrap()
            .env("XDG_STATE_HOME", self.root.join("state"))
            .arg("--ledger")
            .arg(ledger)
            .args(args)
            .output()
            .unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    fn evl(&self, args: &[&str]) -> Out {
        self.run_in(&self.ledger(), args)
    }
    fn ok(&self, args: &[&str]) -> Out {
        let o = self.evl(args);
        assert_eq!(o.code, 0, "evl {args:?}: {}", o.stderr);
        o
    }
    fn keygen(&self, name: &str) {
        let o = Command::cargo_bin("evl")
            .unwrap()
            .args(["keygen", name, "--dir"])
            .arg(&self.root)
            .output()
            .unwrap();
        assert!(o.status.success());
    }
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.root.join(name);
        fs::write(&p, bytes).unwrap();
        p.display().to_string()
    }
    /// The whole log and the verified root: equal snapshots mean nothing was appended.
    fn snapshot(&self) -> (String, String) {
        let log = self.ok(&["log", "--json"]).stdout;
        let v: serde_json::Value =
            serde_json::from_str(&self.ok(&["verify", "--json"]).stdout).unwrap();
        assert_eq!(v["verified"], true);
        (log, v["report"]["root"].as_str().unwrap().to_string())
    }
    /// Runs `args`, expecting refusal with `code`, one stderr line holding every needle, and
    /// an unchanged ledger.
    fn refused(&self, args: &[&str], code: i32, needles: &[&str]) {
        let before = self.baseline.get_or_init(|| self.snapshot()).clone();
        let o = self.evl(args);
        assert_eq!(
            o.code, code,
            "evl {args:?}: exit {} stderr {}",
            o.code, o.stderr
        );
        let lines: Vec<&str> = o.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "evl {args:?}: expected one stderr line: {}",
            o.stderr
        );
        assert!(lines[0].starts_with("evl: "), "{}", lines[0]);
        for n in needles {
            assert!(
                lines[0].contains(n),
                "evl {args:?}: '{}' lacks '{n}'",
                lines[0]
            );
        }
        assert!(o.stdout.is_empty(), "evl {args:?} printed {}", o.stdout);
        assert_eq!(self.snapshot(), before, "evl {args:?} changed the ledger");
    }
}

/// A fresh copy of a ledger with an admin, an owner, a reviewer and a revoked owner, one
/// artifact and a stored checkpoint; built once per test binary (`which` 0 or 1: two ledgers
/// with their own keys).
fn fixture_n(which: usize) -> Fx {
    static TEMPLATES: [OnceLock<Fx>; 2] = [OnceLock::new(), OnceLock::new()];
    let t = TEMPLATES[which].get_or_init(build_fixture);
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&t.root, dir.path());
    Fx {
        root: dir.path().to_path_buf(),
        _dir: dir,
        baseline: OnceLock::new(),
    }
}

fn fixture() -> Fx {
    fixture_n(0)
}

fn build_fixture() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let fx = Fx {
        root: dir.path().to_path_buf(),
        _dir: dir,
        baseline: OnceLock::new(),
    };
    for k in ["admin", "owner", "reviewer", "gone", "stranger"] {
        fx.keygen(k);
    }
    let (admin, a_pub) = (fx.key("admin"), fx.public("admin"));
    fx.ok(&[
        "init",
        "--origin",
        "example.org/hostile",
        "--admin",
        a_pub.to_str().unwrap(),
        "--key",
        admin.to_str().unwrap(),
    ]);
    for (name, role) in [
        ("owner", "owner"),
        ("reviewer", "reviewer"),
        ("gone", "owner"),
    ] {
        fx.ok(&[
            "key",
            "add",
            name,
            "--pub",
            fx.public(name).to_str().unwrap(),
            "--role",
            role,
            "--key",
            admin.to_str().unwrap(),
        ]);
    }
    let f = fx.file(
        "inventory.csv",
        b"namespace,workload\npayments,ledger-sync\n",
    );
    fx.ok(&[
        "add",
        &f,
        "--kind",
        "inventory-export",
        "--tier",
        "authoritative",
        "--key",
        fx.key("owner").to_str().unwrap(),
    ]);
    fx.ok(&[
        "key",
        "revoke",
        "gone",
        "--reason",
        "left the team",
        "--key",
        admin.to_str().unwrap(),
    ]);
    fx.ok(&["checkpoint", "--key", admin.to_str().unwrap()]);
    fx
}

fn add_args<'a>(file: &'a str, key: &'a str) -> Vec<&'a str> {
    vec![
        "add",
        file,
        "--kind",
        "drill",
        "--tier",
        "operational",
        "--key",
        key,
    ]
}

#[test]
fn oversized_artifact_is_refused_before_reading() {
    let fx = fixture();
    let big = fx.root.join("huge.bin");
    // Sparse: one byte over the limit costs no disk.
    fs::File::create(&big)
        .unwrap()
        .set_len(evl::store::MAX_ARTIFACT_BYTES as u64 + 1)
        .unwrap();
    let owner = fx.key("owner");
    let limit = evl::store::MAX_ARTIFACT_BYTES.to_string();
    fx.refused(
        &add_args(big.to_str().unwrap(), owner.to_str().unwrap()),
        INPUT,
        &["huge.bin", "over the", &limit],
    );
    // At exactly the limit the size check passes (the bytes are read, then stored).
    // Not exercised here: it would write 64 MiB into the test's temp dir.
}

#[test]
fn claimed_times_beyond_the_skew_limit_are_refused() {
    let fx = fixture();
    let f = fx.file("drill.toml", b"drill = true\n");
    let owner = fx.key("owner");
    let owner = owner.to_str().unwrap();
    for at in ["2099-01-01", "9999-12-31T23:59:59Z"] {
        let mut args = add_args(&f, owner);
        args.extend(["--at", at]);
        fx.refused(&args, INPUT, &["ahead of this machine's clock"]);
    }
    // Far-past claims are claims, not refused: the threat model says times are claims.
}

#[test]
fn secret_key_files_open_to_others_are_refused() {
    let fx = fixture();
    let f = fx.file("drill.toml", b"drill = true\n");
    for mode in [0o644, 0o640, 0o604] {
        let k = fx.root.join(format!("open-{mode:o}.key"));
        fs::copy(fx.key("owner"), &k).unwrap();
        fs::set_permissions(&k, fs::Permissions::from_mode(mode)).unwrap();
        fx.refused(&add_args(&f, k.to_str().unwrap()), REFUSED, &["chmod 600"]);
    }
}

#[test]
fn signatures_by_unknown_revoked_and_roleless_keys_are_refused() {
    let fx = fixture();
    let f = fx.file("drill.toml", b"drill = true\n");
    for (key, needle) in [
        ("stranger", "not registered"),
        ("gone", "revoked"),
        ("reviewer", "lacks the owner role"),
    ] {
        let k = fx.key(key);
        fx.refused(&add_args(&f, k.to_str().unwrap()), REFUSED, &[needle]);
    }
    // A revoked key's entry claiming a time before its revocation is still refused:
    // revocation is by log position, and claimed times are only claims.
    let k = fx.key("gone");
    let mut args = add_args(&f, k.to_str().unwrap());
    args.extend(["--at", "2020-01-01"]);
    fx.refused(&args, REFUSED, &["revoked"]);
}

/// An old signature replayed on new content, an entry replayed as is, an entry of another
/// ledger spliced in, and a body re-signed by a non-signer: `append_signed` refuses each and
/// appends nothing.
#[test]
fn replayed_and_spliced_signatures_are_refused() {
    let fx = fixture();
    let other = fixture_n(1); // another ledger, other keys
    let before = fx.snapshot();
    {
        let ledger = Ledger::open(&fx.ledger(), &OpenOptions::default()).unwrap();
        let size = ledger.size().unwrap();
        let artifact_at = (0..size)
            .find(|i| matches!(ledger.entry(*i).unwrap().body.payload, Payload::Artifact(_)))
            .unwrap();
        let stored = ledger.entry(artifact_at).unwrap();
        let blob = match &stored.body.payload {
            Payload::Artifact(m) => ledger.blob(&m.content).unwrap().unwrap(),
            _ => unreachable!(),
        };

        // New content, old signature.
        let mut forged = stored.clone();
        if let Payload::Artifact(m) = &mut forged.body.payload {
            m.kind = "rollback-drill".into();
            m.valid_until = Some(evl::timestamp::Timestamp(4_102_444_800));
        }
        let e = ledger
            .append_signed(vec![(forged, vec![blob.clone()])])
            .unwrap_err();
        assert_eq!(e.exit_code(), REFUSED, "{e}");
        assert!(e.to_string().contains("signature does not verify"), "{e}");

        // New bytes under the old signature and metadata.
        let evil = b"namespace,workload\npayments,evil\n".to_vec();
        let mut forged = stored.clone();
        if let Payload::Artifact(m) = &mut forged.body.payload {
            m.content = evl::Digest::of(&evil);
            m.size = evil.len() as u64;
        }
        let e = ledger
            .append_signed(vec![(forged, vec![evil])])
            .unwrap_err();
        assert_eq!(e.exit_code(), REFUSED, "{e}");

        // The same entry again.
        let e = ledger
            .append_signed(vec![(stored.clone(), vec![blob.clone()])])
            .unwrap_err();
        assert!(e.to_string().contains("already in the ledger"), "{e}");

        // The same bytes with a claimed-time change (a new id, the old signature).
        let mut forged = stored.clone();
        forged.body.claimed_at = forged.body.claimed_at.plus_seconds(1);
        assert!(ledger.append_signed(vec![(forged, vec![blob])]).is_err());

        // An entry from another ledger, validly signed there.
        let theirs = Ledger::open(&other.ledger(), &OpenOptions::default()).unwrap();
        let n = theirs.size().unwrap();
        let spliced: Entry = (0..n)
            .map(|i| theirs.entry(i).unwrap())
            .find(|e| matches!(e.body.payload, Payload::Artifact(_)))
            .unwrap();
        let blob = match &spliced.body.payload {
            Payload::Artifact(m) => theirs.blob(&m.content).unwrap().unwrap(),
            _ => unreachable!(),
        };
        let e = ledger
            .append_signed(vec![(spliced, vec![blob])])
            .unwrap_err();
        assert!(
            e.to_string().contains("belongs to ledger") || e.to_string().contains("not registered"),
            "{e}"
        );

        // A batch with one bad entry appends none of the good ones.
        let owner = read_secret(&fx.key("owner")).unwrap();
        let mut good = stored.clone();
        if let Payload::Artifact(m) = &mut good.body.payload {
            m.file_name = "fresh.csv".into();
        }
        let good = Entry::sign(good.body, &owner);
        let good_blob = ledger
            .blob(&match &good.body.payload {
                Payload::Artifact(m) => m.content,
                _ => unreachable!(),
            })
            .unwrap()
            .unwrap();
        let mut bad = good.clone();
        bad.body.claimed_at = bad.body.claimed_at.plus_seconds(5);
        let e = ledger
            .append_signed(vec![
                (good, vec![good_blob.clone()]),
                (bad, vec![good_blob]),
            ])
            .unwrap_err();
        assert_eq!(e.exit_code(), REFUSED, "{e}");
        assert_eq!(ledger.size().unwrap(), size);
    }
    assert_eq!(fx.snapshot(), before);
}

fn verify_with(fx: &Fx, note: &Path, needle: &str) {
    let before = fx.baseline.get_or_init(|| fx.snapshot()).clone();
    let o = fx.evl(&["verify", "--checkpoint", note.to_str().unwrap()]);
    assert_eq!(
        o.code, INVALID,
        "verify --checkpoint: {} {}",
        o.stdout, o.stderr
    );
    let fail: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.starts_with("FAIL "))
        .collect();
    assert_eq!(fail.len(), 1, "expected one FAIL line: {}", o.stderr);
    assert!(fail[0].contains(needle), "'{}' lacks '{needle}'", fail[0]);
    let named = format!("checkpoint {}", note.display());
    assert!(
        fail[0].contains(&named),
        "'{}' does not name {named}",
        fail[0]
    );
    assert!(
        o.stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("evl: verification failed")
    );
    assert_eq!(fx.snapshot(), before);
}

#[test]
fn auditor_checkpoints_for_another_origin_or_by_a_non_admin_fail_verify() {
    let fx = fixture();
    let ledger_size = || -> u64 {
        let v: serde_json::Value =
            serde_json::from_str(&fx.ok(&["verify", "--json"]).stdout).unwrap();
        v["report"]["size"].as_u64().unwrap()
    };
    let size = ledger_size();
    let root = {
        let l = Ledger::open(&fx.ledger(), &OpenOptions::default()).unwrap();
        l.root(size).unwrap()
    };

    // The right tree, signed by this ledger's admin, but for another origin.
    let admin = read_secret(&fx.key("admin")).unwrap();
    let p = fx.root.join("other-origin.note");
    fs::write(
        &p,
        checkpoint::sign("example.org/elsewhere", size, root, &admin),
    )
    .unwrap();
    verify_with(&fx, &p, "no signature by an admin key");

    // Another ledger's real checkpoint.
    let other = fixture_n(1);
    let p = other.root.join("theirs.note");
    other.ok(&[
        "checkpoint",
        "--key",
        other.key("admin").to_str().unwrap(),
        "-o",
        p.to_str().unwrap(),
    ]);
    verify_with(
        &fx,
        &p,
        "carries no signature by an admin key of this ledger",
    );

    // The right origin and tree, signed by the owner (registered, not an admin).
    let owner = read_secret(&fx.key("owner")).unwrap();
    let p = fx.root.join("owner.note");
    fs::write(
        &p,
        checkpoint::sign("example.org/hostile", size, root, &owner),
    )
    .unwrap();
    verify_with(&fx, &p, "no signature by an admin key");

    // The admin's signature over a root that is not this ledger's.
    let p = fx.root.join("forged-root.note");
    let forged = merkle::leaf_hash(b"another history");
    fs::write(
        &p,
        checkpoint::sign("example.org/hostile", size, forged, &admin),
    )
    .unwrap();
    verify_with(&fx, &p, "history was rewritten");

    // A well-signed note whose body was edited afterwards.
    let good = checkpoint::sign("example.org/hostile", size, root, &admin);
    let text = String::from_utf8(good).unwrap();
    let edited = text.replacen(&format!("\n{size}\n"), &format!("\n{}\n", size - 1), 1);
    let p = fx.root.join("edited.note");
    fs::write(&p, edited).unwrap();
    verify_with(&fx, &p, "does not verify");
}

/// An auditor kept a checkpoint; the ledger shown later is an older copy (rolled back).
#[test]
fn a_rolled_back_ledger_fails_against_a_newer_auditor_checkpoint() {
    let fx = fixture();
    let old_copy = fx.root.join("old-copy");
    copy_dir(&fx.ledger(), &old_copy);
    let f = fx.file("later.toml", b"later = true\n");
    fx.ok(&add_args(&f, fx.key("owner").to_str().unwrap()));
    let note = fx.root.join("auditor.note");
    fx.ok(&[
        "checkpoint",
        "--key",
        fx.key("admin").to_str().unwrap(),
        "-o",
        note.to_str().unwrap(),
    ]);

    // The current ledger is consistent with the auditor's note …
    let o = fx.evl(&["verify", "--checkpoint", note.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    // … the rolled-back copy is not, and says so.
    let o = fx.run_in(
        &old_copy,
        &["verify", "--checkpoint", note.to_str().unwrap()],
    );
    assert_eq!(o.code, INVALID, "{}", o.stderr);
    assert!(
        o.stderr.contains("rolled back or truncated"),
        "{}",
        o.stderr
    );
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Importer inputs built to exhaust memory or stack: each is refused with one line naming the
/// file, quickly, and appends nothing.
#[test]
fn hostile_importer_inputs_are_refused() {
    let fx = fixture();
    let owner = fx.key("owner");
    let owner = owner.to_str().unwrap();
    // YAML "billion laughs": nine levels of nine aliases.
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        let refs = vec![format!("*{prev}"); 9].join(",");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let bomb = fx.file("bomb.yaml", bomb.as_bytes());
    // 10,000 nested sequences (the limit is 64). Rejection cost grows with depth before the
    // limit bites: 1,000,000 levels take ~13 s and ~260 MB in a release build (docs/RELIABILITY.md).
    let deep = fx.file(
        "deep.yaml",
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).as_bytes(),
    );
    // A CSV header of a million columns.
    let wide: String = (0..1_000_000).map(|i| format!("c{i},")).collect::<String>() + "\n";
    let wide = fx.file("wide.csv", wide.as_bytes());
    for (importer, file, name) in [
        ("mesh", &bomb, "bomb.yaml"),
        ("mesh", &deep, "deep.yaml"),
        ("inventory", &wide, "wide.csv"),
    ] {
        let started = std::time::Instant::now();
        fx.refused(&["ingest", importer, file, "--key", owner], INPUT, &[name]);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{name} took {:?}",
            started.elapsed()
        );
    }
}
