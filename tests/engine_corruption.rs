//! Corruption: a flipped byte in an SSTable, the WAL (before its tail), the
//! manifest or a value-log file. Allowed outcomes, and nothing else:
//! - open fails with a typed error naming the damaged file;
//! - open succeeds and reading fails with a typed error naming the file;
//! - open succeeds, recovery cut the damaged last record (or the manifest's
//!   last commit frame) as a torn tail and its report names the cut: the
//!   last acknowledged record has no later sync mark proving it synced;
//! - open and reads succeed and return exactly the data written (the byte
//!   was in a place that does not hold data, and nothing was lost); for
//!   tables, value-log files and the manifest every flip must be caught by
//!   one of the outcomes above.
//!
//! Never a panic, never a wrong or missing record without an error.
//!
//! The store is built on `FaultFs` (Sync durability, then a simulated power
//! cut) so a WAL with unflushed records exists next to SSTables and value-log
//! files; each case copies that state, flips one byte and reopens.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a test failure"
)]

mod engine_common;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use motedb::engine::fs::{FaultFs, FileSystem};
use motedb::engine::{Compression, Durability, Error, Nanos, Options, Store, TopicSpec};

const DB: &str = "/db";
const TOPICS: usize = 3;
const VALUE_THRESHOLD: usize = 256;

type Key = (String, Nanos, u64);
type Data = BTreeMap<Key, Vec<u8>>;

fn payload(topic: usize, t: Nanos) -> Vec<u8> {
    let len = if t % 5 == 0 {
        1500
    } else {
        (t % 120) as usize + 8
    };
    // Even topics' large payloads compress (stored encoded), odd ones not.
    engine_common::mixed_bytes(
        t.wrapping_mul(31) ^ ((topic as u64) << 40) ^ 0xC0FF_EE00_0000_0001,
        len,
        topic % 2 == 0,
    )
}

fn options(fs: &FaultFs) -> Options {
    let fs: Arc<dyn FileSystem> = Arc::new(fs.clone());
    Options {
        durability: Durability::Sync,
        memtable_bytes: 8 << 10,
        value_threshold: VALUE_THRESHOLD,
        block_size: 1024,
        compression: Compression::Lz4,
        fs,
        ..Options::default()
    }
}

fn spec(i: usize) -> TopicSpec {
    TopicSpec {
        name: format!("/corrupt_{i}"),
        type_name: "std_msgs/msg/ByteMultiArray".into(),
        serialization_format: "cdr".into(),
        ..TopicSpec::default()
    }
}

/// Builds a store with SSTables on two levels, value-log files and a WAL
/// holding unflushed records; returns the crashed (durable) state.
fn build() -> FaultFs {
    let fs = FaultFs::new();
    let store = Store::open(DB, options(&fs)).unwrap();
    let ids: Vec<_> = (0..TOPICS)
        .map(|i| store.register_topic(spec(i)).unwrap())
        .collect();
    for n in 0..900u64 {
        let i = (n % TOPICS as u64) as usize;
        let t = n * 10;
        store.append(ids[i], t, 0, &payload(i, t)).unwrap();
        if n == 600 {
            store.flush().unwrap();
            store.compact().unwrap();
        }
        if n == 800 {
            store.flush().unwrap();
        }
    }
    let after = fs.crash();
    drop(store);
    after
}

/// Everything readable: records keyed by topic name, time, sequence.
fn read_all(store: &Store) -> Result<Data, Error> {
    let mut out = Data::new();
    for info in store.topics() {
        for r in store.iter(&[info.id], 0, Nanos::MAX, false)? {
            let r = r?;
            out.insert((info.spec.name.clone(), r.log_time, r.sequence), r.payload);
        }
        if let Some(r) = store.latest(info.id, Nanos::MAX)? {
            out.entry((info.spec.name.clone(), r.log_time, r.sequence))
                .or_insert(r.payload);
        }
    }
    Ok(out)
}

/// The expected data, read back from the undamaged state (and checked
/// against the generator, so the baseline itself is right).
fn baseline(base: &FaultFs) -> Data {
    let fs = copy_of(base);
    let store = Store::open(DB, options(&fs)).unwrap();
    let data = read_all(&store).unwrap();
    assert_eq!(data.len(), 900, "baseline holds every record");
    for ((name, t, _), p) in &data {
        let i = (0..TOPICS).find(|&i| spec(i).name == *name).unwrap();
        assert!(*p == payload(i, *t), "baseline payload at {name} {t}");
    }
    data
}

fn copy_of(base: &FaultFs) -> FaultFs {
    let fs = FaultFs::new();
    fs.create_dir_all(Path::new(DB)).unwrap();
    for path in base.files() {
        fs.set_contents(&path, base.contents(&path).unwrap());
    }
    fs
}

/// The file a typed error names, if any.
fn named_file(e: &Error) -> Option<&Path> {
    match e {
        Error::Io { path, .. } => Some(path),
        Error::ChecksumMismatch { file, .. } => Some(file),
        Error::Corrupt { file, .. } => Some(file),
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    OpenError,
    ReadError,
    /// Recovery cut the damaged record as a torn tail and its report names
    /// the damaged file (the last acknowledged record, not yet proven
    /// synced by a later sync mark).
    CutAndReported,
    Intact,
}

/// Flips one byte of `victim` in a copy of `base`, reopens and judges.
fn flip_and_check(base: &FaultFs, want: &Data, victim: &Path, offset: usize) -> Outcome {
    let fs = copy_of(base);
    assert!(
        fs.flip_byte(victim, offset),
        "offset {offset} in {victim:?}"
    );
    let what = format!("{} @ {offset}", victim.display());
    let result = catch_unwind(AssertUnwindSafe(|| {
        let store = match Store::open(DB, options(&fs)) {
            Ok(s) => s,
            Err(e) => return (Outcome::OpenError, Some(e), None, None),
        };
        let report = store.recovery_report();
        match read_all(&store) {
            Ok(d) => (Outcome::Intact, None, Some(d), Some(report)),
            Err(e) => (Outcome::ReadError, Some(e), None, Some(report)),
        }
    }));
    let (outcome, err, data, report) = result.unwrap_or_else(|_| panic!("{what}: panicked"));
    if let Some(e) = err {
        let named = named_file(&e).unwrap_or_else(|| panic!("{what}: error names no file: {e}"));
        assert!(
            named.file_name() == victim.file_name(),
            "{what}: error names {named:?}, not the damaged file: {e}"
        );
        return outcome;
    }
    let data = data.unwrap();
    let report = report.unwrap();
    let missing: Vec<_> = want.keys().filter(|k| !data.contains_key(*k)).collect();
    // The last acknowledged record (Sync durability) has no sync mark after
    // it yet, so damage to it or its value-log payload looks like a torn
    // write: it may be cut, if the cut is reported naming the damaged file,
    // and then it is that one record only.
    let victim_name = victim.file_name().unwrap().to_string_lossy().into_owned();
    let torn_tail = report.wal_dropped_bytes > 0
        && match kind(victim) {
            Kind::Wal => true,
            Kind::Vlog => report
                .wal_truncated
                .iter()
                .any(|t| t.reason.contains(&victim_name)),
            _ => false,
        };
    assert!(
        missing.is_empty() || (torn_tail && missing.len() == 1),
        "{what}: records lost: {:?} ({} in all); recovery report: {report:?}",
        &missing[..missing.len().min(3)],
        missing.len()
    );
    for (k, p) in &data {
        let w = want
            .get(k)
            .unwrap_or_else(|| panic!("{what}: record {k:?} never written"));
        assert!(p == w, "{what}: wrong payload for {k:?}");
    }
    if torn_tail && !missing.is_empty() {
        return Outcome::CutAndReported;
    }
    // A flip in the manifest's last commit frame: it holds no edit, so
    // recovery drops it as a torn last write, reports it, loses nothing.
    if kind(victim) == Kind::Manifest && report.manifest_dropped_bytes > 0 {
        return Outcome::CutAndReported;
    }
    outcome
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sst,
    Wal,
    Manifest,
    Vlog,
    Other,
}

/// Tells files apart by name only to choose offsets; what the store reads
/// comes from its manifest, not from these names.
fn kind(path: &Path) -> Kind {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if name.ends_with(".sst") {
        Kind::Sst
    } else if name.contains("manifest") {
        Kind::Manifest
    } else if name.contains("vlog") || name.contains("blob") || name.ends_with(".val") {
        Kind::Vlog
    } else if name.contains("wal") || name.ends_with(".log") {
        Kind::Wal
    } else {
        Kind::Other
    }
}

/// The non-empty files of kind `k` that the store references. Background
/// flushes and compactions race the power cut in `build`, so the cut may
/// leave a table whose manifest edit was lost: recovery removes it, and a
/// byte flipped there changes nothing. Which files those are is read from
/// a copy after recovery ran on it.
fn files_of(base: &FaultFs, k: Kind) -> Vec<PathBuf> {
    let live = copy_of(base);
    drop(Store::open(DB, options(&live)).unwrap());
    let files: Vec<PathBuf> = base
        .files()
        .into_iter()
        .filter(|p| kind(p) == k)
        .filter(|p| base.contents(p).is_some_and(|c| !c.is_empty()))
        .filter(|p| live.contents(p).is_some())
        .collect();
    assert!(
        !files.is_empty(),
        "no non-empty {k:?} file among {:?}",
        base.files()
    );
    files
}

/// Offsets spread over `[from, to)` (jittered, so they do not all fall on
/// the same field of fixed-size records) plus the last byte.
fn offsets(from: usize, to: usize, count: usize) -> Vec<usize> {
    let span = to.saturating_sub(from).max(1);
    let mut v: Vec<usize> = (0..count)
        .map(|i| from + (span * i / count + 37 * i + 11) % span)
        .collect();
    v.push(to.saturating_sub(1));
    v.sort_unstable();
    v.dedup();
    v
}

fn sweep(k: Kind, region: impl Fn(usize) -> (usize, usize)) -> Vec<Outcome> {
    let base = build();
    let want = baseline(&base);
    let mut outcomes = Vec::new();
    for file in files_of(&base, k) {
        let len = base.contents(&file).unwrap().len();
        let (from, to) = region(len);
        let mut offs = offsets(from, to, 12);
        if to == len {
            // The last record of a log file is the one a torn-tail rule
            // might wrongly swallow.
            offs.extend([
                len.saturating_sub(2),
                len.saturating_sub(17),
                len.saturating_sub(41),
            ]);
        }
        for off in offs {
            outcomes.push(flip_and_check(&base, &want, &file, off));
        }
    }
    outcomes
}

/// Every byte of tables and value-log entries is covered by a checksum or
/// checked against the pointer that names it: every flip must be caught
/// (an error naming the file) or cut and reported by recovery.
fn assert_all_caught(outcomes: &[Outcome]) {
    let caught = outcomes.iter().filter(|o| **o != Outcome::Intact).count();
    assert!(
        caught == outcomes.len(),
        "only {caught} of {} flips caught: {outcomes:?}",
        outcomes.len()
    );
}

#[test]
fn flipped_byte_in_sstable_is_detected() {
    let outcomes = sweep(Kind::Sst, |len| (0, len));
    assert_all_caught(&outcomes);
}

#[test]
fn flipped_byte_in_wal_before_tail_is_an_error_naming_the_wal() {
    // The first half of a WAL is never its tail: a flip there must be
    // reported, not treated as a torn write.
    let outcomes = sweep(Kind::Wal, |len| (0, len / 2));
    assert!(
        outcomes.iter().all(|o| *o != Outcome::Intact),
        "a corrupt WAL record was skipped silently or not read: {outcomes:?}"
    );
}

#[test]
fn flipped_byte_in_manifest_is_detected() {
    let outcomes = sweep(Kind::Manifest, |len| (0, len));
    assert_all_caught(&outcomes);
}

#[test]
fn flipped_byte_in_value_log_is_detected() {
    let outcomes = sweep(Kind::Vlog, |len| (0, len));
    assert_all_caught(&outcomes);
}

#[test]
fn flipped_byte_anywhere_never_gives_wrong_data() {
    let base = build();
    let want = baseline(&base);
    for file in base.files() {
        let len = base.contents(&file).unwrap().len();
        if len == 0 || file.file_name().is_some_and(|n| n == "LOCK") {
            continue;
        }
        for off in offsets(0, len, 5) {
            flip_and_check(&base, &want, &file, off);
        }
    }
}

/// Truncating an SSTable (a lost tail of an immutable file) is corruption of
/// that file, reported by name.
#[test]
fn truncated_sstable_is_reported() {
    let base = build();
    let want = baseline(&base);
    let file = files_of(&base, Kind::Sst).remove(0);
    let bytes = base.contents(&file).unwrap();
    for cut in [bytes.len() - 1, bytes.len() / 2, 10] {
        let fs = copy_of(&base);
        fs.set_contents(&file, bytes[..cut].to_vec());
        let r = catch_unwind(AssertUnwindSafe(|| {
            Store::open(DB, options(&fs)).and_then(|s| read_all(&s))
        }))
        .unwrap_or_else(|_| panic!("truncated sst at {cut}: panicked"));
        match r {
            Ok(d) => assert_eq!(d, want, "truncated sst at {cut}: read succeeded"),
            Err(e) => {
                let named = named_file(&e).unwrap_or_else(|| panic!("names no file: {e}"));
                assert_eq!(named.file_name(), file.file_name(), "{e}");
            }
        }
    }
}
