//! Little-endian fixed-width encoding helpers and the length+CRC frame shared
//! by the WAL and the manifest (see docs/format.md, "Frame").

use super::error::{Error, Result};
use std::path::Path;

pub fn put_u8(buf: &mut Vec<u8>, v: u8) {
    buf.push(v);
}
pub fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}
pub fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}
/// u32 length followed by the bytes.
pub fn put_bytes(buf: &mut Vec<u8>, v: &[u8]) {
    put_u32(buf, v.len() as u32);
    buf.extend_from_slice(v);
}

/// A bounds-checked reader over untrusted bytes; every getter returns None
/// when the input is too short.
pub struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    pub fn new(buf: &'a [u8]) -> Dec<'a> {
        Dec { buf, pos: 0 }
    }
    pub fn pos(&self) -> usize {
        self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|s| s.first().copied())
    }
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

pub const FRAME_HEADER: usize = 12;

/// Appends `len u32 | !len u32 | crc32(payload) u32 | payload`. The
/// inverted length lets a reader tell a damaged length (error) from a
/// frame cut short by a crash (torn tail).
pub fn put_frame(buf: &mut Vec<u8>, payload: &[u8]) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_HEADER]);
    buf.extend_from_slice(payload);
    seal_frame(buf, start);
}

/// Fills in the header of the frame starting at `start` whose payload
/// runs to the end of `buf`.
pub fn seal_frame(buf: &mut [u8], start: usize) {
    let payload_start = start + FRAME_HEADER;
    let len = buf.len().saturating_sub(payload_start) as u32;
    let crc = crc32fast::hash(buf.get(payload_start..).unwrap_or_default());
    if let Some(h) = buf.get_mut(start..payload_start) {
        h[..4].copy_from_slice(&len.to_le_bytes());
        h[4..8].copy_from_slice(&(!len).to_le_bytes());
        h[8..].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Frames read from one file.
pub struct Frames<'a> {
    /// (offset of the frame header, payload)
    pub frames: Vec<(u64, &'a [u8])>,
    /// Bytes of the valid prefix.
    pub valid_len: u64,
    /// Bytes after the valid prefix (a torn tail).
    pub dropped: u64,
}

/// Splits `data` into frames. A torn tail (what a crash leaves: a prefix
/// of a frame, or an all-zero remainder) is cut and counted. A damaged
/// length (`len != !len_check`) is `Corrupt`, and a complete frame with a
/// bad CRC is `ChecksumMismatch`, wherever they are: never skipped.
pub fn read_frames<'a>(data: &'a [u8], file: &Path) -> Result<Frames<'a>> {
    let mut frames = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let rest = data.get(pos..).unwrap_or_default();
        if rest.iter().all(|b| *b == 0) {
            break;
        }
        let mut d = Dec::new(rest);
        let (Some(len), Some(check), Some(crc)) = (d.u32(), d.u32(), d.u32()) else {
            break;
        };
        if len != !check {
            return Err(corrupt(file, pos as u64, "damaged frame length"));
        }
        let Some(payload) = d.take(len as usize) else {
            break;
        };
        let got = crc32fast::hash(payload);
        if got != crc {
            return Err(Error::ChecksumMismatch {
                file: file.to_path_buf(),
                offset: pos as u64,
                expected: crc,
                got,
            });
        }
        frames.push((pos as u64, payload));
        pos += FRAME_HEADER + len as usize;
    }
    Ok(Frames {
        frames,
        valid_len: pos as u64,
        dropped: (data.len() - pos) as u64,
    })
}

pub fn corrupt(file: &Path, offset: u64, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        file: file.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut b = Vec::new();
        for p in payloads {
            put_frame(&mut b, p);
        }
        b
    }

    #[test]
    fn torn_tail_is_dropped_and_counted() {
        let mut data = framed(&[b"one", b"two"]);
        let full = data.len();
        data.extend_from_slice(&framed(&[b"three"])[..6]);
        let f = read_frames(&data, Path::new("w")).unwrap();
        assert_eq!(f.frames.len(), 2);
        data.truncate(full);
        data.extend_from_slice(&framed(&[b"three"])[..FRAME_HEADER + 2]);
        let f = read_frames(&data, Path::new("w")).unwrap();
        assert_eq!(f.frames.len(), 2);
        assert_eq!(f.valid_len, full as u64);
        assert_eq!(f.dropped, FRAME_HEADER as u64 + 2);
    }

    #[test]
    fn bad_crc_before_tail_is_an_error_with_offset() {
        let mut data = framed(&[b"one", b"two", b"three"]);
        data[FRAME_HEADER + 3 + FRAME_HEADER] ^= 1; // first byte of "two"
        match read_frames(&data, Path::new("w")) {
            Err(Error::ChecksumMismatch { offset, .. }) => assert_eq!(offset, 15),
            other => panic!("expected checksum error, got {:?}", other.err()),
        }
    }

    #[test]
    fn bad_crc_of_complete_last_frame_is_an_error_not_a_tail() {
        let mut data = framed(&[b"one", b"two"]);
        let last = data.len() - 1;
        data[last] ^= 1;
        assert!(matches!(
            read_frames(&data, Path::new("w")),
            Err(Error::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn damaged_length_is_an_error_even_when_it_points_past_eof() {
        let mut data = framed(&[b"one", b"two"]);
        data[2] ^= 0xff;
        assert!(matches!(
            read_frames(&data, Path::new("w")),
            Err(Error::Corrupt { offset: 0, .. })
        ));
    }

    #[test]
    fn zero_filled_tail_is_torn() {
        let mut data = framed(&[b"one"]);
        data.extend_from_slice(&[0u8; 40]);
        let f = read_frames(&data, Path::new("w")).unwrap();
        assert_eq!((f.frames.len(), f.dropped), (1, 40));
    }
}
