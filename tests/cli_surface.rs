//! The command line as scripts and shells see it (docs/CLI-JSON.md): every verb's --json and
//! its schema version, errors as JSON under --json with the same exit codes, the options each
//! verb lists, shell completions, man pages, and `evl watch` reacting to a change through
//! file-system notifications. All through the real binary.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{evl_bin, evl_std, run};
use serde_json::Value;

fn evl(ledger: &Path, args: &[&str]) -> common::Out {
    run(evl_bin()
        .env("XDG_STATE_HOME", ledger.with_extension("state"))
        .arg("--ledger")
        .arg(ledger)
        .args(args))
}

/// A private copy of the flagship (its ledger and keys).
fn flagship_copy() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    common::copy_dir(common::flagship(), t.path());
    let (l, k) = (t.path().join("ledger"), t.path().join("keys"));
    (t, l, k)
}

fn key(keys: &Path, name: &str) -> String {
    keys.join(format!("{name}.key")).display().to_string()
}

/// Every JSON object of an output: the object, each element of an array, each NDJSON line.
fn objects(stdout: &str) -> Vec<Value> {
    match serde_json::from_str::<Value>(stdout) {
        Ok(Value::Array(a)) => a,
        Ok(v) => vec![v],
        Err(_) => stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect(),
    }
}

/// The verbs `evl --help` lists.
fn verbs() -> Vec<String> {
    let help = run(evl_bin().arg("--help")).ok().stdout;
    let commands = help.split("Commands:").nth(1).unwrap();
    commands
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .filter(|v| v != "help")
        .collect()
}

#[test]
fn every_verb_but_cat_and_completions_takes_json() {
    let verbs = verbs();
    assert!(verbs.len() > 25, "{verbs:?}");
    let subverbs = [
        ("key", "list"),
        ("key", "add"),
        ("proof", "inclusion"),
        ("packet", "create"),
        ("gate", "check"),
        ("gate", "test"),
    ];
    let mut missing = Vec::new();
    for v in &verbs {
        let subs: Vec<&str> = subverbs
            .iter()
            .filter(|(p, _)| p == v)
            .map(|(_, s)| *s)
            .collect();
        let helps: Vec<(String, String)> = if subs.is_empty() {
            vec![(
                v.clone(),
                run(evl_bin().args([v.as_str(), "--help"])).ok().stdout,
            )]
        } else {
            subs.iter()
                .map(|s| {
                    (
                        format!("{v} {s}"),
                        run(evl_bin().args([v.as_str(), s, "--help"])).ok().stdout,
                    )
                })
                .collect()
        };
        for (name, help) in helps {
            if !help.contains("--json") {
                missing.push(name);
            }
        }
    }
    // cat prints an artifact's bytes, export-attestation a DSSE envelope (a JSON document
    // with its own payloadType), completions a shell script (docs/CLI-JSON.md).
    assert_eq!(
        missing,
        ["cat", "export-attestation", "completions"],
        "verbs without --json"
    );
}

#[test]
fn json_outputs_carry_their_schema_version() {
    let (t, l, k) = flagship_copy();
    let all = objects(&evl(&l, &["log", "--json"]).ok().stdout);
    let id_of = |pred: &dyn Fn(&Value) -> bool| {
        all.iter().rev().find(|e| pred(e)).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let packet = id_of(&|e| e["kind"] == "packet");
    let disposition = id_of(&|e| e["kind"] == "disposition");
    let artifact = id_of(&|e| e["kind"] == "artifact");
    let hana = key(&k, "hana-okafor");
    let reviewer = key(&k, "reviewer-platform-security");
    let admin = key(&k, "mesh-admin");
    let note = t.path().join("n.txt");
    std::fs::write(&note, "a note\n").unwrap();
    let bundle = t.path().join("b.evlb").display().to_string();
    let man = t.path().join("man").display().to_string();
    let gate = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mtls-cutover/gate.toml");
    let drill = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/mtls-cutover/drill-envoy-policy-reversal-2026-04-15.toml");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["log".into()], "evl.log/v1"),
        (vec!["show".into(), artifact.clone()], "evl.show/v1"),
        (vec!["key".into(), "list".into()], "evl.keys/v1"),
        (
            vec![
                "annotate".into(),
                artifact.clone(),
                "--kind".into(),
                "note".into(),
                "--text".into(),
                "t".into(),
                "--key".into(),
                reviewer.clone(),
            ],
            "evl.appended/v1",
        ),
        (
            vec![
                "add".into(),
                note.display().to_string(),
                "--kind".into(),
                "note".into(),
                "--tier".into(),
                "operational".into(),
                "--key".into(),
                hana.clone(),
            ],
            "evl.appended/v1",
        ),
        (
            vec!["proof".into(), "inclusion".into(), artifact.clone()],
            "evl.proof/v1",
        ),
        (
            vec!["proof".into(), "consistency".into(), "3".into()],
            "evl.proof/v1",
        ),
        (
            vec!["checkpoint".into(), "--key".into(), admin.clone()],
            "evl.checkpoint/v1",
        ),
        (vec!["verify".into(), "--no-state".into()], "evl.verify/v1"),
        (vec!["replay".into(), disposition.clone()], "evl.replay/v1"),
        (vec!["lineage".into(), packet.clone()], "evl.lineage/v1"),
        (
            vec![
                "deadlines".into(),
                packet.clone(),
                "--as-of".into(),
                "2026-04-20T00:00:00Z".into(),
            ],
            "evl.deadlines/v1",
        ),
        (
            vec!["export".into(), packet.clone(), "-o".into(), bundle.clone()],
            "evl.export/v1",
        ),
        (
            vec![
                "verify-bundle".into(),
                bundle.clone(),
                "--trust-on-first-use".into(),
                "--no-state".into(),
            ],
            "evl.verify-bundle/v1",
        ),
        (
            vec![
                "decide".into(),
                packet.clone(),
                "--decision".into(),
                "defer".into(),
                "--text".into(),
                "t".into(),
                "--key".into(),
                key(&k, "omar-bennett"),
            ],
            "evl.appended/v1",
        ),
        (
            vec!["gate".into(), "check".into(), gate.display().to_string()],
            "evl.gate-check/v1",
        ),
        (
            vec![
                "check".into(),
                "rollback-drill".into(),
                drill.display().to_string(),
            ],
            "evl.check/v1",
        ),
        (
            vec!["man".into(), "--out".into(), man.clone()],
            "evl.man/v1",
        ),
        (
            vec![
                "watch".into(),
                packet.clone(),
                "--iterations".into(),
                "1".into(),
                "--key".into(),
                hana.clone(),
            ],
            "evl.watch/v1",
        ),
    ];
    for (mut args, schema) in cases {
        args.push("--json".into());
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = evl(&l, &a);
        assert_eq!(out.code, 0, "evl {a:?}: {out:#?}");
        let objs = objects(&out.stdout);
        assert!(!objs.is_empty(), "evl {a:?}: {out:#?}");
        for o in objs {
            assert_eq!(o["schema"], schema, "evl {a:?}: {o:#}");
            // "schema" is the first field, so a reader can dispatch before reading the rest.
            let text = out
                .stdout
                .trim_start_matches(|c: char| c == '[' || c.is_whitespace());
            assert!(
                text.starts_with('{') && text[1..].trim_start().starts_with("\"schema\""),
                "evl {a:?}: schema is not the first field: {}",
                &out.stdout[..out.stdout.len().min(200)]
            );
        }
    }
}

#[test]
fn errors_under_json_are_one_json_line_with_the_same_exit_code() {
    let (_t, l, k) = flagship_copy();
    let stranger_dir = tempfile::tempdir().unwrap();
    run(evl_bin()
        .args(["keygen", "stranger", "--dir"])
        .arg(stranger_dir.path()))
    .ok();
    let stranger = stranger_dir
        .path()
        .join("stranger.key")
        .display()
        .to_string();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["show", "ffffffff"], 2, "ffffffff"),
        (vec!["log", "--since", "tuesday"], 2, "tuesday"),
        (vec!["log", "--bogus"], 2, "--bogus"),
        (vec!["evaluate", "ffffffff"], 2, "ffffffff"),
        (
            vec![
                "annotate", "ffffffff", "--kind", "note", "--text", "t", "--key", &stranger,
            ],
            2,
            "ffffffff",
        ),
    ];
    let gate_id = {
        let all = objects(&evl(&l, &["log", "--json", "--kind", "packet"]).ok().stdout);
        all[0]["body"]["payload"]["packet"]["gate"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let refused = vec![
        "annotate", &gate_id, "--kind", "note", "--text", "t", "--key", &stranger,
    ];
    let mut cases = cases;
    cases.push((refused, 3, "not registered"));
    let before = evl(&l, &["log", "--json"]).ok().stdout;
    for (args, code, needle) in cases {
        // Without --json: the one `evl: …` line.
        let plain = evl(&l, &args);
        plain.refused(code, &[needle]);
        // With it: the same message and code as one JSON line on stderr, nothing on stdout.
        let mut a = args.clone();
        a.push("--json");
        let out = evl(&l, &a);
        assert_eq!(out.code, code, "{a:?}: {out:#?}");
        assert!(out.stdout.is_empty(), "{a:?}: {out:#?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{a:?}: {out:#?}");
        assert!(
            lines[0].starts_with("{\"schema\":\"evl.error/v1\""),
            "{}",
            lines[0]
        );
        let e: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(e["exit"], code);
        assert_eq!(
            format!("evl: {}", e["error"].as_str().unwrap()),
            plain.stderr.trim_end(),
            "the JSON error says what the plain one says"
        );
        let _ = &k;
    }
    // evaluate's --format json asks for JSON too.
    let out = evl(&l, &["evaluate", "ffffffff", "--format", "json"]);
    assert_eq!(out.code, 2);
    let e: Value = serde_json::from_str(out.stderr.trim_end()).unwrap();
    assert_eq!(e["schema"], "evl.error/v1");
    assert_eq!(
        evl(&l, &["log", "--json"]).ok().stdout,
        before,
        "nothing appended"
    );
}

#[test]
fn verbs_without_a_ledger_neither_list_nor_take_ledger_options() {
    for verb in ["keygen", "verify-bundle", "check", "completions", "man"] {
        let help = run(evl_bin().args([verb, "--help"])).ok().stdout;
        assert!(
            !help.contains("--ledger"),
            "{verb} --help lists --ledger:\n{help}"
        );
        assert!(
            !help.contains("--wait"),
            "{verb} --help lists --wait:\n{help}"
        );
    }
    for verb in ["log", "add", "verify", "evaluate"] {
        let help = run(evl_bin().args([verb, "--help"])).ok().stdout;
        assert!(
            help.contains("--ledger") && help.contains("--wait"),
            "{verb}:\n{help}"
        );
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().display().to_string();
    for args in [
        vec!["keygen", "k", "--dir", &dir, "--ledger", &dir],
        vec!["keygen", "k", "--dir", &dir, "--wait"],
        vec!["keygen", "k", "--dir", &dir, "--wait", "5"],
        vec!["verify-bundle", "x.evlb", "--ledger", &dir],
        vec!["verify-bundle", "x.evlb", "--wait", "3"],
    ] {
        run(evl_bin().args(&args)).refused(2, &["takes no --"]);
    }
    assert!(
        !d.path().join("k.key").exists(),
        "a refused keygen wrote a key"
    );
}

/// `--ledger` and `--wait` are verbs' options, not clap globals (docs/PERFORMANCE.md,
/// "Start-up"): accepted before the verb and after it, at every level of a sub-verb, the one
/// after the verb winning over the one before, the environment and the default.
#[test]
fn ledger_options_work_before_and_after_the_verb_and_the_later_one_wins() {
    let (_t, ledger, _keys) = flagship_copy();
    let l = ledger.display().to_string();
    let other = tempfile::tempdir().unwrap();
    let missing = other.path().join("none").display().to_string();
    let size = |o: common::Out| o.ok().stdout.lines().count();
    let want = size(run(evl_bin().args(["--ledger", &l, "log"])));
    assert!(want > 10);
    for args in [
        vec!["log", "--ledger", &l],
        vec!["--ledger", &missing, "log", "--ledger", &l],
        vec!["--ledger", &l, "log", "--wait", "5"],
    ] {
        assert_eq!(size(run(evl_bin().args(&args))), want, "{args:?}");
    }
    // After the verb it overrides EVL_LEDGER; before it, EVL_LEDGER is overridden too.
    assert_eq!(
        size(run(evl_bin()
            .env("EVL_LEDGER", &missing)
            .args(["log", "--ledger", &l]))),
        want
    );
    // The one after the verb wins: pointing it at nothing fails, naming that directory.
    run(evl_bin().args(["--ledger", &l, "log", "--ledger", &missing]))
        .refused(2, &["no evl ledger at", "none"]);
    // Sub-verbs, at either level.
    let keys = |args: &[&str]| run(evl_bin().args(args)).ok().stdout;
    let listed = keys(&["--ledger", &l, "key", "list"]);
    assert!(listed.contains("hana-okafor"), "{listed}");
    assert_eq!(keys(&["key", "list", "--ledger", &l]), listed);
    assert_eq!(keys(&["key", "--ledger", &l, "list"]), listed);
    // Every verb that reads a ledger lists both options in its help, sub-verbs too.
    for verb in [
        &["proof", "inclusion"][..],
        &["key", "add"],
        &["packet", "create"],
        &["gate", "test"],
    ] {
        let mut a: Vec<&str> = verb.to_vec();
        a.push("--help");
        let help = run(evl_bin().args(&a)).ok().stdout;
        assert!(
            help.contains("--ledger") && help.contains("--wait"),
            "{verb:?}:\n{help}"
        );
    }
}

#[test]
fn completions_name_the_verbs_and_their_options() {
    let bash = run(evl_bin().args(["completions", "bash"])).ok().stdout;
    for word in [
        "keygen",
        "verify-bundle",
        "evaluate",
        "--signer",
        "--namespace",
        "--reverse",
        "--fail-on",
    ] {
        assert!(bash.contains(word), "the bash completion lacks {word}");
    }
    // bash itself reads it without error and defines the completion function.
    let out = std::process::Command::new("bash")
        .args(["-c", "source /dev/stdin && complete -p evl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(bash.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("evl"));
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let s = run(evl_bin().args(["completions", shell])).ok().stdout;
        assert!(s.contains("verify-bundle"), "{shell}");
    }
    run(evl_bin().args(["completions", "tcsh"])).refused(2, &["tcsh"]);
}

#[test]
fn man_pages_are_roff_that_groff_reads_without_warnings() {
    let d = tempfile::tempdir().unwrap();
    let out = run(evl_bin().args(["man", "--out"]).arg(d.path())).ok();
    let log = d.path().join("evl-log.1");
    assert!(out.stdout.contains("evl-log.1"), "{out:#?}");
    for page in [
        "evl.1",
        "evl-log.1",
        "evl-show.1",
        "evl-key-add.1",
        "evl-gate-test.1",
    ] {
        assert!(d.path().join(page).exists(), "{page} missing");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let th = text
        .lines()
        .find(|l| l.starts_with(".TH"))
        .expect("a .TH line");
    assert!(th.starts_with(".TH evl-log 1"), "{th}");
    // Only roff requests and escapes before the title.
    for l in text.lines().take_while(|l| !l.starts_with(".TH")) {
        assert!(l.starts_with('.') || l.starts_with("'\\\""), "{l}");
    }
    for option in ["signer", "namespace", "reverse", "limit", "subject"] {
        assert!(text.contains(option), "evl-log.1 lacks {option}");
    }
    let groff = common::parts::program_or_apt("groff", "groff-base");
    for page in ["evl.1", "evl-log.1"] {
        let o = std::process::Command::new(&groff)
            .args(["-K", "utf8", "-man", "-ww", "-z"])
            .arg(d.path().join(page))
            .output()
            .unwrap();
        assert!(o.status.success(), "groff failed on {page}");
        assert!(
            o.stderr.is_empty(),
            "groff warns on {page}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// `evl watch` waits on file-system notifications: with a one-hour --interval, an append by
/// another process is seen within the bounded wait below, which polling could not do.
#[test]
fn watch_reacts_to_an_append_by_another_process() {
    let (_t, l, k) = flagship_copy();
    let all = objects(&evl(&l, &["log", "--json", "--kind", "packet"]).ok().stdout);
    let v5 = all.last().unwrap()["id"].as_str().unwrap().to_string();
    let mut child = evl_std()
        .env("XDG_STATE_HOME", l.with_extension("state"))
        .arg("--ledger")
        .arg(&l)
        .args(["watch", &v5, "--interval", "3600", "--json", "--key"])
        .arg(key(&k, "hana-okafor"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let wait = Duration::from_secs(120);
    let first: Value = serde_json::from_str(&rx.recv_timeout(wait).expect("a first look")).unwrap();
    assert_eq!(first["schema"], "evl.watch/v1");
    let size_before = objects(&evl(&l, &["log", "--json"]).ok().stdout).len();
    // Another process appends a concern on the packet.
    evl(
        &l,
        &[
            "annotate",
            &v5,
            "--kind",
            "concern",
            "--text",
            "late change",
            "--key",
            &key(&k, "reviewer-platform-security"),
        ],
    )
    .ok();
    let start = Instant::now();
    let second = rx.recv_timeout(wait);
    let _ = child.kill();
    let _ = child.wait();
    let second: Value = serde_json::from_str(&second.unwrap_or_else(|_| {
        panic!("watch did not react within {wait:?} to an append (interval one hour)")
    }))
    .unwrap();
    eprintln!("watch reacted after {:?}", start.elapsed());
    assert_eq!(second["schema"], "evl.watch/v1");
    assert_eq!(second["packet"], v5);
    assert!(size_before > 0);
}

/// A clock for `watch_with` that moves a day per wait and, on its first wait, has another
/// process append a new revision of the watched packet.
struct AppendingClock {
    now: i64,
    waits: u32,
    append: Box<dyn FnMut()>,
}

impl evl::cli::Clock for AppendingClock {
    fn now(&mut self) -> evl::timestamp::Timestamp {
        evl::timestamp::Timestamp(self.now)
    }
    fn sleep(&mut self, d: Duration) {
        self.waits += 1;
        if self.waits == 1 {
            (self.append)();
        }
        self.now += d.as_secs() as i64;
    }
}

/// Each look reads only the entries appended since the previous one, and what it reads is
/// enough: a revision appended between two looks is followed at the second.
#[test]
fn watch_follows_a_revision_appended_between_looks() {
    use clap::Parser as _;
    let (_t, l, k) = flagship_copy();
    let all = objects(&evl(&l, &["log", "--json", "--kind", "packet"]).ok().stdout);
    let v4 = all
        .iter()
        .find(|p| p["body"]["payload"]["packet"]["revision"] == 4)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v5 = all
        .iter()
        .find(|p| p["body"]["payload"]["packet"]["revision"] == 5)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hana = key(&k, "hana-okafor");
    let (l2, v5b, hana2) = (l.clone(), v5.clone(), hana.clone());
    let mut clock = AppendingClock {
        now: "2026-04-21T00:00:00Z"
            .parse::<evl::timestamp::Timestamp>()
            .unwrap()
            .seconds(),
        waits: 0,
        append: Box::new(move || {
            evl(
                &l2,
                &[
                    "packet",
                    "create",
                    "--parent",
                    &v5b,
                    "--at",
                    "2026-04-21T01:00:00Z",
                    "--key",
                    &hana2,
                ],
            )
            .ok();
        }),
    };
    let cli = evl::cli::Cli::try_parse_from([
        "evl",
        "--ledger",
        l.to_str().unwrap(),
        "watch",
        &v4,
        "--key",
        &hana,
        "--interval",
        "86400",
        "--iterations",
        "2",
        "--json",
    ])
    .unwrap();
    let evl::cli::Command::Watch(evl::cli::Lazy(args)) = cli.command else {
        panic!("parsed as another verb")
    };
    let mut out = Vec::new();
    evl::cli::watch_with(&cli.global, args, &mut clock, &mut out).unwrap();
    let looks = objects(&String::from_utf8(out).unwrap());
    assert_eq!(looks.len(), 2, "{looks:#?}");
    assert_eq!(looks[0]["revision"], 5);
    assert_eq!(looks[0]["packet"], v5);
    assert_eq!(looks[1]["revision"], 6, "{looks:#?}");
    let v6 = objects(
        &evl(
            &l,
            &[
                "log",
                "--json",
                "--kind",
                "packet",
                "--reverse",
                "--limit",
                "1",
            ],
        )
        .ok()
        .stdout,
    );
    assert_eq!(looks[1]["packet"], v6[0]["id"]);
    // v6 has no disposition of its own yet: the look records one.
    assert!(looks[1]["recorded"].is_string(), "{looks:#?}");
}
