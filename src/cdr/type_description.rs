//! ros2msg text built from ROS 2 type descriptions.
//!
//! Since Iron, rosidl writes `share/<pkg>/<msg|srv|action>/<Name>.json` for
//! every interface (rosidl_generator_type_description): the interface's
//! type description, the descriptions of every type it refers to, and their
//! RIHS01 hashes. They are the only text description of the types that have
//! no `.msg` file: messages defined only in `.idl`, service request,
//! response and event types (`pkg/srv/X_Event`) and the types generated from
//! an action (`pkg/action/X_FeedbackMessage`, `X_SendGoal_Request`, ...).
//!
//! The rendering keeps field types, array kinds, bounds and names, which is
//! all CDR decoding needs; constants and comments are not in a type
//! description, and default values are left out.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::definition::{canonical_name, SEPARATOR};
use super::error::{Error, Result};

#[derive(Deserialize)]
struct DescriptionFile {
    type_description_msg: TypeDescriptionMsg,
    #[serde(default)]
    type_hashes: Vec<TypeHash>,
}

#[derive(Deserialize)]
struct TypeDescriptionMsg {
    type_description: Individual,
    #[serde(default)]
    referenced_type_descriptions: Vec<Individual>,
}

#[derive(Deserialize)]
struct Individual {
    type_name: String,
    fields: Vec<Field>,
}

#[derive(Deserialize)]
struct Field {
    name: String,
    #[serde(rename = "type")]
    ty: FieldType,
}

#[derive(Deserialize)]
struct FieldType {
    type_id: u32,
    #[serde(default)]
    capacity: u64,
    #[serde(default)]
    string_capacity: u64,
    #[serde(default)]
    nested_type_name: String,
}

#[derive(Deserialize)]
struct TypeHash {
    type_name: String,
    hash_string: String,
}

/// A type's ros2msg text and its hash, from a type description file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    pub definition: String,
    /// `RIHS01_...`; empty when the file lists none for the type.
    pub type_hash: String,
}

/// Looks for `type_name` (canonical, any kind) in the type description
/// files under `prefixes`; Ok(None) when no file describes it.
pub fn find(type_name: &str, prefixes: &[PathBuf]) -> Result<Option<Described>> {
    let root = canonical_name(type_name)?;
    for path in candidate_files(&root, prefixes) {
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::ReadDefinition {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let file: DescriptionFile =
            serde_json::from_str(&text).map_err(|e| Error::ReadDefinition {
                path: path.clone(),
                reason: format!("not a type description: {e}"),
            })?;
        if let Some(found) = render(&root, &file)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// `pkg/action/Fib_SendGoal_Event` may be described by
/// `Fib_SendGoal_Event.json`, `Fib_SendGoal.json` or `Fib.json`.
fn candidate_files(canonical: &str, prefixes: &[PathBuf]) -> Vec<PathBuf> {
    let mut parts = canonical.split('/');
    let (pkg, kind, name) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let mut stems = vec![name];
    let mut rest = name;
    while let Some((head, _)) = rest.rsplit_once('_') {
        if !head.is_empty() {
            stems.push(head);
        }
        rest = head;
    }
    let dir = |p: &Path| p.join("share").join(pkg).join(kind);
    prefixes
        .iter()
        .flat_map(|p| stems.iter().map(move |s| dir(p).join(format!("{s}.json"))))
        .collect()
}

/// The ros2msg text of `root` and its dependencies (breadth first, each
/// once), or None if the file does not describe `root`.
fn render(root: &str, file: &DescriptionFile) -> Result<Option<Described>> {
    let msg = &file.type_description_msg;
    let by_name: BTreeMap<&str, &Individual> = std::iter::once(&msg.type_description)
        .chain(&msg.referenced_type_descriptions)
        .map(|d| (d.type_name.as_str(), d))
        .collect();
    // The top-level type of a .srv or .action file is a description of
    // the interface, not a message any topic carries.
    let interface = msg.type_description.type_name == root && !root.contains("/msg/");
    if interface || !by_name.contains_key(root) {
        return Ok(None);
    }
    let mut out = String::new();
    let mut seen = BTreeSet::from([root.to_string()]);
    let mut queue = VecDeque::from([root.to_string()]);
    while let Some(name) = queue.pop_front() {
        let desc = by_name
            .get(name.as_str())
            .ok_or_else(|| Error::MissingType(name.clone()))?;
        if name != root {
            out.push_str(SEPARATOR);
            out.push_str("\nMSG: ");
            out.push_str(&name);
            out.push('\n');
        }
        for f in &desc.fields {
            let named = f.name.starts_with(|c: char| c.is_ascii_alphabetic())
                && f.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !named {
                return Err(Error::BadDefinition {
                    type_name: name.clone(),
                    line: 0,
                    reason: format!("field name {:?} is not an identifier", f.name),
                });
            }
            let ty = field_type(&f.ty).map_err(|reason| Error::BadDefinition {
                type_name: name.clone(),
                line: 0,
                reason: format!("field {}: {reason}", f.name),
            })?;
            out.push_str(&ty);
            out.push(' ');
            out.push_str(&f.name);
            out.push('\n');
            if !f.ty.nested_type_name.is_empty() && seen.insert(f.ty.nested_type_name.clone()) {
                queue.push_back(f.ty.nested_type_name.clone());
            }
        }
    }
    // What was rendered must read back as ros2msg (the names in the file
    // went into it unchecked).
    super::definition::Schema::parse(root, &out)?;
    let type_hash = file
        .type_hashes
        .iter()
        .find(|h| h.type_name == root)
        .map(|h| h.hash_string.clone())
        .unwrap_or_default();
    Ok(Some(Described {
        definition: out,
        type_hash,
    }))
}

/// type_description_interfaces/msg/FieldType: `type_id % 48` is the element
/// type; `type_id / 48` is 0 (single), 1 (fixed array), 2 (bounded
/// sequence) or 3 (unbounded sequence).
fn field_type(t: &FieldType) -> std::result::Result<String, String> {
    let element = match t.type_id % 48 {
        1 if t.nested_type_name.is_empty() => return Err("nested type without a name".into()),
        // Messages are named `pkg/Type` as in `.msg` files; types generated
        // from a service or an action keep their kind (`pkg/action/Type`),
        // which a reader maps to their `MSG:` section unambiguously.
        1 => match t.nested_type_name.split('/').collect::<Vec<_>>().as_slice() {
            [pkg, "msg", ty] => format!("{pkg}/{ty}"),
            _ => t.nested_type_name.clone(),
        },
        2 => "int8".into(),
        3 => "uint8".into(),
        4 => "int16".into(),
        5 => "uint16".into(),
        6 => "int32".into(),
        7 => "uint32".into(),
        8 => "int64".into(),
        9 => "uint64".into(),
        10 => "float32".into(),
        11 => "float64".into(),
        13 => "char".into(),
        15 => "bool".into(),
        16 => "byte".into(),
        17 => "string".into(),
        18 => "wstring".into(),
        21 => format!("string<={}", t.string_capacity),
        22 => format!("wstring<={}", t.string_capacity),
        12 => return Err("long double has no ros2msg form".into()),
        14 => return Err("wchar has no ros2msg form".into()),
        19 | 20 => return Err("fixed-size strings have no ros2msg form".into()),
        other => return Err(format!("unknown field type id {other}")),
    };
    Ok(match t.type_id / 48 {
        0 => element,
        1 => format!("{element}[{}]", t.capacity),
        2 => format!("{element}[<={}]", t.capacity),
        3 => format!("{element}[]"),
        _ => return Err(format!("unknown field type id {}", t.type_id)),
    })
}
