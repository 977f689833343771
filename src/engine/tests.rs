//! Store-level unit tests (behaviour through the public API).

use super::fs::{FaultFs, FileSystem};
use super::*;
use std::path::Path;

fn spec(name: &str) -> TopicSpec {
    TopicSpec {
        name: name.into(),
        type_name: "std_msgs/msg/String".into(),
        serialization_format: "cdr".into(),
        ..TopicSpec::default()
    }
}

fn fault_opts(fs: &FaultFs) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        memtable_bytes: 64 << 10,
        block_size: 4096,
        value_threshold: 1024,
        tuning: Tuning {
            background: false,
            vlog_file_bytes: 64 << 10,
            ..Tuning::default()
        },
        ..Options::default()
    }
}

fn all(store: &Store, topics: &[u32]) -> Vec<Record> {
    store
        .iter(topics, 0, u64::MAX, false)
        .unwrap()
        .collect::<Result<Vec<_>>>()
        .unwrap()
}

fn payload(i: u64, big: bool) -> Vec<u8> {
    let n = if big { 3000 } else { 40 };
    (0..n).map(|j| (i as usize + j) as u8).collect()
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
}

#[test]
fn concurrent_writer_and_paging_reader_never_miss_or_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        memtable_bytes: 256 << 10,
        block_size: 4096,
        value_threshold: 2048,
        tuning: Tuning {
            compaction: compaction::Config {
                l0_trigger: 2,
                base_level_bytes: 256 << 10,
                target_file_bytes: 64 << 10,
                ..compaction::Config::default()
            },
            vlog_file_bytes: 256 << 10,
            ..Tuning::default()
        },
        ..Options::default()
    };
    let store = Arc::new(Store::open(dir.path(), opts).unwrap());
    let ts: Vec<u32> = (0..4)
        .map(|i| store.register_topic(spec(&format!("/t{i}"))).unwrap())
        .collect();
    // Prefill [0, 5000) so the reader has a fixed target.
    for i in 0..20_000u64 {
        store
            .append(ts[(i % 4) as usize], i / 4, 0, &payload(i, i % 101 == 0))
            .unwrap();
    }
    let writer = {
        let store = store.clone();
        let ts = ts.clone();
        std::thread::spawn(move || {
            for i in 20_000..120_000u64 {
                // Late messages (jitter) make L0 tables overlap, so real
                // merges run while the reader pages.
                let time = (i / 4).saturating_sub((i % 13) * 40).max(5000);
                store
                    .append(ts[(i % 4) as usize], time, 0, &payload(i, i % 101 == 0))
                    .unwrap();
            }
        })
    };
    for round in 0..3 {
        let mut req = ScanRequest {
            topics: vec![],
            start: 0,
            end: 5000,
            newest_first: round % 2 == 1,
            max_messages: 333,
            max_bytes: 0,
            cursor: None,
        };
        let mut got = Vec::new();
        loop {
            let page = store.scan(&req).unwrap();
            got.extend(
                page.records
                    .into_iter()
                    .map(|r| (r.log_time, r.topic, r.sequence)),
            );
            match page.next_cursor {
                Some(c) => req.cursor = Some(c),
                None => break,
            }
        }
        if req.newest_first {
            got.reverse();
        }
        let want: Vec<(u64, u32, u64)> = (0..20_000u64)
            .map(|i| (i / 4, (i % 4) as u32, i / 4))
            .collect();
        assert_eq!(got, want, "round {round}");
    }
    writer.join().unwrap();
    let h = store.health();
    assert!(!h.poisoned, "{:?}", h.last_error);
    assert_eq!(h.messages_stored, 120_000);
    assert!(h.compaction_bytes_written > 0, "merges ran: {h:?}");
}

#[test]
fn append_scan_reopen_round_trip() {
    let fs = FaultFs::new();
    let dir = Path::new("/db");
    let store = Store::open(dir, fault_opts(&fs)).unwrap();
    let a = store.register_topic(spec("/a")).unwrap();
    let b = store.register_topic(spec("/b")).unwrap();
    assert_eq!(store.register_topic(spec("/a")).unwrap(), a);
    let mut conflict = spec("/a");
    conflict.type_name = "other".into();
    assert!(matches!(
        store.register_topic(conflict),
        Err(Error::TopicTypeConflict { .. })
    ));
    for i in 0..2000u64 {
        let t = if i % 2 == 0 { a } else { b };
        let seq = store.append(t, i, i + 1, &payload(i, i % 97 == 0)).unwrap();
        assert_eq!(seq, i / 2);
    }
    let before = all(&store, &[]);
    assert_eq!(before.len(), 2000);
    assert!(before.windows(2).all(|w| w[0].log_time < w[1].log_time));
    store.close().unwrap();
    let store = Store::open(dir, fault_opts(&fs)).unwrap();
    assert_eq!(all(&store, &[]), before);
    assert_eq!(store.append(a, 5000, 0, b"x").unwrap(), 1000);
    let info = store.topic_by_name("/b").unwrap();
    assert_eq!(info.message_count, 1000);
    assert_eq!(info.first_time, Some(1));
    assert_eq!(info.last_time, Some(1999));
}

#[test]
fn paging_with_cursor_across_flush_and_compaction_misses_nothing() {
    let fs = FaultFs::new();
    let store = Store::open("/db", fault_opts(&fs)).unwrap();
    let ts: Vec<u32> = (0..3)
        .map(|i| store.register_topic(spec(&format!("/t{i}"))).unwrap())
        .collect();
    for i in 0..3000u64 {
        store
            .append(ts[(i % 3) as usize], i / 3, 0, &payload(i, false))
            .unwrap();
    }
    for newest_first in [false, true] {
        let mut req = ScanRequest {
            topics: vec![],
            start: 100,
            end: 900,
            newest_first,
            max_messages: 97,
            max_bytes: 0,
            cursor: None,
        };
        let mut got = Vec::new();
        let mut pages = 0;
        loop {
            let page = store.scan(&req).unwrap();
            got.extend(
                page.records
                    .iter()
                    .map(|r| (r.log_time, r.topic, r.sequence)),
            );
            pages += 1;
            if pages == 3 {
                store.flush().unwrap();
            }
            if pages == 6 {
                store.compact().unwrap();
            }
            match page.next_cursor {
                Some(c) => req.cursor = Some(c),
                None => break,
            }
        }
        let mut want: Vec<(u64, u32, u64)> = (0..3000u64)
            .map(|i| (i / 3, (i % 3) as u32, i / 3))
            .filter(|(t, _, _)| (100..900).contains(t))
            .collect();
        if newest_first {
            want.reverse();
        }
        assert_eq!(got, want);
    }
    let other = ScanRequest {
        topics: vec![0],
        start: 0,
        end: 10,
        newest_first: false,
        max_messages: 1,
        max_bytes: 0,
        cursor: None,
    };
    let c = store.scan(&other).unwrap().next_cursor.unwrap();
    let mut wrong = other.clone();
    wrong.end = 11;
    wrong.cursor = Some(c);
    assert!(matches!(store.scan(&wrong), Err(Error::InvalidCursor(_))));
}

#[test]
fn iterator_is_a_snapshot_of_the_memtable_too() {
    let fs = FaultFs::new();
    let store = Store::open("/db", fault_opts(&fs)).unwrap();
    let t = store.register_topic(spec("/a")).unwrap();
    for i in 0..100u64 {
        store.append(t, i * 10, 0, b"old").unwrap();
    }
    let it = store.iter(&[t], 0, u64::MAX, false).unwrap();
    for i in 0..100u64 {
        store.append(t, i * 10 + 5, 0, b"new").unwrap(); // inside the range
    }
    let got: Vec<Record> = it.map(|r| r.unwrap()).collect();
    assert_eq!(got.len(), 100);
    assert!(got.iter().all(|r| r.payload == b"old"));
    assert_eq!(all(&store, &[t]).len(), 200);
}

#[test]
fn latest_and_byte_limit() {
    let fs = FaultFs::new();
    let store = Store::open("/db", fault_opts(&fs)).unwrap();
    let t = store.register_topic(spec("/a")).unwrap();
    for i in 0..100u64 {
        store.append(t, i * 10, 0, &payload(i, false)).unwrap();
    }
    store.flush().unwrap();
    assert_eq!(store.latest(t, 55).unwrap().unwrap().log_time, 50);
    assert_eq!(store.latest(t, 50).unwrap().unwrap().log_time, 50);
    assert!(store.latest(t, 0).unwrap().is_some());
    let req = ScanRequest {
        topics: vec![t],
        start: 0,
        end: u64::MAX,
        newest_first: false,
        max_messages: 0,
        max_bytes: 1,
        cursor: None,
    };
    let page = store.scan(&req).unwrap();
    assert_eq!(page.records.len(), 1, "one record even above max_bytes");
    assert!(page.next_cursor.is_some());
}

#[test]
fn crash_keeps_synced_records_and_drops_nothing_else() {
    let fs = FaultFs::new();
    let mut opts = fault_opts(&fs);
    opts.durability = Durability::Sync;
    let store = Store::open("/db", opts).unwrap();
    let t = store.register_topic(spec("/a")).unwrap();
    for i in 0..500u64 {
        store.append(t, i, 0, &payload(i, i % 50 == 0)).unwrap();
    }
    let after = fs.crash();
    drop(store);
    let store = Store::open("/db", fault_opts(&after)).unwrap();
    let got = all(&store, &[t]);
    assert_eq!(got.len(), 500);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.payload, payload(i as u64, i % 50 == 0));
    }
}

#[test]
fn failed_wal_sync_poisons_writes_but_reads_work() {
    let fs = FaultFs::new();
    let mut opts = fault_opts(&fs);
    opts.durability = Durability::Sync;
    let store = Store::open("/db", opts).unwrap();
    let t = store.register_topic(spec("/a")).unwrap();
    store.append(t, 1, 0, b"one").unwrap();
    fs.fail_nth_sync(1);
    assert!(store.append(t, 2, 0, b"two").is_err());
    assert!(matches!(
        store.append(t, 3, 0, b"x"),
        Err(Error::Poisoned(_))
    ));
    let h = store.health();
    assert!(h.poisoned && h.last_error.is_some());
    assert_eq!(all(&store, &[t]).first().unwrap().payload, b"one");
}

#[test]
fn second_writer_is_locked_out_and_read_only_sees_data() {
    let fs = FaultFs::new();
    let store = Store::open("/db", fault_opts(&fs)).unwrap();
    let t = store.register_topic(spec("/a")).unwrap();
    store.append(t, 1, 0, b"one").unwrap();
    store.sync().unwrap();
    assert!(matches!(
        Store::open("/db", fault_opts(&fs)),
        Err(Error::Locked { .. })
    ));
    let ro = Store::open_read_only_with("/db", fault_opts(&fs)).unwrap();
    assert_eq!(all(&ro, &[t]).len(), 1);
    assert!(matches!(ro.append(t, 2, 0, b"x"), Err(Error::ReadOnly)));
}

#[test]
fn retention_drops_oldest_files_and_counts_them() {
    let fs = FaultFs::new();
    let mut opts = fault_opts(&fs);
    opts.retention.max_bytes = 200 << 10;
    let store = Store::open("/db", opts).unwrap();
    let t = store.register_topic(spec("/a")).unwrap();
    for i in 0..20_000u64 {
        store.append(t, i, 0, &payload(i, i % 10 == 0)).unwrap();
    }
    store.flush().unwrap();
    store.compact().unwrap();
    let h = store.health();
    assert!(h.retention_dropped_files > 0);
    assert!(h.retention_dropped_messages > 0);
    let got = all(&store, &[t]);
    assert_eq!(got.len() as u64 + h.retention_dropped_messages, 20_000);
    // What is left is the newest, contiguous.
    let first = got.first().unwrap().log_time;
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, r)| r.log_time == first + i as u64));
    for r in &got {
        assert_eq!(r.payload, payload(r.log_time, r.log_time % 10 == 0));
    }
}

#[test]
fn retention_set_at_run_time_takes_effect() {
    let fs = FaultFs::new();
    let store = Store::open("/db", fault_opts(&fs)).unwrap();
    let t = store.register_topic(spec("/a")).unwrap();
    for i in 0..20_000u64 {
        store.append(t, i, 0, &payload(i, i % 10 == 0)).unwrap();
    }
    store.flush().unwrap();
    store.compact().unwrap();
    assert_eq!(store.health().retention_dropped_files, 0);
    assert_eq!(store.health().quota_bytes, 0);
    store
        .set_retention(Retention {
            max_bytes: 200 << 10,
            max_age: None,
            ..Retention::default()
        })
        .unwrap();
    store.compact().unwrap();
    let h = store.health();
    assert_eq!(h.quota_bytes, 200 << 10);
    assert!(
        h.retention_dropped_files > 0,
        "lowered quota dropped nothing"
    );
    let got = all(&store, &[t]);
    assert_eq!(got.len() as u64 + h.retention_dropped_messages, 20_000);
}

#[test]
fn loss_counters_and_catalog_survive_reopen() {
    let fs = FaultFs::new();
    let store = Store::open("/db", fault_opts(&fs)).unwrap();
    let mut s = spec("/imu");
    s.definition = "float64 x".into();
    s.offered_qos = "- history: 1".into();
    let t = store.register_topic(s.clone()).unwrap();
    store.record_loss(t, 3, 2).unwrap();
    store.record_loss(t, 1, 0).unwrap();
    assert!(matches!(
        store.record_loss(9, 1, 1),
        Err(Error::UnknownTopic(9))
    ));
    drop(store);
    let store = Store::open("/db", fault_opts(&fs)).unwrap();
    let info = store.topic_by_name("/imu").unwrap();
    assert_eq!((info.dropped_count, info.gap_count), (4, 2));
    assert_eq!(info.spec, s);
    assert_eq!(info.message_count, 0);
    assert_eq!(info.first_time, None);
}

#[test]
fn a_missing_definition_or_type_hash_is_filled_in_later_and_a_known_one_stays() {
    let fs = FaultFs::new();
    let store = Store::open("/db", fault_opts(&fs)).unwrap();
    let bare = spec("/imu");
    let t = store.register_topic(bare.clone()).unwrap();
    let hash = format!("RIHS01_{}", "0f".repeat(32));
    let full = TopicSpec {
        definition: "float64 x".into(),
        type_hash: hash.clone(),
        ..bare.clone()
    };
    assert_eq!(store.register_topic(full.clone()).unwrap(), t);
    assert_eq!(store.topic_by_name("/imu").unwrap().spec, full);
    // Known values are never replaced by a later registration.
    let other = TopicSpec {
        definition: "int8 y".into(),
        type_hash: format!("RIHS01_{}", "aa".repeat(32)),
        ..bare.clone()
    };
    assert_eq!(store.register_topic(other).unwrap(), t);
    drop(store);
    let store = Store::open("/db", fault_opts(&fs)).unwrap();
    assert_eq!(store.topic_by_name("/imu").unwrap().spec, full);
}

#[test]
fn read_only_follows_a_live_writer_on_real_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let t = store.register_topic(spec("/a")).unwrap();
    for i in 0..1000u64 {
        store.append(t, i, 0, &payload(i, false)).unwrap();
    }
    store.flush().unwrap();
    for i in 1000..1500u64 {
        store.append(t, i, 0, &payload(i, i % 100 == 0)).unwrap();
    }
    store.sync().unwrap();
    let ro = Store::open_read_only(dir.path()).unwrap();
    let got = all(&ro, &[t]);
    assert_eq!(got.len(), 1500);
    assert_eq!(got[1400].payload, payload(1400, true));
    assert!(matches!(
        Store::open(dir.path(), Options::default()),
        Err(Error::Locked { pid: Some(_), .. })
    ));
    assert!(Store::open_read_only(dir.path().join("missing")).is_err());
}

#[test]
fn health_reports_levels_and_amplification() {
    let fs = FaultFs::new();
    // Raw value-log payloads: these compress, and would count below 1.
    let opts = Options {
        value_compression: Codec::Raw,
        ..fault_opts(&fs)
    };
    let store = Store::open("/db", opts).unwrap();
    let t = store.register_topic(spec("/a")).unwrap();
    for i in 0..5000u64 {
        store.append(t, i, 0, &payload(i, i % 100 == 0)).unwrap();
    }
    store.flush().unwrap();
    let h = store.health();
    assert_eq!(h.write_state, WriteState::Normal);
    assert!(!h.poisoned);
    assert_eq!(h.messages_stored, 5000);
    assert!(h.levels.iter().map(|l| l.files).sum::<u64>() > 0);
    assert!(h.bytes_ingested > 0 && h.flush_bytes_written > 0 && h.vlog_bytes_written > 0);
    assert!(h.write_amplification > 0.5, "{}", h.write_amplification);
    assert!(h.disk_bytes >= h.levels.iter().map(|l| l.bytes).sum::<u64>());
}

#[test]
fn byte_quota_holds_even_when_every_table_overlaps() {
    let fs = FaultFs::new();
    let mut opts = fault_opts(&fs);
    opts.retention.max_bytes = 100 << 10;
    opts.tuning.compaction.l0_trigger = 1000; // keep overlapping L0 tables
    opts.tuning.l0_stop = 1000;
    opts.tuning.l0_slowdown = 1000;
    let store = Store::open("/db", opts).unwrap();
    let t = store.register_topic(spec("/a")).unwrap();
    for round in 0..40u64 {
        for i in 0..200u64 {
            // Each batch spans the whole time axis: all tables overlap.
            store
                .append(t, i * 100 + round, 0, &payload(i, false))
                .unwrap();
        }
        store.flush().unwrap();
    }
    store.compact().unwrap();
    let h = store.health();
    assert!(h.retention_dropped_files > 0, "{h:?}");
    let table_bytes: u64 = h.levels.iter().map(|l| l.bytes).sum();
    assert!(table_bytes <= 100 << 10, "quota exceeded: {table_bytes}");
    assert_eq!(
        all(&store, &[t]).len() as u64 + h.retention_dropped_messages,
        8000
    );
}

#[test]
fn unreferenced_files_are_removed_at_open() {
    let fs = FaultFs::new();
    let store = Store::open("/db", fault_opts(&fs)).unwrap();
    store.close().unwrap();
    let junk = Path::new("/db/000099.sst");
    fs.create(junk).unwrap();
    let store = Store::open("/db", fault_opts(&fs)).unwrap();
    assert!(!fs.exists(junk));
    assert_eq!(
        store.recovery_report().removed_files,
        vec![junk.to_path_buf()]
    );
}

/// `n` xorshift bytes from `seed`: incompressible test payloads.
pub(super) fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn compressible_topics_are_stored_smaller_and_read_back_equal_across_reopen() {
    let fs = FaultFs::new();
    for codec in [Codec::Lz4, Codec::Zstd] {
        let dir = format!("/db_{}", codec.name());
        let opts = Options {
            value_compression: codec,
            ..fault_opts(&fs)
        };
        let store = Store::open(&dir, opts.clone()).unwrap();
        let image = store.register_topic(spec("/image")).unwrap();
        let jpeg = store.register_topic(spec("/jpeg")).unwrap();
        let mut want = Vec::new();
        for i in 0..40u64 {
            // Image-like rows (compress) and noise (does not).
            let row: Vec<u8> = (0..4096).map(|j| ((j / 16) as u64 + i) as u8).collect();
            let p = (image, row.repeat(4));
            let q = (jpeg, noise(i + 1, 16_000));
            for (t, body) in [p, q] {
                store.append(t, i, 0, &body).unwrap();
                want.push((t, i, body));
            }
        }
        let check = |store: &Store| {
            let mut got: Vec<_> = all(store, &[])
                .into_iter()
                .map(|r| (r.topic, r.log_time, r.payload))
                .collect();
            got.sort();
            let mut w = want.clone();
            w.sort();
            assert_eq!(got.len(), w.len(), "{codec:?}");
            assert!(got == w, "{codec:?}: payloads differ");
            let t = store.topics();
            assert_eq!(t[0].size_bytes, 40 * 16_384);
            assert!(t[0].stored_bytes * 4 < t[0].size_bytes, "{:?}", t[0]);
            assert_eq!(t[1].stored_bytes, t[1].size_bytes);
        };
        check(&store);
        let s = store.topics()[0].value_codec.unwrap();
        assert_eq!((s.codec, s.encoded, s.raw), (codec, 40, 0));
        let s = store.topics()[1].value_codec.unwrap();
        // Tried once, then every RESAMPLE_EVERY-th: all stored raw.
        assert_eq!((s.codec, s.encoded, s.raw), (Codec::Raw, 0, 40));
        assert_eq!(s.bytes_in, s.bytes_out);
        store.flush().unwrap();
        check(&store);
        drop(store);
        // Stored sizes come back from the table meta; the stats start over.
        let store = Store::open(&dir, opts).unwrap();
        check(&store);
        assert_eq!(store.topics()[0].value_codec, None);
        assert!(store.verify().unwrap().is_clean());
    }
}

#[test]
fn a_damaged_compressed_payload_is_reported_never_returned() {
    let fs = FaultFs::new();
    let store = Store::open("/db", fault_opts(&fs)).unwrap();
    let t = store.register_topic(spec("/image")).unwrap();
    let body: Vec<u8> = (0..20_000).map(|j| (j / 32) as u8).collect();
    store.append(t, 1, 0, &body).unwrap();
    store.flush().unwrap();
    drop(store);
    let vlog = fs
        .files()
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "vlog"))
        .unwrap();
    let len = fs.contents(&vlog).unwrap().len();
    assert!(len < 28 + 20_000 / 8, "stored encoded: {len}");
    assert!(fs.flip_byte(&vlog, len - 1));
    let store = Store::open("/db", fault_opts(&fs)).unwrap();
    let err = store
        .iter(&[], 0, u64::MAX, false)
        .unwrap()
        .collect::<Result<Vec<_>>>()
        .unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
}

#[test]
fn the_manifest_says_when_encoded_payloads_exist_and_unknown_features_are_refused() {
    let fs = FaultFs::new();
    let dir = Path::new("/db");
    let features = || manifest::load(&fs, dir).unwrap().0.features;
    let store = Store::open(dir, fault_opts(&fs)).unwrap();
    let t = store.register_topic(spec("/image")).unwrap();
    // Large but random: stored raw, so no feature is claimed.
    store.append(t, 1, 0, &noise(5, 20_000)).unwrap();
    assert_eq!(features(), 0);
    let image: Vec<u8> = (0..20_000u32).map(|j| (j / 64) as u8).collect();
    for i in 2..40 {
        store.append(t, i, 0, &image).unwrap();
    }
    assert_eq!(store.topics()[0].value_codec.unwrap().encoded, 38 - 31);
    assert_eq!(features(), manifest::FEATURE_ENCODED_VALUES);
    drop(store);
    // Kept across the manifest rewrite of every writable open.
    let store = Store::open(dir, fault_opts(&fs)).unwrap();
    assert_eq!(all(&store, &[]).len(), 39);
    drop(store);
    assert_eq!(features(), manifest::FEATURE_ENCODED_VALUES);
    // A feature this version does not know: refused, by name.
    let mut state = manifest::load(&fs, dir).unwrap().0;
    state.features |= 1 << 7;
    let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
    drop(manifest::ManifestWriter::rewrite(fsa, dir, &state).unwrap());
    let err = Store::open(dir, fault_opts(&fs)).err().unwrap().to_string();
    assert!(err.contains("format features 0x80"), "{err}");
    assert!(Store::open_read_only_with(dir, fault_opts(&fs)).is_err());
}

#[test]
fn verify_and_reads_report_an_encoded_payload_that_does_not_decode_to_its_length() {
    let fs = FaultFs::new();
    let store = Store::open("/db", fault_opts(&fs)).unwrap();
    let t = store.register_topic(spec("/image")).unwrap();
    let image: Vec<u8> = (0..20_000u32).map(|j| (j / 64) as u8).collect();
    let mut enc = Vec::new();
    let n = compress::encode_if_smaller(Codec::Zstd, &image, &mut enc).unwrap();
    // A writer bug stand-in: the pointer says one byte more than the
    // stored frame decodes to; the crc of the stored bytes holds.
    assert!(store.inner.encoded_values_allowed());
    let longer = vec![0u8; image.len() + 1];
    store
        .inner
        .append_stored(t, 1, 0, &longer, Some((&enc[..n], Codec::Zstd)))
        .unwrap();
    store.flush().unwrap();
    let report = store.verify().unwrap();
    let table = report
        .files
        .iter()
        .find(|f| f.kind == FileKind::Table)
        .unwrap();
    assert_eq!(table.problems.len(), 1, "{report:?}");
    assert!(
        table.problems[0].contains("does not decode to 20001 bytes"),
        "{:?}",
        table.problems
    );
    assert!(report
        .files
        .iter()
        .filter(|f| f.kind != FileKind::Table)
        .all(|f| f.problems.is_empty()));
    let err = store
        .iter(&[], 0, u64::MAX, false)
        .unwrap()
        .collect::<Result<Vec<_>>>()
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

#[test]
fn the_first_mark_logs_its_feature_in_a_batch_before_it() {
    let fs = FaultFs::new();
    let dir = Path::new("/db");
    let store = Store::open(dir, fault_opts(&fs)).unwrap();
    assert_eq!(manifest::load(&fs, dir).unwrap().0.features, 0);
    let m = store
        .add_mark(crate::engine::NewMark {
            label: "a".into(),
            start: 1,
            end: 2,
            ..Default::default()
        })
        .unwrap();
    let state = manifest::load(&fs, dir).unwrap().0;
    assert_eq!(state.features, manifest::FEATURE_MARKS);
    assert_eq!(state.marks[&m.id], m);
    // A version that knows `Features` but not marks stops at the feature
    // batch, before the mark's tag 14 could read as damage: the feature
    // edit is in a frame of its own, ahead of the mark.
    let bytes = fs.contents(&dir.join(manifest::FILE)).unwrap();
    let feature = bytes
        .windows(9)
        .position(|w| w[0] == 13 && w[1..] == manifest::FEATURE_MARKS.to_le_bytes())
        .unwrap();
    let mark = bytes
        .windows(9)
        .position(|w| w[0] == 14 && w[1..] == m.id.to_le_bytes())
        .unwrap();
    assert!(feature + 9 < mark, "feature at {feature}, mark at {mark}");
}
