//! The summary section of an MCAP file, read through its footer and checked
//! against the summary CRC, and the record-level helpers used to read what
//! it points at.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use mcap::records::{op, Channel, ChunkIndex, Record, SchemaHeader, Statistics};

use super::{MAGIC_LEN, RECORD_LIMIT};

/// Footer record (opcode, length, 20-byte body) plus the end magic.
const FOOTER_AND_MAGIC: u64 = 1 + 8 + 20 + 8;

#[derive(PartialEq, Eq)]
pub(super) struct SchemaInfo {
    pub(super) name: String,
    pub(super) encoding: String,
    pub(super) data: Vec<u8>,
}

impl SchemaInfo {
    pub(super) fn new(header: SchemaHeader, data: std::borrow::Cow<'_, [u8]>) -> SchemaInfo {
        SchemaInfo {
            name: header.name,
            encoding: header.encoding,
            data: data.into_owned(),
        }
    }
}

/// What the summary section says the file holds.
#[derive(Default)]
pub(super) struct Summary {
    pub(super) stats: Option<Statistics>,
    /// Sorted by chunk start offset.
    pub(super) chunks: Vec<ChunkIndex>,
    pub(super) schemas: HashMap<u16, SchemaInfo>,
    pub(super) channels: HashMap<u16, Channel>,
}

/// The summary section through the footer, CRC-checked. `Ok(Ok(None))`:
/// the file has no summary; `Ok(Err(why))`: it is unreadable.
pub(super) fn read_summary(
    file: &mut File,
    file_len: u64,
) -> std::io::Result<std::result::Result<Option<Summary>, String>> {
    if file_len < MAGIC_LEN + FOOTER_AND_MAGIC {
        return Ok(Err("no footer: the file is too short".into()));
    }
    let footer_at = file_len - FOOTER_AND_MAGIC;
    let mut footer = [0u8; FOOTER_AND_MAGIC as usize];
    read_exact_at(file, footer_at, &mut footer)?;
    if footer[29..] != *mcap::MAGIC || footer[0] != op::FOOTER {
        return Ok(Err("no footer record and end magic at the end".into()));
    }
    let summary_start = le_u64(&footer[9..17]);
    let saved_crc = u32::from_le_bytes([footer[25], footer[26], footer[27], footer[28]]);
    if summary_start == 0 {
        return Ok(Ok(None));
    }
    if summary_start < MAGIC_LEN || summary_start > footer_at {
        return Ok(Err(format!(
            "footer points the summary at offset {summary_start}, outside the file"
        )));
    }
    let len = footer_at - summary_start;
    if len > RECORD_LIMIT as u64 {
        return Ok(Err(format!("summary section of {len} bytes is too large")));
    }
    let mut bytes = vec![0u8; len as usize];
    read_exact_at(file, summary_start, &mut bytes)?;
    if saved_crc != 0 {
        let mut h = crc32fast::Hasher::new();
        h.update(&bytes);
        h.update(&footer[..25]);
        let got = h.finalize();
        if got != saved_crc {
            return Ok(Err(format!(
                "summary CRC mismatch: saved {saved_crc:#010x}, computed {got:#010x}"
            )));
        }
    }
    Ok(parse_summary(&bytes, summary_start))
}

fn parse_summary(bytes: &[u8], base: u64) -> std::result::Result<Option<Summary>, String> {
    let mut s = Summary::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        let at = base + (bytes.len() - rest.len()) as u64;
        let (opcode, body, tail) = split_record(rest)
            .ok_or_else(|| format!("summary record at offset {at} runs past the footer"))?;
        rest = tail;
        let record = mcap::parse_record(opcode, body)
            .map_err(|e| format!("summary record at offset {at}: {e}"))?;
        match record {
            Record::Schema { header, data } => {
                s.schemas.insert(header.id, SchemaInfo::new(header, data));
            }
            Record::Channel(c) => {
                s.channels.insert(c.id, c);
            }
            Record::ChunkIndex(ci) => s.chunks.push(ci),
            Record::Statistics(st) => s.stats = Some(st),
            _ => {}
        }
    }
    s.chunks.sort_by_key(|c| c.chunk_start_offset);
    // One entry per chunk, even in a damaged summary without a CRC.
    s.chunks.dedup_by_key(|c| c.chunk_start_offset);
    Ok(Some(s))
}

/// Messages in one chunk by its message index records, if they can all be
/// read where the chunk index says they are.
pub(super) fn message_index_count(
    file: &mut File,
    file_len: u64,
    ci: &ChunkIndex,
) -> std::io::Result<Option<u64>> {
    let Some(&start) = ci.message_index_offsets.values().min() else {
        return Ok(None);
    };
    let len = ci.message_index_length;
    let fits = len <= RECORD_LIMIT as u64 && start.checked_add(len).is_some_and(|e| e <= file_len);
    if !fits {
        return Ok(None);
    }
    let mut bytes = vec![0u8; len as usize];
    read_exact_at(file, start, &mut bytes)?;
    let mut counts: HashMap<u64, u64> = HashMap::new();
    let mut rest = &bytes[..];
    while let Some((opcode, body, tail)) = split_record(rest) {
        let at = start + (bytes.len() - rest.len()) as u64;
        rest = tail;
        if let Ok(Record::MessageIndex(m)) = mcap::parse_record(opcode, body) {
            counts.insert(at, m.records.len() as u64);
        }
    }
    Ok(ci
        .message_index_offsets
        .values()
        .map(|o| counts.get(o).copied())
        .sum())
}

/// Opcode, body and the bytes after one record, if it fits.
fn split_record(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let opcode = *b.first()?;
    let len = usize::try_from(le_u64(b.get(1..9)?)).ok()?;
    let end = 9usize.checked_add(len)?;
    Some((opcode, b.get(9..end)?, b.get(end..)?))
}

/// The record at `at` whose body length an index claims is `len`, if it
/// lies inside the file and says that length itself.
pub(super) fn read_record_at(
    file: &mut File,
    file_len: u64,
    at: u64,
    len: u64,
) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let fits = len >= 9
        && len <= RECORD_LIMIT as u64
        && at >= MAGIC_LEN
        && at.checked_add(len).is_some_and(|end| end <= file_len);
    if !fits {
        return Ok(None);
    }
    let mut bytes = vec![0u8; len as usize];
    read_exact_at(file, at, &mut bytes)?;
    match split_record(&bytes) {
        Some((opcode, body, [])) => Ok(Some((opcode, body.to_vec()))),
        _ => Ok(None),
    }
}

fn read_exact_at(file: &mut File, at: u64, buf: &mut [u8]) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(buf)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}
