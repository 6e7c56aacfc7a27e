//! Full verification of a ledger: every log record framed and covered by a commit whose check
//! hash and tree root are recomputed; every entry decoded and signed by a key that counted at
//! its position; every artifact re-hashed; every index file, registry snapshot and tree hash
//! recomputed; the latest checkpoint (and optionally an auditor's older one) checked against
//! the recomputed tree.
//!
//! Verification never stops at the first problem: it names every failing entry and structure.
//! The work is spread over all cores: hashing and decoding in parallel chunks, one ordered
//! fold for the key registry, then signatures (batch-verified), the tree and the index files
//! in parallel.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;
use rayon::prelude::*;
use serde::Serialize;

use crate::batch_verify;
use crate::checkpoint;
use crate::codec;
use crate::digest::Digest;
use crate::entry::{ArtifactMeta, Entry, Payload, signature_message};
use crate::error::Result;
use crate::facts;
use crate::keys::{PublicKey, Role};
use crate::merkle::{self, Hash, HashReader};
use crate::registry::{KeyState, Registry};
use crate::store::layout;
use crate::store::{Commit, Ledger, Tag, View};
use crate::trust;

/// Signatures verified per batch equation (larger batches amortise more of the scalar work;
/// a failing batch is bisected, so one bad signature costs about two batches more).
const BATCH: usize = 4096;
/// Below this, a failing batch is checked one signature at a time.
const BISECT_DOWN_TO: usize = 16;
/// Failures named per structure before the rest are counted in one line.
const MAX_NAMED: usize = 1000;

/// One thing that failed verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Log index of the entry concerned, when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The structure: `log`, `entry`, `artifact`, `tree`, `registry`, `index`, `checkpoint`.
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
    /// What the verification trusted and why, when trust roots were given and held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted: Option<trust::Trusted>,
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
    /// Adds many failures of one structure, naming at most `MAX_NAMED`.
    fn fail_many(&mut self, structure: &'static str, found: Vec<(Option<u64>, String)>) {
        let extra = found.len().saturating_sub(MAX_NAMED);
        for (index, reason) in found.into_iter().take(MAX_NAMED) {
            self.fail(index, structure, reason);
        }
        if extra > 0 {
            self.fail(
                None,
                structure,
                format!("… and {extra} more {structure} failures"),
            );
        }
    }
}

/// Options for [`verify`].
#[derive(Default)]
pub struct Options<'a> {
    /// An older checkpoint note an auditor kept, to prove consistency with.
    pub auditor_checkpoint: Option<(String, Vec<u8>)>,
    /// Called with (done, total) as entries are checked.
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
    /// The trust roots to anchor the ledger in ([`trust::check`]); `None` checks integrity only.
    pub trust: Option<&'a trust::Roots>,
}

/// The tree recomputed from the leaves: `levels[l][n]` is the hash of the complete subtree
/// at level `l`, position `n`.
struct Levels(Vec<Vec<Hash>>);

impl Levels {
    /// Builds every complete subtree hash from the leaves, one level at a time in parallel.
    fn build(leaves: Vec<Hash>) -> Levels {
        let mut levels = vec![leaves];
        while levels.last().expect("one level").len() >= 2 {
            let next: Vec<Hash> = levels
                .last()
                .expect("one level")
                .par_chunks_exact(2)
                .map(|p| tlog_tiles::tlog::node_hash(p[0], p[1]))
                .collect();
            levels.push(next);
        }
        Levels(levels)
    }
    fn get(&self, stored_index: u64) -> Option<Hash> {
        let (level, n) = tlog_tiles::tlog::split_stored_hash_index(stored_index);
        self.0.get(level as usize)?.get(n as usize).copied()
    }
}

impl HashReader for Levels {
    fn read_hashes(
        &self,
        indexes: &[u64],
    ) -> std::result::Result<Vec<Hash>, tlog_tiles::tlog::Error> {
        merkle::read_each(indexes, |i| self.get(i))
    }
}

/// The log's records, located by one framing walk.
#[derive(Default)]
struct Framed {
    /// Offset of each entry record.
    entries: Vec<u64>,
    /// (offset, entry index, the digest it states) of each blob record.
    blobs: Vec<(u64, u64, Digest)>,
    /// For each blob record, the index of the entry whose record it follows (directly or
    /// after that entry's other blob records), if it follows one.
    follows: Vec<Option<u64>>,
    /// (offset, commit) of each commit record.
    commits: Vec<(u64, Commit)>,
    /// Offset of each registry record and the size of the commit that closes its batch.
    registries: Vec<(u64, u64)>,
    /// Offset of each checkpoint record and the size of the commit that closes its batch.
    checkpoints: Vec<(u64, u64)>,
    /// For each commit, whether its batch holds a registry record.
    batch_registry: Vec<bool>,
}

/// An entry decoded in parallel: its leaf hash, and its id and decoded form if it decodes.
type Decoded = (Hash, std::result::Result<(Entry, Digest), String>);

/// Verifies everything in `ledger`. Storage errors are returned; every integrity problem is
/// a [`Failure`] in the report.
pub fn verify(ledger: &Ledger, opts: &Options) -> Result<Report> {
    // A log that every other verb refuses (damage past the last commit that checks) is read
    // as its index describes it, so that every difference is named; if even that fails, the
    // refusal stands.
    let view = match ledger.snapshot() {
        Ok(v) => v,
        Err(e @ crate::error::Error::Corrupt(_)) => ledger.forensic_snapshot().map_err(|_| e)?,
        Err(e) => return Err(e),
    };
    let mut report = Report {
        size: view.size(),
        ..Report::default()
    };
    let size = view.size();
    let log = view.log();

    let framed = frame(&view, &mut report);
    if let Some(p) = opts.progress {
        p(0, size);
    }

    // Commit check hashes, entries (decode, id, leaf hash) and blob digests, all in parallel.
    let (bad_commits, (decoded, blob_digests)) = rayon::join(
        || {
            framed
                .commits
                .par_iter()
                .filter(|(off, c)| !c.checks(log, *off))
                .map(|(off, c)| (*off, c.size))
                .collect::<Vec<_>>()
        },
        || {
            rayon::join(
                || {
                    framed
                        .entries
                        .par_iter()
                        .map(|&off| {
                            let body = record_body(log, off);
                            let leaf = merkle::leaf_hash(body);
                            let decoded = Entry::from_bytes(body)
                                .map(|e| (e, Digest::of(&body[..body.len() - 64])))
                                .map_err(|e| e.to_string());
                            (leaf, decoded)
                        })
                        .collect::<Vec<Decoded>>()
                },
                || {
                    framed
                        .blobs
                        .par_iter()
                        .map(|&(off, _, _)| Digest::of(layout::blob_parts(record_body(log, off)).2))
                        .collect::<Vec<Digest>>()
                },
            )
        },
    );
    // Only when the log itself is intact is rebuilding the index the remedy for index faults.
    let log_intact = bad_commits.is_empty();
    report.fail_many(
        "log",
        bad_commits
            .into_iter()
            .map(|(off, size)| {
                (None, format!("the batch closed by the commit at log offset {off} (size {size}) does not match its check hash: stored bytes were altered"))
            })
            .collect(),
    );
    report.entries_checked = decoded.len() as u64;
    if let Some(p) = opts.progress {
        p(size / 2, size);
    }

    // The ordered fold: positions, genesis, registry at each position, registry snapshots.
    let origin = match decoded.first().map(|(_, d)| d) {
        Some(Ok((e, _))) => match &e.body.payload {
            Payload::Genesis(g) => g.origin.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    // The ordered fold is serial; the tree and the index files need only the framing and the
    // decoded entries, so the other cores check them meanwhile.
    let leaves: Vec<Hash> = decoded.iter().map(|(leaf, _)| *leaf).collect();
    let ((registry, to_verify, with_facts), ((levels, tree_failures), index_failures)) =
        rayon::join(
            || fold(&mut report, &view, &framed, &decoded, size),
            || {
                rayon::join(
                    || check_tree(&view, &framed, leaves),
                    || check_indexes(&view, &framed, &decoded, log_intact),
                )
            },
        );

    // Signatures on every core; meanwhile the artifacts: each blob named by the entry that
    // carried it, each named digest stored.
    report.signatures_checked = to_verify.len() as u64;
    let (bad, artifact_failures) = rayon::join(
        || {
            to_verify
                .par_chunks(BATCH)
                .flat_map_iter(bad_signatures)
                .collect::<Vec<u64>>()
        },
        || check_artifacts(log, &framed, &decoded, &blob_digests),
    );
    report.fail_many(
        "entry",
        bad.into_iter()
            .map(|i| (Some(i), format!("entry {i}: the signature does not verify")))
            .collect(),
    );
    for (structure, found) in tree_failures.into_iter().chain(index_failures) {
        report.fail_many(structure, found);
    }

    report.artifacts_checked = blob_digests.len() as u64;
    report.fail_many("artifact", artifact_failures);
    // Importer facts: re-parse each artifact and compare with what was recorded. Facts
    // recorded by another parser version are not comparable and are skipped.
    let facts_failures: Vec<(Option<u64>, String)> = with_facts
        .par_iter()
        .filter_map(|(index, meta)| {
            let bytes = view.blob(&meta.content).ok()??;
            match facts::check(meta, bytes) {
                Ok(()) | Err(facts::FactsMismatch::ParserVersion { .. }) => None,
                Err(e) => Some((Some(*index), format!("entry {index}: {e}"))),
            }
        })
        .collect();
    report.fail_many("artifact", facts_failures);

    let complete = levels.0.first().map_or(0, Vec::len) as u64 == size && size > 0;
    let root = complete.then(|| merkle::root(size, &levels).ok()).flatten();
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
    // Every stored checkpoint record: a note of a tree no larger than the log at its commit.
    let mut notes = Vec::new();
    let ever_admins: Vec<PublicKey> = registry
        .keys()
        .values()
        .filter(|s| s.roles.contains(&Role::Admin))
        .map(|s| s.public_key)
        .collect();
    for &(off, at) in &framed.checkpoints {
        let note = record_body(log, off).to_vec();
        let source = if Some(note.as_slice()) == view.latest_checkpoint()
            && off == view.head().commit.checkpoint
        {
            "latest stored checkpoint".to_string()
        } else {
            format!("the checkpoint stored at log offset {off}")
        };
        if let Ok(cp) = checkpoint::open(&note, &origin, &ever_admins)
            && cp.size > at
            && cp.size <= size
        {
            report.fail(
                None,
                "checkpoint",
                format!(
                    "{source} covers {} entries, more than the log held at its commit ({at})",
                    cp.size
                ),
            );
        }
        notes.push((source, note));
    }
    if view.latest_checkpoint().is_none() && view.head().commit.checkpoint != 0 {
        report.fail(
            None,
            "log",
            "the newest commit names a checkpoint record that is not there",
        );
    }
    if let Some(a) = &opts.auditor_checkpoint {
        notes.push(a.clone());
    }
    let mut latest = None;
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
                } else if !complete || merkle::root(cp.size, &levels).ok() != Some(cp.root) {
                    report.fail(None, "checkpoint", format!(
                        "{source} (size {}) does not match the recomputed tree: history was rewritten",
                        cp.size
                    ));
                } else if let (Some(root), Ok(proof)) =
                    (root, merkle::prove_consistency(size, cp.size, &levels))
                    && !merkle::check_consistency(&proof, size, root, cp.size, cp.root)
                {
                    report.fail(
                        None,
                        "checkpoint",
                        format!("{source}: the consistency proof does not check"),
                    );
                }
                if latest.is_none() && view.latest_checkpoint() == Some(&note[..]) {
                    latest = Some((note.clone(), cp.clone()));
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
    // Trust: the roots the auditor holds must anchor this ledger.
    if let (Some(roots), Some(root), Some((_, Ok((g, id))))) = (opts.trust, root, decoded.first()) {
        let root_at = |n: u64| (n <= size).then(|| merkle::root(n, &levels).ok()).flatten();
        let latest = latest.as_ref().map(|(n, cp)| (n.as_slice(), cp.clone()));
        match trust_subject(g, *id, &registry, size, root, latest, &root_at) {
            Some(subject) => match trust::check(&subject, roots) {
                Ok(t) => report.trusted = Some(t),
                Err(fails) => {
                    for f in fails {
                        report.fail(None, "trust", f);
                    }
                }
            },
            None => report.fail(Some(0), "trust", "entry 0 is not a genesis entry"),
        }
    }
    report
        .failures
        .sort_by_key(|f| (f.index.is_none(), f.index));
    Ok(report)
}

/// The ordered fold over the decoded entries: the registry at each position (so each signer's
/// key and role at its entry), the signatures to check, the artifacts whose facts to re-parse,
/// and the registry records — each snapshot, each batch's, and the newest commit's — compared
/// with the registry the key entries define. Failures go to `report` in log order.
#[allow(clippy::type_complexity)]
fn fold(
    report: &mut Report,
    view: &View,
    framed: &Framed,
    decoded: &[Decoded],
    size: u64,
) -> (Registry, Vec<ToVerify>, Vec<(u64, ArtifactMeta)>) {
    let log = view.log();
    let mut registry = Registry::default();
    let mut genesis = Digest::ZERO;
    let mut to_verify: Vec<ToVerify> = Vec::with_capacity(decoded.len());
    // A ledger has few keys: decompress each once, not once per entry.
    let mut points: BTreeMap<PublicKey, Option<VerifyingKey>> = BTreeMap::new();
    let mut snapshots = framed.registries.iter().peekable();
    let mut with_facts = Vec::new();
    for (index, (_, entry)) in decoded.iter().enumerate() {
        let index = index as u64;
        match entry {
            Err(e) => report.fail(
                Some(index),
                "entry",
                format!("entry {index} does not decode: {e}"),
            ),
            Ok((entry, id)) => {
                if index == 0 {
                    genesis = *id;
                }
                match registry.admit_unverified(entry, index, &genesis) {
                    Ok(public) => {
                        let key = *points
                            .entry(public)
                            .or_insert_with(|| public.verifying_key());
                        to_verify.push(ToVerify {
                            index,
                            public,
                            key,
                            id: *id,
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
            }
        }
        while let Some(&&(off, at)) = snapshots.peek() {
            if at > index + 1 {
                break;
            }
            snapshots.next();
            let recomputed: Vec<&KeyState> = registry.keys().values().collect();
            if at != index + 1 || record_body(log, off) != codec::encode(&recomputed).as_slice() {
                report.fail(
                None,
                "registry",
                format!(
                    "the key registry snapshot at log offset {off} differs from the one the key entries define at size {at}"
                ),
            );
            }
        }
    }
    // A batch holds a registry record exactly when it holds a key entry.
    let is_key = |i: u64| {
        matches!(
            decoded.get(i as usize).map(|(_, d)| d),
            Some(Ok((e, _))) if matches!(
                e.body.payload,
                Payload::Genesis(_) | Payload::KeyAdd(_) | Payload::KeyRotate(_) | Payload::KeyRevoke(_)
            )
        )
    };
    let mut before = 0u64;
    for ((off, c), has) in framed.commits.iter().zip(&framed.batch_registry) {
        let keys = (before..c.size.min(decoded.len() as u64)).any(is_key);
        if keys != *has {
            report.fail(
            None,
            "registry",
            if keys {
                format!("the batch closed by the commit at log offset {off} holds a key entry but no registry record")
            } else {
                format!("the batch closed by the commit at log offset {off} holds a registry record but no key entry")
            },
        );
        }
        before = before.max(c.size);
    }
    if !decoded.is_empty() && decoded.len() as u64 == size {
        match view.registry() {
        Ok(r) if r == registry => {}
        _ => report.fail(
            None,
            "registry",
            "the key registry the newest commit names differs from the one the key entries define",
        ),
    }
    }
    (registry, to_verify, with_facts)
}

/// What verifying the whole ledger established, for [`trust::check`]: `genesis` is entry 0
/// (id `id`), `registry` the one the key entries define, `latest` the latest stored
/// checkpoint as verified above.
fn trust_subject<'a>(
    genesis: &'a Entry,
    id: Digest,
    registry: &Registry,
    size: u64,
    root: Hash,
    latest: Option<(&'a [u8], checkpoint::Verified)>,
    root_at: &'a dyn Fn(u64) -> Option<Hash>,
) -> Option<trust::Subject<'a>> {
    let Payload::Genesis(g) = &genesis.body.payload else {
        return None;
    };
    let admins = registry
        .keys()
        .values()
        .filter(|s| s.roles.contains(&Role::Admin) && s.active_at(size.saturating_sub(1)))
        .map(|s| trust::AdminKey {
            name: s.name.clone(),
            public_key: s.public_key,
        })
        .collect();
    Some(trust::Subject {
        what: "the ledger",
        origin: &g.origin,
        genesis: id,
        genesis_signer: genesis.body.signer,
        genesis_admins: g
            .admins
            .iter()
            .map(|a| trust::AdminKey {
                name: a.name.clone(),
                public_key: a.public_key,
            })
            .collect(),
        admins,
        checkpoint: latest,
        size,
        root,
        whole_tree: true,
        root_at,
    })
}

/// The body of the record at `offset`, which the framing walk found well formed.
fn record_body(log: &[u8], offset: u64) -> &[u8] {
    layout::record_at(log, offset)
        .expect("framing walk found a record here")
        .body
}

/// Walks the log's records once: framing, and each commit's counts and pointers.
fn frame(view: &View, report: &mut Report) -> Framed {
    let log = view.log();
    let mut f = Framed::default();
    let (mut size, mut blobs) = (0u64, 0u64);
    let mut batch_start = layout::MAGIC.len() as u64;
    let (mut registry, mut checkpoint) = (0u64, 0u64);
    let mut registries_in_batch = Vec::new();
    let mut checkpoints_in_batch = Vec::new();
    let mut last_entry: Option<u64> = None;
    if !log.starts_with(layout::MAGIC) {
        report.fail(
            None,
            "log",
            "the log does not start with the evl-log/2 magic",
        );
        return f;
    }
    for r in layout::records(log, layout::MAGIC.len() as u64) {
        let r = match r {
            Ok(r) => r,
            Err((at, e)) => {
                report.fail(
                    None,
                    "log",
                    format!("the log holds no well-formed record at offset {at}: {e:?}"),
                );
                break;
            }
        };
        match r.tag {
            Tag::Entry => {
                f.entries.push(r.offset);
                last_entry = Some(size);
                size += 1;
            }
            Tag::Blob => {
                let (stated, entry, _) = layout::blob_parts(r.body);
                f.blobs.push((r.offset, entry, Digest(stated)));
                f.follows.push(last_entry);
                blobs += 1;
            }
            Tag::Registry => {
                registries_in_batch.push(r.offset);
                registry = r.offset;
                last_entry = None;
            }
            Tag::Checkpoint => {
                checkpoints_in_batch.push(r.offset);
                checkpoint = r.offset;
                last_entry = None;
            }
            Tag::Commit => {
                last_entry = None;
                let c = Commit::decode(r.body).expect("framing checked the length");
                let mut wrong = Vec::new();
                if c.size != size {
                    wrong.push(format!("size {} (the log holds {size} entries)", c.size));
                }
                if c.blobs != blobs {
                    wrong.push(format!("{} blobs (the log holds {blobs})", c.blobs));
                }
                if c.batch_start != batch_start {
                    wrong.push(format!(
                        "batch start {} (expected {batch_start})",
                        c.batch_start
                    ));
                }
                if c.registry != registry {
                    wrong.push(format!(
                        "registry record {} (expected {registry})",
                        c.registry
                    ));
                }
                if c.checkpoint != checkpoint {
                    wrong.push(format!(
                        "checkpoint record {} (expected {checkpoint})",
                        c.checkpoint
                    ));
                }
                if !wrong.is_empty() {
                    report.fail(
                        None,
                        "log",
                        format!(
                            "the commit at log offset {} records {}",
                            r.offset,
                            wrong.join(", ")
                        ),
                    );
                }
                f.batch_registry.push(!registries_in_batch.is_empty());
                for off in registries_in_batch.drain(..) {
                    f.registries.push((off, size));
                }
                for off in checkpoints_in_batch.drain(..) {
                    f.checkpoints.push((off, size));
                }
                f.commits.push((r.offset, c));
                batch_start = r.end();
            }
        }
    }
    if batch_start != view.head().end() {
        report.fail(
            None,
            "log",
            format!("records after the last commit at offset {batch_start} are not committed"),
        );
    }
    f
}

/// The tree: recomputed levels, compared with the stored hashes and every commit's root.
#[allow(clippy::type_complexity)]
fn check_tree(
    view: &View,
    framed: &Framed,
    leaves: Vec<Hash>,
) -> (Levels, Vec<(&'static str, Vec<(Option<u64>, String)>)>) {
    let size = leaves.len() as u64;
    let levels = Levels::build(leaves);
    // The file as it is on disk, as for the other index files (see `check_indexes`).
    let file = view.stored_hashes().file_bytes();
    let have = (file.len() / 32) as u64;
    let stored_at = |i: u64| {
        Hash(
            file[i as usize * 32..i as usize * 32 + 32]
                .try_into()
                .expect("32"),
        )
    };
    let want = tlog_tiles::tlog::stored_hash_count(size);
    let mut tree = Vec::new();
    if have > want {
        tree.push((
            None,
            format!("{have} tree hashes are stored; the entries define {want}"),
        ));
    }
    let roots: Vec<(Option<u64>, String)> = framed
        .commits
        .par_iter()
        .filter(|(_, c)| c.size <= size && merkle::root(c.size, &levels).ok() != Some(c.root))
        .map(|(off, c)| {
            (None, format!("the commit at log offset {off} records a tree root for size {} that the entries do not give", c.size))
        })
        .collect();
    // When every commit's root matches the entries, a differing stored hash is the index
    // file's fault; otherwise it marks where the entries changed.
    let index_only = roots.is_empty();
    let mismatched: Vec<(Option<u64>, String)> = (0..want.min(have))
        .into_par_iter()
        .filter(|&i| Some(stored_at(i)) != levels.get(i))
        .map(|i| {
            let (level, n) = tlog_tiles::tlog::split_stored_hash_index(i);
            if index_only {
                (None, format!("index/hashes record {i} (level {level}, node {n}) differs from the tree the entries define (delete the ledger's index directory to rebuild it from the log)"))
            } else if level == 0 {
                (Some(n), format!("entry {n} is not the entry the tree recorded at that position (entries reordered, replaced or the leaf hash altered)"))
            } else {
                (None, format!("stored tree hash {i} (level {level}, node {n}) differs from the recomputed one"))
            }
        })
        .collect();
    if index_only {
        return (
            levels,
            vec![("index", tree.into_iter().chain(mismatched).collect())],
        );
    }
    tree.extend(mismatched);
    (levels, vec![("tree", tree), ("log", roots)])
}

/// An 8-byte offset record (`index/entries`, `index/commits`) in the first 8 bytes of a
/// record-sized buffer: what `check_indexes` compares a file's record with, without a heap
/// allocation per record (a million of them contend for the allocator's lock).
fn offset_record(offset: u64) -> [u8; layout::INDEX_RECORD] {
    let mut r = [0; layout::INDEX_RECORD];
    r[..8].copy_from_slice(&offset.to_le_bytes());
    r
}

/// The index files, compared with what the log defines.
#[allow(clippy::type_complexity)]
fn check_indexes(
    view: &View,
    framed: &Framed,
    decoded: &[Decoded],
    log_intact: bool,
) -> Vec<(&'static str, Vec<(Option<u64>, String)>)> {
    let mut found: Vec<(Option<u64>, String)> = Vec::new();
    let hint = if log_intact {
        "delete the ledger's index directory to rebuild it from the log"
    } else {
        "the log was altered too: keep the index as evidence"
    };
    // The index files as they are on disk (not as a reader rebuilds them past the durability
    // mark): each complete record must be the one the log defines; a file may be shorter (a
    // reader reads the rest from the log) but not longer.
    let mut file = |name: &str,
                    bytes: &[u8],
                    width: usize,
                    want: usize,
                    expect: &(dyn Fn(usize) -> Option<[u8; layout::INDEX_RECORD]> + Sync),
                    says: &(dyn Fn(usize) -> (Option<u64>, String) + Sync)| {
        let have = bytes.len() / width;
        if have > want {
            found.push((
                None,
                format!("the {name} index holds {have} records; the log defines {want} ({hint})"),
            ));
        }
        found.extend(
            (0..have.min(want))
                .into_par_iter()
                .filter(|&i| {
                    expect(i).is_some_and(|e| bytes[i * width..(i + 1) * width] != e[..width])
                })
                .map(|i| {
                    let (index, what) = says(i);
                    (index, format!("{what} ({hint})"))
                })
                .collect::<Vec<_>>(),
        );
    };
    file(
        "entry",
        view.entry_offsets().file_bytes(),
        8,
        framed.entries.len(),
        &|i| Some(offset_record(framed.entries[i])),
        &|i| {
            (
                Some(i as u64),
                format!("the entry index misplaces entry {i}"),
            )
        },
    );
    // An entry that does not decode has no id to compare (it is named as an entry failure).
    let id_of = |i: usize| decoded[i].1.as_ref().ok().map(|(_, id)| id.0);
    file(
        "id",
        view.ids().dense().file_bytes(),
        layout::INDEX_RECORD,
        decoded.len(),
        &|i| Some(layout::index_record("ids", i as u64, &id_of(i)?, i as u64)),
        &|i| {
            (
                Some(i as u64),
                format!("the id index record of entry {i} does not match its id"),
            )
        },
    );
    file(
        "blob",
        view.blobs().dense().file_bytes(),
        layout::INDEX_RECORD,
        framed.blobs.len(),
        &|j| {
            let (off, _, d) = framed.blobs[j];
            Some(layout::index_record("blobs", j as u64, &d.0, off))
        },
        &|j| {
            (
                None,
                format!("blob index record {j} does not match the log"),
            )
        },
    );
    file(
        "commit",
        view.commit_offsets().file_bytes(),
        8,
        framed.commits.len(),
        &|c| Some(offset_record(framed.commits[c].0)),
        &|c| {
            (
                None,
                format!("commit index record {c} does not match the log"),
            )
        },
    );
    let (ids, blobs) = (view.ids(), view.blobs());
    // Each lookup run must be exactly the records the log defines for its range, sorted and
    // each with the check of its place.
    let id_recs: Vec<([u8; 32], u64)> = decoded
        .iter()
        .enumerate()
        .map(|(i, (_, d))| (d.as_ref().map_or([0; 32], |(_, id)| id.0), i as u64))
        .collect();
    let blob_recs: Vec<([u8; 32], u64)> =
        framed.blobs.iter().map(|(off, _, d)| (d.0, *off)).collect();
    for (keyed, recs) in [(ids, &id_recs), (blobs, &blob_recs)] {
        let runs: Vec<(u64, u64, bool)> = keyed
            .runs()
            .par_iter()
            .map(|run| {
                let mut want: Vec<([u8; 32], u64)> = recs
                    .get(run.start as usize..run.end as usize)
                    .unwrap_or_default()
                    .to_vec();
                want.sort_unstable();
                let bytes = layout::run_bytes(keyed.name(), run.start, run.end, &want);
                let ok = want.len() as u64 == run.end - run.start
                    && bytes[layout::RUN_MAGIC.len()..] == *run.records();
                (run.start, run.end, ok)
            })
            .collect();
        for (start, end, ok) in runs {
            if !ok {
                found.push((None, format!("the lookup run over index records {start}..{end} does not match them ({hint})")));
            }
        }
    }
    // Duplicate entry ids.
    let mut sorted: Vec<(Digest, u64)> = decoded
        .iter()
        .enumerate()
        .filter_map(|(i, (_, d))| Some((d.as_ref().ok()?.1, i as u64)))
        .collect();
    sorted.par_sort_unstable();
    let mut entry = Vec::new();
    for w in sorted.windows(2) {
        if w[0].0 == w[1].0 {
            entry.push((
                Some(w[1].1),
                format!(
                    "entry {} ({}) duplicates entry {}",
                    w[1].1,
                    w[1].0.short(),
                    w[0].1
                ),
            ));
        }
    }
    vec![("index", found), ("entry", entry)]
}

/// Blob records, exactly as FORMAT.md §"The log" places them: right after each entry's record,
/// one blob record for each digest it carries that no earlier entry carried — an artifact's
/// content, then its parsed facts; a disposition's document — in that order, each stating
/// that entry's index and holding bytes that hash to its digest, an artifact's content of
/// exactly the size the entry states. Nothing else is a blob record.
fn check_artifacts(
    log: &[u8],
    framed: &Framed,
    decoded: &[Decoded],
    hashed: &[Digest],
) -> Vec<(Option<u64>, String)> {
    // The digests entry `index` carries (at most two; no allocation per entry).
    let carried = |index: u64| -> ([Digest; 2], usize) {
        match decoded.get(index as usize).map(|(_, d)| d) {
            Some(Ok((e, _))) => match &e.body.payload {
                Payload::Artifact(m) => match &m.facts {
                    Some(f) => ([m.content, f.digest], 2),
                    None => ([m.content, Digest::ZERO], 1),
                },
                Payload::Disposition(d) => ([d.document, Digest::ZERO], 1),
                _ => ([Digest::ZERO; 2], 0),
            },
            _ => ([Digest::ZERO; 2], 0),
        }
    };
    let mut found = Vec::new();
    // The blob records that follow each entry: (entry, blob record), in log order.
    let mut following: Vec<(u64, usize)> = Vec::with_capacity(framed.blobs.len());
    for (j, ((off, stated_entry, stated), actual)) in framed.blobs.iter().zip(hashed).enumerate() {
        if stated != actual {
            found.push((Some(*stated_entry), format!(
                "artifact {stated} (log offset {off}) does not hash to its address (bytes altered)"
            )));
        }
        match framed.follows[j] {
            Some(e) => {
                following.push((e, j));
                if e != *stated_entry {
                    found.push((Some(e), format!(
                        "the blob record of {stated} (log offset {off}) follows entry {e} but names entry {stated_entry}"
                    )));
                }
            }
            None => found.push((
                None,
                format!(
                    "the blob record of {stated} (log offset {off}) does not follow an entry record"
                ),
            )),
        }
    }
    // Membership only (nothing is iterated, so no order reaches the report), over up to a
    // million digests: hash sets, not B-trees, whose random probes miss the cache at every
    // level. SipHash with a random key: stated digests are whatever the file holds.
    let anywhere: std::collections::HashSet<Digest> =
        framed.blobs.iter().map(|(_, _, d)| *d).collect();
    // The first blob record of each digest stored so far (its keys: the digests stored).
    let mut first_stored: std::collections::HashMap<Digest, usize> =
        std::collections::HashMap::with_capacity(framed.blobs.len());
    // Blob records follow entries in log order, so each entry's are the next run of
    // `following` (stably sorted, should the log hold them otherwise).
    if !following.is_sorted_by_key(|&(e, _)| e) {
        following.sort_by_key(|&(e, _)| e);
    }
    let mut next = 0;
    let (mut want, mut have_digests) = (Vec::new(), Vec::new());
    for index in 0..decoded.len() as u64 {
        let (carries, n) = carried(index);
        let carries = &carries[..n];
        want.clear();
        for &d in carries {
            if !first_stored.contains_key(&d) && !want.contains(&d) {
                want.push(d);
            }
        }
        for &d in carries {
            if !anywhere.contains(&d) {
                found.push((
                    Some(index),
                    format!("entry {index} refers to artifact {d}, whose bytes are missing"),
                ));
            }
        }
        while following.get(next).is_some_and(|&(e, _)| e < index) {
            next += 1;
        }
        let from = next;
        while following.get(next).is_some_and(|&(e, _)| e == index) {
            next += 1;
        }
        let have = &following[from..next];
        have_digests.clear();
        have_digests.extend(have.iter().map(|&(_, j)| framed.blobs[j].2));
        if have_digests != want {
            for d in &want {
                if !have_digests.contains(d) && anywhere.contains(d) {
                    found.push((Some(index), format!(
                        "entry {index} is the first to carry artifact {d}, but its blob record does not follow the entry's"
                    )));
                }
            }
            for (pos, d) in have_digests.iter().enumerate() {
                let off = framed.blobs[have[pos].1].0;
                if !want.contains(d) {
                    let why = if first_stored.contains_key(d) {
                        "is stored twice"
                    } else {
                        "is not carried by the entry it follows"
                    };
                    found.push((
                        Some(index),
                        format!("artifact {d} (log offset {off}) {why}"),
                    ));
                } else if want.get(pos) != Some(d) {
                    found.push((Some(index), format!(
                        "artifact {d} (log offset {off}) is stored out of order after entry {index}"
                    )));
                }
            }
        }
        for (pos, &(_, j)) in have.iter().enumerate() {
            first_stored.entry(have_digests[pos]).or_insert(j);
        }
        // An artifact's stated size is its content's length.
        if let Some(Ok((e, _))) = decoded.get(index as usize).map(|(_, d)| d)
            && let Payload::Artifact(m) = &e.body.payload
            && let Some(&j) = first_stored.get(&m.content)
        {
            let (off, _, _) = framed.blobs[j];
            let len = (record_body(log, off).len() - layout::BLOB_HEAD) as u64;
            if len != m.size {
                found.push((Some(index), format!(
                    "entry {index} states {} bytes for artifact {}, whose stored content has {len}",
                    m.size, m.content
                )));
            }
        }
    }
    found
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

/// Indexes in `chunk` whose signature fails: one batch equation for all, then halves of a
/// failing batch, then one by one, to name the culprits.
fn bad_signatures(chunk: &[ToVerify]) -> Vec<u64> {
    let msgs: Vec<Vec<u8>> = chunk.iter().map(|v| signature_message(&v.id)).collect();
    let mut bad = Vec::new();
    find_bad(chunk, &msgs, &mut bad);
    bad
}

fn find_bad(chunk: &[ToVerify], msgs: &[Vec<u8>], bad: &mut Vec<u64>) {
    let items: Option<Vec<batch_verify::Item>> = chunk
        .iter()
        .zip(msgs)
        .map(|(v, m)| {
            Some(batch_verify::Item {
                key: v.key.as_ref()?,
                message: m,
                signature: &v.signature,
            })
        })
        .collect();
    if items.is_some_and(|items| batch_verify::verify(&items)) {
        return;
    }
    if chunk.len() > BISECT_DOWN_TO {
        let mid = chunk.len() / 2;
        find_bad(&chunk[..mid], &msgs[..mid], bad);
        find_bad(&chunk[mid..], &msgs[mid..], bad);
        return;
    }
    bad.extend(
        chunk
            .iter()
            .zip(msgs)
            .filter(|(v, m)| {
                !crate::keys::verify(&v.public, m, &crate::keys::SignatureBytes(v.signature))
            })
            .map(|(v, _)| v.index),
    );
}
