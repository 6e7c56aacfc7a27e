//! Checking a certificate's signature with its issuer's public key, for every algorithm the Web
//! PKI and SPIFFE use: RSA PKCS#1 v1.5 and RSA-PSS with SHA-256/384/512, ECDSA on P-256, P-384
//! and P-521 with SHA-256/384/512, and Ed25519 (the set Go's `crypto/x509` verifies).
//!
//! RSA and Ed25519 go through `x509-parser`'s `verify` feature (ring). ring has no P-521 and
//! pairs each curve with one or two hashes only, so ECDSA is verified with RustCrypto's `p256`,
//! `p384` and `p521` crates over a SHA-2 prehash: one code path for every curve and hash pair.
//! Before ring is asked, parameters it would reject without saying why (RSA keys under 2048
//! bits, PSS salts other than the hash length) are reported as unsupported, never as a failed
//! signature. SHA-1 and MD5 signatures are reported as insecure without checking them: Go's
//! `crypto/x509` refuses them (`InsecureAlgorithmError`).

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use signature::hazmat::PrehashVerifier;
use x509_parser::certificate::X509Certificate;
use x509_parser::public_key::PublicKey;
use x509_parser::signature_algorithm::RsaSsaPssParams;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Outcome of checking one certificate's signature with its issuer's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureCheck {
    Verified,
    Failed,
    /// An algorithm or parameter set this verifier does not cover (e.g. Ed448, DSA, SHA-224,
    /// an RSA key under 2048 bits); the signature is neither verified nor failed.
    Unsupported,
    /// SHA-1 or MD5: refused as Go's `crypto/x509` refuses it, without being checked.
    Insecure,
}

const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const SHA384: &str = "2.16.840.1.101.3.4.2.2";
const SHA512: &str = "2.16.840.1.101.3.4.2.3";

/// The name of a signature algorithm OID, for the facts.
pub fn algorithm_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.2" => "md2WithRSA",
        "1.2.840.113549.1.1.4" => "md5WithRSA",
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => "sha1WithRSA",
        "1.2.840.113549.1.1.11" => "sha256WithRSA",
        "1.2.840.113549.1.1.12" => "sha384WithRSA",
        "1.2.840.113549.1.1.13" => "sha512WithRSA",
        "1.2.840.113549.1.1.14" => "sha224WithRSA",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10040.4.3" => "dsa-with-SHA1",
        "2.16.840.1.101.3.4.3.2" => "dsa-with-SHA256",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        other => return other.to_string(),
    }
    .to_string()
}

/// Checks the signature of `child` with `issuer`'s public key; also says why a signature was
/// not checked.
pub fn check(
    child: &X509Certificate<'_>,
    issuer: &SubjectPublicKeyInfo<'_>,
) -> (SignatureCheck, Option<String>) {
    let oid = child.signature_algorithm.algorithm.to_id_string();
    let name = algorithm_name(&oid);
    let unsupported = |why: String| (SignatureCheck::Unsupported, Some(why));
    match oid.as_str() {
        "1.2.840.113549.1.1.2"
        | "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.3.14.3.2.29"
        | "1.2.840.10045.4.1"
        | "1.2.840.10040.4.3" => (
            SignatureCheck::Insecure,
            Some(format!(
                "{name} is an insecure algorithm that Go's crypto/x509 refuses"
            )),
        ),
        "1.2.840.113549.1.1.11" | "1.2.840.113549.1.1.12" | "1.2.840.113549.1.1.13" => {
            match rsa_bits(issuer) {
                Some(bits) if bits >= 2048 => ring_check(child, issuer),
                Some(bits) => unsupported(format!(
                    "the issuer's RSA key has {bits} bits; this verifier checks RSA keys of 2048 bits or more"
                )),
                None => (
                    SignatureCheck::Failed,
                    Some(format!(
                        "a {name} signature, but the issuer's key is not an RSA key"
                    )),
                ),
            }
        }
        "1.2.840.113549.1.1.10" => match pss_hash(child) {
            Err(why) => unsupported(why),
            Ok(()) => match rsa_bits(issuer) {
                Some(bits) if bits >= 2048 => ring_check(child, issuer),
                Some(bits) => unsupported(format!(
                    "the issuer's RSA key has {bits} bits; this verifier checks RSA keys of 2048 bits or more"
                )),
                None => (
                    SignatureCheck::Failed,
                    Some(
                        "an RSA-PSS signature, but the issuer's key is not an RSA key".to_string(),
                    ),
                ),
            },
        },
        "1.3.101.112" => ring_check(child, issuer),
        "1.2.840.10045.4.3.2" | "1.2.840.10045.4.3.3" | "1.2.840.10045.4.3.4" => {
            ecdsa_check(child, issuer, &oid)
        }
        _ => unsupported(format!(
            "the signature algorithm {name} is not one this verifier checks"
        )),
    }
}

fn ring_check(
    child: &X509Certificate<'_>,
    issuer: &SubjectPublicKeyInfo<'_>,
) -> (SignatureCheck, Option<String>) {
    match child.verify_signature(Some(issuer)) {
        Ok(()) => (SignatureCheck::Verified, None),
        Err(x509_parser::error::X509Error::SignatureUnsupportedAlgorithm) => (
            SignatureCheck::Unsupported,
            Some("the signature algorithm parameters are not supported".to_string()),
        ),
        Err(_) => (
            SignatureCheck::Failed,
            Some("the signature does not verify with the issuer's key".to_string()),
        ),
    }
}

fn rsa_bits(spki: &SubjectPublicKeyInfo<'_>) -> Option<usize> {
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => Some(rsa.key_size()),
        _ => None,
    }
}

/// ring verifies RSA-PSS with SHA-256/384/512 when MGF1 uses the same hash and the salt is as
/// long as the hash (RFC 8017 §9.1 with the usual parameters); anything else is unsupported.
fn pss_hash(child: &X509Certificate<'_>) -> Result<(), String> {
    let params = child
        .signature_algorithm
        .parameters
        .as_ref()
        .and_then(|p| RsaSsaPssParams::try_from(p).ok())
        .ok_or("the RSA-PSS parameters do not parse")?;
    let hash = params.hash_algorithm_oid().to_id_string();
    let len = match hash.as_str() {
        SHA256 => 32,
        SHA384 => 48,
        SHA512 => 64,
        other => {
            return Err(format!(
                "RSA-PSS with the hash {other} is not supported (SHA-256, SHA-384 or SHA-512 are)"
            ));
        }
    };
    let mgf = params
        .mask_gen_algorithm()
        .map_err(|_| "the RSA-PSS mask generation parameters do not parse".to_string())?;
    if mgf.hash.to_id_string() != hash {
        return Err(
            "RSA-PSS whose MGF1 hash differs from the message hash is not supported".to_string(),
        );
    }
    if params.salt_length() != len {
        return Err(format!(
            "RSA-PSS with a salt of {} bytes is not supported (the salt must be as long as the hash, {len} bytes)",
            params.salt_length()
        ));
    }
    if params.trailer_field() != 1 {
        return Err("RSA-PSS with a trailer field other than 1 is invalid (RFC 4055)".to_string());
    }
    Ok(())
}

/// What checking a signature with `issuer`'s key costs, in units of one P-256, RSA or Ed25519
/// check: RustCrypto's P-384 takes about four times as long, P-521 about eight to twelve
/// (measured on the release build). The issuer search spends a budget of these units
/// (`MAX_SIGNATURE_CHECKS`), so no choice of curve makes a file exceed the time bound.
pub(super) fn cost(issuer: &SubjectPublicKeyInfo<'_>) -> usize {
    if issuer.algorithm.algorithm.to_id_string() != "1.2.840.10045.2.1" {
        return 1;
    }
    let curve = issuer
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    match curve.as_deref() {
        Some("1.3.132.0.35") => 12,
        Some("1.3.132.0.34") => 4,
        _ => 1,
    }
}

fn ecdsa_check(
    child: &X509Certificate<'_>,
    issuer: &SubjectPublicKeyInfo<'_>,
    oid: &str,
) -> (SignatureCheck, Option<String>) {
    let tbs = child.tbs_certificate.as_ref();
    let digest: Vec<u8> = match oid {
        "1.2.840.10045.4.3.2" => sha2::Sha256::digest(tbs).to_vec(),
        "1.2.840.10045.4.3.3" => sha2::Sha384::digest(tbs).to_vec(),
        _ => sha2::Sha512::digest(tbs).to_vec(),
    };
    let curve = issuer
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    if issuer.algorithm.algorithm.to_id_string() != "1.2.840.10045.2.1" {
        return (
            SignatureCheck::Failed,
            Some("an ECDSA signature, but the issuer's key is not an EC key".to_string()),
        );
    }
    // ECDSA takes a hash shorter than the curve order as the integer it spells (FIPS 186-5
    // §6.4.1); RustCrypto wants at least half the field size, so a SHA-256 hash for P-521 is
    // left-padded with zeros, which keeps its value.
    let mut digest = digest;
    if curve.as_deref() == Some("1.3.132.0.35") && digest.len() < 64 {
        let mut padded = vec![0u8; 64 - digest.len()];
        padded.extend_from_slice(&digest);
        digest = padded;
    }
    let point: &[u8] = &issuer.subject_public_key.data;
    let sig: &[u8] = &child.signature_value.data;
    let verified = match curve.as_deref() {
        Some("1.2.840.10045.3.1.7") => p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .ok()
            .zip(p256::ecdsa::Signature::from_der(sig).ok())
            .map(|(k, s)| k.verify_prehash(&digest, &s).is_ok()),
        Some("1.3.132.0.34") => p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .ok()
            .zip(p384::ecdsa::Signature::from_der(sig).ok())
            .map(|(k, s)| k.verify_prehash(&digest, &s).is_ok()),
        Some("1.3.132.0.35") => p521::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .ok()
            .zip(p521::ecdsa::Signature::from_der(sig).ok())
            .map(|(k, s)| k.verify_prehash(&digest, &s).is_ok()),
        other => {
            return (
                SignatureCheck::Unsupported,
                Some(format!(
                    "ECDSA on the curve {} is not supported (P-256, P-384 and P-521 are)",
                    other.unwrap_or("(none)")
                )),
            );
        }
    };
    match verified {
        Some(true) => (SignatureCheck::Verified, None),
        Some(false) => (
            SignatureCheck::Failed,
            Some("the signature does not verify with the issuer's key".to_string()),
        ),
        None => (
            SignatureCheck::Failed,
            Some("the issuer's EC point or the DER signature value does not decode".to_string()),
        ),
    }
}
