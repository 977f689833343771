//! Property test of the engine against an in-memory model (a BTreeMap keyed
//! like the store: topic, log time, sequence).
//!
//! Random appends (in order, late, small and value-log sized payloads),
//! scans in both directions over topic subsets with message and byte limits,
//! cursor paging to exhaustion (with flushes and compactions between pages),
//! latest(), stats, reopen, flush, compact. Small memtable and block sizes make
//! flushes and compactions really happen. Retention has its own property.
//!
//! Cases: MOTEDB_PROPTEST_CASES (default 24; more for long campaigns).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a test failure"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use motedb::engine::{
    Clock, Codec, Compression, Durability, Nanos, Options, Record, Retention, ScanRequest, Store,
    TopicId, TopicSpec, Tuning,
};
use proptest::prelude::*;

mod seeded;

/// (topic, log_time, sequence)
type Key = (TopicId, Nanos, u64);

/// What the model keeps per record.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Value {
    publish_time: Nanos,
    payload: Vec<u8>,
}

/// The reference: everything appended, and the next sequence per topic.
#[derive(Default)]
struct Model {
    records: BTreeMap<Key, Value>,
    next_seq: BTreeMap<TopicId, u64>,
}

impl Model {
    fn in_range(&self, topics: &[TopicId], start: Nanos, end: Nanos) -> Vec<Key> {
        self.records
            .keys()
            .filter(|k| topics.contains(&k.0) && k.1 >= start && k.1 < end)
            .copied()
            .collect()
    }

    fn latest(&self, topic: TopicId, at: Nanos) -> Option<Key> {
        self.records
            .range((topic, 0, 0)..=(topic, at, u64::MAX))
            .next_back()
            .map(|(k, _)| *k)
    }
}

/// Deterministic payload bytes for a seed: a wrong payload cannot pass.
/// Even seeds repeat each byte 8 times, so value-log compression pays for
/// them and not for odd ones.
fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let run = if seed % 2 == 0 { 8 } else { 1 };
    let mut b = 0u8;
    (0..len)
        .map(|i| {
            if i % run == 0 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b = (x >> 24) as u8;
            }
            b
        })
        .collect()
}

fn spec(i: usize) -> TopicSpec {
    TopicSpec {
        name: format!("/topic_{i}"),
        type_name: format!("test_msgs/msg/T{i}"),
        serialization_format: "cdr".into(),
        definition: format!("uint64 field_{i}\n"),
        offered_qos: String::new(),
        type_hash: String::new(),
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Append `count` records to topic index `topic`: in order after the
    /// topic's last time, or late (`back` ns before it).
    Append {
        topic: usize,
        count: usize,
        back: Option<u64>,
        len: usize,
        big: bool,
    },
    Scan {
        topics: Vec<usize>,
        a: u64,
        b: u64,
        newest_first: bool,
        max_messages: usize,
        max_bytes: Option<u64>,
    },
    /// Page to exhaustion; flush (or compact) after page `churn_at`.
    Page {
        topics: Vec<usize>,
        newest_first: bool,
        max_messages: usize,
        max_bytes: Option<u64>,
        churn_at: Option<(usize, bool)>,
    },
    Latest {
        topic: usize,
        at: u64,
    },
    Stats,
    Flush,
    Compact,
    Reopen,
    Iter {
        topics: Vec<usize>,
        newest_first: bool,
    },
}

const TOPICS: usize = 4;
/// Times stay small so that late records land between existing ones.
const TIME_STEP: u64 = 1_000;

fn topic_subset() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::btree_set(0..TOPICS, 0..=TOPICS).prop_map(|s| s.into_iter().collect())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..TOPICS, 1usize..40, proptest::option::weighted(0.3, 0u64..50 * TIME_STEP),
               0usize..300, proptest::bool::weighted(0.08))
            .prop_map(|(topic, count, back, len, big)| Op::Append {
                topic, count, back, len, big
            }),
        4 => (topic_subset(), 0u64..400 * TIME_STEP, 0u64..400 * TIME_STEP, any::<bool>(),
              1usize..200, proptest::option::of(1u64..20_000))
            .prop_map(|(topics, a, b, newest_first, max_messages, max_bytes)| Op::Scan {
                topics, a, b, newest_first, max_messages, max_bytes
            }),
        3 => (topic_subset(), any::<bool>(), 1usize..50, proptest::option::of(1u64..8_000),
              proptest::option::of((0usize..6, any::<bool>())))
            .prop_map(|(topics, newest_first, max_messages, max_bytes, churn_at)| Op::Page {
                topics, newest_first, max_messages, max_bytes, churn_at
            }),
        2 => (0..TOPICS, 0u64..400 * TIME_STEP).prop_map(|(topic, at)| Op::Latest { topic, at }),
        1 => Just(Op::Stats),
        2 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
        1 => (topic_subset(), any::<bool>())
            .prop_map(|(topics, newest_first)| Op::Iter { topics, newest_first }),
    ]
}

#[derive(Clone, Debug)]
struct Config {
    memtable_bytes: usize,
    block_size: usize,
    compression: Compression,
}

fn config() -> impl Strategy<Value = Config> {
    (
        prop_oneof![Just(4usize << 10), Just(16 << 10), Just(64 << 10)],
        prop_oneof![Just(256usize), Just(1024), Just(4096)],
        prop_oneof![
            Just(Compression::None),
            Just(Compression::Lz4),
            Just(Compression::Zstd)
        ],
    )
        .prop_map(|(memtable_bytes, block_size, compression)| Config {
            memtable_bytes,
            block_size,
            compression,
        })
}

/// Payloads of at least this go to the value log in these tests.
const VALUE_THRESHOLD: usize = 512;
/// A "big" payload: at least 64 KiB, as a real point cloud would be.
const BIG_LEN: usize = 64 << 10;

/// The harness's wall clock: the newest log time appended so far, so
/// retention by age (wall-clock age of tables) can be checked against log
/// times, and tables are written in ingest order.
fn model_clock(wall: &Arc<AtomicU64>) -> Clock {
    let wall = wall.clone();
    Clock(Arc::new(move || wall.load(Ordering::SeqCst)))
}

fn options(cfg: &Config, retention: Retention, wall: &Arc<AtomicU64>) -> Options {
    // Small value-log files, so that they roll and retention can drop them.
    let tuning = Tuning {
        vlog_file_bytes: 128 << 10,
        clock: model_clock(wall),
        ..Tuning::default()
    };
    Options {
        tuning,
        durability: Durability::None,
        memtable_bytes: cfg.memtable_bytes,
        value_threshold: VALUE_THRESHOLD,
        block_size: cfg.block_size,
        compression: cfg.compression,
        // The same choice for value-log payloads, so all three codecs run.
        value_compression: match cfg.compression {
            Compression::None => Codec::Raw,
            Compression::Lz4 => Codec::Lz4,
            Compression::Zstd => Codec::Zstd,
        },
        retention,
        ..Options::default()
    }
}

struct Harness {
    dir: tempfile::TempDir,
    cfg: Config,
    retention: Retention,
    store: Option<Store>,
    ids: Vec<TopicId>,
    model: Model,
    /// In-order appends follow one clock shared by all topics (as receive
    /// times on a robot do) instead of each topic's own last time.
    shared_clock: bool,
    /// The store's wall clock (`model_clock`).
    wall: Arc<AtomicU64>,
}

impl Harness {
    fn new(cfg: Config, retention: Retention) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let wall = Arc::new(AtomicU64::new(0));
        let store = Store::open(dir.path(), options(&cfg, retention.clone(), &wall)).unwrap();
        let ids: Vec<TopicId> = (0..TOPICS)
            .map(|i| store.register_topic(spec(i)).unwrap())
            .collect();
        let unique: BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), TOPICS, "topic ids must be distinct: {ids:?}");
        Harness {
            dir,
            cfg,
            retention,
            store: Some(store),
            ids,
            model: Model::default(),
            shared_clock: false,
            wall,
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    fn ids(&self, idx: &[usize]) -> Vec<TopicId> {
        idx.iter().map(|&i| self.ids[i]).collect()
    }

    fn last_time(&self, topic: TopicId) -> Nanos {
        if self.shared_clock {
            return self.model.records.keys().map(|k| k.1).max().unwrap_or(0);
        }
        self.model
            .records
            .range((topic, 0, 0)..=(topic, u64::MAX, u64::MAX))
            .next_back()
            .map_or(0, |(k, _)| k.1)
    }

    fn append(&mut self, topic: usize, count: usize, back: Option<u64>, len: usize, big: bool) {
        let id = self.ids[topic];
        for i in 0..count {
            let last = self.last_time(id);
            let t = match back {
                Some(b) => last.saturating_sub(b + i as u64),
                None => last + TIME_STEP,
            };
            let len = if big && i == 0 {
                BIG_LEN + len
            } else if i % 7 == 3 {
                VALUE_THRESHOLD + len
            } else {
                len
            };
            let seq_expected = *self.model.next_seq.get(&id).unwrap_or(&0);
            let seed = (u64::from(id) << 48) ^ (t << 8) ^ seq_expected;
            let body = payload(seed, len);
            let publish = t / 2;
            self.wall.fetch_max(t, Ordering::SeqCst);
            let seq = self.store().append(id, t, publish, &body).unwrap();
            assert_eq!(seq, seq_expected, "per-topic sequence of topic {id}");
            self.model.next_seq.insert(id, seq + 1);
            self.model.records.insert(
                (id, t, seq),
                Value {
                    publish_time: publish,
                    payload: body,
                },
            );
        }
    }

    fn reopen(&mut self) {
        let store = self.store.take().unwrap();
        store.close().unwrap();
        let store = Store::open(
            self.dir.path(),
            options(&self.cfg, self.retention.clone(), &self.wall),
        )
        .expect("reopen");
        for (i, &id) in self.ids.iter().enumerate() {
            let again = store.register_topic(spec(i)).unwrap();
            assert_eq!(again, id, "topic id stable across reopen");
            let info = store.topic_by_name(&spec(i).name).expect("catalog kept");
            assert_eq!(info.spec, spec(i), "topic spec kept across reopen");
        }
        self.store = Some(store);
    }
}

/// Checks that `got` is exactly the model's `keys`, in scan order.
fn check_records(model: &Model, keys: &[Key], got: &[Record], newest_first: bool, what: &str) {
    let got_keys: Vec<Key> = got
        .iter()
        .map(|r| (r.topic, r.log_time, r.sequence))
        .collect();
    let got_set: BTreeSet<Key> = got_keys.iter().copied().collect();
    assert_eq!(got_set.len(), got_keys.len(), "{what}: a record repeated");
    let want_set: BTreeSet<Key> = keys.iter().copied().collect();
    let missing: Vec<_> = want_set.difference(&got_set).take(5).collect();
    let extra: Vec<_> = got_set.difference(&want_set).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:?} extra {extra:?} (want {} got {})",
        want_set.len(),
        got_set.len()
    );
    check_order(&got_keys, newest_first, what);
    for r in got {
        let v = &model.records[&(r.topic, r.log_time, r.sequence)];
        assert_eq!(r.publish_time, v.publish_time, "{what}: publish time");
        assert!(
            r.payload == v.payload,
            "{what}: payload of {:?}",
            (r.topic, r.log_time)
        );
    }
}

/// Log time is monotone across topics; within a topic (time, seq) is.
fn check_order(keys: &[Key], newest_first: bool, what: &str) {
    let mut last_per_topic: BTreeMap<TopicId, (Nanos, u64)> = BTreeMap::new();
    for w in keys.windows(2) {
        let ok = if newest_first {
            w[0].1 >= w[1].1
        } else {
            w[0].1 <= w[1].1
        };
        assert!(
            ok,
            "{what}: log time order broken at {:?} -> {:?}",
            w[0], w[1]
        );
    }
    for k in keys {
        if let Some(prev) = last_per_topic.insert(k.0, (k.1, k.2)) {
            let ok = if newest_first {
                prev > (k.1, k.2)
            } else {
                prev < (k.1, k.2)
            };
            assert!(ok, "{what}: topic {} order broken at {k:?}", k.0);
        }
    }
}

fn range_of(a: u64, b: u64) -> (Nanos, Nanos) {
    (a.min(b), a.max(b))
}

fn request(topics: Vec<TopicId>, start: Nanos, end: Nanos, newest_first: bool) -> ScanRequest {
    ScanRequest {
        topics,
        start,
        end,
        newest_first,
        max_messages: usize::MAX,
        max_bytes: u64::MAX,
        cursor: None,
    }
}

/// The subset of all topics a request names (empty = all).
fn effective(h: &Harness, topics: &[TopicId]) -> Vec<TopicId> {
    if topics.is_empty() {
        h.ids.clone()
    } else {
        topics.to_vec()
    }
}

fn model_order(keys: &mut [Key], newest_first: bool) {
    keys.sort_by_key(|k| (k.1, k.0, k.2));
    if newest_first {
        keys.reverse();
    }
}

fn page_limits_hold(page: &[Record], max_messages: usize, max_bytes: u64, what: &str) {
    assert!(page.len() <= max_messages, "{what}: page over max_messages");
    if page.len() > 1 {
        let bytes: u64 = page.iter().map(|r| r.payload.len() as u64).sum();
        assert!(
            bytes <= max_bytes,
            "{what}: page of {bytes} B over {max_bytes}"
        );
    }
}

fn do_scan(h: &Harness, op: &Op) {
    let Op::Scan {
        topics,
        a,
        b,
        newest_first,
        max_messages,
        max_bytes,
    } = op
    else {
        unreachable!()
    };
    let (start, end) = range_of(*a, *b);
    let ids = h.ids(topics);
    let mut req = request(ids.clone(), start, end, *newest_first);
    req.max_messages = *max_messages;
    req.max_bytes = max_bytes.unwrap_or(u64::MAX);
    let page = h.store().scan(&req).unwrap();
    page_limits_hold(&page.records, req.max_messages, req.max_bytes, "scan");
    let mut want = h.model.in_range(&effective(h, &ids), start, end);
    model_order(&mut want, *newest_first);
    // The page must be a prefix of the answer (ties on log time across
    // topics may come in any order, so compare as sets plus order checks).
    let n = page.records.len();
    if !want.is_empty() {
        assert!(
            n > 0,
            "scan: empty page while {} records remain",
            want.len()
        );
    }
    let boundary = if n > 0 {
        page.records[n - 1].log_time
    } else {
        0
    };
    let strictly_inside: Vec<Key> = want
        .iter()
        .copied()
        .filter(|k| {
            if *newest_first {
                k.1 > boundary
            } else {
                k.1 < boundary
            }
        })
        .collect();
    let got: BTreeSet<Key> = page
        .records
        .iter()
        .map(|r| (r.topic, r.log_time, r.sequence))
        .collect();
    for k in &strictly_inside {
        assert!(got.contains(k), "scan page skipped {k:?}");
    }
    let want_set: BTreeSet<Key> = want.iter().copied().collect();
    assert!(
        got.is_subset(&want_set),
        "scan returned records outside the range"
    );
    check_records(
        &h.model,
        &got.iter().copied().collect::<Vec<_>>(),
        &page.records,
        *newest_first,
        "scan",
    );
    if n == want.len() {
        // Everything fitted: the cursor may only say "exhausted" or lead to
        // an empty last page.
        if let Some(c) = page.next_cursor {
            let mut next = req.clone();
            next.cursor = Some(c);
            let rest = h.store().scan(&next).unwrap();
            assert!(rest.records.is_empty(), "records after the whole range");
        }
    } else {
        assert!(page.next_cursor.is_some(), "no cursor while records remain");
    }
}

/// Pages with a cursor to exhaustion; the union must be the range exactly once.
#[allow(clippy::too_many_arguments)]
fn do_page(
    h: &mut Harness,
    topics: &[usize],
    newest_first: bool,
    max_messages: usize,
    max_bytes: Option<u64>,
    churn_at: Option<(usize, bool)>,
) {
    let ids = h.ids(topics);
    let mut req = request(ids.clone(), 0, Nanos::MAX, newest_first);
    req.max_messages = max_messages;
    req.max_bytes = max_bytes.unwrap_or(u64::MAX);
    let mut want = h.model.in_range(&effective(h, &ids), 0, Nanos::MAX);
    model_order(&mut want, newest_first);
    let mut got: Vec<Record> = Vec::new();
    let mut pages = 0usize;
    loop {
        let page = h.store().scan(&req).unwrap();
        page_limits_hold(&page.records, max_messages, req.max_bytes, "page");
        if got.len() < want.len() {
            assert!(!page.records.is_empty(), "empty page while records remain");
        }
        got.extend(page.records);
        pages += 1;
        assert!(pages <= want.len() + 2, "paging does not terminate");
        if let Some((at, compact)) = churn_at {
            if pages == at + 1 {
                if compact {
                    h.store().compact().unwrap();
                } else {
                    h.store().flush().unwrap();
                }
            }
        }
        match page.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => break,
        }
    }
    check_records(&h.model, &want, &got, newest_first, "paging");
}

fn do_latest(h: &Harness, topic: usize, at: u64) {
    let id = h.ids[topic];
    let got = h.store().latest(id, at).unwrap();
    let want = h.model.latest(id, at);
    match (got, want) {
        (None, None) => {}
        (Some(r), Some(k)) => {
            assert_eq!((r.topic, r.log_time), (k.0, k.1), "latest({id}, {at})");
            // Equal log times: the newest sequence is the latest.
            assert_eq!(r.sequence, k.2, "latest({id}, {at}) tie on log time");
            let v = &h.model.records[&k];
            assert!(r.payload == v.payload, "latest payload");
        }
        (g, w) => panic!("latest({id}, {at}): got {g:?}, want {w:?}"),
    }
}

fn do_stats(h: &Harness) {
    for (i, &id) in h.ids.iter().enumerate() {
        let info = h
            .store()
            .topics()
            .into_iter()
            .find(|t| t.id == id)
            .expect("topic listed");
        assert_eq!(info.spec, spec(i));
        let recs: Vec<(&Key, &Value)> = h
            .model
            .records
            .range((id, 0, 0)..=(id, u64::MAX, u64::MAX))
            .collect();
        assert_eq!(info.message_count, recs.len() as u64, "count of topic {id}");
        let bytes: u64 = recs.iter().map(|(_, v)| v.payload.len() as u64).sum();
        assert!(info.size_bytes >= bytes, "size_bytes of topic {id}");
        assert_eq!(
            info.first_time,
            recs.first().map(|(k, _)| k.1),
            "first_time"
        );
        assert_eq!(info.last_time, recs.last().map(|(k, _)| k.1), "last_time");
    }
}

fn do_iter(h: &Harness, topics: &[usize], newest_first: bool) {
    let ids = h.ids(topics);
    let got: Vec<Record> = h
        .store()
        .iter(&ids, 0, Nanos::MAX, newest_first)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let want = h.model.in_range(&effective(h, &ids), 0, Nanos::MAX);
    check_records(&h.model, &want, &got, newest_first, "iter");
}

fn run(h: &mut Harness, op: &Op) {
    match op {
        Op::Append {
            topic,
            count,
            back,
            len,
            big,
        } => h.append(*topic, *count, *back, *len, *big),
        Op::Scan { .. } => do_scan(h, op),
        Op::Page {
            topics,
            newest_first,
            max_messages,
            max_bytes,
            churn_at,
        } => do_page(
            h,
            topics,
            *newest_first,
            *max_messages,
            *max_bytes,
            *churn_at,
        ),
        Op::Latest { topic, at } => do_latest(h, *topic, *at),
        Op::Stats => do_stats(h),
        Op::Flush => h.store().flush().unwrap(),
        Op::Compact => h.store().compact().unwrap(),
        Op::Reopen => h.reopen(),
        Op::Iter {
            topics,
            newest_first,
        } => do_iter(h, topics, *newest_first),
    }
}

fn full_check(h: &mut Harness) {
    do_page(h, &[], false, 97, None, None);
    do_page(h, &[], true, 31, Some(4_000), None);
    do_stats(h);
}

/// Model cases per run (see tests/seeded: fixed seed in CI, more and random
/// in a campaign).
fn model_config(ci_cases: u32, max_shrink_iters: u32) -> ProptestConfig {
    ProptestConfig {
        max_shrink_iters,
        ..seeded::proptest_config(ci_cases)
    }
}

proptest! {
    #![proptest_config(model_config(24, 200))]

    #[test]
    fn engine_matches_btreemap_model(cfg in config(), ops in proptest::collection::vec(op(), 1..60)) {
        let mut h = Harness::new(cfg, Retention::default());
        for op in &ops {
            run(&mut h, op);
        }
        full_check(&mut h);
        h.reopen();
        full_check(&mut h);
    }
}

// ---------------------------------------------------------------- retention

/// Reads everything plus the retention counters, retrying until no
/// background retention ran in between (health read before and after).
fn settled_read(h: &Harness) -> (Vec<Record>, motedb::engine::Health) {
    for _ in 0..100 {
        let before = h.store().health();
        let got: Vec<Record> = h
            .store()
            .iter(&[], 0, Nanos::MAX, false)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let after = h.store().health();
        if before.retention_dropped_messages == after.retention_dropped_messages
            && before.retention_dropped_files == after.retention_dropped_files
        {
            return (got, after);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("retention never settled");
}

/// Every record present must be the model's; per topic what remains is a
/// suffix of the topic in (time, seq) order (in-order data, files dropped
/// oldest first), and (while the counters are from this open) the drop
/// counters add up.
fn check_retention(h: &Harness, counters: bool) -> u64 {
    let (got, health) = settled_read(h);
    let keys: Vec<Key> = got
        .iter()
        .map(|r| (r.topic, r.log_time, r.sequence))
        .collect();
    check_records(&h.model, &keys, &got, false, "retention scan");
    let present: BTreeSet<Key> = keys.iter().copied().collect();
    for &id in &h.ids {
        let topic: Vec<Key> = h
            .model
            .records
            .range((id, 0, 0)..=(id, u64::MAX, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        let first_kept = topic.iter().position(|k| present.contains(k));
        if let Some(p) = first_kept {
            let hole = topic[p..].iter().find(|k| !present.contains(k));
            assert!(
                hole.is_none(),
                "retention left a hole in topic {id}: {hole:?}"
            );
        }
    }
    let dropped = h.model.records.len() as u64 - present.len() as u64;
    if counters {
        assert_eq!(
            health.retention_dropped_messages, dropped,
            "retention_dropped_messages vs records missing"
        );
        if dropped > 0 {
            assert!(health.retention_dropped_files > 0, "drops without files");
            assert!(health.retention_dropped_bytes > 0, "drops without bytes");
        } else {
            assert_eq!(health.retention_dropped_files, 0);
        }
    }
    dropped
}

fn dir_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

proptest! {
    #![proptest_config(model_config(13, 100))]

    /// In-order appends with a byte limit: no drop below the limit, a suffix
    /// per topic above it, counters consistent, and space really reclaimed.
    #[test]
    fn retention_drops_oldest_whole_files(
        cfg in config(),
        limit_kib in 64u64..512,
        rounds in proptest::collection::vec((0..TOPICS, 1usize..80, 0usize..300, proptest::bool::weighted(0.1)), 1..40),
    ) {
        let limit = limit_kib << 10;
        let retention = Retention { max_bytes: limit, max_age: None, ..Retention::default() };
        let mut h = Harness::new(cfg, retention);
        h.shared_clock = true;
        for (i, (topic, count, len, big)) in rounds.iter().enumerate() {
            h.append(*topic, *count, None, *len, *big);
            if i % 5 == 4 {
                h.store().flush().unwrap();
                h.store().compact().unwrap();
            }
        }
        h.store().flush().unwrap();
        h.store().compact().unwrap();
        let dropped = check_retention(&h, true);
        let ingested: u64 = h.model.records.values().map(|v| v.payload.len() as u64).sum();
        if ingested < limit / 4 {
            prop_assert_eq!(dropped, 0, "dropped under the limit");
        }
        h.reopen();
        let dropped_after = check_retention(&h, true);
        prop_assert!(dropped_after >= dropped, "records came back after reopen");
        // Whole-file retention overshoots by at most a few files and the
        // WAL; four times the limit plus slack means it does nothing at all.
        let used = dir_bytes(h.dir.path());
        prop_assert!(used <= 4 * limit + (4 << 20), "store uses {} B for a {} B limit", used, limit);
    }
}

/// Nothing is dropped while the store stays far under its byte limit.
#[test]
fn retention_keeps_everything_under_the_limit() {
    let cfg = Config {
        memtable_bytes: 8 << 10,
        block_size: 1024,
        compression: Compression::Lz4,
    };
    let retention = Retention {
        max_bytes: 64 << 20,
        max_age: None,
        ..Retention::default()
    };
    let mut h = Harness::new(cfg, retention);
    for round in 0..20 {
        h.append(round % TOPICS, 50, None, 200, round == 7);
        h.store().flush().unwrap();
    }
    h.store().compact().unwrap();
    let health = h.store().health();
    assert_eq!(health.retention_dropped_files, 0);
    assert_eq!(health.retention_dropped_messages, 0);
    full_check(&mut h);
}

/// A named regression: late data spread over many flushed L0 files must all
/// survive a compaction that merges overlapping L0 files (the seed lost data
/// by merging only some of them).
#[test]
fn overlapping_l0_files_all_survive_compaction() {
    let cfg = Config {
        memtable_bytes: 4 << 10,
        block_size: 256,
        compression: Compression::None,
    };
    let mut h = Harness::new(cfg, Retention::default());
    for round in 0..12 {
        h.append(0, 30, None, 100, false);
        h.append(0, 10, Some(10 * TIME_STEP * round as u64), 100, false);
        h.append(1 + round % 3, 20, None, 50, false);
        h.store().flush().unwrap();
    }
    h.store().compact().unwrap();
    full_check(&mut h);
    h.reopen();
    h.store().compact().unwrap();
    full_check(&mut h);
}

/// Bytes of the store's data files (tables and value logs).
fn data_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.ends_with(".sst") || n.ends_with(".vlog")
        })
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// A topic whose clock runs far ahead of another's (a sensor that resumed
/// after a pause, or sim time per source) shares the first table with it.
/// Retention over the byte limit must still leave each topic contiguous:
/// dropping a newer table of topic 0 while an older one stays leaves a hole
/// in the middle of the recording.
#[test]
fn retention_never_leaves_a_hole_inside_a_topic() {
    let cfg = Config {
        memtable_bytes: 64 << 20,
        block_size: 1024,
        compression: Compression::None,
    };
    let mut h = Harness::new(cfg, Retention::default());
    // Table 1: topic 0 early, topic 1 far ahead in time.
    h.append(0, 100, None, 100, false);
    let id1 = h.ids[1];
    for i in 0..100u64 {
        let t = 1_000_000_000 + i * TIME_STEP;
        let seq = h.store().append(id1, t, 0, &payload(t, 100)).unwrap();
        h.model.next_seq.insert(id1, seq + 1);
        h.model.records.insert(
            (id1, t, seq),
            Value {
                publish_time: 0,
                payload: payload(t, 100),
            },
        );
    }
    h.store().flush().unwrap();
    // Tables 2 and 3: topic 0 goes on.
    h.append(0, 100, None, 100, false);
    h.store().flush().unwrap();
    h.append(0, 100, None, 100, false);
    h.store().flush().unwrap();
    let total = data_bytes(h.dir.path());
    h.store.take().unwrap().close().unwrap();
    // Just over the limit: exactly one table has to go.
    h.retention = Retention {
        max_bytes: total - 1,
        max_age: None,
        ..Retention::default()
    };
    h.store =
        Some(Store::open(h.dir.path(), options(&h.cfg, h.retention.clone(), &h.wall)).unwrap());
    h.store().compact().unwrap();
    let dropped = check_retention(&h, true);
    assert!(dropped > 0, "over the limit but nothing dropped");
}

/// Loss counters reported by the writer are kept in the catalog and survive
/// a reopen.
#[test]
fn loss_counters_persist_across_reopen() {
    let cfg = Config {
        memtable_bytes: 16 << 10,
        block_size: 1024,
        compression: Compression::Lz4,
    };
    let mut h = Harness::new(cfg, Retention::default());
    h.append(1, 10, None, 50, false);
    h.store().record_loss(h.ids[1], 3, 2).unwrap();
    h.store().record_loss(h.ids[1], 4, 0).unwrap();
    h.store().record_loss(h.ids[2], 0, 9).unwrap();
    h.reopen();
    let info = |i: usize| h.store().topic_by_name(&spec(i).name).unwrap();
    assert_eq!((info(1).dropped_count, info(1).gap_count), (7, 2));
    assert_eq!((info(2).dropped_count, info(2).gap_count), (0, 9));
    assert_eq!((info(0).dropped_count, info(0).gap_count), (0, 0));
    assert!(h.store().record_loss(999, 1, 1).is_err(), "unknown topic");
    full_check(&mut h);
}

/// A read-only open next to a live writer sees the durable state at open
/// time, never changes under the caller, and refuses writes.
#[test]
fn read_only_open_is_a_durable_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        durability: Durability::Sync,
        memtable_bytes: 8 << 10,
        value_threshold: VALUE_THRESHOLD,
        ..Options::default()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    let id = store.register_topic(spec(0)).unwrap();
    for t in 0..300u64 {
        store
            .append(id, t, 0, &payload(t, (t % 3) as usize * 400))
            .unwrap();
        if t == 150 {
            store.flush().unwrap();
        }
    }
    let ro = Store::open_read_only(dir.path()).unwrap();
    for t in 300..600u64 {
        store.append(id, t, 0, &payload(t, 10)).unwrap();
    }
    store.flush().unwrap();
    store.compact().unwrap();
    let ro_id = ro.topic_by_name(&spec(0).name).unwrap().id;
    let got: Vec<Record> = ro
        .iter(&[ro_id], 0, Nanos::MAX, false)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let times: Vec<Nanos> = got.iter().map(|r| r.log_time).collect();
    assert_eq!(times, (0..300).collect::<Vec<_>>(), "read-only snapshot");
    for r in &got {
        let t = r.log_time;
        assert!(
            r.payload == payload(t, (t % 3) as usize * 400),
            "payload {t}"
        );
    }
    assert!(
        ro.append(ro_id, 1_000, 0, b"x").is_err(),
        "read-only append"
    );
    store.close().unwrap();
}

/// Cursors are untrusted text: garbage gives `InvalidCursor`, a damaged
/// valid cursor gives an error or a page inside the range, never a panic
/// or a record from outside the request.
#[test]
fn damaged_cursors_are_rejected_or_harmless() {
    let cfg = Config {
        memtable_bytes: 8 << 10,
        block_size: 512,
        compression: Compression::Zstd,
    };
    let mut h = Harness::new(cfg, Retention::default());
    for i in 0..TOPICS {
        h.append(i, 60, None, 40, false);
    }
    h.store().flush().unwrap();
    let mut req = request(vec![h.ids[1]], 5 * TIME_STEP, 50 * TIME_STEP, false);
    req.max_messages = 7;
    for bad in [
        "",
        "garbage",
        "\u{0}\u{1}",
        "99999999999999999999999999",
        "-1:-1",
    ] {
        req.cursor = Some(bad.to_string());
        match h.store().scan(&req) {
            Err(motedb::engine::Error::InvalidCursor(_)) => {}
            other => panic!("cursor {bad:?}: {other:?}"),
        }
    }
    req.cursor = None;
    let good = h.store().scan(&req).unwrap().next_cursor.unwrap();
    let want: BTreeSet<Key> = h
        .model
        .in_range(&[h.ids[1]], 5 * TIME_STEP, 50 * TIME_STEP)
        .into_iter()
        .collect();
    let bytes = good.as_bytes();
    for i in 0..bytes.len() {
        for delta in [1u8, 7, 0x20] {
            let mut b = bytes.to_vec();
            b[i] = b[i].wrapping_add(delta);
            let Ok(text) = String::from_utf8(b) else {
                continue;
            };
            req.cursor = Some(text.clone());
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.store().scan(&req)))
                .unwrap_or_else(|_| panic!("cursor {text:?} panicked"));
            if let Ok(page) = r {
                for rec in &page.records {
                    let k = (rec.topic, rec.log_time, rec.sequence);
                    assert!(
                        want.contains(&k),
                        "cursor {text:?} gave {k:?} outside the request"
                    );
                }
            }
        }
    }
}

/// The harsh case for a read-only snapshot: after it was opened the writer
/// merges and deletes every table it saw (overlapping L0 files, real
/// compaction). Reading the snapshot afterwards must still give exactly the
/// records durable at open time, or a typed error naming a file; never a
/// silently shorter answer.
#[test]
fn read_only_snapshot_survives_writer_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        durability: Durability::Sync,
        memtable_bytes: 1 << 20,
        value_threshold: VALUE_THRESHOLD,
        ..Options::default()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    let id = store.register_topic(spec(0)).unwrap();
    let body = |t: u64| payload(t, if t % 4 == 0 { 900 } else { 60 });
    // Four overlapping tables: every round covers the same time span.
    for round in 0..4u64 {
        for i in 0..100u64 {
            let t = i * 10 + round;
            store.append(id, t, 0, &body(t)).unwrap();
        }
        store.flush().unwrap();
    }
    let ro = Store::open_read_only(dir.path()).unwrap();
    for round in 4..8u64 {
        for i in 0..100u64 {
            let t = i * 10 + round;
            store.append(id, t, 0, &body(t)).unwrap();
        }
        store.flush().unwrap();
    }
    store.compact().unwrap();
    assert!(
        store.health().compaction_bytes_written > 0,
        "no real compaction"
    );
    let ro_id = ro.topic_by_name(&spec(0).name).unwrap().id;
    let got: Result<Vec<Record>, _> = ro
        .iter(&[ro_id], 0, Nanos::MAX, false)
        .and_then(|it| it.collect());
    match got {
        Ok(recs) => {
            assert_eq!(recs.len(), 400, "read-only snapshot after compaction");
            for r in &recs {
                assert!(
                    r.log_time % 10 < 4,
                    "record {} from after the snapshot",
                    r.log_time
                );
                assert!(r.payload == body(r.log_time), "payload {}", r.log_time);
            }
        }
        Err(e) => panic!("read-only snapshot unreadable after the writer compacted: {e}"),
    }
    store.close().unwrap();
}

/// Age retention (wall-clock age of tables; the harness's clock is the
/// newest log time appended): whole tables older than the cutoff go,
/// nothing younger than the cutoff ever does, and what remains per topic is
/// still a suffix.
#[test]
fn retention_by_age_keeps_everything_younger_than_the_cutoff() {
    let cfg = Config {
        memtable_bytes: 8 << 10,
        block_size: 512,
        compression: Compression::Lz4,
    };
    let max_age = std::time::Duration::from_nanos(300 * TIME_STEP);
    let retention = Retention {
        max_bytes: 0,
        max_age: Some(max_age),
        ..Retention::default()
    };
    let mut h = Harness::new(cfg, retention);
    h.shared_clock = true;
    for round in 0..40 {
        h.append(round % TOPICS, 40, None, 80, false);
        if round % 8 == 7 {
            h.store().flush().unwrap();
        }
    }
    h.store().flush().unwrap();
    h.store().compact().unwrap();
    let dropped = check_retention(&h, true);
    let newest = h.model.records.keys().map(|k| k.1).max().unwrap();
    let cutoff = newest - 300 * TIME_STEP;
    let (got, _) = settled_read(&h);
    let present: BTreeSet<Key> = got
        .iter()
        .map(|r| (r.topic, r.log_time, r.sequence))
        .collect();
    let young_lost: Vec<_> = h
        .model
        .records
        .keys()
        .filter(|k| k.1 >= cutoff && !present.contains(k))
        .take(3)
        .collect();
    assert!(
        young_lost.is_empty(),
        "dropped records younger than the cutoff: {young_lost:?}"
    );
    assert!(
        dropped > 0,
        "1600 records over 1600 steps, 300-step max age: nothing dropped"
    );
}
