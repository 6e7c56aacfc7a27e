//! `evl log` filters and `evl show` back-references, through the real binary on real ledgers:
//! the auditor's question of issue 17 on the flagship ledger, each filter alone and combined,
//! and memory that stays flat in the ledger's size.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;

use common::{evl_std, run};
use evl::entry::{Annotation, AnnotationKind, KeyGrant, Payload, Scope};
use evl::keys::{Role, SecretKey};
use evl::store::{Draft, Ledger};
use evl::timestamp::Timestamp;
use serde_json::Value;

/// Runs evl on `ledger`, with the auditor state beside it.
fn evl(ledger: &Path, args: &[&str]) -> common::Out {
    run(common::evl_bin()
        .env("XDG_STATE_HOME", ledger.with_extension("state"))
        .arg("--ledger")
        .arg(ledger)
        .args(args))
}

/// `evl log --json ARGS` as its NDJSON lines, each checked to carry the schema.
fn log(ledger: &Path, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["log", "--json"];
    a.extend_from_slice(args);
    let out = evl(ledger, &a).ok();
    out.stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert_eq!(v["schema"], "evl.log/v1", "{l}");
            v
        })
        .collect()
}

fn indexes(lines: &[Value]) -> Vec<u64> {
    lines.iter().map(|v| v["index"].as_u64().unwrap()).collect()
}

/// The flagship ledger (examples/mtls-cutover) copied, with "bob" registered as a reviewer
/// and security signer who then signs, around Tuesday 2026-04-14, remarks about payments and
/// about other namespaces; one other reviewer signs about payments too. Returns the copy and
/// the indexes of the entries the auditor's question must find.
struct Bob {
    _dir: tempfile::TempDir,
    ledger: std::path::PathBuf,
    expected: Vec<u64>,
}

fn bob() -> Bob {
    let dir = tempfile::tempdir().unwrap();
    let flagship = common::flagship();
    common::copy_dir(flagship, dir.path());
    let ledger = dir.path().join("ledger");
    let keys = dir.path().join("keys");
    let key = |n: &str| keys.join(format!("{n}.key")).display().to_string();
    run(common::evl_bin()
        .args(["keygen", "bob", "--dir"])
        .arg(&keys))
    .ok();
    let bob_pub = keys.join("bob.pub").display().to_string();
    evl(
        &ledger,
        &[
            "key",
            "add",
            "bob",
            "--pub",
            &bob_pub,
            "--role",
            "reviewer",
            "--role",
            "security-signer",
            "--key",
            &key("mesh-admin"),
            "--at",
            "2026-04-13T09:00:00Z",
        ],
    )
    .ok();
    let all = log(&ledger, &[]);
    // An artifact about payments only through its parsed facts or scope, and one about
    // another namespace only.
    let about = |ns: &str| {
        let out = evl(
            &ledger,
            &["log", "--json", "--kind", "artifact", "--namespace", ns],
        )
        .ok();
        out.stdout.lines().count()
    };
    assert!(about("payments") > 0, "the flagship has payments evidence");
    let payments_drill = all
        .iter()
        .find(|e| {
            e["kind"] == "artifact"
                && e["body"]["payload"]["artifact"]["file_name"]
                    .as_str()
                    .unwrap()
                    .contains("legacy-grpc-settlement-adapter-2026-04-05")
        })
        .expect("the settlement adapter drill")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let baseline = all
        .iter()
        .find(|e| {
            e["kind"] == "artifact"
                && e["body"]["payload"]["artifact"]["file_name"]
                    .as_str()
                    .unwrap()
                    .starts_with("east-west-authorization-baseline")
        })
        .expect("the east-west baseline")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut expected = Vec::new();
    let mut sign = |args: &[&str], signer: &str, wanted: bool| {
        let mut a: Vec<&str> = args.to_vec();
        let k = key(signer);
        a.extend(["--key", &k]);
        evl(&ledger, &a).ok();
        let last = log(&ledger, &["--reverse", "--limit", "1"]);
        if wanted {
            expected.push(last[0]["index"].as_u64().unwrap());
        }
    };
    // Monday: bob, about payments — before Tuesday.
    sign(
        &[
            "annotate",
            &payments_drill,
            "--kind",
            "note",
            "--text",
            "monday look",
            "--at",
            "2026-04-13T10:00:00Z",
        ],
        "bob",
        false,
    );
    // Tuesday: bob, a concern on the payments drill (about payments through its subject).
    sign(
        &[
            "annotate",
            &payments_drill,
            "--kind",
            "concern",
            "--text",
            "adapter still on plaintext",
            "--at",
            "2026-04-14T08:00:00Z",
        ],
        "bob",
        true,
    );
    // Wednesday: bob acknowledges the east-west policy for the payments namespace.
    sign(
        &[
            "ack",
            "--topic",
            "east-west-authorization-policy",
            "--subject",
            &baseline,
            "--namespace",
            "payments",
            "--statement",
            "payments acknowledges east-west",
            "--at",
            "2026-04-15T08:00:00Z",
        ],
        "bob",
        true,
    );
    // Wednesday: bob, about data-platform only.
    sign(
        &[
            "ack",
            "--topic",
            "east-west-authorization-policy",
            "--subject",
            &baseline,
            "--namespace",
            "data-platform",
            "--statement",
            "data-platform acknowledges",
            "--at",
            "2026-04-15T09:00:00Z",
        ],
        "bob",
        false,
    );
    // Thursday: bob, a note scoped to a payments workload on an unrelated subject.
    sign(
        &[
            "annotate",
            &baseline,
            "--kind",
            "note",
            "--workload",
            "payments/payments-ledger-sync",
            "--text",
            "ledger-sync follows the baseline",
            "--at",
            "2026-04-16T08:00:00Z",
        ],
        "bob",
        true,
    );
    // Thursday: another reviewer, about payments.
    sign(
        &[
            "annotate",
            &payments_drill,
            "--kind",
            "note",
            "--text",
            "seen",
            "--at",
            "2026-04-16T09:00:00Z",
        ],
        "reviewer-platform-security",
        false,
    );
    Bob {
        _dir: dir,
        ledger,
        expected,
    }
}

#[test]
fn everything_bob_signed_since_tuesday_about_namespace_payments_is_one_command() {
    let b = bob();
    // The auditor's question, as one command.
    let found = log(
        &b.ledger,
        &[
            "--signer",
            "bob",
            "--since",
            "2026-04-14",
            "--namespace",
            "payments",
        ],
    );
    assert_eq!(indexes(&found), b.expected, "{found:#?}");
    assert_eq!(b.expected.len(), 3);
    for e in &found {
        assert_eq!(e["signer_name"], "bob");
    }
    // The same in text: one line per entry, each naming bob.
    let text = evl(
        &b.ledger,
        &[
            "log",
            "--signer",
            "bob",
            "--since",
            "2026-04-14",
            "--namespace",
            "payments",
        ],
    )
    .ok();
    assert_eq!(text.stdout.lines().count(), 3, "{text:#?}");
    assert!(
        text.stdout.lines().all(|l| l.contains(" bob ")),
        "{text:#?}"
    );
    // Each filter alone finds more: the conjunction is what answers the question.
    let bobs = indexes(&log(&b.ledger, &["--signer", "bob"]));
    assert_eq!(
        bobs.len(),
        5,
        "bob signed five (his key-add is the admin's)"
    );
    let since = indexes(&log(&b.ledger, &["--since", "2026-04-14"]));
    let payments = indexes(&log(&b.ledger, &["--namespace", "payments"]));
    let both: Vec<u64> = bobs
        .iter()
        .filter(|i| since.contains(i) && payments.contains(i))
        .copied()
        .collect();
    assert_eq!(both, b.expected);
    // bob's key id works as well as his name.
    let id = found[0]["signer"].as_str().unwrap().to_string();
    assert_eq!(
        indexes(&log(
            &b.ledger,
            &[
                "--signer",
                &id[..10],
                "--since",
                "2026-04-14",
                "--namespace",
                "payments"
            ]
        )),
        b.expected
    );
}

#[test]
fn since_until_limit_and_reverse_combine() {
    let b = bob();
    let all = indexes(&log(&b.ledger, &[]));
    let n = all.len() as u64;
    assert_eq!(all, (0..n).collect::<Vec<_>>());
    // Indexes: since inclusive, until exclusive.
    assert_eq!(
        indexes(&log(&b.ledger, &["--since", "3", "--until", "6"])),
        [3, 4, 5]
    );
    assert_eq!(
        indexes(&log(
            &b.ledger,
            &["--since", "3", "--until", "6", "--reverse"]
        )),
        [5, 4, 3]
    );
    assert_eq!(
        indexes(&log(&b.ledger, &["--reverse", "--limit", "2"])),
        [n - 1, n - 2]
    );
    assert_eq!(indexes(&log(&b.ledger, &["--limit", "2"])), [0, 1]);
    assert!(log(&b.ledger, &["--limit", "0"]).is_empty());
    // Times: claimed at or after --since, before --until.
    let day = log(
        &b.ledger,
        &["--since", "2026-04-15", "--until", "2026-04-16"],
    );
    assert!(!day.is_empty());
    for e in &day {
        let t = e["body"]["claimed_at"].as_str().unwrap();
        assert!(t.starts_with("2026-04-15"), "{t}");
    }
    let every_day = log(&b.ledger, &[])
        .into_iter()
        .filter(|e| {
            e["body"]["claimed_at"]
                .as_str()
                .unwrap()
                .starts_with("2026-04-15")
        })
        .count();
    assert_eq!(day.len(), every_day);
    // RFC 3339 with an offset is the same instant.
    assert_eq!(
        indexes(&log(
            &b.ledger,
            &[
                "--since",
                "2026-04-15T02:00:00+02:00",
                "--until",
                "2026-04-16"
            ]
        )),
        indexes(&day)
    );
    // Kind + signer + reverse + limit: bob's newest annotation.
    let newest = log(
        &b.ledger,
        &[
            "--kind",
            "annotation",
            "--signer",
            "bob",
            "--reverse",
            "--limit",
            "1",
        ],
    );
    assert_eq!(newest.len(), 1);
    assert_eq!(
        newest[0]["body"]["payload"]["annotation"]["text"],
        "ledger-sync follows the baseline"
    );
}

#[test]
fn bad_filters_are_one_line_with_exit_2() {
    let b = bob();
    for (args, needle) in [
        (vec!["log", "--since", "tuesday"], "neither a log index"),
        (vec!["log", "--until", "2026-13-01"], "neither a log index"),
        (vec!["log", "--signer", "mallory"], "no key of that name"),
        (vec!["log", "--subject", "ffffffffffff"], "ffffffffffff"),
        (vec!["log", "--subject", "zz"], "not a digest"),
        (vec!["log", "--limit", "-1"], "-1"),
        (vec!["log", "--kind", "bogus"], "unknown entry kind"),
    ] {
        evl(&b.ledger, &args).refused(2, &[needle]);
    }
}

#[test]
fn subject_lists_the_entry_and_what_refers_to_it_and_show_lists_back_references() {
    let f = common::flagship();
    let ledger = f.join("ledger");
    let all = log(&ledger, &[]);
    let kind = |e: &Value| e["kind"].as_str().unwrap().to_string();
    let payload = |e: &Value| {
        e["body"]["payload"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .clone()
    };
    // Pick an artifact some packet pins and some annotation names.
    let packets: Vec<&Value> = all.iter().filter(|e| kind(e) == "packet").collect();
    let annotated: BTreeSet<String> = all
        .iter()
        .filter(|e| kind(e) == "annotation" || kind(e) == "acknowledgment")
        .filter_map(|e| payload(e)["subject"].as_str().map(str::to_string))
        .collect();
    let artifact = all
        .iter()
        .find(|e| {
            kind(e) == "artifact"
                && annotated.contains(e["id"].as_str().unwrap())
                && packets.iter().any(|p| {
                    payload(p)["basis"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|b| b == &e["id"])
                })
        })
        .expect("an acknowledged artifact in a packet's basis");
    let id = artifact["id"].as_str().unwrap();
    let content = payload(artifact)["content"].as_str().unwrap().to_string();
    // What refers to it, computed here from the whole log independently.
    let pinning: BTreeSet<String> = packets
        .iter()
        .filter(|p| {
            let pl = payload(p);
            pl["gate"] == id
                || pl["basis"].as_array().unwrap().iter().any(|b| b == id)
                || pl["parent"] == id
        })
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    let mut want: Vec<u64> = all
        .iter()
        .filter(|e| {
            let pl = payload(e);
            let names = |k: &str| pl[k] == id || pl[k].as_str() == Some(&content);
            match kind(e).as_str() {
                "annotation" | "acknowledgment" => names("subject"),
                "artifact" => pl["supersedes"] == id,
                "promotion" => pl["artifact"] == id,
                "packet" => pinning.contains(e["id"].as_str().unwrap()),
                "disposition" => pinning.contains(pl["packet"].as_str().unwrap()),
                _ => false,
            }
        })
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert!(
        want.iter()
            .any(|i| kind(&all[*i as usize]) == "disposition"),
        "a disposition used it"
    );
    assert!(
        want.iter()
            .any(|i| kind(&all[*i as usize]) == "acknowledgment")
    );
    assert!(want.iter().any(|i| kind(&all[*i as usize]) == "packet"));
    let shown = evl(&ledger, &["show", &id[..12], "--json"]).ok().json();
    assert_eq!(shown["schema"], "evl.show/v1");
    // The indexes `show --json` lists as referring to its entry, in its order.
    let ref_indexes = |shown: &Value| -> Vec<u64> {
        shown["referenced_by"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["index"].as_u64().unwrap())
            .collect()
    };
    let refs = ref_indexes(&shown);
    assert_eq!(refs, want, "{shown:#}");
    for r in shown["referenced_by"].as_array().unwrap() {
        let rel = r["relation"].as_str().unwrap();
        let k = r["kind"].as_str().unwrap();
        assert!(
            rel.starts_with(&k[..4]) || (k == "packet" && rel.starts_with("packet")),
            "{r}"
        );
    }
    // The content digest names the same thing.
    let by_content = evl(&ledger, &["show", &content, "--json"]).ok().json();
    assert_eq!(by_content["referenced_by"], shown["referenced_by"]);
    // Text lists them too.
    let text = evl(&ledger, &["show", &id[..12]]).ok().stdout;
    assert!(
        text.contains(&format!("referenced by  {} entries", want.len())),
        "{text}"
    );
    // log --subject: the entry itself and the same references, in log order.
    want.push(artifact["index"].as_u64().unwrap());
    want.sort();
    assert_eq!(indexes(&log(&ledger, &["--subject", &id[..12]])), want);
    assert_eq!(indexes(&log(&ledger, &["--subject", &content])), want);
    // Entries named by their id alone (packets): show scans only from the entry itself, and
    // finds what `log --subject` finds scanning the whole log.
    for p in &packets {
        let pid = p["id"].as_str().unwrap();
        let at = p["index"].as_u64().unwrap();
        let shown = evl(&ledger, &["show", pid, "--json"]).ok().json();
        let refs = ref_indexes(&shown);
        let mut scanned = indexes(&log(&ledger, &["--subject", pid]));
        scanned.retain(|i| *i != at);
        assert!(!refs.is_empty(), "packet {pid} is referred to: {shown:#}");
        assert_eq!(refs, scanned, "packet {pid}");
    }
}

/// Peak resident memory (KiB) of one `evl` run on `ledger`, its output discarded, measured
/// by a small child process (this test binary again, running only
/// [`measure_peak_rss_in_a_child`]): Linux carries a process's peak memory across exec into
/// the programs it spawns, so evl spawned straight from this process, which other tests
/// share, would report at least this process's peak.
fn peak_rss_kib(ledger: &Path, args: &[&str]) -> i64 {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "measure_peak_rss_in_a_child",
            "--ignored",
            "--nocapture",
            "--quiet",
        ])
        .env("EVL_TEST_LEDGER", ledger)
        .env("EVL_TEST_ARGS", serde_json::to_string(args).unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("PEAK_RSS_KIB="))
        .unwrap_or_else(|| panic!("the measuring child printed no peak: {text}"))
        .parse()
        .unwrap()
}

#[test]
#[ignore = "a helper the memory test runs in a child process"]
fn measure_peak_rss_in_a_child() {
    let (Some(ledger), Ok(args)) = (
        std::env::var_os("EVL_TEST_LEDGER"),
        std::env::var("EVL_TEST_ARGS"),
    ) else {
        return;
    };
    let args: Vec<String> = serde_json::from_str(&args).unwrap();
    let child = evl_std()
        .arg("--ledger")
        .arg(&ledger)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("evl runs");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4 reports this one child's own peak.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "evl {args:?} failed: {status}"
    );
    std::mem::forget(child);
    println!("PEAK_RSS_KIB={}", usage.ru_maxrss);
}

/// A ledger of `n` entries: annotations of about 600 bytes each, in batches, signed by one
/// key that is admin and reviewer; every tenth one scoped to namespace payments.
fn big_ledger(path: &Path, n: u64) {
    let key = SecretKey::demo_from_phrase("evl log memory admin");
    let grant = KeyGrant {
        name: "admin".into(),
        public_key: key.public(),
        roles: vec![Role::Admin, Role::Reviewer],
    };
    let ledger = Ledger::init(
        path,
        "example.org/memory",
        vec![grant],
        &key,
        Timestamp(1_776_470_400),
    )
    .unwrap();
    let genesis = ledger.genesis_id().unwrap();
    let mut i = 1u64;
    while i < n {
        let batch: Vec<Draft> = (i..(i + 1000).min(n))
            .map(|k| Draft {
                payload: Payload::Annotation(Annotation {
                    subject: genesis,
                    kind: AnnotationKind::Note,
                    scope: Scope {
                        namespaces: if k % 10 == 0 {
                            vec!["payments".into()]
                        } else {
                            vec![]
                        },
                        workloads: vec![],
                    },
                    text: format!("note {k} {}", "x".repeat(560)),
                }),
                claimed_at: Timestamp(1_776_470_400 + k as i64),
                blobs: vec![],
            })
            .collect();
        i += batch.len() as u64;
        ledger.append_batch(batch, &key, None).unwrap();
    }
}

/// Builds the ledger of [`big_ledger`] at `$EVL_TEST_LEDGER` with `$EVL_TEST_ENTRIES`
/// entries. Run only as a child of [`log_memory_stays_flat_in_the_ledgers_size`], so the
/// memory building takes is not this test process's: Linux carries a process's peak memory
/// across exec into the children it spawns, which would put a floor under what they report.
#[test]
#[ignore = "a helper the memory test runs in a child process"]
fn build_a_big_ledger_in_a_child() {
    let (Some(path), Some(n)) = (
        std::env::var_os("EVL_TEST_LEDGER"),
        std::env::var("EVL_TEST_ENTRIES").ok(),
    ) else {
        return;
    };
    big_ledger(Path::new(&path), n.parse().unwrap());
}

fn big_ledger_in_a_child(path: &Path, n: u64) {
    let st = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "build_a_big_ledger_in_a_child",
            "--ignored",
            "--quiet",
        ])
        .env("EVL_TEST_LEDGER", path)
        .env("EVL_TEST_ENTRIES", n.to_string())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    assert!(path.join("log").exists(), "the child built no ledger");
}

/// The peak resident memory of `evl log` is measured for the real binary (wait4's rusage of
/// that one child) on ledgers of 4,000 and 40,000 entries. Before streaming, `log --json`
/// held the whole log as JSON values: 321 MB resident at 40,000 entries (issue 17).
#[test]
fn log_memory_stays_flat_in_the_ledgers_size() {
    let dir = tempfile::tempdir().unwrap();
    let (small, large) = (dir.path().join("small"), dir.path().join("large"));
    big_ledger_in_a_child(&small, 4_000);
    big_ledger_in_a_child(&large, 40_000);
    assert_eq!(
        log(&large, &["--reverse", "--limit", "1"])[0]["index"],
        39_999
    );
    let log_bytes = std::fs::metadata(large.join("log")).unwrap().len() / 1024;
    // What evl needs to start at all, and the floor this process's own size puts under
    // what its children report.
    let floor = peak_rss_kib(&small, &["--version"]);
    for args in [
        &["log", "--json"][..],
        &["log"],
        &["log", "--json", "--reverse", "--limit", "10"],
        &[
            "log",
            "--json",
            "--signer",
            "admin",
            "--namespace",
            "payments",
            "--since",
            "2026-04-18",
        ],
    ] {
        let (s, l) = (peak_rss_kib(&small, args), peak_rss_kib(&large, args));
        eprintln!(
            "evl {args:?}: peak RSS {s} KiB at 4,000 entries, {l} KiB at 40,000 (log file {log_bytes} KiB; evl --version {floor} KiB)"
        );
        // Ten times the entries; a listing that held them would grow by several times the
        // log's size, and one that kept the mapped log pages it read resident by the log's
        // size (27 MB more here before `log` released them). Streamed, the growth must stay
        // under a quarter of the log file's size.
        assert!(
            s > floor,
            "the floor hides evl's own use: {s} KiB vs {floor} KiB"
        );
        assert!(
            l - s < (log_bytes as i64) / 4,
            "evl {args:?}: peak RSS {l} KiB at 40,000 entries vs {s} KiB at 4,000 (log {log_bytes} KiB)"
        );
    }
}
