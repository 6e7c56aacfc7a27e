//! Telemetry: per-workload success rate, error rate, latency percentiles and request rate over a
//! named window, from a Prometheus HTTP API query result (instant or range vector, JSON) or a
//! documented CSV. The label convention is documented in `docs/IMPORTERS.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{IngestError, check_size, csv_data_row, csv_error};

/// Largest accepted input.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;
/// Most series (JSON) or rows (CSV) accepted.
pub const MAX_SERIES: usize = 100_000;

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
    pub workloads: Vec<WorkloadMetrics>,
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
    fn new(namespace: String, workload: String) -> Self {
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

    fn slot(&mut self, measure: &str) -> &mut Option<Measurement> {
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

/// Parses telemetry, detecting the format: JSON (first non-blank byte `{`) is a Prometheus HTTP
/// API response, anything else the telemetry CSV. `window` and `sealed` come from the caller.
pub fn parse(
    source_name: &str,
    bytes: &[u8],
    window: &str,
    sealed: bool,
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
    let (format, map) = match first {
        None => {
            return Err(IngestError::Empty {
                source_name: source_name.to_string(),
                reason: "the telemetry file is empty".to_string(),
            });
        }
        Some(b'{') => parse_prometheus(source_name, bytes)?,
        Some(_) => ("csv", parse_csv(source_name, bytes)?),
    };
    Ok(TelemetrySummary {
        window: window.to_string(),
        sealed,
        format: format.to_string(),
        workloads: map.into_values().collect(),
    })
}

type ByWorkload = BTreeMap<(String, String), WorkloadMetrics>;

fn check_value(
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

fn parse_prometheus(
    source_name: &str,
    bytes: &[u8],
) -> Result<(&'static str, ByWorkload), IngestError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        IngestError::malformed(
            source_name,
            Some(e.line()),
            None,
            format!("the JSON does not parse ({e})"),
        )
    })?;
    let status = doc.get("status").and_then(Value::as_str);
    if status != Some("success") {
        let detail = doc.get("error").and_then(Value::as_str).unwrap_or("");
        return Err(IngestError::malformed(
            source_name,
            None,
            Some("status"),
            format!(
                "the Prometheus response status is {} not \"success\"{}",
                status
                    .map(|s| format!("{s:?}"))
                    .unwrap_or_else(|| "missing".into()),
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                }
            ),
        ));
    }
    let data = doc.get("data").ok_or_else(|| {
        IngestError::malformed(
            source_name,
            None,
            Some("data"),
            "the Prometheus response has no data object",
        )
    })?;
    let (format, key) = match data.get("resultType").and_then(Value::as_str) {
        Some("vector") => ("prometheus-vector", "value"),
        Some("matrix") => ("prometheus-matrix", "values"),
        other => {
            return Err(IngestError::malformed(
                source_name,
                None,
                Some("data.resultType"),
                format!(
                    "result type {other:?} is not supported (expected \"vector\" or \"matrix\")"
                ),
            ));
        }
    };
    let result = data
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            IngestError::malformed(
                source_name,
                None,
                Some("data.result"),
                "the result is missing or not an array",
            )
        })?;
    if result.len() > MAX_SERIES {
        return Err(IngestError::too_large(
            source_name,
            None,
            "the number of series",
            MAX_SERIES,
            result.len(),
        ));
    }
    let mut map = ByWorkload::new();
    for (i, series) in result.iter().enumerate() {
        let field = format!("data.result[{i}]");
        let labels = series
            .get("metric")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                IngestError::malformed(
                    source_name,
                    None,
                    Some(&format!("{field}.metric")),
                    "the series has no metric labels object",
                )
            })?;
        let label = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| labels.get(*n).and_then(Value::as_str))
                .map(str::to_string)
        };
        let name = series_name(labels);
        let measure = label(&["evl_metric"])
            .or_else(|| label(&["__name__"]).filter(|n| MEASURES.contains(&n.as_str())))
            .ok_or_else(|| IngestError::malformed(source_name, None, Some(&field), format!("series {name} does not say which measure it is: give it a label evl_metric set to one of {} (e.g. with label_replace)", MEASURES.join(", "))))?;
        if !MEASURES.contains(&measure.as_str()) {
            return Err(IngestError::malformed(
                source_name,
                None,
                Some(&format!("{field}.metric.evl_metric")),
                format!(
                    "series {name} names the unknown measure {measure:?} (expected one of {})",
                    MEASURES.join(", ")
                ),
            ));
        }
        let workload = label(&["workload", "destination_workload"]).ok_or_else(|| {
            IngestError::malformed(
                source_name,
                None,
                Some(&field),
                format!("series {name} has no workload or destination_workload label"),
            )
        })?;
        let namespace =
            label(&["namespace", "destination_workload_namespace"]).ok_or_else(|| {
                IngestError::malformed(
                    source_name,
                    None,
                    Some(&field),
                    format!(
                        "series {name} has no namespace or destination_workload_namespace label"
                    ),
                )
            })?;
        let samples: Vec<&Value> = if key == "value" {
            vec![series.get("value").ok_or_else(|| {
                IngestError::malformed(
                    source_name,
                    None,
                    Some(&format!("{field}.value")),
                    format!("series {name} has no value"),
                )
            })?]
        } else {
            series
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    IngestError::malformed(
                        source_name,
                        None,
                        Some(&format!("{field}.values")),
                        format!("series {name} has no values array"),
                    )
                })?
                .iter()
                .collect()
        };
        if samples.is_empty() {
            return Err(IngestError::malformed(
                source_name,
                None,
                Some(&format!("{field}.values")),
                format!("series {name} has no samples"),
            ));
        }
        let mut points = Vec::with_capacity(samples.len());
        for s in samples {
            let pair = s.as_array().filter(|a| a.len() == 2);
            let ts = pair.and_then(|a| a[0].as_f64());
            let text = pair.and_then(|a| a[1].as_str());
            let (Some(ts), Some(text)) = (ts, text) else {
                return Err(IngestError::malformed(
                    source_name,
                    None,
                    Some(&format!("{field}.{key}")),
                    format!("series {name} has a sample that is not [timestamp, \"value\"]"),
                ));
            };
            let v: f64 = text.trim().parse().map_err(|_| {
                IngestError::malformed(
                    source_name,
                    None,
                    Some(&format!("{field}.{key}")),
                    format!("series {name} has the sample value {text:?}, which is not a number"),
                )
            })?;
            check_value(source_name, None, &format!("series {name}"), &measure, v)?;
            if !ts.is_finite() {
                return Err(IngestError::malformed(
                    source_name,
                    None,
                    Some(&format!("{field}.{key}")),
                    format!("series {name} has a non-finite timestamp"),
                ));
            }
            points.push((ts, v));
        }
        // Order by timestamp so the summary does not depend on the order Prometheus sent.
        points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let (last_at, last) = points[points.len() - 1];
        let m = Measurement {
            last,
            min: points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min),
            max: points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max),
            samples: points.len(),
            last_at: Some(last_at),
        };
        let entry = map
            .entry((namespace.clone(), workload.clone()))
            .or_insert_with(|| WorkloadMetrics::new(namespace.clone(), workload.clone()));
        let slot = entry.slot(&measure);
        if slot.is_some() {
            return Err(IngestError::malformed(
                source_name,
                None,
                Some(&field),
                format!(
                    "series {name} repeats measure {measure} for workload {namespace}/{workload}; aggregate the query (e.g. sum by (destination_workload, destination_workload_namespace)) so each workload has one series per measure"
                ),
            ));
        }
        *slot = Some(m);
    }
    Ok((format, map))
}

/// A readable name for a series: `__name__{label="value",...}` with labels sorted.
fn series_name(labels: &serde_json::Map<String, Value>) -> String {
    let name = labels.get("__name__").and_then(Value::as_str).unwrap_or("");
    let rest: BTreeMap<&str, String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| {
            (
                k.as_str(),
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect();
    let inner: Vec<String> = rest.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", inner.join(","))
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
