//! Payload codecs (table blocks and value-log payloads) and the per-topic
//! choice of whether compressing a topic's large payloads pays.
//!
//! A topic starts by trying its codec on every payload. A payload whose
//! encoding saves less than 1/8 of its size is stored raw (zstd stops as
//! soon as its output passes 7/8 of the input), and the topic then stores raw until every
//! `RESAMPLE_EVERY`-th payload, which is tried again: a camera that switches
//! from raw to compressed images, or the reverse, is followed within that
//! many messages.
//!
//! Compression costs the appending thread 3-7 ms of CPU per MB (zstd level
//! 1, docs/benchmarks.md). A caller that falls behind (the node's writer
//! when its queue fills) pauses it with `set_paused`: payloads are then
//! stored raw and counted as `busy`, and nothing is lost to compression.

use super::types::Codec;
use parking_lot::Mutex;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Raw payloads of a topic between two tries once compression did not pay.
pub const RESAMPLE_EVERY: u32 = 32;
/// zstd level for value-log payloads: the fastest positive level.
const ZSTD_LEVEL: i32 = 1;
/// lz4 cannot expand its input by more than this factor (each extra
/// input byte adds at most 255 bytes of match length).
const LZ4_MAX_RATIO: usize = 256;
/// A decoder never reserves more than this up front; a longer payload
/// grows the buffer as real output arrives.
const MAX_RESERVE: usize = 64 << 20;

/// Decodes `data` that `codec` encoded from `raw_len` bytes. The length is
/// untrusted: nothing is reserved beyond what the input can expand to (lz4)
/// or `MAX_RESERVE` (zstd, streamed and cut one byte past `raw_len`), and
/// any output of another length is refused (None).
pub fn decode(codec: Codec, data: &[u8], raw_len: usize) -> Option<Vec<u8>> {
    match codec {
        Codec::Raw => Some(data.to_vec()),
        Codec::Lz4 if raw_len <= data.len().saturating_mul(LZ4_MAX_RATIO) => {
            lz4_flex::block::decompress(data, raw_len).ok()
        }
        Codec::Lz4 => None,
        Codec::Zstd => zstd_bounded(data, raw_len),
    }
    .filter(|v| v.len() == raw_len)
}

fn zstd_bounded(data: &[u8], raw_len: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let limit = u64::try_from(raw_len).ok()?.checked_add(1)?;
    let mut out = Vec::with_capacity(raw_len.saturating_add(1).min(MAX_RESERVE));
    zstd::stream::read::Decoder::new(data)
        .ok()?
        .take(limit)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

thread_local! {
    static ZSTD: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

/// Encodes `raw` into `out` (cleared first) when that saves at least 1/8
/// of it; false (and `out` unspecified) otherwise.
pub fn encode_if_smaller(codec: Codec, raw: &[u8], out: &mut Vec<u8>) -> bool {
    let budget = raw.len() - raw.len() / 8;
    out.clear();
    match codec {
        Codec::Raw => false,
        Codec::Lz4 => {
            // lz4_flex wants room for its worst case up front.
            out.resize(lz4_flex::block::get_maximum_output_size(raw.len()), 0);
            match lz4_flex::block::compress_into(raw, out) {
                Ok(n) if n < budget => {
                    out.truncate(n);
                    true
                }
                _ => false,
            }
        }
        Codec::Zstd => ZSTD.with(|z| {
            let mut z = z.borrow_mut();
            if z.is_none() {
                *z = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
            }
            let Some(c) = z.as_mut() else {
                return false;
            };
            out.reserve(budget);
            // Fails when the output would not fit in `budget` bytes.
            c.compress_to_buffer(raw, out).is_ok() && out.len() < budget
        }),
    }
}

/// What compression did for one topic since the store opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopicCodecStats {
    /// The codec the topic's next large payload gets (`Raw`: stored raw
    /// until the next try).
    pub codec: Codec,
    /// Large payloads stored encoded, and stored raw.
    pub encoded: u64,
    pub raw: u64,
    /// Of the raw ones, those not tried because compression was paused.
    pub busy: u64,
    /// Their bytes before and after encoding (raw ones count in both).
    pub bytes_in: u64,
    pub bytes_out: u64,
}

#[derive(Clone, Copy, Default)]
struct TopicState {
    stats: TopicCodecStats,
    /// Raw payloads left before the next try (0: try this one).
    skip: u32,
}

/// The per-topic choice for value-log payloads.
pub struct ValueCodecs {
    codec: Codec,
    topics: Mutex<Vec<TopicState>>,
    paused: AtomicBool,
}

impl ValueCodecs {
    pub fn new(codec: Codec) -> ValueCodecs {
        ValueCodecs {
            codec,
            topics: Mutex::new(Vec::new()),
            paused: AtomicBool::new(false),
        }
    }

    /// While paused, large payloads are stored raw without a try.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Encodes `raw` for `topic` into `out` when the topic's state says to
    /// try and the encoding pays; returns the codec used (`Raw`: store
    /// `raw` itself). Encoding runs outside the lock.
    pub fn encode(&self, topic: u32, raw: &[u8], out: &mut Vec<u8>) -> Codec {
        if self.codec == Codec::Raw {
            return Codec::Raw;
        }
        let t = topic as usize;
        let busy = self.paused.load(Ordering::Relaxed);
        let attempt = {
            let mut g = self.topics.lock();
            if g.len() <= t {
                g.resize_with(t + 1, TopicState::default);
            }
            let s = &mut g[t];
            if busy {
                s.stats.busy += 1;
                false
            } else if s.skip == 0 {
                true
            } else {
                s.skip -= 1;
                false
            }
        };
        let encoded = attempt && encode_if_smaller(self.codec, raw, out);
        let mut g = self.topics.lock();
        let s = &mut g[t];
        let n = raw.len() as u64;
        s.stats.bytes_in += n;
        if encoded {
            s.stats.encoded += 1;
            s.stats.bytes_out += out.len() as u64;
            s.stats.codec = self.codec;
            s.skip = 0;
            self.codec
        } else {
            s.stats.raw += 1;
            s.stats.bytes_out += n;
            if attempt {
                s.stats.codec = Codec::Raw;
                s.skip = RESAMPLE_EVERY - 1;
            }
            Codec::Raw
        }
    }

    /// Per topic id; topics that never had a large payload are absent.
    pub fn stats(&self) -> Vec<(u32, TopicCodecStats)> {
        self.topics
            .lock()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.stats.encoded + s.stats.raw > 0)
            .map(|(i, s)| (i as u32, s.stats))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compressible(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i / 64 % 7) as u8).collect()
    }

    fn random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn encoded_payloads_decode_to_the_input_and_lengths_are_checked() {
        let raw = compressible(200_000);
        for codec in [Codec::Lz4, Codec::Zstd] {
            let mut out = Vec::new();
            assert!(encode_if_smaller(codec, &raw, &mut out), "{codec:?}");
            assert!(out.len() < raw.len() / 8, "{codec:?} {}", out.len());
            assert_eq!(decode(codec, &out, raw.len()).as_deref(), Some(&raw[..]));
            assert_eq!(decode(codec, &out, raw.len() - 1), None, "{codec:?}");
            assert_eq!(decode(codec, &out, raw.len() + 1), None, "{codec:?}");
            assert_eq!(decode(codec, &out[..out.len() / 2], raw.len()), None);
        }
        // A length the input cannot reach reserves nothing and fails.
        assert_eq!(decode(Codec::Lz4, &[0u8; 4], u32::MAX as usize), None);
        assert_eq!(decode(Codec::Zstd, &[0u8; 4], u32::MAX as usize), None);
    }

    #[test]
    fn random_bytes_are_never_encoded() {
        let raw = random(100_000, 7);
        for codec in [Codec::Lz4, Codec::Zstd] {
            let mut out = Vec::new();
            assert!(!encode_if_smaller(codec, &raw, &mut out), "{codec:?}");
        }
    }

    #[test]
    fn a_topic_that_does_not_pay_is_stored_raw_and_tried_again_later() {
        let c = ValueCodecs::new(Codec::Zstd);
        let mut out = Vec::new();
        let (good, bad) = (compressible(100_000), random(100_000, 3));
        assert_eq!(c.encode(0, &good, &mut out), Codec::Zstd);
        assert_eq!(c.encode(1, &bad, &mut out), Codec::Raw);
        // Topic 1 is not tried again for RESAMPLE_EVERY - 1 payloads, even
        // compressible ones; the next one is tried and pays.
        for _ in 0..RESAMPLE_EVERY - 1 {
            assert_eq!(c.encode(1, &good, &mut out), Codec::Raw);
        }
        assert_eq!(c.encode(1, &good, &mut out), Codec::Zstd);
        // Topic 0 stops at the first payload that does not pay.
        assert_eq!(c.encode(0, &bad, &mut out), Codec::Raw);
        assert_eq!(c.encode(0, &good, &mut out), Codec::Raw);
        let s = c.stats();
        assert_eq!(s.len(), 2);
        let (t0, t1) = (s[0].1, s[1].1);
        assert_eq!((t0.codec, t0.encoded, t0.raw), (Codec::Raw, 1, 2));
        assert_eq!((t1.codec, t1.encoded, t1.raw), (Codec::Zstd, 1, 32));
        assert_eq!(t0.bytes_in, 300_000);
        assert!(t0.bytes_out > 200_000 && t0.bytes_out < 210_000);
        // Paused: stored raw, counted busy, and the topic's state is kept.
        c.set_paused(true);
        assert_eq!(c.encode(1, &good, &mut out), Codec::Raw);
        c.set_paused(false);
        assert_eq!(c.encode(1, &good, &mut out), Codec::Zstd);
        let t1 = c.stats()[1].1;
        assert_eq!((t1.encoded, t1.raw, t1.busy), (2, 33, 1));
        // Off: nothing is tried, nothing is counted.
        let off = ValueCodecs::new(Codec::Raw);
        assert_eq!(off.encode(0, &good, &mut out), Codec::Raw);
        assert!(off.stats().is_empty());
    }
}
