//! Every importer (certificate PEM, mesh YAML, inventory CSV, telemetry CSV/JSON) on the same
//! bytes: errors are fine, panics and unbounded work are not.
#![no_main]

use evl::ingest::{Importer, ParseOptions, parse_with};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = ParseOptions {
        window: Some("fuzz-window".into()),
        sealed: false,
        workloads: vec![("payments".into(), "ledger-sync".into())],
        ..ParseOptions::default()
    };
    for importer in Importer::ALL {
        let _ = parse_with(importer, "fuzz.input", data, &opts);
    }
});
