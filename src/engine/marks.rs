//! Event marks: labelled windows of log time, kept in the manifest (so a
//! mark survives every crash the manifest survives: it is fsynced before
//! `add_mark` returns). A pinned mark exempts every table whose data
//! overlaps its window from retention, until it is unpinned or the pinned
//! bytes exceed the pin budget, when retention releases the oldest pin
//! first (retention.rs).

use super::change::Change;
use super::db::Inner;
use super::error::{Error, Result};
use super::manifest::{Edit, FEATURE_MARKS};
use super::Nanos;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;

/// Longest label and tag, most tags per mark, most marks per store: a
/// mark lives in the manifest, which is read whole at every open.
pub const MAX_LABEL_BYTES: usize = 256;
pub const MAX_TAG_BYTES: usize = 64;
pub const MAX_TAGS: usize = 32;
pub const MAX_MARKS: usize = 10_000;
/// A pin may reach at most this far past the store's clock: one reaching
/// further would keep everything recorded from now on (whatever wrote it:
/// a service call, a mark topic, an imported bag).
pub const MAX_PIN_AHEAD: Nanos = 3600 * 1_000_000_000;

/// A mark as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// 1, 2, ... in the order marks were made.
    pub id: u64,
    pub label: String,
    pub tags: Vec<String>,
    /// The window, log time, both ends included.
    pub start: Nanos,
    pub end: Nanos,
    /// Retention keeps the window's data.
    pub pinned: bool,
    /// The pin was released by retention (pins over their budget); such a
    /// mark is no longer pinned.
    pub released: bool,
    /// Wall-clock time the mark was made.
    pub created: Nanos,
}

/// What `Store::add_mark` is given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewMark {
    pub label: String,
    pub tags: Vec<String>,
    pub start: Nanos,
    pub end: Nanos,
    pub pin: bool,
}

impl NewMark {
    /// Why the mark cannot be stored, if it cannot.
    pub fn check(&self) -> Result<()> {
        let bad = |why: String| Err(Error::InvalidArgument(why));
        if self.label.is_empty() {
            return bad("a mark needs a label".into());
        }
        if self.label.len() > MAX_LABEL_BYTES {
            return bad(format!(
                "label is {} bytes; at most {MAX_LABEL_BYTES}",
                self.label.len()
            ));
        }
        if self.tags.len() > MAX_TAGS {
            return bad(format!("{} tags; at most {MAX_TAGS}", self.tags.len()));
        }
        if let Some(t) = self
            .tags
            .iter()
            .find(|t| t.is_empty() || t.len() > MAX_TAG_BYTES)
        {
            return bad(format!("tag {t:?}: a tag has 1 to {MAX_TAG_BYTES} bytes"));
        }
        if let Some(text) = std::iter::once(&self.label)
            .chain(&self.tags)
            .find(|t| t.chars().any(char::is_control))
        {
            return bad(format!(
                "a label or tag holds a control character (newline, tab, ...): {:?}",
                text.chars().take(64).collect::<String>()
            ));
        }
        if self.start > self.end {
            return bad(format!(
                "window start {} is after its end {}",
                self.start, self.end
            ));
        }
        Ok(())
    }
}

impl Mark {
    /// The window overlaps `[lo, hi]` (both included).
    pub fn overlaps(&self, lo: Nanos, hi: Nanos) -> bool {
        self.start <= hi && lo <= self.end
    }

    /// Pinned and not released: retention keeps its window.
    pub fn protects(&self) -> bool {
        self.pinned && !self.released
    }
}

impl Inner {
    /// Logs `FEATURE_MARKS` once, in a batch of its own, ahead of the
    /// first mark: a version that checks features as it reads them (this
    /// one and later) then refuses a store with features it does not know
    /// by name, before it meets their edits.
    fn marks_allowed(&self) -> Result<()> {
        self.feature_allowed(&self.marks_feature, FEATURE_MARKS)
    }

    /// The same for `Edit::Dropped` (`FEATURE_DROPPED`).
    pub(crate) fn dropped_allowed(&self) -> Result<()> {
        self.feature_allowed(&self.dropped_feature, super::manifest::FEATURE_DROPPED)
    }

    fn feature_allowed(&self, logged: &AtomicBool, bit: u64) -> Result<()> {
        if logged.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut c = Change::default();
        c.note(Edit::Features(bit));
        self.commit(c)?;
        logged.store(true, Ordering::Release);
        Ok(())
    }

    pub fn add_mark(&self, new: NewMark) -> Result<Mark> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        new.check()?;
        let now = self.opts.tuning.clock.now();
        if new.pin && new.end > now.saturating_add(MAX_PIN_AHEAD) {
            return Err(Error::InvalidArgument(format!(
                "a pinned window may end at most {} s after the store's clock; this one ends {:.0} s after it",
                MAX_PIN_AHEAD / 1_000_000_000,
                (new.end - now) as f64 / 1e9
            )));
        }
        self.poison.check()?;
        let mut marks = self.marks.lock();
        if marks.len() >= MAX_MARKS {
            return Err(Error::InvalidArgument(format!(
                "the store holds {MAX_MARKS} marks, the most it keeps"
            )));
        }
        self.marks_allowed()?;
        let id = match marks.keys().next_back() {
            None => 1,
            Some(last) => last.checked_add(1).ok_or_else(|| {
                Error::InvalidArgument("mark ids are exhausted (the last is u64::MAX)".into())
            })?,
        };
        let mark = Mark {
            id,
            label: new.label,
            tags: new.tags,
            start: new.start,
            end: new.end,
            pinned: new.pin,
            released: false,
            created: now,
        };
        let mut c = Change::default();
        c.note(Edit::Mark(mark.clone()));
        self.commit(c)?;
        marks.insert(mark.id, mark.clone());
        Ok(mark)
    }

    /// Unpins mark `id`: `(the mark now, whether it was pinned)`.
    pub fn unpin(&self, id: u64) -> Result<(Mark, bool)> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        self.poison.check()?;
        let mut marks = self.marks.lock();
        let Some(mark) = marks.get(&id) else {
            return Err(Error::InvalidArgument(format!("no mark {id}")));
        };
        if !mark.pinned {
            return Ok((mark.clone(), false));
        }
        let mark = Mark {
            pinned: false,
            ..mark.clone()
        };
        let mut c = Change::default();
        c.note(Edit::Mark(mark.clone()));
        self.commit(c)?;
        marks.insert(id, mark.clone());
        // Retention may now drop what the pin kept.
        self.notify();
        Ok((mark, true))
    }

    pub fn marks(&self) -> Vec<Mark> {
        self.marks.lock().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(label: &str) -> NewMark {
        NewMark {
            label: label.into(),
            tags: vec!["estop".into()],
            start: 10,
            end: 20,
            pin: true,
        }
    }

    #[test]
    fn a_mark_without_a_label_or_with_a_reversed_window_is_refused() {
        assert!(new("dock").check().is_ok());
        for (m, why) in [
            (new(""), "needs a label"),
            (new(&"x".repeat(MAX_LABEL_BYTES + 1)), "label is"),
            (
                NewMark {
                    start: 21,
                    ..new("a")
                },
                "after its end",
            ),
            (
                NewMark {
                    tags: vec![String::new()],
                    ..new("a")
                },
                "a tag has",
            ),
            (
                NewMark {
                    tags: vec!["t".into(); MAX_TAGS + 1],
                    ..new("a")
                },
                "tags; at most",
            ),
            (new("two\nlines"), "control character"),
            (
                NewMark {
                    tags: vec!["a\tb".into()],
                    ..new("a")
                },
                "control character",
            ),
        ] {
            let e = m.check().expect_err(why).to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn overlap_includes_both_ends() {
        let m = Mark {
            id: 1,
            label: "a".into(),
            tags: Vec::new(),
            start: 10,
            end: 20,
            pinned: true,
            released: false,
            created: 0,
        };
        assert!(m.overlaps(20, 30) && m.overlaps(0, 10) && m.overlaps(12, 13));
        assert!(!m.overlaps(21, 30) && !m.overlaps(0, 9));
        assert!(m.protects());
        assert!(!Mark {
            released: true,
            ..m
        }
        .protects());
    }
}
