//! serde for [`Value`] and [`DateTime`], and the entry points [`to_value`] / [`from_value`].
//!
//! `Value` serializes JSON-naturally (DateTime as its text, Base64 as a base64 string, a
//! struct as a map in member order, Int32 as a number). Private newtype names let our own
//! `Value` serializer ([`to_value`]) keep DateTime, Base64 and Int32 typed instead of turning
//! them into strings or int64s; every other serializer sees the plain inner value.
//!
//! Non-finite floats: serde_json cannot read `NaN`/`Infinity`, so the JSON-RPC decoder
//! rewrites them into strings holding a sentinel (see [`float_sentinel`]); deserializing a
//! `Value` maps those back to `Value::Double`.

use std::fmt;

use base64::Engine as _;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::{DateTime, Struct, Value};
use crate::rpc::DecodeError;

pub(crate) const DATETIME_NEWTYPE: &str = "$xo::DateTime";
pub(crate) const BASE64_NEWTYPE: &str = "$xo::Base64";
pub(crate) const INT32_NEWTYPE: &str = "$xo::Int32";

/// What the JSON-RPC pre-pass writes for bare `NaN`, `Infinity` and `-Infinity`. The leading
/// NUL keeps them apart from real xapi strings (xapi never sends control characters).
pub const NAN_SENTINEL: &str = "\u{0}xo:NaN";
pub const INF_SENTINEL: &str = "\u{0}xo:Infinity";
pub const NEG_INF_SENTINEL: &str = "\u{0}xo:-Infinity";

/// The float a sentinel string stands for, if it is one.
pub fn float_sentinel(s: &str) -> Option<f64> {
    if !s.starts_with('\u{0}') {
        return None;
    }
    match s {
        NAN_SENTINEL => Some(f64::NAN),
        INF_SENTINEL => Some(f64::INFINITY),
        NEG_INF_SENTINEL => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Converts any serializable value into a [`Value`].
pub fn to_value<T: Serialize + ?Sized>(v: &T) -> Result<Value, DecodeError> {
    v.serialize(super::value_ser::ValueSerializer)
}

/// Deserializes `T` from a [`Value`], with xapi's leniency (ints and floats from strings…).
pub fn from_value<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, DecodeError> {
    from_value_ref(&v)
}

/// Like [`from_value`], borrowing strings from the value where `T` allows.
pub fn from_value_ref<'a, T: Deserialize<'a>>(v: &'a Value) -> Result<T, DecodeError> {
    T::deserialize(super::value_de::ValueDe(v))
}

struct Base64Text<'a>(&'a [u8]);

impl Serialize for Base64Text<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(self.0))
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::String(v) => s.serialize_str(v),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Int32(i) => s.serialize_newtype_struct(INT32_NEWTYPE, i),
            Value::Double(f) => s.serialize_f64(*f),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::DateTime(d) => d.serialize(s),
            Value::Base64(b) => s.serialize_newtype_struct(BASE64_NEWTYPE, &Base64Text(b)),
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Struct(st) => st.serialize(s),
            Value::Nil => s.serialize_unit(),
        }
    }
}

impl Serialize for Struct {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for DateTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(DATETIME_NEWTYPE, self.as_str())
    }
}

impl<'de> Deserialize<'de> for DateTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DateTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a datetime string such as 20240101T00:00:00Z")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DateTime, E> {
                DateTime::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any XAPI value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    /// Only a `Value` source calls this (serde_json and our decoders give i64).
    fn visit_i32<E>(self, v: i32) -> Result<Value, E> {
        Ok(Value::Int32(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        // Beyond int64 there is no exact XAPI type left; keep the magnitude.
        Ok(i64::try_from(v).map_or(Value::Double(v as f64), Value::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Double(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(float_sentinel(v).map_or_else(|| Value::String(v.to_owned()), Value::Double))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(float_sentinel(&v).map_or(Value::String(v), Value::Double))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Base64(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Base64(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // Cap the pre-allocation: the hint comes from the input.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            out.push((k, v));
        }
        Ok(Value::Struct(Struct(out)))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_natural_serialization() {
        let v = Value::Struct(Struct(vec![
            ("z".into(), Value::Int(i64::MAX)),
            (
                "a".into(),
                Value::DateTime(DateTime::parse("20240101T00:00:00Z").unwrap()),
            ),
            ("b".into(), Value::Base64(b"hi".to_vec())),
            ("n".into(), Value::Nil),
            (
                "l".into(),
                Value::Array(vec![Value::Bool(true), Value::Double(1.5)]),
            ),
        ]));
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(
            text,
            r#"{"z":9223372036854775807,"a":"20240101T00:00:00Z","b":"aGk=","n":null,"l":[true,1.5]}"#
        );
    }

    #[test]
    fn json_deserialization_keeps_order_and_precision() {
        let v: Value =
            serde_json::from_str(r#"{"z":9007199254740993,"a":-9223372036854775808,"big":18446744073709551615,"s":"\u0000xo:-Infinity","t":"NaN"}"#)
                .unwrap();
        let st = v.as_struct().unwrap();
        let keys: Vec<_> = st.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["z", "a", "big", "s", "t"]);
        assert_eq!(st.get("z"), Some(&Value::Int(9_007_199_254_740_993)));
        assert_eq!(st.get("a"), Some(&Value::Int(i64::MIN)));
        assert_eq!(st.get("big"), Some(&Value::Double(18446744073709551615.0)));
        assert_eq!(st.get("s"), Some(&Value::Double(f64::NEG_INFINITY)));
        // A real string spelling NaN stays a string.
        assert_eq!(st.get("t"), Some(&Value::String("NaN".into())));
    }

    #[test]
    fn int32_serde() {
        let v = Value::Struct(Struct(vec![
            ("vm".into(), Value::Int32(3)),
            ("max".into(), Value::Int32(i32::MAX)),
        ]));
        // JSON sees a plain number, and reads it back as an int64.
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, r#"{"vm":3,"max":2147483647}"#);
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back.get("vm"), Some(&Value::Int(3)));
        // Our own Value serializer and deserializer keep the kind.
        assert_eq!(to_value(&v).unwrap(), v);
        assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
        // Typed targets take it as any int, within range.
        assert_eq!(from_value::<i64>(Value::Int32(-4)).unwrap(), -4);
        assert_eq!(from_value::<f64>(Value::Int32(2)).unwrap(), 2.0);
        let e = from_value::<u8>(Value::Int32(300)).unwrap_err().to_string();
        assert!(e.contains("out of range"), "{e}");
        let e = from_value::<bool>(Value::Int32(1)).unwrap_err().to_string();
        assert!(e.contains("found int32 1"), "{e}");
    }

    #[test]
    fn datetime_serde() {
        let d: DateTime = serde_json::from_str(r#""20240101T00:00:00Z""#).unwrap();
        assert_eq!(d.unix(), 1704067200);
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#""20240101T00:00:00Z""#
        );
        let e = serde_json::from_str::<DateTime>(r#""yesterday""#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid datetime \"yesterday\""), "{e}");
        let e = serde_json::from_str::<DateTime>("12")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a datetime string"), "{e}");
    }
}
