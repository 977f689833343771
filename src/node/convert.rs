//! Conversions between the generated message types and the node's plain
//! structs, written once for every client library: both generators emit the
//! same field names, so each adapter names its types (`Time`,
//! `DiagnosticStatus`, `KeyValue`, `StoredMessage`, `TopicInfoMsg`,
//! `QueryRequest`, `QueryResponse`, `LatestResponse`, `ExportRequest`,
//! `ExportResponse`) and expands this macro next to them.

macro_rules! message_conversions {
    () => {
        use crate::engine::TopicInfo;
        use crate::node::diagnostics::Status;
        use crate::node::services::{
            ExportInput, ExportOutput, LatestOutput, QueryInput, QueryOutput, Stamp, Stored,
        };

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

        pub fn query_input(r: &QueryRequest) -> QueryInput {
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

        pub fn query_response(out: QueryOutput) -> QueryResponse {
            QueryResponse {
                success: out.success,
                message: out.message,
                messages: out.messages.into_iter().map(stored).collect(),
                next_cursor: out.next_cursor,
            }
        }

        pub fn latest_response(out: LatestOutput) -> LatestResponse {
            LatestResponse {
                success: out.success,
                message: out.message,
                found: out.found,
                record: out.record.map(stored).unwrap_or_default(),
            }
        }

        pub fn export_input(r: &ExportRequest) -> ExportInput {
            ExportInput {
                topics: r.topics.clone(),
                start: stamp(&r.start),
                end: stamp(&r.end),
                output: r.output.clone(),
                compression: r.compression.clone(),
            }
        }

        pub fn export_response(out: ExportOutput) -> ExportResponse {
            ExportResponse {
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
    };
}

pub(crate) use message_conversions;
