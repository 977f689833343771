//! Inputs found by the fuzz targets in fuzz/ (scripts/fuzz), shrunk to
//! what triggers the bug. Each must end in a value or a typed error.
//!
//! A bug that aborts the process (allocation failure) would take the whole
//! test binary down, so such cases run in a child process and the parent
//! asserts on how it exited.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure should panic")]

use std::path::Path;
use std::process::Command;

use motedb::engine::{Store, TopicSpec};

/// Set in the child process: run the body instead of spawning.
const CHILD: &str = "MOTEDB_FUZZ_REGRESSION_CHILD";

/// Address-space limit of the child: an allocation past it aborts, so a
/// decoder that sizes a buffer from an untrusted length is caught even
/// where the machine would have had the memory.
const CHILD_MEMORY: u64 = 2 << 30;

/// Runs `body` in a child copy of this test binary (test `name`) and
/// asserts that it exited normally.
fn in_child(name: &str, body: fn()) {
    if std::env::var_os(CHILD).is_some() {
        let limit = libc::rlimit {
            rlim_cur: CHILD_MEMORY,
            rlim_max: CHILD_MEMORY,
        };
        // SAFETY: setrlimit only reads the struct passed by reference.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
        assert_eq!(rc, 0, "setrlimit failed");
        body();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} child exited with {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A manifest frame (docs/format.md, Frame) around one batch of `edits`.
fn manifest_frame(edits: &[Vec<u8>]) -> Vec<u8> {
    let mut payload = (edits.len() as u32).to_le_bytes().to_vec();
    for e in edits {
        payload.extend(e);
    }
    let len = payload.len() as u32;
    let mut frame = len.to_le_bytes().to_vec();
    frame.extend((!len).to_le_bytes());
    frame.extend(crc32fast::hash(&payload).to_le_bytes());
    frame.extend(payload);
    frame
}

/// Manifest edit 7 (Topic): id, then five length-prefixed strings.
fn topic_edit(id: u32, name: &str) -> Vec<u8> {
    let mut e = vec![7u8];
    e.extend(id.to_le_bytes());
    for s in [name, "std_msgs/msg/String", "cdr", "string data\n", ""] {
        e.extend((s.len() as u32).to_le_bytes());
        e.extend(s.as_bytes());
    }
    e
}

fn make_store(dir: &Path) {
    let store = Store::open(dir, motedb::engine::Options::default()).unwrap();
    let spec = TopicSpec {
        name: "/a".into(),
        type_name: "std_msgs/msg/String".into(),
        serialization_format: "cdr".into(),
        definition: "string data\n".into(),
        offered_qos: String::new(),
    };
    store.register_topic(spec).unwrap();
    store.close().unwrap();
}

fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// Found by store_files: a CRC-valid manifest batch registering topic id
/// 0xF000_0000 made the catalog allocate one slot per id below it (tens of
/// GB) and the process aborted. Topic ids are dense; such an id must be
/// refused as `Corrupt` (or at least not abort).
fn huge_topic_id_body() {
    let dir = tempfile::tempdir().unwrap();
    make_store(dir.path());
    let frame = manifest_frame(&[topic_edit(0xF000_0000, "/huge")]);
    append(&dir.path().join("MANIFEST"), &frame);
    match Store::open_read_only(dir.path()) {
        Ok(store) => assert!(store.topics().len() <= 2),
        Err(e) => eprintln!("typed error: {e}"),
    }
}

#[test]
fn manifest_huge_topic_id_does_not_abort() {
    in_child("manifest_huge_topic_id_does_not_abort", huge_topic_id_body);
}

/// MCAP string: u32 length + bytes.
fn mcap_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
}

/// Magic and a Header record (profile ros2), as every MCAP starts.
fn mcap_start() -> Vec<u8> {
    let mut header = Vec::new();
    mcap_str(&mut header, "ros2");
    mcap_str(&mut header, "fuzz");
    let mut out = b"\x89MCAP0\r\n".to_vec();
    out.push(0x01);
    out.extend((header.len() as u64).to_le_bytes());
    out.extend(header);
    out
}

/// Imports `bytes` as a bare .mcap; it must end in Ok (with what was
/// skipped reported) or a typed error.
fn import_bytes(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.mcap");
    std::fs::write(&file, bytes).unwrap();
    let store = Store::open(dir.path().join("store"), motedb::engine::Options::default()).unwrap();
    let opts = motedb::export::ImportOptions::default();
    match motedb::export::import_bag(&store, &file, &opts) {
        Ok(report) => {
            assert_eq!(report.messages, 0);
            assert!(!report.complete(), "a truncated chunk must be reported");
        }
        Err(e) => eprintln!("typed error: {e}"),
    }
}

/// Found by mcap_import: a Chunk record cut short, whose compression
/// string claims 3 GB. The mcap LinearReader asks for header + string
/// bytes (ReadRequest) without checking them against the record length.
/// The whole (small) file is already read, so the "length beyond end of
/// file" guard in import_mcap_records (`offset < file_len`) does not apply
/// and `reader.insert(n)` zero-fills the claimed size: 3 GB resident for an
/// 80-byte file (up to 4 GiB), or an abort when the allocation fails.
fn truncated_chunk_body() {
    let mut f = mcap_start();
    f.push(0x06); // Chunk
    f.extend(u64::MAX.to_le_bytes()); // record length (garbage)
    f.extend(0u64.to_le_bytes()); // message_start_time
    f.extend(0u64.to_le_bytes()); // message_end_time
    f.extend(0u64.to_le_bytes()); // uncompressed_size
    f.extend(0u32.to_le_bytes()); // uncompressed_crc
    f.extend(3_000_000_000u32.to_le_bytes()); // compression string length
    f.extend(0u64.to_le_bytes()); // compressed_size; then the file ends
    import_bytes(&f);
}

#[test]
fn mcap_truncated_chunk_does_not_allocate_its_claimed_size() {
    in_child(
        "mcap_truncated_chunk_does_not_allocate_its_claimed_size",
        truncated_chunk_body,
    );
}
