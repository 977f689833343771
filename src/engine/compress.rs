//! Payload codecs (table blocks and value-log payloads) and the per-topic
//! choice of whether compressing a topic's large payloads pays.
//!
//! A topic starts by trying its codec on every payload. A payload whose
//! encoding saves less than 1/8 of its size is stored raw (zstd stops as
//! soon as its output would pass 7/8 of the input), and the topic then
//! stores raw until every `RESAMPLE_EVERY`-th payload, which is tried
//! again: a camera that switches from raw to compressed images, or the
//! reverse, is followed within that many messages.
//!
//! Ingest with zstd level 1 costs 2.5-6.5 ms of CPU per MB (0.7-0.85 raw;
//! `bench_engine compression` in docs/benchmarks.md). A caller that
//! falls behind (the node's writer when its queue fills) pauses it with
//! `set_paused`: payloads are then stored raw and counted as `busy`.

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
/// An encoding buffer larger than this is dropped before the next payload
/// when that payload needs a quarter of it or less.
const MAX_KEPT: usize = 64 << 20;

/// Decodes `data` that `codec` encoded from `raw_len` bytes. The length is
/// untrusted: nothing is reserved beyond what the input can expand to
/// (lz4), or beyond `MAX_RESERVE` and only when the zstd frame header
/// declares the same length (zstd is streamed and cut one byte past
/// `raw_len`); any output of another length is refused (None).
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
    // Reserve the whole output only when the frame header says the same
    // length (and never past MAX_RESERVE); otherwise grow with the output.
    let declared = zstd::zstd_safe::get_frame_content_size(data).ok().flatten();
    let reserve = if declared == Some(limit - 1) {
        raw_len.saturating_add(1).min(MAX_RESERVE)
    } else {
        0
    };
    let mut out = Vec::with_capacity(reserve);
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

/// Encodes `raw` into the front of `out` when that saves at least 1/8 of
/// it; returns the encoded length (`out` may be longer), or None. `out` is
/// reused: it grows (zero-filled once) and is given back only after an
/// outsized payload (over `MAX_KEPT` and 4x what this one needs), so topics
/// of different sizes do not make it shrink and grow per message.
pub fn encode_if_smaller(codec: Codec, raw: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    // Stored only when the encoding is at most this long.
    let budget = raw.len() - raw.len() / 8;
    let room = match codec {
        Codec::Raw => return None,
        // lz4_flex wants room for its worst case up front.
        Codec::Lz4 => lz4_flex::block::get_maximum_output_size(raw.len()),
        // zstd stops as soon as its output would not fit.
        Codec::Zstd => budget,
    };
    if out.len() > room.saturating_mul(4).max(MAX_KEPT) {
        *out = Vec::new();
    }
    if out.len() < room {
        out.resize(room, 0);
    }
    let n = match codec {
        Codec::Raw => return None,
        Codec::Lz4 => lz4_flex::block::compress_into(raw, &mut out[..room]).ok()?,
        Codec::Zstd => ZSTD.with(|z| {
            let mut z = z.borrow_mut();
            if z.is_none() {
                *z = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
            }
            z.as_mut()?.compress_to_buffer(raw, &mut out[..room]).ok()
        })?,
    };
    (n <= budget).then_some(n)
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

    /// Encodes `raw` for `topic` into the front of `out` when the topic's
    /// state says to try and the encoding pays; returns the codec used and
    /// the encoded length (`Raw`: store `raw` itself). Encoding runs
    /// outside the lock. The caller checks that `topic` exists.
    pub fn encode(&self, topic: u32, raw: &[u8], out: &mut Vec<u8>) -> (Codec, usize) {
        if self.codec == Codec::Raw {
            return (Codec::Raw, raw.len());
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
        let encoded = if attempt {
            encode_if_smaller(self.codec, raw, out)
        } else {
            None
        };
        let mut g = self.topics.lock();
        let s = &mut g[t];
        let n = raw.len() as u64;
        s.stats.bytes_in += n;
        if let Some(len) = encoded {
            s.stats.encoded += 1;
            s.stats.bytes_out += len as u64;
            s.stats.codec = self.codec;
            s.skip = 0;
            (self.codec, len)
        } else {
            s.stats.raw += 1;
            s.stats.bytes_out += n;
            if attempt {
                s.stats.codec = Codec::Raw;
                s.skip = RESAMPLE_EVERY - 1;
            }
            (Codec::Raw, raw.len())
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
        crate::engine::tests::noise(seed, n)
    }

    #[test]
    fn encoded_payloads_decode_to_the_input_and_lengths_are_checked() {
        let raw = compressible(200_000);
        // The buffer is reused, also after a larger payload.
        let mut out = vec![0u8; 1 << 20];
        for codec in [Codec::Lz4, Codec::Zstd] {
            let n = encode_if_smaller(codec, &raw, &mut out).expect("compresses");
            let enc = &out[..n];
            assert!(n < raw.len() / 8, "{codec:?} {n}");
            assert_eq!(decode(codec, enc, raw.len()).as_deref(), Some(&raw[..]));
            assert_eq!(decode(codec, enc, raw.len() - 1), None, "{codec:?}");
            assert_eq!(decode(codec, enc, raw.len() + 1), None, "{codec:?}");
            assert_eq!(decode(codec, &enc[..n / 2], raw.len()), None);
        }
        // A length the input cannot reach fails.
        assert_eq!(decode(Codec::Lz4, &[0u8; 4], u32::MAX as usize), None);
        assert_eq!(decode(Codec::Zstd, &[0u8; 4], u32::MAX as usize), None);
    }

    #[test]
    fn a_saving_of_a_quarter_is_stored_and_decodes() {
        for n in [64 << 10, 200_000] {
            let raw = random(n, 11);
            let mut out = Vec::new();
            // Every fourth 64-byte run zeroed: saves about 1/4 with both
            // codecs, so it is stored encoded, and decodes to the input.
            let quarter: Vec<u8> = raw
                .iter()
                .enumerate()
                .map(|(i, b)| if i / 64 % 4 == 0 { 0 } else { *b })
                .collect();
            for codec in [Codec::Lz4, Codec::Zstd] {
                let len = encode_if_smaller(codec, &quarter, &mut out).expect("pays");
                assert_eq!(decode(codec, &out[..len], n).as_deref(), Some(&quarter[..]));
            }
        }
    }

    #[test]
    fn random_bytes_are_never_encoded() {
        let raw = random(100_000, 7);
        for codec in [Codec::Lz4, Codec::Zstd] {
            let mut out = Vec::new();
            assert_eq!(encode_if_smaller(codec, &raw, &mut out), None, "{codec:?}");
        }
    }

    #[test]
    fn a_topic_that_does_not_pay_is_stored_raw_and_tried_again_later() {
        let c = ValueCodecs::new(Codec::Zstd);
        let mut out = Vec::new();
        let (good, bad) = (compressible(100_000), random(100_000, 3));
        assert_eq!(c.encode(0, &good, &mut out).0, Codec::Zstd);
        assert_eq!(c.encode(1, &bad, &mut out).0, Codec::Raw);
        // Topic 1 is not tried again for RESAMPLE_EVERY - 1 payloads, even
        // compressible ones; the next one is tried and pays.
        for _ in 0..RESAMPLE_EVERY - 1 {
            assert_eq!(c.encode(1, &good, &mut out).0, Codec::Raw);
        }
        assert_eq!(c.encode(1, &good, &mut out).0, Codec::Zstd);
        // Topic 0 stops at the first payload that does not pay.
        assert_eq!(c.encode(0, &bad, &mut out).0, Codec::Raw);
        assert_eq!(c.encode(0, &good, &mut out).0, Codec::Raw);
        let s = c.stats();
        assert_eq!(s.len(), 2);
        let (t0, t1) = (s[0].1, s[1].1);
        assert_eq!((t0.codec, t0.encoded, t0.raw), (Codec::Raw, 1, 2));
        assert_eq!((t1.codec, t1.encoded, t1.raw), (Codec::Zstd, 1, 32));
        assert_eq!(t0.bytes_in, 300_000);
        assert!(t0.bytes_out > 200_000 && t0.bytes_out < 210_000);
        // Paused: stored raw, counted busy, and the topic's state is kept.
        c.set_paused(true);
        assert_eq!(c.encode(1, &good, &mut out).0, Codec::Raw);
        c.set_paused(false);
        assert_eq!(c.encode(1, &good, &mut out).0, Codec::Zstd);
        let t1 = c.stats()[1].1;
        assert_eq!((t1.encoded, t1.raw, t1.busy), (2, 33, 1));
        // Off: nothing is tried, nothing is counted.
        let off = ValueCodecs::new(Codec::Raw);
        assert_eq!(off.encode(0, &good, &mut out).0, Codec::Raw);
        assert!(off.stats().is_empty());
    }
}
