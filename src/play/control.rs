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
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct State {
    paused: bool,
    rate: f64,
    /// Bumped by every change, so a player that read the state and then
    /// waits misses no request made in between.
    generation: u64,
    /// The last `play_next` ticket given out.
    tickets: u64,
    /// `play_next` tickets waiting for a message, oldest first.
    queued: VecDeque<u64>,
    /// Served tickets not yet collected, with the log time published.
    served: HashMap<u64, Nanos>,
    /// No message is left: requests fail at once.
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
    /// Pass to `wait`.
    pub generation: u64,
}

/// Where the player is, for a progress line or a service.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    pub paused: bool,
    pub rate: f64,
    pub position: Nanos,
    pub published: u64,
}

impl Control {
    pub fn new(rate: f64, start_paused: bool) -> Result<Control, String> {
        Ok(Control {
            state: Mutex::new(State {
                paused: start_paused,
                rate: check_rate(rate)?,
                generation: 0,
                tickets: 0,
                queued: VecDeque::new(),
                served: HashMap::new(),
                finished: false,
                position: 0,
                published: 0,
            }),
            changed: Condvar::new(),
        })
    }

    fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut s = self.state.lock();
        let out = f(&mut s);
        s.generation += 1;
        if !s.paused {
            // rosbag2: play_next only while paused; a resume ends the
            // requests still waiting.
            s.queued.clear();
        }
        drop(s);
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
        s.tickets += 1;
        let ticket = s.tickets;
        s.queued.push_back(ticket);
        s.generation += 1;
        self.changed.notify_all();
        loop {
            if let Some(log) = s.served.remove(&ticket) {
                return Ok(log);
            }
            if !s.queued.contains(&ticket) {
                return Err(if s.finished {
                    "no message left to play".into()
                } else {
                    "playback was resumed before the next message was published".into()
                });
            }
            if self.changed.wait_until(&mut s, deadline).timed_out() {
                if let Some(log) = s.served.remove(&ticket) {
                    return Ok(log);
                }
                s.queued.retain(|t| *t != ticket);
                return Err(format!(
                    "the player did not publish within {} s",
                    timeout.as_secs_f64()
                ));
            }
        }
    }

    /// What the player should do now.
    pub fn wanted(&self) -> Wanted {
        let s = self.state.lock();
        Wanted {
            paused: s.paused,
            rate: s.rate,
            next: !s.queued.is_empty(),
            generation: s.generation,
        }
    }

    /// The player published a message of log time `log`; `for_next` when
    /// it was for a `play_next` request.
    pub fn published(&self, log: Nanos, for_next: bool) {
        self.update(|s| {
            s.position = log;
            s.published += 1;
            if for_next {
                if let Some(ticket) = s.queued.pop_front() {
                    s.served.insert(ticket, log);
                }
            }
        });
    }

    /// Nothing is left to play.
    pub fn finish(&self) {
        self.update(|s| {
            s.finished = true;
            s.queued.clear();
        });
    }

    pub fn progress(&self) -> Progress {
        let s = self.state.lock();
        Progress {
            paused: s.paused,
            rate: s.rate,
            position: s.position,
            published: s.published,
        }
    }

    /// Waits until `until` or until something changed since `generation`
    /// (from `wanted`).
    pub fn wait(&self, until: Instant, generation: u64) {
        let mut s = self.state.lock();
        while s.generation == generation {
            if self.changed.wait_until(&mut s, until).timed_out() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// What a player does until a play_next request is queued.
    fn await_request(c: &Control) {
        loop {
            let w = c.wanted();
            if w.next {
                return;
            }
            c.wait(Instant::now() + Duration::from_secs(10), w.generation);
        }
    }

    /// A caller whose play_next request is queued when this returns.
    fn waiting_caller(c: &Arc<Control>) -> std::thread::JoinHandle<Result<Nanos, String>> {
        let caller = {
            let c = Arc::clone(c);
            std::thread::spawn(move || c.play_next(Duration::from_secs(10)))
        };
        while !c.wanted().next {
            std::thread::yield_now();
        }
        caller
    }

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
                await_request(&c);
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
                await_request(&c);
                c.finish();
            })
        };
        let err = c.play_next(Duration::from_secs(10)).expect_err("ended");
        assert!(err.contains("no message left"), "{err}");
        ender.join().expect("ender");
        assert!(!c.wanted().next);
    }

    /// Serves `n` requests, publishing log times 1, 2, ...
    fn serve(c: &Arc<Control>, n: u64) -> std::thread::JoinHandle<()> {
        let c = Arc::clone(c);
        std::thread::spawn(move || {
            let mut done = 0;
            while done < n {
                let w = c.wanted();
                if w.next {
                    done += 1;
                    c.published(done, true);
                } else {
                    c.wait(Instant::now() + Duration::from_secs(10), w.generation);
                }
            }
        })
    }

    #[test]
    fn a_timed_out_request_withdraws_itself_not_another() {
        let c = Arc::new(Control::new(1.0, true).expect("rate"));
        // Ticket 1 waits long, ticket 2 gives up; the one message the
        // player then publishes is ticket 1's.
        let long = waiting_caller(&c);
        let err = c.play_next(Duration::from_millis(10)).expect_err("gave up");
        assert!(err.contains("did not publish"), "{err}");
        serve(&c, 1).join().expect("player");
        assert_eq!(long.join().expect("caller"), Ok(1));
        assert!(!c.wanted().next, "nothing left queued");
    }

    #[test]
    fn concurrent_requests_get_one_message_each_in_order() {
        let c = Arc::new(Control::new(1.0, true).expect("rate"));
        let player = serve(&c, 4);
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || c.play_next(Duration::from_secs(10)))
            })
            .collect();
        let mut got: Vec<u64> = callers
            .into_iter()
            .map(|t| t.join().expect("caller").expect("served"))
            .collect();
        player.join().expect("player");
        got.sort_unstable();
        assert_eq!(got, vec![1, 2, 3, 4], "each caller its own message");
        assert_eq!(c.progress().published, 4);
    }

    #[test]
    fn resuming_ends_the_waiting_requests() {
        let c = Arc::new(Control::new(1.0, true).expect("rate"));
        let waiting = waiting_caller(&c);
        c.resume();
        let err = waiting.join().expect("caller").expect_err("resumed");
        assert!(err.contains("resumed"), "{err}");
        c.pause();
        assert!(!c.wanted().next, "no request lingers into the next pause");
    }

    #[test]
    fn wait_returns_at_once_for_a_change_made_before_it() {
        let c = Control::new(1.0, false).expect("rate");
        let w = c.wanted();
        c.pause();
        let t = Instant::now();
        c.wait(t + Duration::from_secs(10), w.generation);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the change was missed"
        );
    }
}
