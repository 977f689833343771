//! Retention measures age and order by wall-clock write time
//! (`Tuning::clock`), not log time: a far-future stamp or a sim-time reset
//! (log time starting again near 0) cannot drop live data.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a test failure"
)]

mod engine_common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use motedb::engine::{
    Clock, Compression, Durability, Nanos, Options, Retention, Store, TopicSpec, Tuning,
};

const SEC: u64 = 1_000_000_000;

fn payload(t: Nanos) -> Vec<u8> {
    engine_common::xorshift_bytes(t ^ 0x0A6E, 64)
}

fn spec(i: usize) -> TopicSpec {
    TopicSpec {
        name: format!("/age_{i}"),
        type_name: "std_msgs/msg/ByteMultiArray".into(),
        serialization_format: "cdr".into(),
        ..TopicSpec::default()
    }
}

fn options(wall: &Arc<AtomicU64>, retention: Retention) -> Options {
    let w = wall.clone();
    Options {
        durability: Durability::None,
        compression: Compression::None,
        retention,
        tuning: Tuning {
            background: false,
            clock: Clock(Arc::new(move || w.load(Ordering::SeqCst))),
            ..Tuning::default()
        },
        ..Options::default()
    }
}

/// The names in `dir` ending with `ext`, sorted.
fn names_ending(dir: &std::path::Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

fn times(store: &Store, topic: u32) -> Vec<Nanos> {
    store
        .iter(&[topic], 0, Nanos::MAX, false)
        .unwrap()
        .map(|r| r.unwrap().log_time)
        .collect()
}

#[test]
fn a_far_future_stamp_does_not_make_live_data_old() {
    let dir = tempfile::tempdir().unwrap();
    let wall = Arc::new(AtomicU64::new(1_000 * SEC));
    let retention = Retention {
        max_bytes: 0,
        max_age: Some(Duration::from_secs(10)),
        ..Retention::default()
    };
    let store = Store::open(dir.path(), options(&wall, retention)).unwrap();
    let (a, b) = (
        store.register_topic(spec(0)).unwrap(),
        store.register_topic(spec(1)).unwrap(),
    );
    for t in 1..=50 {
        store.append(a, t * SEC, 0, &payload(t)).unwrap();
    }
    store.flush().unwrap();
    // A bad stamp on another topic, far in the future, in a table of its own.
    store.append(b, u64::MAX / 2, 0, &payload(7)).unwrap();
    store.flush().unwrap();
    for t in 51..=100 {
        store.append(a, t * SEC, 0, &payload(t)).unwrap();
    }
    store.flush().unwrap();
    store.compact().unwrap();
    assert_eq!(
        times(&store, a).len(),
        100,
        "live data dropped by a future stamp"
    );
    assert_eq!(times(&store, b).len(), 1);
    // Eleven seconds of wall clock later, all of it is past max_age.
    wall.fetch_add(11 * SEC, Ordering::SeqCst);
    store.compact().unwrap();
    assert!(times(&store, a).is_empty(), "max_age dropped nothing");
    assert!(store.health().retention_dropped_messages >= 101);
    store.close().unwrap();
}

#[test]
fn a_sim_time_reset_makes_retention_drop_the_old_session_first() {
    let dir = tempfile::tempdir().unwrap();
    let wall = Arc::new(AtomicU64::new(1_000 * SEC));
    let store = Store::open(dir.path(), options(&wall, Retention::default())).unwrap();
    let id = store.register_topic(spec(0)).unwrap();
    // Session 1: sim time around 5000 s.
    let old: Vec<Nanos> = (0..200).map(|i| 5_000 * SEC + i * SEC / 10).collect();
    for &t in &old {
        store.append(id, t, 0, &payload(t)).unwrap();
    }
    store.flush().unwrap();
    wall.fetch_add(60 * SEC, Ordering::SeqCst);
    // The simulator restarts: sim time begins again near 0.
    let new: Vec<Nanos> = (0..200).map(|i| SEC + i * SEC / 10).collect();
    for &t in &new {
        store.append(id, t, 0, &payload(t)).unwrap();
    }
    store.flush().unwrap();
    let used = store.health().disk_bytes;
    // Just under what both sessions take: one table has to go.
    store
        .set_retention(Retention {
            max_bytes: used - 1,
            max_age: None,
            ..Retention::default()
        })
        .unwrap();
    store.compact().unwrap();
    let left = times(&store, id);
    assert_eq!(
        left, new,
        "retention dropped the live session, not the old one"
    );
    store.close().unwrap();
}

/// `Options::retention_guard` (the node's `retention.require_offloaded`):
/// a refused table stays with every newer one (what goes is always a prefix
/// of what was written); an allowed one goes. `remember_dropped` records
/// what retention dropped in the manifest, for the offloaded copy.
#[test]
fn a_retention_guard_keeps_what_it_refuses_and_dropped_files_are_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let wall = Arc::new(AtomicU64::new(1_000 * SEC));
    let allowed = Arc::new(parking_lot::Mutex::new(
        std::collections::BTreeSet::<String>::new(),
    ));
    let guard = {
        let allowed = allowed.clone();
        motedb::engine::RetentionGuard(Arc::new(move |name: &str| allowed.lock().contains(name)))
    };
    let retention = Retention {
        max_age: Some(Duration::from_secs(10)),
        ..Retention::default()
    };
    let mut opts = options(&wall, retention);
    opts.remember_dropped = true;
    opts.retention_guard = Some(guard);
    // Three tables, no compaction (a high L0 trigger): one per second;
    // value-log files of about two large payloads each.
    opts.tuning.compaction.l0_trigger = 100;
    opts.tuning.vlog_file_bytes = 100 << 10;
    let store = Store::open(dir.path(), opts.clone()).unwrap();
    let a = store.register_topic(spec(0)).unwrap();
    // Every 10th message large enough for the value log.
    let big = |t: u64| engine_common::xorshift_bytes(t, 70 << 10);
    for t in 1..=150 {
        let p = if t % 10 == 0 { big(t) } else { payload(t) };
        store.append(a, t * SEC, 0, &p).unwrap();
        if t % 50 == 0 {
            store.flush().unwrap();
            wall.fetch_add(SEC, Ordering::SeqCst);
        }
    }
    let tables = names_ending(dir.path(), ".sst");
    assert_eq!(tables.len(), 3, "{tables:?}");
    wall.fetch_add(60 * SEC, Ordering::SeqCst);
    let dropped = || {
        let m = std::fs::read(dir.path().join("MANIFEST")).unwrap();
        motedb::engine::live_files(&m).unwrap().dropped
    };

    store.compact().unwrap();
    assert_eq!(times(&store, a).len(), 150, "the guard refused every file");
    let vlogs = || names_ending(dir.path(), ".vlog");
    let all_vlogs = vlogs();
    assert!(all_vlogs.len() >= 4, "{all_vlogs:?}");
    // Only the newest allowed: the older ones are refused, so it stays too.
    allowed.lock().insert(tables[2].clone());
    store.compact().unwrap();
    assert_eq!(
        times(&store, a).len(),
        150,
        "a newer table went before an older one"
    );
    assert!(dropped().is_empty());
    // The oldest allowed too: it alone goes (the middle one is refused);
    // the value-log files only it pointed into are refused: they stay.
    allowed.lock().insert(tables[0].clone());
    store.compact().unwrap();
    assert_eq!(
        times(&store, a),
        (51..=150).map(|t| t * SEC).collect::<Vec<_>>()
    );
    assert!(dropped().contains(&tables[0]), "{:?}", dropped());
    assert_eq!(vlogs(), all_vlogs, "a refused value-log file went");
    // Allowed, they go.
    for v in &all_vlogs {
        allowed.lock().insert(v.clone());
    }
    store.compact().unwrap();
    let gone: Vec<String> = all_vlogs
        .iter()
        .filter(|v| !vlogs().contains(v))
        .cloned()
        .collect();
    assert!(!gone.is_empty(), "no value-log file went");
    assert!(
        gone.iter().all(|v| dropped().contains(v)),
        "{gone:?} {:?}",
        dropped()
    );
    allowed.lock().insert(tables[1].clone());
    store.compact().unwrap();
    assert!(times(&store, a).is_empty());
    let d = dropped();
    assert!(tables.iter().all(|t| d.contains(t)), "{d:?}");
    let vlog = gone;
    store.close().unwrap();
    // Remembered across a reopen, which rewrites the manifest as a snapshot.
    let store = Store::open(dir.path(), opts).unwrap();
    store.close().unwrap();
    let d = dropped();
    assert!(tables.iter().chain(&vlog).all(|t| d.contains(t)), "{d:?}");
}
