//! QoS adaptation as rosbag2 does it: reliable only if every publisher is
//! reliable, transient local only if every publisher is. Offered profiles
//! are recorded as rosbag2 YAML text.

/// What the recorder needs to know of one publisher's QoS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offered {
    pub reliable: bool,
    pub transient_local: bool,
    pub depth: usize,
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
        depth,
    }
}

/// rosbag2's offered_qos_profiles YAML (the fields a reader needs).
pub fn offered_yaml(offered: &[Offered]) -> String {
    let mut out = String::new();
    for o in offered {
        out.push_str(&format!(
            "- history: 1\n  depth: {}\n  reliability: {}\n  durability: {}\n  deadline:\n    sec: 0\n    nsec: 0\n  lifespan:\n    sec: 0\n    nsec: 0\n  liveliness: 1\n  liveliness_lease_duration:\n    sec: 0\n    nsec: 0\n  avoid_ros_namespace_conventions: false\n",
            o.depth,
            if o.reliable { 1 } else { 2 },
            if o.transient_local { 1 } else { 2 },
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
    };
    const BE_VOL: Offered = Offered {
        reliable: false,
        transient_local: false,
        depth: 5,
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
            transient_local: None,
        };
        assert!(adapt(&[BE_VOL], &over, 10).reliable);
    }

    #[test]
    fn yaml_lists_each_publisher() {
        let y = offered_yaml(&[REL_TL, BE_VOL]);
        assert_eq!(y.matches("- history").count(), 2);
        assert!(y.contains("reliability: 1") && y.contains("reliability: 2"));
    }
}
