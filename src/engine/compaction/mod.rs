//! Leveled compaction. `choose` is a pure function over a version; the
//! worker (worker.rs) executes its choice.
//!
//! Overlap is judged per topic: two tables overlap when some topic's time
//! ranges intersect in both. In-order sensor streams therefore rarely
//! overlap and most choices are trivial moves (no rewrite).

pub mod worker;

use super::sstable::Table;
use super::version::{Version, LEVELS};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// L0 table count that starts a compaction.
    pub l0_trigger: usize,
    /// Target bytes of level 1; level n+1 gets `multiplier` times more.
    pub base_level_bytes: u64,
    pub multiplier: u64,
    /// Output tables are cut at this size (and at topic boundaries).
    pub target_file_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            l0_trigger: 4,
            base_level_bytes: 256 << 20,
            multiplier: 10,
            target_file_bytes: 64 << 20,
        }
    }
}

impl Config {
    pub fn level_target(&self, level: usize) -> u64 {
        let mut t = self.base_level_bytes;
        for _ in 1..level {
            t = t.saturating_mul(self.multiplier);
        }
        t
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Re-link tables one level down without rewriting.
    Move { from: usize, nums: Vec<u64> },
    /// Merge `upper` (from level `from`) with `lower` (level from+1).
    Merge {
        from: usize,
        upper: Vec<u64>,
        lower: Vec<u64>,
    },
}

impl Choice {
    pub fn from_level(&self) -> usize {
        match self {
            Choice::Move { from, .. } | Choice::Merge { from, .. } => *from,
        }
    }
}

fn overlapping(ts: &[Arc<Table>], with: &[&Arc<Table>]) -> Vec<u64> {
    ts.iter()
        .filter(|t| with.iter().any(|w| w.meta.overlaps(&t.meta)))
        .map(|t| t.meta.num)
        .collect()
}

fn nums(ts: &[&Arc<Table>]) -> Vec<u64> {
    ts.iter().map(|t| t.meta.num).collect()
}

/// Picks the next compaction, if any level needs one.
pub fn choose(v: &Version, cfg: &Config) -> Option<Choice> {
    if v.table_count(0) >= cfg.l0_trigger.max(1) {
        return Some(choose_l0(v));
    }
    let mut best: Option<(f64, usize)> = None;
    for level in 1..LEVELS - 1 {
        let score = v.level_bytes(level) as f64 / cfg.level_target(level) as f64;
        if score >= 1.0 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, level));
        }
    }
    let (_, level) = best?;
    choose_deeper(v, level)
}

/// L0 takes ALL its tables: merging only some overlapping L0 tables is
/// how the seed lost data.
fn choose_l0(v: &Version) -> Choice {
    let l0: Vec<&Arc<Table>> = v
        .levels
        .first()
        .map(|l| l.iter().collect())
        .unwrap_or_default();
    let l1 = v.levels.get(1).map(Vec::as_slice).unwrap_or_default();
    let lower = overlapping(l1, &l0);
    let self_overlap = l0
        .iter()
        .enumerate()
        .any(|(i, a)| l0.iter().skip(i + 1).any(|b| a.meta.overlaps(&b.meta)));
    if lower.is_empty() && !self_overlap {
        return Choice::Move {
            from: 0,
            nums: nums(&l0),
        };
    }
    Choice::Merge {
        from: 0,
        upper: nums(&l0),
        lower,
    }
}

/// One table of `level` (the oldest by number) goes down a level.
fn choose_deeper(v: &Version, level: usize) -> Option<Choice> {
    let pick = v.levels.get(level)?.iter().min_by_key(|t| t.meta.num)?;
    let below = v
        .levels
        .get(level + 1)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let lower = overlapping(below, &[pick]);
    if lower.is_empty() {
        return Some(Choice::Move {
            from: level,
            nums: vec![pick.meta.num],
        });
    }
    Some(Choice::Merge {
        from: level,
        upper: vec![pick.meta.num],
        lower,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::sstable::{TableMeta, TopicRange};

    fn table(num: u64, size: u64, ranges: &[(u32, u64, u64)]) -> Arc<Table> {
        let mut m = TableMeta {
            num,
            size,
            ..TableMeta::default()
        };
        for (t, a, b) in ranges {
            m.topics.insert(
                *t,
                TopicRange {
                    min_time: *a,
                    max_time: *b,
                    count: 1,
                    bytes: 1,
                    stored: 1,
                    ..TopicRange::default()
                },
            );
        }
        Arc::new(Table::synthetic(m))
    }

    fn version(levels: Vec<Vec<Arc<Table>>>) -> Version {
        let mut v = Version::default();
        for (i, l) in levels.into_iter().enumerate() {
            v.levels[i] = l;
        }
        v
    }

    #[test]
    fn nothing_to_do_below_trigger() {
        let v = version(vec![vec![table(1, 10, &[(1, 0, 10)])]]);
        assert_eq!(choose(&v, &Config::default()), None);
    }

    #[test]
    fn in_order_l0_is_a_trivial_move() {
        let l0 = (0..4)
            .map(|i| {
                table(
                    i + 1,
                    10,
                    &[(1, i * 10, i * 10 + 9), (2, i * 10, i * 10 + 9)],
                )
            })
            .collect();
        let v = version(vec![l0, vec![table(9, 10, &[(1, 100, 200)])]]);
        assert_eq!(
            choose(&v, &Config::default()),
            Some(Choice::Move {
                from: 0,
                nums: vec![1, 2, 3, 4]
            })
        );
    }

    #[test]
    fn overlapping_l0_takes_all_l0_tables_and_overlapping_l1() {
        let l0 = vec![
            table(1, 10, &[(1, 0, 100)]),
            table(2, 10, &[(1, 50, 60)]),
            table(3, 10, &[(2, 0, 5)]),
            table(4, 10, &[(3, 0, 5)]),
        ];
        let l1 = vec![table(7, 10, &[(1, 90, 95)]), table(8, 10, &[(1, 200, 300)])];
        let v = version(vec![l0, l1]);
        assert_eq!(
            choose(&v, &Config::default()),
            Some(Choice::Merge {
                from: 0,
                upper: vec![1, 2, 3, 4],
                lower: vec![7]
            })
        );
    }

    #[test]
    fn oversized_level_moves_or_merges_its_oldest_table() {
        let cfg = Config {
            base_level_bytes: 100,
            ..Config::default()
        };
        let l1 = vec![table(5, 80, &[(1, 0, 10)]), table(6, 80, &[(1, 20, 30)])];
        let v = version(vec![vec![], l1.clone(), vec![table(9, 10, &[(2, 0, 10)])]]);
        assert_eq!(
            choose(&v, &cfg),
            Some(Choice::Move {
                from: 1,
                nums: vec![5]
            })
        );
        let v = version(vec![vec![], l1, vec![table(9, 10, &[(1, 5, 6)])]]);
        assert_eq!(
            choose(&v, &cfg),
            Some(Choice::Merge {
                from: 1,
                upper: vec![5],
                lower: vec![9]
            })
        );
    }
}
