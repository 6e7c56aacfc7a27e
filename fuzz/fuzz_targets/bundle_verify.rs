//! Bundle decoding and offline verification (`bundle::verify_bundle`): it never panics, and
//! nothing but the committed bundle vector verifies. Fuzzing cannot forge a signature, and the
//! encoding is canonical, so any other input that verifies is a hole. Seed: the vector
//! itself, so mutations start from a bundle that verifies. The trust root is the one an
//! auditor of the vector holds: its admin key (tests/vectors_gate.rs), so every check after
//! the root's is reached.
#![no_main]

use std::sync::OnceLock;

use evl::bundle::verify_bundle;
use evl::keys::SecretKey;
use evl::trust::Roots;
use libfuzzer_sys::fuzz_target;

const VECTOR: &[u8] = include_bytes!("../../tests/vectors/bundle-v1.evlb");

static ROOTS: OnceLock<Roots> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let roots = ROOTS.get_or_init(|| Roots {
        admin_keys: vec![(
            "mesh-admin".into(),
            SecretKey::demo_from_phrase("evl demo key: mesh-admin").public(),
        )],
        ..Roots::default()
    });
    let r = verify_bundle(data, roots);
    if data == VECTOR {
        assert!(
            r.failures.is_empty(),
            "the vector no longer verifies: {:?}",
            r.failures
        );
    } else {
        assert!(!r.failures.is_empty(), "fuzzed bytes verified as a bundle");
    }
});
