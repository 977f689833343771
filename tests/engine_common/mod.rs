//! Helpers shared by the engine integration tests.

/// `len` deterministic pseudo-random bytes (xorshift64) from `seed`, so a
/// test can recompute any payload from its key and compare it byte for byte.
pub fn xorshift_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
