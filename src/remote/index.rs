//! The index of a remote store: which chunk objects make up each file, with
//! their checksums, and a summary for listings. One JSON object, replaced
//! whole by each push after all the chunks it names are uploaded.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{RemoteError, Result};

pub const FORMAT: &str = "motedb-remote/1";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub format: String,
    /// Counts pushes that changed something; each index names a new one.
    pub generation: u64,
    /// Wall-clock ns of the push.
    pub pushed_at_ns: u64,
    /// `host:path` of the local store.
    pub source: String,
    /// The local store's id (its `motedb-offload.id` file): a push trusts
    /// the previous index's files and archive only when it names the same
    /// store (not one made again at the same path).
    #[serde(default)]
    pub store_id: String,
    pub files: BTreeMap<String, RemoteFile>,
    pub summary: Summary,
    /// Chunk objects no longer named, with the wall-clock ns they were
    /// retired at: deleted once retired longer than the push's
    /// `keep_retired_for`, so readers that loaded an older index keep
    /// working meanwhile.
    #[serde(default)]
    pub retired: BTreeMap<String, u64>,
    /// Files of the copy that local retention dropped (also in `files`;
    /// listed at level 0 in the copy's manifest): kept by every push.
    #[serde(default)]
    pub archived: std::collections::BTreeSet<String>,
}

/// A file of the store: its size and the chunks covering `[0, size)` in
/// order, without gaps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteFile {
    pub size: u64,
    pub chunks: Vec<Chunk>,
    /// The local file's device, inode and modification time at the push
    /// (lets the next push trust a table it saw without reading it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub local: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub offset: u64,
    pub len: u64,
    /// crc32 (IEEE) of the chunk's bytes.
    pub crc32: u32,
}

impl Chunk {
    /// The object key below the store's prefix: named by its content, so a
    /// changed range never overwrites an object an older index names.
    pub fn key(&self, file: &str) -> String {
        format!(
            "chunks/{file}/{:016x}-{:x}-{:08x}",
            self.offset, self.len, self.crc32
        )
    }

    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// What the store held at the push: for `motedb fleet ls` without opening it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub messages: u64,
    /// Payload bytes as published.
    pub payload_bytes: u64,
    pub first_ns: Option<u64>,
    pub last_ns: Option<u64>,
    pub topics: Vec<TopicSummary>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSummary {
    pub name: String,
    pub type_name: String,
    pub messages: u64,
    pub first_ns: Option<u64>,
    pub last_ns: Option<u64>,
}

impl Index {
    pub fn parse(bytes: &[u8], url: &str) -> Result<Index> {
        let bad = |detail: String| RemoteError::Corrupt {
            url: url.to_string(),
            key: super::INDEX.to_string(),
            detail,
        };
        // The format first: a newer index may have other fields.
        #[derive(Deserialize)]
        struct Head {
            format: String,
        }
        let head: Head =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not a motedb index: {e}")))?;
        if head.format != FORMAT {
            return Err(bad(format!(
                "format {:?}; this version of motedb reads {FORMAT:?}",
                head.format
            )));
        }
        let ix: Index =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not a motedb index: {e}")))?;
        for (name, f) in &ix.files {
            let mut at = 0;
            for c in &f.chunks {
                if c.offset != at || c.len == 0 {
                    return Err(RemoteError::Corrupt {
                        url: url.to_string(),
                        key: super::INDEX.to_string(),
                        detail: format!("file {name}: chunk at {} does not follow {at}", c.offset),
                    });
                }
                at = c.end();
            }
            if at != f.size {
                return Err(RemoteError::Corrupt {
                    url: url.to_string(),
                    key: super::INDEX.to_string(),
                    detail: format!("file {name}: chunks cover {at} of {} bytes", f.size),
                });
            }
        }
        Ok(ix)
    }

    /// Every chunk object key the index names, below the prefix.
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        chunk_keys(&self.files)
    }
}

/// Every chunk object key of `files`, below the prefix.
pub fn chunk_keys(files: &BTreeMap<String, RemoteFile>) -> impl Iterator<Item = String> + '_ {
    files
        .iter()
        .flat_map(|(name, f)| f.chunks.iter().map(move |c| c.key(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(chunks: &[(u64, u64)], size: u64) -> RemoteFile {
        RemoteFile {
            size,
            chunks: chunks
                .iter()
                .map(|&(offset, len)| Chunk {
                    offset,
                    len,
                    crc32: 7,
                })
                .collect(),
            local: String::new(),
        }
    }

    fn index(f: RemoteFile) -> Vec<u8> {
        let mut ix = Index {
            format: FORMAT.into(),
            ..Index::default()
        };
        ix.files.insert("000001.sst".into(), f);
        serde_json::to_vec(&ix).expect("json")
    }

    #[test]
    fn parse_accepts_contiguous_chunks_and_refuses_holes_overlaps_and_short_cover() {
        assert!(Index::parse(&index(file(&[(0, 5), (5, 3)], 8)), "u").is_ok());
        for bad in [
            file(&[(0, 5), (6, 3)], 9),
            file(&[(0, 5), (4, 3)], 7),
            file(&[(0, 5)], 8),
            file(&[(0, 0)], 0),
        ] {
            let e = Index::parse(&index(bad), "u").expect_err("refused");
            assert!(e.to_string().contains("000001.sst"), "{e}");
        }
        let e = Index::parse(b"{\"format\":\"other/9\"}", "u").expect_err("format");
        assert!(e.to_string().contains("other/9"), "{e}");
        assert!(Index::parse(b"garbage", "u").is_err());
    }

    #[test]
    fn chunk_keys_name_offset_length_and_checksum() {
        let c = Chunk {
            offset: 0x10,
            len: 0x20,
            crc32: 0xabc,
        };
        assert_eq!(
            c.key("wal-000003.log"),
            "chunks/wal-000003.log/0000000000000010-20-00000abc"
        );
    }
}
