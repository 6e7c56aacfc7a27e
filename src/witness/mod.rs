//! Witness cosigning (docs/WITNESS.md): C2SP tlog-cosignature/v1 cosignatures (Ed25519,
//! timestamped), the C2SP tlog-witness `add-checkpoint` request, a witness server that keeps
//! its state on disk, a client that collects cosignatures, and witness policies in Sigsum's
//! policy file format.
//!
//! A cosignature is a signed-note signature line `— <witness name> base64(key id || timestamp
//! || signature)`: key id SHA-256(name || "\n" || 0x04 || public key)[:4], timestamp a
//! big-endian u64 of POSIX seconds, signature Ed25519 over "cosignature/v1\ntime <t>\n"
//! followed by the checkpoint's note body (<https://c2sp.org/tlog-cosignature>).

pub mod client;
pub mod policy;
pub mod server;

use base64::Engine as _;
use signed_note::{Note, NoteError, Verifier, VerifierList};

use crate::digest::Digest;
use crate::keys::{self, PublicKey, SecretKey, SignatureBytes};
use crate::merkle::{Hash, TreeSize};

/// The signed-note signature type of an Ed25519 cosignature/v1.
pub const COSIGNATURE_V1: u8 = 0x04;

/// The most consistency proof lines an add-checkpoint request may carry.
pub const MAX_PROOF_LINES: usize = 63;

/// The media type of a 409 Conflict body.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The cosigner key id of `public` under witness name `name`.
pub fn key_id(name: &str, public: &PublicKey) -> u32 {
    signed_note::key_id(name, &[&[COSIGNATURE_V1][..], public.bytes()].concat())
}

/// The witness verifier key `<name>+<hex key id>+base64(0x04 || public key)`, as the
/// signed-note spec encodes cosigner keys (the same text aics-witness and others print).
pub fn vkey(name: &str, public: &PublicKey) -> String {
    format!(
        "{name}+{:08x}+{}",
        key_id(name, public),
        b64().encode([&[COSIGNATURE_V1][..], public.bytes()].concat())
    )
}

/// A witness verifier key parsed back into (name, public key); `None` if it is not a
/// well-formed cosignature/v1 key whose id matches.
pub fn parse_vkey(text: &str) -> Option<(String, PublicKey)> {
    let mut parts = text.trim().splitn(3, '+');
    let (name, id, key) = (parts.next()?, parts.next()?, parts.next()?);
    if !signed_note::is_key_name_valid(name) || id.len() != 8 {
        return None;
    }
    let id = u32::from_str_radix(id, 16).ok()?;
    let raw = b64().decode(key).ok()?;
    let (&alg, key) = raw.split_first()?;
    let key: [u8; 32] = key.try_into().ok()?;
    let public = PublicKey(Digest(key));
    (alg == COSIGNATURE_V1 && public.verifying_key().is_some() && key_id(name, &public) == id)
        .then(|| (name.to_string(), public))
}

/// The message a cosignature/v1 signs at `time` over the note body `body`.
fn message(time: u64, body: &[u8]) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {time}\n").into_bytes();
    m.extend_from_slice(body);
    m
}

/// The cosignature line (ending in a newline) by witness `name` with `key` over the checkpoint
/// note body `body`, dated `time`.
pub fn cosign(name: &str, key: &SecretKey, body: &[u8], time: u64) -> String {
    let sig = key.sign(&message(time, body));
    let mut raw = key_id(name, &key.public()).to_be_bytes().to_vec();
    raw.extend_from_slice(&time.to_be_bytes());
    raw.extend_from_slice(&sig.0);
    format!("— {name} {}\n", b64().encode(raw))
}

/// A signed-note verifier of one witness's cosignature/v1 (evl's Ed25519 rule).
struct CosignatureVerifier {
    name: String,
    id: u32,
    key: PublicKey,
}

impl Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 72 {
            return false;
        }
        let time = u64::from_be_bytes(sig[..8].try_into().expect("8 bytes"));
        if time > i64::MAX as u64 {
            return false;
        }
        let sig: [u8; 64] = sig[8..].try_into().expect("64 bytes");
        keys::verify(&self.key, &message(time, msg), &SignatureBytes(sig))
    }
}

/// What a note holds from one witness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cosigned {
    /// A valid cosignature/v1, dated this POSIX time.
    Valid(u64),
    /// No signature line with the witness's name and key id.
    Absent,
    /// A line with its name and key id that does not verify.
    Invalid,
}

/// Whether `note` carries a valid cosignature/v1 by witness (`name`, `public`).
pub fn cosigned_by(note: &[u8], name: &str, public: &PublicKey) -> Cosigned {
    let Ok(parsed) = Note::from_bytes(note) else {
        return Cosigned::Absent;
    };
    let v = CosignatureVerifier {
        name: name.to_string(),
        id: key_id(name, public),
        key: *public,
    };
    let list = VerifierList::new(vec![Box::new(v) as Box<dyn Verifier>]);
    match parsed.verify(&list) {
        Ok((verified, _)) => verified
            .first()
            .map(|s| {
                Cosigned::Valid(u64::from_be_bytes(
                    s.signature()[..8].try_into().expect("72 bytes"),
                ))
            })
            .unwrap_or(Cosigned::Absent),
        Err(NoteError::UnverifiedNote) => Cosigned::Absent,
        Err(_) => Cosigned::Invalid,
    }
}

/// The note body (text before the blank line, with its final newline) and the signature lines
/// (each with its newline) of a signed note.
pub fn split_note(note: &[u8]) -> Option<(&[u8], Vec<&[u8]>)> {
    Note::from_bytes(note).ok()?;
    let at = note.windows(2).rposition(|w| w == b"\n\n")?;
    let body = &note[..at + 1];
    let sigs = note[at + 2..]
        .split_inclusive(|&b| b == b'\n')
        .collect::<Vec<_>>();
    Some((body, sigs))
}

/// The (name, key id) a signature line claims.
fn line_key(line: &[u8]) -> Option<(String, u32)> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    signed_note::Signature::from_bytes(line)
        .ok()
        .map(|s| (s.name().to_string(), s.id()))
}

/// Parses the signature lines of an add-checkpoint response: one or more `— name base64`
/// lines, each ending in a newline. `None` if any line is malformed.
pub fn parse_lines(body: &[u8]) -> Option<Vec<Vec<u8>>> {
    if body.is_empty() || !body.ends_with(b"\n") {
        return None;
    }
    body.split_inclusive(|&b| b == b'\n')
        .map(|l| line_key(l).map(|_| l.to_vec()))
        .collect()
}

/// `note` with `lines` added as signature lines; a line replaces any earlier one with the same
/// name and key id, so no two lines share both.
pub fn attach(note: &[u8], lines: &[Vec<u8>]) -> Option<Vec<u8>> {
    let (body, old) = split_note(note)?;
    let new: Vec<(String, u32)> = lines.iter().filter_map(|l| line_key(l)).collect();
    let mut out = body.to_vec();
    out.push(b'\n');
    for l in old {
        if !line_key(l).is_some_and(|k| new.contains(&k)) {
            out.extend_from_slice(l);
        }
    }
    for l in lines {
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.extend_from_slice(l);
    }
    Note::from_bytes(&out).ok()?;
    Some(out)
}

/// A parsed add-checkpoint request body.
#[derive(Debug, Clone, PartialEq)]
pub struct AddCheckpoint {
    pub old_size: TreeSize,
    pub proof: Vec<Hash>,
    pub note: Vec<u8>,
}

/// Why an add-checkpoint body is malformed (400).
#[derive(Debug, thiserror::Error)]
#[error("malformed add-checkpoint request: {0}")]
pub struct BadRequest(pub &'static str);

impl AddCheckpoint {
    /// The request body: `old N`, proof lines, an empty line, the checkpoint note.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old_size).into_bytes();
        for h in &self.proof {
            out.extend_from_slice(b64().encode(h.0).as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.note);
        out
    }

    /// Parses a request body strictly as the spec writes it.
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, BadRequest> {
        let mut rest = body;
        let mut next_line = || -> Result<&[u8], BadRequest> {
            let at = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or(BadRequest("a line does not end in a newline"))?;
            let line = &rest[..at];
            rest = &rest[at + 1..];
            Ok(line)
        };
        let first = next_line()?;
        let size = first
            .strip_prefix(b"old ")
            .and_then(|s| std::str::from_utf8(s).ok())
            .ok_or(BadRequest("the first line is not 'old <size>'"))?;
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(BadRequest(
                "the old size is not a decimal without leading zeroes",
            ));
        }
        let old_size: u64 = size
            .parse()
            .map_err(|_| BadRequest("the old size is too large"))?;
        let mut proof = Vec::new();
        loop {
            let line = next_line()?;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(BadRequest("more than 63 consistency proof lines"));
            }
            let h: [u8; 32] = b64()
                .decode(line)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or(BadRequest("a proof line is not a base64 SHA-256 hash"))?;
            proof.push(Hash(h));
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            note: rest.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosignature_roundtrip_and_tamper() {
        let log = SecretKey::demo_from_phrase("log");
        let w = SecretKey::demo_from_phrase("witness");
        let root = crate::merkle::leaf_hash(b"x");
        let note = crate::checkpoint::sign("example.org/log", 5, root, &log);
        let (body, _) = split_note(&note).unwrap();
        let line = cosign("w.example/1", &w, body, 1_700_000_000);
        let cosigned = attach(&note, &[line.into_bytes()]).unwrap();
        assert_eq!(
            cosigned_by(&cosigned, "w.example/1", &w.public()),
            Cosigned::Valid(1_700_000_000)
        );
        assert_eq!(
            cosigned_by(&note, "w.example/1", &w.public()),
            Cosigned::Absent
        );
        // The log signature still verifies beside the cosignature.
        assert!(crate::checkpoint::open(&cosigned, "example.org/log", &[log.public()]).is_ok());
        // Another size under the same cosignature does not verify.
        let other = crate::checkpoint::sign("example.org/log", 6, root, &log);
        let (_, sigs) = split_note(&cosigned).unwrap();
        let moved = attach(&other, &[sigs[1].to_vec()]).unwrap();
        assert_eq!(
            cosigned_by(&moved, "w.example/1", &w.public()),
            Cosigned::Invalid
        );
        let v = vkey("w.example/1", &w.public());
        assert_eq!(
            parse_vkey(&v),
            Some(("w.example/1".to_string(), w.public()))
        );
        assert_eq!(parse_vkey(&v.replace("w.example/1", "w.example/2")), None);
    }

    #[test]
    fn request_roundtrip() {
        let r = AddCheckpoint {
            old_size: 3,
            proof: vec![crate::merkle::leaf_hash(b"a")],
            note: b"o\n4\nAAAA\n\n- x\n".to_vec(),
        };
        assert_eq!(AddCheckpoint::parse(&r.to_bytes()).unwrap(), r);
        assert!(AddCheckpoint::parse(b"old 01\n\nx").is_err());
        assert!(AddCheckpoint::parse(b"old 1\nzz\n\nx").is_err());
    }
}
