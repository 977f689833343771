//! `motedb play`: a store's messages back into ROS with their timing.

use super::*;
use std::time::Duration;

/// A number of seconds >= 0 that fits a Duration.
fn seconds(name: &str, v: f64) -> Result<Duration, Fail> {
    Duration::try_from_secs_f64(v).map_err(|_| {
        fail(
            2,
            format!("{name} must be a number >= 0 (and not huge), not {v}"),
        )
    })
}

/// The player's settings, checked the same way with or without ROS.
#[cfg_attr(
    not(feature = "node"),
    expect(dead_code, reason = "only the ROS build plays")
)]
struct Checked {
    start: Nanos,
    end: Nanos,
    read_ahead: u64,
    delay: Duration,
    wait_for_subscribers: Option<Duration>,
    late_after: Duration,
}

fn check_args(args: &PlayArgs, store: &Store) -> Result<Checked, Fail> {
    motedb::play::check_rate(args.rate).map_err(|e| fail(2, format!("--rate: {e}")))?;
    let delay = seconds("--delay", args.delay)?;
    let late_after = seconds("--late-after-ms", args.late_after_ms / 1e3)?;
    let wait_for_subscribers = args
        .wait_for_subscribers
        .map(|w| seconds("--wait-for-subscribers", w))
        .transpose()?;
    if wait_for_subscribers.is_some_and(|w| w.is_zero()) {
        return Err(fail(2, "--wait-for-subscribers must be > 0 seconds"));
    }
    let read_ahead = parse_size(&args.read_ahead)?;
    let (first, last) = bounds(&store.topics());
    let (start, end) = time_range(&args.range, first, last)?;
    for t in &args.topics {
        if store.topic_by_name(t).is_none() {
            return Err(fail(4, format!("no topic {t} in the store")));
        }
    }
    Ok(Checked {
        start,
        end,
        read_ahead,
        delay,
        wait_for_subscribers,
        late_after,
    })
}

/// `motedb play`.
pub(crate) fn play(args: &PlayArgs, json: bool) -> CliResult {
    let store = open_read(&args.store)?;
    let checked = check_args(args, &store)?;
    run_player(args, &store, checked, json)
}

#[cfg(not(feature = "node"))]
fn run_player(_: &PlayArgs, _: &Store, _: Checked, _: bool) -> CliResult {
    Err(fail(
        1,
        "this motedb was built without ROS: build it with scripts/setup (cargo build --features ros)",
    ))
}

#[cfg(feature = "node")]
fn run_player(args: &PlayArgs, store: &Store, c: Checked, json: bool) -> CliResult {
    use motedb::node::play::{play, PlayOptions};
    use motedb::node::signals;
    let opts = PlayOptions {
        topics: args.topics.clone(),
        start: c.start,
        end: c.end,
        rate: args.rate,
        delay: c.delay,
        wait_for_subscribers: c.wait_for_subscribers,
        read_ahead_bytes: c.read_ahead,
        late_after: c.late_after,
        depth: 100,
    };
    // SIGINT/SIGTERM blocked in every thread (the middleware's too) and
    // taken by one sigwait thread, as in the node.
    signals::install().map_err(|e| fail(1, e.to_string()))?;
    let report =
        play(store, &opts, &ament_prefixes(), &signals::stop_requested).map_err(|e| fail(1, e))?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    if json {
        print_json(&json!({
            "published": report.published, "seconds": report.seconds, "late": report.late,
            "lateness_p50_ms": ms(report.lateness_p50), "lateness_p99_ms": ms(report.lateness_p99),
            "interrupted": report.interrupted, "all_acked": report.all_acked,
        }));
    } else {
        println!(
            "published {} messages in {:.3} s; {} later than {} ms; lateness p50 {:.3} ms, p99 {:.3} ms{}",
            report.published,
            report.seconds,
            report.late,
            args.late_after_ms,
            ms(report.lateness_p50),
            ms(report.lateness_p99),
            if report.all_acked {
                ""
            } else {
                "; not every reliable subscriber acknowledged all"
            }
        );
    }
    Ok(if report.interrupted { 130 } else { 0 })
}
