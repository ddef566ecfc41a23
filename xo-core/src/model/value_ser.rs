//! A serde `Serializer` that builds a [`Value`] (behind [`super::to_value`]).

use base64::Engine as _;
use serde::ser::{self, Impossible, Serialize};

use super::serde_value::{BASE64_NEWTYPE, DATETIME_NEWTYPE, INT32_NEWTYPE};
use super::{DateTime, Struct, Value};
use crate::rpc::DecodeError;

impl ser::Error for DecodeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        DecodeError::new(msg.to_string())
    }
}

pub(crate) struct ValueSerializer;

type R = Result<Value, DecodeError>;

fn int<T: TryInto<i64> + std::fmt::Display + Copy>(v: T) -> R {
    v.try_into()
        .map(Value::Int)
        .map_err(|_| DecodeError::new(format!("integer {v} does not fit in int64")))
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = DecodeError;
    type SerializeSeq = SeqSer;
    type SerializeTuple = SeqSer;
    type SerializeTupleStruct = SeqSer;
    type SerializeTupleVariant = Variant<SeqSer>;
    type SerializeMap = MapSer;
    type SerializeStruct = MapSer;
    type SerializeStructVariant = Variant<MapSer>;

    fn serialize_bool(self, v: bool) -> R {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> R {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> R {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> R {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> R {
        Ok(Value::Int(v))
    }
    fn serialize_i128(self, v: i128) -> R {
        int(v)
    }
    fn serialize_u8(self, v: u8) -> R {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> R {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> R {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> R {
        int(v)
    }
    fn serialize_u128(self, v: u128) -> R {
        int(v)
    }
    fn serialize_f32(self, v: f32) -> R {
        Ok(Value::Double(v.into()))
    }
    fn serialize_f64(self, v: f64) -> R {
        Ok(Value::Double(v))
    }
    fn serialize_char(self, v: char) -> R {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> R {
        Ok(Value::String(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> R {
        Ok(Value::Base64(v.to_vec()))
    }
    fn serialize_none(self) -> R {
        Ok(Value::Nil)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> R {
        v.serialize(self)
    }
    fn serialize_unit(self) -> R {
        Ok(Value::Nil)
    }
    fn serialize_unit_struct(self, _: &'static str) -> R {
        Ok(Value::Nil)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> R {
        Ok(Value::String(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, v: &T) -> R {
        // Our DateTime, Base64 and Int32 announce themselves so they stay typed.
        let inner = v.serialize(self)?;
        match (name, inner) {
            (DATETIME_NEWTYPE, Value::String(s)) => DateTime::parse(&s)
                .map(Value::DateTime)
                .map_err(|e| DecodeError::new(e.to_string())),
            (BASE64_NEWTYPE, Value::String(s)) => base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(Value::Base64)
                .map_err(|e| DecodeError::new(format!("invalid base64: {e}"))),
            (INT32_NEWTYPE, Value::Int(i)) => i32::try_from(i)
                .map(Value::Int32)
                .map_err(|_| DecodeError::new(format!("integer {i} does not fit in int32"))),
            (_, inner) => Ok(inner),
        }
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> R {
        Ok(Value::Struct(Struct(vec![(
            variant.to_owned(),
            v.serialize(self)?,
        )])))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer, DecodeError> {
        Ok(SeqSer(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSer, DecodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqSer, DecodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<SeqSer>, DecodeError> {
        Ok(Variant(variant, self.serialize_seq(Some(len))?))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapSer, DecodeError> {
        Ok(MapSer {
            out: Struct(Vec::with_capacity(len.unwrap_or(0))),
            key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<MapSer, DecodeError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<MapSer>, DecodeError> {
        Ok(Variant(variant, self.serialize_map(Some(len))?))
    }
}

pub(crate) struct SeqSer(Vec<Value>);

impl ser::SerializeSeq for SeqSer {
    type Ok = Value;
    type Error = DecodeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), DecodeError> {
        self.0.push(v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> R {
        Ok(Value::Array(self.0))
    }
}
impl ser::SerializeTuple for SeqSer {
    type Ok = Value;
    type Error = DecodeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), DecodeError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> R {
        ser::SerializeSeq::end(self)
    }
}
impl ser::SerializeTupleStruct for SeqSer {
    type Ok = Value;
    type Error = DecodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), DecodeError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> R {
        ser::SerializeSeq::end(self)
    }
}

pub(crate) struct MapSer {
    out: Struct,
    key: Option<String>,
}

impl ser::SerializeMap for MapSer {
    type Ok = Value;
    type Error = DecodeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), DecodeError> {
        self.key = Some(k.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), DecodeError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| DecodeError::new("map value without a key"))?;
        self.out.0.push((key, v.serialize(ValueSerializer)?));
        Ok(())
    }
    fn end(self) -> R {
        Ok(Value::Struct(self.out))
    }
}
impl ser::SerializeStruct for MapSer {
    type Ok = Value;
    type Error = DecodeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        v: &T,
    ) -> Result<(), DecodeError> {
        self.out
            .0
            .push((name.to_owned(), v.serialize(ValueSerializer)?));
        Ok(())
    }
    fn end(self) -> R {
        Ok(Value::Struct(self.out))
    }
}

/// A tuple or struct variant: `{variant: inner}` (serde's external tagging).
pub(crate) struct Variant<S>(&'static str, S);

impl ser::SerializeTupleVariant for Variant<SeqSer> {
    type Ok = Value;
    type Error = DecodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), DecodeError> {
        ser::SerializeSeq::serialize_element(&mut self.1, v)
    }
    fn end(self) -> R {
        Ok(Value::Struct(Struct(vec![(
            self.0.to_owned(),
            ser::SerializeSeq::end(self.1)?,
        )])))
    }
}
impl ser::SerializeStructVariant for Variant<MapSer> {
    type Ok = Value;
    type Error = DecodeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        v: &T,
    ) -> Result<(), DecodeError> {
        ser::SerializeStruct::serialize_field(&mut self.1, name, v)
    }
    fn end(self) -> R {
        Ok(Value::Struct(Struct(vec![(
            self.0.to_owned(),
            ser::SerializeStruct::end(self.1)?,
        )])))
    }
}

/// Map keys become strings, as xapi expects: ints in decimal, enums by variant name.
struct KeySerializer;

type K = Result<String, DecodeError>;

fn key_error(what: &str) -> DecodeError {
    DecodeError::new(format!(
        "a map key must be a string, integer or enum, found {what}"
    ))
}

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = DecodeError;
    type SerializeSeq = Impossible<String, DecodeError>;
    type SerializeTuple = Impossible<String, DecodeError>;
    type SerializeTupleStruct = Impossible<String, DecodeError>;
    type SerializeTupleVariant = Impossible<String, DecodeError>;
    type SerializeMap = Impossible<String, DecodeError>;
    type SerializeStruct = Impossible<String, DecodeError>;
    type SerializeStructVariant = Impossible<String, DecodeError>;

    fn serialize_bool(self, v: bool) -> K {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> K {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> K {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> K {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> K {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> K {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> K {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> K {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> K {
        Ok(v.to_string())
    }
    fn serialize_f32(self, v: f32) -> K {
        Ok(v.to_string())
    }
    fn serialize_f64(self, v: f64) -> K {
        Ok(v.to_string())
    }
    fn serialize_char(self, v: char) -> K {
        Ok(v.to_string())
    }
    fn serialize_str(self, v: &str) -> K {
        Ok(v.to_owned())
    }
    fn serialize_bytes(self, _: &[u8]) -> K {
        Err(key_error("bytes"))
    }
    fn serialize_none(self) -> K {
        Err(key_error("none"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> K {
        v.serialize(self)
    }
    fn serialize_unit(self) -> K {
        Err(key_error("unit"))
    }
    fn serialize_unit_struct(self, _: &'static str) -> K {
        Err(key_error("unit"))
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> K {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> K {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> K {
        Err(key_error("an enum with data"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, DecodeError> {
        Err(key_error("a sequence"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, DecodeError> {
        Err(key_error("a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, DecodeError> {
        Err(key_error("a tuple"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, DecodeError> {
        Err(key_error("an enum with data"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, DecodeError> {
        Err(key_error("a map"))
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, DecodeError> {
        Err(key_error("a struct"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, DecodeError> {
        Err(key_error("an enum with data"))
    }
}
