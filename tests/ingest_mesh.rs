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
    assert_eq!(scoped.workloads, vec!["payments/payments-api"]);
}

#[test]
fn mesh_wide_allow_nothing_applies_to_every_namespace() {
    let y = b"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-all, namespace: istio-system}\nspec: {}\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow-all, namespace: orders}\nspec:\n  rules:\n  - {}\n";
    let f = mesh::parse_yaml("m.yaml", y).unwrap();
    // Both ALLOW policies apply to every workload of orders, so it is default-deny; only the
    // mesh-wide one allows nothing.
    let p = &f.namespaces["orders"].authorization;
    assert_eq!(
        p.default_deny_policies,
        vec!["istio-system/deny-all", "orders/allow-all"]
    );
    assert_eq!(p.allow_nothing_policies, vec!["istio-system/deny-all"]);
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
            s.workloads.first().map(String::as_str),
            s.port.as_str(),
            s.access_policy.as_deref()
        ),
        (Some("orders/orders-journal-writer"), "grpc", Some("deny"))
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
        vec!["MeshTLSAuthentication orders/orders-api-identity"]
    );
    assert!(ap.mesh_tls);
    assert_eq!(
        ap.identities,
        vec!["orders-api.orders.serviceaccount.identity.linkerd.cluster.local"]
    );
    assert_eq!(
        sa.identities,
        vec!["orders-api.orders.serviceaccount.identity.linkerd.cluster.local"]
    );
    assert_eq!(f.linkerd_servers[0].admits, "mesh-identities");
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
        e.contains("pa.yaml, line 9, field spec.mtls.mode")
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

// ---------------------------------------------------------------------------------------------
// Per-rule tests: each names the upstream rule it follows. Upstream sources (read, not copied):
// Istio istio/istio@86c9f01f (pilot/pkg/security/authn/policy_applier.go,
// pilot/pkg/model/{authentication,authorization,policyattachment,config}.go,
// pilot/pkg/security/authz/builder/{builder.go,testdata/http/*}, pkg/config/validation/
// {validation.go,validation_test.go}, pkg/config/security/security.go, the CRDs in
// manifests/charts/base/files/crd-all.gen.yaml); Linkerd linkerd/linkerd2@b24cd405
// (policy-controller/k8s/index/src/inbound/{index.rs,tests/*.rs}, policy-controller/runtime/src/
// admission.rs, charts/linkerd-crds/templates/policy/*.yaml); kubectl apply.

const PA: &str = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n";
const AP: &str = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n";
const LP: &str = "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\n";

fn deployment(ns: &str, name: &str, labels: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  template:\n    metadata:\n      labels: {{{labels}}}\n    spec:\n      serviceAccountName: {name}\n      containers:\n      - name: main\n        ports:\n        - {{name: grpc, containerPort: 9090}}\n        - {{name: http, containerPort: 8080}}\n"
    )
}

fn parse(y: &str) -> mesh::MeshFacts {
    mesh::parse_yaml("t.yaml", y.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn refused(y: &str) -> String {
    mesh::parse_yaml("t.yaml", y.as_bytes())
        .expect_err("the file must be refused")
        .to_string()
}

fn workload<'f>(f: &'f mesh::MeshFacts, ns: &str, name: &str) -> &'f mesh::WorkloadFacts {
    f.workloads
        .iter()
        .find(|w| w.namespace == ns && w.workload == name)
        .unwrap_or_else(|| panic!("no workload {ns}/{name} in {:?}", f.workloads))
}

/// kubectl apply: an object is identified by group, kind, namespace and name; applying a file
/// that holds one twice leaves the last one in effect (the API version does not matter).
#[test]
fn kubectl_apply_leaves_the_last_of_two_objects_with_one_identity_in_effect() {
    let y = format!(
        "{PA}metadata: {{name: default, namespace: payments}}\nspec: {{mtls: {{mode: STRICT}}}}\n---\napiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {{name: default, namespace: payments}}\nspec: {{mtls: {{mode: DISABLE}}}}\n"
    );
    let f = parse(&y);
    assert_eq!(f.namespaces["payments"].mtls, MtlsMode::Disable);
    assert_eq!(f.peer_authentications.len(), 1);
    assert_eq!(f.objects.len(), 1);
    assert_eq!(f.objects[0].document, 2);
    assert_eq!(f.replaced_objects.len(), 1);
    assert_eq!(f.replaced_objects[0].object.document, 1);
    assert_eq!(f.replaced_objects[0].replaced_by.document, 2);
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("PeerAuthentication payments/default appears again")),
        "{:?}",
        f.warnings
    );
    // The same name in another namespace or of another kind is another object.
    let y = format!(
        "{PA}metadata: {{name: default, namespace: a}}\nspec: {{}}\n---\n{PA}metadata: {{name: default, namespace: b}}\nspec: {{}}\n---\n{AP}metadata: {{name: default, namespace: a}}\nspec: {{}}\n"
    );
    assert!(parse(&y).replaced_objects.is_empty());
}

/// kubectl apply --namespace: namespaced objects without metadata.namespace go there; an
/// object naming another namespace is refused; cluster-scoped objects have no namespace.
#[test]
fn kubectl_apply_namespace_option_places_and_refuses_as_kubectl_does() {
    let y = format!(
        "{PA}metadata: {{name: default}}\nspec: {{mtls: {{mode: STRICT}}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: orders}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: reader}}\n"
    );
    let opts = mesh::MeshOptions {
        namespace: Some("orders".into()),
        ..Default::default()
    };
    let f = mesh::parse_yaml_with("n.yaml", y.as_bytes(), &opts).unwrap();
    assert_eq!(f.default_namespace, "orders");
    assert_eq!(f.namespaces["orders"].mtls, MtlsMode::Strict);
    assert_eq!(f.objects[0].namespace.as_deref(), Some("orders"));
    assert_eq!(
        f.objects[1].namespace, None,
        "a Namespace is cluster-scoped"
    );
    assert_eq!(
        f.objects[2].namespace, None,
        "a ClusterRole is cluster-scoped"
    );
    assert!(!f.namespaces.contains_key("default"));
    // Without the option: kubectl's default namespace, with a warning.
    let f = parse(&y);
    assert_eq!(f.namespaces["default"].mtls, MtlsMode::Strict);
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("taken to be in namespace default"))
    );
    // An object in another namespace than --namespace: refused naming the field.
    let other = format!("{PA}metadata: {{name: x, namespace: payments}}\nspec: {{}}\n");
    let e = mesh::parse_yaml_with("n.yaml", other.as_bytes(), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("n.yaml, line 3, field metadata.namespace:")
            && e.contains("\"payments\"")
            && e.contains("\"orders\""),
        "{e}"
    );
}

/// A UTF-8 byte-order mark is not YAML content: the file parses and lines stay as written.
#[test]
fn a_utf8_byte_order_mark_is_not_content() {
    let y = format!(
        "\u{feff}{PA}metadata: {{name: x, namespace: a}}\nspec: {{mtls: {{mode: STRIKT}}}}\n"
    );
    let e = refused(&y);
    assert!(
        e.starts_with("t.yaml, line 4, field spec.mtls.mode:"),
        "{e}"
    );
    let y = format!(
        "\u{feff}{PA}metadata: {{name: x, namespace: a}}\nspec: {{mtls: {{mode: STRICT}}}}\n"
    );
    assert_eq!(parse(&y).namespaces["a"].mtls, MtlsMode::Strict);
}

/// Istio `ComposePeerAuthentication`: workload over namespace over mesh, UNSET inherits, a
/// port UNSET inherits the workload's mode; the workload policy is found by matching its
/// selector against the pod labels (`getConfigsForWorkload`: `selector.SubsetOf(labels)`).
#[test]
fn istio_peer_authentication_selects_pods_by_label_subset() {
    let y = format!(
        "{}---\n{}---\n{PA}metadata: {{name: v1-only, namespace: payments}}\nspec:\n  selector: {{matchLabels: {{app: api, version: v1}}}}\n  mtls: {{mode: DISABLE}}\n  portLevelMtls:\n    9090: {{mode: STRICT}}\n    8080: {{mode: UNSET}}\n---\n{PA}metadata: {{name: default, namespace: payments}}\nspec: {{mtls: {{mode: STRICT}}}}\n",
        deployment("payments", "api-v1", "app: api, version: v1"),
        deployment("payments", "api-v2", "app: api, version: v2"),
    );
    let f = parse(&y);
    let v1 = workload(&f, "payments", "api-v1");
    assert_eq!(
        (v1.mtls, v1.mtls_source.as_str()),
        (MtlsMode::Disable, "workload")
    );
    assert_eq!(v1.port_mtls[&9090], MtlsMode::Strict);
    assert_eq!(
        v1.port_mtls[&8080],
        MtlsMode::Disable,
        "port UNSET inherits the workload"
    );
    assert_eq!(v1.source, "Deployment");
    assert_eq!(v1.service_account.as_deref(), Some("api-v1"));
    let v2 = workload(&f, "payments", "api-v2");
    assert_eq!(
        (v2.mtls, v2.mtls_source.as_str()),
        (MtlsMode::Strict, "namespace")
    );
    assert_eq!(f.peer_authentications[0].workloads, vec!["payments/api-v1"]);
    // No phantom workload named after the selector's app label when real workloads match.
    assert!(f.workloads.iter().all(|w| w.workload != "api"));
}

/// Istio `ComposePeerAuthentication`: a PeerAuthentication with a selector in the root
/// namespace is never applied ("Workload-level policy, aka the one with selector and not in
/// root namespace").
#[test]
fn istio_peer_authentication_with_selector_in_the_root_namespace_is_ignored() {
    let y = format!(
        "{}---\n{PA}metadata: {{name: gw, namespace: istio-system}}\nspec:\n  selector: {{matchLabels: {{app: gw}}}}\n  mtls: {{mode: DISABLE}}\n---\n{PA}metadata: {{name: default, namespace: istio-system}}\nspec: {{mtls: {{mode: STRICT}}}}\n",
        deployment("istio-system", "gw", "app: gw")
    );
    let f = parse(&y);
    assert_eq!(f.peer_authentications[0].scope, "ignored");
    let gw = workload(&f, "istio-system", "gw");
    assert_eq!(
        (gw.mtls, gw.mtls_source.as_str()),
        (MtlsMode::Strict, "mesh")
    );
}

/// Istio `configCompareByCreationTime`: of several policies at one level the oldest wins; equal
/// (or, as Go's zero time, missing) timestamps fall back to the name.
#[test]
fn istio_oldest_peer_authentication_wins_and_ties_go_by_name() {
    let y = format!(
        "{PA}metadata: {{name: b-first-in-file, namespace: orders}}\nspec: {{mtls: {{mode: DISABLE}}}}\n---\n{PA}metadata: {{name: a-second, namespace: orders}}\nspec: {{mtls: {{mode: STRICT}}}}\n"
    );
    let f = parse(&y);
    assert_eq!(
        f.namespaces["orders"].mtls_policy.as_deref(),
        Some("orders/a-second")
    );
    let y = format!(
        "{PA}metadata: {{name: a, namespace: orders, creationTimestamp: '2026-02-01T00:00:00Z'}}\nspec: {{mtls: {{mode: STRICT}}}}\n---\n{PA}metadata: {{name: b, namespace: orders, creationTimestamp: '2026-01-01T00:00:00Z'}}\nspec: {{mtls: {{mode: DISABLE}}}}\n"
    );
    assert_eq!(parse(&y).namespaces["orders"].mtls, MtlsMode::Disable);
}

/// Istio authorization (builder.go; "implicit enablement" in the AuthorizationPolicy reference):
/// once any ALLOW policy applies to a workload, a request matching none is denied.
#[test]
fn istio_allow_policy_makes_its_workload_default_deny() {
    let y = format!(
        "{}---\n{}---\n{AP}metadata: {{name: api-from-edge, namespace: payments}}\nspec:\n  selector: {{matchLabels: {{app: api}}}}\n  rules:\n  - from:\n    - source: {{principals: [cluster.local/ns/edge/sa/gw]}}\n",
        deployment("payments", "api", "app: api"),
        deployment("payments", "ledger", "app: ledger"),
    );
    let f = parse(&y);
    let api = workload(&f, "payments", "api");
    assert!(api.authorization.default_deny);
    assert!(!api.authorization.allows_nothing);
    assert_eq!(
        api.authorization.allow_policies,
        vec!["payments/api-from-edge"]
    );
    let ledger = workload(&f, "payments", "ledger");
    assert!(
        !ledger.authorization.default_deny,
        "no ALLOW policy applies to it"
    );
    assert!(!f.namespaces["payments"].authorization.default_deny);
    // A namespace-wide ALLOW policy with rules makes the whole namespace default-deny.
    let y = format!(
        "{}---\n{AP}metadata: {{name: from-orders, namespace: payments}}\nspec:\n  rules:\n  - from:\n    - source: {{namespaces: [orders]}}\n",
        deployment("payments", "ledger", "app: ledger")
    );
    let f = parse(&y);
    let p = &f.namespaces["payments"].authorization;
    assert!(p.default_deny);
    assert_eq!(p.default_deny_policies, vec!["payments/from-orders"]);
    assert!(p.allow_nothing_policies.is_empty());
    assert!(
        workload(&f, "payments", "ledger")
            .authorization
            .default_deny
    );
}

/// Istio builder testdata allow-nil-rule / allow-empty-rule / deny-empty-rule: an ALLOW policy
/// without rules matches nothing, `rules: [{}]` matches everything, and a DENY with an empty
/// rule denies everything.
#[test]
fn istio_rule_less_allow_matches_nothing_and_empty_rules_match_everything() {
    let y = format!(
        "{}---\n{AP}metadata: {{name: allow-nil, namespace: a}}\nspec: {{}}\n---\n{AP}metadata: {{name: allow-empty, namespace: b}}\nspec: {{rules: [{{}}]}}\n---\n{AP}metadata: {{name: deny-empty, namespace: b}}\nspec: {{action: DENY, rules: [{{}}]}}\n",
        deployment("a", "w", "app: w")
    );
    let f = parse(&y);
    let nil = f
        .authorization_policies
        .iter()
        .find(|a| a.name == "allow-nil")
        .unwrap();
    assert!(nil.allow_nothing && !nil.allow_all);
    let w = workload(&f, "a", "w");
    assert!(w.authorization.default_deny && w.authorization.allows_nothing);
    let empty = f
        .authorization_policies
        .iter()
        .find(|a| a.name == "allow-empty")
        .unwrap();
    assert!(empty.allow_all && !empty.allow_nothing);
    let deny = f
        .authorization_policies
        .iter()
        .find(|a| a.name == "deny-empty")
        .unwrap();
    assert!(deny.deny_all);
    assert_eq!(
        f.namespaces["b"].authorization.deny_all_policies,
        vec!["b/deny-empty"]
    );
}

/// Istio `ListAuthorizationPolicies` looks in the root namespace and the workload's: a root
/// namespace policy with a selector applies to matching workloads of every namespace.
#[test]
fn istio_root_namespace_policy_with_selector_applies_in_every_namespace() {
    let y = format!(
        "{}---\n{}---\n{AP}metadata: {{name: deny-debug, namespace: istio-system}}\nspec:\n  selector: {{matchLabels: {{debug: 'on'}}}}\n  action: DENY\n  rules: [{{}}]\n",
        deployment("a", "x", "app: x, debug: 'on'"),
        deployment("b", "y", "app: y"),
    );
    let f = parse(&y);
    let x = workload(&f, "a", "x");
    assert!(x.authorization.denies_all);
    assert_eq!(
        x.authorization.deny_policies,
        vec!["istio-system/deny-debug"]
    );
    assert!(
        workload(&f, "b", "y")
            .authorization
            .deny_policies
            .is_empty()
    );
}

/// Istio `ShouldAttachPolicy`: a policy with targetRef(s) is ignored by sidecar workloads.
#[test]
fn istio_target_ref_policy_never_applies_to_sidecar_workloads() {
    let y = format!(
        "{}---\n{AP}metadata: {{name: at-gateway, namespace: a}}\nspec:\n  targetRefs:\n  - {{kind: Gateway, group: gateway.networking.k8s.io, name: gw}}\n  rules: [{{}}]\n",
        deployment("a", "x", "app: x")
    );
    let f = parse(&y);
    assert_eq!(f.authorization_policies[0].scope, "target-ref");
    assert_eq!(f.authorization_policies[0].target_refs, vec!["Gateway/gw"]);
    let x = workload(&f, "a", "x");
    assert!(!x.authorization.default_deny && x.authorization.allow_policies.is_empty());
}

/// Istio builder `isDryRun` (testdata dry-run-allow-in.yaml): a dry-run policy is shadow only.
#[test]
fn istio_dry_run_policy_is_not_enforced() {
    let y = format!(
        "{}---\n{AP}metadata:\n  name: trial\n  namespace: a\n  annotations: {{istio.io/dry-run: 'true'}}\nspec: {{}}\n",
        deployment("a", "x", "app: x")
    );
    let f = parse(&y);
    assert!(f.authorization_policies[0].dry_run);
    let x = workload(&f, "a", "x");
    assert!(!x.authorization.default_deny);
    assert_eq!(x.authorization.dry_run_policies, vec!["a/trial"]);
    assert!(!f.namespaces["a"].authorization.default_deny);
}

/// One test per case of Istio's `TestValidateAuthorizationPolicy` / `ValidatePeerAuthentication`
/// (pkg/config/validation/validation_test.go) and the CRD schema: each policy is refused with
/// one line naming the file, the line and the field.
macro_rules! istio_refuses {
    ($($name:ident: $kind:expr, $body:expr => $field:expr, $needle:expr;)*) => {$(
        #[test]
        fn $name() {
            let y = format!("{}metadata:\n  name: p\n  namespace: a\n{}", $kind, $body);
            let e = refused(&y);
            assert!(e.starts_with("t.yaml, line "), "{e}");
            assert!(e.contains(&format!(", field {}:", $field)), "{e}");
            assert!(e.contains($needle), "{e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    )*};
}

istio_refuses! {
    istio_validation_service_accounts_and_namespaces: AP, "spec:\n  rules:\n  - from:\n    - source: {serviceAccounts: [a/b], namespaces: [a]}\n" => "spec.rules[0].from[0].source", "cannot be combined";
    istio_validation_custom_empty_provider: AP, "spec:\n  action: CUSTOM\n  provider: {name: ''}\n  rules: [{}]\n" => "spec.provider.name", "must not be empty";
    istio_validation_custom_rules_nil: AP, "spec:\n  action: CUSTOM\n  provider: {name: ext}\n" => "spec.rules", "never be triggered";
    istio_validation_custom_invalid_rule: AP, "spec:\n  action: CUSTOM\n  provider: {name: ext}\n  rules:\n  - from:\n    - source: {principals: [a]}\n" => "spec.rules[0].from[0].source.principals", "CUSTOM";
    istio_validation_provider_wrong_action: AP, "spec:\n  action: DENY\n  provider: {name: ext}\n  rules: [{}]\n" => "spec.provider", "only with CUSTOM";
    istio_validation_deny_rules_nil: AP, "spec:\n  action: DENY\n" => "spec.rules", "never be triggered";
    istio_validation_dry_run_invalid_value: AP, "  annotations: {istio.io/dry-run: foo}\nspec: {}\n" => "metadata.annotations.istio.io/dry-run", "not a boolean";
    istio_validation_dry_run_invalid_action_audit: AP, "  annotations: {istio.io/dry-run: 'true'}\nspec: {action: AUDIT}\n" => "metadata.annotations.istio.io/dry-run", "only for ALLOW and DENY";
    istio_validation_selector_empty_key: AP, "spec:\n  selector: {matchLabels: {'': x}}\n" => "spec.selector.matchLabels.", "empty key";
    istio_validation_selector_wildcard_value: AP, "spec:\n  selector: {matchLabels: {app: 'ap*'}}\n" => "spec.selector.matchLabels.app", "wildcard";
    istio_validation_target_ref_and_selector_cannot_both_be_set: AP, "spec:\n  selector: {matchLabels: {app: x}}\n  targetRef: {kind: Service, name: x}\n" => "spec.selector", "only one of them";
    istio_validation_target_ref_wrong_kind: AP, "spec:\n  targetRef: {kind: Deployment, group: apps, name: x}\n" => "spec.targetRef.kind", "Service, ServiceEntry, Gateway";
    istio_validation_target_ref_non_empty_namespace: AP, "spec:\n  targetRef: {kind: Service, name: x, namespace: b}\n" => "spec.targetRef.namespace", "cross namespace";
    istio_validation_from_empty: AP, "spec:\n  rules:\n  - from: []\n" => "spec.rules[0].from", "must not be empty";
    istio_validation_source_nil: AP, "spec:\n  rules:\n  - from:\n    - source: null\n" => "spec.rules[0].from[0].source", "must not be null";
    istio_validation_source_empty: AP, "spec:\n  rules:\n  - from:\n    - source: {}\n" => "spec.rules[0].from[0].source", "must not be empty";
    istio_validation_to_empty: AP, "spec:\n  rules:\n  - to: []\n" => "spec.rules[0].to", "must not be empty";
    istio_validation_operation_empty: AP, "spec:\n  rules:\n  - to:\n    - operation: {}\n" => "spec.rules[0].to[0].operation", "must not be empty";
    istio_validation_principals_empty_value: AP, "spec:\n  rules:\n  - from:\n    - source: {principals: ['']}\n" => "spec.rules[0].from[0].source.principals", "empty value";
    istio_validation_invalid_ip_in_ip_blocks: AP, "spec:\n  rules:\n  - from:\n    - source: {ipBlocks: ['1.2.3.4:80']}\n" => "spec.rules[0].from[0].source.ipBlocks", "not an IP address";
    istio_validation_ports_bad: AP, "spec:\n  rules:\n  - to:\n    - operation: {ports: ['65536']}\n" => "spec.rules[0].to[0].operation.ports", "bad port";
    istio_validation_condition_key_empty: AP, "spec:\n  rules:\n  - when:\n    - {key: '', values: [a]}\n" => "spec.rules[0].when[0].key", "must not be empty";
    istio_validation_condition_value_missing: AP, "spec:\n  rules:\n  - when:\n    - {key: source.ip}\n" => "spec.rules[0].when[0]", "neither values nor notValues";
    istio_validation_condition_value_invalid: AP, "spec:\n  rules:\n  - when:\n    - {key: source.ip, values: [x.y.z]}\n" => "spec.rules[0].when[0].values", "not an IP address";
    istio_validation_condition_unknown: AP, "spec:\n  rules:\n  - when:\n    - {key: key1, values: [v1]}\n" => "spec.rules[0].when[0].values", "unknown attribute";
    istio_validation_path_template_any_not_last: AP, "spec:\n  rules:\n  - to:\n    - operation: {paths: ['/{**}/a/{**}']}\n" => "spec.rules[0].to[0].operation.paths", "not the last operator";
    istio_crd_unknown_field: AP, "spec:\n  rules:\n  - from:\n    - source: {principal: [a]}\n" => "spec.rules[0].from[0].source.principal", "is not a field";
    istio_crd_unknown_action: AP, "spec: {action: PERMIT}\n" => "spec.action", "ALLOW, DENY, AUDIT or CUSTOM";
    istio_crd_label_value_not_a_string: AP, "spec:\n  selector: {matchLabels: {version: 2}}\n" => "spec.selector.matchLabels.version", "a string";
    istio_peer_authentication_port_level_mtls_needs_a_selector: PA, "spec:\n  mtls: {mode: STRICT}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n" => "spec.portLevelMtls", "without a workload selector";
    istio_peer_authentication_port_out_of_range: PA, "spec:\n  selector: {matchLabels: {app: x}}\n  portLevelMtls:\n    '0': {mode: DISABLE}\n" => "spec.portLevelMtls.0", "between 1 and 65535";
    istio_peer_authentication_empty_port_level_mtls: PA, "spec:\n  selector: {matchLabels: {app: x}}\n  portLevelMtls: {}\n" => "spec.portLevelMtls", "at least one element";
    istio_peer_authentication_refuses_the_dry_run_annotation: PA, "  annotations: {istio.io/dry-run: 'true'}\nspec: {}\n" => "metadata.annotations.istio.io/dry-run", "only AuthorizationPolicy";
    istio_crd_unknown_mtls_mode: PA, "spec: {mtls: {mode: MUTUAL}}\n" => "spec.mtls.mode", "unknown mTLS mode";
}

/// The validation-test cases Istio accepts are accepted: L7DenyWithFrom (a warning only),
/// allow-rules-nil, selector-empty-labels, target-refs-good-service.
#[test]
fn istio_validation_accepts_what_istio_accepts() {
    let y = format!(
        "{AP}metadata: {{name: l7, namespace: a}}\nspec:\n  action: DENY\n  rules:\n  - from:\n    - source: {{requestPrincipals: [x]}}\n---\n{AP}metadata: {{name: nil, namespace: a}}\nspec: {{action: ALLOW}}\n---\n{AP}metadata: {{name: empty-sel, namespace: a}}\nspec: {{selector: {{}}, rules: [{{}}]}}\n---\n{AP}metadata: {{name: svc, namespace: a}}\nspec:\n  targetRefs: [{{kind: Service, group: '', name: s}}]\n  rules: [{{}}]\n"
    );
    let f = parse(&y);
    assert_eq!(f.authorization_policies.len(), 4);
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("AuthorizationPolicy a/l7") && w.contains("deny-all"))
    );
    let empty_sel = f
        .authorization_policies
        .iter()
        .find(|a| a.name == "empty-sel")
        .unwrap();
    assert_eq!(
        empty_sel.scope, "namespace",
        "an empty selector selects the whole namespace"
    );
}

/// With `record_invalid` a policy Istio would refuse is recorded as not in effect, warned
/// about, and takes part in no other fact.
#[test]
fn invalid_policy_is_recorded_not_in_effect_only_when_asked() {
    let y = format!(
        "{}---\n{AP}metadata: {{name: bad, namespace: a}}\nspec:\n  rules:\n  - from: []\n---\n{AP}metadata: {{name: good, namespace: a}}\nspec:\n  selector: {{matchLabels: {{app: x}}}}\n  rules: [{{}}]\n",
        deployment("a", "x", "app: x")
    );
    assert!(refused(&y).contains("field spec.rules[0].from"));
    let opts = mesh::MeshOptions {
        record_invalid: true,
        ..Default::default()
    };
    let f = mesh::parse_yaml_with("t.yaml", y.as_bytes(), &opts).unwrap();
    assert_eq!(f.not_in_effect.len(), 1);
    assert_eq!(f.not_in_effect[0].object.name, "bad");
    assert_eq!(f.not_in_effect[0].field, "spec.rules[0].from");
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("recorded as not in effect"))
    );
    assert_eq!(f.authorization_policies.len(), 1);
    let x = workload(&f, "a", "x");
    assert_eq!(x.authorization.allow_policies, vec!["a/good"]);
    assert!(
        !f.namespaces["a"].authorization.default_deny,
        "the refused policy is not in effect"
    );
}

fn linkerd_set(extra: &str) -> String {
    format!(
        "{}---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {{name: srv-8080, namespace: ns-0}}\nspec:\n  podSelector: {{matchLabels: {{app: app-0}}}}\n  port: 8080\n  proxyProtocol: HTTP/1\n---\n{extra}",
        deployment("ns-0", "app-0", "app: app-0")
    )
}

/// Linkerd `policy_client_authz`: without a MeshTLSAuthentication or ServiceAccount the
/// authorization is `Unauthenticated`, limited to the NetworkAuthentication's networks.
#[test]
fn linkerd_network_authentication_alone_admits_clients_without_identity() {
    let y = linkerd_set(&format!(
        "{LP}metadata: {{name: authz-net, namespace: ns-0}}\nspec:\n  targetRef: {{group: policy.linkerd.io, kind: Server, name: srv-8080}}\n  requiredAuthenticationRefs:\n  - {{group: policy.linkerd.io, kind: NetworkAuthentication, name: net-foo}}\n---\napiVersion: policy.linkerd.io/v1alpha1\nkind: NetworkAuthentication\nmetadata: {{name: net-foo, namespace: ns-0}}\nspec:\n  networks:\n  - {{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}\n"
    ));
    let f = parse(&y);
    let a = &f.linkerd_authorizations[0];
    assert!(a.in_effect);
    assert_eq!(a.authentication, "unauthenticated");
    assert!(a.unauthenticated && !a.mesh_tls);
    assert_eq!(a.networks_scope, "listed");
    assert_eq!(a.networks, vec!["10.0.0.0/8 except 10.1.0.0/16"]);
    assert_eq!(f.linkerd_servers[0].admits, "any-client");
    assert_eq!(
        workload(&f, "ns-0", "app-0").linkerd_ports["8080"].admits,
        "any-client"
    );
}

/// Linkerd tests `links_authorization_policy_with_service_account`: a required ServiceAccount
/// is the exact mTLS identity `<sa>.<ns>.serviceaccount.identity.linkerd.<trust domain>`.
#[test]
fn linkerd_service_account_reference_is_an_mtls_identity() {
    let y = linkerd_set(&format!(
        "{LP}metadata: {{name: authz-foo, namespace: ns-0}}\nspec:\n  targetRef: {{group: policy.linkerd.io, kind: Server, name: srv-8080}}\n  requiredAuthenticationRefs:\n  - {{kind: ServiceAccount, name: foo, namespace: ns-0}}\n"
    ));
    let f = parse(&y);
    let a = &f.linkerd_authorizations[0];
    assert!(a.mesh_tls && !a.unauthenticated);
    assert_eq!(a.service_accounts, vec!["ns-0/foo"]);
    assert_eq!(
        a.identities,
        vec!["foo.ns-0.serviceaccount.identity.linkerd.cluster.local"]
    );
    assert_eq!(a.networks_scope, "all");
    assert_eq!(f.linkerd_servers[0].admits, "mesh-identities");
}

/// Linkerd tests `links_authorization_policy_with_mtls_name`: the MeshTLSAuthentication's
/// identities (here in another namespace) become the authorization's; `authorization_targets_
/// namespace`: a policy targeting its Namespace applies to every Server in it.
#[test]
fn linkerd_mesh_tls_authentication_identities_are_resolved_and_namespace_targets_apply() {
    let y = linkerd_set(&format!(
        "{LP}metadata: {{name: authz-foo, namespace: ns-0}}\nspec:\n  targetRef: {{kind: Namespace, name: ns-0}}\n  requiredAuthenticationRefs:\n  - {{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: mtls-bar, namespace: ns-1}}\n---\napiVersion: policy.linkerd.io/v1alpha1\nkind: MeshTLSAuthentication\nmetadata: {{name: mtls-bar, namespace: ns-1}}\nspec:\n  identities: [foo.bar]\n  \n"
    ));
    let f = parse(&y);
    let a = &f.linkerd_authorizations[0];
    assert_eq!(a.identities, vec!["foo.bar"]);
    assert_eq!(a.authentication, "tls-authenticated");
    assert_eq!(
        f.linkerd_servers[0].authorizations,
        vec!["AuthorizationPolicy/authz-foo"]
    );
    assert_eq!(f.linkerd_authentications[0].identities, vec!["foo.bar"]);
    // identityRefs resolve to service-account and namespace identities.
    let y = linkerd_set(
        "apiVersion: policy.linkerd.io/v1alpha1\nkind: MeshTLSAuthentication\nmetadata: {name: m, namespace: ns-0}\nspec:\n  identityRefs:\n  - {kind: ServiceAccount, name: web}\n  - {kind: Namespace, name: emojivoto}\n",
    );
    assert_eq!(
        parse(&y).linkerd_authentications[0].identities,
        vec![
            "web.ns-0.serviceaccount.identity.linkerd.cluster.local",
            "*.emojivoto.serviceaccount.identity.linkerd.cluster.local"
        ]
    );
}

/// Linkerd `policy_client_authz` ("could not find MeshTLSAuthentication …"): a policy whose
/// required authentication is missing is ignored, so it admits nobody.
#[test]
fn linkerd_policy_with_a_missing_authentication_is_ignored() {
    let y = linkerd_set(&format!(
        "{LP}metadata: {{name: authz-foo, namespace: ns-0}}\nspec:\n  targetRef: {{group: policy.linkerd.io, kind: Server, name: srv-8080}}\n  requiredAuthenticationRefs:\n  - {{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: nowhere}}\n"
    ));
    let f = parse(&y);
    let a = &f.linkerd_authorizations[0];
    assert!(!a.in_effect);
    assert!(
        a.not_in_effect_reason
            .as_deref()
            .unwrap()
            .contains("MeshTLSAuthentication ns-0/nowhere")
    );
    assert_eq!(f.linkerd_servers[0].admits, "nothing");
    assert!(f.linkerd_servers[0].authorizations.is_empty());
}

/// Linkerd tests `links_named_server_port` / `links_unnamed_server_port`: a Server selects pods
/// by label and a port by number or by container-port name; a Server without authorizations
/// (accessPolicy defaults to deny) admits nothing.
#[test]
fn linkerd_server_selects_workloads_and_named_ports_of_the_input() {
    let y = format!(
        "{}---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {{name: grpc, namespace: ns-0}}\nspec:\n  podSelector:\n    matchExpressions:\n    - {{key: app, operator: In, values: [app-0, app-1]}}\n  port: grpc\n",
        deployment("ns-0", "app-0", "app: app-0")
    );
    let f = parse(&y);
    let s = &f.linkerd_servers[0];
    assert_eq!(s.workloads, vec!["ns-0/app-0"]);
    assert_eq!(s.selector, vec!["app In [app-0, app-1]"]);
    assert_eq!(s.admits, "nothing");
    let w = workload(&f, "ns-0", "app-0");
    assert_eq!(
        w.linkerd_ports["9090"].server, "grpc",
        "the named port resolves to 9090"
    );
    assert!(!w.linkerd_ports.contains_key("8080"));
}

/// Linkerd `reindex_servers`: when two Servers select one pod port, the older (then by name)
/// holds it.
#[test]
fn linkerd_oldest_server_holds_a_contested_port() {
    let server = |name: &str, ts: &str, policy: &str| {
        format!(
            "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {{name: {name}, namespace: ns-0, creationTimestamp: '{ts}'}}\nspec:\n  podSelector: {{matchLabels: {{app: app-0}}}}\n  port: 8080\n  accessPolicy: {policy}\n"
        )
    };
    let y = format!(
        "{}---\n{}---\n{}",
        deployment("ns-0", "app-0", "app: app-0"),
        server("newer", "2026-03-01T00:00:00Z", "all-unauthenticated"),
        server("older", "2026-01-01T00:00:00Z", "all-authenticated"),
    );
    let f = parse(&y);
    let p = &workload(&f, "ns-0", "app-0").linkerd_ports["8080"];
    assert_eq!(
        (p.server.as_str(), p.admits.as_str()),
        ("older", "mesh-identities")
    );
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("Server ns-0/newer also selects port 8080"))
    );
}

/// Linkerd tests `links_server_authz_by_label`: a ServerAuthorization may select Servers by
/// their labels; `client_mtls_authn`: `unauthenticatedTLS` admits TLS clients of any identity.
#[test]
fn linkerd_server_authorization_selects_servers_by_label() {
    let y = format!(
        "{}---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {{name: srv, namespace: ns-0, labels: {{tier: api}}}}\nspec:\n  podSelector: {{matchLabels: {{app: app-0}}}}\n  port: 8080\n---\napiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata: {{name: saz, namespace: ns-0}}\nspec:\n  server: {{selector: {{matchLabels: {{tier: api}}}}}}\n  client: {{meshTLS: {{unauthenticatedTLS: true}}}}\n",
        deployment("ns-0", "app-0", "app: app-0")
    );
    let f = parse(&y);
    assert_eq!(
        f.linkerd_authorizations[0].authentication,
        "tls-unauthenticated"
    );
    assert_eq!(f.linkerd_authorizations[0].networks_scope, "cluster");
    assert_eq!(f.linkerd_servers[0].admits, "tls-clients");
}

macro_rules! linkerd_refuses {
    ($($name:ident: $body:expr => $field:expr, $needle:expr;)*) => {$(
        #[test]
        fn $name() {
            let e = refused(&linkerd_set($body));
            assert!(e.contains(&format!(", field {}:", $field)), "{e}");
            assert!(e.contains($needle), "{e}");
        }
    )*};
}

// Linkerd's admission webhook (policy-controller/runtime/src/admission.rs) and CRDs.
linkerd_refuses! {
    linkerd_admission_mesh_tls_and_service_account_may_not_be_set_together: "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: ns-0}\nspec:\n  targetRef: {group: policy.linkerd.io, kind: Server, name: srv-8080}\n  requiredAuthenticationRefs:\n  - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: m}\n  - {kind: ServiceAccount, name: s}\n" => "spec.requiredAuthenticationRefs", "may not be set together";
    linkerd_admission_cannot_target_another_namespace: "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: ns-0}\nspec:\n  targetRef: {kind: Namespace, name: ns-1}\n  requiredAuthenticationRefs: []\n" => "spec.targetRef.name", "another namespace";
    linkerd_admission_unsupported_authentication_kind: "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: ns-0}\nspec:\n  targetRef: {group: policy.linkerd.io, kind: Server, name: srv-8080}\n  requiredAuthenticationRefs:\n  - {kind: Secret, name: s}\n" => "spec.requiredAuthenticationRefs[0].kind", "unsupported authentication kind";
    linkerd_admission_network_exception_outside_its_cidr: "apiVersion: policy.linkerd.io/v1alpha1\nkind: NetworkAuthentication\nmetadata: {name: n, namespace: ns-0}\nspec:\n  networks:\n  - {cidr: 10.0.0.0/16, except: [192.168.0.0/24]}\n" => "spec.networks[0].except", "does not include";
    linkerd_admission_network_exception_negates_its_cidr: "apiVersion: policy.linkerd.io/v1alpha1\nkind: NetworkAuthentication\nmetadata: {name: n, namespace: ns-0}\nspec:\n  networks:\n  - {cidr: 10.1.0.0/16, except: [10.0.0.0/8]}\n" => "spec.networks[0].except", "completely negates";
    linkerd_admission_unauthenticated_with_mesh_tls: "apiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata: {name: s, namespace: ns-0}\nspec:\n  server: {name: srv-8080}\n  client: {unauthenticated: true, meshTLS: {identities: ['*']}}\n" => "spec.client.unauthenticated", "must be false";
    linkerd_admission_invalid_access_policy: "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: s2, namespace: ns-0}\nspec:\n  podSelector: {}\n  port: 80\n  accessPolicy: allow\n" => "spec.accessPolicy", "all-authenticated";
    linkerd_admission_invalid_identity: "apiVersion: policy.linkerd.io/v1alpha1\nkind: MeshTLSAuthentication\nmetadata: {name: m, namespace: ns-0}\nspec:\n  identities: ['Not_A.DNS']\n" => "spec.identities", "neither a valid SPIFFE ID";
    linkerd_crd_unknown_field: "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: s2, namespace: ns-0}\nspec:\n  podSelector: {}\n  port: 80\n  acessPolicy: deny\n" => "spec.acessPolicy", "is not a field";
}

/// The selector and port resolution has a budget: a file whose policies would have to be
/// compared with workloads more than `MAX_SELECTOR_CHECKS` times is refused.
#[test]
fn quadratic_selector_work_is_capped() {
    let mut y = String::new();
    for i in 0..1100 {
        y.push_str(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: a, labels: {{app: x, n: '{i}'}}}}\n---\n{PA}metadata: {{name: s{i}, namespace: a}}\nspec:\n  selector: {{matchLabels: {{app: x, n: 'no{i}'}}}}\n---\n"
        ));
    }
    let e = refused(&y);
    assert!(
        e.contains("selector comparisons") && e.contains("1000000"),
        "{e}"
    );
}

/// Istio evaluates CUSTOM, then DENY, then ALLOW (the AuthorizationPolicy reference,
/// "Authorization policy precedence"; `builder.go` builds one filter per action). Only ALLOW
/// policies make a workload default-deny: a CUSTOM policy delegates matching requests to its
/// provider and lets the rest through, a DENY policy denies only what it matches, AUDIT never
/// decides. Each enforced policy is listed under its action on every workload it selects.
#[test]
fn istio_custom_deny_allow_and_audit_are_kept_apart_per_workload() {
    let y = format!(
        "{}---\n{}---\n{AP}metadata: {{name: ext, namespace: a}}\nspec:\n  action: CUSTOM\n  provider: {{name: opa}}\n  rules:\n  - to:\n    - operation: {{paths: [/admin]}}\n---\n{AP}metadata: {{name: no-debug, namespace: a}}\nspec:\n  selector: {{matchLabels: {{app: x}}}}\n  action: DENY\n  rules:\n  - to:\n    - operation: {{paths: [/debug]}}\n---\n{AP}metadata: {{name: audit-all, namespace: a}}\nspec:\n  action: AUDIT\n  rules: [{{}}]\n---\n{AP}metadata: {{name: from-b, namespace: a}}\nspec:\n  selector: {{matchLabels: {{app: y}}}}\n  rules:\n  - from:\n    - source: {{namespaces: [b]}}\n",
        deployment("a", "x", "app: x"),
        deployment("a", "y", "app: y"),
    );
    let f = parse(&y);
    let x = &workload(&f, "a", "x").authorization;
    assert_eq!(x.custom_policies, vec!["a/ext"]);
    assert_eq!(x.deny_policies, vec!["a/no-debug"]);
    assert_eq!(x.audit_policies, vec!["a/audit-all"]);
    assert!(x.allow_policies.is_empty());
    assert!(
        !x.default_deny && !x.denies_all,
        "CUSTOM, a DENY with rules and AUDIT do not deny the rest: {x:?}"
    );
    let y_ = &workload(&f, "a", "y").authorization;
    assert_eq!(y_.custom_policies, vec!["a/ext"]);
    assert!(y_.deny_policies.is_empty());
    assert_eq!(y_.allow_policies, vec!["a/from-b"]);
    assert!(y_.default_deny && !y_.allows_nothing && !y_.denies_all);
}
