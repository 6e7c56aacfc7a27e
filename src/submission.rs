//! Submission files: entries signed away from the ledger (`--offline -o FILE`), carried to
//! it and appended by `evl submit` (docs/FORMAT.md §"Submission files").
//!
//! Bytes: `domain::SUBMISSION_MAGIC` followed by the canonical encoding (`crate::codec`) of
//! [`SubmissionBody`], at most [`MAX_SUBMISSION_BYTES`] in all.
//!
//! An entry binds its ledger only through its `ledger` field (the genesis id): it names no
//! previous entry, no index and no tree, so it can be signed anywhere and sequenced later. The
//! origin travels beside it so a file carried to the wrong ledger is refused by name.

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::digest::Digest;
use crate::digest::EntryId;
use crate::domain;
use crate::entry::{Entry, SignedEntry};
use crate::store::MAX_ARTIFACT_BYTES;

/// Largest submission file accepted.
pub const MAX_SUBMISSION_BYTES: usize = 256 * 1024 * 1024;
/// The submission body version this evl writes and reads.
pub const SUBMISSION_VERSION: u16 = 1;

/// One signed entry and the bytes it carries (artifact bytes, parsed facts, a disposition's
/// document), in the order a local append stores them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmittedEntry {
    /// Stored entry bytes: canonical unsigned bytes || signature (docs/FORMAT.md §"Entries").
    pub bytes: Vec<u8>,
    pub blobs: Vec<Vec<u8>>,
}

/// What follows the magic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionBody {
    pub version: u16,
    /// The origin of the ledger the entries are for.
    pub origin: String,
    /// Its genesis entry id; every entry's `ledger` field must equal it.
    pub genesis: Digest,
    /// Entries in the order they are to be appended (one batch, all or none).
    pub entries: Vec<SubmittedEntry>,
}

/// A decoded, structurally checked submission.
#[derive(Clone, Debug)]
pub struct Submission {
    pub origin: String,
    pub genesis: Digest,
    pub entries: Vec<(Entry, Vec<Vec<u8>>)>,
    /// Each entry's id and stored bytes, when the submission was decoded from a file (they
    /// are then not computed again; what is appended is these bytes); empty otherwise.
    /// Decoded from the same bytes as `entries`, which code holding a decoded submission
    /// must therefore not change.
    stored: Vec<(EntryId, Vec<u8>)>,
}

/// Why bytes are not a usable submission.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    #[error(
        "not an evl submission file (it does not start with {:?})",
        String::from_utf8_lossy(domain::SUBMISSION_MAGIC)
    )]
    Magic,
    #[error("submission is {0} bytes, over the {MAX_SUBMISSION_BYTES}-byte cap")]
    TooLarge(usize),
    #[error("submission version {0} is not one this evl reads (it reads {SUBMISSION_VERSION})")]
    Version(u16),
    #[error("malformed submission: {0}")]
    Codec(#[from] codec::CodecError),
    #[error("submission carries no entries")]
    Empty,
    #[error("entry {index} of the submission: {error}")]
    Entry {
        index: usize,
        error: crate::entry::EntryError,
    },
    #[error(
        "entry {index} of the submission ({id}) is signed for ledger {signed_for}, but the file names genesis {genesis}"
    )]
    Ledger {
        index: usize,
        id: String,
        signed_for: String,
        genesis: String,
    },
    #[error(
        "entry {index} of the submission carries {len} bytes, over the {MAX_ARTIFACT_BYTES}-byte limit"
    )]
    BlobTooLarge { index: usize, len: usize },
}

impl Submission {
    /// Builds a submission of entries signed for `genesis`.
    pub fn new(origin: &str, genesis: Digest, entries: Vec<(Entry, Vec<Vec<u8>>)>) -> Submission {
        Submission {
            origin: origin.to_string(),
            genesis,
            entries,
            stored: Vec::new(),
        }
    }

    /// The id of entry `i`.
    pub fn id(&self, i: usize) -> EntryId {
        match self.stored.get(i) {
            Some((id, _)) => *id,
            None => self.entries[i].0.id(),
        }
    }

    /// Entry `i` with its id and stored bytes.
    pub fn signed(&self, i: usize) -> SignedEntry {
        match self.stored.get(i) {
            Some((id, bytes)) => {
                SignedEntry::from_decoded(self.entries[i].0.clone(), *id, bytes.clone())
            }
            None => SignedEntry::new(self.entries[i].0.clone()),
        }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, crate::entry::EntryError> {
        let entries = self
            .entries
            .iter()
            .map(|(e, blobs)| {
                Ok(SubmittedEntry {
                    bytes: e.to_bytes()?,
                    blobs: blobs.clone(),
                })
            })
            .collect::<Result<Vec<_>, crate::entry::EntryError>>()?;
        let body = SubmissionBody {
            version: SUBMISSION_VERSION,
            origin: self.origin.clone(),
            genesis: self.genesis,
            entries,
        };
        let mut out = domain::SUBMISSION_MAGIC.to_vec();
        out.extend_from_slice(&codec::encode(&body));
        Ok(out)
    }

    /// Decodes a file: magic, version, every entry canonical and signed for the named
    /// genesis. Signatures and the signer's authority are the ledger's to check at append.
    pub fn from_bytes(bytes: &[u8]) -> Result<Submission, SubmissionError> {
        if bytes.len() > MAX_SUBMISSION_BYTES {
            return Err(SubmissionError::TooLarge(bytes.len()));
        }
        let rest = bytes
            .strip_prefix(domain::SUBMISSION_MAGIC)
            .ok_or(SubmissionError::Magic)?;
        let body: SubmissionBody = codec::decode(rest, MAX_SUBMISSION_BYTES)?;
        if body.version != SUBMISSION_VERSION {
            return Err(SubmissionError::Version(body.version));
        }
        if body.entries.is_empty() {
            return Err(SubmissionError::Empty);
        }
        let mut entries = Vec::with_capacity(body.entries.len());
        let mut stored = Vec::with_capacity(body.entries.len());
        for (index, s) in body.entries.into_iter().enumerate() {
            let (e, id, bytes) = SignedEntry::decode(s.bytes)
                .and_then(SignedEntry::into_parts)
                .map_err(|error| SubmissionError::Entry { index, error })?;
            if e.body.ledger != body.genesis {
                return Err(SubmissionError::Ledger {
                    index,
                    id: id.short(),
                    signed_for: e.body.ledger.short(),
                    genesis: body.genesis.short(),
                });
            }
            if let Some(b) = s.blobs.iter().find(|b| b.len() > MAX_ARTIFACT_BYTES) {
                return Err(SubmissionError::BlobTooLarge {
                    index,
                    len: b.len(),
                });
            }
            entries.push((e, s.blobs));
            stored.push((id, bytes));
        }
        Ok(Submission {
            origin: body.origin,
            genesis: body.genesis,
            entries,
            stored,
        })
    }
}
