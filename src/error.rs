//! The crate's error type: format errors say what was wrong and at which byte offset, with
//! a machine-readable [`FormatKind`]; I/O errors say which path; errors about a file keep
//! their cause (see [`Error::File`] and [`Error::root`]).

use std::path::PathBuf;

use crate::format::ContentHash;

/// Everything that can go wrong in `fms`.
///
/// Errors that concern one file of several (a [`crate::Store`] loading a manifest, an
/// overlay chain) come wrapped in [`Error::File`], which names the file and keeps the cause
/// as its `source`; JSONL errors likewise come as [`Error::Jsonl`] around their cause. To
/// act on the cause whatever the wrapping, match on [`Error::root`]:
///
/// ```
/// # fn main() -> fms::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("en.fms"), [b'x'; 64]).unwrap();
/// let err = fms::Store::new("en").load(dir.path().join("en.fms")).unwrap_err();
/// assert!(matches!(err, fms::Error::File { .. }));             // names the file ...
/// assert!(matches!(                                             // ... and keeps the cause
///     err.root(),
///     fms::Error::Format { kind: fms::FormatKind::BadMagic, .. }
/// ));
/// assert!(err.to_string().ends_with("en.fms: malformed snapshot at byte 0: not an fms snapshot (bad magic bytes)"));
/// # Ok(()) }
/// ```
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
    /// An error about one file: `source` is what went wrong with the file at `path`.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        #[source]
        source: Box<Error>,
    },
    /// The bytes are not a valid snapshot: `what` was wrong at byte `offset` of the file.
    #[error("malformed snapshot at byte {offset}: {what}")]
    Format {
        /// Byte offset from the start of the file.
        offset: u64,
        /// What kind of problem it is, for programs.
        kind: FormatKind,
        /// What was wrong, for people.
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
    #[error(
        "unsupported snapshot format version {found} (this build reads versions 1 to {supported}; rebuild the snapshot with it)"
    )]
    Version {
        /// The version in the file.
        found: u16,
        /// The newest version this build reads (it reads every version from 1 up).
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
    /// An error found in an overlay's base (at any depth below it) while checking the
    /// overlay: `source` is what was wrong with the base whose content hash is `hash`.
    #[error("in base {hash}: {source}")]
    Base {
        /// The content hash of the base at fault.
        hash: ContentHash,
        /// What was wrong with it.
        #[source]
        source: Box<Error>,
    },
    /// A read of an unverified snapshot met bytes it cannot decode (a whole-record read:
    /// serialization, `to_owned`, `deserialize`). [`crate::Snapshot::verify`] says where.
    #[error("corrupt snapshot: {what} (verify the file for details)")]
    Corrupt {
        /// What could not be read.
        what: String,
    },
    /// A [`crate::Key`] was used with a snapshot other than the one that resolved it (or
    /// an overlay over it), e.g. a key cached across a [`crate::Store::reload`]. Resolve
    /// the name again with [`crate::Snapshot::key`].
    #[error("key {key} was resolved in another snapshot; resolve it again with Snapshot::key")]
    ForeignKey {
        /// The key's number in the snapshot that resolved it.
        key: u32,
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
    /// [`crate::Store::publish`] was given a hash that no loaded snapshot has.
    #[error("no loaded snapshot has content hash {hash}")]
    NotLoaded {
        /// The hash asked for.
        hash: ContentHash,
    },
    /// A line of JSONL input could not be used: `source` went wrong at `line` of `input`.
    #[error("{input}:{line}: {source}")]
    Jsonl {
        /// The input's name (usually its path).
        input: String,
        /// 1-based line number.
        line: u64,
        /// What was wrong with the line: [`Error::Json`] for text that is not JSON,
        /// [`Error::InvalidInput`] for JSON that is not a record, or the error inserting
        /// the record gave ([`Error::DuplicateId`], [`Error::Limit`], ...).
        #[source]
        source: Box<Error>,
    },
    /// Text that should be JSON is not (a JSONL line; see [`Error::Jsonl`]).
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A store manifest (or a JSON file of the remote tier's origin) could not be used:
    /// unreadable JSON, unknown fields, a path that leaves the manifest's directory, a
    /// default locale other than the store's.
    #[error("{}: bad manifest: {what}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What was wrong.
        what: String,
        /// The JSON error, when the text did not parse as a manifest.
        #[source]
        source: Option<serde_json::Error>,
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

/// What kind of problem an [`Error::Format`] is: the machine-readable half of a format
/// error (the message says the rest). New kinds may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FormatKind {
    /// Not an fms snapshot at all: the magic bytes are wrong, or the file is empty.
    BadMagic,
    /// The file, a section or an entry ends before the bytes it needs.
    Truncated,
    /// A header or section-table field is invalid: unknown flags, a non-zero reserved
    /// field, sections missing, misordered, overlapping or followed by extra bytes.
    BadHeader,
    /// An offset, reference or id points outside its section or not at what it must (the
    /// start of a node, a pool entry, an existing shape or key; references backwards).
    OutOfBounds,
    /// A string (key, id or value) is not valid UTF-8.
    BadUtf8,
    /// A documented limit of the format is exceeded: node height, walk cost, overlay depth,
    /// probe count, section size, patch width.
    Limit,
    /// An encoding is invalid: an unknown tag, a non-minimal varint, a bad node header, a
    /// wrong entry size or count, a duplicate key in a shape, an unsorted table.
    BadEncoding,
    /// A hash index (key table or id index) does not find an entry, or has duplicates.
    BadIndex,
    /// An overlay breaks an overlay rule: depth and address spaces that do not continue
    /// its base, a patch of a record the base lacks, a tombstone where none may be.
    BadOverlay,
}

impl Error {
    pub(crate) fn format(offset: usize, kind: FormatKind, what: impl Into<String>) -> Error {
        Error::Format {
            offset: offset as u64,
            kind,
            what: what.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The nesting limit of maps and lists (the format's greatest node height).
    pub(crate) fn nesting_limit() -> Error {
        Error::Limit {
            what: "nesting depth of maps and lists",
            limit: crate::format::MAX_HEIGHT as u64,
        }
    }

    /// The walk limit of one record (`limit`: its snapshot's, see `format::walk_limit`).
    pub(crate) fn walk_limit(limit: u64) -> Error {
        Error::Limit {
            what: "walk cost of one record (values plus string bytes)",
            limit,
        }
    }

    /// This error about the file at `path`: wrapped in [`Error::File`], unless it already
    /// names a file ([`Error::Io`], [`Error::File`], [`Error::Manifest`]).
    pub(crate) fn in_file(self, path: impl Into<PathBuf>) -> Error {
        match self {
            e @ (Error::Io { .. } | Error::File { .. } | Error::Manifest { .. }) => e,
            e => Error::File {
                path: path.into(),
                source: Box::new(e),
            },
        }
    }

    /// The cause under any [`Error::File`], [`Error::Base`] and [`Error::Jsonl`] wrappers: what to match on
    /// to act on the kind of error, whichever file or line it came from. O(depth).
    pub fn root(&self) -> &Error {
        match self {
            Error::File { source, .. }
            | Error::Base { source, .. }
            | Error::Jsonl { source, .. } => source.root(),
            e => e,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
