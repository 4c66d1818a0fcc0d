//! Reading snapshots: [`Snapshot`] owns the bytes, [`Record`], [`ValueRef`] and [`List`]
//! are zero-copy views into them.
//!
//! The reading core, [`Raw`], works over a plain `&[u8]` plus the [`Layout`] parsed at open;
//! every read is bounds-checked through the helpers in [`crate::format`], so any bytes give
//! `None` or `Err`, never a panic.

mod anchor;
mod layout;
mod record;
mod stats;
mod text;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub use anchor::{Anchor, IdCursor};
pub(crate) use layout::{IndexLayout, Layout, Starts};
pub(crate) use record::{Compare, compare, compare_map};
pub use record::{Keys, List, ListIter, Record, RecordIter, ValueRef, Values};
pub use stats::{SectionInfo, Stats};
pub use text::Str;

/// A slot read for a writer that checks strings as it copies them ([`Raw::text_or_value`]).
pub(crate) enum TextOrValue<'a> {
    /// A plain string's bytes, not yet checked as UTF-8.
    Text(&'a [u8]),
    /// Anything else (compressed strings included).
    Value(ValueRef<'a>),
}

use crate::fsst::Table;

use crate::error::{Error, FormatKind, Result};
use crate::format::{self, ContentHash, MAX_OVERLAY_DEPTH, TOMBSTONE, node, tag};

/// A pre-resolved key: [`Snapshot::key`] looks a name up once, [`Record::get_key`] then
/// finds the field without hashing the name again.
///
/// A `Key` belongs to the snapshot that resolved it; used with another snapshot it finds
/// nothing. Overlays share their base's key ids, so a key resolved in a base works on
/// every overlay over it (and a key resolved in an overlay works on its base's records).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub(crate) id: u32,
    pub(crate) tag: u64,
}

impl Key {
    /// The key's number in its snapshot's key table.
    pub fn id(&self) -> u32 {
        self.id
    }
}

/// An immutable content tree: a snapshot file mapped into memory (or any byte buffer).
///
/// Opening is O(1): it checks the header and the section table (and their hash), nothing
/// proportional to the data. Reads are zero-copy and allocation-free. [`Snapshot::verify`]
/// is the separate, explicit O(n) check of everything else.
///
/// An **overlay** ([`Snapshot::open_overlay`]) is a snapshot that stores only what differs
/// from its base (new, changed and removed records; for a changed record, where smaller,
/// only its changed fields) and reads *through* it: every accessor behaves as if it were a
/// full snapshot of the merged tree. It holds an `Arc` of its base.
///
/// `Snapshot` is `Send + Sync`; share it across threads with an `Arc`.
///
/// ```
/// # fn main() -> fms::Result<()> {
/// let mut b = fms::SnapshotBuilder::new();
/// b.insert("video:1", &serde_json::json!({"title": "Intro", "duration": 42}))?;
/// let snap = fms::Snapshot::from_bytes(b.to_bytes()?)?;
/// let rec = snap.get("video:1").unwrap();
/// assert_eq!(rec.get("title").and_then(|v| v.to_str()).as_deref(), Some("Intro"));
/// # Ok(()) }
/// ```
pub struct Snapshot {
    buf: Box<dyn AsRef<[u8]> + Send + Sync>,
    layout: Layout,
    base: Option<Arc<Snapshot>>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Snapshot");
        d.field("hash", &self.layout.header.content_hash);
        if let Some(b) = &self.base {
            d.field("base", &b.hash());
        }
        d.field("records", &self.len())
            .field("bytes", &self.as_bytes().len())
            .finish()
    }
}

fn map_file(path: &Path) -> Result<memmap2::Mmap> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Err(Error::format(0, FormatKind::BadMagic, "the file is empty").in_file(path));
    }
    // SAFETY: the map is read-only and Rust never sees a `&mut` into it. Soundness
    // requires that no process truncates or rewrites the file while it is mapped: fms
    // itself only ever creates snapshot files whole (temp file + rename) and never
    // writes into an existing one, and the docs require the same of other writers.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok(map)
}

/// Reads the whole file at `path` into memory (what the `*_in_memory` openers own).
fn read_file(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.is_empty() {
        return Err(Error::format(0, FormatKind::BadMagic, "the file is empty").in_file(path));
    }
    Ok(bytes)
}

impl Snapshot {
    /// Maps the file at `path` and checks its header. O(1): no data is read or copied.
    ///
    /// An overlay needs its base: use [`open_overlay`](Self::open_overlay) (this returns
    /// [`Error::MissingBase`]).
    ///
    /// # The file must stay put while mapped
    ///
    /// Reads go straight to the file's pages, so the file must not be truncated or written
    /// in place, by any process, while the snapshot (or a record read from it) is alive:
    /// after a truncation, reading a page past the new end kills the process with
    /// `SIGBUS`; after an in-place write, reads see the new bytes unchecked. Replacing the
    /// file by a rename is safe (the map keeps the old file): that is how
    /// [`SnapshotBuilder::write_to_path`](crate::SnapshotBuilder::write_to_path),
    /// [`write_file_atomically`](crate::write_file_atomically) and `rsync` (without
    /// `--inplace`) write; `cp new.fms old.fms` and `truncate` are not. If you cannot
    /// promise that, use [`open_in_memory`](Self::open_in_memory).
    pub fn open(path: impl AsRef<Path>) -> Result<Snapshot> {
        Snapshot::from_bytes(map_file(path.as_ref())?)
    }

    /// Reads the file at `path` into memory and checks its header: like
    /// [`open`](Self::open), but the snapshot owns a copy of the bytes, so whatever happens
    /// to the file afterwards (truncated, rewritten, deleted) cannot affect it.
    ///
    /// Cost: O(file size) time and heap (one read into a `Vec<u8>`), where `open` is O(1)
    /// and shares the page cache. Reads are as fast, and zero-copy from the `Vec`.
    ///
    /// ```
    /// # fn main() -> fms::Result<()> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("en.fms");
    /// let mut b = fms::SnapshotBuilder::new();
    /// b.insert("video:1", &serde_json::json!({"title": "Intro"}))?;
    /// b.write_to_path(&path)?;
    ///
    /// let snap = fms::Snapshot::open_in_memory(&path)?;
    /// std::fs::write(&path, b"").unwrap();                // truncated behind our back: fine
    /// assert_eq!(snap.get("video:1").unwrap().get("title").unwrap().to_str().as_deref(), Some("Intro"));
    /// # Ok(()) }
    /// ```
    pub fn open_in_memory(path: impl AsRef<Path>) -> Result<Snapshot> {
        Snapshot::from_bytes(read_file(path.as_ref())?)
    }

    /// Reads a snapshot from any owned buffer: `Vec<u8>`, `&'static [u8]`, an mmap, ...
    /// O(1) beyond what the buffer costs: the bytes are not copied.
    pub fn from_bytes<D>(bytes: D) -> Result<Snapshot>
    where
        D: AsRef<[u8]> + Send + Sync + 'static,
    {
        Snapshot::assemble(Box::new(bytes), |_| None)
    }

    /// Maps the overlay at `path` over `base`. O(1), like [`open`](Self::open).
    ///
    /// Errors: [`Error::BaseMismatch`] if the overlay was built over another snapshot,
    /// [`Error::Format`] if its depth or address spaces do not continue the base's,
    /// [`Error::InvalidInput`] if the file is not an overlay.
    ///
    /// ```
    /// # fn main() -> fms::Result<()> {
    /// use std::sync::Arc;
    /// let mut b = fms::SnapshotBuilder::new();
    /// b.insert("v:1", &serde_json::json!({"title": "Intro", "duration": 42}))?;
    /// b.insert("v:2", &serde_json::json!({"title": "Loops", "duration": 7}))?;
    /// let en = Arc::new(fms::Snapshot::from_bytes(b.to_bytes()?)?);
    ///
    /// let mut o = fms::SnapshotBuilder::with_base(&en);
    /// o.insert("v:1", &serde_json::json!({"title": "Introducción", "duration": 42}))?;
    /// o.remove("v:2")?;
    /// let es = fms::Snapshot::overlay_from_bytes(o.to_bytes()?, en.clone())?;
    /// assert_eq!(es.get("v:1").unwrap().get("title").unwrap().to_str().as_deref(), Some("Introducción"));
    /// assert_eq!(es.get("v:1").unwrap().get("duration").unwrap().as_i64(), Some(42)); // from the base
    /// assert!(es.get("v:2").is_none());
    /// assert_eq!(es.len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn open_overlay(path: impl AsRef<Path>, base: Arc<Snapshot>) -> Result<Snapshot> {
        Snapshot::overlay_from_bytes(map_file(path.as_ref())?, base)
    }

    /// Reads the overlay at `path` into memory over `base`: [`open_overlay`](Self::open_overlay)
    /// as [`open_in_memory`](Self::open_in_memory) is to [`open`](Self::open). O(file size)
    /// time and heap; the base is whatever `base` is (mapped or in memory). Same errors as
    /// `open_overlay`.
    ///
    /// ```
    /// # fn main() -> fms::Result<()> {
    /// use std::sync::Arc;
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut b = fms::SnapshotBuilder::new();
    /// b.insert("v:1", &serde_json::json!({"title": "Intro"}))?;
    /// b.write_to_path(dir.path().join("en.fms"))?;
    /// let en = Arc::new(fms::Snapshot::open_in_memory(dir.path().join("en.fms"))?);
    /// let mut o = fms::SnapshotBuilder::with_base(&en);
    /// o.insert("v:1", &serde_json::json!({"title": "Introducción"}))?;
    /// o.write_to_path(dir.path().join("es.fms"))?;
    ///
    /// let es = fms::Snapshot::open_overlay_in_memory(dir.path().join("es.fms"), en)?;
    /// assert_eq!(es.get("v:1").unwrap().get("title").unwrap().to_str().as_deref(), Some("Introducción"));
    /// # Ok(()) }
    /// ```
    pub fn open_overlay_in_memory(path: impl AsRef<Path>, base: Arc<Snapshot>) -> Result<Snapshot> {
        Snapshot::overlay_from_bytes(read_file(path.as_ref())?, base)
    }

    /// [`open_overlay`](Self::open_overlay) over an owned buffer.
    pub fn overlay_from_bytes<D>(bytes: D, base: Arc<Snapshot>) -> Result<Snapshot>
    where
        D: AsRef<[u8]> + Send + Sync + 'static,
    {
        let snap = Snapshot::assemble(Box::new(bytes), |_| Some(base))?;
        if snap.base.is_none() {
            return Err(Error::InvalidInput(format!(
                "snapshot {} is not an overlay (open it with Snapshot::open)",
                snap.hash()
            )));
        }
        Ok(snap)
    }

    /// Maps the file at `path` (or, `in_memory`, reads it) and reads its identity from the
    /// header: `(the bytes, their content hash, the base's hash if an overlay)`. O(1) for a
    /// map, O(file size) for a read.
    #[allow(clippy::type_complexity)]
    pub(crate) fn peek(
        path: &Path,
        in_memory: bool,
    ) -> Result<(
        Box<dyn AsRef<[u8]> + Send + Sync>,
        ContentHash,
        Option<ContentHash>,
    )> {
        let buf: Box<dyn AsRef<[u8]> + Send + Sync> = if in_memory {
            Box::new(read_file(path)?)
        } else {
            Box::new(map_file(path)?)
        };
        let l = Layout::parse((*buf).as_ref())?;
        let base = l.overlay.map(|_| l.header.base_hash);
        Ok((buf, l.header.content_hash, base))
    }

    /// Parses the header and, for an overlay, checks the base `find_base` gives.
    pub(crate) fn assemble(
        buf: Box<dyn AsRef<[u8]> + Send + Sync>,
        find_base: impl FnOnce(ContentHash) -> Option<Arc<Snapshot>>,
    ) -> Result<Snapshot> {
        let layout = Layout::parse((*buf).as_ref())?;
        let Some(o) = layout.overlay else {
            return Ok(Snapshot {
                buf,
                layout,
                base: None,
            });
        };
        let want = layout.header.base_hash;
        let base = find_base(want).ok_or(Error::MissingBase {
            overlay: layout.header.content_hash,
            base: want,
        })?;
        if base.hash() != want {
            return Err(Error::BaseMismatch {
                expected: want,
                found: base.hash(),
            });
        }
        let at = layout.header.sections[5].offset as usize;
        if o.depth != base.depth() + 1 {
            return Err(Error::format(
                at,
                FormatKind::BadOverlay,
                format!(
                    "overlay says it has depth {}, but its base has depth {}",
                    o.depth,
                    base.depth()
                ),
            ));
        }
        let mut layout = layout;
        // Cold numbers are not stored: they continue the base chain's.
        layout.starts.cold = base.layout.totals().map_or(0, |t| t.cold);
        if base.layout.totals() != Some(layout.starts) {
            let show = |s: Option<Starts>| {
                s.map_or("past 2^32".into(), |s| {
                    format!(
                        "pool {}, data {}, shape {}, key {}",
                        s.pool, s.data, s.shape, s.key
                    )
                })
            };
            return Err(Error::format(
                at + 4,
                FormatKind::BadOverlay,
                format!(
                    "overlay address spaces start at {}, but its base ends at {}",
                    show(Some(layout.starts)),
                    show(base.layout.totals())
                ),
            ));
        }
        let base_ordinals = base.layout.ordinal_end();
        if layout.changes.is_some() {
            if base_ordinals != Some(layout.ordinal_start) {
                return Err(Error::format(
                    at + 32,
                    FormatKind::BadOverlay,
                    format!(
                        "overlay ordinals start at {}, but its base's end at {base_ordinals:?}",
                        layout.ordinal_start
                    ),
                ));
            }
        } else {
            // A version-1 overlay does not store its ordinal start: it continues its base's.
            layout.ordinal_start = base_ordinals.unwrap_or(u32::MAX);
        }
        if layout.ordinal_end().is_none() {
            return Err(Error::format(
                at,
                FormatKind::Limit,
                "overlay id ordinals overflow 32 bits (base plus this file)",
            ));
        }
        if layout.totals().is_none() {
            return Err(Error::format(
                layout.cold.start,
                FormatKind::Limit,
                "cold string numbers overflow 32 bits (base plus this file)",
            ));
        }
        layout.over(&base.layout);
        Ok(Snapshot {
            buf,
            layout,
            base: Some(base),
        })
    }

    /// The whole file (for an overlay: the overlay's own file, not its base's).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        (*self.buf).as_ref()
    }

    #[inline]
    pub(crate) fn raw(&self) -> Raw<'_> {
        Raw {
            b: self.as_bytes(),
            s: self,
        }
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The content hash: identifies this snapshot (and, for an overlay, its base).
    pub fn hash(&self) -> ContentHash {
        self.layout.header.content_hash
    }

    /// For an overlay, the content hash of its base.
    pub fn base_hash(&self) -> Option<ContentHash> {
        self.base.as_ref().map(|b| b.hash())
    }

    /// For an overlay, its base.
    pub fn base(&self) -> Option<&Arc<Snapshot>> {
        self.base.as_ref()
    }

    /// Whether this is an overlay.
    pub fn is_overlay(&self) -> bool {
        self.base.is_some()
    }

    /// Bytes this file's string decoders hold outside Rust's allocator (so dhat does not
    /// see them): the digested zstd dictionary of its cold section, built on its first
    /// cold read (0 before, and for a file without one). Each thread that reads cold
    /// strings also keeps one zstd context for all snapshots ([`cold_context_bytes`]).
    ///
    /// [`cold_context_bytes`]: Snapshot::cold_context_bytes
    pub fn decoder_heap_bytes(&self) -> usize {
        self.layout.cold_cache.heap_bytes()
    }

    /// Bytes of the calling thread's zstd decompression context (0 until it read a cold
    /// string); shared by every snapshot.
    pub fn cold_context_bytes() -> usize {
        crate::cold::context_bytes()
    }

    /// 0 for a full snapshot; for an overlay, 1 + its base's depth (at most
    /// [`format::MAX_OVERLAY_DEPTH`]).
    pub fn depth(&self) -> u32 {
        self.layout.depth()
    }

    /// Number of records (of the merged tree, for an overlay). O(1).
    pub fn len(&self) -> usize {
        match self.layout.overlay {
            Some(o) => o.records as usize,
            None => self.layout.ids.count as usize,
        }
    }

    /// Whether the snapshot has no records. O(1).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of distinct shapes (key lists), an overlay's base's included. O(1).
    pub fn shape_count(&self) -> usize {
        (self.layout.starts.shape + self.layout.shape_count) as usize
    }

    /// Number of distinct keys, an overlay's base's included. O(1).
    pub fn key_count(&self) -> usize {
        (self.layout.starts.key + self.layout.keys.count) as usize
    }

    /// The record with this id. O(1) expected: one hash, a few probes (for an overlay: of
    /// each level's index from the top down to the id's home, then one bit test per
    /// level above the home); allocation-free.
    #[inline]
    pub fn get(&self, id: &str) -> Option<Record<'_>> {
        self.raw()
            .get_hashed(id.as_bytes(), format::index_hash(id.as_bytes()))
    }

    /// Whether a record has this id. O(1) expected; allocation-free.
    pub fn contains(&self, id: &str) -> bool {
        self.raw()
            .contains_hashed(id.as_bytes(), format::index_hash(id.as_bytes()))
    }

    /// Resolves a key name once, for [`Record::get_key`]. O(1) expected.
    pub fn key(&self, name: &str) -> Option<Key> {
        let raw = self.raw();
        let id = raw.find_key(name)?;
        Some(Key {
            id,
            tag: raw.key_tag_of(id),
        })
    }

    /// The ids, in iteration order (see [`iter`](Self::iter)). O(1) to create;
    /// allocation-free. Entries a corrupt file makes unreadable are skipped (`verify`
    /// reports them).
    pub fn ids(&self) -> Ids<'_> {
        Ids {
            entries: Entries::new(self.raw()),
            left: self.len(),
        }
    }

    /// The `(id, record)` pairs. O(1) to create; allocation-free, O(1) per record (for
    /// an overlay, one id lookup per level above the record's). Order: insertion order
    /// for a full snapshot; for an overlay, its base's order (a changed record keeps its
    /// place, a removed one is skipped), then the records the overlay adds, in insertion
    /// order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            entries: Entries::new(self.raw()),
            left: self.len(),
        }
    }

    /// Whether `key` was resolved in this snapshot or a base of it, so that
    /// [`Record::get_key`] can find it here. A key cached across a
    /// [`crate::Store::reload`] may belong to a snapshot no longer served: resolve it again
    /// with [`key`](Self::key). O(overlay depth).
    pub fn owns_key(&self, key: Key) -> bool {
        let raw = self.raw();
        key.id < self.layout.starts.key + self.layout.keys.count
            && raw.key_tag_of(key.id) == key.tag
    }

    /// Checks everything reads rely on: section checksums, every pool entry, shape, key,
    /// node and id; that references point strictly backwards, heights and walk sizes stay
    /// within the format's limits, and both hash indexes find every entry. For an overlay,
    /// its whole base chain is checked too, and so are the overlay's own rules (patches,
    /// tombstones, counts). O(size of the files). Bookkeeping memory: four bits per pool
    /// byte, a bit and a half per data byte and 4 bytes per data node (at most 2 per data
    /// byte, since the smallest node is 2 bytes), a bit per COLD byte, 32 bytes per cold
    /// string, the decoded length of the largest cold block and of the longest FSST
    /// string (at least 8 bytes per code up to 4,096 codes), and O(keys + shapes + derived
    /// strings).
    ///
    /// A snapshot that passes never returns `None` or `Err` from a read of data it holds.
    pub fn verify(&self) -> Result<()> {
        crate::verify::verify(self)
    }
}

/// Iterator over a snapshot's `(id, record)` pairs ([`Snapshot::iter`]). Exact-size for
/// a verified snapshot; on a corrupt one, unreadable entries are skipped.
#[derive(Clone)]
pub struct Iter<'a> {
    entries: Entries<'a>,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, Record<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        let item = self
            .entries
            .by_ref()
            .find_map(|(id, raw, rec)| Some((id, raw.record_at(rec)?)))?;
        self.left = self.left.saturating_sub(1);
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// Exact for a verified snapshot (see the type's docs).
impl ExactSizeIterator for Iter<'_> {}
impl std::iter::FusedIterator for Iter<'_> {}

/// Iterator over a snapshot's ids ([`Snapshot::ids`]). Exact-size for a verified
/// snapshot; on a corrupt one, unreadable entries are skipped.
#[derive(Clone)]
pub struct Ids<'a> {
    entries: Entries<'a>,
    left: usize,
}

impl<'a> Iterator for Ids<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let (id, _, _) = self.entries.next()?;
        self.left = self.left.saturating_sub(1);
        Some(id)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// Exact for a verified snapshot (see the type's docs).
impl ExactSizeIterator for Ids<'_> {}
impl std::iter::FusedIterator for Ids<'_> {}

impl<'a> IntoIterator for &'a Snapshot {
    type Item = (&'a str, Record<'a>);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Walks an overlay chain's id entries in merged order: each level's own entries (a full
/// snapshot's all, an overlay's added ones), root first. For each, the levels above it are
/// asked from the top down: one that adds the id again (after a removal in between) ends
/// the entry (its own walk yields the id); otherwise the first that changes the entry's
/// home ordinal decides its record (a tombstone ends it). Yields `(id, level, record ref)`.
#[derive(Clone)]
struct Entries<'a> {
    /// Index 0 is the top (the snapshot iterated); the last is the full snapshot.
    levels: [Option<Raw<'a>>; MAX_OVERLAY_DEPTH as usize + 1],
    /// The level whose entries are being walked.
    level: usize,
    e: u32,
    end: u32,
}

impl<'a> Entries<'a> {
    fn new(top: Raw<'a>) -> Entries<'a> {
        let mut levels = [None; MAX_OVERLAY_DEPTH as usize + 1];
        let mut cur = Some(top);
        let mut n = 0;
        while let Some(r) = cur {
            if n == levels.len() {
                break;
            }
            levels[n] = Some(r);
            n += 1;
            cur = r.down();
        }
        let level = n.saturating_sub(1);
        let (e, end) = levels[level].map_or((0, 0), |r| r.own_entries());
        Entries {
            levels,
            level,
            e,
            end,
        }
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a str, Raw<'a>, u32);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.e >= self.end {
                if self.level == 0 {
                    return None;
                }
                self.level -= 1;
                (self.e, self.end) = self.levels[self.level]?.own_entries();
                continue;
            }
            let raw = self.levels[self.level]?;
            let e = self.e;
            self.e += 1;
            let Some(id) = raw.id_at(e) else { continue };
            let mut found = (raw, raw.id_record_offset(e));
            if self.level > 0 {
                // Down the chain from the top: a level that holds the id as its own (it was
                // removed in between and added back there) ends this entry, as that level's
                // walk yields it; otherwise the topmost level that changes the entry's
                // ordinal decides its record.
                let h = format::index_hash(id.as_bytes());
                let Some(o) = raw.own_ordinal(e) else {
                    continue;
                };
                let mut gone = false;
                for up in self.levels[..self.level].iter().flatten() {
                    if up.find_own_id(id.as_bytes(), h).is_some() {
                        gone = true;
                        break;
                    }
                    if let Some(rec) = up.change_of(id.as_bytes(), h, o) {
                        found = (*up, Some(rec));
                        break;
                    }
                }
                if gone {
                    continue;
                }
            }
            match found {
                (_, Some(TOMBSTONE) | None) => continue,
                (r, Some(rec)) => return Some((id, r, rec)),
            }
        }
    }
}

/// Where a cold string is: a slice of a block of the COLD section of `level`.
#[derive(Clone, Copy)]
pub(crate) struct ColdRef<'a> {
    pub level: Raw<'a>,
    /// The block's zstd frame.
    pub frame: &'a [u8],
    /// The block's decoded length.
    pub block_len: usize,
    /// Where the block's entry starts in the section.
    pub block_at: usize,
    /// The string: `start..start + len` of the decoded block.
    pub start: usize,
    pub len: usize,
}

/// The cold block decoded last: for walks that meet the strings of one block one after
/// another (`verify`, the overlay builder's index of its base), so that each block is
/// decoded about once.
#[derive(Default)]
pub(crate) struct ColdBlockCache(crate::cold::LastBlock);

impl ColdBlockCache {
    /// The bytes of cold string `c` (not checked as UTF-8), decoding its block unless it
    /// is the one decoded last; `None` if the block does not decode.
    pub fn bytes(&mut self, c: &ColdRef<'_>) -> Option<&[u8]> {
        let dict = c.level.b.get(c.level.l().cold_dict.clone())?;
        let block = self
            .0
            .get(dict, &c.level.l().cold_cache, c.frame, c.block_len)?;
        block.get(c.start..c.start.checked_add(c.len)?)
    }
}

/// A shape as stored: key ids (`u32` LE each) and the slot table (slot + 1 per key id
/// from `base`; empty when the shape has none).
#[derive(Clone, Copy)]
pub(crate) struct Shape<'a> {
    pub keys: &'a [u8],
    pub base: u32,
    pub table: &'a [u8],
}

/// The reading core: one file's bytes and layout, and the base it reads through. Every
/// method is bounds-checked and returns `None` on malformed data.
///
/// Addresses (pool offsets, data offsets, shape ids, key ids) are in the combined space of
/// the overlay chain: those below this file's [`Starts`] belong to the base, and a read of
/// one is passed down.
#[derive(Clone, Copy)]
pub(crate) struct Raw<'a> {
    pub b: &'a [u8],
    /// The snapshot whose bytes `b` are: its layout and its base.
    s: &'a Snapshot,
}

impl<'a> Raw<'a> {
    /// This file's layout.
    #[inline(always)]
    pub fn l(&self) -> &'a Layout {
        &self.s.layout
    }

    /// The snapshot this file is an overlay over.
    #[inline(always)]
    pub fn base(&self) -> Option<&'a Snapshot> {
        self.s.base.as_deref()
    }

    /// The base's reading core.
    #[inline]
    pub fn down(&self) -> Option<Raw<'a>> {
        self.base().map(Snapshot::raw)
    }

    /// `f` on the base's reading core (`None` for a full snapshot). Kept out of line, so
    /// that the reads that call it for addresses below this file stay non-recursive and
    /// inline into their callers: a full snapshot never gets here.
    #[inline(never)]
    #[cold]
    fn below<T>(&self, f: impl FnOnce(Raw<'a>) -> Option<T>) -> Option<T> {
        f(self.down()?)
    }

    #[inline]
    pub fn pool(&self) -> Option<&'a [u8]> {
        self.b.get(self.l().pool.clone())
    }

    #[inline]
    pub fn data(&self) -> Option<&'a [u8]> {
        self.b.get(self.l().data.clone())
    }

    /// This file's own id entries (those whose home is here, which iteration walks): all
    /// of a full snapshot's and of a version-2 overlay's, the added ones of a version-1
    /// overlay.
    fn own_entries(&self) -> (u32, u32) {
        (self.l().own_first(), self.l().ids.count)
    }

    /// The home ordinal of own entry `e` (FORMAT.md "Ordinals").
    #[inline]
    pub fn own_ordinal(&self, e: u32) -> Option<u32> {
        self.l()
            .ordinal_start
            .checked_add(e.checked_sub(self.l().own_first())?)
    }

    /// The entry number of `id` (of hash `h`) among this file's own entries.
    #[inline(always)]
    fn find_own_id(&self, id: &[u8], h: u64) -> Option<u32> {
        self.find_id_hashed(id, h)
            .filter(|&e| e >= self.l().own_first())
    }

    /// The home of `id` in the chain this file reads: the topmost level whose own entries
    /// hold it, and the entry number there. O(depth) probes; allocation-free.
    #[inline]
    pub fn home(&self, id: &[u8], h: u64) -> Option<(Raw<'a>, u32)> {
        let mut cur = *self;
        loop {
            if let Some(e) = cur.find_own_id(id, h) {
                return Some((cur, e));
            }
            cur = cur.down()?;
        }
    }

    /// What this (overlay) level does to the id `id` (hash `h`) whose home, below it, has
    /// ordinal `o`: `Some(record reference)` if it changes it ([`TOMBSTONE`]: removes it).
    /// A version-2 overlay answers from its CHANGES bitset, a version-1 overlay from its
    /// changing id entries.
    #[inline]
    fn change_of(&self, id: &[u8], h: u64, o: u32) -> Option<u32> {
        if self.l().changes.is_some() {
            return self.changed_ordinal(o);
        }
        let e = self.find_id_hashed(id, h)?;
        (e < self.l().own_first()).then(|| self.id_record_offset(e).unwrap_or(TOMBSTONE))
    }

    /// The record reference the CHANGES section gives ordinal `o`, if its bit is set (an
    /// unreadable one reads as a tombstone). One word test, then at most half of
    /// [`format::RANK_BLOCK_WORDS`] popcounts (see `change_ref`).
    #[inline]
    pub fn changed_ordinal(&self, o: u32) -> Option<u32> {
        let c = self.l().changes.as_ref()?;
        if o >= c.ordinal_end {
            return None;
        }
        let w = (o / 64) as usize;
        let word = format::u64_at(self.b, c.words_at.checked_add(8 * w)?)?;
        let bit = o % 64;
        if (word >> bit) & 1 == 0 {
            return None;
        }
        Some(
            self.change_ref(c, w, word & ((1u64 << bit) - 1))
                .unwrap_or(TOMBSTONE),
        )
    }

    /// The record reference of the set bit in word `w` whose lower set bits in that word
    /// are `low`: its rank (directory entry + popcounts) indexes the references.
    ///
    /// The rank of word `w` counts from the nearer of the two directory entries around it:
    /// up from its block's entry over the words before it, or down from the next block's
    /// entry (`count` after the last block) over `w` and the words after it in its block.
    /// So at most half a block of words is counted (a verified file's directory makes the
    /// two ways agree; on a corrupt one either may fail, never panic).
    fn change_ref(&self, c: &layout::ChangesLayout, w: usize, low: u64) -> Option<u32> {
        let block = w / format::RANK_BLOCK_WORDS;
        let first = block * format::RANK_BLOCK_WORDS;
        let next = first + format::RANK_BLOCK_WORDS;
        let words = c.words as usize;
        let end = next.min(words);
        let before_w = if w - first < end.saturating_sub(w) {
            let before =
                format::slice_at(self.b, c.words_at.checked_add(8 * first)?, 8 * (w - first))?;
            format::u32_at(self.b, c.ranks_at.checked_add(4 * block)?)?
                .checked_add(format::count_ones(before))?
        } else {
            let from_w = format::slice_at(self.b, c.words_at.checked_add(8 * w)?, 8 * (end - w))?;
            let after = if next < words {
                format::u32_at(self.b, c.ranks_at.checked_add(4 * (block + 1))?)?
            } else {
                c.count
            };
            after.checked_sub(format::count_ones(from_w))?
        };
        let rank = before_w.checked_add(low.count_ones())?;
        if rank >= c.count {
            return None;
        }
        format::u32_at(self.b, c.refs_at.checked_add(4 * rank as usize)?)
    }

    /// The level that decides the record of `id` (hash `h`) in the merged tree this file
    /// reads, and its record reference ([`TOMBSTONE`]: removed): the id's home, unless a
    /// level above it changes the home's ordinal (the topmost such level decides).
    /// O(depth); allocation-free.
    #[inline]
    fn resolve(&self, id: &[u8], h: u64) -> Option<(Raw<'a>, u32)> {
        let (home, e) = self.home(id, h)?;
        let depth = home.l().depth();
        let mut cur = *self;
        if cur.l().depth() > depth {
            let o = home.own_ordinal(e)?;
            while cur.l().depth() > depth {
                if let Some(rec) = cur.change_of(id, h, o) {
                    return Some((cur, rec));
                }
                cur = cur.down()?;
            }
        }
        Some((home, home.id_record_offset(e)?))
    }

    /// The bytes of the pool entry at `off`.
    #[inline]
    pub fn pool_bytes(&self, off: u32) -> Option<&'a [u8]> {
        match off.checked_sub(self.l().starts.pool) {
            Some(o) => format::pool_entry(self.pool()?, o as usize),
            None => self.below(|d| d.pool_bytes(off)),
        }
    }

    /// The file holding the pool entry at `off`, and the entry's bytes.
    #[inline]
    pub fn pool_level(&self, off: u32) -> Option<(Raw<'a>, &'a [u8])> {
        match off.checked_sub(self.l().starts.pool) {
            Some(o) => Some((*self, format::pool_entry(self.pool()?, o as usize)?)),
            None => self.below(|d| d.pool_level(off)),
        }
    }

    /// Symbol table `t` of this file's SYMBOLS section: a table found at open, whose
    /// symbol lengths open checked (decoded without a check per code), or else one
    /// bounds-checked only, whose lengths are checked as codes use them (all of them by
    /// `verify`).
    #[inline]
    pub fn symbol_table(&self, t: u64) -> Option<Table<'a>> {
        if let Some(&(lens, n)) = self
            .l()
            .tables
            .get(usize::try_from(t).unwrap_or(usize::MAX))
        {
            // Found at open: the table `Table::parse` would find, without reading its count.
            return Table::cut_checked(self.b, self.l().symbols.start + lens as usize, n as usize);
        }
        if t >= u64::from(self.l().symbol_count) {
            return None;
        }
        let sec = self.b.get(self.l().symbols.clone())?;
        let at = format::u32_at(sec, 4 + 4 * t as usize)?;
        Table::parse(sec, at as usize)
    }

    /// The FSST string whose entry (`varint table ++ codes`) is at pool offset `off`.
    #[inline]
    pub fn fsst_str(&self, off: u32) -> Option<Str<'a>> {
        let (table, codes) = self.fsst_entry(off)?;
        Some(Str::fsst(table, codes, off))
    }

    /// The parts of the FSST entry (`varint table ++ codes`) at pool offset `off`: the
    /// table it names, of the file holding the entry, and its codes.
    #[inline(always)]
    pub fn fsst_entry(&self, off: u32) -> Option<(Table<'a>, &'a [u8])> {
        let (level, entry) = self.pool_level(off)?;
        let (t, used) = format::varint_at(entry, 0)?;
        Some((level.symbol_table(t)?, entry.get(used..)?))
    }

    /// Where the cold string whose pool entry (`varint block, varint start, varint len`)
    /// is at `off` lives.
    pub fn cold_entry(&self, off: u32) -> Option<ColdRef<'a>> {
        let (level, entry) = self.pool_level(off)?;
        // A version-6 COLD section is reached by number only (tag COLD_DIRECT).
        if level.l().cold_direct {
            return None;
        }
        let (at, u0) = format::varint_at(entry, 0)?;
        let (start, u1) = format::varint_at(entry, u0)?;
        let (slen, u2) = format::varint_at(entry, u0 + u1)?;
        if u0 + u1 + u2 != entry.len() {
            return None;
        }
        let sec = level.b.get(level.l().cold.clone())?;
        let at = usize::try_from(at).ok()?;
        // Entries follow the dictionary.
        if at < 4 + level.l().cold_dict.len() {
            return None;
        }
        let (len, u1) = format::varint_at(sec, at)?;
        let (flen, u2) = format::varint_at(sec, at + u1)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= format::MAX_COLD_LEN)?;
        let frame = format::slice_at(sec, at + u1 + u2, usize::try_from(flen).ok()?)?;
        if len > format::MAX_COLD_RATIO.saturating_mul(u1 + u2 + frame.len()) {
            return None;
        }
        // The string is a slice of the block.
        let start = usize::try_from(start).ok()?;
        let slen = usize::try_from(slen).ok()?;
        if start.checked_add(slen)? > len {
            return None;
        }
        Some(ColdRef {
            level,
            frame,
            block_len: len,
            block_at: at,
            start,
            len: slen,
        })
    }

    /// Where the cold string of (combined) number `n` lives (version 6, tag COLD_DIRECT):
    /// string `n % 2^COLD_BLOCK_BITS` of block `n >> COLD_BLOCK_BITS` of the level whose
    /// numbers hold `n`.
    pub fn cold_numbered(&self, n: u32) -> Option<ColdRef<'a>> {
        let Some(own) = n.checked_sub(self.l().starts.cold) else {
            return self.below(|d| d.cold_numbered(n));
        };
        let block = (own >> format::COLD_BLOCK_BITS) as usize;
        let k = own as usize & (format::COLD_BLOCK_STRINGS - 1);
        let at = format::u32_at(self.b, self.l().cold_dir.start.checked_add(4 * block)?)
            .filter(|_| block < self.l().cold_blocks())? as usize;
        let sec = self.b.get(self.l().cold.clone())?;
        // Blocks follow the directory.
        if at < self.l().cold_dir.end - self.l().cold.start {
            return None;
        }
        let (b, string) = format::cold_block_string(sec, at, k)?;
        let (start, len) = string?;
        Some(ColdRef {
            level: *self,
            frame: b.frame,
            block_len: b.len,
            block_at: at,
            start,
            len,
        })
    }

    /// The cold string stored with tag `t` (COLD: `p` is its pool entry's offset;
    /// COLD_DIRECT: its number).
    pub fn cold_ref(&self, t: u8, p: u32) -> Option<ColdRef<'a>> {
        match t {
            tag::COLD => self.cold_entry(p),
            tag::COLD_DIRECT => self.cold_numbered(p),
            _ => None,
        }
    }

    /// The cold string stored with tag `t` (COLD or COLD_DIRECT) and payload `p`.
    #[inline]
    pub fn cold_str(&self, t: u8, p: u32) -> Option<Str<'a>> {
        let c = self.cold_ref(t, p)?;
        let dict = c.level.b.get(c.level.l().cold_dict.clone())?;
        Some(Str::cold(c, dict, t, p))
    }

    /// The derived string whose entry is at `off`, at nesting depth `depth` (1 for a
    /// slot's own; `None` past [`format::MAX_DERIVED_DEPTH`]).
    pub fn derived_str(&self, off: u32, depth: u8) -> Option<Str<'a>> {
        if depth > format::MAX_DERIVED_DEPTH {
            return None;
        }
        let d = format::Derived::parse(self.pool_bytes(off)?, off)?;
        Some(Str::derived(*self, d, depth))
    }

    /// The string part `p` of a derived entry names, read at nesting depth `depth`.
    pub fn part_str(&self, p: format::Part<'a>, depth: u8) -> Option<Str<'a>> {
        match p {
            format::Part::Plain(o) => Some(Str::plain(self.pool_str(o)?)),
            format::Part::Fsst(o) => self.fsst_str(o),
            format::Part::Derived(o) => self.derived_str(o, depth + 1),
            format::Part::Literal(b) => Some(Str::plain(std::str::from_utf8(b).ok()?)),
        }
    }

    #[inline]
    pub fn pool_str(&self, off: u32) -> Option<&'a str> {
        std::str::from_utf8(self.pool_bytes(off)?).ok()
    }

    /// Probes a hash index of this file for a key of hash `h`; `eq(entry)` confirms a
    /// candidate.
    #[inline(always)]
    fn lookup(&self, idx: &layout::IndexLayout, h: u64, eq: impl Fn(u32) -> bool) -> Option<u32> {
        // A 4-byte tag is the hash's high half; a 1-byte one its top byte.
        let want = format::index_tag(h) >> (32 - 8 * u32::from(idx.tag_w));
        let mask = idx.slots.wrapping_sub(1);
        let mut pos = format::index_home(h, idx.slots);
        let slot_len = idx.slot_len();
        for _ in 0..idx.max_probe {
            let at = idx.slots_at + pos as usize * slot_len;
            // One 8-byte load (a slot is at most 8 bytes; the bytes after it are masked
            // off), or byte by byte at the very end of the file.
            let x = match self.b.get(at..at + 8) {
                Some(eight) => u64::from_le_bytes(eight.try_into().ok()?),
                None => format::slice_at(self.b, at, slot_len)?
                    .iter()
                    .rev()
                    .fold(0, |acc, &x| (acc << 8) | u64::from(x)),
            };
            let (tag, entry) = idx.split_slot(x);
            if entry == 0 {
                return None;
            }
            if tag == want && entry <= idx.count && eq(entry - 1) {
                return Some(entry - 1);
            }
            pos = (pos + 1) & mask;
        }
        None
    }

    /// The key id of `name`, in this file or its base.
    #[inline]
    pub fn find_key(&self, name: &str) -> Option<u32> {
        self.find_key_hashed(name.as_bytes(), format::index_hash(name.as_bytes()))
    }

    #[inline]
    fn find_key_hashed(&self, name: &[u8], h: u64) -> Option<u32> {
        match self.find_own_key(name, h) {
            Some(k) => self.l().starts.key.checked_add(k),
            None => self.below(|d| d.find_key_hashed(name, h)),
        }
    }

    /// The entry number of `name` in this file's own key table.
    #[inline]
    pub fn find_own_key(&self, name: &[u8], h: u64) -> Option<u32> {
        self.lookup(&self.l().keys, h, |k| self.own_key_name(k) == Some(name))
    }

    /// The name of this file's own key entry `k`.
    #[inline]
    pub fn own_key_name(&self, k: u32) -> Option<&'a [u8]> {
        self.pool_bytes(self.own_key_offset(k)?)
    }

    /// The pool offset of the name of this file's own key entry `k`.
    #[inline]
    pub fn own_key_offset(&self, k: u32) -> Option<u32> {
        self.l().keys.field(self.b, k, format::KEY_FIELDS, 0)
    }

    #[inline]
    pub(crate) fn key_name_bytes(&self, k: u32) -> Option<&'a [u8]> {
        match k.checked_sub(self.l().starts.key) {
            Some(own) => self.own_key_name(own),
            None => self.below(|d| d.key_name_bytes(k)),
        }
    }

    /// The name of key `k`.
    #[inline]
    pub fn key_name(&self, k: u32) -> Option<&'a str> {
        std::str::from_utf8(self.key_name_bytes(k)?).ok()
    }

    /// The tag of the file whose key table defines key `k` (what a [`Key`] carries).
    #[inline]
    pub fn key_tag_of(&self, k: u32) -> u64 {
        if k >= self.l().starts.key {
            self.l().key_tag
        } else {
            self.below(|d| Some(d.key_tag_of(k))).unwrap_or(0)
        }
    }

    /// The entry number of `id` in this file's own id index.
    #[inline]
    pub fn find_id(&self, id: &str) -> Option<u32> {
        self.find_id_hashed(id.as_bytes(), format::index_hash(id.as_bytes()))
    }

    #[inline]
    fn find_id_hashed(&self, id: &[u8], h: u64) -> Option<u32> {
        self.lookup(&self.l().ids, h, |e| self.id_bytes(e) == Some(id))
    }

    /// The record with id `id` (of hash `h`) in the merged tree this file reads.
    #[inline]
    fn get_hashed(&self, id: &[u8], h: u64) -> Option<Record<'a>> {
        if self.base().is_none() {
            return self.record_at(self.id_record_offset(self.find_id_hashed(id, h)?)?);
        }
        // A tombstone's reference (`u32::MAX`) is never a node: `None`.
        let (level, rec) = self.resolve(id, h)?;
        level.record_at(rec)
    }

    /// The file holding the record reference for `id` (its home, or the overlay above it
    /// that changes it), and that reference: a data offset, or [`TOMBSTONE`].
    fn locate(&self, id: &[u8], h: u64) -> Option<(Raw<'a>, u32)> {
        if self.base().is_none() {
            return Some((*self, self.id_record_offset(self.find_id_hashed(id, h)?)?));
        }
        self.resolve(id, h)
    }

    fn contains_hashed(&self, id: &[u8], h: u64) -> bool {
        self.resolve(id, h)
            .is_some_and(|(level, r)| r != TOMBSTONE || level.l().overlay.is_none())
    }

    /// Whether the merged tree this file reads has a record `id` (for `verify`).
    pub fn contains(&self, id: &str) -> bool {
        self.contains_hashed(id.as_bytes(), format::index_hash(id.as_bytes()))
    }

    /// The pool offset of the id of entry `e`.
    #[inline]
    pub fn id_pool_offset(&self, e: u32) -> Option<u32> {
        self.l().ids.field(self.b, e, format::ID_FIELDS, 0)
    }

    #[inline]
    fn id_bytes(&self, e: u32) -> Option<&'a [u8]> {
        self.pool_bytes(self.id_pool_offset(e)?)
    }

    /// The id of entry `e`.
    pub fn id_at(&self, e: u32) -> Option<&'a str> {
        std::str::from_utf8(self.id_bytes(e)?).ok()
    }

    /// The record reference of entry `e`: a data offset, or [`TOMBSTONE`].
    #[inline]
    pub fn id_record_offset(&self, e: u32) -> Option<u32> {
        self.l().ids.field(self.b, e, format::ID_FIELDS, 1)
    }

    /// Shape `s`: its key ids and its slot table.
    #[inline(always)]
    pub fn shape(&self, s: u32) -> Option<Shape<'a>> {
        let Some(s) = s.checked_sub(self.l().starts.shape) else {
            return self.below(|d| d.shape(s));
        };
        let at = match self.l().shape_at.get(s as usize) {
            Some(&at) => at,
            None => self.parse_shape(s)?,
        };
        let start = self.l().shapes.start;
        let len = at.n as usize * format::SHAPE_KEY_LEN;
        Some(Shape {
            keys: format::slice_at(self.b, start + at.keys as usize, len)?,
            base: at.base,
            table: format::slice_at(self.b, start + at.table as usize, at.span as usize)?,
        })
    }

    /// Where shape `s` of this file is, read from its header: for a shape not found at
    /// open ([`layout::Layout::shape_at`]).
    #[inline(never)]
    fn parse_shape(&self, s: u32) -> Option<layout::ShapeAt> {
        let sec = self.b.get(self.l().shapes.clone())?;
        layout::ShapeAt::parse(sec, s, self.l().shape_count)
    }

    /// The kind bits ([`node::LIST_BIT`], [`node::PATCH_BIT`], or 0 for a map) of the node
    /// at combined data offset `off` in this file (`None` if it is a base's or out of
    /// bounds).
    pub fn node_kind(&self, off: u32) -> Option<u8> {
        let own = off.checked_sub(self.l().starts.data)?;
        Self::node_header(self.data()?, own).map(|(kind, _, _)| kind)
    }

    /// Parses the node header at this file's data offset `off`:
    /// `(kind bits, height, offset after the header)`.
    #[inline]
    fn node_header(data: &[u8], off: u32) -> Option<(u8, u8, usize)> {
        let h = *data.get(off as usize)?;
        Some((
            h & (node::LIST_BIT | node::PATCH_BIT),
            h & node::HEIGHT_MASK,
            off as usize + 1,
        ))
    }

    /// The map node at `off`, whose height must be below `below`.
    #[inline]
    pub fn map_at(&self, off: u32, below: u8) -> Option<Record<'a>> {
        let Some(own) = off.checked_sub(self.l().starts.data) else {
            return self.below(|d| d.map_at(off, below));
        };
        let data = self.data()?;
        if self.l().nested_patches
            && *data.get(own as usize)? & (node::LIST_BIT | node::PATCH_BIT) == node::PATCH_BIT
        {
            // Version 5: a nested map an overlay changes may be a patch of the base's node.
            return self.patch_at(off, own, data).filter(|r| r.height() < below);
        }
        self.own_map(data, own, off, below)
    }

    /// The map node (never a patch) at `off`, whose height must be below `below`: a
    /// patch's base.
    ///
    /// A patch's base is usually in a file below the patch's, so this walks down the
    /// chain in a loop rather than through [`below`](Self::below): a call less per read
    /// of a patched record (callgrind, 80,000 lookups through the es overlay: 86.0 M →
    /// 82.3 M instructions).
    pub fn plain_map_at(&self, off: u32, below: u8) -> Option<Record<'a>> {
        let mut cur = *self;
        loop {
            match off.checked_sub(cur.l().starts.data) {
                Some(own) => return cur.own_map(cur.data()?, own, off, below),
                None => cur = cur.down()?,
            }
        }
    }

    /// The map node at `own` in this file's `data` (combined offset `off`).
    #[inline(always)]
    fn own_map(&self, data: &'a [u8], own: u32, off: u32, below: u8) -> Option<Record<'a>> {
        let (kind, height, at) = Self::node_header(data, own)?;
        if kind != 0 || height == 0 || height >= below {
            return None;
        }
        let (head, used) = format::varint_at(data, at)?;
        let (shape, w) = self.l().heads.split(head);
        let shape = self.shape(u32::try_from(shape).ok()?)?;
        let n = shape.keys.len() / format::SHAPE_KEY_LEN;
        let slots = Self::slots(data, at + used, n, w)?;
        Some(Record::new(*self, shape, slots, w as u8, height, off))
    }

    /// The slot arrays of a node of `n` slots of width `w` starting at `at` in `data`:
    /// checked to fit, and running on to the end of the section (so that a payload is
    /// read with one 4-byte load, see [`format::slot_at`]).
    #[inline(always)]
    fn slots(data: &'a [u8], at: usize, n: usize, w: usize) -> Option<&'a [u8]> {
        let slots = data.get(at..)?;
        let len = n.checked_mul(w + 1)?;
        (len <= slots.len()).then_some(slots)
    }

    /// A top-level record: a map node, or (in an overlay) a patch node.
    #[inline]
    pub fn record_at(&self, off: u32) -> Option<Record<'a>> {
        let Some(own) = off.checked_sub(self.l().starts.data) else {
            return self.below(|d| d.record_at(off));
        };
        let data = self.data()?;
        match *data.get(own as usize)? & (node::LIST_BIT | node::PATCH_BIT) {
            node::PATCH_BIT => self.patch_at(off, own, data),
            _ => self.own_map(data, own, off, format::MAX_HEIGHT + 1),
        }
    }

    /// The byte length of the node at `own` in this file's `data` (`None` if it does not
    /// parse): for a walk over the nodes of a section ([`Snapshot::stats`]).
    pub fn node_len(&self, data: &'a [u8], own: u32) -> Option<usize> {
        let (kind, _, at) = Self::node_header(data, own)?;
        let end = match kind {
            node::PATCH_BIT => {
                let (_, base, w, mask_at) = self.patch_head(data, own)?;
                let n = self.plain_map_at(base, format::MAX_HEIGHT + 1)?.len();
                let mask = format::slice_at(data, mask_at, n.div_ceil(8))?;
                let m = format::count_ones(mask) as usize;
                (mask_at + mask.len()).checked_add(m.checked_mul(w + 1)?)?
            }
            node::LIST_BIT | 0 => {
                let (head, used) = format::varint_at(data, at)?;
                let (v, w) = self.l().heads.split(head);
                let n = if kind == node::LIST_BIT {
                    usize::try_from(v).ok()?
                } else {
                    self.shape(u32::try_from(v).ok()?)?.keys.len() / format::SHAPE_KEY_LEN
                };
                (at + used).checked_add(n.checked_mul(w + 1)?)?
            }
            _ => return None,
        };
        // `end` is past the header (no sum above wraps), so a walk always moves on.
        (end <= data.len()).then(|| end - own as usize)
    }

    /// The head of the patch node at `own` in this file's `data`: `(height, base node
    /// offset, payload width, offset of the mask)`. Version 3: a varint head
    /// ([`format::Heads`]); versions 1 and 2: a `u32` base, 4-byte payloads.
    pub fn patch_head(&self, data: &[u8], own: u32) -> Option<(u8, u32, usize, usize)> {
        let (_, height, at) = Self::node_header(data, own)?;
        if self.l().heads.narrow() {
            let (head, used) = format::varint_at(data, at)?;
            let (base, w) = self.l().heads.split(head);
            Some((height, u32::try_from(base).ok()?, w, at + used))
        } else {
            Some((height, format::u32_at(data, at)?, format::MAX_WIDTH, at + 4))
        }
    }

    /// The patch node at `off` (`own` in this file's data): its base map node's slots,
    /// with the patched ones replaced.
    fn patch_at(&self, off: u32, own: u32, data: &'a [u8]) -> Option<Record<'a>> {
        let (height, base_off, w, mask_at) = self.patch_head(data, own)?;
        if base_off >= off || height == 0 {
            return None;
        }
        let base = self.plain_map_at(base_off, height + 1)?;
        if base.len() > format::MAX_PATCH_SLOTS {
            return None;
        }
        let mask_len = base.len().div_ceil(8);
        let mask = format::slice_at(data, mask_at, mask_len)?;
        let m = format::count_ones(mask) as usize;
        let patch = format::slice_at(data, mask_at, mask_len + m * (w + 1))?;
        Some(base.patched(*self, patch, w as u8, height, off))
    }

    /// The list node at `off`, whose height must be below `below`.
    pub fn list_at(&self, off: u32, below: u8) -> Option<List<'a>> {
        let Some(own) = off.checked_sub(self.l().starts.data) else {
            return self.below(|d| d.list_at(off, below));
        };
        let data = self.data()?;
        let (kind, height, at) = Self::node_header(data, own)?;
        if kind != node::LIST_BIT || height == 0 || height >= below {
            return None;
        }
        let (head, used) = format::varint_at(data, at)?;
        let (n, w) = self.l().heads.split(head);
        let n = u32::try_from(n).ok()?;
        let slots = Self::slots(data, at + used, n as usize, w)?;
        Some(List::new(*self, slots, n, w as u8, height, off))
    }

    /// [`Raw::value`], except that a plain string (pooled or inline) comes back as its
    /// bytes, not yet checked as UTF-8: for writers that check while they copy (JSON).
    #[inline(always)]
    pub(crate) fn text_or_value(
        &self,
        t: u8,
        stored: u32,
        bytes: &'a [u8],
        width: usize,
        height: u8,
    ) -> Option<TextOrValue<'a>> {
        Some(match t {
            tag::STR => TextOrValue::Text(self.pool_bytes(stored)?),
            t if (tag::STR_INLINE..=tag::STR_INLINE + tag::STR_INLINE_MAX).contains(&t) => {
                TextOrValue::Text(bytes.get(..(t - tag::STR_INLINE) as usize)?)
            }
            _ => TextOrValue::Value(self.value(t, stored, bytes, width, height)?),
        })
    }

    /// Decodes one slot of a node of height `height`: tag `t`, the payload as stored
    /// (`stored`, zero-extended from its `bytes`, `width` of them).
    ///
    /// The values hot reads meet most (strings, small scalars) are decoded here, inline in
    /// the caller; the others in [`value_rest`](Self::value_rest), out of line, so that a
    /// read of a string does not pay for the stack frame and the saved registers that
    /// building a list or map view needs (callgrind: `get_key` of an FSST title, 215 → 207
    /// instructions).
    #[inline]
    pub fn value(
        &self,
        t: u8,
        stored: u32,
        bytes: &'a [u8],
        width: usize,
        height: u8,
    ) -> Option<ValueRef<'a>> {
        let p = stored;
        Some(match t {
            tag::NULL => ValueRef::Null,
            tag::FALSE => ValueRef::Bool(false),
            tag::TRUE => ValueRef::Bool(true),
            tag::INT => ValueRef::Int(format::widen_payload(t, p, width) as i32 as i64),
            tag::F32 => ValueRef::Float(f32::from_bits(format::widen_payload(t, p, width)) as f64),
            tag::STR => ValueRef::Str(Str::plain(self.pool_str(p)?)),
            tag::FSST => ValueRef::Str(self.fsst_str(p)?),
            t if (tag::STR_INLINE..=tag::STR_INLINE + tag::STR_INLINE_MAX).contains(&t) => {
                let n = (t - tag::STR_INLINE) as usize;
                ValueRef::Str(Str::plain(std::str::from_utf8(bytes.get(..n)?).ok()?))
            }
            _ => return self.value_rest(t, p, height),
        })
    }

    /// [`value`](Self::value) of the other tags: wide numbers, cold and derived strings,
    /// byte strings, lists and maps.
    #[inline(never)]
    fn value_rest(&self, t: u8, p: u32, height: u8) -> Option<ValueRef<'a>> {
        Some(match t {
            tag::INT64 => ValueRef::Int(i64::from_le_bytes(self.pool_bytes(p)?.try_into().ok()?)),
            tag::F64 => ValueRef::Float(f64::from_le_bytes(self.pool_bytes(p)?.try_into().ok()?)),
            tag::COLD | tag::COLD_DIRECT => ValueRef::Str(self.cold_str(t, p)?),
            tag::DERIVED => ValueRef::Str(self.derived_str(p, 1)?),
            tag::BYTES => ValueRef::Bytes(self.pool_bytes(p)?),
            tag::LIST => ValueRef::List(self.list_at(p, height)?),
            tag::MAP => ValueRef::Map(self.map_at(p, height)?),
            _ => None?,
        })
    }
}
