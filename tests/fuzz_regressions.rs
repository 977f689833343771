//! Inputs found by the fuzz targets in fuzz/ (scripts/fuzz), shrunk to
//! what triggers the bug. Each asserts the specific outcome it guards: the
//! typed error naming the damaged file, or the value that must come back.
//!
//! A bug that aborts the process (allocation failure) would take the whole
//! test binary down, so such cases run in a child process and the parent
//! asserts on how it exited.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure should panic")]

use std::path::Path;
use std::process::Command;

use motedb::engine::{Error, Store, TopicSpec};

/// Asserts `r` is `Corrupt` naming a file whose name ends with `file` and
/// whose reason contains `reason`.
fn assert_corrupt<T>(r: Result<T, Error>, file: &str, reason: &str) {
    match r {
        Err(Error::Corrupt {
            file: f,
            reason: why,
            ..
        }) => {
            assert!(
                f.to_string_lossy().ends_with(file),
                "Corrupt names {f:?}, not *{file}"
            );
            assert!(why.contains(reason), "reason {why:?} lacks {reason:?}");
        }
        Err(e) => panic!("expected Corrupt in *{file} ({reason}), got {e}"),
        Ok(_) => panic!("expected Corrupt in *{file} ({reason}), got Ok"),
    }
}

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

fn string_topic() -> TopicSpec {
    TopicSpec {
        name: "/a".into(),
        type_name: "std_msgs/msg/String".into(),
        serialization_format: "cdr".into(),
        definition: "string data\n".into(),
        offered_qos: String::new(),
        type_hash: String::new(),
    }
}

fn make_store(dir: &Path) {
    let store = Store::open(dir, motedb::engine::Options::default()).unwrap();
    store.register_topic(string_topic()).unwrap();
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
    assert_corrupt(Store::open_read_only(dir.path()), "MANIFEST", "topic id");
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
/// Passes since main moved to mcap 0.26 (its reader no longer asks for
/// the string before checking it); the `offset < file_len` hole in the
/// guard is still there for any other oversized ReadRequest at EOF.
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

/// The newest WAL segment of the store in `dir`.
fn newest_wal(dir: &Path) -> std::path::PathBuf {
    let mut wals: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("wal-") && n.ends_with(".log")
        })
        .collect();
    wals.sort();
    wals.pop().unwrap()
}

/// Found by store_files: a CRC-valid WAL record (docs/format.md, WAL
/// record) for topic id 0xF000_0000. Replay sizes the per-topic sequence
/// table (db.rs, `next_seq.resize(t + 1)`) and the memtable's topic table
/// (memtable.rs, `topics.resize_with(t + 1)`) by the id: tens of GB, abort.
/// An id the catalog does not know must be `Corrupt`, not an allocation.
fn wal_huge_topic_id_body() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Dropped without close: the record stays in a WAL segment.
        let store = Store::open(dir.path(), motedb::engine::Options::default()).unwrap();
        let id = store.register_topic(string_topic()).unwrap();
        store.append(id, 500, 0, &[0, 1, 0, 0]).unwrap();
        store.sync().unwrap();
    }
    let mut payload = vec![1u8]; // put
    payload.extend(0xF000_0000u32.to_le_bytes()); // topic
    payload.extend(1_000u64.to_le_bytes()); // log_time
    payload.extend(0u64.to_le_bytes()); // seq
    payload.extend(0u64.to_le_bytes()); // publish_time
    payload.push(0); // inline
    payload.extend(4u32.to_le_bytes());
    payload.extend([0, 1, 0, 0]);
    let len = payload.len() as u32;
    let mut frame = len.to_le_bytes().to_vec();
    frame.extend((!len).to_le_bytes());
    frame.extend(crc32fast::hash(&payload).to_le_bytes());
    frame.extend(payload);
    std::fs::write(newest_wal(dir.path()), frame).unwrap();
    assert_corrupt(
        Store::open_read_only(dir.path()),
        ".log",
        "unregistered topic id",
    );
}

#[test]
fn wal_huge_topic_id_does_not_abort() {
    in_child("wal_huge_topic_id_does_not_abort", wal_huge_topic_id_body);
}

/// Found by store_files: an SSTable whose topic meta (CRC-valid) claims
/// u64::MAX messages. `Store::health` adds the counts of every table
/// and memtable (sstable/mod.rs `TopicRange::merge`, `self.count +=
/// o.count`): an overflow panic with overflow checks, a wrapped count
/// without. A count above the table's entry count should be `Corrupt` at
/// open, or the sums should saturate.
#[test]
fn sst_meta_count_overflow_in_health() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    {
        let store = Store::open(path, motedb::engine::Options::default()).unwrap();
        let id = store.register_topic(string_topic()).unwrap();
        store.append(id, 1_000, 0, &[0, 1, 0, 0]).unwrap();
        store.flush().unwrap();
        // One more record that stays in the WAL / memtable.
        store.append(id, 2_000, 0, &[0, 1, 0, 0]).unwrap();
        store.sync().unwrap();
    }
    let sst = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "sst"))
        .unwrap();
    let mut b = std::fs::read(&sst).unwrap();
    // Footer (docs/format.md): meta_off u64 @32, meta_len u32 @40,
    // meta_crc u32 @44, footer_crc u32 @60 over the 60 bytes before it.
    let foot = b.len() - 72;
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let meta_off = u64_at(&b, foot + 32) as usize;
    let meta_len = u32_at(&b, foot + 40) as usize;
    // Topic meta: topic_count u32, then topic u32 | min u64 | max u64 | count u64.
    let count_at = meta_off + 4 + 4 + 8 + 8;
    b[count_at..count_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let meta_crc = crc32fast::hash(&b[meta_off..meta_off + meta_len]);
    b[foot + 44..foot + 48].copy_from_slice(&meta_crc.to_le_bytes());
    let footer_crc = crc32fast::hash(&b[foot..foot + 60]);
    b[foot + 60..foot + 64].copy_from_slice(&footer_crc.to_le_bytes());
    std::fs::write(&sst, b).unwrap();

    assert_corrupt(Store::open_read_only(path), ".sst", "entry counts disagree");
}

/// Rewrites one SSTable of the store in `dir` with `patch`, then fixes the
/// index and footer CRCs (docs/format.md, Footer) so only `patch` differs.
fn patch_sst(dir: &Path, patch: fn(&mut Vec<u8>, usize, usize)) {
    let sst = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "sst"))
        .unwrap();
    let mut b = std::fs::read(&sst).unwrap();
    let foot = b.len() - 72;
    let index_off = u64::from_le_bytes(b[foot..foot + 8].try_into().unwrap()) as usize;
    let index_len = u32::from_le_bytes(b[foot + 8..foot + 12].try_into().unwrap()) as usize;
    patch(&mut b, index_off, index_len);
    let index_crc = crc32fast::hash(&b[index_off..index_off + index_len]);
    b[foot + 12..foot + 16].copy_from_slice(&index_crc.to_le_bytes());
    let footer_crc = crc32fast::hash(&b[foot..foot + 60]);
    b[foot + 60..foot + 64].copy_from_slice(&footer_crc.to_le_bytes());
    std::fs::write(&sst, b).unwrap();
}

/// Found by store_files: an SSTable index entry (CRC-valid) whose
/// entry_count is u32::MAX. Reading the block does
/// `Vec::with_capacity(ix.count as usize)` (sstable/mod.rs, read_block)
/// before decoding a single entry: hundreds of GB, abort. The capacity
/// should be bounded by what the block can hold.
fn sst_index_count_body() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), motedb::engine::Options::default()).unwrap();
        let id = store.register_topic(string_topic()).unwrap();
        store.append(id, 1_000, 0, &[0, 1, 0, 0]).unwrap();
        store.close().unwrap();
    }
    // Index: count u32, then per block first_key (20) | last_key (20) |
    // offset u64 | len u32 | entry_count u32.
    patch_sst(dir.path(), |b, index_off, _| {
        let at = index_off + 4 + 52;
        b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    });
    let read = Store::open_read_only(dir.path()).and_then(|store| {
        store
            .iter(&[], 0, u64::MAX, false)?
            .collect::<Result<Vec<_>, _>>()
    });
    assert_corrupt(read, ".sst", "entry counts disagree");
}

#[test]
fn sst_index_entry_count_does_not_size_an_allocation() {
    in_child(
        "sst_index_entry_count_does_not_size_an_allocation",
        sst_index_count_body,
    );
}

/// Found by store_files: a CRC-valid WAL record whose value-log pointer
/// has offset u64::MAX - 1. The replay check `VlogFile::contains`
/// (vlog.rs, `p.offset + u64::from(p.len) <= self.size()`) overflows: a
/// panic with overflow checks; in release the sum wraps and the bogus
/// pointer counts as durable. It must be dropped (or `Corrupt`).
#[test]
fn wal_vlog_pointer_offset_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let options = || motedb::engine::Options {
        value_threshold: 16,
        ..motedb::engine::Options::default()
    };
    {
        // Dropped without close: the pointer record stays in the WAL.
        let store = Store::open(dir.path(), options()).unwrap();
        let id = store.register_topic(string_topic()).unwrap();
        store.append(id, 500, 0, &[7u8; 64]).unwrap();
        store.sync().unwrap();
    }
    let vlog: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "vlog"))
        .unwrap()
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .parse()
        .unwrap();
    let mut payload = vec![1u8]; // put
    payload.extend(0u32.to_le_bytes()); // topic
    payload.extend(1_000u64.to_le_bytes()); // log_time
    payload.extend(1u64.to_le_bytes()); // seq
    payload.extend(0u64.to_le_bytes()); // publish_time
    payload.push(1); // pointer
    payload.extend(vlog.to_le_bytes());
    payload.extend((u64::MAX - 1).to_le_bytes()); // offset
    payload.extend(64u32.to_le_bytes()); // len
    payload.extend(0u32.to_le_bytes()); // crc
    let len = payload.len() as u32;
    let mut frame = len.to_le_bytes().to_vec();
    frame.extend((!len).to_le_bytes());
    frame.extend(crc32fast::hash(&payload).to_le_bytes());
    frame.extend(payload);
    append(&newest_wal(dir.path()), &frame);
    // The record is after the last sync mark: its payload is read and
    // checked, the bogus pointer fails that check, and replay stops there.
    let store = Store::open_read_only(dir.path()).unwrap();
    let report = store.recovery_report();
    assert_eq!(report.dropped_records, 1, "{report:?}");
    assert!(
        report.wal_truncated[0].reason.contains("past end"),
        "{report:?}"
    );
}
