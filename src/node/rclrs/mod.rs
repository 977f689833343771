//! The rclrs adapter (the default build): every call into rclrs lives in
//! this folder. Node logic (parameters, validation, diagnostics) is in the
//! parent module; the recorder takes serialized messages through rcl itself
//! (`super::rcl`), as rclrs has no serialized subscription.

mod convert;

use super::diagnostics::Composer;
use super::error::{NodeError, Result};
use super::params::{ros_home, NodeParams, ParamValue};
use super::rcl::overrides::parameter_overrides;
use super::rcl::recorder::{NodeIdentity, Recording};
use super::recorder::ingest::Stats;
use super::services::{self, Limits};
use super::signals;
use super::worker::Workers;
use super::{close_store, open_store};
use crate::engine::Store;
use ::rclrs::{Context, CreateBasicExecutor, InitOptions, Node, RclrsError, SpinOptions, Timer};
use ros_env::diagnostic_msgs::msg::DiagnosticArray;
use ros_env::motedb_interfaces::srv::{
    ExportMcap, GetLatest, GetLatest_Request, ListTopics, ListTopics_Request, ListTopics_Response,
    QueryRange,
};
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
    let declared = declare_params(&node, &params)?;
    let store = Arc::new(open_store(&params)?);
    ::rclrs::log_info!(
        node.logger(),
        "{CLIENT_LIBRARY}: recording into {}",
        params.storage_path.display()
    );

    let stats = Arc::new(Stats::default());
    let recording = Recording::start(&identity, &params, &store, &stats)?;
    let workers = Arc::new(Workers::new(2));
    let services = serve(&node, &store, &workers, &params)?;
    let diagnostics = publish_diagnostics(&node, &store, &stats, &params)?;

    let commands = Arc::clone(executor.commands());
    let watcher = std::thread::Builder::new()
        .name("motedb-signals".into())
        .spawn(move || {
            while !signals::stop_requested() {
                std::thread::sleep(STOP_POLL);
            }
            commands.halt_spinning();
        })
        .map_err(|e| NodeError::Middleware {
            operation: "spawn thread",
            detail: e.to_string(),
        })?;
    let errors = executor.spin(SpinOptions::default());
    signals::request_stop();
    let _joined = watcher.join();
    ::rclrs::log_info!(node.logger(), "shutting down");
    let recorded = recording.stop();
    drop((services, diagnostics, declared));
    drop(workers);
    drop(node);
    let closed = close_store(store, &params);
    if let Some(e) = errors.into_iter().next() {
        return Err(mw("spin")(e));
    }
    recorded.and(closed)
}

/// Declared parameters; rclrs undeclares a parameter when its handle drops.
type Declared = Vec<Box<dyn std::any::Any>>;

/// One read-only parameter holding `value` (overrides were already applied
/// by `NodeParams`, so rclrs's own are ignored).
fn declare<T: ::rclrs::ParameterVariant + 'static>(
    node: &Node,
    name: &str,
    value: T,
) -> std::result::Result<Box<dyn std::any::Any>, ::rclrs::DeclarationError> {
    let handle = node
        .declare_parameter::<T>(name)
        .default(value)
        .ignore_override()
        .read_only()?;
    Ok(Box::new(handle))
}

/// Declares every parameter with the value in effect, read-only: list, get
/// and describe show what the node runs with; a set is refused (run-time
/// changes are not applied yet).
fn declare_params(node: &Node, params: &NodeParams) -> Result<Declared> {
    let mut handles = Declared::new();
    for (name, value) in params.effective() {
        let declared = match value {
            ParamValue::Bool(v) => declare(node, name, v),
            ParamValue::Integer(v) => declare(node, name, v),
            ParamValue::Double(v) => declare(node, name, v),
            ParamValue::String(v) => declare::<Arc<str>>(node, name, v.into()),
            ParamValue::StringArray(v) => {
                declare::<Arc<[Arc<str>]>>(node, name, v.into_iter().map(Arc::from).collect())
            }
        };
        match declared {
            Ok(handle) => handles.push(handle),
            // rclrs declares use_sim_time itself.
            Err(::rclrs::DeclarationError::AlreadyDeclared) => {}
            Err(e) => {
                return Err(NodeError::ParamValue {
                    name: name.to_string(),
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(handles)
}

/// Keeps the services alive.
type Services = (
    ::rclrs::Service<ListTopics>,
    ::rclrs::Service<QueryRange>,
    ::rclrs::Service<GetLatest>,
    ::rclrs::Service<ExportMcap>,
);

/// The four services. Queries and exports run on `workers`, so a slow one
/// never stalls the executor; when no worker takes a request (shutting
/// down) the client gets `success: false`.
fn serve(
    node: &Node,
    store: &Arc<Store>,
    workers: &Arc<Workers>,
    params: &NodeParams,
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

    let limits = Limits {
        max_messages: params.query_max_messages,
        max_bytes: params.query_max_bytes,
    };
    let (s, w) = (Arc::clone(store), Arc::clone(workers));
    let query = node
        .create_async_service::<QueryRange, _>("~/query_range", move |req| {
            let (store, workers) = (Arc::clone(&s), Arc::clone(&w));
            let input = convert::query_input(&req);
            async move {
                let job = move || services::query_range(&store, &input, limits);
                match workers.run(job).await {
                    Some(out) => convert::query_response(out),
                    None => convert::QueryResponse {
                        success: false,
                        message: "query worker unavailable (node shutting down)".into(),
                        ..Default::default()
                    },
                }
            }
        })
        .map_err(mw("create ~/query_range"))?;

    let (s, w) = (Arc::clone(store), Arc::clone(workers));
    let latest = node
        .create_async_service::<GetLatest, _>("~/get_latest", move |req: GetLatest_Request| {
            let (store, workers) = (Arc::clone(&s), Arc::clone(&w));
            let (topic, at) = (req.topic.clone(), convert::stamp(&req.at));
            async move {
                match workers
                    .run(move || services::get_latest(&store, &topic, at))
                    .await
                {
                    Some(out) => convert::latest_response(out),
                    None => convert::LatestResponse {
                        success: false,
                        message: "query worker unavailable (node shutting down)".into(),
                        ..Default::default()
                    },
                }
            }
        })
        .map_err(mw("create ~/get_latest"))?;

    let (s, w) = (Arc::clone(store), Arc::clone(workers));
    let directory = params.export_directory.clone();
    let export = node
        .create_async_service::<ExportMcap, _>("~/export_mcap", move |req| {
            let (store, workers, dir) = (Arc::clone(&s), Arc::clone(&w), directory.clone());
            let input = convert::export_input(&req);
            async move {
                let job = move || services::export_mcap(&store, &input, &dir);
                match workers.run(job).await {
                    Some(out) => convert::export_response(out),
                    None => convert::ExportResponse {
                        success: false,
                        message: "export worker unavailable (node shutting down)".into(),
                        ..Default::default()
                    },
                }
            }
        })
        .map_err(mw("create ~/export_mcap"))?;
    Ok((list, query, latest, export))
}

/// `/diagnostics` every `diagnostic_updater.period`.
fn publish_diagnostics(
    node: &Node,
    store: &Arc<Store>,
    stats: &Arc<Stats>,
    params: &NodeParams,
) -> Result<Timer> {
    let publisher = node
        .create_publisher::<DiagnosticArray>("/diagnostics")
        .map_err(mw("create /diagnostics publisher"))?;
    let clock = node.get_clock();
    let (store, stats) = (Arc::clone(store), Arc::clone(stats));
    let mut composer = Composer::new(&params.hardware_id, CLIENT_LIBRARY);
    node.create_timer_repeating(params.diagnostic_period, move || {
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
