//! Remote ledgers in the CLI (issue 15, item 3), through the real binary: the flagship ledger
//! published to a real S3 server (SeaweedFS `weed mini`) and served by a real `evl serve`;
//! every reading verb over `--ledger s3://…` and `--ledger http://…` prints, byte for byte,
//! what it prints on the ledger directory, and exits the same. Then the local cache of
//! immutable objects (docs/PUBLISH.md §"The local cache"): a second read fetches only the
//! checkpoint and what is new, and a corrupted cache file is named and changes nothing.

mod common;

use std::path::{Path, PathBuf};

use common::parts::S3Server;
use common::remote::{Bucket, CountingProxy, serve};
use common::{Out, copy_dir, evl_bin, flagship, run};
use serde_json::Value;

/// One auditor: its own state and cache directories, and an environment for S3.
struct Auditor {
    home: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

impl Auditor {
    fn new(env: Vec<(&'static str, String)>) -> Auditor {
        Auditor {
            home: tempfile::tempdir().unwrap(),
            env,
        }
    }

    fn cache(&self) -> PathBuf {
        self.home.path().join("cache")
    }

    /// `evl --ledger LEDGER ARGS` as this auditor (XDG_STATE_HOME, XDG_CACHE_HOME its own).
    fn evl(&self, ledger: &str, args: &[&str]) -> Out {
        self.evl_env(ledger, args, &[])
    }

    fn evl_env(&self, ledger: &str, args: &[&str], extra: &[(&str, &str)]) -> Out {
        let mut c = evl_bin();
        c.env("XDG_STATE_HOME", self.home.path().join("state"))
            .env("XDG_CACHE_HOME", self.cache())
            .current_dir(self.home.path());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        run(c.arg("--ledger").arg(ledger).args(args))
    }
}

/// The entries of `evl log --json` on `ledger`.
fn log(a: &Auditor, ledger: &str) -> Vec<Value> {
    a.evl(ledger, &["log", "--json"])
        .ok()
        .ndjson()
        .as_array()
        .unwrap()
        .clone()
}

fn ids_of(entries: &[Value], kind: &str) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// A private copy of the flagship: `DIR/ledger`, `DIR/keys`.
fn flagship_copy() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_dir(flagship(), d.path());
    d
}

#[test]
fn every_reading_verb_prints_the_same_bytes_from_the_bucket_and_the_server_as_from_the_directory() {
    let fl = flagship_copy();
    let ledger = fl.path().join("ledger");
    let local = ledger.display().to_string();
    let s3 = S3Server::start();
    let a = Auditor::new(s3.env());
    let entries = log(&a, &local);
    let genesis = entries[0]["id"].as_str().unwrap().to_string();
    let bucket_url = format!("s3://{}/flagship", s3.bucket);
    // The writer publishes the tree of its stored checkpoint (size 42) and serves the ledger.
    let p = a
        .evl(&local, &["publish", "--to", &bucket_url, "--json"])
        .ok();
    assert_eq!(p.json()["size"], entries.len(), "{p:#?}");
    let admin_key = fl.path().join("keys/mesh-admin.key");
    let (_server, server_url) = serve(&ledger, &admin_key, &[]);

    // The auditor verifies both from the genesis id it holds; the state records the tree.
    for remote in [&bucket_url, &server_url] {
        let v = a
            .evl(remote, &["verify", "--genesis", &genesis, "--json"])
            .ok()
            .json();
        assert_eq!(v["verified"], true, "{remote}: {v}");
        assert_eq!(v["report"]["size"], entries.len(), "{remote}");
    }

    let packets = ids_of(&entries, "packet");
    let dispositions = ids_of(&entries, "disposition");
    let artifacts = ids_of(&entries, "artifact");
    let acks = ids_of(&entries, "acknowledgment");
    assert_eq!((packets.len(), dispositions.len()), (5, 6));
    let v4 = &packets[2];
    let v5 = &packets[3];
    let mut cases: Vec<Vec<String>> = vec![
        vec!["log".into()],
        vec!["log".into(), "--json".into()],
        vec!["log".into(), "--since".into(), "30".into()],
        vec!["verify".into(), "--genesis".into(), genesis.clone()],
        vec![
            "verify".into(),
            "--genesis".into(),
            genesis.clone(),
            "--no-state".into(),
            "--json".into(),
        ],
        vec![
            "proof".into(),
            "consistency".into(),
            "10".into(),
            "--json".into(),
        ],
        vec!["lineage".into(), v4.clone()],
        vec!["lineage".into(), v5.clone(), "--json".into()],
        vec![
            "deadlines".into(),
            v4.clone(),
            "--as-of".into(),
            "2026-04-20T00:00:00Z".into(),
        ],
        // A gate evaluation as of the recommendation, and one that is refused (no packet).
        vec![
            "evaluate".into(),
            v4.clone(),
            "--as-of".into(),
            "2026-04-20T00:00:00Z".into(),
        ],
        vec![
            "evaluate".into(),
            v4.clone(),
            "--as-of".into(),
            "2026-04-20T00:00:00Z".into(),
            "--json".into(),
        ],
        vec![
            "evaluate".into(),
            v5.clone(),
            "--as-of".into(),
            "2026-04-20T12:00:00Z".into(),
        ],
        vec![
            "evaluate".into(),
            artifacts[0].clone(),
            "--as-of".into(),
            "2026-04-20T00:00:00Z".into(),
        ],
        vec!["show".into(), "ffffffffffff".into()],
    ];
    for id in dispositions.iter() {
        cases.push(vec!["replay".into(), id.clone()]);
        cases.push(vec!["cat".into(), id.clone()]);
    }
    for id in artifacts.iter().chain(&acks).chain(&packets) {
        cases.push(vec!["show".into(), id.clone()]);
        cases.push(vec!["proof".into(), "inclusion".into(), id.clone()]);
    }
    for id in &artifacts {
        cases.push(vec!["cat".into(), id.clone()]);
    }
    cases.push(vec!["show".into(), v4.clone(), "--json".into()]);
    let mut compared = 0;
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let want = a.evl(&local, &args);
        assert!(
            want.code == 0 || args[0] == "evaluate" || args[0] == "show",
            "{args:?} on the directory: {want:#?}"
        );
        for remote in [&bucket_url, &server_url] {
            let got = a.evl(remote, &args);
            assert_eq!(
                (got.code, &got.stdout),
                (want.code, &want.stdout),
                "{args:?} over {remote}: {got:#?}\nlocal: {want:#?}"
            );
            compared += 1;
        }
    }
    assert!(compared > 100, "{compared}");
    // Every recorded disposition replays from both (the output says so, checked above too).
    for remote in [&bucket_url, &server_url] {
        for d in &dispositions {
            let o = a.evl(remote, &["replay", d]).ok();
            assert!(o.stdout.contains("re-derives byte for byte"), "{o:#?}");
        }
    }

    // export: the same bundle, byte for byte, which verifies offline from the trust roots.
    let bundle = |from: &str, name: &str| -> Vec<u8> {
        let out = a.home.path().join(name);
        a.evl(from, &["export", v4, "-o", out.to_str().unwrap()])
            .ok();
        std::fs::read(&out).unwrap()
    };
    let want = bundle(&local, "local.evlb");
    for (remote, name) in [(&bucket_url, "s3.evlb"), (&server_url, "http.evlb")] {
        let got = bundle(remote, name);
        assert!(
            got == want,
            "export over {remote} differs from the directory's"
        );
        let file = a.home.path().join(name);
        let o = a.evl(
            &local,
            &[
                "verify-bundle",
                file.to_str().unwrap(),
                "--genesis",
                &genesis,
                "--no-state",
            ],
        );
        assert_eq!(o.code, 0, "{o:#?}");
        assert!(o.stdout.contains("disposition(s) replayed"), "{o:#?}");
        let admin_pub = fl.path().join("keys/mesh-admin.pub");
        let o = a.evl(
            &local,
            &[
                "verify-bundle",
                file.to_str().unwrap(),
                "--admin-key",
                admin_pub.to_str().unwrap(),
                "--no-state",
            ],
        );
        assert_eq!(o.code, 0, "{o:#?}");
    }
    // A bundle from a log with no trust root the auditor holds is not verified.
    let o = a.evl(
        &local,
        &[
            "verify-bundle",
            a.home.path().join("s3.evlb").to_str().unwrap(),
            "--genesis",
            &"ab".repeat(32),
            "--no-state",
        ],
    );
    assert_eq!(o.code, 1, "{o:#?}");
}

/// The flagship with 300 more small artifacts (so full tiles exist), checkpointed.
fn grown_flagship(a: &Auditor, extra: usize, tag: &str, dir: &Path) {
    let ledger = dir.join("ledger").display().to_string();
    let files = dir.join("files").join(tag);
    std::fs::create_dir_all(&files).unwrap();
    let mut args: Vec<String> = vec!["add".into()];
    for i in 0..extra {
        let f = files.join(format!("{tag}-{i}.txt"));
        std::fs::write(&f, format!("telemetry note {tag} {i}\n")).unwrap();
        args.push(f.display().to_string());
    }
    let hana = dir.join("keys/hana-okafor.key").display().to_string();
    args.extend(["--kind", "note", "--tier", "operational", "--key", &hana].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    a.evl(&ledger, &args).ok();
    let admin = dir.join("keys/mesh-admin.key").display().to_string();
    a.evl(&ledger, &["checkpoint", "--key", &admin]).ok();
}

#[test]
fn a_second_read_fetches_only_the_checkpoint_and_new_objects_and_a_bad_cache_changes_nothing() {
    let fl = flagship_copy();
    let ledger = fl.path().join("ledger");
    let local = ledger.display().to_string();
    let s3 = S3Server::start();
    let writer = Auditor::new(s3.env());
    grown_flagship(&writer, 300, "first", fl.path());
    let bucket_url = format!("s3://{}/cached", s3.bucket);
    writer.evl(&local, &["publish", "--to", &bucket_url]).ok();
    let bucket = Bucket::new(&s3);
    let objects = bucket.list("cached");
    let blob_count = objects.iter().filter(|o| o.contains("/blob/")).count();
    assert!(blob_count > 300, "{blob_count}");

    // The auditor reads through a proxy that records every request.
    let proxy = CountingProxy::start(&s3.endpoint);
    let mut env = s3.env();
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL", proxy.url.clone()));
    let a = Auditor::new(env);
    let strip = format!("/{}/cached/", s3.bucket);
    let genesis = log(&writer, &local)[0]["id"].as_str().unwrap().to_string();
    let want_log = writer.evl(&local, &["log"]).ok().stdout;
    let _uncached_verify = a
        .evl(
            &bucket_url,
            &[
                "--no-cache",
                "verify",
                "--genesis",
                &genesis,
                "--no-state",
                "--json",
            ],
        )
        .ok()
        .stdout;
    assert!(!a.cache().exists(), "--no-cache wrote the cache");
    proxy.take();

    // First read: everything is fetched (and what verified is kept in the cache).
    a.evl(&bucket_url, &["verify", "--genesis", &genesis]).ok();
    let first = proxy.gets(&strip);
    for o in [
        "checkpoint",
        "tile/0/000",
        "tile/entries/000",
        "tile/1/000.p/1",
    ] {
        assert!(first.contains(&o.to_string()), "{o} not fetched: {first:?}");
    }
    assert_eq!(
        first.iter().filter(|p| p.starts_with("blob/")).count(),
        blob_count,
        "{first:?}"
    );
    let size = 342u64;
    let part = size % 256;
    let partial = |part: u64| -> Vec<String> {
        let mut v = vec![
            "checkpoint".to_string(),
            format!("tile/0/001.p/{part}"),
            "tile/1/000.p/1".to_string(),
            format!("tile/entries/001.p/{part}"),
        ];
        v.sort();
        v
    };
    for o in ["tile/0/000", "tile/entries/000"] {
        assert!(a.cache().join("evl").exists());
        let cached = std::fs::read_dir(a.cache().join("evl"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
            .join(o);
        assert_eq!(
            std::fs::read(&cached).unwrap(),
            bucket.get(&format!("cached/{o}")),
            "{o}"
        );
    }

    // `verify` audits what is published: with a warm cache it still fetches every object.
    a.evl(&bucket_url, &["verify", "--genesis", &genesis]).ok();
    assert_eq!(proxy.gets(&strip), first, "verify fetches everything");

    // Second read: the checkpoint and the partial tiles and bundle only.
    let o = a.evl(&bucket_url, &["log"]).ok();
    assert_eq!(o.stdout, want_log);
    assert_eq!(proxy.gets(&strip), partial(part), "second read");

    // The log grows by 5: the checkpoint, the new partial objects and the 5 new blobs.
    grown_flagship(&writer, 5, "second", fl.path());
    writer.evl(&local, &["publish", "--to", &bucket_url]).ok();
    let uncached = a.evl(&bucket_url, &["--no-cache", "log", "--json"]).ok();
    assert_eq!(uncached.ndjson().as_array().unwrap().len() as u64, size + 5);
    proxy.take();
    let o = a.evl(&bucket_url, &["log", "--json"]).ok();
    assert_eq!(o.stdout, uncached.stdout);
    let got = proxy.gets(&strip);
    let blobs: Vec<&String> = got.iter().filter(|p| p.starts_with("blob/")).collect();
    assert_eq!(blobs.len(), 5, "{got:?}");
    let rest: Vec<String> = got
        .iter()
        .filter(|p| !p.starts_with("blob/"))
        .cloned()
        .collect();
    assert_eq!(rest, partial(part + 5), "after the log grew");

    // A corrupted cache: a full bundle, a full tile and a blob altered in place, and one
    // truncated. Each is named, dropped and fetched again; the output is what it was.
    let want_log = writer.evl(&local, &["log"]).ok().stdout;
    let base = std::fs::read_dir(a.cache().join("evl"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let blob = first
        .iter()
        .find(|p| p.starts_with("blob/"))
        .unwrap()
        .clone();
    let blob2 = first
        .iter()
        .filter(|p| p.starts_with("blob/"))
        .nth(1)
        .unwrap()
        .clone();
    for (o, at) in [
        ("tile/entries/000", 300),
        ("tile/0/000", 100),
        (blob.as_str(), 3),
    ] {
        let p = base.join(o);
        let mut b = std::fs::read(&p).unwrap();
        b[at] ^= 1;
        std::fs::write(&p, b).unwrap();
    }
    std::fs::write(base.join(&blob2), b"").unwrap();
    let o = a.evl(&bucket_url, &["log"]).ok();
    assert_eq!(o.stdout, want_log, "a corrupted cache changed the output");
    for name in ["tile/entries/000", "tile/0/000", &blob, &blob2] {
        assert!(
            o.stderr
                .contains(&format!("{}: ", base.join(name).display())),
            "{name} not named: {o:#?}"
        );
    }
    let got = proxy.gets(&strip);
    for name in ["tile/entries/000", "tile/0/000", &blob, &blob2] {
        assert!(
            got.contains(&name.to_string()),
            "{name} not fetched again: {got:?}"
        );
        assert_eq!(
            std::fs::read(base.join(name)).unwrap(),
            bucket.get(&format!("cached/{name}")),
            "{name} is cached again as published"
        );
    }
    // Now clean again: nothing named, nothing but the partial objects fetched.
    let o = a.evl(&bucket_url, &["log"]).ok();
    assert_eq!(o.stdout, want_log);
    assert!(!o.stderr.contains("cache"), "{o:#?}");
    assert_eq!(proxy.gets(&strip), partial(part + 5));

    // A cache entry from a different log under the same name is not believed either: a
    // bundle of 256 well-formed entries that are not the published ones.
    let mut other = bucket.get("cached/tile/entries/000");
    let last = other.len() - 1;
    other[last] ^= 1;
    std::fs::write(base.join("tile/entries/000"), &other).unwrap();
    let o = a.evl(&bucket_url, &["log"]).ok();
    assert_eq!(o.stdout, want_log);
    assert!(o.stderr.contains("tile/entries/000: "), "{o:#?}");

    // --no-cache (and EVL_NO_CACHE=1): every object is fetched again, the cache untouched.
    proxy.take();
    // (`--no-cache` is an option of evl itself, before the verb.)
    let o = a.evl(&bucket_url, &["--no-cache", "log"]);
    assert_eq!(o.code, 0, "{o:#?}");
    assert_eq!(o.stdout, want_log);
    let got = proxy.gets(&strip);
    assert!(got.contains(&"tile/entries/000".to_string()), "{got:?}");
    let o = a
        .evl_env(&bucket_url, &["log"], &[("EVL_NO_CACHE", "1")])
        .ok();
    assert_eq!(o.stdout, want_log);
    let got = proxy.gets(&strip);
    assert!(got.contains(&"tile/0/000".to_string()), "{got:?}");
    assert!(got.iter().filter(|p| p.starts_with("blob/")).count() > 300);
}
