//! Trust roots and the auditor's state.
//!
//! Verifying a ledger or a bundle proves it is internally consistent: every signature by a key
//! its own registry authorizes, every proof against its own checkpoint. That says nothing about
//! *whose* ledger it is — anyone can create a fresh ledger with the same origin and their own
//! admin key. A verifier must therefore start from something it already holds (a trust root):
//! the genesis entry id, an admin public key, a checkpoint verifier key, a checkpoint note it
//! kept, or the auditor state evl keeps per origin. [`check`] decides whether a verified
//! subject is anchored in one of them and how it relates to what was verified before;
//! [`StateDir`] keeps, per origin, the genesis and the newest tree head verified, so a later
//! rollback or fork is caught without notes kept by hand (docs/FORMAT.md §"Auditor state").

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, VerifierKey};
use crate::digest::{Digest, EntryId};
use crate::keys::{KeyId, PublicKey};
use crate::merkle::{Hash, TreeSize};
use crate::timestamp::Timestamp;

/// The version tag of an auditor state file.
pub const STATE_FORMAT: &str = "evl-auditor-state/v1";
/// Largest auditor state file read (a checkpoint note and a few hashes).
const MAX_STATE_BYTES: u64 = 1 << 20;

/// What to tell a verifier that holds no trust root.
pub const NO_ROOT: &str = "no trust root: pass --genesis ID, --admin-key KEY or --verifier-key VKEY obtained from the ledger's owner (not from what you verify), or --trust-on-first-use to accept the keys it carries and record them";

/// A checkpoint note the auditor kept from an earlier verification.
#[derive(Clone, Debug)]
pub struct KeptCheckpoint {
    /// Where it came from, for messages (`--checkpoint FILE`).
    pub source: String,
    pub note: Vec<u8>,
    /// The caller compares it with the subject itself and reports a mismatch (`evl verify`
    /// does, against the recomputed tree): here it only counts as an anchor when it matches.
    pub compared_by_caller: bool,
}

/// The auditor state recorded for the subject's origin, and the file it was read from.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub file: PathBuf,
    pub state: AuditorState,
}

/// The trust roots a verification starts from. Every root supplied must hold; the auditor
/// state, when recorded for the origin, must hold too.
#[derive(Clone, Debug, Default)]
pub struct Roots {
    /// The genesis entry must have exactly this id.
    pub genesis: Option<EntryId>,
    /// The genesis entry or the checkpoint must be signed by one of these keys (each with the
    /// text it was given as, for messages).
    pub admin_keys: Vec<(String, PublicKey)>,
    /// The checkpoint must carry a valid signature by one of these keys.
    pub verifier_keys: Vec<VerifierKey>,
    /// Earlier checkpoints: a tree of the same size must have the same root.
    pub checkpoints: Vec<KeptCheckpoint>,
    /// The auditor state of the origin: its genesis pins the ledger; its tree heads must be
    /// prefixes of the subject's.
    pub recorded: Option<Recorded>,
    /// With nothing else to start from, accept the subject's own genesis and admin keys.
    pub trust_on_first_use: bool,
}

impl Roots {
    /// Whether nothing could anchor a verification: no root supplied or recorded, and no
    /// first-use opt-in.
    pub fn is_empty(&self) -> bool {
        self.genesis.is_none()
            && self.admin_keys.is_empty()
            && self.verifier_keys.is_empty()
            && self.checkpoints.is_empty()
            && self.recorded.is_none()
            && !self.trust_on_first_use
    }
}

/// A key of the subject's registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminKey {
    pub name: String,
    pub public_key: PublicKey,
}

/// What a ledger or bundle verification established, before any trust root is consulted.
pub struct Subject<'a> {
    /// "the ledger" or "the bundle", for messages.
    pub what: &'static str,
    pub origin: &'a str,
    pub genesis: EntryId,
    /// The key that signed the genesis entry (its signature verified).
    pub genesis_signer: KeyId,
    /// The admin keys the genesis entry names.
    pub genesis_admins: Vec<AdminKey>,
    /// The admin keys active at `size`.
    pub admins: Vec<AdminKey>,
    /// The signed checkpoint the subject is bound by (a bundle's; a ledger's latest stored),
    /// verbatim, and what verifying it against the subject's registry gave.
    pub checkpoint: Option<(&'a [u8], checkpoint::Verified)>,
    /// The tree verified: a ledger's recomputed tree, a bundle's checkpoint.
    pub size: TreeSize,
    pub root: Hash,
    /// Whether `root_at` knows the root at every size up to `size` (a whole ledger) or only
    /// at `size` (a bundle).
    pub whole_tree: bool,
    /// The root of the subject's tree at a size, where it can tell.
    pub root_at: &'a dyn Fn(TreeSize) -> Option<Hash>,
}

/// A key as reported: its registry name and id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyView {
    pub name: String,
    pub id: KeyId,
}

impl KeyView {
    fn of(k: &AdminKey) -> KeyView {
        KeyView {
            name: k.name.clone(),
            id: k.public_key.id(),
        }
    }
}

/// A checkpoint as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckpointView {
    pub size: TreeSize,
    pub root: Digest,
    pub signer: KeyId,
}

/// How the subject relates to a tree head verified before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Earlier {
    /// `--checkpoint FILE`, or the state file's tree / checkpoint.
    pub source: String,
    pub size: TreeSize,
    /// Whether the subject is proven to extend it (same root at that size).
    pub proven: bool,
    /// One sentence saying so.
    pub note: String,
}

/// What a verification trusted and why: printed by every successful verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Trusted {
    pub origin: String,
    pub genesis: EntryId,
    /// Admin keys named by the genesis entry.
    pub genesis_admins: Vec<KeyView>,
    /// Admin keys active at the verified size.
    pub admins: Vec<KeyView>,
    /// The verified tree.
    pub size: TreeSize,
    pub root: Digest,
    /// The signed checkpoint the subject is bound by, if any.
    pub checkpoint: Option<CheckpointView>,
    /// Where the trust came from, one sentence per root that held.
    pub roots: Vec<String>,
    /// Whether nothing the verifier held vouched for the subject.
    pub trust_on_first_use: bool,
    /// How the subject relates to checkpoints verified before.
    pub earlier: Vec<Earlier>,
    /// The auditor state to record when the verification succeeds: `None` when it would not
    /// change (or could not be proven to move forward).
    #[serde(skip)]
    pub next_state: Option<AuditorState>,
}

/// Checks the subject against the roots. Returns what was trusted, or every root that failed,
/// one sentence each (a missing root is one of them).
pub fn check(s: &Subject, roots: &Roots) -> Result<Trusted, Vec<String>> {
    let mut fails = Vec::new();
    let mut anchored = Vec::new();
    let mut earlier = Vec::new();
    let cp_by = |pk: &PublicKey| {
        s.checkpoint.as_ref().is_some_and(|(note, _)| {
            checkpoint::open(note, s.origin, std::slice::from_ref(pk)).is_ok()
                && s.admins.iter().any(|a| a.public_key == *pk)
        })
    };
    let cp_size = s.checkpoint.as_ref().map(|(_, v)| v.size);

    if let Some(g) = roots.genesis {
        if g == s.genesis {
            anchored.push(format!(
                "--genesis {}: the genesis entry has exactly this id",
                g.short()
            ));
        } else {
            fails.push(format!(
                "the genesis entry of {} is {}, not {} (--genesis): a different ledger with origin {}",
                s.what, s.genesis, g, s.origin
            ));
        }
    }

    if !roots.admin_keys.is_empty() {
        if let Some((given, _)) = roots
            .admin_keys
            .iter()
            .find(|(_, pk)| pk.id() == s.genesis_signer)
        {
            anchored.push(format!("--admin-key {given} signed the genesis entry"));
        } else if let Some((given, _)) = roots.admin_keys.iter().find(|(_, pk)| cp_by(pk)) {
            anchored.push(format!(
                "--admin-key {given} signed the checkpoint of size {}",
                cp_size.unwrap_or_default()
            ));
        } else {
            fails.push(format!(
                "neither the genesis entry of {} (signed by key {}) nor {} is signed by the admin key you trust (--admin-key): it is not the ledger that key administers",
                s.what,
                s.genesis_signer.0.short(),
                if cp_size.is_some() { "its checkpoint" } else { "any checkpoint (it has none)" }
            ));
        }
    }

    if !roots.verifier_keys.is_empty() {
        let by = roots.verifier_keys.iter().find(|vk| {
            vk.name() == s.origin
                && s.checkpoint
                    .as_ref()
                    .is_some_and(|(note, _)| vk.signed(note))
                && s.admins
                    .iter()
                    .any(|a| vk.is_key_of(s.origin, &a.public_key))
        });
        match (by, cp_size) {
            (Some(vk), Some(size)) => anchored.push(format!(
                "--verifier-key {vk} signed the checkpoint of size {size}"
            )),
            (_, None) => fails.push(format!(
                "{} carries no checkpoint for --verifier-key to check: sign one with `evl checkpoint`",
                s.what
            )),
            (None, Some(_)) => fails.push(format!(
                "the checkpoint of {} carries no valid signature by an admin key that is the verifier key you trust (--verifier-key {})",
                s.what,
                roots
                    .verifier_keys
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    for kept in &roots.checkpoints {
        match checkpoint::body_of(&kept.note) {
            Err(_) | Ok(_) if kept.compared_by_caller && !matches_subject(s, &kept.note) => {}
            Err(e) => fails.push(format!("{}: {e}", kept.source)),
            Ok((origin, _, _)) if origin != s.origin => fails.push(format!(
                "{} is a checkpoint of origin '{origin}', not of {}'s '{}'",
                kept.source, s.what, s.origin
            )),
            Ok((_, size, root)) => match compare(s, &kept.source, "checkpoint", size, root) {
                Ok(e) if e.proven => anchored.push(format!(
                    "{}: the tree of size {size} you kept is a prefix of this one",
                    kept.source
                )),
                Ok(e) => earlier.push(e),
                Err(f) => fails.push(f),
            },
        }
    }

    let mut previous = None;
    if let Some(rec) = &roots.recorded {
        let st = &rec.state;
        let file = rec.file.display();
        if st.origin != s.origin {
            fails.push(format!(
                "the auditor state file {file} is for origin '{}', not '{}'",
                st.origin, s.origin
            ));
        } else if st.genesis != s.genesis {
            fails.push(format!(
                "the genesis entry of {} is {}, but the ledger of origin {} you verified before had genesis {} (state file {file}): a different ledger with the same origin",
                s.what, s.genesis, s.origin, st.genesis
            ));
        } else {
            anchored.push(format!(
                "the auditor state {file} pins this genesis (last written {}; first pinned by: {})",
                st.recorded_at, st.pinned_by
            ));
            let source = format!("state file {file}");
            let mut ok = true;
            for (what, size, root) in st.heads() {
                match compare(s, &source, what, size, root) {
                    Ok(e) => {
                        ok &= e.proven;
                        earlier.push(e);
                    }
                    Err(f) => {
                        ok = false;
                        fails.push(f);
                    }
                }
            }
            previous = Some((st, ok));
        }
    }

    let tofu = anchored.is_empty() && fails.is_empty() && roots.trust_on_first_use;
    if anchored.is_empty() && !tofu && fails.is_empty() {
        fails.extend(earlier.iter().filter(|e| !e.proven).map(|e| e.note.clone()));
        fails.push(format!("{} is not verified: {NO_ROOT}", s.what));
    }
    if !fails.is_empty() {
        return Err(fails);
    }
    let head = Head {
        size: s.size,
        root: Digest(s.root.0),
    };
    let cp = s.checkpoint.as_ref().map(|(note, v)| RecordedCheckpoint {
        size: v.size,
        root: Digest(v.root.0),
        note: String::from_utf8_lossy(note).into_owned(),
    });
    let next_state = match previous {
        None => Some(AuditorState {
            format: STATE_FORMAT.to_string(),
            origin: s.origin.to_string(),
            genesis: s.genesis,
            pinned_by: if tofu {
                "trust on first use".to_string()
            } else {
                anchored.join("; ")
            },
            tree: head,
            checkpoint: cp,
            recorded_at: Timestamp::default(),
        }),
        // Move forward only from heads the subject is proven to extend.
        Some((prev, true)) => {
            let mut next = prev.clone();
            if head.size > prev.tree.size {
                next.tree = head;
            }
            if let Some(cp) = cp
                && prev.checkpoint.as_ref().is_none_or(|p| cp.size > p.size)
            {
                next.checkpoint = Some(cp);
            }
            (next.tree != prev.tree || next.checkpoint != prev.checkpoint).then_some(next)
        }
        Some((_, false)) => None,
    };
    Ok(Trusted {
        origin: s.origin.to_string(),
        genesis: s.genesis,
        genesis_admins: s.genesis_admins.iter().map(KeyView::of).collect(),
        admins: s.admins.iter().map(KeyView::of).collect(),
        size: s.size,
        root: Digest(s.root.0),
        checkpoint: s.checkpoint.as_ref().map(|(_, v)| CheckpointView {
            size: v.size,
            root: Digest(v.root.0),
            signer: v.signer,
        }),
        roots: anchored,
        trust_on_first_use: tofu,
        earlier,
        next_state,
    })
}

/// Whether `note` is a checkpoint of the subject's origin whose tree the subject holds.
fn matches_subject(s: &Subject, note: &[u8]) -> bool {
    checkpoint::body_of(note)
        .is_ok_and(|(origin, size, root)| origin == s.origin && (s.root_at)(size) == Some(root))
}

/// Compares an earlier tree head (`what` of size `size`, root `root`, from `source`) with the
/// subject: proven, not provable from what the subject carries, or a failure naming a
/// rollback or a fork.
fn compare(
    s: &Subject,
    source: &str,
    what: &str,
    size: TreeSize,
    root: Hash,
) -> Result<Earlier, String> {
    match (s.root_at)(size) {
        Some(r) if r == root => Ok(Earlier {
            source: source.to_string(),
            size,
            proven: true,
            note: format!(
                "consistent with the {what} of size {size} you verified before ({source})"
            ),
        }),
        Some(r) => Err(format!(
            "the tree of {} at size {size} has root {}, but the {what} of size {size} you verified before ({source}) has root {}: history was rewritten, or this is a fork",
            s.what,
            Digest(r.0),
            Digest(root.0)
        )),
        None if s.whole_tree => Err(format!(
            "{} has {} entries, but the {what} you verified before ({source}) has {size}: it was rolled back or truncated (pass --no-state to verify an older copy on purpose)",
            s.what, s.size
        )),
        None => Ok(Earlier {
            source: source.to_string(),
            size,
            proven: false,
            note: format!(
                "{} (checkpoint of size {}) cannot be proven consistent with the {what} of size {size} you verified before ({source}) from a bundle alone: verify the ledger, or check `evl proof consistency {} {}` on it",
                s.what,
                s.size,
                size.min(s.size),
                size.max(s.size)
            ),
        }),
    }
}

/// A tree head: size and root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub size: TreeSize,
    pub root: Digest,
}

/// A signed checkpoint verified before: its size, root and note text, verbatim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedCheckpoint {
    pub size: TreeSize,
    pub root: Digest,
    pub note: String,
}

/// What an auditor verified last for one origin (docs/FORMAT.md §"Auditor state").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditorState {
    /// [`STATE_FORMAT`].
    pub format: String,
    pub origin: String,
    /// The genesis entry id: the ledger this origin means to this auditor.
    pub genesis: EntryId,
    /// What anchored the first verification (the roots that held, or trust on first use).
    pub pinned_by: String,
    /// The largest tree verified: a ledger's recomputed tree, or a bundle's checkpoint.
    pub tree: Head,
    /// The newest signed checkpoint verified, if any.
    pub checkpoint: Option<RecordedCheckpoint>,
    /// When it was last written (the auditor's clock; informational only).
    pub recorded_at: Timestamp,
}

impl AuditorState {
    /// The tree heads the state holds: the tree and, when it differs, the checkpoint.
    pub fn heads(&self) -> Vec<(&'static str, TreeSize, Hash)> {
        let mut h = vec![("tree", self.tree.size, Hash(self.tree.root.0))];
        if let Some(c) = &self.checkpoint
            && (c.size, c.root) != (self.tree.size, self.tree.root)
        {
            h.push(("checkpoint", c.size, Hash(c.root.0)));
        }
        h
    }

    /// Checks what the JSON schema cannot: the version tag, the origin the file is named for,
    /// and that the checkpoint is the note it claims to be, within the tree.
    fn validate(&self, origin: &str) -> Result<(), String> {
        if self.format != STATE_FORMAT {
            return Err(format!("format is '{}', not {STATE_FORMAT}", self.format));
        }
        if self.origin != origin {
            return Err(format!(
                "it records origin '{}' under the file name of '{origin}'",
                self.origin
            ));
        }
        if let Some(c) = &self.checkpoint {
            match checkpoint::body_of(c.note.as_bytes()) {
                Ok((o, size, root))
                    if o == self.origin && size == c.size && Digest(root.0) == c.root => {}
                _ => return Err("its checkpoint note does not match its size and root".into()),
            }
            if c.size > self.tree.size {
                return Err("its checkpoint is larger than its tree".into());
            }
        }
        Ok(())
    }
}

/// Why the auditor state cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("auditor state {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "auditor state file {path} is damaged: {reason}; move it away to start over for this origin, or pass --no-state"
    )]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "auditor state {path} is writable by others (mode {mode:o}) or owned by another user: anyone who can write it can make evl trust a forged ledger; run `chmod go-w {path}` or pass --state-dir"
    )]
    OpenPermissions { path: PathBuf, mode: u32 },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The outcome of [`StateDir::update`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// The new state was written to this file.
    Written(PathBuf),
    /// Another process changed the file since it was read; it was left as that process wrote it.
    Raced(PathBuf),
}

/// The auditor's state directory: one JSON file per origin (docs/FORMAT.md §"Auditor state").
#[derive(Clone, Debug)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub fn new(dir: PathBuf) -> StateDir {
        StateDir { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file of `origin`: the lowercase hex BLAKE3 digest of the origin's bytes, `.json`.
    pub fn file_for(&self, origin: &str) -> PathBuf {
        self.dir
            .join(format!("{}.json", Digest::of(origin.as_bytes()).to_hex()))
    }

    /// The state recorded for `origin`, if any.
    pub fn load(&self, origin: &str) -> Result<Option<Recorded>, StateError> {
        let file = self.file_for(origin);
        let meta = match fs::metadata(&file) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&file)(e)),
        };
        check_private(&self.dir)?;
        check_private(&file)?;
        let malformed = |reason: String| StateError::Malformed {
            path: file.clone(),
            reason,
        };
        if !meta.is_file() || meta.len() > MAX_STATE_BYTES {
            return Err(malformed(format!(
                "not a regular file of at most {MAX_STATE_BYTES} bytes"
            )));
        }
        let bytes = fs::read(&file).map_err(io_err(&file))?;
        let state: AuditorState =
            serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
        state.validate(origin).map_err(malformed)?;
        Ok(Some(Recorded { file, state }))
    }

    /// Writes `next` for its origin, atomically (a temporary file in the same directory,
    /// fsynced, renamed over the old one, the directory fsynced), mode 0600 in a 0700
    /// directory. Under an exclusive lock, the file is read again first: if it no longer holds
    /// `read` (another evl recorded meanwhile), it is left alone.
    pub fn update(
        &self,
        read: Option<&AuditorState>,
        next: &AuditorState,
    ) -> Result<Update, StateError> {
        create_private_dir(&self.dir)?;
        check_private(&self.dir)?;
        let lock_path = self.dir.join(".lock");
        let lock = private_file(&lock_path, false)?;
        lock.lock().map_err(io_err(&lock_path))?;
        let file = self.file_for(&next.origin);
        let now = self.load(&next.origin)?.map(|r| r.state);
        if now.as_ref() != read {
            return Ok(Update::Raced(file));
        }
        let mut json = serde_json::to_vec_pretty(next).expect("auditor state encodes");
        json.push(b'\n');
        let tmp = self.dir.join(format!(
            ".{}.tmp{}",
            file.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let _ = fs::remove_file(&tmp);
        let mut f = private_file(&tmp, true)?;
        let written = f.write_all(&json).and_then(|_| f.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&tmp)(e));
        }
        drop(f);
        if let Err(e) = fs::rename(&tmp, &file) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&file)(e));
        }
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&self.dir))?;
        Ok(Update::Written(file))
    }
}

/// Creates `dir` (and missing parents) with mode 0700, as the XDG base directory
/// specification asks of the state directory.
fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(io_err(dir))
}

/// Opens (creating with mode 0600) a file in the state directory; `new` insists on creating it.
fn private_file(path: &Path, new: bool) -> Result<fs::File, StateError> {
    let mut o = fs::OpenOptions::new();
    o.write(true);
    if new {
        o.create_new(true);
    } else {
        o.create(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(io_err(path))
}

/// Refuses a state directory or file that someone else could write: whoever can write the
/// state can pin a forged genesis.
fn check_private(path: &Path) -> Result<(), StateError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path).map_err(io_err(path))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.mode() & 0o022 != 0 || meta.uid() != me {
            return Err(StateError::OpenPermissions {
                path: path.to_path_buf(),
                mode: meta.mode() & 0o777,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;
    use crate::merkle::leaf_hash;

    fn admin(name: &str) -> (SecretKey, AdminKey) {
        let k = SecretKey::demo_from_phrase(name);
        let a = AdminKey {
            name: name.into(),
            public_key: k.public(),
        };
        (k, a)
    }

    /// A bundle-like subject of size 5 whose checkpoint is signed by `signer`.
    fn check_bundle(
        genesis: EntryId,
        signer: &SecretKey,
        admins: &[AdminKey],
        roots: &Roots,
    ) -> Result<Trusted, Vec<String>> {
        let root = leaf_hash(b"root");
        let note = checkpoint::sign("example.org/t", 5, root, signer);
        let v = checkpoint::open(&note, "example.org/t", &[signer.public()]).unwrap();
        let at = move |n: TreeSize| (n == 5).then_some(root);
        check(
            &Subject {
                what: "the bundle",
                origin: "example.org/t",
                genesis,
                genesis_signer: signer.public().id(),
                genesis_admins: admins.to_vec(),
                admins: admins.to_vec(),
                checkpoint: Some((&note, v)),
                size: 5,
                root,
                whole_tree: false,
                root_at: &at,
            },
            roots,
        )
    }

    #[test]
    fn nothing_held_is_no_root_and_first_use_must_be_asked_for() {
        let (k, a) = admin("a");
        let g = Digest::of(b"g");
        let err = check_bundle(g, &k, std::slice::from_ref(&a), &Roots::default()).unwrap_err();
        assert!(err.iter().any(|f| f.contains("no trust root")), "{err:?}");
        let tofu = Roots {
            trust_on_first_use: true,
            ..Roots::default()
        };
        let t = check_bundle(g, &k, &[a], &tofu).unwrap();
        assert!(t.trust_on_first_use);
        assert_eq!(t.next_state.unwrap().pinned_by, "trust on first use");
    }

    #[test]
    fn a_forger_listing_the_real_admin_beside_their_own_key_is_refused() {
        let (real, real_admin) = admin("real");
        let (forger, forger_admin) = admin("forger");
        let g = Digest::of(b"forged genesis");
        let roots = Roots {
            admin_keys: vec![("real.pub".into(), real.public())],
            ..Roots::default()
        };
        // Genesis and checkpoint signed by the forger, who lists the real key as an admin too.
        let err =
            check_bundle(g, &forger, &[forger_admin, real_admin.clone()], &roots).unwrap_err();
        assert!(err[0].contains("--admin-key"), "{err:?}");
        // The real key's own ledger is accepted.
        let t = check_bundle(g, &real, &[real_admin], &roots).unwrap();
        assert_eq!(
            t.roots,
            vec!["--admin-key real.pub signed the genesis entry"]
        );
    }

    #[test]
    fn verifier_keys_and_genesis_ids_must_match_exactly() {
        let (real, real_admin) = admin("real");
        let (forger, forger_admin) = admin("forger");
        let vk: VerifierKey = checkpoint::verifier_key("example.org/t", &real.public())
            .parse()
            .unwrap();
        let roots = Roots {
            verifier_keys: vec![vk],
            ..Roots::default()
        };
        let g = Digest::of(b"g");
        assert!(check_bundle(g, &forger, &[forger_admin, real_admin.clone()], &roots).is_err());
        assert!(check_bundle(g, &real, std::slice::from_ref(&real_admin), &roots).is_ok());
        let pinned = Roots {
            genesis: Some(g),
            ..Roots::default()
        };
        let other = Digest::of(b"other");
        let real_only = std::slice::from_ref(&real_admin);
        assert!(check_bundle(other, &real, real_only, &pinned).is_err());
        assert!(check_bundle(g, &real, &[real_admin], &pinned).is_ok());
    }

    #[test]
    fn state_round_trips_and_refuses_damage_and_open_modes() {
        let t = tempfile::tempdir().unwrap();
        let dir = StateDir::new(t.path().join("evl"));
        assert!(dir.load("example.org/t").unwrap().is_none());
        let (k, a) = admin("a");
        let tofu = Roots {
            trust_on_first_use: true,
            ..Roots::default()
        };
        let next = check_bundle(Digest::of(b"g"), &k, &[a], &tofu)
            .unwrap()
            .next_state
            .unwrap();
        let Update::Written(file) = dir.update(None, &next).unwrap() else {
            panic!("not written")
        };
        assert_eq!(dir.load("example.org/t").unwrap().unwrap().state, next);
        // Another process recorded meanwhile: left alone.
        assert!(matches!(dir.update(None, &next).unwrap(), Update::Raced(_)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&file), 0o600);
            assert_eq!(mode(dir.path()), 0o700);
            fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
            assert!(matches!(
                dir.load("example.org/t"),
                Err(StateError::OpenPermissions { .. })
            ));
            fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let text = fs::read_to_string(&file).unwrap();
        fs::write(&file, text.replace("\"size\": 5", "\"size\": 4")).unwrap();
        let e = dir.load("example.org/t").unwrap_err().to_string();
        assert!(
            e.contains("damaged") && e.contains("checkpoint note"),
            "{e}"
        );
        fs::write(&file, "{").unwrap();
        assert!(matches!(
            dir.load("example.org/t"),
            Err(StateError::Malformed { .. })
        ));
    }
}
