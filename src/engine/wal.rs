//! Write-ahead log in segments `wal-NNNNNN.log`. Each record is a frame
//! (`len u32 | !len u32 | crc32 u32 | payload`, codec.rs) whose payload is
//! `kind u8 | body`: kind 1 is a put (`entry`, types.rs), kind 2 a sync
//! mark (`synced u64`: this segment was fsynced up to that offset).
//! Appends go to an in-memory buffer; `write_out` moves buffered bytes to
//! the file (one append per segment run) and optionally fsyncs:
//! concurrent syncers share one fsync (group commit).
//!
//! Recovery rules (docs/format.md, "WAL recovery"): a segment followed by
//! a newer one was fsynced whole, so any damage in it is corruption. In the
//! last segment, damage at offset d is corruption when a valid sync mark
//! anywhere after d says the segment was fsynced past d; otherwise it is a
//! torn tail (what a power cut leaves of unsynced pages) and is cut.

use super::codec::{frames_after, io_err, put_u64, read_frames, seal_frame, FRAME_HEADER};
use super::error::{Error, Result};
use super::fs::{FileSystem, WritableFile};
use super::types::{decode_entry, encode_entry, Entry, Key, ValueRef};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const KIND_PUT: u8 = 1;
const KIND_SYNCED: u8 = 2;
/// A written-out buffer larger than this is freed, not kept for reuse.
const SPARE_MAX: usize = 4 << 20;

pub fn segment_path(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("wal-{seg:06}.log"))
}

/// Segment number of a WAL file name, if it is one.
pub fn parse_segment(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// Runs before every WAL fsync, after the records to sync were taken from
/// the buffer: makes their value-log payloads durable first.
pub type Barrier = Box<dyn Fn() -> Result<()> + Send + Sync>;

struct Buffer {
    chunks: Vec<(u64, Vec<u8>)>,
    /// A written-out chunk kept for reuse (no realloc on the hot path).
    spare: Option<Vec<u8>>,
    seg: u64,
    lsn: u64,
    pending: usize,
}

struct Output {
    seg: u64,
    file: Option<Box<dyn WritableFile>>,
    /// Bytes in the open segment file.
    len: u64,
    /// The open segment is fsynced up to here.
    synced: u64,
    /// The last sync mark written to the open segment.
    marked: u64,
    /// Set by the first failed write or fsync: after it, what the file
    /// holds past `synced` is unknown, so nothing more is written to it
    /// until `reset` starts a new segment.
    broken: Option<Failure>,
}

/// Why the WAL stopped.
#[derive(Clone, Debug)]
pub struct Failure {
    /// An fsync (of the WAL, or of the value log before it) failed: the
    /// kernel may have dropped dirty pages for good. Otherwise a write
    /// failed (e.g. ENOSPC) and what was synced is intact.
    pub fsync: bool,
    pub message: String,
}

pub struct Wal {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    barrier: Barrier,
    buf: Mutex<Buffer>,
    out: Mutex<Output>,
    synced_lsn: AtomicU64,
    written_lsn: AtomicU64,
    bytes_written: AtomicU64,
    /// Segments below this are flushed to tables: their buffered bytes are
    /// dropped instead of recreating a deleted file.
    floor: AtomicU64,
}

impl Wal {
    /// A WAL that starts writing at segment `seg` (created on first write).
    pub fn new(fs: Arc<dyn FileSystem>, dir: &Path, seg: u64, barrier: Barrier) -> Wal {
        Wal {
            fs,
            dir: dir.to_path_buf(),
            barrier,
            buf: Mutex::new(Buffer {
                chunks: Vec::new(),
                spare: None,
                seg,
                lsn: 0,
                pending: 0,
            }),
            out: Mutex::new(Output {
                seg,
                file: None,
                len: 0,
                synced: 0,
                marked: 0,
                broken: None,
            }),
            synced_lsn: AtomicU64::new(0),
            written_lsn: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            floor: AtomicU64::new(0),
        }
    }

    /// Buffers one record, encoded in place; returns (its lsn, bytes now
    /// pending).
    pub fn add(&self, key: &Key, publish: u64, value: ValueRef<'_>) -> (u64, usize) {
        let mut b = self.buf.lock();
        let seg = b.seg;
        if b.chunks.last().is_none_or(|c| c.0 != seg) {
            let fresh = b
                .spare
                .take()
                .unwrap_or_else(|| Vec::with_capacity(1 << 20));
            b.chunks.push((seg, fresh));
        }
        let Some((_, c)) = b.chunks.last_mut() else {
            return (b.lsn, b.pending);
        };
        let start = c.len();
        c.extend_from_slice(&[0u8; FRAME_HEADER]);
        c.push(KIND_PUT);
        encode_entry(c, key, publish, value);
        seal_frame(c, start);
        let added = c.len() - start;
        b.lsn += added as u64;
        b.pending += added;
        (b.lsn, b.pending)
    }

    /// Starts a new segment for later records; returns the last segment
    /// of records added so far.
    pub fn rotate(&self) -> u64 {
        let mut b = self.buf.lock();
        b.seg += 1;
        b.seg - 1
    }

    /// Records that segments below `floor` are no longer needed.
    pub fn set_floor(&self, floor: u64) {
        self.floor.fetch_max(floor, Ordering::AcqRel);
    }

    pub fn synced_lsn(&self) -> u64 {
        self.synced_lsn.load(Ordering::Acquire)
    }

    /// The lsn of the last record added.
    pub fn added_lsn(&self) -> u64 {
        self.buf.lock().lsn
    }

    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    /// Writes buffered records to their segment files; fsyncs when `sync`.
    /// Returns the lsn now written (and synced, if requested).
    pub fn write_out(&self, sync: bool) -> Result<u64> {
        let mut out = self.out.lock();
        self.write_locked(&mut out, sync)
    }

    /// Like `write_out(false)` but returns at once when another thread is
    /// writing or fsyncing: a writer never waits behind a periodic fsync,
    /// it keeps buffering instead.
    pub fn try_write_out(&self) -> Result<()> {
        match self.out.try_lock() {
            Some(mut out) => self.write_locked(&mut out, false).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Takes the buffered records first, then runs the barrier (so it
    /// covers every value-log payload they point at, and none appended
    /// later is claimed as synced), then writes and fsyncs.
    fn write_locked(&self, out: &mut Output, sync: bool) -> Result<u64> {
        if let Some(f) = &out.broken {
            return Err(Error::WriteStopped(format!(
                "WAL segment {} failed earlier: {}",
                out.seg, f.message
            )));
        }
        let (chunks, lsn) = {
            let mut b = self.buf.lock();
            b.pending = 0;
            (std::mem::take(&mut b.chunks), b.lsn)
        };
        self.write_chunks(out, chunks, lsn, sync)
            .map_err(|(fsync, e)| {
                out.broken = Some(Failure {
                    fsync,
                    message: e.to_string(),
                });
                e
            })
    }

    /// Errors carry whether an fsync failed.
    fn write_chunks(
        &self,
        out: &mut Output,
        chunks: Vec<(u64, Vec<u8>)>,
        lsn: u64,
        sync: bool,
    ) -> std::result::Result<u64, (bool, Error)> {
        let fsync_err = |e| (true, e);
        let mut barrier_done = false;
        if sync && self.synced_lsn() < lsn {
            (self.barrier)().map_err(fsync_err)?;
            barrier_done = true;
        }
        let floor = self.floor.load(Ordering::Acquire);
        for (seg, mut bytes) in chunks {
            if seg >= floor {
                if out.file.is_some() && out.seg != seg && !barrier_done {
                    (self.barrier)().map_err(fsync_err)?;
                    barrier_done = true;
                }
                self.switch_segment(out, seg)?;
                self.append(out, &bytes).map_err(|e| (false, e))?;
            }
            if bytes.capacity() <= SPARE_MAX {
                bytes.clear();
                self.buf.lock().spare = Some(bytes);
            }
        }
        self.written_lsn.store(lsn, Ordering::Release);
        if sync && self.synced_lsn() < lsn {
            let path = segment_path(&self.dir, out.seg);
            if let Some(f) = out.file.as_mut() {
                f.sync().map_err(io_err(&path)).map_err(fsync_err)?;
            }
            out.synced = out.len;
            self.synced_lsn.store(lsn, Ordering::Release);
        }
        Ok(lsn)
    }

    /// Appends to the open segment, first a sync mark when the segment was
    /// fsynced past the last mark.
    fn append(&self, out: &mut Output, bytes: &[u8]) -> Result<()> {
        let path = segment_path(&self.dir, out.seg);
        let Some(f) = out.file.as_mut() else {
            return Ok(());
        };
        if out.synced > out.marked {
            let mut m = Vec::with_capacity(FRAME_HEADER + 9);
            m.extend_from_slice(&[0u8; FRAME_HEADER]);
            m.push(KIND_SYNCED);
            put_u64(&mut m, out.synced);
            seal_frame(&mut m, 0);
            f.append(&m).map_err(io_err(&path))?;
            out.len += m.len() as u64;
            out.marked = out.synced;
        }
        f.append(bytes).map_err(io_err(&path))?;
        out.len += bytes.len() as u64;
        self.bytes_written
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Opens segment `seg` for writing, fsyncing the previous one first so
    /// a segment followed by a newer one is always durable whole (the
    /// caller ran the barrier).
    fn switch_segment(&self, out: &mut Output, seg: u64) -> std::result::Result<(), (bool, Error)> {
        if out.file.is_some() && out.seg == seg {
            return Ok(());
        }
        if let Some(f) = out.file.as_mut() {
            let old = segment_path(&self.dir, out.seg);
            f.sync().map_err(|e| (true, io_err(&old)(e)))?;
        }
        out.file = None;
        // Never over an existing file: a segment is only ever started once,
        // and creating would truncate records it holds.
        let path = segment_path(&self.dir, seg);
        if self.fs.exists(&path) {
            let e = std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "WAL segment exists already; refusing to overwrite it",
            );
            return Err((false, io_err(&path)(e)));
        }
        let file = self
            .fs
            .create(&path)
            .map_err(|e| (false, io_err(&path)(e)))?;
        out.seg = seg;
        (out.len, out.synced, out.marked) = (0, 0, 0);
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| (true, io_err(&self.dir)(e)))?;
        out.file = Some(file);
        Ok(())
    }

    /// Why the WAL stopped, if it did.
    pub fn failure(&self) -> Option<Failure> {
        self.out.lock().broken.clone()
    }

    /// The lsn of the last record added.
    pub fn lsn(&self) -> u64 {
        self.buf.lock().lsn
    }

    /// Resumes after a failed write: every record up to `durable_lsn` is
    /// durable elsewhere (flushed to a table) and the failed segment is
    /// below the floor. Later records go to the next segment, which the
    /// caller's freeze started. A healthy WAL keeps its open file (it may
    /// hold records not yet flushed).
    pub fn reset(&self, durable_lsn: u64) {
        let mut out = self.out.lock();
        if out.broken.take().is_some() {
            out.file = None;
        }
        self.synced_lsn.fetch_max(durable_lsn, Ordering::AcqRel);
    }

    /// Group commit: returns once everything up to `lsn` is fsynced.
    pub fn sync_to(&self, lsn: u64) -> Result<()> {
        if self.synced_lsn() >= lsn {
            return Ok(());
        }
        self.write_out(true).map(|_| ())
    }
}

/// Segment numbers `>= floor` present in `dir`, ascending.
pub fn segments(fs: &dyn FileSystem, dir: &Path, floor: u64) -> Result<Vec<u64>> {
    let mut segs: Vec<u64> = fs
        .list(dir)
        .map_err(io_err(dir))?
        .iter()
        .filter_map(|n| parse_segment(n))
        .filter(|s| *s >= floor)
        .collect();
    segs.sort_unstable();
    Ok(segs)
}

/// One WAL record.
pub enum Record {
    Put(Entry),
    /// The segment was fsynced up to this offset before this record was
    /// written.
    Synced(u64),
}

/// Decodes one WAL record payload (`kind u8 | body`).
pub fn decode_record(payload: &[u8], path: &Path, off: u64) -> Result<Record> {
    let (kind, rest) = payload.split_first().unwrap_or((&0, &[]));
    let mut d = super::codec::Dec::new(rest);
    let rec = match *kind {
        KIND_PUT => decode_entry(&mut d).map(Record::Put),
        KIND_SYNCED => d.u64().map(Record::Synced),
        _ => None,
    };
    match rec {
        Some(r) if d.is_empty() => Ok(r),
        _ => Err(Error::Corrupt {
            file: path.to_path_buf(),
            offset: off,
            reason: "bad WAL record".into(),
        }),
    }
}

/// Bytes cut from the end of a WAL segment at recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub path: PathBuf,
    pub offset: u64,
    pub bytes: u64,
    /// What was found at `offset` (damage, or a record whose value-log
    /// payload never became durable).
    pub reason: String,
}

/// One segment read under the recovery rules.
pub struct Segment {
    /// (frame offset, entry) of every put in the valid prefix.
    pub records: Vec<(u64, Entry)>,
    /// Records before this offset were acknowledged as synced: the
    /// largest sync mark, or the whole valid prefix of a segment followed
    /// by a newer one.
    pub synced: u64,
    pub len: u64,
    pub tail: Option<TornTail>,
}

/// Reads one segment; `last` says no newer segment exists. Damage is an
/// error unless it is a torn tail by the rules in the module docs.
pub fn scan_segment(data: &[u8], path: &Path, last: bool) -> Result<Segment> {
    let f = read_frames(data, path);
    let mut records = Vec::new();
    let mut synced = 0;
    for (off, payload) in &f.frames {
        match decode_record(payload, path, *off)? {
            Record::Put(e) => records.push((*off, e)),
            Record::Synced(n) => synced = synced.max(n),
        }
    }
    let mut tail = None;
    if let Some(damage) = f.damage {
        if !last {
            return Err(damage);
        }
        let proof = frames_after(data, f.valid_len)
            .into_iter()
            .find_map(|(off, p)| match decode_record(p, path, off) {
                Ok(Record::Synced(n)) if n > f.valid_len => Some((off, n)),
                _ => None,
            });
        if let Some((mark, n)) = proof {
            return Err(Error::Corrupt {
                file: path.to_path_buf(),
                offset: f.valid_len,
                reason: format!(
                    "{damage}; the sync mark at offset {mark} says the segment was \
                     fsynced up to {n}, so this is not a torn tail"
                ),
            });
        }
        tail = Some(TornTail {
            path: path.to_path_buf(),
            offset: f.valid_len,
            bytes: f.dropped,
            reason: damage.to_string(),
        });
    }
    if !last {
        synced = f.valid_len;
    }
    Ok(Segment {
        records,
        synced,
        len: f.valid_len + f.dropped,
        tail,
    })
}

/// What to do with one replayed put.
pub enum Keep {
    Yes,
    /// Cut the segment here (the record and all after it): its value-log
    /// payload never became durable.
    CutHere(String),
}

/// What replay found.
#[derive(Debug, Default)]
pub struct Replay {
    pub segments: Vec<u64>,
    pub records: u64,
    pub cut: Vec<TornTail>,
    /// Records dropped with a cut tail.
    pub dropped_records: u64,
}

/// Reads segments `>= floor` in order and hands every put to `keep` with
/// whether it lies before the synced point. A torn tail or a record `keep`
/// refuses ends replay; the segment is truncated there when `repair`.
/// A record for a topic id at or beyond `topics` is corruption (the
/// manifest logs a topic before any of its records can reach the WAL).
pub fn replay(
    fs: &dyn FileSystem,
    dir: &Path,
    floor: u64,
    topics: usize,
    repair: bool,
    keep: &mut dyn FnMut(Entry, bool) -> Result<Keep>,
) -> Result<Replay> {
    let segs = segments(fs, dir, floor)?;
    let mut r = Replay::default();
    for (i, seg) in segs.iter().enumerate() {
        let path = segment_path(dir, *seg);
        let data = fs.read_all(&path).map_err(io_err(&path))?;
        let scan = scan_segment(&data, &path, i + 1 == segs.len())?;
        let mut tail = scan.tail;
        let total = scan.records.len() as u64;
        for (n, (off, e)) in scan.records.into_iter().enumerate() {
            if !known_topic(e.key.topic, topics) {
                return Err(Error::Corrupt {
                    file: path.clone(),
                    offset: off,
                    reason: format!("WAL record for unregistered topic id {}", e.key.topic),
                });
            }
            match keep(e, off < scan.synced)? {
                Keep::Yes => r.records += 1,
                Keep::CutHere(reason) => {
                    r.dropped_records += total - n as u64;
                    tail = Some(TornTail {
                        path: path.clone(),
                        offset: off,
                        bytes: scan.len - off,
                        reason,
                    });
                    break;
                }
            }
        }
        if let Some(t) = tail {
            if repair {
                fs.truncate(&path, t.offset).map_err(io_err(&path))?;
            }
            r.cut.push(t);
        }
    }
    r.segments = segs;
    Ok(r)
}

fn known_topic(topic: u32, topics: usize) -> bool {
    usize::try_from(topic).is_ok_and(|t| t < topics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fs::FaultFs;

    const DIR: &str = "/db";

    fn no_barrier() -> Barrier {
        Box::new(|| Ok(()))
    }

    fn wal_on(fault: &FaultFs, seg: u64) -> Wal {
        Wal::new(Arc::new(fault.clone()), Path::new(DIR), seg, no_barrier())
    }

    fn put(wal: &Wal, i: u64, payload: &[u8]) -> u64 {
        wal.add(&Key::new(1, i, i), 0, ValueRef::Inline(payload)).0
    }

    /// Replays with every record kept; returns (times, report).
    fn replay_all(fault: &FaultFs, repair: bool) -> Result<(Vec<u64>, Replay)> {
        let mut times = Vec::new();
        let r = replay(fault, Path::new(DIR), 0, 2, repair, &mut |e, _| {
            times.push(e.key.time);
            Ok(Keep::Yes)
        })?;
        Ok((times, r))
    }

    /// Bytes of a sync mark frame.
    const MARK: usize = FRAME_HEADER + 9;

    /// Ten records synced in two groups (so a sync mark follows the
    /// first), then a sync mark and `late` written but never synced.
    /// Returns the segment and the offset of `late`.
    fn synced_then_unsynced(fault: &FaultFs, late: &[u8]) -> (PathBuf, usize) {
        let wal = wal_on(fault, 3);
        for i in 0..5 {
            put(&wal, i, b"payload");
        }
        wal.write_out(true).unwrap();
        for i in 5..10 {
            put(&wal, i, b"payload");
        }
        wal.write_out(true).unwrap();
        let path = segment_path(Path::new(DIR), 3);
        let synced = fault.contents(&path).unwrap().len();
        put(&wal, 99, late);
        wal.write_out(false).unwrap();
        (path, synced + MARK)
    }

    #[test]
    fn torn_tail_is_cut_reported_and_the_cut_is_durable() {
        let fault = FaultFs::new();
        let (path, synced) = synced_then_unsynced(&fault, b"late");
        let mut data = fault.contents(&path).unwrap();
        data.truncate(data.len() - 3);
        fault.set_contents(&path, data.clone());
        let (times, r) = replay_all(&fault, true).unwrap();
        assert_eq!(times, (0..10).collect::<Vec<_>>());
        assert_eq!(r.cut.len(), 1);
        assert_eq!(r.cut[0].offset, synced as u64);
        assert_eq!(r.cut[0].bytes, (data.len() - synced) as u64);
        let (_, again) = replay_all(&fault, true).unwrap();
        assert!(again.cut.is_empty(), "repair truncated the tail");
    }

    /// What write-back in any order leaves of unsynced pages: a valid
    /// header with a zeroed payload, zeros followed by data, garbage.
    #[test]
    fn every_shape_of_damage_after_the_last_sync_is_a_torn_tail() {
        type Damage = fn(&mut Vec<u8>, usize);
        let shapes: [(&str, Damage); 4] = [
            ("header then zeroed payload", |d, at| {
                d[at + FRAME_HEADER + 4..].fill(0);
            }),
            ("zeros then data", |d, at| {
                d[at..at + 20].fill(0);
            }),
            ("garbage frame", |d, at| {
                for (i, b) in d[at..].iter_mut().enumerate() {
                    *b = (i as u8).wrapping_mul(31).wrapping_add(7);
                }
            }),
            ("zero-filled rest", |d, at| {
                d[at..].fill(0);
            }),
        ];
        for (name, damage) in shapes {
            let fault = FaultFs::new();
            let (path, synced) = synced_then_unsynced(&fault, &[9u8; 300]);
            let mut data = fault.contents(&path).unwrap();
            damage(&mut data, synced);
            fault.set_contents(&path, data);
            let (times, r) =
                replay_all(&fault, true).unwrap_or_else(|e| panic!("{name}: refused: {e}"));
            assert_eq!(times.len(), 10, "{name}");
            assert_eq!(r.cut.len(), 1, "{name}");
            assert_eq!(r.cut[0].offset, synced as u64, "{name}");
        }
    }

    #[test]
    fn damage_before_a_sync_mark_is_corruption_naming_file_and_offset() {
        let fault = FaultFs::new();
        let (path, _) = synced_then_unsynced(&fault, b"late");
        // First record: the mark written after the first sync covers it.
        fault.flip_byte(&path, FRAME_HEADER + 3);
        match replay_all(&fault, true) {
            Err(Error::Corrupt {
                file,
                offset,
                reason,
            }) => {
                assert_eq!(file, path);
                assert_eq!(offset, 0);
                assert!(reason.contains("sync mark"), "{reason}");
            }
            other => panic!("expected corruption, got {:?}", other.map(|r| r.0)),
        }
        assert!(
            fault.contents(&path).unwrap().len() > 100,
            "a refused replay must not cut anything"
        );
    }

    #[test]
    fn damage_in_a_segment_followed_by_a_newer_one_is_corruption() {
        let fault = FaultFs::new();
        let wal = wal_on(&fault, 1);
        for i in 0..3 {
            put(&wal, i, b"abc");
        }
        wal.rotate();
        put(&wal, 3, b"abc");
        wal.write_out(true).unwrap();
        let first = segment_path(Path::new(DIR), 1);
        let mut data = fault.contents(&first).unwrap();
        let end = data.len();
        data[end - 2] ^= 0xff;
        fault.set_contents(&first, data);
        match replay_all(&fault, true) {
            Err(Error::ChecksumMismatch { file, .. }) => assert_eq!(file, first),
            other => panic!("expected checksum error, got {:?}", other.map(|r| r.0)),
        }
    }

    #[test]
    fn a_record_whose_payload_is_missing_ends_replay_there() {
        let fault = FaultFs::new();
        let (path, synced) = synced_then_unsynced(&fault, b"late");
        let mut seen = Vec::new();
        let r = replay(&fault, Path::new(DIR), 0, 2, true, &mut |e, is_synced| {
            seen.push((e.key.time, is_synced));
            Ok(if e.key.time == 99 {
                Keep::CutHere("payload not durable".into())
            } else {
                Keep::Yes
            })
        })
        .unwrap();
        assert_eq!(seen.iter().filter(|s| s.1).count(), 10, "{seen:?}");
        assert_eq!(r.records, 10);
        assert_eq!(r.dropped_records, 1);
        assert_eq!(r.cut[0].offset as usize, synced);
        assert_eq!(fault.contents(&path).unwrap().len(), synced);
    }

    /// A syncer takes its records before the barrier runs: a record added
    /// while the barrier (the value-log fsync) runs is not claimed synced,
    /// since its payload may have been appended after that fsync.
    #[test]
    fn a_record_added_during_the_barrier_is_not_claimed_synced() {
        use std::sync::mpsc;
        let fault = FaultFs::new();
        let (entered_tx, entered_rx) = mpsc::channel::<()>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let go_rx = Mutex::new(go_rx);
        let entered_tx = Mutex::new(entered_tx);
        let barrier: Barrier = Box::new(move || {
            let _ = entered_tx.lock().send(());
            let _ = go_rx.lock().recv();
            Ok(())
        });
        let wal = Arc::new(Wal::new(
            Arc::new(fault.clone()),
            Path::new(DIR),
            1,
            barrier,
        ));
        let first = put(&wal, 1, b"a");
        let syncer = {
            let wal = wal.clone();
            std::thread::spawn(move || wal.sync_to(first))
        };
        entered_rx.recv().unwrap();
        let second = put(&wal, 2, b"b");
        go_tx.send(()).unwrap();
        syncer.join().unwrap().unwrap();
        assert!(wal.synced_lsn() >= first);
        assert!(
            wal.synced_lsn() < second,
            "a record added after the barrier started was claimed synced"
        );
        go_tx.send(()).unwrap();
        wal.sync_to(second).unwrap();
        assert!(wal.synced_lsn() >= second);
    }

    #[test]
    fn after_a_failed_fsync_nothing_more_is_written_to_the_segment() {
        let fault = FaultFs::new();
        let wal = wal_on(&fault, 1);
        put(&wal, 1, b"a");
        wal.write_out(true).unwrap();
        put(&wal, 2, b"b");
        fault.fail_nth_sync(1);
        assert!(wal.write_out(true).is_err());
        let path = segment_path(Path::new(DIR), 1);
        let len = fault.contents(&path).unwrap().len();
        put(&wal, 3, b"c");
        assert!(matches!(wal.write_out(true), Err(Error::WriteStopped(_))));
        assert_eq!(fault.contents(&path).unwrap().len(), len);
    }

    /// Found by the disk-full campaign: a resume after a value-log write
    /// failure reset a healthy WAL, dropping its open segment, and the next
    /// write created that segment again, truncating acknowledged records.
    #[test]
    fn reset_of_a_healthy_wal_keeps_its_segment_and_nothing_is_overwritten() {
        let fault = FaultFs::new();
        let wal = wal_on(&fault, 1);
        let lsn = put(&wal, 1, b"acknowledged");
        wal.write_out(true).unwrap();
        wal.reset(lsn);
        put(&wal, 2, b"later");
        wal.write_out(true).unwrap();
        let (times, _) = replay_all(&fault, false).unwrap();
        assert_eq!(times, vec![1, 2], "the first record was overwritten");
        // A broken WAL that is reset never creates over an existing file.
        let fault = FaultFs::new();
        let wal = wal_on(&fault, 1);
        put(&wal, 1, b"a");
        wal.write_out(true).unwrap();
        fault.fail_nth_write(1);
        put(&wal, 2, b"b");
        assert!(wal.write_out(true).is_err());
        wal.reset(0);
        put(&wal, 3, b"c");
        let e = wal.write_out(true).unwrap_err();
        assert!(e.to_string().contains("exists already"), "{e}");
        let (times, _) = replay_all(&fault, false).unwrap();
        assert_eq!(times.first(), Some(&1), "segment 1 was truncated");
    }
}
