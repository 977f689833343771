//! The ROS 2 node. The only code that names a ROS client library, inside
//! one adapter folder per client library (`r2r/`). The recorder takes
//! serialized messages through rcl itself (`rcl/`), the same in every build.
//! Everything else here (parameters, request validation, diagnostics) is
//! plain Rust against the engine API.

pub mod bench;
mod convert;
pub mod diagnostics;
pub mod error;
mod live;
pub mod param_specs;
pub mod params;
pub mod play;
pub mod recorder;
pub mod services;
pub mod signals;
pub mod worker;

#[cfg(feature = "r2r")]
mod r2r;
mod rcl;
#[cfg(feature = "ros")]
mod rclrs;

pub use error::{NodeError, Result};

use crate::engine::Store;
use params::NodeParams;
use std::sync::Arc;

/// Runs the node until SIGINT/SIGTERM with the build's client library:
/// rclrs (feature `ros`, the default) or r2r (feature `r2r`).
pub fn run() -> Result<()> {
    #[cfg(feature = "ros")]
    return rclrs::run();
    #[cfg(all(feature = "r2r", not(feature = "ros")))]
    return r2r::run();
    #[cfg(not(any(feature = "ros", feature = "r2r")))]
    compile_error!("motedb_node needs a client library: --features ros (rclrs) or r2r");
}

/// Opens (creating the directory) the store the parameters name; with
/// `retention.require_offloaded`, retention asks `offloaded` first.
fn open_store(params: &NodeParams, offloaded: &crate::remote::Offloaded) -> Result<Store> {
    let storage = |source| NodeError::Storage {
        path: params.storage_path.clone(),
        source,
    };
    std::fs::create_dir_all(&params.storage_path).map_err(|source| {
        storage(crate::engine::Error::Io {
            path: params.storage_path.clone(),
            source,
        })
    })?;
    let mut options = params.engine_options();
    if params.retention_require_offloaded {
        options.retention_guard = Some(crate::remote::offloaded_guard(
            params.storage_path.clone(),
            offloaded.clone(),
        ));
    }
    Store::open(&params.storage_path, options).map_err(storage)
}

/// Closes the store once every other holder is gone.
fn close_store(store: Arc<Store>, params: &NodeParams) -> Result<()> {
    let storage = |source| NodeError::Storage {
        path: params.storage_path.clone(),
        source,
    };
    match Arc::try_unwrap(store) {
        Ok(store) => store.close().map_err(storage),
        // Someone still holds it (the place index still reading the
        // recorded poses at start): at least make everything durable.
        Err(store) => store.sync().map_err(storage),
    }
}

/// Starts mirroring the store when `offload.url` is set; its state goes to
/// `/diagnostics` through `stats`. Dropping the offloader stops it.
fn start_offload(
    params: &NodeParams,
    stats: &recorder::ingest::Stats,
    offloaded: &crate::remote::Offloaded,
) -> Result<Option<crate::remote::Offloader>> {
    let Some(o) = &params.offload else {
        return Ok(None);
    };
    let settings = o.settings(&params.storage_path, offloaded.clone())?;
    let off = crate::remote::Offloader::start(settings).map_err(|e| NodeError::ParamValue {
        name: "offload.url".into(),
        reason: e.to_string(),
    })?;
    let _already = stats.offload.set(off.status_handle());
    Ok(Some(off))
}

/// How long a stopping node spends on its last offload round.
pub const FINAL_OFFLOAD: std::time::Duration = std::time::Duration::from_secs(10);

/// The last offload round, after the store is closed; what to log.
fn finish_offload(
    off: Option<crate::remote::Offloader>,
) -> Option<std::result::Result<String, String>> {
    let off = off?;
    let url = off.status().url;
    Some(match off.finish(FINAL_OFFLOAD) {
        Ok(r) => Ok(format!(
            "offloaded to {url} at stop: generation {}, {} bytes uploaded",
            r.generation, r.uploaded_bytes
        )),
        Err(e @ crate::remote::RemoteError::OtherStore { .. }) => {
            Err(format!("the last offload round was refused: {e}"))
        }
        Err(e) => Err(format!(
            "the last offload round to {url} did not finish ({e}); the next start resumes it"
        )),
    })
}
