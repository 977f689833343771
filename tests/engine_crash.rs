//! Crash consistency on the fault-injecting file layer (`FaultFs`).
//!
//! A workload (appends over topics, small and value-log payloads, flushes,
//! compactions, explicit syncs) runs until an injected failure (the Nth write
//! or the Nth fsync) or a simulated power cut after K appends. The file
//! system then keeps only its durable state (optionally plus a torn prefix of
//! the bytes written after the last fsync of each file) and the store is
//! reopened. It must open, hold every record acknowledged as durable, hold
//! nothing that was never written, and never reuse a visible sequence.
//!
//! Crash points per mode: MOTEDB_CRASH_POINTS (default 40).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a test failure"
)]

mod engine_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use motedb::engine::fs::{FaultFs, FileSystem};
use motedb::engine::{
    Compression, Durability, Error, Nanos, Options, Record, RecoveryReport, Store, TopicId,
    TopicSpec, Tuning,
};

const DB: &str = "/db";
const TOPICS: usize = 3;
const VALUE_THRESHOLD: usize = 256;

/// (topic name index, log_time)
type Key = (usize, Nanos);

fn payload(topic: usize, t: Nanos) -> Vec<u8> {
    let len = match t % 11 {
        0 => VALUE_THRESHOLD + 700,
        1..=3 => 0,
        _ => (t % 97) as usize + 10,
    };
    // Even topics' large payloads compress (stored encoded), odd ones not.
    engine_common::mixed_bytes(
        (t << 3) ^ topic as u64 ^ 0xA5A5_0000_0000_0001,
        len,
        topic % 2 == 0,
    )
}

fn spec(i: usize) -> TopicSpec {
    TopicSpec {
        name: format!("/crash_{i}"),
        type_name: "std_msgs/msg/ByteMultiArray".into(),
        serialization_format: "cdr".into(),
        definition: String::new(),
        offered_qos: String::new(),
        type_hash: String::new(),
    }
}

fn options(fs: &FaultFs, durability: Durability) -> Options {
    let fs: Arc<dyn FileSystem> = Arc::new(fs.clone());
    // Small value-log files, so that sealing one and starting the next
    // happens inside the workload too.
    let tuning = Tuning {
        vlog_file_bytes: 8 << 10,
        ..Tuning::default()
    };
    Options {
        tuning,
        durability,
        memtable_bytes: 4 << 10,
        value_threshold: VALUE_THRESHOLD,
        block_size: 512,
        compression: Compression::Lz4,
        fs,
        ..Options::default()
    }
}

/// How the workload makes records durable.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Durability::Sync: every acknowledged append is durable.
    SyncEach,
    /// Durability::None plus explicit `sync()` every few appends.
    ExplicitSync,
    /// As ExplicitSync, with every payload inline (no value log): tells a
    /// WAL/flush problem apart from a value-log one.
    ExplicitSyncInline,
}

/// What the workload learned: records acknowledged durable, and every record
/// ever handed to `append` (acknowledged or not).
#[derive(Default, Debug)]
struct Outcome {
    durable: BTreeSet<Key>,
    attempted: BTreeSet<Key>,
    failed: bool,
    /// Last sequence the store returned per topic.
    sequences: BTreeMap<Key, u64>,
}

const APPENDS: u64 = 240;

/// Runs the workload until it finishes, an operation fails, or `stop_after`
/// appends were made. Returns what it did and the store, still open, so
/// that the caller can cut the power under a live store.
fn workload(fs: &FaultFs, mode: Mode, stop_after: Option<u64>) -> (Outcome, Option<Store>) {
    let mut out = Outcome::default();
    let opts = match mode {
        Mode::SyncEach => options(fs, Durability::Sync),
        Mode::ExplicitSync => options(fs, Durability::None),
        Mode::ExplicitSyncInline => Options {
            value_threshold: usize::MAX,
            ..options(fs, Durability::None)
        },
    };
    let store = match Store::open(DB, opts) {
        Ok(s) => s,
        Err(_) => {
            out.failed = true;
            return (out, None);
        }
    };
    let mut ids = Vec::new();
    for i in 0..TOPICS {
        match store.register_topic(spec(i)) {
            Ok(id) => ids.push(id),
            Err(_) => {
                out.failed = true;
                return (out, Some(store));
            }
        }
    }
    let mut pending: Vec<Key> = Vec::new();
    for n in 0..APPENDS {
        if stop_after == Some(n) {
            return (out, Some(store));
        }
        if let Err(e) = step(&store, &ids, mode, n, &mut pending, &mut out) {
            out.failed = true;
            assert_fail_stop(&store, &ids, &e, &out);
            return (out, Some(store));
        }
    }
    if store.close().is_err() {
        out.failed = true;
    }
    (out, None)
}

/// Cuts the power under a (possibly) live store: the store is dropped only
/// after the durable state was taken.
fn crash(fs: &FaultFs, store: Option<Store>) -> FaultFs {
    let after = fs.crash();
    drop(store);
    after
}

/// One append plus, now and then, a sync, flush or compaction.
fn step(
    store: &Store,
    ids: &[TopicId],
    mode: Mode,
    n: u64,
    pending: &mut Vec<Key>,
    out: &mut Outcome,
) -> motedb::engine::Result<()> {
    let topic = (n % TOPICS as u64) as usize;
    // Mostly in order, every 13th record late.
    let t = if n % 13 == 12 { n * 10 - 95 } else { n * 10 };
    let key = (topic, t);
    out.attempted.insert(key);
    let seq = store.append(ids[topic], t, t + 1, &payload(topic, t))?;
    out.sequences.insert(key, seq);
    match mode {
        Mode::SyncEach => {
            out.durable.insert(key);
        }
        Mode::ExplicitSync | Mode::ExplicitSyncInline => {
            pending.push(key);
            if n % 7 == 6 {
                store.sync()?;
                out.durable.extend(pending.drain(..));
            }
        }
    }
    if n % 40 == 39 {
        store.flush()?;
    }
    if n % 100 == 99 {
        store.compact()?;
    }
    Ok(())
}

/// After a failed write or fsync the store says so, and reads keep working:
/// every append that returned Ok is still visible. A failed fsync, WAL or
/// value-log write stops writes (poisoned, or stopped until a retry
/// succeeds); a failed flush or compaction is only noted.
fn assert_fail_stop(store: &Store, ids: &[TopicId], first: &Error, out: &Outcome) {
    let health = store.health();
    assert!(
        health.last_error.is_some(),
        "health.last_error after {first}"
    );
    if health.poisoned {
        let again = store.append(ids[0], 1, 1, b"after failure");
        assert!(
            matches!(again, Err(Error::Poisoned(_))),
            "append after poison ({first}): {again:?}"
        );
    }
    let visible: BTreeSet<(TopicId, Nanos, u64)> = store
        .iter(&[], 0, Nanos::MAX, false)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("reads fail after {first}: {e}"))
        .into_iter()
        .map(|r| (r.topic, r.log_time, r.sequence))
        .collect();
    for (&(topic, t), &seq) in &out.sequences {
        assert!(
            visible.contains(&(ids[topic], t, seq)),
            "acknowledged ({topic}, {t}) not readable after {first}"
        );
    }
}

/// Keeps each surviving file's durable bytes plus a prefix of what was
/// written after its last fsync (a torn write at the power cut). Returns the
/// bytes added to WAL files.
fn tear_tails(before: &FaultFs, after: &FaultFs, cut: usize) -> u64 {
    let mut wal_added = 0;
    for path in after.files() {
        let (Some(written), Some(durable)) = (before.contents(&path), after.contents(&path)) else {
            continue;
        };
        if written.len() > durable.len() && written.starts_with(&durable) {
            let extra = (written.len() - durable.len()) * cut / 8;
            after.set_contents(&path, written[..durable.len() + extra].to_vec());
            if is_wal(&path) {
                wal_added += extra as u64;
            }
        }
    }
    wal_added
}

fn is_wal(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("wal-") && n.ends_with(".log"))
}

/// Reopens after the crash and checks the records against the outcome.
fn verify(fs: &FaultFs, out: &Outcome, what: &str) -> RecoveryReport {
    let store = Store::open(DB, options(fs, Durability::Sync))
        .unwrap_or_else(|e| panic!("{what}: reopen after crash failed: {e}"));
    let names: BTreeMap<TopicId, usize> = store
        .topics()
        .into_iter()
        .filter_map(|t| {
            let idx = (0..TOPICS).find(|&i| spec(i).name == t.spec.name)?;
            Some((t.id, idx))
        })
        .collect();
    let got: Vec<Record> = store
        .iter(&[], 0, Nanos::MAX, false)
        .unwrap_or_else(|e| panic!("{what}: scan after crash failed: {e}"))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{what}: scan after crash failed: {e}"));
    let mut present = BTreeSet::new();
    for r in &got {
        let idx = *names
            .get(&r.topic)
            .unwrap_or_else(|| panic!("{what}: record of unknown topic {}", r.topic));
        let key = (idx, r.log_time);
        assert!(
            out.attempted.contains(&key),
            "{what}: record {key:?} was never written"
        );
        assert!(
            r.payload == payload(idx, r.log_time),
            "{what}: wrong payload for {key:?}"
        );
        assert_eq!(r.publish_time, r.log_time + 1, "{what}: publish time");
        if let Some(&seq) = out.sequences.get(&key) {
            assert_eq!(r.sequence, seq, "{what}: sequence of {key:?}");
        }
        assert!(present.insert(key), "{what}: {key:?} appears twice");
    }
    let lost: Vec<_> = out.durable.difference(&present).take(5).collect();
    assert!(
        lost.is_empty(),
        "{what}: durable records lost after crash: {lost:?} ({} durable, {} present)",
        out.durable.len(),
        present.len()
    );
    let report = store.recovery_report();
    check_sequences_continue(&store, &got, &names, what);
    store.close().unwrap();
    report
}

/// New appends after recovery never reuse a sequence that is visible.
fn check_sequences_continue(
    store: &Store,
    got: &[Record],
    names: &BTreeMap<TopicId, usize>,
    what: &str,
) {
    for &id in names.keys() {
        let max_seen = got
            .iter()
            .filter(|r| r.topic == id)
            .map(|r| r.sequence)
            .max();
        let seq = store
            .append(id, 1_000_000, 0, b"after recovery")
            .unwrap_or_else(|e| panic!("{what}: append after recovery: {e}"));
        if let Some(m) = max_seen {
            assert!(seq > m, "{what}: sequence {seq} reused (max visible {m})");
        }
    }
}

fn points() -> u64 {
    std::env::var("MOTEDB_CRASH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// Counts writes and syncs of a clean run, to spread the crash points.
fn clean_counts(mode: Mode) -> (u64, u64) {
    let fs = FaultFs::new();
    let (out, store) = workload(&fs, mode, None);
    assert!(!out.failed, "clean run failed");
    assert!(store.is_none(), "clean run closes its store");
    let after = crash(&fs, store);
    let everything = Outcome {
        durable: out.attempted.clone(),
        ..out
    };
    verify(&after, &everything, "clean run: close() keeps every record");
    (fs.writes(), fs.syncs())
}

fn spread(total: u64) -> impl Iterator<Item = u64> {
    let step = (total / points()).max(1);
    (1..=total).step_by(step as usize)
}

fn fail_nth(mode: Mode, sync: bool) {
    let (writes, syncs) = clean_counts(mode);
    let total = if sync { syncs } else { writes };
    assert!(total > 10, "workload too small: {total}");
    let mut failures = 0;
    for n in spread(total) {
        let fs = FaultFs::new();
        if sync {
            fs.fail_nth_sync(n);
        } else {
            fs.fail_nth_write(n);
        }
        let (out, store) = workload(&fs, mode, None);
        failures += u64::from(out.failed);
        let after = crash(&fs, store);
        let what = format!("{mode:?} fail {} #{n}", if sync { "sync" } else { "write" });
        verify(&after, &out, &what);
    }
    assert!(failures > 0, "no injected failure surfaced as an error");
}

#[test]
fn crash_after_failed_write_keeps_durable_records_sync_mode() {
    fail_nth(Mode::SyncEach, false);
}

#[test]
fn crash_after_failed_fsync_keeps_durable_records_sync_mode() {
    fail_nth(Mode::SyncEach, true);
}

#[test]
fn crash_after_failed_write_keeps_synced_records() {
    fail_nth(Mode::ExplicitSync, false);
}

#[test]
fn crash_after_failed_fsync_keeps_synced_records() {
    fail_nth(Mode::ExplicitSync, true);
}

/// Power cut after K appends with no failure: only durable state survives,
/// optionally with torn, partially written tails.
fn power_cut(mode: Mode, torn: bool) {
    for (i, k) in spread(APPENDS).enumerate() {
        let fs = FaultFs::new();
        let (out, store) = workload(&fs, mode, Some(k));
        assert!(!out.failed, "no failure injected");
        let after = crash(&fs, store);
        if torn {
            tear_tails(&fs, &after, i % 8);
        }
        verify(
            &after,
            &out,
            &format!("{mode:?} power cut after {k} (torn {torn})"),
        );
    }
}

#[test]
fn power_cut_keeps_acknowledged_records_sync_mode() {
    power_cut(Mode::SyncEach, false);
}

#[test]
fn power_cut_keeps_synced_records() {
    power_cut(Mode::ExplicitSync, false);
}

#[test]
fn power_cut_keeps_synced_inline_records() {
    power_cut(Mode::ExplicitSyncInline, false);
    power_cut(Mode::ExplicitSyncInline, true);
}

#[test]
fn crash_after_failed_write_or_fsync_keeps_synced_inline_records() {
    fail_nth(Mode::ExplicitSyncInline, false);
    fail_nth(Mode::ExplicitSyncInline, true);
}

#[test]
fn power_cut_with_torn_tails_recovers() {
    power_cut(Mode::SyncEach, true);
    power_cut(Mode::ExplicitSync, true);
}

/// A crash during recovery itself (the reopen fails on its Nth write) must
/// leave a store that a later reopen still recovers fully.
#[test]
fn crash_during_recovery_is_recoverable() {
    let fs = FaultFs::new();
    let (out, store) = workload(&fs, Mode::ExplicitSync, Some(150));
    let mut fs = crash(&fs, store);
    for n in 1..=points().min(25) {
        fs.fail_nth_write(n);
        let store = Store::open(DB, options(&fs, Durability::Sync)).ok();
        fs = crash(&fs, store);
        if n % 5 == 0 {
            fs.fail_nth_sync(n / 5);
            let store = Store::open(DB, options(&fs, Durability::Sync)).ok();
            fs = crash(&fs, store);
        }
    }
    verify(&fs, &out, "after repeated crashes during recovery");
}

/// A WAL ending in a few bytes of a record that never fully reached the disk:
/// recovery cuts exactly those bytes, reports them, keeps every synced
/// record, and the cut is durable (a second open finds nothing to cut).
#[test]
fn torn_wal_tail_is_truncated_and_reported() {
    let fs = FaultFs::new();
    let (out, store) = workload(&fs, Mode::SyncEach, Some(30));
    let store = store.unwrap();
    let wal = fs.files().into_iter().filter(|p| is_wal(p)).max().unwrap();
    let synced = fs.contents(&wal).unwrap();
    // One more append reaches the file: its first 3 bytes are the torn tail.
    store
        .append(store.topics()[0].id, 5_000, 0, b"torn")
        .unwrap();
    let written = fs.contents(&wal).unwrap();
    assert!(
        written.len() > synced.len() + 3,
        "append did not reach the WAL"
    );
    let after = crash(&fs, Some(store));
    after.set_contents(&wal, written[..synced.len() + 3].to_vec());
    let report = verify(&after, &out, "torn WAL tail");
    assert_eq!(report.wal_dropped_bytes, 3, "{report:?}");
    assert_eq!(report.wal_truncated.len(), 1, "{report:?}");
    assert_eq!(report.wal_truncated[0].bytes, 3, "{report:?}");
    let again = Store::open(DB, options(&after, Durability::Sync)).unwrap();
    let second = again.recovery_report();
    assert_eq!(
        second.wal_dropped_bytes, 0,
        "cut not made durable: {second:?}"
    );
    again.close().unwrap();
}
