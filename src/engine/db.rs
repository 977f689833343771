//! The store's shared state, open/recovery and background threads.

use super::codec::io_err;
use super::compress::ValueCodecs;
use super::error::{Error, Result};
use super::fs::{FileSystem, LockGuard};
use super::health::{Controller, Poison, StateCell, Stats};
use super::manifest::{self, Edit, ManifestWriter, TopicEntry};
use super::marks::Mark;
use super::memtable::Memtable;
use super::sstable::{Table, TopicRange};
use super::types::{Entry, Key, VPtr, Value, ValueRef};
use super::version::{Version, VersionEdit};
use super::vlog::{VlogFile, VlogWriter};
use super::wal::{self, Keep, Wal};
use super::{Durability, Options, RecoveryReport, Retention, TopicInfo, TopicSpec};
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const LOCK_FILE: &str = "LOCK";

/// What readers snapshot: the file set plus the memtables, swapped as one.
pub struct SuperVersion {
    pub version: Arc<Version>,
    pub active: Arc<Memtable>,
    /// Waiting for flush, oldest first.
    pub imm: Vec<Arc<Memtable>>,
}

pub struct Catalog {
    pub topics: Vec<TopicEntry>,
    pub by_name: HashMap<String, u32>,
}

pub struct WriterState {
    pub next_seq: Vec<u64>,
    pub active: Arc<Memtable>,
}

pub struct Inner {
    pub dir: PathBuf,
    pub fs: Arc<dyn FileSystem>,
    pub opts: Options,
    pub read_only: bool,
    _lock: Option<Box<dyn LockGuard>>,
    pub wal: Option<Wal>,
    pub writer: Mutex<WriterState>,
    /// Shared with the WAL, which fsyncs it before every WAL fsync.
    pub vlog: Arc<Mutex<Option<VlogWriter>>>,
    pub manifest: Mutex<Option<ManifestWriter>>,
    pub catalog: RwLock<Catalog>,
    pub next_file: AtomicU64,
    pub sv: Mutex<Arc<SuperVersion>>,
    pub stats: Stats,
    pub poison: Poison,
    pub recovery: RecoveryReport,
    pub controller: Controller,
    pub state: StateCell,
    pub retention_counters: Mutex<(u64, u64, u64)>,
    /// The retention limits in force; `opts.retention` at open, then
    /// whatever `Store::set_retention` set.
    pub retention: Mutex<Retention>,
    /// Serialises flushes (one memtable at a time, oldest first).
    pub flush_lock: Mutex<()>,
    /// Serialises compaction and retention.
    pub maintenance: Mutex<()>,
    pub signal: (Mutex<()>, Condvar),
    pub stop: AtomicBool,
    /// Why writes are stopped until a retry succeeds (recover.rs).
    pub stalled: Mutex<Option<String>>,
    /// Tables moved out of the tree after a checksum error, and why.
    pub quarantined: Mutex<Vec<(PathBuf, String)>>,
    /// Serialises `try_resume`.
    pub resume_lock: Mutex<()>,
    /// The latest table write time handed out: write times never go
    /// backwards, even when the wall clock does (retention order).
    pub last_written: AtomicU64,
    /// Per-topic compression of value-log payloads.
    pub codecs: ValueCodecs,
    /// The manifest has `FEATURE_ENCODED_VALUES`.
    pub encoded_values: AtomicBool,
    /// The manifest has `FEATURE_DROPPED`.
    pub dropped_feature: AtomicBool,
    /// The manifest has `FEATURE_MARKS`.
    pub marks_feature: AtomicBool,
    /// Event marks by id, as the manifest holds them (marks.rs).
    pub marks: Mutex<BTreeMap<u64, Mark>>,
    /// Pins retention released since open, newest last (for health).
    pub released_pins: Mutex<(u64, Option<String>)>,
}

impl Inner {
    pub fn open(dir: &Path, opts: Options, read_only: bool) -> Result<Inner> {
        let fs = opts.fs.clone();
        if !read_only {
            fs.create_dir_all(dir).map_err(io_err(dir))?;
        }
        let lock = if read_only {
            None
        } else {
            Some(take_lock(&*fs, dir)?)
        };
        let (state, manifest_dropped, _) = manifest::load(&*fs, dir)?;
        let mut recovery = RecoveryReport {
            manifest_dropped_bytes: manifest_dropped,
            ..RecoveryReport::default()
        };
        let opened_at = opts.tuning.clock.now();
        let version = load_version(&fs, dir, &state, read_only, opened_at)?;
        let active = Arc::new(Memtable::new(0));
        let mut next_seq: Vec<u64> = state.topics.values().map(|t| t.next_seq).collect();
        let mut vlogs_used = std::collections::BTreeSet::new();
        let mut keep = |e: Entry, synced: bool| -> Result<Keep> {
            if let Value::Ptr(p) = &e.value {
                if let Some(why) = missing_payload(&version, p, &e.key, synced)? {
                    return Ok(Keep::CutHere(why));
                }
                vlogs_used.insert(p.file);
            }
            let t = e.key.topic as usize;
            if t >= next_seq.len() {
                next_seq.resize(t + 1, 0);
            }
            if let Some(n) = next_seq.get_mut(t) {
                *n = (*n).max(e.key.seq.saturating_add(1));
            }
            active.insert(e.key, e.publish, ValueRef::from(&e.value));
            Ok(Keep::Yes)
        };
        let replay = wal::replay(
            &*fs,
            dir,
            state.wal_floor,
            state.topics.len(),
            !read_only,
            &mut keep,
        );
        if read_only {
            // A writer may have flushed (new table, WAL segments deleted) or
            // registered a topic between our manifest read and the WAL
            // listing: then what we read is not one consistent view.
            let (now, _, _) = manifest::load(&*fs, dir)?;
            if now != state {
                return Err(changed_while_opening(dir));
            }
        }
        let replay = replay?;
        recovery.replayed_records = replay.records;
        recovery.dropped_records = replay.dropped_records;
        recovery.wal_dropped_bytes = replay.cut.iter().map(|t| t.bytes).sum();
        recovery.wal_truncated = replay.cut;
        let next_seg = replay.segments.last().map_or(state.wal_floor, |s| s + 1);
        active.set_last_wal_segment(next_seg);
        if !read_only {
            // After a crash of the process (not of the machine) what was
            // replayed may still be only in the page cache: make it
            // durable before a newer segment makes the last one "fsynced
            // whole", and before a table points into those payloads.
            if let Some(last) = replay.segments.last() {
                fsync_file(&*fs, &wal::segment_path(dir, *last))?;
            }
            for num in &vlogs_used {
                fsync_file(&*fs, &super::vlog::vlog_path(dir, *num))?;
            }
        }
        let mut next_file = state.next_file.max(1);
        let manifest_writer = if read_only {
            None
        } else {
            recovery.removed_files = remove_unreferenced(&*fs, dir, &state)?;
            next_file = next_file.max(max_file_number(&state).saturating_add(1));
            let mut st = state.clone();
            st.next_file = next_file;
            // Tables from before write times were recorded keep the time of
            // this open from now on (not a new one at every open).
            for num in st.tables.keys() {
                st.table_wall.entry(*num).or_insert(opened_at);
            }
            Some(ManifestWriter::rewrite(fs.clone(), dir, &st)?)
        };
        let last_written = version
            .tables()
            .map(|(_, t)| t.written_at)
            .max()
            .unwrap_or(0);
        let quarantined =
            super::recover::find_quarantined(&fs.list(dir).map_err(io_err(dir))?, dir);
        let catalog = build_catalog(&state.topics);
        next_seq.resize(catalog.topics.len().max(next_seq.len()), 0);
        let vlog: Arc<Mutex<Option<VlogWriter>>> = Arc::default();
        let wal = (!read_only).then(|| {
            let v = vlog.clone();
            let barrier: wal::Barrier = Box::new(move || match v.lock().as_mut() {
                Some(w) => w.sync(),
                None => Ok(()),
            });
            Wal::new(fs.clone(), dir, next_seg, barrier)
        });
        let controller = Controller {
            l0_slowdown: opts.tuning.l0_slowdown,
            l0_stop: opts.tuning.l0_stop,
            imm_stop: 2,
        };
        Ok(Inner {
            dir: dir.to_path_buf(),
            fs,
            read_only,
            _lock: lock,
            wal,
            writer: Mutex::new(WriterState {
                next_seq,
                active: active.clone(),
            }),
            vlog,
            manifest: Mutex::new(manifest_writer),
            catalog: RwLock::new(catalog),
            next_file: AtomicU64::new(next_file),
            sv: Mutex::new(Arc::new(SuperVersion {
                version: Arc::new(version),
                active,
                imm: Vec::new(),
            })),
            stats: Stats::default(),
            poison: Poison::default(),
            recovery,
            controller,
            state: StateCell::default(),
            retention_counters: Mutex::new(state.retention),
            retention: Mutex::new(opts.retention.clone()),
            flush_lock: Mutex::new(()),
            maintenance: Mutex::new(()),
            signal: (Mutex::new(()), Condvar::new()),
            stop: AtomicBool::new(false),
            stalled: Mutex::new(None),
            quarantined: Mutex::new(quarantined),
            resume_lock: Mutex::new(()),
            last_written: AtomicU64::new(last_written),
            codecs: ValueCodecs::new(opts.value_compression),
            encoded_values: AtomicBool::new(state.features & manifest::FEATURE_ENCODED_VALUES != 0),
            marks_feature: AtomicBool::new(state.features & manifest::FEATURE_MARKS != 0),
            dropped_feature: AtomicBool::new(state.features & manifest::FEATURE_DROPPED != 0),
            marks: Mutex::new(state.marks.clone()),
            released_pins: Mutex::new((0, None)),
            opts,
        })
    }

    pub fn snapshot(&self) -> Arc<SuperVersion> {
        self.sv.lock().clone()
    }

    pub fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        self.poison.check()?;
        match self.stalled() {
            Some(why) => Err(Error::WriteStopped(why)),
            None => Ok(()),
        }
    }

    /// Records a write-path failure: the store is poisoned for writes.
    pub fn fail<T>(&self, what: &str, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.poison.set(what, e);
            self.notify();
        }
        r
    }

    pub fn poison_panic(&self, what: &str) {
        self.poison
            .set(what, &Error::Poisoned(format!("{what} panicked")));
    }

    pub fn alloc_file(&self) -> u64 {
        self.next_file.fetch_add(1, Ordering::SeqCst)
    }

    pub fn log_edits(&self, edits: &[Edit]) -> Result<()> {
        let mut m = self.manifest.lock();
        let w = m.as_mut().ok_or(Error::ReadOnly)?;
        w.log(edits)
    }

    /// Applies an in-memory edit to the current version.
    pub fn install(&self, edit: &VersionEdit) {
        let mut sv = self.sv.lock();
        *sv = sv.next(Some(sv.version.apply(edit)), None, None);
    }

    pub fn notify(&self) {
        let _g = self.signal.0.lock();
        self.signal.1.notify_all();
    }

    /// Waits for a background signal or the timeout.
    pub fn wait(&self, timeout: Duration) {
        let mut g = self.signal.0.lock();
        if !self.stop.load(Ordering::Acquire) {
            self.signal.1.wait_for(&mut g, timeout);
        }
    }

    /// Sleeps `d`, or less when the store shuts down (other signals do
    /// not cut it short).
    pub fn pause(&self, d: Duration) {
        let deadline = std::time::Instant::now() + d;
        loop {
            let now = std::time::Instant::now();
            if now >= deadline || self.stopping() {
                return;
            }
            self.wait(deadline - now);
        }
    }

    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        self.notify();
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    pub fn register_topic(&self, spec: TopicSpec) -> Result<u32> {
        let mut cat = self.catalog.write();
        if let Some(id) = cat.by_name.get(&spec.name).copied() {
            let known = cat
                .topics
                .get(id as usize)
                .map(|t| t.spec.clone())
                .unwrap_or_default();
            if known.type_name != spec.type_name {
                return Err(Error::TopicTypeConflict {
                    name: spec.name,
                    existing: known.type_name,
                    requested: spec.type_name,
                });
            }
            // A definition or type hash the first registration lacked (a
            // store recorded before they were kept, or before the type's
            // description was installed) is filled in; a known one stays.
            let mut filled = known.clone();
            if filled.definition.is_empty() {
                filled.definition = spec.definition;
            }
            if filled.type_hash.is_empty() {
                filled.type_hash = spec.type_hash;
            }
            if filled != known && self.check_writable().is_ok() {
                let r = self.log_edits(&[Edit::Topic {
                    id,
                    spec: filled.clone(),
                }]);
                self.fail("manifest write", r)?;
                if let Some(t) = cat.topics.get_mut(id as usize) {
                    t.spec = filled;
                }
            }
            return Ok(id);
        }
        self.check_writable()?;
        let id = cat.topics.len() as u32;
        let edits = [Edit::Topic {
            id,
            spec: spec.clone(),
        }];
        let r = self.log_edits(&edits);
        self.fail("manifest write", r)?;
        cat.by_name.insert(spec.name.clone(), id);
        cat.topics.push(TopicEntry {
            spec,
            ..TopicEntry::default()
        });
        drop(cat);
        let mut w = self.writer.lock();
        if w.next_seq.len() <= id as usize {
            w.next_seq.resize(id as usize + 1, 0);
        }
        Ok(id)
    }

    pub fn record_loss(&self, topic: u32, dropped: u64, gaps: u64) -> Result<()> {
        self.check_writable()?;
        let mut cat = self.catalog.write();
        let t = cat
            .topics
            .get_mut(topic as usize)
            .ok_or(Error::UnknownTopic(topic))?;
        // The stored totals come from the manifest: saturate, never wrap.
        let (d, g) = (
            t.dropped.saturating_add(dropped),
            t.gaps.saturating_add(gaps),
        );
        let r = self.log_edits(&[Edit::Loss {
            id: topic,
            dropped: d,
            gaps: g,
        }]);
        self.fail("manifest write", r)?;
        t.dropped = d;
        t.gaps = g;
        Ok(())
    }

    pub fn topic_count(&self) -> usize {
        self.catalog.read().topics.len()
    }

    /// Per-topic statistics from the tables and memtables of a snapshot.
    pub fn topic_ranges(sv: &SuperVersion) -> BTreeMap<u32, TopicRange> {
        let mut out: BTreeMap<u32, TopicRange> = BTreeMap::new();
        for (_, t) in sv.version.tables() {
            for (id, r) in &t.meta.topics {
                out.entry(*id).or_default().merge(r);
            }
        }
        for m in sv.imm.iter().chain(std::iter::once(&sv.active)) {
            for (id, r) in m.topic_stats() {
                out.entry(id).or_default().merge(&r);
            }
        }
        out
    }

    pub fn topics(&self) -> Vec<TopicInfo> {
        let sv = self.snapshot();
        let ranges = Self::topic_ranges(&sv);
        let codecs: BTreeMap<u32, _> = self.codecs.stats().into_iter().collect();
        let cat = self.catalog.read();
        cat.topics
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let r = ranges.get(&(i as u32)).copied().unwrap_or_default();
                TopicInfo {
                    id: i as u32,
                    spec: t.spec.clone(),
                    message_count: r.count,
                    size_bytes: r.bytes,
                    stored_bytes: r.stored,
                    lz4_payloads: r.lz4,
                    zstd_payloads: r.zstd,
                    value_codec: codecs.get(&(i as u32)).copied(),
                    first_time: (r.count > 0).then_some(r.min_time),
                    last_time: (r.count > 0).then_some(r.max_time),
                    dropped_count: t.dropped,
                    gap_count: t.gaps,
                }
            })
            .collect()
    }

    /// Best effort on drop: push buffered WAL bytes to disk, also when a
    /// failure elsewhere (a flush, a compaction) poisoned the store: the
    /// WAL refuses by itself once its own file failed.
    pub fn best_effort_sync(&self) {
        if self.read_only {
            return;
        }
        if let Err(e) = self.write_out_wal(true) {
            self.poison.note(format!("sync on drop: {e}"));
        }
    }

    pub fn sync_interval(&self) -> Option<Duration> {
        match self.opts.durability {
            Durability::Periodic(d) => Some(d.max(Duration::from_millis(1))),
            Durability::None => Some(Duration::from_millis(200)),
            Durability::Sync => None,
        }
    }
}

/// Why a replayed record's value-log payload cannot be kept (None: it
/// can). A synced record's payload was fsynced before its WAL record, so
/// missing it is corruption; an unsynced record's payload is read and
/// checked whole, and a bad one ends replay there (a torn tail).
fn missing_payload(version: &Version, p: &VPtr, key: &Key, synced: bool) -> Result<Option<String>> {
    let Some(f) = version.vlogs.get(&p.file) else {
        return Err(Error::Corrupt {
            file: super::vlog::vlog_path(Path::new(""), p.file),
            offset: p.offset,
            reason: "WAL record points into a value-log file the manifest does not list".into(),
        });
    };
    if synced {
        if f.contains(p)? {
            return Ok(None);
        }
        return Err(Error::Corrupt {
            file: f.path().to_path_buf(),
            offset: p.offset,
            reason: "payload of a synced WAL record is past the end of the value log".into(),
        });
    }
    match f.read(p, key) {
        Ok(_) => Ok(None),
        Err(e @ (Error::Corrupt { .. } | Error::ChecksumMismatch { .. })) => Ok(Some(format!(
            "value-log payload of an unsynced record never became durable: {e}"
        ))),
        Err(e) => Err(e),
    }
}

/// The error a read-only open retries on (Store::open_read_only_with).
pub fn changed_while_opening(dir: &Path) -> Error {
    Error::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::Interrupted,
            "the writer kept changing the store while it was being opened read-only; try again",
        ),
    }
}

/// fsync of a file written by an earlier process.
fn fsync_file(fs: &dyn FileSystem, path: &Path) -> Result<()> {
    if !fs.exists(path) {
        return Ok(());
    }
    fs.open_append(path)
        .and_then(|mut f| f.sync())
        .map_err(io_err(path))
}

fn take_lock(fs: &dyn FileSystem, dir: &Path) -> Result<Box<dyn LockGuard>> {
    let path = dir.join(LOCK_FILE);
    fs.lock(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked {
                path: dir.to_path_buf(),
                pid: fs.lock_owner(&path),
            }
        } else {
            io_err(&path)(e)
        }
    })
}

/// Opens every table and value-log file the manifest lists. `pin` keeps
/// their descriptors open (read-only stores).
/// Tables without a recorded write time (stores from before it was
/// recorded) count as written `now`: kept at least `max_age` longer.
fn load_version(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    st: &manifest::State,
    pin: bool,
    now: u64,
) -> Result<Version> {
    let mut v = Version::default();
    for (num, level) in &st.tables {
        let mut t = Table::open(fs.clone(), dir, *num, pin)?;
        t.written_at = st.table_wall.get(num).copied().unwrap_or(now);
        let t = Arc::new(t);
        if let Some(l) = v.levels.get_mut(*level as usize) {
            l.push(t);
        } else {
            return Err(super::codec::corrupt(
                &dir.join(manifest::FILE),
                0,
                format!("table {num} at level {level}"),
            ));
        }
    }
    for num in &st.vlogs {
        v.vlogs
            .insert(*num, Arc::new(VlogFile::open(fs.clone(), dir, *num, pin)?));
    }
    Ok(v)
}

fn max_file_number(st: &manifest::State) -> u64 {
    let t = st.tables.keys().max().copied().unwrap_or(0);
    let v = st.vlogs.iter().max().copied().unwrap_or(0);
    t.max(v)
}

fn parse_num(name: &str, suffix: &str) -> Option<u64> {
    name.strip_suffix(suffix)?.parse().ok()
}

/// Removes files the manifest does not reference: the live set comes from
/// the manifest, never from file names.
fn remove_unreferenced(
    fs: &dyn FileSystem,
    dir: &Path,
    st: &manifest::State,
) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for name in fs.list(dir).map_err(io_err(dir))? {
        let stale = if let Some(n) = parse_num(&name, ".sst") {
            !st.tables.contains_key(&n)
        } else if let Some(n) = parse_num(&name, ".vlog") {
            !st.vlogs.contains(&n)
        } else if let Some(seg) = wal::parse_segment(&name) {
            seg < st.wal_floor
        } else {
            name.ends_with(".tmp")
        };
        if stale {
            let path = dir.join(&name);
            fs.remove(&path).map_err(io_err(&path))?;
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        fs.sync_dir(dir).map_err(io_err(dir))?;
    }
    Ok(removed)
}

fn build_catalog(topics: &BTreeMap<u32, TopicEntry>) -> Catalog {
    let mut cat = Catalog {
        topics: Vec::new(),
        by_name: HashMap::new(),
    };
    for (id, t) in topics {
        let i = *id as usize;
        if cat.topics.len() <= i {
            cat.topics.resize(i + 1, TopicEntry::default());
        }
        if let Some(slot) = cat.topics.get_mut(i) {
            *slot = t.clone();
        }
        cat.by_name.insert(t.spec.name.clone(), *id);
    }
    cat
}

fn run_guarded(inner: &Arc<Inner>, what: &'static str, body: fn(&Arc<Inner>)) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(inner)));
    if r.is_err() {
        inner.poison_panic(what);
    }
}

/// Starts the flush, compaction and WAL sync threads.
pub fn spawn_threads(inner: &Arc<Inner>) -> Result<Vec<std::thread::JoinHandle<()>>> {
    let mut out = Vec::new();
    let mut spawn = |name: &str, what: &'static str, body: fn(&Arc<Inner>)| -> Result<()> {
        let i = inner.clone();
        let h = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || run_guarded(&i, what, body))
            .map_err(|e| Error::Io {
                path: PathBuf::from(name),
                source: e,
            })?;
        out.push(h);
        Ok(())
    };
    if inner.sync_interval().is_some() {
        spawn("motedb-sync", "wal sync thread", sync_loop)?;
    }
    if inner.opts.tuning.background {
        spawn("motedb-flush", "flush thread", flush_loop)?;
        spawn("motedb-compact", "compaction thread", compaction_loop)?;
    }
    Ok(out)
}

fn sync_loop(inner: &Arc<Inner>) {
    let Some(interval) = inner.sync_interval() else {
        return;
    };
    let fsync = matches!(inner.opts.durability, Durability::Periodic(_));
    // Keeps writing the WAL out after a failure elsewhere: what the buffer
    // holds is still worth keeping. Stops once the store is poisoned.
    while !inner.stopping() && !inner.poison.is_set() {
        inner.pause(interval.min(Duration::from_millis(200)));
        if inner.stalled().is_some() {
            continue;
        }
        let r = inner.write_out_wal(fsync);
        let _ = inner.write_path_failed("periodic WAL sync", r);
    }
}

fn flush_loop(inner: &Arc<Inner>) {
    let mut failures = 0u32;
    while !inner.stopping() {
        if inner.poison.is_set() {
            inner.wait(Duration::from_millis(100));
            continue;
        }
        let r = if inner.stalled().is_some() {
            inner.try_resume().map(|_| ())
        } else if inner.snapshot().imm.is_empty() {
            inner.wait(Duration::from_millis(100));
            continue;
        } else {
            inner.flush_oldest()
        };
        match r {
            Ok(()) => failures = 0,
            Err(e) => {
                inner.background_failed("flush", &e);
                failures = failures.saturating_add(1);
                inner.pause(Inner::backoff(failures));
            }
        }
        inner.notify();
    }
}

fn compaction_loop(inner: &Arc<Inner>) {
    let mut failures = 0u32;
    while !inner.stopping() {
        if !inner.poison.is_set() {
            match inner.maintain_once() {
                Ok(true) => {
                    failures = 0;
                    inner.notify();
                    continue;
                }
                Ok(false) => failures = 0,
                Err(e) => {
                    inner.background_failed("compaction", &e);
                    failures = failures.saturating_add(1);
                    inner.pause(Inner::backoff(failures));
                    continue;
                }
            }
        }
        inner.wait(Duration::from_millis(200));
    }
}
