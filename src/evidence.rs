//! Evidence formats evl's importers do not cover: rollback-drill records, delegated-authority
//! snapshots and certificate-exception registers, each a small TOML file
//! (docs/GATES.md §"Evidence formats"). Parsing is strict and pure.

use serde::{Deserialize, Deserializer};

use crate::entry::WorkloadRef;
use crate::timestamp::Timestamp;

/// Artifact kind of a rollback-drill record.
pub const DRILL_KIND: &str = "rollback-drill";
/// Artifact kind of a delegated-authority snapshot.
pub const AUTHORITY_KIND: &str = "authority-snapshot";
/// Artifact kind of a certificate-exception register.
pub const EXCEPTIONS_KIND: &str = "certificate-exception-register";

/// Largest evidence document accepted.
pub const MAX_EVIDENCE_BYTES: usize = 1024 * 1024;

/// A time written either as a TOML datetime (`2026-04-12T00:00:00Z`) or a quoted RFC 3339 string.
fn de_time<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    // The datetime first: most evidence writes its times unquoted, and an untagged variant
    // that fails first costs an error message formatted and thrown away.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        D(toml::value::Datetime),
        S(String),
    }
    let text = match Raw::deserialize(d)? {
        Raw::S(s) => s,
        Raw::D(dt) => dt.to_string(),
    };
    text.parse::<Timestamp>().map_err(serde::de::Error::custom)
}

fn de_workloads<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<WorkloadRef>, D::Error> {
    let raw = Vec::<String>::deserialize(d)?;
    let mut v = raw
        .iter()
        .map(|s| s.parse::<WorkloadRef>().map_err(serde::de::Error::custom))
        .collect::<Result<Vec<_>, _>>()?;
    v.sort();
    v.dedup();
    Ok(v)
}

/// Outcome of a rollback drill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
}

/// A rollback-drill record (`format = "evl-rollback-drill/v1"`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackDrill {
    pub format: String,
    /// The rollback path rehearsed, e.g. `legacy-grpc-settlement-adapter`.
    pub path: String,
    #[serde(deserialize_with = "de_time")]
    pub performed_at: Timestamp,
    pub outcome: Outcome,
    #[serde(default, deserialize_with = "de_workloads")]
    pub workloads: Vec<WorkloadRef>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub runbook: String,
    #[serde(default)]
    pub performed_by: String,
    #[serde(default)]
    pub notes: String,
}

/// A verdict a delegated authority may package.
pub const VERDICT_NAMES: [&str; 4] = ["proceed", "hold", "narrow", "escalate"];

/// A delegated-authority snapshot (`format = "evl-authority/v1"`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthoritySnapshot {
    pub format: String,
    pub id: String,
    /// Who holds the delegated authority.
    pub holder: String,
    /// Who decisions beyond it go to.
    #[serde(default)]
    pub escalate_to: String,
    #[serde(deserialize_with = "de_time")]
    pub taken_at: Timestamp,
    #[serde(deserialize_with = "de_time")]
    pub valid_until: Timestamp,
    pub permitted_verdicts: Vec<String>,
    /// Largest share of the packet's workloads a narrow may leave out, in percent.
    pub max_out_of_scope_share_pct: f64,
}

/// One certificate exception.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    pub id: String,
    #[serde(default, deserialize_with = "de_workloads")]
    pub workloads: Vec<WorkloadRef>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(deserialize_with = "de_time")]
    pub expires_at: Timestamp,
    pub reason: String,
    #[serde(default)]
    pub owner: String,
}

/// A certificate-exception register (`format = "evl-exception-register/v1"`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionRegister {
    pub format: String,
    #[serde(default, rename = "exception")]
    pub exceptions: Vec<Exception>,
}

/// Why an evidence document is refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EvidenceError {
    #[error("{source_name}: {len} bytes is over the {MAX_EVIDENCE_BYTES}-byte cap")]
    TooLarge { source_name: String, len: usize },
    #[error("{source_name}: not UTF-8 text")]
    NotUtf8 { source_name: String },
    #[error("{source_name}: {reason}")]
    Invalid { source_name: String, reason: String },
}

fn parse_toml<T: serde::de::DeserializeOwned>(
    source_name: &str,
    bytes: &[u8],
    format: &str,
    get_format: impl Fn(&T) -> &str,
) -> Result<T, EvidenceError> {
    if bytes.len() > MAX_EVIDENCE_BYTES {
        return Err(EvidenceError::TooLarge {
            source_name: source_name.into(),
            len: bytes.len(),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| EvidenceError::NotUtf8 {
        source_name: source_name.into(),
    })?;
    let v: T = toml::from_str(text).map_err(|e| EvidenceError::Invalid {
        source_name: source_name.into(),
        reason: e.to_string().trim().replace('\n', " "),
    })?;
    if get_format(&v) != format {
        return Err(EvidenceError::Invalid {
            source_name: source_name.into(),
            reason: format!("format is '{}', expected '{format}'", get_format(&v)),
        });
    }
    Ok(v)
}

impl RollbackDrill {
    /// Parses a rollback-drill record.
    pub fn parse(source_name: &str, bytes: &[u8]) -> Result<RollbackDrill, EvidenceError> {
        let d: RollbackDrill = parse_toml(
            source_name,
            bytes,
            "evl-rollback-drill/v1",
            |d: &RollbackDrill| &d.format,
        )?;
        if d.path.trim().is_empty() {
            return Err(EvidenceError::Invalid {
                source_name: source_name.into(),
                reason: "path must not be empty".into(),
            });
        }
        Ok(d)
    }
}

impl AuthoritySnapshot {
    /// Parses an authority snapshot.
    pub fn parse(source_name: &str, bytes: &[u8]) -> Result<AuthoritySnapshot, EvidenceError> {
        let a: AuthoritySnapshot = parse_toml(
            source_name,
            bytes,
            "evl-authority/v1",
            |a: &AuthoritySnapshot| &a.format,
        )?;
        for v in &a.permitted_verdicts {
            if !VERDICT_NAMES.contains(&v.as_str()) {
                return Err(EvidenceError::Invalid {
                    source_name: source_name.into(),
                    reason: format!(
                        "permitted_verdicts: '{v}' is not one of proceed, hold, narrow, escalate"
                    ),
                });
            }
        }
        if !(a.max_out_of_scope_share_pct.is_finite()
            && (0.0..=100.0).contains(&a.max_out_of_scope_share_pct))
        {
            return Err(EvidenceError::Invalid {
                source_name: source_name.into(),
                reason: "max_out_of_scope_share_pct must be between 0 and 100".into(),
            });
        }
        Ok(a)
    }

    /// Whether the snapshot lets its holder package `verdict` (a name from [`VERDICT_NAMES`]).
    pub fn permits(&self, verdict: &str) -> bool {
        self.permitted_verdicts.iter().any(|v| v == verdict)
    }
}

impl ExceptionRegister {
    /// Parses an exception register; ids must be unique.
    pub fn parse(source_name: &str, bytes: &[u8]) -> Result<ExceptionRegister, EvidenceError> {
        let mut r: ExceptionRegister = parse_toml(
            source_name,
            bytes,
            "evl-exception-register/v1",
            |r: &ExceptionRegister| &r.format,
        )?;
        r.exceptions.sort_by(|a, b| a.id.cmp(&b.id));
        for w in r.exceptions.windows(2) {
            if w[0].id == w[1].id {
                return Err(EvidenceError::Invalid {
                    source_name: source_name.into(),
                    reason: format!("exception id '{}' appears twice", w[0].id),
                });
            }
        }
        Ok(r)
    }
}

/// Every artifact kind whose format evl reads, sorted: the formats of this module, the gate
/// definition (docs/GATES.md) and the importers' (docs/IMPORTERS.md). `evl add` and `evl check`
/// validate these; other kinds are stored as opaque bytes.
pub const KNOWN_KINDS: [&str; 8] = [
    AUTHORITY_KIND,
    "certificate",
    EXCEPTIONS_KIND,
    crate::gate::GATE_KIND,
    "mesh-policy",
    DRILL_KIND,
    "telemetry",
    "workload-inventory",
];

/// Checks that `bytes` (named `source_name` in errors) are a valid document of artifact kind
/// `kind`. `Ok(false)` when evl does not read that kind; the error is the parser's, one line
/// naming the source and the problem. Telemetry is read with window name `window`.
pub fn check_kind(
    kind: &str,
    source_name: &str,
    bytes: &[u8],
    window: Option<&str>,
) -> Result<bool, String> {
    match kind {
        DRILL_KIND => RollbackDrill::parse(source_name, bytes)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        AUTHORITY_KIND => AuthoritySnapshot::parse(source_name, bytes)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        EXCEPTIONS_KIND => ExceptionRegister::parse(source_name, bytes)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        crate::gate::GATE_KIND => crate::gate::GateDefinition::parse(bytes)
            .map(|_| ())
            .map_err(|e| format!("{source_name}: {e}")),
        other => match crate::ingest::Importer::ALL
            .into_iter()
            .find(|i| i.kind() == other)
        {
            None => return Ok(false),
            Some(importer) => {
                let options = crate::ingest::ParseOptions {
                    window: Some(window.unwrap_or(source_name).to_string()),
                    ..Default::default()
                };
                crate::ingest::parse_with(importer, source_name, bytes, &options)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        },
    }
    .map(|()| true)
}

/// The known kind closest to `kind` by edit distance, if it is close enough to be a typo
/// (at most a third of its length, at least 2).
pub fn nearest_kind(kind: &str) -> Option<&'static str> {
    KNOWN_KINDS
        .iter()
        .map(|k| (strsim::levenshtein(kind, k), *k))
        .min()
        .filter(|(d, _)| *d > 0 && *d <= (kind.chars().count() / 3).max(2))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_kinds_are_checked_and_typos_have_a_nearest_kind() {
        assert!(KNOWN_KINDS.windows(2).all(|w| w[0] < w[1]), "sorted");
        assert_eq!(nearest_kind("rollback-dril"), Some("rollback-drill"));
        assert_eq!(
            nearest_kind("workload-inventry"),
            Some("workload-inventory")
        );
        assert_eq!(nearest_kind("control-evidence"), None);
        assert_eq!(
            nearest_kind("rollback-drill"),
            None,
            "a known kind is no typo"
        );
        assert_eq!(
            check_kind("control-evidence", "c.toml", b"anything", None),
            Ok(false)
        );
        let e = check_kind("rollback-drill", "d.toml", b"format = 1", None).unwrap_err();
        assert!(e.starts_with("d.toml: "), "{e}");
        let e = check_kind(
            "gate-definition",
            "g.toml",
            b"format = \"evl-gate/v1\"\nid = \"g\"\ntitle = \"t\"\ncolour = 1\n",
            None,
        )
        .unwrap_err();
        assert!(e.starts_with("g.toml: ") && e.contains("colour"), "{e}");
        assert_eq!(
            check_kind("workload-inventory", "i.csv", b"namespace,workload\n", None)
                .map_err(|_| ()),
            Err(())
        );
    }

    #[test]
    fn drill_accepts_toml_datetimes_and_strings() {
        let a = b"format = \"evl-rollback-drill/v1\"\npath = \"p\"\nperformed_at = 2026-04-05T06:00:00Z\noutcome = \"pass\"\nworkloads = [\"b/x\", \"a/y\"]\n";
        let d = RollbackDrill::parse("d.toml", a).unwrap();
        assert_eq!(d.performed_at, "2026-04-05T06:00:00Z".parse().unwrap());
        assert_eq!(d.workloads[0].to_string(), "a/y");
        let b = String::from_utf8(a.to_vec())
            .unwrap()
            .replace("2026-04-05T06:00:00Z", "\"2026-04-05T06:00:00Z\"");
        assert_eq!(RollbackDrill::parse("d.toml", b.as_bytes()).unwrap(), d);
    }

    #[test]
    fn bad_evidence_is_refused_naming_the_problem() {
        let e = RollbackDrill::parse("d.toml", b"format = \"evl-rollback-drill/v1\"\npath = \"p\"\nperformed_at = 2026-04-05T06:00:00Z\noutcome = \"maybe\"\n").unwrap_err();
        assert!(
            e.to_string().contains("d.toml") && e.to_string().contains("maybe"),
            "{e}"
        );
        let e = AuthoritySnapshot::parse("a.toml", b"format = \"evl-authority/v1\"\nid = \"x\"\nholder = \"h\"\ntaken_at = 2026-04-12T00:00:00Z\nvalid_until = 2026-05-12T00:00:00Z\npermitted_verdicts = [\"approve\"]\nmax_out_of_scope_share_pct = 40.0\n").unwrap_err();
        assert!(e.to_string().contains("approve"), "{e}");
        let e = ExceptionRegister::parse("r.toml", b"format = \"evl-exception-register/v1\"\n[[exception]]\nid = \"a\"\nexpires_at = 2026-04-12T00:00:00Z\nreason = \"r\"\n[[exception]]\nid = \"a\"\nexpires_at = 2026-04-12T00:00:00Z\nreason = \"r\"\n").unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }
}
