//! Regression tests for the two failures of the seed engine (motedb 0.2.0):
//! tiered-L0 data loss and compaction inputs vanishing mid-merge.

#![expect(clippy::unwrap_used, reason = "test helpers: a failure should panic")]
use motedb::engine::fs::{FaultFs, FileSystem};
use motedb::engine::{Options, Record, Retention, Store, TopicSpec, Tuning};
use std::path::Path;
use std::sync::Arc;

fn spec(name: &str) -> TopicSpec {
    TopicSpec {
        name: name.into(),
        type_name: "std_msgs/msg/String".into(),
        serialization_format: "cdr".into(),
        ..TopicSpec::default()
    }
}

fn opts(fs: &FaultFs) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        memtable_bytes: 1 << 30,
        block_size: 2048,
        value_threshold: 512,
        tuning: Tuning {
            background: false,
            vlog_file_bytes: 16 << 10,
            ..Tuning::default()
        },
        ..Options::default()
    }
}

fn payload(topic: u32, time: u64) -> Vec<u8> {
    let n = if time % 7 == 0 { 700 } else { 30 };
    (0..n)
        .map(|i| (topic as u64 * 31 + time + i) as u8)
        .collect()
}

fn all(store: &Store) -> Vec<Record> {
    store
        .iter(&[], 0, u64::MAX, false)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The seed merged only some of several overlapping L0 files and lost the
/// records of the others. Every L0 file here overlaps every other (late,
/// interleaved timestamps); after compaction all records must remain.
#[test]
fn regression_tiered_l0_loss() {
    let fs = FaultFs::new();
    let store = Store::open("/db", opts(&fs)).unwrap();
    let topics: Vec<u32> = (0..3)
        .map(|i| store.register_topic(spec(&format!("/t{i}"))).unwrap())
        .collect();
    let mut expected = Vec::new();
    for file in 0..9u64 {
        for i in 0..300u64 {
            let t = topics[(i % 3) as usize];
            let time = i * 7 + file; // interleaved: every file spans all time
            let seq = store.append(t, time, 0, &payload(t, time)).unwrap();
            expected.push((time, t, seq));
        }
        store.flush().unwrap();
        if file == 4 {
            // Compaction with L0 at the trigger, then more overlapping L0.
            store.compact().unwrap();
        }
    }
    assert!(store.health().l0_files > 0, "later flushes left L0 files");
    store.compact().unwrap();
    let h = store.health();
    assert_eq!(h.l0_files, 0, "an L0 compaction takes all L0 files");
    expected.sort();
    let got = all(&store);
    let keys: Vec<(u64, u32, u64)> = got
        .iter()
        .map(|r| (r.log_time, r.topic, r.sequence))
        .collect();
    assert_eq!(keys, expected);
    for r in &got {
        assert_eq!(r.payload, payload(r.topic, r.log_time));
    }
    store.close().unwrap();
    let store = Store::open("/db", opts(&fs)).unwrap();
    assert_eq!(all(&store).len(), expected.len(), "after reopen");
}

/// The seed planned a compaction, then another task deleted an input file
/// before the merge read it. Here an iterator and a scan hold a version
/// while compaction and retention obsolete every file it references: the
/// reader must see every record of its snapshot, and the files must go away
/// once the reader is done.
#[test]
fn regression_input_vanishes() {
    let fs = FaultFs::new();
    let mut o = opts(&fs);
    o.retention = Retention {
        max_bytes: 0,
        max_age: None,
        ..Retention::default()
    };
    let store = Store::open("/db", o.clone()).unwrap();
    let t = store.register_topic(spec("/a")).unwrap();
    for round in 0..5u64 {
        for i in 0..400u64 {
            let time = i * 5 + round;
            store.append(t, time, 0, &payload(t, time)).unwrap();
        }
        store.flush().unwrap();
    }
    let old_tables: Vec<_> = fs
        .files()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .collect();
    assert_eq!(old_tables.len(), 5);
    let mut pinned = store.iter(&[t], 0, u64::MAX, false).unwrap();
    let first = pinned.next().unwrap().unwrap();
    // Compaction rewrites every input; all old files become obsolete.
    store.compact().unwrap();
    assert_eq!(store.health().l0_files, 0);
    for p in &old_tables {
        assert!(
            fs.exists(p),
            "{} deleted while a reader holds it",
            p.display()
        );
    }
    let mut got = vec![first];
    got.extend(pinned.map(|r| r.unwrap()));
    assert_eq!(got.len(), 2000);
    assert!(got.windows(2).all(|w| w[0].log_time < w[1].log_time));
    for p in &old_tables {
        assert!(!fs.exists(p), "{} kept after the last reader", p.display());
    }
    store.close().unwrap();

    // Retention obsoletes the files under a pinned reader as well.
    let mut o2 = o;
    o2.retention.max_bytes = 1;
    let store = Store::open("/db", o2).unwrap();
    let pinned = store.iter(&[t], 0, u64::MAX, true).unwrap();
    store.compact().unwrap();
    assert!(store.health().retention_dropped_files > 0);
    let got: Vec<Record> = pinned.map(|r| r.unwrap()).collect();
    assert_eq!(got.len(), 2000, "the snapshot still sees everything");
    for r in &got {
        assert_eq!(r.payload, payload(r.topic, r.log_time));
    }
    let live_tables = fs
        .files()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .count();
    assert_eq!(live_tables, 0, "dropped files are gone once unpinned");
    assert!(fs.exists(Path::new("/db/MANIFEST")));
}
