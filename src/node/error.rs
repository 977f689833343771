//! Errors of the node layer.

use std::path::PathBuf;

pub type Result<T, E = NodeError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("parameter {name}: expected {expected}, got {got}")]
    ParamType {
        name: String,
        expected: &'static str,
        got: &'static str,
    },
    #[error("parameter {name}: {reason}")]
    ParamValue { name: String, reason: String },
    #[error("storage at {path}: {source}")]
    Storage {
        path: PathBuf,
        #[source]
        source: crate::engine::Error,
    },
    #[error("ROS middleware call {operation} failed: {detail}")]
    Middleware {
        operation: &'static str,
        detail: String,
    },
    #[error("cannot install signal handler: {0}")]
    Signal(#[source] std::io::Error),
}
