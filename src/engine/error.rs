use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checksum mismatch in {file} at offset {offset}: expected {expected:#010x}, got {got:#010x}")]
    ChecksumMismatch {
        file: PathBuf,
        offset: u64,
        expected: u32,
        got: u32,
    },
    #[error("store {path} is locked by another process (pid {pid:?}); open it read-only or stop that process")]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("store is poisoned by an earlier write failure: {0}; restart to recover")]
    Poisoned(String),
    #[error("unknown topic id {0}")]
    UnknownTopic(u32),
    #[error("topic {name} already registered with type {existing}, not {requested}")]
    TopicTypeConflict {
        name: String,
        existing: String,
        requested: String,
    },
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("store is read-only")]
    ReadOnly,
    #[error("writes stopped: {0}")]
    WriteStopped(String),
    #[error("corrupt {file} at offset {offset}: {reason}")]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
}
