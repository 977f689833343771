//! The r2r adapter: every call into r2r lives in this folder. Node logic
//! (parameters, validation, diagnostics) is in the parent module.

mod convert;

use super::diagnostics::{Composer, Pacer};
use super::error::{NodeError, Result};
use super::live::Live;
use super::param_specs::unknown_names;
use super::params::{ros_home, NodeParams};
use super::rcl::overrides::parameter_overrides;
use super::rcl::recorder::NodeIdentity;
use super::recorder::ingest::Stats;
use super::services::{self, Limits};
use super::signals;
use super::worker::Workers;
use super::{close_store, open_store};
use crate::engine::Store;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use futures::{Future, StreamExt};
use r2r::diagnostic_msgs::msg::DiagnosticArray;
use r2r::motedb_interfaces::srv::{ExportMcap, GetLatest, ListTopics, QueryRange};
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
    publish_params(&node, &params);
    let store = Arc::new(open_store(&params)?);
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
    let identity = NodeIdentity {
        name: node.name().map_err(mw("node name"))?,
        namespace: node.namespace().map_err(mw("node namespace"))?,
        fqn: node.fully_qualified_name().map_err(mw("node name"))?,
    };
    let (recording, live) = Live::start(&identity, &params, &store, &stats)?;

    let mut pool = LocalPool::new();
    let workers = Arc::new(Workers::new(2));
    let (param_handler, param_events) = node
        .make_parameter_handler()
        .map_err(mw("parameter services"))?;
    spawn(&pool, param_handler)?;
    apply_param_changes(&node, &pool, param_events, &live, &logger)?;
    serve_list_topics(&mut node, &pool, &store)?;
    serve_query_range(&mut node, &pool, &store, &workers, &live)?;
    serve_get_latest(&mut node, &pool, &store, &workers)?;
    serve_export(&mut node, &pool, &store, &workers, &params)?;
    publish_diagnostics(&mut node, &pool, &store, &stats, &live)?;

    while !signals::stop_requested() {
        node.spin_once(SPIN_TIMEOUT);
        pool.run_until_stalled();
    }
    r2r::log_info!(&logger, "shutting down");
    let recorded = recording.stop();
    drop(pool);
    drop(workers);
    drop(node);
    let closed = close_store(store, &params);
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

/// r2r answers every SetParameters with "successful" and then reports the
/// change here; it cannot refuse one. A change the node accepts is applied
/// (as in the rclrs build); a refused one (read-only, bad type or value) is
/// logged and the value in force is put back, so a get shows the truth.
fn apply_param_changes(
    node: &r2r::Node,
    pool: &LocalPool,
    events: impl futures::Stream<Item = (String, r2r::ParameterValue)> + 'static,
    live: &Arc<Live>,
    logger: &str,
) -> Result<()> {
    let (map, live, logger) = (node.params.clone(), Arc::clone(live), logger.to_string());
    spawn(
        pool,
        events.for_each(move |(name, value)| {
            let outcome = match convert::param_from_r2r(&value) {
                Some(v) => live.apply(&name, v),
                None => Err(format!("{name}: unsupported parameter type")),
            };
            if let Err(why) = &outcome {
                r2r::log_warn!(&logger, "parameter {name} not changed: {why}");
            }
            // Always the value in force: a refused set is undone, and an
            // earlier refused set never overwrites a later accepted one.
            let current = live.with(|p| p.effective());
            if let (Ok(mut map), Some((_, v))) =
                (map.lock(), current.into_iter().find(|(n, _)| *n == name))
            {
                map.insert(name, r2r::Parameter::new(convert::param_to_r2r(v)));
            }
            futures::future::ready(())
        }),
    )
}

/// Makes the effective values visible through the parameter services.
fn publish_params(node: &r2r::Node, params: &NodeParams) {
    if let Ok(mut map) = node.params.lock() {
        for (name, value) in params.effective() {
            map.insert(
                name.to_string(),
                r2r::Parameter::new(convert::param_to_r2r(value)),
            );
        }
    }
}

fn serve_list_topics(node: &mut r2r::Node, pool: &LocalPool, store: &Arc<Store>) -> Result<()> {
    let requests = node
        .create_service::<ListTopics::Service>("~/list_topics", QosProfile::services_default())
        .map_err(mw("create ~/list_topics"))?;
    let store = Arc::clone(store);
    spawn(
        pool,
        requests.for_each(move |req| {
            let topics = services::list_topics(&store)
                .iter()
                .map(convert::topic_info)
                .collect();
            let _sent = req.respond(ListTopics::Response { topics });
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
    workers: &Arc<Workers>,
    name: &'static str,
    job: impl Fn(&S::Request) -> J + 'static,
    unavailable: fn() -> S::Response,
) -> Result<()>
where
    S: r2r::WrappedServiceTypeSupport + 'static,
    S::Response: Send + 'static,
    J: FnOnce() -> S::Response + Send + 'static,
{
    let mut requests = node
        .create_service::<S>(name, QosProfile::services_default())
        .map_err(mw(name))?;
    let workers = Arc::clone(workers);
    let spawner = pool.spawner();
    spawn(pool, async move {
        while let Some(req) = requests.next().await {
            let work = job(&req.message);
            let workers = Arc::clone(&workers);
            let answer = async move {
                let response = workers.run(work).await.unwrap_or_else(unavailable);
                let _sent = req.respond(response);
            };
            let _spawned = spawner.spawn_local(answer);
        }
    })
}

fn serve_query_range(
    node: &mut r2r::Node,
    pool: &LocalPool,
    store: &Arc<Store>,
    workers: &Arc<Workers>,
    live: &Arc<Live>,
) -> Result<()> {
    let (store, live) = (Arc::clone(store), Arc::clone(live));
    serve_off_thread::<QueryRange::Service, _>(
        node,
        pool,
        workers,
        "~/query_range",
        move |request| {
            let limits = live.with(|p| Limits {
                max_messages: p.query_max_messages,
                max_bytes: p.query_max_bytes,
            });
            let (store, input) = (Arc::clone(&store), convert::query_input(request));
            move || convert::query_response(services::query_range(&store, &input, limits))
        },
        || QueryRange::Response {
            success: false,
            message: "query worker unavailable (node shutting down)".into(),
            ..QueryRange::Response::default()
        },
    )
}

fn serve_get_latest(
    node: &mut r2r::Node,
    pool: &LocalPool,
    store: &Arc<Store>,
    workers: &Arc<Workers>,
) -> Result<()> {
    let store = Arc::clone(store);
    serve_off_thread::<GetLatest::Service, _>(
        node,
        pool,
        workers,
        "~/get_latest",
        move |request| {
            let store = Arc::clone(&store);
            let (topic, at) = (request.topic.clone(), convert::stamp(&request.at));
            move || convert::latest_response(services::get_latest(&store, &topic, at))
        },
        || GetLatest::Response {
            success: false,
            message: "query worker unavailable (node shutting down)".into(),
            ..GetLatest::Response::default()
        },
    )
}

fn serve_export(
    node: &mut r2r::Node,
    pool: &LocalPool,
    store: &Arc<Store>,
    workers: &Arc<Workers>,
    params: &NodeParams,
) -> Result<()> {
    let store = Arc::clone(store);
    let directory = params.export_directory.clone();
    serve_off_thread::<ExportMcap::Service, _>(
        node,
        pool,
        workers,
        "~/export_mcap",
        move |request| {
            let (store, directory) = (Arc::clone(&store), directory.clone());
            let input = convert::export_input(request);
            move || convert::export_response(services::export_mcap(&store, &input, &directory))
        },
        || ExportMcap::Response {
            success: false,
            message: "export worker unavailable (node shutting down)".into(),
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
    let (store, stats, live) = (Arc::clone(store), Arc::clone(stats), Arc::clone(live));
    let mut composer = Composer::new(&live.with(|p| p.hardware_id.clone()), CLIENT_LIBRARY);
    let mut pacer = Pacer::default();
    spawn(pool, async move {
        while timer.tick().await.is_ok() {
            if !pacer.due(live.with(|p| p.diagnostic_period)) {
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
