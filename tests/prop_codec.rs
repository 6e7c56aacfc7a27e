//! Property tests of the decoders hostile bytes reach: entries round-trip through their
//! canonical bytes; `Entry::from_bytes` and `checkpoint::open` never panic on arbitrary or
//! mutated input, and never make a large allocation while refusing it (every length inside is
//! bounded by the input; docs/FORMAT.md §"Limits").

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;

use evl::Digest;
use evl::checkpoint;
use evl::entry::{
    Acknowledgment, Annotation, AnnotationKind, ArtifactMeta, ENTRY_FORMAT, Entry, Payload, Scope,
    Tier, UnsignedEntry,
};
use evl::keys::SecretKey;
use evl::merkle;
use evl::timestamp::Timestamp;
use proptest::prelude::*;

/// Records the largest single allocation made by the current thread while armed.
struct Watch;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ARMED.try_with(|a| {
            if a.get() {
                let _ = LARGEST.try_with(|m| m.set(m.get().max(l.size())));
            }
        });
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let _ = ARMED.try_with(|a| {
            if a.get() {
                let _ = LARGEST.try_with(|m| m.set(m.get().max(new)));
            }
        });
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static WATCH: Watch = Watch;

/// Runs `f` and returns its result with the largest single allocation it made.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|m| m.set(0));
    ARMED.with(|a| a.set(true));
    let out = f();
    ARMED.with(|a| a.set(false));
    (out, LARGEST.with(|m| m.get()))
}

/// What decoding at most 64 KiB of input may allocate at once: serde pre-allocates at most
/// 1 MiB for a sequence whatever length the input claims ("cautious" size hints), and the
/// codec's bincode limit follows the caller's cap (64 KiB for entries).
const INTENDED_CAP: usize = 2 << 20;
const ALLOCATION_CAP: usize = INTENDED_CAP;

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

fn text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[ -~\u{a0}-\u{2fff}]{0,40}").unwrap()
}

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (
            digest(),
            0usize..5,
            text(),
            // A scope is a set: strictly ascending, as the format requires.
            proptest::collection::btree_set(text(), 0..4)
        )
            .prop_map(|(subject, k, text, ws)| Payload::Annotation(Annotation {
                subject,
                kind: [
                    AnnotationKind::Note,
                    AnnotationKind::Concern,
                    AnnotationKind::Blocker,
                    AnnotationKind::Accept,
                    AnnotationKind::Reject
                ][k],
                scope: Scope {
                    namespaces: vec![],
                    workloads: ws.into_iter().collect()
                },
                text,
            })),
        (
            text(),
            proptest::option::of(digest()),
            proptest::option::of(text()),
            text()
        )
            .prop_map(
                |(topic, subject, namespace, statement)| Payload::Acknowledgment(Acknowledgment {
                    topic,
                    subject,
                    namespace,
                    statement,
                })
            ),
        (
            digest(),
            any::<u64>(),
            text(),
            any::<i64>(),
            proptest::option::of(any::<i64>()),
            any::<bool>(),
            proptest::collection::btree_map(text(), text(), 0..4),
            proptest::option::of(digest()),
        )
            .prop_map(|(content, size, kind, at, until, sealed, labels, sup)| {
                Payload::Artifact(ArtifactMeta {
                    content,
                    size,
                    kind: kind.clone(),
                    file_name: kind,
                    tier: if sealed {
                        Tier::Authoritative
                    } else {
                        Tier::Excluded
                    },
                    captured_at: Timestamp(at),
                    valid_until: until.map(Timestamp),
                    scope: Scope::default(),
                    sealed,
                    supersedes: sup,
                    labels: labels.into_iter().collect::<BTreeMap<_, _>>(),
                    facts: None,
                })
            }),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (any::<u8>(), digest(), any::<i64>(), payload()).prop_map(|(k, ledger, at, payload)| {
        let key = key(k);
        Entry::sign(
            UnsignedEntry {
                format: ENTRY_FORMAT,
                ledger,
                signer: key.public().id(),
                claimed_at: Timestamp(at),
                payload,
            },
            &key,
        )
    })
}

fn note() -> Vec<u8> {
    checkpoint::sign("example.org/prop", 42, merkle::leaf_hash(b"x"), &key(7))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn entries_round_trip_through_canonical_bytes(e in entry()) {
        let bytes = e.to_bytes().unwrap();
        let back = Entry::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&back, &e);
        prop_assert_eq!(back.id(), e.id());
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
        prop_assert!(back.signature_valid(&key_for(&e)));
    }

    #[test]
    fn entry_decoding_never_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096)
    ) {
        let (r, largest) = largest_allocation(|| Entry::from_bytes(&bytes).map(|e| e.id()));
        prop_assert!(largest <= ALLOCATION_CAP, "{largest}-byte allocation for {} input bytes", bytes.len());
        let _ = r;
    }

    /// Valid bytes, then mutated: a byte overwritten, a range cut out, bytes inserted, a length
    /// field set huge. Decoding never panics or allocates without bound; whatever still decodes
    /// either is the same entry or no longer carries a valid signature.
    #[test]
    fn mutated_entries_decode_to_errors_or_fail_their_signature(
        e in entry(),
        at in any::<usize>(),
        op in 0u8..4,
        byte in any::<u8>(),
        run in 1usize..16,
    ) {
        let mut b = e.to_bytes().unwrap();
        let i = at % b.len();
        match op {
            0 => b[i] ^= byte.max(1),
            1 => { b.drain(i..(i + run).min(b.len())); }
            2 => { for _ in 0..run { b.insert(i, byte); } }
            _ => {
                let j = i.min(b.len().saturating_sub(8));
                b[j..j + 8].copy_from_slice(&(u64::MAX >> (byte % 64)).to_le_bytes());
            }
        }
        let (r, largest) = largest_allocation(|| Entry::from_bytes(&b));
        prop_assert!(largest <= ALLOCATION_CAP, "{largest}-byte allocation");
        if let Ok(d) = r {
            prop_assert!(d == e || !d.signature_valid(&key_for(&e)), "a mutation kept a valid signature");
        }
    }

    #[test]
    fn checkpoint_parsing_never_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048)
    ) {
        let (r, largest) = largest_allocation(|| {
            checkpoint::open(&bytes, "example.org/prop", &[key(7).public()])
        });
        prop_assert!(r.is_err());
        prop_assert!(largest <= ALLOCATION_CAP, "{largest}-byte allocation");
    }

    #[test]
    fn checkpoint_parsing_never_panics_on_arbitrary_text(s in "[\\PC\n—+ ]{0,400}") {
        let (r, _) = largest_allocation(|| {
            checkpoint::open(s.as_bytes(), "example.org/prop", &[key(7).public()])
        });
        prop_assert!(r.is_err());
    }

    /// A real note, mutated: it never panics, and never opens with different contents.
    #[test]
    fn mutated_checkpoints_never_open_with_other_contents(
        at in any::<usize>(), op in 0u8..3, byte in any::<u8>(), run in 1usize..8,
    ) {
        let good = note();
        let mut b = good.clone();
        let i = at % b.len();
        match op {
            0 => b[i] ^= byte.max(1),
            1 => { b.drain(i..(i + run).min(b.len())); }
            _ => { for _ in 0..run { b.insert(i, byte); } }
        }
        match checkpoint::open(&b, "example.org/prop", &[key(7).public()]) {
            Err(_) => {}
            Ok(v) => {
                prop_assert_eq!(v.size, 42);
                prop_assert_eq!(v.root, merkle::leaf_hash(b"x"));
                prop_assert_eq!(v.origin, "example.org/prop");
            }
        }
    }
}

fn key_for(e: &Entry) -> evl::keys::PublicKey {
    (0..=255u8)
        .map(key)
        .map(|k| k.public())
        .find(|p| p.id() == e.body.signer)
        .expect("entries in these tests are signed by key(0..=255)")
}

fn annotation_with_text(text: &str) -> Vec<u8> {
    let k = key(1);
    Entry::sign(
        UnsignedEntry {
            format: ENTRY_FORMAT,
            ledger: Digest::ZERO,
            signer: k.public().id(),
            claimed_at: Timestamp(0),
            payload: Payload::Annotation(Annotation {
                subject: Digest::ZERO,
                kind: AnnotationKind::Note,
                scope: Scope::default(),
                text: text.into(),
            }),
        },
        &k,
    )
    .to_bytes()
    .unwrap()
}

/// A 200-byte entry whose text length field claims 60 MiB: bincode allocates a string's claimed
/// length before reading it, so the codec's decode limit must follow the caller's cap (it was a
/// fixed 64 MiB until commit 90c88e6, and this allocated 60 MiB).
#[test]
fn a_lying_length_allocates_no_more_than_the_input_allows() {
    let mut b = annotation_with_text("abcdefgh");
    let pos = b.windows(8).position(|w| w == b"abcdefgh").unwrap() - 8;
    b[pos..pos + 8].copy_from_slice(&(60u64 << 20).to_le_bytes());
    let (r, largest) = largest_allocation(|| Entry::from_bytes(&b));
    assert!(r.is_err());
    assert!(
        largest <= INTENDED_CAP,
        "decoding {} bytes allocated {largest} bytes at once",
        b.len()
    );
}

/// The part of the bound that holds today: a length beyond bincode's limit is refused before
/// any allocation, and nothing exceeds the limit.
#[test]
fn a_length_beyond_the_codec_limit_is_refused_without_allocating_it() {
    let mut b = annotation_with_text("abcdefgh");
    let pos = b.windows(8).position(|w| w == b"abcdefgh").unwrap() - 8;
    for claim in [u64::MAX, 1 << 40, (64 << 20) + 1] {
        b[pos..pos + 8].copy_from_slice(&claim.to_le_bytes());
        let (r, largest) = largest_allocation(|| Entry::from_bytes(&b));
        assert!(r.is_err(), "claim {claim}");
        assert!(
            largest <= INTENDED_CAP,
            "claim {claim}: {largest}-byte allocation"
        );
    }
}
