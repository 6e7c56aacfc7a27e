//! Verbs of the gate engine: packets, evaluate, replay, lineage, deadlines, watch, bundles,
//! and the gate chair's decision.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::remote::{Offline, Sink};
use super::{Global, Signing, append, open, read_file};
use crate::bundle;
use crate::deadlines;
use crate::digest::EntryId;
use crate::disposition::{Disposition, Verdict};
use crate::entry::{
    Decision, DispositionRecord, NarrowingProposal, PacketRevision, Payload, WorkloadRef,
};
use crate::error::{Error, exit};
use crate::evaluate::{self, EvalError};
use crate::facts;
use crate::gate_test;
use crate::ingest::Facts;
use crate::keys::SecretKey;
use crate::lineage;
use crate::replay;
use crate::store::{Appended, Ledger};
use crate::timestamp::Timestamp;

fn eval_err(e: EvalError) -> Error {
    match e {
        EvalError::Ledger(m) => Error::Corrupt(m),
        other => Error::Invalid(other.to_string()),
    }
}

/// Records disposition `d` (whose canonical bytes are `bytes`) as a signed entry.
fn record_disposition(
    ledger: &Ledger,
    key: &SecretKey,
    d: &Disposition,
    bytes: Vec<u8>,
    claimed_at: Timestamp,
) -> Result<Appended, Error> {
    let payload = Payload::Disposition(DispositionRecord {
        packet: d.packet,
        document: crate::digest::Digest::of(&bytes),
        verdict: d.verdict.name().to_string(),
        as_of: d.as_of,
        engine_version: d.engine_version.clone(),
    });
    append(ledger, key, payload, claimed_at, vec![bytes])
}

/// Resolves a packet revision entry.
fn packet(ledger: &Ledger, text: &str) -> Result<(EntryId, PacketRevision), Error> {
    let (_, e) = ledger.resolve_entry(text)?;
    let id = e.body.id();
    match e.body.payload {
        Payload::Packet(p) => Ok((id, p)),
        other => Err(Error::Invalid(format!(
            "{text} is a {} entry, not a packet revision",
            other.kind()
        ))),
    }
}

#[derive(Args, Debug)]
pub struct PacketCreateArgs {
    /// Packet name, e.g. Service-Mesh-mTLS-Enforcement-Gate-Packet.
    #[arg(long)]
    pub name: Option<String>,
    /// Revision number (default: the parent's plus one, or 1).
    #[arg(long)]
    pub revision: Option<u32>,
    /// Parent revision (entry id or prefix). Name, gate, checkpoint, scope and basis default to the parent's.
    #[arg(long, value_name = "PACKET")]
    pub parent: Option<String>,
    /// The gate-definition artifact (entry id or prefix).
    #[arg(long, value_name = "DIGEST")]
    pub gate: Option<String>,
    /// The proposed gate checkpoint (cutover) time.
    #[arg(long, value_name = "TIME")]
    pub checkpoint_at: Option<Timestamp>,
    /// An in-scope workload, NAMESPACE/WORKLOAD; repeat.
    #[arg(long = "workload", value_name = "NS/WL")]
    pub workloads: Vec<WorkloadRef>,
    /// Take every workload of this ingested workload-inventory artifact as in scope.
    #[arg(long, value_name = "DIGEST")]
    pub workloads_from: Option<String>,
    /// A basis entry (evidence, annotation, acknowledgment, promotion, narrowing); repeat.
    #[arg(long = "basis", value_name = "DIGEST")]
    pub basis: Vec<String>,
    /// Remove an entry inherited from the parent's basis; repeat.
    #[arg(long = "drop", value_name = "DIGEST")]
    pub drop: Vec<String>,
    #[command(flatten)]
    pub signing: Signing,
    #[command(flatten)]
    pub offline: Offline,
}

pub fn packet_create(g: &Global, a: PacketCreateArgs) -> Result<i32, Error> {
    let key = a.signing.load()?;
    if a.offline.offline {
        return packet_create_offline(g, a, &key);
    }
    let ledger = open(g)?;
    let parent = a.parent.as_deref().map(|p| packet(ledger, p)).transpose()?;
    let resolve = |t: &str| ledger.resolve_entry(t).map(|(_, e)| e.body.id());
    let name = a
        .name
        .clone()
        .or_else(|| parent.as_ref().map(|(_, p)| p.name.clone()));
    let Some(name) = name else {
        return Err(Error::Invalid(
            "--name is required for a packet without --parent".into(),
        ));
    };
    let gate = match (&a.gate, &parent) {
        (Some(gt), _) => resolve(gt)?,
        (None, Some((_, p))) => p.gate,
        (None, None) => {
            return Err(Error::Invalid(
                "--gate is required for a packet without --parent".into(),
            ));
        }
    };
    let checkpoint_at = match (a.checkpoint_at, &parent) {
        (Some(t), _) => t,
        (None, Some((_, p))) => p.checkpoint_at,
        (None, None) => {
            return Err(Error::Invalid(
                "--checkpoint-at is required for a packet without --parent".into(),
            ));
        }
    };
    let mut in_scope: BTreeSet<WorkloadRef> = a.workloads.iter().cloned().collect();
    if let Some(inv) = &a.workloads_from {
        let (_, e) = ledger.resolve_entry(inv)?;
        let Payload::Artifact(meta) = &e.body.payload else {
            return Err(Error::Invalid(format!(
                "--workloads-from {inv} is not an artifact"
            )));
        };
        let bytes = ledger
            .blob(&meta.content)?
            .ok_or_else(|| Error::Corrupt(format!("artifact {} is missing", meta.content)))?;
        match facts::reparse(meta, &bytes) {
            Some(Ok(Facts::Inventory(inv))) => {
                in_scope.extend(inv.workloads.iter().map(|w| WorkloadRef {
                    namespace: w.namespace.clone(),
                    workload: w.workload.clone(),
                }));
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "--workloads-from {inv} is not an ingested workload-inventory artifact"
                )));
            }
        }
    }
    if in_scope.is_empty()
        && let Some((_, p)) = &parent
    {
        in_scope.extend(p.in_scope.iter().cloned());
    }
    if in_scope.is_empty() {
        return Err(Error::Invalid("a packet needs in-scope workloads: --workload NS/WL, --workloads-from INVENTORY or --parent".into()));
    }
    let mut basis: BTreeSet<EntryId> = parent
        .as_ref()
        .map(|(_, p)| p.basis.iter().copied().collect())
        .unwrap_or_default();
    for b in &a.basis {
        basis.insert(resolve(b)?);
    }
    for d in &a.drop {
        let id = resolve(d)?;
        if !basis.remove(&id) {
            return Err(Error::Invalid(format!(
                "--drop {d}: {} is not in the basis",
                id.short()
            )));
        }
    }
    for id in &basis {
        let (_, e) = ledger.entry_by_id(id)?;
        basis_kind_allowed(id, e.body.payload.kind())?;
    }
    let revision = a
        .revision
        .unwrap_or_else(|| parent.as_ref().map(|(_, p)| p.revision + 1).unwrap_or(1));
    let payload = Payload::Packet(PacketRevision {
        name,
        revision,
        parent: parent.as_ref().map(|(id, _)| *id),
        gate,
        checkpoint_at,
        in_scope: in_scope.into_iter().collect(),
        basis: basis.into_iter().collect(),
    });
    let done = append(ledger, &key, payload, a.signing.time(), vec![])?;
    if a.signing.json {
        return super::print_appended("packet", &done);
    }
    println!(
        "packet {} at index {} (revision {revision})",
        done.id, done.index
    );
    Ok(exit::OK)
}

/// `packet create --offline`: everything given in full, nothing inherited or read from an
/// inventory (those need the ledger); the ledger checks what the ids name at submission.
fn packet_create_offline(g: &Global, a: PacketCreateArgs, key: &SecretKey) -> Result<i32, Error> {
    let needs_ledger = [
        (a.parent.is_some(), "--parent"),
        (a.workloads_from.is_some(), "--workloads-from"),
        (!a.drop.is_empty(), "--drop"),
    ];
    if let Some((_, opt)) = needs_ledger.iter().find(|(given, _)| *given) {
        return Err(Error::Invalid(format!(
            "{opt} reads the ledger, so it cannot be used with --offline; give --name, --gate, --checkpoint-at, --workload and --basis in full"
        )));
    }
    let sink = Sink::new(g, &a.offline)?;
    let (Some(name), Some(gate), Some(checkpoint_at)) = (a.name, a.gate, a.checkpoint_at) else {
        return Err(Error::Invalid(
            "an offline packet needs --name, --gate and --checkpoint-at".into(),
        ));
    };
    let gate = sink.entry_id("--gate", &gate)?;
    let in_scope: BTreeSet<WorkloadRef> = a.workloads.into_iter().collect();
    if in_scope.is_empty() {
        return Err(Error::Invalid(
            "a packet needs in-scope workloads: --workload NS/WL".into(),
        ));
    }
    let basis = a
        .basis
        .iter()
        .map(|b| sink.entry_id("--basis", b))
        .collect::<Result<BTreeSet<EntryId>, Error>>()?;
    let payload = Payload::Packet(PacketRevision {
        name,
        revision: a.revision.unwrap_or(1),
        parent: None,
        gate,
        checkpoint_at,
        in_scope: in_scope.into_iter().collect(),
        basis: basis.into_iter().collect(),
    });
    let draft = crate::store::Draft {
        payload,
        claimed_at: a.signing.time(),
        blobs: vec![],
    };
    sink.put(vec![draft], key)?;
    Ok(exit::OK)
}

#[derive(Args, Debug)]
pub struct NarrowArgs {
    /// The packet revision (entry id or prefix).
    pub packet: String,
    /// A workload to keep in scope, NAMESPACE/WORKLOAD; repeat.
    #[arg(long = "keep", value_name = "NS/WL", required = true)]
    pub keep: Vec<WorkloadRef>,
    /// Why.
    #[arg(long)]
    pub rationale: String,
    #[command(flatten)]
    pub signing: Signing,
    #[command(flatten)]
    pub offline: Offline,
}

pub fn narrow(g: &Global, a: NarrowArgs) -> Result<i32, Error> {
    let key = a.signing.load()?;
    let mut keep = a.keep.clone();
    keep.sort();
    keep.dedup();
    let sink = Sink::new(g, &a.offline)?;
    let Some(ledger) = sink.ledger() else {
        // The ledger checks the kept workloads against the packet when the file is submitted.
        let payload = Payload::Narrowing(NarrowingProposal {
            packet: sink.entry_id("packet", &a.packet)?,
            keep,
            rationale: a.rationale,
        });
        return signed_into_file(&sink, payload, &a.signing, &key);
    };
    let (id, p) = packet(ledger, &a.packet)?;
    if let Some(w) = keep.iter().find(|w| !p.in_scope.contains(w)) {
        return Err(Error::Invalid(format!(
            "--keep {w} is not an in-scope workload of packet {}",
            id.short()
        )));
    }
    let payload = Payload::Narrowing(NarrowingProposal {
        packet: id,
        keep,
        rationale: a.rationale,
    });
    let done = append(ledger, &key, payload, a.signing.time(), vec![])?;
    if a.signing.json {
        return super::print_appended("narrowing", &done);
    }
    println!("narrowing proposal {} at index {}", done.id, done.index);
    Ok(exit::OK)
}

/// Signs one entry into the offline sink's file.
fn signed_into_file(
    sink: &Sink,
    payload: Payload,
    signing: &Signing,
    key: &SecretKey,
) -> Result<i32, Error> {
    let draft = crate::store::Draft {
        payload,
        claimed_at: signing.time(),
        blobs: vec![],
    };
    sink.put(vec![draft], key)?;
    Ok(exit::OK)
}

/// A verdict `--fail-on` can fail on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Exit 10 when the verdict is HOLD.
    Hold,
    /// Exit 11 when the verdict is NARROW.
    Narrow,
    /// Exit 12 when the verdict is ESCALATE.
    Escalate,
}

impl FailOn {
    fn verdict(self) -> Verdict {
        match self {
            FailOn::Hold => Verdict::Hold,
            FailOn::Narrow => Verdict::Narrow,
            FailOn::Escalate => Verdict::Escalate,
        }
    }
}

/// The exit code `--fail-on` gives `v`.
fn verdict_exit(v: Verdict) -> i32 {
    match v {
        Verdict::Proceed => exit::OK,
        Verdict::Hold => exit::VERDICT_HOLD,
        Verdict::Narrow => exit::VERDICT_NARROW,
        Verdict::Escalate => exit::VERDICT_ESCALATE,
    }
}

/// What `evaluate` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The summary a gate chair reads: verdict, blockers and what clears each, exact scope.
    Text,
    /// The disposition document, canonical JSON; its `format` field is the schema version
    /// (evl-disposition/v2, docs/FORMAT.md §"Dispositions").
    Json,
    /// JUnit XML: a passing test case per rule check passed, a failing one per blocker.
    Junit,
    /// SARIF 2.1.0: one result per blocker (rule id = blocker code) and escalation reason.
    Sarif,
    /// GitHub Actions annotations: ::error / ::warning per blocker, ::notice with the verdict.
    Github,
}

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// The packet revision (entry id or prefix).
    pub packet: String,
    /// Evaluate as of this time (default: now). The result is a pure function of the basis,
    /// the gate definition, this time and the engine version. Evidence captured or signed
    /// after this time does not exist for the evaluation (the trace lists it).
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<Timestamp>,
    /// Exit with the verdict's own code when the derived verdict is one of these,
    /// comma-separated: hold (exit 10), narrow (11), escalate (12). PROCEED, and any verdict
    /// not listed, exits 0. The output is printed first, in full.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "VERDICTS")]
    pub fail_on: Vec<FailOn>,
    /// What to print: text, json, junit, sarif or github.
    #[arg(long, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    pub format: Format,
    /// Append the disposition as a signed entry (needs --key, owner role).
    #[arg(long, requires = "key")]
    pub record: bool,
    /// Secret key to record with.
    #[arg(long, env = "EVL_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The time the recording signer claims (default: now).
    #[arg(long, value_name = "TIME", requires = "record")]
    pub at: Option<Timestamp>,
    /// Also print the per-rule trace (text format).
    #[arg(long)]
    pub trace: bool,
    /// The same as --format json: the disposition document.
    #[arg(long)]
    pub json: bool,
}

/// What a gate chair reads: verdict, blockers, exact scope.
pub(crate) fn print_disposition(d: &Disposition, trace: bool) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(
        o,
        "{} revision {}  (packet {})",
        d.packet_name,
        d.revision,
        d.packet.short()
    );
    let _ = writeln!(
        o,
        "gate {}  as of {}  proposed checkpoint {}",
        d.gate_id, d.as_of, d.checkpoint_at
    );
    let _ = writeln!(o, "\nRECOMMENDATION: {}", d.verdict);
    if let Some(w) = d.would_be {
        let _ = writeln!(o, "  the blockers alone would give {w}; escalated because:");
        for r in &d.escalation {
            let _ = writeln!(o, "  - {r}");
        }
    }
    let _ = writeln!(o, "\nBlockers ({}):", d.blockers.len());
    for b in &d.blockers {
        let ev: Vec<String> = b.evidence.iter().map(|e| e.short()).collect();
        let _ = writeln!(
            o,
            "  {:<38} {:<44} {}{}",
            b.code,
            b.subject.to_string(),
            b.reason,
            if ev.is_empty() {
                String::new()
            } else {
                format!("  [evidence {}]", ev.join(", "))
            }
        );
        if let Some(u) = &b.unblock {
            let _ = writeln!(o, "      to unblock: {}", u.text);
        }
    }
    let s = &d.scope;
    let _ = writeln!(
        o,
        "\nIn scope: {} workload(s) in {}",
        s.in_scope_workloads.len(),
        s.in_scope_namespaces.join(", ")
    );
    for w in &s.in_scope_workloads {
        let _ = writeln!(o, "  {w}");
    }
    let _ = writeln!(
        o,
        "Out of scope: {} workload(s), {} % of the packet{}",
        s.out_of_scope_workloads.len(),
        s.out_of_scope_share_pct,
        if s.out_of_scope_namespaces.is_empty() {
            String::new()
        } else {
            format!(
                "; whole namespaces out: {}",
                s.out_of_scope_namespaces.join(", ")
            )
        }
    );
    for w in &s.out_of_scope_workloads {
        let _ = writeln!(o, "  {w}");
    }
    if !d.narrowing_proposals.is_empty() {
        let _ = writeln!(o, "\nNarrowing proposals:");
        for p in &d.narrowing_proposals {
            let _ = writeln!(
                o,
                "  {} {:<9} keeps {} workload(s){}",
                p.proposal.short(),
                p.status,
                p.keep.len(),
                if p.matches_derived_scope {
                    ", matches the derived scope"
                } else {
                    ""
                }
            );
        }
    }
    if trace {
        let _ = writeln!(o, "\nTrace:");
        for t in &d.trace {
            let _ = writeln!(o, "  {:<9} {:<40} {}", t.outcome, t.rule, t.detail);
        }
    }
    let _ = writeln!(
        o,
        "\nbasis {}  engine {}",
        d.basis_digest.short(),
        d.engine_version
    );
}

/// The disposition entry of `packet` whose document is `document`, if one is recorded.
fn recorded_as(
    ledger: &Ledger,
    packet: &EntryId,
    document: &crate::digest::Digest,
) -> Result<Option<EntryId>, Error> {
    // A document's bytes are stored only with the disposition that records them: without
    // them there is nothing to look for.
    if ledger.blob(document)?.is_none() {
        return Ok(None);
    }
    for i in (0..ledger.size()?).rev() {
        let e = ledger.entry(i)?;
        if let Payload::Disposition(r) = &e.body.payload
            && r.packet == *packet
            && r.document == *document
        {
            return Ok(Some(e.id()));
        }
    }
    Ok(None)
}

pub fn evaluate(g: &Global, a: EvaluateArgs) -> Result<i32, Error> {
    let key = a.key.as_deref().map(crate::keys::read_secret).transpose()?;
    let ledger = open(g)?;
    let (id, _) = packet(ledger, &a.packet)?;
    let as_of = a.as_of.unwrap_or_else(Timestamp::now);
    let input = evaluate::load_input(ledger, &id).map_err(eval_err)?;
    let d = evaluate::evaluate(&input, as_of).map_err(eval_err)?;
    let bytes = d.canonical_bytes();
    let recorded = match (a.record, key) {
        (true, Some(key)) => {
            let document = crate::digest::Digest::of(&bytes);
            if let Some(existing) = recorded_as(ledger, &id, &document)? {
                return Err(Error::Invalid(format!(
                    "disposition {existing} already records this derivation (packet {}, as of {}, engine {}); nothing appended",
                    id.short(),
                    d.as_of,
                    d.engine_version
                )));
            }
            let at = a.at.unwrap_or_else(Timestamp::now);
            Some(record_disposition(ledger, &key, &d, bytes.clone(), at)?)
        }
        _ => None,
    };
    let failed = a.fail_on.iter().any(|f| f.verdict() == d.verdict);
    let format = if a.json { Format::Json } else { a.format };
    let mut out = std::io::stdout().lock();
    let written = match format {
        Format::Text => {
            drop(out);
            print_disposition(&d, a.trace);
            Ok(())
        }
        Format::Json => out.write_all(&bytes),
        Format::Junit => out.write_all(super::report::junit(&d, failed).as_bytes()),
        Format::Sarif => {
            let s = serde_json::to_string_pretty(&super::report::sarif(&d))
                .expect("report: SARIF encodes");
            writeln!(out, "{s}")
        }
        Format::Github => out.write_all(super::report::github(&d).as_bytes()),
    };
    written.map_err(Error::io("stdout"))?;
    if let Some(r) = recorded {
        // In text the id is the last line of stdout, for scripts; the machine formats are
        // documents whose bytes are promised, so there it goes to stderr.
        if format == Format::Text {
            println!("recorded disposition {} at index {}", r.id, r.index);
        } else {
            eprintln!("recorded disposition {} at index {}", r.id, r.index);
        }
    }
    Ok(if failed {
        verdict_exit(d.verdict)
    } else {
        exit::OK
    })
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The recorded disposition (entry id or prefix).
    pub disposition: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn replay(g: &Global, a: ReplayArgs) -> Result<i32, Error> {
    let ledger = open(g)?;
    let (_, e) = ledger.resolve_entry(&a.disposition)?;
    let r = replay::replay(ledger, &e.body.id()).map_err(|e| Error::Invalid(e.to_string()))?;
    if a.json {
        super::print_json_as(
            "evl.replay/v1",
            &json!({"disposition": r.disposition.to_hex(), "packet": r.packet.to_hex(), "matches": r.matches, "engine": r.engine,
                "engine_version": r.engine_version.as_ref().map(|m| json!({"recorded": m.recorded, "current": m.current})),
                "missing": r.missing, "differences": r.differences,
            }),
        )?;
    } else if r.matches {
        println!(
            "replayed: disposition {} re-derives byte for byte from its basis (engine {})",
            r.disposition, r.engine
        );
    } else {
        if let Some(m) = &r.engine_version {
            eprintln!(
                "engine version unknown: recorded {}, this evl derives with {}",
                m.recorded, m.current
            );
        }
        for m in &r.missing {
            eprintln!("missing from the ledger: {m}");
        }
        for d in &r.differences {
            eprintln!("differs: {d}");
        }
        eprintln!(
            "evl: replay of {} does not match the recorded disposition",
            r.disposition.short()
        );
    }
    Ok(if r.matches { exit::OK } else { exit::INVALID })
}

#[derive(Args, Debug)]
pub struct PacketArg {
    /// The packet revision (entry id or prefix).
    pub packet: String,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn lineage(g: &Global, a: PacketArg) -> Result<i32, Error> {
    let ledger = open(g)?;
    let (id, _) = packet(ledger, &a.packet)?;
    let revs = lineage::lineage(ledger, &id).map_err(eval_err)?;
    let hexes = |v: &[EntryId]| v.iter().map(|i| i.to_hex()).collect::<Vec<_>>();
    if a.json {
        let v: Vec<_> = revs
            .iter()
            .map(|r| {
                json!({
                    "packet": r.packet.to_hex(), "name": r.name, "revision": r.revision, "parent": r.parent.map(|p| p.to_hex()),
                    "dispositions": r.dispositions.iter().map(|d| json!({"id": d.id.to_hex(), "verdict": d.verdict.name(), "as_of": d.document.as_of, "blockers": d.blockers})).collect::<Vec<_>>(),
                    "added": hexes(&r.added), "removed": hexes(&r.removed),
                    "superseded": r.superseded.iter().map(|(n, o)| json!({"new": n.to_hex(), "old": o.to_hex()})).collect::<Vec<_>>(),
                    "new_annotations": hexes(&r.new_annotations), "new_acknowledgments": hexes(&r.new_acknowledgments),
                    "parent_verdict": r.parent_verdict.map(Verdict::name), "parent_rederived": r.parent_rederived.map(Verdict::name),
                    "verdict_change": r.verdict_change, "blockers_added": r.blockers_added, "blockers_removed": r.blockers_removed,
                    "proposals": r.proposals.iter().map(|p| json!({"id": p.id.to_hex(), "keep": p.keep, "rationale": p.rationale, "status": p.status})).collect::<Vec<_>>(),
                })
            })
            .collect();
        return super::print_json_as("evl.lineage/v1", &json!({"revisions": v}));
    }
    let short = |v: &[EntryId]| v.iter().map(|i| i.short()).collect::<Vec<_>>().join(", ");
    for r in &revs {
        println!(
            "{} revision {}  (packet {})",
            r.name,
            r.revision,
            r.packet.short()
        );
        for d in &r.dispositions {
            println!(
                "  disposition {}  {} as of {}  ({} blocker(s))",
                d.id.short(),
                d.verdict.name().to_uppercase(),
                d.document.as_of,
                d.blockers.len()
            );
        }
        if r.parent.is_some() {
            println!(
                "  evidence delta: +{} -{} superseded {}",
                r.added.len(),
                r.removed.len(),
                r.superseded.len()
            );
            if !r.added.is_empty() {
                println!("    added       {}", short(&r.added));
            }
            if !r.removed.is_empty() {
                println!("    removed     {}", short(&r.removed));
            }
            for (n, o) in &r.superseded {
                println!("    superseded  {} by {}", o.short(), n.short());
            }
            if !r.new_annotations.is_empty() {
                println!("    annotations {}", short(&r.new_annotations));
            }
            if !r.new_acknowledgments.is_empty() {
                println!("    acks        {}", short(&r.new_acknowledgments));
            }
            let first = r.dispositions.first();
            match (r.parent_verdict, first.map(|d| d.verdict)) {
                (_, None) => println!("  no disposition recorded for this revision"),
                (Some(p), Some(c)) if p == c => {
                    println!(
                        "  recorded verdict unchanged: {c} (the parent's last recorded was {p})"
                    )
                }
                (Some(p), Some(c)) => println!(
                    "  recorded verdict {p} → {c} (the parent's last recorded against this revision's first)"
                ),
                (None, Some(c)) => {
                    println!("  recorded verdict {c} (the parent has no recorded disposition)")
                }
            }
            if let Some(first) = first {
                match (&r.verdict_change, r.parent_rederived) {
                    (Some(c), _) => println!(
                        "  this evidence delta changed the verdict: {c} (the parent re-derived as of {})",
                        first.document.as_of
                    ),
                    (None, Some(v)) => println!(
                        "  this evidence delta did not change the verdict: the parent re-derived as of {} gives {v} too{}",
                        first.document.as_of,
                        match r.parent_verdict {
                            Some(p) if p != v => format!("; time passing changed it from {p}"),
                            _ => String::new(),
                        }
                    ),
                    (None, None) => {}
                }
            }
            for b in &r.blockers_added {
                println!("    + blocker {b}");
            }
            for b in &r.blockers_removed {
                println!("    - blocker {b}");
            }
        }
        for p in &r.proposals {
            println!(
                "  narrowing proposal {} {} (keep {} workload(s)): {}",
                p.id.short(),
                p.status,
                p.keep.len(),
                p.rationale
            );
        }
    }
    Ok(exit::OK)
}

#[derive(Args, Debug)]
pub struct DeadlinesArgs {
    /// The packet revision (entry id or prefix).
    pub packet: String,
    /// Look for changes after this time (default: now).
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<Timestamp>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn deadlines(g: &Global, a: DeadlinesArgs) -> Result<i32, Error> {
    let ledger = open(g)?;
    let (id, _) = packet(ledger, &a.packet)?;
    let as_of = a.as_of.unwrap_or_else(Timestamp::now);
    let input = evaluate::load_input(ledger, &id).map_err(eval_err)?;
    let list = deadlines::deadlines(&input, as_of).map_err(eval_err)?;
    if a.json {
        let v: Vec<_> = list
            .iter()
            .map(|d| json!({"at": d.at, "verdict_before": d.verdict_before.name(), "verdict_after": d.verdict_after.name(), "blockers_added": d.blockers_added, "blockers_removed": d.blockers_removed}))
            .collect();
        return super::print_json_as("evl.deadlines/v1", &json!({"as_of": as_of, "deadlines": v}));
    }
    if list.is_empty() {
        println!("no change of the derived result after {as_of}");
    }
    for d in &list {
        println!("{}  {} -> {}", d.at, d.verdict_before, d.verdict_after);
        for b in &d.blockers_added {
            println!("    + {b}");
        }
        for b in &d.blockers_removed {
            println!("    - {b}");
        }
    }
    Ok(exit::OK)
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The packet revision to watch; newer revisions descending from it are followed.
    pub packet: String,
    /// Secret key to record changed dispositions with (owner role).
    #[arg(long, env = "EVL_KEY", value_name = "FILE")]
    pub key: PathBuf,
    /// Longest wait, in seconds, between looks at the ledger and the clock; a change to the
    /// ledger (a file-system notification) ends a wait at once.
    #[arg(long, default_value_t = 30)]
    pub interval: u64,
    /// Stop after this many looks (default: run until interrupted).
    #[arg(long)]
    pub iterations: Option<u64>,
    /// Print NDJSON: one object per evaluating look ("schema": "evl.watch/v1").
    #[arg(long)]
    pub json: bool,
}

/// What `watch` knows of the log so far: it reads only entries appended since the last look.
struct Followed {
    /// The revision watched and its descendants found so far.
    family: BTreeSet<EntryId>,
    /// The newest revision descending from the watched one.
    head: EntryId,
    /// The document of the latest disposition recorded for `head`.
    last_document: Option<crate::digest::Digest>,
    /// Entries before this index have been read.
    read_to: u64,
}

impl Followed {
    fn new(ledger: &Ledger, root: EntryId) -> Result<Followed, Error> {
        Ok(Followed {
            family: BTreeSet::from([root]),
            head: root,
            last_document: None,
            read_to: ledger.index_of(&root)?.unwrap_or(0),
        })
    }

    /// Reads the entries appended since the last call, in log order: newer revisions
    /// descending from the watched one, and dispositions recorded for the newest.
    fn catch_up(&mut self, ledger: &Ledger, size: u64) -> Result<(), Error> {
        for i in self.read_to..size {
            let e = ledger.entry(i)?;
            match &e.body.payload {
                Payload::Packet(p) if p.parent.is_some_and(|par| self.family.contains(&par)) => {
                    let id = e.body.id();
                    self.family.insert(id);
                    self.head = id;
                    self.last_document = None;
                }
                Payload::Disposition(r) if r.packet == self.head => {
                    self.last_document = Some(r.document);
                }
                _ => {}
            }
        }
        self.read_to = self.read_to.max(size);
        Ok(())
    }

    /// The verdict and blocker keys of the latest disposition recorded for the head.
    fn last_recorded(&self, ledger: &Ledger) -> Result<Option<(String, Vec<String>)>, Error> {
        let Some(doc) = self.last_document else {
            return Ok(None);
        };
        let bytes = ledger
            .blob(&doc)?
            .ok_or_else(|| Error::Corrupt(format!("disposition document {doc} is missing")))?;
        let d = Disposition::from_bytes(&bytes).map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(Some((d.verdict.name().to_string(), d.blocker_keys())))
    }
}

/// Where `watch` reads the time and how it waits between looks. `evl watch` runs on
/// [`SystemClock`]; a test passes a simulated clock, so the look where a deadline passes with
/// nothing appended is tested without waiting for the calendar (tests/cli_gate.rs).
pub trait Clock {
    /// The time of this look; it feeds the evaluation (`as_of`) and the recorded entry's
    /// claimed time.
    fn now(&mut self) -> Timestamp;
    /// Waits `d` before the next look.
    fn sleep(&mut self, d: Duration);
    /// Waits at most `d`, ending early when `changes` reports the ledger changed. The default
    /// ignores the notifications and sleeps `d`.
    fn wait(&mut self, d: Duration, changes: &LedgerChanges) {
        let _ = changes;
        self.sleep(d)
    }
}

/// The machine's clock and `std::thread::sleep`; waits end when the ledger changes.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&mut self) -> Timestamp {
        Timestamp::now()
    }
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d)
    }
    fn wait(&mut self, d: Duration, changes: &LedgerChanges) {
        changes.wait(d)
    }
}

/// File-system notifications (inotify on Linux, through the `notify` crate) for the ledger
/// directory and its index: an append writes both, so a wait ends when one lands.
pub struct LedgerChanges {
    rx: Option<std::sync::mpsc::Receiver<()>>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl LedgerChanges {
    /// Watches `dir`; with no notification support, waits are plain sleeps.
    pub fn new(dir: &std::path::Path) -> LedgerChanges {
        use notify::Watcher as _;
        let (tx, rx) = std::sync::mpsc::channel();
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if let Ok(ev) = ev
                && !ev.kind.is_access()
            {
                let _ = tx.send(());
            }
        });
        match watcher {
            Ok(mut w) => match w.watch(dir, notify::RecursiveMode::Recursive) {
                Ok(()) => LedgerChanges {
                    rx: Some(rx),
                    _watcher: Some(w),
                },
                Err(_) => LedgerChanges::polling(),
            },
            Err(_) => LedgerChanges::polling(),
        }
    }

    /// No notifications: waits are plain sleeps.
    fn polling() -> LedgerChanges {
        LedgerChanges {
            rx: None,
            _watcher: None,
        }
    }

    /// Waits at most `d` for a change. After the first notification it waits until the
    /// writes have been quiet for a moment, so the look sees the whole append.
    pub fn wait(&self, d: Duration) {
        let Some(rx) = &self.rx else {
            std::thread::sleep(d);
            return;
        };
        if rx.recv_timeout(d).is_ok() {
            while rx.recv_timeout(Duration::from_millis(100)).is_ok() {}
        }
    }
}

pub fn watch(g: &Global, a: WatchArgs) -> Result<i32, Error> {
    watch_with(g, a, &mut SystemClock, &mut std::io::stdout().lock())
}

/// `evl watch` on the given clock, printing to `out`. Each look re-evaluates the newest
/// revision when the ledger grew, a deadline found by the previous look has passed, or it is
/// the first look, and records a disposition only when the verdict or blockers changed.
/// Between looks it waits for the ledger to change (file-system notifications), for the
/// next deadline, or at most --interval seconds; a look reads only the entries appended since
/// the previous one.
pub fn watch_with(
    g: &Global,
    a: WatchArgs,
    clock: &mut dyn Clock,
    out: &mut dyn Write,
) -> Result<i32, Error> {
    let say = |out: &mut dyn Write, line: String| {
        writeln!(out, "{line}").map_err(Error::io("standard output"))
    };
    let key = crate::keys::read_secret(&a.key)?;
    let changes = LedgerChanges::new(&g.ledger);
    let mut look = 0u64;
    let mut next_deadline: Option<Timestamp> = None;
    let mut seen_size = 0u64;
    let mut followed: Option<Followed> = None;
    loop {
        look += 1;
        let now = clock.now();
        // Open per look, so the watcher never holds the ledger between looks.
        let ledger = super::open_owned(g)?;
        let size = ledger.size()?;
        let due = next_deadline.is_some_and(|t| t <= now);
        if size != seen_size || due || look == 1 {
            let f = match &mut followed {
                Some(f) => f,
                None => followed.insert(Followed::new(&ledger, packet(&ledger, &a.packet)?.0)?),
            };
            f.catch_up(&ledger, size)?;
            let head = f.head;
            let input = evaluate::load_input(&ledger, &head).map_err(eval_err)?;
            let d = evaluate::evaluate(&input, now).map_err(eval_err)?;
            let current = (d.verdict.name().to_string(), d.blocker_keys());
            let changed = f.last_recorded(&ledger)?.as_ref() != Some(&current);
            let recorded = if changed {
                Some(record_disposition(
                    &ledger,
                    &key,
                    &d,
                    d.canonical_bytes(),
                    now,
                )?)
            } else {
                None
            };
            next_deadline = deadlines::deadlines(&input, now)
                .map_err(eval_err)?
                .first()
                .map(|d| d.at);
            if a.json {
                say(
                    out,
                    serde_json::to_string(&super::Versioned {
                        schema: "evl.watch/v1",
                        body: &json!({
                            "at": now, "packet": d.packet.to_hex(),
                            "packet_name": d.packet_name, "revision": d.revision,
                            "verdict": d.verdict.name(), "blockers": d.blocker_keys(),
                            "recorded": recorded.as_ref().map(|r| r.id.to_hex()),
                            "recorded_index": recorded.as_ref().map(|r| r.index),
                            "next_change": next_deadline,
                        }),
                    })
                    .expect("a watch line encodes"),
                )?;
            } else if let Some(r) = recorded {
                say(
                    out,
                    format!(
                        "{now}  {} revision {}: {} ({} blocker(s)), recorded {}",
                        d.packet_name,
                        d.revision,
                        d.verdict,
                        d.blockers.len(),
                        r.id
                    ),
                )?;
            } else {
                say(
                    out,
                    format!(
                        "{now}  {} revision {}: {} unchanged",
                        d.packet_name, d.revision, d.verdict
                    ),
                )?;
            }
            if let Some(t) = next_deadline
                && !a.json
            {
                say(out, format!("    next change expected at {t}"))?;
            }
            seen_size = ledger.size()?;
        }
        drop(ledger);
        if a.iterations.is_some_and(|n| look >= n) {
            return Ok(exit::OK);
        }
        out.flush().map_err(Error::io("standard output"))?;
        clock.wait(Duration::from_secs(a.interval), &changes);
    }
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The packet revision (entry id or prefix).
    pub packet: String,
    /// The bundle file to write.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,
    /// Sign a fresh checkpoint with this admin key for the bundle (default: use the latest stored checkpoint).
    #[arg(long, value_name = "FILE")]
    pub checkpoint_key: Option<PathBuf>,
    /// Print the result as JSON ("schema": "evl.export/v1").
    #[arg(long)]
    pub json: bool,
}

pub fn export(g: &Global, a: ExportArgs) -> Result<i32, Error> {
    let admin = a
        .checkpoint_key
        .as_deref()
        .map(crate::keys::read_secret)
        .transpose()?;
    let ledger = open(g)?;
    let (id, _) = packet(ledger, &a.packet)?;
    let note = match admin {
        Some(k) => {
            let size = ledger.size()?;
            let note =
                crate::checkpoint::try_sign(&ledger.origin()?, size, ledger.root(size)?, &k)?;
            ledger.store_checkpoint(&note)?;
            note
        }
        None => ledger.latest_checkpoint()?.ok_or_else(|| {
            Error::Invalid(
                "the ledger has no checkpoint yet; run `evl checkpoint` or pass --checkpoint-key"
                    .into(),
            )
        })?,
    };
    let bytes = bundle::export(ledger, &id, &note).map_err(|e| Error::Invalid(e.to_string()))?;
    std::fs::write(&a.output, &bytes).map_err(Error::io(&a.output))?;
    if a.json {
        return super::print_json_as(
            "evl.export/v1",
            &json!({"bundle": a.output.display().to_string(),
                "bytes": bytes.len(), "packet": id.to_hex(),
            }),
        );
    }
    println!(
        "wrote bundle {} ({} bytes) for packet {}",
        a.output.display(),
        bytes.len(),
        id.short()
    );
    Ok(exit::OK)
}

#[derive(Args, Debug)]
pub struct DecideArgs {
    /// The packet revision decided on.
    pub packet: String,
    /// The disposition the decision was read from (entry id or prefix).
    #[arg(long, value_name = "DIGEST")]
    pub disposition: Option<String>,
    /// The decision, in the chair's words (e.g. approve-narrowed, hold, reject).
    #[arg(long)]
    pub decision: String,
    /// Reasoning.
    #[arg(long, default_value = "")]
    pub text: String,
    #[command(flatten)]
    pub signing: Signing,
    #[command(flatten)]
    pub offline: Offline,
}

pub fn decide(g: &Global, a: DecideArgs) -> Result<i32, Error> {
    let key = a.signing.load()?;
    let sink = Sink::new(g, &a.offline)?;
    let Some(ledger) = sink.ledger() else {
        // The ledger checks that the packet and disposition are what they say at submission.
        let payload = Payload::Decision(Decision {
            packet: sink.entry_id("packet", &a.packet)?,
            disposition: a
                .disposition
                .as_deref()
                .map(|d| sink.entry_id("--disposition", d))
                .transpose()?,
            decision: a.decision,
            text: a.text,
        });
        return signed_into_file(&sink, payload, &a.signing, &key);
    };
    let (id, _) = packet(ledger, &a.packet)?;
    let disposition = match &a.disposition {
        None => None,
        Some(d) => {
            let (_, e) = ledger.resolve_entry(d)?;
            match &e.body.payload {
                Payload::Disposition(r) if r.packet == id => Some(e.body.id()),
                _ => {
                    return Err(Error::Invalid(format!(
                        "--disposition {d} is not a disposition of packet {}",
                        id.short()
                    )));
                }
            }
        }
    };
    let payload = Payload::Decision(Decision {
        packet: id,
        disposition,
        decision: a.decision,
        text: a.text,
    });
    let done = append(ledger, &key, payload, a.signing.time(), vec![])?;
    if a.signing.json {
        return super::print_appended("decision", &done);
    }
    println!("decision {} at index {}", done.id, done.index);
    Ok(exit::OK)
}

#[derive(Subcommand, Debug)]
pub enum GateCommand {
    /// Check gate definitions without a ledger: strict parse, then what each reads and raises.
    ///
    /// Exit 0 when every file is a valid gate definition; 2 naming the file and the field
    /// otherwise. Nothing is appended anywhere.
    #[command(after_help = "EXAMPLE:\n    evl gate check examples/mtls-cutover/gate.toml")]
    Check(GateCheckArgs),
    /// Run a directory of gate test cases in memory, without a ledger (like `opa test`).
    ///
    /// Every *.toml file of DIR is a case (format evl-gate-test/v1, docs/GATES.md §"Testing a
    /// gate"): a gate definition, evidence files with their metadata, acknowledgments,
    /// annotations, an as-of time, and the expected verdict, blockers and scope. Each case is
    /// evaluated with the current engine; a failing case names its first difference.
    /// Exit 0 when every case passes, 1 when one fails, 2 when a case cannot be read.
    #[command(after_help = "EXAMPLE:\n    evl gate test examples/mtls-cutover/gate-tests")]
    Test(GateTestArgs),
}

#[derive(Args, Debug)]
pub struct GateCheckArgs {
    /// Gate definition files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print one result per file as JSON ("schema": "evl.gate-check/v1").
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct GateTestArgs {
    /// The directory of case files.
    pub dir: PathBuf,
    /// Print each case's result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also print each case's blockers, escalation reasons and trace lines (in the form
    /// `expect.trace` matches: `OUTCOME RULE: DETAIL`).
    #[arg(short, long)]
    pub verbose: bool,
}

pub fn gate(c: GateCommand) -> Result<i32, Error> {
    match c {
        GateCommand::Check(a) => gate_check(a),
        GateCommand::Test(a) => gate_test(a),
    }
}

fn gate_check(a: GateCheckArgs) -> Result<i32, Error> {
    let mut code = exit::OK;
    let mut results = Vec::new();
    for f in &a.files {
        let bytes = read_file(f, crate::gate::MAX_GATE_BYTES)?;
        match crate::gate::GateDefinition::parse(&bytes) {
            Ok(g) => {
                let codes: Vec<String> = g.codes().into_iter().collect();
                let mut reads = Vec::new();
                for r in &g.evidence {
                    reads.push(format!("{} ({})", r.name, r.kind));
                }
                for (t, k) in [
                    (
                        "inventory",
                        g.inventory.as_ref().map(|r| r.select.kind.clone()),
                    ),
                    (
                        "exceptions",
                        g.exceptions.as_ref().map(|r| r.select.kind.clone()),
                    ),
                    (
                        "telemetry",
                        g.telemetry.as_ref().map(|r| r.canary.kind.clone()),
                    ),
                    (
                        "authority",
                        g.authority.as_ref().map(|r| r.select.kind.clone()),
                    ),
                ] {
                    if let Some(k) = k {
                        reads.push(format!("{t} ({k})"));
                    }
                }
                for r in &g.acknowledgments {
                    reads.push(format!("{} (acknowledgment by a {})", r.name, r.role));
                }
                if a.json {
                    results.push(json!({
                        "file": f.display().to_string(), "valid": true, "gate": g.id,
                        "reads": reads, "raises": codes, "narrows_around": g.blockers.scoped,
                    }));
                    continue;
                }
                println!("{}: gate {} is valid", f.display(), g.id);
                println!("  reads: {}", reads.join(", "));
                println!("  raises: {}", codes.join(", "));
                println!(
                    "  narrows around: {}",
                    if g.blockers.scoped.is_empty() {
                        "nothing".to_string()
                    } else {
                        g.blockers.scoped.join(", ")
                    }
                );
            }
            Err(e) => {
                if a.json {
                    results.push(json!({
                        "file": f.display().to_string(), "valid": false,
                        "error": format!("{}: {e}", f.display()),
                    }));
                } else {
                    eprintln!("evl: {}: {e}", f.display());
                }
                code = exit::INPUT;
            }
        }
    }
    if a.json {
        super::print_json_as("evl.gate-check/v1", &json!({"files": results}))?;
    }
    Ok(code)
}

fn gate_test(a: GateTestArgs) -> Result<i32, Error> {
    let files = gate_test::case_files(&a.dir).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut results = Vec::new();
    for f in &files {
        results.push(gate_test::run_case(f).map_err(|e| Error::Invalid(e.to_string()))?);
    }
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    if a.json {
        let v: Vec<_> = results
            .iter()
            .map(|r| {
                json!({
                    "case": r.path, "name": r.name, "passed": r.failure.is_none(),
                    "failure": r.failure, "verdict": r.disposition.verdict.name(),
                    "blockers": r.disposition.blocker_keys(),
                })
            })
            .collect();
        super::print_json_as(
            "evl.gate-test/v1",
            &json!({"passed": results.len() - failed, "failed": failed,
                "cases": v,
            }),
        )?;
    } else {
        for r in &results {
            let file = r.path.file_name().unwrap_or_default().to_string_lossy();
            match &r.failure {
                None => println!("PASS {file}: {}", r.name),
                Some(f) => println!("FAIL {file}: {}\n     {f}", r.name),
            }
            if a.verbose {
                let d = &r.disposition;
                println!("     derived {}", d.verdict);
                for b in d.blocker_keys() {
                    println!("       blocker {b}");
                }
                for e in &d.escalation {
                    println!("       escalation {e}");
                }
                // The form `expect.trace` entries are matched against.
                for t in &d.trace {
                    println!("       trace {} {}: {}", t.outcome, t.rule, t.detail);
                }
            }
        }
        println!("{}", "-".repeat(40));
        println!("PASS: {}/{}", results.len() - failed, results.len());
        if failed > 0 {
            println!("FAIL: {failed}/{}", results.len());
        }
    }
    Ok(if failed == 0 { exit::OK } else { exit::INVALID })
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The artifact kind the files should be: one of authority-snapshot, certificate,
    /// certificate-exception-register, gate-definition, mesh-policy, rollback-drill,
    /// telemetry, workload-inventory.
    pub kind: String,
    /// The files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Telemetry: the observation window's name (default: the file name).
    #[arg(long, value_name = "NAME")]
    pub window: Option<String>,
    /// Print one result per file as JSON ("schema": "evl.check/v1").
    #[arg(long)]
    pub json: bool,
}

/// The refusal for a kind evl does not read, naming the nearest known one.
pub(crate) fn unknown_kind(kind: &str) -> String {
    let near = crate::evidence::nearest_kind(kind)
        .map(|k| format!(" (did you mean {k}?)"))
        .unwrap_or_default();
    format!(
        "'{kind}' is not a kind evl reads{near}; it reads {}",
        crate::evidence::KNOWN_KINDS.join(", ")
    )
}

pub fn check(a: CheckArgs) -> Result<i32, Error> {
    if !crate::evidence::KNOWN_KINDS.contains(&a.kind.as_str()) {
        return Err(Error::Invalid(unknown_kind(&a.kind)));
    }
    let mut code = exit::OK;
    let mut results = Vec::new();
    for f in &a.files {
        let bytes = read_file(f, crate::store::MAX_ARTIFACT_BYTES)?;
        let name = f.display().to_string();
        let r = crate::evidence::check_kind(&a.kind, &name, &bytes, a.window.as_deref());
        if r.is_err() {
            code = exit::INPUT;
        }
        match (r, a.json) {
            (Ok(_), false) => println!("{name}: a valid {}", a.kind),
            (Err(e), false) => eprintln!("evl: {e}"),
            (r, true) => results.push(json!({
                "file": name, "kind": a.kind, "valid": r.is_ok(), "error": r.err(),
            })),
        }
    }
    if a.json {
        super::print_json_as("evl.check/v1", &json!({"files": results}))?;
    }
    Ok(code)
}

/// A packet's basis holds evidence and what was said about it: artifacts, annotations,
/// acknowledgments, promotions and narrowing proposals (the same rule offline and on submit).
pub(super) fn basis_kind_allowed(id: &EntryId, kind: &str) -> Result<(), Error> {
    if [
        "artifact",
        "annotation",
        "acknowledgment",
        "promotion",
        "narrowing",
    ]
    .contains(&kind)
    {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "basis entry {} is a {kind} entry; a basis holds evidence, annotations, acknowledgments, promotions and narrowing proposals",
        id.short()
    )))
}
