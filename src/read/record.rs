//! Zero-copy views: [`Record`] (a map node), [`List`] and [`ValueRef`].

use std::fmt;

use super::{Key, Raw, Shape};
use crate::error::{Error, Result};
use crate::format::{SHAPE_KEY_LEN, SLOT_LEN};
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
    /// A string, borrowed from the snapshot.
    Str(&'a str),
    /// A byte string, borrowed from the snapshot.
    Bytes(&'a [u8]),
    /// A list.
    List(List<'a>),
    /// A nested map (a record without an id).
    Map(Record<'a>),
}

impl<'a> ValueRef<'a> {
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
    /// The string, borrowed from the snapshot, if this is one.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            ValueRef::Str(s) => Some(s),
            _ => None,
        }
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
        crate::serde::to_value(self)
    }
}

impl fmt::Debug for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueRef::Null => f.write_str("null"),
            ValueRef::Bool(b) => fmt::Debug::fmt(b, f),
            ValueRef::Int(i) => fmt::Debug::fmt(i, f),
            ValueRef::Float(x) => fmt::Debug::fmt(x, f),
            ValueRef::Str(s) => fmt::Debug::fmt(s, f),
            ValueRef::Bytes(b) => write!(f, "b{:?}", b.escape_ascii().to_string()),
            ValueRef::List(l) => fmt::Debug::fmt(l, f),
            ValueRef::Map(m) => fmt::Debug::fmt(m, f),
        }
    }
}

/// Compares a borrowed value with an owned one (floats as in [`Value`]'s `PartialEq`).
impl PartialEq<Value> for ValueRef<'_> {
    fn eq(&self, other: &Value) -> bool {
        match (*self, other) {
            (ValueRef::Null, Value::Null) => true,
            (ValueRef::Bool(a), Value::Bool(b)) => a == *b,
            (ValueRef::Int(a), Value::Int(b)) => a == *b,
            (ValueRef::Float(a), Value::Float(b)) => a == *b || (a.is_nan() && b.is_nan()),
            (ValueRef::Str(a), Value::Str(b)) => a == b,
            (ValueRef::Bytes(a), Value::Bytes(b)) => a == &b[..],
            (ValueRef::List(a), Value::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == *y)
            }
            (ValueRef::Map(a), Value::Map(b)) => a == **b,
            _ => false,
        }
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
    /// `n` tag bytes, then `n` 4-byte payloads (for a patched record: its base node's).
    slots: &'a [u8],
    /// Empty, or for a record an overlay patches: the mask (`ceil(n / 8)` bytes, bit `i`
    /// set = slot `i` replaced), then `m` tags and `m` payloads of the replaced slots.
    patch: &'a [u8],
    height: u8,
    /// Height of the map node under any patch (`height` when there is none).
    node_height: u8,
    /// Data offset (in the overlay chain's combined space) of the map node whose slots
    /// `slots` are.
    off: u32,
}

impl<'a> Record<'a> {
    pub(crate) fn new(
        raw: Raw<'a>,
        shape: Shape<'a>,
        slots: &'a [u8],
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
            height,
            node_height: height,
            off,
        }
    }

    /// This (base) record with the slots of a patch node of `raw`'s file replaced.
    pub(crate) fn patched(self, raw: Raw<'a>, patch: &'a [u8], height: u8) -> Self {
        Record {
            raw,
            patch,
            height,
            ..self
        }
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
            ..*self
        }
    }

    /// The height of the record's node (its patch's, if patched).
    pub(crate) fn height(&self) -> u8 {
        self.height
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
        // `slots` holds n tags, then n 4-byte payloads; `i < n` keeps both reads in bounds.
        let n = self.len();
        if i >= n {
            return None;
        }
        let (slots, j, count) = if self.patch.is_empty() {
            (self.slots, i, n)
        } else {
            self.locate(i, n)?
        };
        let t = *slots.get(j)?;
        let payload_at = slots.get(count + 4 * j..count + 4 * j + 4)?;
        let payload = [payload_at[0], payload_at[1], payload_at[2], payload_at[3]];
        self.raw.value(t, payload, payload_at, self.height)
    }

    /// The value of field `i`, in field order.
    pub(crate) fn value_at(&self, i: usize) -> Option<ValueRef<'a>> {
        self.slot(i)
    }

    /// Tag and payload of slot `i` of the node under any patch (zeros past the end).
    pub(crate) fn raw_slot(&self, i: usize) -> (u8, [u8; 4]) {
        let n = self.len();
        let p = self
            .slots
            .get(n + 4 * i..n + 4 * i + 4)
            .and_then(|p| p.try_into().ok())
            .unwrap_or_default();
        (self.slots.get(i).copied().unwrap_or(0), p)
    }

    /// Where slot `i` of a patched record lives: `(slot array, index in it, its length)`.
    #[inline]
    fn locate(&self, i: usize, n: usize) -> Option<(&'a [u8], usize, usize)> {
        let (mask, own) = self.patch.split_at_checked(n.div_ceil(8))?;
        let (byte, bit) = (*mask.get(i / 8)?, 1u8 << (i % 8));
        if byte & bit == 0 {
            return Some((self.slots, i, n));
        }
        let rank = mask[..i / 8]
            .iter()
            .map(|b| b.count_ones() as usize)
            .sum::<usize>()
            + (byte & (bit - 1)).count_ones() as usize;
        Some((own, rank, own.len() / SLOT_LEN))
    }

    /// The value of field `name`. O(1) expected (one hash of `name`, then the shape's slot
    /// table); allocation-free.
    #[inline]
    pub fn get(&self, name: &str) -> Option<ValueRef<'a>> {
        let k = self.raw.find_key(name)?;
        self.slot(self.position(k)?)
    }

    /// The value of a pre-resolved key ([`crate::Snapshot::key`]): no hashing.
    /// Allocation-free.
    #[inline]
    pub fn get_key(&self, key: Key) -> Option<ValueRef<'a>> {
        if key.tag != self.raw.key_tag_of(key.id) {
            return None;
        }
        self.slot(self.position(key.id)?)
    }

    /// Whether the record has field `name`. O(1) expected.
    pub fn contains_key(&self, name: &str) -> bool {
        self.raw
            .find_key(name)
            .and_then(|k| self.position(k))
            .is_some()
    }

    /// The field names, in field order. Names a corrupt file makes unreadable are skipped
    /// (on an unverified file, use [`iter`](Self::iter) to get names and values in pairs).
    pub fn keys(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let raw = self.raw;
        self.keys
            .chunks_exact(SHAPE_KEY_LEN)
            .filter_map(move |c| raw.key_name(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
    }

    /// The values, in field order. Values a corrupt file makes unreadable are skipped.
    pub fn values(&self) -> impl Iterator<Item = ValueRef<'a>> + use<'a> {
        let r = *self;
        (0..self.len()).filter_map(move |i| r.slot(i))
    }

    /// The `(name, value)` pairs, in field order. Allocation-free.
    pub fn iter(&self) -> RecordIter<'a> {
        RecordIter { rec: *self, i: 0 }
    }

    /// Field `i` as `(name, value)`, or an error naming what is corrupt.
    pub(crate) fn entry(&self, i: usize) -> Result<(&'a str, ValueRef<'a>)> {
        let kid = self
            .keys
            .get(i * SHAPE_KEY_LEN..(i + 1) * SHAPE_KEY_LEN)
            .and_then(|c| c.try_into().ok())
            .map(u32::from_le_bytes);
        let name = kid
            .and_then(|k| self.raw.key_name(k))
            .ok_or_else(|| Error::Corrupt {
                what: format!("key of field {i} of a record"),
            })?;
        let v = self
            .slot(i)
            .ok_or_else(|| Error::Corrupt {
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

    /// An owned copy of the record. Allocates.
    pub fn to_owned(&self) -> Result<TupleMap> {
        crate::serde::to_map(self)
    }
}

/// Iterator over a record's `(name, value)` pairs.
#[derive(Clone)]
pub struct RecordIter<'a> {
    rec: Record<'a>,
    i: usize,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = (&'a str, ValueRef<'a>);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        while self.i < self.rec.len() {
            let i = self.i;
            self.i += 1;
            if let Ok(e) = self.rec.entry(i) {
                return Some(e);
            }
        }
        None
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.rec.len() - self.i))
    }
}

impl<'a> IntoIterator for Record<'a> {
    type Item = (&'a str, ValueRef<'a>);
    type IntoIter = RecordIter<'a>;
    fn into_iter(self) -> RecordIter<'a> {
        self.iter()
    }
}

/// Formats as JSON (through the budgeted serializer, so a malicious file cannot make
/// `{:?}` run away).
impl fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::serde::debug_json(self, f)
    }
}

/// A record equals a `TupleMap` with the same fields and values, in any order.
impl PartialEq<TupleMap> for Record<'_> {
    fn eq(&self, other: &TupleMap) -> bool {
        self.len() == other.len()
            && (0..self.len()).all(|i| match self.entry(i) {
                Ok((k, v)) => other.get(k).is_some_and(|o| v == *o),
                Err(_) => false,
            })
    }
}

/// A list inside a snapshot. O(1) indexing; allocation-free.
#[derive(Clone, Copy)]
pub struct List<'a> {
    raw: Raw<'a>,
    slots: &'a [u8],
    height: u8,
    /// Data offset of the node (in the overlay chain's combined space).
    off: u32,
}

impl<'a> List<'a> {
    pub(crate) fn new(raw: Raw<'a>, slots: &'a [u8], height: u8, off: u32) -> Self {
        List {
            raw,
            slots,
            height,
            off,
        }
    }

    /// The data offset of the list node, and its height.
    pub(crate) fn node(&self) -> (u32, u8) {
        (self.off, self.height)
    }

    /// Number of elements. O(1).
    #[inline]
    pub fn len(&self) -> usize {
        self.slots.len() / SLOT_LEN
    }

    /// Whether the list is empty. O(1).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Element `i`. O(1); `None` past the end (or on a corrupt element).
    #[inline]
    pub fn get(&self, i: usize) -> Option<ValueRef<'a>> {
        let n = self.len();
        let t = *self.slots.get(..n)?.get(i)?;
        let at = n + 4 * i;
        let payload_at = self.slots.get(at..at + 4)?;
        self.raw
            .value(t, payload_at.try_into().ok()?, payload_at, self.height)
    }

    /// The elements, in order. Elements a corrupt file makes unreadable are skipped.
    pub fn iter(&self) -> ListIter<'a> {
        ListIter { list: *self, i: 0 }
    }
}

/// Iterator over a [`List`].
#[derive(Clone)]
pub struct ListIter<'a> {
    list: List<'a>,
    i: usize,
}

impl<'a> Iterator for ListIter<'a> {
    type Item = ValueRef<'a>;
    #[inline]
    fn next(&mut self) -> Option<ValueRef<'a>> {
        while self.i < self.list.len() {
            let i = self.i;
            self.i += 1;
            if let Some(v) = self.list.get(i) {
                return Some(v);
            }
        }
        None
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.list.len() - self.i))
    }
}

impl<'a> IntoIterator for List<'a> {
    type Item = ValueRef<'a>;
    type IntoIter = ListIter<'a>;
    fn into_iter(self) -> ListIter<'a> {
        self.iter()
    }
}

/// Formats as JSON, like [`Record`]'s `Debug`.
impl fmt::Debug for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::serde::debug_json(self, f)
    }
}
