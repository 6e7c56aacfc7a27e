//! Power loss, not only SIGKILL (docs/RELIABILITY.md §"Power loss"): the real store runs on
//! a simulated disk (`evl::store::sim`) that fails at a chosen mutating operation and then
//! keeps only what a power loss would — synced bytes, plus each unsynced write whole, lost,
//! or torn at a sector boundary, in any combination (so later writes can survive where
//! earlier ones did not), and name changes as a prefix of their order.
//!
//! One workload — single appends, batches large enough to move the index's durability mark,
//! a stored checkpoint, content stored once and referenced again, and lookup runs sorted and
//! merged every 4 records — is run once without a crash for reference, then again for each
//! crash point and seed. After the power loss the ledger must open; hold exactly the entries
//! of every append that returned, and of the interrupted one either all or none; give the
//! reference tree root for its size; accept one more append; and then pass `verify`.
//!
//! `cargo test --test power_loss` runs a spread of crash points; the full run of at least
//! 10,000 seeded crash points is
//!
//! ```sh
//! EVL_POWER_LOSS_CRASHES=10000 cargo test --release --test power_loss -- --nocapture
//! ```
//!
//! and any failure names its crash point and seed, so `EVL_POWER_LOSS_ONLY=POINT:SEED`
//! replays exactly that one.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use evl::entry::{Annotation, AnnotationKind, ArtifactMeta, KeyGrant, Payload, Scope, Tier};
use evl::keys::{Role, SecretKey};
use evl::store::sim::{Loss, SimFs};
use evl::store::{Draft, Ledger, OpenOptions};
use evl::timestamp::Timestamp;
use evl::{Digest, checkpoint, verify};

const T0: i64 = 1_776_470_400; // 2026-04-18T00:00:00Z
const ORIGIN: &str = "example.org/power-loss";
const LEDGER: &str = "/disk/ledger";
/// Lookup records left unsorted before a run: small, so runs are written and merged often.
const TAIL: u64 = 4;

fn key() -> SecretKey {
    SecretKey::demo_from_phrase("evl power-loss test admin")
}

fn opts(fs: &SimFs) -> OpenOptions {
    OpenOptions {
        fs: Some(Arc::new(fs.clone())),
        index_tail: Some(TAIL),
        ..OpenOptions::default()
    }
}

fn artifact(n: u64, content: &[u8]) -> Draft {
    Draft {
        payload: Payload::Artifact(ArtifactMeta {
            content: Digest::of(content),
            size: content.len() as u64,
            kind: "evidence".into(),
            file_name: format!("e{n}.txt"),
            tier: Tier::Operational,
            captured_at: Timestamp(T0),
            valid_until: None,
            scope: Scope::default(),
            sealed: false,
            supersedes: None,
            labels: BTreeMap::new(),
            facts: None,
        }),
        claimed_at: Timestamp(T0 + n as i64),
        blobs: vec![content.to_vec()],
    }
}

fn note(n: u64) -> Draft {
    Draft {
        payload: Payload::Annotation(Annotation {
            subject: Digest::of(&n.to_le_bytes()),
            kind: AnnotationKind::Note,
            scope: Scope::default(),
            text: format!("note {n}"),
        }),
        claimed_at: Timestamp(T0 + n as i64),
        blobs: vec![],
    }
}

/// One step of the workload.
enum Step {
    Append(Vec<Draft>),
    Checkpoint,
}

fn workload() -> Vec<Step> {
    let mut steps = Vec::new();
    let mut n = 0u64;
    let mut next = || {
        n += 1;
        n
    };
    for _ in 0..5 {
        let i = next();
        steps.push(Step::Append(vec![artifact(
            i,
            format!("evidence {i}\n").as_bytes(),
        )]));
    }
    // Enough in one batch to move the durability mark and sort several runs.
    steps.push(Step::Append(
        (0..36)
            .map(|_| {
                let i = next();
                artifact(i, &vec![i as u8; 300 + i as usize])
            })
            .collect(),
    ));
    steps.push(Step::Checkpoint);
    for k in 0..8 {
        let i = next();
        // Every third one carries content already stored.
        let content = if k % 3 == 0 {
            b"evidence 1\n".to_vec()
        } else {
            format!("later {i}\n").into_bytes()
        };
        steps.push(Step::Append(vec![artifact(i, &content)]));
        steps.push(Step::Append(vec![note(next())]));
    }
    steps.push(Step::Append((0..5).map(|_| note(next())).collect()));
    steps.push(Step::Checkpoint);
    steps.push(Step::Append(vec![note(next())]));
    steps
}

/// Runs `steps` on the ledger on `fs` until one fails; returns how many succeeded.
fn run(fs: &SimFs, steps: &[Step]) -> usize {
    let Ok(ledger) = Ledger::open(Path::new(LEDGER), &opts(fs)) else {
        return 0;
    };
    let key = key();
    for (done, step) in steps.iter().enumerate() {
        let ok = match step {
            Step::Append(drafts) => ledger.append_batch(drafts.clone(), &key, None).is_ok(),
            Step::Checkpoint => (|| -> evl::error::Result<()> {
                let size = ledger.size()?;
                let root = ledger.root(size)?;
                ledger.store_checkpoint(&checkpoint::sign(ORIGIN, size, root, &key))
            })()
            .is_ok(),
        };
        if !ok {
            return done;
        }
    }
    steps.len()
}

/// What the workload leaves after each step, run once without a crash.
struct Reference {
    /// The disk just after `init`, every byte synced.
    base: SimFs,
    /// Tree size and whether a checkpoint is stored, after 0, 1, … steps.
    after: Vec<(u64, bool)>,
    /// Every entry's stored bytes and the root at every size.
    entries: Vec<Vec<u8>>,
    roots: Vec<[u8; 32]>,
    /// Mutating operations the whole workload makes.
    ops: u64,
}

fn reference(steps: &[Step]) -> Reference {
    let disk = SimFs::new();
    let grant = KeyGrant {
        name: "admin".into(),
        public_key: key().public(),
        roles: vec![Role::Admin, Role::Owner, Role::Reviewer],
    };
    Ledger::init_with(
        Path::new(LEDGER),
        ORIGIN,
        vec![grant],
        &key(),
        Timestamp(T0),
        &opts(&disk),
    )
    .expect("init on the simulated disk");
    let base = disk.snapshot();
    let fs = base.snapshot();
    let ledger = Ledger::open(Path::new(LEDGER), &opts(&fs)).unwrap();
    let mut after = vec![(ledger.size().unwrap(), false)];
    let key = key();
    let mut stored = false;
    for step in steps {
        match step {
            Step::Append(drafts) => {
                ledger.append_batch(drafts.clone(), &key, None).unwrap();
            }
            Step::Checkpoint => {
                let size = ledger.size().unwrap();
                let root = ledger.root(size).unwrap();
                ledger
                    .store_checkpoint(&checkpoint::sign(ORIGIN, size, root, &key))
                    .unwrap();
                stored = true;
            }
        }
        after.push((ledger.size().unwrap(), stored));
    }
    let size = ledger.size().unwrap();
    let entries = (0..size).map(|i| ledger.entry_bytes(i).unwrap()).collect();
    let roots = (1..=size).map(|s| ledger.root(s).unwrap().0).collect();
    assert!(verify::verify(&ledger, &Default::default()).unwrap().ok());
    Reference {
        base,
        after,
        entries,
        roots,
        ops: fs.ops(),
    }
}

/// Crashes the workload at mutating operation `point`, loses power with `seed`, and checks
/// what is left. Returns the crash point's description on failure.
fn crash(r: &Reference, steps: &[Step], point: u64, seed: u64) -> Result<(), String> {
    let fail = |what: String| Err(format!("crash point {point} seed {seed}: {what}"));
    let disk = r.base.snapshot();
    disk.crash_at(point);
    let done = run(&disk, steps);
    let loss = if seed % 5 == 0 {
        Loss::All
    } else {
        Loss::Random
    };
    let after = disk.after_power_loss(loss, seed);

    let ledger = match Ledger::open(Path::new(LEDGER), &opts(&after)) {
        Ok(l) => l,
        Err(e) => {
            return fail(format!(
                "the ledger does not open after the power loss: {e}"
            ));
        }
    };
    let size = ledger.size().map_err(|e| e.to_string())?;
    // Every append that returned is there; the interrupted one is there whole or not at all.
    let acked = r.after[done];
    let allowed: Vec<(u64, bool)> = r.after[done..(done + 2).min(r.after.len())].to_vec();
    let stored = ledger
        .latest_checkpoint()
        .map_err(|e| e.to_string())?
        .is_some();
    if !allowed.contains(&(size, stored)) {
        return fail(format!(
            "{done} steps returned (size {}, checkpoint {}), but the disk holds size {size}, checkpoint {stored}",
            acked.0, acked.1
        ));
    }
    for i in 0..size {
        match ledger.entry_bytes(i) {
            Ok(b) if b == r.entries[i as usize] => {}
            Ok(_) => return fail(format!("entry {i} differs from the reference")),
            Err(e) => return fail(format!("entry {i} cannot be read: {e}")),
        }
    }
    match ledger.root(size) {
        Ok(root) if root.0 == r.roots[size as usize - 1] => {}
        other => return fail(format!("root at size {size}: {other:?}")),
    }
    // Lookups through the index the power loss left (entries by id, stored bytes).
    for i in (0..size).step_by(7) {
        let e = ledger.entry(i).map_err(|e| e.to_string())?;
        if ledger.index_of(&e.id()).map_err(|e| e.to_string())? != Some(i) {
            return fail(format!("entry {i} is not found by its id"));
        }
        if let Payload::Artifact(m) = &e.body.payload
            && ledger
                .blob(&m.content)
                .map_err(|e| e.to_string())?
                .is_none()
        {
            return fail(format!("the bytes of entry {i} are not found"));
        }
    }
    // The next writer appends (and repairs the index); the ledger then verifies.
    if let Err(e) = ledger.append(note(10_000), &key()) {
        return fail(format!("the next append fails: {e}"));
    }
    let report = verify::verify(&ledger, &Default::default()).map_err(|e| e.to_string())?;
    if !report.ok() {
        return fail(format!(
            "verify after the next append: {:?}",
            report.failures
        ));
    }
    Ok(())
}

#[test]
fn every_crash_point_recovers_to_a_prefix_of_whole_appends() {
    let steps = workload();
    let r = reference(&steps);
    let crashes: u64 = std::env::var("EVL_POWER_LOSS_CRASHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let mut plan: Vec<(u64, u64)> = Vec::new();
    if let Ok(only) = std::env::var("EVL_POWER_LOSS_ONLY") {
        let (p, s) = only
            .split_once(':')
            .expect("EVL_POWER_LOSS_ONLY=POINT:SEED");
        plan.push((p.parse().unwrap(), s.parse().unwrap()));
    } else {
        // Every operation at least once, then more seeds spread over all of them.
        for i in 0..crashes {
            plan.push((i % r.ops, i / r.ops * 7919 + i));
        }
    }
    let failures: Vec<String> = plan
        .iter()
        .filter_map(|&(point, seed)| crash(&r, &steps, point, seed).err())
        .collect();
    println!(
        "power loss: {} crash points over {} mutating operations of the workload ({} entries), {} failed",
        plan.len(),
        r.ops,
        r.entries.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} crash points failed; replay one with EVL_POWER_LOSS_ONLY=POINT:SEED:\n{}",
        failures.len(),
        plan.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The simulation is only worth something if it can see a broken store: on a disk that
/// acknowledges log syncs it never makes, appends that returned are lost at a power loss, and
/// the checks above must say so.
#[test]
fn the_checks_notice_appends_lost_by_a_disk_that_lies_about_syncs() {
    let steps = workload();
    let r = reference(&steps);
    r.base.lie_about_syncs_of(&Path::new(LEDGER).join("log"));
    let failed = (0..r.ops)
        .step_by(17)
        .filter(|&p| crash(&r, &steps, p, 5).is_err())
        .count();
    assert!(failed > 0, "no crash point noticed the lost appends");
}
