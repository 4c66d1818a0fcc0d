//! The structured input of the `roundtrip` target: arbitrary value trees (via the
//! `arbitrary` crate). Shared, through `#[path]`, by the fuzz target and by
//! `tests/fuzz_replay.rs`, so that a corpus file decodes to the same records in both.

use arbitrary::Arbitrary;
use fms::{TupleMap, Value};

/// A value tree as `arbitrary` generates it.
#[derive(Arbitrary, Debug)]
pub enum V {
    Null,
    Bool(bool),
    Int(i64),
    SmallInt(i8),
    Float(f64),
    Str(String),
    Short(u8),
    Bytes(Vec<u8>),
    List(Vec<V>),
    Map(Vec<(Key, V)>),
}

/// Keys from a small alphabet most of the time, so records share shapes; any string
/// otherwise.
#[derive(Arbitrary, Debug)]
pub enum Key {
    Common(u8),
    Any(String),
}

/// The records of one input: `(id, fields)`.
#[derive(Arbitrary, Debug)]
pub struct Input {
    pub records: Vec<(Key, Vec<(Key, V)>)>,
}

const COMMON: [&str; 8] = ["title", "slug", "kind", "id", "children", "a", "b", ""];

fn key(k: &Key) -> String {
    match k {
        Key::Common(i) => COMMON[*i as usize % COMMON.len()].to_owned(),
        Key::Any(s) => s.clone(),
    }
}

fn value(v: &V) -> Value {
    match v {
        V::Null => Value::Null,
        V::Bool(b) => Value::Bool(*b),
        V::Int(i) => Value::Int(*i),
        V::SmallInt(i) => Value::Int(i64::from(*i)),
        V::Float(f) => Value::Float(*f),
        V::Str(s) => Value::Str(s.clone()),
        V::Short(n) => Value::Str("ab".repeat(usize::from(*n % 4))),
        V::Bytes(b) => Value::Bytes(b.clone()),
        V::List(items) => Value::List(items.iter().map(value).collect()),
        V::Map(fields) => Value::Map(Box::new(map(fields))),
    }
}

fn map(fields: &[(Key, V)]) -> TupleMap {
    TupleMap::from_pairs(fields.iter().map(|(k, v)| (key(k), value(v))))
}

impl Input {
    /// The records as the builder takes them.
    pub fn records(&self) -> Vec<(String, TupleMap)> {
        self.records
            .iter()
            .map(|(id, fields)| (key(id), map(fields)))
            .collect()
    }

    /// Decodes fuzz bytes (as libFuzzer's `arbitrary` glue does for the whole input).
    pub fn decode(bytes: &[u8]) -> Option<Input> {
        Input::arbitrary_take_rest(arbitrary::Unstructured::new(bytes)).ok()
    }
}
