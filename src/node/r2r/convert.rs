//! The r2r message types under the names the shared conversions use
//! (`crate::node::convert`).

use r2r::builtin_interfaces::msg::Time;
use r2r::diagnostic_msgs::msg::{DiagnosticStatus, KeyValue};
use r2r::motedb_interfaces::msg::{
    MarkInfo, NearInterval, StoredMessage, TopicInfo as TopicInfoMsg,
};
use r2r::motedb_interfaces::srv::{
    ExportMcap, GetLatest, ListMarks, Mark as MarkSrv, QueryNear, QueryRange, Unpin,
};

type QueryRequest = QueryRange::Request;
type QueryResponse = QueryRange::Response;
type LatestResponse = GetLatest::Response;
type ExportRequest = ExportMcap::Request;
type ExportResponse = ExportMcap::Response;
type MarkRequest = MarkSrv::Request;
type MarkResponse = MarkSrv::Response;
type UnpinResponse = Unpin::Response;
type ListMarksResponse = ListMarks::Response;
type NearRequest = QueryNear::Request;
type NearResponse = QueryNear::Response;

crate::node::convert::message_conversions!();
