//! Engine benchmarks with their anchors measured in the same run:
//! the `mcap` writer (chunked, lz4) as the log-format floor, fjall 2 with the
//! same keys as the LSM peer, and the disk's own sequential write bandwidth
//! (1 MiB writes + fdatasync). Prints ratios; never asserts on time.
//!
//! ```text
//! cargo run --release --features bench --bin bench_engine -- all
//! cargo run --release --features bench --bin bench_engine -- small|large|query|wamp|rss|recovery|compression
//! ```
//! Sizes: BENCH_SMALL_MSGS, BENCH_LARGE_MB, BENCH_QUERY_SECS, BENCH_RSS_MB,
//! BENCH_RECOVERY_WAL_MB, BENCH_COMPRESSION_MB;
//! data goes to BENCH_DIR (default ./target/bench_engine), removed after.

use std::collections::BTreeMap;
use std::error::Error;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use motedb::engine::{Codec, Durability, Nanos, Options, ScanRequest, Store, TopicId, TopicSpec};

type Res<T> = Result<T, Box<dyn Error>>;

const TOPICS: usize = 16;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bench_dir(name: &str) -> Res<PathBuf> {
    let root = std::env::var("BENCH_DIR").unwrap_or_else(|_| "target/bench_engine".into());
    let dir = Path::new(&root).join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(dir.parent().unwrap_or(Path::new(".")))?;
    Ok(dir)
}

/// Pseudo-random payload bytes (incompressible, like noisy sensor data).
fn fill(buf: &mut [u8], seed: u64) {
    // Spread consecutive seeds apart (seed | 1 alone made pairs equal).
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// A payload buffer, random throughout; each message then rewrites its
/// first 256 bytes so no two messages are equal.
fn initial(size: usize) -> Vec<u8> {
    let mut buf = vec![0u8; size];
    fill(&mut buf, 0xDEAD_BEEF);
    buf
}

fn spec(i: usize) -> TopicSpec {
    TopicSpec {
        name: format!("/bench_{i}"),
        type_name: "std_msgs/msg/ByteMultiArray".into(),
        serialization_format: "cdr".into(),
        ..TopicSpec::default()
    }
}

/// One message of a workload: topic index, log time, payload seed.
struct Workload {
    msgs: u64,
    size: usize,
    topics: usize,
    /// Log time step between consecutive messages (all topics).
    step: Nanos,
}

impl Workload {
    fn at(&self, n: u64) -> (usize, Nanos) {
        (
            (n % self.topics as u64) as usize,
            1_000_000_000 + n * self.step,
        )
    }
    fn bytes(&self) -> u64 {
        self.msgs * self.size as u64
    }
}

// ------------------------------------------------------------------ writers

fn run_motedb(w: &Workload, dir: &Path, opts: Options) -> Res<(Duration, Duration, Store)> {
    let store = Store::open(dir, opts)?;
    let ids: Vec<TopicId> = (0..w.topics)
        .map(|i| store.register_topic(spec(i)))
        .collect::<Result<_, _>>()?;
    let mut buf = initial(w.size);
    let t0 = Instant::now();
    for n in 0..w.msgs {
        let (topic, t) = w.at(n);
        fill(&mut buf[..w.size.min(256)], n);
        store.append(ids[topic], t, t, &buf)?;
    }
    store.sync()?;
    let ingest = t0.elapsed();
    store.flush()?;
    Ok((ingest, t0.elapsed(), store))
}

fn run_mcap(w: &Workload, path: &Path) -> Res<Duration> {
    let file = BufWriter::new(File::create(path)?);
    let opts = mcap::WriteOptions::new()
        .compression(Some(mcap::Compression::Lz4))
        .profile("ros2");
    let mut writer = opts.create(file)?;
    let schema = writer.add_schema("std_msgs/msg/ByteMultiArray", "ros2msg", b"uint8[] data")?;
    let channels: Vec<u16> = (0..w.topics)
        .map(|i| writer.add_channel(schema, &spec(i).name, "cdr", &BTreeMap::new()))
        .collect::<Result<_, _>>()?;
    let mut buf = initial(w.size);
    let t0 = Instant::now();
    for n in 0..w.msgs {
        let (topic, t) = w.at(n);
        fill(&mut buf[..w.size.min(256)], n);
        let header = mcap::records::MessageHeader {
            channel_id: channels[topic],
            sequence: n as u32,
            log_time: t,
            publish_time: t,
        };
        writer.write_to_known_channel(&header, &buf)?;
    }
    writer.finish()?;
    let file = writer
        .into_inner()
        .into_inner()
        .map_err(|e| e.into_error())?;
    file.sync_data()?;
    Ok(t0.elapsed())
}

fn fjall_key(topic: usize, t: Nanos, seq: u64) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..4].copy_from_slice(&(topic as u32).to_be_bytes());
    k[4..12].copy_from_slice(&t.to_be_bytes());
    k[12..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// `buffered`: the journal stays in user space between group commits
/// (manual_journal_persist), like motedb's WAL buffer; otherwise fjall's
/// default hands every insert to the OS.
fn open_fjall(dir: &Path, buffered: bool) -> Res<(fjall::Keyspace, fjall::PartitionHandle)> {
    // Same group-commit interval as motedb's Periodic(100 ms).
    let ks = fjall::Config::new(dir).fsync_ms(Some(100)).open()?;
    let popts = fjall::PartitionCreateOptions::default().manual_journal_persist(buffered);
    let part = ks.open_partition("msgs", popts)?;
    Ok((ks, part))
}

fn run_fjall(
    w: &Workload,
    dir: &Path,
    buffered: bool,
) -> Res<(Duration, fjall::Keyspace, fjall::PartitionHandle)> {
    let (ks, part) = open_fjall(dir, buffered)?;
    let mut buf = initial(w.size);
    let t0 = Instant::now();
    for n in 0..w.msgs {
        let (topic, t) = w.at(n);
        fill(&mut buf[..w.size.min(256)], n);
        part.insert(fjall_key(topic, t, n), buf.as_slice())?;
    }
    ks.persist(fjall::PersistMode::SyncData)?;
    Ok((t0.elapsed(), ks, part))
}

/// Sequential write bandwidth: `bytes` in 1 MiB writes, fdatasync at the
/// end and, with `every` set, also after every `every` bytes (keeps the
/// device busy while the writer goes on, as a group-committing log does).
fn run_disk(bytes: u64, path: &Path, every: Option<u64>) -> Res<Duration> {
    let mut buf = vec![0u8; 1 << 20];
    fill(&mut buf, 7);
    let mut f = File::create(path)?;
    let t0 = Instant::now();
    let mut done = 0;
    while done < bytes {
        let n = (bytes - done).min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        done += n as u64;
        if every.is_some_and(|e| done % e == 0) {
            f.sync_data()?;
        }
    }
    f.sync_data()?;
    Ok(t0.elapsed())
}

fn du(path: &Path) -> u64 {
    let Ok(meta) = fs::metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    fs::read_dir(path)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| du(&e.path())).sum())
        .unwrap_or(0)
}

// ---------------------------------------------------------------- reporting

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn row(name: &str, value: f64, unit: &str, note: &str) {
    println!("| {name:<44} | {value:>14.2} | {unit:<8} | {note} |");
}

fn header(title: &str) {
    println!("\n### {title}\n");
    println!(
        "| {:<44} | {:>14} | {:<8} | note |",
        "measure", "value", "unit"
    );
    println!("|{:-<46}|{:-<16}|{:-<10}|------|", "", "", "");
}

// ---------------------------------------------------------------- scenarios

fn small() -> Res<()> {
    let w = Workload {
        msgs: env_u64("BENCH_SMALL_MSGS", 2_000_000),
        size: 256,
        topics: TOPICS,
        step: 62_500,
    };
    header(&format!(
        "256 B x {} topics, in order, {} msgs, Periodic(100 ms)",
        w.topics, w.msgs
    ));
    let mcap_path = bench_dir("small.mcap")?;
    let mcap = run_mcap(&w, &mcap_path)?;
    let mcap_bytes = du(&mcap_path);
    fs::remove_file(&mcap_path)?;
    let fj_dir = bench_dir("small_fjall")?;
    let (fj, ks, part) = run_fjall(&w, &fj_dir, false)?;
    drop((part, ks));
    let fj_bytes = du(&fj_dir);
    fs::remove_dir_all(&fj_dir)?;
    let (fjb, ks, part) = run_fjall(&w, &fj_dir, true)?;
    drop((part, ks));
    fs::remove_dir_all(&fj_dir)?;
    let dir = bench_dir("small_motedb")?;
    let (mote, mote_flushed, store) = run_motedb(&w, &dir, Options::default())?;
    store.close()?;
    let mote_bytes = du(&dir);
    fs::remove_dir_all(&dir)?;
    let (m, mc, f) = (rate(w.msgs, mote), rate(w.msgs, mcap), rate(w.msgs, fj));
    let fb = rate(w.msgs, fjb);
    row("motedb append+sync", m, "msg/s", "");
    row(
        "motedb append+sync+flush",
        rate(w.msgs, mote_flushed),
        "msg/s",
        "",
    );
    row("mcap writer (lz4 chunks) + fdatasync", mc, "msg/s", "");
    row(
        "fjall 2 insert + persist",
        f,
        "msg/s",
        "fsync_ms=100, defaults",
    );
    row(
        "fjall 2 buffered journal + persist",
        fb,
        "msg/s",
        "manual_journal_persist",
    );
    row("ratio motedb / mcap", m / mc, "x", "target >= 1.0");
    row(
        "ratio motedb / fjall (defaults)",
        m / f,
        "x",
        "target > 1.0",
    );
    row(
        "ratio motedb / fjall (buffered)",
        m / fb,
        "x",
        "target > 1.0",
    );
    row(
        "bytes on disk motedb",
        mote_bytes as f64 / 1e6,
        "MB",
        "after close",
    );
    row("bytes on disk mcap", mcap_bytes as f64 / 1e6, "MB", "");
    row(
        "bytes on disk fjall",
        fj_bytes as f64 / 1e6,
        "MB",
        "before compaction",
    );
    Ok(())
}

fn large() -> Res<()> {
    let mb = env_u64("BENCH_LARGE_MB", 1024);
    let w = Workload {
        msgs: mb,
        size: 1 << 20,
        topics: 4,
        step: 100_000_000,
    };
    header(&format!("1 MiB messages x {} ({} MiB)", w.msgs, mb));
    // The anchors run before and after the others and the fastest run
    // counts, so a cold first write does not flatter the engine.
    let disk_path = bench_dir("disk.bin")?;
    let mut disk_runs = Vec::new();
    for every in [None, Some(32 << 20)] {
        disk_runs.push(run_disk(w.bytes(), &disk_path, every)?);
        fs::remove_file(&disk_path)?;
    }
    let dir = bench_dir("large_motedb")?;
    let (mote, mote_flushed, store) = run_motedb(&w, &dir, Options::default())?;
    let health = store.health();
    store.close()?;
    fs::remove_dir_all(&dir)?;
    let mcap_path = bench_dir("large.mcap")?;
    let mcap = run_mcap(&w, &mcap_path)?;
    fs::remove_file(&mcap_path)?;
    for every in [None, Some(32 << 20)] {
        disk_runs.push(run_disk(w.bytes(), &disk_path, every)?);
        fs::remove_file(&disk_path)?;
    }
    let disk_end = disk_runs[0].min(disk_runs[2]);
    let disk_every = disk_runs[1].min(disk_runs[3]);
    let disk = disk_end.min(disk_every);
    let mbps = |d: Duration| w.bytes() as f64 / 1e6 / d.as_secs_f64().max(1e-9);
    row(
        "disk: 1 MiB writes, fdatasync at end",
        mbps(disk_end),
        "MB/s",
        "best of 2",
    );
    row(
        "disk: 1 MiB writes, fdatasync per 32 MiB",
        mbps(disk_every),
        "MB/s",
        "best of 2",
    );
    row(
        "disk anchor (fastest of the above)",
        mbps(disk),
        "MB/s",
        "anchor",
    );
    row("motedb append+sync", mbps(mote), "MB/s", "");
    row("motedb append+sync+flush", mbps(mote_flushed), "MB/s", "");
    row(
        "mcap writer (lz4 chunks) + fdatasync",
        mbps(mcap),
        "MB/s",
        "",
    );
    row(
        "ratio motedb / disk anchor",
        disk.as_secs_f64() / mote.as_secs_f64(),
        "x",
        "target >= 0.9",
    );
    row(
        "ratio motedb / disk (fdatasync at end only)",
        disk_end.as_secs_f64() / mote.as_secs_f64(),
        "x",
        "",
    );
    row(
        "ratio mcap / disk",
        disk.as_secs_f64() / mcap.as_secs_f64(),
        "x",
        "",
    );
    row(
        "vlog bytes / ingested",
        health.vlog_bytes_written as f64 / health.bytes_ingested.max(1) as f64,
        "x",
        "",
    );
    row(
        "wal bytes / ingested",
        health.wal_bytes_written as f64 / health.bytes_ingested.max(1) as f64,
        "x",
        "",
    );
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// A store of `secs` seconds of 16 topics at 1 kHz each, 128 B payloads.
fn query_workload(secs: u64) -> Workload {
    Workload {
        msgs: secs * 1000 * TOPICS as u64,
        size: 128,
        topics: TOPICS,
        step: 1_000_000 / TOPICS as u64,
    }
}

fn query() -> Res<()> {
    let secs = env_u64("BENCH_QUERY_SECS", 300);
    let w = query_workload(secs);
    header(&format!(
        "1 s window of one 1 kHz topic; store holds {secs} s of 16 topics at 1 kHz ({} msgs)",
        w.msgs
    ));
    let dir = bench_dir("query_motedb")?;
    let opts = Options {
        durability: Durability::None,
        ..Options::default()
    };
    let (_, _, store) = run_motedb(&w, &dir, opts)?;
    store.compact()?;
    let fj_dir = bench_dir("query_fjall")?;
    let (_, ks, part) = run_fjall(&w, &fj_dir, true)?;
    let queries = env_u64("BENCH_QUERIES", 2000);
    let id = store
        .topic_by_name(&spec(0).name)
        .ok_or("topic 0 missing")?
        .id;
    let health = store.health();
    let tables: u64 = health.levels.iter().map(|l| l.files).sum();
    // Interleaved, so both stores see the same background load (fjall is
    // still flushing and compacting what it just ingested).
    let (mote, fj) = time_queries(
        queries,
        secs,
        |start| mote_window(&store, id, start),
        |start| fjall_window(&part, start),
    )?;
    let (m50, m99) = (percentile(&mote, 0.5), percentile(&mote, 0.99));
    let (f50, f99) = (percentile(&fj, 0.5), percentile(&fj, 0.99));
    row("motedb scan p50", m50, "ms", "target < 0.5 ms");
    row("motedb scan p99", m99, "ms", "");
    row("fjall range p50", f50, "ms", "same keys");
    row("fjall range p99", f99, "ms", "");
    row(
        "motedb tables (all levels)",
        tables as f64,
        "files",
        "after compact()",
    );
    row("motedb L0 tables", health.l0_files as f64, "files", "");
    row(
        "ratio fjall p50 / motedb p50",
        f50 / m50,
        "x",
        "> 1: motedb faster",
    );
    drop((part, ks));
    store.close()?;
    fs::remove_dir_all(&dir)?;
    fs::remove_dir_all(&fj_dir)?;
    Ok(())
}

/// Runs `n` query pairs at pseudo-random starts, `qa` then `qb` on the same
/// window; each must return 1000 records. Returns both latency lists, sorted.
fn time_queries(
    n: u64,
    secs: u64,
    mut qa: impl FnMut(Nanos) -> Res<usize>,
    mut qb: impl FnMut(Nanos) -> Res<usize>,
) -> Res<(Vec<Duration>, Vec<Duration>)> {
    let mut x: u64 = 0x9E37_79B9;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let start = 1_000_000_000 + (x % (secs.saturating_sub(1).max(1))) * 1_000_000_000;
        for (q, out) in [
            (&mut qa as &mut dyn FnMut(Nanos) -> Res<usize>, &mut a),
            (&mut qb, &mut b),
        ] {
            let t0 = Instant::now();
            let got = q(start)?;
            out.push(t0.elapsed());
            if got != 1000 {
                return Err(format!("window at {start} returned {got} records, want 1000").into());
            }
        }
    }
    a.sort();
    b.sort();
    Ok((a, b))
}

fn mote_window(store: &Store, id: TopicId, start: Nanos) -> Res<usize> {
    let req = ScanRequest {
        topics: vec![id],
        start,
        end: start + 1_000_000_000,
        newest_first: false,
        max_messages: usize::MAX,
        max_bytes: u64::MAX,
        cursor: None,
    };
    Ok(store.scan(&req)?.records.len())
}

fn fjall_window(part: &fjall::PartitionHandle, start: Nanos) -> Res<usize> {
    let lo = fjall_key(0, start, 0);
    let hi = fjall_key(0, start + 1_000_000_000, 0);
    let mut n = 0;
    for kv in part.range(lo..hi) {
        let (_, v) = kv?;
        n += usize::from(!v.is_empty());
    }
    Ok(n)
}

fn wamp() -> Res<()> {
    header("write amplification, in-order ingest (Health counters after flush + compact)");
    let cases = [
        (
            "256 B x 16 topics",
            Workload {
                msgs: env_u64("BENCH_SMALL_MSGS", 2_000_000),
                size: 256,
                topics: TOPICS,
                step: 62_500,
            },
        ),
        (
            "1 MiB x 4 topics",
            Workload {
                msgs: env_u64("BENCH_LARGE_MB", 1024) / 2,
                size: 1 << 20,
                topics: 4,
                step: 100_000_000,
            },
        ),
    ];
    for (name, w) in cases {
        let dir = bench_dir("wamp_motedb")?;
        let opts = Options {
            memtable_bytes: 16 << 20,
            ..Options::default()
        };
        let (_, _, store) = run_motedb(&w, &dir, opts)?;
        store.compact()?;
        let h = store.health();
        let ing = h.bytes_ingested.max(1) as f64;
        let no_wal =
            (h.flush_bytes_written + h.compaction_bytes_written + h.vlog_bytes_written) as f64;
        row(
            &format!("{name}: WA without WAL"),
            no_wal / ing,
            "x",
            "target <= 1.3",
        );
        row(
            &format!("{name}: WA with WAL"),
            (no_wal + h.wal_bytes_written as f64) / ing,
            "x",
            "",
        );
        row(
            &format!("{name}: Health.write_amplification"),
            h.write_amplification,
            "x",
            "",
        );
        row(
            &format!("{name}: compaction bytes / ingested"),
            h.compaction_bytes_written as f64 / ing,
            "x",
            "",
        );
        store.close()?;
        fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

/// Peak resident memory (VmHWM) in bytes.
fn vm_hwm() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn rss() -> Res<()> {
    let mb = env_u64("BENCH_RSS_MB", 2048);
    let budget = Options::default().memtable_bytes as u64;
    header(&format!(
        "peak RSS during sustained ingest of {mb} MiB (1 KiB x 16 topics)"
    ));
    let before = vm_hwm();
    let w = Workload {
        msgs: mb * 1024,
        size: 1024,
        topics: TOPICS,
        step: 62_500,
    };
    let dir = bench_dir("rss_motedb")?;
    let (ingest, _, store) = run_motedb(&w, &dir, Options::default())?;
    let peak = vm_hwm();
    store.close()?;
    fs::remove_dir_all(&dir)?;
    row("VmHWM before ingest", before as f64 / 1e6, "MB", "");
    row("VmHWM after ingest", peak as f64 / 1e6, "MB", "");
    row(
        "memtable budget",
        budget as f64 / 1e6,
        "MB",
        "Options::default()",
    );
    row(
        "peak - budget",
        (peak as f64 - budget as f64) / 1e6,
        "MB",
        "target <= 64 MB",
    );
    row(
        "ingest rate",
        w.bytes() as f64 / 1e6 / ingest.as_secs_f64(),
        "MB/s",
        "",
    );
    Ok(())
}

/// Bytes of the store's WAL segments.
fn wal_bytes(dir: &Path) -> Res<u64> {
    let mut total = 0;
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with("wal-") {
            total += e.metadata()?.len();
        }
    }
    Ok(total)
}

/// Options of the recovery scenario: a memtable budget twice the WAL
/// target, so nothing is flushed before the kill and the whole WAL must be
/// replayed at open.
fn recovery_options() -> Options {
    Options {
        memtable_bytes: 2 * (env_u64("BENCH_RECOVERY_WAL_MB", 64) << 20) as usize,
        ..Options::default()
    }
}

/// The child of `recovery`: writes 256 B messages (16 topics) until the
/// WAL holds BENCH_RECOVERY_WAL_MB, syncs, says how many, then waits to be
/// killed.
fn recovery_writer(dir: &Path) -> Res<()> {
    let target = env_u64("BENCH_RECOVERY_WAL_MB", 64) << 20;
    let store = Store::open(dir, recovery_options())?;
    let ids: Vec<TopicId> = (0..TOPICS)
        .map(|i| store.register_topic(spec(i)))
        .collect::<Result<_, _>>()?;
    let mut buf = initial(256);
    let mut n = 0u64;
    loop {
        for _ in 0..10_000 {
            fill(&mut buf, n);
            store.append(ids[(n % TOPICS as u64) as usize], n + 1, n + 1, &buf)?;
            n += 1;
        }
        if wal_bytes(dir)? >= target {
            break;
        }
    }
    store.sync()?;
    println!("ready {n}");
    std::io::stdout().flush()?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Time to open a store after kill -9 with a full WAL, against the time to
/// read the same WAL bytes (the floor any replay has to pay).
fn recovery() -> Res<()> {
    let mb = env_u64("BENCH_RECOVERY_WAL_MB", 64);
    header(&format!(
        "open after kill -9 with a {mb} MiB WAL (256 B x 16 topics)"
    ));
    let dir = bench_dir("recovery")?;
    let mut child = Command::new(std::env::current_exe()?)
        .arg("recovery-writer")
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    let read_ready = child
        .stdout
        .take()
        .ok_or_else(|| "no child stdout".to_string())
        .and_then(|out| {
            std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)
                .map_err(|e| e.to_string())
        });
    // SIGKILL in every case: the writer never exits by itself.
    child.kill()?;
    child.wait()?;
    read_ready?;
    let written: u64 = line
        .trim()
        .strip_prefix("ready ")
        .ok_or_else(|| format!("writer said {line:?}"))?
        .parse()?;
    let wal = wal_bytes(&dir)?;
    // The floor: read every WAL byte once (page cache warm, as for the open).
    let t0 = Instant::now();
    let mut read = 0u64;
    for e in fs::read_dir(&dir)? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with("wal-") {
            read += fs::read(e.path())?.len() as u64;
        }
    }
    let raw = t0.elapsed();
    let t0 = Instant::now();
    let store = Store::open(&dir, recovery_options())?;
    let open = t0.elapsed();
    let recovered: u64 = store.topics().iter().map(|t| t.message_count).sum();
    store.close()?;
    fs::remove_dir_all(&dir)?;
    if read != wal {
        return Err(format!("read {read} WAL bytes of {wal}").into());
    }
    if recovered != written {
        return Err(format!("recovered {recovered} of {written} synced messages").into());
    }
    row("WAL at the kill", wal as f64 / (1 << 20) as f64, "MiB", "");
    row(
        "messages replayed",
        recovered as f64,
        "msgs",
        "all synced ones",
    );
    row("Store::open", open.as_secs_f64(), "s", "target <= 0.5");
    row(
        "read the WAL files (anchor)",
        raw.as_secs_f64(),
        "s",
        "page cache warm",
    );
    row(
        "open / read",
        open.as_secs_f64() / raw.as_secs_f64(),
        "x",
        "",
    );
    Ok(())
}

// ---------------------------------------------------------------- compression

/// xorshift64 step.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Sensor noise in -amp..=amp, roughly triangular (sum of two uniforms).
fn noise(x: &mut u64, amp: i32) -> i32 {
    let r = next(x);
    let span = (amp + 1) as u64;
    ((r % span) as i32) + (((r >> 32) % span) as i32) - amp
}

/// A 640x480 rgb8 camera frame: sky gradient, floor, three objects that
/// move a few pixels per frame, and sensor noise (+-3 counts per channel).
fn camera_frame(k: u64, out: &mut Vec<u8>) {
    let (w, h) = (640i32, 480i32);
    out.clear();
    let mut x = 0x1234_5678 ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let shift = (k % 200) as i32 * 3;
    for yy in 0..h {
        for xx in 0..w {
            let mut c = if yy < h / 2 {
                [90 + yy / 4, 140 + yy / 5, 220 - yy / 6]
            } else {
                [110 + (xx + yy) % 7, 100, 80 + yy / 10]
            };
            let (bx, by) = ((xx + shift) % w, yy);
            if (100..220).contains(&bx) && (200..420).contains(&by) {
                c = [200, 40, 40];
            }
            if ((bx - 400).pow(2) + (by - 300).pow(2)) < 60 * 60 {
                c = [40, 180, 60];
            }
            if (480..600).contains(&bx) && (120..260).contains(&by) {
                c = [230, 230, 210 - (bx - 480)];
            }
            for v in c {
                out.push((v + noise(&mut x, 3)).clamp(0, 255) as u8);
            }
        }
    }
}

/// A 640x480 16UC1 depth frame in millimetres: a floor plane, a wall and
/// a box, +-4 mm noise, and invalid (0) pixels along depth edges.
fn depth_frame(k: u64, out: &mut Vec<u8>) {
    let (w, h) = (640i32, 480i32);
    out.clear();
    let mut x = 0xDEE7 ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let shift = (k % 100) as i32 * 2;
    for yy in 0..h {
        for xx in 0..w {
            let mut d = if yy > 240 {
                800 + 400_000 / (yy - 230)
            } else {
                4000 + (xx - 320).abs() * 2
            };
            let bx = (xx + shift) % w;
            if (250..400).contains(&bx) && (180..360).contains(&yy) {
                d = 1800 + (bx - 250);
            }
            let edge = bx == 250 || bx == 399 || yy == 240;
            let v = if edge {
                0
            } else {
                (d + noise(&mut x, 4)).max(1)
            };
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
    }
}

/// A 16-beam, 1800-column lidar sweep in a 20 m x 12 m room as
/// PointCloud2 data: x, y, z, intensity as f32 (16 bytes per point),
/// range noise +-1 cm.
fn lidar_sweep(k: u64, out: &mut Vec<u8>) {
    out.clear();
    let mut x = 0x11DA ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let (px, py) = (2.0 + (k % 100) as f32 * 0.05, 1.0f32);
    for col in 0..1800 {
        let az = col as f32 * std::f32::consts::TAU / 1800.0;
        let (dx, dy) = (az.cos(), az.sin());
        // Distance to the room's walls at x in [-8, 12], y in [-6, 6].
        let tx = if dx > 0.0 {
            (12.0 - px) / dx
        } else {
            (-8.0 - px) / dx
        };
        let ty = if dy > 0.0 {
            (6.0 - py) / dy
        } else {
            (-6.0 - py) / dy
        };
        let flat = tx.min(ty);
        for beam in 0..16 {
            let el = (beam as f32 - 7.5) * 2.0f32.to_radians();
            let r = flat / el.cos() + noise(&mut x, 10) as f32 * 0.001;
            let p = [
                r * el.cos() * dx,
                r * el.cos() * dy,
                r * el.sin(),
                40.0 + (beam * 7) as f32,
            ];
            for v in p {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
}

/// Already-compressed data (JPEG, H.264, zstd): to a compressor it looks
/// like random bytes.
fn compressed_frame(k: u64, out: &mut Vec<u8>) {
    out.resize(300_000, 0);
    fill(out, k);
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Value-log compression on four kinds of large payloads, each written
/// with no codec, lz4 and zstd: ingest speed (append + sync + flush), CPU
/// per MB and bytes on disk, beside the disk's own bandwidth.
fn compression() -> Res<()> {
    let mb = env_u64("BENCH_COMPRESSION_MB", 256);
    type Gen = fn(u64, &mut Vec<u8>);
    let kinds: [(&str, Gen); 4] = [
        ("camera rgb8 640x480", camera_frame),
        ("depth 16UC1 640x480", depth_frame),
        ("lidar xyzi 16x1800", lidar_sweep),
        ("already compressed", compressed_frame),
    ];
    header(&format!(
        "value-log compression, {mb} MiB per kind and codec (append + sync + flush)"
    ));
    let disk_path = bench_dir("compression_disk.bin")?;
    let disk = run_disk(mb << 20, &disk_path, Some(32 << 20))?;
    fs::remove_file(&disk_path)?;
    let disk_mbps = (mb << 20) as f64 / 1e6 / disk.as_secs_f64().max(1e-9);
    row(
        "disk: 1 MiB writes, fdatasync per 32 MiB",
        disk_mbps,
        "MB/s",
        "anchor",
    );
    for (name, gen) in kinds {
        // Frames are generated before timing: 64 distinct ones, cycled.
        let frames: Vec<Vec<u8>> = (0..64u64)
            .map(|k| {
                let mut v = Vec::new();
                gen(k, &mut v);
                v
            })
            .collect();
        let n = ((mb << 20) / frames[0].len() as u64).max(1);
        let raw_bytes = n * frames[0].len() as u64;
        let mut none_mbps = 0.0;
        for (cname, codec) in [
            ("none", Codec::Raw),
            ("lz4", Codec::Lz4),
            ("zstd", Codec::Zstd),
        ] {
            let dir = bench_dir("compression_store")?;
            let opts = Options {
                value_compression: codec,
                ..Options::default()
            };
            let (cpu0, t0) = (cpu_seconds(), Instant::now());
            let store = Store::open(&dir, opts)?;
            let id = store.register_topic(spec(0))?;
            for i in 0..n {
                store.append(id, i + 1, i + 1, &frames[(i % 64) as usize])?;
            }
            store.sync()?;
            store.flush()?;
            let took = t0.elapsed();
            let cpu = cpu_seconds() - cpu0;
            store.close()?;
            let disk_bytes = du(&dir);
            fs::remove_dir_all(&dir)?;
            let mbps = raw_bytes as f64 / 1e6 / took.as_secs_f64().max(1e-9);
            if codec == Codec::Raw {
                none_mbps = mbps;
            }
            let label = format!("{name}, {cname}");
            row(
                &format!("{label}: ingest"),
                mbps,
                "MB/s",
                &format!(
                    "{:.2}x none, {:.2}x disk, {:.2} ms CPU/MB",
                    mbps / none_mbps.max(1e-9),
                    mbps / disk_mbps.max(1e-9),
                    cpu * 1e3 / (raw_bytes as f64 / 1e6)
                ),
            );
            row(
                &format!("{label}: on disk / published"),
                disk_bytes as f64 / raw_bytes as f64,
                "x",
                &format!("{} of {} MB", disk_bytes / 1_000_000, raw_bytes / 1_000_000),
            );
        }
    }
    Ok(())
}

/// Runs every scenario in its own process so VmHWM and caches stay apart.
fn all() -> Res<()> {
    let exe = std::env::current_exe()?;
    for s in [
        "small",
        "large",
        "query",
        "wamp",
        "rss",
        "recovery",
        "compression",
    ] {
        let status = Command::new(&exe).arg(s).status()?;
        if !status.success() {
            return Err(format!("scenario {s} failed: {status}").into());
        }
    }
    Ok(())
}

fn main() -> Res<()> {
    let scenario = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    match scenario.as_str() {
        "small" => small(),
        "large" => large(),
        "query" => query(),
        "wamp" => wamp(),
        "rss" => rss(),
        "recovery" => recovery(),
        "compression" => compression(),
        "recovery-writer" => {
            let dir = std::env::args().nth(2).ok_or("recovery-writer <dir>")?;
            recovery_writer(Path::new(&dir))
        }
        "all" => all(),
        other => Err(format!(
            "unknown scenario {other}: small|large|query|wamp|rss|recovery|compression|all"
        )
        .into()),
    }
}
