//! The ledger through the real binary on real stores: a ledger with several keys, artifacts,
//! annotations, acknowledgments, a rotated and a revoked key verifies; appends by keys that do
//! not count are refused; bad inputs give one clear line and a documented exit code; a ledger
//! in use is reported (or waited for). Every refusal is checked to leave the ledger unchanged.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Fixture, RICH_BLOBS, RICH_SIZE, evl_bin, evl_std, rich, run, store};

// Exit codes documented in `evl --help`.
const INPUT: i32 = 2;
const REFUSED: i32 = 3;
const BUSY: i32 = 4;

#[test]
fn rich_ledger_verifies_with_right_counts() {
    let f = rich().copy();
    let out = f.evl(["verify"]).ok();
    assert!(
        out.stdout.starts_with(&format!(
            "verified: {RICH_SIZE} entries, {RICH_SIZE} signatures, {RICH_BLOBS} artifacts; root "
        )),
        "{out:#?}"
    );
    let out = f.evl(["verify", "--json"]).ok();
    let v = out.json();
    assert_eq!(v["verified"], true);
    let r = &v["report"];
    assert_eq!(r["size"], RICH_SIZE);
    assert_eq!(r["entries_checked"], RICH_SIZE);
    assert_eq!(r["signatures_checked"], RICH_SIZE);
    assert_eq!(r["artifacts_checked"], RICH_BLOBS);
    assert_eq!(r["failures"].as_array().unwrap().len(), 0);
    assert_eq!(r["root"].as_str().unwrap().len(), 64);
    // The stored checkpoint (size 17) is checked too, and the auditor's copy of it.
    assert_eq!(r["checkpoints"][0]["size"], RICH_SIZE);
    let out = f
        .evl([
            "verify",
            "--checkpoint",
            f.path("auditor.note").to_str().unwrap(),
        ])
        .ok();
    assert!(
        out.stdout
            .contains(&format!("(size {RICH_SIZE}) is consistent")),
        "{out:#?}"
    );

    // The log holds what was appended, in order, signed by whom it should be.
    let log = f.evl(["log", "--json"]).ok().ndjson();
    let kinds: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "genesis",
            "key-add",
            "key-add",
            "key-add",
            "key-add",
            "artifact",
            "artifact",
            "artifact",
            "artifact",
            "annotation",
            "acknowledgment",
            "key-rotate",
            "artifact",
            "artifact",
            "promotion",
            "key-revoke",
            "annotation",
        ]
    );
    for (i, e) in log.as_array().unwrap().iter().enumerate() {
        assert_eq!(e["index"], i as u64);
    }
    let a = &log[5]["body"]["payload"]["artifact"];
    assert_eq!(a["tier"], "authoritative");
    assert_eq!(a["file_name"], "a.txt");
    assert_eq!(a["labels"]["team"], "mesh");
    assert_eq!(a["scope"]["namespaces"][0], "payments");
    assert_eq!(log[10]["signer_name"], "security");
    assert_eq!(
        log[10]["body"]["payload"]["acknowledgment"]["namespace"],
        "data-platform"
    );
    // The rotated owner's successor carries the name.
    assert_eq!(log[12]["signer_name"], "owner");
    assert_eq!(log[12]["id"], f.id("e"));
    let only_ann = f
        .evl(["log", "--kind", "annotation", "--json"])
        .ok()
        .ndjson();
    assert_eq!(only_ann.as_array().unwrap().len(), 2);

    // Key registry: the old owner key was rotated away, the contractor revoked.
    let keys = f.evl(["key", "list", "--json"]).ok().json();
    assert_eq!(keys["schema"], "evl.keys/v1");
    let keys = keys["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 6, "{keys:#?}");
    let revoked: Vec<(&str, &str)> = keys
        .iter()
        .filter(|k| !k["revoked_at"].is_null())
        .map(|k| {
            (
                k["name"].as_str().unwrap(),
                k["revoked_reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(revoked.len(), 2, "{keys:#?}");
    assert!(revoked.contains(&("contractor", "contract ended")));
    assert!(
        revoked
            .iter()
            .any(|(n, r)| *n == "owner" && r.starts_with("rotated to"))
    );

    // `cat` gives back the original bytes, by entry id and by content prefix.
    let out = f.evl(["cat", f.id("b")]).ok();
    assert_eq!(out.stdout, "kind: AuthorizationPolicy\nname: east-west\n");
    let d = blake3::hash(b"rollback drill A: passed\n").to_hex();
    let out = f.evl(["cat", &d[..10]]).ok();
    assert_eq!(out.stdout, "rollback drill A: passed\n");
    let shown = f.evl(["show", &f.id("a")[..8], "--json"]).ok().json();
    assert_eq!(shown["index"], 5);
    assert_eq!(shown["signer_name"], "owner");
}

/// Runs a command expected to be refused and checks the ledger did not change. The baseline
/// snapshot is taken once per fixture: every refusal must leave the ledger exactly as built.
fn refused_unchanged(f: &Fixture, args: &[&str], code: i32, needles: &[&str]) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static BASELINES: Mutex<Option<HashMap<std::path::PathBuf, common::Snapshot>>> =
        Mutex::new(None);
    let before = {
        let mut b = BASELINES.lock().unwrap();
        let map = b.get_or_insert_with(HashMap::new);
        map.entry(f.ledger()).or_insert_with(|| f.snapshot());
        map[&f.ledger()].clone()
    };
    let out = f.evl(args);
    out.refused(code, needles);
    assert_eq!(f.snapshot(), before, "ledger changed after {args:?}");
}

#[test]
fn appends_by_keys_that_do_not_count_are_refused() {
    let f = rich().copy();
    let file = f.file("new.txt", b"new evidence\n");
    let file = file.to_str().unwrap();
    let key = |n: &str| f.key(n).display().to_string();
    let add = |k: &str| -> Vec<String> {
        [
            "add",
            file,
            "--kind",
            "drill",
            "--tier",
            "operational",
            "--key",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([key(k)])
        .collect()
    };
    let args = |v: &Vec<String>| v.clone();
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        // Revoked at index 15.
        (
            add("contractor"),
            vec![
                "'contractor'",
                "revoked at log position 15",
                "contract ended",
            ],
        ),
        // Rotated away at index 11: the old key no longer counts.
        (
            add("owner"),
            vec!["'owner'", "revoked at log position 11", "rotated to"],
        ),
        (add("stranger"), vec!["is not registered"]),
        (
            add("reviewer"),
            vec!["'reviewer'", "lacks the owner role", "artifact"],
        ),
        (
            [
                "ack",
                "--topic",
                "east-west-authorization-policy",
                "--namespace",
                "payments",
                "--statement",
                "ok",
                "--key",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([key("owner-v2")])
            .collect(),
            vec![
                "'owner'",
                "lacks the security-signer role",
                "acknowledgment",
            ],
        ),
        (
            [
                "annotate",
                f.id("a"),
                "--kind",
                "blocker",
                "--text",
                "no",
                "--key",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([key("security")])
            .collect(),
            vec!["'security'", "lacks the reviewer role"],
        ),
        (
            [
                "key",
                "add",
                "x",
                "--pub",
                f.public("stranger").to_str().unwrap(),
                "--role",
                "admin",
                "--key",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([key("owner-v2")])
            .collect(),
            vec!["lacks the admin role"],
        ),
        (
            ["checkpoint", "--key"]
                .iter()
                .map(|s| s.to_string())
                .chain([key("reviewer")])
                .collect(),
            vec!["'reviewer'", "not an active admin"],
        ),
    ];
    for (argv, needles) in cases {
        let argv = args(&argv);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        refused_unchanged(&f, &argv, REFUSED, &needles);
    }
    // The same file by a key that counts goes in: the refusals were about the key alone.
    let out = f.evl(add("owner-v2")).ok();
    assert!(out.stdout.starts_with("artifact "), "{out:#?}");
    assert_eq!(f.verified()["size"], RICH_SIZE + 1);
}

#[test]
fn bad_inputs_give_one_line_and_leave_the_ledger_unchanged() {
    let f = rich().copy();
    let owner = f.key("owner-v2").display().to_string();
    let good = f.file("good.txt", b"good\n").display().to_string();
    let missing = f.path("files/missing.txt").display().to_string();
    let add = |extra: &[&str]| -> Vec<String> {
        [
            "add",
            good.as_str(),
            "--kind",
            "drill",
            "--tier",
            "operational",
            "--key",
            owner.as_str(),
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
    };
    let case = |argv: Vec<String>, code: i32, needles: &[&str]| {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        refused_unchanged(&f, &argv, code, needles);
    };

    // Missing file, alone and among good ones: nothing of the batch is appended.
    case(
        [
            "add",
            &good,
            &missing,
            "--kind",
            "drill",
            "--tier",
            "operational",
            "--key",
            &owner,
        ]
        .map(String::from)
        .to_vec(),
        INPUT,
        &["missing.txt", "No such file"],
    );
    // A directory is not an artifact.
    let dir = f.path("files").display().to_string();
    case(
        [
            "add",
            &dir,
            "--kind",
            "drill",
            "--tier",
            "operational",
            "--key",
            &owner,
        ]
        .map(String::from)
        .to_vec(),
        INPUT,
        &["is not a regular file"],
    );
    // Malformed and missing key files.
    let garbage = f.path("keys/garbage.key");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut argv = add(&[]);
    argv[7] = garbage.display().to_string();
    case(
        argv,
        INPUT,
        &["garbage.key", "is not an Ed25519 secret key"],
    );
    let mut argv = add(&[]);
    argv[7] = f.path("keys/nope.key").display().to_string();
    case(argv, INPUT, &["nope.key", "cannot read key file"]);
    let bad_pub = f.path("keys/bad.pub");
    std::fs::write(&bad_pub, "ed25519 zz-not-hex\n").unwrap();
    case(
        [
            "key",
            "add",
            "bad",
            "--pub",
            bad_pub.to_str().unwrap(),
            "--role",
            "owner",
            "--key",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([f.key("admin").display().to_string()])
        .collect(),
        INPUT,
        &["bad.pub", "is not an Ed25519 public key"],
    );
    // A secret key readable by others is refused, and the message says how to fix it.
    let open_key = f.path("keys/open.key");
    std::fs::copy(f.key("owner-v2"), &open_key).unwrap();
    std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut argv = add(&[]);
    argv[7] = open_key.display().to_string();
    case(
        argv,
        REFUSED,
        &["open.key", "readable by group or others", "chmod 600"],
    );

    // Unknown digest, for a read verb and for a write verb.
    case(
        vec!["show".into(), "deadbeef".into()],
        INPUT,
        &["no entry or artifact matches 'deadbeef'"],
    );
    case(
        [
            "annotate",
            "deadbeef00",
            "--kind",
            "note",
            "--text",
            "x",
            "--key",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([f.key("reviewer").display().to_string()])
        .collect(),
        INPUT,
        &["'deadbeef00'"],
    );
    case(
        vec!["show".into(), "xyz!".into()],
        INPUT,
        &["not a digest or hex prefix"],
    );
    case(vec!["show".into(), "ab".into()], INPUT, &["too short"]);

    // Invalid metadata.
    case(
        add(&["--label", "novalue"]),
        INPUT,
        &["label 'novalue' must be KEY=VALUE"],
    );
    case(
        add(&["--label", "=v"]),
        INPUT,
        &["label '=v' must be KEY=VALUE"],
    );
    case(
        add(&["--captured-at", "2026-03-01", "--valid-until", "2026-02-01"]),
        INPUT,
        &["--valid-until", "is before --captured-at"],
    );
    let future = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    case(
        add(&["--at", &future]),
        INPUT,
        &["ahead of this machine's clock"],
    );
    let mut argv = add(&[]);
    argv[3] = "no spaces allowed".into();
    case(argv, INPUT, &["artifact kind 'no spaces allowed'"]);
    case(
        add(&["--supersedes", f.id("last")]),
        INPUT,
        &["names a annotation entry, not an artifact"],
    );
    case(
        vec![
            "promote".into(),
            f.id("a").into(),
            "--reason".into(),
            "x".into(),
            "--key".into(),
            owner.clone(),
        ],
        INPUT,
        &["not excluded"],
    );
    case(
        vec!["log".into(), "--kind".into(), "bogus".into()],
        INPUT,
        &["unknown entry kind 'bogus'"],
    );

    // Argument errors caught while parsing are one `evl: …` line too, exit 2, naming the bad
    // value and where the verb's help is.
    for (argv, needle) in [
        (
            add(&[])
                .into_iter()
                .map(|s| {
                    if s == "operational" {
                        "bogus".into()
                    } else {
                        s
                    }
                })
                .collect::<Vec<_>>(),
            "'bogus' for '--tier",
        ),
        (add(&["--at", "yesterday-ish"]), "'yesterday-ish' for '--at"),
        (
            add(&["--captured-at", "2026-13-45"]),
            "'2026-13-45' for '--captured-at",
        ),
    ] {
        let before = f.snapshot();
        let out = f.evl(&argv);
        out.refused(INPUT, &["invalid value", needle, "(see 'evl add --help')"]);
        assert_eq!(f.snapshot(), before);
    }
    let admin = f.key("admin").display().to_string();
    for (argv, needles) in [
        (
            vec![
                "key", "add", "x", "--pub", &admin, "--role", "wizard", "--key", &admin,
            ],
            &["unknown role 'wizard'", "(see 'evl key add --help')"][..],
        ),
        (
            vec!["evaluate", "abc", "--as-of", "2026-02-30"],
            &["'2026-02-30' for '--as-of", "(see 'evl evaluate --help')"][..],
        ),
        (
            vec!["add", "x.txt", "--kind", "note", "--key", &admin],
            &["required arguments were not provided: --tier <TIER>"][..],
        ),
        (
            vec!["frobnicate"],
            &["unrecognized subcommand 'frobnicate'", "(see 'evl --help')"][..],
        ),
        (
            vec!["log", "--bogus"],
            &["unexpected argument '--bogus'"][..],
        ),
    ] {
        let before = f.snapshot();
        f.evl(&argv).refused(INPUT, needles);
        assert_eq!(f.snapshot(), before);
    }
    // A file name that is not UTF-8 does not stop the error from being one line.
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = std::ffi::OsStr::from_bytes(b"\xff.txt");
        let argv: Vec<&std::ffi::OsStr> = [
            "add".as_ref(),
            odd,
            "--kind".as_ref(),
            "note".as_ref(),
            "--tier".as_ref(),
            "bogus".as_ref(),
        ]
        .to_vec();
        f.evl(&argv)
            .refused(INPUT, &["'bogus' for '--tier", "(see 'evl add --help')"]);
    }
    // Help and version stay what clap prints, on stdout with exit 0.
    let help = f.evl(["add", "--help"]).ok();
    assert!(
        help.stdout.contains("Usage: evl add") && help.stderr.is_empty(),
        "{help:#?}"
    );
    let version = f.evl(["--version"]).ok();
    assert!(version.stdout.starts_with("evl "), "{version:#?}");

    // A claimed time inside the documented 5-minute skew is accepted.
    let near = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc3339();
    let argv = add(&["--at", &near]);
    let out = f.evl(&argv).ok();
    assert!(out.stdout.starts_with("artifact "), "{out:#?}");
    assert_eq!(f.verified()["size"], RICH_SIZE + 1);
}

#[test]
fn init_twice_and_verbs_on_non_ledgers_are_refused() {
    let f = rich().copy();
    let admin_pub = f.public("admin").display().to_string();
    let admin = f.key("admin").display().to_string();
    refused_unchanged(
        &f,
        &[
            "init",
            "--origin",
            "example.org/other",
            "--admin",
            &admin_pub,
            "--key",
            &admin,
        ],
        INPUT,
        &["already holds a ledger"],
    );
    // Bad origin on a fresh directory: refused and nothing created.
    let fresh = f.path("fresh");
    let out = run(evl_bin().arg("--ledger").arg(&fresh).args([
        "init",
        "--origin",
        "has space",
        "--admin",
        &admin_pub,
        "--key",
        &admin,
    ]));
    out.refused(INPUT, &["origin 'has space' is not usable"]);
    assert!(!fresh.exists(), "a refused init left {}", fresh.display());

    // An empty directory and a directory of other things are not ledgers; evl leaves them alone.
    let empty = f.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let other = f.path("files");
    let before: Vec<_> = std::fs::read_dir(&other)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let good = f.file("x.txt", b"x").display().to_string();
    for dir in [&empty, &other] {
        for argv in [
            vec!["verify"],
            vec!["log"],
            vec!["show", "abcd"],
            vec![
                "add",
                &good,
                "--kind",
                "k",
                "--tier",
                "operational",
                "--key",
                &admin,
            ],
        ] {
            let out = run(evl_bin().arg("--ledger").arg(dir).args(&argv));
            out.refused(INPUT, &["no evl ledger at", "evl init"]);
        }
    }
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        0,
        "evl wrote into an empty directory"
    );
    let mut after: Vec<_> = std::fs::read_dir(&other)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    after.retain(|n| n != "x.txt");
    assert_eq!(after.len(), before.len());
    // EVL_LEDGER names the ledger when --ledger is absent.
    let out = run(evl_bin()
        .env("EVL_LEDGER", f.ledger())
        .args(["log", "--kind", "key-revoke"]));
    assert!(
        out.stdout.contains("key-revoke") && out.stdout.contains("contract ended"),
        "{out:#?}"
    );
}

/// Finds two small file contents whose BLAKE3 digests share their first two bytes.
fn colliding_contents() -> (Vec<u8>, Vec<u8>, String) {
    let mut seen = std::collections::HashMap::new();
    for i in 0u32.. {
        let content = format!("ambiguous evidence {i}\n").into_bytes();
        let h = blake3::hash(&content);
        let p = [h.as_bytes()[0], h.as_bytes()[1]];
        if let Some(other) = seen.insert(p, content.clone()) {
            return (other, content, hex::encode(p));
        }
    }
    unreachable!()
}

#[test]
fn ambiguous_prefix_names_both_matches() {
    let f = rich().copy();
    let (x, y, prefix) = colliding_contents();
    let px = f.file("x.txt", &x);
    let py = f.file("y.txt", &y);
    f.evl([
        "add",
        px.to_str().unwrap(),
        py.to_str().unwrap(),
        "--kind",
        "drill",
        "--tier",
        "operational",
        "--key",
        f.key("owner-v2").to_str().unwrap(),
    ])
    .ok();
    let dx = blake3::hash(&x).to_hex().to_string();
    let dy = blake3::hash(&y).to_hex().to_string();
    assert_eq!(dx[..4], dy[..4]);
    for argv in [
        vec!["show", prefix.as_str()],
        vec!["cat", prefix.as_str()],
        vec![
            "annotate",
            prefix.as_str(),
            "--kind",
            "note",
            "--text",
            "which?",
            "--key",
            f.key("reviewer").to_str().unwrap(),
        ],
    ] {
        refused_unchanged(
            &f,
            &argv,
            INPUT,
            &[&format!("'{prefix}' is ambiguous"), &dx[..16], &dy[..16]],
        );
    }
    // One more hex character that tells them apart resolves to one artifact.
    let n = (4..64).find(|&n| dx[..n] != dy[..n]).unwrap();
    let out = f.evl(["cat", &dx[..n.max(4)]]).ok();
    assert_eq!(out.stdout.as_bytes(), x);
}

#[test]
fn ledger_in_use_is_reported_and_waited_for() {
    let f = rich().copy();
    let file = f.file("busy.txt", b"busy\n");
    let owner = f.key("owner-v2");
    let add = |wait: Option<&str>| {
        let mut c = evl_bin();
        c.arg("--ledger").arg(f.ledger());
        if let Some(w) = wait {
            c.args(["--wait", w]);
        }
        c.arg("add")
            .arg(&file)
            .args(["--kind", "drill", "--tier", "operational", "--key"])
            .arg(&owner);
        c
    };

    let held = store::hold_lock(&f.ledger());
    let out = run(&mut add(None));
    out.refused(BUSY, &["in use by another process", "--wait"]);
    // Readers take no lock: verify, log and show work while an append is in progress, and
    // see the ledger as of its last commit.
    let started = Instant::now();
    let out = run(evl_bin()
        .arg("--ledger")
        .arg(f.ledger())
        .args(["verify", "--json"]))
    .ok();
    assert_eq!(out.json()["report"]["size"], RICH_SIZE);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a reader must not wait for a writer"
    );
    // Nothing was appended behind the lock.
    assert_eq!(store::entries(&f.ledger()).len() as u64, RICH_SIZE);

    // With --wait, an append started while the store is held succeeds once it is released.
    let mut waiting = std::process::Command::new(assert_cmd::cargo::cargo_bin("evl"));
    waiting
        .arg("--ledger")
        .arg(f.ledger())
        .args(["--wait", "30", "add"])
        .arg(&file)
        .args(["--kind", "drill", "--tier", "operational", "--key"])
        .arg(&owner)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = waiting.spawn().unwrap();
    // Proof that it waited, not that it came late: it opened the lock file while the lock is
    // held (a writer opens it only to take the lock) and is still running a while later
    // (without waiting it would have exited 4 at once), with nothing appended.
    let lock = f.ledger().join("lock").canonicalize().unwrap();
    let fds = PathBuf::from(format!("/proc/{}/fd", child.id()));
    let holds_lock = || {
        std::fs::read_dir(&fds).is_ok_and(|d| {
            d.flatten()
                .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == lock))
        })
    };
    let mut looks = 0;
    while !holds_lock() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the waiting add ended before it reached the lock"
        );
        looks += 1;
        assert!(looks < 3000, "the waiting add never opened the lock file");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "with --wait, evl must keep waiting while the lock is held"
    );
    assert_eq!(store::entries(&f.ledger()).len() as u64, RICH_SIZE);
    drop(held);
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "waiting add failed: {stderr}");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("artifact "));
    assert_eq!(f.verified()["size"], RICH_SIZE + 1);

    // --wait gives up after its time with the same clear line.
    let held = store::hold_lock(&f.ledger());
    let started = Instant::now();
    let out = run(&mut add(Some("1")));
    out.refused(BUSY, &["in use"]);
    assert!(started.elapsed() >= Duration::from_millis(900));
    drop(held);
    assert_eq!(f.verified()["size"], RICH_SIZE + 1);
}

#[test]
fn exit_codes_are_documented_in_help() {
    let out = run(evl_bin().arg("--help")).ok();
    for line in [
        "0  success",
        "1  verification failed",
        "2  usage or input error",
        "3  refused",
        "4  the ledger is in use",
        "5  storage failure",
    ] {
        assert!(out.stdout.contains(line), "--help lacks {line:?}");
    }
}

#[test]
fn closed_stdout_is_not_a_panic() {
    let f = rich().copy();
    for argv in [
        vec!["log", "--json"],
        vec!["verify"],
        vec!["show", f.id("a")],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = std::process::Command::new(assert_cmd::cargo::cargo_bin("evl"))
            .env("XDG_STATE_HOME", f.state())
            .arg("--ledger")
            .arg(f.ledger())
            .args(&argv)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_ne!(o.status.code(), Some(101), "{argv:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{argv:?}: {stderr}");
    }
}

/// A storage failure is exit 5 with one line, and the ledger stays exactly as it was: a
/// file-size limit (`ulimit -f`) hit in the middle of an append's write, and a ledger the
/// process may read but not write.
#[test]
fn storage_failures_exit_5_and_leave_the_log_byte_identical() {
    use std::os::unix::process::CommandExt;
    let f = rich().copy();
    let log = f.ledger().join("log");
    let before_log = std::fs::read(&log).unwrap();
    let before = f.snapshot();
    let owner = f.key("owner-v2").display().to_string();
    let big = f.file("big.bin", &vec![0x5a; 256 * 1024]);
    let big = big.display().to_string();
    let ledger = f.ledger().display().to_string();
    let argv = [
        "--ledger", &ledger, "add", &big, "--kind", "note", "--tier", "excluded", "--key", &owner,
    ];

    // The limit lets the append start writing and stops it 4 KiB later.
    let limit = before_log.len() as u64 + 4096;
    let mut cmd = evl_std();
    cmd.args(argv).env("XDG_STATE_HOME", f.state());
    unsafe {
        cmd.pre_exec(move || {
            let r = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run(&mut assert_cmd::Command::from_std(cmd));
    out.refused(5, &["ledger's file", "log"]);
    assert_eq!(std::fs::read(&log).unwrap(), before_log, "the log changed");
    assert_eq!(f.snapshot(), before);

    // Read-only: as root, the append runs as `nobody` (root writes anywhere); otherwise the
    // ledger's modes take write permission away.
    let root = unsafe { libc::geteuid() } == 0;
    let ledger_files: Vec<PathBuf> = std::iter::once(f.ledger())
        .chain(std::iter::once(f.ledger().join("index")))
        .chain(walk(&f.ledger()).into_iter().filter(|p| p.is_file()))
        .collect();
    if root {
        for p in [f.root.path().to_path_buf(), f.path("keys"), f.path("files")]
            .iter()
            .chain(&ledger_files)
        {
            let mode = if p.is_dir() { 0o755 } else { 0o644 };
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        std::os::unix::fs::chown(f.key("owner-v2"), Some(65534), Some(65534)).unwrap();
    } else {
        for p in &ledger_files {
            let mode = if p.is_dir() { 0o555 } else { 0o444 };
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    let small = f.file("small.txt", b"read-only?\n").display().to_string();
    let mut argv = argv.to_vec();
    argv[3] = &small;
    let mut cmd = evl_std();
    cmd.args(&argv).env("XDG_STATE_HOME", f.state());
    if root {
        cmd.env("HOME", f.root.path());
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let out = run(&mut assert_cmd::Command::from_std(cmd));
    out.refused(5, &["Permission denied"]);
    assert_eq!(std::fs::read(&log).unwrap(), before_log, "the log changed");
    for p in &ledger_files {
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    assert_eq!(f.snapshot(), before);
}

/// Every path under `dir`.
fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}
