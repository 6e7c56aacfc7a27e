//! Telemetry importer against Prometheus API JSON and the telemetry CSV.

use evl::ingest::telemetry;
use evl::ingest::{Facts, Importer, ParseOptions};

const WINDOW: &str = "mesh-mtls-canary-2026-04-11T00Z-2026-04-13T00Z";

#[test]
fn prometheus_instant_vector() {
    let t = telemetry::parse(
        "instant.json",
        include_bytes!("fixtures/ingest/prometheus-instant.json"),
        WINDOW,
        true,
    )
    .unwrap();
    assert_eq!(t.format, "prometheus-vector");
    assert_eq!((t.window.as_str(), t.sealed), (WINDOW, true));
    let names: Vec<_> = t
        .workloads
        .iter()
        .map(|w| (w.namespace.as_str(), w.workload.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("edge-routing", "edge-gateway"),
            ("identity", "identity-token-service"),
            ("payments", "payments-api")
        ]
    );
    let p = t.get("payments", "payments-api").unwrap();
    assert_eq!(p.success_rate.as_ref().unwrap().last, 0.9991);
    assert_eq!(p.p95_ms.as_ref().unwrap().last_at, Some(1712966400.0));
    assert!(p.p99_ms.is_none());
    // __name__ naming the measure, and plain workload / namespace labels.
    assert_eq!(
        t.get("identity", "identity-token-service")
            .unwrap()
            .p99_ms
            .as_ref()
            .unwrap()
            .last,
        88.0
    );
}

#[test]
fn prometheus_range_vector_summarises_last_min_max_by_time() {
    let t = telemetry::parse(
        "range.json",
        include_bytes!("fixtures/ingest/prometheus-range.json"),
        WINDOW,
        false,
    )
    .unwrap();
    assert_eq!(t.format, "prometheus-matrix");
    let p95 = t
        .get("payments", "payments-api")
        .unwrap()
        .p95_ms
        .clone()
        .unwrap();
    // Samples are out of order in the file; "last" is the latest timestamp, not the last listed.
    assert_eq!(
        (p95.last, p95.min, p95.max, p95.samples),
        (41.7, 35.0, 57.9, 4)
    );
    let err = t
        .get("orders", "orders-journal-writer")
        .unwrap()
        .error_rate
        .clone()
        .unwrap();
    assert_eq!((err.last, err.max), (0.02, 0.061));
}

#[test]
fn csv_telemetry_through_parse_with() {
    let opts = ParseOptions {
        window: Some(WINDOW.into()),
        sealed: true,
        ..Default::default()
    };
    let f = evl::ingest::parse_with(
        Importer::Telemetry,
        "t.csv",
        include_bytes!("fixtures/ingest/telemetry.csv"),
        &opts,
    )
    .unwrap();
    let Facts::Telemetry(t) = &f else {
        panic!("wrong facts")
    };
    assert_eq!(t.format, "csv");
    assert_eq!(t.workloads.len(), 3);
    let o = t.get("orders", "orders-journal-writer").unwrap();
    assert_eq!(o.error_rate.as_ref().unwrap().last, 0.03);
    assert!(o.p95_ms.is_none());
    assert!(
        f.canonical_json()
            .starts_with("{\"importer\":\"telemetry\",\"facts\":{\"window\":")
    );
}

fn series(labels: &str, value: &str) -> String {
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{labels},"value":[1712966400,"{value}"]}}]}}}}"#
    )
}

#[test]
fn errors_name_the_series_and_problem() {
    let ok_labels = r#"{"evl_metric":"p95_ms","destination_workload":"payments-api","destination_workload_namespace":"payments"}"#;
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            series(ok_labels, "+Inf"),
            vec!["p.json", "payments-api", "non-finite"],
        ),
        (
            series(ok_labels, "fast"),
            vec!["payments-api", "\"fast\"", "not a number"],
        ),
        (
            series(
                r#"{"__name__":"istio_requests_total","destination_workload":"a","destination_workload_namespace":"b"}"#,
                "1",
            ),
            vec!["istio_requests_total", "--metric", "evl_metric"],
        ),
        (
            series(
                r#"{"evl_metric":"p90_ms","workload":"a","namespace":"b"}"#,
                "1",
            ),
            vec!["p90_ms", "unknown measure"],
        ),
        (
            series(r#"{"evl_metric":"rps","namespace":"b"}"#, "1"),
            vec![
                "no workload or destination_workload label",
                "--workload-label",
            ],
        ),
        (
            r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#
                .to_string(),
            vec!["\"error\"", "parse error at char 5"],
        ),
        (
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#.to_string(),
            vec!["\"scalar\"", "per-workload series"],
        ),
        (
            "{\"status\": \"success\",\n \"data\": {".to_string(),
            vec!["p.json, line 2", "JSON does not parse"],
        ),
    ];
    for (json, needles) in cases {
        let e = telemetry::parse("p.json", json.as_bytes(), "w", false)
            .unwrap_err()
            .to_string();
        for n in needles {
            assert!(e.contains(n), "{e:?} should contain {n:?}");
        }
    }
}

#[test]
fn duplicate_series_and_rows_are_refused() {
    let s = r#"{"metric":{"evl_metric":"rps","workload":"a","namespace":"b","pod":"p1"},"value":[1,"1"]}"#;
    let json =
        format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{s},{s}]}}}}"#);
    let e = telemetry::parse("d.json", json.as_bytes(), "w", false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("repeats measure rps") && e.contains("b/a"),
        "{e}"
    );
    let csv = "workload,namespace,success_rate,error_rate,p50_ms,p95_ms,p99_ms,rps\na,b,1,0,1,1,1,1\na,b,1,0,1,1,1,1\n";
    let e = telemetry::parse("d.csv", csv.as_bytes(), "w", false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3") && e.contains("first on line 2"), "{e}");
}

#[test]
fn csv_errors_name_line_and_column() {
    let e = telemetry::parse("t.csv", b"workload,namespace,rps,p90_ms\n", "w", false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("t.csv, line 1, field column 4")
            && e.contains("\"p90_ms\" is not a telemetry column"),
        "{e}"
    );
    let e = telemetry::parse("t.csv", b"workload,rps\n", "w", false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 1, field namespace") && e.contains("lacks"),
        "{e}"
    );
}

#[test]
fn csv_non_finite_and_negative_values_name_line_and_column() {
    let csv =
        "workload,namespace,success_rate,error_rate,p50_ms,p95_ms,p99_ms,rps\na,b,1,0,1,NaN,1,1\n";
    let e = telemetry::parse("t.csv", csv.as_bytes(), "w", false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 2, field p95_ms") && e.contains("finite"),
        "{e}"
    );
    let csv =
        "workload,namespace,success_rate,error_rate,p50_ms,p95_ms,p99_ms,rps\na,b,1,0,1,-3,1,1\n";
    let e = telemetry::parse("t.csv", csv.as_bytes(), "w", false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 2, field p95_ms") && e.contains("zero or more"),
        "{e}"
    );
}

#[test]
fn csv_columns_in_any_order_with_optional_measures() {
    let csv = "RPS,Namespace,p95_ms,workload\n120,payments,48,payments-api\n";
    let t = telemetry::parse("t.csv", csv.as_bytes(), "w", false).unwrap();
    let p = t.get("payments", "payments-api").unwrap();
    assert_eq!(p.rps.as_ref().unwrap().last, 120.0);
    assert_eq!(p.p95_ms.as_ref().unwrap().last, 48.0);
    assert!(p.success_rate.is_none());
}

// ---------------------------------------------------------------------------------------------
// Real responses as Prometheus and compatible servers return them: the envelope of
// https://prometheus.io/docs/prometheus/latest/querying/api/#format-overview (status, data,
// warnings, infos), the result types of §"Expression query result formats", Istio's standard
// metric labels (https://istio.io/latest/docs/reference/config/metrics/), and
// VictoriaMetrics' `isPartial`.

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/ingest")
            .join(name),
    )
    .unwrap()
}

fn mapped(
    name: &str,
    bytes: &[u8],
    m: telemetry::Mapping,
) -> Result<telemetry::TelemetrySummary, String> {
    telemetry::parse_mapped(name, bytes, "w", true, &m).map_err(|e| e.to_string())
}

/// A `histogram_quantile` over Istio's standard metrics carries no `__name__` and no evl
/// label: it imports as-is with the istio profile and `--metric p95_ms`, the mapping and the
/// response's warnings and infos recorded in the facts.
#[test]
fn an_istio_promql_result_imports_as_is_with_the_istio_profile() {
    let bytes = fixture("prometheus-istio-p95.json");
    let e = telemetry::parse("p95.json", &bytes, "w", true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--metric"),
        "without a mapping it says how to map: {e}"
    );
    let t = mapped(
        "p95.json",
        &bytes,
        telemetry::Mapping {
            profile: Some("istio".into()),
            metrics: vec!["p95_ms".into()],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(t.format, "prometheus-vector");
    assert_eq!(t.workloads.len(), 3);
    assert_eq!(
        t.get("identity", "identity-token-service")
            .unwrap()
            .p95_ms
            .as_ref()
            .unwrap()
            .last,
        88.25
    );
    let m = t.mapping.as_ref().unwrap();
    assert_eq!(m.profile.as_deref(), Some("istio"));
    assert_eq!(m.metrics, vec!["p95_ms"]);
    assert_eq!(m.workload_labels, vec!["destination_workload"]);
    assert_eq!(m.namespace_labels, vec!["destination_workload_namespace"]);
    assert_eq!(t.warnings.len(), 1);
    assert!(t.warnings[0].contains("mix of histograms and floats"));
    assert_eq!(t.infos.len(), 1);
}

/// Recording-rule series keep `__name__`: `--metric NAME=MEASURE` maps each, and
/// `--workload-label` / `--namespace-label` name the labels; a partial VictoriaMetrics answer
/// is recorded as a warning.
#[test]
fn recording_rule_series_map_by_name_and_labels() {
    let t = mapped(
        "vm.json",
        &fixture("victoriametrics-range.json"),
        telemetry::Mapping {
            metrics: vec![
                "workload:request_error_ratio:rate5m=error_rate".into(),
                "workload:requests:rate5m=rps".into(),
            ],
            workload_label: Some("deployment".into()),
            namespace_label: Some("kubernetes_namespace".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let w = t.get("payments", "payments-api").unwrap();
    let e = w.error_rate.as_ref().unwrap();
    assert_eq!((e.last, e.max, e.samples), (0.002, 0.004, 3));
    assert_eq!(w.rps.as_ref().unwrap().last, 215.5);
    assert!(
        t.warnings.iter().any(|w| w.contains("isPartial")),
        "{:?}",
        t.warnings
    );
    assert_eq!(
        t.mapping.as_ref().unwrap().workload_labels,
        vec!["deployment"]
    );
}

/// Result types and envelope shapes that cannot be per-workload series are refused with one
/// plain line (no Rust debug text).
#[test]
fn unusable_results_are_refused_in_plain_words() {
    for (json, needle) in [
        (
            r#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#,
            "\"string\", one value without labels",
        ),
        (
            r#"{"status":"success","data":{"result":[]}}"#,
            "has no data.resultType",
        ),
        (
            r#"{"status":"success","data":{"resultType":7,"result":[]}}"#,
            "data.resultType is a number, not a string",
        ),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[]},"warnings":"x"}"#,
            "warnings is a string, not an array",
        ),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"workload":"a","namespace":"b"},"histogram":[1,{"count":"1","sum":"1"}]}]}}"#,
            "native histogram",
        ),
    ] {
        let e = mapped(
            "r.json",
            json.as_bytes(),
            telemetry::Mapping {
                metrics: vec!["p95_ms".into()],
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.contains(needle), "{e}");
        assert!(!e.contains("Some(") && !e.contains("None"), "{e}");
    }
}

/// Istio records each request twice (reporter="source" and "destination"); unfiltered, one
/// workload has two series of one measure, and the error says what to filter.
#[test]
fn istio_reporter_duplicates_name_the_filter() {
    let s = |reporter: &str| {
        format!(
            r#"{{"metric":{{"destination_workload":"a","destination_workload_namespace":"b","reporter":"{reporter}"}},"value":[1,"3"]}}"#
        )
    };
    let json = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{},{}]}}}}"#,
        s("source"),
        s("destination")
    );
    let e = mapped(
        "d.json",
        json.as_bytes(),
        telemetry::Mapping {
            profile: Some("istio".into()),
            metrics: vec!["rps".into()],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        e.contains("repeats measure rps") && e.contains("reporter"),
        "{e}"
    );
}

/// The mapping options are checked, and refused on CSV, whose columns name the measures.
#[test]
fn mapping_options_are_checked() {
    let json = fixture("prometheus-istio-p95.json");
    for (m, needle) in [
        (
            telemetry::Mapping {
                profile: Some("linkerd".into()),
                ..Default::default()
            },
            "profile \"linkerd\" is not known",
        ),
        (
            telemetry::Mapping {
                metrics: vec!["p90_ms".into()],
                ..Default::default()
            },
            "\"p90_ms\", which is not one of",
        ),
        (
            telemetry::Mapping {
                metrics: vec!["rps".into(), "p95_ms".into()],
                ..Default::default()
            },
            "more than one measure",
        ),
    ] {
        let e = mapped("p.json", &json, m).unwrap_err();
        assert!(e.contains(needle), "{e}");
    }
    let e = mapped(
        "t.csv",
        &fixture("telemetry.csv"),
        telemetry::Mapping {
            metrics: vec!["rps".into()],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.contains("apply only to Prometheus responses"), "{e}");
}

/// JSON objects are unordered (RFC 8259 §4): a server may send `data.result` before
/// `data.resultType` and `status` after `data`. The same response with its keys reordered
/// gives the same facts.
#[test]
fn key_order_of_the_response_does_not_matter() {
    let series = r#"{"values":[[1712966460,"0.5"],[1712966400,"0.25"]],"metric":{"namespace":"b","evl_metric":"error_rate","workload":"a"}}"#;
    let usual = format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{series}]}},"warnings":["w1"]}}"#
    );
    let reordered = format!(
        r#"{{"warnings":["w1"],"data":{{"result":[{series}],"resultType":"matrix"}},"status":"success"}}"#
    );
    let a = telemetry::parse("a.json", usual.as_bytes(), "w", false).unwrap();
    let b = telemetry::parse("b.json", reordered.as_bytes(), "w", false).unwrap();
    assert_eq!(a, b);
    let m = a.get("b", "a").unwrap().error_rate.clone().unwrap();
    // The latest by timestamp, whatever order the samples came in.
    assert_eq!((m.last, m.min, m.max, m.samples), (0.5, 0.25, 0.5, 2));
    assert_eq!(m.last_at, Some(1712966460.0));
    assert_eq!(a.format, "prometheus-matrix");
    // A status that is not success is reported first even when it comes last.
    let failed = format!(
        r#"{{"data":{{"result":[{{"metric":{{}}}}],"resultType":"vector"}},"status":"error","error":"timeout"}}"#
    );
    let e = telemetry::parse("f.json", failed.as_bytes(), "w", false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("field status") && e.contains("timeout"), "{e}");
}

/// The Prometheus API writes label values as strings; anything else names the label, and a
/// series with more labels than the reader holds is refused naming the limit.
#[test]
fn label_values_must_be_strings_and_labels_are_capped() {
    let e = telemetry::parse(
        "n.json",
        series(r#"{"evl_metric":"rps","workload":7,"namespace":"b"}"#, "1").as_bytes(),
        "w",
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("field data.result[0].metric.workload") && e.contains("is a number"),
        "{e}"
    );
    // A workload is a Kubernetes object: its name has at most 253 characters (as in the
    // inventory), a namespace at most 63.
    let long = format!(
        r#"{{"evl_metric":"rps","workload":"{}","namespace":"b"}}"#,
        "w".repeat(254)
    );
    let e = telemetry::parse("w.json", series(&long, "1").as_bytes(), "w", false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("workload name of 254 characters"), "{e}");
    let ok = format!(
        r#"{{"evl_metric":"rps","workload":"{}","namespace":"b"}}"#,
        "w".repeat(253)
    );
    assert!(telemetry::parse("w.json", series(&ok, "1").as_bytes(), "w", false).is_ok());
    let mut labels = String::from(r#"{"evl_metric":"rps","workload":"a","namespace":"b""#);
    for i in 0..=telemetry::MAX_LABELS_PER_SERIES {
        labels.push_str(&format!(r#","l{i}":"""#));
    }
    labels.push('}');
    let e = telemetry::parse("l.json", series(&labels, "1").as_bytes(), "w", false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("number of labels") && e.contains(&telemetry::MAX_LABELS_PER_SERIES.to_string()),
        "{e}"
    );
}

/// A message names a series by its labels, shortened: a series of hundreds of long labels
/// still gives one readable line.
#[test]
fn a_series_with_long_labels_is_named_in_a_short_line() {
    let mut labels = String::from(r#"{"evl_metric":"rps","namespace":"b""#);
    for i in 0..500 {
        labels.push_str(&format!(r#","label_{i}":"{}""#, "x".repeat(100)));
    }
    labels.push('}');
    let e = telemetry::parse("s.json", series(&labels, "1").as_bytes(), "w", false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no workload or destination_workload label"),
        "{e}"
    );
    assert!(e.chars().count() < 600 && !e.contains('\n'), "{e}");
    assert!(e.contains('…'), "{e}");
}

/// A response may carry many warnings; the first 100 are recorded and the rest counted.
#[test]
fn warnings_beyond_the_cap_are_counted() {
    let warnings: Vec<String> = (0..250).map(|i| format!("\"warning {i}\"")).collect();
    let json = format!(
        r#"{{"status":"success","warnings":[{}],"data":{{"resultType":"vector","result":[]}}}}"#,
        warnings.join(",")
    );
    let t = telemetry::parse("w.json", json.as_bytes(), "w", false).unwrap();
    assert_eq!(t.warnings.len(), telemetry::MAX_ENVELOPE_NOTES + 2);
    assert_eq!(t.warnings[0], "warning 0");
    assert!(
        t.warnings[100].contains("150 more warnings"),
        "{:?}",
        t.warnings[100]
    );
    assert_eq!(t.warnings[101], "the result holds no series");
}

/// Hostile responses at the 16 MiB input cap, each shaped to cost the most memory in one
/// place (one series of tiny labels, one series of tiny samples, the most series of many
/// labels, a huge warnings array): read or refused, never held as a tree. The release-build
/// measurements (time, peak memory) are in docs/IMPORTERS.md §"Telemetry"; this test runs them
/// for behaviour.
#[test]
fn hostile_responses_at_the_input_cap_are_read_or_refused() {
    let cap = telemetry::MAX_INPUT_BYTES - 200;
    let fill = |unit: &dyn Fn(usize) -> String| {
        let mut out = Vec::new();
        let mut size = 0;
        let mut i = 0;
        while size < cap {
            let s = unit(i);
            size += s.len() + 1;
            out.push(s);
            i += 1;
        }
        out.join(",")
    };
    let labels = fill(&|i| format!(r#""l{i}":"""#));
    let json = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{{labels}}},"value":[1,"1"]}}]}}}}"#
    );
    let e = telemetry::parse("labels.json", json.as_bytes(), "w", false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("number of labels"), "{e}");
    let samples = fill(&|i| format!(r#"[{i},"1"]"#));
    let json = format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"evl_metric":"rps","workload":"a","namespace":"b"}},"values":[{samples}]}}]}}}}"#
    );
    let t = telemetry::parse("samples.json", json.as_bytes(), "w", false).unwrap();
    let rps = t.get("b", "a").unwrap().rps.clone().unwrap();
    assert!(rps.samples > 1_000_000, "{}", rps.samples);
    let warnings = fill(&|_| r#""""#.to_string());
    let json = format!(
        r#"{{"status":"success","warnings":[{warnings}],"data":{{"resultType":"vector","result":[]}}}}"#
    );
    let t = telemetry::parse("warnings.json", json.as_bytes(), "w", false).unwrap();
    assert_eq!(t.warnings.len(), telemetry::MAX_ENVELOPE_NOTES + 2);
}
