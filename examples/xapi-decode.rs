//! Decodes XAPI documents and prints one typed JSON line per file.
//!
//! `cargo run --release --example xapi-decode -- FILE...`
//!
//! Detects XML-RPC (`methodCall` / `methodResponse`) and JSON-RPC (request or reply) and
//! prints `{"file": F, "ok": true, "kind": …, …}` or `{"file": F, "ok": false, "error": …}`.
//! The fields and the typed value form are described in `xo_core::rpc::typed_json`.
//! Exits 0 only when every file decoded.

use std::process::ExitCode;

use xo_core::rpc::xmlrpc::{self, Document, Response};
use xo_core::rpc::{typed_json, DecodeError, Limits};

fn describe(bytes: &[u8]) -> Result<String, DecodeError> {
    let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'<') => Ok(match xmlrpc::decode_document(bytes, Limits::default())? {
            Document::Call(call) => {
                typed_json::call_fields("methodCall", &call.method, &call.params)
            }
            Document::Response(Response::Params(params)) => {
                typed_json::response_fields("methodResponse", &params)
            }
            Document::Response(Response::Fault { code, message }) => {
                typed_json::fault_fields(code, &message)
            }
        }),
        Some(b'{') => typed_json::describe_jsonrpc(bytes, Limits::default()),
        _ => Err(DecodeError::new(
            "neither XML-RPC nor JSON-RPC (expected '<' or '{')",
        )),
    }
}

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: xapi-decode FILE...");
        return ExitCode::from(2);
    }
    let mut all_ok = true;
    for file in &files {
        let mut line = String::from("{\"file\":");
        typed_json::write_str(file, &mut line);
        let result = std::fs::read(file)
            .map_err(|e| DecodeError::new(format!("cannot read: {e}")))
            .and_then(|bytes| describe(&bytes));
        match result {
            Ok(fields) => {
                line.push_str(",\"ok\":true,");
                line.push_str(&fields);
            }
            Err(e) => {
                all_ok = false;
                line.push_str(",\"ok\":false,\"error\":");
                typed_json::write_str(&e.to_string(), &mut line);
            }
        }
        line.push('}');
        println!("{line}");
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
