//! Entries: the signed, append-only records of the ledger, and their canonical bytes.
//!
//! An entry's id is the BLAKE3 digest of its canonical *unsigned* bytes; the signature covers
//! `domain::ENTRY_SIGNATURE || id`. The stored form (and the Merkle leaf) is the unsigned bytes
//! followed by the 64 signature bytes. docs/FORMAT.md §"Entries" gives every byte.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError, MAX_ENTRY_BYTES};
use crate::digest::{Digest, EntryId};
use crate::domain;
use crate::keys::{self, KeyId, PublicKey, Role, SecretKey, SignatureBytes};
use crate::timestamp::Timestamp;

/// The entry format version evl writes; readers refuse others.
pub const ENTRY_FORMAT: u16 = 1;

/// Evidence source precedence: authoritative > operational > excluded (docs/GATES.md).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    Authoritative,
    Operational,
    Excluded,
}

impl Tier {
    /// The tier's name as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Authoritative => "authoritative",
            Tier::Operational => "operational",
            Tier::Excluded => "excluded",
        }
    }
    /// Higher is more trusted: authoritative 2, operational 1, excluded 0.
    pub fn rank(self) -> u8 {
        match self {
            Tier::Authoritative => 2,
            Tier::Operational => 1,
            Tier::Excluded => 0,
        }
    }
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "authoritative" => Ok(Tier::Authoritative),
            "operational" => Ok(Tier::Operational),
            "excluded" => Ok(Tier::Excluded),
            _ => Err(format!(
                "unknown source tier '{s}': expected authoritative, operational or excluded"
            )),
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Namespaces and workloads an artifact speaks about. Both sorted and deduplicated.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Scope {
    pub namespaces: Vec<String>,
    pub workloads: Vec<String>,
}

/// A key being granted roles in the registry.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct KeyGrant {
    pub name: String,
    pub public_key: PublicKey,
    pub roles: Vec<Role>,
}

/// The first entry: names the ledger's origin (used in checkpoints) and its trust-root admins.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Genesis {
    pub origin: String,
    pub admins: Vec<KeyGrant>,
}

/// Replaces a key: the new key takes the old key's name and roles; the old key stops counting.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct KeyRotate {
    pub old: KeyId,
    pub new_key: PublicKey,
}

/// Revokes a key from this position of the log on.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct KeyRevoke {
    pub key: KeyId,
    pub reason: String,
}

/// Metadata of an evidence artifact; the bytes are stored apart, addressed by `content`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ArtifactMeta {
    /// BLAKE3 of the artifact bytes.
    pub content: Digest,
    /// Length of the artifact bytes.
    pub size: u64,
    /// What the artifact is, e.g. `workload-inventory`, `rollback-drill`, `gate-definition`.
    pub kind: String,
    /// The file name it was added from (no directories), for people.
    pub file_name: String,
    pub tier: Tier,
    pub captured_at: Timestamp,
    pub valid_until: Option<Timestamp>,
    pub scope: Scope,
    /// Captured read-only (e.g. a sealed telemetry window).
    pub sealed: bool,
    /// The artifact entry this one replaces.
    pub supersedes: Option<EntryId>,
    pub labels: BTreeMap<String, String>,
    /// Facts an importer parsed from the bytes, stored beside them (docs/IMPORTERS.md).
    pub facts: Option<ParsedFacts>,
}

/// Where an importer's parsed facts are stored, and which parser produced them, so replay
/// can re-parse the artifact and prove it gets the same facts.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ParsedFacts {
    /// The importer, e.g. `workload-inventory`.
    pub parser: String,
    pub parser_version: u32,
    /// BLAKE3 of the facts' canonical JSON, stored as a blob.
    pub digest: Digest,
}

/// The kind of a reviewer's remark.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnnotationKind {
    Note,
    Concern,
    Blocker,
    Accept,
    Reject,
}

impl AnnotationKind {
    pub fn name(self) -> &'static str {
        match self {
            AnnotationKind::Note => "note",
            AnnotationKind::Concern => "concern",
            AnnotationKind::Blocker => "blocker",
            AnnotationKind::Accept => "accept",
            AnnotationKind::Reject => "reject",
        }
    }
}

impl std::str::FromStr for AnnotationKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            AnnotationKind::Note,
            AnnotationKind::Concern,
            AnnotationKind::Blocker,
            AnnotationKind::Accept,
            AnnotationKind::Reject,
        ]
        .into_iter()
        .find(|k| k.name() == s)
        .ok_or_else(|| {
            format!(
                "unknown annotation kind '{s}': expected note, concern, blocker, accept or reject"
            )
        })
    }
}

/// A reviewer's signed remark on any digest (an entry id or an artifact's content digest).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Annotation {
    pub subject: Digest,
    pub kind: AnnotationKind,
    /// Workloads or namespaces the remark is about, if narrower than the subject.
    pub scope: Scope,
    pub text: String,
}

/// A signed statement, e.g. topic `east-west-authorization-policy`, subject the policy
/// baseline's entry id, namespace `data-platform`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Acknowledgment {
    pub topic: String,
    pub subject: Option<Digest>,
    pub namespace: Option<String>,
    pub statement: String,
}

/// Lifts an excluded-tier artifact into use; signed by an owner.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Promotion {
    pub artifact: EntryId,
    pub to: Tier,
    pub reason: String,
}

/// A `namespace/workload` pair.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct WorkloadRef {
    pub namespace: String,
    pub workload: String,
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.workload)
    }
}

impl std::str::FromStr for WorkloadRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('/') {
            Some((ns, wl)) if !ns.is_empty() && !wl.is_empty() && !wl.contains('/') => {
                Ok(WorkloadRef {
                    namespace: ns.to_string(),
                    workload: wl.to_string(),
                })
            }
            _ => Err(format!(
                "'{s}' is not a workload: expected NAMESPACE/WORKLOAD"
            )),
        }
    }
}

/// A packet revision: pins a gate definition and an exact basis of entries.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PacketRevision {
    pub name: String,
    pub revision: u32,
    pub parent: Option<EntryId>,
    /// Entry id of the gate-definition artifact.
    pub gate: EntryId,
    /// The proposed gate checkpoint (cutover) time.
    pub checkpoint_at: Timestamp,
    /// Workloads proposed for the gate, sorted.
    pub in_scope: Vec<WorkloadRef>,
    /// Entry ids of the evidence, annotations, acknowledgments and promotions, sorted, unique.
    pub basis: Vec<EntryId>,
}

/// A proposal to narrow a packet by dropping workloads; accepted or rejected by annotations.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NarrowingProposal {
    pub packet: EntryId,
    pub keep: Vec<WorkloadRef>,
    pub rationale: String,
}

/// A recorded disposition: the document's bytes are stored apart, addressed by `document`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DispositionRecord {
    pub packet: EntryId,
    pub document: Digest,
    pub verdict: String,
    pub as_of: Timestamp,
    pub engine_version: String,
}

/// The human gate decision, recorded by a gate chair (evl never makes it).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Decision {
    pub packet: EntryId,
    pub disposition: Option<EntryId>,
    pub decision: String,
    pub text: String,
}

/// What an entry says. The variant index is part of the canonical bytes: append only.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Payload {
    Genesis(Genesis),
    KeyAdd(KeyGrant),
    KeyRotate(KeyRotate),
    KeyRevoke(KeyRevoke),
    Artifact(ArtifactMeta),
    Annotation(Annotation),
    Acknowledgment(Acknowledgment),
    Promotion(Promotion),
    Packet(PacketRevision),
    Narrowing(NarrowingProposal),
    Disposition(DispositionRecord),
    Decision(Decision),
}

impl Payload {
    /// The kind's name, as `evl log --kind` takes it.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Genesis(_) => "genesis",
            Payload::KeyAdd(_) => "key-add",
            Payload::KeyRotate(_) => "key-rotate",
            Payload::KeyRevoke(_) => "key-revoke",
            Payload::Artifact(_) => "artifact",
            Payload::Annotation(_) => "annotation",
            Payload::Acknowledgment(_) => "acknowledgment",
            Payload::Promotion(_) => "promotion",
            Payload::Packet(_) => "packet",
            Payload::Narrowing(_) => "narrowing",
            Payload::Disposition(_) => "disposition",
            Payload::Decision(_) => "decision",
        }
    }

    /// Every kind name.
    pub const KINDS: [&'static str; 12] = [
        "genesis",
        "key-add",
        "key-rotate",
        "key-revoke",
        "artifact",
        "annotation",
        "acknowledgment",
        "promotion",
        "packet",
        "narrowing",
        "disposition",
        "decision",
    ];

    /// The role a signer must hold for this payload (genesis: self-signed by a named admin).
    pub fn required_role(&self) -> Role {
        match self {
            Payload::Genesis(_)
            | Payload::KeyAdd(_)
            | Payload::KeyRotate(_)
            | Payload::KeyRevoke(_) => Role::Admin,
            Payload::Artifact(_)
            | Payload::Promotion(_)
            | Payload::Packet(_)
            | Payload::Narrowing(_) => Role::Owner,
            Payload::Disposition(_) => Role::Owner,
            Payload::Annotation(_) => Role::Reviewer,
            Payload::Acknowledgment(_) => Role::SecuritySigner,
            Payload::Decision(_) => Role::GateChair,
        }
    }
}

/// The signed part of an entry.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct UnsignedEntry {
    /// `ENTRY_FORMAT`.
    pub format: u16,
    /// The ledger's genesis entry id (all zero in the genesis entry itself), so an entry
    /// cannot be spliced into another ledger.
    pub ledger: Digest,
    pub signer: KeyId,
    /// When the signer says it signed, UTC seconds.
    pub claimed_at: Timestamp,
    pub payload: Payload,
}

impl UnsignedEntry {
    /// Canonical bytes (docs/FORMAT.md §"Entries").
    pub fn canonical_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }
    /// The entry id: BLAKE3 of the canonical unsigned bytes.
    pub fn id(&self) -> EntryId {
        Digest::of(&self.canonical_bytes())
    }
}

/// The message an entry's signature covers.
pub fn signature_message(id: &EntryId) -> Vec<u8> {
    [domain::ENTRY_SIGNATURE, &id.0].concat()
}

/// An entry as stored: unsigned part and signature.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub body: UnsignedEntry,
    pub signature: SignatureBytes,
}

/// Ways stored entry bytes can be wrong.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("entry format {0} is not one this evl reads (it reads format {ENTRY_FORMAT})")]
    Format(u16),
    #[error("entry is {0} bytes, over the {MAX_ENTRY_BYTES}-byte cap")]
    TooLarge(usize),
    #[error("entry is not in canonical form: {0}")]
    NotCanonical(&'static str),
}

/// Whether `v` is strictly ascending (sorted, no duplicates).
fn ascending<T: Ord>(v: &[T]) -> bool {
    v.windows(2).all(|w| w[0] < w[1])
}

impl Scope {
    fn canonical(&self) -> bool {
        ascending(&self.namespaces) && ascending(&self.workloads)
    }
}

impl UnsignedEntry {
    /// Checks what the encoding alone cannot: lists that are sets are strictly ascending
    /// (docs/FORMAT.md §"Canonical encoding").
    fn check_canonical(&self) -> Result<(), EntryError> {
        let ok = match &self.payload {
            Payload::Artifact(a) => a.scope.canonical(),
            Payload::Annotation(a) => a.scope.canonical(),
            Payload::Packet(p) => ascending(&p.in_scope) && ascending(&p.basis),
            Payload::Narrowing(n) => ascending(&n.keep),
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(EntryError::NotCanonical(
                "a scope, in_scope, basis or keep list is not strictly ascending",
            ))
        }
    }
}

impl Entry {
    /// Signs `body` with `key`. The body's `signer` must be `key`'s id.
    pub fn sign(body: UnsignedEntry, key: &SecretKey) -> Entry {
        debug_assert_eq!(
            body.signer,
            key.public().id(),
            "entry: signer id does not match key"
        );
        let signature = key.sign(&signature_message(&body.id()));
        Entry { body, signature }
    }

    /// As [`Entry::sign`], for a key that can fail to sign (one an ssh-agent holds).
    pub fn try_sign(body: UnsignedEntry, key: &SecretKey) -> Result<Entry, crate::keys::KeyError> {
        let signature = key.try_sign(&signature_message(&body.id()))?;
        Ok(Entry { body, signature })
    }

    /// The entry id (of the unsigned part).
    pub fn id(&self) -> EntryId {
        self.body.id()
    }

    /// Stored bytes: canonical unsigned bytes followed by the 64 signature bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EntryError> {
        // What a reader refuses is never written.
        self.body.check_canonical()?;
        let bytes = codec::encode(self);
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(EntryError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    /// Decodes stored bytes, refusing oversize input and unknown formats.
    pub fn from_bytes(bytes: &[u8]) -> Result<Entry, EntryError> {
        let e: Entry = codec::decode(bytes, MAX_ENTRY_BYTES)?;
        if e.body.format != ENTRY_FORMAT {
            return Err(EntryError::Format(e.body.format));
        }
        // One body, one encoding: the id is BLAKE3 of the stored unsigned bytes, and an
        // independent verifier must get the same id evl does (a map with keys out of order
        // would decode, then re-encode to other bytes).
        if !codec::encodes_to(&e.body, &bytes[..bytes.len() - 64]) {
            return Err(EntryError::NotCanonical(
                "its bytes are not the canonical encoding of what they decode to",
            ));
        }
        e.body.check_canonical()?;
        Ok(e)
    }

    /// Checks the signature against `public` (which must be the key named by `signer`).
    pub fn signature_valid(&self, public: &PublicKey) -> bool {
        public.id() == self.body.signer
            && keys::verify(public, &signature_message(&self.id()), &self.signature)
    }
}

/// An entry with its id and stored bytes, each computed once: kept from the bytes it was
/// decoded from ([`SignedEntry::decode`]), or encoded from the entry when asked
/// ([`SignedEntry::new`]).
#[derive(Clone, Debug)]
pub struct SignedEntry {
    entry: Entry,
    stored: Option<(EntryId, Vec<u8>)>,
}

impl SignedEntry {
    pub fn new(entry: Entry) -> SignedEntry {
        SignedEntry {
            entry,
            stored: None,
        }
    }

    /// Decodes stored bytes as [`Entry::from_bytes`] does (so they are the canonical ones),
    /// keeping them and the id they give.
    pub fn decode(bytes: Vec<u8>) -> Result<SignedEntry, EntryError> {
        let entry = Entry::from_bytes(&bytes)?;
        let id = Digest::of(&bytes[..bytes.len() - 64]);
        Ok(SignedEntry {
            entry,
            stored: Some((id, bytes)),
        })
    }

    /// For bytes [`SignedEntry::decode`] checked once already, kept apart from the entry.
    pub(crate) fn from_decoded(entry: Entry, id: EntryId, bytes: Vec<u8>) -> SignedEntry {
        SignedEntry {
            entry,
            stored: Some((id, bytes)),
        }
    }

    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    pub fn id(&self) -> EntryId {
        match &self.stored {
            Some((id, _)) => *id,
            None => self.entry.id(),
        }
    }

    /// The entry, its id and its stored bytes.
    pub fn into_parts(self) -> Result<(Entry, EntryId, Vec<u8>), EntryError> {
        match self.stored {
            Some((id, bytes)) => Ok((self.entry, id, bytes)),
            None => {
                let bytes = self.entry.to_bytes()?;
                let id = self.entry.id();
                Ok((self.entry, id, bytes))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &SecretKey) -> Entry {
        let body = UnsignedEntry {
            format: ENTRY_FORMAT,
            ledger: Digest::of(b"genesis"),
            signer: key.public().id(),
            claimed_at: Timestamp(1_776_470_400),
            payload: Payload::Annotation(Annotation {
                subject: Digest::of(b"x"),
                kind: AnnotationKind::Concern,
                scope: Scope::default(),
                text: "stale drill".into(),
            }),
        };
        Entry::sign(body, key)
    }

    #[test]
    fn stored_bytes_are_unsigned_bytes_then_signature() {
        let key = SecretKey::demo_from_phrase("t");
        let e = sample(&key);
        let bytes = e.to_bytes().unwrap();
        let unsigned = e.body.canonical_bytes();
        assert_eq!(&bytes[..unsigned.len()], &unsigned[..]);
        assert_eq!(&bytes[unsigned.len()..], &e.signature.0[..]);
        assert_eq!(Entry::from_bytes(&bytes).unwrap(), e);
        assert!(e.signature_valid(&key.public()));
    }

    #[test]
    fn lists_that_are_sets_must_be_strictly_ascending_and_bytes_canonical() {
        let key = SecretKey::demo_from_phrase("t");
        let mut e = sample(&key);
        let Payload::Annotation(a) = &mut e.body.payload else {
            unreachable!()
        };
        a.scope.workloads = vec!["b".into(), "a".into()];
        let e = Entry::sign(e.body, &key);
        assert!(matches!(e.to_bytes(), Err(EntryError::NotCanonical(_))));
        // Encoded anyway (as a forger would), it does not decode.
        let forged = codec::encode(&e);
        assert!(matches!(
            Entry::from_bytes(&forged),
            Err(EntryError::NotCanonical(_))
        ));
        let mut dup = sample(&key);
        let Payload::Annotation(a) = &mut dup.body.payload else {
            unreachable!()
        };
        a.scope.namespaces = vec!["a".into(), "a".into()];
        assert!(Entry::sign(dup.body, &key).to_bytes().is_err());
    }

    #[test]
    fn any_flipped_byte_breaks_decoding_or_the_signature() {
        let key = SecretKey::demo_from_phrase("t");
        let bytes = sample(&key).to_bytes().unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            if let Ok(e) = Entry::from_bytes(&b) {
                assert!(
                    !e.signature_valid(&key.public()),
                    "flip at byte {i} went unnoticed"
                );
            }
        }
    }
}
