//! The player's options that need checking before anything is published:
//! topic remaps (`FROM:=TO`) and QoS overrides (rosbag2's
//! `--qos-profile-overrides-path` YAML). Both refuse what they cannot
//! apply, with the reason, rather than play something else.

use std::collections::BTreeMap;

/// A fully qualified topic name: `/` then tokens of letters, digits and
/// `_` separated by single `/`, no token starting with a digit, no `/` at
/// the end (rcl's rules for a resolved name).
pub fn check_topic_name(name: &str) -> Result<(), String> {
    let Some(rest) = name.strip_prefix('/') else {
        return Err(format!(
            "{name:?} is not a full topic name (it must start with /)"
        ));
    };
    for token in rest.split('/') {
        let ok = !token.is_empty()
            && !token.starts_with(|c: char| c.is_ascii_digit())
            && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(format!(
                "{name:?} is not a valid topic name (tokens of letters, digits and _, \
                 not starting with a digit, separated by single /)"
            ));
        }
    }
    Ok(())
}

/// A node name: letters, digits and `_`, not starting with a digit.
pub fn check_node_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a node name (letters, digits and _, not starting with a digit)"
        ))
    }
}

/// `FROM:=TO` pairs, recorded name to published name (a relative name
/// is taken under /). A name remapped twice, a malformed pair or an
/// invalid name is refused.
pub fn parse_remaps(pairs: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let Some((from, to)) = pair.split_once(":=") else {
            return Err(format!("remap {pair:?} is not FROM:=TO"));
        };
        // The player's node is in the root namespace: a relative name
        // resolves under /.
        let full = |n: &str| {
            let n = if n.starts_with('/') {
                n.to_string()
            } else {
                format!("/{n}")
            };
            check_topic_name(&n).map(|()| n)
        };
        let from = full(from).map_err(|e| format!("remap {pair:?}: {e}"))?;
        let to = full(to).map_err(|e| format!("remap {pair:?}: {e}"))?;
        if out.insert(from.clone(), to).is_some() {
            return Err(format!("{from} is remapped twice"));
        }
    }
    Ok(out)
}

/// What an override sets; `None` keeps what the recording offered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QosOverride {
    pub reliable: Option<bool>,
    pub transient_local: Option<bool>,
    pub depth: Option<usize>,
}

/// Reads a QoS overrides file: a map from topic name to a profile with
/// `history` (keep_last), `depth`, `reliability`, `durability`. The other
/// keys rosbag2 writes are accepted at their defaults (infinite
/// deadline, lifespan and lease, automatic liveliness) and refused
/// otherwise, since the player would not honour them.
pub fn parse_qos_overrides(yaml: &str) -> Result<BTreeMap<String, QosOverride>, String> {
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(yaml).map_err(|e| format!("not YAML: {e}"))?;
    let mut out = BTreeMap::new();
    let map = match &doc {
        serde_yaml_ng::Value::Null => return Ok(out),
        serde_yaml_ng::Value::Mapping(m) => m,
        _ => return Err("expected a map from topic name to a QoS profile".into()),
    };
    for (topic, profile) in map {
        let topic = topic
            .as_str()
            .ok_or_else(|| format!("topic key {topic:?} is not a string"))?;
        check_topic_name(topic)?;
        let o = parse_profile(profile).map_err(|e| format!("{topic}: {e}"))?;
        out.insert(topic.to_string(), o);
    }
    Ok(out)
}

fn parse_profile(profile: &serde_yaml_ng::Value) -> Result<QosOverride, String> {
    let map = profile
        .as_mapping()
        .ok_or("expected a map of QoS policies")?;
    let mut o = QosOverride::default();
    for (key, value) in map {
        let key = key.as_str().ok_or("a policy name is not a string")?;
        let text = policy_name(key, value);
        let text = text.as_deref();
        match key {
            "history" => match text {
                Some("keep_last" | "system_default") => {}
                Some("keep_all") => {
                    return Err(
                        "history keep_all is not supported; use keep_last with a depth".into(),
                    )
                }
                _ => return Err(format!("history {value:?}: use keep_last")),
            },
            "depth" => {
                let d = value
                    .as_u64()
                    .filter(|d| (1..=1_000_000).contains(d))
                    .ok_or(format!("depth {value:?}: use a number from 1 to 1000000"))?;
                o.depth = Some(d as usize);
            }
            "reliability" => o.reliable = either(text, "reliable", "best_effort", key, value)?,
            "durability" => {
                o.transient_local = either(text, "transient_local", "volatile", key, value)?
            }
            "deadline" | "lifespan" | "liveliness_lease_duration" => {
                if !is_default_duration(value) {
                    return Err(format!(
                        "{key} {value:?} is not supported: motedb play applies only history, \
                         depth, reliability and durability"
                    ));
                }
            }
            "liveliness" => {
                if !matches!(text, Some("automatic" | "system_default")) {
                    return Err(format!(
                        "liveliness {value:?} is not supported (only automatic)"
                    ));
                }
            }
            "avoid_ros_namespace_conventions" => {
                if value.as_bool() != Some(false) {
                    return Err("avoid_ros_namespace_conventions: only false is supported".into());
                }
            }
            other => return Err(format!("unknown QoS policy {other:?}")),
        }
    }
    Ok(o)
}

/// A two-way policy: `yes` is true, `no` false, system_default keeps what
/// the recording offered.
fn either(
    text: Option<&str>,
    yes: &str,
    no: &str,
    key: &str,
    value: &serde_yaml_ng::Value,
) -> Result<Option<bool>, String> {
    match text {
        Some(t) if t == yes => Ok(Some(true)),
        Some(t) if t == no => Ok(Some(false)),
        Some("system_default") => Ok(None),
        _ => Err(format!("{key} {value:?}: use {yes} or {no}")),
    }
}

/// A policy's value as rosbag2's name, lower case: names as written,
/// numbers (rmw's enum values, as older metadata.yaml files and motedb's
/// recorder write them) translated.
fn policy_name(key: &str, value: &serde_yaml_ng::Value) -> Option<String> {
    if let Some(text) = value.as_str() {
        return Some(text.to_ascii_lowercase());
    }
    let names: &[&str] = match key {
        "history" => &["system_default", "keep_last", "keep_all"],
        "reliability" => &["system_default", "reliable", "best_effort"],
        "durability" => &["system_default", "transient_local", "volatile"],
        "liveliness" => &["system_default", "automatic", "", "manual_by_topic"],
        _ => &[],
    };
    let i = usize::try_from(value.as_u64()?).ok()?;
    names.get(i).map(|n| n.to_string())
}

/// `{sec: 0, nsec: 0}` (the default) or "infinite": rmw's
/// RMW_DURATION_INFINITE (`{sec: 9223372036, nsec: 854775807}`, what
/// recorders write) or any value from `{sec: 2147483647}` up, as older
/// rosbag2 versions wrote it.
fn is_default_duration(v: &serde_yaml_ng::Value) -> bool {
    let part = |k: &str| v.get(k).and_then(serde_yaml_ng::Value::as_u64);
    match (part("sec"), part("nsec")) {
        (Some(0), Some(0)) => true,
        (Some(s), Some(_)) => s >= i32::MAX as u64,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaps_need_from_and_to_as_full_names() {
        let m = parse_remaps(&["/a:=/b/c".into(), "x:=y".into()]).expect("remaps");
        assert_eq!(m["/a"], "/b/c");
        assert_eq!(m["/x"], "/y", "relative names resolve under /");
        for bad in [
            "/a",
            "/a:=",
            ":=/b",
            "/a:=/b//c",
            "/a:=~/b",
            "/a:=/b/",
            "/a:=/1b",
            "/a:=/b c",
            "/a:=/b:=/c",
        ] {
            assert!(parse_remaps(&[bad.into()]).is_err(), "{bad}");
        }
        let err = parse_remaps(&["/a:=/b".into(), "/a:=/c".into()]).expect_err("twice");
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn node_names_follow_rcl() {
        check_node_name("motedb_player").expect("valid");
        for bad in ["", "1x", "a/b", "a-b", "a b"] {
            assert!(check_node_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn qos_overrides_read_rosbag2s_file() {
        let yaml = "\
/scan:
  history: keep_last
  depth: 5
  reliability: best_effort
  durability: volatile
  deadline: {sec: 0, nsec: 0}
  lifespan: {sec: 2147483647, nsec: 4294967295}
  liveliness: automatic
  avoid_ros_namespace_conventions: false
/map:
  durability: transient_local
";
        let o = parse_qos_overrides(yaml).expect("overrides");
        assert_eq!(
            o["/scan"],
            QosOverride {
                reliable: Some(false),
                transient_local: Some(false),
                depth: Some(5)
            }
        );
        assert_eq!(
            o["/map"],
            QosOverride {
                transient_local: Some(true),
                ..QosOverride::default()
            }
        );
        assert!(parse_qos_overrides("").expect("empty").is_empty());
        // A profile as a Jazzy recorder writes it: numbers, and rmw's
        // infinite durations.
        let yaml = "\
/imu:
  history: 1
  depth: 10
  reliability: 2
  durability: 1
  deadline: {sec: 9223372036, nsec: 854775807}
  lifespan: {sec: 9223372036, nsec: 854775807}
  liveliness: 1
  liveliness_lease_duration: {sec: 9223372036, nsec: 854775807}
  avoid_ros_namespace_conventions: false
";
        let o = parse_qos_overrides(yaml).expect("numbers");
        assert_eq!(
            o["/imu"],
            QosOverride {
                reliable: Some(false),
                transient_local: Some(true),
                depth: Some(10)
            }
        );
    }

    #[test]
    fn qos_overrides_refuse_what_the_player_would_not_honour() {
        for (yaml, why) in [
            ("[1, 2]", "expected a map"),
            ("/a: 3", "expected a map of QoS"),
            ("a: {depth: 1}", "full topic name"),
            ("/a: {history: 2}", "keep_all"),
            ("/a: {reliability: 7}", "reliability"),
            ("/a: {history: keep_all}", "keep_all"),
            ("/a: {depth: 0}", "depth"),
            ("/a: {depth: -1}", "depth"),
            ("/a: {reliability: sometimes}", "reliability"),
            ("/a: {durability: transient}", "durability"),
            ("/a: {deadline: {sec: 1, nsec: 0}}", "deadline"),
            ("/a: {liveliness: manual_by_topic}", "liveliness"),
            ("/a: {colour: red}", "unknown QoS policy"),
            ("/a: {depth: 1", "not YAML"),
        ] {
            let err = parse_qos_overrides(yaml).expect_err(yaml);
            assert!(err.contains(why), "{yaml}: {err}");
        }
    }
}
