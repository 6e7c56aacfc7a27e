//! Kubernetes itself: API groups, which kinds are namespaced, the workloads whose pod labels
//! policies select, and label selectors.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::schema::Problem;
use super::{Obj, at, labels, str_at, strings};

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → the core group `""`).
pub(super) fn group_of(api_version: &str) -> String {
    match api_version.split_once('/') {
        Some((group, _)) => group.to_string(),
        None => String::new(),
    }
}

/// Whether objects of a kind live in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    Namespaced,
    Cluster,
    /// A kind evl does not know: its namespace is taken as written.
    Unknown,
}

/// The scope of `kind` in `group`, for the kinds evl knows (the Kubernetes built-ins, every
/// Istio and Linkerd policy kind, Gateway API).
pub(super) fn scope_of(group: &str, kind: &str) -> Scope {
    const CLUSTER: &[(&str, &str)] = &[
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "ComponentStatus"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration",
        ),
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
        ),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        (
            "admissionregistration.k8s.io",
            "ValidatingAdmissionPolicyBinding",
        ),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        (
            "admissionregistration.k8s.io",
            "MutatingAdmissionPolicyBinding",
        ),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("node.k8s.io", "RuntimeClass"),
        ("apiregistration.k8s.io", "APIService"),
        ("gateway.networking.k8s.io", "GatewayClass"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("certificates.k8s.io", "ClusterTrustBundle"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("policy", "PodSecurityPolicy"),
        ("cert-manager.io", "ClusterIssuer"),
    ];
    const NAMESPACED_CORE: &[(&str, &str)] = &[
        ("", "Service"),
        ("", "ServiceAccount"),
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "Endpoints"),
        ("", "PersistentVolumeClaim"),
        ("", "ResourceQuota"),
        ("", "LimitRange"),
        ("", "Event"),
        ("apps", "ControllerRevision"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("networking.k8s.io", "Ingress"),
        ("policy", "PodDisruptionBudget"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("coordination.k8s.io", "Lease"),
        ("cert-manager.io", "Certificate"),
        ("cert-manager.io", "Issuer"),
    ];
    if CLUSTER.contains(&(group, kind)) {
        return Scope::Cluster;
    }
    // Every Istio and Linkerd kind is namespaced; so is every Gateway API kind but GatewayClass.
    if is_workload(group, kind)
        || NAMESPACED_CORE.contains(&(group, kind))
        || group.ends_with(".istio.io")
        || group.ends_with(".linkerd.io")
        || group == "gateway.networking.k8s.io"
    {
        return Scope::Namespaced;
    }
    Scope::Unknown
}

/// Kinds whose pods policies select, and where their pod template is.
const WORKLOADS: &[(&str, &str, &[&str])] = &[
    ("apps", "Deployment", &["spec", "template"]),
    ("apps", "StatefulSet", &["spec", "template"]),
    ("apps", "DaemonSet", &["spec", "template"]),
    ("apps", "ReplicaSet", &["spec", "template"]),
    ("", "ReplicationController", &["spec", "template"]),
    ("batch", "Job", &["spec", "template"]),
    (
        "batch",
        "CronJob",
        &["spec", "jobTemplate", "spec", "template"],
    ),
    ("argoproj.io", "Rollout", &["spec", "template"]),
    ("", "Pod", &[]),
];

pub(super) fn is_workload(group: &str, kind: &str) -> bool {
    WORKLOADS.iter().any(|(g, k, _)| *g == group && *k == kind)
}

/// A workload object of the input: the labels, service account and ports of its pods.
#[derive(Debug, Clone)]
pub(super) struct WorkloadObject {
    pub namespace: String,
    pub name: String,
    pub kind: String,
    pub labels: BTreeMap<String, String>,
    pub service_account: String,
    /// Container ports: (name, number).
    pub ports: Vec<(Option<String>, u16)>,
    /// The pod template's `config.linkerd.io/default-inbound-policy` annotation.
    pub linkerd_default_policy: Option<String>,
}

/// The workload an object describes, read from its pod template (a Pod is its own template).
pub(super) fn workload(obj: &Obj) -> Option<WorkloadObject> {
    let path = WORKLOADS
        .iter()
        .find(|(g, k, _)| *g == obj.group && *k == obj.oref.kind)?
        .2;
    let template = at(&obj.value, path)?;
    let pod_spec = template.get("spec").unwrap_or(&Value::Null);
    let ports = pod_spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| {
            c.get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|p| {
            let n = p.get("containerPort")?.as_u64()?;
            let n = u16::try_from(n).ok().filter(|n| *n > 0)?;
            Some((str_at(p, &["name"]).map(str::to_string), n))
        })
        .collect();
    Some(WorkloadObject {
        namespace: obj.ns().to_string(),
        name: obj.name().to_string(),
        kind: obj.oref.kind.clone(),
        labels: labels(at(template, &["metadata", "labels"])),
        service_account: str_at(pod_spec, &["serviceAccountName"])
            .or_else(|| str_at(pod_spec, &["serviceAccount"]))
            .unwrap_or("default")
            .to_string(),
        ports,
        linkerd_default_policy: str_at(
            template,
            &[
                "metadata",
                "annotations",
                super::linkerd::DEFAULT_POLICY_ANNOTATION,
            ],
        )
        .map(str::to_string),
    })
}

/// Istio's workload selector rule: every `matchLabels` pair is among the pod's labels
/// (`labels.Instance.SubsetOf` in `pilot/pkg/model/policyattachment.go`).
pub(super) fn subset_of(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A Kubernetes label selector (`matchLabels` and `matchExpressions`, ANDed), as Linkerd
/// matches it (`policy-controller/k8s/api/src/labels.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
    pub expressions: Vec<Expression>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Expression {
    pub key: String,
    pub operator: String,
    pub values: Option<BTreeSet<String>>,
}

impl LabelSelector {
    /// Reads a selector at `field`; the operators are those of the CRDs' enum.
    pub(super) fn parse(v: Option<&Value>, field: &str) -> Result<Self, Problem> {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Ok(LabelSelector::default());
        };
        let mut match_labels = BTreeMap::new();
        if let Some(m) = v.get("matchLabels").and_then(Value::as_object) {
            for (k, x) in m {
                let Some(s) = x.as_str() else {
                    return Err(Problem::new(
                        format!("{field}.matchLabels.{k}"),
                        "is not a string; label values are strings",
                    ));
                };
                match_labels.insert(k.clone(), s.to_string());
            }
        }
        let mut expressions = Vec::new();
        for (i, e) in v
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let here = format!("{field}.matchExpressions[{i}]");
            let key = str_at(e, &["key"])
                .ok_or_else(|| Problem::new(format!("{here}.key"), "is required"))?;
            let operator = str_at(e, &["operator"])
                .ok_or_else(|| Problem::new(format!("{here}.operator"), "is required"))?;
            if !["In", "NotIn", "Exists", "DoesNotExist"].contains(&operator) {
                return Err(Problem::new(
                    format!("{here}.operator"),
                    format!("is {operator:?}; the CRD allows In, NotIn, Exists, DoesNotExist"),
                ));
            }
            let values = e
                .get("values")
                .filter(|v| !v.is_null())
                .map(|v| strings(Some(v)).into_iter().collect());
            expressions.push(Expression {
                key: key.to_string(),
                operator: operator.to_string(),
                values,
            });
        }
        Ok(LabelSelector {
            match_labels,
            expressions,
        })
    }

    /// Whether the selector selects pods with `labels`. An operator given the wrong kind of
    /// values (In without values, Exists with values) never matches, as in Linkerd.
    pub(super) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let expr = |e: &Expression| match (e.operator.as_str(), &e.values) {
            ("In", Some(vals)) => labels.get(&e.key).is_some_and(|v| vals.contains(v)),
            ("NotIn", Some(vals)) => labels.get(&e.key).is_none_or(|v| !vals.contains(v)),
            ("Exists", None) => labels.contains_key(&e.key),
            ("DoesNotExist", None) => !labels.contains_key(&e.key),
            _ => false,
        };
        self.expressions.iter().all(expr) && subset_of(&self.match_labels, labels)
    }

    /// `key=value` for each matchLabels pair, `key Op [values]` for each expression.
    pub(super) fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for e in &self.expressions {
            out.push(match &e.values {
                Some(v) => format!(
                    "{} {} [{}]",
                    e.key,
                    e.operator,
                    v.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
                None => format!("{} {}", e.key, e.operator),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn l(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Linkerd `labels.rs` `test_matches`: an empty selector selects everything; matchLabels and
    /// matchExpressions are ANDed.
    #[test]
    fn label_selectors_match_as_linkerd_does() {
        assert!(LabelSelector::default().matches(&l(&[])));
        let s = LabelSelector::parse(
            Some(&json!({"matchLabels": {"app": "a"}, "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]},
                {"key": "canary", "operator": "DoesNotExist"}]})),
            "spec.podSelector",
        )
        .unwrap();
        assert!(s.matches(&l(&[("app", "a"), ("tier", "api")])));
        assert!(!s.matches(&l(&[("app", "a"), ("tier", "db")])));
        assert!(!s.matches(&l(&[("app", "a"), ("tier", "api"), ("canary", "1")])));
        let illegal = LabelSelector::parse(
            Some(&json!({"matchExpressions": [{"key": "x", "operator": "In"}]})),
            "s",
        )
        .unwrap();
        assert!(!illegal.matches(&l(&[("x", "1")])));
    }

    #[test]
    fn groups_and_scopes() {
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(group_of("v1"), "");
        assert_eq!(scope_of("", "Namespace"), Scope::Cluster);
        assert_eq!(
            scope_of("rbac.authorization.k8s.io", "ClusterRole"),
            Scope::Cluster
        );
        assert_eq!(scope_of("security.istio.io", "Whatever"), Scope::Namespaced);
        assert_eq!(scope_of("example.com", "Widget"), Scope::Unknown);
    }
}
