//! Event marks in MCAP files: one Metadata record named `motedb.mark` per
//! mark, in every file of an exported bag (so any single file carries
//! them), read back on import. Values are strings, as MCAP metadata are:
//!
//! | key | value |
//! |---|---|
//! | `label` | the label |
//! | `tags` | JSON array of strings |
//! | `start`, `end` | log-time window, ns, decimal, both included |
//! | `pinned` | `true` / `false` |
//! | `released` | `true` when retention had released the pin |
//! | `created` | wall-clock ns the mark was made, decimal |
//! | `id` | the mark's id in the store it came from (informational) |

use crate::engine::{Mark, NewMark};
use std::collections::BTreeMap;

/// The metadata record name.
pub const NAME: &str = "motedb.mark";

pub fn to_metadata(m: &Mark) -> mcap::records::Metadata {
    let tags = serde_json::Value::from(m.tags.clone()).to_string();
    mcap::records::Metadata {
        name: NAME.into(),
        metadata: BTreeMap::from([
            ("id".to_string(), m.id.to_string()),
            ("label".to_string(), m.label.clone()),
            ("tags".to_string(), tags),
            ("start".to_string(), m.start.to_string()),
            ("end".to_string(), m.end.to_string()),
            ("pinned".to_string(), m.pinned.to_string()),
            ("released".to_string(), m.released.to_string()),
            ("created".to_string(), m.created.to_string()),
        ]),
    }
}

/// The mark a `motedb.mark` record describes, pinned as it was (a pin
/// retention had released comes back unpinned), or why it cannot be read.
pub fn from_metadata(values: &BTreeMap<String, String>) -> Result<NewMark, String> {
    let get = |key: &str| values.get(key).ok_or_else(|| format!("no {key:?} value"));
    let number = |key: &str| {
        get(key)?
            .parse::<u64>()
            .map_err(|e| format!("{key} {:?}: {e}", values.get(key)))
    };
    let flag = |key: &str| match values.get(key).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!("{key} {other:?} is neither true nor false")),
    };
    let tags: Vec<String> = match values.get("tags") {
        None => Vec::new(),
        Some(text) => serde_json::from_str(text).map_err(|e| format!("tags {text:?}: {e}"))?,
    };
    let mark = NewMark {
        label: get("label")?.clone(),
        tags,
        start: number("start")?,
        end: number("end")?,
        pin: {
            let (pinned, released) = (flag("pinned")?, flag("released")?);
            pinned && !released
        },
    };
    mark.check().map_err(|e| e.to_string())?;
    Ok(mark)
}

/// Same label, tags and window: the mark a bag already brought in (every
/// file of a bag carries all of its marks; importing a bag twice).
pub fn same(a: &NewMark, b: &Mark) -> bool {
    a.label == b.label && a.tags == b.tags && a.start == b.start && a.end == b.end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_round_trips_and_a_released_pin_comes_back_unpinned() {
        let m = Mark {
            id: 4,
            label: "estop".into(),
            tags: vec!["a,b".into(), "c\"d".into()],
            start: 5,
            end: 9,
            pinned: true,
            released: false,
            created: 77,
        };
        let back = from_metadata(&to_metadata(&m).metadata).unwrap();
        assert_eq!(
            back,
            NewMark {
                label: "estop".into(),
                tags: m.tags.clone(),
                start: 5,
                end: 9,
                pin: true
            }
        );
        assert!(same(&back, &m));
        let released = Mark {
            pinned: false,
            released: true,
            ..m.clone()
        };
        assert!(!from_metadata(&to_metadata(&released).metadata).unwrap().pin);
    }

    #[test]
    fn a_damaged_mark_record_says_what_is_wrong() {
        let good = to_metadata(&Mark {
            id: 1,
            label: "x".into(),
            tags: Vec::new(),
            start: 1,
            end: 2,
            pinned: false,
            released: false,
            created: 0,
        })
        .metadata;
        for (key, value, why) in [
            ("start", "soon", "start"),
            ("tags", "[1]", "tags"),
            ("pinned", "yes", "neither true nor false"),
            ("released", "maybe", "neither true nor false"),
            ("end", "0", "after its end"),
            ("label", "", "needs a label"),
        ] {
            let mut bad = good.clone();
            bad.insert(key.into(), value.into());
            let e = from_metadata(&bad).unwrap_err();
            assert!(e.contains(why), "{key}: {e}");
        }
        let mut bad = good.clone();
        bad.remove("label");
        assert!(from_metadata(&bad).unwrap_err().contains("no \"label\""));
    }
}
