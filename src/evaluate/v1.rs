//! Engine `evl-engine/1`, frozen: the gate engine as it was released, kept so that every
//! disposition recorded with it replays byte for byte (docs/FORMAT.md §"Dispositions",
//! "Engine versions"). Its semantics are those of docs/GATES.md §"Engine 1".
//!
//! Do not change what this module derives. The only edits allowed are mechanical ones that
//! keep it compiling against shared types (a new field set to its empty value); the test
//! vectors in `tests/vectors/` (disposition-v1, bundle-v1, store-layout-2) prove that each
//! such edit changed no byte.

use std::collections::{BTreeMap, BTreeSet};

use super::{BasisItem, EvalError, EvalInput, Evaluation};
use crate::digest::EntryId;
use crate::disposition::{
    Blocker, DISPOSITION_FORMAT_V1, Disposition, ProposalStatus, ScopeSplit, Subject, TraceLine,
    Verdict, basis_digest,
};
use crate::entry::{AnnotationKind, ArtifactMeta, Payload, Tier, WorkloadRef};
use crate::evidence::{AuthoritySnapshot, DRILL_KIND, ExceptionRegister, Outcome, RollbackDrill};
use crate::gate::{Cover, EvidenceRule, GateDefinition, Selector, Statistic};
use crate::ingest::inventory::{self, Compatibility, Inventory};
use crate::ingest::telemetry::{self, Measurement, TelemetrySummary};
use crate::keys::Role;
use crate::timestamp::Timestamp;

/// The engine version this module derives, recorded in its dispositions.
pub const ENGINE_VERSION: &str = "evl-engine/1";

const DAY: i64 = 86_400;

/// An artifact usable by rules: current (not superseded), at its effective tier.
struct Art<'a> {
    item: &'a BasisItem,
    meta: &'a ArtifactMeta,
    tier: Tier,
    bytes: &'a [u8],
}

struct Ctx<'a> {
    input: &'a EvalInput,
    gate: GateDefinition,
    as_of: Timestamp,
    in_scope: BTreeSet<WorkloadRef>,
    namespaces: BTreeSet<String>,
    arts: Vec<Art<'a>>,
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

impl<'a> Ctx<'a> {
    fn trace(&mut self, rule: &str, outcome: &str, detail: impl Into<String>) {
        self.trace.push(TraceLine {
            rule: rule.to_string(),
            outcome: outcome.to_string(),
            detail: detail.into(),
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn block(
        &mut self,
        rule: &str,
        code: &str,
        subject: Subject,
        affects: Vec<WorkloadRef>,
        evidence: Vec<EntryId>,
        reason: String,
    ) {
        let mut affects: Vec<String> = affects
            .iter()
            .filter(|w| self.in_scope.contains(*w))
            .map(ws)
            .collect();
        affects.sort();
        affects.dedup();
        let mut evidence = evidence;
        evidence.sort();
        evidence.dedup();
        let scoped = self.gate.is_scoped(code) && !affects.is_empty();
        self.trace(rule, "blocker", format!("{code} on {subject}: {reason}"));
        self.blockers.push(Blocker {
            code: code.to_string(),
            subject,
            scoped,
            affects,
            evidence,
            reason,
            unblock: None,
        });
    }

    fn in_ns(&self, ns: &str) -> Vec<WorkloadRef> {
        self.in_scope
            .iter()
            .filter(|w| w.namespace == ns)
            .cloned()
            .collect()
    }

    /// Current artifacts matching `sel` at `min_tier` or above, oldest first; others traced.
    fn select(&mut self, rule: &str, sel: &Selector, min_tier: Tier, sealed: bool) -> Vec<usize> {
        let mut out = Vec::new();
        let mut notes = Vec::new();
        for (i, a) in self.arts.iter().enumerate() {
            if a.meta.kind != sel.kind
                || !sel
                    .labels
                    .iter()
                    .all(|(k, v)| a.meta.labels.get(k) == Some(v))
            {
                continue;
            }
            if a.tier.rank() < min_tier.rank() {
                notes.push(format!(
                    "{} ({}) ignored: tier {} is below the required {}",
                    a.meta.file_name,
                    a.item.id.short(),
                    a.tier,
                    min_tier
                ));
                continue;
            }
            if sealed && !a.meta.sealed {
                notes.push(format!(
                    "{} ({}) ignored: not sealed",
                    a.meta.file_name,
                    a.item.id.short()
                ));
                continue;
            }
            out.push(i);
        }
        for n in notes {
            self.trace(rule, "ignored", n);
        }
        out.sort_by_key(|&i| (self.arts[i].meta.captured_at, self.arts[i].item.index));
        out
    }

    fn latest(
        &mut self,
        rule: &str,
        sel: &Selector,
        min_tier: Tier,
        sealed: bool,
    ) -> Option<usize> {
        self.select(rule, sel, min_tier, sealed).last().copied()
    }
}

/// An evidence artifact as an evidence rule sees it.
struct View {
    id: EntryId,
    name: String,
    path: Option<String>,
    observed_at: Timestamp,
    workloads: Vec<WorkloadRef>,
    namespaces: Vec<String>,
    pass: bool,
    /// Why it does not count now (stale, failed, expired), if so.
    problem: Option<String>,
}

fn parse_workloads(list: &[String]) -> Vec<WorkloadRef> {
    list.iter().filter_map(|s| s.parse().ok()).collect()
}

/// Evaluates `input` at `as_of` with engine 1, also returning the instants where time-dependent rules flip.
pub fn evaluate_full(input: &EvalInput, as_of: Timestamp) -> Result<Evaluation, EvalError> {
    let gate = GateDefinition::parse(&input.gate_bytes).map_err(|source| EvalError::Gate {
        id: input.packet.gate,
        source,
    })?;
    let in_scope: BTreeSet<WorkloadRef> = input.packet.in_scope.iter().cloned().collect();
    let namespaces: BTreeSet<String> = in_scope.iter().map(|w| w.namespace.clone()).collect();
    let mut cx = Ctx {
        input,
        gate,
        as_of,
        in_scope,
        namespaces,
        arts: Vec::new(),
        blockers: Vec::new(),
        trace: Vec::new(),
        times: BTreeSet::new(),
    };
    cx.times.insert(input.packet.checkpoint_at);
    sources(&mut cx);
    let rules = cx.gate.evidence.clone();
    for r in &rules {
        evidence_rule(&mut cx, r);
    }
    let inv = inventory_rule(&mut cx);
    ack_rules(&mut cx);
    exception_rule(&mut cx, inv.as_ref());
    telemetry_rule(&mut cx);
    reviewer_blockers(&mut cx);
    Ok(conclude(cx))
}

/// Source precedence: supersession, exclusion and promotion.
fn sources(cx: &mut Ctx) {
    let basis = &cx.input.basis;
    let mut superseded: BTreeMap<EntryId, EntryId> = BTreeMap::new();
    let mut promoted: BTreeMap<EntryId, (Tier, EntryId)> = BTreeMap::new();
    let mut notes = Vec::new();
    for b in basis {
        match &b.entry.body.payload {
            Payload::Artifact(m) => {
                if let Some(old) = m.supersedes {
                    superseded.insert(old, b.id);
                }
            }
            Payload::Promotion(p) => {
                if b.signer_roles.contains(&Role::Owner) {
                    let e = promoted.entry(p.artifact).or_insert((p.to, b.id));
                    if p.to.rank() > e.0.rank() {
                        *e = (p.to, b.id);
                    }
                } else {
                    notes.push((
                        "source precedence",
                        "ignored",
                        format!(
                            "promotion {} ignored: signer '{}' did not hold the owner role",
                            b.id.short(),
                            b.signer_name
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    let mut arts = Vec::new();
    for b in basis {
        let Payload::Artifact(m) = &b.entry.body.payload else {
            continue;
        };
        let Some(bytes) = b.artifact.as_deref() else {
            continue;
        };
        if let Some(by) = superseded.get(&b.id) {
            notes.push((
                "source precedence",
                "ignored",
                format!(
                    "{} ({}) is superseded by {}",
                    m.file_name,
                    b.id.short(),
                    by.short()
                ),
            ));
            continue;
        }
        let mut tier = m.tier;
        if let Some((to, by)) = promoted.get(&b.id)
            && to.rank() > tier.rank()
        {
            notes.push((
                "source precedence",
                "info",
                format!(
                    "{} ({}) promoted from {} to {} by {}",
                    m.file_name,
                    b.id.short(),
                    tier,
                    to,
                    by.short()
                ),
            ));
            tier = *to;
        }
        if tier == Tier::Excluded {
            notes.push((
                "source precedence",
                "ignored",
                format!(
                    "{} ({}) is excluded-tier material and was not promoted",
                    m.file_name,
                    b.id.short()
                ),
            ));
            continue;
        }
        arts.push(Art {
            item: b,
            meta: m,
            tier,
            bytes,
        });
    }
    cx.arts = arts;
    for (r, o, d) in notes {
        cx.trace(r, o, d);
    }
}

fn view_of(cx: &mut Ctx, rule: &EvidenceRule, i: usize) -> Result<View, String> {
    let a = &cx.arts[i];
    let mut v = View {
        id: a.item.id,
        name: format!("{} ({})", a.meta.file_name, a.item.id.short()),
        path: a.meta.labels.get("path").cloned(),
        observed_at: a.meta.captured_at,
        workloads: parse_workloads(&a.meta.scope.workloads),
        namespaces: a.meta.scope.namespaces.clone(),
        pass: true,
        problem: None,
    };
    if a.meta.kind == DRILL_KIND {
        let d = RollbackDrill::parse(&a.meta.file_name, a.bytes).map_err(|e| e.to_string())?;
        v.path = Some(d.path);
        v.observed_at = d.performed_at;
        v.workloads.extend(d.workloads);
        v.namespaces.extend(d.namespaces);
        v.pass = d.outcome == Outcome::Pass;
    }
    v.workloads.sort();
    v.workloads.dedup();
    v.namespaces.sort();
    v.namespaces.dedup();
    let valid_until = a.meta.valid_until;
    let as_of = cx.as_of;
    cx.times.insert(v.observed_at);
    if v.observed_at > as_of {
        v.problem = Some(format!(
            "observed at {} after the as-of time",
            v.observed_at
        ));
    } else if rule.require_pass && !v.pass {
        v.problem = Some(format!("the drill of {} failed", v.observed_at));
    } else if let Some(vu) = valid_until
        && vu < as_of
    {
        v.problem = Some(format!("valid only until {vu}"));
    } else if let Some(vu) = valid_until
        && rule.valid_through_checkpoint
        && vu < cx.input.packet.checkpoint_at
    {
        v.problem = Some(format!(
            "valid only until {vu}, before the proposed checkpoint {}",
            cx.input.packet.checkpoint_at
        ));
    } else if let Some(days) = rule.max_age_days {
        let end = v.observed_at.plus_seconds(i64::from(days) * DAY);
        if as_of > end {
            v.problem = Some(format!(
                "observed {}, more than {days} days before the as-of time: its {days}-day freshness window closed at {end}",
                v.observed_at
            ));
        }
    }
    if let Some(days) = rule.max_age_days {
        cx.times
            .insert(v.observed_at.plus_seconds(i64::from(days) * DAY));
    }
    if let Some(vu) = valid_until {
        cx.times.insert(vu);
    }
    Ok(v)
}

fn covers(v: &View, w: &WorkloadRef) -> bool {
    v.workloads.contains(w) || v.namespaces.contains(&w.namespace)
}

fn evidence_rule(cx: &mut Ctx, r: &EvidenceRule) {
    let sel = Selector {
        kind: r.kind.clone(),
        labels: r.labels.clone(),
        ..Selector::default()
    };
    let idx = cx.select(&r.name, &sel, r.min_tier, r.sealed);
    let mut views = Vec::new();
    for i in idx {
        match view_of(cx, r, i) {
            Ok(v) => views.push(v),
            Err(e) => {
                let id = cx.arts[i].item.id;
                cx.block(
                    &r.name,
                    "evidence-unreadable",
                    Subject::Rule(r.name.clone()),
                    vec![],
                    vec![id],
                    e,
                );
            }
        }
    }
    // The freshest acceptable view decides; a stale or failed one explains a blocker.
    let judge = |cx: &mut Ctx, what: Subject, matching: Vec<&View>, affects: Vec<WorkloadRef>| {
        if let Some(ok) = matching.iter().rev().find(|v| v.problem.is_none()) {
            let d = format!("{what}: {} observed {}", ok.name, ok.observed_at);
            cx.trace(&r.name, "pass", d);
        } else if let Some(last) = matching.iter().max_by_key(|v| v.observed_at) {
            let reason = format!(
                "{} evidence for {what} is not current: {} {}",
                r.kind,
                last.name,
                last.problem.clone().unwrap_or_default()
            );
            let ids = matching.iter().map(|v| v.id).collect();
            cx.block(&r.name, &r.stale_code, what, affects, ids, reason);
        } else {
            let reason = format!("no acceptable {} evidence for {what}", r.kind);
            cx.block(&r.name, &r.missing_code, what, affects, vec![], reason);
        }
    };
    match r.cover {
        Cover::None => {
            let all: Vec<&View> = views.iter().collect();
            judge(cx, Subject::Rule(r.name.clone()), all, vec![]);
        }
        Cover::Workloads => {
            for w in cx.in_scope.clone() {
                let m = views.iter().filter(|v| covers(v, &w)).collect();
                judge(cx, Subject::Workload(ws(&w)), m, vec![w]);
            }
        }
        Cover::Namespaces => {
            for ns in cx.namespaces.clone() {
                let m = views
                    .iter()
                    .filter(|v| v.namespaces.contains(&ns))
                    .collect();
                let affects = cx.in_ns(&ns);
                judge(cx, Subject::Namespace(ns), m, affects);
            }
        }
        Cover::Paths => {
            // The views of each path, in the views' order: one pass over the views instead of
            // one per path (a gate may name a thousand paths, each with its drill).
            let mut by_path: BTreeMap<&str, Vec<&View>> = BTreeMap::new();
            for v in &views {
                if let Some(p) = v.path.as_deref() {
                    by_path.entry(p).or_default().push(v);
                }
            }
            for p in &r.paths {
                let m: Vec<&View> = by_path.get(p.as_str()).cloned().unwrap_or_default();
                let mut affects: Vec<WorkloadRef> = Vec::new();
                for v in &m {
                    for w in cx.in_scope.iter() {
                        if covers(v, w) {
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

fn inventory_rule(cx: &mut Ctx) -> Option<Inventory> {
    let rule = cx.gate.inventory.clone()?;
    let name = "inventory";
    let Some(i) = cx.latest(name, &rule.select, rule.min_tier, false) else {
        cx.block(
            name,
            "evidence-missing",
            Subject::Rule(name.into()),
            vec![],
            vec![],
            format!("no {} artifact in the basis", rule.select.kind),
        );
        return None;
    };
    let (id, file) = (cx.arts[i].item.id, cx.arts[i].meta.file_name.clone());
    let inv = match inventory::parse_csv(&file, cx.arts[i].bytes) {
        Ok(inv) => inv,
        Err(e) => {
            cx.block(
                name,
                "evidence-unreadable",
                Subject::Rule(name.into()),
                vec![],
                vec![id],
                e.to_string(),
            );
            return None;
        }
    };
    cx.trace(
        name,
        "info",
        format!(
            "inventory {file} ({}) with {} workloads",
            id.short(),
            inv.workloads.len()
        ),
    );
    for w in cx.in_scope.clone() {
        match inv.get(&w.namespace, &w.workload) {
            None => cx.block(
                name,
                &rule.missing_code,
                Subject::Workload(ws(&w)),
                vec![w.clone()],
                vec![id],
                format!("{w} is not in the frozen inventory {file}"),
            ),
            Some(row) => {
                let status = compat_name(row.compatibility);
                if rule.required_compatibility.iter().any(|s| s == status) {
                    cx.trace(name, "pass", format!("{w}: compatibility {status}"));
                } else {
                    let reason = format!(
                        "sidecar compatibility is {status} ({}, sidecar mode {}); the gate requires {}",
                        if row.stateful {
                            "stateful"
                        } else {
                            "stateless"
                        },
                        row.sidecar_mode,
                        rule.required_compatibility.join(" or ")
                    );
                    cx.block(
                        name,
                        &rule.code,
                        Subject::Workload(ws(&w)),
                        vec![w.clone()],
                        vec![id],
                        reason,
                    );
                }
            }
        }
    }
    Some(inv)
}

fn ack_rules(cx: &mut Ctx) {
    for rule in cx.gate.acknowledgments.clone() {
        let role: Role = rule.role.parse().expect("gate: roles checked at parse");
        let subject = match &rule.subject {
            Some(sel) => match cx.latest(&rule.name, sel, Tier::Operational, false) {
                Some(i) => Some(Some(cx.arts[i].item.id)),
                None => Some(None),
            },
            None => None,
        };
        for ns in cx.namespaces.clone() {
            let mut good = Vec::new();
            let mut notes = Vec::new();
            for b in &cx.input.basis {
                let Payload::Acknowledgment(a) = &b.entry.body.payload else {
                    continue;
                };
                if a.topic != rule.topic || a.namespace.as_deref() != Some(ns.as_str()) {
                    continue;
                }
                if !b.signer_roles.contains(&role) {
                    notes.push(format!("acknowledgment {} by '{}' ignored: the signer did not hold the {role} role", b.id.short(), b.signer_name));
                    continue;
                }
                if let Some(want) = &subject
                    && a.subject != *want
                {
                    notes.push(format!("acknowledgment {} by '{}' ignored: it acknowledges {} , not the current {}", b.id.short(), b.signer_name, a.subject.map(|d| d.short()).unwrap_or("nothing".into()), want.map(|d| d.short()).unwrap_or("(missing)".into())));
                    continue;
                }
                good.push((b.id, b.signer_name.clone()));
            }
            for n in notes {
                cx.trace(&rule.name, "ignored", n);
            }
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
            } else {
                let affects = cx.in_ns(&ns);
                let ev = subject.flatten().into_iter().collect();
                cx.block(
                    &rule.name,
                    &rule.code,
                    Subject::Namespace(ns.clone()),
                    affects,
                    ev,
                    format!(
                        "no {} acknowledgment for namespace {ns} signed by a {role}",
                        rule.topic
                    ),
                );
            }
        }
    }
}

fn exception_rule(cx: &mut Ctx, inv: Option<&Inventory>) {
    let Some(rule) = cx.gate.exceptions.clone() else {
        return;
    };
    let name = "exceptions";
    let Some(i) = cx.latest(name, &rule.select, rule.min_tier, false) else {
        cx.block(
            name,
            "evidence-missing",
            Subject::Rule(name.into()),
            vec![],
            vec![],
            format!("no {} artifact in the basis", rule.select.kind),
        );
        return;
    };
    let (id, file) = (cx.arts[i].item.id, cx.arts[i].meta.file_name.clone());
    let reg = match ExceptionRegister::parse(&file, cx.arts[i].bytes) {
        Ok(r) => r,
        Err(e) => {
            cx.block(
                name,
                "evidence-unreadable",
                Subject::Rule(name.into()),
                vec![],
                vec![id],
                e.to_string(),
            );
            return;
        }
    };
    let checkpoint = cx.input.packet.checkpoint_at;
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
        if e.expires_at <= cx.as_of {
            cx.block(
                name,
                &rule.expired_code,
                Subject::Exception(e.id.clone()),
                affects,
                vec![id],
                format!("{} expired at {} and still covers {on}", e.id, e.expires_at),
            );
        } else if e.expires_at < checkpoint {
            cx.block(
                name,
                &rule.code,
                Subject::Exception(e.id.clone()),
                affects,
                vec![id],
                format!(
                    "{} expires at {}, before the proposed checkpoint {checkpoint}; it covers {on}",
                    e.id, e.expires_at
                ),
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

fn telemetry_of(cx: &Ctx, i: usize) -> Result<TelemetrySummary, String> {
    let a = &cx.arts[i];
    let window = a
        .meta
        .labels
        .get("window")
        .cloned()
        .unwrap_or_else(|| a.meta.file_name.clone());
    // The label mapping a Prometheus response was ingested with is recorded in its entry (none
    // before importer facts version 2, which reads as the default mapping).
    let mapping = crate::facts::telemetry_mapping(&a.meta);
    telemetry::parse_mapped(&a.meta.file_name, a.bytes, &window, a.meta.sealed, &mapping)
        .map_err(|e| e.to_string())
}

fn telemetry_rule(cx: &mut Ctx) {
    let Some(rule) = cx.gate.telemetry.clone() else {
        return;
    };
    let name = "telemetry";
    let Some(ci) = cx.latest(name, &rule.canary, rule.min_tier, rule.sealed) else {
        let reason = format!(
            "no{} {} artifact labelled {:?} in the basis",
            if rule.sealed { " sealed" } else { "" },
            rule.canary.kind,
            rule.canary.labels
        );
        cx.block(
            name,
            "evidence-missing",
            Subject::Rule("telemetry canary".into()),
            vec![],
            vec![],
            reason,
        );
        return;
    };
    let cid = cx.arts[ci].item.id;
    let canary = match telemetry_of(cx, ci) {
        Ok(t) => t,
        Err(e) => {
            return cx.block(
                name,
                "evidence-unreadable",
                Subject::Rule("telemetry canary".into()),
                vec![],
                vec![cid],
                e,
            );
        }
    };
    let mut baseline = None;
    if let Some(sel) = &rule.baseline {
        match cx.latest(name, sel, rule.min_tier, false) {
            None => {
                cx.block(
                    name,
                    "evidence-missing",
                    Subject::Rule("telemetry baseline".into()),
                    vec![],
                    vec![],
                    format!(
                        "no {} baseline artifact labelled {:?} in the basis",
                        sel.kind, sel.labels
                    ),
                );
            }
            Some(bi) => {
                let bid = cx.arts[bi].item.id;
                match telemetry_of(cx, bi) {
                    Ok(t) => baseline = Some((bid, t)),
                    Err(e) => cx.block(
                        name,
                        "evidence-unreadable",
                        Subject::Rule("telemetry baseline".into()),
                        vec![],
                        vec![bid],
                        e,
                    ),
                }
            }
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
    for w in cx.in_scope.clone() {
        let Some(m) = canary.get(&w.namespace, &w.workload) else {
            cx.block(
                name,
                &rule.missing_code,
                Subject::Workload(ws(&w)),
                vec![w.clone()],
                vec![cid],
                format!("the canary window {} has no series for {w}", canary.window),
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
            cx.block(
                name,
                &rule.code,
                Subject::Workload(ws(&w)),
                vec![w.clone()],
                ev,
                why.join("; "),
            );
        }
    }
}

fn reviewer_blockers(cx: &mut Ctx) {
    let name = "reviewer annotations";
    let basis = &cx.input.basis;
    let accepted: BTreeSet<EntryId> = basis
        .iter()
        .filter(|b| b.signer_roles.contains(&Role::Reviewer))
        .filter_map(|b| match &b.entry.body.payload {
            Payload::Annotation(a) if a.kind == AnnotationKind::Accept => Some(a.subject),
            _ => None,
        })
        .collect();
    let mut found = Vec::new();
    for b in basis {
        let Payload::Annotation(a) = &b.entry.body.payload else {
            continue;
        };
        if a.kind != AnnotationKind::Blocker {
            continue;
        }
        found.push((
            b.id,
            b.signer_name.clone(),
            b.signer_roles.contains(&Role::Reviewer),
            a.clone(),
        ));
    }
    for (id, who, reviewer, a) in found {
        if !reviewer {
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
        let text = a.text.lines().next().unwrap_or("").to_string();
        let ev = vec![id, a.subject];
        let reason = format!("'{who}': {text}");
        let wls = parse_workloads(&a.scope.workloads);
        if wls.is_empty() && a.scope.namespaces.is_empty() {
            cx.block(
                name,
                "reviewer-blocker",
                Subject::Global,
                vec![],
                ev,
                reason,
            );
            continue;
        }
        for w in wls {
            if cx.in_scope.contains(&w) {
                cx.block(
                    name,
                    "reviewer-blocker",
                    Subject::Workload(ws(&w)),
                    vec![w.clone()],
                    ev.clone(),
                    reason.clone(),
                );
            }
        }
        for ns in &a.scope.namespaces {
            if cx.namespaces.contains(ns) {
                let affects = cx.in_ns(ns);
                cx.block(
                    name,
                    "reviewer-blocker",
                    Subject::Namespace(ns.clone()),
                    affects,
                    ev.clone(),
                    reason.clone(),
                );
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

    // Escalation triggers.
    let mut escalation = Vec::new();
    for b in &cx.blockers {
        if cx.gate.is_escalate_only(&b.code) {
            escalation.push(format!(
                "blocker {} on {} is escalate-only in this gate",
                b.code, b.subject
            ));
        }
    }
    if let Some(rule) = cx.gate.authority.clone() {
        let name = "authority";
        match cx.latest(name, &rule.select, rule.min_tier, false) {
            None => escalation.push(format!(
                "no delegated-authority snapshot ({}) is in the basis",
                rule.select.kind
            )),
            Some(i) => {
                let (id, file) = (cx.arts[i].item.id, cx.arts[i].meta.file_name.clone());
                match AuthoritySnapshot::parse(&file, cx.arts[i].bytes) {
                    Err(e) => {
                        escalation.push(format!("the authority snapshot cannot be read: {e}"))
                    }
                    Ok(a) => {
                        cx.times.insert(a.valid_until);
                        cx.times.insert(a.taken_at);
                        let share_ok = (dropped.len() as f64) * 100.0
                            <= a.max_out_of_scope_share_pct * (total as f64);
                        if a.valid_until < cx.as_of {
                            escalation.push(format!(
                                "authority snapshot {} lapsed at {}",
                                a.id, a.valid_until
                            ));
                        } else if a.taken_at > cx.as_of {
                            escalation.push(format!(
                                "authority snapshot {} takes effect only at {}",
                                a.id, a.taken_at
                            ));
                        } else if !a.permits(would_be.name()) {
                            escalation.push(format!("authority snapshot {} does not let {} package a {} recommendation (it permits: {})", a.id, a.holder, would_be.name(), a.permitted_verdicts.join(", ")));
                        } else if would_be == Verdict::Narrow && !share_ok {
                            escalation.push(format!("narrowing leaves {} % of the packet's workloads out of scope, over the {:.2} % that authority snapshot {} allows", share_text(dropped.len(), total), a.max_out_of_scope_share_pct, a.id));
                        } else {
                            cx.trace(
                                name,
                                "pass",
                                format!(
                                    "authority snapshot {} ({}) held by {} permits {}",
                                    a.id,
                                    id.short(),
                                    a.holder,
                                    would_be.name()
                                ),
                            );
                        }
                    }
                }
            }
        }
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

    // Narrowing proposals in the basis and the latest reviewer decision on each.
    let mut decisions: BTreeMap<EntryId, (u64, AnnotationKind)> = BTreeMap::new();
    for b in &cx.input.basis {
        if let Payload::Annotation(a) = &b.entry.body.payload
            && matches!(a.kind, AnnotationKind::Accept | AnnotationKind::Reject)
            && b.signer_roles.contains(&Role::Reviewer)
        {
            let e = decisions.entry(a.subject).or_insert((b.index, a.kind));
            if b.index >= e.0 {
                *e = (b.index, a.kind);
            }
        }
    }
    let mut proposals = Vec::new();
    for b in &cx.input.basis {
        if let Payload::Narrowing(n) = &b.entry.body.payload {
            let mut keep: Vec<String> = n.keep.iter().map(ws).collect();
            keep.sort();
            keep.dedup();
            let status = match decisions.get(&b.id) {
                Some((_, AnnotationKind::Accept)) => "accepted",
                Some((_, AnnotationKind::Reject)) => "rejected",
                _ => "open",
            };
            proposals.push(ProposalStatus {
                proposal: b.id,
                status: status.into(),
                matches_derived_scope: keep == kept_s,
                keep,
            });
        }
    }
    proposals.sort();

    let times: Vec<Timestamp> = cx.times.iter().copied().collect();
    let basis_ids: Vec<EntryId> = cx.input.basis.iter().map(|b| b.id).collect();
    let d = Disposition {
        format: DISPOSITION_FORMAT_V1.into(),
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
