//! Verbs that create keys or append entries.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::remote::{Offline, Sink};
use super::{Global, Progress, Signing, open, read_file};
use crate::digest::Digest;
use crate::entry::{
    Acknowledgment, Annotation, AnnotationKind, ArtifactMeta, KeyGrant, KeyRevoke, KeyRotate,
    Payload, Promotion, Scope, Tier,
};
use crate::error::{Error, exit};
use crate::keys::{self, Role, SecretKey};
use crate::store::{Draft, Ledger, MAX_ARTIFACT_BYTES};
use crate::timestamp::Timestamp;

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Key name: letters, digits, '.', '_' or '-'.
    pub name: String,
    /// Directory to write NAME.key and NAME.pub into.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// Derive the key from a PUBLISHED phrase (BLAKE3 of the phrase is the seed). For demos
    /// only: anyone who knows the phrase has the key. The file is marked DEMO ONLY.
    #[arg(long, value_name = "PHRASE")]
    pub demo_seed: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn keygen(a: KeygenArgs) -> Result<i32, Error> {
    let (key, banner) = match &a.demo_seed {
        Some(p) => (
            SecretKey::demo_from_phrase(p),
            format!(
                "# DEMO ONLY — NOT A SECRET. Derived from the published phrase '{p}'\n# (seed = BLAKE3(phrase)). Never use this key for real evidence.\n"
            ),
        ),
        None => (SecretKey::generate(), String::new()),
    };
    let (sk, pk) = keys::write_key_pair(&a.dir, &a.name, &key, &banner)?;
    let id = key.public().id();
    if a.json {
        return super::print_json_as(
            "evl.keygen/v1",
            &serde_json::json!({
                "name": a.name, "key_id": id.to_string(), "public_key": key.public().to_string(),
                "secret_key_file": sk, "public_key_file": pk,
            }),
        );
    }
    println!(
        "wrote {} (secret, mode 0600) and {}",
        sk.display(),
        pk.display()
    );
    println!("key id {id}");
    Ok(exit::OK)
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Origin string checkpoints carry, e.g. example.org/mesh-gate (printable ASCII, no spaces or '+').
    #[arg(long)]
    pub origin: String,
    /// Public key file of a trust-root admin; repeat for several. Named after the key file's name field or its file stem.
    #[arg(long = "admin", value_name = "PUBFILE", required = true)]
    pub admins: Vec<PathBuf>,
    #[command(flatten)]
    pub signing: Signing,
}

fn grant_from_file(
    path: &std::path::Path,
    name: Option<&str>,
    roles: Vec<Role>,
) -> Result<KeyGrant, Error> {
    let (public_key, carried) = keys::read_public(path)?;
    let name = name
        .map(str::to_string)
        .or(carried)
        .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    keys::check_name(&name)?;
    Ok(KeyGrant {
        name,
        public_key,
        roles,
    })
}

pub fn init(g: &Global, a: InitArgs) -> Result<i32, Error> {
    let key = a.signing.load()?;
    let admins = a
        .admins
        .iter()
        .map(|p| grant_from_file(p, None, vec![Role::Admin]))
        .collect::<Result<Vec<_>, _>>()?;
    let ledger = Ledger::init(&g.ledger, &a.origin, admins, &key, a.signing.time())?;
    if a.signing.json {
        return super::print_json_as(
            "evl.init/v1",
            &serde_json::json!({
                "ledger": g.ledger.display().to_string(), "origin": a.origin,
                "genesis": ledger.genesis_id()?.to_hex(), "index": 0, "kind": "genesis",
            }),
        );
    }
    println!(
        "created ledger {} (origin {}), genesis {}",
        g.ledger.display(),
        a.origin,
        ledger.genesis_id()?
    );
    Ok(exit::OK)
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The layout-1 (sled) ledger directory to copy.
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// Print the result as JSON ("schema": "evl.migrate/v1").
    #[arg(long)]
    pub json: bool,
}

pub fn migrate(g: &Global, a: MigrateArgs) -> Result<i32, Error> {
    let bar = Progress::new("migrating {bar:40} {pos}/{len} entries");
    let ledger = Ledger::migrate(&a.from, &g.ledger, &|done, total| bar.update(done, total))?;
    bar.finish();
    let size = ledger.size()?;
    if a.json {
        return super::print_json_as(
            "evl.migrate/v1",
            &serde_json::json!({
                "from": a.from.display().to_string(), "ledger": g.ledger.display().to_string(),
                "size": size, "root_hash": crate::merkle::hex(&ledger.root(size)?),
            }),
        );
    }
    println!(
        "migrated {size} entries from {} to {}; root {}",
        a.from.display(),
        g.ledger.display(),
        crate::merkle::hex(&ledger.root(size)?)
    );
    Ok(exit::OK)
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Register a key with roles (admin signs).
    Add {
        /// Name for the key in the registry.
        name: String,
        /// The key's public key file.
        #[arg(long = "pub", value_name = "PUBFILE")]
        public: PathBuf,
        /// Role to grant; repeat: admin, owner, reviewer, security-signer, gate-chair.
        #[arg(long = "role", required = true)]
        roles: Vec<Role>,
        #[command(flatten)]
        signing: Signing,
        #[command(flatten)]
        offline: Offline,
    },
    /// Replace a key: the new key takes the name and roles, the old one stops counting.
    Rotate {
        /// Name (or key id prefix) of the key to replace.
        name: String,
        /// The new public key file.
        #[arg(long = "pub", value_name = "PUBFILE")]
        public: PathBuf,
        #[command(flatten)]
        signing: Signing,
        #[command(flatten)]
        offline: Offline,
    },
    /// Revoke a key from this point of the log on.
    Revoke {
        /// Name (or key id prefix) of the key to revoke.
        name: String,
        /// Why (recorded in the entry).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        signing: Signing,
        #[command(flatten)]
        offline: Offline,
    },
    /// List registered keys with their roles and status.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn find_key(sink: &Sink, name: &str) -> Result<crate::keys::KeyId, Error> {
    let Some(ledger) = sink.ledger() else {
        return Ok(crate::keys::KeyId(sink.digest("key id", name)?));
    };
    let reg = ledger.registry()?;
    if let Some((id, _)) = reg.by_name(name) {
        return Ok(*id);
    }
    let matches: Vec<_> = reg
        .keys()
        .keys()
        .filter(|id| id.to_string().starts_with(name))
        .collect();
    match matches.as_slice() {
        [one] => Ok(**one),
        [] => Err(Error::Unknown(format!("key {name}"))),
        many => Err(Error::Ambiguous {
            prefix: name.into(),
            matches: many.iter().map(|k| k.0.short()).collect(),
        }),
    }
}

fn append_one(
    sink: &Sink,
    s: &Signing,
    payload: Payload,
    blobs: Vec<Vec<u8>>,
) -> Result<i32, Error> {
    let key = s.load()?;
    let kind = payload.kind();
    let draft = Draft {
        payload,
        claimed_at: s.time(),
        blobs,
    };
    if let Some(done) = sink.put(vec![draft], &key)? {
        if s.json {
            return super::print_appended(kind, &done[0]);
        }
        println!("{kind} {} at index {}", done[0].id, done[0].index);
    }
    Ok(exit::OK)
}

pub fn key(g: &Global, c: KeyCommand) -> Result<i32, Error> {
    match c {
        KeyCommand::Add {
            name,
            public,
            roles,
            signing,
            offline,
        } => {
            let grant = grant_from_file(&public, Some(&name), roles)?;
            let sink = Sink::new(g, &offline)?;
            append_one(&sink, &signing, Payload::KeyAdd(grant), vec![])
        }
        KeyCommand::Rotate {
            name,
            public,
            signing,
            offline,
        } => {
            let sink = Sink::new(g, &offline)?;
            let old = find_key(&sink, &name)?;
            let (new_key, _) = keys::read_public(&public)?;
            append_one(
                &sink,
                &signing,
                Payload::KeyRotate(KeyRotate { old, new_key }),
                vec![],
            )
        }
        KeyCommand::Revoke {
            name,
            reason,
            signing,
            offline,
        } => {
            let sink = Sink::new(g, &offline)?;
            let key = find_key(&sink, &name)?;
            append_one(
                &sink,
                &signing,
                Payload::KeyRevoke(KeyRevoke { key, reason }),
                vec![],
            )
        }
        KeyCommand::List { json } => {
            let ledger = open(g)?;
            let reg = ledger.registry()?;
            let mut keys: Vec<_> = reg.keys().iter().collect();
            keys.sort_by_key(|(_, s)| (s.added_at, s.name.clone()));
            if json {
                let v: Vec<_> = keys
                    .iter()
                    .map(|(id, s)| {
                        serde_json::json!({
                            "key_id": id.to_string(), "name": s.name, "public_key": s.public_key.to_string(),
                            "roles": s.roles, "added_at": s.added_at, "revoked_at": s.revoked_at,
                            "revoked_reason": s.revoked_reason,
                        })
                    })
                    .collect();
                return super::print_json_as("evl.keys/v1", &serde_json::json!({"keys": v}));
            }
            for (id, s) in keys {
                let roles: Vec<_> = s.roles.iter().map(|r| r.name()).collect();
                let status = match (&s.revoked_at, &s.revoked_reason) {
                    (Some(at), Some(r)) => format!("revoked at {at}: {r}"),
                    (Some(at), None) => format!("revoked at {at}"),
                    _ => "active".to_string(),
                };
                println!(
                    "{}  {:<20} {:<40} added at {}  {}",
                    id.0.short(),
                    s.name,
                    roles.join(","),
                    s.added_at,
                    status
                );
            }
            Ok(exit::OK)
        }
    }
}

/// Metadata shared by every file of one `evl add` or `evl ingest`.
#[derive(Args, Debug, Clone)]
pub struct MetaArgs {
    /// When the evidence was captured (RFC 3339 or date); default: the signing time.
    #[arg(long, value_name = "TIME")]
    pub captured_at: Option<Timestamp>,
    /// Until when the evidence is valid.
    #[arg(long, value_name = "TIME")]
    pub valid_until: Option<Timestamp>,
    /// Namespace the evidence covers; repeat.
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Workload (NAMESPACE/WORKLOAD or name) the evidence covers; repeat.
    #[arg(long = "workload", value_name = "WL")]
    pub workloads: Vec<String>,
    /// The evidence was captured read-only (e.g. a sealed telemetry window).
    #[arg(long)]
    pub sealed: bool,
    /// Entry id (or unique prefix) of the artifact this one replaces.
    #[arg(long, value_name = "DIGEST")]
    pub supersedes: Option<String>,
    /// Free label KEY=VALUE; repeat.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Files to add; each becomes one artifact entry, all appended with one durable flush.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Artifact kind, e.g. rollback-drill, gate-definition, authority-snapshot.
    #[arg(long)]
    pub kind: String,
    /// Source tier: authoritative, operational or excluded.
    #[arg(long)]
    pub tier: Tier,
    #[command(flatten)]
    pub meta: MetaArgs,
    #[command(flatten)]
    pub signing: Signing,
    #[command(flatten)]
    pub offline: Offline,
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// Builds artifact metadata for `bytes` read from `path`; validates every field first.
pub(crate) fn artifact_meta(
    sink: &Sink,
    (kind, tier): (&str, Tier),
    m: &MetaArgs,
    path: &std::path::Path,
    bytes: &[u8],
    at: Timestamp,
) -> Result<ArtifactMeta, Error> {
    let kind_ok = !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !kind_ok {
        return Err(Error::Invalid(format!(
            "artifact kind '{kind}' must be 1-64 letters, digits, '-', '_' or '.'"
        )));
    }
    let mut labels = BTreeMap::new();
    for l in &m.labels {
        let (k, v) = l
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| Error::Invalid(format!("label '{l}' must be KEY=VALUE")))?;
        if let Some(first) = labels.insert(k.to_string(), v.to_string()) {
            return Err(Error::Invalid(format!(
                "label '{k}' is given twice ('{first}' and '{v}'); the entry carries one value per label: give it once"
            )));
        }
    }
    let captured_at = m.captured_at.unwrap_or(at);
    if let Some(v) = m.valid_until
        && v < captured_at
    {
        return Err(Error::Invalid(format!(
            "--valid-until {v} is before --captured-at {captured_at}"
        )));
    }
    let supersedes = match &m.supersedes {
        None => None,
        Some(s) if sink.ledger().is_none() => Some(sink.entry_id("--supersedes", s)?),
        Some(s) => {
            let ledger = sink.ledger().expect("checked above");
            let (_, e) = ledger.resolve_entry(s)?;
            if !matches!(e.body.payload, Payload::Artifact(_)) {
                return Err(Error::Invalid(format!(
                    "--supersedes {s} names a {} entry, not an artifact",
                    e.body.payload.kind()
                )));
            }
            Some(e.id())
        }
    };
    Ok(ArtifactMeta {
        content: Digest::of(bytes),
        size: bytes.len() as u64,
        kind: kind.to_string(),
        file_name: path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        tier,
        captured_at,
        valid_until: m.valid_until,
        scope: Scope {
            namespaces: sorted(m.namespaces.clone()),
            workloads: sorted(m.workloads.clone()),
        },
        sealed: m.sealed,
        supersedes,
        labels,
        facts: None,
    })
}

pub fn add(g: &Global, a: AddArgs) -> Result<i32, Error> {
    let key = a.signing.load()?;
    let sink = Sink::new(g, &a.offline)?;
    let at = a.signing.time();
    let mut drafts = Vec::with_capacity(a.files.len());
    let mut unread = false;
    for path in &a.files {
        let bytes = read_file(path, MAX_ARTIFACT_BYTES)?;
        let meta = artifact_meta(&sink, (&a.kind, a.tier), &a.meta, path, &bytes, at)?;
        // A kind evl reads must parse now: a gate or drill with a typo never enters the log.
        let window = meta.labels.get("window").map(String::as_str);
        let name = path.display().to_string();
        unread |=
            !crate::evidence::check_kind(&a.kind, &name, &bytes, window).map_err(Error::Invalid)?;
        drafts.push(Draft {
            payload: Payload::Artifact(meta),
            claimed_at: at,
            blobs: vec![bytes],
        });
    }
    let done = sink.put(drafts, &key)?;
    // Said once stored: a refused append needs no warning beside its one error line.
    if unread {
        let near = crate::evidence::nearest_kind(&a.kind)
            .map(|k| format!(" (did you mean {k}?)"))
            .unwrap_or_default();
        eprintln!(
            "warning: evl does not read kind '{}'{near}; stored without validation",
            a.kind
        );
    }
    let Some(done) = done else {
        return Ok(exit::OK);
    };
    if a.signing.json {
        let v: Vec<_> = done
            .iter()
            .zip(&a.files)
            .map(|(d, f)| serde_json::json!({"kind": "artifact", "file": f, "id": d.id.to_string(), "index": d.index}))
            .collect();
        return super::print_json_list("evl.appended/v1", &v);
    }
    for (d, f) in done.iter().zip(&a.files) {
        println!("artifact {} at index {}  {}", d.id, d.index, f.display());
    }
    Ok(exit::OK)
}

#[derive(Args, Debug)]
pub struct AnnotateArgs {
    /// Digest or unique prefix of what is annotated (entry id or artifact content).
    pub subject: String,
    /// note, concern, blocker, accept or reject.
    #[arg(long)]
    pub kind: AnnotationKind,
    /// The remark.
    #[arg(long)]
    pub text: String,
    /// Namespace the remark concerns; repeat.
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Workload the remark concerns; repeat.
    #[arg(long = "workload", value_name = "WL")]
    pub workloads: Vec<String>,
    #[command(flatten)]
    pub signing: Signing,
    #[command(flatten)]
    pub offline: Offline,
}

pub fn annotate(g: &Global, a: AnnotateArgs) -> Result<i32, Error> {
    let sink = Sink::new(g, &a.offline)?;
    let subject: Digest = sink.digest("subject", &a.subject)?;
    let scope = Scope {
        namespaces: sorted(a.namespaces),
        workloads: sorted(a.workloads),
    };
    append_one(
        &sink,
        &a.signing,
        Payload::Annotation(Annotation {
            subject,
            kind: a.kind,
            scope,
            text: a.text,
        }),
        vec![],
    )
}

#[derive(Args, Debug)]
pub struct AckArgs {
    /// What is acknowledged, e.g. east-west-authorization-policy.
    #[arg(long)]
    pub topic: String,
    /// Digest or prefix of the acknowledged artifact or entry.
    #[arg(long, value_name = "DIGEST")]
    pub subject: Option<String>,
    /// Namespace the acknowledgment is for.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The statement signed.
    #[arg(long)]
    pub statement: String,
    #[command(flatten)]
    pub signing: Signing,
    #[command(flatten)]
    pub offline: Offline,
}

pub fn ack(g: &Global, a: AckArgs) -> Result<i32, Error> {
    let sink = Sink::new(g, &a.offline)?;
    let subject = a
        .subject
        .as_deref()
        .map(|s| sink.digest("--subject", s))
        .transpose()?;
    let payload = Payload::Acknowledgment(Acknowledgment {
        topic: a.topic,
        subject,
        namespace: a.namespace,
        statement: a.statement,
    });
    append_one(&sink, &a.signing, payload, vec![])
}

#[derive(Args, Debug)]
pub struct PromoteArgs {
    /// Entry id or prefix of the excluded-tier artifact.
    pub artifact: String,
    /// Tier it is lifted to.
    #[arg(long, default_value = "operational")]
    pub to: Tier,
    /// Why it may be used.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub signing: Signing,
    #[command(flatten)]
    pub offline: Offline,
}

pub fn promote(g: &Global, a: PromoteArgs) -> Result<i32, Error> {
    if a.to == Tier::Excluded {
        return Err(Error::Invalid(
            "--to must be operational or authoritative".into(),
        ));
    }
    let sink = Sink::new(g, &a.offline)?;
    // Offline, the ledger checks that the artifact is an excluded one when the file is submitted.
    let artifact = match sink.ledger() {
        None => sink.entry_id("artifact", &a.artifact)?,
        Some(ledger) => promotable(ledger, &a.artifact)?,
    };
    append_one(
        &sink,
        &a.signing,
        Payload::Promotion(Promotion {
            artifact,
            to: a.to,
            reason: a.reason,
        }),
        vec![],
    )
}

/// The excluded-tier artifact `text` names.
fn promotable(ledger: &Ledger, text: &str) -> Result<crate::digest::EntryId, Error> {
    let (_, e) = ledger.resolve_entry(text)?;
    match &e.body.payload {
        Payload::Artifact(m) if m.tier == Tier::Excluded => {}
        Payload::Artifact(m) => {
            return Err(Error::Invalid(format!(
                "artifact {} is {}, not excluded; only excluded material needs promotion",
                e.id().short(),
                m.tier
            )));
        }
        p => {
            return Err(Error::Invalid(format!(
                "{} is a {} entry, not an artifact",
                text,
                p.kind()
            )));
        }
    }
    Ok(e.id())
}
