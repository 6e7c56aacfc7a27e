//! Shared helpers for the CLI integration tests: run the real `evl` binary, build a rich
//! ledger once per test binary and hand each test its own copy, snapshot a ledger to prove a
//! refused command left it unchanged, and reach into the store behind evl's back ([`store`]).

#![allow(dead_code)]

pub mod parts;
pub mod remote;
pub mod store;
pub mod witness;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

/// What one run of `evl` did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// The stdout parsed as NDJSON (`evl log --json`): one JSON value per line, as an array.
    pub fn ndjson(&self) -> Value {
        Value::Array(
            self.stdout
                .lines()
                .map(|l| {
                    serde_json::from_str(l)
                        .unwrap_or_else(|e| panic!("a stdout line is not JSON ({e}): {l}"))
                })
                .collect(),
        )
    }

    /// Asserts exit 0 and returns self.
    pub fn ok(self) -> Out {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        self
    }

    /// Asserts the documented exit code, exactly one stderr line, that it contains every
    /// `needle`, and an empty stdout.
    pub fn refused(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.code, code, "wrong exit code: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one stderr line: {self:#?}");
        assert!(lines[0].starts_with("evl: "), "{self:#?}");
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr does not mention {n:?}: {self:#?}"
            );
        }
        assert!(self.stdout.is_empty(), "refused command printed: {self:#?}");
    }
}

/// A bare `evl` command, blind to the developer's own environment: no ledger, key or
/// auditor state directory from it (see [`run`] for where its auditor state goes).
pub fn evl_bin() -> Command {
    Command::from_std(evl_std())
}

/// The same as a `std::process::Command`, for what only it offers (`pre_exec`).
pub fn evl_std() -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("evl"));
    for v in ["EVL_LEDGER", "EVL_KEY", "EVL_STATE_DIR", "XDG_STATE_HOME"] {
        c.env_remove(v);
    }
    c
}

/// Runs `cmd` to completion; never accepts a panic. HOME is a fresh temporary directory for
/// the run, so a command that keeps auditor state and was given no XDG_STATE_HOME (as
/// [`Fixture::evl`] gives one) keeps it there and never in the real home directory.
pub fn run(cmd: &mut Command) -> Out {
    let home = tempfile::tempdir().expect("a temporary HOME");
    let o = cmd.env("HOME", home.path()).output().expect("evl runs");
    let out = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(
        !out.stderr.contains("panicked") && out.code != 101,
        "evl panicked: {out:#?}"
    );
    out
}

/// A ledger in a temporary directory: `<root>/ledger` the store, `<root>/keys` the keys,
/// `<root>/files` evidence files.
pub struct Fixture {
    pub root: TempDir,
    /// Entry ids by label, recorded while building.
    pub ids: std::collections::BTreeMap<String, String>,
}

impl Fixture {
    pub fn ledger(&self) -> PathBuf {
        self.root.path().join("ledger")
    }
    pub fn key(&self, name: &str) -> PathBuf {
        self.root.path().join("keys").join(format!("{name}.key"))
    }
    pub fn public(&self, name: &str) -> PathBuf {
        self.root.path().join("keys").join(format!("{name}.pub"))
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }
    pub fn id(&self, label: &str) -> &str {
        &self.ids[label]
    }
    /// The auditor state home of this fixture's commands (`XDG_STATE_HOME`): `evl verify`
    /// records what it verified in `<state>/evl/`.
    pub fn state(&self) -> PathBuf {
        self.root.path().join("state")
    }

    /// `evl --ledger <ledger> ARGS…`, with this fixture's auditor state.
    pub fn evl<I, S>(&self, args: I) -> Out
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        run(evl_bin()
            .env("XDG_STATE_HOME", self.state())
            .arg("--ledger")
            .arg(self.ledger())
            .args(args)
            .current_dir(self.root.path()))
    }

    /// Writes `files/<name>` with `content` and returns its path.
    pub fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.path("files").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Everything a reader can see of the ledger: the full log and the verify report (without
    /// the auditor state, whose history is the auditor's, not the ledger's).
    pub fn snapshot(&self) -> Snapshot {
        let log = self.evl(["log", "--json"]).ok().ndjson();
        let verify = self.evl(["verify", "--json", "--no-state"]);
        Snapshot {
            log,
            verify: verify.json(),
        }
    }

    /// The verify report's root hash and size.
    pub fn verified(&self) -> Value {
        let out = self.evl(["verify", "--json"]).ok();
        let v = out.json();
        assert_eq!(v["verified"], true, "{out:#?}");
        v["report"].clone()
    }

    /// A private copy of this fixture (keys keep their modes).
    pub fn copy(&self) -> Fixture {
        let root = tempfile::tempdir().unwrap();
        copy_dir(self.root.path(), root.path());
        Fixture {
            root,
            ids: self.ids.clone(),
        }
    }
}

/// What `snapshot` saw.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub log: Value,
    pub verify: Value,
}

/// Copies `from` into `to`, recursively (files keep their modes).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

pub const ORIGIN: &str = "example.org/evl-test";

/// Keys of the rich ledger. `owner-v2` is the rotated successor of `owner` (same registry
/// name); `contractor` is revoked; `stranger` was never registered.
pub const KEYS: [&str; 7] = [
    "admin",
    "owner",
    "owner-v2",
    "reviewer",
    "security",
    "contractor",
    "stranger",
];

/// Log layout of the rich ledger, built by [`rich`]:
///
/// | index | entry                                     | signer     |
/// |-------|-------------------------------------------|------------|
/// | 0     | genesis                                   | admin      |
/// | 1-4   | key-add owner, reviewer, security, contractor | admin  |
/// | 5-7   | artifacts a, b, c (one `evl add`)         | owner      |
/// | 8     | artifact d                                | contractor |
/// | 9     | annotation (concern) on a                 | reviewer   |
/// | 10    | acknowledgment of b for data-platform     | security   |
/// | 11    | key-rotate owner -> owner-v2              | admin      |
/// | 12-13 | artifacts e (excluded), a again (dedup)   | owner-v2   |
/// | 14    | promotion of e                            | owner-v2   |
/// | 15    | key-revoke contractor                     | admin      |
/// | 16    | annotation (note) on d                    | reviewer   |
///
/// followed by a checkpoint of size 17 written to `auditor.note`.
pub const RICH_SIZE: u64 = 17;
/// Distinct artifact blobs in the rich ledger (a is added twice).
pub const RICH_BLOBS: u64 = 5;

/// Builds the rich ledger from scratch through the real binary.
pub fn build_rich() -> Fixture {
    // Kept for the whole test binary, so under target/ rather than the system temp dir.
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut f = Fixture {
        root,
        ids: Default::default(),
    };
    let keys = f.path("keys");
    std::fs::create_dir_all(&keys).unwrap();
    for k in KEYS {
        run(evl_bin().args(["keygen", k, "--dir"]).arg(&keys)).ok();
    }
    let key = |n: &str| keys.join(format!("{n}.key")).display().to_string();
    let public = |n: &str| keys.join(format!("{n}.pub")).display().to_string();

    let out = f
        .evl([
            "init",
            "--origin",
            ORIGIN,
            "--admin",
            &public("admin"),
            "--key",
            &key("admin"),
        ])
        .ok();
    assert!(out.stdout.contains("created ledger"), "{out:#?}");
    for (name, role) in [
        ("owner", "owner"),
        ("reviewer", "reviewer"),
        ("security", "security-signer"),
        ("contractor", "owner"),
    ] {
        f.evl([
            "key",
            "add",
            name,
            "--pub",
            &public(name),
            "--role",
            role,
            "--key",
            &key("admin"),
        ])
        .ok();
    }
    let a = f.file("a.txt", b"rollback drill A: passed\n");
    let b = f.file("b.yaml", b"kind: AuthorizationPolicy\nname: east-west\n");
    let c = f.file("c.csv", b"workload,namespace\npayments-api,payments\n");
    let out = f
        .evl([
            "add",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            c.to_str().unwrap(),
            "--kind",
            "drill-note",
            "--tier",
            "authoritative",
            "--namespace",
            "payments",
            "--workload",
            "payments/payments-api",
            "--captured-at",
            "2026-01-01",
            "--valid-until",
            "2026-02-01",
            "--label",
            "team=mesh",
            "--key",
            &key("owner"),
            "--json",
        ])
        .ok();
    let added = out.json();
    assert_eq!(added.as_array().unwrap().len(), 3, "{out:#?}");
    for (i, label) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(added[i]["index"], 5 + i as u64);
        f.ids
            .insert(label.to_string(), added[i]["id"].as_str().unwrap().into());
    }
    let d = f.file("d.txt", b"contractor's telemetry export\n");
    let out = f
        .evl([
            "add",
            d.to_str().unwrap(),
            "--kind",
            "telemetry-export",
            "--tier",
            "operational",
            "--key",
            &key("contractor"),
            "--json",
        ])
        .ok();
    f.ids
        .insert("d".into(), out.json()[0]["id"].as_str().unwrap().into());
    let a_id = f.id("a").to_string();
    let b_id = f.id("b").to_string();
    let d_id = f.id("d").to_string();
    f.evl([
        "annotate",
        &a_id[..12],
        "--kind",
        "concern",
        "--text",
        "sidecar compatibility unresolved",
        "--key",
        &key("reviewer"),
    ])
    .ok();
    f.evl([
        "ack",
        "--topic",
        "east-west-authorization-policy",
        "--subject",
        &b_id,
        "--namespace",
        "data-platform",
        "--statement",
        "east-west authorization policy acknowledged",
        "--key",
        &key("security"),
    ])
    .ok();
    f.evl([
        "key",
        "rotate",
        "owner",
        "--pub",
        &public("owner-v2"),
        "--key",
        &key("admin"),
    ])
    .ok();
    let e = f.file("e.txt", b"unvetted vendor scan\n");
    let a2 = f.path("files").join("a.txt");
    let out = f
        .evl([
            "add",
            e.to_str().unwrap(),
            a2.to_str().unwrap(),
            "--kind",
            "scan",
            "--tier",
            "excluded",
            "--key",
            &key("owner-v2"),
            "--json",
        ])
        .ok();
    f.ids
        .insert("e".into(), out.json()[0]["id"].as_str().unwrap().into());
    let e_id = f.id("e").to_string();
    f.evl([
        "promote",
        &e_id,
        "--reason",
        "vetted by platform security",
        "--key",
        &key("owner-v2"),
    ])
    .ok();
    f.evl([
        "key",
        "revoke",
        "contractor",
        "--reason",
        "contract ended",
        "--key",
        &key("admin"),
    ])
    .ok();
    let out = f
        .evl([
            "annotate",
            &d_id,
            "--kind",
            "note",
            "--text",
            "superseded by the platform export",
            "--key",
            &key("reviewer"),
        ])
        .ok();
    f.ids.insert(
        "last".into(),
        out.stdout.split_whitespace().nth(1).unwrap().into(),
    );
    let note = f.path("auditor.note");
    f.evl([
        "checkpoint",
        "--key",
        &key("admin"),
        "-o",
        note.to_str().unwrap(),
    ])
    .ok();
    f
}

/// The rich ledger, built once per test binary; tests take a [`Fixture::copy`].
pub fn rich() -> &'static Fixture {
    static RICH: OnceLock<Fixture> = OnceLock::new();
    RICH.get_or_init(build_rich)
}

/// A u64 as the store's big-endian key.
pub fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// The flagship ledger of examples/mtls-cutover, built once per test binary by running the
/// example (`--keep DIR`): `DIR/ledger` the store, `DIR/keys` its demo keys. Read-only: copy it
/// ([`copy_dir`]) before changing it.
pub fn flagship() -> &'static Path {
    static F: OnceLock<PathBuf> = OnceLock::new();
    F.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile = exe.parent().unwrap().parent().unwrap();
        let bin = profile
            .join("examples")
            .join(format!("mtls-cutover{}", std::env::consts::EXE_SUFFIX));
        // Always ask cargo: `cargo test --test X` alone does not rebuild examples.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = std::process::Command::new(cargo)
            .args(["build", "--quiet", "--example", "mtls-cutover"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(st.success(), "cargo build --example mtls-cutover failed");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "flagship-{}-{}",
            exe.file_name().unwrap().to_string_lossy(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let out = std::process::Command::new(&bin)
            .arg("--keep")
            .arg(&dir)
            .output()
            .expect("the mtls-cutover example runs");
        assert!(
            out.status.success(),
            "the mtls-cutover example failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}
