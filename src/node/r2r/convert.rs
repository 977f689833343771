//! Conversions between r2r message types and the node's plain structs.

use crate::engine::TopicInfo;
use crate::node::diagnostics::Status;
use crate::node::params::ParamValue;
use crate::node::services::{
    ExportInput, ExportOutput, LatestOutput, QueryInput, QueryOutput, Stamp, Stored,
};
use r2r::builtin_interfaces::msg::Time;
use r2r::diagnostic_msgs::msg::{DiagnosticStatus, KeyValue};
use r2r::motedb_interfaces::msg::{StoredMessage, TopicInfo as TopicInfoMsg};
use r2r::motedb_interfaces::srv::{ExportMcap, GetLatest, QueryRange};
use r2r::ParameterValue;

pub fn stamp(t: &Time) -> Stamp {
    Stamp {
        sec: t.sec,
        nanosec: t.nanosec,
    }
}

pub fn time(n: u64) -> Time {
    let s = Stamp::from_nanos(n);
    Time {
        sec: s.sec,
        nanosec: s.nanosec,
    }
}

fn opt_time(n: Option<u64>) -> Time {
    n.map(time).unwrap_or_default()
}

pub fn topic_info(t: &TopicInfo) -> TopicInfoMsg {
    TopicInfoMsg {
        name: t.spec.name.clone(),
        type_: t.spec.type_name.clone(),
        serialization_format: t.spec.serialization_format.clone(),
        message_count: t.message_count,
        size_bytes: t.size_bytes,
        first_time: opt_time(t.first_time),
        last_time: opt_time(t.last_time),
        dropped_count: t.dropped_count,
        gap_count: t.gap_count,
    }
}

pub fn stored(s: Stored) -> StoredMessage {
    StoredMessage {
        topic: s.topic,
        type_: s.type_name,
        log_time: time(s.record.log_time),
        publish_time: time(s.record.publish_time),
        sequence: s.record.sequence,
        data: s.record.payload,
    }
}

pub fn query_input(r: &QueryRange::Request) -> QueryInput {
    QueryInput {
        topics: r.topics.clone(),
        start: stamp(&r.start),
        end: stamp(&r.end),
        max_messages: r.max_messages,
        max_bytes: r.max_bytes,
        newest_first: r.newest_first,
        cursor: r.cursor.clone(),
    }
}

pub fn query_response(out: QueryOutput) -> QueryRange::Response {
    QueryRange::Response {
        success: out.success,
        message: out.message,
        messages: out.messages.into_iter().map(stored).collect(),
        next_cursor: out.next_cursor,
    }
}

pub fn latest_response(out: LatestOutput) -> GetLatest::Response {
    GetLatest::Response {
        success: out.success,
        message: out.message,
        found: out.found,
        record: out.record.map(stored).unwrap_or_default(),
    }
}

pub fn export_input(r: &ExportMcap::Request) -> ExportInput {
    ExportInput {
        topics: r.topics.clone(),
        start: stamp(&r.start),
        end: stamp(&r.end),
        output: r.output.clone(),
        compression: r.compression.clone(),
    }
}

pub fn export_response(out: ExportOutput) -> ExportMcap::Response {
    ExportMcap::Response {
        success: out.success,
        message: out.message,
        path: out.path,
        message_count: out.message_count,
        size_bytes: out.size_bytes,
    }
}

pub fn diagnostic_status(s: Status) -> DiagnosticStatus {
    DiagnosticStatus {
        level: s.level as u8,
        name: s.name.to_string(),
        message: s.message,
        hardware_id: s.hardware_id,
        values: s
            .values
            .into_iter()
            .map(|(key, value)| KeyValue { key, value })
            .collect(),
    }
}

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
