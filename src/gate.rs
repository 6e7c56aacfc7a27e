//! Gate definitions: the readiness rules of one gate, written as TOML by a platform engineer
//! and stored as an artifact of kind `gate-definition` (docs/GATES.md §"Gate definitions").
//!
//! Parsing is strict: unknown fields, unknown blocker codes in the classification and
//! impossible values are refused with an error naming the field.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::entry::Tier;
use crate::keys::Role;

/// The `format` value of this version of the gate-definition format.
pub const GATE_FORMAT: &str = "evl-gate/v1";
/// The artifact kind gate definitions are stored under.
pub const GATE_KIND: &str = "gate-definition";
/// Largest gate definition accepted.
pub const MAX_GATE_BYTES: usize = 256 * 1024;

/// Which artifacts a rule reads: a kind and labels that must all match exactly, and optionally
/// the requirements of [`Requirement`]; a value given here wins over the rule table's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    pub kind: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tier: Option<Tier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u32>,
}

/// What a reading rule requires of the artifacts it reads (docs/GATES.md §"Requirements"):
/// the same six requirements for every rule, checked by one implementation
/// (`basis::Basis::candidates`, `basis::Evidence::staleness`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The artifact kind.
    pub kind: String,
    /// Labels the artifact must carry, each with exactly this value.
    pub labels: BTreeMap<String, String>,
    /// The lowest source tier that counts, after promotion.
    pub min_tier: Tier,
    /// Only sealed (read-only captured) artifacts count.
    pub sealed: bool,
    /// The signer of the artifact must have held this role at the artifact's log position.
    pub signer_role: Option<Role>,
    /// Evidence observed more than this many days before the as-of time is stale.
    pub max_age_days: Option<u32>,
}

/// A rule table's requirement fields, the defaults for its selectors.
struct TableDefaults {
    min_tier: Tier,
    sealed: bool,
    signer_role: Option<Role>,
    max_age_days: Option<u32>,
}

impl Selector {
    /// The requirement this selector states, with the rule table's values where it is silent.
    fn requirement(&self, d: TableDefaults) -> Requirement {
        Requirement {
            kind: self.kind.clone(),
            labels: self.labels.clone(),
            min_tier: self.min_tier.unwrap_or(d.min_tier),
            sealed: self.sealed.unwrap_or(d.sealed),
            signer_role: self.signer_role.or(d.signer_role),
            max_age_days: self.max_age_days.or(d.max_age_days),
        }
    }
}

/// What a required evidence kind must cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Cover {
    /// At least one acceptable artifact.
    #[default]
    None,
    /// Every in-scope workload (artifact scope names the workload or its namespace).
    Workloads,
    /// Every in-scope namespace.
    Namespaces,
    /// Every path listed in `paths` (the artifact's path: a rollback drill's `path`, else the
    /// `path` label).
    Paths,
}

/// One required evidence kind (also how checklist controls are expressed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRule {
    /// Rule name, shown in the trace.
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default = "authoritative")]
    pub min_tier: Tier,
    #[serde(default)]
    pub sealed: bool,
    /// The signer must have held this role at the artifact's log position.
    pub signer_role: Option<Role>,
    /// Evidence older than this at the as-of time is stale.
    pub max_age_days: Option<u32>,
    #[serde(default)]
    pub cover: Cover,
    #[serde(default)]
    pub paths: Vec<String>,
    /// Rollback drills: only `outcome = "pass"` counts.
    #[serde(default)]
    pub require_pass: bool,
    /// Evidence whose `valid_until` falls before the packet's proposed checkpoint does not
    /// count (e.g. an identity certificate that lapses before the cutover).
    #[serde(default)]
    pub valid_through_checkpoint: bool,
    #[serde(default = "evidence_missing")]
    pub missing_code: String,
    #[serde(default = "evidence_stale")]
    pub stale_code: String,
}

/// Acknowledgments required for every in-scope namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRule {
    pub name: String,
    pub topic: String,
    /// The role the signer must hold at the acknowledgment's log position.
    pub role: String,
    /// When set, the acknowledgment's subject must be the current artifact this selects.
    pub subject: Option<Selector>,
    #[serde(default = "ack_missing")]
    pub code: String,
}

/// The frozen workload inventory and the compatibility every in-scope workload needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryRule {
    #[serde(default = "inventory_selector")]
    pub select: Selector,
    #[serde(default = "authoritative")]
    pub min_tier: Tier,
    #[serde(default)]
    pub sealed: bool,
    pub signer_role: Option<Role>,
    pub max_age_days: Option<u32>,
    /// Accepted statuses among validated, unresolved, incompatible, unknown.
    pub required_compatibility: Vec<String>,
    #[serde(default = "compat_code")]
    pub code: String,
    #[serde(default = "not_in_inventory")]
    pub missing_code: String,
}

/// Exceptions that must outlive the packet's proposed checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionRule {
    #[serde(default = "exceptions_selector")]
    pub select: Selector,
    #[serde(default = "authoritative")]
    pub min_tier: Tier,
    #[serde(default)]
    pub sealed: bool,
    pub signer_role: Option<Role>,
    pub max_age_days: Option<u32>,
    #[serde(default = "exc_code")]
    pub code: String,
    #[serde(default = "exc_expired")]
    pub expired_code: String,
}

/// Which value of a telemetry series is compared: the last sample, or the worst sample in the
/// window (highest error rate and p95, lowest success rate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Statistic {
    Last,
    #[default]
    Worst,
}

/// Canary telemetry thresholds (seed 003: error rate > 5 %, p95 latency +50 %).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryRule {
    pub canary: Selector,
    pub baseline: Option<Selector>,
    #[serde(default = "authoritative")]
    pub min_tier: Tier,
    /// The canary must be sealed.
    #[serde(default)]
    pub sealed: bool,
    /// The signer of the canary and the baseline must have held this role.
    pub signer_role: Option<Role>,
    /// The canary is stale when observed more than this many days before the as-of time.
    pub max_age_days: Option<u32>,
    #[serde(default)]
    pub statistic: Statistic,
    pub max_error_rate_pct: Option<f64>,
    pub max_p95_increase_pct: Option<f64>,
    pub min_success_rate_pct: Option<f64>,
    #[serde(default = "telemetry_code")]
    pub code: String,
    #[serde(default = "telemetry_missing")]
    pub missing_code: String,
}

/// Where the delegated-authority snapshot comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityRule {
    #[serde(default = "authority_selector")]
    pub select: Selector,
    #[serde(default = "authoritative")]
    pub min_tier: Tier,
    #[serde(default)]
    pub sealed: bool,
    pub signer_role: Option<Role>,
    pub max_age_days: Option<u32>,
}

impl EvidenceRule {
    /// What this rule requires of the artifacts it reads.
    pub fn requirement(&self) -> Requirement {
        Requirement {
            kind: self.kind.clone(),
            labels: self.labels.clone(),
            min_tier: self.min_tier,
            sealed: self.sealed,
            signer_role: self.signer_role,
            max_age_days: self.max_age_days,
        }
    }
}

impl InventoryRule {
    /// What this rule requires of the inventory it reads.
    pub fn requirement(&self) -> Requirement {
        self.select.requirement(TableDefaults {
            min_tier: self.min_tier,
            sealed: self.sealed,
            signer_role: self.signer_role,
            max_age_days: self.max_age_days,
        })
    }
}

impl ExceptionRule {
    /// What this rule requires of the register it reads.
    pub fn requirement(&self) -> Requirement {
        self.select.requirement(TableDefaults {
            min_tier: self.min_tier,
            sealed: self.sealed,
            signer_role: self.signer_role,
            max_age_days: self.max_age_days,
        })
    }
}

impl AuthorityRule {
    /// What this rule requires of the authority snapshot it reads.
    pub fn requirement(&self) -> Requirement {
        self.select.requirement(TableDefaults {
            min_tier: self.min_tier,
            sealed: self.sealed,
            signer_role: self.signer_role,
            max_age_days: self.max_age_days,
        })
    }
}

impl TelemetryRule {
    /// What this rule requires of the canary window.
    pub fn canary_requirement(&self) -> Requirement {
        self.canary.requirement(TableDefaults {
            min_tier: self.min_tier,
            sealed: self.sealed,
            signer_role: self.signer_role,
            max_age_days: self.max_age_days,
        })
    }

    /// What this rule requires of the baseline window: the table's `sealed` and `max_age_days`
    /// concern the canary only (a baseline is older by nature).
    pub fn baseline_requirement(&self) -> Option<Requirement> {
        self.baseline.as_ref().map(|b| {
            b.requirement(TableDefaults {
                min_tier: self.min_tier,
                sealed: false,
                signer_role: self.signer_role,
                max_age_days: None,
            })
        })
    }
}

impl AckRule {
    /// What this rule requires of the acknowledged artifact, if it names one. Its tier defaults
    /// to operational: the subject names *what* is acknowledged.
    pub fn subject_requirement(&self) -> Option<Requirement> {
        self.subject.as_ref().map(|s| {
            s.requirement(TableDefaults {
                min_tier: Tier::Operational,
                sealed: false,
                signer_role: None,
                max_age_days: None,
            })
        })
    }
}

/// Which blocker codes can be narrowed around and which force escalation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Classification {
    /// Codes that can be narrowed around by dropping the workloads they affect.
    #[serde(default)]
    pub scoped: Vec<String>,
    /// Codes that always escalate.
    #[serde(default)]
    pub escalate: Vec<String>,
}

/// A gate definition (docs/GATES.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateDefinition {
    pub format: String,
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub evidence: Vec<EvidenceRule>,
    #[serde(default)]
    pub acknowledgments: Vec<AckRule>,
    pub inventory: Option<InventoryRule>,
    pub exceptions: Option<ExceptionRule>,
    pub telemetry: Option<TelemetryRule>,
    pub authority: Option<AuthorityRule>,
    #[serde(default)]
    pub blockers: Classification,
}

fn authoritative() -> Tier {
    Tier::Authoritative
}
fn evidence_missing() -> String {
    "evidence-missing".into()
}
fn evidence_stale() -> String {
    "evidence-stale".into()
}
fn ack_missing() -> String {
    "acknowledgment-missing".into()
}
fn compat_code() -> String {
    "compatibility-unresolved".into()
}
fn not_in_inventory() -> String {
    "workload-not-in-inventory".into()
}
fn exc_code() -> String {
    "exception-expires-before-checkpoint".into()
}
fn exc_expired() -> String {
    "exception-expired".into()
}
fn telemetry_code() -> String {
    "telemetry-threshold".into()
}
fn telemetry_missing() -> String {
    "telemetry-missing".into()
}
fn inventory_selector() -> Selector {
    Selector {
        kind: "workload-inventory".into(),
        ..Selector::default()
    }
}
fn exceptions_selector() -> Selector {
    Selector {
        kind: "certificate-exception-register".into(),
        ..Selector::default()
    }
}
fn authority_selector() -> Selector {
    Selector {
        kind: "authority-snapshot".into(),
        ..Selector::default()
    }
}

/// Blocker codes the engine itself raises whatever the definition says.
pub const ENGINE_CODES: [&str; 2] = ["reviewer-blocker", "evidence-unreadable"];

/// Why a gate definition is refused.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("the gate definition is {0} bytes, over the {MAX_GATE_BYTES}-byte cap")]
    TooLarge(usize),
    #[error("the gate definition is not UTF-8 text")]
    NotUtf8,
    #[error("the gate definition does not parse: {0}")]
    Toml(String),
    #[error("the gate definition says format '{0}'; this evl reads format '{GATE_FORMAT}'")]
    Format(String),
    #[error("gate definition field `{field}`: {reason}")]
    Field { field: String, reason: String },
}

fn field(field: impl Into<String>, reason: impl Into<String>) -> GateError {
    GateError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

const COMPAT: [&str; 4] = ["validated", "unresolved", "incompatible", "unknown"];

/// A TOML error as one line: `line L, column C: MESSAGE`.
fn one_line(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {msg}")
        }
        None => msg,
    }
}

impl GateDefinition {
    /// Parses and checks a gate definition.
    pub fn parse(bytes: &[u8]) -> Result<GateDefinition, GateError> {
        if bytes.len() > MAX_GATE_BYTES {
            return Err(GateError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| GateError::NotUtf8)?;
        let g: GateDefinition =
            toml::from_str(text).map_err(|e| GateError::Toml(one_line(text, &e)))?;
        if g.format != GATE_FORMAT {
            return Err(GateError::Format(g.format));
        }
        g.check()?;
        Ok(g)
    }

    fn check(&self) -> Result<(), GateError> {
        if self.id.trim().is_empty() {
            return Err(field("id", "must not be empty"));
        }
        let mut names = BTreeSet::new();
        for (i, r) in self.evidence.iter().enumerate() {
            let at = |f: &str| format!("evidence[{i}].{f}");
            if !names.insert(r.name.clone()) {
                return Err(field(at("name"), format!("'{}' is used twice", r.name)));
            }
            if r.kind.trim().is_empty() {
                return Err(field(at("kind"), "must not be empty"));
            }
            match (r.cover, r.paths.is_empty()) {
                (Cover::Paths, true) => {
                    return Err(field(
                        at("paths"),
                        "cover = \"paths\" needs at least one path",
                    ));
                }
                (c, false) if c != Cover::Paths => {
                    return Err(field(
                        at("paths"),
                        "paths are only read with cover = \"paths\"",
                    ));
                }
                _ => {}
            }
            if r.max_age_days == Some(0) {
                return Err(field(at("max_age_days"), "must be at least 1"));
            }
        }
        for (i, a) in self.acknowledgments.iter().enumerate() {
            a.role
                .parse::<crate::keys::Role>()
                .map_err(|e| field(format!("acknowledgments[{i}].role"), e.to_string()))?;
            if a.topic.trim().is_empty() {
                return Err(field(
                    format!("acknowledgments[{i}].topic"),
                    "must not be empty",
                ));
            }
        }
        for (name, sel) in self.selectors() {
            if sel.kind.trim().is_empty() {
                return Err(field(format!("{name}.kind"), "must not be empty"));
            }
            if sel.max_age_days == Some(0) {
                return Err(field(format!("{name}.max_age_days"), "must be at least 1"));
            }
        }
        for (name, days) in [
            (
                "inventory",
                self.inventory.as_ref().and_then(|r| r.max_age_days),
            ),
            (
                "exceptions",
                self.exceptions.as_ref().and_then(|r| r.max_age_days),
            ),
            (
                "telemetry",
                self.telemetry.as_ref().and_then(|r| r.max_age_days),
            ),
            (
                "authority",
                self.authority.as_ref().and_then(|r| r.max_age_days),
            ),
        ] {
            if days == Some(0) {
                return Err(field(format!("{name}.max_age_days"), "must be at least 1"));
            }
        }
        if let Some(inv) = &self.inventory {
            if inv.required_compatibility.is_empty() {
                return Err(field(
                    "inventory.required_compatibility",
                    "must name at least one status",
                ));
            }
            for s in &inv.required_compatibility {
                if !COMPAT.contains(&s.as_str()) {
                    return Err(field(
                        "inventory.required_compatibility",
                        format!("'{s}' is not one of validated, unresolved, incompatible, unknown"),
                    ));
                }
            }
        }
        if let Some(t) = &self.telemetry {
            for (name, v) in [
                ("max_error_rate_pct", t.max_error_rate_pct),
                ("max_p95_increase_pct", t.max_p95_increase_pct),
                ("min_success_rate_pct", t.min_success_rate_pct),
            ] {
                if let Some(v) = v
                    && !(v.is_finite() && v >= 0.0)
                {
                    return Err(field(
                        format!("telemetry.{name}"),
                        "must be a non-negative number",
                    ));
                }
            }
            if t.max_p95_increase_pct.is_some() && t.baseline.is_none() {
                return Err(field(
                    "telemetry.baseline",
                    "max_p95_increase_pct needs a baseline selector",
                ));
            }
        }
        let known = self.codes();
        for (list, codes) in [
            ("blockers.scoped", &self.blockers.scoped),
            ("blockers.escalate", &self.blockers.escalate),
        ] {
            for c in codes {
                if !known.contains(c) {
                    return Err(field(
                        list,
                        format!(
                            "'{c}' is not a blocker code this gate can raise (it raises: {})",
                            known.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every selector of the definition, with the field path that names it in errors.
    fn selectors(&self) -> Vec<(String, &Selector)> {
        let mut v = Vec::new();
        for (i, a) in self.acknowledgments.iter().enumerate() {
            if let Some(s) = &a.subject {
                v.push((format!("acknowledgments[{i}].subject"), s));
            }
        }
        if let Some(r) = &self.inventory {
            v.push(("inventory.select".to_string(), &r.select));
        }
        if let Some(r) = &self.exceptions {
            v.push(("exceptions.select".to_string(), &r.select));
        }
        if let Some(r) = &self.telemetry {
            v.push(("telemetry.canary".to_string(), &r.canary));
            if let Some(b) = &r.baseline {
                v.push(("telemetry.baseline".to_string(), b));
            }
        }
        if let Some(r) = &self.authority {
            v.push(("authority.select".to_string(), &r.select));
        }
        v
    }

    /// Every blocker code this definition can raise.
    pub fn codes(&self) -> BTreeSet<String> {
        let mut c: BTreeSet<String> = ENGINE_CODES.iter().map(|s| s.to_string()).collect();
        for r in &self.evidence {
            c.insert(r.missing_code.clone());
            c.insert(r.stale_code.clone());
        }
        for a in &self.acknowledgments {
            c.insert(a.code.clone());
        }
        if let Some(i) = &self.inventory {
            c.insert(i.code.clone());
            c.insert(i.missing_code.clone());
            c.insert("evidence-missing".into());
        }
        if let Some(e) = &self.exceptions {
            c.insert(e.code.clone());
            c.insert(e.expired_code.clone());
            c.insert("evidence-missing".into());
        }
        if let Some(t) = &self.telemetry {
            c.insert(t.code.clone());
            c.insert(t.missing_code.clone());
            c.insert("evidence-missing".into());
        }
        // A single-artifact rule with a freshness limit raises `evidence-stale`.
        let single = [
            self.inventory.as_ref().map(|r| r.requirement()),
            self.exceptions.as_ref().map(|r| r.requirement()),
            self.telemetry.as_ref().map(|r| r.canary_requirement()),
            self.telemetry
                .as_ref()
                .and_then(|r| r.baseline_requirement()),
        ];
        let subjects = self.acknowledgments.iter().map(|a| a.subject_requirement());
        if single
            .into_iter()
            .chain(subjects)
            .flatten()
            .any(|r| r.max_age_days.is_some())
        {
            c.insert("evidence-stale".into());
        }
        c
    }

    /// Whether blockers with `code` can be narrowed around.
    pub fn is_scoped(&self, code: &str) -> bool {
        self.blockers.scoped.iter().any(|c| c == code)
    }

    /// Whether blockers with `code` always escalate.
    pub fn is_escalate_only(&self, code: &str) -> bool {
        self.blockers.escalate.iter().any(|c| c == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "format = \"evl-gate/v1\"\nid = \"g\"\ntitle = \"t\"\n";

    #[test]
    fn minimal_definition_parses() {
        let g = GateDefinition::parse(MIN.as_bytes()).unwrap();
        assert_eq!(g.id, "g");
        assert!(g.evidence.is_empty());
    }

    #[test]
    fn unknown_fields_and_codes_are_named() {
        let e = GateDefinition::parse(format!("{MIN}colour = \"red\"\n").as_bytes()).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = GateDefinition::parse(
            format!("{MIN}[blockers]\nscoped = [\"no-such-code\"]\n").as_bytes(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("blockers.scoped") && e.to_string().contains("no-such-code"),
            "{e}"
        );
        let e = GateDefinition::parse(
            format!("{MIN}[[evidence]]\nname = \"d\"\nkind = \"k\"\ncover = \"paths\"\n")
                .as_bytes(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("evidence[0].paths"), "{e}");
        let e = GateDefinition::parse(b"format = \"evl-gate/v9\"\nid = \"g\"\ntitle = \"t\"\n")
            .unwrap_err();
        assert!(matches!(e, GateError::Format(_)));
    }
}
