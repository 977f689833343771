//! `bench_pub`: the end-to-end benchmark's native publisher (see
//! `motedb::node::bench` and scripts/bench-e2e). Prints one JSON line.

use std::time::Duration;

use clap::Parser;

/// Publishes pre-serialized std_msgs/msg/UInt8MultiArray messages.
#[derive(Parser)]
struct Args {
    /// Topic names; one publisher each.
    #[arg(long = "topic", required = true)]
    topics: Vec<String>,
    /// Bytes of data per message.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Messages per topic.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Messages per second per topic (0: as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Best-effort instead of reliable.
    #[arg(long)]
    best_effort: bool,
    /// Publisher history depth.
    #[arg(long, default_value_t = 1000)]
    depth: usize,
    /// Seconds to wait for a subscriber on every topic.
    #[arg(long, default_value_t = 30.0)]
    match_timeout: f64,
    /// Seconds between matching and the first message.
    #[arg(long, default_value_t = 0.5)]
    settle: f64,
    /// Unix time (seconds) of the first message, so several processes
    /// start together; a process that matches later starts at once (its
    /// `started_unix` says when).
    #[arg(long)]
    start_at: Option<f64>,
}

fn main() {
    let a = Args::parse();
    let opts = motedb::node::bench::PublishOptions {
        topics: a.topics,
        size: a.size,
        count: a.count,
        rate: a.rate,
        reliable: !a.best_effort,
        depth: a.depth,
        match_timeout: Duration::from_secs_f64(a.match_timeout),
        settle: Duration::from_secs_f64(a.settle),
        start_at: a.start_at,
    };
    let prefixes = motedb::cdr::definition::prefixes_from_env_value(
        &std::env::var("AMENT_PREFIX_PATH").unwrap_or_default(),
    );
    match motedb::node::bench::publish(&opts, &prefixes) {
        Ok(r) => println!(
            "{{\"published\": {}, \"seconds\": {:.6}, \"started_unix\": {:.6}, \"ended_unix\": {:.6}, \"all_acked\": {}}}",
            r.published, r.seconds, r.started_unix, r.ended_unix, r.all_acked
        ),
        Err(e) => {
            eprintln!("bench_pub: {e}");
            std::process::exit(1);
        }
    }
}
