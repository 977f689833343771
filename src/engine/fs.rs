//! The file layer. Every file operation of the engine goes through the
//! `FileSystem` trait so tests can swap in `FaultFs`, which keeps written and
//! durable bytes apart, can simulate a crash and can fail the Nth write or
//! fsync.
//!
//! `FaultFs` crash model (strict, like a power cut):
//! - file contents survive up to the length and bytes present at the last
//!   `sync` of that file;
//! - directory entries (create, rename, remove) survive only once
//!   `sync_dir` ran on the parent directory after the change;
//! - `crash()` returns a fresh `FaultFs` holding only that durable state and
//!   makes the old one fail every further operation.

use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

// ---------------------------------------------------------------------------
// FaultFs

#[derive(Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

type InodeRef = Arc<Mutex<Inode>>;

#[derive(Default)]
struct Namespace {
    live: BTreeMap<PathBuf, InodeRef>,
    durable: BTreeMap<PathBuf, InodeRef>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
}

struct FaultShared {
    ns: Mutex<Namespace>,
    dead: AtomicBool,
    writes: AtomicU64,
    syncs: AtomicU64,
    fail_write_at: AtomicU64,
    fail_sync_at: AtomicU64,
}

/// In-memory file system for crash and fault tests.
///
/// ```
/// use motedb::engine::fs::FaultFs;
/// let fs = FaultFs::new();
/// fs.fail_nth_write(3); // the 3rd append from now on returns EIO
/// let after_crash = fs.crash(); // durable state only; `fs` is dead now
/// # let _ = after_crash;
/// ```
#[derive(Clone)]
pub struct FaultFs {
    shared: Arc<FaultShared>,
}

impl fmt::Debug for FaultFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultFs")
            .field("writes", &self.writes())
            .field("syncs", &self.syncs())
            .finish()
    }
}

impl Default for FaultFs {
    fn default() -> Self {
        Self::new()
    }
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("FaultFs: injected {what} failure"))
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("FaultFs: {} not found", path.display()),
    )
}

impl FaultFs {
    pub fn new() -> FaultFs {
        FaultFs {
            shared: Arc::new(FaultShared {
                ns: Mutex::new(Namespace::default()),
                dead: AtomicBool::new(false),
                writes: AtomicU64::new(0),
                syncs: AtomicU64::new(0),
                fail_write_at: AtomicU64::new(0),
                fail_sync_at: AtomicU64::new(0),
            }),
        }
    }

    /// Appends counted so far (each `WritableFile::append` is one).
    pub fn writes(&self) -> u64 {
        self.shared.writes.load(Ordering::SeqCst)
    }

    /// File and directory syncs counted so far.
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::SeqCst)
    }

    /// The `n`th append from now (1 = the next) fails with EIO and writes
    /// nothing. 0 disarms.
    pub fn fail_nth_write(&self, n: u64) {
        let at = if n == 0 { 0 } else { self.writes() + n };
        self.shared.fail_write_at.store(at, Ordering::SeqCst);
    }

    /// The `n`th file or directory sync from now fails with EIO and makes
    /// nothing durable. 0 disarms.
    pub fn fail_nth_sync(&self, n: u64) {
        let at = if n == 0 { 0 } else { self.syncs() + n };
        self.shared.fail_sync_at.store(at, Ordering::SeqCst);
    }

    /// Simulates a power cut: returns a new file system holding only the
    /// durable state. This one fails every later call, so a store still
    /// running on it cannot change what the new one sees.
    pub fn crash(&self) -> FaultFs {
        self.shared.dead.store(true, Ordering::SeqCst);
        let ns = self.shared.ns.lock();
        let fresh = FaultFs::new();
        {
            let mut new_ns = fresh.shared.ns.lock();
            new_ns.dirs = ns.dirs.clone();
            for (path, inode) in &ns.durable {
                let durable = inode.lock().durable.clone();
                let node = Arc::new(Mutex::new(Inode {
                    data: durable.clone(),
                    durable,
                }));
                new_ns.live.insert(path.clone(), node.clone());
                new_ns.durable.insert(path.clone(), node);
            }
        }
        fresh
    }

    /// Written (not necessarily durable) bytes of a file.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let ns = self.shared.ns.lock();
        ns.live.get(path).map(|i| i.lock().data.clone())
    }

    /// Overwrites written and durable bytes of a file (corruption tests).
    pub fn set_contents(&self, path: &Path, data: Vec<u8>) {
        let mut ns = self.shared.ns.lock();
        let node = Arc::new(Mutex::new(Inode {
            durable: data.clone(),
            data,
        }));
        ns.live.insert(path.to_path_buf(), node.clone());
        ns.durable.insert(path.to_path_buf(), node);
    }

    /// Flips all bits of one byte, in written and durable state.
    pub fn flip_byte(&self, path: &Path, offset: usize) -> bool {
        let ns = self.shared.ns.lock();
        let Some(node) = ns.live.get(path) else {
            return false;
        };
        let mut inode = node.lock();
        let mut hit = false;
        if let Some(b) = inode.data.get_mut(offset) {
            *b ^= 0xff;
            hit = true;
        }
        if let Some(b) = inode.durable.get_mut(offset) {
            *b ^= 0xff;
        }
        hit
    }

    /// Paths of all live files.
    pub fn files(&self) -> Vec<PathBuf> {
        self.shared.ns.lock().live.keys().cloned().collect()
    }

    fn check_alive(&self) -> io::Result<()> {
        if self.shared.dead.load(Ordering::SeqCst) {
            return Err(io::Error::other("FaultFs: crashed"));
        }
        Ok(())
    }

    fn count_write(&self) -> io::Result<()> {
        self.check_alive()?;
        let n = self.shared.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.shared.fail_write_at.load(Ordering::SeqCst) {
            return Err(injected("write"));
        }
        Ok(())
    }

    fn count_sync(&self) -> io::Result<()> {
        self.check_alive()?;
        let n = self.shared.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.shared.fail_sync_at.load(Ordering::SeqCst) {
            return Err(injected("sync"));
        }
        Ok(())
    }

    fn inode(&self, path: &Path) -> io::Result<InodeRef> {
        self.check_alive()?;
        let ns = self.shared.ns.lock();
        ns.live.get(path).cloned().ok_or_else(|| not_found(path))
    }
}

struct FaultWritable {
    fs: FaultFs,
    inode: InodeRef,
}

impl WritableFile for FaultWritable {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.fs.count_write()?;
        self.inode.lock().data.extend_from_slice(buf);
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        self.fs.count_sync()?;
        let mut inode = self.inode.lock();
        inode.durable = inode.data.clone();
        Ok(())
    }
}

struct FaultReadable {
    fs: FaultFs,
    inode: InodeRef,
}

impl RandomAccessFile for FaultReadable {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.fs.check_alive()?;
        let inode = self.inode.lock();
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let end = start
            .checked_add(buf.len())
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        let src = inode
            .data
            .get(start..end)
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        self.fs.check_alive()?;
        Ok(self.inode.lock().data.len() as u64)
    }
}

struct FaultLock {
    fs: FaultFs,
    path: PathBuf,
}

impl LockGuard for FaultLock {}

impl Drop for FaultLock {
    fn drop(&mut self) {
        self.fs.shared.ns.lock().locks.remove(&self.path);
    }
}

impl FileSystem for FaultFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.check_alive()?;
        self.shared.ns.lock().dirs.insert(path.to_path_buf());
        Ok(())
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.count_write()?;
        let inode = InodeRef::default();
        self.shared
            .ns
            .lock()
            .live
            .insert(path.to_path_buf(), inode.clone());
        Ok(Box::new(FaultWritable {
            fs: self.clone(),
            inode,
        }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let inode = self.inode(path)?;
        Ok(Box::new(FaultWritable {
            fs: self.clone(),
            inode,
        }))
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        let inode = self.inode(path)?;
        Ok(Arc::new(FaultReadable {
            fs: self.clone(),
            inode,
        }))
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        Ok(self.inode(path)?.lock().data.clone())
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let inode = self.inode(path)?;
        self.count_sync()?;
        let mut inode = inode.lock();
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        inode.data.truncate(len);
        inode.durable = inode.data.clone();
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check_alive()?;
        let mut ns = self.shared.ns.lock();
        let inode = ns.live.remove(from).ok_or_else(|| not_found(from))?;
        ns.live.insert(to.to_path_buf(), inode);
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.check_alive()?;
        let mut ns = self.shared.ns.lock();
        ns.live
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.count_sync()?;
        let mut ns = self.shared.ns.lock();
        let in_dir = |p: &Path| p.parent() == Some(path);
        ns.durable.retain(|p, _| !in_dir(p));
        let live: Vec<(PathBuf, InodeRef)> = ns
            .live
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, i)| (p.clone(), i.clone()))
            .collect();
        ns.durable.extend(live);
        Ok(())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.check_alive()?;
        let ns = self.shared.ns.lock();
        Ok(ns
            .live
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .collect())
    }
    fn exists(&self, path: &Path) -> bool {
        let ns = self.shared.ns.lock();
        ns.live.contains_key(path) || ns.dirs.contains(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        self.check_alive()?;
        let mut ns = self.shared.ns.lock();
        if !ns.locks.insert(path.to_path_buf()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(Box::new(FaultLock {
            fs: self.clone(),
            path: path.to_path_buf(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_fs_crash_keeps_only_synced_bytes_and_entries() {
        let fs = FaultFs::new();
        let dir = Path::new("/d");
        fs.create_dir_all(dir).unwrap();
        let a = dir.join("a");
        let mut f = fs.create(&a).unwrap();
        f.append(b"hello").unwrap();
        f.sync().unwrap();
        fs.sync_dir(dir).unwrap();
        f.append(b" world").unwrap();
        let b = dir.join("b");
        let mut g = fs.create(&b).unwrap();
        g.append(b"x").unwrap();
        g.sync().unwrap();
        let after = fs.crash();
        assert_eq!(after.read_all(&a).unwrap(), b"hello");
        assert!(after.read_all(&b).is_err(), "dir never synced after create");
        assert!(fs.read_all(&a).is_err(), "old fs is dead");
    }

    #[test]
    fn fault_fs_fails_nth_write_and_sync() {
        let fs = FaultFs::new();
        let mut f = fs.create(Path::new("/x")).unwrap();
        fs.fail_nth_write(2);
        f.append(b"1").unwrap();
        assert!(f.append(b"2").is_err());
        f.append(b"3").unwrap();
        fs.fail_nth_sync(1);
        assert!(f.sync().is_err());
        f.sync().unwrap();
        assert_eq!(fs.read_all(Path::new("/x")).unwrap(), b"13");
    }
}
