//! The log's side of C2SP tlog-witness: submit a checkpoint with a consistency proof to a
//! witness and collect its cosignature lines (docs/WITNESS.md §"Collecting cosignatures").

use std::time::Duration;

use crate::checkpoint;
use crate::merkle::{Hash, TreeSize};

use super::{AddCheckpoint, parse_lines};

/// The add-checkpoint endpoint under a witness's submission prefix.
pub fn endpoint(prefix: &str) -> String {
    format!("{}/add-checkpoint", prefix.trim_end_matches('/'))
}

/// How many 409 answers naming another size are followed before giving up.
const MAX_CONFLICTS: usize = 3;

/// Submits `note` to the witness at `prefix`, starting from `old` (the size the caller
/// believes the witness holds; 0 if unknown), and returns its signature lines. A 409 names
/// the size the witness holds: the request is sent again from that size, with the proof
/// `proof(old)` gives. Errors are one line.
pub fn submit(
    prefix: &str,
    note: &[u8],
    mut old: TreeSize,
    proof: &dyn Fn(TreeSize) -> Result<Vec<Hash>, String>,
) -> Result<Vec<Vec<u8>>, String> {
    let (_, size, _) = checkpoint::body_of(note).map_err(|e| e.to_string())?;
    if old > size {
        old = 0;
    }
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)));
    if let Some(roots) = crate::net::ca::ureq_roots()? {
        config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
    }
    let agent: ureq::Agent = config.build().into();
    let url = endpoint(prefix);
    for _ in 0..=MAX_CONFLICTS {
        let hashes = if old == 0 || old == size {
            Vec::new()
        } else {
            proof(old)?
        };
        let body = AddCheckpoint {
            old_size: old,
            proof: hashes,
            note: note.to_vec(),
        }
        .to_bytes();
        let mut resp = agent
            .post(&url)
            .header("Content-Type", "text/plain; charset=utf-8")
            .send(&body[..])
            .map_err(|e| format!("{url}: {}", crate::net::ca::chain(&e)))?;
        let status = resp.status().as_u16();
        let data = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .map_err(|e| format!("{url}: reading the answer: {e}"))?;
        let first_line = || {
            String::from_utf8_lossy(&data)
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect::<String>()
        };
        match status {
            200 => {
                return parse_lines(&data).ok_or_else(|| {
                    format!("{url}: the answer is not signature lines: {}", first_line())
                });
            }
            409 => {
                let known: TreeSize = std::str::from_utf8(&data)
                    .ok()
                    .and_then(|s| s.strip_suffix('\n'))
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| {
                        format!("{url}: 409 without a tree size body: {}", first_line())
                    })?;
                if known == old {
                    return Err(format!(
                        "{url}: the witness holds a different tree of size {known} (a fork of this log, or of the witness)"
                    ));
                }
                if known > size {
                    return Err(format!(
                        "{url}: the witness already cosigned size {known}, larger than this checkpoint's {size} (the log was rolled back, or its key signed elsewhere)"
                    ));
                }
                old = known;
            }
            s => return Err(format!("{url}: HTTP {s}: {}", first_line())),
        }
    }
    Err(format!(
        "{url}: gave up after {MAX_CONFLICTS} conflicting sizes"
    ))
}
