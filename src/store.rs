//! The ledger on an embedded sled store: append-only entries, artifact blobs by digest, the
//! Merkle tree's stored hashes, and the indexes, all written in one transaction per append
//! and flushed before an append returns.
//!
//! Trees (docs/FORMAT.md §"Store layout"):
//! `entries` u64-BE index → stored entry bytes; `ids` entry id → u64-BE index;
//! `blobs` BLAKE3 digest → artifact bytes; `hashes` u64-BE stored-hash index → 32 bytes;
//! `keys` key id → key state; `meta` `size`, `genesis`, `origin`, `checkpoint`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use crate::codec;
use crate::digest::{Digest, EntryId, is_hex_prefix};
use crate::entry::{ENTRY_FORMAT, Entry, Genesis, KeyGrant, Payload, UnsignedEntry};
use crate::error::{Error, Result};
use crate::keys::SecretKey;
use crate::merkle::{self, Hash, HashReader, TreeSize};
use crate::registry::{KeyState, Registry};
use crate::timestamp::Timestamp;

/// Largest artifact evl stores (docs/FORMAT.md §"Limits").
pub const MAX_ARTIFACT_BYTES: usize = 64 * 1024 * 1024;
/// How far in the future of the appending machine's clock a claimed time may be.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

const META_SIZE: &[u8] = b"size";
const META_GENESIS: &[u8] = b"genesis";
const META_ORIGIN: &[u8] = b"origin";
const META_CHECKPOINT: &[u8] = b"checkpoint";

/// How to open a ledger.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Wait up to this long for another process to release the ledger.
    pub wait: Option<Duration>,
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

/// An open ledger. Safe to share across threads; appends are serialized.
pub struct Ledger {
    path: PathBuf,
    db: sled::Db,
    entries: sled::Tree,
    ids: sled::Tree,
    blobs: sled::Tree,
    hashes: sled::Tree,
    keys: sled::Tree,
    meta: sled::Tree,
    append_lock: Mutex<()>,
}

fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn read_be(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

impl Ledger {
    fn storage(&self, e: impl std::fmt::Display) -> Error {
        let message = e.to_string();
        let message = if message.contains("corrupted") {
            "the store's files are damaged and cannot be read; restore the directory from a copy, then run `evl verify`".to_string()
        } else {
            message
        };
        Error::Storage {
            path: self.path.clone(),
            message,
        }
    }

    fn open_db(path: &Path, opts: &OpenOptions) -> Result<sled::Db> {
        let deadline = opts.wait.map(|w| Instant::now() + w);
        loop {
            match sled::Config::new().path(path).open() {
                Ok(db) => return Ok(db),
                Err(sled::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("lock") =>
                {
                    match deadline {
                        Some(d) if Instant::now() < d => {
                            std::thread::sleep(Duration::from_millis(50))
                        }
                        _ => return Err(Error::Busy(path.to_path_buf())),
                    }
                }
                Err(sled::Error::Io(e)) => return Err(Error::io(path)(e)),
                Err(sled::Error::Corruption { .. }) => {
                    return Err(Error::Storage {
                        path: path.to_path_buf(),
                        message: "the store's files are damaged and cannot be read; restore the directory from a copy, then run `evl verify`".into(),
                    });
                }
                Err(e) => {
                    return Err(Error::Storage {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    });
                }
            }
        }
    }

    fn from_db(path: &Path, db: sled::Db) -> Result<Ledger> {
        let t = |name: &str| {
            db.open_tree(name).map_err(|e| Error::Storage {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        };
        Ok(Ledger {
            path: path.to_path_buf(),
            entries: t("entries")?,
            ids: t("ids")?,
            blobs: t("blobs")?,
            hashes: t("hashes")?,
            keys: t("keys")?,
            meta: t("meta")?,
            db,
            append_lock: Mutex::new(()),
        })
    }

    /// Creates a ledger at `path` whose genesis entry, signed by `signer` (one of `admins`),
    /// names the trust-root admin keys and the origin string used in checkpoints.
    pub fn init(
        path: &Path,
        origin: &str,
        admins: Vec<KeyGrant>,
        signer: &SecretKey,
        at: Timestamp,
    ) -> Result<Ledger> {
        check_origin(origin)?;
        if path.join("conf").exists() || path.join("db").exists() {
            return Err(Error::AlreadyExists(path.to_path_buf()));
        }
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
        let entry = Entry::sign(body, signer);
        let mut registry = Registry::default();
        registry.check_and_apply(&entry, 0, &Digest::ZERO)?;
        let db = Self::open_db(path, &OpenOptions::default())?;
        let ledger = Self::from_db(path, db)?;
        if ledger
            .meta
            .get(META_GENESIS)
            .map_err(|e| ledger.storage(e))?
            .is_some()
        {
            return Err(Error::AlreadyExists(path.to_path_buf()));
        }
        let id = entry.id();
        ledger
            .meta
            .insert(META_ORIGIN, origin.as_bytes())
            .map_err(|e| ledger.storage(e))?;
        ledger
            .meta
            .insert(META_GENESIS, &id.0)
            .map_err(|e| ledger.storage(e))?;
        let bytes = entry.to_bytes()?;
        ledger.commit(
            vec![Prepared {
                id,
                entry,
                bytes,
                blobs: vec![],
            }],
            &registry,
            0,
        )?;
        Ok(ledger)
    }

    /// Opens an existing ledger, failing clearly when there is none or another process has it.
    pub fn open(path: &Path, opts: &OpenOptions) -> Result<Ledger> {
        if !path.join("conf").exists() {
            return Err(Error::NotALedger(path.to_path_buf()));
        }
        let db = Self::open_db(path, opts)?;
        let ledger = Self::from_db(path, db)?;
        if ledger
            .meta
            .get(META_GENESIS)
            .map_err(|e| ledger.storage(e))?
            .is_none()
        {
            return Err(Error::NotALedger(path.to_path_buf()));
        }
        Ok(ledger)
    }

    /// Every (key, value) of `tree` in key order, for verification's ordered scans.
    fn raw<'a>(
        &'a self,
        tree: &'a sled::Tree,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + 'a {
        tree.iter().map(|r| {
            r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(|e| self.storage(e))
        })
    }

    /// The directory holding the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of entries (the tree size).
    pub fn size(&self) -> Result<TreeSize> {
        Ok(self
            .meta
            .get(META_SIZE)
            .map_err(|e| self.storage(e))?
            .and_then(|v| read_be(&v))
            .unwrap_or(0))
    }

    /// The id of the genesis entry, which every other entry names.
    pub fn genesis_id(&self) -> Result<Digest> {
        let v = self
            .meta
            .get(META_GENESIS)
            .map_err(|e| self.storage(e))?
            .ok_or_else(|| Error::Corrupt("the genesis id is missing".into()))?;
        Ok(Digest(v.as_ref().try_into().map_err(|_| {
            Error::Corrupt("the genesis id is not 32 bytes".into())
        })?))
    }

    /// The origin string checkpoints carry.
    pub fn origin(&self) -> Result<String> {
        let v = self
            .meta
            .get(META_ORIGIN)
            .map_err(|e| self.storage(e))?
            .ok_or_else(|| Error::Corrupt("the origin is missing".into()))?;
        String::from_utf8(v.to_vec()).map_err(|_| Error::Corrupt("the origin is not UTF-8".into()))
    }

    /// The stored bytes of entry `index`.
    pub fn entry_bytes(&self, index: u64) -> Result<Vec<u8>> {
        self.entries
            .get(be(index))
            .map_err(|e| self.storage(e))?
            .map(|v| v.to_vec())
            .ok_or_else(|| Error::Corrupt(format!("entry {index} is missing")))
    }

    /// Entry `index`, decoded.
    pub fn entry(&self, index: u64) -> Result<Entry> {
        let bytes = self.entry_bytes(index)?;
        Entry::from_bytes(&bytes)
            .map_err(|e| Error::Corrupt(format!("entry {index} does not decode: {e}")))
    }

    /// Raw access to the `entries` tree for verification: (key bytes, value bytes) in order.
    pub fn raw_entries(&self) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + '_ {
        self.raw(&self.entries)
    }

    /// The log index of entry `id`, if present.
    pub fn index_of(&self, id: &EntryId) -> Result<Option<u64>> {
        Ok(self
            .ids
            .get(id.0)
            .map_err(|e| self.storage(e))?
            .and_then(|v| read_be(&v)))
    }

    /// The entry with id `id` and its index.
    pub fn entry_by_id(&self, id: &EntryId) -> Result<(u64, Entry)> {
        let index = self
            .index_of(id)?
            .ok_or_else(|| Error::Unknown(id.to_hex()))?;
        let entry = self.entry(index)?;
        if entry.id() != *id {
            return Err(Error::Corrupt(format!(
                "the id index points {} at entry {index}, which has another id",
                id.short()
            )));
        }
        Ok((index, entry))
    }

    /// Artifact bytes by content digest.
    pub fn blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        Ok(self
            .blobs
            .get(digest.0)
            .map_err(|e| self.storage(e))?
            .map(|v| v.to_vec()))
    }

    /// Every stored blob digest with its bytes, in digest order.
    pub fn raw_blobs(&self) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + '_ {
        self.raw(&self.blobs)
    }

    /// Every stored key state, from the registry index.
    pub fn raw_keys(&self) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + '_ {
        self.raw(&self.keys)
    }

    /// Every stored tree hash, in stored-hash index order.
    pub fn raw_hashes(&self) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + '_ {
        self.raw(&self.hashes)
    }

    /// Every stored id-index pair.
    pub fn raw_ids(&self) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + '_ {
        self.raw(&self.ids)
    }

    /// Resolves a full digest or unique hex prefix to an entry id or a blob digest.
    pub fn resolve(&self, text: &str) -> Result<Resolved> {
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
        let mut found: BTreeMap<String, Resolved> = BTreeMap::new();
        // A prefix of whole bytes narrows the scan; an odd trailing nibble is checked by hand.
        let whole = hex::decode(&text[..text.len() / 2 * 2]).expect("hex prefix checked above");
        for item in self.ids.scan_prefix(&whole) {
            let (k, v) = item.map_err(|e| self.storage(e))?;
            let hexk = hex::encode(&k);
            if hexk.starts_with(&text) {
                let id = Digest(
                    k.as_ref()
                        .try_into()
                        .map_err(|_| Error::Corrupt("an id index key is not 32 bytes".into()))?,
                );
                let index = read_be(&v)
                    .ok_or_else(|| Error::Corrupt("an id index value is not 8 bytes".into()))?;
                found.insert(hexk, Resolved::Entry { index, id });
            }
            if found.len() > 8 {
                break;
            }
        }
        for item in self.blobs.scan_prefix(&whole) {
            let (k, _) = item.map_err(|e| self.storage(e))?;
            let hexk = hex::encode(&k);
            if hexk.starts_with(&text) {
                let d = Digest(
                    k.as_ref()
                        .try_into()
                        .map_err(|_| Error::Corrupt("a blob key is not 32 bytes".into()))?,
                );
                found.entry(hexk).or_insert(Resolved::Blob(d));
            }
            if found.len() > 8 {
                break;
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
                let size = self.size()?;
                for i in 0..size {
                    let e = self.entry(i)?;
                    if matches!(&e.body.payload, Payload::Artifact(m) if m.content == d) {
                        return Ok((i, e));
                    }
                }
                Err(Error::Unknown(text.to_string()))
            }
        }
    }

    /// The key registry as of the end of the log, from its index.
    pub fn registry(&self) -> Result<Registry> {
        let mut states = Vec::new();
        for item in self.keys.iter() {
            let (_, v) = item.map_err(|e| self.storage(e))?;
            let s: KeyState = codec::decode(&v, 64 * 1024)
                .map_err(|e| Error::Corrupt(format!("a key registry record: {e}")))?;
            states.push(s);
        }
        Ok(Registry::from_states(states))
    }

    /// The latest stored checkpoint note, if one was written.
    pub fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>> {
        Ok(self
            .meta
            .get(META_CHECKPOINT)
            .map_err(|e| self.storage(e))?
            .map(|v| v.to_vec()))
    }

    /// Stores `note` as the latest checkpoint and flushes.
    pub fn store_checkpoint(&self, note: &[u8]) -> Result<()> {
        self.meta
            .insert(META_CHECKPOINT, note)
            .map_err(|e| self.storage(e))?;
        self.db.flush().map_err(|e| self.storage(e))?;
        Ok(())
    }

    /// Signs and appends one entry; returns once it is durable.
    pub fn append(&self, draft: Draft, key: &SecretKey) -> Result<Appended> {
        Ok(self.append_batch(vec![draft], key, None)?.remove(0))
    }

    /// Signs and appends many entries with one durable flush. Either all are appended or none.
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
            for b in &d.blobs {
                if b.len() > MAX_ARTIFACT_BYTES {
                    return Err(Error::Invalid(format!(
                        "artifact is {} bytes, over the {MAX_ARTIFACT_BYTES}-byte limit",
                        b.len()
                    )));
                }
            }
        }
        use rayon::prelude::*;
        // Sign in parallel; each entry's canonical bytes and id are computed once here and
        // reused for the signature, the stored bytes and the tree leaf.
        let prepared: Vec<Prepared> = drafts
            .into_par_iter()
            .map(|d| {
                let body = UnsignedEntry {
                    format: ENTRY_FORMAT,
                    ledger: genesis,
                    signer,
                    claimed_at: d.claimed_at,
                    payload: d.payload,
                };
                let mut bytes = body.canonical_bytes();
                let id = Digest::of(&bytes);
                let signature = key.sign(&crate::entry::signature_message(&id));
                bytes.extend_from_slice(&signature.0);
                if bytes.len() > crate::codec::MAX_ENTRY_BYTES {
                    return Err(Error::Entry(crate::entry::EntryError::TooLarge(
                        bytes.len(),
                    )));
                }
                Ok(Prepared {
                    entry: Entry { body, signature },
                    id,
                    bytes,
                    blobs: d.blobs,
                })
            })
            .collect::<Result<_>>()?;
        // The signatures were just made with `key`, whose id is the signer: re-verifying them
        // would double the cost of an append for nothing.
        self.append_prepared(prepared, false)
    }

    /// Appends entries someone already signed (e.g. carried in from elsewhere), checking each
    /// signature and the registry at its position. Either all are appended or none.
    pub fn append_signed(&self, signed: Vec<(Entry, Vec<Vec<u8>>)>) -> Result<Vec<Appended>> {
        let prepared = signed
            .into_iter()
            .map(|(entry, blobs)| {
                let bytes = entry.to_bytes()?;
                Ok(Prepared {
                    id: entry.id(),
                    entry,
                    bytes,
                    blobs,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.append_prepared(prepared, true)
    }

    fn append_prepared(
        &self,
        prepared: Vec<Prepared>,
        verify_signatures: bool,
    ) -> Result<Vec<Appended>> {
        let _guard = self.append_lock.lock().unwrap_or_else(|p| p.into_inner());
        let genesis = self.genesis_id()?;
        let start = self.size()?;
        let mut registry = self.registry()?;
        let mut seen = std::collections::BTreeSet::new();
        for (i, p) in prepared.iter().enumerate() {
            let index = start + i as u64;
            if !seen.insert(p.id) || self.index_of(&p.id)?.is_some() {
                return Err(Error::Invalid(format!(
                    "entry {} is already in the ledger",
                    p.id.short()
                )));
            }
            if verify_signatures {
                registry.check_and_apply(&p.entry, index, &genesis)?;
            } else {
                registry.admit_unverified(&p.entry, index, &genesis)?;
            }
            check_blobs(&p.entry, &p.blobs)?;
        }
        self.commit(prepared, &registry, start)
    }

    /// Writes pre-checked entries, their blobs, tree hashes, indexes and the registry in one
    /// transaction, then flushes.
    fn commit(
        &self,
        prepared: Vec<Prepared>,
        registry: &Registry,
        start: u64,
    ) -> Result<Vec<Appended>> {
        let mut rows: Vec<(u64, EntryId, Vec<u8>)> = Vec::with_capacity(prepared.len());
        let mut pending = Overlay {
            base: self,
            pending: BTreeMap::new(),
        };
        let mut blob_rows: BTreeMap<Digest, Vec<u8>> = BTreeMap::new();
        for (i, p) in prepared.into_iter().enumerate() {
            let index = start + i as u64;
            let leaf = merkle::leaf_hash(&p.bytes);
            let add = merkle::hashes_to_store(index, leaf, &pending)
                .map_err(|e| Error::Corrupt(format!("tree hashes: {e}")))?;
            pending.pending.extend(add);
            for b in p.blobs {
                blob_rows.insert(Digest::of(&b), b);
            }
            rows.push((index, p.id, p.bytes));
        }
        let new_size = start + rows.len() as u64;
        let key_rows: Vec<(Vec<u8>, Vec<u8>)> = registry
            .keys()
            .iter()
            .map(|(id, s)| (id.0.0.to_vec(), codec::encode(s)))
            .collect();
        let hash_rows = pending.pending;
        let result: std::result::Result<(), TransactionError<()>> = (
            &self.entries,
            &self.ids,
            &self.blobs,
            &self.hashes,
            &self.keys,
            &self.meta,
        )
            .transaction(
                |(entries, ids, blobs, hashes, keys, meta): &(
                    TransactionalTree,
                    TransactionalTree,
                    TransactionalTree,
                    TransactionalTree,
                    TransactionalTree,
                    TransactionalTree,
                )| {
                    for (index, id, bytes) in &rows {
                        entries.insert(&be(*index), bytes.as_slice())?;
                        ids.insert(&id.0, &be(*index))?;
                    }
                    for (d, b) in &blob_rows {
                        blobs.insert(&d.0, b.as_slice())?;
                    }
                    for (i, h) in &hash_rows {
                        hashes.insert(&be(*i), &h.0)?;
                    }
                    for (k, v) in &key_rows {
                        keys.insert(k.as_slice(), v.as_slice())?;
                    }
                    meta.insert(META_SIZE, &be(new_size))?;
                    Ok::<(), ConflictableTransactionError<()>>(())
                },
            );
        result.map_err(|e| self.storage(format!("{e:?}")))?;
        self.db.flush().map_err(|e| self.storage(e))?;
        Ok(rows
            .into_iter()
            .map(|(index, id, _)| Appended { index, id })
            .collect())
    }

    /// The root hash of the tree of the first `size` entries.
    pub fn root(&self, size: TreeSize) -> Result<Hash> {
        merkle::root(size, self).map_err(|e| Error::Corrupt(format!("tree hashes: {e}")))
    }

    /// Inclusion proof for entry `index` in the tree of `size` entries.
    pub fn prove_inclusion(&self, index: u64, size: TreeSize) -> Result<Vec<Hash>> {
        if index >= size || size > self.size()? {
            return Err(Error::Invalid(format!(
                "entry {index} is not in a tree of size {size}"
            )));
        }
        merkle::prove_inclusion(size, index, self)
            .map_err(|e| Error::Corrupt(format!("tree hashes: {e}")))
    }

    /// Consistency proof from the tree of `old` entries to the tree of `new` entries.
    pub fn prove_consistency(&self, old: TreeSize, new: TreeSize) -> Result<Vec<Hash>> {
        if old == 0 || old > new || new > self.size()? {
            return Err(Error::Invalid(format!(
                "cannot prove consistency from size {old} to size {new}: it needs 1 <= old <= new, and the ledger has {} entries",
                self.size()?
            )));
        }
        merkle::prove_consistency(new, old, self)
            .map_err(|e| Error::Corrupt(format!("tree hashes: {e}")))
    }

    /// Reads one stored tree hash.
    pub fn stored_hash(&self, index: u64) -> Result<Option<Hash>> {
        let v = self.hashes.get(be(index)).map_err(|e| self.storage(e))?;
        Ok(v.and_then(|v| <[u8; 32]>::try_from(v.as_ref()).ok())
            .map(Hash))
    }

    /// The number of stored tree hashes.
    pub fn stored_hash_count(&self) -> usize {
        self.hashes.len()
    }
}

impl HashReader for Ledger {
    fn read_hashes(
        &self,
        indexes: &[u64],
    ) -> std::result::Result<Vec<Hash>, tlog_tiles::tlog::Error> {
        indexes
            .iter()
            .map(|i| match self.stored_hash(*i) {
                Ok(Some(h)) => Ok(h),
                _ => Err(tlog_tiles::tlog::Error::IndexesNotInTree),
            })
            .collect()
    }
}

/// An entry ready to store: its id and stored bytes computed once.
struct Prepared {
    entry: Entry,
    id: EntryId,
    bytes: Vec<u8>,
    blobs: Vec<Vec<u8>>,
}

/// Stored hashes of a batch not yet committed, over the ledger's.
struct Overlay<'a> {
    base: &'a Ledger,
    pending: BTreeMap<u64, Hash>,
}

impl HashReader for Overlay<'_> {
    fn read_hashes(
        &self,
        indexes: &[u64],
    ) -> std::result::Result<Vec<Hash>, tlog_tiles::tlog::Error> {
        indexes
            .iter()
            .map(|i| match self.pending.get(i) {
                Some(h) => Ok(*h),
                None => self.base.read_hashes(&[*i]).map(|mut v| v.remove(0)),
            })
            .collect()
    }
}

/// An artifact entry must come with exactly its bytes; other entries with none, except a
/// disposition, which carries its document.
fn check_blobs(entry: &Entry, blobs: &[Vec<u8>]) -> Result<()> {
    let expect = match &entry.body.payload {
        Payload::Artifact(m) => {
            let want = 1 + usize::from(m.facts.is_some());
            let content_ok = blobs
                .first()
                .is_some_and(|b| Digest::of(b) == m.content && b.len() as u64 == m.size);
            let facts_ok = m
                .facts
                .as_ref()
                .is_none_or(|f| blobs.get(1).is_some_and(|b| Digest::of(b) == f.digest));
            if blobs.len() != want || !content_ok || !facts_ok {
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
    match (expect, blobs) {
        (None, []) => Ok(()),
        (Some(d), [b]) if Digest::of(b) == d => Ok(()),
        _ => Err(Error::Invalid(format!(
            "a {} entry carries unexpected stored bytes",
            entry.body.payload.kind()
        ))),
    }
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
