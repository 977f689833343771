//! Sim time from /clock (rosgraph_msgs/msg/Clock) for `use_sim_time`.

/// Nanoseconds of a serialized rosgraph_msgs/msg/Clock: CDR encapsulation
/// header (4 bytes), then builtin_interfaces/Time { int32 sec, uint32
/// nanosec } in the header's byte order. None when too short, negative or
/// of an unknown encapsulation.
pub fn decode_clock(cdr: &[u8]) -> Option<u64> {
    let header = cdr.get(0..2)?;
    let sec = cdr.get(4..8)?.try_into().ok()?;
    let nanosec = cdr.get(8..12)?.try_into().ok()?;
    let (sec, nanosec) = match header {
        [0x00, 0x01] => (i32::from_le_bytes(sec), u32::from_le_bytes(nanosec)),
        [0x00, 0x00] => (i32::from_be_bytes(sec), u32::from_be_bytes(nanosec)),
        _ => return None,
    };
    let sec = u64::try_from(sec).ok()?;
    Some(sec * 1_000_000_000 + u64::from(nanosec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_little_and_big_endian() {
        let mut le = vec![0, 1, 0, 0];
        le.extend(1000i32.to_le_bytes());
        le.extend(5u32.to_le_bytes());
        assert_eq!(decode_clock(&le), Some(1_000_000_000_005));
        let mut be = vec![0, 0, 0, 0];
        be.extend(7i32.to_be_bytes());
        be.extend(9u32.to_be_bytes());
        assert_eq!(decode_clock(&be), Some(7_000_000_009));
    }

    #[test]
    fn rejects_short_negative_and_unknown() {
        assert_eq!(decode_clock(&[0, 1, 0, 0, 1]), None);
        let mut neg = vec![0, 1, 0, 0];
        neg.extend((-1i32).to_le_bytes());
        neg.extend(0u32.to_le_bytes());
        assert_eq!(decode_clock(&neg), None);
        assert_eq!(decode_clock(&[9, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
    }
}
