//! `evl report`: the gate-board page of the flagship packet (examples/mtls-cutover, revision 4
//! as of 2026-04-20), opened in a real headless Chromium (Debian's `chromium`, driven by
//! Playwright through tests/browser/dom_check.py) at a desktop and a narrow width; the
//! assertions are on the DOM the browser built, not on the file's text. Also: the page is the
//! same bytes for the same ledger and as-of, hostile ledger text is shown as text and never
//! run, nothing is fetched, and bad input is one `evl:` line with exit 2 and no change.
//!
//! The flagship ledger is built once per test binary by the compiled example (`--keep`), as in
//! tests/cli_gate.rs; every test works on its own copy.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{Fixture, Out, copy_dir, parts};
use serde_json::Value;

const AS_OF: &str = "2026-04-20T00:00:00Z";
const V4: &str = "Service-Mesh-mTLS-Enforcement-Gate-Packet-v4";

/// The v4 blockers as of 2026-04-20 (examples/mtls-cutover/SCENARIO.md): code and subject.
const V4_BLOCKERS: &[(&str, &str)] = &[
    ("acknowledgment-missing", "namespace data-platform"),
    (
        "compatibility-unresolved",
        "workload orders/orders-journal-writer",
    ),
    (
        "compatibility-unresolved",
        "workload payments/payments-ledger-sync",
    ),
    (
        "exception-expires-before-checkpoint",
        "exception mesh-cert-exc-117",
    ),
    (
        "exception-expires-before-checkpoint",
        "exception mesh-cert-exc-122",
    ),
    (
        "rollback-drill-stale",
        "path legacy-grpc-settlement-adapter",
    ),
];
const V4_IN_SCOPE: &[&str] = &[
    "edge-routing/edge-gateway",
    "edge-routing/edge-router",
    "identity/identity-directory",
    "identity/identity-token-service",
    "payments/payments-api",
    "payments/payments-gateway",
];
const V4_OUT_OF_SCOPE: &[&str] = &[
    "data-platform/data-platform-etl",
    "data-platform/data-platform-ingest",
    "orders/orders-journal-writer",
    "payments/payments-ledger-sync",
];

/// Untrusted text that would run a script and add an element if the page did not escape it.
const HOSTILE: &str = "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">\
                       </td></table><svg onload=\"window.pwned=3\"></svg>";

/// A private copy of the flagship as a [`Fixture`] (same layout: `ledger/`, `keys/`).
fn flagship() -> Fixture {
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    copy_dir(common::flagship(), root.path());
    Fixture {
        root,
        ids: Default::default(),
    }
}

fn log(f: &Fixture) -> Vec<Value> {
    f.evl(["log", "--json"])
        .ok()
        .ndjson()
        .as_array()
        .unwrap()
        .clone()
}

fn payload(e: &Value) -> &Value {
    e["body"]["payload"]
        .as_object()
        .and_then(|m| m.values().next())
        .expect("a payload")
}

/// The id of the one entry `pick` selects.
fn find(log: &[Value], pick: impl Fn(&Value) -> bool) -> String {
    let hits: Vec<&Value> = log.iter().filter(|e| pick(e)).collect();
    assert_eq!(hits.len(), 1, "exactly one entry matches");
    hits[0]["id"].as_str().unwrap().to_string()
}

fn packet(log: &[Value], name: &str) -> String {
    find(log, |e| e["kind"] == "packet" && payload(e)["name"] == name)
}

/// Opens `page` in headless Chromium at 1280 and 390 px, screenshots into `shots`, and returns
/// what tests/browser/dom_check.py read from the DOM.
fn browse(page: &Path, shots: &Path) -> Value {
    let chromium = parts::program_or_apt("chromium", "chromium");
    let python = parts::python_with(&["playwright"], &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dom_check.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(&chromium)
        .arg(page)
        .arg(shots)
        .output()
        .expect("the DOM check runs");
    assert!(
        out.status.success(),
        "the DOM check failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the DOM check prints JSON")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// What every view of a page must show about hostile text and fetching.
fn assert_inert(view: &Value, url: &str, name: &str) {
    assert_eq!(view["pwned"], Value::Null, "{name}: injected script ran");
    assert_eq!(view["scripts"], 0, "{name}: a <script> element exists");
    assert_eq!(view["images"], 0, "{name}: an injected <img> exists");
    assert_eq!(
        view["elements_with_onerror"], 0,
        "{name}: an onerror attribute exists"
    );
    assert_eq!(
        strings(&view["requests"]),
        vec![url.to_string()],
        "{name}: the page requested something besides itself"
    );
}

#[test]
fn the_flagship_page_in_chromium_shows_verdict_blockers_scope_and_escapes_annotations() {
    let f = flagship();
    let entries = log(&f);
    let v4 = packet(&entries, V4);
    let inventory = find(&entries, |e| {
        e["kind"] == "artifact" && payload(e)["kind"] == "workload-inventory"
    });
    // A reviewer's hostile remark on the inventory behind the compatibility blockers.
    let key = f.path("keys/reviewer-platform-security.key");
    f.evl([
        "annotate",
        &inventory,
        "--kind",
        "concern",
        "--text",
        HOSTILE,
        "--key",
        key.to_str().unwrap(),
    ])
    .ok();
    let dir = f.path("board");
    let out = f
        .evl(["report", &v4, "--as-of", AS_OF, "-o", dir.to_str().unwrap()])
        .ok();
    assert!(
        out.stdout.contains("NARROW as of 2026-04-20T00:00:00Z"),
        "{out:#?}"
    );
    let page = dir.join("index.html");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_page-shots");
    let dom = browse(&page, &shots);
    let url = dom["url"].as_str().unwrap().to_string();

    for (name, width) in [("desktop", 1280), ("narrow", 390)] {
        let view = &dom["views"][name];
        // The hostile annotation: shown as its own text, exactly, and inert.
        let remarks = strings(&view["annotation_texts"]);
        assert!(remarks.iter().any(|r| r == HOSTILE), "{name}: {remarks:?}");
        assert_inert(view, &url, name);

        assert_eq!(view["verdict_word"], "NARROW", "{name}");
        let line = view["verdict_line"].as_str().unwrap();
        for needle in [
            "6 of 10 workloads",
            "40.00 %",
            "HOLD at 2026-04-24",
            "before the proposed checkpoint 2026-04-30",
        ] {
            assert!(
                line.contains(needle),
                "{name}: verdict line lacks {needle:?}: {line}"
            );
        }
        assert_eq!(view["as_of"], AS_OF, "{name}");

        // Every blocker, under its subject, and what would clear it.
        let codes = strings(&view["blocker_codes"]);
        let mut want: Vec<&str> = V4_BLOCKERS.iter().map(|(c, _)| *c).collect();
        let mut got: Vec<&str> = codes.iter().map(String::as_str).collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{name}: blocker codes");
        let subjects: BTreeSet<String> = strings(&view["subjects"]).into_iter().collect();
        let want_subjects: BTreeSet<String> =
            V4_BLOCKERS.iter().map(|(_, s)| s.to_string()).collect();
        assert_eq!(subjects, want_subjects, "{name}: subjects");
        let unblock = strings(&view["unblock"]);
        assert_eq!(unblock.len(), V4_BLOCKERS.len(), "{name}");
        assert!(
            unblock
                .iter()
                .all(|u| u.starts_with("What would clear it:") && u.len() > 40),
            "{name}: {unblock:?}"
        );

        // What it would take, soonest deadline first: the two exceptions, then the rest by
        // the proposed checkpoint.
        let actions = view["actions"].as_array().unwrap();
        assert_eq!(actions.len(), V4_BLOCKERS.len(), "{name}");
        let by: Vec<&str> = actions.iter().map(|a| a[0].as_str().unwrap()).collect();
        assert_eq!(
            by,
            [
                "2026-04-24T00:00:00Z",
                "2026-04-27T00:00:00Z",
                "2026-04-30T00:00:00Z",
                "2026-04-30T00:00:00Z",
                "2026-04-30T00:00:00Z",
                "2026-04-30T00:00:00Z"
            ],
            "{name}"
        );
        assert!(
            actions[0][1]
                .as_str()
                .unwrap()
                .contains("mesh-cert-exc-117"),
            "{name}"
        );

        // The exact scope.
        assert_eq!(strings(&view["out_of_scope"]), V4_OUT_OF_SCOPE, "{name}");
        assert_eq!(strings(&view["in_scope"]), V4_IN_SCOPE, "{name}");

        // Pictures: scope, lineage v2 → v3 → v4 with its verdict changes, timeline.
        assert_eq!(view["svg_count"], 3, "{name}");
        assert_eq!(view["lineage_nodes"], 3, "{name}");
        let edges = strings(&view["lineage_edges"]).join(" | ");
        assert!(edges.contains("verdict HOLD → ESCALATE"), "{name}: {edges}");
        assert!(
            edges.contains("verdict ESCALATE → NARROW"),
            "{name}: {edges}"
        );
        assert!(view["timeline_windows"].as_u64().unwrap() >= 10, "{name}");
        let flips = strings(&view["timeline_flips"]);
        assert!(
            flips.iter().any(|f| f == "→ HOLD 04-24"),
            "{name}: {flips:?}"
        );
        let deadlines = strings(&view["deadlines"]).join(" | ");
        assert!(deadlines.contains("NARROW → HOLD"), "{name}: {deadlines}");

        // Laid out for the width: no sideways scrolling of the page itself.
        assert_eq!(view["client_width"], width, "{name}");
        assert!(
            view["scroll_width"].as_u64().unwrap() <= width,
            "{name}: the page scrolls sideways ({} px)",
            view["scroll_width"]
        );
        assert!(
            view["screenshot_bytes"].as_u64().unwrap() > 10_000,
            "{name}"
        );
        assert!(Path::new(view["screenshot"].as_str().unwrap()).is_file());
    }

    // Every replay command on the page is a real one: run it.
    let cmds = strings(&dom["views"]["desktop"]["replay_commands"]);
    assert_eq!(cmds.len(), 4, "v2, v3 and two v4 dispositions: {cmds:?}");
    for c in &cmds {
        let args: Vec<&str> = c.split_whitespace().collect();
        assert_eq!(args[..2], ["evl", "replay"], "{c}");
        let out = f.evl(&args[1..]).ok();
        assert!(out.stdout.starts_with("replayed:"), "{out:#?}");
    }
    // Each names the checkpoint that includes it (the flagship's covers all four).
    for c in strings(&dom["views"]["desktop"]["checkpoints"]) {
        assert!(
            c.contains("tree size 42") && c.contains("includes it"),
            "{c}"
        );
    }
}

#[test]
fn hostile_packet_names_and_rationales_are_text_in_headings_lists_and_svg() {
    let f = flagship();
    let entries = log(&f);
    let v4 = packet(&entries, V4);
    let hana = f.path("keys/hana-okafor.key");
    let out = f
        .evl([
            "narrow",
            &v4,
            "--keep",
            "payments/payments-api",
            "--rationale",
            HOSTILE,
            "--key",
            hana.to_str().unwrap(),
        ])
        .ok();
    let proposal = out.stdout.split_whitespace().nth(2).unwrap().to_string();
    let out = f
        .evl([
            "packet",
            "create",
            "--parent",
            &v4,
            "--name",
            HOSTILE,
            "--basis",
            &proposal,
            "--key",
            hana.to_str().unwrap(),
        ])
        .ok();
    let child = out.stdout.split_whitespace().nth(1).unwrap().to_string();
    let dir = f.path("board");
    f.evl([
        "report",
        &child,
        "--as-of",
        AS_OF,
        "-o",
        dir.to_str().unwrap(),
    ])
    .ok();
    let dom = browse(&dir.join("index.html"), &f.path("shots"));
    let url = dom["url"].as_str().unwrap().to_string();
    for name in ["desktop", "narrow"] {
        let view = &dom["views"][name];
        assert_inert(view, &url, name);
        assert!(view["title"].as_str().unwrap().contains(HOSTILE), "{name}");
        let text = view["body_text"].as_str().unwrap();
        assert!(
            text.contains(HOSTILE),
            "{name}: the name is not shown as text"
        );
        // The lineage graph labels the new revision by its (cut) name, as SVG text.
        assert_eq!(view["lineage_nodes"], 4, "{name}");
    }
}

#[test]
fn the_page_is_the_same_bytes_for_the_same_ledger_and_as_of() {
    let f = flagship();
    let v4 = packet(&log(&f), V4);
    let (a, b) = (f.path("a"), f.path("b"));
    for d in [&a, &b] {
        f.evl(["report", &v4, "--as-of", AS_OF, "-o", d.to_str().unwrap()])
            .ok();
    }
    let (pa, pb) = (
        std::fs::read(a.join("index.html")).unwrap(),
        std::fs::read(b.join("index.html")).unwrap(),
    );
    assert_eq!(pa, pb);
    // Another copy of the ledger elsewhere: still the same bytes (no path on the page).
    let g = flagship();
    let c = g.path("c");
    g.evl(["report", &v4, "--as-of", AS_OF, "-o", c.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(c.join("index.html")).unwrap(), pa);
    // And it is the page of the test vector, byte for byte: the flagship ledger is itself a
    // byte-for-byte vector (tests/cli_gate.rs), so this page is the same on every machine.
    let vector = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/report/flagship-v4-as-of-2026-04-20.html");
    if std::env::var_os("EVL_BLESS").is_some() {
        std::fs::write(&vector, &pa).unwrap();
    }
    assert!(
        std::fs::read(&vector).unwrap() == pa,
        "the page differs from {} (if the change is meant, rerun with EVL_BLESS=1 and review \
         the diff)",
        vector.display()
    );
    // And it says which as-of it used.
    let html = String::from_utf8(pa).unwrap();
    assert!(html.contains("<b id=\"as-of\">2026-04-20T00:00:00Z</b> (given with --as-of)"));
}

#[test]
fn without_as_of_the_page_uses_the_latest_recorded_disposition() {
    let f = flagship();
    let v4 = packet(&log(&f), V4);
    let d = f.path("nested/board");
    let out = f.evl(["report", &v4, "-o", d.to_str().unwrap()]).ok();
    // v4's last recorded disposition is the HOLD one second after mesh-cert-exc-117 expires.
    assert!(
        out.stdout.contains("HOLD as of 2026-04-24T00:00:01Z"),
        "{out:#?}"
    );
    let html = std::fs::read_to_string(d.join("index.html")).unwrap();
    assert!(html.contains("<b id=\"as-of\">2026-04-24T00:00:01Z</b> (the as-of of this revision&#39;s latest recorded disposition")
        || html.contains("<b id=\"as-of\">2026-04-24T00:00:01Z</b> (the as-of of this revision&#x27;s latest recorded disposition"),
        "{}", &html[..html.find("</header>").unwrap()]);
    assert!(html.contains("<strong id=\"verdict-word\">HOLD</strong>"));
}

#[test]
fn a_disposition_recorded_after_the_latest_checkpoint_is_covered_by_none_yet() {
    let f = flagship();
    let v4 = packet(&log(&f), V4);
    let hana = f.path("keys/hana-okafor.key");
    let out = f
        .evl([
            "packet",
            "create",
            "--parent",
            &v4,
            "--key",
            hana.to_str().unwrap(),
        ])
        .ok();
    let child = out.stdout.split_whitespace().nth(1).unwrap().to_string();
    f.evl([
        "evaluate",
        &child,
        "--as-of",
        AS_OF,
        "--record",
        "--at",
        AS_OF,
        "--key",
        hana.to_str().unwrap(),
    ])
    .ok();
    let rec = log(&f).last().unwrap()["id"].as_str().unwrap().to_string();
    let d = f.path("board");
    f.evl(["report", &child, "-o", d.to_str().unwrap()]).ok();
    let html = std::fs::read_to_string(d.join("index.html")).unwrap();
    // Each disposition block: its id, then its replay command and checkpoint line.
    let block = |id: &str| {
        let at = html
            .find(&format!("data-id=\"{id}\""))
            .unwrap_or_else(|| panic!("no block for {id}"));
        let rest = &html[at..];
        let end = rest[1..]
            .find("data-id=\"")
            .or_else(|| rest.find("</section>"))
            .unwrap();
        rest[..end].to_string()
    };
    let new = block(&rec);
    assert!(new.contains(&format!("evl replay {rec}")), "{new}");
    assert!(
        new.contains(
            "Checkpoint: none yet: the latest stored checkpoint (tree size 42) predates index 43"
        ),
        "{new}"
    );
    assert!(new.contains("the derivation shown on this page"), "{new}");
    // The flagship's own are inside the checkpoint of size 42, with a proof command.
    let old = f
        .evl(["log", "--kind", "disposition", "--json"])
        .ok()
        .ndjson();
    let first = old[0]["id"].as_str().unwrap().to_string();
    let b = block(&first);
    assert!(b.contains("includes it at index"), "{b}");
    assert!(
        b.contains(&format!("evl proof inclusion {first} --size 42")),
        "{b}"
    );
    // And the command it prints proves it.
    let out = f.evl(["proof", "inclusion", &first, "--size", "42"]).ok();
    assert!(!out.stdout.is_empty());
}

/// The ledger as a reader sees it, to prove a refused command changed nothing.
fn unchanged(f: &Fixture) -> Value {
    f.evl(["log", "--json"]).ok().ndjson()
}

#[test]
fn a_basis_artifact_edited_in_the_store_is_exit_1_naming_it() {
    let f = flagship();
    let entries = log(&f);
    let v4 = packet(&entries, V4);
    let drill = entries
        .iter()
        .find(|e| {
            e["kind"] == "artifact"
                && payload(e)["file_name"] == "drill-legacy-grpc-settlement-adapter-2026-04-05.toml"
        })
        .unwrap();
    let content = payload(drill)["content"].as_str().unwrap().to_string();
    let mut found = false;
    common::store::rewrite(&f.ledger(), |tag, body| {
        if tag == common::store::BLOB && hex::encode(&body[..32]) == content {
            found = true;
            return Some([&body[..40], b"outcome = \"pass\"\n"].concat());
        }
        Some(body.to_vec())
    });
    assert!(found, "the log holds the drill's bytes");
    let d = f.path("board");
    f.evl(["report", &v4, "--as-of", AS_OF, "-o", d.to_str().unwrap()])
        .refused(1, &["do not hash to its content digest", &content]);
    assert!(!d.exists(), "a refused report created its directory");
}

#[test]
fn bad_input_is_one_line_exit_2_and_nothing_written() {
    let f = flagship();
    let entries = log(&f);
    let v4 = packet(&entries, V4);
    // A revision with no recorded disposition.
    let hana = f.path("keys/hana-okafor.key");
    let out = f
        .evl([
            "packet",
            "create",
            "--parent",
            &v4,
            "--key",
            hana.to_str().unwrap(),
        ])
        .ok();
    let child = out.stdout.split_whitespace().nth(1).unwrap().to_string();
    let before = unchanged(&f);
    let d = f.path("board");
    let ds = d.to_str().unwrap();

    let refused = |out: Out, needles: &[&str]| out.refused(2, needles);
    refused(
        f.evl(["report", "0123456789ab", "--as-of", AS_OF, "-o", ds]),
        &["0123456789ab"],
    );
    let genesis = entries[0]["id"].as_str().unwrap().to_string();
    refused(
        f.evl(["report", &genesis, "--as-of", AS_OF, "-o", ds]),
        &["genesis entry, not a packet revision"],
    );
    // Without --as-of it needs a recorded disposition to take the time from.
    refused(
        f.evl(["report", &child, "-o", ds]),
        &["no recorded disposition", "--as-of"],
    );
    assert!(!d.exists(), "a refused report created its directory");
    f.evl(["report", &child, "--as-of", AS_OF, "-o", ds]).ok();

    // -o naming a file.
    let file = f.file("not-a-dir", b"x");
    refused(
        f.evl([
            "report",
            &v4,
            "--as-of",
            AS_OF,
            "-o",
            file.to_str().unwrap(),
        ]),
        &["not a directory"],
    );
    // An index.html evl did not write is never overwritten.
    let other = f.path("site");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("index.html"), b"<html>the team wiki</html>").unwrap();
    refused(
        f.evl([
            "report",
            &v4,
            "--as-of",
            AS_OF,
            "-o",
            other.to_str().unwrap(),
        ]),
        &["not a page evl report wrote"],
    );
    assert_eq!(
        std::fs::read(other.join("index.html")).unwrap(),
        b"<html>the team wiki</html>"
    );
    // One evl wrote is replaced (here: the child's page by v4's).
    f.evl(["report", &v4, "--as-of", AS_OF, "-o", ds]).ok();
    let html = std::fs::read_to_string(d.join("index.html")).unwrap();
    assert!(html.contains(&format!("packet <span class=\"id\">{v4}</span>")));
    assert!(
        !d.join(".index.html.evl-tmp").exists(),
        "the temporary file is left behind"
    );
    assert_eq!(unchanged(&f), before, "report changed the ledger");
}
