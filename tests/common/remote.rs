//! Remote ledgers in tests: a real `evl serve` on loopback, and a client of the S3 server
//! ([`super::parts::S3Server`]) for a test's own reads and tampering in the bucket.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Stdio};

use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::evl_std;
use super::parts::S3Server;

/// A running `evl serve`, killed with SIGKILL when dropped (also when a test fails).
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The ledger the server tests start from, under `root`: keys `admin` and `sec` in
/// `root/keys`, a ledger at `root/ledger` of `origin` whose genesis grants `admin`, and `sec`
/// registered as a security signer. Returns the genesis id.
pub fn admin_and_signer(root: &Path, origin: &str) -> String {
    let keys = root.join("keys");
    let evl = |args: &[&str]| {
        super::run(
            super::evl_bin()
                .env("XDG_STATE_HOME", root.join("state"))
                .arg("--ledger")
                .arg(root.join("ledger"))
                .args(args),
        )
        .ok()
    };
    for k in ["admin", "sec"] {
        super::run(super::evl_bin().args(["keygen", k, "--dir"]).arg(&keys)).ok();
    }
    let (admin_pub, admin_key, sec_pub) = (
        keys.join("admin.pub").display().to_string(),
        keys.join("admin.key").display().to_string(),
        keys.join("sec.pub").display().to_string(),
    );
    let o = evl(&[
        "init", "--origin", origin, "--admin", &admin_pub, "--key", &admin_key,
    ]);
    let genesis = o.stdout.trim().rsplit(' ').next().unwrap().to_string();
    evl(&[
        "key",
        "add",
        "sec",
        "--pub",
        &sec_pub,
        "--role",
        "security-signer",
        "--key",
        &admin_key,
    ]);
    genesis
}

/// A submission (docs/FORMAT.md §"Submission files") of one acknowledgment on `topic`, number
/// `n`, signed by `key` with evl's library as a signer's laptop would: its entry id and bytes.
pub fn ack_submission(
    origin: &str,
    genesis: &str,
    key: &evl::keys::SecretKey,
    topic: &str,
    n: usize,
) -> (String, Vec<u8>) {
    use evl::entry::{Acknowledgment, ENTRY_FORMAT, Entry, Payload, UnsignedEntry};
    let body = UnsignedEntry {
        format: ENTRY_FORMAT,
        ledger: genesis.parse().unwrap(),
        signer: key.public().id(),
        claimed_at: evl::timestamp::Timestamp(1_776_470_400 + n as i64),
        payload: Payload::Acknowledgment(Acknowledgment {
            topic: topic.into(),
            subject: None,
            namespace: None,
            statement: format!("acknowledgment {n}"),
        }),
    };
    let e = Entry::sign(body, key);
    let id = e.id().to_string();
    let bytes =
        evl::submission::Submission::new(origin, genesis.parse().unwrap(), vec![(e, vec![])])
            .to_bytes()
            .unwrap();
    (id, bytes)
}

/// Starts `evl --ledger LEDGER serve --addr 127.0.0.1:<free> --key KEY EXTRA…` and waits for
/// its start-up line (`serving … URL`, or with `--json` the `evl.serve/v1` object); returns the
/// server and its URL.
pub fn serve(ledger: &Path, key: &Path, extra: &[&str]) -> (Server, String) {
    let port = super::parts::free_port();
    let mut child = evl_std()
        .arg("--ledger")
        .arg(ledger)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--key"])
        .arg(key)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server(child);
    if extra.contains(&"--json") {
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("start-up line is not JSON ({e}): {line}"));
        assert_eq!(v["schema"], "evl.serve/v1", "{line}");
        return (server, v["url"].as_str().unwrap().to_string());
    }
    assert!(line.starts_with("serving"), "{line}");
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    (server, url)
}

/// A client of the S3 server for the test's own reads and tampering (object_store, as evl
/// uses).
pub struct Bucket {
    store: object_store::aws::AmazonS3,
    rt: tokio::runtime::Runtime,
}

impl Bucket {
    pub fn new(s3: &S3Server) -> Bucket {
        // reqwest is built without a TLS provider of its own (Cargo.toml); evl installs ring.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&s3.bucket)
            .with_endpoint(&s3.endpoint)
            .with_access_key_id(&s3.access_key)
            .with_secret_access_key(&s3.secret_key)
            .with_region("us-east-1")
            .with_allow_http(true)
            .build()
            .unwrap();
        Bucket {
            store,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    pub fn get(&self, key: &str) -> Vec<u8> {
        self.rt.block_on(async {
            self.store
                .get(&key.into())
                .await
                .unwrap_or_else(|e| panic!("{key}: {e}"))
                .bytes()
                .await
                .unwrap()
                .to_vec()
        })
    }

    pub fn put(&self, key: &str, bytes: &[u8]) {
        self.rt
            .block_on(
                self.store
                    .put(&key.into(), PutPayload::from(bytes.to_vec())),
            )
            .unwrap();
    }

    pub fn list(&self, prefix: &str) -> Vec<String> {
        use futures::TryStreamExt;
        self.rt.block_on(async {
            let mut v: Vec<String> = self
                .store
                .list(Some(&prefix.into()))
                .map_ok(|m| m.location.to_string())
                .try_collect()
                .await
                .unwrap();
            v.sort();
            v
        })
    }
}

/// A TCP proxy on loopback in front of an HTTP server that records the request line of every
/// request passing through (`GET /bucket/prefix/tile/0/000 HTTP/1.1`), so a test sees what a
/// client fetched. Only for clients that send requests without bodies (reads).
pub struct CountingProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl CountingProxy {
    /// Starts a proxy to `upstream` (`http://HOST:PORT`).
    pub fn start(upstream: &str) -> CountingProxy {
        use std::io::{Read, Write};
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let Ok(mut server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Both);
                });
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut pending: Vec<u8> = Vec::new();
                    let mut buf = [0u8; 16384];
                    loop {
                        let n = match client.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
                            if let Some(line) = head.lines().next() {
                                seen.lock().unwrap().push(line.to_string());
                            }
                            pending.drain(..end + 4);
                        }
                        if server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = server.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        CountingProxy { url, requests }
    }

    /// The request lines seen since the last call, emptied.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }

    /// The paths of the GET requests since the last call, with `strip` removed from their
    /// front, sorted.
    pub fn gets(&self, strip: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .take()
            .iter()
            .filter_map(|l| l.strip_prefix("GET "))
            .filter_map(|l| l.split(' ').next())
            .map(|p| {
                p.split('?')
                    .next()
                    .unwrap()
                    .trim_start_matches(strip)
                    .to_string()
            })
            .collect();
        v.sort();
        v
    }
}
