use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong parsing a ros2msg definition or decoding CDR.
/// Decoding garbage bytes always ends in one of these, never a panic.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("definition of {type_name}, line {line}: {reason}")]
    BadDefinition {
        type_name: String,
        line: usize,
        reason: String,
    },
    #[error("type {0} is used but its definition is missing from the schema")]
    MissingType(String),
    #[error("type name {0:?} is not of the form pkg/msg/Type (or pkg/srv/Type, pkg/action/Type)")]
    BadTypeName(String),
    #[error("no share/{package}/{kind}/{name}.msg nor a type description (.json) of it under any of {prefixes:?}; source the workspace that defines it")]
    DefinitionNotFound {
        package: String,
        kind: String,
        name: String,
        prefixes: Vec<PathBuf>,
    },
    #[error("cannot read {path}: {reason}")]
    ReadDefinition { path: PathBuf, reason: String },
    #[error("message is {len} bytes, too short for the 4-byte CDR encapsulation header")]
    NoHeader { len: usize },
    #[error(
        "unsupported CDR encapsulation kind {0:#06x} (only plain CDR / XCDR1 and plain XCDR2)"
    )]
    UnsupportedEncapsulation(u16),
    #[error("message ends at offset {len} while reading {what} at offset {offset} ({needed} bytes needed)")]
    UnexpectedEnd {
        what: String,
        offset: usize,
        needed: usize,
        len: usize,
    },
    #[error(
        "sequence or array length {count} at offset {offset} exceeds the {remaining} bytes left"
    )]
    LengthTooLarge {
        offset: usize,
        count: u64,
        remaining: usize,
    },
    #[error("string at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { offset: usize },
    #[error("bounded field {field} has {count} elements, more than its bound {bound}")]
    BoundExceeded {
        field: String,
        count: u64,
        bound: u64,
    },
    #[error("types nest deeper than {0} levels (recursive definition?)")]
    TooDeep(usize),
}
