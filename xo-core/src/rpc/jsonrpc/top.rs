//! A thin deserializer wrapper for the top level of a typed result, so that a message whose
//! result is a `float` (`VM.query_data_source` and friends, which can be NaN) decodes into a
//! plain `f64`. Nested float fields use `model::de::float` instead; this wrapper does not
//! recurse.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

use crate::model::{float_sentinel, parse_float};

pub(super) struct TopLevel<D>(pub D);

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* v: V) -> Result<V::Value, D::Error> {
            self.0.$method($($arg,)* v)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for TopLevel<D> {
    type Error = D::Error;

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(LenientFloat(v))
    }
    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(LenientFloat(v))
    }
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }

    forward! {
        deserialize_any(); deserialize_bool(); deserialize_i8(); deserialize_i16(); deserialize_i32();
        deserialize_i64(); deserialize_i128(); deserialize_u8(); deserialize_u16(); deserialize_u32();
        deserialize_u64(); deserialize_u128(); deserialize_char(); deserialize_str();
        deserialize_string(); deserialize_bytes(); deserialize_byte_buf(); deserialize_option();
        deserialize_unit(); deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str); deserialize_seq();
        deserialize_tuple(len: usize); deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map(); deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier(); deserialize_ignored_any();
    }
}

/// Hands the inner visitor an f64 whatever form the number came in.
struct LenientFloat<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for LenientFloat<V> {
    type Value = V::Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a float")
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<V::Value, E> {
        self.0.visit_f64(x)
    }
    fn visit_i64<E: de::Error>(self, x: i64) -> Result<V::Value, E> {
        self.0.visit_f64(x as f64)
    }
    fn visit_u64<E: de::Error>(self, x: u64) -> Result<V::Value, E> {
        self.0.visit_f64(x as f64)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<V::Value, E> {
        match float_sentinel(s).or_else(|| parse_float(s)) {
            Some(x) => self.0.visit_f64(x),
            None => Err(E::invalid_value(de::Unexpected::Str(s), &self)),
        }
    }
}
