//! Offline integrity check behind `Store::verify`: reads every byte of every
//! file the current version references (tables, value logs), the WAL
//! segments at or above the manifest's floor and the manifest itself,
//! through the same decoders the engine reads with. A bad file is reported
//! and the pass goes on to the next one.

use super::codec::io_err;
use super::db::Inner;
use super::error::{Error, Result};
use super::fs::FileSystem;
use super::manifest;
use super::sstable::Table;
use super::types::{Codec, Entry, Value};
use super::vlog::{VlogFile, ENTRY_HEADER};
use super::wal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What kind of file a report line is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Table,
    ValueLog,
    Wal,
    Manifest,
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Table => "table",
            FileKind::ValueLog => "value-log",
            FileKind::Wal => "wal",
            FileKind::Manifest => "manifest",
        }
    }

    /// What `FileReport::items` counts for this kind.
    pub fn item_name(self) -> &'static str {
        match self {
            FileKind::Table => "blocks",
            FileKind::ValueLog => "entries",
            FileKind::Wal => "records",
            FileKind::Manifest => "batches",
        }
    }
}

/// The result for one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    pub path: PathBuf,
    pub kind: FileKind,
    /// Blocks (tables), entries (value logs), records (WAL) or edit
    /// batches (manifest) that decoded and matched their checksum.
    pub items: u64,
    pub bytes: u64,
    /// Each names the offset and what is wrong there.
    pub problems: Vec<String>,
    /// What is not damage but worth knowing: a torn tail (an incomplete
    /// record written after the last sync, never acknowledged) that the
    /// next writable open cuts.
    pub notes: Vec<String>,
}

impl FileReport {
    fn new(path: &Path, kind: FileKind) -> FileReport {
        FileReport {
            path: path.to_path_buf(),
            kind,
            items: 0,
            bytes: 0,
            problems: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn problem(&mut self, e: &Error) {
        self.problems.push(e.to_string());
    }
}

/// Every checked file, manifest first, then tables, value logs, WAL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub files: Vec<FileReport>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.files.iter().all(|f| f.problems.is_empty())
    }

    pub fn problem_count(&self) -> usize {
        self.files.iter().map(|f| f.problems.len()).sum()
    }
}

/// Checks every file; only a failure to list the directory is an error.
pub fn verify(inner: &Inner) -> Result<VerifyReport> {
    let mut files = Vec::new();
    let (man, floor) = check_manifest(&*inner.fs, &inner.dir);
    files.push(man);
    let version = inner.snapshot().version.clone();
    for (_, t) in version.tables() {
        files.push(check_table(inner, t));
    }
    for v in version.vlogs.values() {
        files.push(check_vlog(v));
    }
    for (path, why) in inner.quarantined.lock().iter() {
        let mut r = FileReport::new(path, FileKind::Table);
        r.problems
            .push(format!("quarantined, no longer part of the store: {why}"));
        files.push(r);
    }
    let segs = wal::segments(&*inner.fs, &inner.dir, floor)?;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        files.push(check_wal(
            &*inner.fs,
            &wal::segment_path(&inner.dir, *seg),
            last,
        ));
    }
    Ok(VerifyReport { files })
}

/// The manifest's frames and edits; returns the WAL floor it records
/// (0 when it cannot be read, so every segment is checked).
fn check_manifest(fs: &dyn FileSystem, dir: &Path) -> (FileReport, u64) {
    let path = dir.join(manifest::FILE);
    let mut r = FileReport::new(&path, FileKind::Manifest);
    match fs.read_all(&path).map_err(io_err(&path)) {
        Ok(data) => {
            r.bytes = data.len() as u64;
            match manifest::parse(&data, &path) {
                Ok((_, dropped, batches)) => {
                    r.items = batches;
                    let valid = r.bytes - dropped;
                    torn_tail(&mut r, valid, dropped);
                }
                Err(e) => r.problem(&e),
            }
        }
        Err(e) => r.problem(&e),
    }
    match manifest::load(fs, dir) {
        Ok((state, _, _)) => (r, state.wal_floor),
        Err(e) => {
            if r.problems.is_empty() {
                r.problem(&e);
            }
            (r, 0)
        }
    }
}

fn torn_tail(r: &mut FileReport, valid_len: u64, dropped: u64) {
    if dropped > 0 {
        r.notes.push(format!(
            "torn tail at offset {valid_len}: {dropped} bytes of an incomplete \
             record (never acknowledged; cut at the next writable open)"
        ));
    }
}

/// Footer, index, bloom and meta (by reopening the file), then every block.
fn check_table(inner: &Inner, t: &Arc<Table>) -> FileReport {
    let mut r = FileReport::new(t.path(), FileKind::Table);
    r.bytes = t.meta.size;
    if let Err(e) = Table::open(inner.fs.clone(), &inner.dir, t.meta.num, false) {
        r.problem(&e);
    }
    let file = match t.open_for_check() {
        Ok(f) => f,
        Err(e) => {
            r.problem(&e);
            return r;
        }
    };
    let vlogs = &inner.snapshot().version.vlogs;
    for i in 0..t.block_count() {
        match t.check_block(&*file, i) {
            Ok(entries) => {
                r.items += 1;
                check_encoded(vlogs, &entries, &mut r);
            }
            Err(e) => r.problem(&e),
        }
    }
    r
}

/// Decodes the encoded value-log payloads the entries point at: the
/// value-log pass checks stored bytes only (its headers do not say how
/// they are encoded), so a payload whose crc holds but that does not
/// decode is found here. A crc mismatch is left to that pass.
fn check_encoded(
    vlogs: &std::collections::BTreeMap<u64, Arc<VlogFile>>,
    entries: &[Entry],
    r: &mut FileReport,
) {
    for e in entries {
        let Value::Ptr(p) = &e.value else {
            continue;
        };
        if p.codec == Codec::Raw {
            continue;
        }
        let Some(v) = vlogs.get(&p.file) else {
            continue;
        };
        match v.read(p, &e.key) {
            Ok(_) | Err(Error::ChecksumMismatch { .. }) => {}
            Err(err) => r.problems.push(format!(
                "record (topic {}, time {}, seq {}): {err}",
                e.key.topic, e.key.time, e.key.seq
            )),
        }
    }
}

/// Every entry, header then payload CRC, front to back. A damaged header
/// loses the entry boundaries, so the pass over that file stops there.
fn check_vlog(v: &VlogFile) -> FileReport {
    let mut r = FileReport::new(v.path(), FileKind::ValueLog);
    r.bytes = v.size();
    let mut off = 0u64;
    while off < r.bytes {
        match check_vlog_entry(v, off) {
            Ok(next) => {
                r.items += 1;
                off = next;
            }
            Err((e, resync)) => {
                r.problems.push(format!("entry at offset {off}: {e}"));
                match resync {
                    Some(next) => off = next,
                    None => break,
                }
            }
        }
    }
    r
}

/// Checks the entry at `off`; returns the next entry's offset. On error,
/// also the next offset when the header was sound (payload damage only).
fn check_vlog_entry(v: &VlogFile, off: u64) -> std::result::Result<u64, (Error, Option<u64>)> {
    let (ptr, key) = v.header_at(off).map_err(|e| (e, None))?;
    let next = off + ENTRY_HEADER + u64::from(ptr.len);
    if next > v.size() {
        let e = Error::Corrupt {
            file: v.path().to_path_buf(),
            offset: off,
            reason: format!("entry length {} runs past end of file", ptr.len),
        };
        return Err((e, None));
    }
    v.read(&ptr, &key).map_err(|e| (e, Some(next)))?;
    Ok(next)
}

/// Every record's frame CRC and payload decode; a torn tail is reported as
/// such, a bad record before it as corruption.
fn check_wal(fs: &dyn FileSystem, path: &Path, last: bool) -> FileReport {
    let mut r = FileReport::new(path, FileKind::Wal);
    let data = match fs.read_all(path).map_err(io_err(path)) {
        Ok(d) => d,
        Err(e) => {
            r.problem(&e);
            return r;
        }
    };
    r.bytes = data.len() as u64;
    // The rules recovery applies (wal.rs), so both agree on what is a
    // torn tail and what is damage.
    match wal::scan_segment(&data, path, last) {
        Ok(seg) => {
            r.items = seg.records.len() as u64;
            if let Some(t) = seg.tail {
                torn_tail(&mut r, t.offset, t.bytes);
            }
        }
        Err(e) => r.problem(&e),
    }
    r
}
