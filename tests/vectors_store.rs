//! Store layout 2 test vector: `tests/vectors/store-layout-2/` is the flagship ledger exactly as
//! `cargo run --example mtls-cutover -- --keep DIR` writes it (every time: all times are
//! explicit), with the checkpoint note that run signed beside it. This evl must read and verify
//! it, and must still write it byte for byte (tests/cli_gate.rs compares a fresh run with it):
//! a change to either is a change of format (docs/FORMAT.md §"Store layout"), which needs a new
//! layout tag, not a silent edit. CI also checks it with tests/independent/check_store.py.

mod common;

use std::path::Path;

use common::{evl_bin, run};

/// The flagship's root since importer facts version 2 (mesh-policy, certificate, telemetry;
/// docs/IMPORTERS.md §"Facts versions"): the mesh baseline's facts, and so its entry, changed.
/// The layout-1 vector of tests/migrate.rs keeps the root of the version-1 run. Since engine 3
/// (RFC 8785 disposition documents) the recorded dispositions, and so the root, changed again;
/// tests/vectors/engine-2-flagship-ledger keeps the engine-2 run.
const FLAGSHIP_ROOT: &str = "3bc8547672959272bee032c2e9efc8bcf30247755d5f4baa0ad009594b35c8da";

fn vector() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/store-layout-2")
}

#[test]
fn the_layout_2_vector_opens_verifies_and_is_left_as_it_was() {
    let files = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for sub in ["", "index"] {
            for e in std::fs::read_dir(dir.join(sub)).unwrap() {
                let p = e.unwrap().path();
                if p.is_file() {
                    out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    };
    let before = files(&vector());
    let note = vector().with_extension("checkpoint.note");
    let out = run(evl_bin()
        .arg("--ledger")
        .arg(vector())
        .args(["verify", "--json", "--checkpoint"])
        .arg(&note))
    .ok();
    let v = out.json();
    assert_eq!(v["verified"], true, "{v:#}");
    assert_eq!(v["report"]["size"], 42);
    assert_eq!(v["report"]["root"], FLAGSHIP_ROOT);
    assert_eq!(v["report"]["artifacts_checked"], 23);
    // Reading never writes: not even a lock file's time or an index record.
    assert_eq!(files(&vector()), before);
}
