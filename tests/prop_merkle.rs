//! Property tests of the Merkle log (RFC 9162 §2.1): for random trees of 1..300 leaves, every
//! inclusion and consistency proof `evl::merkle` produces verifies, and altering any proof
//! hash, the index, the sizes or the roots makes it fail.

use evl::merkle::{
    self, Hash, MemoryHashes, TreeSize, check_consistency, check_inclusion, prove_consistency,
    prove_inclusion, root,
};
use proptest::prelude::*;

fn tree(n: usize, salt: u64) -> (Vec<Hash>, MemoryHashes) {
    let leaves: Vec<Hash> = (0..n as u64)
        .map(|i| merkle::leaf_hash(&[salt.to_le_bytes(), i.to_le_bytes()].concat()))
        .collect();
    let m = merkle::build(&leaves);
    (leaves, m)
}

fn flip(h: &Hash, byte: usize, bit: u8) -> Hash {
    let mut h = *h;
    h.0[byte % 32] ^= 1 << (bit % 8);
    h
}

/// (leaves in the tree, a tree size ≤ it, an index < that size, salt, mutation choices).
fn sizes() -> impl Strategy<Value = (usize, TreeSize, u64, u64, usize, u8)> {
    (1usize..300).prop_flat_map(|n| {
        (1..=n as u64).prop_flat_map(move |size| {
            (
                Just(n),
                Just(size),
                0..size,
                any::<u64>(),
                any::<usize>(),
                any::<u8>(),
            )
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn inclusion_proofs_verify_and_altered_ones_fail(
        (n, size, index, salt, pick, bit) in sizes()
    ) {
        let (leaves, m) = tree(n, salt);
        let r = root(size, &m).unwrap();
        let leaf = leaves[index as usize];
        let proof = prove_inclusion(size, index, &m).unwrap();
        prop_assert!(check_inclusion(&proof, size, r, index, leaf));

        // Any proof hash altered.
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let k = pick % bad.len();
            bad[k] = flip(&bad[k], pick, bit);
            prop_assert!(!check_inclusion(&bad, size, r, index, leaf), "altered proof hash {k}");
            // A hash dropped or added.
            prop_assert!(!check_inclusion(&proof[..proof.len() - 1], size, r, index, leaf));
        }
        let mut longer = proof.clone();
        longer.push(leaf);
        prop_assert!(!check_inclusion(&longer, size, r, index, leaf));
        // The leaf, the root, the index altered.
        prop_assert!(!check_inclusion(&proof, size, r, index, flip(&leaf, pick, bit)));
        prop_assert!(!check_inclusion(&proof, size, flip(&r, pick, bit), index, leaf));
        let other_index = (index + 1 + (pick as u64 % size.max(2))) % (size + 1);
        if other_index != index {
            prop_assert!(
                !check_inclusion(&proof, size, r, other_index, leaf),
                "index {index} moved to {other_index}"
            );
        }
        // Another tree size, with that tree's own root.
        for other in [size - 1, size + 1] {
            if other > index && other as usize <= n && other != size {
                let r2 = root(other, &m).unwrap();
                prop_assert!(
                    !check_inclusion(&proof, other, r2, index, leaf),
                    "size {size} moved to {other}"
                );
            }
        }
        // A leaf of another tree (different salt) at the same place.
        let (foreign, _) = tree(n, salt ^ 1);
        prop_assert!(!check_inclusion(&proof, size, r, index, foreign[index as usize]));
    }

    #[test]
    fn consistency_proofs_verify_and_altered_ones_fail(
        (n, new, old0, salt, pick, bit) in sizes()
    ) {
        let old = old0 + 1; // 1..=new
        let (_, m) = tree(n, salt);
        let new_root = root(new, &m).unwrap();
        let old_root = root(old, &m).unwrap();
        let proof = prove_consistency(new, old, &m).unwrap();
        prop_assert!(check_consistency(&proof, new, new_root, old, old_root));

        if !proof.is_empty() {
            let mut bad = proof.clone();
            let k = pick % bad.len();
            bad[k] = flip(&bad[k], pick, bit);
            prop_assert!(!check_consistency(&bad, new, new_root, old, old_root), "altered hash {k}");
            prop_assert!(!check_consistency(&proof[..proof.len() - 1], new, new_root, old, old_root));
        }
        let mut longer = proof.clone();
        longer.push(new_root);
        prop_assert!(!check_consistency(&longer, new, new_root, old, old_root));
        prop_assert!(!check_consistency(&proof, new, flip(&new_root, pick, bit), old, old_root));
        prop_assert!(!check_consistency(&proof, new, new_root, old, flip(&old_root, pick, bit)));
        // The old size moved, with that tree's own root.
        for other in [old - 1, old + 1] {
            if other >= 1 && other <= new && other != old {
                let r2 = root(other, &m).unwrap();
                prop_assert!(
                    !check_consistency(&proof, new, new_root, other, r2),
                    "old size {old} moved to {other}"
                );
            }
        }
        // The new size moved, with that tree's own root.
        for other in [new - 1, new + 1] {
            if other >= old && other as usize <= n && other != new {
                let r2 = root(other, &m).unwrap();
                prop_assert!(
                    !check_consistency(&proof, other, r2, old, old_root),
                    "new size {new} moved to {other}"
                );
            }
        }
        // A rewritten history: the same sizes in a tree with other leaves.
        let (_, forged) = tree(n, salt ^ 1);
        let forged_old = root(old, &forged).unwrap();
        prop_assert!(!check_consistency(&proof, new, new_root, old, forged_old));
    }

    /// Proof generation refuses impossible requests instead of panicking.
    #[test]
    fn out_of_range_proof_requests_are_errors((n, size, _i, salt, _p, _b) in sizes()) {
        let (_, m) = tree(n, salt);
        let past_end = n as u64 + 1;
        prop_assert!(prove_inclusion(past_end, 0, &m).is_err());
        prop_assert!(prove_inclusion(size, size, &m).is_err());
        prop_assert!(prove_consistency(size, size + 1, &m).is_err());
    }
}
