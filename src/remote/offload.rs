//! The node's offload: `push` of its store every period in a thread of its
//! own, with its state for `/diagnostics`. A failed round (server down,
//! network lost) is retried the next period and resumes where it stopped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{push, Bucket, Config, Location, PushOptions, Result};

/// What the offload did last; `/diagnostics` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffloadStatus {
    pub url: String,
    /// Rounds finished, successful or not.
    pub rounds: u64,
    pub failures_in_a_row: u64,
    /// The last failure's message (empty after a success).
    pub last_error: String,
    /// The last failure will not pass by itself: the URL holds another
    /// store's copy, which only a person may replace.
    pub refused: bool,
    /// Wall-clock ns of the last successful round.
    pub last_success_ns: Option<u64>,
    /// Remote index generation.
    pub generation: u64,
    /// Bytes the remote copy holds.
    pub remote_bytes: u64,
    /// Bytes uploaded since the node started.
    pub uploaded_bytes: u64,
    /// A round is running now.
    pub pushing: bool,
}

/// The files of the last committed remote copy with their sizes: what
/// `retention.require_offloaded` lets retention drop.
pub type Offloaded = Arc<parking_lot::RwLock<std::collections::HashMap<String, u64>>>;

/// A retention guard over `offloaded`: a file of `dir` may go once the
/// remote copy holds it whole.
pub fn offloaded_guard(dir: PathBuf, offloaded: Offloaded) -> crate::engine::RetentionGuard {
    crate::engine::RetentionGuard(Arc::new(move |name: &str| {
        let Some(remote) = offloaded.read().get(name).copied() else {
            return false;
        };
        std::fs::metadata(dir.join(name)).is_ok_and(|m| m.len() <= remote)
    }))
}

pub struct OffloadSettings {
    /// Updated after each committed round.
    pub offloaded: Offloaded,
    pub dir: PathBuf,
    pub config: Config,
    pub location: Location,
    pub period: Duration,
    pub max_bytes_per_s: Option<u64>,
}

pub struct Offloader {
    settings: Arc<OffloadSettings>,
    bucket: Arc<Bucket>,
    status: Arc<Mutex<OffloadStatus>>,
    stop: Arc<AtomicBool>,
    wake: Arc<(Mutex<()>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Offloader {
    /// Starts the thread; the first round runs at once. Fails only on bad
    /// settings (no credentials, an unusable endpoint), never on the network.
    pub fn start(s: OffloadSettings) -> Result<Offloader> {
        let bucket = Bucket::connect(&s.config, &s.location.bucket)?;
        let s = Arc::new(s);
        let status = Arc::new(Mutex::new(OffloadStatus {
            url: s.location.to_string(),
            ..OffloadStatus::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let wake = Arc::new((Mutex::new(()), Condvar::new()));
        let thread = {
            let (status, stop, wake) = (status.clone(), stop.clone(), wake.clone());
            let (s, bucket) = (s.clone(), bucket.clone());
            std::thread::Builder::new()
                .name("motedb-offload".into())
                .spawn(move || run(&s, &bucket, &status, &stop, &wake))
                .map_err(|e| super::RemoteError::Local {
                    path: "offload thread".into(),
                    source: e,
                })?
        };
        Ok(Offloader {
            settings: s,
            bucket,
            status,
            stop,
            wake,
            thread: Some(thread),
        })
    }

    pub fn status(&self) -> OffloadStatus {
        self.status.lock().clone()
    }

    /// A shared handle on the status, for the diagnostics.
    pub fn status_handle(&self) -> Arc<Mutex<OffloadStatus>> {
        self.status.clone()
    }
}

impl Offloader {
    /// Stops the periodic rounds; a running one gives up at once (its
    /// requests and throttle watch the stop flag; the next start resumes
    /// what it uploaded).
    pub fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        {
            let _held = self.wake.0.lock();
            self.wake.1.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _joined = t.join();
        }
    }

    /// One last round, for after the store is closed (its memtables are
    /// then in tables): given up once `limit` has passed since the call.
    pub fn finish(mut self, limit: Duration) -> Result<super::PushReport> {
        let cancel = Arc::new(AtomicBool::new(false));
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let timer = {
            let (cancel, done) = (cancel.clone(), done.clone());
            std::thread::spawn(move || {
                let mut finished = done.0.lock();
                let deadline = Instant::now() + limit;
                while !*finished {
                    if done.1.wait_until(&mut finished, deadline).timed_out() {
                        cancel.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            })
        };
        // Within the limit: the periodic round stops at once (its requests
        // watch the stop flag), then this one runs until the timer.
        self.halt();
        let opts = PushOptions {
            max_bytes_per_s: self.settings.max_bytes_per_s,
            cancel: Some(cancel),
            ..PushOptions::default()
        };
        let r = push(
            &self.settings.dir,
            &self.bucket,
            &self.settings.location,
            &opts,
        );
        *done.0.lock() = true;
        done.1.notify_all();
        let _joined = timer.join();
        r
    }
}

impl Drop for Offloader {
    fn drop(&mut self) {
        self.halt();
    }
}

fn run(
    s: &OffloadSettings,
    bucket: &Arc<Bucket>,
    status: &Mutex<OffloadStatus>,
    stop: &Arc<AtomicBool>,
    wake: &(Mutex<()>, Condvar),
) {
    let opts = PushOptions {
        max_bytes_per_s: s.max_bytes_per_s,
        cancel: Some(stop.clone()),
        ..PushOptions::default()
    };
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        status.lock().pushing = true;
        let r = push(&s.dir, bucket, &s.location, &opts);
        {
            let mut st = status.lock();
            st.pushing = false;
            st.rounds += 1;
            match r {
                Ok(r) => {
                    *s.offloaded.write() = r.files_committed.clone();
                    st.failures_in_a_row = 0;
                    st.last_error.clear();
                    st.refused = false;
                    st.last_success_ns = Some(crate::export::timearg::now_ns());
                    st.generation = r.generation;
                    st.remote_bytes = r.store_bytes;
                    st.uploaded_bytes += r.uploaded_bytes;
                }
                Err(super::RemoteError::Cancelled) => break,
                Err(e) => {
                    st.failures_in_a_row += 1;
                    st.refused = matches!(e, super::RemoteError::OtherStore { .. });
                    st.last_error = e.to_string();
                }
            }
        }
        let mut held = wake.0.lock();
        while !stop.load(Ordering::Relaxed) {
            let Some(left) = s.period.checked_sub(started.elapsed()) else {
                break;
            };
            wake.1.wait_for(&mut held, left);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_lets_a_file_go_only_once_the_copy_holds_it_whole() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("000001.vlog"), vec![0u8; 100]).expect("write");
        std::fs::write(dir.path().join("000002.sst"), vec![0u8; 10]).expect("write");
        let offloaded = Offloaded::default();
        let guard = offloaded_guard(dir.path().to_path_buf(), offloaded.clone());
        assert!(!(guard.0)("000001.vlog"), "nothing offloaded yet");
        offloaded.write().insert("000001.vlog".into(), 60);
        offloaded.write().insert("000002.sst".into(), 10);
        assert!(
            !(guard.0)("000001.vlog"),
            "only 60 of its 100 bytes are remote"
        );
        assert!((guard.0)("000002.sst"));
        offloaded.write().insert("000001.vlog".into(), 100);
        assert!((guard.0)("000001.vlog"));
        assert!(!(guard.0)("000003.sst"), "a file the copy does not name");
    }
}
