//! The Prometheus HTTP API response
//! (<https://prometheus.io/docs/prometheus/latest/querying/api/#format-overview>), read into
//! small typed values as it is parsed: a sample costs a few dozen bytes, not a JSON tree, so a
//! response at the 16 MiB input cap stays far below the memory bound.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{
    AppliedMapping, ByWorkload, MAX_SERIES, MEASURES, Mapping, Measurement, TelemetrySummary,
    WorkloadMetrics, check_value,
};
use crate::ingest::IngestError;

/// The envelope; fields whose type is checked by hand stay untyped (they are small).
#[derive(Deserialize)]
struct Envelope {
    status: Option<Value>,
    #[serde(rename = "errorType")]
    error_type: Option<Value>,
    error: Option<Value>,
    data: Option<Data>,
    warnings: Option<Value>,
    infos: Option<Value>,
    #[serde(rename = "isPartial")]
    is_partial: Option<Value>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: Option<Value>,
    result: Option<Vec<Item>>,
}

/// One element of `data.result`: a series, or a piece of a scalar/string result.
enum Item {
    Series(Series),
    Other,
}

#[derive(Deserialize)]
struct Series {
    metric: Option<BTreeMap<String, Value>>,
    value: Option<Sample>,
    values: Option<Vec<Sample>>,
    histogram: Option<IgnoredAny>,
    histograms: Option<IgnoredAny>,
}

/// `[timestamp, "value"]`: the timestamp if it is a number, the value parsed, or why not.
struct Sample {
    ts: Option<f64>,
    value: Result<f64, Option<String>>,
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Item;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a series object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
                Series::deserialize(de::value::MapAccessDeserializer::new(map)).map(Item::Series)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Item::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Item, E> {
                Ok(Item::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Item, E> {
                Ok(Item::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Item, E> {
                Ok(Item::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Item, E> {
                Ok(Item::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Item, E> {
                Ok(Item::Other)
            }
            fn visit_unit<E>(self) -> Result<Item, E> {
                Ok(Item::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Sample {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const BAD: Sample = Sample {
            ts: None,
            value: Err(None),
        };
        impl<'de> Visitor<'de> for V {
            type Value = Sample;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a [timestamp, \"value\"] pair")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sample, A::Error> {
                let ts = seq.next_element::<Value>()?.and_then(|t| t.as_f64());
                let value = match seq.next_element::<Value>()? {
                    Some(Value::String(text)) => text.trim().parse::<f64>().map_err(|_| Some(text)),
                    _ => Err(None),
                };
                let extra = seq.next_element::<IgnoredAny>()?.is_some();
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(if extra { BAD } else { Sample { ts, value } })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Sample, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(BAD)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Sample, E> {
                Ok(BAD)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Sample, E> {
                Ok(BAD)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Sample, E> {
                Ok(BAD)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Sample, E> {
                Ok(BAD)
            }
            fn visit_str<E>(self, _: &str) -> Result<Sample, E> {
                Ok(BAD)
            }
            fn visit_unit<E>(self) -> Result<Sample, E> {
                Ok(BAD)
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON value's type, for messages (never Rust `Debug` text).
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The strings of an optional array field of the envelope (`warnings`, `infos`).
fn envelope_strings(
    source_name: &str,
    v: Option<&Value>,
    field: &str,
) -> Result<Vec<String>, IngestError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|w| {
                w.as_str().map(str::to_string).ok_or_else(|| {
                    IngestError::malformed(
                        source_name,
                        None,
                        Some(field),
                        format!("the response's {field} hold {}, not a string", json_type(w)),
                    )
                })
            })
            .collect(),
        Some(other) => Err(IngestError::malformed(
            source_name,
            None,
            Some(field),
            format!(
                "the response's {field} is {}, not an array of strings",
                json_type(other)
            ),
        )),
    }
}

/// A readable name for a series: `__name__{label="value",...}` with labels sorted.
fn series_name(labels: &BTreeMap<String, Value>) -> String {
    let name = labels.get("__name__").and_then(Value::as_str).unwrap_or("");
    let inner: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| {
            let v = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            format!("{k}={v:?}")
        })
        .collect();
    format!("{name}{{{}}}", inner.join(","))
}

pub(super) fn parse(
    source_name: &str,
    bytes: &[u8],
    mapping: &Mapping,
    applied: &AppliedMapping,
    summary: &mut TelemetrySummary,
) -> Result<ByWorkload, IngestError> {
    let bad =
        |field: &str, why: String| IngestError::malformed(source_name, None, Some(field), why);
    let doc: Envelope = serde_json::from_slice(bytes).map_err(|e| {
        IngestError::malformed(
            source_name,
            Some(e.line()),
            None,
            format!("the JSON does not parse ({e})"),
        )
    })?;
    let status = doc.status.as_ref().and_then(Value::as_str);
    if status != Some("success") {
        let detail = [&doc.error_type, &doc.error]
            .iter()
            .filter_map(|v| v.as_ref().and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(": ");
        return Err(bad(
            "status",
            format!(
                "the Prometheus response status is {} not \"success\"{}",
                match status {
                    Some(s) => format!("{s:?}"),
                    None => "missing".to_string(),
                },
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                }
            ),
        ));
    }
    summary.warnings = envelope_strings(source_name, doc.warnings.as_ref(), "warnings")?;
    summary.infos = envelope_strings(source_name, doc.infos.as_ref(), "infos")?;
    // VictoriaMetrics (and vmselect-compatible proxies) flag results missing some storage nodes.
    if doc.is_partial.as_ref().and_then(Value::as_bool) == Some(true) {
        summary.warnings.push(
            "the response is marked isPartial: some storage nodes did not answer, so series may be missing"
                .to_string(),
        );
    }
    let data = doc.data.ok_or_else(|| {
        bad(
            "data",
            "the Prometheus response has no data object".to_string(),
        )
    })?;
    let key = match &data.result_type {
        Some(Value::String(t)) if t == "vector" => {
            summary.format = "prometheus-vector".to_string();
            "value"
        }
        Some(Value::String(t)) if t == "matrix" => {
            summary.format = "prometheus-matrix".to_string();
            "values"
        }
        Some(Value::String(t)) if t == "scalar" || t == "string" => {
            return Err(bad(
                "data.resultType",
                format!(
                    "the result type is \"{t}\", one value without labels; evl needs per-workload series, a \"vector\" (instant query) or \"matrix\" (range query) result"
                ),
            ));
        }
        Some(Value::String(t)) => {
            return Err(bad(
                "data.resultType",
                format!("the result type {t:?} is not one of vector, matrix, scalar, string"),
            ));
        }
        None | Some(Value::Null) => {
            return Err(bad(
                "data.resultType",
                "the response has no data.resultType".to_string(),
            ));
        }
        Some(other) => {
            return Err(bad(
                "data.resultType",
                format!("data.resultType is {}, not a string", json_type(other)),
            ));
        }
    };
    let result = data.result.ok_or_else(|| {
        bad(
            "data.result",
            "the result is missing or not an array".to_string(),
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
    if result.is_empty() {
        summary
            .warnings
            .push("the result holds no series".to_string());
    }
    let mut map = ByWorkload::new();
    for (i, item) in result.into_iter().enumerate() {
        let field = format!("data.result[{i}]");
        let Item::Series(series) = item else {
            return Err(bad(&field, "the series is not an object".to_string()));
        };
        let labels = series.metric.ok_or_else(|| {
            bad(
                &format!("{field}.metric"),
                "the series has no metric labels object".to_string(),
            )
        })?;
        let label = |names: &[String]| {
            names
                .iter()
                .find_map(|n| labels.get(n).and_then(Value::as_str))
                .map(str::to_string)
        };
        let name = series_name(&labels);
        let measure = mapping
            .measure_of(
                labels.get("__name__").and_then(Value::as_str),
                labels.get("evl_metric").and_then(Value::as_str),
            )
            .ok_or_else(|| bad(&field, format!("series {name} does not say which measure it is: name it with --metric MEASURE (every series) or --metric METRIC=MEASURE, or give it a label evl_metric set to one of {}", MEASURES.join(", "))))?;
        if !MEASURES.contains(&measure.as_str()) {
            return Err(bad(
                &format!("{field}.metric.evl_metric"),
                format!(
                    "series {name} names the unknown measure {measure:?} (expected one of {})",
                    MEASURES.join(", ")
                ),
            ));
        }
        let missing = |what: &str, names: &[String]| {
            bad(
                &format!("{field}.metric"),
                format!(
                    "series {name} has no {} label for the {what} (map another label with --{what}-label)",
                    names.join(" or ")
                ),
            )
        };
        let workload = label(&applied.workload_labels)
            .ok_or_else(|| missing("workload", &applied.workload_labels))?;
        let namespace = label(&applied.namespace_labels)
            .ok_or_else(|| missing("namespace", &applied.namespace_labels))?;
        if series.histogram.is_some() || series.histograms.is_some() {
            return Err(bad(
                &format!("{field}.histogram"),
                format!(
                    "series {name} carries native histogram samples; query a number per sample (e.g. histogram_quantile(0.95, …))"
                ),
            ));
        }
        let samples: Vec<Sample> = if key == "value" {
            vec![series.value.ok_or_else(|| {
                bad(
                    &format!("{field}.value"),
                    format!("series {name} has no value"),
                )
            })?]
        } else {
            series.values.ok_or_else(|| {
                bad(
                    &format!("{field}.values"),
                    format!("series {name} has no values array"),
                )
            })?
        };
        if samples.is_empty() {
            return Err(bad(
                &format!("{field}.values"),
                format!("series {name} has no samples"),
            ));
        }
        let mut points = Vec::with_capacity(samples.len());
        for s in samples {
            let here = format!("{field}.{key}");
            let (ts, v) = match (s.ts, s.value) {
                (Some(ts), Ok(v)) => (ts, v),
                (Some(_), Err(Some(text))) => {
                    return Err(bad(
                        &here,
                        format!(
                            "series {name} has the sample value {text:?}, which is not a number"
                        ),
                    ));
                }
                _ => {
                    return Err(bad(
                        &here,
                        format!("series {name} has a sample that is not [timestamp, \"value\"]"),
                    ));
                }
            };
            check_value(source_name, None, &format!("series {name}"), &measure, v)?;
            if !ts.is_finite() {
                return Err(bad(
                    &here,
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
            let hint = if labels.contains_key("reporter") {
                "; Istio reports each request twice (reporter=\"source\" and reporter=\"destination\"): filter one reporter"
            } else {
                ""
            };
            return Err(bad(
                &field,
                format!(
                    "series {name} repeats measure {measure} for workload {namespace}/{workload}; aggregate the query (e.g. sum by (destination_workload, destination_workload_namespace)) so each workload has one series per measure{hint}"
                ),
            ));
        }
        *slot = Some(m);
    }
    Ok(map)
}
