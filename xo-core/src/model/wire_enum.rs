//! Support for the generated enums: wire-string conversions shared by all 73 of them.

/// A datamodel enum: known values plus a catch-all for values from newer hosts.
pub trait WireEnum: Sized {
    /// The known value spelt `s`, if any.
    fn known(s: &str) -> Option<Self>;
    /// The catch-all `Unknown(s)`.
    fn unknown(s: String) -> Self;
    /// The wire spelling.
    fn wire(&self) -> &str;

    /// Never fails: unknown spellings become `Unknown`.
    fn from_wire(s: &str) -> Self {
        Self::known(s).unwrap_or_else(|| Self::unknown(s.to_owned()))
    }

    /// Like `from_wire`, reusing the allocation for unknown values.
    fn from_wire_owned(s: String) -> Self {
        match Self::known(&s) {
            Some(v) => v,
            None => Self::unknown(s),
        }
    }
}

/// Serde visitor for any [`WireEnum`]: accepts borrowed, transient and owned strings.
pub struct WireVisitor<E>(std::marker::PhantomData<fn() -> E>);

impl<E> WireVisitor<E> {
    pub fn new() -> Self {
        WireVisitor(std::marker::PhantomData)
    }
}

impl<E> Default for WireVisitor<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: WireEnum> serde::de::Visitor<'_> for WireVisitor<E> {
    type Value = E;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an enum value string")
    }
    fn visit_str<Er: serde::de::Error>(self, v: &str) -> Result<E, Er> {
        Ok(E::from_wire(v))
    }
    fn visit_string<Er: serde::de::Error>(self, v: String) -> Result<E, Er> {
        Ok(E::from_wire_owned(v))
    }
}

/// `Default` (first datamodel value), `Display`, `FromStr`, `ToValue`, `ToKey` and serde
/// impls for a generated enum.
macro_rules! wire_enum_impls {
    ($ty:ident, $first:ident) => {
        impl Default for $ty {
            fn default() -> Self {
                $ty::$first
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $ty {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(<$ty as WireEnum>::from_wire(s))
            }
        }
        impl crate::model::ToValue for $ty {
            fn to_value(&self) -> crate::model::Value {
                crate::model::Value::String(self.as_str().to_owned())
            }
        }
        impl crate::model::ToKey for $ty {
            fn to_key(&self) -> String {
                self.as_str().to_owned()
            }
        }
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(crate::model::wire_enum::WireVisitor::new())
            }
        }
    };
}
pub(crate) use wire_enum_impls;
