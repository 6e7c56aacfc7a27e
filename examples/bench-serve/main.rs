//! Durable submissions per second through `evl serve` over loopback HTTP, with p50/p99
//! latency, beside the limits measured in the same run: Ed25519 verification on one core and
//! on all cores, and fdatasync latency (docs/PERFORMANCE.md §"Server").
//!
//! Run: `cargo build --release && cargo run --release --example bench-serve -- [--n N]
//! [--clients 16,64] [--evl PATH]` (default: 20000 pre-signed submissions per run, clients 16
//! and 64, `target/release/evl`). Figures are printed, never asserted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use evl::entry::{Acknowledgment, ENTRY_FORMAT, Entry, KeyGrant, Payload, UnsignedEntry};
use evl::keys::{Role, SecretKey};
use evl::store::{Draft, Ledger};
use evl::submission::Submission;
use evl::timestamp::Timestamp;
use rayon::prelude::*;

const ORIGIN: &str = "example.org/bench-serve";

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A keep-alive HTTP/1.1 POST of `body` to `/add`; the status and the time it took.
fn post(conn: &mut BufReader<TcpStream>, host: &str, body: &[u8]) -> (u16, Duration) {
    let t = Instant::now();
    let head = format!(
        "POST /add HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // One write: a head and a body written apart meet Nagle's algorithm and delayed ACKs.
    let mut req = head.into_bytes();
    req.extend_from_slice(body);
    conn.get_mut().write_all(&req).unwrap();
    let mut status = 0;
    let mut len = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        conn.read_line(&mut line).unwrap();
        if status == 0 {
            status = line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
        } else if line == "\r\n" {
            break;
        } else if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut b = vec![0u8; len];
    conn.read_exact(&mut b).unwrap();
    (status, t.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn run(evl: &Path, n: usize, clients: usize) {
    let dir = tempfile::tempdir().unwrap();
    let admin = SecretKey::generate();
    let signer = SecretKey::generate();
    let grant = |name: &str, k: &SecretKey, role: Role| KeyGrant {
        name: name.into(),
        public_key: k.public(),
        roles: vec![role],
    };
    let ledger_dir = dir.path().join("ledger");
    let ledger = Ledger::init(
        &ledger_dir,
        ORIGIN,
        vec![grant("admin", &admin, Role::Admin)],
        &admin,
        Timestamp::now(),
    )
    .unwrap();
    ledger
        .append(
            Draft {
                payload: Payload::KeyAdd(grant("sec", &signer, Role::SecuritySigner)),
                claimed_at: Timestamp::now(),
                blobs: vec![],
            },
            &admin,
        )
        .unwrap();
    let genesis = ledger.genesis_id().unwrap();
    drop(ledger);
    evl::keys::write_key_pair(dir.path(), "admin", &admin, "").unwrap();
    let at = Timestamp::now();
    let bodies: Vec<Vec<u8>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let body = UnsignedEntry {
                format: ENTRY_FORMAT,
                ledger: genesis,
                signer: signer.public().id(),
                claimed_at: at,
                payload: Payload::Acknowledgment(Acknowledgment {
                    topic: "bench".into(),
                    subject: None,
                    namespace: Some("payments".into()),
                    statement: format!("acknowledgment {i}"),
                }),
            };
            Submission::new(ORIGIN, genesis, vec![(Entry::sign(body, &signer), vec![])])
                .to_bytes()
                .unwrap()
        })
        .collect();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(evl)
        .arg("--ledger")
        .arg(&ledger_dir)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--key"])
        .arg(dir.path().join("admin.key"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let host = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let per: Vec<Vec<Duration>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let bodies = &bodies;
                let host = &host;
                s.spawn(move || {
                    let stream = TcpStream::connect(host).unwrap();
                    stream.set_nodelay(true).unwrap();
                    let mut conn = BufReader::new(stream);
                    let mut lat = Vec::new();
                    for b in bodies.iter().skip(c).step_by(clients) {
                        let (status, d) = post(&mut conn, host, b);
                        assert_eq!(status, 200);
                        lat.push(d);
                    }
                    lat
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = started.elapsed().as_secs_f64();
    let _ = server.kill();
    let _ = server.wait();
    let mut lat: Vec<Duration> = per.into_iter().flatten().collect();
    lat.sort();
    println!(
        "serve  clients {clients:>3}: {n} signed durable submissions in {secs:.2} s = {:>7.0}/s; latency p50 {:.1} ms, p99 {:.1} ms",
        n as f64 / secs,
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
    );
    // Every acknowledged submission is there.
    let ledger = Ledger::open(&ledger_dir, &Default::default()).unwrap();
    assert_eq!(ledger.size().unwrap(), 2 + n as u64);
}

fn limits(dir: &Path) {
    let key = SecretKey::generate();
    let msgs: Vec<Vec<u8>> = (0..20_000u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let sigs: Vec<_> = msgs.iter().map(|m| key.sign(m)).collect();
    let public = key.public();
    let t = Instant::now();
    for (m, s) in msgs.iter().zip(&sigs) {
        assert!(evl::keys::verify(&public, m, s));
    }
    let one = msgs.len() as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    msgs.par_iter()
        .zip(&sigs)
        .for_each(|(m, s)| assert!(evl::keys::verify(&public, m, s)));
    let all = msgs.len() as f64 / t.elapsed().as_secs_f64();
    // The batch equation the server's signature checkers use (src/batch_verify.rs), 64
    // signatures a batch: on one core, then on all.
    let vk = ed25519_dalek::VerifyingKey::from_bytes(public.bytes()).unwrap();
    let batch = |m: &[Vec<u8>], s: &[evl::keys::SignatureBytes]| {
        let items: Vec<_> = m
            .iter()
            .zip(s)
            .map(|(message, s)| evl::batch_verify::Item {
                key: &vk,
                message,
                signature: &s.0,
            })
            .collect();
        assert!(evl::batch_verify::verify(&items));
    };
    let t = Instant::now();
    msgs.chunks(64)
        .zip(sigs.chunks(64))
        .for_each(|(m, s)| batch(m, s));
    let batch_one = msgs.len() as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    msgs.par_chunks(64)
        .zip(sigs.par_chunks(64))
        .for_each(|(m, s)| batch(m, s));
    let batch_all = msgs.len() as f64 / t.elapsed().as_secs_f64();
    let f = std::fs::File::create(dir.join("sync")).unwrap();
    let t = Instant::now();
    let rounds = 200;
    for _ in 0..rounds {
        (&f).write_all(&[0u8; 4096]).unwrap();
        f.sync_data().unwrap();
    }
    let sync = t.elapsed().as_secs_f64() / rounds as f64;
    let threads = rayon::current_num_threads();
    println!(
        "limits: Ed25519 verify {one:.0}/s on one core, {all:.0}/s on {threads} threads; batches of 64 {batch_one:.0}/s on one core, {batch_all:.0}/s on {threads} threads; fdatasync {:.2} ms ({:.0} batches/s)",
        sync * 1e3,
        1.0 / sync
    );
}

fn main() {
    let n: usize = arg("--n").map_or(20_000, |v| v.parse().unwrap());
    let clients: Vec<usize> = arg("--clients")
        .unwrap_or_else(|| "16,64".into())
        .split(',')
        .map(|c| c.parse().unwrap())
        .collect();
    let evl = arg("--evl")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/evl"));
    let tmp = tempfile::tempdir().unwrap();
    limits(tmp.path());
    for c in clients {
        run(&evl, n, c);
    }
}
