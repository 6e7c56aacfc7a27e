//! Bundles: one self-contained file carrying a packet's lineage, basis, artifacts,
//! dispositions, the key entries that authorize their signers, inclusion proofs of every
//! carried entry and a signed checkpoint, so an auditor can verify it offline
//! (docs/FORMAT.md §"Bundles").
//!
//! Bytes: `domain::BUNDLE_MAGIC` followed by the canonical encoding (`crate::codec`) of
//! [`BundleBody`], at most [`MAX_BUNDLE_BYTES`] in all.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::codec;
use crate::digest::{Digest, EntryId};
use crate::domain;
use crate::entry::{Entry, Payload};
use crate::evaluate::{EntrySource, EvalError};
use crate::keys::{PublicKey, Role};
use crate::merkle::{self, Hash};
use crate::registry::Registry;
use crate::replay;
use crate::store::Ledger;
use crate::trust::{self, Roots, Trusted};

/// Largest bundle accepted.
pub const MAX_BUNDLE_BYTES: usize = 256 * 1024 * 1024;
/// The bundle body version this evl writes and reads.
pub const BUNDLE_VERSION: u16 = 1;

/// One carried entry: its log index, stored bytes and inclusion proof in the checkpoint's tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundledEntry {
    pub index: u64,
    pub bytes: Vec<u8>,
    pub proof: Vec<[u8; 32]>,
}

/// What follows the magic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleBody {
    pub version: u16,
    /// The ledger's origin (checkpoint key name).
    pub origin: String,
    /// The packet revision the bundle was exported for.
    pub packet: EntryId,
    /// The signed checkpoint note every proof is checked against.
    pub checkpoint: Vec<u8>,
    /// Entries in increasing index order.
    pub entries: Vec<BundledEntry>,
    /// Artifact bytes and disposition documents, in digest order.
    pub blobs: Vec<Vec<u8>>,
}

/// Why a bundle cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Ledger(#[from] crate::error::Error),
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error("the checkpoint does not verify against this ledger: {0}")]
    Checkpoint(String),
    #[error(
        "entry {0} is at index {1}, beyond the checkpoint's tree of {2} entries; run `evl checkpoint` or export with --checkpoint-key"
    )]
    BeyondCheckpoint(EntryId, u64, u64),
}

fn admins(reg: &Registry) -> Vec<PublicKey> {
    reg.keys()
        .values()
        .filter(|s| s.roles.contains(&Role::Admin))
        .map(|s| s.public_key)
        .collect()
}

/// The admin keys of `reg` that count for a checkpoint of `size` entries (active at its last
/// entry), as docs/FORMAT.md §"Checkpoints" requires of the checkpoint's signer.
fn admins_at(reg: &Registry, size: u64) -> Vec<trust::AdminKey> {
    reg.keys()
        .values()
        .filter(|s| s.roles.contains(&Role::Admin) && s.active_at(size.saturating_sub(1)))
        .map(|s| trust::AdminKey {
            name: s.name.clone(),
            public_key: s.public_key,
        })
        .collect()
}

/// Exports the bundle of `packet_id` against `checkpoint_note` (which must verify).
pub fn export(
    ledger: &Ledger,
    packet_id: &EntryId,
    checkpoint_note: &[u8],
) -> Result<Vec<u8>, ExportError> {
    let origin = ledger.origin()?;
    let reg = ledger.registry()?;
    let cp = checkpoint::open(checkpoint_note, &origin, &admins(&reg))
        .map_err(|e| ExportError::Checkpoint(e.to_string()))?;
    let mut wanted: BTreeSet<EntryId> = BTreeSet::new();
    let mut blobs: BTreeMap<Digest, Vec<u8>> = BTreeMap::new();
    // The lineage, each revision's gate and basis.
    let mut cur = Some(*packet_id);
    let mut packets = BTreeSet::new();
    while let Some(id) = cur {
        let (_, e) = ledger.entry_by_id(&id)?;
        let Payload::Packet(p) = &e.body.payload else {
            return Err(EvalError::NotAPacket(id, e.body.payload.kind()).into());
        };
        if !packets.insert(id) {
            break;
        }
        wanted.insert(id);
        wanted.insert(p.gate);
        wanted.extend(p.basis.iter().copied());
        cur = p.parent;
    }
    // Key entries, dispositions of the lineage, and narrowing proposals with their decisions.
    // Dispositions, proposals and their decisions are looked for in the whole ledger: one
    // recorded after the checkpoint makes export fail (BeyondCheckpoint) rather than be left
    // out silently. Key entries after the checkpoint cannot concern anything inside it.
    let size = ledger.size()?;
    let mut extra = BTreeSet::new();
    for i in 0..size {
        let e = ledger.entry(i)?;
        let id = e.id();
        match &e.body.payload {
            Payload::Genesis(_)
            | Payload::KeyAdd(_)
            | Payload::KeyRotate(_)
            | Payload::KeyRevoke(_)
                if i < cp.size =>
            {
                wanted.insert(id);
            }
            Payload::Disposition(d) if packets.contains(&d.packet) => {
                wanted.insert(id);
            }
            Payload::Narrowing(n) if packets.contains(&n.packet) => {
                extra.insert(id);
            }
            _ => {}
        }
    }
    for i in 0..size {
        let e = ledger.entry(i)?;
        if let Payload::Annotation(a) = &e.body.payload
            && extra.contains(&a.subject)
        {
            wanted.insert(e.id());
        }
    }
    wanted.extend(extra);
    let mut entries = Vec::new();
    for id in &wanted {
        let (index, e) = ledger.entry_by_id(id)?;
        if index >= cp.size {
            return Err(ExportError::BeyondCheckpoint(*id, index, cp.size));
        }
        let proof = ledger.prove_inclusion(index, cp.size)?;
        match &e.body.payload {
            Payload::Artifact(m) => {
                let b = ledger.blob(&m.content)?.ok_or(EvalError::MissingBlob {
                    entry: *id,
                    content: m.content,
                })?;
                blobs.insert(m.content, b);
            }
            Payload::Disposition(d) => {
                if let Some(b) = ledger.blob(&d.document)? {
                    blobs.insert(d.document, b);
                }
            }
            _ => {}
        }
        entries.push(BundledEntry {
            index,
            bytes: ledger.entry_bytes(index)?,
            proof: proof.iter().map(|h| h.0).collect(),
        });
    }
    entries.sort_by_key(|e| e.index);
    let body = BundleBody {
        version: BUNDLE_VERSION,
        origin,
        packet: *packet_id,
        checkpoint: checkpoint_note.to_vec(),
        entries,
        blobs: blobs.into_values().collect(),
    };
    Ok([domain::BUNDLE_MAGIC, &codec::encode(&body)].concat())
}

/// What verifying a bundle found.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Report {
    pub packet: Option<EntryId>,
    pub checkpoint_size: u64,
    pub entries_checked: u64,
    pub artifacts_checked: u64,
    pub proofs_checked: u64,
    pub dispositions_replayed: u64,
    /// What the verification trusted and why (set when the trust roots held).
    pub trusted: Option<Trusted>,
    /// Each failure names the entry, blob or structure involved.
    pub failures: Vec<String>,
}

impl Report {
    /// Whether everything verified.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The verified content of a bundle, as an entry source for replay.
struct Carried {
    entries: BTreeMap<EntryId, (u64, Entry)>,
    blobs: BTreeMap<Digest, Vec<u8>>,
    registry: Registry,
}

impl EntrySource for Carried {
    fn entry(&self, id: &EntryId) -> Result<Option<(u64, Entry)>, EvalError> {
        Ok(self.entries.get(id).cloned())
    }
    fn blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, EvalError> {
        Ok(self.blobs.get(digest).cloned())
    }
    fn registry(&self) -> Result<Registry, EvalError> {
        Ok(self.registry.clone())
    }
}

/// The origin a bundle names, unverified: only to find the auditor state that may anchor it.
pub fn claimed_origin(bytes: &[u8]) -> Option<String> {
    let rest = bytes.strip_prefix(domain::BUNDLE_MAGIC)?;
    codec::decode::<BundleBody>(rest, MAX_BUNDLE_BYTES)
        .ok()
        .map(|b| b.origin)
}

/// The origin and checkpoint note a bundle claims, read without verifying anything (for a
/// witness policy check beside [`verify_bundle`]).
pub fn claimed_checkpoint(bytes: &[u8]) -> Option<(String, Vec<u8>)> {
    let rest = bytes.strip_prefix(domain::BUNDLE_MAGIC)?;
    codec::decode::<BundleBody>(rest, MAX_BUNDLE_BYTES)
        .ok()
        .map(|b| (b.origin, b.checkpoint))
}

/// Verifies a bundle offline, starting from `roots` (docs/FORMAT.md §"Bundles"): structure,
/// every signature (with the carried key entries), every artifact hash, every inclusion proof,
/// the checkpoint signature, that a trust root the verifier holds anchors the bundle
/// ([`trust::check`]), and replays every disposition. With no root at all, nothing is checked
/// and the report says so.
pub fn verify_bundle(bytes: &[u8], roots: &Roots) -> Report {
    let mut r = Report::default();
    if roots.is_empty() {
        r.failures
            .push(format!("the bundle is not verified: {}", trust::NO_ROOT));
        return r;
    }
    let Some(rest) = bytes.strip_prefix(domain::BUNDLE_MAGIC) else {
        r.failures
            .push("the file does not start with the evl bundle magic".into());
        return r;
    };
    let body: BundleBody = match codec::decode(rest, MAX_BUNDLE_BYTES) {
        Ok(b) => b,
        Err(e) => {
            r.failures
                .push(format!("the bundle body does not decode: {e}"));
            return r;
        }
    };
    if body.version != BUNDLE_VERSION {
        r.failures.push(format!(
            "bundle version {} is not one this evl reads",
            body.version
        ));
        return r;
    }
    r.packet = Some(body.packet);
    // Entries, in index order; the registry is folded from the carried key entries.
    let mut registry = Registry::default();
    let mut genesis = Digest::ZERO;
    let mut entries = BTreeMap::new();
    let mut decoded = Vec::new();
    let mut last: Option<u64> = None;
    for be in &body.entries {
        if last.is_some_and(|l| be.index <= l) {
            r.failures
                .push(format!("entry at index {} is out of order", be.index));
            continue;
        }
        last = Some(be.index);
        match Entry::from_bytes(&be.bytes) {
            Ok(e) => decoded.push((be, e)),
            Err(e) => r
                .failures
                .push(format!("entry at index {} does not decode: {e}", be.index)),
        }
    }
    if decoded.first().map(|(b, _)| b.index) != Some(0) {
        r.failures
            .push("the bundle does not carry the genesis entry (index 0)".into());
    }
    for (be, e) in &decoded {
        let id = e.id();
        if be.index == 0 {
            genesis = Digest::ZERO;
        }
        match registry.check_and_apply(e, be.index, &genesis) {
            Ok(()) => {
                if be.index == 0 {
                    genesis = id;
                }
                r.entries_checked += 1;
            }
            Err(err) => {
                r.failures
                    .push(format!("entry {} at index {}: {err}", id.short(), be.index))
            }
        }
        entries.insert(id, (be.index, e.clone()));
    }
    // The checkpoint, signed by an admin key of the carried registry that counted at its size.
    let cp = match checkpoint::open(&body.checkpoint, &body.origin, &admins(&registry)) {
        Ok(cp)
            if admins_at(&registry, cp.size)
                .iter()
                .any(|a| a.public_key.id() == cp.signer) =>
        {
            Some(cp)
        }
        Ok(cp) => {
            r.failures.push(format!(
                "the checkpoint is signed by key {}, which was not an admin key at size {}",
                cp.signer.0.short(),
                cp.size
            ));
            None
        }
        Err(e) => {
            r.failures
                .push(format!("the checkpoint does not verify: {e}"));
            None
        }
    };
    if let Some(cp) = &cp {
        r.checkpoint_size = cp.size;
        for (be, _) in &decoded {
            let proof: Vec<Hash> = be.proof.iter().map(|h| Hash(*h)).collect();
            if merkle::check_inclusion(
                &proof,
                cp.size,
                cp.root,
                be.index,
                merkle::leaf_hash(&be.bytes),
            ) {
                r.proofs_checked += 1;
            } else {
                r.failures.push(format!(
                    "the inclusion proof of entry at index {} does not lead to the checkpoint root",
                    be.index
                ));
            }
        }
    }
    // The trust roots: what the verifier already holds must anchor the genesis or checkpoint.
    let genesis_entry = decoded
        .first()
        .filter(|(b, _)| b.index == 0)
        .map(|(_, e)| e);
    if let (Some(cp), Some(g)) = (&cp, genesis_entry)
        && let Payload::Genesis(gp) = &g.body.payload
    {
        if gp.origin != body.origin {
            r.failures.push(format!(
                "the bundle names origin '{}' but its genesis entry names '{}'",
                body.origin, gp.origin
            ));
        } else if genesis == g.id() {
            let root_at = |n: u64| (n == cp.size).then_some(cp.root);
            let subject = trust::Subject {
                what: "the bundle",
                origin: &gp.origin,
                genesis,
                genesis_signer: g.body.signer,
                genesis_admins: gp
                    .admins
                    .iter()
                    .map(|a| trust::AdminKey {
                        name: a.name.clone(),
                        public_key: a.public_key,
                    })
                    .collect(),
                admins: admins_at(&registry, cp.size),
                checkpoint: Some((&body.checkpoint, cp.clone())),
                size: cp.size,
                root: cp.root,
                whole_tree: false,
                root_at: &root_at,
            };
            match trust::check(&subject, roots) {
                Ok(t) => r.trusted = Some(t),
                Err(fails) => r
                    .failures
                    .extend(fails.into_iter().map(|f| format!("trust: {f}"))),
            }
        }
    }
    // Blobs: each must be referenced by a carried entry; each referenced artifact present.
    let blobs: BTreeMap<Digest, Vec<u8>> = body
        .blobs
        .iter()
        .map(|b| (Digest::of(b), b.clone()))
        .collect();
    let mut referenced = BTreeSet::new();
    for (id, (_, e)) in &entries {
        match &e.body.payload {
            Payload::Artifact(m) => {
                referenced.insert(m.content);
                match blobs.get(&m.content) {
                    Some(b) if b.len() as u64 == m.size => r.artifacts_checked += 1,
                    Some(_) => r
                        .failures
                        .push(format!("artifact {} has the wrong length", id.short())),
                    None => r.failures.push(format!(
                        "the bytes of artifact {} ({}) are missing or altered",
                        id.short(),
                        m.file_name
                    )),
                }
            }
            Payload::Disposition(d) => {
                referenced.insert(d.document);
            }
            _ => {}
        }
    }
    for d in blobs.keys() {
        if !referenced.contains(d) {
            r.failures.push(format!(
                "carried bytes {} are referenced by no carried entry (altered?)",
                d.short()
            ));
        }
    }
    if !entries.contains_key(&body.packet) {
        r.failures
            .push(format!("the packet {} is not carried", body.packet.short()));
    }
    let src = Carried {
        entries,
        blobs,
        registry,
    };
    let dispositions: Vec<EntryId> = src
        .entries
        .iter()
        .filter(|(_, (_, e))| matches!(e.body.payload, Payload::Disposition(_)))
        .map(|(id, _)| *id)
        .collect();
    if r.trusted.is_none() && r.failures.is_empty() {
        r.failures
            .push("trust: nothing anchors the bundle's genesis entry and checkpoint".into());
    }
    if !r.failures.is_empty() {
        // Replaying evidence already known to be altered proves nothing more; say so.
        r.failures.push(format!(
            "{} disposition(s) not replayed because the checks above failed",
            dispositions.len()
        ));
        return r;
    }
    for id in dispositions {
        match replay::replay(&src, &id) {
            Ok(rep) if rep.matches => r.dispositions_replayed += 1,
            Ok(rep) => r.failures.push(format!(
                "disposition {} does not replay: {}",
                id.short(),
                rep.differences.join("; ")
            )),
            Err(e) => r.failures.push(format!(
                "disposition {} cannot be replayed: {e}",
                id.short()
            )),
        }
    }
    r
}
