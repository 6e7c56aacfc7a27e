//! A consistent, read-only view of a ledger as of its newest commit, opened in time
//! independent of the ledger's size: the newest commit is found through the commit index,
//! and only records the derived files do not cover yet (after an interrupted writer) are read
//! from the log and indexed in memory.
//!
//! Nothing a view hands out is taken from derived data unchecked (docs/FORMAT.md §"What
//! authenticates what"): the tree hashes of the newest tree must fold to the root its commit
//! records; an entry's bytes must lie on a path of checked hashes up to that root; stored bytes
//! must hash to the digest they are asked for; the registry snapshot's batch must match its
//! commit's check; every lookup record is checked where it sits. What fails names the file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::files::{Dense, Mapped};
use super::index::{self, Damaged, Keyed, RunCache};
use super::io::{Fs, Mode, read_full};
use super::log::{self, COMMIT_RECORD, Commit, Record, Tag};
use super::{BLOBS, COMMITS, ENTRIES, HASHES, IDS, INDEX_DIR, INDEX_FORMAT, INDEX_TAG, LOG};
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
    fs: Arc<dyn Fs>,
    log: Mapped,
    head: Head,
    entries: Dense<8>,
    hashes: Dense<32>,
    commits: Dense<8>,
    ids: Keyed,
    blobs: Keyed,
    /// Length of the log and of the commit index when opened.
    lens: (u64, u64),
    /// Whether the index directory holds files of the current index format.
    index_current: bool,
    /// Whether the newest commit's batch was read and checked while opening.
    head_checked: bool,
    /// The index's durability mark when opened: (seq, commits, size).
    durable: (u64, u64, u64),
    /// Opened for verification of a damaged log: reads are not checked against the tree.
    forensic: bool,
    genesis: OnceLock<std::result::Result<(EntryId, String), String>>,
    registry_checked: OnceLock<std::result::Result<(), String>>,
    /// Stored-hash indexes known to agree with the newest commit's root.
    verified: Mutex<HashSet<u64>>,
}

fn corrupt(what: impl Into<String>) -> Error {
    Error::Corrupt(what.into())
}

/// The error for a lookup record whose check fails.
fn damaged(dir: &Path, d: Damaged) -> Error {
    corrupt(format!(
        "index/{} record {} is damaged (its check does not match): the index is derived from the log; delete {} and the next evl command rebuilds it",
        d.file,
        d.record,
        dir.join(INDEX_DIR).display()
    ))
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
}

impl Scan {
    /// Scans `bytes`, which are the log from offset `base`; returns false once a batch does
    /// not end in a commit that checks (what follows is an unfinished write or damage).
    fn run(&mut self, bytes: &[u8], base: u64) -> bool {
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

/// The offset of a complete commit record in `tail` (the log from offset `base`, just past
/// the last commit that checks, whose size and blob count are `size` and `blobs`), if any.
///
/// An interrupted append leaves a prefix of its batch: its records frame up to where the
/// bytes end, and its commit record, the batch's last, is incomplete or absent. So a commit
/// record found by walking the records, or — where a record does not frame — a commit
/// header followed by a body whose counts could follow the last commit, proves the bytes were
/// altered after they were committed (docs/FORMAT.md §"The log").
pub fn complete_commit_after(tail: &[u8], base: u64, size: u64, blobs: u64) -> Option<u64> {
    let mut at = 0u64;
    loop {
        match log::record_at(tail, at) {
            Ok(r) if r.tag == Tag::Commit => return Some(base + at),
            Ok(r) => at = r.end(),
            Err(log::Framing::Truncated) => return None,
            Err(log::Framing::Malformed(_)) => break,
        }
    }
    let mut pattern = [Tag::Commit as u8, 0, 0, 0, 0];
    pattern[1..].copy_from_slice(&(log::COMMIT_BODY as u32).to_le_bytes());
    let start = at as usize;
    tail.get(start..)?
        .windows(pattern.len())
        .enumerate()
        .find_map(|(i, w)| {
            let at = start + i;
            if w != pattern {
                return None;
            }
            let body = tail.get(at + log::HEADER..at + COMMIT_RECORD)?;
            let c = Commit::decode(body)?;
            (c.size > size && c.blobs >= blobs && c.batch_start >= base).then_some(base + at as u64)
        })
}

impl View {
    /// Opens the view of the ledger in `dir` as of its newest commit; the lookup runs of the
    /// id and blob indexes are mapped through `runs` (kept by the ledger across views), and a
    /// writer sorts `tail_max` unindexed lookup records into a run.
    pub fn open(
        dir: &Path,
        fs: Arc<dyn Fs>,
        runs: &(Arc<RunCache>, Arc<RunCache>),
        tail_max: u64,
    ) -> Result<View> {
        View::open_as(dir, fs, runs, tail_max, false)
    }

    /// Opens the view `evl verify` falls back to when [`View::open`] refuses a damaged log:
    /// the index files are taken as they are, up to the newest commit index/commits names, so
    /// that verification can name every difference; nothing read through it is checked
    /// against the tree (verify checks everything itself).
    pub fn open_forensic(
        dir: &Path,
        fs: Arc<dyn Fs>,
        runs: &(Arc<RunCache>, Arc<RunCache>),
    ) -> Result<View> {
        View::open_as(dir, fs, runs, index::TAIL_MAX, true)
    }

    fn open_as(
        dir: &Path,
        fs: Arc<dyn Fs>,
        runs: &(Arc<RunCache>, Arc<RunCache>),
        tail_max: u64,
        forensic: bool,
    ) -> Result<View> {
        let idx = dir.join(INDEX_DIR);
        let store_io = |p: &Path| Error::store_io(p.to_path_buf());
        // Index files of another format (an older evl's) are not read: the log is scanned as
        // if they were absent, and the next writer replaces them.
        let index_current = fs
            .read(&idx.join(INDEX_TAG))
            .is_ok_and(|t| t == INDEX_FORMAT);
        let map = |name: &str| -> Result<Mapped> {
            if !index_current {
                return Ok(Mapped::empty());
            }
            let p = idx.join(name);
            fs.map(&p).map_err(store_io(&p))
        };
        // In the order a writer appends in reverse: the commit index first, then the other
        // index files, then the log. Whatever a concurrent writer adds meanwhile, every file
        // read later holds at least what the commit index read first promises.
        let durable = if index_current {
            index::read_durable(&*fs, &idx)
        } else {
            (0, 0, 0)
        };
        let commits_map = map(COMMITS)?;
        let commits_len = commits_map.bytes().len() as u64;
        let entries_map = map(ENTRIES)?;
        let hashes_map = map(HASHES)?;
        let ids_map = map(IDS)?;
        let blobs_map = map(BLOBS)?;
        let log_path = dir.join(LOG);
        let log_file = fs
            .open(&log_path, Mode::Read)
            .map_err(store_io(&log_path))?;
        let log_len = log_file.len().map_err(store_io(&log_path))?;
        let log_map = log_file.map(log_len).map_err(store_io(&log_path))?;
        if !log_map.bytes().starts_with(log::MAGIC) {
            return Err(corrupt(format!(
                "{} does not start with the evl-log/2 magic",
                log_path.display()
            )));
        }
        let stored_hashes = (hashes_map.bytes().len() / 32) as u64;
        let read_commit = |off: u64| -> Option<Commit> {
            let r = log::record_at(log_map.bytes(), off).ok()?;
            (r.tag == Tag::Commit).then(|| Commit::decode(r.body))?
        };
        // Index records are trusted as far as the durability mark says they reached the disk,
        // then for each further commit whose records check out against the log: a power loss
        // may have lost, torn or reordered any written after the mark, and from the first
        // commit that does not check out the log is read again.
        let files = IndexFiles {
            commits: commits_map.bytes(),
            entries: entries_map.bytes(),
            ids: ids_map.bytes(),
            blobs: blobs_map.bytes(),
            hashes: hashes_map.bytes(),
        };
        let mark_commits = durable.1.min(commits_len / 8);
        let trusted = if forensic {
            commits_len / 8
        } else {
            files
                .trusted_commits(log_map.bytes(), mark_commits)
                .map_err(|(k, off)| {
                    corrupt(format!(
                        "index/commits record {k} names log offset {off}, where the log holds no commit record: the log lost committed bytes (truncated or edited) — index records are written only once the log bytes they name are durable"
                    ))
                })?
        };
        let commit_at = |k: u64| -> Result<Commit> {
            let off = u64::from_le_bytes(
                files.commits[k as usize * 8..k as usize * 8 + 8]
                    .try_into()
                    .expect("8 bytes"),
            );
            read_commit(off).ok_or_else(|| {
                corrupt(format!(
                    "index/commits record {k} names log offset {off}, where the log holds no commit record: the log lost committed bytes (truncated or edited), or the index is damaged (then deleting {} rebuilds it from the log)",
                    idx.display()
                ))
            })
        };
        let mark_size = match mark_commits {
            0 => 0,
            k => commit_at(k - 1)?.size,
        };
        let (durable_size, durable_blobs) = match trusted {
            0 => (0, 0),
            k => {
                let c = commit_at(k - 1)?;
                (c.size, c.blobs)
            }
        };
        let mut commits: Dense<8> = Dense::new(commits_map, trusted);
        let mark = (durable.0, mark_commits, mark_size);
        // Entries whose offset, id and tree hashes the files durably hold.
        let covered_entries = ((entries_map.bytes().len() / 8)
            .min(ids_map.bytes().len() / index::RECORD) as u64)
            .min(leaves_covered(stored_hashes))
            .min(durable_size);
        let covered_blobs = ((blobs_map.bytes().len() / index::RECORD) as u64).min(durable_blobs);

        // The newest indexed commit, then the newest one whose derived records are all there.
        let indexed = commits.len();
        let mut resume: Option<(u64, Head)> = None;
        let mut indexed_end = log::MAGIC.len() as u64;
        for k in (0..indexed).rev() {
            let off = commits.u64(k).expect("below len");
            let c = read_commit(off).ok_or_else(|| {
                corrupt(format!(
                    "index/commits record {k} names log offset {off}, where the log holds no commit record: the log lost committed bytes (truncated or edited), or the index is damaged (then deleting {} rebuilds it from the log)",
                    idx.display()
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
        // it lies at most an unfinished write, which a writer may replace at any moment: read
        // it into memory instead.
        let from = scan.batch_start;
        if from < indexed_end {
            let complete = scan.run(&log_map.bytes()[from as usize..indexed_end as usize], from);
            if !complete || scan.batch_start != indexed_end {
                return Err(corrupt(format!(
                    "the log between offsets {from} and {indexed_end} does not hold the commits its index names"
                )));
            }
        }
        let scanned_from = scan.batch_start;
        if log_len > scan.batch_start {
            let start = scan.batch_start;
            let mut tail = vec![0u8; (log_len - start) as usize];
            let n = read_full(&*log_file, &mut tail, start).map_err(store_io(&log_path))?;
            tail.truncate(n);
            if !scan.run(&tail, start) {
                let end = scan.batch_start;
                let rest = &tail[(end - start) as usize..];
                if let Some(at) = complete_commit_after(rest, end, scan.size, scan.blobs) {
                    return Err(corrupt(format!(
                        "the log's bytes from offset {end} do not end in a commit that checks, yet a complete commit record follows at offset {at}: they were altered or damaged after they were committed, not left by an interrupted append; evl will not cut them (`evl verify` names what differs)"
                    )));
                }
            }
        }
        let Some(head) = scan.head else {
            return Err(Error::Storage {
                path: dir.to_path_buf(),
                message: "the ledger holds no commit: its initialisation did not finish; remove the directory and run `evl init` again".into(),
            });
        };
        let head_checked = head.offset >= scanned_from;
        let c = head.commit;
        // Every commit found lies within the `log_len` bytes mapped above.
        debug_assert!(head.end() <= log_map.bytes().len() as u64);

        let covered_leaves = covered_entries.min(c.size);
        let mut entries: Dense<8> = Dense::new(entries_map, covered_leaves);
        let mut ids: Dense<{ index::RECORD }> = Dense::new(ids_map, covered_leaves);
        let mut blobs: Dense<{ index::RECORD }> = Dense::new(blobs_map, covered_blobs.min(c.blobs));
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
                ids.push(&index::encode(IDS, index::DENSE, index, &id.0, index));
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
            let j = first_blob + i as u64;
            if j >= blobs.len() {
                blobs.push(&index::encode(BLOBS, index::DENSE, j, &d.0, *off));
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
        let view = View {
            dir: dir.to_path_buf(),
            log: log_map,
            head,
            entries,
            hashes,
            commits,
            ids: Keyed::new(
                IDS,
                &idx,
                fs.clone(),
                ids,
                c.size,
                tail_max,
                runs.0.clone(),
                listing.clone(),
            ),
            blobs: Keyed::new(
                BLOBS,
                &idx,
                fs.clone(),
                blobs,
                c.blobs,
                tail_max,
                runs.1.clone(),
                listing,
            ),
            fs,
            lens: (log_len, commits_len),
            index_current,
            head_checked,
            durable: mark,
            forensic,
            genesis: OnceLock::new(),
            registry_checked: OnceLock::new(),
            verified: Mutex::new(HashSet::new()),
        };
        if !forensic {
            view.check_frontier()?;
        }
        Ok(view)
    }

    /// Checks that the stored hashes of the newest tree's complete subtrees fold to the root
    /// the newest commit records, and remembers them as checked.
    fn check_frontier(&self) -> Result<()> {
        let size = self.size();
        let indexes = tlog_tiles::tlog::sub_tree_index(0, size, Vec::new());
        let folded = merkle::root(size, self).ok();
        if folded != Some(self.head.commit.root) {
            return Err(corrupt(format!(
                "the tree hashes in {} do not give the root the newest commit records for size {size} (either is damaged): delete the index directory to rebuild it from the log, and run `evl verify`",
                self.dir.join(INDEX_DIR).join(HASHES).display()
            )));
        }
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(indexes);
        Ok(())
    }

    /// The file system the view reads through.
    pub fn fs(&self) -> &Arc<dyn Fs> {
        &self.fs
    }

    /// Whether the files still look as they did when this view was opened (nobody appended).
    pub fn is_current(&self) -> bool {
        let idx = self.dir.join(INDEX_DIR);
        let len = |p: &Path| self.fs.len(p).ok().flatten().unwrap_or(0);
        (len(&self.dir.join(LOG)), len(&idx.join(COMMITS))) == self.lens
    }

    /// The log file's length when this view was opened.
    pub fn log_file_len(&self) -> u64 {
        self.lens.0
    }

    /// Whether the index directory holds files of the current index format.
    pub fn index_current(&self) -> bool {
        self.index_current
    }

    /// The index's durability mark as this view uses it: (seq, commits, entries) whose index
    /// records it read from the files.
    pub fn durable(&self) -> (u64, u64, u64) {
        self.durable
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

    /// Checks that the newest commit's batch matches its check hash (what a writer builds
    /// on must not be damaged; a batch read while opening was checked then).
    pub fn check_head(&self) -> Result<()> {
        if self.head_checked || self.head.commit.checks(self.log(), self.head.offset) {
            return Ok(());
        }
        Err(corrupt(format!(
            "the newest commit (log offset {}) does not match its batch's bytes: they were altered or damaged; evl will not append to it (`evl verify` names what differs)",
            self.head.offset
        )))
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

    /// The stored bytes of entry `index`, checked against the newest commit's root: their
    /// leaf hash must lie on a path of tree hashes that folds to it.
    pub fn entry_bytes(&self, index: u64) -> Result<&[u8]> {
        let r = self.entry_record(index)?;
        self.check_leaf(index, r.offset, merkle::leaf_hash(r.body))?;
        Ok(r.body)
    }

    /// The record of entry `index`, located by the entry index, not yet checked.
    fn entry_record(&self, index: u64) -> Result<Record<'_>> {
        if index >= self.size() {
            return Err(Error::Invalid(format!(
                "entry {index} is beyond the end of the ledger ({} entries)",
                self.size()
            )));
        }
        let off = self
            .entry_offset(index)
            .ok_or_else(|| corrupt(format!("entry {index} is missing from the entry index")))?;
        self.record(off, Tag::Entry, &|| {
            format!("the entry index for entry {index}")
        })
    }

    /// Checks that `leaf` is the hash of leaf `index` of the newest tree. Hashes that a
    /// check proves (the path and its siblings) are remembered, so reading many entries
    /// costs about one hash each.
    fn check_leaf(&self, index: u64, offset: u64, leaf: Hash) -> Result<()> {
        let fail = || {
            corrupt(format!(
                "entry {index}, read at log offset {offset} as index/entries places it, does not match the tree the newest commit records: the log, index/entries or index/hashes is damaged (`evl verify` names which; deleting {} rebuilds the index)",
                self.dir.join(INDEX_DIR).display()
            ))
        };
        if self.forensic {
            return Ok(());
        }
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        let stored = |level: u8, n: u64| self.stored_hash(merkle::stored_hash_index(level, n));
        let (mut level, mut n, mut hash) = (0u8, index, leaf);
        let mut proven = Vec::new();
        loop {
            let at = merkle::stored_hash_index(level, n);
            if verified.contains(&at) {
                if stored(level, n) != Some(hash) {
                    return Err(fail());
                }
                break;
            }
            // The frontier subtrees are all checked, so the walk meets a checked hash before
            // it climbs out of the tree.
            let sibling = stored(level, n ^ 1).ok_or_else(fail)?;
            proven.push(at);
            proven.push(merkle::stored_hash_index(level, n ^ 1));
            hash = if n & 1 == 0 {
                tlog_tiles::tlog::node_hash(hash, sibling)
            } else {
                tlog_tiles::tlog::node_hash(sibling, hash)
            };
            level += 1;
            n >>= 1;
            if level > 63 {
                return Err(fail());
            }
        }
        verified.extend(proven);
        Ok(())
    }

    /// Entry `index`, decoded.
    pub fn entry(&self, index: u64) -> Result<Entry> {
        Entry::from_bytes(self.entry_bytes(index)?)
            .map_err(|e| corrupt(format!("entry {index} does not decode: {e}")))
    }

    /// The id of entry `index`, by the id index (its record checked).
    pub fn id_at(&self, index: u64) -> Result<Option<EntryId>> {
        Ok(self
            .ids
            .get(index)
            .map_err(|d| damaged(&self.dir, d))?
            .map(|(k, _)| Digest(k)))
    }

    /// The log index of entry `id`, if present: the lookup's records are checked, and an
    /// entry found is read and must have that id.
    pub fn index_of(&self, id: &EntryId) -> Result<Option<u64>> {
        match self.ids.lookup(&id.0).map_err(|d| damaged(&self.dir, d))? {
            None => Ok(None),
            Some(index) => {
                self.entry_by_index_with_id(index, id)?;
                Ok(Some(index))
            }
        }
    }

    /// Entry `index`, which the id index says has id `id`.
    fn entry_by_index_with_id(&self, index: u64, id: &EntryId) -> Result<Entry> {
        if index >= self.size() {
            return Err(corrupt(format!(
                "the id index places {} at entry {index}, beyond the ledger's {} entries (delete {} to rebuild it)",
                id.short(),
                self.size(),
                self.dir.join(INDEX_DIR).display()
            )));
        }
        let bytes = self.entry_bytes(index)?;
        if Digest::of(&bytes[..bytes.len().saturating_sub(64)]) != *id {
            return Err(corrupt(format!(
                "the id index places {} at entry {index}, which has another id (delete {} to rebuild it)",
                id.short(),
                self.dir.join(INDEX_DIR).display()
            )));
        }
        Entry::from_bytes(bytes).map_err(|e| corrupt(format!("entry {index} does not decode: {e}")))
    }

    /// The entry with id `id` and its index.
    pub fn entry_by_id(&self, id: &EntryId) -> Result<(u64, Entry)> {
        let index = self
            .ids
            .lookup(&id.0)
            .map_err(|d| damaged(&self.dir, d))?
            .ok_or_else(|| Error::Unknown(id.to_hex()))?;
        Ok((index, self.entry_by_index_with_id(index, id)?))
    }

    /// Entry ids and stored digests starting with `prefix` (whole bytes), at most `limit`
    /// of each; every record read is checked.
    pub fn with_prefix(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> Result<(Vec<(Digest, u64)>, Vec<Digest>)> {
        let ids = self
            .ids
            .with_prefix(prefix, limit)
            .map_err(|d| damaged(&self.dir, d))?;
        let blobs = self
            .blobs
            .with_prefix(prefix, limit)
            .map_err(|d| damaged(&self.dir, d))?;
        Ok((
            ids.into_iter().map(|(k, i)| (Digest(k), i)).collect(),
            blobs.into_iter().map(|(k, _)| Digest(k)).collect(),
        ))
    }

    /// Whether bytes with `digest` are stored (the lookup's records checked).
    pub fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(self.blob_offset(digest)?.is_some())
    }

    fn blob_offset(&self, digest: &Digest) -> Result<Option<u64>> {
        self.blobs
            .lookup(&digest.0)
            .map_err(|d| damaged(&self.dir, d))
    }

    /// The blob record of `digest`: (the entry that first carried it, its bytes). The bytes
    /// are checked to hash to `digest`; the entry index is as the record states it.
    pub fn blob_record(&self, digest: &Digest) -> Result<Option<(u64, &[u8])>> {
        let Some((off, entry, bytes)) = self.blob_record_unhashed(digest)? else {
            return Ok(None);
        };
        if Digest::of(bytes) != *digest {
            return Err(corrupt(format!(
                "the bytes stored for {digest} (log offset {off}) no longer hash to it: they were altered or damaged"
            )));
        }
        Ok(Some((entry, bytes)))
    }

    /// The blob record of `digest`, its digest field checked but not its bytes: (offset,
    /// entry index, bytes).
    fn blob_record_unhashed(&self, digest: &Digest) -> Result<Option<(u64, u64, &[u8])>> {
        let Some(off) = self.blob_offset(digest)? else {
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
        Ok(Some((off, entry, bytes)))
    }

    /// The entry whose record the blob record of `digest` follows — the first entry that
    /// carried those bytes — checked: the blob record must be one of the records right after
    /// that entry's.
    pub fn first_carrier(&self, digest: &Digest) -> Result<Option<u64>> {
        let Some((off, entry, _)) = self.blob_record_unhashed(digest)? else {
            return Ok(None);
        };
        let r = self.entry_record(entry)?;
        self.check_leaf(entry, r.offset, merkle::leaf_hash(r.body))?;
        let mut at = r.end();
        // An entry carries at most two blobs (an artifact's bytes and its parsed facts).
        for _ in 0..2 {
            if at == off {
                return Ok(Some(entry));
            }
            match log::record_at(self.log(), at) {
                Ok(b) if b.tag == Tag::Blob => at = b.end(),
                _ => break,
            }
        }
        Err(corrupt(format!(
            "the blob record of {} (log offset {off}) names entry {entry}, whose record it does not follow (`evl verify` names what differs)",
            digest.short()
        )))
    }

    /// Stored bytes by digest as they are, NOT checked to hash to it: only for callers that
    /// check the digest themselves and report a mismatch in their own terms (replay shows
    /// what an altered document says).
    pub fn blob_as_stored(&self, digest: &Digest) -> Result<Option<&[u8]>> {
        Ok(self.blob_record_unhashed(digest)?.map(|(_, _, b)| b))
    }

    /// Stored bytes by digest, checked to hash to it.
    pub fn blob(&self, digest: &Digest) -> Result<Option<&[u8]>> {
        Ok(self.blob_record(digest)?.map(|(_, b)| b))
    }

    /// The genesis entry's id and the origin it names.
    fn genesis(&self) -> Result<&(EntryId, String)> {
        self.genesis
            .get_or_init(|| {
                let bytes = self.entry_bytes(0).map_err(|e| match e {
                    Error::Corrupt(m) => m,
                    e => e.to_string(),
                })?;
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

    /// The key registry as of the newest commit, from its snapshot record, whose batch is
    /// checked against the commit that closes it (the record just after it).
    pub fn registry(&self) -> Result<Registry> {
        let at = self.head.commit.registry;
        let r = self.record(at, Tag::Registry, &|| {
            "the newest commit's registry pointer".into()
        })?;
        self.registry_checked
            .get_or_init(|| {
                let closing = log::record_at(self.log(), r.end())
                    .ok()
                    .filter(|c| c.tag == Tag::Commit)
                    .and_then(|c| Some((c.offset, Commit::decode(c.body)?)));
                match closing {
                    Some((off, c)) if c.checks(self.log(), off) => Ok(()),
                    _ => Err(format!(
                        "the key registry record at log offset {at} is not followed by a commit that matches its batch: it was altered or damaged"
                    )),
                }
            })
            .clone()
            .map_err(corrupt)?;
        let states: Vec<KeyState> = codec::decode(r.body, log::MAX_BODY)
            .map_err(|e| corrupt(format!("the key registry record: {e}")))?;
        Ok(Registry::from_states(states))
    }

    /// The latest stored checkpoint note, if one was stored (a signed note: its reader
    /// checks the signature).
    pub fn latest_checkpoint(&self) -> Option<&[u8]> {
        let off = self.head.commit.checkpoint;
        (off != 0)
            .then(|| log::record_at(self.log(), off).ok())
            .flatten()
            .filter(|r| r.tag == Tag::Checkpoint)
            .map(|r| r.body)
    }

    /// Stored tree hash `index` (derived data: see [`View::root_at`] and the proofs for
    /// checked values).
    pub fn stored_hash(&self, index: u64) -> Option<Hash> {
        self.hashes.get(index).map(|b| Hash(*b))
    }

    /// The root of the tree of the first `size` entries, checked: the newest commit's, or one
    /// computed from the tree hashes and proven consistent with it.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        let head = self.head.commit;
        if size == head.size {
            return Ok(head.root);
        }
        if size == 0 || size > head.size {
            return Err(Error::Invalid(format!(
                "there is no tree of size {size} in a ledger of {} entries",
                head.size
            )));
        }
        let root = merkle::root(size, self).map_err(|e| self.hash_damage(e))?;
        let proof =
            merkle::prove_consistency(head.size, size, self).map_err(|e| self.hash_damage(e))?;
        if !merkle::check_consistency(&proof, head.size, head.root, size, root) {
            return Err(self.hash_damage("the tree of that size is not a prefix of the newest"));
        }
        Ok(root)
    }

    /// An inclusion proof of entry `index` in the tree of `size` entries, checked against
    /// that tree's checked root and the entry's stored bytes.
    pub fn prove_inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        if index >= size || size > self.size() {
            return Err(Error::Invalid(format!(
                "entry {index} is not in a tree of size {size}"
            )));
        }
        let root = self.root_at(size)?;
        let leaf = merkle::leaf_hash(self.entry_bytes(index)?);
        let proof = merkle::prove_inclusion(size, index, self).map_err(|e| self.hash_damage(e))?;
        if !merkle::check_inclusion(&proof, size, root, index, leaf) {
            return Err(self.hash_damage("an inclusion proof read from them does not check"));
        }
        Ok(proof)
    }

    /// A consistency proof from the tree of `old` entries to the tree of `new`, checked
    /// against both trees' checked roots.
    pub fn prove_consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        if old == 0 || old > new || new > self.size() {
            return Err(Error::Invalid(format!(
                "cannot prove consistency from size {old} to size {new}: it needs 1 <= old <= new, and the ledger has {} entries",
                self.size()
            )));
        }
        let (old_root, new_root) = (self.root_at(old)?, self.root_at(new)?);
        let proof = merkle::prove_consistency(new, old, self).map_err(|e| self.hash_damage(e))?;
        if !merkle::check_consistency(&proof, new, new_root, old, old_root) {
            return Err(self.hash_damage("a consistency proof read from them does not check"));
        }
        Ok(proof)
    }

    fn hash_damage(&self, why: impl std::fmt::Display) -> Error {
        corrupt(format!(
            "the tree hashes in {} are damaged ({why}): delete the index directory to rebuild it from the log",
            self.dir.join(INDEX_DIR).join(HASHES).display()
        ))
    }
}

/// The index files' bytes as mapped when a view opens.
struct IndexFiles<'a> {
    commits: &'a [u8],
    entries: &'a [u8],
    ids: &'a [u8],
    blobs: &'a [u8],
    hashes: &'a [u8],
}

impl IndexFiles<'_> {
    /// How many commits' index records to trust: the first `mark` (made durable), then each
    /// further commit whose records are all present and consistent with the log — its commit
    /// record where index/commits says and chained to the one before, each entry offset at an
    /// entry record of its batch, each id and blob record's check, each blob offset at a blob
    /// record of that digest in its batch, and the tree hashes of its leaves recomputed from
    /// the stored leaf hashes. Nothing is hashed but the few tree nodes; the newest root then
    /// ties the stored hashes to the commit (`View::check_frontier`).
    /// Fails with (k, offset) when record k names an offset past the log's end after the
    /// previous commit: index records are written only once the log bytes they name are
    /// durable, so that is a log that lost committed bytes, not a power loss.
    fn trusted_commits(&self, log: &[u8], mark: u64) -> std::result::Result<u64, (u64, u64)> {
        let u64_at = |b: &[u8], i: u64| -> Option<u64> {
            let i = i as usize * 8;
            Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?))
        };
        let commit = |k: u64| -> Option<(u64, Commit)> {
            let off = u64_at(self.commits, k)?;
            let r = log::record_at(log, off).ok()?;
            (r.tag == Tag::Commit).then_some(())?;
            Some((off, Commit::decode(r.body)?))
        };
        let count = (self.commits.len() / 8) as u64;
        let mut k = mark.min(count);
        let (mut size, mut blobs, mut end) = match k {
            0 => (0, 0, log::MAGIC.len() as u64),
            k => match commit(k - 1) {
                Some((off, c)) => (c.size, c.blobs, off + COMMIT_RECORD as u64),
                None => return Ok(k),
            },
        };
        let stored = |i: u64| -> Option<Hash> {
            let i = i as usize * 32;
            Some(Hash(self.hashes.get(i..i + 32)?.try_into().ok()?))
        };
        struct FileHashes<'b>(&'b dyn Fn(u64) -> Option<Hash>);
        impl HashReader for FileHashes<'_> {
            fn read_hashes(
                &self,
                indexes: &[u64],
            ) -> std::result::Result<Vec<Hash>, tlog_tiles::tlog::Error> {
                merkle::read_each(indexes, self.0)
            }
        }
        let mut root = None;
        while k < count {
            let Some((off, c)) = commit(k) else {
                match u64_at(self.commits, k) {
                    Some(off) if off >= end && off >= log.len() as u64 => return Err((k, off)),
                    _ => break,
                }
            };
            if c.batch_start != end || c.size < size || c.blobs < blobs {
                break;
            }
            let in_batch = |at: u64, tag: Tag| -> Option<Record<'_>> {
                (at >= c.batch_start && at < off)
                    .then(|| log::record_at(log, at).ok())?
                    .filter(|r| r.tag == tag)
            };
            let entries_ok = (size..c.size).all(|i| {
                let id_ok = self
                    .ids
                    .get(i as usize * index::RECORD..(i as usize + 1) * index::RECORD)
                    .and_then(|b| index::decode_dense(IDS, i, b))
                    .is_some_and(|(_, v)| v == i);
                let at_entry = u64_at(self.entries, i).and_then(|at| in_batch(at, Tag::Entry));
                let leaf = stored(merkle::stored_hash_index(0, i));
                let tree_ok = leaf.is_some_and(|leaf| {
                    merkle::hashes_to_store(i, leaf, &FileHashes(&stored))
                        .is_ok_and(|add| add.iter().all(|(at, h)| stored(*at) == Some(*h)))
                });
                id_ok && at_entry.is_some() && tree_ok
            });
            let blobs_ok = (blobs..c.blobs).all(|j| {
                self.blobs
                    .get(j as usize * index::RECORD..(j as usize + 1) * index::RECORD)
                    .and_then(|b| index::decode_dense(BLOBS, j, b))
                    .and_then(|(d, at)| Some((d, in_batch(at, Tag::Blob)?)))
                    .is_some_and(|(d, r)| r.body.get(..32) == Some(&d[..]))
            });
            if !(entries_ok && blobs_ok) {
                break;
            }
            (size, blobs, end) = (c.size, c.blobs, off + COMMIT_RECORD as u64);
            root = Some(c.root);
            k += 1;
        }
        // A stored leaf hash whose subtree is not complete yet was compared with nothing above:
        // the newest trusted tree must fold to its commit's root, or only the mark is trusted.
        if let Some(root) = root
            && merkle::root(size, &FileHashes(&stored)).ok() != Some(root)
        {
            return Ok(mark.min(count));
        }
        Ok(k)
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
