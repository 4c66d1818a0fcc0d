//! # fms — a frozen model store
//!
//! A memory-compact, read-only store for immutable content trees. A snapshot file holds
//! tens of thousands of records (entities with 10–40 fields each); servers map it into
//! memory in O(1) and read records like dicts, at hash-map speed, with no heap per read.
//!
//! * **Shapes** (a *tuplemap*): records with the same keys share one key list; a record
//!   stores a shape id and its values.
//! * **One pool**: every key and string value is stored once and referenced by offset.
//! * **Zero-copy**: [`Snapshot::open`] maps the file and checks only its header;
//!   [`Record::get`] returns [`ValueRef`]s that borrow `&str` straight from the map.
//! * **Overlays**: [`SnapshotBuilder::with_base`] builds a snapshot (a locale's tree, a
//!   new content version) that stores only what differs from a base and reads through it
//!   ([`Snapshot::open_overlay`]); [`Store`] serves one tree per locale, publishes new
//!   versions with one atomic swap, and starts from a [`Manifest`].
//! * **Safe on any bytes**: every read is bounds-checked; malformed files give `None` or
//!   `Err`, never a panic. [`Snapshot::verify`] is the explicit full check.
//! * **Beyond one host** (feature `remote`): `remote::RemoteStore` reads records from
//!   memcached by content hash (ketama-sharded as twemproxy does), with the trees in a
//!   durable origin directory as the fallback; `remote::push` publishes them.
//!
//! ## Quickstart
//!
//! ```
//! # fn main() -> fms::Result<()> {
//! use fms::{Snapshot, SnapshotBuilder, TupleMap, Value};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Video { title: String, duration: u32, keywords: Vec<String> }
//!
//! // Build: from structs, serde_json values or TupleMaps.
//! let mut b = SnapshotBuilder::new();
//! b.insert("video:intro", &Video { title: "Intro".into(), duration: 42, keywords: vec!["math".into()] })?;
//! b.insert("video:loops", &serde_json::json!({"title": "Loops", "duration": 7, "keywords": []}))?;
//! b.insert("topic:algebra", &TupleMap::from_pairs([("title", Value::from("Algebra"))]))?;
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("en.fms");
//! let info = b.write_to_path(&path)?;          // atomic: temp file, fsync, rename
//!
//! // Read: O(1) open, dict-style access, no allocation per read.
//! let snap = Snapshot::open(&path)?;
//! assert_eq!(snap.hash(), info.hash);
//! let rec = snap.get("video:intro").unwrap();
//! assert_eq!(rec.get("title").and_then(|v| v.as_str()), Some("Intro"));
//! let title = snap.key("title").unwrap();      // resolve a key once...
//! assert_eq!(rec.get_key(title).and_then(|v| v.as_str()), Some("Intro")); // ...reuse it
//!
//! // serde both ways: fields are matched by name.
//! let v: Video = rec.deserialize()?;
//! assert_eq!(v.duration, 42);
//! assert_eq!(serde_json::to_string(&rec).unwrap(),
//!            r#"{"title":"Intro","duration":42,"keywords":["math"]}"#);
//! snap.verify()?;                               // full O(n) check, checksums included
//! # Ok(()) }
//! ```
//!
//! The byte layout is specified in `FORMAT.md`, mirrored by [`mod@format`].

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod build;
#[doc(hidden)]
pub mod check;
pub mod corpus;
mod error;
pub mod format;
mod io;
mod read;
#[cfg(feature = "remote")]
pub mod remote;
mod serde;
mod store;
mod tuplemap;
mod verify;

pub use build::{BuildInfo, OverlayInfo, SnapshotBuilder};
pub use error::{Error, Result};
pub use format::ContentHash;
pub use io::write_file_atomically;
pub use read::{Key, List, ListIter, Record, RecordIter, Snapshot, ValueRef};
pub use serde::{from_map, from_value, to_map, to_value};
pub use store::{Manifest, Store};
pub use tuplemap::{TupleMap, Value};
