//! C2SP `tlog-proof@v1` files (<https://c2sp.org/tlog-proof>): an entry's inclusion proof and
//! the signed checkpoint it is proven against, in one text file that verifies offline
//! (docs/FORMAT.md §"tlog-proof files").
//!
//! evl puts the entry's stored bytes in the `extra` line, so the file is self-contained: the
//! leaf hash is SHA-256(0x00 || extra), which the inclusion proof then authenticates (the spec
//! calls extra data unauthenticated; here it is authenticated by being the leaf itself).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::checkpoint;
use crate::digest::{Digest, EntryId};
use crate::merkle::{self, Hash, TreeSize};

/// The first line of every proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";
/// Largest proof file read: a 64 KiB entry in base64, 64 hashes and a checkpoint with many
/// cosignatures fit well inside.
pub const MAX_PROOF_BYTES: usize = 1 << 20;

/// A parsed proof file.
#[derive(Clone, Debug, PartialEq)]
pub struct TlogProof {
    /// The decoded `extra` data: for evl, the entry's stored bytes.
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub hashes: Vec<Hash>,
    /// The checkpoint note, verbatim.
    pub checkpoint: Vec<u8>,
}

/// Why bytes are not a well-formed proof.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("the proof is {0} bytes, over the {MAX_PROOF_BYTES}-byte cap")]
    TooLarge(usize),
    #[error("the proof is not UTF-8 text")]
    NotText,
    #[error("the first line is not `{HEADER}`")]
    Header,
    #[error("the `extra` line is not standard padded base64")]
    Extra,
    #[error("missing `index N` line (ASCII decimal, no leading zeroes)")]
    Index,
    #[error("proof hash line {0} is not the standard base64 of 32 bytes")]
    Hash(usize),
    #[error("no empty line separates the proof hashes from the checkpoint")]
    NoCheckpoint,
}

impl TlogProof {
    /// The file's bytes: header, `extra` (if any), `index`, one base64 hash per line, an empty
    /// line, then the checkpoint note as it is.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("{HEADER}\n");
        if let Some(x) = &self.extra {
            s.push_str(&format!("extra {}\n", STANDARD.encode(x)));
        }
        s.push_str(&format!("index {}\n", self.index));
        for h in &self.hashes {
            s.push_str(&STANDARD.encode(h.0));
            s.push('\n');
        }
        s.push('\n');
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.checkpoint);
        out
    }

    /// Parses a proof strictly: every line as the spec writes it, canonical base64.
    pub fn parse(bytes: &[u8]) -> Result<TlogProof, ParseError> {
        if bytes.len() > MAX_PROOF_BYTES {
            return Err(ParseError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ParseError::NotText)?;
        let (head, checkpoint) = text.split_once("\n\n").ok_or(ParseError::NoCheckpoint)?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(ParseError::Header);
        }
        let mut next = lines.next();
        let mut extra = None;
        if let Some(x) = next.and_then(|l| l.strip_prefix("extra ")) {
            let decoded = STANDARD.decode(x).map_err(|_| ParseError::Extra)?;
            if STANDARD.encode(&decoded) != x {
                return Err(ParseError::Extra);
            }
            extra = Some(decoded);
            next = lines.next();
        }
        let index = next
            .and_then(|l| l.strip_prefix("index "))
            .filter(|n| {
                !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && (*n == "0" || !n.starts_with('0'))
            })
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or(ParseError::Index)?;
        let mut hashes = Vec::new();
        for (i, l) in lines.enumerate() {
            let h: [u8; 32] = STANDARD
                .decode(l)
                .ok()
                .filter(|d| STANDARD.encode(d) == l)
                .and_then(|d| d.try_into().ok())
                .ok_or(ParseError::Hash(i))?;
            hashes.push(Hash(h));
        }
        Ok(TlogProof {
            extra,
            index,
            hashes,
            checkpoint: checkpoint.as_bytes().to_vec(),
        })
    }
}

/// What checking a proof established (the trust anchor is the caller's business).
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    pub origin: String,
    pub size: TreeSize,
    pub root: Hash,
    pub index: u64,
    pub leaf_hash: Hash,
    /// The entry id: BLAKE3 of the stored bytes without their 64-byte signature.
    pub entry: EntryId,
}

/// Checks the inclusion proof of the entry carried in `extra` against the checkpoint body
/// (signatures are checked separately, against the caller's trust roots).
pub fn check_inclusion(p: &TlogProof) -> Result<Checked, String> {
    let entry = p.extra.as_deref().ok_or(
        "the proof carries no entry bytes (`extra` line): evl cannot tell which entry it proves",
    )?;
    if entry.len() <= 64 {
        return Err(format!(
            "the `extra` data is {} bytes, too short for a stored entry (unsigned bytes and a 64-byte signature)",
            entry.len()
        ));
    }
    let (origin, size, root) =
        checkpoint::body_of(&p.checkpoint).map_err(|e| format!("checkpoint: {e}"))?;
    if p.index >= size {
        return Err(format!(
            "index {} is not inside the checkpoint's tree of size {size}",
            p.index
        ));
    }
    let leaf = merkle::leaf_hash(entry);
    if !merkle::check_inclusion(&p.hashes, size, root, p.index, leaf) {
        return Err(format!(
            "the inclusion proof of index {} does not lead to the checkpoint's root {} (size {size})",
            p.index,
            merkle::hex(&root)
        ));
    }
    Ok(Checked {
        origin,
        size,
        root,
        index: p.index,
        leaf_hash: leaf,
        entry: Digest::of(&entry[..entry.len() - 64]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TlogProof {
        TlogProof {
            extra: Some(vec![7; 80]),
            index: 3,
            hashes: vec![Hash([1; 32]), Hash([2; 32])],
            checkpoint: b"o\n5\nAAAA\n\n\xe2\x80\x94 o abc\n".to_vec(),
        }
    }

    #[test]
    fn round_trips_and_refuses_second_spellings() {
        let p = sample();
        let b = p.to_bytes();
        assert_eq!(TlogProof::parse(&b).unwrap(), p);
        let t = String::from_utf8(b).unwrap();
        for (from, to, err) in [
            ("index 3", "index 03", ParseError::Index),
            ("index 3", "index  3", ParseError::Index),
            (HEADER, "c2sp.org/tlog-proof@v2", ParseError::Header),
            ("extra ", "extra  ", ParseError::Extra),
        ] {
            assert_eq!(
                TlogProof::parse(t.replacen(from, to, 1).as_bytes()),
                Err(err)
            );
        }
        let no_blank = t.replacen("\n\n", "\n", 1);
        assert!(TlogProof::parse(no_blank.as_bytes()).is_err());
        let p0 = TlogProof {
            extra: None,
            index: 0,
            hashes: vec![],
            ..sample()
        };
        assert_eq!(TlogProof::parse(&p0.to_bytes()).unwrap(), p0);
    }
}
