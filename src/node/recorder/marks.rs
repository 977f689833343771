//! Marks published on `places.mark_topic` (`motedb_interfaces/msg/Mark`):
//! the writer reads each stored message of that topic as a `~/mark`
//! request whose "now" is the message's log time, so a behaviour tree or a
//! fault detector can mark without a service client.

use crate::cdr::{self, Schema, Value};
use crate::node::services::{MarkInput, Stamp};

/// The message type the mark topic must have.
pub const MARK_TYPE: &str = "motedb_interfaces/msg/Mark";

/// `msg/Mark.msg` with its dependency, in the ros2msg form the CDR decoder
/// reads.
fn schema() -> Result<Schema, String> {
    let text = format!(
        "{}\n{}\nMSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n",
        include_str!("../../../msg/Mark.msg"),
        "=".repeat(80)
    );
    Schema::parse(MARK_TYPE, &text).map_err(|e| e.to_string())
}

/// The request a serialized `Mark` message makes.
pub fn decode(payload: &[u8]) -> Result<MarkInput, String> {
    let value = cdr::decode(&schema()?, payload).map_err(|e| format!("not a {MARK_TYPE}: {e}"))?;
    let field = |name: &str| {
        value
            .field(name)
            .ok_or_else(|| format!("{MARK_TYPE} without {name}"))
    };
    let text = |v: &Value| match v {
        Value::Str(s) => Ok(s.clone()),
        other => Err(format!("expected a string, found {other:?}")),
    };
    let float = |name: &str| match field(name)? {
        Value::Float(f) => Ok(*f),
        other => Err(format!("{name}: expected a float64, found {other:?}")),
    };
    let stamp = |name: &str| -> Result<Stamp, String> {
        let t = field(name)?;
        match (t.field("sec"), t.field("nanosec")) {
            (Some(Value::Int(sec)), Some(Value::UInt(nanosec))) => Ok(Stamp {
                sec: i32::try_from(*sec).map_err(|e| e.to_string())?,
                nanosec: u32::try_from(*nanosec).map_err(|e| e.to_string())?,
            }),
            _ => Err(format!("{name}: not a builtin_interfaces/Time")),
        }
    };
    let tags = match field("tags")? {
        Value::Array(items) => items.iter().map(text).collect::<Result<Vec<_>, _>>()?,
        other => return Err(format!("tags: expected a string array, found {other:?}")),
    };
    Ok(MarkInput {
        label: text(field("label")?)?,
        tags,
        start: stamp("start")?,
        end: stamp("end")?,
        pre_s: float("pre_s")?,
        post_s: float("post_s")?,
        pin: matches!(field("pin")?, Value::Bool(true)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CDR (little endian) of a Mark, written by hand.
    fn cdr(label: &str, tags: &[&str], start: (i32, u32), pre: f64, pin: bool) -> Vec<u8> {
        let mut b = vec![0, 1, 0, 0];
        let align = |b: &mut Vec<u8>, n: usize| {
            while (b.len() - 4) % n != 0 {
                b.push(0);
            }
        };
        let string = |b: &mut Vec<u8>, s: &str| {
            align(b, 4);
            b.extend((s.len() as u32 + 1).to_le_bytes());
            b.extend(s.as_bytes());
            b.push(0);
        };
        string(&mut b, label);
        align(&mut b, 4);
        b.extend((tags.len() as u32).to_le_bytes());
        for t in tags {
            string(&mut b, t);
        }
        align(&mut b, 4);
        for (sec, nanosec) in [start, (0, 0)] {
            b.extend(sec.to_le_bytes());
            b.extend(nanosec.to_le_bytes());
        }
        align(&mut b, 8);
        b.extend(pre.to_le_bytes());
        b.extend(0.5f64.to_le_bytes());
        b.push(u8::from(pin));
        b
    }

    #[test]
    fn a_mark_message_decodes_to_the_request_it_makes() {
        let got = decode(&cdr("estop", &["a", "bc"], (7, 9), 2.5, true)).unwrap();
        assert_eq!(
            got,
            MarkInput {
                label: "estop".into(),
                tags: vec!["a".into(), "bc".into()],
                start: Stamp { sec: 7, nanosec: 9 },
                end: Stamp::default(),
                pre_s: 2.5,
                post_s: 0.5,
                pin: true,
            }
        );
    }

    #[test]
    fn a_truncated_message_is_an_error_not_a_mark() {
        let full = cdr("estop", &["a"], (7, 9), 2.5, true);
        for cut in [4, 10, full.len() - 1] {
            let e = decode(&full[..cut]).unwrap_err();
            assert!(e.contains(MARK_TYPE), "{cut}: {e}");
        }
    }
}
