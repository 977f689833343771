//! Executes compaction choices. Inputs are pinned by the version the
//! choice was made on (Arc handles), so they cannot vanish mid-merge; the
//! result is installed only if every input is still live.

use super::{choose, Choice};
use crate::engine::change::Change;
use crate::engine::db::Inner;
use crate::engine::error::Result;
use crate::engine::health::Stats;
use crate::engine::manifest::Edit;
use crate::engine::merge::{MergeIter, Order, Source};
use crate::engine::sstable::{Table, TableIter, TableWriter};
use crate::engine::types::Key;
use crate::engine::version::Version;
use std::sync::Arc;

impl Inner {
    /// One compaction step or retention pass; true when it did something.
    pub fn maintain_once(&self) -> Result<bool> {
        let _g = self.maintenance.lock();
        if self.enforce_retention()? {
            return Ok(true);
        }
        let v = self.snapshot().version.clone();
        let Some(choice) = choose(&v, &self.opts.tuning.compaction) else {
            return Ok(false);
        };
        self.run_choice(&v, &choice)?;
        Stats::add(&self.stats.compactions_completed, 1);
        self.refresh_state();
        Ok(true)
    }

    pub fn compact_all(&self) -> Result<()> {
        self.check_writable()?;
        loop {
            match self.maintain_once() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    self.background_failed("compaction", &e);
                    return Err(e);
                }
            }
        }
        self.notify();
        Ok(())
    }

    fn run_choice(&self, v: &Version, choice: &Choice) -> Result<()> {
        match choice {
            Choice::Move { from, nums } => self.trivial_move(v, *from, nums),
            Choice::Merge { from, upper, lower } => self.merge(v, *from, upper, lower),
        }
    }

    fn trivial_move(&self, v: &Version, from: usize, nums: &[u64]) -> Result<()> {
        let to = from + 1;
        let tables = pick(v, from, nums);
        let inputs: Vec<(usize, Arc<Table>)> = tables.iter().map(|t| (from, t.clone())).collect();
        if !self.inputs_live(&inputs) {
            // Something (retention, a quarantine) changed the level since
            // the choice was made.
            return Ok(());
        }
        let mut c = Change::default();
        for t in &tables {
            c.remove_table(from, t.meta.num);
            c.add_table(to, t.clone());
        }
        self.commit(c)?;
        Stats::add(&self.stats.trivial_moves, tables.len() as u64);
        Ok(())
    }

    fn merge(&self, v: &Version, from: usize, upper: &[u64], lower: &[u64]) -> Result<()> {
        let to = from + 1;
        let mut inputs: Vec<(usize, Arc<Table>)> = Vec::new();
        inputs.extend(pick(v, from, upper).into_iter().map(|t| (from, t)));
        inputs.extend(pick(v, to, lower).into_iter().map(|t| (to, t)));
        let sources = inputs
            .iter()
            .map(|(_, t)| Source::Table(TableIter::new(t.clone(), Key::MIN, Key::MAX, false)))
            .collect();
        let mut outputs = self.write_outputs(MergeIter::new(sources, Order::KEY))?;
        // The merged data is as new as its newest input (retention by age).
        let written = inputs.iter().map(|(_, t)| t.written_at).max().unwrap_or(0);
        for t in &mut outputs {
            t.written_at = written;
        }
        if !self.inputs_live(&inputs) {
            for t in outputs {
                t.mark_obsolete();
            }
            return Ok(());
        }
        let mut c = Change::default();
        for (level, t) in &inputs {
            c.remove_table(*level, t.meta.num);
        }
        for t in outputs {
            c.note(Edit::NextFile(t.meta.num + 1));
            Stats::add(&self.stats.compaction_bytes, t.meta.size);
            c.add_table(to, Arc::new(t));
        }
        self.commit(c)?;
        Ok(())
    }

    fn inputs_live(&self, inputs: &[(usize, Arc<Table>)]) -> bool {
        let v = self.snapshot().version.clone();
        inputs.iter().all(|(level, t)| {
            v.levels
                .get(*level)
                .is_some_and(|l| l.iter().any(|x| Arc::ptr_eq(x, t)))
        })
    }

    /// Writes the merged stream into tables cut at topic boundaries and at
    /// the target size.
    fn write_outputs(&self, mut it: MergeIter) -> Result<Vec<Table>> {
        let target = self.opts.tuning.compaction.target_file_bytes.max(1);
        let mut out = Vec::new();
        let mut cur: Option<TableWriter> = None;
        while let Some(e) = it.next_entry()? {
            let cut = cur.as_ref().is_some_and(|w| {
                w.current_topic() != Some(e.key.topic) || w.bytes_written() >= target
            });
            if cut {
                if let Some(w) = cur.take() {
                    out.push(self.finish_output(w)?);
                }
            }
            if cur.is_none() {
                cur = Some(TableWriter::new(
                    self.fs.clone(),
                    &self.dir,
                    self.alloc_file(),
                    self.opts.compression,
                    self.opts.block_size,
                )?);
            }
            if let Some(w) = cur.as_mut() {
                w.add(&e)?;
            }
        }
        if let Some(w) = cur {
            out.push(self.finish_output(w)?);
        }
        Ok(out)
    }

    fn finish_output(&self, w: TableWriter) -> Result<Table> {
        let meta = w.finish()?;
        let t = Table::open(self.fs.clone(), &self.dir, meta.num, false)?;
        Ok(t)
    }
}

fn pick(v: &Version, level: usize, nums: &[u64]) -> Vec<Arc<Table>> {
    v.levels
        .get(level)
        .map(|l| {
            l.iter()
                .filter(|t| nums.contains(&t.meta.num))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}
