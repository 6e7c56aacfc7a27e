//! Signed checkpoints: a C2SP tlog-checkpoint body inside a C2SP signed note (Ed25519).
//!
//! The body is three lines — origin, decimal tree size, base64 root hash — as
//! <https://c2sp.org/tlog-checkpoint> specifies; the note signature line is
//! `— <origin> <base64(key id(4) || signature(64))>` as <https://c2sp.org/signed-note>
//! specifies, with the key id SHA-256(origin || "\n" || 0x01 || public key)[:4]. Any
//! signed-note implementation (e.g. Go's `golang.org/x/mod/sumdb/note`) verifies it with the
//! verifier key `evl checkpoint --json` prints.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use signed_note::{Note, NoteError, StandardVerifier, Verifier, VerifierList};
use tlog_tiles::checkpoint::Checkpoint;

use crate::digest::Digest;
use crate::keys::{self, KeyId, PublicKey, SecretKey, SignatureBytes};
use crate::merkle::{Hash, TreeSize};

/// A checkpoint whose signature has been checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    pub origin: String,
    pub size: TreeSize,
    pub root: Hash,
    /// The key whose signature verified.
    pub signer: KeyId,
}

/// Why a checkpoint note is refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint is not a well-formed signed note")]
    Malformed,
    #[error("the checkpoint body is not a C2SP tlog checkpoint (origin, size, root hash lines)")]
    MalformedBody,
    #[error("the checkpoint is for origin '{found}', not this ledger's '{expected}'")]
    WrongOrigin { expected: String, found: String },
    #[error("the checkpoint carries no signature by an admin key of this ledger")]
    NoKnownSignature,
    #[error("the checkpoint signature by {0} does not verify")]
    BadSignature(String),
}

struct NoteSigner<'a> {
    name: &'a str,
    id: u32,
    key: &'a SecretKey,
}

impl signed_note::Signer for NoteSigner<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        self.key
            .try_sign(msg)
            .map(|s| s.0.to_vec())
            .map_err(signature::Error::from_source)
    }
}

/// A signed-note verifier for `key` that applies evl's signature rule (docs/FORMAT.md
/// §"Signature validity"), not the note library's own (ed25519-dalek's cofactorless `verify`,
/// which accepts small-order keys): a checkpoint signature is valid exactly when an entry
/// signature by the same key would be.
struct NoteVerifier {
    name: String,
    id: u32,
    key: PublicKey,
}

impl Verifier for NoteVerifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        sig.try_into()
            .is_ok_and(|sig| keys::verify(&self.key, msg, &SignatureBytes(sig)))
    }
}

/// The signed-note key id of `public` under key name `origin`.
pub fn note_key_id(origin: &str, public: &PublicKey) -> u32 {
    signed_note::key_id(origin, &[&[1u8][..], public.bytes()].concat())
}

/// The signed-note verifier key (`<name>+<hex id>+<base64(0x01 || key)>`) for `public`.
pub fn verifier_key(origin: &str, public: &PublicKey) -> String {
    let vk = public
        .verifying_key()
        .expect("checkpoint: registered keys are valid points");
    signed_note::new_ed25519_verifier_key(origin, &vk)
}

/// The checkpoint body text for (`origin`, `size`, `root`).
pub fn body(origin: &str, size: TreeSize, root: Hash) -> Vec<u8> {
    Checkpoint::new(origin, size, root, "")
        .expect("checkpoint: origin checked at init")
        .to_bytes()
}

/// Signs a checkpoint of (`origin`, `size`, `root`) with `key`; returns the note bytes.
pub fn sign(origin: &str, size: TreeSize, root: Hash, key: &SecretKey) -> Vec<u8> {
    try_sign(origin, size, root, key).expect("checkpoint: Ed25519 signing in memory cannot fail")
}

/// As [`sign`], for a key that can fail to sign (one an ssh-agent holds).
pub fn try_sign(
    origin: &str,
    size: TreeSize,
    root: Hash,
    key: &SecretKey,
) -> Result<Vec<u8>, keys::KeyError> {
    // Ask the key first, so an agent's refusal is reported as itself.
    key.try_sign(b"")?;
    let mut note =
        Note::new(&body(origin, size, root), &[]).expect("checkpoint: body is well-formed");
    let signer = NoteSigner {
        name: origin,
        id: note_key_id(origin, &key.public()),
        key,
    };
    note.add_sigs(&[&signer])
        .map_err(|e| keys::KeyError::Agent(format!("signing the checkpoint failed: {e}")))?;
    Ok(note.to_bytes())
}

/// Verifies `note` against the candidate keys and parses its body. Succeeds if at least one
/// signature by a candidate verifies; any invalid signature by a candidate is an error.
pub fn open(
    note: &[u8],
    origin: &str,
    candidates: &[PublicKey],
) -> Result<Verified, CheckpointError> {
    let parsed = Note::from_bytes(note).map_err(|_| CheckpointError::Malformed)?;
    let verifiers: Vec<Box<dyn Verifier>> = candidates
        .iter()
        .map(|pk| {
            Box::new(NoteVerifier {
                name: origin.to_string(),
                id: note_key_id(origin, pk),
                key: *pk,
            }) as Box<dyn Verifier>
        })
        .collect();
    let list = VerifierList::new(verifiers);
    let (verified, _unknown) = parsed.verify(&list).map_err(|e| match e {
        NoteError::InvalidSignature { name, id } => {
            CheckpointError::BadSignature(format!("{name}+{id:08x}"))
        }
        NoteError::MalformedNote => CheckpointError::Malformed,
        _ => CheckpointError::NoKnownSignature,
    })?;
    let cp = Checkpoint::from_bytes(parsed.text()).map_err(|_| CheckpointError::MalformedBody)?;
    if cp.origin() != origin {
        return Err(CheckpointError::WrongOrigin {
            expected: origin.to_string(),
            found: cp.origin().to_string(),
        });
    }
    let first = verified.first().ok_or(CheckpointError::NoKnownSignature)?;
    let signer = candidates
        .iter()
        .find(|pk| note_key_id(origin, pk) == first.id())
        .map(|pk| pk.id())
        .ok_or(CheckpointError::NoKnownSignature)?;
    Ok(Verified {
        origin: cp.origin().to_string(),
        size: cp.size(),
        root: *cp.hash(),
        signer,
    })
}

/// The body of a checkpoint note — origin, size, root — read without checking any signature:
/// for a note the auditor kept, whose tree head they already trust.
pub fn body_of(note: &[u8]) -> Result<(String, TreeSize, Hash), CheckpointError> {
    let parsed = Note::from_bytes(note).map_err(|_| CheckpointError::Malformed)?;
    let cp = Checkpoint::from_bytes(parsed.text()).map_err(|_| CheckpointError::MalformedBody)?;
    Ok((cp.origin().to_string(), cp.size(), *cp.hash()))
}

/// A C2SP signed-note verifier key (`<name>+<hex key id>+<base64(0x01 || Ed25519 key)>`), as
/// `evl checkpoint --json` prints it: well formed, its key id matching its key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    text: String,
    name: String,
    id: u32,
    key: PublicKey,
}

/// A string that is not a usable verifier key.
#[derive(Debug, thiserror::Error)]
#[error(
    "'{0}' is not a C2SP note verifier key: expected <origin>+<8 hex>+<base64 key>, as `evl checkpoint --json` prints it as verifier_key"
)]
pub struct ParseVerifierKeyError(pub String);

impl FromStr for VerifierKey {
    type Err = ParseVerifierKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || ParseVerifierKeyError(s.to_string());
        // The note library checks the form, the algorithm byte and the key id.
        let v = StandardVerifier::new(s).map_err(|_| bad())?;
        // A key name holds no '+'; the base64 key may.
        let encoded = s.splitn(3, '+').nth(2).ok_or_else(bad)?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| bad())?;
        let key: [u8; 32] = key
            .get(1..)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(bad)?;
        Ok(VerifierKey {
            text: s.to_string(),
            name: v.name().to_string(),
            id: v.key_id(),
            key: PublicKey(Digest(key)),
        })
    }
}

impl VerifierKey {
    /// The key name: for an evl checkpoint key, the ledger's origin.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is the verifier key of `public` under key name `origin`.
    pub fn is_key_of(&self, origin: &str, public: &PublicKey) -> bool {
        self.name == origin
            && self.id == note_key_id(origin, public)
            && public
                .verifying_key()
                .is_some_and(|vk| signed_note::new_ed25519_verifier_key(origin, &vk) == self.text)
    }

    /// Whether `note` carries a valid signature by this key (and no invalid one claiming it),
    /// by evl's signature rule (docs/FORMAT.md §"Signature validity").
    pub fn signed(&self, note: &[u8]) -> bool {
        let Ok(parsed) = Note::from_bytes(note) else {
            return false;
        };
        let v = NoteVerifier {
            name: self.name.clone(),
            id: self.id,
            key: self.key,
        };
        let list = VerifierList::new(vec![Box::new(v) as Box<dyn Verifier>]);
        parsed.verify(&list).is_ok()
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{:08x}", self.name, self.id)
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_checkpoint_opens_and_tampering_fails() {
        let k = SecretKey::demo_from_phrase("cp");
        let root = crate::merkle::leaf_hash(b"x");
        let note = sign("example.org/evl", 7, root, &k);
        let v = open(&note, "example.org/evl", &[k.public()]).unwrap();
        assert_eq!((v.size, v.root), (7, root));
        let text = String::from_utf8(note.clone()).unwrap();
        assert!(text.starts_with("example.org/evl\n7\n"));
        let tampered = text.replacen("\n7\n", "\n8\n", 1);
        assert!(open(tampered.as_bytes(), "example.org/evl", &[k.public()]).is_err());
        let other = SecretKey::demo_from_phrase("other");
        assert!(matches!(
            open(&note, "example.org/evl", &[other.public()]),
            Err(CheckpointError::NoKnownSignature)
        ));
    }
}
