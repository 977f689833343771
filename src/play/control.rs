//! What a player is asked while it plays (pause, resume, rate, play next:
//! from its services or the terminal) and what it tells back (position,
//! progress). One mutex and one condition variable: the player waits on
//! it for a message's due time, so a request wakes it at once.
//!
//! The semantics are rosbag2's player's: pausing a paused player or
//! resuming a running one changes nothing; `play_next` publishes the next
//! message at once and only while paused; a rate must be > 0.

use super::check_rate;
use crate::engine::Nanos;
use parking_lot::{Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct State {
    paused: bool,
    rate: f64,
    /// `play_next` requests made so far.
    next_asked: u64,
    /// `play_next` requests served so far (a message published for each).
    next_served: u64,
    /// No message is left: requests beyond `next_served` fail.
    finished: bool,
    /// Log time of the last message published, 0 before the first.
    position: Nanos,
    published: u64,
}

/// Shared between the player and whoever controls it.
#[derive(Debug)]
pub struct Control {
    state: Mutex<State>,
    changed: Condvar,
}

/// What the player applies before each wait.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wanted {
    pub paused: bool,
    pub rate: f64,
    /// A `play_next` request waits for the next message.
    pub next: bool,
}

/// Where the player is, for a progress line or a service.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    pub paused: bool,
    pub rate: f64,
    pub position: Nanos,
    pub published: u64,
    pub finished: bool,
}

impl Control {
    pub fn new(rate: f64, start_paused: bool) -> Result<Control, String> {
        Ok(Control {
            state: Mutex::new(State {
                paused: start_paused,
                rate: check_rate(rate)?,
                next_asked: 0,
                next_served: 0,
                finished: false,
                position: 0,
                published: 0,
            }),
            changed: Condvar::new(),
        })
    }

    fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.state.lock());
        self.changed.notify_all();
        out
    }

    /// Pauses; false when it already was.
    pub fn pause(&self) -> bool {
        self.update(|s| !std::mem::replace(&mut s.paused, true))
    }

    /// Resumes; false when it was not paused.
    pub fn resume(&self) -> bool {
        self.update(|s| std::mem::replace(&mut s.paused, false))
    }

    /// Flips pause; the new state (true: paused).
    pub fn toggle_paused(&self) -> bool {
        self.update(|s| {
            s.paused = !s.paused;
            s.paused
        })
    }

    pub fn is_paused(&self) -> bool {
        self.state.lock().paused
    }

    pub fn set_rate(&self, rate: f64) -> Result<(), String> {
        let rate = check_rate(rate)?;
        self.update(|s| s.rate = rate);
        Ok(())
    }

    /// Multiplies the rate (the terminal's arrow keys), within
    /// [1/1000, 1000].
    pub fn scale_rate(&self, factor: f64) -> f64 {
        self.update(|s| {
            s.rate = (s.rate * factor).clamp(1e-3, 1e3);
            s.rate
        })
    }

    /// Publishes the next message now, while paused; waits up to
    /// `timeout` for the player to do so. The log time of the message.
    pub fn play_next(&self, timeout: Duration) -> Result<Nanos, String> {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.lock();
        if !s.paused {
            return Err("not paused: play_next works while playback is paused".into());
        }
        if s.finished {
            return Err("no message left to play".into());
        }
        s.next_asked += 1;
        let ticket = s.next_asked;
        self.changed.notify_all();
        while s.next_served < ticket {
            if s.finished {
                // Requests not served by the end are withdrawn.
                s.next_asked = s.next_served;
                return Err("no message left to play".into());
            }
            if self.changed.wait_until(&mut s, deadline).timed_out() {
                s.next_asked = s.next_asked.saturating_sub(1).max(s.next_served);
                return Err(format!(
                    "the player did not publish within {} s",
                    timeout.as_secs_f64()
                ));
            }
        }
        Ok(s.position)
    }

    /// What the player should do now.
    pub fn wanted(&self) -> Wanted {
        let s = self.state.lock();
        Wanted {
            paused: s.paused,
            rate: s.rate,
            next: s.next_asked > s.next_served,
        }
    }

    /// The player published a message of log time `log`; `for_next` when
    /// it was for a `play_next` request.
    pub fn published(&self, log: Nanos, for_next: bool) {
        self.update(|s| {
            s.position = log;
            s.published += 1;
            if for_next && s.next_served < s.next_asked {
                s.next_served += 1;
            }
        });
    }

    /// Nothing is left to play.
    pub fn finish(&self) {
        self.update(|s| s.finished = true);
    }

    pub fn progress(&self) -> Progress {
        let s = self.state.lock();
        Progress {
            paused: s.paused,
            rate: s.rate,
            position: s.position,
            published: s.published,
            finished: s.finished,
        }
    }

    /// Waits until `until` or until a request changes something.
    pub fn wait(&self, until: Instant) {
        let mut s = self.state.lock();
        let _timed_out = self.changed.wait_until(&mut s, until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn pause_resume_and_toggle_follow_rosbag2() {
        let c = Control::new(1.0, false).expect("rate");
        assert!(!c.resume(), "resuming a running player changes nothing");
        assert!(c.pause());
        assert!(!c.pause(), "pausing twice changes nothing");
        assert!(c.is_paused());
        assert!(!c.toggle_paused());
        assert!(!c.is_paused());
        assert!(c.toggle_paused());
        assert!(c.resume());
        let c = Control::new(1.0, true).expect("rate");
        assert!(c.is_paused(), "--start-paused");
    }

    #[test]
    fn rates_must_be_positive_and_finite() {
        let c = Control::new(1.0, false).expect("rate");
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(c.set_rate(bad).is_err(), "{bad}");
        }
        assert_eq!(c.wanted().rate, 1.0);
        c.set_rate(2.5).expect("rate");
        assert_eq!(c.wanted().rate, 2.5);
        assert_eq!(c.scale_rate(1e6), 1e3);
        assert!(Control::new(0.0, false).is_err());
    }

    #[test]
    fn play_next_is_answered_once_the_player_published() {
        let c = Arc::new(Control::new(1.0, false).expect("rate"));
        let err = c.play_next(Duration::from_secs(1)).expect_err("running");
        assert!(err.contains("not paused"), "{err}");
        c.pause();
        // A player that serves one request.
        let player = {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                while !c.wanted().next {
                    c.wait(Instant::now() + Duration::from_millis(5));
                }
                c.published(42, true);
            })
        };
        assert_eq!(c.play_next(Duration::from_secs(10)), Ok(42));
        player.join().expect("player");
        let p = c.progress();
        assert_eq!((p.position, p.published), (42, 1));
        assert!(!c.wanted().next, "the request was served");
        // Nobody plays: the request times out and is withdrawn.
        let err = c
            .play_next(Duration::from_millis(20))
            .expect_err("timed out");
        assert!(err.contains("did not publish"), "{err}");
        assert!(!c.wanted().next, "a timed-out request is withdrawn");
        // At the end every request fails at once.
        c.finish();
        let err = c.play_next(Duration::from_secs(10)).expect_err("finished");
        assert!(err.contains("no message left"), "{err}");
    }

    #[test]
    fn a_waiting_play_next_fails_when_the_player_reaches_the_end() {
        let c = Arc::new(Control::new(1.0, true).expect("rate"));
        let ender = {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                while !c.wanted().next {
                    c.wait(Instant::now() + Duration::from_millis(5));
                }
                c.finish();
            })
        };
        let err = c.play_next(Duration::from_secs(10)).expect_err("ended");
        assert!(err.contains("no message left"), "{err}");
        ender.join().expect("ender");
        assert!(!c.wanted().next);
    }
}
