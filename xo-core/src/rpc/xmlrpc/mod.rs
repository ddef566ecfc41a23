//! XML-RPC as xapi speaks it, sans IO.
//!
//! xapi writes strings and ints untagged (`<value>123</value>`), wraps every reply in a
//! `{Status, Value | ErrorDescription}` struct and never uses `<fault>` for API errors.
//! Decoding is either generic (into [`Value`]) or typed (serde straight from the XML events,
//! no intermediate tree); both enforce [`Limits`], refuse DOCTYPE/entity declarations and
//! invalid UTF-8, and report a byte offset and, where cheap, a value path.

mod de;
mod envelope;
mod lex;
mod reader;
mod writer;

use serde::de::DeserializeOwned;

use self::lex::{Lexer, Tag};
use crate::model::Value;
use crate::rpc::{DecodeError, Limits, MethodCall, Outcome};

pub use writer::{encode_call, encode_envelope, encode_fault, encode_response, encode_value};

/// A decoded `<methodResponse>`.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    Params(Vec<Value>),
    Fault { code: i64, message: String },
}

/// Either kind of XML-RPC document.
#[derive(Clone, Debug, PartialEq)]
pub enum Document {
    Call(MethodCall),
    Response(Response),
}

/// A bare `<value>` fragment, as xapi stores a task's result.
pub fn decode_value(bytes: &[u8], limits: Limits) -> Result<Value, DecodeError> {
    reader::fragment(&mut Lexer::new(bytes, limits)?)
}

/// A `<methodCall>` document.
pub fn decode_call(bytes: &[u8], limits: Limits) -> Result<MethodCall, DecodeError> {
    match decode_document(bytes, limits)? {
        Document::Call(c) => Ok(c),
        Document::Response(_) => {
            Err(DecodeError::new("expected <methodCall>, found <methodResponse>").at(0))
        }
    }
}

/// A `<methodResponse>` document: params or a fault.
pub fn decode_response(bytes: &[u8], limits: Limits) -> Result<Response, DecodeError> {
    match decode_document(bytes, limits)? {
        Document::Response(r) => Ok(r),
        Document::Call(_) => {
            Err(DecodeError::new("expected <methodResponse>, found <methodCall>").at(0))
        }
    }
}

/// A call or a response, told apart by the root element.
pub fn decode_document(bytes: &[u8], limits: Limits) -> Result<Document, DecodeError> {
    let mut lx = Lexer::new(bytes, limits)?;
    match reader::root(&mut lx)? {
        Tag::MethodCall => reader::call(&mut lx).map(Document::Call),
        _ => reader::response(&mut lx).map(Document::Response),
    }
}

/// A xapi reply as a [`Value`]: `Ok(Value)` for `Status: Success`, `Err(ApiFailure)` for
/// `Status: Failure`. A `<fault>` or any other shape is a [`DecodeError`].
pub fn decode_envelope(bytes: &[u8], limits: Limits) -> Result<Outcome<Value>, DecodeError> {
    envelope::from_response(decode_response(bytes, limits)?)
}

/// A xapi reply deserialized straight into `T`, members in any order.
pub fn decode_envelope_typed<T: DeserializeOwned>(
    bytes: &[u8],
    limits: Limits,
) -> Result<Outcome<T>, DecodeError> {
    envelope::typed(&mut Lexer::new(bytes, limits)?)
}

/// A `<value>` fragment (a task's result) deserialized into `T`.
pub fn from_fragment<T: DeserializeOwned>(bytes: &[u8], limits: Limits) -> Result<T, DecodeError> {
    let mut lx = Lexer::new(bytes, limits)?;
    let empty = lx.expect_start(Tag::Value)?;
    let v = T::deserialize(de::ValueDe::new(&mut lx, empty))?;
    lx.expect_eof()?;
    Ok(v)
}

/// Puts a path segment in front of an error's path (errors unwind from the inside out).
pub(crate) fn prefix_path(mut e: DecodeError, segment: &str) -> DecodeError {
    e.path = Some(match e.path.take() {
        Some(rest) => format!("{segment}{rest}"),
        None => segment.to_owned(),
    });
    e
}
