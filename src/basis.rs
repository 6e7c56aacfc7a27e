//! The pinned basis as typed, checked evidence at one as-of time: the loading step of engine 2
//! (docs/GATES.md §"Evaluation", steps 1–2).
//!
//! [`Basis::load`] reads every basis entry once: it drops what did not exist at the as-of time
//! (captured, observed or signed after it), applies promotions and exclusion, checks each
//! supersession, and parses each artifact once in every format a rule of the gate reads it as
//! (rollback drill, inventory, exception register, telemetry, authority snapshot). The rules
//! of `evaluate` are then pure functions over these values; they never parse or look anything
//! up. [`Basis::candidates`] is the one implementation of a rule's requirements
//! ([`Requirement`]: kind, labels, minimum tier, sealed, signer role), and
//! [`Evidence::staleness`] of its maximum age.

use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

use crate::digest::EntryId;
use crate::disposition::TraceLine;
use crate::entry::{
    Acknowledgment, Annotation, ArtifactMeta, NarrowingProposal, Payload, Tier, WorkloadRef,
};
use crate::evaluate::{BasisItem, EvalInput};
use crate::evidence::{AuthoritySnapshot, DRILL_KIND, ExceptionRegister, RollbackDrill};
use crate::gate::{GateDefinition, Requirement};
use crate::ingest::inventory::{self, Inventory};
use crate::ingest::telemetry::{self, TelemetrySummary};
use crate::keys::Role;
use crate::timestamp::Timestamp;

const DAY: i64 = 86_400;

/// A format a rule reads an artifact's bytes as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reading {
    Inventory,
    Exceptions,
    Telemetry,
    Authority,
}

/// An artifact's bytes read in one format.
#[derive(Clone, Debug)]
pub enum Parsed {
    Inventory(Inventory),
    Exceptions(ExceptionRegister),
    Telemetry(TelemetrySummary),
    Authority(AuthoritySnapshot),
}

/// One artifact of the basis that exists at the as-of time and is in use (not excluded, or
/// promoted), with everything a rule needs to know about it.
#[derive(Debug)]
pub struct Evidence<'a> {
    pub id: EntryId,
    /// Log position.
    pub index: u64,
    pub meta: &'a ArtifactMeta,
    /// The signer's registered name and the roles it held at `index`.
    pub signer: &'a str,
    pub roles: &'a [Role],
    /// The tier after promotion.
    pub tier: Tier,
    /// A rollback drill's `performed_at`, else `captured_at`.
    pub observed_at: Timestamp,
    /// A drill's `path`, else the `path` label.
    pub path: Option<String>,
    /// The artifact scope's workloads plus a drill's.
    pub workloads: Vec<WorkloadRef>,
    /// The artifact scope's namespaces plus a drill's.
    pub namespaces: Vec<String>,
    /// For a `rollback-drill`, the parsed record (or why it does not parse).
    pub drill: Option<Result<RollbackDrill, String>>,
    /// The artifact parsed in each format some rule reads it as.
    readings: BTreeMap<Reading, Result<Parsed, String>>,
}

impl Evidence<'_> {
    /// `file (id prefix)`, as the trace names artifacts.
    pub fn name(&self) -> String {
        format!("{} ({})", self.meta.file_name, self.id.short())
    }

    fn reading(&self, r: Reading) -> Result<&Parsed, String> {
        match self.readings.get(&r) {
            Some(Ok(p)) => Ok(p),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("{} was not read as {r:?}", self.name())),
        }
    }

    /// The artifact read as a workload inventory.
    pub fn inventory(&self) -> Result<&Inventory, String> {
        match self.reading(Reading::Inventory)? {
            Parsed::Inventory(i) => Ok(i),
            _ => unreachable!("basis: reading Inventory holds an inventory"),
        }
    }

    /// The artifact read as a certificate-exception register.
    pub fn exceptions(&self) -> Result<&ExceptionRegister, String> {
        match self.reading(Reading::Exceptions)? {
            Parsed::Exceptions(r) => Ok(r),
            _ => unreachable!("basis: reading Exceptions holds a register"),
        }
    }

    /// The artifact read as telemetry.
    pub fn telemetry(&self) -> Result<&TelemetrySummary, String> {
        match self.reading(Reading::Telemetry)? {
            Parsed::Telemetry(t) => Ok(t),
            _ => unreachable!("basis: reading Telemetry holds telemetry"),
        }
    }

    /// The artifact read as a delegated-authority snapshot.
    pub fn authority(&self) -> Result<&AuthoritySnapshot, String> {
        match self.reading(Reading::Authority)? {
            Parsed::Authority(a) => Ok(a),
            _ => unreachable!("basis: reading Authority holds a snapshot"),
        }
    }

    /// Whether the artifact is of the requirement's kind and carries all its labels.
    pub fn selected_by(&self, req: &Requirement) -> bool {
        self.meta.kind == req.kind
            && req
                .labels
                .iter()
                .all(|(k, v)| self.meta.labels.get(k) == Some(v))
    }

    /// Why the artifact, though selected, does not meet `req` (tier, seal, signer role).
    pub fn shortfall(&self, req: &Requirement) -> Option<String> {
        if self.tier.rank() < req.min_tier.rank() {
            return Some(format!(
                "tier {} is below the required {}",
                self.tier, req.min_tier
            ));
        }
        if req.sealed && !self.meta.sealed {
            return Some("not sealed".into());
        }
        if let Some(role) = req.signer_role
            && !self.roles.contains(&role)
        {
            return Some(format!(
                "its signer '{}' did not hold the {role} role",
                self.signer
            ));
        }
        None
    }

    /// The end of the artifact's freshness window under `req`, if it has one.
    pub fn fresh_until(&self, req: &Requirement) -> Option<Timestamp> {
        req.max_age_days
            .map(|d| self.observed_at.plus_seconds(i64::from(d) * DAY))
    }

    /// Why the artifact is stale at `as_of` under `req`'s maximum age, if it is.
    pub fn staleness(&self, req: &Requirement, as_of: Timestamp) -> Option<String> {
        let end = self.fresh_until(req)?;
        let days = req.max_age_days?;
        (as_of > end).then(|| {
            format!(
                "observed {}, more than {days} days before the as-of time: its {days}-day freshness window closed at {end}",
                self.observed_at
            )
        })
    }
}

/// A signed basis entry other than an artifact, with its signer.
#[derive(Debug)]
pub struct Signed<'a, T> {
    pub id: EntryId,
    pub index: u64,
    pub signer: &'a str,
    pub roles: &'a [Role],
    pub body: &'a T,
}

/// The basis at one as-of time.
#[derive(Debug)]
pub struct Basis<'a> {
    pub as_of: Timestamp,
    /// Artifacts in use, in basis (entry id) order.
    pub evidence: Vec<Evidence<'a>>,
    /// Supersessions that count: (superseding, superseded) indexes into `evidence`.
    supersessions: Vec<(usize, usize)>,
    pub acknowledgments: Vec<Signed<'a, Acknowledgment>>,
    pub annotations: Vec<Signed<'a, Annotation>>,
    pub narrowings: Vec<Signed<'a, NarrowingProposal>>,
    /// Trace lines of the loading step: what did not exist yet, promotions, exclusions,
    /// supersessions.
    pub trace: Vec<TraceLine>,
    /// Instants after the as-of time at which a basis entry comes into existence.
    pub appearances: BTreeSet<Timestamp>,
}

fn line(rule: &str, outcome: &str, detail: String) -> TraceLine {
    TraceLine {
        rule: rule.into(),
        outcome: outcome.into(),
        detail,
    }
}

const AS_OF: &str = "as of";
const PRECEDENCE: &str = "source precedence";

/// The formats the rules of `gate` read artifacts as, with what selects them.
fn readings(gate: &GateDefinition) -> Vec<(Requirement, Reading)> {
    let mut v = Vec::new();
    if let Some(r) = &gate.inventory {
        v.push((r.requirement(), Reading::Inventory));
    }
    if let Some(r) = &gate.exceptions {
        v.push((r.requirement(), Reading::Exceptions));
    }
    if let Some(r) = &gate.telemetry {
        v.push((r.canary_requirement(), Reading::Telemetry));
        if let Some(b) = r.baseline_requirement() {
            v.push((b, Reading::Telemetry));
        }
    }
    if let Some(r) = &gate.authority {
        v.push((r.requirement(), Reading::Authority));
    }
    v
}

fn parse(r: Reading, meta: &ArtifactMeta, bytes: &[u8]) -> Result<Parsed, String> {
    let name = &meta.file_name;
    match r {
        Reading::Inventory => inventory::parse_csv(name, bytes)
            .map(Parsed::Inventory)
            .map_err(|e| e.to_string()),
        Reading::Exceptions => ExceptionRegister::parse(name, bytes)
            .map(Parsed::Exceptions)
            .map_err(|e| e.to_string()),
        Reading::Telemetry => {
            let window = meta.labels.get("window").unwrap_or(name);
            // The label mapping a Prometheus response was ingested with is recorded in its entry.
            let mapping = crate::facts::telemetry_mapping(meta);
            telemetry::parse_mapped(name, bytes, window, meta.sealed, &mapping)
                .map(Parsed::Telemetry)
                .map_err(|e| e.to_string())
        }
        Reading::Authority => AuthoritySnapshot::parse(name, bytes)
            .map(Parsed::Authority)
            .map_err(|e| e.to_string()),
    }
}

fn workloads(list: &[String]) -> Vec<WorkloadRef> {
    list.iter().filter_map(|s| s.parse().ok()).collect()
}

fn signed<'a, T>(b: &'a BasisItem, body: &'a T) -> Signed<'a, T> {
    Signed {
        id: b.id,
        index: b.index,
        signer: &b.signer_name,
        roles: &b.signer_roles,
        body,
    }
}

/// What `b` is, for trace lines about entries that are not artifacts.
fn describe(b: &BasisItem) -> String {
    format!(
        "{} {} by '{}'",
        b.entry.body.payload.kind(),
        b.id.short(),
        b.signer_name
    )
}

impl<'a> Basis<'a> {
    /// Reads `input`'s basis as it stood at `as_of`, for the rules of `gate`.
    pub fn load(input: &'a EvalInput, gate: &GateDefinition, as_of: Timestamp) -> Basis<'a> {
        let wanted = readings(gate);
        let mut trace = Vec::new();
        let mut appearances = BTreeSet::new();
        let mut later = |trace: &mut Vec<TraceLine>, t: Timestamp, what: String| {
            appearances.insert(t);
            trace.push(line(AS_OF, "ignored", what));
        };

        // Rollback drills, each parsed once, on every core (a pure function of the bytes,
        // collected by id: nothing of the order of work reaches the result).
        let drills: BTreeMap<EntryId, Result<RollbackDrill, String>> = input
            .basis
            .par_iter()
            .filter_map(|b| match (&b.entry.body.payload, b.artifact.as_deref()) {
                (Payload::Artifact(m), Some(bytes)) if m.kind == DRILL_KIND => Some((
                    b.id,
                    RollbackDrill::parse(&m.file_name, bytes).map_err(|e| e.to_string()),
                )),
                _ => None,
            })
            .collect::<Vec<_>>()
            .into_iter()
            .collect();

        // 1. What existed at the as-of time.
        let mut present: Vec<&'a BasisItem> = Vec::new();
        for b in &input.basis {
            let signed = b.entry.body.claimed_at;
            match &b.entry.body.payload {
                Payload::Artifact(m) => {
                    let drill_at = drills
                        .get(&b.id)
                        .and_then(|d| d.as_ref().ok())
                        .map(|d| d.performed_at);
                    let first = [Some(m.captured_at), Some(signed), drill_at]
                        .into_iter()
                        .flatten()
                        .max()
                        .expect("basis: a time");
                    if first > as_of {
                        let what = if m.captured_at > as_of || signed <= as_of {
                            format!(
                                "{} ({}) captured after as-of: captured {}, signed {}{}",
                                m.file_name,
                                b.id.short(),
                                m.captured_at,
                                signed,
                                drill_at
                                    .map(|d| format!(", performed {d}"))
                                    .unwrap_or_default()
                            )
                        } else {
                            format!(
                                "{} ({}) signed after as-of: captured {}, signed {signed}",
                                m.file_name,
                                b.id.short(),
                                m.captured_at
                            )
                        };
                        later(&mut trace, first, what);
                        continue;
                    }
                }
                _ if signed > as_of => {
                    later(
                        &mut trace,
                        signed,
                        format!("{} signed after as-of: signed {signed}", describe(b)),
                    );
                    continue;
                }
                _ => {}
            }
            present.push(b);
        }

        // 2. Promotions by an owner raise an artifact's tier.
        let mut promoted: BTreeMap<EntryId, (Tier, EntryId)> = BTreeMap::new();
        for b in &present {
            if let Payload::Promotion(p) = &b.entry.body.payload {
                if b.signer_roles.contains(&Role::Owner) {
                    let e = promoted.entry(p.artifact).or_insert((p.to, b.id));
                    if p.to.rank() > e.0.rank() {
                        *e = (p.to, b.id);
                    }
                } else {
                    trace.push(line(
                        PRECEDENCE,
                        "ignored",
                        format!(
                            "promotion {} ignored: signer '{}' did not hold the owner role",
                            b.id.short(),
                            b.signer_name
                        ),
                    ));
                }
            }
        }

        // 3. Artifacts in use, each parsed once in every format a rule reads it as.
        let mut evidence = Vec::new();
        // Artifacts out of use (excluded, unsigned by an owner), by id, with why.
        let mut out_of_use: BTreeMap<EntryId, String> = BTreeMap::new();
        let mut acknowledgments = Vec::new();
        let mut annotations = Vec::new();
        let mut narrowings = Vec::new();
        for b in present {
            let m = match &b.entry.body.payload {
                Payload::Artifact(m) => m,
                Payload::Acknowledgment(a) => {
                    acknowledgments.push(signed(b, a));
                    continue;
                }
                Payload::Annotation(a) => {
                    annotations.push(signed(b, a));
                    continue;
                }
                Payload::Narrowing(n) => {
                    narrowings.push(signed(b, n));
                    continue;
                }
                _ => continue,
            };
            let Some(bytes) = b.artifact.as_deref() else {
                continue;
            };
            let name = format!("{} ({})", m.file_name, b.id.short());
            if !b.signer_roles.contains(&Role::Owner) {
                let why = format!("its signer '{}' did not hold the owner role", b.signer_name);
                trace.push(line(
                    PRECEDENCE,
                    "ignored",
                    format!("{name} ignored: {why}"),
                ));
                out_of_use.insert(b.id, why);
                continue;
            }
            let mut tier = m.tier;
            if let Some((to, by)) = promoted.get(&b.id)
                && to.rank() > tier.rank()
            {
                trace.push(line(
                    PRECEDENCE,
                    "info",
                    format!("{name} promoted from {tier} to {to} by {}", by.short()),
                ));
                tier = *to;
            }
            if tier == Tier::Excluded {
                trace.push(line(
                    PRECEDENCE,
                    "ignored",
                    format!("{name} is excluded-tier material and was not promoted"),
                ));
                out_of_use.insert(
                    b.id,
                    "it is excluded-tier material and was not promoted".into(),
                );
                continue;
            }
            let drill = (m.kind == DRILL_KIND).then(|| {
                drills
                    .get(&b.id)
                    .cloned()
                    .expect("every drill with bytes was parsed above")
            });
            let mut ev = Evidence {
                id: b.id,
                index: b.index,
                meta: m,
                signer: &b.signer_name,
                roles: &b.signer_roles,
                tier,
                observed_at: m.captured_at,
                path: m.labels.get("path").cloned(),
                workloads: workloads(&m.scope.workloads),
                namespaces: m.scope.namespaces.clone(),
                drill,
                readings: BTreeMap::new(),
            };
            if let Some(Ok(d)) = &ev.drill {
                ev.observed_at = d.performed_at;
                ev.path = Some(d.path.clone());
                ev.workloads.extend(d.workloads.iter().cloned());
                ev.namespaces.extend(d.namespaces.iter().cloned());
            }
            ev.workloads.sort();
            ev.workloads.dedup();
            ev.namespaces.sort();
            ev.namespaces.dedup();
            for (req, r) in &wanted {
                if ev.selected_by(req) && !ev.readings.contains_key(r) {
                    ev.readings.insert(*r, parse(*r, m, bytes));
                }
            }
            evidence.push(ev);
        }

        // 4. Supersession counts only between artifacts in use, of the same kind, and never
        //    by a lower tier; a rule further requires the superseding one to meet its
        //    requirements (`candidates`).
        let at: BTreeMap<EntryId, usize> = evidence
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id, i))
            .collect();
        let mut supersessions = Vec::new();
        let mut by_basis: Vec<(EntryId, &str, EntryId, Option<String>)> = Vec::new();
        for b in &input.basis {
            if let Payload::Artifact(m) = &b.entry.body.payload
                && let Some(old) = m.supersedes
            {
                by_basis.push((b.id, &m.file_name, old, out_of_use.get(&b.id).cloned()));
            }
        }
        for (new, file, old, unused) in by_basis {
            let name = format!("{file} ({})", new.short());
            let Some(&o) = at.get(&old) else {
                // The superseded artifact is not in use here (not in the basis, not yet
                // captured, excluded): nothing to replace.
                continue;
            };
            let why = if let Some(why) = unused {
                Some(why)
            } else if let Some(&n) = at.get(&new) {
                let (ne, oe) = (&evidence[n], &evidence[o]);
                if ne.meta.kind != oe.meta.kind {
                    Some(format!("it is a {}, not a {}", ne.meta.kind, oe.meta.kind))
                } else if ne.tier.rank() < oe.tier.rank() {
                    Some(format!(
                        "its tier {} is below the superseded artifact's {}",
                        ne.tier, oe.tier
                    ))
                } else {
                    supersessions.push((n, o));
                    None
                }
            } else {
                // Not in use for another reason already traced (captured after as-of).
                continue;
            };
            let old_name = evidence[o].name();
            match why {
                None => trace.push(line(
                    PRECEDENCE,
                    "info",
                    format!("{old_name} is superseded by {}", new.short()),
                )),
                Some(why) => trace.push(line(
                    PRECEDENCE,
                    "ignored",
                    format!("{name} does not supersede {old_name}: {why}"),
                )),
            }
        }
        Basis {
            as_of,
            evidence,
            supersessions,
            acknowledgments,
            annotations,
            narrowings,
            trace,
            appearances,
        }
    }

    /// The artifacts a rule reads under `req`, oldest first (captured_at, then log index):
    /// those selected by kind and labels that meet its tier, seal and signer role, less those
    /// superseded by one that also meets them. Returns trace lines for every artifact the
    /// rule ignores and every supersession it does not honour.
    pub fn candidates(&self, req: &Requirement) -> (Vec<&Evidence<'a>>, Vec<String>) {
        let mut notes = Vec::new();
        let mut ok: BTreeSet<usize> = BTreeSet::new();
        for (i, e) in self.evidence.iter().enumerate() {
            if !e.selected_by(req) {
                continue;
            }
            match e.shortfall(req) {
                Some(why) => notes.push(format!("{} ignored: {why}", e.name())),
                None => {
                    ok.insert(i);
                }
            }
        }
        let mut superseded = BTreeSet::new();
        for &(n, o) in &self.supersessions {
            if !ok.contains(&o) {
                continue;
            }
            if ok.contains(&n) {
                superseded.insert(o);
                continue;
            }
            let new = &self.evidence[n];
            let why = if new.selected_by(req) {
                new.shortfall(req).unwrap_or_default()
            } else {
                format!(
                    "it does not carry the labels {:?} this rule reads",
                    req.labels
                )
            };
            notes.push(format!(
                "supersession of {} by {} ignored: {why}",
                self.evidence[o].name(),
                new.name()
            ));
        }
        let mut out: Vec<&Evidence> = ok
            .iter()
            .filter(|i| !superseded.contains(*i))
            .map(|&i| &self.evidence[i])
            .collect();
        out.sort_by_key(|e| (e.meta.captured_at, e.index));
        (out, notes)
    }

    /// The one artifact a single-artifact rule reads under `req`: the highest tier, then the
    /// latest captured, then the latest in the log.
    pub fn one(&self, req: &Requirement) -> (Option<&Evidence<'a>>, Vec<String>) {
        let (c, notes) = self.candidates(req);
        let best = c
            .into_iter()
            .max_by_key(|e| (e.tier.rank(), e.meta.captured_at, e.index));
        (best, notes)
    }
}
