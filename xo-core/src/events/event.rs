//! Watch events: one change to one object, its record decoded once into the class's type.

use std::collections::BTreeMap;
use std::fmt;

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::calls::clip;
use super::record::Record;
use crate::model::{from_value_ref, Ref, Value, XapiClass};
use crate::rpc::DecodeError;

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Add,
    Mod,
    Del,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Mod => "mod",
            Op::Del => "del",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change to one object, for any class (including ones this version does not know).
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectEvent {
    /// The class as the watcher was configured with it (`VM`), or as the server sent it
    /// (lower case) for classes it was not told about.
    pub class: String,
    pub op: Op,
    /// The object's ref.
    pub ref_: String,
    /// The record after the change, typed when the class is known; `None` for `del`.
    pub snapshot: Option<Record>,
}

/// An [`ObjectEvent`] as a record type.
#[derive(Clone, PartialEq)]
pub struct TypedEvent<T> {
    pub op: Op,
    pub ref_: Ref<T>,
    /// `None` for `del`.
    pub snapshot: Option<Arc<T>>,
}

impl<T: XapiClass + fmt::Debug> fmt::Debug for TypedEvent<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedEvent")
            .field("op", &self.op)
            .field("ref", &self.ref_)
            .field("snapshot", &self.snapshot)
            .finish()
    }
}

/// Why a snapshot could not be typed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{class} {ref_}: {message}")]
pub struct TypeError {
    pub class: String,
    pub ref_: String,
    pub message: String,
}

impl ObjectEvent {
    /// True when this event is about class `T` (case-insensitive, as xapi compares).
    pub fn is<T: XapiClass>(&self) -> bool {
        self.class.eq_ignore_ascii_case(T::WIRE_NAME)
    }

    /// The typed event when this is about class `T`; `None` for another class. The record
    /// decoded by the watcher is shared; any other `T` (a struct of your own with the fields
    /// you need) is decoded from the wire form.
    pub fn typed<T: XapiClass + DeserializeOwned + Send + Sync>(
        &self,
    ) -> Option<Result<TypedEvent<T>, TypeError>> {
        if !self.is::<T>() {
            return None;
        }
        let snapshot = match &self.snapshot {
            None => None,
            Some(r) => match r.get_arc::<T>() {
                Some(t) => Some(t),
                None => match from_value_ref::<T>(&r.to_value()) {
                    Ok(t) => Some(Arc::new(t)),
                    Err(e) => {
                        return Some(Err(TypeError {
                            class: self.class.clone(),
                            ref_: self.ref_.clone(),
                            message: e.to_string(),
                        }))
                    }
                },
            },
        };
        Some(Ok(TypedEvent {
            op: self.op,
            ref_: Ref::new(self.ref_.as_str()),
            snapshot,
        }))
    }
}

/// One `event.from` reply, parsed leniently from the raw value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub events: Vec<ObjectEvent>,
    /// Lower-case class → number of objects.
    pub valid_ref_counts: BTreeMap<String, i64>,
    pub token: String,
}

/// Parses an `event.from` result. `class_name` maps the server's lower-case class to the
/// configured spelling.
pub(crate) fn parse_batch(
    v: Value,
    class_name: &dyn Fn(&str) -> String,
    typed: bool,
) -> Result<Batch, DecodeError> {
    let Value::Struct(s) = v else {
        return Err(DecodeError::new(format!(
            "event.from: expected a struct, got {}",
            v.kind()
        )));
    };
    let mut batch = Batch::default();
    for (k, v) in s.0 {
        match k.as_str() {
            "token" => {
                batch.token = v
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| decode("token is not a string"))?;
            }
            "valid_ref_counts" => {
                if let Value::Struct(m) = v {
                    batch.valid_ref_counts =
                        m.0.into_iter()
                            .filter_map(|(c, n)| Some((c, n.as_i64()?)))
                            .collect();
                }
            }
            "events" => {
                let Value::Array(items) = v else {
                    return Err(decode("events is not an array"));
                };
                batch.events.reserve(items.len());
                for item in items {
                    batch.events.push(parse_event(item, class_name, typed)?);
                }
            }
            _ => {}
        }
    }
    if batch.token.is_empty() {
        return Err(decode("event.from reply has no token"));
    }
    Ok(batch)
}

fn parse_event(
    v: Value,
    class_name: &dyn Fn(&str) -> String,
    typed: bool,
) -> Result<ObjectEvent, DecodeError> {
    let Value::Struct(s) = v else {
        return Err(decode("event is not a struct"));
    };
    let (mut class, mut op, mut r, mut snapshot) = (None, None, None, None);
    for (k, v) in s.0 {
        match (k.as_str(), v) {
            ("class", Value::String(c)) => class = Some(c),
            ("operation", Value::String(o)) => {
                op = Some(match o.as_str() {
                    "add" => Op::Add,
                    "mod" => Op::Mod,
                    "del" => Op::Del,
                    other => {
                        return Err(DecodeError::new(format!(
                            "unknown event operation {}",
                            clip(other)
                        )))
                    }
                })
            }
            ("ref", Value::String(x)) => r = Some(x),
            ("snapshot", v @ Value::Struct(_)) => snapshot = Some(v),
            _ => {}
        }
    }
    let (Some(class), Some(op), Some(ref_)) = (class, op, r) else {
        return Err(decode("event lacks class, operation or ref"));
    };
    if op != Op::Del && snapshot.is_none() {
        return Err(DecodeError::new(format!(
            "{op} event for {} without a snapshot",
            clip(&class)
        )));
    }
    let class = class_name(&class);
    // Decoded here, once: every consumer (cache, webhooks) shares the typed record.
    let snapshot = match op {
        Op::Del => None,
        _ => snapshot.map(|v| super::calls::record(&class, v, typed)),
    };
    Ok(ObjectEvent {
        class,
        op,
        ref_,
        snapshot,
    })
}

fn decode(msg: &str) -> DecodeError {
    DecodeError::new(msg)
}
