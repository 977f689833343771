//! `motedb play`: a store's (or a bag's) messages back into ROS with their
//! timing.

use super::*;
use motedb::play::options::{parse_qos_overrides, parse_remaps};
use motedb::play::QosOverride;
use std::collections::BTreeMap;
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
    read_ahead: u64,
    delay: Duration,
    wait_for_subscribers: Option<Duration>,
    late_after: Duration,
    clock_hz: Option<f64>,
    remaps: BTreeMap<String, String>,
    qos_overrides: BTreeMap<String, QosOverride>,
}

/// What can be checked before the input is opened.
fn check_args(args: &PlayArgs) -> Result<Checked, Fail> {
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
    if let Some(hz) = args.clock {
        if !(hz.is_finite() && hz > 0.0 && hz <= 10_000.0) {
            return Err(fail(
                2,
                format!("--clock must be a rate in Hz, > 0 and <= 10000, not {hz}"),
            ));
        }
    }
    let read_ahead = parse_size(&args.read_ahead)?;
    let remaps = parse_remaps(&args.remaps).map_err(|e| fail(2, format!("--remap: {e}")))?;
    let qos_overrides = match &args.qos_profile_overrides_path {
        None => BTreeMap::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| fail(4, format!("cannot read {}: {e}", path.display())))?;
            parse_qos_overrides(&text)
                .map_err(|e| fail(2, format!("QoS overrides {}: {e}", path.display())))?
        }
    };
    motedb::play::options::check_node_name(&args.node_name)
        .map_err(|e| fail(2, format!("--node-name: {e}")))?;
    Ok(Checked {
        read_ahead,
        delay,
        wait_for_subscribers,
        late_after,
        clock_hz: args.clock,
        remaps,
        qos_overrides,
    })
}

/// What needs the store: the range and that every named topic is in it.
fn check_store(args: &PlayArgs, store: &Store, c: &Checked) -> Result<(Nanos, Nanos), Fail> {
    let (first, last) = bounds(&store.topics());
    let range = time_range(&args.range, first, last)?;
    for t in &args.topics {
        if store.topic_by_name(t).is_none() {
            return Err(fail(4, format!("--topic: no topic {t} in the store")));
        }
    }
    // Remaps and overrides name played topics: every topic, or the
    // --topic ones (a bag is read with only those, so a store and a bag
    // answer alike).
    let played = |t: &String| {
        store.topic_by_name(t).is_some() && (args.topics.is_empty() || args.topics.contains(t))
    };
    for t in c.remaps.keys() {
        match (played(t), args.follow && args.topics.is_empty()) {
            (true, _) => {}
            // Followed, the topic may be recorded later.
            (false, true) => eprintln!("motedb: --remap: no topic {t} in the store yet"),
            (false, false) => return Err(fail(4, format!("--remap: {t} is not a played topic"))),
        }
    }
    for t in c.qos_overrides.keys() {
        if !played(t) {
            eprintln!("motedb: warning: QoS override for {t}, which is not played");
        }
    }
    Ok(range)
}

/// `motedb play`.
pub(crate) fn play(args: &PlayArgs, json: bool) -> CliResult {
    let checked = check_args(args)?;
    let remote = motedb::remote::is_remote(&args.input);
    if remote && args.follow {
        return Err(fail(
            2,
            "--follow plays a local store as a node records into it; a remote copy is read once",
        ));
    }
    if remote || args.input.join("MANIFEST").is_file() {
        let store = open_read(&args.input)?;
        let range = check_store(args, &store, &checked)?;
        return run_player(args, &store, checked, range, json);
    }
    if args.input.symlink_metadata().is_err() {
        return Err(fail(
            4,
            format!(
                "no store or bag at {}: pass a store directory, a rosbag2 MCAP bag \
                 directory or an .mcap file",
                args.input.display()
            ),
        ));
    }
    if args.follow {
        return Err(fail(
            2,
            "--follow plays a store as a node records into it; a bag does not grow",
        ));
    }
    play_bag(args, checked, json)
}

#[cfg(not(feature = "node"))]
fn run_player(_: &PlayArgs, _: &Store, _: Checked, _: (Nanos, Nanos), _: bool) -> CliResult {
    Err(without_ros())
}

#[cfg(not(feature = "node"))]
fn play_bag(_: &PlayArgs, _: Checked, _: bool) -> CliResult {
    Err(without_ros())
}

#[cfg(not(feature = "node"))]
fn without_ros() -> Fail {
    fail(
        1,
        "this motedb was built without ROS: build it with scripts/setup (cargo build --features ros)",
    )
}

/// SIGINT/SIGTERM blocked in every thread (the middleware's too) and
/// taken by one sigwait thread, as in the node; once per process.
#[cfg(feature = "node")]
fn install_signals() -> Result<(), Fail> {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    INSTALLED
        .get_or_init(|| motedb::node::signals::install().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| fail(1, e))
}

/// A bag's scratch store, removed when dropped.
#[cfg(feature = "node")]
struct Scratch(PathBuf);

#[cfg(feature = "node")]
impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!(
                "motedb: could not remove the scratch store {}: {e}",
                self.0.display()
            );
        }
    }
}

/// Reads the bag into a scratch store (log-time order across its files
/// and chunks comes from the store), then plays that.
#[cfg(feature = "node")]
fn play_bag(args: &PlayArgs, checked: Checked, json: bool) -> CliResult {
    use motedb::node::signals;
    install_signals()?;
    let parent = args.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let dir = parent.join(format!("motedb-play-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(&parent)
        .map_err(|e| fail(1, format!("scratch directory {}: {e}", parent.display())))?;
    // Declared first, so dropped last: the store is closed before its
    // directory goes, on every return.
    let scratch = Scratch(dir);
    let store = Store::open(&scratch.0, Options::default())?;
    eprintln!(
        "motedb: reading {} into a scratch store in {} (removed at exit)",
        args.input.display(),
        scratch.0.display()
    );
    let opts = ImportOptions {
        topics: args.topics.clone(),
        cancel: Some(signals::stop_requested),
    };
    let report = match export::import_bag(&store, &args.input, &opts) {
        Ok(r) => r,
        Err(ExportError::Cancelled) => return Ok(130),
        Err(e) => {
            let code = Fail::from(e);
            return Err(fail(
                code.code,
                format!("cannot play {}: {}", args.input.display(), code.msg),
            ));
        }
    };
    let reasons: Vec<String> = report
        .skipped
        .iter()
        .map(|s| format!("{}: {}", s.file.display(), s.reason))
        .collect();
    if report.messages == 0 && !reasons.is_empty() {
        return Err(fail(
            1,
            format!(
                "cannot play {}: no message could be read ({})",
                args.input.display(),
                reasons.join("; ")
            ),
        ));
    }
    for r in &reasons {
        eprintln!("motedb: warning: not played from {r}");
    }
    // Played like any store: closed (the memtable written out, the
    // writer's threads stopped) and opened read-only, so nothing of the
    // import runs beside the player.
    store.close()?;
    let store = Store::open_read_only(&scratch.0)?;
    let range = check_store(args, &store, &checked)?;
    let code = run_player(args, &store, checked, range, json);
    drop(store);
    drop(scratch);
    code
}

#[cfg(feature = "node")]
fn run_player(
    args: &PlayArgs,
    store: &Store,
    c: Checked,
    (start, end): (Nanos, Nanos),
    json: bool,
) -> CliResult {
    use motedb::node::play::{play, PlayOptions};
    use motedb::node::signals;
    use motedb::play::Control;
    let opts = PlayOptions {
        topics: args.topics.clone(),
        start,
        end,
        delay: c.delay,
        wait_for_subscribers: c.wait_for_subscribers,
        read_ahead_bytes: c.read_ahead,
        late_after: c.late_after,
        depth: 100,
        repeat: args.repeat,
        clock_hz: c.clock_hz,
        remaps: c.remaps,
        qos_overrides: c.qos_overrides,
        node_name: args.node_name.clone(),
        // A bag's scratch store does not grow (and --follow is refused
        // for bags before this).
        follow: args.follow.then(|| args.input.clone()),
    };
    install_signals()?;
    let control =
        std::sync::Arc::new(Control::new(args.rate, args.start_paused).map_err(|e| fail(2, e))?);
    let services =
        motedb::node::play::serve_control(&args.node_name, &control).map_err(|e| fail(1, e))?;
    let terminal = (!json).then(|| {
        keys::Terminal::start(
            std::sync::Arc::clone(&control),
            !args.disable_keyboard_controls,
            (start, end),
        )
    });
    let report = play(
        store,
        &opts,
        &ament_prefixes(),
        &control,
        &signals::stop_requested,
    );
    // Whatever ended the play, a waiting play_next fails now rather than
    // holding the services thread.
    control.finish();
    drop(terminal);
    drop(services);
    let report = report.map_err(|e| fail(1, e))?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    if json {
        print_json(&json!({
            "published": report.published, "passes": report.passes,
            "seconds": report.seconds, "late": report.late,
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
