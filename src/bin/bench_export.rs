//! Export benchmarks (release build; see docs/benchmarks.md, export section).
//!
//! Builds a store of synthetic robot data (Imu 200 Hz, LaserScan 40 Hz,
//! 640x480 mono Image 10 Hz), then in the same run measures:
//! - export MB/s (motedb export_bag) against the mcap crate rewriting the
//!   same messages from memory with the same options (anchor);
//! - 1 s window reads through motedb against the same windows read from the
//!   exported MCAP with the mcap crate's indexed reader;
//! - `cat` decode rate (CDR -> value tree, and -> JSON text) on Imu.
//!
//! Usage: bench_export [--mib N] [--dir D] [--windows K] [--imu-only] [--keep]

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use motedb::cdr::{self, Schema};
use motedb::engine::{Nanos, Options, Store, TopicSpec};
use motedb::export::{export_bag, ExportOptions, McapCompression};

const IMU_DEF: &str = "std_msgs/Header header\ngeometry_msgs/Quaternion orientation\nfloat64[9] orientation_covariance\ngeometry_msgs/Vector3 angular_velocity\nfloat64[9] angular_velocity_covariance\ngeometry_msgs/Vector3 linear_acceleration\nfloat64[9] linear_acceleration_covariance\n================================================================================\nMSG: std_msgs/msg/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n================================================================================\nMSG: geometry_msgs/msg/Quaternion\nfloat64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n================================================================================\nMSG: geometry_msgs/msg/Vector3\nfloat64 x\nfloat64 y\nfloat64 z\n================================================================================\nMSG: builtin_interfaces/msg/Time\nint32 sec\nuint32 nanosec\n";
const LASERSCAN_DEF: &str = "std_msgs/Header header\nfloat32 angle_min\nfloat32 angle_max\nfloat32 angle_increment\nfloat32 time_increment\nfloat32 scan_time\nfloat32 range_min\nfloat32 range_max\nfloat32[] ranges\nfloat32[] intensities\n================================================================================\nMSG: std_msgs/msg/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n================================================================================\nMSG: builtin_interfaces/msg/Time\nint32 sec\nuint32 nanosec\n";
const IMAGE_DEF: &str = "std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\nuint8 is_bigendian\nuint32 step\nuint8[] data\n================================================================================\nMSG: std_msgs/msg/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n================================================================================\nMSG: builtin_interfaces/msg/Time\nint32 sec\nuint32 nanosec\n";

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * S;

/// Little-endian XCDR1 writer (alignment relative to the body).
struct Cdr(Vec<u8>);

impl Cdr {
    fn new() -> Cdr {
        Cdr(vec![0, 1, 0, 0])
    }
    fn align(&mut self, n: usize) {
        while (self.0.len() - 4) % n != 0 {
            self.0.push(0);
        }
    }
    fn u32(&mut self, v: u32) {
        self.align(4);
        self.0.extend(v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.align(4);
        self.0.extend(v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.align(8);
        self.0.extend(v.to_le_bytes());
    }
    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32 + 1);
        self.0.extend(s.as_bytes());
        self.0.push(0);
    }
    fn header(&mut self, t: u64, frame: &str) {
        self.u32((t / S) as u32);
        self.u32((t % S) as u32);
        self.string(frame);
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn imu(t: u64, r: &mut Rng) -> Vec<u8> {
    let mut c = Cdr::new();
    c.header(t, "imu_link");
    for _ in 0..4 {
        c.f64(r.f());
    }
    for _ in 0..2 {
        for _ in 0..9 {
            c.f64(r.f());
        }
        for _ in 0..3 {
            c.f64(r.f());
        }
    }
    for _ in 0..9 {
        c.f64(r.f());
    }
    c.0
}

fn scan(t: u64, r: &mut Rng) -> Vec<u8> {
    let mut c = Cdr::new();
    c.header(t, "laser");
    for v in [-3.1f32, 3.1, 0.0087, 0.0, 0.025, 0.1, 30.0] {
        c.f32(v);
    }
    for _ in 0..2 {
        c.u32(720);
        for _ in 0..720 {
            c.f32((r.f() * 30.0) as f32);
        }
    }
    c.0
}

fn image(t: u64, r: &mut Rng) -> Vec<u8> {
    let mut c = Cdr::new();
    c.header(t, "camera");
    c.u32(480);
    c.u32(640);
    c.string("mono8");
    c.0.push(0);
    c.u32(640);
    c.u32(640 * 480);
    let n = c.0.len();
    c.0.resize(n + 640 * 480, 0);
    for chunk in c.0[n..].chunks_mut(8) {
        let x = r.next().to_le_bytes();
        chunk.copy_from_slice(&x[..chunk.len()]);
    }
    c.0
}

fn spec(name: &str, ty: &str, def: &str) -> TopicSpec {
    TopicSpec {
        name: name.into(),
        type_name: ty.into(),
        serialization_format: "cdr".into(),
        definition: def.into(),
        offered_qos: String::new(),
        type_hash: String::new(),
    }
}

/// Fills a store with about `mib` MiB; returns (payload bytes, messages, end time).
fn build_store(path: &Path, mib: u64, imu_only: bool) -> (u64, u64, Nanos) {
    let store = Store::open(path, Options::default()).expect("open store");
    let ids = [
        store.register_topic(spec("/imu", "sensor_msgs/msg/Imu", IMU_DEF)),
        store.register_topic(spec("/scan", "sensor_msgs/msg/LaserScan", LASERSCAN_DEF)),
        store.register_topic(spec("/image", "sensor_msgs/msg/Image", IMAGE_DEF)),
    ]
    .map(|r| r.expect("register"));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut bytes, mut count, mut t) = (0u64, 0u64, T0);
    // 5 ms ticks: imu every tick, scan every 5th, image every 20th
    let mut tick = 0u64;
    while bytes < mib << 20 {
        let mut put = |id, p: Vec<u8>| {
            store.append(id, t, t - 1000, &p).expect("append");
            bytes += p.len() as u64;
            count += 1;
        };
        put(ids[0], imu(t, &mut rng));
        if tick % 5 == 0 && !imu_only {
            put(ids[1], scan(t, &mut rng));
        }
        if tick % 20 == 0 && !imu_only {
            put(ids[2], image(t, &mut rng));
        }
        tick += 1;
        t += 5_000_000;
    }
    store.close().expect("close");
    (bytes, count, t)
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

/// Anchor: the mcap crate writing the same messages from memory.
fn mcap_rewrite(src: &Path, out: &Path, compression: Option<mcap::Compression>) -> Duration {
    let bytes = std::fs::read(src).expect("read export");
    let msgs: Vec<mcap::Message> = mcap::MessageStream::new(&bytes)
        .expect("stream")
        .map(|m| m.expect("message"))
        .collect();
    let start = Instant::now();
    let f = BufWriter::with_capacity(1 << 20, File::create(out).expect("create"));
    let mut w = mcap::WriteOptions::new()
        .profile("ros2")
        .compression(compression)
        .create(f)
        .expect("writer");
    for m in &msgs {
        w.write(m).expect("write");
    }
    w.finish().expect("finish");
    let f = w.into_inner().into_inner().expect("flush");
    f.sync_all().expect("sync");
    start.elapsed()
}

fn read_summary(file: &mut File) -> mcap::Summary {
    use mcap::sans_io::{SummaryReadEvent, SummaryReader};
    let mut reader = SummaryReader::new();
    while let Some(event) = reader.next_event() {
        match event.expect("summary") {
            SummaryReadEvent::ReadRequest(n) => {
                let got = file.read(reader.insert(n)).expect("read");
                reader.notify_read(got);
            }
            SummaryReadEvent::SeekRequest(to) => {
                reader.notify_seeked(file.seek(to).expect("seek"));
            }
        }
    }
    reader.finish().expect("summary present")
}

/// Messages and bytes in `[t, t + 1 s)` via the mcap indexed reader.
fn mcap_window(file: &mut File, summary: &mcap::Summary, t: u64) -> (u64, u64) {
    use mcap::sans_io::{IndexedReadEvent, IndexedReader, IndexedReaderOptions};
    let opts = IndexedReaderOptions::new()
        .starting_at(t)
        .ending_before(t + S);
    let mut reader = IndexedReader::new_with_options(summary, opts).expect("indexed reader");
    let mut buf = Vec::new();
    let (mut n, mut bytes) = (0, 0);
    while let Some(event) = reader.next_event() {
        match event.expect("event") {
            IndexedReadEvent::ReadChunkRequest { offset, length } => {
                file.seek(SeekFrom::Start(offset)).expect("seek");
                buf.resize(length, 0);
                file.read_exact(&mut buf).expect("read");
                reader
                    .insert_chunk_record_data(offset, &buf)
                    .expect("chunk");
            }
            IndexedReadEvent::Message { data, .. } => {
                n += 1;
                bytes += data.len() as u64;
            }
        }
    }
    (n, bytes)
}

fn motedb_window(store: &Store, t: u64) -> (u64, u64) {
    let (mut n, mut bytes) = (0, 0);
    for r in store.iter(&[], t, t + S, false).expect("iter") {
        n += 1;
        bytes += r.expect("record").payload.len() as u64;
    }
    (n, bytes)
}

fn bench_export(store: &Store, dir: &Path, payload: u64) -> Vec<PathBuf> {
    let mut files = Vec::new();
    println!("| compression | motedb export MB/s | mcap crate rewrite MB/s | ratio motedb/mcap | bag size MiB |");
    println!("|---|---|---|---|---|");
    for (name, c, mc) in [
        ("zstd", McapCompression::Zstd, Some(mcap::Compression::Zstd)),
        ("lz4", McapCompression::Lz4, Some(mcap::Compression::Lz4)),
        ("none", McapCompression::None, None),
    ] {
        let opts = ExportOptions {
            output: dir.join(format!("bag_{name}")),
            beneath: None,
            compression: c,
            ..ExportOptions::default()
        };
        let start = Instant::now();
        let summary = export_bag(store, &opts).expect("export");
        let ours = start.elapsed();
        let anchor = mcap_rewrite(
            &summary.files[0],
            &dir.join(format!("anchor_{name}.mcap")),
            mc,
        );
        println!(
            "| {name} | {:.0} | {:.0} | {:.2} | {:.1} |",
            mbps(payload, ours),
            mbps(payload, anchor),
            anchor.as_secs_f64() / ours.as_secs_f64(),
            summary.size_bytes as f64 / (1 << 20) as f64
        );
        files.push(summary.files[0].clone());
    }
    files
}

fn bench_windows(store: &Store, mcap_path: &Path, end: Nanos, k: u64) {
    let mut file = File::open(mcap_path).expect("open mcap");
    let summary = read_summary(&mut file);
    let span = (end - T0) / S;
    let starts: Vec<u64> = (0..k).map(|i| T0 + (i * 7919 % span.max(1)) * S).collect();
    let time = |f: &mut dyn FnMut(u64) -> (u64, u64)| {
        let start = Instant::now();
        let mut total = (0, 0);
        for &t in &starts {
            let (n, b) = f(t);
            total = (total.0 + n, total.1 + b);
        }
        (start.elapsed() / k as u32, total)
    };
    let (ours, a) = time(&mut |t| motedb_window(store, t));
    let (theirs, b) = time(&mut |t| mcap_window(&mut file, &summary, t));
    assert_eq!(a, b, "both readers must return the same windows");
    println!();
    println!(
        "| 1 s window read ({k} windows, {} msgs, {:.1} MiB each on average) | time per window |",
        a.0 / k,
        a.1 as f64 / k as f64 / (1 << 20) as f64
    );
    println!("|---|---|");
    println!("| motedb store.iter | {:.2} ms |", ours.as_secs_f64() * 1e3);
    println!(
        "| exported MCAP (zstd), mcap crate IndexedReader | {:.2} ms |",
        theirs.as_secs_f64() * 1e3
    );
    println!(
        "| ratio mcap/motedb | {:.2} |",
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
}

fn bench_decode(store: &Store) {
    let topic = store.topic_by_name("/imu").expect("imu topic");
    let schema = Schema::parse(&topic.spec.type_name, &topic.spec.definition).expect("schema");
    let payloads: Vec<Vec<u8>> = store
        .iter(&[topic.id], 0, Nanos::MAX, false)
        .expect("iter")
        .take(50_000)
        .map(|r| r.expect("record").payload)
        .collect();
    let n = payloads.len() as f64;
    let start = Instant::now();
    for p in &payloads {
        std::hint::black_box(cdr::decode(&schema, p).expect("decode"));
    }
    let tree = start.elapsed();
    let start = Instant::now();
    let mut chars = 0;
    for p in &payloads {
        chars += cdr::decode(&schema, p).expect("decode").to_json().len();
    }
    let json = start.elapsed();
    std::hint::black_box(chars);
    println!();
    println!(
        "| cat decode, sensor_msgs/Imu ({} msgs) | msgs/s |",
        payloads.len()
    );
    println!("|---|---|");
    println!("| CDR -> value tree | {:.0} |", n / tree.as_secs_f64());
    println!("| CDR -> JSON text | {:.0} |", n / json.as_secs_f64());
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = arg(&args, "--mib")
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let windows: u64 = arg(&args, "--windows")
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let base = arg(&args, "--dir")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("motedb_bench_export_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let store_path = dir.join("store");
    let start = Instant::now();
    let imu_only = args.iter().any(|a| a == "--imu-only");
    let (payload, count, end) = build_store(&store_path, mib, imu_only);
    println!(
        "store: {count} messages, {:.1} MiB payload, {:.1} s of data, built in {:.1} s\n",
        payload as f64 / (1 << 20) as f64,
        (end - T0) as f64 / 1e9,
        start.elapsed().as_secs_f64()
    );
    let store = Store::open_read_only(&store_path).expect("open read-only");
    let files = bench_export(&store, &dir, payload);
    bench_windows(&store, &files[0], end, windows);
    bench_decode(&store);
    drop(store);
    if args.iter().any(|a| a == "--keep") {
        println!("\nkept {}", dir.display());
    } else if let Err(e) = std::fs::remove_dir_all(&dir) {
        eprintln!("could not remove {}: {e}", dir.display());
    }
}
