//! Bundle decoding and offline verification (`bundle::verify_bundle`): it never panics, and
//! nothing but the committed bundle vector verifies. Fuzzing cannot forge a signature, and the
//! encoding is canonical, so any other input that verifies is a hole. Seed: the vector
//! itself, so mutations start from a bundle that verifies.
#![no_main]

use evl::bundle::verify_bundle;
use libfuzzer_sys::fuzz_target;

const VECTOR: &[u8] = include_bytes!("../../tests/vectors/bundle-v1.evlb");

fuzz_target!(|data: &[u8]| {
    let r = verify_bundle(data);
    if data != VECTOR {
        assert!(!r.failures.is_empty(), "fuzzed bytes verified as a bundle");
    }
});
