//! Bloom filter over topic ids. Hash: xxh3_64 of the topic id as 4 LE
//! bytes (seed 0); probe i sets bit (h1 + i * h2) mod m with h1 = low 32
//! bits, h2 = high 32 bits | 1. On disk: k u8 | m_bits u32 | bitmap bytes.

use crate::engine::codec::{put_u32, put_u8, Dec};
use xxhash_rust::xxh3::xxh3_64;

const BITS_PER_KEY: usize = 10;
const PROBES: u8 = 7;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bloom {
    k: u8,
    m: u32,
    bits: Vec<u8>,
}

fn probes(topic: u32, k: u8, m: u32) -> impl Iterator<Item = usize> {
    let h = xxh3_64(&topic.to_le_bytes());
    let h1 = h as u32;
    let h2 = ((h >> 32) as u32) | 1;
    (0..u32::from(k)).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % m) as usize)
}

impl Bloom {
    pub fn build(topics: impl ExactSizeIterator<Item = u32>) -> Bloom {
        let m = (topics.len() * BITS_PER_KEY).max(64) as u32;
        let mut bits = vec![0u8; m.div_ceil(8) as usize];
        for t in topics {
            for bit in probes(t, PROBES, m) {
                if let Some(b) = bits.get_mut(bit / 8) {
                    *b |= 1 << (bit % 8);
                }
            }
        }
        Bloom { k: PROBES, m, bits }
    }

    pub fn may_contain(&self, topic: u32) -> bool {
        if self.m == 0 {
            return true;
        }
        probes(topic, self.k, self.m).all(|bit| {
            self.bits
                .get(bit / 8)
                .is_some_and(|b| b & (1 << (bit % 8)) != 0)
        })
    }

    pub fn encode(&self, buf: &mut Vec<u8>) {
        put_u8(buf, self.k);
        put_u32(buf, self.m);
        buf.extend_from_slice(&self.bits);
    }

    pub fn decode(data: &[u8]) -> Option<Bloom> {
        let mut d = Dec::new(data);
        let k = d.u8()?;
        let m = d.u32()?;
        let bits = d.take(m.div_ceil(8) as usize)?.to_vec();
        Some(Bloom { k, m, bits })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bloom_has_no_false_negatives_and_few_false_positives() {
        let topics: Vec<u32> = (0..100).map(|i| i * 3).collect();
        let b = Bloom::build(topics.iter().copied());
        let mut enc = Vec::new();
        b.encode(&mut enc);
        let b = Bloom::decode(&enc).unwrap();
        assert!(topics.iter().all(|t| b.may_contain(*t)));
        let fp = (0..3000u32)
            .filter(|t| t % 3 != 0 && b.may_contain(*t))
            .count();
        assert!(fp < 100, "false positives {fp}");
    }

    const PINNED_XXH3_OF_7: u64 = 6_318_062_648_460_624_204;

    #[test]
    fn bloom_hash_is_stable() {
        // Pinned so a change of hash function breaks old files loudly here.
        assert_eq!(xxh3_64(&7u32.to_le_bytes()), PINNED_XXH3_OF_7);
    }
}
