//! Lookup by 32-byte key (entry id → index, artifact digest → log offset) that costs the
//! same whatever the ledger's size and needs no work at open.
//!
//! Records `key[32] || value u64 LE || check u64 LE` are appended to a dense file in log
//! order. Immutable sorted *runs* cover consecutive ranges of it (`NAME.START-END.run`); the
//! records after the last run (fewer than the tail limit, unless a run could not be written)
//! are searched in memory. When the tail is full a writer sorts it into a run, then merges the
//! last two runs while the older is at most twice the newer, so there are O(log n) runs and
//! each record is rewritten O(log n) times, in sequential writes.
//!
//! Every record carries a check over its index, where it sits (the dense position, or the run
//! and the position in it) and its contents, and every record a lookup reads is checked: a
//! damaged, moved or swapped record makes the lookup fail naming it, never answer wrongly —
//! a binary search whose probes all check takes the path it would take over the intact run,
//! so "absent" is as trustworthy as "found" (docs/FORMAT.md §"The index files"). Runs are
//! derived data: a missing or short run is simply not used, and `evl verify` compares each
//! with the records it covers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, OnceLock};

use super::files::{Dense, Mapped};
use super::io::{Fs, Mode};

/// Bytes per record.
pub const RECORD: usize = 48;
/// Bytes of a record that are sorted on and checked: key and value.
const KEYED: usize = 40;
/// First bytes of a run file.
pub const RUN_MAGIC: &[u8; 16] = b"evl-run/3\n\0\0\0\0\0\0";
/// By default a writer sorts the unindexed tail into a run once it holds this many records.
/// Every record a lookup reads is checked, and a lookup scans the whole unsorted tail: a
/// short tail keeps a single append's two lookups cheap (runs of 256 cost one more level of
/// merging than runs of 2,048; batches larger than the tail make a run of their own anyway).
pub const TAIL_MAX: u64 = 256;
/// Lookups that scan the unsorted tail before it is worth sorting it (a one-entry append
/// looks up two keys; sorting up to 256 records would cost more than those scans).
const SCANS_BEFORE_SORT: usize = 8;
/// Where a dense file's records sit, for their checks (a run's is its range, START < END).
pub const DENSE: (u64, u64) = (0, 0);

/// One index record: key and value.
pub type Rec = ([u8; 32], u64);

/// A record whose check does not match: the file (its name in the index directory) and the
/// record's position in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damaged {
    pub file: String,
    pub record: u64,
}

/// The index a record belongs to, bound into its check.
fn which(name: &str) -> u8 {
    match name {
        "ids" => 1,
        "blobs" => 2,
        _ => panic!("index: no keyed index named {name}"),
    }
}

/// The check of a record of index `name` at `position` in the file covering `scope`
/// ([`DENSE`] or a run's START..END): the XXH3-64 of
/// `which u8 || start u64 || end u64 || position u64 || key[32] || value u64` (little-endian).
pub fn check(name: &str, scope: (u64, u64), position: u64, keyed: &[u8]) -> u64 {
    let mut b = [0u8; 1 + 24 + KEYED];
    b[0] = which(name);
    b[1..9].copy_from_slice(&scope.0.to_le_bytes());
    b[9..17].copy_from_slice(&scope.1.to_le_bytes());
    b[17..25].copy_from_slice(&position.to_le_bytes());
    b[25..].copy_from_slice(&keyed[..KEYED]);
    xxhash_rust::xxh3::xxh3_64(&b)
}

/// Encodes a record of index `name` at `position` of the file covering `scope`.
pub fn encode(
    name: &str,
    scope: (u64, u64),
    position: u64,
    key: &[u8; 32],
    value: u64,
) -> [u8; RECORD] {
    let mut b = [0u8; RECORD];
    b[..32].copy_from_slice(key);
    b[32..40].copy_from_slice(&value.to_le_bytes());
    let c = check(name, scope, position, &b);
    b[40..].copy_from_slice(&c.to_le_bytes());
    b
}

/// The record of dense file `name` at `position` (what `index/ids` or `index/blobs` holds there).
pub fn dense_record(name: &str, position: u64, key: &[u8; 32], value: u64) -> [u8; RECORD] {
    encode(name, DENSE, position, key, value)
}

/// Decodes record `position` of dense file `name`, refusing it when its check does not match.
pub fn decode_dense(name: &str, position: u64, bytes: &[u8]) -> Option<Rec> {
    decode(name, DENSE, position, bytes)
}

/// Decodes a record, refusing one whose check does not match where it sits.
fn decode(name: &str, scope: (u64, u64), position: u64, bytes: &[u8]) -> Option<Rec> {
    let stored = u64::from_le_bytes(bytes[40..48].try_into().expect("8 bytes"));
    (check(name, scope, position, bytes) == stored).then(|| {
        (
            bytes[..32].try_into().expect("32 bytes"),
            u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes")),
        )
    })
}

/// The index's durability mark: the file `index/durable` holds two 32-byte slots, each
/// `seq u64 || commits u64 || size u64 || check u64` (the check an XXH3-64 of the byte 3 and
/// the first 24 bytes). The slot with the higher `seq` whose check matches says that the index
/// files' records of the first `commits` commits (`size` entries) were made durable. A writer
/// overwrites the older slot, so a torn write leaves the other.
pub const DURABLE: &str = "durable";

/// The durability mark read from `index/durable`: (seq, commits, size); zeros when none.
pub fn read_durable(fs: &dyn Fs, dir: &Path) -> (u64, u64, u64) {
    let Ok(bytes) = fs.read(&dir.join(DURABLE)) else {
        return (0, 0, 0);
    };
    bytes
        .chunks_exact(32)
        .take(2)
        .filter_map(|slot| {
            let u = |i: usize| u64::from_le_bytes(slot[i * 8..i * 8 + 8].try_into().expect("8"));
            (durable_check(&slot[..24]) == u(3)).then(|| (u(0), u(1), u(2)))
        })
        .max()
        .unwrap_or((0, 0, 0))
}

fn durable_check(fields: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(&[&[3u8][..], fields].concat())
}

/// Writes durability mark `seq` (the first `commits` commits, `size` entries) into its slot
/// and waits until it is on disk.
pub fn write_durable(
    fs: &dyn Fs,
    dir: &Path,
    seq: u64,
    commits: u64,
    size: u64,
) -> std::io::Result<()> {
    let mut slot = [0u8; 32];
    for (i, v) in [seq, commits, size].iter().enumerate() {
        slot[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    let c = durable_check(&slot[..24]);
    slot[24..].copy_from_slice(&c.to_le_bytes());
    let f = fs.open(&dir.join(DURABLE), Mode::ReadWrite)?;
    f.write_all_at(&slot, (seq % 2) * 32)?;
    f.sync_data()
}

/// The bytes of the run over `start..end` of index `name` holding `sorted` (key, value)
/// records: the magic, then each record encoded at its position.
pub fn run_bytes(name: &str, start: u64, end: u64, sorted: &[Rec]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RUN_MAGIC.len() + sorted.len() * RECORD);
    out.extend_from_slice(RUN_MAGIC);
    for (p, (k, v)) in sorted.iter().enumerate() {
        out.extend_from_slice(&encode(name, (start, end), p as u64, k, *v));
    }
    out
}

/// A sorted run over dense records `start..end`.
pub struct Run {
    pub start: u64,
    pub end: u64,
    pub path: PathBuf,
    name: &'static str,
    map: Arc<Mapped>,
}

impl Run {
    /// The encoded records, sorted by key.
    pub fn records(&self) -> &[u8] {
        &self.map.bytes()[RUN_MAGIC.len()..]
    }
    fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
    /// Record `i`, checked.
    pub fn get(&self, i: usize) -> Result<Rec, Damaged> {
        let bytes = &self.records()[i * RECORD..i * RECORD + RECORD];
        decode(self.name, (self.start, self.end), i as u64, bytes).ok_or_else(|| Damaged {
            file: run_name(self.name, self.start, self.end),
            record: i as u64,
        })
    }
    /// The first position whose key is not less than `key` (a prefix of a key compares as
    /// the smallest key it starts).
    ///
    /// Keys are BLAKE3 outputs, uniform over their range, so the search interpolates on their
    /// first 8 bytes: about log log n probes instead of log n page touches in a large run.
    /// A probe that does not at least halve the interval is followed by a bisection, so the
    /// worst case stays O(log n) whatever the keys. Probes read keys unchecked; the answer is
    /// checked instead: the record before it (here) and the record at it (by the caller, which
    /// reads it with [`Run::get`]). Two adjacent records that both check bracket the key
    /// whatever path led to them, because checked records sit at their positions in key
    /// order — so a damaged record can divert the search but never make its answer wrong
    /// unnoticed: it is either one of the two checked, or not between them.
    fn lower_bound(&self, key: &[u8]) -> Result<usize, Damaged> {
        let target = key_prefix(key);
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
            let k = self.key_unchecked(mid);
            // The first 8 bytes decide almost every comparison (a key's prefix pads with
            // zeros, which orders it as the smallest key it starts); the rest only on a tie.
            let pk = key_prefix(k);
            if pk < target || (pk == target && k < key) {
                lo = mid + 1;
                klo = pk;
            } else {
                hi = mid;
                khi = pk;
            }
            // After a probe that did not halve the interval, bisect once.
            interpolate = hi - lo <= span / 2;
        }
        if lo > 0 {
            let (k, _) = self.get(lo - 1)?;
            if k.as_slice() >= key {
                // Checked, yet out of order with the probes: the run is not sorted.
                return Err(Damaged {
                    file: run_name(self.name, self.start, self.end),
                    record: lo as u64 - 1,
                });
            }
        }
        Ok(lo)
    }

    /// The key bytes of record `i`, not checked (see [`Run::lower_bound`]).
    fn key_unchecked(&self, i: usize) -> &[u8] {
        &self.records()[i * RECORD..i * RECORD + 32]
    }
}

/// The first 8 bytes of a key (or key prefix, padded with zeros) as a big-endian integer:
/// ordered as the keys are, wherever they differ in those bytes.
fn key_prefix(k: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = k.len().min(8);
    b[..n].copy_from_slice(&k[..n]);
    u64::from_be_bytes(b)
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

/// Every well-formed run file name of index `name` in `dir`: (start, end, path), unsorted.
pub fn run_files(fs: &dyn Fs, dir: &Path, name: &str) -> Vec<(u64, u64, PathBuf)> {
    runs_in(dir, &fs.list(dir).unwrap_or_default(), name)
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
    fn map(&self, fs: &dyn Fs, path: &Path) -> Option<Arc<Mapped>> {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, m)) = cache.iter().find(|(p, _)| p == path) {
            return Some(m.clone());
        }
        let m = Arc::new(fs.map(path).ok()?);
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
    fs: &dyn Fs,
    dir: &Path,
    name: &'static str,
    count: u64,
    cache: &RunCache,
    listed: Option<&[String]>,
) -> Vec<Run> {
    let mut files = match listed {
        Some(l) => runs_in(dir, l, name),
        None => run_files(fs, dir, name),
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
        let Some(map) = cache.map(fs, &path) else {
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
            name,
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
    fs: Arc<dyn Fs>,
    dense: Dense<RECORD>,
    count: u64,
    tail_max: u64,
    runs: OnceLock<Vec<Run>>,
    tail: OnceLock<Result<Vec<Rec>, Damaged>>,
    scans: AtomicUsize,
    cache: Arc<RunCache>,
    listing: Listing,
}

impl Keyed {
    /// The index `name` in `dir` over its first `count` dense records, mapping its runs
    /// through `cache`; writers sort a tail of `tail_max` records into a run.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &'static str,
        dir: &Path,
        fs: Arc<dyn Fs>,
        dense: Dense<RECORD>,
        count: u64,
        tail_max: u64,
        cache: Arc<RunCache>,
        listing: Listing,
    ) -> Keyed {
        Keyed {
            name,
            dir: dir.to_path_buf(),
            fs,
            dense,
            count,
            tail_max,
            runs: OnceLock::new(),
            tail: OnceLock::new(),
            scans: AtomicUsize::new(0),
            cache,
            listing,
        }
    }

    /// The index's name (`ids` or `blobs`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The dense records.
    pub fn dense(&self) -> &Dense<RECORD> {
        &self.dense
    }

    /// The number of records.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Dense record `i`, checked; `None` beyond the count.
    pub fn get(&self, i: u64) -> Result<Option<Rec>, Damaged> {
        if i >= self.count {
            return Ok(None);
        }
        let Some(bytes) = self.dense.get(i) else {
            return Ok(None);
        };
        // Lazily: a lookup scanning the tail reads thousands of records that all check.
        decode(self.name, DENSE, i, bytes)
            .map(Some)
            .ok_or_else(|| Damaged {
                file: self.name.to_string(),
                record: i,
            })
    }

    /// The runs in use (listed and mapped on first use).
    pub fn runs(&self) -> &[Run] {
        self.runs.get_or_init(|| {
            let listed = self
                .listing
                .get_or_init(|| self.fs.list(&self.dir).unwrap_or_default());
            chain(
                &*self.fs,
                &self.dir,
                self.name,
                self.count,
                &self.cache,
                Some(listed),
            )
        })
    }

    /// Where the unindexed tail starts.
    pub fn tail_start(&self) -> u64 {
        self.runs().last().map_or(0, |r| r.end)
    }

    /// Records after which a writer sorts the tail into a run.
    pub fn tail_max(&self) -> u64 {
        self.tail_max
    }

    /// The tail, checked and sorted (on first use).
    fn tail(&self) -> Result<&[Rec], Damaged> {
        self.tail
            .get_or_init(|| {
                let mut t = (self.tail_start()..self.count)
                    .filter_map(|i| self.get(i).transpose())
                    .collect::<Result<Vec<Rec>, Damaged>>()?;
                t.sort_unstable();
                Ok(t)
            })
            .as_ref()
            .map(Vec::as_slice)
            .map_err(Clone::clone)
    }

    /// The value of the record with this key.
    pub fn lookup(&self, key: &[u8; 32]) -> Result<Option<u64>, Damaged> {
        for run in self.runs() {
            let i = run.lower_bound(key)?;
            if i < run.len() {
                let (k, v) = run.get(i)?;
                if k == *key {
                    return Ok(Some(v));
                }
            }
        }
        if self.tail.get().is_none()
            && self.scans.fetch_add(1, AtomicOrdering::Relaxed) < SCANS_BEFORE_SORT
        {
            for i in self.tail_start()..self.count {
                if let Some((k, v)) = self.get(i)?
                    && k == *key
                {
                    return Ok(Some(v));
                }
            }
            return Ok(None);
        }
        let tail = self.tail()?;
        let i = tail.partition_point(|(k, _)| k < key);
        Ok(tail.get(i).filter(|(k, _)| k == key).map(|(_, v)| *v))
    }

    /// Records whose key starts with `prefix` (whole bytes), at most `limit` of them.
    pub fn with_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<Rec>, Damaged> {
        let mut out = Vec::new();
        for run in self.runs() {
            let mut i = run.lower_bound(prefix)?;
            while i < run.len() && out.len() < limit {
                let r = run.get(i)?;
                if !r.0.starts_with(prefix) {
                    break;
                }
                out.push(r);
                i += 1;
            }
        }
        let tail = self.tail()?;
        let mut i = tail.partition_point(|(k, _)| k.as_slice() < prefix);
        while i < tail.len() && tail[i].0.starts_with(prefix) && out.len() < limit {
            out.push(tail[i]);
            i += 1;
        }
        Ok(out)
    }
}

/// Writes the run over `start..end` of index `name` holding `sorted`, atomically: a
/// temporary file, synced, then renamed into place (a few syncs per 256 records).
fn write_run(
    fs: &dyn Fs,
    dir: &Path,
    name: &str,
    start: u64,
    end: u64,
    bytes: &[u8],
) -> std::io::Result<()> {
    let path = dir.join(run_name(name, start, end));
    let tmp = path.with_extension("run.tmp");
    let f = fs.open(&tmp, Mode::ReadWrite)?;
    f.set_len(0)?;
    f.write_all_at(bytes, 0)?;
    // Durable before it has its name: after a power loss a run is whole or absent.
    f.sync_data()?;
    drop(f);
    fs.rename(&tmp, &path)
}

/// The bytes of the run over `start..end` of index `name` holding the records of `runs`
/// (oldest first; each record checked as it is read) and `mem` (sorted), merged in key
/// order; of equal records the one from the older source comes first.
fn merge_into_run(
    name: &str,
    start: u64,
    end: u64,
    runs: &[Run],
    mem: &[Rec],
) -> std::io::Result<Vec<u8>> {
    let total = runs.iter().map(Run::len).sum::<usize>() + mem.len();
    debug_assert_eq!(total as u64, end - start);
    let mut out = Vec::with_capacity(RUN_MAGIC.len() + total * RECORD);
    out.extend_from_slice(RUN_MAGIC);
    let damaged =
        |d: Damaged| std::io::Error::other(format!("{} record {} is damaged", d.file, d.record));
    // Each source's next position, and its record there (None once it is used up).
    let mut at = vec![0usize; runs.len() + 1];
    let mut heads: Vec<Option<Rec>> = Vec::with_capacity(runs.len() + 1);
    for r in runs {
        heads.push(if r.len() > 0 {
            Some(r.get(0).map_err(damaged)?)
        } else {
            None
        });
    }
    heads.push(mem.first().copied());
    for position in 0..total as u64 {
        let mut best: Option<(usize, u64)> = None;
        for (s, h) in heads.iter().enumerate() {
            let Some(r) = h else { continue };
            let p = key_prefix(&r.0);
            let less = match best {
                None => true,
                Some((b, bp)) => p < bp || (p == bp && *r < heads[b].expect("a head")),
            };
            if less {
                best = Some((s, p));
            }
        }
        let (s, _) = best.expect("records remain while positions do");
        let (k, v) = heads[s].expect("a head");
        out.extend_from_slice(&encode(name, (start, end), position, &k, v));
        at[s] += 1;
        heads[s] = match runs.get(s) {
            Some(r) if at[s] < r.len() => Some(r.get(at[s]).map_err(damaged)?),
            Some(_) => None,
            None => mem.get(at[s]).copied(),
        };
    }
    Ok(out)
}

/// A writer's upkeep after a commit, with the dense file holding exactly `count` records:
/// sort a full tail into a run, merge runs, and delete runs and temporary files nothing uses.
/// Records are checked as they are read, so a damaged record is never copied into a run.
pub fn compact(
    fs: &dyn Fs,
    dir: &Path,
    name: &'static str,
    dense: &Dense<RECORD>,
    count: u64,
    tail_max: u64,
    cache: &RunCache,
) -> std::io::Result<()> {
    let mut runs = chain(fs, dir, name, count, cache, None);
    let tail_start = runs.last().map_or(0, |r| r.end);
    // The newest run (a full tail, sorted in memory, or else the newest run file) is merged
    // with the runs below it while each is no more than twice the size merged so far, in one
    // pass into the new run's bytes, written once: a tail sorted into a run that is merged at
    // once is never written (and synced) on its own. The chain that results is the one
    // merging two at a time would give, as the decision rests on the runs' lengths alone.
    let tail: Option<Vec<Rec>> = if count - tail_start >= tail_max {
        let mut tail: Vec<Rec> = (tail_start..count)
            .map(|i| {
                let bytes = dense.get(i).expect("dense record below count");
                decode(name, DENSE, i, bytes)
                    .ok_or_else(|| std::io::Error::other(format!("{name} record {i} is damaged")))
            })
            .collect::<std::io::Result<_>>()?;
        tail.sort_unstable();
        Some(tail)
    } else {
        None
    };
    let (mut below, mut size) = match &tail {
        Some(t) => (runs.len(), t.len()),
        None => (
            runs.len().saturating_sub(1),
            runs.last().map_or(0, Run::len),
        ),
    };
    while below > 0 && runs[below - 1].len() <= 2 * size {
        below -= 1;
        size += runs[below].len();
    }
    let merged_runs = &runs[below..];
    if tail.is_some() || merged_runs.len() >= 2 {
        let start = merged_runs.first().map_or(tail_start, |r| r.start);
        let end = if tail.is_some() { count } else { tail_start };
        let bytes = merge_into_run(
            name,
            start,
            end,
            merged_runs,
            tail.as_deref().unwrap_or(&[]),
        )?;
        write_run(fs, dir, name, start, end, &bytes)?;
        runs = chain(fs, dir, name, count, cache, None);
    }
    // Anything not in the chain is superseded (merged) or left by an interrupted writer.
    let keep: Vec<&Path> = runs.iter().map(|r| r.path.as_path()).collect();
    for (_, _, path) in run_files(fs, dir, name) {
        if !keep.contains(&path.as_path()) {
            let _ = fs.remove_file(&path);
        }
    }
    for file in fs.list(dir).unwrap_or_default() {
        if file.starts_with(name) && file.ends_with(".run.tmp") {
            let _ = fs.remove_file(&dir.join(file));
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

    use super::super::io::RealFs;
    use std::fs;

    fn dense_of(dir: &Path, n: u64) -> Dense<RECORD> {
        let path = dir.join("ids");
        let bytes: Vec<u8> = (0..n)
            .flat_map(|i| encode("ids", DENSE, i, &key(i), i))
            .collect();
        fs::write(&path, bytes).unwrap();
        Dense::new(RealFs.map(&path).unwrap(), n)
    }

    fn compact_n(dir: &Path, n: u64) {
        let dense = dense_of(dir, n);
        compact(
            &RealFs,
            dir,
            "ids",
            &dense,
            n,
            TAIL_MAX,
            &RunCache::default(),
        )
        .unwrap();
    }

    /// Compacts the first `n` records of a fresh dense file, then opens the index over them.
    fn indexed(dir: &Path, n: u64) -> Keyed {
        compact_n(dir, n);
        keyed(dir, n)
    }

    fn keyed(dir: &Path, n: u64) -> Keyed {
        Keyed::new(
            "ids",
            dir,
            RealFs::shared(),
            dense_of(dir, n),
            n,
            TAIL_MAX,
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
            compact_n(dir.path(), n);
            let k = keyed(dir.path(), n);
            assert!(n - k.tail_start() < TAIL_MAX, "tail too long at {n}");
            for i in (0..n).step_by(7).chain([n - 1]) {
                assert_eq!(k.lookup(&key(i)), Ok(Some(i)), "record {i} of {n}");
            }
            assert_eq!(k.lookup(&key(n)), Ok(None));
            let runs: Vec<u64> = k.runs().iter().map(|r| r.end - r.start).collect();
            for w in runs.windows(2) {
                assert!(w[0] > 2 * w[1], "runs not geometric at {n}: {runs:?}");
            }
            sizes.push(runs.len());
            // Only the chain's files remain.
            assert_eq!(run_files(&RealFs, dir.path(), "ids").len(), runs.len());
        }
        assert!(sizes.iter().all(|&s| s <= 4), "{sizes:?}");
    }

    /// Runs left unmerged (as by a writer interrupted between writing them) are merged by the
    /// next upkeep even without a new tail, in one pass, into exactly the bytes of the run
    /// of their records sorted.
    #[test]
    fn unmerged_runs_merge_into_the_run_of_their_sorted_records() {
        let dir = tempfile::tempdir().unwrap();
        let sorted = |a: u64, b: u64| {
            let mut r: Vec<Rec> = (a..b).map(|i| (key(i), i)).collect();
            r.sort_unstable();
            r
        };
        // Compacting the first `n` records leaves one run: their records, sorted, as a run.
        let one_run_after = |n: u64| {
            compact_n(dir.path(), n);
            let files = run_files(&RealFs, dir.path(), "ids");
            assert_eq!(files.len(), 1, "{files:?}");
            assert_eq!((files[0].0, files[0].1), (0, n));
            let want = run_bytes("ids", 0, n, &sorted(0, n));
            assert_eq!(fs::read(&files[0].2).unwrap(), want);
        };
        let n = 4 * TAIL_MAX;
        for (a, b) in [
            (0, 2 * TAIL_MAX),
            (2 * TAIL_MAX, 3 * TAIL_MAX),
            (3 * TAIL_MAX, n),
        ] {
            let bytes = run_bytes("ids", a, b, &sorted(a, b));
            write_run(&RealFs, dir.path(), "ids", a, b, &bytes).unwrap();
        }
        one_run_after(n);
        // A full tail on top merges with them in the same pass.
        one_run_after(n + 2 * TAIL_MAX);
    }

    #[test]
    fn a_short_or_foreign_run_is_not_used_and_lookups_still_work() {
        let dir = tempfile::tempdir().unwrap();
        let n = 3 * TAIL_MAX;
        compact_n(dir.path(), n);
        let (_, _, path) = run_files(&RealFs, dir.path(), "ids").remove(0);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let k = keyed(dir.path(), n);
        assert_eq!(k.tail_start(), 0);
        assert_eq!(k.lookup(&key(5)), Ok(Some(5)));
        assert_eq!(k.lookup(&key(n - 1)), Ok(Some(n - 1)));
    }

    /// Damage to a run or the dense file never makes a lookup answer wrongly: every lookup
    /// over the damaged index either gives the intact answer or names a damaged record.
    #[test]
    fn damaged_records_make_lookups_fail_never_answer_wrongly() {
        let n = TAIL_MAX + 300;
        let probes: Vec<u64> = (0..n + 40).step_by(13).collect();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut refused = 0;
        for round in 0..120 {
            let dir = tempfile::tempdir().unwrap();
            compact_n(dir.path(), n);
            let (_, _, run) = run_files(&RealFs, dir.path(), "ids").remove(0);
            let target = if round % 3 == 0 {
                dir.path().join("ids")
            } else {
                run
            };
            let mut bytes = fs::read(&target).unwrap();
            let body = if round % 3 == 0 { 0 } else { RUN_MAGIC.len() };
            let records = (bytes.len() - body) / RECORD;
            match round % 4 {
                // A flipped bit.
                0 | 1 => {
                    let at = body + (next() as usize) % (bytes.len() - body);
                    bytes[at] ^= 1 << (next() % 8);
                }
                // Two records swapped.
                2 => {
                    let (i, j) = (next() as usize % records, next() as usize % records);
                    if i == j {
                        continue;
                    }
                    for b in 0..RECORD {
                        bytes.swap(body + i * RECORD + b, body + j * RECORD + b);
                    }
                }
                // A record replaced by a well-formed record from elsewhere in the file.
                _ => {
                    let (i, j) = (next() as usize % records, next() as usize % records);
                    let from = bytes[body + j * RECORD..body + (j + 1) * RECORD].to_vec();
                    bytes[body + i * RECORD..body + (i + 1) * RECORD].copy_from_slice(&from);
                }
            }
            fs::write(&target, &bytes).unwrap();
            let k = keyed(dir.path(), n);
            for &i in &probes {
                let want = (i < n).then_some(i);
                match k.lookup(&key(i)) {
                    Ok(got) => assert_eq!(got, want, "round {round}: key {i} answered wrongly"),
                    Err(_) => refused += 1,
                }
            }
        }
        assert!(refused > 0, "no damage was ever noticed");
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
            let mut sorted: Vec<Rec> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| (*k, i as u64))
                .collect();
            sorted.sort_unstable();
            sorted.dedup_by(|a, b| a.0 == b.0);
            let n = sorted.len() as u64;
            let bytes = run_bytes("ids", 0, n, &sorted);
            write_run(&RealFs, dir.path(), "ids", 0, n, &bytes).unwrap();
            let run = chain(&RealFs, dir.path(), "ids", n, &RunCache::default(), None).remove(0);
            let mut probes: Vec<[u8; 32]> = keys.clone();
            probes.extend((0..500).map(|_| {
                let mut k = keys[(next() % keys.len() as u64) as usize];
                k[31] ^= 1;
                k
            }));
            probes.extend([[0u8; 32], [0xff; 32]]);
            for p in probes {
                let want = sorted.partition_point(|r| r.0 < p);
                assert_eq!(run.lower_bound(&p), Ok(want));
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
            let found = k.with_prefix(&want[..3], 10).unwrap();
            assert!(found.contains(&(want, i)), "{i}");
            assert!(found.iter().all(|(k, _)| k[..3] == want[..3]));
        }
    }
}
