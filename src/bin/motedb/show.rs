//! Read-only views: info (stores and bags), topics, du, marks, near.

use super::*;

pub(crate) fn print_json(v: &serde_json::Value) {
    println!("{v}");
}

pub(crate) fn bounds(topics: &[TopicInfo]) -> (Nanos, Nanos) {
    let first = topics
        .iter()
        .filter_map(|t| t.first_time)
        .min()
        .unwrap_or(0);
    let last = topics.iter().filter_map(|t| t.last_time).max().unwrap_or(0);
    (first, last)
}

pub(crate) fn rate(t: &TopicInfo) -> f64 {
    match (t.first_time, t.last_time) {
        (Some(a), Some(b)) if b > a && t.message_count > 1 => {
            (t.message_count - 1) as f64 / ((b - a) as f64 / 1e9)
        }
        _ => 0.0,
    }
}

pub(crate) fn human_bytes(b: u64) -> String {
    bytesize::ByteSize::b(b).display().iec().to_string()
}

pub(crate) fn topic_json(t: &TopicInfo) -> serde_json::Value {
    json!({
        "name": t.spec.name, "type": t.spec.type_name,
        "serialization_format": t.spec.serialization_format,
        "type_description_hash": t.spec.type_hash,
        "count": t.message_count, "bytes": t.size_bytes,
        "stored_bytes": t.stored_bytes, "compression": compression(t),
        "first_time": t.first_time, "last_time": t.last_time,
        "rate_hz": rate(t), "dropped": t.dropped_count, "gaps": t.gap_count,
    })
}

/// How a topic's payloads are stored: "raw", or the codecs used and on
/// how many value-log payloads ("zstd 40").
pub(crate) fn compression(t: &TopicInfo) -> String {
    let used: Vec<String> = [("lz4", t.lz4_payloads), ("zstd", t.zstd_payloads)]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    if used.is_empty() {
        "raw".into()
    } else {
        used.join(", ")
    }
}

/// Stored bytes as a share of the published bytes.
fn stored_share(t: &TopicInfo) -> String {
    if t.size_bytes == 0 {
        return "-".into();
    }
    format!(
        "{:.1}%",
        t.stored_bytes as f64 * 100.0 / t.size_bytes as f64
    )
}

pub(crate) fn info(store: &Store, path: &Path, json: bool) -> CliResult {
    let topics = store.topics();
    let health = store.health();
    let (first, last) = bounds(&topics);
    let count: u64 = topics.iter().map(|t| t.message_count).sum();
    let duration = last.saturating_sub(first);
    if json {
        print_json(&json!({
            "path": path, "size_bytes": health.disk_bytes, "message_count": count,
            "start": first, "end": last, "duration_ns": duration,
            "topics": topics.iter().map(topic_json).collect::<Vec<_>>(),
            "marks": store.marks().iter().map(mark_json).collect::<Vec<_>>(),
            "pinned_bytes": health.pinned_bytes,
        }));
        return Ok(0);
    }
    println!("Store:             {}", path.display());
    println!("Size:              {}", human_bytes(health.disk_bytes));
    println!("Duration:          {}s", format_unix(duration));
    println!(
        "Start:             {} ({})",
        format_time(first),
        format_unix(first)
    );
    println!(
        "End:               {} ({})",
        format_time(last),
        format_unix(last)
    );
    println!("Messages:          {count}");
    println!("Topic information:");
    for t in &topics {
        println!(
            "  Topic: {} | Type: {} | Count: {} | Bytes: {} | Stored: {} ({}) | Rate: {:.2} Hz | Dropped: {} | Gaps: {} | Serialization Format: {}",
            t.spec.name,
            t.spec.type_name,
            t.message_count,
            human_bytes(t.size_bytes),
            human_bytes(t.stored_bytes),
            compression(t),
            rate(t),
            t.dropped_count,
            t.gap_count,
            t.spec.serialization_format
        );
    }
    let marks = store.marks();
    if !marks.is_empty() {
        println!(
            "Marks:             {} ({} pinned, {} kept by pins)",
            marks.len(),
            marks.iter().filter(|m| m.protects()).count(),
            human_bytes(health.pinned_bytes)
        );
        for m in &marks {
            println!("  {}", mark_line(m));
        }
    }
    Ok(0)
}

fn mark_state(m: &Mark) -> &'static str {
    match (m.pinned, m.released) {
        (true, _) => "pinned",
        (false, true) => "pin released by retention",
        (false, false) => "not pinned",
    }
}

fn mark_line(m: &Mark) -> String {
    format!(
        "Mark {}: {} | Tags: {} | {} .. {} ({}s) | {}",
        m.id,
        m.label,
        m.tags.join(","),
        format_time(m.start),
        format_time(m.end),
        format_unix(m.end - m.start),
        mark_state(m)
    )
}

fn mark_json(m: &Mark) -> serde_json::Value {
    json!({
        "id": m.id, "label": m.label, "tags": m.tags, "start": m.start, "end": m.end,
        "pinned": m.pinned, "released": m.released, "created": m.created,
    })
}

/// `motedb marks`.
pub(crate) fn marks(store: &Store, tag: Option<&str>, json: bool) -> CliResult {
    let marks: Vec<Mark> = store
        .marks()
        .into_iter()
        .filter(|m| tag.is_none_or(|t| m.tags.iter().any(|x| x == t)))
        .collect();
    if json {
        print_json(&json!(marks.iter().map(mark_json).collect::<Vec<_>>()));
        return Ok(0);
    }
    if marks.is_empty() {
        println!("no marks");
    }
    for m in &marks {
        println!("{}", mark_line(m));
    }
    Ok(0)
}

pub(crate) fn bag_info(path: &Path, json: bool) -> CliResult {
    let b = export::bag_info(path)?;
    let duration = b.end.saturating_sub(b.start);
    if json {
        print_json(&json!({
            "path": path, "files": b.files, "size_bytes": b.size_bytes,
            "message_count": b.message_count, "start": b.start, "end": b.end,
            "duration_ns": duration, "topics": b.topics,
        }));
        return Ok(0);
    }
    println!(
        "Files:             {}",
        b.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("Bag size:          {}", human_bytes(b.size_bytes));
    println!("Storage id:        mcap");
    println!("Duration:          {}s", format_unix(duration));
    println!(
        "Start:             {} ({})",
        format_time(b.start),
        format_unix(b.start)
    );
    println!(
        "End:               {} ({})",
        format_time(b.end),
        format_unix(b.end)
    );
    println!("Messages:          {}", b.message_count);
    println!("Topic information:");
    for t in &b.topics {
        println!(
            "  Topic: {} | Type: {} | Count: {} | Serialization Format: cdr",
            t.name, t.type_name, t.message_count
        );
    }
    Ok(0)
}

pub(crate) fn topics(store: &Store, json: bool) -> CliResult {
    let topics = store.topics();
    if json {
        print_json(&json!(topics.iter().map(topic_json).collect::<Vec<_>>()));
        return Ok(0);
    }
    for t in &topics {
        println!(
            "{} [{}] {} messages",
            t.spec.name, t.spec.type_name, t.message_count
        );
    }
    Ok(0)
}

pub(crate) fn du(store: &Store, json: bool) -> CliResult {
    let h = store.health();
    let topics = store.topics();
    if json {
        print_json(&json!({
            "disk_bytes": h.disk_bytes, "wal_bytes": h.wal_bytes, "quota_bytes": h.quota_bytes,
            "levels": h.levels.iter().map(|l| json!({"files": l.files, "bytes": l.bytes})).collect::<Vec<_>>(),
            "topics": topics.iter().map(|t| json!({
                "name": t.spec.name, "bytes": t.size_bytes, "stored_bytes": t.stored_bytes,
                "compression": compression(t),
            })).collect::<Vec<_>>(),
        }));
        return Ok(0);
    }
    println!("total  {:>12}", human_bytes(h.disk_bytes));
    println!("wal    {:>12}", human_bytes(h.wal_bytes));
    for (i, l) in h.levels.iter().enumerate() {
        println!("L{i:<5} {:>12} in {} files", human_bytes(l.bytes), l.files);
    }
    for t in &topics {
        println!(
            "{:<6} {:>12} payload {:>12} stored ({:>6}, {})  {}",
            "topic",
            human_bytes(t.size_bytes),
            human_bytes(t.stored_bytes),
            stored_share(t),
            compression(t),
            t.spec.name
        );
    }
    Ok(0)
}

pub(crate) fn bag_topics(path: &Path, json: bool) -> CliResult {
    let b = export::bag_info(path)?;
    if json {
        print_json(&json!(b.topics));
        return Ok(0);
    }
    for t in &b.topics {
        println!("{} [{}] {} messages", t.name, t.type_name, t.message_count);
    }
    Ok(0)
}

/// `motedb near`.
pub(crate) fn near(args: &NearArgs, json: bool) -> CliResult {
    if !(args.radius.is_finite() && args.radius > 0.0) {
        return Err(fail(
            2,
            format!("--radius {} must be a number of metres > 0", args.radius),
        ));
    }
    let point = [args.x, args.y, args.z.unwrap_or(0.0)];
    if point.iter().any(|v| !v.is_finite()) {
        return Err(fail(2, "--x, --y and --z must be finite numbers"));
    }
    let store = open_read(&args.store)?;
    // A topic recorded without its definition: the installed one.
    let definition = |t: &TopicInfo| {
        if !t.spec.definition.trim().is_empty() {
            return Ok(t.spec.definition.clone());
        }
        cdr::definition::resolve(&t.spec.type_name, &ament_prefixes()).map_err(|e| {
            format!(
                "{} was recorded without its definition and {} is not installed ({e}); source the ROS workspace defining it so AMENT_PREFIX_PATH finds it",
                t.spec.name, t.spec.type_name
            )
        })
    };
    let index = places::Index::load(&store, args.pose_topic.as_deref(), definition).map_err(
        |e| match e {
            places::LoadError::NotFound(m) => fail(4, m),
            places::LoadError::Failed(m) => fail(1, m),
        },
    )?;
    if args.frame.is_none() && index.tracks.len() > 1 {
        let frames: Vec<&str> = index.tracks.keys().map(String::as_str).collect();
        return Err(fail(
            2,
            format!(
                "{} has poses in frames {}: pass --frame",
                index.topic,
                frames.join(", ")
            ),
        ));
    }
    let (frame, track) = index.track(args.frame.as_deref()).map_err(|e| {
        let skipped = match index.undecodable {
            0 => String::new(),
            n => format!(" ({n} messages did not decode to a pose)"),
        };
        fail(4, format!("{e}{skipped}"))
    })?;
    // Relative times refer to the whole recording, as for cat and export.
    let (first, last) = bounds(&store.topics());
    let (start, end) = time_range(&args.range, first, last)?;
    let q = places::Query {
        point,
        radius: args.radius,
        use_z: args.z.is_some(),
        start,
        end: end.saturating_sub(1),
    };
    let found = track.near(&q);
    let windows = places::windows(&found);
    let counts = near_counts(&store, &args.topics, &windows)?;
    let exported = match &args.export {
        Some(dir) => Some(near_export(&store, args, dir, &windows)?),
        None => None,
    };
    if json {
        print_json(&json!({
            "pose_topic": index.topic, "frame": frame, "poses": track.len(),
            "undecodable": index.undecodable,
            "intervals": found.iter().zip(&counts).map(|(i, n)| json!({
                "start": i.start, "end": i.end, "closest": i.closest, "distance": i.distance,
                "messages": n,
            })).collect::<Vec<_>>(),
            "export": exported.as_ref().map(|s| json!({
                "path": s.path, "message_count": s.message_count, "size_bytes": s.size_bytes,
            })),
        }));
        return Ok(if index.undecodable > 0 { 3 } else { 0 });
    }
    println!(
        "{} (frame {frame}, {} poses): {} interval(s) within {} m of ({}, {}{})",
        index.topic,
        track.len(),
        found.len(),
        args.radius,
        args.x,
        args.y,
        args.z.map(|z| format!(", {z}")).unwrap_or_default()
    );
    for (i, n) in found.iter().zip(&counts) {
        println!(
            "  {} .. {} ({}s)  closest {:.3} m at {}{}",
            format_time(i.start),
            format_time(i.end),
            format_unix(i.end - i.start),
            i.distance,
            format_time(i.closest),
            n.map(|n| format!("  {n} messages")).unwrap_or_default()
        );
    }
    if let Some(s) = &exported {
        println!(
            "wrote {} messages, {} to {}",
            s.message_count,
            human_bytes(s.size_bytes),
            s.path.display()
        );
    }
    if index.undecodable > 0 {
        eprintln!(
            "motedb: {} messages of {} did not decode to a pose and were left out",
            index.undecodable, index.topic
        );
        return Ok(3);
    }
    Ok(0)
}

/// Messages of `topics` inside each window (None each when no topic was
/// named).
fn near_counts(
    store: &Store,
    topics: &[String],
    windows: &[(Nanos, Nanos)],
) -> Result<Vec<Option<u64>>, Fail> {
    if topics.is_empty() {
        return Ok(vec![None; windows.len()]);
    }
    let ids = topics
        .iter()
        .map(|name| {
            store
                .topic_by_name(name)
                .map(|t| t.id)
                .ok_or_else(|| fail(4, format!("no topic {name} in the store")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    windows
        .iter()
        .map(|&(start, end)| {
            let mut n = 0;
            for record in store.iter(&ids, start, end, false)? {
                record?;
                n += 1;
            }
            Ok(Some(n))
        })
        .collect()
}

/// `motedb near --export DIR`: the messages of `--topic` (default: every
/// topic) inside the intervals, as one bag.
fn near_export(
    store: &Store,
    args: &NearArgs,
    dir: &Path,
    windows: &[(Nanos, Nanos)],
) -> Result<export::ExportSummary, Fail> {
    if dir.symlink_metadata().is_ok() {
        return Err(fail(
            4,
            format!(
                "{} already exists; choose a new output name or remove it",
                dir.display()
            ),
        ));
    }
    let opts = ExportOptions {
        topics: args.topics.clone(),
        start: 0,
        end: 0,
        output: dir.to_path_buf(),
        beneath: None,
        compression: McapCompression::default(),
        split_bytes: None,
        split_duration: None,
        marks: Vec::new(),
    };
    catch_sigint();
    let ctl = ExportControl {
        progress: None,
        cancel: Some(&INTERRUPTED),
    };
    Ok(export::export_windows(store, &opts, windows, &ctl)?)
}
