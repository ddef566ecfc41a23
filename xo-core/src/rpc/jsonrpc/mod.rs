//! JSON-RPC v1 and v2 as xapi speaks it (POST `/jsonrpc`).
//!
//! - Request: `{"jsonrpc":"2.0"?, "method", "params": […], "id"}`. `id` is mandatory (string or
//!   int, never null); no `jsonrpc` key means v1; in v2 a `params` object is one struct argument.
//! - Reply v1: `{"result", "error": null | [code, params…], "id"}`. Reply v2: `{"jsonrpc":"2.0",
//!   "result", "id"}` or `{"jsonrpc":"2.0", "error": {"code": 1, "message": CODE, "data":
//!   [params…]}, "id"}`. Both error shapes decode to [`ApiFailure`].
//! - int64 are bare integers with full precision: serde_json reads them exactly.
//!
//! **Non-finite floats.** xapi writes `NaN`, `Infinity` and `-Infinity` as bare literals, which
//! serde_json refuses. Before parsing, one scan over the bytes (skipping string contents with
//! memchr, so a `"NaN"` string is never touched) rewrites each bare literal into a JSON string
//! holding a sentinel that starts with a NUL character (`"\u0000xo:NaN"`, see
//! [`crate::model::float_sentinel`]); xapi never sends NUL in its strings, so the sentinel
//! cannot collide with real data. `Value` deserialization and [`crate::model::de::float`] map it
//! back to the float. Input without such literals is parsed in place, without a copy. The same
//! scan enforces [`Limits`] (size, nesting depth) and rejects invalid UTF-8.

mod encode;
mod envelope;
mod prepass;
mod top;

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, DeserializeSeed};

pub use encode::{encode_call, encode_reply, encode_value};

use crate::model::{ApiFailure, Value};
use crate::rpc::{DecodeError, Limits, Outcome};
use envelope::{Envelope, EnvelopeVisitor, TypedSeed};
use prepass::Prepared;

/// The JSON-RPC dialect: v1 (no `jsonrpc` key) or v2 (`"jsonrpc":"2.0"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    V1,
    V2,
}

/// A request id: xapi accepts a string or an int, never null.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Id {
    Int(i64),
    Str(String),
}

/// A decoded request (what a server receives).
#[derive(Clone, PartialEq)]
pub struct Request {
    pub version: Version,
    pub method: String,
    pub params: Vec<Value>,
    pub id: Id,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Params are left out: login calls carry passwords.
        f.debug_struct("Request")
            .field("version", &self.version)
            .field("method", &self.method)
            .field("params", &format_args!("[{} values]", self.params.len()))
            .field("id", &self.id)
            .finish()
    }
}

/// A decoded reply. `id` is `None` when the server sent none or `null`.
#[derive(Clone, PartialEq)]
pub struct Reply<T = Value> {
    pub version: Version,
    pub id: Option<Id>,
    pub outcome: Outcome<T>,
}

impl<T> fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The result is left out: a login reply is a session ref.
        let outcome: &dyn fmt::Debug = match &self.outcome {
            Ok(_) => &"Ok(..)",
            Err(e) => e,
        };
        f.debug_struct("Reply")
            .field("version", &self.version)
            .field("id", &self.id)
            .field("outcome", outcome)
            .finish()
    }
}

/// Either side of an exchange, for tools that do not know what they hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Call(Request),
    Reply(Reply<Value>),
}

/// Decodes a request.
pub fn decode_call(bytes: &[u8], limits: Limits) -> Result<Request, DecodeError> {
    let env = parse_envelope(bytes, limits)?;
    env.into_request()
}

/// Decodes a reply into a generic [`Value`].
pub fn decode_reply(bytes: &[u8], limits: Limits) -> Result<Reply<Value>, DecodeError> {
    let env = parse_envelope(bytes, limits)?;
    env.into_reply()
}

/// Decodes a request or a reply (a request is what has a `method`).
pub fn decode_message(bytes: &[u8], limits: Limits) -> Result<Message, DecodeError> {
    let env = parse_envelope(bytes, limits)?;
    if env.method.is_some() {
        env.into_request().map(Message::Call)
    } else {
        env.into_reply().map(Message::Reply)
    }
}

/// Any JSON document xapi writes (not only RPC envelopes, e.g. `/rrd_updates?json`) straight
/// into `T`, with the same leniency and limits as the RPC decoders: bare `NaN`/`±Infinity`
/// arrive as float sentinels (read them with `model::de::float` or `model::float_sentinel`).
pub fn from_slice_lenient<T: DeserializeOwned>(
    bytes: &[u8],
    limits: Limits,
) -> Result<T, DecodeError> {
    let prepared = prepass::prepare(bytes, limits)?;
    let mut de = serde_json::Deserializer::from_slice(&prepared.bytes);
    T::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| json_error(&e, &prepared))
}

/// Decodes a reply straight into `T` with serde_json, with no `Value` tree in between.
///
/// Non-finite floats: a top-level `f64` result takes `NaN`/`Infinity` as is; float fields
/// inside `T` need `#[serde(deserialize_with = "model::de::float")]`. A `null` result with no
/// error is decoded as `T` from a unit (fits `()`, `Option`, `Value`, `Void`). On a type
/// mismatch the error carries the path (`.result.OpaqueRef:….memory_target`) and byte offset.
pub fn decode_reply_typed<T: DeserializeOwned>(
    bytes: &[u8],
    limits: Limits,
) -> Result<Reply<T>, DecodeError> {
    let prepared = prepass::prepare(bytes, limits)?;
    let mut de = serde_json::Deserializer::from_slice(&prepared.bytes);
    let parsed = TypedSeed::<T>(PhantomData)
        .deserialize(&mut de)
        .and_then(|env| de.end().map(|()| env));
    let env = match parsed {
        Ok(env) => env,
        Err(e) => return Err(typed_error::<T>(e, &prepared)),
    };
    let version = version(env.jsonrpc)?;
    let id = optional_id(env.id)?;
    if let Some(failure) = env.error.map(failure).transpose()?.flatten() {
        return Ok(Reply {
            version,
            id,
            outcome: Err(failure),
        });
    }
    let result = match env.result {
        Some(Some(t)) => t,
        Some(None) => {
            T::deserialize(de::value::UnitDeserializer::<DecodeError>::new()).map_err(|e| {
                DecodeError::new(format!("result is null: {}", e.message)).in_path("result")
            })?
        }
        None => return Err(DecodeError::new("reply has neither result nor error")),
    };
    Ok(Reply {
        version,
        id,
        outcome: Ok(result),
    })
}

/// Runs the typed decode again with path tracking, only to say where it failed.
fn typed_error<T: DeserializeOwned>(
    first: serde_json::Error,
    prepared: &Prepared<'_>,
) -> DecodeError {
    let mut err = json_error(&first, prepared);
    if first.is_data() {
        let mut track = serde_path_to_error::Track::new();
        let mut de = serde_json::Deserializer::from_slice(&prepared.bytes);
        let wrapped = serde_path_to_error::Deserializer::new(&mut de, &mut track);
        // The same input fails again; only the path it leaves behind is wanted.
        let _ = TypedSeed::<T>(PhantomData).deserialize(wrapped);
        let path = track.path();
        if path.iter().next().is_some() {
            err = err.in_path(xo_path(&path));
        }
    }
    err
}

fn xo_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => out.push_str(&format!(".{key}")),
            Segment::Enum { variant } => out.push_str(&format!(".{variant}")),
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

/// serde_json's message without its "at line L column C", and the byte offset instead.
fn json_error(e: &serde_json::Error, prepared: &Prepared<'_>) -> DecodeError {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let mut msg = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    if msg.contains("\\0xo:") {
        // A plain f64 field met a rewritten literal: say so instead of showing the sentinel.
        for lit in ["NaN", "Infinity", "-Infinity"] {
            let hint = format!("float literal {lit} (float fields need model::de::float)");
            msg = msg.replace(&format!("string \"\\0xo:{lit}\""), &hint);
        }
    }
    let mut err = DecodeError::new(msg);
    if e.line() > 0 {
        let at = offset_of(&prepared.bytes, e.line(), e.column());
        err = err.at(prepared.original_offset(at) as u64);
    }
    err
}

/// Byte offset of serde_json's (1-based line, byte column) position.
fn offset_of(bytes: &[u8], line: usize, column: usize) -> usize {
    let start = if line <= 1 {
        0
    } else {
        memchr::memchr_iter(b'\n', bytes)
            .nth(line - 2)
            .map_or(bytes.len(), |p| p + 1)
    };
    (start + column).min(bytes.len())
}

fn parse_envelope(bytes: &[u8], limits: Limits) -> Result<Envelope, DecodeError> {
    let prepared = prepass::prepare(bytes, limits)?;
    let mut de = serde_json::Deserializer::from_slice(&prepared.bytes);
    let env = de::Deserializer::deserialize_map(&mut de, EnvelopeVisitor)
        .and_then(|env| de.end().map(|()| env));
    env.map_err(|e| json_error(&e, &prepared))
}

impl Envelope {
    fn into_request(self) -> Result<Request, DecodeError> {
        let version = version(self.jsonrpc)?;
        let method = match self.method {
            Some(Value::String(m)) => m,
            Some(other) => return Err(wrong("method", "a string", &other)),
            None => return Err(DecodeError::new("request has no method")),
        };
        let params = match self.params {
            None => Vec::new(),
            Some(Value::Array(p)) => p,
            Some(s @ Value::Struct(_)) if version == Version::V2 => vec![s],
            Some(other) => return Err(wrong("params", "an array", &other)),
        };
        let id = optional_id(self.id)?
            .ok_or_else(|| DecodeError::new("request has no id (xapi requires one)"))?;
        Ok(Request {
            version,
            method,
            params,
            id,
        })
    }

    fn into_reply(self) -> Result<Reply<Value>, DecodeError> {
        let version = version(self.jsonrpc)?;
        let id = optional_id(self.id)?;
        let outcome = match (self.error.map(failure).transpose()?.flatten(), self.result) {
            (Some(f), _) => Err(f),
            (None, Some(v)) => Ok(v),
            (None, None) => return Err(DecodeError::new("reply has neither result nor error")),
        };
        Ok(Reply {
            version,
            id,
            outcome,
        })
    }
}

fn wrong(member: &str, expected: &str, found: &Value) -> DecodeError {
    DecodeError::new(format!("expected {expected}, found {}", found.kind())).in_path(member)
}

fn version(jsonrpc: Option<Value>) -> Result<Version, DecodeError> {
    match jsonrpc {
        None | Some(Value::Nil) => Ok(Version::V1),
        Some(Value::String(s)) if s == "2.0" => Ok(Version::V2),
        Some(Value::String(s)) if s == "1.0" => Ok(Version::V1),
        Some(Value::String(s)) => Err(DecodeError::new(format!(
            "unsupported JSON-RPC version {:?}",
            s.chars().take(16).collect::<String>()
        ))
        .in_path("jsonrpc")),
        Some(other) => Err(wrong("jsonrpc", "\"2.0\"", &other)),
    }
}

fn optional_id(id: Option<Value>) -> Result<Option<Id>, DecodeError> {
    match id {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Int(i)) => Ok(Some(Id::Int(i))),
        Some(Value::Int32(i)) => Ok(Some(Id::Int(i.into()))),
        Some(Value::String(s)) => Ok(Some(Id::Str(s))),
        Some(other) => Err(wrong("id", "a string or an int64", &other)),
    }
}

/// `null` → no failure; `[code, params…]` (v1); `{code, message, data}` (v2).
fn failure(error: Value) -> Result<Option<ApiFailure>, DecodeError> {
    let text = |v: Value, path: &str| -> Result<String, DecodeError> {
        match v {
            Value::String(s) => Ok(s),
            Value::Int(i) => Ok(i.to_string()),
            Value::Int32(i) => Ok(i.to_string()),
            Value::Double(f) => Ok(f.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(wrong(path, "a string", &other)),
        }
    };
    match error {
        Value::Nil => Ok(None),
        Value::Array(items) => {
            let description = items
                .into_iter()
                .map(|v| text(v, "error[]"))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(ApiFailure::from_description(description)))
        }
        Value::Struct(mut s) => {
            let code = match s.remove("message") {
                Some(m) => text(m, "error.message")?,
                None => {
                    return Err(DecodeError::new("error object has no message").in_path("error"))
                }
            };
            let params = match s.remove("data") {
                None | Some(Value::Nil) => Vec::new(),
                Some(Value::Array(items)) => items
                    .into_iter()
                    .map(|v| text(v, "error.data[]"))
                    .collect::<Result<Vec<_>, _>>()?,
                Some(other) => vec![text(other, "error.data")?],
            };
            Ok(Some(ApiFailure::new(code, params)))
        }
        Value::String(code) => Ok(Some(ApiFailure::new(code, Vec::new()))),
        other => Err(wrong("error", "null, an array or an object", &other)),
    }
}
