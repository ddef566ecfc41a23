//! Writing JSON-RPC as xapi does: bare `NaN`/`Infinity`, full-precision int64, datetimes as
//! their text, base64 as a base64 string.

use std::io::Write as _;

use base64::Engine as _;

use super::{Id, Version};
use crate::model::Value;
use crate::rpc::Outcome;

/// Appends one value as JSON.
pub fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::String(s) => write_str(s, out),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Int32(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Double(f) => write_float(*f, out),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::DateTime(d) => write_str(d.as_str(), out),
        Value::Base64(b) => write_str(&base64::engine::general_purpose::STANDARD.encode(b), out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode_value(v, out);
            }
            out.push(b']');
        }
        Value::Struct(s) => {
            out.push(b'{');
            for (i, (k, v)) in s.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                encode_value(v, out);
            }
            out.push(b'}');
        }
        Value::Nil => out.extend_from_slice(b"null"),
    }
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_float(f: f64, out: &mut Vec<u8>) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        // ryu via serde_json: shortest round-trip form, always with a `.` or exponent.
        let _ = serde_json::to_writer(&mut *out, &f);
    }
}

fn write_id(id: &Id, out: &mut Vec<u8>) {
    match id {
        Id::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Id::Str(s) => write_str(s, out),
    }
}

fn open(version: Version, out: &mut Vec<u8>) {
    out.push(b'{');
    if version == Version::V2 {
        out.extend_from_slice(br#""jsonrpc":"2.0","#);
    }
}

/// A request: `{"jsonrpc":"2.0", "method", "params", "id"}` (no `jsonrpc` key in v1).
pub fn encode_call(method: &str, params: &[Value], id: &Id, version: Version) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + method.len());
    open(version, &mut out);
    out.extend_from_slice(br#""method":"#);
    write_str(method, &mut out);
    out.extend_from_slice(br#","params":["#);
    for (i, v) in params.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        encode_value(v, &mut out);
    }
    out.extend_from_slice(br#"],"id":"#);
    write_id(id, &mut out);
    out.push(b'}');
    out
}

/// A reply as xapi writes it. v1: `{"result", "error": null | [code, params…], "id"}`;
/// v2: `{"jsonrpc":"2.0", "result", "id"}` or `{"jsonrpc":"2.0", "error": {"code": 1,
/// "message": CODE, "data": [params…]}, "id"}`.
pub fn encode_reply(outcome: &Outcome<Value>, id: &Id, version: Version) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    open(version, &mut out);
    match (outcome, version) {
        (Ok(v), Version::V1) => {
            out.extend_from_slice(br#""result":"#);
            encode_value(v, &mut out);
            out.extend_from_slice(br#","error":null"#);
        }
        (Ok(v), Version::V2) => {
            out.extend_from_slice(br#""result":"#);
            encode_value(v, &mut out);
        }
        (Err(f), Version::V1) => {
            out.extend_from_slice(br#""result":null,"error":["#);
            write_str(&f.code, &mut out);
            for p in &f.params {
                out.push(b',');
                write_str(p, &mut out);
            }
            out.push(b']');
        }
        (Err(f), Version::V2) => {
            out.extend_from_slice(br#""error":{"code":1,"message":"#);
            write_str(&f.code, &mut out);
            out.extend_from_slice(br#","data":["#);
            for (i, p) in f.params.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(p, &mut out);
            }
            out.extend_from_slice(b"]}");
        }
    }
    out.extend_from_slice(br#","id":"#);
    write_id(id, &mut out);
    out.push(b'}');
    out
}
