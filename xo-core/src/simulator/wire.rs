//! The wire codecs the simulator speaks, from `crate::rpc`: requests in, xapi envelopes out.

pub use crate::rpc::jsonrpc;
pub use crate::rpc::xmlrpc::{self, encode_value};
