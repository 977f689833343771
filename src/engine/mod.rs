//! The storage engine: WAL, memtable, SSTables, value log, leveled compaction.
//! No ROS, no MCAP, no async runtime in here.
//!
//! PUBLIC API CONTRACT (used by export/, node/ and the CLI). The bodies are
//! placeholders until the engine lands; signatures may grow but not change
//! meaning without updating every caller.

mod error;

pub use error::{Error, Result};

use std::path::Path;
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
}

/// Catalog entry plus live statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    pub id: TopicId,
    pub spec: TopicSpec,
    pub message_count: u64,
    pub size_bytes: u64,
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
    /// None: unlimited.
    pub max_age: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub durability: Durability,
    pub memtable_bytes: usize,
    /// Payloads of at least this many bytes go to the value log.
    pub value_threshold: usize,
    pub block_size: usize,
    pub compression: Compression,
    pub retention: Retention,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Periodic(Duration::from_millis(100)),
            memtable_bytes: 64 << 20,
            value_threshold: 64 << 10,
            block_size: 64 << 10,
            compression: Compression::Lz4,
            retention: Retention::default(),
        }
    }
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
}

/// An open store. Cheap to share behind `Arc`; all methods take `&self`.
pub struct Store {
    _private: (),
}

impl Store {
    /// Opens (creating if missing) a store directory, locked against a second
    /// writer process.
    pub fn open(_path: impl AsRef<Path>, _options: Options) -> Result<Store> {
        todo!("engine")
    }

    /// Opens a store that another process may hold for writing: no lock, no
    /// writes, a snapshot of what is durable now.
    pub fn open_read_only(_path: impl AsRef<Path>) -> Result<Store> {
        todo!("engine")
    }

    /// Adds a topic to the catalog, or returns the id it already has. A name
    /// registered before with another type is an error.
    pub fn register_topic(&self, _spec: TopicSpec) -> Result<TopicId> {
        todo!("engine")
    }

    pub fn topics(&self) -> Vec<TopicInfo> {
        todo!("engine")
    }

    pub fn topic_by_name(&self, _name: &str) -> Option<TopicInfo> {
        todo!("engine")
    }

    /// Appends one message; returns its sequence number.
    pub fn append(
        &self,
        _topic: TopicId,
        _log_time: Nanos,
        _publish_time: Nanos,
        _payload: &[u8],
    ) -> Result<u64> {
        todo!("engine")
    }

    /// Adds to a topic's persistent dropped and gap counters.
    pub fn record_loss(&self, _topic: TopicId, _dropped: u64, _gaps: u64) -> Result<()> {
        todo!("engine")
    }

    pub fn scan(&self, _request: &ScanRequest) -> Result<ScanPage> {
        todo!("engine")
    }

    /// Streams `[start, end)` of `topics` (empty: all) in log-time order
    /// over a snapshot; memory stays bounded.
    pub fn iter(
        &self,
        _topics: &[TopicId],
        _start: Nanos,
        _end: Nanos,
        _newest_first: bool,
    ) -> Result<Box<dyn Iterator<Item = Result<Record>> + Send>> {
        todo!("engine")
    }

    /// Newest record of `topic` with `log_time <= at`.
    pub fn latest(&self, _topic: TopicId, _at: Nanos) -> Result<Option<Record>> {
        todo!("engine")
    }

    pub fn write_state(&self) -> WriteState {
        todo!("engine")
    }

    pub fn health(&self) -> Health {
        todo!("engine")
    }

    /// Makes every appended record durable (WAL fsync).
    pub fn sync(&self) -> Result<()> {
        todo!("engine")
    }

    /// Flushes memtables to L0 and waits.
    pub fn flush(&self) -> Result<()> {
        todo!("engine")
    }

    /// Compacts until no level needs it, and waits.
    pub fn compact(&self) -> Result<()> {
        todo!("engine")
    }

    /// Flushes, syncs and stops background threads.
    pub fn close(self) -> Result<()> {
        todo!("engine")
    }
}
