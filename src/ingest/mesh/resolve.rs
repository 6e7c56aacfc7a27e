//! From the objects in effect to the facts: the workloads, then per namespace and workload
//! what Istio and Linkerd put in effect.

use std::collections::{BTreeMap, BTreeSet};

use super::k8s::{WorkloadObject, subset_of};
use super::linkerd::{self, Authn, ServerSelector, Target};
use super::{
    AuthzPosture, Builder, LinkerdPortFacts, MAX_POLICY_PAIRS, MAX_SELECTOR_CHECKS, MeshFacts,
    MtlsMode, NamespaceFacts, PeerAuthFacts, ROOT_NAMESPACE, WorkloadAuthz, WorkloadFacts,
};
use crate::ingest::IngestError;

/// A workload being resolved.
struct Workload {
    namespace: String,
    name: String,
    source: String,
    labels: BTreeMap<String, String>,
    service_account: Option<String>,
    ports: Vec<(Option<String>, u16)>,
    linkerd_default_policy: Option<String>,
}

/// Counts selector comparisons and recorded pairs against the caps.
struct Budget<'a> {
    source_name: &'a str,
    checks: usize,
    pairs: usize,
}

impl Budget<'_> {
    fn check(&mut self) -> Result<(), IngestError> {
        self.checks += 1;
        if self.checks > MAX_SELECTOR_CHECKS {
            return Err(IngestError::too_large(
                self.source_name,
                None,
                "the number of selector comparisons (policies or servers × workloads)",
                MAX_SELECTOR_CHECKS,
                self.checks,
            ));
        }
        Ok(())
    }
    fn pairs(&mut self, n: usize) -> Result<(), IngestError> {
        self.pairs += n;
        if self.pairs > MAX_POLICY_PAIRS {
            return Err(IngestError::too_large(
                self.source_name,
                None,
                "the number of (workload, policy) pairs",
                MAX_POLICY_PAIRS,
                self.pairs,
            ));
        }
        Ok(())
    }
}

/// The order in which Istio and Linkerd pick the oldest of several objects: creation time,
/// then name, then namespace (`configCompareByCreationTime`; Linkerd's server sort). A missing
/// timestamp is Go's zero time, and `None` in Rust's `Option` order: the oldest.
fn age_key(created: &Option<String>, name: &str, namespace: &str) -> (Option<i64>, String, String) {
    let t = created
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp());
    (t, name.to_string(), namespace.to_string())
}

fn app_label(sel: &BTreeMap<String, String>) -> Option<(String, String)> {
    ["app", "app.kubernetes.io/name"]
        .iter()
        .find_map(|k| sel.get(*k).map(|v| (k.to_string(), v.clone())))
}

impl Workload {
    fn from_object(w: WorkloadObject) -> Self {
        Workload {
            namespace: w.namespace,
            name: w.name,
            source: w.kind,
            labels: w.labels,
            service_account: Some(w.service_account),
            ports: w.ports,
            linkerd_default_policy: w.linkerd_default_policy,
        }
    }
    fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

pub(super) fn finish(mut b: Builder, extra: &[(String, String)]) -> Result<MeshFacts, IngestError> {
    let mut budget = Budget {
        source_name: b.src.name,
        checks: 0,
        pairs: 0,
    };
    let mut warnings = std::mem::take(&mut b.facts.warnings);
    let workloads = collect_workloads(&mut b, extra, &mut warnings, &mut budget)?;
    let mut namespaces: BTreeSet<String> = std::mem::take(&mut b.namespace_names);
    namespaces.extend(workloads.iter().map(|w| w.namespace.clone()));
    let mut by_ns: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, w) in workloads.iter().enumerate() {
        by_ns.entry(w.namespace.as_str()).or_default().push(i);
    }
    let ns_workloads = |ns: &str| by_ns.get(ns).cloned().unwrap_or_default();

    // PeerAuthentication (ComposePeerAuthentication).
    let mut pas = std::mem::take(&mut b.facts.peer_authentications);
    let mut order: Vec<usize> = (0..pas.len()).collect();
    order.sort_by_key(|&i| age_key(&pas[i].creation_timestamp, &pas[i].name, &pas[i].namespace));
    let oldest = |pick: &dyn Fn(&PeerAuthFacts) -> bool, what: &str, warnings: &mut Vec<String>| {
        let found: Vec<usize> = order.iter().copied().filter(|&i| pick(&pas[i])).collect();
        if found.len() > 1 {
            let names: Vec<String> = found
                .iter()
                .map(|&i| format!("{}/{}", pas[i].namespace, pas[i].name))
                .collect();
            warnings.push(format!(
                "{what} has {} PeerAuthentications ({}); Istio applies the oldest by creationTimestamp, then name",
                found.len(),
                names.join(", ")
            ));
        }
        found.first().copied()
    };
    let mesh = oldest(
        &|p| p.scope == "mesh",
        "the mesh (root namespace istio-system)",
        &mut warnings,
    );
    let (mesh_mode, mesh_src, mesh_pol) = match mesh {
        Some(i) if pas[i].mode != MtlsMode::Unset => (
            pas[i].mode,
            "mesh",
            Some(format!("{}/{}", pas[i].namespace, pas[i].name)),
        ),
        _ => (MtlsMode::Permissive, "default", None),
    };
    b.facts.mesh_mtls = mesh_mode;
    b.facts.mesh_mtls_policy = mesh_pol.clone();
    let mut ns_mtls = BTreeMap::new();
    for ns in &namespaces {
        let pick = oldest(
            &|p| p.scope == "namespace" && &p.namespace == ns,
            &format!("namespace {ns}"),
            &mut warnings,
        );
        ns_mtls.insert(
            ns.clone(),
            match pick {
                Some(i) if pas[i].mode != MtlsMode::Unset => (
                    pas[i].mode,
                    "namespace".to_string(),
                    Some(format!("{}/{}", pas[i].namespace, pas[i].name)),
                ),
                _ => (mesh_mode, mesh_src.to_string(), mesh_pol.clone()),
            },
        );
    }
    // Which workloads each workload-level PeerAuthentication selects.
    let mut pa_selects: Vec<Vec<usize>> = vec![Vec::new(); pas.len()];
    for i in 0..pas.len() {
        if pas[i].scope != "workload" {
            continue;
        }
        for w in ns_workloads(&pas[i].namespace) {
            budget.check()?;
            if subset_of(&pas[i].selector, &workloads[w].labels) {
                pa_selects[i].push(w);
            }
        }
        budget.pairs(pa_selects[i].len())?;
        p_workloads(&mut pas, i, &pa_selects[i], &workloads);
    }

    // AuthorizationPolicy: which workloads each applies to (ShouldAttachPolicy).
    let mut aps = std::mem::take(&mut b.facts.authorization_policies);
    let mut per_workload: Vec<WorkloadAuthz> = vec![WorkloadAuthz::default(); workloads.len()];
    let mut ap_order: Vec<usize> = (0..aps.len()).collect();
    ap_order.sort_by_key(|&i| (aps[i].namespace.clone(), aps[i].name.clone()));
    for &i in &ap_order {
        let a = &aps[i];
        let candidates: Vec<usize> = match a.scope.as_str() {
            "target-ref" => Vec::new(),
            "mesh" => (0..workloads.len()).collect(),
            "namespace" => ns_workloads(&a.namespace),
            _ if a.namespace == ROOT_NAMESPACE => (0..workloads.len()).collect(),
            _ => ns_workloads(&a.namespace),
        };
        let mut applies = Vec::new();
        for w in candidates {
            if a.scope == "workload" {
                budget.check()?;
                if !subset_of(&a.selector, &workloads[w].labels) {
                    continue;
                }
            }
            applies.push(w);
        }
        budget.pairs(applies.len())?;
        let name = format!("{}/{}", a.namespace, a.name);
        for &w in &applies {
            let z = &mut per_workload[w];
            if a.dry_run {
                z.dry_run_policies.push(name.clone());
                continue;
            }
            match a.action.as_str() {
                "ALLOW" => z.allow_policies.push(name.clone()),
                "DENY" => {
                    z.deny_policies.push(name.clone());
                    z.denies_all |= a.deny_all;
                }
                "AUDIT" => z.audit_policies.push(name.clone()),
                _ => z.custom_policies.push(name.clone()),
            }
        }
        if a.scope == "workload" {
            let mut ids: Vec<String> = applies.iter().map(|&w| workloads[w].id()).collect();
            ids.sort();
            aps[i].workloads = ids;
        }
    }
    let allow_nothing: BTreeSet<String> = aps
        .iter()
        .filter(|a| a.allow_nothing)
        .map(|a| format!("{}/{}", a.namespace, a.name))
        .collect();
    for z in &mut per_workload {
        z.default_deny = !z.allow_policies.is_empty();
        z.allows_nothing =
            z.default_deny && z.allow_policies.iter().all(|p| allow_nothing.contains(p));
    }

    // Namespaces.
    for ns in &namespaces {
        let mut posture = AuthzPosture::default();
        for a in aps.iter().filter(|a| &a.namespace == ns) {
            if a.dry_run {
                posture.dry_run_policies += 1;
                continue;
            }
            match a.action.as_str() {
                "ALLOW" => posture.allow_policies += 1,
                "DENY" => posture.deny_policies += 1,
                "AUDIT" => posture.audit_policies += 1,
                _ => posture.custom_policies += 1,
            }
        }
        for a in aps.iter().filter(|a| {
            // A mesh-scope policy sits in the root namespace and applies in every namespace.
            !a.dry_run && ((a.scope == "namespace" && &a.namespace == ns) || a.scope == "mesh")
        }) {
            let name = format!("{}/{}", a.namespace, a.name);
            if a.action == "ALLOW" {
                posture.default_deny_policies.push(name.clone());
                if a.allow_nothing {
                    posture.allow_nothing_policies.push(name.clone());
                }
            }
            if a.deny_all {
                posture.deny_all_policies.push(name);
            }
        }
        posture.default_deny_policies.sort();
        posture.allow_nothing_policies.sort();
        posture.deny_all_policies.sort();
        posture.default_deny = !posture.default_deny_policies.is_empty();
        let (mtls, mtls_source, mtls_policy) = ns_mtls[ns].clone();
        b.facts.namespaces.insert(
            ns.clone(),
            NamespaceFacts {
                mtls,
                mtls_source,
                mtls_policy,
                authorization: posture,
                linkerd_default_policy: b.linkerd.namespace_default_policy.get(ns).cloned(),
            },
        );
    }

    // Linkerd.
    let linkerd_ports = resolve_linkerd(&mut b, &workloads, &by_ns, &mut warnings, &mut budget)?;

    // Workloads.
    let mut out = Vec::with_capacity(workloads.len());
    for (i, w) in workloads.iter().enumerate() {
        let nsf = &b.facts.namespaces[&w.namespace];
        let found: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&p| pa_selects[p].contains(&i))
            .collect();
        if found.len() > 1 {
            let names: Vec<String> = found
                .iter()
                .map(|&p| format!("{}/{}", pas[p].namespace, pas[p].name))
                .collect();
            warnings.push(format!(
                "workload {} has {} PeerAuthentications ({}); Istio applies the oldest by creationTimestamp, then name",
                w.id(),
                found.len(),
                names.join(", ")
            ));
        }
        let pa = found.first().map(|&p| &pas[p]);
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
        let mut authorization = std::mem::take(&mut per_workload[i]);
        for l in [
            &mut authorization.custom_policies,
            &mut authorization.deny_policies,
            &mut authorization.allow_policies,
            &mut authorization.audit_policies,
            &mut authorization.dry_run_policies,
        ] {
            l.sort();
        }
        out.push(WorkloadFacts {
            namespace: w.namespace.clone(),
            workload: w.name.clone(),
            source: w.source.clone(),
            labels: w.labels.clone(),
            service_account: w.service_account.clone(),
            mtls,
            mtls_source,
            mtls_policy,
            port_mtls,
            authorization,
            linkerd_ports: linkerd_ports[i].clone(),
            linkerd_default_policy: w
                .linkerd_default_policy
                .clone()
                .or_else(|| nsf.linkerd_default_policy.clone()),
        });
    }
    out.sort_by(|a, b| (&a.namespace, &a.workload).cmp(&(&b.namespace, &b.workload)));
    b.facts.workloads = out;
    b.facts.peer_authentications = pas;
    b.facts.authorization_policies = aps;
    b.facts.warnings = warnings;
    Ok(b.facts)
}

fn p_workloads(pas: &mut [PeerAuthFacts], i: usize, selected: &[usize], workloads: &[Workload]) {
    let mut ids: Vec<String> = selected.iter().map(|&w| workloads[w].id()).collect();
    ids.sort();
    pas[i].workloads = ids;
}

/// The workloads of the facts: workload objects of the input; workloads named only by a
/// policy selector's `app` (or `app.kubernetes.io/name`) label when no object of the input
/// matches the selector; and the caller's extra pairs.
fn collect_workloads(
    b: &mut Builder,
    extra: &[(String, String)],
    warnings: &mut Vec<String>,
    budget: &mut Budget,
) -> Result<Vec<Workload>, IngestError> {
    let mut out: Vec<Workload> = Vec::new();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for w in std::mem::take(&mut b.workloads) {
        let key = (w.namespace.clone(), w.name.clone());
        if !seen.insert(key) {
            warnings.push(format!(
                "{} {}/{} has the name of another workload in the input; only the first is a workload of the facts",
                w.kind, w.namespace, w.name
            ));
            continue;
        }
        out.push(Workload::from_object(w));
    }
    let objects = out.len();
    // Selectors that name workloads: (namespace, what, selector).
    let mut selectors: Vec<(String, String, BTreeMap<String, String>)> = Vec::new();
    for p in b
        .facts
        .peer_authentications
        .iter()
        .filter(|p| p.scope == "workload")
    {
        selectors.push((
            p.namespace.clone(),
            format!("PeerAuthentication {}/{}", p.namespace, p.name),
            p.selector.clone(),
        ));
    }
    for a in b
        .facts
        .authorization_policies
        .iter()
        .filter(|a| a.scope == "workload" && a.namespace != ROOT_NAMESPACE)
    {
        selectors.push((
            a.namespace.clone(),
            format!("AuthorizationPolicy {}/{}", a.namespace, a.name),
            a.selector.clone(),
        ));
    }
    for s in b
        .linkerd
        .servers
        .iter()
        .filter(|s| s.facts.selects == "pod")
    {
        if s.selector.expressions.is_empty() && !s.selector.match_labels.is_empty() {
            selectors.push((
                s.facts.namespace.clone(),
                format!("Server {}/{}", s.facts.namespace, s.facts.name),
                s.selector.match_labels.clone(),
            ));
        }
    }
    for (ns, what, sel) in selectors {
        let mut matched = false;
        for w in out[..objects].iter().filter(|w| w.namespace == ns) {
            budget.check()?;
            if subset_of(&sel, &w.labels) {
                matched = true;
                break;
            }
        }
        if matched {
            continue;
        }
        let Some((key, name)) = app_label(&sel) else {
            warnings.push(format!(
                "{what} selects pods by {} without an app or app.kubernetes.io/name label, and no workload of the input matches, so the workload it applies to cannot be named",
                sel.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
            ));
            continue;
        };
        if sel.len() > 1 {
            warnings.push(format!(
                "{what} selects only the pods of {ns}/{name} that also carry {}; with no such workload in the input it is not applied to {ns}/{name}",
                sel.iter()
                    .filter(|(k, _)| **k != key)
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if seen.insert((ns.clone(), name.clone())) {
            out.push(Workload {
                namespace: ns,
                name: name.clone(),
                source: "selector".to_string(),
                labels: BTreeMap::from([(key, name)]),
                service_account: None,
                ports: Vec::new(),
                linkerd_default_policy: None,
            });
        }
    }
    for (ns, name) in extra {
        if seen.insert((ns.clone(), name.clone())) {
            out.push(Workload {
                namespace: ns.clone(),
                name: name.clone(),
                source: "option".to_string(),
                labels: BTreeMap::from([("app".to_string(), name.clone())]),
                service_account: None,
                ports: Vec::new(),
                linkerd_default_policy: None,
            });
        }
    }
    Ok(out)
}

/// Linkerd: which servers select which workloads and ports, which authorizations apply to each
/// server, what each port admits. Returns the ports per workload (indexed like `workloads`).
fn resolve_linkerd(
    b: &mut Builder,
    workloads: &[Workload],
    by_ns: &BTreeMap<&str, Vec<usize>>,
    warnings: &mut Vec<String>,
    budget: &mut Budget,
) -> Result<Vec<BTreeMap<String, LinkerdPortFacts>>, IngestError> {
    linkerd::resolve_authentications(&mut b.linkerd);
    let l = &mut b.linkerd;
    // Route → parent servers, per namespace.
    let mut route_servers: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in &b.facts.linkerd_routes {
        let servers = r
            .parents
            .iter()
            .filter_map(|p| p.strip_prefix("Server/").map(str::to_string))
            .collect();
        route_servers.insert(
            (r.namespace.clone(), format!("{}/{}", r.kind, r.name)),
            servers,
        );
    }
    let mut best: Vec<Option<Authn>> = vec![None; l.servers.len()];
    let mut names: Vec<Vec<String>> = vec![Vec::new(); l.servers.len()];
    for a in &l.authorizations {
        if !a.facts.in_effect {
            warnings.push(format!(
                "{} {}/{} is not in effect: {}",
                a.facts.kind,
                a.facts.namespace,
                a.facts.name,
                a.facts.not_in_effect_reason.as_deref().unwrap_or("")
            ));
            continue;
        }
        let authn = match a.facts.authentication.as_str() {
            "unauthenticated" => Authn::Unauthenticated,
            "tls-unauthenticated" => Authn::TlsUnauthenticated,
            _ => Authn::TlsAuthenticated,
        };
        for (si, s) in l.servers.iter().enumerate() {
            if s.facts.namespace != a.facts.namespace {
                continue;
            }
            let applies = match &a.target {
                Target::Servers(ServerSelector::Name(n)) | Target::Server(n) => *n == s.facts.name,
                Target::Servers(ServerSelector::Labels(sel)) => {
                    budget.check()?;
                    sel.matches(&s.labels)
                }
                Target::Namespace => true,
                // A route's authorizations admit its requests: count them for its servers, so
                // `admits` never claims less than the proxy lets in.
                Target::Route(r) => route_servers
                    .get(&(a.facts.namespace.clone(), r.clone()))
                    .is_some_and(|parents| parents.contains(&s.facts.name)),
            };
            if applies {
                best[si] = best[si].max(Some(authn));
                names[si].push(format!("{}/{}", a.facts.kind, a.facts.name));
            }
        }
    }
    for (si, s) in l.servers.iter_mut().enumerate() {
        let policy = s.facts.access_policy.as_deref().unwrap_or("deny");
        let admits = best[si].max(linkerd::access_policy_admits(policy));
        s.facts.admits = admits.map_or("nothing", Authn::admits).to_string();
        names[si].sort();
        s.facts.authorizations = std::mem::take(&mut names[si]);
    }
    // Servers in Linkerd's precedence order: creation time, then name.
    let mut order: Vec<usize> = (0..l.servers.len()).collect();
    order.sort_by_key(|&i| {
        age_key(
            &l.servers[i].facts.creation_timestamp,
            &l.servers[i].facts.name,
            "",
        )
    });
    let mut ports: Vec<BTreeMap<String, LinkerdPortFacts>> = vec![BTreeMap::new(); workloads.len()];
    let mut selected: Vec<Vec<String>> = vec![Vec::new(); l.servers.len()];
    for &si in &order {
        let s = &l.servers[si];
        if s.facts.selects != "pod" {
            continue;
        }
        for &w in by_ns.get(s.facts.namespace.as_str()).into_iter().flatten() {
            budget.check()?;
            let wl = &workloads[w];
            if !s.selector.matches(&wl.labels) {
                continue;
            }
            selected[si].push(wl.id());
            let port = match s.facts.port.parse::<u16>() {
                Ok(n) => vec![n.to_string()],
                Err(_) => {
                    let numbers: Vec<String> = wl
                        .ports
                        .iter()
                        .filter(|(name, _)| name.as_deref() == Some(s.facts.port.as_str()))
                        .map(|(_, n)| n.to_string())
                        .collect();
                    if numbers.is_empty() {
                        vec![s.facts.port.clone()]
                    } else {
                        numbers
                    }
                }
            };
            for p in port {
                match ports[w].get(&p) {
                    Some(prior) => warnings.push(format!(
                        "Server {}/{} also selects port {p} of workload {}, which Server {} already holds; Linkerd keeps the older one",
                        s.facts.namespace,
                        s.facts.name,
                        wl.id(),
                        prior.server
                    )),
                    None => {
                        budget.pairs(1)?;
                        ports[w].insert(
                            p,
                            LinkerdPortFacts {
                                server: s.facts.name.clone(),
                                admits: s.facts.admits.clone(),
                            },
                        );
                    }
                }
            }
        }
    }
    for (si, s) in l.servers.iter_mut().enumerate() {
        selected[si].sort();
        s.facts.workloads = std::mem::take(&mut selected[si]);
    }
    b.facts.linkerd_servers = l.servers.iter().map(|s| s.facts.clone()).collect();
    b.facts.linkerd_authorizations = l.authorizations.iter().map(|a| a.facts.clone()).collect();
    for ns in b.facts.namespaces.keys().cloned().collect::<Vec<_>>() {
        let posture = &mut b
            .facts
            .namespaces
            .get_mut(&ns)
            .expect("listed")
            .authorization;
        posture.linkerd_servers = l.servers.iter().filter(|s| s.facts.namespace == ns).count();
        posture.linkerd_authorizations = l
            .authorizations
            .iter()
            .filter(|a| a.facts.namespace == ns)
            .count();
    }
    Ok(ports)
}
