//! Zero-copy views: [`Record`] (a map node), [`List`] and [`ValueRef`].

use std::fmt;

use super::{Key, Raw, Shape, Str};
use crate::error::{Error, Result};
use crate::format::{self, SHAPE_KEY_LEN};
use crate::tuplemap::{TupleMap, Value};

/// A borrowed value inside a snapshot. Strings and bytes borrow from the snapshot's bytes;
/// lists and maps are views. Copying a `ValueRef` is cheap and never allocates.
#[derive(Clone, Copy)]
pub enum ValueRef<'a> {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string: a handle that borrows the snapshot ([`Str::as_plain`] gives the `&str`
    /// of a string stored plain; a compressed one decodes on demand).
    Str(Str<'a>),
    /// A byte string, borrowed from the snapshot.
    Bytes(&'a [u8]),
    /// A list.
    List(List<'a>),
    /// A nested map (a record without an id).
    Map(Record<'a>),
}

impl<'a> ValueRef<'a> {
    /// Appends the value as compact JSON to `out`, as [`Record::write_json`] does.
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<()> {
        crate::json::write_value(out, *self)
    }

    /// The value's kind as a word, as [`Value::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            ValueRef::Null => "null",
            ValueRef::Bool(_) => "bool",
            ValueRef::Int(_) => "int",
            ValueRef::Float(_) => "float",
            ValueRef::Str(_) => "str",
            ValueRef::Bytes(_) => "bytes",
            ValueRef::List(_) => "list",
            ValueRef::Map(_) => "map",
        }
    }
    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, ValueRef::Null)
    }
    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            ValueRef::Bool(b) => Some(b),
            _ => None,
        }
    }
    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            ValueRef::Int(i) => Some(i),
            _ => None,
        }
    }
    /// The integer as `u64`, if this is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_i64().and_then(|i| u64::try_from(i).ok())
    }
    /// The number as `f64` (integers convert, as in `serde_json`).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ValueRef::Float(f) => Some(f),
            ValueRef::Int(i) => Some(i as f64),
            _ => None,
        }
    }
    /// The string, if this is one: a handle that compares with `&str`, displays, writes
    /// into a buffer or becomes a `Cow<str>` ([`Str`]).
    pub fn as_str(&self) -> Option<Str<'a>> {
        match *self {
            ValueRef::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The string as a `Cow`, if this is one: borrowed when stored plain, decoded
    /// otherwise. `None` if this is not a string or (on a damaged file) it does not
    /// decode; [`as_str`](Self::as_str) tells the two apart.
    pub fn to_str(&self) -> Option<std::borrow::Cow<'a, str>> {
        self.as_str()?.to_cow().ok()
    }
    /// The bytes, borrowed from the snapshot, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            ValueRef::Bytes(b) => Some(b),
            _ => None,
        }
    }
    /// The list, if this is one.
    pub fn as_list(&self) -> Option<List<'a>> {
        match *self {
            ValueRef::List(l) => Some(l),
            _ => None,
        }
    }
    /// The nested map, if this is one.
    pub fn as_map(&self) -> Option<Record<'a>> {
        match *self {
            ValueRef::Map(m) => Some(m),
            _ => None,
        }
    }
    /// An owned copy. Allocates; O(size of the value). Errors only on a corrupt snapshot
    /// or one whose value exceeds the walk limit ([`crate::format::MAX_WALK`]).
    pub fn to_owned(&self) -> Result<Value> {
        crate::serde::owned_of(*self)
    }
}

/// Formats structurally: scalars as Rust does (`"text"`, `42`, `null`), lists and maps
/// like [`List`]'s and [`Record`]'s `Debug`. [`Display`](fmt::Display) gives JSON.
impl fmt::Debug for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::serde::debug_walk(*self, f)
    }
}

/// Formats as compact JSON, like [`Record`]'s `Display`.
impl fmt::Display for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::serde::display_json(self, f)
    }
}

/// How a stored value must agree with an owned one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compare {
    /// As `==` does: floats by value with NaN equal to NaN (as [`Value`]'s `PartialEq`),
    /// maps with the same fields in any order.
    Equal,
    /// Bit for bit: floats by bits (so `-0.0` and `0.0` differ), maps with the same keys in
    /// the same order. What reusing a stored node for a value requires.
    Identical,
}

/// The one comparison of a stored value with an owned one, in either mode.
pub(crate) fn compare(r: ValueRef<'_>, v: &Value, mode: Compare) -> bool {
    match (r, v) {
        (ValueRef::Null, Value::Null) => true,
        (ValueRef::Bool(a), Value::Bool(b)) => a == *b,
        (ValueRef::Int(a), Value::Int(b)) => a == *b,
        (ValueRef::Float(a), Value::Float(b)) => match mode {
            Compare::Equal => crate::tuplemap::floats_equal(a, *b),
            Compare::Identical => a.to_bits() == b.to_bits(),
        },
        (ValueRef::Str(a), Value::Str(b)) => a == *b,
        (ValueRef::Bytes(a), Value::Bytes(b)) => a == &b[..],
        (ValueRef::List(a), Value::List(b)) => {
            a.len() == b.len()
                && b.iter()
                    .enumerate()
                    .all(|(i, y)| a.get(i).is_some_and(|x| compare(x, y, mode)))
        }
        (ValueRef::Map(a), Value::Map(b)) => compare_map(a, b, mode),
        _ => false,
    }
}

/// [`compare`] for a record and a map.
pub(crate) fn compare_map(r: Record<'_>, m: &TupleMap, mode: Compare) -> bool {
    r.len() == m.len()
        && match mode {
            Compare::Equal => (0..r.len()).all(|i| match r.entry(i) {
                Ok((k, x)) => m.get(k).is_some_and(|y| compare(x, y, mode)),
                Err(_) => false,
            }),
            Compare::Identical => (0..r.len()).zip(m.iter()).all(|(i, (k2, y))| {
                r.entry(i)
                    .is_ok_and(|(k1, x)| k1 == k2 && compare(x, y, mode))
            }),
        }
}

/// Compares a borrowed value with an owned one (floats as in [`Value`]'s `PartialEq`;
/// maps in any field order).
impl PartialEq<Value> for ValueRef<'_> {
    fn eq(&self, other: &Value) -> bool {
        compare(*self, other, Compare::Equal)
    }
}

/// A record: one entity's fields, read like a dict. A view into the snapshot: copying it
/// is cheap, reading it never allocates.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    raw: Raw<'a>,
    /// The shape's key ids (`u32` LE each).
    keys: &'a [u8],
    /// The shape's slot table: slot + 1 for key id `base + i` (empty: scan `keys`).
    table: &'a [u8],
    base: u32,
    /// `n` tag bytes, then `n` payloads of `width` bytes (for a patched record: its base
    /// node's), running on to the end of the data section.
    slots: &'a [u8],
    /// Empty, or for a record an overlay patches: the mask (`ceil(n / 8)` bytes, bit `i`
    /// set = slot `i` replaced), then `m` tags and `m` payloads of the replaced slots.
    patch: &'a [u8],
    /// Bytes per payload in `slots` (1..=4).
    width: u8,
    /// Bytes per payload in `patch`.
    patch_width: u8,
    height: u8,
    /// Height of the map node under any patch (`height` when there is none).
    node_height: u8,
    /// Data offset (in the overlay chain's combined space) of the map node whose slots
    /// `slots` are.
    off: u32,
    /// Data offset of the record's own node: `off`, or for a patched record its patch
    /// node's.
    at: u32,
}

impl<'a> Record<'a> {
    pub(crate) fn new(
        raw: Raw<'a>,
        shape: Shape<'a>,
        slots: &'a [u8],
        width: u8,
        height: u8,
        off: u32,
    ) -> Self {
        Record {
            raw,
            keys: shape.keys,
            table: shape.table,
            base: shape.base,
            slots,
            patch: &[],
            width,
            patch_width: width,
            height,
            node_height: height,
            off,
            at: off,
        }
    }

    /// This (base) record with the slots of a patch node of `raw`'s file (at combined
    /// data offset `at`) replaced.
    pub(crate) fn patched(
        self,
        raw: Raw<'a>,
        patch: &'a [u8],
        width: u8,
        height: u8,
        at: u32,
    ) -> Self {
        Record {
            raw,
            patch,
            patch_width: width,
            height,
            at,
            ..self
        }
    }

    /// The data offset of the record's own node: its patch node if it is patched, else
    /// its map node. A MAP slot (version 5) or an id entry that refers to it reads it as
    /// it is.
    pub(crate) fn own_offset(&self) -> u32 {
        self.at
    }

    /// The data offset of the map node holding this record's slots: the record itself,
    /// or for a patched record the base node under the patch.
    pub(crate) fn node_offset(&self) -> u32 {
        self.off
    }

    /// The record under the patch (the record itself if it has none).
    pub(crate) fn unpatched(&self) -> Record<'a> {
        Record {
            patch: &[],
            height: self.node_height,
            at: self.off,
            ..*self
        }
    }

    /// The height of the record's node (its patch's, if patched).
    pub(crate) fn height(&self) -> u8 {
        self.height
    }

    /// The walk limit of whole-value reads of this record (its file's).
    pub(crate) fn walk_limit(&self) -> u64 {
        self.raw.l().walk_limit()
    }

    /// The reading core of the file this record was read from, and whether an overlay
    /// patches it (for [`crate::Anchor`]).
    pub(crate) fn origin(&self) -> (Raw<'a>, bool) {
        (self.raw, !self.patch.is_empty())
    }

    /// Number of fields. O(1).
    #[inline]
    pub fn len(&self) -> usize {
        self.keys.len() / SHAPE_KEY_LEN
    }

    /// Whether the record has no fields. O(1).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn position(&self, key_id: u32) -> Option<usize> {
        if !self.table.is_empty() {
            // O(1): the slot table covers every key of the shape (verify checks that). The
            // key id at the slot is confirmed, so a corrupt table can only cause a miss.
            let slot = (*self.table.get(key_id.wrapping_sub(self.base) as usize)? as usize)
                .checked_sub(1)?;
            let c = self
                .keys
                .get(slot * SHAPE_KEY_LEN..slot * SHAPE_KEY_LEN + SHAPE_KEY_LEN)?;
            return (u32::from_le_bytes([c[0], c[1], c[2], c[3]]) == key_id).then_some(slot);
        }
        // No table (a large or sparse shape): scan the key ids.
        self.keys
            .chunks_exact(SHAPE_KEY_LEN)
            .position(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) == key_id)
    }

    /// The value of field `i` (in field order).
    #[inline]
    fn slot(&self, i: usize) -> Option<ValueRef<'a>> {
        let (t, p, bytes, w) = self.slot_parts(i)?;
        self.raw.value(t, p, bytes, w, self.height)
    }

    /// Slot `i` as stored, under any patch: tag, payload, payload bytes and width.
    #[inline(always)]
    fn slot_parts(&self, i: usize) -> Option<(u8, u32, &'a [u8], usize)> {
        // `slots` holds n tags, then n payloads of `width` bytes; `i < n` keeps both reads
        // in bounds.
        let n = self.len();
        if i >= n {
            return None;
        }
        let (slots, j, count, w) = if self.patch.is_empty() {
            (self.slots, i, n, self.width as usize)
        } else {
            self.locate(i, n)?
        };
        let (t, p, bytes) = format::slot_at(slots, count, j, w)?;
        Some((t, p, bytes, w))
    }

    /// Field `i` for a writer that checks plain strings as it copies them: its key's
    /// name and its value, both as read ([`Raw::text_or_value`]); `None` if unreadable.
    #[inline]
    pub(crate) fn text_entry(&self, i: usize) -> Option<(&'a [u8], super::TextOrValue<'a>)> {
        let name = self.raw.key_name_bytes(self.key_id_at(i)?)?;
        let (t, p, bytes, w) = self.slot_parts(i)?;
        Some((name, self.raw.text_or_value(t, p, bytes, w, self.height)?))
    }

    /// The value of field `i`, in field order.
    pub(crate) fn value_at(&self, i: usize) -> Option<ValueRef<'a>> {
        self.slot(i)
    }

    /// Tag and payload (widened, [`format::slot_or_null`]) of slot `i` of the node under
    /// any patch (zeros past the end).
    pub(crate) fn raw_slot(&self, i: usize) -> (u8, u32) {
        format::slot_or_null(self.slots, self.len(), i, self.width as usize)
    }

    /// Where slot `i` of a patched record lives: `(slot array, index in it, its length,
    /// payload width)`.
    #[inline]
    fn locate(&self, i: usize, n: usize) -> Option<(&'a [u8], usize, usize, usize)> {
        let (mask, own) = self.patch.split_at_checked(n.div_ceil(8))?;
        let (byte, bit) = (*mask.get(i / 8)?, 1u8 << (i % 8));
        if byte & bit == 0 {
            return Some((self.slots, i, n, self.width as usize));
        }
        let rank =
            format::count_ones(&mask[..i / 8]) as usize + (byte & (bit - 1)).count_ones() as usize;
        let w = self.patch_width as usize;
        Some((own, rank, own.len() / (w + 1), w))
    }

    /// The value of field `name`. O(1) expected (one hash of `name`, then the shape's slot
    /// table); allocation-free.
    #[inline]
    pub fn get(&self, name: &str) -> Option<ValueRef<'a>> {
        let k = self.raw.find_key(name)?;
        self.slot(self.position(k)?)
    }

    /// The value of a pre-resolved key ([`crate::Snapshot::key`]): no hashing. O(1);
    /// allocation-free.
    ///
    /// A key resolved in another snapshot (not this one or a base of it) finds nothing:
    /// use [`try_get_key`](Self::try_get_key) to tell that apart from an absent field, or
    /// [`crate::Snapshot::owns_key`] to check a cached key.
    #[inline]
    pub fn get_key(&self, key: Key) -> Option<ValueRef<'a>> {
        if key.tag != self.raw.key_tag_of(key.id) {
            return None;
        }
        self.slot(self.position(key.id)?)
    }

    /// [`get_key`](Self::get_key) that tells a key of another snapshot from an absent
    /// field: `Err(`[`Error::ForeignKey`]`)` if `key` was not resolved in this record's
    /// snapshot (or a base of it), e.g. a key cached across a
    /// [`crate::Store::reload`]; `Ok(None)` if the record lacks the field. O(1);
    /// allocation-free.
    ///
    /// ```
    /// # fn main() -> fms::Result<()> {
    /// let build = |title: &str| -> fms::Result<fms::Snapshot> {
    ///     let mut b = fms::SnapshotBuilder::new();
    ///     b.insert("v", &serde_json::json!({"title": title}))?;
    ///     fms::Snapshot::from_bytes(b.to_bytes()?)
    /// };
    /// let (old, new) = (build("Intro")?, build("Introduction")?);
    /// let title = old.key("title").unwrap();
    /// let rec = new.get("v").unwrap();
    /// assert!(rec.get_key(title).is_none());                    // looks like "no such field"
    /// assert!(matches!(rec.try_get_key(title), Err(fms::Error::ForeignKey { .. })));
    /// let title = new.key("title").unwrap();                    // resolve it again
    /// assert_eq!(rec.try_get_key(title)?.unwrap().to_str().as_deref(), Some("Introduction"));
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn try_get_key(&self, key: Key) -> Result<Option<ValueRef<'a>>> {
        if key.tag != self.raw.key_tag_of(key.id) {
            return Err(Error::ForeignKey { key: key.id });
        }
        Ok(self.position(key.id).and_then(|i| self.slot(i)))
    }

    /// Whether the record has field `name`. O(1) expected.
    pub fn contains_key(&self, name: &str) -> bool {
        self.raw
            .find_key(name)
            .and_then(|k| self.position(k))
            .is_some()
    }

    /// The field names, in field order. O(1) to create; allocation-free. Names a corrupt
    /// file makes unreadable are skipped (on an unverified file, use
    /// [`iter`](Self::iter) to get names and values in pairs).
    pub fn keys(&self) -> Keys<'a> {
        Keys { rec: *self, i: 0 }
    }

    /// The values, in field order. O(1) to create; allocation-free. Values a corrupt
    /// file makes unreadable are skipped.
    pub fn values(&self) -> Values<'a> {
        Values { rec: *self, i: 0 }
    }

    /// The `(name, value)` pairs, in field order. O(1) to create; allocation-free.
    pub fn iter(&self) -> RecordIter<'a> {
        RecordIter { rec: *self, i: 0 }
    }

    /// The key id of field `i`.
    #[inline]
    fn key_id_at(&self, i: usize) -> Option<u32> {
        // `None` past the shape's keys, for any `i`.
        let c = self.keys.get(i.checked_mul(SHAPE_KEY_LEN)?..)?;
        Some(u32::from_le_bytes(c.get(..SHAPE_KEY_LEN)?.try_into().ok()?))
    }

    /// The name of field `i`.
    #[inline]
    fn key_at(&self, i: usize) -> Option<&'a str> {
        self.raw.key_name(self.key_id_at(i)?)
    }

    /// The name of field `i` (in field order); `None` past the end or if a corrupt file
    /// makes it unreadable. O(1); no heap.
    pub fn field_name(&self, i: usize) -> Option<&'a str> {
        self.key_at(i)
    }

    /// The pre-resolved [`Key`] of field `i` (in field order): for caches indexed by
    /// [`Key::id`], such as a binding's interned key names. O(1); no heap.
    ///
    /// ```
    /// # fn main() -> fms::Result<()> {
    /// let mut b = fms::SnapshotBuilder::new();
    /// b.insert("v", &serde_json::json!({"title": "Intro", "views": 3}))?;
    /// let snap = fms::Snapshot::from_bytes(b.to_bytes()?)?;
    /// let rec = snap.get("v").unwrap();
    /// assert_eq!(rec.field_key(1), snap.key("views"));
    /// assert_eq!(rec.field_name(1), Some("views"));
    /// assert_eq!(rec.field_key(2), None);
    /// assert_eq!(rec.field_name(usize::MAX), None);
    /// # Ok(()) }
    /// ```
    pub fn field_key(&self, i: usize) -> Option<Key> {
        let id = self.key_id_at(i)?;
        Some(Key {
            id,
            tag: self.raw.key_tag_of(id),
        })
    }

    /// Field `i` as `(name, value)`, or an error naming what is corrupt.
    #[inline]
    pub(crate) fn entry(&self, i: usize) -> Result<(&'a str, ValueRef<'a>)> {
        let name = self.key_at(i).ok_or_else(|| Error::Corrupt {
            what: format!("key of field {i} of a record"),
        })?;
        let v = self.slot(i).ok_or_else(|| Error::Corrupt {
            what: format!("value of field {name:?} of a record"),
        })?;
        Ok((name, v))
    }

    /// Deserializes the record into `T`, matching fields by name: fields `T` lacks are
    /// ignored, fields the record lacks take their serde default (or fail if they have
    /// none). `&str` fields borrow from the snapshot.
    ///
    /// ```
    /// # fn main() -> fms::Result<()> {
    /// #[derive(serde::Deserialize)]
    /// struct Video<'a> { title: &'a str, #[serde(default)] views: u64 }
    /// let mut b = fms::SnapshotBuilder::new();
    /// b.insert("v", &serde_json::json!({"duration": 3, "title": "Intro"}))?;
    /// let snap = fms::Snapshot::from_bytes(b.to_bytes()?)?;
    /// let v: Video = snap.get("v").unwrap().deserialize()?;
    /// assert_eq!((v.title, v.views), ("Intro", 0));
    /// # Ok(()) }
    /// ```
    pub fn deserialize<T: serde::Deserialize<'a>>(&self) -> Result<T> {
        crate::serde::from_record(*self)
    }

    /// Appends the record as compact JSON to `out`: the bytes `serde_json::to_vec(&rec)`
    /// gives, written straight from the snapshot (no serde dispatch; each plain string
    /// checked as UTF-8 in the pass that escapes it) — what a server puts in a response
    /// body. One walk under the file's walk limit; on a corrupt file or past the limit,
    /// the error and `out` as it was.
    ///
    /// ```
    /// # fn main() -> fms::Result<()> {
    /// let mut b = fms::SnapshotBuilder::new();
    /// b.insert("v", &serde_json::json!({"title": "Intro \"loops\"", "tags": ["a", 1]}))?;
    /// let snap = fms::Snapshot::from_bytes(b.to_bytes()?)?;
    /// let rec = snap.get("v").unwrap();
    /// let mut body = Vec::new();
    /// rec.write_json(&mut body)?;
    /// assert_eq!(body, serde_json::to_vec(&rec).unwrap());
    /// assert_eq!(body, br#"{"tags":["a",1],"title":"Intro \"loops\""}"#);
    /// # Ok(()) }
    /// ```
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<()> {
        crate::json::write_value(out, ValueRef::Map(*self))
    }

    /// An owned copy of the record. Allocates.
    pub fn to_owned(&self) -> Result<TupleMap> {
        crate::serde::owned_map_of(*self)
    }
}

/// Defines a by-index iterator over `$field` of `$owner` (fields of a record, elements of
/// a list) that skips what `$get` cannot read. Its length is exact for a verified
/// snapshot; on a corrupt one, unreadable items are skipped, so fewer may come.
macro_rules! indexed_iter {
    ($(#[$doc:meta])* $name:ident, $field:ident: $owner:ident, $item:ty, |$o:ident, $i:ident| $get:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name<'a> {
            $field: $owner<'a>,
            i: usize,
        }

        impl<'a> Iterator for $name<'a> {
            type Item = $item;
            #[inline]
            fn next(&mut self) -> Option<$item> {
                while self.i < self.$field.len() {
                    let ($o, $i) = (&self.$field, self.i);
                    self.i += 1;
                    if let Some(x) = $get {
                        return Some(x);
                    }
                }
                None
            }
            fn size_hint(&self) -> (usize, Option<usize>) {
                let n = self.$field.len() - self.i;
                (n, Some(n))
            }
        }

        /// Exact for a verified snapshot (see the type's docs).
        impl ExactSizeIterator for $name<'_> {}
        impl std::iter::FusedIterator for $name<'_> {}
    };
}

indexed_iter!(
    /// Iterator over a record's `(name, value)` pairs ([`Record::iter`]), in field order.
    /// Exact-size for a verified snapshot; on a corrupt one, unreadable fields are skipped.
    RecordIter, rec: Record, (&'a str, ValueRef<'a>), |r, i| r.entry(i).ok()
);
indexed_iter!(
    /// Iterator over a record's field names ([`Record::keys`]), in field order.
    /// Exact-size for a verified snapshot; on a corrupt one, unreadable names are skipped.
    Keys, rec: Record, &'a str, |r, i| r.key_at(i)
);
indexed_iter!(
    /// Iterator over a record's values ([`Record::values`]), in field order. Exact-size
    /// for a verified snapshot; on a corrupt one, unreadable values are skipped.
    Values, rec: Record, ValueRef<'a>, |r, i| r.slot(i)
);
indexed_iter!(
    /// Iterator over a [`List`]'s elements ([`List::iter`]). Exact-size for a verified
    /// snapshot; on a corrupt one, unreadable elements are skipped.
    ListIter, list: List, ValueRef<'a>, |l, i| l.get(i)
);

impl<'a> IntoIterator for Record<'a> {
    type Item = (&'a str, ValueRef<'a>);
    type IntoIter = RecordIter<'a>;
    fn into_iter(self) -> RecordIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Record<'a> {
    type Item = (&'a str, ValueRef<'a>);
    type IntoIter = RecordIter<'a>;
    fn into_iter(self) -> RecordIter<'a> {
        self.iter()
    }
}

/// Formats structurally, like a map of its fields (`{"title": "Intro", "views": 3}`);
/// `{:#?}` pretty-prints. Bounded by the snapshot's walk limit: past it, the rest is
/// elided (`..`), so a malicious file cannot make `{:?}` run away. [`Display`](fmt::Display)
/// gives JSON.
impl fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::serde::debug_walk(ValueRef::Map(*self), f)
    }
}

/// Formats as compact JSON, written straight into the formatter (no intermediate
/// string), like `serde_json::Value`'s `Display`. A corrupt record or one past the walk
/// limit ends with a `<unreadable: …>` marker instead of failing.
impl fmt::Display for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::serde::display_json(self, f)
    }
}

/// A record equals a `TupleMap` with the same fields and values, in any order.
impl PartialEq<TupleMap> for Record<'_> {
    fn eq(&self, other: &TupleMap) -> bool {
        compare_map(*self, other, Compare::Equal)
    }
}

/// A list inside a snapshot. O(1) indexing; allocation-free.
#[derive(Clone, Copy)]
pub struct List<'a> {
    raw: Raw<'a>,
    /// `n` tags, then `n` payloads of `width` bytes, running on to the end of the data
    /// section.
    slots: &'a [u8],
    n: u32,
    width: u8,
    height: u8,
    /// Data offset of the node (in the overlay chain's combined space).
    off: u32,
}

impl<'a> List<'a> {
    pub(crate) fn new(
        raw: Raw<'a>,
        slots: &'a [u8],
        n: u32,
        width: u8,
        height: u8,
        off: u32,
    ) -> Self {
        List {
            raw,
            slots,
            n,
            width,
            height,
            off,
        }
    }

    /// The walk limit of whole-value reads of this list (its file's).
    pub(crate) fn walk_limit(&self) -> u64 {
        self.raw.l().walk_limit()
    }

    /// The data offset of the list node, and its height.
    pub(crate) fn node(&self) -> (u32, u8) {
        (self.off, self.height)
    }

    /// The reading core of the file this list was read from (for [`crate::Anchor`]).
    pub(crate) fn origin(&self) -> Raw<'a> {
        self.raw
    }

    /// Number of elements. O(1).
    #[inline]
    pub fn len(&self) -> usize {
        self.n as usize
    }

    /// Whether the list is empty. O(1).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Element `i`. O(1); `None` past the end (or on a corrupt element).
    #[inline]
    pub fn get(&self, i: usize) -> Option<ValueRef<'a>> {
        let w = self.width as usize;
        let (t, p, bytes) = format::slot_at(self.slots, self.len(), i, w)?;
        self.raw.value(t, p, bytes, w, self.height)
    }

    /// Element `i` for a writer that checks plain strings as it copies them
    /// ([`Raw::text_or_value`]).
    #[inline]
    pub(crate) fn text_get(&self, i: usize) -> Option<super::TextOrValue<'a>> {
        let w = self.width as usize;
        let (t, p, bytes) = format::slot_at(self.slots, self.len(), i, w)?;
        self.raw.text_or_value(t, p, bytes, w, self.height)
    }

    /// Appends the list as compact JSON to `out`, as [`Record::write_json`] does.
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<()> {
        crate::json::write_value(out, ValueRef::List(*self))
    }

    /// The elements, in order. O(1) to create; allocation-free. Elements a corrupt file
    /// makes unreadable are skipped.
    pub fn iter(&self) -> ListIter<'a> {
        ListIter { list: *self, i: 0 }
    }
}

impl<'a> IntoIterator for List<'a> {
    type Item = ValueRef<'a>;
    type IntoIter = ListIter<'a>;
    fn into_iter(self) -> ListIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &List<'a> {
    type Item = ValueRef<'a>;
    type IntoIter = ListIter<'a>;
    fn into_iter(self) -> ListIter<'a> {
        self.iter()
    }
}

/// Formats structurally, like a list (`["a", 1]`), bounded like [`Record`]'s `Debug`.
impl fmt::Debug for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::serde::debug_walk(ValueRef::List(*self), f)
    }
}

/// Formats as compact JSON, like [`Record`]'s `Display`.
impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::serde::display_json(self, f)
    }
}
