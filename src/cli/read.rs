//! Verbs that read the ledger, prove, checkpoint and verify.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::{Global, Progress, open, print_json, read_file};
use crate::checkpoint;
use crate::entry::{Entry, Payload};
use crate::error::{Error, exit};
use crate::keys::Role;
use crate::merkle::{self, ProofJson};
use crate::registry::Registry;
use crate::store::{Ledger, Resolved};
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

fn view<'a>(reg: &Registry, index: u64, entry: &'a Entry) -> EntryView<'a> {
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

pub fn show(g: &Global, a: ShowArgs) -> Result<i32, Error> {
    let ledger = open(g)?;
    match ledger.resolve(&a.digest)? {
        Resolved::Entry { index, id } => {
            let (_, entry) = ledger.entry_by_id(&id)?;
            let v = view(&ledger.registry()?, index, &entry);
            if a.json {
                return print_json(&v);
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
        }
        Resolved::Blob(d) => {
            let bytes = ledger.blob(&d)?.ok_or_else(|| Error::Unknown(d.to_hex()))?;
            if a.json {
                return print_json(
                    &serde_json::json!({"artifact": d.to_hex(), "size": bytes.len()}),
                );
            }
            println!(
                "artifact  {d}\nsize      {} bytes\n(use `evl cat {}` for the bytes)",
                bytes.len(),
                d.short()
            );
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
    /// Start at this log index.
    #[arg(long, default_value_t = 0)]
    pub since: u64,
    /// Print as JSON (an array).
    #[arg(long)]
    pub json: bool,
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
    let reg = ledger.registry()?;
    let size = ledger.size()?;
    let mut out = std::io::stdout().lock();
    let mut json = Vec::new();
    for index in a.since..size {
        let e = ledger.entry(index)?;
        if a.kind
            .as_deref()
            .is_some_and(|k| k != e.body.payload.kind())
        {
            continue;
        }
        if a.json {
            json.push(serde_json::to_value(view(&reg, index, &e)).unwrap_or_default());
            continue;
        }
        let signer = reg
            .get(&e.body.signer)
            .map(|s| s.name.as_str())
            .unwrap_or("?");
        let _ = writeln!(
            out,
            "{index:>6}  {}  {}  {:<14} {:<14} {}",
            e.id().short(),
            e.body.claimed_at,
            e.body.payload.kind(),
            signer,
            summary(&e)
        );
    }
    if a.json {
        return print_json(&json);
    }
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
    },
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
        return print_json(p);
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
    let ledger = open(g)?;
    match c {
        ProofCommand::Inclusion { entry, size, json } => {
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
    /// Admin secret key to sign the checkpoint with (PKCS#8 PEM or OpenSSH ed25519, mode 0600).
    #[arg(long, env = "EVL_KEY", value_name = "FILE")]
    pub key: PathBuf,
    /// Print origin, size, root, note and verifier key as JSON.
    #[arg(long)]
    pub json: bool,
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
    let note = checkpoint::sign(&origin, size, root, &key);
    if let Some(path) = &a.output {
        std::fs::write(path, &note).map_err(Error::io(path))?;
    }
    ledger.store_checkpoint(&note)?;
    if a.json {
        return print_json(&serde_json::json!({
            "origin": origin, "size": size, "root_hash": merkle::hex(&root),
            "note": String::from_utf8_lossy(&note), "verifier_key": checkpoint::verifier_key(&origin, &key.public()),
        }));
    }
    print!("{}", String::from_utf8_lossy(&note));
    Ok(exit::OK)
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// A checkpoint note kept from earlier: also prove the ledger is consistent with it.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn verify(g: &Global, a: VerifyArgs) -> Result<i32, Error> {
    let auditor = match &a.checkpoint {
        Some(p) => Some((
            format!("checkpoint {}", p.display()),
            read_file(p, 1 << 20)?,
        )),
        None => None,
    };
    let ledger = open(g)?;
    let bar = Progress::new("verifying {bar:40} {pos}/{len} entries ({per_sec})");
    let progress = |done: u64, total: u64| bar.update(done, total);
    let report = verify::verify(
        ledger,
        &verify::Options {
            auditor_checkpoint: auditor,
            progress: Some(&progress),
        },
    )?;
    bar.finish();
    if a.json {
        print_json(&serde_json::json!({"verified": report.ok(), "report": report}))?;
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
