//! What `evl evaluate --format` prints for CI systems: JUnit XML, SARIF 2.1.0 and GitHub
//! Actions workflow commands, one finding per blocker (docs/GATES.md §"CI").
//!
//! Every form is derived from the disposition alone, so it is as deterministic as the
//! disposition: no times but the as-of, no paths of this machine.

use std::collections::BTreeMap;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use serde_json::{Value, json};

use crate::disposition::{Blocker, Disposition, Subject, Verdict};

/// The SARIF version written, and the schema it follows (OASIS SARIF 2.1.0 errata 01).
const SARIF_VERSION: &str = "2.1.0";
const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

fn subject_kind(s: &Subject) -> &'static str {
    match s {
        Subject::Workload(_) => "workload",
        Subject::Namespace(_) => "namespace",
        Subject::Path(_) => "path",
        Subject::Exception(_) => "exception",
        Subject::Rule(_) => "rule",
        Subject::Global => "global",
    }
}

fn subject_name(s: &Subject) -> String {
    match s {
        Subject::Workload(n)
        | Subject::Namespace(n)
        | Subject::Path(n)
        | Subject::Exception(n)
        | Subject::Rule(n) => n.clone(),
        Subject::Global => "global".into(),
    }
}

/// The one-line message of a blocker: subject, reason and, where known, the way out.
fn message(b: &Blocker) -> String {
    let mut m = format!("{}: {}", b.subject, b.reason);
    if let Some(u) = &b.unblock {
        m.push_str(&format!(" To unblock: {}.", u.text));
    }
    m
}

/// A scoped blocker only narrows the cutover; any other blocks all of it.
fn level(b: &Blocker) -> &'static str {
    if b.scoped { "warning" } else { "error" }
}

/// A SARIF 2.1.0 log of the disposition: one result per blocker (rule id = blocker code,
/// level `error`, or `warning` for a blocker the gate narrows around) and one per escalation
/// reason (rule id `escalation`), with the verdict in the run's properties.
pub fn sarif(d: &Disposition) -> Value {
    let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
    for b in &d.blockers {
        let n = codes.len();
        codes.entry(b.code.as_str()).or_insert(n);
    }
    if !d.escalation.is_empty() {
        let n = codes.len();
        codes.entry("escalation").or_insert(n);
    }
    let mut order: Vec<(&str, usize)> = codes.iter().map(|(c, i)| (*c, *i)).collect();
    order.sort_by_key(|(_, i)| *i);
    let rules: Vec<Value> = order
        .iter()
        .map(|(code, _)| {
            let text = if *code == "escalation" {
                "The recommendation goes beyond the delegated authority.".to_string()
            } else {
                format!("Blocker code {code} of gate {}.", d.gate_id)
            };
            json!({
                "id": code,
                "shortDescription": {"text": text},
            })
        })
        .collect();
    let logical = |kind: &str, name: &str| {
        json!([{
            "logicalLocations": [{
                "name": name,
                "fullyQualifiedName": format!("{}/{}/{kind}/{name}", d.gate_id, d.packet_name),
                "kind": kind,
            }]
        }])
    };
    let mut results: Vec<Value> = d
        .blockers
        .iter()
        .map(|b| {
            let kind = subject_kind(&b.subject);
            let name = subject_name(&b.subject);
            json!({
                "ruleId": b.code,
                "ruleIndex": codes[b.code.as_str()],
                "level": level(b),
                "message": {"text": message(b)},
                "locations": logical(kind, &name),
                "partialFingerprints": {
                    "evlBlocker/v1": format!("{}/{}/{}/{kind}/{name}", d.gate_id, d.packet_name, b.code),
                },
                "properties": {
                    "subject": {"type": kind, "name": name},
                    "scoped": b.scoped,
                    "affects": b.affects,
                    "evidence": b.evidence.iter().map(|e| e.to_hex()).collect::<Vec<_>>(),
                    "unblock": b.unblock,
                },
            })
        })
        .collect();
    for (i, e) in d.escalation.iter().enumerate() {
        results.push(json!({
            "ruleId": "escalation",
            "ruleIndex": codes["escalation"],
            "level": "error",
            "message": {"text": e},
            "locations": logical("packet", &d.packet_name),
            "partialFingerprints": {
                "evlBlocker/v1": format!("{}/{}/escalation/{i}", d.gate_id, d.packet_name),
            },
        }));
    }
    json!({
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {
                "name": "evl",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "automationDetails": {"id": format!("evl/{}/{}/", d.gate_id, d.packet_name)},
            "results": results,
            "properties": {
                "verdict": d.verdict.name(),
                "would_be": d.would_be.map(Verdict::name),
                "packet": d.packet.to_hex(),
                "revision": d.revision,
                "as_of": d.as_of.to_string(),
                "checkpoint_at": d.checkpoint_at.to_string(),
                "engine_version": d.engine_version,
                "basis_digest": d.basis_digest.to_hex(),
                "in_scope_workloads": d.scope.in_scope_workloads,
                "out_of_scope_workloads": d.scope.out_of_scope_workloads,
            },
        }],
    })
}

/// A JUnit XML report: one test suite for the packet, one passing test case per rule check
/// that passed (the trace's `pass` lines), one failing test case per blocker and per
/// escalation reason; the verdict is a property and, when `failed`, a failing test case.
pub fn junit(d: &Disposition, failed: bool) -> String {
    let passes: Vec<_> = d.trace.iter().filter(|t| t.outcome == "pass").collect();
    let failures = d.blockers.len() + d.escalation.len() + usize::from(failed);
    let tests = passes.len() + failures + usize::from(!failed);
    let suite = format!("{} revision {}", d.packet_name, d.revision);
    let (tests, failures) = (tests.to_string(), failures.to_string());
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let write = |w: &mut Writer<Vec<u8>>| -> std::io::Result<()> {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.create_element("testsuites")
            .with_attribute(("name", "evl evaluate"))
            .with_attribute(("tests", tests.as_str()))
            .with_attribute(("failures", failures.as_str()))
            .with_attribute(("errors", "0"))
            .write_inner_content(|w| {
                w.create_element("testsuite")
                    .with_attribute(("name", suite.as_str()))
                    .with_attribute(("tests", tests.as_str()))
                    .with_attribute(("failures", failures.as_str()))
                    .with_attribute(("errors", "0"))
                    .with_attribute(("skipped", "0"))
                    .with_attribute(("timestamp", d.as_of.to_string().trim_end_matches('Z')))
                    .write_inner_content(|w| {
                        w.create_element("properties").write_inner_content(|w| {
                            let packet = d.packet.to_hex();
                            let as_of = d.as_of.to_string();
                            let props = [
                                ("verdict", d.verdict.name()),
                                ("gate", d.gate_id.as_str()),
                                ("packet", packet.as_str()),
                                ("as_of", as_of.as_str()),
                                ("engine_version", d.engine_version.as_str()),
                            ];
                            for (k, v) in props {
                                w.create_element("property")
                                    .with_attribute(("name", k))
                                    .with_attribute(("value", v))
                                    .write_empty()?;
                            }
                            Ok(())
                        })?;
                        for t in &passes {
                            w.create_element("testcase")
                                .with_attribute(("classname", d.gate_id.as_str()))
                                .with_attribute((
                                    "name",
                                    format!("{}: {}", t.rule, t.detail).as_str(),
                                ))
                                .write_empty()?;
                        }
                        for b in &d.blockers {
                            w.create_element("testcase")
                                .with_attribute(("classname", d.gate_id.as_str()))
                                .with_attribute((
                                    "name",
                                    format!("{} {}", b.code, b.subject).as_str(),
                                ))
                                .write_inner_content(|w| {
                                    w.create_element("failure")
                                        .with_attribute(("type", b.code.as_str()))
                                        .with_attribute(("message", b.reason.as_str()))
                                        .write_text_content(BytesText::new(&message(b)))?;
                                    Ok(())
                                })?;
                        }
                        for e in &d.escalation {
                            w.create_element("testcase")
                                .with_attribute(("classname", d.gate_id.as_str()))
                                .with_attribute(("name", "escalation"))
                                .write_inner_content(|w| {
                                    w.create_element("failure")
                                        .with_attribute(("type", "escalation"))
                                        .with_attribute(("message", e.as_str()))
                                        .write_empty()?;
                                    Ok(())
                                })?;
                        }
                        let verdict = format!("verdict {}", d.verdict);
                        let case = w
                            .create_element("testcase")
                            .with_attribute(("classname", d.gate_id.as_str()))
                            .with_attribute(("name", verdict.as_str()));
                        if failed {
                            let msg =
                                format!("the verdict is {} and --fail-on lists it", d.verdict);
                            case.write_inner_content(|w| {
                                w.create_element("failure")
                                    .with_attribute(("type", "verdict"))
                                    .with_attribute(("message", msg.as_str()))
                                    .write_empty()?;
                                Ok(())
                            })?;
                        } else {
                            case.write_empty()?;
                        }
                        Ok(())
                    })?;
                Ok(())
            })?;
        Ok(())
    };
    write(&mut w).expect("report: writing XML to memory cannot fail");
    let mut out = String::from_utf8(w.into_inner()).expect("report: XML is UTF-8");
    out.push('\n');
    out
}

/// GitHub Actions workflow-command data: `%`, CR and LF escaped.
fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// GitHub Actions workflow-command property values: also `:` and `,` escaped.
fn gh_property(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub Actions annotations: `::error` (or `::warning` for a blocker the gate narrows
/// around) per blocker and escalation reason, then a `::notice` with the verdict.
pub fn github(d: &Disposition) -> String {
    let mut out = String::new();
    for b in &d.blockers {
        let title = format!("evl {} {}", b.code, b.subject);
        out.push_str(&format!(
            "::{} title={}::{}\n",
            level(b),
            gh_property(&title),
            gh_data(&message(b))
        ));
    }
    for e in &d.escalation {
        out.push_str(&format!(
            "::error title={}::{}\n",
            gh_property("evl escalation"),
            gh_data(e)
        ));
    }
    let scope = if d.verdict == Verdict::Narrow || d.would_be == Some(Verdict::Narrow) {
        format!(
            " ({} of {} workloads in scope)",
            d.scope.in_scope_workloads.len(),
            d.scope.in_scope_workloads.len() + d.scope.out_of_scope_workloads.len()
        )
    } else {
        String::new()
    };
    out.push_str(&format!(
        "::notice title={}::{} revision {} as of {}: {}{scope}, {} blocker(s)\n",
        gh_property(&format!("evl {}", d.gate_id)),
        gh_data(&d.packet_name),
        d.revision,
        d.as_of,
        d.verdict,
        d.blockers.len()
    ));
    out
}
