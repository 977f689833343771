//! The r2r message types under the names the shared conversions use
//! (`crate::node::convert`), and r2r's parameter values.

use crate::node::params::ParamValue;
use r2r::builtin_interfaces::msg::Time;
use r2r::diagnostic_msgs::msg::{DiagnosticStatus, KeyValue};
use r2r::motedb_interfaces::msg::{StoredMessage, TopicInfo as TopicInfoMsg};
use r2r::motedb_interfaces::srv::{ExportMcap, GetLatest, QueryRange};
use r2r::ParameterValue;

type QueryRequest = QueryRange::Request;
type QueryResponse = QueryRange::Response;
type LatestResponse = GetLatest::Response;
type ExportRequest = ExportMcap::Request;
type ExportResponse = ExportMcap::Response;

crate::node::convert::message_conversions!();

/// None for types the node has no parameter of (byte, bool or number arrays).
pub fn param_from_r2r(v: &ParameterValue) -> Option<ParamValue> {
    Some(match v {
        ParameterValue::Bool(b) => ParamValue::Bool(*b),
        ParameterValue::Integer(i) => ParamValue::Integer(*i),
        ParameterValue::Double(d) => ParamValue::Double(*d),
        ParameterValue::String(s) => ParamValue::String(s.clone()),
        ParameterValue::StringArray(a) => ParamValue::StringArray(a.clone()),
        ParameterValue::BoolArray(a) if a.is_empty() => ParamValue::StringArray(Vec::new()),
        ParameterValue::IntegerArray(a) if a.is_empty() => ParamValue::StringArray(Vec::new()),
        ParameterValue::DoubleArray(a) if a.is_empty() => ParamValue::StringArray(Vec::new()),
        _ => return None,
    })
}

pub fn param_to_r2r(v: ParamValue) -> ParameterValue {
    match v {
        ParamValue::Bool(b) => ParameterValue::Bool(b),
        ParamValue::Integer(i) => ParameterValue::Integer(i),
        ParamValue::Double(d) => ParameterValue::Double(d),
        ParamValue::String(s) => ParameterValue::String(s),
        ParamValue::StringArray(a) => ParameterValue::StringArray(a),
    }
}
