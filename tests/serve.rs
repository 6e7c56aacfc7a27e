//! `evl serve` (issue 15, items 2 and 3), through the real binary on loopback: submissions
//! signed elsewhere are appended over HTTP (idempotently), the log is served as tlog-tiles and
//! verified through `--ledger http://…`, and a server killed with SIGKILL under concurrent
//! load loses no submission it acknowledged.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::remote::Server;
use common::{Out, evl_bin, run};
use evl::entry::{ENTRY_FORMAT, Entry, Payload, UnsignedEntry};
use evl::submission::Submission;
use tempfile::TempDir;

const ORIGIN: &str = "example.org/serve";

struct Host {
    root: TempDir,
    genesis: String,
}

impl Host {
    fn new() -> Host {
        let root = tempfile::tempdir().unwrap();
        let genesis = common::remote::admin_and_signer(root.path(), ORIGIN);
        Host { root, genesis }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }
    fn p(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }
    fn evl(&self, args: &[&str]) -> Out {
        self.evl_at(&self.p("ledger"), args)
    }
    fn evl_at(&self, ledger: &str, args: &[&str]) -> Out {
        run(evl_bin()
            .env("XDG_STATE_HOME", self.path("state"))
            .arg("--ledger")
            .arg(ledger)
            .args(args))
    }

    /// Starts `evl serve` on a free loopback port; returns the server and its URL.
    fn serve(&self) -> (Server, String) {
        self.serve_with(&[])
    }

    fn serve_with(&self, extra: &[&str]) -> (Server, String) {
        common::remote::serve(&self.path("ledger"), &self.path("keys/admin.key"), extra)
    }

    /// A submission of one acknowledgment signed by `sec`, built with evl's library.
    fn signed_ack(&self, key: &evl::keys::SecretKey, n: usize) -> (String, Vec<u8>) {
        common::remote::ack_submission(ORIGIN, &self.genesis, key, "load", n)
    }
}

/// POSTs `body` to `/add`; `None` when the connection fails (the server is gone).
fn post(addr: &str, body: &[u8]) -> Option<(u16, String)> {
    let host = addr.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .ok()?;
    let head = format!(
        "POST /add HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok()?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status: u16 = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// GETs `path`; the status, the raw head and the body.
fn get(addr: &str, path: &str) -> (u16, String, Vec<u8>) {
    let host = addr.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, resp[split + 4..].to_vec())
}

fn kill(server: Server) {
    drop(server);
}

#[test]
fn submissions_over_http_are_appended_once_and_the_served_log_verifies() {
    let h = Host::new();
    let (server, url) = h.serve();
    // A signer on a laptop signs offline and submits over HTTP.
    let laptop = h.path("laptop");
    std::fs::create_dir_all(&laptop).unwrap();
    let file = laptop.join("ack.evls");
    run(evl_bin()
        .args([
            "ack",
            "--topic",
            "east-west-authorization-policy",
            "--statement",
            "acknowledged over HTTP",
            "--key",
            &h.p("keys/sec.key"),
            "--offline",
            "--origin",
            ORIGIN,
            "--genesis",
            &h.genesis,
            "-o",
        ])
        .arg(&file))
    .ok();
    let f = file.display().to_string();
    let o = h.evl_at(&url, &["submit", &f]).ok();
    assert!(
        o.stdout.contains("acknowledgment") && o.stdout.contains(" at index 2"),
        "{o:#?}"
    );
    // Idempotent.
    let o = h.evl_at(&url, &["submit", &f]).ok();
    assert!(o.stdout.contains("already at index 2"), "{o:#?}");
    // A tampered file is refused by the server with one line; nothing is appended.
    let mut bad = std::fs::read(&file).unwrap();
    let at = bad.windows(4).position(|w| w == b"HTTP").unwrap();
    bad[at] = b'h';
    let badf = laptop.join("bad.evls");
    std::fs::write(&badf, &bad).unwrap();
    let o = h.evl_at(&url, &["submit", &badf.display().to_string()]);
    o.refused(3, &["signature"]);
    // The same entry with other signature bytes is not "already there": refused too (these
    // do not verify, and the server checks signatures before it looks in the log).
    let mut resigned = std::fs::read(&file).unwrap();
    let n = resigned.len();
    resigned[n - 20] ^= 1;
    std::fs::write(&badf, &resigned).unwrap();
    let o = h.evl_at(&url, &["submit", &badf.display().to_string()]);
    o.refused(3, &["signature does not verify"]);
    // The raw reply carries an inclusion proof against a signed checkpoint.
    let (status, body) = post(&url, &std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["tree_size"], 3);
    assert!(v["checkpoint"].as_str().unwrap().starts_with(ORIGIN));
    // Tiles: immutable and cacheable; none beyond the tree; a body over the cap refused.
    let (status, head, tile) = get(&url, "/tile/0/000.p/3");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: public, max-age=31536000, immutable"),
        "{head}"
    );
    assert_eq!(tile.len(), 3 * 32);
    let (status, _, bundle) = get(&url, "/tile/entries/000.p/3");
    assert_eq!(status, 200);
    assert!(u16::from_be_bytes([bundle[0], bundle[1]]) as usize + 2 <= bundle.len());
    assert_eq!(get(&url, "/tile/0/000.p/4").0, 404);
    assert_eq!(get(&url, "/tile/0/001").0, 404);
    let (status, head, note) = get(&url, "/checkpoint");
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("no-store"), "{head}");
    assert!(
        String::from_utf8(note)
            .unwrap()
            .starts_with(&format!("{ORIGIN}\n3\n"))
    );
    // A body over --max-body is refused (a second server with a small cap).
    let (small, small_url) = h.serve_with(&["--max-body", "1000"]);
    let (status, reply) = post(&small_url, &std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(status, 200, "{reply}");
    assert_eq!(post(&small_url, &[0u8; 2000]).unwrap().0, 413);
    drop(small);
    // Per-key rate limit: one a second for this key, so the second at once is turned away.
    let (limited, limited_url) = h.serve_with(&["--rate-per-key", "1"]);
    let body = std::fs::read(&file).unwrap();
    assert_eq!(post(&limited_url, &body).unwrap().0, 200);
    let (status, reply) = post(&limited_url, &body).unwrap();
    assert_eq!(status, 429, "{reply}");
    drop(limited);
    assert_eq!(post(&url, b"junk").unwrap().0, 400);
    // The auditor verifies the served log from the genesis id, then reads it.
    let v = h
        .evl_at(&url, &["verify", "--genesis", &h.genesis, "--json"])
        .ok()
        .json();
    assert_eq!(v["verified"], true);
    assert_eq!(v["report"]["size"], 3);
    let o = h.evl_at(&url, &["log"]).ok();
    assert!(o.stdout.contains("acknowledged over HTTP"), "{o:#?}");
    // Without a root the served log is not trusted.
    let o = h.evl_at(&url, &["verify", "--no-state"]);
    assert_eq!(o.code, 1, "{o:#?}");
    kill(server);
    h.evl(&["verify"]).ok();
}

#[test]
fn a_server_killed_under_load_loses_no_acknowledged_submission() {
    let h = Host::new();
    let (server, url) = h.serve();
    let key = evl::keys::read_secret(&h.path("keys/sec.key")).unwrap();
    let subs: Vec<(String, Vec<u8>)> = (0..600).map(|n| h.signed_ack(&key, n)).collect();
    let subs = Arc::new(subs);
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let clients = 16;
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let subs = subs.clone();
            let acked = acked.clone();
            let url = url.clone();
            std::thread::spawn(move || {
                for (id, body) in subs.iter().skip(c).step_by(clients) {
                    match post(&url, body) {
                        Some((200, reply)) => {
                            let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
                            let e = &v["entries"][0];
                            assert_eq!(e["id"], id.as_str());
                            acked
                                .lock()
                                .unwrap()
                                .push((id.clone(), e["index"].as_u64().unwrap()));
                        }
                        Some((code, reply)) => panic!("{code}: {reply}"),
                        None => return,
                    }
                }
            })
        })
        .collect();
    // Kill it mid-stream, once some submissions are acknowledged.
    let start = std::time::Instant::now();
    while acked.lock().unwrap().len() < 100 {
        assert!(start.elapsed().as_secs() < 120, "too slow");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    kill(server);
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 100 && acked.len() < 600, "{}", acked.len());
    // Every acknowledged submission is in the log, at the index it was given.
    let log = h.evl(&["log", "--json"]).ok().ndjson();
    let entries = log.as_array().unwrap();
    for (id, index) in &acked {
        let e = entries
            .iter()
            .find(|e| e["id"] == id.as_str())
            .unwrap_or_else(|| panic!("acknowledged {id} is not in the log"));
        assert_eq!(e["index"], *index, "{id}");
    }
    h.evl(&["verify"]).ok();
    // Restarted, the server takes the rest; resubmitting everything is safe.
    let (server, url) = h.serve();
    for (id, body) in subs.iter().take(50) {
        let (code, reply) = post(&url, body).unwrap();
        assert_eq!(code, 200, "{reply}");
        assert!(reply.contains(id.as_str()));
    }
    kill(server);
}

/// `body` with one bit of its entry's signature flipped: a forged signature naming the key.
fn forged(body: &[u8]) -> Vec<u8> {
    let mut bad = body.to_vec();
    // The entry's last 64 bytes are its signature; a one-entry acknowledgment submission
    // ends with the entry and an empty blob list.
    let n = bad.len();
    let sub = Submission::from_bytes(body).unwrap();
    let sig = sub.entries[0].0.signature.0;
    let at = bad.windows(64).rposition(|w| w == sig).unwrap();
    assert!(at + 64 <= n);
    bad[at + 10] ^= 1;
    bad
}

#[test]
fn a_forged_signature_among_good_ones_fails_alone_and_spends_no_rate_budget() {
    let h = Host::new();
    let key = evl::keys::read_secret(&h.path("keys/sec.key")).unwrap();
    // Rate limit one a second: a forged submission naming the key does not take its token.
    let (limited, url) = h.serve_with(&["--rate-per-key", "1"]);
    let (_, good) = h.signed_ack(&key, 0);
    let (status, reply) = post(&url, &forged(&good)).unwrap();
    assert_eq!(status, 403, "{reply}");
    assert!(reply.contains("signature does not verify"), "{reply}");
    let (status, reply) = post(&url, &good).unwrap();
    assert_eq!(status, 200, "the forgery spent the key's budget: {reply}");
    let (_, next) = h.signed_ack(&key, 1);
    let (status, reply) = post(&url, &next).unwrap();
    assert_eq!(status, 429, "{reply}");
    drop(limited);
    // Many submissions at once (checked in batches): only the forged one is refused.
    let (server, url) = h.serve();
    let subs: Vec<(String, Vec<u8>)> = (10..42).map(|n| h.signed_ack(&key, n)).collect();
    let bad = 13;
    let barrier = Arc::new(std::sync::Barrier::new(subs.len()));
    let threads: Vec<_> = subs
        .iter()
        .enumerate()
        .map(|(i, (id, body))| {
            let body = if i == bad { forged(body) } else { body.clone() };
            let (url, barrier, id) = (url.clone(), barrier.clone(), id.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let (status, reply) = post(&url, &body).unwrap();
                (i, id, status, reply)
            })
        })
        .collect();
    for t in threads {
        let (i, id, status, reply) = t.join().unwrap();
        if i == bad {
            assert_eq!(status, 403, "{reply}");
        } else {
            assert_eq!(status, 200, "{reply}");
            assert!(reply.contains(&id), "{reply}");
        }
    }
    kill(server);
    // Genesis, key add, the one good submission above, and 31 of the 32.
    let log = h.evl(&["log", "--json"]).ok().ndjson();
    assert_eq!(log.as_array().unwrap().len(), 3 + 31);
    h.evl(&["verify"]).ok();
}

#[test]
fn a_key_revoked_before_its_submission_is_sequenced_is_refused() {
    use evl::entry::KeyRevoke;
    let h = Host::new();
    let admin = evl::keys::read_secret(&h.path("keys/admin.key")).unwrap();
    let sec = evl::keys::read_secret(&h.path("keys/sec.key")).unwrap();
    let genesis: evl::digest::Digest = h.genesis.parse().unwrap();
    let revoke = Entry::sign(
        UnsignedEntry {
            format: ENTRY_FORMAT,
            ledger: genesis,
            signer: admin.public().id(),
            claimed_at: evl::timestamp::Timestamp::now(),
            payload: Payload::KeyRevoke(KeyRevoke {
                key: sec.public().id(),
                reason: "laptop lost".into(),
            }),
        },
        &admin,
    );
    let (_, ack) = h.signed_ack(&sec, 0);
    let ack = Submission::from_bytes(&ack).unwrap().entries[0].clone();
    // Both signatures verify against the registry the check sees (sec is active then); in
    // the log, the revocation comes first, so sec's entry after it must be refused.
    let both = Submission::new(ORIGIN, genesis, vec![(revoke.clone(), vec![]), ack.clone()])
        .to_bytes()
        .unwrap();
    let (server, url) = h.serve();
    let (status, reply) = post(&url, &both).unwrap();
    assert_eq!(status, 403, "{reply}");
    assert!(
        reply.contains("revoked") || reply.contains("not active"),
        "{reply}"
    );
    // Nothing of the refused submission is appended; the revocation alone is.
    let alone = Submission::new(ORIGIN, genesis, vec![(revoke, vec![])])
        .to_bytes()
        .unwrap();
    assert_eq!(post(&url, &alone).unwrap().0, 200);
    // Its signature is still good, but the key is revoked now: refused again.
    let late = Submission::new(ORIGIN, genesis, vec![ack])
        .to_bytes()
        .unwrap();
    let (status, reply) = post(&url, &late).unwrap();
    assert_eq!(status, 403, "{reply}");
    kill(server);
    let log = h.evl(&["log", "--json"]).ok().ndjson();
    assert_eq!(log.as_array().unwrap().len(), 3);
}
