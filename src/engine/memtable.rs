//! In-memory sorted buffer of recent records, keyed (topic, time, seq).
//! The active memtable takes inserts under a short write lock; readers copy
//! small batches under a read lock and never hold it between batches.

use super::sstable::TopicRange;
use super::types::{Entry, Key, Value};
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Approximate per-entry overhead in the tree, for the byte budget.
const ENTRY_OVERHEAD: usize = 80;
const READ_BATCH: usize = 256;

#[derive(Default)]
struct Inner {
    map: BTreeMap<Key, (u64, Value)>,
    topics: HashMap<u32, TopicRange>,
}

pub struct Memtable {
    inner: RwLock<Inner>,
    bytes: AtomicUsize,
    /// Highest WAL segment holding records of this memtable.
    last_wal_segment: AtomicU64,
}

impl Memtable {
    pub fn new(wal_segment: u64) -> Memtable {
        Memtable {
            inner: RwLock::new(Inner::default()),
            bytes: AtomicUsize::new(0),
            last_wal_segment: AtomicU64::new(wal_segment),
        }
    }

    pub fn insert(&self, key: Key, publish: u64, value: Value) {
        let size = ENTRY_OVERHEAD
            + match &value {
                Value::Inline(v) => v.len(),
                Value::Ptr(_) => 24,
            };
        let payload = value.payload_len();
        let mut g = self.inner.write();
        g.topics
            .entry(key.topic)
            .or_default()
            .add(key.time, payload);
        g.map.insert(key, (publish, value));
        drop(g);
        self.bytes.fetch_add(size, Ordering::Relaxed);
    }

    pub fn approximate_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.inner.read().map.is_empty()
    }

    pub fn set_last_wal_segment(&self, seg: u64) {
        self.last_wal_segment.store(seg, Ordering::Release);
    }

    pub fn last_wal_segment(&self) -> u64 {
        self.last_wal_segment.load(Ordering::Acquire)
    }

    pub fn topic_stats(&self) -> Vec<(u32, TopicRange)> {
        let g = self.inner.read();
        g.topics.iter().map(|(t, r)| (*t, *r)).collect()
    }

    pub fn topic_range(&self, topic: u32) -> Option<TopicRange> {
        self.inner.read().topics.get(&topic).copied()
    }

    /// Copies up to READ_BATCH entries after `from` (exclusive when
    /// `excl`) and before `bound`, in the given direction.
    fn batch(&self, lo: Bound<Key>, hi: Bound<Key>, reverse: bool, out: &mut Vec<Entry>) {
        let g = self.inner.read();
        let range = g.map.range((lo, hi));
        let to_entry = |(k, (p, v)): (&Key, &(u64, Value))| Entry {
            key: *k,
            publish: *p,
            value: v.clone(),
        };
        if reverse {
            out.extend(range.rev().take(READ_BATCH).map(to_entry));
        } else {
            out.extend(range.take(READ_BATCH).map(to_entry));
        }
    }
}

/// Iterates a memtable over `[lo, hi)` in batches; entries with a sequence
/// at or above `seq_limit` (inserted after the snapshot) are skipped.
pub struct MemIter {
    mem: Arc<Memtable>,
    lo: Bound<Key>,
    hi: Bound<Key>,
    reverse: bool,
    buf: std::vec::IntoIter<Entry>,
    done: bool,
    seq_limit: Option<u64>,
}

impl MemIter {
    pub fn new(
        mem: Arc<Memtable>,
        lo: Key,
        hi: Key,
        reverse: bool,
        seq_limit: Option<u64>,
    ) -> MemIter {
        MemIter {
            mem,
            lo: Bound::Included(lo),
            hi: Bound::Excluded(hi),
            reverse,
            buf: Vec::new().into_iter(),
            done: false,
            seq_limit,
        }
    }

    fn refill(&mut self) {
        let mut out = Vec::with_capacity(READ_BATCH);
        self.mem.batch(self.lo, self.hi, self.reverse, &mut out);
        if out.len() < READ_BATCH {
            self.done = true;
        }
        if let Some(last) = out.last() {
            if self.reverse {
                self.hi = Bound::Excluded(last.key);
            } else {
                self.lo = Bound::Excluded(last.key);
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

    #[test]
    fn memiter_batches_cover_range_both_directions() {
        let m = Arc::new(Memtable::new(0));
        for i in 0..1000u64 {
            m.insert(Key::new(1, i, i), 0, Value::Inline(vec![1]));
            m.insert(Key::new(2, i, i), 0, Value::Inline(vec![2]));
        }
        let collect = |rev| {
            let mut it = MemIter::new(
                m.clone(),
                Key::new(1, 10, 0),
                Key::new(1, 900, 0),
                rev,
                None,
            );
            let mut v = Vec::new();
            while let Some(e) = it.next_entry() {
                v.push(e.key.time);
            }
            v
        };
        let fwd = collect(false);
        assert_eq!(fwd, (10..900).collect::<Vec<_>>());
        let mut rev = collect(true);
        rev.reverse();
        assert_eq!(rev, fwd);
        assert_eq!(m.topic_range(2).unwrap().count, 1000);
    }
}
