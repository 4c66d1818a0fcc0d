//! serde for records and values, in both directions.
//!
//! One serializer and one deserializer serve owned values ([`Value`], [`TupleMap`]) and
//! borrowed ones ([`ValueRef`], [`Record`]) through the small [`Node`] trait. Walks over a
//! snapshot carry a budget (the snapshot's walk limit, see [`crate::format::walk_limit`]:
//! values plus string bytes, at most a small multiple of the file's size) so that a small
//! file of shared references cannot make one call do unbounded work or allocate unbounded
//! memory; recursion is bounded by node heights.

mod de;
mod ser;

use std::cell::Cell;
use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::format::slot_walk_cost;
use crate::read::{List, Record, Str, ValueRef};
use crate::tuplemap::{TupleMap, Value};

pub(crate) use de::NodeDe;

impl serde::ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Value(msg.to_string())
    }
}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Value(msg.to_string())
    }
}

/// A value unpacked one level: scalars, or iterators over children.
pub(crate) enum Unpacked<'de, M, L> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Str<'de>),
    Bytes(&'de [u8]),
    List(L, usize),
    Map(M, usize),
}

/// A tree the serializer and deserializer can walk: owned values or snapshot views.
pub(crate) trait Node<'de>: Copy {
    type Map: Iterator<Item = Result<(&'de str, Self)>>;
    type List: Iterator<Item = Result<Self>>;
    fn unpack(self) -> Unpacked<'de, Self::Map, Self::List>;
}

/// An owned tree: a value or a top-level map.
#[derive(Clone, Copy)]
pub(crate) enum Owned<'de> {
    V(&'de Value),
    M(&'de TupleMap),
}

pub(crate) struct OwnedMapIter<'de> {
    map: &'de TupleMap,
    i: usize,
}

impl<'de> Iterator for OwnedMapIter<'de> {
    type Item = Result<(&'de str, Owned<'de>)>;
    fn next(&mut self) -> Option<Self::Item> {
        let (k, v) = self.map.entry_at(self.i)?;
        self.i += 1;
        Some(Ok((k, Owned::V(v))))
    }
}

pub(crate) struct OwnedListIter<'de>(std::slice::Iter<'de, Value>);

impl<'de> Iterator for OwnedListIter<'de> {
    type Item = Result<Owned<'de>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|v| Ok(Owned::V(v)))
    }
}

impl<'de> Node<'de> for Owned<'de> {
    type Map = OwnedMapIter<'de>;
    type List = OwnedListIter<'de>;
    fn unpack(self) -> Unpacked<'de, Self::Map, Self::List> {
        let v = match self {
            Owned::M(map) => return Unpacked::Map(OwnedMapIter { map, i: 0 }, map.len()),
            Owned::V(v) => v,
        };
        match v {
            Value::Null => Unpacked::Null,
            Value::Bool(b) => Unpacked::Bool(*b),
            Value::Int(i) => Unpacked::Int(*i),
            Value::Float(f) => Unpacked::Float(*f),
            Value::Str(s) => Unpacked::Str(Str::plain(s)),
            Value::Bytes(b) => Unpacked::Bytes(b),
            Value::List(l) => Unpacked::List(OwnedListIter(l.iter()), l.len()),
            Value::Map(m) => Unpacked::Map(OwnedMapIter { map: m, i: 0 }, m.len()),
        }
    }
}

/// What one walk over a snapshot may still visit, and its limit (for the error).
pub(crate) struct Budget {
    left: Cell<u64>,
    limit: u64,
}

impl Budget {
    /// The budget of one whole-value walk of `v`: its snapshot's walk limit.
    pub(crate) fn of(v: &ValueRef<'_>) -> Budget {
        let limit = match v {
            ValueRef::Map(r) => r.walk_limit(),
            ValueRef::List(l) => l.walk_limit(),
            _ => crate::format::WALK_FLOOR,
        };
        Budget {
            left: Cell::new(limit),
            limit,
        }
    }

    /// Charges one slot's walk cost ([`slot_walk_cost`]): 1, plus the key's and the
    /// value's bytes. Nested nodes are charged slot by slot as the walk reaches them.
    pub(crate) fn spend(&self, key: &str, v: &ValueRef<'_>) -> Result<()> {
        let bytes = match v {
            ValueRef::Str(s) => s.len(),
            ValueRef::Bytes(b) => b.len(),
            _ => 0,
        };
        self.spend_len(key.len(), bytes)
    }

    /// [`Budget::spend`] for a slot whose key has `key` bytes and whose string or byte
    /// string value has `bytes` (0 for other values).
    #[inline]
    pub(crate) fn spend_len(&self, key: usize, bytes: usize) -> Result<()> {
        let cost = slot_walk_cost(key, bytes);
        let left = self.left.get();
        if left < cost {
            self.left.set(0);
            return Err(Error::walk_limit(self.limit));
        }
        self.left.set(left - cost);
        Ok(())
    }
}

/// A snapshot view being walked, with the walk's shared budget.
#[derive(Clone, Copy)]
pub(crate) struct Walked<'de, 'b> {
    v: ValueRef<'de>,
    budget: &'b Budget,
}

pub(crate) struct WalkedMapIter<'de, 'b> {
    rec: Record<'de>,
    i: usize,
    budget: &'b Budget,
}

impl<'de, 'b> Iterator for WalkedMapIter<'de, 'b> {
    type Item = Result<(&'de str, Walked<'de, 'b>)>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.i >= self.rec.len() {
            return None;
        }
        let i = self.i;
        self.i += 1;
        Some(self.rec.entry(i).and_then(|(k, v)| {
            self.budget.spend(k, &v)?;
            Ok((
                k,
                Walked {
                    v,
                    budget: self.budget,
                },
            ))
        }))
    }
}

pub(crate) struct WalkedListIter<'de, 'b> {
    list: List<'de>,
    i: usize,
    budget: &'b Budget,
}

impl<'de, 'b> Iterator for WalkedListIter<'de, 'b> {
    type Item = Result<Walked<'de, 'b>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.i >= self.list.len() {
            return None;
        }
        let i = self.i;
        self.i += 1;
        Some((|| {
            let v = self.list.get(i).ok_or_else(|| Error::Corrupt {
                what: format!("list element {i}"),
            })?;
            self.budget.spend("", &v)?;
            Ok(Walked {
                v,
                budget: self.budget,
            })
        })())
    }
}

impl<'de, 'b> Node<'de> for Walked<'de, 'b> {
    type Map = WalkedMapIter<'de, 'b>;
    type List = WalkedListIter<'de, 'b>;
    fn unpack(self) -> Unpacked<'de, Self::Map, Self::List> {
        match self.v {
            ValueRef::Null => Unpacked::Null,
            ValueRef::Bool(b) => Unpacked::Bool(b),
            ValueRef::Int(i) => Unpacked::Int(i),
            ValueRef::Float(f) => Unpacked::Float(f),
            ValueRef::Str(s) => Unpacked::Str(s),
            ValueRef::Bytes(b) => Unpacked::Bytes(b),
            ValueRef::List(list) => Unpacked::List(
                WalkedListIter {
                    list,
                    i: 0,
                    budget: self.budget,
                },
                list.len(),
            ),
            ValueRef::Map(rec) => Unpacked::Map(
                WalkedMapIter {
                    rec,
                    i: 0,
                    budget: self.budget,
                },
                rec.len(),
            ),
        }
    }
}

/// Serializes any [`Node`].
struct Ser<N>(N);

impl<'de, N: Node<'de>> Serialize for Ser<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap, SerializeSeq};
        match self.0.unpack() {
            Unpacked::Null => s.serialize_unit(),
            Unpacked::Bool(b) => s.serialize_bool(b),
            Unpacked::Int(i) => s.serialize_i64(i),
            Unpacked::Float(f) => s.serialize_f64(f),
            Unpacked::Str(v) => v.serialize(s),
            Unpacked::Bytes(b) => s.serialize_bytes(b),
            Unpacked::List(items, len) => {
                let mut seq = s.serialize_seq(Some(len))?;
                for x in items {
                    seq.serialize_element(&Ser(x.map_err(S::Error::custom)?))?;
                }
                seq.end()
            }
            Unpacked::Map(entries, len) => {
                let mut map = s.serialize_map(Some(len))?;
                for e in entries {
                    let (k, v) = e.map_err(S::Error::custom)?;
                    map.serialize_entry(k, &Ser(v))?;
                }
                map.end()
            }
        }
    }
}

fn walk<'de, R>(v: ValueRef<'de>, f: impl FnOnce(Walked<'de, '_>) -> R) -> R {
    let budget = Budget::of(&v);
    f(Walked { v, budget: &budget })
}

/// Serialized as its contents: a map, list or scalar.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Ser(Owned::V(self)).serialize(s)
    }
}

/// Serialized as a map, in field order.
impl Serialize for TupleMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Ser(Owned::M(self)).serialize(s)
    }
}

/// Serialized like the owned [`Value`] it stands for; a walk visits at most the
/// snapshot's walk limit (values plus string bytes; see [`crate::limits::MAX_WALK`]).
impl Serialize for ValueRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        walk(*self, |w| Ser(w).serialize(s))
    }
}

/// Serialized as a map, in field order (e.g. `serde_json::to_string(&record)`).
impl Serialize for Record<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ValueRef::Map(*self).serialize(s)
    }
}

/// Serialized as a sequence.
impl Serialize for List<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ValueRef::List(*self).serialize(s)
    }
}

/// Converts any serializable value into a [`Value`].
///
/// Integers must fit in `i64`; map keys must be strings, chars or integers (integers
/// become their decimal text, as in `serde_json`). Enums are encoded as `serde_json` does.
/// Values nested deeper than [`crate::format::MAX_HEIGHT`] levels (more than a snapshot
/// can store) are refused with [`Error::Limit`].
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    value.serialize(ser::ValueSerializer::default())
}

/// Converts a serializable struct or map into a [`TupleMap`]; anything else is an error.
///
/// ```
/// #[derive(serde::Serialize)]
/// struct Video { title: String, duration: u32 }
/// let m = fms::to_map(&Video { title: "Intro".into(), duration: 42 }).unwrap();
/// assert_eq!(m.keys().collect::<Vec<_>>(), ["title", "duration"]);
/// ```
pub fn to_map<T: Serialize + ?Sized>(value: &T) -> Result<TupleMap> {
    match to_value(value)? {
        Value::Map(m) => Ok(*m),
        other => Err(Error::InvalidInput(format!(
            "expected a map or struct, got a {}",
            other.kind()
        ))),
    }
}

/// Deserializes a `T` from a [`Value`], matching struct fields by name.
pub fn from_value<'de, T: Deserialize<'de>>(value: &'de Value) -> Result<T> {
    T::deserialize(NodeDe(Owned::V(value)))
}

/// Deserializes a `T` from a [`TupleMap`], matching struct fields by name in any order.
///
/// ```
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct Video { title: String, duration: u32 }
/// let m = fms::TupleMap::from_pairs([("duration", fms::Value::from(42)), ("title", "Intro".into())]);
/// let v: Video = fms::from_map(&m).unwrap();
/// assert_eq!(v, Video { title: "Intro".into(), duration: 42 });
/// ```
pub fn from_map<'de, T: Deserialize<'de>>(map: &'de TupleMap) -> Result<T> {
    T::deserialize(NodeDe(Owned::M(map)))
}

pub(crate) fn from_record<'de, T: Deserialize<'de>>(rec: Record<'de>) -> Result<T> {
    walk(ValueRef::Map(rec), |w| T::deserialize(NodeDe(w)))
}

/// An owned copy of a snapshot view: one budgeted walk (not a serde round trip, so the
/// errors keep their variants: [`Error::Limit`] past the walk limit, [`Error::Corrupt`]
/// on unreadable bytes).
pub(crate) fn owned_of(v: ValueRef<'_>) -> Result<Value> {
    owned(v, &Budget::of(&v))
}

/// [`owned_of`] for a record.
pub(crate) fn owned_map_of(rec: Record<'_>) -> Result<TupleMap> {
    owned_map(rec, &Budget::of(&ValueRef::Map(rec)))
}

fn owned(v: ValueRef<'_>, budget: &Budget) -> Result<Value> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Bool(b) => Value::Bool(b),
        ValueRef::Int(i) => Value::Int(i),
        ValueRef::Float(f) => Value::Float(f),
        ValueRef::Str(s) => Value::Str(s.to_cow()?.into_owned()),
        ValueRef::Bytes(b) => Value::Bytes(b.to_vec()),
        ValueRef::List(list) => {
            let mut items = Vec::with_capacity(list.len().min(4096));
            for i in 0..list.len() {
                let x = list.get(i).ok_or_else(|| Error::Corrupt {
                    what: format!("list element {i}"),
                })?;
                budget.spend("", &x)?;
                items.push(owned(x, budget)?);
            }
            Value::List(items)
        }
        ValueRef::Map(rec) => Value::Map(Box::new(owned_map(rec, budget)?)),
    })
}

fn owned_map(rec: Record<'_>, budget: &Budget) -> Result<TupleMap> {
    let mut pairs = Vec::with_capacity(rec.len());
    for i in 0..rec.len() {
        let (k, x) = rec.entry(i)?;
        budget.spend(k, &x)?;
        pairs.push((k, owned(x, budget)?));
    }
    Ok(TupleMap::from_pairs(pairs))
}

/// Writes a view as JSON straight into a formatter (its `Display`; `{:#}` pretty-prints);
/// a corrupt view, or one past the walk limit, ends with an `<unreadable: …>` marker
/// instead of failing (a `Display` that fails makes `to_string` panic).
pub(crate) fn display_json(v: &impl Serialize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    /// `io::Write` into a formatter; remembers whether the formatter itself failed.
    struct Sink<'a, 'b> {
        f: &'a mut fmt::Formatter<'b>,
        failed: bool,
    }
    impl std::io::Write for Sink<'_, '_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            // serde_json writes whole UTF-8 runs (it splits strings only at escapes).
            let s = std::str::from_utf8(buf).map_err(std::io::Error::other)?;
            if self.f.write_str(s).is_err() {
                self.failed = true;
                return Err(std::io::Error::other("formatter error"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let pretty = f.alternate();
    let mut sink = Sink { f, failed: false };
    let r = if pretty {
        serde_json::to_writer_pretty(&mut sink, v)
    } else {
        serde_json::to_writer(&mut sink, v)
    };
    match r {
        Ok(()) => Ok(()),
        Err(_) if sink.failed => Err(fmt::Error),
        Err(e) => write!(sink.f, "<unreadable: {e}>"),
    }
}

/// Writes a view structurally (its `Debug`), charging the walk budget like any
/// whole-value walk: past it, the rest of each map or list is elided (`..`).
pub(crate) fn debug_walk(v: ValueRef<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let budget = Budget::of(&v);
    fmt::Debug::fmt(&DebugNode { v, budget: &budget }, f)
}

/// A value being formatted by [`debug_walk`].
struct DebugNode<'a, 'b> {
    v: ValueRef<'a>,
    budget: &'b Budget,
}

/// Stands for what a corrupt file makes unreadable.
struct Unreadable;

impl fmt::Debug for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<unreadable>")
    }
}

impl fmt::Debug for DebugNode<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let budget = self.budget;
        match self.v {
            ValueRef::Null => f.write_str("null"),
            ValueRef::Bool(b) => fmt::Debug::fmt(&b, f),
            ValueRef::Int(i) => fmt::Debug::fmt(&i, f),
            ValueRef::Float(x) => fmt::Debug::fmt(&x, f),
            ValueRef::Str(s) => fmt::Debug::fmt(&s, f),
            ValueRef::Bytes(b) => write!(f, "b\"{}\"", b.escape_ascii()),
            ValueRef::List(list) => {
                let mut d = f.debug_list();
                for i in 0..list.len() {
                    match list.get(i) {
                        Some(v) if budget.spend("", &v).is_ok() => {
                            d.entry(&DebugNode { v, budget })
                        }
                        Some(_) => return d.finish_non_exhaustive(),
                        None => d.entry(&Unreadable),
                    };
                }
                d.finish()
            }
            ValueRef::Map(rec) => {
                let mut d = f.debug_map();
                for i in 0..rec.len() {
                    match rec.entry(i) {
                        Ok((k, v)) if budget.spend(k, &v).is_ok() => {
                            d.entry(&k, &DebugNode { v, budget })
                        }
                        Ok(_) => return d.finish_non_exhaustive(),
                        Err(_) => d.entry(&i, &Unreadable),
                    };
                }
                d.finish()
            }
        }
    }
}

impl TryFrom<serde_json::Value> for Value {
    type Error = Error;
    /// Fails only on integers outside `i64`.
    fn try_from(v: serde_json::Value) -> Result<Value> {
        to_value(&v)
    }
}

impl TryFrom<serde_json::Value> for TupleMap {
    type Error = Error;
    /// Fails if `v` is not an object, or holds integers outside `i64`.
    fn try_from(v: serde_json::Value) -> Result<TupleMap> {
        to_map(&v)
    }
}
