//! The remote tier's error type. Kept apart from [`crate::Error`] (which it wraps) so the
//! tier can grow without touching the core's.

use std::path::PathBuf;

/// Everything that can go wrong in the memcached tier.
///
/// On the read path most of these never reach the caller: a server error, a timeout or a
/// corrupt value is counted and treated as a miss. They surface from `push`, from
/// configuration, and from the origin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// A snapshot, manifest or origin file could not be read or written.
    #[error(transparent)]
    Fms(#[from] crate::Error),
    /// Talking to a memcached server failed (connect, read, write, or its deadline).
    #[error("memcached {addr}: {source}")]
    Io {
        /// The server.
        addr: String,
        /// The underlying error (`TimedOut` when the deadline passed).
        #[source]
        source: std::io::Error,
    },
    /// A memcached server answered something this client does not accept.
    #[error("memcached {addr}: protocol error: {what}")]
    Protocol {
        /// The server.
        addr: String,
        /// What was wrong.
        what: String,
    },
    /// A value read from memcached failed verification (never served).
    #[error("corrupt item under {key}: {what}")]
    Corrupt {
        /// The memcached key.
        key: String,
        /// What was wrong.
        what: String,
    },
    /// A record's item is larger than memcached accepts: refused at push time.
    #[error("record {id:?} encodes to {bytes} bytes, over the item limit of {limit} bytes")]
    TooLarge {
        /// The record's id.
        id: String,
        /// Its encoded size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Another publisher moved the version pointer since this one read it.
    #[error(
        "stale publisher: the pointer of locale {locale:?} changed since this push read it \
         (expected {expected}, found {found}); re-run the push"
    )]
    StalePublisher {
        /// The locale.
        locale: String,
        /// What this publisher read.
        expected: String,
        /// What the pointer holds now.
        found: String,
    },
    /// A memcached server was unreachable where one was required (push, pointer flip).
    #[error("memcached {addr} is unavailable: {what}")]
    Unavailable {
        /// The server.
        addr: String,
        /// Why.
        what: String,
    },
    /// The origin directory lacks something or holds something unusable.
    #[error("origin {}: {what}", dir.display())]
    Origin {
        /// The origin directory.
        dir: PathBuf,
        /// What was wrong.
        what: String,
    },
    /// A configuration value is unusable (e.g. freshness not below expiry).
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// `Result` with [`RemoteError`].
pub type RemoteResult<T> = std::result::Result<T, RemoteError>;
