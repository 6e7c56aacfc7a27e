//! Certificates: PEM (or one DER certificate), a single certificate or a chain, read with
//! `x509-parser`; facts are names, serial, validity, SANs (SPIFFE IDs split out), key algorithm,
//! and whether the chain links up (issuer name and signature).

use std::io::Cursor;

use serde::{Deserialize, Serialize};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::objects::{oid_registry, oid2abbrev};
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name};

use super::{IngestError, check_size};

/// Largest accepted input (a chain is a few KiB; bundles of CAs stay well below this).
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;
/// Most certificates accepted in one file.
pub const MAX_CERTIFICATES: usize = 64;

/// A SPIFFE ID (`spiffe://trust-domain/path`) split into its parts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SpiffeId {
    /// The full URI as it appears in the certificate.
    pub uri: String,
    pub trust_domain: String,
    /// The path including its leading `/`, or empty.
    pub path: String,
}

/// Where a time falls relative to a validity period (bounds inclusive, RFC 5280 §4.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Validity {
    NotYetValid,
    Valid,
    Expired,
}

/// Facts about one certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateFacts {
    /// Subject distinguished name as an RFC 4514 string (most specific RDN first).
    pub subject: String,
    /// Issuer distinguished name as an RFC 4514 string.
    pub issuer: String,
    /// Serial number as lowercase hex, without leading zero bytes.
    pub serial: String,
    /// Start of validity, Unix seconds UTC.
    pub not_before: i64,
    /// End of validity, Unix seconds UTC.
    pub not_after: i64,
    /// URI SANs that are SPIFFE IDs.
    pub spiffe_ids: Vec<SpiffeId>,
    /// Other URI SANs.
    pub uri_sans: Vec<String>,
    /// DNS SANs.
    pub dns_sans: Vec<String>,
    /// e.g. "ECDSA P-256", "Ed25519", "RSA 2048".
    pub key_algorithm: String,
    /// basicConstraints cA flag.
    pub is_ca: bool,
    /// Subject and issuer are the same name.
    pub self_issued: bool,
}

/// Outcome of checking one certificate's signature with the next certificate's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureCheck {
    Verified,
    Failed,
    /// The signature algorithm is not one the verifier supports (RSA PKCS#1/PSS, ECDSA P-256/P-384
    /// with SHA-256/384, Ed25519 are supported); the link then rests on the names only.
    Unsupported,
}

/// The link from certificate `child` to the certificate after it in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainLink {
    pub child: usize,
    pub parent: usize,
    /// The child's issuer DN equals the parent's subject DN (byte-exact DER).
    pub names_match: bool,
    pub signature: SignatureCheck,
}

/// Facts about a PEM file: its certificates in file order (leaf first) and the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertFacts {
    pub certificates: Vec<CertificateFacts>,
    /// Each certificate names the next as issuer and (where supported) its signature verifies
    /// with the next one's key; vacuously true for one certificate.
    pub chain_links: bool,
    /// How `chain_links` was decided: "issuer-name-and-signature" when every signature was
    /// verified, "issuer-name-only" when some algorithm was unsupported, "single-certificate".
    pub chain_check: String,
    pub links: Vec<ChainLink>,
    /// The leaf's SPIFFE ID when it carries exactly one.
    pub leaf_spiffe_id: Option<SpiffeId>,
    /// Earliest `not_after` in the file: when the chain stops being usable.
    pub expires_at: i64,
    /// Latest `not_before` in the file: when the whole chain becomes usable.
    pub valid_from: i64,
    /// Things worth a reviewer's eye that are not errors (skipped PEM blocks, odd SANs).
    pub warnings: Vec<String>,
}

impl CertificateFacts {
    /// Where `t` (Unix seconds) falls in this certificate's validity.
    pub fn valid_at(&self, t: i64) -> Validity {
        validity(self.not_before, self.not_after, t)
    }
}

impl CertFacts {
    /// Where `t` (Unix seconds) falls for the whole chain: valid only when every certificate is.
    pub fn valid_at(&self, t: i64) -> Validity {
        validity(self.valid_from, self.expires_at, t)
    }

    /// The leaf (first) certificate; `None` only for facts not made by [`parse_pem`].
    pub fn leaf(&self) -> Option<&CertificateFacts> {
        self.certificates.first()
    }
}

fn validity(not_before: i64, not_after: i64, t: i64) -> Validity {
    if t < not_before {
        Validity::NotYetValid
    } else if t > not_after {
        Validity::Expired
    } else {
        Validity::Valid
    }
}

/// Parses a PEM file holding one certificate or a chain (leaf first); a file with no PEM header
/// is read as one DER certificate. Non-certificate PEM blocks are skipped with a warning.
pub fn parse_pem(source_name: &str, bytes: &[u8]) -> Result<CertFacts, IngestError> {
    check_size(source_name, bytes, MAX_INPUT_BYTES)?;
    let mut warnings = Vec::new();
    let mut ders: Vec<(usize, Vec<u8>)> = Vec::new();
    let blocks = pem_blocks(source_name, bytes)?;
    if blocks.is_empty() {
        let trimmed = bytes.iter().skip_while(|b| b.is_ascii_whitespace()).count();
        if trimmed == 0 {
            return Err(IngestError::Empty {
                source_name: source_name.to_string(),
                reason: "the file is empty; expected a PEM certificate".to_string(),
            });
        }
        if bytes.first() == Some(&0x30) {
            ders.push((1, bytes.to_vec()));
        } else {
            return Err(IngestError::malformed(
                source_name,
                None,
                None,
                "no \"-----BEGIN CERTIFICATE-----\" block found and the bytes are not a DER certificate",
            ));
        }
    }
    for (line, range) in blocks {
        let (pem, _) = Pem::read(Cursor::new(&bytes[range])).map_err(|e| {
            IngestError::malformed(
                source_name,
                Some(line),
                None,
                format!("bad PEM block ({e})"),
            )
        })?;
        if pem.label == "CERTIFICATE" || pem.label == "X509 CERTIFICATE" {
            ders.push((line, pem.contents));
        } else {
            warnings.push(format!(
                "skipped the PEM block labelled {:?} at line {line}: it is not a certificate",
                pem.label
            ));
        }
    }
    if ders.is_empty() {
        return Err(IngestError::Empty {
            source_name: source_name.to_string(),
            reason: "the file holds no certificate".to_string(),
        });
    }
    if ders.len() > MAX_CERTIFICATES {
        return Err(IngestError::too_large(
            source_name,
            None,
            "the number of certificates",
            MAX_CERTIFICATES,
            ders.len(),
        ));
    }

    let mut parsed = Vec::with_capacity(ders.len());
    for (line, der) in &ders {
        let (rest, cert) = X509Certificate::from_der(der).map_err(|e| {
            IngestError::malformed(
                source_name,
                Some(*line),
                None,
                format!("the certificate does not parse as X.509 ({e})"),
            )
        })?;
        if !rest.is_empty() {
            warnings.push(format!(
                "the certificate at line {line} is followed by {} stray bytes inside its block",
                rest.len()
            ));
        }
        parsed.push((*line, cert));
    }

    let mut certificates = Vec::with_capacity(parsed.len());
    for (line, cert) in &parsed {
        certificates.push(certificate_facts(source_name, *line, cert, &mut warnings)?);
    }

    let mut links = Vec::new();
    for i in 0..parsed.len().saturating_sub(1) {
        let child = &parsed[i].1;
        let parent = &parsed[i + 1].1;
        let names_match = child.issuer().as_raw() == parent.subject().as_raw();
        let signature = match child.verify_signature(Some(parent.public_key())) {
            Ok(()) => SignatureCheck::Verified,
            Err(X509Error::SignatureUnsupportedAlgorithm) => SignatureCheck::Unsupported,
            Err(_) => SignatureCheck::Failed,
        };
        links.push(ChainLink {
            child: i,
            parent: i + 1,
            names_match,
            signature,
        });
    }
    let chain_links = links
        .iter()
        .all(|l| l.names_match && l.signature != SignatureCheck::Failed);
    let chain_check = if links.is_empty() {
        "single-certificate"
    } else if links
        .iter()
        .all(|l| l.signature == SignatureCheck::Verified)
    {
        "issuer-name-and-signature"
    } else {
        "issuer-name-only"
    }
    .to_string();

    let leaf = &certificates[0];
    let leaf_spiffe_id = match leaf.spiffe_ids.len() {
        1 => Some(leaf.spiffe_ids[0].clone()),
        0 => None,
        n => {
            warnings.push(format!(
                "the leaf certificate carries {n} SPIFFE IDs; an X509-SVID must carry exactly one, so no identity is taken"
            ));
            None
        }
    };
    let expires_at = certificates.iter().map(|c| c.not_after).min().unwrap_or(0);
    let valid_from = certificates.iter().map(|c| c.not_before).max().unwrap_or(0);
    Ok(CertFacts {
        certificates,
        chain_links,
        chain_check,
        links,
        leaf_spiffe_id,
        expires_at,
        valid_from,
        warnings,
    })
}

/// Finds `-----BEGIN …-----` … `-----END …-----` blocks, returning each block's first line
/// number and byte range.
fn pem_blocks(
    source_name: &str,
    bytes: &[u8],
) -> Result<Vec<(usize, std::ops::Range<usize>)>, IngestError> {
    let mut blocks = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    let mut pos = 0;
    let mut line_no = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        line_no += 1;
        let text = line.trim_ascii_start();
        if text.starts_with(b"-----BEGIN ") {
            if let Some((l, _)) = start {
                return Err(IngestError::malformed(
                    source_name,
                    Some(l),
                    None,
                    format!(
                        "the PEM block starting here has no END line before the next BEGIN on line {line_no}"
                    ),
                ));
            }
            start = Some((line_no, pos + (line.len() - text.len())));
        } else if text.starts_with(b"-----END ") {
            match start.take() {
                Some((l, s)) => blocks.push((l, s..pos + line.len())),
                None => {
                    return Err(IngestError::malformed(
                        source_name,
                        Some(line_no),
                        None,
                        "a PEM END line without a BEGIN line",
                    ));
                }
            }
        }
        pos += line.len();
    }
    if let Some((l, _)) = start {
        return Err(IngestError::malformed(
            source_name,
            Some(l),
            None,
            "the PEM block starting here is truncated (no END line)",
        ));
    }
    Ok(blocks)
}

fn certificate_facts(
    source_name: &str,
    line: usize,
    cert: &X509Certificate<'_>,
    warnings: &mut Vec<String>,
) -> Result<CertificateFacts, IngestError> {
    let mut spiffe_ids = Vec::new();
    let mut uri_sans = Vec::new();
    let mut dns_sans = Vec::new();
    let san = cert.subject_alternative_name().map_err(|e| {
        IngestError::malformed(
            source_name,
            Some(line),
            Some("subjectAltName"),
            format!("the extension does not parse ({e})"),
        )
    })?;
    if let Some(san) = san {
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(uri) if uri.starts_with("spiffe://") => match parse_spiffe(uri) {
                    Ok(id) => spiffe_ids.push(id),
                    Err(why) => {
                        warnings.push(format!(
                            "the certificate at line {line} has URI SAN {uri:?} that is not a valid SPIFFE ID ({why})"
                        ));
                        uri_sans.push(uri.to_string());
                    }
                },
                GeneralName::URI(uri) => uri_sans.push(uri.to_string()),
                GeneralName::DNSName(d) => dns_sans.push(d.to_string()),
                _ => {}
            }
        }
    }
    let is_ca = match cert.basic_constraints() {
        Ok(Some(bc)) => bc.value.ca,
        Ok(None) => false,
        Err(e) => {
            return Err(IngestError::malformed(
                source_name,
                Some(line),
                Some("basicConstraints"),
                format!("the extension does not parse ({e})"),
            ));
        }
    };
    let raw_serial = cert.raw_serial();
    let first_nonzero = raw_serial
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(raw_serial.len().saturating_sub(1));
    Ok(CertificateFacts {
        subject: rfc4514(cert.subject()),
        issuer: rfc4514(cert.issuer()),
        serial: hex::encode(&raw_serial[first_nonzero..]),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        spiffe_ids,
        uri_sans,
        dns_sans,
        key_algorithm: key_algorithm(cert.public_key()),
        is_ca,
        self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
    })
}

/// Parses a SPIFFE ID per the SPIFFE ID spec §2: lowercase trust domain of `[a-z0-9.-_]`, path
/// segments of `[A-Za-z0-9.-_]` that are not empty, `.` or `..`, no query, fragment or port.
pub fn parse_spiffe(uri: &str) -> Result<SpiffeId, &'static str> {
    let rest = uri
        .strip_prefix("spiffe://")
        .ok_or("scheme is not spiffe")?;
    let (td, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if td.is_empty() {
        return Err("empty trust domain");
    }
    if !td
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
    {
        return Err("trust domain may only hold lowercase letters, digits, '.', '-' and '_'");
    }
    if !path.is_empty() {
        for seg in path[1..].split('/') {
            if seg.is_empty() || seg == "." || seg == ".." {
                return Err("path has an empty, '.' or '..' segment");
            }
            if !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            {
                return Err("path may only hold letters, digits, '.', '-' and '_'");
            }
        }
    }
    Ok(SpiffeId {
        uri: uri.to_string(),
        trust_domain: td.to_string(),
        path: path.to_string(),
    })
}

/// RFC 4514 string of a name: RDNs in reverse order of the encoding, joined by ",", multi-valued
/// RDNs joined by "+", values escaped, non-string values as `#` + hex of the DER.
fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let ty = oid2abbrev(atv.attr_type(), oid_registry())
                        .map(str::to_string)
                        .unwrap_or_else(|_| atv.attr_type().to_id_string());
                    let value = match atv.as_str() {
                        Ok(s) => escape_4514(s),
                        Err(_) => format!("#{}", hex::encode(atv.attr_value().as_bytes())),
                    };
                    format!("{ty}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn escape_4514(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let n = s.chars().count();
    for (i, c) in s.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == n && c == ' ');
        if special {
            out.push('\\');
            out.push(c);
        } else if c == '\0' {
            out.push_str("\\00");
        } else {
            out.push(c);
        }
    }
    out
}

fn key_algorithm(spki: &SubjectPublicKeyInfo<'_>) -> String {
    let alg = spki.algorithm.algorithm.to_id_string();
    match alg.as_str() {
        "1.3.101.112" => return "Ed25519".to_string(),
        "1.3.101.113" => return "Ed448".to_string(),
        _ => {}
    }
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ECDSA P-256".to_string(),
                Some("1.3.132.0.34") => "ECDSA P-384".to_string(),
                Some("1.3.132.0.35") => "ECDSA P-521".to_string(),
                Some(other) => format!("ECDSA {other}"),
                None => "ECDSA (unknown curve)".to_string(),
            }
        }
        Ok(PublicKey::DSA(_)) => "DSA".to_string(),
        _ => format!("unknown ({alg})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spiffe_ids_parse_and_reject() {
        let id = parse_spiffe("spiffe://cluster.local/ns/payments/sa/payments-api").unwrap();
        assert_eq!(id.trust_domain, "cluster.local");
        assert_eq!(id.path, "/ns/payments/sa/payments-api");
        assert!(parse_spiffe("spiffe://Cluster.Local/x").is_err());
        assert!(parse_spiffe("spiffe:///x").is_err());
        assert!(parse_spiffe("spiffe://td/a//b").is_err());
        assert!(parse_spiffe("spiffe://td/a?x=1").is_err());
    }

    #[test]
    fn validity_bounds_are_inclusive() {
        assert_eq!(validity(10, 20, 9), Validity::NotYetValid);
        assert_eq!(validity(10, 20, 10), Validity::Valid);
        assert_eq!(validity(10, 20, 20), Validity::Valid);
        assert_eq!(validity(10, 20, 21), Validity::Expired);
    }

    #[test]
    fn rfc4514_escapes_specials() {
        assert_eq!(escape_4514("a,b"), "a\\,b");
        assert_eq!(escape_4514(" lead"), "\\ lead");
        assert_eq!(escape_4514("#x"), "\\#x");
    }

    #[test]
    fn truncated_pem_names_the_line() {
        let e = parse_pem("c.pem", b"junk\n-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap_err();
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("truncated"),
            "{e}"
        );
    }
}
