//! QoS adaptation as rosbag2 does it: reliable only if every publisher is
//! reliable, transient local only if every publisher is. Offered profiles
//! are recorded as rosbag2 YAML text.

/// One publisher's QoS as the graph reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offered {
    pub reliable: bool,
    pub transient_local: bool,
    pub depth: usize,
    /// rmw enum values: history (1 keep last, 2 keep all, 3 unknown),
    /// liveliness (1 automatic, 3 manual by topic, ...).
    pub history: u32,
    pub liveliness: u32,
    /// (sec, nsec) as rmw_time_t.
    pub deadline: (u64, u64),
    pub lifespan: (u64, u64),
    pub liveliness_lease_duration: (u64, u64),
    pub avoid_ros_namespace_conventions: bool,
}

/// The subscription profile chosen for a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chosen {
    pub reliable: bool,
    pub transient_local: bool,
    pub depth: usize,
}

/// Per-topic override from the `qos_overrides.<topic>.reliability` and
/// `.durability` parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Override {
    pub reliable: Option<bool>,
    pub transient_local: Option<bool>,
    /// History depth for this topic instead of `subscription_depth`.
    pub depth: Option<usize>,
}

/// The subscription for `offered` publishers with history `depth` (the
/// `subscription_depth` parameter; rosbag2 uses 10).
pub fn adapt(offered: &[Offered], over: &Override, depth: usize) -> Chosen {
    let all = |f: fn(&Offered) -> bool| !offered.is_empty() && offered.iter().all(f);
    Chosen {
        reliable: over.reliable.unwrap_or_else(|| all(|o| o.reliable)),
        transient_local: over
            .transient_local
            .unwrap_or_else(|| all(|o| o.transient_local)),
        depth: over.depth.unwrap_or(depth),
    }
}

/// rosbag2's offered_qos_profiles YAML: every policy the graph reports for
/// each publisher (rmw enum values, times as sec/nsec).
pub fn offered_yaml(offered: &[Offered]) -> String {
    let mut out = String::new();
    for o in offered {
        let time = |(sec, nsec): (u64, u64)| format!("\n    sec: {sec}\n    nsec: {nsec}");
        out.push_str(&format!(
            "- history: {}\n  depth: {}\n  reliability: {}\n  durability: {}\n  deadline:{}\n  lifespan:{}\n  liveliness: {}\n  liveliness_lease_duration:{}\n  avoid_ros_namespace_conventions: {}\n",
            o.history,
            o.depth,
            if o.reliable { 1 } else { 2 },
            if o.transient_local { 1 } else { 2 },
            time(o.deadline),
            time(o.lifespan),
            o.liveliness,
            time(o.liveliness_lease_duration),
            o.avoid_ros_namespace_conventions,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REL_TL: Offered = Offered {
        reliable: true,
        transient_local: true,
        depth: 10,
        history: 1,
        liveliness: 1,
        deadline: (0, 0),
        lifespan: (0, 0),
        liveliness_lease_duration: (0, 0),
        avoid_ros_namespace_conventions: false,
    };
    const BE_VOL: Offered = Offered {
        reliable: false,
        transient_local: false,
        depth: 5,
        history: 1,
        liveliness: 3,
        deadline: (0, 100_000_000),
        lifespan: (2, 0),
        liveliness_lease_duration: (1, 500),
        avoid_ros_namespace_conventions: false,
    };

    #[test]
    fn all_reliable_gives_reliable() {
        let c = adapt(&[REL_TL, REL_TL], &Override::default(), 10);
        assert!(c.reliable && c.transient_local);
    }

    #[test]
    fn one_best_effort_publisher_downgrades() {
        let c = adapt(&[REL_TL, BE_VOL], &Override::default(), 10);
        assert!(!c.reliable && !c.transient_local);
    }

    #[test]
    fn override_wins() {
        let over = Override {
            reliable: Some(true),
            ..Override::default()
        };
        assert!(adapt(&[BE_VOL], &over, 10).reliable);
    }

    #[test]
    fn yaml_lists_each_publisher() {
        let y = offered_yaml(&[REL_TL, BE_VOL]);
        assert_eq!(y.matches("- history").count(), 2);
        assert!(y.contains("reliability: 1") && y.contains("reliability: 2"));
        // The full offered profile, as the graph reports it.
        assert!(y.contains("liveliness: 3"), "{y}");
        assert!(
            y.contains("deadline:\n    sec: 0\n    nsec: 100000000"),
            "{y}"
        );
        assert!(y.contains("lifespan:\n    sec: 2\n    nsec: 0"), "{y}");
        assert!(
            y.contains("liveliness_lease_duration:\n    sec: 1\n    nsec: 500"),
            "{y}"
        );
        // And it parses back as the rosbag2 YAML the exporter reads.
        let parsed: Vec<serde_yaml_ng::Value> = serde_yaml_ng::from_str(&y).unwrap();
        assert_eq!(parsed.len(), 2);
    }
}
