//! Witness cosigning (docs/WITNESS.md) against the real `evl witness serve` process: the
//! C2SP tlog-witness answers (200, 400, 403, 404, 409 with the size, 422) read off the wire,
//! rolled-back and forked logs refused before and after a kill -9 and restart,
//! `evl checkpoint --witness` / `--witness-policy` collecting cosignatures, and
//! `evl verify --witness-policy` refusing a checkpoint short of its quorum.
//!
//! Interoperability with an independent implementation (PyPI `aics-witness`) is in
//! tests/witness_interop.rs.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Fixture, Out, evl_std, parts::free_port};
use serde_json::Value;

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
    common::copy_dir(&f.path("keys"), &g.path("keys"));
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
        let o = common::run(
            common::evl_bin()
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

fn add_log(state: &Path, vkey: &str) -> Out {
    common::run(
        common::evl_bin()
            .args(["witness", "add-log", "--state"])
            .arg(state)
            .args(["--origin", ORIGIN, "--vkey", vkey]),
    )
}

/// The one state file of `state`.
fn state_note(state: &Path) -> String {
    let files: Vec<_> = std::fs::read_dir(state.join("state"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "note"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::read_to_string(&files[0]).unwrap()
}

fn cosig_lines<'a>(note: &'a str, name: &str) -> Vec<&'a str> {
    note.lines()
        .filter(|l| l.starts_with(&format!("— {name} ")))
        .collect()
}

#[test]
fn add_checkpoint_answers_each_case_and_persists_before_replying() {
    let f = ledger();
    let n1 = grow(&f, 2, "a");
    let (note1, vkey) = checkpoint(&f);
    let state = f.path("wstate");
    let w = Witness::start(&state, "w1.example/w", &f.key("w1"));

    // Unknown origin: 404 (nothing configured yet).
    assert_eq!(post(&w.url, 0, &[], &note1).0, 404);
    add_log(&state, &vkey).ok();
    assert!(add_log(&state, &vkey).ok().stdout.starts_with("unchanged"));

    // Signed under the origin by a key the witness does not know: 403.
    let g = fork_signed_by(&f, "w2");
    let foreign = g
        .evl([
            "checkpoint",
            "--key",
            g.key("w2").to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json()["note"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(post(&w.url, 0, &[], &foreign).0, 403);
    // A log signature made invalid by changing the size: 403.
    let lines: Vec<&str> = note1.lines().collect();
    let bumped = note1.replacen(&format!("\n{}\n", lines[1]), &format!("\n{}\n", n1 + 1), 1);
    assert_eq!(post(&w.url, 0, &[], &bumped).0, 403);
    // Malformed requests: 400.
    assert_eq!(post_raw(&w.url, b"old 01\n\n").0, 400);
    assert_eq!(
        post_raw(&w.url, format!("old {}\n\n{note1}", n1 + 1).as_bytes()).0,
        400
    );

    // First checkpoint from 0: 200 with a cosignature line, and the state is on disk.
    let (s, _, body) = post(&w.url, 0, &[], &note1);
    assert_eq!(s, 200, "{body}");
    assert!(
        body.starts_with("— w1.example/w ") && body.ends_with('\n'),
        "{body}"
    );
    assert_eq!(state_note(&state), note1);

    // Old size not the one the witness holds: 409 with the size as text/x.tlog.size.
    let n2 = grow(&f, 3, "b");
    let (note2, _) = checkpoint(&f);
    let (s, ct, body) = post(&w.url, 0, &[], &note2);
    assert_eq!(
        (s, ct.as_str(), body.clone()),
        (409, "text/x.tlog.size", format!("{n1}\n"))
    );
    // A bad consistency proof: 422, and nothing changes.
    let mut bad = proof(&f, n1, n2);
    let mut h = B64.decode(&bad[0]).unwrap();
    h[0] ^= 1;
    bad[0] = B64.encode(h);
    assert_eq!(post(&w.url, n1, &bad, &note2).0, 422);
    assert_eq!(state_note(&state), note1);
    // The right proof: 200, and the new state is durable: a kill -9 right after the reply
    // and a restart still know size n2.
    let (s, _, _) = post(&w.url, n1, &proof(&f, n1, n2), &note2);
    assert_eq!(s, 200);
    let w = w.restart();
    let (s, ct, body) = post(&w.url, n1, &proof(&f, n1, n2), &note2);
    assert_eq!(
        (s, ct.as_str(), body),
        (409, "text/x.tlog.size", format!("{n2}\n"))
    );
    // The same checkpoint again from its own size: cosigned again (idempotent).
    assert_eq!(post(&w.url, n2, &[], &note2).0, 200);
}

#[test]
fn rolled_back_and_forked_logs_are_refused_before_and_after_a_restart() {
    let f = ledger();
    let n1 = grow(&f, 3, "a");
    let (note_old, vkey) = checkpoint(&f);
    let state = f.path("wstate");
    add_log(&state, &vkey).ok();
    let mut w = Witness::start(&state, "w1.example/w", &f.key("w1"));
    assert_eq!(post(&w.url, 0, &[], &note_old).0, 200);
    // A copy of the log as it is now, to roll back to later.
    let rolled_back = f.copy();
    let n2 = grow(&f, 2, "b");
    let (note_new, _) = checkpoint(&f);
    assert_eq!(post(&w.url, n1, &proof(&f, n1, n2), &note_new).0, 200);

    // A fork: the same origin and key, another history, of the same size and larger.
    let g = fork_of(&f);
    let base = size(&g);
    assert_eq!(grow(&g, (n2 - base) as usize, "fork"), n2);
    let (fork_same, _) = checkpoint(&g);
    let gn = grow(&g, 2, "fork2");
    let (fork_big, _) = checkpoint(&g);

    for round in 0..2 {
        // Rolled back: an older checkpoint of the log is refused, from any old size.
        let (s, ct, body) = post(&w.url, 0, &[], &note_old);
        assert_eq!(
            (s, ct.as_str(), body.as_str()),
            (409, "text/x.tlog.size", &*format!("{n2}\n")),
            "round {round}"
        );
        assert_eq!(post(&w.url, n2, &[], &note_old).0, 400, "round {round}");
        // Forked at the same size: another root is a 409.
        let (s, _, body) = post(&w.url, n2, &[], &fork_same);
        assert_eq!((s, body), (409, format!("{n2}\n")), "round {round}");
        // Forked and grown: the fork's own proof does not lead from the witnessed root: 422.
        assert_eq!(
            post(&w.url, n2, &proof(&g, n2, gn), &fork_big).0,
            422,
            "round {round}"
        );
        // The state still holds the log's own checkpoint.
        assert_eq!(state_note(&state), note_new, "round {round}");
        // Through `evl checkpoint --witness` too: the rolled-back copy finds the witness
        // ahead of it, the fork's proof is refused; exit 6 and nothing stored.
        let stored = latest(&rolled_back);
        rolled_back
            .evl([
                "checkpoint",
                "--key",
                rolled_back.key("admin").to_str().unwrap(),
                "--witness",
                &w.url,
            ])
            .refused(
                6,
                &[
                    &format!("already cosigned size {n2}"),
                    "larger than this checkpoint",
                ],
            );
        assert_eq!(latest(&rolled_back), stored);
        g.evl([
            "checkpoint",
            "--key",
            g.key("admin").to_str().unwrap(),
            "--witness",
            &w.url,
        ])
        .refused(6, &["HTTP 422"]);
        w = w.restart();
    }
}

#[test]
fn checkpoint_collects_a_quorum_and_verify_holds_it_to_the_policy() {
    let f = ledger();
    grow(&f, 2, "a");
    let (_, vkey) = checkpoint(&f);
    let w1 = {
        let s = f.path("w1state");
        add_log(&s, &vkey).ok();
        Witness::start(&s, "w1.example/w", &f.key("w1"))
    };
    let w2 = {
        let s = f.path("w2state");
        add_log(&s, &vkey).ok();
        Witness::start(&s, "w2.example/w", &f.key("w2"))
    };
    let dead = format!("http://127.0.0.1:{}", free_port());
    grow(&f, 1, "b");

    // --quorum 2 of a live and a dead witness: exit 6, one line, nothing stored.
    let latest_before = latest(&f);
    let out = f.evl([
        "checkpoint",
        "--key",
        f.key("admin").to_str().unwrap(),
        "--witness",
        &w1.url,
        "--witness",
        &dead,
        "--quorum",
        "2",
    ]);
    out.refused(6, &["1 of the 2 needed", &dead]);
    assert_eq!(latest(&f), latest_before);

    // Both live: the stored note carries both cosignatures.
    let out = f
        .evl([
            "checkpoint",
            "--key",
            f.key("admin").to_str().unwrap(),
            "--witness",
            &w1.url,
            "--witness",
            &w2.url,
        ])
        .ok();
    assert_eq!(
        cosig_lines(&out.stdout, "w1.example/w").len(),
        1,
        "{}",
        out.stdout
    );
    assert_eq!(cosig_lines(&out.stdout, "w2.example/w").len(), 1);
    assert_eq!(latest(&f), out.stdout);

    // Policies: 2 of {w1, w2} is met; all of {w1, w2, w3} is not, and says 2 of 3.
    let policy2 = f.file(
        "two.policy",
        format!(
            "# two of two\nlog {}\nwitness w1.example/w {}\nwitness w2.example/w {}\ngroup both 2 w1.example/w w2.example/w\nquorum both\n",
            admin_hex(&f),
            w1.hex(),
            w2.hex()
        )
        .as_bytes(),
    );
    f.evl([
        "verify",
        "--no-state",
        "--witness-policy",
        policy2.to_str().unwrap(),
    ])
    .ok();
    let w3hex = {
        let o = f
            .evl([
                "witness",
                "vkey",
                "--name",
                "w3.example/w",
                "--key",
                f.public("w3").to_str().unwrap(),
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
    };
    let policy3 = f.file(
        "three.policy",
        format!(
            "witness w1.example/w {}\nwitness w2.example/w {}\nwitness w3.example/w {w3hex}\ngroup all3 all w1.example/w w2.example/w w3.example/w\nquorum all3\n",
            w1.hex(),
            w2.hex()
        )
        .as_bytes(),
    );
    f.evl([
        "verify",
        "--no-state",
        "--witness-policy",
        policy3.to_str().unwrap(),
    ])
    .refused(1, &["2 valid cosignature(s)", "3 needed", "'all3'"]);
    // A policy whose log key is not the ledger's: refused.
    let wrong_log = f.file(
        "wronglog.policy",
        format!(
            "log {w3hex}\nwitness w1.example/w {}\nquorum w1.example/w\n",
            w1.hex()
        )
        .as_bytes(),
    );
    f.evl([
        "verify",
        "--no-state",
        "--witness-policy",
        wrong_log.to_str().unwrap(),
    ])
    .refused(1, &["not signed by a log key of the witness policy"]);
    // A malformed policy: exit 2 naming the line.
    let bad = f.file(
        "bad.policy",
        b"witness w1.example/w zz\nquorum w1.example/w\n",
    );
    f.evl([
        "verify",
        "--no-state",
        "--witness-policy",
        bad.to_str().unwrap(),
    ])
    .refused(2, &["line 1", "64-hex"]);

    // A kept checkpoint whose cosignature was altered is refused (--checkpoint FILE).
    let note = latest(&f);
    let line = cosig_lines(&note, "w2.example/w")[0].to_string();
    let mut raw = B64.decode(line.rsplit(' ').next().unwrap()).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let altered = note.replace(&line, &format!("— w2.example/w {}", B64.encode(raw)));
    let kept = f.file("altered.note", altered.as_bytes());
    f.evl([
        "verify",
        "--no-state",
        "--checkpoint",
        kept.to_str().unwrap(),
        "--witness-policy",
        policy2.to_str().unwrap(),
    ])
    .refused(
        1,
        &[
            "1 valid cosignature(s)",
            "2 needed",
            "do not verify: w2.example/w",
        ],
    );

    // --witness-policy on checkpoint: witnesses with URLs are asked, answers verified, and
    // the quorum holds before anything is stored.
    grow(&f, 1, "c");
    let with_urls = f.file(
        "urls.policy",
        format!(
            "witness w1.example/w {} {}\nwitness w2.example/w {} {}\ngroup both all w1.example/w w2.example/w\nquorum both\n",
            w1.hex(),
            w1.url,
            w2.hex(),
            w2.url
        )
        .as_bytes(),
    );
    let out = f
        .evl([
            "checkpoint",
            "--key",
            f.key("admin").to_str().unwrap(),
            "--witness-policy",
            with_urls.to_str().unwrap(),
            "--json",
        ])
        .ok();
    let j: Value = out.json();
    assert_eq!(
        j["cosigned_by"],
        serde_json::json!(["w1.example/w", "w2.example/w"])
    );
    f.evl([
        "verify",
        "--no-state",
        "--witness-policy",
        policy2.to_str().unwrap(),
    ])
    .ok();
    // w2 swapped for a key it does not hold: its answer does not verify, the quorum fails.
    let swapped = f.file(
        "swapped.policy",
        format!(
            "witness w1.example/w {} {}\nwitness w2.example/w {w3hex} {}\ngroup both all w1.example/w w2.example/w\nquorum both\n",
            w1.hex(),
            w1.url,
            w2.url
        )
        .as_bytes(),
    );
    grow(&f, 1, "d");
    let stored = latest(&f);
    f.evl([
        "checkpoint",
        "--key",
        f.key("admin").to_str().unwrap(),
        "--witness-policy",
        swapped.to_str().unwrap(),
    ])
    .refused(
        6,
        &[
            "no valid cosignature by witness w2.example/w",
            "1 valid cosignature(s)",
        ],
    );
    assert_eq!(latest(&f), stored);
}

/// The ledger's latest stored checkpoint note, read from the store's records.
fn latest(f: &Fixture) -> String {
    common::store::records(&f.ledger())
        .into_iter()
        .rev()
        .find(|r| r.tag == common::store::CHECKPOINT)
        .map(|r| String::from_utf8(r.body).unwrap())
        .unwrap_or_default()
}

fn admin_hex(f: &Fixture) -> String {
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
