//! SIGINT/SIGTERM set a flag that the spin loop polls; shutdown then runs on
//! the main thread (flush, close), never in a signal context.
//!
//! The two signals are blocked in the main thread before any other thread
//! exists, so every thread (the middleware's too) inherits the mask, and
//! one thread takes them with sigwait. No thread is ever interrupted by
//! them: a handler without SA_RESTART made blocking calls in whatever
//! thread the kernel picked fail with EINTR, which not every library
//! retries (a node once hung on SIGINT at shutdown this way, it seems).

use super::error::{NodeError, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static RECEIVED: AtomicU64 = AtomicU64::new(0);

fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset fill a zeroed set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

/// Blocks SIGINT and SIGTERM in the calling thread and every thread it
/// starts from now on, and starts the thread that waits for them. Call it
/// first, before any thread is spawned.
pub fn install() -> Result<()> {
    let set = stop_signals();
    // SAFETY: a filled set; the old mask is not wanted.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(NodeError::Signal(std::io::Error::from_raw_os_error(rc)));
    }
    std::thread::Builder::new()
        .name("motedb-sigwait".into())
        .spawn(move || loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: the set is blocked in this thread too (inherited),
            // as sigwait requires.
            if unsafe { libc::sigwait(&set, &mut signal) } == 0 {
                STOP.store(true, Ordering::SeqCst);
                RECEIVED.fetch_add(1, Ordering::SeqCst);
            }
        })
        .map_err(NodeError::Signal)?;
    Ok(())
}

/// How many SIGINT/SIGTERM the process got.
pub fn received() -> u64 {
    RECEIVED.load(Ordering::SeqCst)
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Asks the spin loop to stop, as a signal would.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}
