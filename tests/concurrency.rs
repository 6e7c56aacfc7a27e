//! Concurrency: `evl add` processes racing on one ledger, and one `Ledger` shared by threads.
//! Whatever the interleaving, every append that reported success is present exactly once,
//! refused ones left nothing, and the ledger verifies.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use evl::Digest;
use evl::entry::{Annotation, AnnotationKind, KeyGrant, Payload, Scope};
use evl::keys::{Role, SecretKey};
use evl::store::{Draft, Ledger, OpenOptions};
use evl::timestamp::Timestamp;
use evl::verify;

const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<Ledger>();
};

fn evl() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("evl"))
}

fn init(dir: &Path) -> std::path::PathBuf {
    let o = evl()
        .args(["keygen", "admin", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success());
    let ledger = dir.join("ledger");
    let o = evl()
        .arg("--ledger")
        .arg(&ledger)
        .args(["init", "--origin", "example.org/race", "--admin"])
        .arg(dir.join("admin.pub"))
        .arg("--key")
        .arg(dir.join("admin.key"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = evl()
        .args(["keygen", "owner", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = evl()
        .arg("--ledger")
        .arg(&ledger)
        .args(["key", "add", "owner", "--role", "owner", "--pub"])
        .arg(dir.join("owner.pub"))
        .arg("--key")
        .arg(dir.join("admin.key"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ledger
}

fn verified_size(ledger: &Path) -> u64 {
    let l = Ledger::open(ledger, &OpenOptions::default()).unwrap();
    let r = verify::verify(&l, &verify::Options::default()).unwrap();
    assert!(r.ok(), "{:#?}", r.failures);
    assert_eq!(r.entries_checked, r.size);
    r.size
}

/// Runs `n` `evl add` processes at once, each adding `files` new files, with or without
/// `--wait`; returns (ids printed by the successful ones, number refused as busy).
fn race(
    dir: &Path,
    ledger: &Path,
    n: usize,
    files: usize,
    wait: bool,
    tag: &str,
) -> (Vec<Digest>, usize) {
    let children: Vec<_> = (0..n)
        .map(|p| {
            let paths: Vec<_> = (0..files)
                .map(|f| {
                    let path = dir.join(format!("{tag}-{p}-{f}.txt"));
                    std::fs::write(&path, format!("{tag} process {p} file {f}\n")).unwrap();
                    path
                })
                .collect();
            let mut c = evl();
            c.arg("--ledger").arg(ledger);
            if wait {
                c.args(["--wait", "60"]);
            }
            c.arg("add")
                .args(&paths)
                .args(["--kind", "race", "--tier", "operational", "--json", "--key"])
                .arg(dir.join("owner.key"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    let (mut ids, mut busy) = (Vec::new(), 0);
    for c in children {
        let o = c.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        match o.status.code() {
            Some(0) => {
                let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                let got: Vec<Digest> = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["id"].as_str().unwrap().parse().unwrap())
                    .collect();
                assert_eq!(got.len(), files);
                ids.extend(got);
            }
            Some(4) => {
                assert!(!wait, "a process with --wait gave up: {stderr}");
                assert_eq!(stderr.lines().count(), 1, "{stderr}");
                assert!(stderr.contains("in use by another process"), "{stderr}");
                busy += 1;
            }
            other => panic!("evl add exited {other:?}: {stderr}"),
        }
    }
    (ids, busy)
}

fn assert_present_once(ledger: &Path, ids: &[Digest]) {
    let l = Ledger::open(ledger, &OpenOptions::default()).unwrap();
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an id was reported twice");
    let mut indexes = BTreeSet::new();
    for id in ids {
        let (index, e) = l.entry_by_id(id).unwrap();
        assert_eq!(e.id(), *id);
        assert!(indexes.insert(index));
    }
}

#[test]
fn racing_processes_proceed_or_fail_cleanly_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = init(dir.path());
    let start = verified_size(&ledger);

    // Without --wait: each either appends all its files or exits 4 with one line.
    let (ids, busy) = race(dir.path(), &ledger, 4, 5, false, "nowait");
    assert!(!ids.is_empty(), "no process got through");
    assert_eq!(ids.len() + busy * 5, 20);
    assert_eq!(verified_size(&ledger), start + ids.len() as u64);
    assert_present_once(&ledger, &ids);

    // With --wait: all of them get through, one after another.
    let before = verified_size(&ledger);
    let (ids2, busy) = race(dir.path(), &ledger, 4, 5, true, "wait");
    assert_eq!(busy, 0);
    assert_eq!(ids2.len(), 20);
    assert_eq!(verified_size(&ledger), before + 20);
    assert_present_once(&ledger, &[ids, ids2].concat());
}

fn note(serial: u64, thread: u64) -> Draft {
    Draft {
        payload: Payload::Annotation(Annotation {
            subject: Digest::of(&[thread.to_le_bytes(), serial.to_le_bytes()].concat()),
            kind: AnnotationKind::Note,
            scope: Scope::default(),
            text: format!("thread {thread} note {serial}"),
        }),
        claimed_at: Timestamp(1_776_470_400 + serial as i64),
        blobs: vec![],
    }
}

/// A new ledger at `path` whose one admin key may also annotate, and that key.
fn admin_ledger(path: &Path) -> (Ledger, SecretKey) {
    let key = SecretKey::demo_from_phrase("evl concurrency admin");
    let grant = KeyGrant {
        name: "admin".into(),
        public_key: key.public(),
        roles: vec![Role::Admin, Role::Reviewer],
    };
    let ledger = Ledger::init(
        path,
        "example.org/threads",
        vec![grant],
        &key,
        Timestamp(1_776_470_400),
    )
    .unwrap();
    (ledger, key)
}

#[test]
fn one_ledger_shared_by_threads_keeps_every_append_once() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, key) = admin_ledger(&dir.path().join("ledger"));
    let (threads, rounds) = (4u64, 12u64);
    let ids: Vec<Vec<(u64, Digest)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (ledger, key) = (&ledger, &key);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for r in 0..rounds {
                        if r % 3 == 0 {
                            let drafts = (0..5).map(|k| note(r * 10 + k, t)).collect();
                            for a in ledger.append_batch(drafts, key, None).unwrap() {
                                mine.push((a.index, a.id));
                            }
                        } else {
                            let a = ledger.append(note(r * 10, t), key).unwrap();
                            mine.push((a.index, a.id));
                        }
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<(u64, Digest)> = ids.into_iter().flatten().collect();
    let expected = threads * (rounds / 3 * 5 + (rounds - rounds / 3));
    assert_eq!(all.len() as u64, expected);
    let indexes: BTreeSet<u64> = all.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes.len(), all.len(), "two appends got the same index");
    assert_eq!(indexes, (1..=expected).collect(), "indexes are not dense");
    for (i, id) in &all {
        assert_eq!(ledger.index_of(id).unwrap(), Some(*i));
    }
    let r = verify::verify(&ledger, &verify::Options::default()).unwrap();
    assert!(r.ok(), "{:#?}", r.failures);
    assert_eq!(r.size, expected + 1);
}

#[test]
fn readers_opening_while_a_writer_appends_always_see_a_whole_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let (writer, key) = admin_ledger(&path);
    let appends = 150u64;
    let done = std::sync::atomic::AtomicBool::new(false);
    let seen: Vec<u64> = std::thread::scope(|s| {
        // More readers than cores, so a reader is often preempted in the middle of an open.
        let read = || {
            // A fresh ledger handle (a new view) each time, as another process would open it.
            let mut sizes = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                let l = Ledger::open(&path, &OpenOptions::default())
                    .unwrap_or_else(|e| panic!("open during appends: {e}"));
                let size = l.size().unwrap();
                let last = l
                    .entry(size - 1)
                    .unwrap_or_else(|e| panic!("entry {}: {e}", size - 1));
                assert_eq!(l.index_of(&last.id()).unwrap(), Some(size - 1));
                sizes.push(size);
            }
            sizes
        };
        let readers: Vec<_> = (0..4).map(|_| s.spawn(read)).collect();
        for r in 0..appends {
            if r % 10 == 0 {
                let drafts = (0..20).map(|k| note(r * 100 + k, 9)).collect();
                writer.append_batch(drafts, &key, None).unwrap();
            } else {
                writer.append(note(r * 100, 9), &key).unwrap();
            }
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        readers
            .into_iter()
            .map(|r| r.join().unwrap())
            .filter(|sizes| sizes.windows(2).all(|w| w[0] <= w[1]))
            .map(|sizes| sizes.len() as u64)
            .collect()
    });
    assert_eq!(seen.len(), 4, "a reader saw the ledger shrink");
    assert!(
        seen.iter().all(|&n| n > 0),
        "every reader opened the ledger"
    );
    let r = verify::verify(&writer, &verify::Options::default()).unwrap();
    assert!(r.ok(), "{:#?}", r.failures);
}

#[test]
fn a_handle_sees_another_handles_appends_after_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let (writer, key) = admin_ledger(&path);
    let reader = Ledger::open(&path, &OpenOptions::default()).unwrap();
    assert_eq!(reader.size().unwrap(), 1);
    let a = writer.append(note(1, 1), &key).unwrap();
    // A snapshot until asked to look again.
    assert_eq!(reader.size().unwrap(), 1);
    assert_eq!(reader.index_of(&a.id).unwrap(), None);
    reader.refresh();
    assert_eq!(reader.size().unwrap(), 2);
    assert_eq!(reader.index_of(&a.id).unwrap(), Some(1));
}
