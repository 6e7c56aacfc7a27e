//! Crash safety: a child process appends in a loop (single appends, bulk batches and the odd
//! checkpoint) and is killed with SIGKILL at a random moment; the reopened ledger must verify,
//! hold every append whose success the child had printed, and show nothing partial.
//!
//! The child is this very test binary re-run with `--exact crash_child --ignored` and
//! `EVL_CRASH_CHILD=<ledger dir>`, so no other target has to be built first.
//!
//! Short mode (10 trials) runs in `cargo test`. Long mode, whose result is recorded in
//! docs/RELIABILITY.md:
//!
//! ```text
//! EVL_CRASH_TRIALS=200 cargo test --release --test crash -- --nocapture
//! ```
//!
//! `EVL_CRASH_SEED=<n>` replays a run: the seed is printed at the start of every run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use evl::entry::{Annotation, AnnotationKind, ArtifactMeta, KeyGrant, Payload, Scope, Tier};
use evl::keys::{Role, SecretKey};
use evl::store::{Draft, Ledger, OpenOptions};
use evl::timestamp::Timestamp;
use evl::{Digest, checkpoint, verify};

const CHILD_ENV: &str = "EVL_CRASH_CHILD";
const CHILD_SEED_ENV: &str = "EVL_CRASH_CHILD_SEED";
const ORIGIN: &str = "example.org/crash";
const T0: i64 = 1_776_470_400; // 2026-04-18T00:00:00Z

/// splitmix64: a tiny seeded generator, so a failing run can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn admin() -> SecretKey {
    SecretKey::demo_from_phrase("evl crash harness admin")
}

fn init_ledger(path: &Path) {
    let key = admin();
    let grant = KeyGrant {
        name: "crash-admin".into(),
        public_key: key.public(),
        roles: vec![Role::Admin, Role::Owner, Role::Reviewer],
    };
    Ledger::init(path, ORIGIN, vec![grant], &key, Timestamp(T0)).expect("init");
}

fn artifact(rng: &mut Rng, serial: u64) -> Draft {
    // Unique bytes per draft (serial and child seed), of a random size up to 96 KiB.
    let len = rng.below(96 * 1024) as usize + 8;
    let mut bytes = Vec::with_capacity(len);
    let mut x = Rng(rng.next() ^ serial);
    while bytes.len() < len {
        bytes.extend_from_slice(&x.next().to_le_bytes());
    }
    bytes.truncate(len);
    bytes[..8].copy_from_slice(&serial.to_le_bytes());
    Draft {
        payload: Payload::Artifact(ArtifactMeta {
            content: Digest::of(&bytes),
            size: bytes.len() as u64,
            kind: "crash-test".into(),
            file_name: format!("blob-{serial}.bin"),
            tier: Tier::Operational,
            captured_at: Timestamp(T0),
            valid_until: None,
            scope: Scope::default(),
            sealed: false,
            supersedes: None,
            labels: BTreeMap::new(),
            facts: None,
        }),
        claimed_at: Timestamp(T0 + serial as i64),
        blobs: vec![bytes],
    }
}

fn annotation(serial: u64) -> Draft {
    Draft {
        payload: Payload::Annotation(Annotation {
            subject: Digest::of(&serial.to_le_bytes()),
            kind: AnnotationKind::Note,
            scope: Scope::default(),
            text: format!("crash harness note {serial}"),
        }),
        claimed_at: Timestamp(T0 + serial as i64),
        blobs: vec![],
    }
}

/// Owns the child so a failing trial (a panic before the planned kill) never leaves an
/// appender running behind the test.
struct KillOnDrop(std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child: appends until killed. Protocol on stdout, one line each, flushed:
/// `try <start> <count>` before an append, `ok <index> <id hex>` per entry after it returned,
/// `cp <size>` after a checkpoint was stored.
#[test]
#[ignore = "the crash harness's child process; run by crash_harness with EVL_CRASH_CHILD set"]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        panic!("crash_child is run by crash_harness, with {CHILD_ENV} set");
    };
    let seed: u64 = std::env::var(CHILD_SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = Rng(seed);
    let key = admin();
    let ledger = Ledger::open(Path::new(&path), &OpenOptions::default()).expect("child open");
    let out = std::io::stdout();
    let mut out = out.lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let mut serial = 0u64;
    loop {
        let start = ledger.size().unwrap();
        match rng.below(10) {
            // Bulk: 2..=40 artifacts in one batch, one flush.
            0..=3 => {
                let n = 2 + rng.below(39);
                let drafts: Vec<Draft> = (0..n)
                    .map(|_| {
                        serial += 1;
                        artifact(&mut rng, serial)
                    })
                    .collect();
                writeln!(out, "try {start} {n}").unwrap();
                out.flush().unwrap();
                let done = ledger.append_batch(drafts, &key, None).expect("batch");
                for d in done {
                    writeln!(out, "ok {} {}", d.index, d.id).unwrap();
                }
            }
            // A stored checkpoint of the current tree.
            4 => {
                let root = ledger.root(start).unwrap();
                let note = checkpoint::sign(ORIGIN, start, root, &key);
                writeln!(out, "trycp {start}").unwrap();
                out.flush().unwrap();
                ledger.store_checkpoint(&note).unwrap();
                writeln!(out, "cp {start}").unwrap();
            }
            // Single appends: an artifact with its bytes, or an annotation.
            r => {
                serial += 1;
                let draft = if r % 2 == 0 {
                    artifact(&mut rng, serial)
                } else {
                    annotation(serial)
                };
                writeln!(out, "try {start} 1").unwrap();
                out.flush().unwrap();
                let d = ledger.append(draft, &key).expect("append");
                writeln!(out, "ok {} {}", d.index, d.id).unwrap();
            }
        }
        out.flush().unwrap();
    }
}

/// What the child said before it died.
#[derive(Default)]
struct Heard {
    confirmed: Vec<(u64, Digest)>,
    /// The append in flight when the child died: (start index, count).
    pending: Option<(u64, u64)>,
    checkpoints: Vec<u64>,
    /// One past the last index of the last append that returned.
    returned_end: u64,
    pending_checkpoint: Option<u64>,
}

fn parse(lines: &[String]) -> Heard {
    let mut h = Heard::default();
    for l in lines {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["try", s, n] => h.pending = Some((s.parse().unwrap(), n.parse().unwrap())),
            ["ok", i, id] => {
                let i: u64 = i.parse().unwrap();
                h.confirmed.push((i, id.parse().unwrap()));
                // The first `ok` of an append means it returned: the whole batch must be
                // there, even if the kill cut the printing of its other `ok` lines.
                if let Some((s, n)) = h.pending.take() {
                    h.returned_end = s + n;
                }
            }
            ["trycp", s] => h.pending_checkpoint = Some(s.parse().unwrap()),
            ["cp", s] => {
                h.checkpoints.push(s.parse().unwrap());
                h.pending_checkpoint = None;
            }
            _ => {} // libtest's own lines
        }
    }
    h
}

struct TrialResult {
    killed: bool,
    /// Whether an append was in flight at the kill, and if so whether it was found whole.
    in_flight: Option<bool>,
    confirmed: usize,
    size: u64,
    /// Whether the reopened ledger had to index committed records the killed writer had not
    /// indexed yet, and whether unfinished bytes lay past its last commit.
    index_behind: bool,
    unfinished_tail: bool,
}

fn trial(n: usize, rng: &mut Rng) -> TrialResult {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    init_ledger(&path);
    let child_seed = rng.next();
    let delay = Duration::from_millis(10 + rng.below(600));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .env(CHILD_SEED_ENV, child_seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(KillOnDrop)
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut all = Vec::new();
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                // Only whole lines count: a line cut by the kill was never "printed".
                Ok(0) | Err(_) => break,
                Ok(_) if line.ends_with('\n') => {
                    let _ = tx.send(line.trim_end().to_string());
                    all.push(line.trim_end().to_string());
                }
                Ok(_) => break,
            }
        }
        all
    });
    // Wait for the child to be ready, then let it run for `delay`.
    let ready_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            // libtest has already written "test crash_child ... " on this line.
            Ok(l) if l.ends_with("ready") => break,
            Ok(_) => {}
            Err(_) if Instant::now() > ready_deadline => {
                panic!("trial {n}: the child never got ready")
            }
            Err(_) => {
                if let Some(status) = child.try_wait().unwrap() {
                    let mut err = String::new();
                    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err)
                        .unwrap();
                    panic!("trial {n}: the child exited early ({status}): {err}");
                }
            }
        }
    }
    std::thread::sleep(delay);
    let killed = child.try_wait().unwrap().is_none();
    // Child::kill sends SIGKILL on Unix.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let lines = reader.join().unwrap();
    if !killed {
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        panic!("trial {n}: the child died on its own ({status}) before the kill: {err}");
    }
    let heard = parse(&lines);

    let ledger = Ledger::open(
        &path,
        &OpenOptions {
            wait: Some(Duration::from_secs(10)),
            ..OpenOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("trial {n}: the ledger does not reopen after SIGKILL: {e}"));
    let view = ledger.snapshot().unwrap();
    let index_behind = view.has_unwritten_index();
    let unfinished_tail = std::fs::metadata(path.join("log")).unwrap().len() > view.head().end();
    drop(view);
    let report = verify::verify(&ledger, &verify::Options::default()).unwrap();
    assert!(
        report.ok(),
        "trial {n} (child seed {child_seed}): verify fails after SIGKILL: {:#?}",
        report.failures
    );
    let size = ledger.size().unwrap();
    assert_eq!(report.entries_checked, size, "trial {n}: entries vs size");

    // Every append the child confirmed is present, by id, at its index.
    for (index, id) in &heard.confirmed {
        assert_eq!(
            ledger.index_of(id).unwrap(),
            Some(*index),
            "trial {n}: confirmed entry {id} lost (expected at index {index}, ledger size {size})"
        );
        assert_eq!(
            ledger.entry(*index).unwrap().id(),
            *id,
            "trial {n}: index {index}"
        );
    }
    // Nothing partial: the ledger ends after the last confirmed entry, or after the whole
    // batch that was in flight — never inside it.
    let mut in_flight = None;
    let confirmed_end = heard.returned_end.max(1);
    match heard.pending {
        None => assert_eq!(
            size, confirmed_end,
            "trial {n}: entries beyond the last append"
        ),
        Some((start, count)) => {
            assert_eq!(start, confirmed_end, "trial {n}: protocol");
            in_flight = Some(size == start + count);
            assert!(
                size == start || size == start + count,
                "trial {n}: a batch of {count} from index {start} is partly visible: size {size}"
            );
        }
    }
    assert_eq!(
        ledger.snapshot().unwrap().ids().dense().len(),
        size,
        "trial {n}: id index"
    );
    // A confirmed checkpoint is the latest stored one or was replaced by a later one, and
    // verify (above) checked whichever is stored.
    if let Some(last) = heard.checkpoints.last() {
        let note = ledger
            .latest_checkpoint()
            .unwrap()
            .expect("a confirmed checkpoint is stored");
        let stored = String::from_utf8_lossy(&note)
            .lines()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap();
        assert!(
            stored == *last || Some(stored) == heard.pending_checkpoint,
            "trial {n}: stored checkpoint size {stored}, confirmed {last}"
        );
    }

    // The ledger stays usable: one more append, and it still verifies.
    let d = ledger.append(annotation(1_000_000), &admin()).unwrap();
    assert_eq!(d.index, size);
    assert!(
        verify::verify(&ledger, &verify::Options::default())
            .unwrap()
            .ok()
    );
    // That append repaired the files: the index is complete and nothing lies past the commit.
    let view = ledger.snapshot().unwrap();
    assert!(!view.has_unwritten_index(), "trial {n}: index still behind");
    assert_eq!(
        std::fs::metadata(path.join("log")).unwrap().len(),
        view.head().end(),
        "trial {n}: unfinished bytes left past the last commit"
    );
    TrialResult {
        killed,
        in_flight,
        confirmed: heard.confirmed.len(),
        size,
        index_behind,
        unfinished_tail,
    }
}

#[test]
fn crash_harness() {
    let trials: usize = std::env::var("EVL_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("EVL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash harness: {trials} trials, EVL_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let (mut kills, mut confirmed, mut entries) = (0, 0, 0);
    let (mut in_flight_whole, mut in_flight_absent) = (0, 0);
    let (mut index_behind, mut unfinished_tail) = (0, 0);
    for n in 0..trials {
        let r = trial(n, &mut rng);
        kills += r.killed as usize;
        confirmed += r.confirmed;
        entries += r.size;
        index_behind += r.index_behind as usize;
        unfinished_tail += r.unfinished_tail as usize;
        let flight = match r.in_flight {
            None => "between appends",
            Some(true) => {
                in_flight_whole += 1;
                "mid-append, which is whole"
            }
            Some(false) => {
                in_flight_absent += 1;
                "mid-append, which is absent"
            }
        };
        println!(
            "trial {n}: killed {flight} after {} confirmed entries; reopened size {}{}{}; verified",
            r.confirmed,
            r.size,
            if r.index_behind {
                ", index caught up from the log"
            } else {
                ""
            },
            if r.unfinished_tail {
                ", unfinished batch bytes ignored"
            } else {
                ""
            },
        );
    }
    println!(
        "crash harness: seed {seed}: {trials} trials, {kills} SIGKILLs, {confirmed} confirmed \
         appends checked present, {entries} entries verified, killed mid-append {} times \
         ({in_flight_whole} found whole, {in_flight_absent} absent), index caught up from the log \
         {index_behind} times, unfinished batch bytes ignored {unfinished_tail} times, 0 failures, \
         {:.1} s",
        in_flight_whole + in_flight_absent,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(kills, trials);
}
