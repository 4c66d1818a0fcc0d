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
//! * **HTTP** (feature `http`): `fms::http::router` serves a [`Store`] as JSON from an
//!   axum router to merge into a frontend's own (`fms serve` runs it as a sidecar).
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
//! assert_eq!(rec.get("title").and_then(|v| v.to_str()).as_deref(), Some("Intro"));
//! let title = snap.key("title").unwrap();      // resolve a key once...
//! assert_eq!(rec.get_key(title).and_then(|v| v.to_str()).as_deref(), Some("Intro")); // ...reuse it
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
//! ## The API at a glance, with costs
//!
//! `n` is the number of records, `k` a record's fields, `d` the overlay depth (at most
//! [`limits::MAX_OVERLAY_DEPTH`]). "No heap" means the call allocates nothing.
//!
//! | call | cost |
//! |---|---|
//! | [`Snapshot::open`] / [`Snapshot::open_overlay`] | O(1): mmap + header and section-table check; 176 B of heap (dhat) |
//! | [`Snapshot::open_in_memory`] / [`Snapshot::open_overlay_in_memory`] | O(file): reads the file into the heap (for files that may change under a map) |
//! | [`Snapshot::from_bytes`] / [`Snapshot::overlay_from_bytes`] | O(1), over any `AsRef<[u8]>` buffer |
//! | [`Snapshot::get`], [`Snapshot::contains`] | O(1) expected: one hash, a few probes per level (≤ d + 1 levels); no heap |
//! | [`Snapshot::key`] | O(1) expected; no heap |
//! | [`Snapshot::len`], [`Snapshot::hash`], [`Snapshot::depth`], [`Snapshot::sections`] | O(1) (`sections` allocates its `Vec`) |
//! | [`Snapshot::iter`], [`Snapshot::ids`], `for (id, rec) in &snap` | O(1) to create, O(1) per record (O(d) in an overlay); no heap; exact-size |
//! | [`Snapshot::owns_key`] | O(d); no heap |
//! | [`Snapshot::stats`] | O(pool entries + an overlay's changed ids) |
//! | [`Snapshot::verify`] | O(file bytes) (the whole chain for an overlay); bookkeeping ≤ 4 bytes per data byte |
//! | [`Record::get`], [`Record::contains_key`] | O(1) expected (one key hash, then the shape's slot table); no heap |
//! | [`Record::get_key`], [`Record::try_get_key`] | O(1); no heap |
//! | [`Record::len`], [`List::len`], [`List::get`] | O(1); no heap |
//! | [`Record::iter`], [`Record::keys`], [`Record::values`], [`List::iter`] | O(1) per item; no heap; exact-size |
//! | [`ValueRef::as_str`] and the other accessors | O(1); no heap (`&str` borrows the file) |
//! | [`Record::deserialize`], [`Record::to_owned`], `serde_json::to_*(&rec)`, `{rec}`, `{rec:?}` | O(size of the record), allocates what it builds; bounded by the walk limit ([`limits::walk_limit`]) |
//! | [`Record::write_json`] (also on [`List`] and [`ValueRef`]) | O(size of the record); appends `serde_json`'s exact bytes to a caller's `Vec<u8>` without serde's per-value walk (what a server sends); bounded by the walk limit |
//! | [`SnapshotBuilder::insert`] / [`SnapshotBuilder::upsert`] / [`SnapshotBuilder::remove`] | O(size of the record) (amortized; dedup by hash) |
//! | [`SnapshotBuilder::to_bytes`] / [`SnapshotBuilder::write_to_path`] | O(output); the write is atomic ([`write_file_atomically`]) |
//! | [`Store::current`] | O(1), lock-free (an `Arc` clone) |
//! | [`Store::publish`], [`Store::unpublish`] | O(locales): one pointer swap |
//! | [`Store::load`] / [`Store::load_all`] | O(1) per file with [`Loading::Mmap`] (the default) |
//! | [`Store::open_manifest`], [`Store::reload`] | O(1) per file, all or nothing |
//! | [`Store::evict_unpublished`] | O(loaded snapshots) |
//!
//! Errors: [`Error`] says what and where; errors about one file come as [`Error::File`]
//! around their cause, and [`Error::root`] finds the cause whatever the wrapping.
//!
//! ## Untrusted files
//!
//! Reads of any bytes are bounds-checked and never panic, and every whole-value read
//! (serialization, `to_owned`, `deserialize`, `Debug`, `Display`) stops at the walk limit,
//! which follows the file's size: a small malicious file cannot make a read allocate more
//! than a fixed multiple of its size. A file that passes [`Snapshot::verify`] never fails
//! a read of data it holds: verify files from elsewhere before serving them.
//!
//! A mapped file must not be truncated or rewritten in place while mapped (reads would
//! fault with SIGBUS): fms writes snapshots by rename and never in place. Where another
//! writer might, load into memory instead ([`Snapshot::open_in_memory`],
//! [`Store::with_loading`]).
//!
//! ## Features
//!
//! `cli` (default): the `fms` binary (with `corpus`). `corpus`: the synthetic content-site
//! generator `fms::corpus` (no stability promise). `fuzzing`: the fuzz targets' checks
//! (hidden, no stability promise). `dhat-heap`: dhat in the examples. A library user who
//! wants the store alone depends on `fms` with `default-features = false`.
//!
//! The byte layout is specified in `FORMAT.md`.

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod build;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod check;
mod cold;
#[cfg(feature = "corpus")]
pub mod corpus;
mod error;
mod fsst;
// The layout internals: public (and hidden) only for the tests and fuzz targets that craft
// or corrupt files, with no stability promise.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod format;
#[cfg(not(feature = "fuzzing"))]
mod format;
#[cfg(feature = "http")]
pub mod http;
mod io;
mod json;
mod read;
#[cfg(feature = "remote")]
pub mod remote;
mod serde;
mod store;
mod tuplemap;
mod verify;

pub use build::{BuildInfo, Compression, OverlayInfo, SnapshotBuilder};
pub use error::{Error, FormatKind, Result};
pub use format::{ContentHash, MAGIC, VERSION as FORMAT_VERSION};

/// The format's documented limits (FORMAT.md, "Limits"): what a snapshot may hold and
/// what any read of one may cost.
pub mod limits {
    pub use crate::format::{
        MAX_HEIGHT, MAX_OVERLAY_DEPTH, MAX_PATCH_SLOTS, MAX_PROBE, MAX_SECTIONS, MAX_WALK,
        WALK_FLOOR, WALK_PER_BYTE, walk_limit,
    };

    /// Longest string stored in its slot instead of the pool (it costs no pool entry).
    pub const STR_INLINE_MAX: usize = crate::format::tag::STR_INLINE_MAX as usize;
}
pub use io::write_file_atomically;
pub use read::{
    Anchor, IdCursor, Ids, Iter, Key, Keys, List, ListIter, Record, RecordIter, SectionInfo,
    Snapshot, Stats, Str, ValueRef, Values,
};
pub use serde::{from_map, from_value, to_map, to_value};
pub use store::{Loading, Manifest, Store};
pub use tuplemap::{TupleMap, Value};
