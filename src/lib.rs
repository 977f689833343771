//! motedb: a crash-safe embedded LSM recorder for ROS 2 topics.
//!
//! Layers (dependencies point one way): `node` -> `export` -> `engine`,
//! CLI -> `export` -> `engine`. `engine` knows nothing of ROS or MCAP.

pub mod cdr;
pub mod engine;
pub mod export;
#[cfg(feature = "node")]
pub mod node;
