//! The path from a subscription to the store: a bounded queue that the
//! middleware thread fills without blocking, a writer thread that appends,
//! loss accounting (queue full, refused writes, publisher sequence gaps)
//! and the recorder's counters.

use crate::engine::{Nanos, Store, TopicId};
use crate::node::diagnostics::RecorderSnapshot;
use crate::places::live::Places;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One received message on its way to the store.
#[derive(Debug)]
pub struct Incoming {
    pub topic: TopicId,
    pub log_time: Nanos,
    pub publish_time: Nanos,
    pub payload: Vec<u8>,
}

/// Counters shared by the middleware thread, the writer and diagnostics.
#[derive(Debug, Default)]
pub struct Stats {
    pub received: AtomicU64,
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub gaps: AtomicU64,
    pub queued: AtomicU64,
    pub topics: AtomicU64,
    pub queue_capacity: AtomicU64,
    /// Payload bytes in the queue, and the most it may hold.
    queued_bytes: AtomicU64,
    queue_max_bytes: AtomicU64,
    /// `storage.min_free_bytes` (0: off), set by the node, read by the writer.
    pub min_free_bytes: AtomicU64,
    /// Free bytes of the store's file system at the last check (u64::MAX:
    /// not known yet).
    disk_free: AtomicU64,
    /// Why writing stopped for lack of free space, while it is stopped.
    disk_guard: Mutex<Option<String>>,
    /// Topics that could not be subscribed, with why (retried).
    pub unresolved: Mutex<std::collections::BTreeMap<String, String>>,
    /// Topics recorded without a message definition.
    pub no_definition: Mutex<std::collections::BTreeSet<String>>,
    last_error: Mutex<Option<String>>,
    /// Errors not yet written to the log (the adapter logs them).
    unlogged: Mutex<Vec<String>>,
    /// Why the recorder thread is not taking messages, while it is down.
    down: Mutex<Option<String>>,
    /// Set when the recorder gave up restarting: the node exits non-zero.
    failed: std::sync::atomic::AtomicBool,
    /// QoS mismatches and re-subscriptions reported.
    qos_events: AtomicU64,
    /// The middleware reports publication sequence numbers.
    gap_detection: std::sync::atomic::AtomicBool,
    /// use_sim_time and no /clock yet: nothing is taken.
    waiting_for_clock: std::sync::atomic::AtomicBool,
    /// Times /clock went back.
    clock_jumps_back: AtomicU64,
    /// Set when diagnostics should go out now rather than at the period.
    urgent: std::sync::atomic::AtomicBool,
    /// Losses not yet handed to `Store::record_loss`: topic -> (dropped, gaps).
    pending_loss: Mutex<HashMap<TopicId, (u64, u64)>>,
    /// Paused (`~/pause`): messages are taken and discarded, not recorded.
    paused: std::sync::atomic::AtomicBool,
    /// Messages taken and discarded while paused (not a loss).
    skipped_paused: AtomicU64,
    /// use_sim_time is on: `log_now` is the last /clock time.
    sim_time: std::sync::atomic::AtomicBool,
    /// The last /clock time (0: none yet).
    sim_now: AtomicU64,
    /// Topic id + 1 of `places.mark_topic` once it is recorded with the
    /// Mark type (0: none).
    mark_topic: AtomicU64,
    /// The offload's state, when `offload.url` is set.
    pub offload: std::sync::OnceLock<std::sync::Arc<Mutex<crate::remote::OffloadStatus>>>,
}

impl Stats {
    pub fn snapshot(&self) -> RecorderSnapshot {
        RecorderSnapshot {
            topics_recorded: self.topics.load(Ordering::Relaxed),
            messages_received: self.received.load(Ordering::Relaxed),
            messages_dropped: self.dropped.load(Ordering::Relaxed),
            gaps_detected: self.gaps.load(Ordering::Relaxed),
            queue_depth: self.queued.load(Ordering::Relaxed),
            queue_capacity: self.queue_capacity.load(Ordering::Relaxed),
            queue_bytes: self.queued_bytes.load(Ordering::Relaxed),
            queue_max_bytes: self.queue_max_bytes.load(Ordering::Relaxed),
            disk_free: Some(self.disk_free.load(Ordering::Relaxed)).filter(|f| *f != u64::MAX),
            min_free_bytes: self.min_free_bytes.load(Ordering::Relaxed),
            disk_guard: self.disk_guard.lock().clone(),
            waiting_for_clock: self.waiting_for_clock.load(Ordering::Relaxed),
            gap_detection: self.gap_detection.load(Ordering::Relaxed),
            qos_events: self.qos_events.load(Ordering::Relaxed),
            clock_jumps_back: self.clock_jumps_back.load(Ordering::Relaxed),
            unresolved_types: self
                .unresolved
                .lock()
                .iter()
                .map(|(t, why)| format!("{t} ({why})"))
                .collect(),
            without_definition: self.no_definition.lock().iter().cloned().collect(),
            last_error: self.last_error.lock().clone().unwrap_or_default(),
            down: self.down.lock().clone(),
            paused: self.is_paused(),
            skipped_while_paused: self.skipped_paused.load(Ordering::Relaxed),
            offload: self.offload.get().map(|o| o.lock().clone()),
        }
    }

    /// Pauses (true) or resumes recording; false when it already was so.
    /// Diagnostics go out at once on a change.
    pub fn set_paused(&self, paused: bool) -> bool {
        let changed = self.paused.swap(paused, Ordering::AcqRel) != paused;
        if changed {
            self.urgent.store(true, Ordering::Release);
        }
        changed
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Log time follows /clock (use_sim_time).
    pub fn set_sim_time(&self, on: bool) {
        self.sim_time.store(on, Ordering::Release);
    }

    /// The recorder saw /clock at `t`.
    pub fn set_sim_now(&self, t: Nanos) {
        self.sim_now.store(t, Ordering::Release);
    }

    /// Now on the clock log times come from: the last /clock with
    /// use_sim_time (None before the first one), else the system clock.
    pub fn log_now(&self) -> Option<Nanos> {
        if self.sim_time.load(Ordering::Acquire) {
            return Some(self.sim_now.load(Ordering::Acquire)).filter(|t| *t > 0);
        }
        Some(now_nanos())
    }

    /// The mark topic's id (None: no mark topic recorded).
    pub fn set_mark_topic(&self, topic: Option<TopicId>) {
        let v = topic.map_or(0, |t| u64::from(t) + 1);
        self.mark_topic.store(v, Ordering::Release);
    }

    fn is_mark_topic(&self, topic: TopicId) -> bool {
        self.mark_topic.load(Ordering::Acquire) == u64::from(topic) + 1
    }

    /// A message was taken while paused and is not recorded.
    pub fn skipped_while_paused(&self) {
        self.skipped_paused.fetch_add(1, Ordering::Relaxed);
    }

    /// Records an error: shown as `last_error` on /diagnostics and logged
    /// once by the adapter (at most `UNLOGGED_MAX` wait; more are counted).
    pub fn note_error(&self, e: String) {
        const UNLOGGED_MAX: usize = 32;
        let mut unlogged = self.unlogged.lock();
        if unlogged.len() < UNLOGGED_MAX {
            unlogged.push(e.clone());
        } else if unlogged.len() == UNLOGGED_MAX {
            unlogged.push("(further errors not logged; see last_error on /diagnostics)".into());
        }
        *self.last_error.lock() = Some(e);
    }

    /// The writer took `m` off the queue.
    fn dequeued(&self, m: &Incoming) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
        self.queued_bytes
            .fetch_sub(m.payload.len() as u64, Ordering::AcqRel);
    }

    /// A QoS mismatch or re-subscription on a recorded topic: logged, on
    /// /diagnostics (WARN in the period it happened).
    pub fn qos_incompatible(&self, what: String) {
        self.qos_events.fetch_add(1, Ordering::Relaxed);
        self.note_error(what);
    }

    /// Whether publisher sequence gaps can be counted (the middleware fills
    /// publication sequence numbers).
    pub fn set_gap_detection(&self, supported: bool) {
        self.gap_detection.store(supported, Ordering::Relaxed);
    }

    pub fn set_waiting_for_clock(&self, waiting: bool) {
        self.waiting_for_clock.store(waiting, Ordering::Relaxed);
    }

    /// /clock went back by `ns`: counted and logged; log_time follows it.
    pub fn clock_jumped_back(&self, ns: u64) {
        self.clock_jumps_back.fetch_add(1, Ordering::Relaxed);
        self.note_error(format!(
            "/clock jumped back by {:.3} s (simulator reset or looped playback); log_time follows it",
            ns as f64 / 1e9
        ));
    }

    /// Errors noted since the last call, for the log.
    pub fn take_unlogged(&self) -> Vec<String> {
        std::mem::take(&mut *self.unlogged.lock())
    }

    /// The recorder thread stopped taking messages (`why`); diagnostics go
    /// out at once.
    pub fn recorder_down(&self, why: String) {
        self.note_error(format!("recorder stopped: {why}"));
        *self.down.lock() = Some(why);
        self.urgent.store(true, Ordering::Release);
    }

    /// The recorder thread takes messages again.
    pub fn recorder_up(&self) {
        if self.down.lock().take().is_some() {
            self.urgent.store(true, Ordering::Release);
        }
    }

    /// The recorder gave up: the node must stop and exit non-zero.
    pub fn recorder_failed(&self) {
        self.failed.store(true, Ordering::Release);
        self.urgent.store(true, Ordering::Release);
    }

    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// True once after something diagnostics should report at once.
    pub fn take_urgent(&self) -> bool {
        self.urgent.swap(false, Ordering::AcqRel)
    }

    pub fn add_loss(&self, topic: TopicId, dropped: u64, gaps: u64) {
        if dropped == 0 && gaps == 0 {
            return;
        }
        self.dropped.fetch_add(dropped, Ordering::Relaxed);
        self.gaps.fetch_add(gaps, Ordering::Relaxed);
        let mut pending = self.pending_loss.lock();
        let entry = pending.entry(topic).or_insert((0, 0));
        entry.0 += dropped;
        entry.1 += gaps;
    }

    /// Hands accumulated losses to the store (persistent per-topic counters).
    /// Losses the store refuses stay pending for the next try.
    fn flush_losses(&self, store: &Store) {
        let pending: Vec<_> = self.pending_loss.lock().drain().collect();
        for (topic, (dropped, gaps)) in pending {
            if let Err(e) = store.record_loss(topic, dropped, gaps) {
                self.note_error(format!("record_loss: {e}"));
                let mut again = self.pending_loss.lock();
                let entry = again.entry(topic).or_insert((0, 0));
                entry.0 += dropped;
                entry.1 += gaps;
            }
        }
    }
}

/// Sender half, used by the middleware thread. Never blocks.
#[derive(Clone)]
pub struct Queue {
    /// Batches: one hand-off (and at most one writer wake-up) per batch.
    sender: SyncSender<Vec<Incoming>>,
    stats: Arc<Stats>,
    /// Benchmark mode (`MOTEDB_BENCH_NULL_RECORDER=1`): count what is
    /// offered and discard it, so the recorder's own cost can be told
    /// apart from the middleware's.
    pub null: bool,
}

impl Queue {
    /// Queues `m` alone (the recorder uses a `Batch`).
    #[cfg(test)]
    fn offer(&self, m: Incoming) {
        self.offer_all(vec![m]);
    }

    /// Queues what `batch` holds, as one hand-off to the writer. A queue
    /// full by count or by bytes counts a drop on the message's topic. A
    /// message larger than the byte bound alone is queued when the queue
    /// holds no bytes, so it is recorded, one at a time.
    pub fn offer_all(&self, batch: Vec<Incoming>) {
        let stats = &self.stats;
        stats
            .received
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        if self.null {
            return;
        }
        let capacity = stats.queue_capacity.load(Ordering::Relaxed);
        let max_bytes = stats.queue_max_bytes.load(Ordering::Relaxed);
        let mut accepted = Vec::with_capacity(batch.len());
        for m in batch {
            let (topic, len) = (m.topic, m.payload.len() as u64);
            let before = stats.queued_bytes.fetch_add(len, Ordering::AcqRel);
            let over_bytes = before > 0 && before.saturating_add(len) > max_bytes;
            let over_count = stats.queued.fetch_add(1, Ordering::AcqRel) >= capacity;
            if over_bytes || over_count {
                stats.queued.fetch_sub(1, Ordering::AcqRel);
                stats.queued_bytes.fetch_sub(len, Ordering::AcqRel);
                stats.add_loss(topic, 1, 0);
                continue;
            }
            accepted.push(m);
        }
        if accepted.is_empty() {
            return;
        }
        // The channel holds at most `capacity` batches of one message or
        // more, and at most `capacity` messages are queued: it is never
        // full here; a writer that is gone loses the batch, counted.
        if let Err(e) = self.sender.try_send(accepted) {
            let lost = match e {
                TrySendError::Full(b) | TrySendError::Disconnected(b) => b,
            };
            for m in &lost {
                stats.dequeued(m);
                stats.add_loss(m.topic, 1, 0);
            }
        }
    }
}

/// Messages taken in one pass of the recorder, handed to the writer
/// together: per batch one channel operation and one wake-up instead of
/// one per message. Flushed when it holds `BATCH_MESSAGES` or
/// `BATCH_BYTES`, and after every pass, so it never holds more.
pub struct Batch<'q> {
    queue: &'q Queue,
    items: Vec<Incoming>,
    bytes: usize,
}

const BATCH_MESSAGES: usize = 256;
const BATCH_BYTES: usize = 8 << 20;

impl<'q> Batch<'q> {
    pub fn new(queue: &'q Queue) -> Batch<'q> {
        Batch {
            queue,
            items: Vec::new(),
            bytes: 0,
        }
    }

    pub fn push(&mut self, m: Incoming) {
        self.bytes += m.payload.len();
        self.items.push(m);
        if self.items.len() >= BATCH_MESSAGES || self.bytes >= BATCH_BYTES {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if !self.items.is_empty() {
            self.queue.offer_all(std::mem::take(&mut self.items));
            self.bytes = 0;
        }
    }
}

impl Drop for Batch<'_> {
    /// What was taken is never left behind, even when the recorder thread
    /// unwinds.
    fn drop(&mut self) {
        self.flush();
    }
}

/// The writer thread.
pub struct Writer {
    thread: Option<JoinHandle<()>>,
}

const LOSS_FLUSH_PERIOD: Duration = Duration::from_millis(500);

impl Writer {
    /// `dir`: the store directory, whose file system the disk guard
    /// watches.
    pub fn start(
        store: Arc<Store>,
        stats: Arc<Stats>,
        places: Arc<Places>,
        capacity: usize,
        max_bytes: u64,
        dir: std::path::PathBuf,
    ) -> std::io::Result<(Queue, Writer)> {
        let (sender, receiver) = mpsc::sync_channel::<Vec<Incoming>>(capacity.max(1));
        stats
            .queue_capacity
            .store(capacity as u64, Ordering::Relaxed);
        stats.queue_max_bytes.store(max_bytes, Ordering::Relaxed);
        stats.disk_free.store(u64::MAX, Ordering::Relaxed);
        let queue = Queue {
            sender,
            stats: Arc::clone(&stats),
            null: false,
        };
        let thread = std::thread::Builder::new()
            .name("motedb-writer".into())
            .spawn(move || {
                let probe = super::latency::LatencyProbe::from_env(&store);
                write_loop(
                    &store,
                    &stats,
                    &places,
                    &receiver,
                    &dir,
                    probe.as_ref().map(|p| &*p.0),
                );
                if let Some((p, t)) = probe {
                    p.finish(t);
                }
            })?;
        Ok((
            queue,
            Writer {
                thread: Some(thread),
            },
        ))
    }

    /// Waits until every queue sender is gone and the queue is drained.
    /// False when the writer thread panicked.
    pub fn join(mut self) -> bool {
        self.thread.take().map(|t| t.join().is_ok()).unwrap_or(true)
    }
}

fn write_loop(
    store: &Store,
    stats: &Stats,
    places: &Places,
    receiver: &mpsc::Receiver<Vec<Incoming>>,
    dir: &Path,
    probe: Option<&super::latency::LatencyProbe>,
) {
    let mut last_flush = Instant::now();
    let mut guard = DiskGuard::default();
    let mut pressure = Pressure::default();
    let mut mark_rate = MarkRate::default();
    loop {
        let received = receiver.recv_timeout(DISK_CHECK_PERIOD);
        let writable = guard.check(dir, stats);
        pressure.update(store, stats);
        match received {
            Ok(batch) => {
                for m in &batch {
                    stats.dequeued(m);
                    if writable {
                        if write_one(store, stats, m) {
                            if let Some(p) = probe {
                                p.written(store, m.publish_time);
                            }
                            places.observe(m.topic, m.log_time, &m.payload);
                            if stats.is_mark_topic(m.topic) && mark_rate.admit(stats) {
                                mark_from_topic(store, stats, m);
                            }
                        }
                    } else {
                        stats.add_loss(m.topic, 1, 0);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_flush.elapsed() >= LOSS_FLUSH_PERIOD {
            stats.flush_losses(store);
            places.follow_retention(store);
            last_flush = Instant::now();
        }
    }
    stats.flush_losses(store);
}

/// Pauses value-log compression while the queue is more than half full
/// (by count or bytes) and resumes it below a quarter: compressing costs the
/// writer CPU, and a message dropped for want of time costs more than the
/// bytes compression would have saved.
#[derive(Default)]
struct Pressure {
    paused: bool,
}

impl Pressure {
    fn update(&mut self, store: &Store, stats: &Stats) {
        let share = |used: u64, max: u64| used as f64 / max.max(1) as f64;
        let fill = share(
            stats.queued.load(Ordering::Relaxed),
            stats.queue_capacity.load(Ordering::Relaxed),
        )
        .max(share(
            stats.queued_bytes.load(Ordering::Relaxed),
            stats.queue_max_bytes.load(Ordering::Relaxed),
        ));
        let paused = if self.paused { fill > 0.25 } else { fill > 0.5 };
        if paused != self.paused {
            self.paused = paused;
            store.pause_compression(paused);
        }
    }
}

/// How often the writer looks at the free space of the store's disk.
const DISK_CHECK_PERIOD: Duration = Duration::from_millis(100);

/// `storage.min_free_bytes`, checked with statvfs at most every
/// `DISK_CHECK_PERIOD`: below it the writer drops (and counts) what it
/// takes instead of writing, so the disk is never filled to the last byte
/// (other processes on the robot need it too); above it, it writes again.
#[derive(Default)]
struct DiskGuard {
    checked: Option<Instant>,
    stopped: bool,
    /// statvfs is failing (reported once).
    failing: bool,
}

impl DiskGuard {
    /// True when writing is allowed.
    fn check(&mut self, dir: &Path, stats: &Stats) -> bool {
        if self
            .checked
            .is_some_and(|t| t.elapsed() < DISK_CHECK_PERIOD)
        {
            return !self.stopped;
        }
        self.checked = Some(Instant::now());
        let min = stats.min_free_bytes.load(Ordering::Relaxed);
        let free = match free_bytes(dir) {
            Ok(f) => {
                self.failing = false;
                f
            }
            Err(e) => {
                // Said once per failure, not every 100 ms.
                if !std::mem::replace(&mut self.failing, true) {
                    stats.note_error(format!("statvfs {}: {e}", dir.display()));
                }
                return !self.stopped;
            }
        };
        stats.disk_free.store(free, Ordering::Relaxed);
        let stop = min > 0 && free < min;
        if stop && !self.stopped {
            let why = format!(
                "{free} bytes free on the store's disk, below storage.min_free_bytes {min}"
            );
            stats.note_error(format!("writing stopped: {why}"));
            *stats.disk_guard.lock() = Some(why);
            stats.urgent.store(true, Ordering::Release);
        } else if !stop && self.stopped {
            *stats.disk_guard.lock() = None;
            stats.urgent.store(true, Ordering::Release);
        }
        self.stopped = stop;
        !stop
    }
}

/// Bytes an unprivileged process may still write on the file system of
/// `dir` (statvfs f_bavail * f_frsize).
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: a NUL-terminated path and a zeroed statvfs the call fills.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        st
    };
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The system clock, ns since the epoch (0 before it).
pub fn now_nanos() -> Nanos {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// True when the message was stored.
fn write_one(store: &Store, stats: &Stats, m: &Incoming) -> bool {
    match store.append(m.topic, m.log_time, m.publish_time, &m.payload) {
        Ok(_) => {
            stats.written.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(e) => {
            // Refused (stopped, poisoned, quota): counted, never silent.
            stats.note_error(e.to_string());
            stats.add_loss(m.topic, 1, 0);
            false
        }
    }
}

/// Marks made from the mark topic, at most `MARKS_PER_S` a second: each
/// costs a manifest fsync on the writer thread, so a flood must not stall
/// recording. Messages beyond it are recorded but make no mark, and say so.
#[derive(Default)]
struct MarkRate {
    second: Option<Instant>,
    count: u32,
}

const MARKS_PER_S: u32 = 10;

impl MarkRate {
    fn admit(&mut self, stats: &Stats) -> bool {
        let now = Instant::now();
        if self
            .second
            .is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1))
        {
            self.second = Some(now);
            self.count = 0;
        }
        self.count += 1;
        if self.count == MARKS_PER_S + 1 {
            stats.note_error(format!(
                "places.mark_topic: more than {MARKS_PER_S} marks in a second; the rest of this second's messages are recorded but make no mark"
            ));
        }
        self.count <= MARKS_PER_S
    }
}

/// A stored message of the mark topic makes a mark, its window around the
/// message's log time; a message that is no valid mark is an error shown
/// on /diagnostics (and logged), never a lost message: it was recorded.
fn mark_from_topic(store: &Store, stats: &Stats, m: &Incoming) {
    let made = super::marks::decode(&m.payload)
        .map(|input| crate::node::services::add_mark(store, &input, Some(m.log_time)));
    match made {
        Ok(out) if out.success => {}
        Ok(out) => stats.note_error(format!("places.mark_topic: mark refused: {}", out.message)),
        Err(e) => stats.note_error(format!("places.mark_topic: {e}")),
    }
}

/// Counts publisher sequence numbers that never arrived, per topic and
/// publisher. A publisher not heard from for a while is forgotten
/// (`prune`), so publishers that come and go do not grow it without bound.
#[derive(Debug, Default)]
pub struct GapTracker {
    last: HashMap<(TopicId, [u8; 16]), (u64, Instant)>,
}

impl GapTracker {
    /// `Some(n)`: `seq` is new and `n` sequence numbers were skipped before
    /// it. `None`: this publisher's `seq` was already taken on `topic` (a
    /// message seen again through a new subscription, a transient-local
    /// replay), so it is not recorded twice. 0 and u64::MAX mean "not
    /// supported by the middleware": always new. One map lookup per message.
    pub fn admit(&mut self, topic: TopicId, publisher: [u8; 16], seq: u64) -> Option<u64> {
        if seq == 0 || seq == u64::MAX {
            return Some(0);
        }
        let now = Instant::now();
        match self.last.entry((topic, publisher)) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let (last, seen) = e.get_mut();
                *seen = now;
                if seq <= *last {
                    return None;
                }
                let missed = seq - *last - 1;
                *last = seq;
                Some(missed)
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert((seq, now));
                Some(0)
            }
        }
    }

    /// How many sequence numbers were skipped before `seq` (0 for one
    /// already seen).
    #[cfg(test)]
    pub fn observe(&mut self, topic: TopicId, publisher: [u8; 16], seq: u64) -> u64 {
        self.admit(topic, publisher, seq).unwrap_or(0)
    }

    /// Forgets publishers not heard from for `idle`.
    pub fn prune(&mut self, idle: Duration) {
        self.last.retain(|_, (_, seen)| seen.elapsed() < idle);
    }

    /// Publishers tracked.
    pub fn tracked(&self) -> usize {
        self.last.len()
    }

    pub fn forget_topic(&mut self, topic: TopicId) {
        self.last.retain(|(t, _), _| *t != topic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_counted_per_publisher() {
        let mut g = GapTracker::default();
        let (a, b) = ([1; 16], [2; 16]);
        assert_eq!(g.observe(0, a, 5), 0); // first seen: no history
        assert_eq!(g.observe(0, a, 6), 0);
        assert_eq!(g.observe(0, a, 9), 2);
        assert_eq!(g.observe(0, b, 1), 0);
        assert_eq!(g.observe(0, b, 2), 0);
        assert_eq!(g.observe(0, a, 8), 0); // late duplicate
        assert_eq!(g.observe(0, a, 10), 0);
        assert_eq!(g.observe(0, a, u64::MAX), 0);
    }

    fn message(topic: TopicId, len: usize) -> Incoming {
        Incoming {
            topic,
            log_time: 1,
            publish_time: 0,
            payload: vec![0; len],
        }
    }

    #[test]
    fn the_queue_is_bounded_by_bytes_and_drops_are_counted_per_topic() {
        let stats = Arc::new(Stats::default());
        stats.queue_max_bytes.store(1000, Ordering::Relaxed);
        stats.queue_capacity.store(100, Ordering::Relaxed);
        let (sender, receiver) = mpsc::sync_channel(100);
        let q = Queue {
            sender,
            stats: Arc::clone(&stats),
            null: false,
        };
        // Alone, a message larger than the bound is queued (recorded one
        // at a time); behind it, nothing more fits.
        q.offer(message(1, 1500));
        q.offer(message(2, 10));
        assert_eq!(stats.snapshot().queue_bytes, 1500);
        assert_eq!(stats.snapshot().messages_dropped, 1);
        assert_eq!(receiver.try_recv().unwrap()[0].payload.len(), 1500);
        stats.dequeued(&message(1, 1500));
        for _ in 0..4 {
            q.offer(message(1, 300));
        }
        // 3 x 300 fit in 1000, the fourth does not.
        let snap = stats.snapshot();
        assert_eq!(
            (snap.queue_bytes, snap.queue_depth, snap.messages_dropped),
            (900, 3, 2)
        );
        assert_eq!(stats.pending_loss.lock().get(&1), Some(&(1, 0)));
        assert_eq!(stats.pending_loss.lock().get(&2), Some(&(1, 0)));
    }

    #[test]
    fn a_batch_is_one_hand_off_and_the_count_bound_holds_per_message() {
        let stats = Arc::new(Stats::default());
        stats.queue_max_bytes.store(1 << 30, Ordering::Relaxed);
        stats.queue_capacity.store(5, Ordering::Relaxed);
        let (sender, receiver) = mpsc::sync_channel(5);
        let q = Queue {
            sender,
            stats: Arc::clone(&stats),
            null: false,
        };
        let mut batch = Batch::new(&q);
        for i in 0..7 {
            batch.push(message(i % 2, 10));
        }
        // Nothing is handed over before the flush.
        assert!(receiver.try_recv().is_err());
        batch.flush();
        let got = receiver.try_recv().unwrap();
        assert_eq!(got.len(), 5);
        assert!(receiver.try_recv().is_err());
        let snap = stats.snapshot();
        assert_eq!(
            (
                snap.queue_depth,
                snap.messages_dropped,
                snap.messages_received
            ),
            (5, 2, 7)
        );
        // A full batch goes at once, without waiting for the flush.
        for m in &got {
            stats.dequeued(m);
        }
        for _ in 0..BATCH_MESSAGES {
            batch.push(message(0, 1));
        }
        assert_eq!(receiver.try_recv().unwrap().len(), 5);
    }

    #[test]
    fn marks_from_the_topic_are_limited_per_second_and_the_excess_is_reported() {
        let stats = Stats::default();
        let mut rate = MarkRate::default();
        let admitted = (0..25).filter(|_| rate.admit(&stats)).count();
        assert_eq!(admitted, MARKS_PER_S as usize);
        assert_eq!(stats.take_unlogged().len(), 1, "reported once per second");
        // A second later the budget is back.
        rate.second = rate
            .second
            .and_then(|s| s.checked_sub(Duration::from_millis(1001)));
        assert!(rate.admit(&stats));
    }

    #[test]
    fn compression_pauses_above_half_a_queue_and_resumes_below_a_quarter() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), crate::engine::Options::default()).unwrap();
        let t = store
            .register_topic(crate::engine::TopicSpec {
                name: "/camera".into(),
                type_name: "sensor_msgs/msg/Image".into(),
                serialization_format: "cdr".into(),
                ..Default::default()
            })
            .unwrap();
        let stats = Stats::default();
        stats.queue_capacity.store(100, Ordering::Relaxed);
        stats.queue_max_bytes.store(1000, Ordering::Relaxed);
        let image = vec![7u8; 100_000];
        let mut p = Pressure::default();
        // (queued, queued bytes) -> paused after the update, and what
        // the next large compressible payload counts as.
        let steps = [
            ((10, 100), false),
            ((51, 100), true),  // over half by count
            ((30, 300), true),  // between: stays paused
            ((20, 200), false), // below a quarter
            ((1, 600), true),   // over half by bytes
            ((0, 0), false),
        ];
        let mut busy = 0;
        for ((n, b), paused) in steps {
            stats.queued.store(n, Ordering::Relaxed);
            stats.queued_bytes.store(b, Ordering::Relaxed);
            p.update(&store, &stats);
            assert_eq!(p.paused, paused, "queued {n}, {b} bytes");
            store.append(t, 1, 0, &image).unwrap();
            busy += u64::from(paused);
            let c = store.topics()[0].value_codec.unwrap();
            assert_eq!(c.busy, busy, "queued {n}, {b} bytes");
            assert_eq!(c.encoded + c.busy, c.raw + c.encoded, "{c:?}");
        }
    }

    #[test]
    fn free_space_is_measured_on_the_store_disk() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        let stats = Stats::default();
        let mut guard = DiskGuard::default();
        stats
            .min_free_bytes
            .store(free.saturating_mul(4), Ordering::Relaxed);
        assert!(!guard.check(dir.path(), &stats), "below the minimum: stop");
        assert!(stats.snapshot().disk_guard.is_some());
        guard.checked = None;
        stats.min_free_bytes.store(0, Ordering::Relaxed);
        assert!(guard.check(dir.path(), &stats), "guard off: write");
        assert!(stats.snapshot().disk_guard.is_none());
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn publishers_not_heard_from_are_forgotten() {
        let mut g = GapTracker::default();
        g.observe(0, [1; 16], 5);
        g.observe(1, [2; 16], 5);
        g.prune(Duration::from_secs(3600));
        assert_eq!(g.tracked(), 2, "heard from within the hour: kept");
        g.prune(Duration::ZERO);
        assert_eq!(g.tracked(), 0, "idle longer than the limit: forgotten");
    }

    #[test]
    fn loss_counts_accumulate() {
        let s = Stats::default();
        s.add_loss(3, 2, 0);
        s.add_loss(3, 1, 4);
        let snap = s.snapshot();
        assert_eq!((snap.messages_dropped, snap.gaps_detected), (3, 4));
        assert_eq!(s.pending_loss.lock().get(&3), Some(&(3, 4)));
    }
}
