//! MCAP / rosbag2 export and import over the engine's public API.
//!
//! Export writes a rosbag2 bag directory (`metadata.yaml`, format version 9,
//! storage `mcap`, plus `<name>_<n>.mcap` files) following the MCAP `ros2`
//! profile: schemas `ros2msg` named `pkg/msg/Type`, channels `cdr` with
//! `offered_qos_profiles` metadata, chunked with indexes and statistics.
//! Import reads such bags (or a bare `.mcap`) back into a store.

mod bag;
mod baginfo;
mod import;
mod marks;
mod mcap_read;
pub mod metadata;
pub mod timearg;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::engine::{Nanos, Store, TopicId};

pub use baginfo::{bag_info, is_bag, BagInfo, BagTopic};
pub use import::{import_bag, ChannelInfo, ImportOptions, ImportReport, Skipped};
pub use mcap_read::{import_mcap_file, import_mcap_records, MessageFn, MetadataFn};

pub type Result<T, E = ExportError> = std::result::Result<T, E>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum McapCompression {
    #[default]
    Zstd,
    Lz4,
    None,
}

impl std::str::FromStr for McapCompression {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "" | "zstd" => Ok(McapCompression::Zstd),
            "lz4" => Ok(McapCompression::Lz4),
            "none" => Ok(McapCompression::None),
            other => Err(format!(
                "unknown compression {other:?}: use zstd, lz4 or none"
            )),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Topic names; empty: all.
    pub topics: Vec<String>,
    /// Inclusive start, ns.
    pub start: u64,
    /// Exclusive end, ns; 0: open.
    pub end: u64,
    /// Bag directory to create; must not exist.
    pub output: PathBuf,
    /// Confine `output` to this directory: `output` is then a relative
    /// path of plain names, resolved beneath it without following symbolic
    /// links (the node's `export.directory`). None: any path (the CLI).
    pub beneath: Option<PathBuf>,
    pub compression: McapCompression,
    /// Start a new file once the current one reaches this many bytes.
    pub split_bytes: Option<u64>,
    /// Start a new file once the current one spans this much log time.
    pub split_duration: Option<Duration>,
    /// Event marks written into every file as `motedb.mark` metadata
    /// records (`export_bag` fills them from the store: those whose window
    /// meets the exported range).
    pub marks: Vec<crate::engine::Mark>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    /// Absolute path of the bag directory.
    pub path: PathBuf,
    pub message_count: u64,
    /// All files of the bag, metadata.yaml included.
    pub size_bytes: u64,
    /// The MCAP files, absolute.
    pub files: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0} already exists; choose a new output name or remove it")]
    TargetExists(PathBuf),
    #[error("invalid output path {path}: {reason}")]
    InvalidOutput { path: PathBuf, reason: String },
    #[error("empty time range: start {start} is not before end {end}")]
    InvalidRange { start: u64, end: u64 },
    #[error("topic {0} is not in the store (see `motedb topics`)")]
    UnknownTopic(String),
    #[error("record refers to topic id {0} that is not being exported")]
    UnknownTopicId(TopicId),
    #[error("reading the store: {0}")]
    Store(#[from] crate::engine::Error),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing MCAP {path}: {source}")]
    Mcap {
        path: PathBuf,
        #[source]
        source: mcap::McapError,
    },
    #[error("reading MCAP {path}: {source}")]
    ReadMcap {
        path: PathBuf,
        #[source]
        source: mcap::McapError,
    },
    #[error("bad metadata {path}: {reason}")]
    Metadata { path: PathBuf, reason: String },
    #[error("{path} holds no .mcap file to import")]
    NothingToImport { path: PathBuf },
    #[error("export cancelled; nothing was left at the target")]
    Cancelled,
    #[error("{cause}; also failed to remove the partial bag {path}: {reason}")]
    Cleanup {
        cause: Box<ExportError>,
        path: PathBuf,
        reason: String,
    },
}

/// The MCAP schema encoding of a stored definition: `ros2idl` for the text
/// rosbag2 writes for types known only as IDL (sections headed by a `===`
/// line and `IDL: <type>`, kept as imported), else `ros2msg`.
pub fn schema_encoding(definition: &str) -> &'static str {
    let first = definition.lines().find(|l| !l.trim().is_empty());
    let second = definition
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .nth(1)
        .unwrap_or("");
    if first.is_some_and(|l| l.trim().len() >= 3 && l.trim().bytes().all(|b| b == b'='))
        && second.starts_with("IDL: ")
    {
        "ros2idl"
    } else {
        "ros2msg"
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Progress: messages and payload bytes so far.
pub type ProgressFn<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Optional hooks for long exports.
#[derive(Default, Clone, Copy)]
pub struct ExportControl<'a> {
    pub progress: Option<ProgressFn<'a>>,
    /// Set to stop the export; the partial bag is removed.
    pub cancel: Option<&'a AtomicBool>,
}

impl ExportControl<'_> {
    fn is_cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    }

    fn report(&self, messages: u64, bytes: u64) {
        if let Some(p) = self.progress {
            p(messages, bytes);
        }
    }
}

/// Exports `opts.topics` (all when empty) in `[start, end)` as a rosbag2
/// bag directory at `opts.output`.
pub fn export_bag(store: &Store, opts: &ExportOptions) -> Result<ExportSummary> {
    export_bag_with(store, opts, &ExportControl::default())
}

/// `export_bag` with progress reporting and cancellation.
pub fn export_bag_with(
    store: &Store,
    opts: &ExportOptions,
    ctl: &ExportControl<'_>,
) -> Result<ExportSummary> {
    if opts.end != 0 && opts.end <= opts.start {
        return Err(ExportError::InvalidRange {
            start: opts.start,
            end: opts.end,
        });
    }
    let topics = select_topics(store, &opts.topics)?;
    let ids: Vec<TopicId> = topics.iter().map(|t| t.id).collect();
    let end: Nanos = if opts.end == 0 { Nanos::MAX } else { opts.end };
    let records = store.iter(&ids, opts.start, end, false)?;
    let mut opts = opts.clone();
    opts.marks = store
        .marks()
        .into_iter()
        .filter(|m| m.overlaps(opts.start, end.saturating_sub(1)))
        .collect();
    bag::write_bag(&topics, records, &opts, ctl)
}

/// `export_bag_with` of several time windows `[start, end)` into one bag
/// (`motedb near --export`): `windows` oldest first and not overlapping,
/// with the marks that meet any of them; `opts.start` and `opts.end` are
/// not used.
pub fn export_windows(
    store: &Store,
    opts: &ExportOptions,
    windows: &[(Nanos, Nanos)],
    ctl: &ExportControl<'_>,
) -> Result<ExportSummary> {
    if let Some(w) = windows.windows(2).find(|w| w[1].0 < w[0].1) {
        return Err(ExportError::InvalidRange {
            start: w[1].0,
            end: w[0].1,
        });
    }
    let topics = select_topics(store, &opts.topics)?;
    let ids: Vec<TopicId> = topics.iter().map(|t| t.id).collect();
    let mut parts = Vec::with_capacity(windows.len());
    for &(start, end) in windows {
        parts.push(store.iter(&ids, start, end, false)?);
    }
    let mut opts = opts.clone();
    opts.marks = store
        .marks()
        .into_iter()
        .filter(|m| windows.iter().any(|&(s, e)| e > s && m.overlaps(s, e - 1)))
        .collect();
    bag::write_bag(&topics, parts.into_iter().flatten(), &opts, ctl)
}

/// Writes a bag from any record stream (log-time order) of `topics`:
/// the store-independent core of `export_bag`, also used by benchmarks.
pub fn export_stream<I>(
    topics: &[(TopicId, crate::engine::TopicSpec)],
    records: I,
    opts: &ExportOptions,
    ctl: &ExportControl<'_>,
) -> Result<ExportSummary>
where
    I: Iterator<Item = crate::engine::Result<crate::engine::Record>>,
{
    let topics: Vec<bag::ExportTopic> = topics
        .iter()
        .map(|(id, spec)| bag::ExportTopic {
            id: *id,
            spec: spec.clone(),
        })
        .collect();
    bag::write_bag(&topics, records, opts, ctl)
}

fn select_topics(store: &Store, names: &[String]) -> Result<Vec<bag::ExportTopic>> {
    let infos = if names.is_empty() {
        store.topics()
    } else {
        let mut seen = std::collections::BTreeSet::new();
        names
            .iter()
            .filter(|n| seen.insert(n.as_str()))
            .map(|n| {
                store
                    .topic_by_name(n)
                    .ok_or_else(|| ExportError::UnknownTopic(n.clone()))
            })
            .collect::<Result<Vec<_>>>()?
    };
    Ok(infos
        .into_iter()
        .map(|i| bag::ExportTopic {
            id: i.id,
            spec: with_definition(i.spec),
        })
        .collect())
}

/// A topic recorded without its definition gets it from the installed
/// `.msg` files on AMENT_PREFIX_PATH when they are there (as rosbag2 does),
/// so readers can decode the bag.
fn with_definition(mut spec: crate::engine::TopicSpec) -> crate::engine::TopicSpec {
    if spec.definition.trim().is_empty() {
        if let Ok(value) = std::env::var("AMENT_PREFIX_PATH") {
            let prefixes = crate::cdr::definition::prefixes_from_env_value(&value);
            if let Ok(text) = crate::cdr::definition::resolve(&spec.type_name, &prefixes) {
                spec.definition = text;
            }
        }
    }
    spec
}
