//! The envelope as serde visitors: member names, duplicates refused, unknown members
//! skipped; the generic form keeps every member as a `Value`, the typed one decodes the
//! result straight into `T`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::top;
use crate::model::Value;

/// The envelope with every member kept as a `Value` (the generic path).
#[derive(Default)]
pub(super) struct Envelope {
    pub(super) jsonrpc: Option<Value>,
    pub(super) method: Option<Value>,
    pub(super) params: Option<Value>,
    pub(super) result: Option<Value>,
    pub(super) error: Option<Value>,
    pub(super) id: Option<Value>,
}

/// Envelope member names; anything else is skipped.
enum Field {
    JsonRpc,
    Method,
    Params,
    Result,
    Error,
    Id,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "jsonrpc" => Field::JsonRpc,
                    "method" => Field::Method,
                    "params" => Field::Params,
                    "result" => Field::Result,
                    "error" => Field::Error,
                    "id" => Field::Id,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

fn set<T, E: de::Error>(slot: &mut Option<T>, v: T, name: &str) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::custom(format_args!("duplicate member {name:?}")));
    }
    *slot = Some(v);
    Ok(())
}

pub(super) struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut env = Envelope::default();
        while let Some(field) = map.next_key::<Field>()? {
            let (slot, name) = match field {
                Field::JsonRpc => (&mut env.jsonrpc, "jsonrpc"),
                Field::Method => (&mut env.method, "method"),
                Field::Params => (&mut env.params, "params"),
                Field::Result => (&mut env.result, "result"),
                Field::Error => (&mut env.error, "error"),
                Field::Id => (&mut env.id, "id"),
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            set(slot, map.next_value::<Value>()?, name)?;
        }
        Ok(env)
    }
}

/// The result member: `null` → `None`, anything else → `T` (a top-level f64 leniently).
struct ResultSeed<T>(PhantomData<fn() -> T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for ResultSeed<T> {
    type Value = Option<T>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for ResultSeed<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a result")
    }
    fn visit_none<E>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        T::deserialize(top::TopLevel(d)).map(Some)
    }
}

/// The reply envelope with the result decoded straight into `T`.
pub(super) struct TypedEnvelope<T> {
    pub(super) jsonrpc: Option<Value>,
    pub(super) result: Option<Option<T>>,
    pub(super) error: Option<Value>,
    pub(super) id: Option<Value>,
}

pub(super) struct TypedSeed<T>(pub(super) PhantomData<fn() -> T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for TypedSeed<T> {
    type Value = TypedEnvelope<T>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for TypedSeed<T> {
    type Value = TypedEnvelope<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC reply object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut env = TypedEnvelope {
            jsonrpc: None,
            result: None,
            error: None,
            id: None,
        };
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::JsonRpc => set(&mut env.jsonrpc, map.next_value()?, "jsonrpc")?,
                Field::Result => set(
                    &mut env.result,
                    map.next_value_seed(ResultSeed::<T>(PhantomData))?,
                    "result",
                )?,
                Field::Error => set(&mut env.error, map.next_value()?, "error")?,
                Field::Id => set(&mut env.id, map.next_value()?, "id")?,
                Field::Method | Field::Params | Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(env)
    }
}
