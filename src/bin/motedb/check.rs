//! Integrity and maintenance: verify and compact.

use super::*;

/// Reads every record of every topic through the public API and checks
/// that counts match the catalog (and optionally that messages decode).
/// `problems`: found before (a remote store's damaged objects).
pub(crate) fn verify(
    store: &Store,
    mut problems: Vec<String>,
    decode: bool,
    json: bool,
) -> CliResult {
    let topics = store.topics();
    let mut total = 0u64;
    for t in &topics {
        let (n, p) = verify_topic(store, t, decode);
        total += n;
        problems.extend(p);
    }
    let files = match store.verify() {
        Ok(r) => r.files,
        Err(e) => {
            problems.push(format!("checking files: {e}"));
            Vec::new()
        }
    };
    let file_problems: usize = files.iter().map(|f| f.problems.len()).sum();
    let rec = store.recovery_report();
    let recovery = json!({
        "wal_dropped_bytes": rec.wal_dropped_bytes,
        "manifest_dropped_bytes": rec.manifest_dropped_bytes,
        "replayed_records": rec.replayed_records,
        "dropped_records": rec.dropped_records,
        "removed_files": rec.removed_files.len(),
    });
    if json {
        print_json(&json!({
            "messages_read": total, "topics": topics.len(),
            "problems": problems, "recovery": recovery,
            "files": files.iter().map(file_json).collect::<Vec<_>>(),
            "file_problems": file_problems,
        }));
    } else {
        println!("read {total} messages of {} topics", topics.len());
        println!(
            "WAL read: {} records replayed, {} torn bytes and {} records past them skipped \
             (read-only: nothing cut)",
            rec.replayed_records, rec.wal_dropped_bytes, rec.dropped_records
        );
        for p in &problems {
            println!("  PROBLEM: {p}");
        }
        print_files(&files);
        if problems.is_empty() && file_problems == 0 {
            println!("ok");
        }
    }
    Ok(if problems.is_empty() && file_problems == 0 {
        0
    } else {
        3
    })
}

fn file_json(f: &FileReport) -> serde_json::Value {
    json!({
        "path": f.path.display().to_string(), "kind": f.kind.name(),
        "items": f.items, "bytes": f.bytes, "problems": f.problems, "notes": f.notes,
    })
}

/// One line per file (kind, name, items checked, bytes, ok or BAD), then
/// its problems.
fn print_files(files: &[FileReport]) {
    println!("checked {} files:", files.len());
    for f in files {
        let name = f.path.file_name().map_or_else(
            || f.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let state = if f.problems.is_empty() { "ok" } else { "BAD" };
        println!(
            "  {:<9} {:<18} {:>8} {:<7} {:>12} bytes  {state}",
            f.kind.name(),
            name,
            f.items,
            f.kind.item_name(),
            f.bytes
        );
        for p in &f.problems {
            println!("    PROBLEM: {p}");
        }
        for n in &f.notes {
            println!("    NOTE: {n}");
        }
    }
}

pub(crate) fn verify_topic(store: &Store, t: &TopicInfo, decode: bool) -> (u64, Vec<String>) {
    let mut problems = Vec::new();
    let schema = if decode {
        match topic_schema(&t.spec.type_name, &t.spec.definition) {
            Ok(s) => Some(s),
            Err(f) => {
                problems.push(format!("{}: {}", t.spec.name, f.msg));
                None
            }
        }
    } else {
        None
    };
    let iter = match store.iter(&[t.id], 0, Nanos::MAX, false) {
        Ok(i) => i,
        Err(e) => return (0, vec![format!("{}: {e}", t.spec.name)]),
    };
    let mut n = 0u64;
    let mut bad_decode = 0u64;
    for rec in iter {
        match rec {
            Ok(r) => {
                n += 1;
                if let Some(s) = &schema {
                    bad_decode += u64::from(cdr::decode(s, &r.payload).is_err());
                }
            }
            Err(e) => {
                problems.push(format!(
                    "{}: read error after {n} messages: {e}",
                    t.spec.name
                ));
                break;
            }
        }
    }
    if n != t.message_count {
        problems.push(format!(
            "{}: catalog says {} messages, read {n}",
            t.spec.name, t.message_count
        ));
    }
    if bad_decode > 0 {
        problems.push(format!(
            "{}: {bad_decode} messages do not decode",
            t.spec.name
        ));
    }
    (n, problems)
}

pub(crate) fn compact(path: &Path, json: bool) -> CliResult {
    require_store(path)?;
    let store = open_write(path)?;
    let before = store.health().disk_bytes;
    store.compact()?;
    let after = store.health().disk_bytes;
    store.close()?;
    if json {
        print_json(&json!({"bytes_before": before, "bytes_after": after}));
    } else {
        println!(
            "compacted: {} -> {}",
            human_bytes(before),
            human_bytes(after)
        );
    }
    Ok(0)
}
