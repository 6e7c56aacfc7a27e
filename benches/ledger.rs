//! Micro figures of the ledger: entry signing, `append_batch` of a durable batch, proofs on the
//! stored tree, verification. The 10^6-entry figures are in `scripts/bench-e2e.sh`.
//!
//! `cargo bench --bench ledger -- --quick`

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use evl::Digest;
use evl::entry::{
    ArtifactMeta, ENTRY_FORMAT, Entry, KeyGrant, Payload, Scope, Tier, UnsignedEntry,
};
use evl::keys::{Role, SecretKey};
use evl::store::{Draft, Ledger};
use evl::timestamp::Timestamp;

const AT: i64 = 1_775_001_600;
/// Entries in the ledger the proof and verify benches read.
const SIZE: u64 = 10_000;
/// Entries per `append_batch`.
const BATCH: u64 = 1_000;

fn artifact(i: u64) -> Draft {
    let bytes = format!(
        "namespace,workload,sidecar,mtls_mode\npayments,ledger-sync-{i},istio-proxy-1.22.3,STRICT\n"
    )
    .into_bytes();
    Draft {
        payload: Payload::Artifact(ArtifactMeta {
            content: Digest::of(&bytes),
            size: bytes.len() as u64,
            kind: "workload-inventory".into(),
            file_name: format!("inventory-{i}.csv"),
            tier: Tier::Operational,
            captured_at: Timestamp(AT),
            valid_until: None,
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

fn key() -> SecretKey {
    SecretKey::demo_from_phrase("evl bench signer")
}

fn ledger(path: &Path, key: &SecretKey, n: u64) -> Ledger {
    let grant = KeyGrant {
        name: "bench".into(),
        public_key: key.public(),
        roles: vec![Role::Admin, Role::Owner],
    };
    let l = Ledger::init(path, "example.org/bench", vec![grant], key, Timestamp(AT)).unwrap();
    let mut done = 0;
    while done < n {
        let k = BATCH.min(n - done);
        l.append_batch((done..done + k).map(artifact).collect(), key, None)
            .unwrap();
        done += k;
    }
    l
}

fn entries(c: &mut Criterion) {
    let key = key();
    let genesis = Digest::of(b"genesis");
    let mut g = c.benchmark_group("entry");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode+id+sign", |b| {
        b.iter_batched(
            || artifact(7).payload,
            |payload| {
                Entry::sign(
                    UnsignedEntry {
                        format: ENTRY_FORMAT,
                        ledger: genesis,
                        signer: key.public().id(),
                        claimed_at: Timestamp(AT),
                        payload,
                    },
                    &key,
                )
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn append(c: &mut Criterion) {
    let key = key();
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(&dir.path().join("append.evl"), &key, 0);
    let mut next = 0u64;
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(10);
    g.bench_function("append_batch-1000-durable", |b| {
        b.iter_batched(
            || {
                next += BATCH;
                (next..next + BATCH).map(artifact).collect::<Vec<_>>()
            },
            |d| l.append_batch(d, &key, None).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("append-1-durable", |b| {
        b.iter_batched(
            || {
                next += 1;
                artifact(next + 1_000_000_000)
            },
            |d| l.append(d, &key).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn proofs_and_verify(c: &mut Criterion) {
    let key = key();
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(&dir.path().join("proofs.evl"), &key, SIZE);
    let n = l.size().unwrap();
    let mut g = c.benchmark_group(format!("tree-{n}"));
    let mut i = 0u64;
    g.bench_function("prove_inclusion", |b| {
        b.iter(|| {
            i = (i + 7_919) % n;
            l.prove_inclusion(black_box(i), n).unwrap()
        })
    });
    g.bench_function("prove_consistency", |b| {
        b.iter(|| {
            i = (i + 7_919) % n;
            l.prove_consistency(black_box(i + 1), n).unwrap()
        })
    });
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.bench_function("verify", |b| {
        b.iter(|| assert!(evl::verify::verify(&l, &Default::default()).unwrap().ok()))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = entries, append, proofs_and_verify }
criterion_main!(benches);
