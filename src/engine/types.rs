//! Internal record representation shared by WAL, memtable and SSTables.

use super::codec::{put_u32, put_u64, put_u8, Dec};

/// Tree key: records sort by (topic, log_time, sequence).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Key {
    pub topic: u32,
    pub time: u64,
    pub seq: u64,
}

impl Key {
    pub const MIN: Key = Key {
        topic: 0,
        time: 0,
        seq: 0,
    };
    pub const MAX: Key = Key {
        topic: u32::MAX,
        time: u64::MAX,
        seq: u64::MAX,
    };
    pub fn new(topic: u32, time: u64, seq: u64) -> Key {
        Key { topic, time, seq }
    }
}

/// Where a large payload lives in a value-log file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VPtr {
    pub file: u64,
    /// Offset of the payload (after the entry header).
    pub offset: u64,
    /// Bytes stored in the value log (after compression).
    pub len: u32,
    /// crc32 of the stored bytes.
    pub crc: u32,
    /// How the stored bytes are encoded (`Codec`).
    pub codec: Codec,
    /// Payload size once decoded (`len` when stored raw).
    pub raw_len: u32,
}

/// Encoding of a value-log payload. The byte values are on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Codec {
    #[default]
    Raw = 0,
    Lz4 = 1,
    Zstd = 2,
}

impl Codec {
    pub fn from_u8(b: u8) -> Option<Codec> {
        match b {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Lz4),
            2 => Some(Codec::Zstd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Raw => "raw",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Inline(Vec<u8>),
    Ptr(VPtr),
}

impl Value {
    /// Logical payload size.
    pub fn payload_len(&self) -> u64 {
        match self {
            Value::Inline(v) => v.len() as u64,
            Value::Ptr(p) => u64::from(p.raw_len),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: Key,
    pub publish: u64,
    pub value: Value,
}

const VALUE_INLINE: u8 = 0;
const VALUE_PTR: u8 = 1;
const VALUE_PTR_CODED: u8 = 2;

/// The one encoding of a key: `topic u32 | log_time u64 | seq u64` (WAL
/// and table entries, index entries, value-log headers, cursors).
pub fn put_key(buf: &mut Vec<u8>, k: &Key) {
    put_u32(buf, k.topic);
    put_u64(buf, k.time);
    put_u64(buf, k.seq);
}

/// Decodes what `put_key` wrote.
pub fn take_key(d: &mut Dec<'_>) -> Option<Key> {
    Some(Key::new(d.u32()?, d.u64()?, d.u64()?))
}

/// Encodes an entry: topic u32 | log_time u64 | seq u64 | publish u64 |
/// kind u8 | (0, inline: len u32, bytes) or (1, raw ptr: file u64, offset
/// u64, len u32, crc u32) or (2, coded ptr: the same, then codec u8 |
/// raw_len u32). Same layout in WAL frames and SSTable blocks; a raw
/// pointer is written as kind 1, so stores without compression keep the
/// old bytes.
pub fn encode_entry(buf: &mut Vec<u8>, key: &Key, publish: u64, value: ValueRef<'_>) {
    put_key(buf, key);
    put_u64(buf, publish);
    match value {
        ValueRef::Inline(b) => {
            put_u8(buf, VALUE_INLINE);
            put_u32(buf, b.len() as u32);
            buf.extend_from_slice(b);
        }
        ValueRef::Ptr(p) => {
            let coded = p.codec != Codec::Raw;
            put_u8(buf, if coded { VALUE_PTR_CODED } else { VALUE_PTR });
            put_u64(buf, p.file);
            put_u64(buf, p.offset);
            put_u32(buf, p.len);
            put_u32(buf, p.crc);
            if coded {
                put_u8(buf, p.codec as u8);
                put_u32(buf, p.raw_len);
            }
        }
    }
}

/// Borrowed value for encoding without copying the payload.
#[derive(Clone, Copy)]
pub enum ValueRef<'a> {
    Inline(&'a [u8]),
    Ptr(VPtr),
}

impl<'a> From<&'a Value> for ValueRef<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Inline(b) => ValueRef::Inline(b),
            Value::Ptr(p) => ValueRef::Ptr(*p),
        }
    }
}

/// Decodes one entry; None when the bytes are short or malformed.
pub fn decode_entry(d: &mut Dec<'_>) -> Option<Entry> {
    let key = take_key(d)?;
    let publish = d.u64()?;
    let value = match d.u8()? {
        VALUE_INLINE => Value::Inline(d.bytes()?.to_vec()),
        kind @ (VALUE_PTR | VALUE_PTR_CODED) => {
            let (file, offset, len, crc) = (d.u64()?, d.u64()?, d.u32()?, d.u32()?);
            let (codec, raw_len) = if kind == VALUE_PTR {
                (Codec::Raw, len)
            } else {
                // A coded pointer never says raw: one encoding per value.
                match Codec::from_u8(d.u8()?)? {
                    Codec::Raw => return None,
                    c => (c, d.u32()?),
                }
            };
            Value::Ptr(VPtr {
                file,
                offset,
                len,
                crc,
                codec,
                raw_len,
            })
        }
        _ => return None,
    };
    Some(Entry {
        key,
        publish,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip_inline_and_pointer() {
        let mut buf = Vec::new();
        let k = Key::new(3, 44, 5);
        encode_entry(&mut buf, &k, 7, ValueRef::Inline(b"abc"));
        let p = VPtr {
            file: 9,
            offset: 10,
            len: 11,
            crc: 12,
            codec: Codec::Raw,
            raw_len: 11,
        };
        encode_entry(&mut buf, &k, 8, ValueRef::Ptr(p));
        let z = VPtr {
            codec: Codec::Zstd,
            raw_len: 1000,
            ..p
        };
        encode_entry(&mut buf, &k, 9, ValueRef::Ptr(z));
        let mut d = Dec::new(&buf);
        let a = decode_entry(&mut d).unwrap();
        assert_eq!(a.value, Value::Inline(b"abc".to_vec()));
        let b = decode_entry(&mut d).unwrap();
        assert_eq!(b.value, Value::Ptr(p));
        let c = decode_entry(&mut d).unwrap();
        assert_eq!(c.value, Value::Ptr(z));
        assert_eq!(c.value.payload_len(), 1000);
        assert!(d.is_empty());
        assert!(decode_entry(&mut Dec::new(&buf[..10])).is_none());
    }

    #[test]
    fn a_raw_pointer_keeps_the_old_bytes_and_a_bad_codec_is_refused() {
        let k = Key::new(1, 2, 3);
        let p = VPtr {
            file: 4,
            offset: 5,
            len: 6,
            crc: 7,
            codec: Codec::Raw,
            raw_len: 6,
        };
        let mut buf = Vec::new();
        encode_entry(&mut buf, &k, 8, ValueRef::Ptr(p));
        // kind 1 and no codec bytes: what stores before compression wrote.
        assert_eq!(buf.len(), 28 + 1 + 24);
        assert_eq!(buf[28], 1);
        for codec in [0u8, 3, 255] {
            let mut bad = buf.clone();
            bad[28] = 2;
            bad.push(codec);
            bad.extend_from_slice(&6u32.to_le_bytes());
            assert!(decode_entry(&mut Dec::new(&bad)).is_none(), "codec {codec}");
        }
    }
}
