//! Bounded YAML loading: every document of a multi-document file into a JSON value, refusing
//! deep nesting, alias explosions and too many documents while parsing, and locating the line
//! of a field inside a document for error messages.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{MAX_DEPTH, MAX_DOCUMENTS, MAX_NODES};
use crate::ingest::IngestError;

/// One YAML document: its 1-based first and last line and its value.
pub(super) struct Document {
    pub first_line: usize,
    pub last_line: usize,
    pub value: Value,
}

/// Reads every document into JSON values, refusing deep nesting and node explosions.
pub(super) fn load_documents(
    source_name: &str,
    bytes: &[u8],
) -> Result<Vec<Document>, IngestError> {
    if let Some(line) = flow_nesting_beyond(bytes, MAX_DEPTH) {
        return Err(IngestError::malformed(
            source_name,
            Some(line),
            None,
            format!("the nesting is deeper than {MAX_DEPTH} levels"),
        ));
    }
    let starts = document_lines(bytes);
    let total_lines = bytes.split(|&b| b == b'\n').count();
    let mut budget = MAX_NODES;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_slice(bytes).enumerate() {
        if i >= MAX_DOCUMENTS {
            return Err(IngestError::too_large(
                source_name,
                None,
                "the number of YAML documents",
                MAX_DOCUMENTS,
                i + 1,
            ));
        }
        let first_line = starts.get(i).copied().unwrap_or(1);
        let last_line = starts
            .get(i + 1)
            .map_or(total_lines, |next| next.saturating_sub(1).max(first_line));
        let seed = Node {
            left: &mut budget,
            depth: 0,
        };
        let value = seed
            .deserialize(doc)
            .map_err(|e| yaml_error(source_name, &e))?;
        out.push(Document {
            first_line,
            last_line,
            value,
        });
    }
    Ok(out)
}

/// The line where `[`/`{` flow collections first nest deeper than `max`, found in one linear
/// scan that skips quoted scalars and comments. The YAML parser reads a whole document's
/// events before the depth check in [`Node`] can run, so without this a file of a million `[`
/// costs seconds and hundreds of megabytes before it is refused.
fn flow_nesting_beyond(bytes: &[u8], max: usize) -> Option<usize> {
    let (mut depth, mut line) = (0usize, 1usize);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => line += 1,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'#' if i == 0 || bytes[i - 1].is_ascii_whitespace() => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    if bytes[i] == b'\n' {
                        line += 1;
                    }
                    // `\"` escapes inside double quotes; `''` inside single quotes closes
                    // and reopens, which this scan treats the same way.
                    if q == b'"' && bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn yaml_error(source_name: &str, e: &serde_yaml_ng::Error) -> IngestError {
    let line = e.location().map(|l| l.line());
    let msg = e.to_string();
    // Limits get a message of their own; the library's would start with a long node path.
    let hostile = if msg.contains("repetition limit") {
        Some(
            "aliases expand too far (alias expansion is capped at 100 times the document's events)"
                .to_string(),
        )
    } else if msg.contains("recursion limit") || msg.contains("deeper than") {
        Some(format!("the nesting is deeper than {MAX_DEPTH} levels"))
    } else if msg.contains("aliases count") {
        Some(format!(
            "the document expands to more than {MAX_NODES} nodes, counting alias expansions"
        ))
    } else {
        None
    };
    match hostile {
        Some(why) => IngestError::malformed(
            source_name,
            line,
            None,
            format!("the YAML is refused as hostile or too large: {why}"),
        ),
        None => IngestError::malformed(
            source_name,
            line,
            None,
            format!("the YAML does not parse ({msg})"),
        ),
    }
}

/// First line of each document: each line starting with `---`, and the first content line when
/// content precedes the first separator (an implicit first document).
pub(super) fn document_lines(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let t = line.trim_ascii();
        let implicit_first =
            starts.is_empty() && !t.is_empty() && !t.starts_with(b"#") && !t.starts_with(b"%");
        if line.starts_with(b"---") || implicit_first {
            starts.push(i + 1);
        }
    }
    starts
}

/// A seed that builds a JSON value, spending one unit of `left` per node and refusing nesting
/// deeper than [`MAX_DEPTH`]. Keys become strings (YAML allows `8080:` as a key).
struct Node<'b> {
    left: &'b mut usize,
    depth: usize,
}

impl Node<'_> {
    fn spend<E: de::Error>(&mut self) -> Result<(), E> {
        if *self.left == 0 {
            return Err(E::custom(format_args!(
                "the YAML expands to more than {MAX_NODES} nodes (aliases count each time they are used)"
            )));
        }
        *self.left -= 1;
        Ok(())
    }

    fn child(&mut self) -> Node<'_> {
        Node {
            left: self.left,
            depth: self.depth + 1,
        }
    }

    fn enter<E: de::Error>(&mut self) -> Result<(), E> {
        self.spend()?;
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format_args!(
                "the YAML nesting is deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E: de::Error>(mut self, v: bool) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<Value, E> {
        self.spend()?;
        // JSON has no NaN or infinity; keep YAML's spelling as text so nothing is lost.
        Ok(serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(format!("{v}"))))
    }
    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v.to_string()))
    }
    fn visit_unit<E: de::Error>(mut self) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut v = Vec::new();
        while let Some(x) = seq.next_element_seed(self.child())? {
            v.push(x);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut m = serde_json::Map::new();
        while let Some(k) = map.next_key_seed(self.child())? {
            let key = match k {
                Value::String(s) => s,
                Value::Null => "null".to_string(),
                other => other.to_string(),
            };
            let v = map.next_value_seed(self.child())?;
            // Last-wins would silently pick one of two meanings; Kubernetes refuses these too.
            if m.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "the key {key:?} appears twice in one mapping"
                )));
            }
            m.insert(key, v);
        }
        Ok(Value::Object(m))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(mut self, data: A) -> Result<Value, A::Error> {
        // A tagged node (`!Tag value`): the tag is dropped, the value kept.
        use serde::de::VariantAccess;
        self.spend()?;
        let (_tag, variant): (Value, _) = data.variant_seed(self.child())?;
        variant.newtype_variant_seed(self.child())
    }
}

/// The 1-based line of the field `path` (e.g. `spec.rules[0].from[0].source.principals`) inside
/// the document spanning lines `first..=last`, found by looking for each key of the path in
/// turn (`key:` in block or flow style) and skipping list indices; when a key is not found the
/// line of the deepest key found (or `first`) is returned. Used only to point error messages at
/// the right line: the parsed value, not this scan, decides every fact.
pub(super) fn field_line(lines: &[&[u8]], first: usize, last: usize, path: &str) -> usize {
    let keys: Vec<&str> = path
        .split('.')
        .map(|k| k.split('[').next().unwrap_or(k))
        .filter(|k| !k.is_empty())
        .collect();
    let mut found = first;
    let mut next = 0;
    let end = last.min(lines.len());
    let mut n = first;
    while n <= end && next < keys.len() {
        let line = lines[n - 1];
        // Several keys of the path may sit on one line in flow style: `{mtls: {mode: X}}`.
        let mut from = 0;
        while next < keys.len() {
            match find_key(&line[from..], keys[next].as_bytes()) {
                Some(at) => {
                    found = n;
                    from += at + keys[next].len();
                    next += 1;
                }
                None => break,
            }
        }
        n += 1;
    }
    found
}

/// Where `key` appears as a mapping key in `line`: preceded by the line start, whitespace, `{`,
/// `,`, `-` or a quote, and followed (after an optional closing quote) by `:`.
fn find_key(line: &[u8], key: &[u8]) -> Option<usize> {
    if key.is_empty() || line.len() < key.len() {
        return None;
    }
    let comment = line
        .windows(2)
        .position(|w| w[0].is_ascii_whitespace() && w[1] == b'#')
        .unwrap_or(line.len());
    let line = &line[..comment];
    let mut i = 0;
    while i + key.len() <= line.len() {
        if &line[i..i + key.len()] == key {
            let before_ok = i == 0
                || matches!(
                    line[i - 1],
                    b' ' | b'\t' | b'{' | b',' | b'-' | b'"' | b'\''
                );
            let mut j = i + key.len();
            if j < line.len() && matches!(line[j], b'"' | b'\'') {
                j += 1;
            }
            if before_ok && j < line.len() && line[j] == b':' {
                return Some(i);
            }
        }
        i += 1;
    }
    None
}
