//! A small pool of threads that run queries and exports, so the executor
//! thread never waits on disk.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

pub struct Workers {
    sender: Option<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    pub fn new(count: usize) -> Workers {
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
        }
    }

    /// Runs `job` on a worker and yields its answer to the caller's
    /// executor; `None` when no worker takes it (shutting down).
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = futures::channel::oneshot::channel();
        if !self.submit(move || {
            let _receiver_gone = tx.send(job());
        }) {
            return None;
        }
        rx.await.ok()
    }

    /// Runs `job` on a worker; false when no worker is left.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) -> bool {
        match &self.sender {
            Some(s) if !self.threads.is_empty() => s.send(Box::new(job)).is_ok(),
            _ => false,
        }
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
