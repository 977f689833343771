//! Quick engine throughput/latency probe (the anchored, side-by-side
//! benchmarks live in benches/). Usage:
//!   cargo run --release --example engine_probe -- [dir] [small_msgs] [big_msgs]
//! Prints msgs/s for 256 B messages over 16 topics (with the mcap writer on
//! the same messages for reference), MB/s for 1 MiB messages, and the p50
//! of 1 s window queries.

use motedb::engine::{Durability, Options, ScanRequest, Store, TopicSpec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn spec(i: usize) -> TopicSpec {
    TopicSpec {
        name: format!("/topic{i}"),
        type_name: "std_msgs/msg/String".into(),
        serialization_format: "cdr".into(),
        ..TopicSpec::default()
    }
}

/// Incompressible bytes, different per message.
fn fill(buf: &mut [u8], seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

fn ingest_small(dir: &Path, n: u64) -> AnyResult<(f64, Store)> {
    let store = Store::open(dir, Options::default())?;
    let ids: Vec<u32> = (0..16)
        .map(|i| store.register_topic(spec(i)))
        .collect::<Result<_, _>>()?;
    let mut payload = vec![7u8; 256];
    let t0 = Instant::now();
    for i in 0..n {
        fill(&mut payload, i);
        let topic = ids[(i % 16) as usize];
        // 16 topics at 1 kHz each: 1 ms per topic step.
        let time = (i / 16) * 1_000_000;
        store.append(topic, time, time, &payload)?;
    }
    store.sync()?;
    let secs = t0.elapsed().as_secs_f64();
    Ok((n as f64 / secs, store))
}

fn mcap_small(path: &Path, n: u64) -> AnyResult<f64> {
    let f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut w = mcap::WriteOptions::new()
        .compression(Some(mcap::Compression::Lz4))
        .create(f)?;
    let schema = w.add_schema("std_msgs/msg/String", "ros2msg", b"string data")?;
    let chans: Vec<u16> = (0..16)
        .map(|i| w.add_channel(schema, &format!("/topic{i}"), "cdr", &BTreeMap::new()))
        .collect::<Result<_, _>>()?;
    let mut payload = vec![7u8; 256];
    let t0 = Instant::now();
    for i in 0..n {
        fill(&mut payload, i);
        let time = (i / 16) * 1_000_000;
        let h = mcap::records::MessageHeader {
            channel_id: chans[(i % 16) as usize],
            sequence: i as u32,
            log_time: time,
            publish_time: time,
        };
        w.write_to_known_channel(&h, &payload)?;
    }
    w.finish()?;
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

fn ingest_big(dir: &Path, n: u64) -> AnyResult<f64> {
    let opts = Options {
        durability: Durability::Periodic(Duration::from_millis(100)),
        ..Options::default()
    };
    let store = Store::open(dir, opts)?;
    let t = store.register_topic(spec(0))?;
    let payload: Vec<u8> = (0..1 << 20).map(|i| (i * 7) as u8).collect();
    let t0 = Instant::now();
    for i in 0..n {
        store.append(t, i * 100_000_000, 0, &payload)?;
    }
    store.sync()?;
    let secs = t0.elapsed().as_secs_f64();
    store.close()?;
    Ok((n << 20) as f64 / secs / 1e6)
}

fn query_p50(store: &Store, n: u64) -> AnyResult<(Duration, usize)> {
    store.flush()?;
    let span = (n / 16) * 1_000_000;
    let mut lat = Vec::new();
    let mut count = 0;
    for q in 0..200u64 {
        let start = (q * 7_919_000_000) % span.saturating_sub(1_000_000_000).max(1);
        let req = ScanRequest {
            topics: vec![3],
            start,
            end: start + 1_000_000_000,
            newest_first: false,
            max_messages: 0,
            max_bytes: 0,
            cursor: None,
        };
        let t0 = Instant::now();
        let page = store.scan(&req)?;
        lat.push(t0.elapsed());
        count = page.records.len();
    }
    lat.sort();
    Ok((lat[lat.len() / 2], count))
}

fn main() -> AnyResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let base = PathBuf::from(
        args.get(1)
            .cloned()
            .unwrap_or_else(|| "/tmp/motedb-bench".into()),
    );
    let small: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let big: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base)?;
    let skip_mcap = std::env::var_os("BENCH_SKIP_MCAP").is_some();
    let m = if skip_mcap {
        f64::NAN
    } else {
        mcap_small(&base.join("anchor.mcap"), small)?
    };
    let (e, store) = ingest_small(&base.join("small"), small)?;
    println!(
        "256B x16 topics: engine {e:.0} msg/s, mcap {m:.0} msg/s, ratio {:.2}",
        e / m
    );
    let (p50, n) = query_p50(&store, small)?;
    println!("1 s window of one 1 kHz topic: p50 {:?} ({n} records)", p50);
    let h = store.health();
    println!(
        "write amp (no WAL) {:.3}, levels {:?}",
        h.write_amplification,
        h.levels.iter().map(|l| l.files).collect::<Vec<_>>()
    );
    store.close()?;
    if big > 0 {
        let mbs = ingest_big(&base.join("big"), big)?;
        println!("1 MiB messages: {mbs:.0} MB/s");
    }
    Ok(())
}
