//! Lenient serde helpers for xapi's number forms.
//!
//! NOTE: minimal stand-in written on branch h/codegen so the generated model compiles; the
//! jsonrpc branch owns this file and its version should win on merge (keep these two names).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, Error, MapAccess, Visitor};

use super::parse_float;

struct FloatVisitor;

impl Visitor<'_> for FloatVisitor {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a float (number, or a string such as \"1.5\", \"nan\", \"Infinity\")")
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<f64, E> {
        parse_float(v).ok_or_else(|| E::custom(format_args!("invalid float {:?}", truncate(v))))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A float from a number or a string (`1`, `1.5`, `"1.5"`, `"nan"`, `"Infinity"`).
pub fn float<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(FloatVisitor)
}

struct Key(i64);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an int map key")
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v))
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<Key, E> {
                i64::try_from(v)
                    .map(Key)
                    .map_err(|_| E::custom("int key out of range"))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Key, E> {
                v.trim()
                    .parse()
                    .map(Key)
                    .map_err(|_| E::custom(format_args!("invalid int key {:?}", truncate(v))))
            }
        }
        d.deserialize_any(V)
    }
}

struct Float(f64);

impl<'de> serde::Deserialize<'de> for Float {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        float(d).map(Float)
    }
}

/// An `(int -> float) map`: keys arrive as decimal strings, values as any float form.
pub fn int_float_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<i64, f64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = BTreeMap<i64, f64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of int keys to floats")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((Key(k), Float(v))) = map.next_entry()? {
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_map(V)
}
