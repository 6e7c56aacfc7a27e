//! The gate verbs of the real `evl` binary against the flagship mTLS cutover ledger of seed 000
//! (examples/mtls-cutover/SCENARIO.md): evaluate, replay (and its failure on a hand-edited store),
//! lineage, deadlines, export / verify-bundle (and its failure on any altered byte), decide,
//! narrow, watch and packet create — each checked on what it prints, not only its exit code.
//!
//! The flagship ledger is built once per test binary by running the compiled example with
//! `--keep` (the same command lines as the binary, in-process); every test works on its own copy.

mod common;

use common::{copy_dir, store};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use assert_cmd::Command;
use serde_json::Value;

const AS_OF: &str = "2026-04-20T00:00:00Z";

/// Exit codes of docs/CLI (src/error.rs `exit`).
const INVALID: i32 = 1;
const INPUT: i32 = 2;
const REFUSED: i32 = 3;

/// The v4 blockers of SCENARIO.md (code, subject type, subject name, affects).
const V4_BLOCKERS: &[(&str, &str, &str, &[&str])] = &[
    (
        "acknowledgment-missing",
        "namespace",
        "data-platform",
        &[
            "data-platform/data-platform-etl",
            "data-platform/data-platform-ingest",
        ],
    ),
    (
        "compatibility-unresolved",
        "workload",
        "orders/orders-journal-writer",
        &["orders/orders-journal-writer"],
    ),
    (
        "compatibility-unresolved",
        "workload",
        "payments/payments-ledger-sync",
        &["payments/payments-ledger-sync"],
    ),
    (
        "exception-expires-before-checkpoint",
        "exception",
        "mesh-cert-exc-117",
        &[
            "orders/orders-journal-writer",
            "payments/payments-ledger-sync",
        ],
    ),
    (
        "exception-expires-before-checkpoint",
        "exception",
        "mesh-cert-exc-122",
        &["data-platform/data-platform-etl"],
    ),
    (
        "rollback-drill-stale",
        "path",
        "legacy-grpc-settlement-adapter",
        &[
            "orders/orders-journal-writer",
            "payments/payments-ledger-sync",
        ],
    ),
];
const V4_IN_SCOPE: &[&str] = &[
    "edge-routing/edge-gateway",
    "edge-routing/edge-router",
    "identity/identity-directory",
    "identity/identity-token-service",
    "payments/payments-api",
    "payments/payments-gateway",
];
const V4_OUT_OF_SCOPE: &[&str] = &[
    "data-platform/data-platform-etl",
    "data-platform/data-platform-ingest",
    "orders/orders-journal-writer",
    "payments/payments-ledger-sync",
];

/// The flagship work directory (`ledger/`, `keys/`, `packet-v4.evlb`) and the ids found in it.
struct Flagship {
    dir: PathBuf,
    log: Vec<Value>,
}

impl Flagship {
    /// Full id of the packet named `…-v{rev}` (exact name).
    fn packet(&self, rev: u32) -> String {
        let name = format!("Service-Mesh-mTLS-Enforcement-Gate-Packet-v{rev}");
        self.find(|e| e["kind"] == "packet" && payload(e)["name"] == name.as_str())
    }

    /// Full id of the disposition recorded for `packet` at `as_of`.
    fn disposition(&self, packet: &str, as_of: &str) -> String {
        self.find(|e| {
            e["kind"] == "disposition"
                && payload(e)["packet"] == packet
                && payload(e)["as_of"] == as_of
        })
    }

    /// Full id of the artifact entry with this file name (the first, in log order).
    fn artifact(&self, file_name: &str) -> String {
        self.find(|e| e["kind"] == "artifact" && payload(e)["file_name"] == file_name)
    }

    fn entry(&self, id: &str) -> &Value {
        self.log
            .iter()
            .find(|e| e["id"] == id)
            .expect("entry in the flagship log")
    }

    fn find(&self, f: impl Fn(&Value) -> bool) -> String {
        let hits: Vec<&Value> = self.log.iter().filter(|e| f(e)).collect();
        assert_eq!(hits.len(), 1, "exactly one flagship entry matches");
        hits[0]["id"].as_str().unwrap().to_string()
    }

    fn key(&self, name: &str) -> PathBuf {
        self.dir.join("keys").join(format!("{name}.key"))
    }

    /// The genesis entry id: the trust root an auditor holds for verify-bundle.
    fn genesis(&self) -> String {
        assert_eq!(self.log[0]["kind"], "genesis");
        self.log[0]["id"].as_str().unwrap().to_string()
    }
}

/// The one payload object of a `evl log --json` entry.
fn payload(e: &Value) -> &Value {
    e["body"]["payload"]
        .as_object()
        .and_then(|m| m.values().next())
        .expect("a payload")
}

fn flagship() -> &'static Flagship {
    static F: OnceLock<Flagship> = OnceLock::new();
    F.get_or_init(|| {
        let dir = common::flagship().to_path_buf();
        let log = ndjson(&evl(&dir.join("ledger"), &["log", "--json"]));
        Flagship {
            dir,
            log: log.as_array().unwrap().clone(),
        }
    })
}

/// A private copy of the flagship ledger (tests mutate it).
fn ledger_copy() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("ledger");
    copy_dir(&flagship().dir.join("ledger"), &l);
    (t, l)
}

/// Runs evl to completion; never accepts a panic (exit 101 or a panic message), whatever the
/// caller then expects of the exit code.
fn run(ledger: &Path, args: &[&str]) -> Output {
    // Auditor state beside the ledger (each copy its own), never in the home directory.
    let state = ledger
        .parent()
        .expect("a ledger in a directory")
        .join("state");
    let o = Command::cargo_bin("evl")
        .unwrap()
        .arg("--ledger")
        .arg(ledger)
        .args(args)
        .env_remove("EVL_KEY")
        .env_remove("EVL_LEDGER")
        .env_remove("EVL_STATE_DIR")
        .env("XDG_STATE_HOME", state)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() != Some(101) && !err.contains("panicked"),
        "evl {args:?} panicked: {err}"
    );
    o
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("evl exited (no signal)")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Runs evl and insists on exit 0.
fn evl(ledger: &Path, args: &[&str]) -> Output {
    let o = run(ledger, args);
    assert_eq!(
        code(&o),
        0,
        "evl {args:?} failed:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    o
}

/// `evl log --json` output: one JSON value per line, as an array.
fn ndjson(o: &Output) -> Value {
    Value::Array(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("evl printed a JSON line"))
            .collect(),
    )
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).expect("evl printed JSON")
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn log_bytes(ledger: &Path) -> Vec<u8> {
    evl(ledger, &["log", "--json"]).stdout
}

/// Replaces the stored bytes whose digest is `digest_hex` with `edited`, the way someone
/// with write access to the store directory could: the log is rewritten and re-sealed, so
/// only the digest the entries name can tell.
fn edit_blob(ledger: &Path, digest_hex: &str, edited: Vec<u8>) {
    let mut found = false;
    store::rewrite(ledger, |tag, body| {
        if tag == store::BLOB && hex::encode(&body[..32]) == digest_hex {
            found = true;
            return Some([&body[..40], &edited].concat());
        }
        Some(body.to_vec())
    });
    assert!(found, "the log holds {digest_hex}");
}

/// Removes entry `id_hex` from the id index (the entry stays in the log) the way a forger
/// would, with a record whose check matches: lookups by id no longer find it.
fn drop_from_id_index(ledger: &Path, id_hex: &str) {
    let path = ledger.join("index").join("ids");
    let mut ids = std::fs::read(&path).unwrap();
    let id = hex::decode(id_hex).unwrap();
    let at = ids
        .chunks(48)
        .position(|r| r[..32] == id[..])
        .expect("the id index holds the entry");
    let forged = store::index_record(1, (0, 0), at as u64, &[0; 32], at as u64);
    ids[at * 48..at * 48 + 48].copy_from_slice(&forged);
    std::fs::write(&path, ids).unwrap();
}

fn blob(ledger: &Path, digest_hex: &str) -> Vec<u8> {
    store::blob(ledger, digest_hex)
}

fn blocker_set(d: &Value) -> BTreeSet<(String, String, String, Vec<String>)> {
    d["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(b["scoped"], true, "every v4 blocker is scoped: {b}");
            (
                b["code"].as_str().unwrap().to_string(),
                b["subject"]["type"].as_str().unwrap().to_string(),
                b["subject"]["name"].as_str().unwrap().to_string(),
                b["affects"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect()
}

#[test]
fn evaluate_v4_json_is_deterministic_equals_the_recorded_document_and_matches_the_scenario() {
    let f = flagship();
    let (_t, l) = ledger_copy();
    let v4 = f.packet(4);
    let a = evl(&l, &["evaluate", &v4, "--as-of", AS_OF, "--json"]).stdout;
    let b = evl(&l, &["evaluate", &v4[..12], "--as-of", AS_OF, "--json"]).stdout;
    assert_eq!(a, b, "two evaluations at the same as-of differ");
    let rec = f.disposition(&v4, AS_OF);
    let doc = payload(f.entry(&rec))["document"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        blake3::hash(&a).to_hex().as_str(),
        doc,
        "the evaluation does not hash to the recorded document digest"
    );
    let stored = evl(&l, &["cat", &doc]).stdout;
    assert_eq!(
        a, stored,
        "evaluate --json differs from `evl cat` of the recorded document"
    );

    let d: Value = serde_json::from_slice(&a).unwrap();
    assert_eq!(d["format"], "evl-disposition/v3");
    assert_eq!(d["engine_version"], "evl-engine/3");
    assert_eq!(d["packet"], v4.as_str());
    assert_eq!(d["revision"], 4);
    assert_eq!(d["as_of"], AS_OF);
    assert_eq!(d["checkpoint_at"], "2026-04-30T00:00:00Z");
    assert_eq!(d["verdict"], "narrow");
    assert_eq!(d["would_be"], Value::Null);
    let want: BTreeSet<_> = V4_BLOCKERS
        .iter()
        .map(|(c, t, n, a)| {
            (
                c.to_string(),
                t.to_string(),
                n.to_string(),
                a.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(blocker_set(&d), want);
    // What would clear each blocker: the stale drill needs a passing drill of that path, fresh
    // through the checkpoint (observed from 14 days before it), superseding the stale one.
    let grpc = f.artifact("drill-legacy-grpc-settlement-adapter-2026-04-05.toml");
    let policy = f.artifact("east-west-authorization-baseline-2026-04-17.yaml");
    let unblock = |code: &str, name: &str| {
        d["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["code"] == code && b["subject"]["name"] == name)
            .unwrap()["unblock"]
            .clone()
    };
    let u = unblock("rollback-drill-stale", "legacy-grpc-settlement-adapter");
    assert_eq!(u["action"], "refresh-evidence");
    assert_eq!(u["kind"], "rollback-drill");
    assert_eq!(u["min_tier"], "authoritative");
    assert_eq!(u["subject"], grpc.as_str());
    assert_eq!(u["observed_after"], "2026-04-16T00:00:00Z");
    assert_eq!(u["by"], "2026-04-30T00:00:00Z");
    let u = unblock("acknowledgment-missing", "data-platform");
    assert_eq!(u["action"], "acknowledge");
    assert_eq!(u["role"], "security-signer");
    assert_eq!(u["subject"], policy.as_str());
    assert_eq!(
        u["text"],
        format!(
            "a key holding the security-signer role signs `evl ack --topic east-west-authorization-policy --namespace data-platform --subject {}`; pin it in a new packet revision before the proposed checkpoint 2026-04-30T00:00:00Z",
            &policy[..12]
        )
    );
    let u = unblock("exception-expires-before-checkpoint", "mesh-cert-exc-117");
    assert_eq!(u["action"], "renew-exception");
    assert_eq!(u["by"], "2026-04-24T00:00:00Z", "before it expires");
    let u = unblock("compatibility-unresolved", "payments/payments-ledger-sync");
    assert_eq!(u["action"], "update-inventory");
    assert_eq!(u["sealed"], true, "the gate reads only a sealed inventory");
    let s = &d["scope"];
    assert_eq!(strs(&s["in_scope_workloads"]), V4_IN_SCOPE);
    assert_eq!(strs(&s["out_of_scope_workloads"]), V4_OUT_OF_SCOPE);
    assert_eq!(
        strs(&s["in_scope_namespaces"]),
        ["edge-routing", "identity", "payments"]
    );
    assert_eq!(
        strs(&s["out_of_scope_namespaces"]),
        ["data-platform", "orders"]
    );
    assert_eq!(s["out_of_scope_share_pct"], "40.00");
    let props = d["narrowing_proposals"].as_array().unwrap();
    assert_eq!(props.len(), 1);
    assert_eq!(props[0]["status"], "accepted");
    assert_eq!(props[0]["matches_derived_scope"], true);
    assert_eq!(strs(&props[0]["keep"]), V4_IN_SCOPE);
    // The excluded standup notes are named in the trace as ignored, never as evidence.
    let standup = f.artifact("standup-notes-2026-04-17.md");
    assert!(d["trace"].as_array().unwrap().iter().any(
        |t| t["outcome"] == "ignored" && t["detail"].as_str().unwrap().contains(&standup[..12])
    ));
    assert!(!String::from_utf8_lossy(&a).contains(&format!("\"{standup}\"")));
}

#[test]
fn evaluate_v4_text_names_every_blocker_and_what_stays_out() {
    let f = flagship();
    let (_t, l) = ledger_copy();
    let out = stdout(&evl(&l, &["evaluate", &f.packet(4), "--as-of", AS_OF]));
    assert!(out.contains("RECOMMENDATION: NARROW"), "{out}");
    assert!(out.contains("Blockers (6):"), "{out}");
    for (code, ty, name, _) in V4_BLOCKERS {
        let line = out
            .lines()
            .find(|l| l.contains(code) && l.contains(&format!("{ty} {name}")))
            .unwrap_or_else(|| panic!("no blocker line for {code} {ty} {name}:\n{out}"));
        assert!(
            line.contains("[evidence "),
            "blocker line names no evidence: {line}"
        );
    }
    let (_, out_part) = out.split_once("Out of scope:").unwrap();
    let out_part = out_part.split("Narrowing proposals").next().unwrap();
    assert!(out_part.contains("4 workload(s), 40.00 %"), "{out_part}");
    assert!(
        out_part.contains("whole namespaces out: data-platform, orders"),
        "{out_part}"
    );
    for w in V4_OUT_OF_SCOPE {
        assert!(
            out_part.contains(&format!("  {w}\n")),
            "{w} not listed out of scope"
        );
    }
    for w in V4_IN_SCOPE {
        assert!(!out_part.contains(w), "{w} listed out of scope");
    }
}

#[test]
fn every_recorded_disposition_replays() {
    let f = flagship();
    let (_t, l) = ledger_copy();
    let ds: Vec<&Value> = f
        .log
        .iter()
        .filter(|e| e["kind"] == "disposition")
        .collect();
    assert_eq!(ds.len(), 6, "the flagship records six dispositions");
    for d in ds {
        let id = d["id"].as_str().unwrap();
        let o = evl(&l, &["replay", id]);
        assert!(
            stdout(&o).contains(&format!(
                "replayed: disposition {id} re-derives byte for byte"
            )),
            "{}",
            stdout(&o)
        );
        let j = json(&evl(&l, &["replay", &id[..12], "--json"]));
        assert_eq!(j["matches"], true);
        assert_eq!(j["differences"], serde_json::json!([]));
        assert_eq!(j["missing"], serde_json::json!([]));
    }
}

#[test]
fn the_flagship_ledger_is_the_store_layout_2_vector_byte_for_byte() {
    // The example's every time is explicit, so its ledger never changes unless the format
    // does: then tests/vectors/store-layout-2 (and docs/FORMAT.md, and the layout tag) must.
    let vector = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/store-layout-2");
    let ledger = flagship().dir.join("ledger");
    for file in [
        "evl-store",
        "log",
        "lock",
        "index/format",
        "index/entries",
        "index/ids",
        "index/blobs",
        "index/hashes",
        "index/commits",
    ] {
        assert!(
            std::fs::read(ledger.join(file)).unwrap() == std::fs::read(vector.join(file)).unwrap(),
            "{file} differs from tests/vectors/store-layout-2/{file}"
        );
    }
}

#[test]
fn replay_fails_readably_after_a_disposition_document_is_edited_in_the_store() {
    let f = flagship();
    let (_t, l) = ledger_copy();
    let rec = f.disposition(&f.packet(4), AS_OF);
    let doc = payload(f.entry(&rec))["document"]
        .as_str()
        .unwrap()
        .to_string();
    let original = String::from_utf8(blob(&l, &doc)).unwrap();
    // (a version-3 document is RFC 8785 JSON: no space after the colon)
    let edited = original.replacen("\"verdict\":\"narrow\"", "\"verdict\":\"proceed\"", 1);
    assert_ne!(original, edited);
    edit_blob(&l, &doc, edited.into_bytes());
    let o = run(&l, &["replay", &rec]);
    assert_eq!(code(&o), INVALID, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("not the recorded {doc}")),
        "names the digest: {err}"
    );
    assert!(
        err.contains("stored → derived: verdict: \"proceed\" → \"narrow\""),
        "names the field: {err}"
    );
    assert!(
        err.contains("does not match the recorded disposition"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // The other dispositions are untouched.
    evl(
        &l,
        &[
            "replay",
            &f.disposition(&f.packet(3), "2026-04-19T00:00:00Z"),
        ],
    );
}

#[test]
fn replay_fails_readably_after_a_basis_artifact_is_edited_in_the_store() {
    let f = flagship();
    let (_t, l) = ledger_copy();
    let inv = f.artifact("mesh-enforcement-targets-2026-04-18.csv");
    let content = payload(f.entry(&inv))["content"]
        .as_str()
        .unwrap()
        .to_string();
    let original = String::from_utf8(blob(&l, &content)).unwrap();
    assert!(original.contains("unresolved"));
    let edited = original.replace("unresolved", "validated");
    edit_blob(&l, &content, edited.into_bytes());
    for as_of_packet in [(2u32, "2026-04-18T12:00:00Z"), (4, AS_OF)] {
        let rec = f.disposition(&f.packet(as_of_packet.0), as_of_packet.1);
        let o = run(&l, &["replay", &rec]);
        assert_eq!(code(&o), INVALID, "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(&inv), "names the artifact entry: {err}");
        assert!(err.contains(&content), "names the content digest: {err}");
        assert!(err.contains("do not hash to its content digest"), "{err}");
    }
    // evaluate refuses the altered basis the same way, naming it.
    let o = run(&l, &["evaluate", &f.packet(4), "--as-of", AS_OF]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains(&content), "{}", stderr(&o));
}

#[test]
fn a_basis_digest_missing_from_the_ledger_is_named_by_replay_and_evaluate() {
    let f = flagship();
    let (_t, l) = ledger_copy();
    let v4 = f.packet(4);
    let basis = strs(&payload(f.entry(&v4))["basis"])
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    // The payments acknowledgment, added in v4: drop it from the id index.
    let ack = f.find(|e| e["kind"] == "acknowledgment" && payload(e)["namespace"] == "payments");
    assert!(basis.contains(&ack));
    drop_from_id_index(&l, &ack);
    let rec = f.disposition(&v4, AS_OF);
    let o = run(&l, &["replay", &rec]);
    assert_eq!(code(&o), INVALID, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("missing from the ledger: {ack}")),
        "{}",
        stderr(&o)
    );
    let j: Value = serde_json::from_slice(&run(&l, &["replay", &rec, "--json"]).stdout).unwrap();
    assert_eq!(j["matches"], false);
    assert_eq!(j["missing"], serde_json::json!([ack]));
    let o = run(&l, &["evaluate", &v4, "--as-of", AS_OF]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains(&format!(
            "basis entry {ack} of packet {v4} is not in the ledger"
        )),
        "{}",
        stderr(&o)
    );
    // v2 and v3 do not depend on it.
    evl(
        &l,
        &[
            "replay",
            &f.disposition(&f.packet(3), "2026-04-19T00:00:00Z"),
        ],
    );
}

#[test]
fn lineage_and_deadlines_of_v4() {
    let f = flagship();
    let (_t, l) = ledger_copy();
    let v4 = f.packet(4);
    let revs = json(&evl(&l, &["lineage", &v4, "--json"]));
    assert_eq!(revs["schema"], "evl.lineage/v1");
    let revs = revs["revisions"].as_array().unwrap();
    assert_eq!(
        revs.iter()
            .map(|r| r["revision"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [2, 3, 4]
    );
    let first_verdicts: Vec<&str> = revs
        .iter()
        .map(|r| r["dispositions"][0]["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(first_verdicts, ["hold", "escalate", "narrow"]);
    assert_eq!(revs[2]["dispositions"][0]["as_of"], AS_OF);
    assert_eq!(revs[1]["verdict_change"], "HOLD → ESCALATE");
    assert_eq!(
        revs[1]["blockers_removed"],
        serde_json::json!([
            "acknowledgment-missing namespace edge-routing",
            "acknowledgment-missing namespace identity",
            "evidence-missing rule telemetry canary"
        ])
    );
    // v4 carries both recorded dispositions, in log order.
    assert_eq!(
        revs[2]["dispositions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["verdict"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["narrow", "hold"]
    );
    // v3's delta: the sealed canary supersedes the open capture.
    let open = f.find(|e| {
        e["kind"] == "artifact"
            && payload(e)["file_name"] == "mesh-mtls-canary-2026-04-11T00Z-2026-04-13T00Z.csv"
            && payload(e)["sealed"] == false
    });
    assert_eq!(revs[1]["removed"], serde_json::json!([open]));
    assert_eq!(revs[1]["superseded"][0]["old"], open.as_str());
    let proposals: Vec<(&str, &str)> = revs
        .iter()
        .flat_map(|r| r["proposals"].as_array().unwrap())
        .map(|p| {
            (
                p["status"].as_str().unwrap(),
                p["rationale"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(proposals.contains(&("rejected", "cut over identity and edge-routing only")));
    assert!(proposals.contains(&(
        "accepted",
        "validated stateless payments, identity and edge-routing workloads"
    )));

    let dl = json(&evl(&l, &["deadlines", &v4, "--as-of", AS_OF, "--json"]));
    assert_eq!(dl["schema"], "evl.deadlines/v1");
    let dl = &dl["deadlines"];
    let first = &dl[0];
    assert_eq!(first["at"], "2026-04-24T00:00:00Z");
    assert_eq!(first["verdict_before"], "narrow");
    assert_eq!(first["verdict_after"], "hold");
    assert_eq!(
        first["blockers_added"],
        serde_json::json!(["exception-expired exception mesh-cert-exc-117"])
    );
    let ats: Vec<&str> = dl
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["at"].as_str().unwrap())
        .collect();
    assert_eq!(
        &ats[..4],
        [
            "2026-04-24T00:00:00Z",
            "2026-04-27T00:00:00Z",
            "2026-04-29T14:00:01Z",
            "2026-04-30T10:30:01Z"
        ]
    );
    // The prediction holds: one second after, evaluate gives HOLD with exception-expired.
    let d = json(&evl(
        &l,
        &["evaluate", &v4, "--as-of", "2026-04-24T00:00:01Z", "--json"],
    ));
    assert_eq!(d["verdict"], "hold");
    assert!(
        d["blockers"].as_array().unwrap().iter().any(
            |b| b["code"] == "exception-expired" && b["subject"]["name"] == "mesh-cert-exc-117"
        )
    );
}

#[test]
fn export_then_verify_bundle_offline() {
    let f = flagship();
    let (t, l) = ledger_copy();
    let v4 = f.packet(4);
    let file = t.path().join("v4.evlb");
    let o = evl(&l, &["export", &v4[..12], "-o", p(&file)]);
    assert!(stdout(&o).contains("wrote bundle"), "{}", stdout(&o));
    // The export from a copy equals the one the example wrote (deterministic bytes).
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(f.dir.join("packet-v4.evlb")).unwrap()
    );
    // Offline: no ledger at all (point --ledger somewhere empty). Without a trust root the
    // auditor holds, nothing is verified: one line says which flags supply one.
    let nowhere = t.path().join("no-ledger");
    let o = run(&nowhere, &["verify-bundle", p(&file)]);
    assert_eq!(code(&o), INVALID, "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("no trust root") && stderr(&o).contains("--genesis"));
    let genesis = f.genesis();
    let o = evl(
        &nowhere,
        &["verify-bundle", p(&file), "--genesis", &genesis],
    );
    assert!(
        stdout(&o).contains("verified offline: 36 entries, 12 artifacts, 36 inclusion proofs against a checkpoint of size 42, 4 disposition(s) replayed"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains(&format!("genesis     {genesis}")),
        "{}",
        stdout(&o)
    );
    assert!(!nowhere.exists(), "verify-bundle created a ledger");
    let j = json(&evl(
        &nowhere,
        &["verify-bundle", p(&file), "--json", "--genesis", &genesis],
    ));
    assert_eq!(j["verified"], true);
    assert_eq!(j["trusted"]["genesis"], genesis.as_str());
    assert_eq!(j["trusted"]["size"], 42);
    assert_eq!(j["packet"], v4.as_str());
    assert_eq!(j["dispositions_replayed"], 4);
    assert_eq!(j["failures"], serde_json::json!([]));
}

#[test]
fn any_altered_bundle_byte_fails_verification_naming_what() {
    let f = flagship();
    let t = tempfile::tempdir().unwrap();
    let good = std::fs::read(f.dir.join("packet-v4.evlb")).unwrap();
    let n = good.len();
    // Positions across the whole file: the magic, the header, entries, proofs, blobs, the end.
    let mut positions: BTreeSet<usize> =
        [0, 13, 14, 15, 16, 20, 40, 60, 100, n / 2, n - 2, n - 1].into();
    positions.extend((0..20).map(|i| 200 + i * (n - 400) / 20));
    let file = t.path().join("flipped.evlb");
    let nowhere = t.path().join("no-ledger");
    let genesis = f.genesis();
    for &pos in &positions {
        let mut b = good.clone();
        b[pos] ^= 0x01;
        std::fs::write(&file, &b).unwrap();
        let o = run(
            &nowhere,
            &["verify-bundle", p(&file), "--genesis", &genesis],
        );
        let err = stderr(&o);
        assert_eq!(
            code(&o),
            INVALID,
            "flip at {pos}/{n} not refused: {}{err}",
            stdout(&o)
        );
        assert!(!err.contains("panicked"), "flip at {pos}: {err}");
        let fail = err
            .lines()
            .find(|l| l.starts_with("FAIL "))
            .unwrap_or_else(|| panic!("flip at {pos}: no FAIL line: {err}"));
        assert!(
            [
                "magic",
                "decode",
                "index",
                "artifact",
                "checkpoint",
                "carried",
                "bytes",
                "packet",
                "version",
                "entry"
            ]
            .iter()
            .any(|w| fail.contains(w)),
            "flip at {pos}: the failure does not name what: {fail}"
        );
        assert!(err.contains("does not verify"), "{err}");
    }
    // Truncation and a trailing byte.
    for b in [
        good[..n - 1].to_vec(),
        [good.as_slice(), b"\0"].concat(),
        vec![],
    ] {
        std::fs::write(&file, &b).unwrap();
        let o = run(
            &nowhere,
            &["verify-bundle", p(&file), "--genesis", &genesis],
        );
        assert_eq!(code(&o), INVALID, "{}", stderr(&o));
        assert!(stderr(&o).contains("FAIL "), "{}", stderr(&o));
    }
}

#[test]
fn decide_by_the_gate_chair_only() {
    let f = flagship();
    let (_t, l) = ledger_copy();
    let v4 = f.packet(4);
    let rec = f.disposition(&v4, AS_OF);
    let before = log_bytes(&l);
    let o = run(
        &l,
        &[
            "decide",
            &v4,
            "--disposition",
            &rec,
            "--decision",
            "approve-narrowed",
            "--key",
            p(&f.key("hana-okafor")),
            "--at",
            "2026-04-20T09:00:00Z",
        ],
    );
    assert_eq!(code(&o), REFUSED, "owner key: {}", stderr(&o));
    assert!(
        stderr(&o).contains("gate-chair") || stderr(&o).contains("role"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        log_bytes(&l),
        before,
        "a refused decision changed the ledger"
    );
    let o = evl(
        &l,
        &[
            "decide",
            &v4[..12],
            "--disposition",
            &rec[..12],
            "--decision",
            "approve-narrowed",
            "--text",
            "Cut over the six validated stateless workloads.",
            "--key",
            p(&f.key("omar-bennett")),
            "--at",
            "2026-04-20T09:00:00Z",
        ],
    );
    assert!(stdout(&o).starts_with("decision "), "{}", stdout(&o));
    let ds = ndjson(&evl(&l, &["log", "--kind", "decision", "--json"]));
    let ds = ds.as_array().unwrap();
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0]["signer_name"], "omar-bennett");
    let d = payload(&ds[0]);
    assert_eq!(d["packet"], v4.as_str());
    assert_eq!(d["disposition"], rec.as_str());
    assert_eq!(d["decision"], "approve-narrowed");
    // A disposition of another packet is refused as input.
    let before = log_bytes(&l);
    let v3rec = f.disposition(&f.packet(3), "2026-04-19T00:00:00Z");
    let o = run(
        &l,
        &[
            "decide",
            &v4,
            "--disposition",
            &v3rec,
            "--decision",
            "hold",
            "--key",
            p(&f.key("omar-bennett")),
            "--at",
            "2026-04-20T09:00:00Z",
        ],
    );
    assert_eq!(code(&o), INPUT, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not a disposition of packet"),
        "{}",
        stderr(&o)
    );
    assert_eq!(log_bytes(&l), before);
}

#[test]
fn narrow_refuses_a_workload_outside_the_packet() {
    let f = flagship();
    let (_t, l) = ledger_copy();
    let v4 = f.packet(4);
    let before = log_bytes(&l);
    let o = run(
        &l,
        &[
            "narrow",
            &v4,
            "--keep",
            "payments/payments-api",
            "--keep",
            "billing/invoice-writer",
            "--rationale",
            "x",
            "--key",
            p(&f.key("hana-okafor")),
            "--at",
            "2026-04-20T09:00:00Z",
        ],
    );
    assert_eq!(code(&o), INPUT, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--keep billing/invoice-writer is not an in-scope workload of packet"),
        "{}",
        stderr(&o)
    );
    assert_eq!(log_bytes(&l), before);
    // An accepted one is recorded against the packet, keeping exactly what was asked.
    evl(
        &l,
        &[
            "narrow",
            &v4,
            "--keep",
            "identity/identity-directory",
            "--keep",
            "identity/identity-directory",
            "--rationale",
            "identity only",
            "--key",
            p(&f.key("hana-okafor")),
            "--at",
            "2026-04-20T09:00:00Z",
        ],
    );
    let n = ndjson(&evl(&l, &["log", "--kind", "narrowing", "--json"]));
    let last = payload(n.as_array().unwrap().last().unwrap());
    assert_eq!(last["packet"], v4.as_str());
    assert_eq!(
        last["keep"].as_array().unwrap().len(),
        1,
        "duplicates kept: {last}"
    );
}

/// A disposition document's verdict and blockers (code, subject type, subject name): what
/// `watch` compares to decide whether a result changed.
fn result_of(doc: &Value) -> (String, Vec<(String, String, String)>) {
    let blockers = doc["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                s(&b["code"]),
                s(&b["subject"]["type"]),
                s(&b["subject"]["name"]),
            )
        })
        .collect();
    (doc["verdict"].as_str().unwrap().to_string(), blockers)
}

/// The dispositions recorded for `packet`, in log order: (entry id, document).
fn dispositions_of(l: &Path, packet: &str) -> Vec<(String, Value)> {
    ndjson(&evl(l, &["log", "--kind", "disposition", "--json"]))
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| payload(e)["packet"] == packet)
        .map(|e| {
            let doc = payload(e)["document"].as_str().unwrap().to_string();
            let id = e["id"].as_str().unwrap().to_string();
            (id, json(&evl(l, &["cat", &doc])))
        })
        .collect()
}

/// `evl watch` on the wall clock: the first look records exactly when the result at the time
/// it printed differs from the last one recorded for the newest revision (`evl evaluate` at
/// that time is the oracle); the second look, with nothing changed, records nothing.
#[test]
fn watch_records_only_when_the_result_changed() {
    let f = flagship();
    let (_t, l) = ledger_copy();
    let hana = f.key("hana-okafor");
    let v5 = f.packet(5);
    let args = [
        "watch",
        &f.packet(4),
        "--iterations",
        "1",
        "--interval",
        "0",
        "--key",
        p(&hana),
    ];
    let before = dispositions_of(&l, &v5);
    let first = stdout(&evl(&l, &args));
    // Watch follows the newest descendant of v4: v5.
    assert!(first.contains("revision 5"), "{first}");
    let now = first.split_whitespace().next().unwrap();
    let at_now = result_of(&json(&evl(
        &l,
        &["evaluate", &v5, "--as-of", now, "--json"],
    )));
    let last = result_of(&before.last().expect("the flagship records v5").1);
    let after = dispositions_of(&l, &v5);
    if at_now != last {
        assert!(first.contains(", recorded "), "{first}");
        assert_eq!(after.len(), before.len() + 1, "{first}");
        let (id, doc) = after.last().unwrap();
        assert_eq!(result_of(doc), at_now);
        assert_eq!(doc["as_of"], now);
        evl(&l, &["replay", id]);
    } else {
        assert!(first.contains(" unchanged"), "{first}");
        assert_eq!(after.len(), before.len(), "{first}");
    }
    let second = stdout(&evl(&l, &args));
    assert!(second.contains("unchanged"), "second look: {second}");
    assert!(!second.contains("recorded"), "second look: {second}");
    assert_eq!(
        dispositions_of(&l, &v5).len(),
        after.len(),
        "the second look recorded a disposition"
    );
}

/// A clock for `watch_with` that starts at a given time and moves only when watch sleeps.
struct SimulatedClock {
    now: i64,
    slept: Vec<u64>,
}

impl evl::cli::Clock for SimulatedClock {
    fn now(&mut self) -> evl::timestamp::Timestamp {
        evl::timestamp::Timestamp(self.now)
    }
    fn sleep(&mut self, d: std::time::Duration) {
        self.slept.push(d.as_secs());
        self.now += d.as_secs() as i64;
    }
}

/// The deadline path: on a simulated clock, looks that find nothing new and nothing due print
/// nothing and record nothing; the first look at or after the deadline the previous look
/// announced re-evaluates with no new entry and records the changed result.
#[test]
fn watch_re_evaluates_when_a_deadline_passes_with_nothing_appended() {
    use clap::Parser as _;
    let f = flagship();
    let (_t, l) = ledger_copy();
    let v5 = f.packet(5);
    let day = 86_400;
    let cli = evl::cli::Cli::try_parse_from([
        "evl",
        "--ledger",
        p(&l),
        "watch",
        &f.packet(4),
        "--key",
        p(&f.key("hana-okafor")),
        "--interval",
        &day.to_string(),
        "--iterations",
        "4",
    ])
    .unwrap();
    let evl::cli::Command::Watch(evl::cli::Lazy(args)) = cli.command else {
        panic!("parsed as another verb")
    };
    let start: evl::timestamp::Timestamp = "2026-04-21T00:00:00Z".parse().unwrap();
    let mut clock = SimulatedClock {
        now: start.seconds(),
        slept: vec![],
    };
    let before = dispositions_of(&l, &v5);
    let mut out = Vec::new();
    let code = evl::cli::watch_with(&cli.global, args, &mut clock, &mut out).unwrap();
    assert_eq!(code, 0);
    assert_eq!(
        clock.slept, [day as u64; 3],
        "three waits between four looks"
    );
    let out = String::from_utf8(out).unwrap();
    let after = dispositions_of(&l, &v5);
    // Look 1 (04-21): v5 is still NARROW, as recorded; the next change is announced. Looks 2
    // and 3 (04-22, 04-23): nothing new, nothing due, nothing printed. Look 4 (04-24): the
    // exception mesh-cert-exc-117 has expired, so the verdict is HOLD, recorded.
    let lines: Vec<&str> = out.lines().collect();
    let name = "Service-Mesh-mTLS-Enforcement-Gate-Packet-v5 revision 5";
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(
        lines[0],
        format!("2026-04-21T00:00:00Z  {name}: NARROW unchanged")
    );
    assert_eq!(lines[1], "    next change expected at 2026-04-24T00:00:00Z");
    assert_eq!(
        lines[2],
        format!(
            "2026-04-24T00:00:00Z  {name}: HOLD ({} blocker(s)), recorded {}",
            after.last().unwrap().1["blockers"]
                .as_array()
                .unwrap()
                .len(),
            after.last().unwrap().0
        )
    );
    assert_eq!(lines[3], "    next change expected at 2026-04-27T00:00:00Z");
    assert_eq!(after.len(), before.len() + 1);
    let (id, doc) = after.last().unwrap();
    assert_eq!(doc["as_of"], "2026-04-24T00:00:00Z");
    assert_eq!(doc["verdict"], "hold");
    assert!(
        result_of(doc).1.contains(&(
            "exception-expired".into(),
            "exception".into(),
            "mesh-cert-exc-117".into()
        )),
        "{doc:#}"
    );
    // It is exactly what evaluate derives at that time, and it replays.
    let derived = json(&evl(
        &l,
        &["evaluate", &v5, "--as-of", "2026-04-24T00:00:00Z", "--json"],
    ));
    assert_eq!(result_of(doc), result_of(&derived));
    evl(&l, &["replay", id]);
}

#[test]
fn packet_create_inherits_from_the_parent_and_refuses_bad_basis_edits() {
    let f = flagship();
    let (_t, l) = ledger_copy();
    let v4 = f.packet(4);
    let hana = f.key("hana-okafor");
    let strict = f.artifact("Mesh-Gate-Authority-Snapshot-2026-04-12-no-narrow.toml");
    let at = "2026-04-20T09:00:00Z";
    let refused: &[(&[&str], &str)] = &[
        (&["--drop", &strict], "is not in the basis"),
        (&["--basis", &f.packet(2)], "is a packet entry"),
        (
            &["--basis", &f.disposition(&v4, AS_OF)],
            "is a disposition entry",
        ),
        (&["--basis", "00000000deadbeef"], "00000000deadbeef"),
    ];
    for (extra, msg) in refused {
        let before = log_bytes(&l);
        let mut a = vec![
            "packet",
            "create",
            "--parent",
            &v4,
            "--key",
            p(&hana),
            "--at",
            at,
        ];
        a.extend_from_slice(extra);
        let o = run(&l, &a);
        assert_eq!(code(&o), INPUT, "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{extra:?}: {}", stderr(&o));
        assert_eq!(log_bytes(&l), before, "{extra:?} changed the ledger");
    }
    let o = evl(
        &l,
        &[
            "packet",
            "create",
            "--parent",
            &v4[..12],
            "--basis",
            &strict[..12],
            "--key",
            p(&hana),
            "--at",
            at,
        ],
    );
    assert!(stdout(&o).contains("(revision 5)"), "{}", stdout(&o));
    let new_id = stdout(&o).split_whitespace().nth(1).unwrap().to_string();
    let log = ndjson(&evl(&l, &["log", "--kind", "packet", "--json"]));
    let new = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == new_id.as_str())
        .unwrap();
    let (np, pp) = (payload(new), payload(f.entry(&v4)));
    assert_eq!(np["parent"], v4.as_str());
    assert_eq!(np["revision"], 5);
    for field in ["name", "gate", "checkpoint_at", "in_scope"] {
        assert_eq!(np[field], pp[field], "{field} not inherited");
    }
    let mut want: Vec<&str> = strs(&pp["basis"]);
    want.push(&strict);
    want.sort();
    assert_eq!(strs(&np["basis"]), want);
    // --drop of an inherited entry works, and the result evaluates.
    let ack = f.find(|e| e["kind"] == "acknowledgment" && payload(e)["namespace"] == "orders");
    let o = evl(
        &l,
        &[
            "packet",
            "create",
            "--parent",
            &v4,
            "--drop",
            &ack,
            "--key",
            p(&hana),
            "--at",
            at,
        ],
    );
    let dropped = stdout(&o).split_whitespace().nth(1).unwrap().to_string();
    let d = json(&evl(
        &l,
        &["evaluate", &dropped, "--as-of", AS_OF, "--json"],
    ));
    assert!(
        d["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["code"] == "acknowledgment-missing" && b["subject"]["name"] == "orders")
    );
}

/// Lineage must attribute to a revision's evidence delta only what that delta changed. The
/// flagship records v4 twice (NARROW as of 04-20, HOLD as of 04-24 after mesh-cert-exc-117
/// expired); lineage compares the parent's *last* disposition with the revision's *last* one
/// regardless of their as-of times, so it reports "this delta changed the verdict: ESCALATE →
/// HOLD" and lists the clock-driven `exception-expired` blocker as added by the delta
/// (acknowledgments and an accepted proposal), which no reviewer would agree with.
#[test]
fn lineage_attributes_only_the_evidence_delta_to_a_revision() {
    let f = flagship();
    let (_t, l) = ledger_copy();
    let revs = json(&evl(&l, &["lineage", &f.packet(4), "--json"]))["revisions"].clone();
    assert_eq!(revs[2]["verdict_change"], "ESCALATE → NARROW");
    // Re-derived at the same as-of time, v3 already had the stale drill (time, not the delta);
    // what v4's evidence delta did is close the payments and orders acknowledgment gaps.
    assert_eq!(revs[2]["blockers_added"], serde_json::json!([]));
    assert_eq!(
        revs[2]["blockers_removed"],
        serde_json::json!([
            "acknowledgment-missing namespace orders",
            "acknowledgment-missing namespace payments"
        ])
    );
    let text = stdout(&evl(&l, &["lineage", &f.packet(4)]));
    assert!(
        text.contains(
            "  recorded verdict ESCALATE → NARROW (the parent's last recorded against this revision's first)\n  this evidence delta changed the verdict: ESCALATE → NARROW (the parent re-derived as of 2026-04-20T00:00:00Z)\n"
        ),
        "{text}"
    );
    assert!(!text.contains("+ blocker exception-expired"), "{text}");
}

#[test]
fn export_with_a_fresh_checkpoint_carries_a_disposition_recorded_after_the_last_one() {
    let f = flagship();
    let (t, l) = ledger_copy();
    let v4 = f.packet(4);
    let hana = f.key("hana-okafor");
    let at = "2026-04-21T00:00:00Z";
    evl(
        &l,
        &[
            "evaluate",
            &v4,
            "--as-of",
            at,
            "--record",
            "--at",
            at,
            "--key",
            p(&hana),
        ],
    );
    let file = t.path().join("v4.evlb");
    let admin = f.key("mesh-admin");
    evl(
        &l,
        &["export", &v4, "-o", p(&file), "--checkpoint-key", p(&admin)],
    );
    let j = json(&evl(
        &l,
        &[
            "verify-bundle",
            p(&file),
            "--json",
            "--genesis",
            &f.genesis(),
        ],
    ));
    assert_eq!(j["verified"], true, "{j}");
    assert_eq!(j["dispositions_replayed"], 5, "{j}");
    assert_eq!(j["checkpoint_size"], 43, "{j}");
}

/// `evl export` without `--checkpoint-key` uses the latest stored checkpoint. A disposition of
/// the lineage recorded after it cannot be carried (its proof needs a larger tree), and is
/// never silently left out: export refuses with exit 2 naming it and the way out
/// (docs/FORMAT.md §"Bundles"), and writes no file.
#[test]
fn export_never_silently_omits_a_disposition_of_the_lineage() {
    let f = flagship();
    let (t, l) = ledger_copy();
    let v4 = f.packet(4);
    let hana = f.key("hana-okafor");
    let at = "2026-04-21T00:00:00Z";
    evl(
        &l,
        &[
            "evaluate",
            &v4,
            "--as-of",
            at,
            "--record",
            "--at",
            at,
            "--key",
            p(&hana),
        ],
    );
    let newest = ndjson(&evl(&l, &["log", "--kind", "disposition", "--json"]))
        .as_array()
        .unwrap()
        .last()
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let file = t.path().join("v4.evlb");
    let o = run(&l, &["export", &v4, "-o", p(&file)]);
    let err = stderr(&o);
    assert_eq!(code(&o), INPUT, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("evl: ")
            && err.contains(&newest)
            && err.contains("beyond the checkpoint")
            && err.contains("--checkpoint-key"),
        "{err}"
    );
    assert!(stdout(&o).is_empty());
    assert!(!file.exists(), "a refused export wrote {}", file.display());
}

/// A bundle whose inclusion proofs belong to another tree (the same ledger one checkpoint
/// later) is refused by `evl verify-bundle`, naming the failing proofs — never a panic.
#[test]
fn a_bundle_with_proofs_from_another_tree_fails() {
    use evl::bundle::BundleBody;
    let f = flagship();
    let (t, l) = ledger_copy();
    let v4 = f.packet(4);
    let admin = f.key("mesh-admin");
    let old = std::fs::read(f.dir.join("packet-v4.evlb")).unwrap();
    // Grow the tree and export again against a checkpoint of the larger tree.
    let reviewer = f.key("reviewer-platform-security");
    evl(
        &l,
        &[
            "annotate",
            &v4,
            "--kind",
            "note",
            "--text",
            "later note",
            "--key",
            p(&reviewer),
        ],
    );
    let newer = t.path().join("newer.evlb");
    evl(
        &l,
        &[
            "export",
            &v4,
            "-o",
            p(&newer),
            "--checkpoint-key",
            p(&admin),
        ],
    );
    let newer = std::fs::read(&newer).unwrap();
    let magic = evl::domain::BUNDLE_MAGIC.len();
    let decode = |b: &[u8]| -> BundleBody {
        evl::codec::decode(&b[magic..], evl::bundle::MAX_BUNDLE_BYTES).unwrap()
    };
    let (mut hybrid, donor) = (decode(&old), decode(&newer));
    let mut swapped = 0;
    for e in hybrid.entries.iter_mut() {
        if let Some(d) = donor.entries.iter().find(|d| d.index == e.index)
            && d.proof != e.proof
        {
            e.proof = d.proof.clone();
            swapped += 1;
        }
    }
    assert!(swapped > 0, "the two trees must give different proofs");
    let file = t.path().join("hybrid.evlb");
    std::fs::write(
        &file,
        [evl::domain::BUNDLE_MAGIC, &evl::codec::encode(&hybrid)].concat(),
    )
    .unwrap();
    let nowhere = t.path().join("no-ledger");
    let o = run(
        &nowhere,
        &["verify-bundle", p(&file), "--genesis", &f.genesis()],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("inclusion proof"),
        "the failure must name the proofs: {err}"
    );
    assert!(
        err.lines().last().unwrap().contains("does not verify"),
        "{err}"
    );
}
