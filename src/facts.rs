//! An artifact's parsed facts, re-derived from its stored bytes and entry alone.
//!
//! `evl ingest` records the facts an importer parsed beside the artifact bytes; this module
//! re-parses with the options the entry records (telemetry window and label mapping from
//! labels, the sealed flag, mesh workloads and namespace from the scope, the mesh's handling of
//! invalid objects from a label), so replay and verification can prove the recorded facts are
//! exactly what the bytes yield.

use crate::digest::Digest;
use crate::entry::{ArtifactMeta, ParsedFacts};
use crate::ingest::{self, Facts, Importer, IngestError, ParseOptions, telemetry};

/// Entry labels that carry parse options (docs/IMPORTERS.md §"Options recorded in the entry").
pub mod label {
    /// Telemetry: the observation window's name.
    pub const WINDOW: &str = "window";
    /// Telemetry: the label profile (`istio`).
    pub const TELEMETRY_PROFILE: &str = "telemetry-profile";
    /// Telemetry: the `--metric` options, joined by `,`.
    pub const TELEMETRY_METRIC: &str = "telemetry-metric";
    /// Telemetry: the label naming the workload.
    pub const TELEMETRY_WORKLOAD_LABEL: &str = "telemetry-workload-label";
    /// Telemetry: the label naming the namespace.
    pub const TELEMETRY_NAMESPACE_LABEL: &str = "telemetry-namespace-label";
    /// Mesh: `record` when objects the mesh would refuse are recorded as not in effect.
    pub const INVALID_POLICIES: &str = "invalid-policies";
}

/// The telemetry label mapping an artifact entry records.
pub fn telemetry_mapping(meta: &ArtifactMeta) -> telemetry::Mapping {
    let get = |k: &str| meta.labels.get(k).cloned();
    telemetry::Mapping {
        profile: get(label::TELEMETRY_PROFILE),
        metrics: get(label::TELEMETRY_METRIC)
            .map(|m| m.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        workload_label: get(label::TELEMETRY_WORKLOAD_LABEL),
        namespace_label: get(label::TELEMETRY_NAMESPACE_LABEL),
    }
}

/// The parse options an artifact entry records. For mesh policy, a single scope namespace is
/// the namespace of objects that name none (as `kubectl apply -n`).
pub fn parse_options(meta: &ArtifactMeta) -> ParseOptions {
    let mesh = meta.kind == Importer::Mesh.kind();
    ParseOptions {
        window: meta.labels.get(label::WINDOW).cloned(),
        sealed: meta.sealed,
        workloads: meta
            .scope
            .workloads
            .iter()
            .filter_map(|w| w.split_once('/'))
            .map(|(ns, wl)| (ns.to_string(), wl.to_string()))
            .collect(),
        namespace: match meta.scope.namespaces.as_slice() {
            [one] if mesh => Some(one.clone()),
            _ => None,
        },
        record_invalid: mesh
            && meta.labels.get(label::INVALID_POLICIES).map(String::as_str) == Some("record"),
        telemetry: telemetry_mapping(meta),
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
        parser_version: facts.importer().facts_version(),
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
    // Each importer has its own facts version (docs/IMPORTERS.md §"Facts versions").
    let current = importer_for(&meta.kind).map_or(0, |i| i.facts_version());
    if recorded.parser_version != current {
        return Err(FactsMismatch::ParserVersion {
            recorded: recorded.parser_version,
            current,
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
