//! The log published as static, immutable C2SP tlog-tiles objects (docs/PUBLISH.md): written
//! to a directory or S3-compatible object storage by `evl publish`, read back and verified by
//! `--ledger DIR|s3://…` with no server.
//!
//! Objects, under the destination's prefix:
//! - `checkpoint`: the signed checkpoint note (docs/FORMAT.md §"Checkpoints"), written last;
//! - `tile/<L>/<N>[.p/<W>]`: Merkle tree hash tiles of height 8 (c2sp.org/tlog-tiles);
//! - `tile/entries/<N>[.p/<W>]`: entry bundles: each entry's stored bytes with a big-endian
//!   u16 length prefix, so a tile's leaf hashes are SHA-256(0x00 || entry);
//! - `blob/<blake3-hex>`: the bytes an entry carries (artifacts, facts, documents).
//!
//! Every object but `checkpoint` is immutable and written create-only.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tlog_tiles::tile::Tile;

use crate::checkpoint;
use crate::digest::Digest;
use crate::entry::{Entry, Payload};
use crate::error::{Error, Result};
use crate::merkle::{self, Hash, TreeSize};
use crate::store::{Ledger, OpenOptions};

/// Tile height (c2sp.org/tlog-tiles fixes it at 8): a full tile holds 256 hashes.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile; entries in a full entry bundle.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// Largest object evl reads from a published log (a blob: 64 MiB).
pub const MAX_OBJECT_BYTES: usize = crate::store::MAX_ARTIFACT_BYTES;
/// Objects written or read at once.
const CONCURRENCY: usize = 16;

/// The `<N>` path element: groups of three digits, all but the last prefixed with `x`.
fn n_path(tile: Tile) -> String {
    // tlog_tiles writes Go's `tile/H/L/N[.p/W]`; C2SP drops the height (fixed at 8).
    let p = tile.path();
    let rest = p.splitn(4, '/').nth(3).expect("tile paths have four parts");
    rest.to_string()
}

/// `tile/<L>/<N>[.p/<W>]` of the hash tile at `level`, index `n`, holding `width` hashes.
pub fn tile_path(level: u8, n: u64, width: u64) -> String {
    format!(
        "tile/{level}/{}",
        n_path(Tile::new(TILE_HEIGHT, level, n, width as u32, false))
    )
}

/// `tile/entries/<N>[.p/<W>]` of the entry bundle `n` holding `width` entries.
pub fn entries_path(n: u64, width: u64) -> String {
    format!(
        "tile/entries/{}",
        n_path(Tile::new(TILE_HEIGHT, 0, n, width as u32, false))
    )
}

/// `blob/<blake3-hex>`.
pub fn blob_path(d: &Digest) -> String {
    format!("blob/{}", d.to_hex())
}

/// An entry bundle: each entry's bytes after its big-endian u16 length.
pub fn entry_bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let len = u16::try_from(e.len()).expect("entries are at most 65,535 bytes");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    out
}

/// Splits an entry bundle that must hold exactly `count` entries.
pub fn parse_bundle(bytes: &[u8], count: u64) -> std::result::Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return Err("a length prefix is cut short".into());
        };
        let len = u16::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(format!("entry {} is cut short", out.len()));
        }
        out.push(&tail[..len]);
        rest = &tail[len..];
    }
    if out.len() as u64 != count {
        return Err(format!("holds {} entries, not {count}", out.len()));
    }
    Ok(out)
}

/// The hash tiles of the tree of `new` entries that the tree of `old` entries lacks (every
/// tile of the tree when `old` is 0), as (level, index, width).
pub fn new_tiles(old: TreeSize, new: TreeSize) -> Vec<(u8, u64, u64)> {
    if new == 0 {
        return vec![];
    }
    Tile::new_tiles(TILE_HEIGHT, old, new)
        .into_iter()
        .map(|t| (t.level(), t.level_index(), t.width() as u64))
        .collect()
}

/// The bytes of hash tile (`level`, `n`, `width`) of a tree whose stored hashes `r` reads.
pub fn tile_data<R: merkle::HashReader>(r: &R, level: u8, n: u64, width: u64) -> Result<Vec<u8>> {
    Tile::new(TILE_HEIGHT, level, n, width as u32, false)
        .read_data(r)
        .map_err(|e| Error::Corrupt(format!("cannot read tile {level}/{n}: {e:?}")))
}

/// S3 settings given on the command line; anything unset comes from the AWS_* environment.
#[derive(Clone, Debug, Default)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub allow_http: bool,
}

/// A published log's location: a directory or an S3 bucket and prefix.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: object_store::path::Path,
    rt: tokio::runtime::Runtime,
    /// As the user gave it, for messages.
    pub display: String,
}

/// Whether `location` names a published log rather than a ledger directory: an `s3://` URL,
/// or a directory holding a `checkpoint` and a `tile/` directory but no ledger.
pub fn is_published(location: &Path) -> bool {
    let s = location.to_string_lossy();
    s.starts_with("s3://")
        || is_http(&s)
        || (location.join("checkpoint").is_file()
            && location.join("tile").is_dir()
            && !location.join(crate::store::TAG_FILE).exists())
}

/// Whether `location` is an `evl serve` URL.
pub fn is_http(location: &str) -> bool {
    location.starts_with("http://") || location.starts_with("https://")
}

fn store_err(what: &str) -> impl FnOnce(object_store::Error) -> Error + '_ {
    move |e| Error::Invalid(format!("{what}: {}", crate::net::ca::chain(&e)))
}

/// `AmazonS3Builder::from_env()`, trusting `EVL_CA_FILE` too when it is set (its client
/// options first: the AWS_* variables may set client options of their own).
fn s3_builder() -> Result<object_store::aws::AmazonS3Builder> {
    crate::net::ca::use_ring();
    if std::env::var_os(crate::net::ca::CA_ENV).is_none_or(|v| v.is_empty()) {
        return Ok(object_store::aws::AmazonS3Builder::from_env());
    }
    let options = crate::net::ca::object_store_options(object_store::ClientOptions::new())?;
    let mut b = object_store::aws::AmazonS3Builder::new().with_client_options(options);
    for (key, value) in std::env::vars() {
        if key.starts_with("AWS_")
            && let Ok(k) = key.to_ascii_lowercase().parse()
        {
            b = b.with_config(k, value);
        }
    }
    Ok(b)
}

impl Remote {
    /// Opens `location`: `s3://BUCKET[/PREFIX]` (credentials, region and endpoint from the
    /// AWS_* environment unless `s3` sets them) or a directory (created when `create`).
    pub fn open(location: &str, s3: &S3Options, create: bool) -> Result<Remote> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Invalid(format!("cannot start the I/O runtime: {e}")))?;
        let (store, prefix): (Arc<dyn ObjectStore>, String) =
            if let Some(rest) = location.strip_prefix("s3://") {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(Error::Invalid(format!(
                        "'{location}' names no bucket: expected s3://BUCKET/PREFIX"
                    )));
                }
                let mut b = s3_builder()?.with_bucket_name(bucket);
                if let Some(e) = &s3.endpoint {
                    b = b.with_endpoint(e);
                }
                if let Some(r) = &s3.region {
                    b = b.with_region(r);
                }
                if s3.allow_http {
                    b = b.with_allow_http(true);
                }
                let s = b.build().map_err(store_err(location))?;
                (Arc::new(s), prefix.trim_matches('/').to_string())
            } else if is_http(location) {
                let s = object_store::http::HttpBuilder::new()
                    .with_url(location.trim_end_matches('/'))
                    .with_client_options(crate::net::ca::object_store_options(
                        object_store::ClientOptions::new().with_allow_http(true),
                    )?)
                    .build()
                    .map_err(store_err(location))?;
                (Arc::new(s), String::new())
            } else {
                let dir = Path::new(location);
                if create {
                    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
                }
                let s = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(store_err(location))?;
                (Arc::new(s), String::new())
            };
        Ok(Remote {
            store,
            prefix: object_store::path::Path::from(prefix),
            rt,
            display: location.to_string(),
        })
    }

    fn path(&self, name: &str) -> object_store::path::Path {
        let mut p = self.prefix.clone();
        for part in name.split('/') {
            p = p.join(part);
        }
        p
    }

    /// The object `name`, or `None` when there is none.
    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.rt.block_on(self.get_async(name))
    }

    async fn get_async(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let what = format!("{}: {name}", self.display);
        match self.store.get(&self.path(name)).await {
            Ok(r) => {
                if r.meta.size > MAX_OBJECT_BYTES as u64 {
                    return Err(Error::Invalid(format!(
                        "{what} is {} bytes, over the {MAX_OBJECT_BYTES}-byte limit",
                        r.meta.size
                    )));
                }
                Ok(Some(r.bytes().await.map_err(store_err(&what))?.to_vec()))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err(&what)(e)),
        }
    }

    /// Fetches many objects at once, in the order of `names`.
    pub fn get_many(&self, names: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.rt.block_on(
            futures::stream::iter(names.iter().map(|n| self.get_async(n)))
                .buffered(CONCURRENCY)
                .try_collect(),
        )
    }

    /// Writes immutable objects create-only; one already there is left as it is (an
    /// interrupted publish is simply run again). Returns how many were created.
    pub fn put_new(&self, objects: Vec<(String, Vec<u8>)>) -> Result<usize> {
        self.rt.block_on(async {
            let created = futures::stream::iter(objects.into_iter().map(|(name, bytes)| {
                let path = self.path(&name);
                let what = format!("{}: {name}", self.display);
                async move {
                    let opts = PutOptions {
                        mode: PutMode::Create,
                        ..PutOptions::default()
                    };
                    match self
                        .store
                        .put_opts(&path, PutPayload::from(bytes), opts)
                        .await
                    {
                        Ok(_) => Ok(1usize),
                        Err(object_store::Error::AlreadyExists { .. }) => Ok(0),
                        Err(e) => Err(store_err(&what)(e)),
                    }
                }
            }))
            .buffer_unordered(CONCURRENCY)
            .try_fold(0, |a, b| async move { Ok(a + b) })
            .await?;
            Ok(created)
        })
    }

    /// Writes (or replaces) the object `name`.
    pub fn put(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let what = format!("{}: {name}", self.display);
        self.rt
            .block_on(self.store.put(&self.path(name), PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(store_err(&what))
    }
}

/// The blobs entry `e` carries, by digest.
pub fn carried(e: &Entry) -> Vec<Digest> {
    match &e.body.payload {
        Payload::Artifact(m) => {
            let mut v = vec![m.content];
            v.extend(m.facts.as_ref().map(|f| f.digest));
            v
        }
        Payload::Disposition(d) => vec![d.document],
        _ => vec![],
    }
}

/// What one publish wrote.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Published {
    pub size: TreeSize,
    /// The tree size the destination held before.
    pub previous: TreeSize,
    pub tiles: usize,
    pub bundles: usize,
    pub blobs: usize,
    /// Objects created (those already present are not counted).
    pub created: usize,
    pub bytes: u64,
}

/// Publishes the tree of the checkpoint `note` (signed, of this ledger) to `remote`: every
/// tile, entry bundle and blob the destination lacks, then the checkpoint. The destination's
/// current checkpoint must be of a prefix of this ledger's tree.
pub fn publish(ledger: &Ledger, note: &[u8], remote: &Remote) -> Result<Published> {
    let origin = ledger.origin()?;
    let (note_origin, size, root) =
        checkpoint::body_of(note).map_err(|e| Error::Invalid(format!("checkpoint: {e}")))?;
    if note_origin != origin || size == 0 || size > ledger.size()? || ledger.root(size)? != root {
        return Err(Error::Invalid(
            "the checkpoint is not one of this ledger's trees".into(),
        ));
    }
    let previous = match remote.get("checkpoint")? {
        None => 0,
        Some(old) => {
            let (o, old_size, old_root) = checkpoint::body_of(&old)
                .map_err(|e| Error::Invalid(format!("{}: its checkpoint: {e}", remote.display)))?;
            if o != origin
                || old_size > size
                || ledger.root(old_size).map_or(true, |r| r != old_root)
            {
                return Err(Error::Invalid(format!(
                    "{} holds a checkpoint (origin {o}, size {old_size}) that is not a prefix of this ledger's tree of size {size}; refusing to publish over it",
                    remote.display
                )));
            }
            old_size
        }
    };
    let mut out = Published {
        size,
        previous,
        ..Published::default()
    };
    if previous == size && remote.get("checkpoint")?.as_deref() == Some(note) {
        return Ok(out);
    }
    let view = ledger.snapshot()?;
    let mut objects: Vec<(String, Vec<u8>)> = Vec::new();
    for (level, n, width) in new_tiles(previous, size) {
        objects.push((
            tile_path(level, n, width),
            tile_data(&*view, level, n, width)?,
        ));
        out.tiles += 1;
        if level == 0 {
            let first = n * TILE_WIDTH;
            let entries = (first..first + width)
                .map(|i| ledger.entry_bytes(i))
                .collect::<Result<Vec<_>>>()?;
            objects.push((
                entries_path(n, width),
                entry_bundle(entries.iter().map(Vec::as_slice)),
            ));
            out.bundles += 1;
        }
    }
    // Blobs carried by the entries new to the destination.
    let mut seen = BTreeSet::new();
    for i in previous..size {
        for d in carried(&ledger.entry(i)?) {
            if seen.insert(d) {
                let bytes = ledger
                    .blob(&d)?
                    .ok_or_else(|| Error::Corrupt(format!("blob {} is missing", d.short())))?;
                objects.push((blob_path(&d), bytes));
                out.blobs += 1;
            }
        }
    }
    out.bytes = objects.iter().map(|(_, b)| b.len() as u64).sum();
    // Written in batches so memory stays bounded by about one batch of objects.
    let mut rest = objects;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(1024));
        out.created += remote.put_new(rest)?;
        rest = tail;
    }
    remote.put("checkpoint", note.to_vec())?;
    Ok(out)
}

/// A local cache of a published log's immutable objects (docs/PUBLISH.md §"The local
/// cache"): full hash tiles, full entry bundles and blobs, under `<dir>/<origin-hash>/` by
/// their published names (`<origin-hash>` the BLAKE3 of the origin, 64 hex). It saves fetches,
/// never checks: what is read from it is verified exactly as if fetched, and an object that
/// fails is reported, removed and fetched again. Partial tiles and bundles and the checkpoint
/// are never cached (they change as the log grows).
pub struct Cache {
    root: std::path::PathBuf,
    /// False for a read that must fetch every object (`evl verify` audits what is published):
    /// the cache is then only written.
    read: bool,
}

impl Cache {
    /// The cache base directory: `$XDG_CACHE_HOME/evl`, else `$HOME/.cache/evl` (absolute
    /// paths only, as the XDG base directory specification says); `None` when neither is set.
    pub fn default_dir() -> Option<std::path::PathBuf> {
        let absolute = |v: std::ffi::OsString| {
            let p = std::path::PathBuf::from(v);
            p.is_absolute().then_some(p)
        };
        std::env::var_os("XDG_CACHE_HOME")
            .and_then(absolute)
            .map(|p| p.join("evl"))
            .or_else(|| {
                std::env::var_os("HOME")
                    .and_then(absolute)
                    .map(|h| h.join(".cache/evl"))
            })
    }

    /// The cache of the log with `origin` under `base`.
    pub fn new(base: &Path, origin: &str, read: bool) -> Cache {
        Cache {
            root: base.join(Digest::of(origin.as_bytes()).to_hex()),
            read,
        }
    }

    /// Where the object `name` is kept.
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.root.join(name)
    }

    /// The cached bytes of `name`, if any (unverified: the caller checks them).
    fn get(&self, name: &str) -> Option<Vec<u8>> {
        if !self.read {
            return None;
        }
        let p = self.path(name);
        let len = std::fs::metadata(&p).ok()?.len();
        if len > MAX_OBJECT_BYTES as u64 {
            self.remove(name);
            return None;
        }
        std::fs::read(p).ok()
    }

    /// Keeps `bytes` (already verified) as `name`: written to a temporary file and renamed,
    /// so a reader never sees half an object. A failure only costs a later fetch.
    fn put(&self, name: &str, bytes: &[u8]) {
        let p = self.path(name);
        let Some(dir) = p.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            p.file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default()
        ));
        if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, &p).is_ok() {
            return;
        }
        let _ = std::fs::remove_file(&tmp);
    }

    fn remove(&self, name: &str) {
        let _ = std::fs::remove_file(self.path(name));
    }
}

/// What a fetch took from the cache, fetched, and found wrong in the cache.
#[derive(Clone, Debug, Default)]
pub struct CacheUse {
    /// Objects read from the cache and verified.
    pub hits: usize,
    /// Objects fetched from the published log (the checkpoint included).
    pub fetched: usize,
    /// Cached objects that failed verification, removed and fetched again: (cache file, why).
    pub rejected: Vec<(String, String)>,
}

/// Entries appended at once when a published log is read back.
const APPEND_BATCH: usize = 4096;

/// Appends the entries of several bundles (named) in one batch; if that fails, bundle by
/// bundle, so the error names the bundle at fault (a failed append leaves the ledger as it
/// was).
fn append_bundles(
    ledger: &Ledger,
    bundles: Vec<(String, Vec<(Entry, Vec<Vec<u8>>)>)>,
    bad: &dyn Fn(&str, String) -> Error,
) -> Result<()> {
    if bundles.is_empty() {
        return Ok(());
    }
    let all: Vec<(Entry, Vec<Vec<u8>>)> = bundles
        .iter()
        .flat_map(|(_, b)| b.iter().cloned())
        .collect();
    let Err(first) = ledger.append_signed(all) else {
        return Ok(());
    };
    if bundles.len() == 1 {
        return Err(bad(&bundles[0].0, first.to_string()));
    }
    for (name, batch) in bundles.iter() {
        ledger
            .append_signed(batch.clone())
            .map_err(|e| bad(name, e.to_string()))?;
    }
    Err(bad(&bundles[0].0, first.to_string()))
}

/// A published log read back into a local ledger.
pub struct Fetched {
    pub ledger: Ledger,
    /// The published checkpoint note.
    pub note: Vec<u8>,
    /// Objects that are not what the checkpoint's tree says they must be: (object, reason).
    pub failures: Vec<(String, String)>,
    /// How the cache was used.
    pub cache: CacheUse,
}

/// Reads the published log at `remote` into a new ledger at `into`: every entry of the
/// checkpoint's tree is appended again with its stored bytes and the bytes it carries (each
/// signature and key checked at its position), and the checkpoint stored, which checks its
/// signature by an admin key active at its size and its root against the rebuilt tree. Every
/// hash tile is compared with the tree of the entries. Damage that still leaves a ledger to
/// read is reported in `failures`; damage that leaves none is an error naming the object.
///
/// With `cache` (the base directory of [`Cache`], and whether to read from it), full tiles,
/// full bundles and blobs are read from the origin's cache when there, checked as if fetched,
/// and what verified is kept there for the next read.
pub fn fetch(remote: &Remote, into: &Path, cache: Option<(&Path, bool)>) -> Result<Fetched> {
    let bad = |object: &str, why: String| {
        Error::Unverified(format!("{}: {object}: {why}", remote.display))
    };
    let mut used = CacheUse {
        fetched: 1,
        ..CacheUse::default()
    };
    let note = remote.get("checkpoint")?.ok_or_else(|| {
        Error::Invalid(format!(
            "{}: no checkpoint: nothing is published there",
            remote.display
        ))
    })?;
    let (origin, size, root) =
        checkpoint::body_of(&note).map_err(|e| bad("checkpoint", e.to_string()))?;
    if size == 0 {
        return Err(bad("checkpoint", "it is of the empty tree".into()));
    }
    let cache = cache.map(|(base, read)| Cache::new(base, &origin, read));
    let cache = cache.as_ref();
    let reject = |used: &mut CacheUse, c: &Cache, name: &str, why: &str| {
        used.rejected
            .push((c.path(name).display().to_string(), why.to_string()));
        c.remove(name);
    };
    let mut failures: Vec<(String, String)> = Vec::new();
    // Entries, by bundle.
    let bundles = size.div_ceil(TILE_WIDTH);
    // Fetched a few at a time, stopping at the first missing one: a checkpoint's size is only
    // a claim until the entries are there, so nothing is allocated by it up front.
    let mut entries: Vec<Vec<u8>> = Vec::new();
    // Full bundles read from the cache, to be fetched after all if the entries do not make
    // the checkpoint's tree; full bundles fetched, to be cached once they do.
    let mut from_cache: Vec<u64> = Vec::new();
    let mut to_cache: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut next = 0;
    while next < bundles {
        let end = (next + CONCURRENCY as u64 * 4).min(bundles);
        let width = |n: u64| (size - n * TILE_WIDTH).min(TILE_WIDTH);
        let names: Vec<String> = (next..end).map(|n| entries_path(n, width(n))).collect();
        let mut got: Vec<Option<Vec<u8>>> = vec![None; names.len()];
        if let Some(c) = cache {
            for (i, n) in (next..end).enumerate() {
                if width(n) != TILE_WIDTH {
                    continue;
                }
                if let Some(b) = c.get(&names[i]) {
                    if parse_bundle(&b, TILE_WIDTH).is_ok() {
                        got[i] = Some(b);
                        from_cache.push(n);
                        used.hits += 1;
                    } else {
                        reject(&mut used, c, &names[i], "not a bundle of 256 entries");
                    }
                }
            }
        }
        let missing: Vec<usize> = (0..names.len()).filter(|&i| got[i].is_none()).collect();
        let wanted: Vec<String> = missing.iter().map(|&i| names[i].clone()).collect();
        used.fetched += wanted.len();
        for (&i, bytes) in missing.iter().zip(remote.get_many(&wanted)?) {
            let bytes = bytes.ok_or_else(|| bad(&names[i], "missing".into()))?;
            let n = next + i as u64;
            if cache.is_some() && width(n) == TILE_WIDTH {
                to_cache.push((n, bytes.clone()));
            }
            got[i] = Some(bytes);
        }
        for (i, bytes) in got.into_iter().enumerate() {
            let name = &names[i];
            let bytes = bytes.expect("every bundle is read or fetched");
            let parsed = parse_bundle(&bytes, width(next + i as u64)).map_err(|e| bad(name, e))?;
            entries.extend(parsed.into_iter().map(<[u8]>::to_vec));
        }
        next = end;
    }
    let mut leaves: Vec<Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    let mut tree = merkle::build(&leaves);
    let mut entries_root = merkle::root(size, &tree)
        .map_err(|e| Error::Corrupt(format!("cannot hash the published entries: {e:?}")))?;
    if entries_root != root && !from_cache.is_empty() {
        // Some cached bundle may be wrong: those read from the cache are fetched after all,
        // and any that differs from the published one is dropped from the cache, so the
        // outcome is exactly that of a read without the cache.
        let c = cache.expect("bundles came from the cache");
        let names: Vec<String> = from_cache
            .iter()
            .map(|&n| entries_path(n, TILE_WIDTH))
            .collect();
        used.fetched += names.len();
        for ((&n, name), bytes) in from_cache.iter().zip(&names).zip(remote.get_many(&names)?) {
            let bytes = bytes.ok_or_else(|| bad(name, "missing".into()))?;
            let parsed = parse_bundle(&bytes, TILE_WIDTH).map_err(|e| bad(name, e))?;
            let lo = (n * TILE_WIDTH) as usize;
            let fresh: Vec<Vec<u8>> = parsed.into_iter().map(<[u8]>::to_vec).collect();
            if entries[lo..lo + TILE_WIDTH as usize] != fresh[..] {
                reject(
                    &mut used,
                    c,
                    name,
                    "its entries are not those of the published log's tree",
                );
                used.hits -= 1;
                entries.splice(lo..lo + TILE_WIDTH as usize, fresh);
                to_cache.push((n, bytes));
            }
        }
        leaves = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
        tree = merkle::build(&leaves);
        entries_root = merkle::root(size, &tree)
            .map_err(|e| Error::Corrupt(format!("cannot hash the published entries: {e:?}")))?;
    }
    if let Some(c) = cache.filter(|_| entries_root == root) {
        for (n, bytes) in &to_cache {
            c.put(&entries_path(*n, TILE_WIDTH), bytes);
        }
    }
    // Hash tiles: each must be the tree of the published entries.
    let tiles = new_tiles(0, size);
    let names: Vec<String> = tiles.iter().map(|&(l, n, w)| tile_path(l, n, w)).collect();
    let wants = tiles
        .iter()
        .map(|&(l, n, w)| tile_data(&tree, l, n, w))
        .collect::<Result<Vec<_>>>()?;
    let mut to_fetch: Vec<usize> = Vec::new();
    for (i, &(_, _, w)) in tiles.iter().enumerate() {
        // Only against entries that make the checkpoint's root, so a damaged log is
        // reported exactly as without the cache.
        if let Some(c) = cache.filter(|_| w == TILE_WIDTH && entries_root == root) {
            match c.get(&names[i]) {
                Some(b) if b == wants[i] => {
                    used.hits += 1;
                    continue;
                }
                Some(_) => reject(
                    &mut used,
                    c,
                    &names[i],
                    "its hashes are not those of the published entries",
                ),
                None => {}
            }
        }
        to_fetch.push(i);
    }
    let wanted: Vec<String> = to_fetch.iter().map(|&i| names[i].clone()).collect();
    used.fetched += wanted.len();
    for (&i, got) in to_fetch.iter().zip(remote.get_many(&wanted)?) {
        let want = &wants[i];
        let why = match got {
            None => Some("missing".to_string()),
            Some(b) if b != *want => Some(if entries_root == root {
                "its hashes are not those of the checkpoint's tree".to_string()
            } else {
                "its hashes are not those of the published entries".to_string()
            }),
            Some(_) => None,
        };
        if let Some(why) = why {
            failures.push((names[i].clone(), why));
        } else if let Some(c) = cache.filter(|_| tiles[i].2 == TILE_WIDTH && entries_root == root) {
            c.put(&names[i], want);
        }
    }
    if entries_root != root {
        // Name the bundles whose entries disagree with the level-0 tiles, when those tiles
        // hash to the checkpoint's root.
        let published_leaves: Option<Vec<u8>> = (0..bundles)
            .map(|n| remote.get(&tile_path(0, n, (size - n * TILE_WIDTH).min(TILE_WIDTH))))
            .collect::<Result<Option<Vec<Vec<u8>>>>>()?
            .map(|v| v.concat());
        let mut named = false;
        if let Some(pl) = published_leaves.filter(|pl| pl.len() as u64 == size * 32) {
            let tile_leaves: Vec<Hash> = pl
                .chunks(32)
                .map(|c| Hash(c.try_into().expect("32-byte chunks")))
                .collect();
            let tile_root = merkle::root(size, &merkle::build(&tile_leaves)).ok();
            if tile_root == Some(root) {
                for n in 0..bundles {
                    let lo = (n * TILE_WIDTH) as usize;
                    let hi = (lo + TILE_WIDTH as usize).min(size as usize);
                    if leaves[lo..hi] != tile_leaves[lo..hi] {
                        let width = (hi - lo) as u64;
                        failures.push((
                            entries_path(n, width),
                            format!(
                                "its entries are not the leaves of the checkpoint's tree ({})",
                                tile_path(0, n, width)
                            ),
                        ));
                        named = true;
                    }
                }
            }
        }
        if !named {
            failures.push((
                "checkpoint".into(),
                format!(
                    "its root {} is not the root of the published entries ({})",
                    merkle::hex(&root),
                    merkle::hex(&entries_root)
                ),
            ));
        }
        return Err(bad(
            &failures[0].0.clone(),
            failures
                .iter()
                .map(|(o, w)| format!("{o}: {w}"))
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    // Rebuild: the genesis, then each bundle's entries with the bytes they carry.
    let decoded = entries
        .iter()
        .enumerate()
        .map(|(i, b)| Entry::from_bytes(b).map_err(|e| bad(&format!("entry {i}"), e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    let ledger =
        Ledger::create_from(into, decoded[0].clone(), &OpenOptions::default()).map_err(|e| {
            bad(
                &entries_path(0, size.min(TILE_WIDTH)),
                format!("entry 0: {e}"),
            )
        })?;
    let mut blobs: std::collections::BTreeMap<Digest, Vec<u8>> = Default::default();
    // Bundles appended a few at a time: each append is one durable write, and the private
    // ledger's writes are its cost, not the checks.
    let mut pending: Vec<(String, Vec<(Entry, Vec<Vec<u8>>)>)> = Vec::new();
    let mut pending_entries = 0;
    for n in 0..bundles {
        let lo = (n * TILE_WIDTH).max(1);
        let hi = ((n + 1) * TILE_WIDTH).min(size);
        if lo >= hi {
            continue;
        }
        let chunk = &decoded[lo as usize..hi as usize];
        let want: Vec<Digest> = chunk
            .iter()
            .flat_map(carried)
            .filter(|d| !blobs.contains_key(d))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut want = want;
        if let Some(c) = cache {
            want.retain(|d| {
                let name = blob_path(d);
                match c.get(&name) {
                    Some(b) if Digest::of(&b) == *d => {
                        used.hits += 1;
                        blobs.insert(*d, b);
                        false
                    }
                    Some(_) => {
                        reject(&mut used, c, &name, "its bytes do not hash to its name");
                        true
                    }
                    None => true,
                }
            });
        }
        let names: Vec<String> = want.iter().map(blob_path).collect();
        used.fetched += names.len();
        for (d, got) in want.iter().zip(remote.get_many(&names)?) {
            let name = blob_path(d);
            let bytes = got.ok_or_else(|| bad(&name, "missing".into()))?;
            if Digest::of(&bytes) != *d {
                return Err(bad(
                    &name,
                    format!(
                        "its bytes hash to {}, not to its name",
                        Digest::of(&bytes).short()
                    ),
                ));
            }
            if let Some(c) = cache {
                c.put(&name, &bytes);
            }
            blobs.insert(*d, bytes);
        }
        let batch: Vec<(Entry, Vec<Vec<u8>>)> = chunk
            .iter()
            .map(|e| {
                let carried = carried(e).iter().map(|d| blobs[d].clone()).collect();
                (e.clone(), carried)
            })
            .collect();
        pending_entries += batch.len();
        pending.push((entries_path(n, hi - n * TILE_WIDTH), batch));
        if pending_entries >= APPEND_BATCH {
            append_bundles(&ledger, std::mem::take(&mut pending), &bad)?;
            pending_entries = 0;
        }
    }
    append_bundles(&ledger, pending, &bad)?;
    if let Err(e) = ledger.store_checkpoint(&note) {
        failures.push(("checkpoint".into(), e.to_string()));
    }
    Ok(Fetched {
        ledger,
        note,
        failures,
        cache: used,
    })
}
