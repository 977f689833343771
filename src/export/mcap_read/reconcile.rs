//! Turning what the linear pass read and what the summary says the file
//! holds into the import report.

use std::collections::BTreeSet;

use mcap::records::ChunkIndex;

use super::super::import::Skipped;
use super::Scan;

impl Scan<'_, '_> {
    /// Turns what was read and what the file says it holds into the report.
    pub(super) fn reconcile(mut self) -> Vec<Skipped> {
        let indexed: Vec<&ChunkIndex> = self
            .summary
            .map(|s| s.chunks.iter().collect())
            .unwrap_or_default();
        let mut seen_in_index = BTreeSet::new();
        for ci in indexed {
            let at = ci.chunk_start_offset;
            seen_in_index.insert(at);
            let expected = self.expected.get(&at).copied().flatten();
            let times = format!(
                "log times {}..={} ns",
                ci.message_start_time, ci.message_end_time
            );
            match self.chunks.get(&at) {
                None => self.skip(
                    Some(at),
                    expected,
                    format!(
                        "indexed chunk ({times}) could not be read: no chunk record at its \
                         offset"
                    ),
                ),
                Some(c) => {
                    let done = c.parsed + c.failed;
                    let lost = expected.map(|e| e.saturating_sub(done));
                    if let Some(err) = &c.error {
                        let reason = format!("damaged chunk ({times}): {err}");
                        self.skip(Some(at), lost, reason);
                    } else if let Some(n) = lost.filter(|&n| n > 0) {
                        let reason = format!(
                            "chunk ({times}) held {} messages by its message indexes, {done} \
                             could be read",
                            done + n
                        );
                        self.skip(Some(at), Some(n), reason);
                    }
                }
            }
        }
        let unindexed: Vec<(u64, String)> = self
            .chunks
            .iter()
            .filter(|(at, _)| !seen_in_index.contains(*at))
            .filter_map(|(at, c)| c.error.clone().map(|e| (*at, e)))
            .collect();
        for (at, err) in unindexed {
            if self.all_in_chunks {
                let reason = format!(
                    "a record the chunk index does not list reads as a damaged chunk ({err}); \
                     every indexed message is accounted for apart from it"
                );
                self.skip(Some(at), Some(0), reason);
            } else {
                self.skip(Some(at), None, format!("damaged chunk: {err}"));
            }
        }
        let indexed_or_counted = self
            .summary
            .is_some_and(|s| !s.chunks.is_empty() || s.stats.is_some());
        if !indexed_or_counted {
            // Without an index nothing tells what an unknown record hid.
            for (at, opcode, len) in std::mem::take(&mut self.unknown_records) {
                self.skip(
                    Some(at),
                    None,
                    format!(
                        "unknown MCAP record opcode {opcode:#04x} ({len} bytes); it may have \
                         held messages"
                    ),
                );
            }
        }
        for (id, n) in std::mem::take(&mut self.unknown_channel) {
            self.skip(
                None,
                Some(n),
                format!("messages on channel {id}, which has no channel record"),
            );
        }
        self.unexplained_by_statistics();
        self.skipped
    }

    /// The statistics count every message; whatever they count beyond the
    /// messages read and those already reported is reported here.
    fn unexplained_by_statistics(&mut self) {
        let Some(stats) = self.summary.and_then(|s| s.stats.as_ref()) else {
            return;
        };
        let reported: u64 = self.skipped.iter().filter_map(|s| s.messages).sum();
        let unknown = self.skipped.iter().filter(|s| s.messages.is_none()).count();
        let accounted = self.parsed.saturating_add(reported);
        if accounted > stats.message_count {
            // More than the file declares: some damaged record read as a
            // message, and no index could tell which.
            self.skip(
                None,
                None,
                format!(
                    "{accounted} messages read or reported but the file's statistics count {}: \
                     some damaged record may have been imported as a message",
                    stats.message_count
                ),
            );
            return;
        }
        let lost = stats.message_count - accounted;
        if lost == 0 {
            return;
        }
        if unknown == 1 {
            if let Some(s) = self.skipped.iter_mut().find(|s| s.messages.is_none()) {
                s.messages = Some(lost);
                return;
            }
        }
        let also = if unknown > 0 {
            " (some may be those of the rows above whose count is unknown)"
        } else {
            ""
        };
        self.skip(
            None,
            Some(lost),
            format!(
                "the file's statistics count {} messages; {lost} of them were neither read nor \
                 found damaged: a damaged record hid them{also}",
                stats.message_count
            ),
        );
    }
}
