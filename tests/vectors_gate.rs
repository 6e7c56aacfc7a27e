//! Test vectors for the disposition document and the bundle file (docs/FORMAT.md §"Dispositions",
//! §"Bundles"): fixed bytes the code must keep reproducing, and checks that the format text
//! holds for them.
//!
//! The vectors come from a small ledger built with the real `evl` binary from the flagship
//! evidence files, demo keys and fixed claimed times, so every byte is stable. Regenerate them
//! only together with a new format or engine version:
//! `EVL_WRITE_VECTORS=1 cargo test --test vectors_gate`.
//!
//! `disposition-v1.json` and `bundle-v1.evlb` were written by engine `evl-engine/1`
//! (document format `evl-disposition/v1`) and are kept frozen: this evl must still read them
//! and replay their disposition with engine 1, byte for byte. `disposition-v2.json` and
//! `bundle-v1-disposition-v2.evlb` (the same bundle format, carrying a v2 document) were
//! written by engine 2 and are frozen the same way. `disposition-v3.json` and
//! `bundle-v1-disposition-v3.evlb` (an RFC 8785 document) are what the current engine writes.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use evl::bundle::{self, BundleBody};
use evl::digest::{Digest, EntryId};
use evl::disposition::{self, Disposition, DocumentError, Subject};
use evl::entry::{Entry, Payload};
use evl::keys::SecretKey;
use evl::trust::Roots;
use evl::{codec, domain, merkle};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
const EX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mtls-cutover");
const AS_OF: &str = "2026-04-20T00:00:00Z";

fn vector(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

/// Runs evl on `ledger`, insists on success, and returns the id an appending verb printed.
fn evl(ledger: &Path, args: &[&str]) -> String {
    let o = Command::cargo_bin("evl")
        .unwrap()
        .arg("--ledger")
        .arg(ledger)
        .args(args)
        .env_remove("EVL_KEY")
        .env_remove("EVL_LEDGER")
        .output()
        .unwrap();
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        o.status.success(),
        "evl {args:?}: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// What the vectors are made of.
struct Built {
    _dir: tempfile::TempDir,
    ledger: PathBuf,
    packet: String,
    disposition: String,
    document: Vec<u8>,
    bundle: Vec<u8>,
}

/// A one-revision packet over five of the flagship's evidence files and one acknowledgment,
/// evaluated and recorded at 2026-04-20, checkpointed and exported.
fn build() -> Built {
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("ledger");
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let k = |n: &str| keys.join(format!("{n}.key")).display().to_string();
    let pubk = |n: &str| keys.join(format!("{n}.pub")).display().to_string();
    for n in ["mesh-admin", "hana-okafor", "ns-identity-owner"] {
        evl(
            &l,
            &[
                "keygen",
                n,
                "--dir",
                keys.to_str().unwrap(),
                "--demo-seed",
                &format!("evl demo key: {n}"),
            ],
        );
    }
    let admin = k("mesh-admin");
    evl(
        &l,
        &[
            "init",
            "--origin",
            "example.org/evl-gate-vectors",
            "--admin",
            &pubk("mesh-admin"),
            "--key",
            &admin,
            "--at",
            "2026-04-01T09:00:00Z",
        ],
    );
    for (n, role) in [
        ("hana-okafor", "owner"),
        ("ns-identity-owner", "security-signer"),
    ] {
        evl(
            &l,
            &[
                "key",
                "add",
                n,
                "--pub",
                &pubk(n),
                "--role",
                role,
                "--key",
                &admin,
                "--at",
                "2026-04-01T09:05:00Z",
            ],
        );
    }
    let hana = k("hana-okafor");
    let ex = |f: &str| format!("{EX}/{f}");
    let add = |file: &str, kind: &str, at: &str| {
        evl(
            &l,
            &[
                "add",
                &ex(file),
                "--kind",
                kind,
                "--tier",
                "authoritative",
                "--sealed",
                "--captured-at",
                at,
                "--at",
                at,
                "--key",
                &hana,
            ],
        )
    };
    let gate = add("gate.toml", "gate-definition", "2026-04-10T08:00:00Z");
    let at = "2026-04-18T08:00:00Z";
    let inventory = evl(
        &l,
        &[
            "ingest",
            "inventory",
            &ex("mesh-enforcement-targets-2026-04-18.csv"),
            "--sealed",
            "--captured-at",
            at,
            "--at",
            at,
            "--key",
            &hana,
        ],
    );
    let drill = add(
        "drill-envoy-policy-reversal-2026-04-15.toml",
        "rollback-drill",
        "2026-04-15T15:00:00Z",
    );
    let authority = add(
        "Mesh-Gate-Authority-Snapshot-2026-04-12.toml",
        "authority-snapshot",
        "2026-04-12T00:00:00Z",
    );
    let register = add(
        "certificate-exception-register-2026-04-17.toml",
        "certificate-exception-register",
        "2026-04-17T12:00:00Z",
    );
    let at = "2026-04-17T12:00:00Z";
    let policy = evl(
        &l,
        &[
            "ingest",
            "mesh",
            &ex("east-west-authorization-baseline-2026-04-17.yaml"),
            "--label",
            "baseline=east-west-authorization",
            "--sealed",
            "--captured-at",
            at,
            "--at",
            at,
            "--key",
            &hana,
        ],
    );
    let ack = evl(
        &l,
        &[
            "ack",
            "--topic",
            "east-west-authorization-policy",
            "--subject",
            &policy,
            "--namespace",
            "identity",
            "--statement",
            "East-west authorization baseline reviewed for identity.",
            "--at",
            "2026-04-18T14:00:00Z",
            "--key",
            &k("ns-identity-owner"),
        ],
    );
    let mut args = vec![
        "packet",
        "create",
        "--name",
        "Service-Mesh-mTLS-Enforcement-Gate-Packet-vectors",
        "--revision",
        "1",
        "--gate",
        &gate,
        "--checkpoint-at",
        "2026-04-30T00:00:00Z",
        "--workloads-from",
        &inventory,
    ];
    // Deliberately unsorted and with a duplicate: the basis is a set.
    for b in [
        &register, &inventory, &drill, &authority, &policy, &ack, &drill,
    ] {
        args.extend(["--basis", b]);
    }
    args.extend(["--key", &hana, "--at", "2026-04-19T20:00:00Z"]);
    let packet = evl(&l, &args);
    evl(
        &l,
        &[
            "evaluate", &packet, "--as-of", AS_OF, "--record", "--at", AS_OF, "--key", &hana,
        ],
    );
    let cp = dir.path().join("checkpoint.note");
    evl(
        &l,
        &["checkpoint", "--key", &admin, "-o", cp.to_str().unwrap()],
    );
    let file = dir.path().join("bundle.evlb");
    evl(&l, &["export", &packet, "-o", file.to_str().unwrap()]);
    let ledger = evl::store::Ledger::open(&l, &Default::default()).unwrap();
    let last = ledger.size().unwrap() - 1;
    let e = ledger.entry(last).unwrap();
    let Payload::Disposition(rec) = &e.body.payload else {
        panic!("the last entry is the recorded disposition");
    };
    let document = ledger.blob(&rec.document).unwrap().unwrap();
    let disposition = e.id().to_hex();
    drop(ledger);
    Built {
        bundle: std::fs::read(&file).unwrap(),
        _dir: dir,
        ledger: l,
        packet,
        disposition,
        document,
    }
}

/// The disposition vector: the document, its digest, and the basis digest derivation.
fn disposition_vector(b: &Built) -> Value {
    let d = Disposition::from_bytes(&b.document).unwrap();
    let basis_ids = {
        let ledger = evl::store::Ledger::open(&b.ledger, &Default::default()).unwrap();
        let (_, e) = ledger.resolve_entry(&b.packet).unwrap();
        let Payload::Packet(p) = e.body.payload else {
            panic!("packet")
        };
        p.basis
    };
    let mut sorted = basis_ids.clone();
    sorted.sort();
    sorted.dedup();
    let input: Vec<u8> = [
        domain::BASIS.to_vec(),
        sorted.iter().flat_map(|i| i.0).collect(),
    ]
    .concat();
    json!({
        "format": "evl-disposition/v1",
        "disposition_entry": b.disposition,
        "packet": b.packet,
        "as_of": AS_OF,
        "document": String::from_utf8(b.document.clone()).unwrap(),
        "document_blake3": Digest::of(&b.document).to_hex(),
        "verdict": d.verdict.name(),
        "basis": {
            "domain": String::from_utf8(domain::BASIS.to_vec()).unwrap(),
            "ids_sorted": sorted.iter().map(EntryId::to_hex).collect::<Vec<_>>(),
            "input_hex": hex::encode(&input),
            "digest": d.basis_digest.to_hex(),
        },
    })
}

/// The trust root an auditor of the vectors holds: the public key of the demo admin that
/// created the vector ledger (keys/README.md), not anything read from the bundle.
fn trust_root() -> Roots {
    let admin = SecretKey::demo_from_phrase("evl demo key: mesh-admin");
    Roots {
        admin_keys: vec![("mesh-admin".into(), admin.public())],
        ..Roots::default()
    }
}

/// The expected result of verifying the bundle vector.
fn bundle_expectation(bytes: &[u8]) -> Value {
    let r = bundle::verify_bundle(bytes, &trust_root());
    json!({
        "file": "bundle-v1.evlb",
        "bytes": bytes.len(),
        "blake3": Digest::of(bytes).to_hex(),
        "verified": r.ok(),
        "packet": r.packet.map(|p| p.to_hex()),
        "checkpoint_size": r.checkpoint_size,
        "entries_checked": r.entries_checked,
        "artifacts_checked": r.artifacts_checked,
        "proofs_checked": r.proofs_checked,
        "dispositions_replayed": r.dispositions_replayed,
        "failures": r.failures,
    })
}

fn read_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(vector(name)).unwrap()).unwrap()
}

fn document_of(name: &str) -> Vec<u8> {
    read_json(name)["document"]
        .as_str()
        .unwrap()
        .as_bytes()
        .to_vec()
}

fn stored_document() -> Vec<u8> {
    document_of("disposition-v1.json")
}

/// Engine 2's vectors (frozen): the v2 disposition document and the bundle carrying it.
const DISPOSITION_V2: &str = "disposition-v2.json";
const BUNDLE_V2: &str = "bundle-v1-disposition-v2.evlb";

/// The current engine's vectors: the disposition document and the bundle carrying it.
const DISPOSITION_V3: &str = "disposition-v3.json";
const BUNDLE_V3: &str = "bundle-v1-disposition-v3.evlb";
const BUNDLE_V3_JSON: &str = "bundle-v1-disposition-v3.json";

#[test]
fn code_reproduces_the_gate_vectors_byte_for_byte() {
    let b = build();
    let mut dv = disposition_vector(&b);
    dv["format"] = json!("evl-disposition/v3");
    let mut bv = bundle_expectation(&b.bundle);
    bv["file"] = json!(BUNDLE_V3);
    if std::env::var_os("EVL_WRITE_VECTORS").is_some() {
        let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap() + "\n";
        std::fs::write(vector(DISPOSITION_V3), pretty(&dv)).unwrap();
        std::fs::write(vector(BUNDLE_V3), &b.bundle).unwrap();
        std::fs::write(vector(BUNDLE_V3_JSON), pretty(&bv)).unwrap();
    }
    let stored = read_json(DISPOSITION_V3);
    assert_eq!(
        stored["document"], dv["document"],
        "the disposition document bytes changed"
    );
    assert_eq!(stored, dv, "the disposition vector changed");
    assert_eq!(
        std::fs::read(vector(BUNDLE_V3)).unwrap(),
        b.bundle,
        "the exported bundle bytes changed"
    );
    assert_eq!(
        read_json(BUNDLE_V3_JSON),
        bv,
        "the bundle verify result changed"
    );
    // Re-evaluating today gives the same document (what replay relies on).
    let ledger = evl::store::Ledger::open(&b.ledger, &Default::default()).unwrap();
    let (_, e) = ledger.resolve_entry(&b.packet).unwrap();
    let input = evl::evaluate::load_input(&ledger, &e.body.id()).unwrap();
    let again = evl::evaluate::evaluate(&input, AS_OF.parse().unwrap()).unwrap();
    assert_eq!(again.canonical_bytes(), document_of(DISPOSITION_V3));
    // Engine 2 (the same rules, writing v2) still derives the frozen v2 document from the
    // same ledger, byte for byte.
    let v2 = evl::evaluate::evaluate_with("evl-engine/2", &input, AS_OF.parse().unwrap()).unwrap();
    assert_eq!(v2.canonical_bytes(), document_of(DISPOSITION_V2));
}

/// Engine 2's vectors are frozen: the v2 document still reads as canonical, and the bundle
/// that carries it still verifies offline, replaying its disposition with engine 2.
#[test]
fn the_engine_2_vectors_still_read_and_replay_byte_for_byte() {
    let doc = document_of(DISPOSITION_V2);
    let d = Disposition::from_bytes(&doc).expect("the v2 document reads");
    assert_eq!(d.format, "evl-disposition/v2");
    assert_eq!(d.engine_version, "evl-engine/2");
    assert_eq!(d.canonical_bytes(), doc);
    let bytes = std::fs::read(vector(BUNDLE_V2)).unwrap();
    let r = bundle::verify_bundle(&bytes, &trust_root());
    assert!(r.ok(), "{:#?}", r.failures);
    assert_eq!(r.dispositions_replayed, 1);
    let body: BundleBody = codec::decode(&bytes[14..], bundle::MAX_BUNDLE_BYTES).unwrap();
    assert!(
        body.blobs.iter().any(|b| *b == doc),
        "the bundle carries the v2 document"
    );
}

/// The v3 document's bytes are its RFC 8785 (JCS) serialization: no insignificant
/// whitespace, object keys in UTF-16 code-unit order, no trailing newline; any other layout
/// of the same content is refused. (tests/independent/check_jcs.py reproduces the bytes with
/// an independent JCS implementation, PyPI `rfc8785`.)
#[test]
fn the_v3_document_is_rfc_8785() {
    let bytes = document_of(DISPOSITION_V3);
    let v = read_json(DISPOSITION_V3);
    assert_eq!(
        blake3::hash(&bytes).to_hex().as_str(),
        v["document_blake3"].as_str().unwrap()
    );
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(
        text.starts_with("{\"as_of\":\"2026-04-20T00:00:00Z\",\"basis_digest\":"),
        "{text}"
    );
    assert!(text.ends_with('}'), "no trailing newline");
    assert!(!text.contains('\n'));
    // For this document (ASCII keys, integers only) JCS is compact JSON with every object's
    // keys in byte order: what serde_json writes for a parsed `Value` (a sorted map).
    let compact = serde_json::to_vec(&serde_json::from_slice::<Value>(&bytes).unwrap()).unwrap();
    assert_eq!(compact, bytes);
    let d = Disposition::from_bytes(&bytes).expect("the v3 document reads");
    assert_eq!(d.format, "evl-disposition/v3");
    assert_eq!(d.engine_version, "evl-engine/3");
    assert!(d.blockers.iter().all(|b| b.unblock.is_some()));
    assert_eq!(d.canonical_bytes(), bytes);
    // The pretty layout of v2, or a trailing newline, is not the canonical form of v3.
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_slice::<Value>(&bytes).unwrap()).unwrap();
    assert!(matches!(
        Disposition::from_bytes(pretty.as_bytes()),
        Err(DocumentError::NotCanonical)
    ));
    let mut newline = bytes.clone();
    newline.push(b'\n');
    assert!(matches!(
        Disposition::from_bytes(&newline),
        Err(DocumentError::NotCanonical)
    ));
    // A v3 document with a blocker lacking `unblock` is refused.
    let mut j: Value = serde_json::from_slice(&bytes).unwrap();
    j["blockers"][0].as_object_mut().unwrap().remove("unblock");
    let stripped = serde_json_canonicalizer::to_vec(&j).unwrap();
    assert!(matches!(
        Disposition::from_bytes(&stripped),
        Err(DocumentError::Unblock("v3", "lacks"))
    ));
}

/// Engine 1's vectors are frozen: the v1 document still reads as canonical, and the bundle
/// that carries it still verifies offline, replaying its disposition with engine 1.
#[test]
fn the_engine_1_vectors_still_read_and_replay_byte_for_byte() {
    let doc = document_of("disposition-v1.json");
    let d = Disposition::from_bytes(&doc).expect("the v1 document reads");
    assert_eq!(d.format, "evl-disposition/v1");
    assert_eq!(d.engine_version, "evl-engine/1");
    assert!(d.blockers.iter().all(|b| b.unblock.is_none()));
    let bytes = std::fs::read(vector("bundle-v1.evlb")).unwrap();
    let r = bundle::verify_bundle(&bytes, &trust_root());
    assert!(r.ok(), "{:#?}", r.failures);
    assert_eq!(r.dispositions_replayed, 1);
    let body: BundleBody = codec::decode(&bytes[14..], bundle::MAX_BUNDLE_BYTES).unwrap();
    assert!(
        body.blobs.iter().any(|b| *b == doc),
        "the bundle carries the v1 document"
    );
}

/// The engine-2 flagship ledger (`tests/vectors/engine-2-flagship-ledger`, the store-layout-2
/// vector as the flagship example wrote it before engine 3): every disposition in it is an
/// `evl-disposition/v2` document recorded with engine 2, and still replays byte for byte
/// through the real binary; engine 3 derives the same content as RFC 8785 bytes.
#[test]
fn every_engine_2_disposition_of_the_previous_flagship_ledger_replays() {
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("ledger");
    for sub in ["", "index"] {
        std::fs::create_dir_all(l.join(sub)).unwrap();
        for e in std::fs::read_dir(vector("engine-2-flagship-ledger").join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, l.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    let ledger = evl::store::Ledger::open(&l, &Default::default()).unwrap();
    let mut ids = Vec::new();
    for i in 0..ledger.size().unwrap() {
        let e = ledger.entry(i).unwrap();
        if let Payload::Disposition(r) = &e.body.payload {
            assert_eq!(r.engine_version, "evl-engine/2");
            ids.push(e.id().to_hex());
            let doc = ledger.blob(&r.document).unwrap().unwrap();
            let d = Disposition::from_bytes(&doc).unwrap();
            assert_eq!(d.format, "evl-disposition/v2");
            let input = evl::evaluate::load_input(&ledger, &r.packet).unwrap();
            let v3 = evl::evaluate::evaluate(&input, r.as_of).unwrap();
            assert_eq!(v3.format, "evl-disposition/v3");
            assert_ne!(v3.canonical_bytes(), doc, "v3 bytes are not v2 bytes");
            // The same content: only the version fields and the layout differ.
            let mut same = v3.clone();
            same.format = d.format.clone();
            same.engine_version = d.engine_version.clone();
            assert_eq!(same, d);
        }
    }
    drop(ledger);
    assert!(ids.len() >= 6, "the flagship records its dispositions");
    for id in ids {
        let o = Command::cargo_bin("evl")
            .unwrap()
            .arg("--ledger")
            .arg(&l)
            .args(["replay", &id])
            .env_remove("EVL_LEDGER")
            .output()
            .unwrap();
        let out = String::from_utf8(o.stdout).unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            out.contains("re-derives byte for byte from its basis (engine evl-engine/2)"),
            "{out}"
        );
    }
}

/// The engine-1 flagship ledger (`tests/vectors/engine-1-flagship-ledger`, the store-layout-2
/// vector as the flagship example wrote it before engine 2): every disposition in it was
/// recorded with engine 1 and replays byte for byte through the real binary.
#[test]
fn every_engine_1_disposition_of_the_old_flagship_ledger_replays() {
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("ledger");
    for sub in ["", "index"] {
        std::fs::create_dir_all(l.join(sub)).unwrap();
        for e in std::fs::read_dir(vector("engine-1-flagship-ledger").join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, l.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    let ledger = evl::store::Ledger::open(&l, &Default::default()).unwrap();
    let mut ids = Vec::new();
    let mut engines_differ = 0;
    for i in 0..ledger.size().unwrap() {
        let e = ledger.entry(i).unwrap();
        if let Payload::Disposition(r) = &e.body.payload {
            assert_eq!(r.engine_version, "evl-engine/1");
            ids.push(e.id().to_hex());
            // Engine 1 re-derives the stored bytes; engine 2 derives other bytes, so replay
            // must pick the recorded engine to match.
            let doc = ledger.blob(&r.document).unwrap().unwrap();
            let input = evl::evaluate::load_input(&ledger, &r.packet).unwrap();
            let v1 = evl::evaluate::evaluate_with("evl-engine/1", &input, r.as_of).unwrap();
            assert_eq!(v1.canonical_bytes(), doc);
            let v2 = evl::evaluate::evaluate(&input, r.as_of).unwrap();
            assert_eq!(v2.verdict.name(), r.verdict, "engine 2 keeps the verdict");
            engines_differ += usize::from(v2.canonical_bytes() != doc);
        }
    }
    drop(ledger);
    assert_eq!(ids.len(), 6, "the old flagship recorded six dispositions");
    assert_eq!(engines_differ, 6);
    for id in ids {
        let o = Command::cargo_bin("evl")
            .unwrap()
            .arg("--ledger")
            .arg(&l)
            .args(["replay", &id])
            .env_remove("EVL_LEDGER")
            .output()
            .unwrap();
        let out = String::from_utf8(o.stdout).unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            out,
            format!(
                "replayed: disposition {id} re-derives byte for byte from its basis (engine evl-engine/1)\n"
            )
        );
    }
}

#[test]
fn the_disposition_vectors_obey_format_md() {
    check_format_md("disposition-v1.json", "evl-disposition/v1");
    check_format_md(DISPOSITION_V2, "evl-disposition/v2");
}

fn check_format_md(name: &str, format: &str) {
    let v = read_json(name);
    let bytes = document_of(name);
    let text = std::str::from_utf8(&bytes).unwrap();
    // Canonical bytes: pretty JSON, two-space indent, ": " separators, one trailing newline.
    assert!(text.ends_with("}\n") && !text.ends_with("\n\n"));
    assert!(text.starts_with(&format!("{{\n  \"format\": \"{format}\",\n")));
    for line in text.lines() {
        assert!(!line.ends_with(' '), "trailing space: {line:?}");
        let indent = line.len() - line.trim_start_matches(' ').len();
        assert_eq!(indent % 2, 0, "odd indent: {line:?}");
        assert!(!line.contains('\t'));
    }
    assert!(text.contains("\"verdict\": \""));
    // BLAKE3 of the bytes is the digest the entry records.
    assert_eq!(
        blake3::hash(&bytes).to_hex().as_str(),
        v["document_blake3"].as_str().unwrap()
    );
    let d = Disposition::from_bytes(&bytes).expect("the vector is canonical");
    assert_eq!(d.canonical_bytes(), bytes);
    // Top-level fields in the order of the FORMAT.md table.
    let order = [
        "format",
        "engine_version",
        "packet",
        "packet_name",
        "revision",
        "gate",
        "gate_id",
        "as_of",
        "checkpoint_at",
        "basis_digest",
        "verdict",
        "would_be",
        "escalation",
        "blockers",
        "scope",
        "narrowing_proposals",
        "trace",
    ];
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  \"") && !l.starts_with("   "))
        .map(|l| l[3..].split('"').next().unwrap())
        .collect();
    assert_eq!(keys, order);
    // Any other layout of the same content is refused.
    let compact = serde_json::to_vec(&serde_json::from_slice::<Value>(&bytes).unwrap()).unwrap();
    assert!(matches!(
        Disposition::from_bytes(&compact),
        Err(DocumentError::NotCanonical)
    ));
    let mut no_newline = bytes.clone();
    no_newline.pop();
    assert!(matches!(
        Disposition::from_bytes(&no_newline),
        Err(DocumentError::NotCanonical)
    ));
    // Field shapes of the table.
    let j: Value = serde_json::from_slice(&bytes).unwrap();
    let is_hex32 = |s: &Value| {
        s.as_str()
            .is_some_and(|s| s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit()))
    };
    for f in ["packet", "gate", "basis_digest"] {
        assert!(is_hex32(&j[f]), "{f} is not a hex digest");
    }
    for f in ["as_of", "checkpoint_at"] {
        let s = j[f].as_str().unwrap();
        assert!(
            s.len() == 20 && s.ends_with('Z'),
            "{f} is not RFC 3339 Z seconds: {s}"
        );
    }
    assert!(["proceed", "hold", "narrow", "escalate"].contains(&j["verdict"].as_str().unwrap()));
    let pct = j["scope"]["out_of_scope_share_pct"].as_str().unwrap();
    let (int, dec) = pct.split_once('.').expect("two decimals");
    assert!(
        int.bytes().all(|c| c.is_ascii_digit()) && dec.len() == 2,
        "{pct}"
    );
    let blockers = j["blockers"].as_array().unwrap();
    assert!(!blockers.is_empty());
    for b in blockers {
        let ty = b["subject"]["type"].as_str().unwrap();
        assert!(
            [
                "workload",
                "namespace",
                "path",
                "exception",
                "rule",
                "global"
            ]
            .contains(&ty)
        );
        assert!(b["evidence"].as_array().unwrap().iter().all(is_hex32));
        // v2: every blocker says what would clear it, with the fields of FORMAT.md in order.
        let u = &b["unblock"];
        if format == "evl-disposition/v1" {
            assert!(u.is_null(), "a v1 blocker has no unblock: {b}");
            continue;
        }
        let mut keys: Vec<&str> = u.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "action",
                "by",
                "kind",
                "labels",
                "min_tier",
                "observed_after",
                "role",
                "sealed",
                "subject",
                "text"
            ]
        );
        // In the document's bytes the fields come in the order of FORMAT.md.
        let order = [
            "\"action\"",
            "\"kind\"",
            "\"labels\"",
            "\"min_tier\"",
            "\"sealed\"",
            "\"role\"",
            "\"subject\"",
            "\"observed_after\"",
            "\"by\"",
            "\"text\"",
        ];
        let at = text.find("\"unblock\": {").unwrap();
        let pos: Vec<usize> = order
            .iter()
            .map(|k| at + text[at..].find(k).unwrap())
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "unblock field order");
        assert!(
            [
                "add-evidence",
                "refresh-evidence",
                "replace-evidence",
                "update-inventory",
                "renew-exception",
                "acknowledge",
                "close-review"
            ]
            .contains(&u["action"].as_str().unwrap())
        );
        // By the proposed checkpoint at the latest (an expiring exception: its expiry).
        assert!(
            u["by"].as_str().unwrap() <= j["checkpoint_at"].as_str().unwrap(),
            "{b}"
        );
        assert!(!u["text"].as_str().unwrap().is_empty());
    }
    let parsed: Vec<_> = d.blockers.clone();
    let mut sorted = parsed.clone();
    sorted.sort();
    assert_eq!(parsed, sorted, "blockers are not sorted");
    for t in j["trace"].as_array().unwrap() {
        assert!(
            ["pass", "blocker", "ignored", "info", "escalate"]
                .contains(&t["outcome"].as_str().unwrap())
        );
    }
    // `global` has no `name`.
    assert_eq!(
        serde_json::to_value(Subject::Global).unwrap(),
        json!({"type": "global"})
    );
}

#[test]
fn the_basis_digest_is_blake3_of_the_domain_and_sorted_ids() {
    let v = read_json("disposition-v1.json");
    let b = &v["basis"];
    assert_eq!(b["domain"], "evl/basis/v1\n");
    assert_eq!(domain::BASIS, b"evl/basis/v1\n");
    let ids: Vec<[u8; 32]> = b["ids_sorted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            hex::decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted, de-duplicated");
    let mut input = b"evl/basis/v1\n".to_vec();
    for id in &ids {
        input.extend_from_slice(id);
    }
    assert_eq!(hex::encode(&input), b["input_hex"].as_str().unwrap());
    let digest = blake3::hash(&input).to_hex().to_string();
    assert_eq!(digest, b["digest"].as_str().unwrap());
    let doc: Value = serde_json::from_str(v["document"].as_str().unwrap()).unwrap();
    assert_eq!(doc["basis_digest"].as_str().unwrap(), digest);
    // The library function agrees, whatever the order and duplicates of its input.
    let mut shuffled: Vec<EntryId> = ids.iter().rev().map(|i| Digest(*i)).collect();
    shuffled.push(shuffled[0]);
    assert_eq!(disposition::basis_digest(&shuffled).to_hex(), digest);
}

#[test]
fn the_bundle_vector_obeys_format_md() {
    let bytes = std::fs::read(vector("bundle-v1.evlb")).unwrap();
    let expect = read_json("bundle-v1.json");
    assert_eq!(bytes.len() as u64, expect["bytes"].as_u64().unwrap());
    assert_eq!(
        blake3::hash(&bytes).to_hex().as_str(),
        expect["blake3"].as_str().unwrap()
    );
    assert_eq!(bundle_expectation(&bytes), expect);
    assert_eq!(expect["verified"], true);
    assert_eq!(bundle::MAX_BUNDLE_BYTES, 256 * 1024 * 1024);
    // Magic: "evl-bundle/v1\n", 14 bytes, then the canonical encoding of BundleBody, nothing after.
    assert_eq!(&bytes[..14], b"evl-bundle/v1\n");
    assert_eq!(domain::BUNDLE_MAGIC, b"evl-bundle/v1\n");
    let body: BundleBody = codec::decode(&bytes[14..], bundle::MAX_BUNDLE_BYTES).unwrap();
    assert_eq!(
        [domain::BUNDLE_MAGIC, &codec::encode(&body)].concat(),
        bytes,
        "re-encoding the body changes the bytes"
    );
    assert_eq!(body.version, 1);
    assert_eq!(body.origin, "example.org/evl-gate-vectors");
    let v = read_json("disposition-v1.json");
    assert_eq!(body.packet.to_hex(), v["packet"].as_str().unwrap());
    let cp = String::from_utf8(body.checkpoint.clone()).unwrap();
    assert!(cp.starts_with("example.org/evl-gate-vectors\n"), "{cp}");
    // Entries: strictly increasing index from the genesis; each proof is RFC 9162 inclusion of
    // SHA-256(0x00 || entry bytes) in the checkpoint's tree.
    assert_eq!(body.entries[0].index, 0);
    assert!(body.entries.windows(2).all(|w| w[0].index < w[1].index));
    let size: u64 = cp.lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(size, expect["checkpoint_size"].as_u64().unwrap());
    let root: [u8; 32] = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(cp.lines().nth(2).unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    };
    let mut kinds = Vec::new();
    for be in &body.entries {
        let leaf: [u8; 32] = Sha256::new()
            .chain_update([0u8])
            .chain_update(&be.bytes)
            .finalize()
            .into();
        assert_eq!(merkle::leaf_hash(&be.bytes).0, leaf);
        let proof: Vec<merkle::Hash> = be.proof.iter().map(|h| merkle::Hash(*h)).collect();
        assert!(merkle::check_inclusion(
            &proof,
            size,
            merkle::Hash(root),
            be.index,
            merkle::Hash(leaf)
        ));
        kinds.push(Entry::from_bytes(&be.bytes).unwrap().body.payload.kind());
    }
    // Carried: genesis, both key entries, five artifacts + the gate, the ack, the packet,
    // its disposition.
    let count = |k: &str| kinds.iter().filter(|x| **x == k).count();
    assert_eq!(count("genesis"), 1);
    assert_eq!(count("key-add"), 2);
    assert_eq!(count("artifact"), 6);
    assert_eq!(count("acknowledgment"), 1);
    assert_eq!(count("packet"), 1);
    assert_eq!(count("disposition"), 1);
    assert_eq!(
        kinds.len() as u64,
        expect["entries_checked"].as_u64().unwrap()
    );
    // Blobs: artifact bytes and the disposition document, in BLAKE3 digest order.
    let digests: Vec<Digest> = body.blobs.iter().map(|b| Digest::of(b)).collect();
    assert!(
        digests.windows(2).all(|w| w[0] < w[1]),
        "blobs not in digest order"
    );
    assert!(body.blobs.iter().any(|b| *b == stored_document()));
    assert_eq!(body.blobs.len(), 7);
    // No trailing bytes.
    let r = bundle::verify_bundle(&[bytes.as_slice(), b"\n"].concat(), &trust_root());
    assert!(!r.ok(), "a trailing byte was accepted");
}

/// What a byte of a bundle file is, by docs/FORMAT.md §"Bundles" and §"Canonical encoding".
#[derive(Clone, Copy, Debug, PartialEq)]
enum Part {
    Magic,
    Version,
    /// A length or count prefix: altering it changes how the rest decodes.
    Length,
    Origin,
    Packet,
    Checkpoint,
    /// The `index` field of the carried entry at this position (by its true index).
    EntryIndex(u64),
    EntryBytes(u64),
    Proof(u64),
    /// Byte of the carried blob number `i`.
    Blob(usize),
}

/// Every byte range of a bundle and what it holds, walking the encoding as FORMAT.md gives
/// it (fixed-width little-endian integers, `u64` lengths), not through evl's decoder.
fn bundle_parts(bytes: &[u8]) -> Vec<(std::ops::Range<usize>, Part)> {
    let mut parts: Vec<(std::ops::Range<usize>, Part)> = Vec::new();
    // Records the next `n` bytes as `part`; returns their range.
    let mut take = |n: usize, part: Part| {
        let at = parts.last().map_or(0, |(r, _)| r.end);
        parts.push((at..at + n, part));
        at..at + n
    };
    let u64_at = |r: std::ops::Range<usize>| u64::from_le_bytes(bytes[r].try_into().unwrap());
    take(domain::BUNDLE_MAGIC.len(), Part::Magic);
    take(2, Part::Version);
    let n = u64_at(take(8, Part::Length)) as usize;
    take(n, Part::Origin);
    take(32, Part::Packet);
    let n = u64_at(take(8, Part::Length)) as usize;
    take(n, Part::Checkpoint);
    let entries = u64_at(take(8, Part::Length));
    for _ in 0..entries {
        // The index is read where it lies, then recorded under its own value.
        let at = take(0, Part::Length).start;
        let index = u64_at(at..at + 8);
        take(8, Part::EntryIndex(index));
        let n = u64_at(take(8, Part::Length)) as usize;
        take(n, Part::EntryBytes(index));
        let hashes = u64_at(take(8, Part::Length)) as usize;
        take(32 * hashes, Part::Proof(index));
    }
    let blobs = u64_at(take(8, Part::Length));
    for i in 0..blobs as usize {
        let n = u64_at(take(8, Part::Length)) as usize;
        take(n, Part::Blob(i));
    }
    let end = parts.last().map_or(0, |(r, _)| r.end);
    assert_eq!(end, bytes.len(), "the walk must cover the whole bundle");
    parts.retain(|(r, _)| !r.is_empty());
    parts
}

/// Whether a failure line names entry index `n` ("at index 5 …", "at index 5: …").
fn names_index(failure: &str, n: u64) -> bool {
    let needle = format!("at index {n}");
    failure
        .match_indices(&needle)
        .any(|(i, _)| !failure[i + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

#[test]
fn every_altered_byte_of_the_bundle_vector_is_refused_naming_what() {
    let bytes = std::fs::read(vector("bundle-v1.evlb")).unwrap();
    let parts = bundle_parts(&bytes);
    let step = (bytes.len() / 400).max(1);
    let mut checked = 0;
    let mut seen = std::collections::HashSet::new();
    // Evenly spaced bytes, plus the first and last byte of every part.
    let sample: std::collections::BTreeSet<usize> = (0..bytes.len())
        .step_by(step)
        .chain(parts.iter().flat_map(|(r, _)| [r.start, r.end - 1]))
        .collect();
    for pos in sample {
        let (range, part) = parts
            .iter()
            .find(|(r, _)| r.contains(&pos))
            .unwrap()
            .clone();
        for mask in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[pos] ^= mask;
            let r = std::panic::catch_unwind(|| bundle::verify_bundle(&b, &trust_root()))
                .unwrap_or_else(|_| panic!("verify_bundle panicked on a flip at {pos}"));
            assert!(!r.ok(), "flip {mask:#04x} at {pos} verified");
            // What the failures must name, by what the byte was.
            let named = |f: &String| match part {
                Part::Magic => f.contains("bundle magic"),
                Part::Version => f.contains("bundle version"),
                Part::Length => f.contains("does not decode"),
                // An origin that is no longer UTF-8 is no string: the body does not decode.
                Part::Origin if std::str::from_utf8(&b[range.clone()]).is_err() => {
                    f.contains("does not decode")
                }
                Part::Origin | Part::Checkpoint => f.contains("the checkpoint does not verify"),
                Part::Packet => {
                    let flipped: [u8; 32] = b[range.clone()].try_into().unwrap();
                    f.contains(&format!(
                        "the packet {} is not carried",
                        Digest(flipped).short()
                    ))
                }
                Part::EntryIndex(_) => {
                    let new = u64::from_le_bytes(b[range.clone()].try_into().unwrap());
                    names_index(f, new) || f.contains("does not carry the genesis entry")
                }
                Part::EntryBytes(i) | Part::Proof(i) => names_index(f, i),
                Part::Blob(_) => {
                    let altered = Digest::of(&b[range.clone()]);
                    f.contains(&format!(
                        "carried bytes {} are referenced by no carried entry",
                        altered.short()
                    ))
                }
            };
            assert!(
                r.failures.iter().any(named),
                "flip {mask:#04x} at {pos} ({part:?}): no failure names it: {:#?}",
                r.failures
            );
            if let Part::Proof(_) = part {
                assert!(
                    r.failures.iter().any(|f| f.contains("inclusion proof")),
                    "flip at {pos} ({part:?}): {:#?}",
                    r.failures
                );
            }
            seen.insert(std::mem::discriminant(&part));
            checked += 1;
        }
    }
    assert!(checked > 400);
    // The sample reaches every kind of part.
    assert_eq!(seen.len(), 10, "kinds of part reached: {}", seen.len());
}
