//! `evl ingest`: read evidence as it arrives from the field and record it with its facts.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::write::{MetaArgs, artifact_meta};
use super::{Global, Signing, open, print_json, read_file};
use crate::entry::{Payload, Tier};
use crate::error::{Error, exit};
use crate::facts;
use crate::ingest::{self, Facts, Importer, ParseOptions};
use crate::store::{Draft, MAX_ARTIFACT_BYTES};
use crate::timestamp::Timestamp;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    /// PEM certificate or chain: subject, issuer, validity, SPIFFE and DNS SANs, chain linkage.
    Cert,
    /// Istio / Linkerd policy YAML: effective mTLS per namespace and workload, authorization posture, route weights.
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
    #[command(flatten)]
    pub meta: MetaArgs,
    #[command(flatten)]
    pub signing: Signing,
    /// Print the appended entries and their facts as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One line summarising facts, for people.
fn summary(f: &Facts) -> String {
    let v = serde_json::to_value(f).unwrap_or_default();
    let facts = &v["facts"];
    let count = |k: &str| facts[k].as_array().map(|a| a.len()).unwrap_or(0);
    match f {
        Facts::Cert(_) => format!("{} certificate(s)", count("certificates")),
        Facts::Mesh(_) => format!(
            "{} object(s), {} warning(s)",
            count("objects"),
            count("warnings")
        ),
        Facts::Inventory(_) => format!("{} workload(s)", count("workloads")),
        Facts::Telemetry(_) => format!("{} workload series", count("workloads")),
    }
}

pub fn ingest(g: &Global, mut a: IngestArgs) -> Result<i32, Error> {
    let key = a.signing.load()?;
    let importer = a.importer.importer();
    if let Some(w) = &a.window {
        a.meta.labels.push(format!("window={w}"));
    }
    let ledger = open(g)?;
    let at = a.signing.time();
    let mut drafts = Vec::with_capacity(a.files.len());
    let mut parsed = Vec::with_capacity(a.files.len());
    for path in &a.files {
        let bytes = read_file(path, MAX_ARTIFACT_BYTES)?;
        let mut meta = artifact_meta(ledger, (importer.kind(), a.tier), &a.meta, path, &bytes, at)?;
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
    let done = ledger.append_batch(drafts, &key, Some(Timestamp::now()))?;
    if a.json {
        let v: Vec<_> = done
            .iter()
            .zip(&a.files)
            .zip(&parsed)
            .map(|((d, f), facts)| serde_json::json!({"file": f, "id": d.id.to_string(), "index": d.index, "facts": facts}))
            .collect();
        return print_json(&v);
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
        if let Facts::Mesh(m) = facts {
            for w in &m.warnings {
                eprintln!("warning: {}: {w}", f.display());
            }
        }
    }
    Ok(exit::OK)
}
