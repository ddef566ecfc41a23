//! `ToValue`: infallible conversion of typed arguments into wire values.

use std::collections::{BTreeMap, HashMap};

use super::{DateTime, Ref, Struct, Value};

/// Converts a typed argument or record into a [`Value`]. Generated enums and records
/// implement it too; map keys become strings as xapi expects.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

/// Converts a map key to the string xapi uses for it (ints in decimal, refs and enums verbatim).
pub trait ToKey {
    fn to_key(&self) -> String;
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::String(self.to_owned())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::String(self.clone())
    }
}
impl ToValue for i64 {
    fn to_value(&self) -> Value {
        Value::Int(*self)
    }
}
impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Double(*self)
    }
}
impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}
impl ToValue for DateTime {
    fn to_value(&self) -> Value {
        Value::DateTime(self.clone())
    }
}
impl<T> ToValue for Ref<T> {
    fn to_value(&self) -> Value {
        Value::String(self.as_str().to_owned())
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for [T] {
    fn to_value(&self) -> Value {
        Value::Array(self.iter().map(ToValue::to_value).collect())
    }
}
impl<T: ToValue> ToValue for Vec<T> {
    fn to_value(&self) -> Value {
        self.as_slice().to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Nil, ToValue::to_value)
    }
}
impl<K: ToKey, V: ToValue> ToValue for BTreeMap<K, V> {
    fn to_value(&self) -> Value {
        Value::Struct(
            self.iter()
                .map(|(k, v)| (k.to_key(), v.to_value()))
                .collect::<Struct>(),
        )
    }
}
impl<K: ToKey, V: ToValue, S> ToValue for HashMap<K, V, S> {
    fn to_value(&self) -> Value {
        Value::Struct(
            self.iter()
                .map(|(k, v)| (k.to_key(), v.to_value()))
                .collect::<Struct>(),
        )
    }
}

impl ToKey for String {
    fn to_key(&self) -> String {
        self.clone()
    }
}
impl ToKey for str {
    fn to_key(&self) -> String {
        self.to_owned()
    }
}
impl ToKey for i64 {
    fn to_key(&self) -> String {
        self.to_string()
    }
}
impl<T> ToKey for Ref<T> {
    fn to_key(&self) -> String {
        self.as_str().to_owned()
    }
}
