//! rosbag2 `metadata.yaml` (format version 9) and offered-QoS text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value as Yaml;

/// The rosbag2 metadata format version written.
pub const ROSBAG2_VERSION: u32 = 9;

#[derive(Debug, Serialize, Deserialize)]
pub struct MetadataFile {
    pub rosbag2_bagfile_information: BagInfo,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BagInfo {
    pub version: u32,
    pub storage_identifier: String,
    pub duration: Nanoseconds,
    pub starting_time: NanosecondsSinceEpoch,
    pub message_count: u64,
    pub topics_with_message_count: Vec<TopicWithCount>,
    #[serde(default)]
    pub compression_format: String,
    #[serde(default)]
    pub compression_mode: String,
    #[serde(default)]
    pub relative_file_paths: Vec<String>,
    #[serde(default)]
    pub files: Vec<FileInfo>,
    #[serde(default)]
    pub custom_data: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub ros_distro: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Nanoseconds {
    pub nanoseconds: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NanosecondsSinceEpoch {
    pub nanoseconds_since_epoch: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TopicWithCount {
    pub topic_metadata: TopicMetadata,
    pub message_count: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TopicMetadata {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub serialization_format: String,
    /// v9: a YAML list; older versions: a YAML string.
    #[serde(default)]
    pub offered_qos_profiles: Yaml,
    #[serde(default)]
    pub type_description_hash: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FileInfo {
    pub path: String,
    pub starting_time: NanosecondsSinceEpoch,
    pub duration: Nanoseconds,
    pub message_count: u64,
}

/// Offered QoS profiles in both forms a bag needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Qos {
    /// For metadata.yaml v9: a list of profiles with enum names.
    pub list: Yaml,
    /// For the MCAP channel's `offered_qos_profiles` metadata.
    pub text: String,
}

/// Normalizes stored QoS text (rosbag2 v8 numeric enums or v9 names, as a
/// YAML string) to v9 names. Text that is not a YAML list is passed through
/// to the channel and left out of metadata.yaml.
pub fn normalize_qos(text: &str) -> Qos {
    let empty = Yaml::Sequence(Vec::new());
    let Ok(Yaml::Sequence(mut items)) = serde_yaml_ng::from_str::<Yaml>(text) else {
        return Qos {
            list: empty,
            text: text.to_string(),
        };
    };
    for item in &mut items {
        if let Yaml::Mapping(map) = item {
            for (key, names) in ENUM_NAMES {
                let k = Yaml::String((*key).to_string());
                if let Some(Yaml::Number(n)) = map.get(&k) {
                    let name = n
                        .as_u64()
                        .and_then(|i| names.get(usize::try_from(i).ok()?))
                        .unwrap_or(&"unknown");
                    map.insert(k, Yaml::String((*name).to_string()));
                }
            }
        }
    }
    let list = Yaml::Sequence(items);
    let text = serde_yaml_ng::to_string(&list).unwrap_or_default();
    Qos {
        list,
        text: text.trim_end().to_string(),
    }
}

/// rmw enum values by index, as rosbag2 v9 names them.
const ENUM_NAMES: &[(&str, &[&str])] = &[
    (
        "history",
        &["system_default", "keep_last", "keep_all", "unknown"],
    ),
    (
        "reliability",
        &[
            "system_default",
            "reliable",
            "best_effort",
            "unknown",
            "best_available",
        ],
    ),
    (
        "durability",
        &[
            "system_default",
            "transient_local",
            "volatile",
            "unknown",
            "best_available",
        ],
    ),
    (
        "liveliness",
        &[
            "system_default",
            "automatic",
            "manual_by_node",
            "manual_by_topic",
            "unknown",
            "best_available",
        ],
    ),
];

/// QoS from metadata.yaml (list or string form) back to stored text.
pub fn qos_text_from_yaml(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Null => String::new(),
        Yaml::Sequence(s) if s.is_empty() => String::new(),
        other => serde_yaml_ng::to_string(other)
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v8_numeric_qos_becomes_v9_names() {
        let text =
            "- history: 1\n  depth: 10\n  reliability: 2\n  durability: 2\n  liveliness: 1\n";
        let q = normalize_qos(text);
        assert!(q.text.contains("history: keep_last"));
        assert!(q.text.contains("reliability: best_effort"));
        assert!(q.text.contains("durability: volatile"));
        assert!(q.text.contains("depth: 10"));
        assert!(matches!(q.list, Yaml::Sequence(ref s) if s.len() == 1));
    }

    #[test]
    fn empty_and_garbage_qos() {
        assert_eq!(normalize_qos("").list, Yaml::Sequence(vec![]));
        assert_eq!(normalize_qos("{{").text, "{{");
    }
}
