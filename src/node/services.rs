//! Service logic against the engine API, free of ROS types: request
//! validation, limits, and the answers. The adapter converts messages to
//! and from these structs and runs the work off its executor thread.

use super::recorder::ingest::Stats;
use crate::engine::{
    Mark, Nanos, NewMark, Record, ScanRequest, Store, TopicInfo, WriteState, MAX_PIN_AHEAD,
};
use crate::places::live::{Places, BUILD_WAIT};
use crate::places::Interval;

/// builtin_interfaces/Time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    pub sec: i32,
    pub nanosec: u32,
}

const NANOS_PER_SEC: u64 = 1_000_000_000;

impl Stamp {
    pub fn from_nanos(n: Nanos) -> Stamp {
        let sec = n / NANOS_PER_SEC;
        Stamp {
            sec: i32::try_from(sec).unwrap_or(i32::MAX),
            nanosec: (n % NANOS_PER_SEC) as u32,
        }
    }

    /// None for a negative time or a nanosecond field out of range.
    pub fn to_nanos(self) -> Option<Nanos> {
        let sec = u64::try_from(self.sec).ok()?;
        if u64::from(self.nanosec) >= NANOS_PER_SEC {
            return None;
        }
        Some(sec * NANOS_PER_SEC + u64::from(self.nanosec))
    }

    pub fn is_zero(self) -> bool {
        self.sec == 0 && self.nanosec == 0
    }
}

/// `~/pause` (true) and `~/resume` (false), std_srvs/Trigger's answer:
/// both always succeed (as rosbag2's do), the message says whether the
/// state changed.
pub fn set_paused(stats: &Stats, paused: bool) -> (bool, String) {
    let changed = stats.set_paused(paused);
    let message = match (paused, changed) {
        (true, true) => "paused: messages are discarded until ~/resume",
        (true, false) => "already paused",
        (false, true) => "recording",
        (false, false) => "already recording",
    };
    (true, message.to_string())
}

/// What a client asked in `~/mark` (or published on `places.mark_topic`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MarkInput {
    pub label: String,
    pub tags: Vec<String>,
    pub start: Stamp,
    pub end: Stamp,
    pub pre_s: f64,
    pub post_s: f64,
    pub pin: bool,
}

/// The answer of `~/mark` and `~/unpin`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarkOutput {
    pub success: bool,
    pub message: String,
    pub mark: Option<Mark>,
}

impl MarkOutput {
    fn failed(message: String) -> MarkOutput {
        MarkOutput {
            message,
            ..MarkOutput::default()
        }
    }
}

/// The window a mark request names, in log time: `start`/`end` when given
/// (a zero end: up to now), else `now - pre_s .. now + post_s`. `now` is
/// None with use_sim_time before the first /clock.
pub fn mark_window(input: &MarkInput, now: Option<Nanos>) -> Result<(Nanos, Nanos), String> {
    let seconds = |name: &str, s: f64| {
        if s.is_finite() && s >= 0.0 {
            Ok((s * 1e9).min(u64::MAX as f64) as u64)
        } else {
            Err(format!("{name} must be a number of seconds >= 0, not {s}"))
        }
    };
    let (pre, post) = (
        seconds("pre_s", input.pre_s)?,
        seconds("post_s", input.post_s)?,
    );
    let need_now = || {
        now.ok_or_else(|| "no /clock received yet (use_sim_time): give start and end".to_string())
    };
    let window = if input.start.is_zero() && input.end.is_zero() {
        let now = need_now()?;
        (now.saturating_sub(pre), now.saturating_add(post))
    } else if input.pre_s != 0.0 || input.post_s != 0.0 {
        return Err("give either start/end or pre_s/post_s, not both".into());
    } else {
        given_window(input, need_now)?
    };
    // A window reaching far ahead would pin everything recorded from now
    // on: bounded where now is known.
    if let Some(now) = now {
        if window.1 > now.saturating_add(MAX_PIN_AHEAD) {
            return Err(format!(
                "the window ends {:.0} s after now; a mark reaches at most {} s ahead",
                (window.1 - now) as f64 / 1e9,
                MAX_PIN_AHEAD / NANOS_PER_SEC
            ));
        }
    }
    Ok(window)
}

/// The window of a request that gives `start` (and `end`, zero: now).
fn given_window(
    input: &MarkInput,
    need_now: impl Fn() -> Result<Nanos, String>,
) -> Result<(Nanos, Nanos), String> {
    let valid = |name: &str, t: Stamp| {
        t.to_nanos()
            .ok_or_else(|| format!("{name} {}.{:09} is not a valid time", t.sec, t.nanosec))
    };
    if input.start.is_zero() {
        return Err("end without start: give start too (or neither, with pre_s/post_s)".into());
    }
    let start = valid("start", input.start)?;
    let end = if input.end.is_zero() {
        need_now()?
    } else {
        valid("end", input.end)?
    };
    if start > end {
        return Err(format!("start {start} is after end {end}"));
    }
    Ok((start, end))
}

/// `~/mark`.
pub fn add_mark(store: &Store, input: &MarkInput, now: Option<Nanos>) -> MarkOutput {
    let (start, end) = match mark_window(input, now) {
        Ok(w) => w,
        Err(e) => return MarkOutput::failed(e),
    };
    let new = NewMark {
        label: input.label.clone(),
        tags: input.tags.clone(),
        start,
        end,
        pin: input.pin,
    };
    match store.add_mark(new) {
        Ok(mark) => MarkOutput {
            success: true,
            message: format!(
                "mark {} stored{}",
                mark.id,
                if mark.pinned { ", pinned" } else { "" }
            ),
            mark: Some(mark),
        },
        Err(e) => MarkOutput::failed(e.to_string()),
    }
}

/// `~/unpin`.
pub fn unpin(store: &Store, id: u64) -> MarkOutput {
    match store.unpin(id) {
        Ok((mark, was_pinned)) => MarkOutput {
            success: true,
            message: if was_pinned {
                format!("mark {id} unpinned: retention may drop its window")
            } else if mark.released {
                format!("mark {id} is not pinned (retention released its pin)")
            } else {
                format!("mark {id} is not pinned")
            },
            mark: Some(mark),
        },
        Err(e) => MarkOutput::failed(e.to_string()),
    }
}

/// `~/list_marks`: marks carrying `tag` (empty: all) whose window meets
/// `[start, end]` (zero: open), oldest first.
pub fn list_marks(store: &Store, tag: &str, start: Stamp, end: Stamp) -> Result<Vec<Mark>, String> {
    let bound = |name: &str, t: Stamp, open: Nanos| {
        if t.is_zero() {
            return Ok(open);
        }
        t.to_nanos()
            .ok_or_else(|| format!("{name} {}.{:09} is not a valid time", t.sec, t.nanosec))
    };
    let (lo, hi) = (bound("start", start, 0)?, bound("end", end, Nanos::MAX)?);
    if lo > hi {
        return Err(format!("start {lo} is after end {hi}"));
    }
    Ok(store
        .marks()
        .into_iter()
        .filter(|m| tag.is_empty() || m.tags.iter().any(|t| t == tag))
        .filter(|m| m.overlaps(lo, hi))
        .collect())
}

/// A stored message with its topic resolved to name and type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub topic: String,
    pub type_name: String,
    pub record: Record,
}

/// What a client asked in `~/query_range`.
#[derive(Clone, Debug, Default)]
pub struct QueryInput {
    pub topics: Vec<String>,
    pub start: Stamp,
    pub end: Stamp,
    pub max_messages: u32,
    pub max_bytes: u64,
    pub newest_first: bool,
    pub cursor: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryOutput {
    pub success: bool,
    pub message: String,
    pub messages: Vec<Stored>,
    pub next_cursor: String,
}

/// Node-wide page limits: the defaults for 0 and the hard caps.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_messages: u32,
    pub max_bytes: u64,
}

fn failure(message: String) -> QueryOutput {
    QueryOutput {
        success: false,
        message,
        ..QueryOutput::default()
    }
}

/// Resolves topic names; unknown names are an error naming them.
fn resolve_topics(store: &Store, names: &[String]) -> Result<Vec<u32>, String> {
    let mut ids = Vec::with_capacity(names.len());
    let mut unknown = Vec::new();
    for name in names {
        match store.topic_by_name(name) {
            Some(info) => ids.push(info.id),
            None => unknown.push(name.as_str()),
        }
    }
    if unknown.is_empty() {
        Ok(ids)
    } else {
        Err(format!(
            "unknown topic(s): {}; call ~/list_topics for the recorded ones",
            unknown.join(", ")
        ))
    }
}

/// `[start, end)` in nanoseconds; zero start is the oldest, zero end the newest.
fn time_range(start: Stamp, end: Stamp) -> Result<(Nanos, Nanos), String> {
    let s = start.to_nanos().ok_or_else(|| {
        format!(
            "start {}.{:09} is not a valid time",
            start.sec, start.nanosec
        )
    })?;
    let e = if end.is_zero() {
        Nanos::MAX
    } else {
        end.to_nanos()
            .ok_or_else(|| format!("end {}.{:09} is not a valid time", end.sec, end.nanosec))?
    };
    if s >= e {
        return Err(format!(
            "start ({s} ns) is not before end ({e} ns); the range is empty"
        ));
    }
    Ok((s, e))
}

/// Applies defaults and caps; returns the values and a note when clamped.
fn page_limits(input: &QueryInput, limits: Limits) -> (usize, u64, Vec<String>) {
    let mut notes = Vec::new();
    let mut messages = if input.max_messages == 0 {
        limits.max_messages
    } else {
        input.max_messages
    };
    if messages > limits.max_messages {
        notes.push(format!(
            "max_messages {} clamped to the node's cap {}",
            messages, limits.max_messages
        ));
        messages = limits.max_messages;
    }
    let mut bytes = if input.max_bytes == 0 {
        limits.max_bytes
    } else {
        input.max_bytes
    };
    if bytes > limits.max_bytes {
        notes.push(format!(
            "max_bytes {} clamped to the node's cap {}",
            bytes, limits.max_bytes
        ));
        bytes = limits.max_bytes;
    }
    (messages as usize, bytes, notes)
}

fn names_by_id(store: &Store) -> std::collections::HashMap<u32, TopicInfo> {
    store.topics().into_iter().map(|t| (t.id, t)).collect()
}

/// `record` with its topic's name and type.
fn stored(topics: &std::collections::HashMap<u32, TopicInfo>, record: Record) -> Stored {
    let (topic, type_name) = topics
        .get(&record.topic)
        .map(|t| (t.spec.name.clone(), t.spec.type_name.clone()))
        .unwrap_or_default();
    Stored {
        topic,
        type_name,
        record,
    }
}

pub fn query_range(store: &Store, input: &QueryInput, limits: Limits) -> QueryOutput {
    let ids = match resolve_topics(store, &input.topics) {
        Ok(ids) => ids,
        Err(msg) => return failure(msg),
    };
    let (start, end) = match time_range(input.start, input.end) {
        Ok(r) => r,
        Err(msg) => return failure(msg),
    };
    let (max_messages, max_bytes, mut notes) = page_limits(input, limits);
    notes.extend(store_state_note(store));
    let request = ScanRequest {
        topics: ids,
        start,
        end,
        newest_first: input.newest_first,
        max_messages,
        max_bytes,
        cursor: (!input.cursor.is_empty()).then(|| input.cursor.clone()),
    };
    let page = match store.scan(&request) {
        Ok(p) => p,
        Err(crate::engine::Error::InvalidCursor(why)) => {
            return failure(format!(
                "cursor rejected ({why}); pass the next_cursor of the previous page of the same query, or an empty cursor to start over"
            ))
        }
        Err(e) => return failure(format!("query failed: {e}")),
    };
    if let [only] = page.records.as_slice() {
        if only.payload.len() as u64 > max_bytes {
            notes.push(format!(
                "one message of {} bytes is larger than max_bytes {max_bytes}: returned alone \
                 (max_bytes is a hard cap on every page holding more than one message)",
                only.payload.len()
            ));
        }
    }
    let topics = names_by_id(store);
    let messages = page
        .records
        .into_iter()
        .map(|record| stored(&topics, record))
        .collect();
    QueryOutput {
        success: true,
        message: notes.join("; "),
        messages,
        next_cursor: page.next_cursor.unwrap_or_default(),
    }
}

/// What a client asked in `~/query_near`.
#[derive(Clone, Debug, Default)]
pub struct NearInput {
    pub point: [f64; 3],
    pub radius: f64,
    pub use_z: bool,
    pub pose_topic: String,
    pub frame_id: String,
    pub start: Stamp,
    pub end: Stamp,
    pub topics: Vec<String>,
    pub max_messages: u32,
    pub max_bytes: u64,
    pub cursor: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NearOutput {
    pub success: bool,
    pub message: String,
    pub pose_topic: String,
    pub frame_id: String,
    pub intervals: Vec<Interval>,
    pub messages: Vec<Stored>,
    pub next_cursor: String,
}

/// Where a `~/query_near` page ended: the newest pose the first page saw
/// (later pages see the same intervals), the interval it was in, and the
/// scan cursor inside it (empty: from the interval's start).
#[derive(Clone, Debug, PartialEq, Eq)]
struct NearCursor {
    until: Nanos,
    start: Nanos,
    end: Nanos,
    inner: String,
}

const NEAR_CURSOR: &str = "near1";

impl NearCursor {
    fn encode(&self) -> String {
        format!(
            "{NEAR_CURSOR};{};{};{};{}",
            self.until, self.start, self.end, self.inner
        )
    }

    fn decode(s: &str) -> Option<NearCursor> {
        let mut parts = s.splitn(5, ';');
        if parts.next()? != NEAR_CURSOR {
            return None;
        }
        let mut number = || parts.next()?.parse::<Nanos>().ok();
        let (until, start, end) = (number()?, number()?, number()?);
        Some(NearCursor {
            until,
            start,
            end,
            inner: parts.next()?.to_string(),
        })
    }
}

/// `~/query_near`: the intervals when the robot was within `radius` of the
/// point, and the messages of `topics` inside them, oldest first, paged
/// like `~/query_range`.
pub fn query_near(store: &Store, places: &Places, input: &NearInput, limits: Limits) -> NearOutput {
    let fail = |message: String| NearOutput {
        message,
        ..NearOutput::default()
    };
    if let Some(bad) = input.point.iter().find(|v| !v.is_finite()) {
        return fail(format!("the position must be finite, not {bad}"));
    }
    if !(input.radius.is_finite() && input.radius > 0.0) {
        return fail(format!(
            "radius must be a distance in metres > 0, not {}",
            input.radius
        ));
    }
    let (start, end) = match time_range(input.start, input.end) {
        Ok(r) => r,
        Err(m) => return fail(m),
    };
    let ids = match resolve_topics(store, &input.topics) {
        Ok(ids) => ids,
        Err(m) => return fail(m),
    };
    let cursor = if input.cursor.is_empty() {
        None
    } else {
        match NearCursor::decode(&input.cursor) {
            Some(c) => Some(c),
            None => return fail("cursor rejected (not a ~/query_near cursor); pass the next_cursor of the previous page, or an empty cursor to start over".into()),
        }
    };
    let q = crate::places::Query {
        point: input.point,
        radius: input.radius,
        use_z: input.use_z,
        start,
        end: end.saturating_sub(1),
    };
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let found = match places.near(
        nonempty(&input.pose_topic).as_deref(),
        nonempty(&input.frame_id).as_deref(),
        &q,
        cursor.as_ref().map(|c| c.until),
        BUILD_WAIT,
    ) {
        Ok(f) => f,
        Err(m) => return fail(m),
    };
    let mut notes = Vec::new();
    if found.undecodable > 0 {
        notes.push(format!(
            "{} messages of {} did not decode to a pose and are not in the index",
            found.undecodable, found.topic
        ));
    }
    notes.extend(store_state_note(store));
    let mut out = NearOutput {
        success: true,
        pose_topic: found.topic.clone(),
        frame_id: found.frame.clone(),
        ..NearOutput::default()
    };
    if !ids.is_empty() {
        let query = QueryInput {
            max_messages: input.max_messages,
            max_bytes: input.max_bytes,
            ..QueryInput::default()
        };
        let (max_messages, max_bytes, clamped) = page_limits(&query, limits);
        notes.extend(clamped);
        match near_messages(store, &ids, &found, cursor, max_messages, max_bytes) {
            Ok((records, next)) => {
                if let [only] = records.as_slice() {
                    if only.payload.len() as u64 > max_bytes {
                        notes.push(format!(
                            "one message of {} bytes is larger than max_bytes {max_bytes}: returned alone",
                            only.payload.len()
                        ));
                    }
                }
                let topics = names_by_id(store);
                out.messages = records.into_iter().map(|r| stored(&topics, r)).collect();
                out.next_cursor = next.map(|c| c.encode()).unwrap_or_default();
            }
            Err(m) => return fail(m),
        }
    }
    out.intervals = found.intervals;
    out.message = notes.join("; ");
    out
}

/// One page of the messages of `ids` inside `found`'s intervals, from
/// `cursor` on, and where the next page starts.
fn near_messages(
    store: &Store,
    ids: &[u32],
    found: &crate::places::live::Found,
    cursor: Option<NearCursor>,
    max_messages: usize,
    max_bytes: u64,
) -> Result<(Vec<Record>, Option<NearCursor>), String> {
    let intervals = &found.intervals;
    let windows = crate::places::windows(intervals);
    let (mut i, mut inner) = match cursor {
        None => (0, None),
        Some(c) => {
            let i = intervals
                .iter()
                .position(|iv| iv.start == c.start && iv.end == c.end)
                .ok_or_else(|| {
                    format!(
                        "the intervals changed since the first page (retention dropped poses of {}, late poses arrived, or the query is not the same): start over with an empty cursor",
                        found.topic
                    )
                })?;
            (i, (!c.inner.is_empty()).then_some(c.inner))
        }
    };
    let at = |i: usize, inner: Option<String>| NearCursor {
        until: found.newest,
        start: intervals[i].start,
        end: intervals[i].end,
        inner: inner.unwrap_or_default(),
    };
    let (mut records, mut bytes) = (Vec::new(), 0u64);
    while i < intervals.len() {
        let (start, end) = windows[i];
        if start == end {
            (i, inner) = (i + 1, None);
            continue;
        }
        if records.len() >= max_messages || bytes >= max_bytes {
            return Ok((records, Some(at(i, inner))));
        }
        let request = ScanRequest {
            topics: ids.to_vec(),
            start,
            end,
            newest_first: false,
            max_messages: max_messages - records.len(),
            max_bytes: max_bytes - bytes,
            cursor: inner.clone(),
        };
        let page = store.scan(&request).map_err(|e| match e {
            crate::engine::Error::InvalidCursor(why) => format!(
                "cursor rejected ({why}); pass the next_cursor of the previous page of the same query, or an empty cursor to start over"
            ),
            e => format!("query failed: {e}"),
        })?;
        let size: u64 = page.records.iter().map(|r| r.payload.len() as u64).sum();
        if !records.is_empty() && bytes + size > max_bytes {
            // A message larger than what is left of max_bytes: the scan
            // returns it alone; it starts the next page instead.
            return Ok((records, Some(at(i, inner))));
        }
        bytes += size;
        records.extend(page.records);
        match page.next_cursor {
            Some(next) => return Ok((records, Some(at(i, Some(next))))),
            None => {
                i += 1;
                inner = None;
            }
        }
    }
    Ok((records, None))
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatestOutput {
    pub success: bool,
    pub message: String,
    pub found: bool,
    pub record: Option<Stored>,
}

/// Newest message of `topic` at or before `at` (zero: now).
pub fn get_latest(store: &Store, topic: &str, at: Stamp) -> LatestOutput {
    let fail = |message: String| LatestOutput {
        message,
        ..LatestOutput::default()
    };
    let Some(info) = store.topic_by_name(topic) else {
        return fail(format!(
            "unknown topic {topic:?}; call ~/list_topics for the recorded ones"
        ));
    };
    let at = if at.is_zero() {
        Nanos::MAX
    } else {
        match at.to_nanos() {
            Some(n) => n,
            None => {
                return fail(format!(
                    "at {}.{:09} is not a valid time",
                    at.sec, at.nanosec
                ))
            }
        }
    };
    match store.latest(info.id, at) {
        Ok(record) => LatestOutput {
            success: true,
            message: String::new(),
            found: record.is_some(),
            record: record.map(|record| Stored {
                topic: info.spec.name.clone(),
                type_name: info.spec.type_name.clone(),
                record,
            }),
        },
        Err(e) => fail(format!("query failed: {e}")),
    }
}

/// Recorded topics, sorted by name.
pub fn list_topics(store: &Store) -> Vec<TopicInfo> {
    let mut topics = store.topics();
    topics.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    topics
}

/// A note for answers given while the store refuses writes.
pub fn store_state_note(store: &Store) -> Option<String> {
    (store.write_state() == WriteState::Stop)
        .then(|| "store is in Stop state: recording paused, queries still served".to_string())
}

/// What a client asked in `~/export_mcap`.
#[derive(Clone, Debug, Default)]
pub struct ExportInput {
    pub topics: Vec<String>,
    pub start: Stamp,
    pub end: Stamp,
    pub output: String,
    pub compression: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportOutput {
    pub success: bool,
    pub message: String,
    pub path: String,
    pub message_count: u64,
    pub size_bytes: u64,
}

/// Fault injection for the node tests: with `MOTEDB_TEST_EXPORT_STALL=1`
/// an export stops at its first progress report (after its last record at
/// the latest) until it is cancelled, so a test can stop the node while an
/// export is surely running.
fn test_export_stall() -> bool {
    std::env::var("MOTEDB_TEST_EXPORT_STALL").as_deref() == Ok("1")
}

fn stall_until_cancelled(cancel: &std::sync::atomic::AtomicBool) {
    while !cancel.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Exports to `<export_directory>/<output>` (runs on a worker thread);
/// `cancel` set (the node shutting down) stops it and removes the partial
/// bag.
pub fn export_mcap(
    store: &Store,
    input: &ExportInput,
    export_directory: &std::path::Path,
    cancel: &std::sync::atomic::AtomicBool,
) -> ExportOutput {
    let fail = |message: String| ExportOutput {
        message,
        ..ExportOutput::default()
    };
    let compression = match input.compression.parse::<crate::export::McapCompression>() {
        Ok(c) => c,
        Err(m) => return fail(m),
    };
    let (start, end) = match time_range(input.start, input.end) {
        Ok((s, e)) => (s, if e == Nanos::MAX { 0 } else { e }),
        Err(m) => return fail(m),
    };
    let opts = crate::export::ExportOptions {
        topics: input.topics.clone(),
        start,
        end,
        output: std::path::PathBuf::from(&input.output),
        beneath: Some(export_directory.to_path_buf()),
        compression,
        split_bytes: None,
        split_duration: None,
        marks: Vec::new(),
    };
    let stall = |_: u64, _: u64| stall_until_cancelled(cancel);
    let ctl = crate::export::ExportControl {
        cancel: Some(cancel),
        progress: test_export_stall().then_some(&stall as crate::export::ProgressFn<'_>),
    };
    match crate::export::export_bag_with(store, &opts, &ctl) {
        Ok(summary) => ExportOutput {
            success: true,
            message: String::new(),
            path: summary.path.display().to_string(),
            message_count: summary.message_count,
            size_bytes: summary.size_bytes,
        },
        Err(e) => fail(format!("export failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn mark_windows_saturate_and_never_reach_more_than_an_hour_ahead() {
        let now = 10 * NANOS_PER_SEC;
        let around = |pre_s: f64, post_s: f64| {
            mark_window(
                &MarkInput {
                    pre_s,
                    post_s,
                    ..MarkInput::default()
                },
                Some(now),
            )
        };
        assert_eq!(
            around(2.5, 1.0),
            Ok((now - 2_500_000_000, now + NANOS_PER_SEC))
        );
        assert_eq!(around(1e300, 0.0), Ok((0, now)), "saturates at 0");
        assert_eq!(around(0.0, 3600.0), Ok((now, now + MAX_PIN_AHEAD)));
        for post in [3600.5, 1e300] {
            let e = around(0.0, post).unwrap_err();
            assert!(e.contains("at most 3600 s ahead"), "{e}");
        }
        let given = |start: Stamp, end: Stamp, pre_s: f64| {
            mark_window(
                &MarkInput {
                    start,
                    end,
                    pre_s,
                    ..MarkInput::default()
                },
                Some(now),
            )
        };
        let far = Stamp {
            sec: i32::MAX,
            nanosec: 0,
        };
        assert!(given(Stamp { sec: 1, nanosec: 0 }, far, 0.0)
            .unwrap_err()
            .contains("ahead"));
        // Any pre_s, however small, with start/end is refused.
        assert!(given(Stamp { sec: 1, nanosec: 0 }, Stamp::default(), 1e-12)
            .unwrap_err()
            .contains("not both"));
        // With use_sim_time before the first /clock: only a given window,
        // and nothing to bound it by.
        let e = mark_window(&MarkInput::default(), None).unwrap_err();
        assert!(e.contains("no /clock"), "{e}");
    }

    #[test]
    fn unpin_says_what_it_did_and_refuses_an_unknown_mark() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), crate::engine::Options::default()).unwrap();
        let input = MarkInput {
            label: "a".into(),
            start: Stamp { sec: 1, nanosec: 0 },
            end: Stamp { sec: 2, nanosec: 0 },
            pin: true,
            ..MarkInput::default()
        };
        let made = add_mark(&store, &input, Some(3 * NANOS_PER_SEC));
        assert!(made.success, "{}", made.message);
        let id = made.mark.unwrap().id;
        let first = unpin(&store, id);
        assert!(
            first.success && first.message.contains("unpinned"),
            "{}",
            first.message
        );
        let again = unpin(&store, id);
        assert!(
            again.success && again.message.ends_with("is not pinned"),
            "{}",
            again.message
        );
        let unknown = unpin(&store, id + 1);
        assert!(!unknown.success && unknown.message.contains("no mark"));
    }

    #[test]
    fn pause_and_resume_say_whether_the_state_changed() {
        let stats = Stats::default();
        assert!(!stats.is_paused());
        assert_eq!(
            set_paused(&stats, false),
            (true, "already recording".into())
        );
        let (ok, message) = set_paused(&stats, true);
        assert!(ok && message.starts_with("paused"), "{message}");
        assert!(stats.is_paused());
        assert!(
            stats.take_urgent(),
            "a change goes out on /diagnostics at once"
        );
        assert_eq!(set_paused(&stats, true), (true, "already paused".into()));
        assert!(!stats.take_urgent());
        assert_eq!(set_paused(&stats, false), (true, "recording".into()));
        assert!(!stats.is_paused());
    }

    /// A robot out along x at 1 m/s and back (a pose a second, t = 1..=60 s,
    /// x = t up to 30 then 60 - t), with a camera message every half second.
    fn shuttle_store() -> (tempfile::TempDir, Arc<Store>, Arc<Places>) {
        use crate::places::decode::testing::{definition, pose_stamped};
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), crate::engine::Options::default()).unwrap());
        let places = Places::open(&store, Vec::new()).unwrap();
        let pose = crate::engine::TopicSpec {
            name: "/pose".into(),
            type_name: "geometry_msgs/msg/PoseStamped".into(),
            serialization_format: "cdr".into(),
            definition: definition(),
            ..Default::default()
        };
        let id = store.register_topic(pose.clone()).unwrap();
        places.register(id, &pose);
        let cam = store
            .register_topic(crate::engine::TopicSpec {
                name: "/cam".into(),
                type_name: "std_msgs/msg/String".into(),
                serialization_format: "cdr".into(),
                ..Default::default()
            })
            .unwrap();
        for t in 1..=60u64 {
            let x = if t <= 30 { t } else { 60 - t } as f64;
            let payload = pose_stamped("map", [x, 0.0, 0.0]);
            store.append(id, t * NANOS_PER_SEC, 0, &payload).unwrap();
            places.observe(id, t * NANOS_PER_SEC, &payload);
            for half in [0, NANOS_PER_SEC / 2] {
                let at = t * NANOS_PER_SEC + half;
                store.append(cam, at, 0, &at.to_le_bytes()).unwrap();
            }
        }
        (dir, store, places)
    }

    #[test]
    fn query_near_gives_every_pass_and_pages_through_their_messages() {
        let (_dir, store, places) = shuttle_store();
        let limits = Limits {
            max_messages: 1000,
            max_bytes: 1 << 20,
        };
        let mut input = NearInput {
            point: [10.0, 3.0, 0.0],
            radius: 5.0,
            topics: vec!["/cam".into()],
            max_messages: 3,
            ..NearInput::default()
        };
        // Within 5 m of (10, 3): |x - 10| <= 4, i.e. x in 6..=14: t 6..=14
        // out and t 46..=54 back; closest at x = 10 (t 10 and 50), 3 m.
        let s = NANOS_PER_SEC;
        let mut got = Vec::new();
        let mut intervals = None;
        loop {
            let out = query_near(&store, &places, &input, limits);
            assert!(out.success, "{}", out.message);
            assert_eq!(
                (out.pose_topic.as_str(), out.frame_id.as_str()),
                ("/pose", "map")
            );
            assert!(out.messages.len() <= 3);
            let spans: Vec<_> = out
                .intervals
                .iter()
                .map(|iv| (iv.start, iv.end, iv.closest, iv.distance))
                .collect();
            assert_eq!(
                spans,
                [(6 * s, 14 * s, 10 * s, 3.0), (46 * s, 54 * s, 50 * s, 3.0)]
            );
            intervals.get_or_insert(spans);
            got.extend(out.messages.iter().map(|m| m.record.log_time));
            if out.next_cursor.is_empty() {
                break;
            }
            input.cursor = out.next_cursor;
        }
        // Both ends of each interval included: the half second after its
        // last pose is outside it.
        let want: Vec<Nanos> = (6 * 2..=14 * 2)
            .chain(46 * 2..=54 * 2)
            .map(|h| h * s / 2)
            .collect();
        assert_eq!(got, want);

        // A time range cuts the intervals; no topics: intervals only.
        let cut = query_near(
            &store,
            &places,
            &NearInput {
                point: [10.0, 3.0, 0.0],
                radius: 5.0,
                start: Stamp { sec: 8, nanosec: 0 },
                end: Stamp {
                    sec: 47,
                    nanosec: 0,
                },
                ..NearInput::default()
            },
            limits,
        );
        assert!(cut.success, "{}", cut.message);
        let spans: Vec<_> = cut.intervals.iter().map(|iv| (iv.start, iv.end)).collect();
        assert_eq!(spans, [(8 * s, 14 * s), (46 * s, 46 * s)]);
        assert!(cut.messages.is_empty() && cut.next_cursor.is_empty());
    }

    #[test]
    fn query_near_pages_never_exceed_max_bytes_across_intervals() {
        let (_dir, store, places) = shuttle_store();
        let limits = Limits {
            max_messages: 1000,
            max_bytes: 1 << 20,
        };
        let mut input = NearInput {
            point: [10.0, 0.0, 0.0],
            radius: 0.5,
            topics: vec!["/cam".into(), "/pose".into()],
            max_bytes: 100,
            ..NearInput::default()
        };
        let mut pages = Vec::new();
        loop {
            let out = query_near(&store, &places, &input, limits);
            assert!(out.success, "{}", out.message);
            let sizes: u64 = out
                .messages
                .iter()
                .map(|m| m.record.payload.len() as u64)
                .sum();
            assert!(out.messages.len() == 1 || sizes <= 100, "{sizes} bytes");
            pages.push(
                out.messages
                    .iter()
                    .map(|m| (m.topic.clone(), m.record.log_time))
                    .collect::<Vec<_>>(),
            );
            if out.next_cursor.is_empty() {
                break;
            }
            input.cursor = out.next_cursor;
        }
        let all: Vec<_> = pages.concat();
        let s = NANOS_PER_SEC;
        // t = 10 and t = 50: a pose and a camera message at each.
        let topics = |t: u64| [("/cam".to_string(), t), ("/pose".to_string(), t)];
        let mut want: Vec<_> = topics(10 * s).into_iter().chain(topics(50 * s)).collect();
        want.sort_by_key(|(name, t)| (*t, name.clone()));
        let mut sorted = all.clone();
        sorted.sort_by_key(|(name, t)| (*t, name.clone()));
        assert_eq!(sorted, want);
        assert!(all.windows(2).all(|w| w[0].1 <= w[1].1), "oldest first");
    }

    #[test]
    fn query_near_refuses_bad_input_with_the_reason() {
        let (_dir, store, places) = shuttle_store();
        let limits = Limits {
            max_messages: 10,
            max_bytes: 1000,
        };
        let ask = |f: &dyn Fn(&mut NearInput)| {
            let mut input = NearInput {
                radius: 1.0,
                ..NearInput::default()
            };
            f(&mut input);
            let out = query_near(&store, &places, &input, limits);
            assert!(!out.success, "accepted");
            out.message
        };
        type Change<'a> = &'a dyn Fn(&mut NearInput);
        let cases: [(Change, &str); 8] = [
            (&|i| i.radius = -1.0, "radius must be"),
            (&|i| i.radius = 0.0, "radius must be"),
            (&|i| i.radius = f64::NAN, "radius must be"),
            (&|i| i.point[1] = f64::INFINITY, "must be finite"),
            (
                &|i| i.pose_topic = "/cam".into(),
                "not a recorded pose topic",
            ),
            (
                &|i| i.frame_id = "odom".into(),
                "no poses in frame \"odom\"",
            ),
            (
                &|i| i.topics = vec!["/nope".into()],
                "unknown topic(s): /nope",
            ),
            (&|i| i.cursor = "garbage".into(), "cursor rejected"),
        ];
        for (change, reason) in cases {
            let message = ask(change);
            assert!(message.contains(reason), "{message:?} lacks {reason:?}");
        }
        let bare_dir = tempfile::tempdir().unwrap();
        let bare =
            Arc::new(Store::open(bare_dir.path(), crate::engine::Options::default()).unwrap());
        let none = Places::open(&bare, Vec::new()).unwrap();
        let out = query_near(
            &bare,
            &none,
            &NearInput {
                radius: 1.0,
                ..NearInput::default()
            },
            limits,
        );
        assert!(
            !out.success && out.message.contains("no pose source recorded"),
            "{}",
            out.message
        );
    }

    #[test]
    fn stamp_round_trip_and_invalid() {
        let s = Stamp::from_nanos(1_700_000_000_123_456_789);
        assert_eq!(s.sec, 1_700_000_000);
        assert_eq!(s.nanosec, 123_456_789);
        assert_eq!(s.to_nanos(), Some(1_700_000_000_123_456_789));
        assert_eq!(
            Stamp {
                sec: -1,
                nanosec: 0
            }
            .to_nanos(),
            None
        );
        assert_eq!(
            Stamp {
                sec: 0,
                nanosec: 1_000_000_000
            }
            .to_nanos(),
            None
        );
    }

    #[test]
    fn empty_or_inverted_range_is_rejected() {
        let t = |s| Stamp { sec: s, nanosec: 0 };
        assert!(time_range(t(5), t(5)).is_err());
        assert!(time_range(t(6), t(5)).unwrap_err().contains("not before"));
        assert_eq!(time_range(t(0), t(0)).unwrap(), (0, Nanos::MAX));
    }

    #[test]
    fn max_bytes_is_a_hard_cap_and_an_oversized_message_comes_alone_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s"), crate::engine::Options::default()).unwrap();
        let id = store
            .register_topic(crate::engine::TopicSpec {
                name: "/b".into(),
                type_name: "std_msgs/msg/String".into(),
                serialization_format: "cdr".into(),
                ..Default::default()
            })
            .unwrap();
        for (i, len) in [300usize, 300, 300, 5000, 300].into_iter().enumerate() {
            store.append(id, 1 + i as u64, 0, &vec![7u8; len]).unwrap();
        }
        let limits = Limits {
            max_messages: 100,
            max_bytes: 700,
        };
        let mut input = QueryInput {
            topics: vec!["/b".into()],
            ..QueryInput::default()
        };
        let mut pages = Vec::new();
        loop {
            let out = query_range(&store, &input, limits);
            assert!(out.success, "{}", out.message);
            let sizes: Vec<usize> = out
                .messages
                .iter()
                .map(|m| m.record.payload.len())
                .collect();
            pages.push((sizes, out.message.clone()));
            if out.next_cursor.is_empty() {
                break;
            }
            input.cursor = out.next_cursor;
        }
        let sizes: Vec<&Vec<usize>> = pages.iter().map(|(s, _)| s).collect();
        assert_eq!(
            sizes,
            [&vec![300, 300], &vec![300], &vec![5000], &vec![300]]
        );
        assert!(
            pages[2].1.contains("larger than max_bytes 700"),
            "{}",
            pages[2].1
        );
        assert!(pages[0].1.is_empty(), "{}", pages[0].1);
        store.close().unwrap();
    }

    #[test]
    fn limits_default_and_clamp_with_a_note() {
        let limits = Limits {
            max_messages: 100,
            max_bytes: 1000,
        };
        let input = QueryInput::default();
        assert_eq!(page_limits(&input, limits), (100, 1000, vec![]));
        let input = QueryInput {
            max_messages: 500,
            max_bytes: 10,
            ..QueryInput::default()
        };
        let (m, b, notes) = page_limits(&input, limits);
        assert_eq!((m, b), (100, 10));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("clamped"));
    }
}
