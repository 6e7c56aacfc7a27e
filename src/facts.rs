//! An artifact's parsed facts, re-derived from its stored bytes and entry alone.
//!
//! `evl ingest` records the facts an importer parsed beside the artifact bytes; this module
//! re-parses with the options the entry records (telemetry window from the `window` label,
//! the sealed flag, mesh workloads from the scope), so replay and verification can prove the
//! recorded facts are exactly what the bytes yield.

use crate::digest::Digest;
use crate::entry::{ArtifactMeta, ParsedFacts};
use crate::ingest::{self, Facts, Importer, IngestError, ParseOptions};

/// The parse options an artifact entry records.
pub fn parse_options(meta: &ArtifactMeta) -> ParseOptions {
    ParseOptions {
        window: meta.labels.get("window").cloned(),
        sealed: meta.sealed,
        workloads: meta
            .scope
            .workloads
            .iter()
            .filter_map(|w| w.split_once('/'))
            .map(|(ns, wl)| (ns.to_string(), wl.to_string()))
            .collect(),
    }
}

/// The importer for an artifact kind, if the kind is one an importer produces.
pub fn importer_for(kind: &str) -> Option<Importer> {
    Importer::ALL.into_iter().find(|i| i.kind() == kind)
}

/// Parses `bytes` as the artifact's kind with its recorded options; `None` for kinds no
/// importer reads.
pub fn reparse(meta: &ArtifactMeta, bytes: &[u8]) -> Option<Result<Facts, IngestError>> {
    let importer = importer_for(&meta.kind)?;
    Some(ingest::parse_with(
        importer,
        &meta.file_name,
        bytes,
        &parse_options(meta),
    ))
}

/// The facts record and the canonical JSON bytes to store for `facts`.
pub fn record(facts: &Facts) -> (ParsedFacts, Vec<u8>) {
    let json = facts.canonical_json().into_bytes();
    let parsed = ParsedFacts {
        parser: facts.importer().kind().to_string(),
        parser_version: ingest::PARSER_VERSION,
        digest: Digest::of(&json),
    };
    (parsed, json)
}

/// Why recorded facts do not match a re-parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FactsMismatch {
    #[error(
        "facts were recorded by parser version {recorded}; this evl parses with version {current}"
    )]
    ParserVersion { recorded: u32, current: u32 },
    #[error(
        "facts are recorded for kind '{kind}', which no importer reads, so nothing can re-derive them"
    )]
    NoImporter { kind: String },
    #[error("facts name parser '{recorded}' but kind '{kind}' is read by the {kind} importer")]
    WrongParser { recorded: String, kind: String },
    #[error("re-parsing the artifact fails now: {0}")]
    Unparseable(String),
    #[error("re-parsing the artifact yields facts {now} but {recorded} were recorded")]
    Differs { recorded: String, now: String },
}

/// Re-parses an artifact and checks the result against its recorded facts. Facts that no
/// importer of the artifact's kind could have produced are a mismatch too: recorded facts are
/// derived data, and only a re-parse authenticates them.
pub fn check(meta: &ArtifactMeta, bytes: &[u8]) -> Result<(), FactsMismatch> {
    let Some(recorded) = &meta.facts else {
        return Ok(());
    };
    let Some(parsed) = reparse(meta, bytes) else {
        return Err(FactsMismatch::NoImporter {
            kind: meta.kind.clone(),
        });
    };
    if recorded.parser != meta.kind {
        return Err(FactsMismatch::WrongParser {
            recorded: recorded.parser.clone(),
            kind: meta.kind.clone(),
        });
    }
    if recorded.parser_version != ingest::PARSER_VERSION {
        return Err(FactsMismatch::ParserVersion {
            recorded: recorded.parser_version,
            current: ingest::PARSER_VERSION,
        });
    }
    let facts = parsed.map_err(|e| FactsMismatch::Unparseable(e.to_string()))?;
    let (now, _) = record(&facts);
    if now.digest != recorded.digest {
        return Err(FactsMismatch::Differs {
            recorded: recorded.digest.short(),
            now: now.digest.short(),
        });
    }
    Ok(())
}
