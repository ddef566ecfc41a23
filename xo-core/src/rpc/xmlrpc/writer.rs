//! Encoding, byte for byte as xapi writes (rpclib `xmlrpc.ml`, non-strict): untagged strings
//! and int64s, `<i4>` for int32s, `<boolean>1</boolean>`, no pretty-printing.

use std::io::Write as _;

use base64::Engine as _;

use crate::model::Value;
use crate::rpc::Outcome;

const DECL: &[u8] = b"<?xml version=\"1.0\"?>";

/// Escapes `< > & "` and drops control characters other than TAB, LF and CR, which XML 1.0
/// cannot carry.
pub(crate) fn escape(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep: &[u8] = match b {
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'&' => b"&amp;",
            b'"' => b"&quot;",
            b'\t' | b'\n' | b'\r' => continue,
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        out.extend_from_slice(rep);
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
}

/// Shortest text that reads back to the same double; exponent form only where the plain
/// form would be long. Non-finite values as OCaml prints them.
fn write_double(f: f64, out: &mut Vec<u8>) {
    if f.is_nan() {
        out.extend_from_slice(b"nan");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"inf" } else { b"-inf" });
    } else if f != 0.0 && (f.abs() >= 1e16 || f.abs() < 1e-5) {
        let _ = write!(out, "{f:e}");
    } else {
        let _ = write!(out, "{f}");
    }
}

/// Writes `<value>…</value>`.
pub fn encode_value(value: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(b"<value>");
    match value {
        Value::String(s) => escape(s, out),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Int32(i) => {
            let _ = write!(out, "<i4>{i}</i4>");
        }
        Value::Bool(b) => out.extend_from_slice(if *b {
            b"<boolean>1</boolean>"
        } else {
            b"<boolean>0</boolean>"
        }),
        Value::Double(f) => {
            out.extend_from_slice(b"<double>");
            write_double(*f, out);
            out.extend_from_slice(b"</double>");
        }
        Value::DateTime(d) => {
            out.extend_from_slice(b"<dateTime.iso8601>");
            escape(d.as_str(), out);
            out.extend_from_slice(b"</dateTime.iso8601>");
        }
        Value::Base64(b) => {
            out.extend_from_slice(b"<base64>");
            out.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(b)
                    .as_bytes(),
            );
            out.extend_from_slice(b"</base64>");
        }
        Value::Array(items) => {
            out.extend_from_slice(b"<array><data>");
            for v in items {
                encode_value(v, out);
            }
            out.extend_from_slice(b"</data></array>");
        }
        Value::Struct(s) => encode_struct(s.iter(), out),
        Value::Nil => out.extend_from_slice(b"<nil/>"),
    }
    out.extend_from_slice(b"</value>");
}

fn encode_struct<'v>(members: impl Iterator<Item = (&'v str, &'v Value)>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"<struct>");
    for (name, v) in members {
        out.extend_from_slice(b"<member><name>");
        escape(name, out);
        out.extend_from_slice(b"</name>");
        encode_value(v, out);
        out.extend_from_slice(b"</member>");
    }
    out.extend_from_slice(b"</struct>");
}

/// `<methodCall>` with the params in order.
pub fn encode_call(method: &str, params: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + params.len() * 64);
    out.extend_from_slice(DECL);
    out.extend_from_slice(b"<methodCall><methodName>");
    escape(method, &mut out);
    out.extend_from_slice(b"</methodName><params>");
    for p in params {
        out.extend_from_slice(b"<param>");
        encode_value(p, &mut out);
        out.extend_from_slice(b"</param>");
    }
    out.extend_from_slice(b"</params></methodCall>");
    out
}

/// `<methodResponse>` with one param.
pub fn encode_response(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(DECL);
    out.extend_from_slice(b"<methodResponse><params><param>");
    encode_value(value, &mut out);
    out.extend_from_slice(b"</param></params></methodResponse>");
    out
}

/// The xapi envelope: `{Status: Success, Value}` or `{Status: Failure, ErrorDescription}`.
pub fn encode_envelope(outcome: &Outcome<Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(DECL);
    out.extend_from_slice(b"<methodResponse><params><param><value>");
    match outcome {
        Ok(v) => {
            let status = Value::String("Success".into());
            encode_struct([("Status", &status), ("Value", v)].into_iter(), &mut out);
        }
        Err(f) => {
            let status = Value::String("Failure".into());
            let desc = Value::Array(f.to_description().into_iter().map(Value::String).collect());
            encode_struct(
                [("Status", &status), ("ErrorDescription", &desc)].into_iter(),
                &mut out,
            );
        }
    }
    out.extend_from_slice(b"</value></param></params></methodResponse>");
    out
}

/// A standard XML-RPC fault (xapi itself never sends one for API errors).
pub fn encode_fault(code: i64, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + message.len());
    out.extend_from_slice(DECL);
    out.extend_from_slice(
        b"<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>",
    );
    let _ = write!(out, "{code}");
    out.extend_from_slice(b"</int></value></member><member><name>faultString</name><value>");
    escape(message, &mut out);
    out.extend_from_slice(b"</value></member></struct></value></fault></methodResponse>");
    out
}
