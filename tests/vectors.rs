//! Checks the code against the published test vectors in tests/vectors/ (docs/FORMAT.md).
//!
//! The vectors are fixed bytes: if the encoding, id derivation, signature message, key id,
//! leaf hashing or checkpoint format changes, this test fails. Regenerate them only together
//! with a new format version: `EVL_WRITE_VECTORS=1 cargo test --test vectors`.

use std::collections::BTreeMap;

use evl::checkpoint;
use evl::digest::Digest;
use evl::entry::*;
use evl::keys::{Role, SecretKey};
use evl::merkle;
use evl::timestamp::Timestamp;
use serde_json::{Value, json};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/format-v1.json");

fn entries(admin: &SecretKey, owner: &SecretKey) -> Vec<(String, SecretKey, UnsignedEntry)> {
    let t = Timestamp(1_776_470_400); // 2026-04-18T00:00:00Z
    let genesis = UnsignedEntry {
        format: ENTRY_FORMAT,
        ledger: Digest::ZERO,
        signer: admin.public().id(),
        claimed_at: t,
        payload: Payload::Genesis(Genesis {
            origin: "example.org/mesh-gate".into(),
            admins: vec![KeyGrant {
                name: "admin".into(),
                public_key: admin.public(),
                roles: vec![Role::Admin],
            }],
        }),
    };
    let gid = genesis.id();
    let add = UnsignedEntry {
        format: ENTRY_FORMAT,
        ledger: gid,
        signer: admin.public().id(),
        claimed_at: t.plus_seconds(60),
        payload: Payload::KeyAdd(KeyGrant {
            name: "hana-okafor".into(),
            public_key: owner.public(),
            roles: vec![Role::Owner, Role::Reviewer],
        }),
    };
    let artifact = UnsignedEntry {
        format: ENTRY_FORMAT,
        ledger: gid,
        signer: owner.public().id(),
        claimed_at: t.plus_seconds(120),
        payload: Payload::Artifact(ArtifactMeta {
            content: Digest::of(b"namespace,workload\npayments,payments-api\n"),
            size: 41,
            kind: "workload-inventory".into(),
            file_name: "targets.csv".into(),
            tier: Tier::Authoritative,
            captured_at: t,
            valid_until: Some(t.plus_seconds(14 * 86_400)),
            scope: Scope {
                namespaces: vec!["payments".into()],
                workloads: vec![],
            },
            sealed: true,
            supersedes: None,
            labels: BTreeMap::from([("window".to_string(), "2026-04".to_string())]),
            facts: Some(ParsedFacts {
                parser: "workload-inventory".into(),
                parser_version: 1,
                digest: Digest::of(b"{\"rows\":[]}"),
            }),
        }),
    };
    let ack_subject = artifact.id();
    let annotation = UnsignedEntry {
        format: ENTRY_FORMAT,
        ledger: gid,
        signer: owner.public().id(),
        claimed_at: t.plus_seconds(180),
        payload: Payload::Annotation(Annotation {
            subject: ack_subject,
            kind: AnnotationKind::Concern,
            scope: Scope::default(),
            text: "drill is stale".into(),
        }),
    };
    vec![
        (
            "genesis".into(),
            SecretKey::demo_from_phrase("evl test vector: admin"),
            genesis,
        ),
        (
            "key-add".into(),
            SecretKey::demo_from_phrase("evl test vector: admin"),
            add,
        ),
        (
            "artifact".into(),
            SecretKey::demo_from_phrase("evl test vector: owner"),
            artifact,
        ),
        (
            "annotation".into(),
            SecretKey::demo_from_phrase("evl test vector: owner"),
            annotation,
        ),
    ]
}

fn build() -> Value {
    let admin = SecretKey::demo_from_phrase("evl test vector: admin");
    let owner = SecretKey::demo_from_phrase("evl test vector: owner");
    let keys: Vec<Value> = [("admin", "evl test vector: admin", &admin), ("owner", "evl test vector: owner", &owner)]
        .iter()
        .map(|(name, phrase, k)| {
            json!({
                "name": name,
                "seed_phrase": phrase,
                "seed": Digest::of(phrase.as_bytes()).to_hex(),
                "public_key": k.public().to_string(),
                "key_id": k.public().id().to_string(),
                "note_key_id": format!("{:08x}", checkpoint::note_key_id("example.org/mesh-gate", &k.public())),
                "verifier_key": checkpoint::verifier_key("example.org/mesh-gate", &k.public()),
            })
        })
        .collect();
    let mut out_entries = Vec::new();
    let mut leaves = Vec::new();
    for (name, key, body) in entries(&admin, &owner) {
        let unsigned = body.canonical_bytes();
        let id = body.id();
        let e = Entry::sign(body, &key);
        let stored = e.to_bytes().unwrap();
        let leaf = merkle::leaf_hash(&stored);
        leaves.push(leaf);
        out_entries.push(json!({
            "name": name,
            "fields": serde_json::to_value(&e.body).unwrap(),
            "unsigned_hex": hex::encode(&unsigned),
            "id": id.to_hex(),
            "signature_message_hex": hex::encode(signature_message(&id)),
            "signature": hex::encode(e.signature.0),
            "stored_hex": hex::encode(&stored),
            "leaf_hash": merkle::hex(&leaf),
        }));
    }
    let tree = merkle::build(&leaves);
    let size = leaves.len() as u64;
    let root = merkle::root(size, &tree).unwrap();
    let proofs: Vec<Value> = (0..size)
        .map(|i| {
            json!({"leaf_index": i, "tree_size": size,
                   "hashes": merkle::prove_inclusion(size, i, &tree).unwrap().iter().map(merkle::hex).collect::<Vec<_>>()})
        })
        .collect();
    let consistency = json!({
        "old_size": 2, "old_root": merkle::hex(&merkle::root(2, &tree).unwrap()), "tree_size": size,
        "hashes": merkle::prove_consistency(size, 2, &tree).unwrap().iter().map(merkle::hex).collect::<Vec<_>>(),
    });
    let note = checkpoint::sign("example.org/mesh-gate", size, root, &admin);
    json!({
        "format": "evl entry format 1",
        "keys": keys,
        "entries": out_entries,
        "tree": {"size": size, "root": merkle::hex(&root), "inclusion": proofs, "consistency": consistency},
        "checkpoint": {"origin": "example.org/mesh-gate", "note": String::from_utf8(note).unwrap()},
    })
}

#[test]
fn code_matches_the_published_vectors() {
    let built = build();
    if std::env::var_os("EVL_WRITE_VECTORS").is_some() {
        std::fs::write(PATH, serde_json::to_string_pretty(&built).unwrap() + "\n").unwrap();
    }
    let stored: Value = serde_json::from_str(
        &std::fs::read_to_string(PATH).expect("tests/vectors/format-v1.json exists"),
    )
    .expect("vectors are JSON");
    for (a, b) in stored["entries"]
        .as_array()
        .unwrap()
        .iter()
        .zip(built["entries"].as_array().unwrap())
    {
        assert_eq!(
            a, b,
            "entry vector {} differs from what the code produces",
            a["name"]
        );
    }
    assert_eq!(stored, built, "vectors differ from what the code produces");
}

#[test]
fn vectors_decode_and_verify_from_bytes_alone() {
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    let keys = stored["keys"].as_array().unwrap();
    for v in stored["entries"].as_array().unwrap() {
        let bytes = hex::decode(v["stored_hex"].as_str().unwrap()).unwrap();
        let e = Entry::from_bytes(&bytes).unwrap();
        assert_eq!(e.id().to_hex(), v["id"].as_str().unwrap());
        let signer = keys
            .iter()
            .find(|k| k["key_id"] == e.body.signer.to_string())
            .unwrap();
        let (pk, _) = evl::keys::parse_public(&format!(
            "ed25519 {}",
            signer["public_key"].as_str().unwrap()
        ))
        .unwrap();
        assert!(e.signature_valid(&pk));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(!Entry::from_bytes(&flipped).unwrap().signature_valid(&pk));
    }
    let note = stored["checkpoint"]["note"].as_str().unwrap();
    let admin = evl::keys::parse_public(&format!(
        "ed25519 {}",
        keys[0]["public_key"].as_str().unwrap()
    ))
    .unwrap()
    .0;
    let cp = checkpoint::open(note.as_bytes(), "example.org/mesh-gate", &[admin]).unwrap();
    assert_eq!(
        merkle::hex(&cp.root),
        stored["tree"]["root"].as_str().unwrap()
    );
}
