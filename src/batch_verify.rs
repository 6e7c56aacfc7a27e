//! evl's Ed25519 signature rule (docs/FORMAT.md §"Signature validity"), checked for one
//! signature ([`verify_one`], which `keys::verify` is) or for many at once ([`verify`], which
//! `evl verify` uses), so the writer and the verifier accept exactly the same signatures.
//!
//! A signature `(R, s)` on message `M` under key `A` is valid when `s < ℓ`; `A` and `R` are
//! canonical encodings of points that are not of small order; and, with `h = SHA-512(R || A ||
//! M) mod ℓ`, the *cofactored* equation `[8](s·B − R − h·A) = identity` holds. The cofactored
//! equation is the one a batch can check exactly (Chalkias, Garillot, Nikolaenko, "Taming the
//! many EdDSAs", 2020; ZIP 215): a random combination of cofactorless equations accepts or
//! refuses a signature whose residual `s·B − R − h·A` is a nonzero small-order point depending
//! on the random coefficients. Refusing small-order `A` and `R` keeps what ed25519-dalek's
//! `verify_strict` and libsodium refuse; the rule then differs from `verify_strict` only on a
//! signature whose `R` or `A` has a small-order component (a mixed-order point, which only the
//! key's holder can make): the cofactored equation ignores that component.
//!
//! The batch checks the randomized, cofactored batch equation (Bernstein, Duif, Lange, Schwabe,
//! Yang, "High-speed high-security signatures", 2011, §5):
//!
//! ```text
//!   [8] ( -(Σ_i z_i·s_i)·B  +  Σ_i z_i·R_i  +  Σ_k (Σ_{i : A_i = A_k} z_i·h_i)·A_k )  ==  identity
//! ```
//!
//! with independent random 128-bit `z_i`: if any one signature's `[8](s·B − R − h·A)` is not the
//! identity, the sum is not either, except with probability at most 2^-128. `ed25519_dalek::
//! verify_batch` computes the same sum with one `A_i` term per signature: a multiscalar
//! multiplication over `2n + 1` points. Collecting each distinct key's coefficient first leaves
//! `n + K + 1` points, and the terms it removes are the ones with full-size scalars: about 1.7×
//! the signatures per second of dalek's batch on one core (docs/PERFORMANCE.md).

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

/// Whether `signature` is a valid signature of `message` under the public key `key` (its 32
/// encoded bytes) by evl's rule.
#[allow(non_snake_case)]
pub fn verify_one(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let Some(A) = decode_point(key) else {
        return false;
    };
    let Some((R, s)) = decode_signature(signature) else {
        return false;
    };
    let h = challenge(&signature[..32], key, message);
    // s·B − h·A, then − R; multiplying by the cofactor last (not pre-multiplying h or s by 8
    // and reducing mod ℓ) is what makes a mixed-order A's torsion component vanish.
    (EdwardsPoint::vartime_double_scalar_mul_basepoint(&h, &-A, &s) - R)
        .mul_by_cofactor()
        .is_identity()
}

/// Whether every signature in `items` is valid by evl's rule (one batch equation; it does not
/// say which one fails). The empty batch verifies.
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
                let Some(point) = decode_point(bytes) else {
                    return false;
                };
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
        let Some((R, s)) = decode_signature(item.signature) else {
            return false;
        };
        let h = challenge(&item.signature[..32], item.key.as_bytes(), item.message);
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

/// The point `R` and scalar `s` of a signature, or `None` when `s ≥ ℓ` or `R` is not a
/// canonically encoded point of large order ([`decode_point`]).
#[allow(non_snake_case)]
fn decode_signature(signature: &[u8; 64]) -> Option<(EdwardsPoint, Scalar)> {
    let (r_bytes, s_bytes) = signature.split_at(32);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(
        s_bytes.try_into().expect("32 bytes"),
    ))?;
    let R = decode_point(r_bytes.try_into().expect("32 bytes"))?;
    Some((R, s))
}

/// The point `bytes` encodes (RFC 8032 §5.1.3), or `None` when they encode no point, encode it
/// non-canonically, or the point is of small order. Decompression alone accepts two kinds of
/// non-canonical encoding: y ≥ p (it reduces y), refused here by [`is_canonical_y`]; and x = 0
/// with the sign bit set, whose points (0, ±1) are of small order and so refused too.
fn decode_point(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    let point = CompressedEdwardsY(*bytes).decompress()?;
    (is_canonical_y(bytes) && !point.is_small_order()).then_some(point)
}

/// `h = SHA-512(R || A || M) mod ℓ`, over the encodings as given (canonical, once decoded).
fn challenge(r_bytes: &[u8], key: &[u8; 32], message: &[u8]) -> Scalar {
    Scalar::from_hash(
        Sha512::new()
            .chain_update(r_bytes)
            .chain_update(key)
            .chain_update(message),
    )
}

/// Whether a point encoding's y-coordinate is reduced (y < p = 2^255 − 19; the top bit is the
/// sign of x).
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
                assert!(verify_one(k[i].as_bytes(), &m[i], &s[i]));
                let other = SigningKey::from_bytes(&[99; 32]).verifying_key();
                assert!(!verify_one(other.as_bytes(), &m[i], &s[i]));
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
            assert!(!verify_one(k[7].as_bytes(), &m[7], &bad[7]));
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
        assert!(!verify_one(k[1].as_bytes(), &m[1], &s[1]));
    }

    /// Every encoding decompression accepts that is not canonical: y + p for the 19 y with
    /// y + p < 2^255, each with either sign bit, and (0, ±1) with the sign bit set.
    fn non_canonical_encodings() -> Vec<[u8; 32]> {
        let mut out = Vec::new();
        for i in 0..19u8 {
            for sign in [0, 0x80] {
                let mut e = [0xff; 32];
                e[0] = 0xed + i;
                e[31] = 0x7f | sign;
                out.push(e);
            }
        }
        let mut one = [0u8; 32];
        one[0] = 1;
        one[31] = 0x80;
        let mut minus_one = [0xff; 32];
        minus_one[0] = 0xec;
        out.extend([one, minus_one]);
        out.retain(|e| CompressedEdwardsY(*e).decompress().is_some());
        out
    }

    #[test]
    fn only_canonical_encodings_of_large_order_points_decode() {
        let non_canonical = non_canonical_encodings();
        // y + p is on the curve for y in {0, 1, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18}: 24
        // encodings, and 2 with x = −0; 6 of the 26 are of small order (the six alternative
        // encodings C2SP CCTV lists), 20 of large order.
        assert_eq!(non_canonical.len(), 26);
        let large = non_canonical
            .iter()
            .filter(|e| {
                !CompressedEdwardsY(**e)
                    .decompress()
                    .unwrap()
                    .is_small_order()
            })
            .count();
        assert_eq!(large, 20);
        for e in &non_canonical {
            let p = CompressedEdwardsY(*e).decompress().unwrap();
            assert_ne!(p.compress().0, *e, "{} is canonical", hex::encode(e));
            assert!(decode_point(e).is_none(), "{} decoded", hex::encode(e));
        }
        for t in curve25519_dalek::constants::EIGHT_TORSION {
            assert!(decode_point(&t.compress().0).is_none());
        }
        for k in 1..50u64 {
            let p = EdwardsPoint::mul_base(&Scalar::from(k));
            let mixed = p + curve25519_dalek::constants::EIGHT_TORSION[1];
            for q in [p, mixed] {
                let e = q.compress().0;
                assert_eq!(decode_point(&e).map(|d| d.compress().0), Some(e));
            }
        }
    }

    /// The secret scalar `a` of `key` (A = a·B), to make signatures with a chosen `R`.
    fn secret_scalar(key: &SigningKey) -> Scalar {
        let h = Sha512::digest(key.to_bytes());
        let a = Scalar::from_bytes_mod_order(curve25519_dalek::scalar::clamp_integer(
            h[..32].try_into().unwrap(),
        ));
        assert_eq!(
            EdwardsPoint::mul_base(&a).compress().0,
            key.verifying_key().to_bytes()
        );
        a
    }

    /// A signature of `m` under the key encoded `a_bytes` (secret scalar `a`) with `R = R`.
    #[allow(non_snake_case)]
    fn sign_with(
        a: &Scalar,
        a_bytes: &[u8; 32],
        R: EdwardsPoint,
        r: &Scalar,
        m: &[u8],
    ) -> [u8; 64] {
        let r_bytes = R.compress().0;
        let s = r + challenge(&r_bytes, a_bytes, m) * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..].copy_from_slice(&s.to_bytes());
        sig
    }

    /// Both paths, alone and inside a batch of 16 valid signatures under 3 keys (one of them
    /// possibly the same key), agree on one signature; returns their verdict.
    fn both_paths(key: &[u8; 32], m: &[u8], sig: &[u8; 64]) -> bool {
        let single = verify_one(key, m, sig);
        let vk = VerifyingKey::from_bytes(key).unwrap();
        let alone = verify(&[Item {
            key: &vk,
            message: m,
            signature: sig,
        }]);
        let (ms, ss, ks) = batch(16, 3);
        let mut items: Vec<Item> = ms
            .iter()
            .zip(&ss)
            .zip(&ks)
            .map(|((message, signature), key)| Item {
                key,
                message,
                signature,
            })
            .collect();
        items.insert(
            5,
            Item {
                key: &vk,
                message: m,
                signature: sig,
            },
        );
        let mixed = verify(&items);
        assert_eq!((single, alone, mixed), (single, single, single));
        single
    }

    #[test]
    #[allow(non_snake_case)]
    fn a_mixed_order_residue_passes_both_paths_and_a_small_order_r_neither() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let a = secret_scalar(&key);
        let A = key.verifying_key().to_bytes();
        let m = b"evl/entry-signature/v1\nsome entry id, 32 bytes long";
        let r = Scalar::from(987654321u64);
        let T = curve25519_dalek::constants::EIGHT_TORSION[1]; // order 8
        let honest = sign_with(&a, &A, EdwardsPoint::mul_base(&r), &r, m);
        assert!(both_paths(&A, m, &honest));
        // R = r·B + T: s·B − R − h·A = −T, a nonzero small-order residue. The cofactored
        // equation accepts it; cofactorless verify_strict does not.
        let mixed_r = sign_with(&a, &A, EdwardsPoint::mul_base(&r) + T, &r, m);
        assert!(both_paths(&A, m, &mixed_r));
        let strict = key.verifying_key().verify_strict(m, &mixed_r.into());
        assert!(strict.is_err());
        // A mixed-order key A + T (the same secret): residual −h·T.
        let A_mixed = (EdwardsPoint::mul_base(&a) + T).compress().0;
        let under_mixed_key = sign_with(&a, &A_mixed, EdwardsPoint::mul_base(&r), &r, m);
        assert!(both_paths(&A_mixed, m, &under_mixed_key));
        // R = T itself satisfies the cofactored equation with s = h·a, but R is of small order.
        let small_r = sign_with(&a, &A, T, &Scalar::ZERO, m);
        assert!(!both_paths(&A, m, &small_r));
        // and a wrong s fails whatever the torsion.
        let mut bad = mixed_r;
        bad[40] ^= 1;
        assert!(!both_paths(&A, m, &bad));
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
        assert!(!verify_one(identity.as_bytes(), &m[0], &sig));
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
