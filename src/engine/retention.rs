//! Retention: drops whole tables, oldest written first, and the value-log
//! files no remaining table references. Never rewrites data. Age and order
//! come from each table's wall-clock write time (`Table::written_at`), not
//! from log time: a sim-time reset (log time starting again at 0) or one
//! far-future stamp cannot make live data look old.

use super::change::Change;
use super::db::Inner;
use super::error::Result;
use super::health::Stats;
use super::manifest::Edit;
use super::marks::Mark;
use super::sstable::Table;
use super::version::Version;
use super::{Health, LevelHealth};
use std::collections::BTreeMap;
use std::sync::Arc;

struct Plan {
    tables: Vec<(usize, Arc<Table>)>,
    vlogs: Vec<(u64, u64)>,
    /// Pins released to bring the pinned bytes within their budget.
    released: Vec<Mark>,
}

fn vlog_refs(tables: &[(usize, Arc<Table>)]) -> BTreeMap<u64, usize> {
    let mut refs = BTreeMap::new();
    for (_, t) in tables {
        for v in &t.meta.vlogs {
            *refs.entry(*v).or_insert(0) += 1;
        }
    }
    refs
}

/// Some topic of `t` has data inside `m`'s window.
fn overlaps(t: &Table, m: &Mark) -> bool {
    t.meta
        .topics
        .values()
        .any(|r| r.count > 0 && m.overlaps(r.min_time, r.max_time))
}

/// What pins keep from retention, released oldest first while it exceeds
/// a budget: each pin's tables are found once, and bytes are reference
/// counted per table and per value-log file (files at or above `keep_from`
/// are kept anyway and not counted).
struct PinCount<'a> {
    tables: &'a [(usize, Arc<Table>)],
    sizes: &'a BTreeMap<u64, u64>,
    keep_from: u64,
    /// Table indexes each pin overlaps, by pin.
    covers: Vec<Vec<usize>>,
    table_refs: Vec<usize>,
    vlog_refs: BTreeMap<u64, usize>,
    bytes: u64,
}

impl<'a> PinCount<'a> {
    fn new(
        tables: &'a [(usize, Arc<Table>)],
        sizes: &'a BTreeMap<u64, u64>,
        keep_from: u64,
        pins: &[Mark],
    ) -> PinCount<'a> {
        let covers = pins
            .iter()
            .map(|m| {
                (0..tables.len())
                    .filter(|i| overlaps(&tables[*i].1, m))
                    .collect()
            })
            .collect();
        let mut c = PinCount {
            tables,
            sizes,
            keep_from,
            covers: Vec::new(),
            table_refs: vec![0; tables.len()],
            vlog_refs: BTreeMap::new(),
            bytes: 0,
        };
        c.covers = covers;
        for p in 0..c.covers.len() {
            c.change(p, true);
        }
        c
    }

    /// Adds (true) or removes pin `p`'s tables.
    fn change(&mut self, p: usize, add: bool) {
        for &i in &self.covers[p] {
            let t = &self.tables[i].1;
            let n = &mut self.table_refs[i];
            let edge = if add {
                *n += 1;
                *n == 1
            } else {
                *n -= 1;
                *n == 0
            };
            if !edge {
                continue;
            }
            self.bytes = step(self.bytes, t.meta.size, add);
            for v in t.meta.vlogs.iter().filter(|v| **v < self.keep_from) {
                let r = self.vlog_refs.entry(*v).or_insert(0);
                let first_or_last = if add {
                    *r += 1;
                    *r == 1
                } else {
                    *r -= 1;
                    *r == 0
                };
                if first_or_last {
                    let size = self.sizes.get(v).copied().unwrap_or(0);
                    self.bytes = step(self.bytes, size, add);
                }
            }
        }
    }
}

fn step(total: u64, by: u64, add: bool) -> u64 {
    if add {
        total.saturating_add(by)
    } else {
        total.saturating_sub(by)
    }
}

/// Bytes `pins` keep from retention: the tables they overlap and every
/// value-log file below `keep_from` those tables point into, each counted
/// once.
fn pinned_bytes(
    tables: &[(usize, Arc<Table>)],
    sizes: &BTreeMap<u64, u64>,
    keep_from: u64,
    pins: &[Mark],
) -> u64 {
    PinCount::new(tables, sizes, keep_from, pins).bytes
}

impl Inner {
    /// `marks`: the store's marks (the caller holds their lock).
    fn plan_retention(&self, v: &Version, marks: &BTreeMap<u64, Mark>) -> Plan {
        let r = self.retention.lock().clone();
        let mut tables: Vec<(usize, Arc<Table>)> =
            v.tables().map(|(l, t)| (l, t.clone())).collect();
        // Written order: wall time, then table number (flushes run oldest
        // memtable first).
        tables.sort_by_key(|(_, t)| (t.written_at, t.meta.num));
        let mut refs = vlog_refs(&tables);
        // Memtables only point into the newest referenced file or later.
        let pin_from = refs.keys().next_back().copied().unwrap_or(0);
        let sizes: BTreeMap<u64, u64> = v.vlogs.iter().map(|(n, f)| (*n, f.size())).collect();
        let mut total: u64 =
            tables.iter().map(|(_, t)| t.meta.size).sum::<u64>() + sizes.values().sum::<u64>();
        let now = self.opts.tuning.clock.now();
        let cutoff = r
            .max_age
            .map(|a| now.saturating_sub(u64::try_from(a.as_nanos()).unwrap_or(u64::MAX)));
        // Pins over their budget are released oldest first.
        let all: Vec<Mark> = marks.values().filter(|m| m.protects()).cloned().collect();
        let mut count = PinCount::new(&tables, &sizes, pin_from, &all);
        let mut gone = 0;
        while gone < all.len() && count.bytes > r.pin_budget() {
            count.change(gone, false);
            gone += 1;
        }
        let released: Vec<Mark> = all[..gone]
            .iter()
            .map(|m| Mark {
                pinned: false,
                released: true,
                ..m.clone()
            })
            .collect();
        // Tables the pins left in place keep.
        let pinned: Vec<bool> = count.table_refs.iter().map(|n| *n > 0).collect();
        let mut plan = Plan {
            tables: Vec::new(),
            vlogs: Vec::new(),
            released,
        };
        let may_drop = |name: std::path::PathBuf| {
            let name = name.to_string_lossy();
            self.opts
                .retention_guard
                .as_ref()
                .is_none_or(|g| (g.0)(&name))
        };
        let vlog_ok = |n: u64| may_drop(super::vlog::vlog_path(std::path::Path::new(""), n));
        for (num, size) in &sizes {
            if *num < pin_from && !refs.contains_key(num) && vlog_ok(*num) {
                plan.vlogs.push((*num, *size));
                total = total.saturating_sub(*size);
            }
        }
        let old = |t: &Table| cutoff.is_some_and(|c| t.written_at < c);
        // Oldest written first, so what goes is always a prefix of what
        // was written (never a hole in the middle of a recording), except
        // for the windows pins keep.
        for (i, (level, t)) in tables.into_iter().enumerate() {
            if pinned.get(i).copied().unwrap_or(false) {
                continue;
            }
            let over = r.max_bytes > 0 && total > r.max_bytes;
            if !over && !old(&t) {
                break;
            }
            // Not yet allowed (not offloaded): it and every newer table
            // stay, so what goes is still a prefix of what was written.
            if !may_drop(super::sstable::table_path(
                std::path::Path::new(""),
                t.meta.num,
            )) {
                break;
            }
            total = total.saturating_sub(t.meta.size);
            for v in &t.meta.vlogs {
                let n = refs.entry(*v).or_insert(1);
                *n -= 1;
                if *n == 0 && *v < pin_from && vlog_ok(*v) {
                    let size = sizes.get(v).copied().unwrap_or(0);
                    plan.vlogs.push((*v, size));
                    total = total.saturating_sub(size);
                }
            }
            plan.tables.push((level, t));
        }
        plan
    }

    /// One retention pass; true when files were dropped or pins released.
    pub fn enforce_retention(&self) -> Result<bool> {
        let r = self.retention.lock().clone();
        if r.max_bytes == 0 && r.max_age.is_none() {
            return Ok(false);
        }
        let v = self.snapshot().version.clone();
        // Held through the commit: an unpin in between would otherwise be
        // overwritten by a stale copy of the mark.
        let mut marks = self.marks.lock();
        let plan = self.plan_retention(&v, &marks);
        if plan.tables.is_empty() && plan.vlogs.is_empty() && plan.released.is_empty() {
            return Ok(false);
        }
        // The totals start from the manifest: saturate, never overflow.
        let mut counters = *self.retention_counters.lock();
        let mut c = Change::default();
        for m in &plan.released {
            c.note(Edit::Mark(m.clone()));
        }
        if self.opts.remember_dropped {
            self.dropped_allowed()?;
            for n in plan
                .tables
                .iter()
                .map(|(_, t)| t.meta.num)
                .chain(plan.vlogs.iter().map(|v| v.0))
            {
                c.note(Edit::Dropped(n));
            }
        }
        for (level, t) in &plan.tables {
            c.remove_table(*level, t.meta.num);
            counters.0 = counters.0.saturating_add(1);
            counters.1 = counters.1.saturating_add(t.meta.size);
            counters.2 = counters.2.saturating_add(t.meta.entries);
        }
        for (num, size) in &plan.vlogs {
            c.remove_vlog(*num);
            counters.0 = counters.0.saturating_add(1);
            counters.1 = counters.1.saturating_add(*size);
        }
        c.note(Edit::Retention {
            files: counters.0,
            bytes: counters.1,
            messages: counters.2,
        });
        self.commit(c)?;
        *self.retention_counters.lock() = counters;
        if let Some(last) = plan.released.last() {
            let mut pins = self.released_pins.lock();
            pins.0 = pins.0.saturating_add(plan.released.len() as u64);
            pins.1 = Some(format!(
                "mark {} ({:?}): pinned data exceeded {} bytes",
                last.id,
                last.label,
                r.pin_budget()
            ));
        }
        for m in plan.released {
            marks.insert(m.id, m);
        }
        Ok(true)
    }

    /// Bytes `pins` keep from retention in version `v`.
    fn pinned_bytes_now(&self, v: &Version, pins: &[Mark]) -> u64 {
        if pins.is_empty() {
            return 0;
        }
        let tables: Vec<(usize, Arc<Table>)> = v.tables().map(|(l, t)| (l, t.clone())).collect();
        let sizes: BTreeMap<u64, u64> = v.vlogs.iter().map(|(n, f)| (*n, f.size())).collect();
        let keep_from = vlog_refs(&tables).keys().next_back().copied().unwrap_or(0);
        pinned_bytes(&tables, &sizes, keep_from, pins)
    }

    pub fn health(&self) -> Health {
        let sv = self.snapshot();
        let v = &sv.version;
        let cfg = &self.opts.tuning.compaction;
        let levels: Vec<LevelHealth> = v
            .levels
            .iter()
            .map(|l| LevelHealth {
                files: l.len() as u64,
                bytes: l.iter().map(|t| t.meta.size).sum(),
            })
            .collect();
        let mut pending = 0;
        if v.table_count(0) >= cfg.l0_trigger {
            pending += v.level_bytes(0);
        }
        for l in 1..levels.len() {
            pending += v.level_bytes(l).saturating_sub(cfg.level_target(l));
        }
        let table_bytes: u64 = levels.iter().map(|l| l.bytes).sum();
        let vlog_disk: u64 = v.vlogs.values().map(|f| f.size()).sum();
        let wal_bytes = self.wal_disk_bytes();
        let s = &self.stats;
        let ingested = Stats::get(&s.bytes_ingested);
        let written = Stats::get(&s.flush_bytes)
            + Stats::get(&s.compaction_bytes)
            + Stats::get(&s.vlog_bytes);
        let counters = *self.retention_counters.lock();
        // Each lock taken and released here: guards in the literal below
        // would live to its end (parking_lot locks do not nest).
        let retention = self.retention.lock().clone();
        let (pins_released, last_pin_released) = self.released_pins.lock().clone();
        // One reading of the marks for the count and the pinned bytes.
        let (marks, pins) = {
            let all = self.marks.lock();
            let pins: Vec<Mark> = all.values().filter(|m| m.protects()).cloned().collect();
            (all.len() as u64, pins)
        };
        Health {
            write_state: self.refresh_state(),
            poisoned: self.poison.is_set(),
            last_error: self.poison.last_error(),
            write_stopped: self.stalled(),
            quarantined: self
                .quarantined
                .lock()
                .iter()
                .map(|(p, why)| format!("{}: {why}", p.display()))
                .collect(),
            recovery: self.recovery.clone(),
            l0_files: v.table_count(0) as u64,
            l0_slowdown_trigger: self.controller.l0_slowdown as u64,
            levels,
            pending_compaction_bytes: pending,
            compactions_completed: Stats::get(&s.compactions_completed),
            compactions_failed: Stats::get(&s.compactions_failed),
            bytes_ingested: ingested,
            wal_bytes_written: self.wal.as_ref().map_or(0, |w| w.bytes_written()),
            flush_bytes_written: Stats::get(&s.flush_bytes),
            compaction_bytes_written: Stats::get(&s.compaction_bytes),
            vlog_bytes_written: Stats::get(&s.vlog_bytes),
            write_amplification: if ingested == 0 {
                0.0
            } else {
                written as f64 / ingested as f64
            },
            disk_bytes: table_bytes + vlog_disk + wal_bytes,
            quota_bytes: retention.max_bytes,
            wal_bytes,
            // Counts come from table metas: saturate rather than overflow.
            messages_stored: Inner::topic_ranges(&sv)
                .values()
                .fold(0u64, |acc, r| acc.saturating_add(r.count)),
            retention_dropped_files: counters.0,
            retention_dropped_bytes: counters.1,
            retention_dropped_messages: counters.2,
            pinned_bytes: self.pinned_bytes_now(v, &pins),
            pin_budget: retention.pin_budget(),
            marks,
            pins_released,
            last_pin_released,
            value_compression: {
                let cat = self.catalog.read();
                self.codecs
                    .stats()
                    .into_iter()
                    .filter_map(|(t, st)| {
                        let name = cat.topics.get(t as usize)?.spec.name.clone();
                        Some((name, st))
                    })
                    .collect()
            },
        }
    }

    fn wal_disk_bytes(&self) -> u64 {
        let Ok(names) = self.fs.list(&self.dir) else {
            return 0;
        };
        names
            .iter()
            .filter(|n| super::wal::parse_segment(n).is_some())
            .filter_map(|n| self.fs.open_read(&self.dir.join(n)).ok())
            .filter_map(|f| f.size().ok())
            .sum()
    }
}
