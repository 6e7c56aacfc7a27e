//! Canonical bytes: the one place evl calls bincode (pinned `=2.0.1`).
//!
//! Configuration: little-endian, fixed-width integers, lengths as `u64`, enum variants as
//! `u32`, `Option` as a one-byte tag, no trailing bytes. docs/FORMAT.md §"Canonical encoding"
//! describes the resulting bytes so other programs can produce them without bincode.

use bincode::config::{self, Configuration, Fixint, Limit, LittleEndian};
use serde::{Serialize, de::DeserializeOwned};

/// Largest canonical entry evl writes or reads; the C2SP tlog-tiles entry cap.
pub const MAX_ENTRY_BYTES: usize = 65_535;

/// The canonical configuration with a decode limit of `LIMIT` bytes: bincode refuses any
/// length prefix claiming more, so a lying length cannot make it allocate beyond the limit.
type Canonical<const LIMIT: usize> = Configuration<LittleEndian, Fixint, Limit<LIMIT>>;

fn canonical<const LIMIT: usize>() -> Canonical<LIMIT> {
    config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<LIMIT>()
}

/// Bytes that do not decode as the expected canonical structure.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The decoder rejected the bytes.
    #[error("malformed canonical bytes: {0}")]
    Malformed(String),
    /// The bytes decoded but did not consume the whole input.
    #[error("malformed canonical bytes: {0} trailing byte(s)")]
    Trailing(usize),
    /// The input is larger than the structure's cap.
    #[error("canonical bytes are {len} bytes, over the {max}-byte cap")]
    TooLarge { len: usize, max: usize },
}

/// Encodes `value` to canonical bytes.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing our own types into a Vec cannot fail: no maps with non-string keys that
    // bincode rejects, no unbounded sequences.
    bincode::serde::encode_to_vec(value, canonical::<{ usize::MAX }>())
        .expect("codec: canonical encoding failed")
}

/// Whether `value`'s canonical encoding is exactly `expected`, compared as it is produced:
/// no allocation (decoding every entry of a large ledger re-checks its encoding this way).
pub fn encodes_to<T: Serialize>(value: &T, expected: &[u8]) -> bool {
    /// A writer that compares what it is given with the expected bytes.
    struct Compare<'a> {
        rest: &'a [u8],
        same: bool,
    }
    impl bincode::enc::write::Writer for Compare<'_> {
        fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
            match self.rest.split_at_checked(bytes.len()) {
                Some((head, tail)) if head == bytes => self.rest = tail,
                _ => {
                    self.same = false;
                    // Stop encoding: the answer is known.
                    return Err(bincode::error::EncodeError::Other("differs"));
                }
            }
            Ok(())
        }
    }
    let mut w = Compare {
        rest: expected,
        same: true,
    };
    let done = bincode::serde::encode_into_writer(value, &mut w, canonical::<{ usize::MAX }>());
    done.is_ok() && w.same && w.rest.is_empty()
}

/// Decodes canonical bytes, refusing inputs over `max` bytes and trailing bytes. Every
/// length inside is bounded by the input size, so hostile input cannot allocate without bound.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, CodecError> {
    if bytes.len() > max {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    // The decode limit follows `max`, rounded up to one of a few sizes (const generics).
    let decoded = match max {
        0..=65_536 => bincode::serde::decode_from_slice(bytes, canonical::<65_536>()),
        65_537..=1_048_576 => bincode::serde::decode_from_slice(bytes, canonical::<1_048_576>()),
        1_048_577..=16_777_216 => {
            bincode::serde::decode_from_slice(bytes, canonical::<16_777_216>())
        }
        _ => bincode::serde::decode_from_slice(bytes, canonical::<268_435_456>()),
    };
    let (value, used) = decoded.map_err(|e| CodecError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - used));
    }
    Ok(value)
}
