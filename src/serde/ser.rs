//! A serde `Serializer` that produces [`Value`]s (and so [`TupleMap`]s), like
//! `serde_json::value::Serializer`.

use serde::Serialize;
use serde::ser::{self, Impossible};

use crate::error::{Error, Result};
use crate::format::MAX_HEIGHT;
use crate::tuplemap::{TupleMap, Value};

/// Carries the nesting depth so that a value deeper than the format can store is refused
/// after [`MAX_HEIGHT`] levels instead of recursing without bound.
#[derive(Clone, Copy, Default)]
pub(crate) struct ValueSerializer {
    depth: u8,
}

impl ValueSerializer {
    fn deeper(self) -> Result<ValueSerializer> {
        if self.depth >= MAX_HEIGHT {
            return Err(Error::nesting_limit());
        }
        Ok(ValueSerializer {
            depth: self.depth + 1,
        })
    }
}

fn int<T: TryInto<i64> + std::fmt::Display + Copy>(v: T) -> Result<Value> {
    v.try_into()
        .map(Value::Int)
        .map_err(|_| Error::Value(format!("integer {v} does not fit in i64")))
}

fn map_of(key: &str, v: Value) -> Value {
    Value::Map(Box::new(TupleMap::from_pairs([(key, v)])))
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = SeqSer;
    type SerializeTuple = SeqSer;
    type SerializeTupleStruct = SeqSer;
    type SerializeTupleVariant = VariantSer<SeqSer>;
    type SerializeMap = MapSer;
    type SerializeStruct = MapSer;
    type SerializeStructVariant = VariantSer<MapSer>;

    fn serialize_bool(self, v: bool) -> Result<Value> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value> {
        int(v)
    }
    fn serialize_i16(self, v: i16) -> Result<Value> {
        int(v)
    }
    fn serialize_i32(self, v: i32) -> Result<Value> {
        int(v)
    }
    fn serialize_i64(self, v: i64) -> Result<Value> {
        int(v)
    }
    fn serialize_i128(self, v: i128) -> Result<Value> {
        int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Value> {
        int(v)
    }
    fn serialize_u16(self, v: u16) -> Result<Value> {
        int(v)
    }
    fn serialize_u32(self, v: u32) -> Result<Value> {
        int(v)
    }
    fn serialize_u64(self, v: u64) -> Result<Value> {
        int(v)
    }
    fn serialize_u128(self, v: u128) -> Result<Value> {
        int(v)
    }
    fn serialize_f32(self, v: f32) -> Result<Value> {
        Ok(Value::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value> {
        Ok(Value::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value> {
        Ok(Value::Str(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value> {
        Ok(Value::Null)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<Value> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value> {
        Ok(Value::Str(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<Value> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value> {
        Ok(map_of(variant, v.serialize(self.deeper()?)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer> {
        Ok(SeqSer {
            items: Vec::with_capacity(len.unwrap_or(0).min(4096)),
            inner: self.deeper()?,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSer> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqSer> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSer<SeqSer>> {
        Ok(VariantSer {
            variant,
            inner: self.deeper()?.serialize_seq(Some(len))?,
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapSer> {
        Ok(MapSer {
            pairs: Vec::with_capacity(len.unwrap_or(0).min(4096)),
            key: None,
            inner: self.deeper()?,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<MapSer> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSer<MapSer>> {
        Ok(VariantSer {
            variant,
            inner: self.deeper()?.serialize_map(Some(len))?,
        })
    }
}

pub(crate) struct SeqSer {
    items: Vec<Value>,
    inner: ValueSerializer,
}

impl ser::SerializeSeq for SeqSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<()> {
        self.items.push(v.serialize(self.inner)?);
        Ok(())
    }
    fn end(self) -> Result<Value> {
        Ok(Value::List(self.items))
    }
}

impl ser::SerializeTuple for SeqSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SeqSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value> {
        ser::SerializeSeq::end(self)
    }
}

pub(crate) struct MapSer {
    pairs: Vec<(String, Value)>,
    key: Option<String>,
    inner: ValueSerializer,
}

impl ser::SerializeMap for MapSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<()> {
        self.key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<()> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error::Value("map value serialized before its key".into()))?;
        self.pairs.push((key, v.serialize(self.inner)?));
        Ok(())
    }
    fn end(self) -> Result<Value> {
        Ok(Value::Map(Box::new(TupleMap::from_pairs(self.pairs))))
    }
}

impl ser::SerializeStruct for MapSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, v: &T) -> Result<()> {
        self.pairs.push((key.to_owned(), v.serialize(self.inner)?));
        Ok(())
    }
    fn end(self) -> Result<Value> {
        ser::SerializeMap::end(self)
    }
}

pub(crate) struct VariantSer<I> {
    variant: &'static str,
    inner: I,
}

impl ser::SerializeTupleVariant for VariantSer<SeqSer> {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(&mut self.inner, v)
    }
    fn end(self) -> Result<Value> {
        Ok(map_of(self.variant, ser::SerializeSeq::end(self.inner)?))
    }
}

impl ser::SerializeStructVariant for VariantSer<MapSer> {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, v: &T) -> Result<()> {
        ser::SerializeStruct::serialize_field(&mut self.inner, key, v)
    }
    fn end(self) -> Result<Value> {
        Ok(map_of(self.variant, ser::SerializeMap::end(self.inner)?))
    }
}

/// Map keys: strings, chars and integers (as decimal text); anything else is an error.
struct KeySerializer;

fn key_error(kind: &str) -> Error {
    Error::Value(format!(
        "map keys must be strings, chars or integers, not {kind}"
    ))
}

macro_rules! int_keys {
    ($($f:ident: $t:ty),*) => {
        $(fn $f(self, v: $t) -> Result<String> { Ok(v.to_string()) })*
    };
}

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    int_keys!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);

    fn serialize_str(self, v: &str) -> Result<String> {
        Ok(v.to_owned())
    }
    fn serialize_char(self, v: char) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<String> {
        v.serialize(self)
    }
    fn serialize_bool(self, _: bool) -> Result<String> {
        Err(key_error("a bool"))
    }
    fn serialize_f32(self, _: f32) -> Result<String> {
        Err(key_error("a float"))
    }
    fn serialize_f64(self, _: f64) -> Result<String> {
        Err(key_error("a float"))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String> {
        Err(key_error("bytes"))
    }
    fn serialize_none(self) -> Result<String> {
        Err(key_error("null"))
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<String> {
        Err(key_error("an option"))
    }
    fn serialize_unit(self) -> Result<String> {
        Err(key_error("null"))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String> {
        Err(key_error("a unit struct"))
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String> {
        Err(key_error("an enum"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(key_error("a list"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(key_error("a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(key_error("a tuple"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(key_error("an enum"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Err(key_error("a map"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Err(key_error("a struct"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(key_error("an enum"))
    }
}
