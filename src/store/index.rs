//! Lookup by 32-byte key (entry id → index, artifact digest → log offset) that costs the
//! same whatever the ledger's size and needs no work at open.
//!
//! Records `key[32] || value u64 LE` are appended to a dense file in log order. Immutable
//! sorted *runs* cover consecutive ranges of it (`NAME.START-END.run`); the records after the
//! last run (fewer than [`TAIL_MAX`], unless a run could not be written) are searched in
//! memory. When the tail is full a writer sorts it into a run, then merges the last two runs
//! while the older is at most twice the newer, so there are O(log n) runs and each record is
//! rewritten O(log n) times, in sequential writes. Runs are derived data: a missing or short
//! run is simply not used, and `evl verify` compares each with the records it covers.

use std::cmp::Ordering;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, OnceLock};

use super::files::{Dense, Mapped};

/// Bytes per record.
pub const RECORD: usize = 40;
/// First bytes of a run file.
pub const RUN_MAGIC: &[u8; 16] = b"evl-run/2\n\0\0\0\0\0\0";
/// A writer sorts the unindexed tail into a run once it holds this many records.
pub const TAIL_MAX: u64 = 2048;
/// Lookups that scan the unsorted tail before it is worth sorting it (a one-entry append
/// looks up two keys; sorting up to 2,048 records would cost more than those scans).
const SCANS_BEFORE_SORT: usize = 8;

/// One index record.
pub type Rec = ([u8; 32], u64);

fn rec(bytes: &[u8]) -> Rec {
    (
        bytes[..32].try_into().expect("32 bytes"),
        u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes")),
    )
}

/// Encodes a record.
pub fn encode(key: &[u8; 32], value: u64) -> [u8; RECORD] {
    let mut b = [0u8; RECORD];
    b[..32].copy_from_slice(key);
    b[32..].copy_from_slice(&value.to_le_bytes());
    b
}

/// A sorted run over dense records `start..end`.
pub struct Run {
    pub start: u64,
    pub end: u64,
    pub path: PathBuf,
    map: Arc<Mapped>,
}

impl Run {
    /// The sorted records.
    pub fn records(&self) -> &[u8] {
        &self.map.bytes()[RUN_MAGIC.len()..]
    }
    fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
    fn key(&self, i: usize) -> &[u8] {
        &self.records()[i * RECORD..i * RECORD + 32]
    }
    /// The first position whose key is not less than `key`.
    ///
    /// Keys are BLAKE3 outputs, uniform over their range, so the search interpolates on their
    /// first 8 bytes: about log log n probes instead of log n page touches in a large run.
    /// A probe that does not at least halve the interval is followed by a bisection, so the
    /// worst case stays O(log n) whatever the keys.
    fn lower_bound(&self, key: &[u8]) -> usize {
        let prefix = |k: &[u8]| -> u64 {
            let mut b = [0u8; 8];
            let n = k.len().min(8);
            b[..n].copy_from_slice(&k[..n]);
            u64::from_be_bytes(b)
        };
        let target = prefix(key);
        // Keys before `lo` are less than `key`, keys from `hi` on are not, and the prefixes of
        // the keys in lo..hi lie within klo..=khi.
        let (mut lo, mut hi) = (0usize, self.len());
        let (mut klo, mut khi) = (0u64, u64::MAX);
        let mut interpolate = true;
        while lo < hi {
            let span = hi - lo;
            let mid = if interpolate && span > 8 && khi > klo {
                let t = target.clamp(klo, khi);
                lo + ((t - klo) as u128 * (span as u128 - 1) / (khi - klo) as u128) as usize
            } else {
                lo + span / 2
            };
            let k = self.key(mid);
            if k < key {
                lo = mid + 1;
                klo = prefix(k);
            } else {
                hi = mid;
                khi = prefix(k);
            }
            // After a probe that did not halve the interval, bisect once.
            interpolate = hi - lo <= span / 2;
        }
        lo
    }
}

/// The file name of the run over `start..end` of index `name`.
pub fn run_name(name: &str, start: u64, end: u64) -> String {
    format!("{name}.{start}-{end}.run")
}

/// Parses a run file name of index `name`.
fn parse_run_name(name: &str, file: &str) -> Option<(u64, u64)> {
    let rest = file.strip_prefix(name)?.strip_prefix('.')?;
    let range = rest.strip_suffix(".run")?;
    let (s, e) = range.split_once('-')?;
    let (s, e) = (s.parse().ok()?, e.parse().ok()?);
    (s < e).then_some((s, e))
}

/// The names of the files in `dir` (none if it cannot be read).
pub fn list(dir: &Path) -> Vec<String> {
    let Ok(listing) = fs::read_dir(dir) else {
        return Vec::new();
    };
    listing
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect()
}

/// Every well-formed run file of index `name` in `dir`: (start, end, path), unsorted.
pub fn run_files(dir: &Path, name: &str) -> Vec<(u64, u64, PathBuf)> {
    runs_in(dir, &list(dir), name)
}

/// The run files of index `name` among `files`, the names in `dir`.
fn runs_in(dir: &Path, files: &[String], name: &str) -> Vec<(u64, u64, PathBuf)> {
    files
        .iter()
        .filter_map(|f| {
            let (s, t) = parse_run_name(name, f)?;
            Some((s, t, dir.join(f)))
        })
        .collect()
}

/// The index directory's file names, listed once for both indexes of a view.
pub type Listing = Arc<OnceLock<Vec<String>>>;

/// Maps of run files kept across views of one open ledger: a run never changes once written,
/// and re-mapping it for every append would make each lookup fault its pages in again.
#[derive(Default)]
pub struct RunCache(Mutex<Vec<(PathBuf, Arc<Mapped>)>>);

impl RunCache {
    fn map(&self, path: &Path) -> Option<Arc<Mapped>> {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, m)) = cache.iter().find(|(p, _)| p == path) {
            return Some(m.clone());
        }
        let m = Arc::new(Mapped::open(path).ok()?);
        cache.push((path.to_path_buf(), m.clone()));
        Some(m)
    }
    /// Forgets every map but those of `keep`.
    fn retain(&self, keep: &[Run]) {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|(p, _)| keep.iter().any(|r| r.path == *p));
    }
}

/// The chain of usable runs from record 0 within `count` records: at each point the longest
/// run that starts there and has the expected length and magic.
fn chain(
    dir: &Path,
    name: &str,
    count: u64,
    cache: &RunCache,
    listed: Option<&[String]>,
) -> Vec<Run> {
    let mut files = match listed {
        Some(l) => runs_in(dir, l, name),
        None => run_files(dir, name),
    };
    files.retain(|(_, e, _)| *e <= count);
    // Longest first among runs with the same start.
    files.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut runs: Vec<Run> = Vec::new();
    let mut at = 0u64;
    for (s, e, path) in files {
        if s != at {
            continue;
        }
        let Some(map) = cache.map(&path) else {
            continue;
        };
        let want = RUN_MAGIC.len() as u64 + (e - s) * RECORD as u64;
        if map.bytes().len() as u64 != want || !map.bytes().starts_with(RUN_MAGIC) {
            continue;
        }
        runs.push(Run {
            start: s,
            end: e,
            path,
            map,
        });
        at = e;
    }
    cache.retain(&runs);
    runs
}

/// A keyed index as of some count of dense records.
pub struct Keyed {
    name: &'static str,
    dir: PathBuf,
    dense: Dense<RECORD>,
    count: u64,
    runs: OnceLock<Vec<Run>>,
    tail: OnceLock<Vec<Rec>>,
    scans: AtomicUsize,
    cache: Arc<RunCache>,
    listing: Listing,
}

impl Keyed {
    /// The index `name` in `dir` over its first `count` dense records, mapping its runs
    /// through `cache`.
    pub fn new(
        name: &'static str,
        dir: &Path,
        dense: Dense<RECORD>,
        count: u64,
        cache: Arc<RunCache>,
        listing: Listing,
    ) -> Keyed {
        Keyed {
            name,
            dir: dir.to_path_buf(),
            dense,
            count,
            runs: OnceLock::new(),
            tail: OnceLock::new(),
            scans: AtomicUsize::new(0),
            cache,
            listing,
        }
    }

    /// The dense records.
    pub fn dense(&self) -> &Dense<RECORD> {
        &self.dense
    }

    /// Dense record `i`.
    pub fn get(&self, i: u64) -> Option<Rec> {
        (i < self.count).then(|| self.dense.get(i).map(|b| rec(b)))?
    }

    /// The runs in use (listed and mapped on first use).
    pub fn runs(&self) -> &[Run] {
        self.runs.get_or_init(|| {
            let listed = self.listing.get_or_init(|| list(&self.dir));
            chain(&self.dir, self.name, self.count, &self.cache, Some(listed))
        })
    }

    /// Where the unindexed tail starts.
    pub fn tail_start(&self) -> u64 {
        self.runs().last().map_or(0, |r| r.end)
    }

    /// The tail, sorted (on first use).
    fn tail(&self) -> &[Rec] {
        self.tail.get_or_init(|| {
            let mut t: Vec<Rec> = (self.tail_start()..self.count)
                .filter_map(|i| self.get(i))
                .collect();
            t.sort_unstable();
            t
        })
    }

    /// The value of the first record with this key.
    pub fn lookup(&self, key: &[u8; 32]) -> Option<u64> {
        for run in self.runs() {
            let i = run.lower_bound(key);
            if i < run.len() && run.key(i) == key {
                return Some(rec(&run.records()[i * RECORD..]).1);
            }
        }
        if self.tail.get().is_none()
            && self.scans.fetch_add(1, AtomicOrdering::Relaxed) < SCANS_BEFORE_SORT
        {
            return (self.tail_start()..self.count)
                .filter_map(|i| self.get(i))
                .find(|(k, _)| k == key)
                .map(|(_, v)| v);
        }
        let tail = self.tail();
        let i = tail.partition_point(|(k, _)| k < key);
        tail.get(i).filter(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Records whose key starts with `prefix` (whole bytes), at most `limit` of them.
    pub fn with_prefix(&self, prefix: &[u8], limit: usize) -> Vec<Rec> {
        let mut out = Vec::new();
        for run in self.runs() {
            let mut i = run.lower_bound(prefix);
            while i < run.len() && run.key(i).starts_with(prefix) && out.len() < limit {
                out.push(rec(&run.records()[i * RECORD..]));
                i += 1;
            }
        }
        let tail = self.tail();
        let mut i = tail.partition_point(|(k, _)| k.as_slice() < prefix);
        while i < tail.len() && tail[i].0.starts_with(prefix) && out.len() < limit {
            out.push(tail[i]);
            i += 1;
        }
        out
    }
}

/// Writes the sorted `records` as the run over `start..end` of index `name`, atomically
/// (a temporary file renamed into place). Runs are derived data and are not fsynced: one
/// that did not reach the disk is shorter than its name says and is not used.
fn write_run(dir: &Path, name: &str, start: u64, end: u64, records: &[u8]) -> std::io::Result<()> {
    let path = dir.join(run_name(name, start, end));
    let tmp = path.with_extension("run.tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(RUN_MAGIC)?;
    f.write_all(records)?;
    drop(f);
    fs::rename(&tmp, &path)
}

/// Merges two sorted record arrays.
fn merge(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (&a[i..i + RECORD], &b[j..j + RECORD]);
        if x.cmp(y) != Ordering::Greater {
            out.extend_from_slice(x);
            i += RECORD;
        } else {
            out.extend_from_slice(y);
            j += RECORD;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// A writer's upkeep after a commit, with the dense file holding exactly `count` records:
/// sort a full tail into a run, merge runs, and delete runs and temporary files nothing uses.
pub fn compact(
    dir: &Path,
    name: &'static str,
    dense: &Dense<RECORD>,
    count: u64,
    cache: &RunCache,
) -> std::io::Result<()> {
    let mut runs = chain(dir, name, count, cache, None);
    let tail_start = runs.last().map_or(0, |r| r.end);
    if count - tail_start >= TAIL_MAX {
        let mut tail: Vec<[u8; RECORD]> = (tail_start..count)
            .map(|i| *dense.get(i).expect("dense record below count"))
            .collect();
        tail.sort_unstable();
        write_run(dir, name, tail_start, count, tail.as_flattened())?;
        runs = chain(dir, name, count, cache, None);
    }
    while runs.len() >= 2 {
        let (a, b) = (&runs[runs.len() - 2], &runs[runs.len() - 1]);
        if a.len() > 2 * b.len() {
            break;
        }
        let merged = merge(a.records(), b.records());
        write_run(dir, name, a.start, b.end, &merged)?;
        runs = chain(dir, name, count, cache, None);
    }
    // Anything not in the chain is superseded (merged) or left by an interrupted writer.
    let keep: Vec<&Path> = runs.iter().map(|r| r.path.as_path()).collect();
    for (_, _, path) in run_files(dir, name) {
        if !keep.contains(&path.as_path()) {
            let _ = fs::remove_file(path);
        }
    }
    if let Ok(listing) = fs::read_dir(dir) {
        for e in listing.filter_map(|e| e.ok()) {
            let file = e.file_name();
            let file = file.to_string_lossy();
            if file.starts_with(name) && file.ends_with(".run.tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> [u8; 32] {
        *blake3::hash(&n.to_le_bytes()).as_bytes()
    }

    fn dense_of(dir: &Path, n: u64) -> Dense<RECORD> {
        let path = dir.join("ids");
        let bytes: Vec<u8> = (0..n).flat_map(|i| encode(&key(i), i)).collect();
        fs::write(&path, bytes).unwrap();
        Dense::new(Mapped::open(&path).unwrap(), n)
    }

    /// Compacts the first `n` records of a fresh dense file, then opens the index over them.
    fn indexed(dir: &Path, n: u64) -> Keyed {
        compact(dir, "ids", &dense_of(dir, n), n, &RunCache::default()).unwrap();
        keyed(dir, n)
    }

    fn keyed(dir: &Path, n: u64) -> Keyed {
        Keyed::new(
            "ids",
            dir,
            dense_of(dir, n),
            n,
            Default::default(),
            Default::default(),
        )
    }

    #[test]
    fn lookups_find_every_record_through_runs_and_tail_as_the_index_grows() {
        let dir = tempfile::tempdir().unwrap();
        let mut sizes = Vec::new();
        for n in [
            1,
            100,
            TAIL_MAX - 1,
            TAIL_MAX,
            TAIL_MAX + 5,
            3 * TAIL_MAX,
            7 * TAIL_MAX + 11,
        ] {
            let dense = dense_of(dir.path(), n);
            compact(dir.path(), "ids", &dense, n, &RunCache::default()).unwrap();
            let k = keyed(dir.path(), n);
            assert!(n - k.tail_start() < TAIL_MAX, "tail too long at {n}");
            for i in (0..n).step_by(7).chain([n - 1]) {
                assert_eq!(k.lookup(&key(i)), Some(i), "record {i} of {n}");
            }
            assert_eq!(k.lookup(&key(n)), None);
            let runs: Vec<u64> = k.runs().iter().map(|r| r.end - r.start).collect();
            for w in runs.windows(2) {
                assert!(w[0] > 2 * w[1], "runs not geometric at {n}: {runs:?}");
            }
            sizes.push(runs.len());
            // Only the chain's files remain.
            assert_eq!(run_files(dir.path(), "ids").len(), runs.len());
        }
        assert!(sizes.iter().all(|&s| s <= 4), "{sizes:?}");
    }

    #[test]
    fn a_short_or_foreign_run_is_not_used_and_lookups_still_work() {
        let dir = tempfile::tempdir().unwrap();
        let n = 3 * TAIL_MAX;
        compact(
            dir.path(),
            "ids",
            &dense_of(dir.path(), n),
            n,
            &RunCache::default(),
        )
        .unwrap();
        let (_, _, path) = run_files(dir.path(), "ids").remove(0);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let k = keyed(dir.path(), n);
        assert_eq!(k.tail_start(), 0);
        assert_eq!(k.lookup(&key(5)), Some(5));
        assert_eq!(k.lookup(&key(n - 1)), Some(n - 1));
    }

    #[test]
    fn interpolated_search_agrees_with_bisection_whatever_the_keys() {
        // Uniform keys, clustered keys (a shared 7-byte prefix), and keys that differ only
        // past the 8 bytes the search interpolates on.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let sets: Vec<Vec<[u8; 32]>> = vec![
            (0..3000u64).map(key).collect(),
            (0..3000)
                .map(|_| {
                    let mut k = [0xab; 32];
                    k[7] = next() as u8;
                    k[8..16].copy_from_slice(&next().to_be_bytes());
                    k
                })
                .collect(),
            (0..3000u64)
                .map(|i| {
                    let mut k = [0u8; 32];
                    k[20..28].copy_from_slice(&i.to_be_bytes());
                    k
                })
                .collect(),
        ];
        for keys in sets {
            let dir = tempfile::tempdir().unwrap();
            let mut sorted: Vec<[u8; RECORD]> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| encode(k, i as u64))
                .collect();
            sorted.sort_unstable();
            sorted.dedup_by(|a, b| a[..32] == b[..32]);
            let n = sorted.len() as u64;
            write_run(dir.path(), "ids", 0, n, sorted.as_flattened()).unwrap();
            let run = chain(dir.path(), "ids", n, &RunCache::default(), None).remove(0);
            let mut probes: Vec<[u8; 32]> = keys.clone();
            probes.extend((0..500).map(|_| {
                let mut k = keys[(next() % keys.len() as u64) as usize];
                k[31] ^= 1;
                k
            }));
            probes.extend([[0u8; 32], [0xff; 32]]);
            for p in probes {
                let want = sorted.partition_point(|r| r[..32] < p[..]);
                assert_eq!(run.lower_bound(&p), want);
            }
        }
    }

    #[test]
    fn prefix_search_finds_matches_in_runs_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let n = 2 * TAIL_MAX + 100;
        let k = indexed(dir.path(), n);
        for i in [0, 1, TAIL_MAX + 3, n - 1] {
            let want = key(i);
            let found = k.with_prefix(&want[..3], 10);
            assert!(found.contains(&(want, i)), "{i}");
            assert!(found.iter().all(|(k, _)| k[..3] == want[..3]));
        }
    }
}
