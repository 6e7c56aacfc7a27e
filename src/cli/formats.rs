//! Verbs that write and check the attestation world's standard formats: C2SP tlog-proof files
//! (`evl proof inclusion --format tlog-proof`, `evl proof verify`) and in-toto attestations in
//! DSSE envelopes (`evl export-attestation`). docs/FORMAT.md §"tlog-proof files",
//! docs/ATTESTATIONS.md.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::read::{TrustArgs, admin_key};
use super::read_file;
use crate::checkpoint::{self, VerifierKey};
use crate::digest::EntryId;
use crate::error::{Error, exit};
use crate::merkle;
use crate::store::Ledger;
use crate::tlog_proof::{self, TlogProof};

/// How `evl proof inclusion` writes its proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProofFormat {
    Text,
    Json,
    /// C2SP tlog-proof@v1.
    TlogProof,
}

/// Writes the tlog-proof of `entry` against the ledger's latest checkpoint (or `note`).
pub fn tlog_proof_out(
    ledger: &Ledger,
    entry: &str,
    size: Option<u64>,
    note: Option<PathBuf>,
    output: Option<PathBuf>,
) -> Result<i32, Error> {
    let (index, _) = ledger.resolve_entry(entry)?;
    let (source, note) = match &note {
        Some(p) => (format!("--checkpoint {}", p.display()), read_file(p, 1 << 20)?),
        None => (
            "the latest stored checkpoint".to_string(),
            ledger.latest_checkpoint()?.ok_or_else(|| {
                Error::Invalid(
                    "the ledger has no signed checkpoint to prove against: run `evl checkpoint` first"
                        .into(),
                )
            })?,
        ),
    };
    let (origin, cp_size, cp_root) =
        checkpoint::body_of(&note).map_err(|e| Error::Invalid(format!("{source}: {e}")))?;
    let ours = ledger.origin()?;
    if origin != ours {
        return Err(Error::Invalid(format!(
            "{source} is for origin '{origin}', not this ledger's '{ours}'"
        )));
    }
    if let Some(s) = size
        && s != cp_size
    {
        return Err(Error::Invalid(format!(
            "--size {s}: a tlog-proof is proven against a signed checkpoint, and {source} is of size {cp_size}; sign one of size {s} or pass --checkpoint NOTE"
        )));
    }
    if index >= cp_size {
        return Err(Error::Invalid(format!(
            "entry {index} is not inside {source} (size {cp_size}): run `evl checkpoint` to sign the current tree"
        )));
    }
    if cp_size > ledger.size()? || ledger.root(cp_size)? != cp_root {
        return Err(Error::Invalid(format!(
            "{source} (size {cp_size}) is not a checkpoint of this ledger's tree"
        )));
    }
    let proof = TlogProof {
        extra: Some(ledger.entry_bytes(index)?),
        index,
        hashes: ledger.prove_inclusion(index, cp_size)?,
        checkpoint: note,
    };
    let bytes = proof.to_bytes();
    match output {
        Some(p) => std::fs::write(&p, &bytes).map_err(Error::io(&p))?,
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&bytes)
                .map_err(Error::io("stdout"))?
        }
    }
    Ok(exit::OK)
}

#[derive(Args, Debug)]
pub struct ProofVerifyArgs {
    /// The tlog-proof file.
    pub file: PathBuf,
    /// The entry id (64 hex) the proof must be of.
    #[arg(long, value_name = "ID")]
    pub entry: Option<EntryId>,
    /// A checkpoint note you kept: a proof checkpoint of the same size must have its root.
    #[arg(long, value_name = "NOTE")]
    pub checkpoint: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// A witness policy (Sigsum policy format, docs/WITNESS.md): the proof's checkpoint must
    /// carry valid cosignatures meeting its quorum, and be signed by one of its log keys if it
    /// lists any.
    #[arg(long, value_name = "FILE")]
    pub witness_policy: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One line of a verification that did not pass.
fn failed(a: &ProofVerifyArgs, why: &str) -> Result<i32, Error> {
    if a.json {
        super::print_json_as(
            "evl.proof-verify/v1",
            &serde_json::json!({"verified": false, "failures": [why]}),
        )?;
    }
    eprintln!("evl: proof {} does not verify: {why}", a.file.display());
    Ok(exit::INVALID)
}

pub fn proof_verify(a: ProofVerifyArgs) -> Result<i32, Error> {
    let bytes = read_file(&a.file, tlog_proof::MAX_PROOF_BYTES)?;
    if a.trust.genesis.is_some() {
        return Err(Error::Invalid(
            "--genesis cannot anchor a tlog-proof (it carries one entry, not the genesis): pass --verifier-key or --admin-key".into(),
        ));
    }
    let admin_keys = a
        .trust
        .admin_keys
        .iter()
        .map(|k| admin_key(k))
        .collect::<Result<Vec<_>, _>>()?;
    let verifier_keys = a
        .trust
        .verifier_keys
        .iter()
        .map(|v| {
            v.parse::<VerifierKey>()
                .map_err(|e| Error::Invalid(format!("--verifier-key: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let kept = match &a.checkpoint {
        Some(p) => Some((p.display().to_string(), read_file(p, 1 << 20)?)),
        None => None,
    };
    let proof = match TlogProof::parse(&bytes) {
        Ok(p) => p,
        Err(e) => return failed(&a, &e.to_string()),
    };
    let c = match tlog_proof::check_inclusion(&proof) {
        Ok(c) => c,
        Err(e) => return failed(&a, &e),
    };
    if let Some(want) = a.entry
        && want != c.entry
    {
        return failed(
            &a,
            &format!("it proves entry {}, not {want}", c.entry.to_hex()),
        );
    }
    // Every kind of root given must hold; within a kind, one of the keys given.
    let mut anchors: Vec<String> = Vec::new();
    if !verifier_keys.is_empty() {
        match verifier_keys
            .iter()
            .find(|v| v.name() == c.origin && v.signed(&proof.checkpoint))
        {
            Some(v) => anchors.push(format!("the checkpoint is signed by verifier key {v}")),
            None => {
                return failed(
                    &a,
                    &format!(
                        "the checkpoint carries no valid signature by a --verifier-key for origin '{}'",
                        c.origin
                    ),
                );
            }
        }
    }
    if !admin_keys.is_empty() {
        match admin_keys.iter().find(|(_, pk)| {
            checkpoint::open(&proof.checkpoint, &c.origin, std::slice::from_ref(pk)).is_ok()
        }) {
            Some((given, _)) => {
                anchors.push(format!("the checkpoint is signed by --admin-key {given}"))
            }
            None => {
                return failed(
                    &a,
                    "the checkpoint carries no valid signature by an --admin-key",
                );
            }
        }
    }
    if let Some((source, note)) = &kept {
        match checkpoint::body_of(note) {
            Ok((o, s, r)) if o == c.origin && s == c.size => {
                if r != c.root {
                    return failed(
                        &a,
                        &format!(
                            "the kept checkpoint {source} has another root at size {s}: the log forked"
                        ),
                    );
                }
                anchors.push(format!(
                    "the checkpoint has the root of the kept checkpoint {source}"
                ));
            }
            Ok((o, s, _)) => {
                return failed(
                    &a,
                    &format!(
                        "the kept checkpoint {source} (origin '{o}', size {s}) cannot anchor a proof against origin '{}' at size {}: a proof carries no consistency proof",
                        c.origin, c.size
                    ),
                );
            }
            Err(e) => return Err(Error::Invalid(format!("--checkpoint {source}: {e}"))),
        }
    }
    let state_text = match a.trust.state() {
        Err(why) => why.to_string(),
        Ok(dir) => match dir.load(&c.origin)? {
            None => format!("nothing recorded for origin '{}'", c.origin),
            Some(rec) => {
                let heads = rec.state.heads();
                match heads.iter().find(|(_, s, _)| *s == c.size) {
                    Some((what, s, r)) if *r != c.root => {
                        return failed(
                            &a,
                            &format!(
                                "the auditor state ({}) records another root for size {s} ({what}): the log forked",
                                rec.file.display()
                            ),
                        );
                    }
                    Some((what, s, _)) => {
                        anchors.push(format!(
                            "the checkpoint has the root the auditor state records for size {s} ({what})"
                        ));
                        format!("matches {}", rec.file.display())
                    }
                    None => format!(
                        "{} records size(s) {}, not {}: a proof carries no consistency proof, so it cannot be compared",
                        rec.file.display(),
                        heads
                            .iter()
                            .map(|(_, s, _)| s.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        c.size
                    ),
                }
            }
        },
    };
    if let Some(p) = &a.witness_policy {
        let what = "the proof's checkpoint".to_string();
        match super::read::check_witness_policy(
            p,
            &c.origin,
            &[(what, Some(proof.checkpoint.clone()))],
        )? {
            Ok(summary) => anchors.push(summary),
            Err(line) => return failed(&a, &line),
        }
    }
    if anchors.is_empty() {
        return failed(
            &a,
            &format!(
                "no trust root anchors its checkpoint (auditor state: {state_text}): pass --verifier-key VKEY or --admin-key KEY obtained from the ledger's owner"
            ),
        );
    }
    if a.json {
        return super::print_json_as(
            "evl.proof-verify/v1",
            &serde_json::json!({
                "verified": true,
                "origin": c.origin,
                "size": c.size,
                "root_hash": merkle::hex(&c.root),
                "index": c.index,
                "leaf_hash": merkle::hex(&c.leaf_hash),
                "entry": c.entry.to_hex(),
                "trusted": anchors,
                "state": state_text,
            }),
        );
    }
    println!(
        "verified: entry {} is at index {} of {} (tree size {}, root {})",
        c.entry.to_hex(),
        c.index,
        c.origin,
        c.size,
        merkle::hex(&c.root)
    );
    for t in &anchors {
        println!("trusted     {t}");
    }
    println!("state       {state_text} (not written by proof verify)");
    Ok(exit::OK)
}

#[derive(Args, Debug)]
pub struct ExportAttestationArgs {
    /// The recorded disposition (entry id or unique prefix).
    pub disposition: String,
    /// Write the envelope to FILE instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Key to sign the envelope with (PKCS#8 PEM or OpenSSH ed25519, mode 0600), or ssh-agent:COMMENT.
    #[arg(long, env = "EVL_KEY", value_name = "FILE")]
    pub key: PathBuf,
}

pub fn export_attestation(g: &super::Global, a: ExportAttestationArgs) -> Result<i32, Error> {
    let key = crate::keys::read_secret(&a.key)?;
    let ledger = super::open(g)?;
    let (_, entry) = ledger.resolve_entry(&a.disposition)?;
    let statement = crate::attestation::statement(ledger, &entry.id())?;
    let bytes = crate::attestation::envelope(&statement, &key)?;
    match &a.output {
        Some(p) => std::fs::write(p, &bytes).map_err(Error::io(p))?,
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&bytes)
                .map_err(Error::io("stdout"))?
        }
    }
    Ok(exit::OK)
}
