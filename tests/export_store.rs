//! export_bag / import_bag on real stores: selection, time ranges,
//! round trip of times, types, definitions and QoS, bounded memory.

#[cfg(test)]
mod common;

use std::process::Command;

use common::*;
use motedb::engine::{Nanos, Record, Store};
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
