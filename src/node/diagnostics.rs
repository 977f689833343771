//! Turns the engine's health snapshot and the recorder's counters into
//! diagnostic statuses (diagnostic_msgs/DiagnosticStatus without the ROS
//! types). The rules say what a person reading rqt_robot_monitor should do.

use crate::engine::{Health, RecoveryReport, WriteState};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok = 0,
    Warn = 1,
    Error = 2,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub level: Level,
    pub name: String,
    pub message: String,
    pub hardware_id: String,
    pub values: Vec<(String, String)>,
}

/// The status names of a node named `motedb` in the root namespace; a
/// node elsewhere uses its own name (`Composer::for_node`).
pub const STORAGE: &str = "motedb: storage";
pub const COMPACTION: &str = "motedb: compaction";
pub const RECORDER: &str = "motedb: recorder";
pub const OFFLOAD: &str = "motedb: offload";

/// Failed offload rounds in a row before the status turns ERROR.
pub const OFFLOAD_ERROR_AFTER: u64 = 3;

/// The recorder's counters at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecorderSnapshot {
    pub topics_recorded: u64,
    pub messages_received: u64,
    pub messages_dropped: u64,
    pub gaps_detected: u64,
    pub queue_depth: u64,
    pub queue_capacity: u64,
    pub queue_bytes: u64,
    pub queue_max_bytes: u64,
    /// Free bytes on the store's disk (None: not measured yet).
    pub disk_free: Option<u64>,
    /// `storage.min_free_bytes` (0: off).
    pub min_free_bytes: u64,
    /// Why writing stopped for lack of free space, while it is stopped.
    pub disk_guard: Option<String>,
    /// use_sim_time and no /clock received yet.
    pub waiting_for_clock: bool,
    /// Publisher sequence gaps can be counted with this middleware.
    pub gap_detection: bool,
    /// QoS mismatches and re-subscriptions since the start.
    pub qos_events: u64,
    /// Times /clock went back since the start.
    pub clock_jumps_back: u64,
    /// Topics seen on the graph that could not be subscribed, with why.
    pub unresolved_types: Vec<String>,
    /// Topics recorded without a message definition.
    pub without_definition: Vec<String>,
    /// The recorder's last error (a refused write, a failed take, ...).
    pub last_error: String,
    /// Why the recorder thread is not taking messages, while it is down.
    pub down: Option<String>,
    /// Paused by `~/pause` (or `start_paused`).
    pub paused: bool,
    /// Messages taken and discarded while paused since the start.
    pub skipped_while_paused: u64,
    /// The offload's state (None: `offload.url` not set).
    pub offload: Option<crate::remote::OffloadStatus>,
}

/// Paces `/diagnostics` by `diagnostic_updater.period`, which may change
/// while the node runs: a timer ticks every `TICK` and publishes when `due`.
#[derive(Debug, Default)]
pub struct Pacer {
    last: Option<std::time::Instant>,
}

impl Pacer {
    pub const TICK: std::time::Duration = std::time::Duration::from_millis(50);

    /// True (and restarts the period) when `period` has passed since the
    /// last publication, or nothing was published yet.
    pub fn due(&mut self, period: std::time::Duration) -> bool {
        if self.last.is_some_and(|t| t.elapsed() < period) {
            return false;
        }
        self.last = Some(std::time::Instant::now());
        true
    }
}

/// Remembers the previous period's counters so "drops in the last period"
/// and "compactions failed since last period" can be told apart from old
/// history.
#[derive(Debug, Default)]
pub struct Composer {
    hardware_id: String,
    /// The client library of this build, e.g. `rclrs 0.8.0`.
    client_library: &'static str,
    last_dropped: u64,
    last_failed: u64,
    last_jumps: u64,
    last_gaps: u64,
    last_qos: u64,
    last_pins_released: u64,
    /// Prefix of the status names.
    node: String,
}

/// Accumulates a level and the reasons for it.
struct Verdict {
    level: Level,
    reasons: Vec<String>,
}

impl Verdict {
    fn new() -> Verdict {
        Verdict {
            level: Level::Ok,
            reasons: Vec::new(),
        }
    }

    fn raise(&mut self, level: Level, reason: String) {
        self.level = self.level.max(level);
        self.reasons.push(reason);
    }

    fn into_message(self, ok: &str) -> (Level, String) {
        if self.reasons.is_empty() {
            (self.level, ok.to_string())
        } else {
            (self.level, self.reasons.join("; "))
        }
    }
}

fn kv(key: &str, value: impl ToString) -> (String, String) {
    (key.to_string(), value.to_string())
}

fn write_state_name(state: WriteState) -> &'static str {
    match state {
        WriteState::Normal => "normal",
        WriteState::SlowDown => "slow_down",
        WriteState::Stop => "stop",
    }
}

impl Composer {
    pub fn new(hardware_id: &str, client_library: &'static str) -> Composer {
        Composer {
            hardware_id: hardware_id.to_string(),
            client_library,
            node: "motedb".into(),
            ..Composer::default()
        }
    }

    /// Names the statuses `<node>: storage` etc. as diagnostic_updater
    /// does, with the node's fully qualified name minus the leading slash
    /// (`robot7/db: storage`), so nodes in different namespaces do not
    /// collide on /diagnostics.
    pub fn for_node(mut self, fully_qualified: &str) -> Composer {
        self.node = fully_qualified.trim_start_matches('/').to_string();
        self
    }

    /// The three statuses for one period, and the offload's when it is on.
    pub fn compose(&mut self, health: &Health, recorder: &RecorderSnapshot) -> Vec<Status> {
        let mut statuses = vec![
            self.storage(health, recorder),
            self.compaction(health),
            self.recorder(health, recorder),
        ];
        if let Some(o) = &recorder.offload {
            statuses.push(self.offload(health, o));
        }
        self.last_dropped = recorder.messages_dropped;
        self.last_failed = health.compactions_failed;
        self.last_jumps = recorder.clock_jumps_back;
        self.last_gaps = recorder.gaps_detected;
        self.last_qos = recorder.qos_events;
        self.last_pins_released = health.pins_released;
        statuses
    }

    fn status(&self, task: &str, v: Verdict, ok: &str, values: Vec<(String, String)>) -> Status {
        let (level, message) = v.into_message(ok);
        Status {
            level,
            name: format!("{}: {task}", self.node),
            message,
            hardware_id: self.hardware_id.clone(),
            values,
        }
    }

    fn storage(&self, h: &Health, r: &RecorderSnapshot) -> Status {
        let mut v = Verdict::new();
        if h.poisoned {
            v.raise(
                Level::Error,
                "store poisoned by a write failure; recording stopped: check the disk, then restart motedb_node".into(),
            );
        }
        if let Some(why) = &h.write_stopped {
            v.raise(
                Level::Error,
                format!("writes stopped: {why}; recording resumes by itself once writing succeeds again (free disk space)"),
            );
        } else if h.write_state == WriteState::Stop {
            v.raise(
                Level::Error,
                "writes stopped: compaction cannot keep up or quota reached; free space or raise retention.max_bytes".into(),
            );
        }
        if let Some(why) = &r.disk_guard {
            v.raise(
                Level::Error,
                format!("writes stopped: {why}; they resume once the disk has more free space (free space or lower storage.min_free_bytes)"),
            );
        } else if let Some(free) = r
            .disk_free
            .filter(|f| r.min_free_bytes > 0 && *f < r.min_free_bytes.saturating_mul(2))
        {
            v.raise(
                Level::Warn,
                format!(
                    "{free} bytes free on the store's disk, near storage.min_free_bytes {}",
                    r.min_free_bytes
                ),
            );
        }
        if !h.quarantined.is_empty() {
            v.raise(
                Level::Warn,
                format!(
                    "{} table(s) quarantined after checksum errors, their records are no longer readable: {}",
                    h.quarantined.len(),
                    h.quarantined.join("; ")
                ),
            );
        }
        if h.quota_bytes > 0 && h.disk_bytes >= h.quota_bytes {
            v.raise(
                Level::Error,
                format!(
                    "disk full: {} of {} quota bytes used",
                    h.disk_bytes, h.quota_bytes
                ),
            );
        } else if h.quota_bytes > 0
            && h.disk_bytes.saturating_mul(10) >= h.quota_bytes.saturating_mul(9)
        {
            v.raise(
                Level::Warn,
                format!(
                    "disk at {}% of quota",
                    h.disk_bytes.saturating_mul(100) / h.quota_bytes
                ),
            );
        }
        if h.write_state == WriteState::SlowDown {
            v.raise(
                Level::Warn,
                "writes slowed down: compaction is behind".into(),
            );
        }
        let released = h.pins_released.saturating_sub(self.last_pins_released);
        if released > 0 {
            v.raise(
                Level::Warn,
                format!(
                    "{released} pin(s) released, oldest first, their windows may now be dropped: {}; raise retention.pinned_max_bytes or unpin marks",
                    h.last_pin_released.as_deref().unwrap_or("")
                ),
            );
        }
        let values = vec![
            kv("write_state", write_state_name(h.write_state)),
            kv("poisoned", h.poisoned),
            kv("disk_bytes", h.disk_bytes),
            kv("quota_bytes", h.quota_bytes),
            kv(
                "disk_free_bytes",
                r.disk_free.map_or_else(String::new, |f| f.to_string()),
            ),
            kv("min_free_bytes", r.min_free_bytes),
            kv("wal_bytes", h.wal_bytes),
            kv("messages_stored", h.messages_stored),
            kv("messages_dropped", r.messages_dropped),
            kv("retention_dropped_messages", h.retention_dropped_messages),
            kv("last_error", h.last_error.as_deref().unwrap_or("")),
            kv("write_stopped", h.write_stopped.as_deref().unwrap_or("")),
            kv("quarantined_tables", h.quarantined.join("; ")),
            kv("recovery_torn_tails", torn_tails(&h.recovery)),
            kv("recovery_records_dropped", h.recovery.dropped_records),
            kv("value_compression", compression_summary(h)),
            kv("marks", h.marks),
            kv("pinned_bytes", h.pinned_bytes),
            kv(
                "pinned_max_bytes",
                if h.pin_budget == u64::MAX {
                    "unlimited".to_string()
                } else {
                    h.pin_budget.to_string()
                },
            ),
            kv("pins_released", h.pins_released),
        ];
        self.status("storage", v, "OK", values)
    }

    fn offload(&self, h: &Health, o: &crate::remote::OffloadStatus) -> Status {
        let mut v = Verdict::new();
        if o.refused {
            v.raise(
                Level::Error,
                format!(
                    "offload refused (checked again every period): {}",
                    o.last_error
                ),
            );
        } else if o.failures_in_a_row > 0 {
            let level = if o.failures_in_a_row >= OFFLOAD_ERROR_AFTER {
                Level::Error
            } else {
                Level::Warn
            };
            v.raise(
                level,
                format!(
                    "{} offload round(s) in a row failed, retried every period: {}",
                    o.failures_in_a_row, o.last_error
                ),
            );
        } else if o.last_success_ns.is_none() {
            v.raise(Level::Warn, "first offload round not finished yet".into());
        }
        let values = vec![
            kv("url", &o.url),
            kv("state", if o.pushing { "pushing" } else { "waiting" }),
            kv("rounds", o.rounds),
            kv("failures_in_a_row", o.failures_in_a_row),
            kv("last_error", &o.last_error),
            kv(
                "last_success",
                o.last_success_ns
                    .map_or_else(String::new, crate::export::timearg::format_time),
            ),
            kv("generation", o.generation),
            kv("remote_bytes", o.remote_bytes),
            kv("backlog_bytes", h.disk_bytes.saturating_sub(o.remote_bytes)),
            kv("uploaded_bytes", o.uploaded_bytes),
        ];
        self.status("offload", v, "OK", values)
    }

    fn compaction(&self, h: &Health) -> Status {
        let mut v = Verdict::new();
        if h.l0_slowdown_trigger > 0 && h.l0_files > h.l0_slowdown_trigger {
            v.raise(
                Level::Warn,
                format!(
                    "{} L0 files above the threshold of {}: compaction is behind the ingest rate",
                    h.l0_files, h.l0_slowdown_trigger
                ),
            );
        }
        if h.compactions_failed > self.last_failed {
            v.raise(
                Level::Warn,
                format!(
                    "{} compactions failed since the last report; see last_error",
                    h.compactions_failed - self.last_failed
                ),
            );
        }
        let values = vec![
            kv("l0_files", h.l0_files),
            kv("l0_slowdown_trigger", h.l0_slowdown_trigger),
            kv("pending_compaction_bytes", h.pending_compaction_bytes),
            kv("compactions_completed", h.compactions_completed),
            kv("compactions_failed", h.compactions_failed),
            kv(
                "write_amplification",
                format!("{:.3}", h.write_amplification),
            ),
            kv("levels", level_summary(h)),
        ];
        self.status("compaction", v, "OK", values)
    }

    fn recorder(&self, h: &Health, r: &RecorderSnapshot) -> Status {
        let mut v = Verdict::new();
        if let Some(why) = &r.disk_guard {
            v.raise(Level::Error, format!("not recording: {why}"));
        }
        if let Some(why) = &r.down {
            v.raise(
                Level::Error,
                format!("not recording: the recorder stopped: {why}"),
            );
        }
        if h.poisoned || h.write_stopped.is_some() || h.write_state == WriteState::Stop {
            v.raise(
                Level::Error,
                "not recording: the store refuses writes".into(),
            );
        }
        if r.paused {
            v.raise(
                Level::Ok,
                "paused: messages are taken and discarded until ~/resume".into(),
            );
        }
        if r.waiting_for_clock {
            v.raise(
                Level::Warn,
                "waiting for the first /clock (use_sim_time): nothing is taken until it comes"
                    .into(),
            );
        }
        let new_gaps = r.gaps_detected.saturating_sub(self.last_gaps);
        if new_gaps > 0 {
            v.raise(
                Level::Warn,
                format!("{new_gaps} messages lost before reaching motedb in the last period (publisher sequence gaps: the subscription history overflowed or the network dropped them); raise subscription_depth or reduce load"),
            );
        }
        if r.qos_events > self.last_qos {
            v.raise(
                Level::Warn,
                format!(
                    "a publisher's QoS changed what can be recorded: {}",
                    r.last_error
                ),
            );
        }
        let new_jumps = r.clock_jumps_back.saturating_sub(self.last_jumps);
        if new_jumps > 0 {
            v.raise(
                Level::Warn,
                format!("/clock jumped back {new_jumps} time(s) in the last period (simulator reset or looped playback); log_time follows it"),
            );
        }
        let new_drops = r.messages_dropped.saturating_sub(self.last_dropped);
        if new_drops > 0 {
            v.raise(
                Level::Warn,
                format!(
                    "{new_drops} messages dropped in the last period (queue full or write refused); raise queue.capacity or reduce load"
                ),
            );
        }
        if !r.unresolved_types.is_empty() {
            v.raise(
                Level::Warn,
                format!(
                    "not recording {} (tried again every 10 s; install the message package)",
                    r.unresolved_types.join(", ")
                ),
            );
        }
        if !r.without_definition.is_empty() {
            v.raise(
                Level::Warn,
                format!(
                    "recording {} without a message definition: bags get empty schemas and decoding needs the package installed",
                    r.without_definition.join(", ")
                ),
            );
        }
        let values = vec![
            kv("topics_recorded", r.topics_recorded),
            kv("messages_received", r.messages_received),
            kv("messages_dropped", r.messages_dropped),
            kv("gaps_detected", r.gaps_detected),
            kv(
                "gap_detection",
                if r.gap_detection {
                    "on"
                } else {
                    "unsupported by the middleware"
                },
            ),
            kv("clock_jumps_back", r.clock_jumps_back),
            kv("qos_events", r.qos_events),
            kv("queue_depth", r.queue_depth),
            kv("queue_capacity", r.queue_capacity),
            kv("queue_bytes", r.queue_bytes),
            kv("queue_max_bytes", r.queue_max_bytes),
            kv("unresolved_types", r.unresolved_types.join(",")),
            kv("without_definition", r.without_definition.join(",")),
            kv("last_error", &r.last_error),
            kv("recorder_down", r.down.as_deref().unwrap_or("")),
            kv("paused", r.paused),
            kv("skipped_while_paused", r.skipped_while_paused),
            kv("client_library", self.client_library),
        ];
        self.status("recorder", v, "recorder", values)
    }
}

/// Per topic with large payloads: the codec in use, stored size as a share
/// of the published size, and how many payloads were encoded or kept raw.
fn compression_summary(h: &Health) -> String {
    h.value_compression
        .iter()
        .map(|(name, s)| {
            let share = if s.bytes_in == 0 {
                100.0
            } else {
                s.bytes_out as f64 * 100.0 / s.bytes_in as f64
            };
            format!(
                "{name}: {} {share:.1}% ({} encoded, {} raw, {} raw while the writer was behind)",
                s.codec.name(),
                s.encoded,
                s.raw,
                s.busy
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn level_summary(h: &Health) -> String {
    h.levels
        .iter()
        .enumerate()
        .map(|(i, l)| format!("L{i}:{}f/{}B", l.files, l.bytes))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Torn WAL tails recovery cut at open, as `file@offset: bytes (why)`.
fn torn_tails(r: &RecoveryReport) -> String {
    r.wal_truncated
        .iter()
        .map(|t| {
            let name = t
                .path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            format!("{name}@{}: {} bytes ({})", t.offset, t.bytes, t.reason)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn healthy() -> Health {
        Health {
            write_state: WriteState::Normal,
            poisoned: false,
            last_error: None,
            write_stopped: None,
            quarantined: Vec::new(),
            recovery: RecoveryReport::default(),
            levels: Vec::new(),
            l0_files: 1,
            l0_slowdown_trigger: 8,
            pending_compaction_bytes: 0,
            compactions_completed: 0,
            compactions_failed: 0,
            bytes_ingested: 0,
            wal_bytes_written: 0,
            flush_bytes_written: 0,
            compaction_bytes_written: 0,
            vlog_bytes_written: 0,
            write_amplification: 1.0,
            disk_bytes: 0,
            quota_bytes: 0,
            wal_bytes: 0,
            messages_stored: 0,
            retention_dropped_files: 0,
            retention_dropped_bytes: 0,
            retention_dropped_messages: 0,
            pinned_bytes: 0,
            pin_budget: u64::MAX,
            marks: 0,
            pins_released: 0,
            last_pin_released: None,
            value_compression: Vec::new(),
        }
    }

    fn levels(c: &mut Composer, h: &Health, r: &RecorderSnapshot) -> Vec<Level> {
        c.compose(h, r).into_iter().map(|s| s.level).collect()
    }

    #[test]
    fn recorder_status_names_the_client_library() {
        let mut c = Composer::new("robot1", "rclrs 0.8.0");
        let st = c.compose(&healthy(), &RecorderSnapshot::default());
        let recorder = st
            .iter()
            .find(|s| s.name == RECORDER)
            .expect("recorder status");
        let value = recorder
            .values
            .iter()
            .find(|(k, _)| k == "client_library")
            .map(|(_, v)| v.as_str());
        assert_eq!(value, Some("rclrs 0.8.0"));
    }

    #[test]
    fn healthy_store_is_ok_with_required_keys() {
        let mut c = Composer::new("robot1", "test 1.0");
        let st = c.compose(&healthy(), &RecorderSnapshot::default());
        let names: Vec<_> = st.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [STORAGE, COMPACTION, RECORDER]);
        assert!(st
            .iter()
            .all(|s| s.level == Level::Ok && s.hardware_id == "robot1"));
        let keys: Vec<_> = st
            .iter()
            .flat_map(|s| s.values.iter().map(|(k, _)| k.as_str()))
            .collect();
        for k in [
            "write_state",
            "l0_files",
            "pending_compaction_bytes",
            "compactions_completed",
            "compactions_failed",
            "write_amplification",
            "disk_bytes",
            "quota_bytes",
            "wal_bytes",
            "messages_stored",
            "messages_dropped",
            "gaps_detected",
            "last_error",
        ] {
            assert!(keys.contains(&k), "missing {k}");
        }
    }

    #[test]
    fn slowdown_and_quota_warn_stop_and_full_disk_error() {
        let mut c = Composer::new("x", "test 1.0");
        let r = RecorderSnapshot::default();
        let mut h = healthy();
        h.write_state = WriteState::SlowDown;
        assert_eq!(levels(&mut c, &h, &r)[0], Level::Warn);
        let mut h = healthy();
        h.quota_bytes = 100;
        h.disk_bytes = 90;
        assert_eq!(levels(&mut c, &h, &r)[0], Level::Warn);
        h.disk_bytes = 100;
        assert_eq!(levels(&mut c, &h, &r)[0], Level::Error);
        let mut h = healthy();
        h.write_state = WriteState::Stop;
        assert_eq!(
            levels(&mut c, &h, &r),
            [Level::Error, Level::Ok, Level::Error]
        );
        let mut h = healthy();
        h.poisoned = true;
        assert_eq!(levels(&mut c, &h, &r)[0], Level::Error);
    }

    #[test]
    fn l0_above_threshold_warns() {
        let mut c = Composer::new("x", "test 1.0");
        let mut h = healthy();
        h.l0_files = 9;
        assert_eq!(
            levels(&mut c, &h, &RecorderSnapshot::default())[1],
            Level::Warn
        );
    }

    #[test]
    fn drops_warn_only_in_the_period_they_happen() {
        let mut c = Composer::new("x", "test 1.0");
        let h = healthy();
        let r = RecorderSnapshot {
            messages_dropped: 3,
            ..RecorderSnapshot::default()
        };
        assert_eq!(levels(&mut c, &h, &r)[2], Level::Warn);
        assert_eq!(levels(&mut c, &h, &r)[2], Level::Ok);
    }

    #[test]
    fn a_stopped_recorder_is_an_error_with_its_reason_and_last_error_shown() {
        let mut c = Composer::new("x", "test 1.0");
        let r = RecorderSnapshot {
            down: Some("rcl_init failed".into()),
            last_error: "recorder stopped: rcl_init failed".into(),
            ..RecorderSnapshot::default()
        };
        let st = c.compose(&healthy(), &r);
        assert_eq!(st[2].level, Level::Error);
        assert!(
            st[2].message.contains("rcl_init failed"),
            "{}",
            st[2].message
        );
        let values: std::collections::BTreeMap<_, _> = st[2].values.iter().cloned().collect();
        assert_eq!(values["recorder_down"], "rcl_init failed");
        assert_eq!(values["last_error"], "recorder stopped: rcl_init failed");
    }

    #[test]
    fn a_paused_recorder_is_ok_and_says_so_with_the_discarded_count() {
        let mut c = Composer::new("x", "test 1.0");
        let r = RecorderSnapshot {
            paused: true,
            skipped_while_paused: 7,
            ..RecorderSnapshot::default()
        };
        let st = c.compose(&healthy(), &r);
        assert_eq!(st[2].level, Level::Ok);
        assert!(st[2].message.starts_with("paused"), "{}", st[2].message);
        let values: std::collections::BTreeMap<_, _> = st[2].values.iter().cloned().collect();
        assert_eq!(values["paused"], "true");
        assert_eq!(values["skipped_while_paused"], "7");
        let st = c.compose(&healthy(), &RecorderSnapshot::default());
        assert_eq!(st[2].message, "recorder");
    }

    #[test]
    fn gaps_clock_jumps_and_waiting_for_clock_warn_in_their_period() {
        let mut c = Composer::new("x", "test 1.0");
        let h = healthy();
        for r in [
            RecorderSnapshot {
                gaps_detected: 4,
                ..RecorderSnapshot::default()
            },
            RecorderSnapshot {
                gaps_detected: 4,
                clock_jumps_back: 1,
                ..RecorderSnapshot::default()
            },
            RecorderSnapshot {
                gaps_detected: 4,
                clock_jumps_back: 1,
                waiting_for_clock: true,
                ..RecorderSnapshot::default()
            },
        ] {
            assert_eq!(levels(&mut c, &h, &r)[2], Level::Warn, "{r:?}");
        }
        let r = RecorderSnapshot {
            gaps_detected: 4,
            clock_jumps_back: 1,
            ..RecorderSnapshot::default()
        };
        assert_eq!(levels(&mut c, &h, &r)[2], Level::Ok, "old news");
    }

    #[test]
    fn status_names_carry_the_node_name_and_namespace() {
        let r = RecorderSnapshot::default();
        let mut c = Composer::new("x", "test 1.0").for_node("/robot7/db");
        let names: Vec<String> = c
            .compose(&healthy(), &r)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(
            names,
            [
                "robot7/db: storage",
                "robot7/db: compaction",
                "robot7/db: recorder"
            ]
        );
        let mut c = Composer::new("x", "test 1.0").for_node("/motedb");
        assert_eq!(c.compose(&healthy(), &r)[0].name, STORAGE);
    }

    #[test]
    fn free_space_warns_near_the_minimum_and_errors_below_it() {
        let mut c = Composer::new("x", "test 1.0");
        let mut r = RecorderSnapshot {
            disk_free: Some(900),
            min_free_bytes: 500,
            ..RecorderSnapshot::default()
        };
        assert_eq!(levels(&mut c, &healthy(), &r)[0], Level::Warn);
        r.disk_free = Some(1000);
        assert_eq!(levels(&mut c, &healthy(), &r)[0], Level::Ok);
        r.disk_free = Some(400);
        r.disk_guard = Some("400 bytes free, below storage.min_free_bytes 500".into());
        let st = c.compose(&healthy(), &r);
        assert_eq!(st[0].level, Level::Error);
        assert_eq!(st[2].level, Level::Error, "the recorder is not recording");
        let values: std::collections::BTreeMap<_, _> = st[0].values.iter().cloned().collect();
        assert_eq!(values["disk_free_bytes"], "400");
        assert_eq!(values["min_free_bytes"], "500");
    }

    #[test]
    fn value_compression_is_shown_per_topic() {
        let mut c = Composer::new("x", "test 1.0");
        let mut h = healthy();
        h.value_compression = vec![
            (
                "/camera".into(),
                crate::engine::TopicCodecStats {
                    codec: crate::engine::Codec::Zstd,
                    encoded: 40,
                    raw: 0,
                    busy: 0,
                    bytes_in: 4000,
                    bytes_out: 500,
                },
            ),
            (
                "/jpeg".into(),
                crate::engine::TopicCodecStats {
                    codec: crate::engine::Codec::Raw,
                    encoded: 0,
                    raw: 40,
                    busy: 3,
                    bytes_in: 4000,
                    bytes_out: 4000,
                },
            ),
        ];
        let st = c.compose(&h, &RecorderSnapshot::default());
        let v = st[0]
            .values
            .iter()
            .find(|(k, _)| k == "value_compression")
            .map(|(_, v)| v.as_str());
        assert_eq!(
            v,
            Some(
                "/camera: zstd 12.5% (40 encoded, 0 raw, 0 raw while the writer was behind); \
                 /jpeg: raw 100.0% (0 encoded, 40 raw, 3 raw while the writer was behind)"
            )
        );
    }

    #[test]
    fn stopped_writes_quarantine_and_torn_tails_are_reported() {
        let mut c = Composer::new("x", "test 1.0");
        let r = RecorderSnapshot::default();
        let mut h = healthy();
        h.write_stopped = Some("WAL write: No space left on device".into());
        let st = c.compose(&h, &r);
        assert_eq!(st[0].level, Level::Error);
        assert!(st[0].message.contains("No space left"), "{}", st[0].message);
        assert_eq!(st[2].level, Level::Error, "the recorder is not recording");
        let mut h = healthy();
        h.quarantined = vec!["/s/000012.sst.bad: checksum mismatch".into()];
        h.recovery.wal_truncated = vec![crate::engine::TornTail {
            path: "/s/wal-000003.log".into(),
            offset: 2109,
            bytes: 66,
            reason: "zero-filled region".into(),
        }];
        let st = c.compose(&h, &r);
        assert_eq!(st[0].level, Level::Warn);
        assert!(
            st[0].message.contains("000012.sst.bad"),
            "{}",
            st[0].message
        );
        let value = |k: &str| {
            st[0]
                .values
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            value("recovery_torn_tails"),
            "wal-000003.log@2109: 66 bytes (zero-filled region)"
        );
    }

    #[test]
    fn offload_status_appears_when_on_and_escalates_with_failures_in_a_row() {
        let mut c = Composer::new("hw", "rclrs");
        assert_eq!(
            c.compose(&healthy(), &RecorderSnapshot::default()).len(),
            3,
            "no offload status when it is off"
        );
        let mut o = crate::remote::OffloadStatus {
            url: "s3://fleet/r".into(),
            ..Default::default()
        };
        let status = |c: &mut Composer, o: &crate::remote::OffloadStatus, disk: u64| {
            let r = RecorderSnapshot {
                offload: Some(o.clone()),
                ..RecorderSnapshot::default()
            };
            let h = Health {
                disk_bytes: disk,
                ..healthy()
            };
            let st = c.compose(&h, &r);
            assert_eq!(st.len(), 4);
            st[3].clone()
        };
        let s = status(&mut c, &o, 0);
        assert_eq!((s.level, s.name.as_str()), (Level::Warn, OFFLOAD));
        assert!(s.message.contains("first offload round"), "{}", s.message);
        o.last_success_ns = Some(1);
        o.remote_bytes = 700;
        o.generation = 4;
        let s = status(&mut c, &o, 1000);
        assert_eq!(s.level, Level::Ok);
        let value = |s: &Status, k: &str| {
            s.values
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(value(&s, "backlog_bytes"), "300");
        assert_eq!(value(&s, "generation"), "4");
        o.failures_in_a_row = 1;
        o.last_error = "connection refused".into();
        let s = status(&mut c, &o, 1000);
        assert_eq!(s.level, Level::Warn);
        assert!(s.message.contains("connection refused"), "{}", s.message);
        o.failures_in_a_row = OFFLOAD_ERROR_AFTER;
        assert_eq!(status(&mut c, &o, 1000).level, Level::Error);
        // Another store's copy at the URL: ERROR at the first refusal.
        o.failures_in_a_row = 1;
        o.refused = true;
        o.last_error = "s3://fleet/r holds the copy of another store".into();
        let s = status(&mut c, &o, 1000);
        assert_eq!(s.level, Level::Error);
        assert!(s.message.contains("offload refused"), "{}", s.message);
        assert!(s.message.contains("another store"), "{}", s.message);
    }
}
