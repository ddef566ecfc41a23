//! The seam under [`Client`](super::Client): a [`Transport`] moves one encoded request to a
//! host and brings the reply's bytes back. Encoding, decoding, sessions, retries and failover
//! stay in the client, so every transport behaves the same above this line.
//!
//! Implementations: [`HttpTransport`](super::HttpTransport) (HTTP(S) over ureq, the default),
//! [`UnixTransport`](super::UnixTransport) (dom0's `/var/lib/xcp/xapi`), and, with the
//! `simulator` feature, `simulator::InProcess` (straight into the embedded simulator).

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::error::{snippet, Error, Result, TransportError};
use crate::model::Value;
use crate::rpc::{jsonrpc, xmlrpc, DecodeError, Limits, Outcome, Protocol};

/// Carries one RPC request to a host and returns its reply. Implementations must bound the
/// reply (read at most [`Request::max_reply`] + 1 bytes) and give up at [`Request::timeout`].
pub trait Transport: Send + Sync + fmt::Debug {
    /// Sends `request` and waits for the whole reply.
    fn send(&self, request: &Request<'_>) -> Result<Response, TransportError>;

    /// Whether distinct hosts of a pool can be reached through this transport. The client
    /// follows `HOST_IS_SLAVE` and fails over only when they can (not over a Unix socket).
    fn reaches_other_hosts(&self) -> bool {
        true
    }
}

/// A shared transport (tests keep a handle to inspect or script it).
impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    fn send(&self, request: &Request<'_>) -> Result<Response, TransportError> {
        (**self).send(request)
    }

    fn reaches_other_hosts(&self) -> bool {
        (**self).reaches_other_hosts()
    }
}

/// One encoded call on its way to a host.
#[derive(Debug)]
pub struct Request<'a> {
    /// The host: `https://host[:port]/` (the path is always `/`).
    pub host: &'a url::Url,
    /// Decides the path: `/jsonrpc` for JSON-RPC, `/` for XML-RPC.
    pub protocol: Protocol,
    /// The encoded call.
    pub body: &'a [u8],
    /// Extra headers: xapi's tracing headers (`originator`, `traceparent`).
    pub headers: &'a [(String, String)],
    /// The deadline for the whole exchange.
    pub timeout: Duration,
    /// Largest reply body the client accepts.
    pub max_reply: usize,
}

impl Request<'_> {
    /// The HTTP path for this request's protocol.
    pub fn path(&self) -> &'static str {
        match self.protocol {
            Protocol::XmlRpc => "/",
            Protocol::JsonRpcV1 | Protocol::JsonRpcV2 => "/jsonrpc",
        }
    }

    /// The request's `Content-Type`.
    pub fn content_type(&self) -> &'static str {
        match self.protocol {
            Protocol::XmlRpc => "text/xml",
            Protocol::JsonRpcV1 | Protocol::JsonRpcV2 => "application/json",
        }
    }
}

/// What came back: any HTTP status, with its body (at most `max_reply + 1` bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The reply's `Content-Type`, without parameters, lower case (`""` when absent).
    pub content_type: String,
    /// The reply body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response, normalising the content type (`text/xml; charset=utf-8` → `text/xml`).
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        let bare = content_type.split(';').next().unwrap_or_default().trim();
        Response {
            status,
            content_type: bare.to_ascii_lowercase(),
            body,
        }
    }
}

/// What one exchange produced.
pub(crate) enum Reply<T> {
    /// A well-formed envelope: the value or xapi's refusal.
    Outcome(Outcome<T>),
    /// Asked for JSON-RPC, got something that is not JSON: an old host.
    NotJson,
}

static NEXT_ID: AtomicI64 = AtomicI64::new(1);

/// One call's wire-level inputs, shared by every exchange of that call.
pub(crate) struct Exchange<'a> {
    pub transport: &'a dyn Transport,
    pub headers: &'a [(String, String)],
    pub limits: Limits,
    pub timeout: Duration,
}

impl Exchange<'_> {
    /// Encodes, sends to `host`, and decodes the reply into `T`. With `probing`, a reply that
    /// is not JSON is reported as [`Reply::NotJson`] instead of an error.
    pub(crate) fn run<T: DeserializeOwned>(
        &self,
        host: &url::Url,
        protocol: Protocol,
        probing: bool,
        method: &str,
        params: &[Value],
    ) -> Result<Reply<T>> {
        let response = self.send(host, protocol, method, params)?;
        if probing && response.content_type != "application/json" {
            return Ok(Reply::NotJson);
        }
        self.decode(protocol, method, &response).map(Reply::Outcome)
    }

    /// [`Exchange::run`] without the probe.
    pub(crate) fn outcome<T: DeserializeOwned>(
        &self,
        host: &url::Url,
        protocol: Protocol,
        method: &str,
        params: &[Value],
    ) -> Result<Outcome<T>> {
        let response = self.send(host, protocol, method, params)?;
        self.decode(protocol, method, &response)
    }

    fn send(
        &self,
        host: &url::Url,
        protocol: Protocol,
        method: &str,
        params: &[Value],
    ) -> Result<Response> {
        let body = encode(protocol, method, params);
        let request = Request {
            host,
            protocol,
            body: &body,
            headers: self.headers,
            timeout: self.timeout,
            max_reply: self.limits.max_size,
        };
        self.transport
            .send(&request)
            .map_err(|e| Error::transport(method, e))
    }

    fn decode<T: DeserializeOwned>(
        &self,
        protocol: Protocol,
        method: &str,
        response: &Response,
    ) -> Result<Outcome<T>> {
        if !(200..300).contains(&response.status) {
            return Err(Error::Http {
                method: method.into(),
                status: response.status,
                body_snippet: snippet(&response.body, 300),
            });
        }
        let max = self.limits.max_size;
        if response.body.len() > max {
            let e = DecodeError::new(format!("reply larger than the {max}-byte limit"));
            return Err(Error::protocol(method, e));
        }
        let outcome = match protocol {
            Protocol::XmlRpc => xmlrpc::decode_envelope_typed::<T>(&response.body, self.limits),
            _ => jsonrpc::decode_reply_typed::<T>(&response.body, self.limits).map(|r| r.outcome),
        };
        outcome.map_err(|e| Error::protocol(method, e))
    }
}

fn encode(protocol: Protocol, method: &str, params: &[Value]) -> Vec<u8> {
    match protocol {
        Protocol::XmlRpc => xmlrpc::encode_call(method, params),
        Protocol::JsonRpcV1 | Protocol::JsonRpcV2 => {
            let id = jsonrpc::Id::Int(NEXT_ID.fetch_add(1, Ordering::Relaxed));
            let version = if protocol == Protocol::JsonRpcV1 {
                jsonrpc::Version::V1
            } else {
                jsonrpc::Version::V2
            };
            jsonrpc::encode_call(method, params, &id, version)
        }
    }
}

/// Calls that only read, which are safe to send again after a broken connection.
pub(crate) fn is_read_only(method: &str) -> bool {
    let name = method.strip_prefix("Async.").unwrap_or(method);
    match name.split_once('.') {
        Some((_, m)) => {
            m.starts_with("get_")
                || name == "event.from"
                || name == "system.listMethods"
                || name == "session.login_with_password"
                || name == "session.slave_local_login_with_password"
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_methods() {
        assert!(is_read_only("VM.get_all_records"));
        assert!(is_read_only("pool.get_all"));
        assert!(is_read_only("event.from"));
        assert!(!is_read_only("VM.start"));
        assert!(!is_read_only("VM.set_name_label"));
        assert!(!is_read_only("nonsense"));
    }

    #[test]
    fn content_types_are_normalised() {
        let r = Response::new(200, "Text/XML; charset=utf-8", Vec::new());
        assert_eq!(r.content_type, "text/xml");
        assert_eq!(Response::new(200, "", Vec::new()).content_type, "");
    }
}
