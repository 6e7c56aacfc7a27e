//! Bundle decoding and offline verification (`bundle::verify_bundle`): it never panics, and
//! arbitrary bytes never verify.
#![no_main]

use evl::bundle::verify_bundle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = verify_bundle(data);
    assert!(!r.failures.is_empty(), "fuzzed bytes verified as a bundle");
});
