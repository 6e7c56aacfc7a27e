//! Linkerd policy objects, checked as Linkerd's admission webhook checks them
//! (`policy-controller/runtime/src/admission.rs`, the CRDs) and resolved as its policy
//! controller indexes them (`policy-controller/k8s/index/src/inbound/*.rs`): which Servers
//! select which pods and ports, which authorizations apply to each Server, and what clients
//! each one admits.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use super::k8s::LabelSelector;
use super::schema::{self, Problem};
use super::{
    Builder, LinkerdAuthentication, LinkerdAuthorization, LinkerdRoute, LinkerdServer, Obj, at,
    str_at, strings,
};
use crate::ingest::IngestError;
use crate::ingest::cert::parse_spiffe;

/// The pod / namespace annotation naming the default inbound policy for ports without a Server.
pub(super) const DEFAULT_POLICY_ANNOTATION: &str = "config.linkerd.io/default-inbound-policy";
/// Linkerd's default identity trust domain and control-plane namespace: a service account's
/// identity is `<sa>.<ns>.serviceaccount.identity.linkerd.cluster.local`
/// (`ClusterInfo::service_account_identity`).
pub const IDENTITY_SUFFIX: &str = "serviceaccount.identity.linkerd.cluster.local";

/// The access policies a Server or annotation may name (`DefaultPolicy::from_str`).
const ACCESS_POLICIES: [&str; 6] = [
    "all-authenticated",
    "all-unauthenticated",
    "cluster-authenticated",
    "cluster-unauthenticated",
    "deny",
    "audit",
];

/// What clients one authorization admits (`ClientAuthentication`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Authn {
    /// Mesh TLS with one of the authorized identities.
    TlsAuthenticated,
    /// TLS, any identity or none.
    TlsUnauthenticated,
    /// No authentication.
    Unauthenticated,
}

impl Authn {
    pub(super) fn name(self) -> &'static str {
        match self {
            Authn::TlsAuthenticated => "tls-authenticated",
            Authn::TlsUnauthenticated => "tls-unauthenticated",
            Authn::Unauthenticated => "unauthenticated",
        }
    }
    /// The `admits` value of a port whose most permissive authorization is this one.
    pub(super) fn admits(self) -> &'static str {
        match self {
            Authn::TlsAuthenticated => "mesh-identities",
            Authn::TlsUnauthenticated => "tls-clients",
            Authn::Unauthenticated => "any-client",
        }
    }
}

/// The clients an access policy admits on its own (`DefaultPolicy::default_authzs`).
pub(super) fn access_policy_admits(policy: &str) -> Option<Authn> {
    match policy {
        "all-authenticated" | "cluster-authenticated" => Some(Authn::TlsAuthenticated),
        "all-unauthenticated" | "cluster-unauthenticated" | "audit" => Some(Authn::Unauthenticated),
        _ => None,
    }
}

/// A Server as indexed.
pub(super) struct ServerDef {
    pub facts: LinkerdServer,
    pub selector: LabelSelector,
    pub labels: BTreeMap<String, String>,
}

/// What a ServerAuthorization selects.
pub(super) enum ServerSelector {
    Name(String),
    Labels(LabelSelector),
}

/// A ServerAuthorization or AuthorizationPolicy as indexed; its facts are completed when every
/// authentication object of the file is known.
pub(super) struct AuthzDef {
    pub facts: LinkerdAuthorization,
    pub target: Target,
    /// AuthorizationPolicy: (kind, namespace, name) of requiredAuthenticationRefs.
    pub refs: Vec<(String, String, String)>,
}

/// What an authorization applies to.
pub(super) enum Target {
    /// ServerAuthorization: servers by name or labels.
    Servers(ServerSelector),
    /// AuthorizationPolicy → Server.
    Server(String),
    /// AuthorizationPolicy → its own Namespace: every Server in it.
    Namespace,
    /// AuthorizationPolicy → HTTPRoute / GRPCRoute.
    Route(String),
}

/// Everything Linkerd read so far.
#[derive(Default)]
pub(super) struct Linkerd {
    pub namespace_default_policy: BTreeMap<String, String>,
    pub servers: Vec<ServerDef>,
    pub authorizations: Vec<AuthzDef>,
    /// MeshTLSAuthentication identities by (namespace, name); empty = configures none.
    pub mesh_tls: BTreeMap<(String, String), Vec<String>>,
    /// NetworkAuthentication networks by (namespace, name).
    pub networks: BTreeMap<(String, String), Vec<String>>,
}

/// Whether `group`/`kind` of a reference name `want_group`/`want_kind` (an empty group and
/// `core` are the core group).
fn targets(group: Option<&str>, kind: &str, want_group: &str, want_kind: &str) -> bool {
    let g = match group.unwrap_or("") {
        "core" => "",
        g => g,
    };
    kind.eq_ignore_ascii_case(want_kind) && g == want_group
}

/// An IP network as Linkerd's `Cidr` reads it: an address, or an address with a prefix length.
#[derive(Debug, Clone, Copy)]
struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        match s.split_once('/') {
            None => {
                let addr: IpAddr = s.parse().ok()?;
                let bits = if addr.is_ipv4() { 32 } else { 128 };
                Some(Cidr { addr, bits })
            }
            Some((a, b)) => {
                let addr: IpAddr = a.parse().ok()?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let bits: u8 = b.parse().ok().filter(|b| *b <= max)?;
                Some(Cidr { addr, bits })
            }
        }
    }

    fn to_bits(addr: IpAddr) -> u128 {
        match addr {
            IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
            IpAddr::V6(a) => u128::from(a),
        }
    }

    /// Whether `other` lies inside this network (same family).
    fn contains(&self, other: &Cidr) -> bool {
        if self.addr.is_ipv4() != other.addr.is_ipv4() || other.bits < self.bits {
            return false;
        }
        // IPv4 addresses sit in the top 32 bits, so the prefix counts from the top for both.
        let prefix = u32::from(self.bits);
        let mask = if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - prefix)
        };
        Self::to_bits(self.addr) & mask == Self::to_bits(other.addr) & mask
    }
}

/// Reads `networks` (NetworkAuthentication or ServerAuthorization client) as admission checks
/// them: each cidr parses, each exception lies inside its cidr and does not cover it.
fn check_networks(list: Option<&Value>, field: &str) -> Result<Vec<String>, Problem> {
    let mut out = Vec::new();
    for (i, n) in list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let here = format!("{field}[{i}]");
        let cidr_text = str_at(n, &["cidr"])
            .ok_or_else(|| Problem::new(format!("{here}.cidr"), "is required"))?;
        let cidr = Cidr::parse(cidr_text).ok_or_else(|| {
            Problem::new(
                format!("{here}.cidr"),
                format!("is {cidr_text:?}, which is not a valid CIDR or IP address"),
            )
        })?;
        let except = strings(n.get("except"));
        for e in &except {
            let ex = Cidr::parse(e).ok_or_else(|| {
                Problem::new(
                    format!("{here}.except"),
                    format!("has {e:?}, which is not a valid CIDR or IP address"),
                )
            })?;
            if ex.contains(&cidr) {
                return Err(Problem::new(
                    format!("{here}.except"),
                    format!("has {e:?}, which completely negates the cidr {cidr_text:?}"),
                ));
            }
            if !cidr.contains(&ex) {
                return Err(Problem::new(
                    format!("{here}.except"),
                    format!("has {e:?}, which the cidr {cidr_text:?} does not include"),
                ));
            }
        }
        out.push(if except.is_empty() {
            cidr_text.to_string()
        } else {
            format!("{cidr_text} except {}", except.join(", "))
        });
    }
    Ok(out)
}

/// Linkerd's identity rule (`runtime/src/validation.rs`): a SPIFFE ID, or a DNS-like name
/// whose first label may be `*`.
fn check_identity(id: &str, field: &str) -> Result<(), Problem> {
    let ok = if id.starts_with("spiffe://") {
        parse_spiffe(id).is_ok()
    } else {
        let label = |l: &str| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let mut parts = id.split('.');
        let first = parts.next().unwrap_or("");
        (first == "*" || label(first)) && parts.all(label)
    };
    if ok {
        Ok(())
    } else {
        Err(Problem::new(
            field,
            format!("has {id:?}, which is neither a valid SPIFFE ID nor a DNS-like identity"),
        ))
    }
}

fn check_server(obj: &Obj) -> Result<ServerDef, Problem> {
    let spec = obj.spec();
    schema::check(spec, &schema::LINKERD_SERVER, "spec")?;
    let pod = spec.get("podSelector").filter(|v| !v.is_null());
    let ext = spec
        .get("externalWorkloadSelector")
        .filter(|v| !v.is_null());
    let (selects, sel_value, sel_field) = match (pod, ext) {
        (Some(p), None) => ("pod", p, "spec.podSelector"),
        (None, Some(e)) => ("external-workload", e, "spec.externalWorkloadSelector"),
        _ => {
            return Err(Problem::new(
                "spec.podSelector",
                "must be given, or else externalWorkloadSelector, but not both (the CRD's oneOf)",
            ));
        }
    };
    let selector = LabelSelector::parse(Some(sel_value), sel_field)?;
    let port = match spec.get("port") {
        Some(Value::Number(n)) => match n.as_u64().filter(|p| (1..=65535).contains(p)) {
            Some(p) => p.to_string(),
            None => {
                return Err(Problem::new(
                    "spec.port",
                    format!("is {n}; a port number is between 1 and 65535"),
                ));
            }
        },
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(Problem::new(
                "spec.port",
                "is required (a port name or number)",
            ));
        }
    };
    let proxy_protocol = str_at(spec, &["proxyProtocol"]).map(str::to_string);
    if let Some(p) = &proxy_protocol
        && !["unknown", "HTTP/1", "HTTP/2", "gRPC", "opaque", "TLS"].contains(&p.as_str())
    {
        return Err(Problem::new(
            "spec.proxyProtocol",
            format!("is {p:?}; Linkerd knows unknown, HTTP/1, HTTP/2, gRPC, opaque, TLS"),
        ));
    }
    let access_policy = str_at(spec, &["accessPolicy"]).map(str::to_string);
    if let Some(p) = &access_policy
        && !ACCESS_POLICIES.contains(&p.as_str())
    {
        return Err(Problem::new(
            "spec.accessPolicy",
            format!("is {p:?}; Linkerd knows {}", ACCESS_POLICIES.join(", ")),
        ));
    }
    Ok(ServerDef {
        facts: LinkerdServer {
            namespace: obj.ns().to_string(),
            name: obj.name().to_string(),
            selects: selects.to_string(),
            selector: selector.describe(),
            port,
            proxy_protocol,
            access_policy,
            workloads: Vec::new(),
            authorizations: Vec::new(),
            admits: String::new(),
            creation_timestamp: obj.creation_timestamp(),
        },
        selector,
        labels: super::labels(at(&obj.value, &["metadata", "labels"])),
    })
}

fn blank_authorization(obj: &Obj, target: String) -> LinkerdAuthorization {
    LinkerdAuthorization {
        namespace: obj.ns().to_string(),
        name: obj.name().to_string(),
        kind: obj.oref.kind.clone(),
        target,
        in_effect: true,
        not_in_effect_reason: None,
        authentication: Authn::Unauthenticated.name().to_string(),
        mesh_tls: false,
        unauthenticated: true,
        identities: Vec::new(),
        service_accounts: Vec::new(),
        networks_scope: "all".to_string(),
        networks: Vec::new(),
        required_authentications: Vec::new(),
    }
}

/// Sets the authentication fields of `f`.
pub(super) fn set_authn(f: &mut LinkerdAuthorization, a: Authn) {
    f.authentication = a.name().to_string();
    f.mesh_tls = a == Authn::TlsAuthenticated;
    f.unauthenticated = a == Authn::Unauthenticated;
}

fn check_server_authorization(obj: &Obj) -> Result<AuthzDef, Problem> {
    let spec = obj.spec();
    schema::check(spec, &schema::LINKERD_SERVER_AUTHORIZATION, "spec")?;
    let server = spec
        .get("server")
        .filter(|v| !v.is_null())
        .ok_or_else(|| Problem::new("spec.server", "is required"))?;
    let selector = match (
        str_at(server, &["name"]),
        server.get("selector").filter(|v| !v.is_null()),
    ) {
        (Some(n), None) => ServerSelector::Name(n.to_string()),
        (None, Some(s)) => {
            ServerSelector::Labels(LabelSelector::parse(Some(s), "spec.server.selector")?)
        }
        _ => {
            return Err(Problem::new(
                "spec.server",
                "must name a server or give a selector, not both (the CRD's oneOf)",
            ));
        }
    };
    let client = spec
        .get("client")
        .filter(|v| !v.is_null())
        .ok_or_else(|| Problem::new("spec.client", "is required"))?;
    let unauthenticated = client
        .get("unauthenticated")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mesh_tls = client.get("meshTLS").filter(|v| !v.is_null());
    if mesh_tls.is_some() && unauthenticated {
        return Err(Problem::new(
            "spec.client.unauthenticated",
            "must be false when meshTLS is given",
        ));
    }
    let identities = strings(mesh_tls.and_then(|m| m.get("identities")));
    for id in &identities {
        check_identity(id, "spec.client.meshTLS.identities")?;
    }
    let mut service_accounts = Vec::new();
    for sa in mesh_tls
        .and_then(|m| m.get("serviceAccounts"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_at(sa, &["name"]).unwrap_or_default();
        let ns = str_at(sa, &["namespace"]).unwrap_or(obj.ns());
        service_accounts.push(format!("{ns}/{name}"));
    }
    let unauthenticated_tls = mesh_tls
        .and_then(|m| m.get("unauthenticatedTLS"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if unauthenticated_tls && !(identities.is_empty() && service_accounts.is_empty()) {
        return Err(Problem::new(
            "spec.client.meshTLS.unauthenticatedTLS",
            "must be false when identities or serviceAccounts are given",
        ));
    }
    let networks = check_networks(client.get("networks"), "spec.client.networks")?;
    let target = match &selector {
        ServerSelector::Name(n) => format!("Server/{n}"),
        ServerSelector::Labels(_) => "selector".to_string(),
    };
    let mut facts = blank_authorization(obj, target);
    facts.networks_scope = if networks.is_empty() {
        "cluster"
    } else {
        "listed"
    }
    .to_string();
    facts.networks = networks;
    let mut sa_ids: Vec<String> = service_accounts
        .iter()
        .map(|sa| {
            let (ns, name) = sa.split_once('/').unwrap_or(("", sa));
            format!("{name}.{ns}.{IDENTITY_SUFFIX}")
        })
        .collect();
    let authn = if unauthenticated {
        Some(Authn::Unauthenticated)
    } else if mesh_tls.is_some() && unauthenticated_tls {
        Some(Authn::TlsUnauthenticated)
    } else if mesh_tls.is_some() && !(identities.is_empty() && service_accounts.is_empty()) {
        Some(Authn::TlsAuthenticated)
    } else {
        None
    };
    facts.identities = identities;
    facts.identities.append(&mut sa_ids);
    facts.service_accounts = service_accounts;
    match authn {
        Some(a) => set_authn(&mut facts, a),
        None => {
            // Admitted by the webhook, but the index cannot read it (`client_authz`), so it
            // authorizes nobody.
            set_authn(&mut facts, Authn::TlsAuthenticated);
            facts.in_effect = false;
            facts.not_in_effect_reason = Some(if mesh_tls.is_some() {
                "it authorizes no clients (meshTLS names no identity or service account), so Linkerd's index ignores it".to_string()
            } else {
                "it configures no client authentication (neither unauthenticated nor meshTLS), so Linkerd's index ignores it".to_string()
            });
        }
    }
    Ok(AuthzDef {
        facts,
        target: Target::Servers(selector),
        refs: Vec::new(),
    })
}

fn check_authorization_policy(obj: &Obj) -> Result<AuthzDef, Problem> {
    let spec = obj.spec();
    schema::check(spec, &schema::LINKERD_AUTHORIZATION_POLICY, "spec")?;
    let t = spec
        .get("targetRef")
        .filter(|v| !v.is_null())
        .ok_or_else(|| Problem::new("spec.targetRef", "is required"))?;
    let (tg, tk, tn) = (
        str_at(t, &["group"]),
        str_at(t, &["kind"]).unwrap_or(""),
        str_at(t, &["name"]).unwrap_or(""),
    );
    if tk.is_empty() || tn.is_empty() {
        return Err(Problem::new("spec.targetRef", "needs a kind and a name"));
    }
    let target = if targets(tg, tk, "policy.linkerd.io", "Server") {
        Target::Server(tn.to_string())
    } else if targets(tg, tk, "", "Namespace") {
        if tn != obj.ns() {
            return Err(Problem::new(
                "spec.targetRef.name",
                format!("is {tn:?}; an AuthorizationPolicy cannot target another namespace"),
            ));
        }
        Target::Namespace
    } else if targets(tg, tk, "policy.linkerd.io", "HTTPRoute")
        || targets(tg, tk, "gateway.networking.k8s.io", "HTTPRoute")
        || targets(tg, tk, "gateway.networking.k8s.io", "GRPCRoute")
    {
        Target::Route(format!("{tk}/{tn}"))
    } else {
        return Err(Problem::new(
            "spec.targetRef.kind",
            format!(
                "is {}/{tk}; Linkerd supports Server, Namespace, HTTPRoute or GRPCRoute targets",
                tg.unwrap_or("")
            ),
        ));
    };
    let refs_value = spec
        .get("requiredAuthenticationRefs")
        .filter(|v| !v.is_null())
        .ok_or_else(|| {
            Problem::new(
                "spec.requiredAuthenticationRefs",
                "is required (it may be an empty list)",
            )
        })?;
    let mut refs = Vec::new();
    let (mut mtls, mut sas, mut nets) = (0, 0, 0);
    for (i, r) in refs_value.as_array().into_iter().flatten().enumerate() {
        let field = format!("spec.requiredAuthenticationRefs[{i}]");
        let (g, k) = (str_at(r, &["group"]), str_at(r, &["kind"]).unwrap_or(""));
        let name = str_at(r, &["name"]).unwrap_or("");
        let ns = str_at(r, &["namespace"]).unwrap_or(obj.ns()).to_string();
        let kind = if targets(g, k, "policy.linkerd.io", "MeshTLSAuthentication") {
            mtls += 1;
            "MeshTLSAuthentication"
        } else if targets(g, k, "policy.linkerd.io", "NetworkAuthentication") {
            nets += 1;
            "NetworkAuthentication"
        } else if targets(g, k, "", "ServiceAccount") {
            sas += 1;
            "ServiceAccount"
        } else {
            return Err(Problem::new(
                format!("{field}.kind"),
                format!(
                    "is {}/{k}, an unsupported authentication kind",
                    g.unwrap_or("")
                ),
            ));
        };
        if name.is_empty() {
            return Err(Problem::new(format!("{field}.name"), "is required"));
        }
        refs.push((kind.to_string(), ns, name.to_string()));
    }
    let field = "spec.requiredAuthenticationRefs";
    if mtls > 1 {
        return Err(Problem::new(
            field,
            "names more than one MeshTLSAuthentication; only a single one may be set",
        ));
    }
    if sas > 1 {
        return Err(Problem::new(
            field,
            "names more than one ServiceAccount; only a single one may be set",
        ));
    }
    if mtls + sas > 1 {
        return Err(Problem::new(
            field,
            "names a MeshTLSAuthentication and a ServiceAccount; they may not be set together",
        ));
    }
    if nets > 1 {
        return Err(Problem::new(
            field,
            "names more than one NetworkAuthentication; only a single one may be set",
        ));
    }
    let target_name = match &target {
        Target::Server(n) => format!("Server/{n}"),
        Target::Namespace => format!("Namespace/{}", obj.ns()),
        Target::Route(r) => r.clone(),
        Target::Servers(_) => unreachable!("only ServerAuthorization selects servers"),
    };
    let mut facts = blank_authorization(obj, target_name);
    facts.required_authentications = refs
        .iter()
        .map(|(k, ns, n)| format!("{k} {ns}/{n}"))
        .collect();
    Ok(AuthzDef {
        facts,
        target,
        refs,
    })
}

fn check_mesh_tls(obj: &Obj) -> Result<Vec<String>, Problem> {
    let spec = obj.spec();
    schema::check(spec, &schema::LINKERD_MESH_TLS_AUTHENTICATION, "spec")?;
    let has = |k: &str| spec.get(k).is_some_and(|v| !v.is_null());
    if has("identities") == has("identityRefs") {
        return Err(Problem::new(
            "spec.identities",
            "must be given, or else identityRefs, but not both (the CRD's oneOf)",
        ));
    }
    let mut ids = strings(spec.get("identities"));
    for id in &ids {
        check_identity(id, "spec.identities")?;
    }
    for (i, r) in spec
        .get("identityRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("spec.identityRefs[{i}]");
        let (g, k) = (str_at(r, &["group"]), str_at(r, &["kind"]).unwrap_or(""));
        let name = str_at(r, &["name"]).unwrap_or("");
        if targets(g, k, "", "ServiceAccount") {
            let ns = str_at(r, &["namespace"]).unwrap_or(obj.ns());
            ids.push(format!("{name}.{ns}.{IDENTITY_SUFFIX}"));
        } else if targets(g, k, "", "Namespace") {
            if r.get("namespace").is_some_and(|v| !v.is_null()) {
                return Err(Problem::new(
                    format!("{field}.namespace"),
                    "must not be set: a Namespace identity ref is cluster-scoped",
                ));
            }
            ids.push(format!("*.{name}.{IDENTITY_SUFFIX}"));
        } else {
            return Err(Problem::new(
                format!("{field}.kind"),
                format!(
                    "is {}/{k}; identity refs name a ServiceAccount or a Namespace",
                    g.unwrap_or("")
                ),
            ));
        }
    }
    Ok(ids)
}

fn check_network(obj: &Obj) -> Result<Vec<String>, Problem> {
    let spec = obj.spec();
    schema::check(spec, &schema::LINKERD_NETWORK_AUTHENTICATION, "spec")?;
    let nets = check_networks(spec.get("networks"), "spec.networks")?;
    if nets.is_empty() {
        return Err(Problem::new(
            "spec.networks",
            "must list at least one network",
        ));
    }
    Ok(nets)
}

impl Builder<'_> {
    pub(super) fn linkerd_server(&mut self, obj: &Obj) -> Result<(), IngestError> {
        match check_server(obj) {
            Ok(s) => {
                self.linkerd.servers.push(s);
                Ok(())
            }
            Err(p) => self.invalid(obj, p),
        }
    }

    pub(super) fn linkerd_server_authorization(&mut self, obj: &Obj) -> Result<(), IngestError> {
        match check_server_authorization(obj) {
            Ok(a) => {
                self.linkerd.authorizations.push(a);
                Ok(())
            }
            Err(p) => self.invalid(obj, p),
        }
    }

    pub(super) fn linkerd_policy(&mut self, obj: &Obj) -> Result<(), IngestError> {
        match check_authorization_policy(obj) {
            Ok(a) => {
                self.linkerd.authorizations.push(a);
                Ok(())
            }
            Err(p) => self.invalid(obj, p),
        }
    }

    pub(super) fn linkerd_mesh_tls(&mut self, obj: &Obj) -> Result<(), IngestError> {
        match check_mesh_tls(obj) {
            Ok(ids) => {
                self.facts
                    .linkerd_authentications
                    .push(LinkerdAuthentication {
                        namespace: obj.ns().to_string(),
                        name: obj.name().to_string(),
                        kind: obj.oref.kind.clone(),
                        identities: ids.clone(),
                        networks: Vec::new(),
                    });
                self.linkerd
                    .mesh_tls
                    .insert((obj.ns().to_string(), obj.name().to_string()), ids);
                Ok(())
            }
            Err(p) => self.invalid(obj, p),
        }
    }

    pub(super) fn linkerd_network(&mut self, obj: &Obj) -> Result<(), IngestError> {
        match check_network(obj) {
            Ok(nets) => {
                self.facts
                    .linkerd_authentications
                    .push(LinkerdAuthentication {
                        namespace: obj.ns().to_string(),
                        name: obj.name().to_string(),
                        kind: obj.oref.kind.clone(),
                        identities: Vec::new(),
                        networks: nets.clone(),
                    });
                self.linkerd
                    .networks
                    .insert((obj.ns().to_string(), obj.name().to_string()), nets);
                Ok(())
            }
            Err(p) => self.invalid(obj, p),
        }
    }

    pub(super) fn linkerd_route(&mut self, obj: &Obj) {
        let spec = obj.spec();
        let parents = spec
            .get("parentRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}/{}",
                    str_at(p, &["kind"]).unwrap_or("Gateway"),
                    str_at(p, &["name"]).unwrap_or("?")
                )
            })
            .collect();
        let rules = spec
            .get("rules")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        self.facts.linkerd_routes.push(LinkerdRoute {
            namespace: obj.ns().to_string(),
            name: obj.name().to_string(),
            kind: obj.oref.kind.clone(),
            parents,
            rules,
        });
    }
}

/// Resolves every authorization's authentication against the MeshTLS / Network
/// authentications of the file (`PolicyIndex::policy_client_authz`).
pub(super) fn resolve_authentications(l: &mut Linkerd) {
    for a in &mut l.authorizations {
        if a.refs.is_empty() && a.facts.kind == "ServerAuthorization" {
            continue;
        }
        let mut identities: Option<Vec<String>> = None;
        let mut sas = Vec::new();
        let mut networks: Option<Vec<String>> = None;
        let mut missing = None;
        for (kind, ns, name) in &a.refs {
            let key = (ns.clone(), name.clone());
            match kind.as_str() {
                "MeshTLSAuthentication" => match l.mesh_tls.get(&key) {
                    Some(ids) => identities = Some(ids.clone()),
                    None => {
                        missing.get_or_insert(format!("MeshTLSAuthentication {ns}/{name}"));
                    }
                },
                "ServiceAccount" => {
                    sas.push(format!("{ns}/{name}"));
                    identities = Some(vec![format!("{name}.{ns}.{IDENTITY_SUFFIX}")]);
                }
                _ => match l.networks.get(&key) {
                    Some(n) => networks = Some(n.clone()),
                    None => {
                        missing.get_or_insert(format!("NetworkAuthentication {ns}/{name}"));
                    }
                },
            }
        }
        let f = &mut a.facts;
        f.service_accounts = sas;
        match identities {
            Some(ids) => {
                f.identities = ids;
                set_authn(f, Authn::TlsAuthenticated);
            }
            None => set_authn(f, Authn::Unauthenticated),
        }
        match networks {
            Some(n) => {
                f.networks_scope = "listed".to_string();
                f.networks = n;
            }
            None => {
                f.networks_scope = "all".to_string();
                f.networks = Vec::new();
            }
        }
        if let Some(m) = missing {
            f.in_effect = false;
            f.not_in_effect_reason = Some(format!(
                "{m} is not in the input; Linkerd ignores the policy until it exists"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_contain_as_ipnet_does() {
        let net = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(&Cidr::parse("10.1.0.0/16").unwrap()));
        assert!(net.contains(&Cidr::parse("10.2.3.4").unwrap()));
        assert!(!net.contains(&Cidr::parse("11.0.0.0/16").unwrap()));
        assert!(!net.contains(&Cidr::parse("0.0.0.0/0").unwrap()));
        assert!(
            Cidr::parse("::/0")
                .unwrap()
                .contains(&Cidr::parse("fd00::/8").unwrap())
        );
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(&net));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
    }

    #[test]
    fn identities_follow_linkerds_rule() {
        for ok in [
            "*",
            "*.orders.serviceaccount.identity.linkerd.cluster.local",
            "web.default.serviceaccount.identity.linkerd.cluster.local",
            "spiffe://cluster.local/ns/a/sa/b",
        ] {
            check_identity(ok, "f").unwrap();
        }
        for bad in ["Web.default", "a..b", "**.x", "spiffe://Bad/x", "-a.b"] {
            assert!(check_identity(bad, "f").is_err(), "{bad}");
        }
    }
}
