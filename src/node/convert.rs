//! Conversions between the generated message types and the node's plain
//! structs, written once for every client library: both generators emit the
//! same field names, so each adapter names its types (`Time`,
//! `DiagnosticStatus`, `KeyValue`, `StoredMessage`, `TopicInfoMsg`,
//! `QueryRequest`, `QueryResponse`, `LatestResponse`, `ExportRequest`,
//! `ExportResponse`, `MarkInfo`, `MarkRequest`, `MarkResponse`,
//! `UnpinResponse`, `ListMarksResponse`, `NearInterval`, `NearRequest`,
//! `NearResponse`) and expands this macro next to
//! them.

macro_rules! message_conversions {
    () => {
        use crate::engine::{Mark, TopicInfo};
        use crate::node::diagnostics::Status;
        use crate::node::services::{
            ExportInput, ExportOutput, LatestOutput, MarkInput, MarkOutput, NearInput, NearOutput,
            QueryInput, QueryOutput, Stamp, Stored,
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

        pub fn mark_info(m: &Mark) -> MarkInfo {
            MarkInfo {
                id: m.id,
                label: m.label.clone(),
                tags: m.tags.clone(),
                start: time(m.start),
                end: time(m.end),
                pinned: m.pinned,
                released: m.released,
                created: time(m.created),
            }
        }

        pub fn mark_input(r: &MarkRequest) -> MarkInput {
            MarkInput {
                label: r.label.clone(),
                tags: r.tags.clone(),
                start: stamp(&r.start),
                end: stamp(&r.end),
                pre_s: r.pre_s,
                post_s: r.post_s,
                pin: r.pin,
            }
        }

        pub fn mark_response(out: MarkOutput) -> MarkResponse {
            MarkResponse {
                success: out.success,
                message: out.message,
                mark: out.mark.as_ref().map(mark_info).unwrap_or_default(),
            }
        }

        pub fn unpin_response(out: MarkOutput) -> UnpinResponse {
            UnpinResponse {
                success: out.success,
                message: out.message,
                mark: out.mark.as_ref().map(mark_info).unwrap_or_default(),
            }
        }

        pub fn list_marks_response(out: Result<Vec<Mark>, String>) -> ListMarksResponse {
            match out {
                Ok(marks) => ListMarksResponse {
                    success: true,
                    message: format!("{} mark(s)", marks.len()),
                    marks: marks.iter().map(mark_info).collect(),
                },
                Err(message) => ListMarksResponse {
                    success: false,
                    message,
                    ..Default::default()
                },
            }
        }

        pub fn near_input(r: &NearRequest) -> NearInput {
            NearInput {
                point: [r.x, r.y, r.z],
                radius: r.radius,
                use_z: r.use_z,
                pose_topic: r.pose_topic.clone(),
                frame_id: r.frame_id.clone(),
                start: stamp(&r.start),
                end: stamp(&r.end),
                topics: r.topics.clone(),
                max_messages: r.max_messages,
                max_bytes: r.max_bytes,
                cursor: r.cursor.clone(),
            }
        }

        pub fn near_response(out: NearOutput) -> NearResponse {
            NearResponse {
                success: out.success,
                message: out.message,
                pose_topic: out.pose_topic,
                frame_id: out.frame_id,
                intervals: out
                    .intervals
                    .iter()
                    .map(|iv| NearInterval {
                        start: time(iv.start),
                        end: time(iv.end),
                        closest: time(iv.closest),
                        distance: iv.distance,
                    })
                    .collect(),
                messages: out.messages.into_iter().map(stored).collect(),
                next_cursor: out.next_cursor,
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
