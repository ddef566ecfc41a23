//! The event record and batch, written by hand: xapi's wire form differs from the datamodel
//! (`id` is a string, `timestamp` is `"0.0"` for `event.from`, `snapshot` is a record of any
//! class and is absent for `del`, `obj_uuid` is never sent).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, Error, Visitor};
use serde::{Deserialize, Serialize};

use super::{EventOperation, Value};

/// The result of `event.from`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventBatch {
    pub events: Vec<EventRecord>,
    /// Lower-case class name → number of objects.
    pub valid_ref_counts: BTreeMap<String, i64>,
    /// Pass back to the next `event.from`.
    pub token: String,
}

/// One event (`event.from`, and the deprecated `event.next`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// that `class` names (`model::from_value::<Vm>`).
    #[serde(skip_serializing_if = "Option::is_none")]
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
