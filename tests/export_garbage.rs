//! Damaged MCAP input never panics the reader paths: flipped bytes and
//! truncations end in imported messages plus a skip report, or a typed error.

use std::sync::OnceLock;

use motedb::engine::{Record, TopicSpec};
use motedb::export::{
    bag_info, export_stream, import_mcap_records, ExportControl, ExportOptions, McapCompression,
};
use proptest::prelude::*;

/// A small valid bag file (several chunks), built once.
#[cfg(test)]
fn valid_mcap() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let spec = TopicSpec {
            name: "/t".into(),
            type_name: "std_msgs/msg/String".into(),
            serialization_format: "cdr".into(),
            definition: "string data\n".into(),
            offered_qos: String::new(),
        };
        let recs = (0..400u64).map(|i| {
            Ok(Record {
                topic: 0,
                log_time: i,
                publish_time: i,
                sequence: i,
                payload: vec![0, 1, 0, 0, 2, 0, 0, 0, b'a', 0],
            })
        });
        let opts = ExportOptions {
            output: dir.path().join("b"),
            compression: McapCompression::Lz4,
            split_bytes: Some(16 << 10), // 4 KiB chunks
            ..ExportOptions::default()
        };
        let s = export_stream(&[(0, spec)], recs, &opts, &ExportControl::default()).unwrap();
        std::fs::read(&s.files[0]).unwrap()
    })
}

#[cfg(test)]
fn read_damaged(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.mcap");
    std::fs::write(&p, bytes).unwrap();
    let mut n = 0u64;
    let res = import_mcap_records(&p, &mut |_, _, _| {
        n += 1;
        Ok(())
    });
    if let Ok(skipped) = res {
        assert!(n <= 400);
        if n < 400 {
            assert!(!skipped.is_empty(), "lost messages without a report");
        }
    }
    let _ = bag_info(&p);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn flipped_bytes_never_panic(flips in proptest::collection::vec((any::<usize>(), 1u8..), 1..4)) {
        let mut b = valid_mcap().to_vec();
        let len = b.len();
        for (at, x) in flips {
            b[at % len] ^= x;
        }
        read_damaged(&b);
    }

    #[test]
    fn truncation_never_panics(cut in any::<usize>()) {
        let b = valid_mcap();
        read_damaged(&b[..cut % b.len()]);
    }
}
