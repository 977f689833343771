//! Remote stores against a real S3 server: Garage, started per test on
//! loopback by `scripts/garage` (which builds it once per machine).
//!
//! These tests are `#[ignore]`d in a plain `cargo test`: they need the
//! Garage binary and must run inside a private network namespace.
//! `scripts/test` runs them as `scripts/netns cargo test --test fleet --
//! --ignored`; so can you.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a test failure"
)]

mod engine_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use motedb::engine::{Nanos, Options, Store, TopicSpec};
use motedb::remote::{self, Bucket, Config, Index, Location, PushOptions, RemoteError};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * S;

/// A single-node Garage with bucket `motedb`, stopped on drop.
struct Garage {
    dir: PathBuf,
    env: PathBuf,
    cfg: Config,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/garage")
}

fn run_script(args: &[&str]) {
    let o = Command::new(script()).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "scripts/garage {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Garage {
    fn start(dir: &Path, port: u16) -> Garage {
        let dir = dir.join("garage");
        run_script(&["start", dir.to_str().unwrap(), &port.to_string()]);
        let env = dir.join("env");
        let mut cfg = Config {
            retry_for: Duration::from_secs(60),
            ..Config::default()
        }
        .with_file(&env)
        .unwrap();
        cfg.retry_for = Duration::from_secs(60);
        Garage { dir, env, cfg }
    }

    fn bucket(&self) -> Arc<Bucket> {
        Bucket::connect(&self.cfg, "motedb").unwrap()
    }

    fn stop(&self) {
        run_script(&["stop", self.dir.to_str().unwrap()]);
    }

    fn restart(&self) {
        run_script(&["restart", self.dir.to_str().unwrap()]);
    }

    /// `motedb` with this server's credentials file.
    fn motedb(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_motedb"));
        c.arg("--s3-credentials").arg(&self.env).args(args);
        // Only the file: the tests' environment must not decide.
        for k in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "MOTEDB_S3_ENDPOINT",
            "AWS_ENDPOINT_URL",
        ] {
            c.env_remove(k);
        }
        c
    }
}

impl Garage {
    /// Three nodes, replication factor 3; the client talks to node 0.
    fn cluster(dir: &Path, port: u16) -> Garage {
        let dir = dir.join("cluster");
        run_script(&["cluster", dir.to_str().unwrap(), &port.to_string(), "3"]);
        let env = dir.join("env");
        let mut cfg = Config::default().with_file(&env).unwrap();
        cfg.retry_for = Duration::from_secs(60);
        Garage { dir, env, cfg }
    }

    fn node(&self, i: usize) -> String {
        self.dir
            .join(format!("node{i}"))
            .to_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        if self.dir.join("node0").exists() {
            for i in 0..3 {
                run_script(&["stop", &self.node(i)]);
            }
        } else {
            self.stop();
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn spec(name: &str) -> TopicSpec {
    TopicSpec {
        name: name.into(),
        type_name: "std_msgs/msg/UInt8MultiArray".into(),
        serialization_format: "cdr".into(),
        ..TopicSpec::default()
    }
}

/// The payload of message `seq` on a topic: derived, so a reader can tell
/// a right byte from a wrong one without the local store. /cam messages
/// are 96 KiB (value log), /imu ones 200 B (inline in tables).
fn payload(topic: &str, seq: u64) -> Vec<u8> {
    let len = if topic == "/cam" { 96 << 10 } else { 200 };
    let seed = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ topic.len() as u64 ^ 0xdead_beef;
    engine_common::xorshift_bytes(seed, len)
}

fn small_tables() -> Options {
    Options {
        memtable_bytes: 1 << 20,
        ..Options::default()
    }
}

/// Appends rounds `from..from + n`: /imu at 200 Hz and /cam at 10 Hz (every
/// 20th); round i is /imu message i and /cam message i / 20, so the rounds
/// of a store go on from where the last call stopped.
fn write(store: &Store, from: u64, n: u64) {
    let imu = store.register_topic(spec("/imu")).unwrap();
    let cam = store.register_topic(spec("/cam")).unwrap();
    for i in from..from + n {
        let t = T0 + i * S / 200;
        let seq = store.append(imu, t, t, &payload("/imu", i)).unwrap();
        assert_eq!(seq, i);
        if i % 20 == 0 {
            let seq = store.append(cam, t, t, &payload("/cam", i / 20)).unwrap();
            assert_eq!(seq, i / 20);
        }
    }
}

fn make_store(path: &Path, n: u64) {
    let store = Store::open(path, small_tables()).unwrap();
    write(&store, 0, n);
    store.close().unwrap();
}

type Records = BTreeMap<String, Vec<(Nanos, u64, Vec<u8>)>>;

fn records(store: &Store) -> Records {
    let mut out = Records::new();
    for t in store.topics() {
        let v = store
            .iter(&[t.id], 0, Nanos::MAX, false)
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                (r.log_time, r.sequence, r.payload)
            })
            .collect();
        out.insert(t.spec.name.clone(), v);
    }
    out
}

fn local_records(path: &Path) -> Records {
    records(&Store::open_read_only(path).unwrap())
}

fn remote_records(g: &Garage, url: &str) -> Records {
    let loc = Location::parse(url).unwrap();
    let (store, _) = remote::open_store(g.bucket(), &loc).unwrap();
    records(&store)
}

fn index(g: &Garage, loc: &Location) -> Option<Index> {
    g.bucket()
        .get_opt(&loc.key(remote::INDEX))
        .unwrap()
        .map(|b| Index::parse(&b, "test").unwrap())
}

/// The chunk objects under a store's prefix, relative to it.
fn chunk_objects(g: &Garage, loc: &Location) -> BTreeSet<String> {
    g.bucket()
        .list(&loc.key("chunks"))
        .unwrap()
        .into_iter()
        .map(|(k, _)| k[loc.prefix.len() + 1..].to_string())
        .collect()
}

fn push_json(g: &Garage, store: &Path, url: &str) -> serde_json::Value {
    let o = g.motedb(&["--json", "push", store.to_str().unwrap(), url]);
    assert!(o.status.success(), "push: {}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
#[ignore = "needs Garage and a network namespace: scripts/test runs it"]
fn push_then_read_back_equals_the_local_store_and_updates_replace_it() {
    let dir = tempfile::tempdir().unwrap();
    let g = Garage::start(dir.path(), 3900);
    let path = dir.path().join("robot");
    make_store(&path, 4000);
    let url = "s3://motedb/fleet/robot";
    let loc = Location::parse(url).unwrap();

    let r = push_json(&g, &path, url);
    assert_eq!(r["generation"], 1);
    let local = local_records(&path);
    assert_eq!(local["/imu"].len(), 4000);
    assert_eq!(local["/cam"].len(), 200);
    assert_eq!(remote_records(&g, url), local);
    // The index names every chunk object and nothing else is there.
    let ix = index(&g, &loc).unwrap();
    assert_eq!(chunk_objects(&g, &loc), ix.keys().collect());
    assert_eq!(ix.summary.messages, 4200);

    // Unchanged: nothing sent, same generation.
    let r = push_json(&g, &path, url);
    assert_eq!(
        (r["changed"].as_bool(), r["uploaded_chunks"].as_u64()),
        (Some(false), Some(0))
    );
    assert_eq!(r["generation"], 1);

    // More data and a compaction: tables replaced, the value log grown.
    let store = Store::open(&path, small_tables()).unwrap();
    write(&store, 4000, 3000);
    store.compact().unwrap();
    store.close().unwrap();
    let r = push_json(&g, &path, url);
    assert_eq!(r["generation"], 2);
    let local = local_records(&path);
    assert_eq!(local["/imu"].len(), 7000);
    assert_eq!(remote_records(&g, url), local);
    // The first index's chunks stay one round for readers that loaded it,
    // then go.
    let old: BTreeSet<String> = ix.keys().collect();
    let now: BTreeSet<String> = index(&g, &loc).unwrap().keys().collect();
    assert!(!old.is_subset(&now), "compaction replaced tables");
    assert!(old.is_subset(&chunk_objects(&g, &loc)));
    let store = Store::open(&path, small_tables()).unwrap();
    write(&store, 7000, 10);
    store.close().unwrap();
    let o = g.motedb(&[
        "--json",
        "push",
        path.to_str().unwrap(),
        url,
        "--keep-retired-for",
        "0s",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let ix3 = index(&g, &loc).unwrap();
    assert_eq!(
        chunk_objects(&g, &loc),
        ix3.keys().collect(),
        "retired objects deleted"
    );
    assert_eq!(remote_records(&g, url), local_records(&path));

    // Another store made at the same path (a wiped robot) and pushed to
    // the same URL is refused, also with --every, and the bucket is left
    // as it was: the old copy may hold what exists nowhere else.
    std::fs::remove_dir_all(&path).unwrap();
    make_store(&path, 1500);
    let index_bytes = g.bucket().get_opt(&loc.key(remote::INDEX)).unwrap();
    let objects = chunk_objects(&g, &loc);
    for every in [&[][..], &["--every", "1s"][..]] {
        let mut child = g
            .command(&[&["push", path.to_str().unwrap(), url][..], every].concat())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until(60, "the refused push to exit", || {
            child.try_wait().unwrap().is_some()
        });
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
        let why = text(&o.stderr);
        assert!(why.contains("holds the copy of another store"), "{why}");
        assert!(why.contains("--replace"), "{why}");
        assert_eq!(
            g.bucket().get_opt(&loc.key(remote::INDEX)).unwrap(),
            index_bytes
        );
        assert_eq!(chunk_objects(&g, &loc), objects);
    }
    // Replaced on request, and nothing of the old copy is taken for it
    // (same file names, same sizes are likely; its tables are other bytes).
    let o = g.motedb(&["push", path.to_str().unwrap(), url, "--replace"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(remote_records(&g, url), local_records(&path));
    assert_eq!(remote_records(&g, url)["/imu"].len(), 1500);
}

/// Two pushers at one prefix: a round that finds another push's commit
/// under it does not overwrite that (newer) copy with its own cut, and
/// says why.
#[test]
#[ignore = "needs Garage and a network namespace: scripts/test runs it"]
fn a_push_that_finds_another_commit_under_it_does_not_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let g = Garage::start(dir.path(), 3985);
    let path = dir.path().join("robot");
    make_store(&path, 1000);
    let url = "s3://motedb/two";
    let loc = Location::parse(url).unwrap();
    assert_eq!(push_json(&g, &path, url)["generation"], 1);
    let store = Store::open(&path, small_tables()).unwrap();
    write(&store, 1000, 500);
    store.close().unwrap();
    // While this push is between its WAL and its manifest, the writer
    // adds 100 rounds and the other pusher commits them.
    let hook = {
        let (path, bucket, loc) = (path.clone(), g.bucket(), loc.clone());
        let fired = AtomicBool::new(false);
        move || {
            if !fired.swap(true, Ordering::SeqCst) {
                let store = Store::open(&path, small_tables()).unwrap();
                write(&store, 1500, 100);
                store.close().unwrap();
                remote::push(&path, &bucket, &loc, &PushOptions::default()).unwrap();
            }
        }
    };
    let opts = PushOptions {
        before_manifest: Some(Arc::new(hook)),
        ..PushOptions::default()
    };
    let err = remote::push(&path, &g.bucket(), &loc, &opts).unwrap_err();
    assert!(
        matches!(
            err,
            RemoteError::Conflict {
                ours: 1,
                theirs: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("One pusher per prefix"), "{err}");
    assert_eq!(index(&g, &loc).unwrap().generation, 2);
    assert_eq!(remote_records(&g, url), local_records(&path));
    assert_eq!(remote_records(&g, url)["/imu"].len(), 1600);
    // Alone again, pushes go on from the other's commit, and what the
    // refused round uploaded is retired like any other object no index
    // names.
    let opts = PushOptions {
        keep_retired_for: Duration::ZERO,
        ..PushOptions::default()
    };
    let r = remote::push(&path, &g.bucket(), &loc, &opts).unwrap();
    assert!(!r.changed);
    let r = remote::push(&path, &g.bucket(), &loc, &opts).unwrap();
    assert_eq!(r.retired_objects, 0);
    assert_eq!(
        chunk_objects(&g, &loc),
        index(&g, &loc).unwrap().keys().collect()
    );
    assert_eq!(remote_records(&g, url), local_records(&path));
}

/// The moment a live push is most exposed: between sizing the WAL and
/// reading the manifest, the writer flushes (a new table, the floor
/// raised, the old segment deleted) and registers a topic. The copy must
/// still hold every record, and open.
#[test]
#[ignore = "needs Garage and a network namespace: scripts/test runs it"]
fn a_flush_and_a_new_topic_between_the_wal_and_the_manifest_keep_the_copy_whole() {
    let dir = tempfile::tempdir().unwrap();
    let g = Garage::start(dir.path(), 3965);
    let path = dir.path().join("live");
    let url = "s3://motedb/hook";
    let loc = Location::parse(url).unwrap();
    let store = Arc::new(Store::open(&path, small_tables()).unwrap());
    // 200 /imu and 10 /cam messages in the WAL and memtable only.
    write(&store, 0, 200);
    store.sync().unwrap();
    let fired = Arc::new(AtomicBool::new(false));
    let hook = {
        let (store, fired) = (store.clone(), fired.clone());
        move || {
            if !fired.swap(true, Ordering::SeqCst) {
                store.flush().unwrap();
                let late = store.register_topic(spec("/late")).unwrap();
                store.append(late, T0, T0, &payload("/late", 0)).unwrap();
                store.sync().unwrap();
            }
        }
    };
    let opts = PushOptions {
        before_manifest: Some(Arc::new(hook)),
        ..PushOptions::default()
    };
    remote::push(&path, &g.bucket(), &loc, &opts).unwrap();
    assert!(fired.load(Ordering::SeqCst));
    let got = remote_records(&g, url);
    assert_eq!(
        got["/imu"].len(),
        200,
        "the flushed records are in the copy"
    );
    assert_eq!(got["/cam"].len(), 10);
    for (topic, recs) in &got {
        for (i, (_, seq, p)) in recs.iter().enumerate() {
            assert_eq!(*seq, i as u64);
            assert!(*p == payload(topic, *seq));
        }
    }
    remote::push(&path, &g.bucket(), &loc, &PushOptions::default()).unwrap();
    assert_eq!(remote_records(&g, url), local_records(&path));
    drop(opts); // the hook holds the store
    Arc::try_unwrap(store).ok().unwrap().close().unwrap();
}

/// Every remote copy must be one consistent store: per topic the
/// sequences 0..n with the right bytes, never a hole, a duplicate or a
/// dangling value-log pointer, while the writer appends, flushes and
/// compacts underneath.
#[test]
#[ignore = "needs Garage and a network namespace: scripts/test runs it"]
fn pushes_of_a_store_being_written_are_always_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let g = Garage::start(dir.path(), 3910);
    let path = dir.path().join("live");
    let url = "s3://motedb/live";
    let loc = Location::parse(url).unwrap();
    let store = Arc::new(Store::open(&path, small_tables()).unwrap());
    write(&store, 0, 200);
    store.sync().unwrap();
    // The writer appends 20 000 rounds (1000 camera frames, 94 MiB),
    // flushing and compacting as it goes, while pushes run one after
    // another until it is done.
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            for i in (200..20_200).step_by(100) {
                write(&store, i, 100);
                if i % 2000 == 0 {
                    store.flush().unwrap();
                }
                if i % 5000 == 0 {
                    store.compact().unwrap();
                }
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    let bucket = g.bucket();
    let mut last = 0;
    let mut round = 0;
    while round < 4 || !done.load(Ordering::Relaxed) {
        let r = remote::push(&path, &bucket, &loc, &PushOptions::default()).unwrap();
        let got = remote_records(&g, url);
        for (topic, recs) in &got {
            for (i, (_, seq, p)) in recs.iter().enumerate() {
                assert_eq!(*seq, i as u64, "round {round} {topic}: a hole or duplicate");
                assert!(
                    *p == payload(topic, *seq),
                    "round {round} {topic} seq {seq}: wrong bytes"
                );
            }
        }
        let n = got.get("/imu").map_or(0, Vec::len);
        assert!(
            n >= last,
            "round {round}: the copy went back from {last} to {n}"
        );
        assert!(
            n >= 200,
            "round {round}: what was synced before is missing ({n})"
        );
        assert_eq!(
            r.summary.messages,
            got.values().map(|v| v.len() as u64).sum::<u64>()
        );
        last = n;
        round += 1;
    }
    writer.join().unwrap();
    Arc::try_unwrap(store).ok().unwrap().close().unwrap();
    remote::push(&path, &bucket, &loc, &PushOptions::default()).unwrap();
    assert_eq!(remote_records(&g, url), local_records(&path));
}

/// Waits until `cond` holds, up to `secs`.
fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs Garage and a network namespace: scripts/test runs it"]
fn kill_9_during_a_push_then_resume_sends_each_chunk_once_and_leaves_no_hole() {
    let dir = tempfile::tempdir().unwrap();
    let g = Garage::start(dir.path(), 3920);
    let path = dir.path().join("big");
    make_store(&path, 12_000); // 600 value-log messages: about 57 MiB
    let url = "s3://motedb/big";
    let loc = Location::parse(url).unwrap();

    // First push killed part way: no index, so no store yet.
    let mut child = g
        .command(&[
            "push",
            path.to_str().unwrap(),
            url,
            "--max-bytes-per-s",
            "16MiB",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(60, "three chunks uploaded", || {
        chunk_objects(&g, &loc).len() >= 3
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let before = chunk_objects(&g, &loc);
    assert!(index(&g, &loc).is_none(), "killed before the index");
    let o = g.motedb(&["info", url]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));

    let r = push_json(&g, &path, url);
    let ix = index(&g, &loc).unwrap();
    let total = ix
        .files
        .values()
        .map(|f| f.chunks.len() as u64)
        .sum::<u64>();
    assert!(r["found_chunks"].as_u64().unwrap() >= before.len() as u64 - 1);
    assert_eq!(
        r["found_chunks"].as_u64().unwrap() + r["uploaded_chunks"].as_u64().unwrap(),
        total,
        "every chunk uploaded or found, none twice"
    );
    assert_eq!(chunk_objects(&g, &loc), ix.keys().collect(), "no orphans");
    assert_eq!(remote_records(&g, url), local_records(&path));

    // An update killed part way: readers keep the old copy, whole.
    let old = remote_records(&g, url);
    let store = Store::open(&path, small_tables()).unwrap();
    write(&store, 12_000, 6000);
    store.close().unwrap();
    let mut child = g
        .command(&[
            "push",
            path.to_str().unwrap(),
            url,
            "--max-bytes-per-s",
            "16MiB",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let n = before.len().max(chunk_objects(&g, &loc).len());
    wait_until(60, "new chunks uploaded", || {
        chunk_objects(&g, &loc).len() >= n + 2
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(index(&g, &loc).unwrap().generation, 1);
    assert_eq!(remote_records(&g, url), old);
    let r = push_json(&g, &path, url);
    assert!(r["found_chunks"].as_u64().unwrap() >= 2);
    assert_eq!(r["generation"], 2);
    assert_eq!(remote_records(&g, url), local_records(&path));
}

#[test]
#[ignore = "needs Garage and a network namespace: scripts/test runs it"]
fn a_push_waits_out_a_server_that_is_down_for_a_while_and_fails_clearly_when_it_stays_down() {
    let dir = tempfile::tempdir().unwrap();
    let g = Garage::start(dir.path(), 3930);
    let path = dir.path().join("robot");
    make_store(&path, 2000);
    let url = "s3://motedb/down";
    push_json(&g, &path, url);
    let store = Store::open(&path, small_tables()).unwrap();
    write(&store, 2000, 2000);
    store.close().unwrap();

    g.stop();
    let child = g
        .command(&["--json", "push", path.to_str().unwrap(), url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The server stays down for 3 s while the push retries.
    std::thread::sleep(Duration::from_secs(3));
    let mut child = child;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the push waits for the server"
    );
    g.restart();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "push across the outage: {}",
        text(&o.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["generation"], 2);
    assert_eq!(remote_records(&g, url), local_records(&path));

    // Down for longer than --s3-retry-for: a clear error, exit 1.
    g.stop();
    let o = g.motedb(&["--s3-retry-for", "2s", "push", path.to_str().unwrap(), url]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("127.0.0.1"), "names the server: {err}");
    g.restart();
    assert_eq!(remote_records(&g, url), local_records(&path));
}

#[test]
#[ignore = "needs Garage and a network namespace: scripts/test runs it"]
fn wrong_credentials_a_missing_bucket_or_store_and_bad_urls_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let g = Garage::start(dir.path(), 3940);
    let path = dir.path().join("robot");
    make_store(&path, 100);
    let p = path.to_str().unwrap();
    let wrong = dir.path().join("wrong.env");
    let env = std::fs::read_to_string(&g.env).unwrap();
    let env: String = env
        .lines()
        .map(|l| {
            if l.contains("AWS_SECRET_ACCESS_KEY=") {
                "export AWS_SECRET_ACCESS_KEY=0000000000000000000000000000000000000000000000000000000000000000".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&wrong, env).unwrap();
    let w = wrong.to_str().unwrap();
    for args in [
        vec!["push", p, "s3://motedb/x"],
        vec!["info", "s3://motedb/x"],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_motedb"))
            .args(["--s3-credentials", w])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = text(&o.stderr);
        assert!(
            err.contains("access denied") && err.contains("AWS_SECRET_ACCESS_KEY"),
            "{err}"
        );
    }
    for (args, code, says) in [
        (
            vec!["push", p, "s3://no-such-bucket/x"],
            4,
            "bucket \"no-such-bucket\" does not exist",
        ),
        (vec!["info", "s3://no-such-bucket/x"], 4, "does not exist"),
        (
            vec!["info", "s3://motedb/nothing/here"],
            4,
            "no motedb store at s3://motedb/nothing/here",
        ),
        (vec!["push", p, "s3://Bad_Bucket/x"], 2, "bucket name"),
        (vec!["push", p, "s3://motedb/a/../b"], 2, "'..'"),
        (vec!["push", p, "http://motedb/x"], 2, "s3://"),
        (
            vec!["push", p, "s3://motedb/x", "--max-bytes-per-s", "0"],
            2,
            "above 0",
        ),
        (
            vec!["push", "/nonexistent/store", "s3://motedb/x"],
            4,
            "no store at",
        ),
    ] {
        let o = g.motedb(&args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // Nothing was written by any of them.
    assert!(g.bucket().list("").unwrap().is_empty());
    let o = Command::new(env!("CARGO_BIN_EXE_motedb"))
        .args(["info", "s3://motedb/x"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("no S3 credentials"));
}

/// Flips a byte in the middle of the object, or cuts it short.
fn damage(g: &Garage, loc: &Location, key: &str, cut: bool) {
    let b = g.bucket();
    let full = loc.key(key);
    let mut data = b.get_opt(&full).unwrap().unwrap();
    if cut {
        data.truncate(data.len() / 2);
    } else {
        let mid = data.len() / 2;
        data[mid] ^= 0x40;
    }
    b.put(&full, data).unwrap();
}

/// Reads a topic of a remote store: every record served must carry its
/// true bytes; returns how many reads failed.
fn served(g: &Garage, url: &str, topic: &str) -> usize {
    let loc = Location::parse(url).unwrap();
    let (store, _) = match remote::open_store(g.bucket(), &loc) {
        Ok(s) => s,
        Err(RemoteError::Store(_)) => return 1,
        Err(e) => panic!("{e}"),
    };
    let id = store.topic_by_name(topic).unwrap().id;
    let mut errors = 0;
    let Ok(it) = store.iter(&[id], 0, Nanos::MAX, false) else {
        return 1;
    };
    for r in it {
        match r {
            Ok(r) => assert!(
                r.payload == payload(topic, r.sequence),
                "damaged bytes served"
            ),
            Err(_) => errors += 1,
        }
    }
    errors
}

#[test]
#[ignore = "needs Garage and a network namespace: scripts/test runs it"]
fn a_damaged_object_is_detected_and_never_served_as_data() {
    let dir = tempfile::tempdir().unwrap();
    let g = Garage::start(dir.path(), 3950);
    let path = dir.path().join("robot");
    make_store(&path, 4000);
    let mut cases = Vec::new();
    for (i, kind) in [".vlog", ".sst"].iter().enumerate() {
        for cut in [false, true] {
            let url = format!("s3://motedb/damaged{i}{}", if cut { "cut" } else { "" });
            push_json(&g, &path, &url);
            let loc = Location::parse(&url).unwrap();
            let ix = index(&g, &loc).unwrap();
            let (name, f) = ix
                .files
                .iter()
                .filter(|(n, _)| n.ends_with(kind))
                .max_by_key(|(_, f)| f.size)
                .unwrap();
            let key = f.chunks[f.chunks.len() / 2].key(name);
            damage(&g, &loc, &key, cut);
            cases.push((url, key, if *kind == ".vlog" { "/cam" } else { "/imu" }));
        }
    }
    for (url, key, topic) in &cases {
        assert!(
            served(&g, url, topic) > 0,
            "{url}: damage in {key} went unnoticed"
        );
        let o = g.motedb(&["verify", url]);
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(3), "{url}: {out}");
        assert!(
            out.contains(key.as_str()),
            "{url}: verify names {key}: {out}"
        );
        let o = g.motedb(&["cat", url, topic, "--format", "json"]);
        assert_ne!(
            o.status.code(),
            Some(0),
            "{url}: cat of damaged data succeeded"
        );
    }
}

#[test]
#[ignore = "needs Garage and a network namespace: scripts/test runs it"]
fn fleet_ls_lists_each_robot_and_export_merges_them_into_one_bag() {
    let dir = tempfile::tempdir().unwrap();
    let g = Garage::start(dir.path(), 3960);
    let mut counts = Vec::new();
    for (i, n) in [1000u64, 1600].iter().enumerate() {
        let path = dir.path().join(format!("robot{}", i + 1));
        make_store(&path, *n);
        push_json(
            &g,
            &path,
            &format!("s3://motedb/fleet/site-a/robot{}", i + 1),
        );
        counts.push(*n + n.div_ceil(20));
    }
    let o = g.motedb(&["--json", "fleet", "ls", "s3://motedb/fleet"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 2, "{v}");
    for (i, s) in list.iter().enumerate() {
        assert_eq!(s["url"], format!("s3://motedb/fleet/site-a/robot{}", i + 1));
        assert_eq!(s["message_count"], counts[i]);
        assert_eq!(s["start"], T0);
    }
    let bag = dir.path().join("bag");
    let o = g.motedb(&[
        "export",
        "s3://motedb/fleet/site-a/robot1",
        bag.to_str().unwrap(),
        "--merge",
        "s3://motedb/fleet/site-a/robot2",
        "--topic",
        "/cam",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = g.motedb(&["--json", "info", bag.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let topics: BTreeMap<String, u64> = v["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["message_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        topics,
        BTreeMap::from([
            ("/robot1/cam".to_string(), 50),
            ("/robot2/cam".to_string(), 80)
        ])
    );
}

/// A real distributed object store: three Garage nodes on loopback with
/// every object on all three. With one node down, pushes and reads go on
/// (quorum 2 of 3); back up, the store verifies whole.
#[test]
#[ignore = "needs Garage and a network namespace: scripts/test runs it"]
fn a_three_node_cluster_keeps_taking_pushes_and_serving_reads_with_a_node_down() {
    let dir = tempfile::tempdir().unwrap();
    let g = Garage::cluster(dir.path(), 3800);
    let path = dir.path().join("robot");
    make_store(&path, 3000);
    let url = "s3://motedb/cluster/robot";
    push_json(&g, &path, url);
    assert_eq!(remote_records(&g, url), local_records(&path));

    run_script(&["stop", &g.node(2)]);
    assert_eq!(
        remote_records(&g, url),
        local_records(&path),
        "read with a node down"
    );
    let store = Store::open(&path, small_tables()).unwrap();
    write(&store, 3000, 3000);
    store.compact().unwrap();
    store.close().unwrap();
    let r = push_json(&g, &path, url);
    assert_eq!(r["generation"], 2, "a push with a node down");
    assert_eq!(remote_records(&g, url), local_records(&path));

    run_script(&["restart", &g.node(2)]);
    let o = g.motedb(&["verify", url]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
}

/// A node with offload remembers what retention drops (`remember_dropped`);
/// the copy keeps those files, listed at level 0 in its manifest, so the
/// bucket holds the whole recording while the robot keeps only the newest.
#[test]
#[ignore = "needs Garage and a network namespace: scripts/test runs it"]
fn what_local_retention_drops_stays_in_the_offloaded_copy() {
    use motedb::engine::{Clock, Retention, Tuning};
    use std::sync::atomic::AtomicU64;
    let dir = tempfile::tempdir().unwrap();
    let g = Garage::start(dir.path(), 3975);
    let path = dir.path().join("robot");
    let url = "s3://motedb/archive/robot";
    let loc = Location::parse(url).unwrap();
    let bucket = g.bucket();
    let wall = Arc::new(AtomicU64::new(1_000 * S));
    let w = wall.clone();
    let opts = Options {
        remember_dropped: true,
        retention: Retention {
            max_age: Some(Duration::from_secs(10)),
            ..Retention::default()
        },
        tuning: Tuning {
            background: false,
            clock: Clock(Arc::new(move || w.load(Ordering::SeqCst))),
            ..Tuning::default()
        },
        ..small_tables()
    };
    let store = Store::open(&path, opts).unwrap();
    write(&store, 0, 3000);
    store.flush().unwrap();
    remote::push(&path, &bucket, &loc, &PushOptions::default()).unwrap();
    wall.fetch_add(60 * S, Ordering::SeqCst);
    write(&store, 3000, 1000);
    store.flush().unwrap();
    let everything = records(&store);
    assert_eq!(everything["/imu"].len(), 4000);
    store.compact().unwrap();
    let kept = records(&store);
    assert!(
        kept["/imu"].len() < 4000 && !kept["/imu"].is_empty(),
        "retention dropped the old part: {}",
        kept["/imu"].len()
    );

    let r = remote::push(&path, &bucket, &loc, &PushOptions::default()).unwrap();
    assert!(r.archived_files > 0);
    assert_eq!(
        remote_records(&g, url),
        everything,
        "the copy keeps what retention dropped"
    );
    // Kept by later pushes too, also after more writes and a compaction.
    wall.fetch_add(S, Ordering::SeqCst);
    write(&store, 4000, 500);
    store.flush().unwrap();
    store.compact().unwrap();
    let now = records(&store);
    remote::push(&path, &bucket, &loc, &PushOptions::default()).unwrap();
    let got = remote_records(&g, url);
    assert_eq!(got["/imu"].len(), 4500);
    for (topic, recs) in &got {
        for (i, (_, seq, p)) in recs.iter().enumerate() {
            assert_eq!(*seq, i as u64, "{topic}: a hole or a duplicate");
            assert!(*p == payload(topic, *seq));
        }
        assert!(recs.ends_with(&now[topic]), "{topic}: the local part");
    }
    store.close().unwrap();
    let o = g.motedb(&["verify", url]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
}
