//! Store layout 1 → 2: the flagship ledger as evl 0.1 wrote it (a sled directory, committed
//! as tests/vectors/store-layout-1/ together with the checkpoint note that run signed)
//! is refused with a pointer to `evl migrate`, migrates through the real binary, and the copy
//! has the same entries, the same tree root, verifies against the old checkpoint and replays
//! its dispositions. The old directory is left byte for byte as it was.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{evl_bin, run};

/// The tree root the flagship example always ends with (README: byte-for-byte reproducible).
const FLAGSHIP_ROOT: &str = "2eff14bb243db6a265ab5e8298a5e57c9784ddb0f36e517d9424f8fb34214dd5";

/// A private copy of the layout-1 vector in a temporary directory: (dir, ledger, checkpoint
/// note). The vector is committed as plain files, so no archiver is needed; sled's empty
/// `blobs/` directory, which git cannot hold, is made here.
fn unpack() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let vector = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/store-layout-1");
    let (ledger, note) = (t.path().join("ledger"), t.path().join("checkpoint.note"));
    std::fs::create_dir_all(ledger.join("blobs")).unwrap();
    for name in ["conf", "db", "snap.0000000000036387"] {
        std::fs::copy(vector.join("ledger").join(name), ledger.join(name)).unwrap();
    }
    std::fs::copy(vector.join("checkpoint.note"), &note).unwrap();
    (t, ledger, note)
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
    out
}

fn evl(ledger: &Path, args: &[&str]) -> common::Out {
    run(evl_bin().arg("--ledger").arg(ledger).args(args))
}

#[test]
fn a_layout_1_ledger_is_refused_with_a_pointer_to_migrate() {
    let (_t, old, _) = unpack();
    for args in [&["verify"][..], &["log"], &["show", "2eff14bb"]] {
        let out = evl(&old, args);
        out.refused(5, &["store layout 1 (sled)", "evl migrate --from"]);
    }
    // Nor does init overwrite it.
    let keys = tempfile::tempdir().unwrap();
    run(evl_bin().args(["keygen", "a", "--dir"]).arg(keys.path())).ok();
    let k = |f: &str| keys.path().join(f).display().to_string();
    let out = evl(
        &old,
        &[
            "init",
            "--origin",
            "example.org/x",
            "--admin",
            &k("a.pub"),
            "--key",
            &k("a.key"),
        ],
    );
    out.refused(2, &["already holds a ledger"]);
}

#[test]
fn migrate_keeps_every_entry_the_root_and_the_checkpoint() {
    let (t, old, note) = unpack();
    let before = files(&old);
    let new = t.path().join("new");
    let out = evl(&new, &["migrate", "--from", old.to_str().unwrap()]).ok();
    assert!(
        out.stdout
            .contains(&format!("migrated 42 entries from {}", old.display())),
        "{out:#?}"
    );
    assert!(out.stdout.contains(FLAGSHIP_ROOT), "{out:#?}");
    assert_eq!(files(&old), before, "migrate changed the old directory");
    assert!(!t.path().join("new.migrating").exists());
    assert!(!t.path().join("new.layout-1").exists());

    // The copy verifies, against its carried-over checkpoint and the one the old run signed.
    let v = evl(
        &new,
        &["verify", "--checkpoint", note.to_str().unwrap(), "--json"],
    )
    .ok()
    .json();
    assert_eq!(v["verified"], true, "{v:#}");
    assert_eq!(v["report"]["root"], FLAGSHIP_ROOT);
    assert_eq!(v["report"]["size"], 42);
    assert_eq!(v["report"]["artifacts_checked"], 23);
    assert_eq!(v["report"]["checkpoints"].as_array().unwrap().len(), 2);

    // Every recorded disposition still replays, byte for byte.
    let log = evl(&new, &["log", "--kind", "disposition", "--json"])
        .ok()
        .ndjson();
    let dispositions: Vec<String> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(dispositions.len(), 6, "{log:#}");
    for d in &dispositions {
        let out = evl(&new, &["replay", d]).ok();
        assert!(out.stdout.contains("re-derives byte for byte"), "{out:#?}");
    }

    // Migrating again onto the new ledger is refused and changes nothing.
    let after = files(&new);
    let out = evl(&new, &["migrate", "--from", old.to_str().unwrap()]);
    out.refused(2, &["already holds a ledger"]);
    assert_eq!(files(&new), after);
}

#[test]
fn migrate_from_something_else_is_refused_cleanly() {
    let t = tempfile::tempdir().unwrap();
    let new = t.path().join("new");
    let out = evl(
        &new,
        &[
            "migrate",
            "--from",
            t.path().join("nothing").to_str().unwrap(),
        ],
    );
    out.refused(2, &["no evl ledger at"]);
    assert!(!new.exists());
}

#[test]
fn a_tampered_layout_1_ledger_is_refused_and_nothing_is_left_behind() {
    let (t, old, _) = unpack();
    {
        // Flip the last signature byte of entry 9, the way someone with the old files could.
        let db = sled::open(&old).expect("the layout-1 vector opens with sled");
        let entries = db.open_tree("entries").unwrap();
        let key = 9u64.to_be_bytes();
        let mut v = entries.get(key).unwrap().expect("entry 9").to_vec();
        let last = v.len() - 1;
        v[last] ^= 1;
        entries.insert(key, v).unwrap();
        db.flush().unwrap();
    }
    let before = files(&old);
    let new = t.path().join("new");
    let out = evl(&new, &["migrate", "--from", old.to_str().unwrap()]);
    out.refused(3, &["signature does not verify"]);
    assert_eq!(files(&old), before, "migrate changed the old directory");
    for leftover in ["new", "new.migrating", "new.layout-1"] {
        assert!(
            !t.path().join(leftover).exists(),
            "{leftover} was left behind"
        );
    }
}
