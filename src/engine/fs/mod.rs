//! The file layer. Every file operation of the engine goes through the
//! `FileSystem` trait so tests can swap in `FaultFs` (fault.rs), which keeps
//! written and durable bytes apart and fails, tears and cuts the power the
//! way real disks do.

use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::Path;

use std::sync::Arc;

/// A file open for appending.
pub trait WritableFile: Send {
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// fdatasync: makes appended bytes durable.
    fn sync(&mut self) -> io::Result<()>;
}

/// A file open for positional reads.
pub trait RandomAccessFile: Send + Sync {
    /// Fills `buf` from `offset`; short files give `UnexpectedEof`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    fn size(&self) -> io::Result<u64>;
}

/// Held while a store directory is locked; dropping releases the lock.
pub trait LockGuard: Send + Sync {}

pub trait FileSystem: Send + Sync + fmt::Debug {
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates or truncates.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing file for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>>;
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// File names (not paths) in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn exists(&self, path: &Path) -> bool;
    /// Exclusive, non-blocking lock; `WouldBlock` when held elsewhere.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>>;
    /// The pid a lock file names, if any (after `lock` said `WouldBlock`).
    fn lock_owner(&self, path: &Path) -> Option<u32> {
        let bytes = self.read_all(path).ok()?;
        std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
    }
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

struct RealWritable(std::fs::File);

impl WritableFile for RealWritable {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        io::Write::write_all(&mut self.0, buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

struct RealReadable(std::fs::File);

impl RandomAccessFile for RealReadable {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.0, buf, offset)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

/// The lock on a store directory: a POSIX record lock (fcntl F_SETLK) on
/// the LOCK file, plus this process's own record of it.
///
/// Not flock: a flock belongs to the open file description, which a child
/// forked by any thread shares until it execs, so a store closed and reopened
/// while another thread spawns a process could find its own old lock still
/// held (seen in the SIGKILL loop test). A record lock belongs to the process
/// and is not inherited across fork. It also does not conflict within one
/// process, and closing any descriptor of the file drops it, so (as RocksDB
/// does) the process keeps a set of the files it has locked, refuses a
/// second lock itself and never opens a locked file a second time.
struct RealLock {
    file: Option<std::fs::File>,
    key: (u64, u64),
}

/// (device, inode) of every LOCK file this process holds.
static LOCKED: Mutex<BTreeSet<(u64, u64)>> = Mutex::new(BTreeSet::new());

impl LockGuard for RealLock {}

impl Drop for RealLock {
    fn drop(&mut self) {
        // Close (releasing the record lock) before forgetting the key, so no
        // thread of this process opens the file while the lock is still held.
        drop(self.file.take());
        LOCKED.lock().remove(&self.key);
    }
}

/// The pid of the process that holds the store lock at `path` (`RealFs`'s
/// record lock), asked without taking it or writing anything (F_GETLK on a
/// read-only descriptor): works on a read-only mount. None when no one
/// holds it or the file does not exist.
pub fn lock_holder(path: &Path) -> Option<u32> {
    use std::os::unix::io::AsRawFd;
    // A second descriptor of a file this process holds a record lock on
    // would drop the lock when closed: answer from the table instead.
    let locked = LOCKED.lock();
    if file_key(path).is_ok_and(|k| locked.contains(&k)) {
        return Some(std::process::id());
    }
    let f = std::fs::File::open(path).ok()?;
    // SAFETY: fcntl on a valid, owned descriptor with a zeroed, filled
    // flock struct that the call fills in; no memory is shared.
    let fl = unsafe {
        let mut fl: libc::flock = std::mem::zeroed();
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        if libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut fl) != 0 {
            return None;
        }
        fl
    };
    // Closed while the table is held: no thread of this process can take
    // the lock on this file between our open and our close.
    drop(f);
    drop(locked);
    (fl.l_type != libc::F_UNLCK as libc::c_short).then_some(fl.l_pid as u32)
}

fn file_key(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

impl FileSystem for RealFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let f = std::fs::File::create(path)?;
        Ok(Box::new(RealWritable(f)))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let f = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(Box::new(RealWritable(f)))
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        Ok(Arc::new(RealReadable(std::fs::File::open(path)?)))
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.set_len(len)?;
        f.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::File::open(path)?.sync_all()
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                out.push(name.to_string());
            }
        }
        Ok(out)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        use std::os::unix::io::AsRawFd;
        // Held until the key is recorded: no other thread of this process
        // opens the file in between.
        let mut locked = LOCKED.lock();
        if file_key(path).is_ok_and(|k| locked.contains(&k)) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        let key = {
            use std::os::unix::fs::MetadataExt;
            let m = f.metadata()?;
            (m.dev(), m.ino())
        };
        // SAFETY: fcntl on a valid, owned descriptor with a zeroed, filled
        // flock struct; no memory is shared.
        let rc = unsafe {
            let mut fl: libc::flock = std::mem::zeroed();
            fl.l_type = libc::F_WRLCK as libc::c_short;
            fl.l_whence = libc::SEEK_SET as libc::c_short;
            libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl)
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EACCES) => io::ErrorKind::WouldBlock.into(),
                _ => e,
            });
        }
        f.set_len(0)?;
        io::Write::write_all(&mut &f, std::process::id().to_string().as_bytes())?;
        locked.insert(key);
        Ok(Box::new(RealLock { file: Some(f), key }))
    }
    fn lock_owner(&self, path: &Path) -> Option<u32> {
        // Reading the file would open and close a second descriptor, which
        // drops a record lock this process holds on it.
        // Held across the read: no thread of this process may take the lock
        // while a second descriptor of the file is open.
        let locked = LOCKED.lock();
        if file_key(path).is_ok_and(|k| locked.contains(&k)) {
            return Some(std::process::id());
        }
        let bytes = std::fs::read(path).ok()?;
        drop(locked);
        std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
    }
}

mod fault;
pub use fault::{FaultFs, PowerCut};
