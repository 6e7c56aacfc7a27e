//! Witness cosigning (docs/WITNESS.md) against the real `evl witness serve` process: the
//! C2SP tlog-witness answers (200, 400, 403, 404, 409 with the size, 422) read off the wire,
//! rolled-back and forked logs refused before and after a kill -9 and restart,
//! `evl checkpoint --witness` / `--witness-policy` collecting cosignatures, and
//! `evl verify --witness-policy` refusing a checkpoint short of its quorum.
//!
//! Interoperability with an independent implementation (PyPI `aics-witness`) is in
//! tests/witness_interop.rs.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::parts::free_port;
use common::witness::*;
use serde_json::Value;

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
    let out = f
        .evl([
            "verify",
            "--no-state",
            "--witness-policy",
            policy2.to_str().unwrap(),
        ])
        .ok();
    assert!(
        out.stdout
            .contains("quorum 'both' met by 2 of 2 policy witnesses (w1.example/w, w2.example/w)"),
        "{out:#?}"
    );
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

const EX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mtls-cutover");

#[test]
fn verify_bundle_holds_the_bundles_checkpoint_to_the_policy() {
    let f = ledger();
    let add = |file: &str, kind: &str| -> String {
        let o = f
            .evl([
                "add",
                &format!("{EX}/{file}"),
                "--kind",
                kind,
                "--tier",
                "authoritative",
                "--key",
                f.key("owner").to_str().unwrap(),
            ])
            .ok();
        o.stdout.split_whitespace().nth(1).unwrap().to_string()
    };
    let gate = add("gate.toml", "gate-definition");
    let drill = add(
        "drill-envoy-policy-reversal-2026-04-15.toml",
        "rollback-drill",
    );
    let out = f
        .evl([
            "packet",
            "create",
            "--name",
            "Witnessed-Packet",
            "--revision",
            "1",
            "--gate",
            &gate,
            "--checkpoint-at",
            "2026-04-30",
            "--workload",
            "payments/payments-api",
            "--basis",
            &drill,
            "--key",
            f.key("owner").to_str().unwrap(),
        ])
        .ok();
    let packet = out.stdout.split_whitespace().nth(1).unwrap().to_string();
    let (_, vkey) = checkpoint(&f);
    let export = |name: &str| {
        let p = f.path(name);
        f.evl(["export", &packet, "-o", p.to_str().unwrap()]).ok();
        p
    };
    let plain = export("plain.evlb");

    let s1 = f.path("w1state");
    add_log(&s1, &vkey).ok();
    let w1 = Witness::start(&s1, "w1.example/w", &f.key("w1"));
    let w2 = Witness::start(&f.path("w2state"), "w2.example/w", &f.key("w2"));
    f.evl([
        "checkpoint",
        "--key",
        f.key("admin").to_str().unwrap(),
        "--witness",
        &w1.url,
    ])
    .ok();
    let cosigned = export("cosigned.evlb");

    let one = f.file(
        "one.policy",
        format!("witness w1.example/w {}\nquorum w1.example/w\n", w1.hex()).as_bytes(),
    );
    let two = f.file(
        "two.policy",
        format!(
            "witness w1.example/w {}\nwitness w2.example/w {}\ngroup g all w1.example/w w2.example/w\nquorum g\n",
            w1.hex(),
            w2.hex()
        )
        .as_bytes(),
    );
    let vb = |bundle: &std::path::Path, policy: &std::path::Path| {
        f.evl([
            "verify-bundle",
            bundle.to_str().unwrap(),
            "--admin-key",
            f.public("admin").to_str().unwrap(),
            "--no-state",
            "--witness-policy",
            policy.to_str().unwrap(),
        ])
    };
    let ok = vb(&cosigned, &one).ok();
    assert!(ok.stdout.contains("verified offline"), "{ok:#?}");
    vb(&cosigned, &two).refused(1, &["1 valid cosignature(s)", "2 needed"]);
    vb(&plain, &one).refused(1, &["0 valid cosignature(s)", "1 needed"]);

    // A tlog-proof carries the cosigned checkpoint: `proof verify` holds it to the policy too.
    let proof = f.path("drill.tlog-proof");
    f.evl([
        "proof",
        "inclusion",
        &drill,
        "--format",
        "tlog-proof",
        "-o",
        proof.to_str().unwrap(),
    ])
    .ok();
    let pv = |policy: &std::path::Path| {
        f.evl([
            "proof",
            "verify",
            proof.to_str().unwrap(),
            "--admin-key",
            f.public("admin").to_str().unwrap(),
            "--no-state",
            "--witness-policy",
            policy.to_str().unwrap(),
        ])
    };
    let ok = pv(&one).ok();
    assert!(ok.stdout.contains("quorum 'w1.example/w' met"), "{ok:#?}");
    pv(&two).refused(1, &["1 valid cosignature(s)", "2 needed"]);
}

/// tests/vectors/witness/: a cosigned checkpoint, the add-checkpoint request and answer that
/// produced one of its cosignatures, and two policies (one met, one not), all from published
/// demo keys and fixed times, so any implementation can reproduce them byte for byte
/// (docs/WITNESS.md §"Test vectors"). `EVL_WRITE_VECTORS=1` rewrites them.
#[test]
fn witness_vectors_reproduce_and_check() {
    use evl::keys::SecretKey;
    use evl::witness::{self, AddCheckpoint, policy::Policy};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/witness");
    let origin = "example.org/witness-vector";
    let log = SecretKey::demo_from_phrase("witness-vector-log");
    let w: Vec<SecretKey> = (1..=3)
        .map(|i| SecretKey::demo_from_phrase(&format!("witness-vector-w{i}")))
        .collect();
    let names = [
        "w1.example/vector",
        "w2.example/vector",
        "w3.example/vector",
    ];
    // The tree of leaves "leaf 0" .. "leaf 6"; the witness held size 4.
    let leaves: Vec<_> = (0..7)
        .map(|i| evl::merkle::leaf_hash(format!("leaf {i}").as_bytes()))
        .collect();
    let tree = evl::merkle::build(&leaves);
    let root = evl::merkle::root(7, &tree).unwrap();
    let note = evl::checkpoint::sign(origin, 7, root, &log);
    let request = AddCheckpoint {
        old_size: 4,
        proof: evl::merkle::prove_consistency(7, 4, &tree).unwrap(),
        note: note.clone(),
    }
    .to_bytes();
    let (body, _) = witness::split_note(&note).unwrap();
    let line1 = witness::cosign(names[0], &w[0], body, 1_700_000_000);
    let line2 = witness::cosign(names[1], &w[1], body, 1_700_000_001);
    let cosigned =
        witness::attach(&note, &[line1.clone().into_bytes(), line2.into_bytes()]).unwrap();
    let hexkey = |k: &SecretKey| hex::encode(k.public().bytes());
    let policy_met = format!(
        "# Two of two witnesses, for origin {origin}.\nlog {}\nwitness {} {}\nwitness {} {}\ngroup both all {} {}\nquorum both\n",
        hexkey(&log),
        names[0],
        hexkey(&w[0]),
        names[1],
        hexkey(&w[1]),
        names[0],
        names[1]
    );
    let policy_unmet = format!(
        "# Three of three: the vector note carries two.\nwitness {} {}\nwitness {} {}\nwitness {} {}\ngroup all3 3 {} {} {}\nquorum all3\n",
        names[0],
        hexkey(&w[0]),
        names[1],
        hexkey(&w[1]),
        names[2],
        hexkey(&w[2]),
        names[0],
        names[1],
        names[2]
    );
    let keys = serde_json::json!({
        "origin": origin,
        "log_vkey": evl::checkpoint::verifier_key(origin, &log.public()),
        "log_key_hex": hexkey(&log),
        "log_seed_phrase": "witness-vector-log",
        "witnesses": names.iter().zip(&w).enumerate().map(|(i, (n, k))| serde_json::json!({
            "name": n,
            "vkey": witness::vkey(n, &k.public()),
            "key_hex": hexkey(k),
            "seed_phrase": format!("witness-vector-w{}", i + 1),
        })).collect::<Vec<_>>(),
        "leaves": "leaf 0 .. leaf 6 (RFC 6962 leaf hashes of these ASCII strings)",
        "witness_held_size": 4,
        "policy-met.txt": {"quorum_met": true, "valid": 2, "needed": 2},
        "policy-unmet.txt": {"quorum_met": false, "valid": 2, "needed": 3},
    });
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("cosigned.note", cosigned.clone()),
        ("add-checkpoint.request", request),
        ("add-checkpoint.response", line1.into_bytes()),
        ("policy-met.txt", policy_met.into_bytes()),
        ("policy-unmet.txt", policy_unmet.into_bytes()),
        (
            "keys.json",
            (serde_json::to_string_pretty(&keys).unwrap() + "\n").into_bytes(),
        ),
    ];
    if std::env::var_os("EVL_WRITE_VECTORS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (n, b) in &files {
            std::fs::write(dir.join(n), b).unwrap();
        }
    }
    for (n, b) in &files {
        let on_disk = std::fs::read(dir.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
        assert_eq!(
            &on_disk, b,
            "tests/vectors/witness/{n} differs from what evl produces"
        );
    }
    let met = Policy::read(&dir.join("policy-met.txt")).unwrap();
    let c = met.verify(&cosigned, origin).unwrap();
    assert_eq!((c.valid.len(), c.needed), (2, 2));
    let unmet = Policy::read(&dir.join("policy-unmet.txt")).unwrap();
    let e = unmet.verify(&cosigned, origin).unwrap_err();
    assert!(
        e.contains("2 valid cosignature(s)") && e.contains("3 needed"),
        "{e}"
    );
    // The request parses back, and its proof leads from the size-4 root to the note's root.
    let req =
        AddCheckpoint::parse(&std::fs::read(dir.join("add-checkpoint.request")).unwrap()).unwrap();
    assert!(evl::merkle::check_consistency(
        &req.proof,
        7,
        root,
        4,
        evl::merkle::root(4, &tree).unwrap()
    ));
}

/// Concurrent requests from the same held size: the check of the old size and the write of the
/// new state are one step, so exactly one wins and the rest get 409 naming the winner's size.
#[test]
fn concurrent_requests_cannot_roll_the_state_back() {
    let f = ledger();
    let n1 = grow(&f, 1, "a");
    let (note1, vkey) = checkpoint(&f);
    let state = f.path("wstate");
    add_log(&state, &vkey).ok();
    let w = Witness::start(&state, "w1.example/w", &f.key("w1"));
    assert_eq!(post(&w.url, 0, &[], &note1).0, 200);
    let mut requests = Vec::new();
    for i in 0..6 {
        let n = grow(&f, 1, &format!("b{i}"));
        let (note, _) = checkpoint(&f);
        requests.push((n, note, proof(&f, n1, n)));
    }
    let url = w.url.clone();
    let answers: Vec<(u64, (u16, String, String))> = std::thread::scope(|s| {
        let handles: Vec<_> = requests
            .iter()
            .map(|(n, note, p)| {
                let url = url.clone();
                s.spawn(move || (*n, post(&url, n1, p, note)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<u64> = answers
        .iter()
        .filter(|(_, a)| a.0 == 200)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for (_, a) in answers.iter().filter(|(_, a)| a.0 != 200) {
        assert_eq!(
            (a.0, a.2.clone()),
            (409, format!("{}\n", winners[0])),
            "{answers:?}"
        );
    }
    let held = state_note(&state);
    assert_eq!(held.lines().nth(1).unwrap(), winners[0].to_string());
}
