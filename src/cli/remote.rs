//! Signing away from the ledger (`--offline -o FILE`) and appending what was signed elsewhere
//! (`evl submit`). docs/FORMAT.md §"Submission files" gives the file's bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{Global, open, print_json, read_file};
use crate::digest::{Digest, EntryId};
use crate::entry::{ENTRY_FORMAT, Entry, Payload, Tier, UnsignedEntry};
use crate::error::{Error, exit};
use crate::keys::SecretKey;
use crate::store::{Appended, Draft, Ledger, MAX_CLOCK_SKEW_SECS, Resolved};
use crate::submission::{MAX_SUBMISSION_BYTES, Submission};
use crate::timestamp::Timestamp;

/// Options of appending verbs that can sign without the ledger.
#[derive(Args, Debug, Clone, Default)]
pub struct Offline {
    /// Sign without the ledger: write the signed entry and the bytes it carries to --out
    /// (docs/FORMAT.md §"Submission files") for `evl submit`, instead of appending. Needs
    /// only --origin and --genesis; digests must then be given in full (64 hex), as there is
    /// no ledger to resolve a prefix or a key name, and the ledger checks what they name
    /// when the file is submitted.
    #[arg(long, requires_all = ["origin", "genesis", "out"])]
    pub offline: bool,
    /// With --offline: the ledger's origin (as `evl init --origin` named it).
    #[arg(long, requires = "offline", value_name = "ORIGIN")]
    pub origin: Option<String>,
    /// With --offline: the ledger's genesis entry id (64 hex), printed by `evl init`.
    #[arg(long, requires = "offline", value_name = "DIGEST")]
    pub genesis: Option<Digest>,
    /// With --offline: the submission file to write (created; an existing file is not
    /// overwritten).
    #[arg(short = 'o', long = "out", requires = "offline", value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Where a signing verb's entries go: appended to the ledger, or signed into a file.
pub(crate) enum Sink {
    Ledger(&'static Ledger),
    File {
        origin: String,
        genesis: Digest,
        out: PathBuf,
    },
}

impl Sink {
    /// The sink the options name: a file with --offline (no ledger is opened), else the
    /// ledger of the global options.
    pub(crate) fn new(g: &Global, o: &Offline) -> Result<Sink, Error> {
        if !o.offline {
            return Ok(Sink::Ledger(open(g)?));
        }
        let (Some(origin), Some(genesis), Some(out)) = (&o.origin, o.genesis, &o.out) else {
            return Err(Error::Invalid(
                "--offline needs --origin, --genesis and --out".into(),
            ));
        };
        crate::store::check_origin(origin)?;
        Ok(Sink::File {
            origin: origin.clone(),
            genesis,
            out: out.clone(),
        })
    }

    /// The ledger, when appending to one.
    pub(crate) fn ledger(&self) -> Option<&'static Ledger> {
        match self {
            Sink::Ledger(l) => Some(l),
            Sink::File { .. } => None,
        }
    }

    /// A digest the user named (`what` says which option): a unique prefix of an entry id or
    /// artifact digest in the ledger, or, offline, the full 64 hex characters.
    pub(crate) fn digest(&self, what: &str, text: &str) -> Result<Digest, Error> {
        match self {
            Sink::Ledger(l) => Ok(match l.resolve(text)? {
                Resolved::Entry { id, .. } => id,
                Resolved::Blob(d) => d,
            }),
            Sink::File { .. } => full_digest(what, text),
        }
    }

    /// An entry the user named: resolved in the ledger, or, offline, given in full.
    pub(crate) fn entry_id(&self, what: &str, text: &str) -> Result<EntryId, Error> {
        match self {
            Sink::Ledger(l) => Ok(l.resolve_entry(text)?.1.id()),
            Sink::File { .. } => full_digest(what, text),
        }
    }

    /// Signs `drafts` with `key` and appends them in one durable batch, or writes them to the
    /// submission file (printing what was signed). `None` when written to a file.
    pub(crate) fn put(
        &self,
        drafts: Vec<Draft>,
        key: &SecretKey,
    ) -> Result<Option<Vec<Appended>>, Error> {
        let now = Timestamp::now();
        match self {
            Sink::Ledger(l) => Ok(Some(l.append_batch(drafts, key, Some(now))?)),
            Sink::File {
                origin,
                genesis,
                out,
            } => {
                let mut entries = Vec::with_capacity(drafts.len());
                for d in drafts {
                    check_claimed(d.claimed_at, now)?;
                    let body = UnsignedEntry {
                        format: ENTRY_FORMAT,
                        ledger: *genesis,
                        signer: key.public().id(),
                        claimed_at: d.claimed_at,
                        payload: d.payload,
                    };
                    entries.push((Entry::sign(body, key), d.blobs));
                }
                let sub = Submission::new(origin, *genesis, entries);
                let bytes = sub.to_bytes()?;
                if bytes.len() > MAX_SUBMISSION_BYTES {
                    return Err(Error::Invalid(format!(
                        "the signed entries and their bytes come to {} bytes, over the {MAX_SUBMISSION_BYTES}-byte submission cap; sign fewer files at once",
                        bytes.len()
                    )));
                }
                write_new(out, &bytes)?;
                for (e, _) in &sub.entries {
                    println!("signed {} {}", e.body.payload.kind(), e.id());
                }
                println!(
                    "wrote {} ({} entr{} for {origin}, genesis {}); append it with `evl submit {}`",
                    out.display(),
                    sub.entries.len(),
                    if sub.entries.len() == 1 { "y" } else { "ies" },
                    genesis.short(),
                    out.display()
                );
                Ok(None)
            }
        }
    }
}

/// Refuses a claimed time more than the allowed skew ahead of this machine's clock.
fn check_claimed(at: Timestamp, now: Timestamp) -> Result<(), Error> {
    if at.seconds() > now.seconds() + MAX_CLOCK_SKEW_SECS {
        return Err(Error::Invalid(format!(
            "claimed time {at} is more than {MAX_CLOCK_SKEW_SECS} s ahead of this machine's clock ({now})"
        )));
    }
    Ok(())
}

fn full_digest(what: &str, text: &str) -> Result<Digest, Error> {
    text.parse().map_err(|_| {
        Error::Invalid(format!(
            "{what} '{text}': offline signing needs the full 64-hex digest (there is no ledger to resolve a prefix or name)"
        ))
    })
}

/// Creates `path` with `bytes`, refusing to replace an existing file, and makes it durable.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Invalid(format!("{} exists; not overwritten", path.display()))
            } else {
                Error::io(path)(e)
            }
        })?;
    let done = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = done {
        let _ = std::fs::remove_file(path);
        return Err(Error::io(path)(e));
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// Submission files written by an appending verb's `--offline -o FILE`.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Appends submission files: every entry they carry, in file order, in one durable batch,
/// after the checks of a local append. Entries already in the log are reported with their
/// index, not appended again.
pub fn submit(g: &Global, a: SubmitArgs) -> Result<i32, Error> {
    let mut subs = Vec::with_capacity(a.files.len());
    for path in &a.files {
        let bytes = read_file(path, MAX_SUBMISSION_BYTES)?;
        let sub = Submission::from_bytes(&bytes)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        subs.push((path, sub));
    }
    let ledger = open(g)?;
    let results = submit_to(
        ledger,
        subs.iter().map(|(p, s)| (p.display().to_string(), s)),
    )?;
    if a.json {
        let v: Vec<_> = results
            .iter()
            .map(|r| serde_json::json!({"file": r.source, "kind": r.kind, "id": r.id.to_string(), "index": r.index, "appended": r.appended}))
            .collect();
        return print_json(&v);
    }
    for r in &results {
        if r.appended {
            println!("{} {} at index {}  {}", r.kind, r.id, r.index, r.source);
        } else {
            println!(
                "{} {} already at index {}  {}",
                r.kind, r.id, r.index, r.source
            );
        }
    }
    Ok(exit::OK)
}

/// What became of one submitted entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// Which file (or request) carried it.
    pub source: String,
    pub kind: &'static str,
    pub id: EntryId,
    pub index: u64,
    /// False when the entry was already in the log (resubmitted).
    pub appended: bool,
}

/// Checks and appends decoded submissions (with a name each, for messages) to `ledger` in one
/// batch. Refuses the whole batch, appending nothing, if any entry is refused.
pub fn submit_to<'a>(
    ledger: &Ledger,
    subs: impl Iterator<Item = (String, &'a Submission)>,
) -> Result<Vec<Submitted>, Error> {
    let genesis = ledger.genesis_id()?;
    let origin = ledger.origin()?;
    let now = Timestamp::now();
    let mut out: Vec<Submitted> = Vec::new();
    let mut new: Vec<(Entry, Vec<Vec<u8>>)> = Vec::new();
    let mut new_at: Vec<usize> = Vec::new();
    let mut batch = Batch::default();
    for (name, sub) in subs {
        if sub.origin != origin || sub.genesis != genesis {
            return Err(Error::Invalid(format!(
                "{name}: signed for ledger {} (genesis {}), not this one ({origin}, genesis {})",
                sub.origin,
                sub.genesis.short(),
                genesis.short()
            )));
        }
        for (entry, blobs) in &sub.entries {
            let id = entry.id();
            let known = match ledger.index_of(&id)? {
                Some(i) => Some(i),
                None => batch.index.get(&id).map(|_| u64::MAX),
            };
            if let Some(index) = known {
                if index == u64::MAX {
                    // The same entry twice in one submission: once is enough.
                    continue;
                }
                // The id does not cover the signature: only the very bytes appended are
                // "already in the log"; another signature over the same body is refused.
                if ledger.entry_bytes(index)? != entry.to_bytes()? {
                    return Err(Error::Invalid(format!(
                        "{name}: entry {} is in the log at index {index} with other signature bytes than this file carries",
                        id.short()
                    )));
                }
                out.push(Submitted {
                    source: name.clone(),
                    kind: entry.body.payload.kind(),
                    id,
                    index,
                    appended: false,
                });
                continue;
            }
            check_claimed(entry.body.claimed_at, now)
                .map_err(|e| Error::Invalid(format!("{name}: entry {}: {e}", id.short())))?;
            check_references(ledger, &batch, entry, blobs)
                .map_err(|e| prefix_error(&name, &id, e))?;
            batch.add(entry, blobs);
            new_at.push(out.len());
            out.push(Submitted {
                source: name.clone(),
                kind: entry.body.payload.kind(),
                id,
                index: 0,
                appended: true,
            });
            new.push((entry.clone(), blobs.clone()));
        }
    }
    if !new.is_empty() {
        let done = ledger.append_signed(new).map_err(|e| match e {
            Error::Invalid(m) => Error::Invalid(format!("submission refused: {m}")),
            other => other,
        })?;
        for (slot, d) in new_at.into_iter().zip(done) {
            out[slot].index = d.index;
        }
    }
    Ok(out)
}

fn prefix_error(name: &str, id: &EntryId, e: Error) -> Error {
    match e {
        Error::Invalid(m) => Error::Invalid(format!("{name}: entry {}: {m}", id.short())),
        Error::Unknown(m) => Error::Invalid(format!(
            "{name}: entry {}: it names {m}, which this ledger does not hold",
            id.short()
        )),
        other => other,
    }
}

/// Entries of the submission batch checked so far, so a later entry may refer to an earlier.
#[derive(Default)]
pub(crate) struct Batch {
    index: BTreeMap<EntryId, Entry>,
    blobs: std::collections::BTreeSet<Digest>,
}

impl Batch {
    fn add(&mut self, e: &Entry, blobs: &[Vec<u8>]) {
        self.index.insert(e.id(), e.clone());
        self.blobs.extend(blobs.iter().map(|b| Digest::of(b)));
    }
}

/// Looks an entry up in the batch, then the ledger.
fn find(ledger: &Ledger, batch: &Batch, id: &EntryId) -> Result<Option<Entry>, Error> {
    if let Some(e) = batch.index.get(id) {
        return Ok(Some(e.clone()));
    }
    Ok(match ledger.index_of(id)? {
        Some(i) => Some(ledger.entry(i)?),
        None => None,
    })
}

fn need(ledger: &Ledger, batch: &Batch, id: &EntryId, what: &str) -> Result<Entry, Error> {
    find(ledger, batch, id)?.ok_or_else(|| Error::Unknown(format!("{what} {}", id.short())))
}

/// The checks the appending verbs make on what an entry refers to, which they make against
/// the ledger before signing; an entry signed offline meets them here, before it is appended.
/// (The signature, the signer's role and the registry rules are the store's checks.)
pub(crate) fn check_references(
    ledger: &Ledger,
    batch: &Batch,
    entry: &Entry,
    blobs: &[Vec<u8>],
) -> Result<(), Error> {
    let exists = |d: &Digest, what: &str| -> Result<(), Error> {
        if find(ledger, batch, d)?.is_some() || batch.blobs.contains(d) || ledger.blob(d)?.is_some()
        {
            Ok(())
        } else {
            Err(Error::Unknown(format!("{what} {}", d.short())))
        }
    };
    match &entry.body.payload {
        Payload::Artifact(m) => {
            if let Some(bytes) = blobs.first() {
                if bytes.len() as u64 != m.size {
                    return Err(Error::Invalid(format!(
                        "artifact says it is {} bytes but carries {}",
                        m.size,
                        bytes.len()
                    )));
                }
                match &m.facts {
                    Some(_) => crate::facts::check(m, bytes)
                        .map_err(|e| Error::Invalid(format!("its parsed facts: {e}")))?,
                    None => {
                        let window = m.labels.get("window").map(String::as_str);
                        crate::evidence::check_kind(&m.kind, &m.file_name, bytes, window)
                            .map_err(Error::Invalid)?;
                    }
                }
            }
            if let Some(s) = &m.supersedes {
                let e = need(ledger, batch, s, "superseded artifact")?;
                if !matches!(e.body.payload, Payload::Artifact(_)) {
                    return Err(Error::Invalid(format!(
                        "it supersedes {}, a {} entry, not an artifact",
                        s.short(),
                        e.body.payload.kind()
                    )));
                }
            }
        }
        Payload::Annotation(a) => exists(&a.subject, "subject")?,
        Payload::Acknowledgment(a) => {
            if let Some(s) = &a.subject {
                exists(s, "subject")?;
            }
        }
        Payload::Promotion(p) => {
            let e = need(ledger, batch, &p.artifact, "artifact")?;
            match &e.body.payload {
                Payload::Artifact(m) if m.tier == Tier::Excluded => {}
                Payload::Artifact(m) => {
                    return Err(Error::Invalid(format!(
                        "artifact {} is {}, not excluded; only excluded material needs promotion",
                        p.artifact.short(),
                        m.tier
                    )));
                }
                other => {
                    return Err(Error::Invalid(format!(
                        "{} is a {} entry, not an artifact",
                        p.artifact.short(),
                        other.kind()
                    )));
                }
            }
            if p.to == Tier::Excluded {
                return Err(Error::Invalid(
                    "a promotion must lift to operational or authoritative".into(),
                ));
            }
        }
        Payload::Packet(p) => {
            if let Some(parent) = &p.parent {
                packet(ledger, batch, parent)?;
            }
            need(ledger, batch, &p.gate, "gate definition")?;
            for id in &p.basis {
                let kind = need(ledger, batch, id, "basis entry")?.body.payload.kind();
                if ![
                    "artifact",
                    "annotation",
                    "acknowledgment",
                    "promotion",
                    "narrowing",
                ]
                .contains(&kind)
                {
                    return Err(Error::Invalid(format!(
                        "basis entry {} is a {kind} entry; a basis holds evidence, annotations, acknowledgments, promotions and narrowing proposals",
                        id.short()
                    )));
                }
            }
            if p.in_scope.is_empty() {
                return Err(Error::Invalid("a packet needs in-scope workloads".into()));
            }
        }
        Payload::Narrowing(n) => {
            let p = packet(ledger, batch, &n.packet)?;
            if let Some(w) = n.keep.iter().find(|w| !p.in_scope.contains(w)) {
                return Err(Error::Invalid(format!(
                    "it keeps {w}, not an in-scope workload of packet {}",
                    n.packet.short()
                )));
            }
        }
        Payload::Decision(d) => {
            packet(ledger, batch, &d.packet)?;
            if let Some(disp) = &d.disposition {
                let e = need(ledger, batch, disp, "disposition")?;
                if !matches!(&e.body.payload, Payload::Disposition(r) if r.packet == d.packet) {
                    return Err(Error::Invalid(format!(
                        "{} is not a disposition of packet {}",
                        disp.short(),
                        d.packet.short()
                    )));
                }
            }
        }
        Payload::Disposition(r) => {
            packet(ledger, batch, &r.packet)?;
        }
        Payload::Genesis(_)
        | Payload::KeyAdd(_)
        | Payload::KeyRotate(_)
        | Payload::KeyRevoke(_) => {}
    }
    Ok(())
}

fn packet(
    ledger: &Ledger,
    batch: &Batch,
    id: &EntryId,
) -> Result<crate::entry::PacketRevision, Error> {
    match need(ledger, batch, id, "packet")?.body.payload {
        Payload::Packet(p) => Ok(p),
        other => Err(Error::Invalid(format!(
            "{} is a {} entry, not a packet revision",
            id.short(),
            other.kind()
        ))),
    }
}
