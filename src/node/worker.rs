//! A small pool of threads that run queries and exports, so the executor
//! thread never waits on disk.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The longest shutdown waits for running queries and a cancelled export.
pub const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a job was not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// As many jobs as the lane takes are running or waiting.
    Busy,
    /// The node is shutting down.
    ShuttingDown,
    /// The job started but gave no answer (it panicked).
    Failed,
}

impl Refused {
    /// What the client is told, for a job doing `what`.
    pub fn message(self, what: &str) -> String {
        match self {
            Refused::Busy => format!(
                "busy: as many {what}s as the node takes at once are running or waiting; try again later"
            ),
            Refused::ShuttingDown => format!("{what} worker unavailable (node shutting down)"),
            Refused::Failed => format!("the {what} failed unexpectedly (see the node's log)"),
        }
    }
}

/// The node's three lanes, so a long export or a large query never delays
/// `~/get_latest` (a planner's "latest pose" must not wait on a bag):
/// `latest` (1 thread), `queries` (1 thread) and `exports` (1 thread, at
/// most 2 requests running or waiting: a third is told "busy" rather than
/// queued behind hours of export). `cancel_exports` stops a running export
/// at shutdown (its partial bag is removed).
pub struct Lanes {
    pub latest: Workers,
    pub queries: Workers,
    pub exports: Workers,
    pub cancel_exports: Arc<AtomicBool>,
}

impl Default for Lanes {
    fn default() -> Lanes {
        Lanes {
            latest: Workers::new(1, 64),
            queries: Workers::new(1, 64),
            exports: Workers::new(1, 2),
            cancel_exports: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Lanes {
    /// Cancels running exports (their partial bags are removed) and waits,
    /// up to `timeout`, until no lane runs or holds a job: after this no
    /// job touches the store. False when jobs were still running.
    pub fn cancel_and_wait(&self, timeout: std::time::Duration) -> bool {
        self.cancel_exports.store(true, Ordering::SeqCst);
        // Jobs still queued are dropped unstarted (their clients are told
        // the node is shutting down); only running ones are waited for.
        for w in [&self.latest, &self.queries, &self.exports] {
            w.closing.store(true, Ordering::SeqCst);
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let busy = [&self.latest, &self.queries, &self.exports]
                .iter()
                .any(|w| w.pending.load(Ordering::Acquire) > 0);
            if !busy {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

pub struct Workers {
    sender: Option<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    /// Jobs submitted and not finished, and the most allowed.
    pending: Arc<AtomicUsize>,
    max_pending: usize,
    /// Set at shutdown: queued jobs are dropped instead of run.
    closing: Arc<AtomicBool>,
}

impl Workers {
    /// `count` threads taking at most `max_pending` jobs (running or
    /// waiting) at a time.
    pub fn new(count: usize, max_pending: usize) -> Workers {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(parking_lot::Mutex::new(receiver));
        let threads = (0..count.max(1))
            .map(|i| {
                let receiver = Arc::clone(&receiver);
                std::thread::Builder::new()
                    .name(format!("motedb-query-{i}"))
                    .spawn(move || loop {
                        let job = receiver.lock().recv();
                        match job {
                            // A panicking query must not take the worker
                            // with it; its caller sees the dropped reply.
                            Ok(job) => {
                                let _outcome =
                                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    })
            })
            .filter_map(|t| t.ok())
            .collect();
        Workers {
            sender: Some(sender),
            threads,
            pending: Arc::new(AtomicUsize::new(0)),
            max_pending: max_pending.max(1),
            closing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Runs `job` on a worker and yields its answer to the caller's
    /// executor; refused when the lane is full or shutting down.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refused> {
        let (tx, rx) = futures::channel::oneshot::channel();
        let closing = Arc::clone(&self.closing);
        self.submit(move || {
            let _receiver_gone = tx.send(job());
        })?;
        rx.await.map_err(|_| {
            if closing.load(Ordering::SeqCst) {
                Refused::ShuttingDown
            } else {
                Refused::Failed
            }
        })
    }

    /// Runs `job` on a worker.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Refused> {
        let Some(sender) = self.sender.as_ref().filter(|_| !self.threads.is_empty()) else {
            return Err(Refused::ShuttingDown);
        };
        let pending = Arc::clone(&self.pending);
        let admitted = pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_pending).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            return Err(Refused::Busy);
        }
        let (done, closing) = (Arc::clone(&pending), Arc::clone(&self.closing));
        sender
            .send(Box::new(move || {
                // Released even when the job panics (the guard drops).
                let _release = Release(done);
                if !closing.load(Ordering::SeqCst) {
                    job();
                }
            }))
            .map_err(|_| {
                pending.fetch_sub(1, Ordering::AcqRel);
                Refused::ShuttingDown
            })
    }
}

/// Counts a job as finished when dropped.
struct Release(Arc<AtomicUsize>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Workers {
    /// Lets queued jobs finish, then joins the threads.
    fn drop(&mut self) {
        self.sender.take();
        for t in self.threads.drain(..) {
            let _joined = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    #[test]
    fn a_full_lane_says_busy_and_takes_jobs_again_when_one_finishes() {
        let w = Workers::new(1, 2);
        let (release, gate) = channel::<()>();
        let gate = Arc::new(parking_lot::Mutex::new(gate));
        let (started, running) = channel::<()>();
        for _ in 0..2 {
            let (gate, started) = (Arc::clone(&gate), started.clone());
            w.submit(move || {
                let _ = started.send(());
                let _ = gate.lock().recv();
            })
            .unwrap();
        }
        running.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(w.submit(|| {}), Err(Refused::Busy));
        release.send(()).unwrap();
        running.recv_timeout(Duration::from_secs(10)).unwrap();
        // One finished: one slot free again.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while w.submit(|| {}).is_err() {
            assert!(std::time::Instant::now() < deadline, "slot never freed");
            std::thread::yield_now();
        }
        release.send(()).unwrap();
    }

    #[test]
    fn a_panicking_job_frees_its_slot() {
        let w = Workers::new(1, 1);
        w.submit(|| panic!("job fails")).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while w.submit(|| {}).is_err() {
            assert!(std::time::Instant::now() < deadline, "slot never freed");
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_long_export_does_not_delay_latest() {
        let lanes = Lanes::default();
        let (release, gate) = channel::<()>();
        lanes
            .exports
            .submit(move || {
                let _ = gate.recv();
            })
            .unwrap();
        let (tx, rx) = channel();
        lanes.latest.submit(move || tx.send(42).unwrap()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 42);
        release.send(()).unwrap();
        assert!(lanes.cancel_and_wait(Duration::from_secs(10)));
    }

    #[test]
    fn shutting_down_cancels_a_running_export_and_waits_for_it() {
        let lanes = Lanes::default();
        let cancel = Arc::clone(&lanes.cancel_exports);
        let (tx, rx) = channel();
        let (started, running) = channel::<()>();
        lanes
            .exports
            .submit(move || {
                started.send(()).unwrap();
                while !cancel.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                tx.send("cancelled").unwrap();
            })
            .unwrap();
        running.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(lanes.cancel_and_wait(Duration::from_secs(10)));
        assert_eq!(rx.try_recv(), Ok("cancelled"));
    }

    #[test]
    fn queued_jobs_are_dropped_unstarted_at_shutdown() {
        let lanes = Lanes::default();
        let (release, gate) = channel::<()>();
        let (started, running) = channel::<()>();
        lanes
            .queries
            .submit(move || {
                started.send(()).unwrap();
                let _ = gate.recv();
            })
            .unwrap();
        running.recv_timeout(Duration::from_secs(10)).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            let ran = Arc::clone(&ran);
            lanes
                .queries
                .submit(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
        }
        let waiter = std::thread::spawn(move || {
            let idle = lanes.cancel_and_wait(Duration::from_secs(10));
            (idle, lanes)
        });
        std::thread::sleep(Duration::from_millis(20));
        release.send(()).unwrap();
        let (idle, _lanes) = waiter.join().unwrap();
        assert!(idle);
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "queued jobs ran after shutdown began"
        );
    }

    #[test]
    fn a_panicking_job_is_reported_as_failed_not_as_shutting_down() {
        let w = Workers::new(1, 4);
        let got = futures::executor::block_on(w.run(|| -> u32 { panic!("query bug") }));
        assert_eq!(got, Err(Refused::Failed));
    }
}
