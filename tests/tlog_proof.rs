//! C2SP tlog-proof@v1 files through the real binary: `evl proof inclusion --format tlog-proof`
//! writes them, `evl proof verify` checks them offline from a trust root the caller holds, and
//! an independent verifier written from the specifications (tests/independent/
//! check_tlog_proof.py, Python `cryptography` + hashlib) agrees on every file, valid or
//! tampered (docs/FORMAT.md §"tlog-proof files").

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use common::{Fixture, parts};
use ed25519_dalek::Signer as _;

const INVALID: i32 = 1;
const INPUT: i32 = 2;

fn python() -> PathBuf {
    parts::python_with(&["cryptography>=41", "blake3>=0.4"], &[])
}

/// Runs the independent verifier; returns (exit code, its output line).
fn independent(file: &Path, vkeys: &[&str], entry: Option<&str>) -> (i32, String) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/independent/check_tlog_proof.py"
    );
    let mut c = Command::new(python());
    c.arg(script).arg(file);
    for v in vkeys {
        c.args(["--vkey", v]);
    }
    if let Some(e) = entry {
        c.args(["--entry-id", e]);
    }
    let o = c.output().expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}

/// A copy of the rich ledger with a fresh checkpoint of its whole tree; its verifier key.
fn checkpointed() -> (Fixture, String) {
    let f = common::rich().copy();
    let key = f.key("admin");
    let cp = f
        .evl(["checkpoint", "--json", "--key", key.to_str().unwrap()])
        .ok()
        .json();
    (f, cp["verifier_key"].as_str().unwrap().to_string())
}

fn write_proof(f: &Fixture, entry: &str, extra: &[&str]) -> PathBuf {
    let out = f.path(&format!("{}.tlog-proof", &entry[..12]));
    let mut args = vec![
        "proof",
        "inclusion",
        entry,
        "--format",
        "tlog-proof",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = f.evl(args).ok();
    assert!(o.stdout.is_empty(), "{o:#?}");
    out
}

fn verify(f: &Fixture, file: &Path, roots: &[&str]) -> common::Out {
    let mut args = vec!["proof", "verify", file.to_str().unwrap()];
    args.extend_from_slice(roots);
    f.evl(args)
}

#[test]
fn proofs_verify_in_evl_and_in_an_independent_verifier() {
    let (f, vkey) = checkpointed();
    let admin = f.public("admin");
    let log = f.evl(["log", "--json"]).ok().ndjson();
    let entries = log.as_array().unwrap();
    assert_eq!(entries.len() as u64, common::RICH_SIZE);
    // The first, a middle, an odd and the last leaf of a 17-leaf tree: paths of every shape.
    for i in [0usize, 5, 8, 15, 16] {
        let id = entries[i]["id"].as_str().unwrap();
        let file = write_proof(&f, id, &[]);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "), "{text}");
        assert!(text.contains(&format!("\nindex {i}\n")), "{text}");
        assert!(text.contains("\n\nexample.org/evl-test\n17\n"), "{text}");
        let o = verify(
            &f,
            &file,
            &[
                "--verifier-key",
                &vkey,
                "--entry",
                id,
                "--no-state",
                "--json",
            ],
        )
        .ok();
        let j = o.json();
        assert_eq!(j["verified"], true);
        assert_eq!(j["index"], i as u64);
        assert_eq!(j["entry"], id);
        assert_eq!(j["size"], 17);
        verify(
            &f,
            &file,
            &["--admin-key", admin.to_str().unwrap(), "--no-state"],
        )
        .ok();
        let (code, line) = independent(&file, &[&vkey], Some(id));
        assert_eq!(code, 0, "independent verifier refused entry {i}: {line}");
        assert!(line.contains(&format!("index {i} of example.org/evl-test at size 17")));
    }
    // The proof of one entry is not a proof of another.
    let file = write_proof(&f, entries[5]["id"].as_str().unwrap(), &[]);
    let other = entries[6]["id"].as_str().unwrap();
    verify(
        &f,
        &file,
        &["--verifier-key", &vkey, "--entry", other, "--no-state"],
    )
    .refused(INVALID, &["not ", other]);
    assert_eq!(independent(&file, &[&vkey], Some(other)).0, 1);
}

/// Every way of altering a proof file is refused by evl and by the independent verifier.
#[test]
fn tampered_proofs_are_refused_by_both_verifiers() {
    let (f, vkey) = checkpointed();
    let id = f.evl(["log", "--json"]).ok().ndjson()[9]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let file = write_proof(&f, &id, &[]);
    let good = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = good.split('\n').collect();
    let flip_b64 = |s: &str, at: usize| -> String {
        let mut raw = base64::engine::general_purpose::STANDARD.decode(s).unwrap();
        raw[at] ^= 1;
        base64::engine::general_purpose::STANDARD.encode(raw)
    };
    let extra = lines[1].strip_prefix("extra ").unwrap();
    let hash0 = lines[3];
    let root_line = lines
        .iter()
        .position(|l| *l == "17")
        .map(|i| lines[i + 1])
        .unwrap();
    let sig_line = lines.iter().find(|l| l.starts_with("— ")).unwrap();
    let sig = sig_line.rsplit(' ').next().unwrap();
    let cases: Vec<(&str, String)> = vec![
        (
            "a byte of the entry",
            good.replacen(extra, &flip_b64(extra, 40), 1),
        ),
        ("the index", good.replacen("index 9\n", "index 8\n", 1)),
        ("a proof hash", good.replacen(hash0, &flip_b64(hash0, 0), 1)),
        (
            "a dropped proof hash",
            good.replacen(&format!("{hash0}\n"), "", 1),
        ),
        (
            "the checkpoint's root",
            good.replacen(root_line, &flip_b64(root_line, 3), 1),
        ),
        (
            "the checkpoint's size",
            good.replacen("\n17\n", "\n18\n", 1),
        ),
        ("the signature", good.replacen(sig, &flip_b64(sig, 10), 1)),
        ("the header", good.replacen("@v1", "@v2", 1)),
    ];
    for (what, text) in cases {
        assert_ne!(text, good, "{what}: the mutation changed nothing");
        let bad = f.path("bad.tlog-proof");
        std::fs::write(&bad, &text).unwrap();
        let o = verify(&f, &bad, &["--verifier-key", &vkey, "--no-state"]);
        o.refused(INVALID, &["does not verify"]);
        let (code, line) = independent(&bad, &[&vkey], None);
        assert_eq!(code, 1, "independent verifier accepted {what}: {line}");
    }
}

#[test]
fn a_proof_verifies_only_from_a_root_the_caller_holds() {
    let (f, vkey) = checkpointed();
    let id = f.id("a").to_string();
    let file = write_proof(&f, &id, &[]);
    // No root at all.
    verify(&f, &file, &["--no-state"]).refused(INVALID, &["no trust root"]);
    // Another ledger's key, even for the same origin.
    let forger = common::build_rich();
    let fcp = forger
        .evl([
            "checkpoint",
            "--json",
            "--key",
            forger.key("admin").to_str().unwrap(),
        ])
        .ok()
        .json();
    let fvkey = fcp["verifier_key"].as_str().unwrap();
    verify(&f, &file, &["--verifier-key", fvkey, "--no-state"])
        .refused(INVALID, &["no valid signature"]);
    assert_eq!(independent(&file, &[fvkey], None).0, 1);
    verify(
        &f,
        &file,
        &[
            "--admin-key",
            forger.public("admin").to_str().unwrap(),
            "--no-state",
        ],
    )
    .refused(INVALID, &["--admin-key"]);
    // The auditor state of an `evl verify` of this ledger at the same size anchors it.
    f.evl(["verify"]).ok();
    let o = verify(&f, &file, &[]).ok();
    assert!(
        o.stdout.contains("auditor state records for size 17"),
        "{o:#?}"
    );
    // A state that records another tree at that size is a fork.
    let forked = forger.copy();
    let fid = forged_id(&forked);
    let ffile = write_proof(&forked, &fid, &[]);
    let o = run_with_state(&f, &ffile);
    o.refused(INVALID, &["forked"]);
    // A kept checkpoint note of the same size anchors it; of the forger's tree, refuses.
    let kept = f.path("auditor.note");
    verify(
        &f,
        &file,
        &["--checkpoint", kept.to_str().unwrap(), "--no-state"],
    )
    .ok();
    verify(
        &f,
        &ffile,
        &["--checkpoint", kept.to_str().unwrap(), "--no-state"],
    )
    .refused(INVALID, &["forked"]);
    // An unreadable file is an input error.
    verify(&f, &f.path("absent.tlog-proof"), &["--verifier-key", &vkey])
        .refused(INPUT, &["absent.tlog-proof"]);
}

fn forged_id(f: &Fixture) -> String {
    f.evl(["checkpoint", "--key", f.key("admin").to_str().unwrap()])
        .ok();
    f.id("b").to_string()
}

/// `evl proof verify` of `file` with `f`'s auditor state and nothing else.
fn run_with_state(f: &Fixture, file: &Path) -> common::Out {
    verify(f, file, &[])
}

/// A checkpoint that carries a witness cosignature as well (an extra signature line under
/// another key name) proves as well as the log's own: both verifiers ignore lines of keys
/// they were not given and check the one they were.
#[test]
fn a_cosigned_checkpoint_is_carried_verbatim() {
    let (f, vkey) = checkpointed();
    let note = std::fs::read(f.path("auditor.note")).unwrap();
    let text = String::from_utf8(note).unwrap();
    let body = &text[..text.find("\n\n").unwrap() + 1];
    let witness = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let name = "witness.example/w1";
    let mut kh = sha2_like(name, witness.verifying_key().as_bytes());
    kh.extend_from_slice(&witness.sign(body.as_bytes()).to_bytes());
    let cosigned = format!(
        "{text}— {name} {}\n",
        base64::engine::general_purpose::STANDARD.encode(&kh)
    );
    let note_file = f.path("cosigned.note");
    std::fs::write(&note_file, &cosigned).unwrap();
    let file = write_proof(
        &f,
        f.id("c"),
        &["--checkpoint", note_file.to_str().unwrap()],
    );
    let proof = std::fs::read_to_string(&file).unwrap();
    assert!(proof.ends_with(&cosigned), "{proof}");
    verify(&f, &file, &["--verifier-key", &vkey, "--no-state"]).ok();
    assert_eq!(independent(&file, &[&vkey], Some(f.id("c"))).0, 0);
    // A note of another ledger's tree is refused at export.
    let wrong = f.path("wrong.note");
    std::fs::write(&wrong, cosigned.replacen("\n17\n", "\n16\n", 1)).unwrap();
    f.evl([
        "proof",
        "inclusion",
        f.id("c"),
        "--format",
        "tlog-proof",
        "--checkpoint",
        wrong.to_str().unwrap(),
    ])
    .refused(INPUT, &["not a checkpoint of this ledger"]);
}

/// The 4-byte signed-note key id of an Ed25519 key: SHA-256(name || "\n" || 0x01 || key)[:4].
fn sha2_like(name: &str, key: &[u8; 32]) -> Vec<u8> {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n\x01");
    h.update(key);
    h.finalize()[..4].to_vec()
}

#[test]
fn a_ledger_without_a_covering_checkpoint_writes_no_proof() {
    let f = common::rich().copy();
    let key = f.key("owner-v2");
    let extra = f.file("late.txt", b"late");
    f.evl([
        "add",
        extra.to_str().unwrap(),
        "--kind",
        "note",
        "--tier",
        "operational",
        "--key",
        key.to_str().unwrap(),
    ])
    .ok();
    let last = f.evl(["log", "--json"]).ok().ndjson();
    let id = last.as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    f.evl(["proof", "inclusion", &id, "--format", "tlog-proof"])
        .refused(INPUT, &["evl checkpoint"]);
    f.evl([
        "proof",
        "inclusion",
        f.id("a"),
        "--format",
        "tlog-proof",
        "--size",
        "3",
    ])
    .refused(INPUT, &["--size 3"]);
}

/// The committed vector (docs/FORMAT.md §"tlog-proof files"): entry 9 of the engine-2
/// flagship ledger against its checkpoint of size 42, with the verifier key computed from
/// `keys/mesh-admin.pub` by the signed-note rule.
#[test]
fn the_committed_vector_verifies_in_both() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/tlog-proof");
    let file = dir.join("flagship-entry-9.tlog-proof");
    let vkey = std::fs::read_to_string(dir.join("flagship.vkey")).unwrap();
    let vkey = vkey.trim();
    let id = "4867e71329c9105d5727c229fb1afd47c48f2f14d24cad20eb72ccb3cc82d228";
    let o = common::run(
        common::evl_bin()
            .args(["proof", "verify"])
            .arg(&file)
            .args([
                "--verifier-key",
                vkey,
                "--entry",
                id,
                "--no-state",
                "--json",
            ]),
    )
    .ok();
    let j = o.json();
    assert_eq!(j["index"], 9);
    assert_eq!(j["size"], 42);
    assert_eq!(
        j["root_hash"],
        "3205250e57d9fb0eec24f31939940366d01d8df1b58269d2c6c2b171ca818aa6"
    );
    let (code, line) = independent(&file, &[vkey], Some(id));
    assert_eq!(code, 0, "{line}");
    // The admin key file the verifier key was computed from anchors it as well.
    let admin = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/mesh-admin.pub");
    common::run(
        common::evl_bin()
            .args(["proof", "verify"])
            .arg(&file)
            .arg("--admin-key")
            .arg(admin)
            .arg("--no-state"),
    )
    .ok();
}
