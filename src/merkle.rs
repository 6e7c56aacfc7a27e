//! The RFC 6962 / RFC 9162 Merkle tree over the log's entries.
//!
//! The algebra (record and node hashes, stored-hash indexing, tree hashes, inclusion and
//! consistency proofs and their checks) is `tlog_tiles`, Cloudflare's port of Go's
//! `golang.org/x/mod/sumdb/tlog`; this module adapts it to evl's types. Leaves are hashed
//! exactly as RFC 6962 §2.1 does: SHA-256(0x00 || stored entry bytes); interior nodes
//! SHA-256(0x01 || left || right). BLAKE3 stays the content address; SHA-256 is used here only
//! so standard transparency-log tools can check evl's proofs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tlog_tiles::tlog;
pub use tlog_tiles::tlog::{Hash, HashReader};

/// The number of leaves in a tree.
pub type TreeSize = u64;

/// The RFC 6962 leaf hash of stored entry bytes.
pub fn leaf_hash(entry_bytes: &[u8]) -> Hash {
    tlog::record_hash(entry_bytes)
}

/// The stored-hash index of the hash at `level`, position `n` (Go tlog's `StoredHashIndex`).
pub fn stored_hash_index(level: u8, n: u64) -> u64 {
    tlog::stored_hash_index(level, n)
}

/// The hashes to store when leaf `n` with hash `leaf` is appended, with their stored indexes.
pub fn hashes_to_store<R: HashReader>(
    n: u64,
    leaf: Hash,
    r: &R,
) -> Result<Vec<(u64, Hash)>, tlog::Error> {
    let hashes = tlog::stored_hashes_for_record_hash(n, leaf, r)?;
    let first = tlog::stored_hash_index(0, n);
    Ok(hashes
        .into_iter()
        .enumerate()
        .map(|(i, h)| (first + i as u64, h))
        .collect())
}

/// Reads `indexes` with `get`, failing on the first that is absent: the body of a
/// [`HashReader`] over stored hashes held in memory or in a mapped file.
pub fn read_each(
    indexes: &[u64],
    get: impl Fn(u64) -> Option<Hash>,
) -> Result<Vec<Hash>, tlog::Error> {
    indexes
        .iter()
        .map(|&i| get(i).ok_or(tlog::Error::IndexesNotInTree))
        .collect()
}

/// The root hash of the tree of the first `size` leaves.
pub fn root<R: HashReader>(size: TreeSize, r: &R) -> Result<Hash, tlog::Error> {
    tlog::tree_hash(size, r)
}

/// An inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3).
pub fn prove_inclusion<R: HashReader>(
    size: TreeSize,
    index: u64,
    r: &R,
) -> Result<Vec<Hash>, tlog::Error> {
    tlog::prove_record(size, index, r)
}

/// A consistency proof from the tree of `old` leaves to the tree of `new` leaves (RFC 9162 §2.1.4).
pub fn prove_consistency<R: HashReader>(
    new: TreeSize,
    old: TreeSize,
    r: &R,
) -> Result<Vec<Hash>, tlog::Error> {
    tlog::prove_tree(new, old, r)
}

/// Checks an inclusion proof of `leaf` at `index` against `root` of a tree of `size` leaves.
pub fn check_inclusion(proof: &[Hash], size: TreeSize, root: Hash, index: u64, leaf: Hash) -> bool {
    tlog::check_record(&proof.to_vec(), size, root, index, leaf).is_ok()
}

/// Checks a consistency proof between (`old`, `old_root`) and (`new`, `new_root`).
pub fn check_consistency(
    proof: &[Hash],
    new: TreeSize,
    new_root: Hash,
    old: TreeSize,
    old_root: Hash,
) -> bool {
    tlog::check_tree(&proof.to_vec(), new, new_root, old, old_root).is_ok()
}

/// A hash reader over an in-memory map, used for pending batches and for bundles.
#[derive(Default, Debug, Clone)]
pub struct MemoryHashes(pub BTreeMap<u64, Hash>);

impl HashReader for MemoryHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
        indexes
            .iter()
            .map(|i| self.0.get(i).copied().ok_or(tlog::Error::IndexesNotInTree))
            .collect()
    }
}

/// Builds the stored hashes of a whole tree from its leaf hashes (for offline bundle checks).
pub fn build(leaves: &[Hash]) -> MemoryHashes {
    let mut m = MemoryHashes::default();
    for (n, leaf) in leaves.iter().enumerate() {
        let add = hashes_to_store(n as u64, *leaf, &m)
            .expect("merkle: bad math building a tree from leaves");
        m.0.extend(add);
    }
    m
}

/// Lowercase hex of a tree hash.
pub fn hex(h: &Hash) -> String {
    hex::encode(h.0)
}

/// A proof in printable form: hashes in hex, sizes and indexes explicit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofJson {
    pub kind: String,
    pub tree_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_hash: Option<String>,
    pub root_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_root_hash: Option<String>,
    pub hashes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};

    /// RFC 6962 tree hash computed naively by recursion, to check the stored-hash algebra.
    fn naive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => Hash(Sha256::digest([]).into()),
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                let (l, r) = (naive_root(&leaves[..k]), naive_root(&leaves[k..]));
                let mut h = Sha256::new();
                h.update([1u8]);
                h.update(l.0);
                h.update(r.0);
                Hash(h.finalize().into())
            }
        }
    }

    #[test]
    fn leaf_hash_is_rfc6962() {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(b"entry");
        assert_eq!(leaf_hash(b"entry").0, <[u8; 32]>::from(h.finalize()));
    }

    #[test]
    fn stored_hash_roots_and_proofs_agree_with_the_naive_tree() {
        let leaves: Vec<Hash> = (0..37u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let m = build(&leaves);
        for size in 1..=leaves.len() as u64 {
            let r = root(size, &m).unwrap();
            assert_eq!(r, naive_root(&leaves[..size as usize]), "root of {size}");
            for i in 0..size {
                let p = prove_inclusion(size, i, &m).unwrap();
                assert!(check_inclusion(&p, size, r, i, leaves[i as usize]));
                assert!(
                    !check_inclusion(&p, size, r, i, leaves[(i as usize + 1) % leaves.len()])
                        || size == 1
                );
            }
            for old in 1..=size {
                let p = prove_consistency(size, old, &m).unwrap();
                assert!(check_consistency(&p, size, r, old, root(old, &m).unwrap()));
            }
        }
    }
}
