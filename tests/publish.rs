//! `evl publish` and `--ledger DIR|s3://…` (issue 15, item 4), through the real binary: the
//! log published as C2SP tlog-tiles to a directory and to a real S3 server (SeaweedFS `weed
//! mini` on loopback, SigV4), incrementally, read back and verified from a trust root the
//! auditor holds; a swapped tile, an altered blob and a rolled-back checkpoint are named.

mod common;

use std::path::Path;

use common::parts::S3Server;
use common::remote::Bucket;
use common::{Out, evl_bin, run};
use serde_json::Value;
use tempfile::TempDir;

const EX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mtls-cutover");
const ORIGIN: &str = "example.org/publish";

struct Log {
    root: TempDir,
    genesis: String,
    env: Vec<(&'static str, String)>,
}

impl Log {
    fn new(env: Vec<(&'static str, String)>) -> Log {
        let root = tempfile::tempdir().unwrap();
        let mut l = Log {
            root,
            genesis: String::new(),
            env,
        };
        for k in ["admin", "owner"] {
            run(evl_bin()
                .args(["keygen", k, "--dir"])
                .arg(l.root.path().join("keys")))
            .ok();
        }
        let out = l
            .evl(&[
                "init",
                "--origin",
                ORIGIN,
                "--admin",
                &l.p("keys/admin.pub"),
                "--key",
                &l.p("keys/admin.key"),
            ])
            .ok();
        l.genesis = out.stdout.trim().rsplit(' ').next().unwrap().to_string();
        l.evl(&[
            "key",
            "add",
            "owner",
            "--pub",
            &l.p("keys/owner.pub"),
            "--role",
            "owner",
            "--key",
            &l.p("keys/admin.key"),
        ])
        .ok();
        l
    }

    fn p(&self, rel: &str) -> String {
        self.root.path().join(rel).display().to_string()
    }

    /// `evl --ledger <the ledger> ARGS`.
    fn evl(&self, args: &[&str]) -> Out {
        self.evl_at(&self.p("ledger"), args)
    }

    /// `evl --ledger LEDGER ARGS` with the S3 environment and this log's auditor state.
    fn evl_at(&self, ledger: &str, args: &[&str]) -> Out {
        let mut c = evl_bin();
        c.env("XDG_STATE_HOME", self.root.path().join("state"));
        for (k, v) in &self.env {
            c.env(k, v);
        }
        run(c.arg("--ledger").arg(ledger).args(args))
    }

    /// Adds `n` small artifacts in one batch.
    fn add(&self, n: usize, tag: &str) {
        let dir = self.root.path().join("files").join(tag);
        std::fs::create_dir_all(&dir).unwrap();
        let mut args: Vec<String> = vec!["add".into()];
        for i in 0..n {
            let f = dir.join(format!("{tag}-{i}.txt"));
            std::fs::write(&f, format!("evidence {tag} {i}\n")).unwrap();
            args.push(f.display().to_string());
        }
        args.extend(
            ["--kind", "note", "--tier", "operational", "--key"]
                .iter()
                .map(|s| s.to_string()),
        );
        args.push(self.p("keys/owner.key"));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        self.evl(&a).ok();
    }

    fn publish(&self, to: &str) -> Value {
        self.evl(&[
            "publish",
            "--to",
            to,
            "--key",
            &self.p("keys/admin.key"),
            "--json",
        ])
        .ok()
        .json()
    }
}

fn verify_json(o: &Out) -> Value {
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {o:#?}"))
}

#[test]
fn a_log_published_to_a_directory_verifies_from_it_and_names_a_swapped_tile_or_blob() {
    let log = Log::new(vec![]);
    let drill = format!("{EX}/drill-envoy-policy-reversal-2026-04-15.toml");
    let out = log
        .evl(&[
            "add",
            &drill,
            "--kind",
            "rollback-drill",
            "--tier",
            "authoritative",
            "--key",
            &log.p("keys/owner.key"),
            "--json",
        ])
        .ok();
    let drill_id = out.json()[0]["id"].as_str().unwrap().to_string();
    let dir = log.p("published");
    let p = log.publish(&dir);
    assert_eq!(p["size"], 3);
    assert_eq!(p["previous"], 0);
    // The layout: checkpoint, tile/0/000.p/3, tile/entries/000.p/3 and the drill's bytes.
    let d = Path::new(&dir);
    assert!(d.join("checkpoint").is_file());
    let tile = std::fs::read(d.join("tile/0/000.p/3")).unwrap();
    assert_eq!(tile.len(), 3 * 32);
    let bundle = std::fs::read(d.join("tile/entries/000.p/3")).unwrap();
    // Each tile hash is SHA-256(0x00 || entry) of the bundle's entries (RFC 6962 leaves).
    let mut at = 0;
    for i in 0..3 {
        let len = u16::from_be_bytes([bundle[at], bundle[at + 1]]) as usize;
        let entry = &bundle[at + 2..at + 2 + len];
        at += 2 + len;
        use sha2::Digest;
        let leaf = sha2::Sha256::new()
            .chain_update([0u8])
            .chain_update(entry)
            .finalize();
        assert_eq!(&tile[i * 32..i * 32 + 32], leaf.as_slice(), "leaf {i}");
    }
    assert_eq!(at, bundle.len());
    let drill_bytes = std::fs::read(&drill).unwrap();
    let blob = d.join(format!("blob/{}", blake3::hash(&drill_bytes).to_hex()));
    assert_eq!(std::fs::read(&blob).unwrap(), drill_bytes);

    // Without a trust root a published log is not verified (no trust on first use).
    let o = log.evl_at(&dir, &["verify"]);
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(o.stderr.contains("no trust root"), "{o:#?}");
    // With the admin key the auditor holds: verified, and recorded.
    let o = log
        .evl_at(
            &dir,
            &["verify", "--admin-key", &log.p("keys/admin.pub"), "--json"],
        )
        .ok();
    assert_eq!(verify_json(&o)["verified"], true);
    // Reading verbs then work from the published layout, checked against that record.
    let o = log.evl_at(&dir, &["log"]).ok();
    assert_eq!(o.stdout.lines().count(), 3, "{o:#?}");
    let o = log.evl_at(&dir, &["cat", &drill_id]).ok();
    assert_eq!(o.stdout.as_bytes(), drill_bytes.as_slice());
    let o = log
        .evl_at(&dir, &["proof", "inclusion", &drill_id, "--json"])
        .ok();
    assert_eq!(o.json()["tree_size"], 3);
    // Appending to it is refused.
    let o = log.evl_at(
        &dir,
        &[
            "ack",
            "--topic",
            "t",
            "--statement",
            "s",
            "--key",
            &log.p("keys/owner.key"),
        ],
    );
    o.refused(2, &["published log"]);

    // A swapped tile: named.
    let tile_path = d.join("tile/0/000.p/3");
    let mut swapped = tile.clone();
    swapped[40] ^= 1;
    std::fs::write(&tile_path, &swapped).unwrap();
    let o = log.evl_at(&dir, &["verify", "--genesis", &log.genesis]);
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(o.stderr.contains("tile/0/000.p/3"), "{o:#?}");
    let o = log.evl_at(&dir, &["log"]);
    o.refused(1, &["tile/0/000.p/3"]);
    std::fs::write(&tile_path, &tile).unwrap();
    // An altered blob: named.
    std::fs::write(&blob, b"not the drill").unwrap();
    let o = log.evl_at(&dir, &["verify", "--genesis", &log.genesis]);
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(
        o.stderr
            .contains(&format!("blob/{}", blake3::hash(&drill_bytes).to_hex())),
        "{o:#?}"
    );
    std::fs::write(&blob, &drill_bytes).unwrap();
    // A swapped entry bundle (another entry's bytes): named.
    let mut b2 = bundle.clone();
    let last = b2.len() - 10;
    b2[last] ^= 1;
    std::fs::write(d.join("tile/entries/000.p/3"), &b2).unwrap();
    let o = log.evl_at(&dir, &["verify", "--genesis", &log.genesis]);
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(o.stderr.contains("tile/entries/000.p/3"), "{o:#?}");
    std::fs::write(d.join("tile/entries/000.p/3"), &bundle).unwrap();
    log.evl_at(&dir, &["verify", "--genesis", &log.genesis])
        .ok();
    // Another genesis than the one the auditor holds: refused.
    let o = log.evl_at(
        &dir,
        &["verify", "--genesis", &"ab".repeat(32), "--no-state"],
    );
    assert_eq!(o.code, 1, "{o:#?}");
}

#[test]
fn publish_to_s3_is_incremental_and_verifies_from_the_bucket_naming_tampering() {
    let s3 = S3Server::start();
    let log = Log::new(s3.env());
    let bucket = Bucket::new(&s3);
    let url = format!("s3://{}/logs/mesh", s3.bucket);
    log.add(3, "first");
    let p1 = log.publish(&url);
    assert_eq!(
        (p1["size"].as_u64(), p1["previous"].as_u64()),
        (Some(5), Some(0))
    );
    assert_eq!(p1["blobs"], 3);
    let first_checkpoint = bucket.get("logs/mesh/checkpoint");
    // Create-only: an object already at a tile's name is never overwritten (and a reader then
    // names it).
    bucket.put("logs/other/tile/0/000.p/5", b"squatter");
    let other_url = format!("s3://{}/logs/other", s3.bucket);
    log.publish(&other_url);
    assert_eq!(bucket.get("logs/other/tile/0/000.p/5"), b"squatter");
    assert_eq!(bucket.get("logs/other/checkpoint"), first_checkpoint);
    let o = log.evl_at(&other_url, &["verify", "--genesis", &log.genesis]);
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(o.stderr.contains("tile/0/000.p/5"), "{o:#?}");
    let v = verify_json(
        &log.evl_at(&url, &["verify", "--genesis", &log.genesis, "--json"])
            .ok(),
    );
    assert_eq!(v["report"]["size"], 5);

    // Incremental: across a full tile (256 entries), only what is new is written.
    log.add(300, "second");
    let objects_before = bucket.list("logs/mesh");
    let p2 = log.publish(&url);
    assert_eq!(
        (p2["size"].as_u64(), p2["previous"].as_u64()),
        (Some(305), Some(5))
    );
    assert_eq!(p2["blobs"], 300, "only the new entries' blobs");
    // New tiles: tile/0/000 (full), tile/0/001.p/49, tile/1/000.p/1, and their bundles.
    assert_eq!(p2["tiles"], 3);
    assert_eq!(p2["bundles"], 2);
    let objects = bucket.list("logs/mesh");
    for o in &objects_before {
        assert!(objects.contains(o), "{o} disappeared");
    }
    for o in [
        "logs/mesh/tile/0/000",
        "logs/mesh/tile/0/001.p/49",
        "logs/mesh/tile/1/000.p/1",
        "logs/mesh/tile/entries/000",
        "logs/mesh/tile/entries/001.p/49",
        "logs/mesh/tile/0/000.p/5",
    ] {
        assert!(objects.contains(&o.to_string()), "{o} missing: {objects:?}");
    }
    // Nothing new: nothing written.
    let p3 = log.publish(&url);
    assert_eq!(p3["created"], 0);
    assert_eq!(bucket.list("logs/mesh"), objects);
    // Another log cannot publish over it.
    let other = Log::new(s3.env());
    let o = other.evl(&["publish", "--to", &url, "--key", &other.p("keys/admin.key")]);
    o.refused(2, &["not a prefix"]);
    assert_eq!(bucket.list("logs/mesh"), objects);

    // The auditor verifies from the bucket, from the admin key it holds, and reads.
    let v = verify_json(
        &log.evl_at(
            &url,
            &["verify", "--admin-key", &log.p("keys/admin.pub"), "--json"],
        )
        .ok(),
    );
    assert_eq!(v["verified"], true);
    assert_eq!(v["report"]["size"], 305);
    let o = log.evl_at(&url, &["log", "--since", "300"]).ok();
    assert_eq!(o.stdout.lines().count(), 5, "{o:#?}");

    // A swapped tile.
    let key = "logs/mesh/tile/0/000";
    let good = bucket.get(key);
    let mut bad = good.clone();
    bad[100] ^= 1;
    bucket.put(key, &bad);
    let o = log.evl_at(&url, &["verify", "--genesis", &log.genesis]);
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(o.stderr.contains("tile/0/000:"), "{o:#?}");
    bucket.put(key, &good);
    // An altered blob.
    let blob_key = bucket.list("logs/mesh/blob").into_iter().next().unwrap();
    let good = bucket.get(&blob_key);
    bucket.put(&blob_key, b"altered");
    let o = log.evl_at(&url, &["verify", "--genesis", &log.genesis]);
    assert_eq!(o.code, 1, "{o:#?}");
    let name = blob_key.trim_start_matches("logs/mesh/");
    assert!(o.stderr.contains(name), "{name}: {o:#?}");
    bucket.put(&blob_key, &good);
    log.evl_at(&url, &["verify", "--genesis", &log.genesis])
        .ok();
    // A rolled-back checkpoint (the first one, validly signed): named by the auditor state.
    bucket.put("logs/mesh/checkpoint", &first_checkpoint);
    let o = log.evl_at(&url, &["verify", "--genesis", &log.genesis]);
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(o.stderr.contains("roll"), "{o:#?}");
    let o = log.evl_at(&url, &["log"]);
    o.refused(1, &["rolled back"]);
}

/// Every file under `dir`, by path relative to it.
fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    let mut out = Default::default();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn the_published_flagship_vector_is_what_publish_writes_and_checks_by_the_documented_layout() {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let tmp = tempfile::tempdir().unwrap();
    let ledger = tmp.path().join("ledger");
    common::copy_dir(&vectors.join("store-layout-2"), &ledger);
    let out = tmp.path().join("published");
    let o = run(evl_bin()
        .arg("--ledger")
        .arg(&ledger)
        .args(["publish", "--to"])
        .arg(&out))
    .ok();
    assert!(o.stdout.contains("published size 42"), "{o:#?}");
    let want = vectors.join("published-flagship");
    if std::env::var_os("EVL_WRITE_VECTORS").is_some() {
        let _ = std::fs::remove_dir_all(&want);
        common::copy_dir(&out, &want);
    }
    let got = files(&out);
    assert_eq!(
        got,
        files(&want),
        "publish no longer writes the vector byte for byte"
    );

    // The layout, checked with nothing but docs/PUBLISH.md: the checkpoint's size and root;
    // one partial level-0 tile and bundle of 42; leaf i = SHA-256(0x00 || entry i); the root
    // of the leaves = the checkpoint's; each blob named by its BLAKE3.
    let note = String::from_utf8(got["checkpoint"].clone()).unwrap();
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines[1], "42");
    use base64::Engine;
    let root = base64::engine::general_purpose::STANDARD
        .decode(lines[2])
        .unwrap();
    let tile = &got["tile/0/000.p/42"];
    let bundle = &got["tile/entries/000.p/42"];
    assert_eq!(tile.len(), 42 * 32);
    use sha2::Digest;
    let sha = |parts: &[&[u8]]| {
        let mut h = sha2::Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().to_vec()
    };
    let mut at = 0;
    let mut leaves = vec![];
    while at < bundle.len() {
        let len = u16::from_be_bytes([bundle[at], bundle[at + 1]]) as usize;
        leaves.push(sha(&[&[0], &bundle[at + 2..at + 2 + len]]));
        at += 2 + len;
    }
    assert_eq!(leaves.len(), 42);
    assert_eq!(leaves.concat(), *tile);
    // RFC 6962 MTH: split at the largest power of two below n.
    fn mth(l: &[Vec<u8>], sha: &dyn Fn(&[&[u8]]) -> Vec<u8>) -> Vec<u8> {
        if l.len() == 1 {
            return l[0].clone();
        }
        let k = l.len().next_power_of_two() / 2;
        sha(&[&[1], &mth(&l[..k], sha), &mth(&l[k..], sha)])
    }
    assert_eq!(mth(&leaves, &sha), root);
    let blobs: Vec<_> = got.keys().filter(|k| k.starts_with("blob/")).collect();
    assert!(!blobs.is_empty());
    for b in blobs {
        assert_eq!(&b[5..], blake3::hash(&got[b]).to_hex().as_str());
    }
    assert_eq!(
        got.keys().filter(|k| k.starts_with("tile/")).count(),
        2,
        "one hash tile, one bundle for 42 entries"
    );
}

/// S3 over HTTPS with a private CA (issue 15, items 3 and 4): without `EVL_CA_FILE` the server's
/// certificate is refused in one line and nothing is published; with it, publish, verify from
/// the bucket and read.
#[test]
fn publishing_to_s3_over_https_trusts_a_private_ca_only_through_evl_ca_file() {
    let pki = tempfile::tempdir().unwrap();
    common::parts::make_pki(pki.path());
    let s3 = S3Server::start_tls(pki.path());
    let https = s3.https_endpoint.clone().unwrap();
    let env: Vec<(&'static str, String)> = s3
        .env()
        .into_iter()
        .filter(|(k, _)| *k != "AWS_ALLOW_HTTP")
        .map(|(k, v)| {
            (
                k,
                if k == "AWS_ENDPOINT_URL" {
                    https.clone()
                } else {
                    v
                },
            )
        })
        .chain([("SSL_CERT_FILE", "/nonexistent".to_string())])
        .collect();
    let log = Log::new(env);
    log.add(3, "tls");
    let to = format!("s3://{}/tls", s3.bucket);

    // The CA is not trusted: refused, one line naming the certificate, nothing written.
    let o = log.evl(&["publish", "--to", &to, "--key", &log.p("keys/admin.key")]);
    assert_ne!(o.code, 0, "{o:#?}");
    assert_eq!(o.stderr.trim().lines().count(), 1, "{o:#?}");
    assert!(o.stderr.contains("certificate"), "{o:#?}");
    let bucket = Bucket::new(&s3);
    assert!(bucket.list("tls").is_empty(), "something was published");

    // Trusted through EVL_CA_FILE: published, verified from the bucket, read.
    let ca = pki.path().join("ca.pem").display().to_string();
    let with_ca = |args: &[&str]| {
        let mut c = evl_bin();
        c.env("XDG_STATE_HOME", log.root.path().join("state"))
            .env("EVL_CA_FILE", &ca);
        for (k, v) in &log.env {
            c.env(k, v);
        }
        run(c.args(args))
    };
    let p = with_ca(&[
        "--ledger",
        &log.p("ledger"),
        "publish",
        "--to",
        &to,
        "--key",
        &log.p("keys/admin.key"),
        "--json",
    ])
    .ok()
    .json();
    assert_eq!(p["size"], 5);
    assert!(!bucket.list("tls").is_empty());
    let o = with_ca(&[
        "--ledger",
        &to,
        "verify",
        "--genesis",
        &log.genesis,
        "--json",
    ])
    .ok();
    assert_eq!(verify_json(&o)["verified"], true, "{o:#?}");
    // Reading verbs check what they fetch against the tree that verification recorded.
    let o = with_ca(&["--ledger", &to, "log"]).ok();
    assert_eq!(o.stdout.lines().count(), 5, "{o:#?}");
}
