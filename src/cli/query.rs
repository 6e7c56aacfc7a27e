//! What `evl log` filters by and what `evl show` lists as back-references: which entries refer
//! to a digest, which speak about a namespace, who signed them and when (docs/CLI-JSON.md
//! §"Log filters"). Every test reads one entry at a time from one consistent snapshot, so a
//! scan holds no more than the entry at hand: memory stays flat in the ledger's size.

use std::str::FromStr;

use crate::digest::{Digest, EntryId, is_hex_prefix};
use crate::entry::{Entry, Payload, Scope};
use crate::error::Error;
use crate::keys::KeyId;
use crate::registry::Registry;
use crate::store::{Ledger, Resolved, View};
use crate::timestamp::Timestamp;

/// A `--since`/`--until` bound: a log index (digits only) or a time (RFC 3339 or a date).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    Index(u64),
    Time(Timestamp),
}

impl FromStr for Bound {
    type Err = String;
    fn from_str(s: &str) -> Result<Bound, String> {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(Bound::Index)
                .map_err(|_| format!("'{s}' is not a log index"));
        }
        Timestamp::from_str(s).map(Bound::Time).map_err(|_| {
            format!(
                "'{s}' is neither a log index (digits) nor a time (RFC 3339 such as 2026-04-14T00:00:00Z, or a date such as 2026-04-14)"
            )
        })
    }
}

/// The digests an entry can name when it refers to the thing `evl show`/`--subject` was
/// given: an entry's id and, for an artifact, its content digest (annotations and
/// acknowledgments may name either).
#[derive(Clone, Debug)]
pub struct Target {
    /// The entry the digest resolved to, if it resolved to one.
    pub index: Option<u64>,
    pub digests: Vec<Digest>,
    /// Given as these stored bytes: every artifact entry carrying them is the target too,
    /// found as a forward scan meets it (see [`Target::is_itself`]).
    pub carried: Option<Digest>,
}

impl Target {
    fn has(&self, d: &Digest) -> bool {
        self.digests.contains(d)
    }

    /// A target given as stored bytes, whose carrying entries a forward scan finds itself,
    /// each read on a checked path, rather than through the blob index.
    pub fn bytes(d: Digest) -> Target {
        Target {
            index: None,
            digests: vec![d],
            carried: Some(d),
        }
    }

    /// Whether entry `index` is the target itself; an artifact carrying the target's bytes
    /// is, and its id names the target from then on.
    pub fn is_itself(&mut self, index: u64, e: &Entry) -> bool {
        if self.index == Some(index) {
            return true;
        }
        match (&self.carried, &e.body.payload) {
            (Some(d), Payload::Artifact(m)) if m.content == *d => {
                let id = e.id();
                if !self.digests.contains(&id) {
                    self.digests.push(id);
                }
                true
            }
            _ => false,
        }
    }
}

/// Resolves a digest or unique prefix to the digests that refer to the same thing.
pub fn target(ledger: &Ledger, text: &str) -> Result<Target, Error> {
    let (index, mut digests) = match ledger.resolve(text)? {
        Resolved::Entry { index, id } => (Some(index), vec![id]),
        Resolved::Blob(d) => match ledger.resolve_entry(&d.to_hex()) {
            Ok((index, e)) => (Some(index), vec![d, e.id()]),
            // A disposition document or parsed facts: referred to by its digest alone.
            Err(Error::Unknown(_)) => (None, vec![d]),
            Err(e) => return Err(e),
        },
    };
    if let Some(i) = index
        && let Payload::Artifact(m) = &ledger.entry(i)?.body.payload
        && !digests.contains(&m.content)
    {
        digests.push(m.content);
    }
    Ok(Target {
        index,
        digests,
        carried: None,
    })
}

/// How an entry refers to a target, in the words `show` prints; `None` when it does not.
pub fn refers(view: &View, e: &Entry, t: &Target) -> Result<Option<&'static str>, Error> {
    Ok(match &e.body.payload {
        Payload::Annotation(a) if t.has(&a.subject) => Some("annotation"),
        Payload::Acknowledgment(a) if a.subject.as_ref().is_some_and(|s| t.has(s)) => {
            Some("acknowledgment")
        }
        Payload::Artifact(m) if m.supersedes.as_ref().is_some_and(|s| t.has(s)) => {
            Some("supersedes")
        }
        Payload::Artifact(m) if m.facts.as_ref().is_some_and(|f| t.has(&f.digest)) => {
            Some("facts-of")
        }
        Payload::Promotion(p) if t.has(&p.artifact) => Some("promotion"),
        Payload::Packet(p) => pins(p, t),
        Payload::Narrowing(n) if t.has(&n.packet) => Some("narrowing"),
        Payload::Disposition(d) => {
            if t.has(&d.packet) {
                Some("disposition")
            } else if t.has(&d.document) {
                Some("disposition-document")
            } else {
                // Its basis: the packet revision it evaluates pins the target.
                match view.index_of(&d.packet)? {
                    Some(i) => match &view.entry(i)?.body.payload {
                        Payload::Packet(p) if pins(p, t).is_some() => Some("disposition-basis"),
                        _ => None,
                    },
                    None => None,
                }
            }
        }
        Payload::Decision(d) if t.has(&d.packet) || d.disposition.is_some_and(|x| t.has(&x)) => {
            Some("decision")
        }
        _ => None,
    })
}

/// Whether a packet revision pins the target: as gate, in its basis, or as its parent.
fn pins(p: &crate::entry::PacketRevision, t: &Target) -> Option<&'static str> {
    if t.has(&p.gate) {
        Some("packet-gate")
    } else if p.basis.iter().any(|b| t.has(b)) {
        Some("packet-basis")
    } else if p.parent.as_ref().is_some_and(|x| t.has(x)) {
        Some("packet-parent")
    } else {
        None
    }
}

fn scope_names(s: &Scope, ns: &str) -> bool {
    s.namespaces.iter().any(|n| n == ns)
        || s.workloads
            .iter()
            .any(|w| w.split_once('/').is_some_and(|(n, _)| n == ns))
}

/// Whether parsed facts (any importer's JSON) name the namespace: a `namespace` field equal
/// to it, or a `NAMESPACE/WORKLOAD` string under a `workload`/`workloads` field.
fn facts_name(v: &serde_json::Value, ns: &str, key: Option<&str>) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => match key {
            Some(k) if k == "namespace" || k.ends_with("_namespace") || k == "namespaces" => {
                s == ns
            }
            Some(k) if k.contains("workload") => s.split_once('/').is_some_and(|(n, _)| n == ns),
            _ => false,
        },
        Value::Array(a) => a.iter().any(|x| facts_name(x, ns, key)),
        Value::Object(m) => m.iter().any(|(k, x)| facts_name(x, ns, Some(k))),
        _ => false,
    }
}

/// Whether a TOML evidence file of a kind evl reads (a rollback drill's `workloads`, an
/// exception register's entries…) names the namespace in its fields, read as facts are.
fn toml_fields_name(view: &View, m: &crate::entry::ArtifactMeta, ns: &str) -> Result<bool, Error> {
    if !crate::evidence::KNOWN_KINDS.contains(&m.kind.as_str()) {
        return Ok(false);
    }
    let Some(bytes) = view.blob(&m.content)? else {
        return Ok(false);
    };
    Ok(std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| toml::from_str::<toml::Table>(t).ok())
        .and_then(|t| serde_json::to_value(t).ok())
        .is_some_and(|v| facts_name(&v, ns, None)))
}

/// The entry a digest names, as annotations and acknowledgments name their subjects: an
/// entry id, or an artifact's content digest (its first carrier).
fn subject_entry(view: &View, d: &Digest) -> Result<Option<Entry>, Error> {
    if let Some(i) = view.index_of(d)? {
        return Ok(Some(view.entry(i)?));
    }
    if let Some(i) = view.first_carrier(d)? {
        let e = view.entry(i)?;
        if matches!(&e.body.payload, Payload::Artifact(m) if &m.content == d) {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

/// Whether an entry is about namespace `ns` (docs/CLI-JSON.md §"Log filters"): its own scope,
/// namespace or workloads name it; an artifact's parsed facts or TOML fields name it; or —
/// for entries that point at another (an annotation or acknowledgment naming no namespace of
/// its own, a promotion, narrowing, disposition, decision) — the entry pointed at is about
/// it. `depth` bounds how far pointers are followed.
pub fn about(view: &View, e: &Entry, ns: &str, depth: u8) -> Result<bool, Error> {
    let follow = |d: &EntryId| -> Result<bool, Error> {
        if depth == 0 {
            return Ok(false);
        }
        match subject_entry(view, d)? {
            Some(s) => about(view, &s, ns, depth - 1),
            None => Ok(false),
        }
    };
    Ok(match &e.body.payload {
        Payload::Artifact(m) => {
            scope_names(&m.scope, ns)
                || match &m.facts {
                    Some(f) => match view.blob(&f.digest)? {
                        Some(bytes) => serde_json::from_slice::<serde_json::Value>(bytes)
                            .is_ok_and(|v| facts_name(&v, ns, None)),
                        None => false,
                    },
                    None => false,
                }
                || toml_fields_name(view, m, ns)?
        }
        // A remark that names its own namespaces or workloads is about those alone; one that
        // names none is about what its subject is about.
        Payload::Annotation(a) if a.scope == Scope::default() => follow(&a.subject)?,
        Payload::Annotation(a) => scope_names(&a.scope, ns),
        Payload::Acknowledgment(a) => match (&a.namespace, &a.subject) {
            (Some(n), _) => n == ns,
            (None, Some(s)) => follow(s)?,
            (None, None) => false,
        },
        Payload::Promotion(p) => follow(&p.artifact)?,
        Payload::Packet(p) => p.in_scope.iter().any(|w| w.namespace == ns),
        Payload::Narrowing(n) => n.keep.iter().any(|w| w.namespace == ns) || follow(&n.packet)?,
        Payload::Disposition(d) => follow(&d.packet)?,
        Payload::Decision(d) => follow(&d.packet)?,
        Payload::Genesis(_)
        | Payload::KeyAdd(_)
        | Payload::KeyRotate(_)
        | Payload::KeyRevoke(_) => false,
    })
}

/// The keys a `--signer` value names: every key ever registered under that name (a rotated
/// key's successor keeps its name), or the one key whose id starts with the given hex.
pub fn signer_keys(reg: &Registry, given: &str) -> Result<Vec<KeyId>, Error> {
    let by_name: Vec<KeyId> = reg
        .keys()
        .iter()
        .filter(|(_, s)| s.name == given)
        .map(|(id, _)| *id)
        .collect();
    if !by_name.is_empty() {
        return Ok(by_name);
    }
    let hex = given.to_ascii_lowercase();
    if hex.len() >= 4 && is_hex_prefix(&hex) {
        let by_id: Vec<KeyId> = reg
            .keys()
            .keys()
            .filter(|id| id.0.to_hex().starts_with(&hex))
            .copied()
            .collect();
        match by_id.len() {
            1 => return Ok(by_id),
            0 => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "--signer {given}: the prefix names {} keys; give more hex characters",
                    by_id.len()
                )));
            }
        }
    }
    let mut names: Vec<&str> = reg.keys().values().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    Err(Error::Invalid(format!(
        "--signer {given}: no key of that name or id prefix is registered (names: {})",
        names.join(", ")
    )))
}

/// Keeps a scan of the log from holding the log in memory: every so many entries, the pages
/// of the memory-mapped log the scan has passed are released (`madvise(MADV_DONTNEED)`).
/// The mapping is of the ledger's file, read-only, so a released page is read again from the
/// page cache, byte for byte the same, if anything touches it later; only this process's
/// resident memory shrinks. Without this a scan of the whole log stays correct but ends with
/// the whole log resident.
pub struct Release {
    /// Log offset where the stretch not yet released began.
    mark: Option<u64>,
    seen: u64,
}

impl Release {
    const EVERY: u64 = 1024;

    pub fn new() -> Release {
        Release {
            mark: None,
            seen: 0,
        }
    }

    /// Notes that the scan reached entry `index`, releasing what it passed now and then.
    pub fn passed(&mut self, view: &View, index: u64) {
        self.seen += 1;
        if !self.seen.is_multiple_of(Self::EVERY) {
            return;
        }
        let Some(at) = view.entry_offset(index) else {
            return;
        };
        if let Some(mark) = self.mark.replace(at) {
            release(view.log(), mark.min(at), mark.max(at));
        }
    }
}

/// Releases the whole pages of `log[lo..hi]`. `log` is the store's map of its log file (the
/// CLI opens ledgers on the real file system, whose files are memory maps; see
/// `store::RealFs::map`), never heap memory.
#[cfg(target_os = "linux")]
fn release(log: &[u8], lo: u64, hi: u64) {
    let page = 4096usize;
    let base = log.as_ptr() as usize;
    if base % page != 0 || hi as usize > log.len() {
        return; // not a page-aligned map: leave it alone
    }
    let start = (lo as usize).div_ceil(page) * page;
    let end = (hi as usize) / page * page;
    if end > start {
        // SAFETY: the range lies inside a read-only file mapping; MADV_DONTNEED only drops
        // its page-table entries, and the next read faults the same file bytes back in.
        unsafe {
            libc::madvise(
                (base + start) as *mut libc::c_void,
                end - start,
                libc::MADV_DONTNEED,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn release(_: &[u8], _: u64, _: u64) {}
