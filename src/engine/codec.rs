//! Little-endian fixed-width encoding helpers and the length+CRC frame shared
//! by the WAL and the manifest (see docs/format.md, "Frame").

use super::error::Error;
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
    /// (offset of the frame header, payload) of the valid prefix.
    pub frames: Vec<(u64, &'a [u8])>,
    /// Bytes of the valid prefix.
    pub valid_len: u64,
    /// Bytes after the valid prefix.
    pub dropped: u64,
    /// Why the bytes after the valid prefix are not frames. Whether that
    /// is a torn tail or corruption is the caller's rule (wal.rs,
    /// manifest.rs), decided with `frames_after`.
    pub damage: Option<Error>,
}

/// Splits `data` into frames up to the first byte that does not continue
/// them: a cut-short frame, zeros, a damaged length (`len != !len_check`)
/// or a checksum mismatch. Never skips anything.
pub fn read_frames<'a>(data: &'a [u8], file: &Path) -> Frames<'a> {
    let mut frames = Vec::new();
    let mut pos = 0usize;
    let mut damage = None;
    while pos < data.len() {
        let rest = data.get(pos..).unwrap_or_default();
        match frame_at(rest) {
            Ok(payload) => {
                frames.push((pos as u64, payload));
                pos += FRAME_HEADER + payload.len();
            }
            Err(why) => {
                damage = Some(why.into_error(file, pos as u64));
                break;
            }
        }
    }
    Frames {
        frames,
        valid_len: pos as u64,
        dropped: (data.len() - pos) as u64,
        damage,
    }
}

/// What is wrong with the bytes where a frame should start.
enum Bad {
    Short,
    Zeros,
    Length,
    Crc { expected: u32, got: u32 },
}

impl Bad {
    fn into_error(self, file: &Path, offset: u64) -> Error {
        let reason = match self {
            Bad::Crc { expected, got } => {
                return Error::ChecksumMismatch {
                    file: file.to_path_buf(),
                    offset,
                    expected,
                    got,
                }
            }
            Bad::Short => "frame cut short by the end of the file",
            Bad::Zeros => "zero-filled region",
            Bad::Length => "damaged frame length",
        };
        corrupt(file, offset, reason)
    }
}

/// The payload of the frame at the start of `rest`.
fn frame_at(rest: &[u8]) -> std::result::Result<&[u8], Bad> {
    let mut d = Dec::new(rest);
    let (Some(len), Some(check), Some(crc)) = (d.u32(), d.u32(), d.u32()) else {
        return Err(if rest.iter().all(|b| *b == 0) {
            Bad::Zeros
        } else {
            Bad::Short
        });
    };
    if len == 0 && check == 0 {
        return Err(Bad::Zeros);
    }
    if len != !check {
        return Err(Bad::Length);
    }
    let Some(payload) = d.take(len as usize) else {
        return Err(Bad::Short);
    };
    let got = crc32fast::hash(payload);
    if got != crc {
        return Err(Bad::Crc { expected: crc, got });
    }
    Ok(payload)
}

/// Every valid, non-empty frame that starts after `from`, found by trying
/// each offset (a scan past damage, to see what the writer wrote later).
pub fn frames_after(data: &[u8], from: u64) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    let mut pos = usize::try_from(from)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    while pos.saturating_add(FRAME_HEADER) <= data.len() {
        let rest = data.get(pos..).unwrap_or_default();
        match frame_at(rest) {
            Ok(payload) if !payload.is_empty() => {
                out.push((pos as u64, payload));
                pos += FRAME_HEADER + payload.len();
            }
            _ => pos += 1,
        }
    }
    out
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
    fn cut_short_frame_ends_the_valid_prefix() {
        let mut data = framed(&[b"one", b"two"]);
        let full = data.len();
        data.extend_from_slice(&framed(&[b"three"])[..FRAME_HEADER + 2]);
        let f = read_frames(&data, Path::new("w"));
        assert_eq!(f.frames.len(), 2);
        assert_eq!(f.valid_len, full as u64);
        assert_eq!(f.dropped, FRAME_HEADER as u64 + 2);
        assert!(matches!(f.damage, Some(Error::Corrupt { offset, .. }) if offset == full as u64));
    }

    #[test]
    fn bad_crc_is_damage_with_its_offset_and_checksums() {
        let mut data = framed(&[b"one", b"two", b"three"]);
        data[FRAME_HEADER + 3 + FRAME_HEADER] ^= 1; // first byte of "two"
        let f = read_frames(&data, Path::new("w"));
        assert_eq!(f.frames.len(), 1);
        match f.damage {
            Some(Error::ChecksumMismatch { offset, .. }) => assert_eq!(offset, 15),
            other => panic!("expected checksum damage, got {other:?}"),
        }
    }

    #[test]
    fn damaged_length_is_damage_even_when_it_points_past_eof() {
        let mut data = framed(&[b"one", b"two"]);
        data[2] ^= 0xff;
        let f = read_frames(&data, Path::new("w"));
        assert!(f.frames.is_empty());
        assert!(matches!(f.damage, Some(Error::Corrupt { offset: 0, .. })));
    }

    #[test]
    fn frames_after_damage_are_found_past_zeros_and_garbage() {
        let mut data = framed(&[b"one"]);
        let hole = data.len();
        data.extend_from_slice(&[0u8; 40]);
        data.extend_from_slice(&[0x5a; 7]);
        let later = data.len();
        data.extend_from_slice(&framed(&[b"later", b"last"]));
        let f = read_frames(&data, Path::new("w"));
        assert_eq!(f.valid_len, hole as u64);
        let after = frames_after(&data, f.valid_len);
        let got: Vec<(u64, &[u8])> = after;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (later as u64, &b"later"[..]));
        assert_eq!(got[1].1, b"last");
    }
}
