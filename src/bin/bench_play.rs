//! Replay benchmark helper (docs/benchmarks.md, "Replay"; driven by
//! scripts/bench-play, which runs `motedb play` itself next to this).
//!
//! - `bench_play make DIR [--seconds N]`: a store with a 1 kHz topic of
//!   256 B messages and a 30 Hz topic of 2 MiB messages
//!   (std_msgs/msg/String CDR), interleaved in log time.
//! - `bench_play floor DIR [--read-ahead BYTES]`: the anchor. The same
//!   schedule kept with the player's own parts (read-ahead, timeline,
//!   condition-variable waits) but nothing published: how late this
//!   machine's timers and the store's reads alone make messages. Prints
//!   one JSON line.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use motedb::engine::Store;
use motedb::play::{Control, Lateness, ReadAhead, Timeline};

#[path = "bench_common/store.rs"]
mod bench_store;
use bench_store::make;

fn floor(dir: &PathBuf, read_ahead: u64) {
    let store = Store::open_read_only(dir).expect("open the store");
    let ids: Vec<_> = store.topics().iter().map(|t| t.id).collect();
    let records = store.iter(&ids, 0, u64::MAX, false).expect("iter");
    let ahead = ReadAhead::start(records, read_ahead).expect("read-ahead");
    let control = Control::new(1.0, false).expect("control");
    let mut timeline: Option<Timeline> = None;
    let mut lateness = Lateness::default();
    let started = Instant::now();
    let mut n = 0u64;
    while let Some(next) = ahead.next() {
        let r = next.expect("record");
        let tl = match &timeline {
            Some(tl) => *tl,
            None => *timeline.insert(Timeline::new(r.log_time, Instant::now(), 1.0).expect("tl")),
        };
        let due = tl.due(r.log_time).expect("not paused");
        // The player's wait: on Control's condition variable.
        while Instant::now() < due {
            control.wait(due, control.wanted().generation);
        }
        lateness.note(due, Instant::now(), Duration::from_millis(10));
        std::hint::black_box(&r.payload);
        n += 1;
    }
    let ms = |d: Option<Duration>| d.unwrap_or_default().as_secs_f64() * 1e3;
    println!(
        "{{\"published\": {n}, \"seconds\": {:.3}, \"late\": {}, \"lateness_p50_ms\": {:.4}, \"lateness_p99_ms\": {:.4}}}",
        started.elapsed().as_secs_f64(),
        lateness.late,
        ms(lateness.quantile(0.5)),
        ms(lateness.quantile(0.99)),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().expect("a number"))
            .unwrap_or(default)
    };
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("make"), Some(dir)) => make(&PathBuf::from(dir), value("--seconds", 20)),
        (Some("floor"), Some(dir)) => floor(&PathBuf::from(dir), value("--read-ahead", 256 << 20)),
        _ => {
            eprintln!("usage: bench_play make DIR [--seconds N] | floor DIR [--read-ahead BYTES]");
            std::process::exit(2);
        }
    }
}
