//! Full verification of a ledger: every entry decoded and signed by a key that counted at its
//! position, every artifact re-hashed, every index and tree hash recomputed, the latest
//! checkpoint (and optionally an auditor's older one) checked against the recomputed tree.
//!
//! Verification never stops at the first problem: it names every failing entry and structure.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;
use serde::Serialize;

use crate::checkpoint;
use crate::codec;
use crate::digest::Digest;
use crate::entry::{Entry, Payload, signature_message};
use crate::error::Result;
use crate::facts;
use crate::keys::{PublicKey, Role};
use crate::merkle::{self, Hash, HashReader};
use crate::registry::{KeyState, Registry};
use crate::store::Ledger;

/// Signatures verified per batch (ed25519 batch verification amortises the scalar work).
const BATCH: usize = 256;

/// One thing that failed verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Log index of the entry concerned, when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The structure: `entry`, `artifact`, `id-index`, `tree`, `key-index`, `checkpoint`, `meta`.
    pub structure: &'static str,
    pub reason: String,
}

/// The outcome of a checkpoint check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckpointStatus {
    pub source: String,
    pub size: u64,
    pub root: String,
    pub signer: String,
}

/// What `verify` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub size: u64,
    pub entries_checked: u64,
    pub signatures_checked: u64,
    pub artifacts_checked: u64,
    pub root: String,
    pub checkpoints: Vec<CheckpointStatus>,
    pub failures: Vec<Failure>,
}

impl Report {
    /// Whether nothing failed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
    fn fail(&mut self, index: Option<u64>, structure: &'static str, reason: impl Into<String>) {
        self.failures.push(Failure {
            index,
            structure,
            reason: reason.into(),
        });
    }
}

/// Options for [`verify`].
#[derive(Default)]
pub struct Options<'a> {
    /// An older checkpoint note an auditor kept, to prove consistency with.
    pub auditor_checkpoint: Option<(String, Vec<u8>)>,
    /// Called with (done, total) as entries are checked.
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

/// Dense stored hashes recomputed from the leaves.
struct Recomputed(Vec<Hash>);

impl HashReader for Recomputed {
    fn read_hashes(
        &self,
        indexes: &[u64],
    ) -> std::result::Result<Vec<Hash>, tlog_tiles::tlog::Error> {
        indexes
            .iter()
            .map(|i| {
                self.0
                    .get(*i as usize)
                    .copied()
                    .ok_or(tlog_tiles::tlog::Error::IndexesNotInTree)
            })
            .collect()
    }
}

/// Verifies everything in `ledger`. Storage errors are returned; every integrity problem is
/// a [`Failure`] in the report.
pub fn verify(ledger: &Ledger, opts: &Options) -> Result<Report> {
    let mut report = Report {
        size: ledger.size()?,
        ..Report::default()
    };
    let size = report.size;
    let origin = ledger.origin()?;
    let stored_genesis = ledger.genesis_id()?;

    // Pass 1, in log order: decode, check position, registry as of each position, leaf hashes.
    let mut registry = Registry::default();
    let mut genesis = Digest::ZERO;
    let mut tree = Recomputed(Vec::with_capacity((size as usize).saturating_mul(2)));
    let mut to_verify: Vec<ToVerify> = Vec::with_capacity(size as usize);
    // A ledger has few keys: decompress each once, not once per entry.
    let mut points: BTreeMap<PublicKey, Option<VerifyingKey>> = BTreeMap::new();
    let mut ids: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut referenced_blobs: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut with_facts = Vec::new();
    let mut expected_index = 0u64;
    // Read in chunks; decode, leaf-hash and id each chunk in parallel, then fold it in order.
    let mut raw = ledger.raw_entries();
    'chunks: loop {
        let mut chunk = Vec::with_capacity(2048);
        for item in raw.by_ref().take(2048) {
            chunk.push(item?);
        }
        if chunk.is_empty() {
            break;
        }
        let decoded: Vec<_> = chunk
            .into_par_iter()
            .map(|(key, bytes)| {
                let leaf = merkle::leaf_hash(&bytes);
                let entry = Entry::from_bytes(&bytes).map(|e| {
                    let id = e.id();
                    (e, id)
                });
                (key, leaf, entry)
            })
            .collect();
        for (key, leaf, entry) in decoded {
            let index = match <[u8; 8]>::try_from(key.as_slice()) {
                Ok(k) => u64::from_be_bytes(k),
                Err(_) => {
                    report.fail(
                        None,
                        "entry",
                        "a key in the entry table is not an 8-byte index",
                    );
                    continue;
                }
            };
            if index != expected_index {
                report.fail(Some(index), "entry", format!("entry {index} found where entry {expected_index} was expected (entries missing or reordered)"));
                expected_index = index;
            }
            expected_index += 1;
            if index >= size {
                report.fail(
                    Some(index),
                    "entry",
                    format!("entry {index} lies beyond the recorded size {size}"),
                );
                continue;
            }
            match merkle::hashes_to_store(index, leaf, &tree) {
                Ok(add) if add.first().map(|(i, _)| *i as usize) == Some(tree.0.len()) => {
                    tree.0.extend(add.into_iter().map(|(_, h)| h))
                }
                _ => {
                    report.fail(
                        Some(index),
                        "tree",
                        "the tree cannot be rebuilt past a missing entry",
                    );
                    break 'chunks;
                }
            }
            report.entries_checked += 1;
            if let Some(p) = opts.progress
                && index % 4096 == 0
            {
                p(index, size);
            }
            let (entry, id) = match entry {
                Ok(e) => e,
                Err(e) => {
                    report.fail(
                        Some(index),
                        "entry",
                        format!("entry {index} does not decode: {e}"),
                    );
                    continue;
                }
            };
            if index == 0 {
                genesis = id;
                if id != stored_genesis {
                    report.fail(
                        Some(0),
                        "meta",
                        "the recorded genesis id is not the id of entry 0",
                    );
                }
                if let Payload::Genesis(g) = &entry.body.payload
                    && g.origin != origin
                {
                    report.fail(
                        Some(0),
                        "meta",
                        format!(
                            "the recorded origin '{origin}' differs from the genesis origin '{}'",
                            g.origin
                        ),
                    );
                }
            }
            if let Some(prev) = ids.insert(id, index) {
                report.fail(
                    Some(index),
                    "entry",
                    format!("entry {index} ({}) duplicates entry {prev}", id.short()),
                );
            }
            match registry.admit_unverified(&entry, index, &genesis) {
                Ok(public) => {
                    let key = *points
                        .entry(public)
                        .or_insert_with(|| public.verifying_key());
                    to_verify.push(ToVerify {
                        index,
                        public,
                        key,
                        id,
                        signature: entry.signature.0,
                    });
                }
                Err(e) => report.fail(
                    Some(index),
                    "entry",
                    format!("entry {index} ({}): {e}", id.short()),
                ),
            }
            if let Payload::Artifact(m) = &entry.body.payload
                && m.facts.is_some()
            {
                with_facts.push((index, m.clone()));
            }
            match &entry.body.payload {
                Payload::Artifact(m) => {
                    referenced_blobs.entry(m.content).or_insert(index);
                    if let Some(f) = &m.facts {
                        referenced_blobs.entry(f.digest).or_insert(index);
                    }
                }
                Payload::Disposition(d) => {
                    referenced_blobs.entry(d.document).or_insert(index);
                }
                _ => {}
            }
        }
    }
    if expected_index < size {
        report.fail(
            Some(expected_index),
            "entry",
            format!("the ledger records {size} entries but only {expected_index} are stored"),
        );
    }

    // Pass 2, in parallel: signatures, batch-verified.
    report.signatures_checked = to_verify.len() as u64;
    let bad: Vec<u64> = to_verify
        .par_chunks(BATCH)
        .flat_map_iter(bad_signatures)
        .collect();
    for index in bad {
        report.fail(
            Some(index),
            "entry",
            format!("entry {index}: the signature does not verify"),
        );
    }

    // Indexes: ids, keys, blobs, tree hashes.
    let mut stored_ids = 0u64;
    for item in ledger.raw_ids() {
        let (k, v) = item?;
        stored_ids += 1;
        let ok = <[u8; 32]>::try_from(k.as_slice())
            .ok()
            .zip(<[u8; 8]>::try_from(v.as_slice()).ok())
            .is_some_and(|(k, v)| ids.get(&Digest(k)) == Some(&u64::from_be_bytes(v)));
        if !ok {
            report.fail(
                None,
                "id-index",
                format!(
                    "id index record {} does not match the entries",
                    hex::encode(&k[..k.len().min(8)])
                ),
            );
        }
    }
    if stored_ids != ids.len() as u64 {
        report.fail(
            None,
            "id-index",
            format!(
                "the id index has {stored_ids} records for {} entries",
                ids.len()
            ),
        );
    }
    let mut stored_keys: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for item in ledger.raw_keys() {
        let (k, v) = item?;
        stored_keys.insert(k, v);
    }
    let recomputed_keys: BTreeMap<Vec<u8>, Vec<u8>> = registry
        .keys()
        .iter()
        .map(|(id, s)| (id.0.0.to_vec(), codec::encode::<KeyState>(s)))
        .collect();
    if stored_keys != recomputed_keys {
        report.fail(
            None,
            "key-index",
            "the stored key registry differs from the one the key entries define",
        );
    }
    // Re-hash stored bytes in parallel, a bounded chunk at a time (artifacts can be large).
    let mut seen_blobs = BTreeSet::new();
    let mut blobs = ledger.raw_blobs();
    loop {
        let mut chunk = Vec::with_capacity(256);
        for item in blobs.by_ref().take(256) {
            chunk.push(item?);
        }
        if chunk.is_empty() {
            break;
        }
        let hashed: Vec<(Vec<u8>, Digest)> = chunk
            .into_par_iter()
            .map(|(k, v)| {
                let d = Digest::of(&v);
                (k, d)
            })
            .collect();
        for (k, actual) in hashed {
            report.artifacts_checked += 1;
            if k.as_slice() != actual.0.as_slice() {
                let at = <[u8; 32]>::try_from(k.as_slice())
                    .ok()
                    .and_then(|k| referenced_blobs.get(&Digest(k)).copied());
                report.fail(
                    at,
                    "artifact",
                    format!(
                        "artifact {} does not hash to its address (bytes altered)",
                        hex::encode(&k)
                    ),
                );
            } else if !referenced_blobs.contains_key(&actual) {
                report.fail(
                    None,
                    "artifact",
                    format!("artifact {actual} is stored but no entry refers to it"),
                );
            }
            seen_blobs.insert(k);
        }
    }
    for (d, index) in &referenced_blobs {
        if !seen_blobs.contains(d.0.as_slice()) {
            report.fail(
                Some(*index),
                "artifact",
                format!("entry {index} refers to artifact {d}, whose bytes are missing"),
            );
        }
    }
    // Importer facts: re-parse each artifact and compare with what was recorded. Facts
    // recorded by another parser version are not comparable and are skipped.
    for (index, meta) in &with_facts {
        let Some(bytes) = ledger.blob(&meta.content)? else {
            continue;
        };
        match facts::check(meta, &bytes) {
            Ok(()) => {}
            Err(facts::FactsMismatch::ParserVersion { .. }) => {}
            Err(e) => report.fail(Some(*index), "artifact", format!("entry {index}: {e}")),
        }
    }
    if ledger.stored_hash_count() != tree.0.len() {
        report.fail(
            None,
            "tree",
            format!(
                "{} tree hashes are stored; the entries define {}",
                ledger.stored_hash_count(),
                tree.0.len()
            ),
        );
    }
    // One ordered scan of the stored hashes rather than a lookup per hash; a missing or
    // extra record only affects its own position.
    let mut stored = ledger.raw_hashes().peekable();
    for (i, h) in tree.0.iter().enumerate() {
        let want = (i as u64).to_be_bytes();
        let mut found = None;
        while let Some(item) = stored.peek() {
            let (k, v) = match item {
                Ok(kv) => kv,
                Err(_) => return Err(stored.next().expect("peeked").expect_err("peeked an error")),
            };
            match k.as_slice().cmp(want.as_slice()) {
                std::cmp::Ordering::Less => {
                    stored.next();
                }
                std::cmp::Ordering::Equal => {
                    found = <[u8; 32]>::try_from(v.as_slice()).ok();
                    stored.next();
                    break;
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        if found != Some(h.0) {
            let (level, n) = tlog_tiles::tlog::split_stored_hash_index(i as u64);
            if level == 0 {
                report.fail(
                    Some(n),
                    "tree",
                    format!("entry {n} is not the entry the tree recorded at that position (entries reordered, replaced or the leaf hash altered)"),
                );
            } else {
                report.fail(
                    None,
                    "tree",
                    format!("stored tree hash {i} (level {level}, node {n}) differs from the recomputed one"),
                );
            }
        }
    }
    let complete = tree.0.len() as u64 == tlog_tiles::tlog::stored_hash_count(size);
    let root = complete.then(|| merkle::root(size, &tree).ok()).flatten();
    report.root = root.map(|r| merkle::hex(&r)).unwrap_or_default();
    if let Some(p) = opts.progress {
        p(size, size);
    }

    // Checkpoints: the latest stored one and an auditor's.
    let admins_at = |n: u64| -> Vec<PublicKey> {
        registry
            .keys()
            .values()
            .filter(|s| s.roles.contains(&Role::Admin) && s.active_at(n.saturating_sub(1)))
            .map(|s| s.public_key)
            .collect()
    };
    let mut notes = Vec::new();
    if let Some(n) = ledger.latest_checkpoint()? {
        notes.push(("latest stored checkpoint".to_string(), n));
    }
    if let Some(a) = &opts.auditor_checkpoint {
        notes.push(a.clone());
    }
    for (source, note) in notes {
        let all_admins: Vec<PublicKey> = registry
            .keys()
            .values()
            .filter(|s| s.roles.contains(&Role::Admin))
            .map(|s| s.public_key)
            .collect();
        match checkpoint::open(&note, &origin, &all_admins) {
            Err(e) => report.fail(None, "checkpoint", format!("{source}: {e}")),
            Ok(cp) => {
                if !admins_at(cp.size).iter().any(|pk| pk.id() == cp.signer) {
                    report.fail(
                        None,
                        "checkpoint",
                        format!(
                            "{source}: signed by a key that was not an admin at size {}",
                            cp.size
                        ),
                    );
                }
                if cp.size > size {
                    report.fail(None, "checkpoint", format!(
                        "{source} covers {} entries but the ledger has only {size}: the ledger was rolled back or truncated",
                        cp.size
                    ));
                } else if !complete || merkle::root(cp.size, &tree).ok() != Some(cp.root) {
                    report.fail(None, "checkpoint", format!(
                        "{source} (size {}) does not match the recomputed tree: history was rewritten",
                        cp.size
                    ));
                } else if let (Some(root), Ok(proof)) =
                    (root, merkle::prove_consistency(size, cp.size, &tree))
                    && !merkle::check_consistency(&proof, size, root, cp.size, cp.root)
                {
                    report.fail(
                        None,
                        "checkpoint",
                        format!("{source}: the consistency proof does not check"),
                    );
                }
                report.checkpoints.push(CheckpointStatus {
                    source,
                    size: cp.size,
                    root: merkle::hex(&cp.root),
                    signer: cp.signer.0.short(),
                });
            }
        }
    }
    report
        .failures
        .sort_by_key(|f| (f.index.is_none(), f.index));
    Ok(report)
}

/// One signature to check: the entry's index, signer, id and signature bytes.
struct ToVerify {
    index: u64,
    public: PublicKey,
    /// The decompressed key, `None` when the 32 bytes are not a curve point.
    key: Option<VerifyingKey>,
    id: Digest,
    signature: [u8; 64],
}

/// Indexes in `chunk` whose signature fails: one batch verification, then one by one only
/// when the batch fails, to name the culprits.
fn bad_signatures(chunk: &[ToVerify]) -> Vec<u64> {
    let msgs: Vec<Vec<u8>> = chunk.iter().map(|v| signature_message(&v.id)).collect();
    let keys: Option<Vec<VerifyingKey>> = chunk.iter().map(|v| v.key).collect();
    if let Some(keys) = keys {
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let sigs: Vec<Signature> = chunk
            .iter()
            .map(|v| Signature::from_bytes(&v.signature))
            .collect();
        if ed25519_dalek::verify_batch(&refs, &sigs, &keys).is_ok() {
            return Vec::new();
        }
    }
    chunk
        .iter()
        .zip(&msgs)
        .filter(|(v, m)| {
            !crate::keys::verify(&v.public, m, &crate::keys::SignatureBytes(v.signature))
        })
        .map(|(v, _)| v.index)
        .collect()
}
