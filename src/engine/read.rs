//! Read path: scans with limits and cursors, streaming iterators, latest.
//! Every read works on a snapshot (`SuperVersion`) and holds no lock while
//! iterating.

use super::db::{Inner, SuperVersion};
use super::error::{Error, Result};
use super::memtable::MemIter;
use super::merge::{MergeIter, Order, Source};
use super::sstable::TableIter;
use super::types::{Entry, Key, Value};
use super::{Nanos, Record, ScanPage, ScanRequest};
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_64;

/// Cursor text: `c1-` followed by 32 hex bytes: request hash u64 | topic
/// u32 | log_time u64 | seq u64 (LE, see docs/format.md).
const CURSOR_PREFIX: &str = "c1-";

fn request_hash(topics: &[u32], start: u64, end: u64, newest_first: bool) -> u64 {
    let mut b = Vec::with_capacity(topics.len() * 4 + 17);
    for t in topics {
        b.extend_from_slice(&t.to_le_bytes());
    }
    b.extend_from_slice(&start.to_le_bytes());
    b.extend_from_slice(&end.to_le_bytes());
    b.push(u8::from(newest_first));
    xxh3_64(&b)
}

pub fn encode_cursor(hash: u64, k: &Key) -> String {
    let mut b = Vec::with_capacity(28);
    b.extend_from_slice(&hash.to_le_bytes());
    super::types::put_key(&mut b, k);
    let mut s = String::from(CURSOR_PREFIX);
    for byte in b {
        s.push_str(&format!("{byte:02x}"));
    }
    s
}

pub fn decode_cursor(s: &str, hash: u64) -> Result<Key> {
    let bad = |why: &str| Error::InvalidCursor(why.to_string());
    let hex = s
        .strip_prefix(CURSOR_PREFIX)
        .ok_or_else(|| bad("unknown format"))?;
    if hex.len() != 56 || !hex.is_ascii() {
        return Err(bad("wrong length"));
    }
    let bytes: Vec<u8> = (0..28)
        .map(|i| u8::from_str_radix(hex.get(i * 2..i * 2 + 2).unwrap_or("zz"), 16))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad("not hex"))?;
    let mut d = super::codec::Dec::new(&bytes);
    let h = d.u64().ok_or_else(|| bad("short"))?;
    if h != hash {
        return Err(bad("cursor belongs to a different query"));
    }
    super::types::take_key(&mut d).ok_or_else(|| bad("short"))
}

/// Key bounds `[lo, hi)` for one topic of a time-ordered scan, resuming
/// strictly after `after` in (time, topic, seq) order.
fn topic_bounds(t: u32, start: u64, end: u64, reverse: bool, after: Option<Key>) -> (Key, Key) {
    let mut lo = Key::new(t, start, 0);
    let mut hi = if end == u64::MAX {
        Key::new(t, u64::MAX, u64::MAX)
    } else {
        Key::new(t, end, 0)
    };
    let Some(c) = after else {
        return (lo, hi);
    };
    let next_time = |time: u64| {
        time.checked_add(1)
            .map_or(Key::new(t, u64::MAX, u64::MAX), |n| Key::new(t, n, 0))
    };
    if !reverse {
        let b = match t.cmp(&c.topic) {
            std::cmp::Ordering::Less => next_time(c.time),
            std::cmp::Ordering::Equal => Key::new(t, c.time, c.seq.saturating_add(1)),
            std::cmp::Ordering::Greater => Key::new(t, c.time, 0),
        };
        lo = lo.max(b);
    } else {
        let b = match t.cmp(&c.topic) {
            std::cmp::Ordering::Less => next_time(c.time),
            std::cmp::Ordering::Equal => Key::new(t, c.time, c.seq),
            std::cmp::Ordering::Greater => Key::new(t, c.time, 0),
        };
        hi = hi.min(b);
    }
    (lo, hi)
}

/// A snapshot for reading: the file set and memtables plus each topic's next
/// sequence at that moment, which hides records appended later.
type ReadView = (Arc<SuperVersion>, Vec<u64>);

/// Builds the merge over a snapshot for `topics` in time order.
fn merged(
    (sv, limits): &ReadView,
    topics: &[u32],
    start: u64,
    end: u64,
    reverse: bool,
    after: Option<Key>,
) -> MergeIter {
    let mut sources = Vec::new();
    for &t in topics {
        let (lo, hi) = topic_bounds(t, start, end, reverse, after);
        if lo >= hi {
            continue;
        }
        for m in std::iter::once(&sv.active).chain(sv.imm.iter().rev()) {
            let covers = m
                .topic_range(t)
                .is_some_and(|r| r.max_time >= lo.time && r.min_time <= hi.time);
            if covers {
                let it = MemIter::new(m.clone(), lo, hi, reverse)
                    .with_seq_limit(limits.get(t as usize).copied());
                sources.push(Source::Mem(it));
            }
        }
        for (_, table) in sv.version.tables() {
            let covers = table.may_contain(t)
                && table
                    .meta
                    .topics
                    .get(&t)
                    .is_some_and(|r| r.max_time >= lo.time && r.min_time <= hi.time);
            if covers {
                sources.push(Source::Table(TableIter::new(
                    table.clone(),
                    lo,
                    hi,
                    reverse,
                )));
            }
        }
    }
    let order = Order {
        by_time: true,
        reverse,
    };
    MergeIter::new(sources, order)
}

impl Inner {
    /// Snapshot plus sequence limits, taken together under the writer lock
    /// so no append falls between them.
    fn read_view(&self) -> ReadView {
        let w = self.writer.lock();
        let limits = w.next_seq.clone();
        let sv = self.snapshot();
        drop(w);
        (sv, limits)
    }

    /// Resolves a value pointer against the snapshot, or the current
    /// version for a value-log file created after the snapshot.
    pub fn resolve(&self, sv: &SuperVersion, e: Entry) -> Result<Record> {
        let payload = match e.value {
            Value::Inline(v) => v,
            Value::Ptr(p) => {
                let file = match sv.version.vlogs.get(&p.file) {
                    Some(f) => f.clone(),
                    None => self
                        .snapshot()
                        .version
                        .vlogs
                        .get(&p.file)
                        .cloned()
                        .ok_or_else(|| Error::Corrupt {
                            file: super::vlog::vlog_path(&self.dir, p.file),
                            offset: p.offset,
                            reason: "value-log file not in any version".into(),
                        })?,
                };
                file.read(&p, &e.key)?
            }
        };
        Ok(Record {
            topic: e.key.topic,
            log_time: e.key.time,
            publish_time: e.publish,
            sequence: e.key.seq,
            payload,
        })
    }

    fn scan_topics(&self, topics: &[u32]) -> Result<Vec<u32>> {
        let n = self.topic_count() as u32;
        if topics.is_empty() {
            return Ok((0..n).collect());
        }
        if let Some(bad) = topics.iter().find(|t| **t >= n) {
            return Err(Error::UnknownTopic(*bad));
        }
        let mut v = topics.to_vec();
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }

    pub fn scan(&self, req: &ScanRequest) -> Result<ScanPage> {
        let topics = self.scan_topics(&req.topics)?;
        // Hash the request as given, so topics registered between pages do
        // not invalidate an all-topics cursor.
        let mut asked = req.topics.clone();
        asked.sort_unstable();
        asked.dedup();
        let hash = request_hash(&asked, req.start, req.end, req.newest_first);
        let after = req
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, hash))
            .transpose()?;
        let view = self.read_view();
        let mut it = merged(&view, &topics, req.start, req.end, req.newest_first, after);
        let sv = &view.0;
        let max_msgs = if req.max_messages == 0 {
            usize::MAX
        } else {
            req.max_messages
        };
        let max_bytes = if req.max_bytes == 0 {
            u64::MAX
        } else {
            req.max_bytes
        };
        let mut records = Vec::new();
        let mut bytes = 0u64;
        let mut last = None;
        while let Some(e) = it.next_entry()? {
            let size = e.value.payload_len();
            let full = records.len() >= max_msgs
                || (!records.is_empty() && bytes.saturating_add(size) > max_bytes);
            if full {
                return Ok(ScanPage {
                    records,
                    next_cursor: last.map(|k| encode_cursor(hash, &k)),
                });
            }
            bytes += size;
            last = Some(e.key);
            records.push(self.resolve(sv, e)?);
        }
        Ok(ScanPage {
            records,
            next_cursor: None,
        })
    }

    pub fn latest(&self, topic: u32, at: Nanos) -> Result<Option<Record>> {
        self.scan_topics(&[topic])?;
        let view = self.read_view();
        let end = at.saturating_add(1);
        let end = if at == u64::MAX { u64::MAX } else { end };
        let mut it = merged(&view, &[topic], 0, end, true, None);
        match it.next_entry()? {
            Some(e) => Ok(Some(self.resolve(&view.0, e)?)),
            None => Ok(None),
        }
    }
}

struct StreamIter {
    inner: Arc<Inner>,
    sv: Arc<SuperVersion>,
    it: MergeIter,
    failed: bool,
}

impl Iterator for StreamIter {
    type Item = Result<Record>;
    fn next(&mut self) -> Option<Result<Record>> {
        if self.failed {
            return None;
        }
        let r = match self.it.next_entry() {
            Ok(Some(e)) => self.inner.resolve(&self.sv, e),
            Ok(None) => return None,
            Err(e) => Err(e),
        };
        self.failed = r.is_err();
        Some(r)
    }
}

pub fn iter(
    inner: &Arc<Inner>,
    topics: &[u32],
    start: u64,
    end: u64,
    newest_first: bool,
) -> Result<Box<dyn Iterator<Item = Result<Record>> + Send>> {
    let topics = inner.scan_topics(topics)?;
    let view = inner.read_view();
    let it = merged(&view, &topics, start, end, newest_first, None);
    Ok(Box::new(StreamIter {
        inner: inner.clone(),
        sv: view.0,
        it,
        failed: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_rejects_other_queries() {
        let h = request_hash(&[1, 2], 0, 100, false);
        let k = Key::new(2, 55, 7);
        let c = encode_cursor(h, &k);
        assert_eq!(decode_cursor(&c, h).unwrap(), k);
        let other = request_hash(&[1, 2], 0, 100, true);
        assert!(matches!(
            decode_cursor(&c, other),
            Err(Error::InvalidCursor(_))
        ));
        assert!(matches!(
            decode_cursor("garbage", h),
            Err(Error::InvalidCursor(_))
        ));
        assert!(decode_cursor(&c[..c.len() - 2], h).is_err());
    }

    #[test]
    fn bounds_resume_strictly_after_cursor_in_time_order() {
        let c = Some(Key::new(2, 50, 7));
        assert_eq!(topic_bounds(1, 0, 100, false, c).0, Key::new(1, 51, 0));
        assert_eq!(topic_bounds(2, 0, 100, false, c).0, Key::new(2, 50, 8));
        assert_eq!(topic_bounds(3, 0, 100, false, c).0, Key::new(3, 50, 0));
        assert_eq!(topic_bounds(1, 0, 100, true, c).1, Key::new(1, 51, 0));
        assert_eq!(topic_bounds(2, 0, 100, true, c).1, Key::new(2, 50, 7));
        assert_eq!(topic_bounds(3, 0, 100, true, c).1, Key::new(3, 50, 0));
    }
}
