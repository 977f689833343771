//! SIGINT/SIGTERM reach the node as a flag, never as an interruption: after
//! `signals::install` every new thread has them blocked, and a signal sent
//! to the process sets the stop flag. Its own binary without the test
//! harness (`harness = false`), so `install` runs first, on the main
//! thread, as in the node, and no thread exists that could take the signal
//! with its default action (terminate).

use std::time::{Duration, Instant};

use motedb::node::signals;

fn blocked_here(signal: libc::c_int) -> bool {
    // SAFETY: queries this thread's mask into a zeroed set.
    unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
        libc::sigismember(&mask, signal) == 1
    }
}

fn main() {
    signals::install().expect("install");
    // A thread the middleware would start later inherits the mask: a
    // signal never interrupts its blocking calls (EINTR).
    let in_new_thread =
        std::thread::spawn(|| (blocked_here(libc::SIGINT), blocked_here(libc::SIGTERM)))
            .join()
            .expect("thread");
    assert_eq!(
        in_new_thread,
        (true, true),
        "stop signals not blocked in new threads"
    );
    for (n, signal) in [libc::SIGTERM, libc::SIGINT].into_iter().enumerate() {
        // SAFETY: a signal to this process, which blocks it everywhere but
        // in sigwait.
        assert_eq!(unsafe { libc::kill(libc::getpid(), signal) }, 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        while signals::received() <= n as u64 {
            assert!(Instant::now() < deadline, "signal {signal} was not taken");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(signals::stop_requested());
    }
    println!("node_signals: ok");
}
