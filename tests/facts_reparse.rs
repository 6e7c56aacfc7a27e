//! `evl verify` re-derives every artifact's recorded facts (docs/IMPORTERS.md): an artifact
//! whose recorded facts differ from a re-parse of its bytes, whose bytes no longer parse, or
//! whose facts no importer of its kind could have produced is named (exit 1, exactly that
//! entry). The entries are appended through the library by a registered owner, with honest
//! signatures — a signer who records facts `evl ingest` would not have parsed.

mod common;

use common::{Fixture, RICH_SIZE, rich};
use evl::digest::Digest;
use evl::entry::{ArtifactMeta, Payload, Scope, Tier};
use evl::ingest::{Importer, ParseOptions, parse_with};
use evl::store::{Draft, Ledger};
use evl::timestamp::Timestamp;

const INVENTORY: &[u8] = include_bytes!("fixtures/ingest/inventory.csv");

/// The inventory fixture with its first data row's owner changed: other facts.
fn other_inventory() -> Vec<u8> {
    let text = std::str::from_utf8(INVENTORY).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let fields: Vec<&str> = lines[1].split(',').collect();
    let owner_col = lines[0].split(',').position(|c| c == "owner").unwrap();
    let mut edited: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
    edited[owner_col] = "someone-else@example.com".into();
    lines[1] = edited.join(",");
    (lines.join("\n") + "\n").into_bytes()
}

/// Canonical facts JSON of `bytes` read as an inventory, and its record.
fn facts_of(bytes: &[u8]) -> (evl::entry::ParsedFacts, Vec<u8>) {
    let facts = parse_with(
        Importer::Inventory,
        "inventory.csv",
        bytes,
        &ParseOptions::default(),
    )
    .unwrap();
    evl::facts::record(&facts)
}

/// Appends an artifact of `kind` with `content`, claiming `facts` (stored beside it), signed
/// by owner-v2. Returns its entry index.
fn append_with_facts(
    f: &Fixture,
    kind: &str,
    content: &[u8],
    facts: (evl::entry::ParsedFacts, Vec<u8>),
) -> u64 {
    let key = evl::keys::read_secret(&f.key("owner-v2")).unwrap();
    let ledger = Ledger::open(&f.ledger(), &Default::default()).unwrap();
    let meta = ArtifactMeta {
        content: Digest::of(content),
        size: content.len() as u64,
        kind: kind.into(),
        file_name: "inventory.csv".into(),
        tier: Tier::Authoritative,
        captured_at: Timestamp(1_767_225_600),
        valid_until: None,
        scope: Scope::default(),
        sealed: false,
        supersedes: None,
        labels: Default::default(),
        facts: Some(facts.0),
    };
    let appended = ledger
        .append(
            Draft {
                payload: Payload::Artifact(meta),
                claimed_at: Timestamp(1_767_225_600),
                blobs: vec![content.to_vec(), facts.1],
            },
            &key,
        )
        .unwrap();
    appended.index
}

/// `evl verify` fails with exactly one failure: the artifact at `index`, for `why`.
fn verify_names(f: &Fixture, index: u64, why: &str) {
    let out = f.evl(["verify", "--json"]);
    assert_eq!(out.code, 1, "{why}: verified: {out:#?}");
    let failures = out.json()["report"]["failures"].clone();
    let failures = failures.as_array().unwrap();
    assert_eq!(failures.len(), 1, "{why}: {failures:#?}");
    assert_eq!(failures[0]["structure"], "artifact", "{failures:#?}");
    assert_eq!(failures[0]["index"], index, "{failures:#?}");
    let reason = failures[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("entry {index}: ")) && reason.contains(why),
        "{reason}"
    );
}

#[test]
fn facts_that_match_a_re_parse_verify() {
    // The control: the same path with honest facts, and `evl ingest` itself.
    let f = rich().copy();
    let index = append_with_facts(&f, "workload-inventory", INVENTORY, facts_of(INVENTORY));
    assert_eq!(index, RICH_SIZE);
    let file = f.file("inventory.csv", INVENTORY);
    f.evl([
        "ingest",
        "inventory",
        file.to_str().unwrap(),
        "--key",
        f.key("owner-v2").to_str().unwrap(),
    ])
    .ok();
    assert_eq!(f.verified()["size"], RICH_SIZE + 2);
}

#[test]
fn recorded_facts_that_differ_from_a_re_parse_are_named() {
    let f = rich().copy();
    let (recorded, json) = facts_of(&other_inventory());
    let now = facts_of(INVENTORY).0.digest;
    assert_ne!(recorded.digest, now);
    let index = append_with_facts(
        &f,
        "workload-inventory",
        INVENTORY,
        (recorded.clone(), json),
    );
    verify_names(
        &f,
        index,
        &format!(
            "re-parsing the artifact yields facts {} but {} were recorded",
            now.short(),
            recorded.digest.short()
        ),
    );
}

#[test]
fn recorded_facts_of_bytes_that_no_longer_parse_are_named() {
    let f = rich().copy();
    let index = append_with_facts(
        &f,
        "workload-inventory",
        b"this is not an inventory\n",
        facts_of(INVENTORY),
    );
    verify_names(
        &f,
        index,
        "re-parsing the artifact fails now: inventory.csv",
    );
}

#[test]
fn recorded_facts_no_importer_of_the_kind_produces_are_named() {
    // Facts on a kind no importer reads: nothing can re-derive them.
    let f = rich().copy();
    let index = append_with_facts(&f, "rollback-drill", INVENTORY, facts_of(INVENTORY));
    verify_names(&f, index, "kind 'rollback-drill'");

    // Facts that name another importer than the one that reads the artifact's kind.
    let f = rich().copy();
    let (mut record, json) = facts_of(INVENTORY);
    record.parser = "telemetry".into();
    let index = append_with_facts(&f, "workload-inventory", INVENTORY, (record, json));
    verify_names(&f, index, "parser 'telemetry'");
}
