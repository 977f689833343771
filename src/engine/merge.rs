//! The one k-way merge iterator, used by scans, flush and compaction.
//! Sources yield entries already sorted in the requested order; the merge
//! drops exact duplicate keys (the same record seen in a memtable and in
//! the table it was just flushed to).

use super::error::Result;
use super::memtable::MemIter;
use super::sstable::TableIter;
use super::types::{Entry, Key};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Sort order of a merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// true: (time, topic, seq), for multi-topic scans; false: key order
    /// (topic, time, seq), for flush and compaction.
    pub by_time: bool,
    pub reverse: bool,
}

impl Order {
    pub const KEY: Order = Order {
        by_time: false,
        reverse: false,
    };

    fn rank(&self, k: &Key) -> (u64, u64, u64) {
        if self.by_time {
            (k.time, u64::from(k.topic), k.seq)
        } else {
            (u64::from(k.topic), k.time, k.seq)
        }
    }

    pub fn cmp(&self, a: &Key, b: &Key) -> Ordering {
        let o = self.rank(a).cmp(&self.rank(b));
        if self.reverse {
            o.reverse()
        } else {
            o
        }
    }
}

/// A sorted input of the merge.
pub enum Source {
    Mem(MemIter),
    Table(TableIter),
}

impl Source {
    fn next_entry(&mut self) -> Result<Option<Entry>> {
        match self {
            Source::Mem(m) => Ok(m.next_entry()),
            Source::Table(t) => t.next_entry(),
        }
    }

    /// A key no entry of this source precedes in merge order, if known
    /// without reading (tables, from their per-topic meta).
    fn bound(&self) -> Option<Key> {
        match self {
            Source::Mem(_) => None,
            Source::Table(t) => t.bound(),
        }
    }
}

/// A heap slot: a source's next entry, or, for a source not read yet, its
/// bound (the source is opened when the bound reaches the top). So a scan
/// over thousands of tables opens them one stretch of time at a time.
struct Head {
    key: Key,
    entry: Option<Entry>,
    source: usize,
    order: Order,
}

impl PartialEq for Head {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Head {
    // BinaryHeap is a max-heap: invert so the smallest key pops first;
    // on equal keys the lower source index (newer data) wins.
    fn cmp(&self, o: &Self) -> Ordering {
        self.order
            .cmp(&o.key, &self.key)
            .then(o.source.cmp(&self.source))
    }
}

pub struct MergeIter {
    sources: Vec<Source>,
    heap: BinaryHeap<Head>,
    order: Order,
    last: Option<Key>,
    primed: bool,
}

impl MergeIter {
    pub fn new(sources: Vec<Source>, order: Order) -> MergeIter {
        MergeIter {
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            order,
            last: None,
            primed: false,
        }
    }

    fn pull(&mut self, i: usize) -> Result<()> {
        if let Some(src) = self.sources.get_mut(i) {
            if let Some(entry) = src.next_entry()? {
                self.heap.push(Head {
                    key: entry.key,
                    entry: Some(entry),
                    source: i,
                    order: self.order,
                });
            }
        }
        Ok(())
    }

    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        if !self.primed {
            self.prime()?;
        }
        while let Some(head) = self.heap.pop() {
            self.pull(head.source)?;
            let Some(entry) = head.entry else {
                continue; // a bound: the source's real first entry is queued now
            };
            if self.last == Some(entry.key) {
                continue;
            }
            self.last = Some(entry.key);
            return Ok(Some(entry));
        }
        Ok(None)
    }

    fn prime(&mut self) -> Result<()> {
        for i in 0..self.sources.len() {
            match self.sources.get(i).and_then(Source::bound) {
                Some(key) => self.heap.push(Head {
                    key,
                    entry: None,
                    source: i,
                    order: self.order,
                }),
                None => self.pull(i)?,
            }
        }
        self.primed = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memtable::Memtable;
    use crate::engine::types::ValueRef;
    use std::sync::Arc;

    fn mem(keys: &[(u32, u64)]) -> Arc<Memtable> {
        let m = Arc::new(Memtable::new(0));
        for (t, time) in keys {
            m.insert(Key::new(*t, *time, *time), 0, ValueRef::Inline(&[]));
        }
        m
    }

    fn run(order: Order, mems: &[Arc<Memtable>], topic: Option<u32>) -> Vec<(u32, u64)> {
        let (lo, hi) = match topic {
            Some(t) => (Key::new(t, 0, 0), Key::new(t + 1, 0, 0)),
            None => (Key::MIN, Key::MAX),
        };
        let srcs = mems
            .iter()
            .map(|m| Source::Mem(MemIter::new(m.clone(), lo, hi, order.reverse)))
            .collect();
        let mut it = MergeIter::new(srcs, order);
        let mut out = Vec::new();
        while let Some(e) = it.next_entry().unwrap() {
            out.push((e.key.topic, e.key.time));
        }
        out
    }

    #[test]
    fn merges_in_key_order_and_drops_duplicates() {
        let a = mem(&[(1, 1), (1, 5), (2, 3)]);
        let b = mem(&[(1, 2), (1, 5), (2, 1)]);
        let got = run(Order::KEY, &[a.clone(), b.clone()], None);
        assert_eq!(got, vec![(1, 1), (1, 2), (1, 5), (2, 1), (2, 3)]);
        let rev = Order {
            by_time: false,
            reverse: true,
        };
        let mut r = run(rev, &[a, b], None);
        r.reverse();
        assert_eq!(r, got);
    }

    #[test]
    fn per_topic_sources_merge_by_time() {
        let a = mem(&[(1, 1), (1, 5), (2, 3)]);
        let order = Order {
            by_time: true,
            reverse: false,
        };
        let srcs = [1u32, 2]
            .iter()
            .map(|t| {
                Source::Mem(MemIter::new(
                    a.clone(),
                    Key::new(*t, 0, 0),
                    Key::new(*t + 1, 0, 0),
                    false,
                ))
            })
            .collect();
        let mut it = MergeIter::new(srcs, order);
        let mut out = Vec::new();
        while let Some(e) = it.next_entry().unwrap() {
            out.push((e.key.topic, e.key.time));
        }
        assert_eq!(out, vec![(1, 1), (2, 3), (1, 5)]);
    }
}
