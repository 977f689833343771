//! Time arguments of the CLI and time formatting.
//!
//! Accepted forms: RFC 3339 UTC (`2026-11-24T23:00:00.5Z`), unix seconds
//! with an optional fraction (`1764025200.25`), relative to the end of the
//! recording (`-30s`, `-1m30s`) or to its start (`+10s`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a time argument to unix nanoseconds. `first`/`last` are the
/// bounds of the recording, used by relative forms.
pub fn parse_time(arg: &str, first: u64, last: u64) -> Result<u64, String> {
    let s = arg.trim();
    if let Some(rel) = s.strip_prefix('-') {
        return Ok(last.saturating_sub(duration_ns(rel, arg)?));
    }
    if let Some(rel) = s.strip_prefix('+') {
        return Ok(first.saturating_add(duration_ns(rel, arg)?));
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return unix_seconds(s).ok_or_else(|| bad(arg));
    }
    let t = humantime::parse_rfc3339_weak(s).map_err(|_| bad(arg))?;
    let d = t.duration_since(UNIX_EPOCH).map_err(|_| bad(arg))?;
    u64::try_from(d.as_nanos()).map_err(|_| bad(arg))
}

fn bad(arg: &str) -> String {
    format!(
        "cannot read time {arg:?}: use RFC 3339 UTC (2026-11-24T23:00:00Z), \
         unix seconds (1764025200.5), -30s (before the end) or +10s (after the start)"
    )
}

fn duration_ns(rel: &str, arg: &str) -> Result<u64, String> {
    let d = humantime::parse_duration(rel)
        .or_else(|_| {
            rel.parse::<f64>()
                .map(Duration::from_secs_f64)
                .map_err(|_| ())
        })
        .map_err(|_| bad(arg))?;
    u64::try_from(d.as_nanos()).map_err(|_| bad(arg))
}

/// `123.456` seconds to nanoseconds, exactly (no float rounding).
fn unix_seconds(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 9 || frac.contains('.') {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..9 {
        nanos *= 10;
    }
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Unix nanoseconds as RFC 3339 UTC with nanoseconds.
pub fn format_time(ns: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_nanos(ns);
    humantime::format_rfc3339_nanos(t).to_string()
}

/// Unix nanoseconds as `seconds.nanoseconds`.
pub fn format_unix(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// Now, as unix nanoseconds.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn forms() {
        assert_eq!(
            parse_time("1764025200.25", 0, 0),
            Ok(1764025200 * S + S / 4)
        );
        assert_eq!(parse_time("12", 0, 0), Ok(12 * S));
        assert_eq!(parse_time("-30s", 0, 100 * S), Ok(70 * S));
        assert_eq!(parse_time("-1m", 0, 100 * S), Ok(40 * S));
        assert_eq!(parse_time("+2.5", 10 * S, 100 * S), Ok(12 * S + S / 2));
        assert_eq!(parse_time("1970-01-01T00:00:10Z", 0, 0), Ok(10 * S));
        assert_eq!(
            parse_time("1970-01-01T00:00:10.000000001Z", 0, 0),
            Ok(10 * S + 1)
        );
        assert!(parse_time("yesterday", 0, 0).is_err());
        assert!(parse_time("1.2.3", 0, 0).is_err());
        assert!(parse_time("1.0000000001", 0, 0).is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(format_unix(10 * S + 5), "10.000000005");
        assert_eq!(format_time(10 * S), "1970-01-01T00:00:10.000000000Z");
    }
}
