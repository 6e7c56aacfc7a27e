//! Dispositions: the derived recommendation for one packet at one as-of time, and its
//! canonical bytes (docs/FORMAT.md §"Dispositions").
//!
//! Canonical bytes of a version-3 document are its RFC 8785 (JSON Canonicalization Scheme)
//! serialization, so any JCS implementation reproduces them from the parsed JSON. Versions 1
//! and 2 (still read, and re-derived by replay) are `serde_json::to_string_pretty` of
//! [`Disposition`] (two-space indent, fields in declaration order) followed by one `\n`.
//! Every list is sorted in every version.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, EntryId};
use crate::domain;
use crate::entry::Tier;
use crate::timestamp::Timestamp;

/// The `format` value of the disposition documents this evl derives (engine 3): version 2's
/// fields, with RFC 8785 (JCS) canonical bytes.
pub const DISPOSITION_FORMAT: &str = "evl-disposition/v3";
/// The `format` value of documents derived by engine 2: version 1 plus `unblock` on every
/// blocker, pretty-printed.
pub const DISPOSITION_FORMAT_V2: &str = "evl-disposition/v2";
/// The `format` value of documents derived by engine 1.
pub const DISPOSITION_FORMAT_V1: &str = "evl-disposition/v1";
/// Largest disposition document read back.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// The recommendation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Proceed,
    Hold,
    Narrow,
    Escalate,
}

impl Verdict {
    /// The verdict's name, as authority snapshots spell it.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Proceed => "proceed",
            Verdict::Hold => "hold",
            Verdict::Narrow => "narrow",
            Verdict::Escalate => "escalate",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name().to_ascii_uppercase())
    }
}

/// What a blocker is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "lowercase")]
pub enum Subject {
    /// `namespace/workload`.
    Workload(String),
    Namespace(String),
    /// A named path, e.g. a rollback path.
    Path(String),
    /// An exception id.
    Exception(String),
    /// A rule of the gate (evidence that is missing as a whole).
    Rule(String),
    Global,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Workload(n) => write!(f, "workload {n}"),
            Subject::Namespace(n) => write!(f, "namespace {n}"),
            Subject::Path(n) => write!(f, "path {n}"),
            Subject::Exception(n) => write!(f, "exception {n}"),
            Subject::Rule(n) => write!(f, "rule {n}"),
            Subject::Global => f.write_str("global"),
        }
    }
}

/// One named blocker.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Blocker {
    pub code: String,
    pub subject: Subject,
    /// Whether the gate lets it be narrowed around (its code is scoped and `affects` is known).
    pub scoped: bool,
    /// In-scope workloads (`ns/wl`) it affects, sorted; empty when it affects the whole packet.
    pub affects: Vec<String>,
    /// Entry ids of the evidence behind it, sorted.
    pub evidence: Vec<EntryId>,
    pub reason: String,
    /// What would clear it (format v2; absent in v1 documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unblock: Option<Unblock>,
}

/// The concrete action that would clear a blocker (docs/GATES.md §"What would unblock it").
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Unblock {
    /// `add-evidence`, `refresh-evidence`, `replace-evidence`, `update-inventory`,
    /// `renew-exception`, `acknowledge` or `close-review`.
    pub action: String,
    /// The evidence kind to add, if the action adds evidence.
    pub kind: Option<String>,
    /// Labels that evidence must carry.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The lowest tier that counts.
    pub min_tier: Option<Tier>,
    /// Whether the evidence must be sealed.
    pub sealed: bool,
    /// The role whose signature is needed: the evidence signer's, the acknowledger's or the
    /// reviewer's.
    pub role: Option<String>,
    /// The entry the action concerns: the artifact to supersede or acknowledge, the
    /// annotation to accept.
    pub subject: Option<EntryId>,
    /// Evidence observed before this time is not fresh at the proposed checkpoint.
    pub observed_after: Option<Timestamp>,
    /// The latest time the action helps: the proposed checkpoint, or an earlier expiry.
    pub by: Option<Timestamp>,
    /// The action in one sentence.
    pub text: String,
}

/// The exact split of the packet's workloads and namespaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ScopeSplit {
    pub in_scope_workloads: Vec<String>,
    pub out_of_scope_workloads: Vec<String>,
    /// Namespaces with at least one in-scope workload.
    pub in_scope_namespaces: Vec<String>,
    /// Namespaces of the packet with no in-scope workload left.
    pub out_of_scope_namespaces: Vec<String>,
    /// Out-of-scope share of the packet's workloads, percent with two decimals.
    pub out_of_scope_share_pct: String,
}

/// A narrowing proposal found in the basis, and how reviewers decided it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProposalStatus {
    pub proposal: EntryId,
    /// `accepted`, `rejected` or `open` (the latest reviewer accept/reject in the basis).
    pub status: String,
    pub keep: Vec<String>,
    /// Whether `keep` is exactly the derived in-scope workload list.
    pub matches_derived_scope: bool,
}

/// One line of the per-rule trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceLine {
    pub rule: String,
    /// `pass`, `blocker`, `ignored`, `info` or `escalate`.
    pub outcome: String,
    pub detail: String,
}

/// A derived disposition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposition {
    pub format: String,
    pub engine_version: String,
    pub packet: EntryId,
    pub packet_name: String,
    pub revision: u32,
    /// Entry id of the gate-definition artifact.
    pub gate: EntryId,
    /// The definition's `id`.
    pub gate_id: String,
    pub as_of: Timestamp,
    pub checkpoint_at: Timestamp,
    /// BLAKE3(`domain::BASIS` || sorted basis entry ids).
    pub basis_digest: Digest,
    pub verdict: Verdict,
    /// For an escalation, the verdict the blockers alone would give.
    pub would_be: Option<Verdict>,
    pub escalation: Vec<String>,
    pub blockers: Vec<Blocker>,
    pub scope: ScopeSplit,
    pub narrowing_proposals: Vec<ProposalStatus>,
    pub trace: Vec<TraceLine>,
}

/// BLAKE3 of `domain::BASIS` followed by the sorted, de-duplicated 32-byte ids.
pub fn basis_digest(ids: &[EntryId]) -> Digest {
    let mut v = ids.to_vec();
    v.sort();
    v.dedup();
    let mut parts: Vec<&[u8]> = vec![domain::BASIS];
    parts.extend(v.iter().map(|d| &d.0[..]));
    Digest::of_parts(&parts)
}

/// Why document bytes are not a disposition.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("the disposition document is {0} bytes, over the {MAX_DOCUMENT_BYTES}-byte cap")]
    TooLarge(usize),
    #[error("the disposition document does not parse: {0}")]
    Json(String),
    #[error("the disposition document is not in canonical form (re-encoding it changes its bytes)")]
    NotCanonical,
    #[error(
        "the disposition document says format '{0}'; this evl reads evl-disposition/v1, v2 and v3"
    )]
    Format(String),
    #[error("a blocker of a {0} document {1} an `unblock` field")]
    Unblock(&'static str, &'static str),
}

impl Disposition {
    /// Canonical bytes: RFC 8785 (JCS) for version 3; for versions 1 and 2 (and anything
    /// else, which `from_bytes` refuses), pretty JSON and a trailing newline.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        if self.format == DISPOSITION_FORMAT {
            return serde_json_canonicalizer::to_vec(self)
                .expect("disposition: JCS encoding failed");
        }
        let mut s = serde_json::to_string_pretty(self).expect("disposition: JSON encoding failed");
        s.push('\n');
        s.into_bytes()
    }

    /// Parses canonical bytes, refusing anything that does not re-encode to the same bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Disposition, DocumentError> {
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(DocumentError::TooLarge(bytes.len()));
        }
        let d: Disposition =
            serde_json::from_slice(bytes).map_err(|e| DocumentError::Json(e.to_string()))?;
        if d.canonical_bytes() != bytes {
            return Err(DocumentError::NotCanonical);
        }
        match d.format.as_str() {
            DISPOSITION_FORMAT_V1 if d.blockers.iter().any(|b| b.unblock.is_some()) => {
                Err(DocumentError::Unblock("v1", "has"))
            }
            DISPOSITION_FORMAT_V2 if d.blockers.iter().any(|b| b.unblock.is_none()) => {
                Err(DocumentError::Unblock("v2", "lacks"))
            }
            DISPOSITION_FORMAT if d.blockers.iter().any(|b| b.unblock.is_none()) => {
                Err(DocumentError::Unblock("v3", "lacks"))
            }
            DISPOSITION_FORMAT_V1 | DISPOSITION_FORMAT_V2 | DISPOSITION_FORMAT => Ok(d),
            other => Err(DocumentError::Format(other.to_string())),
        }
    }

    /// The blocker set as `code subject` strings, for comparing results.
    pub fn blocker_keys(&self) -> Vec<String> {
        self.blockers
            .iter()
            .map(|b| format!("{} {}", b.code, b.subject))
            .collect()
    }
}

/// Field-by-field differences between two documents, as `path: a → b` lines (keys sorted).
pub fn diff(a: &Disposition, b: &Disposition) -> Vec<String> {
    let va = serde_json::to_value(a).expect("disposition: JSON encoding failed");
    let vb = serde_json::to_value(b).expect("disposition: JSON encoding failed");
    diff_values(&va, &vb)
}

/// Differences between two JSON values (used when one side is not a well-formed disposition).
pub fn diff_values(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", a, b, &mut out);
    out
}

fn short(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(157).collect::<String>())
    } else {
        s
    }
}

fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(ma), Value::Object(mb)) => {
            for (k, va) in ma {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match mb.get(k) {
                    Some(vb) => walk(&p, va, vb, out),
                    None => out.push(format!("{p}: {} → (absent)", short(va))),
                }
            }
            for (k, vb) in mb {
                if !ma.contains_key(k) {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    out.push(format!("{p}: (absent) → {}", short(vb)));
                }
            }
        }
        (Value::Array(xa), Value::Array(xb)) => {
            for i in 0..xa.len().max(xb.len()) {
                let p = format!("{path}[{i}]");
                match (xa.get(i), xb.get(i)) {
                    (Some(x), Some(y)) => walk(&p, x, y, out),
                    (Some(x), None) => out.push(format!("{p}: {} → (absent)", short(x))),
                    (None, Some(y)) => out.push(format!("{p}: (absent) → {}", short(y))),
                    (None, None) => {}
                }
            }
        }
        _ if a != b => out.push(format!("{path}: {} → {}", short(a), short(b))),
        _ => {}
    }
}
