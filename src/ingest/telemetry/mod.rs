//! Telemetry: per-workload success rate, error rate, latency percentiles and request rate over a
//! named window, from a Prometheus HTTP API query result (instant or range vector, JSON) as
//! Prometheus and compatible servers (Thanos, Cortex, Mimir, VictoriaMetrics) return it, or a
//! documented CSV. Which measure a series is and which labels name its workload and namespace
//! come from a [`Mapping`] (recorded in the facts); the response envelope follows
//! <https://prometheus.io/docs/prometheus/latest/querying/api/#format-overview>.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod prometheus;

pub use prometheus::{MAX_ENVELOPE_NOTES, MAX_LABELS_PER_SERIES};

use super::{IngestError, check_size, csv_data_row, csv_error};

/// Largest accepted input.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;
/// Most series (JSON) or rows (CSV) accepted.
pub const MAX_SERIES: usize = 20_000;

/// The measures, in canonical order; also the CSV columns after `workload,namespace`.
pub const MEASURES: [&str; 6] = [
    "success_rate",
    "error_rate",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "rps",
];

/// One measure summarised over the window. For an instant vector or a CSV cell all of `last`,
/// `min` and `max` are the one value and `samples` is 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The value at the latest timestamp.
    pub last: f64,
    pub min: f64,
    pub max: f64,
    pub samples: usize,
    /// Prometheus timestamp (Unix seconds) of `last`, absent for CSV.
    pub last_at: Option<f64>,
}

/// The measures of one workload; absent measures were not in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadMetrics {
    pub namespace: String,
    pub workload: String,
    /// Ratio in [0, 1].
    pub success_rate: Option<Measurement>,
    /// Ratio in [0, 1].
    pub error_rate: Option<Measurement>,
    pub p50_ms: Option<Measurement>,
    pub p95_ms: Option<Measurement>,
    pub p99_ms: Option<Measurement>,
    /// Requests per second.
    pub rps: Option<Measurement>,
}

/// A telemetry file's facts: the window (from the ledger entry, not the file) and per-workload
/// metrics sorted by (namespace, workload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetrySummary {
    pub window: String,
    pub sealed: bool,
    /// "prometheus-vector", "prometheus-matrix" or "csv".
    pub format: String,
    /// How series labels were read (Prometheus only).
    pub mapping: Option<AppliedMapping>,
    pub workloads: Vec<WorkloadMetrics>,
    /// The response's `warnings` (Prometheus: errors that did not stop the query, so the data
    /// may be incomplete), and a note when a compatible server marks it `isPartial`.
    pub warnings: Vec<String>,
    /// The response's `infos` (Prometheus: info-level annotations about the query).
    pub infos: Vec<String>,
}

/// The profile for Istio's standard metrics
/// (<https://istio.io/latest/docs/reference/config/metrics/>): series are per destination
/// workload, labelled `destination_workload` and `destination_workload_namespace`.
pub const PROFILE_ISTIO: &str = "istio";

/// How to read a Prometheus response's series: the options `evl ingest telemetry` records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// A label profile; only [`PROFILE_ISTIO`] is known.
    pub profile: Option<String>,
    /// Which measure series are: `MEASURE` (every series is that measure) or
    /// `METRIC=MEASURE` (series whose `__name__` is METRIC). Empty: the series' `evl_metric`
    /// label, else a `__name__` that is itself a measure name.
    pub metrics: Vec<String>,
    /// The label holding the workload name.
    pub workload_label: Option<String>,
    /// The label holding the workload's namespace.
    pub namespace_label: Option<String>,
}

/// The mapping as applied, recorded in the facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedMapping {
    pub profile: Option<String>,
    /// The `--metric` options as given.
    pub metrics: Vec<String>,
    /// The labels read for the workload name, first present wins.
    pub workload_labels: Vec<String>,
    /// The labels read for the namespace, first present wins.
    pub namespace_labels: Vec<String>,
}

impl Mapping {
    /// Checks the options and resolves the labels to read.
    fn apply(&self, source_name: &str) -> Result<AppliedMapping, IngestError> {
        let bad =
            |field: &str, why: String| IngestError::malformed(source_name, None, Some(field), why);
        if let Some(p) = &self.profile
            && p != PROFILE_ISTIO
        {
            return Err(bad(
                "profile",
                format!(
                    "the telemetry profile {p:?} is not known (the profile is {PROFILE_ISTIO})"
                ),
            ));
        }
        let mut bare = 0;
        for m in &self.metrics {
            let measure = match m.split_once('=') {
                Some((name, measure)) if !name.is_empty() => measure,
                Some(_) => {
                    return Err(bad(
                        "metric",
                        format!("{m:?} has an empty metric name before '='"),
                    ));
                }
                None => {
                    bare += 1;
                    m.as_str()
                }
            };
            if !MEASURES.contains(&measure) {
                return Err(bad(
                    "metric",
                    format!(
                        "{m:?} names the measure {measure:?}, which is not one of {}",
                        MEASURES.join(", ")
                    ),
                ));
            }
        }
        if bare > 1 {
            return Err(bad(
                "metric",
                "more than one measure is given for every series; give MEASURE once, or METRIC=MEASURE per metric name".to_string(),
            ));
        }
        let istio = self.profile.as_deref() == Some(PROFILE_ISTIO);
        let pick =
            |explicit: &Option<String>, istio_label: &str, defaults: [&str; 2]| match explicit {
                Some(l) => vec![l.clone()],
                None if istio => vec![istio_label.to_string()],
                None => defaults.iter().map(|s| s.to_string()).collect(),
            };
        Ok(AppliedMapping {
            profile: self.profile.clone(),
            metrics: self.metrics.clone(),
            workload_labels: pick(
                &self.workload_label,
                "destination_workload",
                ["workload", "destination_workload"],
            ),
            namespace_labels: pick(
                &self.namespace_label,
                "destination_workload_namespace",
                ["namespace", "destination_workload_namespace"],
            ),
        })
    }

    /// The measure of a series with `__name__` `name` and the `evl_metric` label `evl`.
    pub(super) fn measure_of(&self, name: Option<&str>, evl: Option<&str>) -> Option<String> {
        let by_name = self.metrics.iter().find_map(|m| {
            let (metric, measure) = m.split_once('=')?;
            (Some(metric) == name).then(|| measure.to_string())
        });
        let every = self.metrics.iter().find(|m| !m.contains('=')).cloned();
        by_name
            .or(every)
            .or_else(|| evl.map(str::to_string))
            .or_else(|| name.filter(|n| MEASURES.contains(n)).map(str::to_string))
    }
}

impl TelemetrySummary {
    /// The metrics for (namespace, workload), if present.
    pub fn get(&self, namespace: &str, workload: &str) -> Option<&WorkloadMetrics> {
        self.workloads
            .iter()
            .find(|w| w.namespace == namespace && w.workload == workload)
    }
}

impl WorkloadMetrics {
    pub(super) fn new(namespace: String, workload: String) -> Self {
        WorkloadMetrics {
            namespace,
            workload,
            success_rate: None,
            error_rate: None,
            p50_ms: None,
            p95_ms: None,
            p99_ms: None,
            rps: None,
        }
    }

    pub(super) fn slot(&mut self, measure: &str) -> &mut Option<Measurement> {
        match measure {
            "success_rate" => &mut self.success_rate,
            "error_rate" => &mut self.error_rate,
            "p50_ms" => &mut self.p50_ms,
            "p95_ms" => &mut self.p95_ms,
            "p99_ms" => &mut self.p99_ms,
            "rps" => &mut self.rps,
            _ => unreachable!("measure names are checked against MEASURES"),
        }
    }
}

/// Parses telemetry with the default [`Mapping`]; see [`parse_mapped`].
pub fn parse(
    source_name: &str,
    bytes: &[u8],
    window: &str,
    sealed: bool,
) -> Result<TelemetrySummary, IngestError> {
    parse_mapped(source_name, bytes, window, sealed, &Mapping::default())
}

/// Parses telemetry, detecting the format: JSON (first non-blank byte `{`) is a Prometheus HTTP
/// API response read with `mapping`, anything else the telemetry CSV. `window`, `sealed` and
/// `mapping` come from the caller (the ledger entry records them).
pub fn parse_mapped(
    source_name: &str,
    bytes: &[u8],
    window: &str,
    sealed: bool,
    mapping: &Mapping,
) -> Result<TelemetrySummary, IngestError> {
    check_size(source_name, bytes, MAX_INPUT_BYTES)?;
    if window.trim().is_empty() {
        return Err(IngestError::malformed(
            source_name,
            None,
            Some("window"),
            "the telemetry window name is empty",
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let mut summary = TelemetrySummary {
        window: window.to_string(),
        sealed,
        format: "csv".to_string(),
        mapping: None,
        workloads: Vec::new(),
        warnings: Vec::new(),
        infos: Vec::new(),
    };
    let map = match first {
        None => {
            return Err(IngestError::Empty {
                source_name: source_name.to_string(),
                reason: "the telemetry file is empty".to_string(),
            });
        }
        Some(b'{') => {
            let applied = mapping.apply(source_name)?;
            let map = prometheus::parse(source_name, bytes, mapping, &applied, &mut summary)?;
            summary.mapping = Some(applied);
            map
        }
        Some(_) if *mapping != Mapping::default() => {
            return Err(IngestError::malformed(
                source_name,
                None,
                Some("metric"),
                "the file is telemetry CSV, whose columns name the measures; the label mapping options (--metric, --workload-label, --namespace-label, --profile) apply only to Prometheus responses",
            ));
        }
        Some(_) => parse_csv(source_name, bytes)?,
    };
    summary.workloads = map.into_values().collect();
    Ok(summary)
}

pub(super) type ByWorkload = BTreeMap<(String, String), WorkloadMetrics>;

pub(super) fn check_value(
    source_name: &str,
    line: Option<usize>,
    what: &str,
    measure: &str,
    v: f64,
) -> Result<(), IngestError> {
    if !v.is_finite() {
        return Err(IngestError::malformed(
            source_name,
            line,
            Some(measure),
            format!("{what} has the non-finite value {v}; telemetry values must be finite numbers"),
        ));
    }
    let ok = match measure {
        "success_rate" | "error_rate" => (0.0..=1.0).contains(&v),
        _ => v >= 0.0,
    };
    if !ok {
        let expect = if measure.ends_with("_rate") {
            "a ratio between 0 and 1"
        } else {
            "zero or more"
        };
        return Err(IngestError::malformed(
            source_name,
            line,
            Some(measure),
            format!("{what} has the value {v}, expected {expect}"),
        ));
    }
    Ok(())
}

fn parse_csv(source_name: &str, bytes: &[u8]) -> Result<ByWorkload, IngestError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.byte_records();
    let header = match records.next() {
        Some(r) => r.map_err(|e| csv_error(source_name, bytes, &e))?,
        None => {
            return Err(IngestError::Empty {
                source_name: source_name.to_string(),
                reason: "the telemetry CSV has no header".to_string(),
            });
        }
    };
    let known: Vec<&'static str> = ["workload", "namespace"]
        .into_iter()
        .chain(MEASURES)
        .collect();
    let documented = known.join(",");
    // Column i of the file holds `columns[i]`; any order, measures optional.
    let mut columns: Vec<&'static str> = Vec::with_capacity(header.len());
    for (i, raw) in header.iter().enumerate() {
        let name = String::from_utf8_lossy(raw).trim().to_ascii_lowercase();
        let field = format!("column {}", i + 1);
        let Some(col) = known.iter().find(|k| **k == name) else {
            return Err(IngestError::malformed(
                source_name,
                Some(1),
                Some(&field),
                format!("{name:?} is not a telemetry column (the columns are {documented})"),
            ));
        };
        if columns.contains(col) {
            return Err(IngestError::malformed(
                source_name,
                Some(1),
                Some(&field),
                format!("the column {name} appears twice in the header"),
            ));
        }
        columns.push(col);
    }
    for required in ["workload", "namespace"] {
        if !columns.contains(&required) {
            return Err(IngestError::malformed(
                source_name,
                Some(1),
                Some(required),
                format!("the header lacks the column {required} (the columns are {documented})"),
            ));
        }
    }
    let expected = columns;
    let mut map = ByWorkload::new();
    let mut first_line: BTreeMap<(String, String), usize> = BTreeMap::new();
    for rec in records {
        let Some((line, rec)) = csv_data_row(
            source_name,
            bytes,
            rec,
            map.len(),
            MAX_SERIES,
            expected.len(),
        )?
        else {
            continue;
        };
        let cell = |i: usize| -> Result<&str, IngestError> {
            std::str::from_utf8(&rec[i]).map(str::trim).map_err(|_| {
                IngestError::malformed(
                    source_name,
                    Some(line),
                    Some(expected[i]),
                    "the value is not valid UTF-8",
                )
            })
        };
        let position = |name: &str| expected.iter().position(|c| *c == name).unwrap_or(0);
        let workload = cell(position("workload"))?.to_string();
        let namespace = cell(position("namespace"))?.to_string();
        for (col, v) in [("workload", &workload), ("namespace", &namespace)] {
            if v.is_empty() {
                return Err(IngestError::malformed(
                    source_name,
                    Some(line),
                    Some(col),
                    "the value is empty",
                ));
            }
        }
        let key = (namespace.clone(), workload.clone());
        if let Some(first) = first_line.get(&key) {
            return Err(IngestError::Duplicate {
                source_name: source_name.to_string(),
                key: format!("workload {namespace}/{workload}"),
                first_line: *first,
                second_line: line,
            });
        }
        first_line.insert(key.clone(), line);
        let mut wm = WorkloadMetrics::new(namespace, workload);
        for (j, measure) in expected.iter().enumerate() {
            if !MEASURES.contains(measure) {
                continue;
            }
            let text = cell(j)?;
            if text.is_empty() {
                continue;
            }
            let v: f64 = text.parse().map_err(|_| {
                IngestError::malformed(
                    source_name,
                    Some(line),
                    Some(measure),
                    format!("{text:?} is not a number"),
                )
            })?;
            check_value(source_name, Some(line), "the cell", measure, v)?;
            *wm.slot(measure) = Some(Measurement {
                last: v,
                min: v,
                max: v,
                samples: 1,
                last_at: None,
            });
        }
        map.insert(key, wm);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_parses_and_blank_cells_are_absent() {
        let csv = "workload,namespace,success_rate,error_rate,p50_ms,p95_ms,p99_ms,rps\npayments-api,payments,0.999,0.001,12,48.5,90,120\nedge-gateway,edge-routing,0.98,,,,,\n";
        let t = parse("t.csv", csv.as_bytes(), "w1", true).unwrap();
        assert_eq!(t.format, "csv");
        assert!(t.sealed);
        assert_eq!(t.workloads[0].workload, "edge-gateway");
        assert!(t.workloads[0].p95_ms.is_none());
        assert_eq!(
            t.get("payments", "payments-api")
                .unwrap()
                .p95_ms
                .as_ref()
                .unwrap()
                .last,
            48.5
        );
    }

    #[test]
    fn nan_in_prometheus_names_the_series() {
        let json = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"evl_metric":"p95_ms","destination_workload":"payments-api","destination_workload_namespace":"payments"},"value":[1712793600,"NaN"]}]}}"#;
        let e = parse("p.json", json.as_bytes(), "w", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("payments-api") && e.contains("non-finite"),
            "{e}"
        );
    }

    #[test]
    fn rate_out_of_range_is_refused() {
        let csv =
            "workload,namespace,success_rate,error_rate,p50_ms,p95_ms,p99_ms,rps\na,b,99.9,,,,,\n";
        let e = parse("t.csv", csv.as_bytes(), "w", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("success_rate") && e.contains("between 0 and 1"),
            "{e}"
        );
    }
}
