//! What every generated record type is, so that code configured by class name (the events
//! watcher) can still decode and hand out typed records.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{ToValue, XapiClass};

/// A generated record type: decodable from the wire, encodable back, shareable.
pub trait XapiRecord:
    XapiClass + ToValue + Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static
{
}

impl<T> XapiRecord for T where
    T: XapiClass
        + ToValue
        + Serialize
        + DeserializeOwned
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// Generic code run for one record type, picked by [`visit_class`](super::visit_class).
pub trait ClassVisitor {
    /// What the visit returns.
    type Output;
    /// Called with the class's record type.
    fn visit<T: XapiRecord>(self) -> Self::Output;
}
