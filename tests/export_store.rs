//! export_bag / import_bag on real stores: selection, time ranges,
//! round trip of times, types, definitions and QoS, bounded memory.

#[cfg(test)]
mod common;

use std::process::Command;

use common::*;
use motedb::engine::{Nanos, NewMark, Record, Store};
use motedb::export::{export_bag, import_bag, ExportError, ExportOptions, ImportOptions};

#[cfg(test)]
fn all_records(store: &Store) -> Vec<(String, Record)> {
    let names: std::collections::HashMap<u32, String> = store
        .topics()
        .into_iter()
        .map(|t| (t.id, t.spec.name))
        .collect();
    store
        .iter(&[], 0, Nanos::MAX, false)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (names[&r.topic].clone(), r)
        })
        .collect()
}

#[test]
fn export_selects_topics_and_end_exclusive_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_read_only(make_store(dir.path(), 100)).unwrap();
    let opts = ExportOptions {
        topics: vec!["/chatter".into()],
        start: T0 + S,
        end: T0 + 2 * S,
        output: dir.path().join("bag"),
        beneath: None,
        ..ExportOptions::default()
    };
    let s = export_bag(&store, &opts).unwrap();
    assert_eq!(s.message_count, 10);
    assert!(s.size_bytes > 0);
    let bytes = std::fs::read(&s.files[0]).unwrap();
    let times: Vec<u64> = mcap::MessageStream::new(&bytes)
        .unwrap()
        .map(|m| m.unwrap().log_time)
        .collect();
    assert_eq!(times.first(), Some(&(T0 + S)));
    assert_eq!(times.last(), Some(&(T0 + 19 * S / 10)));
    let summary = mcap::Summary::read(&bytes).unwrap().unwrap();
    assert_eq!(summary.channels.len(), 1);

    let e = export_bag(
        &store,
        &ExportOptions {
            topics: vec!["/missing".into()],
            output: dir.path().join("x"),
            beneath: None,
            ..ExportOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, ExportError::UnknownTopic(ref t) if t == "/missing"));
    assert!(!dir.path().join("x").exists());
}

#[test]
fn import_of_export_keeps_times_payloads_types_definitions_qos() {
    let dir = tempfile::tempdir().unwrap();
    let src = Store::open_read_only(make_store(dir.path(), 300)).unwrap();
    let opts = ExportOptions {
        output: dir.path().join("bag"),
        beneath: None,
        split_bytes: Some(8 << 10),
        ..ExportOptions::default()
    };
    let s = export_bag(&src, &opts).unwrap();
    assert!(s.files.len() > 1);
    let dst = Store::open(dir.path().join("copy"), small_options()).unwrap();
    let report = import_bag(&dst, &s.path, &ImportOptions::default()).unwrap();
    assert!(report.complete(), "{:?}", report.skipped);
    assert_eq!(report.messages, 600);
    assert_eq!(report.files.len(), s.files.len());

    let key = |v: Vec<(String, Record)>| -> Vec<(String, u64, u64, Vec<u8>)> {
        v.into_iter()
            .map(|(n, r)| (n, r.log_time, r.publish_time, r.payload))
            .collect()
    };
    assert_eq!(key(all_records(&src)), key(all_records(&dst)));
    for name in ["/chatter", "/count"] {
        let a = src.topic_by_name(name).unwrap().spec;
        let b = dst.topic_by_name(name).unwrap().spec;
        assert_eq!((&a.type_name, &a.definition), (&b.type_name, &b.definition));
    }
    let qos = dst.topic_by_name("/chatter").unwrap().spec.offered_qos;
    assert!(
        qos.contains("history: keep_last") && qos.contains("depth: 10"),
        "{qos}"
    );

    // Export of the import gives the same message stream.
    let again = export_bag(
        &dst,
        &ExportOptions {
            output: dir.path().join("bag2"),
            beneath: None,
            ..ExportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(again.message_count, 600);
    dst.close().unwrap();
}

#[test]
fn import_topic_filter() {
    let dir = tempfile::tempdir().unwrap();
    let src = Store::open_read_only(make_store(dir.path(), 20)).unwrap();
    let bag = export_bag(
        &src,
        &ExportOptions {
            output: dir.path().join("bag"),
            beneath: None,
            ..ExportOptions::default()
        },
    )
    .unwrap();
    let dst = Store::open(dir.path().join("copy"), small_options()).unwrap();
    let only = ImportOptions {
        topics: vec!["/count".into()],
        ..ImportOptions::default()
    };
    let r = import_bag(&dst, &bag.files[0], &only).unwrap();
    assert_eq!(r.messages, 20);
    assert!(dst.topic_by_name("/chatter").is_none());
    dst.close().unwrap();
}

/// Peak RSS (KiB) of one `motedb export` run.
#[cfg(test)]
fn export_peak_rss_kib(store: &std::path::Path, out: &std::path::Path) -> i64 {
    #[expect(
        clippy::zombie_processes,
        reason = "reaped below with wait4 for its rusage"
    )]
    let child = Command::new(env!("CARGO_BIN_EXE_motedb"))
        .args(["export", store.to_str().unwrap(), out.to_str().unwrap()])
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: plain wait4 on our own child with valid out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    usage.ru_maxrss
}

/// Exporting a store many times the memtable budget (1 MiB) keeps peak
/// memory flat: 8x more data may not cost more than a small constant.
#[test]
fn export_memory_stays_flat() {
    let dir = tempfile::tempdir().unwrap();
    let small = make_big_store(dir.path(), 8);
    let big = make_big_store(dir.path(), 64);
    let a = export_peak_rss_kib(&small, &dir.path().join("a"));
    let b = export_peak_rss_kib(&big, &dir.path().join("b"));
    eprintln!("peak RSS: 8 MiB store {a} KiB, 64 MiB store {b} KiB");
    assert!(b < a + 24 * 1024, "RSS grew from {a} KiB to {b} KiB");
}

#[test]
fn import_reports_a_listed_file_that_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let src = Store::open_read_only(make_store(dir.path(), 100)).unwrap();
    let bag = export_bag(
        &src,
        &ExportOptions {
            output: dir.path().join("bag"),
            beneath: None,
            split_duration: Some(std::time::Duration::from_secs(5)),
            ..ExportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(bag.files.len(), 2);
    std::fs::remove_file(&bag.files[1]).unwrap();
    let dst = Store::open(dir.path().join("copy"), small_options()).unwrap();
    let r = import_bag(&dst, &bag.path, &ImportOptions::default()).unwrap();
    assert!(!r.complete());
    assert_eq!(r.files.len(), 1);
    assert!(r.messages > 0 && r.messages < 200);
    assert!(r.skipped[0].reason.contains("missing"));
    dst.close().unwrap();
}

#[test]
fn marks_go_into_every_file_of_a_bag_and_come_back_once_on_import() {
    let dir = tempfile::tempdir().unwrap();
    let path = make_store(dir.path(), 100);
    let store = Store::open(&path, small_options()).unwrap();
    let mark = |label: &str, start: u64, end: u64, pin: bool| {
        store
            .add_mark(NewMark {
                label: label.into(),
                tags: vec!["t1".into(), label.into()],
                start,
                end,
                pin,
            })
            .unwrap()
    };
    let inside = mark("inside", T0 + 2 * S, T0 + 3 * S, true);
    // Starts at the last nanosecond before the exclusive end: exported.
    mark("edge", T0 + 6 * S - 1, T0 + 7 * S, false);
    // Starts at the exclusive end: not exported.
    mark("after", T0 + 6 * S, T0 + 21 * S, false);
    store.close().unwrap();
    let store = Store::open_read_only(&path).unwrap();
    let s = export_bag(
        &store,
        &ExportOptions {
            start: T0,
            end: T0 + 6 * S,
            output: dir.path().join("bag"),
            split_duration: Some(std::time::Duration::from_secs(2)),
            ..ExportOptions::default()
        },
    )
    .unwrap();
    assert!(s.files.len() >= 3, "{:?}", s.files);
    // Every file, read alone, carries the marks that meet the range.
    for f in &s.files {
        let bytes = std::fs::read(f).unwrap();
        let summary = mcap::Summary::read(&bytes).unwrap().unwrap();
        let labels: Vec<String> = summary
            .metadata_indexes
            .iter()
            .filter(|i| i.name == "motedb.mark")
            .map(|i| {
                let m = mcap::read::metadata(&bytes, i).unwrap();
                m.metadata["label"].clone()
            })
            .collect();
        assert_eq!(labels, vec!["inside", "edge"], "{}", f.display());
    }
    let target = Store::open(dir.path().join("copy"), small_options()).unwrap();
    let report = import_bag(&target, &s.path, &ImportOptions::default()).unwrap();
    assert!(report.complete(), "{:?}", report.skipped);
    assert_eq!(report.marks, 2);
    let again = import_bag(&target, &s.path, &ImportOptions::default()).unwrap();
    assert_eq!(again.marks, 0, "a second import duplicated the marks");
    let got = target.marks();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (
            got[0].label.as_str(),
            &got[0].tags,
            got[0].start,
            got[0].end,
            got[0].pinned
        ),
        ("inside", &inside.tags, inside.start, inside.end, true)
    );
    assert_eq!((got[1].label.as_str(), got[1].pinned), ("edge", false));
}

#[test]
fn a_damaged_mark_record_is_reported_and_the_good_one_still_imported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("marks.mcap");
    let mut w = mcap::Writer::new(std::io::BufWriter::new(
        std::fs::File::create(&file).unwrap(),
    ))
    .unwrap();
    let record = |start: &str| mcap::records::Metadata {
        name: "motedb.mark".into(),
        metadata: [
            ("label", "estop"),
            ("tags", "[]"),
            ("start", start),
            ("end", "2000"),
            ("pinned", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    };
    w.write_metadata(&record("1000")).unwrap();
    w.write_metadata(&record("later")).unwrap();
    w.finish().unwrap();
    drop(w);
    let store = Store::open(dir.path().join("store"), small_options()).unwrap();
    let report = import_bag(&store, &file, &ImportOptions::default()).unwrap();
    assert_eq!(report.marks, 1);
    assert!(!report.complete());
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    assert!(
        report.skipped[0].reason.contains("motedb.mark")
            && report.skipped[0].reason.contains("later"),
        "{}",
        report.skipped[0].reason
    );
    let marks = store.marks();
    assert_eq!(
        (marks.len(), marks[0].start, marks[0].pinned),
        (1, 1000, true)
    );
}
