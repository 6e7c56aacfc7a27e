//! No input makes an importer panic: every prefix and a set of byte mutations of each fixture
//! either parses or returns an error.

use evl::ingest::{Importer, ParseOptions, parse_with};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

const FIXTURES: &[(Importer, &str, &[u8])] = &[
    (
        Importer::Mesh,
        "istio-mesh.yaml",
        include_bytes!("fixtures/ingest/istio-mesh.yaml"),
    ),
    (
        Importer::Mesh,
        "linkerd-policy.yaml",
        include_bytes!("fixtures/ingest/linkerd-policy.yaml"),
    ),
    (
        Importer::Inventory,
        "inventory.csv",
        include_bytes!("fixtures/ingest/inventory.csv"),
    ),
    (
        Importer::Telemetry,
        "prometheus-instant.json",
        include_bytes!("fixtures/ingest/prometheus-instant.json"),
    ),
    (
        Importer::Telemetry,
        "prometheus-range.json",
        include_bytes!("fixtures/ingest/prometheus-range.json"),
    ),
    (
        Importer::Telemetry,
        "telemetry.csv",
        include_bytes!("fixtures/ingest/telemetry.csv"),
    ),
];

fn opts() -> ParseOptions {
    ParseOptions {
        window: Some("w".into()),
        ..Default::default()
    }
}

#[test]
fn every_fixture_parses_and_is_deterministic() {
    for (imp, name, bytes) in FIXTURES {
        let a = parse_with(*imp, name, bytes, &opts()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let b = parse_with(*imp, name, bytes, &opts()).unwrap();
        assert_eq!(a.canonical_json(), b.canonical_json(), "{name}");
        assert_eq!(a.importer(), *imp);
        // The canonical JSON round-trips to equal facts.
        let back: evl::ingest::Facts = serde_json::from_str(&a.canonical_json()).unwrap();
        assert_eq!(back, a, "{name}");
    }
}

/// Parses `bytes` and checks what came back, whichever way it went: facts of the importer
/// asked for whose canonical JSON reads back as the same facts, or one line of error that
/// starts with the input's name (the file evl would name). Returns whether it parsed.
fn parses(imp: Importer, name: &str, bytes: &[u8]) -> bool {
    match parse_with(imp, name, bytes, &opts()) {
        Ok(facts) => {
            assert_eq!(facts.importer(), imp, "{name}");
            let back: evl::ingest::Facts = serde_json::from_str(&facts.canonical_json())
                .unwrap_or_else(|e| panic!("{name}: canonical JSON does not read back: {e}"));
            assert_eq!(
                back, facts,
                "{name}: canonical JSON reads back as other facts"
            );
            true
        }
        Err(e) => {
            let e = e.to_string();
            assert!(
                e.starts_with(name) && !e.contains('\n'),
                "{imp} on {name}: the error must be one line naming the input: {e:?}"
            );
            false
        }
    }
}

#[test]
fn truncations_never_panic() {
    for (imp, name, bytes) in FIXTURES {
        // Empty input is refused by every importer.
        for any in Importer::ALL {
            assert!(!parses(any, name, b""), "{any} accepted an empty {name}");
        }
        let refused = (1..bytes.len())
            .filter(|&cut| !parses(*imp, name, &bytes[..cut]))
            .count();
        assert!(
            refused > 0,
            "{name}: no proper prefix of {} bytes was refused",
            bytes.len()
        );
        // Every other importer refuses the fixture, naming it.
        for other in Importer::ALL.into_iter().filter(|o| o != imp) {
            assert!(!parses(other, name, bytes), "{other} accepted {name}");
        }
    }
}

#[test]
fn byte_mutations_never_panic() {
    let replacements: &[u8] = b"\0\xff:-{}[]\"',\n#&*!|>%@`\t ";
    for (imp, name, bytes) in FIXTURES {
        let step = (bytes.len() / 150).max(1);
        let (mut accepted, mut refused) = (0, 0);
        for pos in (0..bytes.len()).step_by(step) {
            for r in replacements {
                let mut m = bytes.to_vec();
                m[pos] = *r;
                if parses(*imp, name, &m) {
                    accepted += 1;
                } else {
                    refused += 1;
                }
            }
        }
        // Both happen: a mutation in a comment or a value still parses; one in the structure
        // does not.
        assert!(
            accepted > 0 && refused > 0,
            "{name}: {accepted} accepted, {refused} refused"
        );
    }
}

#[test]
fn certificate_chain_truncations_and_mutations_never_panic() {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["a.example".to_string()]).unwrap();
    let leaf_pem = leaf
        .signed_by(&leaf_key, &Issuer::from_params(&ca, &ca_key))
        .unwrap()
        .pem();
    let chain = format!("{leaf_pem}{ca_pem}").into_bytes();
    assert!(parses(Importer::Cert, "c.pem", &chain));
    assert!(!parses(Importer::Cert, "c.pem", b""));
    let refused = (1..chain.len())
        .filter(|&cut| !parses(Importer::Cert, "c.pem", &chain[..cut]))
        .count();
    assert!(refused > 0, "no proper prefix of the chain was refused");
    // Mutate the DER inside the first block: flip bytes of the base64 body.
    let mut refused = 0;
    for pos in (30..leaf_pem.len() - 30).step_by(3) {
        let mut m = chain.clone();
        m[pos] = if m[pos] == b'A' { b'B' } else { b'A' };
        refused += usize::from(!parses(Importer::Cert, "c.pem", &m));
    }
    assert!(refused > 0, "no mutation of the leaf's DER was refused");
}

#[test]
fn hostile_shapes_are_refused_with_errors() {
    // A million empty YAML documents.
    let many = "---\n".repeat(1_000_000);
    let e = parse_with(Importer::Mesh, "many.yaml", many.as_bytes(), &opts())
        .unwrap_err()
        .to_string();
    assert!(e.contains("number of YAML documents"), "{e}");
    // Deeply nested JSON.
    let deep = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let e = parse_with(Importer::Telemetry, "deep.json", deep.as_bytes(), &opts())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("deep.json") && e.contains("JSON does not parse"),
        "{e}"
    );
    // Binary noise to every importer.
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for imp in Importer::ALL {
        assert!(
            parse_with(imp, "noise.bin", &noise, &opts()).is_err(),
            "{imp}"
        );
    }
}

/// Every certificate fixture (OpenSSL-made chains of every algorithm, go-spiffe's test data)
/// truncated and mutated: an error or facts, never a panic.
#[test]
fn certificate_fixtures_truncated_and_mutated_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ingest");
    let mut files = Vec::new();
    for sub in ["certs", "go-spiffe"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "pem") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20, "{files:?}");
    let mut errors = 0;
    for p in &files {
        let bytes = std::fs::read(p).unwrap();
        let name = p.file_name().unwrap().to_str().unwrap();
        for cut in (0..bytes.len()).step_by(7) {
            if parse_with(Importer::Cert, name, &bytes[..cut], &opts()).is_err() {
                errors += 1;
            }
        }
        for pos in (0..bytes.len()).step_by(bytes.len() / 40 + 1) {
            let mut m = bytes.clone();
            m[pos] = if m[pos] == b'A' { b'B' } else { b'A' };
            let _ = parse_with(Importer::Cert, name, &m, &opts());
        }
    }
    assert!(errors > 0);
}

/// The new mesh and telemetry paths on hostile shapes are refused with an error naming the
/// limit, not left to run quadratically.
#[test]
fn hostile_shapes_on_the_resolution_paths_are_refused() {
    // 4,000 namespace-wide ALLOW policies over 1,000 workloads of one namespace: the
    // (workload, policy) pairs exceed their cap.
    let mut y = String::new();
    for i in 0..1000 {
        y.push_str(&format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: a, labels: {{app: x}}}}\n---\n"));
    }
    for i in 0..4000 {
        y.push_str(&format!("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: ap{i}, namespace: a}}\nspec: {{rules: [{{}}]}}\n---\n"));
    }
    let e = parse_with(Importer::Mesh, "pairs.yaml", y.as_bytes(), &opts())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("(workload, policy) pairs") && e.contains("250000"),
        "{e}"
    );
    // Linkerd: 3,000 Servers whose label selectors each must be compared with 2,000 pods.
    let mut y = String::new();
    for i in 0..2000 {
        y.push_str(&format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: a, labels: {{app: x, n: '{i}'}}}}\n---\n"));
    }
    for i in 0..3000 {
        y.push_str(&format!("apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {{name: s{i}, namespace: a}}\nspec:\n  podSelector: {{matchExpressions: [{{key: n, operator: In, values: ['x{i}']}}]}}\n  port: 80\n---\n"));
    }
    let e = parse_with(Importer::Mesh, "servers.yaml", y.as_bytes(), &opts())
        .unwrap_err()
        .to_string();
    assert!(e.contains("selector comparisons"), "{e}");
}

/// Hundreds of certificates of one subject name, none signed by another: the issuer search
/// spends a bounded number of signature checks and the file still reads.
#[test]
fn many_same_named_certificates_are_read_with_a_bounded_issuer_search() {
    let mut pem = String::new();
    for _ in 0..300 {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, "same name");
        p.distinguished_name = dn;
        pem.push_str(&p.self_signed(&key).unwrap().pem());
    }
    let facts = parse_with(Importer::Cert, "same.pem", pem.as_bytes(), &opts()).unwrap();
    let evl::ingest::Facts::Cert(f) = facts else {
        panic!("certificate facts")
    };
    assert_eq!(f.certificates.len(), 300);
    assert_eq!(f.shape, "bundle");
}
