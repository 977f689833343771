//! One change to the live file set, built once as both the manifest edits
//! (made durable first) and the in-memory version edit (installed after).

use super::db::{Inner, SuperVersion};
use super::error::Result;
use super::manifest::Edit;
use super::memtable::Memtable;
use super::sstable::Table;
use super::version::{Version, VersionEdit};
use super::vlog::VlogFile;
use std::sync::Arc;

#[derive(Default)]
pub struct Change {
    pub edits: Vec<Edit>,
    pub version: VersionEdit,
}

impl Change {
    /// Adds a table (or moves it: after a `remove_table` of the same
    /// number) with its wall-clock write time.
    pub fn add_table(&mut self, level: usize, t: Arc<Table>) {
        self.edits.push(Edit::AddTable {
            level: level as u8,
            num: t.meta.num,
        });
        self.edits.push(Edit::TableWritten {
            num: t.meta.num,
            wall: t.written_at,
        });
        self.version.add.push((level, t));
    }

    pub fn remove_table(&mut self, level: usize, num: u64) {
        self.edits.push(Edit::RemoveTable {
            level: level as u8,
            num,
        });
        self.version.remove.push((level, num));
    }

    pub fn add_vlog(&mut self, f: Arc<VlogFile>) {
        self.edits.push(Edit::AddVlog { num: f.num });
        self.version.add_vlogs.push(f);
    }

    pub fn remove_vlog(&mut self, num: u64) {
        self.edits.push(Edit::RemoveVlog { num });
        self.version.remove_vlogs.push(num);
    }

    /// A manifest-only edit (counters, floors, file numbers).
    pub fn note(&mut self, e: Edit) {
        self.edits.push(e);
    }
}

impl SuperVersion {
    /// The next super version: this one with the given parts replaced.
    pub fn next(
        &self,
        version: Option<Version>,
        active: Option<Arc<Memtable>>,
        imm: Option<Vec<Arc<Memtable>>>,
    ) -> Arc<SuperVersion> {
        Arc::new(SuperVersion {
            version: version.map_or_else(|| self.version.clone(), Arc::new),
            active: active.unwrap_or_else(|| self.active.clone()),
            imm: imm.unwrap_or_else(|| self.imm.clone()),
        })
    }
}

impl Inner {
    /// Logs the change to the manifest, then installs it.
    pub fn commit(&self, c: Change) -> Result<()> {
        self.log_edits(&c.edits)?;
        self.install(&c.version);
        Ok(())
    }
}
