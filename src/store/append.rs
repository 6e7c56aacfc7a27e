//! The writing side of the store: a batch's records, index records and commit built from a
//! view, then written by the ledger's only writer (docs/FORMAT.md §"Store layout").

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::files::Dense;
use super::index::{self, RunCache};
use super::io::{Fs, FsFile, Mode};
use super::log::{self, Commit, Tag};
use super::view::View;
use super::{
    BLOBS, COMMITS, ENTRIES, HASHES, IDS, INDEX_DIR, INDEX_FORMAT, INDEX_TAG, LOG,
    MAX_ARTIFACT_BYTES,
};
use crate::codec;
use crate::digest::{Digest, EntryId};
use crate::entry::{Entry, Payload};
use crate::error::{Error, Result};
use crate::merkle::{self, Hash, HashReader};
use crate::registry::{KeyState, Registry};

/// An entry ready to store: its id, stored bytes, leaf hash and blob digests computed once.
pub(super) struct Prepared {
    pub(super) entry: Entry,
    pub(super) id: EntryId,
    pub(super) bytes: Vec<u8>,
    pub(super) leaf: Hash,
    pub(super) blobs: Vec<Vec<u8>>,
    pub(super) blob_digests: Vec<Digest>,
    /// The key the signature was verified under already, if it was (see
    /// [`crate::registry::Registry::check_and_apply_verified`]).
    pub(super) verified_under: Option<crate::keys::PublicKey>,
}

impl Prepared {
    pub(super) fn new(entry: Entry, id: EntryId, bytes: Vec<u8>, blobs: Vec<Vec<u8>>) -> Prepared {
        Prepared {
            leaf: merkle::leaf_hash(&bytes),
            blob_digests: blobs.iter().map(|b| Digest::of(b)).collect(),
            entry,
            id,
            bytes,
            blobs,
            verified_under: None,
        }
    }
}

/// Records for the index files that a batch adds.
#[derive(Default)]
pub(super) struct Derived {
    pub(super) entries: Vec<u8>,
    pub(super) ids: Vec<u8>,
    pub(super) blobs: Vec<u8>,
    pub(super) hashes: Vec<u8>,
}

/// The canonical bytes of a registry snapshot record.
pub(super) fn registry_record(registry: &Registry) -> Vec<u8> {
    let states: Vec<&KeyState> = registry.keys().values().collect();
    codec::encode(&states)
}

/// The log bytes of a batch (records and its commit) and the index records it adds.
/// `stored[i][j]` says whether the ledger already holds the `j`-th bytes entry `i` carries.
pub(super) fn build_batch(
    view: &View,
    prepared: &[Prepared],
    stored: &[Vec<bool>],
    registry: Option<&Registry>,
) -> Result<(Vec<u8>, Derived)> {
    let head = view.head();
    let base = head.end();
    let start = view.size();
    let capacity: usize = prepared
        .iter()
        .map(|p| 16 + p.bytes.len() + p.blobs.iter().map(|b| 16 + b.len()).sum::<usize>())
        .sum();
    let mut batch = Vec::with_capacity(capacity + 4096);
    let mut d = Derived::default();
    let mut new_blobs: std::collections::BTreeSet<Digest> = Default::default();
    let mut blob_count = view.blob_count();
    let mut hashes = PendingHashes {
        view,
        first: tlog_tiles::tlog::stored_hash_count(start),
        added: Vec::with_capacity(prepared.len() * 2),
    };
    for (i, p) in prepared.iter().enumerate() {
        let index = start + i as u64;
        d.entries
            .extend_from_slice(&(base + batch.len() as u64).to_le_bytes());
        d.ids
            .extend_from_slice(&index::encode(IDS, index::DENSE, index, &p.id.0, index));
        log::put(&mut batch, Tag::Entry, &p.bytes);
        for ((b, digest), known) in p.blobs.iter().zip(&p.blob_digests).zip(&stored[i]) {
            if *known || !new_blobs.insert(*digest) {
                continue;
            }
            let position = blob_count;
            d.blobs.extend_from_slice(&index::encode(
                BLOBS,
                index::DENSE,
                position,
                &digest.0,
                base + batch.len() as u64,
            ));
            log::put_blob(&mut batch, &digest.0, index, b);
            blob_count += 1;
        }
        let add = merkle::hashes_to_store(index, p.leaf, &hashes)
            .map_err(|e| Error::Corrupt(format!("tree hashes: {e}")))?;
        hashes.added.extend(add.into_iter().map(|(_, h)| h));
    }
    let new_size = start + prepared.len() as u64;
    let root =
        merkle::root(new_size, &hashes).map_err(|e| Error::Corrupt(format!("tree hashes: {e}")))?;
    let registry = match registry {
        Some(r) => {
            let at = base + batch.len() as u64;
            log::put(&mut batch, Tag::Registry, &registry_record(r));
            at
        }
        None => head.commit.registry,
    };
    Commit {
        size: new_size,
        blobs: blob_count,
        batch_start: base,
        registry,
        checkpoint: head.commit.checkpoint,
        root,
        check: [0; 32],
    }
    .seal(&mut batch);
    d.hashes = hashes.added.iter().flat_map(|h| h.0).collect();
    Ok((batch, d))
}

/// Stored hashes of a batch not yet committed, over the view's.
struct PendingHashes<'a> {
    view: &'a View,
    first: u64,
    added: Vec<Hash>,
}

impl HashReader for PendingHashes<'_> {
    fn read_hashes(
        &self,
        indexes: &[u64],
    ) -> std::result::Result<Vec<Hash>, tlog_tiles::tlog::Error> {
        merkle::read_each(indexes, |i| {
            if i >= self.first {
                self.added.get((i - self.first) as usize).copied()
            } else {
                self.view.stored_hash(i)
            }
        })
    }
}

/// The writer's open files, positioned at the view's newest commit.
pub(super) struct Writer {
    dir: PathBuf,
    fs: Arc<dyn Fs>,
    pub(super) view: Arc<View>,
    log: Box<dyn FsFile>,
    index: Vec<(Box<dyn FsFile>, u64)>,
    runs: (Arc<RunCache>, Arc<RunCache>),
}

impl Writer {
    /// Opens the files for writing and writes the index records the view had to rebuild in
    /// memory (replacing index files of another format). Bytes an interrupted writer left
    /// past the newest commit stay until a batch is written over them: a failed verb leaves
    /// the log as it found it.
    pub(super) fn new(
        dir: &Path,
        view: Arc<View>,
        runs: (Arc<RunCache>, Arc<RunCache>),
    ) -> Result<Writer> {
        let fs = view.fs().clone();
        let io = |p: PathBuf| Error::store_io(p);
        let log_path = dir.join(LOG);
        let log = fs
            .open(&log_path, Mode::ReadWrite)
            .map_err(io(log_path.clone()))?;
        let idx = dir.join(INDEX_DIR);
        fs.create_dir_all(&idx).map_err(io(idx.clone()))?;
        if !view.index_current() {
            // Derived files of another index format: removed, then rebuilt from the view's
            // records, which it read from the log.
            for name in fs.list(&idx).map_err(io(idx.clone()))? {
                fs.remove_file(&idx.join(&name))
                    .map_err(io(idx.join(&name)))?;
            }
            let tag = idx.join(INDEX_TAG);
            let f = fs.open(&tag, Mode::ReadWrite).map_err(io(tag.clone()))?;
            write_durably(&*f, INDEX_FORMAT, 0).map_err(io(tag.clone()))?;
        }
        let open = |name: &str, dense: Rebuilt| -> Result<(Box<dyn FsFile>, u64)> {
            let p = idx.join(name);
            let f = fs.open(&p, Mode::ReadWrite).map_err(io(p.clone()))?;
            // Exactly the records the view holds from the file, then the ones it rebuilt from
            // the log — usually already there, past the durability mark, and not rewritten.
            let (file, extra) = (dense.file, dense.extra);
            let at = dense.mapped as usize * dense.width;
            let end = at + extra.len();
            if file.get(at..end) == Some(extra) {
                if file.len() > end {
                    f.set_len(end as u64).map_err(io(p.clone()))?;
                }
            } else {
                if file.len() != at {
                    f.set_len(at as u64).map_err(io(p.clone()))?;
                }
                if !extra.is_empty() {
                    f.write_all_at(extra, at as u64).map_err(io(p.clone()))?;
                }
            }
            Ok((f, end as u64))
        };
        // The order a writer appends in: the commit index last, so a reader who finds a commit
        // there finds everything else it needs too.
        let (ids, blobs) = (view.ids().dense(), view.blobs().dense());
        let index = vec![
            open(ENTRIES, Rebuilt::of(view.entry_offsets()))?,
            open(IDS, Rebuilt::of(ids))?,
            open(BLOBS, Rebuilt::of(blobs))?,
            open(HASHES, Rebuilt::of(view.stored_hashes()))?,
            open(COMMITS, Rebuilt::of(view.commit_offsets()))?,
        ];
        Ok(Writer {
            dir: dir.to_path_buf(),
            fs,
            view,
            log,
            index,
            runs,
        })
    }

    /// Appends `batch` (ending in its commit record) to the log and makes it durable, then
    /// appends the index records. Once the log write is durable the append has happened:
    /// a failure to write the index files is left for the next writer to repair.
    pub(super) fn commit(&mut self, batch: &[u8], derived: &Derived) -> Result<()> {
        let end = self.view.head().end();
        let log_path = self.dir.join(LOG);
        // The batch goes where the newest commit ends, over whatever an interrupted writer
        // left there (never a complete commit: the view refuses a log with one), and the file
        // ends with it.
        let new_end = end + batch.len() as u64;
        let written = self.log.write_all_at(batch, end).and_then(|()| {
            if self.view.log_file_len() > new_end {
                self.log.set_len(new_end)?;
            }
            self.log.sync_data()
        });
        if let Err(e) = written {
            // Leave no trace: nothing past the newest commit may look committed.
            let _ = self.log.set_len(end);
            let _ = self.log.sync_data();
            return Err(Error::store_io(log_path)(e));
        }
        let commit_at = end + batch.len() as u64 - log::COMMIT_RECORD as u64;
        let commit = commit_at.to_le_bytes();
        let parts: [&[u8]; 5] = [
            &derived.entries,
            &derived.ids,
            &derived.blobs,
            &derived.hashes,
            &commit,
        ];
        for ((f, at), bytes) in self.index.iter_mut().zip(parts) {
            if f.write_all_at(bytes, *at).is_err() {
                return Ok(());
            }
            *at += bytes.len() as u64;
        }
        // Upkeep: the index syncs and the lookup runs. Failures leave a mark further back or
        // a longer in-memory tail, nothing wrong.
        let idx = self.dir.join(INDEX_DIR);
        let (fs, view, index) = (&*self.fs, &*self.view, &self.index);
        let concurrent = fs.concurrent_syncs();
        let new_size = view.size() + derived.entries.len() as u64 / 8;
        let new_blobs = view.blob_count() + derived.blobs.len() as u64 / index::RECORD as u64;
        // Every DURABLE_EVERY entries the index files are synced and the durability mark moved
        // on, so a reader after a power loss re-reads at most about that much of the log.
        let (seq, _, durable_size) = view.durable();
        let sync_due = new_size - durable_size >= DURABLE_EVERY;
        let sync_index = || {
            let commits = view.commit_offsets().len() + 1;
            // All five at once: a server's batch waits for these, and the file system
            // commits concurrent syncs together (one after another they cost five journal
            // commits).
            let synced = if concurrent {
                use rayon::prelude::*;
                index.par_iter().all(|(f, _)| f.sync_data().is_ok())
            } else {
                index.iter().all(|(f, _)| f.sync_data().is_ok())
            };
            if synced {
                let _ = index::write_durable(fs, &idx, seq + 1, commits, new_size);
            }
        };
        // A full tail of either keyed index is sorted into a run and merged.
        let tail_max = view.ids().tail_max();
        let ids_due = new_size - view.ids().tail_start() >= tail_max;
        let blobs_due = new_blobs - view.blobs().tail_start() >= tail_max;
        let compact = |name: &'static str, count: u64, cache: &RunCache| {
            if let Ok(map) = fs.map(&idx.join(name)) {
                let dense = Dense::new(map, count);
                if dense.len() == count {
                    let _ = index::compact(fs, &idx, name, &dense, count, tail_max, cache);
                }
            }
        };
        let tasks: [(bool, &(dyn Fn() + Sync)); 3] = [
            (sync_due, &sync_index),
            (ids_due, &|| compact(IDS, new_size, &self.runs.0)),
            (blobs_due, &|| compact(BLOBS, new_blobs, &self.runs.1)),
        ];
        let due: Vec<&(dyn Fn() + Sync)> = tasks.iter().filter(|t| t.0).map(|t| t.1).collect();
        // The three touch different files: on a real disk they run side by side (each run
        // write waits for its own sync) when more than one is due; a simulated disk takes
        // them in a fixed order.
        if concurrent && due.len() > 1 {
            use rayon::prelude::*;
            due.par_iter().for_each(|task| task());
        } else {
            due.iter().for_each(|task| task());
        }
        Ok(())
    }
}

/// An index file as a view holds it: the file's bytes, the records taken from it, and the
/// records rebuilt from the log after them.
struct Rebuilt<'a> {
    file: &'a [u8],
    mapped: u64,
    width: usize,
    extra: &'a [u8],
}

impl<'a> Rebuilt<'a> {
    fn of<const W: usize>(d: &'a Dense<W>) -> Rebuilt<'a> {
        Rebuilt {
            file: d.file_bytes(),
            mapped: d.mapped(),
            width: W,
            extra: d.extra(),
        }
    }
}

/// Entries after which a writer syncs the index files and moves the durability mark on.
pub(super) const DURABLE_EVERY: u64 = 32;

/// Writes `bytes` at `offset` and waits until they are on disk.
pub(super) fn write_durably(f: &dyn FsFile, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    f.write_all_at(bytes, offset)?;
    f.sync_data()
}

pub(super) fn check_sizes(blobs: &[Vec<u8>]) -> Result<()> {
    for b in blobs {
        if b.len() > MAX_ARTIFACT_BYTES {
            return Err(Error::Invalid(format!(
                "artifact is {} bytes, over the {MAX_ARTIFACT_BYTES}-byte limit",
                b.len()
            )));
        }
    }
    Ok(())
}

/// An artifact entry must come with exactly its bytes; other entries with none, except a
/// disposition, which carries its document.
pub(super) fn check_blobs(entry: &Entry, digests: &[Digest]) -> Result<()> {
    let expect = match &entry.body.payload {
        Payload::Artifact(m) => {
            let want = 1 + usize::from(m.facts.is_some());
            let content_ok = digests.first() == Some(&m.content);
            let facts_ok = m
                .facts
                .as_ref()
                .is_none_or(|f| digests.get(1) == Some(&f.digest));
            if digests.len() != want || !content_ok || !facts_ok {
                return Err(Error::Invalid(
                    "an artifact entry must carry exactly the bytes (and parsed facts) its metadata names"
                        .into(),
                ));
            }
            return Ok(());
        }
        Payload::Disposition(d) => Some(d.document),
        _ => None,
    };
    match (expect, digests) {
        (None, []) => Ok(()),
        (Some(d), [b]) if *b == d => Ok(()),
        _ => Err(Error::Invalid(format!(
            "a {} entry carries unexpected stored bytes",
            entry.body.payload.kind()
        ))),
    }
}
