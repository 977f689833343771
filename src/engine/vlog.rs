//! Value log: append-only files `NNNNNN.vlog` holding large payloads once.
//! Entry: `crc32(payload) u32 | len u32 | topic u32 | log_time u64 |
//! seq u64 | payload`. The tree stores a pointer to the payload, with the
//! codec that encoded it (`len` and `crc` cover the stored bytes).

use super::codec::{corrupt, io_err, put_u32, Dec};
use super::error::{Error, Result};
use super::fs::{FileSystem, RandomAccessFile, WritableFile};
use super::types::{put_key, take_key, Codec, Key, VPtr};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

pub const ENTRY_HEADER: u64 = 28;

pub fn vlog_path(dir: &Path, num: u64) -> PathBuf {
    dir.join(format!("{num:06}.vlog"))
}

/// The value-log file being appended to.
pub struct VlogWriter {
    pub num: u64,
    path: PathBuf,
    file: Box<dyn WritableFile>,
    offset: u64,
    dirty: bool,
    header: Vec<u8>,
    /// Set by the first failed append or fsync; the flag says an fsync
    /// failed. After a failed fsync the unsynced pages may be lost for good,
    /// so the file is never written or claimed durable again; after a
    /// failed append it may still be fsynced (and sealed) but not appended.
    broken: Option<(bool, String)>,
}

impl VlogWriter {
    /// Creates a new, empty value-log file (caller records it in the
    /// manifest before handing out pointers into it).
    pub fn create(fs: &dyn FileSystem, dir: &Path, num: u64) -> Result<VlogWriter> {
        let path = vlog_path(dir, num);
        let file = fs.create(&path).map_err(io_err(&path))?;
        fs.sync_dir(dir).map_err(io_err(dir))?;
        Ok(VlogWriter {
            num,
            path,
            file,
            offset: 0,
            dirty: false,
            header: Vec::with_capacity(ENTRY_HEADER as usize),
            broken: None,
        })
    }

    pub fn size(&self) -> u64 {
        self.offset
    }

    fn check(&self, appending: bool) -> Result<()> {
        match &self.broken {
            Some((fsync, why)) if appending || *fsync => Err(Error::WriteStopped(format!(
                "value-log file {} failed earlier: {why}",
                self.path.display()
            ))),
            _ => Ok(()),
        }
    }

    fn note<T>(&mut self, r: std::io::Result<T>, fsync: bool) -> Result<T> {
        r.map_err(|e| {
            self.broken = Some((fsync, e.to_string()));
            io_err(&self.path)(e)
        })
    }

    /// True after a failed append: the file must be sealed and replaced.
    pub fn needs_roll(&self) -> bool {
        self.broken.is_some()
    }

    /// True after a failed fsync.
    pub fn sync_failed(&self) -> bool {
        self.broken.as_ref().is_some_and(|b| b.0)
    }

    /// Appends `payload` (already encoded with `codec` from `raw_len`
    /// bytes).
    pub fn append(
        &mut self,
        key: &Key,
        payload: &[u8],
        codec: Codec,
        raw_len: u32,
    ) -> Result<VPtr> {
        self.check(true)?;
        let crc = crc32fast::hash(payload);
        self.header.clear();
        put_u32(&mut self.header, crc);
        put_u32(&mut self.header, payload.len() as u32);
        put_key(&mut self.header, key);
        let r = self.file.append(&self.header);
        self.note(r, false)?;
        let r = self.file.append(payload);
        self.note(r, false)?;
        let ptr = VPtr {
            file: self.num,
            offset: self.offset + ENTRY_HEADER,
            len: payload.len() as u32,
            crc,
            codec,
            raw_len,
        };
        self.offset += ENTRY_HEADER + payload.len() as u64;
        self.dirty = true;
        Ok(ptr)
    }

    pub fn sync(&mut self) -> Result<()> {
        self.check(false)?;
        if self.dirty {
            let r = self.file.sync();
            self.note(r, true)?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// Descriptors kept open for value-log files, process-wide. Beyond this,
/// reads open and close the file each time (a long recording has thousands
/// of value-log files; the descriptor limit must not be the store's size
/// limit).
const MAX_CACHED_HANDLES: usize = 256;
static CACHED_HANDLES: AtomicUsize = AtomicUsize::new(0);

/// A value-log file referenced by a version; deleted on drop once obsolete.
pub struct VlogFile {
    pub num: u64,
    path: PathBuf,
    cached: Mutex<Option<Arc<dyn RandomAccessFile>>>,
    fs: Arc<dyn FileSystem>,
    obsolete: AtomicBool,
}

impl std::fmt::Debug for VlogFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VlogFile({})", self.num)
    }
}

impl VlogFile {
    /// `pin` keeps the descriptor open regardless of the budget (read-only
    /// stores: the writer process may delete the file).
    pub fn open(fs: Arc<dyn FileSystem>, dir: &Path, num: u64, pin: bool) -> Result<VlogFile> {
        let f = VlogFile {
            num,
            path: vlog_path(dir, num),
            cached: Mutex::new(None),
            fs,
            obsolete: AtomicBool::new(false),
        };
        if pin {
            let h = f.fs.open_read(&f.path).map_err(io_err(&f.path))?;
            CACHED_HANDLES.fetch_add(1, Ordering::AcqRel);
            *f.cached.lock() = Some(h);
        } else {
            f.handle()?;
        }
        Ok(f)
    }

    /// The cached descriptor, or a fresh one (cached while under budget).
    /// No existence check needed: the file is deleted only after the last
    /// holder of this handle is gone.
    fn handle(&self) -> Result<Arc<dyn RandomAccessFile>> {
        let mut c = self.cached.lock();
        if let Some(h) = c.as_ref() {
            return Ok(h.clone());
        }
        let h = self.fs.open_read(&self.path).map_err(io_err(&self.path))?;
        if CACHED_HANDLES.fetch_add(1, Ordering::AcqRel) < MAX_CACHED_HANDLES {
            *c = Some(h.clone());
        } else {
            CACHED_HANDLES.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(h)
    }

    pub fn size(&self) -> u64 {
        self.handle()
            .and_then(|h| h.size().map_err(io_err(&self.path)))
            .unwrap_or(0)
    }

    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }

    /// Reads the entry a pointer names and verifies header (crc, length,
    /// key) and payload CRC; returns the payload, decoded.
    pub fn read(&self, p: &VPtr, key: &Key) -> Result<Vec<u8>> {
        let start = p.offset.checked_sub(ENTRY_HEADER).ok_or_else(|| {
            corrupt(
                &self.path,
                p.offset,
                "value pointer inside the first header",
            )
        })?;
        let handle = self.handle()?;
        let size = handle.size().map_err(io_err(&self.path))?;
        // The length is untrusted: check it against the file before it
        // sizes the read buffer.
        let end = p.offset.checked_add(u64::from(p.len));
        if end.is_none_or(|end| end > size) {
            return Err(corrupt(&self.path, start, "value pointer past end of file"));
        }
        let mut buf = vec![0u8; ENTRY_HEADER as usize + p.len as usize];
        handle.read_at(&mut buf, start).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                corrupt(&self.path, start, "value pointer past end of file")
            } else {
                io_err(&self.path)(e)
            }
        })?;
        let mut d = Dec::new(&buf);
        let header = (d.u32(), d.u32(), take_key(&mut d));
        let want = (Some(p.crc), Some(p.len), Some(*key));
        if header != want {
            return Err(corrupt(
                &self.path,
                start,
                "value-log entry header mismatch",
            ));
        }
        let payload = buf.split_off(ENTRY_HEADER as usize);
        let got = crc32fast::hash(&payload);
        if got != p.crc {
            return Err(Error::ChecksumMismatch {
                file: self.path.clone(),
                offset: p.offset,
                expected: p.crc,
                got,
            });
        }
        if p.codec == Codec::Raw {
            return Ok(payload);
        }
        super::compress::decode(p.codec, &payload, p.raw_len as usize).ok_or_else(|| {
            corrupt(
                &self.path,
                start,
                format!(
                    "{} payload does not decode to {} bytes",
                    p.codec.name(),
                    p.raw_len
                ),
            )
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Decodes the entry header at `start` into the pointer and key it
    /// describes (for a sequential pass; `read` then checks the stored
    /// bytes: the header does not say how they are encoded).
    pub fn header_at(&self, start: u64) -> Result<(VPtr, Key)> {
        let mut buf = [0u8; ENTRY_HEADER as usize];
        self.handle()?.read_at(&mut buf, start).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                corrupt(&self.path, start, "torn entry header at end of file")
            } else {
                io_err(&self.path)(e)
            }
        })?;
        let mut d = Dec::new(&buf);
        let bad = || corrupt(&self.path, start, "bad entry header");
        let (crc, len) = (d.u32().ok_or_else(bad)?, d.u32().ok_or_else(bad)?);
        let key = take_key(&mut d).ok_or_else(bad)?;
        let ptr = VPtr {
            file: self.num,
            offset: start + ENTRY_HEADER,
            len,
            crc,
            codec: Codec::Raw,
            raw_len: len,
        };
        Ok((ptr, key))
    }

    /// True when the pointer lies inside the file (WAL replay check); an
    /// I/O error is an error, not a missing payload.
    pub fn contains(&self, p: &VPtr) -> Result<bool> {
        let size = self.handle()?.size().map_err(io_err(&self.path))?;
        Ok(p.offset
            .checked_add(u64::from(p.len))
            .is_some_and(|end| end <= size))
    }
}

impl Drop for VlogFile {
    fn drop(&mut self) {
        if self.cached.get_mut().take().is_some() {
            CACHED_HANDLES.fetch_sub(1, Ordering::AcqRel);
        }
        if self.obsolete.load(Ordering::Acquire) {
            // A leftover file is harmless: open removes unreferenced files.
            let _ignored = self.fs.remove(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fs::FaultFs;

    #[test]
    fn an_encoded_payload_that_does_not_decode_to_its_length_is_corrupt() {
        let fs: Arc<dyn FileSystem> = Arc::new(FaultFs::new());
        let dir = Path::new("/db");
        fs.create_dir_all(dir).unwrap();
        let raw: Vec<u8> = (0..100_000u32).map(|i| (i / 50) as u8).collect();
        let mut enc = Vec::new();
        let n = crate::engine::compress::encode_if_smaller(Codec::Zstd, &raw, &mut enc).unwrap();
        let mut w = VlogWriter::create(&*fs, dir, 1).unwrap();
        let key = Key::new(0, 1, 0);
        // The crc covers the stored bytes, so only the decode can tell the
        // length is wrong (a writer bug, or damage the crc missed).
        let good = w
            .append(&key, &enc[..n], Codec::Zstd, raw.len() as u32)
            .unwrap();
        let key2 = Key::new(0, 2, 1);
        let bad = w
            .append(&key2, &enc[..n], Codec::Zstd, raw.len() as u32 + 1)
            .unwrap();
        w.sync().unwrap();
        let f = VlogFile::open(fs.clone(), dir, 1, false).unwrap();
        assert_eq!(f.read(&good, &key).unwrap(), raw);
        match f.read(&bad, &key2) {
            Err(Error::Corrupt { reason, .. }) => {
                assert!(
                    reason.contains("does not decode to 100001 bytes"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
