//! kill -9 loop: a child process appends with Sync durability and prints
//! each acknowledged record; the parent kills it with SIGKILL at a random
//! moment, reopens the store and checks that every acknowledged record is
//! there with its payload and sequence, and that nothing else is.
//!
//! The child is this same test binary re-run with MOTEDB_KILL_CHILD set (no
//! extra binary to install). Cycles: MOTEDB_KILL_CYCLES (default 24).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a test failure"
)]

mod engine_common;
mod seeded;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use motedb::engine::{Durability, Nanos, Options, Store, TopicSpec};

const TOPICS: usize = 3;
/// Each cycle writes at times cycle * CYCLE_SPAN + i.
const CYCLE_SPAN: Nanos = 1_000_000_000;

fn spec(i: usize) -> TopicSpec {
    TopicSpec {
        name: format!("/kill_{i}"),
        type_name: "std_msgs/msg/ByteMultiArray".into(),
        serialization_format: "cdr".into(),
        ..TopicSpec::default()
    }
}

fn payload(topic: usize, t: Nanos) -> Vec<u8> {
    // Every 9th payload goes to the value log.
    let len = if t % 9 == 0 {
        70_000
    } else {
        (t % 200) as usize
    };
    // Even topics' large payloads compress (stored encoded), odd ones not.
    engine_common::mixed_bytes(
        t ^ ((topic as u64) << 60) ^ 0x0DDB_A11C_AFE0_0001,
        len,
        topic % 2 == 0,
    )
}

fn options() -> Options {
    Options {
        durability: Durability::Sync,
        memtable_bytes: 64 << 10,
        value_threshold: 16 << 10,
        block_size: 4096,
        ..Options::default()
    }
}

/// Child body: append until killed, printing "ACK topic time seq" after
/// each append returned. MOTEDB_KILL_PERIODIC=1: Periodic(100 ms) durability.
fn child(dir: &Path, cycle: u64) {
    let mut opts = options();
    if std::env::var("MOTEDB_KILL_PERIODIC").is_ok() {
        opts.durability = Durability::Periodic(Duration::from_millis(100));
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    // The parent times a kill during recovery from this line.
    writeln!(out, "OPENING").unwrap();
    out.flush().unwrap();
    let store = Store::open(dir, opts).unwrap();
    writeln!(out, "OPENED").unwrap();
    out.flush().unwrap();
    let ids: Vec<_> = (0..TOPICS)
        .map(|i| store.register_topic(spec(i)).unwrap())
        .collect();
    writeln!(out, "READY").unwrap();
    out.flush().unwrap();
    let base = cycle * CYCLE_SPAN;
    for i in 0..u64::MAX {
        let topic = (i % TOPICS as u64) as usize;
        // Every 10th record arrives late (before the cycle's newest).
        let t = if i % 10 == 9 { base + i - 5 } else { base + i };
        let seq = store.append(ids[topic], t, t, &payload(topic, t)).unwrap();
        writeln!(out, "ACK {topic} {t} {seq}").unwrap();
        out.flush().unwrap();
        if i % 97 == 96 {
            store.flush().unwrap();
        }
        if i % 400 == 399 {
            store.compact().unwrap();
        }
    }
}

/// The re-entry point of the child process; a no-op in a normal test run.
#[test]
fn kill_loop_child() {
    let Ok(dir) = std::env::var("MOTEDB_KILL_CHILD") else {
        return;
    };
    let cycle = std::env::var("MOTEDB_KILL_CYCLE").unwrap().parse().unwrap();
    child(Path::new(&dir), cycle);
}

/// (topic index, time) -> sequence
type Acked = BTreeMap<(usize, Nanos), u64>;
/// Acknowledgements in the order the child printed them.
type AckLog = Vec<((usize, Nanos), u64)>;

/// What one child did before the kill.
struct ChildRun {
    acked: AckLog,
    /// The kill came after "OPENING" and before "OPENED": it hit recovery.
    killed_in_open: bool,
}

/// Runs one child, kills it after `delay` (counted from READY, or from
/// "OPENING" when `during_open`: then the kill may hit recovery itself),
/// returns what it acknowledged.
fn run_child(
    dir: &Path,
    cycle: u64,
    delay: Duration,
    during_open: bool,
    periodic: bool,
) -> ChildRun {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    if periodic {
        cmd.env("MOTEDB_KILL_PERIODIC", "1");
    }
    let mut child = cmd
        .args([
            "kill_loop_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MOTEDB_KILL_CHILD", dir)
        .env("MOTEDB_KILL_CYCLE", cycle.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Kept so that a child that dies before READY explains why.
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let (tx, rx) = mpsc::channel();
    let (open_tx, open_rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut acked = AckLog::new();
        let mut opened = false;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            // A line cut by the kill has no newline and is no acknowledgement.
            match reader.read_line(&mut line) {
                Ok(n) if n > 0 && line.ends_with('\n') => {}
                _ => break,
            }
            // The test harness may print "test name ... " before our text.
            let text = line.trim_end();
            if text.ends_with("OPENING") {
                let _ = open_tx.send(());
                continue;
            }
            if text.ends_with("OPENED") {
                opened = true;
                continue;
            }
            if text.ends_with("READY") {
                let _ = tx.send(());
                continue;
            }
            if let Some(rest) = line.trim_end().split("ACK ").nth(1) {
                let f: Vec<u64> = rest.split(' ').map(|v| v.parse().unwrap()).collect();
                acked.push(((f[0] as usize, f[1]), f[2]));
            }
        }
        (acked, opened)
    });
    // The child must come up; wait for it on a condition, with a timeout.
    if during_open {
        let opening = open_rx.recv_timeout(Duration::from_secs(60));
        thread::sleep(delay);
        child.kill().unwrap();
        child.wait().unwrap();
        let child_stderr = err_reader.join().unwrap_or_default();
        assert!(
            opening.is_ok(),
            "cycle {cycle}: child never started opening; its stderr:\n{child_stderr}"
        );
        let (acked, opened) = reader.join().unwrap();
        return ChildRun {
            acked,
            killed_in_open: !opened,
        };
    }
    let ready = rx.recv_timeout(Duration::from_secs(60));
    if ready.is_ok() {
        thread::sleep(delay);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (acked, _) = reader.join().unwrap();
    let child_stderr = err_reader.join().unwrap_or_default();
    assert!(
        ready.is_ok(),
        "cycle {cycle}: child never became ready; its stderr:\n{child_stderr}"
    );
    ChildRun {
        acked,
        killed_in_open: false,
    }
}

/// Every acknowledged record of every cycle so far is present, with its
/// payload and sequence; every record present was written by some child.
/// Returns what is present.
fn verify(dir: &Path, acked: &Acked, cycle: u64) -> Acked {
    let store = Store::open(dir, options())
        .unwrap_or_else(|e| panic!("cycle {cycle}: reopen after SIGKILL failed: {e}"));
    let mut present = Acked::new();
    for i in 0..TOPICS {
        let Some(info) = store.topic_by_name(&spec(i).name) else {
            continue;
        };
        let recs = store.iter(&[info.id], 0, Nanos::MAX, false).unwrap();
        for r in recs {
            let r = r.unwrap_or_else(|e| panic!("cycle {cycle}: scan failed: {e}"));
            assert!(
                r.payload == payload(i, r.log_time),
                "cycle {cycle}: wrong payload at {}",
                r.log_time
            );
            let before = present.insert((i, r.log_time), r.sequence);
            assert!(
                before.is_none(),
                "cycle {cycle}: ({i}, {}) twice",
                r.log_time
            );
        }
    }
    let missing: Vec<_> = acked
        .iter()
        .filter(|(k, seq)| present.get(k) != Some(seq))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "cycle {cycle}: acknowledged records lost or renumbered after SIGKILL: {missing:?} \
         ({} acked, {} present)",
        acked.len(),
        present.len()
    );
    store.close().unwrap();
    present
}

/// Kill cycles: `MOTEDB_KILL_CYCLES`, else 100 (400 in a campaign).
fn cycles() -> u64 {
    std::env::var("MOTEDB_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if seeded::campaign() { 400 } else { 100 })
}

#[test]
fn sigkill_loop_keeps_every_acknowledged_record() {
    if std::env::var("MOTEDB_KILL_CHILD").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acked = Acked::new();
    let mut rng: u64 = seeded::seed(0x5EED) | 1;
    let started = Instant::now();
    let mut total_acks = 0usize;
    let (mut open_kills, mut open_hits) = (0u64, 0u64);
    for cycle in 1..=cycles() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Every 6th cycle the kill comes early, while the child is opening
        // (recovering) the store: 0 to 2 ms after it said so.
        let during_open = cycle % 6 == 0;
        let delay = if during_open {
            Duration::from_micros(rng % 2_000)
        } else {
            Duration::from_millis(20 + rng % 400)
        };
        let run = run_child(dir.path(), cycle, delay, during_open, false);
        open_kills += u64::from(during_open);
        open_hits += u64::from(run.killed_in_open);
        total_acks += run.acked.len();
        acked.extend(run.acked);
        verify(dir.path(), &acked, cycle);
    }
    assert!(
        total_acks > 0,
        "no child acknowledged anything in {:?}",
        started.elapsed()
    );
    eprintln!(
        "kill loop: {} cycles, {total_acks} acknowledged records verified, \
         {open_hits} of {open_kills} early kills landed inside open, {:?}",
        cycles(),
        started.elapsed()
    );
    assert!(
        open_kills == 0 || open_hits > 0,
        "none of {open_kills} kills meant for recovery landed inside Store::open"
    );
}

/// Child body of the lock test: try to open the store and say how it went.
#[test]
fn lock_child() {
    let Ok(dir) = std::env::var("MOTEDB_LOCK_CHILD") else {
        return;
    };
    match Store::open(&dir, options()) {
        Ok(_) => println!("RESULT opened"),
        Err(motedb::engine::Error::Locked { pid, .. }) => {
            println!("RESULT locked {}", pid.unwrap_or(0));
        }
        Err(e) => println!("RESULT error {e}"),
    }
    match Store::open_read_only(&dir) {
        Ok(s) => {
            let n: u64 = s.topics().iter().map(|t| t.message_count).sum();
            println!("RESULT readonly {n}");
        }
        Err(e) => println!("RESULT readonly-error {e}"),
    }
}

/// A second process opening a store held for writing gets `Locked` naming
/// the holder, and can still open it read-only and see durable records.
#[test]
fn second_writer_process_gets_locked_error() {
    if std::env::var("MOTEDB_KILL_CHILD").is_ok() || std::env::var("MOTEDB_LOCK_CHILD").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let id = store.register_topic(spec(0)).unwrap();
    for t in 0..10 {
        store.append(id, t, t, &payload(0, t)).unwrap();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["lock_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("MOTEDB_LOCK_CHILD", dir.path())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let results: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("RESULT ").nth(1))
        .collect();
    let me = std::process::id();
    assert_eq!(
        results.first().copied(),
        Some(format!("locked {me}").as_str()),
        "second writer: {text}"
    );
    assert_eq!(
        results.get(1).copied(),
        Some("readonly 10"),
        "read-only open while locked: {text}"
    );
    store.close().unwrap();
}

/// Periodic durability promises nothing for a record until its group commit,
/// but a killed process leaves the OS page cache intact, so what survives of
/// a cycle is a prefix of its appends in order (plus at most the one in
/// flight), and what one reopen showed (then made durable by close) never
/// disappears in a later cycle.
#[test]
fn sigkill_loop_periodic_keeps_a_prefix() {
    if std::env::var("MOTEDB_KILL_CHILD").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut before = Acked::new();
    let mut rng: u64 = seeded::seed(0xFEED) | 1;
    let (mut acks, mut survived) = (0usize, 0usize);
    for cycle in 1..=(cycles() / 2).max(1) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = Duration::from_millis(20 + rng % 300);
        let log = run_child(dir.path(), cycle, delay, false, true).acked;
        let present = verify(dir.path(), &Acked::new(), cycle);
        let lost: Vec<_> = before
            .iter()
            .filter(|(k, s)| present.get(*k) != Some(*s))
            .take(3)
            .collect();
        assert!(
            lost.is_empty(),
            "cycle {cycle}: recovered records vanished: {lost:?}"
        );
        let kept: Vec<bool> = log.iter().map(|(k, s)| present.get(k) == Some(s)).collect();
        let first_gap = kept.iter().position(|k| !k).unwrap_or(kept.len());
        assert!(
            kept[first_gap..].iter().all(|k| !k),
            "cycle {cycle}: survivors are not a prefix of the appends: first missing #{first_gap} of {}",
            kept.len()
        );
        let base = cycle * CYCLE_SPAN;
        let unacked = present
            .keys()
            .filter(|k| k.1 >= base && k.1 < base + CYCLE_SPAN)
            .filter(|k| !log.iter().any(|(a, _)| a == *k))
            .count();
        assert!(
            unacked <= 1,
            "cycle {cycle}: {unacked} records present that were never acknowledged"
        );
        acks += log.len();
        survived += first_gap;
        before = present;
    }
    eprintln!("periodic kill loop: {acks} acknowledged, {survived} survived the kill");
    assert!(acks > 0, "no child acknowledged anything");
}
