//! Putting a file's certificates in chain order and checking each link by RFC 5280 path
//! validation (§6.1), as far as one file can show it: name chaining, the signature, the issuer
//! being a CA allowed to sign certificates, path length constraints, and nested validity.
//! Go's `crypto/x509` is the reference for the details (`Certificate.CheckSignatureFrom`,
//! `isValid` in verify.go).

use serde::{Deserialize, Serialize};
use x509_parser::certificate::X509Certificate;

use super::signature::{self, SignatureCheck};

/// What one certificate contributes to path validation.
pub(super) struct Info<'a> {
    pub cert: &'a X509Certificate<'a>,
    pub der: &'a [u8],
    pub line: usize,
    pub subject: &'a [u8],
    pub issuer: &'a [u8],
    pub version: u32,
    pub basic_constraints: bool,
    pub is_ca: bool,
    pub path_len: Option<u32>,
    /// keyUsage bits (bit 0 = digitalSignature … bit 5 = keyCertSign, bit 6 = cRLSign), or
    /// `None` when the extension is absent.
    pub key_usage: Option<u16>,
    pub ski: Option<Vec<u8>>,
    pub aki: Option<Vec<u8>>,
    pub not_before: i64,
    pub not_after: i64,
    pub label: String,
}

/// The signature-check budget of one file (issuer search and links together), in units of one
/// P-256, RSA or Ed25519 check (a P-384 check costs 4, a P-521 check 12: `signature::cost`); a
/// link beyond it is reported unchecked. Real chains need a handful; the budget keeps a hostile
/// file of a thousand certificates from costing a thousand signature checks.
pub const MAX_SIGNATURE_CHECKS: usize = 256;

/// keyUsage keyCertSign, as x509-parser numbers the flags.
pub(super) const KEY_CERT_SIGN: u16 = 1 << 5;

impl Info<'_> {
    fn self_issued(&self) -> bool {
        self.subject == self.issuer
    }
}

/// The link from certificate `child` to its issuer `parent` (indices into the file's
/// certificates).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainLink {
    pub child: usize,
    pub parent: usize,
    /// The child's issuer DN equals the parent's subject DN (byte-exact DER, as Go compares).
    pub names_match: bool,
    pub signature: SignatureCheck,
    /// Why the signature was not verified, when it was not.
    pub signature_note: Option<String>,
    /// The path-validation rules this link breaks, as `rule: detail`.
    pub violations: Vec<String>,
}

/// The chain a file holds.
pub(super) struct Chain {
    /// "single", "chain", "bundle" (CA certificates none of which issues another), "unlinked"
    /// (no certificate issues another, not all CAs) or "mixed" (more than one chain).
    pub shape: &'static str,
    /// "leaf-first", "root-first", "unordered", or "none" when there is no single chain.
    pub order: &'static str,
    /// The certificates of the chain, leaf first (indices into the file's certificates).
    pub path: Vec<usize>,
    pub links: Vec<ChainLink>,
    pub warnings: Vec<String>,
}

/// Orders `certs` into a chain and checks its links.
pub(super) fn build(certs: &[Info<'_>]) -> Chain {
    let mut warnings = Vec::new();
    // Identical certificates (a root repeated in a bundle) count once.
    let mut unique: Vec<usize> = Vec::new();
    for (i, c) in certs.iter().enumerate() {
        match unique.iter().find(|&&u| certs[u].der == c.der) {
            Some(&first) => warnings.push(format!(
                "the certificate at line {} repeats the one at line {} ({}); the repeat is ignored",
                c.line, certs[first].line, c.label
            )),
            None => unique.push(i),
        }
    }
    // The issuer of each certificate among the others: the one whose subject is its issuer
    // name, preferring the one whose subjectKeyIdentifier is its authorityKeyIdentifier. A
    // self-issued certificate (subject = issuer) is a root unless another certificate of that
    // name verifiably signed it (a key rollover, or a leaf named like its CA).
    // Signatures checked, capped (MAX_SIGNATURE_CHECKS) so a file of many same-named
    // certificates cannot make the search quadratic, nor a long file cost one per certificate.
    let mut tries = 0usize;
    let parent_of: Vec<Option<usize>> = unique
        .iter()
        .map(|&i| {
            let c = &certs[i];
            let candidates: Vec<usize> = unique
                .iter()
                .copied()
                .filter(|&j| j != i && certs[j].subject == c.issuer)
                .collect();
            if c.self_issued() {
                let mut verifies = |key| {
                    tries += signature::cost(key);
                    tries <= MAX_SIGNATURE_CHECKS
                        && signature::check(c.cert, key).0 == SignatureCheck::Verified
                };
                if candidates.is_empty()
                    || (c.aki.is_some() && c.aki == c.ski)
                    || verifies(c.cert.public_key())
                {
                    return None;
                }
                return candidates
                    .into_iter()
                    .filter(|&j| c.aki.is_none() || certs[j].ski == c.aki)
                    .find(|&j| verifies(certs[j].cert.public_key()));
            }
            candidates
                .iter()
                .copied()
                .find(|&j| c.aki.is_some() && certs[j].ski == c.aki)
                .or(candidates.first().copied())
        })
        .collect();
    let is_parent = |j: usize| parent_of.contains(&Some(j));
    let file_links = |certs: &[Info<'_>], tries: &mut usize| -> Vec<ChainLink> {
        unique
            .windows(2)
            .map(|w| link(certs, w, 1, tries))
            .collect()
    };
    if unique.len() == 1 {
        return Chain {
            shape: "single",
            order: "leaf-first",
            path: vec![unique[0]],
            links: Vec::new(),
            warnings,
        };
    }
    if parent_of.iter().all(Option::is_none) {
        let all_ca = unique.iter().all(|&i| certs[i].is_ca);
        return Chain {
            shape: if all_ca { "bundle" } else { "unlinked" },
            order: "none",
            path: Vec::new(),
            links: if all_ca {
                Vec::new()
            } else {
                file_links(certs, &mut tries)
            },
            warnings,
        };
    }
    let leaves: Vec<usize> = unique.iter().copied().filter(|&i| !is_parent(i)).collect();
    let mut path = Vec::new();
    if let [leaf] = leaves.as_slice() {
        let mut at = Some(*leaf);
        while let Some(i) = at {
            if path.contains(&i) {
                break;
            }
            path.push(i);
            at = parent_of[unique.iter().position(|&u| u == i).expect("unique")];
        }
    }
    if path.len() != unique.len() {
        warnings.push(
            "the certificates do not form one chain (there is more than one leaf, or certificates that belong to no chain); links are checked in file order".to_string(),
        );
        return Chain {
            shape: "mixed",
            order: "none",
            path: Vec::new(),
            links: file_links(certs, &mut tries),
            warnings,
        };
    }
    let order = if path == unique {
        "leaf-first"
    } else if path.iter().rev().copied().eq(unique.iter().copied()) {
        warnings.push(
            "the file puts the root first; the chain is checked leaf first, as TLS and SPIFFE present it".to_string(),
        );
        "root-first"
    } else {
        warnings.push(
            "the file's certificates are not in chain order; the chain is checked leaf first"
                .to_string(),
        );
        "unordered"
    };
    let mut links = Vec::new();
    for k in 1..path.len() {
        links.push(link(certs, &path, k, &mut tries));
    }
    Chain {
        shape: "chain",
        order,
        path,
        links,
        warnings,
    }
}

/// The link from `path[k - 1]` to its issuer `path[k]`, with every rule it breaks.
fn link(certs: &[Info<'_>], path: &[usize], k: usize, tries: &mut usize) -> ChainLink {
    let (c, p) = (&certs[path[k - 1]], &certs[path[k]]);
    let names_match = c.issuer == p.subject;
    *tries += signature::cost(p.cert.public_key());
    let (signature, signature_note) = if *tries <= MAX_SIGNATURE_CHECKS {
        signature::check(c.cert, p.cert.public_key())
    } else {
        (
            SignatureCheck::Unsupported,
            Some(format!(
                "not checked: the file's signature checks exceed evl's budget of {MAX_SIGNATURE_CHECKS} units (one per P-256, RSA or Ed25519 check, 4 per P-384, 12 per P-521)"
            )),
        )
    };
    let mut violations = Vec::new();
    let pl = &p.label;
    if !names_match {
        violations.push(format!(
            "name-mismatch: the issuer of {} is not the subject of {pl} (RFC 5280 §6.1.3 (a)(4))",
            c.label
        ));
    }
    match signature {
        SignatureCheck::Failed => violations.push(format!(
            "signature-failed: {} (RFC 5280 §6.1.3 (a)(1))",
            signature_note
                .as_deref()
                .unwrap_or("the signature does not verify")
        )),
        SignatureCheck::Insecure => violations.push(format!(
            "insecure-signature: {}",
            signature_note.as_deref().unwrap_or("")
        )),
        SignatureCheck::Verified | SignatureCheck::Unsupported => {}
    }
    // Go's CheckSignatureFrom: a v3 issuer needs basicConstraints with cA; a v1 issuer (no
    // extensions) may sign; a keyUsage, when present, must assert keyCertSign.
    if (p.version == 3 && !p.basic_constraints) || (p.basic_constraints && !p.is_ca) {
        violations.push(format!(
            "issuer-not-ca: {pl} does not assert basicConstraints cA, so its key must not verify certificate signatures (RFC 5280 §4.2.1.9, §6.1.4 (k))"
        ));
    }
    if p.key_usage.is_some_and(|ku| ku & KEY_CERT_SIGN == 0) {
        violations.push(format!(
            "issuer-lacks-key-cert-sign: {pl} has a keyUsage without keyCertSign (RFC 5280 §4.2.1.3, §6.1.4 (n))"
        ));
    }
    // pathLenConstraint: the non-self-issued intermediates below the issuer (the leaf does not
    // count) may number at most its value (RFC 5280 §4.2.1.9, §6.1.4 (l), (m)).
    if let Some(max) = p.path_len.filter(|_| p.is_ca) {
        let below = path[1..k]
            .iter()
            .filter(|&&i| !certs[i].self_issued())
            .count();
        if below > max as usize {
            violations.push(format!(
                "path-length-exceeded: {pl} allows {max} intermediate certificate(s) below it, the chain has {below} (RFC 5280 §4.2.1.9, §6.1.4 (m))"
            ));
        }
    }
    if c.not_before < p.not_before || c.not_after > p.not_after {
        violations.push(format!(
            "validity-not-nested: {} is valid outside its issuer's validity; the chain validates only while both are valid (RFC 5280 §6.1.3 (a)(2))",
            c.label
        ));
    }
    ChainLink {
        child: path[k - 1],
        parent: path[k],
        names_match,
        signature,
        signature_note,
        violations,
    }
}
