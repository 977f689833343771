//! Write path: append (value log, WAL buffer, memtable), group-commit
//! sync, write controller, memtable freeze and flush to L0.

use super::change::Change;
use super::db::{Inner, WriterState};
use super::error::{Error, Result};
use super::health::Stats;
use super::manifest::Edit;
use super::memtable::{MemIter, Memtable};
use super::merge::{MergeIter, Order, Source};
use super::sstable::{Table, TableWriter};
use super::types::{Codec, Key, VPtr, ValueRef};
use super::vlog::{VlogFile, VlogWriter};
use super::wal;
use super::{Durability, WriteState};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

thread_local! {
    /// The encoded form of a large payload, reused across appends.
    static ENCODED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Inner {
    pub fn append(&self, topic: u32, time: u64, publish: u64, payload: &[u8]) -> Result<u64> {
        self.check_writable()?;
        if u32::try_from(payload.len()).is_err() {
            return Err(Error::InvalidArgument(format!(
                "payload of {} bytes exceeds the 4 GiB record limit",
                payload.len()
            )));
        }
        self.throttle()?;
        let large = payload.len() >= self.opts.value_threshold.max(1);
        if large && topic as usize >= self.topic_count() {
            // Before the per-topic codec state is sized by the id.
            return Err(Error::UnknownTopic(topic));
        }
        ENCODED.with_borrow_mut(|buf| {
            // Encoded outside the writer lock: other topics keep appending.
            let (mut codec, len) = if large {
                self.codecs.encode(topic, payload, buf)
            } else {
                (Codec::Raw, payload.len())
            };
            if codec != Codec::Raw && !self.encoded_values_allowed() {
                codec = Codec::Raw;
            }
            let (codec, stored) = match (codec, buf.get(..len)) {
                (Codec::Raw, _) | (_, None) => (Codec::Raw, payload),
                (c, Some(b)) => (c, b),
            };
            self.append_stored(
                topic,
                time,
                publish,
                payload,
                large.then_some((stored, codec)),
            )
        })
    }

    /// True once the manifest says the store may hold encoded value-log
    /// pointers (`FEATURE_ENCODED_VALUES`), logging that the first time:
    /// a version that cannot read them then refuses the store instead of
    /// taking the pointers for damage. False when the edit cannot be
    /// logged (the payload is then stored raw).
    pub(super) fn encoded_values_allowed(&self) -> bool {
        if self.encoded_values.load(Ordering::Acquire) {
            return true;
        }
        let mut c = Change::default();
        c.note(Edit::Features(super::manifest::FEATURE_ENCODED_VALUES));
        let ok = self.commit(c).is_ok();
        if ok {
            self.encoded_values.store(true, Ordering::Release);
        }
        ok
    }

    /// The rest of `append`: `large` is the value-log payload as stored.
    pub(super) fn append_stored(
        &self,
        topic: u32,
        time: u64,
        publish: u64,
        payload: &[u8],
        large: Option<(&[u8], Codec)>,
    ) -> Result<u64> {
        let wal = self.wal.as_ref().ok_or(Error::ReadOnly)?;
        let (seq, lsn, pending) = {
            let mut w = self.writer.lock();
            self.poison.check()?;
            let seq = *w
                .next_seq
                .get(topic as usize)
                .ok_or(Error::UnknownTopic(topic))?;
            // next_seq comes from the manifest and WAL: never wrap it.
            let next = seq.checked_add(1).ok_or_else(|| {
                Error::WriteStopped(format!("sequence numbers of topic {topic} exhausted"))
            })?;
            let key = Key::new(topic, time, seq);
            let value = match large {
                Some((stored, codec)) => {
                    let r = self.vlog_append(&key, stored, codec, payload.len() as u32);
                    ValueRef::Ptr(self.write_path_failed("value log write", r)?)
                }
                None => ValueRef::Inline(payload),
            };
            let (lsn, pending) = wal.add(&key, publish, value);
            w.active.insert(key, publish, value);
            if let Some(n) = w.next_seq.get_mut(topic as usize) {
                *n = next;
            }
            Stats::add(&self.stats.bytes_ingested, payload.len() as u64);
            if w.active.approximate_bytes() >= (self.opts.memtable_bytes / 2).max(1) {
                self.freeze(&mut w);
            }
            (seq, lsn, pending)
        };
        if self.opts.durability == Durability::Sync {
            let r = self.sync_lsn(lsn);
            self.write_path_failed("WAL sync", r)?;
        } else if pending >= self.opts.tuning.wal_buffer_bytes {
            // Normally skip the write-out while a periodic fsync holds the
            // file; past 4x the limit, wait, so memory stays bounded.
            let r = if pending >= self.opts.tuning.wal_buffer_bytes.saturating_mul(4) {
                wal.write_out(false).map(|_| ())
            } else {
                wal.try_write_out()
            };
            self.write_path_failed("WAL write", r)?;
        }
        Ok(seq)
    }

    /// Appends a payload to the value log, opening a new file when needed.
    fn vlog_append(&self, key: &Key, payload: &[u8], codec: Codec, raw_len: u32) -> Result<VPtr> {
        let mut guard = self.vlog.lock();
        let full = guard
            .as_ref()
            .is_none_or(|v| v.size() >= self.opts.tuning.vlog_file_bytes || v.needs_roll());
        if full {
            // A file that fails its last fsync stays in place, broken, so
            // a flush that syncs "the" value log fails too instead of
            // writing a table that points at pages the disk lost.
            if let Some(old) = guard.as_mut() {
                old.sync()?;
            }
            *guard = Some(self.new_vlog()?);
        }
        let v = guard.as_mut().ok_or(Error::ReadOnly)?;
        let ptr = v.append(key, payload, codec, raw_len)?;
        Stats::add(
            &self.stats.vlog_bytes,
            payload.len() as u64 + super::vlog::ENTRY_HEADER,
        );
        Ok(ptr)
    }

    /// A new value-log file, recorded in the manifest before use.
    fn new_vlog(&self) -> Result<VlogWriter> {
        let num = self.alloc_file();
        let w = VlogWriter::create(&*self.fs, &self.dir, num)?;
        let f = Arc::new(VlogFile::open(self.fs.clone(), &self.dir, num, false)?);
        let mut c = Change::default();
        c.add_vlog(f);
        c.note(Edit::NextFile(num + 1));
        self.commit(c)?;
        Ok(w)
    }

    /// Makes the active memtable immutable and starts a new WAL segment.
    pub fn freeze(&self, w: &mut WriterState) {
        let Some(wal) = self.wal.as_ref() else {
            return;
        };
        let last_seg = wal.rotate();
        w.active.set_last_wal_segment(last_seg);
        // Never before an earlier table's time, even if the clock went back.
        let now = self.opts.tuning.clock.now();
        let at = self.last_written.fetch_max(now, Ordering::AcqRel).max(now);
        w.active.set_frozen_at(at);
        let fresh = Arc::new(Memtable::new(last_seg + 1));
        let old = std::mem::replace(&mut w.active, fresh.clone());
        {
            let mut sv = self.sv.lock();
            let mut imm = sv.imm.clone();
            imm.push(old);
            *sv = sv.next(None, Some(fresh), Some(imm));
        }
        self.refresh_state();
        self.notify();
    }

    pub fn refresh_state(&self) -> WriteState {
        let sv = self.snapshot();
        let s = self
            .controller
            .state(sv.version.table_count(0), sv.imm.len());
        self.state.set(s);
        s
    }

    pub fn write_state(&self) -> WriteState {
        self.refresh_state()
    }

    /// SlowDown: a short sleep per write. Stop: wait for flush/compaction,
    /// then `WriteStopped` after the timeout.
    fn throttle(&self) -> Result<()> {
        let mut s = self.state.get();
        if s == WriteState::Normal {
            return Ok(());
        }
        s = self.refresh_state();
        if s == WriteState::SlowDown && !self.opts.tuning.background {
            return self.compact_all();
        }
        if s == WriteState::SlowDown {
            Stats::add(&self.stats.slowdown_count, 1);
            std::thread::sleep(Duration::from_micros(100));
            return Ok(());
        }
        if s == WriteState::Normal {
            return Ok(());
        }
        Stats::add(&self.stats.stall_count, 1);
        let deadline = Instant::now() + self.opts.tuning.stop_timeout;
        if !self.opts.tuning.background {
            // Nobody else flushes or compacts: do it here rather than wait.
            self.flush_all()?;
            self.compact_all()?;
        }
        while self.refresh_state() == WriteState::Stop {
            self.poison.check()?;
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::WriteStopped(format!(
                    "waited {:?} for flush/compaction",
                    self.opts.tuning.stop_timeout
                )));
            }
            self.wait((deadline - now).min(Duration::from_millis(20)));
        }
        Ok(())
    }

    /// The WAL fsyncs the value log first (its barrier), so a durable WAL
    /// record never points at a payload that is not durable.
    pub fn sync_lsn(&self, lsn: u64) -> Result<()> {
        match self.wal.as_ref() {
            Some(wal) => wal.sync_to(lsn),
            None => Ok(()),
        }
    }

    pub fn write_out_wal(&self, fsync: bool) -> Result<()> {
        match self.wal.as_ref() {
            Some(wal) => wal.write_out(fsync).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Makes everything appended so far durable; after a failed write,
    /// first tries to resume (recover.rs).
    pub fn sync_all(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.poison.check()?;
        self.try_resume()?;
        let r = self.write_out_wal(true);
        self.write_path_failed("WAL sync", r)
    }

    /// Freezes the active memtable and flushes every immutable one. A
    /// failure is returned and noted, not poisoning: the memtables stay
    /// and the WAL still holds them.
    pub fn flush_all(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        self.poison.check()?;
        if self.try_resume()? {
            return Ok(());
        }
        {
            let mut w = self.writer.lock();
            if !w.active.is_empty() {
                self.freeze(&mut w);
            }
        }
        while !self.snapshot().imm.is_empty() {
            self.poison.check()?;
            if let Err(e) = self.flush_oldest() {
                self.background_failed("flush", &e);
                return Err(e);
            }
        }
        self.notify();
        Ok(())
    }

    /// Writes the oldest immutable memtable to an L0 table and installs it.
    pub fn flush_oldest(&self) -> Result<()> {
        let _g = self.flush_lock.lock();
        let Some(mem) = self.snapshot().imm.first().cloned() else {
            return Ok(());
        };
        let floor = mem.last_wal_segment() + 1;
        let mut c = Change::default();
        c.note(Edit::WalFloor(floor));
        if !mem.is_empty() {
            // The table will point into the value log: those payloads must
            // be durable before the table is. A failed fsync poisons.
            if let Some(v) = self.vlog.lock().as_mut() {
                let r = v.sync();
                self.fail("value log sync", r)?;
            }
            let (table, max_seq) = self.write_l0(&mem)?;
            Stats::add(&self.stats.flush_bytes, table.meta.size);
            c.note(Edit::NextFile(table.meta.num + 1));
            for (id, s) in max_seq {
                c.note(Edit::NextSeq {
                    id,
                    next: s.saturating_add(1),
                });
            }
            c.add_table(0, Arc::new(table));
        }
        self.log_edits(&c.edits)?;
        {
            // Installed with the memtable's removal in one swap, so no
            // reader sees its records twice or not at all.
            let mut sv = self.sv.lock();
            let version = sv.version.apply(&c.version);
            let imm = sv
                .imm
                .iter()
                .filter(|m| !Arc::ptr_eq(m, &mem))
                .cloned()
                .collect();
            *sv = sv.next(Some(version), None, Some(imm));
        }
        Stats::add(&self.stats.flushes, 1);
        if let Some(wal) = self.wal.as_ref() {
            wal.set_floor(floor);
        }
        self.remove_wal_below(floor)?;
        self.refresh_state();
        Ok(())
    }

    fn write_l0(&self, mem: &Arc<Memtable>) -> Result<(Table, BTreeMap<u32, u64>)> {
        let num = self.alloc_file();
        let src = Source::Mem(MemIter::new(mem.clone(), Key::MIN, Key::MAX, false));
        let mut it = MergeIter::new(vec![src], Order::KEY);
        let mut w = TableWriter::new(
            self.fs.clone(),
            &self.dir,
            num,
            self.opts.compression,
            self.opts.block_size,
        )?;
        let mut max_seq = BTreeMap::new();
        while let Some(e) = it.next_entry()? {
            let m = max_seq.entry(e.key.topic).or_insert(e.key.seq);
            *m = (*m).max(e.key.seq);
            if let Err(err) = w.add(&e) {
                w.abandon();
                return Err(err);
            }
        }
        w.finish()?;
        let mut t = Table::open(self.fs.clone(), &self.dir, num, false)?;
        t.written_at = mem.frozen_at();
        Ok((t, max_seq))
    }

    fn remove_wal_below(&self, floor: u64) -> Result<()> {
        let names = self
            .fs
            .list(&self.dir)
            .map_err(super::codec::io_err(&self.dir))?;
        let mut removed = false;
        for seg in names.iter().filter_map(|n| wal::parse_segment(n)) {
            if seg < floor {
                let p = wal::segment_path(&self.dir, seg);
                self.fs.remove(&p).map_err(super::codec::io_err(&p))?;
                removed = true;
            }
        }
        // Durable removal: a crash must not bring back a flushed segment.
        if removed {
            self.fs
                .sync_dir(&self.dir)
                .map_err(super::codec::io_err(&self.dir))?;
        }
        Ok(())
    }
}
