//! Helpers shared by the store-backed export and CLI tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use motedb::engine::{Options, Store, TopicSpec};

pub const S: u64 = 1_000_000_000;
pub const T0: u64 = 1_700_000_000 * S;
pub const QOS: &str = "- history: 1\n  depth: 10\n  reliability: 1\n  durability: 2\n  deadline:\n    sec: 0\n    nsec: 0\n  lifespan:\n    sec: 0\n    nsec: 0\n  liveliness: 1\n  liveliness_lease_duration:\n    sec: 0\n    nsec: 0\n  avoid_ros_namespace_conventions: false\n";

pub fn string_spec() -> TopicSpec {
    TopicSpec {
        name: "/chatter".into(),
        type_name: "std_msgs/msg/String".into(),
        serialization_format: "cdr".into(),
        definition: "string data\n".into(),
        offered_qos: QOS.into(),
        // std_msgs/msg/String's hash in Jazzy: stores written by the
        // tests carry one (manifest tag 12) through rewrites and reopens.
        type_hash: "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18".into(),
    }
}

pub fn int_spec() -> TopicSpec {
    TopicSpec {
        name: "/count".into(),
        type_name: "std_msgs/msg/Int32".into(),
        serialization_format: "cdr".into(),
        definition: "int32 data\n".into(),
        offered_qos: String::new(),
        type_hash: String::new(),
    }
}

pub fn string_cdr(s: &str) -> Vec<u8> {
    let mut b = vec![0, 1, 0, 0];
    b.extend((s.len() as u32 + 1).to_le_bytes());
    b.extend(s.as_bytes());
    b.push(0);
    b
}

pub fn int_cdr(v: i32) -> Vec<u8> {
    let mut b = vec![0, 1, 0, 0];
    b.extend(v.to_le_bytes());
    b
}

pub fn small_options() -> Options {
    Options {
        memtable_bytes: 1 << 20,
        ..Options::default()
    }
}

/// A store with `n` messages on /chatter and /count each, 10 Hz from T0,
/// /count offset by 50 ms.
pub fn make_store(dir: &Path, n: u64) -> PathBuf {
    let path = dir.join("store");
    let store = Store::open(&path, small_options()).unwrap();
    let a = store.register_topic(string_spec()).unwrap();
    let b = store.register_topic(int_spec()).unwrap();
    for i in 0..n {
        let t = T0 + i * S / 10;
        store
            .append(a, t, t - 1000, &string_cdr(&format!("hello {i}")))
            .unwrap();
        store
            .append(b, t + S / 20, t + S / 20 - 1000, &int_cdr(i as i32))
            .unwrap();
    }
    store.close().unwrap();
    path
}

/// A store holding `mib` MiB of 4 KiB /blob messages.
pub fn make_big_store(dir: &Path, mib: u64) -> PathBuf {
    let path = dir.join(format!("big{mib}"));
    let store = Store::open(&path, small_options()).unwrap();
    let spec = TopicSpec {
        name: "/blob".into(),
        type_name: "std_msgs/msg/UInt8MultiArray".into(),
        serialization_format: "cdr".into(),
        definition: String::new(),
        offered_qos: String::new(),
        type_hash: String::new(),
    };
    let id = store.register_topic(spec).unwrap();
    let mut payload = vec![0u8; 4096];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..mib * 256 {
        // xorshift noise: incompressible, like sensor data at its worst
        for chunk in payload.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        store.append(id, T0 + i * 1_000_000, 0, &payload).unwrap();
    }
    store.close().unwrap();
    path
}

pub fn motedb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_motedb"))
        .args(args)
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
