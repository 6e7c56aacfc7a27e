//! A consistent, read-only view of a ledger as of its newest commit, opened in time
//! independent of the ledger's size: the newest commit is found through the commit index,
//! and only records the derived files do not cover yet (after an interrupted writer) are read
//! from the log and indexed in memory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::files::{Dense, Mapped};
use super::index::{self, Keyed, RunCache};
use super::log::{self, COMMIT_RECORD, Commit, Record, Tag};
use super::{BLOBS, COMMITS, ENTRIES, HASHES, IDS, INDEX_DIR, LOG};
use crate::codec;
use crate::digest::{Digest, EntryId};
use crate::entry::{Entry, Payload};
use crate::error::{Error, Result};
use crate::merkle::{self, Hash, HashReader};
use crate::registry::{KeyState, Registry};

/// The newest commit of a view and where it lies in the log.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Head {
    /// Offset of the commit record.
    pub offset: u64,
    pub commit: Commit,
}

impl Head {
    /// Offset just past the commit record: where the next batch goes.
    pub fn end(&self) -> u64 {
        self.offset + COMMIT_RECORD as u64
    }
}

/// A read-only snapshot of a ledger.
pub struct View {
    dir: PathBuf,
    log: Mapped,
    head: Head,
    entries: Dense<8>,
    hashes: Dense<32>,
    commits: Dense<8>,
    ids: Keyed,
    blobs: Keyed,
    /// Length of the log and of the commit index when opened.
    lens: (u64, u64),
    genesis: OnceLock<std::result::Result<(EntryId, String), String>>,
}

fn corrupt(what: impl Into<String>) -> Error {
    Error::Corrupt(what.into())
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Records found after the derived files' coverage, awaiting their commit.
#[derive(Default)]
struct Pending {
    entries: Vec<(u64, EntryId, Hash)>,
    blobs: Vec<(Digest, u64)>,
    registry: Option<u64>,
    checkpoint: Option<u64>,
}

/// Walks the log forward from a commit, accepting each batch whose commit checks.
struct Scan {
    size: u64,
    blobs: u64,
    registry: u64,
    checkpoint: u64,
    batch_start: u64,
    commits: u64,
    head: Option<Head>,
    pending: Pending,
    /// Derived records to hold in memory: entries (offset, id, leaf), blobs, commit offsets.
    entries: Vec<(u64, EntryId, Hash)>,
    blob_recs: Vec<(Digest, u64)>,
    commit_offsets: Vec<u64>,
    /// What the derived files already hold: entries, blobs, commits.
    covered: (u64, u64, u64),
    /// Where a batch failed although an intact commit follows it: not an interrupted
    /// write (which can only be the last batch) but altered bytes.
    altered: Option<(u64, u64)>,
}

impl Scan {
    /// Scans `bytes`, which are the log from offset `base`; returns false once a batch does
    /// not end in a commit that checks (the rest is an unfinished write).
    fn run(&mut self, bytes: &[u8], base: u64) -> bool {
        let complete = self.walk(bytes, base);
        if !complete {
            let failed = self.batch_start - base;
            if let Some(later) = later_valid_commit(bytes, base, failed) {
                self.altered = Some((self.batch_start, later));
            }
        }
        complete
    }

    fn walk(&mut self, bytes: &[u8], base: u64) -> bool {
        let mut at = 0u64;
        let mut pending_size = self.size;
        let mut pending_blobs = self.blobs;
        while (at as usize) < bytes.len() {
            let r = match log::record_at(bytes, at) {
                Ok(r) => r,
                Err(_) => return false,
            };
            let offset = base + at;
            at = r.end();
            match r.tag {
                Tag::Entry => {
                    if pending_size >= self.covered.0 && r.body.len() >= 64 {
                        let id = Digest::of(&r.body[..r.body.len() - 64]);
                        self.pending
                            .entries
                            .push((offset, id, merkle::leaf_hash(r.body)));
                    }
                    pending_size += 1;
                }
                Tag::Blob => {
                    if pending_blobs >= self.covered.1 {
                        let (d, _, _) = log::blob_parts(r.body);
                        self.pending.blobs.push((Digest(d), offset));
                    }
                    pending_blobs += 1;
                }
                Tag::Registry => self.pending.registry = Some(offset),
                Tag::Checkpoint => self.pending.checkpoint = Some(offset),
                Tag::Commit => {
                    let Some(c) = Commit::decode(r.body) else {
                        return false;
                    };
                    let fits = c.size == pending_size
                        && c.blobs == pending_blobs
                        && c.batch_start == self.batch_start
                        && c.registry == self.pending.registry.unwrap_or(self.registry)
                        && c.checkpoint == self.pending.checkpoint.unwrap_or(self.checkpoint);
                    if !fits || c.batch_start < base {
                        return false;
                    }
                    let local = Commit {
                        batch_start: c.batch_start - base,
                        ..c
                    };
                    if !local.checks(bytes, offset - base) {
                        return false;
                    }
                    let p = std::mem::take(&mut self.pending);
                    self.entries.extend(p.entries);
                    self.blob_recs.extend(p.blobs);
                    if self.commits >= self.covered.2 {
                        self.commit_offsets.push(offset);
                    }
                    self.commits += 1;
                    (self.size, self.blobs) = (c.size, c.blobs);
                    (self.registry, self.checkpoint) = (c.registry, c.checkpoint);
                    self.batch_start = offset + COMMIT_RECORD as u64;
                    self.head = Some(Head { offset, commit: c });
                }
            }
        }
        true
    }
}

/// The offset of an intact commit record in `bytes` (the log from `base`) at or after
/// `from`, found by its header bytes: proof that the bytes before it were altered rather than
/// cut short by a crash.
fn later_valid_commit(bytes: &[u8], base: u64, from: u64) -> Option<u64> {
    let mut pattern = [Tag::Commit as u8, 0, 0, 0, 0];
    pattern[1..].copy_from_slice(&(log::COMMIT_BODY as u32).to_le_bytes());
    let start = from as usize;
    bytes
        .get(start..)?
        .windows(pattern.len())
        .enumerate()
        .find_map(|(i, w)| {
            let at = (start + i) as u64;
            if w != pattern {
                return None;
            }
            let r = log::record_at(bytes, at).ok()?;
            let c = Commit::decode(r.body)?;
            let local = Commit {
                batch_start: c.batch_start.checked_sub(base)?,
                ..c
            };
            local.checks(bytes, at).then_some(base + at)
        })
}

impl View {
    /// Opens the view of the ledger in `dir` as of its newest commit; the lookup runs of the
    /// id and blob indexes are mapped through `runs` (kept by the ledger across views).
    pub fn open(dir: &Path, runs: &(Arc<RunCache>, Arc<RunCache>)) -> Result<View> {
        let idx = dir.join(INDEX_DIR);
        let map = |name: &str| {
            let p = idx.join(name);
            Mapped::open(&p).map_err(Error::io(&p))
        };
        // In the order a writer appends in reverse: the commit index first, then the other
        // index files, then the log. Whatever a concurrent writer adds meanwhile, every file
        // read later holds at least what the commit index read first promises.
        let commits_map = map(COMMITS)?;
        let commits_len = commits_map.bytes().len() as u64;
        let mut commits: Dense<8> = Dense::new(commits_map, u64::MAX);
        let entries_map = map(ENTRIES)?;
        let hashes_map = map(HASHES)?;
        let ids_map = map(IDS)?;
        let blobs_map = map(BLOBS)?;
        let log_path = dir.join(LOG);
        let log_file = File::open(&log_path).map_err(Error::io(&log_path))?;
        let log_len = log_file.metadata().map_err(Error::io(&log_path))?.len();
        let log_map = Mapped::file_of(&log_file, log_len).map_err(Error::io(&log_path))?;
        if !log_map.bytes().starts_with(log::MAGIC) {
            return Err(corrupt(format!(
                "{} does not start with the evl-log/2 magic",
                log_path.display()
            )));
        }
        let stored_hashes = (hashes_map.bytes().len() / 32) as u64;
        // Entries whose offset, id and tree hashes the files all hold.
        let covered_entries = ((entries_map.bytes().len() / 8)
            .min(ids_map.bytes().len() / index::RECORD) as u64)
            .min(leaves_covered(stored_hashes));
        let covered_blobs = (blobs_map.bytes().len() / index::RECORD) as u64;
        let read_commit = |off: u64| -> Option<Commit> {
            let r = log::record_at(log_map.bytes(), off).ok()?;
            (r.tag == Tag::Commit).then(|| Commit::decode(r.body))?
        };

        // The newest indexed commit, then the newest one whose derived records are all there.
        let indexed = commits.len();
        let mut resume: Option<(u64, Head)> = None;
        let mut indexed_end = log::MAGIC.len() as u64;
        for k in (0..indexed).rev() {
            let off = commits.u64(k).expect("below len");
            let c = read_commit(off).ok_or_else(|| {
                corrupt(format!(
                    "index/commits record {k} names log offset {off}, where the log holds no commit record: the log lost committed bytes (truncated or edited), or the index is damaged (then deleting the index directory rebuilds it from the log)"
                ))
            })?;
            if k + 1 == indexed {
                indexed_end = off + COMMIT_RECORD as u64;
            }
            let covered = c.size <= covered_entries && c.blobs <= covered_blobs;
            if covered {
                resume = Some((
                    k,
                    Head {
                        offset: off,
                        commit: c,
                    },
                ));
                break;
            }
        }
        let mut scan = Scan {
            size: 0,
            blobs: 0,
            registry: 0,
            checkpoint: 0,
            batch_start: log::MAGIC.len() as u64,
            commits: 0,
            head: None,
            pending: Pending::default(),
            entries: Vec::new(),
            blob_recs: Vec::new(),
            commit_offsets: Vec::new(),
            covered: (covered_entries, covered_blobs, indexed),
            altered: None,
        };
        if let Some((k, h)) = resume {
            let c = h.commit;
            (scan.size, scan.blobs) = (c.size, c.blobs);
            (scan.registry, scan.checkpoint) = (c.registry, c.checkpoint);
            scan.batch_start = h.end();
            scan.commits = k + 1;
            scan.head = Some(h);
        }
        // Up to the newest indexed commit the log is durable: read it through the map. Past
        // it lies at most an unfinished write, which a writer may cut off at any moment: read
        // it into memory instead.
        let from = scan.batch_start;
        let mut complete = true;
        if from < indexed_end {
            complete = scan.run(&log_map.bytes()[from as usize..indexed_end as usize], from);
            if !complete || scan.batch_start != indexed_end {
                return Err(corrupt(format!(
                    "the log between offsets {from} and {indexed_end} does not hold the commits its index names"
                )));
            }
        }
        if complete && log_len > scan.batch_start {
            let start = scan.batch_start;
            let mut tail = vec![0u8; (log_len - start) as usize];
            let n = read_at(&log_file, &mut tail, start).map_err(Error::io(&log_path))?;
            tail.truncate(n);
            scan.run(&tail, start);
        }
        if let Some((at, later)) = scan.altered {
            return Err(corrupt(format!(
                "the batch of the log starting at offset {at} does not match its commit, yet an intact commit follows at offset {later}: the log was altered"
            )));
        }
        let Some(head) = scan.head else {
            return Err(Error::Storage {
                path: dir.to_path_buf(),
                message: "the ledger holds no commit: its initialisation did not finish; remove the directory and run `evl init` again".into(),
            });
        };
        let c = head.commit;
        // Every commit found lies within the `log_len` bytes mapped above.
        debug_assert!(head.end() <= log_map.bytes().len() as u64);

        let mut entries: Dense<8> = Dense::new(entries_map, c.size);
        let mut ids: Dense<{ index::RECORD }> = Dense::new(ids_map, c.size);
        let mut blobs: Dense<{ index::RECORD }> = Dense::new(blobs_map, c.blobs);
        let covered_leaves = leaves_covered(stored_hashes).min(c.size);
        let mut hashes: Dense<32> = Dense::new(
            hashes_map,
            tlog_tiles::tlog::stored_hash_count(covered_leaves),
        );
        let first_scanned = c.size - scan.entries.len() as u64;
        for (i, (offset, id, leaf)) in scan.entries.iter().enumerate() {
            let index = first_scanned + i as u64;
            if index >= entries.len() {
                entries.push(&offset.to_le_bytes());
            }
            if index >= ids.len() {
                ids.push(&index::encode(&id.0, index));
            }
            if index >= covered_leaves {
                let add = merkle::hashes_to_store(index, *leaf, &DenseHashes(&hashes))
                    .map_err(|e| corrupt(format!("tree hashes: {e}")))?;
                for (_, h) in add {
                    hashes.push(&h.0);
                }
            }
        }
        let first_blob = c.blobs - scan.blob_recs.len() as u64;
        for (i, (d, off)) in scan.blob_recs.iter().enumerate() {
            if first_blob + i as u64 >= blobs.len() {
                blobs.push(&index::encode(&d.0, *off));
            }
        }
        for off in &scan.commit_offsets {
            commits.push(&off.to_le_bytes());
        }
        let complete_derived = entries.len() == c.size
            && ids.len() == c.size
            && blobs.len() == c.blobs
            && hashes.len() == tlog_tiles::tlog::stored_hash_count(c.size)
            && commits.len() == scan.commits;
        if !complete_derived {
            return Err(corrupt(
                "the index files disagree with the log and cannot be rebuilt from it",
            ));
        }
        let listing = index::Listing::default();
        Ok(View {
            dir: dir.to_path_buf(),
            log: log_map,
            head,
            entries,
            hashes,
            commits,
            ids: Keyed::new(IDS, &idx, ids, c.size, runs.0.clone(), listing.clone()),
            blobs: Keyed::new(BLOBS, &idx, blobs, c.blobs, runs.1.clone(), listing),
            lens: (log_len, commits_len),
            genesis: OnceLock::new(),
        })
    }

    /// Whether the files still look as they did when this view was opened (nobody appended).
    pub fn is_current(&self) -> bool {
        let idx = self.dir.join(INDEX_DIR);
        (file_len(&self.dir.join(LOG)), file_len(&idx.join(COMMITS))) == self.lens
    }

    /// The log file's length when this view was opened.
    pub fn log_file_len(&self) -> u64 {
        self.lens.0
    }

    /// Whether derived records are held in memory that the index files lack.
    pub fn has_unwritten_index(&self) -> bool {
        !(self.entries.extra().is_empty()
            && self.hashes.extra().is_empty()
            && self.commits.extra().is_empty()
            && self.ids.dense().extra().is_empty()
            && self.blobs.dense().extra().is_empty())
    }

    /// The newest commit.
    pub fn head(&self) -> Head {
        self.head
    }

    /// The number of entries (the tree size).
    pub fn size(&self) -> u64 {
        self.head.commit.size
    }

    /// The number of stored blobs.
    pub fn blob_count(&self) -> u64 {
        self.head.commit.blobs
    }

    /// The committed log bytes, from offset 0 to the end of the newest commit.
    pub fn log(&self) -> &[u8] {
        &self.log.bytes()[..self.head.end() as usize]
    }

    /// The log offset of entry `index`'s record, by the entry index file.
    pub fn entry_offset(&self, index: u64) -> Option<u64> {
        self.entries.u64(index)
    }

    /// Derived files, for verification.
    pub fn entry_offsets(&self) -> &Dense<8> {
        &self.entries
    }
    pub fn stored_hashes(&self) -> &Dense<32> {
        &self.hashes
    }
    pub fn commit_offsets(&self) -> &Dense<8> {
        &self.commits
    }
    pub fn ids(&self) -> &Keyed {
        &self.ids
    }
    pub fn blobs(&self) -> &Keyed {
        &self.blobs
    }

    /// The record at `offset`, which must have tag `tag`.
    fn record(&self, offset: u64, tag: Tag, what: &dyn Fn() -> String) -> Result<Record<'_>> {
        match log::record_at(self.log(), offset) {
            Ok(r) if r.tag == tag => Ok(r),
            _ => Err(corrupt(format!(
                "{} points at log offset {offset}, which holds no {tag:?} record",
                what()
            ))),
        }
    }

    /// The stored bytes of entry `index`.
    pub fn entry_bytes(&self, index: u64) -> Result<&[u8]> {
        if index >= self.size() {
            return Err(Error::Invalid(format!(
                "entry {index} is beyond the end of the ledger ({} entries)",
                self.size()
            )));
        }
        let off = self
            .entry_offset(index)
            .ok_or_else(|| corrupt(format!("entry {index} is missing from the entry index")))?;
        Ok(self
            .record(off, Tag::Entry, &|| {
                format!("the entry index for entry {index}")
            })?
            .body)
    }

    /// Entry `index`, decoded.
    pub fn entry(&self, index: u64) -> Result<Entry> {
        Entry::from_bytes(self.entry_bytes(index)?)
            .map_err(|e| corrupt(format!("entry {index} does not decode: {e}")))
    }

    /// The id of entry `index`, by the id index.
    pub fn id_at(&self, index: u64) -> Option<EntryId> {
        self.ids.get(index).map(|(k, _)| Digest(k))
    }

    /// The log index of entry `id`, if present.
    pub fn index_of(&self, id: &EntryId) -> Option<u64> {
        let index = self.ids.lookup(&id.0)?;
        // A damaged run could point anywhere: trust it only where the dense record agrees.
        (self.id_at(index) == Some(*id)).then_some(index)
    }

    /// The entry with id `id` and its index.
    pub fn entry_by_id(&self, id: &EntryId) -> Result<(u64, Entry)> {
        let index = self
            .index_of(id)
            .ok_or_else(|| Error::Unknown(id.to_hex()))?;
        let bytes = self.entry_bytes(index)?;
        let entry = Entry::from_bytes(bytes)
            .map_err(|e| corrupt(format!("entry {index} does not decode: {e}")))?;
        if Digest::of(&bytes[..bytes.len() - 64]) != *id {
            return Err(corrupt(format!(
                "the id index points {} at entry {index}, which has another id",
                id.short()
            )));
        }
        Ok((index, entry))
    }

    /// The blob record of `digest`: (the entry that first carried it, its bytes).
    pub fn blob_record(&self, digest: &Digest) -> Result<Option<(u64, &[u8])>> {
        let Some(off) = self.blobs.lookup(&digest.0) else {
            return Ok(None);
        };
        let r = self.record(off, Tag::Blob, &|| {
            format!("the blob index for {}", digest.short())
        })?;
        let (stated, entry, bytes) = log::blob_parts(r.body);
        if stated != digest.0 {
            return Err(corrupt(format!(
                "the blob index points {} at log offset {off}, which holds {}",
                digest.short(),
                Digest(stated).short()
            )));
        }
        Ok(Some((entry, bytes)))
    }

    /// Artifact bytes by content digest.
    pub fn blob(&self, digest: &Digest) -> Result<Option<&[u8]>> {
        Ok(self.blob_record(digest)?.map(|(_, b)| b))
    }

    /// The genesis entry's id and the origin it names.
    fn genesis(&self) -> Result<&(EntryId, String)> {
        self.genesis
            .get_or_init(|| {
                let bytes = self.entry_bytes(0).map_err(|e| e.to_string())?;
                let e = Entry::from_bytes(bytes)
                    .map_err(|e| format!("entry 0 does not decode: {e}"))?;
                match e.body.payload {
                    Payload::Genesis(g) => Ok((Digest::of(&bytes[..bytes.len() - 64]), g.origin)),
                    _ => Err("entry 0 is not a genesis entry".into()),
                }
            })
            .as_ref()
            .map_err(|e| corrupt(e.clone()))
    }

    /// The id of the genesis entry, which every other entry names.
    pub fn genesis_id(&self) -> Result<EntryId> {
        Ok(self.genesis()?.0)
    }

    /// The origin string checkpoints carry.
    pub fn origin(&self) -> Result<String> {
        Ok(self.genesis()?.1.clone())
    }

    /// The key registry as of the newest commit, from its snapshot record.
    pub fn registry(&self) -> Result<Registry> {
        let r = self.record(self.head.commit.registry, Tag::Registry, &|| {
            "the newest commit's registry pointer".into()
        })?;
        let states: Vec<KeyState> = codec::decode(r.body, log::MAX_BODY)
            .map_err(|e| corrupt(format!("the key registry record: {e}")))?;
        Ok(Registry::from_states(states))
    }

    /// The latest stored checkpoint note, if one was stored.
    pub fn latest_checkpoint(&self) -> Option<&[u8]> {
        let off = self.head.commit.checkpoint;
        (off != 0)
            .then(|| log::record_at(self.log(), off).ok())
            .flatten()
            .filter(|r| r.tag == Tag::Checkpoint)
            .map(|r| r.body)
    }

    /// Stored tree hash `index`.
    pub fn stored_hash(&self, index: u64) -> Option<Hash> {
        self.hashes.get(index).map(|b| Hash(*b))
    }
}

/// The number of leaves whose stored hashes fit in `stored` hashes.
fn leaves_covered(stored: u64) -> u64 {
    // stored_hash_count(n) = 2n - popcount(n) is increasing: search for the largest n.
    let (mut lo, mut hi) = (0u64, stored);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if tlog_tiles::tlog::stored_hash_count(mid) <= stored {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Reads into `buf` at `offset` until it is full or the file ends; returns the bytes read.
fn read_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], offset + n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Stored hashes read from a dense array.
struct DenseHashes<'a>(&'a Dense<32>);

impl HashReader for DenseHashes<'_> {
    fn read_hashes(
        &self,
        indexes: &[u64],
    ) -> std::result::Result<Vec<Hash>, tlog_tiles::tlog::Error> {
        merkle::read_each(indexes, |i| self.0.get(i).map(|b| Hash(*b)))
    }
}

impl HashReader for View {
    fn read_hashes(
        &self,
        indexes: &[u64],
    ) -> std::result::Result<Vec<Hash>, tlog_tiles::tlog::Error> {
        DenseHashes(&self.hashes).read_hashes(indexes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_covered_inverts_the_stored_hash_count() {
        for n in 0..2000u64 {
            let s = tlog_tiles::tlog::stored_hash_count(n);
            assert_eq!(leaves_covered(s), n);
            if s > 0 {
                assert_eq!(leaves_covered(s - 1), n - 1);
            }
        }
    }
}
