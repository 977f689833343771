//! `push`: mirrors a local store, also one a node is recording into, to a
//! bucket prefix so that the remote copy is always one consistent store.
//!
//! The rule (docs/design.md, "Offload"):
//! 1. read the MANIFEST's bytes once: the committed state to copy;
//! 2. upload, as chunks, the WAL segments at or above its floor, then the
//!    tables it lists, then its value-log files: value-log files only grow
//!    and are read last, so every pointer from the WAL and the tables
//!    resolves in the copy;
//! 3. open that cut (the manifest bytes, each file at its uploaded size)
//!    read-only as the engine would: it must open, and gives the summary;
//! 4. write the index, which names every chunk: the commit point. Readers
//!    see the old index or the new one, never a mix;
//! 5. delete chunk objects that neither the new index nor the one before
//!    names (a reader that loaded the old index keeps working for a round).
//!
//! A file that vanishes meanwhile (compaction, a raised WAL floor) restarts
//! the round; chunks already uploaded are found by name and not sent again,
//! which is also how a push resumes after a crash or a lost connection.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::fs::{ReadOnlyFs, RemoteFs, Snapshot};
use super::index::{Chunk, Index, RemoteFile, Summary, TopicSummary, FORMAT};
use super::{Bucket, Location, RemoteError, Result, INDEX};
use crate::engine::{self, Options, Store};

#[derive(Clone)]
pub struct PushOptions {
    /// Upload at most this many bytes per second (None: as fast as it goes).
    pub max_bytes_per_s: Option<u64>,
    /// Largest chunk object.
    pub chunk_bytes: u64,
    /// A file's last chunk shorter than this is sent again together with
    /// what the file grew by, so growing files do not become many tiny
    /// objects.
    pub min_chunk_bytes: u64,
    /// Checked between chunks.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Chunk objects the index no longer names are deleted once retired
    /// this long (readers that loaded an older index keep working).
    pub keep_retired_for: Duration,
    /// Replace a copy another store pushed to this prefix (otherwise
    /// refused with `RemoteError::OtherStore`).
    pub replace: bool,
    /// Tests: runs between sizing the WAL segments and reading the
    /// manifest, to put a flush or a new topic exactly there.
    #[doc(hidden)]
    pub before_manifest: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for PushOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushOptions")
            .field("max_bytes_per_s", &self.max_bytes_per_s)
            .field("chunk_bytes", &self.chunk_bytes)
            .field("keep_retired_for", &self.keep_retired_for)
            .field("replace", &self.replace)
            .finish_non_exhaustive()
    }
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            max_bytes_per_s: None,
            chunk_bytes: 8 << 20,
            min_chunk_bytes: 1 << 20,
            cancel: None,
            keep_retired_for: Duration::from_secs(600),
            replace: false,
            before_manifest: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PushReport {
    pub url: String,
    /// The index generation now remote.
    pub generation: u64,
    /// False when the remote copy already equalled the local store.
    pub changed: bool,
    pub files: usize,
    /// Bytes the remote copy's files hold.
    pub store_bytes: u64,
    pub uploaded_chunks: u64,
    pub uploaded_bytes: u64,
    /// Chunks found already uploaded (by an interrupted push).
    pub found_chunks: u64,
    pub deleted_objects: u64,
    /// Objects retired and not deleted yet (kept for readers).
    pub retired_objects: u64,
    /// Files the copy keeps that local retention dropped.
    pub archived_files: usize,
    /// The committed copy's files and sizes.
    #[serde(skip)]
    pub files_committed: std::collections::HashMap<String, u64>,
    /// Rounds started again because a file vanished under the push.
    pub restarts: u32,
    pub summary: Summary,
}

/// A file vanished or changed under the round: start again.
struct Restart(String);

enum Fail {
    Restart(Restart),
    Error(RemoteError),
}

impl From<RemoteError> for Fail {
    fn from(e: RemoteError) -> Fail {
        Fail::Error(e)
    }
}

fn local(path: &Path) -> impl FnOnce(std::io::Error) -> Fail + '_ {
    move |e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Fail::Restart(Restart(path.display().to_string()))
        } else {
            Fail::Error(RemoteError::Local {
                path: path.display().to_string(),
                source: e,
            })
        }
    }
}

/// Rounds tried before giving up on a store that changes too fast.
const ROUNDS: u32 = 20;

/// Pushes the store in `dir` to `location`. Resumable: run it again after
/// any failure; what was uploaded is reused.
pub fn push(
    dir: &Path,
    bucket: &Arc<Bucket>,
    location: &Location,
    opts: &PushOptions,
) -> Result<PushReport> {
    let manifest_path = dir.join(engine::MANIFEST_FILE);
    if !manifest_path.is_file() {
        return Err(RemoteError::Local {
            path: dir.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no motedb store here"),
        });
    }
    // Every request, retries included, stops at the cancel flag.
    let _cancel = bucket.cancel_on(opts.cancel.clone());
    bucket.check()?;
    let url = location.to_string();
    let prev_bytes = bucket.get_opt(&location.key(INDEX))?;
    let prev = match &prev_bytes {
        Some(b) => Some(Index::parse(b, &url)?),
        None => None,
    };
    let store_id = store_id(dir)?;
    if let Some(p) = &prev {
        check_same_store(dir, p, &store_id, &url, opts.replace)?;
    }
    // Chunks and the archive are taken over only from a copy of this same
    // store; a replaced copy's objects are retired.
    let trusted = prev.as_ref().filter(|p| p.store_id == store_id);
    let chunks_prefix = location.key("chunks");
    let strip = |k: String| {
        k.strip_prefix(&format!("{}/", location.prefix))
            .map(str::to_string)
            .unwrap_or(k)
    };
    let mut present: HashMap<String, u64> = bucket
        .list(&chunks_prefix)?
        .into_iter()
        .map(|(k, n)| (strip(k), n))
        .collect();
    let mut report = PushReport {
        url: url.clone(),
        ..PushReport::default()
    };
    let mut throttle = Throttle::new(opts.max_bytes_per_s, opts.cancel.clone());
    let mut restarts = 0;
    let mut done = BTreeMap::new();
    let (files, summary, archived_names) = loop {
        match round(
            dir,
            bucket,
            location,
            trusted,
            &mut done,
            &mut present,
            opts,
            &mut report,
            &mut throttle,
        ) {
            Ok(r) => break r,
            Err(Fail::Error(e)) => return Err(e),
            Err(Fail::Restart(Restart(what))) => {
                restarts += 1;
                if restarts >= ROUNDS {
                    return Err(RemoteError::Local {
                        path: what,
                        source: std::io::Error::other(format!(
                            "files kept vanishing under the push ({ROUNDS} rounds)"
                        )),
                    });
                }
            }
        }
    };
    report.restarts = restarts;
    report.files = files.len();
    report.store_bytes = files.values().map(|f| f.size).sum();
    report.summary = summary.clone();
    let now = crate::export::timearg::now_ns();
    let named: HashSet<String> = super::index::chunk_keys(&files).collect();
    // Retired: what the last index named or an interrupted push left, and
    // this index does not name; due for deletion after the grace.
    let mut retired: BTreeMap<String, u64> =
        prev.as_ref().map(|p| p.retired.clone()).unwrap_or_default();
    retired.retain(|k, _| !named.contains(k) && present.contains_key(k));
    for k in present.keys().filter(|k| !named.contains(*k)) {
        retired.entry(k.clone()).or_insert(now);
    }
    let grace = u64::try_from(opts.keep_retired_for.as_nanos()).unwrap_or(u64::MAX);
    let due: Vec<String> = retired
        .iter()
        .filter(|(_, t)| now.saturating_sub(**t) >= grace)
        .map(|(k, _)| k.clone())
        .collect();
    report.archived_files = archived_names.len();
    let changed = prev
        .as_ref()
        .is_none_or(|p| p.files != files || p.store_id != store_id);
    let retired_changed = prev.as_ref().is_none_or(|p| p.retired != retired);
    let ours = prev.as_ref().map_or(0, |p| p.generation);
    let index = if changed || retired_changed {
        let ix = Index {
            format: FORMAT.to_string(),
            generation: ours + 1,
            pushed_at_ns: now,
            source: source_name(dir),
            store_id: store_id.clone(),
            files,
            summary,
            retired: retired.clone(),
            archived: archived_names,
        };
        let bytes = serde_json::to_vec_pretty(&ix).map_err(|e| RemoteError::Request {
            url: url.clone(),
            detail: format!("encoding the index: {e}"),
        })?;
        check_unmoved(bucket, location, &prev_bytes, ours, &store_id, dir)?;
        bucket.put(&location.key(INDEX), bytes)?;
        ix
    } else {
        // Nothing to commit, but deletions to make: only while the index
        // is still the one that retired them.
        if !due.is_empty() {
            check_unmoved(bucket, location, &prev_bytes, ours, &store_id, dir)?;
        }
        prev.clone().unwrap_or_default()
    };
    report.changed = changed;
    report.generation = index.generation;
    report.files_committed = index
        .files
        .iter()
        .map(|(n, f)| (n.clone(), f.size))
        .collect();
    // Deleted after the index that retired them is committed; one that
    // fails stays retired and is tried again by the next push.
    for key in due {
        if bucket.delete(&location.key(&key)).is_ok() {
            retired.remove(&key);
            report.deleted_objects += 1;
        }
    }
    report.retired_objects = retired.len() as u64;
    Ok(report)
}

/// Another store's copy (two robots given one URL, a store made again
/// after a wipe) holds what may exist nowhere else, such as what local
/// retention dropped: it is replaced only on request. Ids are compared
/// as they are, so a store without one (a read-only directory) is the
/// same store only as a copy without one.
fn check_same_store(
    dir: &Path,
    remote: &Index,
    store_id: &str,
    url: &str,
    replace: bool,
) -> Result<()> {
    if replace || remote.store_id == store_id {
        return Ok(());
    }
    let mut source_name = remote.source.clone();
    if source_name == self::source_name(dir) {
        source_name.push_str(
            ", this same path: the store was made again here, or its motedb-offload.id was lost",
        );
    }
    Err(RemoteError::OtherStore {
        url: url.to_string(),
        source_name,
        generation: remote.generation,
    })
}

/// Two pushers at one prefix would overwrite each other's commits (a
/// newer copy replaced by an older cut) and delete what the other's index
/// names: a push commits or deletes only while the index is still the one
/// it read at its start (`read`, of generation `ours`). S3 has no
/// portable compare-and-swap, so two commits within one round trip of
/// each other can still both land; see docs/design.md, "Offload".
fn check_unmoved(
    bucket: &Bucket,
    location: &Location,
    read: &Option<Vec<u8>>,
    ours: u64,
    store_id: &str,
    dir: &Path,
) -> Result<()> {
    let now = bucket.get_opt(&location.key(INDEX))?;
    if now == *read {
        return Ok(());
    }
    let url = location.to_string();
    let after = now.as_deref().map(|b| Index::parse(b, &url)).transpose()?;
    if let Some(after) = &after {
        // A copy that was replaced by another store's meanwhile is that
        // store's to keep, whatever this push was asked.
        check_same_store(dir, after, store_id, &url, false)?;
    }
    Err(RemoteError::Conflict {
        url,
        ours,
        theirs: after.map_or(0, |i| i.generation),
    })
}

/// The file holding a store's id for offload (ignored by the engine).
pub const STORE_ID_FILE: &str = "motedb-offload.id";

/// The store's id, made on first use; empty when the directory cannot be
/// written (a read-only mount). An id file that exists but cannot be read
/// is an error: making a new id would turn this store's own copy into
/// another store's.
fn store_id(dir: &Path) -> Result<String> {
    let path = dir.join(STORE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) => return Ok(id.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(RemoteError::Local {
                path: path.display().to_string(),
                source: e,
            })
        }
    }
    use std::hash::{BuildHasher, Hasher};
    let mut id = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(crate::export::timearg::now_ns() ^ i);
        h.write_u32(std::process::id());
        id.push_str(&format!("{:016x}", h.finish()));
    }
    let tmp = dir.join(format!("{STORE_ID_FILE}.tmp"));
    // Synced with its directory entry: an id lost in a power cut would
    // make the next push see this store's copy as another store's.
    let written = std::fs::write(&tmp, format!("{id}\n"))
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .and_then(|()| File::open(dir)?.sync_all());
    match written {
        Ok(()) => Ok(id),
        Err(_) if path.exists() => Err(RemoteError::Local {
            path: path.display().to_string(),
            source: std::io::Error::other("written but not synced to disk"),
        }),
        Err(_) => {
            let _ignored = std::fs::remove_file(&tmp);
            Ok(String::new())
        }
    }
}

fn source_name(dir: &Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let path = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    format!("{host}:{}", path.display())
}

/// Where a file's bytes come from: the manifest read once, or a file
/// opened once (so a file deleted meanwhile stays readable).
enum Bytes<'a> {
    Memory(&'a [u8]),
    File(Arc<File>),
}

impl Bytes<'_> {
    fn read(&self, path: &Path, off: u64, len: u64) -> std::result::Result<Vec<u8>, Fail> {
        match self {
            Bytes::Memory(b) => Ok(b[off as usize..(off + len) as usize].to_vec()),
            Bytes::File(f) => {
                let mut buf = vec![0; len as usize];
                f.read_exact_at(&mut buf, off).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        // Cut shorter under us: changed, so start again.
                        Fail::Restart(Restart(path.display().to_string()))
                    } else {
                        local(path)(e)
                    }
                })?;
                Ok(buf)
            }
        }
    }
}

/// A local file opened for the round: its size then, and an identity
/// (device, inode, modification time) that tells a table seen before from
/// another file of the same name (a store made again at the same path).
struct Opened {
    file: Arc<File>,
    size: u64,
    id: String,
}

fn open_file(path: &Path) -> std::result::Result<Opened, Fail> {
    use std::os::unix::fs::MetadataExt;
    let file = File::open(path).map_err(local(path))?;
    let m = file.metadata().map_err(local(path))?;
    Ok(Opened {
        file: Arc::new(file),
        size: m.len(),
        id: format!("{}:{}:{}.{}", m.dev(), m.ino(), m.mtime(), m.mtime_nsec()),
    })
}

fn cancelled(opts: &PushOptions) -> std::result::Result<(), Fail> {
    if opts
        .cancel
        .as_ref()
        .is_some_and(|c| c.load(Ordering::Relaxed))
    {
        return Err(Fail::Error(RemoteError::Cancelled));
    }
    Ok(())
}

/// What a round reads before uploading: the WAL segments (opened and sized
/// first), then the manifest, then the tables and value-log files it lists.
struct Cut {
    manifest: Vec<u8>,
    /// Files retention dropped (by either name they may have had).
    dropped: Vec<String>,
    /// In upload order: WAL segments, tables, value-log files (sized last).
    files: Vec<(String, Opened)>,
}

fn take_cut(dir: &Path, opts: &PushOptions) -> std::result::Result<Cut, Fail> {
    // 1. Every WAL segment, opened and sized now. A segment deleted before
    //    its open was below the floor already.
    let mut wal: Vec<(u64, String, Opened)> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(local(dir))? {
        let name = e
            .map_err(local(dir))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if let Some(seg) = engine::wal_segment(&name) {
            match open_file(&dir.join(&name)) {
                Ok(f) => wal.push((seg, name, f)),
                Err(Fail::Restart(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    wal.sort_by_key(|w| w.0);
    if let Some(hook) = &opts.before_manifest {
        hook();
    }
    // 2. The manifest, read after: each WAL byte kept was written before
    //    it, so the topic and value-log file every record names are in it;
    //    and a flush meanwhile has raised its floor past the segments it
    //    made redundant (they are left out, their records are in its tables).
    let manifest_path = dir.join(engine::MANIFEST_FILE);
    let manifest = std::fs::read(&manifest_path).map_err(local(&manifest_path))?;
    let live = engine::live_files(&manifest).map_err(RemoteError::from)?;
    wal.retain(|w| w.0 >= live.wal_floor);
    // The segments replay must see, without a hole.
    if wal.windows(2).any(|w| w[1].0 != w[0].0 + 1) {
        return Err(Fail::Restart(Restart(format!(
            "{}: WAL segments not contiguous",
            dir.display()
        ))));
    }
    let mut files: Vec<(String, Opened)> = wal.into_iter().map(|(_, n, f)| (n, f)).collect();
    // 3. The tables, then the value-log files: they only grow, and sized
    //    last they hold every entry the WAL bytes and tables point to.
    for name in live.tables.iter().chain(&live.vlogs) {
        cancelled(opts)?;
        files.push((name.clone(), open_file(&dir.join(name))?));
    }
    Ok(Cut {
        manifest,
        dropped: live.dropped,
        files,
    })
}

/// What a round makes: the copy's files, its summary, and which of the
/// files are the archive (dropped here by retention).
type Committed = (BTreeMap<String, RemoteFile>, Summary, BTreeSet<String>);

#[allow(clippy::too_many_arguments)]
fn round(
    dir: &Path,
    bucket: &Arc<Bucket>,
    location: &Location,
    prev: Option<&Index>,
    done: &mut BTreeMap<String, RemoteFile>,
    present: &mut HashMap<String, u64>,
    opts: &PushOptions,
    report: &mut PushReport,
    throttle: &mut Throttle,
) -> std::result::Result<Committed, Fail> {
    let mut cut = take_cut(dir, opts)?;
    // The archive: files retention dropped here that the copy holds. They
    // stay in the copy, listed (tables at level 0) in the manifest it gets.
    let remote = |name: &str| {
        done.get(name)
            .or_else(|| prev.and_then(|p| p.files.get(name)))
            .cloned()
    };
    let mut archive: BTreeMap<String, RemoteFile> = BTreeMap::new();
    let archived_before = prev.map(|p| p.archived.iter().cloned().collect::<Vec<_>>());
    for name in archived_before
        .unwrap_or_default()
        .into_iter()
        .chain(cut.dropped.clone())
    {
        if cut.files.iter().any(|(n, _)| *n == name) {
            continue;
        }
        if let Some(f) = remote(&name) {
            archive.insert(name, f);
        }
    }
    if !archive.is_empty() {
        let num = |n: &str, ext: &str| n.strip_suffix(ext).and_then(|v| v.parse::<u64>().ok());
        let tables: Vec<u64> = archive.keys().filter_map(|n| num(n, ".sst")).collect();
        let vlogs: Vec<u64> = archive.keys().filter_map(|n| num(n, ".vlog")).collect();
        cut.manifest =
            engine::manifest_with(&cut.manifest, &tables, &vlogs).map_err(RemoteError::from)?;
    }
    let manifest = (
        engine::MANIFEST_FILE.to_string(),
        Bytes::Memory(&cut.manifest),
        cut.manifest.len() as u64,
        String::new(),
    );
    let sources = std::iter::once(manifest).chain(
        cut.files
            .iter()
            .map(|(n, f)| (n.clone(), Bytes::File(f.file.clone()), f.size, f.id.clone())),
    );
    let mut files = BTreeMap::new();
    for (name, src, size, id) in sources {
        cancelled(opts)?;
        let path = dir.join(&name);
        // What this push uploaded in an earlier round, else the last index.
        let old = done
            .get(&name)
            .or_else(|| prev.and_then(|p| p.files.get(&name)));
        let same_table =
            name.ends_with(".sst") && old.is_some_and(|o| !id.is_empty() && o.local == id);
        let mut chunks = kept_chunks(old, &src, &path, size, same_table, opts)?;
        // A kept chunk whose object is gone (deleted, lost) is sent again.
        if let Some(i) = chunks
            .iter()
            .position(|c| present.get(&c.key(&name)) != Some(&c.len))
        {
            chunks.truncate(i);
        }
        let mut at = chunks.last().map_or(0, Chunk::end);
        while at < size {
            cancelled(opts)?;
            let len = opts.chunk_bytes.min(size - at);
            let data = src.read(&path, at, len)?;
            let c = Chunk {
                offset: at,
                len,
                crc32: crc32fast::hash(&data),
            };
            let key = c.key(&name);
            if present.get(&key) == Some(&len) {
                report.found_chunks += 1;
            } else {
                throttle.wait(len)?;
                bucket.put(&location.key(&key), data)?;
                present.insert(key, len);
                report.uploaded_chunks += 1;
                report.uploaded_bytes += len;
            }
            chunks.push(c);
            at += len;
        }
        let f = RemoteFile {
            size,
            chunks,
            local: id,
        };
        done.insert(name.clone(), f.clone());
        files.insert(name, f);
    }
    let archived = RemoteFs::over(
        bucket.clone(),
        location.clone(),
        Index {
            files: archive.clone(),
            ..Index::default()
        },
    );
    let summary = check_cut(dir, cut, archived)?;
    let names = archive.keys().cloned().collect();
    files.extend(archive);
    Ok((files, summary, names))
}

/// The chunks of the previous push that still hold the file's bytes.
fn kept_chunks(
    old: Option<&RemoteFile>,
    src: &Bytes<'_>,
    path: &Path,
    size: u64,
    same_table: bool,
    opts: &PushOptions,
) -> std::result::Result<Vec<Chunk>, Fail> {
    let Some(old) = old else {
        return Ok(Vec::new());
    };
    let matches = |c: &Chunk| -> std::result::Result<bool, Fail> {
        Ok(c.end() <= size && crc32fast::hash(&src.read(path, c.offset, c.len)?) == c.crc32)
    };
    let mut kept = if same_table && old.size == size {
        // The same table file (device, inode, mtime): tables never change.
        old.chunks.clone()
    } else if old.size <= size && old.chunks.last().map_or(Ok(true), matches)? {
        // Grown at its end (WAL, value log, manifest log): checking the
        // last chunk catches a tail cut and written again.
        old.chunks.clone()
    } else {
        // Rewritten (a manifest snapshot) or cut: keep the prefix that
        // still matches.
        let mut k = Vec::new();
        for c in &old.chunks {
            if !matches(c)? {
                break;
            }
            k.push(*c);
        }
        k
    };
    if let Some(last) = kept.last() {
        if last.len < opts.min_chunk_bytes && last.end() < size {
            kept.pop();
        }
    }
    Ok(kept)
}

/// Opens the cut a round uploaded, read-only, as a reader of the remote
/// copy will: proves it is a consistent store and yields the summary.
fn check_cut(dir: &Path, cut: Cut, archived: RemoteFs) -> std::result::Result<Summary, Fail> {
    let snapshot = Snapshot {
        manifest: cut.manifest,
        archived: Some(archived),
        files: cut
            .files
            .into_iter()
            .map(|(n, f)| (n, (f.file, f.size)))
            .collect(),
    };
    let options = Options {
        fs: Arc::new(ReadOnlyFs(Arc::new(snapshot))),
        ..Options::default()
    };
    match Store::open_read_only_with(dir, options) {
        Ok(store) => Ok(summarize(&store)),
        Err(e) => Err(Fail::Error(RemoteError::Local {
            path: dir.display().to_string(),
            source: std::io::Error::other(format!(
                "the copy this push made does not open, so it was not committed: {e}"
            )),
        })),
    }
}

fn summarize(store: &Store) -> Summary {
    let infos = store.topics();
    Summary {
        messages: infos.iter().map(|t| t.message_count).sum(),
        payload_bytes: infos.iter().map(|t| t.size_bytes).sum(),
        first_ns: infos.iter().filter_map(|t| t.first_time).min(),
        last_ns: infos.iter().filter_map(|t| t.last_time).max(),
        topics: infos
            .into_iter()
            .map(|t| TopicSummary {
                name: t.spec.name,
                type_name: t.spec.type_name,
                messages: t.message_count,
                first_ns: t.first_time,
                last_ns: t.last_time,
            })
            .collect(),
    }
}

/// Paces uploads to a byte rate.
struct Throttle {
    rate: Option<u64>,
    start: Instant,
    sent: u64,
    cancel: Option<Arc<AtomicBool>>,
}

impl Throttle {
    fn new(rate: Option<u64>, cancel: Option<Arc<AtomicBool>>) -> Throttle {
        Throttle {
            rate,
            start: Instant::now(),
            sent: 0,
            cancel,
        }
    }

    /// Sleeps until sending `n` more bytes keeps within the rate, in
    /// slices that watch the cancel flag.
    fn wait(&mut self, n: u64) -> std::result::Result<(), Fail> {
        let Some(rate) = self.rate.filter(|r| *r > 0) else {
            return Ok(());
        };
        let due = Duration::from_secs_f64(self.sent as f64 / rate as f64);
        while let Some(d) = due.checked_sub(self.start.elapsed()) {
            if self
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                return Err(Fail::Error(RemoteError::Cancelled));
            }
            std::thread::sleep(d.min(Duration::from_millis(20)));
        }
        self.sent += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_of(store_id: &str, source: &str) -> Index {
        Index {
            store_id: store_id.into(),
            source: source.into(),
            generation: 7,
            ..Index::default()
        }
    }

    #[test]
    fn only_a_copy_with_the_same_id_is_this_stores_own() {
        let dir = tempfile::tempdir().unwrap();
        let check = |remote: &Index, local: &str, replace: bool| {
            check_same_store(dir.path(), remote, local, "s3://b/p", replace)
        };
        assert!(check(&copy_of("aa", "h:/x"), "aa", false).is_ok());
        // Without an id (a read-only directory) only a copy without one.
        assert!(check(&copy_of("", "h:/x"), "", false).is_ok());
        for (remote, local) in [("aa", "bb"), ("aa", ""), ("", "bb")] {
            let e = check(&copy_of(remote, "h:/x"), local, false).unwrap_err();
            assert!(
                matches!(&e, RemoteError::OtherStore { generation: 7, source_name, .. }
                    if source_name == "h:/x"),
                "{e}"
            );
        }
        assert!(check(&copy_of("aa", "h:/x"), "bb", true).is_ok());
        // The same host and path: the message says what probably happened.
        let here = copy_of("aa", &source_name(dir.path()));
        let e = check(&here, "bb", false).unwrap_err().to_string();
        assert!(e.contains("this same path"), "{e}");
    }

    #[test]
    fn a_store_id_is_made_once_and_an_unreadable_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let id = store_id(dir.path()).unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(store_id(dir.path()).unwrap(), id);
        // An id file that cannot be read is not replaced by a new id.
        let other = tempfile::tempdir().unwrap();
        std::fs::create_dir(other.path().join(STORE_ID_FILE)).unwrap();
        assert!(matches!(
            store_id(other.path()),
            Err(RemoteError::Local { .. })
        ));
        assert!(other.path().join(STORE_ID_FILE).is_dir());
    }
}
