//! Checkpoint / signed-note parsing (`checkpoint::open`): never panics, and never opens a note
//! that the fixed key did not sign over exactly these contents.
#![no_main]

use evl::checkpoint;
use evl::keys::SecretKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SecretKey::from_seed([7; 32]);
    if let Ok(v) = checkpoint::open(data, "example.org/fuzz", &[key.public()]) {
        // Only the key's own signature opens a note: re-signing the parsed body must give a
        // note with the same body text.
        let note = checkpoint::sign(&v.origin, v.size, v.root, &key);
        let body_len = note.iter().position(|w| *w == b'\n').unwrap();
        assert_eq!(&note[..body_len], &data[..body_len]);
    }
});
