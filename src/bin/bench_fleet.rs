//! Offload benchmark (docs/benchmarks.md, "Offload to object storage";
//! issue 14). Driven by scripts/bench-fleet, which starts a Garage S3
//! server on loopback inside a private network namespace and passes its
//! credentials file.
//!
//! One run, against one server:
//! - a store of N seconds (default 20) of a 1 kHz topic of 256 B messages
//!   and a 30 Hz topic of 2 MiB pseudo-random messages (the data of
//!   `bench_play make`, about 1.2 GB), written here;
//! - the disk's read rate of the store's files, cold (each file dropped
//!   from the page cache with fadvise first) and warm;
//! - upload: `remote::push` of the store against the anchor, the same
//!   bytes in the same 8 MiB pieces PUT one at a time by the same kind of
//!   `Bucket` from buffers read beforehand (no disk reads in the anchor).
//!   After two untimed warm-up rounds of the anchor: anchor, push, anchor,
//!   a control (the same PUTs with each piece read from its file and
//!   checksummed just before, push's own per-chunk work without its
//!   listing, index and check of the copy), anchor; then the push of the
//!   unchanged store again;
//! - a 1 s window in the middle, all topics: opened and read in place
//!   from the bucket, cold each time (a fresh `Bucket`, so a fresh
//!   connection, and a fresh open, so an empty page cache), against the
//!   anchor, GET of every chunk object of the store (downloading it), and
//!   the same window from the local store for reference;
//! - with `--motedb PATH`: `motedb export` of that window, as a process,
//!   from the local store and from the bucket.
//!
//! Usage: bench_fleet --env FILE --dir DIR [--seconds N] [--reps K]
//!        [--download-reps K] [--motedb PATH] [--json]
//! DIR must not exist; it is removed at the end. `--json` adds one JSON
//! line with every figure after the text.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use motedb::engine::{self, Store};
use motedb::remote::{self, Bucket, Config, Index, Location, PushOptions};

#[path = "bench_common/store.rs"]
mod bench_store;
use bench_store::{make, S, T0};

const MB: f64 = 1e6;
/// The size of push's chunk objects and of the anchor's PUTs.
const PIECE: u64 = 8 << 20;
const URL: &str = "s3://motedb/bench/robot";

/// The files `remote::push` uploads, in its order: the manifest, the WAL
/// segments at or above the floor, the live tables, the value logs.
fn store_files(dir: &Path) -> Vec<(String, u64)> {
    let manifest = std::fs::read(dir.join(engine::MANIFEST_FILE)).expect("read the manifest");
    let live = engine::live_files(&manifest).expect("parse the manifest");
    let mut wal: Vec<(u64, String)> = std::fs::read_dir(dir)
        .expect("list the store")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            engine::wal_segment(&name)
                .filter(|s| *s >= live.wal_floor)
                .map(|s| (s, name))
        })
        .collect();
    wal.sort();
    std::iter::once(engine::MANIFEST_FILE.to_string())
        .chain(wal.into_iter().map(|(_, n)| n))
        .chain(live.tables)
        .chain(live.vlogs)
        .map(|n| {
            let size = std::fs::metadata(dir.join(&n)).expect("stat").len();
            (n, size)
        })
        .collect()
}

/// Reads every file once in 8 MiB reads; bytes read.
fn read_all(dir: &Path, files: &[(String, u64)]) -> u64 {
    let mut buf = vec![0u8; PIECE as usize];
    let mut n = 0;
    for (name, size) in files {
        let f = File::open(dir.join(name)).expect("open a store file");
        let mut at = 0;
        while at < *size {
            let len = PIECE.min(size - at) as usize;
            f.read_exact_at(&mut buf[..len], at).expect("read");
            std::hint::black_box(&buf);
            at += len as u64;
            n += len as u64;
        }
    }
    n
}

/// CPU time (user + system, in clock ticks) of a process so far.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Between rounds, untimed: writes every dirty page back (sync(2); the
/// server's data dir is on this disk), then waits until the server is
/// idle (under 5 % of a core for two half seconds in a row) or 60 s
/// have passed. Garage
/// works on for seconds after a GB of PUTs (its tables' Merkle trees,
/// block reference counts); a round started meanwhile runs slower.
/// Returns the time waited.
fn settle(server: Option<u32>) -> Duration {
    let started = Instant::now();
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let Some(pid) = server else {
        return started.elapsed();
    };
    // SAFETY: sysconf with a valid name has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let step = Duration::from_millis(500);
    let mut quiet = 0;
    let mut last = cpu_ticks(pid);
    while quiet < 2 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(step);
        let now = cpu_ticks(pid);
        let used_ms = match (last, now) {
            (Some(a), Some(b)) => b.saturating_sub(a) * 1000 / hz,
            _ => 0,
        };
        // Under 5 % of the step.
        quiet = if used_ms * 20 <= step.as_millis() as u64 {
            quiet + 1
        } else {
            0
        };
        last = now;
    }
    started.elapsed()
}

/// Drops the store's files (only them) from the page cache.
fn drop_cached(dir: &Path, files: &[(String, u64)]) {
    for (name, _) in files {
        let f = File::open(dir.join(name)).expect("open a store file");
        f.sync_data().expect("sync");
        // SAFETY: a valid open descriptor; fadvise only drops clean pages.
        let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(r, 0, "posix_fadvise");
    }
}

/// Every file cut into 8 MiB pieces as push cuts it: (file, offset, len).
fn piece_list(files: &[(String, u64)]) -> Vec<(&str, u64, usize)> {
    let mut out = Vec::new();
    for (name, size) in files {
        let mut at = 0;
        while at < *size {
            let len = PIECE.min(size - at);
            out.push((name.as_str(), at, len as usize));
            at += len;
        }
    }
    out
}

/// One byte of every MiB changed by `round`, so that Garage's
/// content-addressed 1 MiB blocks (deduplicated by hash) written by one
/// round or by the push are never reused by another: each round writes
/// all its blocks.
fn mark(buf: &mut [u8], round: u8) {
    for i in (0..buf.len()).step_by(1 << 20) {
        buf[i] ^= round;
    }
}

fn read_piece(dir: &Path, name: &str, at: u64, len: usize) -> Vec<u8> {
    let f = File::open(dir.join(name)).expect("open a store file");
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, at).expect("read");
    buf
}

struct Put {
    time: Duration,
    bytes: u64,
    objects: u64,
}

/// PUTs the store's bytes in 8 MiB objects, one at a time, under
/// `raw<round>/`. `from_file` false: from buffers read before the clock
/// starts (the anchor); true: each piece read from its file and
/// checksummed (crc32) just before its PUT, as push does per chunk.
/// The objects stay (the server's data dir is removed at the end).
fn raw_put(
    bucket: &Bucket,
    location: &Location,
    dir: &Path,
    files: &[(String, u64)],
    round: u8,
    from_file: bool,
) -> Put {
    let list = piece_list(files);
    let keys: Vec<String> = (0..list.len())
        .map(|i| location.key(&format!("raw{round}/{i:06}")))
        .collect();
    let mut buffers: Vec<Vec<u8>> = Vec::new();
    if !from_file {
        for (name, at, len) in &list {
            let mut buf = read_piece(dir, name, *at, *len);
            mark(&mut buf, round);
            buffers.push(buf);
        }
    }
    let mut buffers = buffers.into_iter();
    let started = Instant::now();
    for (key, (name, at, len)) in keys.iter().zip(&list) {
        let piece = if from_file {
            let mut buf = read_piece(dir, name, *at, *len);
            std::hint::black_box(crc32fast::hash(&buf));
            mark(&mut buf, round);
            buf
        } else {
            buffers.next().expect("a buffer per piece")
        };
        bucket.put(key, piece).expect("raw PUT");
    }
    Put {
        time: started.elapsed(),
        bytes: list.iter().map(|(_, _, n)| *n as u64).sum(),
        objects: list.len() as u64,
    }
}

/// Every message of every topic in `[start, end)`: count and payload bytes.
fn window(store: &Store, start: u64, end: u64) -> (u64, u64) {
    let ids: Vec<_> = store.topics().iter().map(|t| t.id).collect();
    let (mut n, mut bytes) = (0, 0);
    for r in store.iter(&ids, start, end, false).expect("iter") {
        let r = r.expect("record");
        bytes += r.payload.len() as u64;
        std::hint::black_box(&r.payload);
        n += 1;
    }
    (n, bytes)
}

/// GETs and bytes a bucket has received so far.
fn received(b: &Bucket) -> (u64, u64) {
    (
        b.traffic.gets.load(Ordering::Relaxed),
        b.traffic.bytes_in.load(Ordering::Relaxed),
    )
}

struct Cold {
    open: Duration,
    query: Duration,
    open_gets: u64,
    open_bytes: u64,
    query_gets: u64,
    query_bytes: u64,
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn max(v: &[Duration]) -> Duration {
    v.iter().copied().max().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn rate(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MB / d.as_secs_f64()
}

/// Wall time of `motedb export` of the window into a new bag.
fn cli_export(
    motedb: &Path,
    env: &Path,
    store: &str,
    out: &Path,
    start: u64,
    end: u64,
) -> Duration {
    let unix = |ns: u64| format!("{}.{:09}", ns / S, ns % S);
    let started = Instant::now();
    let o = Command::new(motedb)
        .arg("--s3-credentials")
        .arg(env)
        .args(["export", store])
        .arg(out)
        .args(["--start", &unix(start), "--end", &unix(end)])
        .args(["--compression", "none"])
        .output()
        .expect("run motedb");
    let took = started.elapsed();
    assert!(
        o.status.success(),
        "motedb export {store}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::remove_dir_all(out).expect("remove the bag");
    took
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let number = |name: &str, default: u64| -> u64 {
        arg(name).map_or(default, |v| v.parse().expect("a number"))
    };
    let (Some(env), Some(dir)) = (arg("--env"), arg("--dir")) else {
        eprintln!(
            "usage: bench_fleet --env FILE --dir DIR [--seconds N] [--reps K] \
             [--download-reps K] [--motedb PATH] [--json]"
        );
        std::process::exit(2);
    };
    let (env, dir) = (PathBuf::from(env), PathBuf::from(dir));
    let seconds = number("--seconds", 20);
    let reps = number("--reps", 7).max(1) as usize;
    let download_reps = number("--download-reps", 3).max(1) as usize;
    let motedb = arg("--motedb").map(PathBuf::from);
    let json = args.iter().any(|a| a == "--json");
    assert!(!dir.exists(), "{} exists", dir.display());
    let store_dir = dir.join("store");

    let mut cfg = Config::default()
        .with_file(&env)
        .expect("read the credentials file");
    cfg.retry_for = Duration::from_secs(60);
    let connect = || Bucket::connect(&cfg, "motedb").expect("connect");
    let location = Location::parse(URL).expect("location");
    // The server's pid, from the file scripts/garage writes next to env.
    let server: Option<u32> = env
        .parent()
        .and_then(|d| std::fs::read_to_string(d.join("pid")).ok())
        .and_then(|p| p.trim().parse().ok());
    let mut waits: Vec<Duration> = Vec::new();
    let bucket = connect();
    bucket.check().expect("the bucket answers");

    // The store.
    let started = Instant::now();
    make(&store_dir, seconds);
    let make_time = started.elapsed();
    let files = store_files(&store_dir);
    let store_bytes: u64 = files.iter().map(|(_, n)| n).sum();
    let count = |f: &dyn Fn(&str) -> bool| files.iter().filter(|(n, _)| f(n)).count();
    println!(
        "store: {seconds} s, {:.1} MB in {} files ({} WAL, {} tables, {} value logs), written in {:.1} s",
        store_bytes as f64 / MB,
        files.len(),
        count(&|n| engine::wal_segment(n).is_some()),
        count(&|n| n.ends_with(".sst")),
        count(&|n| n.ends_with(".vlog")),
        make_time.as_secs_f64(),
    );

    // The disk: cold, then warm (the push below reads warm files).
    drop_cached(&store_dir, &files);
    let started = Instant::now();
    let n = read_all(&store_dir, &files);
    let disk_cold = started.elapsed();
    let started = Instant::now();
    read_all(&store_dir, &files);
    let disk_warm = started.elapsed();
    println!(
        "disk read of the store files, 8 MiB reads: cold (fadvise DONTNEED first) {:.0} MB/s, warm (page cache) {:.0} MB/s",
        rate(n, disk_cold),
        rate(n, disk_warm)
    );

    // Upload, one round after another: anchor, push, anchor, PUT read
    // from the files, anchor. The anchor's rounds bracket the others, so
    // a drift of the server's rate over the run shows and averages out.
    // Before each round every dirty page is written back and the server
    // is let go idle (untimed). First two untimed warm-up rounds: a fresh
    // Garage here takes its first 1.3-1.9 GB at 150-175 MB/s and what
    // follows at 80-105 MB/s, which would favour whatever is sent first.
    let mut warm_up = Vec::new();
    for round in [5, 6] {
        waits.push(settle(server));
        warm_up.push(raw_put(
            &connect(),
            &location,
            &store_dir,
            &files,
            round,
            false,
        ));
    }
    waits.push(settle(server));
    let raw1 = raw_put(&connect(), &location, &store_dir, &files, 1, false);
    waits.push(settle(server));
    let pushed = connect();
    let started = Instant::now();
    let report =
        remote::push(&store_dir, &pushed, &location, &PushOptions::default()).expect("push");
    let push_time = started.elapsed();
    assert_eq!(report.store_bytes, store_bytes, "push and anchor bytes");
    assert_eq!(report.uploaded_bytes, store_bytes, "a first push sends all");
    let push = Put {
        time: push_time,
        bytes: report.uploaded_bytes,
        objects: pushed.traffic.puts.load(Ordering::Relaxed),
    };
    waits.push(settle(server));
    let raw2 = raw_put(&connect(), &location, &store_dir, &files, 2, false);
    waits.push(settle(server));
    let read_put = raw_put(&connect(), &location, &store_dir, &files, 3, true);
    waits.push(settle(server));
    let raw3 = raw_put(&connect(), &location, &store_dir, &files, 4, false);
    waits.push(settle(server));
    let again_bucket = connect();
    let started = Instant::now();
    let again = remote::push(
        &store_dir,
        &again_bucket,
        &location,
        &PushOptions::default(),
    )
    .expect("push again");
    let again_time = started.elapsed();
    let again_gets = received(&again_bucket).0;
    // The anchor's rate: the bytes over the mean time of its rounds.
    let anchor = (raw1.time + raw2.time + raw3.time) / 3;
    println!(
        "\nupload of {:.1} MB as 8 MiB objects, one PUT at a time:",
        store_bytes as f64 / MB
    );
    for (name, p) in [
        ("warm-up 1, raw PUT (not counted)", &warm_up[0]),
        ("warm-up 2, raw PUT (not counted)", &warm_up[1]),
        ("raw PUT anchor, round 1 (buffers read beforehand)", &raw1),
        ("motedb push", &push),
        ("raw PUT anchor, round 2", &raw2),
        ("PUT, each piece read + crc32 just before", &read_put),
        ("raw PUT anchor, round 3", &raw3),
    ] {
        println!(
            "  {name}: {:.2} s, {:.0} MB/s, {} PUTs, {:.2} of the anchor",
            p.time.as_secs_f64(),
            rate(p.bytes, p.time),
            p.objects,
            anchor.as_secs_f64() / p.time.as_secs_f64()
        );
    }
    // Each against the anchor rounds just before and after it.
    let push_near = (raw1.time + raw2.time) / 2;
    let read_near = (raw2.time + raw3.time) / 2;
    println!(
        "  anchor (mean time of its 3 rounds): {:.0} MB/s; push / anchor {:.2}",
        rate(store_bytes, anchor),
        anchor.as_secs_f64() / push_time.as_secs_f64()
    );
    println!(
        "  against the anchor rounds just before and after: push {:.2}, read + crc32 + PUT {:.2}",
        push_near.as_secs_f64() / push_time.as_secs_f64(),
        read_near.as_secs_f64() / read_put.time.as_secs_f64()
    );
    println!(
        "  before each round: sync, then the server idle ({}): waited {} s",
        if server.is_some() {
            "its CPU time watched"
        } else {
            "no pid file: sync only"
        },
        waits
            .iter()
            .map(|w| format!("{:.1}", w.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  push again, store unchanged: {:.0} ms, changed {}, {} chunks and {} bytes uploaded, {} GETs",
        ms(again_time),
        again.changed,
        again.uploaded_chunks,
        again.uploaded_bytes,
        again_gets
    );

    // The 1 s window in the middle.
    waits.push(settle(server));
    let mid = T0 + seconds * S / 2;
    let (start, end) = (mid - S / 2, mid + S / 2);
    let started = Instant::now();
    let local = Store::open_read_only(&store_dir).expect("open the local store");
    let local_open = started.elapsed();
    let started = Instant::now();
    let (msgs, payload) = window(&local, start, end);
    let local_query = started.elapsed();
    drop(local);

    let mut cold = Vec::new();
    for _ in 0..reps {
        let b = connect();
        let started = Instant::now();
        let (store, _rfs) = remote::open_store(b.clone(), &location).expect("open remote");
        let open = started.elapsed();
        let (open_gets, open_bytes) = received(&b);
        let started = Instant::now();
        let got = window(&store, start, end);
        let query = started.elapsed();
        assert_eq!(got, (msgs, payload), "remote and local windows differ");
        let (gets, bytes) = received(&b);
        cold.push(Cold {
            open,
            query,
            open_gets,
            open_bytes,
            query_gets: gets - open_gets,
            query_bytes: bytes - open_bytes,
        });
    }

    let mut downloads = Vec::new();
    let (mut dl_gets, mut dl_bytes) = (0, 0);
    for _ in 0..download_reps {
        let b = connect();
        let started = Instant::now();
        let ix = b
            .get_opt(&location.key(remote::INDEX))
            .expect("get the index")
            .expect("an index");
        let ix = Index::parse(&ix, URL).expect("parse the index");
        for (name, f) in &ix.files {
            for c in &f.chunks {
                let data = b
                    .get_opt(&location.key(&c.key(name)))
                    .expect("get a chunk")
                    .expect("the chunk exists");
                assert_eq!(data.len() as u64, c.len);
                std::hint::black_box(&data);
            }
        }
        downloads.push(started.elapsed());
        (dl_gets, dl_bytes) = received(&b);
    }

    let opens: Vec<Duration> = cold.iter().map(|c| c.open).collect();
    let queries: Vec<Duration> = cold.iter().map(|c| c.query).collect();
    let totals: Vec<Duration> = cold.iter().map(|c| c.open + c.query).collect();
    let c0 = &cold[0];
    let steady = cold.iter().all(|c| {
        (c.open_gets, c.open_bytes, c.query_gets, c.query_bytes)
            == (c0.open_gets, c0.open_bytes, c0.query_gets, c0.query_bytes)
    });
    let remote_bytes = c0.open_bytes + c0.query_bytes;
    let remote_gets = c0.open_gets + c0.query_gets;
    println!(
        "\n1 s window [{:.1} s, {:.1} s) of {seconds} s, all topics: {msgs} messages, {:.1} MB of payload",
        (start - T0) as f64 / S as f64,
        (end - T0) as f64 / S as f64,
        payload as f64 / MB
    );
    println!(
        "  local store (page cache warm): open {:.1} ms, query {:.1} ms",
        ms(local_open),
        ms(local_query)
    );
    println!(
        "  remote, cold ({reps} reps, median / max): open {:.0} / {:.0} ms, query {:.0} / {:.0} ms, open + query {:.0} / {:.0} ms",
        ms(median(&opens)),
        ms(max(&opens)),
        ms(median(&queries)),
        ms(max(&queries)),
        ms(median(&totals)),
        ms(max(&totals))
    );
    println!(
        "  remote fetched: open {} GETs {:.2} MB, query {} GETs {:.2} MB, total {remote_gets} GETs {:.2} MB ({:.2}x the payload){}",
        c0.open_gets,
        c0.open_bytes as f64 / MB,
        c0.query_gets,
        c0.query_bytes as f64 / MB,
        remote_bytes as f64 / MB,
        remote_bytes as f64 / payload as f64,
        if steady { ", same in every rep" } else { ", first rep (varied)" }
    );
    println!(
        "  download anchor, GET of the index and every chunk object ({download_reps} reps, median / max): {:.2} / {:.2} s, {dl_gets} GETs, {:.1} MB, {:.0} MB/s",
        median(&downloads).as_secs_f64(),
        max(&downloads).as_secs_f64(),
        dl_bytes as f64 / MB,
        rate(dl_bytes, median(&downloads))
    );
    let time_ratio = median(&totals).as_secs_f64() / median(&downloads).as_secs_f64();
    let bytes_ratio = remote_bytes as f64 / dl_bytes as f64;
    println!(
        "  remote query / download: bytes {bytes_ratio:.4}, time {time_ratio:.4} (medians); remote / local time {:.2}",
        median(&totals).as_secs_f64() / (local_open + local_query).as_secs_f64()
    );

    let mut cli = None;
    if let Some(motedb) = &motedb {
        let out = dir.join("bag");
        let local_path = store_dir.display().to_string();
        let (mut l, mut r) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            l.push(cli_export(motedb, &env, &local_path, &out, start, end));
            r.push(cli_export(motedb, &env, URL, &out, start, end));
        }
        println!(
            "  motedb export of the window (--compression none, a process each, 3 reps, median / max): local {:.0} / {:.0} ms, remote {:.0} / {:.0} ms",
            ms(median(&l)),
            ms(max(&l)),
            ms(median(&r)),
            ms(max(&r))
        );
        cli = Some((median(&l), median(&r)));
    }

    if json {
        let v = serde_json::json!({
            "seconds": seconds,
            "store_bytes": store_bytes,
            "files": files.len(),
            "disk_read_cold_mb_s": rate(n, disk_cold),
            "disk_read_warm_mb_s": rate(n, disk_warm),
            "raw_put_s": [raw1.time.as_secs_f64(), raw2.time.as_secs_f64(), raw3.time.as_secs_f64()],
            "read_put_s": read_put.time.as_secs_f64(),
            "warm_up_put_s": warm_up.iter().map(|p| p.time.as_secs_f64()).collect::<Vec<_>>(),
            "settle_s": waits.iter().map(|w| w.as_secs_f64()).collect::<Vec<_>>(),
            "push_s": push_time.as_secs_f64(),
            "push_mb_s": rate(report.uploaded_bytes, push_time),
            "push_chunks": report.uploaded_chunks,
            "push_over_anchor": anchor.as_secs_f64() / push_time.as_secs_f64(),
            "push_over_neighbours": push_near.as_secs_f64() / push_time.as_secs_f64(),
            "read_put_over_neighbours": read_near.as_secs_f64() / read_put.time.as_secs_f64(),
            "push_again_ms": ms(again_time),
            "push_again_uploaded_bytes": again.uploaded_bytes,
            "window_messages": msgs,
            "window_payload_bytes": payload,
            "local_open_ms": ms(local_open),
            "local_query_ms": ms(local_query),
            "remote_open_ms": opens.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
            "remote_query_ms": queries.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
            "remote_open_gets": c0.open_gets,
            "remote_open_bytes": c0.open_bytes,
            "remote_query_gets": c0.query_gets,
            "remote_query_bytes": c0.query_bytes,
            "download_s": downloads.iter().map(|d| d.as_secs_f64()).collect::<Vec<_>>(),
            "download_gets": dl_gets,
            "download_bytes": dl_bytes,
            "bytes_ratio": bytes_ratio,
            "time_ratio": time_ratio,
            "cli_export_ms": cli.map(|(l, r)| [ms(l), ms(r)]),
        });
        println!("{v}");
    }
    // The bucket's objects go with the server's data dir.
    std::fs::remove_dir_all(&dir).expect("remove the bench dir");
}
