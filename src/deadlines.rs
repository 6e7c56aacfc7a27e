//! Deadlines: the future instants at which a packet's derived result would change, found by
//! evaluating at every instant where a time-dependent rule flips (and one second after).

use crate::disposition::Verdict;
use crate::evaluate::{self, EvalError, EvalInput};
use crate::timestamp::Timestamp;

/// A change of the derived result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// The first evaluated instant showing the new result.
    pub at: Timestamp,
    pub verdict_before: Verdict,
    pub verdict_after: Verdict,
    /// Blockers (`code subject`) that appear at `at`.
    pub blockers_added: Vec<String>,
    /// Blockers that disappear at `at`.
    pub blockers_removed: Vec<String>,
}

/// Every instant after `as_of` at which the verdict or blocker set changes, in time order.
pub fn deadlines(input: &EvalInput, as_of: Timestamp) -> Result<Vec<Deadline>, EvalError> {
    let first = evaluate::evaluate_full(input, as_of)?;
    let mut candidates: Vec<Timestamp> = first
        .time_points
        .iter()
        .flat_map(|t| [*t, t.plus_seconds(1)])
        .filter(|t| *t > as_of)
        .collect();
    candidates.sort();
    candidates.dedup();
    let mut prev = first.disposition;
    let mut out = Vec::new();
    let mut i = 0;
    while i < candidates.len() {
        let t = candidates[i];
        let next = evaluate::evaluate_full(input, t)?;
        // Later results can reveal instants the first result did not know about.
        for p in &next.time_points {
            for c in [*p, p.plus_seconds(1)] {
                if c > t && !candidates.contains(&c) {
                    let at = candidates.partition_point(|x| *x < c);
                    candidates.insert(at, c);
                }
            }
        }
        let d = next.disposition;
        let (a, b) = (prev.blocker_keys(), d.blocker_keys());
        if prev.verdict != d.verdict || a != b {
            out.push(Deadline {
                at: t,
                verdict_before: prev.verdict,
                verdict_after: d.verdict,
                blockers_added: b.iter().filter(|k| !a.contains(k)).cloned().collect(),
                blockers_removed: a.iter().filter(|k| !b.contains(k)).cloned().collect(),
            });
        }
        prev = d;
        i += 1;
    }
    Ok(out)
}
