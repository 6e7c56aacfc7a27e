//! The judged scenario of issue 15, end to end through the real binary: someone runs `evl
//! serve`; two signers with their own key directories, who never touch the ledger directory,
//! sign the flagship's five acknowledgments offline and submit them over HTTP (the rest of the
//! flagship's entries arrive the same way, from a pipeline); the log is published to a real S3
//! bucket (SeaweedFS `weed mini`); an auditor who holds only the origin, the genesis id and the
//! admin public key verifies it from the bucket and from the server, in its own XDG
//! directories, and replays the gate's recommendation; then a swapped tile, a swapped blob and
//! a rolled-back checkpoint (in the bucket; for the server, a second server on an older copy
//! of the ledger) are each named, with verify's documented exit code 1.

mod common;

use std::path::{Path, PathBuf};

use common::parts::S3Server;
use common::remote::{Bucket, serve};
use common::{Out, copy_dir, evl_bin, flagship, run};
use evl::entry::Payload;
use evl::store::{Ledger, OpenOptions};

const ORIGIN: &str = "example.org/platform-transport-security-gate";
/// `evl verify`: 1 names every failure (`evl verify --help`).
const VERIFY_FAILED: i32 = 1;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A demo key of the flagship made where it is used (examples/mtls-cutover: the same phrase
/// gives the same key), so a secret key never travels between the machines of the test.
fn keygen(dir: &Path, name: &str) {
    run(evl_bin()
        .args(["keygen", name, "--dir", p(dir), "--demo-seed"])
        .arg(format!("evl demo key: {name}")))
    .ok();
}

/// `evl ARGS` on a machine whose only directory is `home`: its own state and cache, and an
/// `EVL_LEDGER` that names nothing (so nothing falls back to a ledger directory).
fn on(home: &Path, env: &[(&'static str, String)], args: &[&str]) -> Out {
    let mut c = evl_bin();
    c.env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("EVL_LEDGER", home.join("no-ledger-here"))
        .current_dir(home);
    for (k, v) in env {
        c.env(k, v);
    }
    run(c.args(args))
}

#[test]
fn signers_submit_over_http_and_an_auditor_with_only_the_trust_roots_verifies_bucket_and_server() {
    let root = tempfile::tempdir().unwrap();
    let dir = |n: &str| -> PathBuf {
        let d = root.path().join(n);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let (host, laptop_a, laptop_b, pipeline, auditor) = (
        dir("host"),
        dir("laptop-a"),
        dir("laptop-b"),
        dir("pipeline"),
        dir("auditor"),
    );
    // The reference: the flagship as examples/mtls-cutover builds it on one machine.
    let reference = dir("reference");
    copy_dir(&flagship().join("ledger"), &reference.join("ledger"));
    let reference = Ledger::open(&reference.join("ledger"), &OpenOptions::default()).unwrap();
    let size = reference.size().unwrap();
    let genesis = reference.entry(0).unwrap().id().to_string();

    // The host: the admin key (the log key the server signs checkpoints with) and the ledger.
    keygen(&host, "mesh-admin");
    let ledger = host.join("ledger");
    let o = on(
        &host,
        &[],
        &[
            "--ledger",
            p(&ledger),
            "init",
            "--origin",
            ORIGIN,
            "--admin",
            p(&host.join("mesh-admin.pub")),
            "--key",
            p(&host.join("mesh-admin.key")),
            "--at",
            "2026-04-01T09:00:00Z",
        ],
    )
    .ok();
    assert!(o.stdout.ends_with(&format!("{genesis}\n")), "{o:#?}");
    let (server, url) = serve(&ledger, &host.join("mesh-admin.key"), &[]);
    // The auditor's whole knowledge: the origin, the genesis id and the admin public key.
    std::fs::copy(host.join("mesh-admin.pub"), auditor.join("admin.pub")).unwrap();

    // The signers: each makes their keys on their own laptop.
    let signers: [(&Path, &[&str]); 2] = [
        (&laptop_a, &["identity", "edge-routing", "payments"]),
        (&laptop_b, &["orders", "data-platform"]),
    ];
    for (laptop, namespaces) in signers {
        for ns in namespaces {
            keygen(laptop, &format!("ns-{ns}-owner"));
        }
    }
    let laptop_of = |ns: &str| {
        signers
            .iter()
            .find(|(_, nss)| nss.contains(&ns))
            .map(|(l, _)| *l)
            .unwrap_or_else(|| panic!("no signer for {ns}"))
    };

    // Every entry of the flagship arrives over HTTP in log order: the acknowledgments signed
    // on the laptops, the rest from the pipeline (pre-signed submission files).
    let mut acks = 0;
    let mut older: Option<(PathBuf, u64)> = None;
    let s3 = S3Server::start();
    let bucket = Bucket::new(&s3);
    let bucket_url = format!("s3://{}/mesh", s3.bucket);
    let mut old_checkpoint = Vec::new();
    let mut i = 1;
    while i < size {
        let e = reference.entry(i).unwrap();
        if let Payload::Acknowledgment(a) = &e.body.payload {
            let ns = a.namespace.as_deref().unwrap();
            let laptop = laptop_of(ns);
            let file = laptop.join(format!("ack-{ns}.evls"));
            let mut args = vec![
                "ack".to_string(),
                "--topic".into(),
                a.topic.clone(),
                "--namespace".into(),
                ns.into(),
                "--statement".into(),
                a.statement.clone(),
                "--at".into(),
                e.body.claimed_at.to_string(),
                "--key".into(),
                p(&laptop.join(format!("ns-{ns}-owner.key"))).into(),
                "--offline".into(),
                "--origin".into(),
                ORIGIN.into(),
                "--genesis".into(),
                genesis.clone(),
                "-o".into(),
                p(&file).into(),
            ];
            if let Some(s) = a.subject {
                args.extend(["--subject".into(), s.to_string()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = on(laptop, &[], &args).ok();
            assert!(
                o.stdout
                    .contains(&format!("signed acknowledgment {}", e.id())),
                "the laptop's acknowledgment is not the flagship's: {o:#?}"
            );
            let o = on(
                laptop,
                &[],
                &["--ledger", &url, "submit", p(&file), "--json"],
            )
            .ok();
            let v = o.json();
            assert_eq!(v[0]["index"], i, "{o:#?}");
            assert_eq!(v[0]["appended"], true, "{o:#?}");
            acks += 1;
            i += 1;
            continue;
        }
        // The pipeline: the run of entries up to the next acknowledgment, in one file.
        let mut batch = Vec::new();
        while i < size {
            let e = reference.entry(i).unwrap();
            if matches!(e.body.payload, Payload::Acknowledgment(_)) {
                break;
            }
            let blobs = evl::publish::carried(&e)
                .iter()
                .map(|d| reference.blob(d).unwrap().unwrap())
                .collect();
            batch.push((e, blobs));
            i += 1;
        }
        let file = pipeline.join(format!("upto-{i}.evls"));
        let sub = evl::submission::Submission::new(ORIGIN, genesis.parse().unwrap(), batch);
        std::fs::write(&file, sub.to_bytes().unwrap()).unwrap();
        on(&pipeline, &[], &["--ledger", &url, "submit", p(&file)]).ok();
        // After the first recommendation (packet v2's disposition): the log as published
        // then, and a copy of the ledger as it was, for the rollbacks below.
        if older.is_none() && i > 21 {
            let copy = root.path().join("older");
            copy_dir(&ledger, &copy.join("ledger"));
            let o = on(
                &host,
                &s3.env(),
                &[
                    "--ledger",
                    p(&ledger),
                    "--wait=60",
                    "publish",
                    "--to",
                    &bucket_url,
                    "--key",
                    p(&host.join("mesh-admin.key")),
                    "--json",
                ],
            )
            .ok();
            assert_eq!(o.json()["size"], i, "{o:#?}");
            old_checkpoint = bucket.get("mesh/checkpoint");
            older = Some((copy, i));
        }
    }
    assert_eq!(acks, 5);
    // Resubmitting is idempotent: the index, not an error, and nothing appended.
    let o = on(
        &laptop_b,
        &[],
        &[
            "--ledger",
            &url,
            "submit",
            p(&laptop_b.join("ack-orders.evls")),
            "--json",
        ],
    )
    .ok();
    assert_eq!(o.json()[0]["appended"], false, "{o:#?}");

    // The served log is the flagship's, entry for entry.
    let served = on(
        &auditor,
        &[],
        &[
            "--ledger",
            &url,
            "verify",
            "--genesis",
            &genesis,
            "--no-state",
            "--json",
        ],
    )
    .ok();
    assert_eq!(served.json()["report"]["size"], size);
    assert_eq!(
        served.json()["report"]["root"],
        on(
            &auditor,
            &[],
            &[
                "--ledger",
                p(&flagship().join("ledger")),
                "verify",
                "--genesis",
                &genesis,
                "--no-state",
                "--json"
            ]
        )
        .ok()
        .json()["report"]["root"]
    );

    // The host publishes the whole log to the bucket (incremental on the earlier publish).
    let o = on(
        &host,
        &s3.env(),
        &[
            "--ledger",
            p(&ledger),
            "--wait=60",
            "publish",
            "--to",
            &bucket_url,
            "--key",
            p(&host.join("mesh-admin.key")),
            "--json",
        ],
    )
    .ok();
    let (older, older_size) = older.unwrap();
    assert_eq!(
        (o.json()["size"].as_u64(), o.json()["previous"].as_u64()),
        (Some(size), Some(older_size))
    );

    // The auditor: from the bucket and from the server, with the genesis id and admin key.
    let aenv = s3.env();
    let admin_pub = auditor.join("admin.pub");
    for from in [&bucket_url, &url] {
        let o = on(
            &auditor,
            &aenv,
            &[
                "--ledger",
                from,
                "verify",
                "--genesis",
                &genesis,
                "--admin-key",
                p(&admin_pub),
            ],
        );
        assert_eq!(o.code, 0, "{from}: {o:#?}");
        assert!(
            o.stdout.contains(&format!("origin      {ORIGIN}")),
            "{o:#?}"
        );
        assert!(
            o.stdout.contains(&format!("verified: {size} entries")),
            "{o:#?}"
        );
    }
    // The gate's recommendation (packet v4 as of 2026-04-20, "narrow") replays from both.
    let recommendation = (0..size)
        .map(|i| reference.entry(i).unwrap())
        .find(|e| {
            matches!(&e.body.payload, Payload::Disposition(d)
                if d.verdict == "narrow" && d.as_of.to_string() == "2026-04-20T00:00:00Z")
        })
        .expect("the flagship's recommendation")
        .id()
        .to_string();
    for from in [&bucket_url, &url] {
        let o = on(
            &auditor,
            &aenv,
            &["--ledger", from, "replay", &recommendation],
        )
        .ok();
        assert!(o.stdout.contains("re-derives byte for byte"), "{o:#?}");
    }

    // Tampering in the bucket, each named with exit 1, and undone.
    let verify = |from: &str| {
        on(
            &auditor,
            &aenv,
            &[
                "--ledger",
                from,
                "verify",
                "--genesis",
                &genesis,
                "--admin-key",
                p(&admin_pub),
            ],
        )
    };
    let named = |o: &Out, what: &str| {
        assert_eq!(o.code, VERIFY_FAILED, "{what}: {o:#?}");
        assert!(
            o.stderr.contains(what) || o.stdout.contains(what),
            "{what} is not named: {o:#?}"
        );
    };
    let tile = format!("tile/0/000.p/{size}");
    let good = bucket.get(&format!("mesh/{tile}"));
    let mut bad = good.clone();
    bad[7 * 32 + 5] ^= 1;
    bucket.put(&format!("mesh/{tile}"), &bad);
    named(&verify(&bucket_url), &tile);
    bucket.put(&format!("mesh/{tile}"), &good);
    let doc = (0..size)
        .map(|i| reference.entry(i).unwrap())
        .find_map(|e| match e.body.payload {
            Payload::Disposition(d) if e.id().to_string() == recommendation => Some(d.document),
            _ => None,
        })
        .unwrap();
    let blob = format!("blob/{}", doc.to_hex());
    let good = bucket.get(&format!("mesh/{blob}"));
    let mut bad = good.clone();
    bad[10] ^= 1;
    bucket.put(&format!("mesh/{blob}"), &bad);
    named(&verify(&bucket_url), &blob);
    bucket.put(&format!("mesh/{blob}"), &good);
    assert_eq!(verify(&bucket_url).code, 0);
    // A rolled-back checkpoint: the one published earlier, validly signed, put back.
    let latest = bucket.get("mesh/checkpoint");
    bucket.put("mesh/checkpoint", &old_checkpoint);
    named(&verify(&bucket_url), "rolled back");
    let o = on(
        &auditor,
        &aenv,
        &["--ledger", &bucket_url, "replay", &recommendation],
    );
    assert_eq!(o.code, VERIFY_FAILED, "{o:#?}");
    assert!(o.stderr.contains("rolled back"), "{o:#?}");
    bucket.put("mesh/checkpoint", &latest);
    assert_eq!(verify(&bucket_url).code, 0);

    // The server rolled back: a second server on the older copy of the ledger.
    let (_second, second_url) = serve(&older.join("ledger"), &host.join("mesh-admin.key"), &[]);
    named(&verify(&second_url), "rolled back");
    let o = on(&auditor, &aenv, &["--ledger", &second_url, "log"]);
    assert_eq!(o.code, VERIFY_FAILED, "{o:#?}");
    assert!(o.stderr.contains("rolled back"), "{o:#?}");
    // The first server still verifies.
    assert_eq!(verify(&url).code, 0);
    drop(server);
}
