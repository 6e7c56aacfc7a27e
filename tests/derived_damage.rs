//! Hostile storage against the derived files (issue 12): every file under `index/` is damaged
//! in many ways — bit flips at spread offsets, truncations, swapped records, zeroed or deleted
//! files — and after each damage:
//!
//! - every reading verb either prints exactly what it prints on the undamaged ledger, or fails
//!   with one `evl: …` line and a non-zero exit: never wrong data with exit 0;
//! - `evl verify` never passes a ledger whose index files differ from what the log gives,
//!   except a missing file or a missing tail of one — what an append interrupted before its
//!   index writes leaves, derived data evl rebuilds from the log — and a damaged `format` tag
//!   or durability mark (`durable`), which only make evl trust less of the index: a tag not its
//!   own means no index file is read, a mark whose check fails means no record is trusted
//!   without checking it against the log;
//! - an append either fails leaving `log` byte-identical, or commits what the entries give:
//!   with `index/` deleted afterwards the ledger still verifies, and a checkpoint signed after
//!   it verifies too. Derived-file damage never becomes log damage.
//!
//! Each case prints its name on failure, so a regression names the file, the damage and the verb.

mod common;

use std::path::Path;

use common::{Fixture, Out, rich};

/// One way to damage a file.
#[derive(Clone, Debug)]
enum Damage {
    Flip { at: u64, mask: u8 },
    Truncate(u64),
    SwapRecords { a: u64, b: u64, len: u64 },
    Zero,
    Delete,
    AppendJunk,
}

fn apply(path: &Path, d: &Damage) {
    let mut bytes = std::fs::read(path).unwrap();
    match d {
        Damage::Flip { at, mask } => bytes[*at as usize] ^= mask,
        Damage::Truncate(n) => bytes.truncate(*n as usize),
        Damage::SwapRecords { a, b, len } => {
            let (a, b, len) = (*a as usize, *b as usize, *len as usize);
            let ra = bytes[a..a + len].to_vec();
            let rb = bytes[b..b + len].to_vec();
            bytes[a..a + len].copy_from_slice(&rb);
            bytes[b..b + len].copy_from_slice(&ra);
        }
        Damage::Zero => bytes.iter_mut().for_each(|b| *b = 0),
        Damage::Delete => {
            std::fs::remove_file(path).unwrap();
            return;
        }
        Damage::AppendJunk => bytes.extend_from_slice(&[0xa5; 48]),
    }
    std::fs::write(path, bytes).unwrap();
}

/// The damages tried on a file of `len` bytes whose records are `record` bytes long.
fn damages(len: u64, record: u64) -> Vec<Damage> {
    let mut out = vec![Damage::Delete, Damage::Zero, Damage::AppendJunk];
    if len == 0 {
        return out;
    }
    // Flips spread over the file: first and last byte, and seven offsets between.
    let mut offsets: Vec<u64> = (0..=8).map(|k| (len - 1) * k / 8).collect();
    offsets.dedup();
    for (i, at) in offsets.into_iter().enumerate() {
        out.push(Damage::Flip {
            at,
            mask: 1 << (i % 8),
        });
    }
    out.push(Damage::Truncate(len - 1));
    out.push(Damage::Truncate(len / 2));
    if len >= 2 * record {
        let last = len / record - 1;
        out.push(Damage::SwapRecords {
            a: 0,
            b: last * record,
            len: record,
        });
        if last >= 2 {
            out.push(Damage::SwapRecords {
                a: record,
                b: 2 * record,
                len: record,
            });
        }
    }
    out
}

/// Record length of each index file (docs/FORMAT.md §"Index files"), for swaps.
fn record_len(name: &str) -> u64 {
    match name {
        "ids" | "blobs" => 48,
        "hashes" => 32,
        "entries" | "commits" => 8,
        n if n.starts_with("ids.") || n.starts_with("blobs.") => 48,
        _ => 16,
    }
}

/// The reading verbs and what they print on the undamaged ledger.
struct Reads {
    argv: Vec<Vec<String>>,
    expected: Vec<Out>,
}

fn reads(f: &Fixture) -> Reads {
    let log = f.evl(["log", "--json"]).ok().ndjson();
    let entries = log.as_array().unwrap();
    let mut argv: Vec<Vec<String>> = vec![
        vec!["log".into(), "--json".into()],
        vec!["proof".into(), "consistency".into(), "3".into()],
        vec!["key".into(), "list".into(), "--json".into()],
    ];
    for (i, e) in entries.iter().enumerate() {
        let id = e["id"].as_str().unwrap().to_string();
        // A spread of entries: the first, the last and every eighth.
        if i == 0 || i + 1 == entries.len() || i % 8 == 1 {
            argv.push(vec!["show".into(), id.clone(), "--json".into()]);
            argv.push(vec![
                "proof".into(),
                "inclusion".into(),
                id.clone(),
                "--json".into(),
            ]);
        }
        if let Some(c) = e["body"]["payload"]["artifact"]["content"].as_str()
            && i % 8 == 2
        {
            argv.push(vec!["cat".into(), c.to_string()]);
            argv.push(vec!["show".into(), c.to_string(), "--json".into()]);
        }
    }
    argv.dedup();
    let expected = argv.iter().map(|a| f.evl(a).ok()).collect();
    Reads { argv, expected }
}

/// Index files of `f`, with their sizes.
fn index_files(f: &Fixture) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = std::fs::read_dir(f.ledger().join("index"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn damaged_index_files_never_yield_wrong_output_or_log_damage() {
    // The rich ledger and one batch of 40 more artifacts: past the 32 entries after which
    // the writer syncs the index files and writes the durability mark (`index/durable`).
    let base = rich().copy();
    let files: Vec<String> = (0..40)
        .map(|i| {
            let p = base.file(
                &format!("batch-{i}.txt"),
                format!("batch item {i}\n").as_bytes(),
            );
            p.display().to_string()
        })
        .collect();
    let owner = base.key("owner-v2").display().to_string();
    let mut argv: Vec<&str> = vec!["add"];
    argv.extend(files.iter().map(String::as_str));
    argv.extend(["--kind", "note", "--tier", "excluded", "--key", &owner]);
    base.evl(&argv).ok();
    let reads = reads(&base);
    let verified = base.verified();
    let files = index_files(&base);
    assert!(
        ["ids", "hashes", "durable"]
            .iter()
            .all(|want| files.iter().any(|(n, _)| n == want)),
        "{files:?}"
    );
    let admin = base.key("admin").display().to_string();
    let mut cases = 0;
    let mut refused = 0;
    let mut clean_verifies = 0;
    for (name, len) in &files {
        for d in damages(*len, record_len(name)) {
            cases += 1;
            let case = format!("index/{name} {d:?}");
            let f = base.copy();
            let log_before = std::fs::read(f.ledger().join("log")).unwrap();
            apply(&f.ledger().join("index").join(name), &d);

            // Reading verbs: the undamaged output, or one error line and a non-zero exit.
            for (argv, want) in reads.argv.iter().zip(&reads.expected) {
                let got = f.evl(argv);
                if got.code == 0 {
                    assert_eq!(
                        (&got.stdout, &got.stderr),
                        (&want.stdout, &want.stderr),
                        "{case}: `evl {}` printed other data with exit 0",
                        argv.join(" ")
                    );
                } else {
                    refused += 1;
                    // (under --json the one line is JSON: docs/CLI-JSON.md)
                    assert_eq!(
                        got.stderr
                            .lines()
                            .filter(|l| l.starts_with("evl: ")
                                || l.starts_with("{\"schema\":\"evl.error/v1\""))
                            .count(),
                        1,
                        "{case}: `evl {}` failed without its one error line: {got:#?}",
                        argv.join(" ")
                    );
                    assert!(got.stdout.is_empty() || got.code == 1, "{case}: {got:#?}");
                }
            }
            // verify: never passes damaged index files it would not rebuild.
            let v = f.evl(["verify", "--json", "--no-state"]);
            if v.code == 0 {
                assert!(
                    matches!(d, Damage::Delete | Damage::Truncate(_))
                        || name == "format"
                        || name == "durable",
                    "{case}: verify passed a damaged index file: {v:#?}"
                );
                assert_eq!(v.json()["report"]["root"], verified["root"], "{case}");
                clean_verifies += 1;
            } else {
                assert_eq!(v.code, 1, "{case}: {v:#?}");
            }
            assert_eq!(
                std::fs::read(f.ledger().join("log")).unwrap(),
                log_before,
                "{case}: a reading verb changed the log"
            );

            // An append: refused with the log unchanged, or a commit the entries give.
            let file = f.file("new.txt", format!("after {case}\n").as_bytes());
            let add = f.evl([
                "add",
                file.to_str().unwrap(),
                "--kind",
                "note",
                "--tier",
                "excluded",
                "--key",
                &owner,
            ]);
            let log_after = std::fs::read(f.ledger().join("log")).unwrap();
            if add.code != 0 {
                assert_eq!(
                    log_after, log_before,
                    "{case}: a failed append changed the log"
                );
                assert_eq!(
                    add.stderr
                        .lines()
                        .filter(|l| l.starts_with("evl: "))
                        .count(),
                    1,
                    "{case}: {add:#?}"
                );
                continue;
            }
            assert!(
                log_after.starts_with(&log_before),
                "{case}: the append rewrote committed bytes"
            );
            let cp = f.path("after.note");
            let sign = f.evl(["checkpoint", "--key", &admin, "-o", cp.to_str().unwrap()]);
            // The log, read afresh without any index, gives what was committed and signed.
            std::fs::remove_dir_all(f.ledger().join("index")).unwrap();
            let v = f.evl(["verify", "--json", "--no-state"]);
            assert_eq!(
                v.code, 0,
                "{case}: the append turned index damage into log damage: {v:#?}"
            );
            assert_eq!(
                v.json()["report"]["size"],
                verified["size"].as_u64().unwrap() + 1,
                "{case}"
            );
            if sign.code == 0 {
                let v = f.evl(["verify", "--checkpoint", cp.to_str().unwrap(), "--no-state"]);
                assert_eq!(
                    v.code, 0,
                    "{case}: a checkpoint signed after the damage does not verify: {v:#?}"
                );
            }
        }
    }
    eprintln!(
        "derived damage: {cases} damaged copies of {} index files, {} reads each, {refused} \
         refused, none wrong; verify passed {clean_verifies} (missing or cut files, format tag, mark)",
        files.len(),
        reads.argv.len()
    );
    assert!(cases >= 60, "only {cases} cases");
}
