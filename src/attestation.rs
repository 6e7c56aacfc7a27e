//! A recorded disposition as an in-toto attestation (docs/ATTESTATIONS.md): an in-toto
//! Statement v1 whose predicate is shaped like SLSA's Verification Summary Attestation v1,
//! plus evl's own verdict, blockers and scope, signed in a DSSE envelope with an evl key.
//!
//! Every byte is a function of the ledger's entries and the key: the statement and the envelope
//! are RFC 8785 (JCS) JSON, the time is the disposition's as-of time (never the clock), lists
//! are sorted, and Ed25519 signing is deterministic. Every digest set carries `sha256` beside
//! `blake3`, both computed over the same bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::digest::{Digest, EntryId};
use crate::disposition::{Disposition, Verdict};
use crate::entry::{Entry, Payload};
use crate::error::Error;
use crate::keys::SecretKey;
use crate::store::Ledger;

/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type: SLSA Verification Summary Attestation v1.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";
/// The DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The version of the `evl` member of the predicate.
pub const EVL_PREDICATE_FORMAT: &str = "evl-attestation/v1";

/// `{"blake3": …, "sha256": …}` of `bytes`.
fn digest_set(bytes: &[u8]) -> Value {
    json!({
        "blake3": Digest::of(bytes).to_hex(),
        "sha256": hex::encode(Sha256::digest(bytes)),
    })
}

/// The digest set of an entry: its id is BLAKE3 of its canonical unsigned bytes, so both
/// digests are over those bytes.
fn entry_digests(e: &Entry) -> Value {
    digest_set(&e.body.canonical_bytes())
}

/// An entry's URI: `evl:<origin>/entry/<id hex>`.
fn entry_uri(origin: &str, id: &EntryId) -> String {
    format!("evl:{origin}/entry/{}", id.to_hex())
}

/// The VSA verification result a verdict maps to: only PROCEED passes; HOLD, NARROW (the
/// packet as pinned does not pass; a narrower one might) and ESCALATE fail.
pub fn verification_result(v: Verdict) -> &'static str {
    match v {
        Verdict::Proceed => "PASSED",
        Verdict::Hold | Verdict::Narrow | Verdict::Escalate => "FAILED",
    }
}

/// The statement of disposition entry `id`, as RFC 8785 bytes.
pub fn statement(ledger: &Ledger, id: &EntryId) -> Result<Vec<u8>, Error> {
    let origin = ledger.origin()?;
    let (_, entry) = ledger.entry_by_id(id)?;
    let Payload::Disposition(rec) = &entry.body.payload else {
        return Err(Error::Invalid(format!(
            "entry {id} is a {} entry, not a disposition",
            entry.body.payload.kind()
        )));
    };
    let doc = ledger.blob(&rec.document)?.ok_or_else(|| {
        Error::Corrupt(format!("disposition document {} is missing", rec.document))
    })?;
    let d = Disposition::from_bytes(&doc).map_err(|e| Error::Corrupt(e.to_string()))?;
    let (_, packet_entry) = ledger.entry_by_id(&d.packet)?;
    let Payload::Packet(packet) = &packet_entry.body.payload else {
        return Err(Error::Corrupt(format!(
            "entry {} is not a packet",
            d.packet
        )));
    };
    let (_, gate_entry) = ledger.entry_by_id(&d.gate)?;
    let Payload::Artifact(gate) = &gate_entry.body.payload else {
        return Err(Error::Corrupt(format!(
            "entry {} is not an artifact",
            d.gate
        )));
    };
    let gate_bytes = ledger
        .blob(&gate.content)?
        .ok_or_else(|| Error::Corrupt(format!("gate definition {} is missing", gate.content)))?;
    let mut basis = packet.basis.clone();
    basis.sort();
    basis.dedup();
    let mut inputs = Vec::new();
    for b in &basis {
        let (_, e) = ledger.entry_by_id(b)?;
        inputs.push(json!({"uri": entry_uri(&origin, b), "digest": entry_digests(&e)}));
    }
    let result = verification_result(d.verdict);
    let levels: Vec<String> = if result == "PASSED" {
        vec![format!("EVL_GATE_{}", d.gate_id)]
    } else {
        vec![]
    };
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{
            "name": format!("{} revision {}", d.packet_name, d.revision),
            "uri": entry_uri(&origin, &d.packet),
            "digest": entry_digests(&packet_entry),
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "verifier": {
                "id": format!("urn:evl:verifier:{}", d.engine_version),
                "version": {"evl-engine": d.engine_version},
            },
            "timeVerified": d.as_of.to_string(),
            "resourceUri": entry_uri(&origin, &d.packet),
            "policy": {
                "uri": entry_uri(&origin, &d.gate),
                "digest": digest_set(&gate_bytes),
            },
            "inputAttestations": inputs,
            "verificationResult": result,
            "verifiedLevels": levels,
            "evl": {
                "format": EVL_PREDICATE_FORMAT,
                "origin": origin,
                "disposition": {
                    "entry": id.to_hex(),
                    "uri": entry_uri(&origin, id),
                    "entry_digest": entry_digests(&entry),
                    "document_digest": digest_set(&doc),
                    "format": d.format,
                },
                "gate_id": d.gate_id,
                "checkpoint_at": d.checkpoint_at.to_string(),
                "basis_digest": d.basis_digest.to_hex(),
                "verdict": d.verdict.name(),
                "would_be": d.would_be.map(Verdict::name),
                "escalation": d.escalation,
                "blockers": d.blockers,
                "scope": d.scope,
            },
        },
    });
    serde_json_canonicalizer::to_vec(&statement)
        .map_err(|e| Error::Invalid(format!("cannot encode the statement: {e}")))
}

/// DSSE's pre-authentication encoding of (`payload_type`, `payload`).
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    m.extend_from_slice(payload);
    m
}

/// The DSSE envelope of `statement` signed by `key`, as RFC 8785 bytes and one final `\n`
/// (one line of an `.intoto.jsonl` file). The signature's `keyid` is the evl key id.
pub fn envelope(statement: &[u8], key: &SecretKey) -> Result<Vec<u8>, crate::keys::KeyError> {
    let sig = key.try_sign(&pae(PAYLOAD_TYPE, statement))?;
    let env = json!({
        "payloadType": PAYLOAD_TYPE,
        "payload": STANDARD.encode(statement),
        "signatures": [{"keyid": key.public().id().0.to_hex(), "sig": STANDARD.encode(sig.0)}],
    });
    let mut out = serde_json_canonicalizer::to_vec(&env).expect("envelope: JCS encoding");
    out.push(b'\n');
    Ok(out)
}
