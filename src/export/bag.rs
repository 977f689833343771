//! Writing a rosbag2 bag directory of MCAP files from a stream of records.
//!
//! The bag is built in a hidden sibling directory (`.<name>.partial-<pid>`)
//! and renamed onto the target only after every file and metadata.yaml is
//! written and fsynced, so a bag at the target path is always complete.

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
    let (parent, name) = prepare_target(&opts.output)?;
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    std::fs::create_dir(&tmp).map_err(io_err(&tmp))?;
    let target = parent.join(&name);
    match fill_bag(&tmp, &name, topics, records, opts, ctl) {
        Ok(summary) => {
            publish(&tmp, &target, &parent)?;
            Ok(summary.relocated(&tmp, &target))
        }
        Err(e) => {
            // Best effort: the error being returned is the one that matters,
            // and a leftover hidden .partial directory is never mistaken for a bag.
            if let Err(cleanup) = std::fs::remove_dir_all(&tmp) {
                return Err(ExportError::Cleanup {
                    cause: Box::new(e),
                    path: tmp,
                    reason: cleanup.to_string(),
                });
            }
            Err(e)
        }
    }
}

/// Checks the target does not exist; returns its absolute parent and name.
fn prepare_target(output: &Path) -> Result<(PathBuf, String)> {
    if output.symlink_metadata().is_ok() {
        return Err(ExportError::TargetExists(output.to_path_buf()));
    }
    let name = output
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && *n != "..")
        .ok_or_else(|| ExportError::InvalidOutput {
            path: output.to_path_buf(),
            reason: "needs a final path component in UTF-8".into(),
        })?
        .to_string();
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let parent = parent.canonicalize().map_err(io_err(&parent))?;
    Ok((parent, name))
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
                .add_schema(&t.spec.type_name, "ros2msg", t.spec.definition.as_bytes())
                .map_err(mcap_err)?;
            let qos = normalize_qos(&t.spec.offered_qos);
            let meta = BTreeMap::from([("offered_qos_profiles".to_string(), qos.text)]);
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
        file.writer.finish().map_err(|e| ExportError::Mcap {
            path: path.clone(),
            source: e,
        })?;
        let mut buf = file.writer.into_inner().inner;
        buf.flush().map_err(io_err(&path))?;
        let f = buf
            .into_inner()
            .map_err(|e| io_err(&path)(e.into_error()))?;
        f.sync_all().map_err(io_err(&path))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.done.push(DoneFile {
            name,
            path,
            first: file.first.unwrap_or(0),
            last: file.last,
            count: file.count,
        });
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
        let text = serde_yaml::to_string(&meta).map_err(|e| ExportError::Metadata {
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
                    type_description_hash: String::new(),
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

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Renames the finished temp directory onto the target, never replacing
/// anything that appeared there meanwhile.
fn publish(tmp: &Path, target: &Path, parent: &Path) -> Result<()> {
    sync_dir(tmp)?;
    rename_noreplace(tmp, target)?;
    sync_dir(parent)
}

fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let cstr = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| ExportError::InvalidOutput {
            path: p.to_path_buf(),
            reason: "contains a NUL byte".into(),
        })
    };
    let (a, b) = (cstr(from)?, cstr(to)?);
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EEXIST) => Err(ExportError::TargetExists(to.to_path_buf())),
        Some(libc::EINVAL | libc::ENOSYS) => {
            if to.symlink_metadata().is_ok() {
                return Err(ExportError::TargetExists(to.to_path_buf()));
            }
            std::fs::rename(from, to).map_err(io_err(to))
        }
        _ => Err(io_err(to)(err)),
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
