//! `motedb play` on a terminal: a progress line on stderr and rosbag2's
//! keys on stdin (space: pause or resume; right arrow: play the next
//! message while paused; up and down arrows: rate times 1.1 or 0.9).
//! Nothing happens when stderr or stdin is not a terminal.

use motedb::engine::Nanos;
use motedb::play::keys::{next_key, Key};
use motedb::play::Control;
use std::io::{IsTerminal, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the progress line is redrawn and the keys thread looks at
/// its stop flag.
const TICK: Duration = Duration::from_millis(200);

pub(crate) struct Terminal {
    done: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// The terminal settings to restore (keys were read).
    saved: Option<libc::termios>,
    drew: bool,
}

impl Terminal {
    pub(crate) fn start(control: Arc<Control>, keys: bool, (start, end): (Nanos, Nanos)) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        // Raw mode first, so no key typed once the progress line shows is
        // read in line mode.
        let saved = if keys && std::io::stdin().is_terminal() && foreground() {
            raw_mode()
        } else {
            None
        };
        if saved.is_some() {
            let (c, d) = (Arc::clone(&control), Arc::clone(&done));
            let spawned = std::thread::Builder::new()
                .name("motedb-keys".into())
                .spawn(move || read_keys(&c, &d));
            threads.extend(spawned.ok());
        }
        let drew = std::io::stderr().is_terminal();
        if drew {
            let d = Arc::clone(&done);
            let spawned = std::thread::Builder::new()
                .name("motedb-progress".into())
                .spawn(move || draw(&control, &d, start, end));
            threads.extend(spawned.ok());
        }
        Terminal {
            done,
            threads,
            saved,
            drew,
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _joined = t.join();
        }
        if let Some(saved) = self.saved {
            // SAFETY: restores the settings read from the same descriptor.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved);
            }
        }
        if self.drew {
            eprintln!();
        }
    }
}

/// True when this process is in the terminal's foreground process group:
/// changing the terminal from the background (`motedb play ... &`) would
/// stop the process with SIGTTOU.
fn foreground() -> bool {
    // SAFETY: plain queries of the process group and the terminal's.
    unsafe { libc::tcgetpgrp(libc::STDIN_FILENO) == libc::getpgrp() }
}

/// Keys one at a time without echo; the settings before, to restore.
fn raw_mode() -> Option<libc::termios> {
    // SAFETY: tcgetattr/tcsetattr on stdin with a zeroed, then filled,
    // termios.
    unsafe {
        let mut saved: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
            return None;
        }
        let mut raw = saved;
        raw.c_lflag &= !(libc::ICANON | libc::ECHO);
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw) != 0 {
            return None;
        }
        Some(saved)
    }
}

fn draw(control: &Control, done: &AtomicBool, start: Nanos, end: Nanos) {
    let span = end.saturating_sub(start).max(1) as f64;
    while !done.load(Ordering::Acquire) {
        let p = control.progress();
        let at = p.position.max(start);
        let line = format!(
            "\r[{}] bag time {:.3} s  {:5.1} %  rate {:.2}  published {}   ",
            if p.paused { "PAUSED " } else { "RUNNING" },
            at as f64 / 1e9,
            (at - start) as f64 / span * 100.0,
            p.rate,
            p.published
        );
        let mut err = std::io::stderr().lock();
        let _written = err.write_all(line.as_bytes()).and_then(|()| err.flush());
        drop(err);
        std::thread::sleep(TICK);
    }
}

fn read_keys(control: &Control, done: &AtomicBool) {
    let mut pending: Vec<u8> = Vec::new();
    while !done.load(Ordering::Acquire) {
        let mut fds = libc::pollfd {
            fd: libc::STDIN_FILENO,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut fds, 1, TICK.as_millis() as libc::c_int) };
        if ready <= 0 {
            continue;
        }
        let mut buf = [0u8; 16];
        let n = match std::io::stdin().lock().read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some((key, used)) = next_key(&pending) {
            pending.drain(..used);
            match key {
                Key::Space => {
                    control.toggle_paused();
                }
                Key::Right => {
                    // Refused unless paused, as rosbag2's key.
                    let _served = control.play_next(Duration::from_secs(1));
                }
                Key::Up => {
                    control.scale_rate(1.1);
                }
                Key::Down => {
                    control.scale_rate(0.9);
                }
                Key::Other => {}
            }
        }
    }
}
