//! `deserialize_with` helpers for generated records: lenient floats and int→float maps.
//!
//! They work with every deserializer we have (serde_json, XML-RPC, `Value`) because they
//! go through `deserialize_any` and accept whatever form the wire used: a number, an int,
//! a string (`"1.5"`, `"nan"`, `"inf"`, `"Infinity"`…), or the JSON-RPC NaN sentinel.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::parse_float;
use super::serde_value::float_sentinel;

/// A float field: f64, i64, u64 or a string spelling of a float.
pub fn float<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(FloatVisitor)
}

/// An `(int -> float) map` field (`VM_metrics.VCPUs_utilisation`): keys are ints written as
/// strings, values lenient floats.
pub fn int_float_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<i64, f64>, D::Error> {
    d.deserialize_map(IntFloatMap)
}

struct FloatVisitor;

impl Visitor<'_> for FloatVisitor {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a float (number or string)")
    }
    fn visit_f64<E>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_i64<E>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        float_sentinel(v)
            .or_else(|| parse_float(v))
            .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

/// A map key as an int: from a string (the wire form) or an int.
struct IntKey(i64);

impl<'de> de::Deserialize<'de> for IntKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer map key")
            }
            fn visit_i64<E>(self, v: i64) -> Result<IntKey, E> {
                Ok(IntKey(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntKey, E> {
                i64::try_from(v)
                    .map(IntKey)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntKey, E> {
                v.trim()
                    .parse()
                    .map(IntKey)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

struct Float(f64);

impl<'de> de::Deserialize<'de> for Float {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        float(d).map(Float)
    }
}

struct IntFloatMap;

impl<'de> Visitor<'de> for IntFloatMap {
    type Value = BTreeMap<i64, f64>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map from integers to floats")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some((IntKey(k), Float(v))) = map.next_entry()? {
            out.insert(k, v);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct M {
        #[serde(deserialize_with = "float")]
        f: f64,
        #[serde(deserialize_with = "int_float_map")]
        m: BTreeMap<i64, f64>,
    }

    #[test]
    fn lenient_forms_from_json() {
        for (text, want) in [
            ("1.5", 1.5),
            ("2", 2.0),
            ("\"nan\"", f64::NAN),
            ("\"-inf\"", f64::NEG_INFINITY),
            ("\"Infinity\"", f64::INFINITY),
            ("\"\\u0000xo:NaN\"", f64::NAN),
            ("18446744073709551615", 18446744073709551615.0),
        ] {
            let m: M =
                serde_json::from_str(&format!(r#"{{"f":{text},"m":{{"0":{text},"1":"0.25"}}}}"#))
                    .unwrap();
            assert!(
                m.f == want || (want.is_nan() && m.f.is_nan()),
                "{text}: {}",
                m.f
            );
            assert_eq!(m.m.len(), 2);
            assert_eq!(m.m[&1], 0.25);
        }
    }

    #[test]
    fn rejects_non_floats() {
        for text in [r#""abc""#, "true", "null", "[1]"] {
            assert!(
                serde_json::from_str::<M>(&format!(r#"{{"f":{text},"m":{{}}}}"#)).is_err(),
                "{text}"
            );
        }
        let e = serde_json::from_str::<M>(r#"{"f":1,"m":{"x":1}}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("integer map key"), "{e}");
    }
}
