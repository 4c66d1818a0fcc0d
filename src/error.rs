//! The crate's error type: format errors say what was wrong and at which byte offset,
//! I/O errors say which path.

use std::path::PathBuf;

use crate::format::ContentHash;

/// Everything that can go wrong in `fms`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid snapshot: `what` was wrong at byte `offset` of the file.
    #[error("malformed snapshot at byte {offset}: {what}")]
    Format {
        /// Byte offset from the start of the file.
        offset: u64,
        /// What was wrong.
        what: String,
    },
    /// A section's bytes do not match the checksum in the section table.
    #[error("checksum mismatch in section `{section}` (bytes {offset}..{end})")]
    Checksum {
        /// The section's name.
        section: &'static str,
        /// Where the section starts.
        offset: u64,
        /// Where it ends.
        end: u64,
    },
    /// The file is a snapshot of a format version this build cannot read.
    #[error("unsupported snapshot format version {found} (this build reads version {supported})")]
    Version {
        /// The version in the file.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// An overlay was opened over a base other than the one it was built on.
    #[error("overlay expects base {expected}, but was given {found}")]
    BaseMismatch {
        /// The base hash the overlay names.
        expected: ContentHash,
        /// The hash of the snapshot offered as its base.
        found: ContentHash,
    },
    /// An overlay was opened without its base (with [`crate::Snapshot::open`], or by a
    /// [`crate::Store`] that has not loaded the base).
    #[error(
        "snapshot {overlay} is an overlay over {base}, which is not available (open it with Snapshot::open_overlay, or load the base first)"
    )]
    MissingBase {
        /// The overlay's content hash.
        overlay: ContentHash,
        /// The content hash of the base it needs.
        base: ContentHash,
    },
    /// `insert` was called twice with the same id.
    #[error("duplicate id {id:?} (use `upsert` to replace a record)")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// `remove` was given an id that neither the base nor the builder has.
    #[error("no record with id {id:?} to remove")]
    UnknownId {
        /// The id.
        id: String,
    },
    /// A line of JSONL input could not be used: `what` went wrong at `line` of `source`.
    #[error("{input}:{line}: {what}")]
    Jsonl {
        /// The input's name (usually its path).
        input: String,
        /// 1-based line number.
        line: u64,
        /// What was wrong.
        what: String,
    },
    /// A value cannot be stored or read as asked (serde errors land here).
    #[error("{0}")]
    Value(String),
    /// An input argument is unusable (an empty id, a top-level value that is not a map, ...).
    #[error("{0}")]
    InvalidInput(String),
    /// A documented limit of the format was exceeded.
    #[error("limit exceeded: {what} (limit {limit})")]
    Limit {
        /// Which limit.
        what: &'static str,
        /// Its value.
        limit: u64,
    },
}

impl Error {
    pub(crate) fn format(offset: usize, what: impl Into<String>) -> Error {
        Error::Format {
            offset: offset as u64,
            what: what.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
