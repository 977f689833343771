//! The path from a subscription to the store: a bounded queue that the
//! middleware thread fills without blocking, a writer thread that appends,
//! loss accounting (queue full, refused writes, publisher sequence gaps)
//! and the recorder's counters.

use crate::engine::{Nanos, Store, TopicId};
use crate::node::diagnostics::RecorderSnapshot;
use parking_lot::Mutex;
use std::collections::HashMap;
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
    pub unresolved: Mutex<Vec<String>>,
    last_error: Mutex<Option<String>>,
    /// Errors not yet written to the log (the adapter logs them).
    unlogged: Mutex<Vec<String>>,
    /// Why the recorder thread is not taking messages, while it is down.
    down: Mutex<Option<String>>,
    /// Set when the recorder gave up restarting: the node exits non-zero.
    failed: std::sync::atomic::AtomicBool,
    /// Set when diagnostics should go out now rather than at the period.
    urgent: std::sync::atomic::AtomicBool,
    /// Losses not yet handed to `Store::record_loss`: topic -> (dropped, gaps).
    pending_loss: Mutex<HashMap<TopicId, (u64, u64)>>,
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
            unresolved_types: self.unresolved.lock().clone(),
            last_error: self.last_error.lock().clone().unwrap_or_default(),
            down: self.down.lock().clone(),
        }
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
    sender: SyncSender<Incoming>,
    stats: Arc<Stats>,
}

impl Queue {
    /// Queues `m`; a full queue counts a drop on its topic.
    pub fn offer(&self, m: Incoming) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let topic = m.topic;
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        match self.sender.try_send(m) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                self.stats.add_loss(topic, 1, 0);
            }
        }
    }
}

/// The writer thread.
pub struct Writer {
    thread: Option<JoinHandle<()>>,
}

const LOSS_FLUSH_PERIOD: Duration = Duration::from_millis(500);

impl Writer {
    pub fn start(
        store: Arc<Store>,
        stats: Arc<Stats>,
        capacity: usize,
    ) -> std::io::Result<(Queue, Writer)> {
        let (sender, receiver) = mpsc::sync_channel::<Incoming>(capacity);
        stats
            .queue_capacity
            .store(capacity as u64, Ordering::Relaxed);
        let queue = Queue {
            sender,
            stats: Arc::clone(&stats),
        };
        let thread = std::thread::Builder::new()
            .name("motedb-writer".into())
            .spawn(move || write_loop(&store, &stats, &receiver))?;
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

fn write_loop(store: &Store, stats: &Stats, receiver: &mpsc::Receiver<Incoming>) {
    let mut last_flush = Instant::now();
    loop {
        match receiver.recv_timeout(LOSS_FLUSH_PERIOD) {
            Ok(m) => {
                stats.queued.fetch_sub(1, Ordering::Relaxed);
                write_one(store, stats, &m);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_flush.elapsed() >= LOSS_FLUSH_PERIOD {
            stats.flush_losses(store);
            last_flush = Instant::now();
        }
    }
    stats.flush_losses(store);
}

fn write_one(store: &Store, stats: &Stats, m: &Incoming) {
    match store.append(m.topic, m.log_time, m.publish_time, &m.payload) {
        Ok(_) => {
            stats.written.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            // Refused (stopped, poisoned, quota): counted, never silent.
            stats.note_error(e.to_string());
            stats.add_loss(m.topic, 1, 0);
        }
    }
}

/// Counts publisher sequence numbers that never arrived, per topic and
/// publisher.
#[derive(Debug, Default)]
pub struct GapTracker {
    last: HashMap<(TopicId, [u8; 16]), u64>,
}

impl GapTracker {
    /// Returns how many sequence numbers were skipped before `seq`.
    /// 0 and u64::MAX mean "not supported by the middleware".
    pub fn observe(&mut self, topic: TopicId, publisher: [u8; 16], seq: u64) -> u64 {
        if seq == 0 || seq == u64::MAX {
            return 0;
        }
        match self.last.insert((topic, publisher), seq) {
            Some(prev) if seq > prev + 1 => seq - prev - 1,
            Some(prev) if seq <= prev => {
                // Out of order or a restarted publisher: keep the newest.
                self.last.insert((topic, publisher), prev.max(seq));
                0
            }
            _ => 0,
        }
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
