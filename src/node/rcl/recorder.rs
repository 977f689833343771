//! The recording thread: discovers topics, subscribes with adapted QoS,
//! takes serialized messages with their message info and hands them to
//! the writer queue. Owns its own rcl context so that it never waits on
//! the client library's executor (and the executor never waits on it);
//! the same for every client library build.

use super::ffi::{
    rmw_qos_durability_policy_e as Dur, rmw_qos_profile_t, rmw_qos_reliability_policy_e as Rel,
};
use super::{self as rcl, RclError, RclNode, SerializedSub, SubQos, TakeInfo, WaitSet};
use crate::engine::{Store, TopicId, TopicSpec};
use crate::node::error::{NodeError, Result};
use crate::node::params::NodeParams;
use crate::node::recorder::clock::decode_clock;
use crate::node::recorder::ingest::Writer;
use crate::node::recorder::ingest::{now_nanos, Batch, GapTracker, Incoming, Queue, Stats};
use crate::node::recorder::qos::{self, Offered, Override};
use crate::node::recorder::select::TopicFilter;
use crate::places::live::Places;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Config {
    /// Name and namespace of the recorder's own rcl node.
    pub node_name: String,
    pub namespace: String,
    /// What to record; the node may replace it while recording.
    pub selection: SharedSelection,
    pub prefixes: Vec<PathBuf>,
    pub qos_overrides: BTreeMap<String, Override>,
    /// Stamp log_time from /clock instead of the system clock.
    pub use_sim_time: bool,
    /// History depth of each recorder subscription.
    pub depth: usize,
    /// The place index: pose topics are registered with it.
    pub places: Arc<Places>,
}

/// Which topics to record and how often to look for new ones.
pub struct Selection {
    pub filter: TopicFilter,
    pub discovery_period: Duration,
}

impl Selection {
    /// From the parameters; a bad regex is an error.
    pub fn from_params(params: &NodeParams, own_node: &str) -> Result<Selection> {
        Ok(Selection {
            filter: TopicFilter::new(
                &params.topics,
                &params.include_regex,
                &params.exclude_regex,
                own_node,
                params.include_hidden_topics,
            )?
            .always(&params.places_mark_topic, own_node),
            discovery_period: params.discovery_period,
        })
    }
}

/// Read by the recorder at every discovery pass (it takes its own `Arc`, so
/// a change never waits on a pass in progress).
pub type SharedSelection = Arc<parking_lot::Mutex<Arc<Selection>>>;

/// The latest time seen on /clock; None until the first one.
struct SimClock<'n> {
    sub: SerializedSub<'n>,
    now: Option<u64>,
}

impl<'n> SimClock<'n> {
    fn new(node: &'n RclNode, prefixes: &[PathBuf]) -> Result<SimClock<'n>, rcl::RclError> {
        let ts = rcl::load_type_support("rosgraph_msgs/msg/Clock", prefixes).map_err(|detail| {
            rcl::RclError {
                call: "load_type_support",
                code: -1,
                detail,
            }
        })?;
        // Best effort matches both reliable and best-effort /clock publishers.
        let qos = SubQos {
            reliable: false,
            transient_local: false,
            depth: 10,
        };
        let sub = SerializedSub::new(node, "/clock", ts, &qos)?;
        Ok(SimClock { sub, now: None })
    }

    /// Takes every waiting /clock message and follows it, as a ROS clock
    /// with use_sim_time does: a clock that goes back (a simulator reset,
    /// looped playback) is followed too, and counted.
    fn poll(&mut self, stats: &Stats) {
        while let Ok(Some((bytes, _))) = self.sub.take() {
            if let Some(t) = decode_clock(&bytes) {
                if let Some(back) = self
                    .now
                    .and_then(|prev| prev.checked_sub(t))
                    .filter(|b| *b > 0)
                {
                    stats.clock_jumped_back(back);
                }
                self.now = Some(t);
                stats.set_sim_now(t);
            }
        }
    }
}

const WAIT: Duration = Duration::from_millis(50);

/// A publisher not heard from for this long is forgotten by gap counting
/// (it left, or it comes back with a new history).
const PUBLISHER_IDLE: Duration = Duration::from_secs(600);

struct Recorded<'n> {
    topic: TopicId,
    name: String,
    sub: SerializedSub<'n>,
    ts: rcl::TypeSupport,
    /// The subscription's QoS, re-chosen when the publishers change.
    chosen: qos::Chosen,
    /// Publishers whose QoS the subscription cannot match were reported.
    incompatible_reported: bool,
}

/// Restarts of a recorder thread that failed (rcl init, type support,
/// panic) before the node gives up, and the wait before each.
const RESTART_BACKOFF: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// A recorder run at least this long resets the restart budget.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Runs the recorder until `stop` is set. When it fails it is reported at
/// once (`Stats::recorder_down`: /diagnostics ERROR with the reason, and
/// the log) and restarted after a backoff; after the last restart fails,
/// `Stats::recorder_failed` makes the node stop and exit non-zero.
fn supervise(
    cfg: &Config,
    store: &Store,
    stats: &Stats,
    queue: &Queue,
    stop: &AtomicBool,
) -> Result<(), rcl::RclError> {
    let mut backoff = RESTART_BACKOFF.iter();
    loop {
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(cfg, store, stats, queue, stop)
        }));
        // A run that lasted earns a fresh budget: the node stops only
        // when the recorder keeps failing, not after three failures spread
        // over weeks.
        if started.elapsed() >= HEALTHY_RUN {
            backoff = RESTART_BACKOFF.iter();
        }
        if stop.load(Ordering::SeqCst) {
            return outcome.unwrap_or(Ok(()));
        }
        let failure = match outcome {
            Ok(Err(e)) => e,
            Ok(Ok(())) => rcl::RclError {
                call: "recorder",
                code: -1,
                detail: "returned while still recording".into(),
            },
            Err(panic) => rcl::RclError {
                call: "recorder",
                code: -1,
                detail: format!("panicked: {}", panic_message(panic.as_ref())),
            },
        };
        let Some(wait) = backoff.next() else {
            stats.recorder_down(format!(
                "{failure}; gave up after {} restarts",
                RESTART_BACKOFF.len()
            ));
            stats.recorder_failed();
            return Err(failure);
        };
        stats.recorder_down(format!("{failure}; restarting in {} s", wait.as_secs()));
        let until = Instant::now() + *wait;
        while Instant::now() < until {
            if stop.load(Ordering::SeqCst) {
                // An ordinary stop while waiting to restart.
                return Ok(());
            }
            std::thread::sleep(WAIT);
        }
    }
}

/// Fault injection for the node tests: `MOTEDB_TEST_RECORDER_FAULT=panic`
/// makes every start of the recorder thread panic, `panic-once` only the
/// first; `hold` subscribes but takes nothing until the node stops, so a
/// test can see the final drain keep what the middleware holds. Unset
/// (always, outside tests) it does nothing.
fn holding() -> bool {
    std::env::var("MOTEDB_TEST_RECORDER_FAULT").as_deref() == Ok("hold")
}

fn inject_fault() {
    static FIRED: AtomicBool = AtomicBool::new(false);
    match std::env::var("MOTEDB_TEST_RECORDER_FAULT").as_deref() {
        Ok("panic") => panic!("injected recorder fault"),
        Ok("panic-once") if !FIRED.swap(true, Ordering::SeqCst) => {
            panic!("injected recorder fault")
        }
        _ => {}
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Runs until `stop` is set; returns an error when the recorder cannot
/// start.
fn run(
    cfg: &Config,
    store: &Store,
    stats: &Stats,
    queue: &Queue,
    stop: &AtomicBool,
) -> Result<(), rcl::RclError> {
    inject_fault();
    let mut batch = Batch::new(queue);
    let node = RclNode::new(&cfg.node_name, &cfg.namespace)?;
    let mut subs: Vec<Recorded<'_>> = Vec::new();
    let mut failed: BTreeMap<String, Instant> = BTreeMap::new();
    let mut gaps = GapTracker::default();
    let mut wait = WaitSet::new(&node);
    let mut last_discovery: Option<Instant> = None;
    let mut last_qos_check = Instant::now();
    let mut clock = if cfg.use_sim_time {
        Some(SimClock::new(&node, &cfg.prefixes)?)
    } else {
        None
    };
    let gap_detection = rcl::publication_sequence_numbers_supported();
    stats.set_gap_detection(gap_detection);
    stats.recorder_up();
    let hold = holding();
    while !stop.load(Ordering::SeqCst) {
        // The period may change while recording: a shorter one applies at once.
        let period = cfg.selection.lock().discovery_period;
        if last_discovery.is_none_or(|t| t.elapsed() >= period) {
            discover(&node, cfg, store, stats, &mut subs, &mut failed, &mut gaps);
            last_discovery = Some(Instant::now());
            gaps.prune(PUBLISHER_IDLE);
        }
        // With use_sim_time nothing is taken before the first /clock (it
        // would be stamped 0): the middleware holds up to
        // subscription_depth messages per publisher meanwhile.
        if let Some(c) = clock.as_mut().filter(|c| c.now.is_none()) {
            stats.set_waiting_for_clock(true);
            if let Err(e) = wait.wait(&[&c.sub], WAIT) {
                stats.note_error(e.to_string());
                std::thread::sleep(WAIT);
            }
            c.poll(stats);
            continue;
        }
        stats.set_waiting_for_clock(false);
        if hold {
            std::thread::sleep(WAIT);
            continue;
        }
        if last_qos_check.elapsed() >= QOS_RECHECK {
            last_qos_check = Instant::now();
            let now = clock.as_ref().and_then(|c| c.now);
            recheck_qos(&node, cfg, stats, &mut subs, &mut |rec| {
                drain(
                    rec,
                    &mut batch,
                    stats,
                    gap_detection.then_some(&mut gaps),
                    now,
                )
            });
            batch.flush();
        }
        let ready = {
            let refs: Vec<&SerializedSub<'_>> = subs.iter().map(|r| &r.sub).collect();
            match wait.wait(&refs, WAIT) {
                Ok(r) => r,
                Err(e) => {
                    stats.note_error(e.to_string());
                    std::thread::sleep(WAIT);
                    continue;
                }
            }
        };
        let sim_now = clock.as_mut().and_then(|c| {
            c.poll(stats);
            c.now
        });
        for (rec, is_ready) in subs.iter_mut().zip(ready) {
            if is_ready {
                drain(
                    rec,
                    &mut batch,
                    stats,
                    gap_detection.then_some(&mut gaps),
                    sim_now,
                );
            }
        }
        batch.flush();
    }
    // Stopping: what the middleware already holds is taken and written
    // (the writer drains the queue after this thread ends).
    let sim_now = clock.as_ref().and_then(|c| c.now);
    if clock.is_none() || sim_now.is_some() {
        for rec in subs.iter_mut() {
            drain(
                rec,
                &mut batch,
                stats,
                gap_detection.then_some(&mut gaps),
                sim_now,
            );
        }
        batch.flush();
    }
    Ok(())
}

/// Takes every waiting message of one subscription.
fn drain(
    rec: &mut Recorded<'_>,
    batch: &mut Batch<'_>,
    stats: &Stats,
    mut gaps: Option<&mut GapTracker>,
    sim_now: Option<u64>,
) {
    loop {
        match rec.sub.take() {
            Ok(Some((payload, info))) => {
                if let Some(g) = gaps.as_deref_mut() {
                    let Some(missed) = g.admit(
                        rec.topic,
                        info.publisher_gid,
                        info.publication_sequence_number,
                    ) else {
                        continue; // taken before: not recorded twice
                    };
                    stats.add_loss(rec.topic, 0, missed);
                }
                // Paused: taken (so the history does not overflow into
                // losses and the sequence numbers above stay current) but
                // not recorded.
                if stats.is_paused() {
                    stats.skipped_while_paused();
                    continue;
                }
                batch.push(incoming(rec.topic, payload, &info, sim_now));
            }
            Ok(None) => return,
            Err(e) => {
                stats.note_error(format!("{}: {e}", rec.name));
                return;
            }
        }
    }
}

/// log_time: the sim time with use_sim_time, else when the middleware
/// received it (else now); publish_time: the publisher's source timestamp,
/// 0 when unknown.
fn incoming(topic: TopicId, payload: Vec<u8>, info: &TakeInfo, sim_now: Option<u64>) -> Incoming {
    let positive = |t: i64| u64::try_from(t).ok().filter(|t| *t > 0);
    Incoming {
        topic,
        log_time: sim_now
            .unwrap_or_else(|| positive(info.received_timestamp).unwrap_or_else(now_nanos)),
        publish_time: positive(info.source_timestamp).unwrap_or(0),
        payload,
    }
}

fn offered(p: &rmw_qos_profile_t) -> Offered {
    Offered {
        reliable: p.reliability == Rel::RMW_QOS_POLICY_RELIABILITY_RELIABLE,
        transient_local: p.durability == Dur::RMW_QOS_POLICY_DURABILITY_TRANSIENT_LOCAL,
        depth: p.depth,
        history: p.history as u32,
        liveliness: p.liveliness as u32,
        deadline: (p.deadline.sec, p.deadline.nsec),
        lifespan: (p.lifespan.sec, p.lifespan.nsec),
        liveliness_lease_duration: (
            p.liveliness_lease_duration.sec,
            p.liveliness_lease_duration.nsec,
        ),
        avoid_ros_namespace_conventions: p.avoid_ros_namespace_conventions,
    }
}

/// Subscribes to wanted topics that appeared since the last check.
fn discover<'n>(
    node: &'n RclNode,
    cfg: &Config,
    store: &Store,
    stats: &Stats,
    subs: &mut Vec<Recorded<'n>>,
    failed: &mut BTreeMap<String, Instant>,
    gaps: &mut GapTracker,
) {
    let topics = match node.topic_names_and_types() {
        Ok(t) => t,
        Err(e) => {
            stats.note_error(e.to_string());
            return;
        }
    };
    let selection = Arc::clone(&cfg.selection.lock());
    // A selection changed at run time stops topics it no longer wants; their
    // publication sequence numbers start afresh if selected again.
    subs.retain(|r| {
        let keep = selection.filter.wants(&r.name);
        if !keep {
            gaps.forget_topic(r.topic);
        }
        keep
    });
    let have: BTreeSet<String> = subs.iter().map(|r| r.name.clone()).collect();
    // A topic that could not be subscribed (two types, a type support
    // that does not load) is tried again after RETRY_FAILED: the graph
    // or the installed packages may have changed.
    failed.retain(|_, at| at.elapsed() < RETRY_FAILED);
    for (name, types) in topics {
        if failed.contains_key(&name) || !selection.filter.wants(&name) {
            continue;
        }
        if have.contains(&name) {
            // A second type showed up on a recorded topic: its messages
            // cannot be taken with the recorded type; say so.
            if types.len() > 1 {
                stats.unresolved.lock().insert(
                    name.clone(),
                    format!(
                        "{} types on one topic: {}; only the first seen is recorded",
                        types.len(),
                        types.join(", ")
                    ),
                );
                failed.insert(name, Instant::now());
            }
            continue;
        }
        match subscribe(node, cfg, store, stats, &name, &types) {
            Ok(Some(rec)) => {
                stats.unresolved.lock().remove(&name);
                subs.push(rec);
            }
            Ok(None) => {}
            Err(why) => {
                stats.unresolved.lock().insert(name.clone(), why);
                failed.insert(name, Instant::now());
            }
        }
    }
    stats.topics.store(subs.len() as u64, Ordering::Relaxed);
}

/// Ok(None): not now (no publisher yet, or only our own).
fn subscribe<'n>(
    node: &'n RclNode,
    cfg: &Config,
    store: &Store,
    stats: &Stats,
    name: &str,
    types: &[String],
) -> Result<Option<Recorded<'n>>, String> {
    let [type_name] = types else {
        return Err(format!(
            "{} types on one topic: {}",
            types.len(),
            types.join(", ")
        ));
    };
    let Some(Publishers {
        offered,
        chosen,
        hashes,
    }) = choose(node, cfg, name)?
    else {
        return Ok(None);
    };
    // Publishers that disagree were built from different definitions of
    // the same type name: no hash describes all their messages, so none is
    // kept (rosbag2 does the same) and it is said.
    if hashes.len() > 1 {
        stats.note_error(format!(
            "{name}: publishers of {type_name} announce different type hashes ({}); \
             recording without one",
            hashes.join(", ")
        ));
    }
    let type_hash = match hashes.as_slice() {
        [one] => one.clone(),
        _ => String::new(),
    };
    let ts = rcl::load_type_support(type_name, &cfg.prefixes)?;
    // Never refuse a topic for want of its text definition (neither a .msg
    // file nor a type description is installed): record it with an empty
    // one, as rosbag2 does, and say so.
    let definition = match crate::cdr::definition::resolve(type_name, &cfg.prefixes) {
        Ok(d) => d,
        Err(e) => {
            stats.no_definition.lock().insert(name.to_string());
            stats.note_error(format!(
                "{name}: recorded without a message definition of {type_name} ({e})"
            ));
            String::new()
        }
    };
    let spec = TopicSpec {
        name: name.to_string(),
        type_name: type_name.clone(),
        serialization_format: "cdr".into(),
        definition,
        offered_qos: qos::offered_yaml(&offered),
        type_hash,
    };
    let topic = store
        .register_topic(spec.clone())
        .map_err(|e| e.to_string())?;
    cfg.places.register(topic, &spec);
    if cfg.selection.lock().filter.always_recorded() == Some(name) {
        if type_name == super::super::recorder::marks::MARK_TYPE {
            stats.set_mark_topic(Some(topic));
        } else {
            stats.set_mark_topic(None);
            stats.note_error(format!(
                "places.mark_topic {name} has type {type_name}, not {}: recorded, but its messages make no marks",
                super::super::recorder::marks::MARK_TYPE
            ));
        }
    }
    let sub = SerializedSub::new(node, name, ts, &sub_qos(&chosen)).map_err(|e| e.to_string())?;
    Ok(Some(Recorded {
        topic,
        name: name.to_string(),
        sub,
        ts,
        chosen,
        incompatible_reported: false,
    }))
}

/// The publishers of `name` as the graph reports them and the
/// subscription profile adapted to them (with the topic's override); None
/// while it has no publisher.
fn choose(node: &RclNode, cfg: &Config, name: &str) -> Result<Option<Publishers>, String> {
    let endpoints = node.publishers(name).map_err(|e| e.to_string())?;
    if endpoints.is_empty() {
        return Ok(None);
    }
    let offered: Vec<Offered> = endpoints.iter().map(|e| offered(&e.qos)).collect();
    let over = cfg.qos_overrides.get(name).cloned().unwrap_or_default();
    let chosen = qos::adapt(&offered, &over, cfg.depth);
    let mut hashes: Vec<String> = Vec::new();
    for h in endpoints.into_iter().filter_map(|e| e.type_hash) {
        if !hashes.contains(&h) {
            hashes.push(h);
        }
    }
    Ok(Some(Publishers {
        offered,
        chosen,
        hashes,
    }))
}

/// What `choose` learned about a topic's publishers.
struct Publishers {
    offered: Vec<Offered>,
    chosen: qos::Chosen,
    /// The distinct type hashes they announce, in graph order (empty when
    /// the middleware reports none).
    hashes: Vec<String>,
}

fn sub_qos(c: &qos::Chosen) -> SubQos {
    SubQos {
        reliable: c.reliable,
        transient_local: c.transient_local,
        depth: c.depth,
    }
}

/// How long a topic that could not be subscribed waits before a retry.
const RETRY_FAILED: Duration = Duration::from_secs(10);

/// How often the QoS of recorded topics' publishers is looked at again.
const QOS_RECHECK: Duration = Duration::from_secs(1);

/// A publisher that appeared after a topic was subscribed may offer QoS the
/// subscription cannot match (best effort against a reliable reader,
/// volatile against transient local): its messages would never arrive.
/// The subscription is re-made with the profile chosen for all of them
/// (after taking what the old one holds) and the change is reported; a
/// mismatch an override forces is reported once.
fn recheck_qos<'n>(
    node: &'n RclNode,
    cfg: &Config,
    stats: &Stats,
    subs: &mut [Recorded<'n>],
    taken: &mut dyn FnMut(&mut Recorded<'n>),
) {
    for rec in subs.iter_mut() {
        let Ok(Some(Publishers {
            offered, chosen, ..
        })) = choose(node, cfg, &rec.name)
        else {
            continue;
        };
        let unmatched = offered
            .iter()
            .filter(|o| {
                (chosen.reliable && !o.reliable) || (chosen.transient_local && !o.transient_local)
            })
            .count();
        if unmatched > 0 && !rec.incompatible_reported {
            rec.incompatible_reported = true;
            stats.qos_incompatible(format!(
                "{}: {unmatched} publisher(s) offer QoS the subscription cannot match ({}); their messages are not recorded (see qos_overrides)",
                rec.name,
                describe(&chosen)
            ));
        }
        if chosen == rec.chosen {
            continue;
        }
        match SerializedSub::new(node, &rec.name, rec.ts, &sub_qos(&chosen)) {
            Ok(sub) => {
                taken(rec);
                rec.sub = sub;
                stats.qos_incompatible(format!(
                    "{}: publishers now offer other QoS; re-subscribed {} (was {})",
                    rec.name,
                    describe(&chosen),
                    describe(&rec.chosen)
                ));
                rec.chosen = chosen;
                rec.incompatible_reported = false;
            }
            Err(e) => stats.note_error(format!("{}: re-subscribing: {e}", rec.name)),
        }
    }
}

fn describe(c: &qos::Chosen) -> String {
    format!(
        "{}, {}, depth {}",
        if c.reliable {
            "reliable"
        } else {
            "best effort"
        },
        if c.transient_local {
            "transient local"
        } else {
            "volatile"
        },
        c.depth
    )
}

/// Who the node is, as its client library reports it.
pub struct NodeIdentity {
    pub name: String,
    pub namespace: String,
    /// Fully qualified name, e.g. `/robot1/motedb`.
    pub fqn: String,
}

/// The recorder thread and the writer thread behind it.
pub struct Recording {
    /// Replace its contents to change what is recorded.
    pub selection: SharedSelection,
    stop: Arc<AtomicBool>,
    recorder: JoinHandle<std::result::Result<(), RclError>>,
    writer: Writer,
}

impl Recording {
    /// Starts the writer thread and the recorder thread (its own rcl
    /// context and node, `<name>_recorder` in the node's namespace).
    pub fn start(
        id: &NodeIdentity,
        params: &NodeParams,
        store: &Arc<Store>,
        stats: &Arc<Stats>,
        places: &Arc<Places>,
    ) -> Result<Recording> {
        stats
            .min_free_bytes
            .store(params.min_free_bytes, std::sync::atomic::Ordering::Relaxed);
        let selection = Arc::new(parking_lot::Mutex::new(Arc::new(Selection::from_params(
            params, &id.fqn,
        )?)));
        let cfg = Config {
            node_name: format!("{}_recorder", id.name),
            namespace: id.namespace.clone(),
            selection: Arc::clone(&selection),
            prefixes: crate::cdr::definition::prefixes_from_env_value(
                &std::env::var("AMENT_PREFIX_PATH").unwrap_or_default(),
            ),
            qos_overrides: params.qos_overrides.clone(),
            use_sim_time: params.use_sim_time,
            depth: params.subscription_depth,
            places: Arc::clone(places),
        };
        let thread_err = |e: std::io::Error| NodeError::Middleware {
            operation: "spawn thread",
            detail: e.to_string(),
        };
        let (queue, writer) = Writer::start(
            Arc::clone(store),
            Arc::clone(stats),
            Arc::clone(places),
            params.queue_capacity,
            params.queue_max_bytes,
            params.storage_path.clone(),
        )
        .map_err(thread_err)?;
        let mut queue = queue;
        queue.null = std::env::var("MOTEDB_BENCH_NULL_RECORDER").as_deref() == Ok("1");
        if queue.null {
            stats.note_error(
                "benchmark mode (MOTEDB_BENCH_NULL_RECORDER=1): messages are taken and discarded"
                    .into(),
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (store, stats, flag) = (Arc::clone(store), Arc::clone(stats), Arc::clone(&stop));
        let recorder = std::thread::Builder::new()
            .name("motedb-recorder".into())
            .spawn(move || supervise(&cfg, &store, &stats, &queue, &flag))
            .map_err(thread_err)?;
        Ok(Recording {
            selection,
            stop,
            recorder,
            writer,
        })
    }

    /// Stops taking, then lets the writer drain the queue.
    pub fn stop(self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        let recorder = self.recorder.join();
        let writer_ok = self.writer.join();
        match recorder {
            Ok(Ok(())) if writer_ok => Ok(()),
            Ok(Ok(())) => Err(NodeError::Middleware {
                operation: "writer thread",
                detail: "panicked".into(),
            }),
            Ok(Err(e)) => Err(NodeError::Middleware {
                operation: "recorder",
                detail: e.to_string(),
            }),
            Err(_) => Err(NodeError::Middleware {
                operation: "recorder thread",
                detail: "panicked".into(),
            }),
        }
    }
}
