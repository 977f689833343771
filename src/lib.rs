//! motedb: a crash-safe embedded LSM recorder for ROS 2 topics.
//!
//! Layers (dependencies point one way): `node` -> `export` -> `engine`,
//! CLI -> `export` -> `engine`; `places` (the trajectory index) reads the
//! engine and the CDR decoder. `engine` knows nothing of ROS or MCAP.

pub mod cdr;
pub mod engine;
pub mod export;
#[cfg(feature = "node")]
pub mod node;
pub mod places;
pub mod play;
pub mod remote;
