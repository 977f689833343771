//! Counters (atomics), the poison flag and the write controller state.

use super::error::{Error, Result};
use super::WriteState;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

#[derive(Default)]
pub struct Stats {
    pub bytes_ingested: AtomicU64,
    pub flush_bytes: AtomicU64,
    pub compaction_bytes: AtomicU64,
    pub vlog_bytes: AtomicU64,
    pub compactions_completed: AtomicU64,
    pub compactions_failed: AtomicU64,
    pub flushes: AtomicU64,
    pub trivial_moves: AtomicU64,
    pub stall_count: AtomicU64,
    pub slowdown_count: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Fail-stop: after the first write-path failure every later write gets
/// `Error::Poisoned`; reads keep working.
#[derive(Default)]
pub struct Poison {
    flag: AtomicBool,
    first: Mutex<Option<String>>,
    last_error: Mutex<Option<String>>,
}

impl Poison {
    pub fn set(&self, what: &str, e: &Error) {
        let msg = format!("{what}: {e}");
        {
            let mut first = self.first.lock();
            if first.is_none() {
                *first = Some(msg.clone());
            }
        }
        *self.last_error.lock() = Some(msg);
        self.flag.store(true, Ordering::Release);
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    pub fn check(&self) -> Result<()> {
        if self.is_set() {
            let msg = self.first.lock().clone().unwrap_or_default();
            return Err(Error::Poisoned(msg));
        }
        Ok(())
    }

    /// Records an error that does not poison (e.g. a failed read).
    pub fn note(&self, msg: String) {
        *self.last_error.lock() = Some(msg);
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }
}

/// Write controller thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Controller {
    pub l0_slowdown: usize,
    pub l0_stop: usize,
    /// Immutable memtables waiting for flush that stop writers.
    pub imm_stop: usize,
}

impl Default for Controller {
    fn default() -> Self {
        Controller {
            l0_slowdown: 8,
            l0_stop: 16,
            imm_stop: 2,
        }
    }
}

impl Controller {
    pub fn state(&self, l0: usize, imm: usize) -> WriteState {
        if l0 >= self.l0_stop || imm >= self.imm_stop {
            WriteState::Stop
        } else if l0 >= self.l0_slowdown {
            WriteState::SlowDown
        } else {
            WriteState::Normal
        }
    }
}

pub fn encode_state(s: WriteState) -> u8 {
    match s {
        WriteState::Normal => 0,
        WriteState::SlowDown => 1,
        WriteState::Stop => 2,
    }
}

pub fn decode_state(v: u8) -> WriteState {
    match v {
        1 => WriteState::SlowDown,
        2 => WriteState::Stop,
        _ => WriteState::Normal,
    }
}

/// The last computed write state, readable without locks.
#[derive(Default)]
pub struct StateCell(AtomicU8);

impl StateCell {
    pub fn set(&self, s: WriteState) {
        self.0.store(encode_state(s), Ordering::Release);
    }
    pub fn get(&self) -> WriteState {
        decode_state(self.0.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_states_follow_thresholds() {
        let c = Controller::default();
        assert_eq!(c.state(0, 0), WriteState::Normal);
        assert_eq!(c.state(8, 0), WriteState::SlowDown);
        assert_eq!(c.state(16, 0), WriteState::Stop);
        assert_eq!(c.state(0, 2), WriteState::Stop);
    }
}
