//! Publish throughput to a real S3 server on loopback (SeaweedFS `weed mini`, installed and
//! started as the tests do, tests/common/parts.rs), incremental publish, and `evl verify` from
//! the bucket against `evl verify` on the ledger directory, and a read from the bucket without
//! and with a warm local cache
//! (docs/PERFORMANCE.md §"Publish and remote verify").
//!
//! Run: `cargo build --release && cargo run --release --example bench-publish -- [--n N]
//! [--more M] [--runs R] [--evl PATH]` (default: 100,000 entries, +1,000, 3 runs of each
//! verify, `target/release/evl`). Figures are printed, never asserted.

#[path = "../../tests/common/parts.rs"]
#[allow(dead_code)]
mod parts;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use evl::entry::{Acknowledgment, KeyGrant, Payload};
use evl::keys::{Role, SecretKey};
use evl::store::{Draft, Ledger};
use evl::timestamp::Timestamp;

const ORIGIN: &str = "example.org/bench-publish";

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Appends `n` acknowledgments signed by `key`, in batches.
fn grow(ledger: &Ledger, key: &SecretKey, n: usize, tag: &str) {
    let at = Timestamp::now();
    let mut left = n;
    let mut i = 0;
    while left > 0 {
        let k = left.min(5000);
        let drafts = (i..i + k)
            .map(|j| Draft {
                payload: Payload::Acknowledgment(Acknowledgment {
                    topic: "bench-publish".into(),
                    subject: None,
                    namespace: Some("payments".into()),
                    statement: format!("acknowledgment {tag} {j}"),
                }),
                claimed_at: at,
                blobs: vec![],
            })
            .collect();
        ledger.append_batch(drafts, key, Some(at)).unwrap();
        i += k;
        left -= k;
    }
}

/// Runs `evl ARGS` with `env`; the time it took and its stdout. Exits on failure.
fn evl(bin: &Path, env: &[(String, String)], args: &[&str]) -> (Duration, String) {
    let t = Instant::now();
    let o = Command::new(bin)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let took = t.elapsed();
    if !o.status.success() {
        eprintln!(
            "bench-publish: evl {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        std::process::exit(1);
    }
    (took, String::from_utf8_lossy(&o.stdout).into_owned())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let n: usize = arg("--n").map_or(100_000, |v| v.parse().unwrap());
    let more: usize = arg("--more").map_or(1_000, |v| v.parse().unwrap());
    let runs: usize = arg("--runs").map_or(3, |v| v.parse().unwrap());
    let bin = arg("--evl")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/evl"));
    let dir = tempfile::tempdir().unwrap();
    let s3 = parts::S3Server::start();
    let mut env: Vec<(String, String)> = s3
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.push((
        "XDG_STATE_HOME".into(),
        dir.path().join("state").display().to_string(),
    ));
    let cache = dir.path().join("cache");
    env.push(("XDG_CACHE_HOME".into(), cache.display().to_string()));

    // The ledger: genesis, one signer, N-2 acknowledgments, checkpointed by the admin.
    let admin = SecretKey::generate();
    let signer = SecretKey::generate();
    let grant = |name: &str, k: &SecretKey, role: Role| KeyGrant {
        name: name.into(),
        public_key: k.public(),
        roles: vec![role],
    };
    let ledger_dir = dir.path().join("ledger");
    let t = Instant::now();
    let ledger = Ledger::init(
        &ledger_dir,
        ORIGIN,
        vec![grant("admin", &admin, Role::Admin)],
        &admin,
        Timestamp::now(),
    )
    .unwrap();
    ledger
        .append(
            Draft {
                payload: Payload::KeyAdd(grant("sec", &signer, Role::SecuritySigner)),
                claimed_at: Timestamp::now(),
                blobs: vec![],
            },
            &admin,
        )
        .unwrap();
    grow(&ledger, &signer, n.saturating_sub(2), "first");
    let genesis = ledger.genesis_id().unwrap().to_string();
    evl::keys::write_key_pair(dir.path(), "admin", &admin, "").unwrap();
    println!(
        "ledger: {} entries built in {:.1} s; evl = {}",
        ledger.size().unwrap(),
        t.elapsed().as_secs_f64(),
        bin.display()
    );
    let l = ledger_dir.display().to_string();
    let key = dir.path().join("admin.key").display().to_string();
    let to = format!("s3://{}/bench", s3.bucket);

    let publish = |label: &str| {
        let (took, out) = evl(
            &bin,
            &env,
            &[
                "--ledger", &l, "publish", "--to", &to, "--key", &key, "--json",
            ],
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let secs = v["seconds"].as_f64().unwrap();
        let objects = v["tiles"].as_u64().unwrap() + v["bundles"].as_u64().unwrap();
        let mb = v["bytes"].as_f64().unwrap() / 1e6;
        println!(
            "{label}: size {} (was {}): {} tiles + {} bundles, {} objects created, {:.2} MB in {:.2} s ({:.2} s with start-up): {:.0} tiles/s, {:.1} MB/s",
            v["size"],
            v["previous"],
            v["tiles"],
            v["bundles"],
            v["created"],
            mb,
            secs,
            took.as_secs_f64(),
            objects as f64 / secs,
            mb / secs
        );
    };
    publish("publish");
    grow(&ledger, &signer, more, "more");
    drop(ledger);
    publish("incremental publish");

    let verify = |ledger: &str, extra: &[(String, String)]| {
        let mut e = env.clone();
        e.extend(extra.iter().cloned());
        evl(
            &bin,
            &e,
            &[
                "--ledger",
                ledger,
                "verify",
                "--genesis",
                &genesis,
                "--no-state",
            ],
        )
        .0
    };
    // `evl verify` audits what is published: it fetches every object, cache or not.
    let local: Vec<Duration> = (0..runs).map(|_| verify(&l, &[])).collect();
    let remote: Vec<Duration> = (0..runs).map(|_| verify(&to, &[])).collect();
    let (local, remote) = (median(local), median(remote));
    println!(
        "verify, median of {runs}: local directory {:.2} s; from the bucket {:.2} s ({:.2}x local)",
        local.as_secs_f64(),
        remote.as_secs_f64(),
        remote.as_secs_f64() / local.as_secs_f64(),
    );
    // Other reading verbs read immutable objects from the local cache (docs/PUBLISH.md
    // §"The local cache"): `evl log --since SIZE-1`, without and with a warm cache.
    evl(
        &bin,
        &env,
        &["--ledger", &to, "verify", "--genesis", &genesis],
    ); // records the auditor state the other verbs need, and fills the cache
    let since = (n + more - 1).to_string();
    let read = |ledger: &str, extra: &[(String, String)]| {
        let mut e = env.clone();
        e.extend(extra.iter().cloned());
        evl(&bin, &e, &["--ledger", ledger, "log", "--since", &since]).0
    };
    let no_cache = [("EVL_NO_CACHE".to_string(), "1".to_string())];
    let local_read: Vec<Duration> = (0..runs).map(|_| read(&l, &[])).collect();
    let cold: Vec<Duration> = (0..runs).map(|_| read(&to, &no_cache)).collect();
    let warm: Vec<Duration> = (0..runs).map(|_| read(&to, &[])).collect();
    let (local_read, cold, warm) = (median(local_read), median(cold), median(warm));
    println!(
        "log --since {since}, median of {runs}: local directory {:.3} s; from the bucket without the cache {:.2} s; with a warm cache {:.2} s ({:.2}x the uncached read)",
        local_read.as_secs_f64(),
        cold.as_secs_f64(),
        warm.as_secs_f64(),
        warm.as_secs_f64() / cold.as_secs_f64()
    );
}
