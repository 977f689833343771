//! `Store::verify`: a clean store lists every file with no problem; a
//! flipped byte in a table block, a value-log entry or a WAL record before
//! the tail is reported for exactly that file, at the damaged item's offset.

use motedb::engine::{
    Codec, Compression, Durability, FileKind, Options, Store, TopicSpec, VerifyReport,
};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const BIG: usize = 1000;

#[cfg(test)]
fn options() -> Options {
    Options {
        durability: Durability::Sync,
        value_threshold: 512,
        block_size: 4096,
        compression: Compression::None,
        // Raw value-log payloads: the tests compute entry offsets.
        value_compression: Codec::Raw,
        ..Options::default()
    }
}

/// A store with a table, a value-log file and unflushed WAL records.
#[cfg(test)]
fn store_with_every_kind(dir: &Path) -> Store {
    let store = Store::open(dir, options()).unwrap();
    let spec = TopicSpec {
        name: "/blob".into(),
        type_name: "std_msgs/msg/String".into(),
        serialization_format: "cdr".into(),
        ..TopicSpec::default()
    };
    let t = store.register_topic(spec).unwrap();
    for i in 0..60u64 {
        let len = if i % 2 == 0 { BIG } else { 20 };
        store.append(t, 1000 + i, 0, &vec![i as u8; len]).unwrap();
    }
    store.flush().unwrap();
    for i in 60..70u64 {
        store.append(t, 1000 + i, 0, &[i as u8; 30]).unwrap();
    }
    store.sync().unwrap();
    store
}

#[cfg(test)]
fn files_with(dir: &Path, pred: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| pred(p.file_name().unwrap().to_str().unwrap()))
        .collect();
    v.sort();
    v
}

#[cfg(test)]
fn flip(path: &Path, offset: u64) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&[b[0] ^ 0x5a]).unwrap();
    f.sync_all().unwrap();
}

/// The report's only problem is in `path` and names `needle`.
#[cfg(test)]
fn assert_only_problem(r: &VerifyReport, path: &Path, needle: &str) {
    for f in &r.files {
        if f.path == path {
            assert_eq!(f.problems.len(), 1, "{f:?}");
            assert!(f.problems[0].contains(needle), "{:?}", f.problems);
        } else {
            assert!(f.problems.is_empty(), "unexpected problem: {f:?}");
        }
    }
    assert!(r.files.iter().any(|f| f.path == path), "{r:?}");
    assert!(!r.is_clean());
    assert_eq!(r.problem_count(), 1);
}

#[test]
fn clean_store_verifies_clean_with_every_file_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_every_kind(dir.path());
    let r = store.verify().unwrap();
    assert!(r.is_clean(), "{r:?}");
    let listed = |kind| {
        let mut v: Vec<PathBuf> = r
            .files
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| f.path.clone())
            .collect();
        v.sort();
        v
    };
    let d = dir.path();
    assert_eq!(
        listed(FileKind::Table),
        files_with(d, |n| n.ends_with(".sst"))
    );
    assert_eq!(
        listed(FileKind::ValueLog),
        files_with(d, |n| n.ends_with(".vlog"))
    );
    assert_eq!(listed(FileKind::Manifest), vec![d.join("MANIFEST")]);
    assert!(!listed(FileKind::Table).is_empty());
    assert!(!listed(FileKind::ValueLog).is_empty());
    let wal_items: u64 = r
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Wal)
        .map(|f| f.items)
        .sum();
    assert_eq!(wal_items, 10, "{r:?}");
    let vlog_items: u64 = r
        .files
        .iter()
        .filter(|f| f.kind == FileKind::ValueLog)
        .map(|f| f.items)
        .sum();
    assert_eq!(vlog_items, 30, "{r:?}");
    for f in &r.files {
        assert!(f.bytes > 0, "{f:?}");
    }
    store.close().unwrap();
}

#[test]
fn flipped_table_block_byte_is_reported_for_that_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_every_kind(dir.path());
    let sst = files_with(dir.path(), |n| n.ends_with(".sst")).remove(0);
    // The first data block starts at offset 0.
    flip(&sst, 10);
    let r = store.verify().unwrap();
    assert_only_problem(&r, &sst, "at offset 0:");
    drop(store);
}

#[test]
fn flipped_value_log_byte_is_reported_at_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_every_kind(dir.path());
    let vlog = files_with(dir.path(), |n| n.ends_with(".vlog")).remove(0);
    // Entries are 28-byte header + payload; damage the second payload.
    let second = 28 + BIG as u64;
    flip(&vlog, second + 28 + 7);
    let r = store.verify().unwrap();
    assert_only_problem(&r, &vlog, &format!("entry at offset {second}:"));
    let f = r.files.iter().find(|f| f.path == vlog).unwrap();
    assert!(f.problems[0].contains("checksum"), "{:?}", f.problems);
    assert_eq!(f.items, 29, "the pass goes on after a payload error");
    drop(store);
}

#[test]
fn flipped_wal_record_before_the_tail_is_reported_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_every_kind(dir.path());
    let wals = files_with(dir.path(), |n| n.starts_with("wal-"));
    let wal = wals
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let bytes = std::fs::read(&wal).unwrap();
    // Frame: len u32 | !len u32 | crc u32 | payload; damage the second.
    let len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as u64;
    let second = 12 + len;
    flip(&wal, second + 12 + 3);
    let r = store.verify().unwrap();
    assert_only_problem(&r, &wal, &format!("at offset {second}:"));
    let f = r.files.iter().find(|f| f.path == wal).unwrap();
    assert!(f.problems[0].contains("checksum"), "{:?}", f.problems);
    drop(store);
}

#[test]
fn torn_wal_tail_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_every_kind(dir.path());
    let wal = files_with(dir.path(), |n| n.starts_with("wal-"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let size = std::fs::metadata(&wal).unwrap().len();
    let mut f = std::fs::OpenOptions::new().append(true).open(&wal).unwrap();
    f.write_all(&[7, 0, 0, 0, 0xf8]).unwrap();
    f.sync_all().unwrap();
    let r = store.verify().unwrap();
    // Not damage: reported as a note, the store verifies clean.
    assert!(r.is_clean(), "{r:?}");
    for f in &r.files {
        if f.path == wal {
            assert_eq!(f.notes.len(), 1, "{f:?}");
            assert!(
                f.notes[0].contains(&format!("torn tail at offset {size}: 5 bytes")),
                "{f:?}"
            );
        } else {
            assert!(f.notes.is_empty(), "{f:?}");
        }
    }
    drop(store);
}
