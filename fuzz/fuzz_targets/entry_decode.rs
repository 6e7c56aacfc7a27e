//! Entry decoding (`Entry::from_bytes`): never panics; whatever decodes re-encodes to the
//! same bytes (canonical form is unique).
#![no_main]

use evl::entry::Entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = Entry::from_bytes(data) {
        let again = e.to_bytes().expect("a decoded entry re-encodes");
        assert_eq!(again, data, "two encodings of one entry");
        let _ = e.id();
    }
});
