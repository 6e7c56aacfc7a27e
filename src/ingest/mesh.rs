//! Mesh policy: multi-document Kubernetes YAML holding Istio (`PeerAuthentication`,
//! `AuthorizationPolicy`, `DestinationRule`, `VirtualService`) and Linkerd (`Server`,
//! `ServerAuthorization`, `AuthorizationPolicy`, `HTTPRoute`) objects. The facts are the effective
//! mTLS mode per namespace and workload, the authorization posture per namespace, route weights
//! that do not sum to 100, and every object seen; unknown kinds are kept raw with a warning.
//!
//! Semantics follow the Istio reference: PeerAuthentication
//! <https://istio.io/latest/docs/reference/config/security/peer_authentication/> and
//! AuthorizationPolicy <https://istio.io/latest/docs/reference/config/security/authorization-policy/>.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{IngestError, check_size};

/// Largest accepted input.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;
/// Deepest accepted nesting of YAML collections.
pub const MAX_DEPTH: usize = 64;
/// Most YAML nodes accepted in the whole file, counting every alias expansion, so an alias bomb
/// stops here instead of exhausting memory.
pub const MAX_NODES: usize = 1_000_000;
/// Most documents accepted.
pub const MAX_DOCUMENTS: usize = 10_000;
/// Istio's default root namespace: a PeerAuthentication or AuthorizationPolicy there without a
/// selector applies mesh-wide.
pub const ROOT_NAMESPACE: &str = "istio-system";

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

/// An object as the file names it; `document` and `line` locate it (1-based).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub document: usize,
    pub line: usize,
}

/// An object of a kind this importer does not interpret, kept whole as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawObject {
    pub object: ObjectRef,
    pub raw: Value,
}

/// A PeerAuthentication as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerAuthFacts {
    pub namespace: String,
    pub name: String,
    /// "mesh", "namespace" or "workload".
    pub scope: String,
    pub selector: BTreeMap<String, String>,
    /// The workload the selector names through `app` / `app.kubernetes.io/name`.
    pub workload: Option<String>,
    pub mode: MtlsMode,
    pub port_modes: BTreeMap<u32, MtlsMode>,
}

/// An Istio AuthorizationPolicy, summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthzPolicyFacts {
    pub namespace: String,
    pub name: String,
    /// ALLOW, DENY, AUDIT or CUSTOM.
    pub action: String,
    /// "mesh", "namespace" or "workload".
    pub scope: String,
    pub workload: Option<String>,
    pub rule_count: usize,
    /// An ALLOW policy without rules matches nothing, so it denies every request it applies to.
    pub allow_nothing: bool,
    /// A DENY policy with an empty rule (`rules: [{}]`) denies everything it applies to.
    pub deny_all: bool,
}

/// Authorization posture of one namespace (Istio and Linkerd).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthzPosture {
    /// An allow-nothing policy covers the whole namespace (its own, or mesh-wide from the root).
    pub default_deny: bool,
    /// The policies that make it so, as `namespace/name`.
    pub default_deny_policies: Vec<String>,
    pub allow_policies: usize,
    pub deny_policies: usize,
    pub audit_policies: usize,
    pub custom_policies: usize,
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
}

/// Effective mTLS of one workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadFacts {
    pub namespace: String,
    pub workload: String,
    pub mtls: MtlsMode,
    /// "workload", "namespace", "mesh" or "default".
    pub mtls_source: String,
    pub mtls_policy: Option<String>,
    /// Effective mode per port where a port-level setting exists.
    pub port_mtls: BTreeMap<u32, MtlsMode>,
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

/// A Linkerd Server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkerdServer {
    pub namespace: String,
    pub name: String,
    pub workload: Option<String>,
    /// Port number or name.
    pub port: String,
    pub proxy_protocol: Option<String>,
    pub access_policy: Option<String>,
}

/// A Linkerd ServerAuthorization or AuthorizationPolicy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkerdAuthorization {
    pub namespace: String,
    pub name: String,
    pub kind: String,
    /// `Kind/name` of the target, or `selector` for a ServerAuthorization selecting servers.
    pub target: String,
    /// Clients must present mesh TLS identities.
    pub mesh_tls: bool,
    pub unauthenticated: bool,
    pub identities: Vec<String>,
    pub service_accounts: Vec<String>,
    /// `Kind/name` of requiredAuthenticationRefs.
    pub required_authentications: Vec<String>,
}

/// A Linkerd / Gateway API HTTPRoute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkerdRoute {
    pub namespace: String,
    pub name: String,
    /// `Kind/name` of parentRefs.
    pub parents: Vec<String>,
    pub rules: usize,
}

/// Everything read from a mesh policy file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshFacts {
    pub root_namespace: String,
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
    pub linkerd_routes: Vec<LinkerdRoute>,
    /// Every object in file order.
    pub objects: Vec<ObjectRef>,
    pub unknown_objects: Vec<RawObject>,
    pub warnings: Vec<String>,
}

/// Parses mesh policy YAML and resolves effective modes for the workloads its selectors name.
pub fn parse_yaml(source_name: &str, bytes: &[u8]) -> Result<MeshFacts, IngestError> {
    parse_yaml_for(source_name, bytes, &[])
}

/// Like [`parse_yaml`], also resolving the effective mode of each extra (namespace, workload).
pub fn parse_yaml_for(
    source_name: &str,
    bytes: &[u8],
    workloads: &[(String, String)],
) -> Result<MeshFacts, IngestError> {
    check_size(source_name, bytes, MAX_INPUT_BYTES)?;
    let docs = load_documents(source_name, bytes)?;
    let mut b = Builder::new(source_name);
    for (index, (line, doc)) in docs.into_iter().enumerate() {
        b.document(index + 1, line, doc)?;
    }
    if b.facts.objects.is_empty() {
        return Err(IngestError::Empty {
            source_name: source_name.to_string(),
            reason: "the YAML holds no Kubernetes object".to_string(),
        });
    }
    Ok(b.finish(workloads))
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
// Bounded YAML loading.

/// Reads every document into JSON values, refusing deep nesting and node explosions.
fn load_documents(source_name: &str, bytes: &[u8]) -> Result<Vec<(usize, Value)>, IngestError> {
    if let Some(line) = flow_nesting_beyond(bytes, MAX_DEPTH) {
        return Err(IngestError::malformed(
            source_name,
            Some(line),
            None,
            format!("the nesting is deeper than {MAX_DEPTH} levels"),
        ));
    }
    let starts = document_lines(bytes);
    let mut budget = MAX_NODES;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_slice(bytes).enumerate() {
        if i >= MAX_DOCUMENTS {
            return Err(IngestError::too_large(
                source_name,
                None,
                "the number of YAML documents",
                MAX_DOCUMENTS,
                i + 1,
            ));
        }
        let line = starts.get(i).copied().unwrap_or(1);
        let seed = Node {
            left: &mut budget,
            depth: 0,
        };
        let value = seed
            .deserialize(doc)
            .map_err(|e| yaml_error(source_name, &e))?;
        out.push((line, value));
    }
    Ok(out)
}

/// The line where `[`/`{` flow collections first nest deeper than `max`, found in one linear
/// scan that skips quoted scalars and comments. The YAML parser reads a whole document's
/// events before the depth check in [`Node`] can run, so without this a file of a million `[`
/// costs seconds and hundreds of megabytes before it is refused.
fn flow_nesting_beyond(bytes: &[u8], max: usize) -> Option<usize> {
    let (mut depth, mut line) = (0usize, 1usize);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => line += 1,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'#' if i == 0 || bytes[i - 1].is_ascii_whitespace() => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    if bytes[i] == b'\n' {
                        line += 1;
                    }
                    // `\"` escapes inside double quotes; `''` inside single quotes closes
                    // and reopens, which this scan treats the same way.
                    if q == b'"' && bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn yaml_error(source_name: &str, e: &serde_yaml_ng::Error) -> IngestError {
    let line = e.location().map(|l| l.line());
    let msg = e.to_string();
    // Limits get a message of their own; the library's would start with a long node path.
    let hostile = if msg.contains("repetition limit") {
        Some(
            "aliases expand too far (alias expansion is capped at 100 times the document's events)"
                .to_string(),
        )
    } else if msg.contains("recursion limit") || msg.contains("deeper than") {
        Some(format!("the nesting is deeper than {MAX_DEPTH} levels"))
    } else if msg.contains("aliases count") {
        Some(format!(
            "the document expands to more than {MAX_NODES} nodes, counting alias expansions"
        ))
    } else {
        None
    };
    match hostile {
        Some(why) => IngestError::malformed(
            source_name,
            line,
            None,
            format!("the YAML is refused as hostile or too large: {why}"),
        ),
        None => IngestError::malformed(
            source_name,
            line,
            None,
            format!("the YAML does not parse ({msg})"),
        ),
    }
}

/// First line of each document: each line starting with `---`, and the first content line when
/// content precedes the first separator (an implicit first document).
fn document_lines(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let t = line.trim_ascii();
        let implicit_first =
            starts.is_empty() && !t.is_empty() && !t.starts_with(b"#") && !t.starts_with(b"%");
        if line.starts_with(b"---") || implicit_first {
            starts.push(i + 1);
        }
    }
    starts
}

/// A seed that builds a JSON value, spending one unit of `left` per node and refusing nesting
/// deeper than [`MAX_DEPTH`]. Keys become strings (YAML allows `8080:` as a key).
struct Node<'b> {
    left: &'b mut usize,
    depth: usize,
}

impl Node<'_> {
    fn spend<E: de::Error>(&mut self) -> Result<(), E> {
        if *self.left == 0 {
            return Err(E::custom(format_args!(
                "the YAML expands to more than {MAX_NODES} nodes (aliases count each time they are used)"
            )));
        }
        *self.left -= 1;
        Ok(())
    }

    fn child(&mut self) -> Node<'_> {
        Node {
            left: self.left,
            depth: self.depth + 1,
        }
    }

    fn enter<E: de::Error>(&mut self) -> Result<(), E> {
        self.spend()?;
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format_args!(
                "the YAML nesting is deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E: de::Error>(mut self, v: bool) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<Value, E> {
        self.spend()?;
        // JSON has no NaN or infinity; keep YAML's spelling as text so nothing is lost.
        Ok(serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(format!("{v}"))))
    }
    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v.to_string()))
    }
    fn visit_unit<E: de::Error>(mut self) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut v = Vec::new();
        while let Some(x) = seq.next_element_seed(self.child())? {
            v.push(x);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut m = serde_json::Map::new();
        while let Some(k) = map.next_key_seed(self.child())? {
            let key = match k {
                Value::String(s) => s,
                Value::Null => "null".to_string(),
                other => other.to_string(),
            };
            let v = map.next_value_seed(self.child())?;
            // Last-wins would silently pick one of two meanings; Kubernetes refuses these too.
            if m.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "the key {key:?} appears twice in one mapping"
                )));
            }
            m.insert(key, v);
        }
        Ok(Value::Object(m))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(mut self, data: A) -> Result<Value, A::Error> {
        // A tagged node (`!Tag value`): the tag is dropped, the value kept.
        use serde::de::VariantAccess;
        self.spend()?;
        let (_tag, variant): (Value, _) = data.variant_seed(self.child())?;
        variant.newtype_variant_seed(self.child())
    }
}

// ---------------------------------------------------------------------------------------------
// Interpreting objects.

struct Builder<'s> {
    source_name: &'s str,
    facts: MeshFacts,
    /// (namespace, name, creationTimestamp, document) of namespace-wide / mesh PeerAuthentications.
    pa_order: BTreeMap<String, String>,
    workload_names: BTreeSet<(String, String)>,
    namespace_names: BTreeSet<String>,
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    at(v, path).and_then(Value::as_str)
}

fn at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

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

fn app_of(labels: &BTreeMap<String, String>) -> Option<String> {
    labels
        .get("app")
        .or_else(|| labels.get("app.kubernetes.io/name"))
        .cloned()
}

impl<'s> Builder<'s> {
    fn new(source_name: &'s str) -> Self {
        Builder {
            source_name,
            facts: MeshFacts {
                root_namespace: ROOT_NAMESPACE.to_string(),
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
                linkerd_routes: Vec::new(),
                objects: Vec::new(),
                unknown_objects: Vec::new(),
                warnings: Vec::new(),
            },
            pa_order: BTreeMap::new(),
            workload_names: BTreeSet::new(),
            namespace_names: BTreeSet::new(),
        }
    }

    fn err(&self, line: usize, field: &str, reason: String) -> IngestError {
        IngestError::malformed(self.source_name, Some(line), Some(field), reason)
    }

    fn document(&mut self, document: usize, line: usize, doc: Value) -> Result<(), IngestError> {
        match &doc {
            Value::Null => Ok(()),
            Value::Object(_) => self.object(document, line, doc, true),
            _ => Err(self.err(
                line,
                "(document)",
                format!("document {document} is not a mapping, so it is not a Kubernetes object"),
            )),
        }
    }

    fn object(
        &mut self,
        document: usize,
        line: usize,
        obj: Value,
        allow_list: bool,
    ) -> Result<(), IngestError> {
        let Some(api_version) = str_at(&obj, &["apiVersion"]).map(str::to_string) else {
            return Err(self.err(
                line,
                "apiVersion",
                format!("the object in document {document} has no apiVersion"),
            ));
        };
        let Some(kind) = str_at(&obj, &["kind"]).map(str::to_string) else {
            return Err(self.err(
                line,
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
                    return Err(self.err(line, "items", reason));
                }
                self.object(document, line, item, false)?;
            }
            return Ok(());
        }
        let Some(name) = str_at(&obj, &["metadata", "name"]).map(str::to_string) else {
            return Err(self.err(
                line,
                "metadata.name",
                format!("the {kind} in document {document} has no metadata.name"),
            ));
        };
        let group = api_version.split('/').next().unwrap_or("").to_string();
        let cluster_scoped = kind == "Namespace" && group == "v1";
        let namespace = if cluster_scoped {
            None
        } else {
            Some(match str_at(&obj, &["metadata", "namespace"]) {
                Some(ns) => ns.to_string(),
                None => {
                    self.facts.warnings.push(format!("{kind} {name} (document {document}) has no metadata.namespace; it is taken to be in namespace default"));
                    "default".to_string()
                }
            })
        };
        let oref = ObjectRef {
            api_version: api_version.clone(),
            kind: kind.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
            document,
            line,
        };
        self.facts.objects.push(oref.clone());
        let ns = namespace.clone().unwrap_or_default();
        if let Some(ns) = &namespace {
            self.namespace_names.insert(ns.clone());
        }
        let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
        let ctx = Ctx {
            line,
            kind: &kind,
            ns: &ns,
            name: &name,
        };
        match (group.as_str(), kind.as_str()) {
            ("v1", "Namespace") => {
                self.namespace_names.insert(name.clone());
            }
            ("security.istio.io", "PeerAuthentication") => {
                self.peer_authentication(&ctx, &obj, &spec)?
            }
            ("security.istio.io", "AuthorizationPolicy") => self.istio_authz(&ctx, &spec)?,
            ("networking.istio.io", "DestinationRule") => self.destination_rule(&ctx, &spec)?,
            ("networking.istio.io", "VirtualService") => self.virtual_service(&ctx, &spec)?,
            ("policy.linkerd.io", "Server") => self.linkerd_server(&ctx, &spec),
            ("policy.linkerd.io", "ServerAuthorization")
            | ("policy.linkerd.io", "AuthorizationPolicy") => self.linkerd_authz(&ctx, &spec),
            ("policy.linkerd.io", "HTTPRoute") | ("gateway.networking.k8s.io", "HTTPRoute") => {
                self.linkerd_route(&ctx, &spec)
            }
            ("policy.linkerd.io", "MeshTLSAuthentication")
            | ("policy.linkerd.io", "NetworkAuthentication") => {}
            _ => {
                self.facts.warnings.push(format!(
                    "{kind} {} ({api_version}, document {document}, line {line}) is not a kind this importer interprets; it is kept as raw evidence",
                    namespace.as_ref().map(|n| format!("{n}/{name}")).unwrap_or(name.clone())
                ));
                self.facts.unknown_objects.push(RawObject {
                    object: oref,
                    raw: obj,
                });
            }
        }
        Ok(())
    }

    fn mode(&self, ctx: &Ctx, field: &str, v: Option<&Value>) -> Result<MtlsMode, IngestError> {
        match v {
            None | Some(Value::Null) => Ok(MtlsMode::Unset),
            Some(Value::String(s)) => match s.as_str() {
                "UNSET" => Ok(MtlsMode::Unset),
                "DISABLE" => Ok(MtlsMode::Disable),
                "PERMISSIVE" => Ok(MtlsMode::Permissive),
                "STRICT" => Ok(MtlsMode::Strict),
                other => Err(self.err(ctx.line, field, format!("{} has the unknown mTLS mode {other:?} (expected STRICT, PERMISSIVE, DISABLE or UNSET)", ctx.id()))),
            },
            Some(other) => Err(self.err(ctx.line, field, format!("{} has the mTLS mode {other}, which is not a string", ctx.id()))),
        }
    }

    fn selector_workload(&mut self, ctx: &Ctx, sel: &BTreeMap<String, String>) -> Option<String> {
        let w = app_of(sel);
        match &w {
            Some(w) => {
                self.workload_names.insert((ctx.ns.to_string(), w.clone()));
            }
            None if !sel.is_empty() => self.facts.warnings.push(format!(
                "{} selects workloads by {sel:?} without an app or app.kubernetes.io/name label, so the workload it applies to cannot be named",
                ctx.id()
            )),
            None => {}
        }
        w
    }

    fn peer_authentication(
        &mut self,
        ctx: &Ctx,
        obj: &Value,
        spec: &Value,
    ) -> Result<(), IngestError> {
        let selector = labels(at(spec, &["selector", "matchLabels"]));
        let mode = self.mode(ctx, "spec.mtls.mode", at(spec, &["mtls", "mode"]))?;
        let mut port_modes = BTreeMap::new();
        if let Some(ports) = spec.get("portLevelMtls") {
            let Some(ports) = ports.as_object() else {
                return Err(self.err(
                    ctx.line,
                    "spec.portLevelMtls",
                    format!(
                        "{} has a portLevelMtls that is not a map of port to mode",
                        ctx.id()
                    ),
                ));
            };
            for (port, setting) in ports {
                let field = format!("spec.portLevelMtls.{port}.mode");
                let p: u32 = port
                    .parse()
                    .ok()
                    .filter(|p| (1..=65535).contains(p))
                    .ok_or_else(|| {
                        self.err(
                            ctx.line,
                            &field,
                            format!(
                                "{} has the port {port:?}, which is not a port number",
                                ctx.id()
                            ),
                        )
                    })?;
                port_modes.insert(p, self.mode(ctx, &field, setting.get("mode"))?);
            }
        }
        let scope = if !selector.is_empty() {
            "workload"
        } else if ctx.ns == ROOT_NAMESPACE {
            "mesh"
        } else {
            "namespace"
        };
        if scope != "workload" && !port_modes.is_empty() {
            self.facts.warnings.push(format!("{} sets portLevelMtls without a workload selector; Istio ignores port-level settings there", ctx.id()));
            port_modes.clear();
        }
        let workload = if scope == "workload" {
            self.selector_workload(ctx, &selector)
        } else {
            None
        };
        let created = str_at(obj, &["metadata", "creationTimestamp"])
            .unwrap_or("~")
            .to_string();
        self.pa_order
            .insert(format!("{}/{}", ctx.ns, ctx.name), created);
        self.facts.peer_authentications.push(PeerAuthFacts {
            namespace: ctx.ns.to_string(),
            name: ctx.name.to_string(),
            scope: scope.to_string(),
            selector,
            workload,
            mode,
            port_modes,
        });
        Ok(())
    }

    fn istio_authz(&mut self, ctx: &Ctx, spec: &Value) -> Result<(), IngestError> {
        let action = match spec.get("action") {
            None | Some(Value::Null) => "ALLOW".to_string(),
            Some(Value::String(a))
                if ["ALLOW", "DENY", "AUDIT", "CUSTOM"].contains(&a.as_str()) =>
            {
                a.clone()
            }
            Some(other) => {
                return Err(self.err(
                    ctx.line,
                    "spec.action",
                    format!(
                        "{} has the action {other}, expected ALLOW, DENY, AUDIT or CUSTOM",
                        ctx.id()
                    ),
                ));
            }
        };
        let rules = match spec.get("rules") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(r)) => r.clone(),
            Some(_) => {
                return Err(self.err(
                    ctx.line,
                    "spec.rules",
                    format!("{} has rules that are not a list", ctx.id()),
                ));
            }
        };
        let selector = labels(at(spec, &["selector", "matchLabels"]));
        let targeted = spec.get("targetRef").is_some() || spec.get("targetRefs").is_some();
        let scope = if !selector.is_empty() || targeted {
            "workload"
        } else if ctx.ns == ROOT_NAMESPACE {
            "mesh"
        } else {
            "namespace"
        };
        let workload = if !selector.is_empty() {
            self.selector_workload(ctx, &selector)
        } else {
            None
        };
        let empty_rule = |r: &Value| r.as_object().is_none_or(|m| m.is_empty());
        self.facts.authorization_policies.push(AuthzPolicyFacts {
            namespace: ctx.ns.to_string(),
            name: ctx.name.to_string(),
            allow_nothing: action == "ALLOW" && rules.is_empty(),
            deny_all: action == "DENY" && rules.iter().any(empty_rule),
            action,
            scope: scope.to_string(),
            workload,
            rule_count: rules.len(),
        });
        Ok(())
    }

    fn destination_rule(&mut self, ctx: &Ctx, spec: &Value) -> Result<(), IngestError> {
        const MODES: [&str; 4] = ["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"];
        let tls = |v: Option<&Value>, field: &str| -> Result<Option<String>, IngestError> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(m)) if MODES.contains(&m.as_str()) => Ok(Some(m.clone())),
                Some(other) => Err(self.err(ctx.line, field, format!("{} has the TLS mode {other}, expected DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL", ctx.id()))),
            }
        };
        let host = str_at(spec, &["host"])
            .ok_or_else(|| self.err(ctx.line, "spec.host", format!("{} has no host", ctx.id())))?
            .to_string();
        let tls_mode = tls(
            at(spec, &["trafficPolicy", "tls", "mode"]),
            "spec.trafficPolicy.tls.mode",
        )?;
        let mut port_tls_modes = BTreeMap::new();
        for (i, s) in at(spec, &["trafficPolicy", "portLevelSettings"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let field = format!("spec.trafficPolicy.portLevelSettings[{i}]");
            if let Some(m) = tls(at(s, &["tls", "mode"]), &format!("{field}.tls.mode"))? {
                let port = at(s, &["port", "number"])
                    .and_then(Value::as_u64)
                    .and_then(|p| u32::try_from(p).ok())
                    .ok_or_else(|| {
                        self.err(
                            ctx.line,
                            &format!("{field}.port.number"),
                            format!(
                                "{} has a port-level TLS setting without a port number",
                                ctx.id()
                            ),
                        )
                    })?;
                port_tls_modes.insert(port, m);
            }
        }
        let mut subset_tls_modes = BTreeMap::new();
        for (i, s) in spec
            .get("subsets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(m) = tls(
                at(s, &["trafficPolicy", "tls", "mode"]),
                &format!("spec.subsets[{i}].trafficPolicy.tls.mode"),
            )? {
                let name = str_at(s, &["name"]).unwrap_or("").to_string();
                subset_tls_modes.insert(name, m);
            }
        }
        self.facts.destination_rules.push(DestinationRuleFacts {
            namespace: ctx.ns.to_string(),
            name: ctx.name.to_string(),
            host,
            tls_mode,
            port_tls_modes,
            subset_tls_modes,
        });
        Ok(())
    }

    fn virtual_service(&mut self, ctx: &Ctx, spec: &Value) -> Result<(), IngestError> {
        for proto in ["http", "tcp", "tls"] {
            for (i, route) in spec
                .get(proto)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let label = match str_at(route, &["name"]) {
                    Some(n) => format!("{proto}[{i}] ({n})"),
                    None => format!("{proto}[{i}]"),
                };
                let mut destinations = Vec::new();
                for (j, d) in route
                    .get("route")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let field = format!("spec.{proto}[{i}].route[{j}]");
                    let host = str_at(d, &["destination", "host"])
                        .ok_or_else(|| {
                            self.err(
                                ctx.line,
                                &format!("{field}.destination.host"),
                                format!(
                                    "{} route {label} has a destination without a host",
                                    ctx.id()
                                ),
                            )
                        })?
                        .to_string();
                    let weight = match d.get("weight") {
                        None | Some(Value::Null) => None,
                        Some(w) => Some(w.as_i64().ok_or_else(|| {
                            self.err(
                                ctx.line,
                                &format!("{field}.weight"),
                                format!(
                                    "{} route {label} has the weight {w}, which is not an integer",
                                    ctx.id()
                                ),
                            )
                        })?),
                    };
                    destinations.push(RouteDestination {
                        host,
                        subset: str_at(d, &["destination", "subset"]).map(str::to_string),
                        weight,
                    });
                }
                if destinations.is_empty() {
                    continue;
                }
                let weight_sum: i64 = destinations
                    .iter()
                    .map(|d| d.weight.unwrap_or(0))
                    .fold(0i64, |a, w| a.saturating_add(w));
                let must_sum =
                    destinations.len() > 1 || destinations.iter().any(|d| d.weight.is_some());
                let negative = destinations.iter().any(|d| d.weight.is_some_and(|w| w < 0));
                if must_sum && (weight_sum != 100 || negative) {
                    self.facts.invalid_weights.push(InvalidWeights {
                        namespace: ctx.ns.to_string(),
                        virtual_service: ctx.name.to_string(),
                        route: label.clone(),
                        weights: destinations.iter().map(|d| d.weight.unwrap_or(0)).collect(),
                        sum: weight_sum,
                    });
                }
                self.facts.routes.push(RouteFacts {
                    namespace: ctx.ns.to_string(),
                    virtual_service: ctx.name.to_string(),
                    route: label,
                    destinations,
                    weight_sum,
                });
            }
        }
        Ok(())
    }

    fn linkerd_server(&mut self, ctx: &Ctx, spec: &Value) {
        let sel = labels(at(spec, &["podSelector", "matchLabels"]));
        let workload = self.selector_workload(ctx, &sel);
        let port = match spec.get("port") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        self.facts.linkerd_servers.push(LinkerdServer {
            namespace: ctx.ns.to_string(),
            name: ctx.name.to_string(),
            workload,
            port,
            proxy_protocol: str_at(spec, &["proxyProtocol"]).map(str::to_string),
            access_policy: str_at(spec, &["accessPolicy"]).map(str::to_string),
        });
    }

    fn linkerd_authz(&mut self, ctx: &Ctx, spec: &Value) {
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        };
        let kind_name = |v: &Value| {
            format!(
                "{}/{}",
                str_at(v, &["kind"]).unwrap_or("?"),
                str_at(v, &["name"]).unwrap_or("?")
            )
        };
        let f = if ctx.kind == "ServerAuthorization" {
            let target = match str_at(spec, &["server", "name"]) {
                Some(n) => format!("Server/{n}"),
                None => "selector".to_string(),
            };
            let sas = at(spec, &["client", "meshTLS", "serviceAccounts"])
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|sa| {
                    let n = str_at(sa, &["name"]).unwrap_or("?");
                    match str_at(sa, &["namespace"]) {
                        Some(ns) => format!("{ns}/{n}"),
                        None => n.to_string(),
                    }
                })
                .collect();
            LinkerdAuthorization {
                namespace: ctx.ns.to_string(),
                name: ctx.name.to_string(),
                kind: ctx.kind.to_string(),
                target,
                mesh_tls: at(spec, &["client", "meshTLS"]).is_some(),
                unauthenticated: at(spec, &["client", "unauthenticated"])
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                identities: strings(at(spec, &["client", "meshTLS", "identities"])),
                service_accounts: sas,
                required_authentications: Vec::new(),
            }
        } else {
            let required: Vec<String> = spec
                .get("requiredAuthenticationRefs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(kind_name)
                .collect();
            LinkerdAuthorization {
                namespace: ctx.ns.to_string(),
                name: ctx.name.to_string(),
                kind: ctx.kind.to_string(),
                target: spec.get("targetRef").map(kind_name).unwrap_or_default(),
                mesh_tls: required
                    .iter()
                    .any(|r| r.starts_with("MeshTLSAuthentication/")),
                unauthenticated: required.is_empty(),
                identities: Vec::new(),
                service_accounts: Vec::new(),
                required_authentications: required,
            }
        };
        self.facts.linkerd_authorizations.push(f);
    }

    fn linkerd_route(&mut self, ctx: &Ctx, spec: &Value) {
        let parents = spec
            .get("parentRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}/{}",
                    str_at(p, &["kind"]).unwrap_or("Service"),
                    str_at(p, &["name"]).unwrap_or("?")
                )
            })
            .collect();
        let rules = spec
            .get("rules")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        self.facts.linkerd_routes.push(LinkerdRoute {
            namespace: ctx.ns.to_string(),
            name: ctx.name.to_string(),
            parents,
            rules,
        });
    }

    /// Picks the oldest of several policies at one level (Istio's rule), warning about the conflict.
    fn oldest<'p>(
        &self,
        found: Vec<&'p PeerAuthFacts>,
        what: &str,
        warnings: &mut Vec<String>,
    ) -> Option<&'p PeerAuthFacts> {
        if found.len() > 1 {
            let names: Vec<String> = found
                .iter()
                .map(|p| format!("{}/{}", p.namespace, p.name))
                .collect();
            warnings.push(format!("{what} has {} PeerAuthentications ({}); Istio applies the oldest, taken here by creationTimestamp, then file order", found.len(), names.join(", ")));
        }
        // min_by_key keeps the first of equal keys, i.e. file order on a tie.
        found.into_iter().min_by_key(|p| {
            self.pa_order
                .get(&format!("{}/{}", p.namespace, p.name))
                .cloned()
                .unwrap_or_default()
        })
    }

    fn finish(mut self, extra: &[(String, String)]) -> MeshFacts {
        let mut warnings = std::mem::take(&mut self.facts.warnings);
        let pas = self.facts.peer_authentications.clone();
        let mesh = self.oldest(
            pas.iter().filter(|p| p.scope == "mesh").collect(),
            "the mesh (root namespace istio-system)",
            &mut warnings,
        );
        let (mesh_mode, mesh_src, mesh_pol) = match mesh {
            Some(p) if p.mode != MtlsMode::Unset => {
                (p.mode, "mesh", Some(format!("{}/{}", p.namespace, p.name)))
            }
            _ => (MtlsMode::Permissive, "default", None),
        };
        self.facts.mesh_mtls = mesh_mode;
        self.facts.mesh_mtls_policy = mesh_pol.clone();
        for (ns, _) in extra {
            self.namespace_names.insert(ns.clone());
        }
        for pair in extra {
            self.workload_names.insert(pair.clone());
        }
        let authz = self.facts.authorization_policies.clone();
        let mesh_deny: Vec<String> = authz
            .iter()
            .filter(|a| a.scope == "mesh" && a.allow_nothing)
            .map(|a| format!("{}/{}", a.namespace, a.name))
            .collect();
        for ns in &self.namespace_names {
            let ns_pa = self.oldest(
                pas.iter()
                    .filter(|p| p.scope == "namespace" && &p.namespace == ns)
                    .collect(),
                &format!("namespace {ns}"),
                &mut warnings,
            );
            let (mtls, mtls_source, mtls_policy) = match ns_pa {
                Some(p) if p.mode != MtlsMode::Unset => (
                    p.mode,
                    "namespace".to_string(),
                    Some(format!("{}/{}", p.namespace, p.name)),
                ),
                _ => (mesh_mode, mesh_src.to_string(), mesh_pol.clone()),
            };
            let mut posture = AuthzPosture::default();
            for a in authz.iter().filter(|a| &a.namespace == ns) {
                match a.action.as_str() {
                    "ALLOW" => posture.allow_policies += 1,
                    "DENY" => posture.deny_policies += 1,
                    "AUDIT" => posture.audit_policies += 1,
                    _ => posture.custom_policies += 1,
                }
                if a.allow_nothing && a.scope != "workload" {
                    posture
                        .default_deny_policies
                        .push(format!("{}/{}", a.namespace, a.name));
                }
            }
            if ns != ROOT_NAMESPACE {
                posture
                    .default_deny_policies
                    .extend(mesh_deny.iter().cloned());
            }
            posture.default_deny_policies.sort();
            posture.default_deny = !posture.default_deny_policies.is_empty();
            posture.linkerd_servers = self
                .facts
                .linkerd_servers
                .iter()
                .filter(|s| &s.namespace == ns)
                .count();
            posture.linkerd_authorizations = self
                .facts
                .linkerd_authorizations
                .iter()
                .filter(|s| &s.namespace == ns)
                .count();
            self.facts.namespaces.insert(
                ns.clone(),
                NamespaceFacts {
                    mtls,
                    mtls_source,
                    mtls_policy,
                    authorization: posture,
                },
            );
        }
        for (ns, wl) in &self.workload_names {
            let nsf = &self.facts.namespaces[ns];
            let found: Vec<&PeerAuthFacts> = pas
                .iter()
                .filter(|p| {
                    p.scope == "workload"
                        && &p.namespace == ns
                        && p.workload.as_deref() == Some(wl.as_str())
                })
                .collect();
            let pa = self.oldest(found, &format!("workload {ns}/{wl}"), &mut warnings);
            let (mtls, mtls_source, mtls_policy) = match pa {
                Some(p) if p.mode != MtlsMode::Unset => (
                    p.mode,
                    "workload".to_string(),
                    Some(format!("{}/{}", p.namespace, p.name)),
                ),
                _ => (nsf.mtls, nsf.mtls_source.clone(), nsf.mtls_policy.clone()),
            };
            let port_mtls = pa
                .map(|p| {
                    p.port_modes
                        .iter()
                        .map(|(port, m)| (*port, if *m == MtlsMode::Unset { mtls } else { *m }))
                        .collect()
                })
                .unwrap_or_default();
            self.facts.workloads.push(WorkloadFacts {
                namespace: ns.clone(),
                workload: wl.clone(),
                mtls,
                mtls_source,
                mtls_policy,
                port_mtls,
            });
        }
        self.facts.warnings = warnings;
        self.facts
    }
}

struct Ctx<'a> {
    line: usize,
    kind: &'a str,
    ns: &'a str,
    name: &'a str,
}

impl Ctx<'_> {
    fn id(&self) -> String {
        format!("{} {}/{}", self.kind, self.ns, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_bomb_is_refused_quickly() {
        let mut y = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            y.push_str(&format!(
                "{}: &{} [*{}, *{}, *{}, *{}, *{}, *{}, *{}, *{}, *{}, *{}]\n",
                (b'a' + i) as char,
                (b'a' + i) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char
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
        assert_eq!(document_lines(b"# c\n---\na: 1\n---\nb: 2\n"), vec![2, 4]);
        assert_eq!(document_lines(b"a: 1\n---\nb: 2\n"), vec![1, 2]);
    }
}
