//! [`TupleMap`] and [`Value`]: the owned, in-memory twin of a snapshot record.
//!
//! A `TupleMap` has a dict's interface and a tuple's memory: its keys live in a *shape*
//! shared (through one `Arc`) by every map with the same keys in the same order, and its
//! values in a small slot array. A shape interns its keys with `string-interner`; the
//! interner hands out symbols `0, 1, 2, …` in insertion order, so a key's symbol *is* its
//! slot index and `get` is one hash lookup plus one index.
//!
//! Shapes are shared process-wide through a registry of weak references: building a
//! million records with the same fields allocates one shape.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use hashbrown::HashTable;
use smallvec::SmallVec;
use string_interner::{StringInterner, Symbol, backend::StringBackend, symbol::SymbolU32};

/// An owned value: what a [`crate::ValueRef`] turns into with `to_owned()`, and what the
/// builder stores.
#[derive(Clone)]
pub enum Value {
    /// JSON `null`, Rust `None` / `()`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A list of values.
    List(Vec<Value>),
    /// A nested map (a record without an id).
    Map(Box<TupleMap>),
}

impl Value {
    /// The value's kind as a word: `"null"`, `"bool"`, `"int"`, `"float"`, `"str"`,
    /// `"bytes"`, `"list"` or `"map"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }
    /// Whether the value is `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    /// The number as `f64` (integers convert, as in `serde_json`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
    /// The list, if this is one.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
    /// The nested map, if this is one.
    pub fn as_map(&self) -> Option<&TupleMap> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
}

/// Floats compare equal when `==` says so or when both are NaN, so that a value read back
/// from a snapshot equals the value written.
/// Float equality of `==` on values: by value, with NaN equal to NaN (so a value equals
/// itself and its stored copy).
pub(crate) fn floats_equal(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => floats_equal(*a, *b),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => fmt::Debug::fmt(b, f),
            Value::Int(i) => fmt::Debug::fmt(i, f),
            Value::Float(x) => fmt::Debug::fmt(x, f),
            Value::Str(s) => fmt::Debug::fmt(s, f),
            Value::Bytes(b) => write!(f, "b\"{}\"", b.escape_ascii()),
            Value::List(l) => f.debug_list().entries(l).finish(),
            Value::Map(m) => fmt::Debug::fmt(m, f),
        }
    }
}

macro_rules! value_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from($v: $t) -> Value { $e }
        })*
    };
}

value_from! {
    bool => |v| Value::Bool(v),
    i8 => |v| Value::Int(v.into()),
    i16 => |v| Value::Int(v.into()),
    i32 => |v| Value::Int(v.into()),
    i64 => |v| Value::Int(v),
    u8 => |v| Value::Int(v.into()),
    u16 => |v| Value::Int(v.into()),
    u32 => |v| Value::Int(v.into()),
    f32 => |v| Value::Float(v.into()),
    f64 => |v| Value::Float(v),
    &str => |v| Value::Str(v.to_owned()),
    String => |v| Value::Str(v),
    Vec<Value> => |v| Value::List(v),
    TupleMap => |v| Value::Map(Box::new(v)),
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

type KeyInterner = StringInterner<StringBackend<SymbolU32>>;

/// The keys of a shape, interned: symbol `i` is the key of slot `i`.
struct ShapeInner {
    keys: KeyInterner,
    hash: u64,
}

/// Process-wide registry of live shapes, so that maps with the same keys share one.
struct Registry {
    table: HashTable<(u64, Weak<ShapeInner>)>,
    /// Table size at which dead entries are next swept (amortised O(1) per insert).
    sweep_at: usize,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    table: HashTable::new(),
    sweep_at: 64,
});

fn hash_keys<'a>(keys: impl Iterator<Item = &'a str>) -> u64 {
    // A fixed-seed hash: a shape's hash must be the same every time it is computed.
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for k in keys {
        h.update(&(k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
    }
    h.digest()
}

/// The shared shape with exactly these keys, in this order (they must be distinct).
fn intern_shape(keys: &[&str]) -> Arc<ShapeInner> {
    let hash = hash_keys(keys.iter().copied());
    let same = |s: &ShapeInner| {
        s.keys.len() == keys.len() && s.keys.iter().map(|(_, k)| k).eq(keys.iter().copied())
    };
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    // A temporary Arc upgraded in the comparison may be the last one and be dropped under
    // the lock; that is fine because dropping a shape never takes the registry lock (dead
    // entries are swept on insert instead).
    let found = reg
        .table
        .find(hash, |(h, w)| {
            *h == hash && w.upgrade().is_some_and(|s| same(&s))
        })
        .and_then(|(_, w)| w.upgrade());
    if let Some(shape) = found {
        return shape;
    }
    let mut interner = KeyInterner::with_capacity(keys.len());
    for k in keys {
        interner.get_or_intern(k);
    }
    let shape = Arc::new(ShapeInner {
        keys: interner,
        hash,
    });
    let reg = &mut *reg;
    if reg.table.len() >= reg.sweep_at {
        reg.table.retain(|(_, w)| w.strong_count() > 0);
        reg.sweep_at = (reg.table.len() * 2).max(64);
    }
    reg.table
        .insert_unique(hash, (hash, Arc::downgrade(&shape)), |(h, _)| *h);
    shape
}

/// A map with a dict's interface and a tuple's memory.
///
/// Keys keep their insertion order; the keys of all maps with the same keys in the same
/// order are stored once, in a shared, interned shape.
///
/// ```
/// use fms::{TupleMap, Value};
/// let a = TupleMap::from_pairs([("title", "Intro".into()), ("duration", 42.into())]);
/// let b = TupleMap::from_pairs([("title", "Loops".into()), ("duration", 7.into())]);
/// assert_eq!(a["title"], Value::from("Intro"));
/// assert_eq!(b.get("duration").and_then(Value::as_i64), Some(7));
/// assert!(a.shares_shape_with(&b));
/// assert_eq!(format!("{a:?}"), r#"{"title": "Intro", "duration": 42}"#);
/// ```
#[derive(Clone)]
pub struct TupleMap {
    shape: Arc<ShapeInner>,
    values: SmallVec<[Value; 3]>,
}

impl Default for TupleMap {
    fn default() -> Self {
        TupleMap::new()
    }
}

impl TupleMap {
    /// An empty map. O(1) after the first call (the empty shape is shared).
    pub fn new() -> TupleMap {
        TupleMap {
            shape: intern_shape(&[]),
            values: SmallVec::new(),
        }
    }

    /// A map from `(key, value)` pairs, in order. A repeated key keeps its first position
    /// and its last value, like `IndexMap::from_iter`. O(n) plus one shape lookup.
    pub fn from_pairs<K, I>(pairs: I) -> TupleMap
    where
        K: AsRef<str>,
        I: IntoIterator<Item = (K, Value)>,
    {
        let (given, vals): (Vec<K>, Vec<Value>) = pairs.into_iter().unzip();
        let mut keys: Vec<&str> = Vec::with_capacity(given.len());
        let mut values: SmallVec<[Value; 3]> = SmallVec::with_capacity(given.len());
        // Small maps scan for repeats; large ones use a hash map, so that building a map
        // of n fields stays O(n).
        let mut index: Option<hashbrown::HashMap<&str, usize>> = None;
        for (k, v) in given.iter().zip(vals) {
            let k = k.as_ref();
            if index.is_none() && keys.len() >= 16 {
                index = Some(keys.iter().enumerate().map(|(i, k)| (*k, i)).collect());
            }
            let found = match &index {
                Some(ix) => ix.get(k).copied(),
                None => keys.iter().position(|x| *x == k),
            };
            match found {
                Some(i) => values[i] = v,
                None => {
                    if let Some(ix) = &mut index {
                        ix.insert(k, keys.len());
                    }
                    keys.push(k);
                    values.push(v);
                }
            }
        }
        let names = keys;
        TupleMap {
            shape: intern_shape(&names),
            values,
        }
    }

    /// The value for `key`. O(1) expected; allocation-free.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Value> {
        let sym = self.shape.keys.get(key)?;
        self.values.get(sym.to_usize())
    }

    /// The value for `key`, mutably. O(1) expected.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let sym = self.shape.keys.get(key)?;
        self.values.get_mut(sym.to_usize())
    }

    /// Sets `key` to `value`, returning the old value. A new key goes last and moves the
    /// map to the shape with that key added (one shape lookup).
    pub fn insert(&mut self, key: &str, value: impl Into<Value>) -> Option<Value> {
        let value = value.into();
        if let Some(slot) = self.get_mut(key) {
            return Some(std::mem::replace(slot, value));
        }
        let mut names: Vec<&str> = self.keys().collect();
        names.push(key);
        self.shape = intern_shape(&names);
        self.values.push(value);
        None
    }

    /// Removes `key`, returning its value. The remaining keys keep their order; the map
    /// moves to the shape without `key` (one shape lookup).
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.shape.keys.get(key)?.to_usize();
        let names: Vec<&str> = self.keys().filter(|k| *k != key).collect();
        let shape = intern_shape(&names);
        let v = self.values.remove(i);
        self.shape = shape;
        Some(v)
    }

    /// Whether `key` is present. O(1) expected.
    pub fn contains_key(&self, key: &str) -> bool {
        self.shape.keys.get(key).is_some()
    }

    /// Number of fields. O(1).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the map has no fields. O(1).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The keys, in field order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.values.len()).map(move |i| self.key_at(i))
    }

    /// The values, in field order.
    pub fn values(&self) -> std::slice::Iter<'_, Value> {
        self.values.iter()
    }

    /// The `(key, value)` pairs, in field order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> + '_ {
        self.values
            .iter()
            .enumerate()
            .map(move |(i, v)| (self.key_at(i), v))
    }

    /// Whether `self` and `other` share one shape object (same keys, same order).
    pub fn shares_shape_with(&self, other: &TupleMap) -> bool {
        Arc::ptr_eq(&self.shape, &other.shape)
    }

    pub(crate) fn entry_at(&self, i: usize) -> Option<(&str, &Value)> {
        Some((self.key_at(i), self.values.get(i)?))
    }

    fn key_at(&self, i: usize) -> &str {
        SymbolU32::try_from_usize(i)
            .and_then(|s| self.shape.keys.resolve(s))
            .unwrap_or_default()
    }

    pub(crate) fn shape_hash(&self) -> u64 {
        self.shape.hash
    }
}

/// Maps are equal when they have the same keys with equal values, in any order.
impl PartialEq for TupleMap {
    fn eq(&self, other: &TupleMap) -> bool {
        if Arc::ptr_eq(&self.shape, &other.shape) {
            return self.values == other.values;
        }
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl fmt::Debug for TupleMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl std::ops::Index<&str> for TupleMap {
    type Output = Value;
    /// Panics if `key` is absent, like `HashMap`'s `Index`.
    fn index(&self, key: &str) -> &Value {
        self.get(key).expect("key not found in TupleMap")
    }
}

impl<K: AsRef<str>, V: Into<Value>> FromIterator<(K, V)> for TupleMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> TupleMap {
        TupleMap::from_pairs(iter.into_iter().map(|(k, v)| (k, v.into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dict_interface() {
        let mut m =
            TupleMap::from_pairs([("a", Value::from(1)), ("b", "x".into()), ("a", 2.into())]);
        assert_eq!(m.len(), 2);
        assert_eq!(m["a"], Value::Int(2));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(m.insert("c", true), None);
        assert_eq!(m.insert("a", 3), Some(Value::Int(2)));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(m.contains_key("c") && !m.contains_key("d"));
        assert_eq!(m.remove("b"), Some(Value::from("x")));
        assert_eq!(m.remove("b"), None);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(m["c"], Value::Bool(true));
        assert_eq!(m.get("d"), None);
    }

    #[test]
    #[should_panic(expected = "key not found")]
    fn index_panics_on_missing_key() {
        let m = TupleMap::from_pairs([("a", 1.into())]);
        let _ = &m["zzz"];
    }

    #[test]
    fn equality_ignores_order_but_not_values() {
        let a: TupleMap = [("x", 1), ("y", 2)].into_iter().collect();
        let b: TupleMap = [("y", 2), ("x", 1)].into_iter().collect();
        let c: TupleMap = [("y", 2), ("x", 3)].into_iter().collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(!a.shares_shape_with(&b));
    }

    #[test]
    fn shapes_are_shared_and_freed() {
        let a = TupleMap::from_pairs([("only_in_this_test_1", 1.into())]);
        let b = TupleMap::from_pairs([("only_in_this_test_1", 2.into())]);
        assert!(a.shares_shape_with(&b));
        let weak = Arc::downgrade(&a.shape);
        drop(a);
        drop(b);
        assert!(weak.upgrade().is_none());
        let c = TupleMap::from_pairs([("only_in_this_test_1", 3.into())]);
        assert_eq!(c["only_in_this_test_1"], Value::Int(3));
    }
}
