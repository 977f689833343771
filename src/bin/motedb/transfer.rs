//! Moving data: export to and import from rosbag2 MCAP bags.

use super::*;

pub(crate) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Ctrl-C cancels a long export cleanly (partial bag removed).
pub(crate) fn catch_sigint() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

/// Runs an export with a progress bar of `total` messages and Ctrl-C as
/// its cancel.
pub(crate) fn with_progress<T>(
    total: u64,
    run: impl FnOnce(&ExportControl<'_>) -> Result<T, ExportError>,
) -> Result<T, ExportError> {
    let bar = progress_bar(total);
    let progress = |n: u64, _bytes: u64| bar.set_position(n);
    catch_sigint();
    let ctl = ExportControl {
        progress: Some(&progress),
        cancel: Some(&INTERRUPTED),
    };
    let r = run(&ctl);
    bar.finish_and_clear();
    r
}

pub(crate) fn progress_bar(total: u64) -> ProgressBar {
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

/// A size such as `100MiB`, `1.5 GB` or `5000000` (bytesize's syntax); an
/// unknown unit or a size that does not fit in 64 bits is an error.
pub(crate) fn parse_size(s: &str) -> Result<u64, Fail> {
    let bad = |why: String| {
        fail(
            2,
            format!("bad size {s:?}: {why}; use e.g. 100MiB, 1GB or 5000000"),
        )
    };
    let size: bytesize::ByteSize = s.trim().parse().map_err(bad)?;
    match size.as_u64() {
        u64::MAX => Err(bad("too large".into())),
        n => Ok(n),
    }
}

/// The options and the message count of an export of the stores whose
/// topics are `all` (relative times count from their first and last message).
pub(crate) fn export_options(
    args: &ExportArgs,
    all: &[TopicInfo],
) -> Result<(ExportOptions, u64), Fail> {
    let (first, last) = bounds(all);
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
        beneath: None,
        compression: args.compression,
        split_bytes: args.split_size.as_deref().map(parse_size).transpose()?,
        split_duration,
        marks: Vec::new(),
    };
    Ok((opts, total))
}

pub(crate) fn export_cmd(args: &ExportArgs, json: bool) -> CliResult {
    if args.output.symlink_metadata().is_ok() {
        return Err(fail(
            4,
            format!(
                "{} already exists; choose a new output name or remove it",
                args.output.display()
            ),
        ));
    }
    let summary = if args.merge.is_empty() {
        let store = open_read(&args.store)?;
        let (opts, total) = export_options(args, &store.topics())?;
        with_progress(total, |ctl| export::export_bag_with(&store, &opts, ctl))?
    } else {
        export_merged(args)?
    };
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

pub(crate) fn import_cmd(store: &Path, bag: &Path, topics: &[String], json: bool) -> CliResult {
    if bag.symlink_metadata().is_err() {
        return Err(fail(4, format!("no bag at {}", bag.display())));
    }
    let store = open_write(store)?;
    let opts = ImportOptions {
        topics: topics.to_vec(),
        ..ImportOptions::default()
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
        if report.marks > 0 {
            println!("  marks: {}", report.marks);
        }
        for s in &report.skipped {
            let at = s
                .offset
                .map(|o| format!(" at offset {o}"))
                .unwrap_or_default();
            let count = match s.messages {
                Some(n) => format!("{n} messages"),
                None => "unknown number of messages".to_string(),
            };
            println!("  SKIPPED {}{at}: {} ({count})", s.file.display(), s.reason);
        }
    }
    Ok(if report.complete() { 0 } else { 3 })
}
