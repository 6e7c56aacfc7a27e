//! Mesh policy: multi-document Kubernetes YAML holding Istio (`PeerAuthentication`,
//! `AuthorizationPolicy`, `DestinationRule`, `VirtualService`) and Linkerd (`Server`,
//! `ServerAuthorization`, `AuthorizationPolicy`, `MeshTLSAuthentication`,
//! `NetworkAuthentication`, `HTTPRoute`) objects, and the workloads (`Deployment`, `Pod` …)
//! they select. The facts are what the mesh itself would put in effect: the effective mTLS mode
//! and authorization verdict per namespace and workload, the Linkerd clients each server port
//! admits, route weights that do not sum to 100, and every object seen.
//!
//! Each rule follows the upstream project's own code, cited where it is implemented and listed
//! in docs/IMPORTERS.md: Istio's `pilot/pkg/security/authn/policy_applier.go`
//! (`ComposePeerAuthentication`), `pilot/pkg/model/authorization.go`,
//! `pilot/pkg/model/policyattachment.go`, `pilot/pkg/security/authz/builder/builder.go` and
//! `pkg/config/validation/validation.go`; Linkerd's `policy-controller/k8s/index` and
//! `policy-controller/runtime/src/admission.rs`; `kubectl apply` for object identity and
//! namespaces.

mod istio;
mod k8s;
mod linkerd;
mod resolve;
mod schema;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{IngestError, check_size};
use schema::Problem;

/// Largest accepted input.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;
/// Deepest accepted nesting of YAML collections.
pub const MAX_DEPTH: usize = 64;
/// Most YAML nodes accepted in the whole file, counting every alias expansion, so an alias bomb
/// stops here instead of exhausting memory.
pub const MAX_NODES: usize = 1_000_000;
/// Most documents accepted.
pub const MAX_DOCUMENTS: usize = 10_000;
/// Most selector comparisons (policy or server against workload) spent resolving which
/// policies apply to which workloads; a file needing more is refused rather than left to run
/// quadratically.
pub const MAX_SELECTOR_CHECKS: usize = 1_000_000;
/// Most (workload, policy) pairs recorded in the facts.
pub const MAX_POLICY_PAIRS: usize = 250_000;
/// Istio's default root namespace: a PeerAuthentication or AuthorizationPolicy there without a
/// selector applies mesh-wide.
pub const ROOT_NAMESPACE: &str = "istio-system";
/// The namespace `kubectl apply` puts a namespaced object without `metadata.namespace` in when
/// no `--namespace` is given (the default context's namespace).
pub const DEFAULT_NAMESPACE: &str = "default";

/// An mTLS mode as written in a PeerAuthentication. Effective modes are never `Unset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MtlsMode {
    Unset,
    Disable,
    Permissive,
    Strict,
}

impl fmt::Display for MtlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MtlsMode::Unset => "UNSET",
            MtlsMode::Disable => "DISABLE",
            MtlsMode::Permissive => "PERMISSIVE",
            MtlsMode::Strict => "STRICT",
        })
    }
}

/// How the mesh importer reads a file: the options `evl ingest mesh` records in the entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeshOptions {
    /// As `kubectl apply --namespace`: namespaced objects without `metadata.namespace` are put
    /// here, and an object naming another namespace is refused.
    pub namespace: Option<String>,
    /// Record objects the upstream project would refuse as not in effect (with a warning)
    /// instead of refusing the file.
    pub record_invalid: bool,
    /// Extra (namespace, workload) pairs whose effective mode should be resolved.
    pub workloads: Vec<(String, String)>,
}

/// An object as the file names it; `document` and `line` locate it (1-based).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    /// `None` for cluster-scoped kinds, and for kinds evl does not know that name none.
    pub namespace: Option<String>,
    pub name: String,
    pub document: usize,
    pub line: usize,
}

impl ObjectRef {
    /// `Kind namespace/name`, or `Kind name` when cluster-scoped.
    pub fn id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// An object of a kind this importer does not interpret, kept whole as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawObject {
    pub object: ObjectRef,
    pub raw: Value,
}

/// An object a later one of the same identity replaced, as `kubectl apply` of the file would.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplacedObject {
    pub object: ObjectRef,
    /// The object in effect instead.
    pub replaced_by: ObjectRef,
}

/// An object the upstream project would refuse, recorded (with `record_invalid`) instead of
/// refusing the file. It takes part in no other fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotInEffect {
    pub object: ObjectRef,
    /// The offending field, e.g. `spec.rules[0].from`.
    pub field: String,
    pub reason: String,
}

/// A PeerAuthentication as written, and what it selects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerAuthFacts {
    pub namespace: String,
    pub name: String,
    /// "mesh", "namespace", "workload", or "ignored" (a selector in the root namespace, which
    /// Istio never applies).
    pub scope: String,
    pub selector: BTreeMap<String, String>,
    /// The workloads (`namespace/name`) of the facts it selects.
    pub workloads: Vec<String>,
    pub mode: MtlsMode,
    pub port_modes: BTreeMap<u32, MtlsMode>,
    pub creation_timestamp: Option<String>,
}

/// An Istio AuthorizationPolicy, summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthzPolicyFacts {
    pub namespace: String,
    pub name: String,
    /// ALLOW, DENY, AUDIT or CUSTOM.
    pub action: String,
    /// "mesh" (root namespace, no selector), "namespace", "workload" (a selector; from the root
    /// namespace it selects in every namespace) or "target-ref" (attached to a Gateway,
    /// Service or ServiceEntry: never applied to sidecar workloads).
    pub scope: String,
    pub selector: BTreeMap<String, String>,
    /// `Kind/name` of targetRef / targetRefs.
    pub target_refs: Vec<String>,
    /// The workloads (`namespace/name`) of the facts it applies to.
    pub workloads: Vec<String>,
    pub rule_count: usize,
    /// An ALLOW policy without rules matches nothing: it only switches on default deny.
    pub allow_nothing: bool,
    /// An ALLOW policy with an empty rule (`rules: [{}]`) allows every request.
    pub allow_all: bool,
    /// A DENY policy with an empty rule denies every request it applies to.
    pub deny_all: bool,
    /// `istio.io/dry-run: "true"`: evaluated in shadow mode only, never enforced.
    pub dry_run: bool,
    /// The CUSTOM action's extension provider.
    pub provider: Option<String>,
}

/// Authorization posture of one namespace (Istio and Linkerd).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthzPosture {
    /// An enforced ALLOW policy applies to every workload of the namespace (selector-less, here
    /// or in the root namespace), so a request that matches no ALLOW policy is denied.
    pub default_deny: bool,
    /// Those ALLOW policies, as `namespace/name`, sorted.
    pub default_deny_policies: Vec<String>,
    /// Of those, the ones without rules (they allow nothing).
    pub allow_nothing_policies: Vec<String>,
    /// Namespace-wide enforced DENY policies with an empty rule (they deny everything).
    pub deny_all_policies: Vec<String>,
    pub allow_policies: usize,
    pub deny_policies: usize,
    pub audit_policies: usize,
    pub custom_policies: usize,
    pub dry_run_policies: usize,
    pub linkerd_servers: usize,
    pub linkerd_authorizations: usize,
}

/// Facts per namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamespaceFacts {
    /// Effective namespace-wide mTLS mode.
    pub mtls: MtlsMode,
    /// Where it comes from: "namespace", "mesh" or "default".
    pub mtls_source: String,
    /// The PeerAuthentication deciding it, as `namespace/name`.
    pub mtls_policy: Option<String>,
    pub authorization: AuthzPosture,
    /// The Namespace's `config.linkerd.io/default-inbound-policy` annotation, if the input has
    /// the Namespace object and it sets one.
    pub linkerd_default_policy: Option<String>,
}

/// The Istio authorization verdict for requests to one workload, evaluated CUSTOM → DENY →
/// ALLOW as Istio's RBAC filters are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadAuthz {
    /// At least one enforced ALLOW policy applies, so a request matching none is denied.
    pub default_deny: bool,
    /// Every applying ALLOW policy has no rules: every request is denied.
    pub allows_nothing: bool,
    /// An applying DENY policy has an empty rule: every request is denied.
    pub denies_all: bool,
    /// Enforced policies that apply, by action, as `namespace/name` sorted.
    pub custom_policies: Vec<String>,
    pub deny_policies: Vec<String>,
    pub allow_policies: Vec<String>,
    pub audit_policies: Vec<String>,
    /// Dry-run policies that would apply (shadow only, not enforced).
    pub dry_run_policies: Vec<String>,
}

/// Which clients a Linkerd server port admits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkerdPortFacts {
    /// The Server in effect for the port.
    pub server: String,
    /// "nothing", "mesh-identities" (mTLS with an authorized identity), "tls-clients" (TLS,
    /// identity not checked) or "any-client" (no authentication).
    pub admits: String,
}

/// Effective policy of one workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadFacts {
    pub namespace: String,
    pub workload: String,
    /// Where the workload comes from: its kind (`Deployment`, `Pod` …) when the object is in
    /// the input, "selector" when only a policy selector names it, "option" when the caller
    /// named it.
    pub source: String,
    /// The pod labels policies are matched against (for "selector" and "option" workloads only
    /// the naming label is known).
    pub labels: BTreeMap<String, String>,
    pub service_account: Option<String>,
    pub mtls: MtlsMode,
    /// "workload", "namespace", "mesh" or "default".
    pub mtls_source: String,
    pub mtls_policy: Option<String>,
    /// Effective mode per port where a port-level setting exists.
    pub port_mtls: BTreeMap<u32, MtlsMode>,
    pub authorization: WorkloadAuthz,
    /// Linkerd: per port (number, or name when the input does not resolve it), the Server in
    /// effect and the clients it admits.
    pub linkerd_ports: BTreeMap<String, LinkerdPortFacts>,
    /// Linkerd: the default inbound policy for ports no Server selects, when the pod template
    /// or the Namespace object sets `config.linkerd.io/default-inbound-policy`.
    pub linkerd_default_policy: Option<String>,
}

/// TLS settings of a DestinationRule's traffic policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationRuleFacts {
    pub namespace: String,
    pub name: String,
    pub host: String,
    /// trafficPolicy.tls.mode (DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL), if set.
    pub tls_mode: Option<String>,
    /// portLevelSettings[].tls.mode by port number.
    pub port_tls_modes: BTreeMap<u32, String>,
    /// subsets[].trafficPolicy.tls.mode by subset name.
    pub subset_tls_modes: BTreeMap<String, String>,
}

/// One weighted destination of a route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteDestination {
    pub host: String,
    pub subset: Option<String>,
    pub weight: Option<i64>,
}

/// One VirtualService route (http, tcp or tls) and its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteFacts {
    pub namespace: String,
    pub virtual_service: String,
    /// e.g. `http[0]` or `http[1] (canary)`.
    pub route: String,
    pub destinations: Vec<RouteDestination>,
    pub weight_sum: i64,
}

/// A route whose weights must but do not sum to 100.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvalidWeights {
    pub namespace: String,
    pub virtual_service: String,
    pub route: String,
    pub weights: Vec<i64>,
    pub sum: i64,
}

/// A Linkerd Server and what it selects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkerdServer {
    pub namespace: String,
    pub name: String,
    /// "pod" (`podSelector`) or "external-workload" (`externalWorkloadSelector`).
    pub selects: String,
    /// The selector: `key=value` for matchLabels, `key Op [values]` for matchExpressions.
    pub selector: Vec<String>,
    /// Port number or name.
    pub port: String,
    pub proxy_protocol: Option<String>,
    /// `accessPolicy` as written; absent means `deny` (the CRD's default).
    pub access_policy: Option<String>,
    /// The workloads (`namespace/name`) of the facts whose pods it selects.
    pub workloads: Vec<String>,
    /// The authorizations in effect for it (server-wide and on its routes), `Kind/name`.
    pub authorizations: Vec<String>,
    /// "nothing", "mesh-identities", "tls-clients" or "any-client".
    pub admits: String,
    pub creation_timestamp: Option<String>,
}

/// A Linkerd ServerAuthorization or AuthorizationPolicy, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkerdAuthorization {
    pub namespace: String,
    pub name: String,
    pub kind: String,
    /// `Kind/name` of the target, or `selector` for a ServerAuthorization selecting servers.
    pub target: String,
    /// Whether Linkerd applies it: false when a required authentication is not in the input
    /// (the policy controller ignores such a policy until it exists).
    pub in_effect: bool,
    pub not_in_effect_reason: Option<String>,
    /// "unauthenticated", "tls-unauthenticated" or "tls-authenticated".
    pub authentication: String,
    /// Clients must present an authorized mesh TLS identity.
    pub mesh_tls: bool,
    /// Clients are admitted without any identity.
    pub unauthenticated: bool,
    /// Authorized identities (exact, `*.suffix` or `*`), including those of service accounts.
    pub identities: Vec<String>,
    /// Service accounts, as `namespace/name`.
    pub service_accounts: Vec<String>,
    /// "all" (0.0.0.0/0 and ::/0), "cluster" (the cluster's networks) or "listed".
    pub networks_scope: String,
    /// The listed networks: `cidr` or `cidr except a, b`.
    pub networks: Vec<String>,
    /// `Kind namespace/name` of requiredAuthenticationRefs.
    pub required_authentications: Vec<String>,
}

/// A Linkerd MeshTLSAuthentication or NetworkAuthentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkerdAuthentication {
    pub namespace: String,
    pub name: String,
    pub kind: String,
    /// MeshTLSAuthentication: the identities it matches, identityRefs resolved.
    pub identities: Vec<String>,
    /// NetworkAuthentication: `cidr` or `cidr except a, b`.
    pub networks: Vec<String>,
}

/// A Linkerd / Gateway API HTTPRoute or GRPCRoute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkerdRoute {
    pub namespace: String,
    pub name: String,
    pub kind: String,
    /// `Kind/name` of parentRefs.
    pub parents: Vec<String>,
    pub rules: usize,
}

/// Everything read from a mesh policy file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshFacts {
    pub root_namespace: String,
    /// Where namespaced objects without `metadata.namespace` were put (`--namespace`, else
    /// `default`).
    pub default_namespace: String,
    /// Effective mesh-wide mode (PERMISSIVE when no mesh-wide policy sets one).
    pub mesh_mtls: MtlsMode,
    pub mesh_mtls_policy: Option<String>,
    pub namespaces: BTreeMap<String, NamespaceFacts>,
    /// Sorted by (namespace, workload).
    pub workloads: Vec<WorkloadFacts>,
    pub peer_authentications: Vec<PeerAuthFacts>,
    pub authorization_policies: Vec<AuthzPolicyFacts>,
    pub destination_rules: Vec<DestinationRuleFacts>,
    pub routes: Vec<RouteFacts>,
    pub invalid_weights: Vec<InvalidWeights>,
    pub linkerd_servers: Vec<LinkerdServer>,
    pub linkerd_authorizations: Vec<LinkerdAuthorization>,
    pub linkerd_authentications: Vec<LinkerdAuthentication>,
    pub linkerd_routes: Vec<LinkerdRoute>,
    /// Every object in effect, in file order.
    pub objects: Vec<ObjectRef>,
    /// Objects a later one with the same identity replaced.
    pub replaced_objects: Vec<ReplacedObject>,
    /// Objects the upstream project would refuse (only with `record_invalid`).
    pub not_in_effect: Vec<NotInEffect>,
    pub unknown_objects: Vec<RawObject>,
    pub warnings: Vec<String>,
}

/// Parses mesh policy YAML with default options.
pub fn parse_yaml(source_name: &str, bytes: &[u8]) -> Result<MeshFacts, IngestError> {
    parse_yaml_with(source_name, bytes, &MeshOptions::default())
}

/// Like [`parse_yaml`], also resolving the effective mode of each extra (namespace, workload).
pub fn parse_yaml_for(
    source_name: &str,
    bytes: &[u8],
    workloads: &[(String, String)],
) -> Result<MeshFacts, IngestError> {
    parse_yaml_with(
        source_name,
        bytes,
        &MeshOptions {
            workloads: workloads.to_vec(),
            ..MeshOptions::default()
        },
    )
}

/// Parses mesh policy YAML as `kubectl apply` of the file would leave it in a cluster, and
/// resolves what Istio and Linkerd put in effect.
pub fn parse_yaml_with(
    source_name: &str,
    bytes: &[u8],
    options: &MeshOptions,
) -> Result<MeshFacts, IngestError> {
    check_size(source_name, bytes, MAX_INPUT_BYTES)?;
    // A UTF-8 byte-order mark is not content (it holds no newline, so lines stay as written).
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let docs = yaml::load_documents(source_name, text)?;
    let src = Source {
        name: source_name,
        lines: text.split(|&b| b == b'\n').collect(),
        record_invalid: options.record_invalid,
    };
    let mut b = Builder::new(&src, options);
    let mut objects = Vec::new();
    for (index, doc) in docs.into_iter().enumerate() {
        b.document(index + 1, doc, &mut objects)?;
    }
    if objects.is_empty() {
        return Err(IngestError::Empty {
            source_name: source_name.to_string(),
            reason: "the YAML holds no Kubernetes object".to_string(),
        });
    }
    for obj in b.in_effect(objects) {
        b.interpret(obj)?;
    }
    resolve::finish(b, &options.workloads)
}

/// Effective mTLS mode of `workload` in `namespace` as Istio resolves it: the workload's
/// PeerAuthentication, else the namespace's, else the mesh-wide one, else PERMISSIVE.
pub fn effective_mtls(facts: &MeshFacts, namespace: &str, workload: &str) -> MtlsMode {
    if let Some(w) = facts
        .workloads
        .iter()
        .find(|w| w.namespace == namespace && w.workload == workload)
    {
        return w.mtls;
    }
    facts
        .namespaces
        .get(namespace)
        .map(|n| n.mtls)
        .unwrap_or(facts.mesh_mtls)
}

// ---------------------------------------------------------------------------------------------
// Reading objects.

/// The input as lines, for pointing errors at the line of a field.
struct Source<'b> {
    pub name: &'b str,
    pub lines: Vec<&'b [u8]>,
    pub record_invalid: bool,
}

/// One object of the file with what locates it.
struct Obj {
    pub oref: ObjectRef,
    /// API group (`""` for the core group).
    pub group: String,
    pub value: Value,
    pub first_line: usize,
    pub last_line: usize,
}

impl Obj {
    fn ns(&self) -> &str {
        self.oref.namespace.as_deref().unwrap_or("")
    }
    fn name(&self) -> &str {
        &self.oref.name
    }
    fn spec(&self) -> &Value {
        self.value.get("spec").unwrap_or(&Value::Null)
    }
    fn annotation(&self, key: &str) -> Option<&str> {
        at(&self.value, &["metadata", "annotations", key]).and_then(Value::as_str)
    }
    fn creation_timestamp(&self) -> Option<String> {
        str_at(&self.value, &["metadata", "creationTimestamp"]).map(str::to_string)
    }
}

impl Source<'_> {
    /// A one-line error naming the file, the line of `field` in `obj` and the field.
    fn error(&self, obj: &Obj, field: &str, reason: impl Into<String>) -> IngestError {
        let line = yaml::field_line(&self.lines, obj.first_line, obj.last_line, field);
        IngestError::malformed(self.name, Some(line), Some(field), reason)
    }
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    at(v, path).and_then(Value::as_str)
}

fn at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

/// A map of labels; non-string values (which the schemas refuse where it matters) as JSON text.
fn labels(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A strings list; non-strings are skipped (the schemas refuse them where it matters).
fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// Everything interpreted so far, and the facts under construction.
struct Builder<'s> {
    pub src: &'s Source<'s>,
    pub options: &'s MeshOptions,
    pub facts: MeshFacts,
    pub namespace_names: BTreeSet<String>,
    pub workloads: Vec<k8s::WorkloadObject>,
    pub linkerd: linkerd::Linkerd,
}

impl<'s> Builder<'s> {
    fn new(src: &'s Source<'s>, options: &'s MeshOptions) -> Self {
        Builder {
            src,
            options,
            facts: MeshFacts {
                root_namespace: ROOT_NAMESPACE.to_string(),
                default_namespace: options
                    .namespace
                    .clone()
                    .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
                mesh_mtls: MtlsMode::Permissive,
                mesh_mtls_policy: None,
                namespaces: BTreeMap::new(),
                workloads: Vec::new(),
                peer_authentications: Vec::new(),
                authorization_policies: Vec::new(),
                destination_rules: Vec::new(),
                routes: Vec::new(),
                invalid_weights: Vec::new(),
                linkerd_servers: Vec::new(),
                linkerd_authorizations: Vec::new(),
                linkerd_authentications: Vec::new(),
                linkerd_routes: Vec::new(),
                objects: Vec::new(),
                replaced_objects: Vec::new(),
                not_in_effect: Vec::new(),
                unknown_objects: Vec::new(),
                warnings: Vec::new(),
            },
            namespace_names: BTreeSet::new(),
            workloads: Vec::new(),
            linkerd: linkerd::Linkerd::default(),
        }
    }

    /// A field the upstream project would refuse: an error, or with `record_invalid` a
    /// not-in-effect record and a warning (`Ok`: skip the object).
    fn invalid(&mut self, obj: &Obj, p: Problem) -> Result<(), IngestError> {
        let reason = format!("{}: {} {}", obj.oref.id(), p.field, p.reason);
        if !self.src.record_invalid {
            return Err(self.src.error(obj, &p.field, reason));
        }
        self.facts.warnings.push(format!(
            "{reason}; recorded as not in effect (document {}, line {})",
            obj.oref.document, obj.oref.line
        ));
        self.facts.not_in_effect.push(NotInEffect {
            object: obj.oref.clone(),
            field: p.field,
            reason: p.reason,
        });
        Ok(())
    }

    /// Reads one document: a Kubernetes object, or a `List` of them.
    fn document(
        &mut self,
        document: usize,
        doc: yaml::Document,
        out: &mut Vec<Obj>,
    ) -> Result<(), IngestError> {
        let (first, last) = (doc.first_line, doc.last_line);
        match doc.value {
            Value::Null => Ok(()),
            Value::Object(_) => self.object(document, (first, last), doc.value, true, out),
            _ => Err(IngestError::malformed(
                self.src.name,
                Some(first),
                Some("(document)"),
                format!("document {document} is not a mapping, so it is not a Kubernetes object"),
            )),
        }
    }

    fn object(
        &mut self,
        document: usize,
        (first, last): (usize, usize),
        obj: Value,
        allow_list: bool,
        out: &mut Vec<Obj>,
    ) -> Result<(), IngestError> {
        let err = |field: &str, reason: String| {
            let line = yaml::field_line(&self.src.lines, first, last, field);
            IngestError::malformed(self.src.name, Some(line), Some(field), reason)
        };
        let Some(api_version) = str_at(&obj, &["apiVersion"]).map(str::to_string) else {
            return Err(err(
                "apiVersion",
                format!("the object in document {document} has no apiVersion"),
            ));
        };
        let Some(kind) = str_at(&obj, &["kind"]).map(str::to_string) else {
            return Err(err(
                "kind",
                format!("the object in document {document} has no kind"),
            ));
        };
        if allow_list
            && kind.ends_with("List")
            && let Some(items) = obj.get("items").and_then(Value::as_array)
        {
            for item in items.clone() {
                if !item.is_object() {
                    let reason = format!(
                        "the {kind} in document {document} has an item that is not an object"
                    );
                    return Err(err("items", reason));
                }
                self.object(document, (first, last), item, false, out)?;
            }
            return Ok(());
        }
        let Some(name) = str_at(&obj, &["metadata", "name"]).map(str::to_string) else {
            return Err(err(
                "metadata.name",
                format!("the {kind} in document {document} has no metadata.name"),
            ));
        };
        let group = k8s::group_of(&api_version);
        let written = match at(&obj, &["metadata", "namespace"]) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(err(
                    "metadata.namespace",
                    format!("the {kind} {name} has the namespace {other}, which is not a string"),
                ));
            }
        };
        let namespace = match k8s::scope_of(&group, &kind) {
            k8s::Scope::Cluster => None,
            scope => match (written, &self.options.namespace) {
                // kubectl refuses an object whose namespace differs from --namespace.
                (Some(ns), Some(flag)) if &ns != flag => {
                    return Err(err(
                        "metadata.namespace",
                        format!(
                            "the {kind} {name} is in namespace {ns:?}, not in {flag:?} given with --namespace (kubectl apply -n {flag} refuses it too)"
                        ),
                    ));
                }
                (Some(ns), _) => Some(ns),
                (None, Some(flag)) => Some(flag.clone()),
                (None, None) if scope == k8s::Scope::Namespaced => {
                    self.facts.warnings.push(format!(
                        "{kind} {name} (document {document}) has no metadata.namespace; it is taken to be in namespace {DEFAULT_NAMESPACE}, as kubectl apply without --namespace would"
                    ));
                    Some(DEFAULT_NAMESPACE.to_string())
                }
                (None, None) => None,
            },
        };
        out.push(Obj {
            oref: ObjectRef {
                api_version,
                kind,
                namespace,
                name,
                document,
                line: first,
            },
            group,
            value: obj,
            first_line: first,
            last_line: last,
        });
        Ok(())
    }

    /// The objects `kubectl apply` of the file leaves in effect: for each (group, kind,
    /// namespace, name) the last one; earlier ones are recorded as replaced.
    fn in_effect(&mut self, objects: Vec<Obj>) -> Vec<Obj> {
        let key = |o: &Obj| {
            (
                o.group.clone(),
                o.oref.kind.clone(),
                o.oref.namespace.clone(),
                o.oref.name.clone(),
            )
        };
        let mut last: BTreeMap<_, usize> = BTreeMap::new();
        for (i, o) in objects.iter().enumerate() {
            last.insert(key(o), i);
        }
        let refs: Vec<ObjectRef> = objects.iter().map(|o| o.oref.clone()).collect();
        let mut kept = Vec::with_capacity(last.len());
        for (i, o) in objects.into_iter().enumerate() {
            let winner = last[&key(&o)];
            if winner == i {
                kept.push(o);
                continue;
            }
            let by = refs[winner].clone();
            self.facts.warnings.push(format!(
                "{} appears again in document {} (line {}); the later one is in effect, as kubectl apply of the file would leave it, and the one in document {} (line {}) is not",
                o.oref.id(),
                by.document,
                by.line,
                o.oref.document,
                o.oref.line
            ));
            self.facts.replaced_objects.push(ReplacedObject {
                object: o.oref,
                replaced_by: by,
            });
        }
        kept
    }

    /// Interprets one object in effect.
    fn interpret(&mut self, obj: Obj) -> Result<(), IngestError> {
        self.facts.objects.push(obj.oref.clone());
        if let Some(ns) = &obj.oref.namespace {
            self.namespace_names.insert(ns.clone());
        }
        let kind = obj.oref.kind.clone();
        match (obj.group.as_str(), kind.as_str()) {
            ("", "Namespace") => {
                self.namespace_names.insert(obj.name().to_string());
                if let Some(p) = obj.annotation(linkerd::DEFAULT_POLICY_ANNOTATION) {
                    self.linkerd
                        .namespace_default_policy
                        .insert(obj.name().to_string(), p.to_string());
                }
            }
            (g, k) if k8s::is_workload(g, k) => {
                if let Some(w) = k8s::workload(&obj) {
                    self.workloads.push(w);
                }
            }
            ("security.istio.io", "PeerAuthentication") => self.peer_authentication(&obj)?,
            ("security.istio.io", "AuthorizationPolicy") => self.istio_authz(&obj)?,
            ("networking.istio.io", "DestinationRule") => self.destination_rule(&obj)?,
            ("networking.istio.io", "VirtualService") => self.virtual_service(&obj)?,
            ("policy.linkerd.io", "Server") => self.linkerd_server(&obj)?,
            ("policy.linkerd.io", "ServerAuthorization") => {
                self.linkerd_server_authorization(&obj)?
            }
            ("policy.linkerd.io", "AuthorizationPolicy") => self.linkerd_policy(&obj)?,
            ("policy.linkerd.io", "MeshTLSAuthentication") => self.linkerd_mesh_tls(&obj)?,
            ("policy.linkerd.io", "NetworkAuthentication") => self.linkerd_network(&obj)?,
            ("policy.linkerd.io", "HTTPRoute")
            | ("gateway.networking.k8s.io", "HTTPRoute")
            | ("gateway.networking.k8s.io", "GRPCRoute") => self.linkerd_route(&obj),
            _ => {
                let scope_note = if obj.oref.namespace.is_none()
                    && k8s::scope_of(&obj.group, &kind) == k8s::Scope::Unknown
                {
                    "; evl does not know whether the kind is namespaced, so no namespace is assumed"
                } else {
                    ""
                };
                self.facts.warnings.push(format!(
                    "{} ({}, document {}, line {}) is not a kind this importer interprets; it is kept as raw evidence{scope_note}",
                    obj.oref.id(),
                    obj.oref.api_version,
                    obj.oref.document,
                    obj.oref.line
                ));
                self.facts.unknown_objects.push(RawObject {
                    object: obj.oref,
                    raw: obj.value,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_bomb_is_refused_quickly() {
        let mut y = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = (b'a' + i - 1) as char;
            let refs = vec![format!("*{prev}"); 10].join(", ");
            y.push_str(&format!(
                "{}: &{} [{refs}]\n",
                (b'a' + i) as char,
                (b'a' + i) as char
            ));
        }
        let e = parse_yaml("bomb.yaml", y.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bomb.yaml") && e.contains("hostile") && e.contains("alias"),
            "{e}"
        );
    }

    #[test]
    fn wide_alias_fan_out_hits_the_node_cap() {
        // Few aliases of one large anchor stay under the library's repetition limit but would
        // still build millions of nodes; the node budget stops it.
        let mut y = String::from("base: &b [");
        y.push_str(&"1,".repeat(20_000));
        y.push_str("1]\nuse: [");
        y.push_str(&"*b,".repeat(60));
        y.push_str("*b]\n");
        let e = parse_yaml("fan.yaml", y.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 1000000 nodes"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let y = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let e = parse_yaml("deep.yaml", y.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("deep.yaml") && e.contains("deeper than 64 levels"),
            "{e}"
        );
    }

    #[test]
    fn document_lines_follow_separators() {
        assert_eq!(
            yaml::document_lines(b"# c\n---\na: 1\n---\nb: 2\n"),
            vec![2, 4]
        );
        assert_eq!(yaml::document_lines(b"a: 1\n---\nb: 2\n"), vec![1, 2]);
    }

    #[test]
    fn field_lines_follow_the_path() {
        let text = b"apiVersion: v1\nkind: X\nmetadata:\n  name: a\nspec:\n  rules:\n  - from:\n    - source:\n        principals: []\n  mtls: {mode: X}\n";
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        assert_eq!(
            yaml::field_line(&lines, 1, 10, "spec.rules[0].from[0].source.principals"),
            9
        );
        assert_eq!(yaml::field_line(&lines, 1, 10, "spec.mtls.mode"), 10);
        assert_eq!(yaml::field_line(&lines, 1, 10, "spec.nothing.here"), 5);
    }
}
