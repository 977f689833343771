//! The ROS 2 node. The only code that names a ROS client library, inside
//! one adapter folder per client library (`r2r/`). The recorder takes
//! serialized messages through rcl itself (`rcl/`), the same in every build.
//! Everything else here (parameters, request validation, diagnostics) is
//! plain Rust against the engine API.

pub mod diagnostics;
pub mod error;
pub mod params;
pub mod recorder;
pub mod services;
pub mod signals;
pub mod worker;

mod r2r;
mod rcl;

pub use error::{NodeError, Result};

/// Runs the node with the r2r client library until SIGINT/SIGTERM.
pub fn run() -> Result<()> {
    r2r::run()
}
