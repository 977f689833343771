//! Schema-driven CDR decoding of stored messages for offline tools.
//!
//! `definition` parses ros2msg schema text (and builds it from installed
//! `.msg` files, or from type descriptions in `type_description`); `decode` turns CDR bytes into a `Value` tree that renders
//! as JSON or YAML. No ROS installation is needed.

pub mod decode;
pub mod definition;
mod error;
pub mod type_description;
pub mod value;

pub use decode::decode;
pub use definition::Schema;
pub use error::{Error, Result};
pub use value::Value;
