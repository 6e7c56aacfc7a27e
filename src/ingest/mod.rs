//! Importers that turn evidence files as they arrive from the field (PEM certificates, Kubernetes
//! mesh policy YAML, workload inventory CSV, Prometheus telemetry) into typed facts.
//!
//! Every function here is pure: bytes in, facts out. No I/O, no clock, no environment, and no
//! `HashMap` iteration, so re-parsing the stored bytes of an artifact with the same facts version
//! ([`Importer::facts_version`]) yields byte-identical [`Facts::canonical_json`]. The formats, facts and caps
//! are documented in `docs/IMPORTERS.md`.

pub mod cert;
pub mod inventory;
pub mod mesh;
pub mod telemetry;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One error type for all importers; each message is one sentence naming the source, the line
/// (where known) and the field.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The input does not follow the importer's format.
    #[error("{source_name}{loc}: {reason}.", loc = location(*line, field.as_deref()))]
    Malformed {
        source_name: String,
        line: Option<usize>,
        field: Option<String>,
        reason: String,
    },
    /// The input exceeds one of the documented caps (size, columns, depth, nodes ...).
    #[error("{source_name}{loc}: {what} exceeds the limit of {limit} (found {found}).", loc = location(*line, None))]
    TooLarge {
        source_name: String,
        line: Option<usize>,
        what: String,
        limit: usize,
        found: usize,
    },
    /// The same key appears twice where it must be unique.
    #[error(
        "{source_name}, line {second_line}: {key} is listed twice (first on line {first_line})."
    )]
    Duplicate {
        source_name: String,
        key: String,
        first_line: usize,
        second_line: usize,
    },
    /// The input holds nothing the importer can read.
    #[error("{source_name}: {reason}.")]
    Empty { source_name: String, reason: String },
    /// A required parse option was not given (e.g. the telemetry window name).
    #[error(
        "{source_name}: the {importer} importer needs the option {option}, which was not given."
    )]
    MissingOption {
        source_name: String,
        importer: &'static str,
        option: &'static str,
    },
    /// An importer name that is not one of the known kinds.
    #[error(
        "unknown importer {0:?}; expected one of certificate, mesh-policy, workload-inventory, telemetry."
    )]
    UnknownImporter(String),
}

fn location(line: Option<usize>, field: Option<&str>) -> String {
    match (line, field) {
        (Some(l), Some(f)) => format!(", line {l}, field {f}"),
        (Some(l), None) => format!(", line {l}"),
        (None, Some(f)) => format!(", field {f}"),
        (None, None) => String::new(),
    }
}

impl IngestError {
    pub(crate) fn malformed(
        source_name: &str,
        line: Option<usize>,
        field: Option<&str>,
        reason: impl Into<String>,
    ) -> Self {
        IngestError::Malformed {
            source_name: source_name.to_string(),
            line,
            field: field.map(str::to_string),
            reason: reason.into(),
        }
    }

    pub(crate) fn too_large(
        source_name: &str,
        line: Option<usize>,
        what: &str,
        limit: usize,
        found: usize,
    ) -> Self {
        IngestError::TooLarge {
            source_name: source_name.to_string(),
            line,
            what: what.to_string(),
            limit,
            found,
        }
    }
}

/// Refuses inputs larger than `limit` bytes before any parsing starts.
pub(crate) fn check_size(source_name: &str, bytes: &[u8], limit: usize) -> Result<(), IngestError> {
    if bytes.len() > limit {
        return Err(IngestError::too_large(
            source_name,
            None,
            "the input size in bytes",
            limit,
            bytes.len(),
        ));
    }
    Ok(())
}

/// Which importer reads a file; [`Importer::kind`] is the artifact kind string in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Importer {
    Cert,
    Mesh,
    Inventory,
    Telemetry,
}

impl Importer {
    /// All importers, in a fixed order.
    pub const ALL: [Importer; 4] = [
        Importer::Cert,
        Importer::Mesh,
        Importer::Inventory,
        Importer::Telemetry,
    ];

    /// The version of the facts this importer produces, recorded in each entry as
    /// `parser_version`. It changes whenever the importer's facts for the same input bytes
    /// change (a new field, a different rule, a changed accept/refuse decision), so an old entry
    /// keeps the meaning of the version it was recorded with. The history is in
    /// docs/IMPORTERS.md §"Facts versions".
    pub fn facts_version(&self) -> u32 {
        match self {
            Importer::Cert => 2,
            Importer::Mesh => 2,
            Importer::Inventory => 1,
            Importer::Telemetry => 2,
        }
    }

    /// The artifact kind string recorded in the ledger for evidence read by this importer.
    pub fn kind(&self) -> &'static str {
        match self {
            Importer::Cert => "certificate",
            Importer::Mesh => "mesh-policy",
            Importer::Inventory => "workload-inventory",
            Importer::Telemetry => "telemetry",
        }
    }
}

impl fmt::Display for Importer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

impl FromStr for Importer {
    type Err = IngestError;

    /// Accepts the kind string (`certificate`, ...) or the CLI verb (`cert`, `mesh`, `inventory`,
    /// `telemetry`), case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cert" | "certificate" => Ok(Importer::Cert),
            "mesh" | "mesh-policy" => Ok(Importer::Mesh),
            "inventory" | "workload-inventory" => Ok(Importer::Inventory),
            "telemetry" => Ok(Importer::Telemetry),
            _ => Err(IngestError::UnknownImporter(s.to_string())),
        }
    }
}

/// Options that are not in the file but recorded in the ledger entry beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParseOptions {
    /// Telemetry: the name of the observation window (required for telemetry).
    pub window: Option<String>,
    /// Telemetry: whether the window is sealed read-only.
    pub sealed: bool,
    /// Mesh: extra (namespace, workload) pairs whose effective mTLS mode should be resolved.
    pub workloads: Vec<(String, String)>,
    /// Mesh: as `kubectl apply --namespace`, the namespace of objects that name none.
    pub namespace: Option<String>,
    /// Mesh: record objects the mesh would refuse as not in effect instead of refusing.
    pub record_invalid: bool,
    /// Telemetry: how to read a Prometheus response's series labels.
    pub telemetry: telemetry::Mapping,
}

/// The facts one importer produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "importer", content = "facts", rename_all = "kebab-case")]
pub enum Facts {
    #[serde(rename = "certificate")]
    Cert(cert::CertFacts),
    #[serde(rename = "mesh-policy")]
    Mesh(mesh::MeshFacts),
    #[serde(rename = "workload-inventory")]
    Inventory(inventory::Inventory),
    #[serde(rename = "telemetry")]
    Telemetry(telemetry::TelemetrySummary),
}

impl Facts {
    /// The importer that produced these facts.
    pub fn importer(&self) -> Importer {
        match self {
            Facts::Cert(_) => Importer::Cert,
            Facts::Mesh(_) => Importer::Mesh,
            Facts::Inventory(_) => Importer::Inventory,
            Facts::Telemetry(_) => Importer::Telemetry,
        }
    }

    /// Canonical JSON of the facts: compact, keys in a fixed order (struct fields in declaration
    /// order, maps sorted), so the same facts always give the same bytes.
    pub fn canonical_json(&self) -> String {
        // Serializing plain structs, BTreeMaps and Vecs cannot fail.
        serde_json::to_string(self).expect("ingest facts serialize to JSON")
    }
}

/// Parses `bytes` with `importer` using default options; telemetry needs a window name, so use
/// [`parse_with`] or [`telemetry::parse`] for it.
pub fn parse(importer: Importer, source_name: &str, bytes: &[u8]) -> Result<Facts, IngestError> {
    parse_with(importer, source_name, bytes, &ParseOptions::default())
}

/// Parses `bytes` with `importer` and the options the ledger entry records beside the artifact.
pub fn parse_with(
    importer: Importer,
    source_name: &str,
    bytes: &[u8],
    options: &ParseOptions,
) -> Result<Facts, IngestError> {
    match importer {
        Importer::Cert => cert::parse_pem(source_name, bytes).map(Facts::Cert),
        Importer::Mesh => mesh::parse_yaml_with(
            source_name,
            bytes,
            &mesh::MeshOptions {
                namespace: options.namespace.clone(),
                record_invalid: options.record_invalid,
                workloads: options.workloads.clone(),
            },
        )
        .map(Facts::Mesh),
        Importer::Inventory => inventory::parse_csv(source_name, bytes).map(Facts::Inventory),
        Importer::Telemetry => {
            let window = options
                .window
                .as_deref()
                .ok_or(IngestError::MissingOption {
                    source_name: source_name.to_string(),
                    importer: "telemetry",
                    option: "window",
                })?;
            telemetry::parse_mapped(
                source_name,
                bytes,
                window,
                options.sealed,
                &options.telemetry,
            )
            .map(Facts::Telemetry)
        }
    }
}

/// Checks one CSV data record for the row loops of the CSV importers: maps a reader error to
/// an [`IngestError`] naming the line, skips blank lines (`None`), refuses a row past `cap`
/// rows already read, and a row whose field count differs from the header's `columns`.
pub(crate) fn csv_data_row(
    source_name: &str,
    bytes: &[u8],
    rec: Result<csv::ByteRecord, csv::Error>,
    rows_so_far: usize,
    cap: usize,
    columns: usize,
) -> Result<Option<(usize, csv::ByteRecord)>, IngestError> {
    let rec = rec.map_err(|e| csv_error(source_name, bytes, &e))?;
    let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
    if rec.len() == 1 && rec[0].iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if rows_so_far >= cap {
        return Err(IngestError::too_large(
            source_name,
            Some(line),
            "the number of rows",
            cap,
            cap + 1,
        ));
    }
    if rec.len() != columns {
        return Err(IngestError::malformed(
            source_name,
            Some(line),
            None,
            format!(
                "the row has {} fields but the header has {columns} columns",
                rec.len()
            ),
        ));
    }
    Ok(Some((line, rec)))
}

/// A CSV reader error as an [`IngestError`] naming the line.
pub(crate) fn csv_error(source_name: &str, bytes: &[u8], e: &csv::Error) -> IngestError {
    let line = e
        .position()
        .map(|p| p.line() as usize)
        .or_else(|| e.position().map(|p| line_of(bytes, p.byte() as usize)));
    IngestError::malformed(
        source_name,
        line,
        None,
        format!("the CSV does not parse ({e})"),
    )
}

/// 1-based line number of byte offset `pos` in `bytes`.
pub(crate) fn line_of(bytes: &[u8], pos: usize) -> usize {
    let end = pos.min(bytes.len());
    bytes[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn importer_kind_round_trips() {
        for i in Importer::ALL {
            assert_eq!(i.kind().parse::<Importer>().unwrap(), i);
        }
        assert_eq!("CERT".parse::<Importer>().unwrap(), Importer::Cert);
        let e = "pcap".parse::<Importer>().unwrap_err().to_string();
        assert!(
            e.contains("pcap") && e.contains("workload-inventory"),
            "{e}"
        );
    }

    #[test]
    fn malformed_message_names_source_line_and_field() {
        let e =
            IngestError::malformed("a.csv", Some(3), Some("stateful"), "expected true or false");
        assert_eq!(
            e.to_string(),
            "a.csv, line 3, field stateful: expected true or false."
        );
    }

    #[test]
    fn telemetry_without_window_is_refused() {
        let e = parse(Importer::Telemetry, "t.csv", b"workload,namespace\n").unwrap_err();
        assert!(e.to_string().contains("window"), "{e}");
    }
}
