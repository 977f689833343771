//! SSTables: sorted, immutable files of entries in (topic, time, seq) order.
//! Layout in docs/format.md: data blocks (each one topic, compressed, CRC),
//! index, bloom filter over topic ids, per-topic meta, fixed footer.

pub mod bloom;
mod writer;

pub use writer::TableWriter;

use super::codec::{corrupt, io_err, Dec};
use super::error::{Error, Result};
use super::fs::{FileSystem, RandomAccessFile};
use super::types::{decode_entry, Codec, Entry, Key, ValueRef};
use bloom::Bloom;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const MAGIC: u64 = 0x3130_5453_4554_4f4d; // "MOTESST01" truncated, LE
pub const VERSION: u32 = 1;
pub const FOOTER_LEN: usize = 72;
const BLOCK_TRAILER: usize = 9;
/// Smallest encoded entry (docs/format.md, Entry): key 20, publish_time 8,
/// kind 1, inline length 4. Bounds how many entries a block can hold.
const MIN_ENTRY_LEN: usize = 33;
/// Encoded index entry: first_key 20, last_key 20, offset 8, len 4, count 4.
const INDEX_ENTRY_LEN: usize = 56;
const CODEC_NONE: u8 = Codec::Raw as u8;
const CODEC_LZ4: u8 = Codec::Lz4 as u8;
const CODEC_ZSTD: u8 = Codec::Zstd as u8;

/// Per-topic statistics of one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TopicRange {
    pub min_time: u64,
    pub max_time: u64,
    pub count: u64,
    /// Payload bytes as written by the publisher.
    pub bytes: u64,
    /// The same payloads as stored (value-log payloads after compression).
    pub stored: u64,
    /// Value-log payloads stored lz4 and zstd encoded.
    pub lz4: u64,
    pub zstd: u64,
}

impl TopicRange {
    pub fn add(&mut self, time: u64, value: ValueRef<'_>) {
        let (bytes, stored) = match value {
            ValueRef::Inline(b) => (b.len() as u64, b.len() as u64),
            ValueRef::Ptr(p) => (u64::from(p.raw_len), u64::from(p.len)),
        };
        if self.count == 0 {
            self.min_time = time;
            self.max_time = time;
        }
        self.min_time = self.min_time.min(time);
        self.max_time = self.max_time.max(time);
        self.count = self.count.saturating_add(1);
        self.bytes = self.bytes.saturating_add(bytes);
        self.stored = self.stored.saturating_add(stored);
        if let ValueRef::Ptr(p) = value {
            match p.codec {
                Codec::Raw => {}
                Codec::Lz4 => self.lz4 = self.lz4.saturating_add(1),
                Codec::Zstd => self.zstd = self.zstd.saturating_add(1),
            }
        }
    }

    pub fn merge(&mut self, o: &TopicRange) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *o;
            return;
        }
        self.min_time = self.min_time.min(o.min_time);
        self.max_time = self.max_time.max(o.max_time);
        // Counts come from files: saturate rather than overflow.
        self.count = self.count.saturating_add(o.count);
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.stored = self.stored.saturating_add(o.stored);
        self.lz4 = self.lz4.saturating_add(o.lz4);
        self.zstd = self.zstd.saturating_add(o.zstd);
    }

    /// True when some payload was stored encoded (the table meta then
    /// carries the stored sizes).
    pub fn encoded(&self) -> bool {
        self.stored != self.bytes || self.lz4 > 0 || self.zstd > 0
    }

    pub fn overlaps(&self, o: &TopicRange) -> bool {
        self.min_time <= o.max_time && o.min_time <= self.max_time
    }
}

/// What the engine knows about a table without reading its blocks.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TableMeta {
    pub num: u64,
    pub size: u64,
    pub entries: u64,
    pub topics: BTreeMap<u32, TopicRange>,
    /// Value-log files this table points into.
    pub vlogs: BTreeSet<u64>,
}

impl TableMeta {
    pub fn min_time(&self) -> u64 {
        self.topics.values().map(|r| r.min_time).min().unwrap_or(0)
    }
    pub fn max_time(&self) -> u64 {
        self.topics.values().map(|r| r.max_time).max().unwrap_or(0)
    }
    pub fn payload_bytes(&self) -> u64 {
        self.topics
            .values()
            .fold(0u64, |acc, r| acc.saturating_add(r.bytes))
    }
    /// True when some topic's time range intersects in both tables.
    pub fn overlaps(&self, o: &TableMeta) -> bool {
        self.topics
            .iter()
            .any(|(t, r)| o.topics.get(t).is_some_and(|x| x.overlaps(r)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IndexEntry {
    first: Key,
    last: Key,
    offset: u64,
    len: u32,
    count: u32,
}

pub fn table_path(dir: &Path, num: u64) -> PathBuf {
    dir.join(format!("{num:06}.sst"))
}

/// Decompresses a block whose trailer claims `raw_len` plain bytes. The
/// claim is untrusted (`compress::decode`).
fn decompress(codec: u8, data: &[u8], raw_len: usize) -> Option<Vec<u8>> {
    crate::engine::compress::decode(Codec::from_u8(codec)?, data, raw_len)
}

fn get_key(d: &mut Dec<'_>) -> Option<Key> {
    crate::engine::types::take_key(d)
}

fn decode_index(data: &[u8]) -> Option<Vec<IndexEntry>> {
    let mut d = Dec::new(data);
    let n = d.u32()?;
    // The count is untrusted: reserve no more than the section can hold.
    let mut out = Vec::with_capacity(data.len() / INDEX_ENTRY_LEN);
    for _ in 0..n {
        out.push(IndexEntry {
            first: get_key(&mut d)?,
            last: get_key(&mut d)?,
            offset: d.u64()?,
            len: d.u32()?,
            count: d.u32()?,
        });
    }
    Some(out)
}

fn decode_meta(data: &[u8], num: u64, size: u64, entries: u64) -> Option<TableMeta> {
    let mut d = Dec::new(data);
    let mut m = TableMeta {
        num,
        size,
        entries,
        ..TableMeta::default()
    };
    for _ in 0..d.u32()? {
        let t = d.u32()?;
        let r = TopicRange {
            min_time: d.u64()?,
            max_time: d.u64()?,
            count: d.u64()?,
            bytes: d.u64()?,
            ..TopicRange::default()
        };
        m.topics.insert(
            t,
            TopicRange {
                stored: r.bytes,
                ..r
            },
        );
    }
    for _ in 0..d.u32()? {
        m.vlogs.insert(d.u64()?);
    }
    // Optional: stored sizes of the topics whose payloads were compressed
    // (tables written before compression end here).
    if !d.is_empty() {
        for _ in 0..d.u32()? {
            let r = m.topics.get_mut(&d.u32()?)?;
            (r.stored, r.lz4, r.zstd) = (d.u64()?, d.u64()?, d.u64()?);
        }
    }
    d.is_empty().then_some(m)
}

/// A live table: index, bloom filter and meta in memory; the file itself is
/// opened by each iterator that reads blocks (no descriptor per table, so
/// a long recording with thousands of tables cannot run out of them).
/// Deletes its file on drop once marked obsolete, so a file lives exactly as
/// long as some version, iterator or compaction holds this handle.
pub struct Table {
    pub meta: TableMeta,
    /// Wall-clock ns when its newest record was written (retention by
    /// age); set by whoever opens it, from the manifest or the clock.
    pub written_at: u64,
    path: PathBuf,
    fs: Option<Arc<dyn FileSystem>>,
    /// Kept open for the table's life (read-only stores: another process
    /// may delete the file; an open descriptor keeps it readable).
    pinned: Option<Arc<dyn RandomAccessFile>>,
    index: Vec<IndexEntry>,
    bloom: Option<Bloom>,
    obsolete: AtomicBool,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("meta", &self.meta).finish()
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            if let Some(fs) = &self.fs {
                // A leftover file is harmless: open removes unreferenced files.
                let _ignored = fs.remove(&self.path);
            }
        }
    }
}

struct Footer {
    sections: [(u64, u32, u32); 3],
    entries: u64,
}

fn read_exact(file: &dyn RandomAccessFile, path: &Path, off: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_at(&mut buf, off).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            corrupt(path, off, format!("truncated: wanted {len} bytes"))
        } else {
            io_err(path)(e)
        }
    })?;
    Ok(buf)
}

fn parse_footer(buf: &[u8], path: &Path, off: u64) -> Result<Footer> {
    let mut d = Dec::new(buf);
    let bad = || corrupt(path, off, "bad footer");
    let mut sections = [(0u64, 0u32, 0u32); 3];
    for s in sections.iter_mut() {
        *s = (
            d.u64().ok_or_else(bad)?,
            d.u32().ok_or_else(bad)?,
            d.u32().ok_or_else(bad)?,
        );
    }
    let entries = d.u64().ok_or_else(bad)?;
    let version = d.u32().ok_or_else(bad)?;
    let crc_pos = d.pos();
    let crc = d.u32().ok_or_else(bad)?;
    let magic = d.u64().ok_or_else(bad)?;
    if magic != MAGIC {
        return Err(corrupt(path, off, "bad magic"));
    }
    let got = crc32fast::hash(buf.get(..crc_pos).ok_or_else(bad)?);
    if got != crc {
        return Err(Error::ChecksumMismatch {
            file: path.to_path_buf(),
            offset: off,
            expected: crc,
            got,
        });
    }
    if version != VERSION {
        return Err(corrupt(path, off, format!("unknown version {version}")));
    }
    Ok(Footer { sections, entries })
}

/// Refuses a section or block `[off, off + len)` that does not end by
/// `limit` (where the next part of the file begins): its length would
/// otherwise size a read buffer.
fn check_extent(path: &Path, off: u64, len: u32, limit: u64) -> Result<()> {
    match off.checked_add(u64::from(len)) {
        Some(end) if end <= limit => Ok(()),
        _ => Err(corrupt(
            path,
            off,
            format!("extent of {len} bytes runs past offset {limit}"),
        )),
    }
}

/// The footer's entry count must equal both the index's block counts and
/// the meta's topic counts (the writer counts each entry once in each), so
/// no count read from the file claims more entries than the table holds.
fn check_counts(index: &[IndexEntry], meta: &TableMeta) -> std::result::Result<(), String> {
    let blocks = index
        .iter()
        .try_fold(0u64, |acc, ix| acc.checked_add(u64::from(ix.count)));
    let topics = meta
        .topics
        .values()
        .try_fold(0u64, |acc, r| acc.checked_add(r.count));
    if blocks != Some(meta.entries) || topics != Some(meta.entries) {
        return Err(format!(
            "entry counts disagree: footer {}, blocks {blocks:?}, topics {topics:?}",
            meta.entries
        ));
    }
    Ok(())
}

impl Table {
    /// Opens a table and loads its index, bloom filter and meta; `pin`
    /// keeps the file descriptor open for the table's life.
    pub fn open(fs: Arc<dyn FileSystem>, dir: &Path, num: u64, pin: bool) -> Result<Table> {
        let path = table_path(dir, num);
        let file = fs.open_read(&path).map_err(io_err(&path))?;
        let size = file.size().map_err(io_err(&path))?;
        if size < FOOTER_LEN as u64 {
            return Err(corrupt(&path, 0, "shorter than a footer"));
        }
        let foff = size - FOOTER_LEN as u64;
        let footer = parse_footer(&read_exact(&*file, &path, foff, FOOTER_LEN)?, &path, foff)?;
        let mut parts = Vec::with_capacity(3);
        for (off, len, crc) in footer.sections {
            check_extent(&path, off, len, foff)?;
            let bytes = read_exact(&*file, &path, off, len as usize)?;
            let got = crc32fast::hash(&bytes);
            if got != crc {
                return Err(Error::ChecksumMismatch {
                    file: path.clone(),
                    offset: off,
                    expected: crc,
                    got,
                });
            }
            parts.push((off, bytes));
        }
        let [(ioff, index), (boff, bloom), (moff, meta)]: [(u64, Vec<u8>); 3] = parts
            .try_into()
            .map_err(|_| corrupt(&path, foff, "sections"))?;
        let index = decode_index(&index).ok_or_else(|| corrupt(&path, ioff, "bad index"))?;
        for ix in &index {
            check_extent(&path, ix.offset, ix.len, ioff)?;
        }
        let bloom = Bloom::decode(&bloom).ok_or_else(|| corrupt(&path, boff, "bad bloom"))?;
        let meta = decode_meta(&meta, num, size, footer.entries)
            .ok_or_else(|| corrupt(&path, moff, "bad meta"))?;
        check_counts(&index, &meta).map_err(|reason| corrupt(&path, moff, reason))?;
        Ok(Table {
            meta,
            written_at: 0,
            path,
            fs: Some(fs),
            pinned: pin.then_some(file),
            index,
            bloom: Some(bloom),
            obsolete: AtomicBool::new(false),
        })
    }

    /// A table with metadata only (picker tests); reads fail.
    pub fn synthetic(meta: TableMeta) -> Table {
        Table {
            path: PathBuf::from(format!("synthetic-{}", meta.num)),
            meta,
            written_at: 0,
            fs: None,
            pinned: None,
            index: Vec::new(),
            bloom: None,
            obsolete: AtomicBool::new(false),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file is deleted when the last holder drops this table.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }

    pub fn may_contain(&self, topic: u32) -> bool {
        self.bloom.as_ref().is_none_or(|b| b.may_contain(topic))
            && self.meta.topics.contains_key(&topic)
    }

    pub fn block_count(&self) -> usize {
        self.index.len()
    }

    /// Reads and decodes block `i` (CRC, codec, entry count); returns its
    /// entries. Used by `Store::verify`.
    pub fn check_block(&self, file: &dyn RandomAccessFile, i: usize) -> Result<Vec<Entry>> {
        self.read_block(file, i)
    }

    /// The file, opened for a verification pass.
    pub fn open_for_check(&self) -> Result<Arc<dyn RandomAccessFile>> {
        self.open_file()
    }

    /// Indices of blocks that may hold keys in `[lo, hi)`, ascending.
    fn blocks_in(&self, lo: &Key, hi: &Key) -> std::ops::Range<usize> {
        let start = self.index.partition_point(|b| b.last < *lo);
        let end = self.index.partition_point(|b| b.first < *hi);
        start..end.max(start)
    }

    /// Opens the file for reading. Safe without an existence check: the
    /// file is deleted only after the last holder of this handle is gone.
    fn open_file(&self) -> Result<Arc<dyn RandomAccessFile>> {
        if let Some(f) = &self.pinned {
            return Ok(f.clone());
        }
        let fs = self
            .fs
            .as_ref()
            .ok_or_else(|| corrupt(&self.path, 0, "synthetic table has no file"))?;
        fs.open_read(&self.path).map_err(io_err(&self.path))
    }

    /// Smallest key (in key order) this table can hold within `[lo, hi)`
    /// when the range lies inside one topic; None otherwise.
    fn lower_bound(&self, lo: &Key, hi: &Key) -> Option<Key> {
        let r = self.meta.topics.get(&lo.topic)?;
        (lo.topic == hi.topic || *hi == Key::new(lo.topic, u64::MAX, u64::MAX))
            .then(|| (*lo).max(Key::new(lo.topic, r.min_time, 0)))
    }

    /// Largest key this table can hold within `[lo, hi)` (one topic).
    fn upper_bound(&self, lo: &Key, hi: &Key) -> Option<Key> {
        let r = self.meta.topics.get(&lo.topic)?;
        (lo.topic == hi.topic || *hi == Key::new(lo.topic, u64::MAX, u64::MAX))
            .then(|| (*hi).min(Key::new(lo.topic, r.max_time, u64::MAX)))
    }

    fn read_block(&self, file: &dyn RandomAccessFile, i: usize) -> Result<Vec<Entry>> {
        let Some(ix) = self.index.get(i) else {
            return Err(corrupt(&self.path, 0, "no such block"));
        };
        let raw = read_exact(file, &self.path, ix.offset, ix.len as usize)?;
        let body_len = raw.len().saturating_sub(4);
        let (body, crc_bytes) = raw.split_at(body_len);
        let mut d = Dec::new(crc_bytes);
        let expected = d
            .u32()
            .ok_or_else(|| corrupt(&self.path, ix.offset, "short block"))?;
        let got = crc32fast::hash(body);
        if got != expected {
            return Err(Error::ChecksumMismatch {
                file: self.path.clone(),
                offset: ix.offset,
                expected,
                got,
            });
        }
        let data_len = raw.len().saturating_sub(BLOCK_TRAILER);
        let mut t = Dec::new(raw.get(data_len..).unwrap_or_default());
        let bad = || corrupt(&self.path, ix.offset, "bad block");
        let codec = t.u8().ok_or_else(bad)?;
        let raw_len = t.u32().ok_or_else(bad)? as usize;
        let data = raw.get(..data_len).ok_or_else(bad)?;
        let plain = decompress(codec, data, raw_len).ok_or_else(bad)?;
        let mut d = Dec::new(&plain);
        let want = usize::try_from(ix.count).map_err(|_| bad())?;
        let mut out = Vec::with_capacity(want.min(plain.len() / MIN_ENTRY_LEN));
        while !d.is_empty() {
            out.push(decode_entry(&mut d).ok_or_else(bad)?);
        }
        if out.len() != want {
            return Err(bad());
        }
        Ok(out)
    }
}

/// Iterates the entries of one table within `[lo, hi)`, either direction.
pub struct TableIter {
    table: Arc<Table>,
    /// Opened at the first block read, closed when the blocks run out.
    file: Option<Arc<dyn RandomAccessFile>>,
    blocks: std::ops::Range<usize>,
    reverse: bool,
    lo: Key,
    hi: Key,
    buf: std::vec::IntoIter<Entry>,
}

impl TableIter {
    pub fn new(table: Arc<Table>, lo: Key, hi: Key, reverse: bool) -> TableIter {
        let blocks = table.blocks_in(&lo, &hi);
        TableIter {
            table,
            file: None,
            blocks,
            reverse,
            lo,
            hi,
            buf: Vec::new().into_iter(),
        }
    }

    fn load_next_block(&mut self) -> Result<bool> {
        let next = if self.reverse {
            self.blocks.next_back()
        } else {
            self.blocks.next()
        };
        let Some(i) = next else {
            self.file = None;
            return Ok(false);
        };
        let file = match &self.file {
            Some(f) => f.clone(),
            None => {
                let f = self.table.open_file()?;
                self.file = Some(f.clone());
                f
            }
        };
        let (lo, hi) = (self.lo, self.hi);
        let mut entries = self.table.read_block(&*file, i)?;
        entries.retain(|e| e.key >= lo && e.key < hi);
        if self.reverse {
            entries.reverse();
        }
        self.buf = entries.into_iter();
        Ok(true)
    }

    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        loop {
            if let Some(e) = self.buf.next() {
                return Ok(Some(e));
            }
            if !self.load_next_block()? {
                return Ok(None);
            }
        }
    }

    /// A key no entry of this iterator precedes in its direction (lower
    /// bound forward, upper bound reverse), known without reading; lets
    /// the merge open the file only when its turn comes.
    pub fn bound(&self) -> Option<Key> {
        if self.reverse {
            self.table.upper_bound(&self.lo, &self.hi)
        } else {
            self.table.lower_bound(&self.lo, &self.hi)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fs::FaultFs;
    use crate::engine::types::{VPtr, Value};
    use crate::engine::Compression;

    fn entry(topic: u32, time: u64, n: usize) -> Entry {
        Entry {
            key: Key::new(topic, time, time),
            publish: time + 1,
            value: Value::Inline(vec![(time % 251) as u8; n]),
        }
    }

    fn build(fs: &Arc<dyn FileSystem>, c: Compression, entries: &[Entry]) -> Table {
        let dir = Path::new("/db");
        let mut w = TableWriter::new(fs.clone(), dir, 7, c, 4096).unwrap();
        for e in entries {
            w.add(e).unwrap();
        }
        w.finish().unwrap();
        Table::open(fs.clone(), dir, 7, false).unwrap()
    }

    fn all(t: Arc<Table>, reverse: bool) -> Vec<Entry> {
        let mut it = TableIter::new(t, Key::MIN, Key::MAX, reverse);
        let mut out = Vec::new();
        while let Some(e) = it.next_entry().unwrap() {
            out.push(e);
        }
        out
    }

    #[test]
    fn block_round_trip_every_codec_both_directions() {
        let mut entries: Vec<Entry> = (0..3u32)
            .flat_map(|t| (0..500u64).map(move |i| entry(t, i * 10, 100)))
            .collect();
        entries.push(Entry {
            key: Key::new(5, 1, 0),
            publish: 0,
            value: Value::Ptr(VPtr {
                file: 3,
                offset: 8,
                len: 100_000,
                crc: 9,
                codec: Codec::Zstd,
                raw_len: 400_000,
            }),
        });
        for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let fs: Arc<dyn FileSystem> = Arc::new(FaultFs::new());
            let t = Arc::new(build(&fs, c, &entries));
            assert!(t.block_count() > 3);
            assert_eq!(
                TableIter::new(t.clone(), Key::MIN, Key::MAX, false)
                    .blocks
                    .len(),
                t.block_count()
            );
            assert_eq!(all(t.clone(), false), entries);
            let mut rev = entries.clone();
            rev.reverse();
            assert_eq!(all(t.clone(), true), rev);
            assert_eq!(t.meta.topics.len(), 4);
            assert_eq!(t.meta.topics[&1].count, 500);
            // Logical and stored bytes of the compressed payload survive
            // the meta section; inline payloads count the same in both.
            let t5 = t.meta.topics[&5];
            assert_eq!(
                (t5.bytes, t5.stored, t5.zstd, t5.lz4),
                (400_000, 100_000, 1, 0)
            );
            assert_eq!(t.meta.topics[&1].stored, t.meta.topics[&1].bytes);
            assert_eq!(t.meta.vlogs.iter().copied().collect::<Vec<_>>(), vec![3]);
            assert!(t.may_contain(2) && !t.may_contain(4));
        }
    }

    #[test]
    fn range_scan_within_one_topic() {
        let entries: Vec<Entry> = (0..3u32)
            .flat_map(|t| (0..500u64).map(move |i| entry(t, i, 50)))
            .collect();
        let fs: Arc<dyn FileSystem> = Arc::new(FaultFs::new());
        let t = Arc::new(build(&fs, Compression::Lz4, &entries));
        let mut it = TableIter::new(t, Key::new(1, 100, 0), Key::new(1, 200, 0), false);
        let mut n = 0;
        while let Some(e) = it.next_entry().unwrap() {
            assert_eq!(e.key.topic, 1);
            assert!((100..200).contains(&e.key.time));
            n += 1;
        }
        assert_eq!(n, 100);
    }

    #[test]
    fn flipped_block_byte_is_a_checksum_error_naming_the_file() {
        let fault = FaultFs::new();
        let fs: Arc<dyn FileSystem> = Arc::new(fault.clone());
        let entries: Vec<Entry> = (0..100u64).map(|i| entry(1, i, 100)).collect();
        drop(build(&fs, Compression::Lz4, &entries));
        let path = table_path(Path::new("/db"), 7);
        assert!(fault.flip_byte(&path, 20));
        let t = Arc::new(Table::open(fs, Path::new("/db"), 7, false).unwrap());
        let mut it = TableIter::new(t, Key::MIN, Key::MAX, false);
        match it.next_entry() {
            Err(Error::ChecksumMismatch { file, .. }) => assert_eq!(file, path),
            other => panic!("expected checksum error, got {other:?}"),
        }
    }

    #[test]
    fn decompress_refuses_a_claimed_length_the_data_cannot_produce() {
        let plain = vec![7u8; 4096];
        let lz4 = lz4_flex::block::compress(&plain);
        assert_eq!(decompress(CODEC_LZ4, &lz4, 4096), Some(plain.clone()));
        assert_eq!(decompress(CODEC_LZ4, &lz4, u32::MAX as usize), None);
        let zstd = zstd::bulk::compress(&plain, 3).unwrap();
        assert_eq!(decompress(CODEC_ZSTD, &zstd, 4096), Some(plain));
        assert_eq!(decompress(CODEC_ZSTD, &zstd, u32::MAX as usize), None);
        assert_eq!(decompress(CODEC_ZSTD, &zstd, 100), None);
    }
}
