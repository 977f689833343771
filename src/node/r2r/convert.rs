//! The r2r message types under the names the shared conversions use
//! (`crate::node::convert`).

use r2r::builtin_interfaces::msg::Time;
use r2r::diagnostic_msgs::msg::{DiagnosticStatus, KeyValue};
use r2r::motedb_interfaces::msg::{StoredMessage, TopicInfo as TopicInfoMsg};
use r2r::motedb_interfaces::srv::{ExportMcap, GetLatest, QueryRange};

type QueryRequest = QueryRange::Request;
type QueryResponse = QueryRange::Response;
type LatestResponse = GetLatest::Response;
type ExportRequest = ExportMcap::Request;
type ExportResponse = ExportMcap::Response;

crate::node::convert::message_conversions!();
