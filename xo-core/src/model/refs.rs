//! Typed object references: `Ref<Vm>` cannot be passed where a `Ref<Host>` is expected.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

/// A XAPI class, implemented by each generated record type.
pub trait XapiClass: 'static {
    /// The class name as the datamodel spells it (`VM`, `VM_guest_metrics`, `host`).
    const WIRE_NAME: &'static str;
    /// Refs of this class are credentials (sessions) and must never be printed.
    const SECRET_REFS: bool = false;

    /// The record's `uuid` (`""` for classes without one).
    fn uuid(&self) -> &str {
        ""
    }

    /// The record's `name_label` (`""` for classes without one).
    fn name_label(&self) -> &str {
        ""
    }
}

/// The wire text of the null reference.
pub const NULL_REF: &str = "OpaqueRef:NULL";

/// A reference to an object of class `T`, as the opaque string the server handed out.
///
/// xapi's refs are stored without a heap allocation and cloned by copy; a record holds a
/// dozen of them. The null ref, the empty string and xapi's `Ref:*` placeholders all count
/// as null (XO does the same, after a xapi bug).
pub struct Ref<T> {
    raw: RefText,
    _class: PhantomData<fn() -> T>,
}

/// `OpaqueRef:` and a uuid: the length of every ref xapi hands out.
const INLINE: usize = 46;

/// A ref's text: inline up to [`INLINE`] bytes, shared beyond (other servers, tests).
#[derive(Clone)]
enum RefText {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl RefText {
    fn new(s: &str) -> Self {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            RefText::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            RefText::Shared(Arc::from(s))
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // `new` copied exactly `len` bytes of a `&str`, so this never fails; checking
            // 46 bytes is far cheaper than the allocation it replaces.
            RefText::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            RefText::Shared(s) => s,
        }
    }
}

impl<T> Ref<T> {
    pub fn new(raw: impl AsRef<str>) -> Self {
        Ref {
            raw: RefText::new(raw.as_ref()),
            _class: PhantomData,
        }
    }

    /// `OpaqueRef:NULL`.
    pub fn null() -> Self {
        Ref::new(NULL_REF)
    }

    pub fn is_null(&self) -> bool {
        is_null_ref(self.as_str())
    }

    /// The wire text. For session refs this is a secret: do not log it.
    pub fn as_str(&self) -> &str {
        self.raw.as_str()
    }

    /// Changes the class, for dynamic code that learned it at run time.
    pub fn cast<U>(self) -> Ref<U> {
        Ref {
            raw: self.raw,
            _class: PhantomData,
        }
    }
}

/// True for every spelling xapi uses for "no object".
pub fn is_null_ref(s: &str) -> bool {
    s.is_empty() || s == NULL_REF || s.starts_with("Ref:")
}

impl<T> Clone for Ref<T> {
    fn clone(&self) -> Self {
        Ref {
            raw: self.raw.clone(),
            _class: PhantomData,
        }
    }
}
impl<T> PartialEq for Ref<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl<T> Eq for Ref<T> {}
impl<T> Hash for Ref<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}
impl<T> PartialOrd for Ref<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Ref<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}
impl<T> Default for Ref<T> {
    fn default() -> Self {
        Ref::null()
    }
}
impl<T> std::borrow::Borrow<str> for Ref<T> {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl<T: XapiClass> fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if T::SECRET_REFS && !self.is_null() {
            write!(f, "Ref<{}>(<redacted>)", T::WIRE_NAME)
        } else {
            write!(f, "Ref<{}>({})", T::WIRE_NAME, self.as_str())
        }
    }
}

impl<T: XapiClass> fmt::Display for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if T::SECRET_REFS && !self.is_null() {
            f.write_str("<redacted>")
        } else {
            f.write_str(self.as_str())
        }
    }
}

impl<T> From<&str> for Ref<T> {
    fn from(s: &str) -> Self {
        Ref::new(s)
    }
}
impl<T> From<String> for Ref<T> {
    fn from(s: String) -> Self {
        Ref::new(s)
    }
}
impl<T> From<&Ref<T>> for crate::model::Value {
    fn from(r: &Ref<T>) -> Self {
        crate::model::Value::String(r.as_str().to_owned())
    }
}
impl<T> From<Ref<T>> for crate::model::Value {
    fn from(r: Ref<T>) -> Self {
        crate::model::Value::String(r.as_str().to_owned())
    }
}

impl<T> serde::Serialize for Ref<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de, T> serde::Deserialize<'de> for Ref<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<fn() -> T>);
        impl<T> serde::de::Visitor<'_> for V<T> {
            type Value = Ref<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object reference string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Ref<T>, E> {
                Ok(Ref::new(v))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Ref<T>, E> {
                Ok(Ref::null())
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Ref<T>, E> {
                Ok(Ref::null())
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vm;
    impl XapiClass for Vm {
        const WIRE_NAME: &'static str = "VM";
    }
    struct Session;
    impl XapiClass for Session {
        const WIRE_NAME: &'static str = "session";
        const SECRET_REFS: bool = true;
    }

    #[test]
    fn inline_and_long_refs_behave_alike() {
        use std::collections::HashMap;
        let short = "OpaqueRef:536000f4-bd6a-48f8-b0af-3ce429ca1790";
        assert_eq!(short.len(), INLINE);
        let long = format!("{short}-and-then-some");
        let mut m: HashMap<Ref<Vm>, u8> = HashMap::new();
        m.insert(Ref::new(short), 1);
        m.insert(Ref::new(long.as_str()), 2);
        m.insert(Ref::new(""), 3);
        // Borrow<str> must hash like str for both representations.
        assert_eq!(m.get(short), Some(&1));
        assert_eq!(m.get(long.as_str()), Some(&2));
        assert_eq!(m.get(""), Some(&3));
        assert_eq!(Ref::<Vm>::new(long.clone()).as_str(), long);
        assert_eq!(Ref::<Vm>::new("Ref:é").as_str(), "Ref:é");
        assert!(Ref::<Vm>::new(short) < Ref::new(long.as_str()));
        assert_eq!(
            Ref::<Vm>::new(short).clone().cast::<Session>().as_str(),
            short
        );
        assert!(std::mem::size_of::<Ref<Vm>>() <= 48);
    }

    #[test]
    fn null_spellings() {
        assert!(Ref::<Vm>::null().is_null());
        assert!(Ref::<Vm>::new("").is_null());
        assert!(Ref::<Vm>::new("Ref:0").is_null());
        assert!(!Ref::<Vm>::new("OpaqueRef:1234").is_null());
    }

    #[test]
    fn session_refs_are_redacted() {
        let s = Ref::<Session>::new("OpaqueRef:secret-1");
        assert!(!format!("{s:?}").contains("secret-1"));
        assert!(!format!("{s}").contains("secret-1"));
        let v = Ref::<Vm>::new("OpaqueRef:vm-1");
        assert!(format!("{v:?}").contains("vm-1"));
    }
}
