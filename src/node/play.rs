//! `motedb play` (issue 13, first step): a store's messages published
//! into ROS as they were recorded (serialized CDR, rcl-level publish), in
//! log-time order with the recorded spacing scaled by the rate, each topic
//! with the reliability and durability its publishers offered.

use std::time::{Duration, Instant};

use super::rcl::{self, RclNode, SerializedPub, SubQos};
use crate::engine::{Nanos, Store, TopicInfo};
use crate::play::{Lateness, ReadAhead, Timeline};

#[derive(Clone, Debug)]
pub struct PlayOptions {
    /// Topic names; empty: every recorded topic.
    pub topics: Vec<String>,
    /// `[start, end)` in log time.
    pub start: Nanos,
    pub end: Nanos,
    pub rate: f64,
    /// Wait this long after the publishers are up, before the first message.
    pub delay: Duration,
    /// Wait (up to this long) until every topic has a subscriber.
    pub wait_for_subscribers: Option<Duration>,
    /// Payload bytes read ahead at most.
    pub read_ahead_bytes: u64,
    /// A message published later than this behind its schedule counts as
    /// late.
    pub late_after: Duration,
    /// Publisher history depth.
    pub depth: usize,
}

#[derive(Clone, Debug, Default)]
pub struct PlayReport {
    pub published: u64,
    pub late: u64,
    pub lateness_p50: Duration,
    pub lateness_p99: Duration,
    pub seconds: f64,
    /// Stopped by the caller's flag before the end.
    pub interrupted: bool,
    /// Every reliable subscriber acknowledged every message at the end.
    pub all_acked: bool,
}

/// The QoS to replay a topic with: reliable unless a recorded publisher
/// was best effort; transient local only if every one was (rosbag2's
/// adaptation, from the `offered_qos` YAML the recorder stored).
pub fn replay_qos(offered_yaml: &str, depth: usize) -> SubQos {
    // Numbers (as the recorder writes them) become rosbag2's names.
    let qos = crate::export::metadata::normalize_qos(offered_yaml);
    let values = |key: &str| -> Vec<String> {
        qos.list
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|p| p.get(key)?.as_str().map(str::to_string))
            .collect()
    };
    let reliability = values("reliability");
    let durability = values("durability");
    SubQos {
        reliable: !reliability.iter().any(|v| v == "best_effort"),
        transient_local: !durability.is_empty()
            && durability.iter().all(|v| v == "transient_local"),
        depth,
    }
}

fn select(store: &Store, names: &[String]) -> Result<Vec<TopicInfo>, String> {
    if names.is_empty() {
        return Ok(store.topics());
    }
    names
        .iter()
        .map(|n| {
            store
                .topic_by_name(n)
                .ok_or_else(|| format!("no topic {n} in the store"))
        })
        .collect()
}

/// `now + d`, or a time too far to matter when that overflows.
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// Plays `store` until the end or until `stop()` says so.
pub fn play(
    store: &Store,
    opts: &PlayOptions,
    prefixes: &[std::path::PathBuf],
    stop: &dyn Fn() -> bool,
) -> Result<PlayReport, String> {
    let topics = select(store, &opts.topics)?;
    let node = RclNode::new("motedb_player", "/").map_err(|e| e.to_string())?;
    let mut pubs = std::collections::HashMap::new();
    for t in &topics {
        let ts = rcl::load_type_support(&t.spec.type_name, prefixes)
            .map_err(|e| format!("{}: {e}", t.spec.name))?;
        let qos = replay_qos(&t.spec.offered_qos, opts.depth);
        let p = SerializedPub::new(&node, &t.spec.name, ts, &qos)
            .map_err(|e| format!("{}: {e}", t.spec.name))?;
        pubs.insert(t.id, (p, qos.reliable));
    }
    if let Some(limit) = opts.wait_for_subscribers {
        let deadline = after(limit);
        for t in &topics {
            let (p, _) = &pubs[&t.id];
            while p.subscription_count().map_err(|e| e.to_string())? == 0 {
                if stop() {
                    return Ok(PlayReport {
                        interrupted: true,
                        ..PlayReport::default()
                    });
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "no subscriber on {} within {} s",
                        t.spec.name,
                        limit.as_secs_f64()
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    if !sleep_unless_stopped(after(opts.delay), stop) {
        return Ok(PlayReport {
            interrupted: true,
            ..PlayReport::default()
        });
    }
    let ids: Vec<_> = topics.iter().map(|t| t.id).collect();
    let records = store
        .iter(&ids, opts.start, opts.end, false)
        .map_err(|e| e.to_string())?;
    let ahead = ReadAhead::start(records, opts.read_ahead_bytes).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut timeline: Option<Timeline> = None;
    let mut lateness = Lateness::default();
    let mut report = PlayReport::default();
    while let Some(next) = ahead.next() {
        let record = next?;
        let tl = match &timeline {
            Some(tl) => *tl,
            None => *timeline.insert(Timeline::new(record.log_time, Instant::now(), opts.rate)?),
        };
        let due = tl.due(record.log_time).unwrap_or_else(Instant::now);
        if !sleep_unless_stopped(due, stop) {
            report.interrupted = true;
            break;
        }
        if let Some((p, _)) = pubs.get(&record.topic) {
            p.publish(&record.payload).map_err(|e| e.to_string())?;
            lateness.note(due, Instant::now(), opts.late_after);
            report.published += 1;
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.late = lateness.late;
    report.lateness_p50 = lateness.quantile(0.5).unwrap_or_default();
    report.lateness_p99 = lateness.quantile(0.99).unwrap_or_default();
    // Reliable subscribers acknowledge what was sent: up to 10 s in all,
    // in short waits a stop ends (none after an interrupt).
    report.all_acked = !report.interrupted;
    let deadline = after(Duration::from_secs(10));
    let reliable = pubs.values().filter(|(_, r)| *r).map(|(p, _)| p);
    for p in reliable {
        if !report.all_acked {
            break;
        }
        while !p
            .wait_for_all_acked(Duration::from_millis(50))
            .map_err(|e| e.to_string())?
        {
            if stop() || Instant::now() >= deadline {
                report.all_acked = false;
                break;
            }
        }
    }
    Ok(report)
}

/// Sleeps until `until`; false when `stop` was set first.
fn sleep_unless_stopped(until: Instant, stop: &dyn Fn() -> bool) -> bool {
    loop {
        if stop() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(20)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_qos_follows_what_the_publishers_offered() {
        let profile = |r: u8, d: u8| {
            format!("- history: 1\n  depth: 10\n  reliability: {r}\n  durability: {d}\n")
        };
        let q = replay_qos(&profile(1, 1), 7);
        assert!(q.reliable && q.transient_local && q.depth == 7);
        let both = format!("{}{}", profile(1, 1), profile(2, 2));
        let q = replay_qos(&both, 7);
        assert!(!q.reliable && !q.transient_local);
        // Nothing recorded (an imported bag without QoS): reliable, volatile.
        let q = replay_qos("", 7);
        assert!(q.reliable && !q.transient_local);
        // rosbag2's names, in flow style too.
        let q = replay_qos("[{reliability: reliable, durability: transient_local}]", 7);
        assert!(q.reliable && q.transient_local);
        let q = replay_qos("- reliability: best_effort\n  durability: volatile\n", 7);
        assert!(!q.reliable && !q.transient_local);
    }
}
