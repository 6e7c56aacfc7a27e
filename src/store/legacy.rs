//! Store layout 1: the sled directory evl 0.1 wrote (docs/FORMAT.md §"Store layout 1"),
//! read only to copy a ledger into the current layout. Entries keep their bytes, so ids,
//! signatures, the tree and every checkpoint stay valid.

use std::path::Path;

use crate::digest::Digest;
use crate::entry::{Entry, Payload};
use crate::error::{Error, Result};

/// A layout-1 ledger opened for reading.
pub struct V1 {
    path: std::path::PathBuf,
    entries: sled::Tree,
    blobs: sled::Tree,
    meta: sled::Tree,
}

/// Whether `path` looks like a layout-1 (sled) ledger.
pub fn is_v1(path: &Path) -> bool {
    path.join("conf").is_file() && path.join("db").is_file()
}

impl V1 {
    /// Opens the sled store at `path` (sled takes an exclusive lock while it is open).
    pub fn open(path: &Path) -> Result<V1> {
        if !is_v1(path) {
            return Err(Error::NotALedger(path.to_path_buf()));
        }
        let storage = |e: sled::Error| match e {
            sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("lock") =>
            {
                Error::Busy(path.to_path_buf())
            }
            e => Error::Storage {
                path: path.to_path_buf(),
                message: format!("the layout-1 (sled) store cannot be read: {e}"),
            },
        };
        let db = sled::Config::new().path(path).open().map_err(storage)?;
        let tree = |name: &str| db.open_tree(name).map_err(storage);
        Ok(V1 {
            path: path.to_path_buf(),
            entries: tree("entries")?,
            blobs: tree("blobs")?,
            meta: tree("meta")?,
        })
    }

    fn storage(&self, e: sled::Error) -> Error {
        Error::Storage {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// The number of entries its `meta` tree records.
    pub fn size(&self) -> Result<u64> {
        let v = self.meta.get(b"size").map_err(|e| self.storage(e))?;
        Ok(v.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Entry `index` and the stored bytes it carries (artifact content and parsed facts, or a
    /// disposition document), in the order an append takes them.
    pub fn entry(&self, index: u64) -> Result<(Entry, Vec<Vec<u8>>)> {
        let bytes = self
            .entries
            .get(index.to_be_bytes())
            .map_err(|e| self.storage(e))?
            .ok_or_else(|| Error::Corrupt(format!("layout-1 entry {index} is missing")))?;
        let entry = Entry::from_bytes(&bytes)
            .map_err(|e| Error::Corrupt(format!("layout-1 entry {index} does not decode: {e}")))?;
        let wanted: Vec<Digest> = match &entry.body.payload {
            Payload::Artifact(m) => std::iter::once(m.content)
                .chain(m.facts.as_ref().map(|f| f.digest))
                .collect(),
            Payload::Disposition(d) => vec![d.document],
            _ => vec![],
        };
        let blobs = wanted
            .iter()
            .map(|d| {
                self.blobs
                    .get(d.0)
                    .map_err(|e| self.storage(e))?
                    .map(|v| v.to_vec())
                    .ok_or_else(|| {
                        Error::Corrupt(format!(
                            "layout-1 entry {index} refers to stored bytes {d}, which are missing"
                        ))
                    })
            })
            .collect::<Result<_>>()?;
        Ok((entry, blobs))
    }

    /// The latest checkpoint note it stored, if any.
    pub fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        Ok(self
            .meta
            .get(b"checkpoint")
            .map_err(|e| self.storage(e))?
            .map(|v| v.to_vec()))
    }
}
