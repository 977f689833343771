//! Scans, cursors and iterators running while a writer appends and flushes
//! and compactions rewrite the files under them: no miss, no repeat, no
//! wrong payload, order kept.
//!
//! Rounds: MOTEDB_CONCURRENT_ROUNDS (default 3).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a test failure"
)]

mod engine_common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use motedb::engine::{
    Compression, Durability, Nanos, Options, Record, ScanRequest, Store, TopicId, TopicSpec, Tuning,
};

const TOPICS: usize = 4;
/// Records before this time exist before the readers start.
const SPLIT: Nanos = 1_000_000;
const STEP: Nanos = 100;

fn payload(topic: TopicId, t: Nanos, seq: u64) -> Vec<u8> {
    let len = if t % 17 == 0 {
        600
    } else {
        (t / STEP % 50) as usize
    };
    engine_common::xorshift_bytes(
        (u64::from(topic) << 56) ^ (t << 4) ^ seq ^ 0x1234_5678_9ABC_DEF1,
        len,
    )
}

/// `background`: flush and compaction threads; off, they run only on
/// explicit calls (and inline when writers would slow down or stop), and
/// the memtable is large enough that only explicit flushes cut tables.
fn open(dir: &std::path::Path, background: bool) -> Store {
    let tuning = Tuning {
        background,
        ..Tuning::default()
    };
    let opts = Options {
        tuning,
        durability: Durability::None,
        memtable_bytes: if background { 8 << 10 } else { 4 << 20 },
        value_threshold: 512,
        block_size: 512,
        compression: Compression::Lz4,
        ..Options::default()
    };
    Store::open(dir, opts).unwrap()
}

fn setup() -> (tempfile::TempDir, Arc<Store>, Vec<TopicId>) {
    setup_with(true)
}

fn setup_with(background: bool) -> (tempfile::TempDir, Arc<Store>, Vec<TopicId>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), background);
    let ids: Vec<TopicId> = (0..TOPICS)
        .map(|i| {
            store
                .register_topic(TopicSpec {
                    name: format!("/c{i}"),
                    type_name: "std_msgs/msg/String".into(),
                    serialization_format: "cdr".into(),
                    ..TopicSpec::default()
                })
                .unwrap()
        })
        .collect();
    (dir, Arc::new(store), ids)
}

type Key = (TopicId, Nanos, u64);

fn append(store: &Store, id: TopicId, t: Nanos, seq_hint: u64) -> Key {
    let seq = store.append(id, t, 0, &payload(id, t, seq_hint)).unwrap();
    assert_eq!(seq, seq_hint, "sequence of topic {id}");
    (id, t, seq)
}

/// Fills [0, SPLIT) with in-order records on every topic, flushing now and
/// then so the readers start over several files.
fn prefill(store: &Store, ids: &[TopicId], seqs: &mut [u64]) -> BTreeSet<Key> {
    let mut keys = BTreeSet::new();
    let mut t = 0;
    while t < SPLIT {
        for (i, &id) in ids.iter().enumerate() {
            keys.insert(append(store, id, t + i as u64, seqs[i]));
            seqs[i] += 1;
        }
        t += STEP * 10;
        if t % (SPLIT / 4) == 0 {
            store.flush().unwrap();
        }
    }
    keys
}

/// Appends after SPLIT and late records inside [0, SPLIT), flushing and
/// compacting, until told to stop.
fn writer(store: &Store, ids: &[TopicId], mut seqs: Vec<u64>, stop: &AtomicBool) {
    let mut t = SPLIT;
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) || n < 300 {
        let i = (n % TOPICS as u64) as usize;
        let time = if n % 5 == 4 {
            (n * 7919) % SPLIT
        } else {
            t += STEP;
            t
        };
        append(store, ids[i], time, seqs[i]);
        seqs[i] += 1;
        n += 1;
        if n % 150 == 0 {
            store.flush().unwrap();
        }
        if n % 600 == 0 {
            store.compact().unwrap();
        }
        if n > 50_000 {
            break;
        }
    }
}

fn check_payloads(recs: &[Record], what: &str) {
    for r in recs {
        assert!(
            r.payload == payload(r.topic, r.log_time, r.sequence),
            "{what}: wrong payload for {:?}",
            (r.topic, r.log_time, r.sequence)
        );
    }
}

fn check_monotone(keys: &[Key], newest_first: bool, what: &str) {
    for w in keys.windows(2) {
        let ok = if newest_first {
            w[0].1 >= w[1].1
        } else {
            w[0].1 <= w[1].1
        };
        assert!(ok, "{what}: order broken at {:?} -> {:?}", w[0], w[1]);
    }
}

/// Pages through [0, SPLIT): every prefilled record exactly once, nothing
/// twice; late records appended meanwhile may or may not show up.
fn pager(store: &Store, before: &BTreeSet<Key>, newest_first: bool, max_messages: usize) {
    let what = format!("pager newest_first={newest_first} max={max_messages}");
    let mut req = ScanRequest {
        topics: vec![],
        start: 0,
        end: SPLIT,
        newest_first,
        max_messages,
        max_bytes: 16 << 10,
        cursor: None,
    };
    let mut seen: Vec<Key> = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.scan(&req).unwrap();
        check_payloads(&page.records, &what);
        seen.extend(
            page.records
                .iter()
                .map(|r| (r.topic, r.log_time, r.sequence)),
        );
        pages += 1;
        assert!(pages < 100_000, "{what}: paging does not end");
        match page.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => break,
        }
        thread::yield_now();
    }
    check_monotone(&seen, newest_first, &what);
    let set: BTreeSet<Key> = seen.iter().copied().collect();
    assert_eq!(set.len(), seen.len(), "{what}: a record came twice");
    let missed: Vec<_> = before.difference(&set).take(5).collect();
    assert!(missed.is_empty(), "{what}: missed {missed:?}");
    assert!(
        set.iter().all(|k| k.1 < SPLIT),
        "{what}: record outside the range"
    );
}

/// An iterator is a snapshot: exactly the records present when it was made.
fn snapshot_iter(store: &Store, at_creation: &BTreeSet<Key>, newest_first: bool) {
    let it = store.iter(&[], 0, Nanos::MAX, newest_first).unwrap();
    let mut keys = Vec::new();
    for (n, r) in it.enumerate() {
        let r = r.unwrap();
        check_payloads(std::slice::from_ref(&r), "iter");
        keys.push((r.topic, r.log_time, r.sequence));
        if n % 64 == 0 {
            thread::yield_now();
        }
    }
    check_monotone(&keys, newest_first, "iter");
    let set: BTreeSet<Key> = keys.iter().copied().collect();
    assert_eq!(set.len(), keys.len(), "iter: a record came twice");
    let missed: Vec<_> = at_creation.difference(&set).take(5).collect();
    let extra: Vec<_> = set.difference(at_creation).take(5).collect();
    assert!(missed.is_empty(), "iter missed {missed:?}");
    assert!(
        extra.is_empty(),
        "iter saw records appended later: {extra:?}"
    );
}

fn rounds() -> usize {
    std::env::var("MOTEDB_CONCURRENT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

#[test]
fn paging_during_writes_flushes_and_compactions_never_misses_or_repeats() {
    for round in 0..rounds() {
        let (_dir, store, ids) = setup();
        let mut seqs = vec![0u64; TOPICS];
        let before = prefill(&store, &ids, &mut seqs);
        let stop = Arc::new(AtomicBool::new(false));
        let w = {
            let (store, ids, stop) = (store.clone(), ids.clone(), stop.clone());
            thread::spawn(move || writer(&store, &ids, seqs, &stop))
        };
        let readers: Vec<_> = [(false, 7usize), (true, 13), (false, 250), (true, 1)]
            .into_iter()
            .map(|(newest_first, max)| {
                let (store, before) = (store.clone(), before.clone());
                thread::spawn(move || pager(&store, &before, newest_first, max + round))
            })
            .collect();
        for r in readers {
            r.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        w.join().unwrap();
        // The pages really ran across rewrites, not only appends.
        let h = store.health();
        assert!(h.compactions_completed > 0, "no compaction ran: {h:?}");
        assert!(
            h.compaction_bytes_written > 0,
            "no compaction rewrote data: {h:?}"
        );
    }
}

#[test]
fn iterators_are_snapshots_under_concurrent_compaction() {
    let (_dir, store, ids) = setup();
    let mut seqs = vec![0u64; TOPICS];
    let mut present = prefill(&store, &ids, &mut seqs);
    // Snapshots are taken between writer steps, so the set at creation is
    // known exactly; the writer then goes on while the iterators run.
    for round in 0..rounds() * 2 {
        let snapshot = present.clone();
        let barrier = Arc::new(Barrier::new(2));
        let reader = {
            let (store, barrier) = (store.clone(), barrier.clone());
            thread::spawn(move || {
                let it_fwd = store.iter(&[], 0, Nanos::MAX, false).unwrap();
                barrier.wait();
                let fwd: Vec<Record> = it_fwd.map(|r| r.unwrap()).collect();
                (fwd, round % 2 == 1)
            })
        };
        barrier.wait();
        for n in 0..400u64 {
            let i = (n % TOPICS as u64) as usize;
            let t = SPLIT * (round as u64 + 2) + n * STEP;
            present.insert(append(&store, ids[i], t, seqs[i]));
            seqs[i] += 1;
            if n % 100 == 99 {
                store.flush().unwrap();
                store.compact().unwrap();
            }
        }
        let (fwd, _) = reader.join().unwrap();
        let keys: BTreeSet<Key> = fwd
            .iter()
            .map(|r| (r.topic, r.log_time, r.sequence))
            .collect();
        assert_eq!(keys.len(), fwd.len(), "iter repeated a record");
        let missed: Vec<_> = snapshot.difference(&keys).take(5).collect();
        let extra: Vec<_> = keys.difference(&snapshot).take(5).collect();
        assert!(missed.is_empty(), "iter missed {missed:?}");
        assert!(extra.is_empty(), "iter saw later records {extra:?}");
        check_payloads(&fwd, "iter");
        snapshot_iter(&store, &present, round % 2 == 0);
    }
}

/// An iterator and a half-read cursor made before a compaction that merges
/// and deletes every table they saw are still served in full afterwards.
#[test]
fn iterator_made_before_compaction_is_read_after_it() {
    // No background threads: the merge must happen inside compact() below,
    // after the iterator and the cursor were taken.
    let (_dir, store, ids) = setup_with(false);
    let mut seqs = [0u64; TOPICS];
    let mut present = BTreeSet::new();
    // Overlapping tables: each round covers the same time span.
    for round in 0..5u64 {
        for n in 0..200u64 {
            let i = (n % TOPICS as u64) as usize;
            present.insert(append(&store, ids[i], n * 50 + round, seqs[i]));
            seqs[i] += 1;
        }
        store.flush().unwrap();
    }
    let mut it = store.iter(&[], 0, Nanos::MAX, true).unwrap();
    let first = it.next().unwrap().unwrap();
    let req = ScanRequest {
        topics: vec![],
        start: 0,
        end: Nanos::MAX,
        newest_first: false,
        max_messages: 100,
        max_bytes: u64::MAX,
        cursor: None,
    };
    let page1 = store.scan(&req).unwrap();
    let before = store.health().compaction_bytes_written;
    store.compact().unwrap();
    assert!(
        store.health().compaction_bytes_written > before,
        "no real compaction"
    );
    let mut keys = vec![(first.topic, first.log_time, first.sequence)];
    for r in it {
        let r = r.unwrap();
        check_payloads(std::slice::from_ref(&r), "iter after compaction");
        keys.push((r.topic, r.log_time, r.sequence));
    }
    check_monotone(&keys, true, "iter after compaction");
    let set: BTreeSet<Key> = keys.iter().copied().collect();
    assert_eq!(set.len(), keys.len(), "iter repeated a record");
    assert_eq!(set, present, "iter after compaction");
    // The cursor taken before the compaction continues exactly.
    let mut seen: Vec<Key> = page1
        .records
        .iter()
        .map(|r| (r.topic, r.log_time, r.sequence))
        .collect();
    let mut next = req.clone();
    next.cursor = page1.next_cursor;
    while next.cursor.is_some() {
        let page = store.scan(&next).unwrap();
        check_payloads(&page.records, "cursor after compaction");
        seen.extend(
            page.records
                .iter()
                .map(|r| (r.topic, r.log_time, r.sequence)),
        );
        next.cursor = page.next_cursor;
    }
    check_monotone(&seen, false, "cursor after compaction");
    let set: BTreeSet<Key> = seen.iter().copied().collect();
    assert_eq!(set.len(), seen.len(), "cursor repeated a record");
    assert_eq!(set, present, "cursor after compaction");
}
