//! Bulk append alone, for an A/B of two commits on one host (`scripts/ab-bulk.sh`): a fresh
//! ledger, then BATCHES durable `append_batch` calls of 10,000 artifact
//! entries (one small blob each); prints the mean, median and minimum µs per entry over all
//! batches but the first. Written against the library API as it was at 9df6d89 (2026-12-01),
//! so the same file builds in an old worktree.
//! Usage: cargo run --release --example bench-bulk-ab -- DIR BATCHES [KIND]   (DIR is wiped)
use evl::Digest;
use evl::entry::{ArtifactMeta, KeyGrant, Payload, Scope, Tier};
use evl::keys::{Role, SecretKey};
use evl::store::{Draft, Ledger};
use evl::timestamp::Timestamp;
use std::time::Instant;
const AT: i64 = 1_780_000_000;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let batches: u64 = args[2].parse().expect("BATCHES: a number");
    assert!(
        batches >= 2,
        "BATCHES must be at least 2: the first batch is not counted"
    );
    let kind = args.get(3).cloned().unwrap_or("inventory-export".into());
    let _ = std::fs::remove_dir_all(&dir);
    let key = SecretKey::demo_from_phrase("evl bench-e2e signer");
    let grant = KeyGrant {
        name: "bench".into(),
        public_key: key.public(),
        roles: vec![Role::Admin, Role::Owner, Role::Reviewer],
    };
    let ledger =
        Ledger::init(&dir, "example.org/bench", vec![grant], &key, Timestamp(AT)).expect("init");
    let mut times = vec![];
    for b in 0..batches {
        let d: Vec<Draft> = (b * 10_000..(b + 1) * 10_000)
            .map(|i| {
                let bytes = format!("namespace,workload\npayments,api-{i}\n").into_bytes();
                Draft {
                    payload: Payload::Artifact(ArtifactMeta {
                        content: Digest::of(&bytes),
                        size: bytes.len() as u64,
                        kind: kind.clone(),
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
            })
            .collect();
        let t0 = Instant::now();
        ledger.append_batch(d, &key, None).expect("append");
        times.push(t0.elapsed().as_secs_f64() * 1e6 / 10_000.0);
    }
    let mean = times[1..].iter().sum::<f64>() / (times.len() - 1) as f64;
    let mut s = times[1..].to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "mean {mean:.2} us/entry, median {:.2}, min {:.2}",
        s[s.len() / 2],
        s[0]
    );
}
