//! The keys `motedb play` reads on a terminal, as rosbag2's player has
//! them: space pauses or resumes, the right arrow plays the next message
//! while paused, up and down multiply the rate by 1.1 and 0.9.

/// A key pressed.
#[derive(Debug, PartialEq)]
pub enum Key {
    Space,
    Right,
    Up,
    Down,
    Other,
}

/// The first key in `bytes` and how many bytes it took; None when an
/// escape sequence is not complete yet.
pub fn next_key(bytes: &[u8]) -> Option<(Key, usize)> {
    match bytes {
        [] => None,
        [b' ', ..] => Some((Key::Space, 1)),
        [0x1b] | [0x1b, b'['] => None,
        [0x1b, b'[', k, ..] => Some((
            match k {
                b'A' => Key::Up,
                b'B' => Key::Down,
                b'C' => Key::Right,
                _ => Key::Other,
            },
            3,
        )),
        _ => Some((Key::Other, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_from_bytes_and_escape_sequences() {
        assert_eq!(next_key(b" x"), Some((Key::Space, 1)));
        assert_eq!(next_key(b"\x1b[C"), Some((Key::Right, 3)));
        assert_eq!(next_key(b"\x1b[A"), Some((Key::Up, 3)));
        assert_eq!(next_key(b"\x1b[B "), Some((Key::Down, 3)));
        assert_eq!(next_key(b"\x1b["), None, "incomplete");
        assert_eq!(next_key(b"\x1b"), None, "incomplete");
        assert_eq!(next_key(b"q"), Some((Key::Other, 1)));
        assert_eq!(next_key(b""), None);
    }
}
