//! The benchmarks' recording: `bench_play make` writes it and
//! `bench_fleet` pushes it (included by both with `#[path]`).

use std::path::Path;

use motedb::engine::{Options, Store, TopicSpec};

pub const S: u64 = 1_000_000_000;
pub const T0: u64 = 1_700_000_000 * S;
pub const STRING_DEF: &str = "string data\n";

/// std_msgs/msg/String CDR of exactly `size` bytes, its text printable
/// pseudo-random characters from `seed` (xorshift64*), so the store's
/// value-log compression gains little, as with camera images.
pub fn string_cdr(size: usize, seed: u64) -> Vec<u8> {
    let len = size - 8; // header (4) + length (4); len counts the NUL
    let mut b = vec![0, 1, 0, 0];
    b.extend((len as u32).to_le_bytes());
    let mut x = seed | 1;
    for _ in 0..len - 1 {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        b.push(b'!' + (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 58) as u8);
    }
    b.push(0);
    b
}

pub fn make(dir: &Path, seconds: u64) {
    let store = Store::open(dir, Options::default()).expect("open the store");
    let spec = |name: &str| TopicSpec {
        name: name.into(),
        type_name: "std_msgs/msg/String".into(),
        serialization_format: "cdr".into(),
        definition: STRING_DEF.into(),
        offered_qos: "- history: 1\n  depth: 100\n  reliability: 1\n  durability: 2\n".into(),
        ..TopicSpec::default()
    };
    let fast = store.register_topic(spec("/fast_256b")).expect("register");
    let big = store
        .register_topic(spec("/camera_2mib"))
        .expect("register");
    // A few distinct large payloads in turn: realistic sizes on disk
    // without spending the run generating random bytes.
    let small = string_cdr(256, 7);
    let large: Vec<Vec<u8>> = (0..8)
        .map(|i| string_cdr(2 * 1024 * 1024, 11 + i))
        .collect();
    let mut k = 0;
    // Every 1 ms a small message; every 1/30 s a large one, in time order.
    let mut next_big = 0u64;
    for ms in 0..seconds * 1000 {
        let t = ms * 1_000_000;
        while next_big <= t {
            store
                .append(big, T0 + next_big, T0 + next_big, &large[k % large.len()])
                .expect("append");
            k += 1;
            next_big += S / 30;
        }
        store.append(fast, T0 + t, T0 + t, &small).expect("append");
    }
    store.close().expect("close");
}
