//! evl's Ed25519 signature rule (docs/FORMAT.md §"Signature validity") on published edge-case
//! vectors, through both of evl's checks — the single `keys::verify` (appends of entries signed
//! elsewhere, bundles, checkpoints) and the batch `batch_verify::verify` (`evl verify`) — each
//! case alone and mixed into a batch of valid signatures; then on crafted ledger entries, through
//! the writer (`append_signed`) and the verifier (`verify::verify`) of a real ledger.
//!
//! Vectors: tests/vectors/ed25519-speccheck (the 12 cases of "Taming the many EdDSAs") and
//! tests/vectors/ed25519-cctv (C2SP's 914 point edge cases, a superset of the ZIP 215 small-order
//! set); their SOURCE.md files say where they come from.

mod common;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use ed25519_dalek::{SigningKey, VerifyingKey};
use evl::batch_verify::{self, Item};
use evl::checkpoint;
use evl::digest::Digest;
use evl::entry::{
    Annotation, AnnotationKind, ENTRY_FORMAT, Entry, KeyGrant, Payload, Scope, UnsignedEntry,
    signature_message,
};
use evl::keys::{self, PublicKey, Role, SecretKey, SignatureBytes};
use evl::store::{Draft, Ledger, OpenOptions};
use evl::timestamp::Timestamp;
use serde_json::Value;
use sha2::{Digest as _, Sha512};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");

/// One signature to judge.
struct Case {
    name: String,
    key: [u8; 32],
    message: Vec<u8>,
    signature: [u8; 64],
}

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).unwrap_or_else(|e| panic!("{s}: {e}"));
    out
}

fn load(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{VECTORS}/{path}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// 24 valid signatures over entry-signature messages under 3 keys.
fn valid_signatures() -> Vec<(VerifyingKey, Vec<u8>, [u8; 64])> {
    let signers: Vec<SigningKey> = (1..=3u8)
        .map(|k| SigningKey::from_bytes(&[k; 32]))
        .collect();
    (0..24u8)
        .map(|i| {
            let key = &signers[i as usize % 3];
            let message = signature_message(&Digest::of(&[i]));
            let sig = ed25519_dalek::Signer::sign(key, &message).to_bytes();
            (key.verifying_key(), message, sig)
        })
        .collect()
}

/// evl's verdict on `case` by the single check, and by the batch check alone and at position
/// `at` among valid signatures; panics unless all three agree. A key that does not decompress
/// cannot enter a batch: `evl verify` then checks that signature alone (src/verify.rs), so the
/// batch verdict for it is the single one's.
fn verdict(case: &Case, valid: &[(VerifyingKey, Vec<u8>, [u8; 64])], at: usize) -> bool {
    let single = keys::verify(
        &PublicKey(Digest(case.key)),
        &case.message,
        &SignatureBytes(case.signature),
    );
    let Ok(vk) = VerifyingKey::from_bytes(&case.key) else {
        assert!(!single, "{}: an undecodable key verified", case.name);
        return single;
    };
    let item = Item {
        key: &vk,
        message: &case.message,
        signature: &case.signature,
    };
    let alone = batch_verify::verify(std::slice::from_ref(&item));
    let mut items: Vec<Item> = valid
        .iter()
        .map(|(key, message, signature)| Item {
            key,
            message,
            signature,
        })
        .collect();
    items.insert(at % (valid.len() + 1), item);
    let mixed = batch_verify::verify(&items);
    assert_eq!(
        (alone, mixed),
        (single, single),
        "{}: single {single}, batch alone {alone}, in a batch {mixed}",
        case.name
    );
    single
}

/// dalek's `verify_strict` (cofactorless; the append path's check before this rule).
fn verify_strict(case: &Case) -> bool {
    VerifyingKey::from_bytes(&case.key).is_ok_and(|vk| {
        vk.verify_strict(&case.message, &case.signature.into())
            .is_ok()
    })
}

#[test]
fn taming_the_many_eddsas_vectors_get_evls_verdict_on_both_paths() {
    // (evl's verdict, why; dalek verify_strict's verdict as the paper's table publishes it)
    let expected: [(bool, &str, bool); 12] = [
        (
            false,
            "S = 0, A and R of small order: A is of small order",
            false,
        ),
        (
            false,
            "A of small order (R mixed): A is of small order",
            false,
        ),
        (
            false,
            "R of small order (A mixed): R is of small order",
            false,
        ),
        (
            true,
            "A and R mixed, both equations hold: cofactored holds",
            true,
        ),
        (
            true,
            "A and R mixed, only the cofactored equation holds",
            false,
        ),
        (
            true,
            "A mixed, R of order ℓ; fails only if 8h is reduced mod ℓ first",
            false,
        ),
        (
            false,
            "S ≥ ℓ (S + ℓ of a valid S): S is not canonical",
            false,
        ),
        (false, "S ≫ ℓ (top bits set): S is not canonical", false),
        (false, "R non-canonical (x = −0) and of small order", false),
        (
            false,
            "R non-canonical, hashed as given: R non-canonical, small order",
            false,
        ),
        (false, "A non-canonical (x = −0) and of small order", false),
        (
            false,
            "A non-canonical, hashed as given: A non-canonical, small order",
            false,
        ),
    ];
    let cases = load("ed25519-speccheck/cases.json");
    assert_eq!(cases.len(), 12);
    let valid = valid_signatures();
    for (i, (c, (want, why, strict))) in cases.iter().zip(expected).enumerate() {
        let case = Case {
            name: format!("speccheck case {i} ({why})"),
            key: unhex(c["pub_key"].as_str().unwrap()),
            message: hex::decode(c["message"].as_str().unwrap()).unwrap(),
            signature: unhex(c["signature"].as_str().unwrap()),
        };
        assert_eq!(verdict(&case, &valid, i * 2), want, "{}", case.name);
        assert_eq!(verify_strict(&case), strict, "dalek on {}", case.name);
    }
}

#[test]
fn cctv_vectors_are_valid_exactly_without_a_small_order_point() {
    let vectors = load("ed25519-cctv/ed25519vectors.json");
    assert_eq!(vectors.len(), 914);
    let valid = valid_signatures();
    let (mut accepted, mut residue_accepted) = (0, 0);
    for v in &vectors {
        let flags: Vec<&str> = v["flags"]
            .as_array()
            .map(|f| f.iter().map(|f| f.as_str().unwrap()).collect())
            .unwrap_or_default();
        let has = |f: &str| flags.contains(&f);
        let n = v["number"].as_u64().unwrap();
        let case = Case {
            name: format!("CCTV vector {n} {flags:?}"),
            key: unhex(v["key"].as_str().unwrap()),
            message: v["msg"].as_str().unwrap().as_bytes().to_vec(),
            signature: unhex(v["sig"].as_str().unwrap()),
        };
        // Every vector satisfies the cofactored equation; evl refuses a small-order A or R
        // (every non-canonical encoding among them is of a small-order point) and nothing else.
        let want = !has("low_order_A") && !has("low_order_R");
        let got = verdict(&case, &valid, n as usize);
        assert_eq!(got, want, "{}", case.name);
        accepted += got as u32;
        // Where evl and the cofactorless verify_strict differ: a low-order residue, only.
        if got != verify_strict(&case) {
            assert!(got && has("low_order_residue"), "{}", case.name);
            residue_accepted += 1;
        }
    }
    assert_eq!((accepted, residue_accepted), (106, 63));
}

/// The secret scalar `a` of `key` (A = a·B), to make signatures with a chosen `R`.
fn secret_scalar(key: &SecretKey) -> Scalar {
    let h = Sha512::digest(key.signing_key().unwrap().to_bytes());
    let a = Scalar::from_bytes_mod_order(clamp_integer(h[..32].try_into().unwrap()));
    assert_eq!(
        &(a * ED25519_BASEPOINT_POINT).compress().0,
        key.public().bytes()
    );
    a
}

/// A signature of `message` by `key` whose first half is the point `R = r·B + torsion`, and
/// whose `s = r + h·a` (so the cofactored equation holds whatever `torsion` is).
#[allow(non_snake_case)]
fn crafted(key: &SecretKey, message: &[u8], r: Scalar, torsion: EdwardsPoint) -> SignatureBytes {
    let R = (r * ED25519_BASEPOINT_POINT + torsion).compress().0;
    let h = Scalar::from_hash(
        Sha512::new()
            .chain_update(R)
            .chain_update(key.public().bytes())
            .chain_update(message),
    );
    let s = r + h * secret_scalar(key);
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&R);
    sig[32..].copy_from_slice(s.as_bytes());
    SignatureBytes(sig)
}

/// The signatures of `message` by `key` the writer/verifier test tries, named, with evl's
/// verdict: the honest one, one with a mixed-order R (valid: only the cofactored equation
/// holds), one with a small-order R (cofactored equation holds, refused), a flipped one.
fn crafted_variants(key: &SecretKey, message: &[u8]) -> Vec<(&'static str, SignatureBytes, bool)> {
    let honest = key.sign(message);
    let mut flipped = honest;
    flipped.0[50] ^= 4;
    let order_8 = EIGHT_TORSION[1];
    let order_4 = EIGHT_TORSION[2];
    vec![
        ("honest", honest, true),
        (
            "mixed-order R",
            crafted(key, message, Scalar::from(77u64), order_8),
            true,
        ),
        (
            "order-4 residue",
            crafted(key, message, Scalar::from(78u64), order_4),
            true,
        ),
        (
            "small-order R",
            crafted(key, message, Scalar::ZERO, order_8),
            false,
        ),
        ("flipped s", flipped, false),
    ]
}

fn annotation(genesis: Digest, signer: &SecretKey, text: &str) -> UnsignedEntry {
    UnsignedEntry {
        format: ENTRY_FORMAT,
        ledger: genesis,
        signer: signer.public().id(),
        claimed_at: Timestamp(1_776_470_500),
        payload: Payload::Annotation(Annotation {
            subject: Digest::of(b"subject"),
            kind: AnnotationKind::Note,
            scope: Scope::default(),
            text: text.into(),
        }),
    }
}

/// A ledger with an admin and a reviewer key, and its genesis id.
fn ledger(dir: &std::path::Path, admin: &SecretKey, reviewer: &SecretKey) -> (Ledger, Digest) {
    let grant = |name: &str, key: &SecretKey, role| KeyGrant {
        name: name.into(),
        public_key: key.public(),
        roles: vec![role],
    };
    let at = Timestamp(1_776_470_400);
    let l = Ledger::init(
        dir,
        common::ORIGIN,
        vec![grant("admin", admin, Role::Admin)],
        admin,
        at,
    )
    .unwrap();
    let payload = Payload::KeyAdd(grant("reviewer", reviewer, Role::Reviewer));
    let draft = Draft {
        payload,
        claimed_at: at,
        blobs: vec![],
    };
    l.append(draft, admin).unwrap();
    let genesis = l.genesis_id().unwrap();
    (l, genesis)
}

/// For each crafted signature on an entry: the writer (`append_signed`, which checks entries
/// signed elsewhere) accepts it exactly when `evl verify` (the batch equation, then single
/// checks to name the culprit) accepts the same entry found in the log.
#[test]
fn the_writer_and_the_verifier_accept_the_same_entry_signatures() {
    let admin = SecretKey::from_seed([21; 32]);
    let reviewer = SecretKey::from_seed([22; 32]);
    let tmp = tempfile::tempdir().unwrap();
    // Every fresh ledger here has the same genesis, so the same entry and message.
    let (_, genesis) = ledger(&tmp.path().join("first"), &admin, &reviewer);
    let body = annotation(genesis, &reviewer, "signed elsewhere");
    let message = signature_message(&body.id());
    for (name, signature, want) in crafted_variants(&reviewer, &message) {
        // The writer, on a fresh ledger.
        let dir = tmp
            .path()
            .join(format!("writer-{}", name.replace(' ', "-")));
        let (l, _) = ledger(&dir, &admin, &reviewer);
        let appended = l.append_signed(vec![(
            Entry {
                body: body.clone(),
                signature,
            },
            vec![],
        )]);
        assert_eq!(appended.is_ok(), want, "writer on {name}: {appended:?}");
        // The verifier, on a ledger whose entry 2 carries the signature (appended honestly,
        // then its signature swapped and the log re-sealed as a careful forger would).
        let dir = tmp
            .path()
            .join(format!("verifier-{}", name.replace(' ', "-")));
        let (l, _) = ledger(&dir, &admin, &reviewer);
        l.append_signed(vec![(Entry::sign(body.clone(), &reviewer), vec![])])
            .unwrap();
        drop(l);
        let mut entries = 0;
        common::store::rewrite(&dir, |tag, record| {
            if tag != common::store::ENTRY {
                return Some(record.to_vec());
            }
            entries += 1;
            let mut record = record.to_vec();
            if entries == 3 {
                let at = record.len() - 64;
                record[at..].copy_from_slice(&signature.0);
            }
            Some(record)
        });
        let l = Ledger::open(&dir, &OpenOptions::default()).unwrap();
        let report = evl::verify::verify(&l, &Default::default()).unwrap();
        assert_eq!(report.ok(), want, "verify on {name}: {:?}", report.failures);
        if !want {
            assert!(
                report
                    .failures
                    .iter()
                    .any(|f| f.index == Some(2) && f.reason.contains("signature")),
                "{name}: {:?}",
                report.failures
            );
        }
    }
}

/// A checkpoint note's signature is judged by the same rule (not the note library's own,
/// which accepts a small-order key), against the ledger's admin keys or a verifier key the
/// auditor holds.
#[test]
fn checkpoint_signatures_follow_the_same_rule() {
    let origin = common::ORIGIN;
    let admin = SecretKey::from_seed([23; 32]);
    let root = evl::merkle::leaf_hash(b"checkpointed");
    let body = checkpoint::body(origin, 5, root);
    let note = |key: &[u8; 32], sig: &SignatureBytes| {
        let id = checkpoint::note_key_id(origin, &PublicKey(Digest(*key)));
        let mut line = id.to_be_bytes().to_vec();
        line.extend(sig.0);
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(line);
        let mut n = body.clone();
        n.extend(format!("\n\u{2014} {origin} {b64}\n").as_bytes());
        n
    };
    // An auditor's verifier key (`--verifier-key`) checks a note by the same rule.
    let trusted: checkpoint::VerifierKey = checkpoint::verifier_key(origin, &admin.public())
        .parse()
        .unwrap();
    for (name, sig, want) in crafted_variants(&admin, &body) {
        let n = note(admin.public().bytes(), &sig);
        let opened = checkpoint::open(&n, origin, &[admin.public()]);
        assert_eq!(opened.is_ok(), want, "{name}: {opened:?}");
        assert_eq!(trusted.signed(&n), want, "verifier key on {name}");
        assert_eq!(keys::verify(&admin.public(), &body, &sig), want, "{name}");
    }
    // Under the identity key, (R = s·B, s) satisfies any equation for any message; the note
    // library's own verifier accepts it.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let s = Scalar::from(4242u64);
    let mut forged = [0u8; 64];
    forged[..32].copy_from_slice(&(s * ED25519_BASEPOINT_POINT).compress().0);
    forged[32..].copy_from_slice(s.as_bytes());
    let forged = SignatureBytes(forged);
    let identity_key = PublicKey(Digest(identity));
    let opened = checkpoint::open(&note(&identity, &forged), origin, &[identity_key]);
    assert!(opened.is_err(), "{opened:?}");
    let vkey = checkpoint::verifier_key(origin, &identity_key);
    let held: checkpoint::VerifierKey = vkey.parse().unwrap();
    assert!(!held.signed(&note(&identity, &forged)));
    let lax = signed_note::StandardVerifier::new(&vkey).unwrap();
    assert!(signed_note::Verifier::verify(&lax, &body, &forged.0));
}
