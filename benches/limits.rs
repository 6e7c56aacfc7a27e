//! The physical limits evl is judged against: Ed25519 signing and (batch) verification on one
//! core, over the 55-byte message an entry signature covers (docs/PERFORMANCE.md).
//!
//! `cargo bench --bench limits -- --quick`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signature, Signer as _, SigningKey};
use evl::Digest;
use evl::entry::signature_message;

/// Signatures per batch, as `evl::verify` uses.
const BATCH: usize = 256;

fn messages(n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| signature_message(&Digest::of(&i.to_le_bytes())))
        .collect()
}

fn ed25519(c: &mut Criterion) {
    let sk = SigningKey::from_bytes(&[7u8; 32]);
    let vk = sk.verifying_key();
    let msgs = messages(BATCH as u64);
    assert_eq!(msgs[0].len(), 55);
    let sigs: Vec<Signature> = msgs.iter().map(|m| sk.sign(m)).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let keys = vec![vk; BATCH];

    let mut g = c.benchmark_group("ed25519-one-core");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign-55B", |b| b.iter(|| sk.sign(black_box(&msgs[0]))));
    g.bench_function("verify_strict-55B", |b| {
        b.iter(|| vk.verify_strict(black_box(&msgs[0]), &sigs[0]).unwrap())
    });
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("verify_batch-256x55B", |b| {
        b.iter(|| ed25519_dalek::verify_batch(black_box(&refs), &sigs, &keys).unwrap())
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = ed25519 }
criterion_main!(benches);
