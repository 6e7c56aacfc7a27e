//! Helpers of the witness tests (tests/witness.rs, tests/witness_interop.rs): ledgers that
//! grow and fork, a real `evl witness serve` process that can be killed and restarted, and raw
//! add-checkpoint requests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::parts::free_port;
use super::{Fixture, Out, evl_std};

pub const ORIGIN: &str = "example.org/witnessed";

/// A ledger with an admin key and an owner key that can add notes.
pub fn ledger() -> Fixture {
    let f = Fixture {
        root: tempfile::tempdir().unwrap(),
        ids: Default::default(),
    };
    let keys = f.path("keys");
    for k in ["admin", "owner", "w1", "w2", "w3"] {
        f.evl(["keygen", k, "--dir", keys.to_str().unwrap()]).ok();
    }
    f.evl([
        "init",
        "--origin",
        ORIGIN,
        "--admin",
        f.public("admin").to_str().unwrap(),
        "--key",
        f.key("admin").to_str().unwrap(),
    ])
    .ok();
    f.evl([
        "key",
        "add",
        "owner",
        "--pub",
        f.public("owner").to_str().unwrap(),
        "--role",
        "owner",
        "--key",
        f.key("admin").to_str().unwrap(),
    ])
    .ok();
    f
}

/// The same origin and admin key as `f`, another history: a fork of `f`'s log.
pub fn fork_of(f: &Fixture) -> Fixture {
    fork_signed_by(f, "admin")
}

/// A log of the same origin as `f`'s whose admin (checkpoint) key is `admin`.
pub fn fork_signed_by(f: &Fixture, admin: &str) -> Fixture {
    let g = Fixture {
        root: tempfile::tempdir().unwrap(),
        ids: Default::default(),
    };
    super::copy_dir(&f.path("keys"), &g.path("keys"));
    g.evl([
        "init",
        "--origin",
        ORIGIN,
        "--admin",
        g.public(admin).to_str().unwrap(),
        "--key",
        g.key(admin).to_str().unwrap(),
        "--at",
        "2020-01-01T00:00:00Z",
    ])
    .ok();
    g.evl([
        "key",
        "add",
        "owner",
        "--pub",
        g.public("owner").to_str().unwrap(),
        "--role",
        "owner",
        "--key",
        g.key(admin).to_str().unwrap(),
    ])
    .ok();
    g
}

/// Adds `n` notes; returns the new size.
pub fn grow(f: &Fixture, n: usize, tag: &str) -> u64 {
    for i in 0..n {
        let p = f.file(&format!("{tag}-{i}.txt"), format!("{tag} {i}\n").as_bytes());
        f.evl([
            "add",
            p.to_str().unwrap(),
            "--kind",
            "note",
            "--tier",
            "authoritative",
            "--key",
            f.key("owner").to_str().unwrap(),
        ])
        .ok();
    }
    size(f)
}

pub fn size(f: &Fixture) -> u64 {
    f.evl(["verify", "--json", "--no-state"]).json()["report"]["entries_checked"]
        .as_u64()
        .unwrap()
}

/// Signs a checkpoint (no witnesses); returns (note, verifier key).
pub fn checkpoint(f: &Fixture) -> (String, String) {
    let j = f
        .evl([
            "checkpoint",
            "--key",
            f.key("admin").to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    (
        j["note"].as_str().unwrap().to_string(),
        j["verifier_key"].as_str().unwrap().to_string(),
    )
}

/// A consistency proof from `old` to `new` as base64 lines.
pub fn proof(f: &Fixture, old: u64, new: u64) -> Vec<String> {
    let j = f
        .evl([
            "proof",
            "consistency",
            &old.to_string(),
            &new.to_string(),
            "--json",
        ])
        .ok()
        .json();
    j["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| B64.encode(hex::decode(h.as_str().unwrap()).unwrap()))
        .collect()
}

/// A running `evl witness serve`; killed (SIGKILL) when dropped.
pub struct Witness {
    pub child: Child,
    pub url: String,
    pub vkey: String,
    pub state: PathBuf,
    pub name: String,
    pub key: PathBuf,
}

impl Witness {
    pub fn start(state: &Path, name: &str, key: &Path) -> Witness {
        let port = free_port();
        let mut child = evl_std()
            .args(["witness", "serve", "--state"])
            .arg(state)
            .args(["--name", name, "--key"])
            .arg(key)
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("evl witness serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some("listening"), "{line}");
        let url = words.next().unwrap().to_string();
        assert_eq!(url, format!("http://127.0.0.1:{port}"));
        assert_eq!(words.next(), Some("vkey"));
        let vkey = words.next().unwrap().to_string();
        Witness {
            child,
            url,
            vkey,
            state: state.to_path_buf(),
            name: name.to_string(),
            key: key.to_path_buf(),
        }
    }

    /// kill -9, then a new process on the same state directory.
    pub fn restart(mut self) -> Witness {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        Witness::start(&self.state, &self.name, &self.key)
    }

    /// The witness's raw public key in hex (from `evl witness vkey`).
    pub fn hex(&self) -> String {
        let o = super::run(
            super::evl_bin()
                .args(["witness", "vkey", "--name", &self.name, "--key"])
                .arg(&self.key),
        )
        .ok();
        assert!(o.stdout.contains(&format!("vkey {}", self.vkey)), "{o:#?}");
        o.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("witness {} ", self.name)))
            .unwrap()
            .to_string()
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs an add-checkpoint request; returns (status, content type, body).
pub fn post(url: &str, old: u64, proof: &[String], note: &str) -> (u16, String, String) {
    let mut body = format!("old {old}\n");
    for p in proof {
        body.push_str(p);
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    post_raw(url, body.as_bytes())
}

pub fn post_raw(url: &str, body: &[u8]) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(&format!("{url}/add-checkpoint"))
        .send(body)
        .expect("the witness answers");
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        r.status().as_u16(),
        ct,
        r.body_mut().read_to_string().unwrap(),
    )
}

pub fn add_log(state: &Path, vkey: &str) -> Out {
    super::run(
        super::evl_bin()
            .args(["witness", "add-log", "--state"])
            .arg(state)
            .args(["--origin", ORIGIN, "--vkey", vkey]),
    )
}

/// The one state file of `state`.
pub fn state_note(state: &Path) -> String {
    let files: Vec<_> = std::fs::read_dir(state.join("state"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "note"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::read_to_string(&files[0]).unwrap()
}

pub fn cosig_lines<'a>(note: &'a str, name: &str) -> Vec<&'a str> {
    note.lines()
        .filter(|l| l.starts_with(&format!("— {name} ")))
        .collect()
}

/// The ledger's latest stored checkpoint note, read from the store's records.
pub fn latest(f: &Fixture) -> String {
    super::store::records(&f.ledger())
        .into_iter()
        .rev()
        .find(|r| r.tag == super::store::CHECKPOINT)
        .map(|r| String::from_utf8(r.body).unwrap())
        .unwrap_or_default()
}

pub fn admin_hex(f: &Fixture) -> String {
    let o = f
        .evl([
            "witness",
            "vkey",
            "--name",
            "x",
            "--key",
            f.public("admin").to_str().unwrap(),
        ])
        .ok();
    o.stdout
        .lines()
        .nth(1)
        .unwrap()
        .split(' ')
        .nth(2)
        .unwrap()
        .to_string()
}
