//! [`Anchor`]: an owned, `'static` way back to a record or list of a snapshot, for code that
//! cannot hold a borrow (language bindings, caches keyed across an `await`).

use super::{Raw, Snapshot};
use crate::format::{self, ContentHash};
use crate::read::{List, Record};

/// Where a record, nested map or list lives in a snapshot: an owned, `Copy`, `'static`
/// token (24 bytes) that [`Snapshot::record_at`] / [`Snapshot::list_at`] turn back into the
/// borrowed view in O(overlay depth), without hashing an id again.
///
/// An anchor names the file it was read from by its content hash, so it finds its node in
/// that snapshot and in every overlay over it (like a [`crate::Key`]); resolved against any
/// other snapshot it finds nothing (`None`), never another record. It keeps nothing alive:
/// hold the `Arc<Snapshot>` alongside it.
///
/// ```
/// # fn main() -> fms::Result<()> {
/// let mut b = fms::SnapshotBuilder::new();
/// b.insert("v", &serde_json::json!({"title": "Intro", "tags": ["a", "b"]}))?;
/// let snap = fms::Snapshot::from_bytes(b.to_bytes()?)?;
/// let at = snap.anchor("v").unwrap();                   // 'static: store it anywhere
/// let rec = snap.record_at(at).unwrap();
/// assert_eq!(rec.get("title").unwrap().to_str().as_deref(), Some("Intro"));
/// let tags = rec.get("tags").unwrap().as_list().unwrap().anchor();
/// assert_eq!(snap.list_at(tags).unwrap().len(), 2);
/// assert!(snap.list_at(at).is_none());                   // a record's anchor is no list
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Anchor {
    /// The file the node was read from (its overlay chain resolves lower offsets).
    file: ContentHash,
    /// Combined data offset of the node.
    off: u32,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// A top-level record: a map node or an overlay's patch node.
    Record,
    /// A nested map.
    Map,
    List,
}

impl Anchor {
    fn new(raw: &Raw<'_>, off: u32, kind: Kind) -> Anchor {
        Anchor {
            file: raw.l().header.content_hash,
            off,
            kind,
        }
    }

    /// The reading core of the file this anchor names, found from `top` down its chain.
    fn file<'a>(&self, top: &'a Snapshot) -> Option<Raw<'a>> {
        let mut s = top;
        loop {
            if s.hash() == self.file {
                return Some(s.raw());
            }
            s = s.base()?;
        }
    }
}

impl Snapshot {
    /// The anchor of the record with this id (`None` if there is none): what
    /// [`record_at`](Self::record_at) reads back. O(1) expected, like [`get`](Self::get).
    pub fn anchor(&self, id: &str) -> Option<Anchor> {
        let raw = self.raw();
        let (level, off) = raw.locate(id.as_bytes(), format::index_hash(id.as_bytes()))?;
        // A tombstone is no record; nor is anything else `record_at` cannot read.
        level.record_at(off)?;
        Some(Anchor::new(&level, off, Kind::Record))
    }

    /// The record or nested map `a` names; `None` if `a` is a list's or belongs to a
    /// snapshot that is neither this one nor a base of it. O(overlay depth); no heap.
    pub fn record_at(&self, a: Anchor) -> Option<Record<'_>> {
        let raw = a.file(self)?;
        match a.kind {
            Kind::Record => raw.record_at(a.off),
            Kind::Map => raw.map_at(a.off, format::MAX_HEIGHT + 1),
            Kind::List => None,
        }
    }

    /// The list `a` names; `None` if `a` is a record's or belongs to a snapshot that is
    /// neither this one nor a base of it. O(overlay depth); no heap.
    pub fn list_at(&self, a: Anchor) -> Option<List<'_>> {
        let raw = a.file(self)?;
        match a.kind {
            Kind::List => raw.list_at(a.off, format::MAX_HEIGHT + 1),
            Kind::Record | Kind::Map => None,
        }
    }
}

impl Record<'_> {
    /// This map's anchor, for [`Snapshot::record_at`]: also for a record or nested map
    /// that an overlay stores as a patch of its base's (only some of its fields stored
    /// anew). Always `Some`; an `Option` for compatibility. O(1).
    pub fn anchor(&self) -> Option<Anchor> {
        let (raw, patched) = self.origin();
        Some(if patched {
            // Read back as stored: the patch node over its base's map node.
            Anchor::new(&raw, self.own_offset(), Kind::Record)
        } else {
            Anchor::new(&raw, self.node_offset(), Kind::Map)
        })
    }
}

impl List<'_> {
    /// This list's anchor, for [`Snapshot::list_at`]. O(1).
    pub fn anchor(&self) -> Anchor {
        Anchor::new(&self.origin(), self.node().0, Kind::List)
    }
}

/// Where a walk of a snapshot's ids ([`Snapshot::ids`]) stands: an owned, `Copy` token to
/// resume it later with [`Snapshot::ids_from`], for code that cannot keep the borrowing
/// iterator (a binding's iterator object).
///
/// ```
/// # fn main() -> fms::Result<()> {
/// let mut b = fms::SnapshotBuilder::new();
/// for id in ["a", "b", "c"] {
///     b.insert(id, &serde_json::json!({}))?;
/// }
/// let snap = fms::Snapshot::from_bytes(b.to_bytes()?)?;
/// let mut ids = snap.ids();
/// assert_eq!(ids.next(), Some("a"));
/// let at = ids.cursor();
/// drop(ids);
/// assert_eq!(snap.ids_from(at).unwrap().collect::<Vec<_>>(), ["b", "c"]);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdCursor {
    top: ContentHash,
    level: u8,
    e: u32,
    end: u32,
    left: usize,
}

impl super::Ids<'_> {
    /// Where this walk stands, to resume it with [`Snapshot::ids_from`]. O(1).
    pub fn cursor(&self) -> IdCursor {
        let top = self.entries.levels[0].map(|r| r.l().header.content_hash);
        IdCursor {
            top: top.unwrap_or_default(),
            level: self.entries.level as u8,
            e: self.entries.e,
            end: self.entries.end,
            left: self.left,
        }
    }
}

impl Snapshot {
    /// The walk of [`ids`](Self::ids) resumed where `c` was taken; `None` if `c` was taken
    /// on another snapshot. O(overlay depth).
    pub fn ids_from(&self, c: IdCursor) -> Option<super::Ids<'_>> {
        let mut ids = self.ids();
        if c.top != self.hash() || usize::from(c.level) >= ids.entries.levels.len() {
            return None;
        }
        ids.entries.level = usize::from(c.level);
        ids.entries.e = c.e;
        ids.entries.end = c.end;
        ids.left = c.left;
        Some(ids)
    }
}
