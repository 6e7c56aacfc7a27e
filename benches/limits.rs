//! The physical limits evl is judged against: Ed25519 signing and (batch) verification on one
//! core, over the 55-byte message an entry signature covers (docs/PERFORMANCE.md); beside them,
//! evl's own single and batch checks (`keys::verify`, `batch_verify::verify`).
//!
//! `cargo bench --bench limits -- --quick`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signature, Signer as _, SigningKey};
use evl::Digest;
use evl::entry::signature_message;

/// Signatures per batch, as `evl::verify` uses.
const BATCH: usize = 256;
/// Signatures per batch of evl's own equation, as docs/PERFORMANCE.md measures it.
const GROUPED_BATCH: usize = 4096;

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
    // evl's rule (docs/FORMAT.md §"Signature validity"): one signature, and one batch equation
    // over 4,096 signatures by one key.
    let public = evl::keys::PublicKey(Digest(vk.to_bytes()));
    let raw = evl::keys::SignatureBytes(sigs[0].to_bytes());
    g.throughput(Throughput::Elements(1));
    g.bench_function("evl-verify-55B", |b| {
        b.iter(|| assert!(evl::keys::verify(&public, black_box(&msgs[0]), &raw)))
    });
    let many = messages(GROUPED_BATCH as u64);
    let many_sigs: Vec<[u8; 64]> = many.iter().map(|m| sk.sign(m).to_bytes()).collect();
    let items: Vec<evl::batch_verify::Item> = many
        .iter()
        .zip(&many_sigs)
        .map(|(message, signature)| evl::batch_verify::Item {
            key: &vk,
            message,
            signature,
        })
        .collect();
    g.throughput(Throughput::Elements(GROUPED_BATCH as u64));
    g.bench_function("evl-batch_verify-4096x55B", |b| {
        b.iter(|| assert!(evl::batch_verify::verify(black_box(&items))))
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
