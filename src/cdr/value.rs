//! The decoded form of a message: a tree that renders as JSON or YAML.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    UInt(u64),
    /// float32 values are widened exactly.
    Float(f64),
    Str(String),
    /// `uint8`/`byte`/`char` arrays, kept compact; rendered as numbers.
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    /// Fields in definition order.
    Struct(Vec<(String, Value)>),
}

impl Value {
    /// A field of a struct by name.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A copy with every array cut to at most `n` elements, followed by a
    /// `"... (k more)"` marker (like `ros2 topic echo --truncate-length`).
    pub fn truncated(&self, n: usize) -> Value {
        let more = |len: usize| Value::Str(format!("... ({} more)", len - n));
        match self {
            Value::Bytes(b) if b.len() > n => {
                let mut items: Vec<Value> =
                    b[..n].iter().map(|&x| Value::UInt(u64::from(x))).collect();
                items.push(more(b.len()));
                Value::Array(items)
            }
            Value::Array(a) => {
                let mut items: Vec<Value> = a.iter().take(n).map(|v| v.truncated(n)).collect();
                if a.len() > n {
                    items.push(more(a.len()));
                }
                Value::Array(items)
            }
            Value::Struct(fields) => Value::Struct(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.truncated(n)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).unwrap_or_else(|e| format!("error: {e}\n"))
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::UInt(u) => s.serialize_u64(*u),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(t) => s.serialize_str(t),
            Value::Bytes(b) => {
                let mut seq = s.serialize_seq(Some(b.len()))?;
                for x in b {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for x in items {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            Value::Struct(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}
