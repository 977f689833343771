//! In-memory buffer of recent records. Per topic, a vector of slots sorted
//! by (log_time, seq): in-order messages are a push, late ones a binary
//! search and a short move near the end. Payloads live in a chunked arena,
//! so an append allocates nothing in the common case. Readers copy small
//! batches under the read lock and never hold it between batches.

use super::sstable::TopicRange;
use super::types::{Entry, Key, VPtr, Value, ValueRef};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Per-entry bytes counted against the budget besides the payload.
const ENTRY_OVERHEAD: usize = 64;
const READ_BATCH: usize = 256;
const ARENA_CHUNK: usize = 1 << 20;

#[derive(Clone, Copy)]
enum Val {
    Arena { chunk: u32, off: u32, len: u32 },
    Ptr(VPtr),
}

#[derive(Clone, Copy)]
struct Slot {
    time: u64,
    seq: u64,
    publish: u64,
    val: Val,
}

impl Slot {
    fn order(&self) -> (u64, u64) {
        (self.time, self.seq)
    }
}

#[derive(Default)]
struct TopicTable {
    slots: Vec<Slot>,
    range: TopicRange,
}

#[derive(Default)]
struct Arena {
    chunks: Vec<Vec<u8>>,
}

impl Arena {
    fn put(&mut self, b: &[u8]) -> Val {
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= b.len());
        if !fits {
            self.chunks
                .push(Vec::with_capacity(ARENA_CHUNK.max(b.len())));
        }
        let chunk = self.chunks.len().saturating_sub(1);
        let mut off = 0;
        if let Some(c) = self.chunks.last_mut() {
            off = c.len();
            c.extend_from_slice(b);
        }
        Val::Arena {
            chunk: chunk as u32,
            off: off as u32,
            len: b.len() as u32,
        }
    }

    fn get(&self, chunk: u32, off: u32, len: u32) -> &[u8] {
        let start = off as usize;
        self.chunks
            .get(chunk as usize)
            .and_then(|c| c.get(start..start + len as usize))
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    topics: Vec<TopicTable>,
    arena: Arena,
    len: usize,
}

impl Inner {
    fn entry(&self, topic: u32, s: &Slot) -> Entry {
        let value = match s.val {
            Val::Arena { chunk, off, len } => {
                Value::Inline(self.arena.get(chunk, off, len).to_vec())
            }
            Val::Ptr(p) => Value::Ptr(p),
        };
        Entry {
            key: Key::new(topic, s.time, s.seq),
            publish: s.publish,
            value,
        }
    }

    /// Slot index range of `topic` within `[lo, hi)`.
    fn bounds(slots: &[Slot], topic: u32, lo: &Key, hi: &Key) -> (usize, usize) {
        let a = if lo.topic < topic {
            0
        } else if lo.topic == topic {
            slots.partition_point(|s| s.order() < (lo.time, lo.seq))
        } else {
            slots.len()
        };
        let b = if hi.topic > topic {
            slots.len()
        } else if hi.topic == topic {
            slots.partition_point(|s| s.order() < (hi.time, hi.seq))
        } else {
            0
        };
        (a, b.max(a))
    }

    fn batch(&self, lo: &Key, hi: &Key, reverse: bool, out: &mut Vec<Entry>) {
        let first = lo.topic as usize;
        let last = (hi.topic as usize).min(self.topics.len().saturating_sub(1));
        if self.topics.is_empty() || first > last {
            return;
        }
        let mut visit = |t: usize| -> bool {
            let Some(tt) = self.topics.get(t) else {
                return true;
            };
            let (a, b) = Self::bounds(&tt.slots, t as u32, lo, hi);
            let Some(slice) = tt.slots.get(a..b) else {
                return true;
            };
            let room = READ_BATCH - out.len();
            if reverse {
                out.extend(
                    slice
                        .iter()
                        .rev()
                        .take(room)
                        .map(|s| self.entry(t as u32, s)),
                );
            } else {
                out.extend(slice.iter().take(room).map(|s| self.entry(t as u32, s)));
            }
            out.len() < READ_BATCH
        };
        if reverse {
            for t in (first..=last).rev() {
                if !visit(t) {
                    break;
                }
            }
        } else {
            for t in first..=last {
                if !visit(t) {
                    break;
                }
            }
        }
    }
}

pub struct Memtable {
    inner: RwLock<Inner>,
    bytes: AtomicUsize,
    /// Highest WAL segment holding records of this memtable.
    last_wal_segment: AtomicU64,
    /// Wall-clock ns when it was frozen (stopped taking records); 0 while
    /// active.
    frozen_at: AtomicU64,
}

impl Memtable {
    pub fn new(wal_segment: u64) -> Memtable {
        Memtable {
            inner: RwLock::new(Inner::default()),
            bytes: AtomicUsize::new(0),
            last_wal_segment: AtomicU64::new(wal_segment),
            frozen_at: AtomicU64::new(0),
        }
    }

    pub fn set_frozen_at(&self, wall: u64) {
        self.frozen_at.store(wall, Ordering::Release);
    }

    pub fn frozen_at(&self) -> u64 {
        self.frozen_at.load(Ordering::Acquire)
    }

    pub fn insert(&self, key: Key, publish: u64, value: ValueRef<'_>) {
        let size = match value {
            ValueRef::Inline(b) => ENTRY_OVERHEAD + b.len(),
            ValueRef::Ptr(_) => ENTRY_OVERHEAD,
        };
        let mut g = self.inner.write();
        let val = match value {
            ValueRef::Inline(b) => g.arena.put(b),
            ValueRef::Ptr(p) => Val::Ptr(p),
        };
        let t = key.topic as usize;
        if g.topics.len() <= t {
            g.topics.resize_with(t + 1, TopicTable::default);
        }
        let slot = Slot {
            time: key.time,
            seq: key.seq,
            publish,
            val,
        };
        if let Some(tt) = g.topics.get_mut(t) {
            tt.range.add(key.time, value);
            if tt.slots.last().is_none_or(|s| s.order() < slot.order()) {
                tt.slots.push(slot);
            } else {
                let at = tt.slots.partition_point(|s| s.order() < slot.order());
                tt.slots.insert(at, slot);
            }
        }
        g.len += 1;
        drop(g);
        self.bytes.fetch_add(size, Ordering::Relaxed);
    }

    pub fn approximate_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.inner.read().len == 0
    }

    pub fn set_last_wal_segment(&self, seg: u64) {
        self.last_wal_segment.store(seg, Ordering::Release);
    }

    pub fn last_wal_segment(&self) -> u64 {
        self.last_wal_segment.load(Ordering::Acquire)
    }

    pub fn topic_stats(&self) -> Vec<(u32, TopicRange)> {
        let g = self.inner.read();
        g.topics
            .iter()
            .enumerate()
            .filter(|(_, t)| t.range.count > 0)
            .map(|(i, t)| (i as u32, t.range))
            .collect()
    }

    pub fn topic_range(&self, topic: u32) -> Option<TopicRange> {
        let g = self.inner.read();
        g.topics
            .get(topic as usize)
            .map(|t| t.range)
            .filter(|r| r.count > 0)
    }
}

/// The smallest key after `k`.
fn successor(k: &Key) -> Key {
    if k.seq < u64::MAX {
        Key::new(k.topic, k.time, k.seq + 1)
    } else if k.time < u64::MAX {
        Key::new(k.topic, k.time + 1, 0)
    } else {
        Key::new(k.topic.saturating_add(1), 0, 0)
    }
}

/// Iterates a memtable over `[lo, hi)` in batches. With a `seq_limit`,
/// records whose sequence is at or above it (appended after the reader's
/// snapshot; ranges here are within one topic) are skipped.
pub struct MemIter {
    mem: Arc<Memtable>,
    lo: Key,
    hi: Key,
    reverse: bool,
    buf: std::vec::IntoIter<Entry>,
    done: bool,
    seq_limit: Option<u64>,
}

impl MemIter {
    pub fn new(mem: Arc<Memtable>, lo: Key, hi: Key, reverse: bool) -> MemIter {
        MemIter {
            mem,
            lo,
            hi,
            reverse,
            buf: Vec::new().into_iter(),
            done: false,
            seq_limit: None,
        }
    }

    pub fn with_seq_limit(mut self, limit: Option<u64>) -> MemIter {
        self.seq_limit = limit;
        self
    }

    fn refill(&mut self) {
        let mut out = Vec::with_capacity(READ_BATCH);
        if self.lo < self.hi {
            self.mem
                .inner
                .read()
                .batch(&self.lo, &self.hi, self.reverse, &mut out);
        }
        if out.len() < READ_BATCH {
            self.done = true;
        }
        if let Some(last) = out.last() {
            if self.reverse {
                self.hi = last.key;
            } else {
                self.lo = successor(&last.key);
            }
        }
        self.buf = out.into_iter();
    }

    pub fn next_entry(&mut self) -> Option<Entry> {
        loop {
            if let Some(e) = self.buf.next() {
                if self.seq_limit.is_some_and(|l| e.key.seq >= l) {
                    continue;
                }
                return Some(e);
            }
            if self.done {
                return None;
            }
            self.refill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(m: &Arc<Memtable>, lo: Key, hi: Key, rev: bool) -> Vec<(u32, u64, u64)> {
        let mut it = MemIter::new(m.clone(), lo, hi, rev);
        let mut v = Vec::new();
        while let Some(e) = it.next_entry() {
            v.push((e.key.topic, e.key.time, e.key.seq));
        }
        v
    }

    #[test]
    fn memiter_batches_cover_range_both_directions() {
        let m = Arc::new(Memtable::new(0));
        for i in 0..1000u64 {
            m.insert(Key::new(1, i, i), 0, ValueRef::Inline(&[1]));
            m.insert(Key::new(2, i, i), 0, ValueRef::Inline(&[2]));
        }
        let fwd = collect(&m, Key::new(1, 10, 0), Key::new(1, 900, 0), false);
        assert_eq!(
            fwd.iter().map(|k| k.1).collect::<Vec<_>>(),
            (10..900).collect::<Vec<_>>()
        );
        let mut rev = collect(&m, Key::new(1, 10, 0), Key::new(1, 900, 0), true);
        rev.reverse();
        assert_eq!(rev, fwd);
        assert_eq!(m.topic_range(2).unwrap().count, 1000);
        assert_eq!(collect(&m, Key::MIN, Key::MAX, false).len(), 2000);
        let mut all_rev = collect(&m, Key::MIN, Key::MAX, true);
        all_rev.reverse();
        assert_eq!(all_rev, collect(&m, Key::MIN, Key::MAX, false));
    }

    #[test]
    fn late_messages_are_sorted_and_payloads_kept() {
        let m = Arc::new(Memtable::new(0));
        let times = [5u64, 9, 3, 9, 1, 7];
        for (seq, t) in times.iter().enumerate() {
            let p = vec![*t as u8; 3];
            m.insert(Key::new(0, *t, seq as u64), 0, ValueRef::Inline(&p));
        }
        let mut it = MemIter::new(m.clone(), Key::MIN, Key::MAX, false);
        let mut got = Vec::new();
        while let Some(e) = it.next_entry() {
            assert_eq!(e.value, Value::Inline(vec![e.key.time as u8; 3]));
            got.push((e.key.time, e.key.seq));
        }
        assert_eq!(got, vec![(1, 4), (3, 2), (5, 0), (7, 5), (9, 1), (9, 3)]);
    }
}
