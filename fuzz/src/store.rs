//! Store-file harness: one file of a small real store is replaced by the
//! fuzz input, then the store is opened and everything in it is read.

use std::path::Path;
use std::sync::OnceLock;

use motedb::engine::{Durability, Options, ScanRequest, Store, TopicSpec, Tuning};

/// Which file of the template store the input replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    Wal,
    Sst,
    Vlog,
}

pub const KINDS: [Kind; 4] = [Kind::Manifest, Kind::Wal, Kind::Sst, Kind::Vlog];

/// Mode bit: rebuild frames / fix CRCs so the input gets past checksums.
pub const MODE_FIX: u8 = 1;
/// Mode bit: also open the store writable (recovery, truncation, flush).
pub const MODE_WRITABLE: u8 = 2;

/// A store made once per process: every file's name and bytes.
pub struct Template {
    pub files: Vec<(String, Vec<u8>)>,
}

impl Template {
    /// Name of the file that plays `kind` (the newest WAL segment, the
    /// first table, the first value-log file).
    pub fn name_of(&self, kind: Kind) -> &str {
        let pick = |pred: &dyn Fn(&str) -> bool| {
            self.files
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| pred(n))
                .collect::<Vec<_>>()
        };
        let names = match kind {
            Kind::Manifest => pick(&|n| n == "MANIFEST"),
            Kind::Wal => {
                let mut v = pick(&|n| n.starts_with("wal-") && n.ends_with(".log"));
                v.reverse();
                v
            }
            Kind::Sst => pick(&|n| n.ends_with(".sst")),
            Kind::Vlog => pick(&|n| n.ends_with(".vlog")),
        };
        match names.first() {
            Some(n) => n,
            None => panic!("template store has no {kind:?} file: {:?}", self.names()),
        }
    }

    pub fn bytes_of(&self, kind: Kind) -> &[u8] {
        let name = self.name_of(kind);
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
            .unwrap_or_default()
    }

    fn names(&self) -> Vec<&str> {
        self.files.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// Options for fuzzing: no background threads, small units.
pub fn options() -> Options {
    Options {
        // Sync: no sync thread to wait for at close; fsync is free on tmpfs.
        durability: Durability::Sync,
        memtable_bytes: 1 << 20,
        value_threshold: 32,
        block_size: 256,
        compression: motedb::engine::Compression::Lz4,
        tuning: Tuning {
            background: false,
            stop_timeout: std::time::Duration::from_millis(50),
            ..Tuning::default()
        },
        ..Options::default()
    }
}

/// A fresh directory, on tmpfs when there is one: the writable open fsyncs
/// often and a disk would cap the fuzzer at a few runs per second.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let made = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    match made {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    }
}

pub fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| match build_template() {
        Ok(t) => t,
        Err(e) => panic!("cannot build the template store: {e}"),
    })
}

fn spec(name: &str, type_name: &str, definition: &str) -> TopicSpec {
    TopicSpec {
        name: name.into(),
        type_name: type_name.into(),
        serialization_format: "cdr".into(),
        definition: definition.into(),
        offered_qos: String::new(),
        type_hash: String::new(),
    }
}

fn build_template() -> Result<Template, Box<dyn std::error::Error>> {
    let dir = scratch_dir();
    let store = Store::open(dir.path(), options())?;
    let imu = store.register_topic(spec("/imu", "sensor_msgs/msg/Imu", crate::cdr::IMU))?;
    let chat = store.register_topic(spec("/chatter", "std_msgs/msg/String", "string data\n"))?;
    let append = |i: u64| -> motedb::engine::Result<()> {
        store.append(imu, 1_000 + i * 10, 999 + i * 10, &[0, 1, 0, 0, i as u8])?;
        // At least value_threshold bytes: goes to the value log.
        let big = format!("hello number {i:04} from the chatter topic");
        store.append(chat, 1_005 + i * 10, 0, big.as_bytes())?;
        Ok(())
    };
    for i in 0..12 {
        append(i)?;
    }
    store.flush()?;
    store.record_loss(imu, 2, 1)?;
    for i in 12..16 {
        append(i)?;
    }
    store.sync()?;
    drop(store);
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir.path())? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        files.push((name, std::fs::read(e.path())?));
    }
    files.sort();
    Ok(Template { files })
}

/// Input layout: byte 0 picks the file (`KINDS`), byte 1 holds the mode
/// bits, the rest is the file (or, with `MODE_FIX`, its raw material).
pub fn run(data: &[u8]) {
    let [pick, mode, rest @ ..] = data else {
        return;
    };
    let kind = KINDS[usize::from(*pick) % KINDS.len()];
    let content = if mode & MODE_FIX != 0 {
        fix_up(kind, rest)
    } else {
        rest.to_vec()
    };
    let t = template();
    let target = t.name_of(kind);
    let dir = scratch_dir();
    write_store(dir.path(), t, target, &content);
    if let Ok(store) = Store::open_read_only(dir.path()) {
        read_everything(&store);
    }
    assert_unchanged(dir.path(), t, target, &content);
    if mode & MODE_WRITABLE != 0 {
        open_writable(dir.path());
    }
}

fn write_store(dir: &Path, t: &Template, target: &str, content: &[u8]) {
    for (name, bytes) in &t.files {
        let bytes = if name == target { content } else { bytes };
        if let Err(e) = std::fs::write(dir.join(name), bytes) {
            panic!("writing {name}: {e}");
        }
    }
}

/// A read-only open must not change any file.
fn assert_unchanged(dir: &Path, t: &Template, target: &str, content: &[u8]) {
    for (name, bytes) in &t.files {
        let want = if name == target { content } else { bytes };
        match std::fs::read(dir.join(name)) {
            Ok(now) => assert!(now == want, "read-only open changed {name}"),
            Err(e) => panic!("read-only open removed {name}: {e}"),
        }
    }
}

fn open_writable(dir: &Path) {
    let Ok(store) = Store::open(dir, options()) else {
        return;
    };
    read_everything(&store);
    if let Some(t) = store.topics().first() {
        if store.append(t.id, 5_000, 0, &[0, 1, 0, 0, 7]).is_ok() {
            let _ = store.flush();
            let _ = store.compact();
            read_everything(&store);
        }
    }
    let _ = store.close();
}

/// Upper bound on records any scan may yield here (the files are small).
const MAX_RECORDS: usize = 1_000_000;

/// Reads every record every way the public API offers.
pub fn read_everything(store: &Store) {
    let _ = store.health();
    let _ = store.recovery_report();
    let topics = store.topics();
    for newest_first in [false, true] {
        drain(store.iter(&[], 0, u64::MAX, newest_first));
    }
    for t in &topics {
        let _ = store.topic_by_name(&t.spec.name);
        let _ = store.latest(t.id, u64::MAX);
        let _ = store.latest(t.id, 1_050);
        drain(store.iter(&[t.id], 1_000, 1_100, false));
    }
    paged_scan(store);
}

fn drain(
    it: motedb::engine::Result<
        Box<dyn Iterator<Item = motedb::engine::Result<motedb::engine::Record>> + Send>,
    >,
) {
    let Ok(it) = it else {
        return;
    };
    let mut n = 0usize;
    for r in it {
        if r.is_err() {
            return;
        }
        n += 1;
        assert!(n <= MAX_RECORDS, "iterator does not end");
    }
}

fn paged_scan(store: &Store) {
    let mut req = ScanRequest {
        topics: Vec::new(),
        start: 0,
        end: u64::MAX,
        newest_first: false,
        max_messages: 5,
        max_bytes: 1 << 20,
        cursor: None,
    };
    for _ in 0..MAX_RECORDS {
        match store.scan(&req) {
            Ok(page) => match page.next_cursor {
                Some(c) => req.cursor = Some(c),
                None => return,
            },
            Err(_) => return,
        }
    }
    panic!("paged scan does not end");
}

/// Turns fuzz bytes into a file that passes the checksums of `kind`.
pub fn fix_up(kind: Kind, raw: &[u8]) -> Vec<u8> {
    match kind {
        Kind::Manifest | Kind::Wal => frames_from_chunks(raw),
        Kind::Sst => {
            let mut b = raw.to_vec();
            fix_sst(&mut b);
            b
        }
        Kind::Vlog => {
            let mut b = raw.to_vec();
            fix_vlog(&mut b);
            b
        }
    }
}

/// `[len u16][bytes]...` chunks, each wrapped as a valid frame
/// (len, !len, crc32, payload). A short last chunk takes what is left.
pub fn frames_from_chunks(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let [a, b, tail @ ..] = rest {
        let n = usize::from(u16::from_le_bytes([*a, *b])).min(tail.len());
        let (payload, next) = tail.split_at(n);
        let len = payload.len() as u32;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(crc32fast::hash(payload).to_le_bytes());
        out.extend(payload);
        rest = next;
    }
    out
}

/// The inverse of `frames_from_chunks` for a well-formed frame file (used
/// to make seeds); stops at the first frame that does not fit.
pub fn chunks_from_frames(file: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(len) = read_u32(file, pos) {
        let start = pos + 12;
        let Some(payload) = file.get(start..start + len as usize) else {
            break;
        };
        let Ok(n) = u16::try_from(payload.len()) else {
            break;
        };
        out.extend(n.to_le_bytes());
        out.extend(payload);
        pos = start + payload.len();
    }
    out
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    let lo = read_u32(b, at)?;
    let hi = read_u32(b, at.checked_add(4)?)?;
    Some(u64::from(lo) | (u64::from(hi) << 32))
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    if let Some(s) = at.checked_add(4).and_then(|end| b.get_mut(at..end)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// crc32 of `b[off..off+len]` when that range exists.
fn crc_of(b: &[u8], off: u64, len: u64) -> Option<u32> {
    let start = usize::try_from(off).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    Some(crc32fast::hash(b.get(start..end)?))
}

const FOOTER: usize = 72;
const INDEX_ENTRY: usize = 56;

/// Recomputes block, section and footer CRCs wherever the footer and index
/// point inside the file (layout: docs/format.md, SSTable).
pub fn fix_sst(b: &mut [u8]) {
    let Some(foot) = b.len().checked_sub(FOOTER) else {
        return;
    };
    let section = |b: &[u8], i: usize| -> Option<(u64, u64)> {
        let at = foot + i * 16;
        Some((read_u64(b, at)?, u64::from(read_u32(b, at + 8)?)))
    };
    if let Some((off, len)) = section(b, 0) {
        fix_blocks(b, off, len);
    }
    for i in 0..3 {
        if let Some((off, len)) = section(b, i) {
            if let Some(crc) = crc_of(b, off, len) {
                put_u32(b, foot + i * 16 + 12, crc);
            }
        }
    }
    let crc = crc32fast::hash(&b[foot..foot + 60]);
    put_u32(b, foot + 60, crc);
}

fn fix_blocks(b: &mut [u8], index_off: u64, index_len: u64) {
    let Ok(start) = usize::try_from(index_off) else {
        return;
    };
    let Some(count) = read_u32(b, start) else {
        return;
    };
    let count = (count as usize).min(index_len as usize / INDEX_ENTRY);
    for i in 0..count {
        let at = start + 4 + i * INDEX_ENTRY;
        let (Some(off), Some(len)) = (read_u64(b, at + 40), read_u32(b, at + 48)) else {
            return;
        };
        if len < 9 {
            continue;
        }
        if let Some(crc) = crc_of(b, off, u64::from(len) - 4) {
            put_u32(b, (off + u64::from(len) - 4) as usize, crc);
        }
    }
}

/// Recomputes each value-log entry's payload crc, walking entries in order.
pub fn fix_vlog(b: &mut [u8]) {
    let mut pos = 0usize;
    while let Some(len) = read_u32(b, pos + 4) {
        let start = pos + 28;
        let Some(end) = start.checked_add(len as usize).filter(|&e| e <= b.len()) else {
            return;
        };
        let crc = crc32fast::hash(&b[start..end]);
        put_u32(b, pos, crc);
        pos = end;
    }
}

/// Seed inputs for store_files: (file name, input bytes).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let t = template();
    let mut out = Vec::new();
    for (k, kind) in KINDS.iter().enumerate() {
        let file = t.bytes_of(*kind);
        let fixed_form = match kind {
            Kind::Manifest | Kind::Wal => chunks_from_frames(file),
            Kind::Sst | Kind::Vlog => file.to_vec(),
        };
        for mode in 0..4u8 {
            let body = if mode & MODE_FIX != 0 {
                &fixed_form
            } else {
                file
            };
            let mut input = vec![k as u8, mode];
            input.extend(body);
            out.push((format!("{kind:?}-mode{mode}").to_lowercase(), input));
        }
    }
    out
}
