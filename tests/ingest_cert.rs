//! Certificate importer against certificates generated with rcgen.

use evl::ingest::cert::{self, SignatureCheck, Validity};
use evl::ingest::{Facts, Importer};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, SanType,
    date_time_ymd,
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
    p
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
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
    assert_eq!(f.chain_check, "issuer-name-and-signature");
    assert_eq!(f.links[0].signature, SignatureCheck::Verified);
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

    // Wrong order / unrelated issuer: names do not match.
    let other = self_signed(&ca_params("some-other-ca"));
    let f = cert::parse_pem("broken2.pem", format!("{leaf}{other}").as_bytes()).unwrap();
    assert!(!f.chain_links);
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
