//! Failures while running, and getting back from them without a restart.
//!
//! - A failed fsync (WAL, or the value log before it) poisons the store:
//!   the kernel may have dropped dirty pages for good, only a restart's
//!   recovery knows what reached the disk.
//! - A failed write (the WAL or value-log append, e.g. ENOSPC) stops
//!   writes (`Error::WriteStopped`) without poisoning. The flush thread (or
//!   the next `sync`/`flush`) retries: seal the value-log file, freeze the
//!   memtable, flush every memtable to tables (so the records whose WAL
//!   bytes were lost are durable there and the failed segment falls below
//!   the WAL floor), then start a fresh segment. Writes resume by
//!   themselves once that works, e.g. when retention or the operator freed
//!   space.
//! - A failed flush or compaction is noted and retried with a backoff; a
//!   checksum error in a compaction input quarantines that table: it is
//!   renamed `NNNNNN.sst.bad`, dropped from the tree in one manifest edit,
//!   and named by health and verify; the rest keeps working.

use super::change::Change;
use super::codec::io_err;
use super::db::Inner;
use super::error::{Error, Result};
use super::health::Stats;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Suffix of a quarantined table file.
pub const QUARANTINE_SUFFIX: &str = ".bad";

impl Inner {
    /// Records a failure of the WAL or value-log write path: poison when an
    /// fsync failed, otherwise stop writes until `try_resume` succeeds.
    pub fn write_path_failed<T>(&self, what: &str, r: Result<T>) -> Result<T> {
        let Err(e) = r else {
            return r;
        };
        // The WAL and the value-log writer record which of their calls
        // failed; a failure to create the next value-log file (or to log
        // it) is a write failure.
        let fsync = match self.wal.as_ref().and_then(|w| w.failure()) {
            Some(f) => f.fsync,
            None => self.vlog.lock().as_ref().is_some_and(|v| v.sync_failed()),
        };
        if fsync {
            self.poison.set(what, &e);
        } else {
            let msg = format!("{what}: {e}; writes resume once it succeeds again");
            self.poison.note(msg.clone());
            let mut s = self.stalled.lock();
            if s.is_none() {
                *s = Some(msg);
            }
        }
        self.notify();
        Err(e)
    }

    /// Why writes are stopped for now, if they are.
    pub fn stalled(&self) -> Option<String> {
        self.stalled.lock().clone()
    }

    /// After a failed write: seals the value log, flushes every memtable
    /// and starts a fresh WAL segment; true when writes were resumed.
    pub fn try_resume(&self) -> Result<bool> {
        // One resume at a time: a second one would freeze and reset again
        // under records written since the first.
        let _g = self.resume_lock.lock();
        if self.stalled.lock().is_none() {
            return Ok(false);
        }
        self.poison.check()?;
        {
            let mut v = self.vlog.lock();
            if let Some(w) = v.as_mut().filter(|w| w.needs_roll()) {
                let r = w.sync();
                self.fail("value log seal", r)?;
                *v = None;
            }
        }
        let lsn = {
            let mut w = self.writer.lock();
            // A retry after a failed flush finds the memtable it froze
            // still waiting: freeze again only if records came in since,
            // so a long full disk does not pile up empty memtables.
            if !w.active.is_empty() || self.snapshot().imm.is_empty() {
                self.freeze(&mut w);
            }
            self.wal.as_ref().map_or(0, |wal| wal.lsn())
        };
        while !self.snapshot().imm.is_empty() {
            self.flush_oldest()?;
        }
        if let Some(wal) = self.wal.as_ref() {
            wal.reset(lsn);
        }
        *self.stalled.lock() = None;
        self.poison
            .note("writes resumed after a failed write".into());
        self.notify();
        Ok(true)
    }

    /// A failed flush or compaction: counted, noted, and a table whose
    /// checksum failed is quarantined.
    pub fn background_failed(&self, what: &str, e: &Error) {
        if what == "compaction" {
            Stats::add(&self.stats.compactions_failed, 1);
        }
        self.poison.note(format!("{what}: {e}"));
        let file = match e {
            Error::ChecksumMismatch { file, .. } | Error::Corrupt { file, .. } => file,
            _ => return,
        };
        if let Err(q) = self.quarantine(file, &e.to_string()) {
            self.poison
                .note(format!("quarantine of {}: {q}", file.display()));
        }
    }

    /// Moves a corrupt table out of the tree (see the module docs): the
    /// manifest edit first (until it is durable the table stays listed and
    /// its file stays where the manifest says), then the rename. A crash in
    /// between leaves an unlisted `.sst`, which the next open deletes.
    fn quarantine(&self, file: &Path, reason: &str) -> Result<()> {
        let Some(num) = table_number(file) else {
            return Ok(());
        };
        // No compaction, move or retention may pick the table meanwhile.
        let _m = self.maintenance.lock();
        let _g = self.flush_lock.lock();
        let v = self.snapshot().version.clone();
        let Some((level, table)) = v.tables().find(|(_, t)| t.meta.num == num) else {
            return Ok(());
        };
        let table = table.clone();
        let mut c = Change::default();
        c.remove_table(level, num);
        if self.opts.remember_dropped {
            // An offloaded copy keeps its (uploaded) version of the table.
            self.dropped_allowed()?;
            c.note(super::manifest::Edit::Dropped(num));
        }
        self.commit(c)?;
        // `table` still holds the file (its drop would delete an obsolete
        // one, and then finds it renamed away).
        let bad = quarantine_path(table.path());
        self.fs
            .rename(table.path(), &bad)
            .map_err(io_err(table.path()))?;
        self.fs.sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        drop(table);
        self.quarantined.lock().push((bad, reason.to_string()));
        self.refresh_state();
        Ok(())
    }

    /// Backoff after `failures` failures in a row: 100 ms doubling to 10 s.
    pub fn backoff(failures: u32) -> Duration {
        Duration::from_millis(100u64 << failures.min(7)).min(Duration::from_secs(10))
    }
}

fn table_number(file: &Path) -> Option<u64> {
    file.file_name()?
        .to_str()?
        .strip_suffix(".sst")?
        .parse()
        .ok()
}

fn quarantine_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_os_string();
    s.push(QUARANTINE_SUFFIX);
    PathBuf::from(s)
}

/// Quarantined table files found in a store directory at open.
pub fn find_quarantined(names: &[String], dir: &Path) -> Vec<(PathBuf, String)> {
    names
        .iter()
        .filter(|n| n.ends_with(&format!(".sst{QUARANTINE_SUFFIX}")))
        .map(|n| {
            (
                dir.join(n),
                "quarantined earlier (checksum error while compacting)".to_string(),
            )
        })
        .collect()
}
