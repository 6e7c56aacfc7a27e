//! Checkpoint / signed-note parsing (`checkpoint::open`): never panics, and never opens a note
//! that the fixed key did not sign over exactly these contents. Seed: fuzz/seeds/checkpoint_open/
//! (a note this key signed), so mutations start from notes that verify.
#![no_main]

use evl::checkpoint;
use evl::keys::SecretKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SecretKey::from_seed([7; 32]);
    if let Ok(v) = checkpoint::open(data, "example.org/fuzz", &[key.public()]) {
        // What was opened is exactly what the key signed: re-signing the parsed origin, size
        // and root (Ed25519 signing is deterministic) gives the same body — all three lines and
        // the blank line after them — and the same signature line, which the input carries.
        let note = checkpoint::sign(&v.origin, v.size, v.root, &key);
        let body = note
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("a signed note has a blank line")
            + 2;
        assert_eq!(data.get(..body), Some(&note[..body]), "body differs");
        let signature = &note[body..];
        assert!(
            data[body..]
                .split_inclusive(|b| *b == b'\n')
                .any(|l| l == signature),
            "the input lacks the key's signature line"
        );
    }
});
