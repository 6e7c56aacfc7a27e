//! The structural schemas of the custom resources whose meaning evl derives, as their CRDs
//! publish them (Istio `manifests/charts/base/files/crd-all.gen.yaml`, Linkerd
//! `charts/linkerd-crds/templates/policy/*.yaml`). `kubectl apply` validates against these
//! schemas strictly (unknown or mistyped fields are refused since kubectl 1.27), so a field the
//! schema does not know is never in effect; evl refuses it the same way, naming the field.

use serde_json::Value;

/// What a field may hold. `null` is accepted everywhere: Kubernetes treats it as absent.
pub(super) enum Shape {
    /// A string.
    Str,
    /// A boolean.
    Bool,
    /// An integer or a string (`x-kubernetes-int-or-string`).
    IntOrStr,
    /// A list of strings.
    Strs,
    /// A map of string to string.
    StrMap,
    /// Anything (`x-kubernetes-preserve-unknown-fields`).
    Any,
    /// An object with exactly these fields.
    Obj(&'static [(&'static str, Shape)]),
    /// A list of values of one shape.
    List(&'static Shape),
    /// A map of string keys to values of one shape.
    Map(&'static Shape),
}

/// A field that breaks a schema or a validation rule: its path and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    pub field: String,
    pub reason: String,
}

impl Problem {
    pub(super) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Checks `v` against `shape`; `path` names `v` (e.g. `spec`).
pub(super) fn check(v: &Value, shape: &Shape, path: &str) -> Result<(), Problem> {
    if v.is_null() {
        return Ok(());
    }
    let wrong = |what: &str| {
        Err(Problem::new(
            path,
            format!("is {}, but the schema wants {what}", describe(v)),
        ))
    };
    match shape {
        Shape::Any => Ok(()),
        Shape::Str if v.is_string() => Ok(()),
        Shape::Str => wrong("a string"),
        Shape::Bool if v.is_boolean() => Ok(()),
        Shape::Bool => wrong("true or false"),
        Shape::IntOrStr if v.is_string() || v.is_i64() || v.is_u64() => Ok(()),
        Shape::IntOrStr => wrong("an integer or a string"),
        Shape::Strs => check(v, &Shape::List(&Shape::Str), path),
        Shape::StrMap => check(v, &Shape::Map(&Shape::Str), path),
        Shape::List(item) => {
            let Some(items) = v.as_array() else {
                return wrong("a list");
            };
            for (i, x) in items.iter().enumerate() {
                check(x, item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Shape::Map(value) => {
            let Some(m) = v.as_object() else {
                return wrong("a map");
            };
            for (k, x) in m {
                check(x, value, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        Shape::Obj(fields) => {
            let Some(m) = v.as_object() else {
                return wrong("an object");
            };
            for (k, x) in m {
                let Some((_, s)) = fields.iter().find(|(name, _)| name == k) else {
                    let known: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
                    return Err(Problem::new(
                        format!("{path}.{k}"),
                        format!(
                            "is not a field of {path} (the schema knows {})",
                            known.join(", ")
                        ),
                    ));
                };
                check(x, s, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

// Istio `security.istio.io` (v1 and v1beta1 share one schema).

const WORKLOAD_SELECTOR: Shape = Shape::Obj(&[("matchLabels", Shape::StrMap)]);
const POLICY_TARGET_REF: Shape = Shape::Obj(&[
    ("group", Shape::Str),
    ("kind", Shape::Str),
    ("name", Shape::Str),
    ("namespace", Shape::Str),
]);
const SOURCE: Shape = Shape::Obj(&[
    ("principals", Shape::Strs),
    ("notPrincipals", Shape::Strs),
    ("requestPrincipals", Shape::Strs),
    ("notRequestPrincipals", Shape::Strs),
    ("namespaces", Shape::Strs),
    ("notNamespaces", Shape::Strs),
    ("serviceAccounts", Shape::Strs),
    ("notServiceAccounts", Shape::Strs),
    ("ipBlocks", Shape::Strs),
    ("notIpBlocks", Shape::Strs),
    ("remoteIpBlocks", Shape::Strs),
    ("notRemoteIpBlocks", Shape::Strs),
    ("trustDomains", Shape::Strs),
    ("notTrustDomains", Shape::Strs),
]);
const OPERATION: Shape = Shape::Obj(&[
    ("hosts", Shape::Strs),
    ("notHosts", Shape::Strs),
    ("ports", Shape::Strs),
    ("notPorts", Shape::Strs),
    ("methods", Shape::Strs),
    ("notMethods", Shape::Strs),
    ("paths", Shape::Strs),
    ("notPaths", Shape::Strs),
]);
const CONDITION: Shape = Shape::Obj(&[
    ("key", Shape::Str),
    ("values", Shape::Strs),
    ("notValues", Shape::Strs),
]);
const RULE: Shape = Shape::Obj(&[
    ("from", Shape::List(&Shape::Obj(&[("source", SOURCE)]))),
    ("to", Shape::List(&Shape::Obj(&[("operation", OPERATION)]))),
    ("when", Shape::List(&CONDITION)),
]);

/// `AuthorizationPolicy.spec`.
pub(super) const ISTIO_AUTHORIZATION_POLICY: Shape = Shape::Obj(&[
    ("selector", WORKLOAD_SELECTOR),
    ("targetRef", POLICY_TARGET_REF),
    ("targetRefs", Shape::List(&POLICY_TARGET_REF)),
    ("rules", Shape::List(&RULE)),
    ("action", Shape::Str),
    ("provider", Shape::Obj(&[("name", Shape::Str)])),
]);

/// `PeerAuthentication.spec`.
pub(super) const ISTIO_PEER_AUTHENTICATION: Shape = Shape::Obj(&[
    ("selector", WORKLOAD_SELECTOR),
    ("mtls", Shape::Obj(&[("mode", Shape::Str)])),
    (
        "portLevelMtls",
        Shape::Map(&Shape::Obj(&[("mode", Shape::Str)])),
    ),
]);

// Linkerd `policy.linkerd.io`.

const LABEL_SELECTOR: Shape = Shape::Obj(&[
    ("matchLabels", Shape::Any),
    (
        "matchExpressions",
        Shape::List(&Shape::Obj(&[
            ("key", Shape::Str),
            ("operator", Shape::Str),
            ("values", Shape::Strs),
        ])),
    ),
]);
const NETWORK: Shape = Shape::Obj(&[("cidr", Shape::Str), ("except", Shape::Strs)]);
const TARGET_REF: Shape = Shape::Obj(&[
    ("group", Shape::Str),
    ("kind", Shape::Str),
    ("name", Shape::Str),
    ("namespace", Shape::Str),
]);

/// `Server.spec` (v1beta1 … v1beta3; `accessPolicy` since v1beta2, `externalWorkloadSelector`
/// since v1beta2).
pub(super) const LINKERD_SERVER: Shape = Shape::Obj(&[
    ("podSelector", LABEL_SELECTOR),
    ("externalWorkloadSelector", LABEL_SELECTOR),
    ("port", Shape::IntOrStr),
    ("proxyProtocol", Shape::Str),
    ("accessPolicy", Shape::Str),
]);

/// `ServerAuthorization.spec`.
pub(super) const LINKERD_SERVER_AUTHORIZATION: Shape = Shape::Obj(&[
    (
        "server",
        Shape::Obj(&[("name", Shape::Str), ("selector", LABEL_SELECTOR)]),
    ),
    (
        "client",
        Shape::Obj(&[
            ("networks", Shape::List(&NETWORK)),
            ("unauthenticated", Shape::Bool),
            (
                "meshTLS",
                Shape::Obj(&[
                    ("unauthenticatedTLS", Shape::Bool),
                    ("identities", Shape::Strs),
                    (
                        "serviceAccounts",
                        Shape::List(&Shape::Obj(&[
                            ("name", Shape::Str),
                            ("namespace", Shape::Str),
                        ])),
                    ),
                ]),
            ),
        ]),
    ),
]);

/// `AuthorizationPolicy.spec` (policy.linkerd.io).
pub(super) const LINKERD_AUTHORIZATION_POLICY: Shape = Shape::Obj(&[
    ("targetRef", TARGET_REF),
    ("requiredAuthenticationRefs", Shape::List(&TARGET_REF)),
]);

/// `MeshTLSAuthentication.spec`.
pub(super) const LINKERD_MESH_TLS_AUTHENTICATION: Shape = Shape::Obj(&[
    ("identities", Shape::Strs),
    ("identityRefs", Shape::List(&TARGET_REF)),
]);

/// `NetworkAuthentication.spec`.
pub(super) const LINKERD_NETWORK_AUTHENTICATION: Shape =
    Shape::Obj(&[("networks", Shape::List(&NETWORK))]);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_and_mistyped_fields_are_named() {
        let spec = json!({"rules": [{"from": [{"source": {"principal": ["a"]}}]}]});
        let p = check(&spec, &ISTIO_AUTHORIZATION_POLICY, "spec").unwrap_err();
        assert_eq!(p.field, "spec.rules[0].from[0].source.principal");
        let spec = json!({"selector": {"matchLabels": {"version": 1}}});
        let p = check(&spec, &ISTIO_AUTHORIZATION_POLICY, "spec").unwrap_err();
        assert_eq!(p.field, "spec.selector.matchLabels.version");
        assert!(p.reason.contains("a number") && p.reason.contains("a string"));
        assert!(check(&json!({"rules": null}), &ISTIO_AUTHORIZATION_POLICY, "spec").is_ok());
    }
}
