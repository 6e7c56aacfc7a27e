//! A simulated disk for crash tests, in the spirit of FoundationDB's simulation and
//! TigerBeetle's `testing/storage.zig`: a ledger runs on it unchanged (through [`Fs`]), and a
//! test can stop it at any mutating operation and see what a power loss would have left.
//!
//! The model (docs/RELIABILITY.md §"Power loss"):
//! - A file's bytes are durable once `sync_data` returns; every write, truncation and
//!   extension since the file's last sync is *pending*.
//! - Names (create, rename, remove) are durable once the directory is synced; pending name
//!   changes survive a crash as a prefix of their order (a journaling file system commits
//!   metadata in order). Directories themselves are durable at once.
//! - At a crash, each pending data operation independently survives whole, is lost, or — a
//!   write — is torn: only the sectors (512 bytes, aligned to file offsets) of a prefix of
//!   it reach the disk. Surviving operations apply in their original order, so later writes
//!   can survive where earlier ones did not (reordering); bytes never written read as zeros.
//!
//! Everything is decided by a seed, so a failing crash point is replayed exactly.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::io::{Fs, FsFile, Mapped, Mode};

/// Bytes of a sector: the unit a torn write keeps or loses.
pub const SECTOR: u64 = 512;

/// How a crash treats the operations that were not yet durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Every pending operation is lost.
    All,
    /// Each pending operation survives, is lost, or (a write) is torn, at random.
    Random,
}

/// A small deterministic generator (SplitMix64): the seed decides every choice of a crash.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[derive(Clone, Debug)]
enum Pending {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Clone, Debug, Default)]
struct Inode {
    durable: Vec<u8>,
    current: Arc<Vec<u8>>,
    pending: Vec<Pending>,
}

#[derive(Clone, Debug)]
enum NameOp {
    Link(PathBuf, u64),
    Unlink(PathBuf),
}

#[derive(Clone, Debug, Default)]
struct State {
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    dirs: std::collections::BTreeSet<PathBuf>,
    /// Name changes not yet made durable, in order, with the directory each concerns.
    pending_names: Vec<(PathBuf, NameOp)>,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    /// Mutating operations made so far.
    ops: u64,
    /// The mutating operation at which the power fails.
    crash_at: Option<u64>,
    crashed: bool,
    /// Files whose syncs do nothing (a disk that lies about flushing), for tests that show
    /// the crash checks can fail.
    lying: Vec<PathBuf>,
}

/// A simulated disk. Cloning the handle shares the disk.
#[derive(Clone, Debug, Default)]
pub struct SimFs(Arc<Mutex<State>>);

fn crashed() -> io::Error {
    io::Error::other("simulated power loss")
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl SimFs {
    /// An empty disk.
    pub fn new() -> SimFs {
        SimFs::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A disk holding exactly what this one holds now, as if everything had been synced.
    pub fn snapshot(&self) -> SimFs {
        let s = self.state();
        let mut t = State {
            dirs: s.dirs.clone(),
            next_inode: s.next_inode,
            lying: s.lying.clone(),
            ..State::default()
        };
        for (name, ino) in &s.names {
            let bytes = s.inodes[ino].current.as_ref().clone();
            t.inodes.insert(
                *ino,
                Inode {
                    durable: bytes.clone(),
                    current: Arc::new(bytes),
                    pending: vec![],
                },
            );
            t.names.insert(name.clone(), *ino);
        }
        t.durable_names = t.names.clone();
        SimFs(Arc::new(Mutex::new(t)))
    }

    /// The mutating operations made so far.
    pub fn ops(&self) -> u64 {
        self.state().ops
    }

    /// Makes the power fail at mutating operation `at` (counted from the disk's creation):
    /// that operation and every later one fails.
    pub fn crash_at(&self, at: u64) {
        self.state().crash_at = Some(at);
    }

    /// Whether the power has failed.
    pub fn has_crashed(&self) -> bool {
        self.state().crashed
    }

    /// The disk as a power loss now would leave it, the choices made by `seed`.
    pub fn after_power_loss(&self, loss: Loss, seed: u64) -> SimFs {
        let s = self.state();
        let mut rng = Rng::new(seed);
        let mut t = State {
            dirs: s.dirs.clone(),
            next_inode: s.next_inode,
            ..State::default()
        };
        // Names: the durable ones, then a prefix of the pending changes.
        let mut names = s.durable_names.clone();
        let keep = match loss {
            Loss::All => 0,
            Loss::Random => rng.below(s.pending_names.len() as u64 + 1) as usize,
        };
        for (_, op) in &s.pending_names[..keep] {
            match op {
                NameOp::Link(p, ino) => {
                    names.insert(p.clone(), *ino);
                }
                NameOp::Unlink(p) => {
                    names.remove(p);
                }
            }
        }
        for (name, ino) in names {
            if !t.inodes.contains_key(&ino) {
                let inode = &s.inodes[&ino];
                let mut bytes = inode.durable.clone();
                for op in &inode.pending {
                    let choice = match loss {
                        Loss::All => 1,
                        Loss::Random => rng.below(3),
                    };
                    match (op, choice) {
                        (_, 1) => {}
                        (Pending::SetLen(len), _) => bytes.resize(*len as usize, 0),
                        (Pending::Write { offset, bytes: w }, 0) => put(&mut bytes, *offset, w),
                        (Pending::Write { offset, bytes: w }, _) => {
                            // Torn: the sectors of a prefix of the write.
                            let end = offset + w.len() as u64;
                            let first = offset.next_multiple_of(SECTOR).min(end);
                            let sectors = (end - first).div_ceil(SECTOR);
                            let cut = match rng.below(sectors + 2) {
                                0 => *offset,
                                k => (first + (k - 1) * SECTOR).min(end),
                            };
                            put(&mut bytes, *offset, &w[..(cut - offset) as usize]);
                        }
                    }
                }
                t.inodes.insert(
                    ino,
                    Inode {
                        durable: bytes.clone(),
                        current: Arc::new(bytes),
                        pending: vec![],
                    },
                );
            }
            t.names.insert(name, ino);
        }
        t.durable_names = t.names.clone();
        SimFs(Arc::new(Mutex::new(t)))
    }

    /// Makes syncs of `path` do nothing, as on a disk that acknowledges flushes it did not
    /// make: a test of the crash checks themselves.
    pub fn lie_about_syncs_of(&self, path: &Path) {
        self.state().lying.push(path.to_path_buf());
    }

    /// The current bytes of `path`, for tests to compare or damage.
    pub fn bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.state();
        let ino = s.names.get(path)?;
        Some(s.inodes[ino].current.as_ref().clone())
    }

    /// The names of every file on the disk.
    pub fn files(&self) -> Vec<PathBuf> {
        self.state().names.keys().cloned().collect()
    }

    /// Replaces the bytes of `path` (durably), for tests that damage a file.
    pub fn set_bytes(&self, path: &Path, bytes: Vec<u8>) {
        let mut s = self.state();
        let ino = match s.names.get(path) {
            Some(i) => *i,
            None => {
                let i = s.next_inode;
                s.next_inode += 1;
                s.names.insert(path.to_path_buf(), i);
                s.durable_names.insert(path.to_path_buf(), i);
                i
            }
        };
        s.inodes.insert(
            ino,
            Inode {
                durable: bytes.clone(),
                current: Arc::new(bytes),
                pending: vec![],
            },
        );
    }
}

/// Writes `w` at `offset` of `bytes`, extending with zeros as needed.
fn put(bytes: &mut Vec<u8>, offset: u64, w: &[u8]) {
    let end = offset as usize + w.len();
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[offset as usize..end].copy_from_slice(w);
}

impl State {
    /// Counts a mutating operation; fails it (and every later one) at the crash point.
    fn step(&mut self) -> io::Result<()> {
        if self.crashed {
            return Err(crashed());
        }
        if self.crash_at == Some(self.ops) {
            self.crashed = true;
            return Err(crashed());
        }
        self.ops += 1;
        Ok(())
    }
    fn alive(&self) -> io::Result<()> {
        if self.crashed { Err(crashed()) } else { Ok(()) }
    }
    fn dir_exists(&self, p: &Path) -> bool {
        p.as_os_str().is_empty() || self.dirs.contains(p)
    }
}

impl Fs for SimFs {
    fn concurrent_syncs(&self) -> bool {
        false
    }

    fn open(&self, path: &Path, mode: Mode) -> io::Result<Box<dyn FsFile>> {
        let mut s = self.state();
        s.alive()?;
        let ino = match (s.names.get(path).copied(), mode) {
            (Some(_), Mode::CreateNew) => {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            (Some(i), _) => i,
            (None, Mode::Read) => return Err(io::Error::from(io::ErrorKind::NotFound)),
            (None, _) => {
                if !s.dir_exists(&parent(path)) {
                    return Err(io::Error::from(io::ErrorKind::NotFound));
                }
                s.step()?;
                let i = s.next_inode;
                s.next_inode += 1;
                s.inodes.insert(i, Inode::default());
                s.names.insert(path.to_path_buf(), i);
                s.pending_names
                    .push((parent(path), NameOp::Link(path.to_path_buf(), i)));
                i
            }
        };
        Ok(Box::new(SimFile {
            fs: self.clone(),
            ino,
        }))
    }

    fn map(&self, path: &Path) -> io::Result<Mapped> {
        let s = self.state();
        s.alive()?;
        Ok(match s.names.get(path) {
            Some(i) => Mapped::owned(s.inodes[i].current.clone()),
            None => Mapped::empty(),
        })
    }

    fn len(&self, path: &Path) -> io::Result<Option<u64>> {
        let s = self.state();
        s.alive()?;
        Ok(s.names.get(path).map(|i| s.inodes[i].current.len() as u64))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state();
        let ino = s
            .names
            .get(from)
            .copied()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        s.step()?;
        s.names.remove(from);
        s.names.insert(to.to_path_buf(), ino);
        s.pending_names
            .push((parent(to), NameOp::Link(to.to_path_buf(), ino)));
        s.pending_names
            .push((parent(from), NameOp::Unlink(from.to_path_buf())));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state();
        if !s.names.contains_key(path) {
            s.alive()?;
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        s.step()?;
        s.names.remove(path);
        s.pending_names
            .push((parent(path), NameOp::Unlink(path.to_path_buf())));
        Ok(())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.step()?;
        let mut p = path.to_path_buf();
        loop {
            if p.as_os_str().is_empty() || !s.dirs.insert(p.clone()) {
                break;
            }
            if !p.pop() {
                break;
            }
        }
        Ok(())
    }

    fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        let s = self.state();
        s.alive()?;
        Ok(s.names
            .keys()
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.step()?;
        let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut s.pending_names)
            .into_iter()
            .partition(|(d, _)| d == path);
        for (_, op) in done {
            match op {
                NameOp::Link(p, i) => {
                    s.durable_names.insert(p, i);
                }
                NameOp::Unlink(p) => {
                    s.durable_names.remove(&p);
                }
            }
        }
        s.pending_names = rest;
        Ok(())
    }
}

struct SimFile {
    fs: SimFs,
    ino: u64,
}

impl FsFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let s = self.fs.state();
        s.alive()?;
        let bytes = &s.inodes[&self.ino].current;
        let start = (offset as usize).min(bytes.len());
        let n = buf.len().min(bytes.len() - start);
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mut s = self.fs.state();
        s.step()?;
        let inode = s.inodes.get_mut(&self.ino).expect("open inode");
        put(Arc::make_mut(&mut inode.current), offset, bytes);
        inode.pending.push(Pending::Write {
            offset,
            bytes: bytes.to_vec(),
        });
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut s = self.fs.state();
        s.step()?;
        let ino = self.ino;
        if s.lying.iter().any(|p| s.names.get(p) == Some(&ino)) {
            return Ok(());
        }
        let inode = s.inodes.get_mut(&self.ino).expect("open inode");
        inode.durable = inode.current.as_ref().clone();
        inode.pending.clear();
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.fs.state();
        s.step()?;
        let inode = s.inodes.get_mut(&self.ino).expect("open inode");
        Arc::make_mut(&mut inode.current).resize(len as usize, 0);
        inode.pending.push(Pending::SetLen(len));
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let s = self.fs.state();
        s.alive()?;
        Ok(s.inodes[&self.ino].current.len() as u64)
    }

    fn map(&self, len: u64) -> io::Result<Mapped> {
        let s = self.fs.state();
        s.alive()?;
        let cur = &s.inodes[&self.ino].current;
        Ok(if cur.len() as u64 == len {
            Mapped::owned(cur.clone())
        } else {
            Mapped::owned(Arc::new(cur[..(len as usize).min(cur.len())].to_vec()))
        })
    }

    fn try_lock(&self) -> io::Result<bool> {
        self.fs.state().alive()?;
        Ok(true)
    }

    fn unlock(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_bytes_survive_and_unsynced_ones_may_not() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("d")).unwrap();
        let f = fs.open(Path::new("d/f"), Mode::ReadWrite).unwrap();
        fs.sync_dir(Path::new("d")).unwrap();
        f.write_all_at(b"durable", 0).unwrap();
        f.sync_data().unwrap();
        f.write_all_at(&[7u8; 2000], 7).unwrap();
        let lost = fs.after_power_loss(Loss::All, 1);
        assert_eq!(lost.bytes(Path::new("d/f")).unwrap(), b"durable");
        // Over many seeds every outcome of the pending write appears: whole, lost, torn.
        let mut lens = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let after = fs.after_power_loss(Loss::Random, seed);
            let b = after.bytes(Path::new("d/f")).unwrap();
            assert_eq!(&b[..7], b"durable");
            assert!(b[7..].iter().all(|&x| x == 7));
            lens.insert(b.len());
        }
        assert!(lens.contains(&7) && lens.contains(&2007), "{lens:?}");
        assert!(lens.iter().any(|&l| l > 7 && l < 2007), "{lens:?}");
    }

    #[test]
    fn names_need_a_directory_sync_and_the_crash_point_stops_everything() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("d")).unwrap();
        let f = fs.open(Path::new("d/new"), Mode::ReadWrite).unwrap();
        f.write_all_at(b"x", 0).unwrap();
        f.sync_data().unwrap();
        assert!(
            fs.after_power_loss(Loss::All, 0)
                .bytes(Path::new("d/new"))
                .is_none()
        );
        fs.crash_at(fs.ops());
        assert!(f.write_all_at(b"y", 1).is_err());
        assert!(fs.has_crashed());
        assert!(f.read_at(&mut [0u8; 1], 0).is_err());
    }
}
