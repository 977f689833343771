//! Replay (`motedb play`, issue 13): the parts that do not need ROS.
//!
//! - `Timeline` maps log time to wall time: the recorded spacing scaled by
//!   the rate, through rate changes and pauses (re-anchored at each, so a
//!   change never makes the player jump or rush to catch up).
//! - `ReadAhead` reads records on a thread of its own into a queue bounded
//!   by bytes, so replaying hours of camera data keeps memory flat.
//! - `Lateness` counts messages published behind their schedule.
//!
//! - `Control` carries pause, resume, rate and play-next requests from the
//!   services and the terminal to the player.
//! - `options` checks remaps and QoS overrides before anything plays.
//!
//! The publishing side (rcl serialized publish, QoS, /clock, services) is
//! built on these.

mod control;
pub mod keys;
pub mod options;

pub use control::{Control, Progress, Wanted};
pub use options::QosOverride;

use crate::engine::{Nanos, Record};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Log time to wall time at a rate, with pauses. `anchor_log` was (or
/// would have been) due at `anchor_wall`.
#[derive(Clone, Copy, Debug)]
pub struct Timeline {
    anchor_log: Nanos,
    anchor_wall: Instant,
    rate: f64,
    /// Paused at this log position.
    paused: Option<Nanos>,
}

/// Why a rate is refused.
pub fn check_rate(rate: f64) -> Result<f64, String> {
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        Err(format!("rate must be a number > 0, not {rate}"))
    }
}

impl Timeline {
    /// `first` (the first log time to play) is due at `now`.
    pub fn new(first: Nanos, now: Instant, rate: f64) -> Result<Timeline, String> {
        Ok(Timeline {
            anchor_log: first,
            anchor_wall: now,
            rate: check_rate(rate)?,
            paused: None,
        })
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn is_paused(&self) -> bool {
        self.paused.is_some()
    }

    /// The log time being played at `now` (where a pause holds it).
    pub fn position(&self, now: Instant) -> Nanos {
        if let Some(at) = self.paused {
            return at;
        }
        match now.checked_duration_since(self.anchor_wall) {
            Some(d) => self
                .anchor_log
                .saturating_add((d.as_nanos() as f64 * self.rate) as u64),
            None => self.anchor_log,
        }
    }

    /// When `log` is due (None while paused). A time before the anchor is
    /// due at the anchor.
    pub fn due(&self, log: Nanos) -> Option<Instant> {
        if self.paused.is_some() {
            return None;
        }
        let ahead = log.saturating_sub(self.anchor_log) as f64 / self.rate;
        Some(self.anchor_wall + Duration::from_nanos(ahead.min(u64::MAX as f64) as u64))
    }

    /// A new rate from `now` on: what is due later keeps its place in
    /// log time, spaced by the new rate.
    pub fn set_rate(&mut self, rate: f64, now: Instant) -> Result<(), String> {
        let rate = check_rate(rate)?;
        if self.paused.is_none() {
            self.anchor_log = self.position(now);
            self.anchor_wall = now;
        }
        self.rate = rate;
        Ok(())
    }

    /// Holds the position; false when already paused.
    pub fn pause(&mut self, now: Instant) -> bool {
        if self.paused.is_some() {
            return false;
        }
        self.paused = Some(self.position(now));
        true
    }

    /// Goes on from where the pause held; false when not paused.
    pub fn resume(&mut self, now: Instant) -> bool {
        let Some(at) = self.paused.take() else {
            return false;
        };
        self.anchor_log = at;
        self.anchor_wall = now;
        true
    }

    /// Moves the position to `log` at `now` (after `play_next` published
    /// a message while paused, or to start a loop again).
    pub fn seek(&mut self, log: Nanos, now: Instant) {
        if self.paused.is_some() {
            self.paused = Some(log);
        } else {
            self.anchor_log = log;
            self.anchor_wall = now;
        }
    }
}

/// Several record streams, each in log-time order, as one stream in
/// log-time order (ties: the earlier stream first). An error is passed on
/// where it occurs. For a few streams (one per topic), a linear pick of
/// the smallest head is cheaper than a heap.
pub fn merge_by_log_time<I>(streams: Vec<I>) -> impl Iterator<Item = crate::engine::Result<Record>>
where
    I: Iterator<Item = crate::engine::Result<Record>>,
{
    let mut streams: Vec<std::iter::Peekable<I>> =
        streams.into_iter().map(Iterator::peekable).collect();
    std::iter::from_fn(move || {
        let mut pick: Option<(usize, Nanos)> = None;
        for (i, st) in streams.iter_mut().enumerate() {
            match st.peek() {
                // An error goes out at once, in its stream's place.
                Some(Err(_)) => return st.next(),
                Some(Ok(r)) if pick.is_none_or(|(_, t)| r.log_time < t) => {
                    pick = Some((i, r.log_time));
                }
                _ => {}
            }
        }
        let (i, _) = pick?;
        streams[i].next()
    })
}

/// What the reader thread left in the queue.
enum Slot {
    Record(Record),
    /// The source failed: the error, after every record before it.
    Failed(String),
}

struct Queue {
    items: VecDeque<Slot>,
    bytes: u64,
    done: bool,
    /// The player is gone: the reader stops.
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when an item is added or taken, or the end is reached.
    changed: Condvar,
    budget: u64,
}

/// Records read ahead on a thread of its own, at most `budget` bytes
/// queued (payload plus `RECORD_OVERHEAD` per record; a single larger
/// record is queued alone).
pub struct ReadAhead {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl ReadAhead {
    pub fn start<I>(records: I, budget: u64) -> std::io::Result<ReadAhead>
    where
        I: Iterator<Item = crate::engine::Result<Record>> + Send + 'static,
    {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                bytes: 0,
                done: false,
                closed: false,
            }),
            changed: Condvar::new(),
            budget: budget.max(1),
        });
        let reader = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("motedb-read-ahead".into())
            .spawn(move || read_loop(records, &reader))?;
        Ok(ReadAhead {
            shared,
            thread: Some(thread),
        })
    }

    /// The next record in order; None at the end; Err when the source
    /// failed (after every record it gave before).
    pub fn next(&self) -> Option<Result<Record, String>> {
        let mut q = self.shared.queue.lock();
        loop {
            if let Some(slot) = q.items.pop_front() {
                let out = match slot {
                    Slot::Record(r) => {
                        q.bytes -= cost(&r);
                        Ok(r)
                    }
                    Slot::Failed(e) => Err(e),
                };
                drop(q);
                self.shared.changed.notify_all();
                return Some(out);
            }
            if q.done {
                return None;
            }
            self.shared.changed.wait(&mut q);
        }
    }

    /// Bytes queued now (payload plus `RECORD_OVERHEAD` per record).
    pub fn queued_bytes(&self) -> u64 {
        self.shared.queue.lock().bytes
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.shared.queue.lock().closed = true;
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _joined = t.join();
        }
    }
}

/// What a queued record costs against the budget besides its payload.
const RECORD_OVERHEAD: u64 = 64;

fn read_loop<I>(records: I, shared: &Shared)
where
    I: Iterator<Item = crate::engine::Result<Record>>,
{
    // A panic in the source ends the stream with an error, never a wait
    // that lasts for good.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fill(records, shared);
    }));
    let mut q = shared.queue.lock();
    if outcome.is_err() {
        q.items
            .push_back(Slot::Failed("the reader panicked".to_string()));
    }
    q.done = true;
    drop(q);
    shared.changed.notify_all();
}

fn fill<I>(records: I, shared: &Shared)
where
    I: Iterator<Item = crate::engine::Result<Record>>,
{
    for item in records {
        let slot = match item {
            Ok(r) => Slot::Record(r),
            Err(e) => Slot::Failed(e.to_string()),
        };
        let size = match &slot {
            Slot::Record(r) => cost(r),
            Slot::Failed(_) => 0,
        };
        let failed = matches!(slot, Slot::Failed(_));
        let mut q = shared.queue.lock();
        while !q.closed && !q.items.is_empty() && q.bytes + size > shared.budget {
            shared.changed.wait(&mut q);
        }
        if q.closed {
            return;
        }
        q.bytes += size;
        q.items.push_back(slot);
        drop(q);
        shared.changed.notify_all();
        if failed {
            break;
        }
    }
}

fn cost(r: &Record) -> u64 {
    r.payload.len() as u64 + RECORD_OVERHEAD
}

/// Histogram buckets per doubling of lateness: quantiles are within 1.1 %.
const BUCKETS_PER_DOUBLING: f64 = 64.0;

/// How far behind schedule messages went out, in a histogram of fixed
/// size (at most 4097 counters, however long the replay).
#[derive(Clone, Debug, Default)]
pub struct Lateness {
    /// Messages per bucket: 0 for on time, else 1 + floor(log2(ns) * 64).
    buckets: Vec<u64>,
    count: u64,
    /// Messages later than the threshold the player reports.
    pub late: u64,
}

fn bucket(ns: u64) -> usize {
    if ns == 0 {
        0
    } else {
        1 + ((ns as f64).log2() * BUCKETS_PER_DOUBLING) as usize
    }
}

/// The smallest lateness bucket `i` holds.
fn bucket_floor(i: usize) -> u64 {
    if i == 0 {
        0
    } else {
        ((i - 1) as f64 / BUCKETS_PER_DOUBLING).exp2().ceil() as u64
    }
}

impl Lateness {
    /// A message due at `due` went out at `sent`; true when it was later
    /// than `threshold`.
    pub fn note(&mut self, due: Instant, sent: Instant, threshold: Duration) -> bool {
        let behind = sent.checked_duration_since(due).unwrap_or_default();
        let i = bucket(u64::try_from(behind.as_nanos()).unwrap_or(u64::MAX));
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, 0);
        }
        self.buckets[i] += 1;
        self.count += 1;
        let late = behind > threshold;
        if late {
            self.late += 1;
        }
        late
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `p` quantile (0..=1) of lateness, rounded down to its bucket
    /// (within 1.1 %); None before any message.
    pub fn quantile(&self, p: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count - 1) as f64 * p.clamp(0.0, 1.0)).round() as u64 + 1;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Duration::from_nanos(bucket_floor(i)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_streams_come_out_in_log_time_order() {
        let rec = |topic: u32, t: Nanos| Record {
            topic,
            log_time: t,
            publish_time: 0,
            sequence: t,
            payload: Vec::new(),
        };
        let a = vec![Ok(rec(1, 1)), Ok(rec(1, 4)), Ok(rec(1, 9))];
        let b = vec![Ok(rec(2, 2)), Ok(rec(2, 4)), Ok(rec(2, 5))];
        let c: Vec<crate::engine::Result<Record>> = Vec::new();
        let got: Vec<(u32, Nanos)> =
            merge_by_log_time(vec![a.into_iter(), b.into_iter(), c.into_iter()])
                .map(|r| r.map(|r| (r.topic, r.log_time)).expect("record"))
                .collect();
        assert_eq!(got, vec![(1, 1), (2, 2), (1, 4), (2, 4), (2, 5), (1, 9)]);
        let bad = vec![
            Ok(rec(1, 1)),
            Err(crate::engine::Error::InvalidArgument("x".into())),
        ];
        let out: Vec<_> = merge_by_log_time(vec![bad.into_iter()]).collect();
        assert!(out[0].is_ok() && out[1].is_err() && out.len() == 2);
    }

    const MS: u64 = 1_000_000;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn the_recorded_spacing_is_scaled_by_the_rate() {
        let t0 = Instant::now();
        let tl = Timeline::new(1000 * MS, t0, 2.0).unwrap();
        assert_eq!(tl.due(1000 * MS), Some(t0));
        assert_eq!(tl.due(1100 * MS), Some(at(t0, 50)));
        assert_eq!(tl.due(500 * MS), Some(t0), "before the anchor: due now");
        assert_eq!(tl.position(at(t0, 50)), 1100 * MS);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Timeline::new(0, t0, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rate_change_keeps_the_position_and_spaces_what_follows_anew() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(0, t0, 1.0).unwrap();
        // 100 ms in, at log 100 ms, the rate doubles.
        tl.set_rate(2.0, at(t0, 100)).unwrap();
        assert_eq!(tl.position(at(t0, 100)), 100 * MS);
        assert_eq!(tl.due(300 * MS), Some(at(t0, 200)));
        assert!(tl.set_rate(0.0, at(t0, 100)).is_err());
        assert_eq!(tl.rate(), 2.0, "a refused rate changes nothing");
    }

    #[test]
    fn a_pause_holds_the_position_and_resume_goes_on_from_there() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(0, t0, 1.0).unwrap();
        assert!(tl.pause(at(t0, 40)));
        assert!(!tl.pause(at(t0, 41)), "already paused");
        assert_eq!(tl.due(50 * MS), None, "nothing is due while paused");
        assert_eq!(tl.position(at(t0, 5000)), 40 * MS);
        // A rate set while paused applies after the resume.
        tl.set_rate(0.5, at(t0, 5000)).unwrap();
        assert!(tl.resume(at(t0, 10_000)));
        assert!(!tl.resume(at(t0, 10_001)));
        assert_eq!(tl.due(50 * MS), Some(at(t0, 10_020)));
        // Stepping while paused moves the held position.
        tl.pause(at(t0, 10_020));
        tl.seek(70 * MS, at(t0, 10_030));
        assert_eq!(tl.position(at(t0, 99_999)), 70 * MS);
        tl.resume(at(t0, 20_000));
        assert_eq!(tl.due(80 * MS), Some(at(t0, 20_020)));
    }

    fn record(t: u64, len: usize) -> Record {
        Record {
            topic: 0,
            log_time: t,
            publish_time: t,
            sequence: t,
            payload: vec![0; len],
        }
    }

    #[test]
    fn read_ahead_gives_every_record_in_order_within_its_byte_budget() {
        let records: Vec<crate::engine::Result<Record>> =
            (0..200).map(|t| Ok(record(t, 1000))).collect();
        let ra = ReadAhead::start(records.into_iter(), 10_000).unwrap();
        let mut got = Vec::new();
        let mut most = 0;
        while let Some(r) = ra.next() {
            most = most.max(ra.queued_bytes());
            got.push(r.unwrap().log_time);
        }
        assert_eq!(got, (0..200).collect::<Vec<_>>());
        assert!(most <= 10_000, "{most} bytes queued");
        assert!(ra.next().is_none(), "the end stays the end");
    }

    #[test]
    fn a_record_larger_than_the_budget_passes_alone_and_an_error_comes_last() {
        let records: Vec<crate::engine::Result<Record>> = vec![
            Ok(record(1, 10)),
            Ok(record(2, 50_000)),
            Ok(record(3, 10)),
            Err(crate::engine::Error::InvalidArgument("disk gone".into())),
            Ok(record(4, 10)),
        ];
        let ra = ReadAhead::start(records.into_iter(), 1000).unwrap();
        let got: Vec<Result<u64, String>> =
            std::iter::from_fn(|| ra.next().map(|r| r.map(|r| r.log_time))).collect();
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[..3], [Ok(1), Ok(2), Ok(3)]);
        assert!(got[3].as_ref().unwrap_err().contains("disk gone"));
    }

    #[test]
    fn dropping_the_player_stops_a_reader_blocked_on_a_full_queue() {
        let endless = (0u64..).map(|t| Ok(record(t, 1000)));
        let ra = ReadAhead::start(endless, 5000).unwrap();
        assert_eq!(ra.next().unwrap().unwrap().log_time, 0);
        // Full: four records of 1064 bytes; the fifth would pass 5000.
        while ra.queued_bytes() < 4 * 1064 {
            std::thread::yield_now();
        }
        drop(ra); // joins the reader: returns only if it stopped
    }

    #[test]
    fn a_panicking_source_ends_the_stream_with_an_error() {
        let source = (0u64..3).map(|t| {
            assert!(t < 2, "bad block");
            Ok(record(t, 10))
        });
        let ra = ReadAhead::start(source, 1000).unwrap();
        let got: Vec<Result<u64, String>> =
            std::iter::from_fn(|| ra.next().map(|r| r.map(|r| r.log_time))).collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[..2], [Ok(0), Ok(1)]);
        assert!(got[2].as_ref().unwrap_err().contains("panicked"));
    }

    #[test]
    fn lateness_counts_what_went_out_behind_schedule() {
        let t0 = Instant::now();
        let mut l = Lateness::default();
        assert_eq!(l.quantile(0.5), None);
        let threshold = Duration::from_millis(5);
        assert!(
            !l.note(at(t0, 10), at(t0, 9), threshold),
            "early is on time"
        );
        assert!(!l.note(at(t0, 10), at(t0, 14), threshold));
        assert!(l.note(at(t0, 10), at(t0, 30), threshold));
        assert_eq!((l.count(), l.late), (3, 1));
        let near = |got: Option<Duration>, ms: f64| {
            let got = got.unwrap().as_secs_f64() * 1e3;
            assert!(got <= ms && got >= ms * 0.989, "{got} ms for {ms} ms");
        };
        near(l.quantile(0.5), 4.0);
        near(l.quantile(1.0), 20.0);
        assert_eq!(l.quantile(0.0), Some(Duration::ZERO), "the early one");
        // A long replay keeps the histogram's size.
        for k in 0..100_000u64 {
            l.note(at(t0, 0), t0 + Duration::from_nanos(k * 7919), threshold);
        }
        assert!(l.buckets.len() <= 4097);
    }
}
