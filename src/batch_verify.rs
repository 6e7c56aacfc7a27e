//! Ed25519 batch verification that merges the signatures made under the same key — a ledger
//! has a handful of signers and a million signatures.
//!
//! It checks the randomized, cofactored batch equation (Bernstein, Duif, Lange, Schwabe, Yang,
//! "High-speed high-security signatures", 2011, §5; cofactored as in Chalkias, Garillot,
//! Nikolaenko, "Taming the many EdDSAs", 2020):
//!
//! ```text
//!   [8] ( -(Σ_i z_i·s_i)·B  +  Σ_i z_i·R_i  +  Σ_k (Σ_{i : A_i = A_k} z_i·h_i)·A_k )  ==  identity
//! ```
//!
//! for signature `(R_i, s_i)` on message `M_i` under key `A_i`, `h_i = SHA-512(R_i || A_i ||
//! M_i) mod ℓ` and independent random 128-bit `z_i`. `ed25519_dalek::verify_batch` computes the
//! same sum with one `A_i` term per signature: a multiscalar multiplication over `2n + 1`
//! points. Collecting each distinct key's coefficient first leaves `n + K + 1` points, and the
//! terms it removes are the ones with full-size scalars: about 1.7× the signatures per second
//! of dalek's batch on one core (docs/PERFORMANCE.md).
//!
//! It is strict the way `VerifyingKey::verify_strict` (evl's single-signature check) is: it
//! refuses a non-canonical `s`, an `R` that does not decompress or is encoded non-canonically,
//! and a small-order `R` or `A`. dalek's `verify_batch` refuses only the first two, so it
//! accepts, for instance, any message "signed" under the identity key. The one remaining
//! difference from `verify_strict`: a signature whose residual `s·B − R − h·A` is a nonzero
//! small-order point (a mixed-order `R` or `A`, which only the key's holder can make) passes
//! the cofactored equation but not `verify_strict`'s; honestly made signatures never differ.

use std::iter::once;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::VerifyingKey;
use rand_core::{OsRng, RngCore};
use sha2::{Digest as _, Sha512};

/// One signature to check: the key, the message and the 64 signature bytes.
pub struct Item<'a> {
    pub key: &'a VerifyingKey,
    pub message: &'a [u8],
    pub signature: &'a [u8; 64],
}

/// Whether every signature in `items` verifies (one batch equation; it does not say which
/// one fails). The empty batch verifies.
#[allow(non_snake_case)]
pub fn verify(items: &[Item]) -> bool {
    // Distinct keys A_k, by their encoding (which is also what goes into h_i), and the key of
    // each signature.
    let mut A: Vec<(&[u8; 32], EdwardsPoint)> = Vec::new();
    let mut key_of = Vec::with_capacity(items.len());
    for item in items {
        let bytes = item.key.as_bytes();
        let k = match A.iter().position(|(b, _)| *b == bytes) {
            Some(k) => k,
            None => {
                let point = item.key.to_edwards();
                if point.is_small_order() {
                    return false;
                }
                A.push((bytes, point));
                A.len() - 1
            }
        };
        key_of.push(k);
    }
    let mut z_bytes = vec![0u8; 16 * items.len()];
    OsRng.fill_bytes(&mut z_bytes);

    let mut b_coefficient = Scalar::ZERO; // -Σ z_i·s_i
    let mut a_coefficients = vec![Scalar::ZERO; A.len()]; // Σ_{i ∈ k} z_i·h_i
    let mut zs = Vec::with_capacity(items.len()); // z_i, the coefficient of R_i
    let mut Rs = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let (r_bytes, s_bytes) = item.signature.split_at(32);
        let r_bytes: &[u8; 32] = r_bytes.try_into().expect("32 bytes");
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(
            s_bytes.try_into().expect("32 bytes"),
        )) else {
            return false;
        };
        let Some(R) = CompressedEdwardsY(*r_bytes).decompress() else {
            return false;
        };
        if !is_canonical_y(r_bytes) || R.is_small_order() {
            return false;
        }
        let h = Scalar::from_hash(
            Sha512::new()
                .chain_update(r_bytes)
                .chain_update(item.key.as_bytes())
                .chain_update(item.message),
        );
        let z = Scalar::from(u128::from_le_bytes(
            z_bytes[16 * i..16 * i + 16].try_into().expect("16 bytes"),
        ));
        b_coefficient -= z * s;
        a_coefficients[key_of[i]] += z * h;
        zs.push(z);
        Rs.push(R);
    }
    EdwardsPoint::vartime_multiscalar_mul(
        once(&b_coefficient).chain(&a_coefficients).chain(&zs),
        once(&ED25519_BASEPOINT_POINT)
            .chain(A.iter().map(|(_, p)| p))
            .chain(&Rs),
    )
    .mul_by_cofactor()
    .is_identity()
}

/// Whether a point encoding's y-coordinate is reduced (y < p = 2^255 − 19; the top bit is the
/// sign of x). Decompression silently reduces y ≥ p; `verify_strict` refuses such an `R`.
fn is_canonical_y(bytes: &[u8; 32]) -> bool {
    let all_ones = bytes[1..31].iter().all(|&b| b == 0xff) && bytes[31] & 0x7f == 0x7f;
    !(all_ones && bytes[0] >= 0xed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    /// `n` signatures over 55-byte messages, cycling over `keys` signing keys.
    fn batch(n: usize, keys: usize) -> (Vec<Vec<u8>>, Vec<[u8; 64]>, Vec<VerifyingKey>) {
        let signers: Vec<SigningKey> = (0..keys)
            .map(|k| SigningKey::from_bytes(&[k as u8 + 1; 32]))
            .collect();
        let msgs: Vec<Vec<u8>> = (0..n)
            .map(|i| [&b"evl/entry-signature/v1\n"[..], &[i as u8; 32]].concat())
            .collect();
        let sigs = (0..n)
            .map(|i| signers[i % keys].sign(&msgs[i]).to_bytes())
            .collect();
        let vks = (0..n).map(|i| signers[i % keys].verifying_key()).collect();
        (msgs, sigs, vks)
    }

    fn ok(m: &[Vec<u8>], s: &[[u8; 64]], k: &[VerifyingKey]) -> bool {
        let items: Vec<Item> = m
            .iter()
            .zip(s)
            .zip(k)
            .map(|((message, signature), key)| Item {
                key,
                message,
                signature,
            })
            .collect();
        verify(&items)
    }

    #[test]
    fn valid_batches_verify_and_agree_with_verify_strict() {
        for keys in [1, 3, 40] {
            let (m, s, k) = batch(40, keys);
            assert!(ok(&m, &s, &k));
            for i in 0..40 {
                let sig = ed25519_dalek::Signature::from_bytes(&s[i]);
                assert!(k[i].verify_strict(&m[i], &sig).is_ok());
            }
        }
        assert!(ok(&[], &[], &[]));
    }

    #[test]
    fn one_bad_signature_message_or_key_fails_the_batch() {
        let (m, s, k) = batch(40, 4);
        for byte in [0, 31, 32, 40, 63] {
            let mut bad = s.clone();
            bad[7][byte] ^= 1;
            assert!(!ok(&m, &bad, &k), "flipped signature byte {byte}");
        }
        let mut bad_m = m.clone();
        bad_m[7][30] ^= 1;
        assert!(!ok(&bad_m, &s, &k));
        let mut bad_k = k.clone();
        bad_k[7] = k[8]; // signed by key 3, claimed by key 0
        assert!(!ok(&m, &s, &bad_k));
        let mut swapped = s.clone();
        swapped.swap(3, 4);
        assert!(!ok(&m, &swapped, &k));
    }

    #[test]
    fn a_non_canonical_s_fails() {
        // ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let (m, mut s, k) = batch(3, 1);
        // s + ℓ: the same scalar modulo ℓ, encoded non-canonically (s < ℓ < 2^253: no overflow).
        let mut carry = 0u16;
        for (i, l) in L.iter().enumerate() {
            let v = s[1][32 + i] as u16 + *l as u16 + carry;
            s[1][32 + i] = v as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0);
        assert!(!ok(&m, &s, &k));
    }

    #[test]
    fn a_small_order_key_is_refused_as_verify_strict_refuses_it() {
        // With A = identity, (R = s·B, s) satisfies the equation for any message;
        // dalek's verify_batch accepts it, verify_strict does not, nor does this.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let identity = VerifyingKey::from_bytes(&identity).unwrap();
        let s = Scalar::from(12345u64);
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&EdwardsPoint::mul_base(&s).compress().to_bytes());
        sig[32..].copy_from_slice(&s.to_bytes());
        let m = vec![b"anything".to_vec()];
        assert!(!ok(&m, &[sig], &[identity]));
        let dalek = ed25519_dalek::verify_batch(
            &[&m[0][..]],
            &[ed25519_dalek::Signature::from_bytes(&sig)],
            &[identity],
        );
        assert!(
            dalek.is_ok(),
            "dalek's batch accepts it: the reason for strictness"
        );
    }
}
