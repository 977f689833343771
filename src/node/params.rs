//! Node parameters: names, defaults and validation, independent of the
//! client library. The adapter reads the overrides given with `-p` and
//! `--params-file` into a [`ParamValue`] map and publishes
//! [`NodeParams::effective`] back as the node's parameters.
//! Every name and default here is documented in config/motedb.yaml.

use super::error::{NodeError, Result};
use super::recorder::qos::Override;
use crate::engine::{Codec, Durability, Options, Retention};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A parameter value, as ROS 2 types them.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    Bool(bool),
    Integer(i64),
    Double(f64),
    String(String),
    StringArray(Vec<String>),
}

impl ParamValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamValue::Bool(_) => "bool",
            ParamValue::Integer(_) => "integer",
            ParamValue::Double(_) => "double",
            ParamValue::String(_) => "string",
            ParamValue::StringArray(_) => "string array",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurabilityMode {
    Sync,
    Periodic,
    None,
}

/// The smallest `storage.memtable_bytes`: below it every few messages
/// would make a table.
pub const MIN_MEMTABLE_BYTES: u64 = 64 << 10;

/// Effective configuration of one node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeParams {
    pub storage_path: PathBuf,
    pub hardware_id: String,
    pub diagnostic_period: Duration,
    pub topics: Vec<String>,
    pub include_regex: String,
    pub exclude_regex: String,
    pub discovery_period: Duration,
    pub include_hidden_topics: bool,
    pub queue_capacity: usize,
    pub queue_max_bytes: u64,
    pub subscription_depth: usize,
    pub min_free_bytes: u64,
    pub durability_mode: DurabilityMode,
    /// Codec tried on large payloads, per topic (`Codec::Raw`: none).
    pub value_compression: Codec,
    pub sync_interval: Duration,
    /// Bytes the memtable holds before it is written out as a table.
    pub memtable_bytes: u64,
    pub retention_max_bytes: u64,
    pub retention_max_age: Duration,
    /// 0: half of `retention_max_bytes` (unlimited when that is 0).
    pub retention_pinned_max_bytes: u64,
    /// Retention drops only files the offload has uploaded.
    pub retention_require_offloaded: bool,
    pub query_max_messages: u32,
    pub query_max_bytes: u64,
    pub export_directory: PathBuf,
    pub use_sim_time: bool,
    /// Topic whose `motedb_interfaces/msg/Mark` messages make marks
    /// (empty: none). Always recorded.
    pub places_mark_topic: String,
    /// Pose topics the place index reads; empty: every recorded topic of
    /// a pose type.
    pub places_pose_topics: Vec<String>,
    /// Start with recording paused (`~/resume` starts it), like
    /// `ros2 bag record --start-paused`.
    pub start_paused: bool,
    /// `offload.*`: mirror the store to object storage (None: off).
    pub offload: Option<OffloadParams>,
    /// `qos_overrides.<topic>.reliability` (reliable, best_effort) and
    /// `qos_overrides.<topic>.durability` (transient_local, volatile).
    pub qos_overrides: BTreeMap<String, Override>,
}

/// Where and how often the node mirrors its store (`offload.*`).
#[derive(Clone, Debug, PartialEq)]
pub struct OffloadParams {
    pub url: String,
    pub endpoint: String,
    pub credentials_file: String,
    pub period: Duration,
    /// 0: no cap.
    pub max_bytes_per_s: u64,
}

impl OffloadParams {
    /// What the `offload.*` parameters read when the offload is off.
    pub fn off() -> OffloadParams {
        OffloadParams {
            url: String::new(),
            endpoint: String::new(),
            credentials_file: String::new(),
            period: Duration::from_secs(60),
            max_bytes_per_s: 0,
        }
    }

    /// The client settings: the environment, then the credentials file,
    /// then the endpoint parameter.
    pub fn settings(
        &self,
        dir: &std::path::Path,
        offloaded: crate::remote::Offloaded,
    ) -> Result<crate::remote::OffloadSettings> {
        let bad = |name: &str, e: crate::remote::RemoteError| NodeError::ParamValue {
            name: name.into(),
            reason: e.to_string(),
        };
        let location =
            crate::remote::Location::parse(&self.url).map_err(|e| bad("offload.url", e))?;
        let mut config = crate::remote::Config::from_env();
        if !self.credentials_file.is_empty() {
            config = config
                .with_file(std::path::Path::new(&self.credentials_file))
                .map_err(|e| bad("offload.credentials_file", e))?;
        }
        if !self.endpoint.is_empty() {
            config.endpoint = Some(self.endpoint.clone());
        }
        // A round against a server that is down fails after this, so
        // /diagnostics says so within about a period (at least 5 s).
        config.retry_for = self
            .period
            .clamp(Duration::from_secs(5), Duration::from_secs(60));
        if config.access_key_id.is_none() || config.secret_access_key.is_none() {
            return Err(NodeError::ParamValue {
                name: "offload.url".into(),
                reason: "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or offload.credentials_file".into(),
            });
        }
        Ok(crate::remote::OffloadSettings {
            offloaded,
            dir: dir.to_path_buf(),
            config,
            location,
            period: self.period,
            max_bytes_per_s: (self.max_bytes_per_s > 0).then_some(self.max_bytes_per_s),
        })
    }
}

/// `$ROS_HOME`, else `~/.ros`.
pub fn ros_home() -> PathBuf {
    if let Some(home) = std::env::var_os("ROS_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".ros")
}

impl NodeParams {
    /// Defaults; `ros_home` decides the storage and export paths.
    pub fn defaults(ros_home: &std::path::Path) -> NodeParams {
        NodeParams {
            storage_path: ros_home.join("motedb"),
            hardware_id: "motedb".to_string(),
            diagnostic_period: Duration::from_secs(1),
            topics: Vec::new(),
            include_regex: String::new(),
            exclude_regex: String::new(),
            discovery_period: Duration::from_millis(100),
            include_hidden_topics: false,
            queue_capacity: 10_000,
            queue_max_bytes: 256 << 20,
            subscription_depth: 10,
            min_free_bytes: 256 << 20,
            durability_mode: DurabilityMode::Periodic,
            value_compression: Codec::Zstd,
            sync_interval: Duration::from_millis(100),
            memtable_bytes: Options::default().memtable_bytes as u64,
            retention_max_bytes: 0,
            retention_max_age: Duration::ZERO,
            retention_pinned_max_bytes: 0,
            retention_require_offloaded: false,
            query_max_messages: 1000,
            query_max_bytes: 16 << 20,
            export_directory: ros_home.join("motedb_exports"),
            use_sim_time: false,
            start_paused: false,
            places_mark_topic: String::new(),
            places_pose_topics: Vec::new(),
            offload: None,
            qos_overrides: BTreeMap::new(),
        }
    }

    /// Defaults overridden by `given`. Unknown names are left alone (they
    /// may belong to the client library); known names with a wrong type or
    /// an unusable value are errors.
    pub fn from_overrides(
        given: &BTreeMap<String, ParamValue>,
        ros_home: &std::path::Path,
    ) -> Result<NodeParams> {
        let mut p = NodeParams::defaults(ros_home);
        let r = Reader(given);
        if let Some(v) = r.string("storage.path")?.filter(|v| !v.is_empty()) {
            p.storage_path = PathBuf::from(v);
        }
        if let Some(v) = r.string("hardware_id")? {
            p.hardware_id = v;
        }
        if let Some(v) = r.seconds("diagnostic_updater.period")? {
            p.diagnostic_period = v;
        }
        if let Some(v) = r.strings("topics")? {
            p.topics = v;
        }
        if let Some(v) = r.string("include_regex")? {
            p.include_regex = v;
        }
        if let Some(v) = r.string("exclude_regex")? {
            p.exclude_regex = v;
        }
        if let Some(v) = r.seconds("discovery_period_s")? {
            p.discovery_period = v;
        }
        if let Some(v) = r.bool("include_hidden_topics")? {
            p.include_hidden_topics = v;
        }
        if let Some(v) = r.positive("queue.capacity")? {
            p.queue_capacity = to_usize("queue.capacity", v)?;
        }
        if let Some(v) = r.positive("queue.max_bytes")? {
            p.queue_max_bytes = v;
        }
        if let Some(v) = r.positive("subscription_depth")? {
            p.subscription_depth = to_usize("subscription_depth", v)?;
        }
        if let Some(v) = r.non_negative("storage.min_free_bytes")? {
            p.min_free_bytes = v;
        }
        if let Some(v) = r.string("durability.mode")? {
            p.durability_mode = parse_durability("durability.mode", &v)?;
        }
        if let Some(v) = r.string("storage.value_compression")? {
            p.value_compression = parse_codec("storage.value_compression", &v)?;
        }
        if let Some(v) = r.positive("durability.sync_interval_ms")? {
            p.sync_interval = Duration::from_millis(v);
        }
        if let Some(v) = r.non_negative("storage.memtable_bytes")? {
            if v < MIN_MEMTABLE_BYTES {
                return Err(NodeError::ParamValue {
                    name: "storage.memtable_bytes".into(),
                    reason: format!("{v} is below the minimum of {MIN_MEMTABLE_BYTES}"),
                });
            }
            p.memtable_bytes = v;
        }
        if let Some(v) = r.non_negative("retention.max_bytes")? {
            p.retention_max_bytes = v;
        }
        if let Some(v) = r.non_negative_seconds("retention.max_age_s")? {
            p.retention_max_age = v;
        }
        if let Some(v) = r.non_negative("retention.pinned_max_bytes")? {
            p.retention_pinned_max_bytes = v;
        }
        if let Some(v) = r.bool("retention.require_offloaded")? {
            p.retention_require_offloaded = v;
        }
        if let Some(v) = r.positive("query.max_messages")? {
            p.query_max_messages = u32::try_from(v).map_err(|_| NodeError::ParamValue {
                name: "query.max_messages".into(),
                reason: format!("{v} does not fit in 32 bits"),
            })?;
        }
        if let Some(v) = r.positive("query.max_bytes")? {
            p.query_max_bytes = v;
        }
        if let Some(v) = r.string("export.directory")?.filter(|v| !v.is_empty()) {
            p.export_directory = PathBuf::from(v);
        }
        if let Some(v) = r.bool("use_sim_time")? {
            p.use_sim_time = v;
        }
        if let Some(v) = r.bool("start_paused")? {
            p.start_paused = v;
        }
        if let Some(v) = r.string("places.mark_topic")? {
            p.places_mark_topic = v;
        }
        if let Some(v) = r.strings("places.pose_topics")? {
            p.places_pose_topics = v;
        }
        if let Some(url) = r.string("offload.url")?.filter(|u| !u.is_empty()) {
            crate::remote::Location::parse(&url).map_err(|e| NodeError::ParamValue {
                name: "offload.url".into(),
                reason: e.to_string(),
            })?;
            p.offload = Some(OffloadParams {
                url,
                endpoint: r.string("offload.endpoint")?.unwrap_or_default(),
                credentials_file: r.string("offload.credentials_file")?.unwrap_or_default(),
                period: r
                    .seconds("offload.period_s")?
                    .unwrap_or(OffloadParams::off().period),
                max_bytes_per_s: r.non_negative("offload.max_bytes_per_s")?.unwrap_or(0),
            });
        }
        if p.retention_require_offloaded && p.offload.is_none() {
            return Err(NodeError::ParamValue {
                name: "retention.require_offloaded".into(),
                reason: "needs offload.url: without an offload nothing is ever uploaded, so retention could drop nothing".into(),
            });
        }
        p.qos_overrides = qos_overrides(given)?;
        if p.retention_max_bytes > 0 && p.retention_pinned_max_bytes >= p.retention_max_bytes {
            return Err(NodeError::ParamValue {
                name: "retention.pinned_max_bytes".into(),
                reason: format!(
                    "{} is not below retention.max_bytes {}: pins could then fill the whole quota and leave no room for new data",
                    p.retention_pinned_max_bytes, p.retention_max_bytes
                ),
            });
        }
        Ok(p)
    }

    /// Engine options derived from the durability and retention parameters.
    pub fn engine_options(&self) -> Options {
        let durability = match self.durability_mode {
            DurabilityMode::Sync => Durability::Sync,
            DurabilityMode::Periodic => Durability::Periodic(self.sync_interval),
            DurabilityMode::None => Durability::None,
        };
        let max_age = (!self.retention_max_age.is_zero()).then_some(self.retention_max_age);
        Options {
            durability,
            value_compression: self.value_compression,
            memtable_bytes: usize::try_from(self.memtable_bytes).unwrap_or(usize::MAX),
            retention: Retention {
                max_bytes: self.retention_max_bytes,
                pinned_max_bytes: self.retention_pinned_max_bytes,
                max_age,
            },
            // With an offload, what retention drops stays in the copy.
            remember_dropped: self.offload.is_some(),
            ..Options::default()
        }
    }

    /// Every parameter with its effective value, for the node's parameter
    /// services.
    pub fn effective(&self) -> Vec<(&'static str, ParamValue)> {
        use ParamValue as V;
        let path = |p: &PathBuf| V::String(p.display().to_string());
        let off = self.offload.clone().unwrap_or_else(OffloadParams::off);
        vec![
            ("storage.path", path(&self.storage_path)),
            ("hardware_id", V::String(self.hardware_id.clone())),
            (
                "diagnostic_updater.period",
                V::Double(self.diagnostic_period.as_secs_f64()),
            ),
            ("topics", V::StringArray(self.topics.clone())),
            ("include_regex", V::String(self.include_regex.clone())),
            ("exclude_regex", V::String(self.exclude_regex.clone())),
            (
                "discovery_period_s",
                V::Double(self.discovery_period.as_secs_f64()),
            ),
            ("include_hidden_topics", V::Bool(self.include_hidden_topics)),
            ("start_paused", V::Bool(self.start_paused)),
            (
                "places.mark_topic",
                V::String(self.places_mark_topic.clone()),
            ),
            (
                "places.pose_topics",
                V::StringArray(self.places_pose_topics.clone()),
            ),
            (
                "queue.capacity",
                V::Integer(saturating_i64(self.queue_capacity as u64)),
            ),
            (
                "queue.max_bytes",
                V::Integer(saturating_i64(self.queue_max_bytes)),
            ),
            (
                "subscription_depth",
                V::Integer(saturating_i64(self.subscription_depth as u64)),
            ),
            (
                "storage.min_free_bytes",
                V::Integer(saturating_i64(self.min_free_bytes)),
            ),
            (
                "durability.mode",
                V::String(durability_name(self.durability_mode).into()),
            ),
            (
                "storage.value_compression",
                V::String(codec_name(self.value_compression).into()),
            ),
            (
                "durability.sync_interval_ms",
                V::Integer(saturating_i64(self.sync_interval.as_millis() as u64)),
            ),
            (
                "storage.memtable_bytes",
                V::Integer(saturating_i64(self.memtable_bytes)),
            ),
            (
                "retention.max_bytes",
                V::Integer(saturating_i64(self.retention_max_bytes)),
            ),
            (
                "retention.max_age_s",
                V::Double(self.retention_max_age.as_secs_f64()),
            ),
            (
                "retention.pinned_max_bytes",
                V::Integer(saturating_i64(self.retention_pinned_max_bytes)),
            ),
            (
                "retention.require_offloaded",
                V::Bool(self.retention_require_offloaded),
            ),
            (
                "query.max_messages",
                V::Integer(i64::from(self.query_max_messages)),
            ),
            (
                "query.max_bytes",
                V::Integer(saturating_i64(self.query_max_bytes)),
            ),
            ("export.directory", path(&self.export_directory)),
            ("use_sim_time", V::Bool(self.use_sim_time)),
            ("offload.url", V::String(off.url)),
            ("offload.endpoint", V::String(off.endpoint)),
            ("offload.credentials_file", V::String(off.credentials_file)),
            ("offload.period_s", V::Double(off.period.as_secs_f64())),
            (
                "offload.max_bytes_per_s",
                V::Integer(saturating_i64(off.max_bytes_per_s)),
            ),
        ]
    }
}

/// Collects `qos_overrides.<topic>.reliability|durability` parameters.
fn qos_overrides(given: &BTreeMap<String, ParamValue>) -> Result<BTreeMap<String, Override>> {
    let mut out: BTreeMap<String, Override> = BTreeMap::new();
    for (name, value) in given {
        let Some(rest) = name.strip_prefix("qos_overrides.") else {
            continue;
        };
        let Some((topic, policy)) = rest.rsplit_once('.') else {
            continue;
        };
        let bad = |reason: String| NodeError::ParamValue {
            name: name.clone(),
            reason,
        };
        // rclcpp's form names the entity: `qos_overrides./scan.subscription.reliability`.
        if topic.ends_with(".publisher") {
            return Err(bad(
                "motedb only subscribes to recorded topics: use qos_overrides.<topic>.subscription.<policy> or qos_overrides.<topic>.<policy>".into(),
            ));
        }
        let topic = topic.strip_suffix(".subscription").unwrap_or(topic);
        let entry = out.entry(topic.to_string()).or_default();
        if policy == "depth" {
            match value {
                ParamValue::Integer(d) if *d > 0 => {
                    entry.depth = Some(usize::try_from(*d).unwrap_or(usize::MAX));
                    continue;
                }
                other => return Err(bad(format!("expected a positive integer, got {other:?}"))),
            }
        }
        let ParamValue::String(text) = value else {
            return Err(bad(format!("expected a string, got {}", value.type_name())));
        };
        match (policy, text.as_str()) {
            ("reliability", "reliable") => entry.reliable = Some(true),
            ("reliability", "best_effort") => entry.reliable = Some(false),
            ("durability", "transient_local") => entry.transient_local = Some(true),
            ("durability", "volatile") => entry.transient_local = Some(false),
            ("reliability", other) => {
                return Err(bad(format!("{other:?} is not reliable or best_effort")))
            }
            ("durability", other) => {
                return Err(bad(format!("{other:?} is not transient_local or volatile")))
            }
            (other, _) => return Err(bad(format!("unknown QoS policy {other:?}"))),
        }
    }
    Ok(out)
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn durability_name(mode: DurabilityMode) -> &'static str {
    match mode {
        DurabilityMode::Sync => "sync",
        DurabilityMode::Periodic => "periodic",
        DurabilityMode::None => "none",
    }
}

fn parse_durability(name: &str, text: &str) -> Result<DurabilityMode> {
    match text {
        "sync" => Ok(DurabilityMode::Sync),
        "periodic" => Ok(DurabilityMode::Periodic),
        "none" => Ok(DurabilityMode::None),
        other => Err(NodeError::ParamValue {
            name: name.into(),
            reason: format!("{other:?} is not one of sync, periodic, none"),
        }),
    }
}

fn parse_codec(name: &str, text: &str) -> Result<Codec> {
    match text {
        "zstd" => Ok(Codec::Zstd),
        "lz4" => Ok(Codec::Lz4),
        "none" => Ok(Codec::Raw),
        other => Err(NodeError::ParamValue {
            name: name.into(),
            reason: format!("{other:?} is not one of zstd, lz4, none"),
        }),
    }
}

fn codec_name(c: Codec) -> &'static str {
    match c {
        Codec::Raw => "none",
        c => c.name(),
    }
}

fn to_usize(name: &str, v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| NodeError::ParamValue {
        name: name.into(),
        reason: format!("{v} is too large"),
    })
}

/// Typed reads of the override map.
struct Reader<'a>(&'a BTreeMap<String, ParamValue>);

impl Reader<'_> {
    fn wrong(name: &str, expected: &'static str, got: &ParamValue) -> NodeError {
        NodeError::ParamType {
            name: name.into(),
            expected,
            got: got.type_name(),
        }
    }

    fn string(&self, name: &str) -> Result<Option<String>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(ParamValue::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(Self::wrong(name, "string", other)),
        }
    }

    fn bool(&self, name: &str) -> Result<Option<bool>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(ParamValue::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(Self::wrong(name, "bool", other)),
        }
    }

    /// A string array without empty entries: ROS parameter files cannot
    /// hold an empty list, so `[""]` stands for one.
    fn strings(&self, name: &str) -> Result<Option<Vec<String>>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(ParamValue::StringArray(v)) => {
                Ok(Some(v.iter().filter(|s| !s.is_empty()).cloned().collect()))
            }
            Some(ParamValue::String(s)) if s.is_empty() => Ok(Some(Vec::new())),
            Some(ParamValue::String(s)) => Ok(Some(vec![s.clone()])),
            Some(other) => Err(Self::wrong(name, "string array", other)),
        }
    }

    fn number(&self, name: &str) -> Result<Option<f64>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(ParamValue::Double(d)) => Ok(Some(*d)),
            Some(ParamValue::Integer(i)) => Ok(Some(*i as f64)),
            Some(other) => Err(Self::wrong(name, "number", other)),
        }
    }

    fn non_negative(&self, name: &str) -> Result<Option<u64>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(ParamValue::Integer(i)) => {
                u64::try_from(*i)
                    .map(Some)
                    .map_err(|_| NodeError::ParamValue {
                        name: name.into(),
                        reason: format!("{i} is negative"),
                    })
            }
            Some(other) => Err(Self::wrong(name, "integer", other)),
        }
    }

    fn positive(&self, name: &str) -> Result<Option<u64>> {
        match self.non_negative(name)? {
            Some(0) => Err(NodeError::ParamValue {
                name: name.into(),
                reason: "must be greater than 0".into(),
            }),
            v => Ok(v),
        }
    }

    fn non_negative_seconds(&self, name: &str) -> Result<Option<Duration>> {
        let Some(s) = self.number(name)? else {
            return Ok(None);
        };
        Duration::try_from_secs_f64(s)
            .map(Some)
            .map_err(|_| NodeError::ParamValue {
                name: name.into(),
                reason: format!("{s} is not a usable number of seconds"),
            })
    }

    fn seconds(&self, name: &str) -> Result<Option<Duration>> {
        match self.non_negative_seconds(name)? {
            Some(d) if d.is_zero() => Err(NodeError::ParamValue {
                name: name.into(),
                reason: "must be greater than 0".into(),
            }),
            v => Ok(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(pairs: &[(&str, ParamValue)]) -> BTreeMap<String, ParamValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn defaults_follow_ros_home() {
        let p = NodeParams::from_overrides(&BTreeMap::new(), "/h/.ros".as_ref()).unwrap();
        assert_eq!(p.storage_path, PathBuf::from("/h/.ros/motedb"));
        assert_eq!(p.diagnostic_period, Duration::from_secs(1));
        assert_eq!(p.query_max_messages, 1000);
        assert_eq!(p.query_max_bytes, 16 << 20);
        assert_eq!(p.durability_mode, DurabilityMode::Periodic);
        assert_eq!(p.engine_options().value_compression, Codec::Zstd);
    }

    #[test]
    fn value_compression_is_one_of_three_names() {
        for (name, codec) in [
            ("zstd", Codec::Zstd),
            ("lz4", Codec::Lz4),
            ("none", Codec::Raw),
        ] {
            let p = NodeParams::from_overrides(
                &given(&[("storage.value_compression", ParamValue::String(name.into()))]),
                "/r".as_ref(),
            )
            .unwrap();
            assert_eq!(p.engine_options().value_compression, codec);
            let shown = p
                .effective()
                .into_iter()
                .find(|(k, _)| *k == "storage.value_compression")
                .map(|(_, v)| v);
            assert_eq!(shown, Some(ParamValue::String(name.into())));
        }
        let err = NodeParams::from_overrides(
            &given(&[(
                "storage.value_compression",
                ParamValue::String("gzip".into()),
            )]),
            "/r".as_ref(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("storage.value_compression") && err.contains("zstd, lz4, none"),
            "{err}"
        );
    }

    #[test]
    fn the_pin_budget_defaults_to_half_the_quota_and_may_not_exceed_it() {
        let quota = |pinned: i64| {
            NodeParams::from_overrides(
                &given(&[
                    ("retention.max_bytes", ParamValue::Integer(1000)),
                    ("retention.pinned_max_bytes", ParamValue::Integer(pinned)),
                ]),
                "/r".as_ref(),
            )
        };
        assert_eq!(
            quota(0).unwrap().engine_options().retention.pin_budget(),
            500
        );
        assert_eq!(
            quota(800).unwrap().engine_options().retention.pin_budget(),
            800
        );
        for refused in [1000, 1001] {
            let err = quota(refused).unwrap_err().to_string();
            assert!(
                err.contains("retention.pinned_max_bytes") && err.contains("no room for new data"),
                "{err}"
            );
        }
        let p = NodeParams::defaults("/r".as_ref());
        assert_eq!(p.engine_options().retention.pin_budget(), u64::MAX);
        assert!(!p.start_paused);
    }

    #[test]
    fn overrides_are_typed() {
        let p = NodeParams::from_overrides(
            &given(&[
                ("storage.path", ParamValue::String("/data/x".into())),
                ("diagnostic_updater.period", ParamValue::Integer(2)),
                ("durability.mode", ParamValue::String("sync".into())),
                ("retention.max_age_s", ParamValue::Double(60.0)),
            ]),
            "/r".as_ref(),
        )
        .unwrap();
        assert_eq!(p.storage_path, PathBuf::from("/data/x"));
        assert_eq!(p.diagnostic_period, Duration::from_secs(2));
        assert_eq!(p.engine_options().durability, Durability::Sync);
        assert_eq!(
            p.engine_options().retention.max_age,
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn empty_strings_mean_defaults() {
        let p = NodeParams::from_overrides(
            &given(&[
                ("storage.path", ParamValue::String(String::new())),
                ("topics", ParamValue::StringArray(vec![String::new()])),
            ]),
            "/r".as_ref(),
        )
        .unwrap();
        assert_eq!(p.storage_path, PathBuf::from("/r/motedb"));
        assert!(p.topics.is_empty());
    }

    #[test]
    fn qos_overrides_per_topic() {
        let p = NodeParams::from_overrides(
            &given(&[
                (
                    "qos_overrides./scan.reliability",
                    ParamValue::String("best_effort".into()),
                ),
                (
                    "qos_overrides./map.durability",
                    ParamValue::String("transient_local".into()),
                ),
            ]),
            "/r".as_ref(),
        )
        .unwrap();
        assert_eq!(p.qos_overrides["/scan"].reliable, Some(false));
        assert_eq!(p.qos_overrides["/map"].transient_local, Some(true));
        let err = NodeParams::from_overrides(
            &given(&[(
                "qos_overrides./scan.reliability",
                ParamValue::String("sometimes".into()),
            )]),
            "/r".as_ref(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("qos_overrides./scan.reliability"),
            "{err}"
        );
    }

    #[test]
    fn rclcpp_style_override_names_and_depth_are_accepted() {
        let p = NodeParams::from_overrides(
            &given(&[
                (
                    "qos_overrides./scan.subscription.reliability",
                    ParamValue::String("best_effort".into()),
                ),
                (
                    "qos_overrides./scan.subscription.depth",
                    ParamValue::Integer(200),
                ),
                ("qos_overrides./imu.depth", ParamValue::Integer(1000)),
            ]),
            "/r".as_ref(),
        )
        .unwrap();
        assert_eq!(p.qos_overrides["/scan"].reliable, Some(false));
        assert_eq!(p.qos_overrides["/scan"].depth, Some(200));
        assert_eq!(p.qos_overrides["/imu"].depth, Some(1000));
        for (name, value) in [
            (
                "qos_overrides./scan.publisher.reliability",
                ParamValue::String("reliable".into()),
            ),
            ("qos_overrides./scan.depth", ParamValue::Integer(0)),
        ] {
            let err =
                NodeParams::from_overrides(&given(&[(name, value)]), "/r".as_ref()).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let err = NodeParams::from_overrides(
            &given(&[("durability.mode", ParamValue::String("often".into()))]),
            "/r".as_ref(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("durability.mode"), "{err}");
        let err = NodeParams::from_overrides(
            &given(&[("query.max_messages", ParamValue::String("10".into()))]),
            "/r".as_ref(),
        )
        .unwrap_err();
        assert!(matches!(err, NodeError::ParamType { .. }), "{err}");
        let err = NodeParams::from_overrides(
            &given(&[("diagnostic_updater.period", ParamValue::Double(0.0))]),
            "/r".as_ref(),
        )
        .unwrap_err();
        assert!(matches!(err, NodeError::ParamValue { .. }), "{err}");
    }

    #[test]
    fn effective_lists_every_parameter_once() {
        let p = NodeParams::defaults("/r".as_ref());
        let names: Vec<_> = p.effective().into_iter().map(|(n, _)| n).collect();
        let mut dedup = names.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(names.len(), dedup.len());
        assert!(names.contains(&"storage.path"));
    }

    #[test]
    fn offload_is_off_by_default_and_takes_its_settings_with_checks() {
        let p = NodeParams::defaults("/r".as_ref());
        assert_eq!(p.offload, None);
        let p = NodeParams::from_overrides(
            &given(&[
                (
                    "offload.url",
                    ParamValue::String("s3://fleet/robot7".into()),
                ),
                (
                    "offload.endpoint",
                    ParamValue::String("http://127.0.0.1:3900".into()),
                ),
                ("offload.period_s", ParamValue::Double(2.5)),
                ("offload.max_bytes_per_s", ParamValue::Integer(1 << 20)),
            ]),
            "/r".as_ref(),
        )
        .unwrap();
        let o = p.offload.clone().unwrap();
        assert_eq!(
            (
                o.url.as_str(),
                o.endpoint.as_str(),
                o.period,
                o.max_bytes_per_s
            ),
            (
                "s3://fleet/robot7",
                "http://127.0.0.1:3900",
                Duration::from_millis(2500),
                1 << 20
            )
        );
        let eff: BTreeMap<_, _> = p.effective().into_iter().collect();
        assert_eq!(eff["offload.period_s"], ParamValue::Double(2.5));
        assert_eq!(
            eff["offload.url"],
            ParamValue::String("s3://fleet/robot7".into())
        );
        // The default period, and a credentials file that names the key.
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("env");
        std::fs::write(
            &creds,
            "export AWS_ACCESS_KEY_ID=GK1\nexport AWS_SECRET_ACCESS_KEY=s\nMOTEDB_S3_ENDPOINT=http://e\n",
        )
        .unwrap();
        let p = NodeParams::from_overrides(
            &given(&[
                ("offload.url", ParamValue::String("s3://fleet/r".into())),
                (
                    "offload.credentials_file",
                    ParamValue::String(creds.display().to_string()),
                ),
            ]),
            "/r".as_ref(),
        )
        .unwrap();
        let o = p.offload.unwrap();
        assert_eq!(o.period, Duration::from_secs(60));
        let s = o
            .settings("/store".as_ref(), crate::remote::Offloaded::default())
            .unwrap();
        assert_eq!(s.config.access_key_id.as_deref(), Some("GK1"));
        assert_eq!(s.config.endpoint.as_deref(), Some("http://e"));
        assert_eq!(s.location.prefix, "r");
        for (name, value, says) in [
            (
                "offload.url",
                ParamValue::String("fleet/robot7".into()),
                "s3://",
            ),
            (
                "offload.url",
                ParamValue::String("s3://B/x".into()),
                "bucket name",
            ),
            (
                "offload.period_s",
                ParamValue::Double(0.0),
                "greater than 0",
            ),
            (
                "offload.max_bytes_per_s",
                ParamValue::Integer(-1),
                "offload.max_bytes_per_s",
            ),
            (
                "offload.url",
                ParamValue::String(String::new()),
                "retention.require_offloaded",
            ),
        ] {
            let mut g = given(&[
                ("offload.url", ParamValue::String("s3://fleet/r".into())),
                ("retention.require_offloaded", ParamValue::Bool(true)),
            ]);
            g.insert(name.to_string(), value);
            let err = NodeParams::from_overrides(&g, "/r".as_ref()).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(name) && text.contains(says), "{name}: {text}");
        }
    }
}
