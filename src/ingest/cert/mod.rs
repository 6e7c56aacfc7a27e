//! Certificates: PEM (or DER), a single certificate, a chain in any order, or a trust bundle,
//! read with `x509-parser`. The facts are names, serial, validity, SANs (SPIFFE IDs split
//! out), key usage and constraints per certificate; the chain as RFC 5280 path validation sees
//! it (each link's name chaining, signature and constraints, each broken rule named); and the
//! leaf's SPIFFE ID when the X509-SVID rules hold. Rules and references: docs/IMPORTERS.md.

mod chain;
mod pem;
mod signature;
mod svid;

use serde::{Deserialize, Serialize};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::objects::{oid_registry, oid2abbrev};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name};

pub use chain::{ChainLink, MAX_SIGNATURE_CHECKS};
pub use pem::OpenSslTrust;
pub use signature::SignatureCheck;

use super::{IngestError, check_size};

/// Largest accepted input (a system CA bundle is ~220 KiB).
pub const MAX_INPUT_BYTES: usize = 2 * 1024 * 1024;
/// Most certificates accepted in one file (a system CA bundle holds ~150).
pub const MAX_CERTIFICATES: usize = 1000;

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
    /// The 1-based line of its PEM block (1 for DER input).
    pub line: usize,
    /// Subject distinguished name as an RFC 4514 string (most specific RDN first).
    pub subject: String,
    /// Issuer distinguished name as an RFC 4514 string.
    pub issuer: String,
    /// Serial number as lowercase hex without leading zero bytes; a negative serial (which
    /// RFC 5280 forbids) as `-` and the hex of its magnitude.
    pub serial: String,
    /// X.509 version: 1, 2 or 3.
    pub version: u32,
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
    /// e.g. "ecdsa-with-SHA256", "sha256WithRSA", "RSASSA-PSS".
    pub signature_algorithm: String,
    /// basicConstraints cA flag.
    pub is_ca: bool,
    /// The basicConstraints extension is present.
    pub basic_constraints: bool,
    /// basicConstraints pathLenConstraint.
    pub path_len: Option<u32>,
    /// keyUsage bits by name (`digitalSignature`, `keyCertSign` …); `None` when the extension is
    /// absent.
    pub key_usage: Option<Vec<String>>,
    /// subjectKeyIdentifier / authorityKeyIdentifier keyIdentifier, lowercase hex.
    pub subject_key_id: Option<String>,
    pub authority_key_id: Option<String>,
    /// Subject and issuer are the same name.
    pub self_issued: bool,
    /// OpenSSL trust settings of a `TRUSTED CERTIFICATE` block.
    pub openssl_trust: Option<OpenSslTrust>,
}

/// Facts about a certificate file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertFacts {
    /// Every certificate in file order.
    pub certificates: Vec<CertificateFacts>,
    /// "single", "chain", "bundle" (CA certificates none of which issued another: a trust
    /// bundle), "unlinked" (no certificate issued another) or "mixed" (not one chain).
    pub shape: String,
    /// How the file orders its chain: "leaf-first", "root-first", "unordered", or "none".
    pub order: String,
    /// The chain leaf first, as indices into `certificates` (empty when there is none).
    pub chain: Vec<usize>,
    /// The file is one chain (or one certificate) and every link holds: names chain, each
    /// signature verifies (or uses an algorithm this verifier does not cover), and no rule of
    /// RFC 5280 path validation a file can show is broken.
    pub chain_links: bool,
    /// What was checked: "single-certificate", "names-signatures-and-constraints" (every
    /// signature checked), "names-constraints-and-some-signatures", "names-and-constraints-only",
    /// "bundle" or "not-a-chain".
    pub chain_check: String,
    /// The links, leaf upward (for "unlinked" and "mixed", adjacent pairs in file order).
    pub links: Vec<ChainLink>,
    /// Every rule broken anywhere in the chain, as `rule: detail`.
    pub violations: Vec<String>,
    /// The leaf's SPIFFE ID, only when the leaf and its chain meet the X509-SVID rules.
    pub leaf_spiffe_id: Option<SpiffeId>,
    /// The X509-SVID rules the leaf and its chain break, as `rule: detail`; empty exactly when
    /// `leaf_spiffe_id` is set.
    pub svid_violations: Vec<String>,
    /// Earliest `not_after` of the chain (of every certificate when there is no chain).
    pub expires_at: i64,
    /// Latest `not_before` of the chain (of every certificate when there is no chain).
    pub valid_from: i64,
    /// Things worth a reviewer's eye that are not errors (skipped PEM blocks, odd SANs,
    /// repeated certificates, file order).
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

    /// The leaf: the first certificate of the chain, else the file's first certificate.
    pub fn leaf(&self) -> Option<&CertificateFacts> {
        self.chain
            .first()
            .and_then(|&i| self.certificates.get(i))
            .or_else(|| self.certificates.first())
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

const KEY_USAGE_NAMES: [&str; 9] = [
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
];

/// Parses a certificate file: PEM blocks (`CERTIFICATE`, `X509 CERTIFICATE`, `TRUSTED
/// CERTIFICATE`) in any order, or concatenated DER. Non-certificate PEM blocks are skipped with
/// a warning; bytes after a certificate's DER are refused.
pub fn parse_pem(source_name: &str, bytes: &[u8]) -> Result<CertFacts, IngestError> {
    check_size(source_name, bytes, MAX_INPUT_BYTES)?;
    // A UTF-8 byte-order mark is not content (it holds no newline, so lines stay as written).
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut warnings = Vec::new();
    let raws = pem::read(source_name, bytes, &mut warnings)?;
    if raws.is_empty() {
        return Err(IngestError::Empty {
            source_name: source_name.to_string(),
            reason: "the file holds no certificate".to_string(),
        });
    }
    if raws.len() > MAX_CERTIFICATES {
        return Err(IngestError::too_large(
            source_name,
            None,
            "the number of certificates",
            MAX_CERTIFICATES,
            raws.len(),
        ));
    }
    let mut parsed = Vec::with_capacity(raws.len());
    for r in &raws {
        let (_, cert) = X509Certificate::from_der(&r.der[..r.cert_len]).map_err(|e| {
            IngestError::malformed(
                source_name,
                Some(r.line),
                None,
                format!("the certificate does not parse as X.509 ({e})"),
            )
        })?;
        parsed.push(cert);
    }
    let mut certificates = Vec::with_capacity(parsed.len());
    let mut infos = Vec::with_capacity(parsed.len());
    let mut uris = Vec::with_capacity(parsed.len());
    for (i, (r, cert)) in raws.iter().zip(&parsed).enumerate() {
        let (facts, info_parts, all_uris) = certificate_facts(source_name, r, cert, &mut warnings)?;
        infos.push(chain::Info {
            cert,
            der: &r.der[..r.cert_len],
            line: r.line,
            subject: cert.subject().as_raw(),
            issuer: cert.issuer().as_raw(),
            version: facts.version,
            basic_constraints: facts.basic_constraints,
            is_ca: facts.is_ca,
            path_len: facts.path_len,
            key_usage: info_parts.key_usage,
            ski: info_parts.ski,
            aki: info_parts.aki,
            not_before: facts.not_before,
            not_after: facts.not_after,
            label: format!("certificate {i} (line {}, {})", r.line, facts.subject),
        });
        certificates.push(facts);
        uris.push(all_uris);
    }

    let chain = chain::build(&infos);
    warnings.extend(chain.warnings.iter().cloned());
    let mut violations: Vec<String> = chain
        .links
        .iter()
        .flat_map(|l| l.violations.iter().cloned())
        .collect();
    // RFC 5280 §4.2.1.9: without cA, keyCertSign must not be asserted.
    let members: Vec<usize> = if chain.path.is_empty() {
        (0..infos.len()).collect()
    } else {
        chain.path.clone()
    };
    for &i in &members {
        if !infos[i].is_ca
            && infos[i]
                .key_usage
                .is_some_and(|k| k & chain::KEY_CERT_SIGN != 0)
        {
            violations.push(format!(
                "key-cert-sign-without-ca: {} asserts keyCertSign without basicConstraints cA (RFC 5280 §4.2.1.9)",
                infos[i].label
            ));
        }
    }
    let (chain_links, chain_check) = match chain.shape {
        "single" => (violations.is_empty(), "single-certificate"),
        "chain" => {
            let checked = chain
                .links
                .iter()
                .filter(|l| {
                    matches!(
                        l.signature,
                        SignatureCheck::Verified | SignatureCheck::Failed
                    )
                })
                .count();
            let check = if checked == chain.links.len() {
                "names-signatures-and-constraints"
            } else if checked == 0 {
                "names-and-constraints-only"
            } else {
                "names-constraints-and-some-signatures"
            };
            (violations.is_empty(), check)
        }
        "bundle" => (false, "bundle"),
        _ => (false, "not-a-chain"),
    };
    for l in &chain.links {
        if l.signature == SignatureCheck::Unsupported {
            warnings.push(format!(
                "the signature of certificate {} was not checked: {}",
                l.child,
                l.signature_note
                    .as_deref()
                    .unwrap_or("unsupported algorithm")
            ));
        }
    }

    // go-spiffe reads the file in its order: the first certificate is the leaf, the rest sign.
    let (leaf_spiffe_id, svid_violations) = if chain.shape == "bundle" {
        (
            None,
            vec!["bundle: the file is a trust bundle, which holds no leaf".to_string()],
        )
    } else {
        let signers: Vec<&chain::Info> = infos.iter().skip(1).collect();
        let (id, mut broken) = svid::check(&infos[0], &uris[0], &signers);
        if matches!(chain.order, "root-first" | "unordered") {
            broken.push(
                "leaf-first: the file does not put the chain's leaf first; go-spiffe reads the first certificate as the leaf".to_string(),
            );
        }
        if broken.is_empty() {
            (id, broken)
        } else {
            (None, broken)
        }
    };
    let span: Vec<&CertificateFacts> = if chain.path.is_empty() {
        certificates.iter().collect()
    } else {
        chain.path.iter().map(|&i| &certificates[i]).collect()
    };
    let expires_at = span.iter().map(|c| c.not_after).min().unwrap_or(0);
    let valid_from = span.iter().map(|c| c.not_before).max().unwrap_or(0);
    Ok(CertFacts {
        shape: chain.shape.to_string(),
        order: chain.order.to_string(),
        chain: chain.path.clone(),
        chain_links,
        chain_check: chain_check.to_string(),
        links: chain.links,
        violations,
        leaf_spiffe_id,
        svid_violations,
        expires_at,
        valid_from,
        warnings,
        certificates,
    })
}

/// What path validation needs beyond the facts.
struct InfoParts {
    key_usage: Option<u16>,
    ski: Option<Vec<u8>>,
    aki: Option<Vec<u8>>,
}

fn certificate_facts(
    source_name: &str,
    r: &pem::Raw,
    cert: &X509Certificate<'_>,
    warnings: &mut Vec<String>,
) -> Result<(CertificateFacts, InfoParts, Vec<String>), IngestError> {
    let line = r.line;
    let bad_ext = |name: &str, e: x509_parser::error::X509Error| {
        IngestError::malformed(
            source_name,
            Some(line),
            Some(name),
            format!("the extension does not parse ({e})"),
        )
    };
    let mut spiffe_ids = Vec::new();
    let mut uri_sans = Vec::new();
    let mut dns_sans = Vec::new();
    let mut all_uris = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|e| bad_ext("subjectAltName", e))?;
    if let Some(san) = san {
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(uri) => {
                    all_uris.push(uri.to_string());
                    if uri.starts_with("spiffe://") {
                        match parse_spiffe(uri) {
                            Ok(id) => spiffe_ids.push(id),
                            Err(why) => {
                                warnings.push(format!(
                                    "the certificate at line {line} has URI SAN {uri:?} that is not a valid SPIFFE ID ({why})"
                                ));
                                uri_sans.push(uri.to_string());
                            }
                        }
                    } else {
                        uri_sans.push(uri.to_string());
                    }
                }
                GeneralName::DNSName(d) => {
                    if d.contains('/') {
                        warnings.push(format!(
                            "the certificate at line {line} has the DNS SAN {d:?}, which contains '/' and is no host name"
                        ));
                    }
                    dns_sans.push(d.to_string());
                }
                _ => {}
            }
        }
    }
    let bc = cert
        .basic_constraints()
        .map_err(|e| bad_ext("basicConstraints", e))?;
    let ku = cert.key_usage().map_err(|e| bad_ext("keyUsage", e))?;
    let key_usage_flags = ku.map(|k| k.value.flags);
    let mut ski = None;
    let mut aki = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => {}
        }
    }
    let raw_serial = cert.raw_serial();
    let serial = serial_text(raw_serial);
    if serial.starts_with('-') {
        warnings.push(format!(
            "the certificate at line {line} has the negative serial number {serial}; RFC 5280 §4.1.2.2 requires a positive one (Go's crypto/x509 refuses it)"
        ));
    } else if serial == "00" {
        warnings.push(format!(
            "the certificate at line {line} has the serial number 0; RFC 5280 §4.1.2.2 requires a positive one"
        ));
    }
    if raw_serial.len() > 20 {
        warnings.push(format!(
            "the certificate at line {line} has a serial number of {} octets; RFC 5280 §4.1.2.2 allows at most 20",
            raw_serial.len()
        ));
    }
    if let Some(t) = &r.trust
        && !t.rejected.is_empty()
    {
        warnings.push(format!(
            "the certificate at line {line} is a TRUSTED CERTIFICATE that OpenSSL rejects for {}",
            t.rejected.join(", ")
        ));
    }
    let facts = CertificateFacts {
        line,
        subject: rfc4514(cert.subject()),
        issuer: rfc4514(cert.issuer()),
        serial,
        version: cert.version().0 + 1,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        spiffe_ids,
        uri_sans,
        dns_sans,
        key_algorithm: key_algorithm(cert.public_key()),
        signature_algorithm: signature::algorithm_name(
            &cert.signature_algorithm.algorithm.to_id_string(),
        ),
        is_ca: bc.as_ref().is_some_and(|b| b.value.ca),
        basic_constraints: bc.is_some(),
        path_len: bc.as_ref().and_then(|b| b.value.path_len_constraint),
        key_usage: key_usage_flags.map(|f| {
            KEY_USAGE_NAMES
                .iter()
                .enumerate()
                .filter(|(bit, _)| f & (1 << bit) != 0)
                .map(|(_, n)| n.to_string())
                .collect()
        }),
        subject_key_id: ski.as_ref().map(hex::encode),
        authority_key_id: aki.as_ref().map(hex::encode),
        self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        openssl_trust: r.trust.clone(),
    };
    Ok((
        facts,
        InfoParts {
            key_usage: key_usage_flags,
            ski,
            aki,
        },
        all_uris,
    ))
}

/// The serial as hex of its two's-complement DER bytes without leading zero bytes; negative
/// serials as `-` and the hex of the magnitude.
fn serial_text(raw: &[u8]) -> String {
    if raw.first().is_some_and(|b| b & 0x80 != 0) {
        // Two's complement: invert and add one.
        let mut mag: Vec<u8> = raw.iter().map(|b| !b).collect();
        for b in mag.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
        let first = mag.iter().position(|&b| b != 0).unwrap_or(mag.len() - 1);
        return format!("-{}", hex::encode(&mag[first..]));
    }
    let first = raw
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    hex::encode(&raw[first..])
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
    fn negative_serials_are_written_with_a_sign() {
        assert_eq!(serial_text(&[0x00, 0x8f]), "8f");
        assert_eq!(serial_text(&[0xff]), "-01");
        assert_eq!(serial_text(&[0x80, 0x00]), "-8000");
        assert_eq!(serial_text(&[0x00]), "00");
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
