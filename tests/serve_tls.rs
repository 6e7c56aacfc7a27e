//! `evl serve` and `evl witness serve` over TLS and against slow clients (issue 15, item 2),
//! through the real binary on loopback: a CA and a server certificate made here with rcgen;
//! clients trust the CA through `EVL_CA_FILE`; bad certificate or key files are refused before
//! anything is bound; connections that stall in their request head or trickle their body are
//! closed while well-behaved submissions go through.

mod common;

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::parts::{make_pki, write_secret};
use common::remote::Server;
use common::{Out, evl_bin, evl_std, run};
use tempfile::TempDir;
use tokio_rustls::rustls;

const ORIGIN: &str = "example.org/serve-tls";

/// A generous bound for "closed by the server": far above every timeout the tests set.
const GENEROUS: Duration = Duration::from_secs(30);

/// A CA, and a certificate it issued for 127.0.0.1 and localhost, as PEM files in `dir`:
/// ca.pem, server.pem (leaf then CA), server.key (0600); plus other.key, a key of no certificate.
struct Host {
    root: TempDir,
    genesis: String,
}

impl Host {
    fn new() -> Host {
        let root = tempfile::tempdir().unwrap();
        let genesis = common::remote::admin_and_signer(root.path(), ORIGIN);
        let h = Host { root, genesis };
        make_pki(&h.path("pki"));
        h
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }
    fn p(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }
    fn evl(&self, args: &[&str]) -> Out {
        self.evl_env(&self.p("ledger"), &[], args)
    }
    /// `evl --ledger LEDGER ARGS` with `env` set (EVL_CA_FILE is unset unless given).
    fn evl_env(&self, ledger: &str, env: &[(&str, &str)], args: &[&str]) -> Out {
        let mut c = evl_bin();
        c.env("XDG_STATE_HOME", self.path("state"))
            .env_remove("EVL_CA_FILE")
            .env_remove("SSL_CERT_FILE")
            .arg("--ledger")
            .arg(ledger)
            .args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        run(&mut c)
    }
    fn entries(&self) -> u64 {
        self.evl(&["verify", "--json", "--no-state"]).ok().json()["report"]["entries_checked"]
            .as_u64()
            .unwrap()
    }

    /// Starts `evl serve --json` on a free loopback port with `extra` options; the server and
    /// the URL its start-up line gives.
    fn serve(&self, extra: &[&str]) -> (Server, String) {
        let args: Vec<&str> = ["--json"].iter().chain(extra).copied().collect();
        common::remote::serve(&self.path("ledger"), &self.path("keys/admin.key"), &args)
    }

    fn tls_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.p("pki/server.pem"),
            "--tls-key".into(),
            self.p("pki/server.key"),
        ]
    }

    /// A submission file of one acknowledgment signed by `sec` (offline, as on a laptop).
    fn signed(&self, n: usize) -> PathBuf {
        let key = evl::keys::read_secret(&self.path("keys/sec.key")).unwrap();
        let (_, bytes) = common::remote::ack_submission(ORIGIN, &self.genesis, &key, "tls", n);
        let path = self.path(&format!("sub-{n}.evls"));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

fn host_port(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap()
        .trim_end_matches('/')
        .to_string()
}

/// True when the server closes `s` (EOF or reset) before `bound`; false when it is still open
/// then. Whatever the server sent before closing is ignored.
fn closed_within(s: &mut impl Read, bound: Duration) -> bool {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if start.elapsed() >= bound {
                    return false;
                }
            }
            Err(_) => return true,
        }
        if start.elapsed() >= bound {
            return false;
        }
    }
}

/// A raw `POST /add` of `body` over plain TCP: the status, or `None` when the connection is
/// closed without an HTTP answer.
fn post_plain(addr: &str, body: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(GENEROUS)).ok()?;
    let head = format!(
        "POST /add HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// A rustls client trusting only the test CA (for raw requests over TLS).
fn tls_client(pki: &Path, addr: &str) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(pki.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tcp = TcpStream::connect(addr).unwrap();
    // The handshake with a generous timeout (the machine may be busy); reads after it
    // time out quickly, for `closed_within`.
    tcp.set_read_timeout(Some(GENEROUS)).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap();
    }
    tcp.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

#[test]
fn submit_and_verify_over_tls_with_a_private_ca() {
    let h = Host::new();
    let tls = h.tls_args();
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    let (_server, url) = h.serve(&tls);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let ca = h.p("pki/ca.pem");
    let trusted = [("EVL_CA_FILE", ca.as_str())];
    let sub = h.signed(1);
    let f = sub.display().to_string();

    // Without the CA trusted: one line naming the TLS problem, exit 2, nothing appended.
    let o = h.evl_env(&url, &[], &["submit", &f]);
    o.refused(2, &["certificate"]);
    assert!(
        o.stderr.contains("UnknownIssuer") || o.stderr.contains("unknown issuer"),
        "{o:#?}"
    );
    assert_eq!(h.entries(), 2);
    let o = h.evl_env(&url, &[], &["verify", "--genesis", &h.genesis]);
    o.refused(2, &["certificate"]);

    // With it: appended, and the served log verifies.
    let o = h.evl_env(&url, &trusted, &["submit", &f]).ok();
    assert!(o.stdout.contains(" at index 2"), "{o:#?}");
    assert_eq!(h.entries(), 3);
    let o = h
        .evl_env(
            &url,
            &trusted,
            &["verify", "--genesis", &h.genesis, "--json"],
        )
        .ok();
    assert_eq!(o.json()["report"]["entries_checked"], 3, "{o:#?}");
    // Reading verbs too.
    let o = h.evl_env(&url, &trusted, &["log"]).ok();
    assert!(o.stdout.contains("acknowledgment"), "{o:#?}");

    // A CA bundle that is not PEM: one line naming the variable and the file, exit 2.
    let junk = h.path("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let junk = junk.display().to_string();
    let o = h.evl_env(&url, &[("EVL_CA_FILE", &junk)], &["submit", &f]);
    o.refused(2, &["EVL_CA_FILE", "junk.pem"]);
    let o = h.evl_env(&url, &[("EVL_CA_FILE", "/nonexistent/ca.pem")], &["log"]);
    o.refused(2, &["EVL_CA_FILE", "/nonexistent/ca.pem"]);
    // The S3 client reads it too, before any request.
    let o = h.evl_env(
        "s3://no-such-bucket/p",
        &[
            ("EVL_CA_FILE", &junk),
            ("AWS_ENDPOINT_URL", "https://127.0.0.1:1"),
        ],
        &["log"],
    );
    o.refused(2, &["EVL_CA_FILE", "junk.pem"]);
    // A local verb never reads it.
    h.evl_env(&h.p("ledger"), &[("EVL_CA_FILE", &junk)], &["log"])
        .ok();

    // Plain HTTP to the TLS port gets no submission through.
    let second = std::fs::read(h.signed(2)).unwrap();
    let status = post_plain(&host_port(&url), &second);
    assert!(status.is_none_or(|s| s != 200), "{status:?}");
    assert_eq!(h.entries(), 3);

    // A raw TLS request with the CA: ALPN http/1.1, and the checkpoint is served.
    let mut s = tls_client(&h.path("pki"), &host_port(&url));
    write!(
        s,
        "GET /checkpoint HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s.sock.set_read_timeout(Some(GENEROUS)).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    assert_eq!(s.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(&format!("{ORIGIN}\n3\n")), "{text}");
}

/// Runs `evl serve` with `args` on a port the test itself holds: the error must be about the
/// files (checked before binding), not about the address.
fn refused_before_binding(h: &Host, args: &[&str], code: i32, needles: &[&str]) {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let mut all = vec!["serve", "--addr", &addr, "--key"];
    let key = h.p("keys/admin.key");
    all.push(&key);
    all.extend_from_slice(args);
    let o = h.evl(&all);
    o.refused(code, needles);
    assert!(!o.stderr.contains("in use"), "{o:#?}");
    drop(held);
    // And nothing stays bound.
    std::net::TcpListener::bind(&addr).expect("the port is free");
}

#[test]
fn bad_certificate_or_key_files_are_refused_before_binding() {
    let h = Host::new();
    let cert = h.p("pki/server.pem");
    let key = h.p("pki/server.key");
    let other = h.p("pki/other.key");
    let missing = h.p("pki/missing.pem");
    let junk = h.path("pki/junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let junk = junk.display().to_string();
    let text = h.path("pki/text.pem");
    std::fs::write(&text, "hello\n").unwrap();
    let text = text.display().to_string();
    // An unreadable certificate.
    refused_before_binding(
        &h,
        &["--tls-cert", &missing, "--tls-key", &key],
        2,
        &["missing.pem"],
    );
    // A file with no certificate in it.
    refused_before_binding(
        &h,
        &["--tls-cert", &text, "--tls-key", &key],
        2,
        &["text.pem"],
    );
    // A certificate block that is not a certificate: caught when the key is matched to it.
    refused_before_binding(
        &h,
        &["--tls-cert", &junk, "--tls-key", &key],
        2,
        &["junk.pem"],
    );
    // A key that is not a key.
    write_secret(
        &h.path("pki/bad.key"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let bad = h.p("pki/bad.key");
    refused_before_binding(
        &h,
        &["--tls-cert", &cert, "--tls-key", &bad],
        2,
        &["bad.key"],
    );
    // A key of no certificate here.
    refused_before_binding(
        &h,
        &["--tls-cert", &cert, "--tls-key", &other],
        2,
        &["other.key", "not the certificate's"],
    );
    // The key readable by others: the secrets rule, exit 3.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    refused_before_binding(
        &h,
        &["--tls-cert", &cert, "--tls-key", &key],
        3,
        &["server.key", "chmod 600"],
    );
    // One without the other: a usage error.
    let o = h.evl(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--key",
        &h.p("keys/admin.key"),
        "--tls-cert",
        &cert,
    ]);
    assert_eq!(o.code, 2, "{o:#?}");
    assert!(o.stderr.contains("--tls-key"), "{o:#?}");
    // The witness server checks them the same way, before binding.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let o = run(evl_bin()
        .args(["witness", "serve", "--state"])
        .arg(h.path("wstate"))
        .args([
            "--name",
            "witness.example.org/w1",
            "--key",
            &h.p("keys/admin.key"),
        ])
        .args(["--addr", &addr, "--tls-cert", &cert, "--tls-key", &other]));
    o.refused(2, &["other.key"]);
}

#[test]
fn stalled_and_trickling_clients_are_cut_off_while_submissions_go_through() {
    let h = Host::new();
    let (_server, url) = h.serve(&["--header-timeout", "2", "--body-timeout", "3"]);
    let addr = host_port(&url);
    // 50 connections send half a request head and stall.
    let opened = Instant::now();
    let mut stalled: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"POST /add HTTP/1.1\r\nHost: x\r\nContent-Le")
                .unwrap();
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            s
        })
        .collect();
    // One sends a whole head and trickles its body, a byte every 200 ms.
    let trickler = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(
                b"POST /add HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n",
            )
            .unwrap();
            let mut reader = s.try_clone().unwrap();
            let writer = std::thread::spawn(move || {
                for _ in 0..1000 {
                    if s.write_all(b"x").is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
            reader.set_read_timeout(Some(GENEROUS)).unwrap();
            let start = Instant::now();
            let mut resp = Vec::new();
            let _ = reader.read_to_end(&mut resp);
            let _ = reader.shutdown(std::net::Shutdown::Both);
            let _ = writer.join();
            (String::from_utf8_lossy(&resp).into_owned(), start.elapsed())
        })
    };
    // Meanwhile, well-behaved submissions go through.
    for n in 1..=5 {
        let f = h.signed(n).display().to_string();
        let o = h.evl_env(&url, &[], &["submit", &f]).ok();
        assert!(o.stdout.contains(&format!(" at index {}", n + 1)), "{o:#?}");
    }
    // The stalled connections are closed by the server, none left open.
    for (i, s) in stalled.iter_mut().enumerate() {
        let left = GENEROUS.saturating_sub(opened.elapsed());
        assert!(
            closed_within(s, left),
            "stalled connection {i} still open after {GENEROUS:?}"
        );
    }
    // The trickled body gets 408 or a close, before the generous bound.
    let (resp, took) = trickler.join().unwrap();
    assert!(
        took < GENEROUS,
        "the trickling client was served for {took:?}"
    );
    assert!(
        resp.is_empty() || resp.starts_with("HTTP/1.1 408"),
        "{resp}"
    );
    assert_eq!(h.entries(), 7);
}

#[test]
fn beyond_the_connection_cap_clients_wait_in_the_backlog() {
    let h = Host::new();
    let (_server, url) = h.serve(&["--header-timeout", "2", "--max-connections", "3"]);
    let addr = host_port(&url);
    // Three stalled connections take every slot.
    let mut stalled: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /check").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A fourth connects (the kernel queues it) and is answered once the header timeout frees
    // a slot: not refused.
    let start = Instant::now();
    let f = h.signed(1).display().to_string();
    let o = h.evl_env(&url, &[], &["submit", &f]).ok();
    assert!(o.stdout.contains(" at index 2"), "{o:#?}");
    let waited = start.elapsed();
    for s in &mut stalled {
        assert!(closed_within(s, GENEROUS));
    }
    // It waited for a slot: the stalled ones were cut off at about 2 s, not before.
    assert!(
        waited >= Duration::from_millis(1000),
        "served after {waited:?}: the cap did not hold"
    );
}

#[test]
fn witness_serves_tls_and_cuts_off_stalled_handshakes_and_heads() {
    use common::witness::{add_log, checkpoint, grow, ledger};
    let f = ledger();
    grow(&f, 2, "a");
    let (_, vkey) = checkpoint(&f);
    let pki = f.path("pki");
    make_pki(&pki);
    let state = f.path("wstate");
    add_log(&state, &vkey).ok();
    let port = common::parts::free_port();
    let mut child = evl_std()
        .args(["witness", "serve", "--json", "--state"])
        .arg(&state)
        .args(["--name", "witness.example.org/w1", "--key"])
        .arg(f.key("w1"))
        .args(["--addr", &format!("127.0.0.1:{port}"), "--tls-cert"])
        .arg(pki.join("server.pem"))
        .arg("--tls-key")
        .arg(pki.join("server.key"))
        .args(["--header-timeout", "2", "--tls-handshake-timeout", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Server(child);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let url = v["url"].as_str().unwrap().to_string();
    assert_eq!(url, format!("https://127.0.0.1:{port}"));
    let addr = host_port(&url);

    // Connections that never start the handshake, and one that sends half a head over TLS.
    let opened = Instant::now();
    let mut silent: Vec<TcpStream> = (0..10)
        .map(|_| {
            let s = TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            s
        })
        .collect();
    let mut half = tls_client(&pki, &addr);
    half.write_all(b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    half.flush().unwrap();

    // Without the CA trusted, checkpoint --witness names the TLS problem.
    let ckpt = |env: Option<&str>| {
        let mut c = evl_bin();
        c.env("XDG_STATE_HOME", f.path("state"))
            .env_remove("EVL_CA_FILE")
            .arg("--ledger")
            .arg(f.ledger())
            .args(["checkpoint", "--key"])
            .arg(f.key("admin"))
            .args(["--witness", &url]);
        if let Some(ca) = env {
            c.env("EVL_CA_FILE", ca);
        }
        run(&mut c)
    };
    let o = ckpt(None);
    assert_eq!(o.code, 6, "{o:#?}");
    assert!(
        o.stderr.contains("certificate") || o.stderr.contains("UnknownIssuer"),
        "{o:#?}"
    );
    // With it, cosigned.
    let ca = pki.join("ca.pem").display().to_string();
    let o = ckpt(Some(&ca)).ok();
    assert!(
        o.stdout.contains("witness.example.org/w1") || o.stdout.contains("cosign"),
        "{o:#?}"
    );

    for (i, s) in silent.iter_mut().enumerate() {
        let left = GENEROUS.saturating_sub(opened.elapsed());
        assert!(closed_within(s, left), "silent connection {i} still open");
    }
    let left = GENEROUS.saturating_sub(opened.elapsed());
    assert!(
        closed_within(&mut half, left),
        "the half head over TLS is still open"
    );
}

#[test]
fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let h = Host::new();
    // The header timeout far above the keep-alive one: only the latter can close it early.
    let (_server, url) = h.serve(&["--keep-alive-timeout", "1", "--header-timeout", "120"]);
    let mut s = TcpStream::connect(host_port(&url)).unwrap();
    s.write_all(b"GET /checkpoint HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    // The answer comes, and the connection stays open for the next request...
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    while !String::from_utf8_lossy(&got).contains(&format!("{ORIGIN}\n")) {
        match s.read(&mut buf) {
            Ok(0) => panic!("closed before answering"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => assert!(start.elapsed() < GENEROUS, "no answer"),
        }
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    // ...until it has been idle for the keep-alive timeout: closed well before the header
    // timeout could have done it.
    let idle = Instant::now();
    assert!(
        closed_within(&mut s, Duration::from_secs(60)),
        "the idle connection is still open"
    );
    assert!(idle.elapsed() < Duration::from_secs(60));
}

#[test]
fn sigterm_drains_a_submission_in_flight() {
    let h = Host::new();
    let tls = h.tls_args();
    let mut args: Vec<&str> = tls.iter().map(String::as_str).collect();
    args.extend(["--body-timeout", "60"]);
    let (mut server, url) = h.serve(&args);
    let body = std::fs::read(h.signed(1)).unwrap();
    // A submission over TLS whose body is still arriving when the server is told to stop.
    let mut s = tls_client(&h.path("pki"), &host_port(&url));
    write!(
        s,
        "POST /add HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body[..body.len() / 2]).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let pid = server.0.id() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    std::thread::sleep(Duration::from_millis(500));
    // A new connection is no longer accepted once it stops listening.
    assert!(
        TcpStream::connect(host_port(&url)).is_err(),
        "still accepting after SIGTERM"
    );
    s.write_all(&body[body.len() / 2..]).unwrap();
    s.flush().unwrap();
    s.sock.set_read_timeout(Some(GENEROUS)).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"index\":2"), "{text}");
    // The server then exits 0, and the acknowledged entry is in the log.
    let status = server.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(h.entries(), 3);
}

#[test]
fn a_client_that_does_not_read_its_response_is_cut_off() {
    let h = Host::new();
    // A 32 MiB blob: far more than the loopback socket buffers hold.
    let big = h.path("big.bin");
    let mut data = vec![0u8; 32 << 20];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i.wrapping_mul(2_654_435_761) >> 13) as u8;
    }
    std::fs::write(&big, &data).unwrap();
    run(evl_bin()
        .args(["keygen", "owner", "--dir"])
        .arg(h.path("keys")))
    .ok();
    h.evl(&[
        "key",
        "add",
        "owner",
        "--pub",
        &h.p("keys/owner.pub"),
        "--role",
        "owner",
        "--key",
        &h.p("keys/admin.key"),
    ])
    .ok();
    let o = h
        .evl(&[
            "add",
            &big.display().to_string(),
            "--kind",
            "note",
            "--tier",
            "authoritative",
            "--key",
            &h.p("keys/owner.key"),
            "--json",
        ])
        .ok();
    assert!(o.stdout.contains("evl.appended/v1"), "{o:#?}");
    // Blobs are addressed by the BLAKE3 of their bytes.
    let digest = blake3::hash(&data).to_hex().to_string();
    let (_server, url) = h.serve(&["--write-timeout", "2"]);
    // A reader that asks for the blob on a kept-alive connection and then stops reading.
    let mut s = TcpStream::connect(host_port(&url)).unwrap();
    write!(s, "GET /blob/{digest} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_secs(6));
    // What arrives afterwards is what the buffers held: the response is cut short.
    s.set_read_timeout(Some(GENEROUS)).unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    let mut head = Vec::new();
    let start = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if head.len() < 64 {
                    head.extend_from_slice(&buf[..n.min(64)]);
                }
                got += n
            }
        }
        assert!(
            start.elapsed() < GENEROUS,
            "still reading after {GENEROUS:?}"
        );
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        got < data.len(),
        "the whole blob ({got} bytes) was sent to a client that stopped reading"
    );
}
