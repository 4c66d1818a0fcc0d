//! The per-locale version pointer in memcached: key `fms2:p:<locale>`, value the hex
//! content hash of the locale's record manifest. Flipped with CAS (`ms … C<cas>`), or
//! created with add (`ms … ME`) when absent, so that of two racing publishers exactly one
//! wins. Readers fall back to the durable copy (`remote/pointers.json`) when memcached
//! has lost it.

use std::time::Instant;

use super::client::{Op, Reply, valid_key};
use super::error::{RemoteError, RemoteResult};
use super::pool::Cluster;
use crate::ContentHash;

/// The prefix of pointer keys. The `2` names the manifest encoding the pointers lead to
/// (id-less, since items carry their id): readers of the earlier encoding keep following
/// `fms1:p:` pointers to the manifests they can read.
pub const KEY_PREFIX: &str = "fms2:p:";

/// The memcached key of `locale`'s pointer; an error for a locale that cannot be part of
/// a key (spaces, control characters, too long).
pub fn key(locale: &str) -> RemoteResult<String> {
    let k = format!("{KEY_PREFIX}{locale}");
    if valid_key(&k) {
        Ok(k)
    } else {
        Err(RemoteError::Config(format!(
            "locale {locale:?} cannot be part of a memcached key"
        )))
    }
}

/// What a pointer read found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// The pointer and its CAS.
    Found {
        /// The manifest hash it points at.
        hash: ContentHash,
        /// Its CAS, for the flip.
        cas: u64,
    },
    /// memcached has no pointer (never set, flushed or evicted).
    Absent,
}

/// Reads `locale`'s pointer. An unreachable server or an unparsable value is an error
/// (the caller decides whether to fall back to the durable copy).
pub fn read(cluster: &Cluster, locale: &str, deadline: Instant) -> RemoteResult<Read> {
    let k = key(locale)?;
    let reply = cluster
        .run(
            &[Op::Get {
                key: &k,
                lease: None,
                quiet: false,
            }],
            deadline,
        )
        .pop()
        .flatten();
    match reply {
        Some(Reply::Value { value, cas, .. }) => {
            let text = std::str::from_utf8(&value).unwrap_or("");
            let hash: ContentHash = text.parse().map_err(|_| RemoteError::Corrupt {
                key: k.clone(),
                what: format!("not a manifest hash: {text:?}"),
            })?;
            Ok(Read::Found {
                hash,
                cas: cas.unwrap_or(0),
            })
        }
        Some(Reply::Miss) => Ok(Read::Absent),
        Some(other) => Err(RemoteError::Protocol {
            addr: String::new(),
            what: format!("unexpected reply {other:?} to a pointer read"),
        }),
        None => Err(RemoteError::Unavailable {
            addr: cluster_addr(cluster, &k),
            what: format!("could not read {k}"),
        }),
    }
}

/// Moves `locale`'s pointer from `seen` (what this publisher read earlier) to `new`.
/// [`RemoteError::StalePublisher`] if it has moved since: exactly one of two racing
/// publishers wins.
pub fn flip(
    cluster: &Cluster,
    locale: &str,
    seen: &Read,
    new: ContentHash,
    deadline: Instant,
) -> RemoteResult<()> {
    let k = key(locale)?;
    let value = new.to_string();
    let op = match seen {
        Read::Found { cas, .. } => Op::Set {
            key: &k,
            value: value.as_bytes(),
            ttl: 0,
            cas: Some(*cas),
            add: false,
            quiet: false,
        },
        Read::Absent => Op::Set {
            key: &k,
            value: value.as_bytes(),
            ttl: 0,
            cas: None,
            add: true,
            quiet: false,
        },
    };
    match cluster.run(&[op], deadline).pop().flatten() {
        Some(Reply::Done) => Ok(()),
        Some(Reply::Exists | Reply::NotFound | Reply::NotStored) => {
            let now = read(cluster, locale, deadline)
                .map(|r| match r {
                    Read::Found { hash, .. } => hash.to_string(),
                    Read::Absent => "no pointer".into(),
                })
                .unwrap_or_else(|e| format!("unreadable ({e})"));
            Err(RemoteError::StalePublisher {
                locale: locale.to_owned(),
                expected: match seen {
                    Read::Found { hash, .. } => hash.to_string(),
                    Read::Absent => "no pointer".into(),
                },
                found: now,
            })
        }
        Some(other) => Err(RemoteError::Protocol {
            addr: cluster_addr(cluster, &k),
            what: format!("unexpected reply {other:?} to a pointer flip"),
        }),
        None => Err(RemoteError::Unavailable {
            addr: cluster_addr(cluster, &k),
            what: format!("could not write {k}"),
        }),
    }
}

fn cluster_addr(cluster: &Cluster, key: &str) -> String {
    match cluster.route(key) {
        super::pool::Route::Primary(i) => cluster.primaries()[i].addr().to_owned(),
        super::pool::Route::Gutter(i) => cluster.gutters()[i].addr().to_owned(),
        super::pool::Route::Nowhere => "(no server up)".into(),
    }
}
