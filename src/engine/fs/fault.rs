//! `FaultFs`: an in-memory file system that fails the way real disks do.
//!
//! Model (docs/reliability.md, "Failure model"):
//! - Every file has the bytes reads see (`data`, the page cache) and the
//!   bytes that survive a power cut (`disk`).
//! - A failed append (the Nth, or one that does not fit the space limit)
//!   writes a prefix of its buffer, then returns the error (EIO, ENOSPC).
//! - A successful `sync` puts `data` on disk, except pages lost to an
//!   earlier failed sync: those stay as the disk had them (zeros), a later
//!   successful fsync does not bring them back (Linux after a writeback
//!   error marks the pages clean).
//! - A failed `sync` puts each dirty 4 KiB page on disk or loses it for good,
//!   independently, and returns EIO.
//! - Directory entries (create, rename, remove) are durable once `sync_dir`
//!   ran on the parent directory after the change.
//! - `crash()` keeps exactly the durable state. `power_cut(seed)` keeps the
//!   durable state plus, per file, a random length between the durable and
//!   the written length, each unsynced page holding the written bytes or
//!   zeros; every directory change not yet synced survives or vanishes,
//!   independently.
//!
//! Both return a fresh `FaultFs` and make the old one fail every later call,
//! so a store still running on it cannot change what the new one sees.

use super::{FileSystem, LockGuard, RandomAccessFile, WritableFile};
use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Page size of the simulated page cache.
pub const PAGE: usize = 4096;

#[derive(Default)]
struct Inode {
    data: Vec<u8>,
    disk: Vec<u8>,
    /// Byte ranges whose pages a failed sync lost: zeros on disk forever.
    lost: Vec<(usize, usize)>,
}

impl Inode {
    /// `data` with the lost ranges zeroed: what a successful sync writes.
    fn syncable(&self) -> Vec<u8> {
        let mut out = self.data.clone();
        zero_ranges(&mut out, &self.lost);
        out
    }

    /// The durable bytes plus a random choice of unsynced pages.
    fn torn(&self, rng: &mut Rng) -> Vec<u8> {
        let (d, n) = (self.disk.len(), self.data.len());
        let mut out = self.disk.clone();
        if n <= d {
            return out;
        }
        let end = d + rng.below((n - d + 1) as u64) as usize;
        let written = self.syncable();
        out.resize(end, 0);
        let mut start = d;
        while start < end {
            let stop = ((start / PAGE + 1) * PAGE).min(end);
            if rng.below(2) == 0 {
                if let (Some(dst), Some(src)) = (out.get_mut(start..stop), written.get(start..stop))
                {
                    dst.copy_from_slice(src);
                }
            }
            start = stop;
        }
        out
    }

    /// A failed fsync: each dirty page reaches the disk or is lost.
    fn fail_sync(&mut self, rng: &mut Rng) {
        let (d, n) = (self.disk.len(), self.data.len());
        if n <= d {
            return;
        }
        let mut start = d;
        while start < n {
            let stop = ((start / PAGE + 1) * PAGE).min(n);
            if rng.below(2) == 0 {
                self.lost.push((start, stop));
            }
            start = stop;
        }
        self.disk = self.syncable();
    }
}

fn zero_ranges(buf: &mut [u8], ranges: &[(usize, usize)]) {
    for &(a, b) in ranges {
        let b = b.min(buf.len());
        if let Some(s) = buf.get_mut(a.min(b)..b) {
            s.fill(0);
        }
    }
}

type InodeRef = Arc<Mutex<Inode>>;

/// A fresh file system with these directory entries; each inode (shared
/// by several entries or not) is copied once through `content`.
fn rebuild(
    dirs: &BTreeSet<PathBuf>,
    live: Vec<(PathBuf, InodeRef)>,
    durable: Vec<(PathBuf, InodeRef)>,
    mut content: impl FnMut(&Inode) -> Inode,
) -> FaultFs {
    let fresh = FaultFs::new();
    {
        let mut ns = fresh.shared.ns.lock();
        ns.dirs = dirs.clone();
        let mut made: HashMap<usize, InodeRef> = HashMap::new();
        let mut copy = |inode: &InodeRef| {
            made.entry(Arc::as_ptr(inode) as usize)
                .or_insert_with(|| Arc::new(Mutex::new(content(&inode.lock()))))
                .clone()
        };
        for (path, inode) in live {
            let node = copy(&inode);
            ns.live.insert(path, node);
        }
        for (path, inode) in durable {
            let node = copy(&inode);
            ns.durable.insert(path, node);
        }
    }
    fresh
}

#[derive(Default)]
struct Namespace {
    live: BTreeMap<PathBuf, InodeRef>,
    durable: BTreeMap<PathBuf, InodeRef>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
}

/// SplitMix64: deterministic choices from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// What a power cut keeps besides the durable state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerCut {
    /// Exactly the durable state.
    Clean,
    /// Random unsynced pages (written or zero) and directory changes.
    Torn(u64),
}

struct FaultShared {
    ns: Mutex<Namespace>,
    dead: AtomicBool,
    writes: AtomicU64,
    syncs: AtomicU64,
    fail_write_at: AtomicU64,
    fail_sync_at: AtomicU64,
    /// The write count at which the power goes (0: never).
    die_at: AtomicU64,
    /// Total bytes the files may hold; u64::MAX: unlimited.
    space: AtomicU64,
    rng: Mutex<Rng>,
    pause: (Mutex<Pause>, Condvar),
    before_list: Mutex<Option<Hook>>,
}

type Hook = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Pause {
    /// File name suffix whose next sync parks the caller.
    armed: Option<String>,
    parked: bool,
    released: bool,
}

/// In-memory file system for crash and fault tests.
///
/// ```
/// use motedb::engine::fs::{FaultFs, PowerCut};
/// let fs = FaultFs::new();
/// fs.fail_nth_write(3); // the 3rd append from now writes a prefix, then EIO
/// let after = fs.power_cut(PowerCut::Torn(7)); // `fs` is dead now
/// # let _ = after;
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
        FaultFs::with_seed(0x6d6f_7465)
    }

    /// A file system whose random choices (failed-append prefixes, pages a
    /// failed sync loses) follow `seed`.
    pub fn with_seed(seed: u64) -> FaultFs {
        FaultFs {
            shared: Arc::new(FaultShared {
                ns: Mutex::new(Namespace::default()),
                dead: AtomicBool::new(false),
                writes: AtomicU64::new(0),
                syncs: AtomicU64::new(0),
                fail_write_at: AtomicU64::new(0),
                fail_sync_at: AtomicU64::new(0),
                die_at: AtomicU64::new(0),
                space: AtomicU64::new(u64::MAX),
                rng: Mutex::new(Rng(seed)),
                pause: (Mutex::new(Pause::default()), Condvar::new()),
                before_list: Mutex::new(None),
            }),
        }
    }

    /// Appends counted so far (each `WritableFile::append` and `create`).
    pub fn writes(&self) -> u64 {
        self.shared.writes.load(Ordering::SeqCst)
    }

    /// File and directory syncs counted so far.
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::SeqCst)
    }

    /// The `n`th append from now (1 = the next) writes a random prefix of
    /// its buffer and fails with EIO. 0 disarms.
    pub fn fail_nth_write(&self, n: u64) {
        let at = if n == 0 { 0 } else { self.writes() + n };
        self.shared.fail_write_at.store(at, Ordering::SeqCst);
    }

    /// The `n`th file or directory sync from now fails with EIO; a file
    /// sync loses a random subset of the dirty pages for good. 0 disarms.
    pub fn fail_nth_sync(&self, n: u64) {
        let at = if n == 0 { 0 } else { self.syncs() + n };
        self.shared.fail_sync_at.store(at, Ordering::SeqCst);
    }

    /// The power goes at the `n`th append or create from now (1 = the
    /// next): it fails and so does every later call. `power_cut` then
    /// gives what the disk holds. 0 disarms.
    pub fn die_at_write(&self, n: u64) {
        let at = if n == 0 { 0 } else { self.writes() + n };
        self.shared.die_at.store(at, Ordering::SeqCst);
    }

    /// True once the power went (`die_at_write`, `crash`, `power_cut`).
    pub fn is_dead(&self) -> bool {
        self.shared.dead.load(Ordering::SeqCst)
    }

    /// Limits the bytes all files together may hold; an append that does
    /// not fit writes what fits and fails with ENOSPC. None: unlimited.
    pub fn set_space_limit(&self, bytes: Option<u64>) {
        self.shared
            .space
            .store(bytes.unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Bytes all live files hold.
    pub fn used_bytes(&self) -> u64 {
        let ns = self.shared.ns.lock();
        let mut seen = BTreeSet::new();
        ns.live
            .values()
            .filter(|i| seen.insert(Arc::as_ptr(i) as usize))
            .map(|i| i.lock().data.len() as u64)
            .sum()
    }

    /// The next sync of a file whose name ends with `suffix` parks its
    /// caller (after the sync took effect) until `release_sync`.
    pub fn park_next_sync(&self, suffix: &str) {
        let mut p = self.shared.pause.0.lock();
        *p = Pause {
            armed: Some(suffix.to_string()),
            ..Pause::default()
        };
    }

    /// Runs `hook` once, at the start of the next directory listing (to
    /// inject a change between two steps of an open).
    pub fn before_next_list(&self, hook: impl FnOnce() + Send + 'static) {
        *self.shared.before_list.lock() = Some(Box::new(hook));
    }

    /// Waits until a caller is parked by `park_next_sync`.
    pub fn wait_parked(&self) {
        let (lock, cv) = &self.shared.pause;
        let mut p = lock.lock();
        while !p.parked {
            cv.wait(&mut p);
        }
    }

    /// Lets the parked caller go.
    pub fn release_sync(&self) {
        let (lock, cv) = &self.shared.pause;
        lock.lock().released = true;
        cv.notify_all();
    }

    fn maybe_park(&self, path: &Path) {
        let (lock, cv) = &self.shared.pause;
        let mut p = lock.lock();
        let hit = p
            .armed
            .as_deref()
            .is_some_and(|s| path.to_string_lossy().ends_with(s));
        if !hit {
            return;
        }
        p.armed = None;
        p.parked = true;
        cv.notify_all();
        while !p.released {
            cv.wait(&mut p);
        }
    }

    /// Simulates the death of the process (SIGKILL), not of the machine:
    /// the page cache survives, written but unsynced bytes included, and
    /// stay unsynced. Returns the file system the next process sees; this
    /// one fails every later call.
    pub fn kill_process(&self) -> FaultFs {
        self.shared.dead.store(true, Ordering::SeqCst);
        let ns = self.shared.ns.lock();
        let live: Vec<_> = ns
            .live
            .iter()
            .map(|(p, i)| (p.clone(), i.clone()))
            .collect();
        let durable: Vec<_> = ns
            .durable
            .iter()
            .map(|(p, i)| (p.clone(), i.clone()))
            .collect();
        rebuild(&ns.dirs, live, durable, |old| Inode {
            data: old.data.clone(),
            disk: old.disk.clone(),
            lost: old.lost.clone(),
        })
    }

    /// Simulates a power cut that keeps exactly the durable state.
    pub fn crash(&self) -> FaultFs {
        self.power_cut(PowerCut::Clean)
    }

    /// Simulates a power cut: returns a new file system holding what the
    /// disk holds afterwards (see the module docs). This one fails every
    /// later call.
    pub fn power_cut(&self, cut: PowerCut) -> FaultFs {
        self.shared.dead.store(true, Ordering::SeqCst);
        let ns = self.shared.ns.lock();
        let mut rng = Rng(match cut {
            PowerCut::Clean => 0,
            PowerCut::Torn(seed) => seed,
        });
        let torn = matches!(cut, PowerCut::Torn(_));
        let mut kept: BTreeMap<PathBuf, InodeRef> = BTreeMap::new();
        let paths: BTreeSet<&PathBuf> = ns.live.keys().chain(ns.durable.keys()).collect();
        for path in paths {
            let (live, durable) = (ns.live.get(path), ns.durable.get(path));
            let pick = match (live, durable) {
                (Some(l), Some(d)) if Arc::ptr_eq(l, d) => Some(d),
                (l, d) if torn && rng.below(2) == 0 => l.or(d),
                (_, d) => d,
            };
            if let Some(i) = pick {
                kept.insert(path.clone(), i.clone());
            }
        }
        let kept: Vec<_> = kept.into_iter().collect();
        rebuild(&ns.dirs, kept.clone(), kept, |old| {
            let bytes = if torn {
                old.torn(&mut rng)
            } else {
                old.disk.clone()
            };
            Inode {
                data: bytes.clone(),
                disk: bytes,
                lost: Vec::new(),
            }
        })
    }

    /// Written (not necessarily durable) bytes of a file.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let ns = self.shared.ns.lock();
        ns.live.get(path).map(|i| i.lock().data.clone())
    }

    /// Bytes of a file that are on disk (whether or not its directory
    /// entry is).
    pub fn durable_contents(&self, path: &Path) -> Option<Vec<u8>> {
        let ns = self.shared.ns.lock();
        ns.live.get(path).map(|i| i.lock().disk.clone())
    }

    /// Overwrites written and durable bytes of a file (corruption tests).
    pub fn set_contents(&self, path: &Path, data: Vec<u8>) {
        let mut ns = self.shared.ns.lock();
        let node = Arc::new(Mutex::new(Inode {
            disk: data.clone(),
            data,
            lost: Vec::new(),
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
        if let Some(b) = inode.disk.get_mut(offset) {
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

    /// Counts one write; true when it is the one to fail.
    fn count_write(&self) -> io::Result<bool> {
        self.check_alive()?;
        let n = self.shared.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.shared.die_at.load(Ordering::SeqCst) {
            self.shared.dead.store(true, Ordering::SeqCst);
            return Err(io::Error::other("FaultFs: power cut"));
        }
        Ok(n == self.shared.fail_write_at.load(Ordering::SeqCst))
    }

    fn count_sync(&self) -> io::Result<bool> {
        self.check_alive()?;
        let n = self.shared.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(n == self.shared.fail_sync_at.load(Ordering::SeqCst))
    }

    fn random_below(&self, n: u64) -> u64 {
        self.shared.rng.lock().below(n)
    }

    fn inode(&self, path: &Path) -> io::Result<InodeRef> {
        self.check_alive()?;
        let ns = self.shared.ns.lock();
        ns.live.get(path).cloned().ok_or_else(|| not_found(path))
    }
}

struct FaultWritable {
    fs: FaultFs,
    path: PathBuf,
    inode: InodeRef,
}

impl WritableFile for FaultWritable {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let fail = self.fs.count_write()?;
        let space = self.fs.shared.space.load(Ordering::SeqCst);
        let room = if space == u64::MAX {
            u64::MAX
        } else {
            space.saturating_sub(self.fs.used_bytes())
        };
        let mut n = buf.len();
        let mut err = None;
        if fail {
            n = self.fs.random_below(buf.len() as u64 + 1) as usize;
            err = Some(injected("write"));
        }
        if (n as u64) > room {
            n = room as usize;
            err = Some(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        let part = buf.get(..n).unwrap_or_default();
        let mut inode = self.inode.lock();
        // Checked again under the inode lock: a power cut takes its
        // snapshot under the same lock, so nothing lands after it.
        self.fs.check_alive()?;
        inode.data.extend_from_slice(part);
        err.map_or(Ok(()), Err)
    }
    fn sync(&mut self) -> io::Result<()> {
        let fail = self.fs.count_sync()?;
        {
            let mut inode = self.inode.lock();
            self.fs.check_alive()?;
            if fail {
                let mut rng = self.fs.shared.rng.lock();
                inode.fail_sync(&mut rng);
                return Err(injected("sync"));
            }
            inode.disk = inode.syncable();
        }
        self.fs.maybe_park(&self.path);
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
        if self.count_write()? {
            return Err(injected("create"));
        }
        let inode = InodeRef::default();
        self.shared
            .ns
            .lock()
            .live
            .insert(path.to_path_buf(), inode.clone());
        Ok(Box::new(FaultWritable {
            fs: self.clone(),
            path: path.to_path_buf(),
            inode,
        }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let inode = self.inode(path)?;
        Ok(Box::new(FaultWritable {
            fs: self.clone(),
            path: path.to_path_buf(),
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
        if self.count_sync()? {
            return Err(injected("truncate"));
        }
        let mut inode = inode.lock();
        self.check_alive()?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        inode.data.truncate(len);
        inode.lost.retain(|r| r.0 < len);
        inode.disk = inode.syncable();
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
        if self.count_sync()? {
            return Err(injected("directory sync"));
        }
        let mut ns = self.shared.ns.lock();
        self.check_alive()?;
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
        let hook = self.shared.before_list.lock().take();
        if let Some(h) = hook {
            h();
        }
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
    fn crash_keeps_only_synced_bytes_and_entries() {
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
    fn failed_write_leaves_a_prefix_and_failed_sync_is_reported() {
        let fs = FaultFs::with_seed(3);
        let p = Path::new("/x");
        let mut f = fs.create(p).unwrap();
        f.append(b"1").unwrap();
        fs.fail_nth_write(1);
        assert!(f.append(&[7u8; 1000]).is_err());
        let len = fs.read_all(p).unwrap().len();
        assert!(len < 1001, "a failed append wrote everything");
        f.append(b"3").unwrap();
        fs.fail_nth_sync(1);
        assert!(f.sync().is_err());
        f.sync().unwrap();
        assert_eq!(fs.read_all(p).unwrap().len(), len + 1);
    }

    /// Linux after a writeback error: the lost pages are marked clean, so a
    /// later fsync that succeeds does not write them again.
    #[test]
    fn pages_lost_to_a_failed_sync_stay_lost_after_a_good_sync() {
        for seed in 0..64 {
            let fs = FaultFs::with_seed(seed);
            let p = Path::new("/x");
            let mut f = fs.create(p).unwrap();
            f.append(&[1u8; PAGE]).unwrap();
            f.sync().unwrap();
            f.append(&[2u8; 3 * PAGE]).unwrap();
            fs.fail_nth_sync(1);
            assert!(f.sync().is_err());
            f.append(&[3u8; PAGE]).unwrap();
            f.sync().unwrap();
            let disk = fs.durable_contents(p).unwrap();
            assert_eq!(disk.len(), 5 * PAGE);
            assert!(disk[..PAGE].iter().all(|b| *b == 1), "synced page damaged");
            assert!(disk[4 * PAGE..].iter().all(|b| *b == 3), "later page lost");
            for page in disk[PAGE..4 * PAGE].chunks(PAGE) {
                assert!(
                    page.iter().all(|b| *b == 2) || page.iter().all(|b| *b == 0),
                    "seed {seed}: a page is neither written nor lost"
                );
            }
        }
        let lost_some = (0..64).any(|seed| {
            let fs = FaultFs::with_seed(seed);
            let p = Path::new("/x");
            let mut f = fs.create(p).unwrap();
            f.append(&[2u8; 3 * PAGE]).unwrap();
            fs.fail_nth_sync(1);
            let _ = f.sync();
            f.sync().unwrap();
            fs.durable_contents(p).unwrap().contains(&0)
        });
        assert!(lost_some, "no seed lost a page");
    }

    #[test]
    fn torn_power_cut_keeps_the_durable_prefix_and_whole_pages() {
        let mut zero_then_data = false;
        for seed in 0..200 {
            let fs = FaultFs::new();
            let dir = Path::new("/d");
            let p = dir.join("f");
            let mut f = fs.create(&p).unwrap();
            fs.sync_dir(dir).unwrap();
            f.append(&[1u8; PAGE + 100]).unwrap();
            f.sync().unwrap();
            f.append(&[2u8; 4 * PAGE]).unwrap();
            let after = fs.power_cut(PowerCut::Torn(seed));
            let got = after.read_all(&p).unwrap();
            assert!(got.len() >= PAGE + 100 && got.len() <= 5 * PAGE + 100);
            assert!(
                got[..PAGE + 100].iter().all(|b| *b == 1),
                "durable bytes lost"
            );
            let tail = &got[PAGE + 100..];
            let first_zero = tail.iter().position(|b| *b == 0);
            let later_data = first_zero.is_some_and(|z| tail[z..].contains(&2));
            zero_then_data |= later_data;
        }
        assert!(zero_then_data, "no cut left zeros followed by data");
    }

    #[test]
    fn unsynced_directory_changes_survive_or_vanish() {
        let (mut kept, mut vanished) = (0, 0);
        for seed in 0..64 {
            let fs = FaultFs::new();
            let dir = Path::new("/d");
            let mut f = fs.create(&dir.join("new")).unwrap();
            f.append(b"x").unwrap();
            f.sync().unwrap();
            let after = fs.power_cut(PowerCut::Torn(seed));
            if after.exists(&dir.join("new")) {
                kept += 1;
            } else {
                vanished += 1;
            }
        }
        assert!(kept > 0 && vanished > 0, "kept {kept}, vanished {vanished}");
    }

    #[test]
    fn append_past_the_space_limit_writes_what_fits_and_says_enospc() {
        let fs = FaultFs::new();
        let p = Path::new("/x");
        let mut f = fs.create(p).unwrap();
        fs.set_space_limit(Some(10));
        let e = f.append(&[1u8; 25]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(fs.read_all(p).unwrap().len(), 10);
        fs.remove(p).unwrap();
        let mut g = fs.create(Path::new("/y")).unwrap();
        g.append(&[1u8; 10]).unwrap();
    }
}
