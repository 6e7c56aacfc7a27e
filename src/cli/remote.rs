//! Signing away from the ledger (`--offline -o FILE`) and appending what was signed elsewhere
//! (`evl submit`). docs/FORMAT.md §"Submission files" gives the file's bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{Global, open, read_file};
use crate::digest::{Digest, EntryId};
use crate::entry::{ENTRY_FORMAT, Entry, Payload, SignedEntry, Tier, UnsignedEntry};
use crate::error::{Error, exit};
use crate::keys::{PublicKey, SecretKey};
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
            if crate::publish::is_published(&g.ledger) {
                return Err(Error::Invalid(format!(
                    "{} is a published log, which only its ledger's host appends to; sign with --offline -o FILE and `evl submit FILE` there",
                    g.ledger.display()
                )));
            }
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
    let location = g.ledger.to_string_lossy().into_owned();
    if crate::publish::is_http(&location) {
        return submit_http(&location, &a, &subs);
    }
    if crate::publish::is_published(&g.ledger) {
        return Err(Error::Invalid(format!(
            "{location} is a published log, which only its ledger's host appends to; submit there, or to its `evl serve` URL"
        )));
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
        return super::print_json_list("evl.submitted/v1", &v);
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

/// `evl submit --ledger http(s)://…`: each file POSTed to the server's `/add`; the reply's
/// inclusion proof is checked against the checkpoint it comes with before it is reported.
fn submit_http(url: &str, a: &SubmitArgs, subs: &[(&PathBuf, Submission)]) -> Result<i32, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start the I/O runtime: {e}")))?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .tls_certs_merge(crate::net::ca::reqwest_roots()?)
        .build()
        .map_err(|e| Error::Invalid(format!("cannot make an HTTP client: {e}")))?;
    let endpoint = format!("{}/add", url.trim_end_matches('/'));
    let mut all = Vec::new();
    for (path, sub) in subs {
        let body = sub.to_bytes()?;
        let (status, text) = rt.block_on(async {
            let r = client
                .post(&endpoint)
                .header("content-type", "application/octet-stream")
                .body(body)
                .send()
                .await
                .map_err(|e| {
                    Error::Invalid(format!("{endpoint}: {}", crate::net::ca::chain(&e)))
                })?;
            let status = r.status();
            let text = r
                .text()
                .await
                .map_err(|e| Error::Invalid(format!("{endpoint}: {e}")))?;
            Ok::<_, Error>((status, text))
        })?;
        if !status.is_success() {
            let msg = format!(
                "{}: {endpoint} refused it ({status}): {}",
                path.display(),
                text.trim()
            );
            return Err(if status == reqwest::StatusCode::FORBIDDEN {
                Error::Unauthorized(crate::registry::AuthError::Registry(msg))
            } else if status.is_server_error() {
                Error::Busy(PathBuf::from(msg))
            } else {
                Error::Invalid(msg)
            });
        }
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("{endpoint}: the reply is not JSON: {e}")))?;
        check_reply(&v, sub).map_err(|e| {
            Error::Unverified(format!(
                "{endpoint}: the reply for {} does not check: {e}",
                path.display()
            ))
        })?;
        for e in v["entries"].as_array().into_iter().flatten() {
            all.push((path.display().to_string(), e.clone()));
        }
    }
    if a.json {
        let v: Vec<_> = all
            .iter()
            .map(|(f, e)| serde_json::json!({"file": f, "kind": e["kind"], "id": e["id"], "index": e["index"], "appended": e["appended"]}))
            .collect();
        return super::print_json_list("evl.submitted/v1", &v);
    }
    for (f, e) in &all {
        let verb = if e["appended"] == true {
            "at"
        } else {
            "already at"
        };
        println!(
            "{} {} {verb} index {}  {f}",
            e["kind"].as_str().unwrap_or("?"),
            e["id"].as_str().unwrap_or("?"),
            e["index"]
        );
    }
    Ok(exit::OK)
}

/// A server's reply to a submission: every entry submitted, each with an inclusion proof of
/// its stored bytes in the tree of the checkpoint it carries (whose body is parsed here; its
/// signature is the auditor's to check against their trust root with `evl verify`).
fn check_reply(v: &serde_json::Value, sub: &Submission) -> Result<(), String> {
    let note = v["checkpoint"].as_str().ok_or("no checkpoint")?;
    let (origin, size, root) =
        crate::checkpoint::body_of(note.as_bytes()).map_err(|e| e.to_string())?;
    if origin != sub.origin {
        return Err(format!(
            "its checkpoint is for {origin}, not {}",
            sub.origin
        ));
    }
    let entries = v["entries"].as_array().ok_or("no entries")?;
    for (entry, _) in &sub.entries {
        let id = entry.id().to_string();
        let r = entries
            .iter()
            .find(|e| e["id"] == id.as_str())
            .ok_or_else(|| format!("entry {} is missing", &id[..12]))?;
        let index = r["index"].as_u64().ok_or("no index")?;
        let proof = r["inclusion_proof"]
            .as_array()
            .ok_or("no proof")?
            .iter()
            .map(|h| {
                let b: [u8; 32] = h
                    .as_str()
                    .and_then(|s| hex::decode(s).ok())
                    .and_then(|b| b.try_into().ok())
                    .ok_or("a proof hash is not 64 hex")?;
                Ok(crate::merkle::Hash(b))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let leaf = crate::merkle::leaf_hash(&entry.to_bytes().map_err(|e| e.to_string())?);
        if !crate::merkle::check_inclusion(&proof, size, root, index, leaf) {
            return Err(format!(
                "entry {}: its inclusion proof does not check",
                &id[..12]
            ));
        }
    }
    Ok(())
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
    submit_checked_to(ledger, subs.map(|(name, sub)| (name, sub, &[][..])))
}

/// [`submit_to`] for submissions whose signatures were verified already: beside each, the key
/// each entry's signature verified under (`None` or missing: not verified). The store still
/// checks every entry against the key registry at its position, and verifies the signature
/// itself unless the registry's key for the signer there is the key it verified under
/// (`Ledger::append_checked`).
pub fn submit_checked_to<'a>(
    ledger: &Ledger,
    subs: impl Iterator<Item = (String, &'a Submission, &'a [Option<PublicKey>])>,
) -> Result<Vec<Submitted>, Error> {
    let genesis = ledger.genesis_id()?;
    let origin = ledger.origin()?;
    let now = Timestamp::now();
    let mut out: Vec<Submitted> = Vec::new();
    let mut new: Vec<(SignedEntry, Vec<Vec<u8>>, Option<PublicKey>)> = Vec::new();
    let mut new_at: Vec<usize> = Vec::new();
    let mut batch = Batch::default();
    let mut slot_of: BTreeMap<EntryId, usize> = BTreeMap::new();
    let mut dups: Vec<(usize, usize)> = Vec::new();
    for (name, sub, verified) in subs {
        if sub.origin != origin || sub.genesis != genesis {
            return Err(Error::Invalid(format!(
                "{name}: signed for ledger {} (genesis {}), not this one ({origin}, genesis {})",
                sub.origin,
                sub.genesis.short(),
                genesis.short()
            )));
        }
        for (j, (entry, blobs)) in sub.entries.iter().enumerate() {
            let id = sub.id(j);
            if let Some(&slot) = slot_of.get(&id) {
                // The same entry twice in one batch: appended once, reported to both.
                dups.push((out.len(), slot));
                out.push(Submitted {
                    source: name.clone(),
                    kind: entry.body.payload.kind(),
                    id,
                    index: 0,
                    appended: false,
                });
                continue;
            }
            if let Some(index) = ledger.index_of(&id)? {
                // The id does not cover the signature: only the very bytes appended are
                // "already in the log"; another signature over the same body is refused.
                if ledger.entry_bytes(index)? != sub.signed(j).into_parts()?.2 {
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
            batch.add(id, entry, blobs);
            slot_of.insert(id, out.len());
            new_at.push(out.len());
            out.push(Submitted {
                source: name.clone(),
                kind: entry.body.payload.kind(),
                id,
                index: 0,
                appended: true,
            });
            new.push((
                sub.signed(j),
                blobs.clone(),
                verified.get(j).copied().flatten(),
            ));
        }
    }
    if !new.is_empty() {
        let done = ledger.append_checked(new).map_err(|e| match e {
            Error::Invalid(m) => Error::Invalid(format!("submission refused: {m}")),
            other => other,
        })?;
        for (slot, d) in new_at.into_iter().zip(done) {
            out[slot].index = d.index;
        }
    }
    for (dup, slot) in dups {
        out[dup].index = out[slot].index;
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
    fn add(&mut self, id: EntryId, e: &Entry, blobs: &[Vec<u8>]) {
        self.index.insert(id, e.clone());
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
                super::gate::basis_kind_allowed(id, kind)?;
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

/// Where `--ledger` points when it names a published log (`s3://…`, or a directory in the
/// published layout): S3 settings beside the AWS_* environment. Options of `evl` itself, given
/// before the verb: a global option is copied into every verb's parser at each start, and evl
/// starts once per append (docs/PERFORMANCE.md).
#[derive(Args, Debug, Clone, Default)]
pub struct S3Args {
    /// S3 endpoint URL (default: AWS_ENDPOINT_URL / AWS_ENDPOINT, else AWS itself).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region (default: AWS_REGION / AWS_DEFAULT_REGION).
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Allow a plain-HTTP S3 endpoint (also AWS_ALLOW_HTTP=true), e.g. a server on loopback.
    #[arg(long)]
    pub s3_allow_http: bool,
    /// Read a published log without the local cache of its immutable objects (also
    /// EVL_NO_CACHE=1; docs/PUBLISH.md §"The local cache").
    #[arg(long, env = "EVL_NO_CACHE", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_cache: bool,
}

impl S3Args {
    fn options(&self) -> crate::publish::S3Options {
        crate::publish::S3Options {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            allow_http: self.s3_allow_http,
        }
    }
}

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// Where to publish: a directory, or s3://BUCKET/PREFIX (credentials from AWS_ACCESS_KEY_ID
    /// and AWS_SECRET_ACCESS_KEY, or the other usual AWS_* variables).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub to: String,
    /// Sign a checkpoint of the whole log with this admin key (it is stored in the ledger too)
    /// and publish that tree; default: the tree of the latest stored checkpoint.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `evl publish`: the log's tiles, entry bundles and blobs the destination lacks, create-only,
/// then the checkpoint (docs/PUBLISH.md).
pub fn publish(g: &Global, a: PublishArgs) -> Result<i32, Error> {
    let key = a.key.as_deref().map(crate::keys::read_secret).transpose()?;
    let ledger = open(g)?;
    let note = match key {
        Some(k) => {
            let size = ledger.size()?;
            let note = crate::checkpoint::sign(&ledger.origin()?, size, ledger.root(size)?, &k);
            ledger.store_checkpoint(&note)?;
            note
        }
        None => ledger.latest_checkpoint()?.ok_or_else(|| {
            Error::Invalid(
                "the ledger has no checkpoint yet; run `evl checkpoint` or pass --key".into(),
            )
        })?,
    };
    let remote = crate::publish::Remote::open(&a.to, &g.s3.options(), true)?;
    let started = std::time::Instant::now();
    let p = crate::publish::publish(ledger, &note, &remote)?;
    let secs = started.elapsed().as_secs_f64();
    if a.json {
        let mut v = serde_json::to_value(&p).expect("publish report encodes");
        v["to"] = a.to.clone().into();
        v["seconds"] = secs.into();
        return super::print_json_as("evl.publish/v1", &v);
    }
    if p.previous == p.size && p.created == 0 && p.tiles == 0 {
        println!(
            "{} already holds the tree of size {}; nothing to publish",
            a.to, p.size
        );
    } else {
        println!(
            "published size {} (was {}) to {}: {} tiles, {} entry bundles, {} blobs; {} objects created, {} bytes, {:.2} s",
            p.size, p.previous, a.to, p.tiles, p.bundles, p.blobs, p.created, p.bytes, secs
        );
    }
    Ok(exit::OK)
}

/// Directories of published logs read back during this run, removed when it ends.
static FETCHED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
/// What a published log read back for `verify` failed beyond what a ledger can show.
static FAILURES: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Removes what [`fetched`] read back.
pub(crate) fn cleanup() {
    for d in FETCHED.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// The damage a fetch for `verify` found, taken once.
pub(crate) fn take_failures() -> Vec<(String, String)> {
    std::mem::take(&mut *FAILURES.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Reads the published log `--ledger` names into a private ledger: verified as far as the
/// published objects go (`crate::publish::fetch`). For `verify` (`for_verify`), damage that
/// leaves a ledger is kept for its report and its trust roots decide; for every other verb the
/// log must verify and be anchored by the auditor state `evl verify` recorded for its origin.
pub(crate) fn fetched(g: &Global, for_verify: bool) -> Result<Ledger, Error> {
    let location = g.ledger.to_string_lossy().into_owned();
    let remote = crate::publish::Remote::open(&location, &g.s3.options(), false)?;
    let dir = std::env::temp_dir().join(format!(
        "evl-fetch-{}-{}",
        std::process::id(),
        Digest::of(format!("{location}{:?}", std::time::SystemTime::now()).as_bytes()).short()
    ));
    FETCHED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(dir.clone());
    let cache = if g.s3.no_cache {
        None
    } else {
        crate::publish::Cache::default_dir()
    };
    // `verify` audits what is published: it fetches every object (a swapped blob is named even
    // when an earlier read cached the right one) and only refreshes the cache.
    let f = crate::publish::fetch(&remote, &dir, cache.as_deref().map(|c| (c, !for_verify)))?;
    for (file, why) in &f.cache.rejected {
        eprintln!("evl: cache: {file}: {why}; removed, fetched again");
    }
    if std::env::var_os("EVL_FETCH_STATS").is_some() {
        eprintln!(
            "evl: fetched {} objects from {location}, {} from the cache",
            f.cache.fetched, f.cache.hits
        );
    }
    if for_verify {
        FAILURES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(f.failures);
        return Ok(f.ledger);
    }
    if let Some((object, why)) = f.failures.first() {
        return Err(Error::Unverified(format!("{location}: {object}: {why}")));
    }
    check_trusted(&f.ledger, &location)?;
    Ok(f.ledger)
}

/// A published log read by a verb other than `verify` must be the one its origin's auditor
/// state records (same genesis) and hold every tree recorded there (no rollback, no fork).
fn check_trusted(ledger: &Ledger, location: &str) -> Result<(), Error> {
    let origin = ledger.origin()?;
    let no_root = || {
        Error::Invalid(format!(
            "no trust root for the published log {location} (origin {origin}): verify it first with `evl verify --ledger {location} --genesis ID` (or --admin-key, --verifier-key), which records it in the auditor state"
        ))
    };
    let dir = super::read::default_state_dir().map_err(|_| no_root())?;
    let rec = dir.load(&origin)?.ok_or_else(no_root)?;
    let genesis = ledger.genesis_id()?;
    if rec.state.genesis != genesis {
        return Err(Error::Unverified(format!(
            "{location}: its genesis {} is not the genesis {} verified for origin {origin} ({})",
            genesis.short(),
            rec.state.genesis.short(),
            rec.file.display()
        )));
    }
    let size = ledger.size()?;
    let mut heads = vec![(rec.state.tree.size, rec.state.tree.root)];
    heads.extend(rec.state.checkpoint.as_ref().map(|c| (c.size, c.root)));
    for (s, root) in heads {
        if s > size {
            return Err(Error::Unverified(format!(
                "{location}: its checkpoint is of {size} entries, but a tree of {s} was verified before: the published log was rolled back"
            )));
        }
        if ledger.root(s)?.0 != root.0 {
            return Err(Error::Unverified(format!(
                "{location}: its tree of size {s} differs from the one verified before: a fork"
            )));
        }
    }
    Ok(())
}
