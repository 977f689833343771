//! The offline `motedb` CLI: inspect, decode, export and import stores.
//!
//! Exit codes: 0 success; 1 failure (I/O, corruption, engine error);
//! 2 bad usage; 3 incomplete (import skipped input, verify or cat found bad
//! data); 4 not found or already exists (store, topic, target); 130 interrupted.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use motedb::cdr::{self, Schema};
use motedb::engine::{self, FileReport, Mark, Nanos, Options, Record, Store, TopicInfo};
use motedb::export::timearg::{format_time, format_unix, parse_time};
use motedb::export::{
    self, ExportControl, ExportError, ExportOptions, ImportOptions, McapCompression,
};
use motedb::places;
use motedb::remote;

#[path = "motedb/cat.rs"]
mod cat;
#[path = "motedb/check.rs"]
mod check;
#[path = "motedb/fleet.rs"]
mod fleet;
#[cfg(feature = "node")]
#[path = "motedb/keys.rs"]
mod keys;
#[path = "motedb/play.rs"]
mod play;
#[path = "motedb/show.rs"]
mod show;
#[path = "motedb/transfer.rs"]
mod transfer;

use cat::*;
use check::*;
use fleet::*;
use play::*;
use show::*;
use transfer::*;

#[derive(Parser)]
#[command(
    name = "motedb",
    version,
    about = "Inspect, decode, export and import motedb stores",
    after_help = "Exit codes: 0 ok; 1 failure; 2 bad usage; 3 incomplete (import skipped \
                  input, verify or cat found bad data); 4 not found or already exists; \
                  130 interrupted.\nTimes: RFC 3339 UTC, unix seconds, -30s (before the \
                  end), +10s (after the start)."
)]
struct Cli {
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    s3: S3Args,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Summary like `ros2 bag info`: size, duration, per topic counts and
    /// rates. Also takes an MCAP bag directory or .mcap file.
    Info { store: PathBuf },
    /// List topics with type and message count (of a store or a bag).
    Topics { store: PathBuf },
    /// Decode messages of a topic (from a store, a bag directory or an .mcap file).
    Cat(CatArgs),
    /// Export topics and a time range to a rosbag2 MCAP bag directory.
    Export(ExportArgs),
    /// Import a rosbag2 MCAP bag directory or .mcap file into a store.
    Import {
        store: PathBuf,
        bag: PathBuf,
        /// Only these topics (repeatable); default all.
        #[arg(long = "topic")]
        topics: Vec<String>,
    },
    /// Read every record and compare counts with the catalog, then read
    /// every file (table blocks, value-log entries, WAL records, manifest)
    /// and check every checksum, reported per file; --decode also decodes
    /// every message. Exit 3 when anything is wrong.
    Verify {
        store: PathBuf,
        /// Also decode every message with its stored definition.
        #[arg(long)]
        decode: bool,
    },
    /// Compact the store until no level needs it.
    Compact { store: PathBuf },
    /// Disk usage by level, WAL and topic.
    Du { store: PathBuf },
    /// When the robot was within a radius of a point: the intervals from a
    /// pose topic (Odometry, PoseStamped, PoseWithCovarianceStamped).
    Near(NearArgs),
    /// Publish a store's or a bag's messages into ROS with their recorded timing
    /// (needs the ROS build: scripts/setup).
    Play(PlayArgs),
    /// Event marks (made with the node's ~/mark), oldest first.
    Marks {
        store: PathBuf,
        /// Only marks carrying this tag.
        #[arg(long)]
        tag: Option<String>,
    },
    /// Upload a store (also one being recorded) to s3://bucket/prefix as a
    /// consistent copy that every read command can open in place; run
    /// again to resume or update.
    Push(PushArgs),
    /// Stores in object storage.
    Fleet {
        #[command(subcommand)]
        cmd: FleetCmd,
    },
    /// Print the full ros2msg definition of a type from installed .msg files.
    Msgdef {
        /// e.g. sensor_msgs/msg/Imu
        type_name: String,
        /// Install prefixes; default: AMENT_PREFIX_PATH.
        #[arg(long = "prefix")]
        prefixes: Vec<PathBuf>,
    },
}

#[derive(Args)]
struct Range {
    /// RFC 3339 UTC, unix seconds, -30s (before the end) or +10s (after the start).
    #[arg(long, allow_hyphen_values = true)]
    start: Option<String>,
    /// Exclusive; same forms as --start.
    #[arg(long, allow_hyphen_values = true)]
    end: Option<String>,
}

#[derive(Args)]
struct PlayArgs {
    /// A store, a rosbag2 MCAP bag directory or an .mcap file (a bag is
    /// read into a scratch store first, removed at exit).
    input: PathBuf,
    /// Only these topics (repeatable); default all.
    #[arg(long = "topic")]
    topics: Vec<String>,
    /// Speed: 2 plays twice as fast (> 0).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    rate: f64,
    /// Start again from the first message at the end, until stopped.
    #[arg(long = "loop", conflicts_with = "follow")]
    repeat: bool,
    /// At the end, keep playing what a node records into the store, until
    /// stopped (a store only).
    #[arg(long)]
    follow: bool,
    /// Publish /clock (the replayed log time) at HZ times a second (40
    /// when no HZ is given).
    #[arg(long, num_args = 0..=1, default_missing_value = "40", allow_hyphen_values = true)]
    clock: Option<f64>,
    /// Publish recorded topic FROM as TO (repeatable), e.g. /scan:=/scan_replay.
    #[arg(long = "remap", value_name = "FROM:=TO")]
    remaps: Vec<String>,
    /// Start paused: resume with ~/resume, ~/toggle_paused or the space bar.
    #[arg(long)]
    start_paused: bool,
    /// YAML map from topic to QoS policies (history, depth, reliability,
    /// durability), as rosbag2's file.
    #[arg(long)]
    qos_profile_overrides_path: Option<PathBuf>,
    /// The player's node name (its services are ~/pause, ~/resume, ...).
    #[arg(long, default_value = "motedb_player")]
    node_name: String,
    /// No space-bar and arrow-key control on a terminal.
    #[arg(long)]
    disable_keyboard_controls: bool,
    /// Where a bag's scratch store goes; default the temporary directory.
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Seconds to wait after the publishers are up, before the first message.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    delay: f64,
    /// Wait up to this many seconds until every topic has a subscriber.
    #[arg(long, allow_hyphen_values = true)]
    wait_for_subscribers: Option<f64>,
    /// Payload bytes read ahead at most, e.g. 256MiB.
    #[arg(long, default_value = "256MiB")]
    read_ahead: String,
    /// Milliseconds behind schedule after which a message counts as late.
    #[arg(long, default_value_t = 10.0, allow_hyphen_values = true)]
    late_after_ms: f64,
    #[command(flatten)]
    range: Range,
}

#[derive(Args)]
struct NearArgs {
    store: PathBuf,
    #[arg(long, allow_hyphen_values = true)]
    x: f64,
    #[arg(long, allow_hyphen_values = true)]
    y: f64,
    /// With --z the distance is 3D, else in the x-y plane.
    #[arg(long, allow_hyphen_values = true)]
    z: Option<f64>,
    /// Metres, > 0.
    #[arg(long, allow_hyphen_values = true)]
    radius: f64,
    /// Default: the first pose topic by name.
    #[arg(long)]
    pose_topic: Option<String>,
    /// The poses' header.frame_id; needed when the topic has several.
    #[arg(long)]
    frame: Option<String>,
    /// Topics whose messages inside the intervals are counted (and
    /// exported with --export; default there: every topic). Repeatable.
    #[arg(long = "topic")]
    topics: Vec<String>,
    /// Write the messages inside the intervals as one rosbag2 MCAP bag
    /// (a new directory).
    #[arg(long)]
    export: Option<PathBuf>,
    #[command(flatten)]
    range: Range,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Yaml,
    Json,
}

#[derive(Args)]
struct CatArgs {
    /// Store directory, or an .mcap file.
    source: PathBuf,
    /// One or more topics; their messages come merged in log-time order.
    #[arg(required = true, num_args = 1..)]
    topics: Vec<String>,
    #[command(flatten)]
    range: Range,
    #[arg(long)]
    limit: Option<u64>,
    #[arg(long, value_enum, default_value = "yaml")]
    format: Format,
    /// Show at most N elements of each array.
    #[arg(long, value_name = "N")]
    truncate: Option<usize>,
}

#[derive(Args)]
struct ExportArgs {
    /// A store directory or s3://bucket/prefix.
    store: PathBuf,
    /// Bag directory to create (must not exist).
    output: PathBuf,
    /// Only these topics (repeatable); default all.
    #[arg(long = "topic")]
    topics: Vec<String>,
    #[command(flatten)]
    range: Range,
    /// zstd, lz4 or none.
    #[arg(long, default_value = "zstd")]
    compression: McapCompression,
    /// Split into files of about this size, e.g. 100MiB (like ros2 bag record -b).
    #[arg(long)]
    split_size: Option<String>,
    /// Split into files spanning this much time, e.g. 60s (like ros2 bag record -d).
    #[arg(long)]
    split_duration: Option<String>,
    /// Export these stores too, into the same bag (repeatable): each
    /// store's topics are then named /<store's last path segment>/<topic>.
    #[arg(long, value_name = "STORE")]
    merge: Vec<PathBuf>,
}

/// A CLI failure: message plus exit code.
struct Fail {
    code: u8,
    msg: String,
}

type CliResult = Result<u8, Fail>;

fn fail(code: u8, msg: impl Into<String>) -> Fail {
    Fail {
        code,
        msg: msg.into(),
    }
}

impl From<engine::Error> for Fail {
    fn from(e: engine::Error) -> Fail {
        fail(1, e.to_string())
    }
}

impl From<ExportError> for Fail {
    fn from(e: ExportError) -> Fail {
        let code = match e {
            ExportError::TargetExists(_) | ExportError::UnknownTopic(_) => 4,
            ExportError::Cancelled => 130,
            ExportError::InvalidRange { .. } => 2,
            _ => 1,
        };
        fail(code, e.to_string())
    }
}

fn main() -> ExitCode {
    // `motedb info ... | head` ends quietly when the reader goes, as other
    // command-line tools do, instead of a panic on the closed pipe.
    // SAFETY: setting a signal's disposition to the default before any
    // thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = run(&cli);
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("motedb: {}", f.msg);
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: &Cli) -> CliResult {
    let json = cli.json;
    set_s3(&cli.s3)?;
    match &cli.cmd {
        Cmd::Info { store } if export::is_bag(store) => bag_info(store, json),
        Cmd::Info { store } => info(&open_read(store)?, store, json),
        Cmd::Topics { store } if export::is_bag(store) => bag_topics(store, json),
        Cmd::Topics { store } => topics(&open_read(store)?, json),
        Cmd::Cat(args) => cat(args, json),
        Cmd::Export(args) => export_cmd(args, json),
        Cmd::Import { store, bag, topics } => import_cmd(store, bag, topics, json),
        Cmd::Verify { store, decode } if remote::is_remote(store) => {
            verify_remote(store, *decode, json)
        }
        Cmd::Verify { store, decode } => verify(&open_read(store)?, Vec::new(), *decode, json),
        Cmd::Compact { store } => compact(store, json),
        Cmd::Du { store } => du(&open_read(store)?, json),
        Cmd::Near(args) => near(args, json),
        Cmd::Play(args) => play(args, json),
        Cmd::Marks { store, tag } => marks(&open_read(store)?, tag.as_deref(), json),
        Cmd::Push(args) => push_cmd(args, json),
        Cmd::Fleet { cmd } => fleet_cmd(cmd, json),
        Cmd::Msgdef {
            type_name,
            prefixes,
        } => msgdef(type_name, prefixes),
    }
}

/// Opens for reading only: no lock taken, nothing written (no MANIFEST
/// rewrite, no torn WAL tail cut, no compaction), so a read command works on
/// a read-only mount, on a store a node is recording into (a snapshot of
/// what is durable now), and inspects exactly what is on disk.
fn open_read(path: &Path) -> Result<Store, Fail> {
    if remote::is_remote(path) {
        return Ok(open_remote(path)?.0);
    }
    require_store(path)?;
    if let Some(pid) = Store::writer_pid(path) {
        eprintln!(
            "motedb: store is held by a running process (pid {pid}); reading a read-only snapshot"
        );
    }
    Ok(Store::open_read_only(path)?)
}

fn open_write(path: &Path) -> Result<Store, Fail> {
    match Store::open(path, Options::default()) {
        Err(engine::Error::Locked { pid, .. }) => Err(fail(
            1,
            format!(
                "store {} is held by a running process (pid {pid:?}); stop the node first, \
                 this command needs write access",
                path.display()
            ),
        )),
        other => Ok(other?),
    }
}

fn require_store(path: &Path) -> Result<(), Fail> {
    // A store is a directory holding a MANIFEST (docs/format.md). Checking
    // first keeps read commands from creating a store in a wrong directory.
    if path.join("MANIFEST").is_file() {
        return Ok(());
    }
    Err(fail(
        4,
        format!(
            "no store at {}: pass the directory a motedb node records into",
            path.display()
        ),
    ))
}
