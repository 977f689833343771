//! The `motedb` binary on real stores: outputs, exit codes, bag export and
//! import, read-only fallback, and a write failure during export.

#[cfg(test)]
mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;

use common::*;
use motedb::engine::{NewMark, Store, TopicSpec};

#[cfg(test)]
fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn info_and_topics_report_counts_and_rates() {
    let dir = tempfile::tempdir().unwrap();
    let store = make_store(dir.path(), 50);
    let o = motedb(&["info", s(&store)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("Messages:          100"), "{text}");
    assert!(
        text.contains("Topic: /chatter | Type: std_msgs/msg/String | Count: 50"),
        "{text}"
    );
    assert!(text.contains("Rate: 10.00 Hz"), "{text}");

    let o = motedb(&["--json", "info", s(&store)]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["message_count"], 100);
    assert_eq!(v["start"], T0);
    assert_eq!(v["end"], T0 + 49 * S / 10 + S / 20);
    assert_eq!(v["topics"].as_array().unwrap().len(), 2);

    let o = motedb(&["--json", "topics", s(&store)]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"/chatter") && names.contains(&"/count"));
}

#[test]
fn cat_decodes_with_stored_definition_and_time_filters() {
    let dir = tempfile::tempdir().unwrap();
    let store = make_store(dir.path(), 50);
    let o = motedb(&["cat", s(&store), "/chatter", "--limit", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "data: hello 0\n---\ndata: hello 1\n---\n");

    let start = format!("{}.5", T0 / S + 1); // T0 + 1.5 s
    let o = motedb(&[
        "cat",
        s(&store),
        "/count",
        "--format",
        "json",
        "--start",
        &start,
        "--end",
        "-2s",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // /count at T0 + i*0.1 s + 0.05 s; start 1.5 s -> i >= 15;
    // end = last (4.95 s) - 2 s = 2.95 s, exclusive -> i <= 28
    assert_eq!(lines.first().unwrap()["message"]["data"], 15);
    assert_eq!(lines.last().unwrap()["message"]["data"], 28);
    assert_eq!(lines[0]["log_time"], T0 + 15 * S / 10 + S / 20);

    let o = motedb(&[
        "cat",
        s(&store),
        "/chatter",
        "--start",
        "1970-01-01T00:00:00Z",
        "--end",
        "+0.2s",
    ]);
    assert_eq!(stdout(&o).matches("---").count(), 2);
}

#[test]
fn errors_have_meaningful_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let store = make_store(dir.path(), 5);
    let o = motedb(&["info", s(&dir.path().join("missing"))]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("no store at"));
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for cmd in ["info", "topics", "verify", "du", "compact"] {
        let o = motedb(&[cmd, s(&empty)]);
        assert_eq!(o.status.code(), Some(4), "{cmd}");
    }
    assert!(entries(&empty).is_empty(), "read commands created files");
    let o = motedb(&["cat", s(&store), "/nope"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("motedb topics"), "{}", stderr(&o));
    let o = motedb(&["cat", s(&store), "/chatter", "--start", "yesterday"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("RFC 3339"));
    let o = motedb(&["export", s(&store), s(&store)]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("already exists"));
    let o = motedb(&[
        "export",
        s(&store),
        s(&dir.path().join("b")),
        "--topic",
        "/nope",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert!(!dir.path().join("b").exists());
    let o = motedb(&[
        "export",
        s(&store),
        s(&dir.path().join("r")),
        "--start",
        "+2s",
        "--end",
        "+1s",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("empty time range"), "{}", stderr(&o));
    assert!(!dir.path().join("r").exists());
    let o = motedb(&["bogus"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn export_then_import_round_trips_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let store = make_store(dir.path(), 200);
    let bag = dir.path().join("bag");
    let o = motedb(&[
        "--json",
        "export",
        s(&store),
        s(&bag),
        "--compression",
        "lz4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["message_count"], 400);
    assert_eq!(entries(&bag), vec!["bag_0.mcap", "metadata.yaml"]);
    let o = motedb(&["info", s(&bag)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Messages:          400"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("Topic: /count | Type: std_msgs/msg/Int32 | Count: 200"));

    // cat reads the bag directly, with the same time filters as a store
    let args = [
        "/count", "--format", "json", "--start", "+1s", "--end", "-1s",
    ];
    let from_bag = motedb(&[&["cat", s(&bag)][..], &args[..]].concat());
    let from_store = motedb(&[&["cat", s(&store)][..], &args[..]].concat());
    assert!(from_bag.status.success(), "{}", stderr(&from_bag));
    // i in 10..=188: from T0 + 1 s to (last = T0 + 19.95 s) - 1 s, end exclusive
    assert_eq!(stdout(&from_bag).lines().count(), 179);
    let strip_seq = |o: &std::process::Output| -> Vec<serde_json::Value> {
        stdout(o)
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["sequence"] = serde_json::Value::Null;
                v
            })
            .collect()
    };
    assert_eq!(strip_seq(&from_bag), strip_seq(&from_store));

    let copy = dir.path().join("copy");
    let o = motedb(&["--json", "import", s(&copy), s(&bag)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["messages"], 400);
    assert_eq!(v["skipped"].as_array().unwrap().len(), 0);

    for topic in ["/chatter", "/count"] {
        let a = motedb(&["cat", s(&store), topic, "--format", "json"]);
        let b = motedb(&["cat", s(&copy), topic, "--format", "json"]);
        let strip = |o: &std::process::Output| -> Vec<serde_json::Value> {
            stdout(o)
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    serde_json::json!([v["log_time"], v["publish_time"], v["message"]])
                })
                .collect()
        };
        assert_eq!(strip(&a), strip(&b));
        assert_eq!(strip(&a).len(), 200);
    }
    let copied = Store::open_read_only(&copy).unwrap();
    let t = copied.topic_by_name("/chatter").unwrap();
    assert_eq!(t.spec.definition, "string data\n");
    assert!(
        t.spec.offered_qos.contains("reliability: reliable"),
        "{}",
        t.spec.offered_qos
    );
}

#[test]
fn import_of_truncated_bag_imports_prefix_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let store = make_store(dir.path(), 20_000);
    let bag = dir.path().join("bag");
    assert!(
        motedb(&["export", s(&store), s(&bag), "--compression", "none"])
            .status
            .success()
    );
    let file = bag.join("bag_0.mcap");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let copy = dir.path().join("copy");
    let o = motedb(&["--json", "import", s(&copy), s(&bag)]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = v["messages"].as_u64().unwrap();
    assert!(n > 0 && n < 40_000, "{n}");
    assert!(v["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("truncated"));
}

#[test]
fn verify_du_and_compact() {
    let dir = tempfile::tempdir().unwrap();
    let store = make_store(dir.path(), 100);
    let o = motedb(&["--json", "verify", s(&store), "--decode"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["messages_read"], 200);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);
    let o = motedb(&["--json", "du", s(&store)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["disk_bytes"].as_u64().unwrap() > 0);
    let o = motedb(&["compact", s(&store)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = motedb(&["--json", "verify", s(&store)]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn store_held_by_a_writer_is_read_read_only_and_import_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = make_store(dir.path(), 10);
    let held = Store::open(&path, small_options()).unwrap();
    let o = motedb(&["--json", "info", s(&path)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("read-only"), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["message_count"], 20);
    let bag = dir.path().join("bag");
    let o = motedb(&["export", s(&path), s(&bag)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = motedb(&["import", s(&path), s(&bag)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("stop the node"), "{}", stderr(&o));
    held.close().unwrap();
}

/// A disk that fills up mid-export: the file size limit (RLIMIT_FSIZE)
/// makes the MCAP write fail with EFBIG. The export must fail, say why and
/// leave neither the target nor a partial directory.
#[test]
fn write_failure_during_export_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = make_big_store(dir.path(), 4);
    let out = dir.path().join("exports");
    std::fs::create_dir(&out).unwrap();
    let bag = out.join("bag");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_motedb"));
    cmd.args(["export", s(&store), s(&bag), "--compression", "none"]);
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: 1 << 20,
                rlim_max: 1 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("bag_0.mcap"), "{}", stderr(&o));
    assert!(entries(&out).is_empty(), "{:?}", entries(&out));
}

#[test]
fn verify_detects_a_flipped_byte_in_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = make_store(dir.path(), 3000);
    let mut ssts: Vec<_> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .collect();
    ssts.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let victim = ssts.last().expect("the closed store has tables");
    let mut bytes = std::fs::read(victim).unwrap();
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0x5a;
    std::fs::write(victim, &bytes).unwrap();
    let o = motedb(&["--json", "verify", s(&store)]);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(matches!(o.status.code(), Some(1) | Some(3)), "{text}");
    assert!(
        text.contains("checksum") || text.contains("corrupt"),
        "{text}"
    );
}

/// Starts an export of a 32 MiB store and waits (polling, with a deadline)
/// until its hidden partial directory exists, i.e. the export is running.
#[cfg(test)]
fn start_export(dir: &std::path::Path) -> (std::process::Child, std::path::PathBuf) {
    let store = make_big_store(dir, 32);
    let out = dir.join("exports");
    std::fs::create_dir(&out).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_motedb"))
        .args(["export", s(&store), s(&out.join("bag"))])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !entries(&out).iter().any(|e| e.starts_with(".bag.partial")) {
        assert!(std::time::Instant::now() < deadline, "export never started");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    (child, out)
}

#[test]
fn ctrl_c_during_export_removes_the_partial_bag() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, out) = start_export(dir.path());
    // SAFETY: signalling our own child by pid.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "export finished before the interrupt"
    );
    assert!(entries(&out).is_empty(), "{:?}", entries(&out));
}

#[test]
fn killed_export_never_leaves_a_bag_at_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, out) = start_export(dir.path());
    child.kill().unwrap();
    child.wait().unwrap();
    let left = entries(&out);
    assert!(!left.contains(&"bag".to_string()), "{left:?}");
    assert!(
        left.iter().all(|e| e.starts_with(".bag.partial")),
        "{left:?}"
    );
}

#[test]
fn export_fills_a_missing_definition_from_ament_prefix_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = make_big_store(dir.path(), 1); // /blob recorded without definition
    let prefix = dir.path().join("prefix");
    let msg = prefix.join("share/std_msgs/msg");
    std::fs::create_dir_all(&msg).unwrap();
    std::fs::write(
        msg.join("UInt8MultiArray.msg"),
        "MultiArrayLayout layout\nuint8[] data\n",
    )
    .unwrap();
    std::fs::write(
        msg.join("MultiArrayLayout.msg"),
        "MultiArrayDimension[] dim\nuint32 data_offset\n",
    )
    .unwrap();
    std::fs::write(
        msg.join("MultiArrayDimension.msg"),
        "string label\nuint32 size\nuint32 stride\n",
    )
    .unwrap();
    let bag = dir.path().join("bag");
    let o = Command::new(env!("CARGO_BIN_EXE_motedb"))
        .args(["export", s(&store), s(&bag)])
        .env("AMENT_PREFIX_PATH", &prefix)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(bag.join("bag_0.mcap")).unwrap();
    let summary = mcap::Summary::read(&bytes).unwrap().unwrap();
    let schema = summary.schemas.values().next().unwrap();
    assert!(schema.data.starts_with(b"MultiArrayLayout layout\n"));
    assert!(String::from_utf8_lossy(&schema.data).contains("MSG: std_msgs/msg/MultiArrayDimension"));
}

/// Every file under `dir` with its bytes.
#[cfg(test)]
fn snapshot(dir: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The read commands of the CLI, each as arguments after the binary.
fn read_commands<'a>(store: &'a str, out: &'a str) -> [Vec<&'a str>; 7] {
    [
        vec!["info", store],
        vec!["marks", store],
        vec!["topics", store],
        vec!["du", store],
        vec!["verify", store],
        vec!["cat", store, "/chatter", "--limit", "3"],
        vec!["export", store, out],
    ]
}

#[test]
fn read_commands_change_no_byte_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = make_store(dir.path(), 50);
    // A torn tail: a last WAL segment holding only half-written garbage.
    // Read commands report what they read and must not repair (cut) it.
    std::fs::write(store.join("wal-000900.log"), [0xA5u8; 300]).unwrap();
    let before = snapshot(&store);
    let out = dir.path().join("bag");
    for args in read_commands(s(&store), s(&out)) {
        let o = motedb(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(
            snapshot(&store) == before,
            "{args:?} changed the store: {:?}",
            snapshot(&store).keys().collect::<Vec<_>>()
        );
    }
}

/// Set in the child that runs inside its own mount namespace.
const RO_CHILD: &str = "MOTEDB_RO_MOUNT_CHILD";

/// On a read-only bind mount, as when a store is inspected on a robot's
/// read-only partition or a write-protected copy; `ros2 bag info` works
/// there and so must every read command. The mount is made in a private
/// mount namespace (`unshare --mount`), so nothing outside sees it.
#[test]
fn read_commands_work_on_a_read_only_bind_mount() {
    if let Some(dir) = std::env::var_os(RO_CHILD) {
        let store = std::path::Path::new(&dir).join("store");
        for args in [
            vec!["--bind", s(&store), s(&store)],
            vec!["-o", "remount,bind,ro", s(&store), s(&store)],
        ] {
            assert!(Command::new("mount")
                .args(&args)
                .status()
                .unwrap()
                .success());
        }
        let probe = std::fs::write(store.join("probe"), b"x").unwrap_err();
        assert_eq!(probe.raw_os_error(), Some(30), "not read-only: {probe}");
        let out = std::path::Path::new(&dir).join("bag");
        for args in read_commands(s(&store), s(&out)) {
            let o = motedb(&args);
            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        }
        println!("RO-MOUNT-OK");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_store(dir.path(), 50);
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "read_commands_work_on_a_read_only_bind_mount",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(RO_CHILD, dir.path())
        .output()
        .expect("unshare (util-linux) runs the child in a private mount namespace");
    assert!(
        o.status.success() && stdout(&o).contains("RO-MOUNT-OK"),
        "child failed ({:?}):\n{}\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
}

/// metadata.yaml of an exported bag, rewritten by `edit`.
#[cfg(test)]
fn bag_with_metadata(dir: &std::path::Path, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let store = make_store(dir, 5);
    let bag = dir.join("bag");
    let o = motedb(&["export", s(&store), s(&bag)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let meta = bag.join("metadata.yaml");
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, edit(text)).unwrap();
    bag
}

#[test]
fn listed_bag_files_outside_the_bag_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // The MCAP file moved out of the bag, metadata.yaml pointing at it.
    let bag = bag_with_metadata(dir.path(), |t| t.replace("- bag_0.mcap", "- ../bag_0.mcap"));
    std::fs::rename(bag.join("bag_0.mcap"), dir.path().join("bag_0.mcap")).unwrap();
    let copy = dir.path().join("copy");
    for argv in [vec!["import", s(&copy), s(&bag)], vec!["info", s(&bag)]] {
        let o = motedb(&argv);
        assert_eq!(o.status.code(), Some(1), "{argv:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("points outside the bag directory"),
            "{argv:?}: {}",
            stderr(&o)
        );
    }
    // A symbolic link inside the bag leading out is refused the same way.
    let dir = tempfile::tempdir().unwrap();
    let bag = bag_with_metadata(dir.path(), |t| t.replace("- bag_0.mcap", "- link.mcap"));
    std::fs::rename(bag.join("bag_0.mcap"), dir.path().join("real.mcap")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("real.mcap"), bag.join("link.mcap")).unwrap();
    let o = motedb(&["info", s(&bag)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("points outside the bag directory"));
}

#[test]
fn sqlite3_bags_get_a_clear_error_not_corrupt_mcap() {
    let dir = tempfile::tempdir().unwrap();
    let bag = bag_with_metadata(dir.path(), |t| {
        t.replace("storage_identifier: mcap", "storage_identifier: sqlite3")
    });
    let copy = dir.path().join("copy");
    for argv in [vec!["info", s(&bag)], vec!["import", s(&copy), s(&bag)]] {
        let o = motedb(&argv);
        assert_eq!(o.status.code(), Some(1), "{argv:?}");
        assert!(
            stderr(&o).contains("sqlite3 bags are not supported"),
            "{argv:?}: {}",
            stderr(&o)
        );
    }
    // A .db3 file itself, and a bag directory holding only one.
    let db3 = dir.path().join("rosbag2_x_0.db3");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend_from_slice(&[0u8; 4080]);
    std::fs::write(&db3, &bytes).unwrap();
    let only = dir.path().join("sqlite_bag");
    std::fs::create_dir(&only).unwrap();
    std::fs::write(only.join("rosbag2_x_0.db3"), &bytes).unwrap();
    for input in [&db3, &only] {
        let o = motedb(&["import", s(&copy), s(input)]);
        assert_eq!(o.status.code(), Some(1), "{input:?}");
        assert!(
            stderr(&o).contains("sqlite3 bags are not supported"),
            "{input:?}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn cat_takes_several_topics_merged_in_log_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = make_store(dir.path(), 3);
    let o = motedb(&["cat", s(&store), "/chatter", "/count", "--limit", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "# /chatter\ndata: hello 0\n---\n# /count\ndata: 0\n---\n\
         # /chatter\ndata: hello 1\n---\n# /count\ndata: 1\n---\n"
    );
    let bag = dir.path().join("bag");
    assert!(motedb(&["export", s(&store), s(&bag)]).status.success());
    for source in [&store, &bag] {
        let o = motedb(&["--json", "cat", s(source), "/count", "/chatter"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let topics: Vec<String> = stdout(&o)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["topic"].to_string())
            .collect();
        assert_eq!(topics.len(), 6, "{source:?}");
        assert_eq!(topics[0], "\"/chatter\"");
        assert_eq!(topics[1], "\"/count\"");
    }
    let o = motedb(&["cat", s(&store), "/chatter", "/nope"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("no topic /nope"));
}

#[test]
fn split_sizes_are_parsed_strictly() {
    let dir = tempfile::tempdir().unwrap();
    let store = make_store(dir.path(), 5);
    for (i, (size, ok)) in [
        ("1.5MiB", true),
        ("100 kB", true),
        ("5000000", true),
        ("12parsecs", false),
        ("99999999999999999999GB", false),
        ("", false),
    ]
    .into_iter()
    .enumerate()
    {
        let out = dir.path().join(format!("bag{i}"));
        let o = motedb(&["export", s(&store), s(&out), "--split-size", size]);
        if ok {
            assert!(o.status.success(), "{size:?}: {}", stderr(&o));
        } else {
            assert_eq!(o.status.code(), Some(2), "{size:?}: {}", stderr(&o));
            assert!(stderr(&o).contains("bad size"), "{size:?}: {}", stderr(&o));
        }
    }
    let o = motedb(&["du", s(&store)]);
    assert!(
        stdout(&o).contains("KiB") || stdout(&o).contains(" B"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn importing_a_directory_without_a_bag_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("typo_dir");
    std::fs::create_dir(&empty).unwrap();
    let o = motedb(&["import", s(&dir.path().join("store")), s(&empty)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("no .mcap file"), "{}", stderr(&o));
}

#[test]
fn du_and_info_show_stored_bytes_and_the_codec_per_topic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = Store::open(&path, small_options()).unwrap();
    let image = store
        .register_topic(TopicSpec {
            name: "/image".into(),
            ..string_spec()
        })
        .unwrap();
    let noise = store
        .register_topic(TopicSpec {
            name: "/noise".into(),
            ..string_spec()
        })
        .unwrap();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..10u64 {
        let frame: Vec<u8> = (0..100_000u32)
            .map(|j| (j / 100 + i as u32) as u8)
            .collect();
        let random: Vec<u8> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        store.append(image, T0 + i, 0, &frame).unwrap();
        store.append(noise, T0 + i, 0, &random).unwrap();
    }
    store.close().unwrap();
    let o = motedb(&["--json", "du", s(&path)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = &v["topics"];
    assert_eq!(t[0]["name"], "/image");
    assert_eq!(t[0]["bytes"], 1_000_000);
    assert!(t[0]["stored_bytes"].as_u64().unwrap() < 100_000, "{t}");
    assert_eq!(t[0]["compression"], "zstd 10");
    assert_eq!(t[1]["stored_bytes"], 1_000_000);
    assert_eq!(t[1]["compression"], "raw");
    let o = motedb(&["du", s(&path)]);
    let text = stdout(&o);
    assert!(text.contains("zstd 10)  /image"), "{text}");
    assert!(text.contains("(100.0%, raw)  /noise"), "{text}");
    let o = motedb(&["info", s(&path)]);
    let text = stdout(&o);
    assert!(text.contains("(zstd 10)"), "{text}");
    let o = motedb(&["--json", "info", s(&path)]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["topics"][1]["compression"], "raw");
}

#[test]
fn marks_and_info_list_the_marks_with_their_pin_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = make_store(dir.path(), 5);
    let store = Store::open(&path, small_options()).unwrap();
    let mark = |label: &str, tags: &[&str], pin: bool| {
        store
            .add_mark(NewMark {
                label: label.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                start: T0,
                end: T0 + 2_500_000_000,
                pin,
            })
            .unwrap()
    };
    mark("estop", &["safety"], true);
    let dock = mark("dock", &["nav", "safety"], true);
    mark("bump", &["nav"], false);
    store.unpin(dock.id).unwrap();
    store.close().unwrap();

    let o = motedb(&["marks", s(&path)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("Mark 1: estop | Tags: safety |") && lines[0].ends_with("| pinned")
    );
    assert!(lines[1].contains("dock | Tags: nav,safety") && lines[1].ends_with("| not pinned"));
    assert!(lines[0].contains("(2.500000000s)"), "{}", lines[0]);
    let o = motedb(&["--json", "marks", s(&path), "--tag", "nav"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![2, 3]);
    assert_eq!(v[0]["pinned"], false);
    assert_eq!(v[0]["start"], T0);
    let o = motedb(&["info", s(&path)]);
    let text = stdout(&o);
    assert!(text.contains("Marks:             3 (1 pinned"), "{text}");
    assert!(text.contains("Mark 3: bump"), "{text}");
    let o = motedb(&["--json", "info", s(&path)]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["marks"].as_array().unwrap().len(), 3);
    // A store without marks says so.
    let bare = make_store(&dir.path().join("bare"), 1);
    assert_eq!(stdout(&motedb(&["marks", s(&bare)])), "no marks\n");
}

const POSE_STAMPED: &str = "std_msgs/Header header\nPose pose\n\
================================================================================\n\
MSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n\
================================================================================\n\
MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n\
================================================================================\n\
MSG: geometry_msgs/Pose\nPoint position\nQuaternion orientation\n\
================================================================================\n\
MSG: geometry_msgs/Point\nfloat64 x\nfloat64 y\nfloat64 z\n\
================================================================================\n\
MSG: geometry_msgs/Quaternion\nfloat64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n";

/// CDR of a geometry_msgs/PoseStamped.
fn pose_cdr(frame: &str, x: f64, y: f64) -> Vec<u8> {
    let mut b = vec![0, 1, 0, 0];
    b.extend([0u8; 8]);
    b.extend((frame.len() as u32 + 1).to_le_bytes());
    b.extend(frame.as_bytes());
    b.push(0);
    while (b.len() - 4) % 8 != 0 {
        b.push(0);
    }
    for v in [x, y, 0.0, 0.0, 0.0, 0.0, 1.0] {
        b.extend(v.to_le_bytes());
    }
    b
}

/// Out along x at 1 m/s for 10 s and back, poses at 50 Hz on /pose (x
/// exact in binary at the interval edges the tests expect); returns the
/// open store and the topic id.
fn shuttle(path: &std::path::Path) -> (Store, u32) {
    let store = Store::open(path, small_options()).expect("open the store");
    let pose = store
        .register_topic(TopicSpec {
            name: "/pose".into(),
            type_name: "geometry_msgs/msg/PoseStamped".into(),
            serialization_format: "cdr".into(),
            definition: POSE_STAMPED.into(),
            ..TopicSpec::default()
        })
        .expect("register /pose");
    for i in 0..1000u64 {
        let x = if i <= 500 { i } else { 1000 - i } as f64 / 50.0;
        store
            .append(pose, T0 + i * S / 50, 0, &pose_cdr("map", x, 1.0))
            .expect("append a pose");
    }
    (store, pose)
}

#[test]
fn near_counts_and_exports_the_messages_inside_the_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let (store, _) = shuttle(&path);
    let cam = |name: &str| {
        store
            .register_topic(TopicSpec {
                name: name.into(),
                type_name: "std_msgs/msg/String".into(),
                serialization_format: "cdr".into(),
                ..TopicSpec::default()
            })
            .unwrap()
    };
    let (camera, other) = (cam("/camera"), cam("/other"));
    // A camera frame every 100 ms, another topic every second.
    for k in 0..200u64 {
        store
            .append(camera, T0 + k * S / 10, 0, &k.to_le_bytes())
            .unwrap();
        if k % 10 == 0 {
            store.append(other, T0 + k * S / 10, 0, b"o").unwrap();
        }
    }
    store.close().unwrap();
    let near = |extra: &[&str]| {
        let mut a = vec![
            "--json",
            "near",
            s(&path),
            "--x",
            "5",
            "--y",
            "1",
            "--radius",
            "1",
        ];
        a.extend_from_slice(extra);
        motedb(&a)
    };
    // Intervals 4..=6 s and 14..=16 s, both ends included: 21 frames each.
    let bag = dir.path().join("near_bag");
    let o = near(&["--topic", "/camera", "--export", s(&bag)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let counts: Vec<u64> = v["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["messages"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, vec![21, 21]);
    assert_eq!(v["export"]["message_count"], 42);
    let info = motedb::export::bag_info(&bag).unwrap();
    let topics: Vec<(String, u64)> = info
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.message_count))
        .collect();
    assert_eq!(topics, vec![("/camera".to_string(), 42)]);
    assert_eq!((info.start, info.end), (T0 + 4 * S, T0 + 16 * S));
    // Every topic by default: the poses and the other topic's messages
    // inside the intervals too (101 + 101 poses, 3 + 3 others).
    let all = dir.path().join("all_bag");
    let o = near(&["--export", s(&all)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let info = motedb::export::bag_info(&all).unwrap();
    let mut topics: Vec<(String, u64)> = info
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.message_count))
        .collect();
    topics.sort();
    assert_eq!(
        topics,
        vec![
            ("/camera".to_string(), 42),
            ("/other".to_string(), 6),
            ("/pose".to_string(), 202)
        ]
    );
    // An existing output and an unknown topic are refused, nothing written.
    let o = near(&["--export", s(&bag)]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    let fresh = dir.path().join("fresh");
    let o = near(&["--topic", "/nope", "--export", s(&fresh)]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("no topic /nope"), "{}", stderr(&o));
    assert!(!fresh.exists());
}

#[test]
fn near_prints_the_intervals_a_known_path_implies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let (store, pose) = shuttle(&path);
    store.close().unwrap();
    let o = motedb(&[
        "--json",
        "near",
        s(&path),
        "--x",
        "5",
        "--y",
        "1",
        "--radius",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pose_topic"], "/pose");
    assert_eq!(v["frame"], "map");
    assert_eq!(v["poses"], 1000);
    let spans: Vec<(u64, u64)> = v["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["start"].as_u64().unwrap(), i["end"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        spans,
        vec![(T0 + 4 * S, T0 + 6 * S), (T0 + 14 * S, T0 + 16 * S)]
    );
    assert_eq!(v["intervals"][0]["closest"], T0 + 5 * S);
    // A time range keeps what falls in it; text output says the same.
    let o = motedb(&[
        "near",
        s(&path),
        "--x",
        "5",
        "--y",
        "1",
        "--radius",
        "1",
        "--start",
        "+10s",
    ]);
    let text = stdout(&o);
    assert!(
        text.starts_with("/pose (frame map, 1000 poses): 1 interval(s)"),
        "{text}"
    );
    // Bad input: exit codes and reasons.
    let o = motedb(&["near", s(&path), "--x", "5", "--y", "1", "--radius", "-1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("must be a number of metres > 0"),
        "{}",
        stderr(&o)
    );
    let o = motedb(&[
        "near",
        s(&path),
        "--x",
        "5",
        "--y",
        "1",
        "--radius",
        "1",
        "--frame",
        "odom",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o).contains("no poses in frame \"odom\""),
        "{}",
        stderr(&o)
    );
    let o = motedb(&[
        "near",
        s(&path),
        "--x",
        "5",
        "--y",
        "1",
        "--radius",
        "1",
        "--pose-topic",
        "/nope",
    ]);
    assert_eq!(o.status.code(), Some(4));
    let bare = make_store(&dir.path().join("bare"), 3);
    let o = motedb(&["near", s(&bare), "--x", "0", "--y", "0", "--radius", "1"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o).contains("no pose topic recorded"),
        "{}",
        stderr(&o)
    );
    let o = motedb(&[
        "near",
        s(&bare),
        "--x",
        "0",
        "--y",
        "0",
        "--radius",
        "1",
        "--pose-topic",
        "/chatter",
    ]);
    assert!(stderr(&o).contains("not a pose topic"), "{}", stderr(&o));

    // A second frame and a message that is no pose: --frame is needed, and
    // what could not be read makes the exit code 3.
    let store = Store::open(&path, small_options()).unwrap();
    store
        .append(pose, T0 + 30 * S, 0, &pose_cdr("odom", 5.0, 1.0))
        .unwrap();
    store
        .append(pose, T0 + 31 * S, 0, &[0, 1, 0, 0, 7])
        .unwrap();
    store.close().unwrap();
    let o = motedb(&["near", s(&path), "--x", "5", "--y", "1", "--radius", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("frames map, odom: pass --frame"),
        "{}",
        stderr(&o)
    );
    let o = motedb(&[
        "--json",
        "near",
        s(&path),
        "--x",
        "5",
        "--y",
        "1",
        "--radius",
        "1",
        "--frame",
        "map",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (
            v["undecodable"].as_u64(),
            v["intervals"].as_array().unwrap().len()
        ),
        (Some(1), 2)
    );
}

#[test]
fn play_checks_its_arguments_and_needs_the_ros_build() {
    let dir = tempfile::tempdir().unwrap();
    let path = make_store(&dir.path().join("store"), 3);
    let o = motedb(&["play", s(&path), "--rate", "-2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("rate must be a number > 0"),
        "{}",
        stderr(&o)
    );
    let o = motedb(&["play", s(&path), "--topic", "/nope"]);
    assert_eq!(o.status.code(), Some(4));
    let o = motedb(&["play", s(&path), "--read-ahead", "12 parsecs"]);
    assert_eq!(o.status.code(), Some(2));
    // This test binary is the build without ROS: it says how to get one.
    let o = motedb(&["play", s(&path)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("built without ROS"), "{}", stderr(&o));
}
