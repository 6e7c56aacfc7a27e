//! The key-registry rules of docs/FORMAT.md §"Key registry rules", each held twice: `evl key`
//! refuses the entry (exit 3, one line naming the rule, the ledger byte for byte as it was),
//! and `evl verify` names the entry when a forger with the admin key and write access puts
//! it into the log anyway and re-seals it (exit 1, exactly one failure: that entry, that rule).
//!
//! The ledger is the rich fixture of tests/common (admin; owner rotated to owner-v2; reviewer;
//! security; contractor revoked at 15; stranger never registered).

mod common;

use std::path::Path;

use common::{Fixture, RICH_SIZE, rich, store};
use evl::digest::Digest;
use evl::entry::{Entry, KeyGrant, KeyRevoke, KeyRotate, Payload, UnsignedEntry};
use evl::keys::{PublicKey, Role, SecretKey, read_public, read_secret};
use evl::timestamp::Timestamp;

/// Small-order Ed25519 points (canonical encodings): the identity, the point of order 2 and
/// one of order 8. A key on one verifies "signatures" it never made under a batch equation.
const SMALL_ORDER: [&str; 3] = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
];

fn public(f: &Fixture, name: &str) -> PublicKey {
    read_public(&f.public(name)).unwrap().0
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs an `evl key …` command that must be refused: exit 3, one line naming the rule, and
/// the log, every other file and what a reader sees exactly as before.
fn refused(f: &Fixture, args: &[&str], rule: &str) {
    let before_log = std::fs::read(f.ledger().join("log")).unwrap();
    let before = f.snapshot();
    let out = f.evl(args);
    out.refused(3, &[rule]);
    assert_eq!(
        std::fs::read(f.ledger().join("log")).unwrap(),
        before_log,
        "{args:?} changed the log"
    );
    assert_eq!(f.snapshot(), before, "{args:?} changed what readers see");
}

#[test]
fn the_cli_refuses_every_registry_rule_and_changes_nothing() {
    let f = rich().copy();
    let admin = f.key("admin").display().to_string();

    // The last active admin cannot be revoked, whatever the reason says (a rotation, which
    // registers a successor, is the only way to retire it).
    for reason in ["x", "rotated to nowhere"] {
        refused(
            &f,
            &[
                "key", "revoke", "admin", "--reason", reason, "--key", &admin,
            ],
            "it is the last active admin key",
        );
    }
    // Small-order keys, in the `ed25519 <hex> <name>` public-key format.
    for (i, hex) in SMALL_ORDER.iter().enumerate() {
        let file = f.file(
            &format!("weak-{i}.pub"),
            format!("ed25519 {hex} weak\n").as_bytes(),
        );
        refused(
            &f,
            &[
                "key",
                "add",
                "weak",
                "--role",
                "owner",
                "--pub",
                p(&file),
                "--key",
                &admin,
            ],
            "small-order (weak) Ed25519 key",
        );
    }
    // A public key already registered, under another name: active (reviewer) or revoked
    // (contractor) — public keys are unique among all keys ever registered.
    for holder in ["reviewer", "contractor"] {
        refused(
            &f,
            &[
                "key",
                "add",
                "second",
                "--role",
                "owner",
                "--pub",
                p(&f.public(holder)),
                "--key",
                &admin,
            ],
            "is already registered",
        );
    }
    // The name of an active key.
    refused(
        &f,
        &[
            "key",
            "add",
            "reviewer",
            "--role",
            "reviewer",
            "--pub",
            p(&f.public("stranger")),
            "--key",
            &admin,
        ],
        "a key named 'reviewer' is already registered; rotate it instead",
    );
    // Revoking a revoked key.
    refused(
        &f,
        &[
            "key",
            "revoke",
            "contractor",
            "--reason",
            "again",
            "--key",
            &admin,
        ],
        "key 'contractor' is already revoked",
    );
    // Rotating a revoked key.
    refused(
        &f,
        &[
            "key",
            "rotate",
            "contractor",
            "--pub",
            p(&f.public("stranger")),
            "--key",
            &admin,
        ],
        "it is not an active key",
    );
    // Rotating to a key already registered.
    refused(
        &f,
        &[
            "key",
            "rotate",
            "reviewer",
            "--pub",
            p(&f.public("security")),
            "--key",
            &admin,
        ],
        "is already registered",
    );
    // Key entries need the admin role.
    refused(
        &f,
        &[
            "key",
            "add",
            "sneaky",
            "--role",
            "admin",
            "--pub",
            p(&f.public("stranger")),
            "--key",
            p(&f.key("owner-v2")),
        ],
        "lacks the admin role",
    );
    // A grant with no role cannot even be asked for: --role is required (a usage error, 2).
    let before_log = std::fs::read(f.ledger().join("log")).unwrap();
    let out = f.evl([
        "key",
        "add",
        "roleless",
        "--pub",
        p(&f.public("stranger")),
        "--key",
        &admin,
    ]);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("--role"), "{out:#?}");
    assert_eq!(std::fs::read(f.ledger().join("log")).unwrap(), before_log);

    // What the rules allow: a revoked key's name is free again ("active" names only).
    let out = f
        .evl([
            "key",
            "add",
            "contractor",
            "--role",
            "owner",
            "--pub",
            p(&f.public("stranger")),
            "--key",
            &admin,
        ])
        .ok();
    assert!(out.stdout.starts_with("key-add "), "{out:#?}");
    assert_eq!(f.verified()["size"], RICH_SIZE + 1);
}

/// An entry signed by the fixture's admin key, for this ledger, as evl would make it.
fn admin_signed(f: &Fixture, payload: Payload) -> Entry {
    let admin: SecretKey = read_secret(&f.key("admin")).unwrap();
    let genesis = Digest(
        hex::decode(
            f.evl(["log", "--kind", "genesis", "--json"]).ok().ndjson()[0]["id"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
        .try_into()
        .unwrap(),
    );
    Entry::sign(
        UnsignedEntry {
            format: evl::entry::ENTRY_FORMAT,
            ledger: genesis,
            signer: admin.public().id(),
            claimed_at: Timestamp(1_767_225_600),
            payload,
        },
        &admin,
    )
}

/// Puts `entry` into the log as the next entry, in a re-sealed batch with the registry
/// snapshot unchanged (the refused entry changes no key), then runs `evl verify`: it must
/// fail with exactly one failure, naming that entry and `rule`.
fn verify_names(f: &Fixture, entry: &Entry, rule: &str) {
    store::append_batch(
        &f.ledger(),
        &[
            (store::ENTRY, entry.to_bytes().unwrap()),
            (store::REGISTRY, store::latest_registry(&f.ledger())),
        ],
    );
    let out = f.evl(["verify", "--json"]);
    assert_eq!(
        out.code, 1,
        "a ledger holding a refused key entry verified: {out:#?}"
    );
    let v = out.json();
    let failures = v["report"]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{rule}: {failures:#?}");
    let fail = &failures[0];
    assert_eq!(fail["structure"], "entry", "{fail:#}");
    assert_eq!(fail["index"], RICH_SIZE, "{fail:#}");
    let reason = fail["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("entry {RICH_SIZE} ({})", entry.id().short()))
            && reason.contains(rule),
        "{rule}: {reason}"
    );
    // The text form says the same in one FAIL line and a summary.
    let text = f.evl(["verify"]);
    assert_eq!(text.code, 1);
    assert_eq!(
        text.stderr.lines().collect::<Vec<_>>(),
        [
            format!("FAIL entry: {reason}").as_str(),
            "evl: verification failed: 1 problem(s)"
        ],
        "{text:#?}"
    );
}

#[test]
fn verify_names_each_registry_rule_broken_in_a_resealed_log() {
    let base = rich();
    let grant = |name: &str, public_key: PublicKey, roles: Vec<Role>| KeyGrant {
        name: name.into(),
        public_key,
        roles,
    };
    let weak = |hex: &str| PublicKey(Digest(hex::decode(hex).unwrap().try_into().unwrap()));
    let cases: Vec<(Payload, String)> = vec![
        (
            Payload::KeyRevoke(KeyRevoke {
                key: public(base, "admin").id(),
                reason: "gone".into(),
            }),
            "refusing to revoke 'admin': it is the last active admin key".into(),
        ),
        (
            Payload::KeyRevoke(KeyRevoke {
                key: public(base, "admin").id(),
                reason: "rotated to 000000000000".into(),
            }),
            "refusing to revoke 'admin': it is the last active admin key".into(),
        ),
        (
            Payload::KeyAdd(grant("weak", weak(SMALL_ORDER[0]), vec![Role::Owner])),
            "key 'weak' is a small-order (weak) Ed25519 key".into(),
        ),
        (
            Payload::KeyAdd(grant("weak", weak(SMALL_ORDER[2]), vec![Role::Owner])),
            "key 'weak' is a small-order (weak) Ed25519 key".into(),
        ),
        (
            Payload::KeyAdd(grant("second", public(base, "reviewer"), vec![Role::Owner])),
            format!(
                "key {} is already registered",
                public(base, "reviewer").id().0.short()
            ),
        ),
        (
            Payload::KeyAdd(grant(
                "second",
                public(base, "contractor"),
                vec![Role::Owner],
            )),
            format!(
                "key {} is already registered",
                public(base, "contractor").id().0.short()
            ),
        ),
        (
            Payload::KeyAdd(grant(
                "reviewer",
                public(base, "stranger"),
                vec![Role::Reviewer],
            )),
            "a key named 'reviewer' is already registered; rotate it instead".into(),
        ),
        (
            Payload::KeyAdd(grant("roleless", public(base, "stranger"), vec![])),
            "key 'roleless' is given no role".into(),
        ),
        (
            Payload::KeyRevoke(KeyRevoke {
                key: public(base, "contractor").id(),
                reason: "again".into(),
            }),
            "key 'contractor' is already revoked".into(),
        ),
        (
            Payload::KeyRotate(KeyRotate {
                old: public(base, "contractor").id(),
                new_key: public(base, "stranger"),
            }),
            "it is not an active key".into(),
        ),
        (
            Payload::KeyRotate(KeyRotate {
                old: public(base, "reviewer").id(),
                new_key: public(base, "security"),
            }),
            format!(
                "key {} is already registered",
                public(base, "security").id().0.short()
            ),
        ),
        (
            Payload::KeyRevoke(KeyRevoke {
                key: public(base, "stranger").id(),
                reason: "never here".into(),
            }),
            format!(
                "key {} is not registered",
                public(base, "stranger").id().0.short()
            ),
        ),
    ];
    for (payload, rule) in cases {
        let rule = rule.as_str();
        let f = base.copy();
        let entry = admin_signed(&f, payload);
        // evl itself refuses to append it (the same rule, exit 3 through the CLI above) ...
        let ledger = evl::store::Ledger::open(&f.ledger(), &Default::default()).unwrap();
        let err = ledger
            .append_signed(vec![(entry.clone(), vec![])])
            .expect_err(rule)
            .to_string();
        assert!(err.contains(rule), "append: {rule}: {err}");
        drop(ledger);
        // ... and verify names it when it is put there behind evl's back.
        verify_names(&f, &entry, rule);
    }
}

#[test]
fn a_resealed_log_with_a_valid_admin_key_entry_verifies() {
    // The control for the test above: the same forgery path with an entry the rules allow
    // (a new key under a revoked key's name) verifies, so the failures above are the rules'.
    let f = rich().copy();
    let entry = admin_signed(
        &f,
        Payload::KeyAdd(KeyGrant {
            name: "contractor".into(),
            public_key: public(&f, "stranger"),
            roles: vec![Role::Owner],
        }),
    );
    // The snapshot after it: every key state, the new one added at position 17.
    let ledger = evl::store::Ledger::open(&f.ledger(), &Default::default()).unwrap();
    let mut registry = ledger.registry().unwrap();
    drop(ledger);
    registry.apply(&entry, RICH_SIZE).unwrap();
    let states: Vec<&evl::registry::KeyState> = registry.keys().values().collect();
    store::append_batch(
        &f.ledger(),
        &[
            (store::ENTRY, entry.to_bytes().unwrap()),
            (store::REGISTRY, evl::codec::encode(&states)),
        ],
    );
    let v = f.verified();
    assert_eq!(v["size"], RICH_SIZE + 1, "{v:#}");
}
