//! Types with no IO: dynamic values, datetimes, typed refs, API failures and the generated
//! object model.

mod api_failure;
mod convert;
mod datetime;
mod event;
// Formatted by the generator (prettyplease, pinned in Cargo.lock), not by `cargo fmt`.
#[rustfmt::skip]
pub mod generated;
pub mod meta;
mod record;
mod refs;
mod value;
pub(crate) mod wire_enum;

pub mod de;
mod serde_value;
mod value_de;
mod value_ser;

pub use api_failure::ApiFailure;
pub use convert::{ToKey, ToValue};
pub use datetime::{DateTime, DateTimeError};
pub use event::{EventBatch, EventRecord};
pub use generated::errors::ApiError;
pub use generated::*;
pub use record::{ClassVisitor, XapiRecord};
pub use refs::{is_null_ref, Ref, XapiClass, NULL_REF};
pub use serde_value::{float_sentinel, from_value, from_value_ref, to_value};
pub use value::{parse_float, Struct, Value};
pub use wire_enum::WireEnum;
