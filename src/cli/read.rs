//! Verbs that read the ledger, prove, checkpoint and verify.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;

use super::formats::{ProofFormat, ProofVerifyArgs, proof_verify, tlog_proof_out};
use super::query::{self, Bound, Target};
use super::{Global, Progress, open, open_for_verify, print_json, read_file};
use crate::bundle;
use crate::checkpoint::{self, VerifierKey};
use crate::digest::{Digest, EntryId};
use crate::entry::{Entry, Payload};
use crate::error::{Error, exit};
use crate::keys::{self, PublicKey, Role};
use crate::merkle::{self, ProofJson};
use crate::registry::Registry;
use crate::store::{Ledger, Resolved, View};
use crate::timestamp::Timestamp;
use crate::trust::{self, KeptCheckpoint, Roots, StateDir, Trusted, Update};
use crate::verify;

/// An entry as `show --json` and `log --json` print it.
#[derive(Serialize)]
pub(crate) struct EntryView<'a> {
    pub index: u64,
    pub id: String,
    pub kind: &'static str,
    pub signer: String,
    pub signer_name: Option<String>,
    #[serde(flatten)]
    pub entry: &'a Entry,
}

fn view_of<'a>(reg: &Registry, index: u64, entry: &'a Entry) -> EntryView<'a> {
    EntryView {
        index,
        id: entry.id().to_hex(),
        kind: entry.body.payload.kind(),
        signer: entry.body.signer.to_string(),
        signer_name: reg.get(&entry.body.signer).map(|s| s.name.clone()),
        entry,
    }
}

/// One line describing an entry, for `log`.
pub(crate) fn summary(e: &Entry) -> String {
    match &e.body.payload {
        Payload::Genesis(g) => format!("origin {} with {} admin key(s)", g.origin, g.admins.len()),
        Payload::KeyAdd(k) => format!(
            "{} as {}",
            k.name,
            k.roles
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(",")
        ),
        Payload::KeyRotate(r) => format!("{} -> {}", r.old.0.short(), r.new_key.id().0.short()),
        Payload::KeyRevoke(r) => format!("{}: {}", r.key.0.short(), r.reason),
        Payload::Artifact(m) => format!(
            "{} [{}{}] {} ({} bytes)",
            m.kind,
            m.tier,
            if m.sealed { ", sealed" } else { "" },
            m.file_name,
            m.size
        ),
        Payload::Annotation(a) => format!("{} on {}: {}", a.kind.name(), a.subject.short(), a.text),
        Payload::Acknowledgment(a) => format!(
            "{}{}: {}",
            a.topic,
            a.namespace
                .as_ref()
                .map(|n| format!(" for namespace {n}"))
                .unwrap_or_default(),
            a.statement
        ),
        Payload::Promotion(p) => format!("{} to {}: {}", p.artifact.short(), p.to, p.reason),
        Payload::Packet(p) => format!(
            "{} revision {} ({} basis entries)",
            p.name,
            p.revision,
            p.basis.len()
        ),
        Payload::Narrowing(n) => format!(
            "narrow packet {} to {} workload(s)",
            n.packet.short(),
            n.keep.len()
        ),
        Payload::Disposition(d) => format!(
            "{} for packet {} as of {}",
            d.verdict,
            d.packet.short(),
            d.as_of
        ),
        Payload::Decision(d) => format!("{} on packet {}", d.decision, d.packet.short()),
    }
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Entry id, artifact digest, or a unique prefix of either (at least 4 hex characters).
    pub digest: String,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// An entry that refers to the one `show` prints.
#[derive(Serialize)]
struct BackRef {
    index: u64,
    id: String,
    kind: &'static str,
    /// How it refers (docs/CLI-JSON.md §"Back-references").
    relation: &'static str,
    signer_name: Option<String>,
    claimed_at: Timestamp,
    summary: String,
}

/// Every entry that refers to `t`, in log order: one scan of the log from the first index that
/// can refer to it ([`scan_start`]), each entry read on a checked path (the store keeps no
/// index of references).
fn back_references(ledger: &Ledger, reg: &Registry, mut t: Target) -> Result<Vec<BackRef>, Error> {
    let view = ledger.snapshot()?;
    let mut refs = Vec::new();
    let mut release = query::Release::new();
    for index in scan_start(&view, &t)?..view.size() {
        release.passed(&view, index);
        if Some(index) == t.index {
            continue;
        }
        let e = view.entry(index)?;
        if t.is_itself(index, &e) {
            continue;
        }
        if let Some(relation) = query::refers(&view, &e, &t)? {
            refs.push(BackRef {
                index,
                id: e.id().to_hex(),
                kind: e.body.payload.kind(),
                relation,
                signer_name: reg.get(&e.body.signer).map(|s| s.name.clone()),
                claimed_at: e.body.claimed_at,
                summary: summary(&e),
            });
        }
    }
    Ok(refs)
}

/// The first index at which an entry can refer to `t`. An append refuses a reference to an
/// entry the log does not hold yet (and `evl verify` holds the log to that), so when the target
/// is one entry named by its id alone — checked against the tree when it was resolved — nothing
/// before it can refer to it. Stored bytes (an artifact's content, a document) may have been
/// carried by an earlier entry, and which one came first is told only by where the store put
/// them, which a re-sealed edit can move: for those the scan starts at 0 and finds the carriers
/// itself, each on a checked path.
fn scan_start(view: &View, t: &Target) -> Result<u64, Error> {
    Ok(match (t.index, t.carried, t.digests.as_slice()) {
        (Some(i), None, [only]) if view.entry(i)?.id() == *only => i,
        _ => 0,
    })
}

fn print_back_references(refs: &[BackRef]) {
    if refs.is_empty() {
        println!("referenced by  nothing");
        return;
    }
    println!(
        "referenced by  {} entr{}",
        refs.len(),
        if refs.len() == 1 { "y" } else { "ies" }
    );
    for r in refs {
        println!(
            "  {:>6}  {}  {:<22} {:<14} {}",
            r.index,
            &r.id[..12],
            r.relation,
            r.signer_name.as_deref().unwrap_or("?"),
            r.summary
        );
    }
}

#[derive(Serialize)]
struct ShowEntry<'a> {
    schema: &'static str,
    #[serde(flatten)]
    entry: EntryView<'a>,
    referenced_by: Vec<BackRef>,
}

pub fn show(g: &Global, a: ShowArgs) -> Result<i32, Error> {
    let ledger = open(g)?;
    let reg = ledger.registry()?;
    match ledger.resolve(&a.digest)? {
        Resolved::Entry { index, id } => {
            let (_, entry) = ledger.entry_by_id(&id)?;
            let refs = back_references(ledger, &reg, query::target(ledger, &id.to_hex())?)?;
            let v = view_of(&reg, index, &entry);
            if a.json {
                return print_json(&ShowEntry {
                    schema: "evl.show/v1",
                    entry: v,
                    referenced_by: refs,
                });
            }
            println!("entry     {}", v.id);
            println!("index     {index}");
            println!("kind      {}", v.kind);
            println!(
                "signer    {} ({})",
                v.signer_name.as_deref().unwrap_or("unknown"),
                entry.body.signer.0.short()
            );
            println!("claimed   {}", entry.body.claimed_at);
            let body = serde_json::to_string_pretty(&entry.body.payload).unwrap_or_default();
            println!("{body}");
            print_back_references(&refs);
        }
        Resolved::Blob(d) => {
            let bytes = ledger.blob(&d)?.ok_or_else(|| Error::Unknown(d.to_hex()))?;
            // Found by the scan itself (each entry read on a checked path): an artifact entry
            // carrying these bytes is the artifact shown.
            let refs = back_references(ledger, &reg, query::Target::bytes(d))?;
            if a.json {
                return super::print_json_as(
                    "evl.show/v1",
                    &serde_json::json!({"artifact": d.to_hex(),
                        "size": bytes.len(),
                        "referenced_by": refs,
                    }),
                );
            }
            println!(
                "artifact  {d}\nsize      {} bytes\n(use `evl cat {}` for the bytes)",
                bytes.len(),
                d.short()
            );
            print_back_references(&refs);
        }
    }
    Ok(exit::OK)
}

#[derive(Args, Debug)]
pub struct LogArgs {
    /// Only entries of this kind (genesis, key-add, key-rotate, key-revoke, artifact, annotation,
    /// acknowledgment, promotion, packet, narrowing, disposition, decision).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only entries signed by this key: a registered name (every key that held it, across
    /// rotations) or a key id prefix (at least 4 hex characters).
    #[arg(long, value_name = "NAME|KEYID")]
    pub signer: Option<String>,
    /// Only entries that refer to this entry or artifact (id, content digest or unique prefix),
    /// and the entry itself: annotations and acknowledgments of it, artifacts superseding it,
    /// promotions, packets pinning it (gate, basis, parent), narrowings and decisions of a
    /// packet, dispositions of a packet or whose packet's basis pins it.
    #[arg(long, value_name = "DIGEST")]
    pub subject: Option<String>,
    /// Only entries about this namespace: scope, acknowledgment namespace, packet workloads,
    /// an artifact's parsed facts, or the entry an annotation, acknowledgment, promotion,
    /// narrowing, disposition or decision points at.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Start here: a log index (digits; inclusive), or a time (RFC 3339 or YYYY-MM-DD):
    /// entries the signer claims at or after it.
    #[arg(long, value_name = "INDEX|TIME")]
    pub since: Option<Bound>,
    /// Stop here: a log index (exclusive), or a time: entries claimed before it.
    #[arg(long, value_name = "INDEX|TIME")]
    pub until: Option<Bound>,
    /// Print at most N entries (with --reverse: the newest N).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Newest first.
    #[arg(long)]
    pub reverse: bool,
    /// Print NDJSON: one entry object per line, each with "schema": "evl.log/v1", streamed.
    #[arg(long)]
    pub json: bool,
}

/// The filters of one `evl log`, all of which an entry must pass.
struct LogFilter {
    kind: Option<String>,
    signers: Option<Vec<crate::keys::KeyId>>,
    subject: Option<Target>,
    namespace: Option<String>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
}

impl LogFilter {
    /// Cheap tests first; the ones that read other entries or facts last.
    fn pass(&self, view: &View, index: u64, e: &Entry) -> Result<bool, Error> {
        if self
            .kind
            .as_deref()
            .is_some_and(|k| k != e.body.payload.kind())
        {
            return Ok(false);
        }
        if let Some(s) = &self.signers
            && !s.contains(&e.body.signer)
        {
            return Ok(false);
        }
        if self.since.is_some_and(|t| e.body.claimed_at < t)
            || self.until.is_some_and(|t| e.body.claimed_at >= t)
        {
            return Ok(false);
        }
        if let Some(t) = &self.subject
            && t.index != Some(index)
            && query::refers(view, e, t)?.is_none()
        {
            return Ok(false);
        }
        if let Some(ns) = &self.namespace
            && !query::about(view, e, ns, 2)?
        {
            return Ok(false);
        }
        Ok(true)
    }
}

/// One `log --json` line.
#[derive(Serialize)]
struct LogLine<'a> {
    schema: &'static str,
    #[serde(flatten)]
    entry: EntryView<'a>,
}

pub fn log(g: &Global, a: LogArgs) -> Result<i32, Error> {
    if let Some(k) = &a.kind
        && !Payload::KINDS.contains(&k.as_str())
    {
        return Err(Error::Invalid(format!(
            "unknown entry kind '{k}': expected one of {}",
            Payload::KINDS.join(", ")
        )));
    }
    let ledger = open(g)?;
    // One consistent snapshot for the whole listing, read one entry at a time.
    let view = ledger.snapshot()?;
    let reg = view.registry()?;
    let size = view.size();
    let signers = a
        .signer
        .as_deref()
        .map(|s| query::signer_keys(&reg, s))
        .transpose()?;
    let subject = a
        .subject
        .as_deref()
        .map(|s| query::target(ledger, s))
        .transpose()?;
    let (mut lo, mut hi) = (0, size);
    let (mut since, mut until) = (None, None);
    match a.since {
        Some(Bound::Index(i)) => lo = i,
        Some(Bound::Time(t)) => since = Some(t),
        None => {}
    }
    match a.until {
        Some(Bound::Index(i)) => hi = hi.min(i),
        Some(Bound::Time(t)) => until = Some(t),
        None => {}
    }
    let filter = LogFilter {
        kind: a.kind,
        signers,
        subject,
        namespace: a.namespace,
        since,
        until,
    };
    let range = lo..hi.max(lo);
    let indexes: Box<dyn Iterator<Item = u64>> = if a.reverse {
        Box::new(range.rev())
    } else {
        Box::new(range)
    };
    let limit = a.limit.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let json_err = |e: serde_json::Error| Error::Invalid(format!("cannot encode JSON: {e}"));
    let mut release = query::Release::new();
    for index in indexes {
        if printed >= limit {
            break;
        }
        release.passed(&view, index);
        let e = view.entry(index)?;
        if !filter.pass(&view, index, &e)? {
            continue;
        }
        printed += 1;
        let written = if a.json {
            serde_json::to_writer(
                &mut out,
                &LogLine {
                    schema: "evl.log/v1",
                    entry: view_of(&reg, index, &e),
                },
            )
            .map_err(json_err)?;
            writeln!(out)
        } else {
            let signer = reg
                .get(&e.body.signer)
                .map(|s| s.name.as_str())
                .unwrap_or("?");
            writeln!(
                out,
                "{index:>6}  {}  {}  {:<14} {:<14} {}",
                e.id().short(),
                e.body.claimed_at,
                e.body.payload.kind(),
                signer,
                summary(&e)
            )
        };
        // A closed pipe (`evl log | head`) ends the listing quietly.
        if written.is_err() {
            return Ok(exit::OK);
        }
    }
    let _ = out.flush();
    Ok(exit::OK)
}

#[derive(Args, Debug)]
pub struct CatArgs {
    /// Artifact entry id, content digest, or unique prefix.
    pub artifact: String,
}

pub fn cat(g: &Global, a: CatArgs) -> Result<i32, Error> {
    let ledger = open(g)?;
    let digest = match ledger.resolve(&a.artifact)? {
        Resolved::Blob(d) => d,
        Resolved::Entry { id, .. } => match ledger.entry_by_id(&id)?.1.body.payload {
            Payload::Artifact(m) => m.content,
            Payload::Disposition(d) => d.document,
            p => {
                return Err(Error::Invalid(format!(
                    "{} is a {} entry, which has no stored bytes",
                    a.artifact,
                    p.kind()
                )));
            }
        },
    };
    let bytes = ledger
        .blob(&digest)?
        .ok_or_else(|| Error::Corrupt(format!("artifact {digest} is missing")))?;
    std::io::stdout()
        .write_all(&bytes)
        .map_err(Error::io("stdout"))?;
    Ok(exit::OK)
}

#[derive(Subcommand, Debug)]
pub enum ProofCommand {
    /// Prove an entry is in the tree (RFC 9162 §2.1.3): leaf index, leaf hash, audit path.
    Inclusion {
        /// Entry id or unique prefix.
        entry: String,
        /// Tree size to prove against; default: the latest checkpoint's size, else the current size.
        #[arg(long)]
        size: Option<u64>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
        /// `text` (default), `json` (as --json), or `tlog-proof`: a C2SP tlog-proof@v1 file
        /// carrying the entry's bytes and the signed checkpoint, verifiable offline with
        /// `evl proof verify` (docs/FORMAT.md §"tlog-proof files").
        #[arg(long, value_name = "FORMAT", default_value = "text")]
        format: ProofFormat,
        /// tlog-proof: the signed checkpoint note to prove against (e.g. one carrying witness
        /// cosignatures); default: the ledger's latest stored checkpoint.
        #[arg(long, value_name = "NOTE")]
        checkpoint: Option<PathBuf>,
        /// Write the proof to FILE instead of stdout.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Check a C2SP tlog-proof@v1 file offline, with no ledger, from a trust root you hold.
    ///
    /// The proof's checkpoint must be anchored by --verifier-key, --admin-key, a --checkpoint
    /// note of the same size, or the auditor state recorded for its origin at the same size;
    /// the inclusion proof must lead from the entry it carries to the checkpoint's root.
    /// Reads the auditor state but never writes it. Exit 0 when it verifies; 1 when it does
    /// not (tampered, malformed, or no trust root anchors it); 2 when FILE cannot be read.
    #[command(
        after_help = "EXAMPLE:\n    evl proof inclusion 3f2a9c --format tlog-proof -o entry.tlog-proof\n    evl proof verify entry.tlog-proof --verifier-key 'example.org/mesh-gate+5c8409be+AcPl…'\n    evl proof verify entry.tlog-proof --admin-key keys/mesh-admin.pub --entry 3f2a9c…"
    )]
    Verify(ProofVerifyArgs),
    /// Prove the tree of OLD entries is a prefix of the tree of NEW entries (RFC 9162 §2.1.4).
    Consistency {
        /// The older tree size.
        old: u64,
        /// The newer tree size; default: the current size.
        new: Option<u64>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn print_proof(p: &ProofJson, json: bool) -> Result<i32, Error> {
    if json {
        return super::print_json_as("evl.proof/v1", p);
    }
    println!("{} proof", p.kind);
    println!("tree size   {}", p.tree_size);
    if let Some(i) = p.leaf_index {
        println!("leaf index  {i}");
    }
    if let Some(h) = &p.leaf_hash {
        println!("leaf hash   {h}");
    }
    if let Some(o) = p.old_size {
        println!("old size    {o}");
    }
    if let Some(h) = &p.old_root_hash {
        println!("old root    {h}");
    }
    println!("root hash   {}", p.root_hash);
    for (i, h) in p.hashes.iter().enumerate() {
        println!("  [{i}] {h}");
    }
    Ok(exit::OK)
}

pub fn proof(g: &Global, c: ProofCommand) -> Result<i32, Error> {
    match c {
        ProofCommand::Verify(a) => return proof_verify(a),
        ProofCommand::Inclusion {
            format: ProofFormat::TlogProof,
            entry,
            size,
            json: _,
            checkpoint,
            output,
        } => return tlog_proof_out(open(g)?, &entry, size, checkpoint, output),
        ProofCommand::Inclusion {
            entry,
            size,
            json,
            format,
            ..
        } => {
            let json = json || format == ProofFormat::Json;
            let ledger = open(g)?;
            let (index, _) = ledger.resolve_entry(&entry)?;
            let size = match size {
                Some(s) => s,
                None => latest_checkpoint_size(ledger)?
                    .filter(|s| *s > index)
                    .unwrap_or(ledger.size()?),
            };
            let proof = ledger.prove_inclusion(index, size)?;
            let leaf = merkle::leaf_hash(&ledger.entry_bytes(index)?);
            print_proof(
                &ProofJson {
                    kind: "inclusion".into(),
                    tree_size: size,
                    leaf_index: Some(index),
                    old_size: None,
                    leaf_hash: Some(merkle::hex(&leaf)),
                    root_hash: merkle::hex(&ledger.root(size)?),
                    old_root_hash: None,
                    hashes: proof.iter().map(merkle::hex).collect(),
                },
                json,
            )
        }
        ProofCommand::Consistency { old, new, json } => {
            let ledger = open(g)?;
            let new = match new {
                Some(n) => n,
                None => ledger.size()?,
            };
            let proof = ledger.prove_consistency(old, new)?;
            print_proof(
                &ProofJson {
                    kind: "consistency".into(),
                    tree_size: new,
                    leaf_index: None,
                    old_size: Some(old),
                    leaf_hash: None,
                    root_hash: merkle::hex(&ledger.root(new)?),
                    old_root_hash: Some(merkle::hex(&ledger.root(old)?)),
                    hashes: proof.iter().map(merkle::hex).collect(),
                },
                json,
            )
        }
    }
}

fn latest_checkpoint_size(ledger: &Ledger) -> Result<Option<u64>, Error> {
    let Some(note) = ledger.latest_checkpoint()? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&note);
    Ok(text.lines().nth(1).and_then(|l| l.parse().ok()))
}

#[derive(Args, Debug)]
pub struct CheckpointArgs {
    /// Also write the signed note to FILE.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Admin secret key to sign the checkpoint with (PKCS#8 PEM or OpenSSH ed25519, mode 0600), or ssh-agent:COMMENT.
    #[arg(long, env = "EVL_KEY", value_name = "FILE")]
    pub key: PathBuf,
    /// Print origin, size, root, note and verifier key as JSON.
    #[arg(long)]
    pub json: bool,
    /// A C2SP tlog-witness to collect a cosignature from: its submission prefix (the URL
    /// `/add-checkpoint` is appended to). Repeat for several.
    #[arg(long = "witness", value_name = "URL")]
    pub witnesses: Vec<String>,
    /// How many of the --witness URLs must cosign [default: all of them].
    #[arg(long, value_name = "K", requires = "witnesses")]
    pub quorum: Option<usize>,
    /// A witness policy (Sigsum policy format, docs/WITNESS.md): every witness line with a URL
    /// is asked to cosign, each answer is verified against the witness's key, and the note is
    /// stored only if the policy's quorum is met.
    #[arg(long, value_name = "FILE")]
    pub witness_policy: Option<PathBuf>,
}

/// A cosigned checkpoint note and who cosigned it.
type Cosigned = (Vec<u8>, Vec<String>);

/// Collects cosignatures for `note` (the checkpoint of `size`) from the witnesses `a` names
/// and returns the cosigned note, or `Err` with the one-line reason the quorum was not met.
fn cosign_checkpoint(
    ledger: &Ledger,
    a: &CheckpointArgs,
    origin: &str,
    note: &[u8],
    size: u64,
) -> Result<Result<Cosigned, String>, Error> {
    use crate::witness::{self, policy::Policy};
    if let Some(k) = a.quorum
        && k > a.witnesses.len()
    {
        return Err(Error::Invalid(format!(
            "--quorum {k} is more than the {} --witness URL(s) given",
            a.witnesses.len()
        )));
    }
    let policy = match &a.witness_policy {
        Some(p) => Some(Policy::read(p).map_err(Error::Invalid)?),
        None => None,
    };
    // The size the witnesses most likely hold: that of the last checkpoint stored.
    let start = latest_checkpoint_size(ledger)?.unwrap_or(0);
    let proof = |old: u64| -> Result<Vec<merkle::Hash>, String> {
        ledger
            .prove_consistency(old, size)
            .map_err(|e| format!("cannot prove consistency from size {old}: {e}"))
    };
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut cosigned_by: Vec<String> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    // A witness answers with cosignatures; a line under the log's own key name would replace
    // the log's signature, so none is taken from a witness whose key evl cannot check.
    let log_name = format!("— {origin} ");
    for url in &a.witnesses {
        let got = witness::client::submit(url, note, start, &proof).and_then(|l| {
            let theirs: Vec<Vec<u8>> = l
                .into_iter()
                .filter(|l| !l.starts_with(log_name.as_bytes()))
                .collect();
            if theirs.is_empty() {
                Err(format!("{url}: no cosignature line in the answer"))
            } else {
                Ok(theirs)
            }
        });
        match got {
            Ok(l) => {
                lines.extend(l);
                cosigned_by.push(url.clone());
            }
            Err(e) => failures.push(e),
        }
    }
    if let Some(p) = &policy {
        for w in p.witnesses.iter() {
            let Some(url) = &w.url else { continue };
            let got = witness::client::submit(url, note, start, &proof).and_then(|l| {
                let mine: Vec<Vec<u8>> = l
                    .into_iter()
                    .filter(|line| {
                        witness::attach(note, std::slice::from_ref(line)).is_some_and(|n| {
                            matches!(
                                witness::cosigned_by(&n, &w.name, &w.key),
                                witness::Cosigned::Valid(_)
                            )
                        })
                    })
                    .collect();
                if mine.is_empty() {
                    Err(format!("{url}: no valid cosignature by witness {}", w.name))
                } else {
                    Ok(mine)
                }
            });
            match got {
                Ok(l) => {
                    lines.extend(l);
                    cosigned_by.push(w.name.clone());
                }
                Err(e) => failures.push(e),
            }
        }
    }
    let cosigned = witness::attach(note, &lines).ok_or_else(|| {
        Error::Invalid("the witnesses' signature lines do not form a signed note".into())
    })?;
    let why = |mut head: String| {
        if !failures.is_empty() {
            head.push_str(&format!(" ({})", failures.join("; ")));
        }
        head
    };
    if !a.witnesses.is_empty() {
        let k = a.quorum.unwrap_or(a.witnesses.len());
        let got = a
            .witnesses
            .iter()
            .filter(|u| cosigned_by.contains(u))
            .count();
        if got < k {
            return Ok(Err(why(format!(
                "witness quorum not reached: {got} of the {k} needed --witness cosignatures"
            ))));
        }
    }
    if let Some(p) = &policy
        && let Err(e) = p.verify(&cosigned, origin)
    {
        return Ok(Err(why(e)));
    }
    Ok(Ok((cosigned, cosigned_by)))
}

pub fn checkpoint(g: &Global, a: CheckpointArgs) -> Result<i32, Error> {
    let key = crate::keys::read_secret(&a.key)?;
    let ledger = open(g)?;
    let reg = ledger.registry()?;
    let size = ledger.size()?;
    let state = reg.get(&key.public().id()).ok_or_else(|| {
        Error::Unauthorized(crate::registry::AuthError::UnknownKey(
            key.public().id().0.short(),
        ))
    })?;
    if !state.active_at(size) || !state.roles.contains(&Role::Admin) {
        return Err(Error::Unauthorized(crate::registry::AuthError::Registry(
            format!(
                "key '{}' is not an active admin key and cannot sign checkpoints",
                state.name
            ),
        )));
    }
    let origin = ledger.origin()?;
    let root = ledger.root(size)?;
    let mut note = checkpoint::try_sign(&origin, size, root, &key)?;
    let mut cosigners: Option<Vec<String>> = None;
    if !a.witnesses.is_empty() || a.witness_policy.is_some() {
        match cosign_checkpoint(ledger, &a, &origin, &note, size)? {
            Ok((cosigned, by)) => {
                note = cosigned;
                cosigners = Some(by);
            }
            Err(why) => {
                eprintln!("evl: {why}; no checkpoint stored");
                return Ok(exit::NO_QUORUM);
            }
        }
    }
    if let Some(path) = &a.output {
        std::fs::write(path, &note).map_err(Error::io(path))?;
    }
    ledger.store_checkpoint(&note)?;
    if a.json {
        return super::print_json_as(
            "evl.checkpoint/v1",
            &serde_json::json!({
                "origin": origin, "size": size, "root_hash": merkle::hex(&root),
                "note": String::from_utf8_lossy(&note), "verifier_key": checkpoint::verifier_key(&origin, &key.public()),
                "cosigned_by": cosigners,
            }),
        );
    }
    print!("{}", String::from_utf8_lossy(&note));
    Ok(exit::OK)
}

/// The trust roots and auditor state options of `verify` and `verify-bundle`
/// (docs/THREAT-MODEL.md, docs/FORMAT.md §"Auditor state").
#[derive(Args, Debug)]
pub struct TrustArgs {
    /// Trust root: the ledger's genesis entry id (64 hex, as `evl init` and `evl verify` print it). Entry 0 must have exactly this id.
    #[arg(long, value_name = "ID")]
    pub genesis: Option<EntryId>,
    /// Trust root: an admin public key (a .pub file, PEM or ssh-ed25519 line, or 64 hex). The genesis entry or the checkpoint must be signed by it; repeat to trust any of several.
    #[arg(long = "admin-key", value_name = "PUBFILE|HEX")]
    pub admin_keys: Vec<String>,
    /// Trust root: a C2SP note verifier key, as `evl checkpoint --json` prints `verifier_key`. The checkpoint must carry a valid signature by it, and its name must be the origin; repeat to trust any of several.
    #[arg(long = "verifier-key", value_name = "VKEY")]
    pub verifier_keys: Vec<String>,
    /// Auditor state directory: one file per origin recording the genesis and the newest tree verified [default: $XDG_STATE_HOME/evl, else ~/.local/state/evl].
    #[arg(long, env = "EVL_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Neither read nor write the auditor state (e.g. to verify an older copy on purpose).
    #[arg(long)]
    pub no_state: bool,
}

impl TrustArgs {
    /// The roots given on the command line.
    fn roots(&self) -> Result<Roots, Error> {
        Ok(Roots {
            genesis: self.genesis,
            admin_keys: self
                .admin_keys
                .iter()
                .map(|k| admin_key(k))
                .collect::<Result<_, _>>()?,
            verifier_keys: self
                .verifier_keys
                .iter()
                .map(|v| {
                    v.parse::<VerifierKey>()
                        .map_err(|e| Error::Invalid(format!("--verifier-key: {e}")))
                })
                .collect::<Result<_, _>>()?,
            ..Roots::default()
        })
    }

    /// The auditor state directory: --state-dir / EVL_STATE_DIR, else `$XDG_STATE_HOME/evl`
    /// (only an absolute XDG_STATE_HOME counts, as the XDG base directory specification
    /// says), else `$HOME/.local/state/evl`. `Err` says why there is none.
    pub(super) fn state(&self) -> Result<StateDir, &'static str> {
        if self.no_state {
            return Err("not kept (--no-state)");
        }
        if let Some(d) = &self.state_dir {
            return Ok(StateDir::new(d.clone()));
        }
        let absolute = |v: std::ffi::OsString| {
            let p = PathBuf::from(v);
            p.is_absolute().then_some(p)
        };
        std::env::var_os("XDG_STATE_HOME")
            .and_then(absolute)
            .map(|p| p.join("evl"))
            .or_else(|| {
                std::env::var_os("HOME")
                    .and_then(absolute)
                    .map(|h| h.join(".local/state/evl"))
            })
            .map(StateDir::new)
            .ok_or("not kept: neither XDG_STATE_HOME nor HOME is set; pass --state-dir")
    }
}

/// The auditor state directory a verb without trust options uses: EVL_STATE_DIR, else as
/// [`TrustArgs`] finds it.
pub(super) fn default_state_dir() -> Result<StateDir, &'static str> {
    TrustArgs {
        genesis: None,
        admin_keys: vec![],
        verifier_keys: vec![],
        state_dir: std::env::var_os("EVL_STATE_DIR").map(PathBuf::from),
        no_state: false,
    }
    .state()
}

/// An --admin-key value: 64 hex characters, or a public key file.
pub(super) fn admin_key(given: &str) -> Result<(String, PublicKey), Error> {
    if given.len() == 64 && given.bytes().all(|b| b.is_ascii_hexdigit()) {
        let d: Digest = given
            .parse()
            .map_err(|e| Error::Invalid(format!("--admin-key: {e}")))?;
        let pk = PublicKey(d);
        if pk.verifying_key().is_none() {
            return Err(Error::Invalid(format!(
                "--admin-key {given}: the 32 bytes are not a valid Ed25519 public key"
            )));
        }
        return Ok((d.short(), pk));
    }
    let (pk, _) = keys::read_public(Path::new(given))?;
    Ok((given.to_string(), pk))
}

/// What became of the auditor state, as printed.
struct StateOutcome {
    file: Option<PathBuf>,
    status: &'static str,
    text: String,
}

/// Records `t.next_state` in `dir` when the verification succeeded.
fn record(
    dir: Result<&StateDir, &'static str>,
    recorded: Option<&trust::AuditorState>,
    t: &Trusted,
) -> Result<StateOutcome, Error> {
    let dir = match dir {
        Err(why) => {
            return Ok(StateOutcome {
                file: None,
                status: "not-kept",
                text: why.to_string(),
            });
        }
        Ok(d) => d,
    };
    let file = dir.file_for(&t.origin);
    let Some(mut next) = t.next_state.clone() else {
        let why = if t.earlier.iter().any(|e| !e.proven) {
            "unchanged (a newer checkpoint is recorded only once it is proven consistent)"
        } else {
            "unchanged"
        };
        return Ok(StateOutcome {
            text: format!("{why}: {}", file.display()),
            file: Some(file),
            status: "unchanged",
        });
    };
    next.recorded_at = Timestamp::now();
    Ok(match dir.update(recorded, &next)? {
        Update::Written(f) => StateOutcome {
            text: format!("recorded size {} in {}", next.tree.size, f.display()),
            file: Some(f),
            status: "recorded",
        },
        Update::Raced(f) => StateOutcome {
            text: format!("left as another evl recorded it meanwhile: {}", f.display()),
            file: Some(f),
            status: "raced",
        },
    })
}

fn keys_list(keys: &[trust::KeyView]) -> String {
    keys.iter()
        .map(|k| format!("{} {}", k.name, k.id.0.short()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints what a successful verification trusted.
fn print_trusted(t: &Trusted, state: &StateOutcome) {
    println!("origin      {}", t.origin);
    println!("genesis     {}", t.genesis);
    println!(
        "admin keys  at genesis: {}; at size {}: {}",
        keys_list(&t.genesis_admins),
        t.size,
        keys_list(&t.admins)
    );
    match &t.checkpoint {
        Some(c) => println!(
            "checkpoint  size {}, root {}, signed by key {}",
            c.size,
            c.root,
            c.signer.0.short()
        ),
        None => println!("checkpoint  none stored (sign one with `evl checkpoint`)"),
    }
    if t.trust_on_first_use {
        println!(
            "trusted     nothing you held: trust on first use (compare the genesis id with one from the ledger's owner, or pass --genesis)"
        );
    }
    for r in &t.roots {
        println!("trusted     {r}");
    }
    for e in &t.earlier {
        println!("earlier     {}", e.note);
    }
    println!("state       {}", state.text);
}

fn trust_json(t: &Trusted, state: &StateOutcome) -> serde_json::Value {
    serde_json::json!({
        "trusted": t,
        "state": {
            "status": state.status,
            "file": state.file.as_ref().map(|f| f.display().to_string()),
            "text": state.text,
        },
    })
}

/// The loud line trust on first use prints, on stderr.
fn warn_first_use(t: &Trusted, state: &StateOutcome) {
    eprintln!(
        "evl: WARNING: trusted on first use, with no root you held: origin {}, genesis {}, admin keys {}; check the genesis id with the ledger's owner; state {}",
        t.origin,
        t.genesis,
        keys_list(&t.genesis_admins),
        state.text
    );
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// A checkpoint note kept from earlier: also prove the ledger is consistent with it.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// A witness policy (Sigsum policy format, docs/WITNESS.md): the ledger's latest checkpoint
    /// (and --checkpoint, if given) must carry valid cosignatures meeting its quorum, and be
    /// signed by one of its log keys if it lists any.
    #[arg(long, value_name = "FILE")]
    pub witness_policy: Option<PathBuf>,
}

/// Checks each (what, note) against the witness policy at `path`: `Ok(Ok(summary))` when all
/// meet its quorum (the summary names who cosigned), `Ok(Err(line))` naming the first that
/// does not.
pub(crate) fn check_witness_policy(
    path: &Path,
    origin: &str,
    notes: &[(String, Option<Vec<u8>>)],
) -> Result<Result<String, String>, Error> {
    let policy = crate::witness::policy::Policy::read(path).map_err(Error::Invalid)?;
    let mut summary = Vec::new();
    for (what, note) in notes {
        let Some(note) = note else {
            return Ok(Err(format!(
                "{what}: there is no checkpoint to hold to the witness policy (sign one with `evl checkpoint --witness-policy`)"
            )));
        };
        match policy.verify(note, origin) {
            Ok(c) => summary.push(format!(
                "{what}: quorum '{}' met by {} of {} policy witnesses ({})",
                policy.quorum_name,
                c.valid.len(),
                policy.witnesses.len(),
                c.valid.join(", ")
            )),
            Err(e) => return Ok(Err(format!("{what}: {e}"))),
        }
    }
    Ok(Ok(summary.join("; ")))
}

pub fn verify(g: &Global, a: VerifyArgs) -> Result<i32, Error> {
    let auditor = match &a.checkpoint {
        Some(p) => Some((
            format!("checkpoint {}", p.display()),
            read_file(p, 1 << 20)?,
        )),
        None => None,
    };
    let mut roots = a.trust.roots()?;
    let ledger = &open_for_verify(g)?;
    // A log other verbs refuse is still verified (and its damage named): its origin is read
    // the way verify reads it.
    let origin = match ledger.origin() {
        Ok(o) => o,
        Err(e) => ledger
            .forensic_snapshot()
            .and_then(|v| v.origin())
            .map_err(|_| e)?,
    };
    let mut witnesses: Option<String> = None;
    if let Some(p) = &a.witness_policy {
        let mut notes = vec![(
            "the ledger's latest checkpoint".to_string(),
            ledger.latest_checkpoint()?,
        )];
        if let Some((what, note)) = &auditor {
            notes.push((what.clone(), Some(note.clone())));
        }
        match check_witness_policy(p, &origin, &notes)? {
            Ok(summary) => witnesses = Some(summary),
            Err(line) => {
                eprintln!("evl: verification failed: {line}");
                return Ok(exit::INVALID);
            }
        }
    }
    let state = a.trust.state();
    let recorded = match &state {
        Ok(dir) => dir.load(&origin)?,
        Err(_) => None,
    };
    let before = recorded.as_ref().map(|r| r.state.clone());
    roots.recorded = recorded;
    // The ledger itself is at hand: with nothing else held, its first verification pins it.
    // A published log is not: anyone can publish one under any origin, so its verification
    // starts from a root the caller holds (given, or recorded by an earlier verification).
    let published = crate::publish::is_published(&g.ledger);
    roots.trust_on_first_use = !published;
    if let Some((source, note)) = &auditor {
        roots.checkpoints.push(KeptCheckpoint {
            source: source.clone(),
            note: note.clone(),
            compared_by_caller: true,
        });
    }
    let bar = Progress::new("verifying {bar:40} {pos}/{len} entries ({per_sec})");
    let progress = |done: u64, total: u64| bar.update(done, total);
    let report = verify::verify(
        ledger,
        &verify::Options {
            auditor_checkpoint: auditor,
            progress: Some(&progress),
            trust: Some(&roots),
        },
    )?;
    bar.finish();
    let mut report = report;
    for (object, reason) in super::remote::take_failures() {
        report.failures.push(verify::Failure {
            index: None,
            structure: "published",
            reason: format!("{object}: {reason}"),
        });
    }
    let outcome = match (&report.trusted, report.ok()) {
        (Some(t), true) => Some(record(state.as_ref().map_err(|e| *e), before.as_ref(), t)?),
        _ => None,
    };
    if a.json {
        let mut j =
            serde_json::json!({"verified": report.ok(), "report": report, "witnesses": witnesses});
        if let (Some(t), Some(o)) = (&report.trusted, &outcome) {
            j["state"] = trust_json(t, o)["state"].clone();
        }
        super::print_json_as("evl.verify/v1", &j)?;
    } else if report.ok() {
        println!(
            "verified: {} entries, {} signatures, {} artifacts; root {}",
            report.entries_checked,
            report.signatures_checked,
            report.artifacts_checked,
            report.root
        );
        for c in &report.checkpoints {
            println!(
                "{} (size {}) is consistent with the ledger",
                c.source, c.size
            );
        }
        if let (Some(t), Some(o)) = (&report.trusted, &outcome) {
            print_trusted(t, o);
        }
        if let Some(w) = &witnesses {
            println!("witnesses   {w}");
        }
    } else {
        for f in &report.failures {
            eprintln!("FAIL {}: {}", f.structure, f.reason);
        }
        eprintln!(
            "evl: verification failed: {} problem(s)",
            report.failures.len()
        );
    }
    Ok(if report.ok() { exit::OK } else { exit::INVALID })
}

#[derive(Args, Debug)]
pub struct VerifyBundleArgs {
    /// The bundle file.
    pub file: PathBuf,
    /// A checkpoint note you kept from an earlier verification: a bundle checkpoint of the same size must have the same root (then it anchors the bundle); one of another size cannot be proven consistent from a bundle alone, and the output says so.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// With no trust root given or recorded for the bundle's origin, accept the genesis and admin keys the bundle carries, say so loudly, and record them in the auditor state.
    #[arg(long)]
    pub trust_on_first_use: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// A witness policy (Sigsum policy format, docs/WITNESS.md): the bundle's checkpoint must
    /// carry valid cosignatures meeting its quorum, and be signed by one of its log keys if it
    /// lists any.
    #[arg(long, value_name = "FILE")]
    pub witness_policy: Option<PathBuf>,
}

pub fn verify_bundle(a: VerifyBundleArgs) -> Result<i32, Error> {
    let bytes = read_file(&a.file, bundle::MAX_BUNDLE_BYTES)?;
    let mut witnesses: Option<String> = None;
    if let Some(p) = &a.witness_policy {
        let Some((origin, note)) = bundle::claimed_checkpoint(&bytes) else {
            eprintln!(
                "evl: bundle {} does not verify: it is not a readable evl bundle",
                a.file.display()
            );
            return Ok(exit::INVALID);
        };
        let what = format!("the checkpoint of bundle {}", a.file.display());
        match check_witness_policy(p, &origin, &[(what, Some(note))])? {
            Ok(summary) => witnesses = Some(summary),
            Err(line) => {
                eprintln!("evl: bundle does not verify: {line}");
                return Ok(exit::INVALID);
            }
        }
    }
    let mut roots = a.trust.roots()?;
    roots.trust_on_first_use = a.trust_on_first_use;
    if let Some(p) = &a.checkpoint {
        roots.checkpoints.push(KeptCheckpoint {
            source: format!("--checkpoint {}", p.display()),
            note: read_file(p, 1 << 20)?,
            compared_by_caller: false,
        });
    }
    let state = a.trust.state();
    // The origin the bundle claims only selects the state file; the state's genesis must then
    // match the one the bundle proves.
    let recorded = match (&state, bundle::claimed_origin(&bytes)) {
        (Ok(dir), Some(origin)) => dir.load(&origin)?,
        _ => None,
    };
    let before = recorded.as_ref().map(|r| r.state.clone());
    roots.recorded = recorded;
    if roots.is_empty() {
        eprintln!(
            "evl: bundle {} is not verified: {}",
            a.file.display(),
            trust::NO_ROOT
        );
        return Ok(exit::INVALID);
    }
    let r = bundle::verify_bundle(&bytes, &roots);
    let outcome = match (&r.trusted, r.ok()) {
        (Some(t), true) => Some(record(state.as_ref().map_err(|e| *e), before.as_ref(), t)?),
        _ => None,
    };
    if let (Some(t), Some(o)) = (&r.trusted, &outcome)
        && t.trust_on_first_use
    {
        warn_first_use(t, o);
    }
    if a.json {
        let mut j = serde_json::json!({
            "verified": r.ok(), "packet": r.packet.map(|p| p.to_hex()), "checkpoint_size": r.checkpoint_size,
            "entries_checked": r.entries_checked, "artifacts_checked": r.artifacts_checked,
            "proofs_checked": r.proofs_checked, "dispositions_replayed": r.dispositions_replayed, "failures": r.failures,
            "witnesses": witnesses,
        });
        if let (Some(t), Some(o)) = (&r.trusted, &outcome) {
            let tj = trust_json(t, o);
            j["trusted"] = tj["trusted"].clone();
            j["state"] = tj["state"].clone();
        }
        super::print_json_as("evl.verify-bundle/v1", &j)?;
    } else if let (true, Some(t), Some(o)) = (r.ok(), &r.trusted, &outcome) {
        println!(
            "verified offline: {} entries, {} artifacts, {} inclusion proofs against a checkpoint of size {}, {} disposition(s) replayed",
            r.entries_checked,
            r.artifacts_checked,
            r.proofs_checked,
            r.checkpoint_size,
            r.dispositions_replayed
        );
        print_trusted(t, o);
        if let Some(w) = &witnesses {
            println!("witnesses   {w}");
        }
    } else {
        for f in &r.failures {
            eprintln!("FAIL {f}");
        }
        eprintln!(
            "evl: bundle {} does not verify: {} problem(s)",
            a.file.display(),
            r.failures.len()
        );
    }
    Ok(if r.ok() { exit::OK } else { exit::INVALID })
}
