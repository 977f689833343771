//! The rclrs adapter (the default build): every call into rclrs lives in
//! this folder. Node logic (parameters, validation, diagnostics) is in the
//! parent module; the recorder takes serialized messages through rcl itself
//! (`super::rcl`), as rclrs has no serialized subscription.

mod convert;
pub(super) mod player;

use super::diagnostics::{Composer, Pacer};
use super::error::{NodeError, Result};
use super::live::Live;
use super::param_specs::{spec_of, unknown_names, ParamSpec};
use super::params::{ros_home, NodeParams, ParamValue};
use super::rcl::overrides::parameter_overrides;
use super::rcl::recorder::NodeIdentity;
use super::recorder::ingest::Stats;
use super::services;
use super::signals;
use super::worker::{Lanes, SHUTDOWN_WAIT};
use super::{close_store, open_store};
use crate::engine::Store;
use ::rclrs::{
    Context, CreateBasicExecutor, InitOptions, Node, ParameterRange, RclrsError, SpinOptions, Timer,
};
use ros_env::diagnostic_msgs::msg::DiagnosticArray;
use ros_env::motedb_interfaces::srv::{
    ExportMcap, GetLatest, GetLatest_Request, IsPaused, IsPaused_Request, IsPaused_Response,
    ListMarks, ListMarks_Request, ListTopics, ListTopics_Request, ListTopics_Response, Mark,
    QueryNear, QueryRange, Unpin, Unpin_Request,
};
use ros_env::std_srvs::srv::{Trigger, Trigger_Request, Trigger_Response};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The client library and its version, for the log and diagnostics.
pub const CLIENT_LIBRARY: &str = "rclrs 0.8.0";

/// How often the signal watcher looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(20);

fn mw(operation: &'static str) -> impl FnOnce(RclrsError) -> NodeError {
    move |e| NodeError::Middleware {
        operation,
        detail: e.to_string(),
    }
}

/// Runs the node until SIGINT/SIGTERM; returns after closing the store.
pub fn run() -> Result<()> {
    signals::install()?;
    let args: Vec<String> = std::env::args().collect();
    let context = Context::new(args.clone(), InitOptions::default()).map_err(mw("rcl_init"))?;
    let mut executor = context.create_basic_executor();
    let node = executor
        .create_node("motedb")
        .map_err(mw("rcl_node_init"))?;
    let identity = NodeIdentity {
        name: node.name(),
        namespace: node.namespace(),
        fqn: node.fully_qualified_name(),
    };
    let given = parameter_overrides(&args, &identity.fqn).map_err(|e| NodeError::Middleware {
        operation: "parameter overrides",
        detail: e.to_string(),
    })?;
    let params = NodeParams::from_overrides(&given, &ros_home())?;
    for name in unknown_names(&given) {
        ::rclrs::log_warn!(
            node.logger(),
            "parameter {name} is not a motedb parameter and is ignored (see config/motedb.yaml)"
        );
    }
    let offloaded = crate::remote::Offloaded::default();
    let store = Arc::new(open_store(&params, &offloaded)?);
    ::rclrs::log_info!(
        node.logger(),
        "{CLIENT_LIBRARY}: recording into {}",
        params.storage_path.display()
    );

    let stats = Arc::new(Stats::default());
    let mut offload = super::start_offload(&params, &stats, &offloaded)?;
    if let Some(o) = &params.offload {
        ::rclrs::log_info!(
            node.logger(),
            "offloading to {} every {:?}",
            o.url,
            o.period
        );
    }
    let (recording, live) = Live::start(&identity, &params, &store, &stats)?;
    let declared = declare_params(&node, &live, &params)?;
    let lanes = Arc::new(Lanes::default());
    let services = serve(&node, &store, &lanes, &live)?;
    let pausing = serve_pause(&node, &stats)?;
    let marking = serve_marks(&node, &store, &lanes, &stats)?;
    let diagnostics = publish_diagnostics(&node, &store, &stats, &live)?;

    // The watcher halts the executor for as long as it spins once a stop
    // was asked: `spin` clears the halt flag when it starts, so a signal
    // that came before it (or a wake-up lost while the wait set was being
    // rebuilt) would otherwise leave the node spinning forever.
    let commands = Arc::clone(executor.commands());
    let spinning = Arc::new(AtomicBool::new(true));
    let watching = Arc::clone(&spinning);
    let failing = Arc::clone(&stats);
    let watcher = std::thread::Builder::new()
        .name("motedb-signals".into())
        .spawn(move || {
            while watching.load(Ordering::Acquire) {
                if signals::stop_requested() || failing.has_failed() {
                    commands.halt_spinning();
                }
                std::thread::sleep(STOP_POLL);
            }
        })
        .map_err(|e| NodeError::Middleware {
            operation: "spawn thread",
            detail: e.to_string(),
        })?;
    let errors = executor.spin(SpinOptions::default());
    spinning.store(false, Ordering::Release);
    signals::request_stop();
    let _joined = watcher.join();
    for e in stats.take_unlogged() {
        ::rclrs::log_error!(node.logger(), "{e}");
    }
    ::rclrs::log_info!(node.logger(), "shutting down");
    if !lanes.cancel_and_wait(SHUTDOWN_WAIT) {
        ::rclrs::log_warn!(
            node.logger(),
            "a query or export was still running at shutdown"
        );
    }
    let recorded = recording.stop();
    // No round while the store closes; the last one runs after.
    if let Some(o) = &mut offload {
        o.halt();
    }
    drop((services, pausing, marking, diagnostics, declared));
    drop(lanes);
    let logger = node.logger().clone();
    drop(node);
    // The last other holder of the store: without it `close` (memtables
    // flushed, threads stopped) could not run.
    drop(live);
    let closed = close_store(store, &params);
    match super::finish_offload(offload) {
        Some(Ok(m)) => ::rclrs::log_info!(&logger, "{m}"),
        Some(Err(m)) => ::rclrs::log_warn!(&logger, "{m}"),
        None => {}
    }
    if let Some(e) = errors.into_iter().next() {
        return Err(mw("spin")(e));
    }
    recorded.and(closed)
}

/// Declared parameters; rclrs undeclares a parameter when its handle drops.
type Declared = Vec<Box<dyn std::any::Any>>;

/// A parameter type the node uses, with its conversion to the neutral value.
trait Variant: ::rclrs::ParameterVariant + Clone + 'static {
    fn to_value(&self) -> ParamValue;
    /// The descriptor range for a lower bound, where the type has ranges.
    fn range(_min: f64) -> Self::Range {
        Self::Range::default()
    }
}

impl Variant for bool {
    fn to_value(&self) -> ParamValue {
        ParamValue::Bool(*self)
    }
}

impl Variant for i64 {
    fn to_value(&self) -> ParamValue {
        ParamValue::Integer(*self)
    }
    fn range(min: f64) -> ParameterRange<i64> {
        ParameterRange {
            lower: Some(min as i64),
            upper: None,
            step: None,
        }
    }
}

impl Variant for f64 {
    fn to_value(&self) -> ParamValue {
        ParamValue::Double(*self)
    }
    fn range(min: f64) -> ParameterRange<f64> {
        ParameterRange {
            lower: Some(min),
            upper: None,
            step: None,
        }
    }
}

impl Variant for Arc<str> {
    fn to_value(&self) -> ParamValue {
        ParamValue::String(self.to_string())
    }
}

impl Variant for Arc<[Arc<str>]> {
    fn to_value(&self) -> ParamValue {
        ParamValue::StringArray(self.iter().map(|s| s.to_string()).collect())
    }
}

/// Declares every parameter with its description, range and the value in
/// effect. Read-only ones refuse a set; live ones are checked exactly as at
/// start (a refused set changes nothing and says why) and then applied.
fn declare_params(node: &Node, live: &Arc<Live>, params: &NodeParams) -> Result<Declared> {
    let mut handles = Declared::new();
    for (name, value) in params.effective() {
        let Some(spec) = spec_of(name) else {
            continue; // use_sim_time: rclrs declares it itself
        };
        let declared = match value {
            ParamValue::Bool(v) => declare(node, live, spec, v),
            ParamValue::Integer(v) => declare(node, live, spec, v),
            ParamValue::Double(v) => declare(node, live, spec, v),
            ParamValue::String(v) => declare::<Arc<str>>(node, live, spec, v.into()),
            ParamValue::StringArray(v) => {
                let v: Arc<[Arc<str>]> = v.into_iter().map(Arc::from).collect();
                declare(node, live, spec, v)
            }
        };
        handles.push(declared.map_err(|e| NodeError::ParamValue {
            name: name.to_string(),
            reason: e.to_string(),
        })?);
    }
    Ok(handles)
}

/// One parameter (overrides were already applied by `NodeParams`, so
/// rclrs's own are ignored).
fn declare<T: Variant>(
    node: &Node,
    live: &Arc<Live>,
    spec: &'static ParamSpec,
    value: T,
) -> std::result::Result<Box<dyn std::any::Any>, ::rclrs::DeclarationError> {
    let mut builder = node
        .declare_parameter::<T>(spec.name)
        .default(value)
        .ignore_override()
        .description(spec.description);
    if let Some(min) = spec.min {
        builder = builder.range(T::range(min));
    }
    if !spec.live {
        return Ok(Box::new(builder.read_only()?));
    }
    let checker = Arc::clone(live);
    let handle = builder
        .validate(move |v: &T| checker.check(spec.name, v.to_value()).map(drop))
        .mandatory()?;
    let applier = Arc::clone(live);
    handle.on_change(move |v: &T| {
        // Checked by `validate` just before; a failure here is the store's.
        if let Err(e) = applier.apply(spec.name, v.to_value()) {
            eprintln!("motedb: parameter {}: {e}", spec.name);
        }
    });
    Ok(Box::new(handle))
}

/// Keeps the services alive.
type Services = (
    ::rclrs::Service<ListTopics>,
    ::rclrs::Service<QueryRange>,
    ::rclrs::Service<QueryNear>,
    ::rclrs::Service<GetLatest>,
    ::rclrs::Service<ExportMcap>,
);

/// The query services. Queries and exports run on `workers`, so a slow one
/// never stalls the executor; when no worker takes a request (shutting
/// down) the client gets `success: false`.
fn serve(
    node: &Node,
    store: &Arc<Store>,
    lanes: &Arc<Lanes>,
    live: &Arc<Live>,
) -> Result<Services> {
    let list_store = Arc::clone(store);
    let list = node
        .create_service::<ListTopics, _>("~/list_topics", move |_: ListTopics_Request| {
            let topics = services::list_topics(&list_store)
                .iter()
                .map(convert::topic_info)
                .collect();
            ListTopics_Response { topics }
        })
        .map_err(mw("create ~/list_topics"))?;

    let (s, w, l) = (Arc::clone(store), Arc::clone(lanes), Arc::clone(live));
    let query = node
        .create_async_service::<QueryRange, _>("~/query_range", move |req| {
            let (store, lanes) = (Arc::clone(&s), Arc::clone(&w));
            let input = convert::query_input(&req);
            let limits = l.query_limits();
            async move {
                let job = move || services::query_range(&store, &input, limits);
                lanes
                    .queries
                    .run(job)
                    .await
                    .map(convert::query_response)
                    .unwrap_or_else(|r| convert::QueryResponse {
                        success: false,
                        message: r.message("query"),
                        ..Default::default()
                    })
            }
        })
        .map_err(mw("create ~/query_range"))?;

    let (s, w, l) = (Arc::clone(store), Arc::clone(lanes), Arc::clone(live));
    let near = node
        .create_async_service::<QueryNear, _>("~/query_near", move |req| {
            let (store, lanes, live) = (Arc::clone(&s), Arc::clone(&w), Arc::clone(&l));
            let input = convert::near_input(&req);
            async move {
                let job =
                    move || services::query_near(&store, &live.places, &input, live.query_limits());
                lanes
                    .queries
                    .run(job)
                    .await
                    .map(convert::near_response)
                    .unwrap_or_else(|r| convert::NearResponse {
                        success: false,
                        message: r.message("query"),
                        ..Default::default()
                    })
            }
        })
        .map_err(mw("create ~/query_near"))?;

    let (s, w) = (Arc::clone(store), Arc::clone(lanes));
    let latest = node
        .create_async_service::<GetLatest, _>("~/get_latest", move |req: GetLatest_Request| {
            let (store, lanes) = (Arc::clone(&s), Arc::clone(&w));
            let (topic, at) = (req.topic.clone(), convert::stamp(&req.at));
            async move {
                lanes
                    .latest
                    .run(move || services::get_latest(&store, &topic, at))
                    .await
                    .map(convert::latest_response)
                    .unwrap_or_else(|r| convert::LatestResponse {
                        success: false,
                        message: r.message("query"),
                        ..Default::default()
                    })
            }
        })
        .map_err(mw("create ~/get_latest"))?;

    let (s, w) = (Arc::clone(store), Arc::clone(lanes));
    let directory = live.with(|p| p.export_directory.clone());
    let export = node
        .create_async_service::<ExportMcap, _>("~/export_mcap", move |req| {
            let (store, lanes, dir) = (Arc::clone(&s), Arc::clone(&w), directory.clone());
            let input = convert::export_input(&req);
            async move {
                let cancel = Arc::clone(&lanes.cancel_exports);
                let job = move || services::export_mcap(&store, &input, &dir, &cancel);
                lanes
                    .exports
                    .run(job)
                    .await
                    .map(convert::export_response)
                    .unwrap_or_else(|r| convert::ExportResponse {
                        success: false,
                        message: r.message("export"),
                        ..Default::default()
                    })
            }
        })
        .map_err(mw("create ~/export_mcap"))?;
    Ok((list, query, near, latest, export))
}

/// `~/pause`, `~/resume` (std_srvs/Trigger) and `~/is_paused`, answered on
/// the executor: they only flip or read a flag.
fn serve_pause(
    node: &Node,
    stats: &Arc<Stats>,
) -> Result<(
    ::rclrs::Service<Trigger>,
    ::rclrs::Service<Trigger>,
    ::rclrs::Service<IsPaused>,
)> {
    let trigger = |name: &'static str, paused: bool| {
        let stats = Arc::clone(stats);
        node.create_service::<Trigger, _>(name, move |_: Trigger_Request| {
            let (success, message) = services::set_paused(&stats, paused);
            Trigger_Response { success, message }
        })
        .map_err(mw(name))
    };
    let (pause, resume) = (trigger("~/pause", true)?, trigger("~/resume", false)?);
    let stats = Arc::clone(stats);
    let is_paused = node
        .create_service::<IsPaused, _>("~/is_paused", move |_: IsPaused_Request| {
            IsPaused_Response {
                paused: stats.is_paused(),
            }
        })
        .map_err(mw("~/is_paused"))?;
    Ok((pause, resume, is_paused))
}

/// `~/mark`, `~/list_marks` and `~/unpin`. Marking and unpinning fsync the
/// manifest, so all three run on the short-job lane, off the executor.
fn serve_marks(
    node: &Node,
    store: &Arc<Store>,
    lanes: &Arc<Lanes>,
    stats: &Arc<Stats>,
) -> Result<(
    ::rclrs::Service<Mark>,
    ::rclrs::Service<ListMarks>,
    ::rclrs::Service<Unpin>,
)> {
    let (s, w, st) = (Arc::clone(store), Arc::clone(lanes), Arc::clone(stats));
    let mark = node
        .create_async_service::<Mark, _>("~/mark", move |req| {
            let (store, lanes) = (Arc::clone(&s), Arc::clone(&w));
            let (input, now) = (convert::mark_input(&req), st.log_now());
            async move {
                convert::mark_response(
                    lanes
                        .latest
                        .run(move || services::add_mark(&store, &input, now))
                        .await
                        .unwrap_or_else(|r| services::MarkOutput {
                            message: r.message("mark"),
                            ..Default::default()
                        }),
                )
            }
        })
        .map_err(mw("create ~/mark"))?;
    let (s, w) = (Arc::clone(store), Arc::clone(lanes));
    let list = node
        .create_async_service::<ListMarks, _>("~/list_marks", move |req: ListMarks_Request| {
            let (store, lanes) = (Arc::clone(&s), Arc::clone(&w));
            let (start, end) = (convert::stamp(&req.start), convert::stamp(&req.end));
            async move {
                let job = move || services::list_marks(&store, &req.tag, start, end);
                convert::list_marks_response(
                    lanes
                        .latest
                        .run(job)
                        .await
                        .unwrap_or_else(|r| Err(r.message("list_marks"))),
                )
            }
        })
        .map_err(mw("create ~/list_marks"))?;
    let (s, w) = (Arc::clone(store), Arc::clone(lanes));
    let unpin = node
        .create_async_service::<Unpin, _>("~/unpin", move |req: Unpin_Request| {
            let (store, lanes) = (Arc::clone(&s), Arc::clone(&w));
            async move {
                convert::unpin_response(
                    lanes
                        .latest
                        .run(move || services::unpin(&store, req.id))
                        .await
                        .unwrap_or_else(|r| services::MarkOutput {
                            message: r.message("unpin"),
                            ..Default::default()
                        }),
                )
            }
        })
        .map_err(mw("create ~/unpin"))?;
    Ok((mark, list, unpin))
}

/// `/diagnostics` every `diagnostic_updater.period`, which may change while
/// the node runs: the timer ticks often and publishes when a period passed.
fn publish_diagnostics(
    node: &Node,
    store: &Arc<Store>,
    stats: &Arc<Stats>,
    live: &Arc<Live>,
) -> Result<Timer> {
    let publisher = node
        .create_publisher::<DiagnosticArray>("/diagnostics")
        .map_err(mw("create /diagnostics publisher"))?;
    let clock = node.get_clock();
    let fqn = node.fully_qualified_name();
    let (store, stats, live) = (Arc::clone(store), Arc::clone(stats), Arc::clone(live));
    let mut composer =
        Composer::new(&live.with(|p| p.hardware_id.clone()), CLIENT_LIBRARY).for_node(&fqn);
    let mut pacer = Pacer::default();
    let logger = node.logger().clone();
    node.create_timer_repeating(Pacer::TICK, move || {
        for e in stats.take_unlogged() {
            ::rclrs::log_error!(&logger, "{e}");
        }
        let urgent = stats.take_urgent();
        if !(pacer.due(live.with(|p| p.diagnostic_period)) || urgent) {
            return;
        }
        let statuses = composer.compose(&store.health(), &stats.snapshot());
        let mut msg = DiagnosticArray {
            status: statuses
                .into_iter()
                .map(convert::diagnostic_status)
                .collect(),
            ..Default::default()
        };
        msg.header.stamp = clock.now().to_ros_msg().unwrap_or_default();
        let _published = publisher.publish(msg);
    })
    .map_err(mw("create diagnostics timer"))
}
