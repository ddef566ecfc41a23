//! Records as the events layer holds them: decoded once, when their event arrives, into the
//! generated type of their class; kept dynamic only for classes this version does not know
//! (or a record a newer host shaped differently).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::model::{from_value_ref, visit_class, ClassVisitor, ToValue, Value, XapiRecord};

/// One object's record.
#[derive(Clone)]
pub enum Record {
    /// Decoded into its generated type (`Vm`, `Pif`, …).
    Typed(TypedRecord),
    /// As xapi sent it: a class this version does not know, or a record that did not decode.
    Dynamic(Value),
}

/// A record of some generated type, shared (`Arc`) so the cache hands it out without copying.
#[derive(Clone)]
pub struct TypedRecord {
    value: Arc<dyn Any + Send + Sync>,
    vtable: &'static VTable,
}

/// What the events layer needs to do with a record without knowing its type.
struct VTable {
    to_value: fn(&(dyn Any + Send + Sync)) -> Value,
    debug: fn(&(dyn Any + Send + Sync), &mut fmt::Formatter<'_>) -> fmt::Result,
    uuid: fn(&(dyn Any + Send + Sync)) -> &str,
    name_label: fn(&(dyn Any + Send + Sync)) -> &str,
}

trait HasVTable {
    const VTABLE: VTable;
}

impl<T: XapiRecord> HasVTable for T {
    const VTABLE: VTable = VTable {
        to_value: |v| v.downcast_ref::<T>().map_or(Value::Nil, ToValue::to_value),
        debug: |v, f| match v.downcast_ref::<T>() {
            Some(t) => fmt::Debug::fmt(t, f),
            None => f.write_str("?"),
        },
        uuid: |v| v.downcast_ref::<T>().map_or("", |t| t.uuid()),
        name_label: |v| v.downcast_ref::<T>().map_or("", |t| t.name_label()),
    };
}

impl TypedRecord {
    /// Wraps a decoded record.
    pub fn new<T: XapiRecord>(record: T) -> Self {
        TypedRecord::from_arc(Arc::new(record))
    }

    /// Wraps a shared record.
    pub fn from_arc<T: XapiRecord>(record: Arc<T>) -> Self {
        TypedRecord {
            value: record,
            vtable: &<T as HasVTable>::VTABLE,
        }
    }

    /// The record as `T`, if it is one.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.value.downcast_ref::<T>()
    }

    /// The record as a shared `T`, if it is one.
    pub fn get_arc<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.value.clone().downcast::<T>().ok()
    }
}

impl fmt::Debug for TypedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.vtable.debug)(&*self.value, f)
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Record::Typed(t) => t.fmt(f),
            Record::Dynamic(v) => write!(f, "Dynamic({v:?})"),
        }
    }
}

/// Two records are equal when their wire forms are.
impl PartialEq for Record {
    fn eq(&self, other: &Record) -> bool {
        match (self, other) {
            (Record::Typed(a), Record::Typed(b)) if Arc::ptr_eq(&a.value, &b.value) => true,
            _ => self.to_value() == other.to_value(),
        }
    }
}

impl Record {
    /// Decodes `value` as the generated type of `class` (any case); dynamic when the class is
    /// unknown or the record does not fit the type.
    pub fn decode(class: &str, value: Value) -> Record {
        struct Decode<'a>(&'a Value);
        impl ClassVisitor for Decode<'_> {
            type Output = Option<TypedRecord>;
            fn visit<T: XapiRecord>(self) -> Option<TypedRecord> {
                from_value_ref::<T>(self.0).ok().map(TypedRecord::new)
            }
        }
        match visit_class(class, Decode(&value)).flatten() {
            Some(t) => Record::Typed(t),
            None => Record::Dynamic(value),
        }
    }

    /// The record as `T`, if it was decoded as one.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        match self {
            Record::Typed(t) => t.get(),
            Record::Dynamic(_) => None,
        }
    }

    /// The record as a shared `T`, if it was decoded as one.
    pub fn get_arc<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        match self {
            Record::Typed(t) => t.get_arc(),
            Record::Dynamic(_) => None,
        }
    }

    /// The wire form (field names as xapi spells them). Encodes typed records: for diffs,
    /// payloads and classes read dynamically, not for hot paths.
    pub fn to_value(&self) -> Value {
        match self {
            Record::Typed(t) => (t.vtable.to_value)(&*t.value),
            Record::Dynamic(v) => v.clone(),
        }
    }

    /// The dynamic record, for classes this version does not know.
    pub fn dynamic(&self) -> Option<&Value> {
        match self {
            Record::Dynamic(v) => Some(v),
            Record::Typed(_) => None,
        }
    }

    /// The `uuid` field (`""` when absent).
    pub fn uuid(&self) -> &str {
        match self {
            Record::Typed(t) => (t.vtable.uuid)(&*t.value),
            Record::Dynamic(v) => v.get("uuid").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// The `name_label` field (`""` when absent).
    pub fn name_label(&self) -> &str {
        match self {
            Record::Typed(t) => (t.vtable.name_label)(&*t.value),
            Record::Dynamic(v) => v.get("name_label").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// Wire names of the fields whose values differ between `old` and `new`, in `new`'s
    /// order (then fields only `old` has).
    pub fn changed_fields(old: &Record, new: &Record) -> Vec<String> {
        let (old, new) = (old.to_value(), new.to_value());
        let (Some(o), Some(n)) = (old.as_struct(), new.as_struct()) else {
            return Vec::new();
        };
        let mut out: Vec<String> = n
            .iter()
            .filter(|(k, v)| o.get(k) != Some(*v))
            .map(|(k, _)| k.to_owned())
            .collect();
        out.extend(
            o.iter()
                .filter(|(k, _)| n.get(k).is_none())
                .map(|(k, _)| k.to_owned()),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Struct, Vm, VmPowerState};

    fn vm(state: &str) -> Value {
        Value::Struct(Struct(vec![
            ("uuid".into(), "u-1".into()),
            ("name_label".into(), "web".into()),
            ("power_state".into(), state.into()),
        ]))
    }

    #[test]
    fn known_classes_decode_once_and_others_stay_dynamic() {
        let r = Record::decode("vm", vm("Running"));
        let typed = r.get::<Vm>().expect("typed");
        assert_eq!(typed.power_state, VmPowerState::Running);
        assert_eq!((r.uuid(), r.name_label()), ("u-1", "web"));
        assert!(r.dynamic().is_none());
        let unknown = Record::decode("future_class", vm("Running"));
        assert!(unknown.get::<Vm>().is_none());
        assert_eq!(unknown.uuid(), "u-1");
        // A record a newer host shaped differently stays readable.
        let odd = Record::decode("VM", Value::Int(3));
        assert_eq!(odd.dynamic(), Some(&Value::Int(3)));
    }

    #[test]
    fn changed_fields_compare_wire_forms() {
        let a = Record::decode("VM", vm("Halted"));
        let b = Record::decode("VM", vm("Running"));
        assert_eq!(Record::changed_fields(&a, &b), vec!["power_state"]);
        assert!(Record::changed_fields(&a, &a.clone()).is_empty());
        assert_ne!(a, b);
    }
}
