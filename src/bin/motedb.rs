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
use motedb::engine::{self, Nanos, Options, Record, Store, TopicInfo};
use motedb::export::timearg::{format_time, format_unix, parse_time};
use motedb::export::{
    self, ExportControl, ExportError, ExportOptions, ImportOptions, McapCompression,
};

#[derive(Parser)]
#[command(
    name = "motedb",
    version,
    about = "Inspect, decode, export and import motedb stores"
)]
struct Cli {
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Summary like `ros2 bag info`: size, duration, per topic counts and rates.
    Info { store: PathBuf },
    /// List topics with type and message count.
    Topics { store: PathBuf },
    /// Decode messages of a topic (from a store or an .mcap file).
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
    /// Read every record and check counts and decodability.
    /// (The engine has no block-level verify API yet: this reads everything
    /// through the public iterator, whose reads check block CRCs.)
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

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Yaml,
    Json,
}

#[derive(Args)]
struct CatArgs {
    /// Store directory, or an .mcap file.
    source: PathBuf,
    topic: String,
    #[command(flatten)]
    range: Range,
    #[arg(long)]
    limit: Option<u64>,
    #[arg(long, value_enum, default_value = "yaml")]
    format: Format,
}

#[derive(Args)]
struct ExportArgs {
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
            _ => 1,
        };
        fail(code, e.to_string())
    }
}

fn main() -> ExitCode {
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
    match &cli.cmd {
        Cmd::Info { store } => info(&open_read(store)?, store, json),
        Cmd::Topics { store } => topics(&open_read(store)?, json),
        Cmd::Cat(args) => cat(args),
        Cmd::Export(args) => export_cmd(args, json),
        Cmd::Import { store, bag, topics } => import_cmd(store, bag, topics, json),
        Cmd::Verify { store, decode } => verify(&open_read(store)?, *decode, json),
        Cmd::Compact { store } => compact(store, json),
        Cmd::Du { store } => du(&open_read(store)?, json),
        Cmd::Msgdef {
            type_name,
            prefixes,
        } => msgdef(type_name, prefixes),
    }
}

/// Opens for reading; falls back to a read-only snapshot when a running
/// node holds the store.
fn open_read(path: &Path) -> Result<Store, Fail> {
    require_store(path)?;
    match Store::open(path, Options::default()) {
        Err(engine::Error::Locked { pid, .. }) => {
            eprintln!(
                "motedb: store is held by a running process (pid {pid:?}); reading a read-only snapshot"
            );
            Ok(Store::open_read_only(path)?)
        }
        other => Ok(other?),
    }
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
    if path.is_dir() {
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

fn print_json(v: &serde_json::Value) {
    println!("{v}");
}

fn bounds(topics: &[TopicInfo]) -> (Nanos, Nanos) {
    let first = topics
        .iter()
        .filter_map(|t| t.first_time)
        .min()
        .unwrap_or(0);
    let last = topics.iter().filter_map(|t| t.last_time).max().unwrap_or(0);
    (first, last)
}

fn rate(t: &TopicInfo) -> f64 {
    match (t.first_time, t.last_time) {
        (Some(a), Some(b)) if b > a && t.message_count > 1 => {
            (t.message_count - 1) as f64 / ((b - a) as f64 / 1e9)
        }
        _ => 0.0,
    }
}

fn human_bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", units[i])
}

fn topic_json(t: &TopicInfo) -> serde_json::Value {
    json!({
        "name": t.spec.name, "type": t.spec.type_name,
        "serialization_format": t.spec.serialization_format,
        "count": t.message_count, "bytes": t.size_bytes,
        "first_time": t.first_time, "last_time": t.last_time,
        "rate_hz": rate(t), "dropped": t.dropped_count, "gaps": t.gap_count,
    })
}

fn info(store: &Store, path: &Path, json: bool) -> CliResult {
    let topics = store.topics();
    let health = store.health();
    let (first, last) = bounds(&topics);
    let count: u64 = topics.iter().map(|t| t.message_count).sum();
    let duration = last.saturating_sub(first);
    if json {
        print_json(&json!({
            "path": path, "size_bytes": health.disk_bytes, "message_count": count,
            "start": first, "end": last, "duration_ns": duration,
            "topics": topics.iter().map(topic_json).collect::<Vec<_>>(),
        }));
        return Ok(0);
    }
    println!("Store:             {}", path.display());
    println!("Size:              {}", human_bytes(health.disk_bytes));
    println!("Duration:          {}", format_unix(duration));
    println!(
        "Start:             {} ({})",
        format_time(first),
        format_unix(first)
    );
    println!(
        "End:               {} ({})",
        format_time(last),
        format_unix(last)
    );
    println!("Messages:          {count}");
    println!("Topic information:");
    for t in &topics {
        println!(
            "  Topic: {} | Type: {} | Count: {} | Bytes: {} | Rate: {:.2} Hz | Dropped: {} | Gaps: {} | Serialization Format: {}",
            t.spec.name,
            t.spec.type_name,
            t.message_count,
            human_bytes(t.size_bytes),
            rate(t),
            t.dropped_count,
            t.gap_count,
            t.spec.serialization_format
        );
    }
    Ok(0)
}

fn topics(store: &Store, json: bool) -> CliResult {
    let topics = store.topics();
    if json {
        print_json(&json!(topics.iter().map(topic_json).collect::<Vec<_>>()));
        return Ok(0);
    }
    for t in &topics {
        println!(
            "{} [{}] {} messages",
            t.spec.name, t.spec.type_name, t.message_count
        );
    }
    Ok(0)
}

fn time_range(range: &Range, first: Nanos, last: Nanos) -> Result<(Nanos, Nanos), Fail> {
    let parse = |s: &Option<String>, default: Nanos| match s {
        Some(s) => parse_time(s, first, last).map_err(|e| fail(2, e)),
        None => Ok(default),
    };
    Ok((parse(&range.start, 0)?, parse(&range.end, Nanos::MAX)?))
}

/// Schema of a topic: its stored definition, else installed .msg files.
/// (An empty definition is valid for a field-less type such as Empty.)
fn topic_schema(type_name: &str, definition: &str) -> Result<Schema, Fail> {
    let mut text = definition.to_string();
    if text.trim().is_empty() {
        if let Ok(found) = cdr::definition::resolve(type_name, &ament_prefixes()) {
            text = found;
        }
    }
    Schema::parse(type_name, &text).map_err(|e| {
        fail(
            1,
            format!("definition of {type_name}: {e}; source the ROS workspace defining it so AMENT_PREFIX_PATH finds it"),
        )
    })
}

fn ament_prefixes() -> Vec<PathBuf> {
    std::env::var("AMENT_PREFIX_PATH")
        .map(|v| cdr::definition::prefixes_from_env_value(&v))
        .unwrap_or_default()
}

fn cat(args: &CatArgs) -> CliResult {
    if args.source.is_file() {
        return cat_mcap(args);
    }
    let store = open_read(&args.source)?;
    let topic = store.topic_by_name(&args.topic).ok_or_else(|| {
        fail(
            4,
            format!("no topic {} in the store (see `motedb topics`)", args.topic),
        )
    })?;
    let schema = topic_schema(&topic.spec.type_name, &topic.spec.definition)?;
    let (first, last) = (topic.first_time.unwrap_or(0), topic.last_time.unwrap_or(0));
    let (start, end) = time_range(&args.range, first, last)?;
    let mut printer = Printer::new(args.format, args.limit);
    for rec in store.iter(&[topic.id], start, end, false)? {
        if printer.done() {
            break;
        }
        printer.print(&args.topic, &schema, &rec?)?;
    }
    Ok(printer.exit_code())
}

/// `cat` on an .mcap file: messages of one channel in file order.
fn cat_mcap(args: &CatArgs) -> CliResult {
    let mut printer = Printer::new(args.format, args.limit);
    let mut schema: Option<Schema> = None;
    let mut on_msg = |ch: &export::ChannelInfo,
                      h: &mcap::records::MessageHeader,
                      data: &[u8]|
     -> Result<(), ExportError> {
        if ch.spec.name != args.topic || printer.done() {
            return Ok(());
        }
        if schema.is_none() {
            match topic_schema(&ch.spec.type_name, &ch.spec.definition) {
                Ok(s) => schema = Some(s),
                Err(f) => {
                    return Err(ExportError::Metadata {
                        path: args.source.clone(),
                        reason: f.msg,
                    })
                }
            }
        }
        let rec = Record {
            topic: 0,
            log_time: h.log_time,
            publish_time: h.publish_time,
            sequence: u64::from(h.sequence),
            payload: data.to_vec(),
        };
        match &schema {
            Some(s) => printer.print_lenient(&args.topic, s, &rec),
            None => printer.failed += 1,
        }
        Ok(())
    };
    let skipped = export::import_mcap_records(&args.source, &mut on_msg)?;
    for s in &skipped {
        eprintln!("motedb: {}: {}", s.file.display(), s.reason);
    }
    let code = printer.exit_code();
    Ok(if skipped.is_empty() { code } else { 3 })
}

struct Printer {
    format: Format,
    limit: Option<u64>,
    printed: u64,
    failed: u64,
    out: std::io::BufWriter<std::io::Stdout>,
}

impl Printer {
    fn new(format: Format, limit: Option<u64>) -> Printer {
        Printer {
            format,
            limit,
            printed: 0,
            failed: 0,
            out: std::io::BufWriter::new(std::io::stdout()),
        }
    }

    fn done(&self) -> bool {
        self.limit.is_some_and(|l| self.printed >= l)
    }

    fn print(&mut self, topic: &str, schema: &Schema, rec: &Record) -> Result<(), Fail> {
        self.print_lenient(topic, schema, rec);
        Ok(())
    }

    /// Prints one message; a decode failure is reported and counted.
    fn print_lenient(&mut self, topic: &str, schema: &Schema, rec: &Record) {
        let value = match cdr::decode(schema, &rec.payload) {
            Ok(v) => v,
            Err(e) => {
                eprintln!(
                    "motedb: {topic} message {} (log time {}): cannot decode: {e}",
                    rec.sequence,
                    format_unix(rec.log_time)
                );
                self.failed += 1;
                return;
            }
        };
        let text = match self.format {
            Format::Json => {
                // Written by hand so message fields keep definition order.
                format!(
                    "{{\"topic\":{},\"log_time\":{},\"publish_time\":{},\"sequence\":{},\"message\":{}}}\n",
                    json!(topic),
                    rec.log_time,
                    rec.publish_time,
                    rec.sequence,
                    value.to_json()
                )
            }
            Format::Yaml => format!("{}---\n", value.to_yaml()),
        };
        // A closed pipe (e.g. `| head`) ends output quietly.
        if self.out.write_all(text.as_bytes()).is_err() {
            self.limit = Some(0);
        }
        self.printed += 1;
    }

    fn exit_code(&mut self) -> u8 {
        // Flush failure here is a closed pipe; output already went where it could.
        let _ = self.out.flush();
        if self.failed > 0 {
            3
        } else {
            0
        }
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Ctrl-C cancels a long export cleanly (partial bag removed).
fn catch_sigint() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} messages {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

fn parse_size(s: &str) -> Result<u64, Fail> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        fail(
            2,
            format!("bad size {s:?}: use e.g. 100MiB, 1GB or 5000000"),
        )
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(fail(
                2,
                format!("bad size unit {other:?}: use KiB, MiB, GiB, KB, MB or GB"),
            ))
        }
    };
    Ok(n.saturating_mul(mult))
}

fn export_options(args: &ExportArgs, store: &Store) -> Result<(ExportOptions, u64), Fail> {
    let all = store.topics();
    let (first, last) = bounds(&all);
    let (start, end) = time_range(&args.range, first, last)?;
    let split_duration = match &args.split_duration {
        Some(d) => Some(
            humantime::parse_duration(d)
                .map_err(|_| fail(2, format!("bad duration {d:?}: use e.g. 60s or 5m")))?,
        ),
        None => None,
    };
    let total = all
        .iter()
        .filter(|t| args.topics.is_empty() || args.topics.contains(&t.spec.name))
        .map(|t| t.message_count)
        .sum();
    let opts = ExportOptions {
        topics: args.topics.clone(),
        start,
        end: if end == Nanos::MAX { 0 } else { end },
        output: args.output.clone(),
        compression: args.compression,
        split_bytes: args.split_size.as_deref().map(parse_size).transpose()?,
        split_duration,
    };
    Ok((opts, total))
}

fn export_cmd(args: &ExportArgs, json: bool) -> CliResult {
    if args.output.symlink_metadata().is_ok() {
        return Err(fail(
            4,
            format!(
                "{} already exists; choose a new output name or remove it",
                args.output.display()
            ),
        ));
    }
    let store = open_read(&args.store)?;
    let (opts, total) = export_options(args, &store)?;
    let bar = progress_bar(total);
    let progress = |n: u64, _bytes: u64| bar.set_position(n);
    catch_sigint();
    let ctl = ExportControl {
        progress: Some(&progress),
        cancel: Some(&INTERRUPTED),
    };
    let summary = export::export_bag_with(&store, &opts, &ctl)?;
    bar.finish_and_clear();
    if json {
        print_json(&json!({
            "path": summary.path, "message_count": summary.message_count,
            "size_bytes": summary.size_bytes, "files": summary.files,
        }));
    } else {
        println!(
            "wrote {} messages, {} to {}",
            summary.message_count,
            human_bytes(summary.size_bytes),
            summary.path.display()
        );
    }
    Ok(0)
}

fn import_cmd(store: &Path, bag: &Path, topics: &[String], json: bool) -> CliResult {
    if bag.symlink_metadata().is_err() {
        return Err(fail(4, format!("no bag at {}", bag.display())));
    }
    let store = open_write(store)?;
    let opts = ImportOptions {
        topics: topics.to_vec(),
    };
    let report = export::import_bag(&store, bag, &opts);
    store.close()?;
    let report = report?;
    if json {
        print_json(&serde_json::to_value(&report).unwrap_or_default());
    } else {
        println!(
            "imported {} messages from {} file(s)",
            report.messages,
            report.files.len()
        );
        for (t, n) in &report.per_topic {
            println!("  {t}: {n}");
        }
        for s in &report.skipped {
            let at = s
                .offset
                .map(|o| format!(" at offset {o}"))
                .unwrap_or_default();
            println!(
                "  SKIPPED {}{at}: {} ({} messages)",
                s.file.display(),
                s.reason,
                s.messages
            );
        }
    }
    Ok(if report.complete() { 0 } else { 3 })
}

/// Reads every record of every topic through the public API and checks
/// that counts match the catalog (and optionally that messages decode).
fn verify(store: &Store, decode: bool, json: bool) -> CliResult {
    let topics = store.topics();
    let mut problems = Vec::new();
    let mut total = 0u64;
    for t in &topics {
        let (n, p) = verify_topic(store, t, decode);
        total += n;
        problems.extend(p);
    }
    let rec = store.recovery_report();
    let recovery = json!({
        "wal_dropped_bytes": rec.wal_dropped_bytes,
        "manifest_dropped_bytes": rec.manifest_dropped_bytes,
        "replayed_records": rec.replayed_records,
        "dropped_records": rec.dropped_records,
        "removed_files": rec.removed_files.len(),
    });
    if json {
        print_json(&json!({
            "messages_read": total, "topics": topics.len(),
            "problems": problems, "recovery": recovery,
        }));
    } else {
        println!("read {total} messages of {} topics", topics.len());
        println!(
            "recovery at open: {} WAL records replayed, {} torn WAL bytes and {} records dropped",
            rec.replayed_records, rec.wal_dropped_bytes, rec.dropped_records
        );
        for p in &problems {
            println!("  PROBLEM: {p}");
        }
        if problems.is_empty() {
            println!("ok");
        }
    }
    Ok(if problems.is_empty() { 0 } else { 3 })
}

fn verify_topic(store: &Store, t: &TopicInfo, decode: bool) -> (u64, Vec<String>) {
    let mut problems = Vec::new();
    let schema = if decode {
        match topic_schema(&t.spec.type_name, &t.spec.definition) {
            Ok(s) => Some(s),
            Err(f) => {
                problems.push(format!("{}: {}", t.spec.name, f.msg));
                None
            }
        }
    } else {
        None
    };
    let iter = match store.iter(&[t.id], 0, Nanos::MAX, false) {
        Ok(i) => i,
        Err(e) => return (0, vec![format!("{}: {e}", t.spec.name)]),
    };
    let mut n = 0u64;
    let mut bad_decode = 0u64;
    for rec in iter {
        match rec {
            Ok(r) => {
                n += 1;
                if let Some(s) = &schema {
                    bad_decode += u64::from(cdr::decode(s, &r.payload).is_err());
                }
            }
            Err(e) => {
                problems.push(format!(
                    "{}: read error after {n} messages: {e}",
                    t.spec.name
                ));
                break;
            }
        }
    }
    if n != t.message_count {
        problems.push(format!(
            "{}: catalog says {} messages, read {n}",
            t.spec.name, t.message_count
        ));
    }
    if bad_decode > 0 {
        problems.push(format!(
            "{}: {bad_decode} messages do not decode",
            t.spec.name
        ));
    }
    (n, problems)
}

fn compact(path: &Path, json: bool) -> CliResult {
    require_store(path)?;
    let store = open_write(path)?;
    let before = store.health().disk_bytes;
    store.compact()?;
    let after = store.health().disk_bytes;
    store.close()?;
    if json {
        print_json(&json!({"bytes_before": before, "bytes_after": after}));
    } else {
        println!(
            "compacted: {} -> {}",
            human_bytes(before),
            human_bytes(after)
        );
    }
    Ok(0)
}

fn du(store: &Store, json: bool) -> CliResult {
    let h = store.health();
    let topics = store.topics();
    if json {
        print_json(&json!({
            "disk_bytes": h.disk_bytes, "wal_bytes": h.wal_bytes, "quota_bytes": h.quota_bytes,
            "levels": h.levels.iter().map(|l| json!({"files": l.files, "bytes": l.bytes})).collect::<Vec<_>>(),
            "topics": topics.iter().map(|t| json!({"name": t.spec.name, "bytes": t.size_bytes})).collect::<Vec<_>>(),
        }));
        return Ok(0);
    }
    println!("total  {:>12}", human_bytes(h.disk_bytes));
    println!("wal    {:>12}", human_bytes(h.wal_bytes));
    for (i, l) in h.levels.iter().enumerate() {
        println!("L{i:<5} {:>12} in {} files", human_bytes(l.bytes), l.files);
    }
    for t in &topics {
        println!(
            "{:<6} {:>12} payload  {}",
            "topic",
            human_bytes(t.size_bytes),
            t.spec.name
        );
    }
    Ok(0)
}

fn msgdef(type_name: &str, prefixes: &[PathBuf]) -> CliResult {
    let prefixes = if prefixes.is_empty() {
        ament_prefixes()
    } else {
        prefixes.to_vec()
    };
    let text =
        cdr::definition::resolve(type_name, &prefixes).map_err(|e| fail(4, e.to_string()))?;
    print!("{text}");
    Ok(0)
}
