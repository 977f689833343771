//! Importing rosbag2 MCAP bags (or a bare `.mcap`) into a store.
//!
//! Files are read linearly with bounded memory. Whatever is valid is
//! imported; a corrupt or truncated tail and messages that cannot be stored
//! are reported in `ImportReport::skipped`, never silently dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use mcap::records::MessageHeader;
use serde::Serialize;

use crate::engine::{Store, TopicId, TopicSpec};

use super::mcap_read::import_mcap_file;
use super::metadata::{qos_text_from_yaml, BagInfo, MetadataFile};
use super::{io_err, ExportError, Result};

#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Topic names to import; empty: all.
    pub topics: Vec<String>,
    /// Asked before each message: true stops the import with
    /// `ExportError::Cancelled` (what was imported so far stays).
    pub cancel: Option<fn() -> bool>,
}

/// Something that was not imported, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub file: PathBuf,
    /// Messages not imported for this reason; `None` when the file cannot
    /// tell (the unread tail of a truncated file, say). `Some(0)` marks
    /// damage that lost no message by itself.
    pub messages: Option<u64>,
    /// Byte offset in the file where the problem starts, when known.
    pub offset: Option<u64>,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub files: Vec<PathBuf>,
    pub messages: u64,
    /// Messages imported per topic.
    pub per_topic: BTreeMap<String, u64>,
    pub skipped: Vec<Skipped>,
    /// Event marks added (`motedb.mark` metadata records; one the store
    /// already has, same label, tags and window, is not added again).
    pub marks: u64,
}

impl ImportReport {
    /// True when everything in the input was imported.
    pub fn complete(&self) -> bool {
        self.skipped.is_empty()
    }
}

/// A channel as declared in the MCAP, with its schema resolved.
#[derive(Clone, Debug)]
pub struct ChannelInfo {
    pub spec: TopicSpec,
    /// Why messages on this channel cannot be stored, if so.
    pub unusable: Option<String>,
    /// The channel record as read.
    pub raw: mcap::records::Channel,
}

/// Imports a bag directory or a single `.mcap` file into `store`.
pub fn import_bag(store: &Store, path: &Path, opts: &ImportOptions) -> Result<ImportReport> {
    let (files, qos, mut report) = input_files(path)?;
    let wanted: BTreeSet<&str> = opts.topics.iter().map(String::as_str).collect();
    let mut ids: HashMap<String, std::result::Result<TopicId, String>> = HashMap::new();
    for file in &files {
        if !file.is_file() {
            report.skipped.push(Skipped {
                file: file.clone(),
                messages: None,
                offset: None,
                reason: "listed in metadata.yaml but missing".into(),
            });
            continue;
        }
        report.files.push(file.clone());
        let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
        let mut on_msg = |ch: &ChannelInfo, h: &MessageHeader, data: &[u8]| -> Result<()> {
            if opts.cancel.is_some_and(|cancelled| cancelled()) {
                return Err(ExportError::Cancelled);
            }
            if !wanted.is_empty() && !wanted.contains(ch.spec.name.as_str()) {
                return Ok(());
            }
            if let Some(why) = &ch.unusable {
                *skipped.entry(why.clone()).or_insert(0) += 1;
                return Ok(());
            }
            let id = ids
                .entry(ch.spec.name.clone())
                .or_insert_with(|| register(store, &ch.spec, &qos));
            match id {
                Ok(id) => {
                    store.append(*id, h.log_time, h.publish_time, data)?;
                    report.messages += 1;
                    *report.per_topic.entry(ch.spec.name.clone()).or_insert(0) += 1;
                }
                Err(why) => *skipped.entry(why.clone()).or_insert(0) += 1,
            }
            Ok(())
        };
        let mut marks = Vec::new();
        let mut on_meta = |m: &mcap::records::Metadata| {
            if m.name == super::marks::NAME {
                marks.push(super::marks::from_metadata(&m.metadata));
            }
        };
        let tail = import_mcap_file(file, &mut on_msg, &mut on_meta)?;
        let mut have = store.marks();
        for mark in marks {
            let added = match mark {
                Ok(new) if have.iter().any(|m| super::marks::same(&new, m)) => continue,
                Ok(new) => match store.add_mark(new) {
                    Ok(m) => Ok(m),
                    // The mark itself is refused (a bad window, too many
                    // marks): skipped input. Anything else is the store's.
                    Err(crate::engine::Error::InvalidArgument(why)) => Err(why),
                    Err(e) => return Err(e.into()),
                },
                Err(why) => Err(why),
            };
            match added {
                Ok(m) => {
                    have.push(m);
                    report.marks += 1;
                }
                Err(why) => report.skipped.push(Skipped {
                    file: file.clone(),
                    messages: Some(0),
                    offset: None,
                    reason: format!("{} metadata record not imported: {why}", super::marks::NAME),
                }),
            }
        }
        for (reason, messages) in skipped {
            report.skipped.push(Skipped {
                file: file.clone(),
                messages: Some(messages),
                offset: None,
                reason,
            });
        }
        report.skipped.extend(tail);
    }
    store.sync()?;
    Ok(report)
}

fn register(
    store: &Store,
    spec: &TopicSpec,
    listed: &HashMap<String, Listed>,
) -> std::result::Result<TopicId, String> {
    let mut spec = spec.clone();
    if let Some(l) = listed.get(&spec.name) {
        if spec.offered_qos.is_empty() {
            spec.offered_qos = l.qos.clone();
        }
        if spec.type_hash.is_empty() {
            spec.type_hash = l.type_hash.clone();
        }
    }
    store
        .register_topic(spec)
        .map_err(|e| format!("cannot register topic: {e}"))
}

/// What metadata.yaml says of a topic, used where its channel says nothing.
struct Listed {
    qos: String,
    type_hash: String,
}

type InputFiles = (Vec<PathBuf>, HashMap<String, Listed>, ImportReport);

/// The MCAP files of a bag directory (from metadata.yaml, else every
/// `*.mcap`), or the file itself; plus what metadata.yaml lists by topic.
fn input_files(path: &Path) -> Result<InputFiles> {
    let mut report = ImportReport::default();
    if !path.is_dir() {
        std::fs::metadata(path).map_err(io_err(path))?;
        refuse_sqlite(path)?;
        return Ok((vec![path.to_path_buf()], HashMap::new(), report));
    }
    let meta_path = path.join("metadata.yaml");
    let mut qos = HashMap::new();
    let mut files = Vec::new();
    if meta_path.exists() {
        match read_metadata(&meta_path) {
            Ok(m) => {
                let info = m.rosbag2_bagfile_information;
                if !info.compression_mode.is_empty() {
                    return Err(ExportError::Metadata {
                        path: meta_path,
                        reason: format!(
                            "rosbag2 {} compression ({}) is not supported; \
                             decompress the bag first (ros2 bag convert)",
                            info.compression_mode, info.compression_format
                        ),
                    });
                }
                for t in &info.topics_with_message_count {
                    let m = &t.topic_metadata;
                    let listed = Listed {
                        qos: qos_text_from_yaml(&m.offered_qos_profiles),
                        type_hash: m.type_description_hash.clone(),
                    };
                    qos.insert(m.name.clone(), listed);
                }
                files = listed_files(path, &meta_path, &info)?;
            }
            Err(reason) => report.skipped.push(Skipped {
                file: meta_path.clone(),
                messages: Some(0),
                offset: None,
                reason: format!(
                    "metadata.yaml unreadable ({reason}); imported every *.mcap instead"
                ),
            }),
        }
    }
    if files.is_empty() {
        files = mcap_files_in(path)?;
    }
    if files.is_empty() {
        return Err(ExportError::NothingToImport {
            path: path.to_path_buf(),
        });
    }
    Ok((files, qos, report))
}

/// The MCAP files of a bag directory: metadata.yaml's list, else every
/// `*.mcap` in it.
pub(crate) fn bag_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let meta_path = dir.join("metadata.yaml");
    let listed = match read_metadata(&meta_path) {
        Ok(m) => listed_files(dir, &meta_path, &m.rosbag2_bagfile_information)?,
        Err(_) => Vec::new(),
    };
    let files = if listed.is_empty() {
        mcap_files_in(dir)?
    } else {
        listed
    };
    if files.is_empty() {
        return Err(ExportError::NothingToImport {
            path: dir.to_path_buf(),
        });
    }
    Ok(files)
}

/// The files metadata.yaml lists, after checking the bag is one motedb can
/// read (`storage_identifier` mcap) and that every listed path stays in
/// the bag directory (relative, no `..`, no symbolic link leading out).
fn listed_files(dir: &Path, meta_path: &Path, info: &BagInfo) -> Result<Vec<PathBuf>> {
    let bad = |reason: String| ExportError::Metadata {
        path: meta_path.to_path_buf(),
        reason,
    };
    match info.storage_identifier.as_str() {
        "mcap" | "" => {}
        "sqlite3" => {
            return Err(bad(
                "sqlite3 bags are not supported; convert it to MCAP first \
                 (ros2 bag convert with storage_id: mcap)"
                    .into(),
            ))
        }
        other => {
            return Err(bad(format!(
                "storage {other:?} is not supported; motedb reads MCAP bags"
            )))
        }
    }
    let root = dir.canonicalize().map_err(io_err(dir))?;
    let mut files = Vec::new();
    for rel in &info.relative_file_paths {
        let plain = Path::new(rel)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        let path = dir.join(rel);
        // A missing file is reported when it is opened; a link that does
        // not resolve (dangling now, pointed elsewhere later) is refused.
        let inside = plain
            && match path.canonicalize() {
                Ok(real) => real.starts_with(&root),
                Err(_) => path.symlink_metadata().is_err(),
            };
        if !inside {
            return Err(bad(format!(
                "relative_file_paths entry {rel:?} points outside the bag directory"
            )));
        }
        files.push(path);
    }
    Ok(files)
}

fn read_metadata(path: &Path) -> std::result::Result<MetadataFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())
}

fn mcap_files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut sqlite = None;
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let p = entry.map_err(io_err(dir))?.path();
        if p.extension().is_some_and(|e| e == "mcap") {
            out.push(p);
        } else if p.extension().is_some_and(|e| e == "db3") {
            sqlite = Some(p);
        }
    }
    if let (true, Some(p)) = (out.is_empty(), sqlite) {
        refuse_sqlite(&p)?;
    }
    out.sort();
    Ok(out)
}

const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// A clear error for a rosbag2 sqlite3 file (by its magic bytes), which
/// would otherwise be reported as a corrupt MCAP file.
pub(crate) fn refuse_sqlite(path: &Path) -> Result<()> {
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    if head[..n] == *SQLITE_MAGIC {
        return Err(ExportError::Metadata {
            path: path.to_path_buf(),
            reason: "sqlite3 bags are not supported; convert it to MCAP first \
                     (ros2 bag convert with storage_id: mcap)"
                .into(),
        });
    }
    Ok(())
}
