//! Sign anywhere, append once (issue 15, item 1), through the real binary: signers on their own
//! key directories, who never touch the ledger directory, sign with `--offline -o FILE`
//! knowing only the ledger's origin and genesis id; a third process appends their files with
//! `evl submit`; verify passes; resubmitting is idempotent; a tampered file, a file for
//! another ledger, and a revoked key's file are refused with one line and the log unchanged
//! byte for byte (docs/FORMAT.md §"Submission files").

mod common;

use std::path::{Path, PathBuf};

use common::{Out, evl_bin, run};
use tempfile::TempDir;

const EX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mtls-cutover");
const ORIGIN: &str = "example.org/remote-submit";
const INPUT: i32 = 2;
const REFUSED: i32 = 3;

/// Three places: the ledger's machine, and two signers' laptops with nothing but their keys.
struct World {
    _root: TempDir,
    ledger_host: PathBuf,
    laptop1: PathBuf,
    laptop2: PathBuf,
    genesis: String,
}

impl World {
    fn ledger(&self) -> PathBuf {
        self.ledger_host.join("ledger")
    }

    /// `evl ARGS` run on the ledger's machine.
    fn host(&self, args: &[&str]) -> Out {
        run(evl_bin()
            .env("XDG_STATE_HOME", self.ledger_host.join("state"))
            .arg("--ledger")
            .arg(self.ledger())
            .args(args)
            .current_dir(&self.ledger_host))
    }

    /// `evl ARGS --offline …` run on a laptop, whose `--ledger` points nowhere: signing
    /// offline must not need (or look for) a ledger.
    fn laptop(&self, laptop: &Path, args: &[&str], out: &str) -> Out {
        run(evl_bin()
            .env("EVL_LEDGER", laptop.join("no-ledger-here"))
            .args(args)
            .args([
                "--offline",
                "--origin",
                ORIGIN,
                "--genesis",
                &self.genesis,
                "-o",
            ])
            .arg(laptop.join(out))
            .current_dir(laptop))
    }

    fn log_bytes(&self) -> Vec<u8> {
        std::fs::read(self.ledger().join("log")).unwrap()
    }
}

fn keygen(dir: &Path, name: &str) -> String {
    let o = run(evl_bin().args(["keygen", name, "--dir"]).arg(dir)).ok();
    o.stdout
        .lines()
        .find_map(|l| l.strip_prefix("key id "))
        .unwrap()
        .to_string()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The id printed by an offline signing run (`signed KIND ID`).
fn signed_id(o: &Out) -> String {
    o.stdout
        .lines()
        .find_map(|l| l.strip_prefix("signed "))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no signed id: {o:#?}"))
        .to_string()
}

fn world() -> World {
    let root = tempfile::tempdir().unwrap();
    let ledger_host = root.path().join("host");
    let laptop1 = root.path().join("laptop1");
    let laptop2 = root.path().join("laptop2");
    for d in [&ledger_host, &laptop1, &laptop2] {
        std::fs::create_dir_all(d).unwrap();
    }
    let hk = ledger_host.join("keys");
    keygen(&hk, "admin");
    keygen(&hk, "owner");
    // The signers make their keys on their laptops; only the public halves travel.
    keygen(&laptop1, "sec");
    keygen(&laptop2, "rev");
    keygen(&laptop2, "owner2");
    let mut w = World {
        _root: root,
        ledger_host,
        laptop1,
        laptop2,
        genesis: String::new(),
    };
    let out = w
        .host(&[
            "init",
            "--origin",
            ORIGIN,
            "--admin",
            p(&hk.join("admin.pub")),
            "--key",
            p(&hk.join("admin.key")),
        ])
        .ok();
    w.genesis = out.stdout.trim().rsplit(' ').next().unwrap().to_string();
    assert_eq!(w.genesis.len(), 64, "{out:#?}");
    for (name, pubfile, role) in [
        ("owner", hk.join("owner.pub"), "owner"),
        ("sec", w.laptop1.join("sec.pub"), "security-signer"),
        ("rev", w.laptop2.join("rev.pub"), "reviewer"),
        ("owner2", w.laptop2.join("owner2.pub"), "owner"),
    ] {
        w.host(&[
            "key",
            "add",
            name,
            "--pub",
            p(&pubfile),
            "--role",
            role,
            "--key",
            p(&hk.join("admin.key")),
        ])
        .ok();
    }
    w
}

fn ledger_files(w: &World) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(d: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    let mut v = vec![];
    walk(&w.ledger(), &mut v);
    v.sort();
    v
}

#[test]
fn signers_off_the_ledger_sign_files_a_third_process_submits_them_and_verify_passes() {
    let w = world();
    let hk = w.ledger_host.join("keys");
    // Evidence added on the ledger's machine, which the signers then speak about.
    let drill = format!("{EX}/drill-envoy-policy-reversal-2026-04-15.toml");
    let out = w
        .host(&[
            "add",
            &drill,
            "--kind",
            "rollback-drill",
            "--tier",
            "excluded",
            "--key",
            p(&hk.join("owner.key")),
            "--json",
        ])
        .ok();
    let drill_id = out.json()[0]["id"].as_str().unwrap().to_string();
    let before = ledger_files(&w);

    // Laptop 1: an acknowledgment. Laptop 2: an annotation, a promotion and new evidence
    // with its bytes, all in their own directories.
    let ack = w
        .laptop(
            &w.laptop1,
            &[
                "ack",
                "--topic",
                "east-west-authorization-policy",
                "--subject",
                &drill_id,
                "--namespace",
                "data-platform",
                "--statement",
                "acknowledged from a laptop",
                "--key",
                p(&w.laptop1.join("sec.key")),
            ],
            "ack.evls",
        )
        .ok();
    let ack_id = signed_id(&ack);
    let ann = w
        .laptop(
            &w.laptop2,
            &[
                "annotate",
                &drill_id,
                "--kind",
                "accept",
                "--text",
                "drill reviewed",
                "--key",
                p(&w.laptop2.join("rev.key")),
            ],
            "annotate.evls",
        )
        .ok();
    let promote = w
        .laptop(
            &w.laptop2,
            &[
                "promote",
                &drill_id,
                "--reason",
                "reviewed",
                "--key",
                p(&w.laptop2.join("owner2.key")),
            ],
            "promote.evls",
        )
        .ok();
    let evidence = w.laptop2.join("gate.toml");
    std::fs::copy(format!("{EX}/gate.toml"), &evidence).unwrap();
    let add = w
        .laptop(
            &w.laptop2,
            &[
                "add",
                p(&evidence),
                "--kind",
                "gate-definition",
                "--tier",
                "authoritative",
                "--key",
                p(&w.laptop2.join("owner2.key")),
            ],
            "add.evls",
        )
        .ok();
    let gate_id = signed_id(&add);
    // Signing touched nothing of the ledger.
    assert_eq!(ledger_files(&w), before);
    assert!(!w.laptop1.join("no-ledger-here").exists());

    // A prefix cannot be resolved without a ledger: offline signing asks for full digests.
    let short = w.laptop(
        &w.laptop1,
        &[
            "ack",
            "--topic",
            "t",
            "--subject",
            &drill_id[..8],
            "--statement",
            "s",
            "--key",
            p(&w.laptop1.join("sec.key")),
        ],
        "short.evls",
    );
    short.refused(INPUT, &["full 64-hex digest"]);
    assert!(!w.laptop1.join("short.evls").exists());

    // A third process appends the files, in one batch.
    let files = [
        w.laptop1.join("ack.evls"),
        w.laptop2.join("annotate.evls"),
        w.laptop2.join("promote.evls"),
        w.laptop2.join("add.evls"),
    ];
    let mut cmd: Vec<&str> = vec!["submit", "--json"];
    cmd.extend(files.iter().map(|f| p(f)));
    let out = w.host(&cmd).ok();
    let v = out.json();
    let got: Vec<(String, u64, bool)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["index"].as_u64().unwrap(),
                r["appended"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("acknowledgment".into(), 6, true),
            ("annotation".into(), 7, true),
            ("promotion".into(), 8, true),
            ("artifact".into(), 9, true),
        ]
    );
    assert_eq!(v[0]["id"], ack_id.as_str());
    assert_eq!(v[1]["id"], signed_id(&ann).as_str());
    assert_eq!(v[2]["id"], signed_id(&promote).as_str());
    // The evidence's bytes travelled with it.
    let cat = w.host(&["cat", &gate_id]).ok();
    assert_eq!(
        cat.stdout.as_bytes(),
        std::fs::read(&evidence).unwrap().as_slice()
    );
    let verify = w.host(&["verify", "--json"]).ok().json();
    assert_eq!(verify["verified"], true, "{verify:#}");
    let shown = w.host(&["show", &ack_id, "--json"]).ok().json();
    assert_eq!(
        shown["body"]["payload"]["acknowledgment"]["statement"],
        "acknowledged from a laptop"
    );

    // Resubmitting is idempotent: the indices, exit 0, the log byte for byte as it was.
    let log = w.log_bytes();
    let again = w.host(&["submit", p(&files[0]), p(&files[3])]).ok();
    assert!(
        again
            .stdout
            .contains(&format!("acknowledgment {ack_id} already at index 6")),
        "{again:#?}"
    );
    assert!(
        again
            .stdout
            .contains(&format!("artifact {gate_id} already at index 9")),
        "{again:#?}"
    );
    assert_eq!(w.log_bytes(), log);

    // Offline key management, packets, narrowing and decisions: the admin and owners sign on
    // their laptops too; packet references are full ids, checked at submission.
    std::fs::copy(hk.join("admin.key"), w.laptop1.join("admin.key")).unwrap();
    keygen(&w.laptop1, "chair");
    let key_add = w
        .laptop(
            &w.laptop1,
            &[
                "key",
                "add",
                "chair",
                "--pub",
                p(&w.laptop1.join("chair.pub")),
                "--role",
                "gate-chair",
                "--key",
                p(&w.laptop1.join("admin.key")),
            ],
            "key-add.evls",
        )
        .ok();
    assert!(key_add.stdout.contains("signed key-add"), "{key_add:#?}");
    let packet = w
        .laptop(
            &w.laptop2,
            &[
                "packet",
                "create",
                "--name",
                "Remote-Packet",
                "--gate",
                &gate_id,
                "--checkpoint-at",
                "2026-04-30",
                "--workload",
                "payments/payments-api",
                "--workload",
                "data-platform/etl",
                "--basis",
                &drill_id,
                "--basis",
                &ack_id,
                "--key",
                p(&w.laptop2.join("owner2.key")),
            ],
            "packet.evls",
        )
        .ok();
    let packet_id = signed_id(&packet);
    let narrow = w
        .laptop(
            &w.laptop2,
            &[
                "narrow",
                &packet_id,
                "--keep",
                "payments/payments-api",
                "--rationale",
                "etl later",
                "--key",
                p(&w.laptop2.join("owner2.key")),
            ],
            "narrow.evls",
        )
        .ok();
    let decide = w
        .laptop(
            &w.laptop1,
            &[
                "decide",
                &packet_id,
                "--decision",
                "hold",
                "--key",
                p(&w.laptop1.join("chair.key")),
            ],
            "decide.evls",
        )
        .ok();
    let out = w
        .host(&[
            "submit",
            p(&w.laptop1.join("key-add.evls")),
            p(&w.laptop2.join("packet.evls")),
            p(&w.laptop2.join("narrow.evls")),
            p(&w.laptop1.join("decide.evls")),
        ])
        .ok();
    for (kind, id, index) in [
        ("packet", &packet_id, 11),
        ("narrowing", &signed_id(&narrow), 12),
        ("decision", &signed_id(&decide), 13),
    ] {
        assert!(
            out.stdout
                .contains(&format!("{kind} {id} at index {index}")),
            "{out:#?}"
        );
    }
    let verify = w.host(&["verify", "--json"]).ok().json();
    assert_eq!(verify["verified"], true, "{verify:#}");
    let lineage = w.host(&["lineage", &packet_id]).ok();
    assert!(lineage.stdout.contains("Remote-Packet"), "{lineage:#?}");
}

#[test]
fn tampered_foreign_and_revoked_files_are_refused_with_one_line_and_the_log_unchanged() {
    let w = world();
    let hk = w.ledger_host.join("keys");
    let sign_ack = |stmt: &str, out: &str| {
        w.laptop(
            &w.laptop1,
            &[
                "ack",
                "--topic",
                "t",
                "--statement",
                stmt,
                "--key",
                p(&w.laptop1.join("sec.key")),
            ],
            out,
        )
        .ok()
    };
    sign_ack("one", "good.evls");
    let good = std::fs::read(w.laptop1.join("good.evls")).unwrap();
    assert!(good.starts_with(b"evl-submission/v1\n"));
    let log = w.log_bytes();
    let refused = |file: &Path, code: i32, needles: &[&str]| {
        let o = w.host(&["submit", p(file)]);
        o.refused(code, needles);
        assert_eq!(w.log_bytes(), log, "a refused submit changed the log");
    };

    // A byte of the statement changed: the signature no longer matches.
    let pos = good.windows(3).position(|x| x == b"one").unwrap();
    let mut body = good.clone();
    body[pos] = b'O';
    let f = w.laptop1.join("body.evls");
    std::fs::write(&f, &body).unwrap();
    refused(&f, REFUSED, &["signature"]);
    // A signature byte changed (the signature ends 8 bytes before the file: the blob count).
    let mut sig = good.clone();
    let n = sig.len();
    sig[n - 20] ^= 0x01;
    let f = w.laptop1.join("sig.evls");
    std::fs::write(&f, &sig).unwrap();
    refused(&f, REFUSED, &["signature"]);
    // Cut short, or not a submission at all.
    let f = w.laptop1.join("short.evls");
    std::fs::write(&f, &good[..good.len() - 30]).unwrap();
    refused(&f, INPUT, &["short.evls", "malformed"]);
    let f = w.laptop1.join("junk.evls");
    std::fs::write(&f, b"hello").unwrap();
    refused(&f, INPUT, &["not an evl submission file"]);

    // Signed for another ledger (another genesis), or its header edited to claim this one.
    let other = "ab".repeat(32);
    let o = run(evl_bin()
        .args([
            "ack",
            "--topic",
            "t",
            "--statement",
            "elsewhere",
            "--key",
            p(&w.laptop1.join("sec.key")),
            "--offline",
            "--origin",
            ORIGIN,
            "--genesis",
            &other,
            "-o",
        ])
        .arg(w.laptop1.join("foreign.evls")))
    .ok();
    assert!(o.stdout.contains("signed acknowledgment"), "{o:#?}");
    refused(
        &w.laptop1.join("foreign.evls"),
        INPUT,
        &["not this one", "abababababab"],
    );
    let mut forged = std::fs::read(w.laptop1.join("foreign.evls")).unwrap();
    let at = forged
        .windows(32)
        .position(|x| x == [0xab; 32].as_slice())
        .unwrap();
    forged[at..at + 32].copy_from_slice(&hex::decode(&w.genesis).unwrap());
    let f = w.laptop1.join("forged.evls");
    std::fs::write(&f, &forged).unwrap();
    refused(&f, INPUT, &["is signed for ledger abababababab"]);

    // A key revoked before its file arrives: signed while it was valid, refused now.
    let evidence = w.laptop2.join("drill.toml");
    std::fs::copy(
        format!("{EX}/drill-envoy-policy-reversal-2026-04-15.toml"),
        &evidence,
    )
    .unwrap();
    w.laptop(
        &w.laptop2,
        &[
            "add",
            p(&evidence),
            "--kind",
            "rollback-drill",
            "--tier",
            "authoritative",
            "--key",
            p(&w.laptop2.join("owner2.key")),
        ],
        "late.evls",
    )
    .ok();
    w.host(&[
        "key",
        "revoke",
        "owner2",
        "--reason",
        "laptop lost",
        "--key",
        p(&hk.join("admin.key")),
    ])
    .ok();
    let log = w.log_bytes();
    let o = w.host(&["submit", p(&w.laptop2.join("late.evls"))]);
    o.refused(REFUSED, &["revoked"]);
    assert_eq!(w.log_bytes(), log);
    // One bad file refuses the whole batch: the good one beside it is not appended either.
    let o = w.host(&[
        "submit",
        p(&w.laptop1.join("good.evls")),
        p(&w.laptop2.join("late.evls")),
    ]);
    o.refused(REFUSED, &["revoked"]);
    assert_eq!(w.log_bytes(), log);
    // A dangling reference (an annotation on nothing this ledger holds) is refused too.
    w.laptop(
        &w.laptop2,
        &[
            "annotate",
            &"cd".repeat(32),
            "--kind",
            "note",
            "--text",
            "x",
            "--key",
            p(&w.laptop2.join("rev.key")),
        ],
        "dangling.evls",
    )
    .ok();
    let o = w.host(&["submit", p(&w.laptop2.join("dangling.evls"))]);
    o.refused(INPUT, &["does not hold"]);
    assert_eq!(w.log_bytes(), log);
    // And the good file still goes in afterwards.
    let o = w.host(&["submit", p(&w.laptop1.join("good.evls"))]).ok();
    assert!(o.stdout.contains("at index"), "{o:#?}");
    // An existing output file is never overwritten.
    let o = w.laptop(
        &w.laptop1,
        &[
            "ack",
            "--topic",
            "t",
            "--statement",
            "two",
            "--key",
            p(&w.laptop1.join("sec.key")),
        ],
        "good.evls",
    );
    o.refused(INPUT, &["exists; not overwritten"]);
    assert_eq!(std::fs::read(w.laptop1.join("good.evls")).unwrap(), good);
}

/// Reads a little-endian u64 at `*at` and moves past it.
fn u64_at(b: &[u8], at: &mut usize) -> u64 {
    let v = u64::from_le_bytes(b[*at..*at + 8].try_into().unwrap());
    *at += 8;
    v
}

/// Takes `n` bytes at `*at` and moves past them.
fn take<'a>(b: &'a [u8], at: &mut usize, n: u64) -> &'a [u8] {
    let s = &b[*at..*at + n as usize];
    *at += n as usize;
    s
}

#[test]
fn the_submission_vector_is_what_offline_signing_writes_and_decodes_by_the_documented_layout() {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let dir = tempfile::tempdir().unwrap();
    run(evl_bin()
        .args([
            "keygen",
            "vec",
            "--demo-seed",
            "evl submission vector",
            "--dir",
        ])
        .arg(dir.path()))
    .ok();
    let note = dir.path().join("note.txt");
    std::fs::write(&note, b"submission vector\n").unwrap();
    let out = dir.path().join("out.evls");
    let genesis = format!("{}1", "0".repeat(63));
    let o = run(evl_bin()
        .arg("add")
        .arg(&note)
        .args(["--kind", "note", "--tier", "operational"])
        .args(["--at", "2026-04-20T00:00:00Z", "--key"])
        .arg(dir.path().join("vec.key"))
        .args(["--offline", "--origin", "example.org/submission-vector"])
        .args(["--genesis", &genesis, "-o"])
        .arg(&out))
    .ok();
    let bytes = std::fs::read(&out).unwrap();
    if std::env::var_os("EVL_WRITE_VECTORS").is_some() {
        // The description is written from what this run wrote; the checks below then read it.
        // magic, version, origin (length + bytes), genesis, entry count, then the entry.
        let mut at = 18 + 2;
        let n = u64_at(&bytes, &mut at);
        at += n as usize + 32 + 8;
        let n = u64_at(&bytes, &mut at);
        let entry = take(&bytes, &mut at, n);
        let blob = b"submission vector\n";
        let v = serde_json::json!({
            "file": "submission-v1.evls",
            "bytes": bytes.len(),
            "blake3": blake3::hash(&bytes).to_hex().as_str(),
            "origin": "example.org/submission-vector",
            "genesis": genesis,
            "signer_phrase": "evl submission vector",
            "claimed_at": "2026-04-20T00:00:00Z",
            "entry_id": blake3::hash(&entry[..entry.len() - 64]).to_hex().as_str(),
            "entry_bytes_hex": hex::encode(entry),
            "blobs": [blake3::hash(blob).to_hex().as_str()],
        });
        std::fs::write(vectors.join("submission-v1.evls"), &bytes).unwrap();
        std::fs::write(
            vectors.join("submission-v1.json"),
            serde_json::to_string_pretty(&v).unwrap() + "\n",
        )
        .unwrap();
    }
    let want: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vectors.join("submission-v1.json")).unwrap())
            .unwrap();
    assert_eq!(want["bytes"], bytes.len());
    assert_eq!(
        bytes,
        std::fs::read(vectors.join("submission-v1.evls")).unwrap(),
        "offline signing no longer writes the vector byte for byte"
    );
    // Decoded by docs/FORMAT.md §"Submission files" alone.
    let mut at = 0;
    assert_eq!(take(&bytes, &mut at, 18), b"evl-submission/v1\n");
    assert_eq!(take(&bytes, &mut at, 2), [1, 0]);
    let n = u64_at(&bytes, &mut at);
    assert_eq!(
        take(&bytes, &mut at, n),
        want["origin"].as_str().unwrap().as_bytes()
    );
    assert_eq!(hex::encode(take(&bytes, &mut at, 32)), want["genesis"]);
    assert_eq!(u64_at(&bytes, &mut at), 1, "one entry");
    let n = u64_at(&bytes, &mut at);
    let entry = take(&bytes, &mut at, n);
    assert_eq!(hex::encode(entry), want["entry_bytes_hex"]);
    let id = blake3::hash(&entry[..entry.len() - 64]);
    assert_eq!(id.to_hex().as_str(), want["entry_id"]);
    assert!(o.stdout.contains(&format!(
        "signed artifact {}",
        want["entry_id"].as_str().unwrap()
    )));
    assert_eq!(
        &entry[2..34],
        hex::decode(want["genesis"].as_str().unwrap()).unwrap()
    );
    assert_eq!(u64_at(&bytes, &mut at), 1, "one blob");
    let n = u64_at(&bytes, &mut at);
    let blob = take(&bytes, &mut at, n);
    assert_eq!(blob, b"submission vector\n");
    assert_eq!(blake3::hash(blob).to_hex().as_str(), want["blobs"][0]);
    assert_eq!(at, bytes.len(), "no trailing bytes");
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), want["blake3"]);
    // The signature verifies with the demo key's public key over the documented message.
    let public = std::fs::read_to_string(dir.path().join("vec.pub")).unwrap();
    let public: [u8; 32] = hex::decode(public.split_whitespace().nth(1).unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&entry[entry.len() - 64..]).unwrap();
    let msg = [b"evl/entry-signature/v1\n".as_slice(), id.as_bytes()].concat();
    vk.verify_strict(&msg, &sig).unwrap();
}
