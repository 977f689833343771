//! `motedb play`: a store's messages back into ROS with their timing.

use super::*;

/// Checks the arguments the same way with or without ROS.
fn play_options(args: &PlayArgs, store: &Store) -> Result<(Nanos, Nanos, u64), Fail> {
    motedb::play::check_rate(args.rate).map_err(|e| fail(2, format!("--rate: {e}")))?;
    for (name, v) in [
        ("--delay", args.delay),
        ("--late-after-ms", args.late_after_ms),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(fail(2, format!("{name} must be a number >= 0, not {v}")));
        }
    }
    if let Some(w) = args.wait_for_subscribers {
        if !(w.is_finite() && w > 0.0) {
            return Err(fail(
                2,
                format!("--wait-for-subscribers must be > 0 seconds, not {w}"),
            ));
        }
    }
    let read_ahead = parse_size(&args.read_ahead)?;
    let (first, last) = bounds(&store.topics());
    let (start, end) = time_range(&args.range, first, last)?;
    for t in &args.topics {
        if store.topic_by_name(t).is_none() {
            return Err(fail(4, format!("no topic {t} in the store")));
        }
    }
    Ok((start, end, read_ahead))
}

/// `motedb play`.
pub(crate) fn play(args: &PlayArgs, json: bool) -> CliResult {
    let store = open_read(&args.store)?;
    let (start, end, read_ahead) = play_options(args, &store)?;
    run_player(args, &store, (start, end, read_ahead), json)
}

#[cfg(not(feature = "node"))]
fn run_player(_: &PlayArgs, _: &Store, _: (Nanos, Nanos, u64), _: bool) -> CliResult {
    Err(fail(
        1,
        "this motedb was built without ROS: build it with scripts/setup (cargo build --features ros)",
    ))
}

#[cfg(feature = "node")]
fn run_player(
    args: &PlayArgs,
    store: &Store,
    (start, end, read_ahead_bytes): (Nanos, Nanos, u64),
    json: bool,
) -> CliResult {
    use motedb::node::play::{play, PlayOptions};
    use std::time::Duration;
    let opts = PlayOptions {
        topics: args.topics.clone(),
        start,
        end,
        rate: args.rate,
        delay: Duration::from_secs_f64(args.delay),
        wait_for_subscribers: args.wait_for_subscribers.map(Duration::from_secs_f64),
        read_ahead_bytes,
        late_after: Duration::from_secs_f64(args.late_after_ms / 1e3),
        depth: 100,
    };
    catch_sigint();
    let report = play(store, &opts, &ament_prefixes(), &INTERRUPTED).map_err(|e| fail(1, e))?;
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
            if report.all_acked { "" } else { "; not every reliable subscriber acknowledged all" }
        );
    }
    Ok(if report.interrupted { 130 } else { 0 })
}
