//! Summary of an MCAP bag (directory or single file), like `ros2 bag info`,
//! read from each file's summary section without scanning messages.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use mcap::sans_io::{SummaryReadEvent, SummaryReader};
use serde::Serialize;

use super::{io_err, ExportError, Result};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BagTopic {
    pub name: String,
    pub type_name: String,
    pub message_count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BagInfo {
    pub files: Vec<PathBuf>,
    pub size_bytes: u64,
    pub message_count: u64,
    /// Earliest and latest log time (0 when empty).
    pub start: u64,
    pub end: u64,
    pub topics: Vec<BagTopic>,
}

/// True when `path` looks like a bag: an `.mcap` file or a directory with
/// metadata.yaml or `.mcap` files.
pub fn is_bag(path: &Path) -> bool {
    if path.is_file() {
        return path.extension().is_some_and(|e| e == "mcap");
    }
    path.join("metadata.yaml").is_file()
}

/// Reads the summaries of every MCAP file of a bag.
pub fn bag_info(path: &Path) -> Result<BagInfo> {
    let files = if path.is_dir() {
        super::import::bag_files(path)?
    } else {
        super::import::refuse_sqlite(path)?;
        vec![path.to_path_buf()]
    };
    let mut info = BagInfo {
        start: u64::MAX,
        ..BagInfo::default()
    };
    let mut topics: BTreeMap<String, BagTopic> = BTreeMap::new();
    for f in &files {
        add_file(f, &mut info, &mut topics)?;
    }
    if info.message_count == 0 {
        info.start = 0;
    }
    info.files = files;
    info.topics = topics.into_values().collect();
    Ok(info)
}

fn add_file(
    path: &Path,
    info: &mut BagInfo,
    topics: &mut BTreeMap<String, BagTopic>,
) -> Result<()> {
    let mut file = File::open(path).map_err(io_err(path))?;
    info.size_bytes += file.metadata().map_err(io_err(path))?.len();
    let summary = read_summary(path, &mut file)?;
    let stats = summary.stats.unwrap_or_default();
    if stats.message_count > 0 {
        info.start = info.start.min(stats.message_start_time);
        info.end = info.end.max(stats.message_end_time);
    }
    info.message_count += stats.message_count;
    for (id, ch) in &summary.channels {
        let t = topics.entry(ch.topic.clone()).or_insert_with(|| BagTopic {
            name: ch.topic.clone(),
            type_name: ch
                .schema
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            message_count: 0,
        });
        t.message_count += stats.channel_message_counts.get(id).copied().unwrap_or(0);
    }
    Ok(())
}

fn read_summary(path: &Path, file: &mut File) -> Result<mcap::Summary> {
    let err = |source| ExportError::ReadMcap {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = SummaryReader::new();
    while let Some(event) = reader.next_event() {
        match event.map_err(err)? {
            SummaryReadEvent::ReadRequest(n) => {
                let got = file.read(reader.insert(n)).map_err(io_err(path))?;
                reader.notify_read(got);
            }
            SummaryReadEvent::SeekRequest(to) => {
                let pos = file.seek(to).map_err(io_err(path))?;
                reader.notify_seeked(pos);
            }
        }
    }
    reader.finish().ok_or_else(|| ExportError::Metadata {
        path: path.to_path_buf(),
        reason: "no summary section (unfinished file?); `motedb import` can still read it".into(),
    })
}
