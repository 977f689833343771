//! Reading one MCAP file for import: every message in file order, and an
//! account of every message that could not be read.
//!
//! The data section is read linearly with bounded memory. The summary
//! section, read separately through the footer and checked against its CRC,
//! says what the file holds: statistics (how many messages), chunk indexes
//! (where each chunk starts and where its message indexes are). After the
//! linear pass, what was read is reconciled with what the file says it
//! holds:
//! - a chunk the pass never met (a damaged length before it swallowed it, a
//!   flipped opcode) is read through its index entry; if that fails too it
//!   is reported with its offset and its message count from its message
//!   indexes;
//! - a damaged record that breaks the linear reading ends the pass only
//!   when no later chunk is indexed; otherwise reading resumes there;
//! - messages the statistics count beyond everything read or reported are
//!   reported as such, so no damage can hide a message without a report.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use mcap::records::{op, Channel, MessageHeader, Record};
use mcap::sans_io::{LinearReadEvent, LinearReader, LinearReaderOptions};

use super::import::{ChannelInfo, Skipped};
use super::{io_err, Result};
use crate::engine::TopicSpec;

mod reconcile;
mod summary;

use summary::{message_index_count, read_record_at, read_summary, SchemaInfo, Summary};

/// Largest record accepted; a garbage length beyond it is corruption.
const RECORD_LIMIT: usize = 256 << 20;
const MAGIC_LEN: u64 = 8;

/// Called for each message read from an MCAP file.
pub type MessageFn<'a> = dyn FnMut(&ChannelInfo, &MessageHeader, &[u8]) -> Result<()> + 'a;

/// What reading one chunk gave.
#[derive(Default)]
struct ChunkOutcome {
    /// Messages parsed and handed on.
    parsed: u64,
    /// Message records that did not parse (each reported on its own).
    failed: u64,
    error: Option<String>,
}

/// Reads every message of one MCAP file in file order, calling `on_msg`
/// with its channel. Returns what could not be read: damaged or truncated
/// parts, with their offsets and, where the file says, how many messages
/// they held (`messages: None` when it cannot tell). Errors from `on_msg`
/// abort the read.
pub fn import_mcap_records(path: &Path, on_msg: &mut MessageFn<'_>) -> Result<Vec<Skipped>> {
    import_mcap_file(path, on_msg, &mut |_| {})
}

/// Called for each Metadata record read from an MCAP file.
pub type MetadataFn<'a> = dyn FnMut(&mcap::records::Metadata) + 'a;

/// `import_mcap_records`, also handing every Metadata record to `on_meta`.
pub fn import_mcap_file(
    path: &Path,
    on_msg: &mut MessageFn<'_>,
    on_meta: &mut MetadataFn<'_>,
) -> Result<Vec<Skipped>> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let file_len = file.metadata().map_err(io_err(path))?.len();
    let summary = read_summary(&mut file, file_len).map_err(io_err(path))?;
    let mut scan = Scan {
        path: path.to_path_buf(),
        on_msg,
        on_meta,
        schemas: HashMap::new(),
        channels: HashMap::new(),
        summary: summary.as_ref().ok().and_then(Option::as_ref),
        chunks: BTreeMap::new(),
        expected: BTreeMap::new(),
        all_in_chunks: false,
        layout: BTreeMap::new(),
        index_starts: HashSet::new(),
        unknown_channel: BTreeMap::new(),
        unknown_records: Vec::new(),
        parsed: 0,
        skipped: Vec::new(),
    };
    scan.count_indexed(&mut file, file_len)?;
    let broke = scan.linear(&mut file, file_len)?;
    scan.read_hidden_chunks(&mut file, file_len)?;
    if let Err(why) = &summary {
        // A truncated or damaged tail already explains a missing footer.
        if !broke {
            scan.skipped.push(Skipped {
                file: path.to_path_buf(),
                messages: None,
                offset: None,
                reason: format!(
                    "summary section unreadable ({why}); cannot check that every message \
                     was read"
                ),
            });
        }
    }
    Ok(scan.reconcile())
}

struct Scan<'a, 'f> {
    path: PathBuf,
    on_msg: &'a mut MessageFn<'f>,
    on_meta: &'a mut MetadataFn<'f>,
    schemas: HashMap<u16, SchemaInfo>,
    channels: HashMap<u16, ChannelInfo>,
    summary: Option<&'a Summary>,
    /// Chunks read, by the offset of their record.
    chunks: BTreeMap<u64, ChunkOutcome>,
    /// Messages in each indexed chunk by its message indexes, when known.
    expected: BTreeMap<u64, Option<u64>>,
    /// The indexes account for every message the statistics count, so a
    /// message record outside a chunk can only be a damaged record.
    all_in_chunks: bool,
    /// Regions the summary places chunks and message indexes in: start ->
    /// (end, opcode).
    layout: BTreeMap<u64, (u64, u8)>,
    /// Where the summary says message index records start.
    index_starts: HashSet<u64>,
    unknown_channel: BTreeMap<u16, u64>,
    unknown_records: Vec<(u64, u8, usize)>,
    parsed: u64,
    skipped: Vec<Skipped>,
}

impl Scan<'_, '_> {
    fn skip(&mut self, offset: Option<u64>, messages: Option<u64>, reason: String) {
        self.skipped.push(Skipped {
            file: self.path.clone(),
            messages,
            offset,
            reason,
        });
    }

    /// The linear pass, resumed at the next indexed chunk after a record
    /// that breaks it. True if some part of the file could not be read.
    fn linear(&mut self, file: &mut File, file_len: u64) -> Result<bool> {
        let mut start = 0;
        let mut broke = false;
        while let Some((at, why)) = self.pass(file, file_len, start)? {
            broke = true;
            let resume = self.summary.and_then(|s| {
                s.chunks
                    .iter()
                    .map(|c| c.chunk_start_offset)
                    .find(|&o| o > at && o < file_len)
            });
            let then = match resume {
                Some(o) => format!("reading resumed at the next indexed chunk, offset {o}"),
                None => "the rest of the file was not read".to_string(),
            };
            self.skip(
                Some(at),
                None,
                format!("corrupt or truncated MCAP ({why}); {then}"),
            );
            match resume {
                Some(o) => start = o,
                None => break,
            }
        }
        Ok(broke)
    }

    /// Reads top-level records from `start` (0: the file's beginning) to the
    /// end. Returns where and why it had to stop early.
    fn pass(
        &mut self,
        file: &mut File,
        file_len: u64,
        start: u64,
    ) -> Result<Option<(u64, String)>> {
        file.seek(SeekFrom::Start(start))
            .map_err(io_err(&self.path))?;
        let mut reader = LinearReader::new_with_options(
            LinearReaderOptions::default()
                .with_skip_start_magic(start != 0)
                .with_emit_chunks(true)
                .with_record_length_limit(RECORD_LIMIT),
        );
        let mut fed = start;
        let mut pos = if start == 0 { MAGIC_LEN } else { start };
        while let Some(event) = reader.next_event() {
            match event {
                Err(e) => return Ok(Some((pos, e.to_string()))),
                Ok(LinearReadEvent::ReadRequest(n)) => {
                    // A length beyond the end of the file is corruption: stop
                    // before allocating for it.
                    let left = file_len.saturating_sub(fed);
                    if n as u64 > left && left > 0 {
                        return Ok(Some((
                            pos,
                            format!("a record needs {n} more bytes, the file has {left}"),
                        )));
                    }
                    let left = usize::try_from(left).unwrap_or(usize::MAX);
                    // Read ahead, but never size the buffer past the file's end.
                    let buf = reader.insert(n.max(256 << 10).min(left.max(1)));
                    let got = file.read(buf).map_err(io_err(&self.path))?;
                    reader.notify_read(got);
                    fed += got as u64;
                }
                Ok(LinearReadEvent::Record { data, opcode }) => {
                    let at = pos;
                    pos += 9 + data.len() as u64;
                    self.top_level(at, opcode, data)?;
                }
            }
        }
        Ok(None)
    }

    /// One top-level record, checked against where the summary places
    /// chunks and message indexes: a record that is not what the index says
    /// is at its offset is a damaged record.
    fn top_level(&mut self, at: u64, opcode: u8, data: &[u8]) -> Result<()> {
        let placed = self
            .layout
            .range(..=at)
            .next_back()
            .filter(|(_, (end, _))| at < *end)
            .map(|(&start, &(_, op))| (start, op));
        let damaged = |what: &str| {
            format!(
                "damaged record (opcode {opcode:#04x}) where the summary places {what}; \
                 not used"
            )
        };
        match placed {
            Some((start, op::CHUNK)) if start == at => {
                if opcode != op::CHUNK {
                    // The chunk's CRC decides whether its body is intact.
                    self.skip(Some(at), Some(0), damaged("a chunk; read as that chunk"));
                }
                self.chunk(at, data)
            }
            Some((_, op::MESSAGE_INDEX))
                if opcode == op::MESSAGE_INDEX && self.index_starts.contains(&at) =>
            {
                Ok(())
            }
            Some((_, op::CHUNK)) => {
                self.skip(Some(at), Some(0), damaged("the inside of a chunk"));
                Ok(())
            }
            Some(_) => {
                self.skip(Some(at), Some(0), damaged("message indexes"));
                Ok(())
            }
            None if opcode == op::CHUNK => self.chunk(at, data),
            None => self.record(opcode, data, at, None),
        }
    }

    /// Reads one chunk record (its body in `data`) with the chunk's CRC
    /// checked before any message is handed on.
    fn chunk(&mut self, at: u64, data: &[u8]) -> Result<()> {
        self.chunks.entry(at).or_default();
        let mut inner = LinearReader::new_with_options(
            LinearReaderOptions::default()
                .with_skip_start_magic(true)
                .with_skip_end_magic(true)
                .with_prevalidate_chunk_crcs(true)
                .with_record_length_limit(RECORD_LIMIT),
        );
        let buf = inner.insert(9 + data.len());
        buf[0] = op::CHUNK;
        buf[1..9].copy_from_slice(&(data.len() as u64).to_le_bytes());
        buf[9..].copy_from_slice(data);
        inner.notify_read(9 + data.len());
        while let Some(event) = inner.next_event() {
            match event {
                Err(e) => {
                    if let Some(c) = self.chunks.get_mut(&at) {
                        c.error = Some(e.to_string());
                    }
                    break;
                }
                // Everything was handed over: asking for more means the
                // chunk is cut short.
                Ok(LinearReadEvent::ReadRequest(_)) => inner.notify_read(0),
                Ok(LinearReadEvent::Record { data, opcode }) => {
                    self.record(opcode, data, at, Some(at))?;
                }
            }
        }
        Ok(())
    }

    /// One record at `at` (inside the chunk at `chunk` if given).
    fn record(&mut self, opcode: u8, data: &[u8], at: u64, chunk: Option<u64>) -> Result<()> {
        let record = match mcap::parse_record(opcode, data) {
            Ok(r) => r,
            Err(e) => {
                let place = match chunk {
                    Some(c) => format!("in the chunk at offset {c}"),
                    None => format!("at offset {at}"),
                };
                let in_chunk = chunk.and_then(|c| self.chunks.get_mut(&c));
                let (lost, what) = match in_chunk {
                    Some(c) if opcode == op::MESSAGE => {
                        c.failed += 1;
                        (Some(1), "its message was not imported")
                    }
                    // Outside chunks a damaged opcode may read as a message:
                    // the statistics decide (see `unexplained_by_statistics`).
                    None if opcode == op::MESSAGE && !self.all_in_chunks => {
                        (None, "if it was a message, it was not imported")
                    }
                    _ => (Some(0), "it holds no message itself"),
                };
                self.skip(
                    Some(at),
                    lost,
                    format!("damaged MCAP record (opcode {opcode:#04x}) {place}: {e}; {what}"),
                );
                return Ok(());
            }
        };
        match record {
            Record::Schema { header, data } => {
                let id = header.id;
                let info = SchemaInfo::new(header, data);
                let known = self
                    .schemas
                    .get(&id)
                    .or_else(|| self.summary.and_then(|s| s.schemas.get(&id)));
                match known {
                    Some(k) if *k != info => self.conflict(at, "schema", id),
                    Some(_) => {}
                    None => {
                        self.schemas.insert(id, info);
                    }
                }
            }
            Record::Channel(c) => {
                let known = self
                    .summary
                    .and_then(|s| s.channels.get(&c.id))
                    .filter(|k| **k != c);
                if known.is_some() || self.channels.get(&c.id).is_some_and(|k| k.raw != c) {
                    self.conflict(at, "channel", c.id);
                } else if !self.channels.contains_key(&c.id) {
                    let info = self.channel_info(&c);
                    self.channels.insert(c.id, info);
                }
            }
            Record::Message { .. } if chunk.is_none() && self.all_in_chunks => {
                self.skip(
                    Some(at),
                    Some(0),
                    "a record outside any chunk reads as a message, but the file's indexes \
                     place every message in a chunk: a damaged record, not imported"
                        .into(),
                );
            }
            Record::Message { header, data } => {
                if let Some(c) = chunk.and_then(|c| self.chunks.get_mut(&c)) {
                    c.parsed += 1;
                }
                self.message(&header, &data)?;
            }
            Record::Metadata(m) => (self.on_meta)(&m),
            Record::Unknown { opcode, data } => {
                self.unknown_records.push((at, opcode, data.len()));
            }
            _ => {}
        }
        Ok(())
    }

    /// A second, different definition of a schema or channel id: a
    /// damaged record (ids are unique in a file). The first (or the
    /// summary's) definition stays.
    fn conflict(&mut self, at: u64, what: &str, id: u16) {
        self.skip(
            Some(at),
            Some(0),
            format!(
                "{what} record redefines {what} id {id} differently: a damaged record, \
                 ignored (the file's first or summary definition is used)"
            ),
        );
    }

    fn channel_info(&self, c: &Channel) -> ChannelInfo {
        let schema = self
            .schemas
            .get(&c.schema_id)
            .or_else(|| self.summary.and_then(|s| s.schemas.get(&c.schema_id)));
        channel_info(c, schema)
    }

    fn message(&mut self, header: &MessageHeader, data: &[u8]) -> Result<()> {
        let id = header.channel_id;
        if !self.channels.contains_key(&id) {
            // The channel record may have been damaged; the summary repeats it.
            let Some(c) = self.summary.and_then(|s| s.channels.get(&id)) else {
                *self.unknown_channel.entry(id).or_insert(0) += 1;
                return Ok(());
            };
            let info = self.channel_info(c);
            self.channels.insert(id, info);
        }
        match self.channels.get(&id) {
            Some(ch) => {
                // Counted as read only when handed on: messages on an
                // unknown channel are counted in their own row.
                self.parsed += 1;
                (self.on_msg)(ch, header, data)
            }
            None => Ok(()),
        }
    }

    /// Reads, through their index entries, the indexed chunks that the
    /// linear pass never met (hidden by a damaged record before them).
    fn read_hidden_chunks(&mut self, file: &mut File, file_len: u64) -> Result<()> {
        let Some(summary) = self.summary else {
            return Ok(());
        };
        for ci in &summary.chunks {
            let at = ci.chunk_start_offset;
            if self.chunks.contains_key(&at) {
                continue;
            }
            // Whatever its opcode says, the chunk's CRC decides.
            let body = match read_record_at(file, file_len, at, ci.chunk_length) {
                Ok(Some((_, body))) => body,
                Ok(None) => continue,
                Err(e) => return Err(io_err(&self.path)(e)),
            };
            self.chunk(at, &body)?;
        }
        Ok(())
    }

    /// Counts the messages of each indexed chunk from its message index
    /// records (read through the chunk index, before the linear pass).
    fn count_indexed(&mut self, file: &mut File, file_len: u64) -> Result<()> {
        let Some(summary) = self.summary else {
            return Ok(());
        };
        for ci in &summary.chunks {
            let n = message_index_count(file, file_len, ci).map_err(io_err(&self.path))?;
            self.expected.insert(ci.chunk_start_offset, n);
            let at = ci.chunk_start_offset;
            self.layout
                .insert(at, (at.saturating_add(ci.chunk_length), op::CHUNK));
            if let Some(&first) = ci.message_index_offsets.values().min() {
                let end = first.saturating_add(ci.message_index_length);
                self.layout.insert(first, (end, op::MESSAGE_INDEX));
                self.index_starts
                    .extend(ci.message_index_offsets.values().copied());
            }
        }
        let indexed: Option<u64> = self.expected.values().copied().sum();
        self.all_in_chunks = !summary.chunks.is_empty()
            && summary
                .stats
                .as_ref()
                .is_some_and(|st| indexed == Some(st.message_count));
        Ok(())
    }
}

fn channel_info(c: &Channel, schema: Option<&SchemaInfo>) -> ChannelInfo {
    let raw = c.clone();
    let mut spec = TopicSpec {
        name: c.topic.clone(),
        serialization_format: c.message_encoding.clone(),
        offered_qos: c
            .metadata
            .get("offered_qos_profiles")
            .cloned()
            .unwrap_or_default(),
        type_hash: c
            .metadata
            .get("topic_type_hash")
            .cloned()
            .unwrap_or_default(),
        ..TopicSpec::default()
    };
    let unusable = match schema {
        None if c.schema_id == 0 => Some("channel has no schema".to_string()),
        None => Some(format!("channel refers to unknown schema {}", c.schema_id)),
        Some(s) if s.encoding != "ros2msg" && s.encoding != "ros2idl" => Some(format!(
            "schema {} has encoding {:?}, only ros2msg and ros2idl are supported",
            s.name, s.encoding
        )),
        Some(_) if c.message_encoding != "cdr" => Some(format!(
            "message encoding {:?}, only cdr is supported",
            c.message_encoding
        )),
        Some(s) => match String::from_utf8(s.data.clone()) {
            Ok(def) => {
                spec.type_name = s.name.clone();
                spec.definition = if s.encoding == "ros2idl"
                    && crate::export::schema_encoding(&def) != "ros2idl"
                {
                    // Bare IDL text: given rosbag2's section header so it is
                    // kept (and exported) as ros2idl.
                    format!("{}\nIDL: {}\n{def}", "=".repeat(80), s.name)
                } else {
                    def
                };
                None
            }
            Err(_) => Some(format!("schema {} is not UTF-8 text", s.name)),
        },
    };
    ChannelInfo {
        spec,
        unusable,
        raw,
    }
}
