//! Version-3 disposition documents are RFC 8785 (JCS) bytes that an independent JCS
//! implementation reproduces: PyPI `rfc8785`, through tests/independent/check_jcs.py, on the
//! committed vector and on every disposition the flagship ledger vector records
//! (docs/FORMAT.md §"Dispositions").

mod common;

use std::path::Path;
use std::process::Command;

use common::parts;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn check_jcs(files: &[&Path]) -> (i32, String) {
    let py = parts::python_with(&["rfc8785>=0.1"], &[]);
    let o = Command::new(py)
        .arg(Path::new(ROOT).join("tests/independent/check_jcs.py"))
        .args(files)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn rfc8785_reproduces_the_v3_vector_and_every_flagship_disposition() {
    let (code, out) = check_jcs(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("disposition-v3.json"), "{out}");
    // Every disposition document the flagship ledger vector records (all engine 3).
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("ledger");
    common::copy_dir(&Path::new(ROOT).join("tests/vectors/store-layout-2"), &l);
    let ledger = evl::store::Ledger::open(&l, &Default::default()).unwrap();
    let mut files = Vec::new();
    for i in 0..ledger.size().unwrap() {
        if let evl::entry::Payload::Disposition(r) = ledger.entry(i).unwrap().body.payload {
            assert_eq!(r.engine_version, "evl-engine/3");
            let doc = ledger.blob(&r.document).unwrap().unwrap();
            let f = dir.path().join(format!("doc-{i}.json"));
            std::fs::write(&f, doc).unwrap();
            files.push(f);
        }
    }
    assert!(files.len() >= 6, "the flagship records its dispositions");
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let (code, out) = check_jcs(&refs);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("OK ")).count(),
        files.len()
    );
}

#[test]
fn the_independent_check_refuses_a_v3_document_that_is_not_jcs() {
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new(ROOT).join("tests/vectors/disposition-v3.json")).unwrap(),
    )
    .unwrap();
    let doc = v["document"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let parsed: serde_json::Value = serde_json::from_str(doc).unwrap();
    for (name, bytes) in [
        ("pretty", serde_json::to_string_pretty(&parsed).unwrap()),
        ("newline", format!("{doc}\n")),
        // Members out of order: `format` moved first.
        (
            "order",
            format!(
                "{{\"format\":\"evl-disposition/v3\",{}",
                &doc[1..].replacen(",\"format\":\"evl-disposition/v3\"", "", 1)
            ),
        ),
    ] {
        let f = dir.path().join(format!("{name}.json"));
        std::fs::write(&f, &bytes).unwrap();
        assert_ne!(bytes, doc);
        let (code, out) = check_jcs(&[&f]);
        assert_eq!(code, 1, "{name}: {out}");
        // evl refuses it too.
        assert!(evl::disposition::Disposition::from_bytes(bytes.as_bytes()).is_err());
    }
}
