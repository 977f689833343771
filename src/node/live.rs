//! The node's parameters while it runs: a change is checked exactly as at
//! start, then applied to what it governs (the store's retention, the
//! recorder's topic selection, query limits and the diagnostics period,
//! which are read from here on every use). Client-library neutral.

use super::error::Result;
use super::params::{NodeParams, ParamValue};
use super::rcl::recorder::{NodeIdentity, Recording, Selection, SharedSelection};
use super::recorder::ingest::Stats;
use super::services::Limits;
use crate::engine::Store;
use crate::places::live::Places;
use parking_lot::RwLock;
use std::sync::Arc;

pub struct Live {
    params: RwLock<NodeParams>,
    store: Arc<Store>,
    /// The place index the writer keeps current (`~/query_near`).
    pub places: Arc<Places>,
    stats: Arc<Stats>,
    selection: SharedSelection,
    /// Fully qualified node name (its own topics are never recorded).
    own_node: String,
}

impl Live {
    /// Starts recording and returns it with the live parameters that govern
    /// it (the same in every client library build).
    pub fn start(
        identity: &NodeIdentity,
        params: &NodeParams,
        store: &Arc<Store>,
        stats: &Arc<Stats>,
    ) -> Result<(Recording, Arc<Live>)> {
        // Before the recorder takes its first message.
        stats.set_paused(params.start_paused);
        stats.set_sim_time(params.use_sim_time);
        let places = Places::open(store, params.places_pose_topics.clone()).map_err(|e| {
            super::error::NodeError::Middleware {
                operation: "spawn thread",
                detail: e.to_string(),
            }
        })?;
        let recording = Recording::start(identity, params, store, stats, &places)?;
        let live = Live {
            params: RwLock::new(params.clone()),
            store: Arc::clone(store),
            places,
            stats: Arc::clone(stats),
            selection: Arc::clone(&recording.selection),
            own_node: identity.fqn.clone(),
        };
        Ok((recording, Arc::new(live)))
    }

    /// The page limits of queries now (`query.max_messages`,
    /// `query.max_bytes`).
    pub fn query_limits(&self) -> Limits {
        self.with(|p| Limits {
            max_messages: p.query_max_messages,
            max_bytes: p.query_max_bytes,
        })
    }

    /// Reads the parameters in force now.
    pub fn with<R>(&self, f: impl FnOnce(&NodeParams) -> R) -> R {
        f(&self.params.read())
    }

    /// The configuration `name = value` would give, or why it is refused.
    #[cfg_attr(
        not(feature = "ros"),
        expect(dead_code, reason = "only rclrs checks a set before it applies it")
    )]
    pub fn check(&self, name: &str, value: ParamValue) -> Result<NodeParams, String> {
        let current = self.params.read();
        self.candidate(&current, name, value).map(|(p, _)| p)
    }

    /// Checks and applies `name = value`; on error nothing changed.
    pub fn apply(&self, name: &str, value: ParamValue) -> Result<(), String> {
        self.apply_all(vec![(name.to_string(), value)])
    }

    /// Checks every change (each on top of the ones before it), then
    /// applies them all at once under one lock: on error nothing changed.
    pub fn apply_all(&self, changes: Vec<(String, ParamValue)>) -> Result<(), String> {
        let mut params = self.params.write();
        let mut changed = params.clone();
        let mut selection = None;
        for (name, value) in changes {
            let (next, sel) = self.candidate(&changed, &name, value)?;
            changed = next;
            selection = Some(sel);
        }
        let Some(selection) = selection else {
            return Ok(());
        };
        let retention = changed.engine_options().retention;
        if retention != params.engine_options().retention {
            self.store
                .set_retention(retention)
                .map_err(|e| format!("retention: {e}"))?;
        }
        *self.selection.lock() = Arc::new(selection);
        self.stats
            .min_free_bytes
            .store(changed.min_free_bytes, std::sync::atomic::Ordering::Relaxed);
        *params = changed;
        Ok(())
    }

    fn candidate(
        &self,
        current: &NodeParams,
        name: &str,
        value: ParamValue,
    ) -> Result<(NodeParams, Selection), String> {
        let changed = current
            .with_change(name, value)
            .map_err(|e| e.to_string())?;
        let selection =
            Selection::from_params(&changed, &self.own_node).map_err(|e| e.to_string())?;
        let retention_changes =
            changed.engine_options().retention != current.engine_options().retention;
        if retention_changes && self.store.health().poisoned {
            return Err(format!(
                "{name}: the store refuses changes after a failed write (restart the node)"
            ));
        }
        Ok((changed, selection))
    }
}
