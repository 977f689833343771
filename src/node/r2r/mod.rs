//! The r2r adapter: every call into r2r lives in this folder. Node logic
//! (parameters, validation, diagnostics) is in the parent module.

mod convert;
mod params;

use super::diagnostics::{Composer, Pacer};
use super::error::{NodeError, Result};
use super::live::Live;
use super::param_specs::unknown_names;
use super::params::{ros_home, NodeParams};
use super::rcl::overrides::parameter_overrides;
use super::rcl::recorder::NodeIdentity;
use super::recorder::ingest::Stats;
use super::services;
use super::signals;
use super::worker::{Lanes, Refused, Workers, SHUTDOWN_WAIT};
use super::{close_store, open_store};
use crate::engine::Store;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use futures::{Future, StreamExt};
use r2r::diagnostic_msgs::msg::DiagnosticArray;
use r2r::motedb_interfaces::srv::{
    ExportMcap, GetLatest, IsPaused, ListMarks, ListTopics, Mark as MarkSrv, QueryNear, QueryRange,
    Unpin,
};
use r2r::std_srvs::srv::Trigger;
use r2r::QosProfile;
use std::sync::Arc;
use std::time::Duration;

/// The client library and its version, for the log and diagnostics.
pub const CLIENT_LIBRARY: &str = "r2r 0.9.7";

/// How long one spin waits for middleware events; also the latency bound
/// for answers computed on worker threads and for noticing a signal.
const SPIN_TIMEOUT: Duration = Duration::from_millis(5);

fn mw(operation: &'static str) -> impl FnOnce(r2r::Error) -> NodeError {
    move |e| NodeError::Middleware {
        operation,
        detail: e.to_string(),
    }
}

/// Runs the node until SIGINT/SIGTERM; returns after closing the store.
pub fn run() -> Result<()> {
    signals::install()?;
    let ctx = r2r::Context::create().map_err(mw("rcl_init"))?;
    let mut node = r2r::Node::create(ctx, "motedb", "").map_err(mw("rcl_node_init"))?;
    let (params, unknown) = read_params(&node)?;
    let offloaded = crate::remote::Offloaded::default();
    let store = Arc::new(open_store(&params, &offloaded)?);
    let logger = node.logger().to_string();
    for name in unknown {
        r2r::log_warn!(
            &logger,
            "parameter {name} is not a motedb parameter and is ignored (see config/motedb.yaml)"
        );
    }
    r2r::log_info!(
        &logger,
        "{CLIENT_LIBRARY}: recording into {}",
        params.storage_path.display()
    );

    let stats = Arc::new(Stats::default());
    let mut offload = super::start_offload(&params, &stats, &offloaded)?;
    if let Some(o) = &params.offload {
        r2r::log_info!(&logger, "offloading to {} every {:?}", o.url, o.period);
    }
    let identity = NodeIdentity {
        name: node.name().map_err(mw("node name"))?,
        namespace: node.namespace().map_err(mw("node namespace"))?,
        fqn: node.fully_qualified_name().map_err(mw("node name"))?,
    };
    let (recording, live) = Live::start(&identity, &params, &store, &stats)?;

    let mut pool = LocalPool::new();
    let lanes = Arc::new(Lanes::default());
    params::serve(&mut node, &pool, &live, &logger)?;
    serve_list_topics(&mut node, &pool, &store, &logger)?;
    serve_query_range(&mut node, &pool, &store, &lanes, &live, &logger)?;
    serve_query_near(&mut node, &pool, &store, &lanes, &live, &logger)?;
    serve_get_latest(&mut node, &pool, &store, &lanes, &logger)?;
    serve_export(&mut node, &pool, &store, &lanes, &params, &logger)?;
    serve_pause(&mut node, &pool, &stats, &logger)?;
    serve_marks(&mut node, &pool, &store, &lanes, &stats, &logger)?;
    publish_diagnostics(&mut node, &pool, &store, &stats, &live, &logger)?;

    while !signals::stop_requested() && !stats.has_failed() {
        node.spin_once(SPIN_TIMEOUT);
        pool.run_until_stalled();
    }
    for e in stats.take_unlogged() {
        r2r::log_error!(&logger, "{e}");
    }
    r2r::log_info!(&logger, "shutting down");
    if !lanes.cancel_and_wait(SHUTDOWN_WAIT) {
        r2r::log_warn!(&logger, "a query or export was still running at shutdown");
    }
    let recorded = recording.stop();
    // No round while the store closes; the last one runs after.
    if let Some(o) = &mut offload {
        o.halt();
    }
    drop(pool);
    drop(lanes);
    drop(node);
    // The last other holder of the store: without it `close` (memtables
    // flushed, threads stopped) could not run.
    drop(live);
    let closed = close_store(store, &params);
    match super::finish_offload(offload) {
        Some(Ok(m)) => r2r::log_info!(&logger, "{m}"),
        Some(Err(m)) => r2r::log_warn!(&logger, "{m}"),
        None => {}
    }
    recorded.and(closed)
}

fn spawn(pool: &LocalPool, task: impl Future<Output = ()> + 'static) -> Result<()> {
    pool.spawner()
        .spawn_local(task)
        .map_err(|e| NodeError::Middleware {
            operation: "spawn task",
            detail: e.to_string(),
        })
}

/// Sends `response`; one that cannot be sent is logged, never fatal. With
/// Fast DDS a reply fails with a timeout when the client's response reader
/// is not matched to the service yet (discovery is still running); the
/// client sees no answer and may call again, as rclcpp and rclrs leave it.
fn respond<S>(req: r2r::ServiceRequest<S>, response: S::Response, service: &str, logger: &str)
where
    S: r2r::WrappedServiceTypeSupport + 'static,
{
    if let Err(e) = req.respond(response) {
        r2r::log_warn!(logger, "{service}: could not send the reply: {e}");
    }
}

/// Parameter overrides (`-p`, `--params-file`), parsed by rcl exactly as in
/// the rclrs build, merged with the defaults.
/// Also returns the names the node does not know.
fn read_params(node: &r2r::Node) -> Result<(NodeParams, Vec<String>)> {
    let fqn = node.fully_qualified_name().map_err(mw("node name"))?;
    let args: Vec<String> = std::env::args().collect();
    let given = parameter_overrides(&args, &fqn).map_err(|e| NodeError::Middleware {
        operation: "parameter overrides",
        detail: e.to_string(),
    })?;
    Ok((
        NodeParams::from_overrides(&given, &ros_home())?,
        unknown_names(&given),
    ))
}

fn serve_list_topics(
    node: &mut r2r::Node,
    pool: &LocalPool,
    store: &Arc<Store>,
    logger: &str,
) -> Result<()> {
    let requests = node
        .create_service::<ListTopics::Service>("~/list_topics", QosProfile::services_default())
        .map_err(mw("create ~/list_topics"))?;
    let (store, logger) = (Arc::clone(store), logger.to_string());
    spawn(
        pool,
        requests.for_each(move |req| {
            let topics = services::list_topics(&store)
                .iter()
                .map(convert::topic_info)
                .collect();
            respond(
                req,
                ListTopics::Response { topics },
                "~/list_topics",
                &logger,
            );
            futures::future::ready(())
        }),
    )
}

/// `~/pause`, `~/resume` (std_srvs/Trigger) and `~/is_paused`, answered on
/// the executor: they only flip or read a flag.
fn serve_pause(
    node: &mut r2r::Node,
    pool: &LocalPool,
    stats: &Arc<Stats>,
    logger: &str,
) -> Result<()> {
    for (name, paused) in [("~/pause", true), ("~/resume", false)] {
        let requests = node
            .create_service::<Trigger::Service>(name, QosProfile::services_default())
            .map_err(mw(name))?;
        let (stats, logger) = (Arc::clone(stats), logger.to_string());
        spawn(
            pool,
            requests.for_each(move |req| {
                let (success, message) = services::set_paused(&stats, paused);
                respond(req, Trigger::Response { success, message }, name, &logger);
                futures::future::ready(())
            }),
        )?;
    }
    let requests = node
        .create_service::<IsPaused::Service>("~/is_paused", QosProfile::services_default())
        .map_err(mw("~/is_paused"))?;
    let (stats, logger) = (Arc::clone(stats), logger.to_string());
    spawn(
        pool,
        requests.for_each(move |req| {
            let paused = stats.is_paused();
            respond(req, IsPaused::Response { paused }, "~/is_paused", &logger);
            futures::future::ready(())
        }),
    )
}

/// Serves `name`: for each request `job` builds (on the executor, from the
/// request) the work that answers it, which then runs on a worker so a slow
/// query never stalls recording. When no worker takes it (shutting down),
/// the client gets `unavailable`.
fn serve_off_thread<S, J>(
    node: &mut r2r::Node,
    pool: &LocalPool,
    (lanes, lane): (&Arc<Lanes>, fn(&Lanes) -> &Workers),
    name: &'static str,
    logger: &str,
    job: impl Fn(&S::Request) -> J + 'static,
    refused: fn(Refused) -> S::Response,
) -> Result<()>
where
    S: r2r::WrappedServiceTypeSupport + 'static,
    S::Response: Send + 'static,
    J: FnOnce() -> S::Response + Send + 'static,
{
    let mut requests = node
        .create_service::<S>(name, QosProfile::services_default())
        .map_err(mw(name))?;
    let (lanes, logger) = (Arc::clone(lanes), logger.to_string());
    let spawner = pool.spawner();
    spawn(pool, async move {
        while let Some(req) = requests.next().await {
            let work = job(&req.message);
            let (lanes, logger) = (Arc::clone(&lanes), logger.clone());
            let answer = async move {
                let response = lane(&lanes).run(work).await.unwrap_or_else(refused);
                respond(req, response, name, &logger);
            };
            let _spawned = spawner.spawn_local(answer);
        }
    })
}

fn serve_query_range(
    node: &mut r2r::Node,
    pool: &LocalPool,
    store: &Arc<Store>,
    lanes: &Arc<Lanes>,
    live: &Arc<Live>,
    logger: &str,
) -> Result<()> {
    let (store, live) = (Arc::clone(store), Arc::clone(live));
    serve_off_thread::<QueryRange::Service, _>(
        node,
        pool,
        (lanes, |l| &l.queries),
        "~/query_range",
        logger,
        move |request| {
            let limits = live.query_limits();
            let (store, input) = (Arc::clone(&store), convert::query_input(request));
            move || convert::query_response(services::query_range(&store, &input, limits))
        },
        |r| QueryRange::Response {
            success: false,
            message: r.message("query"),
            ..QueryRange::Response::default()
        },
    )
}

fn serve_query_near(
    node: &mut r2r::Node,
    pool: &LocalPool,
    store: &Arc<Store>,
    lanes: &Arc<Lanes>,
    live: &Arc<Live>,
    logger: &str,
) -> Result<()> {
    let (store, live) = (Arc::clone(store), Arc::clone(live));
    serve_off_thread::<QueryNear::Service, _>(
        node,
        pool,
        (lanes, |l| &l.queries),
        "~/query_near",
        logger,
        move |request| {
            let (store, live) = (Arc::clone(&store), Arc::clone(&live));
            let input = convert::near_input(request);
            move || {
                let limits = live.query_limits();
                convert::near_response(services::query_near(&store, &live.places, &input, limits))
            }
        },
        |r| QueryNear::Response {
            success: false,
            message: r.message("query"),
            ..QueryNear::Response::default()
        },
    )
}

fn serve_get_latest(
    node: &mut r2r::Node,
    pool: &LocalPool,
    store: &Arc<Store>,
    lanes: &Arc<Lanes>,
    logger: &str,
) -> Result<()> {
    let store = Arc::clone(store);
    serve_off_thread::<GetLatest::Service, _>(
        node,
        pool,
        (lanes, |l| &l.latest),
        "~/get_latest",
        logger,
        move |request| {
            let store = Arc::clone(&store);
            let (topic, at) = (request.topic.clone(), convert::stamp(&request.at));
            move || convert::latest_response(services::get_latest(&store, &topic, at))
        },
        |r| GetLatest::Response {
            success: false,
            message: r.message("query"),
            ..GetLatest::Response::default()
        },
    )
}

/// `~/mark`, `~/list_marks` and `~/unpin`. Marking and unpinning fsync the
/// manifest, so all three run on the short-job lane, off the executor.
fn serve_marks(
    node: &mut r2r::Node,
    pool: &LocalPool,
    store: &Arc<Store>,
    lanes: &Arc<Lanes>,
    stats: &Arc<Stats>,
    logger: &str,
) -> Result<()> {
    let (s, st) = (Arc::clone(store), Arc::clone(stats));
    serve_off_thread::<MarkSrv::Service, _>(
        node,
        pool,
        (lanes, |l| &l.latest),
        "~/mark",
        logger,
        move |request| {
            let (store, input, now) = (Arc::clone(&s), convert::mark_input(request), st.log_now());
            move || convert::mark_response(services::add_mark(&store, &input, now))
        },
        |r| MarkSrv::Response {
            success: false,
            message: r.message("mark"),
            ..MarkSrv::Response::default()
        },
    )?;
    let s = Arc::clone(store);
    serve_off_thread::<ListMarks::Service, _>(
        node,
        pool,
        (lanes, |l| &l.latest),
        "~/list_marks",
        logger,
        move |request| {
            let store = Arc::clone(&s);
            let tag = request.tag.clone();
            let (start, end) = (convert::stamp(&request.start), convert::stamp(&request.end));
            move || convert::list_marks_response(services::list_marks(&store, &tag, start, end))
        },
        |r| ListMarks::Response {
            success: false,
            message: r.message("list_marks"),
            ..ListMarks::Response::default()
        },
    )?;
    let s = Arc::clone(store);
    serve_off_thread::<Unpin::Service, _>(
        node,
        pool,
        (lanes, |l| &l.latest),
        "~/unpin",
        logger,
        move |request| {
            let (store, id) = (Arc::clone(&s), request.id);
            move || convert::unpin_response(services::unpin(&store, id))
        },
        |r| Unpin::Response {
            success: false,
            message: r.message("unpin"),
            ..Unpin::Response::default()
        },
    )
}

fn serve_export(
    node: &mut r2r::Node,
    pool: &LocalPool,
    store: &Arc<Store>,
    lanes: &Arc<Lanes>,
    params: &NodeParams,
    logger: &str,
) -> Result<()> {
    let store = Arc::clone(store);
    let directory = params.export_directory.clone();
    let cancel = Arc::clone(&lanes.cancel_exports);
    serve_off_thread::<ExportMcap::Service, _>(
        node,
        pool,
        (lanes, |l| &l.exports),
        "~/export_mcap",
        logger,
        move |request| {
            let (store, directory) = (Arc::clone(&store), directory.clone());
            let (input, cancel) = (convert::export_input(request), Arc::clone(&cancel));
            move || {
                convert::export_response(services::export_mcap(&store, &input, &directory, &cancel))
            }
        },
        |r| ExportMcap::Response {
            success: false,
            message: r.message("export"),
            ..ExportMcap::Response::default()
        },
    )
}

fn publish_diagnostics(
    node: &mut r2r::Node,
    pool: &LocalPool,
    store: &Arc<Store>,
    stats: &Arc<Stats>,
    live: &Arc<Live>,
    logger: &str,
) -> Result<()> {
    let publisher = node
        .create_publisher::<DiagnosticArray>("/diagnostics", QosProfile::default())
        .map_err(mw("create /diagnostics publisher"))?;
    // The period may change while the node runs: tick often, publish when
    // a period passed.
    let mut timer = node
        .create_wall_timer(Pacer::TICK)
        .map_err(mw("create diagnostics timer"))?;
    let clock = node.get_ros_clock();
    let fqn = node.fully_qualified_name().map_err(mw("node name"))?;
    let (store, stats, live) = (Arc::clone(store), Arc::clone(stats), Arc::clone(live));
    let mut composer =
        Composer::new(&live.with(|p| p.hardware_id.clone()), CLIENT_LIBRARY).for_node(&fqn);
    let mut pacer = Pacer::default();
    let logger = logger.to_string();
    spawn(pool, async move {
        while timer.tick().await.is_ok() {
            for e in stats.take_unlogged() {
                r2r::log_error!(&logger, "{e}");
            }
            let urgent = stats.take_urgent();
            if !(pacer.due(live.with(|p| p.diagnostic_period)) || urgent) {
                continue;
            }
            let statuses = composer.compose(&store.health(), &stats.snapshot());
            let now = clock
                .lock()
                .ok()
                .and_then(|mut c| c.get_now().ok())
                .unwrap_or_default();
            let mut msg = DiagnosticArray {
                status: statuses
                    .into_iter()
                    .map(convert::diagnostic_status)
                    .collect(),
                ..DiagnosticArray::default()
            };
            msg.header.stamp = r2r::Clock::to_builtin_time(&now);
            let _published = publisher.publish(&msg);
        }
    })
}
