//! Istio objects: PeerAuthentication and AuthorizationPolicy checked as Istio's own validation
//! checks them (`pkg/config/validation/validation.go`, `pkg/config/security/security.go`, the
//! CRD schema), then summarised; DestinationRule TLS modes and VirtualService weights.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use super::schema::{self, Problem};
use super::{
    AuthzPolicyFacts, Builder, DestinationRuleFacts, InvalidWeights, MtlsMode, Obj, PeerAuthFacts,
    ROOT_NAMESPACE, RouteDestination, RouteFacts, at, labels, str_at, strings,
};
use crate::ingest::IngestError;

/// The annotation that makes an AuthorizationPolicy shadow-only.
const DRY_RUN: &str = "istio.io/dry-run";

/// Go's `strconv.ParseBool`, which Istio uses for `istio.io/dry-run`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn mode(v: Option<&Value>, field: &str) -> Result<MtlsMode, Problem> {
    match v {
        None | Some(Value::Null) => Ok(MtlsMode::Unset),
        Some(Value::String(s)) => match s.as_str() {
            "UNSET" => Ok(MtlsMode::Unset),
            "DISABLE" => Ok(MtlsMode::Disable),
            "PERMISSIVE" => Ok(MtlsMode::Permissive),
            "STRICT" => Ok(MtlsMode::Strict),
            other => Err(Problem::new(
                field,
                format!(
                    "has the unknown mTLS mode {other:?} (the CRD allows STRICT, PERMISSIVE, DISABLE or UNSET)"
                ),
            )),
        },
        Some(other) => Err(Problem::new(
            field,
            format!("has the mTLS mode {other}, which is not a string"),
        )),
    }
}

/// `validateWorkloadSelector`: no empty keys and no wildcards; an empty selector is only a
/// warning there.
fn check_selector(spec: &Value) -> Result<BTreeMap<String, String>, Problem> {
    let sel = labels(at(spec, &["selector", "matchLabels"]));
    for (k, v) in &sel {
        let field = format!("spec.selector.matchLabels.{k}");
        if k.is_empty() {
            return Err(Problem::new(field, "has an empty key, which Istio refuses"));
        }
        if k.contains('*') || v.contains('*') {
            return Err(Problem::new(
                field,
                format!("uses a wildcard ({k}={v}), which Istio refuses in selectors"),
            ));
        }
    }
    Ok(sel)
}

/// `ValidatePeerAuthentication` and the PeerAuthentication CRD.
fn check_peer_authentication(obj: &Obj) -> Result<PeerAuthFacts, Problem> {
    let spec = obj.spec();
    schema::check(spec, &schema::ISTIO_PEER_AUTHENTICATION, "spec")?;
    if obj.annotation(DRY_RUN).is_some() {
        return Err(Problem::new(
            format!("metadata.annotations.{DRY_RUN}"),
            "is an annotation only AuthorizationPolicy supports; Istio refuses it here",
        ));
    }
    let selector = check_selector(spec)?;
    let workload_mode = mode(at(spec, &["mtls", "mode"]), "spec.mtls.mode")?;
    let mut port_modes = BTreeMap::new();
    if let Some(ports) = spec.get("portLevelMtls").filter(|v| !v.is_null()) {
        let ports = ports.as_object().filter(|p| !p.is_empty()).ok_or_else(|| {
            Problem::new(
                "spec.portLevelMtls",
                "is empty; port level mTLS, if defined, must have at least one element",
            )
        })?;
        if selector.is_empty() {
            return Err(Problem::new(
                "spec.portLevelMtls",
                "is set without a workload selector; Istio refuses port-level mTLS on a mesh or namespace PeerAuthentication",
            ));
        }
        for (port, setting) in ports {
            let field = format!("spec.portLevelMtls.{port}");
            let p: u32 = port
                .parse()
                .ok()
                .filter(|p| (1..=65535).contains(p))
                .ok_or_else(|| {
                    Problem::new(
                        &field,
                        format!("names the port {port:?}; ports must be between 1 and 65535"),
                    )
                })?;
            port_modes.insert(p, mode(setting.get("mode"), &format!("{field}.mode"))?);
        }
    }
    let scope = match (selector.is_empty(), obj.ns() == ROOT_NAMESPACE) {
        (true, true) => "mesh",
        (true, false) => "namespace",
        // ComposePeerAuthentication skips selector policies in the root namespace.
        (false, true) => "ignored",
        (false, false) => "workload",
    };
    Ok(PeerAuthFacts {
        namespace: obj.ns().to_string(),
        name: obj.name().to_string(),
        scope: scope.to_string(),
        selector,
        workloads: Vec::new(),
        mode: workload_mode,
        port_modes,
        creation_timestamp: obj.creation_timestamp(),
    })
}

/// Keys of `when` conditions and the values they accept (`security.ValidateAttribute`).
fn check_condition(key: &str, values: &[String], field: &str) -> Result<(), Problem> {
    let bad = |why: String| Err(Problem::new(field, why));
    if values.iter().any(String::is_empty) {
        return bad(format!("has an empty value for key {key}"));
    }
    let map_key = |k: &str| {
        let open = k.find('[');
        matches!(open, Some(o) if k.ends_with(']') && o > 0 && o < k.len() - 2)
    };
    if key.starts_with("request.headers")
        || key.starts_with("request.auth.claims")
        || key.starts_with("experimental.envoy.filters.")
    {
        if !map_key(key) {
            return bad(format!(
                "has the key {key:?}, which should have the form a[b]"
            ));
        }
        return Ok(());
    }
    match key {
        "source.ip" | "remote.ip" | "destination.ip" => check_ips(values, field),
        "source.serviceAccount" => check_service_accounts(values, field),
        "source.trustDomain" => check_wildcards(values, field),
        "destination.port" => check_ports(values, field),
        "source.namespace"
        | "source.principal"
        | "request.auth.principal"
        | "request.auth.audiences"
        | "request.auth.presenter"
        | "connection.sni" => Ok(()),
        "destination.namespace" => bad(format!(
            "uses the attribute {key}, which Istio replaced by metadata.namespace"
        )),
        k if k.starts_with("destination.labels") => bad(format!(
            "uses the attribute {key}, which Istio replaced by the workload selector"
        )),
        "destination.name" | "destination.user" => bad(format!(
            "uses the deprecated attribute {key} (only supported in v1alpha1)"
        )),
        other => bad(format!("uses the unknown attribute {other:?}")),
    }
}

fn check_ips(values: &[String], field: &str) -> Result<(), Problem> {
    for v in values {
        let ok = match v.split_once('/') {
            Some((addr, bits)) => {
                let addr: Option<IpAddr> = addr.parse().ok();
                let max = match addr {
                    Some(IpAddr::V4(_)) => 32,
                    Some(IpAddr::V6(_)) => 128,
                    None => 0,
                };
                addr.is_some()
                    && !bits.is_empty()
                    && bits.bytes().all(|b| b.is_ascii_digit())
                    && bits.parse::<u32>().is_ok_and(|b| b <= max)
            }
            None => v.parse::<IpAddr>().is_ok(),
        };
        if !ok {
            return Err(Problem::new(
                field,
                format!("has {v:?}, which is not an IP address or CIDR range"),
            ));
        }
    }
    Ok(())
}

fn check_ports(values: &[String], field: &str) -> Result<(), Problem> {
    for v in values {
        if !v.parse::<u32>().is_ok_and(|p| p <= 65535) {
            return Err(Problem::new(field, format!("has the bad port {v:?}")));
        }
    }
    Ok(())
}

fn check_wildcards(values: &[String], field: &str) -> Result<(), Problem> {
    for v in values {
        let n = v.matches('*').count();
        if n > 1 || (n == 1 && v != "*" && !v.starts_with('*') && !v.ends_with('*')) {
            return Err(Problem::new(
                field,
                format!("has {v:?}; a wildcard is allowed only once, at the start or the end"),
            ));
        }
    }
    Ok(())
}

fn check_service_accounts(values: &[String], field: &str) -> Result<(), Problem> {
    if values.len() > 16 {
        return Err(Problem::new(field, "has more than 16 values"));
    }
    for v in values {
        let ok = !v.is_empty()
            && !v.contains('*')
            && v.len() <= 320
            && match v.split_once('/') {
                Some((ns, sa)) => !ns.is_empty() && !sa.is_empty() && !sa.contains('/'),
                None => true,
            };
        if !ok {
            return Err(Problem::new(
                field,
                format!(
                    "has {v:?}; expected 'serviceAccount' or 'namespace/serviceAccount' without wildcards"
                ),
            ));
        }
    }
    Ok(())
}

/// `CheckValidPathTemplate`: `{*}` and `{**}` only as whole segments, `{**}` last.
fn check_paths(values: &[String], field: &str) -> Result<(), Problem> {
    for path in values {
        let templated = path.contains("{*}") || path.contains("{**}");
        let mut seen_any = false;
        for glob in path.trim_matches('/').split('/') {
            if (glob == "{*}" || glob == "{**}") && !seen_any {
                seen_any = glob == "{**}";
                continue;
            }
            let bad = if glob == "{*}" || glob == "{**}" {
                Some("{**} is not the last operator")
            } else if glob.contains(['{', '}']) {
                Some("it contains '{' or '}' beyond a supported path template")
            } else if templated
                && !glob
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()+,;:@=".contains(&b))
            {
                Some("a segment is not a valid literal")
            } else {
                None
            };
            if let Some(why) = bad {
                return Err(Problem::new(
                    field,
                    format!("has the invalid path {path:?}: {why}"),
                ));
            }
        }
    }
    Ok(())
}

/// `validatePolicyTargetReference`.
fn check_target_ref(r: &Value, field: &str) -> Result<String, Problem> {
    let name = str_at(r, &["name"]).unwrap_or("");
    let kind = str_at(r, &["kind"]).unwrap_or("");
    let group = str_at(r, &["group"]).unwrap_or("");
    if name.is_empty() {
        return Err(Problem::new(format!("{field}.name"), "must be set"));
    }
    if !str_at(r, &["namespace"]).unwrap_or("").is_empty() {
        return Err(Problem::new(
            format!("{field}.namespace"),
            "must not be set; cross namespace referencing is not supported",
        ));
    }
    let allowed = [
        ("", "Service"),
        ("networking.istio.io", "ServiceEntry"),
        ("gateway.networking.k8s.io", "Gateway"),
        ("gateway.networking.k8s.io", "GatewayClass"),
    ];
    let canonical = if group == "core" { "" } else { group };
    if !allowed.contains(&(canonical, kind)) {
        return Err(Problem::new(
            format!("{field}.kind"),
            format!(
                "is {group}/{kind}; a targetRef must name a Service, ServiceEntry, Gateway or GatewayClass"
            ),
        ));
    }
    Ok(format!("{kind}/{name}"))
}

/// Checks one `rules[i]` as `ValidateAuthorizationPolicy` does; returns whether the rule has
/// only HTTP attributes (which a DENY policy applies to TCP traffic as deny-all).
fn check_rule(rule: &Value, i: usize, action: &str) -> Result<bool, Problem> {
    let here = format!("spec.rules[{i}]");
    if rule.is_null() {
        return Err(Problem::new(here, "must not be null"));
    }
    let custom = action == "CUSTOM";
    let (mut from_exists, mut to_exists, mut tcp_from, mut tcp_to) = (false, false, false, false);
    if let Some(from) = rule.get("from").filter(|v| !v.is_null()) {
        let from = from.as_array().map(Vec::as_slice).unwrap_or_default();
        if from.is_empty() {
            return Err(Problem::new(format!("{here}.from"), "must not be empty"));
        }
        for (j, f) in from.iter().enumerate() {
            let field = format!("{here}.from[{j}].source");
            let Some(src) = f.get("source").filter(|v| !v.is_null()) else {
                return Err(Problem::new(field, "must not be null"));
            };
            from_exists = true;
            let list = |k: &str| strings(src.get(k));
            let present = |k: &str| src.get(k).is_some_and(|v| !v.is_null());
            let count = |ks: &[&str]| ks.iter().map(|k| list(k).len()).sum::<usize>();
            if count(&["principals", "notPrincipals", "namespaces", "notNamespaces"]) > 0
                && count(&["serviceAccounts", "notServiceAccounts"]) > 0
            {
                return Err(Problem::new(
                    field,
                    "sets serviceAccounts together with namespaces or principals, which cannot be combined",
                ));
            }
            const ALL: [&str; 14] = [
                "principals",
                "notPrincipals",
                "requestPrincipals",
                "notRequestPrincipals",
                "namespaces",
                "notNamespaces",
                "serviceAccounts",
                "notServiceAccounts",
                "ipBlocks",
                "notIpBlocks",
                "remoteIpBlocks",
                "notRemoteIpBlocks",
                "trustDomains",
                "notTrustDomains",
            ];
            if count(&ALL) == 0 {
                return Err(Problem::new(field, "must not be empty"));
            }
            for k in ALL {
                let values = list(k);
                let kf = format!("{field}.{k}");
                if values.iter().any(String::is_empty) {
                    return Err(Problem::new(kf, "has an empty value"));
                }
                match k {
                    "ipBlocks" | "notIpBlocks" | "remoteIpBlocks" | "notRemoteIpBlocks" => {
                        check_ips(&values, &kf)?
                    }
                    "serviceAccounts" | "notServiceAccounts" => {
                        check_service_accounts(&values, &kf)?
                    }
                    "trustDomains" | "notTrustDomains" => {
                        check_wildcards(&values, &kf)?;
                        if let Some(v) = values.iter().find(|v| v.contains('/')) {
                            return Err(Problem::new(
                                kf,
                                format!("has {v:?}; a trust domain must not contain '/'"),
                            ));
                        }
                    }
                    _ => {}
                }
                let identity_based = !matches!(
                    k,
                    "ipBlocks" | "notIpBlocks" | "remoteIpBlocks" | "notRemoteIpBlocks"
                );
                if custom && identity_based && !values.is_empty() {
                    return Err(Problem::new(kf, "is not supported with the CUSTOM action"));
                }
            }
            tcp_from |= [
                "principals",
                "notPrincipals",
                "ipBlocks",
                "notIpBlocks",
                "namespaces",
                "notNamespaces",
                "remoteIpBlocks",
                "notRemoteIpBlocks",
                "serviceAccounts",
                "notServiceAccounts",
            ]
            .iter()
            .any(|k| present(k));
        }
    }
    if let Some(to) = rule.get("to").filter(|v| !v.is_null()) {
        let to = to.as_array().map(Vec::as_slice).unwrap_or_default();
        if to.is_empty() {
            return Err(Problem::new(format!("{here}.to"), "must not be empty"));
        }
        for (j, t) in to.iter().enumerate() {
            let field = format!("{here}.to[{j}].operation");
            let Some(op) = t.get("operation").filter(|v| !v.is_null()) else {
                return Err(Problem::new(field, "must not be null"));
            };
            to_exists = true;
            const ALL: [&str; 8] = [
                "ports",
                "notPorts",
                "methods",
                "notMethods",
                "paths",
                "notPaths",
                "hosts",
                "notHosts",
            ];
            if ALL.iter().all(|k| strings(op.get(*k)).is_empty()) {
                return Err(Problem::new(field, "must not be empty"));
            }
            for k in ALL {
                let values = strings(op.get(k));
                let kf = format!("{field}.{k}");
                if values.iter().any(String::is_empty) {
                    return Err(Problem::new(kf, "has an empty value"));
                }
                match k {
                    "ports" | "notPorts" => check_ports(&values, &kf)?,
                    "paths" | "notPaths" => check_paths(&values, &kf)?,
                    _ => {}
                }
            }
            tcp_to |= ["ports", "notPorts"]
                .iter()
                .any(|k| op.get(*k).is_some_and(|v| !v.is_null()));
        }
    }
    for (j, c) in rule
        .get("when")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("{here}.when[{j}]");
        if c.is_null() {
            return Err(Problem::new(field, "must not be null"));
        }
        let key = str_at(c, &["key"]).unwrap_or("");
        if key.is_empty() {
            return Err(Problem::new(format!("{field}.key"), "must not be empty"));
        }
        let (values, not_values) = (strings(c.get("values")), strings(c.get("notValues")));
        if values.is_empty() && not_values.is_empty() {
            return Err(Problem::new(
                field,
                format!("sets neither values nor notValues for key {key}"),
            ));
        }
        check_condition(key, &values, &format!("{field}.values"))?;
        check_condition(key, &not_values, &format!("{field}.notValues"))?;
        let identity_key = matches!(
            key,
            "source.namespace"
                | "source.serviceAccount"
                | "source.trustDomain"
                | "source.principal"
        ) || key.starts_with("request.auth.");
        if custom && identity_key {
            return Err(Problem::new(
                format!("{field}.key"),
                format!("is {key}, which is not supported with the CUSTOM action"),
            ));
        }
    }
    Ok((from_exists && !to_exists && !tcp_from) || (to_exists && !tcp_to))
}

/// `ValidateAuthorizationPolicy`, the dry-run annotation check and the CRD.
fn check_authorization_policy(
    obj: &Obj,
    warnings: &mut Vec<String>,
) -> Result<AuthzPolicyFacts, Problem> {
    let spec = obj.spec();
    schema::check(spec, &schema::ISTIO_AUTHORIZATION_POLICY, "spec")?;
    let action = match spec.get("action") {
        None | Some(Value::Null) => "ALLOW".to_string(),
        Some(Value::String(a)) if ["ALLOW", "DENY", "AUDIT", "CUSTOM"].contains(&a.as_str()) => {
            a.clone()
        }
        Some(other) => {
            return Err(Problem::new(
                "spec.action",
                format!("is {other}; the CRD allows ALLOW, DENY, AUDIT or CUSTOM"),
            ));
        }
    };
    let dry_run = match obj.annotation(DRY_RUN) {
        None => false,
        Some(v) => {
            let field = format!("metadata.annotations.{DRY_RUN}");
            if action != "ALLOW" && action != "DENY" {
                return Err(Problem::new(
                    field,
                    format!(
                        "is set on a {action} policy; Istio supports it only for ALLOW and DENY"
                    ),
                ));
            }
            parse_go_bool(v)
                .ok_or_else(|| Problem::new(field, format!("is {v:?}, which is not a boolean")))?
        }
    };
    let present = |k: &str| spec.get(k).is_some_and(|v| !v.is_null());
    let target_refs_given = spec
        .get("targetRefs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let set = [present("selector"), present("targetRef"), target_refs_given]
        .iter()
        .filter(|b| **b)
        .count();
    if set > 1 {
        return Err(Problem::new(
            "spec.selector",
            "is set together with targetRef or targetRefs; only one of them can be set",
        ));
    }
    let selector = check_selector(spec)?;
    let mut target_refs = Vec::new();
    if let Some(r) = spec.get("targetRef").filter(|v| !v.is_null()) {
        target_refs.push(check_target_ref(r, "spec.targetRef")?);
    }
    for (i, r) in spec
        .get("targetRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        target_refs.push(check_target_ref(r, &format!("spec.targetRefs[{i}]"))?);
    }
    let rules_absent = !present("rules");
    let provider = str_at(spec, &["provider", "name"]).map(str::to_string);
    if action == "CUSTOM" {
        if rules_absent {
            return Err(Problem::new(
                "spec.rules",
                "is missing on a CUSTOM policy, which would never be triggered (add an empty rule {} to trigger it for every request)",
            ));
        }
        if provider.as_deref().unwrap_or("").is_empty() {
            return Err(Problem::new(
                "spec.provider.name",
                "must not be empty for the CUSTOM action",
            ));
        }
    } else if present("provider") {
        return Err(Problem::new(
            "spec.provider",
            format!("must not be set with the {action} action, only with CUSTOM"),
        ));
    }
    if action == "DENY" && rules_absent {
        return Err(Problem::new(
            "spec.rules",
            "is missing on a DENY policy, which would never be triggered (add an empty rule {} to deny every request)",
        ));
    }
    let rules: Vec<Value> = spec
        .get("rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        let http_only = check_rule(rule, i, &action)?;
        if http_only && action == "DENY" {
            warnings.push(format!(
                "{} rule {i} uses only HTTP attributes, so Istio applies it to TCP ports under its scope as deny-all (specify a port to avoid that)",
                obj.oref.id()
            ));
        }
    }
    let empty_rule = |r: &Value| {
        ["from", "to", "when"]
            .iter()
            .all(|k| r.get(*k).is_none_or(Value::is_null))
    };
    let scope = if !target_refs.is_empty() {
        "target-ref"
    } else if !selector.is_empty() {
        "workload"
    } else if obj.ns() == ROOT_NAMESPACE {
        "mesh"
    } else {
        "namespace"
    };
    Ok(AuthzPolicyFacts {
        namespace: obj.ns().to_string(),
        name: obj.name().to_string(),
        allow_nothing: action == "ALLOW" && rules.is_empty(),
        allow_all: action == "ALLOW" && rules.iter().any(empty_rule),
        deny_all: action == "DENY" && rules.iter().any(empty_rule),
        action,
        scope: scope.to_string(),
        selector,
        target_refs,
        workloads: Vec::new(),
        rule_count: rules.len(),
        dry_run,
        provider,
    })
}

impl Builder<'_> {
    pub(super) fn peer_authentication(&mut self, obj: &Obj) -> Result<(), IngestError> {
        match check_peer_authentication(obj) {
            Ok(pa) => {
                if pa.scope == "ignored" {
                    self.facts.warnings.push(format!(
                        "{} has a workload selector in the root namespace {ROOT_NAMESPACE}; Istio never applies such a PeerAuthentication",
                        obj.oref.id()
                    ));
                }
                if obj
                    .spec()
                    .get("selector")
                    .is_some_and(|s| !s.is_null() && pa.selector.is_empty())
                {
                    self.facts.warnings.push(format!(
                        "{} has a workload selector without labels; Istio applies it like no selector",
                        obj.oref.id()
                    ));
                }
                self.facts.peer_authentications.push(pa);
                Ok(())
            }
            Err(p) => self.invalid(obj, p),
        }
    }

    pub(super) fn istio_authz(&mut self, obj: &Obj) -> Result<(), IngestError> {
        let mut warnings = Vec::new();
        match check_authorization_policy(obj, &mut warnings) {
            Ok(ap) => {
                self.facts.warnings.extend(warnings);
                if obj
                    .spec()
                    .get("selector")
                    .is_some_and(|s| !s.is_null() && ap.selector.is_empty())
                {
                    self.facts.warnings.push(format!(
                        "{} has a workload selector without labels; Istio applies it to every workload of the namespace",
                        obj.oref.id()
                    ));
                }
                if ap.scope == "target-ref" {
                    self.facts.warnings.push(format!(
                        "{} is attached by targetRef to {}; Istio applies it at that gateway or waypoint, never to sidecar workloads",
                        obj.oref.id(),
                        ap.target_refs.join(", ")
                    ));
                }
                self.facts.authorization_policies.push(ap);
                Ok(())
            }
            Err(p) => self.invalid(obj, p),
        }
    }

    pub(super) fn destination_rule(&mut self, obj: &Obj) -> Result<(), IngestError> {
        const MODES: [&str; 4] = ["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"];
        let spec = obj.spec();
        let src = self.src;
        let tls = |v: Option<&Value>, field: &str| -> Result<Option<String>, IngestError> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(m)) if MODES.contains(&m.as_str()) => Ok(Some(m.clone())),
                Some(other) => Err(src.error(obj, field, format!("{} has the TLS mode {other}, expected DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL", obj.oref.id()))),
            }
        };
        let host = str_at(spec, &["host"])
            .ok_or_else(|| src.error(obj, "spec.host", format!("{} has no host", obj.oref.id())))?
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
                        src.error(
                            obj,
                            &format!("{field}.port.number"),
                            format!(
                                "{} has a port-level TLS setting without a port number",
                                obj.oref.id()
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
            namespace: obj.ns().to_string(),
            name: obj.name().to_string(),
            host,
            tls_mode,
            port_tls_modes,
            subset_tls_modes,
        });
        Ok(())
    }

    pub(super) fn virtual_service(&mut self, obj: &Obj) -> Result<(), IngestError> {
        let spec = obj.spec();
        let src = self.src;
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
                            src.error(
                                obj,
                                &format!("{field}.destination.host"),
                                format!(
                                    "{} route {label} has a destination without a host",
                                    obj.oref.id()
                                ),
                            )
                        })?
                        .to_string();
                    let weight = match d.get("weight") {
                        None | Some(Value::Null) => None,
                        Some(w) => Some(w.as_i64().ok_or_else(|| {
                            src.error(
                                obj,
                                &format!("{field}.weight"),
                                format!(
                                    "{} route {label} has the weight {w}, which is not an integer",
                                    obj.oref.id()
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
                        namespace: obj.ns().to_string(),
                        virtual_service: obj.name().to_string(),
                        route: label.clone(),
                        weights: destinations.iter().map(|d| d.weight.unwrap_or(0)).collect(),
                        sum: weight_sum,
                    });
                }
                self.facts.routes.push(RouteFacts {
                    namespace: obj.ns().to_string(),
                    virtual_service: obj.name().to_string(),
                    route: label,
                    destinations,
                    weight_sum,
                });
            }
        }
        Ok(())
    }
}
