//! The ledger on disk: one append-only log file that holds every authoritative byte, and
//! derived index files that make every read and every append cost the same whatever the
//! ledger's size (docs/FORMAT.md §"Store layout").
//!
//! ```text
//! DIR/evl-store          "evl-store/2\n": the layout tag, written last by `init`
//! DIR/log                entries, artifact bytes, registry snapshots, checkpoints, commits
//! DIR/lock               writers hold an exclusive lock on it while they append
//! DIR/index/entries      u64 LE log offset of each entry record, by entry index
//! DIR/index/ids          (entry id, index) by entry index, plus sorted runs ids.S-E.run
//! DIR/index/blobs        (BLAKE3 digest, log offset) of each blob record, plus sorted runs
//! DIR/index/hashes       the Merkle tree's stored hashes, 32 bytes each, by stored-hash index
//! DIR/index/commits      u64 LE log offset of each commit record
//! ```
//!
//! An append writes its batch and a commit record to the log in one write, makes it durable
//! with one `fdatasync`, then appends to the index files. The index files are never synced:
//! whatever an interrupted writer (or a power loss) left out of them is re-read from the log
//! by the next reader, in memory, and written by the next writer. Readers take no lock and see
//! the ledger as of the newest commit when they opened it.

mod append;
mod files;
mod index;
mod io;
mod legacy;
mod log;
pub mod sim;
mod view;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rayon::prelude::*;

pub use self::files::Dense;
pub use self::index::{Keyed, Rec, Run, RunCache};
pub use self::io::{Fs, FsFile, Mapped, Mode, RealFs};
pub use self::log::{Commit, Framing, Record, Tag};
pub use self::view::{Head, View};

use self::append::{
    Derived, Prepared, Writer, build_batch, check_blobs, check_sizes, registry_record,
    write_durably,
};

use crate::digest::{Digest, EntryId, is_hex_prefix};
use crate::entry::{ENTRY_FORMAT, Entry, Genesis, KeyGrant, Payload, SignedEntry, UnsignedEntry};
use crate::error::{Error, Result};
use crate::keys::SecretKey;
use crate::merkle::{self, Hash, TreeSize};
use crate::registry::Registry;
use crate::timestamp::Timestamp;

/// Largest artifact evl stores (docs/FORMAT.md §"Limits").
pub const MAX_ARTIFACT_BYTES: usize = 64 * 1024 * 1024;
/// How far in the future of the appending machine's clock a claimed time may be.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;
/// Batches smaller than this are prepared on the calling thread: starting the thread pool
/// would cost more than it saves (a one-entry `evl add` would pay for it in start-up time).
const PARALLEL_FROM: usize = 64;
/// Contents of the layout tag file.
pub const LAYOUT: &[u8] = b"evl-store/2\n";

/// File names in a ledger directory (docs/FORMAT.md §"Store layout").
pub const TAG_FILE: &str = "evl-store";
pub const LOG: &str = "log";
pub const LOCK: &str = "lock";
pub const INDEX_DIR: &str = "index";
pub const ENTRIES: &str = "entries";
pub const IDS: &str = "ids";
pub const BLOBS: &str = "blobs";
pub const HASHES: &str = "hashes";
pub const COMMITS: &str = "commits";
/// The index directory's format tag file, and what it holds for the index format this evl
/// writes; index files without it are from another format and are rebuilt from the log.
pub const INDEX_TAG: &str = "format";
pub const INDEX_FORMAT: &[u8] = b"evl-index/3\n";

/// What verification and tools read of the log's layout (docs/FORMAT.md).
pub mod layout {
    pub use super::index::{
        DENSE, RECORD as INDEX_RECORD, RUN_MAGIC, check as index_check,
        dense_record as index_record, run_bytes,
    };
    pub use super::log::{BLOB_HEAD, MAGIC, blob_parts, record_at, records};
    pub use super::view::complete_commit_after;
    pub use super::{INDEX_FORMAT, INDEX_TAG, LOG, TAG_FILE};
}

/// How to open a ledger.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// When another process is appending, wait up to this long for it instead of failing.
    pub wait: Option<Duration>,
    /// The file system to use (default: the operating system's; tests put a simulated disk
    /// here).
    pub fs: Option<Arc<dyn Fs>>,
    /// Lookup records a writer leaves unsorted before it sorts them into a run (default
    /// [`index::TAIL_MAX`]); only how fast lookups are depends on it, never what is stored.
    pub index_tail: Option<u64>,
}

impl OpenOptions {
    fn fs(&self) -> Arc<dyn Fs> {
        self.fs.clone().unwrap_or_else(RealFs::shared)
    }
}

/// An entry to be appended: its payload, the time its signer claims, and the artifact bytes
/// (if any) it refers to.
#[derive(Clone, Debug)]
pub struct Draft {
    pub payload: Payload,
    pub claimed_at: Timestamp,
    pub blobs: Vec<Vec<u8>>,
}

/// What an append returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub index: u64,
    pub id: EntryId,
}

/// What a digest or prefix resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    Entry { index: u64, id: EntryId },
    Blob(Digest),
}

/// An open ledger. Reads see the ledger as of the newest commit when first read or last
/// appended to through this handle ([`Ledger::refresh`] looks again). Safe to share across
/// threads; appends are serialized, within the process and across processes.
pub struct Ledger {
    path: PathBuf,
    wait: Option<Duration>,
    fs: Arc<dyn Fs>,
    tail_max: u64,
    /// The current view and the generation it was opened at: an append through this handle
    /// (or [`Ledger::refresh`]) moves `generation` on, and the next read opens a new view. The
    /// old one stays until then, so a process that appends and exits never unmaps anything.
    view: RwLock<Option<(u64, Arc<View>)>>,
    generation: AtomicU64,
    /// The writers' lock file, opened once: flock(2) locks belong to an open file, and one
    /// opened per append could stay locked in a child forked meanwhile by another thread.
    lock_file: Mutex<Option<Box<dyn FsFile>>>,
    /// Maps of the id and blob lookup runs, kept across views.
    runs: (Arc<RunCache>, Arc<RunCache>),
}

impl Ledger {
    /// Creates a ledger at `path` whose genesis entry, signed by `signer` (one of `admins`),
    /// names the trust-root admin keys and the origin string used in checkpoints.
    pub fn init(
        path: &Path,
        origin: &str,
        admins: Vec<KeyGrant>,
        signer: &SecretKey,
        at: Timestamp,
    ) -> Result<Ledger> {
        Ledger::init_with(path, origin, admins, signer, at, &OpenOptions::default())
    }

    /// [`Ledger::init`] with open options (e.g. another file system).
    pub fn init_with(
        path: &Path,
        origin: &str,
        admins: Vec<KeyGrant>,
        signer: &SecretKey,
        at: Timestamp,
        opts: &OpenOptions,
    ) -> Result<Ledger> {
        check_origin(origin)?;
        if !admins.iter().any(|g| g.public_key == signer.public()) {
            return Err(Error::Invalid(
                "the genesis signer must be one of the admin keys it names".into(),
            ));
        }
        let body = UnsignedEntry {
            format: ENTRY_FORMAT,
            ledger: Digest::ZERO,
            signer: signer.public().id(),
            claimed_at: at,
            payload: Payload::Genesis(Genesis {
                origin: origin.to_string(),
                admins,
            }),
        };
        Ledger::create(path, Entry::try_sign(body, signer)?, opts)
    }

    /// Creates a ledger at `path` whose first entry is `genesis`, signed elsewhere (a copy of
    /// a published log being read back, `crate::publish::fetch`).
    pub fn create_from(path: &Path, genesis: Entry, opts: &OpenOptions) -> Result<Ledger> {
        Ledger::create(path, genesis, opts)
    }

    /// Creates a ledger at `path` whose first entry is `genesis`, already signed.
    fn create(path: &Path, entry: Entry, opts: &OpenOptions) -> Result<Ledger> {
        let fs = opts.fs();
        let exists = |p: &Path| fs.len(p).ok().flatten().is_some();
        if exists(&path.join(TAG_FILE)) || exists(&path.join(LOG)) || legacy::is_v1(path) {
            return Err(Error::AlreadyExists(path.to_path_buf()));
        }
        if let Payload::Genesis(g) = &entry.body.payload {
            check_origin(&g.origin)?;
        }
        let mut registry = Registry::default();
        registry.check_and_apply(&entry, 0, &Digest::ZERO)?;
        let bytes = entry.to_bytes()?;
        let id = entry.id();
        let leaf = merkle::leaf_hash(&bytes);

        let io = |p: &Path| Error::store_io(p.to_path_buf());
        fs.create_dir_all(&path.join(INDEX_DIR)).map_err(io(path))?;
        let mut log_bytes = log::MAGIC.to_vec();
        let entry_at = log_bytes.len() as u64;
        log::put(&mut log_bytes, Tag::Entry, &bytes);
        let registry_at = log_bytes.len() as u64;
        log::put(&mut log_bytes, Tag::Registry, &registry_record(&registry));
        let mut batch = log_bytes.split_off(log::MAGIC.len());
        let commit_at = entry_at + batch.len() as u64;
        Commit {
            size: 1,
            blobs: 0,
            batch_start: entry_at,
            registry: registry_at,
            checkpoint: 0,
            root: leaf,
            check: [0; 32],
        }
        .seal(&mut batch);
        log_bytes.extend_from_slice(&batch);
        let log_path = path.join(LOG);
        let log_file = fs
            .open(&log_path, Mode::CreateNew)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::AlreadyExists(path.to_path_buf()),
                _ => io(&log_path)(e),
            })?;
        write_durably(&*log_file, &log_bytes, 0).map_err(io(&log_path))?;
        let idx = path.join(INDEX_DIR);
        for (name, bytes) in [
            (INDEX_TAG, INDEX_FORMAT.to_vec()),
            (ENTRIES, entry_at.to_le_bytes().to_vec()),
            (IDS, index::encode(IDS, index::DENSE, 0, &id.0, 0).to_vec()),
            (BLOBS, Vec::new()),
            (HASHES, leaf.0.to_vec()),
            (COMMITS, commit_at.to_le_bytes().to_vec()),
        ] {
            let p = idx.join(name);
            let f = fs.open(&p, Mode::ReadWrite).map_err(io(&p))?;
            f.write_all_at(&bytes, 0).map_err(io(&p))?;
        }
        let lock = path.join(LOCK);
        fs.open(&lock, Mode::ReadWrite).map_err(io(&lock))?;
        let tag = path.join(TAG_FILE);
        let f = fs.open(&tag, Mode::ReadWrite).map_err(io(&tag))?;
        write_durably(&*f, LAYOUT, 0).map_err(io(&tag))?;
        fs.sync_dir(path).map_err(io(path))?;
        Ledger::open(path, opts)
    }

    /// Copies the layout-1 (sled) ledger at `from` into a new ledger at `to`, appending every
    /// entry with its stored bytes again, so each signature and each key's authority at its
    /// position is checked anew; the latest checkpoint is carried over. The copy is built
    /// beside `to` and renamed into place, so `to` appears only complete; `from` is not changed.
    pub fn migrate(from: &Path, to: &Path, progress: &dyn Fn(u64, u64)) -> Result<Ledger> {
        if to.exists() && fs::read_dir(to).map_or(true, |mut d| d.next().is_some()) {
            return Err(Error::AlreadyExists(to.to_path_buf()));
        }
        // sled tidies its files whenever it opens them: read a copy, so `from` stays as it is.
        let mut copy = to.as_os_str().to_owned();
        copy.push(".layout-1");
        let copy = PathBuf::from(copy);
        if !legacy::is_v1(from) {
            return Err(Error::NotALedger(from.to_path_buf()));
        }
        let _ = fs::remove_dir_all(&copy);
        copy_tree(from, &copy)?;
        let result = Ledger::migrate_copy(&copy, to, progress);
        let _ = fs::remove_dir_all(&copy);
        result
    }

    fn migrate_copy(from: &Path, to: &Path, progress: &dyn Fn(u64, u64)) -> Result<Ledger> {
        let old = legacy::V1::open(from)?;
        let size = old.size()?;
        if size == 0 {
            return Err(Error::NotALedger(from.to_path_buf()));
        }
        let mut partial = to.as_os_str().to_owned();
        partial.push(".migrating");
        let partial = PathBuf::from(partial);
        if partial.exists() {
            fs::remove_dir_all(&partial).map_err(Error::io(&partial))?;
        }
        let copy = || -> Result<()> {
            let ledger = Ledger::create(&partial, old.entry(0)?.0, &OpenOptions::default())?;
            let mut next = 1;
            while next < size {
                let end = (next + 4096).min(size);
                let chunk = (next..end)
                    .map(|i| old.entry(i))
                    .collect::<Result<Vec<_>>>()?;
                ledger.append_signed(chunk)?;
                progress(end, size);
                next = end;
            }
            if let Some(note) = old.checkpoint()? {
                ledger.store_checkpoint(&note)?;
            }
            Ok(())
        };
        if let Err(e) = copy() {
            // Nothing half-copied is left behind.
            let _ = fs::remove_dir_all(&partial);
            return Err(e);
        }
        if to.exists() {
            fs::remove_dir(to).map_err(Error::io(to))?;
        }
        fs::rename(&partial, to).map_err(Error::io(to))?;
        if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent).map_err(Error::io(parent))?;
        }
        Ledger::open(to, &OpenOptions::default())
    }

    /// Opens an existing ledger, failing clearly when there is none or when it cannot be
    /// read as it stands (a damaged log, say).
    pub fn open(path: &Path, opts: &OpenOptions) -> Result<Ledger> {
        let ledger = Ledger::open_lazily(path, opts)?;
        ledger.view()?;
        Ok(ledger)
    }

    /// Opens an existing ledger without reading it yet: for verification, which reads a
    /// damaged log its own way ([`Ledger::forensic_snapshot`]).
    pub fn open_lazily(path: &Path, opts: &OpenOptions) -> Result<Ledger> {
        let fs = opts.fs();
        match fs.read(&path.join(TAG_FILE)) {
            Ok(tag) if tag == LAYOUT => {}
            Ok(tag) => {
                return Err(Error::Storage {
                    path: path.to_path_buf(),
                    message: format!(
                        "the store layout is {:?}, which this evl does not read (it reads {:?})",
                        String::from_utf8_lossy(&tag).trim(),
                        String::from_utf8_lossy(LAYOUT).trim()
                    ),
                });
            }
            Err(_) if legacy::is_v1(path) => {
                return Err(Error::Storage {
                    path: path.to_path_buf(),
                    message: "this ledger uses store layout 1 (sled); copy it to the current layout with `evl migrate --from DIR --ledger NEW_DIR`".into(),
                });
            }
            Err(_) => return Err(Error::NotALedger(path.to_path_buf())),
        }
        let ledger = Ledger {
            path: path.to_path_buf(),
            wait: opts.wait,
            fs,
            tail_max: opts.index_tail.unwrap_or(index::TAIL_MAX).max(1),
            view: RwLock::new(None),
            generation: AtomicU64::new(0),
            lock_file: Mutex::new(None),
            runs: Default::default(),
        };
        Ok(ledger)
    }

    /// The current view, opened on first use.
    fn view(&self) -> Result<Arc<View>> {
        // Read the generation before opening: a write that ends meanwhile moves it on, so the
        // view opened here is not taken for one that includes that write.
        let generation = self.generation.load(AtomicOrdering::Acquire);
        if let Some((g, v)) = self.view.read().unwrap_or_else(|p| p.into_inner()).as_ref()
            && *g == generation
        {
            return Ok(v.clone());
        }
        let v = Arc::new(View::open(
            &self.path,
            self.fs.clone(),
            &self.runs,
            self.tail_max,
        )?);
        *self.view.write().unwrap_or_else(|p| p.into_inner()) = Some((generation, v.clone()));
        Ok(v)
    }

    /// Looks at the ledger again, to see what other processes appended since.
    pub fn refresh(&self) {
        self.generation.fetch_add(1, AtomicOrdering::AcqRel);
    }

    /// A consistent snapshot of the ledger, for reading many things at one point of its history.
    pub fn snapshot(&self) -> Result<Arc<View>> {
        self.view()
    }

    /// The snapshot verification falls back to when a damaged log makes [`Ledger::snapshot`]
    /// refuse (see [`View::open_forensic`]).
    pub fn forensic_snapshot(&self) -> Result<Arc<View>> {
        Ok(Arc::new(View::open_forensic(
            &self.path,
            self.fs.clone(),
            &self.runs,
        )?))
    }

    /// The directory holding the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of entries (the tree size).
    pub fn size(&self) -> Result<TreeSize> {
        Ok(self.view()?.size())
    }

    /// The id of the genesis entry, which every other entry names.
    pub fn genesis_id(&self) -> Result<Digest> {
        self.view()?.genesis_id()
    }

    /// The origin string checkpoints carry.
    pub fn origin(&self) -> Result<String> {
        self.view()?.origin()
    }

    /// The stored bytes of entry `index`.
    pub fn entry_bytes(&self, index: u64) -> Result<Vec<u8>> {
        Ok(self.view()?.entry_bytes(index)?.to_vec())
    }

    /// Entry `index`, decoded.
    pub fn entry(&self, index: u64) -> Result<Entry> {
        self.view()?.entry(index)
    }

    /// The log index of entry `id`, if present.
    pub fn index_of(&self, id: &EntryId) -> Result<Option<u64>> {
        self.view()?.index_of(id)
    }

    /// The entry with id `id` and its index.
    pub fn entry_by_id(&self, id: &EntryId) -> Result<(u64, Entry)> {
        self.view()?.entry_by_id(id)
    }

    /// Stored bytes by digest, checked to hash to it (refused, naming the damage, when
    /// they no longer do).
    pub fn blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        Ok(self.view()?.blob(digest)?.map(<[u8]>::to_vec))
    }

    /// Stored bytes by digest as they are, not checked (see [`View::blob_as_stored`]).
    pub fn blob_as_stored(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        Ok(self.view()?.blob_as_stored(digest)?.map(<[u8]>::to_vec))
    }

    /// Resolves a full digest or unique hex prefix to an entry id or a blob digest.
    pub fn resolve(&self, text: &str) -> Result<Resolved> {
        let view = self.view()?;
        let text = text.trim().to_ascii_lowercase();
        if !is_hex_prefix(&text) {
            return Err(Error::Invalid(format!(
                "'{text}' is not a digest or hex prefix"
            )));
        }
        if text.len() < 4 {
            return Err(Error::Invalid(format!(
                "'{text}' is too short: give at least 4 hex characters"
            )));
        }
        let mut found: std::collections::BTreeMap<String, Resolved> = Default::default();
        // A prefix of whole bytes narrows the search; an odd trailing nibble is checked here.
        let whole = hex::decode(&text[..text.len() / 2 * 2]).expect("hex prefix checked above");
        let (ids, blobs) = view.with_prefix(&whole, 9)?;
        for (id, index) in ids {
            let hexk = id.to_hex();
            if hexk.starts_with(&text) {
                found.insert(hexk, Resolved::Entry { index, id });
            }
        }
        for d in blobs {
            let hexk = d.to_hex();
            if hexk.starts_with(&text) {
                found.entry(hexk).or_insert(Resolved::Blob(d));
            }
        }
        match found.len() {
            0 => Err(Error::Unknown(text)),
            1 => Ok(found.into_values().next().expect("one match")),
            _ => Err(Error::Ambiguous {
                prefix: text,
                matches: found.keys().map(|k| k[..16].to_string()).collect(),
            }),
        }
    }

    /// Resolves to an entry (a blob digest resolves to the first artifact entry storing it).
    pub fn resolve_entry(&self, text: &str) -> Result<(u64, Entry)> {
        match self.resolve(text)? {
            Resolved::Entry { id, .. } => self.entry_by_id(&id),
            Resolved::Blob(d) => {
                let view = self.view()?;
                let is_content =
                    |e: &Entry| matches!(&e.body.payload, Payload::Artifact(m) if m.content == d);
                // The blob record names the entry that first carried the bytes; only when that
                // one holds them as parsed facts or a document is the log searched.
                if let Some(first) = view.first_carrier(&d)? {
                    let e = view.entry(first)?;
                    if is_content(&e) {
                        return Ok((first, e));
                    }
                    for i in first + 1..view.size() {
                        let e = view.entry(i)?;
                        if is_content(&e) {
                            return Ok((i, e));
                        }
                    }
                }
                Err(Error::Unknown(text.to_string()))
            }
        }
    }

    /// The key registry as of the end of the log.
    pub fn registry(&self) -> Result<Registry> {
        self.view()?.registry()
    }

    /// The latest stored checkpoint note, if one was written.
    pub fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.view()?.latest_checkpoint().map(<[u8]>::to_vec))
    }

    /// Stores `note` as the latest checkpoint, durably.
    pub fn store_checkpoint(&self, note: &[u8]) -> Result<()> {
        if note.len() > 64 * 1024 {
            return Err(Error::Invalid(format!(
                "a checkpoint note of {} bytes is over the 65,536-byte limit",
                note.len()
            )));
        }
        self.write(|w| {
            let head = w.view.head().commit;
            let base = w.view.head().end();
            // Stored only what `evl verify` accepts: a note for this origin signed by a key
            // that was an admin at its size, of a tree this log holds (FORMAT.md §"Checkpoints").
            let origin = w.view.origin()?;
            let registry = w.view.registry()?;
            let admins: Vec<crate::keys::PublicKey> = registry
                .keys()
                .values()
                .filter(|k| k.roles.contains(&crate::keys::Role::Admin))
                .map(|k| k.public_key)
                .collect();
            let cp = crate::checkpoint::open(note, &origin, &admins)
                .map_err(|e| Error::Invalid(format!("checkpoint refused: {e}")))?;
            let signer_ok = registry
                .get(&cp.signer)
                .is_some_and(|k| k.active_at(cp.size.saturating_sub(1)));
            if !signer_ok {
                return Err(Error::Invalid(format!(
                    "checkpoint refused: its signer was not an active admin at size {}",
                    cp.size
                )));
            }
            if cp.size == 0 || cp.size > head.size || w.view.root_at(cp.size)? != cp.root {
                return Err(Error::Invalid(format!(
                    "checkpoint refused: this ledger holds no tree of size {} with the root it signs",
                    cp.size
                )));
            }
            let mut batch = Vec::with_capacity(note.len() + 256);
            log::put(&mut batch, Tag::Checkpoint, note);
            Commit {
                batch_start: base,
                checkpoint: base,
                ..head
            }
            .seal(&mut batch);
            w.commit(&batch, &Derived::default())
        })
    }

    /// Signs and appends one entry; returns once it is durable.
    pub fn append(&self, draft: Draft, key: &SecretKey) -> Result<Appended> {
        Ok(self.append_batch(vec![draft], key, None)?.remove(0))
    }

    /// Signs and appends many entries with one durable write. Either all are appended or none.
    /// `now`, when given, bounds claimed times by `MAX_CLOCK_SKEW_SECS` into the future.
    pub fn append_batch(
        &self,
        drafts: Vec<Draft>,
        key: &SecretKey,
        now: Option<Timestamp>,
    ) -> Result<Vec<Appended>> {
        if drafts.is_empty() {
            return Ok(vec![]);
        }
        let genesis = self.genesis_id()?;
        let signer = key.public().id();
        for d in &drafts {
            if let Some(now) = now
                && d.claimed_at.seconds() > now.seconds() + MAX_CLOCK_SKEW_SECS
            {
                return Err(Error::Invalid(format!(
                    "claimed time {} is more than {MAX_CLOCK_SKEW_SECS} s ahead of this machine's clock ({now})",
                    d.claimed_at
                )));
            }
            check_sizes(&d.blobs)?;
        }
        // Sign in parallel; each entry's canonical bytes, id, leaf hash and blob digests are
        // computed once here and reused for the signature, the log and the tree.
        let prepare = |d: Draft| {
            let body = UnsignedEntry {
                format: ENTRY_FORMAT,
                ledger: genesis,
                signer,
                claimed_at: d.claimed_at,
                payload: d.payload,
            };
            let mut bytes = body.canonical_bytes();
            let id = Digest::of(&bytes);
            let signature = key.try_sign(&crate::entry::signature_message(&id))?;
            bytes.extend_from_slice(&signature.0);
            if bytes.len() > crate::codec::MAX_ENTRY_BYTES {
                return Err(Error::Entry(crate::entry::EntryError::TooLarge(
                    bytes.len(),
                )));
            }
            Ok(Prepared::new(Entry { body, signature }, id, bytes, d.blobs))
        };
        let prepared: Vec<Prepared> = if drafts.len() < PARALLEL_FROM {
            drafts.into_iter().map(prepare).collect::<Result<_>>()?
        } else {
            drafts.into_par_iter().map(prepare).collect::<Result<_>>()?
        };
        // The signatures were just made with `key`, whose id is the signer: re-verifying them
        // would double the cost of an append for nothing.
        self.append_prepared(prepared, false)
    }

    /// Appends entries someone already signed (e.g. carried in from elsewhere), checking each
    /// signature and the registry at its position. Either all are appended or none.
    pub fn append_signed(&self, signed: Vec<(Entry, Vec<Vec<u8>>)>) -> Result<Vec<Appended>> {
        self.append_checked(
            signed
                .into_iter()
                .map(|(entry, blobs)| (SignedEntry::new(entry), blobs, None))
                .collect(),
        )
    }

    /// [`Ledger::append_signed`] for entries decoded from their stored bytes (which are then
    /// not encoded again) whose signatures may have been verified already, each under the
    /// public key given beside it. The registry, role and validity checks at each entry's
    /// position are all made here as for `append_signed`; only the signature arithmetic is
    /// skipped, and only when the key the registry holds for the signer at that position is
    /// the very key it was verified under — a key revoked or rotated in between, or a
    /// different key, and the signature is verified here.
    pub fn append_checked(
        &self,
        signed: Vec<(SignedEntry, Vec<Vec<u8>>, Option<crate::keys::PublicKey>)>,
    ) -> Result<Vec<Appended>> {
        if signed.is_empty() {
            return Ok(vec![]);
        }
        for (_, blobs, _) in &signed {
            check_sizes(blobs)?;
        }
        let prepare = |(s, blobs, verified_under): (
            SignedEntry,
            Vec<Vec<u8>>,
            Option<crate::keys::PublicKey>,
        )| {
            let (entry, id, bytes) = s.into_parts()?;
            let mut p = Prepared::new(entry, id, bytes, blobs);
            p.verified_under = verified_under;
            Ok(p)
        };
        let prepared: Vec<Prepared> = if signed.len() < PARALLEL_FROM {
            signed.into_iter().map(prepare).collect::<Result<_>>()?
        } else {
            signed.into_par_iter().map(prepare).collect::<Result<_>>()?
        };
        self.append_prepared(prepared, true)
    }

    fn append_prepared(
        &self,
        prepared: Vec<Prepared>,
        verify_signatures: bool,
    ) -> Result<Vec<Appended>> {
        self.write(|w| {
            let view = &w.view;
            let genesis = view.genesis_id()?;
            let start = view.size();
            // Duplicates: within the batch, then against the ledger (in parallel: one index
            // lookup each).
            let mut ids: Vec<(EntryId, usize)> = prepared
                .iter()
                .enumerate()
                .map(|(i, p)| (p.id, i))
                .collect();
            ids.sort_unstable();
            let within = ids.windows(2).find(|w| w[0].0 == w[1].0).map(|w| w[1].1);
            // Which ids and which carried bytes the ledger already holds: one lookup each, in
            // key order (neighbouring keys probe neighbouring pages of the index runs) and in
            // parallel for a large batch.
            let mut blob_keys: Vec<(Digest, usize, usize)> = prepared
                .iter()
                .enumerate()
                .flat_map(|(i, p)| {
                    p.blob_digests
                        .iter()
                        .enumerate()
                        .map(move |(j, d)| (*d, i, j))
                })
                .collect();
            blob_keys.sort_unstable();
            let parallel = prepared.len() >= PARALLEL_FROM;
            let ids_known =
                map_checked(&ids, parallel, |(id, _)| Ok(view.index_of(id)?.is_some()))?;
            let blobs_known = map_checked(&blob_keys, parallel, |(d, _, _)| view.has_blob(d))?;
            let known = ids
                .iter()
                .zip(&ids_known)
                .filter(|(_, k)| **k)
                .map(|((_, i), _)| *i)
                .min();
            if let Some(i) = within.into_iter().chain(known).min() {
                return Err(Error::Invalid(format!(
                    "entry {} is already in the ledger",
                    prepared[i].id.short()
                )));
            }
            let mut stored: Vec<Vec<bool>> = prepared
                .iter()
                .map(|p| vec![false; p.blob_digests.len()])
                .collect();
            for ((_, i, j), k) in blob_keys.iter().zip(blobs_known) {
                stored[*i][*j] = k;
            }
            let mut registry = view.registry()?;
            let mut keys_changed = false;
            for (i, p) in prepared.iter().enumerate() {
                let index = start + i as u64;
                if verify_signatures {
                    registry.check_and_apply_verified(
                        &p.entry,
                        index,
                        &genesis,
                        p.verified_under.as_ref(),
                    )?;
                } else {
                    registry.admit_unverified(&p.entry, index, &genesis)?;
                }
                keys_changed |= matches!(
                    p.entry.body.payload,
                    Payload::KeyAdd(_) | Payload::KeyRotate(_) | Payload::KeyRevoke(_)
                );
                check_blobs(&p.entry, &p.blob_digests)?;
            }
            let (batch, derived) =
                build_batch(view, &prepared, &stored, keys_changed.then_some(&registry))?;
            w.commit(&batch, &derived)?;
            Ok(prepared
                .iter()
                .enumerate()
                .map(|(i, p)| Appended {
                    index: start + i as u64,
                    id: p.id,
                })
                .collect())
        })
    }

    /// Runs `f` as the ledger's only writer: under this process's append lock and the
    /// store's file lock (waiting as the open options say), on a fresh view whose missing
    /// index records have been written. The view is looked at again afterwards.
    fn write<T>(&self, f: impl FnOnce(&mut Writer) -> Result<T>) -> Result<T> {
        let mut guard = self.lock_file.lock().unwrap_or_else(|p| p.into_inner());
        let lock_path = self.path.join(LOCK);
        if guard.is_none() {
            let f = self
                .fs
                .open(&lock_path, Mode::ReadWrite)
                .map_err(Error::store_io(&lock_path))?;
            *guard = Some(f);
        }
        let lock = guard.as_ref().expect("opened above");
        let deadline = self.wait.map(|w| Instant::now() + w);
        loop {
            match lock.try_lock() {
                Ok(true) => break,
                Ok(false) => match deadline {
                    Some(d) if Instant::now() < d => std::thread::sleep(Duration::from_millis(5)),
                    _ => return Err(Error::Busy(self.path.clone())),
                },
                Err(e) => return Err(Error::store_io(&lock_path)(e)),
            }
        }
        /// Unlocks the store when the write ends, however it ends.
        struct Unlock<'a>(&'a dyn FsFile);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                self.0.unlock();
            }
        }
        let _unlock = Unlock(&**lock);
        let view = match self.view.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some((_, v)) if v.is_current() => Some(v.clone()),
            _ => None,
        };
        let view = match view {
            Some(v) => v,
            None => Arc::new(View::open(
                &self.path,
                self.fs.clone(),
                &self.runs,
                self.tail_max,
            )?),
        };
        // What the new batch builds on must be as it was committed.
        view.check_head()?;
        let mut writer = Writer::new(&self.path, view, self.runs.clone())?;
        let out = f(&mut writer);
        self.generation.fetch_add(1, AtomicOrdering::AcqRel);
        out
    }

    /// The root hash of the tree of the first `size` entries, checked against the newest
    /// commit's.
    pub fn root(&self, size: TreeSize) -> Result<Hash> {
        self.view()?.root_at(size)
    }

    /// Inclusion proof for entry `index` in the tree of `size` entries, checked before it is
    /// returned.
    pub fn prove_inclusion(&self, index: u64, size: TreeSize) -> Result<Vec<Hash>> {
        self.view()?.prove_inclusion(index, size)
    }

    /// Consistency proof from the tree of `old` entries to the tree of `new` entries,
    /// checked before it is returned.
    pub fn prove_consistency(&self, old: TreeSize, new: TreeSize) -> Result<Vec<Hash>> {
        self.view()?.prove_consistency(old, new)
    }
}

/// `f` of each item, in order, on every core when `parallel`; the first error ends it.
fn map_checked<T: Sync, U: Send>(
    items: &[T],
    parallel: bool,
    f: impl Fn(&T) -> Result<U> + Sync + Send,
) -> Result<Vec<U>> {
    if parallel {
        items.par_iter().map(f).collect()
    } else {
        items.iter().map(f).collect()
    }
}

/// Copies directory `from` to a new directory `to`, recursively.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(Error::io(to))?;
    for e in fs::read_dir(from).map_err(Error::io(from))? {
        let e = e.map_err(Error::io(from))?;
        let dest = to.join(e.file_name());
        if e.file_type().map_err(Error::io(e.path()))?.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else {
            fs::copy(e.path(), &dest).map_err(Error::io(e.path()))?;
        }
    }
    Ok(())
}

/// Makes a directory's entries (new files) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    RealFs.sync_dir(dir)
}

/// Checks an origin string: printable ASCII without spaces or `+` (C2SP signed-note key names).
pub fn check_origin(origin: &str) -> Result<()> {
    let ok = !origin.is_empty()
        && origin.len() <= 255
        && origin.bytes().all(|b| b.is_ascii_graphic() && b != b'+');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "origin '{origin}' is not usable in a checkpoint: use printable ASCII without spaces or '+', e.g. example.org/mesh-gate"
        )))
    }
}
