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
use super::remote::{Submitted, submit_to};
use crate::error::{Error, exit};
use crate::keys::SecretKey;
use crate::merkle;
use crate::publish::{self, TILE_WIDTH};
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

/// A submission waiting for the sequencer.
struct Job {
    sub: Submission,
    reply: oneshot::Sender<Result<Vec<Submitted>, Error>>,
}

struct Shared {
    ledger: Arc<Ledger>,
    origin: String,
    /// The newest signed checkpoint: (size, note).
    checkpoint: RwLock<(u64, Vec<u8>)>,
    queue: mpsc::Sender<Job>,
    timeout: Duration,
    rate_per_key: u32,
    buckets: Buckets,
}

fn sign_checkpoint(
    ledger: &Ledger,
    origin: &str,
    key: &SecretKey,
) -> Result<(u64, Vec<u8>), Error> {
    let size = ledger.size()?;
    Ok((
        size,
        crate::checkpoint::sign(origin, size, ledger.root(size)?, key),
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
    let shared = Arc::new(Shared {
        ledger: ledger.clone(),
        origin: origin.clone(),
        checkpoint: RwLock::new(first),
        queue: tx,
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
        let together = submit_to(
            &s.ledger,
            jobs.iter().zip(&names).map(|(j, n)| (n.clone(), &j.sub)),
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
                    submit_to(
                        &s.ledger,
                        std::iter::once(("submission".to_string(), &j.sub)),
                    )
                })
                .collect(),
        };
        if let Ok(cp) = sign_checkpoint(&s.ledger, &s.origin, &key) {
            *s.checkpoint.write().unwrap_or_else(|p| p.into_inner()) = cp;
        }
        for (job, result) in jobs.into_iter().zip(results) {
            let _ = job.reply.send(result);
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
/// refused, 403 an unauthorized signer, 503 busy or timed out.
async fn add(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let sub = match Submission::from_bytes(&body) {
        Ok(sub) => sub,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let mut signers: Vec<_> = sub.entries.iter().map(|(e, _)| e.body.signer).collect();
    signers.sort();
    signers.dedup();
    if !signers
        .into_iter()
        .all(|k| admit(&s.buckets, k, s.rate_per_key))
    {
        return text(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "over {} submissions per second for this key; retry later",
                s.rate_per_key
            ),
        );
    }
    let (tx, rx) = oneshot::channel();
    if s.queue.try_send(Job { sub, reply: tx }).is_err() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy: the submission queue is full; retry",
        );
    }
    let done = match tokio::time::timeout(s.timeout, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => return text(StatusCode::SERVICE_UNAVAILABLE, "the sequencer stopped"),
        Err(_) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "timed out waiting to be sequenced; resubmitting is safe",
            );
        }
    };
    let results = match done {
        Ok(r) => r,
        Err(e) => {
            let status = match e.exit_code() {
                exit::REFUSED => StatusCode::FORBIDDEN,
                exit::BUSY | exit::STORAGE => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            return text(status, e.to_string());
        }
    };
    let (size, note) = s
        .checkpoint
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let ledger = s.ledger.clone();
    let made = tokio::task::spawn_blocking(move || -> Result<serde_json::Value, Error> {
        let mut entries = Vec::with_capacity(results.len());
        for r in &results {
            let proof = ledger.prove_inclusion(r.index, size)?;
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
            "checkpoint": String::from_utf8_lossy(&note),
            "entries": entries,
        }))
    })
    .await;
    match made {
        Ok(Ok(v)) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&v).expect("JSON encodes"),
        )
            .into_response(),
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
