//! Gate test cases, like `opa test` for policies: a directory of case files, each naming a
//! gate definition, evidence files with their metadata, acknowledgments, annotations, an
//! as-of time and the expected verdict, blockers and scope. Each case is evaluated in memory
//! with the current engine, no ledger; a failing case names its first difference
//! (docs/GATES.md §"Testing a gate").
//!
//! Entries are signed with keys derived from each signer's name (`SecretKey::demo_from_phrase`
//! of `evl gate test: NAME`): test cases hold no secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::digest::{Digest, EntryId};
use crate::disposition::{Disposition, Verdict};
use crate::entry::{
    Acknowledgment, Annotation, AnnotationKind, ArtifactMeta, ENTRY_FORMAT, Entry,
    NarrowingProposal, PacketRevision, Payload, Promotion, Scope, Tier, UnsignedEntry, WorkloadRef,
};
use crate::evaluate::{self, BasisItem, EvalInput};
use crate::gate::GATE_KIND;
use crate::ingest::inventory;
use crate::keys::{Role, SecretKey};
use crate::timestamp::Timestamp;

/// The `format` value of a case file.
pub const CASE_FORMAT: &str = "evl-gate-test/v1";
/// Largest case or evidence file read.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// A time in a case file: a TOML datetime or an RFC 3339 / date string.
#[derive(Clone, Copy, Debug)]
struct Time(Timestamp);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            D(toml::value::Datetime),
        }
        let text = match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::D(dt) => dt.to_string(),
        };
        text.parse::<Timestamp>()
            .map(Time)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    format: String,
    #[serde(default)]
    name: Option<String>,
    /// The gate definition, relative to the case file.
    gate: PathBuf,
    as_of: Time,
    checkpoint_at: Time,
    #[serde(default)]
    workloads: Vec<String>,
    /// An evidence item (by name) whose file is an inventory CSV: all its workloads are in scope.
    #[serde(default)]
    workloads_from: Option<String>,
    /// Fragment files (relative to the case file) whose signers and items come first.
    #[serde(default)]
    include: Vec<PathBuf>,
    /// Names of included items to leave out of the basis (as `evl packet create --drop`):
    /// they are still signed, so a kept item may supersede or name them.
    #[serde(default)]
    drop: Vec<String>,
    /// Signer name → roles. `owner` (role owner) is there unless redefined.
    #[serde(default)]
    signers: BTreeMap<String, Vec<Role>>,
    #[serde(default)]
    evidence: Vec<EvidenceItem>,
    #[serde(default, rename = "acknowledgment")]
    acknowledgments: Vec<AckItem>,
    #[serde(default, rename = "annotation")]
    annotations: Vec<AnnotationItem>,
    #[serde(default, rename = "promotion")]
    promotions: Vec<PromotionItem>,
    #[serde(default, rename = "narrowing")]
    narrowings: Vec<NarrowingItem>,
    expect: Expect,
}

/// An included fragment: signers and items shared by several cases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fragment {
    #[serde(default)]
    signers: BTreeMap<String, Vec<Role>>,
    #[serde(default)]
    evidence: Vec<EvidenceItem>,
    #[serde(default, rename = "acknowledgment")]
    acknowledgments: Vec<AckItem>,
    #[serde(default, rename = "annotation")]
    annotations: Vec<AnnotationItem>,
    #[serde(default, rename = "promotion")]
    promotions: Vec<PromotionItem>,
    #[serde(default, rename = "narrowing")]
    narrowings: Vec<NarrowingItem>,
}

fn authoritative() -> Tier {
    Tier::Authoritative
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvidenceItem {
    /// Left out of the basis by the case's `drop` (still signed, so others may name it).
    #[serde(skip)]
    dropped: bool,
    /// The directory of the file that defines the item (set after parsing).
    #[serde(skip)]
    base: PathBuf,
    name: String,
    /// The evidence file, relative to the case file.
    file: PathBuf,
    kind: String,
    #[serde(default = "authoritative")]
    tier: Tier,
    #[serde(default)]
    sealed: bool,
    captured_at: Time,
    /// When the owner signed it (default: `captured_at`).
    signed_at: Option<Time>,
    valid_until: Option<Time>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    workloads: Vec<String>,
    /// The name of the evidence item this one supersedes.
    supersedes: Option<String>,
    signer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckItem {
    /// Left out of the basis by the case's `drop` (still signed, so others may name it).
    #[serde(skip)]
    dropped: bool,
    name: Option<String>,
    topic: String,
    namespace: Option<String>,
    /// The name of the acknowledged evidence item.
    subject: Option<String>,
    signer: String,
    at: Time,
    #[serde(default)]
    statement: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnnotationItem {
    /// Left out of the basis by the case's `drop` (still signed, so others may name it).
    #[serde(skip)]
    dropped: bool,
    name: Option<String>,
    kind: AnnotationKind,
    /// The name of the annotated item (default: the packet).
    subject: Option<String>,
    text: String,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    workloads: Vec<String>,
    signer: String,
    at: Time,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromotionItem {
    /// The name of the promoted evidence item.
    artifact: String,
    to: Tier,
    #[serde(default)]
    reason: String,
    signer: Option<String>,
    at: Time,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NarrowingItem {
    /// Left out of the basis by the case's `drop` (still signed, so others may name it).
    #[serde(skip)]
    dropped: bool,
    name: Option<String>,
    keep: Vec<String>,
    #[serde(default)]
    rationale: String,
    signer: Option<String>,
    at: Time,
}

/// What a case expects; every field but `verdict` is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    verdict: Verdict,
    would_be: Option<Verdict>,
    /// The exact blocker set, each as `code subject` (`acknowledgment-missing namespace orders`).
    blockers: Option<Vec<String>>,
    in_scope: Option<Vec<String>>,
    out_of_scope: Option<Vec<String>>,
    out_of_scope_namespaces: Option<Vec<String>>,
    out_of_scope_share_pct: Option<String>,
    /// Each must be part of some escalation reason.
    #[serde(default)]
    escalation: Vec<String>,
    /// Each must be part of some trace line, written `OUTCOME RULE: DETAIL`.
    #[serde(default)]
    trace: Vec<String>,
}

/// Why a case cannot be run (as opposed to a case that fails).
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case file.
    pub path: PathBuf,
    pub name: String,
    /// The first difference between what was expected and what was derived; `None` passes.
    pub failure: Option<String>,
    /// The derived disposition.
    pub disposition: Disposition,
}

fn read(path: &Path) -> Result<Vec<u8>, CaseError> {
    let err = |reason: String| CaseError::Read {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(err(format!("over the {MAX_FILE_BYTES}-byte limit")));
    }
    std::fs::read(path).map_err(|e| err(e.to_string()))
}

/// The case files of `dir`: every `*.toml` file directly in it, by name.
pub fn case_files(dir: &Path) -> Result<Vec<PathBuf>, CaseError> {
    let err = |reason: String| CaseError::Read {
        path: dir.to_path_buf(),
        reason,
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| err(e.to_string()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    v.retain(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"));
    v.sort();
    if v.is_empty() {
        return Err(err("holds no *.toml case file".into()));
    }
    Ok(v)
}

/// Runs every case of `dir`, in file-name order.
pub fn run_dir(dir: &Path) -> Result<Vec<CaseResult>, CaseError> {
    case_files(dir)?.iter().map(|p| run_case(p)).collect()
}

/// A case being turned into an evaluation input.
struct Builder<'c> {
    path: &'c Path,
    ledger: Digest,
    signers: BTreeMap<String, Vec<Role>>,
    /// Item name → entry id.
    names: BTreeMap<String, EntryId>,
    basis: Vec<BasisItem>,
}

impl Builder<'_> {
    fn invalid(&self, reason: String) -> CaseError {
        CaseError::Invalid {
            path: self.path.to_path_buf(),
            reason,
        }
    }

    fn id(&self, what: &str, name: &str) -> Result<EntryId, CaseError> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| self.invalid(format!("{what} '{name}' names no item defined above it")))
    }

    /// Signs `payload` as `signer` at `at`, names it `name` and, unless `dropped`, adds it
    /// to the basis.
    fn add(
        &mut self,
        (name, dropped): (Option<&str>, bool),
        signer: &str,
        at: Timestamp,
        payload: Payload,
        artifact: Option<Vec<u8>>,
    ) -> Result<EntryId, CaseError> {
        let roles = self
            .signers
            .get(signer)
            .ok_or_else(|| self.invalid(format!("signer '{signer}' is not in [signers]")))?
            .clone();
        let entry = sign(self.ledger, signer, at, payload);
        let id = entry.id();
        if let Some(n) = name
            && self.names.insert(n.to_string(), id).is_some()
        {
            return Err(self.invalid(format!("the name '{n}' is used twice")));
        }
        if dropped {
            return Ok(id);
        }
        self.basis.push(BasisItem {
            id,
            index: self.basis.len() as u64 + 1,
            entry,
            signer_name: signer.to_string(),
            signer_roles: roles,
            artifact,
        });
        Ok(id)
    }
}

fn sign(ledger: Digest, signer: &str, at: Timestamp, payload: Payload) -> Entry {
    let key = SecretKey::demo_from_phrase(&format!("evl gate test: {signer}"));
    let body = UnsignedEntry {
        format: ENTRY_FORMAT,
        ledger,
        signer: key.public().id(),
        claimed_at: at,
        payload,
    };
    Entry::sign(body, &key)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// Builds the evaluation input a case describes.
fn build(path: &Path, case: &CaseFile) -> Result<EvalInput, CaseError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut signers = BTreeMap::from([("owner".to_string(), vec![Role::Owner])]);
    signers.extend(case.signers.clone());
    let mut b = Builder {
        path,
        // The same for every case, so entry ids do not depend on where the case lives.
        ledger: Digest::of(b"evl gate test"),
        signers,
        names: BTreeMap::new(),
        basis: Vec::new(),
    };
    let artifact = |bytes: &[u8], file: &Path, kind: &str, tier, captured, sealed| ArtifactMeta {
        content: Digest::of(bytes),
        size: bytes.len() as u64,
        kind: kind.to_string(),
        file_name: file_name(file),
        tier,
        captured_at: captured,
        valid_until: None,
        scope: Scope::default(),
        sealed,
        supersedes: None,
        labels: BTreeMap::new(),
        facts: None,
    };
    let gate_path = dir.join(&case.gate);
    let gate_bytes = read(&gate_path)?;
    let gate_meta = artifact(
        &gate_bytes,
        &gate_path,
        GATE_KIND,
        Tier::Authoritative,
        case.as_of.0,
        true,
    );
    let gate_entry = sign(
        b.ledger,
        "owner",
        case.as_of.0,
        Payload::Artifact(gate_meta),
    );
    let parse_wls = |b: &Builder, list: &[String]| -> Result<Vec<WorkloadRef>, CaseError> {
        list.iter()
            .map(|w| w.parse::<WorkloadRef>().map_err(|e| b.invalid(e)))
            .collect()
    };
    let mut in_scope: BTreeSet<WorkloadRef> = parse_wls(&b, &case.workloads)?.into_iter().collect();
    for e in &case.evidence {
        let file = e.base.join(&e.file);
        let bytes = read(&file)?;
        let mut meta = artifact(&bytes, &file, &e.kind, e.tier, e.captured_at.0, e.sealed);
        meta.valid_until = e.valid_until.map(|t| t.0);
        meta.labels = e.labels.clone();
        meta.scope = Scope {
            namespaces: sorted(e.namespaces.clone()),
            workloads: sorted(e.workloads.clone()),
        };
        meta.supersedes = match &e.supersedes {
            Some(n) => Some(b.id("supersedes", n)?),
            None => None,
        };
        if case.workloads_from.as_deref() == Some(e.name.as_str()) {
            let inv = inventory::parse_csv(&meta.file_name, &bytes)
                .map_err(|err| b.invalid(format!("workloads_from '{}': {err}", e.name)))?;
            in_scope.extend(inv.workloads.iter().map(|w| WorkloadRef {
                namespace: w.namespace.clone(),
                workload: w.workload.clone(),
            }));
        }
        let at = e.signed_at.unwrap_or(e.captured_at).0;
        let signer = e.signer.as_deref().unwrap_or("owner");
        b.add(
            (Some(&e.name), e.dropped),
            signer,
            at,
            Payload::Artifact(meta),
            Some(bytes),
        )?;
    }
    if let Some(n) = &case.workloads_from
        && !case.evidence.iter().any(|e| &e.name == n)
    {
        return Err(b.invalid(format!("workloads_from '{n}' names no evidence item")));
    }
    if in_scope.is_empty() {
        return Err(b.invalid(
            "the case has no in-scope workloads: set workloads or workloads_from".into(),
        ));
    }
    for p in &case.promotions {
        let artifact = b.id("promotion artifact", &p.artifact)?;
        let payload = Payload::Promotion(Promotion {
            artifact,
            to: p.to,
            reason: p.reason.clone(),
        });
        b.add(
            (None, false),
            p.signer.as_deref().unwrap_or("owner"),
            p.at.0,
            payload,
            None,
        )?;
    }
    let packet_placeholder = Digest::of(b"evl gate test: the packet");
    for n in &case.narrowings {
        let mut keep = parse_wls(&b, &n.keep)?;
        keep.sort();
        keep.dedup();
        let payload = Payload::Narrowing(NarrowingProposal {
            packet: packet_placeholder,
            keep,
            rationale: n.rationale.clone(),
        });
        let signer = n.signer.as_deref().unwrap_or("owner");
        b.add(
            (n.name.as_deref(), n.dropped),
            signer,
            n.at.0,
            payload,
            None,
        )?;
    }
    for a in &case.annotations {
        let subject = match &a.subject {
            Some(s) => b.id("annotation subject", s)?,
            None => packet_placeholder,
        };
        let payload = Payload::Annotation(Annotation {
            subject,
            kind: a.kind,
            scope: Scope {
                namespaces: sorted(a.namespaces.clone()),
                workloads: sorted(a.workloads.clone()),
            },
            text: a.text.clone(),
        });
        b.add(
            (a.name.as_deref(), a.dropped),
            &a.signer,
            a.at.0,
            payload,
            None,
        )?;
    }
    for a in &case.acknowledgments {
        let subject = match &a.subject {
            Some(s) => Some(b.id("acknowledgment subject", s)?),
            None => None,
        };
        let payload = Payload::Acknowledgment(Acknowledgment {
            topic: a.topic.clone(),
            subject,
            namespace: a.namespace.clone(),
            statement: a.statement.clone(),
        });
        b.add(
            (a.name.as_deref(), a.dropped),
            &a.signer,
            a.at.0,
            payload,
            None,
        )?;
    }
    let mut basis = b.basis;
    basis.sort_by_key(|i| i.id);
    let packet = PacketRevision {
        name: case
            .name
            .clone()
            .unwrap_or_else(|| file_name(path).trim_end_matches(".toml").to_string()),
        revision: 1,
        parent: None,
        gate: gate_entry.id(),
        checkpoint_at: case.checkpoint_at.0,
        in_scope: in_scope.into_iter().collect(),
        basis: basis.iter().map(|i| i.id).collect(),
    };
    let packet_entry = sign(
        b.ledger,
        "owner",
        case.as_of.0,
        Payload::Packet(packet.clone()),
    );
    Ok(EvalInput {
        packet_id: packet_entry.id(),
        packet,
        gate_bytes,
        basis,
    })
}

/// The first difference between two sorted lists, as a sentence.
fn list_difference(what: &str, expected: &[String], derived: &[String]) -> Option<String> {
    let (e, d): (BTreeSet<&String>, BTreeSet<&String>) =
        (expected.iter().collect(), derived.iter().collect());
    if let Some(x) = e.difference(&d).next() {
        return Some(format!(
            "{what}: expected `{x}` is not derived (derived: {derived:?})"
        ));
    }
    if let Some(x) = d.difference(&e).next() {
        return Some(format!("{what}: `{x}` is derived but not expected"));
    }
    None
}

/// The first difference between what `x` expects and `d`, in the order of the case file.
fn first_difference(x: &Expect, d: &Disposition) -> Option<String> {
    if x.verdict != d.verdict {
        return Some(format!(
            "verdict: expected {}, derived {}",
            x.verdict, d.verdict
        ));
    }
    if let Some(w) = x.would_be
        && d.would_be != Some(w)
    {
        return Some(format!(
            "would_be: expected {w}, derived {}",
            d.would_be.map(|v| v.to_string()).unwrap_or("none".into())
        ));
    }
    if let Some(b) = &x.blockers
        && let Some(diff) = list_difference("blockers", b, &d.blocker_keys())
    {
        return Some(diff);
    }
    let s = &d.scope;
    for (what, want, got) in [
        ("in_scope", &x.in_scope, &s.in_scope_workloads),
        ("out_of_scope", &x.out_of_scope, &s.out_of_scope_workloads),
        (
            "out_of_scope_namespaces",
            &x.out_of_scope_namespaces,
            &s.out_of_scope_namespaces,
        ),
    ] {
        if let Some(want) = want
            && let Some(diff) = list_difference(what, want, got)
        {
            return Some(diff);
        }
    }
    if let Some(p) = &x.out_of_scope_share_pct
        && *p != s.out_of_scope_share_pct
    {
        return Some(format!(
            "out_of_scope_share_pct: expected {p}, derived {}",
            s.out_of_scope_share_pct
        ));
    }
    for e in &x.escalation {
        if !d.escalation.iter().any(|l| l.contains(e.as_str())) {
            return Some(format!(
                "escalation: no reason contains `{e}` (derived: {:?})",
                d.escalation
            ));
        }
    }
    for t in &x.trace {
        let found = d
            .trace
            .iter()
            .any(|l| format!("{} {}: {}", l.outcome, l.rule, l.detail).contains(t.as_str()));
        if !found {
            return Some(format!("trace: no line contains `{t}`"));
        }
    }
    None
}

/// Puts the items of the case's includes before its own, less the dropped ones.
fn merge_includes(path: &Path, case: &mut CaseFile) -> Result<(), CaseError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    for e in &mut case.evidence {
        e.base = dir.to_path_buf();
    }
    let mut all = Fragment {
        signers: BTreeMap::new(),
        evidence: vec![],
        acknowledgments: vec![],
        annotations: vec![],
        promotions: vec![],
        narrowings: vec![],
    };
    for inc in &case.include {
        let p = dir.join(inc);
        let bytes = read(&p)?;
        let invalid = |reason: String| CaseError::Invalid {
            path: p.clone(),
            reason,
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid("not UTF-8 text".into()))?;
        let mut f: Fragment =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim().replace('\n', " ")))?;
        let base = p.parent().unwrap_or(Path::new(".")).to_path_buf();
        for e in &mut f.evidence {
            e.base = base.clone();
        }
        all.signers.extend(f.signers);
        all.evidence.extend(f.evidence);
        all.acknowledgments.extend(f.acknowledgments);
        all.annotations.extend(f.annotations);
        all.promotions.extend(f.promotions);
        all.narrowings.extend(f.narrowings);
    }
    let mut dropped: BTreeSet<&str> = case.drop.iter().map(String::as_str).collect();
    let mut is_dropped = |name: Option<&str>| name.is_some_and(|n| dropped.remove(n));
    for e in &mut all.evidence {
        e.dropped = is_dropped(Some(&e.name));
    }
    for a in &mut all.acknowledgments {
        a.dropped = is_dropped(a.name.as_deref());
    }
    for a in &mut all.annotations {
        a.dropped = is_dropped(a.name.as_deref());
    }
    for n in &mut all.narrowings {
        n.dropped = is_dropped(n.name.as_deref());
    }
    if let Some(n) = dropped.into_iter().next() {
        return Err(CaseError::Invalid {
            path: path.to_path_buf(),
            reason: format!("drop '{n}' names no included item"),
        });
    }
    all.signers.extend(std::mem::take(&mut case.signers));
    case.signers = all.signers;
    all.evidence.append(&mut case.evidence);
    case.evidence = all.evidence;
    all.acknowledgments.append(&mut case.acknowledgments);
    case.acknowledgments = all.acknowledgments;
    all.annotations.append(&mut case.annotations);
    case.annotations = all.annotations;
    all.promotions.append(&mut case.promotions);
    case.promotions = all.promotions;
    all.narrowings.append(&mut case.narrowings);
    case.narrowings = all.narrowings;
    Ok(())
}

/// The evaluation input a case file describes and its as-of time, without evaluating it.
pub fn load_case(path: &Path) -> Result<(EvalInput, Timestamp), CaseError> {
    let (case, input) = parse_case(path)?;
    Ok((input, case.as_of.0))
}

/// Runs one case file.
pub fn run_case(path: &Path) -> Result<CaseResult, CaseError> {
    let (case, input) = parse_case(path)?;
    let d = evaluate::evaluate(&input, case.as_of.0).map_err(|e| CaseError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(CaseResult {
        path: path.to_path_buf(),
        name: input.packet.name.clone(),
        failure: first_difference(&case.expect, &d),
        disposition: d,
    })
}

fn parse_case(path: &Path) -> Result<(CaseFile, EvalInput), CaseError> {
    let bytes = read(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| CaseError::Invalid {
        path: path.to_path_buf(),
        reason: "not UTF-8 text".into(),
    })?;
    let mut case: CaseFile = toml::from_str(text).map_err(|e| CaseError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string().trim().replace('\n', " "),
    })?;
    if case.format != CASE_FORMAT {
        return Err(CaseError::Invalid {
            path: path.to_path_buf(),
            reason: format!(
                "format is '{}'; this evl reads '{CASE_FORMAT}'",
                case.format
            ),
        });
    }
    merge_includes(path, &mut case)?;
    let input = build(path, &case)?;
    Ok((case, input))
}
