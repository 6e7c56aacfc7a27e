//! `evl serve`: the log over HTTP as C2SP tlog-tiles (read-only, immutable and cacheable),
//! plus submission of entries signed elsewhere, sequenced in batches (docs/SERVER.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Args;
use tokio::sync::{mpsc, oneshot};

use super::Global;
use super::remote::{Submitted, submit_checked_to};
use crate::batch_verify;
use crate::error::{Error, exit};
use crate::keys::{PublicKey, SecretKey};
use crate::merkle;
use crate::publish::{self, TILE_WIDTH};
use crate::registry::Registry;
use crate::store::Ledger;
use crate::submission::Submission;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default; serve beyond it with --tls-cert/--tls-key or
    /// behind a TLS proxy).
    #[arg(long, default_value = "127.0.0.1:8740", value_name = "HOST:PORT")]
    pub addr: SocketAddr,
    /// The log key: an admin key that signs a checkpoint after every batch. Signers' secret
    /// keys never come here: a submission carries its own signature.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Largest submission body accepted, in bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024 + 1024 * 1024, value_name = "BYTES")]
    pub max_body: usize,
    /// Most submissions sequenced in one batch (one durable write).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_batch: usize,
    /// Submissions waiting to be sequenced before new ones are turned away (503).
    #[arg(long, default_value_t = 8192, value_name = "N")]
    pub queue: usize,
    /// Seconds a submission may wait to be sequenced before its request fails (503); it may
    /// still be appended, and resubmitting it is safe (idempotent).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub timeout: u64,
    /// Submissions per second accepted from one signing key (a burst of as many is allowed);
    /// beyond it 429. 0: no limit.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub rate_per_key: u32,
    /// Print the address served as one JSON line (`"schema": "evl.serve/v1"`), for scripts that
    /// bind port 0.
    #[arg(long)]
    pub json: bool,
    /// TLS and slow-client limits (docs/SERVER.md §"TLS" and §"Limits").
    #[command(flatten)]
    pub listen: crate::net::listen::ListenArgs,
}

/// Most submissions whose signatures one checker verifies with one batch equation.
const MAX_CHECK_BATCH: usize = 256;

/// Per-key token buckets: (tokens, when last refilled).
type Buckets =
    std::sync::Mutex<std::collections::HashMap<crate::keys::KeyId, (f64, std::time::Instant)>>;

/// Takes a token of `key`'s bucket (`rate` per second, as many in a burst); false when empty.
fn admit(buckets: &Buckets, key: crate::keys::KeyId, rate: u32) -> bool {
    if rate == 0 {
        return true;
    }
    let now = std::time::Instant::now();
    let mut b = buckets.lock().unwrap_or_else(|p| p.into_inner());
    let (tokens, last) = b.entry(key).or_insert((rate as f64, now));
    *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate as f64).min(rate as f64);
    *last = now;
    if *tokens >= 1.0 {
        *tokens -= 1.0;
        true
    } else {
        false
    }
}

/// A submission waiting for the sequencer, with the key each entry's signature verified under.
struct Job {
    sub: Submission,
    verified: Vec<Option<PublicKey>>,
    reply: oneshot::Sender<Outcome>,
}

/// The answer to a submission: sequenced, or the status and message it is refused with.
type Outcome = Result<Sequenced, (StatusCode, String)>;

/// The status a submission refused by the sequencer gets.
fn refused(e: &Error) -> (StatusCode, String) {
    let status = match e.exit_code() {
        exit::REFUSED => StatusCode::FORBIDDEN,
        exit::BUSY | exit::STORAGE => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, e.to_string())
}

/// What the sequencer answers for an accepted submission: its entries, and the snapshot of
/// the log after their batch with the checkpoint signed of it, to prove inclusion against.
struct Sequenced {
    results: Vec<Submitted>,
    view: Arc<crate::store::View>,
    checkpoint: Arc<(u64, Vec<u8>)>,
}

struct Shared {
    ledger: Arc<Ledger>,
    origin: String,
    /// The newest signed checkpoint: (size, note).
    checkpoint: RwLock<(u64, Vec<u8>)>,
    queue: mpsc::Sender<Job>,
    /// Submissions waiting for their signatures to be checked.
    checks: mpsc::Sender<Check>,
    /// The key registry as of the newest batch, to find the key each signature is checked
    /// against before sequencing.
    registry: RwLock<Arc<Registry>>,
    timeout: Duration,
    rate_per_key: u32,
    buckets: Buckets,
}

fn sign_checkpoint(
    ledger: &Ledger,
    origin: &str,
    key: &SecretKey,
) -> Result<(u64, Vec<u8>), Error> {
    let view = ledger.snapshot()?;
    Ok(sign_checkpoint_of(&view, origin, key)?)
}

fn sign_checkpoint_of(
    view: &crate::store::View,
    origin: &str,
    key: &SecretKey,
) -> Result<(u64, Vec<u8>), Error> {
    let size = view.size();
    Ok((
        size,
        crate::checkpoint::sign(origin, size, view.root_at(size)?, key),
    ))
}

pub fn serve(g: &Global, a: ServeArgs) -> Result<i32, Error> {
    // The certificate and key are checked before anything else, so a bad one binds nothing.
    let listen = a.listen.prepare()?;
    let scheme = listen.scheme();
    let key = crate::keys::read_secret(&a.key)?;
    let ledger = Arc::new(super::open_owned(g)?);
    let origin = ledger.origin()?;
    // The log key must be one the ledger's readers accept for its checkpoints.
    let first = sign_checkpoint(&ledger, &origin, &key)?;
    let reg = ledger.registry()?;
    let is_admin = reg.get(&key.public().id()).is_some_and(|k| {
        k.roles.contains(&crate::keys::Role::Admin) && k.active_at(first.0.saturating_sub(1))
    });
    if !is_admin {
        return Err(Error::Invalid(format!(
            "{}: not an active admin key of this ledger; checkpoints it signs would not verify",
            a.key.display()
        )));
    }
    let (tx, rx) = mpsc::channel::<Job>(a.queue.max(1));
    let (check_tx, check_rx) = mpsc::channel::<Check>(a.queue.max(1));
    let shared = Arc::new(Shared {
        ledger: ledger.clone(),
        origin: origin.clone(),
        checkpoint: RwLock::new(first),
        queue: tx,
        checks: check_tx,
        registry: RwLock::new(Arc::new(reg)),
        timeout: Duration::from_secs(a.timeout.max(1)),
        rate_per_key: a.rate_per_key,
        buckets: Default::default(),
    });
    let seq = shared.clone();
    let max_batch = a.max_batch.max(1);
    std::thread::Builder::new()
        .name("evl-sequencer".into())
        .spawn(move || sequencer(seq, key, rx, max_batch))
        .map_err(|e| Error::Invalid(format!("cannot start the sequencer: {e}")))?;
    let check_rx = Arc::new(std::sync::Mutex::new(check_rx));
    for i in 0..std::thread::available_parallelism().map_or(2, |n| n.get()) {
        let (s, rx) = (shared.clone(), check_rx.clone());
        std::thread::Builder::new()
            .name(format!("evl-verify-{i}"))
            .spawn(move || verifier(s, rx, MAX_CHECK_BATCH))
            .map_err(|e| Error::Invalid(format!("cannot start a signature checker: {e}")))?;
    }
    let app = Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .route("/blob/{digest}", get(blob))
        .route("/add", post(add))
        .layer(DefaultBodyLimit::max(a.max_body))
        .with_state(shared);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start the server runtime: {e}")))?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(a.addr)
            .await
            .map_err(Error::io(a.addr.to_string()))?;
        let local = listener
            .local_addr()
            .map_err(Error::io(a.addr.to_string()))?;
        if a.json {
            println!(
                "{}",
                serde_json::json!({"schema": "evl.serve/v1", "origin": origin, "url": format!("{scheme}://{local}")})
            );
        } else {
            println!("serving {origin} on {scheme}://{local}");
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        listen
            .serve(listener, app, crate::net::listen::shutdown_signal())
            .await
            .map_err(Error::io(local.to_string()))
    })?;
    Ok(exit::OK)
}

/// Takes submissions off the queue in batches: all of a batch appended with one durable
/// write when every one of them is accepted; otherwise each alone, so one bad submission
/// fails only its own request. A fresh checkpoint is signed after every batch, before replies.
/// Signatures were verified before the queue (`verifier`); what needs the log order is done
/// here: the registry check at each entry's position (a key revoked since is refused), the id
/// lookup, the references and the durable write.
fn sequencer(s: Arc<Shared>, key: SecretKey, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let names: Vec<String> = (0..jobs.len()).map(|i| format!("submission {i}")).collect();
        let together = submit_checked_to(
            &s.ledger,
            jobs.iter()
                .zip(&names)
                .map(|(j, n)| (n.clone(), &j.sub, &j.verified[..])),
        );
        let results: Vec<Result<Vec<Submitted>, Error>> = match together {
            Ok(all) => {
                let mut per: Vec<Vec<Submitted>> = vec![vec![]; jobs.len()];
                for r in all {
                    let i: usize = r.source["submission ".len()..].parse().expect("our names");
                    per[i].push(r);
                }
                per.into_iter().map(Ok).collect()
            }
            Err(_) => jobs
                .iter()
                .map(|j| {
                    submit_checked_to(
                        &s.ledger,
                        std::iter::once(("submission".to_string(), &j.sub, &j.verified[..])),
                    )
                })
                .collect(),
        };
        let keys_changed = jobs.iter().any(|j| {
            j.sub.entries.iter().any(|(e, _)| {
                matches!(
                    e.body.payload,
                    crate::entry::Payload::KeyAdd(_)
                        | crate::entry::Payload::KeyRotate(_)
                        | crate::entry::Payload::KeyRevoke(_)
                )
            })
        });
        if keys_changed && let Ok(r) = s.ledger.registry() {
            *s.registry.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(r);
        }
        // One checkpoint for the batch, and the snapshot it is of: each request proves its
        // entries' inclusion against these, in its own handler, after the reply.
        let signed = s.ledger.snapshot().and_then(|view| {
            let cp = sign_checkpoint_of(&view, &s.origin, &key)?;
            Ok((view, cp))
        });
        let (view, cp) = match signed {
            Ok((view, cp)) => {
                *s.checkpoint.write().unwrap_or_else(|p| p.into_inner()) = cp.clone();
                (view, Arc::new(cp))
            }
            Err(e) => {
                // Appended maybe, but not provable: 503, and resubmitting is safe.
                for job in jobs {
                    let _ = job.reply.send(Err((
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "cannot sign a checkpoint after the batch: {e}; resubmitting is safe"
                        ),
                    )));
                }
                continue;
            }
        };
        for (job, result) in jobs.into_iter().zip(results) {
            let _ = job.reply.send(
                result
                    .map(|results| Sequenced {
                        results,
                        view: view.clone(),
                        checkpoint: cp.clone(),
                    })
                    .map_err(|e| refused(&e)),
            );
        }
    }
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, format!("{}\n", msg.into())).into_response()
}

fn immutable(content_type: &'static str, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        bytes,
    )
        .into_response()
}

async fn checkpoint(State(s): State<Arc<Shared>>) -> Response {
    let note = s
        .checkpoint
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .1
        .clone();
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        note,
    )
        .into_response()
}

/// `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`, within the checkpoint's tree.
async fn tile(State(s): State<Arc<Shared>>, UrlPath(path): UrlPath<String>) -> Response {
    let size = s.checkpoint.read().unwrap_or_else(|p| p.into_inner()).0;
    let (entries, rest) = match path.strip_prefix("entries/") {
        Some(r) => (true, r.to_string()),
        None => (false, path.clone()),
    };
    let go_path = if entries {
        format!("tile/{}/0/{rest}", publish::TILE_HEIGHT)
    } else {
        format!("tile/{}/{rest}", publish::TILE_HEIGHT)
    };
    let Ok(t) = tlog_tiles::tile::Tile::from_path(&go_path) else {
        return text(StatusCode::NOT_FOUND, format!("no tile {path}"));
    };
    let (level, n, width) = (t.level(), t.level_index(), t.width() as u64);
    let at_level = size >> (publish::TILE_HEIGHT as u32 * level as u32);
    if n.checked_mul(TILE_WIDTH)
        .and_then(|f| f.checked_add(width))
        .is_none_or(|end| end > at_level)
        || (entries && level != 0)
    {
        return text(
            StatusCode::NOT_FOUND,
            format!("tile {path} is beyond the tree of size {size}"),
        );
    }
    let ledger = s.ledger.clone();
    let made = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, Error> {
        if entries {
            let first = n * TILE_WIDTH;
            let e = (first..first + width)
                .map(|i| ledger.entry_bytes(i))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(publish::entry_bundle(e.iter().map(Vec::as_slice)))
        } else {
            publish::tile_data(&*ledger.snapshot()?, level, n, width)
        }
    })
    .await;
    match made {
        Ok(Ok(b)) => immutable("application/octet-stream", b),
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn blob(State(s): State<Arc<Shared>>, UrlPath(hex): UrlPath<String>) -> Response {
    let Ok(d) = hex.parse::<crate::digest::Digest>() else {
        return text(StatusCode::NOT_FOUND, format!("no blob {hex}"));
    };
    let ledger = s.ledger.clone();
    match tokio::task::spawn_blocking(move || ledger.blob(&d)).await {
        Ok(Ok(Some(b))) => immutable("application/octet-stream", b),
        Ok(Ok(None)) => text(StatusCode::NOT_FOUND, format!("no blob {hex}")),
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /add`: a submission file (docs/FORMAT.md §"Submission files"). 200 with each entry's
/// index and inclusion proof against a fresh signed checkpoint once durable; 400 malformed or
/// refused, 403 a bad signature or an unauthorized signer, 429 over the key's rate, 503 busy
/// or timed out. The signatures are checked first (in batches, on every core), and only a
/// signature that verified spends its key's rate budget.
async fn add(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let sub = match Submission::from_bytes(&body) {
        Ok(sub) => sub,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // The signature checkers take it from here to the sequencer (or refuse it); the answer
    // comes back on `rx` either way.
    let deadline = tokio::time::Instant::now() + s.timeout;
    let (tx, rx) = oneshot::channel();
    if s.checks.try_send(Check { sub, reply: tx }).is_err() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy: the submission queue is full; retry",
        );
    }
    let done = match tokio::time::timeout_at(deadline, rx).await {
        Ok(Ok(Ok(done))) => done,
        Ok(Ok(Err((status, msg)))) => return text(status, msg),
        Ok(Err(_)) => return text(StatusCode::SERVICE_UNAVAILABLE, "the sequencer stopped"),
        Err(_) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "timed out waiting to be sequenced; resubmitting is safe",
            );
        }
    };
    // A proof is a few reads of the mapped hash file: made here, not on another thread.
    let (size, note) = &*done.checkpoint;
    let made = (|| -> Result<serde_json::Value, Error> {
        let mut entries = Vec::with_capacity(done.results.len());
        for r in &done.results {
            let proof = done.view.prove_inclusion(r.index, *size)?;
            entries.push(serde_json::json!({
                "kind": r.kind,
                "id": r.id.to_string(),
                "index": r.index,
                "appended": r.appended,
                "inclusion_proof": proof.iter().map(merkle::hex).collect::<Vec<_>>(),
            }));
        }
        Ok(serde_json::json!({
            "tree_size": size,
            "checkpoint": String::from_utf8_lossy(note),
            "entries": entries,
        }))
    })();
    match made {
        Ok(v) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&v).expect("JSON encodes"),
        )
            .into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// What the signature check says of a submission: for each entry, the key its signature
/// verified under, or `None` when its signer is not in the registry the check saw (a key added
/// by an entry still queued: the sequencer verifies that signature); or why it is refused.
type Verdict = Result<Vec<Option<PublicKey>>, String>;

/// A submission whose signatures are checked before it is queued for the sequencer.
struct Check {
    sub: Submission,
    reply: oneshot::Sender<Outcome>,
}

/// Checks signatures ahead of the sequencer, on every core (one such thread per core), a batch
/// at a time: whatever is waiting when the thread is free, up to `max_batch` submissions.
fn verifier(s: Arc<Shared>, rx: Arc<std::sync::Mutex<mpsc::Receiver<Check>>>, max_batch: usize) {
    loop {
        let checks = {
            let mut rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            let Some(first) = rx.blocking_recv() else {
                return;
            };
            let mut checks = vec![first];
            while checks.len() < max_batch {
                match rx.try_recv() {
                    Ok(c) => checks.push(c),
                    Err(_) => break,
                }
            }
            checks
        };
        let registry = s.registry.read().unwrap_or_else(|p| p.into_inner()).clone();
        let subs: Vec<&Submission> = checks.iter().map(|c| &c.sub).collect();
        let verdicts = check_signatures(&registry, &subs);
        for (c, v) in checks.into_iter().zip(verdicts) {
            admit_verified(&s, c, v);
        }
    }
}

/// After the signature check: refused (`403`); over a verified signer's rate (`429`, the only
/// place a key's budget is spent); or queued for the sequencer, which answers on `c.reply`.
fn admit_verified(s: &Shared, c: Check, verdict: Verdict) {
    let verified = match verdict {
        Ok(v) => v,
        Err(msg) => {
            let _ = c.reply.send(Err((StatusCode::FORBIDDEN, msg)));
            return;
        }
    };
    let mut signers: Vec<_> = c
        .sub
        .entries
        .iter()
        .zip(&verified)
        .filter(|(_, v)| v.is_some())
        .map(|((e, _), _)| e.body.signer)
        .collect();
    signers.sort();
    signers.dedup();
    if !signers
        .into_iter()
        .all(|k| admit(&s.buckets, k, s.rate_per_key))
    {
        let _ = c.reply.send(Err((
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "over {} submissions per second for this key; retry later",
                s.rate_per_key
            ),
        )));
        return;
    }
    let job = Job {
        sub: c.sub,
        verified,
        reply: c.reply,
    };
    if let Err(e) = s.queue.try_send(job) {
        let job = match e {
            mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
        };
        let _ = job.reply.send(Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "busy: the submission queue is full; retry".into(),
        )));
    }
}

/// Verifies the signatures of `subs` under the keys `registry` names for their signers: one
/// batch equation for all of them (docs/FORMAT.md §"Signature validity": it accepts exactly
/// the signatures `keys::verify` accepts); when it fails, each signature alone, so only a
/// submission carrying a bad signature is refused. Whether each signer may sign its entry at
/// the entry's position is the sequencer's check, made against the registry as of then.
fn check_signatures(registry: &Registry, subs: &[&Submission]) -> Vec<Verdict> {
    struct Sig {
        sub: usize,
        entry: usize,
        public: PublicKey,
        key: usize,
        message: Vec<u8>,
    }
    let mut verdicts: Vec<Verdict> = subs
        .iter()
        .map(|s| Ok(vec![None; s.entries.len()]))
        .collect();
    let mut keys: Vec<(PublicKey, ed25519_dalek::VerifyingKey)> = Vec::new();
    let mut sigs: Vec<Sig> = Vec::new();
    let refuse = |e: &crate::entry::Entry| {
        let name = registry
            .get(&e.body.signer)
            .map(|k| k.name.clone())
            .unwrap_or_default();
        format!(
            "entry {}: the signature does not verify against signer key '{name}'",
            e.id().short()
        )
    };
    for (i, sub) in subs.iter().enumerate() {
        for (j, (e, _)) in sub.entries.iter().enumerate() {
            let Some(state) = registry.get(&e.body.signer) else {
                continue;
            };
            let public = state.public_key;
            let key = match keys.iter().position(|(p, _)| *p == public) {
                Some(k) => k,
                None => match ed25519_dalek::VerifyingKey::from_bytes(public.bytes()) {
                    Ok(v) => {
                        keys.push((public, v));
                        keys.len() - 1
                    }
                    Err(_) => {
                        verdicts[i] = Err(refuse(e));
                        continue;
                    }
                },
            };
            sigs.push(Sig {
                sub: i,
                entry: j,
                public,
                key,
                message: crate::entry::signature_message(&sub.id(j)),
            });
        }
    }
    let signature = |s: &Sig| &subs[s.sub].entries[s.entry].0.signature.0;
    let items: Vec<batch_verify::Item> = sigs
        .iter()
        .map(|s| batch_verify::Item {
            key: &keys[s.key].1,
            message: &s.message,
            signature: signature(s),
        })
        .collect();
    let all_good = batch_verify::verify(&items);
    for s in &sigs {
        if !all_good && !batch_verify::verify_one(s.public.bytes(), &s.message, signature(s)) {
            verdicts[s.sub] = Err(refuse(&subs[s.sub].entries[s.entry].0));
        } else if let Ok(v) = &mut verdicts[s.sub] {
            v[s.entry] = Some(s.public);
        }
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Acknowledgment, ENTRY_FORMAT, Entry, KeyGrant, Payload, UnsignedEntry};
    use crate::keys::Role;

    fn ack(key: &SecretKey, n: usize) -> Submission {
        let genesis = crate::digest::Digest::of(b"genesis");
        let body = UnsignedEntry {
            format: ENTRY_FORMAT,
            ledger: genesis,
            signer: key.public().id(),
            claimed_at: crate::timestamp::Timestamp(1_776_470_400),
            payload: Payload::Acknowledgment(Acknowledgment {
                topic: "t".into(),
                subject: None,
                namespace: None,
                statement: format!("acknowledgment {n}"),
            }),
        };
        let bytes = Submission::new("o", genesis, vec![(Entry::sign(body, key), vec![])])
            .to_bytes()
            .unwrap();
        Submission::from_bytes(&bytes).unwrap()
    }

    #[test]
    fn one_forged_signature_in_a_batch_fails_only_its_submission() {
        let (a, b, stranger) = (
            SecretKey::from_seed([1; 32]),
            SecretKey::from_seed([2; 32]),
            SecretKey::from_seed([3; 32]),
        );
        let grant = |name: &str, k: &SecretKey| KeyGrant {
            name: name.into(),
            public_key: k.public(),
            roles: vec![Role::Admin],
        };
        let registry = Registry::from_genesis(&[grant("a", &a), grant("b", &b)]).unwrap();
        let mut subs: Vec<Submission> = (0..12)
            .map(|n| ack(if n % 3 == 0 { &b } else { &a }, n))
            .collect();
        subs[7].entries[0].0.signature.0[5] ^= 1;
        subs.push(ack(&stranger, 99));
        let refs: Vec<&Submission> = subs.iter().collect();
        let verdicts = check_signatures(&registry, &refs);
        for (n, v) in verdicts.iter().enumerate() {
            match n {
                7 => assert!(v.as_ref().unwrap_err().contains("does not verify")),
                // Not in the registry the check saw: left to the sequencer, unverified.
                12 => assert_eq!(v.as_ref().unwrap(), &vec![None]),
                _ => {
                    let signer = if n % 3 == 0 { &b } else { &a };
                    assert_eq!(v.as_ref().unwrap(), &vec![Some(signer.public())], "{n}");
                }
            }
        }
        // A batch of good ones verifies as a batch, and the empty batch too.
        let good: Vec<&Submission> = refs.iter().copied().take(7).collect();
        assert!(check_signatures(&registry, &good).iter().all(|v| v.is_ok()));
        assert!(check_signatures(&registry, &[]).is_empty());
    }
}
