//! The storage engine: WAL, memtable, SSTables, value log, leveled compaction.
//! No ROS, no MCAP, no async runtime in here.
//!
//! PUBLIC API CONTRACT (used by export/, node/ and the CLI). The bodies are
//! placeholders until the engine lands; signatures may grow but not change
//! meaning without updating every caller.

mod change;
mod codec;
pub mod compaction;
mod compress;
mod db;
mod error;
pub mod fs;
mod health;
mod manifest;
mod marks;
mod memtable;
mod merge;
mod read;
mod recover;
mod retention;
mod sstable;
mod types;
mod verify;
mod version;
mod vlog;
mod wal;
mod write;

pub use compress::TopicCodecStats;
pub use error::{Error, Result};
pub use marks::{
    Mark, NewMark, MAX_LABEL_BYTES, MAX_MARKS, MAX_PIN_AHEAD, MAX_TAGS, MAX_TAG_BYTES,
};
pub use types::Codec;
pub use verify::{FileKind, FileReport, VerifyReport};
pub use wal::TornTail;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Dense id the store assigns to a topic name.
pub type TopicId = u32;

/// Nanoseconds since the unix epoch (or sim time).
pub type Nanos = u64;

/// What a topic is: stored once in the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TopicSpec {
    /// e.g. `/scan`
    pub name: String,
    /// e.g. `sensor_msgs/msg/LaserScan`
    pub type_name: String,
    /// `cdr`
    pub serialization_format: String,
    /// ros2msg text with dependencies appended (rosbag2 / MCAP convention).
    pub definition: String,
    /// Offered QoS profiles, rosbag2 YAML text (may be empty).
    pub offered_qos: String,
    /// `RIHS01_<64 hex>` as the publishers announce it on the graph
    /// (rosbag2's `type_description_hash`); empty when none did.
    pub type_hash: String,
}

/// Catalog entry plus live statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    pub id: TopicId,
    pub spec: TopicSpec,
    pub message_count: u64,
    /// Payload bytes as published.
    pub size_bytes: u64,
    /// The same payloads as stored: value-log payloads after compression
    /// (table blocks compress inline payloads further).
    pub stored_bytes: u64,
    /// Value-log payloads stored lz4 and zstd encoded (the rest of the
    /// topic's payloads are stored raw).
    pub lz4_payloads: u64,
    pub zstd_payloads: u64,
    /// What value-log compression did for this topic since the store was
    /// opened; None when no large payload was written since.
    pub value_codec: Option<TopicCodecStats>,
    /// None when the topic holds no message.
    pub first_time: Option<Nanos>,
    pub last_time: Option<Nanos>,
    /// Messages lost before reaching the store (reported by the writer).
    pub dropped_count: u64,
    /// Publisher sequence numbers that never arrived (reported by the writer).
    pub gap_count: u64,
}

/// One stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub topic: TopicId,
    pub log_time: Nanos,
    /// 0 when unknown.
    pub publish_time: Nanos,
    /// Per-topic sequence assigned by the store, starting at 0.
    pub sequence: u64,
    pub payload: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync before `append` returns.
    Sync,
    /// Group commit: fsync at most this long after the write.
    Periodic(Duration),
    /// Leave it to the OS.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Lz4,
    Zstd,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Retention {
    /// 0: unlimited.
    pub max_bytes: u64,
    /// Most bytes pinned marks may keep from retention (tables overlapping
    /// a pinned window and the value-log files they point into); beyond
    /// it the oldest pin is released. 0: half of `max_bytes`, unlimited
    /// when that is 0 too. Never more than `max_bytes`.
    pub pinned_max_bytes: u64,
    /// None: unlimited. Age is wall-clock time since a table's newest
    /// record was written (`Tuning::clock`), not log time: a sim-time
    /// reset or a far-future stamp cannot drop live data.
    pub max_age: Option<Duration>,
}

impl Retention {
    /// The bytes pins may keep: `pinned_max_bytes`, else half of
    /// `max_bytes`, at most `max_bytes`; u64::MAX when neither is set.
    pub fn pin_budget(&self) -> u64 {
        match (self.pinned_max_bytes, self.max_bytes) {
            (0, 0) => u64::MAX,
            (0, m) => m / 2,
            (p, 0) => p,
            (p, m) => p.min(m),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub durability: Durability,
    /// Memory budget of all memtables (active plus waiting for flush); the
    /// active one is frozen at half of it.
    pub memtable_bytes: usize,
    /// Payloads of at least this many bytes go to the value log.
    pub value_threshold: usize,
    pub block_size: usize,
    pub compression: Compression,
    /// Codec tried on value-log payloads, per topic, kept while it saves
    /// at least 1/8 (`Codec::Raw`: never).
    pub value_compression: Codec,
    pub retention: Retention,
    /// Every file operation goes through this (tests inject `fs::FaultFs`).
    pub fs: Arc<dyn fs::FileSystem>,
    pub tuning: Tuning,
    /// Record in the manifest which files retention drops (`LiveFiles::
    /// dropped`), so an offloaded copy keeps them (the node sets it with
    /// `offload.url`).
    pub remember_dropped: bool,
    /// Asked before retention drops a file, by name: false keeps it (and,
    /// for a table, every newer one) for now. The node's
    /// `retention.require_offloaded`: only files already offloaded go.
    pub retention_guard: Option<RetentionGuard>,
}

/// `Options::retention_guard`: may retention drop this file (by name)?
#[derive(Clone)]
pub struct RetentionGuard(pub Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl std::fmt::Debug for RetentionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetentionGuard")
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Periodic(Duration::from_millis(100)),
            memtable_bytes: 64 << 20,
            value_threshold: 64 << 10,
            block_size: 64 << 10,
            compression: Compression::Lz4,
            value_compression: Codec::Zstd,
            retention: Retention::default(),
            fs: Arc::new(fs::RealFs),
            tuning: Tuning::default(),
            remember_dropped: false,
            retention_guard: None,
        }
    }
}

/// Knobs most users never touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuning {
    pub compaction: compaction::Config,
    /// L0 table count at which writers are slowed down.
    pub l0_slowdown: usize,
    /// L0 table count at which writers stop.
    pub l0_stop: usize,
    /// How long a stopped writer waits before `Error::WriteStopped`.
    pub stop_timeout: Duration,
    /// Value-log files are sealed at this size.
    pub vlog_file_bytes: u64,
    /// Buffered WAL bytes that trigger a write to the file.
    pub wal_buffer_bytes: usize,
    /// Run flush and compaction threads (false: only on explicit calls).
    pub background: bool,
    /// Wall-clock time; `max_age` retention measures table age with it.
    pub clock: Clock,
}

/// Wall-clock nanoseconds since the unix epoch. Tests inject their own.
#[derive(Clone)]
pub struct Clock(pub Arc<dyn Fn() -> u64 + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        }))
    }

    pub fn now(&self) -> u64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl PartialEq for Clock {
    fn eq(&self, other: &Clock) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Clock {}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            compaction: compaction::Config::default(),
            l0_slowdown: 8,
            l0_stop: 16,
            stop_timeout: Duration::from_secs(30),
            vlog_file_bytes: 256 << 20,
            wal_buffer_bytes: 1 << 20,
            background: true,
            clock: Clock::system(),
        }
    }
}

/// What `open` found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes cut from torn WAL tails.
    pub wal_dropped_bytes: u64,
    /// Every cut: segment, offset, bytes and what was found there.
    pub wal_truncated: Vec<TornTail>,
    /// Bytes of a torn last manifest batch (never acknowledged).
    pub manifest_dropped_bytes: u64,
    /// WAL records replayed into the memtable.
    pub replayed_records: u64,
    /// WAL records cut with a torn tail because an unsynced record's
    /// value-log payload never became durable (replay stops there).
    pub dropped_records: u64,
    /// Files no version referenced, removed.
    pub removed_files: Vec<PathBuf>,
}

/// Backpressure state seen by writers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteState {
    Normal,
    SlowDown,
    Stop,
}

/// A scan over `[start, end)` of some topics, merged in log-time order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanRequest {
    /// Empty: all topics.
    pub topics: Vec<TopicId>,
    pub start: Nanos,
    /// Exclusive; `Nanos::MAX` for open-ended.
    pub end: Nanos,
    pub newest_first: bool,
    /// At least one record is returned per page when any remain, even if it
    /// alone exceeds `max_bytes`.
    pub max_messages: usize,
    pub max_bytes: u64,
    /// `next_cursor` of the previous page, as returned (opaque text).
    pub cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanPage {
    pub records: Vec<Record>,
    /// None when the range is exhausted.
    pub next_cursor: Option<String>,
}

/// Files and bytes in one level.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LevelHealth {
    pub files: u64,
    pub bytes: u64,
}

/// A snapshot of the store's health (atomics read once).
#[derive(Clone, Debug)]
pub struct Health {
    pub write_state: WriteState,
    pub poisoned: bool,
    pub last_error: Option<String>,
    /// Why writes are stopped until a retry succeeds (a failed write, e.g.
    /// a full disk); they resume by themselves.
    pub write_stopped: Option<String>,
    /// Tables moved out of the tree after a checksum error: file and why.
    pub quarantined: Vec<String>,
    /// What recovery found when the store was opened (torn tails cut).
    pub recovery: RecoveryReport,
    pub levels: Vec<LevelHealth>,
    pub l0_files: u64,
    pub l0_slowdown_trigger: u64,
    pub pending_compaction_bytes: u64,
    pub compactions_completed: u64,
    pub compactions_failed: u64,
    pub bytes_ingested: u64,
    pub wal_bytes_written: u64,
    pub flush_bytes_written: u64,
    pub compaction_bytes_written: u64,
    pub vlog_bytes_written: u64,
    /// (flush + compaction + vlog) / ingested.
    pub write_amplification: f64,
    pub disk_bytes: u64,
    /// 0: no quota.
    pub quota_bytes: u64,
    pub wal_bytes: u64,
    pub messages_stored: u64,
    pub retention_dropped_files: u64,
    pub retention_dropped_bytes: u64,
    pub retention_dropped_messages: u64,
    /// Bytes pinned marks keep from retention now, and the most they
    /// may keep (`Retention::pin_budget`; u64::MAX: no limit).
    pub pinned_bytes: u64,
    pub pin_budget: u64,
    /// Marks in the store.
    pub marks: u64,
    /// Pins retention released since open (over the budget), and the last.
    pub pins_released: u64,
    pub last_pin_released: Option<String>,
    /// Value-log compression per topic name since the store was opened
    /// (topics that wrote a large payload since).
    pub value_compression: Vec<(String, TopicCodecStats)>,
}

/// An open store. Cheap to share behind `Arc`; all methods take `&self`.
pub struct Store {
    inner: Arc<db::Inner>,
    threads: parking_lot::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// The files a store's manifest bytes reference, by name: what a copy of
/// the store needs besides the manifest itself and the WAL segments
/// numbered `wal_floor` or above (offload, `motedb push`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveFiles {
    pub tables: Vec<String>,
    pub vlogs: Vec<String>,
    pub wal_floor: u64,
    /// Files retention dropped (`Options::remember_dropped`), by the
    /// names they had (`NNNNNN.sst` or `NNNNNN.vlog`: both are given).
    pub dropped: Vec<String>,
}

/// The manifest's file name in a store directory.
pub const MANIFEST_FILE: &str = manifest::FILE;

/// Reads manifest bytes (a committed prefix of a live store's MANIFEST is
/// valid: a torn last batch is dropped as on open).
pub fn live_files(manifest_bytes: &[u8]) -> Result<LiveFiles> {
    let (st, _, _) = manifest::parse(manifest_bytes, Path::new(manifest::FILE))?;
    let name = |p: PathBuf| p.to_string_lossy().into_owned();
    Ok(LiveFiles {
        tables: st
            .tables
            .keys()
            .map(|n| name(sstable::table_path(Path::new(""), *n)))
            .collect(),
        vlogs: st
            .vlogs
            .iter()
            .map(|n| name(vlog::vlog_path(Path::new(""), *n)))
            .collect(),
        wal_floor: st.wal_floor,
        dropped: st
            .dropped
            .iter()
            .flat_map(|n| {
                [
                    name(sstable::table_path(Path::new(""), *n)),
                    name(vlog::vlog_path(Path::new(""), *n)),
                ]
            })
            .collect(),
    })
}

/// Manifest bytes for a copy of the store that also holds files gone from
/// it: `tables` (file numbers) at level 0 and value-log files `vlogs`, as
/// one snapshot (the archive of an offloaded store).
pub fn manifest_with(manifest_bytes: &[u8], tables: &[u64], vlogs: &[u64]) -> Result<Vec<u8>> {
    let (mut st, _, _) = manifest::parse(manifest_bytes, Path::new(manifest::FILE))?;
    for n in tables {
        st.tables.entry(*n).or_insert(0);
    }
    st.vlogs.extend(vlogs.iter().copied());
    // A copy's readers need not know what was dropped where it came from.
    st.dropped.clear();
    st.features &= !manifest::FEATURE_DROPPED;
    Ok(manifest::snapshot_bytes(&st))
}

/// The segment number of a WAL file name (`wal-NNNNNN.log`).
pub fn wal_segment(name: &str) -> Option<u64> {
    wal::parse_segment(name)
}

impl Store {
    /// Opens (creating if missing) a store directory, locked against a second
    /// writer process.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        let inner = Arc::new(db::Inner::open(path.as_ref(), options, false)?);
        let threads = db::spawn_threads(&inner)?;
        Ok(Store {
            inner,
            threads: parking_lot::Mutex::new(threads),
        })
    }

    /// Opens a store that another process may hold for writing: no lock, no
    /// writes, a snapshot of what is durable now.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store> {
        Self::open_read_only_with(path, Options::default())
    }

    /// The pid of the process holding the store at `path` for writing
    /// (a node recording into it), asked without writing anything.
    pub fn writer_pid(path: impl AsRef<Path>) -> Option<u32> {
        fs::lock_holder(&path.as_ref().join(db::LOCK_FILE))
    }

    /// `open_read_only` with options (only `fs` and read settings matter).
    pub fn open_read_only_with(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        let path = path.as_ref();
        if !options.fs.exists(&path.join("MANIFEST")) {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no motedb store here"),
            });
        }
        // The writer may delete a file between our manifest read and its
        // open, or change the manifest before we listed the WAL (flush,
        // compaction, a new topic); a fresh start then succeeds.
        let mut attempt = 0;
        let inner = loop {
            match db::Inner::open(path, options.clone(), true) {
                Err(Error::Io { source, .. })
                    if matches!(
                        source.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::Interrupted
                    ) && attempt < 20 =>
                {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                r => break Arc::new(r?),
            }
        };
        Ok(Store {
            inner,
            threads: parking_lot::Mutex::new(Vec::new()),
        })
    }

    /// Reads every file the store references (each table block, index,
    /// bloom and footer; each value-log entry; each WAL record; the
    /// manifest) and checks every checksum; reports per file and never
    /// stops at the first bad one.
    pub fn verify(&self) -> Result<VerifyReport> {
        verify::verify(&self.inner)
    }

    /// What recovery found when this store was opened.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.inner.recovery.clone()
    }

    /// Adds a topic to the catalog, or returns the id it already has. A name
    /// registered before with another type is an error.
    pub fn register_topic(&self, spec: TopicSpec) -> Result<TopicId> {
        self.inner.register_topic(spec)
    }

    pub fn topics(&self) -> Vec<TopicInfo> {
        self.inner.topics()
    }

    pub fn topic_by_name(&self, name: &str) -> Option<TopicInfo> {
        self.inner
            .topics()
            .into_iter()
            .find(|t| t.spec.name == name)
    }

    /// Appends one message; returns its sequence number.
    pub fn append(
        &self,
        topic: TopicId,
        log_time: Nanos,
        publish_time: Nanos,
        payload: &[u8],
    ) -> Result<u64> {
        self.inner.append(topic, log_time, publish_time, payload)
    }

    /// Adds to a topic's persistent dropped and gap counters.
    pub fn record_loss(&self, topic: TopicId, dropped: u64, gaps: u64) -> Result<()> {
        self.inner.record_loss(topic, dropped, gaps)
    }

    pub fn scan(&self, request: &ScanRequest) -> Result<ScanPage> {
        self.inner.scan(request)
    }

    /// Streams `[start, end)` of `topics` (empty: all) in log-time order
    /// over a snapshot; memory stays bounded.
    pub fn iter(
        &self,
        topics: &[TopicId],
        start: Nanos,
        end: Nanos,
        newest_first: bool,
    ) -> Result<Box<dyn Iterator<Item = Result<Record>> + Send>> {
        read::iter(&self.inner, topics, start, end, newest_first)
    }

    /// Newest record of `topic` with `log_time <= at`.
    pub fn latest(&self, topic: TopicId, at: Nanos) -> Result<Option<Record>> {
        self.inner.latest(topic, at)
    }

    pub fn write_state(&self) -> WriteState {
        self.inner.write_state()
    }

    /// The log-time ranges `(min, max)` that hold `topic`'s messages now:
    /// one per table and per memtable with some. Retention drops whole
    /// tables, so a message of `topic` whose time no range covers is gone
    /// (derived indexes prune themselves with this).
    pub fn topic_time_ranges(&self, topic: TopicId) -> Vec<(Nanos, Nanos)> {
        let sv = self.inner.snapshot();
        let tables = sv
            .version
            .tables()
            .filter_map(|(_, t)| t.meta.topics.get(&topic).copied());
        let mems = std::iter::once(&sv.active)
            .chain(sv.imm.iter())
            .filter_map(|m| m.topic_range(topic));
        tables
            .chain(mems)
            .filter(|r| r.count > 0)
            .map(|r| (r.min_time, r.max_time))
            .collect()
    }

    /// Files retention has dropped over the store's life: it moves exactly
    /// when retention dropped something.
    pub fn retention_dropped_files(&self) -> u64 {
        self.inner.retention_counters.lock().0
    }

    pub fn health(&self) -> Health {
        self.inner.health()
    }

    /// WAL positions for measuring time to durable: `(added, synced)`. A
    /// record appended before a call that returned `added = a` is durable
    /// once a later call returns `synced >= a`. (0, 0) when read-only.
    pub fn wal_positions(&self) -> (u64, u64) {
        self.inner
            .wal
            .as_ref()
            .map_or((0, 0), |w| (w.added_lsn(), w.synced_lsn()))
    }

    /// Pauses value-log compression (large payloads are stored raw and
    /// counted `busy`) until called with false: for a caller that falls
    /// behind its input.
    pub fn pause_compression(&self, paused: bool) {
        self.inner.codecs.set_paused(paused);
    }

    /// Makes every appended record durable (WAL fsync).
    pub fn sync(&self) -> Result<()> {
        self.inner.sync_all()
    }

    /// Flushes memtables to L0 and waits.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush_all()
    }

    /// Replaces the retention limits of an open store (the node's
    /// `retention.*` parameters at run time). The background thread applies
    /// them at once: files beyond a lower limit are dropped on its next pass.
    pub fn set_retention(&self, retention: Retention) -> Result<()> {
        self.inner.check_writable()?;
        *self.inner.retention.lock() = retention;
        self.inner.notify();
        Ok(())
    }

    /// Stores an event mark (fsynced in the manifest before it returns).
    pub fn add_mark(&self, mark: NewMark) -> Result<Mark> {
        self.inner.add_mark(mark)
    }

    /// Every mark, oldest first.
    pub fn marks(&self) -> Vec<Mark> {
        self.inner.marks()
    }

    /// Unpins mark `id` (retention may then drop its window): the mark
    /// now, and whether it was pinned before.
    pub fn unpin(&self, id: u64) -> Result<(Mark, bool)> {
        self.inner.unpin(id)
    }

    /// Compacts until no level needs it, and waits.
    pub fn compact(&self) -> Result<()> {
        self.inner.compact_all()
    }

    /// Flushes, syncs and stops background threads.
    pub fn close(self) -> Result<()> {
        let r = if self.inner.read_only {
            Ok(())
        } else {
            self.inner.flush_all().and_then(|()| self.inner.sync_all())
        };
        self.stop_threads();
        r
    }

    fn stop_threads(&self) {
        self.inner.shutdown();
        for t in self.threads.lock().drain(..) {
            if t.join().is_err() {
                self.inner.poison_panic("background thread");
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop_threads();
        self.inner.best_effort_sync();
    }
}
#[cfg(test)]
mod tests;
