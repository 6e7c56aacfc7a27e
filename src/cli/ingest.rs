//! `evl ingest`: read evidence as it arrives from the field and record it with its facts.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::remote::{Offline, Sink};
use super::write::{MetaArgs, artifact_meta};
use super::{Global, Signing, read_file};
use crate::entry::{Payload, Tier};
use crate::error::{Error, exit};
use crate::facts::{self, label};
use crate::ingest::{self, Facts, Importer, ParseOptions};
use crate::store::{Draft, MAX_ARTIFACT_BYTES};
use crate::timestamp::Timestamp;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    /// PEM/DER certificate, chain (any order) or CA bundle: names, validity, SANs, RFC 5280 chain checks, X509-SVID identity.
    Cert,
    /// Kubernetes YAML of Istio / Linkerd policy and workloads: what the mesh puts in effect per namespace, workload and port.
    Mesh,
    /// Workload inventory CSV (docs/IMPORTERS.md lists the columns).
    Inventory,
    /// Prometheus query results (JSON) or the documented telemetry CSV.
    Telemetry,
}

impl Kind {
    fn importer(self) -> Importer {
        match self {
            Kind::Cert => Importer::Cert,
            Kind::Mesh => Importer::Mesh,
            Kind::Inventory => Importer::Inventory,
            Kind::Telemetry => Importer::Telemetry,
        }
    }
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// What the files are.
    #[arg(value_enum)]
    pub importer: Kind,
    /// Files to import; each is parsed strictly first, then all are appended in one batch.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Source tier.
    #[arg(long, default_value = "authoritative")]
    pub tier: Tier,
    /// Telemetry: the observation window's name (recorded as the `window` label).
    #[arg(long, value_name = "NAME")]
    pub window: Option<String>,
    /// Telemetry (Prometheus JSON): which measure the series are. MEASURE (success_rate,
    /// error_rate, p50_ms, p95_ms, p99_ms, rps) makes every series that measure;
    /// METRIC=MEASURE maps series whose __name__ is METRIC. Repeat for several metric names.
    /// Without it a series needs an evl_metric label or a __name__ that is a measure name.
    #[arg(long = "metric", value_name = "MEASURE|METRIC=MEASURE")]
    pub metrics: Vec<String>,
    /// Telemetry (Prometheus JSON): the label naming the workload (default: workload, else
    /// destination_workload).
    #[arg(long, value_name = "LABEL")]
    pub workload_label: Option<String>,
    /// Telemetry (Prometheus JSON): the label naming the namespace (default: namespace, else
    /// destination_workload_namespace).
    #[arg(long, value_name = "LABEL")]
    pub namespace_label: Option<String>,
    /// Telemetry (Prometheus JSON): a label profile. `istio` reads Istio's standard metrics:
    /// destination_workload and destination_workload_namespace.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Mesh: what to do with an object the mesh itself would refuse (an Istio policy its
    /// validation rejects, a Linkerd object its admission webhook rejects, a field the CRD does
    /// not know). `refuse` (the default) refuses the file naming file, line and field;
    /// `record` appends it with that object recorded as not in effect and a warning.
    #[arg(long, value_enum, value_name = "HOW", default_value = "refuse")]
    pub invalid_policies: InvalidPolicies,
    #[command(flatten)]
    pub meta: MetaArgs,
    #[command(flatten)]
    pub signing: Signing,
    #[command(flatten)]
    pub offline: Offline,
}

/// What `evl ingest mesh` does with objects the mesh would refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InvalidPolicies {
    /// Refuse the file, naming the file, line and field.
    Refuse,
    /// Record the object as not in effect, with a warning.
    Record,
}

/// One line summarising facts, for people.
fn summary(f: &Facts) -> String {
    match f {
        Facts::Cert(c) => format!("{} certificate(s)", c.certificates.len()),
        Facts::Mesh(m) => format!(
            "{} object(s), {} warning(s)",
            m.objects.len(),
            m.warnings.len()
        ),
        Facts::Inventory(i) => format!("{} workload(s)", i.workloads.len()),
        Facts::Telemetry(t) => format!("{} workload series", t.workloads.len()),
    }
}

/// The warnings facts carry, for stderr.
fn warnings(f: &Facts) -> Vec<String> {
    match f {
        Facts::Cert(c) => c.warnings.clone(),
        Facts::Mesh(m) => m.warnings.clone(),
        Facts::Telemetry(t) => t
            .warnings
            .iter()
            .map(|w| format!("the response warns: {w}"))
            .collect(),
        Facts::Inventory(_) => Vec::new(),
    }
}

/// Records the parse options as entry labels (docs/IMPORTERS.md §"Options recorded in the
/// entry"), refusing options that do not belong to the importer.
fn option_labels(a: &mut IngestArgs) -> Result<(), Error> {
    let telemetry = matches!(a.importer, Kind::Telemetry);
    let mapping = !a.metrics.is_empty()
        || a.workload_label.is_some()
        || a.namespace_label.is_some()
        || a.profile.is_some();
    if mapping && !telemetry {
        return Err(Error::Invalid(
            "--metric, --workload-label, --namespace-label and --profile apply only to `evl ingest telemetry`".to_string(),
        ));
    }
    if a.invalid_policies == InvalidPolicies::Record && !matches!(a.importer, Kind::Mesh) {
        return Err(Error::Invalid(
            "--invalid-policies applies only to `evl ingest mesh`".to_string(),
        ));
    }
    if let Some(m) = a.metrics.iter().find(|m| m.contains(',')) {
        return Err(Error::Invalid(format!(
            "--metric {m:?}: give one mapping per --metric (no commas)"
        )));
    }
    let mut push = |k: &str, v: &str| a.meta.labels.push(format!("{k}={v}"));
    if let Some(w) = a.window.clone() {
        push(label::WINDOW, &w);
    }
    if !a.metrics.is_empty() {
        let joined = a.metrics.join(",");
        push(label::TELEMETRY_METRIC, &joined);
    }
    if let Some(l) = a.workload_label.clone() {
        push(label::TELEMETRY_WORKLOAD_LABEL, &l);
    }
    if let Some(l) = a.namespace_label.clone() {
        push(label::TELEMETRY_NAMESPACE_LABEL, &l);
    }
    if let Some(p) = a.profile.clone() {
        push(label::TELEMETRY_PROFILE, &p);
    }
    if a.invalid_policies == InvalidPolicies::Record {
        push(label::INVALID_POLICIES, "record");
    }
    Ok(())
}

pub fn ingest(g: &Global, mut a: IngestArgs) -> Result<i32, Error> {
    let key = a.signing.load()?;
    let importer = a.importer.importer();
    option_labels(&mut a)?;
    let sink = Sink::new(g, &a.offline)?;
    let at = a.signing.time();
    let mut drafts = Vec::with_capacity(a.files.len());
    let mut parsed = Vec::with_capacity(a.files.len());
    for path in &a.files {
        let bytes = read_file(path, MAX_ARTIFACT_BYTES)?;
        let mut meta = artifact_meta(&sink, (importer.kind(), a.tier), &a.meta, path, &bytes, at)?;
        let options: ParseOptions = facts::parse_options(&meta);
        let name = path.display().to_string();
        let f = ingest::parse_with(importer, &name, &bytes, &options)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        // A certificate is valid only until the earliest expiry in its chain; say so in the
        // entry unless the signer gave a shorter validity.
        if let Facts::Cert(c) = &f {
            let expiry = Timestamp(c.expires_at);
            meta.valid_until = Some(meta.valid_until.map_or(expiry, |v| v.min(expiry)));
        }
        let (record, json) = facts::record(&f);
        meta.facts = Some(record);
        drafts.push(Draft {
            payload: Payload::Artifact(meta),
            claimed_at: at,
            blobs: vec![bytes, json],
        });
        parsed.push(f);
    }
    let Some(done) = sink.put(drafts, &key)? else {
        return Ok(exit::OK);
    };
    if a.signing.json {
        let v: Vec<_> = done
            .iter()
            .zip(&a.files)
            .zip(&parsed)
            .map(|((d, f), facts)| serde_json::json!({"kind": "artifact", "file": f, "id": d.id.to_string(), "index": d.index, "facts": facts}))
            .collect();
        return super::print_json_list("evl.appended/v1", &v);
    }
    for ((d, f), facts) in done.iter().zip(&a.files).zip(&parsed) {
        println!(
            "{} {} at index {}  {}  ({})",
            importer.kind(),
            d.id,
            d.index,
            f.display(),
            summary(facts)
        );
        for w in warnings(facts) {
            eprintln!("warning: {}: {w}", f.display());
        }
    }
    Ok(exit::OK)
}
