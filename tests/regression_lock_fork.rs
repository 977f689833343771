//! The store lock must belong to the process that opened the store, not to
//! whichever processes share its open file description. With flock, a child
//! forked by any thread (before it execs) kept the lock of a store the parent
//! had already closed, so reopening it failed with `Locked`: the SIGKILL loop
//! test hit this at random ("child never became ready ... Locked { pid:
//! <the test process> }") while another test thread was spawning children.

use motedb::engine::{Error, Options, Store};

/// Forks a child that blocks until told to exit; returns (pid, write end).
fn fork_waiting_child() -> (libc::pid_t, libc::c_int) {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: plain pipe/fork; the child only calls async-signal-safe
    // functions (read, _exit) before exiting.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let mut b = [0u8; 1];
            libc::read(fds[0], b.as_mut_ptr().cast(), 1);
            libc::_exit(0);
        }
        libc::close(fds[0]);
        (pid, fds[1])
    }
}

fn release(pid: libc::pid_t, w: libc::c_int) {
    // SAFETY: writing one byte to our pipe end, then reaping our child.
    unsafe {
        libc::write(w, [1u8].as_ptr().cast(), 1);
        libc::close(w);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
    }
}

#[test]
fn regression_closed_store_reopens_while_a_forked_child_lives() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let (pid, w) = fork_waiting_child();
    drop(store);
    let reopened = Store::open(dir.path(), Options::default());
    release(pid, w);
    assert!(
        reopened.is_ok(),
        "reopen after close failed: {:?}",
        reopened.err()
    );
}

#[test]
fn second_open_in_one_process_is_still_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path(), Options::default()).unwrap();
    let pid = std::process::id();
    assert!(matches!(
        Store::open(dir.path(), Options::default()),
        Err(Error::Locked { pid: Some(p), .. }) if p == pid
    ));
    // The refused attempt must not have dropped the first holder's lock.
    assert!(matches!(
        Store::open(dir.path(), Options::default()),
        Err(Error::Locked { .. })
    ));
    drop(first);
    assert!(Store::open(dir.path(), Options::default()).is_ok());
}
