//! The event record and batch, written by hand: xapi's wire form differs from the datamodel
//! (`id` is a string, `timestamp` is `"0.0"` for `event.from`, `snapshot` is a record of any
//! class and is absent for `del`, `obj_uuid` is never sent).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{EventOperation, Struct, Value};

/// The result of `event.from`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct EventBatch {
    pub events: Vec<EventRecord>,
    /// Lower-case class name → number of objects.
    pub valid_ref_counts: BTreeMap<String, i64>,
    /// Pass back to the next `event.from`.
    pub token: String,
}

/// One event (`event.from`, and the deprecated `event.next`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct EventRecord {
    /// The database generation (sent as a string by `event.from`, an int by `event.next`).
    #[serde(deserialize_with = "lenient_int")]
    pub id: i64,
    /// As sent: `"0.0"` from `event.from`, seconds since the epoch from `event.next`.
    #[serde(deserialize_with = "lenient_text")]
    pub timestamp: String,
    /// Lower-case class name (`vm`, `vm_guest_metrics`); see `model::meta::class`.
    pub class: String,
    pub operation: EventOperation,
    /// The object's ref, untyped since the class is only known at run time.
    #[serde(rename = "ref")]
    pub ref_: String,
    /// The object's record after the change; `None` for `del`. Decode it with the record type
    /// that `class` names.
    #[serde(deserialize_with = "snapshot")]
    pub snapshot: Option<Value>,
}

fn lenient_int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an int or a decimal string")
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("event id out of range"))
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<i64, E> {
            v.trim().parse().map_err(|_| {
                E::custom(format_args!(
                    "invalid event id {:?}",
                    v.chars().take(40).collect::<String>()
                ))
            })
        }
    }
    d.deserialize_any(V)
}

fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string, number or datetime")
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E: Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(V)
}

fn snapshot<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    match AnyValue::deserialize(d)?.0 {
        Value::Nil => Ok(None),
        v => Ok(Some(v)),
    }
}

/// Any self-describing value, as a dynamic [`Value`] (the codecs' depth limits still apply).
struct AnyValue(Value);

impl<'de> Deserialize<'de> for AnyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyVisitor).map(AnyValue)
    }
}

struct AnyVisitor;

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E: Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Double(v as f64), Value::Int))
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Double(v))
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Base64(v.to_vec()))
    }
    fn visit_none<E: Error>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_unit<E: Error>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(AnyVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(AnyValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Struct::new();
        while let Some((k, AnyValue(v))) = map.next_entry::<String, AnyValue>()? {
            out.0.push((k, v));
        }
        Ok(Value::Struct(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_from_batch_as_xapi_sends_it() {
        let batch: EventBatch = serde_json::from_value(serde_json::json!({
            "events": [
                {"id": "42", "timestamp": "0.0", "class": "vm", "operation": "mod", "ref": "OpaqueRef:a",
                 "snapshot": {"name_label": "web", "VCPUs_max": 2, "tags": ["x"]}},
                {"id": 7, "timestamp": 1.5, "class": "vm", "operation": "del", "ref": "OpaqueRef:b"}
            ],
            "valid_ref_counts": {"vm": 3},
            "token": "00000000000000000042,00000000000000000000"
        }))
        .unwrap();
        assert_eq!(batch.events.len(), 2);
        let e = &batch.events[0];
        assert_eq!(
            (e.id, e.operation.clone(), e.ref_.as_str()),
            (42, EventOperation::Mod, "OpaqueRef:a")
        );
        let snap = e.snapshot.as_ref().unwrap();
        assert_eq!(snap.get("VCPUs_max"), Some(&Value::Int(2)));
        assert_eq!(batch.events[1].snapshot, None);
        assert_eq!(batch.events[1].timestamp, "1.5");
        assert_eq!(batch.valid_ref_counts["vm"], 3);
        assert!(serde_json::from_value::<EventRecord>(serde_json::json!({"id": "x"})).is_err());
    }
}
