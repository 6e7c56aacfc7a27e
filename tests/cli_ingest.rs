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
        let log = self.json(&["log", "--json"]);
        let v = self.json(&["verify", "--json"]);
        (
            log.as_array().unwrap().len(),
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
