//! Every performance figure of docs/PERFORMANCE.md in one run, each beside the limit or peer it
//! is judged against, both measured in this run on this machine.
//!
//! Run with `bash scripts/bench-e2e.sh` (it builds the release `evl` binary this example drives
//! for the CLI and peer figures). Options, after `--`:
//! `--max N` (largest bulk ledger, default 1000000), `--batch N` (entries per durable batch,
//! default 10000), `--peer N` (evidence items for the CLI and git peer figures, default 300),
//! `--dir DIR` (work directory, default a temporary one, removed at the end unless `--keep`),
//! `--bulk-only` (stop after the limits and the bulk append: for profiling the append path).
//!
//! The figures are printed, never asserted: speed is reported here, correctness by the tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use evl::Digest;
use evl::entry::{
    ArtifactMeta, ENTRY_FORMAT, Entry, KeyGrant, Payload, Scope, Tier, UnsignedEntry,
};
use evl::keys::{Role, SecretKey};
use evl::store::{Draft, Ledger, OpenOptions};
use evl::timestamp::Timestamp;
use rayon::prelude::*;

/// Signatures per `verify_batch` call, as `evl::verify` uses.
const VERIFY_BATCH: usize = 256;
/// The batch size `evl::verify` uses.
const GROUPED_BATCH: usize = 4096;
/// A fixed claimed time so runs are comparable (2026-04-01T00:00:00Z).
const AT: i64 = 1_775_001_600;

struct Opts {
    max: u64,
    batch: u64,
    peer: usize,
    dir: Option<PathBuf>,
    keep: bool,
    /// Stop after the limits and the bulk append (for profiling the append path).
    bulk_only: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        max: 1_000_000,
        batch: 10_000,
        peer: 300,
        dir: None,
        keep: false,
        bulk_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--max" => o.max = val().parse().expect("--max N"),
            "--batch" => o.batch = val().parse().expect("--batch N"),
            "--peer" => o.peer = val().parse().expect("--peer N"),
            "--dir" => o.dir = Some(PathBuf::from(val())),
            "--keep" => o.keep = true,
            "--bulk-only" => o.bulk_only = true,
            "--bench" => {}
            other => panic!("unknown option {other}: see the comment at the top of bench-e2e"),
        }
    }
    o
}

/// One line of the result table.
struct Row {
    figure: String,
    value: String,
    against: String,
    ratio: String,
    target: String,
}

#[derive(Default)]
struct Table(Vec<Row>);

impl Table {
    fn row(&mut self, figure: &str, value: String, against: &str, ratio: String, target: &str) {
        let r = Row {
            figure: figure.into(),
            value,
            against: against.into(),
            ratio,
            target: target.into(),
        };
        eprintln!(
            "  {:<58} {:>22}  {}  {}",
            r.figure, r.value, r.ratio, r.target
        );
        self.0.push(r);
    }
    fn print(&self) {
        println!("| figure | value | measured against | ratio | target |");
        println!("|---|---:|---|---:|---|");
        for r in &self.0 {
            println!(
                "| {} | {} | {} | {} | {} |",
                r.figure, r.value, r.against, r.ratio, r.target
            );
        }
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn rate(n: f64, d: Duration) -> f64 {
    n / d.as_secs_f64()
}

fn fmt_rate(r: f64) -> String {
    format!("{:.0} /s", r)
}

fn fmt_dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Disk blocks allocated under `path`, as `du` counts them.
fn du(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for e in fs::read_dir(path).expect("readable dir").flatten() {
        let m = e.metadata().expect("metadata");
        total += if m.is_dir() {
            du(&e.path())
        } else {
            m.blocks() * 512
        };
    }
    total
}

/// A realistic small evidence artifact: a few CSV rows of a workload inventory (~220 bytes).
/// The bytes of artifact `i`: an inventory-like CSV export that is not in the importer's
/// format, so it is stored under an opaque kind (`evl add` validates the kinds it reads).
fn artifact_bytes(i: u64) -> Vec<u8> {
    format!(
        "namespace,workload,sidecar,mtls_mode,owner\n\
         payments,ledger-sync-{i},istio-proxy-1.22.3,STRICT,team-payments\n\
         payments,ledger-api-{i},istio-proxy-1.22.3,PERMISSIVE,team-payments\n\
         captured,{i},window,2026-04-01T00:00:00Z\n"
    )
    .into_bytes()
}

fn draft(i: u64) -> Draft {
    let bytes = artifact_bytes(i);
    Draft {
        payload: Payload::Artifact(ArtifactMeta {
            content: Digest::of(&bytes),
            size: bytes.len() as u64,
            kind: "inventory-export".into(),
            file_name: format!("inventory-{i}.csv"),
            tier: Tier::Operational,
            captured_at: Timestamp(AT),
            valid_until: Some(Timestamp(AT + 14 * 86_400)),
            scope: Scope {
                namespaces: vec!["payments".into()],
                workloads: vec![],
            },
            sealed: false,
            supersedes: None,
            labels: Default::default(),
            facts: None,
        }),
        claimed_at: Timestamp(AT),
        blobs: vec![bytes],
    }
}

fn drafts(from: u64, n: u64) -> Vec<Draft> {
    (from..from + n).map(draft).collect()
}

fn bench_key() -> SecretKey {
    SecretKey::demo_from_phrase("evl bench-e2e signer")
}

fn init_ledger(path: &Path, key: &SecretKey) -> Ledger {
    let grant = KeyGrant {
        name: "bench".into(),
        public_key: key.public(),
        roles: vec![Role::Admin, Role::Owner, Role::Reviewer],
    };
    Ledger::init(path, "example.org/bench", vec![grant], key, Timestamp(AT)).expect("init")
}

/// A 55-byte message like the one an entry signature covers (domain string || 32-byte id).
fn entry_message(i: u64) -> Vec<u8> {
    evl::entry::signature_message(&Digest::of(&i.to_le_bytes()))
}

struct Limits {
    sign_1core: f64,
    sign_all: f64,
    batch_verify_1core: f64,
    grouped_1core: f64,
    verify_strict_1core: f64,
}

fn limits(t: &mut Table) -> Limits {
    eprintln!("limits: ed25519-dalek on 55-byte messages");
    let sk = SigningKey::from_bytes(&[7u8; 32]);
    let vk: VerifyingKey = sk.verifying_key();
    let n = 40_960u64;
    let msgs: Vec<Vec<u8>> = (0..n).map(entry_message).collect();
    assert_eq!(msgs[0].len(), 55, "the entry signature message is 55 bytes");
    // Warm up, then one core.
    for m in &msgs[..1000] {
        std::hint::black_box(sk.sign(m));
    }
    let t0 = Instant::now();
    let sigs: Vec<Signature> = msgs.iter().map(|m| sk.sign(m)).collect();
    let sign_1core = rate(n as f64, t0.elapsed());
    let t0 = Instant::now();
    let _: Vec<Signature> = msgs.par_iter().map(|m| sk.sign(m)).collect();
    let sign_all = rate(n as f64, t0.elapsed());
    // dalek's verify_batch at the batch size evl used before and at the one it uses now; the
    // limit is the faster of the two.
    let dalek_batch = |size: usize| {
        let keys = vec![vk; size];
        let t0 = Instant::now();
        for (m, s) in msgs.chunks(size).zip(sigs.chunks(size)) {
            let m: Vec<&[u8]> = m.iter().map(|m| m.as_slice()).collect();
            ed25519_dalek::verify_batch(&m, s, &keys[..s.len()]).expect("batch verifies");
        }
        rate(n as f64, t0.elapsed())
    };
    let dalek_small = dalek_batch(VERIFY_BATCH);
    let dalek_large = dalek_batch(GROUPED_BATCH);
    let batch_verify_1core = dalek_small.max(dalek_large);
    // evl's own batch equation (one term per distinct key), one core, one signer.
    let raw: Vec<[u8; 64]> = sigs.iter().map(|s| s.to_bytes()).collect();
    let t0 = Instant::now();
    for (m, s) in msgs.chunks(GROUPED_BATCH).zip(raw.chunks(GROUPED_BATCH)) {
        let items: Vec<evl::batch_verify::Item> = m
            .iter()
            .zip(s)
            .map(|(message, signature)| evl::batch_verify::Item {
                key: &vk,
                message,
                signature,
            })
            .collect();
        assert!(evl::batch_verify::verify(&items), "grouped batch verifies");
    }
    let grouped_1core = rate(n as f64, t0.elapsed());
    let k = 10_000usize;
    let t0 = Instant::now();
    for (m, s) in msgs[..k].iter().zip(&sigs[..k]) {
        vk.verify_strict(m, s).expect("verifies");
    }
    let verify_strict_1core = rate(k as f64, t0.elapsed());
    t.row(
        "Ed25519 sign, one core (limit)",
        fmt_rate(sign_1core),
        "—",
        "—".into(),
        "",
    );
    t.row(
        &format!("Ed25519 sign, all {} cores", rayon::current_num_threads()),
        fmt_rate(sign_all),
        "one-core sign",
        format!("{:.2}×", sign_all / sign_1core),
        "",
    );
    t.row(
        &format!("Ed25519 batch verify (dalek `verify_batch`, {VERIFY_BATCH}/batch), one core"),
        fmt_rate(dalek_small),
        "—",
        "—".into(),
        "",
    );
    t.row(
        &format!("Ed25519 batch verify (dalek `verify_batch`, {GROUPED_BATCH}/batch), one core"),
        fmt_rate(dalek_large),
        "—",
        "—".into(),
        "",
    );
    t.row(
        "Ed25519 batch verify, one core (limit: the faster of the two)",
        fmt_rate(batch_verify_1core),
        "—",
        "—".into(),
        "",
    );
    t.row(
        &format!("evl's batch equation, one key per term ({GROUPED_BATCH}/batch), one core"),
        fmt_rate(grouped_1core),
        "one-core batch verify (limit)",
        format!("{:.2}×", grouped_1core / batch_verify_1core),
        "",
    );
    t.row(
        "Ed25519 verify_strict, one core",
        fmt_rate(verify_strict_1core),
        "one-core batch verify",
        format!("{:.2}×", verify_strict_1core / batch_verify_1core),
        "",
    );
    Limits {
        sign_1core,
        sign_all,
        batch_verify_1core,
        grouped_1core,
        verify_strict_1core,
    }
}

struct Bulk {
    path: PathBuf,
    size: u64,
}

/// Builds the bulk ledger with `append_batch` in durable batches, reporting rates at each
/// decade and the per-append cost of the batch ending there.
fn bulk(t: &mut Table, o: &Opts, l: &Limits, work: &Path) -> Bulk {
    eprintln!(
        "bulk append: {} entries in durable batches of {}",
        o.max, o.batch
    );
    let path = work.join("bulk.evl");
    let key = bench_key();
    let ledger = init_ledger(&path, &key);
    let mut done = 0u64; // artifacts appended (the genesis entry is extra)
    let mut total = Duration::ZERO;
    let mut per_append: Vec<(u64, f64)> = Vec::new();
    let mut marks = vec![];
    let mut m = 10_000u64;
    while m <= o.max {
        marks.push(m);
        m *= 10;
    }
    if marks.last() != Some(&o.max) {
        marks.push(o.max);
    }
    let mut last_mark = 0;
    let mut last_batch_n = o.batch;
    for &mark in &marks {
        let start_total = total;
        let start_done = done;
        let mut last_batch = (0u64, Duration::ZERO);
        while done < mark {
            let n = o.batch.min(mark - done);
            let d = drafts(done, n);
            let t0 = Instant::now();
            ledger.append_batch(d, &key, None).expect("append_batch");
            let dt = t0.elapsed();
            total += dt;
            done += n;
            last_batch = (n, dt);
            if done.is_multiple_of((o.max / 20).max(o.batch)) {
                eprintln!(
                    "    {done} entries, {:.0}/s so far",
                    rate(done as f64, total)
                );
            }
        }
        let us = last_batch.1.as_secs_f64() * 1e6 / last_batch.0 as f64;
        last_batch_n = last_batch.0;
        per_append.push((mark, us));
        let span_rate = rate((done - start_done) as f64, total - start_total);
        let overall = rate(done as f64, total);
        t.row(
            &format!("bulk append_batch, {} → {} entries", last_mark, mark),
            fmt_rate(span_rate),
            "one-core sign rate",
            format!("{:.2}×", span_rate / l.sign_1core),
            &format!("≥ 0.8× ({})", verdict(span_rate >= 0.8 * l.sign_1core)),
        );
        if last_mark != 0 {
            t.row(
                &format!("bulk append_batch, overall 0 → {mark}"),
                fmt_rate(overall),
                "one-core sign rate",
                format!("{:.2}×", overall / l.sign_1core),
                &format!("≥ 0.8× ({})", verdict(overall >= 0.8 * l.sign_1core)),
            );
        }
        if mark == 100_000 || mark == o.max {
            let bytes = du(&path);
            t.row(
                &format!("bytes on disk per entry at {mark} (du of the ledger dir)"),
                format!("{:.0} B", bytes as f64 / (done + 1) as f64),
                "artifact + stored entry bytes",
                format!(
                    "{:.2}×",
                    bytes as f64 / (done + 1) as f64 / raw_bytes_per_entry(&ledger, done) as f64
                ),
                "",
            );
        }
        last_mark = mark;
    }
    let first = per_append[0].1;
    for &(mark, us) in &per_append {
        t.row(
            &format!("per-append cost, batch of {} ending at {mark}", o.batch),
            format!("{us:.1} µs"),
            &format!("batch ending at {}", per_append[0].0),
            format!("{:.2}×", us / first),
            if mark == o.max && mark >= 1_000_000 {
                if us / first <= 1.2 {
                    "≤ 1.2× (met)"
                } else {
                    "≤ 1.2× (**missed**)"
                }
            } else {
                ""
            },
        );
    }
    // Phases of the last batch: signing (redone here on an equal batch that is not appended,
    // the way append_batch signs: encode, BLAKE3 id, sign, on all cores) versus the rest
    // (registry and duplicate checks, Merkle hashes, log write, fdatasync, index files) by difference.
    let genesis = ledger.genesis_id().expect("genesis");
    let signer = key.public().id();
    let d = drafts(done, last_batch_n);
    let t0 = Instant::now();
    let signed: Vec<Entry> = d
        .into_par_iter()
        .map(|d| {
            let body = UnsignedEntry {
                format: ENTRY_FORMAT,
                ledger: genesis,
                signer,
                claimed_at: d.claimed_at,
                payload: d.payload,
            };
            Entry::sign(body, &key)
        })
        .collect();
    let sign_us = t0.elapsed().as_secs_f64() * 1e6 / last_batch_n as f64;
    drop(signed);
    let whole_us = per_append.last().expect("one mark").1;
    t.row(
        &format!("  phase, batch ending at {done}: encode + id + sign (all cores), per entry"),
        format!("{sign_us:.1} µs"),
        "whole append",
        format!("{:.2}", sign_us / whole_us),
        "",
    );
    t.row(
        &format!(
            "  phase, batch ending at {done}: checks + Merkle + log write + fdatasync + index (difference)"
        ),
        format!("{:.1} µs", whole_us - sign_us),
        "whole append",
        format!("{:.2}", (whole_us - sign_us) / whole_us),
        "",
    );
    let _ = l.sign_all;
    let size = ledger.size().expect("size");
    drop(ledger);
    Bulk { path, size }
}

/// Artifact bytes plus stored entry bytes of entry `index`, the payload a ledger must keep.
fn raw_bytes_per_entry(ledger: &Ledger, index: u64) -> usize {
    ledger.entry_bytes(index).expect("entry").len() + artifact_bytes(index).len()
}

fn proofs(t: &mut Table, b: &Bulk) {
    eprintln!("proofs on the stored tree of {} entries", b.size);
    let ledger = Ledger::open(&b.path, &OpenOptions::default()).expect("open");
    let mut n = 1_000u64;
    while n <= b.size {
        let root = ledger.root(n).expect("root");
        let k = 2_000u64;
        let idx: Vec<u64> = (0..k).map(|i| (i * 7_919 + 13) % n).collect();
        let mut times = Vec::with_capacity(k as usize);
        let mut len = 0;
        for &i in &idx {
            let t0 = Instant::now();
            let p = ledger.prove_inclusion(i, n).expect("inclusion proof");
            times.push(t0.elapsed());
            len = len.max(p.len());
        }
        // Correctness spot check (not a timing assertion).
        let i = idx[1];
        let leaf = evl::merkle::leaf_hash(&ledger.entry_bytes(i).expect("entry"));
        let p = ledger.prove_inclusion(i, n).expect("proof");
        assert!(evl::merkle::check_inclusion(&p, n, root, i, leaf));
        let med = median(&mut times);
        let p99 = pct(&mut times, 0.99);
        let target = if n >= 1_000_000 {
            format!("< 100 µs ({})", verdict(med < Duration::from_micros(100)))
        } else {
            String::new()
        };
        t.row(
            &format!("inclusion proof at {n} (median; p99 {})", fmt_dur(p99)),
            fmt_dur(med),
            "proof size",
            format!("{} hashes, {} B", len, len * 32),
            &target,
        );
        let mut times = Vec::with_capacity(k as usize);
        let mut len = 0;
        for i in 0..k {
            let old = 1 + (i * 7_919 + 13) % (n - 1);
            let t0 = Instant::now();
            let p = ledger.prove_consistency(old, n).expect("consistency proof");
            times.push(t0.elapsed());
            len = len.max(p.len());
        }
        let med = median(&mut times);
        t.row(
            &format!("consistency proof to {n} (median, random old size)"),
            fmt_dur(med),
            "proof size (max)",
            format!("{} hashes, {} B", len, len * 32),
            "",
        );
        n *= 10;
    }
}

fn verify(t: &mut Table, l: &Limits, b: &Bulk, evl_bin: &Path) {
    eprintln!("verify: {} entries", b.size);
    let ledger = Ledger::open(&b.path, &OpenOptions::default()).expect("open");
    let t0 = Instant::now();
    let report = evl::verify::verify(&ledger, &Default::default()).expect("verify");
    let dt = t0.elapsed();
    assert!(report.ok(), "the bulk ledger verifies");
    drop(ledger);
    let r = rate(b.size as f64, dt);
    t.row(
        &format!("full verify (library), {} entries, {}", b.size, fmt_dur(dt)),
        fmt_rate(r),
        "one-core batch-verify rate",
        format!("{:.2}×", r / l.batch_verify_1core),
        &format!("≥ 1.5× ({})", verdict(r >= 1.5 * l.batch_verify_1core)),
    );
    t.row(
        "  the same, against evl's batch equation on one core",
        fmt_rate(r),
        "evl's batch equation, one core",
        format!("{:.2}×", r / l.grouped_1core),
        "",
    );
    let t0 = Instant::now();
    let ok = Command::new(evl_bin)
        // The auditor state `evl verify` keeps goes beside the ledger, not in the home directory.
        .env("EVL_STATE_DIR", b.path.with_extension("auditor-state"))
        .args(["verify", "--ledger"])
        .arg(&b.path)
        .stdout(Stdio::null())
        .status()
        .expect("run evl verify")
        .success();
    let dt = t0.elapsed();
    assert!(ok, "evl verify succeeds on the bulk ledger");
    let r = rate(b.size as f64, dt);
    t.row(
        &format!("`evl verify` (CLI), {} entries, {}", b.size, fmt_dur(dt)),
        fmt_rate(r),
        "one-core batch-verify rate",
        format!("{:.2}×", r / l.batch_verify_1core),
        &format!("≥ 1.5× ({})", verdict(r >= 1.5 * l.batch_verify_1core)),
    );
    let _ = l.verify_strict_1core;
}

/// Writes back every dirty page of the file system holding `dir`, untimed, so the operation
/// timed next does not pay for another's writeback: on ext4 an `fsync` also flushes other
/// files' pending data, and git's defaults leave loose objects unsynced.
fn settle(dir: &Path) {
    use std::os::fd::AsRawFd;
    let d = fs::File::open(dir).expect("open dir");
    // SAFETY: syncfs takes any open file descriptor and touches no memory of ours.
    let rc = unsafe { libc::syncfs(d.as_raw_fd()) };
    assert_eq!(rc, 0, "syncfs failed");
}

fn run(cmd: &mut Command) -> Duration {
    let t0 = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("spawn");
    let dt = t0.elapsed();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    dt
}

fn evl_cmd(evl_bin: &Path, ledger: &Path) -> Command {
    let mut c = Command::new(evl_bin);
    c.env_remove("EVL_KEY")
        .env("EVL_LEDGER", ledger)
        .env("EVL_STATE_DIR", ledger.with_extension("auditor-state"));
    c
}

/// Appends `n` evidence files one `evl add` process each; returns each item's time (file
/// write + process start to exit, durable).
fn evl_adds(
    evl_bin: &Path,
    ledger: &Path,
    key: &Path,
    files: &Path,
    from: u64,
    n: usize,
) -> Vec<Duration> {
    (0..n as u64)
        .map(|i| {
            let f = files.join(format!("inventory-{}.csv", from + i));
            let t0 = Instant::now();
            fs::write(&f, artifact_bytes(from + i)).expect("write item");
            run(evl_cmd(evl_bin, ledger)
                .args([
                    "add",
                    "--kind",
                    "inventory-export",
                    "--tier",
                    "operational",
                    "--namespace",
                    "payments",
                    "--key",
                ])
                .arg(key)
                .arg(&f));
            t0.elapsed()
        })
        .collect()
}

fn write_key(path: &Path, key: &SecretKey) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, key.to_pkcs8_pem()).expect("write key");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod key");
}

struct CliFigures {
    verify_per_entry: Duration,
    start_median: Duration,
    /// Ledger A (5,000+ entries), the key file and the items directory, for more adds.
    ledger: PathBuf,
    key_file: PathBuf,
    files: PathBuf,
}

/// Single appends through the CLI on a ledger of a few thousand entries, and the peer ledger
/// of exactly `peer` items for the verify comparison.
fn cli(t: &mut Table, o: &Opts, work: &Path, evl_bin: &Path) -> CliFigures {
    eprintln!("CLI: single appends, {} runs", o.peer);
    let key = bench_key();
    let key_file = work.join("bench.key");
    write_key(&key_file, &key);
    let files = work.join("cli-items");
    fs::create_dir_all(&files).expect("mkdir");

    // Ledger A: 5,000 entries, then one `evl add` / `evl annotate` per process.
    let a = work.join("cli-a.evl");
    let prefill = 5_000u64;
    {
        let l = init_ledger(&a, &key);
        l.append_batch(drafts(10_000_000, prefill), &key, None)
            .expect("prefill");
    }
    let mut adds = evl_adds(evl_bin, &a, &key_file, &files, 20_000_000, o.peer);
    let add_med = median(&mut adds);
    let add_p90 = pct(&mut adds, 0.9);
    let genesis = Ledger::open(&a, &OpenOptions::default())
        .expect("open")
        .genesis_id()
        .expect("genesis");
    let mut notes: Vec<Duration> = (0..o.peer.min(100))
        .map(|i| {
            run(evl_cmd(evl_bin, &a)
                .args(["annotate", &genesis.to_hex(), "--kind", "note", "--text"])
                .arg(format!("reviewed inventory batch {i}: sidecars at 1.22.3"))
                .arg("--key")
                .arg(&key_file))
        })
        .collect();
    let note_med = median(&mut notes);
    let mut starts: Vec<Duration> = (0..30)
        .map(|_| run(Command::new(evl_bin).arg("--version")))
        .collect();
    let start_med = median(&mut starts);
    t.row(
        &format!(
            "`evl add` one file, ledger of {prefill}+ entries (median of {}; p90 {})",
            o.peer,
            fmt_dur(add_p90)
        ),
        fmt_dur(add_med),
        "`evl --version` (process start)",
        format!("{:.1}×", add_med.as_secs_f64() / start_med.as_secs_f64()),
        "",
    );
    t.row(
        &format!(
            "`evl annotate`, ledger of {prefill}+ entries (median of {})",
            notes.len()
        ),
        fmt_dur(note_med),
        "`evl add`",
        format!("{:.2}×", note_med.as_secs_f64() / add_med.as_secs_f64()),
        "",
    );

    // Ledger B: exactly `peer` items, one `evl add` each, then `evl verify` through the CLI.
    let b = work.join("cli-b.evl");
    drop(init_ledger(&b, &key));
    let _ = evl_adds(evl_bin, &b, &key_file, &files, 30_000_000, o.peer);
    let mut v: Vec<Duration> = (0..7)
        .map(|_| run(evl_cmd(evl_bin, &b).arg("verify")))
        .collect();
    let v_med = median(&mut v);
    CliFigures {
        verify_per_entry: v_med / o.peer as u32,
        start_median: start_med,
        ledger: a,
        key_file,
        files,
    }
}

/// The peer: one SSH-signed git commit per evidence item, checked with `git verify-commit`.
fn peer(t: &mut Table, o: &Opts, work: &Path, c: &CliFigures, evl_bin: &Path) {
    eprintln!(
        "peer: {} SSH-signed git commits, default and durable, each beside one `evl add`",
        o.peer
    );
    let key = work.join("peer_ed25519");
    run(Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "bench@example.org",
            "-f",
        ])
        .arg(&key));
    let public = fs::read_to_string(key.with_extension("pub")).expect("pub");
    let allowed = work.join("allowed_signers");
    fs::write(
        &allowed,
        format!("bench@example.org namespaces=\"git\" {public}"),
    )
    .expect("allowed");
    // Two repositories: git's defaults (which do not fsync loose objects, so a commit is not
    // durable when it returns), and with every file fsynced, as `evl add` makes its append.
    let git_in = |repo: &Path, args: &[&str]| {
        let mut c = Command::new("git");
        c.current_dir(repo)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args(args);
        c
    };
    let repo = work.join("peer-git");
    let durable = work.join("peer-git-durable");
    for (r, fsync) in [(&repo, false), (&durable, true)] {
        fs::create_dir_all(r.join("items")).expect("mkdir");
        run(&mut git_in(r, &["init", "-q"]));
        let mut config = vec![
            ("user.name", "bench"),
            ("user.email", "bench@example.org"),
            ("gpg.format", "ssh"),
            ("user.signingkey", key.to_str().expect("utf-8 path")),
            (
                "gpg.ssh.allowedSignersFile",
                allowed.to_str().expect("utf-8 path"),
            ),
        ];
        if fsync {
            config.extend([("core.fsync", "all"), ("core.fsyncMethod", "fsync")]);
        }
        for (k, v) in config {
            run(&mut git_in(r, &["config", k, v]));
        }
    }
    let commit = |r: &Path, i: u64| {
        let name = format!("items/inventory-{i}.csv");
        let t0 = Instant::now();
        fs::write(r.join(&name), artifact_bytes(i)).expect("write item");
        run(&mut git_in(r, &["add", &name]));
        run(&mut git_in(
            r,
            &[
                "commit",
                "-S",
                "-q",
                "-m",
                &format!("evidence: workload inventory {i}"),
            ],
        ));
        t0.elapsed()
    };
    // Interleaved, so a change in the machine's load affects both sides alike, and each
    // timed operation starts with no other's data waiting to be written back.
    let (mut commits, mut durable_commits, mut adds) = (vec![], vec![], vec![]);
    for i in 0..o.peer as u64 {
        settle(work);
        commits.push(commit(&repo, i));
        settle(work);
        adds.extend(evl_adds(
            evl_bin,
            &c.ledger,
            &c.key_file,
            &c.files,
            40_000_000 + i,
            1,
        ));
        settle(work);
        durable_commits.push(commit(&durable, i));
    }
    // The limits of a durable single append on this machine: starting a process, and
    // appending a few hundred bytes to a file and waiting for fdatasync.
    let mut spawns: Vec<Duration> = (0..100).map(|_| run(&mut Command::new("true"))).collect();
    let spawn_med = median(&mut spawns);
    let probe = work.join("fdatasync-probe");
    let f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&probe)
        .expect("probe file");
    let mut syncs: Vec<Duration> = (0..100)
        .map(|i| {
            settle(work);
            let t0 = Instant::now();
            std::io::Write::write_all(&mut &f, &artifact_bytes(i)).expect("write");
            f.sync_data().expect("fdatasync");
            t0.elapsed()
        })
        .collect();
    let sync_med = median(&mut syncs);
    let commit_med = median(&mut commits);
    let durable_med = median(&mut durable_commits);
    let add_med = median(&mut adds);
    let git = |args: &[&str]| git_in(&repo, args);
    let shas = git(&["rev-list", "HEAD"])
        .output()
        .expect("rev-list")
        .stdout;
    let shas: Vec<String> = String::from_utf8(shas)
        .expect("utf-8")
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(shas.len(), o.peer);
    let t0 = Instant::now();
    for s in &shas {
        run(&mut git(&["verify-commit", s]));
    }
    let verify_each = t0.elapsed() / o.peer as u32;
    let t0 = Instant::now();
    let log = git(&["log", "--format=%G?"]).output().expect("git log");
    let log_each = t0.elapsed() / o.peer as u32;
    let good = String::from_utf8_lossy(&log.stdout)
        .lines()
        .filter(|l| *l == "G")
        .count();
    assert_eq!(good, o.peer, "every peer commit has a good signature");

    t.row(
        "peer: `git add` + `git commit -S` (ssh ed25519), git defaults, per item, median",
        fmt_dur(commit_med),
        "",
        "".into(),
        "",
    );
    t.row(
        "peer: the same with `core.fsync=all` (durable, as `evl add` is), median",
        fmt_dur(durable_med),
        "git defaults",
        format!(
            "{:.2}×",
            durable_med.as_secs_f64() / commit_med.as_secs_f64()
        ),
        "",
    );
    t.row(
        "limit: start a process (`true`), median",
        fmt_dur(spawn_med),
        "",
        "".into(),
        "",
    );
    t.row(
        "limit: append ~220 B to a file and fdatasync, median",
        fmt_dur(sync_med),
        "",
        "".into(),
        "",
    );
    let r = commit_med.as_secs_f64() / add_med.as_secs_f64();
    t.row(
        &format!(
            "evl: `evl add` per item, interleaved with the peer (median of {})",
            o.peer
        ),
        fmt_dur(add_med),
        "git defaults per item",
        format!("{r:.1}× faster"),
        &format!("≥ 10× ({})", verdict(r >= 10.0)),
    );
    let r = durable_med.as_secs_f64() / add_med.as_secs_f64();
    t.row(
        "evl: `evl add` per item vs durable git",
        fmt_dur(add_med),
        "durable git per item",
        format!("{r:.1}× faster"),
        "",
    );
    t.row(
        "evl: `evl add` per item vs the limits (process start + fdatasync)",
        fmt_dur(add_med),
        "start + fdatasync",
        format!(
            "{:.2}×",
            add_med.as_secs_f64() / (spawn_med + sync_med).as_secs_f64()
        ),
        "",
    );
    t.row(
        &format!("peer: `git verify-commit` per commit ({} commits)", o.peer),
        fmt_dur(verify_each),
        "",
        "".into(),
        "",
    );
    t.row(
        "peer: `git log --format=%G?` (one process) per commit",
        fmt_dur(log_each),
        "",
        "".into(),
        "",
    );
    let r = verify_each.as_secs_f64() / c.verify_per_entry.as_secs_f64();
    t.row(
        &format!(
            "evl: `evl verify` of {} items (CLI, median of 7) per item",
            o.peer
        ),
        fmt_dur(c.verify_per_entry),
        "git verify-commit per item",
        format!("{r:.0}× faster"),
        &format!("≥ 100× ({})", verdict(r >= 100.0)),
    );
    let r = log_each.as_secs_f64() / c.verify_per_entry.as_secs_f64();
    t.row(
        "evl: `evl verify` per item vs `git log %G?` per commit",
        fmt_dur(c.verify_per_entry),
        "git log %G? per item",
        format!("{r:.0}× faster"),
        "",
    );
}

/// Artifacts in the basis of the replayed disposition.
const BASIS: usize = 1_000;
/// The claimed, captured and as-of times of the replay packet (RFC 3339, after `AT`).
const REPLAY_AT: &str = "2026-04-01T00:00:00Z";
const REPLAY_AS_OF: &str = "2026-04-10T00:00:00Z";
/// Timed runs of each CLI verb in the replay section.
const REPLAY_RUNS: usize = 15;

/// Rollback drill `i` (evl-rollback-drill/v1, docs/GATES.md), ~300 bytes, covering the
/// payments namespace on its own path.
fn drill_bytes(i: usize) -> Vec<u8> {
    format!(
        "format = \"evl-rollback-drill/v1\"\n\
         path = \"rollback-path-{i:04}\"\n\
         performed_at = 2026-04-01T00:00:00Z\n\
         outcome = \"pass\"\n\
         namespaces = [\"payments\"]\n\
         runbook = \"RB-BENCH-{i:04} reversal of rollout step {i}\"\n\
         performed_by = \"payments on-call (staging-prod-mirror)\"\n\
         notes = \"Reversal propagated to all sidecars in 21 s; no 5xx spike above 0.2 %.\"\n"
    )
    .into_bytes()
}

/// A gate with one `[[evidence]]` rule requiring a passing, fresh drill on each of the
/// `BASIS` paths: every artifact of the basis is parsed and needed for PROCEED.
fn replay_gate() -> String {
    let paths: Vec<String> = (0..BASIS)
        .map(|i| format!("\"rollback-path-{i:04}\""))
        .collect();
    format!(
        "format = \"evl-gate/v1\"\n\
         id = \"bench/replay-{BASIS}-drills\"\n\
         title = \"bench-e2e: {BASIS} rollback paths, each needing a passing drill\"\n\n\
         [[evidence]]\n\
         name = \"rollback drills\"\n\
         kind = \"rollback-drill\"\n\
         min_tier = \"authoritative\"\n\
         max_age_days = 14\n\
         cover = \"paths\"\n\
         paths = [{}]\n\
         require_pass = true\n\
         stale_code = \"rollback-drill-stale\"\n\
         missing_code = \"rollback-drill-missing\"\n",
        paths.join(", ")
    )
}

/// Runs `cmd`, asserting success; returns (time, stdout, stderr).
fn run_out(cmd: &mut Command) -> (Duration, String, String) {
    let t0 = Instant::now();
    let out = cmd.output().expect("spawn");
    let dt = t0.elapsed();
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{cmd:?} failed: {se}");
    (dt, so, se)
}

/// The ids of `evl add --json` output, in file order.
fn added_ids(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).expect("evl add --json");
    v.as_array()
        .expect("an array")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect()
}

/// The word after `marker` in `text` (an entry id printed by the CLI).
fn word_after(text: &str, marker: &str) -> String {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("no '{marker}' in: {text}"));
    text[at + marker.len()..]
        .split_whitespace()
        .next()
        .expect("a word")
        .to_string()
}

/// What building the replay packet through the CLI produced.
struct ReplaySetup {
    add_all: Duration,
    packet: String,
    disposition: String,
}

/// On the ledger at `ledger` (signed by the bench key): `evl add` the `BASIS` drill files in
/// one call, `evl add` the gate, `evl packet create` pinning all of them, and
/// `evl evaluate --record`.
fn replay_setup(evl_bin: &Path, ledger: &Path, key_file: &Path, files: &Path) -> ReplaySetup {
    let drills = files.join("drills");
    fs::create_dir_all(&drills).expect("mkdir");
    let paths: Vec<PathBuf> = (0..BASIS)
        .map(|i| {
            let f = drills.join(format!("drill-{i:04}.toml"));
            fs::write(&f, drill_bytes(i)).expect("write drill");
            f
        })
        .collect();
    let gate_file = files.join("gate.toml");
    fs::write(&gate_file, replay_gate()).expect("write gate");
    let add = |kind: &str, files: &[PathBuf]| {
        run_out(
            evl_cmd(evl_bin, ledger)
                .args(["add", "--json", "--kind", kind, "--tier", "authoritative"])
                .args(["--sealed", "--namespace", "payments", "--captured-at"])
                .args([REPLAY_AT, "--at", REPLAY_AT, "--key"])
                .arg(key_file)
                .args(files),
        )
    };
    let (add_all, out, _) = add("rollback-drill", &paths);
    let basis = added_ids(&out);
    assert_eq!(basis.len(), BASIS);
    let (_, out, _) = add("gate-definition", std::slice::from_ref(&gate_file));
    let gate = added_ids(&out).remove(0);
    let mut c = evl_cmd(evl_bin, ledger);
    c.args([
        "packet",
        "create",
        "--name",
        "Bench-Replay-Packet",
        "--revision",
        "1",
    ])
    .args(["--gate", &gate, "--checkpoint-at", "2026-04-20T00:00:00Z"])
    .args([
        "--workload",
        "payments/ledger-sync",
        "--workload",
        "payments/ledger-api",
    ]);
    for b in &basis {
        c.args(["--basis", b]);
    }
    c.args(["--at", REPLAY_AT, "--key"]).arg(key_file);
    let (_, out, _) = run_out(&mut c);
    let packet = word_after(&out, "packet ");
    let (_, out, _) = run_out(
        evl_cmd(evl_bin, ledger)
            .args(["evaluate", &packet, "--as-of", REPLAY_AS_OF, "--record"])
            .args(["--at", REPLAY_AS_OF, "--key"])
            .arg(key_file),
    );
    let disposition = word_after(&out, "recorded disposition ");
    ReplaySetup {
        add_all,
        packet,
        disposition,
    }
}

/// `REPLAY_RUNS` timed runs of `args` on `ledger` after one untimed run; (median, p90, min).
fn timed_runs(evl_bin: &Path, ledger: &Path, args: &[&str]) -> (Duration, Duration, Duration) {
    run(evl_cmd(evl_bin, ledger).args(args));
    let mut v: Vec<Duration> = (0..REPLAY_RUNS)
        .map(|_| run(evl_cmd(evl_bin, ledger).args(args)))
        .collect();
    let min = *v.iter().min().expect("runs");
    (median(&mut v), pct(&mut v, 0.9), min)
}

/// The replay target: a disposition whose basis has `BASIS` artifacts, replayed through the
/// CLI (process start to exit of the release `evl replay`), on a ledger holding just that
/// packet and again with the same packet appended to the bulk ledger.
fn replay(t: &mut Table, work: &Path, evl_bin: &Path, c: &CliFigures, b: &Bulk) {
    eprintln!("replay: a disposition with a {BASIS}-artifact basis");
    let key = bench_key();
    let key_file = work.join("replay.key");
    write_key(&key_file, &key);
    let files = work.join("replay-items");
    let r = work.join("replay.evl");
    drop(init_ledger(&r, &key));
    let s = replay_setup(evl_bin, &r, &key_file, &files);
    let size = Ledger::open(&r, &OpenOptions::default())
        .expect("open")
        .size()
        .expect("size");

    // The recorded disposition must be the intended one: PROCEED with every path covered,
    // so the timed replay evaluates the whole basis (a correctness check, not a timing one).
    {
        let ledger = Ledger::open(&r, &OpenOptions::default()).expect("open");
        let (_, e) = ledger.resolve_entry(&s.disposition).expect("disposition");
        let Payload::Disposition(rec) = e.body.payload else {
            panic!("not a disposition")
        };
        let doc = ledger.blob(&rec.document).expect("blob").expect("document");
        let d = evl::disposition::Disposition::from_bytes(&doc).expect("document");
        assert_eq!(d.verdict.name(), "proceed", "the replay packet proceeds");
        assert!(d.blockers.is_empty());
    }

    let (rp_med, rp_p90, rp_min) = timed_runs(evl_bin, &r, &["replay", &s.disposition]);
    let (ev_med, ..) = timed_runs(
        evl_bin,
        &r,
        &["evaluate", &s.packet, "--as-of", REPLAY_AS_OF],
    );
    let (show_med, ..) = timed_runs(evl_bin, &r, &["show", &s.disposition]);

    // The same work in-process, median of REPLAY_RUNS: open, then replay's two halves.
    let mut opens = Vec::new();
    let mut loads = Vec::new();
    let mut evals = Vec::new();
    let mut replays = Vec::new();
    for _ in 0..=REPLAY_RUNS {
        let t0 = Instant::now();
        let ledger = Ledger::open(&r, &OpenOptions::default()).expect("open");
        opens.push(t0.elapsed());
        let (_, e) = ledger.resolve_entry(&s.disposition).expect("disposition");
        let id = e.body.id();
        let Payload::Disposition(rec) = e.body.payload else {
            panic!("not a disposition")
        };
        let t0 = Instant::now();
        let rr = evl::replay::replay(&ledger, &id).expect("replay");
        replays.push(t0.elapsed());
        assert!(rr.matches, "the disposition replays");
        let t0 = Instant::now();
        let input = evl::evaluate::load_input(&ledger, &rec.packet).expect("load input");
        loads.push(t0.elapsed());
        let t0 = Instant::now();
        let d = evl::evaluate::evaluate(&input, rec.as_of).expect("evaluate");
        let _ = d.canonical_bytes();
        evals.push(t0.elapsed());
    }
    for v in [&mut opens, &mut loads, &mut evals, &mut replays] {
        v.remove(0); // the first, untimed warm-up
    }
    let (open_med, load_med, eval_med, lib_med) = (
        median(&mut opens),
        median(&mut loads),
        median(&mut evals),
        median(&mut replays),
    );

    let share = |d: Duration| format!("{:.2}", d.as_secs_f64() / rp_med.as_secs_f64());
    t.row(
        &format!(
            "`evl replay`, {BASIS}-artifact basis, ledger of {size} entries (median of {REPLAY_RUNS}; p90 {}, min {})",
            fmt_dur(rp_p90),
            fmt_dur(rp_min)
        ),
        fmt_dur(rp_med),
        "50 ms target",
        format!("{:.2}×", rp_med.as_secs_f64() / 0.050),
        &format!("< 50 ms ({})", verdict(rp_med < Duration::from_millis(50))),
    );
    t.row(
        &format!("  `evl evaluate` of the same packet (no --record; median of {REPLAY_RUNS})"),
        fmt_dur(ev_med),
        "`evl replay`",
        format!("{:.2}×", ev_med.as_secs_f64() / rp_med.as_secs_f64()),
        "",
    );
    t.row(
        "  split: `evl --version` (process start)",
        fmt_dur(c.start_median),
        "`evl replay`",
        share(c.start_median),
        "",
    );
    t.row(
        "  split: `evl show DISPOSITION` (process start + ledger open + one lookup)",
        fmt_dur(show_med),
        "`evl replay`",
        share(show_med),
        "",
    );
    t.row(
        "  split: replay beyond `evl show` (load basis + evaluate + compare; difference)",
        fmt_dur(rp_med.saturating_sub(show_med)),
        "`evl replay`",
        share(rp_med.saturating_sub(show_med)),
        "",
    );
    t.row(
        "  library: `Ledger::open` (median)",
        fmt_dur(open_med),
        "`evl replay`",
        share(open_med),
        "",
    );
    t.row(
        &format!("  library: `evaluate::load_input` ({BASIS} entries + blobs, BLAKE3-checked)"),
        fmt_dur(load_med),
        "`evl replay`",
        share(load_med),
        "",
    );
    t.row(
        "  library: `evaluate::evaluate` + canonical bytes",
        fmt_dur(eval_med),
        "`evl replay`",
        share(eval_med),
        "",
    );
    t.row(
        "  library: `replay::replay` (load + evaluate + compare), open ledger",
        fmt_dur(lib_med),
        "`evl replay`",
        share(lib_med),
        "",
    );
    t.row(
        &format!("`evl add` of {BASIS} drill files in one call (one durable batch)"),
        fmt_dur(s.add_all),
        "per file",
        fmt_dur(s.add_all / BASIS as u32),
        "",
    );

    // The same packet on the bulk ledger: a real ledger holds more than one packet's basis.
    eprintln!(
        "replay: the same packet appended to the {}-entry ledger",
        b.size
    );
    let s = replay_setup(evl_bin, &b.path, &key_file, &work.join("replay-items-bulk"));
    let (rp_med, rp_p90, _) = timed_runs(evl_bin, &b.path, &["replay", &s.disposition]);
    let (show_med, ..) = timed_runs(evl_bin, &b.path, &["show", &s.disposition]);
    t.row(
        &format!(
            "`evl replay`, {BASIS}-artifact basis, bulk ledger of {}+ entries (median of {REPLAY_RUNS}; p90 {})",
            b.size,
            fmt_dur(rp_p90)
        ),
        fmt_dur(rp_med),
        "50 ms target",
        format!("{:.2}×", rp_med.as_secs_f64() / 0.050),
        &format!("< 50 ms ({})", verdict(rp_med < Duration::from_millis(50))),
    );
    t.row(
        "  split: `evl show DISPOSITION` on the bulk ledger (process start + open + lookup)",
        fmt_dur(show_med),
        "`evl replay` on the bulk ledger",
        format!("{:.2}", show_med.as_secs_f64() / rp_med.as_secs_f64()),
        "",
    );
}

/// `/proc/loadavg`'s 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn machine(load_start: &str, evl_bin: &Path) {
    let sh = |c: &str| {
        Command::new("sh")
            .args(["-c", c])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    println!(
        "machine: nproc {}; {}",
        sh("nproc"),
        sh("lscpu | grep 'Model name' | sed 's/  */ /g'")
    );
    println!(
        "toolchain: {}; date {}",
        sh("rustc --version"),
        sh("date -u +%Y-%m-%dT%H:%MZ")
    );
    println!(
        "load average (1, 5, 15 min): {load_start} at the start, {} at the end",
        loadavg()
    );
    println!(
        "evl commit: {}",
        sh("git -C \"$CARGO_MANIFEST_DIR\" describe --always --dirty 2>/dev/null || echo unknown")
    );
    // Which build the CLI figures are of (scripts/build-release.sh: static musl on Linux).
    let file = Command::new("file")
        .arg("-b")
        .arg(evl_bin)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let kind: Vec<&str> = file
        .split(", ")
        .filter(|p| p.starts_with("ELF") || p.contains("linked"))
        .collect();
    println!("evl binary: {} ({})", evl_bin.display(), kind.join(", "));
    println!();
}

fn main() {
    let o = opts();
    let evl_bin = std::env::var_os("EVL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let me = std::env::current_exe().expect("current exe");
            me.parent()
                .and_then(Path::parent)
                .expect("target dir")
                .join("evl")
        });
    assert!(
        evl_bin.exists(),
        "{} is missing: run `cargo build --release --bin evl` (scripts/bench-e2e.sh does)",
        evl_bin.display()
    );
    let mut tmp = None;
    let work = match &o.dir {
        Some(d) => {
            fs::create_dir_all(d).expect("work dir");
            d.clone()
        }
        None => {
            let d = tempfile::Builder::new()
                .prefix("evl-bench-")
                .tempdir()
                .expect("temp dir");
            let p = d.path().to_path_buf();
            tmp = Some(d);
            p
        }
    };
    let load_start = loadavg();
    eprintln!("load average at the start: {load_start}");
    let t_start = Instant::now();
    let mut t = Table::default();
    let l = limits(&mut t);
    let b = bulk(&mut t, &o, &l, &work);
    if o.bulk_only {
        t.print();
        return;
    }
    proofs(&mut t, &b);
    verify(&mut t, &l, &b, &evl_bin);
    let c = cli(&mut t, &o, &work, &evl_bin);
    peer(&mut t, &o, &work, &c, &evl_bin);
    replay(&mut t, &work, &evl_bin, &c, &b);
    eprintln!("total {:.0} s", t_start.elapsed().as_secs_f64());
    println!();
    machine(&load_start, &evl_bin);
    t.print();
    if o.keep {
        if let Some(d) = tmp {
            let _ = d.keep();
        }
        eprintln!("kept {}", work.display());
    }
}
