//! Tamper evidence for store layout 2 (docs/FORMAT.md §"Store layout"): edit a ledger's files
//! behind evl's back and check that `evl verify` fails with exit 1, names every structure that
//! is wrong (`FAIL <structure>: …` on stderr, the same failures with their entry index in
//! `--json`), never panics, and passes only when the edit is provably harmless: derived data
//! that evl rebuilds or ignores, or a damaged final batch that reads as an interrupted write.
//!
//! Each test edits a private copy of the rich ledger (tests/common/mod.rs: 17 entries, 5 blobs,
//! 15 commits, a stored checkpoint of size 17 and the auditor's copy of it in `auditor.note`),
//! or, for the lookup runs, of a ledger of 2,104 entries built with the library. The edits:
//!
//! - **in place**: bytes of `log` overwritten, same length, `index/` left as it is (bit rot, a
//!   careless editor). The check hash of the commit closing the batch no longer matches
//!   (`FAIL log`), and the index still describes the original bytes.
//! - **re-sealed**: the log rewritten by [`store::rewrite`] (every commit's counts, pointers,
//!   tree root and check hash recomputed, `index/` dropped), or one commit's check hash
//!   recomputed in place ([`reseal_commit`]): a careful forger. Only signatures, artifact
//!   digests, the key registry fold and checkpoints can tell.
//! - **index**: a derived file under `index/` edited. verify names the record with the hint to
//!   delete the directory, and deleting it makes the ledger verify again.
//!
//! Shared helpers first, then one test per kind of edit.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use common::store::{self, Rec};
use common::{Fixture, ORIGIN, Out, RICH_BLOBS, RICH_SIZE, evl_bin, rich, run};
use evl::entry::{Annotation, AnnotationKind, ArtifactMeta, KeyGrant, Payload, Scope, Tier};
use evl::keys::{Role, SecretKey};
use evl::store::{Draft, Ledger};
use evl::timestamp::Timestamp;

const INVALID: i32 = 1;
const STORAGE: i32 = 5;
/// What verify appends to its failures of index records and runs.
const HINT: &str = "(delete the ledger's index directory to rebuild it from the log)";
/// Commits in the rich ledger: one per command that appended, one for the checkpoint.
const RICH_COMMITS: u64 = 15;

// ---------------------------------------------------------------------------------------------
// Running verify

/// One `FAIL` line of `evl verify`, as `--json` reports it.
#[derive(Clone, Debug)]
struct Failure {
    structure: String,
    index: Option<u64>,
    reason: String,
}

/// An expected failure: its structure, entry index, and a piece of its reason.
type Want = (&'static str, Option<u64>, String);

fn want(structure: &'static str, index: Option<u64>, needle: impl Into<String>) -> Want {
    (structure, index, needle.into())
}

/// How verify names the ledger's own (latest stored) checkpoint.
const STORED: &str = "latest stored checkpoint";

/// The batch closed by the commit record at `commit` (`size` entries) fails its check hash.
fn check_fails(commit: u64, size: u64) -> Want {
    want(
        "log",
        None,
        format!(
            "the batch closed by the commit at log offset {commit} (size {size}) does not match its check hash: stored bytes were altered"
        ),
    )
}

/// Checkpoint `source` (size 17) does not match the tree of the entries.
fn rewritten(source: &str) -> Want {
    want(
        "checkpoint",
        None,
        format!("{source} (size 17) does not match the recomputed tree: history was rewritten"),
    )
}

/// Checkpoint `source` (size 17) covers more entries than the 16 left.
fn rolled_back(source: &str) -> Want {
    want(
        "checkpoint",
        None,
        format!(
            "{source} covers 17 entries but the ledger has only 16: the ledger was rolled back or truncated"
        ),
    )
}

/// Checkpoint `source` is a well-formed note whose signature does not verify.
fn bad_signature(source: &str) -> Want {
    want(
        "checkpoint",
        None,
        format!("{source}: the checkpoint signature by {ORIGIN}+"),
    )
}

/// An `index` failure, with the hint to delete the directory.
fn index_fails(index: Option<u64>, what: impl std::fmt::Display) -> Want {
    want("index", index, format!("{what} {HINT}"))
}

/// An `index` failure while the log itself was altered: then the index is evidence, and
/// verify does not suggest deleting it.
fn index_fails_log_altered(index: Option<u64>, what: impl std::fmt::Display) -> Want {
    want(
        "index",
        index,
        format!("{what} (the log was altered too: keep the index as evidence)"),
    )
}

/// A failed `evl verify`: text and JSON output, checked to agree.
struct Verdict {
    out: Out,
    failures: Vec<Failure>,
}

impl Verdict {
    /// Asserts the failures are exactly `wanted`, in any order: each failure matches one
    /// wanted (structure, index, reason containing the needle) and none is left over.
    fn exactly(&self, wanted: &[Want]) {
        let mut left: Vec<&Failure> = self.failures.iter().collect();
        for (structure, index, needle) in wanted {
            let at = left.iter().position(|f| {
                f.structure == *structure && f.index == *index && f.reason.contains(needle.as_str())
            });
            match at {
                Some(i) => {
                    left.remove(i);
                }
                None => panic!(
                    "verify did not report {structure} {index:?} {needle:?}: {:#?}",
                    self.out
                ),
            }
        }
        assert!(
            left.is_empty(),
            "unexpected failures {left:#?} in {:#?}",
            self.out
        );
    }

    /// Asserts some failure matches `wanted` (structure, index, reason containing the needle).
    fn names(&self, wanted: Want) {
        let (structure, index, needle) = wanted;
        assert!(
            self.failures.iter().any(|f| f.structure == structure
                && f.index == index
                && f.reason.contains(needle.as_str())),
            "verify did not report {structure} {index:?} {needle:?}: {:#?}",
            self.out
        );
    }

    /// How many failures each structure has.
    fn counts(&self) -> BTreeMap<&str, usize> {
        let mut m = BTreeMap::new();
        for f in &self.failures {
            *m.entry(f.structure.as_str()).or_default() += 1;
        }
        m
    }

    /// The entry indexes named anywhere.
    fn indexes(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.failures.iter().filter_map(|f| f.index).collect();
        v.dedup();
        v
    }
}

/// Runs `evl verify EXTRA…` and `evl verify --json EXTRA…`, asserts both failed as tampered
/// (exit 1; one `FAIL` line per failure and a count; JSON `verified: false` with the same
/// failures) and returns what they said.
fn verify_fails(f: &Fixture, extra: &[&str]) -> Verdict {
    let out = f.evl(["verify"].iter().chain(extra));
    assert_eq!(out.code, INVALID, "tampering went unnoticed: {out:#?}");
    assert!(out.stdout.is_empty(), "{out:#?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    let (summary, fails) = lines.split_last().expect("verify printed something");
    assert_eq!(
        *summary,
        format!("evl: verification failed: {} problem(s)", fails.len()),
        "{out:#?}"
    );
    let json = f.evl(["verify", "--json"].iter().chain(extra));
    assert_eq!(json.code, INVALID, "{json:#?}");
    let v = json.json();
    assert_eq!(v["verified"], false, "{json:#?}");
    let failures: Vec<Failure> = v["report"]["failures"]
        .as_array()
        .expect("a failures array")
        .iter()
        .map(|x| Failure {
            structure: x["structure"].as_str().unwrap().to_string(),
            index: x["index"].as_u64(),
            reason: x["reason"].as_str().unwrap().to_string(),
        })
        .collect();
    let text: Vec<String> = failures
        .iter()
        .map(|x| format!("FAIL {}: {}", x.structure, x.reason))
        .collect();
    assert_eq!(fails, text, "text and JSON disagree: {out:#?}");
    Verdict { out, failures }
}

/// Runs `evl verify EXTRA…`, asserts it verified `size` entries, returns the JSON report.
fn verifies(f: &Fixture, extra: &[&str], size: u64) -> serde_json::Value {
    let out = f.evl(["verify"].iter().chain(extra));
    assert_eq!(out.code, 0, "expected the ledger to verify: {out:#?}");
    assert!(
        out.stdout
            .starts_with(&format!("verified: {size} entries, {size} signatures")),
        "{out:#?}"
    );
    let json = f.evl(["verify", "--json"].iter().chain(extra)).ok().json();
    assert_eq!(json["verified"], true);
    json["report"].clone()
}

/// `--checkpoint <the auditor's note>` and how verify names it.
fn auditor(f: &Fixture) -> (String, String) {
    let p = f.path("auditor.note").display().to_string();
    let source = format!("checkpoint {p}");
    (p, source)
}

/// Deletes `index/` and asserts the ledger verifies again: the edit was to derived data only.
fn dropping_the_index_repairs(f: &Fixture, size: u64) {
    store::drop_index(&f.ledger());
    verifies(f, &[], size);
}

// ---------------------------------------------------------------------------------------------
// Reading and editing the files (docs/FORMAT.md §"Store layout")

/// Bytes before a record's body: tag u8, length u32.
const HEADER: u64 = 5;
/// Commit body fields: byte offsets within the body.
const SIZE: u64 = 0;
const BLOBS: u64 = 8;
const BATCH_START: u64 = 16;
const REGISTRY: u64 = 24;
const CHECKPOINT: u64 = 32;
const ROOT: u64 = 40;
const CHECK: u64 = 72;

fn records(f: &Fixture) -> Vec<Rec> {
    store::records(&f.ledger())
}

fn tagged(f: &Fixture, tag: u8) -> Vec<Rec> {
    records(f).into_iter().filter(|r| r.tag == tag).collect()
}

/// The record of entry `i`.
fn entry_record(f: &Fixture, i: u64) -> Rec {
    tagged(f, store::ENTRY).swap_remove(i as usize)
}

/// The blob record holding `content`.
fn blob_record(f: &Fixture, content: &[u8]) -> Rec {
    let d = blake3::hash(content);
    tagged(f, store::BLOB)
        .into_iter()
        .find(|r| r.body[..32] == *d.as_bytes())
        .expect("the blob is stored")
}

/// The commit record closing the batch that holds the record at `offset`.
fn commit_after(f: &Fixture, offset: u64) -> Rec {
    tagged(f, store::COMMIT)
        .into_iter()
        .find(|c| c.offset > offset)
        .expect("a commit follows")
}

/// A u64 field of a commit record.
fn field(commit: &Rec, at: u64) -> u64 {
    u64::from_le_bytes(
        commit.body[at as usize..at as usize + 8]
            .try_into()
            .unwrap(),
    )
}

/// Offset just past a record.
fn end(r: &Rec) -> u64 {
    r.offset + HEADER + r.body.len() as u64
}

fn read(f: &Fixture, file: &str) -> Vec<u8> {
    std::fs::read(f.ledger().join(file)).unwrap()
}

/// Flips bits `mask` of byte `offset` of `file` (relative to the ledger directory).
fn flip(f: &Fixture, file: &str, offset: u64, mask: u8) {
    let b = read(f, file)[offset as usize];
    store::poke(&f.ledger(), file, offset, &[b ^ mask]);
}

/// Cuts `file` to `len` bytes.
fn cut(f: &Fixture, file: &str, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(f.ledger().join(file))
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Overwrites u64 field `at` of the commit record at `commit`.
fn set_field(f: &Fixture, commit: u64, at: u64, value: u64) {
    store::poke(
        &f.ledger(),
        "log",
        commit + HEADER + at,
        &value.to_le_bytes(),
    );
}

/// Recomputes, in place, the check hash of the commit record at `commit` over the log as it
/// now is, from the batch start the commit records: the batch and the commit's fields then
/// check, whatever was edited.
fn reseal_commit(f: &Fixture, commit: u64) {
    let log = read(f, "log");
    let body = (commit + HEADER) as usize;
    let start = u64::from_le_bytes(log[body + 16..body + 24].try_into().unwrap()) as usize;
    let check = blake3::Hasher::new()
        .update(b"evl/store-commit/v2\n")
        .update(&log[start..body + CHECK as usize])
        .finalize();
    store::poke(
        &f.ledger(),
        "log",
        commit + HEADER + CHECK,
        check.as_bytes(),
    );
}

/// Re-seals the log as it now is (see [`store::rewrite`]), dropping the index.
fn reseal(f: &Fixture) {
    store::rewrite(&f.ledger(), |_, body| Some(body.to_vec()));
}

/// Re-seals the log with entry `i`'s bytes replaced by `edit(i, bytes)` (None drops it).
fn rewrite_entries(f: &Fixture, mut edit: impl FnMut(u64, &[u8]) -> Option<Vec<u8>>) {
    let mut i = 0;
    store::rewrite(&f.ledger(), |tag, body| {
        if tag != store::ENTRY {
            return Some(body.to_vec());
        }
        i += 1;
        edit(i - 1, body)
    });
}

/// Inserts `bytes` into the log at `offset` (the caller re-seals).
fn insert_into_log(f: &Fixture, offset: u64, bytes: &[u8]) {
    let mut log = read(f, "log");
    log.splice(offset as usize..offset as usize, bytes.iter().copied());
    std::fs::write(f.ledger().join("log"), log).unwrap();
}

/// An entry record: tag, length, body.
fn entry_record_bytes(body: &[u8]) -> Vec<u8> {
    let mut r = vec![store::ENTRY];
    r.extend((body.len() as u32).to_le_bytes());
    r.extend(body);
    r
}

/// u64 record `i` of an 8-byte index file.
fn index_u64(f: &Fixture, file: &str, i: u64) -> u64 {
    let b = read(f, file);
    u64::from_le_bytes(b[i as usize * 8..i as usize * 8 + 8].try_into().unwrap())
}

/// Stored tree hashes of a tree of `n` leaves (FORMAT: Go tlog's numbering).
fn stored_hash_count(n: u64) -> u64 {
    2 * n - u64::from(n.count_ones())
}

/// Cuts the log just past `commit` and every index file to the records that commit defines:
/// the ledger as it was when that commit was the newest (a clean rollback).
fn roll_back_to(f: &Fixture, commit: &Rec) {
    let commits = tagged(f, store::COMMIT)
        .iter()
        .position(|c| c.offset == commit.offset)
        .unwrap() as u64
        + 1;
    let (size, blobs) = (field(commit, SIZE), field(commit, BLOBS));
    cut(f, "log", end(commit));
    for (file, len) in [
        ("index/entries", 8 * size),
        ("index/ids", 48 * size),
        ("index/blobs", 48 * blobs),
        ("index/hashes", 32 * stored_hash_count(size)),
        ("index/commits", 8 * commits),
    ] {
        cut(f, file, len);
    }
}

fn digest_hex(content: &[u8]) -> String {
    blake3::hash(content).to_hex().to_string()
}

/// The id of stored entry bytes: BLAKE3 of everything before the signature.
fn id_hex(entry: &[u8]) -> String {
    digest_hex(&entry[..entry.len() - 64])
}

/// Artifact contents of the rich ledger (tests/common/mod.rs).
const A: &[u8] = b"rollback drill A: passed\n";
const B: &[u8] = b"kind: AuthorizationPolicy\nname: east-west\n";
const C: &[u8] = b"workload,namespace\npayments-api,payments\n";
const D: &[u8] = b"contractor's telemetry export\n";

/// splitmix64, so the pseudo-random offsets are the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

// ---------------------------------------------------------------------------------------------
// A ledger with lookup runs

/// Artifacts in the big ledger's one large batch: over the 2,048 records after which a writer
/// sorts the ids and blobs index records into a run.
const BIG_BATCH: u64 = 2100;
/// Entries of the big ledger: genesis, the batch, and three annotations after the runs.
const BIG_SIZE: u64 = 1 + BIG_BATCH + 3;

/// A ledger built once per test binary with the library: genesis, [`BIG_BATCH`] artifacts in
/// one batch (so `index/` holds `ids.0-2101.run` and `blobs.0-2100.run`), then three
/// annotations left in the ids tail.
fn big() -> &'static Fixture {
    static BIG: OnceLock<Fixture> = OnceLock::new();
    BIG.get_or_init(|| {
        const T0: i64 = 1_776_470_400; // 2026-04-18T00:00:00Z
        let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let key = SecretKey::demo_from_phrase("evl tamper test admin");
        let grant = KeyGrant {
            name: "admin".into(),
            public_key: key.public(),
            roles: vec![Role::Admin, Role::Owner, Role::Reviewer],
        };
        let path = root.path().join("ledger");
        let ledger = Ledger::init(
            &path,
            "example.org/evl-tamper",
            vec![grant],
            &key,
            Timestamp(T0),
        )
        .unwrap();
        let drafts = (0..BIG_BATCH)
            .map(|i| {
                let bytes = format!("evidence {i}\n").into_bytes();
                Draft {
                    payload: Payload::Artifact(ArtifactMeta {
                        content: evl::Digest::of(&bytes),
                        size: bytes.len() as u64,
                        kind: "bulk".into(),
                        file_name: format!("e{i}.txt"),
                        tier: Tier::Operational,
                        captured_at: Timestamp(T0),
                        valid_until: None,
                        scope: Scope::default(),
                        sealed: false,
                        supersedes: None,
                        labels: BTreeMap::new(),
                        facts: None,
                    }),
                    claimed_at: Timestamp(T0 + 1),
                    blobs: vec![bytes],
                }
            })
            .collect();
        ledger.append_batch(drafts, &key, None).unwrap();
        for i in 0..3u64 {
            let draft = Draft {
                payload: Payload::Annotation(Annotation {
                    subject: evl::Digest::of(&i.to_le_bytes()),
                    kind: AnnotationKind::Note,
                    scope: Scope::default(),
                    text: format!("after the runs {i}"),
                }),
                claimed_at: Timestamp(T0 + 2),
                blobs: vec![],
            };
            ledger.append(draft, &key).unwrap();
        }
        drop(ledger);
        Fixture {
            root,
            ids: Default::default(),
        }
    })
}

/// The run files of the big ledger's index, by name.
fn run_files(f: &Fixture) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(f.ledger().join("index"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".run"))
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn the_untouched_copy_verifies_and_has_the_documented_layout() {
    // The baseline every edit starts from, and the layout the edits below rely on.
    let f = rich().copy();
    let (note, source) = auditor(&f);
    let out = f.evl(["verify", "--checkpoint", &note]).ok();
    assert!(
        out.stdout
            .starts_with("verified: 17 entries, 17 signatures, 5 artifacts"),
        "{out:#?}"
    );
    assert!(
        out.stdout
            .contains(&format!("{source} (size 17) is consistent")),
        "{out:#?}"
    );
    let count = |tag| tagged(&f, tag).len() as u64;
    assert_eq!(count(store::ENTRY), RICH_SIZE);
    assert_eq!(count(store::BLOB), RICH_BLOBS);
    assert_eq!(count(store::COMMIT), RICH_COMMITS);
    assert_eq!(count(store::CHECKPOINT), 1);
    // Every byte is framed: the records end where the log ends, with a commit.
    let recs = records(&f);
    assert_eq!(end(recs.last().unwrap()), read(&f, "log").len() as u64);
    assert_eq!(recs.last().unwrap().tag, store::COMMIT);
    for (file, len) in [
        ("index/entries", 8 * RICH_SIZE),
        ("index/ids", 48 * RICH_SIZE),
        ("index/blobs", 48 * RICH_BLOBS),
        ("index/hashes", 32 * stored_hash_count(RICH_SIZE)),
        ("index/commits", 8 * RICH_COMMITS),
    ] {
        assert_eq!(read(&f, file).len() as u64, len, "{file}");
    }
}

/// Byte positions in entry 9 (the reviewer's concern on a): its format field, a letter of its
/// text, the last signature byte; and what verify says of the entry once each is flipped.
fn entry_nine_flips() -> [(usize, &'static str); 3] {
    let body = entry_record(rich(), 9).body;
    let text = b"sidecar compatibility unresolved";
    let in_text = body.windows(text.len()).position(|w| w == text).unwrap() + 3;
    [
        (
            0,
            "entry 9 does not decode: entry format 33 is not one this evl reads",
        ),
        (in_text, "entry 9: the signature does not verify"),
        (body.len() - 1, "entry 9: the signature does not verify"),
    ]
}

#[test]
fn flipped_entry_byte_in_place_names_the_batch_and_the_entry() {
    // The index is left describing the original bytes.
    for (n, (at, named)) in entry_nine_flips().into_iter().enumerate() {
        let f = rich().copy();
        let rec = entry_record(&f, 9);
        let commit = commit_after(&f, rec.offset);
        flip(&f, "log", rec.offset + HEADER + at as u64, 0x20);
        let v = verify_fails(&f, &[]);
        v.names(want("entry", Some(9), named));
        v.names(check_fails(commit.offset, 10));
        v.names(want(
            "tree",
            Some(9),
            "entry 9 is not the entry the tree recorded at that position",
        ));
        v.names(rewritten(STORED));
        // The text flip leaves an entry that decodes under another id.
        let id_changed = n == 1;
        if id_changed {
            v.names(index_fails_log_altered(
                Some(9),
                "the id index record of entry 9 does not match its id",
            ));
        }
        // Besides: the stored hashes above leaf 9 (levels 1 to 4) and the root of every
        // commit from size 10 on (8 commits). No other entry is named.
        for x in v.failures.iter().filter(|x| x.structure == "log") {
            let size = x.reason.split("size ").nth(1).unwrap();
            let size: u64 = size[..size.find([' ', ')']).unwrap()].parse().unwrap();
            assert!(size >= 10, "{x:?}");
        }
        let mut expected =
            BTreeMap::from([("checkpoint", 1), ("entry", 1), ("log", 1 + 8), ("tree", 5)]);
        if id_changed {
            expected.insert("index", 1);
        }
        assert_eq!(v.counts(), expected, "{:#?}", v.out);
        assert_eq!(v.indexes(), vec![9], "{:#?}", v.out);
    }
}

#[test]
fn flipped_entry_byte_resealed_is_named_by_its_signature_and_the_checkpoints() {
    // The same flips, but the forger re-seals the log: every check hash and commit root
    // matches and the index is rebuilt from the forged log. The entry's own signature (or
    // encoding) and both checkpoints still tell.
    for (at, named) in entry_nine_flips() {
        let f = rich().copy();
        rewrite_entries(&f, |i, body| {
            let mut body = body.to_vec();
            if i == 9 {
                body[at] ^= 0x20;
            }
            Some(body)
        });
        let (note, source) = auditor(&f);
        verify_fails(&f, &["--checkpoint", &note]).exactly(&[
            want("entry", Some(9), named),
            rewritten(STORED),
            rewritten(&source),
        ]);
    }
}

#[test]
fn flipped_artifact_byte_names_the_artifact_and_its_entry() {
    // c.csv, carried by entry 7. In place: the bytes no longer hash to their address, and the
    // batch (entries 5-7 with their blobs) no longer matches its commit.
    let f = rich().copy();
    let rec = blob_record(&f, C);
    let altered = want(
        "artifact",
        Some(7),
        format!(
            "artifact {} (log offset {}) does not hash to its address (bytes altered)",
            digest_hex(C),
            rec.offset
        ),
    );
    flip(&f, "log", rec.offset + HEADER + 40 + 3, 0x20);
    verify_fails(&f, &[]).exactly(&[
        altered.clone(),
        check_fails(commit_after(&f, rec.offset).offset, 8),
    ]);

    // Re-sealed: only the digest tells. (The JSON index is the entry: `exactly` checks it.)
    let f = rich().copy();
    store::rewrite(&f.ledger(), |tag, body| {
        let mut body = body.to_vec();
        if tag == store::BLOB && body[40..] == *C {
            body[43] ^= 0x20;
        }
        Some(body)
    });
    verify_fails(&f, &[]).exactly(&[altered]);
}

/// Issue 12 item 3: a blob record's entry-index field pointed at a later entry that carries the
/// same digest (a.txt: entries 5 and 13), re-sealed. Resolving the digest would yield entry 13;
/// verify names the field.
#[test]
fn blob_entry_index_moved_to_a_later_carrier_is_named() {
    let f = rich().copy();
    store::rewrite(&f.ledger(), |tag, body| {
        let mut body = body.to_vec();
        if tag == store::BLOB && body[40..] == *A {
            assert_eq!(u64::from_le_bytes(body[32..40].try_into().unwrap()), 5);
            body[32..40].copy_from_slice(&13u64.to_le_bytes());
        }
        Some(body)
    });
    verify_fails(&f, &[]).exactly(&[want(
        "artifact",
        Some(5),
        format!(
            "the blob record of {} (log offset {}) follows entry 5 but names entry 13",
            digest_hex(A),
            blob_record(&f, A).offset
        ),
    )]);
    // Resolving the digest to its entry refuses instead of yielding entry 13; showing the
    // artifact's bytes (checked against the digest) needs no entry and still works.
    f.evl(["proof", "inclusion", &digest_hex(A)]).refused(
        INVALID,
        &["names entry 13, whose record it does not follow"],
    );
    let shown = f.evl(["show", "--json", &digest_hex(A)]).ok().json();
    assert_eq!(shown["artifact"], digest_hex(A));
    assert_eq!(shown["size"], A.len());
}

/// Issue 12 item 2: the first byte of an artifact's stored content flipped — in place, and
/// re-sealed so that every commit check matches. `evl cat` must never print the altered bytes:
/// they are hashed against the digest first.
#[test]
fn cat_never_prints_altered_artifact_bytes() {
    let d = digest_hex(A);
    // In place: the batch no longer matches its check and a complete commit follows it.
    let f = rich().copy();
    let rec = blob_record(&f, A);
    flip(&f, "log", rec.offset + HEADER + 40, 0x01);
    let out = f.evl(["cat", &d]);
    assert_ne!(out.code, 0, "{out:#?}");
    out.refused(out.code, &[]);
    // Re-sealed: only the digest tells.
    let f = rich().copy();
    store::rewrite(&f.ledger(), |tag, body| {
        let mut body = body.to_vec();
        if tag == store::BLOB && body[40..] == *A {
            body[40] ^= 0x01;
        }
        Some(body)
    });
    f.evl(["cat", &d])
        .refused(INVALID, &[&d, "no longer hash to it"]);
    // The other artifacts still print, exactly.
    assert_eq!(f.evl(["cat", &digest_hex(B)]).ok().stdout.as_bytes(), B);
}

#[test]
fn removed_artifact_blob_names_every_entry_that_refers_to_it() {
    // Re-sealed without the blob record. d.txt is carried by entry 8 only; a.txt by entries 5
    // and 13 (stored once).
    for (content, entries) in [(D, &[8][..]), (A, &[5, 13][..])] {
        let f = rich().copy();
        store::rewrite(&f.ledger(), |tag, body| {
            (tag != store::BLOB || body[40..] != *content).then(|| body.to_vec())
        });
        assert_eq!(tagged(&f, store::BLOB).len() as u64, RICH_BLOBS - 1);
        let d = digest_hex(content);
        let wanted: Vec<Want> = entries
            .iter()
            .map(|&i| {
                want(
                    "artifact",
                    Some(i),
                    format!("entry {i} refers to artifact {d}, whose bytes are missing"),
                )
            })
            .collect();
        verify_fails(&f, &[]).exactly(&wanted);
    }
}

#[test]
fn deleted_entry_is_caught() {
    // Entry 9 deleted, re-sealed. Every later entry moves down one position: the registry
    // snapshots (now at sizes 11 and 15) record key positions the key entries no longer give,
    // blob e is attributed to entry 12, no longer its entry, and both checkpoints cover more
    // entries than are left.
    let f = rich().copy();
    rewrite_entries(&f, |i, body| (i != 9).then(|| body.to_vec()));
    let (note, source) = auditor(&f);
    let e = b"unvetted vendor scan\n";
    verify_fails(&f, &["--checkpoint", &note]).exactly(&[
        want(
            "artifact",
            Some(11),
            format!(
                "the blob record of {} (log offset {}) follows entry 11 but names entry 12",
                digest_hex(e),
                blob_record(&f, e).offset
            ),
        ),
        want(
            "registry",
            None,
            "differs from the one the key entries define at size 11",
        ),
        want(
            "registry",
            None,
            "differs from the one the key entries define at size 15",
        ),
        want(
            "registry",
            None,
            "the key registry the newest commit names differs from the one the key entries define",
        ),
        rolled_back(STORED),
        rolled_back(&source),
    ]);

    // The contractor's revocation (entry 15) deleted with the registry snapshot of its batch
    // and the stored checkpoint, re-sealed: no key position after it moves, so the ledger
    // verifies on its own — only the auditor's checkpoint can tell.
    let f = rich().copy();
    let revocation = entry_record(&f, 15);
    let snapshot = records(&f)
        .into_iter()
        .find(|r| r.tag == store::REGISTRY && r.offset > revocation.offset)
        .unwrap()
        .body;
    let mut entry = 0;
    store::rewrite(&f.ledger(), |tag, body| match tag {
        store::ENTRY => {
            entry += 1;
            (entry != 16).then(|| body.to_vec())
        }
        store::REGISTRY if body == snapshot => None,
        store::CHECKPOINT => None,
        _ => Some(body.to_vec()),
    });
    verifies(&f, &[], RICH_SIZE - 1);
    let (note, source) = auditor(&f);
    verify_fails(&f, &["--checkpoint", &note]).exactly(&[rolled_back(&source)]);
}

#[test]
fn swapped_entries_are_caught() {
    // Blob x's record names the entry that first carried it.
    let misattributed = |f: &Fixture, content: &[u8], i: u64| {
        want(
            "artifact",
            Some(i),
            format!(
                "artifact {} (log offset {}) is not carried by the entry it follows",
                digest_hex(content),
                blob_record(f, content).offset
            ),
        )
    };

    // In place: entries 5 and 7 (a and c, records of the same length) trade places; the index
    // still says where each was.
    let f = rich().copy();
    let (five, seven) = (entry_record(&f, 5), entry_record(&f, 7));
    assert_eq!(five.body.len(), seven.body.len());
    store::poke(&f.ledger(), "log", five.offset + HEADER, &seven.body);
    store::poke(&f.ledger(), "log", seven.offset + HEADER, &five.body);
    let v = verify_fails(&f, &[]);
    for i in [5, 7] {
        v.names(want(
            "tree",
            Some(i),
            format!("entry {i} is not the entry the tree recorded at that position"),
        ));
        v.names(index_fails_log_altered(
            Some(i),
            format!("the id index record of entry {i} does not match its id"),
        ));
    }
    v.names(misattributed(&f, A, 5));
    v.names(misattributed(&f, C, 7));
    v.names(check_fails(commit_after(&f, seven.offset).offset, 8));
    v.names(rewritten(STORED));
    assert_eq!(v.indexes(), vec![5, 7], "{:#?}", v.out);

    // Re-sealed, entries 6 and 7 swapped: their blob records still name the original
    // positions, and the checkpoints no longer match.
    let entries = store::entries(&rich().ledger());
    let swap = |f: &Fixture, x: usize, y: usize| {
        rewrite_entries(f, |i, body| {
            Some(match i as usize {
                i if i == x => entries[y].clone(),
                i if i == y => entries[x].clone(),
                _ => body.to_vec(),
            })
        })
    };
    let f = rich().copy();
    swap(&f, 6, 7);
    let (note, source) = auditor(&f);
    verify_fails(&f, &["--checkpoint", &note]).exactly(&[
        misattributed(&f, B, 6),
        misattributed(&f, C, 7),
        want(
            "artifact",
            Some(6),
            format!(
                "entry 6 is the first to carry artifact {}, but its blob record does not follow the entry's",
                digest_hex(C)
            ),
        ),
        rewritten(STORED),
        rewritten(&source),
    ]);

    // Re-sealed, entries 9 and 10 swapped (an annotation and an acknowledgment: no blobs, no
    // key change): only the checkpoints can tell.
    let f = rich().copy();
    swap(&f, 9, 10);
    let (note, source) = auditor(&f);
    verify_fails(&f, &["--checkpoint", &note]).exactly(&[rewritten(STORED), rewritten(&source)]);
}

#[test]
fn entry_spliced_from_another_ledger_is_named() {
    // Another ledger under the same admin key: its entry 1 (a key-add) is signed by a key that
    // is an admin here too, so only its ledger binding gives it away.
    let f = rich().copy();
    let other = f.path("other");
    let admin = [f.public("admin"), f.key("admin")].map(|p| p.display().to_string());
    let stranger = f.public("stranger").display().to_string();
    for args in [
        vec![
            "init",
            "--origin",
            "example.org/other",
            "--admin",
            &admin[0],
            "--key",
            &admin[1],
        ],
        vec![
            "key", "add", "intruder", "--pub", &stranger, "--role", "owner", "--key", &admin[1],
        ],
    ] {
        run(evl_bin().arg("--ledger").arg(&other).args(args)).ok();
    }
    let theirs = store::entries(&other);
    let foreign = theirs[1].clone();
    let belongs = |i: u64| {
        format!(
            "entry {i} ({}): entry belongs to ledger {} but this ledger is {}",
            &id_hex(&foreign)[..12],
            &id_hex(&theirs[0])[..12],
            &id_hex(&store::entries(&f.ledger())[0])[..12]
        )
    };

    // Added as entry 17 to the batch of entry 16, re-sealed. The tree of the first 17 entries
    // is unchanged, so both checkpoints are still consistent with it.
    let g = f.copy();
    let sixteen = entry_record(&g, 16);
    insert_into_log(&g, end(&sixteen), &entry_record_bytes(&foreign));
    reseal(&g);
    let (note, _) = auditor(&g);
    verify_fails(&g, &["--checkpoint", &note]).exactly(&[
        want("entry", Some(17), belongs(17)),
        want("registry", None, "holds a key entry but no registry record"),
    ]);

    // In place of entry 9, re-sealed.
    let g = f.copy();
    rewrite_entries(&g, |i, body| {
        Some(if i == 9 {
            foreign.clone()
        } else {
            body.to_vec()
        })
    });
    verify_fails(&g, &[]).exactly(&[
        want("entry", Some(9), belongs(9)),
        want("registry", None, "holds a key entry but no registry record"),
        rewritten(STORED),
    ]);
}

#[test]
fn registry_snapshot_edits_are_caught() {
    // The contractor's key state in the snapshot after its revocation (entry 15) ends with
    // revoked_at Some(15), revoked_reason Some("contract ended") (fixint LE, Option tag byte).
    let mut revoked = vec![1u8];
    revoked.extend(15u64.to_le_bytes());
    revoked.push(1);
    revoked.extend(14u64.to_le_bytes());
    revoked.extend(b"contract ended");
    // The snapshot the newest commit names.
    let snapshot = |f: &Fixture| {
        let at = field(&tagged(f, store::COMMIT).pop().unwrap(), REGISTRY);
        records(f).into_iter().find(|r| r.offset == at).unwrap()
    };
    let differs = |at: u64| {
        want(
            "registry",
            None,
            format!(
                "the key registry snapshot at log offset {at} differs from the one the key entries define at size 16"
            ),
        )
    };
    let newest = want(
        "registry",
        None,
        "the key registry the newest commit names differs from the one the key entries define",
    );

    // In place, its last byte flipped; the index intact.
    let f = rich().copy();
    let rec = snapshot(&f);
    flip(&f, "log", end(&rec) - 1, 0x20);
    verify_fails(&f, &[]).exactly(&[
        check_fails(commit_after(&f, rec.offset).offset, 16),
        differs(rec.offset),
        newest.clone(),
    ]);

    // Re-sealed in place: revoked_at set to u64::MAX (same length: the contractor's key never
    // stops counting) and the commit's check hash recomputed; the index intact.
    let f = rich().copy();
    let rec = snapshot(&f);
    let at = rec
        .body
        .windows(revoked.len())
        .position(|w| w == revoked)
        .unwrap() as u64;
    store::poke(
        &f.ledger(),
        "log",
        rec.offset + HEADER + at + 1,
        &u64::MAX.to_le_bytes(),
    );
    reseal_commit(&f, commit_after(&f, rec.offset).offset);
    verify_fails(&f, &[]).exactly(&[differs(rec.offset), newest.clone()]);
    // Appends trust the newest snapshot (they do not re-fold every key entry per append), so
    // the revoked key gets an entry in: exit 0 (docs/THREAT-MODEL.md, guarantee 4). Verify
    // folds the registry from the key entries and names that entry beside the edited snapshot.
    let late = f.file("late.txt", b"signed after revocation\n");
    let contractor = f.key("contractor").display().to_string();
    let out = f.evl([
        "add",
        late.to_str().unwrap(),
        "--kind",
        "telemetry-export",
        "--tier",
        "operational",
        "--key",
        &contractor,
    ]);
    let out = out.ok();
    assert!(out.stdout.starts_with("artifact "), "{out:#?}");
    let v = verify_fails(&f, &[]);
    v.exactly(&[
        want(
            "entry",
            Some(17),
            "was revoked at log position 15: contract ended",
        ),
        differs(rec.offset),
        newest.clone(),
    ]);
    v.names(want("entry", Some(17), "entry 17 ("));
    v.names(want("entry", Some(17), "signer key 'contractor' ("));

    // Re-sealed by rewriting the log: the revocation cut from the snapshot (None, None).
    let f = rich().copy();
    let original = snapshot(&f).body;
    store::rewrite(&f.ledger(), |tag, body| {
        if tag != store::REGISTRY || body != original {
            return Some(body.to_vec());
        }
        let at = body
            .windows(revoked.len())
            .position(|w| w == revoked)
            .unwrap();
        Some([&body[..at], &[0, 0], &body[at + revoked.len()..]].concat())
    });
    let rec = snapshot(&f);
    assert_eq!(rec.body.len(), original.len() - revoked.len() + 2);
    verify_fails(&f, &[]).exactly(&[differs(rec.offset), newest]);
}

#[test]
fn edited_id_index_records_are_named() {
    let mismatch = |i: u64| {
        index_fails(
            Some(i),
            format!("the id index record of entry {i} does not match its id"),
        )
    };
    // A byte of entry 5's record: verify names it; a lookup by id no longer finds a.
    let f = rich().copy();
    // A reader finds the record's check broken where the index's durability mark does not
    // vouch for it, reads those entries from the log instead, and shows the right entry.
    flip(&f, "index/ids", 5 * 48 + 3, 0x20);
    verify_fails(&f, &[]).exactly(&[mismatch(5)]);
    let shown = f.evl(["show", f.id("a"), "--json"]).ok().json();
    assert_eq!(
        (shown["index"].as_u64(), shown["id"].as_str()),
        (Some(5), Some(f.id("a")))
    );
    dropping_the_index_repairs(&f, RICH_SIZE);
    f.evl(["show", f.id("a")]).ok();

    // Entry 9's record deleted from the file: records 9-15 now hold the next entry's id. The
    // file is one record short, so the reader rebuilds the last one (entry 16) from the log.
    let f = rich().copy();
    let ids = read(&f, "index/ids");
    std::fs::write(
        f.ledger().join("index/ids"),
        [&ids[..9 * 48], &ids[10 * 48..]].concat(),
    )
    .unwrap();
    verify_fails(&f, &[]).exactly(&(9..16).map(mismatch).collect::<Vec<_>>());
    dropping_the_index_repairs(&f, RICH_SIZE);

    // The last record cut off, which is what an interrupted writer leaves: rebuilt from the
    // log, so harmless.
    let f = rich().copy();
    cut(&f, "index/ids", 48 * (RICH_SIZE - 1));
    verifies(&f, &[], RICH_SIZE);
}

#[test]
fn edited_blob_index_records_are_named() {
    let d = digest_hex(C);
    let mismatch = index_fails(None, "blob index record 2 does not match the log");
    // A byte of record 2's digest (c.csv): verify names the record; a lookup no longer finds c.
    let f = rich().copy();
    flip(&f, "index/blobs", 2 * 48, 0x01);
    verify_fails(&f, &[]).exactly(std::slice::from_ref(&mismatch));
    assert_eq!(f.evl(["cat", &d]).ok().stdout.as_bytes(), C);
    dropping_the_index_repairs(&f, RICH_SIZE);
    assert_eq!(f.evl(["cat", &d]).ok().stdout.as_bytes(), C);

    // Record 2's log offset pointed at b's blob record.
    let f = rich().copy();
    let b = blob_record(&f, B);
    store::poke(
        &f.ledger(),
        "index/blobs",
        2 * 48 + 32,
        &b.offset.to_le_bytes(),
    );
    verify_fails(&f, &[]).exactly(&[mismatch]);
    assert_eq!(f.evl(["cat", &d]).ok().stdout.as_bytes(), C);
    dropping_the_index_repairs(&f, RICH_SIZE);
    assert_eq!(f.evl(["cat", &d]).ok().stdout.as_bytes(), C);
}

#[test]
fn edited_entry_index_records_are_named() {
    // Entry 9's log offset pointed at entry 10's record.
    let f = rich().copy();
    let ten = entry_record(&f, 10);
    store::poke(
        &f.ledger(),
        "index/entries",
        9 * 8,
        &ten.offset.to_le_bytes(),
    );
    verify_fails(&f, &[]).exactly(&[index_fails(Some(9), "the entry index misplaces entry 9")]);
    // The reader finds the offset at a record outside entry 9's batch, reads that batch
    // from the log instead, and shows entry 9.
    let nine = id_hex(&entry_record(&f, 9).body);
    let shown = f.evl(["show", &nine, "--json"]).ok().json();
    assert_eq!(
        (shown["index"].as_u64(), shown["id"].as_str()),
        (Some(9), Some(nine.as_str()))
    );
    dropping_the_index_repairs(&f, RICH_SIZE);
    f.evl(["show", &nine]).ok();
}

#[test]
fn edited_tree_hashes_are_named() {
    // Stored hash 3 is the leaf hash of entry 2 (level 0, node 2); stored hash 17 is level 1,
    // node 4. Only the derived file changed: the log, its entries and commit roots are intact,
    // so verify blames the index file and names no entry.
    for (at, level, node) in [(3, 0, 2), (17, 1, 4)] {
        let f = rich().copy();
        flip(&f, "index/hashes", at * 32 + 31, 0x01);
        verify_fails(&f, &[]).exactly(&[want(
            "index",
            None,
            format!(
                "index/hashes record {at} (level {level}, node {node}) differs from the tree the entries define (delete the ledger's index directory to rebuild it from the log)"
            ),
        )]);
        dropping_the_index_repairs(&f, RICH_SIZE);
    }
}

#[test]
fn edited_commit_index_records_are_named() {
    let commits: Vec<u64> = tagged(rich(), store::COMMIT)
        .iter()
        .map(|c| c.offset)
        .collect();
    assert_eq!(
        commits,
        (0..RICH_COMMITS)
            .map(|k| index_u64(rich(), "index/commits", k))
            .collect::<Vec<_>>()
    );
    let last = RICH_COMMITS - 1;
    let set = |f: &Fixture, k: u64, offset: u64| {
        store::poke(&f.ledger(), "index/commits", k * 8, &offset.to_le_bytes())
    };

    // An older record pointed at the next commit: readers use only the newest, verify all.
    let f = rich().copy();
    set(&f, 5, commits[6]);
    verify_fails(&f, &[]).exactly(&[index_fails(
        None,
        "commit index record 5 does not match the log",
    )]);
    dropping_the_index_repairs(&f, RICH_SIZE);

    // The newest record pointed at the commit before it: the reader finds it does not chain
    // to the one before and reads the last batch from the log again, in memory.
    let f = rich().copy();
    set(&f, last, commits[last as usize - 1]);
    verify_fails(&f, &[]).exactly(&[index_fails(
        None,
        format!("commit index record {last} does not match the log"),
    )]);
    dropping_the_index_repairs(&f, RICH_SIZE);

    // The newest record pointed where no commit is (inside the log): not a commit the log
    // lost but a damaged index record; readers read that batch from the log again, verify
    // names the record.
    let f = rich().copy();
    let wrong = commits[last as usize] + 1;
    set(&f, last, wrong);
    verify_fails(&f, &[]).exactly(&[index_fails(
        None,
        format!("commit index record {last} does not match the log"),
    )]);
    f.evl(["log"]).ok();
    dropping_the_index_repairs(&f, RICH_SIZE);

    // The newest record cut off, which is what an interrupted writer leaves: harmless.
    let f = rich().copy();
    cut(&f, "index/commits", 8 * last);
    verifies(&f, &[], RICH_SIZE);
}

#[test]
fn edited_lookup_runs_are_named() {
    let b = big().copy();
    let ids = (format!("ids.0-{}.run", 1 + BIG_BATCH), 1 + BIG_BATCH);
    let blobs = (format!("blobs.0-{BIG_BATCH}.run"), BIG_BATCH);
    assert_eq!(run_files(&b), vec![blobs.0.clone(), ids.0.clone()]);
    verifies(&b, &[], BIG_SIZE);
    let first_id = id_hex(&store::entries(&b.ledger())[1]);
    for (name, count) in [ids, blobs] {
        let file = format!("index/{name}");
        // A byte of a record (a key, a value, the last byte): the run is no longer its range of
        // records, sorted.
        for at in [16 + 5, 16 + 48 * 1000 + 35, 16 + 48 * count - 1] {
            let f = big().copy();
            flip(&f, &file, at, 0x10);
            verify_fails(&f, &[]).exactly(&[index_fails(
                None,
                format!("the lookup run over index records 0..{count} does not match them"),
            )]);
            dropping_the_index_repairs(&f, BIG_SIZE);
        }
        // A byte of the run's magic, or the file cut short: the run is not used (lookups search
        // the records it would have covered), so nothing is wrong.
        for edit in [
            &(|f: &Fixture, file: &str| flip(f, file, 3, 0x01)) as &dyn Fn(&Fixture, &str),
            &|f: &Fixture, file: &str| cut(f, file, 16 + 48 * count - 1),
        ] {
            let f = big().copy();
            edit(&f, &file);
            verifies(&f, &[], BIG_SIZE);
            f.evl(["show", &first_id]).ok();
        }
    }
}

/// Where the index's durability mark vouches for a record (the big ledger's first batch), a
/// damaged record is not read again from the log: a lookup that reads it fails naming it, and
/// never answers wrongly.
#[test]
fn a_damaged_durable_index_record_is_refused_by_readers() {
    let first_id = id_hex(&store::entries(&big().ledger())[1]);
    let f = big().copy();
    // The dense record; lookups search the runs first, so remove them.
    flip(&f, "index/ids", 48 + 7, 0x04);
    for run in run_files(&f) {
        std::fs::remove_file(f.ledger().join("index").join(run)).unwrap();
    }
    f.evl(["show", &first_id]).refused(
        INVALID,
        &["index/ids record 1 is damaged (its check does not match)"],
    );
    dropping_the_index_repairs(&f, BIG_SIZE);
    f.evl(["show", &first_id]).ok();
}

#[test]
fn a_deleted_index_directory_is_rebuilt() {
    // docs/FORMAT.md: "deleting the directory is safe, and the next `evl` command rebuilds it".
    // Readers rebuild the index in memory; the next writer writes it.
    let f = rich().copy();
    store::drop_index(&f.ledger());
    verifies(&f, &[], RICH_SIZE);
    let reviewer = f.key("reviewer").display().to_string();
    let out = f.evl([
        "annotate",
        f.id("d"),
        "--kind",
        "note",
        "--text",
        "after the index was deleted",
        "--key",
        &reviewer,
    ]);
    assert_eq!(
        out.code, 0,
        "the first append after deleting index/ failed: {out:#?}"
    );
    verifies(&f, &[], RICH_SIZE + 1);
    assert_eq!(read(&f, "index/entries").len() as u64, 8 * (RICH_SIZE + 1));
    assert_eq!(
        read(&f, "index/commits").len() as u64,
        8 * (RICH_COMMITS + 1)
    );
}

/// The commit record of size 16, just before entry 16's batch.
fn commit_of_sixteen(f: &Fixture) -> Rec {
    let sixteen = entry_record(f, 16);
    tagged(f, store::COMMIT)
        .into_iter()
        .find(|c| end(c) == sixteen.offset)
        .unwrap()
}

#[test]
fn truncated_log_is_caught() {
    // Crude: the log cut after the commit of size 16 (entry 16 and the checkpoint gone), the
    // index left as it was: the first commit it names past the cut proves committed bytes
    // lost (index records are written only once the log bytes are durable), and the ledger
    // does not open.
    let f = rich().copy();
    let lost = tagged(&f, store::COMMIT)[RICH_COMMITS as usize - 2].clone();
    cut(&f, "log", end(&commit_of_sixteen(&f)));
    f.evl(["verify"]).refused(
        INVALID,
        &[&format!(
            "index/commits record {} names log offset {}, where the log holds no commit record: the log lost committed bytes (truncated or edited)",
            RICH_COMMITS - 2,
            lost.offset
        )],
    );

    // Careful: the index cut to match, a clean rollback to size 16. The ledger verifies on its
    // own; only the auditor's checkpoint can tell — and does.
    let f = rich().copy();
    roll_back_to(&f, &commit_of_sixteen(&f));
    verifies(&f, &[], RICH_SIZE - 1);
    let (note, source) = auditor(&f);
    verify_fails(&f, &["--checkpoint", &note]).exactly(&[rolled_back(&source)]);

    // Entry 16 dropped but the stored checkpoint kept, re-sealed: the stored one tells too.
    let f = rich().copy();
    rewrite_entries(&f, |i, body| (i != 16).then(|| body.to_vec()));
    verify_fails(&f, &[]).exactly(&[rolled_back(STORED)]);
}

#[test]
fn log_cut_mid_batch_opens_at_the_last_good_commit() {
    // The log cut inside entry 16's record with the index as of the commit before it (or
    // gone): what a crash during that append leaves. The ledger opens at size 16 — crash
    // recovery, not tampering — and the auditor's checkpoint shows what was lost.
    for drop_index in [false, true] {
        let f = rich().copy();
        let torn = read(&f, "log")[..(entry_record(&f, 16).offset + 50) as usize].to_vec();
        roll_back_to(&f, &commit_of_sixteen(&f));
        std::fs::write(f.ledger().join("log"), torn).unwrap();
        if drop_index {
            store::drop_index(&f.ledger());
        }
        verifies(&f, &[], RICH_SIZE - 1);
        let (note, source) = auditor(&f);
        verify_fails(&f, &["--checkpoint", &note]).exactly(&[rolled_back(&source)]);
        if !drop_index {
            // The next writer cuts the torn bytes off and appends at 16: the auditor's note now
            // contradicts the history.
            let reviewer = f.key("reviewer").display().to_string();
            f.evl([
                "annotate",
                f.id("d"),
                "--kind",
                "note",
                "--text",
                "after the crash",
                "--key",
                &reviewer,
            ])
            .ok();
            verifies(&f, &[], RICH_SIZE);
            verify_fails(&f, &["--checkpoint", &note]).exactly(&[rewritten(&source)]);
        }
    }
    // With the index still naming the lost commit it is no crash (the log is durable before
    // the index is written): the ledger does not open.
    let f = rich().copy();
    cut(&f, "log", entry_record(&f, 16).offset + 50);
    f.evl(["verify"]).refused(
        INVALID,
        &["where the log holds no commit record: the log lost committed bytes (truncated or edited)"],
    );
}

#[test]
fn flipped_log_byte_with_the_index_removed_is_refused() {
    let altered = |batch: u64, commit: u64| {
        format!(
            "the log's bytes from offset {batch} do not end in a commit that checks, yet a complete commit record follows at offset {commit}: they were altered or damaged after they were committed, not left by an interrupted append; evl will not cut them"
        )
    };
    // A byte of entry 9 flipped and the index deleted: the reader scans the log and finds a
    // batch that does not match its commit, although that commit record is complete — not a
    // torn write but an altered log — and refuses to open it, for verify as for any other
    // command; an append is refused too and leaves the log as it was.
    let f = rich().copy();
    let nine = entry_record(&f, 9);
    let batch = commit_after(&f, nine.offset - 1);
    let start = tagged(&f, store::COMMIT)
        .iter()
        .rev()
        .find(|c| c.offset < nine.offset)
        .map(end)
        .unwrap();
    flip(&f, "log", nine.offset + HEADER + 100, 0x20);
    store::drop_index(&f.ledger());
    let before = read(&f, "log");
    f.evl(["verify"])
        .refused(INVALID, &[&altered(start, batch.offset)]);
    f.evl(["log"])
        .refused(INVALID, &[&altered(start, batch.offset)]);
    let reviewer = f.key("reviewer").display().to_string();
    f.evl([
        "annotate",
        f.id("d"),
        "--kind",
        "note",
        "--text",
        "x",
        "--key",
        &reviewer,
    ])
    .refused(INVALID, &[&altered(start, batch.offset)]);
    assert!(
        read(&f, "log") == before,
        "a refused append changed the log"
    );

    // The same in the final batch (the stored checkpoint): its commit record is complete, so
    // it cannot be an interrupted append either, and nothing is cut.
    // "\n17\n" -> "\n16\n" in the note: still well formed, its signature no longer verifies.
    let newest = tagged(rich(), store::COMMIT).pop().unwrap();
    let cp = tagged(rich(), store::CHECKPOINT).pop().unwrap();
    let seven =
        cp.offset + HEADER + cp.body.windows(4).position(|w| w == b"\n17\n").unwrap() as u64 + 2;
    let f = rich().copy();
    flip(&f, "log", seven, 0x01);
    store::drop_index(&f.ledger());
    f.evl(["verify"])
        .refused(INVALID, &[&altered(cp.offset, newest.offset)]);
    // With the index in place the same flip is caught.
    let f = rich().copy();
    flip(&f, "log", seven, 0x01);
    verify_fails(&f, &[]).exactly(&[check_fails(newest.offset, 17), bad_signature(STORED)]);
}

/// Issue 12 item 4: a few hundred bytes spliced out of an early batch with the index deleted.
/// The reader must not take the first failing commit for an interrupted append (a complete
/// commit record follows it): every verb refuses naming the offset, and an append — which once
/// cut the log to the damaged batch — leaves every byte in place.
#[test]
fn bytes_spliced_out_of_an_early_batch_are_damage_and_nothing_is_cut() {
    let f = rich().copy();
    let five = entry_record(&f, 5);
    let mut log = read(&f, "log");
    let len = log.len();
    log.drain(five.offset as usize + 40..five.offset as usize + 340);
    std::fs::write(f.ledger().join("log"), &log).unwrap();
    store::drop_index(&f.ledger());
    let before = read(&f, "log");
    assert_eq!(before.len(), len - 300);
    let owner = f.key("owner-v2").display().to_string();
    let file = f.file("after-splice.txt", b"after the splice\n");
    for argv in [
        vec!["verify"],
        vec!["log"],
        vec!["show", f.id("d")],
        vec![
            "add",
            file.to_str().unwrap(),
            "--kind",
            "note",
            "--tier",
            "excluded",
            "--key",
            &owner,
        ],
    ] {
        f.evl(&argv)
            .refused(INVALID, &["evl will not cut them", "from offset"]);
        assert!(
            read(&f, "log") == before,
            "evl {argv:?} changed the damaged log"
        );
    }
}

#[test]
fn altered_checkpoints_are_caught() {
    // The stored note's size edited in place.
    let f = rich().copy();
    let cp = tagged(&f, store::CHECKPOINT).pop().unwrap();
    let at = cp.body.windows(4).position(|w| w == b"\n17\n").unwrap() as u64;
    store::poke(&f.ledger(), "log", cp.offset + HEADER + at, b"\n16\n");
    verify_fails(&f, &[]).exactly(&[
        check_fails(commit_after(&f, cp.offset).offset, 17),
        bad_signature(STORED),
    ]);

    // The same edit re-sealed; a note that is not a note, re-sealed.
    let sixteen = String::from_utf8(cp.body.clone())
        .unwrap()
        .replacen("\n17\n", "\n16\n", 1);
    for (replacement, wanted) in [
        (sixteen.as_str(), bad_signature(STORED)),
        (
            "not a note\n",
            want(
                "checkpoint",
                None,
                format!("{STORED}: the checkpoint is not a well-formed signed note"),
            ),
        ),
    ] {
        let f = rich().copy();
        store::rewrite(&f.ledger(), |tag, body| {
            Some(if tag == store::CHECKPOINT {
                replacement.as_bytes().to_vec()
            } else {
                body.to_vec()
            })
        });
        verify_fails(&f, &[]).exactly(&[wanted]);
    }

    // The stored note dropped, re-sealed: it is the ledger's own copy and the ledger without
    // it is consistent; auditors keep theirs.
    let f = rich().copy();
    store::rewrite(&f.ledger(), |tag, body| {
        (tag != store::CHECKPOINT).then(|| body.to_vec())
    });
    let (note, _) = auditor(&f);
    verifies(&f, &["--checkpoint", &note], RICH_SIZE);

    // An auditor's note whose root was edited, and one that is not a note at all.
    let f = rich().copy();
    let note = std::fs::read_to_string(f.path("auditor.note")).unwrap();
    let mut lines: Vec<String> = note.lines().map(String::from).collect();
    let first = if lines[2].starts_with('A') { "B" } else { "A" };
    lines[2].replace_range(..1, first);
    let edited = f
        .file("edited.note", (lines.join("\n") + "\n").as_bytes())
        .display()
        .to_string();
    verify_fails(&f, &["--checkpoint", &edited])
        .exactly(&[bad_signature(&format!("checkpoint {edited}"))]);
    let junk = f.file("junk.note", b"not a note\n").display().to_string();
    verify_fails(&f, &["--checkpoint", &junk]).exactly(&[want(
        "checkpoint",
        None,
        format!("checkpoint {junk}: the checkpoint is not a well-formed signed note"),
    )]);
}

#[test]
fn altered_commit_fields_are_caught() {
    // The commit of entry 8's batch (size 9, 4 blobs) and the newest commit (the checkpoint's).
    let eight = commit_after(rich(), entry_record(rich(), 8).offset);
    let newest = tagged(rich(), store::COMMIT).pop().unwrap();
    assert_eq!((field(&eight, SIZE), field(&eight, BLOBS)), (9, 4));
    let (c, n) = (eight.offset, newest.offset);
    let says = |c: u64, what: String| {
        want(
            "log",
            None,
            format!("the commit at log offset {c} records {what}"),
        )
    };
    let root = |c: u64, size: u64| {
        says(
            c,
            format!("a tree root for size {size} that the entries do not give"),
        )
    };
    let newest_registry =
        "the key registry the newest commit names differs from the one the key entries define";

    // Size edited in place: the size, the root for that size and the check hash are wrong.
    let f = rich().copy();
    set_field(&f, c, SIZE, 10);
    verify_fails(&f, &[]).exactly(&[
        says(c, "size 10 (the log holds 9 entries)".into()),
        check_fails(c, 10),
        root(c, 10),
    ]);

    // Each field edited with the check hash recomputed, as a forger would: the counts,
    // pointers and root are checked against the log, not only the check hash.
    let (start, registry, checkpoint) = (
        field(&eight, BATCH_START),
        field(&eight, REGISTRY),
        field(&newest, CHECKPOINT),
    );
    let older_registry = tagged(rich(), store::REGISTRY)
        .iter()
        .map(|r| r.offset)
        .rfind(|&o| o < registry)
        .unwrap();
    let cases: Vec<(u64, u64, u64, Vec<Want>)> = vec![
        (
            c,
            SIZE,
            10,
            vec![
                says(c, "size 10 (the log holds 9 entries)".into()),
                root(c, 10),
            ],
        ),
        (
            c,
            BLOBS,
            3,
            vec![says(c, "3 blobs (the log holds 4)".into())],
        ),
        (
            c,
            BATCH_START,
            start - 1,
            vec![says(
                c,
                format!("batch start {} (expected {start})", start - 1),
            )],
        ),
        (
            c,
            REGISTRY,
            older_registry,
            vec![says(
                c,
                format!("registry record {older_registry} (expected {registry})"),
            )],
        ),
        (
            n,
            REGISTRY,
            older_registry,
            vec![
                says(
                    n,
                    format!(
                        "registry record {older_registry} (expected {})",
                        field(&newest, REGISTRY)
                    ),
                ),
                want("registry", None, newest_registry),
            ],
        ),
        (
            n,
            CHECKPOINT,
            0,
            vec![says(
                n,
                format!("checkpoint record 0 (expected {checkpoint})"),
            )],
        ),
        (
            n,
            CHECKPOINT,
            c,
            vec![
                says(n, format!("checkpoint record {c} (expected {checkpoint})")),
                want(
                    "log",
                    None,
                    "the newest commit names a checkpoint record that is not there",
                ),
            ],
        ),
    ];
    for (commit, at, value, wanted) in cases {
        let f = rich().copy();
        set_field(&f, commit, at, value);
        reseal_commit(&f, commit);
        verify_fails(&f, &[]).exactly(&wanted);
    }

    // The root flipped (check recomputed); the check hash itself flipped.
    let f = rich().copy();
    flip(&f, "log", c + HEADER + ROOT, 0x01);
    reseal_commit(&f, c);
    verify_fails(&f, &[]).exactly(&[root(c, 9)]);
    let f = rich().copy();
    flip(&f, "log", c + HEADER + CHECK + 7, 0x01);
    verify_fails(&f, &[]).exactly(&[check_fails(c, 9)]);
}

#[test]
fn flipped_content_in_the_raw_log_is_named() {
    // Content evl stores, found by searching the raw files: once in the log, never in the
    // index (which holds offsets, ids, digests and hashes). A byte flipped in it is named.
    for (needle, wanted) in [
        (
            &b"rollback drill A: passed"[..],
            want(
                "artifact",
                Some(5),
                format!("artifact {} (log offset", digest_hex(A)),
            ),
        ),
        (
            b"east-west authorization policy acknowledged",
            want("entry", Some(10), "entry 10: the signature does not verify"),
        ),
        (
            b"superseded by the platform export",
            want("entry", Some(16), "entry 16: the signature does not verify"),
        ),
    ] {
        let f = rich().copy();
        let find = |bytes: &[u8]| -> Vec<usize> {
            bytes
                .windows(needle.len())
                .enumerate()
                .filter(|(_, w)| *w == needle)
                .map(|(i, _)| i)
                .collect()
        };
        let hits = find(&read(&f, "log"));
        assert_eq!(hits.len(), 1, "{:?}", String::from_utf8_lossy(needle));
        for file in ["entries", "ids", "blobs", "hashes", "commits"] {
            assert!(
                find(&read(&f, &format!("index/{file}"))).is_empty(),
                "{file}"
            );
        }
        flip(&f, "log", (hits[0] + needle.len() / 2) as u64, 0x01);
        let (note, _) = auditor(&f);
        let v = verify_fails(&f, &["--checkpoint", &note]);
        v.names(wanted);
        v.names(want(
            "log",
            None,
            "does not match its check hash: stored bytes were altered",
        ));
    }
}

#[test]
fn raw_flips_at_pseudo_random_offsets_never_pass_or_panic() {
    // Every byte of the log and of the index files is covered: the log by its magic and each
    // commit's check hash, the index files by verify's recomputation. So a flip anywhere, with
    // the index in place, fails with exit 1 (`FAIL` lines, or one `stored data is corrupt`
    // line when the reader trips over it first). Deleting the index then tells the two apart:
    // a flipped index byte was derived data, and the ledger verifies again; a flipped log byte
    // still fails — except in the final batch, which with no index naming its commit reads as
    // an interrupted write (flipped_log_byte_with_the_index_removed_is_refused).
    let mut rng = Rng(0x7a3d_e5c1_0bad_f00d);
    let final_batch = end(&tagged(rich(), store::COMMIT)
        .into_iter()
        .rev()
        .nth(1)
        .unwrap());
    for file in [
        "log",
        "index/entries",
        "index/ids",
        "index/blobs",
        "index/hashes",
        "index/commits",
    ] {
        let len = read(rich(), file).len() as u64;
        for _ in 0..12 {
            let (at, mask) = (rng.below(len), 1u8 << rng.below(8));
            let f = rich().copy();
            flip(&f, file, at, mask);
            let (note, _) = auditor(&f);
            let out = f.evl(["verify", "--checkpoint", &note]);
            assert_eq!(out.code, INVALID, "{file} byte {at} ^ {mask:#x}: {out:#?}");
            assert!(
                out.stderr.starts_with("FAIL ")
                    || out.stderr.starts_with("evl: stored data is corrupt: "),
                "{file} byte {at} ^ {mask:#x}: {out:#?}"
            );
            store::drop_index(&f.ledger());
            let out = f.evl(["verify", "--checkpoint", &note]);
            let harmless = file != "log" || at >= final_batch;
            let code = if harmless { 0 } else { INVALID };
            assert_eq!(
                out.code, code,
                "{file} byte {at} ^ {mask:#x}, index deleted: {out:#?}"
            );
        }
    }
    // The lookup runs: a flip in a record is named, one in the magic leaves the run unused.
    for name in run_files(big()) {
        let file = format!("index/{name}");
        let len = read(big(), &file).len() as u64;
        for _ in 0..4 {
            let (at, mask) = (rng.below(len), 1u8 << rng.below(8));
            let f = big().copy();
            flip(&f, &file, at, mask);
            let out = f.evl(["verify"]);
            assert_eq!(
                out.code,
                if at < 16 { 0 } else { INVALID },
                "{file} byte {at} ^ {mask:#x}: {out:#?}"
            );
        }
    }
    // The layout tag: not a layout this evl reads, a storage error.
    for at in [0, 4, 11] {
        let f = rich().copy();
        flip(&f, "evl-store", at, 0x01);
        f.evl(["verify"]).refused(STORAGE, &["the store layout is"]);
    }
}
