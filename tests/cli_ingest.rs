//! `evl ingest` through the real binary: facts recorded beside the bytes, strict errors that
//! change nothing.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ingest")
        .join(name)
}

struct Ledger {
    dir: tempfile::TempDir,
}

impl Ledger {
    fn new() -> Ledger {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger { dir };
        for k in ["admin", "owner"] {
            l.cmd()
                .args(["keygen", k, "--dir"])
                .arg(l.dir.path())
                .assert()
                .success();
        }
        l.cmd()
            .args(["init", "--origin", "example.org/t", "--admin"])
            .arg(l.p("admin.pub"))
            .arg("--key")
            .arg(l.p("admin.key"))
            .assert()
            .success();
        l.cmd()
            .args(["key", "add", "owner", "--role", "owner", "--pub"])
            .arg(l.p("owner.pub"))
            .arg("--key")
            .arg(l.p("admin.key"))
            .assert()
            .success();
        l
    }
    fn p(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }
    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("evl").unwrap();
        c.env("XDG_STATE_HOME", self.p("state"))
            .arg("--ledger")
            .arg(self.p("ledger"));
        c
    }
    fn json(&self, args: &[&str]) -> Value {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
    fn state(&self) -> (usize, String) {
        let log = self.cmd().args(["log", "--json"]).output().unwrap();
        assert!(log.status.success());
        let v = self.json(&["verify", "--json"]);
        (
            String::from_utf8_lossy(&log.stdout).lines().count(),
            v["report"]["root"].as_str().unwrap().to_string(),
        )
    }
}

#[test]
fn each_importer_records_bytes_and_facts_that_verify() {
    let l = Ledger::new();
    let key = l.p("owner.key");
    let key = key.to_str().unwrap();
    let inv = l.json(&[
        "ingest",
        "inventory",
        fixture("inventory.csv").to_str().unwrap(),
        "--key",
        key,
        "--json",
    ]);
    let rows = inv[0]["facts"]["facts"]["workloads"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["workload"] == "payments-ledger-sync" && r["compatibility"] == "unresolved")
    );
    let tel = l.json(&[
        "ingest",
        "telemetry",
        fixture("prometheus-instant.json").to_str().unwrap(),
        "--window",
        "mesh-mtls-canary-2026-04-11T00Z-2026-04-13T00Z",
        "--sealed",
        "--key",
        key,
        "--json",
    ]);
    assert_eq!(
        tel[0]["facts"]["facts"]["window"],
        "mesh-mtls-canary-2026-04-11T00Z-2026-04-13T00Z"
    );
    assert_eq!(tel[0]["facts"]["facts"]["sealed"], true);
    l.json(&[
        "ingest",
        "mesh",
        fixture("istio-mesh.yaml").to_str().unwrap(),
        fixture("linkerd-policy.yaml").to_str().unwrap(),
        "--key",
        key,
        "--json",
    ]);

    // The entry names the parser and the facts blob; `evl cat` returns the original bytes.
    let id = inv[0]["id"].as_str().unwrap();
    let shown = l.json(&["show", id, "--json"]);
    let meta = &shown["body"]["payload"]["artifact"];
    assert_eq!(meta["kind"], "workload-inventory");
    assert_eq!(meta["facts"]["parser"], "workload-inventory");
    assert_eq!(meta["facts"]["parser_version"], 1);
    let original = l.cmd().args(["cat", id]).output().unwrap().stdout;
    assert_eq!(original, std::fs::read(fixture("inventory.csv")).unwrap());
    let facts = l
        .cmd()
        .args(["cat", meta["facts"]["digest"].as_str().unwrap()])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(
        serde_json::from_slice::<Value>(&facts).unwrap(),
        inv[0]["facts"]
    );

    let v = l.json(&["verify", "--json"]);
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["report"]["entries_checked"], 6);
}

#[test]
fn malformed_evidence_names_the_problem_and_changes_nothing() {
    let l = Ledger::new();
    let before = l.state();
    let bad_csv = l.p("bad.csv");
    std::fs::write(&bad_csv, "namespace,workload,owner,stateful,sidecar_mode,compatibility,ambient_ready,exception_ids\npayments,api,team,maybe,injected,validated,true,\n").unwrap();
    let bad_yaml = l.p("bad.yaml");
    std::fs::write(
        &bad_yaml,
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: [unclosed\n",
    )
    .unwrap();
    let bad_json = l.p("bad.json");
    std::fs::write(
        &bad_json,
        "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[",
    )
    .unwrap();
    let good = fixture("inventory.csv");
    for (args, needle) in [
        (
            vec!["ingest", "inventory", bad_csv.to_str().unwrap()],
            "line 2",
        ),
        // A good file and a bad one in one call: the batch is refused whole.
        (
            vec![
                "ingest",
                "inventory",
                good.to_str().unwrap(),
                bad_csv.to_str().unwrap(),
            ],
            "stateful",
        ),
        (
            vec!["ingest", "mesh", bad_yaml.to_str().unwrap()],
            "bad.yaml",
        ),
        (
            vec![
                "ingest",
                "telemetry",
                bad_json.to_str().unwrap(),
                "--window",
                "w",
            ],
            "bad.json",
        ),
        (
            vec![
                "ingest",
                "telemetry",
                fixture("telemetry.csv").to_str().unwrap(),
            ],
            "window",
        ),
        (
            vec!["ingest", "cert", good.to_str().unwrap()],
            "inventory.csv",
        ),
    ] {
        let out = l
            .cmd()
            .args(&args)
            .arg("--key")
            .arg(l.p("owner.key"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: expected '{needle}' in: {err}"
        );
        assert!(!err.contains("panicked"));
        assert_eq!(l.state(), before, "{args:?} changed the ledger");
    }
}

/// Every file of the ledger directory with its bytes.
fn ledger_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Files the upstream project would refuse are refused through the real binary with one line
/// naming file, line and field (exit 2), and the ledger's log and index files stay byte for
/// byte as they were.
#[test]
fn refused_files_name_file_line_and_field_and_leave_the_log_byte_identical() {
    let l = Ledger::new();
    let invalid_ap = l.p("deny-without-rules.yaml");
    std::fs::write(
        &invalid_ap,
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: deny-nothing\n  namespace: payments\nspec:\n  action: DENY\n",
    )
    .unwrap();
    let other_ns = l.p("orders.yaml");
    std::fs::write(
        &other_ns,
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: orders}\nspec: {mtls: {mode: STRICT}}\n",
    )
    .unwrap();
    let linkerd = l.p("linkerd.yaml");
    std::fs::write(
        &linkerd,
        "apiVersion: policy.linkerd.io/v1alpha1\nkind: NetworkAuthentication\nmetadata: {name: n, namespace: a}\nspec:\n  networks:\n  - cidr: 10.0.0.0/16\n    except: [192.168.0.0/24]\n",
    )
    .unwrap();
    let trailing = l.p("trailing.der");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut der = rcgen::CertificateParams::new(vec!["a.example".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .der()
        .to_vec();
    der.extend_from_slice(b"junk");
    std::fs::write(&trailing, der).unwrap();
    let scalar = l.p("scalar.json");
    std::fs::write(
        &scalar,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1776038400,"3"]}}"#,
    )
    .unwrap();
    let before = ledger_files(&l.p("ledger"));
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    for (args, needles) in [
        (
            vec!["ingest".into(), "mesh".into(), s(&invalid_ap)],
            vec!["deny-without-rules.yaml, line 6, field spec.rules:", "DENY"],
        ),
        (
            vec![
                "ingest".into(),
                "mesh".into(),
                s(&other_ns),
                "--namespace".into(),
                "payments".into(),
            ],
            vec![
                "orders.yaml, line 3, field metadata.namespace:",
                "kubectl apply -n payments",
            ],
        ),
        (
            vec!["ingest".into(), "mesh".into(), s(&linkerd)],
            vec![
                "linkerd.yaml, line 7, field spec.networks[0].except:",
                "does not include",
            ],
        ),
        (
            vec!["ingest".into(), "cert".into(), s(&trailing)],
            vec!["trailing.der, field DER:", "trailing data"],
        ),
        (
            vec![
                "ingest".into(),
                "telemetry".into(),
                s(&scalar),
                "--window".into(),
                "w".into(),
                "--metric".into(),
                "rps".into(),
            ],
            vec!["scalar.json, field data.resultType:", "\"scalar\""],
        ),
        (
            vec![
                "ingest".into(),
                "cert".into(),
                s(&trailing),
                "--metric".into(),
                "rps".into(),
            ],
            vec!["only to `evl ingest telemetry`"],
        ),
    ] {
        let out = l
            .cmd()
            .args(&args)
            .arg("--key")
            .arg(l.p("owner.key"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: expected {n:?} in: {err}");
        }
        assert!(out.stdout.is_empty());
        assert!(
            ledger_files(&l.p("ledger")) == before,
            "{args:?} changed a byte of the ledger"
        );
    }
}

/// The options that decide how a file is read are recorded in the entry, so `evl verify`
/// re-derives the same facts: a mesh file with an invalid object recorded as not in effect,
/// a mesh file read with --namespace, and a Prometheus response read with a label mapping.
#[test]
fn recorded_parse_options_make_the_facts_reproducible() {
    let l = Ledger::new();
    let key = l.p("owner.key");
    let key = key.to_str().unwrap();
    let mixed = l.p("mixed.yaml");
    std::fs::write(
        &mixed,
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: bad}\nspec:\n  rules:\n  - from: []\n---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default}\nspec: {mtls: {mode: STRICT}}\n",
    )
    .unwrap();
    let m = l.json(&[
        "ingest",
        "mesh",
        mixed.to_str().unwrap(),
        "--namespace",
        "payments",
        "--invalid-policies",
        "record",
        "--key",
        key,
        "--json",
    ]);
    let facts = &m[0]["facts"]["facts"];
    assert_eq!(facts["default_namespace"], "payments");
    assert_eq!(facts["namespaces"]["payments"]["mtls"], "STRICT");
    assert_eq!(facts["not_in_effect"][0]["object"]["name"], "bad");
    assert_eq!(facts["not_in_effect"][0]["field"], "spec.rules[0].from");
    let shown = l.json(&["show", m[0]["id"].as_str().unwrap(), "--json"]);
    let meta = &shown["body"]["payload"]["artifact"];
    assert_eq!(meta["labels"]["invalid-policies"], "record");
    assert_eq!(meta["facts"]["parser_version"], 2);

    let t = l.json(&[
        "ingest",
        "telemetry",
        fixture("prometheus-istio-p95.json").to_str().unwrap(),
        "--window",
        "canary",
        "--profile",
        "istio",
        "--metric",
        "p95_ms",
        "--key",
        key,
        "--json",
    ]);
    let facts = &t[0]["facts"]["facts"];
    assert_eq!(facts["mapping"]["profile"], "istio");
    assert_eq!(facts["mapping"]["metrics"][0], "p95_ms");
    assert_eq!(facts["workloads"].as_array().unwrap().len(), 3);
    assert_eq!(facts["warnings"].as_array().unwrap().len(), 1);
    let shown = l.json(&["show", t[0]["id"].as_str().unwrap(), "--json"]);
    let labels = &shown["body"]["payload"]["artifact"]["labels"];
    assert_eq!(labels["telemetry-profile"], "istio");
    assert_eq!(labels["telemetry-metric"], "p95_ms");

    let v = l.json(&["verify", "--json"]);
    assert_eq!(v["verified"], true, "{v}");
    // Two artifacts, each with its bytes and its facts blob.
    assert_eq!(v["report"]["artifacts_checked"], 4);
}
