//! Replay: re-derive a recorded disposition from its packet's basis at its recorded as-of
//! time, with the engine version it was recorded with, and prove byte equality with the
//! stored document, or say exactly what differs (docs/FORMAT.md §"Dispositions").

use crate::digest::{Digest, EntryId};
use crate::disposition::{self, Disposition};
use crate::entry::{DispositionRecord, Payload};
use crate::evaluate::{self, ENGINE_VERSIONS, EntrySource, EvalError, EvalInput};

/// The outcome of a replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    pub disposition: EntryId,
    pub packet: EntryId,
    /// Whether the re-derived document equals the stored one byte for byte.
    pub matches: bool,
    /// The engine version the disposition was recorded with, and re-derived with.
    pub engine: String,
    /// Set when the recorded engine version is not one this evl can derive with.
    pub engine_version: Option<EngineMismatch>,
    /// Basis (or packet, gate) digests the source does not hold.
    pub missing: Vec<String>,
    /// Readable differences, one per line; empty when `matches`.
    pub differences: Vec<String>,
}

/// A recorded engine version this evl does not have, and the versions it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineMismatch {
    pub recorded: String,
    /// The versions this evl derives with, oldest first, comma-separated.
    pub current: String,
}

/// Why a replay cannot even start.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("disposition entry {0} is not in the ledger")]
    Missing(EntryId),
    #[error("entry {0} is a {1} entry, not a disposition")]
    NotADisposition(EntryId, &'static str),
    #[error(transparent)]
    Source(#[from] EvalError),
}

/// Replays disposition entry `id` from `src` (a ledger or a bundle).
pub fn replay(src: &dyn EntrySource, id: &EntryId) -> Result<Replay, ReplayError> {
    let (_, e) = src.entry(id)?.ok_or(ReplayError::Missing(*id))?;
    let Payload::Disposition(rec) = e.body.payload else {
        return Err(ReplayError::NotADisposition(*id, e.body.payload.kind()));
    };
    let doc = src.blob(&rec.document)?;
    let input = evaluate::load_input_from(src, &rec.packet);
    Ok(replay_with(id, &rec, doc.as_deref(), input))
}

/// Replays `record` given its stored document bytes and the (possibly failed) rebuilt input.
pub fn replay_with(
    id: &EntryId,
    rec: &DispositionRecord,
    document: Option<&[u8]>,
    input: Result<EvalInput, EvalError>,
) -> Replay {
    let mut r = Replay {
        disposition: *id,
        packet: rec.packet,
        matches: false,
        engine: rec.engine_version.clone(),
        engine_version: (!ENGINE_VERSIONS.contains(&rec.engine_version.as_str())).then(|| {
            EngineMismatch {
                recorded: rec.engine_version.clone(),
                current: ENGINE_VERSIONS.join(", "),
            }
        }),
        missing: vec![],
        differences: vec![],
    };
    if let Some(m) = &r.engine_version {
        r.differences.push(format!(
            "engine version: recorded {} but this evl derives only with {}; it cannot re-derive this disposition",
            m.recorded, m.current
        ));
        return r;
    }
    let Some(doc) = document else {
        r.missing.push(rec.document.to_hex());
        r.differences
            .push(format!("the stored document {} is missing", rec.document));
        return r;
    };
    if Digest::of(doc) != rec.document {
        r.differences.push(format!(
            "the stored document hashes to {}, not the recorded {}",
            Digest::of(doc),
            rec.document
        ));
    }
    let input = match input {
        Ok(i) => i,
        Err(e) => {
            match &e {
                EvalError::MissingBasis { id, .. } | EvalError::MissingEntry(id) => {
                    r.missing.push(id.to_hex())
                }
                EvalError::MissingBlob { content, .. } => r.missing.push(content.to_hex()),
                _ => {}
            }
            r.differences.push(format!("cannot rebuild the basis: {e}"));
            return r;
        }
    };
    let derived = match evaluate::evaluate_with(&rec.engine_version, &input, rec.as_of) {
        Ok(d) => d,
        Err(e) => {
            r.differences.push(format!("cannot re-evaluate: {e}"));
            return r;
        }
    };
    compare(&mut r, rec, doc, &derived);
    r
}

fn compare(r: &mut Replay, rec: &DispositionRecord, doc: &[u8], derived: &Disposition) {
    let bytes = derived.canonical_bytes();
    if derived.verdict.name() != rec.verdict {
        r.differences.push(format!(
            "the entry records verdict {} but re-derivation gives {}",
            rec.verdict,
            derived.verdict.name()
        ));
    }
    if bytes == doc {
        r.matches = r.differences.is_empty();
        return;
    }
    match serde_json::from_slice::<serde_json::Value>(doc) {
        Ok(stored) => {
            let now = serde_json::to_value(derived).expect("disposition: JSON encoding failed");
            let d = disposition::diff_values(&stored, &now);
            if d.is_empty() {
                r.differences.push(
                    "the stored document has the same content but not the canonical bytes".into(),
                );
            }
            r.differences
                .extend(d.into_iter().map(|l| format!("stored → derived: {l}")));
        }
        Err(e) => r
            .differences
            .push(format!("the stored document is not JSON: {e}")),
    }
}
