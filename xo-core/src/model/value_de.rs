//! `&Value` as a serde `Deserializer` (behind [`super::from_value`]), lenient the way
//! xapi's own decoder is: ints from decimal strings, floats from ints and strings
//! (`nan`, `inf`, …), bools from `"true"`/`"false"`, map keys as strings or ints.
//! Errors carry the path to the bad value (`.VM.memory[2]`).

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use super::serde_value::float_sentinel;
use super::{parse_float, Value};
use crate::rpc::DecodeError;

pub(crate) struct ValueDe<'a>(pub &'a Value);

type R<T> = Result<T, DecodeError>;

/// Prepends one path segment to an error coming up from a nested value.
fn under(mut e: DecodeError, segment: std::fmt::Arguments<'_>) -> DecodeError {
    e.path = Some(format!("{segment}{}", e.path.as_deref().unwrap_or("")));
    e
}

fn invalid(v: &Value, expected: &str) -> DecodeError {
    let found = match v {
        Value::String(s) => format!("string {:?}", s.chars().take(64).collect::<String>()),
        Value::Int(i) => format!("int {i}"),
        Value::Int32(i) => format!("int32 {i}"),
        Value::Double(f) => format!("double {f}"),
        Value::Bool(b) => format!("boolean {b}"),
        other => other.kind().to_owned(),
    };
    DecodeError::new(format!("expected {expected}, found {found}"))
}

impl ValueDe<'_> {
    fn int(&self) -> R<i128> {
        match self.0 {
            Value::Int(i) => Ok((*i).into()),
            Value::Int32(i) => Ok((*i).into()),
            Value::String(s) => s
                .trim()
                .parse::<i128>()
                .map_err(|_| invalid(self.0, "an integer")),
            v => Err(invalid(v, "an integer")),
        }
    }

    fn float(&self) -> R<f64> {
        match self.0 {
            Value::Double(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            Value::Int32(i) => Ok((*i).into()),
            Value::String(s) => float_sentinel(s)
                .or_else(|| parse_float(s))
                .ok_or_else(|| invalid(self.0, "a float")),
            v => Err(invalid(v, "a float")),
        }
    }
}

macro_rules! ints {
    ($($method:ident => $ty:ty, $visit:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> R<V::Value> {
            let i = self.int()?;
            let n = <$ty>::try_from(i).map_err(|_| DecodeError::new(format!("integer {i} out of range for {}", stringify!($ty))))?;
            v.$visit(n)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for ValueDe<'de> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> R<V::Value> {
        match self.0 {
            Value::String(s) => v.visit_borrowed_str(s),
            Value::Int(i) => v.visit_i64(*i),
            Value::Int32(i) => v.visit_i32(*i),
            Value::Double(f) => v.visit_f64(*f),
            Value::Bool(b) => v.visit_bool(*b),
            Value::DateTime(d) => v.visit_borrowed_str(d.as_str()),
            Value::Base64(b) => v.visit_borrowed_bytes(b),
            Value::Array(a) => v.visit_seq(Seq {
                iter: a.iter(),
                index: 0,
            }),
            Value::Struct(s) => v.visit_map(Map {
                iter: s.0.iter(),
                value: None,
            }),
            Value::Nil => v.visit_unit(),
        }
    }

    ints! {
        deserialize_i8 => i8, visit_i8;
        deserialize_i16 => i16, visit_i16;
        deserialize_i32 => i32, visit_i32;
        deserialize_i64 => i64, visit_i64;
        deserialize_u8 => u8, visit_u8;
        deserialize_u16 => u16, visit_u16;
        deserialize_u32 => u32, visit_u32;
        deserialize_u64 => u64, visit_u64;
        deserialize_i128 => i128, visit_i128;
        deserialize_u128 => u128, visit_u128;
    }

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> R<V::Value> {
        v.visit_f32(self.float()? as f32)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> R<V::Value> {
        v.visit_f64(self.float()?)
    }
    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> R<V::Value> {
        match self.0 {
            Value::Bool(b) => v.visit_bool(*b),
            Value::String(s) if s == "true" => v.visit_bool(true),
            Value::String(s) if s == "false" => v.visit_bool(false),
            other => Err(invalid(other, "a boolean")),
        }
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> R<V::Value> {
        match self.0 {
            Value::Nil => v.visit_none(),
            _ => v.visit_some(self),
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> R<V::Value> {
        // xapi's `void` result is the empty string.
        match self.0 {
            Value::Nil => v.visit_unit(),
            Value::String(s) if s.is_empty() => v.visit_unit(),
            other => Err(invalid(other, "nothing (nil or an empty string)")),
        }
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> R<V::Value> {
        self.deserialize_unit(v)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> R<V::Value> {
        v.visit_newtype_struct(self)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> R<V::Value> {
        match self.0 {
            Value::String(s) => v.visit_enum(s.as_str().into_deserializer()),
            Value::Struct(st) if st.len() == 1 => {
                let (name, inner) = &st.0[0];
                v.visit_enum(Enum { name, inner })
            }
            other => Err(invalid(other, "an enum (a string)")),
        }
    }

    forward_to_deserialize_any! {
        char str string bytes byte_buf seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct Seq<'a> {
    iter: std::slice::Iter<'a, Value>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for Seq<'de> {
    type Error = DecodeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> R<Option<T::Value>> {
        let Some(v) = self.iter.next() else {
            return Ok(None);
        };
        let i = self.index;
        self.index += 1;
        seed.deserialize(ValueDe(v))
            .map(Some)
            .map_err(|e| under(e, format_args!("[{i}]")))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct Map<'a> {
    iter: std::slice::Iter<'a, (String, Value)>,
    value: Option<(&'a str, &'a Value)>,
}

impl<'de> de::MapAccess<'de> for Map<'de> {
    type Error = DecodeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> R<Option<K::Value>> {
        let Some((k, v)) = self.iter.next() else {
            return Ok(None);
        };
        self.value = Some((k, v));
        seed.deserialize(KeyDe(k))
            .map(Some)
            .map_err(|e| under(e, format_args!(".{k}")))
    }
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> R<T::Value> {
        let (k, v) = self
            .value
            .take()
            .ok_or_else(|| DecodeError::new("map value requested before its key"))?;
        seed.deserialize(ValueDe(v))
            .map_err(|e| under(e, format_args!(".{k}")))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// A struct member name: a string, or an int / float / bool when the map's key type is one.
struct KeyDe<'a>(&'a str);

impl<'de> de::Deserializer<'de> for KeyDe<'de> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> R<V::Value> {
        v.visit_borrowed_str(self.0)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> R<V::Value> {
        ValueKeyInt(self.0).i64(v)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, v: V) -> R<V::Value> {
        ValueKeyInt(self.0).i64(v)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> R<V::Value> {
        let n = self
            .0
            .trim()
            .parse::<u64>()
            .map_err(|_| key_error(self.0, "an unsigned integer"))?;
        v.visit_u64(n)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> R<V::Value> {
        self.deserialize_u64(v)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> R<V::Value> {
        v.visit_f64(parse_float(self.0).ok_or_else(|| key_error(self.0, "a float"))?)
    }
    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> R<V::Value> {
        match self.0 {
            "true" => v.visit_bool(true),
            "false" => v.visit_bool(false),
            _ => Err(key_error(self.0, "a boolean")),
        }
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> R<V::Value> {
        v.visit_some(self)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> R<V::Value> {
        v.visit_newtype_struct(self)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> R<V::Value> {
        v.visit_enum(self.0.into_deserializer())
    }

    forward_to_deserialize_any! {
        i8 i16 u8 u16 i128 u128 f32 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

struct ValueKeyInt<'a>(&'a str);

impl ValueKeyInt<'_> {
    fn i64<'de, V: Visitor<'de>>(self, v: V) -> R<V::Value> {
        v.visit_i64(
            self.0
                .trim()
                .parse::<i64>()
                .map_err(|_| key_error(self.0, "an integer"))?,
        )
    }
}

fn key_error(key: &str, expected: &str) -> DecodeError {
    DecodeError::new(format!(
        "expected {expected} as map key, found {:?}",
        key.chars().take(64).collect::<String>()
    ))
}

/// `{variant: inner}`, the external tagging [`super::to_value`] writes for data-carrying variants.
struct Enum<'a> {
    name: &'a str,
    inner: &'a Value,
}

impl<'de> de::EnumAccess<'de> for Enum<'de> {
    type Error = DecodeError;
    type Variant = ValueDe<'de>;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> R<(V::Value, ValueDe<'de>)> {
        Ok((seed.deserialize(KeyDe(self.name))?, ValueDe(self.inner)))
    }
}

impl<'de> de::VariantAccess<'de> for ValueDe<'de> {
    type Error = DecodeError;
    fn unit_variant(self) -> R<()> {
        de::Deserializer::deserialize_unit(self, de::IgnoredAny).map(|_| ())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> R<T::Value> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, v: V) -> R<V::Value> {
        de::Deserializer::deserialize_seq(self, v)
    }
    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], v: V) -> R<V::Value> {
        de::Deserializer::deserialize_map(self, v)
    }
}
