//! Immutable snapshots of the live file set. Readers clone an
//! `Arc<Version>` and never hold a lock while iterating; a file whose table
//! or value-log handle is marked obsolete is deleted when the last version
//! (or iterator) holding it drops.

use super::sstable::Table;
use super::vlog::VlogFile;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const LEVELS: usize = 7;

#[derive(Clone, Debug)]
pub struct Version {
    /// Level 0 in flush order (oldest first); deeper levels by file number.
    pub levels: Vec<Vec<Arc<Table>>>,
    pub vlogs: BTreeMap<u64, Arc<VlogFile>>,
}

impl Default for Version {
    fn default() -> Self {
        Version {
            levels: vec![Vec::new(); LEVELS],
            vlogs: BTreeMap::new(),
        }
    }
}

/// A change to the live file set.
#[derive(Default)]
pub struct VersionEdit {
    pub add: Vec<(usize, Arc<Table>)>,
    pub remove: Vec<(usize, u64)>,
    pub add_vlogs: Vec<Arc<VlogFile>>,
    pub remove_vlogs: Vec<u64>,
}

impl Version {
    pub fn tables(&self) -> impl Iterator<Item = (usize, &Arc<Table>)> {
        self.levels
            .iter()
            .enumerate()
            .flat_map(|(l, ts)| ts.iter().map(move |t| (l, t)))
    }

    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels
            .get(level)
            .map_or(0, |ts| ts.iter().map(|t| t.meta.size).sum())
    }

    pub fn table_count(&self, level: usize) -> usize {
        self.levels.get(level).map_or(0, Vec::len)
    }

    /// The next version; removed handles are marked obsolete so their
    /// files go away once no older version holds them.
    pub fn apply(&self, edit: &VersionEdit) -> Version {
        let mut v = self.clone();
        let moved = |num: u64| edit.add.iter().any(|(_, t)| t.meta.num == num);
        for (level, num) in &edit.remove {
            if let Some(ts) = v.levels.get_mut(*level) {
                ts.retain(|t| {
                    let hit = t.meta.num == *num;
                    if hit && !moved(*num) {
                        t.mark_obsolete();
                    }
                    !hit
                });
            }
        }
        for (level, t) in &edit.add {
            if let Some(ts) = v.levels.get_mut(*level) {
                ts.push(t.clone());
                ts.sort_by_key(|t| t.meta.num);
            }
        }
        for num in &edit.remove_vlogs {
            if let Some(f) = v.vlogs.remove(num) {
                f.mark_obsolete();
            }
        }
        for f in &edit.add_vlogs {
            v.vlogs.insert(f.num, f.clone());
        }
        v
    }
}
