//! Store layout 2 read and edited from outside evl, by docs/FORMAT.md §"Store layout" alone:
//! what someone with write access to a ledger directory can do behind evl's back.

use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest as _, Sha256};

pub const MAGIC: &[u8; 16] = b"evl-log/2\n\0\0\0\0\0\0";
pub const ENTRY: u8 = 1;
pub const BLOB: u8 = 2;
pub const REGISTRY: u8 = 3;
pub const CHECKPOINT: u8 = 4;
pub const COMMIT: u8 = 5;
const COMMIT_BODY: usize = 104;

/// One log record.
#[derive(Clone, Debug)]
pub struct Rec {
    pub offset: u64,
    pub tag: u8,
    pub body: Vec<u8>,
}

/// Every well-framed record of the log, in order (stops at the first that is not).
pub fn records(ledger: &Path) -> Vec<Rec> {
    let log = std::fs::read(ledger.join("log")).expect("the ledger has a log");
    assert!(log.starts_with(MAGIC), "log magic");
    let mut out = Vec::new();
    let mut at = MAGIC.len();
    while at + 5 <= log.len() {
        let len = u32::from_le_bytes(log[at + 1..at + 5].try_into().unwrap()) as usize;
        let Some(body) = log.get(at + 5..at + 5 + len) else {
            break;
        };
        out.push(Rec {
            offset: at as u64,
            tag: log[at],
            body: body.to_vec(),
        });
        at += 5 + len;
    }
    out
}

/// The stored bytes of every committed entry, in log order.
pub fn entries(ledger: &Path) -> Vec<Vec<u8>> {
    let recs = records(ledger);
    let last_commit = recs.iter().rposition(|r| r.tag == COMMIT).unwrap_or(0);
    recs[..last_commit]
        .iter()
        .filter(|r| r.tag == ENTRY)
        .map(|r| r.body.clone())
        .collect()
}

/// The stored bytes whose BLAKE3 digest is `digest_hex`.
pub fn blob(ledger: &Path, digest_hex: &str) -> Vec<u8> {
    records(ledger)
        .into_iter()
        .filter(|r| r.tag == BLOB)
        .find(|r| hex::encode(&r.body[..32]) == digest_hex)
        .map(|r| r.body[40..].to_vec())
        .unwrap_or_else(|| panic!("no blob {digest_hex} in the log"))
}

fn sha(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// RFC 6962 §2.1 Merkle tree hash of the entries' bytes.
pub fn tree_root(entries: &[Vec<u8>]) -> [u8; 32] {
    fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
        match leaves.len() {
            0 => sha(&[]),
            1 => leaves[0],
            n => {
                // The largest power of two smaller than n.
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                sha(&[&[1], &mth(&leaves[..k]), &mth(&leaves[k..])])
            }
        }
    }
    let leaves: Vec<[u8; 32]> = entries.iter().map(|e| sha(&[&[0], e])).collect();
    mth(&leaves)
}

/// Rewrites the log the way a careful forger would: `edit` may replace or drop (None) any
/// record's body; every commit is then re-sealed — counts, offsets, tree root and check hash
/// recomputed — and the derived index directory removed, so the edited log is
/// self-consistent and only signatures, digests and checkpoints can tell.
pub fn rewrite(ledger: &Path, mut edit: impl FnMut(u8, &[u8]) -> Option<Vec<u8>>) {
    let mut log = MAGIC.to_vec();
    let (mut size, mut blobs, mut registry, mut checkpoint) = (0u64, 0u64, 0u64, 0u64);
    let mut batch_start = MAGIC.len() as u64;
    let mut all_entries: Vec<Vec<u8>> = Vec::new();
    for r in records(ledger) {
        let body = if r.tag == COMMIT {
            Some(r.body.clone())
        } else {
            edit(r.tag, &r.body)
        };
        let Some(body) = body else { continue };
        let at = log.len() as u64;
        match r.tag {
            ENTRY => {
                size += 1;
                all_entries.push(body.clone());
            }
            BLOB => blobs += 1,
            REGISTRY => registry = at,
            CHECKPOINT => checkpoint = at,
            _ => {}
        }
        log.push(r.tag);
        log.extend_from_slice(&(body.len() as u32).to_le_bytes());
        if r.tag != COMMIT {
            log.extend_from_slice(&body);
            continue;
        }
        let mut fields = Vec::with_capacity(COMMIT_BODY);
        for v in [size, blobs, batch_start, registry, checkpoint] {
            fields.extend_from_slice(&v.to_le_bytes());
        }
        fields.extend_from_slice(&tree_root(&all_entries));
        log.extend_from_slice(&fields);
        let check = blake3::Hasher::new()
            .update(b"evl/store-commit/v2\n")
            .update(&log[batch_start as usize..])
            .finalize();
        log.extend_from_slice(check.as_bytes());
        batch_start = log.len() as u64;
    }
    std::fs::write(ledger.join("log"), log).unwrap();
    drop_index(ledger);
}

/// Appends one batch of `records` (tag, body) and a commit sealing it, the way a forger with
/// write access would add entries evl itself refuses to append: counts, pointers, tree root
/// and check hash are all recomputed (docs/FORMAT.md §"The log"), and the derived index
/// directory removed, so only what `evl verify` checks beyond the seal can tell.
pub fn append_batch(ledger: &Path, batch: &[(u8, Vec<u8>)]) {
    let recs = records(ledger);
    let last = recs
        .iter()
        .rev()
        .find(|r| r.tag == COMMIT)
        .expect("a commit");
    let field = |i: usize| u64::from_le_bytes(last.body[i * 8..i * 8 + 8].try_into().unwrap());
    let (mut size, mut blobs, mut registry, mut checkpoint) =
        (field(0), field(1), field(3), field(4));
    let mut log = std::fs::read(ledger.join("log")).unwrap();
    log.truncate(last.offset as usize + 5 + COMMIT_BODY);
    let batch_start = log.len() as u64;
    let mut all_entries = entries(ledger);
    for (tag, body) in batch {
        let at = log.len() as u64;
        match *tag {
            ENTRY => {
                size += 1;
                all_entries.push(body.clone());
            }
            BLOB => blobs += 1,
            REGISTRY => registry = at,
            CHECKPOINT => checkpoint = at,
            other => panic!("append_batch: record tag {other} is not one a batch holds"),
        }
        log.push(*tag);
        log.extend_from_slice(&(body.len() as u32).to_le_bytes());
        log.extend_from_slice(body);
    }
    log.push(COMMIT);
    log.extend_from_slice(&(COMMIT_BODY as u32).to_le_bytes());
    for v in [size, blobs, batch_start, registry, checkpoint] {
        log.extend_from_slice(&v.to_le_bytes());
    }
    log.extend_from_slice(&tree_root(&all_entries));
    let check = blake3::Hasher::new()
        .update(b"evl/store-commit/v2\n")
        .update(&log[batch_start as usize..])
        .finalize();
    log.extend_from_slice(check.as_bytes());
    std::fs::write(ledger.join("log"), log).unwrap();
    drop_index(ledger);
}

/// The body of the newest registry record (the key registry as of the last key entry).
pub fn latest_registry(ledger: &Path) -> Vec<u8> {
    records(ledger)
        .into_iter()
        .rev()
        .find(|r| r.tag == REGISTRY)
        .expect("a registry record")
        .body
}

/// An index record of `ids` (which 1) or `blobs` (2) at `position` of the file covering
/// `scope` ((0, 0) for the dense file, (START, END) for a run), with its check
/// (docs/FORMAT.md §"The index files").
pub fn index_record(
    which: u8,
    scope: (u64, u64),
    position: u64,
    key: &[u8; 32],
    value: u64,
) -> [u8; 48] {
    let mut r = [0u8; 48];
    r[..32].copy_from_slice(key);
    r[32..40].copy_from_slice(&value.to_le_bytes());
    let mut input = vec![which];
    for v in [scope.0, scope.1, position] {
        input.extend_from_slice(&v.to_le_bytes());
    }
    input.extend_from_slice(&r[..40]);
    r[40..].copy_from_slice(&xxhash_rust::xxh3::xxh3_64(&input).to_le_bytes());
    r
}

/// Removes the derived index directory (evl rebuilds it from the log).
pub fn drop_index(ledger: &Path) {
    let _ = std::fs::remove_dir_all(ledger.join("index"));
}

/// Overwrites `bytes` at `offset` of `file` (relative to the ledger directory).
pub fn poke(ledger: &Path, file: &str, offset: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(ledger.join(file))
        .unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

/// Holds the writers' lock of the ledger, as an appending evl would, until dropped.
pub fn hold_lock(ledger: &Path) -> std::fs::File {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(ledger.join("lock"))
        .expect("the ledger has a lock file");
    f.try_lock().expect("nobody else holds the lock");
    f
}
