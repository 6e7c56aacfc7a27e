//! Read-only memory maps of the store's files and dense arrays of fixed-width records.
//!
//! Every file evl maps is append-only: bytes below a committed length never change, and a
//! writer only cuts off bytes beyond the newest commit, which no reader looks at. That is
//! what makes reading through a map sound while another process appends.

pub use super::io::Mapped;

/// A dense array of `W`-byte records: the first `mapped` come from a file's map, the rest
/// from memory (records the file does not hold yet, e.g. after an interrupted write).
pub struct Dense<const W: usize> {
    map: Mapped,
    mapped: usize,
    extra: Vec<u8>,
}

impl<const W: usize> Dense<W> {
    /// The records of `map`, at most `limit` of them.
    pub fn new(map: Mapped, limit: u64) -> Dense<W> {
        let mapped = (map.bytes().len() / W).min(limit as usize);
        Dense {
            map,
            mapped,
            extra: Vec::new(),
        }
    }

    /// How many records the file holds (before `extra`).
    pub fn mapped(&self) -> u64 {
        self.mapped as u64
    }

    /// The file's length in bytes when it was mapped (records past `mapped` included).
    pub fn file_len(&self) -> u64 {
        self.map.bytes().len() as u64
    }

    /// Appends a record held in memory only.
    pub fn push(&mut self, record: &[u8]) {
        debug_assert_eq!(record.len(), W);
        self.extra.extend_from_slice(record);
    }

    /// The in-memory records, as bytes to append to the file.
    pub fn extra(&self) -> &[u8] {
        &self.extra
    }

    /// The number of records.
    pub fn len(&self) -> u64 {
        (self.mapped + self.extra.len() / W) as u64
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record `i`, if present.
    pub fn get(&self, i: u64) -> Option<&[u8; W]> {
        let i = i as usize;
        let bytes = if i < self.mapped {
            &self.map.bytes()[i * W..i * W + W]
        } else {
            let j = i - self.mapped;
            self.extra.get(j * W..j * W + W)?
        };
        Some(bytes.try_into().expect("W bytes"))
    }

    /// The whole file as mapped, records past `mapped` included.
    pub fn file_bytes(&self) -> &[u8] {
        self.map.bytes()
    }

    /// The mapped records as one slice (for ordered scans).
    pub fn mapped_bytes(&self) -> &[u8] {
        &self.map.bytes()[..self.mapped * W]
    }

    /// Record `i` as a little-endian u64 (for 8-byte records).
    pub fn u64(&self, i: u64) -> Option<u64> {
        self.get(i)
            .map(|r| u64::from_le_bytes(r[..8].try_into().expect("8 bytes")))
    }
}
