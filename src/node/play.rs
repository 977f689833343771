//! `motedb play` (issue 13): a store's messages published into ROS as
//! they were recorded (serialized CDR, rcl-level publish), in log-time
//! order with the recorded spacing scaled by the rate, each topic with the
//! reliability and durability its publishers offered (or an override),
//! under a remapped name if asked, with `/clock` if asked, looping if
//! asked, and controlled through `crate::play::Control` (the services and
//! the terminal) while it plays.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::rcl::{self, RclNode, SerializedPub, SubQos};
use crate::engine::{Nanos, Record, Store, TopicId, TopicInfo};
use crate::play::{Control, Lateness, QosOverride, ReadAhead, Timeline};

#[derive(Clone, Debug)]
pub struct PlayOptions {
    /// Topic names; empty: every recorded topic.
    pub topics: Vec<String>,
    /// `[start, end)` in log time.
    pub start: Nanos,
    pub end: Nanos,
    /// Wait this long after the publishers are up, before the first message.
    pub delay: Duration,
    /// Wait (up to this long) until every topic has a subscriber.
    pub wait_for_subscribers: Option<Duration>,
    /// Payload bytes read ahead at most.
    pub read_ahead_bytes: u64,
    /// A message published later than this behind its schedule counts as
    /// late.
    pub late_after: Duration,
    /// Publisher history depth, unless an override sets one.
    pub depth: usize,
    /// Start again from the first message at the end.
    pub repeat: bool,
    /// Publish `/clock` (rosgraph_msgs/Clock, the position in log time)
    /// this many times a second.
    pub clock_hz: Option<f64>,
    /// Recorded name to published name.
    pub remaps: BTreeMap<String, String>,
    /// Per recorded topic name.
    pub qos_overrides: BTreeMap<String, QosOverride>,
    /// The player's rcl node.
    pub node_name: String,
    /// After the end, keep reading the store at this path (a node records
    /// into it) and play what is added, until stopped.
    pub follow: Option<std::path::PathBuf>,
}

#[derive(Clone, Debug, Default)]
pub struct PlayReport {
    pub published: u64,
    /// Passes begun (more than one with `repeat`).
    pub passes: u64,
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

/// `replay_qos` with an override's policies on top.
fn topic_qos(t: &TopicInfo, opts: &PlayOptions) -> SubQos {
    let mut q = replay_qos(&t.spec.offered_qos, opts.depth);
    if let Some(o) = opts.qos_overrides.get(&t.spec.name) {
        q.reliable = o.reliable.unwrap_or(q.reliable);
        q.transient_local = o.transient_local.unwrap_or(q.transient_local);
        q.depth = o.depth.unwrap_or(q.depth);
    }
    q
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

/// The published name of every played topic; two topics of different
/// types may not end up on one name.
pub fn published_names(
    topics: &[TopicInfo],
    remaps: &BTreeMap<String, String>,
) -> Result<HashMap<TopicId, String>, String> {
    let mut types: HashMap<&str, (&str, &str)> = HashMap::new();
    let mut out = HashMap::new();
    for t in topics {
        let name = remaps.get(&t.spec.name).unwrap_or(&t.spec.name);
        let ty = t.spec.type_name.as_str();
        if let Some((other, other_ty)) = types.insert(name, (&t.spec.name, ty)) {
            if other_ty != ty {
                return Err(format!(
                    "{} ({ty}) and {other} ({other_ty}) would both be published on {name}",
                    t.spec.name
                ));
            }
        }
        out.insert(t.id, name.clone());
    }
    Ok(out)
}

/// `now + d`, or a time too far to matter when that overflows.
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// The longest the player waits without looking at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(20);

/// rosgraph_msgs/msg/Clock in CDR (little endian): the encapsulation
/// header, then builtin_interfaces/Time { int32 sec; uint32 nanosec }.
pub fn clock_cdr(log: Nanos) -> Vec<u8> {
    let sec = i32::try_from(log / 1_000_000_000).unwrap_or(i32::MAX);
    let nanosec = (log % 1_000_000_000) as u32;
    let mut out = vec![0, 1, 0, 0];
    out.extend_from_slice(&sec.to_le_bytes());
    out.extend_from_slice(&nanosec.to_le_bytes());
    out
}

/// `/clock` at a fixed rate, from the timeline's position.
struct ClockPub<'n> {
    publisher: SerializedPub<'n>,
    period: Duration,
    next: Instant,
}

impl ClockPub<'_> {
    /// Publishes when due, the position but never past `cap` (the next
    /// message not yet published, or the last one published while
    /// waiting for more), so `/clock` never runs ahead of a message and
    /// then back; the next time it is due.
    fn tick(&mut self, tl: &Timeline, now: Instant, cap: Nanos) -> Result<Instant, String> {
        if now >= self.next {
            self.publisher
                .publish(&clock_cdr(tl.position(now).min(cap)))
                .map_err(|e| e.to_string())?;
            self.next += self.period;
            if self.next <= now {
                self.next = now + self.period;
            }
        }
        Ok(self.next)
    }
}

/// Brings the timeline to what the controls want (pause, rate).
fn follow(tl: &mut Timeline, w: &crate::play::Wanted, now: Instant) -> Result<(), String> {
    if w.paused {
        tl.pause(now);
    } else {
        tl.resume(now);
    }
    if w.rate != tl.rate() {
        tl.set_rate(w.rate, now)?;
    }
    Ok(())
}

/// Publishers, /clock, the timeline and the counts of one replay.
struct Player<'n, 'o> {
    node: &'n RclNode,
    opts: &'o PlayOptions,
    prefixes: &'o [std::path::PathBuf],
    pubs: HashMap<TopicId, (SerializedPub<'n>, bool)>,
    clock: Option<ClockPub<'n>>,
    timeline: Option<Timeline>,
    lateness: Lateness,
    report: PlayReport,
    /// Per topic, the highest sequence played: a refreshed snapshot plays
    /// only what is above it.
    played: HashMap<TopicId, u64>,
    /// Log time of the last message played, which `/clock` holds while
    /// `--follow` waits for more.
    last_log: Option<Nanos>,
}

/// Whether `r` is new to a player that has played up to `played`: above
/// its topic's highest sequence played (sequences are per topic, in the
/// order the recorder stored the messages, and the same in every
/// snapshot), so a message stored after another topic's newer one is
/// still played, and none twice.
fn unplayed(played: &HashMap<TopicId, u64>, r: &Record) -> bool {
    played.get(&r.topic).is_none_or(|seq| r.sequence > *seq)
}

/// How far a followed topic was read: its newest log time and its message
/// count in the last snapshot read.
type ReadTo = HashMap<TopicId, (Nanos, u64)>;

/// The topics of a refreshed snapshot with something new, each with the log
/// time to read it from: where it was read to before (messages of one
/// topic are stored in log-time order, so nothing new of it is older), or
/// its first message for a topic not read yet. A topic counts as having
/// something new when its newest log time grew or, at the same newest
/// time, its count did. Each topic is read from its own time, so a sparse
/// topic does not make a busy one be read again.
fn follow_reads(read_to: &ReadTo, topics: &[TopicInfo]) -> Vec<(TopicId, Nanos)> {
    topics
        .iter()
        .filter_map(|t| match (read_to.get(&t.id), t.last_time) {
            (Some((at, n)), Some(last)) if last > *at || (last == *at && t.message_count > *n) => {
                Some((t.id, *at))
            }
            (None, Some(_)) => t.first_time.map(|f| (t.id, f)),
            _ => None,
        })
        .collect()
}

/// Notes how far every topic was read.
fn note_read(read_to: &mut ReadTo, topics: &[TopicInfo]) {
    for t in topics {
        if let Some(last) = t.last_time {
            read_to.insert(t.id, (last, t.message_count));
        }
    }
}

/// How a pass over the records ended.
enum PassEnd {
    /// Every record was played; whether there was any.
    Done(bool),
    Interrupted,
}

impl<'n> Player<'n, '_> {
    /// A publisher for every selected topic of `store` that has none yet.
    fn add_publishers(&mut self, store: &Store) -> Result<(), String> {
        let topics = select(store, &self.opts.topics)?;
        let names = published_names(&topics, &self.opts.remaps)?;
        for t in &topics {
            if self.pubs.contains_key(&t.id) {
                continue;
            }
            let ts = rcl::load_type_support(&t.spec.type_name, self.prefixes)
                .map_err(|e| format!("{}: {e}", t.spec.name))?;
            let qos = topic_qos(t, self.opts);
            let p = SerializedPub::new(self.node, &names[&t.id], ts, &qos)
                .map_err(|e| format!("{}: {e}", t.spec.name))?;
            self.pubs.insert(t.id, (p, qos.reliable));
        }
        Ok(())
    }

    /// Plays `records` in order. `catch_up`: the records continue a
    /// followed recording, so the ones already played are skipped and a
    /// first record that is already due is played now rather than in a
    /// rush to catch up.
    fn pass(
        &mut self,
        records: Box<dyn Iterator<Item = crate::engine::Result<Record>> + Send>,
        control: &Control,
        stop: &dyn Fn() -> bool,
        catch_up: bool,
        catch_up_gap: Nanos,
    ) -> Result<PassEnd, String> {
        let ahead =
            ReadAhead::start(records, self.opts.read_ahead_bytes).map_err(|e| e.to_string())?;
        let mut any = false;
        let mut first = true;
        while let Some(next) = ahead.next() {
            let record = next?;
            if catch_up && !unplayed(&self.played, &record) {
                continue;
            }
            any = true;
            let now = Instant::now();
            let tl = match &mut self.timeline {
                Some(tl) => {
                    // Followed data already due: after a long gap (the
                    // recording paused) the timeline moves to it; after
                    // a poll's wait it goes out at once, so the lag
                    // behind the recording does not grow poll by poll.
                    let behind = tl.position(now).saturating_sub(record.log_time);
                    if catch_up && first && behind > catch_up_gap {
                        tl.seek(record.log_time, now);
                    }
                    tl
                }
                None => {
                    // Paused from the start: held exactly at the first message.
                    let wanted = control.wanted();
                    let mut tl = Timeline::new(record.log_time, now, wanted.rate)?;
                    if wanted.paused {
                        tl.pause(now);
                    }
                    self.timeline.insert(tl)
                }
            };
            first = false;
            let Some(turn) = wait_for_turn(&record, tl, control, &mut self.clock, stop)? else {
                return Ok(PassEnd::Interrupted);
            };
            if let Some((p, _)) = self.pubs.get(&record.topic) {
                p.publish(&record.payload).map_err(|e| e.to_string())?;
                let now = Instant::now();
                match turn {
                    Turn::Due(due) => {
                        self.lateness.note(due, now, self.opts.late_after);
                    }
                    // Published out of schedule: the timeline goes on
                    // from this message.
                    Turn::Next => tl.seek(record.log_time, now),
                }
                control.published(record.log_time, turn == Turn::Next);
                self.report.published += 1;
            }
            let high = self.played.entry(record.topic).or_insert(record.sequence);
            *high = (*high).max(record.sequence);
            self.last_log = Some(record.log_time);
        }
        Ok(PassEnd::Done(any))
    }

    /// Waits `d` (or until stopped), keeping `/clock` going; false when
    /// stopped.
    fn idle(
        &mut self,
        d: Duration,
        control: &Control,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool, String> {
        let until = after(d);
        loop {
            if stop() {
                return Ok(false);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(true);
            }
            let mut wake = until.min(now + STOP_POLL);
            let wanted = control.wanted();
            if let Some(tl) = self.timeline.as_mut() {
                follow(tl, &wanted, now)?;
                if let (Some(c), Some(last)) = (self.clock.as_mut(), self.last_log) {
                    wake = wake.min(c.tick(tl, now, last)?);
                }
            }
            control.wait(wake, wanted.generation);
        }
    }

    /// `--follow`: after the end, plays what is recorded into the store at
    /// `path` (`first`, the snapshot played so far, tells how far each
    /// topic was read) until stopped (false) or, with an end, until the
    /// recording passes it (true).
    fn follow_store(
        &mut self,
        path: &std::path::Path,
        first: &Store,
        control: &Control,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool, String> {
        let opts = self.opts;
        let mut read_to = ReadTo::new();
        note_read(&mut read_to, &select(first, &opts.topics)?);
        // A fresh snapshot at most every FOLLOW_POLL, and never more than
        // a fifth of the time (reopening replays the writer's WAL).
        let mut wait = FOLLOW_POLL;
        let mut failures = 0;
        // The recording passed --end: one more look with nothing new, so
        // a message of another topic stored late still gets played.
        let mut passed_end = false;
        loop {
            if !self.idle(wait, control, stop)? {
                return Ok(false);
            }
            let opened = Instant::now();
            // The writer renaming or deleting files under a reopen or a
            // read: try again at the next look, but not for good.
            let mut retry = |e: crate::engine::Error| {
                failures += 1;
                if failures > FOLLOW_FAILURES {
                    Err(format!("following {}: {e}", path.display()))
                } else {
                    Ok(())
                }
            };
            let snapshot = match Store::open_read_only(path) {
                Ok(s) => s,
                Err(e) => {
                    retry(e)?;
                    continue;
                }
            };
            wait = FOLLOW_POLL.max(opened.elapsed() * 4);
            self.add_publishers(&snapshot)?;
            let topics = select(&snapshot, &opts.topics)?;
            let reads = follow_reads(&read_to, &topics);
            let mut streams = Vec::new();
            for (id, from) in &reads {
                match snapshot.iter(&[*id], (*from).max(opts.start), opts.end, false) {
                    Ok(it) => streams.push(it),
                    Err(e) => {
                        retry(e)?;
                        break;
                    }
                }
            }
            if streams.len() < reads.len() {
                continue;
            }
            failures = 0;
            let mut played_any = false;
            if !reads.is_empty() {
                let records = Box::new(crate::play::merge_by_log_time(streams));
                // Behind by more than four polls of log time: the
                // recording paused; the timeline moves to the new data.
                let gap = (wait * 4).as_nanos() as f64 * control.wanted().rate;
                match self.pass(records, control, stop, true, gap as u64)? {
                    PassEnd::Interrupted => return Ok(false),
                    PassEnd::Done(any) => played_any = any,
                }
                note_read(&mut read_to, &topics);
            }
            // The recording passed --end: once a later look plays nothing
            // more, nothing more is coming.
            let newest = topics.iter().filter_map(|t| t.last_time).max();
            if newest.is_some_and(|t| t >= opts.end) {
                if passed_end && !played_any {
                    return Ok(true);
                }
                passed_end = true;
            }
        }
    }
}

/// The shortest wait between two looks at a followed store.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// Failed reopens of a followed store in a row before the player gives up.
const FOLLOW_FAILURES: u32 = 20;

/// Plays `store` until the end (every pass of it with `repeat`; what is
/// recorded into it meanwhile with `follow`) or until `stop()` says so, as
/// `control` asks.
pub fn play(
    store: &Store,
    opts: &PlayOptions,
    prefixes: &[std::path::PathBuf],
    control: &Control,
    stop: &dyn Fn() -> bool,
) -> Result<PlayReport, String> {
    let node = RclNode::new(&opts.node_name, "/").map_err(|e| e.to_string())?;
    let clock = match opts.clock_hz {
        Some(hz) => {
            let ts = rcl::load_type_support("rosgraph_msgs/msg/Clock", prefixes)?;
            // rclcpp's ClockQoS: keep last 1, best effort.
            let qos = SubQos {
                reliable: false,
                transient_local: false,
                depth: 1,
            };
            let publisher = SerializedPub::new(&node, "/clock", ts, &qos)
                .map_err(|e| format!("/clock: {e}"))?;
            Some(ClockPub {
                publisher,
                period: Duration::from_secs_f64(1.0 / hz),
                next: Instant::now(),
            })
        }
        None => None,
    };
    let mut player = Player {
        node: &node,
        opts,
        prefixes,
        pubs: HashMap::new(),
        clock,
        timeline: None,
        lateness: Lateness::default(),
        report: PlayReport::default(),
        played: HashMap::new(),
        last_log: None,
    };
    player.add_publishers(store)?;
    let interrupted = || PlayReport {
        interrupted: true,
        ..PlayReport::default()
    };
    if let Some(limit) = opts.wait_for_subscribers {
        let deadline = after(limit);
        let names = published_names(&select(store, &opts.topics)?, &opts.remaps)?;
        for (id, (p, _)) in &player.pubs {
            while p.subscription_count().map_err(|e| e.to_string())? == 0 {
                if stop() {
                    return Ok(interrupted());
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "no subscriber on {} within {} s",
                        names[id],
                        limit.as_secs_f64()
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    if !player.idle(opts.delay, control, stop)? {
        return Ok(interrupted());
    }
    let ids = |store: &Store| -> Result<Vec<TopicId>, String> {
        Ok(select(store, &opts.topics)?.iter().map(|t| t.id).collect())
    };
    let started = Instant::now();
    loop {
        let records = store
            .iter(&ids(store)?, opts.start, opts.end, false)
            .map_err(|e| e.to_string())?;
        player.report.passes += 1;
        match player.pass(records, control, stop, false, 0)? {
            PassEnd::Interrupted => {
                player.report.interrupted = true;
                break;
            }
            // An empty selection plays nothing, however often it loops.
            PassEnd::Done(any) if opts.repeat && any => player.timeline = None,
            PassEnd::Done(_) => break,
        }
    }
    if let (Some(path), false) = (&opts.follow, player.report.interrupted) {
        player.report.interrupted = !player.follow_store(path, store, control, stop)?;
    }
    control.finish();
    let mut report = std::mem::take(&mut player.report);
    report.seconds = started.elapsed().as_secs_f64();
    report.late = player.lateness.late;
    report.lateness_p50 = player.lateness.quantile(0.5).unwrap_or_default();
    report.lateness_p99 = player.lateness.quantile(0.99).unwrap_or_default();
    // Reliable subscribers acknowledge what was sent: up to 10 s in all,
    // in short waits a stop ends (none after an interrupt).
    report.all_acked = !report.interrupted;
    let deadline = after(Duration::from_secs(10));
    let reliable = player.pubs.values().filter(|(_, r)| *r).map(|(p, _)| p);
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

/// Why a message goes out now.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Turn {
    /// Its time came (it was due then).
    Due(Instant),
    /// A `play_next` request, while paused.
    Next,
}

/// Waits until `record` is due, following the controls and publishing
/// `/clock` meanwhile; None when `stop` was set first.
fn wait_for_turn(
    record: &Record,
    tl: &mut Timeline,
    control: &Control,
    clock: &mut Option<ClockPub<'_>>,
    stop: &dyn Fn() -> bool,
) -> Result<Option<Turn>, String> {
    loop {
        if stop() {
            return Ok(None);
        }
        let wanted = control.wanted();
        let now = Instant::now();
        follow(tl, &wanted, now)?;
        let mut wake = now + STOP_POLL;
        if let Some(c) = clock.as_mut() {
            wake = wake.min(c.tick(tl, now, record.log_time)?);
        }
        match tl.due(record.log_time) {
            None if wanted.next => return Ok(Some(Turn::Next)),
            None => {}
            Some(due) if due <= now => return Ok(Some(Turn::Due(due))),
            Some(due) => wake = wake.min(due),
        }
        control.wait(wake, wanted.generation);
    }
}

/// The player's control services (`~/pause`, `~/resume`,
/// `~/toggle_paused`, `~/play_next`, `~/set_rate`, `~/is_paused`); they
/// stop when this is dropped.
pub struct ControlServices(Option<Box<dyn FnOnce() + Send>>);

impl Drop for ControlServices {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            stop();
        }
    }
}

/// Starts the control services on a node named `node_name`, with the
/// default build's client library (rclrs). The r2r build has none.
pub fn serve_control(
    node_name: &str,
    control: &std::sync::Arc<Control>,
) -> Result<ControlServices, String> {
    #[cfg(feature = "ros")]
    return super::rclrs::player::serve(node_name, control).map(|s| ControlServices(Some(s)));
    #[cfg(not(feature = "ros"))]
    {
        let _unused = (node_name, control);
        Ok(ControlServices(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: TopicId, sequence: u64, log_time: Nanos) -> Record {
        Record {
            topic,
            log_time,
            publish_time: 0,
            sequence,
            payload: Vec::new(),
        }
    }

    fn topic(id: TopicId, first: Nanos, last: Nanos, count: u64) -> TopicInfo {
        TopicInfo {
            id,
            spec: crate::engine::TopicSpec::default(),
            message_count: count,
            size_bytes: 0,
            stored_bytes: 0,
            lz4_payloads: 0,
            zstd_payloads: 0,
            value_codec: None,
            first_time: Some(first),
            last_time: Some(last),
            dropped_count: 0,
            gap_count: 0,
        }
    }

    #[test]
    fn a_followed_message_stored_after_a_newer_one_of_another_topic_is_played_once() {
        // Played: topic 1 up to seq 4 (at t=10), topic 2 up to seq 7 (t=8).
        let played = HashMap::from([(1, 4), (2, 7)]);
        // Topic 2's t=9 was stored after topic 1's t=10: still new.
        assert!(unplayed(&played, &record(2, 8, 9)));
        assert!(!unplayed(&played, &record(2, 7, 8)), "played already");
        assert!(!unplayed(&played, &record(1, 4, 10)), "played already");
        assert!(
            unplayed(&played, &record(3, 0, 1)),
            "a topic not played yet"
        );
        // Read before up to t=10 (topic 1) and t=8 (topic 2). Topic 2 has
        // more: it is read from its t=8; topic 1 has nothing newer and is
        // not read at all.
        let mut read_to = ReadTo::new();
        note_read(&mut read_to, &[topic(1, 0, 10, 5), topic(2, 0, 8, 8)]);
        let topics = [topic(1, 0, 10, 5), topic(2, 0, 9, 9)];
        assert_eq!(follow_reads(&read_to, &topics), vec![(2, 8)]);
        // A topic that appeared: from its first message.
        let topics = [topic(1, 0, 10, 5), topic(2, 0, 8, 8), topic(3, 5, 12, 1)];
        assert_eq!(follow_reads(&read_to, &topics), vec![(3, 5)]);
        // Nothing new anywhere.
        let topics = [topic(1, 0, 10, 5), topic(2, 0, 8, 8)];
        assert!(follow_reads(&read_to, &topics).is_empty());
        // A new message at the same newest time: the count tells.
        let topics = [topic(1, 0, 10, 6), topic(2, 0, 8, 8)];
        assert_eq!(follow_reads(&read_to, &topics), vec![(1, 10)]);
        // Once read, a topic is read from its newest time, not from its
        // first, even if none of it was played (all before --start).
        note_read(&mut read_to, &[topic(3, 5, 12, 1)]);
        let topics = [topic(1, 0, 10, 5), topic(2, 0, 8, 8), topic(3, 5, 13, 2)];
        assert_eq!(follow_reads(&read_to, &topics), vec![(3, 12)]);
    }

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
