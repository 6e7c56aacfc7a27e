//! The log file: the ledger's only authoritative bytes (docs/FORMAT.md §"Store layout").
//!
//! A 16-byte magic, then records `tag u8 || length u32 LE || body`. A batch of records
//! (entries, the artifact bytes they carry, a registry snapshot when keys changed, a
//! checkpoint note) is closed by a commit record whose check hash covers the whole batch and
//! the commit's own fields, so a torn or never-finished write is recognised and ignored.
//! Nothing in the file is ever rewritten; only an uncommitted tail is ever cut off.

use crate::domain;
use crate::merkle::Hash;

/// First bytes of every log file: the store layout tag.
pub const MAGIC: &[u8; 16] = b"evl-log/2\n\0\0\0\0\0\0";
/// Bytes before a record's body: tag and length.
pub const HEADER: usize = 5;
/// Largest record body evl writes or reads: a 64 MiB artifact after its digest and entry index.
pub const MAX_BODY: usize = crate::store::MAX_ARTIFACT_BYTES + BLOB_HEAD;
/// Bytes of a blob record's body before the stored bytes: digest and entry index.
pub const BLOB_HEAD: usize = 32 + 8;
/// Length of a commit record's body.
pub const COMMIT_BODY: usize = 5 * 8 + 32 + 32;
/// Length of a whole commit record.
pub const COMMIT_RECORD: usize = HEADER + COMMIT_BODY;

/// What a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Tag {
    /// Stored entry bytes (canonical unsigned bytes, then the 64-byte signature).
    Entry = 1,
    /// Artifact bytes, parsed facts or a disposition document: their BLAKE3 digest, the index
    /// of the entry that first carried them (u64 LE), then the bytes.
    Blob = 2,
    /// The key registry as of the commit that closes this batch (canonical `Vec<KeyState>`).
    Registry = 3,
    /// A signed checkpoint note.
    Checkpoint = 4,
    /// The end of a batch: see [`Commit`].
    Commit = 5,
}

impl Tag {
    fn from_u8(b: u8) -> Option<Tag> {
        Some(match b {
            1 => Tag::Entry,
            2 => Tag::Blob,
            3 => Tag::Registry,
            4 => Tag::Checkpoint,
            5 => Tag::Commit,
            _ => return None,
        })
    }
}

/// A commit record: the state of the ledger once the batch it closes is applied.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Commit {
    /// Entries in the log after this commit (the tree size).
    pub size: u64,
    /// Blob records in the log after this commit.
    pub blobs: u64,
    /// Log offset of the first record of this batch (the previous commit's end).
    pub batch_start: u64,
    /// Log offset of the registry record in force after this commit.
    pub registry: u64,
    /// Log offset of the latest checkpoint record, 0 when none was stored.
    pub checkpoint: u64,
    /// The Merkle tree root at `size`.
    pub root: Hash,
    /// BLAKE3(`domain::STORE_COMMIT` || log bytes from `batch_start` up to this field).
    pub check: [u8; 32],
}

impl Commit {
    /// The body bytes without the check hash.
    fn fields(&self) -> [u8; COMMIT_BODY - 32] {
        let mut b = [0u8; COMMIT_BODY - 32];
        for (i, v) in [
            self.size,
            self.blobs,
            self.batch_start,
            self.registry,
            self.checkpoint,
        ]
        .iter()
        .enumerate()
        {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        b[40..72].copy_from_slice(&self.root.0);
        b
    }

    /// Appends this commit record to `batch`, which holds the log bytes from `batch_start`
    /// on, computing its check hash over them.
    pub fn seal(mut self, batch: &mut Vec<u8>) -> Commit {
        put_header(batch, Tag::Commit, COMMIT_BODY);
        batch.extend_from_slice(&self.fields());
        self.check = check_hash(batch);
        batch.extend_from_slice(&self.check);
        self
    }

    /// Decodes a commit record's body (no check of the hash).
    pub fn decode(body: &[u8]) -> Option<Commit> {
        if body.len() != COMMIT_BODY {
            return None;
        }
        let u = |i: usize| u64::from_le_bytes(body[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        Some(Commit {
            size: u(0),
            blobs: u(1),
            batch_start: u(2),
            registry: u(3),
            checkpoint: u(4),
            root: Hash(body[40..72].try_into().expect("32 bytes")),
            check: body[72..104].try_into().expect("32 bytes"),
        })
    }

    /// Whether the check hash matches `log`, the log bytes from offset 0, for a commit
    /// record found at `offset`.
    pub fn checks(&self, log: &[u8], offset: u64) -> bool {
        let end = offset as usize + COMMIT_RECORD - 32;
        let start = self.batch_start as usize;
        start <= offset as usize && end <= log.len() && check_hash(&log[start..end]) == self.check
    }
}

/// The commit check hash over `bytes`.
pub fn check_hash(bytes: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(domain::STORE_COMMIT);
    if bytes.len() >= 1 << 20 {
        h.update_rayon(bytes);
    } else {
        h.update(bytes);
    }
    *h.finalize().as_bytes()
}

/// Appends a record header to `out`.
pub fn put_header(out: &mut Vec<u8>, tag: Tag, len: usize) {
    debug_assert!(len <= MAX_BODY, "log: record body over the cap");
    out.push(tag as u8);
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

/// Appends a whole record to `out`.
pub fn put(out: &mut Vec<u8>, tag: Tag, body: &[u8]) {
    put_header(out, tag, body.len());
    out.extend_from_slice(body);
}

/// Appends a blob record (digest, entry index, then bytes) to `out`.
pub fn put_blob(out: &mut Vec<u8>, digest: &[u8; 32], entry: u64, bytes: &[u8]) {
    put_header(out, Tag::Blob, BLOB_HEAD + bytes.len());
    out.extend_from_slice(digest);
    out.extend_from_slice(&entry.to_le_bytes());
    out.extend_from_slice(bytes);
}

/// One record as found in the log.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// Offset of the record's header.
    pub offset: u64,
    pub tag: Tag,
    pub body: &'a [u8],
}

impl Record<'_> {
    /// Offset just past this record.
    pub fn end(&self) -> u64 {
        self.offset + (HEADER + self.body.len()) as u64
    }
}

/// Why the bytes at some offset are not a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    /// The log ends inside the record (a torn or never-finished write).
    Truncated,
    /// An unknown tag or an impossible length.
    Malformed(String),
}

/// The record at `offset` of `log`.
pub fn record_at(log: &[u8], offset: u64) -> Result<Record<'_>, Framing> {
    let at = offset as usize;
    let Some(header) = log.get(at..at + HEADER) else {
        return Err(Framing::Truncated);
    };
    let tag = Tag::from_u8(header[0])
        .ok_or_else(|| Framing::Malformed(format!("unknown record tag {}", header[0])))?;
    let len = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes")) as usize;
    let max = match tag {
        Tag::Entry => crate::codec::MAX_ENTRY_BYTES,
        Tag::Commit => COMMIT_BODY,
        _ => MAX_BODY,
    };
    if len > max
        || (tag == Tag::Commit && len != COMMIT_BODY)
        || (tag == Tag::Blob && len < BLOB_HEAD)
    {
        return Err(Framing::Malformed(format!(
            "a {tag:?} record claims {len} bytes"
        )));
    }
    let body = log
        .get(at + HEADER..at + HEADER + len)
        .ok_or(Framing::Truncated)?;
    Ok(Record { offset, tag, body })
}

/// A blob record's body split into (the digest it states, entry index, bytes).
pub fn blob_parts(body: &[u8]) -> ([u8; 32], u64, &[u8]) {
    let (head, bytes) = body.split_at(BLOB_HEAD);
    (
        head[..32].try_into().expect("32 bytes"),
        u64::from_le_bytes(head[32..].try_into().expect("8 bytes")),
        bytes,
    )
}

/// Iterates records from `offset` until the end of `log` or the first framing problem,
/// which it yields last.
pub fn records(log: &[u8], offset: u64) -> Records<'_> {
    Records {
        log,
        at: offset,
        done: false,
    }
}

/// See [`records`].
pub struct Records<'a> {
    log: &'a [u8],
    at: u64,
    done: bool,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, (u64, Framing)>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.at as usize >= self.log.len() {
            return None;
        }
        match record_at(self.log, self.at) {
            Ok(r) => {
                self.at = r.end();
                Some(Ok(r))
            }
            Err(e) => {
                self.done = true;
                Some(Err((self.at, e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_commit_decodes_and_checks_and_any_flip_breaks_it() {
        let mut log = MAGIC.to_vec();
        let start = log.len() as u64;
        let mut batch = Vec::new();
        put(&mut batch, Tag::Entry, b"entry bytes");
        put_blob(&mut batch, &[3; 32], 7, b"artifact");
        let commit = Commit {
            size: 8,
            blobs: 3,
            batch_start: start,
            registry: 16,
            checkpoint: 0,
            root: Hash([9; 32]),
            check: [0; 32],
        }
        .seal(&mut batch);
        log.extend_from_slice(&batch);
        let recs: Vec<_> = records(&log, start).map(|r| r.unwrap()).collect();
        assert_eq!(recs.len(), 3);
        assert_eq!(blob_parts(recs[1].body), ([3; 32], 7, &b"artifact"[..]));
        let c = Commit::decode(recs[2].body).unwrap();
        assert_eq!(c, commit);
        assert!(c.checks(&log, recs[2].offset));
        for i in start as usize..log.len() {
            let mut bad = log.clone();
            bad[i] ^= 1;
            let ok = record_at(&bad, recs[2].offset)
                .ok()
                .and_then(|r| Commit::decode(r.body).map(|c| c.checks(&bad, r.offset)))
                .unwrap_or(false);
            assert!(!ok, "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn a_cut_log_ends_in_a_truncated_record() {
        let mut log = MAGIC.to_vec();
        put(&mut log, Tag::Entry, b"0123456789");
        for cut in 17..log.len() {
            let last = records(&log[..cut], 16).last().unwrap();
            assert_eq!(last.unwrap_err().1, Framing::Truncated, "cut at {cut}");
        }
        let mut bad = log.clone();
        bad[16] = 99;
        assert!(matches!(
            records(&bad, 16).next(),
            Some(Err((16, Framing::Malformed(_))))
        ));
    }
}
