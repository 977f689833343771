//! What the node declares for each parameter (description, whether it can
//! change while the node runs, lower bound), and applying a change at run
//! time with the same validation as at start. Client-library neutral: each
//! adapter turns these into its own declarations.

use super::error::{NodeError, Result};
use super::params::{NodeParams, ParamValue};
use std::collections::BTreeMap;

/// One declared parameter.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// False: read-only, set once at start.
    pub live: bool,
    /// Smallest accepted value of a number (a descriptor range).
    pub min: Option<f64>,
}

const fn spec(
    name: &'static str,
    live: bool,
    min: Option<f64>,
    description: &'static str,
) -> ParamSpec {
    ParamSpec {
        name,
        description,
        live,
        min,
    }
}

/// Every parameter of `config/motedb.yaml` except `qos_overrides.*` (read at
/// start) and `use_sim_time` (the client library's own).
pub const SPECS: &[ParamSpec] = &[
    spec(
        "storage.path",
        false,
        None,
        "Store directory; empty: $ROS_HOME/motedb. Read-only: restart to change.",
    ),
    spec(
        "hardware_id",
        false,
        None,
        "hardware_id of every diagnostic status. Read-only.",
    ),
    spec(
        "diagnostic_updater.period",
        true,
        Some(0.0),
        "Seconds between /diagnostics messages (> 0).",
    ),
    spec(
        "topics",
        true,
        None,
        "Topic names to record; empty: the regexes or every topic.",
    ),
    spec(
        "include_regex",
        true,
        None,
        "Record only topics whose full name matches; empty: no filter.",
    ),
    spec(
        "exclude_regex",
        true,
        None,
        "Never record topics whose full name matches; empty: no filter.",
    ),
    spec(
        "discovery_period_s",
        true,
        Some(0.0),
        "Seconds between graph checks for new topics (> 0; rosbag2 polls at 0.1).",
    ),
    spec(
        "include_hidden_topics",
        true,
        None,
        "Also record hidden topics (a name part starting with '_'), as rosbag2's --include-hidden-topics.",
    ),
    spec(
        "start_paused",
        false,
        None,
        "Start with recording paused until ~/resume. Read-only.",
    ),
    spec(
        "places.mark_topic",
        false,
        None,
        "Topic of motedb_interfaces/msg/Mark messages that make marks (always recorded); empty: none. Read-only.",
    ),
    spec(
        "places.pose_topics",
        false,
        None,
        "Pose topics (Odometry, PoseStamped, PoseWithCovarianceStamped) ~/query_near reads; empty: every recorded one. Read-only.",
    ),
    spec(
        "queue.capacity",
        false,
        Some(1.0),
        "Messages buffered before the writer; a full queue counts a drop. Read-only.",
    ),
    spec(
        "queue.max_bytes",
        false,
        Some(1.0),
        "Payload bytes buffered before the writer; beyond it a message counts a drop. Read-only.",
    ),
    spec(
        "subscription_depth",
        false,
        Some(1.0),
        "History depth of each recorder subscription (rosbag2: 10). Read-only.",
    ),
    spec(
        "storage.min_free_bytes",
        true,
        Some(0.0),
        "Stop writing (counted drops, ERROR) while the store's disk has less free; WARN below twice it; 0: off.",
    ),
    spec(
        "durability.mode",
        false,
        None,
        "sync, periodic or none. Read-only: restart to change.",
    ),
    spec(
        "storage.value_compression",
        false,
        None,
        "zstd, lz4 or none: codec tried per topic on payloads of 64 KiB or more, kept while it saves 1/8 or more, paused while the queue is over half full. Read-only.",
    ),
    spec(
        "storage.memtable_bytes",
        false,
        Some(65536.0),
        "Memory for messages not yet in a table; one is written at half of it (>= 65536). Read-only.",
    ),
    spec(
        "durability.sync_interval_ms",
        false,
        Some(1.0),
        "Group-commit interval of periodic: the most a power cut loses. Read-only.",
    ),
    spec(
        "retention.max_bytes",
        true,
        Some(0.0),
        "Drop the oldest whole files beyond this many bytes; 0: unlimited.",
    ),
    spec(
        "retention.max_age_s",
        true,
        Some(0.0),
        "Drop files older than this many seconds; 0: unlimited.",
    ),
    spec(
        "retention.pinned_max_bytes",
        true,
        Some(0.0),
        "Most bytes pinned marks keep from retention (oldest pin released beyond); 0: half of retention.max_bytes.",
    ),
    spec(
        "retention.require_offloaded",
        false,
        None,
        "Retention drops only files the offload has uploaded (needs offload.url). Read-only.",
    ),
    spec(
        "query.max_messages",
        true,
        Some(1.0),
        "Default and cap of messages per ~/query_range page.",
    ),
    spec(
        "query.max_bytes",
        true,
        Some(1.0),
        "Default and cap of bytes per ~/query_range page.",
    ),
    spec(
        "offload.url",
        false,
        None,
        "Mirror the store to s3://bucket/prefix every offload.period_s; empty: off. Read-only.",
    ),
    spec(
        "offload.endpoint",
        false,
        None,
        "S3 endpoint URL; empty: MOTEDB_S3_ENDPOINT, AWS_ENDPOINT_URL, else AWS. Read-only.",
    ),
    spec(
        "offload.credentials_file",
        false,
        None,
        "File of KEY=VALUE lines (AWS_ACCESS_KEY_ID, ...) over the environment; empty: none. Read-only.",
    ),
    spec(
        "offload.period_s",
        false,
        Some(0.0),
        "Seconds between offload rounds (> 0). Read-only.",
    ),
    spec(
        "offload.max_bytes_per_s",
        false,
        Some(0.0),
        "Offload upload cap in bytes per second; 0: none. Read-only.",
    ),
    spec(
        "export.directory",
        false,
        None,
        "Base directory of ~/export_mcap outputs; empty: $ROS_HOME/motedb_exports. Read-only.",
    ),
];

pub fn spec_of(name: &str) -> Option<&'static ParamSpec> {
    SPECS.iter().find(|s| s.name == name)
}

/// Names in the overrides that the node does not know (a typo in a params
/// file, say): worth a warning, never silently ignored.
pub fn unknown_names(given: &BTreeMap<String, ParamValue>) -> Vec<String> {
    given
        .keys()
        .filter(|k| {
            spec_of(k).is_none() && *k != "use_sim_time" && !k.starts_with("qos_overrides.")
        })
        .cloned()
        .collect()
}

impl NodeParams {
    /// This configuration with `name` set to `value`, validated exactly as
    /// at start; an error (with the reason) leaves nothing changed. A
    /// read-only parameter is refused.
    pub fn with_change(&self, name: &str, value: ParamValue) -> Result<NodeParams> {
        let Some(spec) = spec_of(name) else {
            return Err(NodeError::ParamValue {
                name: name.to_string(),
                reason: "not a motedb parameter".into(),
            });
        };
        if !spec.live {
            return Err(NodeError::ParamValue {
                name: name.to_string(),
                reason: "read-only: set it at start (restart the node)".into(),
            });
        }
        let mut given: BTreeMap<String, ParamValue> = self
            .effective()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        given.insert(name.to_string(), value);
        // Every path is given explicitly, so the home directory is unused.
        let mut changed = NodeParams::from_overrides(&given, std::path::Path::new("/"))?;
        changed.qos_overrides = self.qos_overrides.clone();
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> NodeParams {
        NodeParams::defaults(std::path::Path::new("/home/r/.ros"))
    }

    #[test]
    fn live_change_applies_and_keeps_the_rest() {
        let p = base();
        let q = p
            .with_change("retention.max_bytes", ParamValue::Integer(1 << 20))
            .unwrap();
        assert_eq!(q.retention_max_bytes, 1 << 20);
        assert_eq!(q.storage_path, p.storage_path);
        assert_eq!(q.export_directory, p.export_directory);
        assert_eq!(q.query_max_messages, p.query_max_messages);
    }

    #[test]
    fn read_only_bad_type_and_bad_value_are_refused_with_reasons() {
        let p = base();
        let e = p
            .with_change("storage.path", ParamValue::String("/x".into()))
            .unwrap_err();
        assert!(e.to_string().contains("read-only"), "{e}");
        let e = p
            .with_change("query.max_messages", ParamValue::String("ten".into()))
            .unwrap_err();
        assert!(e.to_string().contains("query.max_messages"), "{e}");
        let e = p
            .with_change("discovery_period_s", ParamValue::Double(-1.0))
            .unwrap_err();
        assert!(e.to_string().contains("discovery_period_s"), "{e}");
        assert!(p.with_change("nope", ParamValue::Bool(true)).is_err());
    }

    #[test]
    fn every_effective_parameter_has_a_spec() {
        for (name, _) in base().effective() {
            assert!(
                name == "use_sim_time" || spec_of(name).is_some(),
                "{name} has no spec"
            );
        }
    }

    #[test]
    fn unknown_names_are_found() {
        let mut given = BTreeMap::new();
        given.insert("retention.max_byte".to_string(), ParamValue::Integer(1));
        given.insert(
            "qos_overrides./a.reliability".to_string(),
            ParamValue::String("reliable".into()),
        );
        given.insert("use_sim_time".to_string(), ParamValue::Bool(true));
        given.insert("query.max_bytes".to_string(), ParamValue::Integer(5));
        assert_eq!(
            unknown_names(&given),
            vec!["retention.max_byte".to_string()]
        );
    }
}
