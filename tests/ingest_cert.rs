//! Certificate importer against certificates generated with rcgen.

use evl::ingest::cert::{self, SignatureCheck, Validity};
use evl::ingest::{Facts, Importer};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber, date_time_ymd,
};

const APR_12_2026: i64 = 1_775_952_000; // 2026-04-12T00:00:00Z

fn leaf_params(
    cn: &str,
    spiffe: Option<&str>,
    from: (i32, u8, u8),
    to: (i32, u8, u8),
) -> CertificateParams {
    let mut p = CertificateParams::new(vec![format!("{cn}.svc.cluster.local")]).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "cluster.local");
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    if let Some(id) = spiffe {
        p.subject_alt_names
            .push(SanType::URI(id.try_into().unwrap()));
    }
    p.not_before = date_time_ymd(from.0, from.1, from.2);
    p.not_after = date_time_ymd(to.0, to.1, to.2);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = date_time_ymd(2026, 1, 1);
    p.not_after = date_time_ymd(2027, 1, 1);
    p
}

fn self_signed(p: &CertificateParams) -> String {
    let key = KeyPair::generate().unwrap();
    p.self_signed(&key).unwrap().pem()
}

/// A CA and a leaf it signed, as (leaf PEM, CA PEM).
fn ca_and_leaf(spiffe: &str) -> (String, String) {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let ca_p = ca_params("mesh-intermediate-ca");
    let ca_cert = ca_p.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_p, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params("payments-api", Some(spiffe), (2026, 4, 1), (2026, 4, 20))
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    (leaf.pem(), ca_cert.pem())
}

#[test]
fn valid_leaf_has_spiffe_identity_dns_and_times() {
    let pem = self_signed(&leaf_params(
        "payments-api",
        Some("spiffe://cluster.local/ns/payments/sa/payments-api"),
        (2026, 4, 1),
        (2026, 5, 1),
    ));
    let f = cert::parse_pem("leaf.pem", pem.as_bytes()).unwrap();
    let leaf = f.leaf().unwrap();
    assert_eq!(leaf.subject, "CN=payments-api,O=cluster.local");
    assert_eq!(leaf.dns_sans, vec!["payments-api.svc.cluster.local"]);
    assert_eq!(leaf.key_algorithm, "ECDSA P-256");
    assert!(!leaf.is_ca);
    assert!(!leaf.serial.is_empty() && leaf.serial.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(leaf.not_before, 1_775_001_600); // 2026-04-01T00:00:00Z
    assert_eq!(leaf.not_after, 1_777_593_600); // 2026-05-01T00:00:00Z
    let id = f.leaf_spiffe_id.as_ref().unwrap();
    assert_eq!(id.trust_domain, "cluster.local");
    assert_eq!(id.path, "/ns/payments/sa/payments-api");
    assert_eq!(f.valid_at(APR_12_2026), Validity::Valid);
    assert_eq!(f.chain_check, "single-certificate");
}

#[test]
fn expired_and_not_yet_valid() {
    let old = self_signed(&leaf_params("old", None, (2025, 1, 1), (2025, 2, 1)));
    let f = cert::parse_pem("old.pem", old.as_bytes()).unwrap();
    assert_eq!(f.valid_at(APR_12_2026), Validity::Expired);
    let future = self_signed(&leaf_params("future", None, (2026, 6, 1), (2026, 7, 1)));
    let f = cert::parse_pem("future.pem", future.as_bytes()).unwrap();
    assert_eq!(f.valid_at(APR_12_2026), Validity::NotYetValid);
    assert_eq!(f.leaf().unwrap().valid_at(1_780_272_000), Validity::Valid); // 2026-06-01 inclusive
}

#[test]
fn missing_spiffe_id_gives_no_identity() {
    let pem = self_signed(&leaf_params("no-id", None, (2026, 4, 1), (2026, 5, 1)));
    let f = cert::parse_pem("noid.pem", pem.as_bytes()).unwrap();
    assert!(f.leaf_spiffe_id.is_none());
    assert!(f.leaf().unwrap().spiffe_ids.is_empty());
    assert!(f.svid_violations[0].contains("certificate contains no URI SAN"));
}

#[test]
fn invalid_spiffe_uri_is_kept_as_uri_with_warning() {
    let pem = self_signed(&leaf_params(
        "bad-id",
        Some("spiffe://Cluster.Local/ns/x"),
        (2026, 4, 1),
        (2026, 5, 1),
    ));
    let f = cert::parse_pem("bad.pem", pem.as_bytes()).unwrap();
    assert!(f.leaf_spiffe_id.is_none());
    assert_eq!(
        f.leaf().unwrap().uri_sans,
        vec!["spiffe://Cluster.Local/ns/x"]
    );
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("not a valid SPIFFE ID")),
        "{:?}",
        f.warnings
    );
}

#[test]
fn ca_to_leaf_chain_links_with_verified_signature() {
    let (leaf, ca) = ca_and_leaf("spiffe://cluster.local/ns/payments/sa/payments-api");
    let f = cert::parse_pem("chain.pem", format!("{leaf}{ca}").as_bytes()).unwrap();
    assert_eq!(f.certificates.len(), 2);
    assert!(f.chain_links);
    assert_eq!(f.chain_check, "names-signatures-and-constraints");
    assert_eq!(
        (f.shape.as_str(), f.order.as_str()),
        ("chain", "leaf-first")
    );
    assert_eq!(f.chain, vec![0, 1]);
    assert_eq!(f.links[0].signature, SignatureCheck::Verified);
    assert!(f.violations.is_empty(), "{:?}", f.violations);
    assert_eq!(
        f.leaf_spiffe_id.as_ref().unwrap().uri,
        "spiffe://cluster.local/ns/payments/sa/payments-api"
    );
    assert!(f.certificates[1].is_ca);
    assert_eq!(f.certificates[1].key_algorithm, "Ed25519");
    assert_eq!(f.certificates[0].issuer, f.certificates[1].subject);
    // The chain is usable from the latest not_before to the earliest not_after.
    assert_eq!(f.expires_at, f.certificates[0].not_after);
    assert_eq!(f.valid_at(1_776_729_601), Validity::Expired); // just after 2026-04-21T00:00:00Z
}

#[test]
fn broken_chain_is_reported() {
    // Right names, wrong key: an impostor CA with the same subject.
    let (leaf, _) = ca_and_leaf("spiffe://cluster.local/ns/payments/sa/payments-api");
    let impostor = self_signed(&ca_params("mesh-intermediate-ca"));
    let f = cert::parse_pem("broken.pem", format!("{leaf}{impostor}").as_bytes()).unwrap();
    assert!(!f.chain_links);
    assert!(f.links[0].names_match);
    assert_eq!(f.links[0].signature, SignatureCheck::Failed);
    // The signature was checked (and failed): chain_check says so.
    assert_eq!(f.chain_check, "names-signatures-and-constraints");
    assert!(
        f.violations[0].starts_with("signature-failed:"),
        "{:?}",
        f.violations
    );

    // Wrong order / unrelated issuer: names do not match.
    let other = self_signed(&ca_params("some-other-ca"));
    let f = cert::parse_pem("broken2.pem", format!("{leaf}{other}").as_bytes()).unwrap();
    assert!(!f.chain_links);
    assert_eq!(f.shape, "unlinked");
    assert_eq!(f.chain_check, "not-a-chain");
    assert!(!f.links[0].names_match);
}

#[test]
fn private_key_blocks_are_skipped_not_recorded() {
    let key = KeyPair::generate().unwrap();
    let pem = leaf_params("k", None, (2026, 4, 1), (2026, 5, 1))
        .self_signed(&key)
        .unwrap()
        .pem();
    let both = format!("{}{pem}", key.serialize_pem());
    let f = cert::parse_pem("withkey.pem", both.as_bytes()).unwrap();
    assert_eq!(f.certificates.len(), 1);
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("PRIVATE KEY") && w.contains("line 1")),
        "{:?}",
        f.warnings
    );
    let json = Facts::Cert(f).canonical_json();
    assert!(!json.contains("PRIVATE KEY-----"));
}

#[test]
fn der_input_is_accepted_through_the_generic_entry_point() {
    let key = KeyPair::generate().unwrap();
    let c = leaf_params("der", None, (2026, 4, 1), (2026, 5, 1))
        .self_signed(&key)
        .unwrap();
    let facts = evl::ingest::parse(Importer::Cert, "leaf.der", c.der()).unwrap();
    let Facts::Cert(f) = &facts else {
        panic!("wrong facts")
    };
    assert_eq!(f.leaf().unwrap().subject, "CN=der,O=cluster.local");
    // Same bytes, same canonical JSON.
    let again = evl::ingest::parse(Importer::Cert, "leaf.der", c.der()).unwrap();
    assert_eq!(facts.canonical_json(), again.canonical_json());
}

#[test]
fn garbage_and_bad_base64_give_clear_errors() {
    let e = cert::parse_pem("x.pem", b"hello world")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("x.pem") && e.contains("BEGIN CERTIFICATE"),
        "{e}"
    );
    let e = cert::parse_pem(
        "x.pem",
        b"\n\n-----BEGIN CERTIFICATE-----\n!!!notbase64\n-----END CERTIFICATE-----\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("x.pem, line 3") && e.contains("PEM"), "{e}");
    let e = cert::parse_pem(
        "x.pem",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("line 1") && e.contains("X.509"), "{e}");
    let e = cert::parse_pem("x.pem", b"").unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Per-rule tests. Upstream references (read, not copied): RFC 5280 §4.2.1.3, §4.2.1.9, §6.1;
// Go crypto/x509 (x509.go `CheckSignatureFrom`, verify.go `isValid`, parser.go); C2SP
// x509-limbo @8a2e6f41 (limbo/testcases/rfc5280/__init__.py, pathlen.py), whose case names the
// tests below carry; go-spiffe @e9973f63 (svid/x509svid/{svid.go,verify.go,svid_test.go,
// testdata}); OpenSSL's `TRUSTED CERTIFICATE` (crypto/x509/x_x509a.c).

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ingest")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_fixture(name: &str) -> cert::CertFacts {
    cert::parse_pem(name, &fixture(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// A CA (`params`, key) to sign with.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn root(cn: &str, tweak: impl FnOnce(&mut CertificateParams)) -> Ca {
        let mut params = ca_params(cn);
        tweak(&mut params);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }
    fn sub(&self, cn: &str, tweak: impl FnOnce(&mut CertificateParams)) -> Ca {
        let mut params = ca_params(cn);
        tweak(&mut params);
        let key = KeyPair::generate().unwrap();
        let pem = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap()
            .pem();
        Ca { params, key, pem }
    }
    fn leaf(&self, spiffe: &str, tweak: impl FnOnce(&mut CertificateParams)) -> String {
        let mut p = leaf_params("workload", Some(spiffe), (2026, 4, 1), (2026, 5, 1));
        tweak(&mut p);
        let key = KeyPair::generate().unwrap();
        p.signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap()
            .pem()
    }
}

const ID: &str = "spiffe://example.org/ns/payments/sa/api";

fn has(f: &cert::CertFacts, rule: &str) -> bool {
    f.violations.iter().any(|v| v.starts_with(rule))
}

/// x509-limbo rfc5280::intermediate-ca-without-ca-bit; Go `CheckSignatureFrom`: an issuer
/// whose basicConstraints does not assert cA must not verify certificate signatures.
#[test]
fn rfc5280_issuer_without_the_ca_bit_breaks_the_link() {
    let root = Ca::root("root", |_| {});
    let ica = root.sub("ica", |p| p.is_ca = IsCa::ExplicitNoCa);
    let leaf = ica.leaf(ID, |_| {});
    let f = cert::parse_pem("c.pem", format!("{leaf}{}{}", ica.pem, root.pem).as_bytes()).unwrap();
    assert!(!f.chain_links);
    assert_eq!(
        f.links[0].signature,
        SignatureCheck::Verified,
        "the signature itself is fine"
    );
    assert!(has(&f, "issuer-not-ca:"), "{:?}", f.violations);
    assert!(
        f.leaf_spiffe_id.is_none(),
        "go-spiffe: signing certificate must have CA flag set"
    );
}

/// x509-limbo rfc5280::intermediate-ca-missing-basic-constraints: a v3 issuer without
/// basicConstraints is not a CA.
#[test]
fn rfc5280_v3_issuer_without_basic_constraints_breaks_the_link() {
    let root = Ca::root("root", |_| {});
    let ica = root.sub("ica", |p| p.is_ca = IsCa::NoCa);
    let leaf = ica.leaf(ID, |_| {});
    let f = cert::parse_pem("c.pem", format!("{leaf}{}", ica.pem).as_bytes()).unwrap();
    assert!(!f.certificates[1].basic_constraints);
    assert!(has(&f, "issuer-not-ca:"), "{:?}", f.violations);
    assert!(!f.chain_links);
}

/// x509-limbo rfc5280::ica-ku-keycertsign / root-inconsistent-ca-extensions; RFC 5280
/// §6.1.4 (n): an issuer's keyUsage, when present, must assert keyCertSign.
#[test]
fn rfc5280_issuer_key_usage_without_key_cert_sign_breaks_the_link() {
    let root = Ca::root("root", |p| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature]
    });
    let leaf = root.leaf(ID, |_| {});
    let f = cert::parse_pem("c.pem", format!("{leaf}{}", root.pem).as_bytes()).unwrap();
    assert!(has(&f, "issuer-lacks-key-cert-sign:"), "{:?}", f.violations);
    assert!(!f.chain_links);
    assert!(
        f.svid_violations
            .iter()
            .any(|v| v.starts_with("signing-key-cert-sign:")),
        "{:?}",
        f.svid_violations
    );
}

/// x509-limbo pathlen::intermediate-violates-pathlen-0 fails, ee-with-intermediate-pathlen-0
/// succeeds; RFC 5280 §6.1.4 (l), (m): the leaf does not count against pathLenConstraint.
#[test]
fn rfc5280_path_length_constraint_counts_intermediates_below_the_issuer() {
    let root = Ca::root("root", |_| {});
    let ica = root.sub("ica", |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0))
    });
    let leaf = ica.leaf(ID, |_| {});
    let ok = cert::parse_pem(
        "ok.pem",
        format!("{leaf}{}{}", ica.pem, root.pem).as_bytes(),
    )
    .unwrap();
    assert!(ok.chain_links, "{:?}", ok.violations);
    assert_eq!(ok.certificates[1].path_len, Some(0));
    let ica2 = ica.sub("ica2", |_| {});
    let leaf2 = ica2.leaf(ID, |_| {});
    let f = cert::parse_pem(
        "bad.pem",
        format!("{leaf2}{}{}{}", ica2.pem, ica.pem, root.pem).as_bytes(),
    )
    .unwrap();
    assert!(has(&f, "path-length-exceeded:"), "{:?}", f.violations);
    assert!(!f.chain_links);
    assert_eq!(f.links.len(), 3);
    assert!(
        f.links[1].violations[0].contains("allows 0 intermediate"),
        "{:?}",
        f.links[1]
    );
}

/// x509-limbo rfc5280::leaf-ku-keycertsign; RFC 5280 §4.2.1.9: without cA, keyCertSign must
/// not be asserted.
#[test]
fn rfc5280_key_cert_sign_without_ca_is_a_violation() {
    let root = Ca::root("root", |_| {});
    let leaf = root.leaf(ID, |p| {
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
    });
    let f = cert::parse_pem("c.pem", format!("{leaf}{}", root.pem).as_bytes()).unwrap();
    assert!(has(&f, "key-cert-sign-without-ca:"), "{:?}", f.violations);
    assert!(!f.chain_links);
}

/// A leaf valid beyond its issuer validates only while both are (RFC 5280 §6.1.3 (a)(2)):
/// the link names it, and the chain's window is the intersection.
#[test]
fn validity_not_nested_in_the_issuers_is_named() {
    let root = Ca::root("root", |_| {});
    let leaf = root.leaf(ID, |p| p.not_after = date_time_ymd(2028, 1, 1));
    let f = cert::parse_pem("c.pem", format!("{leaf}{}", root.pem).as_bytes()).unwrap();
    assert!(has(&f, "validity-not-nested:"), "{:?}", f.violations);
    assert!(!f.chain_links);
    assert_eq!(f.expires_at, f.certificates[1].not_after);
}

/// A root-first or shuffled chain is put in order and the facts say how it was given; a
/// go-spiffe SVID must come leaf first.
#[test]
fn root_first_and_unordered_chains_are_ordered_and_said_so() {
    let root = Ca::root("root", |_| {});
    let ica = root.sub("ica", |_| {});
    let leaf = ica.leaf(ID, |_| {});
    let f = cert::parse_pem(
        "rf.pem",
        format!("{}{}{leaf}", root.pem, ica.pem).as_bytes(),
    )
    .unwrap();
    assert_eq!(
        (f.shape.as_str(), f.order.as_str()),
        ("chain", "root-first")
    );
    assert_eq!(f.chain, vec![2, 1, 0]);
    assert!(f.chain_links, "{:?}", f.violations);
    assert_eq!(f.leaf().unwrap().spiffe_ids[0].uri, ID);
    assert!(f.leaf_spiffe_id.is_none());
    assert!(
        f.svid_violations
            .iter()
            .any(|v| v.starts_with("leaf-first:"))
    );
    let f = cert::parse_pem("u.pem", format!("{}{leaf}{}", ica.pem, root.pem).as_bytes()).unwrap();
    assert_eq!(f.order, "unordered");
    assert_eq!(f.chain, vec![1, 0, 2]);
    assert!(f.chain_links);
}

/// Go `crypto/x509` verifies RSA PKCS#1 v1.5 and PSS, ECDSA on P-256/384/521 with SHA-2, and
/// Ed25519: so does evl (fixtures made by certs/gen.sh with OpenSSL).
#[test]
fn every_web_pki_and_spiffe_signature_algorithm_is_verified() {
    for (file, alg) in [
        ("certs/rsa-pkcs1-sha256.pem", "sha256WithRSA"),
        ("certs/rsa-pkcs1-sha512.pem", "sha512WithRSA"),
        ("certs/rsa-pss-sha256.pem", "RSASSA-PSS"),
        ("certs/rsa-pss-sha384.pem", "RSASSA-PSS"),
        ("certs/ecdsa-p256-sha256.pem", "ecdsa-with-SHA256"),
        ("certs/ecdsa-p256-sha512.pem", "ecdsa-with-SHA512"),
        ("certs/ecdsa-p384-sha384.pem", "ecdsa-with-SHA384"),
        ("certs/ecdsa-p521-sha512.pem", "ecdsa-with-SHA512"),
        ("certs/ecdsa-p521-sha256.pem", "ecdsa-with-SHA256"),
        ("certs/ed25519.pem", "Ed25519"),
    ] {
        let f = parse_fixture(file);
        assert_eq!(f.certificates[0].signature_algorithm, alg, "{file}");
        assert_eq!(
            f.links[0].signature,
            SignatureCheck::Verified,
            "{file}: {:?}",
            f.links[0]
        );
        assert_eq!(f.chain_check, "names-signatures-and-constraints", "{file}");
        assert!(f.chain_links, "{file}: {:?}", f.violations);
        assert!(
            f.leaf_spiffe_id.is_some(),
            "{file}: {:?}",
            f.svid_violations
        );
    }
    assert_eq!(
        parse_fixture("certs/ecdsa-p521-sha512.pem").certificates[1].key_algorithm,
        "ECDSA P-521"
    );
}

/// Tampering with a signed certificate makes its signature fail, for each algorithm family.
#[test]
fn a_tampered_signature_fails_for_every_algorithm() {
    for file in [
        "certs/rsa-pkcs1-sha256.pem",
        "certs/rsa-pss-sha256.pem",
        "certs/ecdsa-p521-sha512.pem",
        "certs/ecdsa-p384-sha384.pem",
        "certs/ed25519.pem",
    ] {
        let f = parse_fixture(file);
        // Swap the issuer for another root of the same name but another key: same names,
        // wrong key.
        let pem = String::from_utf8(fixture(file)).unwrap();
        let leaf_end = pem.find("-----END CERTIFICATE-----").unwrap() + 26;
        let impostor = Ca::root("x", |p| {
            p.distinguished_name = DistinguishedName::new();
            p.distinguished_name
                .push(DnType::OrganizationName, "evl test");
            p.distinguished_name.push(
                DnType::CommonName,
                f.certificates[1]
                    .subject
                    .split("CN=")
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .next()
                    .unwrap(),
            );
        });
        let forged = format!("{}{}", &pem[..leaf_end], impostor.pem);
        let g = cert::parse_pem("forged.pem", forged.as_bytes()).unwrap();
        assert!(g.links[0].names_match, "{file}");
        assert_eq!(g.links[0].signature, SignatureCheck::Failed, "{file}");
        assert!(!g.chain_links);
    }
}

/// Go refuses SHA-1 signatures (`InsecureAlgorithmError`); parameters the verifier does not
/// cover are said to be unchecked, never reported as a failed signature.
#[test]
fn insecure_and_unsupported_signatures_are_named_not_failed() {
    let f = parse_fixture("certs/rsa-sha1.pem");
    assert_eq!(f.links[0].signature, SignatureCheck::Insecure);
    assert!(has(&f, "insecure-signature:"));
    assert!(!f.chain_links);
    for file in [
        "certs/ed448.pem",
        "certs/rsa1024-sha256.pem",
        "certs/rsa-pss-sha256-salt20.pem",
    ] {
        let f = parse_fixture(file);
        assert_eq!(f.links[0].signature, SignatureCheck::Unsupported, "{file}");
        assert_eq!(f.chain_check, "names-and-constraints-only", "{file}");
        assert!(
            f.chain_links,
            "{file}: an unchecked signature alone does not break the chain"
        );
        assert!(f.links[0].signature_note.is_some(), "{file}");
        assert!(
            f.warnings.iter().any(|w| w.contains("was not checked")),
            "{file}"
        );
    }
}

/// go-spiffe `TestParse` / `TestLoad` cases, run on go-spiffe's own test data: each good file
/// yields its SPIFFE ID, each wrong one names the rule go-spiffe's error names.
#[test]
fn go_spiffe_x509svid_test_data() {
    for file in [
        "good-leaf-only.pem",
        "good-leaf-and-intermediate.pem",
        "good-cert-and-key.pem",
    ] {
        let f = parse_fixture(&format!("go-spiffe/{file}"));
        assert_eq!(
            f.leaf_spiffe_id.as_ref().map(|i| i.uri.as_str()),
            Some("spiffe://example.org/workload-1"),
            "{file}: {:?}",
            f.svid_violations
        );
        assert!(f.svid_violations.is_empty());
    }
    for (file, rule, go_error) in [
        (
            "wrong-leaf-empty-id.pem",
            "one-uri-san:",
            "certificate contains no URI SAN",
        ),
        (
            "wrong-leaf-ca-true.pem",
            "leaf-not-ca:",
            "leaf certificate must not have CA flag set to true",
        ),
        (
            "wrong-leaf-no-digital-signature.pem",
            "leaf-digital-signature:",
            "leaf certificate must have 'digitalSignature' set as key usage",
        ),
        (
            "wrong-leaf-cert-sign.pem",
            "leaf-no-key-cert-sign:",
            "leaf certificate must not have 'keyCertSign' set as key usage",
        ),
        (
            "wrong-leaf-crl-sign.pem",
            "leaf-no-crl-sign:",
            "leaf certificate must not have 'cRLSign' set as key usage",
        ),
        (
            "wrong-intermediate-no-ca.pem",
            "signing-ca:",
            "signing certificate must have CA flag set to true",
        ),
        (
            "wrong-intermediate-no-key-cert-sign.pem",
            "signing-key-cert-sign:",
            "signing certificate must have 'keyCertSign' set as key usage",
        ),
    ] {
        let f = parse_fixture(&format!("go-spiffe/{file}"));
        assert!(f.leaf_spiffe_id.is_none(), "{file}");
        assert!(
            f.svid_violations
                .iter()
                .any(|v| v.starts_with(rule) && v.contains(go_error)),
            "{file}: {:?}",
            f.svid_violations
        );
    }
    for file in ["corrupt-cert.pem", "not-pem"] {
        let e = cert::parse_pem(file, &fixture(&format!("go-spiffe/{file}")))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(file), "{e}");
    }
}

/// go-spiffe `IDFromCert`: "certificate contains more than one URI SAN".
#[test]
fn svid_with_two_uri_sans_has_no_identity() {
    let root = Ca::root("root", |_| {});
    let leaf = root.leaf(ID, |p| {
        p.subject_alt_names
            .push(SanType::URI("https://example.org/x".try_into().unwrap()))
    });
    let f = cert::parse_pem("c.pem", format!("{leaf}{}", root.pem).as_bytes()).unwrap();
    assert!(f.chain_links);
    assert!(f.leaf_spiffe_id.is_none());
    assert!(
        f.svid_violations[0].contains("more than one URI SAN"),
        "{:?}",
        f.svid_violations
    );
}

/// Go's x509.ParseCertificate ("x509: trailing data") and OpenSSL refuse bytes after a
/// certificate's DER, in a PEM block or a DER file.
#[test]
fn trailing_bytes_after_a_certificate_are_refused() {
    let key = KeyPair::generate().unwrap();
    let c = leaf_params("t", None, (2026, 4, 1), (2026, 5, 1))
        .self_signed(&key)
        .unwrap();
    let mut der = c.der().to_vec();
    der.extend_from_slice(b"\x00\x00junk");
    let e = cert::parse_pem("t.der", &der).unwrap_err().to_string();
    assert!(
        e.contains("t.der, field DER") && e.contains("trailing data"),
        "{e}"
    );
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der);
    let pem = format!("# bundle\n-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
    let e = cert::parse_pem("t.pem", pem.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("t.pem, line 2:") && e.contains("6 bytes of trailing data"),
        "{e}"
    );
    // Two DER certificates back to back are a valid DER file (x509.ParseCertificates).
    let two = [c.der().as_ref(), c.der().as_ref()].concat();
    let f = cert::parse_pem("two.der", &two).unwrap();
    assert_eq!(f.certificates.len(), 2);
}

/// Negative serials (RFC 5280 §4.1.2.2; Go refuses them) and DNS SANs with '/' are warned
/// about; a root repeated in a bundle counts once.
#[test]
fn odd_serials_sans_and_repeated_roots_are_warned_about() {
    let mut p = leaf_params("neg", None, (2026, 4, 1), (2026, 5, 1));
    // rcgen keeps serials positive: write 0x00ff01 and turn its first byte into 0xff, making
    // the INTEGER ff ff 01 = -255 (the self-signature no longer matters for one certificate).
    p.serial_number = Some(SerialNumber::from_slice(&[0x00, 0xff, 0x01]));
    p.subject_alt_names
        .push(SanType::DnsName("a/b.example".try_into().unwrap()));
    let mut der = p
        .self_signed(&KeyPair::generate().unwrap())
        .unwrap()
        .der()
        .to_vec();
    let at = der
        .windows(5)
        .position(|w| w == [0x02, 0x03, 0x00, 0xff, 0x01])
        .expect("the serial INTEGER");
    der[at + 2] = 0xff;
    let f = cert::parse_pem("n.der", &der).unwrap();
    assert_eq!(f.certificates[0].serial, "-ff");
    assert!(
        f.warnings.iter().any(|w| w.contains("negative serial")),
        "{:?}",
        f.warnings
    );
    assert!(
        f.warnings.iter().any(|w| w.contains("contains '/'")),
        "{:?}",
        f.warnings
    );
    let a = Ca::root("a", |_| {});
    let b = Ca::root("b", |_| {});
    let f = cert::parse_pem(
        "bundle.pem",
        format!("{}{}{}", a.pem, b.pem, a.pem).as_bytes(),
    )
    .unwrap();
    assert_eq!(f.shape, "bundle");
    assert!(!f.chain_links && f.chain_check == "bundle");
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("repeats the one at line 1")),
        "{:?}",
        f.warnings
    );
}

/// A system CA bundle (~150 roots) fits under the cap and reads as a bundle.
#[test]
fn a_system_sized_ca_bundle_is_read_as_a_bundle() {
    let bundle: String = (0..150)
        .map(|i| Ca::root(&format!("root {i}"), |_| {}).pem)
        .collect();
    let f = cert::parse_pem("ca-certificates.crt", bundle.as_bytes()).unwrap();
    assert_eq!(f.certificates.len(), 150);
    assert_eq!(f.shape, "bundle");
    assert!(f.leaf_spiffe_id.is_none());
    assert!(cert::MAX_CERTIFICATES >= 150);
}

/// OpenSSL's `TRUSTED CERTIFICATE` blocks are read with their trust settings.
#[test]
fn openssl_trusted_certificate_blocks_are_accepted() {
    let f = parse_fixture("certs/trusted-root.pem");
    let t = f.certificates[0].openssl_trust.as_ref().unwrap();
    assert_eq!(t.trusted, vec!["serverAuth"]);
    assert_eq!(t.rejected, vec!["clientAuth"]);
    assert_eq!(t.alias.as_deref(), Some("evl test root"));
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("rejects for clientAuth"))
    );
}

/// A UTF-8 byte-order mark before the PEM is not content; lines stay as written.
#[test]
fn a_utf8_byte_order_mark_before_pem_is_not_content() {
    let pem = self_signed(&leaf_params("bom", None, (2026, 4, 1), (2026, 5, 1)));
    let f = cert::parse_pem("b.pem", format!("\u{feff}{pem}").as_bytes()).unwrap();
    assert_eq!(f.certificates[0].line, 1);
    let e = cert::parse_pem(
        "b.pem",
        "\u{feff}\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".as_bytes(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("b.pem, line 2"), "{e}");
}

/// Signature checks spend a budget of units weighted by the verifier's cost (P-521 counts 12):
/// a chain of 25 P-521 links has its first 21 links verified (252 units) and the rest reported
/// not checked, so no choice of curve lets a file run past the time bound. (Release build, 300
/// self-signed P-521 roots without key identifiers: 0.5–1.2 s at one unit per check.)
#[test]
fn p521_signature_checks_spend_a_weighted_budget() {
    let f = parse_fixture("certs/p521-chain-26.pem");
    assert_eq!(f.certificates.len(), 26);
    assert_eq!(f.links.len(), 25);
    let verified = f
        .links
        .iter()
        .take_while(|l| l.signature == cert::SignatureCheck::Verified)
        .count();
    assert_eq!(verified, cert::MAX_SIGNATURE_CHECKS / 12, "{:#?}", f.links);
    for l in &f.links[verified..] {
        assert_eq!(l.signature, cert::SignatureCheck::Unsupported);
        assert!(
            l.signature_note.as_deref().unwrap().contains("not checked"),
            "{l:?}"
        );
    }
}
