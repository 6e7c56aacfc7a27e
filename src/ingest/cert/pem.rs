//! Finding certificates in a file: PEM blocks (`CERTIFICATE`, `X509 CERTIFICATE`, OpenSSL's
//! `TRUSTED CERTIFICATE`) or concatenated DER, refusing trailing bytes after a certificate as
//! Go's `x509.ParseCertificate` ("x509: trailing data") and OpenSSL do.

use std::io::Cursor;

use serde::{Deserialize, Serialize};
use x509_parser::asn1_rs::{Any, Class, FromDer, Oid, Tag};
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;

use crate::ingest::IngestError;

/// One certificate's DER, where it starts, and OpenSSL trust settings when it came in a
/// `TRUSTED CERTIFICATE` block.
pub(super) struct Raw {
    pub line: usize,
    pub der: Vec<u8>,
    /// Length of the certificate's DER within `der` (the rest is the OpenSSL aux structure).
    pub cert_len: usize,
    pub trust: Option<OpenSslTrust>,
}

/// OpenSSL's trust settings (`X509_CERT_AUX`) carried by a `TRUSTED CERTIFICATE` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSslTrust {
    /// Purposes the certificate is trusted for (`serverAuth`, `clientAuth` … or OIDs).
    pub trusted: Vec<String>,
    /// Purposes the certificate is explicitly rejected for.
    pub rejected: Vec<String>,
    /// The friendly name, if any.
    pub alias: Option<String>,
}

/// Reads every certificate of `bytes` (PEM, or DER when no PEM block is found); other PEM
/// blocks are skipped with a warning.
pub(super) fn read(
    source_name: &str,
    bytes: &[u8],
    warnings: &mut Vec<String>,
) -> Result<Vec<Raw>, IngestError> {
    let blocks = blocks(source_name, bytes)?;
    if blocks.is_empty() {
        return read_der(source_name, bytes);
    }
    let mut out = Vec::new();
    for (line, range) in blocks {
        let (pem, _) = Pem::read(Cursor::new(&bytes[range])).map_err(|e| {
            IngestError::malformed(
                source_name,
                Some(line),
                None,
                format!("bad PEM block ({e})"),
            )
        })?;
        match pem.label.as_str() {
            "CERTIFICATE" | "X509 CERTIFICATE" => {
                let cert_len = cert_len(source_name, line, &pem.contents)?;
                if cert_len != pem.contents.len() {
                    return Err(trailing(source_name, line, pem.contents.len() - cert_len));
                }
                out.push(Raw {
                    line,
                    der: pem.contents,
                    cert_len,
                    trust: None,
                });
            }
            "TRUSTED CERTIFICATE" => {
                let cert_len = cert_len(source_name, line, &pem.contents)?;
                let trust = openssl_aux(&pem.contents[cert_len..]).ok_or_else(|| {
                    IngestError::malformed(
                        source_name,
                        Some(line),
                        Some("TRUSTED CERTIFICATE"),
                        "the OpenSSL trust settings after the certificate do not parse as X509_CERT_AUX",
                    )
                })?;
                out.push(Raw {
                    line,
                    der: pem.contents,
                    cert_len,
                    trust: Some(trust),
                });
            }
            label => warnings.push(format!(
                "skipped the PEM block labelled {label:?} at line {line}: it is not a certificate"
            )),
        }
    }
    Ok(out)
}

fn trailing(source_name: &str, line: usize, n: usize) -> IngestError {
    IngestError::malformed(
        source_name,
        Some(line),
        None,
        format!(
            "the certificate is followed by {n} bytes of trailing data inside its block; Go's x509.ParseCertificate and OpenSSL refuse such a certificate"
        ),
    )
}

/// The length of the certificate DER at the start of `der`.
fn cert_len(source_name: &str, line: usize, der: &[u8]) -> Result<usize, IngestError> {
    let (rest, _) = X509Certificate::from_der(der).map_err(|e| {
        IngestError::malformed(
            source_name,
            Some(line),
            None,
            format!("the certificate does not parse as X.509 ({e})"),
        )
    })?;
    Ok(der.len() - rest.len())
}

/// Concatenated DER certificates (Go's `x509.ParseCertificates`): every byte must belong to a
/// certificate.
fn read_der(source_name: &str, bytes: &[u8]) -> Result<Vec<Raw>, IngestError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::Empty {
            source_name: source_name.to_string(),
            reason: "the file is empty; expected a PEM certificate".to_string(),
        });
    }
    if bytes.first() != Some(&0x30) {
        return Err(IngestError::malformed(
            source_name,
            None,
            None,
            "no \"-----BEGIN CERTIFICATE-----\" block found and the bytes are not a DER certificate",
        ));
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let len = match X509Certificate::from_der(rest) {
            Ok((after, _)) => rest.len() - after.len(),
            Err(e) if out.is_empty() => {
                return Err(IngestError::malformed(
                    source_name,
                    None,
                    Some("DER"),
                    format!("the certificate does not parse as X.509 ({e})"),
                ));
            }
            Err(_) => {
                return Err(IngestError::malformed(
                    source_name,
                    None,
                    Some("DER"),
                    format!(
                        "{} bytes of trailing data follow the DER certificate ending at byte {at}; Go's x509.ParseCertificates and OpenSSL refuse them",
                        rest.len()
                    ),
                ));
            }
        };
        out.push(Raw {
            line: 1,
            der: rest[..len].to_vec(),
            cert_len: len,
            trust: None,
        });
        at += len;
    }
    Ok(out)
}

/// The name OpenSSL gives a trust purpose OID.
fn purpose(oid: &Oid<'_>) -> String {
    let id = oid.to_id_string();
    match id.as_str() {
        "1.3.6.1.5.5.7.3.1" => "serverAuth",
        "1.3.6.1.5.5.7.3.2" => "clientAuth",
        "1.3.6.1.5.5.7.3.3" => "codeSigning",
        "1.3.6.1.5.5.7.3.4" => "emailProtection",
        "1.3.6.1.5.5.7.3.8" => "timeStamping",
        "1.3.6.1.5.5.7.3.9" => "OCSPSigning",
        "2.5.29.37.0" => "anyExtendedKeyUsage",
        _ => return id,
    }
    .to_string()
}

fn oids(data: &[u8]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut i = data;
    while !i.is_empty() {
        let (rest, oid) = Oid::from_der(i).ok()?;
        out.push(purpose(&oid));
        i = rest;
    }
    Some(out)
}

/// Parses `X509_CERT_AUX ::= SEQUENCE { trust SEQUENCE OF OID OPTIONAL, reject [0] IMPLICIT
/// SEQUENCE OF OID OPTIONAL, alias UTF8String OPTIONAL, keyid OCTET STRING OPTIONAL, other [1]
/// IMPLICIT SEQUENCE OF AlgorithmIdentifier OPTIONAL }` (OpenSSL `crypto/x509/x_x509a.c`);
/// nothing may follow it. An empty aux means no trust settings.
fn openssl_aux(aux: &[u8]) -> Option<OpenSslTrust> {
    let mut trust = OpenSslTrust {
        trusted: Vec::new(),
        rejected: Vec::new(),
        alias: None,
    };
    if aux.is_empty() {
        return Some(trust);
    }
    let (rest, seq) = Any::from_der(aux).ok()?;
    if !rest.is_empty() || seq.tag() != Tag::Sequence || seq.class() != Class::Universal {
        return None;
    }
    let mut i = seq.data;
    while !i.is_empty() {
        let (rest, item) = Any::from_der(i).ok()?;
        match (item.class(), item.tag()) {
            (Class::Universal, Tag::Sequence) => trust.trusted = oids(item.data)?,
            (Class::ContextSpecific, Tag(0)) => trust.rejected = oids(item.data)?,
            (Class::Universal, Tag::Utf8String) => {
                trust.alias = Some(String::from_utf8(item.data.to_vec()).ok()?)
            }
            (Class::Universal, Tag::OctetString) | (Class::ContextSpecific, Tag(1)) => {}
            _ => return None,
        }
        i = rest;
    }
    Some(trust)
}

/// Finds `-----BEGIN …-----` … `-----END …-----` blocks, returning each block's first line
/// number and byte range.
pub(super) fn blocks(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_aux_parses_trust_reject_and_alias() {
        // SEQUENCE { SEQUENCE { serverAuth }, [0] { clientAuth }, UTF8String "root" }
        let aux = [
            0x30, 0x1e, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01,
            0xa0, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02, 0x0c, 0x04,
            b'r', b'o', b'o', b't',
        ];
        let t = openssl_aux(&aux).unwrap();
        assert_eq!(t.trusted, vec!["serverAuth"]);
        assert_eq!(t.rejected, vec!["clientAuth"]);
        assert_eq!(t.alias.as_deref(), Some("root"));
        assert!(
            openssl_aux(&[0x30, 0x00, 0x00]).is_none(),
            "bytes after the aux"
        );
        assert!(openssl_aux(&[0x02, 0x01, 0x01]).is_none(), "not a SEQUENCE");
    }
}
