//! Workload inventory CSV: the frozen target-workload list of a readiness gate, one row per
//! (namespace, workload) with owner, statefulness, sidecar mode, compatibility, ambient readiness
//! and certificate-exception ids. Columns are documented in `docs/IMPORTERS.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{IngestError, check_size, csv_data_row, csv_error};

/// Largest accepted input.
pub const MAX_INPUT_BYTES: usize = 8 * 1024 * 1024;
/// Most columns accepted in the header.
pub const MAX_COLUMNS: usize = 256;
/// Largest accepted field, in bytes.
pub const MAX_FIELD_BYTES: usize = 4096;
/// Most data rows accepted.
pub const MAX_ROWS: usize = 100_000;

/// The required columns, matched case-insensitively in any order.
pub const REQUIRED_COLUMNS: [&str; 8] = [
    "namespace",
    "workload",
    "owner",
    "stateful",
    "sidecar_mode",
    "compatibility",
    "ambient_ready",
    "exception_ids",
];

/// Sidecar compatibility status of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compatibility {
    Validated,
    Unresolved,
    Incompatible,
    Unknown,
}

/// One inventory row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadRecord {
    pub namespace: String,
    pub workload: String,
    pub owner: String,
    pub stateful: bool,
    /// Trimmed free text, e.g. `injected`, `legacy-bypass`, `ambient`.
    pub sidecar_mode: String,
    pub compatibility: Compatibility,
    pub ambient_ready: bool,
    /// Sorted, de-duplicated exception ids.
    pub exception_ids: Vec<String>,
    /// Columns beyond the required ones, by trimmed header name.
    pub extra: BTreeMap<String, String>,
    /// The 1-based line of the row in the source file.
    pub line: usize,
}

/// A parsed inventory, rows sorted by (namespace, workload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub workloads: Vec<WorkloadRecord>,
    /// The extra column names, in header order.
    pub extra_columns: Vec<String>,
}

impl Inventory {
    /// The record for (namespace, workload), if listed.
    pub fn get(&self, namespace: &str, workload: &str) -> Option<&WorkloadRecord> {
        self.workloads
            .binary_search_by(|r| {
                (r.namespace.as_str(), r.workload.as_str()).cmp(&(namespace, workload))
            })
            .ok()
            .map(|i| &self.workloads[i])
    }

    /// The sorted, de-duplicated namespaces.
    pub fn namespaces(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .workloads
            .iter()
            .map(|r| r.namespace.as_str())
            .collect();
        v.dedup();
        v
    }
}

/// Parses an inventory CSV (comma-separated, RFC 4180 quoting, optional UTF-8 BOM).
pub fn parse_csv(source_name: &str, bytes: &[u8]) -> Result<Inventory, IngestError> {
    check_size(source_name, bytes, MAX_INPUT_BYTES)?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::Empty {
            source_name: source_name.to_string(),
            reason: "the inventory is empty; expected a header line naming the columns".to_string(),
        });
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.byte_records();

    let header = match records.next() {
        Some(r) => r.map_err(|e| csv_error(source_name, bytes, &e))?,
        None => {
            return Err(IngestError::Empty {
                source_name: source_name.to_string(),
                reason: "the inventory has no header line".to_string(),
            });
        }
    };
    if header.len() > MAX_COLUMNS {
        return Err(IngestError::too_large(
            source_name,
            Some(1),
            "the number of columns",
            MAX_COLUMNS,
            header.len(),
        ));
    }
    let header_line = header.position().map(|p| p.line() as usize).unwrap_or(1);
    let mut names = Vec::with_capacity(header.len());
    for (i, raw) in header.iter().enumerate() {
        let name = std::str::from_utf8(raw)
            .map_err(|_| {
                IngestError::malformed(
                    source_name,
                    Some(header_line),
                    Some(&format!("column {}", i + 1)),
                    "the header is not valid UTF-8",
                )
            })?
            .trim()
            .to_string();
        if name.is_empty() {
            return Err(IngestError::malformed(
                source_name,
                Some(header_line),
                Some(&format!("column {}", i + 1)),
                "the header has an empty column name",
            ));
        }
        if names.iter().any(|n: &String| n.eq_ignore_ascii_case(&name)) {
            return Err(IngestError::malformed(
                source_name,
                Some(header_line),
                Some(&name),
                "the column appears twice in the header",
            ));
        }
        names.push(name);
    }
    let mut index = BTreeMap::new();
    for col in REQUIRED_COLUMNS {
        match names.iter().position(|n| n.eq_ignore_ascii_case(col)) {
            Some(i) => {
                index.insert(col, i);
            }
            None => {
                return Err(IngestError::malformed(
                    source_name,
                    Some(header_line),
                    Some(col),
                    format!(
                        "the required column is missing from the header (required: {})",
                        REQUIRED_COLUMNS.join(", ")
                    ),
                ));
            }
        }
    }
    let extra_columns: Vec<(usize, String)> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| !REQUIRED_COLUMNS.iter().any(|c| n.eq_ignore_ascii_case(c)))
        .map(|(i, n)| (i, n.clone()))
        .collect();

    let mut workloads: Vec<WorkloadRecord> = Vec::new();
    for rec in records {
        let Some((line, rec)) = csv_data_row(
            source_name,
            bytes,
            rec,
            workloads.len(),
            MAX_ROWS,
            names.len(),
        )?
        else {
            continue;
        };
        let field = |col: &str| -> Result<String, IngestError> {
            let i = index[col];
            text(source_name, line, &names[i], i, &rec[i])
        };
        let namespace = field("namespace")?;
        let workload = field("workload")?;
        check_name(source_name, line, "namespace", &namespace, 63)?;
        check_name(source_name, line, "workload", &workload, 253)?;
        let owner = field("owner")?;
        if owner.is_empty() {
            return Err(IngestError::malformed(
                source_name,
                Some(line),
                Some("owner (column owner)"),
                "the owner is empty; every workload needs an accountable owner",
            ));
        }
        let stateful = boolean(source_name, line, "stateful", &field("stateful")?)?;
        let ambient_ready = boolean(source_name, line, "ambient_ready", &field("ambient_ready")?)?;
        let sidecar_mode = field("sidecar_mode")?;
        if sidecar_mode.is_empty() {
            return Err(IngestError::malformed(
                source_name,
                Some(line),
                Some("sidecar_mode"),
                "the sidecar mode is empty (e.g. injected, legacy-bypass, ambient)",
            ));
        }
        let compat = field("compatibility")?;
        let compatibility = match compat.to_ascii_lowercase().as_str() {
            "validated" => Compatibility::Validated,
            "unresolved" => Compatibility::Unresolved,
            "incompatible" => Compatibility::Incompatible,
            "unknown" => Compatibility::Unknown,
            _ => {
                return Err(IngestError::malformed(
                    source_name,
                    Some(line),
                    Some("compatibility"),
                    format!(
                        "{compat:?} is not a compatibility status (expected validated, unresolved, incompatible or unknown)"
                    ),
                ));
            }
        };
        let mut exception_ids: Vec<String> = field("exception_ids")?
            .split(|c: char| c == ';' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        exception_ids.sort();
        exception_ids.dedup();
        let mut extra = BTreeMap::new();
        for (i, name) in &extra_columns {
            extra.insert(name.clone(), text(source_name, line, name, *i, &rec[*i])?);
        }
        workloads.push(WorkloadRecord {
            namespace,
            workload,
            owner,
            stateful,
            sidecar_mode,
            compatibility,
            ambient_ready,
            exception_ids,
            extra,
            line,
        });
    }
    // Stable sort keeps file order among duplicates, so the first occurrence comes first.
    workloads.sort_by(|a, b| (&a.namespace, &a.workload).cmp(&(&b.namespace, &b.workload)));
    for pair in workloads.windows(2) {
        if pair[0].namespace == pair[1].namespace && pair[0].workload == pair[1].workload {
            let (first, second) = (
                pair[0].line.min(pair[1].line),
                pair[0].line.max(pair[1].line),
            );
            return Err(IngestError::Duplicate {
                source_name: source_name.to_string(),
                key: format!("workload {}/{}", pair[0].namespace, pair[0].workload),
                first_line: first,
                second_line: second,
            });
        }
    }
    Ok(Inventory {
        workloads,
        extra_columns: extra_columns.into_iter().map(|(_, n)| n).collect(),
    })
}

fn text(
    source_name: &str,
    line: usize,
    name: &str,
    col: usize,
    raw: &[u8],
) -> Result<String, IngestError> {
    let field = format!("{name} (column {})", col + 1);
    if raw.len() > MAX_FIELD_BYTES {
        return Err(IngestError::too_large(
            source_name,
            Some(line),
            &format!("the size of field {field}"),
            MAX_FIELD_BYTES,
            raw.len(),
        ));
    }
    let s = std::str::from_utf8(raw).map_err(|_| {
        IngestError::malformed(
            source_name,
            Some(line),
            Some(&field),
            "the value is not valid UTF-8",
        )
    })?;
    Ok(s.trim().to_string())
}

fn boolean(source_name: &str, line: usize, col: &str, v: &str) -> Result<bool, IngestError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(IngestError::malformed(
            source_name,
            Some(line),
            Some(col),
            format!("{v:?} is not a boolean (expected true, false, yes or no)"),
        )),
    }
}

/// Kubernetes-style names: lowercase letters, digits, '-' and '.', starting and ending alphanumeric.
fn check_name(
    source_name: &str,
    line: usize,
    col: &str,
    v: &str,
    max: usize,
) -> Result<(), IngestError> {
    let ok = !v.is_empty()
        && v.len() <= max
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && v.as_bytes()[0].is_ascii_alphanumeric()
        && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(IngestError::malformed(
            source_name,
            Some(line),
            Some(col),
            format!(
                "{v:?} is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', at most {max} characters)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "Namespace,Workload,Owner,Stateful,Sidecar_Mode,Compatibility,Ambient_Ready,Exception_IDs,tier\n";

    #[test]
    fn parses_sorts_and_keeps_extra_columns() {
        let csv = format!(
            "{HEAD}payments,payments-ledger-sync,Payments Team,yes,injected,Unresolved,no,mesh-cert-exc-117;mesh-cert-exc-122,1\nidentity,identity-token-service,Identity,false,injected,validated,true,,2\n"
        );
        let inv = parse_csv("inv.csv", csv.as_bytes()).unwrap();
        assert_eq!(inv.workloads[0].workload, "identity-token-service");
        let sync = inv.get("payments", "payments-ledger-sync").unwrap();
        assert!(sync.stateful && !sync.ambient_ready);
        assert_eq!(sync.compatibility, Compatibility::Unresolved);
        assert_eq!(
            sync.exception_ids,
            vec!["mesh-cert-exc-117", "mesh-cert-exc-122"]
        );
        assert_eq!(sync.extra["tier"], "1");
        assert_eq!(sync.line, 2);
    }

    #[test]
    fn duplicate_names_both_lines() {
        let csv = format!(
            "{HEAD}a,w,o,no,injected,validated,no,,\nb,x,o,no,injected,validated,no,,\na,w,o,no,injected,validated,no,,\n"
        );
        let e = parse_csv("inv.csv", csv.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 4") && e.contains("line 2") && e.contains("a/w"),
            "{e}"
        );
    }

    #[test]
    fn bad_boolean_names_line_and_column() {
        let csv = format!("{HEAD}a,w,o,maybe,injected,validated,no,,\n");
        let e = parse_csv("inv.csv", csv.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("inv.csv, line 2, field stateful") && e.contains("maybe"),
            "{e}"
        );
    }

    #[test]
    fn too_many_columns_is_refused() {
        let header: Vec<String> = (0..1000).map(|i| format!("c{i}")).collect();
        let e = parse_csv("wide.csv", header.join(",").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("number of columns") && e.contains("256"), "{e}");
    }
}
