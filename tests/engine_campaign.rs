//! Power-cut campaigns on the hostile `FaultFs` (docs/reliability.md).
//!
//! Each case runs three writer threads (one topic each, small and value-log
//! payloads), a syncer, a flusher and a reader at once, with background
//! compaction and, in every fourth case, a byte quota that makes retention
//! drop files. The power goes at a random write; before that, depending on
//! the kind, nothing else happens (clean, torn), one fsync fails (losing its
//! dirty pages for good), or the disk fills up. Then the disk keeps exactly
//! its durable state (clean) or random unsynced pages and directory entries
//! (every other kind), and the store is reopened. It must open, hold every
//! acknowledged record (Sync: `append` returned Ok; otherwise covered by a
//! `sync()` that returned Ok and began after the append returned), hold no
//! record that was never written and no wrong payload, never show a
//! sequence twice, lose to retention only a prefix of each topic, and take
//! new writes.
//!
//! Cases per kind: `MOTEDB_CAMPAIGN_CUTS` (default 40; the recorded
//! campaign ran 2000, see docs/reliability.md). Seeds follow
//! `tests/seeded` (`MOTEDB_SEED` replays one run).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a test failure"
)]

mod engine_common;
mod seeded;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use motedb::engine::fs::{FaultFs, PowerCut};
use motedb::engine::{
    Codec, Compression, Durability, Nanos, Options, Retention, Store, TopicSpec, Tuning,
};

const DB: &str = "/db";
const WRITERS: usize = 3;
const APPENDS: u64 = 150;
const VALUE_THRESHOLD: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Clean,
    Torn,
    FailedFsync,
    DiskFull,
}

fn payload(w: usize, t: Nanos) -> Vec<u8> {
    let len = match t % 7 {
        0 => VALUE_THRESHOLD + (t % 900) as usize,
        1 => 0,
        _ => (t % 120) as usize + 5,
    };
    // Writer 1's payloads compress (stored encoded), the others' do not.
    engine_common::mixed_bytes(
        t.wrapping_mul(0x9E37) ^ ((w as u64) << 48) ^ 0x5EED,
        len,
        w == 1,
    )
}

fn spec(w: usize) -> TopicSpec {
    TopicSpec {
        name: format!("/cut_{w}"),
        type_name: "std_msgs/msg/ByteMultiArray".into(),
        serialization_format: "cdr".into(),
        ..TopicSpec::default()
    }
}

/// SplitMix64 for the case's choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

fn options(fs: &FaultFs, durability: Durability, quota: u64) -> Options {
    Options {
        durability,
        memtable_bytes: 6 << 10,
        value_threshold: VALUE_THRESHOLD,
        block_size: 512,
        compression: Compression::Lz4,
        value_compression: Codec::Zstd,
        retention: Retention {
            max_bytes: quota,
            max_age: None,
            ..Retention::default()
        },
        fs: Arc::new(fs.clone()),
        // Retention drops are logged as Dropped edits too, so the cuts
        // land in those batches as well (an offloading node's setting).
        remember_dropped: true,
        retention_guard: None,
        tuning: Tuning {
            vlog_file_bytes: 12 << 10,
            stop_timeout: Duration::from_millis(200),
            ..Tuning::default()
        },
    }
}

/// What the threads learned.
#[derive(Default)]
struct Ledger {
    /// Per writer: times appended (returned Ok), in order.
    appended: Vec<Vec<Nanos>>,
    /// Per writer: how many of `appended` are acknowledged durable.
    acked: Vec<usize>,
    /// Every (writer, time) handed to append.
    attempted: BTreeSet<(usize, Nanos)>,
}

struct Case {
    kind: Kind,
    seed: u64,
    durability: Durability,
    quota: u64,
}

impl Case {
    fn new(kind: Kind, n: u64, base: u64) -> Case {
        let seed = base ^ (n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) ^ (kind as u64) << 56;
        let durability = match n % 3 {
            0 => Durability::Sync,
            1 => Durability::Periodic(Duration::from_millis(2)),
            _ => Durability::None,
        };
        let quota = if n % 4 == 3 { 24 << 10 } else { 0 };
        Case {
            kind,
            seed,
            durability,
            quota,
        }
    }

    fn name(&self) -> String {
        format!(
            "{:?} seed {} {:?} quota {}",
            self.kind, self.seed, self.durability, self.quota
        )
    }
}

/// What one case exercised.
#[derive(Default, Debug)]
struct Tally {
    cases: u64,
    /// The power went before the writers finished.
    cut_mid_run: u64,
    acked_checked: u64,
    torn_tails_cut: u64,
    write_errors_seen: u64,
}

/// Writes a run with no fault makes (measured once per configuration), so
/// the power goes somewhere inside the work.
fn clean_writes(durability: Durability, quota: u64) -> u64 {
    static SEEN: Mutex<Vec<(Durability, u64, u64)>> = Mutex::new(Vec::new());
    if let Some(n) = SEEN
        .lock()
        .unwrap()
        .iter()
        .find(|s| s.0 == durability && s.1 == quota)
    {
        return n.2;
    }
    let fs = FaultFs::new();
    let store = Store::open(DB, options(&fs, durability, quota)).unwrap();
    let ids: Vec<u32> = (0..WRITERS)
        .map(|w| store.register_topic(spec(w)).unwrap())
        .collect();
    for n in 0..APPENDS {
        for (w, id) in ids.iter().enumerate() {
            let t = n * 10 + w as u64;
            store.append(*id, t, t + 1, &payload(w, t)).unwrap();
            if n % 8 == 7 && w == 0 {
                store.sync().unwrap();
            }
        }
    }
    store.close().unwrap();
    let n = fs.writes().max(2);
    SEEN.lock().unwrap().push((durability, quota, n));
    n
}

fn run(case: &Case, tally: &mut Tally) {
    let mut rng = Rng(case.seed);
    let fs = FaultFs::with_seed(case.seed);
    let store = Arc::new(Store::open(DB, options(&fs, case.durability, case.quota)).unwrap());
    let ids: Vec<u32> = (0..WRITERS)
        .map(|w| store.register_topic(spec(w)).unwrap())
        .collect();
    let ledger = Arc::new(Mutex::new(Ledger {
        appended: vec![Vec::new(); WRITERS],
        acked: vec![0; WRITERS],
        ..Ledger::default()
    }));
    match case.kind {
        Kind::FailedFsync => fs.fail_nth_sync(1 + rng.below(120)),
        Kind::DiskFull => fs.set_space_limit(Some(fs.used_bytes() + 2_000 + rng.below(60_000))),
        Kind::Clean | Kind::Torn => {}
    }
    fs.die_at_write(1 + rng.below(clean_writes(case.durability, case.quota)));
    let done = Arc::new(AtomicBool::new(false));
    let sync_each = case.durability == Durability::Sync;
    let mut writers = Vec::new();
    for (w, &id) in ids.iter().enumerate() {
        let (store, ledger) = (store.clone(), ledger.clone());
        writers.push(std::thread::spawn(move || {
            for n in 0..APPENDS {
                let t = n * 10 + w as u64;
                ledger.lock().unwrap().attempted.insert((w, t));
                if store.append(id, t, t + 1, &payload(w, t)).is_err() {
                    return;
                }
                let mut l = ledger.lock().unwrap();
                l.appended[w].push(t);
                if sync_each {
                    l.acked[w] = l.appended[w].len();
                }
            }
        }));
    }
    let helpers = [
        helper(&store, &ledger, &done, Helper::Syncer),
        helper(&store, &ledger, &done, Helper::Flusher),
        helper(&store, &ledger, &done, Helper::Reader),
    ];
    for h in writers {
        h.join().unwrap();
    }
    done.store(true, Ordering::Release);
    for h in helpers {
        h.join().unwrap();
    }
    let cut = match case.kind {
        Kind::Clean => PowerCut::Clean,
        _ => PowerCut::Torn(case.seed),
    };
    tally.cases += 1;
    let stopped = ledger
        .lock()
        .unwrap()
        .appended
        .iter()
        .any(|a| a.len() < APPENDS as usize);
    tally.cut_mid_run += u64::from(fs.is_dead() || stopped);
    let after = fs.power_cut(cut);
    drop(store);
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    tally.write_errors_seen +=
        u64::from(ledger.appended.iter().any(|a| a.len() < APPENDS as usize));
    tally.acked_checked += ledger.acked.iter().sum::<usize>() as u64;
    tally.torn_tails_cut += check(&after, &ledger, case);
}

#[derive(Clone, Copy)]
enum Helper {
    Syncer,
    Flusher,
    Reader,
}

fn helper(
    store: &Arc<Store>,
    ledger: &Arc<Mutex<Ledger>>,
    done: &Arc<AtomicBool>,
    role: Helper,
) -> std::thread::JoinHandle<()> {
    let (store, ledger, done) = (store.clone(), ledger.clone(), done.clone());
    std::thread::spawn(move || {
        while !done.load(Ordering::Acquire) {
            match role {
                Helper::Syncer => {
                    let lens: Vec<usize> = ledger
                        .lock()
                        .unwrap()
                        .appended
                        .iter()
                        .map(Vec::len)
                        .collect();
                    if store.sync().is_ok() {
                        let mut l = ledger.lock().unwrap();
                        for (w, n) in lens.into_iter().enumerate() {
                            l.acked[w] = l.acked[w].max(n);
                        }
                    }
                }
                Helper::Flusher => {
                    let _ = store.flush();
                }
                Helper::Reader => {
                    if let Ok(it) = store.iter(&[], 0, Nanos::MAX, false) {
                        for r in it.flatten() {
                            let w = (r.log_time % 10) as usize;
                            assert!(
                                r.payload == payload(w, r.log_time),
                                "live read: wrong payload"
                            );
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

/// Reopens and checks; returns the torn WAL tails recovery cut.
fn check(fs: &FaultFs, ledger: &Ledger, case: &Case) -> u64 {
    let what = case.name();
    let store = Store::open(DB, options(fs, Durability::Sync, 0))
        .unwrap_or_else(|e| panic!("{what}: store does not open after the cut: {e}"));
    let by_id: BTreeMap<u32, usize> = store
        .topics()
        .into_iter()
        .filter_map(|t| Some((t.id, (0..WRITERS).find(|w| spec(*w).name == t.spec.name)?)))
        .collect();
    let records: Vec<_> = store
        .iter(&[], 0, Nanos::MAX, false)
        .unwrap_or_else(|e| panic!("{what}: scan failed: {e}"))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{what}: scan failed: {e}"));
    let mut present: Vec<BTreeSet<Nanos>> = vec![BTreeSet::new(); WRITERS];
    let mut seqs = BTreeSet::new();
    for r in &records {
        let w = *by_id
            .get(&r.topic)
            .unwrap_or_else(|| panic!("{what}: record of unknown topic {}", r.topic));
        assert!(
            ledger.attempted.contains(&(w, r.log_time)),
            "{what}: record ({w}, {}) was never written",
            r.log_time
        );
        assert!(
            r.payload == payload(w, r.log_time),
            "{what}: wrong payload at ({w}, {})",
            r.log_time
        );
        assert_eq!(r.publish_time, r.log_time + 1, "{what}: publish time");
        assert!(
            seqs.insert((r.topic, r.sequence)),
            "{what}: sequence shown twice"
        );
        assert!(
            present[w].insert(r.log_time),
            "{what}: ({w}, {}) twice",
            r.log_time
        );
    }
    for (w, present) in present.iter().enumerate() {
        let acked = &ledger.appended[w][..ledger.acked[w]];
        // Retention drops the oldest data: a prefix, never a hole.
        let oldest = present.first().copied();
        let lost: Vec<Nanos> = acked
            .iter()
            .copied()
            .filter(|t| !present.contains(t))
            .filter(|t| case.quota == 0 || oldest.is_some_and(|o| *t > o))
            .take(5)
            .collect();
        assert!(
            lost.is_empty(),
            "{what}: acknowledged records of writer {w} lost: {lost:?} ({} acked, {} present); {:?}",
            acked.len(),
            present.len(),
            store.recovery_report()
        );
    }
    let id = *by_id.keys().next().unwrap_or(&0);
    if !by_id.is_empty() {
        store
            .append(id, 1 << 40, 0, b"after the cut")
            .unwrap_or_else(|e| panic!("{what}: no write after reopen: {e}"));
    }
    let cut = store.recovery_report().wal_truncated.len() as u64;
    store.close().unwrap();
    cut
}

fn cuts() -> u64 {
    std::env::var("MOTEDB_CAMPAIGN_CUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// Runs the cases of one kind; the tally shows they cut the power in
/// the middle of real work, not after it.
fn campaign(kind: Kind, salt: u64) {
    let base = seeded::seed(salt);
    let mut tally = Tally::default();
    for n in 0..cuts() {
        run(&Case::new(kind, n, base), &mut tally);
    }
    eprintln!("{kind:?}: {tally:?}");
    assert!(
        tally.cut_mid_run * 2 > tally.cases && tally.acked_checked > 0,
        "{kind:?}: the campaign mostly cut the power after the work: {tally:?}"
    );
}

#[test]
fn clean_power_cuts_lose_no_acknowledged_record() {
    campaign(Kind::Clean, 1);
}

#[test]
fn torn_power_cuts_lose_no_acknowledged_record() {
    campaign(Kind::Torn, 2);
}

#[test]
fn failed_fsync_then_power_cut_loses_no_acknowledged_record() {
    campaign(Kind::FailedFsync, 3);
}

#[test]
fn disk_full_then_power_cut_loses_no_acknowledged_record() {
    campaign(Kind::DiskFull, 4);
}
