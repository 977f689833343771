//! Schema-driven CDR decoding (OMG DDS-XTypes plain CDR as used by ROS 2).
//!
//! Wire layout: a 4-byte encapsulation header (2 bytes representation id,
//! big endian, then 2 option bytes), then the body. Alignment is relative
//! to the start of the body. Primitives align to their size (XCDR1) or to
//! min(size, 4) (plain XCDR2). Strings: u32 length including the NUL, the
//! bytes, the NUL. Sequences: u32 count, then the elements. Fixed arrays:
//! the elements only. A message with no fields carries one dummy u8.

use super::definition::{ArrayKind, BaseType, FieldType, MessageSpec, Primitive, Schema};
use super::error::{Error, Result};
use super::value::Value;

/// Nesting limit, so a self-referencing definition cannot recurse forever.
pub const MAX_DEPTH: usize = 64;

/// Decodes one CDR message (encapsulation header included) of the schema's
/// root type.
pub fn decode(schema: &Schema, payload: &[u8]) -> Result<Value> {
    let mut r = Reader::new(payload)?;
    let spec = schema.get(&schema.root)?;
    r.message(schema, spec, 0)
}

struct Reader<'a> {
    body: &'a [u8],
    pos: usize,
    little: bool,
    max_align: usize,
}

impl<'a> Reader<'a> {
    fn new(payload: &'a [u8]) -> Result<Reader<'a>> {
        let (Some(head), Some(body)) = (payload.get(..4), payload.get(4..)) else {
            return Err(Error::NoHeader { len: payload.len() });
        };
        let kind = u16::from_be_bytes([head[0], head[1]]);
        let (little, max_align) = match kind {
            0x0000 => (false, 8),
            0x0001 => (true, 8),
            // Plain XCDR2 (final types): 0x0006/0x0007 on the wire (Fast DDS,
            // foxglove cdr); 0x0010/0x0011 as printed in the XTypes spec.
            0x0006 | 0x0010 => (false, 4),
            0x0007 | 0x0011 => (true, 4),
            other => return Err(Error::UnsupportedEncapsulation(other)),
        };
        Ok(Reader {
            body,
            pos: 0,
            little,
            max_align,
        })
    }

    fn remaining(&self) -> usize {
        self.body.len().saturating_sub(self.pos)
    }

    fn align(&mut self, size: usize) {
        let a = size.min(self.max_align);
        if a > 1 {
            self.pos += (a - self.pos % a) % a;
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n);
        match end.and_then(|e| self.body.get(self.pos..e)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(Error::UnexpectedEnd {
                what: what.to_string(),
                offset: self.pos,
                needed: n,
                len: self.body.len(),
            }),
        }
    }

    fn fixed<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        self.align(N);
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        if self.little != cfg!(target_endian = "little") {
            a.reverse();
        }
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_ne_bytes(self.fixed::<4>(what)?))
    }

    /// A count that must fit in what is left (each element is >= 1 byte).
    fn count(&mut self, what: &str) -> Result<u64> {
        let offset = self.pos;
        let n = u64::from(self.u32(what)?);
        self.check_count(n, offset)?;
        Ok(n)
    }

    fn check_count(&self, n: u64, offset: usize) -> Result<()> {
        if n > self.remaining() as u64 {
            return Err(Error::LengthTooLarge {
                offset,
                count: n,
                remaining: self.remaining(),
            });
        }
        Ok(())
    }

    fn message(&mut self, schema: &Schema, spec: &MessageSpec, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep(MAX_DEPTH));
        }
        if spec.fields.is_empty() {
            self.take(1, "empty-message placeholder")?;
            return Ok(Value::Struct(Vec::new()));
        }
        let mut out = Vec::with_capacity(spec.fields.len());
        for f in &spec.fields {
            let v = self.field(schema, &f.name, &f.ty, depth)?;
            out.push((f.name.clone(), v));
        }
        Ok(Value::Struct(out))
    }

    fn field(
        &mut self,
        schema: &Schema,
        name: &str,
        ty: &FieldType,
        depth: usize,
    ) -> Result<Value> {
        let n = match ty.array {
            ArrayKind::Single => return self.base(schema, &ty.base, depth),
            ArrayKind::Fixed(n) => {
                self.check_count(n, self.pos)?;
                n
            }
            ArrayKind::Bounded(bound) => {
                let n = self.count(name)?;
                if n > bound {
                    return Err(Error::BoundExceeded {
                        field: name.to_string(),
                        count: n,
                        bound,
                    });
                }
                n
            }
            ArrayKind::Unbounded => self.count(name)?,
        };
        self.array(schema, &ty.base, n, depth)
    }

    fn array(&mut self, schema: &Schema, base: &BaseType, n: u64, depth: usize) -> Result<Value> {
        if let BaseType::Primitive(Primitive::UInt8 | Primitive::Byte | Primitive::Char) = base {
            let len = usize::try_from(n).unwrap_or(usize::MAX);
            return Ok(Value::Bytes(self.take(len, "byte array")?.to_vec()));
        }
        let mut items = Vec::new();
        for _ in 0..n {
            items.push(self.base(schema, base, depth)?);
        }
        Ok(Value::Array(items))
    }

    fn base(&mut self, schema: &Schema, base: &BaseType, depth: usize) -> Result<Value> {
        match base {
            BaseType::Primitive(p) => self.primitive(*p),
            BaseType::Complex(name) => {
                let spec = schema.get(name)?;
                self.message(schema, spec, depth + 1)
            }
        }
    }

    fn primitive(&mut self, p: Primitive) -> Result<Value> {
        Ok(match p {
            Primitive::Bool => Value::Bool(self.fixed::<1>("bool")?[0] != 0),
            Primitive::Byte | Primitive::Char | Primitive::UInt8 => {
                Value::UInt(u64::from(self.fixed::<1>("uint8")?[0]))
            }
            Primitive::Int8 => Value::Int(i64::from(i8::from_ne_bytes(self.fixed("int8")?))),
            Primitive::Int16 => Value::Int(i64::from(i16::from_ne_bytes(self.fixed("int16")?))),
            Primitive::UInt16 => Value::UInt(u64::from(u16::from_ne_bytes(self.fixed("uint16")?))),
            Primitive::Int32 => Value::Int(i64::from(i32::from_ne_bytes(self.fixed("int32")?))),
            Primitive::UInt32 => Value::UInt(u64::from(u32::from_ne_bytes(self.fixed("uint32")?))),
            Primitive::Int64 => Value::Int(i64::from_ne_bytes(self.fixed("int64")?)),
            Primitive::UInt64 => Value::UInt(u64::from_ne_bytes(self.fixed("uint64")?)),
            Primitive::Float32 => {
                Value::Float(f64::from(f32::from_ne_bytes(self.fixed("float32")?)))
            }
            Primitive::Float64 => Value::Float(f64::from_ne_bytes(self.fixed("float64")?)),
            Primitive::String(_) => Value::Str(self.string()?),
            Primitive::WString(_) => Value::Str(self.wstring()?),
        })
    }

    fn string(&mut self) -> Result<String> {
        let n = self.count("string length")?;
        let offset = self.pos;
        let len = usize::try_from(n).unwrap_or(usize::MAX);
        let bytes = self.take(len, "string")?;
        let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::InvalidUtf8 { offset })
    }

    /// Fast CDR wstring: u32 count of code units, then each unit as a u32;
    /// no terminator.
    fn wstring(&mut self) -> Result<String> {
        let offset = self.pos;
        let n = u64::from(self.u32("wstring length")?);
        self.check_count(n.saturating_mul(WCHAR_BYTES as u64), offset)?;
        let mut units = Vec::new();
        for _ in 0..n {
            units.push(self.wchar()?);
        }
        decode_wide(&units).ok_or(Error::InvalidUtf8 { offset })
    }

    fn wchar(&mut self) -> Result<u32> {
        self.u32("wchar")
    }
}

/// Bytes per wstring code unit on the wire (Fast CDR writes wchar_t as u32).
const WCHAR_BYTES: usize = 4;

/// rosidl carries wstrings as UTF-16 code units, each widened to u32 on the
/// wire; units above 0xFFFF are taken as code points.
fn decode_wide(units: &[u32]) -> Option<String> {
    let narrow: Option<Vec<u16>> = units.iter().map(|&u| u16::try_from(u).ok()).collect();
    match narrow {
        Some(u16s) => String::from_utf16(&u16s).ok(),
        None => units.iter().map(|&u| char::from_u32(u)).collect(),
    }
}
