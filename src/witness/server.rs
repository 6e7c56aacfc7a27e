//! `evl witness serve`: a C2SP tlog-witness (docs/WITNESS.md §"Witness server").
//!
//! The state directory holds `witness.json` (the logs this witness knows: origin and log
//! verifier keys) and `state/<hex SHA-256 of origin>.note`, the latest checkpoint it cosigned
//! for each origin, exactly as the log submitted it. A new checkpoint is written to a
//! temporary file, fsynced, renamed over the old one and the directory fsynced before the
//! cosignature is returned; checks and write happen under one lock, so two requests cannot
//! interleave and roll the state back.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::checkpoint::{self, VerifierKey};
use crate::keys::SecretKey;
use crate::merkle::{self, Hash, TreeSize};

use super::{AddCheckpoint, SIZE_CONTENT_TYPE, cosign, split_note};

/// The logs a witness knows (`witness.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub logs: Vec<LogConfig>,
}

/// One known log: its origin and the note verifier keys whose signature it accepts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub origin: String,
    pub vkeys: Vec<String>,
}

/// The config file of a state directory.
pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("witness.json")
}

/// The state file of `origin` in a state directory.
pub fn state_path(dir: &Path, origin: &str) -> PathBuf {
    dir.join("state").join(format!(
        "{}.note",
        hex::encode(Sha256::digest(origin.as_bytes()))
    ))
}

/// Reads the config of a state directory (an absent file is an empty config).
pub fn load_config(dir: &Path) -> Result<Config, String> {
    let path = config_path(dir);
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes `bytes` to `path` durably and atomically: a temporary file beside it, fsync, rename,
/// fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

/// Adds `vkey` for `origin` to the config of `dir` (creating it). Returns false when it was
/// already there.
pub fn add_log(dir: &Path, origin: &str, vkey: &str) -> Result<bool, String> {
    let vk: VerifierKey = vkey.parse().map_err(|e| format!("--vkey: {e}"))?;
    if !signed_note::is_key_name_valid(origin) {
        return Err(format!("'{origin}' is not a valid checkpoint origin"));
    }
    if vk.name() != origin {
        return Err(format!(
            "the verifier key is named '{}', not the origin '{origin}' (an evl ledger signs its checkpoints under its origin)",
            vk.name()
        ));
    }
    let mut cfg = load_config(dir)?;
    let vkey = vkey.trim().to_string();
    let changed = match cfg.logs.iter_mut().find(|l| l.origin == origin) {
        Some(l) if l.vkeys.contains(&vkey) => false,
        Some(l) => {
            l.vkeys.push(vkey);
            true
        }
        None => {
            cfg.logs.push(LogConfig {
                origin: origin.to_string(),
                vkeys: vec![vkey],
            });
            true
        }
    };
    if changed {
        let mut text = serde_json::to_vec_pretty(&cfg).expect("config serializes");
        text.push(b'\n');
        write_atomic(&config_path(dir), &text)
            .map_err(|e| format!("{}: {e}", config_path(dir).display()))?;
    }
    Ok(changed)
}

/// An HTTP answer: status, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

fn text(status: u16, msg: impl Into<String>) -> Reply {
    let mut body = msg.into().into_bytes();
    body.push(b'\n');
    Reply {
        status,
        content_type: "text/plain; charset=utf-8",
        body,
    }
}

/// A witness: its name, key and state directory.
pub struct Witness {
    dir: PathBuf,
    name: String,
    key: SecretKey,
    lock: Mutex<()>,
    /// Holds the directory's lock file open: one server per state directory.
    _dir_lock: File,
}

impl Witness {
    /// Opens the state directory `dir` (created if missing) for witness `name` with `key`,
    /// refusing one another process serves.
    pub fn open(dir: &Path, name: &str, key: SecretKey) -> Result<Witness, String> {
        if !signed_note::is_key_name_valid(name) {
            return Err(format!(
                "'{name}' is not a valid witness name (a signed-note key name)"
            ));
        }
        fs::create_dir_all(dir.join("state")).map_err(|e| format!("{}: {e}", dir.display()))?;
        load_config(dir)?;
        let lock_path = dir.join(".lock");
        let f = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
        f.try_lock()
            .map_err(|_| format!("{} is in use by another witness process", dir.display()))?;
        Ok(Witness {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            key,
            lock: Mutex::new(()),
            _dir_lock: f,
        })
    }

    /// The witness verifier key.
    pub fn vkey(&self) -> String {
        super::vkey(&self.name, &self.key.public())
    }

    /// The latest checkpoint cosigned for `origin`: (size, root), or `None`.
    fn known(&self, origin: &str) -> Result<Option<(TreeSize, Hash)>, String> {
        let path = state_path(&self.dir, origin);
        match fs::read(&path) {
            Ok(note) => {
                let (o, size, root) = checkpoint::body_of(&note)
                    .map_err(|e| format!("state file {} is unreadable: {e}", path.display()))?;
                if o != origin {
                    return Err(format!(
                        "state file {} is for another origin",
                        path.display()
                    ));
                }
                Ok(Some((size, root)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("state file {}: {e}", path.display())),
        }
    }

    /// Handles one `POST /add-checkpoint` body (C2SP tlog-witness).
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Reply {
        let req = match AddCheckpoint::parse(body) {
            Ok(r) => r,
            Err(e) => return text(400, e.to_string()),
        };
        let (origin, size, root) = match checkpoint::body_of(&req.note) {
            Ok(b) => b,
            Err(e) => return text(400, e.to_string()),
        };
        let Some((note_body, _)) = split_note(&req.note) else {
            return text(400, "the checkpoint is not a well-formed signed note");
        };
        let cfg = match load_config(&self.dir) {
            Ok(c) => c,
            Err(e) => return text(500, e),
        };
        let Some(log) = cfg.logs.iter().find(|l| l.origin == origin) else {
            return text(404, format!("unknown log origin '{origin}'"));
        };
        let signed = log.vkeys.iter().any(|v| {
            v.parse::<VerifierKey>()
                .is_ok_and(|vk| vk.signed(&req.note))
        });
        if !signed {
            return text(
                403,
                format!("no valid signature by a known key of '{origin}'"),
            );
        }
        if req.old_size > size {
            return text(
                400,
                format!(
                    "old size {} is larger than the checkpoint size {size}",
                    req.old_size
                ),
            );
        }
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let known = match self.known(&origin) {
            Ok(k) => k,
            Err(e) => return text(500, e),
        };
        let known_size = known.map_or(0, |k| k.0);
        if req.old_size != known_size {
            return Reply {
                status: 409,
                content_type: SIZE_CONTENT_TYPE,
                body: format!("{known_size}\n").into_bytes(),
            };
        }
        if let Some((ksize, kroot)) = known {
            if ksize == size {
                if kroot != root {
                    return Reply {
                        status: 409,
                        content_type: SIZE_CONTENT_TYPE,
                        body: format!("{known_size}\n").into_bytes(),
                    };
                }
                if !req.proof.is_empty() {
                    return text(422, "a consistency proof between equal sizes must be empty");
                }
            } else if !merkle::check_consistency(&req.proof, size, root, ksize, kroot) {
                return text(
                    422,
                    format!("the consistency proof from size {ksize} to {size} does not verify"),
                );
            }
        } else if !req.proof.is_empty() {
            return text(422, "the consistency proof from size 0 must be empty");
        }
        if let Err(e) = write_atomic(&state_path(&self.dir, &origin), &req.note) {
            return text(500, format!("cannot persist the witness state: {e}"));
        }
        Reply {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: cosign(&self.name, &self.key, note_body, now).into_bytes(),
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn handle(
    axum::extract::State(w): axum::extract::State<Arc<Witness>>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let reply = tokio::task::spawn_blocking(move || {
        let r = w.add_checkpoint(&body, now());
        if r.status != 200 {
            eprintln!(
                "evl witness: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body).trim_end()
            );
        }
        r
    })
    .await
    .unwrap_or_else(|_| text(500, "the witness failed handling the request"));
    let status = axum::http::StatusCode::from_u16(reply.status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(axum::http::header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response()
}

/// Serves `POST /add-checkpoint` on `addr` with `listen`'s TLS and limits until SIGINT or
/// SIGTERM; `ready` is called with the bound address once the socket listens.
pub fn serve(
    witness: Witness,
    addr: SocketAddr,
    listen: crate::net::listen::Listen,
    ready: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = crate::net::listen::Listen::bind(addr).await?;
        ready(listener.local_addr()?);
        let app = axum::Router::new()
            .route("/add-checkpoint", axum::routing::post(handle))
            .with_state(Arc::new(witness));
        listen
            .serve(listener, app, crate::net::listen::shutdown_signal())
            .await
    })
}
