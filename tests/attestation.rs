//! `evl export-attestation`: every disposition of the flagship ledger vector exported as a
//! DSSE envelope around an in-toto Statement v1 with a SLSA VSA v1-shaped predicate, verified
//! by the in-toto project's Python implementations (securesystemslib's DSSE envelope through
//! `in-toto`, the Statement and the VSA predicate through `in-toto-attestation`:
//! tests/independent/check_attestation.py); the fields are checked against the ledger's actual
//! bytes, and altered envelopes are refused (docs/ATTESTATIONS.md).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Out, evl_bin, parts, run};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

struct Flagship {
    dir: tempfile::TempDir,
}

impl Flagship {
    /// A copy of the flagship ledger vector and its demo keys (secret keys mode 0600).
    fn new() -> Flagship {
        let dir = tempfile::tempdir().unwrap();
        common::copy_dir(
            &Path::new(ROOT).join("tests/vectors/store-layout-2"),
            &dir.path().join("ledger"),
        );
        common::copy_dir(&Path::new(ROOT).join("keys"), &dir.path().join("keys"));
        for e in std::fs::read_dir(dir.path().join("keys")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "key") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
        Flagship { dir }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn evl(&self, args: &[&str]) -> Out {
        run(evl_bin()
            .arg("--ledger")
            .arg(self.path("ledger"))
            .args(args)
            .env("XDG_STATE_HOME", self.path("state")))
    }
    fn cat(&self, digest: &str) -> Vec<u8> {
        let o = evl_bin()
            .arg("--ledger")
            .arg(self.path("ledger"))
            .args(["cat", digest])
            .output()
            .unwrap();
        assert!(o.status.success());
        o.stdout
    }
    fn show(&self, id: &str) -> Value {
        self.evl(&["show", id, "--json"]).ok().json()
    }
    fn export(&self, id: &str, key: &str, out: &Path) {
        let k = self.path(&format!("keys/{key}.key"));
        let o = self.evl(&[
            "export-attestation",
            id,
            "--key",
            k.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        let o = o.ok();
        assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{o:#?}");
    }
}

fn verifier(envelope: &Path, public: &Path) -> (i32, String) {
    let py = parts::python_with(
        &[
            "securesystemslib>=1.6",
            "in-toto>=3.1",
            "in-toto-attestation>=0.9",
            "blake3>=0.4",
        ],
        &[],
    );
    let o = Command::new(py)
        .arg(Path::new(ROOT).join("tests/independent/check_attestation.py"))
        .arg(envelope)
        .arg(public)
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

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn blake3_hex(b: &[u8]) -> String {
    blake3::hash(b).to_hex().to_string()
}

#[test]
fn every_flagship_disposition_exports_an_attestation_in_toto_verifies() {
    let f = Flagship::new();
    let ds = f
        .evl(&["log", "--kind", "disposition", "--json"])
        .ok()
        .ndjson();
    let ds = ds.as_array().unwrap().clone();
    assert_eq!(ds.len(), 6);
    let public = f.path("keys/hana-okafor.pub");
    for d in &ds {
        let id = d["id"].as_str().unwrap();
        let rec = &d["body"]["payload"]["disposition"];
        let out = f.path(&format!("{}.intoto.jsonl", &id[..12]));
        f.export(id, "hana-okafor", &out);
        let (code, text) = verifier(&out, &public);
        assert_eq!(code, 0, "in-toto refused {id}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let st = &v["statement"];
        let p = &st["predicate"];
        // Time = the disposition's as-of time, not the clock.
        assert_eq!(p["timeVerified"], rec["as_of"]);
        let engine = rec["engine_version"].as_str().unwrap();
        assert_eq!(p["verifier"]["id"], format!("urn:evl:verifier:{engine}"));
        assert_eq!(p["verifier"]["version"]["evl-engine"], engine);
        // Resource and subject = the packet revision entry; both digests over its bytes.
        let packet = rec["packet"].as_str().unwrap();
        assert!(p["resourceUri"].as_str().unwrap().ends_with(packet));
        assert_eq!(st["subject"][0]["digest"]["blake3"], packet);
        // Policy = the gate definition's actual bytes.
        let pk = f.show(packet);
        let gate_id = pk["body"]["payload"]["packet"]["gate"].as_str().unwrap();
        let gate = f.show(gate_id);
        let content = gate["body"]["payload"]["artifact"]["content"]
            .as_str()
            .unwrap();
        let gate_bytes = f.cat(content);
        assert_eq!(p["policy"]["digest"]["sha256"], sha256_hex(&gate_bytes));
        assert_eq!(p["policy"]["digest"]["blake3"], blake3_hex(&gate_bytes));
        // Inputs = the basis, sorted.
        let mut basis: Vec<String> = pk["body"]["payload"]["packet"]["basis"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_str().unwrap().to_string())
            .collect();
        basis.sort();
        let inputs: Vec<String> = p["inputAttestations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["digest"]["blake3"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(inputs, basis);
        // Result: only PROCEED passes.
        let verdict = rec["verdict"].as_str().unwrap();
        let want = if verdict == "proceed" {
            "PASSED"
        } else {
            "FAILED"
        };
        assert_eq!(p["verificationResult"], want);
        // evl's own member: the verdict, blockers and scope of the document itself.
        let doc = f.cat(rec["document"].as_str().unwrap());
        let dj: Value = serde_json::from_slice(&doc).unwrap();
        let e = &p["evl"];
        assert_eq!(e["verdict"], verdict);
        assert_eq!(e["blockers"], dj["blockers"]);
        assert_eq!(e["scope"], dj["scope"]);
        assert_eq!(e["disposition"]["entry"], id);
        assert_eq!(
            e["disposition"]["document_digest"]["sha256"],
            sha256_hex(&doc)
        );
        assert_eq!(
            e["disposition"]["document_digest"]["blake3"],
            rec["document"]
        );
        assert!(v["digest_sets"].as_u64().unwrap() >= 4);
    }
}

#[test]
fn the_same_disposition_and_key_give_the_same_bytes() {
    let f = Flagship::new();
    let ds = f
        .evl(&["log", "--kind", "disposition", "--json"])
        .ok()
        .ndjson();
    let id = ds[2]["id"].as_str().unwrap().to_string();
    let (a, b) = (f.path("a.jsonl"), f.path("b.jsonl"));
    f.export(&id, "hana-okafor", &a);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    f.export(&id[..12], "hana-okafor", &b);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // stdout gets the same bytes as -o.
    let k = f.path("keys/hana-okafor.key");
    let o = f
        .evl(&["export-attestation", &id, "--key", k.to_str().unwrap()])
        .ok();
    assert_eq!(o.stdout.as_bytes(), std::fs::read(&a).unwrap());
    // A copy of the ledger in another directory, another day: the same bytes.
    let g = Flagship::new();
    let c = g.path("c.jsonl");
    g.export(&id, "hana-okafor", &c);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
}

#[test]
fn altered_envelopes_are_refused_by_the_in_toto_verifier() {
    let f = Flagship::new();
    let ds = f
        .evl(&["log", "--kind", "disposition", "--json"])
        .ok()
        .ndjson();
    let id = ds[0]["id"].as_str().unwrap().to_string();
    let good = f.path("good.jsonl");
    f.export(&id, "hana-okafor", &good);
    let public = f.path("keys/hana-okafor.pub");
    assert_eq!(verifier(&good, &public).0, 0);
    let env: Value = serde_json::from_slice(&std::fs::read(&good).unwrap()).unwrap();
    let payload = STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
    let sig = STANDARD
        .decode(env["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let mut cases: Vec<(&str, Value)> = Vec::new();
    // One byte of the payload: the verdict's first letter ("hold" → "Hold").
    let text = String::from_utf8(payload.clone()).unwrap();
    let at = text.find("\"verdict\":\"").unwrap() + 11;
    let mut p1 = payload.clone();
    p1[at] ^= 0x20;
    let mut e1 = env.clone();
    e1["payload"] = Value::from(STANDARD.encode(&p1));
    cases.push(("a payload byte", e1));
    // The result flipped to PASSED.
    let mut e2 = env.clone();
    e2["payload"] = Value::from(STANDARD.encode(text.replacen("FAILED", "PASSED", 1)));
    cases.push(("the verification result", e2));
    // One bit of the signature.
    let mut s = sig.clone();
    s[5] ^= 1;
    let mut e3 = env.clone();
    e3["signatures"][0]["sig"] = Value::from(STANDARD.encode(&s));
    cases.push(("a signature bit", e3));
    // Another payload type (the signature covers it).
    let mut e4 = env.clone();
    e4["payloadType"] = Value::from("application/json");
    cases.push(("the payload type", e4));
    for (what, e) in cases {
        let bad = f.path("bad.jsonl");
        std::fs::write(&bad, serde_json::to_vec(&e).unwrap()).unwrap();
        let (code, text) = verifier(&bad, &public);
        assert_eq!(code, 1, "{what} was accepted: {text}");
        assert!(text.starts_with("REFUSED"), "{what}: {text}");
    }
    // Signed by another key: refused under hana-okafor's key, accepted under its own.
    let other = f.path("other.jsonl");
    f.export(&id, "mesh-admin", &other);
    assert_eq!(verifier(&other, &public).0, 1);
    assert_eq!(verifier(&other, &f.path("keys/mesh-admin.pub")).0, 0);
}

#[test]
fn export_attestation_refuses_bad_input_with_one_line() {
    let f = Flagship::new();
    let k = f.path("keys/hana-okafor.key");
    let k = k.to_str().unwrap();
    let before = f.evl(&["log", "--json"]).ok().stdout;
    // A packet is not a disposition.
    let packets = f.evl(&["log", "--kind", "packet", "--json"]).ok().ndjson();
    let packet = packets[0]["id"].as_str().unwrap();
    f.evl(&["export-attestation", packet, "--key", k])
        .refused(2, &["not a disposition"]);
    f.evl(&["export-attestation", "ffffffffffff", "--key", k])
        .refused(2, &["ffffffffffff"]);
    // A secret key readable by others.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(k, std::fs::Permissions::from_mode(0o644)).unwrap();
    let ds = f
        .evl(&["log", "--kind", "disposition", "--json"])
        .ok()
        .ndjson();
    f.evl(&[
        "export-attestation",
        ds[0]["id"].as_str().unwrap(),
        "--key",
        k,
    ])
    .refused(3, &[k]);
    assert_eq!(
        f.evl(&["log", "--json"]).ok().stdout,
        before,
        "nothing appended"
    );
}

/// The committed vector: disposition 34 of the flagship ledger vector (NARROW), signed with
/// the demo key `keys/hana-okafor.key`. This evl reproduces it byte for byte, and the in-toto
/// verifier accepts it (docs/ATTESTATIONS.md).
#[test]
fn the_committed_attestation_vector_is_reproduced_and_verifies() {
    let f = Flagship::new();
    let vector =
        Path::new(ROOT).join("tests/vectors/attestation/flagship-disposition-34.intoto.jsonl");
    let out = f.path("v.jsonl");
    f.export("7b92a4401579", "hana-okafor", &out);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&vector).unwrap(),
        "the attestation bytes changed: a format change needs a new version (docs/ATTESTATIONS.md)"
    );
    let (code, text) = verifier(&vector, &Path::new(ROOT).join("keys/hana-okafor.pub"));
    assert_eq!(code, 0, "{text}");
}

#[test]
fn only_proceed_maps_to_passed() {
    use evl::attestation::verification_result;
    use evl::disposition::Verdict;
    assert_eq!(verification_result(Verdict::Proceed), "PASSED");
    for v in [Verdict::Hold, Verdict::Narrow, Verdict::Escalate] {
        assert_eq!(verification_result(v), "FAILED");
    }
}
