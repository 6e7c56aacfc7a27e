//! Mesh policy importer against Istio and Linkerd fixtures.

use evl::ingest::mesh::{self, MtlsMode};

fn istio() -> mesh::MeshFacts {
    mesh::parse_yaml(
        "istio-mesh.yaml",
        include_bytes!("fixtures/ingest/istio-mesh.yaml"),
    )
    .unwrap()
}

#[test]
fn mesh_namespace_and_workload_modes_resolve_as_istio_does() {
    let f = istio();
    assert_eq!(f.mesh_mtls, MtlsMode::Strict);
    assert_eq!(f.mesh_mtls_policy.as_deref(), Some("istio-system/default"));
    // Namespace-wide PERMISSIVE overrides the mesh.
    assert_eq!(f.namespaces["data-platform"].mtls, MtlsMode::Permissive);
    assert_eq!(f.namespaces["data-platform"].mtls_source, "namespace");
    // UNSET inherits from the mesh.
    assert_eq!(f.namespaces["orders"].mtls, MtlsMode::Strict);
    assert_eq!(f.namespaces["orders"].mtls_source, "mesh");
    // No namespace policy: the mesh.
    assert_eq!(f.namespaces["payments"].mtls, MtlsMode::Strict);
    // Workload override in a STRICT namespace, with port-level settings.
    let sync = f
        .workloads
        .iter()
        .find(|w| w.workload == "payments-ledger-sync")
        .unwrap();
    assert_eq!(sync.mtls, MtlsMode::Permissive);
    assert_eq!(sync.mtls_source, "workload");
    assert_eq!(sync.port_mtls[&9090], MtlsMode::Disable);
    assert_eq!(
        sync.port_mtls[&8443],
        MtlsMode::Permissive,
        "UNSET at port level inherits the workload mode"
    );
    // Workload STRICT inside a PERMISSIVE namespace, found via app.kubernetes.io/name.
    assert_eq!(
        mesh::effective_mtls(&f, "data-platform", "data-platform-etl"),
        MtlsMode::Strict
    );
    // A workload the file never names takes its namespace mode, an unknown namespace the mesh's.
    assert_eq!(
        mesh::effective_mtls(&f, "data-platform", "data-platform-warehouse-loader"),
        MtlsMode::Permissive
    );
    assert_eq!(
        mesh::effective_mtls(&f, "identity", "identity-token-service"),
        MtlsMode::Strict
    );
}

#[test]
fn extra_workloads_are_resolved() {
    let pairs = vec![("identity".to_string(), "identity-token-service".to_string())];
    let f = mesh::parse_yaml_for(
        "m.yaml",
        include_bytes!("fixtures/ingest/istio-mesh.yaml"),
        &pairs,
    )
    .unwrap();
    let w = f
        .workloads
        .iter()
        .find(|w| w.workload == "identity-token-service")
        .unwrap();
    assert_eq!((w.mtls, w.mtls_source.as_str()), (MtlsMode::Strict, "mesh"));
    assert!(f.namespaces.contains_key("identity"));
    // Workloads are sorted by (namespace, workload).
    let keys: Vec<_> = f
        .workloads
        .iter()
        .map(|w| (w.namespace.clone(), w.workload.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn authorization_posture_per_namespace() {
    let f = istio();
    let p = &f.namespaces["payments"].authorization;
    assert!(p.default_deny);
    assert_eq!(p.default_deny_policies, vec!["payments/allow-nothing"]);
    assert_eq!((p.allow_policies, p.deny_policies), (2, 0));
    let d = &f.namespaces["data-platform"].authorization;
    assert!(
        !d.default_deny,
        "a DENY policy with rules is not default-deny"
    );
    assert_eq!(d.deny_policies, 1);
    let allow_nothing = f
        .authorization_policies
        .iter()
        .find(|a| a.name == "allow-nothing")
        .unwrap();
    assert!(allow_nothing.allow_nothing && allow_nothing.scope == "namespace");
    let scoped = f
        .authorization_policies
        .iter()
        .find(|a| a.name == "payments-api-from-edge")
        .unwrap();
    assert!(!scoped.allow_nothing);
    assert_eq!(scoped.workload.as_deref(), Some("payments-api"));
}

#[test]
fn mesh_wide_allow_nothing_applies_to_every_namespace() {
    let y = b"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-all, namespace: istio-system}\nspec: {}\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow-all, namespace: orders}\nspec:\n  rules:\n  - {}\n";
    let f = mesh::parse_yaml("m.yaml", y).unwrap();
    assert_eq!(
        f.namespaces["orders"].authorization.default_deny_policies,
        vec!["istio-system/deny-all"]
    );
    let allow_all = f
        .authorization_policies
        .iter()
        .find(|a| a.name == "allow-all")
        .unwrap();
    assert!(!allow_all.allow_nothing, "rules: [{{}}] allows everything");
}

#[test]
fn weights_90_5_are_flagged_and_80_20_are_not() {
    let f = istio();
    assert_eq!(f.invalid_weights.len(), 1, "{:?}", f.invalid_weights);
    let bad = &f.invalid_weights[0];
    assert_eq!(
        (bad.namespace.as_str(), bad.virtual_service.as_str()),
        ("payments", "payments-api")
    );
    assert_eq!(bad.route, "http[0] (canary)");
    assert_eq!(bad.weights, vec![90, 5]);
    assert_eq!(bad.sum, 95);
    assert_eq!(f.routes.len(), 3);
    assert!(
        f.routes
            .iter()
            .any(|r| r.virtual_service == "edge-gateway" && r.weight_sum == 100)
    );
}

#[test]
fn destination_rule_tls_modes() {
    let f = istio();
    let dr = &f.destination_rules[0];
    assert_eq!(dr.tls_mode.as_deref(), Some("ISTIO_MUTUAL"));
    assert_eq!(dr.port_tls_modes[&9090], "DISABLE");
}

#[test]
fn unknown_kinds_are_kept_with_a_warning() {
    let f = istio();
    assert_eq!(f.unknown_objects.len(), 1);
    assert_eq!(f.unknown_objects[0].object.kind, "Gateway");
    assert_eq!(
        f.unknown_objects[0].raw["spec"]["servers"][0]["port"]["number"],
        443
    );
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("Gateway edge-routing/public") && w.contains("raw evidence")),
        "{:?}",
        f.warnings
    );
    assert_eq!(f.objects.len(), 12);
    assert_eq!(f.objects[3].name, "ledger-sync-legacy");
    assert_eq!(f.objects[3].document, 4);
}

#[test]
fn linkerd_policy_set() {
    let f = mesh::parse_yaml(
        "linkerd.yaml",
        include_bytes!("fixtures/ingest/linkerd-policy.yaml"),
    )
    .unwrap();
    assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    let s = &f.linkerd_servers[0];
    assert_eq!(
        (
            s.workload.as_deref(),
            s.port.as_str(),
            s.access_policy.as_deref()
        ),
        (Some("orders-journal-writer"), "grpc", Some("deny"))
    );
    assert_eq!(f.linkerd_authorizations.len(), 2);
    let sa = f
        .linkerd_authorizations
        .iter()
        .find(|a| a.kind == "ServerAuthorization")
        .unwrap();
    assert_eq!(sa.target, "Server/orders-journal-writer-grpc");
    assert!(sa.mesh_tls && !sa.unauthenticated);
    assert_eq!(sa.service_accounts, vec!["orders/orders-api"]);
    let ap = f
        .linkerd_authorizations
        .iter()
        .find(|a| a.kind == "AuthorizationPolicy")
        .unwrap();
    assert_eq!(
        ap.required_authentications,
        vec!["MeshTLSAuthentication/orders-api-identity"]
    );
    assert!(ap.mesh_tls);
    assert_eq!(
        f.linkerd_routes[0].parents,
        vec!["Server/orders-journal-writer-grpc"]
    );
    let posture = &f.namespaces["orders"].authorization;
    assert_eq!(
        (posture.linkerd_servers, posture.linkerd_authorizations),
        (1, 2)
    );
    assert!(
        f.workloads
            .iter()
            .any(|w| w.workload == "orders-journal-writer")
    );
}

#[test]
fn kubectl_list_output_is_expanded() {
    let y = b"apiVersion: v1\nkind: List\nitems:\n- apiVersion: security.istio.io/v1\n  kind: PeerAuthentication\n  metadata: {name: default, namespace: istio-system}\n  spec: {mtls: {mode: STRICT}}\n";
    let f = mesh::parse_yaml("list.yaml", y).unwrap();
    assert_eq!(f.mesh_mtls, MtlsMode::Strict);
    assert_eq!(f.objects.len(), 1);
}

#[test]
fn conflicting_namespace_policies_take_the_oldest_and_warn() {
    let y = b"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: b, namespace: orders, creationTimestamp: '2026-02-01T00:00:00Z'}\nspec: {mtls: {mode: DISABLE}}\n---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: a, namespace: orders, creationTimestamp: '2026-01-01T00:00:00Z'}\nspec: {mtls: {mode: STRICT}}\n";
    let f = mesh::parse_yaml("c.yaml", y).unwrap();
    assert_eq!(f.namespaces["orders"].mtls, MtlsMode::Strict);
    assert_eq!(
        f.namespaces["orders"].mtls_policy.as_deref(),
        Some("orders/a")
    );
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("namespace orders has 2 PeerAuthentications")),
        "{:?}",
        f.warnings
    );
    // No mesh policy at all: the default is PERMISSIVE.
    assert_eq!(f.mesh_mtls, MtlsMode::Permissive);
}

#[test]
fn malformed_yaml_errors_name_the_problem() {
    let e = mesh::parse_yaml("bad.yaml", b"apiVersion: v1\nkind: [unclosed\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("bad.yaml, line") && e.contains("does not parse"),
        "{e}"
    );

    let y = b"---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: x, namespace: payments}\n---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: y, namespace: payments}\nspec: {mtls: {mode: STRIKT}}\n";
    let e = mesh::parse_yaml("pa.yaml", y).unwrap_err().to_string();
    assert!(
        e.contains("pa.yaml, line 5, field spec.mtls.mode")
            && e.contains("STRIKT")
            && e.contains("payments/y"),
        "{e}"
    );

    let e = mesh::parse_yaml("k.yaml", b"kind: Foo\nmetadata: {name: x}\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("field apiVersion"), "{e}");

    let e = mesh::parse_yaml("s.yaml", b"just a string\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a mapping"), "{e}");

    let e = mesh::parse_yaml("e.yaml", b"# nothing\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no Kubernetes object"), "{e}");

    let y = b"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: n}\nspec:\n  http:\n  - route:\n    - destination: {host: a}\n      weight: ninety\n";
    let e = mesh::parse_yaml("w.yaml", y).unwrap_err().to_string();
    assert!(
        e.contains("spec.http[0].route[0].weight") && e.contains("not an integer"),
        "{e}"
    );
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let big = vec![b'#'; mesh::MAX_INPUT_BYTES + 1];
    let e = mesh::parse_yaml("big.yaml", &big).unwrap_err().to_string();
    assert!(e.contains("big.yaml") && e.contains("4194304"), "{e}");
}

#[test]
fn duplicate_keys_are_refused() {
    let y = b"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: d, namespace: payments}\nspec:\n  mtls:\n    mode: STRICT\n    mode: DISABLE\n";
    let e = mesh::parse_yaml("dup.yaml", y).unwrap_err().to_string();
    assert!(
        e.contains("dup.yaml, line") && e.contains("\"mode\" appears twice"),
        "{e}"
    );
}

#[test]
fn raw_objects_have_sorted_keys_whatever_the_file_order() {
    let a = b"apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: n}\nspec: {b: 1, a: 2}\n";
    let b = b"kind: Widget\nspec: {a: 2, b: 1}\nmetadata: {namespace: n, name: w}\napiVersion: example.com/v1\n";
    let fa = evl::ingest::Facts::Mesh(mesh::parse_yaml("a.yaml", a).unwrap()).canonical_json();
    let fb = evl::ingest::Facts::Mesh(mesh::parse_yaml("a.yaml", b).unwrap()).canonical_json();
    assert_eq!(fa, fb);
    assert!(fa.contains(r#""raw":{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"n"},"spec":{"a":2,"b":1}}"#), "{fa}");
}

/// A million nested flow brackets is refused by a linear pre-scan, before the YAML parser
/// would read a million events (seconds and hundreds of MB), naming the limit.
#[test]
fn a_million_nested_brackets_is_refused_up_front() {
    let deep = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
    let e = evl::ingest::mesh::parse_yaml("deep.yaml", deep.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("deep.yaml, line 1") && e.contains("deeper than 64 levels"),
        "{e}"
    );
    // Brackets inside quoted scalars and comments do not count.
    let ok = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a, namespace: b}}\ndata: {{k: \"{}\"}} # {}\n",
        "[".repeat(100),
        "{".repeat(100)
    );
    evl::ingest::mesh::parse_yaml("ok.yaml", ok.as_bytes()).unwrap();
}
