//! The gate-board page (`evl report`): one self-contained HTML file a gate chair reads before
//! the meeting — the verdict, the blockers by subject with their evidence and what would clear
//! each, the exact scope, the revision lineage, an evidence timeline with the deadlines, and
//! how to replay every disposition (docs/REPORT.md).
//!
//! The page is a pure function of the ledger's entries, its latest stored checkpoint and the
//! as-of time: no clock, no environment, no unordered iteration. Everything it shows comes from
//! [`crate::evaluate`], [`crate::lineage`] and [`crate::deadlines`]; this module only lays it
//! out. Every string from the ledger is untrusted: the template (templates/report.html) is
//! rendered by askama, which HTML-escapes every value unless told otherwise, and it is never
//! told otherwise. The page carries no script, fetches nothing, and forbids both by its
//! Content-Security-Policy.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;

use crate::checkpoint;
use crate::deadlines::{self, Deadline};
use crate::digest::{Digest, EntryId};
use crate::disposition::{Blocker, Disposition, Verdict};
use crate::entry::{Entry, Payload};
use crate::error::Error;
use crate::evaluate::{self, EvalError};
use crate::gate::GateDefinition;
use crate::lineage;
use crate::registry::Registry;
use crate::store::Ledger;
use crate::timestamp::Timestamp;

/// The `content` of the page's `<meta name="generator">`: how `evl report` recognises a page
/// it wrote (and may overwrite).
pub const GENERATOR: &str = "evl report (evl-report-page/1)";

/// Where the page's as-of time came from, said on the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsOfSource {
    /// Given with `--as-of`.
    Given,
    /// The as-of of the packet's latest recorded disposition (this entry).
    LatestDisposition(EntryId),
}

/// A packet whose entries or bytes are missing or do not match is a damaged ledger (exit 1);
/// anything else the engine refuses (not a packet, a gate that does not parse) is input (2).
fn eval_err(e: EvalError) -> Error {
    match e {
        EvalError::Ledger(m) => Error::Corrupt(m),
        e @ (EvalError::MissingEntry(_)
        | EvalError::MissingBasis { .. }
        | EvalError::MissingBlob { .. }
        | EvalError::BlobMismatch { .. }) => Error::Corrupt(e.to_string()),
        other => Error::Invalid(other.to_string()),
    }
}

/// The as-of of the latest disposition recorded for `packet`, in log order.
pub fn latest_recorded_as_of(
    ledger: &Ledger,
    packet: &EntryId,
) -> Result<Option<(EntryId, Timestamp)>, Error> {
    let mut last = None;
    for i in 0..ledger.size()? {
        let e = ledger.entry(i)?;
        if let Payload::Disposition(r) = &e.body.payload
            && r.packet == *packet
        {
            last = Some((e.id(), r.as_of));
        }
    }
    Ok(last)
}

/// One evidence entry as the page shows it.
pub struct EvidenceView {
    pub id: String,
    pub short: String,
    pub index: u64,
    /// `artifact: rollback-drill`, `annotation: concern`, `acknowledgment`, …
    pub kind: String,
    pub name: String,
    pub tier: String,
    pub captured_at: String,
    pub valid_until: String,
    pub signer: String,
    pub signed_at: String,
    /// What the entry says in words: an annotation's text, an acknowledgment's statement.
    pub text: String,
    pub in_basis: bool,
    /// Reviewer annotations anywhere in the ledger on this entry or its bytes.
    pub remarks: Vec<Remark>,
}

/// An annotation on an evidence entry.
pub struct Remark {
    pub id: String,
    pub short: String,
    pub kind: String,
    pub signer: String,
    pub signed_at: String,
    pub text: String,
    pub in_basis: bool,
}

pub struct BlockerView {
    pub code: String,
    pub reason: String,
    pub affects: String,
    pub scoped: bool,
    pub unblock: String,
    pub unblock_by: String,
    pub evidence: Vec<EvidenceView>,
}

/// One line of "what it would take": a blocker's action and its deadline.
pub struct ActionView {
    pub by: String,
    pub code: String,
    pub subject: String,
    pub text: String,
}

pub struct SubjectGroup {
    pub kind: String,
    pub name: String,
    pub blockers: Vec<BlockerView>,
}

pub struct WorkloadRow {
    pub namespace: String,
    pub workload: String,
    pub in_scope: bool,
    pub blocked_by: String,
}

pub struct NamespaceBar {
    pub name: String,
    pub n_in: usize,
    pub n_out: usize,
    pub y: i64,
    pub w_in: i64,
    pub w_out: i64,
    pub x_out: i64,
    pub whole_out: bool,
}

pub struct LineageNode {
    pub label: String,
    pub title: String,
    pub verdicts: String,
    pub current: bool,
    pub y: i64,
}

pub struct LineageEdge {
    pub y1: i64,
    pub y2: i64,
    pub label: String,
    pub detail: String,
    pub changed: bool,
}

pub struct DeltaView {
    pub revision: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub superseded: Vec<String>,
    pub change: String,
    pub blockers_added: Vec<String>,
    pub blockers_removed: Vec<String>,
}

pub struct TimelineRow {
    pub label: String,
    pub title: String,
    pub y: i64,
    pub x1: i64,
    pub x2: i64,
    pub open_end: bool,
    pub fresh_at_checkpoint: bool,
    pub captured_at: String,
    pub fresh_until: String,
    pub why: String,
}

pub struct Marker {
    pub x: i64,
    /// Baseline of the label: markers are stacked so near ones do not overlap.
    pub y: i64,
    pub label: String,
    pub class: String,
}

pub struct Tick {
    pub x: i64,
    pub label: String,
}

pub struct DeadlineView {
    pub at: String,
    pub change: String,
    pub before_checkpoint: bool,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

pub struct DispositionView {
    pub revision: String,
    pub id: String,
    pub short: String,
    pub verdict: String,
    pub as_of: String,
    pub engine: String,
    pub index: u64,
    pub replay: String,
    pub checkpoint: String,
    pub proof: String,
    pub is_shown: bool,
}

#[derive(Template)]
#[template(path = "report.html")]
pub struct Page {
    pub generator: &'static str,
    pub packet_name: String,
    pub revision: u32,
    pub packet_id: String,
    pub gate_id: String,
    pub gate_title: String,
    pub origin: String,
    pub ledger_size: u64,
    pub as_of: String,
    pub as_of_source: String,
    pub checkpoint_at: String,
    pub verdict: String,
    pub verdict_class: String,
    pub verdict_line: String,
    pub would_be: String,
    pub escalation: Vec<String>,
    pub recorded_as: String,
    pub basis_digest: String,
    pub engine: String,
    pub groups: Vec<SubjectGroup>,
    pub actions: Vec<ActionView>,
    pub blocker_count: usize,
    pub workloads: Vec<WorkloadRow>,
    pub n_in: usize,
    pub n_out: usize,
    pub out_share: String,
    pub in_namespaces: String,
    pub out_namespaces: String,
    pub ns_bars: Vec<NamespaceBar>,
    pub scope_height: i64,
    pub total_in_w: i64,
    pub total_out_w: i64,
    pub nodes: Vec<LineageNode>,
    pub edges: Vec<LineageEdge>,
    pub deltas: Vec<DeltaView>,
    pub lineage_height: i64,
    pub rows: Vec<TimelineRow>,
    pub markers: Vec<Marker>,
    pub ticks: Vec<Tick>,
    pub timeline_height: i64,
    pub timeline_top: i64,
    pub deadlines: Vec<DeadlineView>,
    pub dispositions: Vec<DispositionView>,
    pub checkpoint_note: String,
    pub proposals: Vec<String>,
}

/// Signer name of `e` as registered, or its key id.
fn signer_of(registry: &Registry, e: &Entry) -> String {
    registry
        .get(&e.body.signer)
        .map(|k| k.name.clone())
        .unwrap_or_else(|| format!("key {}", e.body.signer.0.short()))
}

/// Cuts `s` to `n` characters with an ellipsis (for SVG labels; the full text is beside it).
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// Everything read from the ledger once.
struct Log {
    entries: Vec<(u64, EntryId, Entry)>,
    by_id: BTreeMap<EntryId, usize>,
    registry: Registry,
}

impl Log {
    fn read(ledger: &Ledger) -> Result<Log, Error> {
        let size = ledger.size()?;
        let mut entries = Vec::with_capacity(size as usize);
        let mut by_id = BTreeMap::new();
        for i in 0..size {
            let e = ledger.entry(i)?;
            let id = e.id();
            by_id.insert(id, entries.len());
            entries.push((i, id, e));
        }
        Ok(Log {
            entries,
            by_id,
            registry: ledger.registry()?,
        })
    }

    fn get(&self, id: &EntryId) -> Option<&(u64, EntryId, Entry)> {
        self.by_id.get(id).map(|i| &self.entries[*i])
    }

    fn evidence(&self, id: &EntryId, basis: &BTreeSet<EntryId>) -> EvidenceView {
        let Some((index, _, e)) = self.get(id) else {
            return EvidenceView {
                id: id.to_hex(),
                short: id.short(),
                index: 0,
                kind: "missing from the ledger".into(),
                name: String::new(),
                tier: String::new(),
                captured_at: String::new(),
                valid_until: String::new(),
                signer: String::new(),
                signed_at: String::new(),
                text: String::new(),
                in_basis: basis.contains(id),
                remarks: vec![],
            };
        };
        let mut v = EvidenceView {
            id: id.to_hex(),
            short: id.short(),
            index: *index,
            kind: e.body.payload.kind().to_string(),
            name: String::new(),
            tier: "—".into(),
            captured_at: "—".into(),
            valid_until: "—".into(),
            signer: signer_of(&self.registry, e),
            signed_at: e.body.claimed_at.to_string(),
            text: String::new(),
            in_basis: basis.contains(id),
            remarks: vec![],
        };
        let mut subjects: Vec<Digest> = vec![*id];
        match &e.body.payload {
            Payload::Artifact(m) => {
                v.kind = format!("artifact: {}", m.kind);
                v.name = m.file_name.clone();
                v.tier = m.tier.name().to_string();
                v.captured_at = m.captured_at.to_string();
                v.valid_until = m
                    .valid_until
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "no expiry".into());
                if m.sealed {
                    v.tier.push_str(", sealed");
                }
                subjects.push(m.content);
            }
            Payload::Annotation(a) => {
                v.kind = format!("annotation: {}", a.kind.name());
                v.name = format!("on {}", a.subject.short());
                v.text = a.text.clone();
            }
            Payload::Acknowledgment(a) => {
                v.name = a.topic.clone();
                if let Some(ns) = &a.namespace {
                    v.name.push_str(&format!(" for namespace {ns}"));
                }
                v.text = a.statement.clone();
            }
            Payload::Promotion(p) => {
                v.name = format!("{} to {}", p.artifact.short(), p.to.name());
                v.text = p.reason.clone();
            }
            Payload::Narrowing(n) => {
                v.name = format!("keep {} workload(s)", n.keep.len());
                v.text = n.rationale.clone();
            }
            _ => {}
        }
        for (_, rid, re) in &self.entries {
            if let Payload::Annotation(a) = &re.body.payload
                && subjects.contains(&a.subject)
            {
                v.remarks.push(Remark {
                    id: rid.to_hex(),
                    short: rid.short(),
                    kind: a.kind.name().to_string(),
                    signer: signer_of(&self.registry, re),
                    signed_at: re.body.claimed_at.to_string(),
                    text: a.text.clone(),
                    in_basis: basis.contains(rid),
                });
            }
        }
        v
    }
}

/// Maps instants onto the timeline's x axis.
struct Axis {
    t0: i64,
    t1: i64,
    x0: i64,
    x1: i64,
}

impl Axis {
    fn x(&self, t: Timestamp) -> i64 {
        let t = t.seconds().clamp(self.t0, self.t1);
        self.x0
            + ((t - self.t0) as i128 * (self.x1 - self.x0) as i128 / (self.t1 - self.t0) as i128)
                as i64
    }
}

const DAY: i64 = 86_400;

/// Builds the page of `packet` as of `as_of`.
pub fn build(
    ledger: &Ledger,
    packet: &EntryId,
    as_of: Timestamp,
    source: AsOfSource,
) -> Result<Page, Error> {
    let log = Log::read(ledger)?;
    let input = evaluate::load_input(ledger, packet).map_err(eval_err)?;
    let d: Disposition = evaluate::evaluate(&input, as_of).map_err(eval_err)?;
    let revs = lineage::lineage(ledger, packet).map_err(eval_err)?;
    let flips: Vec<Deadline> = deadlines::deadlines(&input, as_of).map_err(eval_err)?;
    let gate = GateDefinition::parse(&input.gate_bytes).ok();
    let basis: BTreeSet<EntryId> = input.packet.basis.iter().copied().collect();
    let note = ledger.latest_checkpoint()?;
    let cp = note.as_deref().and_then(|n| checkpoint::body_of(n).ok());

    // The verdict in one line.
    let next = flips.first();
    let out_n = d.scope.out_of_scope_workloads.len();
    let all_n = out_n + d.scope.in_scope_workloads.len();
    let mut line = match d.verdict {
        Verdict::Proceed => format!("all {all_n} workloads may cut over; no blocker stands"),
        Verdict::Hold => format!(
            "{} blocker(s) stop the whole packet; nothing may cut over",
            d.blockers.len()
        ),
        Verdict::Narrow => format!(
            "only {} of {all_n} workloads may cut over; {} blocker(s) keep {out_n} ({} %) out",
            d.scope.in_scope_workloads.len(),
            d.blockers.len(),
            d.scope.out_of_scope_share_pct
        ),
        Verdict::Escalate => format!(
            "beyond the gate's delegated authority{}; the gate chair's superior decides",
            d.would_be
                .map(|w| format!(" (the blockers alone would give {w})"))
                .unwrap_or_default()
        ),
    };
    match next {
        Some(n) if n.at <= d.checkpoint_at => line.push_str(&format!(
            ". If nothing is done it becomes {} at {}, before the proposed checkpoint {}",
            n.verdict_after, n.at, d.checkpoint_at
        )),
        Some(n) => line.push_str(&format!(
            ". It stays {} until the proposed checkpoint {} (next change {} at {})",
            d.verdict, d.checkpoint_at, n.verdict_after, n.at
        )),
        None => line.push_str(&format!(
            ". No change is due before the proposed checkpoint {}",
            d.checkpoint_at
        )),
    }
    line.push('.');

    // What it would take, soonest deadline first.
    let mut actions: Vec<(Option<Timestamp>, String, String, String)> = d
        .blockers
        .iter()
        .map(|b| {
            (
                b.unblock.as_ref().and_then(|u| u.by),
                b.code.clone(),
                b.subject.to_string(),
                b.unblock
                    .as_ref()
                    .map(|u| u.text.clone())
                    .unwrap_or_else(|| "(not stated: an engine-1 disposition)".into()),
            )
        })
        .collect();
    actions.sort();
    let actions: Vec<ActionView> = actions
        .into_iter()
        .map(|(by, code, subject, text)| ActionView {
            by: by.map(|t| t.to_string()).unwrap_or_else(|| "—".into()),
            code,
            subject,
            text,
        })
        .collect();

    // Blockers grouped by subject.
    let mut groups: BTreeMap<(String, String), Vec<&Blocker>> = BTreeMap::new();
    for b in &d.blockers {
        let (k, n) = match &b.subject {
            crate::disposition::Subject::Workload(n) => ("workload", n.clone()),
            crate::disposition::Subject::Namespace(n) => ("namespace", n.clone()),
            crate::disposition::Subject::Path(n) => ("path", n.clone()),
            crate::disposition::Subject::Exception(n) => ("exception", n.clone()),
            crate::disposition::Subject::Rule(n) => ("rule", n.clone()),
            crate::disposition::Subject::Global => ("global", "the whole packet".to_string()),
        };
        groups.entry((k.to_string(), n)).or_default().push(b);
    }
    let groups: Vec<SubjectGroup> = groups
        .into_iter()
        .map(|((kind, name), bs)| SubjectGroup {
            kind,
            name,
            blockers: bs
                .into_iter()
                .map(|b| BlockerView {
                    code: b.code.clone(),
                    reason: b.reason.clone(),
                    affects: if b.affects.is_empty() {
                        "the whole packet".into()
                    } else {
                        b.affects.join(", ")
                    },
                    scoped: b.scoped,
                    unblock: b
                        .unblock
                        .as_ref()
                        .map(|u| u.text.clone())
                        .unwrap_or_else(|| "(not stated: an engine-1 disposition)".into()),
                    unblock_by: b
                        .unblock
                        .as_ref()
                        .and_then(|u| u.by)
                        .map(|t| t.to_string())
                        .unwrap_or_default(),
                    evidence: b
                        .evidence
                        .iter()
                        .map(|id| log.evidence(id, &basis))
                        .collect(),
                })
                .collect(),
        })
        .collect();

    // Scope: table and picture.
    let mut affected: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for b in &d.blockers {
        for w in &b.affects {
            affected
                .entry(w.as_str())
                .or_default()
                .insert(b.code.as_str());
        }
    }
    let in_set: BTreeSet<&String> = d.scope.in_scope_workloads.iter().collect();
    let mut all: Vec<&String> = d
        .scope
        .in_scope_workloads
        .iter()
        .chain(&d.scope.out_of_scope_workloads)
        .collect();
    all.sort();
    all.dedup();
    let workloads: Vec<WorkloadRow> = all
        .iter()
        .map(|w| {
            let (ns, wl) = w.split_once('/').unwrap_or(("", w.as_str()));
            WorkloadRow {
                namespace: ns.to_string(),
                workload: wl.to_string(),
                in_scope: in_set.contains(w),
                blocked_by: affected
                    .get(w.as_str())
                    .map(|c| c.iter().copied().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default(),
            }
        })
        .collect();
    let mut per_ns: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for w in &workloads {
        let e = per_ns.entry(w.namespace.clone()).or_default();
        if w.in_scope { e.0 += 1 } else { e.1 += 1 }
    }
    let max_n = per_ns
        .values()
        .map(|(a, b)| a + b)
        .max()
        .unwrap_or(1)
        .max(1) as i64;
    const BAR_X: i64 = 170;
    const BAR_W: i64 = 240;
    let ns_bars: Vec<NamespaceBar> = per_ns
        .iter()
        .enumerate()
        .map(|(i, (name, (a, b)))| {
            let unit = BAR_W / max_n;
            NamespaceBar {
                name: cut(name, 22),
                n_in: *a,
                n_out: *b,
                y: 70 + 34 * i as i64,
                w_in: unit * *a as i64,
                w_out: unit * *b as i64,
                x_out: BAR_X + unit * *a as i64,
                whole_out: *a == 0,
            }
        })
        .collect();
    let scope_height = 70 + 34 * ns_bars.len() as i64 + 10;
    let total = (d.scope.in_scope_workloads.len() + out_n).max(1) as i64;
    let total_in_w = BAR_W * d.scope.in_scope_workloads.len() as i64 / total;

    // Lineage graph.
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    let mut deltas = Vec::new();
    let mut dispositions = Vec::new();
    for (i, r) in revs.iter().enumerate() {
        let y = 20 + 110 * i as i64;
        let verdicts: Vec<String> = r
            .dispositions
            .iter()
            .map(|x| format!("{} as of {}", x.verdict, x.document.as_of))
            .collect();
        nodes.push(LineageNode {
            label: cut(&format!("rev {} · {}", r.revision, r.name), 60),
            title: format!("{} revision {} (packet {})", r.name, r.revision, r.packet),
            verdicts: if verdicts.is_empty() {
                "no disposition recorded".into()
            } else {
                cut(&verdicts.join("; "), 70)
            },
            current: r.packet == *packet,
            y,
        });
        if i > 0 {
            let change = match (&r.verdict_change, r.parent_rederived) {
                (Some(c), _) => format!("verdict {c}"),
                (None, Some(v)) => format!("verdict unchanged ({v})"),
                (None, None) => "no disposition to compare".into(),
            };
            edges.push(LineageEdge {
                y1: y - 110 + 56,
                y2: y,
                label: cut(
                    &format!(
                        "+{} −{} evidence, {} superseded · {change}",
                        r.added.len(),
                        r.removed.len(),
                        r.superseded.len()
                    ),
                    80,
                ),
                detail: {
                    let mut s = Vec::new();
                    for b in &r.blockers_added {
                        s.push(format!("+ {b}"));
                    }
                    for b in &r.blockers_removed {
                        s.push(format!("− {b}"));
                    }
                    cut(&s.join("; "), 90)
                },
                changed: r.verdict_change.is_some(),
            });
            let name_of = |id: &EntryId| {
                let ev = log.evidence(id, &basis);
                let mut s = format!("{} {} {}", ev.short, ev.kind, ev.name);
                if !ev.text.is_empty() {
                    s.push_str(&format!(" — “{}”", ev.text));
                }
                s
            };
            deltas.push(DeltaView {
                revision: format!("revision {} ({})", r.revision, r.name),
                added: r.added.iter().map(name_of).collect(),
                removed: r.removed.iter().map(name_of).collect(),
                superseded: r
                    .superseded
                    .iter()
                    .map(|(n, o)| format!("{} supersedes {}", n.short(), o.short()))
                    .collect(),
                change: match (&r.verdict_change, r.parent_rederived) {
                    (Some(c), _) => format!("this evidence delta changed the verdict: {c}"),
                    (None, Some(v)) => format!(
                        "this evidence delta did not change the verdict: the parent re-derived gives {v} too"
                    ),
                    (None, None) => "no recorded disposition of this revision to compare".into(),
                },
                blockers_added: r.blockers_added.clone(),
                blockers_removed: r.blockers_removed.clone(),
            });
        }
        for x in &r.dispositions {
            let index = log.get(&x.id).map(|e| e.0).unwrap_or(0);
            let (checkpoint, proof) = match &cp {
                Some((_, size, root)) if index < *size => (
                    format!(
                        "the latest stored checkpoint (tree size {size}, root {}) includes it at index {index}",
                        &hex::encode(root.0)[..16]
                    ),
                    format!("evl proof inclusion {} --size {size}", x.id.to_hex()),
                ),
                Some((_, size, _)) => (
                    format!(
                        "none yet: the latest stored checkpoint (tree size {size}) predates index {index}; run `evl checkpoint`"
                    ),
                    String::new(),
                ),
                None => (
                    "none yet: no checkpoint is stored; run `evl checkpoint`".into(),
                    String::new(),
                ),
            };
            dispositions.push(DispositionView {
                revision: format!("rev {}", r.revision),
                id: x.id.to_hex(),
                short: x.id.short(),
                verdict: x.verdict.to_string(),
                as_of: x.document.as_of.to_string(),
                engine: x.document.engine_version.clone(),
                index,
                replay: format!("evl replay {}", x.id.to_hex()),
                checkpoint,
                proof,
                is_shown: x.document == d,
            });
        }
    }
    let lineage_height = 20 + 110 * revs.len() as i64 - 40;
    let recorded_as = dispositions
        .iter()
        .rev()
        .find(|x| x.is_shown)
        .map(|x| x.id.clone())
        .unwrap_or_default();

    // Evidence timeline: every basis artifact's freshness window, the as-of, the proposed
    // checkpoint and the deadlines.
    let max_age = |kind: &str| -> Option<u32> {
        gate.as_ref().and_then(|g| {
            g.evidence
                .iter()
                .filter(|r| r.kind == kind)
                .filter_map(|r| r.max_age_days)
                .min()
        })
    };
    struct Win {
        id: EntryId,
        label: String,
        from: Timestamp,
        until: Option<Timestamp>,
        why: String,
    }
    let mut wins = Vec::new();
    for id in &input.packet.basis {
        if let Some((_, _, e)) = log.get(id)
            && let Payload::Artifact(m) = &e.body.payload
        {
            let by_age = max_age(&m.kind).map(|n| m.captured_at.plus_seconds(n as i64 * DAY));
            let (until, why) = match (m.valid_until, by_age) {
                (Some(v), Some(a)) if a < v => (Some(a), "the gate's max age".to_string()),
                (Some(v), _) => (Some(v), "its valid-until".to_string()),
                (None, Some(a)) => (Some(a), "the gate's max age".to_string()),
                (None, None) => (None, "no expiry".to_string()),
            };
            wins.push(Win {
                id: *id,
                label: format!("{} ({})", m.file_name, m.kind),
                from: m.captured_at,
                until,
                why,
            });
        }
    }
    wins.sort_by(|a, b| (a.from, a.id).cmp(&(b.from, b.id)));
    let mut t0 = wins
        .iter()
        .map(|w| w.from)
        .min()
        .unwrap_or(as_of)
        .min(as_of);
    let mut t1 = d.checkpoint_at.max(as_of);
    if let Some(last) = flips
        .iter()
        .map(|f| f.at)
        .filter(|t| *t <= d.checkpoint_at.plus_seconds(30 * DAY))
        .max()
    {
        t1 = t1.max(last);
    }
    t0 = Timestamp(t0.seconds() - t0.seconds().rem_euclid(DAY));
    t1 = Timestamp(t1.seconds() + DAY - t1.seconds().rem_euclid(DAY));
    let axis = Axis {
        t0: t0.seconds(),
        t1: t1.seconds().max(t0.seconds() + DAY),
        x0: 250,
        x1: 780,
    };
    let mut rows: Vec<TimelineRow> = wins
        .iter()
        .enumerate()
        .map(|(i, w)| TimelineRow {
            label: cut(&w.label, 34),
            title: format!("{} — entry {}", w.label, w.id),
            y: 22 * i as i64,
            x1: axis.x(w.from),
            x2: axis.x(w.until.unwrap_or(Timestamp(axis.t1))),
            open_end: w.until.is_none_or(|u| u.seconds() > axis.t1),
            fresh_at_checkpoint: w.until.is_none_or(|u| u >= d.checkpoint_at),
            captured_at: w.from.to_string(),
            fresh_until: w.until.map(|u| u.to_string()).unwrap_or_else(|| "—".into()),
            why: w.why.clone(),
        })
        .collect();
    let span_days = (axis.t1 - axis.t0) / DAY;
    let step = (span_days / 7).max(1);
    let ticks: Vec<Tick> = (0..=span_days)
        .step_by(step as usize)
        .map(|k| {
            let t = Timestamp(axis.t0 + k * DAY);
            Tick {
                x: axis.x(t),
                label: t.to_string()[5..10].to_string(),
            }
        })
        .collect();
    let mut markers = vec![
        Marker {
            y: 0,
            x: axis.x(as_of),
            label: format!("as of {}", &as_of.to_string()[5..10]),
            class: "asof".into(),
        },
        Marker {
            y: 0,
            x: axis.x(d.checkpoint_at),
            label: format!("checkpoint {}", &d.checkpoint_at.to_string()[5..10]),
            class: "cp".into(),
        },
    ];
    for f in &flips {
        if f.at.seconds() <= axis.t1 {
            markers.push(Marker {
                y: 0,
                x: axis.x(f.at),
                label: format!("→ {} {}", f.verdict_after, &f.at.to_string()[5..10]),
                class: "flip".into(),
            });
        }
    }
    // Stack labels: each goes on the first line where it is clear of the labels already
    // placed (about 100 user units apart); the bars start below the last line used.
    let mut placed: Vec<(i64, i64)> = Vec::new();
    for m in &mut markers {
        let line = (0..)
            .find(|l| {
                !placed
                    .iter()
                    .any(|(x, pl)| pl == l && (x - m.x).abs() < 100)
            })
            .unwrap_or(0);
        placed.push((m.x, line));
        m.y = 14 + 14 * line;
    }
    let lines = placed.iter().map(|(_, l)| l + 1).max().unwrap_or(1);
    let top = 14 + 14 * lines + 12;
    for r in &mut rows {
        r.y += top;
    }
    let timeline_height = top + 22 * rows.len() as i64 + 30;
    let deadlines: Vec<DeadlineView> = flips
        .iter()
        .map(|f| DeadlineView {
            at: f.at.to_string(),
            change: if f.verdict_before == f.verdict_after {
                format!("{} (blockers change)", f.verdict_after)
            } else {
                format!("{} → {}", f.verdict_before, f.verdict_after)
            },
            before_checkpoint: f.at <= d.checkpoint_at,
            added: f.blockers_added.clone(),
            removed: f.blockers_removed.clone(),
        })
        .collect();

    let checkpoint_note = match &cp {
        Some((origin, size, root)) => format!(
            "latest stored checkpoint: origin {origin}, tree size {size}, root {}",
            hex::encode(root.0)
        ),
        None => "no checkpoint is stored in this ledger".into(),
    };

    Ok(Page {
        generator: GENERATOR,
        packet_name: d.packet_name.clone(),
        revision: d.revision,
        packet_id: packet.to_hex(),
        gate_id: d.gate_id.clone(),
        gate_title: gate.as_ref().map(|g| g.title.clone()).unwrap_or_default(),
        origin: ledger.origin()?,
        ledger_size: log.entries.len() as u64,
        as_of: as_of.to_string(),
        as_of_source: match source {
            AsOfSource::Given => "given with --as-of".into(),
            AsOfSource::LatestDisposition(id) => format!(
                "the as-of of this revision's latest recorded disposition, {}",
                id.short()
            ),
        },
        checkpoint_at: d.checkpoint_at.to_string(),
        verdict: d.verdict.to_string(),
        verdict_class: d.verdict.name().to_string(),
        verdict_line: line,
        would_be: d.would_be.map(|w| w.to_string()).unwrap_or_default(),
        escalation: d.escalation.clone(),
        recorded_as,
        basis_digest: d.basis_digest.to_hex(),
        engine: d.engine_version.clone(),
        blocker_count: d.blockers.len(),
        groups,
        actions,
        n_in: d.scope.in_scope_workloads.len(),
        n_out: out_n,
        out_share: d.scope.out_of_scope_share_pct.clone(),
        in_namespaces: d.scope.in_scope_namespaces.join(", "),
        out_namespaces: d.scope.out_of_scope_namespaces.join(", "),
        workloads,
        ns_bars,
        scope_height,
        total_in_w,
        total_out_w: BAR_W - total_in_w,
        nodes,
        edges,
        deltas,
        lineage_height,
        rows,
        markers,
        ticks,
        timeline_height,
        timeline_top: top - 6,
        deadlines,
        dispositions,
        checkpoint_note,
        proposals: d
            .narrowing_proposals
            .iter()
            .map(|p| {
                format!(
                    "{} {} keeps {} workload(s){}",
                    p.proposal.short(),
                    p.status,
                    p.keep.len(),
                    if p.matches_derived_scope {
                        ", matching the derived scope"
                    } else {
                        ""
                    }
                )
            })
            .collect(),
    })
}

/// The page's HTML.
pub fn render(page: &Page) -> String {
    page.render().expect("report: the template renders")
}
