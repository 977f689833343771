//! Event marks: kept in the manifest across power cuts and reopens; a
//! pinned window is exempt from retention until unpinned, or until pins
//! exceed their budget (oldest released first).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a test failure"
)]

mod engine_common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use motedb::engine::fs::{FaultFs, FileSystem, PowerCut};
use motedb::engine::{
    Clock, Compression, Durability, Error, Mark, Nanos, NewMark, Options, Retention, Store,
    TopicSpec, Tuning,
};

const SEC: u64 = 1_000_000_000;

fn spec(i: usize) -> TopicSpec {
    TopicSpec {
        name: format!("/marked_{i}"),
        type_name: "std_msgs/msg/ByteMultiArray".into(),
        serialization_format: "cdr".into(),
        ..TopicSpec::default()
    }
}

fn new(label: &str, start: Nanos, end: Nanos, pin: bool) -> NewMark {
    NewMark {
        label: label.into(),
        tags: vec!["incident".into(), label.into()],
        start,
        end,
        pin,
    }
}

fn options(wall: &Arc<AtomicU64>, retention: Retention) -> Options {
    let w = wall.clone();
    Options {
        durability: Durability::None,
        compression: Compression::None,
        retention,
        memtable_bytes: 16 << 10,
        tuning: Tuning {
            background: false,
            clock: Clock(Arc::new(move || w.load(Ordering::SeqCst))),
            ..Tuning::default()
        },
        ..Options::default()
    }
}

fn times(store: &Store, topic: u32) -> Vec<Nanos> {
    store
        .iter(&[topic], 0, Nanos::MAX, false)
        .unwrap()
        .map(|r| r.unwrap().log_time)
        .collect()
}

/// Seconds `from..to` of one 10 Hz topic, 512 random bytes each, one
/// flushed table per second, each written one wall-clock second later.
fn record(store: &Store, wall: &AtomicU64, topic: u32, from: u64, to: u64) {
    for s in from..to {
        for k in 0..10 {
            let t = s * SEC + k * SEC / 10;
            store
                .append(topic, t, 0, &engine_common::xorshift_bytes(t, 512))
                .unwrap();
        }
        store.flush().unwrap();
        wall.fetch_add(SEC, Ordering::SeqCst);
    }
}

#[test]
fn marks_survive_a_power_cut_and_a_kill_and_ids_keep_counting() {
    let fs = FaultFs::new();
    let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let opts = |fs: &Arc<dyn FileSystem>| Options {
        fs: fs.clone(),
        durability: Durability::Periodic(std::time::Duration::from_secs(3600)),
        ..Options::default()
    };
    let store = Store::open("/db", opts(&fsa)).unwrap();
    let t = store.register_topic(spec(0)).unwrap();
    store.append(t, 5 * SEC, 0, b"x").unwrap();
    let a = store
        .add_mark(new("estop", 4 * SEC, 6 * SEC, true))
        .unwrap();
    let b = store
        .add_mark(new("dock", 7 * SEC, 7 * SEC, false))
        .unwrap();
    assert_eq!((a.id, b.id), (1, 2));
    // Nothing was synced since: the marks must be durable on their own.
    let after = fs.power_cut(PowerCut::Torn(7));
    drop(store);
    let fsa: Arc<dyn FileSystem> = Arc::new(after.clone());
    let store = Store::open("/db", opts(&fsa)).unwrap();
    assert_eq!(store.marks(), vec![a.clone(), b.clone()]);
    let (unpinned, was) = store.unpin(1).unwrap();
    assert!(was && !unpinned.pinned);
    let c = store
        .add_mark(new("cliff", 9 * SEC, 10 * SEC, true))
        .unwrap();
    assert_eq!(c.id, 3);
    let killed = after.kill_process();
    drop(store);
    let fsa: Arc<dyn FileSystem> = Arc::new(killed);
    let store = Store::open_read_only_with("/db", opts(&fsa)).unwrap();
    let marks = store.marks();
    assert_eq!(marks.len(), 3);
    assert!(!marks[0].pinned, "the unpin was lost");
    assert_eq!(marks[2], c);
    assert!(matches!(
        store.add_mark(new("ro", 1, 2, false)),
        Err(Error::ReadOnly)
    ));
}

#[test]
fn bad_marks_and_runaway_pins_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wall = Arc::new(AtomicU64::new(1_000 * SEC));
    let store = Store::open(dir.path(), options(&wall, Retention::default())).unwrap();
    for bad in [
        new("", 1, 2, false),
        new("late", 3, 2, true),
        NewMark {
            tags: vec![String::new()],
            ..new("empty tag", 1, 2, false)
        },
    ] {
        assert!(matches!(
            store.add_mark(bad),
            Err(Error::InvalidArgument(_))
        ));
    }
    // A pin reaching more than an hour past the store's clock (1 000 s).
    let far = new("runaway", 1_000 * SEC, 1_000 * SEC + 3_601 * SEC, true);
    let e = store.add_mark(far.clone()).unwrap_err().to_string();
    assert!(e.contains("at most 3600 s after"), "{e}");
    assert!(
        store.add_mark(NewMark { pin: false, ..far }).is_ok(),
        "unpinned, it harms nothing"
    );
    assert!(matches!(store.unpin(42), Err(Error::InvalidArgument(_))));
    assert_eq!(store.marks().len(), 1);
    store.close().unwrap();
    let store = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(store.marks().len(), 1);
}

#[test]
fn a_pinned_window_outlives_retention_until_it_is_unpinned() {
    let dir = tempfile::tempdir().unwrap();
    let wall = Arc::new(AtomicU64::new(1_000 * SEC));
    let store = Store::open(dir.path(), options(&wall, Retention::default())).unwrap();
    let topic = store.register_topic(spec(0)).unwrap();
    record(&store, &wall, topic, 0, 10);
    // Seconds 3 and 4 are pinned; second 6 is marked but not pinned.
    let pin = store
        .add_mark(new("estop", 3 * SEC, 4 * SEC + SEC / 2, true))
        .unwrap();
    store
        .add_mark(new("bump", 6 * SEC, 6 * SEC + SEC / 2, false))
        .unwrap();
    record(&store, &wall, topic, 10, 40);
    let used = store.health().disk_bytes;
    // Room for about a quarter of the data (and the pins' budget, half of it).
    store
        .set_retention(Retention {
            max_bytes: used / 4,
            ..Retention::default()
        })
        .unwrap();
    store.compact().unwrap();
    let left = times(&store, topic);
    let pinned: Vec<Nanos> = (3 * SEC..5 * SEC).step_by((SEC / 10) as usize).collect();
    assert!(
        pinned.iter().all(|t| left.contains(t)),
        "pinned data was dropped: {left:?}"
    );
    assert!(
        !left.contains(&(6 * SEC)),
        "an unpinned mark kept its window"
    );
    assert!(!left.contains(&0) && !left.contains(&(20 * SEC)));
    assert!(left.contains(&(39 * SEC)), "the newest data went");
    let h = store.health();
    assert!(h.pinned_bytes > 0 && h.pinned_bytes <= h.pin_budget);
    assert_eq!((h.marks, h.pins_released), (2, 0));
    // The pin holds after a reopen too: it lives in the manifest.
    store.close().unwrap();
    let store = Store::open(
        dir.path(),
        options(
            &wall,
            Retention {
                max_bytes: used / 4,
                ..Retention::default()
            },
        ),
    )
    .unwrap();
    store.compact().unwrap();
    assert_eq!(times(&store, topic), left);
    let (m, was) = store.unpin(pin.id).unwrap();
    assert!(was && !m.pinned && !m.released);
    // Unpinned, the window is the oldest data written: the next data over
    // the quota pushes it out first.
    record(&store, &wall, topic, 40, 42);
    store.compact().unwrap();
    let now = times(&store, topic);
    assert!(
        !now.contains(&(3 * SEC)),
        "unpinned data outlived retention"
    );
    assert!(now.contains(&(39 * SEC)) && now.contains(&(41 * SEC)));
    assert_eq!(store.health().pinned_bytes, 0);
    store.close().unwrap();
}

#[test]
fn pins_over_their_budget_are_released_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let wall = Arc::new(AtomicU64::new(1_000 * SEC));
    let store = Store::open(dir.path(), options(&wall, Retention::default())).unwrap();
    let topic = store.register_topic(spec(0)).unwrap();
    record(&store, &wall, topic, 0, 40);
    let table = store.health().disk_bytes / 40;
    let first = store
        .add_mark(new("first", 2 * SEC, 5 * SEC + SEC / 2, true))
        .unwrap();
    let second = store
        .add_mark(new("second", 10 * SEC, 13 * SEC + SEC / 2, true))
        .unwrap();
    // The pins keep about 8 tables; the budget holds 5: the first goes.
    store
        .set_retention(Retention {
            max_bytes: table * 20,
            pinned_max_bytes: table * 5,
            ..Retention::default()
        })
        .unwrap();
    store.compact().unwrap();
    let marks = store.marks();
    let released: Vec<&Mark> = marks.iter().filter(|m| m.released).collect();
    assert_eq!(released.len(), 1, "{marks:?}");
    assert_eq!(released[0].id, first.id);
    assert!(!released[0].pinned);
    assert!(marks
        .iter()
        .any(|m| m.id == second.id && m.pinned && !m.released));
    let left = times(&store, topic);
    assert!(left.contains(&(11 * SEC)), "the newer pin's window went");
    assert!(!left.contains(&(3 * SEC)), "the released window stayed");
    let h = store.health();
    assert_eq!(h.pins_released, 1);
    assert!(
        h.last_pin_released
            .as_deref()
            .unwrap_or("")
            .contains("first"),
        "{:?}",
        h.last_pin_released
    );
    assert!(h.pinned_bytes <= h.pin_budget);
    // Unpinning a released mark changes nothing and says so.
    let (m, was) = store.unpin(first.id).unwrap();
    assert!(!was && m.released);
    store.close().unwrap();
    let store = Store::open_read_only(dir.path()).unwrap();
    assert!(store.marks()[0].released, "the release was not logged");
}
