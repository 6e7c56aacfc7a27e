//! The X509-SVID rules (SPIFFE X509-SVID specification §4 and §5), as go-spiffe's `x509svid`
//! package applies them when it loads an SVID (`svid.go` `validateCertificates`,
//! `validateLeafCertificate`, `validateSigningCertificates`, `validateKeyUsage`; `verify.go`
//! `IDFromCert`).

use super::SpiffeId;
use super::chain::{Info, KEY_CERT_SIGN};
use super::parse_spiffe;

const DIGITAL_SIGNATURE: u16 = 1;
const CRL_SIGN: u16 = 1 << 6;

/// The leaf's SPIFFE ID when every rule holds, else the rules broken (`rule: detail`).
pub(super) fn check(
    leaf: &Info<'_>,
    uris: &[String],
    signers: &[&Info<'_>],
) -> (Option<SpiffeId>, Vec<String>) {
    let mut broken = Vec::new();
    let mut id = None;
    if uris.is_empty() {
        broken.push(
            "one-uri-san: the leaf carries no URI SAN, so no SPIFFE ID (x509svid: certificate contains no URI SAN)".to_string(),
        );
    } else if uris.len() > 1 {
        broken.push(format!(
            "one-uri-san: the leaf carries {} URI SANs; an X509-SVID carries exactly one (x509svid: certificate contains more than one URI SAN)",
            uris.len()
        ));
    } else {
        match parse_spiffe(&uris[0]) {
            Err(why) => broken.push(format!(
                "spiffe-id: the URI SAN {:?} is not a valid SPIFFE ID ({why})",
                uris[0]
            )),
            Ok(parsed) if parsed.path.is_empty() => broken.push(format!(
                "non-root-path: the SPIFFE ID {:?} has no path (x509svid: leaf certificate SPIFFE ID must have a non-root path)",
                uris[0]
            )),
            Ok(parsed) => id = Some(parsed),
        }
    }
    if leaf.is_ca {
        broken.push(
            "leaf-not-ca: the leaf asserts basicConstraints cA (x509svid: leaf certificate must not have CA flag set to true)".to_string(),
        );
    }
    let ku = leaf.key_usage.unwrap_or(0);
    if ku & DIGITAL_SIGNATURE == 0 {
        broken.push(
            "leaf-digital-signature: the leaf's keyUsage lacks digitalSignature (x509svid: leaf certificate must have 'digitalSignature' set as key usage)".to_string(),
        );
    }
    if ku & KEY_CERT_SIGN != 0 {
        broken.push(
            "leaf-no-key-cert-sign: the leaf's keyUsage asserts keyCertSign (x509svid: leaf certificate must not have 'keyCertSign' set as key usage)".to_string(),
        );
    }
    if ku & CRL_SIGN != 0 {
        broken.push(
            "leaf-no-crl-sign: the leaf's keyUsage asserts cRLSign (x509svid: leaf certificate must not have 'cRLSign' set as key usage)".to_string(),
        );
    }
    for s in signers {
        if !s.is_ca {
            broken.push(format!(
                "signing-ca: {} does not assert basicConstraints cA (x509svid: signing certificate must have CA flag set to true)",
                s.label
            ));
        }
        if s.key_usage.unwrap_or(0) & KEY_CERT_SIGN == 0 {
            broken.push(format!(
                "signing-key-cert-sign: {} lacks keyUsage keyCertSign (x509svid: signing certificate must have 'keyCertSign' set as key usage)",
                s.label
            ));
        }
    }
    if broken.is_empty() {
        (id, broken)
    } else {
        (None, broken)
    }
}
