//! The library's error type and the one mapping from error kinds to exit codes.

use std::path::PathBuf;

use crate::entry::EntryError;
use crate::keys::KeyError;
use crate::registry::AuthError;
use crate::trust::StateError;

/// Exit codes, documented in `evl --help`.
pub mod exit {
    /// Success; for `verify`, `replay` and `verify-bundle`: verified.
    pub const OK: i32 = 0;
    /// Verification failed: the ledger, bundle or disposition is invalid or tampered.
    pub const INVALID: i32 = 1;
    /// Usage or input error: bad arguments, malformed or missing files, unknown digests.
    pub const INPUT: i32 = 2;
    /// Refused: the signer is unknown, revoked or lacks the role; a key file has open permissions.
    pub const REFUSED: i32 = 3;
    /// The ledger is in use by another process appending to it.
    pub const BUSY: i32 = 4;
    /// Storage failure: the disk is full or unwritable, or stored bytes are unreadable.
    pub const STORAGE: i32 = 5;
    /// `checkpoint --witness`: fewer witnesses cosigned than the quorum.
    pub const NO_QUORUM: i32 = 6;
    /// `evaluate --fail-on hold`: the derived verdict is HOLD.
    pub const VERDICT_HOLD: i32 = 10;
    /// `evaluate --fail-on narrow`: the derived verdict is NARROW.
    pub const VERDICT_NARROW: i32 = 11;
    /// `evaluate --fail-on escalate`: the derived verdict is ESCALATE.
    pub const VERDICT_ESCALATE: i32 = 12;
}

/// Everything a ledger operation can report. Each message is one sentence naming what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("storage error in {path}: {message}")]
    Storage { path: PathBuf, message: String },
    /// An operation on one of the ledger's own files failed (unreadable, unwritable, full).
    #[error("cannot use the ledger's file {path}: {source}")]
    StoreIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no evl ledger at {0}; create one with `evl init` or point --ledger / EVL_LEDGER at one"
    )]
    NotALedger(PathBuf),
    #[error("{0} already holds a ledger; refusing to initialise it again")]
    AlreadyExists(PathBuf),
    #[error(
        "the ledger at {0} is in use by another process appending to it; retry, or pass --wait to wait for it"
    )]
    Busy(PathBuf),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("append refused: {0}")]
    Unauthorized(#[from] AuthError),
    #[error("no entry or artifact matches '{0}'")]
    Unknown(String),
    #[error("'{prefix}' is ambiguous: it matches {}", matches.join(", "))]
    Ambiguous {
        prefix: String,
        matches: Vec<String>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("stored data is corrupt: {0}; run `evl verify`")]
    Corrupt(String),
    /// A published or served log whose objects do not verify (docs/PUBLISH.md).
    #[error("the published log does not verify: {0}")]
    Unverified(String),
    #[error("entry cannot be stored: {0}")]
    Entry(#[from] EntryError),
    #[error(transparent)]
    State(#[from] crate::trust::StateError),
}

impl Error {
    /// The documented exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Io { source, .. } if is_storage_io(source) => exit::STORAGE,
            Error::Io { .. } => exit::INPUT,
            Error::Storage { .. } | Error::StoreIo { .. } => exit::STORAGE,
            Error::Busy(_) => exit::BUSY,
            Error::Unauthorized(_) => exit::REFUSED,
            Error::Key(KeyError::OpenPermissions { .. }) => exit::REFUSED,
            Error::Corrupt(_) | Error::Unverified(_) => exit::INVALID,
            Error::State(StateError::OpenPermissions { .. }) => exit::REFUSED,
            Error::State(StateError::Io { source, .. }) if is_storage_io(source) => exit::STORAGE,
            _ => exit::INPUT,
        }
    }

    /// Wraps an I/O error on one of the ledger's own files with its path.
    pub fn store_io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::StoreIo { path, source }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

fn is_storage_io(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), StorageFull | QuotaExceeded | ReadOnlyFilesystem)
        || e.raw_os_error() == Some(28)
}

/// Shorthand for library results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
