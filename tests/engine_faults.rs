//! Failures while the store runs, and getting back from them without a
//! restart (src/engine/recover.rs): a full disk stops writes and they
//! resume when space comes back; a checksum error in a compaction input
//! quarantines that table and recording goes on; a failed compaction or
//! flush write is retried without stopping writes.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a test failure"
)]

mod engine_common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use motedb::engine::fs::{FaultFs, FileSystem, PowerCut};
use motedb::engine::{Compression, Durability, Error, Nanos, Options, Store, TopicSpec, Tuning};

const DB: &str = "/db";

fn payload(t: Nanos) -> Vec<u8> {
    let len = if t % 5 == 0 {
        700
    } else {
        (t % 90) as usize + 4
    };
    engine_common::xorshift_bytes(t ^ 0xD15C_F011, len)
}

fn spec(i: usize) -> TopicSpec {
    TopicSpec {
        name: format!("/fault_{i}"),
        type_name: "std_msgs/msg/ByteMultiArray".into(),
        serialization_format: "cdr".into(),
        ..TopicSpec::default()
    }
}

fn options(fs: &FaultFs, background: bool) -> Options {
    Options {
        durability: Durability::Sync,
        memtable_bytes: 8 << 10,
        value_threshold: 512,
        block_size: 512,
        compression: Compression::None,
        fs: Arc::new(fs.clone()),
        tuning: Tuning {
            background,
            vlog_file_bytes: 16 << 10,
            stop_timeout: Duration::from_millis(300),
            ..Tuning::default()
        },
        ..Options::default()
    }
}

/// Every record of the store as (topic, time), checking payloads.
fn times(store: &Store) -> BTreeSet<(u32, Nanos)> {
    store
        .iter(&[], 0, Nanos::MAX, false)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            assert!(
                r.payload == payload(r.log_time),
                "wrong payload at {}",
                r.log_time
            );
            (r.topic, r.log_time)
        })
        .collect()
}

/// Every acknowledged time of topic `id` is in the store.
fn assert_all_present(store: &Store, id: u32, acked: &[Nanos]) {
    let have = times(store);
    let lost: Vec<_> = acked
        .iter()
        .filter(|t| !have.contains(&(id, **t)))
        .take(5)
        .collect();
    assert!(lost.is_empty(), "acknowledged records lost: {lost:?}");
}

/// Appends until `until` says stop; returns the times acknowledged.
fn append_until(store: &Store, id: u32, from: Nanos, n: u64) -> (Vec<Nanos>, Option<Error>) {
    let mut ok = Vec::new();
    for t in from..from + n {
        match store.append(id, t, 0, &payload(t)) {
            Ok(_) => ok.push(t),
            Err(e) => return (ok, Some(e)),
        }
    }
    (ok, None)
}

#[test]
fn disk_full_stops_writes_then_they_resume_when_space_comes_back() {
    let fs = FaultFs::new();
    let store = Store::open(DB, options(&fs, true)).unwrap();
    let id = store.register_topic(spec(0)).unwrap();
    let (mut acked, none) = append_until(&store, id, 0, 200);
    assert!(none.is_none());
    fs.set_space_limit(Some(fs.used_bytes() + 30_000));
    let (more, err) = append_until(&store, id, 1_000, 100_000);
    acked.extend(more);
    let err = err.expect("the disk never filled up");
    let full = matches!(&err, Error::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC))
        || matches!(err, Error::WriteStopped(_));
    assert!(full, "a full disk gave {err:?}");
    // Writes stay stopped while the disk is full, and the store says why.
    for t in 200_000..200_010 {
        let e = store.append(id, t, 0, &payload(t)).unwrap_err();
        assert!(
            matches!(e, Error::WriteStopped(_) | Error::Io { .. }),
            "{e:?}"
        );
    }
    let h = store.health();
    assert!(!h.poisoned, "a full disk must not poison: {h:?}");
    assert!(h.last_error.is_some());
    // Space comes back (the operator deleted something): writes resume by
    // themselves, without a restart.
    fs.set_space_limit(None);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut t = 300_000;
    loop {
        if store.append(id, t, 0, &payload(t)).is_ok() {
            acked.push(t);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes never resumed: {:?}",
            store.health()
        );
        std::thread::sleep(Duration::from_millis(10));
        t += 1;
    }
    let (more, err) = append_until(&store, id, 400_000, 300);
    assert!(err.is_none(), "{err:?}");
    acked.extend(more);
    assert_eq!(store.health().write_stopped, None);
    // Everything acknowledged, before and after, is durable.
    let after = fs.crash();
    drop(store);
    let store = Store::open(DB, options(&after, true)).unwrap();
    assert_all_present(&store, id, &acked);
    store.close().unwrap();
}

/// Builds two L0 tables of two topics each (no background threads).
fn two_tables(fs: &FaultFs) -> (Store, Vec<u32>) {
    let store = Store::open(DB, options(fs, false)).unwrap();
    let ids: Vec<u32> = (0..2)
        .map(|i| store.register_topic(spec(i)).unwrap())
        .collect();
    for round in 0..2u64 {
        for t in round * 100..round * 100 + 60 {
            store
                .append(ids[(t % 2) as usize], t, 0, &payload(t))
                .unwrap();
        }
        store.flush().unwrap();
    }
    (store, ids)
}

fn sst_files(fs: &FaultFs, suffix: &str) -> Vec<std::path::PathBuf> {
    fs.files()
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect()
}

#[test]
fn checksum_error_in_a_compaction_input_quarantines_that_table_and_recording_goes_on() {
    let fs = FaultFs::new();
    let (store, ids) = two_tables(&fs);
    let mut tables = sst_files(&fs, ".sst");
    tables.sort();
    assert!(tables.len() >= 2, "{tables:?}");
    // The first table flushed: it holds only records of the first round.
    let victim = tables[0].clone();
    assert!(fs.flip_byte(&victim, 40), "flip in the first data block");
    // Late records overlapping the victim's range: compaction must read it.
    for t in (1..60).step_by(2) {
        store.append(ids[0], t, 0, &payload(t)).unwrap();
    }
    store.flush().unwrap();
    let err = store.compact().unwrap_err();
    assert!(
        matches!(&err, Error::ChecksumMismatch { file, .. } | Error::Corrupt { file, .. } if *file == victim),
        "{err:?}"
    );
    let h = store.health();
    assert!(!h.poisoned, "a bad table must not stop recording: {h:?}");
    let bad = format!("{}.bad", victim.display());
    assert!(
        h.quarantined.iter().any(|q| q.starts_with(&bad)),
        "health does not name the quarantined table: {:?}",
        h.quarantined
    );
    assert!(
        fs.exists(Path::new(&bad)),
        "quarantined file kept for inspection"
    );
    // Reads of the rest and new writes keep working; compaction goes on.
    let have = times(&store);
    let survivor: BTreeSet<(u32, Nanos)> = (100..160).map(|t| (ids[(t % 2) as usize], t)).collect();
    assert!(
        survivor.is_subset(&have),
        "records of the healthy table lost"
    );
    store.append(ids[0], 10_000, 0, &payload(10_000)).unwrap();
    store.flush().unwrap();
    store.compact().unwrap();
    let report = store.verify().unwrap();
    assert!(
        report
            .files
            .iter()
            .any(|f| f.path.to_string_lossy() == bad && !f.problems.is_empty()),
        "verify does not name the quarantined table"
    );
    store.close().unwrap();
    // After a restart the quarantine is still reported.
    let store = Store::open(DB, options(&fs, false)).unwrap();
    assert!(store
        .health()
        .quarantined
        .iter()
        .any(|q| q.starts_with(&bad)));
    assert!(times(&store).contains(&(ids[0], 10_000)));
    store.close().unwrap();
}

#[test]
fn failed_compaction_write_is_retried_without_stopping_writes() {
    let fs = FaultFs::new();
    let (store, ids) = two_tables(&fs);
    let before = times(&store);
    // Overlapping late data, so compaction must rewrite (not move).
    for t in 0..40 {
        store
            .append(ids[0], t * 2 + 1, 0, &payload(t * 2 + 1))
            .unwrap();
    }
    store.flush().unwrap();
    let tuning_trigger = 2;
    assert!(sst_files(&fs, ".sst").len() > tuning_trigger);
    fs.fail_nth_write(1);
    let err = store.compact();
    assert!(err.is_err(), "the injected write failure did not surface");
    let h = store.health();
    assert!(!h.poisoned, "a failed compaction must not poison: {h:?}");
    assert!(h.compactions_failed >= 1);
    store.append(ids[1], 50_001, 0, &payload(50_001)).unwrap();
    store.compact().unwrap();
    let have = times(&store);
    assert!(
        before.is_subset(&have),
        "records lost by the failed compaction"
    );
    assert!(have.contains(&(ids[1], 50_001)));
    store.close().unwrap();
}

/// A read-only open reads the manifest, opens the tables, then lists the
/// WAL. A writer's flush in between (new table, WAL segments deleted) must
/// not leave a hole: the reader sees every record.
#[test]
fn read_only_open_during_a_writer_flush_sees_every_record() {
    let fs = FaultFs::new();
    let writer = Arc::new(Store::open(DB, options(&fs, false)).unwrap());
    let id = writer.register_topic(spec(0)).unwrap();
    for t in 0..100 {
        writer.append(id, t, 0, &payload(t)).unwrap();
    }
    let w = writer.clone();
    fs.before_next_list(move || w.flush().unwrap());
    let reader = Store::open_read_only_with(DB, options(&fs, false)).unwrap();
    assert!(
        fs.files()
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".sst")),
        "the injected flush did not run"
    );
    let seen = times(&reader);
    assert_eq!(
        seen.len(),
        100,
        "read-only open saw {} of 100 records",
        seen.len()
    );
}

/// Set in the child that runs inside its own mount namespace.
const TMPFS_CHILD: &str = "MOTEDB_TMPFS_CHILD";

/// The same on a real file system: a 3 MiB tmpfs, mounted in a private
/// mount namespace (`unshare --mount`, so nothing outside sees it), filled
/// up by the store; then a 1 MiB file the test wrote first is deleted.
#[test]
fn disk_full_on_a_real_tmpfs_stops_writes_then_they_resume() {
    if std::env::var_os(TMPFS_CHILD).is_some() {
        tmpfs_child();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(exe)
        .args([
            "disk_full_on_a_real_tmpfs_stops_writes_then_they_resume",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(TMPFS_CHILD, "1")
        .output()
        .expect("unshare (util-linux) runs the child in a private mount namespace");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("TMPFS-OK"),
        "child failed ({:?}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{}",
        text.lines().find(|l| l.contains("TMPFS-OK")).unwrap_or("")
    );
}

fn tmpfs_child() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "motedb-test"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(mounted.success(), "mount -t tmpfs failed (needs root)");
    let filler = dir.path().join("filler");
    std::fs::write(&filler, vec![0x55u8; 1 << 20]).unwrap();
    let real = Options {
        fs: Arc::new(motedb::engine::fs::RealFs),
        durability: Durability::Sync,
        memtable_bytes: 64 << 10,
        value_threshold: 512,
        compression: Compression::None,
        tuning: Tuning {
            vlog_file_bytes: 256 << 10,
            stop_timeout: Duration::from_millis(300),
            ..Tuning::default()
        },
        ..Options::default()
    };
    let path = dir.path().join("store");
    let store = Store::open(&path, real.clone()).unwrap();
    let id = store.register_topic(spec(0)).unwrap();
    let (mut acked, err) = append_until(&store, id, 0, 100_000);
    let err = err.expect("3 MiB never filled up");
    let full = matches!(&err, Error::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC))
        || matches!(err, Error::WriteStopped(_));
    assert!(full, "a full tmpfs gave {err:?}");
    assert!(!store.health().poisoned, "ENOSPC must not poison");
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut t = 1_000_000;
    while store.append(id, t, 0, &payload(t)).is_err() {
        assert!(
            Instant::now() < deadline,
            "writes never resumed: {:?}",
            store.health()
        );
        std::thread::sleep(Duration::from_millis(10));
        t += 1;
    }
    acked.push(t);
    let (more, err) = append_until(&store, id, 2_000_000, 100);
    assert!(err.is_none(), "{err:?}");
    acked.extend(more);
    store.close().unwrap();
    let store = Store::open(&path, real).unwrap();
    assert_all_present(&store, id, &acked);
    store.close().unwrap();
    println!("TMPFS-OK {} acknowledged", acked.len());
}

/// After the process dies (SIGKILL: the page cache survives), the next
/// open replays records that were never fsynced. It must make them durable
/// before it starts a newer WAL segment (which makes the old one count as
/// "fsynced whole") or writes tables pointing into their value-log
/// payloads: otherwise a later power cut leaves a damaged segment that is
/// no longer the last one, and the store does not open.
#[test]
fn records_replayed_after_a_process_crash_are_made_durable_before_new_writes() {
    for seed in 0..24 {
        let fs = FaultFs::new();
        let mut o = options(&fs, false);
        o.durability = Durability::None;
        o.tuning.wal_buffer_bytes = 1;
        let store = Store::open(DB, o).unwrap();
        let id = store.register_topic(spec(0)).unwrap();
        for t in 0..60 {
            store.append(id, t, 0, &payload(t)).unwrap();
        }
        let next = fs.kill_process();
        drop(store);
        let store = Store::open(DB, options(&next, false)).unwrap();
        assert_eq!(times(&store).len(), 60, "replay after the kill");
        let mut acked = Vec::new();
        for t in 100..110 {
            store.append(id, t, 0, &payload(t)).unwrap();
            acked.push(t);
        }
        let after = next.power_cut(PowerCut::Torn(seed));
        drop(store);
        let store = Store::open(DB, options(&after, false))
            .unwrap_or_else(|e| panic!("seed {seed}: store does not open: {e}"));
        let have = times(&store);
        for t in (0..60).chain(acked) {
            assert!(have.contains(&(id, t)), "seed {seed}: record {t} lost");
        }
        store.close().unwrap();
    }
}
