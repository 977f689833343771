//! Benchmark probe (`MOTEDB_BENCH_LATENCY=<file>`): time from publish to
//! durable for every message written. The writer notes each message's
//! source timestamp with the WAL position its record ends at; a thread
//! polls the position the WAL is fsynced to every 200 us and takes the
//! wall-clock time at which each message became durable. At the writer's
//! end the percentiles go to the file as one JSON object. Publisher and node
//! share the machine's realtime clock (both are on this host).

use crate::engine::Store;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const POLL: Duration = Duration::from_micros(200);

pub struct LatencyProbe {
    path: PathBuf,
    /// (WAL position, publish time ns), oldest first.
    pending: Mutex<VecDeque<(u64, u64)>>,
    /// Nanoseconds from publish to durable.
    samples: Mutex<Vec<u64>>,
    /// Messages without a source timestamp (not measurable).
    unstamped: Mutex<u64>,
    stop: AtomicBool,
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl LatencyProbe {
    /// The probe and its polling thread when the variable is set.
    pub fn from_env(store: &Arc<Store>) -> Option<(Arc<LatencyProbe>, JoinHandle<()>)> {
        let path = std::env::var_os("MOTEDB_BENCH_LATENCY")?;
        let probe = Arc::new(LatencyProbe {
            path: PathBuf::from(path),
            pending: Mutex::new(VecDeque::new()),
            samples: Mutex::new(Vec::new()),
            unstamped: Mutex::new(0),
            stop: AtomicBool::new(false),
        });
        let (p, s) = (Arc::clone(&probe), Arc::clone(store));
        let thread = std::thread::Builder::new()
            .name("motedb-latency".into())
            .spawn(move || p.poll(&s))
            .ok()?;
        Some((probe, thread))
    }

    /// A message was written (its record ends at or before the WAL's
    /// current position).
    pub fn written(&self, store: &Store, publish_ns: u64) {
        if publish_ns == 0 {
            *self.unstamped.lock() += 1;
            return;
        }
        let (added, _) = store.wal_positions();
        self.pending.lock().push_back((added, publish_ns));
    }

    fn poll(&self, store: &Store) {
        while !self.stop.load(Ordering::Acquire) {
            let (_, synced) = store.wal_positions();
            let now = now_ns();
            let mut p = self.pending.lock();
            let mut s = self.samples.lock();
            while p.front().is_some_and(|(lsn, _)| *lsn <= synced) {
                if let Some((_, published)) = p.pop_front() {
                    s.push(now.saturating_sub(published));
                }
            }
            drop((p, s));
            std::thread::sleep(POLL);
        }
    }

    /// Waits up to a second for the periodic fsync to cover what was
    /// written, stops polling and writes the summary; messages still not
    /// durable are counted as such.
    pub fn finish(&self, thread: JoinHandle<()>) {
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while !self.pending.lock().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        self.stop.store(true, Ordering::Release);
        let _joined = thread.join();
        let mut s = std::mem::take(&mut *self.samples.lock());
        s.sort_unstable();
        let pct = |q: f64| -> f64 {
            if s.is_empty() {
                return 0.0;
            }
            let i = ((s.len() as f64 * q).ceil() as usize).clamp(1, s.len()) - 1;
            s[i] as f64 / 1e6
        };
        let text = serde_json::json!({
            "samples": s.len(),
            "not_durable_at_stop": self.pending.lock().len(),
            "unstamped": *self.unstamped.lock(),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": pct(1.0),
        })
        .to_string();
        if let Err(e) = std::fs::write(&self.path, text) {
            eprintln!("latency probe: {}: {e}", self.path.display());
        }
    }
}
