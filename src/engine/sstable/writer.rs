//! Table writer: streams sorted entries into blocks, then writes index,
//! bloom filter, meta and footer (layout in docs/format.md), fsyncs, and
//! renames the temp file into place.

use super::bloom::Bloom;
use super::{
    table_path, IndexEntry, TableMeta, CODEC_LZ4, CODEC_NONE, CODEC_ZSTD, FOOTER_LEN, MAGIC,
    VERSION,
};
use crate::engine::codec::{io_err, put_u32, put_u64, put_u8};
use crate::engine::error::{Error, Result};
use crate::engine::fs::{FileSystem, WritableFile};
use crate::engine::types::{encode_entry, put_key, Entry, Key, Value, ValueRef};
use crate::engine::Compression;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Streams sorted entries into a new table file (temp name until finish).
pub struct TableWriter {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    tmp: PathBuf,
    file: Box<dyn WritableFile>,
    compression: Compression,
    block_size: usize,
    offset: u64,
    block: Vec<u8>,
    block_first: Option<Key>,
    block_last: Key,
    block_count: u32,
    index: Vec<IndexEntry>,
    meta: TableMeta,
    last_key: Option<Key>,
    scratch: Vec<u8>,
    /// Blocks left to store uncompressed after an incompressible one.
    skip_compression: u32,
}

/// A block that compresses to more than 15/16 of its size is stored raw,
/// and the next few blocks do not try: noisy sensor data does not
/// compress, and trying costs more CPU than the whole write path.
const INCOMPRESSIBLE_SKIP: u32 = 8;

impl TableWriter {
    pub fn new(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        num: u64,
        compression: Compression,
        block_size: usize,
    ) -> Result<TableWriter> {
        let tmp = dir.join(format!("{num:06}.sst.tmp"));
        let file = fs.create(&tmp).map_err(io_err(&tmp))?;
        Ok(TableWriter {
            fs,
            dir: dir.to_path_buf(),
            tmp,
            file,
            compression,
            block_size: block_size.max(1024),
            offset: 0,
            block: Vec::with_capacity(block_size + 1024),
            block_first: None,
            block_last: Key::MIN,
            block_count: 0,
            index: Vec::new(),
            meta: TableMeta {
                num,
                ..TableMeta::default()
            },
            last_key: None,
            scratch: Vec::new(),
            skip_compression: 0,
        })
    }

    pub fn bytes_written(&self) -> u64 {
        self.offset + self.block.len() as u64
    }

    pub fn current_topic(&self) -> Option<u32> {
        self.last_key.map(|k| k.topic)
    }

    /// Adds an entry; keys must strictly increase.
    pub fn add(&mut self, e: &Entry) -> Result<()> {
        if self.last_key.is_some_and(|k| k >= e.key) {
            return Err(Error::InvalidArgument(format!(
                "table keys out of order at {:?}",
                e.key
            )));
        }
        let topic_change = self.block_first.is_some_and(|f| f.topic != e.key.topic);
        if topic_change || self.block.len() >= self.block_size {
            self.finish_block()?;
        }
        encode_entry(&mut self.block, &e.key, e.publish, ValueRef::from(&e.value));
        if self.block_first.is_none() {
            self.block_first = Some(e.key);
        }
        self.block_last = e.key;
        self.block_count += 1;
        self.last_key = Some(e.key);
        self.meta.entries += 1;
        let range = self.meta.topics.entry(e.key.topic).or_default();
        range.add(e.key.time, ValueRef::from(&e.value));
        if let Value::Ptr(p) = &e.value {
            self.meta.vlogs.insert(p.file);
        }
        Ok(())
    }

    fn write(&mut self, buf: &[u8]) -> Result<()> {
        self.file.append(buf).map_err(io_err(&self.tmp))?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn finish_block(&mut self) -> Result<()> {
        let Some(first) = self.block_first.take() else {
            return Ok(());
        };
        let raw_len = self.block.len() as u32;
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let codec = if self.skip_compression > 0 {
            self.skip_compression -= 1;
            compress(Compression::None, &self.block, &mut out)
        } else {
            let c = compress(self.compression, &self.block, &mut out);
            if c != CODEC_NONE && out.len() > self.block.len() / 16 * 15 {
                out.clear();
                self.skip_compression = INCOMPRESSIBLE_SKIP;
                compress(Compression::None, &self.block, &mut out)
            } else {
                c
            }
        };
        put_u8(&mut out, codec);
        put_u32(&mut out, raw_len);
        let crc = crc32fast::hash(&out);
        put_u32(&mut out, crc);
        self.index.push(IndexEntry {
            first,
            last: self.block_last,
            offset: self.offset,
            len: out.len() as u32,
            count: self.block_count,
        });
        self.write(&out)?;
        self.scratch = out;
        self.block.clear();
        self.block_count = 0;
        Ok(())
    }

    /// Writes index, bloom, meta and footer, fsyncs, renames into place and
    /// fsyncs the directory.
    pub fn finish(mut self) -> Result<TableMeta> {
        self.finish_block()?;
        let mut sections = [(0u64, 0u32, 0u32); 3];
        let index = encode_index(&self.index);
        let mut bloom = Vec::new();
        Bloom::build(self.meta.topics.keys().copied()).encode(&mut bloom);
        let meta = encode_meta(&self.meta);
        for (slot, bytes) in sections.iter_mut().zip([&index, &bloom, &meta]) {
            *slot = (self.offset, bytes.len() as u32, crc32fast::hash(bytes));
            self.write(bytes)?;
        }
        let mut footer = Vec::with_capacity(FOOTER_LEN);
        for (off, len, crc) in sections {
            put_u64(&mut footer, off);
            put_u32(&mut footer, len);
            put_u32(&mut footer, crc);
        }
        put_u64(&mut footer, self.meta.entries);
        put_u32(&mut footer, VERSION);
        let crc = crc32fast::hash(&footer);
        put_u32(&mut footer, crc);
        put_u64(&mut footer, MAGIC);
        self.write(&footer)?;
        self.file.sync().map_err(io_err(&self.tmp))?;
        let path = table_path(&self.dir, self.meta.num);
        self.fs.rename(&self.tmp, &path).map_err(io_err(&path))?;
        self.fs.sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        self.meta.size = self.offset;
        Ok(self.meta)
    }

    /// Removes the temp file of an abandoned table.
    pub fn abandon(self) {
        let _ignored = self.fs.remove(&self.tmp);
    }
}

fn compress(c: Compression, raw: &[u8], out: &mut Vec<u8>) -> u8 {
    match c {
        Compression::None => {
            out.extend_from_slice(raw);
            CODEC_NONE
        }
        Compression::Lz4 => {
            out.extend_from_slice(&lz4_flex::block::compress(raw));
            CODEC_LZ4
        }
        Compression::Zstd => match zstd::bulk::compress(raw, 1) {
            Ok(z) => {
                out.extend_from_slice(&z);
                CODEC_ZSTD
            }
            Err(_) => {
                out.extend_from_slice(raw);
                CODEC_NONE
            }
        },
    }
}

fn encode_index(index: &[IndexEntry]) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + index.len() * 56);
    put_u32(&mut b, index.len() as u32);
    for e in index {
        put_key(&mut b, &e.first);
        put_key(&mut b, &e.last);
        put_u64(&mut b, e.offset);
        put_u32(&mut b, e.len);
        put_u32(&mut b, e.count);
    }
    b
}

fn encode_meta(m: &TableMeta) -> Vec<u8> {
    let mut b = Vec::new();
    put_u32(&mut b, m.topics.len() as u32);
    for (t, r) in &m.topics {
        put_u32(&mut b, *t);
        put_u64(&mut b, r.min_time);
        put_u64(&mut b, r.max_time);
        put_u64(&mut b, r.count);
        put_u64(&mut b, r.bytes);
    }
    put_u32(&mut b, m.vlogs.len() as u32);
    for v in &m.vlogs {
        put_u64(&mut b, *v);
    }
    // Only topics with encoded payloads, and only when there are any:
    // tables of stores without compression keep the older layout.
    let coded: Vec<_> = m.topics.iter().filter(|(_, r)| r.encoded()).collect();
    if !coded.is_empty() {
        put_u32(&mut b, coded.len() as u32);
        for (t, r) in coded {
            put_u32(&mut b, *t);
            put_u64(&mut b, r.stored);
            put_u64(&mut b, r.lz4);
            put_u64(&mut b, r.zstd);
        }
    }
    b
}
