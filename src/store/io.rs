//! The store's narrow I/O layer: every file operation the store makes goes through [`Fs`] and
//! [`FsFile`], so a test can put a simulated disk ([`super::sim::SimFs`]) under a real
//! ledger and crash it at any operation — losing, tearing or reordering the writes that were
//! not yet synced — the way a power loss does (docs/RELIABILITY.md §"Power loss").
//!
//! [`RealFs`] is the operating system's file system; it is what every ledger uses unless a
//! test says otherwise.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};

/// How to open a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; create the file (empty) when it does not exist.
    ReadWrite,
    /// Read and write a new file; fail with `AlreadyExists` when the name is taken.
    CreateNew,
}

/// The file-system operations the store makes, on whole paths.
pub trait Fs: Send + Sync + fmt::Debug {
    /// Opens `path` as `mode` says.
    fn open(&self, path: &Path, mode: Mode) -> io::Result<Box<dyn FsFile>>;
    /// Maps the whole of `path` read-only as it is now; an absent file maps as empty.
    fn map(&self, path: &Path) -> io::Result<Mapped>;
    /// The length of `path`, `None` when it does not exist.
    fn len(&self, path: &Path) -> io::Result<Option<u64>>;
    /// Renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Creates the directory `path` and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of directory `path` (none when it does not exist).
    fn list(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Makes the directory `path`'s entries (created, renamed, removed names) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// Whether several files may be synced at once from different threads. A simulated
    /// disk says no: its crash points are counted in operation order, which must not
    /// depend on thread scheduling for a seed to replay.
    fn concurrent_syncs(&self) -> bool {
        true
    }

    /// The whole content of `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let f = self.open(path, Mode::Read)?;
        let mut buf = vec![0u8; f.len()? as usize];
        let n = read_full(&*f, &mut buf, 0)?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// An open file.
pub trait FsFile: Send + Sync {
    /// Reads into `buf` at `offset`; returns the bytes read (0 at the end of the file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `bytes` at `offset`.
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the file's data (and its length) durable: `fdatasync(2)`.
    fn sync_data(&self) -> io::Result<()>;
    /// Cuts or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's length now.
    fn len(&self) -> io::Result<u64>;
    /// Maps the first `len` bytes read-only (the caller just read the length).
    fn map(&self, len: u64) -> io::Result<Mapped>;
    /// Takes an exclusive advisory lock without waiting: `Ok(false)` when another holder has it.
    fn try_lock(&self) -> io::Result<bool>;
    /// Releases the lock.
    fn unlock(&self);
}

/// Reads into `buf` at `offset` until it is full or the file ends; returns the bytes read.
pub fn read_full(f: &dyn FsFile, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], offset + n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Read-only bytes of a file as they were when mapped: a memory map of a real file, or a
/// copy from a simulated disk.
pub struct Mapped(Bytes);

enum Bytes {
    Empty,
    Map(Mmap),
    Owned(Arc<Vec<u8>>),
}

impl Mapped {
    /// No bytes.
    pub fn empty() -> Mapped {
        Mapped(Bytes::Empty)
    }

    /// Bytes held in memory (a simulated disk's).
    pub fn owned(bytes: Arc<Vec<u8>>) -> Mapped {
        Mapped(Bytes::Owned(bytes))
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.0 {
            Bytes::Empty => &[],
            Bytes::Map(m) => m,
            Bytes::Owned(b) => b,
        }
    }
}

/// The operating system's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

impl RealFs {
    /// The shared instance every ledger uses by default.
    pub fn shared() -> Arc<dyn Fs> {
        Arc::new(RealFs)
    }
}

struct RealFile(File);

impl Fs for RealFs {
    fn open(&self, path: &Path, mode: Mode) -> io::Result<Box<dyn FsFile>> {
        let mut o = OpenOptions::new();
        match mode {
            Mode::Read => o.read(true),
            Mode::ReadWrite => o.read(true).write(true).create(true).truncate(false),
            Mode::CreateNew => o.read(true).write(true).create_new(true),
        };
        Ok(Box::new(RealFile(o.open(path)?)))
    }

    fn map(&self, path: &Path) -> io::Result<Mapped> {
        match File::open(path) {
            Ok(f) => {
                let len = f.metadata()?.len();
                RealFile(f).map(len)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Mapped::empty()),
            Err(e) => Err(e),
        }
    }

    fn len(&self, path: &Path) -> io::Result<Option<u64>> {
        match fs::metadata(path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        match fs::read_dir(path) {
            Ok(listing) => Ok(listing
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}

impl FsFile for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(bytes, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn map(&self, len: u64) -> io::Result<Mapped> {
        if len == 0 {
            return Ok(Mapped::empty());
        }
        // SAFETY: the store's files are append-only and the bytes evl reads through this map
        // lie below a committed length, which no writer truncates or rewrites (store docs).
        let map = unsafe { MmapOptions::new().len(len as usize).map(&self.0)? };
        Ok(Mapped(Bytes::Map(map)))
    }

    fn try_lock(&self) -> io::Result<bool> {
        match self.0.try_lock() {
            Ok(()) => Ok(true),
            Err(fs::TryLockError::WouldBlock) => Ok(false),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    fn unlock(&self) {
        let _ = self.0.unlock();
    }
}
