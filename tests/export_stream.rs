//! Bag writing and MCAP reading through the store-independent core
//! (`export_stream`, `import_mcap_records`), checked with the mcap crate.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use motedb::engine::{self, Record, TopicId, TopicSpec};
use motedb::export::metadata::MetadataFile;
use motedb::export::{
    export_stream, import_mcap_records, ExportControl, ExportError, ExportOptions, McapCompression,
};

const STRING_DEF: &str = "string data\n";
const QOS: &str = "- history: 1\n  depth: 10\n  reliability: 1\n  durability: 2\n  deadline:\n    sec: 9223372036\n    nsec: 854775807\n  lifespan:\n    sec: 9223372036\n    nsec: 854775807\n  liveliness: 1\n  liveliness_lease_duration:\n    sec: 9223372036\n    nsec: 854775807\n  avoid_ros_namespace_conventions: false\n";

fn topics() -> Vec<(TopicId, TopicSpec)> {
    vec![
        (
            1,
            TopicSpec {
                name: "/chatter".into(),
                type_name: "std_msgs/msg/String".into(),
                serialization_format: "cdr".into(),
                definition: STRING_DEF.into(),
                offered_qos: QOS.into(),
                type_hash: String::new(),
            },
        ),
        (
            2,
            TopicSpec {
                name: "/count".into(),
                type_name: "std_msgs/msg/Int32".into(),
                serialization_format: "cdr".into(),
                definition: "int32 data\n".into(),
                offered_qos: String::new(),
                type_hash: String::new(),
            },
        ),
    ]
}

fn string_cdr(s: &str) -> Vec<u8> {
    let mut b = vec![0, 1, 0, 0];
    b.extend((s.len() as u32 + 1).to_le_bytes());
    b.extend(s.as_bytes());
    b.push(0);
    b
}

/// `n` records alternating topics, 10 ms apart from t = 1000 s.
fn records(n: u64) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let topic = 1 + (i % 2) as u32;
            let payload = if topic == 1 {
                string_cdr(&format!("hello {i}"))
            } else {
                let mut b = vec![0, 1, 0, 0];
                b.extend((i as i32).to_le_bytes());
                b
            };
            Record {
                topic,
                log_time: 1_000_000_000_000 + i * 10_000_000,
                publish_time: 999_000_000_000 + i * 10_000_000,
                sequence: i / 2,
                payload,
            }
        })
        .collect()
}

fn opts(dir: &Path, name: &str) -> ExportOptions {
    ExportOptions {
        output: dir.join(name),
        ..ExportOptions::default()
    }
}

#[cfg(test)]
fn export(
    recs: &[Record],
    o: &ExportOptions,
) -> Result<motedb::export::ExportSummary, ExportError> {
    export_stream(
        &topics(),
        recs.iter().cloned().map(Ok),
        o,
        &ExportControl::default(),
    )
}

#[cfg(test)]
fn read_all(path: &Path) -> Vec<(String, u64, u64, u32, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    mcap::MessageStream::new(&bytes)
        .unwrap()
        .map(|m| {
            let m = m.unwrap();
            (
                m.channel.topic.clone(),
                m.log_time,
                m.publish_time,
                m.sequence,
                m.data.into_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn bag_follows_ros2_profile_with_summary_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(5000);
    let s = export(&recs, &opts(dir.path(), "bag")).unwrap();
    assert_eq!(s.message_count, 5000);
    assert_eq!(s.path, dir.path().canonicalize().unwrap().join("bag"));
    assert_eq!(entries(&s.path), vec!["bag_0.mcap", "metadata.yaml"]);
    assert_eq!(
        entries(dir.path()),
        vec!["bag"],
        "no partial directory left"
    );

    let bytes = std::fs::read(&s.files[0]).unwrap();
    let summary = mcap::Summary::read(&bytes).unwrap().unwrap();
    let stats = summary.stats.as_ref().unwrap();
    assert_eq!(stats.message_count, 5000);
    assert_eq!(stats.message_start_time, recs[0].log_time);
    assert_eq!(stats.message_end_time, recs[4999].log_time);
    assert_eq!(stats.channel_message_counts.values().sum::<u64>(), 5000);
    assert!(!summary.chunk_indexes.is_empty());
    for ci in &summary.chunk_indexes {
        assert_eq!(ci.compression, "zstd");
        assert_eq!(ci.message_index_offsets.len(), 2);
    }
    let schema = summary
        .schemas
        .values()
        .find(|s| s.name == "std_msgs/msg/String")
        .unwrap();
    assert_eq!(schema.encoding, "ros2msg");
    assert_eq!(&schema.data[..], STRING_DEF.as_bytes());
    let ch = summary
        .channels
        .values()
        .find(|c| c.topic == "/chatter")
        .unwrap();
    assert_eq!(ch.message_encoding, "cdr");
    assert!(ch.metadata["offered_qos_profiles"].contains("reliability: reliable"));
    let header = mcap::read::LinearReader::new(&bytes)
        .unwrap()
        .find_map(|r| match r.unwrap() {
            mcap::records::Record::Header(h) => Some(h),
            _ => None,
        })
        .unwrap();
    assert_eq!(header.profile, "ros2");

    let got = read_all(&s.files[0]);
    assert_eq!(got.len(), 5000);
    for (g, r) in got.iter().zip(&recs) {
        assert_eq!(
            (g.1, g.2, g.3 as u64, &g.4),
            (r.log_time, r.publish_time, r.sequence, &r.payload)
        );
    }
}

#[test]
fn metadata_yaml_is_rosbag2_v9() {
    let dir = tempfile::tempdir().unwrap();
    let s = export(&records(10), &opts(dir.path(), "b")).unwrap();
    let text = std::fs::read_to_string(s.path.join("metadata.yaml")).unwrap();
    let m: MetadataFile = serde_yaml_ng::from_str(&text).unwrap();
    let i = m.rosbag2_bagfile_information;
    assert_eq!(i.version, 9);
    assert_eq!(i.storage_identifier, "mcap");
    assert_eq!(i.message_count, 10);
    assert_eq!(i.starting_time.nanoseconds_since_epoch, 1_000_000_000_000);
    assert_eq!(i.duration.nanoseconds, 90_000_000);
    assert_eq!(i.relative_file_paths, vec!["b_0.mcap"]);
    assert_eq!(i.files[0].message_count, 10);
    let chatter = &i.topics_with_message_count[0];
    assert_eq!(chatter.message_count, 5);
    assert_eq!(chatter.topic_metadata.type_name, "std_msgs/msg/String");
    let qos = &chatter.topic_metadata.offered_qos_profiles[0];
    assert_eq!(qos["history"].as_str(), Some("keep_last"));
    assert_eq!(qos["durability"].as_str(), Some("volatile"));
}

#[test]
fn split_by_duration_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(1000); // 10 s of data
    let o = ExportOptions {
        split_duration: Some(Duration::from_secs(3)),
        ..opts(dir.path(), "d")
    };
    let s = export(&recs, &o).unwrap();
    assert_eq!(s.files.len(), 4);
    let total: usize = s.files.iter().map(|f| read_all(f).len()).sum();
    assert_eq!(total, 1000);
    let first = read_all(&s.files[1]);
    assert_eq!(first[0].1, recs[300].log_time);

    let o = ExportOptions {
        split_bytes: Some(20_000),
        compression: McapCompression::None,
        ..opts(dir.path(), "s")
    };
    let s = export(&recs, &o).unwrap();
    assert!(s.files.len() > 1, "{} files", s.files.len());
    let total: usize = s.files.iter().map(|f| read_all(f).len()).sum();
    assert_eq!(total, 1000);
    let m: MetadataFile =
        serde_yaml_ng::from_str(&std::fs::read_to_string(s.path.join("metadata.yaml")).unwrap())
            .unwrap();
    assert_eq!(m.rosbag2_bagfile_information.files.len(), s.files.len());
}

#[test]
fn lz4_and_uncompressed_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(300);
    for (c, name) in [(McapCompression::Lz4, "lz4"), (McapCompression::None, "")] {
        let o = ExportOptions {
            compression: c,
            ..opts(dir.path(), &format!("c{name}"))
        };
        let s = export(&recs, &o).unwrap();
        let bytes = std::fs::read(&s.files[0]).unwrap();
        let summary = mcap::Summary::read(&bytes).unwrap().unwrap();
        assert!(summary
            .chunk_indexes
            .iter()
            .all(|ci| ci.compression == name));
        assert_eq!(read_all(&s.files[0]).len(), 300);
    }
}

#[test]
fn empty_export_is_a_valid_bag() {
    let dir = tempfile::tempdir().unwrap();
    let s = export(&[], &opts(dir.path(), "e")).unwrap();
    assert_eq!(s.message_count, 0);
    assert_eq!(read_all(&s.files[0]).len(), 0);
}

#[test]
fn existing_target_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("taken");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"x").unwrap();
    let e = export(&records(5), &opts(dir.path(), "taken")).unwrap_err();
    assert!(
        matches!(e, ExportError::TargetExists(ref p) if p == &target),
        "{e}"
    );
    assert_eq!(entries(&target), vec!["keep"]);
    assert_eq!(entries(dir.path()), vec!["taken"]);
}

#[test]
fn cancelled_export_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = AtomicBool::new(false);
    let progress = |n: u64, _| {
        if n >= 1024 {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let ctl = ExportControl {
        progress: Some(&progress),
        cancel: Some(&cancel),
    };
    let recs = records(5000);
    let e = export_stream(
        &topics(),
        recs.into_iter().map(Ok),
        &opts(dir.path(), "x"),
        &ctl,
    )
    .unwrap_err();
    assert!(matches!(e, ExportError::Cancelled), "{e}");
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn a_cancel_after_the_last_record_still_leaves_nothing() {
    // 100 records: the only progress report is the final one, after the
    // last record and before the bag is finished and published.
    let dir = tempfile::tempdir().unwrap();
    let cancel = AtomicBool::new(false);
    let progress = |n: u64, _| {
        assert_eq!(n, 100);
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let ctl = ExportControl {
        progress: Some(&progress),
        cancel: Some(&cancel),
    };
    let e = export_stream(
        &topics(),
        records(100).into_iter().map(Ok),
        &opts(dir.path(), "x"),
        &ctl,
    )
    .unwrap_err();
    assert!(matches!(e, ExportError::Cancelled), "{e}");
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn store_error_mid_stream_removes_partial_bag() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(100);
    let stream = recs
        .into_iter()
        .map(Ok)
        .chain(std::iter::once(Err(engine::Error::Corrupt {
            file: PathBuf::from("000001.sst"),
            offset: 7,
            reason: "bad block".into(),
        })));
    let e = export_stream(
        &topics(),
        stream,
        &opts(dir.path(), "x"),
        &ExportControl::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("bad block"), "{e}");
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn unknown_topic_id_in_stream_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut recs = records(3);
    recs[1].topic = 99;
    let e = export(&recs, &opts(dir.path(), "u")).unwrap_err();
    assert!(matches!(e, ExportError::UnknownTopicId(99)));
    assert!(entries(dir.path()).is_empty());
}

type Read = (Vec<(String, u64, Vec<u8>)>, Vec<motedb::export::Skipped>);

#[cfg(test)]
fn read_via_import(path: &Path) -> Read {
    let mut got = Vec::new();
    let skipped = import_mcap_records(path, &mut |ch, h, d| {
        assert!(ch.unusable.is_none());
        got.push((ch.spec.name.clone(), h.log_time, d.to_vec()));
        Ok(())
    })
    .unwrap();
    (got, skipped)
}

#[test]
fn mcap_reader_keeps_types_definitions_and_qos() {
    let dir = tempfile::tempdir().unwrap();
    let s = export(&records(50), &opts(dir.path(), "r")).unwrap();
    let mut specs = Vec::new();
    import_mcap_records(&s.files[0], &mut |ch, _, _| {
        if !specs.contains(&ch.spec) {
            specs.push(ch.spec.clone());
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[0].type_name, "std_msgs/msg/String");
    assert_eq!(specs[0].definition, STRING_DEF);
    assert!(specs[0].offered_qos.contains("depth: 10"));
    let (got, skipped) = read_via_import(&s.files[0]);
    assert_eq!(got.len(), 50);
    assert!(skipped.is_empty());
}

#[test]
fn truncated_mcap_imports_the_valid_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let o = ExportOptions {
        compression: McapCompression::None,
        ..opts(dir.path(), "t")
    };
    let recs = records(100_000);
    let s = export(&recs, &o).unwrap();
    let bytes = std::fs::read(&s.files[0]).unwrap();
    let cut = dir.path().join("cut.mcap");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (got, skipped) = read_via_import(&cut);
    assert!(got.len() > 1000 && got.len() < 100_000, "{}", got.len());
    for (g, r) in got.iter().zip(&recs) {
        assert_eq!((g.1, &g.2), (r.log_time, &r.payload));
    }
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0].reason.contains("truncated"),
        "{}",
        skipped[0].reason
    );
}

#[test]
fn corrupt_chunk_is_reported_not_imported() {
    let dir = tempfile::tempdir().unwrap();
    let s = export(&records(20_000), &opts(dir.path(), "c")).unwrap();
    let mut bytes = std::fs::read(&s.files[0]).unwrap();
    let summary = mcap::Summary::read(&bytes).unwrap().unwrap();
    assert!(summary.chunk_indexes.len() >= 2);
    let ci = &summary.chunk_indexes[1];
    let mid = (ci.chunk_start_offset + ci.chunk_length / 2) as usize;
    bytes[mid] ^= 0xff;
    let bad = dir.path().join("bad.mcap");
    std::fs::write(&bad, &bytes).unwrap();
    let (got, skipped) = read_via_import(&bad);
    assert!(!got.is_empty());
    assert!(got.len() < 20_000);
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].offset.is_some());
}

#[test]
fn garbage_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.mcap");
    std::fs::write(&p, b"this is not an mcap file at all").unwrap();
    let (got, skipped) = read_via_import(&p);
    assert!(got.is_empty());
    assert_eq!(skipped.len(), 1);
}

/// Options confining `name` to `base` (the node's `export.directory`).
#[cfg(test)]
fn beneath(base: &Path, name: &str) -> ExportOptions {
    ExportOptions {
        output: PathBuf::from(name),
        beneath: Some(base.to_path_buf()),
        ..ExportOptions::default()
    }
}

#[test]
fn confined_output_names_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = export(&records(10), &beneath(d, "run1")).unwrap();
    assert_eq!(s.path, d.join("run1"));
    let s = export(&records(10), &beneath(d, "day/run1")).unwrap();
    assert_eq!(s.path, d.join("day/run1"));
    assert!(d.join("day/run1/metadata.yaml").is_file());
    for bad in ["", "  ", "/abs/bag", "../up", "a/../../b"] {
        assert!(
            matches!(
                export(&records(10), &beneath(d, bad)),
                Err(ExportError::InvalidOutput { .. })
            ),
            "{bad:?} accepted"
        );
    }
    assert!(matches!(
        export(&records(10), &beneath(d, "run1")),
        Err(ExportError::TargetExists(_))
    ));
}

/// A symbolic link that already sits under the export directory (planted,
/// or left by someone) must not lead a service-requested bag outside it.
#[test]
fn a_symlink_under_the_export_directory_cannot_lead_the_bag_outside() {
    let dir = tempfile::tempdir().unwrap();
    let (base, outside) = (dir.path().join("exports"), dir.path().join("outside"));
    std::fs::create_dir_all(base.join("real")).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, base.join("link")).unwrap();
    std::os::unix::fs::symlink(&outside, base.join("real/deeper")).unwrap();
    std::fs::write(base.join("file"), b"x").unwrap();
    for name in [
        "link/run1",
        "real/deeper/run1",
        "link/a/b/run1",
        "file/run1",
    ] {
        match export(&records(10), &beneath(&base, name)) {
            Err(ExportError::InvalidOutput { reason, .. }) => assert!(
                reason.contains("symbolic link or not a directory"),
                "{name}: {reason}"
            ),
            other => panic!("{name}: {other:?}"),
        }
    }
    // The final name itself a link: taken, never followed.
    assert!(matches!(
        export(&records(10), &beneath(&base, "link")),
        Err(ExportError::TargetExists(_))
    ));
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    // A plain subdirectory still works.
    let s = export(&records(10), &beneath(&base, "real/run1")).unwrap();
    assert_eq!(s.path, base.join("real/run1"));
}

/// Two exports of the same output (a client retrying after a timeout) each
/// build their own temporary directory: one never reuses or deletes
/// another's, whatever its name.
#[test]
fn an_export_never_touches_another_exports_partial_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pid = std::process::id();
    let mut planted = vec![d.join(format!(".run1.partial-{pid}"))];
    // The sequence is shared by every export of this test binary: plant
    // more names than all of them use together.
    planted.extend((0..256).map(|n| d.join(format!(".run1.partial-{pid}-{n}"))));
    for p in &planted {
        std::fs::create_dir(p).unwrap();
        std::fs::write(p.join("bag_0.mcap"), b"someone else's").unwrap();
    }
    let s = export(&records(10), &opts(d, "run1")).unwrap();
    assert_eq!(s.message_count, 10);
    for p in &planted {
        assert_eq!(
            std::fs::read(p.join("bag_0.mcap")).unwrap(),
            b"someone else's",
            "{p:?}"
        );
    }
}

#[test]
fn bag_info_reads_summaries_of_every_file() {
    use motedb::export::{bag_info, is_bag};
    let dir = tempfile::tempdir().unwrap();
    let o = ExportOptions {
        split_duration: Some(Duration::from_secs(3)),
        ..opts(dir.path(), "i")
    };
    let s = export(&records(1000), &o).unwrap();
    assert!(is_bag(&s.path) && is_bag(&s.files[0]));
    assert!(!is_bag(dir.path()));
    let info = bag_info(&s.path).unwrap();
    assert_eq!(info.files.len(), 4);
    assert_eq!(info.message_count, 1000);
    assert_eq!(info.start, 1_000_000_000_000);
    assert_eq!(info.end, 1_000_000_000_000 + 999 * 10_000_000);
    assert_eq!(info.topics.len(), 2);
    assert_eq!(info.topics[0].name, "/chatter");
    assert_eq!(info.topics[0].type_name, "std_msgs/msg/String");
    assert_eq!(info.topics[0].message_count, 500);
    let one = bag_info(&s.files[0]).unwrap();
    assert_eq!(one.message_count, 300);
}

/// Each MCAP file carries rosbag2's "rosbag2" metadata record (the bag's
/// metadata up to and including that file), as rosbag2's MCAP storage
/// writes it, so a single file is self-describing.
#[test]
fn every_mcap_file_carries_the_rosbag2_metadata_record() {
    let dir = tempfile::tempdir().unwrap();
    let o = ExportOptions {
        split_duration: Some(Duration::from_secs(3)),
        ..opts(dir.path(), "m")
    };
    let s = export(&records(1000), &o).unwrap();
    assert!(s.files.len() >= 3, "{:?}", s.files);
    let mut previous = 0;
    for (i, file) in s.files.iter().enumerate() {
        let bytes = std::fs::read(file).unwrap();
        let found: Vec<mcap::records::Metadata> = mcap::read::LinearReader::new(&bytes)
            .unwrap()
            .filter_map(|r| match r.unwrap() {
                mcap::records::Record::Metadata(m) if m.name == "rosbag2" => Some(m),
                _ => None,
            })
            .collect();
        assert_eq!(found.len(), 1, "{file:?}");
        let text = &found[0].metadata["serialized_metadata"];
        let meta: MetadataFile = serde_yaml_ng::from_str(text).unwrap();
        let info = meta.rosbag2_bagfile_information;
        assert_eq!(info.storage_identifier, "mcap");
        assert_eq!(
            info.relative_file_paths.len(),
            i + 1,
            "cumulative, this file last"
        );
        let name = file.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            info.relative_file_paths.last().map(String::as_str),
            Some(name)
        );
        assert!(info.message_count > previous, "{}", info.message_count);
        previous = info.message_count;
    }
    assert_eq!(
        previous, 1000,
        "the last file's record counts the whole bag"
    );
}

/// A bag whose schema is IDL (rosbag2 writes `ros2idl` for types known only
/// as .idl) is imported, not refused, and exported again as `ros2idl`
/// with the same text.
#[test]
fn ros2idl_schemas_are_imported_and_exported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let idl = "module pkg { module msg { struct Thing { int32 x; }; }; };\n";
    let path = dir.path().join("idl.mcap");
    {
        let mut w = mcap::Writer::new(std::io::BufWriter::new(
            std::fs::File::create(&path).unwrap(),
        ))
        .unwrap();
        let schema = w
            .add_schema("pkg/msg/Thing", "ros2idl", idl.as_bytes())
            .unwrap();
        let channel = w
            .add_channel(schema, "/thing", "cdr", &std::collections::BTreeMap::new())
            .unwrap();
        for i in 0..3u32 {
            let header = mcap::records::MessageHeader {
                channel_id: channel,
                sequence: i,
                log_time: 1000 + u64::from(i),
                publish_time: 1000 + u64::from(i),
            };
            w.write_to_known_channel(&header, &[0, 1, 0, 0, i as u8, 0, 0, 0])
                .unwrap();
        }
        w.finish().unwrap();
    }
    let mut specs = Vec::new();
    let skipped = import_mcap_records(&path, &mut |ch, _, _| {
        assert!(ch.unusable.is_none(), "{:?}", ch.unusable);
        specs.push(ch.spec.clone());
        Ok(())
    })
    .unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(specs.len(), 3);
    let spec = specs.pop().unwrap();
    assert!(
        spec.definition.contains("IDL: pkg/msg/Thing"),
        "{}",
        spec.definition
    );
    assert!(spec.definition.ends_with(idl));
    assert_eq!(motedb::export::schema_encoding(&spec.definition), "ros2idl");

    let recs: Vec<Record> = (0..3)
        .map(|i| Record {
            topic: 0,
            log_time: 1000 + i,
            publish_time: 1000 + i,
            sequence: i,
            payload: vec![0, 1, 0, 0, i as u8, 0, 0, 0],
        })
        .collect();
    let s = export_stream(
        &[(0, spec.clone())],
        recs.into_iter().map(Ok),
        &opts(dir.path(), "again"),
        &ExportControl::default(),
    )
    .unwrap();
    let bytes = std::fs::read(&s.files[0]).unwrap();
    let summary = mcap::Summary::read(&bytes).unwrap().unwrap();
    let schema = summary.schemas.values().next().unwrap();
    assert_eq!(schema.encoding, "ros2idl");
    assert_eq!(schema.data.as_ref(), spec.definition.as_bytes());
}

/// Hidden `.partial` directories left in `dir`.
#[cfg(test)]
fn partials(dir: &Path) -> Vec<String> {
    entries(dir)
        .into_iter()
        .filter(|n| n.contains(".partial-"))
        .collect()
}

/// The target appears while the bag is written (another exporter won):
/// the export fails with "exists" and leaves no hidden partial bag behind.
#[test]
fn a_lost_race_for_the_target_leaves_no_partial_bag() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("run1");
    let made = std::sync::atomic::AtomicBool::new(false);
    let progress = |_: u64, _: u64| {
        if !made.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::fs::create_dir(&target).unwrap();
        }
    };
    let ctl = ExportControl {
        progress: Some(&progress),
        ..ExportControl::default()
    };
    let got = export_stream(
        &topics(),
        records(5000).into_iter().map(Ok),
        &opts(dir.path(), "run1"),
        &ctl,
    );
    assert!(matches!(got, Err(ExportError::TargetExists(_))), "{got:?}");
    assert_eq!(partials(dir.path()), Vec::<String>::new());
}

/// The temporary directory renamed away and a link planted under its name
/// while the bag is written: files still go into the directory the export
/// made (it is held open), and the link is never published as the bag.
#[test]
fn a_temporary_directory_swapped_for_a_link_is_not_published() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let base = dir.path().join("exports");
    std::fs::create_dir(&base).unwrap();
    let swapped = std::sync::atomic::AtomicBool::new(false);
    let progress = |_: u64, _: u64| {
        if swapped.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let tmp = partials(&base)
            .pop()
            .expect("the export's temporary directory");
        std::fs::rename(base.join(&tmp), dir.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, base.join(&tmp)).unwrap();
    };
    let ctl = ExportControl {
        progress: Some(&progress),
        ..ExportControl::default()
    };
    let got = export_stream(
        &topics(),
        records(5000).into_iter().map(Ok),
        &opts(&base, "run1"),
        &ctl,
    );
    assert!(got.is_err(), "{got:?}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert!(!base.join("run1").exists());
}

/// A partial bag of a process that no longer exists (an export killed
/// mid-way) is removed by the next export of the same name.
#[test]
fn partial_bags_of_dead_processes_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    // Beyond the largest pid Linux hands out (4194304).
    let dead = dir.path().join(".run1.partial-9999999-0");
    std::fs::create_dir(&dead).unwrap();
    std::fs::write(dead.join("bag_0.mcap"), b"half a bag").unwrap();
    let other = dir.path().join(".run2.partial-9999999-0");
    std::fs::create_dir(&other).unwrap();
    export(&records(10), &opts(dir.path(), "run1")).unwrap();
    assert!(!dead.exists());
    assert!(
        other.exists(),
        "another name's partial bag is not this export's business"
    );
}
