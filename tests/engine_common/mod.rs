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

/// `xorshift_bytes`, or when `compressible` the same bytes each repeated 8
/// times (cut to `len`): value-log compression saves about 7/8 of those, so
/// tests that mix both see payloads stored encoded and stored raw.
#[allow(dead_code)] // each test binary compiles this module; not all use it
pub fn mixed_bytes(seed: u64, len: usize, compressible: bool) -> Vec<u8> {
    if !compressible {
        return xorshift_bytes(seed, len);
    }
    xorshift_bytes(seed, len.div_ceil(8))
        .into_iter()
        .flat_map(|b| [b; 8])
        .take(len)
        .collect()
}
