//! The dynamic XAPI value: what either wire format carries, before any typing.

use super::DateTime;

/// One XAPI value as it travels on the wire.
///
/// XML-RPC from xapi writes strings and 64-bit ints without a type tag, so an int decoded
/// from xapi's XML-RPC arrives here as [`Value::String`]; typed decoding converts it.
///
/// Equality is structural: `Int32(3)` and `Int(3)` differ, as their XML-RPC encodings do.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    String(String),
    /// rpclib's `Int` (XAPI `int`, int64): untagged in xapi's XML-RPC.
    Int(i64),
    /// rpclib's `Int32`: written as `<i4>` in XML-RPC (xapi uses it only for `event.from`'s
    /// `valid_ref_counts`), a plain number in JSON. The wire decoders never produce it: they read
    /// `<i4>` as [`Value::Int`]. Read it with [`Value::as_i64`] like any int.
    Int32(i32),
    Double(f64),
    Bool(bool),
    DateTime(DateTime),
    Base64(Vec<u8>),
    Array(Vec<Value>),
    Struct(Struct),
    Nil,
}

/// A struct (map) with its member order kept, as the sender wrote it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Struct(pub Vec<(String, Value)>);

impl Struct {
    pub fn new() -> Self {
        Struct(Vec::new())
    }

    /// The first member with this name (xapi never repeats a name).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Sets a member, replacing an existing one in place or appending a new one.
    pub fn insert(&mut self, name: impl Into<String>, value: Value) {
        let name = name.into();
        match self.get_mut(&name) {
            Some(slot) => *slot = value,
            None => self.0.push((name, value)),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let i = self.0.iter().position(|(k, _)| k == name)?;
        Some(self.0.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl FromIterator<(String, Value)> for Struct {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Struct(iter.into_iter().collect())
    }
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// An int, also from a decimal string (xapi's XML-RPC form).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Int32(i) => Some((*i).into()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A float, also from an int or a string (as xapi's own decoder accepts).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Double(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::Int32(i) => Some((*i).into()),
            Value::String(s) => parse_float(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_struct(&self) -> Option<&Struct> {
        match self {
            Value::Struct(s) => Some(s),
            _ => None,
        }
    }

    /// Member lookup when this is a struct.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.as_struct().and_then(|s| s.get(name))
    }

    /// A short name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Int(_) => "int",
            Value::Int32(_) => "int32",
            Value::Double(_) => "double",
            Value::Bool(_) => "boolean",
            Value::DateTime(_) => "dateTime",
            Value::Base64(_) => "base64",
            Value::Array(_) => "array",
            Value::Struct(_) => "struct",
            Value::Nil => "nil",
        }
    }
}

/// Parses a float the way xapi prints them: decimal, `nan`, `inf`, `-inf`, and the JSON
/// spellings `NaN`, `Infinity`, `-Infinity`.
pub fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t {
        "nan" | "NaN" | "-nan" | "+nan" => Some(f64::NAN),
        "inf" | "+inf" | "Infinity" | "+Infinity" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-Infinity" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => {
            // Rust's parser also accepts "infinity"/"nan" spellings handled above; reject the rest
            // of its extensions (none) and plain garbage.
            t.parse::<f64>().ok()
        }
    }
}

macro_rules! from_scalar {
    ($t:ty, $variant:ident) => {
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(v.into())
            }
        }
    };
}
from_scalar!(String, String);
from_scalar!(&str, String);
from_scalar!(i64, Int);
// A Rust i32 is still an XAPI int (untagged on the wire); only an explicit
// `Value::Int32` writes `<i4>`. Unsuffixed literals (`Value::from(3)`) infer i32.
from_scalar!(i32, Int);
from_scalar!(f64, Double);
from_scalar!(bool, Bool);
from_scalar!(DateTime, DateTime);
from_scalar!(Struct, Struct);

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::Array(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int32_reads_like_any_int_but_keeps_its_kind() {
        let v = Value::Int32(-7);
        assert_eq!(v.as_i64(), Some(-7));
        assert_eq!(v.as_f64(), Some(-7.0));
        assert_eq!(v.as_str(), None);
        assert_eq!(v.kind(), "int32");
        assert_eq!(Value::Int(-7).kind(), "int");
        // Distinct kinds are distinct values: they encode differently.
        assert_ne!(v, Value::Int(-7));
        assert_eq!(v, Value::Int32(-7));
        // A plain Rust i32 is still an untagged XAPI int.
        assert_eq!(Value::from(5i32), Value::Int(5));
    }
}
