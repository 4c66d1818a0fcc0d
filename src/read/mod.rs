//! Reading snapshots: [`Snapshot`] owns the bytes, [`Record`], [`ValueRef`] and [`List`]
//! are zero-copy views into them.
//!
//! The reading core, [`Raw`], works over a plain `&[u8]` plus the [`Layout`] parsed at open;
//! every read is bounds-checked through the helpers in [`crate::format`], so any bytes give
//! `None` or `Err`, never a panic.

mod layout;
mod record;

use std::fmt;
use std::path::Path;

pub(crate) use layout::Layout;
pub use record::{List, ListIter, Record, RecordIter, ValueRef};

use crate::error::{Error, Result};
use crate::format::{self, ContentHash, node, tag};

/// A pre-resolved key: [`Snapshot::key`] looks a name up once, [`Record::get_key`] then
/// finds the field without hashing the name again.
///
/// A `Key` belongs to the snapshot that resolved it; used with another snapshot it finds
/// nothing.
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
/// `Snapshot` is `Send + Sync`; share it across threads with an `Arc`.
///
/// ```
/// # fn main() -> fms::Result<()> {
/// let mut b = fms::SnapshotBuilder::new();
/// b.insert("video:1", &serde_json::json!({"title": "Intro", "duration": 42}))?;
/// let snap = fms::Snapshot::from_bytes(b.to_bytes()?)?;
/// let rec = snap.get("video:1").unwrap();
/// assert_eq!(rec.get("title").and_then(|v| v.as_str()), Some("Intro"));
/// # Ok(()) }
/// ```
pub struct Snapshot {
    buf: Box<dyn AsRef<[u8]> + Send + Sync>,
    layout: Layout,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("hash", &self.layout.header.content_hash)
            .field("records", &self.len())
            .field("bytes", &self.as_bytes().len())
            .finish()
    }
}

impl Snapshot {
    /// Maps the file at `path` and checks its header. O(1): no data is read or copied.
    ///
    /// The file must not be modified while mapped (the builder never rewrites a file: it
    /// writes a new one and renames it into place).
    pub fn open(path: impl AsRef<Path>) -> Result<Snapshot> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            return Err(Error::format(0, format!("{} is empty", path.display())));
        }
        // SAFETY: the map is read-only and Rust never sees a `&mut` into it. Soundness
        // requires that no process truncates or rewrites the file while it is mapped: fms
        // itself only ever creates snapshot files whole (temp file + rename) and never
        // writes into an existing one, and the docs require the same of other writers.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Snapshot::from_bytes(map)
    }

    /// Reads a snapshot from any owned buffer: `Vec<u8>`, `&'static [u8]`, an mmap, ...
    /// O(1) beyond what the buffer costs: the bytes are not copied.
    pub fn from_bytes<D>(bytes: D) -> Result<Snapshot>
    where
        D: AsRef<[u8]> + Send + Sync + 'static,
    {
        let layout = Layout::parse(bytes.as_ref())?;
        Ok(Snapshot {
            buf: Box::new(bytes),
            layout,
        })
    }

    /// The whole file.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        (*self.buf).as_ref()
    }

    #[inline]
    pub(crate) fn raw(&self) -> Raw<'_> {
        Raw {
            b: self.as_bytes(),
            l: &self.layout,
        }
    }

    /// The content hash: identifies this snapshot (and, for an overlay, its base).
    pub fn hash(&self) -> ContentHash {
        self.layout.header.content_hash
    }

    /// Number of records. O(1).
    pub fn len(&self) -> usize {
        self.layout.ids.count as usize
    }

    /// Whether the snapshot has no records. O(1).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of distinct shapes (key lists). O(1).
    pub fn shape_count(&self) -> usize {
        self.layout.shape_count as usize
    }

    /// Number of distinct keys. O(1).
    pub fn key_count(&self) -> usize {
        self.layout.keys.count as usize
    }

    /// The record with this id. O(1) expected: one hash, a few probes; allocation-free.
    #[inline]
    pub fn get(&self, id: &str) -> Option<Record<'_>> {
        let raw = self.raw();
        let entry = raw.find_id(id)?;
        raw.record_at(raw.id_record_offset(entry)?)
    }

    /// Whether a record has this id. O(1) expected; allocation-free.
    pub fn contains(&self, id: &str) -> bool {
        self.raw().find_id(id).is_some()
    }

    /// Resolves a key name once, for [`Record::get_key`]. O(1) expected.
    pub fn key(&self, name: &str) -> Option<Key> {
        let raw = self.raw();
        Some(Key {
            id: raw.find_key(name)?,
            tag: raw.l.key_tag,
        })
    }

    /// The ids, in insertion order. Entries a corrupt file makes unreadable are skipped
    /// (`verify` reports them).
    pub fn ids(&self) -> impl Iterator<Item = &str> + '_ {
        let raw = self.raw();
        (0..raw.l.ids.count).filter_map(move |e| raw.id_at(e))
    }

    /// The `(id, record)` pairs, in insertion order. Allocation-free.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Record<'_>)> + '_ {
        let raw = self.raw();
        (0..raw.l.ids.count)
            .filter_map(move |e| Some((raw.id_at(e)?, raw.record_at(raw.id_record_offset(e)?)?)))
    }

    /// Checks everything reads rely on: section checksums, every pool entry, shape, key,
    /// node and id; that references point strictly backwards, heights and walk sizes stay
    /// within the format's limits, and both hash indexes find every entry. O(size of the
    /// file). Bookkeeping memory: two bits per pool byte, 8 bytes per data node (at most
    /// 4 bytes per data byte, since the smallest node is 2 bytes), and O(keys + shapes).
    ///
    /// A snapshot that passes never returns `None` or `Err` from a read of data it holds.
    pub fn verify(&self) -> Result<()> {
        crate::verify::verify(self.as_bytes(), &self.layout)
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

/// The reading core: the file's bytes and their layout. Every method is bounds-checked and
/// returns `None` on malformed data.
#[derive(Clone, Copy)]
pub(crate) struct Raw<'a> {
    pub b: &'a [u8],
    pub l: &'a Layout,
}

impl<'a> Raw<'a> {
    #[inline]
    pub fn pool(&self) -> Option<&'a [u8]> {
        self.b.get(self.l.pool.clone())
    }

    #[inline]
    pub fn data(&self) -> Option<&'a [u8]> {
        self.b.get(self.l.data.clone())
    }

    /// The bytes of the pool entry at `off`.
    #[inline]
    pub fn pool_bytes(&self, off: u32) -> Option<&'a [u8]> {
        format::pool_entry(self.pool()?, off as usize)
    }

    #[inline]
    pub fn pool_str(&self, off: u32) -> Option<&'a str> {
        std::str::from_utf8(self.pool_bytes(off)?).ok()
    }

    /// Probes a hash index for `key`; `eq(entry)` confirms a candidate.
    #[inline]
    fn lookup(
        &self,
        idx: &layout::IndexLayout,
        key: &[u8],
        eq: impl Fn(u32) -> bool,
    ) -> Option<u32> {
        let h = format::index_hash(key);
        let want = format::index_tag(h);
        let mask = idx.slots.wrapping_sub(1);
        let mut pos = format::index_home(h, idx.slots);
        for _ in 0..idx.max_probe {
            let at = idx.slots_at + pos as usize * format::INDEX_SLOT_LEN;
            let slot = format::slice_at(self.b, at, 8)?;
            let entry = u32::from_le_bytes(slot[4..8].try_into().ok()?);
            if entry == 0 {
                return None;
            }
            let tag = u32::from_le_bytes(slot[..4].try_into().ok()?);
            if tag == want && entry <= idx.count && eq(entry - 1) {
                return Some(entry - 1);
            }
            pos = (pos + 1) & mask;
        }
        None
    }

    /// The key id of `name`.
    #[inline]
    pub fn find_key(&self, name: &str) -> Option<u32> {
        self.lookup(&self.l.keys, name.as_bytes(), |k| {
            self.key_name_bytes(k) == Some(name.as_bytes())
        })
    }

    #[inline]
    fn key_name_bytes(&self, k: u32) -> Option<&'a [u8]> {
        if k >= self.l.keys.count {
            return None;
        }
        let at = self.l.keys.entries_at + k as usize * format::KEY_ENTRY_LEN;
        self.pool_bytes(format::u32_at(self.b, at)?)
    }

    /// The name of key `k`.
    #[inline]
    pub fn key_name(&self, k: u32) -> Option<&'a str> {
        std::str::from_utf8(self.key_name_bytes(k)?).ok()
    }

    /// The id index entry for `id`.
    #[inline]
    pub fn find_id(&self, id: &str) -> Option<u32> {
        self.lookup(&self.l.ids, id.as_bytes(), |e| {
            self.id_bytes(e) == Some(id.as_bytes())
        })
    }

    #[inline]
    fn id_entry(&self, e: u32) -> Option<usize> {
        (e < self.l.ids.count).then(|| self.l.ids.entries_at + e as usize * format::ID_ENTRY_LEN)
    }

    #[inline]
    fn id_bytes(&self, e: u32) -> Option<&'a [u8]> {
        self.pool_bytes(format::u32_at(self.b, self.id_entry(e)?)?)
    }

    /// The id of entry `e`.
    pub fn id_at(&self, e: u32) -> Option<&'a str> {
        std::str::from_utf8(self.id_bytes(e)?).ok()
    }

    /// The data offset of the record of entry `e`.
    #[inline]
    pub fn id_record_offset(&self, e: u32) -> Option<u32> {
        format::u32_at(self.b, self.id_entry(e)? + 4)
    }

    /// Shape `s`: its key ids and its slot table.
    #[inline]
    pub fn shape(&self, s: u32) -> Option<Shape<'a>> {
        if s >= self.l.shape_count {
            return None;
        }
        let sec = self.b.get(self.l.shapes.clone())?;
        let off = format::u32_at(sec, 4 + s as usize * format::SHAPE_OFFSET_LEN)? as usize;
        let (n, used) = format::varint_at(sec, off)?;
        let len = usize::try_from(n)
            .ok()?
            .checked_mul(format::SHAPE_KEY_LEN)?;
        let at = off + used;
        let keys = format::slice_at(sec, at, len)?;
        let base = format::u32_at(sec, at + len)?;
        let (span, used) = format::varint_at(sec, at + len + 4)?;
        let table = format::slice_at(sec, at + len + 4 + used, usize::try_from(span).ok()?)?;
        Some(Shape { keys, base, table })
    }

    /// Parses the node header at data offset `off`: `(is_list, height, offset after header)`.
    #[inline]
    fn node_header(&self, data: &[u8], off: u32) -> Option<(bool, u8, usize)> {
        let h = *data.get(off as usize)?;
        if h & node::RESERVED_BIT != 0 {
            return None;
        }
        Some((
            h & node::LIST_BIT != 0,
            h & node::HEIGHT_MASK,
            off as usize + 1,
        ))
    }

    /// The map node at `off`, whose height must be below `below`.
    #[inline]
    pub fn map_at(&self, off: u32, below: u8) -> Option<Record<'a>> {
        let data = self.data()?;
        let (is_list, height, at) = self.node_header(data, off)?;
        if is_list || height == 0 || height >= below {
            return None;
        }
        let (shape, used) = format::varint_at(data, at)?;
        let shape = self.shape(u32::try_from(shape).ok()?)?;
        let n = shape.keys.len() / format::SHAPE_KEY_LEN;
        let slots = format::slice_at(data, at + used, n.checked_mul(format::SLOT_LEN)?)?;
        Some(Record::new(*self, shape, slots, height))
    }

    /// A top-level record node.
    #[inline]
    pub fn record_at(&self, off: u32) -> Option<Record<'a>> {
        self.map_at(off, format::MAX_HEIGHT + 1)
    }

    /// The list node at `off`, whose height must be below `below`.
    pub fn list_at(&self, off: u32, below: u8) -> Option<List<'a>> {
        let data = self.data()?;
        let (is_list, height, at) = self.node_header(data, off)?;
        if !is_list || height == 0 || height >= below {
            return None;
        }
        let (n, used) = format::varint_at(data, at)?;
        let len = usize::try_from(n).ok()?.checked_mul(format::SLOT_LEN)?;
        let slots = format::slice_at(data, at + used, len)?;
        Some(List::new(*self, slots, height))
    }

    /// Decodes one slot of a node of height `height`.
    #[inline]
    pub fn value(
        &self,
        t: u8,
        payload: [u8; 4],
        payload_at: &'a [u8],
        height: u8,
    ) -> Option<ValueRef<'a>> {
        let p = u32::from_le_bytes(payload);
        Some(match t {
            tag::NULL => ValueRef::Null,
            tag::FALSE => ValueRef::Bool(false),
            tag::TRUE => ValueRef::Bool(true),
            tag::INT => ValueRef::Int(p as i32 as i64),
            tag::F32 => ValueRef::Float(f32::from_bits(p) as f64),
            tag::INT64 => ValueRef::Int(i64::from_le_bytes(self.pool_bytes(p)?.try_into().ok()?)),
            tag::F64 => ValueRef::Float(f64::from_le_bytes(self.pool_bytes(p)?.try_into().ok()?)),
            tag::STR => ValueRef::Str(self.pool_str(p)?),
            tag::BYTES => ValueRef::Bytes(self.pool_bytes(p)?),
            tag::LIST => ValueRef::List(self.list_at(p, height)?),
            tag::MAP => ValueRef::Map(self.map_at(p, height)?),
            t if (tag::STR_INLINE..=tag::STR_INLINE + tag::STR_INLINE_MAX).contains(&t) => {
                let n = (t - tag::STR_INLINE) as usize;
                ValueRef::Str(std::str::from_utf8(payload_at.get(..n)?).ok()?)
            }
            _ => return None,
        })
    }
}
