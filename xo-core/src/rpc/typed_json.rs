//! A typed JSON rendering of decoded documents, for tools and cross-checks (the
//! `xapi-decode` example): every value says what it is, so nothing is lost to JSON's types.
//!
//! `{"string": s}`, `{"int": "decimal"}`, `{"double": n}` (non-finite as `"nan"`, `"inf"`,
//! `"-inf"`), `{"boolean": b}`, `{"dateTime": "text as received"}`, `{"base64": "hex"}`,
//! `{"nil": null}`, `{"array": [...]}`, `{"struct": {...}}` (members in wire order).
//!
//! Document fields (what goes after `"ok": true` in a line):
//! - call: `"kind": "methodCall"|"jsonrpc", "methodName": m, "params": [...]`
//! - reply: `"kind": "methodResponse"|"jsonrpc", "params": [result]`
//! - XML-RPC fault: `"kind": "fault", "fault": {"faultCode": n, "faultString": s}`
//! - JSON-RPC error: `"kind": "jsonrpc", "error": {"code": CODE, "params": [p…]}`

use std::fmt::Write as _;

use crate::model::{ApiFailure, Value};
use crate::rpc::jsonrpc::{self, Message};
use crate::rpc::{DecodeError, Limits};

/// Appends `s` as a JSON string.
pub fn write_str(s: &str, out: &mut String) {
    // serde_json's escaping; writing a str into a String cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// Appends one value in typed form.
pub fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str("{\"string\":");
            write_str(s, out);
        }
        // Both int kinds print as `int`, as `<int>`, `<i4>` and `<i8>` do once decoded.
        Value::Int(i) => {
            let _ = write!(out, "{{\"int\":\"{i}\"");
        }
        Value::Int32(i) => {
            let _ = write!(out, "{{\"int\":\"{i}\"");
        }
        Value::Double(f) => {
            out.push_str("{\"double\":");
            if f.is_nan() {
                out.push_str("\"nan\"");
            } else if f.is_infinite() {
                out.push_str(if *f > 0.0 { "\"inf\"" } else { "\"-inf\"" });
            } else {
                out.push_str(&serde_json::to_string(f).unwrap_or_default());
            }
        }
        Value::Bool(b) => {
            let _ = write!(out, "{{\"boolean\":{b}");
        }
        Value::DateTime(d) => {
            out.push_str("{\"dateTime\":");
            write_str(d.as_str(), out);
        }
        Value::Base64(bytes) => {
            out.push_str("{\"base64\":\"");
            for b in bytes {
                let _ = write!(out, "{b:02x}");
            }
            out.push('"');
        }
        Value::Array(items) => {
            out.push_str("{\"array\":");
            write_list(items, out);
        }
        Value::Struct(s) => {
            out.push_str("{\"struct\":{");
            for (i, (k, v)) in s.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write_value(v, out);
            }
            out.push('}');
        }
        Value::Nil => out.push_str("{\"nil\":null"),
    }
    out.push('}');
}

/// Appends `[v, …]` in typed form.
pub fn write_list(items: &[Value], out: &mut String) {
    out.push('[');
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_value(v, out);
    }
    out.push(']');
}

/// Fields for a method call.
pub fn call_fields(kind: &str, method: &str, params: &[Value]) -> String {
    let mut out = String::new();
    let _ = write!(out, "\"kind\":\"{kind}\",\"methodName\":");
    write_str(method, &mut out);
    out.push_str(",\"params\":");
    write_list(params, &mut out);
    out
}

/// Fields for a successful reply.
pub fn response_fields(kind: &str, params: &[Value]) -> String {
    let mut out = format!("\"kind\":\"{kind}\",\"params\":");
    write_list(params, &mut out);
    out
}

/// Fields for an XML-RPC `<fault>`.
pub fn fault_fields(code: i64, message: &str) -> String {
    let mut out = format!("\"kind\":\"fault\",\"fault\":{{\"faultCode\":{code},\"faultString\":");
    write_str(message, &mut out);
    out.push('}');
    out
}

/// Fields for a JSON-RPC error reply.
pub fn api_failure_fields(f: &ApiFailure) -> String {
    let mut out = String::from("\"kind\":\"jsonrpc\",\"error\":{\"code\":");
    write_str(&f.code, &mut out);
    out.push_str(",\"params\":[");
    for (i, p) in f.params.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(p, &mut out);
    }
    out.push_str("]}");
    out
}

/// Decodes a JSON-RPC request or reply and renders its fields.
pub fn describe_jsonrpc(bytes: &[u8], limits: Limits) -> Result<String, DecodeError> {
    Ok(match jsonrpc::decode_message(bytes, limits)? {
        Message::Call(r) => call_fields("jsonrpc", &r.method, &r.params),
        Message::Reply(r) => match r.outcome {
            Ok(v) => response_fields("jsonrpc", std::slice::from_ref(&v)),
            Err(f) => api_failure_fields(&f),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DateTime, Struct};

    #[test]
    fn typed_forms() {
        let v = Value::Array(vec![
            Value::Int(i64::MIN),
            Value::Double(f64::NEG_INFINITY),
            Value::Double(0.5),
            Value::Base64(vec![0, 255]),
            Value::DateTime(DateTime::parse("20240101T00:00:00").unwrap()),
            Value::Struct(Struct(vec![
                ("b".into(), Value::Nil),
                ("a".into(), Value::Bool(false)),
            ])),
            Value::String("q\"".into()),
        ]);
        let mut out = String::new();
        write_value(&v, &mut out);
        assert_eq!(
            out,
            r#"{"array":[{"int":"-9223372036854775808"},{"double":"-inf"},{"double":0.5},{"base64":"00ff"},{"dateTime":"20240101T00:00:00"},{"struct":{"b":{"nil":null},"a":{"boolean":false}}},{"string":"q\""}]}"#
        );
        // The rendering is valid JSON.
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
    }
}
