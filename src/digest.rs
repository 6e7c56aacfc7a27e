//! BLAKE3-256 content addresses, shown as lowercase hex.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A BLAKE3-256 digest: the address of an artifact's bytes or of an entry's canonical bytes.
/// Ordered as its bytes are, lexicographically.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest as four big-endian words: comparing them in turn orders digests as their
    /// bytes do.
    fn words(&self) -> [u64; 4] {
        std::array::from_fn(|i| {
            u64::from_be_bytes(self.0[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
        })
    }
}

/// The byte order, compared a word at a time. The derived order compares the arrays with the
/// C library's `memcmp`, which in musl (the release build, docs/PERFORMANCE.md) is a byte loop:
/// verifying a million entries spent a second of its serial part there, in the registry and
/// key lookups of every entry.
impl Ord for Digest {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.words().cmp(&other.words())
    }
}

impl PartialOrd for Digest {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The id of an entry: the BLAKE3 digest of its canonical unsigned bytes.
pub type EntryId = Digest;

impl Digest {
    /// The all-zero digest, used where "no digest" must still have fixed width.
    pub const ZERO: Digest = Digest([0; 32]);

    /// BLAKE3-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// BLAKE3-256 of the concatenation of `parts`.
    pub fn of_parts(parts: &[&[u8]]) -> Digest {
        let mut h = blake3::Hasher::new();
        for p in parts {
            h.update(p);
        }
        Digest(*h.finalize().as_bytes())
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first `n` hex characters, for display.
    pub fn short(&self) -> String {
        let mut s = self.to_hex();
        s.truncate(12);
        s
    }
}

/// A hex string that is not a valid 64-character digest.
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a digest: expected 64 lowercase hex characters")]
pub struct ParseDigestError(pub String);

impl FromStr for Digest {
    type Err = ParseDigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        if s.len() != 64 {
            return Err(ParseDigestError(s.to_string()));
        }
        hex::decode_to_slice(s, &mut out).map_err(|_| ParseDigestError(s.to_string()))?;
        Ok(Digest(out))
    }
}

/// Whether `s` could be a digest prefix: 1 to 64 hex characters.
pub fn is_hex_prefix(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.short())
    }
}

// Canonical (bincode) form: 32 raw bytes. Human-readable (JSON) form: hex string.
impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            Ok(Digest(<[u8; 32]>::deserialize(d)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn digests_order_as_their_bytes(a: [u8; 32], b: [u8; 32], at in 0usize..32) {
            // Pairs that differ only from byte `at` on, so every word boundary is exercised.
            let mut c = a;
            c[at..].copy_from_slice(&b[at..]);
            for (x, y) in [(a, b), (a, c), (c, a), (a, a)] {
                proptest::prop_assert_eq!(Digest(x).cmp(&Digest(y)), x.cmp(&y));
                proptest::prop_assert_eq!(Digest(x) == Digest(y), x == y);
            }
        }
    }

    #[test]
    fn blake3_of_empty_matches_the_published_vector() {
        assert_eq!(
            Digest::of(b"").to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_input() {
        let d = Digest::of(b"evl");
        assert_eq!(d.to_hex().parse::<Digest>().unwrap(), d);
        assert!("abc".parse::<Digest>().is_err());
        assert!("zz".repeat(32).parse::<Digest>().is_err());
    }
}
