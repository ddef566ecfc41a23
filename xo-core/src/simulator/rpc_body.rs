//! One RPC body in, one reply body out: what the HTTP front end and the in-process transport
//! share, so both answer byte for byte alike (xapi's `Api_server` callbacks).

use std::sync::Arc;

use super::dispatch;
use super::state::Shared;
use super::wire::{jsonrpc, xmlrpc};
use crate::rpc::Limits;

/// A reply to one RPC request.
pub(super) struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Refused with `HOST_IS_SLAVE` (the HTTP layer then may add the thumbprint header).
    pub slave: bool,
}

/// Decodes `body` (JSON-RPC when `json`, else XML-RPC), runs the call on `host`, encodes the
/// outcome. Blocks for as long as the call does (`event.from` long-polls).
pub(super) fn answer(shared: &Arc<Shared>, host: usize, json: bool, body: &[u8]) -> Answer {
    if json && !shared.faults().xml_rpc_only {
        let req = match jsonrpc::decode_call(body, Limits::default()) {
            Ok(r) => r,
            Err(e) => return error_page(&format!("Jsonrpc.Malformed_method_request({e})")),
        };
        let outcome = dispatch::call(shared, host, &req.method, req.params);
        Answer {
            status: 200,
            content_type: "application/json",
            slave: is_slave(&outcome),
            body: jsonrpc::encode_reply(&outcome, &req.id, req.version),
        }
    } else {
        let call = match xmlrpc::decode_call(body, Limits::default()) {
            Ok(c) => c,
            Err(e) => return error_page(&format!("Xmlrpc.Parse_error({e})")),
        };
        let outcome = dispatch::call(shared, host, &call.method, call.params);
        Answer {
            status: 200,
            content_type: "text/xml",
            slave: is_slave(&outcome),
            body: xmlrpc::encode_envelope(&outcome),
        }
    }
}

fn is_slave(outcome: &crate::rpc::Outcome) -> bool {
    matches!(outcome, Err(f) if f.code == "HOST_IS_SLAVE")
}

fn error_page(detail: &str) -> Answer {
    Answer {
        status: 500,
        content_type: "text/html",
        body: internal_error_page(detail).into_bytes(),
        slave: false,
    }
}

/// xapi's HTML page for requests it cannot parse (HTTP 500).
pub(super) fn internal_error_page(detail: &str) -> String {
    let detail = detail
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; please wait a while and try again. If the problem persists, please contact your support representative.<h1> Additional information </h1>{detail}</body></html>"
    )
}
