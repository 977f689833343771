//! Write-ahead log in segments `wal-NNNNNN.log`. Each record is a frame
//! (`len u32 | crc32 u32 | payload`, codec.rs) whose payload is
//! `kind u8 (1 = put) | entry` (types.rs). Appends go to an in-memory
//! buffer; `write_out` moves buffered bytes to the file (one append per
//! segment run) and optionally fsyncs: concurrent syncers share one fsync
//! (group commit).

use super::codec::{io_err, read_frames, seal_frame, FRAME_HEADER};
use super::error::{Error, Result};
use super::fs::{FileSystem, WritableFile};
use super::types::{decode_entry, encode_entry, Entry, Key, ValueRef};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const KIND_PUT: u8 = 1;
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
}

pub struct Wal {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
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
    pub fn new(fs: Arc<dyn FileSystem>, dir: &Path, seg: u64) -> Wal {
        Wal {
            fs,
            dir: dir.to_path_buf(),
            buf: Mutex::new(Buffer {
                chunks: Vec::new(),
                spare: None,
                seg,
                lsn: 0,
                pending: 0,
            }),
            out: Mutex::new(Output { seg, file: None }),
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

    fn write_locked(&self, out: &mut Output, sync: bool) -> Result<u64> {
        let (chunks, lsn) = {
            let mut b = self.buf.lock();
            b.pending = 0;
            (std::mem::take(&mut b.chunks), b.lsn)
        };
        let floor = self.floor.load(Ordering::Acquire);
        for (seg, mut bytes) in chunks {
            if seg >= floor {
                self.switch_segment(out, seg)?;
                let path = segment_path(&self.dir, seg);
                if let Some(f) = out.file.as_mut() {
                    f.append(&bytes).map_err(io_err(&path))?;
                }
                self.bytes_written
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
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
                f.sync().map_err(io_err(&path))?;
            }
            self.synced_lsn.store(lsn, Ordering::Release);
        }
        Ok(lsn)
    }

    /// Opens segment `seg` for writing, fsyncing the previous one first so
    /// older segments are never less durable than newer ones.
    fn switch_segment(&self, out: &mut Output, seg: u64) -> Result<()> {
        if out.file.is_some() && out.seg == seg {
            return Ok(());
        }
        if let Some(mut f) = out.file.take() {
            let old = segment_path(&self.dir, out.seg);
            f.sync().map_err(io_err(&old))?;
        }
        let path = segment_path(&self.dir, seg);
        let file = if self.fs.exists(&path) {
            self.fs.open_append(&path)
        } else {
            self.fs.create(&path)
        }
        .map_err(io_err(&path))?;
        self.fs.sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        out.file = Some(file);
        out.seg = seg;
        Ok(())
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

/// Decodes one WAL record payload (`kind u8 | entry`).
pub fn decode_record(payload: &[u8], path: &Path, off: u64) -> Result<Entry> {
    let (kind, rest) = payload.split_first().unwrap_or((&0, &[]));
    let mut d = super::codec::Dec::new(rest);
    match (*kind, decode_entry(&mut d)) {
        (KIND_PUT, Some(e)) if d.is_empty() => Ok(e),
        _ => Err(Error::Corrupt {
            file: path.to_path_buf(),
            offset: off,
            reason: "bad WAL record".into(),
        }),
    }
}

/// What replay found.
#[derive(Debug, Default)]
pub struct Replay {
    pub entries: Vec<Entry>,
    pub segments: Vec<u64>,
    pub dropped_bytes: u64,
    pub truncated: Vec<(PathBuf, u64)>,
}

/// Reads segments `>= floor` in order. A torn tail is cut (and the file
/// truncated when `repair`); a bad CRC before the tail is an error, and so
/// is a record for a topic id at or beyond `topics` (the manifest logs a
/// topic before any of its records can reach the WAL).
pub fn replay(
    fs: &dyn FileSystem,
    dir: &Path,
    floor: u64,
    topics: usize,
    repair: bool,
) -> Result<Replay> {
    let segs = segments(fs, dir, floor)?;
    let mut r = Replay::default();
    for seg in &segs {
        let path = segment_path(dir, *seg);
        let data = fs.read_all(&path).map_err(io_err(&path))?;
        let frames = read_frames(&data, &path)?;
        for (off, payload) in &frames.frames {
            let e = decode_record(payload, &path, *off)?;
            if !known_topic(e.key.topic, topics) {
                return Err(Error::Corrupt {
                    file: path.clone(),
                    offset: *off,
                    reason: format!("WAL record for unregistered topic id {}", e.key.topic),
                });
            }
            r.entries.push(e);
        }
        if frames.dropped > 0 {
            r.dropped_bytes += frames.dropped;
            if repair {
                fs.truncate(&path, frames.valid_len)
                    .map_err(io_err(&path))?;
            }
            r.truncated.push((path, frames.dropped));
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

    #[test]
    fn wal_round_trip_and_torn_tail_truncated() {
        let fault = FaultFs::new();
        let fs: Arc<dyn FileSystem> = Arc::new(fault.clone());
        let dir = Path::new("/db");
        let wal = Wal::new(fs.clone(), dir, 3);
        for i in 0..10u64 {
            wal.add(&Key::new(1, i, i), 0, ValueRef::Inline(b"payload"));
        }
        wal.write_out(true).unwrap();
        wal.add(&Key::new(1, 99, 99), 0, ValueRef::Inline(b"late"));
        wal.write_out(false).unwrap();
        let path = segment_path(dir, 3);
        let mut data = fault.contents(&path).unwrap();
        data.truncate(data.len() - 3);
        fault.set_contents(&path, data);
        let r = replay(&*fs, dir, 0, 2, true).unwrap();
        assert_eq!(r.entries.len(), 10);
        assert!(r.dropped_bytes > 0);
        let again = replay(&*fs, dir, 0, 2, true).unwrap();
        assert_eq!(again.entries.len(), 10);
        assert_eq!(again.dropped_bytes, 0, "repair truncated the tail");
    }

    #[test]
    fn wal_crc_error_names_file_and_offset() {
        let fault = FaultFs::new();
        let fs: Arc<dyn FileSystem> = Arc::new(fault.clone());
        let dir = Path::new("/db");
        let wal = Wal::new(fs.clone(), dir, 1);
        for i in 0..3u64 {
            wal.add(&Key::new(1, i, i), 0, ValueRef::Inline(b"abc"));
        }
        wal.write_out(true).unwrap();
        let path = segment_path(dir, 1);
        fault.flip_byte(&path, 10);
        match replay(&*fs, dir, 0, 2, false) {
            Err(Error::ChecksumMismatch { file, offset, .. }) => {
                assert_eq!(file, path);
                assert_eq!(offset, 0);
            }
            other => panic!("expected checksum error: {other:?}"),
        }
    }
}
