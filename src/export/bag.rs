//! Writing a rosbag2 bag directory of MCAP files from a stream of records.
//!
//! The bag is built in a hidden sibling directory of its own
//! (`.<name>.partial-<pid>-<n>`) and renamed onto the target only after
//! every file and metadata.yaml is written and fsynced, so a bag at the
//! target path is always complete.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::engine::{Nanos, Record, TopicId, TopicSpec};

use super::metadata::{self, normalize_qos, BagInfo, FileInfo, MetadataFile, TopicWithCount};
use super::{
    io_err, ExportControl, ExportError, ExportOptions, ExportSummary, McapCompression, Result,
};

/// Counts bytes written so a split by size can see the file length.
struct Counting<W> {
    inner: W,
    pos: u64,
    len: Arc<AtomicU64>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pos += n as u64;
        self.len.fetch_max(self.pos, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Seek> Seek for Counting<W> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.pos = self.inner.seek(pos)?;
        Ok(self.pos)
    }
}

type McapWriter = mcap::Writer<Counting<BufWriter<File>>>;

/// One topic as exported.
pub(crate) struct ExportTopic {
    pub id: TopicId,
    pub spec: TopicSpec,
}

/// The MCAP file being written.
struct OpenFile {
    writer: McapWriter,
    path: PathBuf,
    len: Arc<AtomicU64>,
    channels: BTreeMap<TopicId, u16>,
    first: Option<Nanos>,
    last: Nanos,
    count: u64,
}

/// Stats of a finished file, for metadata.yaml.
struct DoneFile {
    name: String,
    path: PathBuf,
    first: Nanos,
    last: Nanos,
    count: u64,
}

struct BagWriter<'a> {
    dir: PathBuf,
    bag_name: String,
    opts: &'a ExportOptions,
    topics: &'a [ExportTopic],
    current: Option<OpenFile>,
    done: Vec<DoneFile>,
    per_topic: BTreeMap<TopicId, u64>,
}

/// Writes `records` (log-time order) of `topics` as a bag at `opts.output`.
pub(crate) fn write_bag<I>(
    topics: &[ExportTopic],
    records: I,
    opts: &ExportOptions,
    ctl: &ExportControl<'_>,
) -> Result<ExportSummary>
where
    I: Iterator<Item = crate::engine::Result<Record>>,
{
    let target = Target::prepare(&opts.output, opts.beneath.as_deref())?;
    target.remove_stale_partials();
    let (tmp_name, tmp_dir) = target.make_temp_dir()?;
    let tmp = fd_path(&tmp_dir);
    let shown = target.shown();
    let filled = fill_bag(&tmp, &target.name, topics, records, opts, ctl);
    let published = filled.and_then(|summary| {
        // A cancel that came after the last record, or while the files
        // were closed and synced, still leaves nothing.
        if ctl.is_cancelled() {
            return Err(ExportError::Cancelled);
        }
        target.publish(&tmp_dir, &tmp_name)?;
        Ok(summary)
    });
    match published {
        Ok(summary) => Ok(summary.relocated(&tmp, &shown)),
        Err(e) => {
            // Best effort: the error being returned is the one that matters,
            // and a leftover hidden .partial directory is never mistaken for a bag.
            if let Err(cleanup) = target.discard(&tmp_dir, &tmp_name) {
                return Err(ExportError::Cleanup {
                    cause: Box::new(e),
                    path: target.parent_path.join(&tmp_name),
                    reason: cleanup.to_string(),
                });
            }
            Err(e)
        }
    }
}

/// Where a bag goes: its parent directory, held open from the start, so
/// that nothing done to the path later (a symlink planted, a directory
/// renamed) can move the bag elsewhere, and its final name. Files are
/// written through `/proc/self/fd/<parent>/...`, which resolves through the
/// open directory, not through the path.
struct Target {
    parent: File,
    /// The parent as a path, for messages and the summary.
    parent_path: PathBuf,
    name: String,
}

/// Makes temporary directory names unique within this process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl Target {
    /// Opens the parent of `output`, which must not exist yet. With
    /// `beneath`, `output` must be a relative path of plain names and is
    /// resolved under that directory without following any symbolic link
    /// (each component is opened with O_NOFOLLOW from the one before,
    /// created when missing), so the bag cannot land outside it.
    fn prepare(output: &Path, beneath: Option<&Path>) -> Result<Target> {
        let (parent, parent_path) = match beneath {
            Some(base) => open_beneath(base, output)?,
            None => {
                let parent = match output.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
                let parent = parent.canonicalize().map_err(io_err(&parent))?;
                (open_dir(&parent)?, parent)
            }
        };
        let name = output
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ExportError::InvalidOutput {
                path: output.to_path_buf(),
                reason: "needs a final path component in UTF-8".into(),
            })?
            .to_string();
        let target = Target {
            parent,
            parent_path,
            name,
        };
        if target.via(&target.name).symlink_metadata().is_ok() {
            return Err(ExportError::TargetExists(target.shown()));
        }
        Ok(target)
    }

    /// `name` inside the parent, resolved through its open descriptor.
    fn via(&self, name: &str) -> PathBuf {
        fd_path(&self.parent).join(name)
    }

    fn shown(&self) -> PathBuf {
        self.parent_path.join(&self.name)
    }

    /// A new hidden directory `.<name>.partial-<pid>-<n>` of this export
    /// alone: one that exists (another export of the same name, running or
    /// killed) is never reused or removed. Made mode 0700 and held open
    /// (O_NOFOLLOW), so files are created through the directory itself:
    /// renaming it away and planting a link in its place leads nowhere.
    fn make_temp_dir(&self) -> Result<(String, File)> {
        use std::os::unix::io::{AsRawFd, FromRawFd};
        loop {
            let n = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
            let tmp_name = format!(".{}.partial-{}-{n}", self.name, std::process::id());
            let shown = self.parent_path.join(&tmp_name);
            let c = std::ffi::CString::new(tmp_name.as_str()).map_err(|_| {
                ExportError::InvalidOutput {
                    path: shown.clone(),
                    reason: "contains a NUL byte".into(),
                }
            })?;
            // SAFETY: a valid directory descriptor and a NUL-terminated
            // name that outlive the calls; the new descriptor is owned below.
            let fd = unsafe {
                if libc::mkdirat(self.parent.as_raw_fd(), c.as_ptr(), 0o700) != 0 {
                    let e = std::io::Error::last_os_error();
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        continue;
                    }
                    return Err(io_err(&shown)(e));
                }
                libc::openat(
                    self.parent.as_raw_fd(),
                    c.as_ptr(),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(io_err(&shown)(std::io::Error::last_os_error()));
            }
            // SAFETY: fd is a new descriptor that nothing else owns.
            return Ok((tmp_name, unsafe { File::from_raw_fd(fd) }));
        }
    }

    /// Removes `.<name>.partial-<pid>-<n>` directories of this name left by
    /// processes that no longer exist (an export killed mid-way), so they
    /// do not fill the disk unseen. A live process's are never touched.
    fn remove_stale_partials(&self) {
        let prefix = format!(".{}.partial-", self.name);
        let Ok(entries) = std::fs::read_dir(self.via("")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            // SAFETY: signal 0 only checks that the process exists.
            let gone = unsafe { libc::kill(pid, 0) } != 0
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
            if gone && entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _best_effort = std::fs::remove_dir_all(self.via(&name));
            }
        }
    }

    /// Renames the finished temp directory onto the target, never
    /// replacing anything that appeared there meanwhile, and only if the
    /// name still refers to the directory this export wrote.
    fn publish(&self, tmp: &File, tmp_name: &str) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        tmp.sync_all()
            .map_err(io_err(&self.parent_path.join(tmp_name)))?;
        let held = tmp.metadata().map_err(io_err(&self.shown()))?;
        let named = self.via(tmp_name).symlink_metadata().ok();
        if named.is_none_or(|m| (m.dev(), m.ino()) != (held.dev(), held.ino())) {
            return Err(ExportError::InvalidOutput {
                path: self.parent_path.join(tmp_name),
                reason: "the temporary directory was replaced while the bag was written".into(),
            });
        }
        rename_noreplace(&self.parent, tmp_name, &self.name, &self.shown())?;
        self.parent.sync_all().map_err(io_err(&self.parent_path))
    }
}

impl Target {
    /// Removes the temporary directory: its files through the descriptor,
    /// then the (empty) directory by name in the parent.
    fn discard(&self, tmp: &File, tmp_name: &str) -> std::io::Result<()> {
        use std::os::unix::io::AsRawFd;
        for entry in std::fs::read_dir(fd_path(tmp))? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(path)?;
            } else {
                std::fs::remove_file(path)?;
            }
        }
        let c = std::ffi::CString::new(tmp_name)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: a valid directory descriptor and a NUL-terminated name.
        if unsafe { libc::unlinkat(self.parent.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// A path that resolves through an open descriptor, not through names.
fn fd_path(f: &File) -> PathBuf {
    use std::os::unix::io::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()))
}

fn open_dir(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map_err(io_err(path))
}

/// The parent of `rel` under `base`, opened component by component with
/// O_NOFOLLOW (missing ones created), and its path for messages.
fn open_beneath(base: &Path, rel: &Path) -> Result<(File, PathBuf)> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::io::{AsRawFd, FromRawFd};
    let rel_parent = check_relative(rel)?;
    std::fs::create_dir_all(base).map_err(io_err(base))?;
    let mut dir = open_dir(base)?;
    let mut path = base.to_path_buf();
    for part in rel_parent.iter().filter(|p| *p != ".") {
        path.push(part);
        let c =
            std::ffi::CString::new(part.as_bytes()).map_err(|_| ExportError::InvalidOutput {
                path: rel.to_path_buf(),
                reason: "contains a NUL byte".into(),
            })?;
        // SAFETY: a valid directory descriptor and a NUL-terminated name
        // that outlive the call.
        if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(io_err(&path)(e));
            }
        }
        // SAFETY: as above; the returned descriptor is owned below.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ELOOP | libc::ENOTDIR) => ExportError::InvalidOutput {
                    path: rel.to_path_buf(),
                    reason: format!(
                        "{} is a symbolic link or not a directory; the bag must stay under {}",
                        path.display(),
                        base.display()
                    ),
                },
                _ => io_err(&path)(e),
            });
        }
        // SAFETY: fd is a new descriptor that nothing else owns.
        dir = unsafe { File::from_raw_fd(fd) };
    }
    Ok((dir, path))
}

/// `rel` is a relative path of plain names (no `..`, no root, not empty);
/// returns its parent (possibly empty).
fn check_relative(rel: &Path) -> Result<&Path> {
    use std::path::Component;
    let bad = |reason: &str| ExportError::InvalidOutput {
        path: rel.to_path_buf(),
        reason: reason.to_string(),
    };
    if rel.to_string_lossy().trim().is_empty() {
        return Err(bad("is empty; give a bag directory name"));
    }
    for c in rel.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(bad("must not contain `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad("must be relative to the export directory"))
            }
        }
    }
    Ok(rel.parent().unwrap_or(Path::new("")))
}

fn fill_bag<I>(
    tmp: &Path,
    name: &str,
    topics: &[ExportTopic],
    records: I,
    opts: &ExportOptions,
    ctl: &ExportControl<'_>,
) -> Result<ExportSummary>
where
    I: Iterator<Item = crate::engine::Result<Record>>,
{
    let mut bag = BagWriter {
        dir: tmp.to_path_buf(),
        bag_name: name.to_string(),
        opts,
        topics,
        current: None,
        done: Vec::new(),
        per_topic: BTreeMap::new(),
    };
    let mut count = 0u64;
    let mut bytes = 0u64;
    for rec in records {
        let rec = rec?;
        if ctl.is_cancelled() {
            return Err(ExportError::Cancelled);
        }
        bag.write(&rec)?;
        count += 1;
        bytes += rec.payload.len() as u64;
        if count % 1024 == 0 {
            ctl.report(count, bytes);
        }
    }
    ctl.report(count, bytes);
    bag.finish()
}

impl BagWriter<'_> {
    fn write(&mut self, rec: &Record) -> Result<()> {
        if self.should_split(rec.log_time) {
            self.close_current()?;
        }
        let file = match self.current.take() {
            Some(f) => f,
            None => self.open_file()?,
        };
        let file = self.current.insert(file);
        let channel_id = *file
            .channels
            .get(&rec.topic)
            .ok_or(ExportError::UnknownTopicId(rec.topic))?;
        let header = mcap::records::MessageHeader {
            channel_id,
            // MCAP sequences are 32-bit; wrapping keeps them incrementing.
            sequence: rec.sequence as u32,
            log_time: rec.log_time,
            publish_time: rec.publish_time,
        };
        let path = file.path.clone();
        file.writer
            .write_to_known_channel(&header, &rec.payload)
            .map_err(|e| ExportError::Mcap { path, source: e })?;
        file.first.get_or_insert(rec.log_time);
        file.last = file.last.max(rec.log_time);
        file.count += 1;
        *self.per_topic.entry(rec.topic).or_insert(0) += 1;
        Ok(())
    }

    fn should_split(&self, t: Nanos) -> bool {
        let Some(file) = &self.current else {
            return false;
        };
        let Some(first) = file.first else {
            return false;
        };
        let by_size = self
            .opts
            .split_bytes
            .is_some_and(|max| file.len.load(Ordering::Relaxed) >= max);
        let by_time = self.opts.split_duration.is_some_and(|d| {
            let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
            t.saturating_sub(first) >= d
        });
        by_size || by_time
    }

    fn open_file(&self) -> Result<OpenFile> {
        let path = self
            .dir
            .join(format!("{}_{}.mcap", self.bag_name, self.done.len()));
        let file = File::create(&path).map_err(io_err(&path))?;
        let len = Arc::new(AtomicU64::new(0));
        let sink = Counting {
            inner: BufWriter::with_capacity(1 << 20, file),
            pos: 0,
            len: len.clone(),
        };
        let mcap_err = |e| ExportError::Mcap {
            path: path.clone(),
            source: e,
        };
        let mut writer = self.write_options().create(sink).map_err(mcap_err)?;
        let mut channels = BTreeMap::new();
        for t in self.topics {
            let schema = writer
                .add_schema(
                    &t.spec.type_name,
                    super::schema_encoding(&t.spec.definition),
                    t.spec.definition.as_bytes(),
                )
                .map_err(mcap_err)?;
            let qos = normalize_qos(&t.spec.offered_qos);
            let mut meta = BTreeMap::from([("offered_qos_profiles".to_string(), qos.text)]);
            if !t.spec.type_hash.is_empty() {
                meta.insert("topic_type_hash".to_string(), t.spec.type_hash.clone());
            }
            let encoding = if t.spec.serialization_format.is_empty() {
                "cdr"
            } else {
                &t.spec.serialization_format
            };
            let channel = writer
                .add_channel(schema, &t.spec.name, encoding, &meta)
                .map_err(mcap_err)?;
            channels.insert(t.id, channel);
        }
        Ok(OpenFile {
            writer,
            path,
            len,
            channels,
            first: None,
            last: 0,
            count: 0,
        })
    }

    fn write_options(&self) -> mcap::WriteOptions {
        let compression = match self.opts.compression {
            McapCompression::Zstd => Some(mcap::Compression::Zstd),
            McapCompression::Lz4 => Some(mcap::Compression::Lz4),
            McapCompression::None => None,
        };
        let chunk = match self.opts.split_bytes {
            Some(max) => (max / 4).clamp(4 << 10, 768 << 10),
            None => 768 << 10,
        };
        mcap::WriteOptions::new()
            .profile("ros2")
            .library(concat!("motedb-", env!("CARGO_PKG_VERSION")))
            .compression(compression)
            .chunk_size(Some(chunk))
    }

    fn close_current(&mut self) -> Result<()> {
        let Some(mut file) = self.current.take() else {
            return Ok(());
        };
        let path = file.path.clone();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // As rosbag2's MCAP storage does: a "rosbag2" metadata record with
        // the bag's metadata so far (this file included), so `ros2 bag
        // info` and readers of a single .mcap file see it without
        // metadata.yaml.
        self.done.push(DoneFile {
            name: name.clone(),
            path: path.clone(),
            first: file.first.unwrap_or(0),
            last: file.last,
            count: file.count,
        });
        let serialized = serde_yaml_ng::to_string(&self.metadata());
        let done = self.done.pop();
        let serialized = serialized.map_err(|e| ExportError::Metadata {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let record = mcap::records::Metadata {
            name: "rosbag2".into(),
            metadata: BTreeMap::from([("serialized_metadata".to_string(), serialized)]),
        };
        let mcap_err = |e| ExportError::Mcap {
            path: path.clone(),
            source: e,
        };
        file.writer.write_metadata(&record).map_err(mcap_err)?;
        for m in &self.opts.marks {
            file.writer
                .write_metadata(&super::marks::to_metadata(m))
                .map_err(mcap_err)?;
        }
        file.writer.finish().map_err(mcap_err)?;
        let mut buf = file.writer.into_inner().inner;
        buf.flush().map_err(io_err(&path))?;
        let f = buf
            .into_inner()
            .map_err(|e| io_err(&path)(e.into_error()))?;
        f.sync_all().map_err(io_err(&path))?;
        self.done.extend(done);
        Ok(())
    }

    fn finish(mut self) -> Result<ExportSummary> {
        if self.current.is_none() && self.done.is_empty() {
            // An empty export is still a valid, openable bag.
            self.current = Some(self.open_file()?);
        }
        self.close_current()?;
        let meta = self.metadata();
        let path = self.dir.join("metadata.yaml");
        let text = serde_yaml_ng::to_string(&meta).map_err(|e| ExportError::Metadata {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_synced(&path, text.as_bytes())?;
        let mut size = text.len() as u64;
        let mut files = Vec::new();
        for f in &self.done {
            size += std::fs::metadata(&f.path).map_err(io_err(&f.path))?.len();
            files.push(f.path.clone());
        }
        Ok(ExportSummary {
            path: self.dir.clone(),
            message_count: self.per_topic.values().sum(),
            size_bytes: size,
            files,
        })
    }

    fn metadata(&self) -> MetadataFile {
        let with_msgs = self.done.iter().filter(|f| f.count > 0);
        let start = with_msgs.clone().map(|f| f.first).min().unwrap_or(0);
        let end = with_msgs.map(|f| f.last).max().unwrap_or(0);
        let topics = self
            .topics
            .iter()
            .map(|t| TopicWithCount {
                topic_metadata: metadata::TopicMetadata {
                    name: t.spec.name.clone(),
                    type_name: t.spec.type_name.clone(),
                    serialization_format: "cdr".into(),
                    offered_qos_profiles: normalize_qos(&t.spec.offered_qos).list,
                    type_description_hash: t.spec.type_hash.clone(),
                },
                message_count: self.per_topic.get(&t.id).copied().unwrap_or(0),
            })
            .collect();
        let files: Vec<FileInfo> = self
            .done
            .iter()
            .map(|f| FileInfo {
                path: f.name.clone(),
                starting_time: metadata::NanosecondsSinceEpoch {
                    nanoseconds_since_epoch: f.first,
                },
                duration: metadata::Nanoseconds {
                    nanoseconds: f.last.saturating_sub(f.first),
                },
                message_count: f.count,
            })
            .collect();
        MetadataFile {
            rosbag2_bagfile_information: BagInfo {
                version: metadata::ROSBAG2_VERSION,
                storage_identifier: "mcap".into(),
                duration: metadata::Nanoseconds {
                    nanoseconds: end.saturating_sub(start),
                },
                starting_time: metadata::NanosecondsSinceEpoch {
                    nanoseconds_since_epoch: start,
                },
                message_count: self.per_topic.values().sum(),
                topics_with_message_count: topics,
                compression_format: String::new(),
                compression_mode: String::new(),
                relative_file_paths: files.iter().map(|f| f.path.clone()).collect(),
                files,
                // `{}` rather than null: rosbag2 (yaml-cpp) decodes it as a map.
                custom_data: Some(BTreeMap::new()),
                ros_distro: std::env::var("ROS_DISTRO").unwrap_or_else(|_| "jazzy".into()),
            },
        }
    }
}

fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(io_err(path))?;
    f.write_all(data).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// renameat2(RENAME_NOREPLACE) of `from` to `to`, both in `dir`.
fn rename_noreplace(dir: &File, from: &str, to: &str, shown: &Path) -> Result<()> {
    use std::os::unix::io::AsRawFd;
    let cstr = |n: &str| {
        std::ffi::CString::new(n).map_err(|_| ExportError::InvalidOutput {
            path: shown.to_path_buf(),
            reason: "contains a NUL byte".into(),
        })
    };
    let (a, b) = (cstr(from)?, cstr(to)?);
    // SAFETY: a valid directory descriptor and NUL-terminated names that
    // outlive the call.
    let rc = unsafe {
        libc::renameat2(
            dir.as_raw_fd(),
            a.as_ptr(),
            dir.as_raw_fd(),
            b.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EEXIST) => Err(ExportError::TargetExists(shown.to_path_buf())),
        // A file system without RENAME_NOREPLACE: check, then rename.
        Some(libc::EINVAL | libc::ENOSYS) => {
            let at = fd_path(dir);
            if at.join(to).symlink_metadata().is_ok() {
                return Err(ExportError::TargetExists(shown.to_path_buf()));
            }
            std::fs::rename(at.join(from), at.join(to)).map_err(io_err(shown))
        }
        _ => Err(io_err(shown)(err)),
    }
}

impl ExportSummary {
    fn relocated(mut self, tmp: &Path, target: &Path) -> ExportSummary {
        self.path = target.to_path_buf();
        for f in &mut self.files {
            if let Ok(rel) = f.strip_prefix(tmp) {
                *f = target.join(rel);
            }
        }
        self
    }
}
