//! The gate engine: a pure function from (packet, gate definition, basis, as-of, engine
//! version) to a [`Disposition`]. No clock, no environment, no unordered iteration; the
//! algorithm is specified in docs/GATES.md §"Evaluation".
//!
//! This module holds the current engine (`evl-engine/3`; engine 2 is the same rules writing v2
//! documents) and the entry points; [`v1`] keeps
//! engine 1 frozen so that dispositions recorded with it still replay ([`evaluate_with`]).
//! Evaluation has two steps: `basis::Basis::load` reads the pinned basis once into typed
//! evidence at the as-of time, then the rules below are pure functions over those values.

mod v1;

use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

use crate::basis::{Basis, Evidence};
use crate::digest::{Digest, EntryId};
use crate::disposition::{
    Blocker, DISPOSITION_FORMAT, Disposition, ProposalStatus, ScopeSplit, Subject, TraceLine,
    Unblock, Verdict, basis_digest,
};
use crate::entry::{AnnotationKind, ArtifactMeta, Entry, PacketRevision, Payload, WorkloadRef};
use crate::evidence::Outcome;
use crate::gate::{
    Cover, EvidenceRule, GATE_KIND, GateDefinition, GateError, Requirement, Statistic,
};
use crate::ingest::inventory::{Compatibility, Inventory};
use crate::ingest::telemetry::Measurement;
use crate::keys::{KeyId, Role};
use crate::registry::Registry;
use crate::store::Ledger;
use crate::timestamp::Timestamp;

/// The engine version every disposition derived now records; bump it (and keep the old
/// engine, as [`v1`] is kept) whenever derived output can change. Engine 3 is engine 2's
/// rules writing `evl-disposition/v3` documents (RFC 8785 canonical bytes).
pub const ENGINE_VERSION: &str = "evl-engine/3";

/// Engine 2: the same rules as engine 3, writing `evl-disposition/v2` documents.
pub const ENGINE_VERSION_2: &str = "evl-engine/2";

/// Every engine version this evl can derive with, oldest first.
pub const ENGINE_VERSIONS: [&str; 3] = [v1::ENGINE_VERSION, ENGINE_VERSION_2, ENGINE_VERSION];

/// One entry of the basis with what evaluation needs to know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasisItem {
    pub id: EntryId,
    /// Log position.
    pub index: u64,
    pub entry: Entry,
    /// The signer's registered name.
    pub signer_name: String,
    /// The roles the signer held at `index` (empty if the key did not count there).
    pub signer_roles: Vec<Role>,
    /// The artifact bytes, for artifact entries.
    pub artifact: Option<Vec<u8>>,
}

/// Everything an evaluation reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalInput {
    pub packet_id: EntryId,
    pub packet: PacketRevision,
    /// The gate-definition artifact's bytes (its entry id is `packet.gate`).
    pub gate_bytes: Vec<u8>,
    /// The basis, sorted by id.
    pub basis: Vec<BasisItem>,
}

/// Why an input cannot be built or evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("entry {0} is not in the ledger")]
    MissingEntry(EntryId),
    #[error("basis entry {id} of packet {packet} is not in the ledger")]
    MissingBasis { packet: EntryId, id: EntryId },
    #[error("the bytes of artifact {entry} (content {content}) are missing")]
    MissingBlob { entry: EntryId, content: Digest },
    #[error("the bytes stored for artifact {entry} do not hash to its content digest {content}")]
    BlobMismatch { entry: EntryId, content: Digest },
    #[error("entry {0} is a {1} entry, not a packet revision")]
    NotAPacket(EntryId, &'static str),
    #[error("gate {0} is not a gate-definition artifact")]
    NotAGate(EntryId),
    #[error("gate definition {id}: {source}")]
    Gate {
        id: EntryId,
        #[source]
        source: GateError,
    },
    #[error("reading the ledger: {0}")]
    Ledger(String),
    #[error(
        "engine version '{0}' is not one this evl can derive with (it has evl-engine/1, evl-engine/2 and evl-engine/3)"
    )]
    UnknownEngine(String),
}

/// Where entries, blobs and signer roles come from: a ledger or a bundle.
pub trait EntrySource: Sync {
    /// The entry with this id and its log index.
    fn entry(&self, id: &EntryId) -> Result<Option<(u64, Entry)>, EvalError>;
    /// Stored bytes by digest, as stored: callers check them against the digest.
    fn blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, EvalError>;
    /// The registry as of the end of the source's log.
    fn registry(&self) -> Result<Registry, EvalError>;
}

impl EntrySource for Ledger {
    fn entry(&self, id: &EntryId) -> Result<Option<(u64, Entry)>, EvalError> {
        // One index lookup: `entry_by_id` reports an absent id as `Unknown`.
        match self.entry_by_id(id) {
            Ok(found) => Ok(Some(found)),
            Err(crate::error::Error::Unknown(_)) => Ok(None),
            Err(e) => Err(EvalError::Ledger(e.to_string())),
        }
    }
    fn blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, EvalError> {
        // As stored: every caller re-hashes and names the entry whose bytes do not match.
        Ledger::blob_as_stored(self, digest).map_err(|e| EvalError::Ledger(e.to_string()))
    }
    fn registry(&self) -> Result<Registry, EvalError> {
        Ledger::registry(self).map_err(|e| EvalError::Ledger(e.to_string()))
    }
}

fn artifact_bytes(
    src: &dyn EntrySource,
    id: &EntryId,
    meta: &ArtifactMeta,
) -> Result<Vec<u8>, EvalError> {
    let bytes = src.blob(&meta.content)?.ok_or(EvalError::MissingBlob {
        entry: *id,
        content: meta.content,
    })?;
    if Digest::of(&bytes) != meta.content {
        return Err(EvalError::BlobMismatch {
            entry: *id,
            content: meta.content,
        });
    }
    Ok(bytes)
}

fn signer(registry: &Registry, key: &KeyId, index: u64) -> (String, Vec<Role>) {
    match registry.get(key) {
        Some(s) if s.active_at(index) => (s.name.clone(), s.roles.clone()),
        Some(s) => (s.name.clone(), vec![]),
        None => (key.0.short(), vec![]),
    }
}

/// Builds the input of packet `packet_id` from any entry source, failing with the missing digest.
pub fn load_input_from(src: &dyn EntrySource, packet_id: &EntryId) -> Result<EvalInput, EvalError> {
    let registry = src.registry()?;
    let (_, pe) = src
        .entry(packet_id)?
        .ok_or(EvalError::MissingEntry(*packet_id))?;
    let Payload::Packet(packet) = pe.body.payload else {
        return Err(EvalError::NotAPacket(*packet_id, pe.body.payload.kind()));
    };
    let (_, ge) = src
        .entry(&packet.gate)?
        .ok_or(EvalError::MissingEntry(packet.gate))?;
    let gate_bytes = match &ge.body.payload {
        Payload::Artifact(m) if m.kind == GATE_KIND => artifact_bytes(src, &packet.gate, m)?,
        _ => return Err(EvalError::NotAGate(packet.gate)),
    };
    let mut ids = packet.basis.clone();
    ids.sort();
    ids.dedup();
    // Each basis entry is read (and checked) on its own, on every core; the results keep the
    // order of the ids and the first failure in that order is the one reported, so the work's
    // order never shows.
    let basis = ids
        .par_iter()
        .map(|&id| {
            let (index, entry) = src.entry(&id)?.ok_or(EvalError::MissingBasis {
                packet: *packet_id,
                id,
            })?;
            let artifact = match &entry.body.payload {
                Payload::Artifact(m) => Some(artifact_bytes(src, &id, m)?),
                _ => None,
            };
            let (signer_name, signer_roles) = signer(&registry, &entry.body.signer, index);
            Ok(BasisItem {
                id,
                index,
                entry,
                signer_name,
                signer_roles,
                artifact,
            })
        })
        .collect::<Vec<Result<BasisItem, EvalError>>>()
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EvalInput {
        packet_id: *packet_id,
        packet,
        gate_bytes,
        basis,
    })
}

/// Builds the input of packet `packet_id` from the ledger.
pub fn load_input(ledger: &Ledger, packet_id: &EntryId) -> Result<EvalInput, EvalError> {
    load_input_from(ledger, packet_id)
}

/// A disposition and the instants at which its time-dependent rules flip (for deadlines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    pub disposition: Disposition,
    /// Sorted, unique instants where some comparison against the as-of time changes.
    pub time_points: Vec<Timestamp>,
}
/// Evaluates `input` at `as_of` with the current engine (docs/GATES.md §"Evaluation").
pub fn evaluate(input: &EvalInput, as_of: Timestamp) -> Result<Disposition, EvalError> {
    Ok(evaluate_full(input, as_of)?.disposition)
}

/// Evaluates `input` at `as_of` with the engine named `engine` (one of [`ENGINE_VERSIONS`]):
/// what replay uses, so a disposition re-derives with the engine it was recorded with.
pub fn evaluate_with(
    engine: &str,
    input: &EvalInput,
    as_of: Timestamp,
) -> Result<Disposition, EvalError> {
    match engine {
        ENGINE_VERSION => evaluate(input, as_of),
        ENGINE_VERSION_2 => {
            // Engine 2's rules are engine 3's; only the document version (and so its
            // canonical bytes) differs.
            let mut d = evaluate(input, as_of)?;
            d.format = crate::disposition::DISPOSITION_FORMAT_V2.into();
            d.engine_version = ENGINE_VERSION_2.into();
            Ok(d)
        }
        v1::ENGINE_VERSION => Ok(v1::evaluate_full(input, as_of)?.disposition),
        other => Err(EvalError::UnknownEngine(other.to_string())),
    }
}

/// Everything the rules read and write while deriving one disposition.
struct Ctx<'a> {
    input: &'a EvalInput,
    gate: &'a GateDefinition,
    basis: &'a Basis<'a>,
    as_of: Timestamp,
    checkpoint: Timestamp,
    in_scope: BTreeSet<WorkloadRef>,
    namespaces: BTreeSet<String>,
    blockers: Vec<Blocker>,
    trace: Vec<TraceLine>,
    times: BTreeSet<Timestamp>,
}

fn ws(w: &WorkloadRef) -> String {
    w.to_string()
}

fn pct(ratio: f64) -> String {
    format!("{:.2} %", ratio * 100.0)
}

/// A blocker about to be raised.
struct Raise {
    code: String,
    subject: Subject,
    affects: Vec<WorkloadRef>,
    evidence: Vec<EntryId>,
    reason: String,
    unblock: Unblock,
}

impl Ctx<'_> {
    fn trace(&mut self, rule: &str, outcome: &str, detail: impl Into<String>) {
        self.trace.push(TraceLine {
            rule: rule.to_string(),
            outcome: outcome.to_string(),
            detail: detail.into(),
        });
    }

    fn notes(&mut self, rule: &str, notes: Vec<String>) {
        for n in notes {
            self.trace(rule, "ignored", n);
        }
    }

    fn block(&mut self, rule: &str, r: Raise) {
        let mut affects: Vec<String> = r
            .affects
            .iter()
            .filter(|w| self.in_scope.contains(*w))
            .map(ws)
            .collect();
        affects.sort();
        affects.dedup();
        let mut evidence = r.evidence;
        evidence.sort();
        evidence.dedup();
        let scoped = self.gate.is_scoped(&r.code) && !affects.is_empty();
        self.trace(
            rule,
            "blocker",
            format!("{} on {}: {}", r.code, r.subject, r.reason),
        );
        self.blockers.push(Blocker {
            code: r.code,
            subject: r.subject,
            scoped,
            affects,
            evidence,
            reason: r.reason,
            unblock: Some(r.unblock),
        });
    }

    fn in_ns(&self, ns: &str) -> Vec<WorkloadRef> {
        self.in_scope
            .iter()
            .filter(|w| w.namespace == ns)
            .cloned()
            .collect()
    }

    /// The latest instant that counts for freshness: the checkpoint, or the as-of time if
    /// evaluating after it.
    fn horizon(&self) -> Timestamp {
        self.checkpoint.max(self.as_of)
    }

    /// The action that adds (or, with `replacing`, refreshes) evidence meeting `req`.
    fn add_evidence(
        &self,
        action: &str,
        req: &Requirement,
        what: &str,
        replacing: Option<EntryId>,
    ) -> Unblock {
        let observed_after = req
            .max_age_days
            .map(|d| self.horizon().plus_seconds(-i64::from(d) * DAY));
        let mut text = format!("add {} {}", describe_req(req), what);
        if let (Some(t), Some(d)) = (observed_after, req.max_age_days) {
            text.push_str(&format!(
                ", observed at or after {t} so it is inside its {d}-day window at {}",
                self.horizon()
            ));
        }
        if let Some(old) = replacing {
            text.push_str(&format!(", superseding {}", old.short()));
        }
        text.push_str(&format!(
            "; pin it in a new packet revision before the proposed checkpoint {}",
            self.checkpoint
        ));
        Unblock {
            action: action.into(),
            kind: Some(req.kind.clone()),
            labels: req.labels.clone(),
            min_tier: Some(req.min_tier),
            sealed: req.sealed,
            role: req.signer_role.map(|r| r.name().to_string()),
            subject: replacing,
            observed_after,
            by: Some(self.checkpoint),
            text,
        }
    }
}

/// "an authoritative, sealed rollback-drill labelled {..} signed by a security-signer".
fn describe_req(req: &Requirement) -> String {
    let mut s = format!("{} ", article(req.min_tier.name()));
    s.push_str(&format!("{}-tier", req.min_tier));
    if req.sealed {
        s.push_str(", sealed");
    }
    s.push(' ');
    s.push_str(&req.kind);
    if !req.labels.is_empty() {
        let l: Vec<String> = req.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.push_str(&format!(" labelled {}", l.join(", ")));
    }
    if let Some(r) = req.signer_role {
        s.push_str(&format!(" signed by a key holding the {r} role"));
    }
    s
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

const DAY: i64 = 86_400;

/// Evaluates `input` at `as_of`, also returning the instants where time-dependent rules flip.
pub fn evaluate_full(input: &EvalInput, as_of: Timestamp) -> Result<Evaluation, EvalError> {
    let gate = GateDefinition::parse(&input.gate_bytes).map_err(|source| EvalError::Gate {
        id: input.packet.gate,
        source,
    })?;
    let basis = Basis::load(input, &gate, as_of);
    let in_scope: BTreeSet<WorkloadRef> = input.packet.in_scope.iter().cloned().collect();
    let namespaces: BTreeSet<String> = in_scope.iter().map(|w| w.namespace.clone()).collect();
    let mut cx = Ctx {
        input,
        gate: &gate,
        basis: &basis,
        as_of,
        checkpoint: input.packet.checkpoint_at,
        in_scope,
        namespaces,
        blockers: Vec::new(),
        trace: basis.trace.clone(),
        times: basis.appearances.clone(),
    };
    cx.times.insert(input.packet.checkpoint_at);
    for r in &gate.evidence {
        evidence_rule(&mut cx, r);
    }
    let inv = inventory_rule(&mut cx);
    ack_rules(&mut cx);
    exception_rule(&mut cx, inv);
    telemetry_rule(&mut cx);
    reviewer_blockers(&mut cx);
    Ok(conclude(cx))
}

/// An evidence artifact as an `[[evidence]]` rule sees it.
struct View<'e> {
    ev: &'e Evidence<'e>,
    /// Why it does not count now (failed, expired, stale), if so.
    problem: Option<String>,
}

fn covers(ev: &Evidence, w: &WorkloadRef) -> bool {
    ev.workloads.contains(w) || ev.namespaces.contains(&w.namespace)
}

fn view<'e>(cx: &mut Ctx, r: &EvidenceRule, req: &Requirement, ev: &'e Evidence<'e>) -> View<'e> {
    let pass = match &ev.drill {
        Some(Ok(d)) => d.outcome == Outcome::Pass,
        _ => true,
    };
    let valid_until = ev.meta.valid_until;
    let problem = if r.require_pass && !pass {
        Some(format!("the drill of {} failed", ev.observed_at))
    } else if let Some(vu) = valid_until
        && vu < cx.as_of
    {
        Some(format!("valid only until {vu}"))
    } else if let Some(vu) = valid_until
        && r.valid_through_checkpoint
        && vu < cx.checkpoint
    {
        Some(format!(
            "valid only until {vu}, before the proposed checkpoint {}",
            cx.checkpoint
        ))
    } else {
        ev.staleness(req, cx.as_of)
    };
    cx.times.insert(ev.observed_at);
    if let Some(end) = ev.fresh_until(req) {
        cx.times.insert(end);
    }
    if let Some(vu) = valid_until {
        cx.times.insert(vu);
    }
    View { ev, problem }
}

fn evidence_rule(cx: &mut Ctx, r: &EvidenceRule) {
    let req = r.requirement();
    let (found, notes) = cx.basis.candidates(&req);
    cx.notes(&r.name, notes);
    let mut views = Vec::new();
    for ev in found {
        if let Some(Err(e)) = &ev.drill {
            let unblock = cx.add_evidence(
                "replace-evidence",
                &req,
                "that parses (this one does not)",
                Some(ev.id),
            );
            cx.block(
                &r.name,
                Raise {
                    code: "evidence-unreadable".into(),
                    subject: Subject::Rule(r.name.clone()),
                    affects: vec![],
                    evidence: vec![ev.id],
                    reason: e.clone(),
                    unblock,
                },
            );
            continue;
        }
        views.push(view(cx, r, &req, ev));
    }
    let qualifier = {
        let mut q = Vec::new();
        if r.require_pass {
            q.push("passing".to_string());
        }
        if r.valid_through_checkpoint {
            q.push(format!("valid through {}", cx.checkpoint));
        }
        if q.is_empty() {
            String::new()
        } else {
            format!(" ({})", q.join(", "))
        }
    };
    // The freshest acceptable view decides; a stale or failed one explains a blocker.
    let judge = |cx: &mut Ctx, what: Subject, matching: Vec<&View>, affects: Vec<WorkloadRef>| {
        if let Some(ok) = matching.iter().rev().find(|v| v.problem.is_none()) {
            let d = format!("{what}: {} observed {}", ok.ev.name(), ok.ev.observed_at);
            cx.trace(&r.name, "pass", d);
        } else if let Some(last) = matching.iter().max_by_key(|v| v.ev.observed_at) {
            let reason = format!(
                "{} evidence for {what} is not current: {} {}",
                r.kind,
                last.ev.name(),
                last.problem.clone().unwrap_or_default()
            );
            let ids = matching.iter().map(|v| v.ev.id).collect();
            let unblock = cx.add_evidence(
                "refresh-evidence",
                &req,
                &format!("for {what}{qualifier}"),
                Some(last.ev.id),
            );
            cx.block(
                &r.name,
                Raise {
                    code: r.stale_code.clone(),
                    subject: what,
                    affects,
                    evidence: ids,
                    reason,
                    unblock,
                },
            );
        } else {
            let reason = format!("no acceptable {} evidence for {what}", r.kind);
            let unblock = cx.add_evidence(
                "add-evidence",
                &req,
                &format!("for {what}{qualifier}"),
                None,
            );
            cx.block(
                &r.name,
                Raise {
                    code: r.missing_code.clone(),
                    subject: what,
                    affects,
                    evidence: vec![],
                    reason,
                    unblock,
                },
            );
        }
    };
    match r.cover {
        Cover::None => {
            let all: Vec<&View> = views.iter().collect();
            judge(cx, Subject::Rule(r.name.clone()), all, vec![]);
        }
        Cover::Workloads => {
            for w in cx.in_scope.clone() {
                let m = views.iter().filter(|v| covers(v.ev, &w)).collect();
                judge(cx, Subject::Workload(ws(&w)), m, vec![w]);
            }
        }
        Cover::Namespaces => {
            for ns in cx.namespaces.clone() {
                let m = views
                    .iter()
                    .filter(|v| v.ev.namespaces.contains(&ns))
                    .collect();
                let affects = cx.in_ns(&ns);
                judge(cx, Subject::Namespace(ns), m, affects);
            }
        }
        Cover::Paths => {
            // The views of each path in one pass over the views (a gate may name a thousand
            // paths, each with its drill).
            let mut by_path: BTreeMap<&str, Vec<&View>> = BTreeMap::new();
            for v in &views {
                if let Some(p) = v.ev.path.as_deref() {
                    by_path.entry(p).or_default().push(v);
                }
            }
            for p in &r.paths {
                let m: Vec<&View> = by_path.get(p.as_str()).cloned().unwrap_or_default();
                let mut affects: Vec<WorkloadRef> = Vec::new();
                for v in &m {
                    for w in cx.in_scope.iter() {
                        if covers(v.ev, w) {
                            affects.push(w.clone());
                        }
                    }
                }
                judge(cx, Subject::Path(p.clone()), m, affects);
            }
        }
    }
}

fn compat_name(c: Compatibility) -> &'static str {
    match c {
        Compatibility::Validated => "validated",
        Compatibility::Unresolved => "unresolved",
        Compatibility::Incompatible => "incompatible",
        Compatibility::Unknown => "unknown",
    }
}

/// What a single-artifact rule reads: the artifact, or `None` after raising the blocker that
/// says why there is none to read (missing, stale is raised but still read).
fn read_one<'b>(
    cx: &mut Ctx<'b>,
    name: &str,
    subject: &str,
    req: &Requirement,
) -> Option<&'b Evidence<'b>> {
    let basis: &'b Basis<'b> = cx.basis;
    let (found, notes) = basis.one(req);
    cx.notes(name, notes);
    let Some(ev) = found else {
        let reason = format!(
            "no {}{} artifact{} in the basis",
            if req.sealed { "sealed " } else { "" },
            req.kind,
            if req.labels.is_empty() {
                String::new()
            } else {
                format!(" labelled {:?}", req.labels)
            }
        );
        let unblock = cx.add_evidence("add-evidence", req, &format!("for {name}"), None);
        cx.block(
            name,
            Raise {
                code: "evidence-missing".into(),
                subject: Subject::Rule(subject.into()),
                affects: vec![],
                evidence: vec![],
                reason,
                unblock,
            },
        );
        return None;
    };
    if let Some(end) = ev.fresh_until(req) {
        cx.times.insert(end);
    }
    if let Some(why) = ev.staleness(req, cx.as_of) {
        let unblock = cx.add_evidence("refresh-evidence", req, &format!("for {name}"), Some(ev.id));
        cx.block(
            name,
            Raise {
                code: "evidence-stale".into(),
                subject: Subject::Rule(subject.into()),
                affects: vec![],
                evidence: vec![ev.id],
                reason: format!("{} {why}", ev.name()),
                unblock,
            },
        );
    }
    Some(ev)
}

/// Raises `evidence-unreadable` for `ev`, read by rule `name`.
fn unreadable(
    cx: &mut Ctx,
    name: &str,
    subject: &str,
    req: &Requirement,
    ev: &Evidence,
    e: String,
) {
    let unblock = cx.add_evidence(
        "replace-evidence",
        req,
        "that parses (this one does not)",
        Some(ev.id),
    );
    cx.block(
        name,
        Raise {
            code: "evidence-unreadable".into(),
            subject: Subject::Rule(subject.into()),
            affects: vec![],
            evidence: vec![ev.id],
            reason: e,
            unblock,
        },
    );
}

fn inventory_rule<'b>(cx: &mut Ctx<'b>) -> Option<&'b Inventory> {
    let rule = cx.gate.inventory.as_ref()?;
    let req = rule.requirement();
    let name = "inventory";
    let ev = read_one(cx, name, name, &req)?;
    let inv = match ev.inventory() {
        Ok(inv) => inv,
        Err(e) => {
            unreadable(cx, name, name, &req, ev, e);
            return None;
        }
    };
    let file = &ev.meta.file_name;
    cx.trace(
        name,
        "info",
        format!(
            "inventory {file} ({}) with {} workloads",
            ev.id.short(),
            inv.workloads.len()
        ),
    );
    let wanted = rule.required_compatibility.join(" or ");
    for w in cx.in_scope.clone() {
        let update = |cx: &Ctx, what: String| {
            let mut u = cx.add_evidence("update-inventory", &req, &what, Some(ev.id));
            u.text = u.text.replacen("add ", "record ", 1);
            u
        };
        match inv.get(&w.namespace, &w.workload) {
            None => {
                let unblock = update(cx, format!("listing {w} with compatibility {wanted}"));
                cx.block(
                    name,
                    Raise {
                        code: rule.missing_code.clone(),
                        subject: Subject::Workload(ws(&w)),
                        affects: vec![w.clone()],
                        evidence: vec![ev.id],
                        reason: format!("{w} is not in the frozen inventory {file}"),
                        unblock,
                    },
                );
            }
            Some(row) => {
                let status = compat_name(row.compatibility);
                if rule.required_compatibility.iter().any(|s| s == status) {
                    cx.trace(name, "pass", format!("{w}: compatibility {status}"));
                } else {
                    let reason = format!(
                        "sidecar compatibility is {status} ({}, sidecar mode {}); the gate requires {wanted}",
                        if row.stateful {
                            "stateful"
                        } else {
                            "stateless"
                        },
                        row.sidecar_mode,
                    );
                    let unblock = update(cx, format!("in which {w}'s compatibility is {wanted}"));
                    cx.block(
                        name,
                        Raise {
                            code: rule.code.clone(),
                            subject: Subject::Workload(ws(&w)),
                            affects: vec![w.clone()],
                            evidence: vec![ev.id],
                            reason,
                            unblock,
                        },
                    );
                }
            }
        }
    }
    Some(inv)
}

fn ack_rules(cx: &mut Ctx) {
    for rule in &cx.gate.acknowledgments {
        let role: Role = rule.role.parse().expect("gate: roles checked at parse");
        // The artifact acknowledgments must name, if the rule names one: `Some(None)` when
        // there is none to acknowledge.
        let subject = match rule.subject_requirement() {
            None => None,
            Some(req) => {
                let basis = cx.basis;
                let (found, notes) = basis.one(&req);
                cx.notes(&rule.name, notes);
                if let Some(ev) = found {
                    if let Some(end) = ev.fresh_until(&req) {
                        cx.times.insert(end);
                    }
                    if let Some(why) = ev.staleness(&req, cx.as_of) {
                        let unblock = cx.add_evidence(
                            "refresh-evidence",
                            &req,
                            &format!("for {} to acknowledge", rule.name),
                            Some(ev.id),
                        );
                        cx.block(
                            &rule.name,
                            Raise {
                                code: "evidence-stale".into(),
                                subject: Subject::Rule(rule.name.clone()),
                                affects: vec![],
                                evidence: vec![ev.id],
                                reason: format!("{} {why}", ev.name()),
                                unblock,
                            },
                        );
                    }
                }
                Some((req, found.map(|e| e.id)))
            }
        };
        for ns in cx.namespaces.clone() {
            let mut good = Vec::new();
            let mut notes = Vec::new();
            for a in &cx.basis.acknowledgments {
                let b = a.body;
                if b.topic != rule.topic || b.namespace.as_deref() != Some(ns.as_str()) {
                    continue;
                }
                if !a.roles.contains(&role) {
                    notes.push(format!(
                        "acknowledgment {} by '{}' ignored: the signer did not hold the {role} role",
                        a.id.short(),
                        a.signer
                    ));
                    continue;
                }
                if let Some((_, want)) = &subject
                    && (want.is_none() || b.subject != *want)
                {
                    notes.push(format!(
                        "acknowledgment {} by '{}' ignored: it acknowledges {}, not the current {}",
                        a.id.short(),
                        a.signer,
                        b.subject.map(|d| d.short()).unwrap_or("nothing".into()),
                        want.map(|d| d.short())
                            .unwrap_or("(none in the basis)".into())
                    ));
                    continue;
                }
                good.push((a.id, a.signer));
            }
            cx.notes(&rule.name, notes);
            if let Some((id, who)) = good.first() {
                cx.trace(
                    &rule.name,
                    "pass",
                    format!(
                        "namespace {ns}: {} acknowledged by '{who}' ({})",
                        rule.topic,
                        id.short()
                    ),
                );
                continue;
            }
            let affects = cx.in_ns(&ns);
            let want = subject.as_ref().and_then(|(_, w)| *w);
            let mut reason = format!(
                "no {} acknowledgment for namespace {ns} signed by a {role}",
                rule.topic
            );
            if let Some((req, None)) = &subject {
                reason.push_str(&format!(
                    "; there is no current {} in the basis to acknowledge",
                    req.kind
                ));
            }
            let text = match want {
                Some(w) => format!(
                    "a key holding the {role} role signs `evl ack --topic {} --namespace {ns} --subject {}`; pin it in a new packet revision before the proposed checkpoint {}",
                    rule.topic,
                    w.short(),
                    cx.checkpoint
                ),
                None if subject.is_some() => format!(
                    "add the {} to acknowledge, then a key holding the {role} role acknowledges it (topic {}, namespace {ns}) before the proposed checkpoint {}",
                    subject
                        .as_ref()
                        .map(|(r, _)| r.kind.as_str())
                        .unwrap_or_default(),
                    rule.topic,
                    cx.checkpoint
                ),
                None => format!(
                    "a key holding the {role} role signs `evl ack --topic {} --namespace {ns}`; pin it in a new packet revision before the proposed checkpoint {}",
                    rule.topic, cx.checkpoint
                ),
            };
            let unblock = Unblock {
                action: "acknowledge".into(),
                kind: None,
                labels: BTreeMap::new(),
                min_tier: None,
                sealed: false,
                role: Some(role.name().into()),
                subject: want,
                observed_after: None,
                by: Some(cx.checkpoint),
                text,
            };
            cx.block(
                &rule.name,
                Raise {
                    code: rule.code.clone(),
                    subject: Subject::Namespace(ns.clone()),
                    affects,
                    evidence: want.into_iter().collect(),
                    reason,
                    unblock,
                },
            );
        }
    }
}

fn exception_rule(cx: &mut Ctx, inv: Option<&Inventory>) {
    let Some(rule) = &cx.gate.exceptions else {
        return;
    };
    let req = rule.requirement();
    let name = "exceptions";
    let Some(ev) = read_one(cx, name, name, &req) else {
        return;
    };
    let reg = match ev.exceptions() {
        Ok(r) => r,
        Err(e) => return unreadable(cx, name, name, &req, ev, e),
    };
    let checkpoint = cx.checkpoint;
    for e in &reg.exceptions {
        let mut affects: BTreeSet<WorkloadRef> = e.workloads.iter().cloned().collect();
        for w in &cx.in_scope {
            if e.namespaces.contains(&w.namespace) {
                affects.insert(w.clone());
            }
        }
        if let Some(inv) = inv {
            for row in &inv.workloads {
                if row.exception_ids.contains(&e.id) {
                    affects.insert(WorkloadRef {
                        namespace: row.namespace.clone(),
                        workload: row.workload.clone(),
                    });
                }
            }
        }
        let affects: Vec<WorkloadRef> = affects
            .into_iter()
            .filter(|w| cx.in_scope.contains(w))
            .collect();
        if affects.is_empty() {
            cx.trace(
                name,
                "info",
                format!("{} covers no in-scope workload", e.id),
            );
            continue;
        }
        cx.times.insert(e.expires_at);
        let on = affects.iter().map(ws).collect::<Vec<_>>().join(", ");
        let renew = |cx: &Ctx, by: Timestamp| {
            let mut u = cx.add_evidence("renew-exception", &req, "", Some(ev.id));
            u.text = format!(
                "record {} in which {} runs past the proposed checkpoint {checkpoint} (or no longer covers {on}), superseding {}; pin it in a new packet revision before {by}",
                describe_req(&req),
                e.id,
                ev.id.short()
            );
            u.by = Some(by);
            u
        };
        if e.expires_at <= cx.as_of {
            let unblock = renew(cx, checkpoint);
            cx.block(
                name,
                Raise {
                    code: rule.expired_code.clone(),
                    subject: Subject::Exception(e.id.clone()),
                    affects,
                    evidence: vec![ev.id],
                    reason: format!("{} expired at {} and still covers {on}", e.id, e.expires_at),
                    unblock,
                },
            );
        } else if e.expires_at < checkpoint {
            let mut unblock = renew(cx, e.expires_at);
            unblock.text.push_str(&format!(
                ", when it expires and the blocker becomes {}",
                rule.expired_code
            ));
            cx.block(
                name,
                Raise {
                    code: rule.code.clone(),
                    subject: Subject::Exception(e.id.clone()),
                    affects,
                    evidence: vec![ev.id],
                    reason: format!(
                        "{} expires at {}, before the proposed checkpoint {checkpoint}; it covers {on}",
                        e.id, e.expires_at
                    ),
                    unblock,
                },
            );
        } else {
            cx.trace(
                name,
                "pass",
                format!("{} runs until {}, after the checkpoint", e.id, e.expires_at),
            );
        }
    }
}

fn stat(m: &Measurement, s: Statistic, higher_is_worse: bool) -> f64 {
    match (s, higher_is_worse) {
        (Statistic::Last, _) => m.last,
        (Statistic::Worst, true) => m.max,
        (Statistic::Worst, false) => m.min,
    }
}

fn telemetry_rule(cx: &mut Ctx) {
    let Some(rule) = &cx.gate.telemetry else {
        return;
    };
    let name = "telemetry";
    let creq = rule.canary_requirement();
    let Some(cev) = read_one(cx, name, "telemetry canary", &creq) else {
        return;
    };
    let cid = cev.id;
    let canary = match cev.telemetry() {
        Ok(t) => t,
        Err(e) => return unreadable(cx, name, "telemetry canary", &creq, cev, e),
    };
    let mut baseline = None;
    if let Some(breq) = rule.baseline_requirement()
        && let Some(bev) = read_one(cx, name, "telemetry baseline", &breq)
    {
        match bev.telemetry() {
            Ok(t) => baseline = Some((bev.id, t)),
            Err(e) => unreadable(cx, name, "telemetry baseline", &breq, bev, e),
        }
    }
    cx.trace(
        name,
        "info",
        format!(
            "canary window {} ({}){}",
            canary.window,
            cid.short(),
            if canary.sealed { ", sealed" } else { "" }
        ),
    );
    let mut limits = Vec::new();
    if let Some(m) = rule.max_error_rate_pct {
        limits.push(format!("error rate at most {m:.2} %"));
    }
    if let Some(m) = rule.min_success_rate_pct {
        limits.push(format!("success rate at least {m:.2} %"));
    }
    if let Some(m) = rule.max_p95_increase_pct {
        limits.push(format!("p95 latency at most +{m:.1} % over the baseline"));
    }
    for w in cx.in_scope.clone() {
        let Some(m) = canary.get(&w.namespace, &w.workload) else {
            let unblock = cx.add_evidence(
                "refresh-evidence",
                &creq,
                &format!("canary window with a series for {w}"),
                Some(cid),
            );
            cx.block(
                name,
                Raise {
                    code: rule.missing_code.clone(),
                    subject: Subject::Workload(ws(&w)),
                    affects: vec![w.clone()],
                    evidence: vec![cid],
                    reason: format!("the canary window {} has no series for {w}", canary.window),
                    unblock,
                },
            );
            continue;
        };
        let mut why = Vec::new();
        let mut ev = vec![cid];
        if let Some(max) = rule.max_error_rate_pct {
            match &m.error_rate {
                Some(e) if stat(e, rule.statistic, true) * 100.0 > max => why.push(format!(
                    "error rate {} exceeds {max:.2} %",
                    pct(stat(e, rule.statistic, true))
                )),
                Some(_) => {}
                None => why.push("no error-rate series".into()),
            }
        }
        if let Some(min) = rule.min_success_rate_pct {
            match &m.success_rate {
                Some(s) if stat(s, rule.statistic, false) * 100.0 < min => why.push(format!(
                    "success rate {} is below {min:.2} %",
                    pct(stat(s, rule.statistic, false))
                )),
                Some(_) => {}
                None => why.push("no success-rate series".into()),
            }
        }
        if let (Some(max), Some((bid, base))) = (rule.max_p95_increase_pct, &baseline) {
            ev.push(*bid);
            match (
                &m.p95_ms,
                base.get(&w.namespace, &w.workload)
                    .and_then(|b| b.p95_ms.as_ref()),
            ) {
                (Some(c), Some(b)) if b.last > 0.0 => {
                    let (c, b) = (stat(c, rule.statistic, true), b.last);
                    let up = (c - b) / b * 100.0;
                    if up > max {
                        why.push(format!("p95 latency {c:.1} ms is {up:.1} % above the baseline {b:.1} ms (limit +{max:.1} %)"));
                    }
                }
                (None, _) => why.push("no p95 series in the canary".into()),
                (_, _) => why.push("no usable p95 baseline".into()),
            }
        }
        if why.is_empty() {
            cx.trace(name, "pass", format!("{w}: within thresholds"));
        } else {
            let unblock = cx.add_evidence(
                "refresh-evidence",
                &creq,
                &format!("canary window in which {w} is within {}", limits.join(", ")),
                Some(cid),
            );
            cx.block(
                name,
                Raise {
                    code: rule.code.clone(),
                    subject: Subject::Workload(ws(&w)),
                    affects: vec![w.clone()],
                    evidence: ev,
                    reason: why.join("; "),
                    unblock,
                },
            );
        }
    }
}

fn reviewer_blockers(cx: &mut Ctx) {
    let name = "reviewer annotations";
    let basis = cx.basis;
    let accepted: BTreeSet<EntryId> = basis
        .annotations
        .iter()
        .filter(|a| a.roles.contains(&Role::Reviewer) && a.body.kind == AnnotationKind::Accept)
        .map(|a| a.body.subject)
        .collect();
    for a in basis
        .annotations
        .iter()
        .filter(|a| a.body.kind == AnnotationKind::Blocker)
    {
        let (id, who) = (a.id, a.signer);
        if !a.roles.contains(&Role::Reviewer) {
            cx.trace(
                name,
                "ignored",
                format!(
                    "blocker {} by '{who}' ignored: the signer did not hold the reviewer role",
                    id.short()
                ),
            );
            continue;
        }
        if accepted.contains(&id) {
            cx.trace(
                name,
                "pass",
                format!(
                    "blocker {} by '{who}' was closed by a reviewer's accept",
                    id.short()
                ),
            );
            continue;
        }
        let text = a.body.text.lines().next().unwrap_or("").to_string();
        let ev = vec![id, a.body.subject];
        let reason = format!("'{who}': {text}");
        let unblock = Unblock {
            action: "close-review".into(),
            kind: None,
            labels: BTreeMap::new(),
            min_tier: None,
            sealed: false,
            role: Some(Role::Reviewer.name().into()),
            subject: Some(id),
            observed_after: None,
            by: Some(cx.checkpoint),
            text: format!(
                "answer the concern; a key holding the reviewer role closes it with `evl annotate {} --kind accept`, pinned in a new packet revision before the proposed checkpoint {}",
                id.short(),
                cx.checkpoint
            ),
        };
        let raise = |subject: Subject, affects: Vec<WorkloadRef>| Raise {
            code: "reviewer-blocker".into(),
            subject,
            affects,
            evidence: ev.clone(),
            reason: reason.clone(),
            unblock: unblock.clone(),
        };
        let wls: Vec<WorkloadRef> = a
            .body
            .scope
            .workloads
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        if wls.is_empty() && a.body.scope.namespaces.is_empty() {
            cx.block(name, raise(Subject::Global, vec![]));
            continue;
        }
        for w in wls {
            if cx.in_scope.contains(&w) {
                cx.block(name, raise(Subject::Workload(ws(&w)), vec![w.clone()]));
            }
        }
        for ns in &a.body.scope.namespaces {
            if cx.namespaces.contains(ns) {
                let affects = cx.in_ns(ns);
                cx.block(name, raise(Subject::Namespace(ns.clone()), affects));
            }
        }
    }
}

fn share_text(out: usize, total: usize) -> String {
    if total == 0 {
        return "0.00".into();
    }
    let bp = out * 10_000 / total;
    format!("{}.{:02}", bp / 100, bp % 100)
}

/// Why the authority rule escalates a would-be verdict, if it does.
fn authority_check(
    cx: &mut Ctx,
    would_be: Verdict,
    dropped: usize,
    total: usize,
) -> Option<String> {
    let rule = cx.gate.authority.as_ref()?;
    let name = "authority";
    let req = rule.requirement();
    let basis = cx.basis;
    let (found, notes) = basis.one(&req);
    cx.notes(name, notes);
    let Some(ev) = found else {
        return Some(format!(
            "no delegated-authority snapshot ({}) is in the basis; packaging a {} needs {} permitting it",
            req.kind,
            would_be.name(),
            describe_req(&req)
        ));
    };
    let a = match ev.authority() {
        Ok(a) => a,
        Err(e) => {
            return Some(format!(
                "the authority snapshot cannot be read: {e}; packaging a {} needs a readable one",
                would_be.name()
            ));
        }
    };
    cx.times.insert(a.valid_until);
    cx.times.insert(a.taken_at);
    if let Some(end) = ev.fresh_until(&req) {
        cx.times.insert(end);
    }
    let to = if a.escalate_to.is_empty() {
        String::new()
    } else {
        format!(", or the decision goes to {}", a.escalate_to)
    };
    if a.valid_until < cx.as_of {
        return Some(format!(
            "authority snapshot {} lapsed at {}; packaging a {} needs a snapshot in force through the proposed checkpoint {}{to}",
            a.id,
            a.valid_until,
            would_be.name(),
            cx.checkpoint
        ));
    }
    if a.taken_at > cx.as_of {
        return Some(format!(
            "authority snapshot {} takes effect only at {}{to}",
            a.id, a.taken_at
        ));
    }
    if let Some(why) = ev.staleness(&req, cx.as_of) {
        return Some(format!(
            "authority snapshot {} is stale: {} {why}; a fresher snapshot is needed{to}",
            a.id,
            ev.name()
        ));
    }
    if !a.permits(would_be.name()) {
        return Some(format!(
            "authority snapshot {} does not let {} package a {} recommendation (it permits: {}); that needs a snapshot permitting {}{to}",
            a.id,
            a.holder,
            would_be.name(),
            a.permitted_verdicts.join(", "),
            would_be.name()
        ));
    }
    let share_ok = (dropped as f64) * 100.0 <= a.max_out_of_scope_share_pct * (total as f64);
    if would_be == Verdict::Narrow && !share_ok {
        let share = share_text(dropped, total);
        return Some(format!(
            "narrowing leaves {share} % of the packet's workloads out of scope, over the {:.2} % that authority snapshot {} allows; this narrow needs a snapshot allowing at least {share} %{to}",
            a.max_out_of_scope_share_pct, a.id
        ));
    }
    cx.trace(
        name,
        "pass",
        format!(
            "authority snapshot {} ({}) held by {} permits {}{}",
            a.id,
            ev.id.short(),
            a.holder,
            would_be.name(),
            if would_be == Verdict::Narrow {
                format!(
                    " leaving {} % out of scope (at most {:.2} %)",
                    share_text(dropped, total),
                    a.max_out_of_scope_share_pct
                )
            } else {
                String::new()
            }
        ),
    );
    None
}

fn conclude(mut cx: Ctx) -> Evaluation {
    cx.blockers.sort();
    cx.blockers.dedup();
    let total = cx.in_scope.len();
    let mut dropped: BTreeSet<WorkloadRef> = BTreeSet::new();
    let all_scoped = cx.blockers.iter().all(|b| b.scoped);
    for b in &cx.blockers {
        for w in &b.affects {
            dropped.insert(w.parse().expect("evaluate: affects are workload refs"));
        }
    }
    let kept: Vec<WorkloadRef> = cx
        .in_scope
        .iter()
        .filter(|w| !dropped.contains(*w))
        .cloned()
        .collect();
    let would_be = if cx.blockers.is_empty() {
        Verdict::Proceed
    } else if !all_scoped || kept.is_empty() {
        Verdict::Hold
    } else {
        Verdict::Narrow
    };
    let (kept, dropped): (Vec<WorkloadRef>, Vec<WorkloadRef>) = if would_be == Verdict::Narrow {
        (kept, dropped.into_iter().collect())
    } else {
        (cx.in_scope.iter().cloned().collect(), vec![])
    };
    cx.trace(
        "verdict",
        "info",
        format!("the blockers alone give {would_be}"),
    );

    let mut escalation = Vec::new();
    for b in &cx.blockers {
        if cx.gate.is_escalate_only(&b.code) {
            escalation.push(format!(
                "blocker {} on {} is escalate-only in this gate",
                b.code, b.subject
            ));
        }
    }
    if let Some(e) = authority_check(&mut cx, would_be, dropped.len(), total) {
        escalation.push(e);
    }
    let verdict = if escalation.is_empty() {
        would_be
    } else {
        Verdict::Escalate
    };
    for e in &escalation {
        cx.trace("escalation", "escalate", e.clone());
    }

    let kept_s: Vec<String> = kept.iter().map(ws).collect();
    let in_ns: BTreeSet<String> = kept.iter().map(|w| w.namespace.clone()).collect();
    let scope = ScopeSplit {
        in_scope_workloads: kept_s.clone(),
        out_of_scope_workloads: dropped.iter().map(ws).collect(),
        in_scope_namespaces: in_ns.iter().cloned().collect(),
        out_of_scope_namespaces: cx
            .namespaces
            .iter()
            .filter(|n| !in_ns.contains(*n))
            .cloned()
            .collect(),
        out_of_scope_share_pct: share_text(dropped.len(), total),
    };

    // Narrowing proposals in the basis and the latest reviewer decision on each, both as
    // they stood at the as-of time.
    let mut decisions: BTreeMap<EntryId, (u64, AnnotationKind)> = BTreeMap::new();
    for a in &cx.basis.annotations {
        if matches!(a.body.kind, AnnotationKind::Accept | AnnotationKind::Reject)
            && a.roles.contains(&Role::Reviewer)
        {
            let e = decisions
                .entry(a.body.subject)
                .or_insert((a.index, a.body.kind));
            if a.index >= e.0 {
                *e = (a.index, a.body.kind);
            }
        }
    }
    let mut proposals = Vec::new();
    for n in &cx.basis.narrowings {
        let mut keep: Vec<String> = n.body.keep.iter().map(ws).collect();
        keep.sort();
        keep.dedup();
        let status = match decisions.get(&n.id) {
            Some((_, AnnotationKind::Accept)) => "accepted",
            Some((_, AnnotationKind::Reject)) => "rejected",
            _ => "open",
        };
        proposals.push(ProposalStatus {
            proposal: n.id,
            status: status.into(),
            matches_derived_scope: keep == kept_s,
            keep,
        });
    }
    proposals.sort();

    let times: Vec<Timestamp> = cx.times.iter().copied().collect();
    let basis_ids: Vec<EntryId> = cx.input.basis.iter().map(|b| b.id).collect();
    let d = Disposition {
        format: DISPOSITION_FORMAT.into(),
        engine_version: ENGINE_VERSION.into(),
        packet: cx.input.packet_id,
        packet_name: cx.input.packet.name.clone(),
        revision: cx.input.packet.revision,
        gate: cx.input.packet.gate,
        gate_id: cx.gate.id.clone(),
        as_of: cx.as_of,
        checkpoint_at: cx.input.packet.checkpoint_at,
        basis_digest: basis_digest(&basis_ids),
        verdict,
        would_be: (verdict == Verdict::Escalate).then_some(would_be),
        escalation,
        blockers: cx.blockers,
        scope,
        narrowing_proposals: proposals,
        trace: cx.trace,
    };
    Evaluation {
        disposition: d,
        time_points: times,
    }
}
