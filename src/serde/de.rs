//! Deserializing out of a [`Node`] (an owned value or a snapshot view) into any `T`, and
//! deserializing any format into a [`Value`] or [`TupleMap`].

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use super::{Node, Unpacked};
use crate::error::{Error, Result};
use crate::tuplemap::{TupleMap, Value};

/// A deserializer over one node. Struct fields are matched by name, so fields can be
/// added, removed or reordered between writer and reader.
pub(crate) struct NodeDe<N>(pub N);

impl<'de, N: Node<'de>> de::Deserializer<'de> for NodeDe<N> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0.unpack() {
            Unpacked::Null => visitor.visit_unit(),
            Unpacked::Bool(b) => visitor.visit_bool(b),
            Unpacked::Int(i) => visitor.visit_i64(i),
            Unpacked::Float(f) => visitor.visit_f64(f),
            Unpacked::Str(s) => match s.as_plain() {
                Some(p) => visitor.visit_borrowed_str(p),
                // A compressed string is decoded for the visitor: `String` and `Cow<str>`
                // fields take it; a borrowed `&str` field cannot, and says so.
                None => s.with_str(|v| visitor.visit_str(v))?,
            },
            Unpacked::Bytes(b) => visitor.visit_borrowed_bytes(b),
            Unpacked::List(items, len) => {
                let mut seq = SeqDe {
                    items,
                    len,
                    left: len,
                };
                let v = visitor.visit_seq(&mut seq)?;
                seq.finish()?;
                Ok(v)
            }
            Unpacked::Map(entries, len) => visitor.visit_map(MapDe {
                entries,
                left: len,
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0.unpack() {
            Unpacked::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.0.unpack() {
            Unpacked::Str(s) => match s.as_plain() {
                Some(p) => visitor.visit_enum(p.into_deserializer()),
                None => visitor.visit_enum(s.to_cow()?.into_owned().into_deserializer()),
            },
            Unpacked::Map(mut entries, 1) => {
                let (variant, value) = entries
                    .next()
                    .ok_or_else(|| Error::Value("empty enum map".into()))??;
                visitor.visit_enum(EnumDe { variant, value })
            }
            _ => Err(Error::Value(
                "an enum must be a string or a map with a single key".into(),
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        // Skipped fields are not walked: they cost nothing and spend no budget.
        visitor.visit_unit()
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0.unpack() {
            // A byte string read as a sequence (e.g. into `Vec<u8>`): its bytes.
            Unpacked::Bytes(b) => visitor.visit_seq(de::value::SeqDeserializer::<_, Error>::new(
                b.iter().copied(),
            )),
            _ => self.deserialize_any(visitor),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple tuple_struct map struct identifier
    }
}

struct SeqDe<L> {
    items: L,
    len: usize,
    left: usize,
}

impl<L> SeqDe<L> {
    fn finish(&self) -> Result<()> {
        match self.left {
            0 => Ok(()),
            n => Err(de::Error::invalid_length(
                self.len,
                &format!("{} elements", self.len - n).as_str(),
            )),
        }
    }
}

impl<'de, N: Node<'de>, L: Iterator<Item = Result<N>>> de::SeqAccess<'de> for &mut SeqDe<L> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        match self.items.next() {
            None => Ok(None),
            Some(item) => {
                self.left = self.left.saturating_sub(1);
                seed.deserialize(NodeDe(item?)).map(Some)
            }
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

struct MapDe<'de, N, M> {
    entries: M,
    left: usize,
    /// The value of the key just read, with the key (to name it in errors).
    value: Option<(&'de str, N)>,
}

impl<'de, N: Node<'de>, M: Iterator<Item = Result<(&'de str, N)>>> de::MapAccess<'de>
    for MapDe<'de, N, M>
{
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.entries.next() {
            None => Ok(None),
            Some(e) => {
                let (k, v) = e?;
                self.left = self.left.saturating_sub(1);
                self.value = Some((k, v));
                seed.deserialize(KeyDe(k)).map(Some)
            }
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let (k, v) = self
            .value
            .take()
            .ok_or_else(|| Error::Value("map value requested before its key".into()))?;
        // A value's own error (a wrong type, a borrowed `&str` field that meets a
        // compressed string) names the field it is in: `field "a": field "b": ...`.
        seed.deserialize(NodeDe(v)).map_err(|e| match e {
            Error::Value(msg) => Error::Value(format!("field {k:?}: {msg}")),
            other => other,
        })
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

struct EnumDe<'de, N> {
    variant: &'de str,
    value: N,
}

impl<'de, N: Node<'de>> de::EnumAccess<'de> for EnumDe<'de, N> {
    type Error = Error;
    type Variant = NodeDe<N>;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, NodeDe<N>)> {
        let v = seed.deserialize(de::value::BorrowedStrDeserializer::<Error>::new(
            self.variant,
        ))?;
        Ok((v, NodeDe(self.value)))
    }
}

impl<'de, N: Node<'de>> de::VariantAccess<'de> for NodeDe<N> {
    type Error = Error;
    fn unit_variant(self) -> Result<()> {
        match self.0.unpack() {
            Unpacked::Null => Ok(()),
            _ => Err(Error::Value("expected a unit variant".into())),
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_any(self, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}

/// Builds a [`Value`] from any self-describing format.
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("integer {v} does not fit in i64")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        de::Deserialize::deserialize(d)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        de::Deserialize::deserialize(d)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::List(out))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        MapVisitor.visit_map(map).map(|m| Value::Map(Box::new(m)))
    }
}

/// Builds a [`TupleMap`] from any map.
struct MapVisitor;

impl<'de> Visitor<'de> for MapVisitor {
    type Value = TupleMap;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map with string keys")
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<TupleMap, A::Error> {
        let mut pairs: Vec<(String, Value)> =
            Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            pairs.push((k, v));
        }
        Ok(TupleMap::from_pairs(pairs))
    }
}

impl<'de> de::Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

impl<'de> de::Deserialize<'de> for TupleMap {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<TupleMap, D::Error> {
        d.deserialize_map(MapVisitor)
    }
}

/// A map key: a borrowed string, parsed when the reader asks for an integer (integer keys
/// are stored as their decimal text, as in `serde_json`).
struct KeyDe<'de>(&'de str);

macro_rules! parse_key {
    ($($f:ident => $v:ident: $t:ty),*) => {
        $(fn $f<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            match self.0.parse::<$t>() {
                Ok(n) => visitor.$v(n),
                Err(_) => visitor.visit_borrowed_str(self.0),
            }
        })*
    };
}

impl<'de> de::Deserializer<'de> for KeyDe<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_borrowed_str(self.0)
    }

    parse_key!(deserialize_i8 => visit_i8: i8, deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32, deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128, deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16, deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64, deserialize_u128 => visit_u128: u128);

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    forward_to_deserialize_any! {
        bool f32 f64 char str string bytes byte_buf option unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}
