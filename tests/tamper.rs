//! Tamper evidence: edit the ledger's sled store behind evl's back — entry bytes, artifact
//! bytes, indexes, tree hashes, the key registry, checkpoints, the raw files — and check that
//! `evl verify` fails (exit 1), names what is wrong, and never panics.
//!
//! Store layout (src/store.rs): `entries` u64-BE index → entry bytes; `ids` entry id → u64-BE
//! index; `blobs` BLAKE3 digest → bytes; `hashes` u64-BE stored-hash index → 32 bytes; `keys`
//! key id → key state; `meta` `size` (u64-BE), `genesis`, `origin`, `checkpoint`.

mod common;

use common::{Fixture, Out, RICH_SIZE, be, evl_bin, rich, run};

const INVALID: i32 = 1;
const STORAGE: i32 = 5;

/// Opens the copy's sled store, lets `edit` change it, flushes and closes it.
fn tamper(f: &Fixture, edit: impl FnOnce(&sled::Db)) {
    let db = f.sled();
    edit(&db);
    db.flush().unwrap();
    drop(db);
}

fn tree(db: &sled::Db, name: &str) -> sled::Tree {
    db.open_tree(name).unwrap()
}

/// Runs `evl verify ARGS` (waiting briefly should sled still be releasing its lock) and
/// checks it failed as tampered, with one `FAIL` line per problem and a summary.
fn verify_fails(f: &Fixture, extra: &[&str]) -> Out {
    let mut args = vec!["--wait", "5", "verify"];
    args.extend_from_slice(extra);
    let out = f.evl(&args);
    assert_eq!(out.code, INVALID, "tampering went unnoticed: {out:#?}");
    assert!(out.stderr.contains("FAIL "), "{out:#?}");
    assert!(out.stderr.trim_end().ends_with("problem(s)"), "{out:#?}");
    // --json agrees and says which structure failed.
    args.push("--json");
    let json = f.evl(&args);
    assert_eq!(json.code, INVALID);
    assert_eq!(json.json()["verified"], false);
    out
}

fn assert_names(out: &Out, needles: &[&str]) {
    for n in needles {
        assert!(
            out.stderr.contains(n),
            "verify does not say {n:?}: {out:#?}"
        );
    }
}

fn flip(v: &[u8], at: usize) -> Vec<u8> {
    let mut v = v.to_vec();
    v[at] ^= 0x20;
    v
}

fn digest_hex(content: &[u8]) -> String {
    blake3::hash(content).to_hex().to_string()
}

#[test]
fn the_untouched_copy_verifies() {
    // The baseline every tamper case starts from.
    let f = rich().copy();
    let out = f.evl(["verify"]).ok();
    assert!(out.stdout.starts_with("verified: 17 entries"), "{out:#?}");
}

#[test]
fn flipped_entry_byte_names_the_entry() {
    let len = {
        let f = rich().copy();
        let db = f.sled();
        tree(&db, "entries").get(be(9)).unwrap().unwrap().len()
    };
    // The format field, the annotation text in the middle, the last signature byte.
    for at in [0, len / 2, len - 1] {
        let f = rich().copy();
        tamper(&f, |db| {
            let t = tree(db, "entries");
            let v = t.get(be(9)).unwrap().unwrap();
            t.insert(be(9), flip(&v, at)).unwrap();
        });
        let out = verify_fails(&f, &[]);
        assert_names(&out, &["FAIL entry: entry 9"]);
    }
}

#[test]
fn flipped_artifact_byte_names_the_artifact() {
    let f = rich().copy();
    let content = b"workload,namespace\npayments-api,payments\n";
    let d = digest_hex(content);
    tamper(&f, |db| {
        let t = tree(db, "blobs");
        let v = t.get(blake3::hash(content).as_bytes()).unwrap().unwrap();
        assert_eq!(v.as_ref(), content);
        t.insert(blake3::hash(content).as_bytes(), flip(&v, 3))
            .unwrap();
    });
    let out = verify_fails(&f, &[]);
    assert_names(
        &out,
        &[&format!(
            "FAIL artifact: artifact {d} does not hash to its address"
        )],
    );
    // cat still refuses to serve the altered bytes as the artifact? It serves stored bytes; the
    // point here is that verify names the digest. The JSON report carries the entry index.
    let json = f.evl(["verify", "--json"]).json();
    let failures = json["report"]["failures"].as_array().unwrap();
    assert!(
        failures
            .iter()
            .any(|x| x["structure"] == "artifact" && x["index"] == 7),
        "{failures:#?}"
    );
}

#[test]
fn removed_artifact_blob_names_the_entry() {
    let f = rich().copy();
    let content = b"contractor's telemetry export\n";
    let d = digest_hex(content);
    tamper(&f, |db| {
        assert!(
            tree(db, "blobs")
                .remove(blake3::hash(content).as_bytes())
                .unwrap()
                .is_some()
        );
    });
    let out = verify_fails(&f, &[]);
    assert_names(
        &out,
        &[&format!(
            "entry 8 refers to artifact {d}, whose bytes are missing"
        )],
    );
}

#[test]
fn deleted_entry_is_named() {
    let f = rich().copy();
    tamper(&f, |db| {
        assert!(tree(db, "entries").remove(be(9)).unwrap().is_some());
    });
    let out = verify_fails(&f, &[]);
    assert_names(&out, &["entry 10 found where entry 9 was expected"]);
}

#[test]
fn swapped_entries_are_caught() {
    let f = rich().copy();
    let b_id = f.id("b").to_string();
    tamper(&f, |db| {
        let t = tree(db, "entries");
        let six = t.get(be(6)).unwrap().unwrap();
        let seven = t.get(be(7)).unwrap().unwrap();
        t.insert(be(6), seven).unwrap();
        t.insert(be(7), six).unwrap();
    });
    let out = verify_fails(&f, &[]);
    // The id index still says b is entry 6, the stored leaf hashes are the old order's, and the
    // stored checkpoint no longer matches the tree.
    assert_names(
        &out,
        &[
            &format!("FAIL id-index: id index record {}", &b_id[..16]),
            "FAIL tree: stored tree hash",
            "latest stored checkpoint (size 17) does not match the recomputed tree",
        ],
    );
}

#[test]
fn deleted_id_index_record_is_caught() {
    let f = rich().copy();
    let a = hex::decode(f.id("a")).unwrap();
    tamper(&f, |db| {
        assert!(tree(db, "ids").remove(&a).unwrap().is_some());
    });
    let out = verify_fails(&f, &[]);
    assert_names(
        &out,
        &["FAIL id-index: the id index has 16 records for 17 entries"],
    );
    // A read through the damaged index fails cleanly too.
    let out = f.evl(["show", f.id("a")]);
    assert_eq!(out.code, 2, "{out:#?}");
}

#[test]
fn altered_tree_hash_is_named() {
    let f = rich().copy();
    tamper(&f, |db| {
        let t = tree(db, "hashes");
        let v = t.get(be(3)).unwrap().unwrap();
        t.insert(be(3), flip(&v, 31)).unwrap();
    });
    let out = verify_fails(&f, &[]);
    assert_names(
        &out,
        &[
            // Stored hash 3 is the leaf hash of entry 2 (level 0, node 2).
            "FAIL tree: entry 2 is not the entry the tree recorded at that position",
        ],
    );
}

#[test]
fn un_revoking_a_key_in_the_registry_index_is_caught() {
    let f = rich().copy();
    // KeyState tail for the contractor (codec: fixint LE, Option as a one-byte tag):
    // revoked_at Some(15), revoked_reason Some("contract ended").
    let mut tail = vec![1u8];
    tail.extend(15u64.to_le_bytes());
    tail.push(1);
    tail.extend(14u64.to_le_bytes());
    tail.extend(b"contract ended");
    tamper(&f, |db| {
        let t = tree(db, "keys");
        let (k, v) = t
            .iter()
            .map(Result::unwrap)
            .find(|(_, v)| v.ends_with(&tail))
            .expect("the contractor's key record");
        let mut un_revoked = v[..v.len() - tail.len()].to_vec();
        un_revoked.extend([0, 0]);
        t.insert(k, un_revoked).unwrap();
    });
    let out = verify_fails(&f, &[]);
    assert_names(
        &out,
        &["FAIL key-index: the stored key registry differs from the one the key entries define"],
    );
    // The forged index lets the revoked key append (append trusts the index) — but verify
    // recomputes the registry from the key entries and names the entry.
    let file = f.file("late.txt", b"signed after revocation\n");
    let out = f.evl([
        "add",
        file.to_str().unwrap(),
        "--kind",
        "telemetry",
        "--tier",
        "operational",
        "--key",
        f.key("contractor").to_str().unwrap(),
    ]);
    if out.code == 0 {
        let out = verify_fails(&f, &[]);
        assert_names(
            &out,
            &["entry 17", "'contractor'", "revoked at log position 15"],
        );
    } else {
        out.refused(3, &["contractor"]);
    }
}

#[test]
fn altered_key_record_byte_is_caught() {
    let f = rich().copy();
    tamper(&f, |db| {
        let t = tree(db, "keys");
        let (k, v) = t.iter().next().unwrap().unwrap();
        t.insert(k, flip(&v, v.len() - 1)).unwrap();
    });
    let out = verify_fails(&f, &[]);
    assert_names(&out, &["FAIL key-index"]);
}

#[test]
fn entry_spliced_from_another_ledger_is_named() {
    // Another ledger under the same admin key: its entry 1 is signed by a key that is an
    // admin here too, so only its ledger binding gives it away.
    let f = rich().copy();
    let other = f.path("other");
    run(evl_bin().arg("--ledger").arg(&other).args([
        "init",
        "--origin",
        "example.org/other",
        "--admin",
        f.public("admin").to_str().unwrap(),
        "--key",
        f.key("admin").to_str().unwrap(),
    ]))
    .ok();
    run(evl_bin().arg("--ledger").arg(&other).args([
        "key",
        "add",
        "intruder",
        "--pub",
        f.public("stranger").to_str().unwrap(),
        "--role",
        "owner",
        "--key",
        f.key("admin").to_str().unwrap(),
    ]))
    .ok();
    let foreign = {
        let db = sled::open(&other).unwrap();
        let v = tree(&db, "entries").get(be(1)).unwrap().unwrap().to_vec();
        v
    };
    tamper(&f, |db| {
        tree(db, "entries").insert(be(RICH_SIZE), foreign).unwrap();
        tree(db, "meta").insert("size", &be(RICH_SIZE + 1)).unwrap();
    });
    let out = verify_fails(&f, &[]);
    assert_names(&out, &["entry 17", "entry belongs to ledger"]);
}

#[test]
fn truncated_log_is_caught_by_the_checkpoints() {
    // Crude: drop the last entry and lower the size; the stored checkpoint catches it.
    let f = rich().copy();
    tamper(&f, |db| {
        tree(db, "entries").remove(be(RICH_SIZE - 1)).unwrap();
        tree(db, "meta").insert("size", &be(RICH_SIZE - 1)).unwrap();
    });
    let out = verify_fails(&f, &[]);
    assert_names(
        &out,
        &["covers 17 entries but the ledger has only 16: the ledger was rolled back or truncated"],
    );
}

#[test]
fn clean_rollback_is_caught_by_the_auditors_checkpoint() {
    // Careful: drop the last entry with its id record, its tree hashes and the stored
    // checkpoint, so the store is a consistent 16-entry ledger. Only a checkpoint the auditor
    // kept can tell — and must.
    let f = rich().copy();
    let last = hex::decode(f.id("last")).unwrap();
    let kept = |n: u64| 2 * n - u64::from(n.count_ones());
    tamper(&f, |db| {
        tree(db, "entries").remove(be(RICH_SIZE - 1)).unwrap();
        assert!(tree(db, "ids").remove(&last).unwrap().is_some());
        let hashes = tree(db, "hashes");
        for i in kept(RICH_SIZE - 1)..kept(RICH_SIZE) {
            assert!(hashes.remove(be(i)).unwrap().is_some());
        }
        assert_eq!(hashes.len() as u64, kept(RICH_SIZE - 1));
        let meta = tree(db, "meta");
        meta.remove("checkpoint").unwrap();
        meta.insert("size", &be(RICH_SIZE - 1)).unwrap();
    });
    let out = f.evl(["--wait", "5", "verify"]).ok();
    assert!(out.stdout.starts_with("verified: 16 entries"), "{out:#?}");
    let note = f.path("auditor.note");
    let out = verify_fails(&f, &["--checkpoint", note.to_str().unwrap()]);
    assert_names(
        &out,
        &["covers 17 entries but the ledger has only 16: the ledger was rolled back or truncated"],
    );
}

#[test]
fn altered_checkpoints_are_caught() {
    // The stored checkpoint with its size edited.
    let f = rich().copy();
    tamper(&f, |db| {
        let meta = tree(db, "meta");
        let note = String::from_utf8(meta.get("checkpoint").unwrap().unwrap().to_vec()).unwrap();
        let edited = note.replacen("\n17\n", "\n16\n", 1);
        assert_ne!(edited, note);
        meta.insert("checkpoint", edited.as_bytes()).unwrap();
    });
    let out = verify_fails(&f, &[]);
    assert_names(
        &out,
        &[
            "FAIL checkpoint: latest stored checkpoint",
            "does not verify",
        ],
    );

    // An auditor's note whose root was edited, and one that is not a note at all.
    let f = rich().copy();
    let note = std::fs::read_to_string(f.path("auditor.note")).unwrap();
    let mut lines: Vec<String> = note.lines().map(String::from).collect();
    let mut root = lines[2].clone().into_bytes();
    root[0] = if root[0] == b'A' { b'B' } else { b'A' };
    lines[2] = String::from_utf8(root).unwrap();
    let edited = f.path("edited.note");
    std::fs::write(&edited, lines.join("\n") + "\n").unwrap();
    let out = verify_fails(&f, &["--checkpoint", edited.to_str().unwrap()]);
    assert_names(&out, &["FAIL checkpoint: checkpoint", "does not verify"]);
    let junk = f.path("junk.note");
    std::fs::write(&junk, "not a note\n").unwrap();
    let out = verify_fails(&f, &["--checkpoint", junk.to_str().unwrap()]);
    assert_names(&out, &["not a well-formed signed note"]);
}

/// Where `needle` occurs in `hay`.
fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn flipped_bytes_in_the_raw_sled_files_never_pass_or_panic() {
    // Live bytes we can find in sled's files: an artifact's content and an annotation's text.
    // sled may refuse the file (storage error, exit 5) or hand back altered values that
    // verify names (exit 1); it must never verify, and evl must never panic.
    for needle in [
        &b"rollback drill A: passed"[..],
        b"superseded by the platform export",
        b"east-west authorization policy acknowledged",
    ] {
        let f = rich().copy();
        let mut hits = 0;
        for entry in walk(&f.ledger()) {
            let mut bytes = std::fs::read(&entry).unwrap();
            let at = find_all(&bytes, needle);
            for i in &at {
                bytes[i + needle.len() / 2] ^= 0x01;
            }
            hits += at.len();
            std::fs::write(&entry, bytes).unwrap();
        }
        assert!(hits > 0, "{needle:?} not found in the raw store");
        let note = f.path("auditor.note");
        let out = f.evl([
            "--wait",
            "5",
            "verify",
            "--checkpoint",
            note.to_str().unwrap(),
        ]);
        assert!(
            out.code == INVALID || out.code == STORAGE,
            "raw flip of {:?} not caught: {out:#?}",
            String::from_utf8_lossy(needle)
        );
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn pseudo_random_raw_flips_never_panic() {
    // Flips at pseudo-random non-zero bytes of the `db` file. A flip in dead space may go
    // unnoticed (sled no longer reads it), so only "never panics" and "if it verifies, the
    // auditor's checkpoint still matches" are asserted.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..6 {
        let f = rich().copy();
        let path = f.ledger().join("db");
        let mut bytes = std::fs::read(&path).unwrap();
        let live: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] != 0).collect();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = live[(x % live.len() as u64) as usize];
        bytes[at] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
        let note = f.path("auditor.note");
        let out = f.evl([
            "--wait",
            "5",
            "verify",
            "--checkpoint",
            note.to_str().unwrap(),
        ]);
        assert!(
            [0, INVALID, STORAGE].contains(&out.code),
            "flip at {at}: {out:#?}"
        );
        if out.code == 0 {
            assert!(out.stdout.contains("(size 17) is consistent"), "{out:#?}");
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
