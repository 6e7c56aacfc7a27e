//! Lineage: a packet's revisions from the first to the given one, each with its recorded
//! dispositions, the evidence delta against its parent and whether that delta changed the
//! verdict or the blocker set.

use std::collections::BTreeSet;

use crate::digest::EntryId;
use crate::disposition::{Disposition, Verdict};
use crate::entry::{AnnotationKind, Payload};
use crate::evaluate::EvalError;
use crate::store::Ledger;

/// A disposition recorded for a revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub id: EntryId,
    pub verdict: Verdict,
    pub blockers: Vec<String>,
    pub document: Disposition,
}

/// A narrowing proposal made against a revision and its latest reviewer decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub id: EntryId,
    pub keep: Vec<String>,
    pub rationale: String,
    /// `accepted`, `rejected` or `open`.
    pub status: String,
}

/// One revision of the lineage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revision {
    pub packet: EntryId,
    pub name: String,
    pub revision: u32,
    pub parent: Option<EntryId>,
    /// Recorded dispositions, in log order.
    pub dispositions: Vec<Recorded>,
    /// Basis entries added since the parent.
    pub added: Vec<EntryId>,
    /// Basis entries dropped since the parent.
    pub removed: Vec<EntryId>,
    /// (new, old): added artifacts that supersede a parent basis artifact.
    pub superseded: Vec<(EntryId, EntryId)>,
    pub new_annotations: Vec<EntryId>,
    pub new_acknowledgments: Vec<EntryId>,
    /// The verdict of the parent's latest recorded disposition, if it has one.
    pub parent_verdict: Option<Verdict>,
    /// The parent re-derived at the as-of time of this revision's first recorded disposition
    /// (with the engine that disposition was recorded with): what the parent's evidence
    /// gives at that time, so time passing is not blamed on the delta.
    pub parent_rederived: Option<Verdict>,
    /// Verdict change the evidence delta caused, as `OLD → NEW`: `parent_rederived` against
    /// this revision's first recorded disposition.
    pub verdict_change: Option<String>,
    pub blockers_added: Vec<String>,
    pub blockers_removed: Vec<String>,
    pub proposals: Vec<Proposal>,
}

/// Walks parent links from `packet` to the first revision; returns oldest first.
pub fn lineage(ledger: &Ledger, packet: &EntryId) -> Result<Vec<Revision>, EvalError> {
    let err = |e: crate::error::Error| EvalError::Ledger(e.to_string());
    let size = ledger.size().map_err(err)?;
    let mut all = Vec::with_capacity(size as usize);
    for i in 0..size {
        let e = ledger.entry(i).map_err(err)?;
        all.push((i, e.id(), e));
    }
    let mut chain = Vec::new();
    let mut seen = BTreeSet::new();
    let mut cur = Some(*packet);
    while let Some(id) = cur {
        if !seen.insert(id) {
            break;
        }
        let Some((_, _, e)) = all.iter().find(|(_, i, _)| *i == id) else {
            return Err(EvalError::MissingEntry(id));
        };
        let Payload::Packet(p) = &e.body.payload else {
            return Err(EvalError::NotAPacket(id, e.body.payload.kind()));
        };
        chain.push((id, p.clone()));
        cur = p.parent;
    }
    chain.reverse();
    let mut out: Vec<Revision> = Vec::new();
    for (id, p) in chain {
        let mut dispositions = Vec::new();
        for (_, did, e) in &all {
            if let Payload::Disposition(d) = &e.body.payload
                && d.packet == id
                && let Some(doc) = ledger.blob(&d.document).map_err(err)?
                && let Ok(doc) = Disposition::from_bytes(&doc)
            {
                dispositions.push(Recorded {
                    id: *did,
                    verdict: doc.verdict,
                    blockers: doc.blocker_keys(),
                    document: doc,
                });
            }
        }
        let mut proposals = Vec::new();
        for (_, nid, e) in &all {
            if let Payload::Narrowing(n) = &e.body.payload
                && n.packet == id
            {
                let status = all
                    .iter()
                    .filter_map(|(_, _, a)| match &a.body.payload {
                        Payload::Annotation(an) if an.subject == *nid => Some(an.kind),
                        _ => None,
                    })
                    .rfind(|k| matches!(k, AnnotationKind::Accept | AnnotationKind::Reject));
                proposals.push(Proposal {
                    id: *nid,
                    keep: n.keep.iter().map(|w| w.to_string()).collect(),
                    rationale: n.rationale.clone(),
                    status: match status {
                        Some(AnnotationKind::Accept) => "accepted",
                        Some(AnnotationKind::Reject) => "rejected",
                        _ => "open",
                    }
                    .into(),
                });
            }
        }
        let parent = out.last();
        let before: BTreeSet<EntryId> = parent
            .map(|_| {
                p.parent
                    .and_then(|pid| {
                        all.iter().find_map(|(_, i, e)| match &e.body.payload {
                            Payload::Packet(pp) if *i == pid => Some(pp.basis.clone()),
                            _ => None,
                        })
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default()
            .into_iter()
            .collect();
        let now: BTreeSet<EntryId> = p.basis.iter().copied().collect();
        let added: Vec<EntryId> = now.difference(&before).copied().collect();
        let removed: Vec<EntryId> = before.difference(&now).copied().collect();
        let mut superseded = Vec::new();
        let (mut new_annotations, mut new_acknowledgments) = (vec![], vec![]);
        for a in &added {
            if let Some((_, _, e)) = all.iter().find(|(_, i, _)| i == a) {
                match &e.body.payload {
                    Payload::Artifact(m) => {
                        if let Some(old) = m.supersedes
                            && before.contains(&old)
                        {
                            superseded.push((*a, old));
                        }
                    }
                    Payload::Annotation(_) => new_annotations.push(*a),
                    Payload::Acknowledgment(_) => new_acknowledgments.push(*a),
                    _ => {}
                }
            }
        }
        // Attribute to the evidence delta only what it changed: re-derive the parent at the
        // as-of time of this revision's first recorded disposition, so time passing (evidence
        // ageing, exceptions expiring) is never blamed on the delta.
        let (mut verdict_change, mut blockers_added, mut blockers_removed) = (None, vec![], vec![]);
        let mut parent_rederived = None;
        if let (Some(parent_id), Some(cur)) = (p.parent, dispositions.first()) {
            let input = crate::evaluate::load_input(ledger, &parent_id)?;
            let prev = crate::evaluate::evaluate_with(
                &cur.document.engine_version,
                &input,
                cur.document.as_of,
            )?;
            parent_rederived = Some(prev.verdict);
            if prev.verdict != cur.verdict {
                verdict_change = Some(format!("{} → {}", prev.verdict, cur.verdict));
            }
            let prev_blockers = prev.blocker_keys();
            let (a, b): (BTreeSet<&String>, BTreeSet<&String>) = (
                prev_blockers.iter().collect(),
                cur.blockers.iter().collect(),
            );
            blockers_added = b.difference(&a).map(|s| s.to_string()).collect();
            blockers_removed = a.difference(&b).map(|s| s.to_string()).collect();
        }
        let parent_verdict = p
            .parent
            .and(parent)
            .and_then(|r| r.dispositions.last())
            .map(|d| d.verdict);
        out.push(Revision {
            parent_verdict,
            parent_rederived,
            packet: id,
            name: p.name.clone(),
            revision: p.revision,
            parent: p.parent,
            dispositions,
            added,
            removed,
            superseded,
            new_annotations,
            new_acknowledgments,
            verdict_change,
            blockers_added,
            blockers_removed,
            proposals,
        });
    }
    Ok(out)
}
