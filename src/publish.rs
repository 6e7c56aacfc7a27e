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

/// A published log read back into a local ledger.
pub struct Fetched {
    pub ledger: Ledger,
    /// The published checkpoint note.
    pub note: Vec<u8>,
    /// Objects that are not what the checkpoint's tree says they must be: (object, reason).
    pub failures: Vec<(String, String)>,
}

/// Reads the published log at `remote` into a new ledger at `into`: every entry of the
/// checkpoint's tree is appended again with its stored bytes and the bytes it carries (each
/// signature and key checked at its position), and the checkpoint stored, which checks its
/// signature by an admin key active at its size and its root against the rebuilt tree. Every
/// hash tile is compared with the tree of the entries. Damage that still leaves a ledger to
/// read is reported in `failures`; damage that leaves none is an error naming the object.
pub fn fetch(remote: &Remote, into: &Path) -> Result<Fetched> {
    let bad = |object: &str, why: String| {
        Error::Unverified(format!("{}: {object}: {why}", remote.display))
    };
    let note = remote.get("checkpoint")?.ok_or_else(|| {
        Error::Invalid(format!(
            "{}: no checkpoint: nothing is published there",
            remote.display
        ))
    })?;
    let (_, size, root) =
        checkpoint::body_of(&note).map_err(|e| bad("checkpoint", e.to_string()))?;
    if size == 0 {
        return Err(bad("checkpoint", "it is of the empty tree".into()));
    }
    let mut failures: Vec<(String, String)> = Vec::new();
    // Entries, by bundle.
    let bundles = size.div_ceil(TILE_WIDTH);
    // Fetched a few at a time, stopping at the first missing one: a checkpoint's size is only
    // a claim until the entries are there, so nothing is allocated by it up front.
    let mut entries: Vec<Vec<u8>> = Vec::new();
    let mut next = 0;
    while next < bundles {
        let end = (next + CONCURRENCY as u64 * 4).min(bundles);
        let names: Vec<String> = (next..end)
            .map(|n| entries_path(n, (size - n * TILE_WIDTH).min(TILE_WIDTH)))
            .collect();
        for (i, got) in remote.get_many(&names)?.into_iter().enumerate() {
            let name = &names[i];
            let bytes = got.ok_or_else(|| bad(name, "missing".into()))?;
            let width = (size - (next + i as u64) * TILE_WIDTH).min(TILE_WIDTH);
            let parsed = parse_bundle(&bytes, width).map_err(|e| bad(name, e))?;
            entries.extend(parsed.into_iter().map(<[u8]>::to_vec));
        }
        next = end;
    }
    let leaves: Vec<Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    let tree = merkle::build(&leaves);
    let entries_root = merkle::root(size, &tree)
        .map_err(|e| Error::Corrupt(format!("cannot hash the published entries: {e:?}")))?;
    // Hash tiles: each must be the tree of the published entries.
    let tiles = new_tiles(0, size);
    let names: Vec<String> = tiles.iter().map(|&(l, n, w)| tile_path(l, n, w)).collect();
    for (i, got) in remote.get_many(&names)?.into_iter().enumerate() {
        let (l, n, w) = tiles[i];
        let want = tile_data(&tree, l, n, w)?;
        let why = match got {
            None => Some("missing".to_string()),
            Some(b) if b != want => Some(if entries_root == root {
                "its hashes are not those of the checkpoint's tree".to_string()
            } else {
                "its hashes are not those of the published entries".to_string()
            }),
            Some(_) => None,
        };
        if let Some(why) = why {
            failures.push((names[i].clone(), why));
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
    let mut cache: std::collections::BTreeMap<Digest, Vec<u8>> = Default::default();
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
            .filter(|d| !cache.contains_key(d))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let names: Vec<String> = want.iter().map(blob_path).collect();
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
            cache.insert(*d, bytes);
        }
        let batch = chunk
            .iter()
            .map(|e| {
                let blobs = carried(e).iter().map(|d| cache[d].clone()).collect();
                (e.clone(), blobs)
            })
            .collect();
        ledger
            .append_signed(batch)
            .map_err(|e| bad(&entries_path(n, hi - n * TILE_WIDTH), e.to_string()))?;
    }
    if let Err(e) = ledger.store_checkpoint(&note) {
        failures.push(("checkpoint".into(), e.to_string()));
    }
    Ok(Fetched {
        ledger,
        note,
        failures,
    })
}
