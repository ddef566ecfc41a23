//! Sans-IO wire codecs: bytes in, values out. Nothing here opens a socket.
//!
//! - [`xmlrpc`]: XML-RPC as xapi writes it (untagged strings and ints, `Status` envelopes).
//! - [`jsonrpc`]: JSON-RPC v1 and v2 as xapi writes it (`NaN`, `Infinity`, 64-bit ints).
//!
//! Both offer the same shape of API: a generic [`Value`] path (any document), and a typed
//! path that deserializes a xapi envelope straight into `T: DeserializeOwned` without an
//! intermediate tree. Envelope decoders return `Result<Result<T, ApiFailure>, DecodeError>`:
//! the outer error means the bytes were not a valid reply, the inner one is xapi saying no.

mod call;
mod error;
pub mod jsonrpc;
pub mod typed_json;
pub mod xmlrpc;

pub use call::{Call, Void};
pub use error::{DecodeError, Limits};

use crate::model::{ApiFailure, Value};

/// A decoded method call (what a server receives).
#[derive(Clone, PartialEq)]
pub struct MethodCall {
    pub method: String,
    pub params: Vec<Value>,
}

impl std::fmt::Debug for MethodCall {
    // Params are left out: login calls carry passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MethodCall")
            .field("method", &self.method)
            .field("params", &format_args!("[{} values]", self.params.len()))
            .finish()
    }
}

/// The outcome xapi reports for a call: the result value, or an API failure.
pub type Outcome<T = Value> = Result<T, ApiFailure>;

/// Which wire protocol a transport speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    XmlRpc,
    JsonRpcV1,
    JsonRpcV2,
}
