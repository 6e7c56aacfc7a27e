//! Opening and verifying a ledger whose log holds arbitrary bytes after its magic, with no
//! index (so every byte goes through the reader's recovery scan): never panics, and whatever
//! opens can be read and verified without panicking.
#![no_main]

use evl::store::{Ledger, OpenOptions, layout};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    std::fs::write(path.join(layout::TAG_FILE), evl::store::LAYOUT).expect("tag");
    std::fs::write(path.join(layout::LOG), [&layout::MAGIC[..], data].concat()).expect("log");
    let Ok(ledger) = Ledger::open(path, &OpenOptions::default()) else {
        return;
    };
    let size = ledger.size().unwrap_or(0);
    for i in 0..size.min(64) {
        let _ = ledger.entry(i);
    }
    let _ = ledger.registry();
    let _ = ledger.latest_checkpoint();
    let _ = ledger.root(size);
    if size > 0 {
        let _ = ledger.prove_inclusion(size - 1, size);
    }
    let _ = evl::verify::verify(&ledger, &Default::default());
});
