//! The Prometheus HTTP API response
//! (<https://prometheus.io/docs/prometheus/latest/querying/api/#format-overview>), read as it is
//! parsed: each series is reduced to the few facts evl keeps (its measure, workload, namespace
//! and a running last/min/max/count of its samples) before the next is read, so neither a JSON
//! tree nor a series' labels or samples are held. A response at the 16 MiB input cap, however it
//! is shaped, stays far below the memory bound.
//!
//! JSON objects are unordered, so `data.result` may come before `data.resultType` and `status`
//! after `data`: every check that needs them runs once the whole response is read, in the
//! order the messages promise (status, envelope, result type, series in order).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{
    AppliedMapping, ByWorkload, MAX_SERIES, MEASURES, Mapping, Measurement, TelemetrySummary,
    WorkloadMetrics, check_value,
};
use crate::ingest::IngestError;

/// Most labels one series may carry (Prometheus series carry tens; Istio's standard metrics
/// about thirty). Refused beyond, so one series cannot hold the whole input as labels.
pub const MAX_LABELS_PER_SERIES: usize = 1_000;
/// Most entries of the response's `warnings` (and of its `infos`) recorded in the facts; the
/// rest are counted in one closing note.
pub const MAX_ENVELOPE_NOTES: usize = 100;
/// Longest series description in a message (the labels are shortened beyond).
const MAX_NAME_CHARS: usize = 300;

/// Where the reader is: names the series in errors.
#[derive(Clone, Copy)]
struct Cx<'a> {
    mapping: &'a Mapping,
    applied: &'a AppliedMapping,
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

/// Which JSON type a visitor met, for values it does not keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

/// Consumes any value and says which type it was.
struct KindOf;

impl<'de> Visitor<'de> for KindOf {
    type Value = Kind;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Bool)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Kind, E> {
        Ok(Kind::Number)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Kind, E> {
        Ok(Kind::Number)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Kind, E> {
        Ok(Kind::Number)
    }
    fn visit_str<E>(self, _: &str) -> Result<Kind, E> {
        Ok(Kind::String)
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Kind::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Kind::Object)
    }
}

impl<'de> DeserializeSeed<'de> for KindOf {
    type Value = Kind;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(self)
    }
}

/// Rejects a key seen twice in one object, as serde's derived readers do.
fn once<E: de::Error, T>(slot: &Option<T>, key: &'static str) -> Result<(), E> {
    if slot.is_some() {
        Err(E::duplicate_field(key))
    } else {
        Ok(())
    }
}

// ---- the envelope ----------------------------------------------------------------------

/// `warnings` / `infos`: absent or null, an array of strings (the first
/// [`MAX_ENVELOPE_NOTES`] kept, all counted), or what else it was.
enum Notes {
    Strings { kept: Vec<String>, total: usize },
    NotArray(Kind),
    NotString(Kind),
}

struct NotesSeed;

impl<'de> DeserializeSeed<'de> for NotesSeed {
    type Value = Notes;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Notes, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NotesSeed {
    type Value = Notes;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Notes, A::Error> {
        let mut kept = Vec::new();
        let mut total = 0;
        let mut bad = None;
        while let Some(item) = seq.next_element::<Value>()? {
            // A hostile array of huge strings costs one string at a time, not all of them.
            match item {
                Value::String(s) if bad.is_none() => {
                    total += 1;
                    if kept.len() < MAX_ENVELOPE_NOTES {
                        kept.push(s);
                    }
                }
                Value::String(_) => {}
                other => {
                    bad.get_or_insert(match other {
                        Value::Null => Kind::Null,
                        Value::Bool(_) => Kind::Bool,
                        Value::Number(_) => Kind::Number,
                        Value::Array(_) => Kind::Array,
                        _ => Kind::Object,
                    });
                }
            }
        }
        Ok(match bad {
            Some(k) => Notes::NotString(k),
            None => Notes::Strings { kept, total },
        })
    }
    fn visit_unit<E>(self) -> Result<Notes, E> {
        Ok(Notes::Strings {
            kept: Vec::new(),
            total: 0,
        })
    }
    fn visit_bool<E>(self, _: bool) -> Result<Notes, E> {
        Ok(Notes::NotArray(Kind::Bool))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Notes, E> {
        Ok(Notes::NotArray(Kind::Number))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Notes, E> {
        Ok(Notes::NotArray(Kind::Number))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Notes, E> {
        Ok(Notes::NotArray(Kind::Number))
    }
    fn visit_str<E>(self, _: &str) -> Result<Notes, E> {
        Ok(Notes::NotArray(Kind::String))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Notes, A::Error> {
        KindOf.visit_map(map).map(Notes::NotArray)
    }
}

/// The response object.
#[derive(Default)]
struct Envelope {
    status: Option<Value>,
    error_type: Option<Value>,
    error: Option<Value>,
    data: Option<Data>,
    warnings: Option<Notes>,
    infos: Option<Notes>,
    is_partial: Option<Value>,
}

struct EnvelopeSeed<'a>(Cx<'a>);

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = Envelope;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Envelope, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = Envelope;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Prometheus API response object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut env = Envelope::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "status" => {
                    once(&env.status, "status")?;
                    env.status = Some(map.next_value()?);
                }
                "errorType" => {
                    once(&env.error_type, "errorType")?;
                    env.error_type = Some(map.next_value()?);
                }
                "error" => {
                    once(&env.error, "error")?;
                    env.error = Some(map.next_value()?);
                }
                "data" => {
                    once(&env.data, "data")?;
                    env.data = Some(map.next_value_seed(DataSeed(self.0))?);
                }
                "warnings" => {
                    once(&env.warnings, "warnings")?;
                    env.warnings = Some(map.next_value_seed(NotesSeed)?);
                }
                "infos" => {
                    once(&env.infos, "infos")?;
                    env.infos = Some(map.next_value_seed(NotesSeed)?);
                }
                "isPartial" => {
                    once(&env.is_partial, "isPartial")?;
                    env.is_partial = Some(map.next_value()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(env)
    }
}

// ---- data and its result -----------------------------------------------------------------

struct Data {
    result_type: Option<Value>,
    /// `None`: absent or not an array.
    result: Option<Vec<Pending>>,
    /// How many elements `data.result` had (all counted, only [`MAX_SERIES`] read).
    count: usize,
}

struct DataSeed<'a>(Cx<'a>);

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = Data;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Data, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_> {
    type Value = Data;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the data object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Data, A::Error> {
        let mut result_type: Option<Value> = None;
        let mut result: Option<Option<(Vec<Pending>, usize)>> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "resultType" => {
                    once(&result_type, "resultType")?;
                    result_type = Some(map.next_value()?);
                }
                "result" => {
                    once(&result, "result")?;
                    result = Some(map.next_value_seed(ResultSeed(self.0))?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let (result, count) = match result.flatten() {
            Some((r, n)) => (Some(r), n),
            None => (None, 0),
        };
        Ok(Data {
            result_type,
            result,
            count,
        })
    }
}

/// `data.result`: the series read (at most [`MAX_SERIES`]) and how many there were, or `None`
/// when it is not an array.
struct ResultSeed<'a>(Cx<'a>);

impl<'de> DeserializeSeed<'de> for ResultSeed<'_> {
    type Value = Option<(Vec<Pending>, usize)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ResultSeed<'_> {
    type Value = Option<(Vec<Pending>, usize)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of series")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut read = Vec::new();
        let mut count = 0usize;
        loop {
            if count < MAX_SERIES {
                match seq.next_element_seed(SeriesSeed(self.0))? {
                    Some(p) => read.push(p),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            count += 1;
        }
        Ok(Some((read, count)))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        KindOf.visit_map(map).map(|_| None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
}

// ---- one series ------------------------------------------------------------------------

/// What is wrong with a series' labels, found while reading them.
enum LabelTrouble {
    NotObject(Kind),
    /// (label, JSON type of its value)
    NotString(String, Kind),
    TooMany(usize),
}

/// One series reduced to what evl keeps; checked once the whole response is read.
struct Pending {
    /// `Object` unless the element of `data.result` was something else.
    kind: Kind,
    /// `None`: no `metric` key.
    labels: Option<Result<Derived, LabelTrouble>>,
    histogram: bool,
    /// `value` (instant vector) and `values` (range vector) as read.
    value: Option<Fold>,
    values: Option<Fold>,
}

/// From a series' labels: what the mapping makes of them, and a readable name.
struct Derived {
    name: String,
    name_label: Option<String>,
    evl_metric: Option<String>,
    workload: Option<String>,
    namespace: Option<String>,
    reporter: bool,
}

struct SeriesSeed<'a>(Cx<'a>);

impl<'de> DeserializeSeed<'de> for SeriesSeed<'_> {
    type Value = Pending;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Pending, D::Error> {
        d.deserialize_any(self)
    }
}

impl SeriesSeed<'_> {
    fn other(kind: Kind) -> Pending {
        Pending {
            kind,
            labels: None,
            histogram: false,
            value: None,
            values: None,
        }
    }
}

impl<'de> Visitor<'de> for SeriesSeed<'_> {
    type Value = Pending;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a series object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pending, A::Error> {
        let mut p = Self::other(Kind::Object);
        let mut histogram: Option<()> = None;
        let mut histograms: Option<()> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "metric" => {
                    once(&p.labels, "metric")?;
                    p.labels = Some(map.next_value_seed(LabelsSeed(self.0))?);
                }
                "value" => {
                    once(&p.value, "value")?;
                    let mut f = Fold::default();
                    map.next_value_seed(SampleSeed(&mut f))?;
                    p.value = Some(f);
                }
                "values" => {
                    once(&p.values, "values")?;
                    p.values = Some(map.next_value_seed(SamplesSeed)?);
                }
                "histogram" => {
                    once(&histogram, "histogram")?;
                    map.next_value::<IgnoredAny>()?;
                    histogram = Some(());
                }
                "histograms" => {
                    once(&histograms, "histograms")?;
                    map.next_value::<IgnoredAny>()?;
                    histograms = Some(());
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        p.histogram = histogram.is_some() || histograms.is_some();
        Ok(p)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Pending, A::Error> {
        KindOf.visit_seq(seq).map(Self::other)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Pending, E> {
        Ok(Self::other(Kind::Bool))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Pending, E> {
        Ok(Self::other(Kind::Number))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Pending, E> {
        Ok(Self::other(Kind::Number))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Pending, E> {
        Ok(Self::other(Kind::Number))
    }
    fn visit_str<E>(self, _: &str) -> Result<Pending, E> {
        Ok(Self::other(Kind::String))
    }
    fn visit_unit<E>(self) -> Result<Pending, E> {
        Ok(Self::other(Kind::Null))
    }
}

/// A series' `metric` object, reduced to [`Derived`] as soon as it is read.
struct LabelsSeed<'a>(Cx<'a>);

impl<'de> DeserializeSeed<'de> for LabelsSeed<'_> {
    type Value = Result<Derived, LabelTrouble>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A label value: the string, or the JSON type it was instead.
struct LabelValue;

impl<'de> DeserializeSeed<'de> for LabelValue {
    type Value = Result<String, Kind>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LabelValue {
    type Value = Result<String, Kind>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a label value")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Ok(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Ok(v))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(Kind::Bool))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(Kind::Number))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(Kind::Number))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(Kind::Number))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(Kind::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        KindOf.visit_seq(seq).map(Err)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        KindOf.visit_map(map).map(Err)
    }
}

impl<'de> Visitor<'de> for LabelsSeed<'_> {
    type Value = Result<Derived, LabelTrouble>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of labels")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // At most MAX_LABELS_PER_SERIES labels are held; beyond, they are only counted.
        let mut labels: Vec<(String, String)> = Vec::new();
        let mut count = 0usize;
        let mut trouble = None;
        while let Some(key) = map.next_key::<String>()? {
            count += 1;
            if trouble.is_some() || count > MAX_LABELS_PER_SERIES {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            match map.next_value_seed(LabelValue)? {
                Ok(v) => labels.push((key, v)),
                Err(kind) => trouble = Some(LabelTrouble::NotString(key, kind)),
            }
        }
        if let Some(t) = trouble {
            return Ok(Err(t));
        }
        if count > MAX_LABELS_PER_SERIES {
            return Ok(Err(LabelTrouble::TooMany(count)));
        }
        // A label given twice: the last one, as a JSON object read into a map keeps.
        labels.reverse();
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        labels.dedup_by(|later, first| later.0 == first.0);
        let get = |k: &str| {
            labels
                .binary_search_by(|(n, _)| n.as_str().cmp(k))
                .ok()
                .map(|i| labels[i].1.clone())
        };
        let first_of = |names: &[String]| names.iter().find_map(|n| get(n));
        Ok(Ok(Derived {
            name: series_name(&labels),
            name_label: get("__name__"),
            evl_metric: get("evl_metric"),
            workload: first_of(&self.0.applied.workload_labels),
            namespace: first_of(&self.0.applied.namespace_labels),
            reporter: get("reporter").is_some(),
        }))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        KindOf
            .visit_seq(seq)
            .map(|k| Err(LabelTrouble::NotObject(k)))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(LabelTrouble::NotObject(Kind::Bool)))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(LabelTrouble::NotObject(Kind::Number)))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(LabelTrouble::NotObject(Kind::Number)))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(LabelTrouble::NotObject(Kind::Number)))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(LabelTrouble::NotObject(Kind::String)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(LabelTrouble::NotObject(Kind::Null)))
    }
}

/// A readable name for a series: `__name__{label="value",...}` with labels sorted, shortened
/// to [`MAX_NAME_CHARS`] characters.
fn series_name(sorted: &[(String, String)]) -> String {
    let name = sorted
        .iter()
        .find(|(k, _)| k == "__name__")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let mut out = format!("{name}{{");
    let mut first = true;
    for (k, v) in sorted.iter().filter(|(k, _)| k != "__name__") {
        if out.chars().count() > MAX_NAME_CHARS {
            out.push('…');
            break;
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&format!("{k}={v:?}"));
    }
    out.push('}');
    if out.chars().count() > MAX_NAME_CHARS + 2 {
        let cut: String = out.chars().take(MAX_NAME_CHARS).collect();
        out = format!("{cut}…}}");
    }
    out
}

// ---- samples ---------------------------------------------------------------------------

/// Why a sample cannot be read.
#[derive(Clone, PartialEq)]
enum SampleTrouble {
    /// Not a `[timestamp, "value"]` pair.
    NotPair,
    /// The value string is not a number.
    NotNumber(String),
    /// The value is NaN or infinite.
    NonFinite(f64),
    /// The timestamp is not finite.
    NonFiniteTime,
}

/// A running summary of samples: count, min, max and the latest by timestamp (ties: the
/// larger value), so the result does not depend on the order the server sent them in; and the
/// first sample that cannot be read.
#[derive(Default)]
struct Fold {
    count: usize,
    min: f64,
    max: f64,
    last: Option<(f64, f64)>,
    trouble: Option<SampleTrouble>,
}

impl Fold {
    fn add(&mut self, sample: Result<(f64, f64), SampleTrouble>) {
        self.count += 1;
        if self.trouble.is_some() {
            return;
        }
        match sample {
            Err(t) => self.trouble = Some(t),
            Ok((ts, v)) => {
                if self.last.is_none() {
                    self.min = v;
                    self.max = v;
                } else {
                    self.min = self.min.min(v);
                    self.max = self.max.max(v);
                }
                let later = self.last.is_none_or(|(lt, lv)| {
                    ts.total_cmp(&lt).then(v.total_cmp(&lv)) == std::cmp::Ordering::Greater
                });
                if later {
                    self.last = Some((ts, v));
                }
            }
        }
    }
}

/// One `[timestamp, "value"]` pair, folded into the [`Fold`].
struct SampleSeed<'f>(&'f mut Fold);

impl<'de> DeserializeSeed<'de> for SampleSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let s = d.deserialize_any(SampleVisitor)?;
        self.0.add(s);
        Ok(())
    }
}

struct SampleVisitor;

/// A sample's timestamp: a JSON number, else `None`.
struct Timestamp;

impl<'de> DeserializeSeed<'de> for Timestamp {
    type Value = Option<f64>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<f64>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Timestamp {
    type Value = Option<f64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a timestamp")
    }
    fn visit_i64<E>(self, v: i64) -> Result<Option<f64>, E> {
        Ok(Some(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Option<f64>, E> {
        Ok(Some(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Option<f64>, E> {
        Ok(Some(v))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Option<f64>, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Option<f64>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<f64>, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<f64>, A::Error> {
        KindOf.visit_seq(seq).map(|_| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<f64>, A::Error> {
        KindOf.visit_map(map).map(|_| None)
    }
}

/// A sample's value: a string holding a number (Prometheus writes values as strings so that
/// NaN and ±Inf survive JSON).
struct SampleValue;

impl<'de> DeserializeSeed<'de> for SampleValue {
    type Value = Result<f64, SampleTrouble>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SampleValue {
    type Value = Result<f64, SampleTrouble>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sample value")
    }
    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(text.trim().parse::<f64>().map_err(|_| {
            // Only the start of a hostile value is kept for the message.
            SampleTrouble::NotNumber(text.chars().take(64).collect())
        }))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(SampleTrouble::NotPair))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(SampleTrouble::NotPair))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(SampleTrouble::NotPair))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(SampleTrouble::NotPair))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(SampleTrouble::NotPair))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        KindOf.visit_seq(seq).map(|_| Err(SampleTrouble::NotPair))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        KindOf.visit_map(map).map(|_| Err(SampleTrouble::NotPair))
    }
}

impl<'de> Visitor<'de> for SampleVisitor {
    type Value = Result<(f64, f64), SampleTrouble>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [timestamp, \"value\"] pair")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let ts = seq.next_element_seed(Timestamp)?;
        let value = seq.next_element_seed(SampleValue)?;
        let extra = seq.next_element::<IgnoredAny>()?.is_some();
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(match (ts, value, extra) {
            (Some(Some(ts)), Some(value), false) => match value {
                Ok(v) if !v.is_finite() => Err(SampleTrouble::NonFinite(v)),
                Ok(_) if !ts.is_finite() => Err(SampleTrouble::NonFiniteTime),
                Ok(v) => Ok((ts, v)),
                // A value that is not a number is named even if the pair is otherwise fine.
                Err(SampleTrouble::NotNumber(t)) => Err(SampleTrouble::NotNumber(t)),
                Err(_) => Err(SampleTrouble::NotPair),
            },
            _ => Err(SampleTrouble::NotPair),
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        KindOf.visit_map(map).map(|_| Err(SampleTrouble::NotPair))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(SampleTrouble::NotPair))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(SampleTrouble::NotPair))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(SampleTrouble::NotPair))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(SampleTrouble::NotPair))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(SampleTrouble::NotPair))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(SampleTrouble::NotPair))
    }
}

/// A range vector's `values`: every pair folded as it is read. Not an array: `NotPair` once.
struct SamplesSeed;

impl<'de> DeserializeSeed<'de> for SamplesSeed {
    type Value = Fold;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Fold, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SamplesSeed {
    type Value = Fold;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of samples")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Fold, A::Error> {
        let mut f = Fold::default();
        while seq.next_element_seed(SampleSeed(&mut f))?.is_some() {}
        Ok(f)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Fold, A::Error> {
        KindOf.visit_map(map)?;
        Ok(Self::not_array())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Fold, E> {
        Ok(Self::not_array())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Fold, E> {
        Ok(Self::not_array())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Fold, E> {
        Ok(Self::not_array())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Fold, E> {
        Ok(Self::not_array())
    }
    fn visit_str<E>(self, _: &str) -> Result<Fold, E> {
        Ok(Self::not_array())
    }
    fn visit_unit<E>(self) -> Result<Fold, E> {
        Ok(Self::not_array())
    }
}

impl SamplesSeed {
    fn not_array() -> Fold {
        let mut f = Fold::default();
        f.add(Err(SampleTrouble::NotPair));
        f
    }
}

// ---- the checks ------------------------------------------------------------------------

/// The strings of an optional array field of the envelope (`warnings`, `infos`).
fn envelope_strings(
    source_name: &str,
    v: Option<Notes>,
    field: &str,
) -> Result<Vec<String>, IngestError> {
    let bad = |why: String| IngestError::malformed(source_name, None, Some(field), why);
    match v {
        None => Ok(Vec::new()),
        Some(Notes::Strings { mut kept, total }) => {
            if total > kept.len() {
                kept.push(format!(
                    "(and {} more {field} not recorded: evl keeps the first {MAX_ENVELOPE_NOTES})",
                    total - kept.len()
                ));
            }
            Ok(kept)
        }
        Some(Notes::NotString(k)) => Err(bad(format!(
            "the response's {field} hold {}, not a string",
            k.describe()
        ))),
        Some(Notes::NotArray(k)) => Err(bad(format!(
            "the response's {field} is {}, not an array of strings",
            k.describe()
        ))),
    }
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
    let cx = Cx { mapping, applied };
    let not_json = |e: serde_json::Error| {
        IngestError::malformed(
            source_name,
            Some(e.line()),
            None,
            format!("the JSON does not parse ({e})"),
        )
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let doc = EnvelopeSeed(cx).deserialize(&mut de).map_err(not_json)?;
    de.end().map_err(not_json)?;
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
    summary.warnings = envelope_strings(source_name, doc.warnings, "warnings")?;
    summary.infos = envelope_strings(source_name, doc.infos, "infos")?;
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
    let vector = match &data.result_type {
        Some(Value::String(t)) if t == "vector" => {
            summary.format = "prometheus-vector".to_string();
            true
        }
        Some(Value::String(t)) if t == "matrix" => {
            summary.format = "prometheus-matrix".to_string();
            false
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
    if data.count > MAX_SERIES {
        return Err(IngestError::too_large(
            source_name,
            None,
            "the number of series",
            MAX_SERIES,
            data.count,
        ));
    }
    if result.is_empty() {
        summary
            .warnings
            .push("the result holds no series".to_string());
    }
    let mut map = ByWorkload::new();
    for (i, series) in result.into_iter().enumerate() {
        let (key, m, measure, namespace, workload, name, reporter) =
            check_series(source_name, cx, i, series, vector)?;
        let entry = map
            .entry((namespace.clone(), workload.clone()))
            .or_insert_with(|| WorkloadMetrics::new(namespace.clone(), workload.clone()));
        let slot = entry.slot(&measure);
        if slot.is_some() {
            let hint = if reporter {
                "; Istio reports each request twice (reporter=\"source\" and reporter=\"destination\"): filter one reporter"
            } else {
                ""
            };
            return Err(bad(
                &key,
                format!(
                    "series {name} repeats measure {measure} for workload {namespace}/{workload}; aggregate the query (e.g. sum by (destination_workload, destination_workload_namespace)) so each workload has one series per measure{hint}"
                ),
            ));
        }
        *slot = Some(m);
    }
    Ok(map)
}

type Checked = (String, Measurement, String, String, String, String, bool);

/// One series' checks, in the order the messages promise; its measurement if they hold.
fn check_series(
    source_name: &str,
    cx: Cx<'_>,
    i: usize,
    series: Pending,
    vector: bool,
) -> Result<Checked, IngestError> {
    let bad =
        |field: &str, why: String| IngestError::malformed(source_name, None, Some(field), why);
    let field = format!("data.result[{i}]");
    if series.kind != Kind::Object {
        return Err(bad(
            &field,
            format!("the series is {}, not an object", series.kind.describe()),
        ));
    }
    let labels = match series.labels {
        None => {
            return Err(bad(
                &format!("{field}.metric"),
                "the series has no metric labels object".to_string(),
            ));
        }
        Some(Err(LabelTrouble::NotObject(k))) => {
            return Err(bad(
                &format!("{field}.metric"),
                format!(
                    "the series' metric is {}, not an object of labels",
                    k.describe()
                ),
            ));
        }
        Some(Err(LabelTrouble::NotString(label, k))) => {
            return Err(bad(
                &format!("{field}.metric.{label}"),
                format!(
                    "the label {label:?} is {}; Prometheus label values are strings",
                    k.describe()
                ),
            ));
        }
        Some(Err(LabelTrouble::TooMany(n))) => {
            return Err(IngestError::too_large(
                source_name,
                None,
                &format!("the number of labels of series {field}"),
                MAX_LABELS_PER_SERIES,
                n,
            ));
        }
        Some(Ok(d)) => d,
    };
    let name = labels.name;
    let measure = cx
        .mapping
        .measure_of(labels.name_label.as_deref(), labels.evl_metric.as_deref())
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
    let workload = labels
        .workload
        .ok_or_else(|| missing("workload", &cx.applied.workload_labels))?;
    let namespace = labels
        .namespace
        .ok_or_else(|| missing("namespace", &cx.applied.namespace_labels))?;
    // Kubernetes names a workload with a DNS subdomain (≤ 253 characters) and a namespace with
    // a DNS label (≤ 63): a longer value cannot be one, and would only inflate the facts.
    for (what, value, limit) in [("workload", &workload, 253), ("namespace", &namespace, 63)] {
        if value.chars().count() > limit {
            return Err(bad(
                &format!("{field}.metric"),
                format!(
                    "series {name} gives a {what} name of {} characters; Kubernetes {what} names have at most {limit}",
                    value.chars().count()
                ),
            ));
        }
    }
    if series.histogram {
        return Err(bad(
            &format!("{field}.histogram"),
            format!(
                "series {name} carries native histogram samples; query a number per sample (e.g. histogram_quantile(0.95, …))"
            ),
        ));
    }
    let (key, fold) = if vector {
        let f = series.value.ok_or_else(|| {
            bad(
                &format!("{field}.value"),
                format!("series {name} has no value"),
            )
        })?;
        ("value", f)
    } else {
        let f = series.values.ok_or_else(|| {
            bad(
                &format!("{field}.values"),
                format!("series {name} has no values array"),
            )
        })?;
        ("values", f)
    };
    let here = format!("{field}.{key}");
    match fold.trouble {
        Some(SampleTrouble::NotPair) => {
            return Err(bad(
                &here,
                format!("series {name} has a sample that is not [timestamp, \"value\"]"),
            ));
        }
        Some(SampleTrouble::NotNumber(text)) => {
            return Err(bad(
                &here,
                format!("series {name} has the sample value {text:?}, which is not a number"),
            ));
        }
        Some(SampleTrouble::NonFinite(v)) => {
            check_value(source_name, None, &format!("series {name}"), &measure, v)?;
        }
        Some(SampleTrouble::NonFiniteTime) => {
            return Err(bad(
                &here,
                format!("series {name} has a non-finite timestamp"),
            ));
        }
        None => {}
    }
    let Some((last_at, last)) = fold.last else {
        return Err(bad(&here, format!("series {name} has no samples")));
    };
    // Every value lies in [min, max]: checking both bounds checks them all.
    for v in [fold.min, fold.max] {
        check_value(source_name, None, &format!("series {name}"), &measure, v)?;
    }
    let m = Measurement {
        last,
        min: fold.min,
        max: fold.max,
        samples: fold.count,
        last_at: Some(last_at),
    };
    Ok((
        field,
        m,
        measure,
        namespace,
        workload,
        name,
        labels.reporter,
    ))
}
