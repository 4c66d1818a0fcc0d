//! serde for records and values, in both directions.
//!
//! One serializer and one deserializer serve owned values ([`Value`], [`TupleMap`]) and
//! borrowed ones ([`ValueRef`], [`Record`]) through the small [`Node`] trait. Walks over a
//! snapshot carry a budget ([`MAX_WALK`]: values plus string bytes) so that a small file of shared references
//! cannot make one call do unbounded work; recursion is bounded by node heights.

mod de;
mod ser;

use std::cell::Cell;
use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::format::MAX_WALK;
use crate::read::{List, Record, ValueRef};
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
    Str(&'de str),
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
            Value::Str(s) => Unpacked::Str(s),
            Value::Bytes(b) => Unpacked::Bytes(b),
            Value::List(l) => Unpacked::List(OwnedListIter(l.iter()), l.len()),
            Value::Map(m) => Unpacked::Map(OwnedMapIter { map: m, i: 0 }, m.len()),
        }
    }
}

/// A snapshot view being walked, with the walk's shared budget.
#[derive(Clone, Copy)]
pub(crate) struct Walked<'de, 'b> {
    v: ValueRef<'de>,
    budget: &'b Cell<u64>,
}

/// Charges one slot's walk cost (see [`MAX_WALK`]): 1, plus the key's and the value's
/// bytes. Nested nodes are charged slot by slot as the walk reaches them.
fn spend(budget: &Cell<u64>, key: &str, v: &ValueRef<'_>) -> Result<()> {
    let bytes = match v {
        ValueRef::Str(s) => s.len(),
        ValueRef::Bytes(b) => b.len(),
        _ => 0,
    };
    let cost = 1 + key.len() as u64 + bytes as u64;
    let left = budget.get();
    if left < cost {
        return Err(Error::Limit {
            what: "walk cost of one record (values plus string bytes)",
            limit: MAX_WALK,
        });
    }
    budget.set(left - cost);
    Ok(())
}

pub(crate) struct WalkedMapIter<'de, 'b> {
    rec: Record<'de>,
    i: usize,
    budget: &'b Cell<u64>,
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
            spend(self.budget, k, &v)?;
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
    budget: &'b Cell<u64>,
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
            let v = self
                .list
                .get(i)
                .ok_or_else(|| Error::Corrupt {
                    what: format!("list element {i}"),
                })?;
            spend(self.budget, "", &v)?;
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
            Unpacked::Str(v) => s.serialize_str(v),
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
    let budget = Cell::new(MAX_WALK);
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

/// Serialized like the owned [`Value`] it stands for; a walk visits at most
/// [`MAX_WALK`] (values plus string bytes).
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

/// Writes a view as JSON into a formatter (its `Debug`); a corrupt view prints an error
/// marker instead of failing.
pub(crate) fn debug_json(v: &impl Serialize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match serde_json::to_string(v) {
        Ok(s) => f.write_str(&s),
        Err(e) => write!(f, "<unreadable: {e}>"),
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
