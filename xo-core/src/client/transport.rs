//! One RPC over HTTP: encode with the right codec, POST, bound the reply, decode typed.
//! No session logic here; see `session.rs` and `mod.rs`.

use std::io::Read;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::config::ClientConfig;
use super::error::{snippet, Error, Result, TransportError};
use crate::model::Value;
use crate::rpc::{jsonrpc, xmlrpc, DecodeError, Limits, Outcome, Protocol};

/// What came back from one POST.
pub(crate) enum Reply<T> {
    /// A well-formed envelope: the value or xapi's refusal.
    Outcome(Outcome<T>),
    /// Asked for JSON-RPC, got something that is not JSON: an old host.
    NotJson,
}

/// Builds the HTTP agent: keep-alive pool, connect timeout, TLS mode.
pub(crate) fn agent(config: &ClientConfig) -> Result<ureq::Agent> {
    let builder = ureq::AgentBuilder::new()
        .timeout_connect(config.connect_timeout)
        // Streams (export/import) have no overall deadline, but a stalled read or write fails.
        // RPCs set a whole-exchange deadline per request, which overrides these.
        .timeout_read(config.call_timeout)
        .timeout_write(config.call_timeout)
        .user_agent(concat!("xo-rs/", env!("CARGO_PKG_VERSION")))
        // /export and /rrd_updates may 302 to the host holding the data.
        .redirects(3)
        .max_idle_connections_per_host(8);
    let tls = super::tls::rustls_config(&config.tls)?;
    Ok(builder.tls_config(tls).build())
}

static NEXT_ID: AtomicI64 = AtomicI64::new(1);

/// Sends one call and decodes the reply into `T`.
#[allow(clippy::too_many_arguments)] // one flat call path; a struct would only rename them
pub(crate) fn rpc<T: DeserializeOwned>(
    agent: &ureq::Agent,
    base: &url::Url,
    protocol: Protocol,
    probing: bool,
    method: &str,
    params: &[Value],
    timeout: Duration,
    limits: Limits,
) -> Result<Reply<T>> {
    let (path, content_type, body) = match protocol {
        Protocol::XmlRpc => ("", "text/xml", xmlrpc::encode_call(method, params)),
        Protocol::JsonRpcV1 | Protocol::JsonRpcV2 => {
            let id = jsonrpc::Id::Int(NEXT_ID.fetch_add(1, Ordering::Relaxed));
            let version = if protocol == Protocol::JsonRpcV1 {
                jsonrpc::Version::V1
            } else {
                jsonrpc::Version::V2
            };
            (
                "jsonrpc",
                "application/json",
                jsonrpc::encode_call(method, params, &id, version),
            )
        }
    };
    let url = base
        .join(path)
        .map_err(|e| Error::Config(format!("bad URL: {e}")))?;
    let result = agent
        .request_url("POST", &url)
        .timeout(timeout)
        .set("Content-Type", content_type)
        .send_bytes(&body);
    let is_json = |ct: &str| ct.eq_ignore_ascii_case("application/json");
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(status, r)) => {
            if probing && !is_json(r.content_type()) {
                return Ok(Reply::NotJson);
            }
            let body = read_limited(r, 4096, method, false).unwrap_or_default();
            return Err(Error::Http {
                method: method.into(),
                status,
                body_snippet: snippet(&body, 300),
            });
        }
        Err(ureq::Error::Transport(t)) => {
            return Err(Error::transport(method, TransportError::from_ureq(&t)));
        }
    };
    if probing && !is_json(response.content_type()) {
        return Ok(Reply::NotJson);
    }
    let bytes = read_limited(response, limits.max_size, method, true)?;
    let outcome = match protocol {
        Protocol::XmlRpc => xmlrpc::decode_envelope_typed::<T>(&bytes, limits),
        _ => jsonrpc::decode_reply_typed::<T>(&bytes, limits).map(|r| r.outcome),
    };
    outcome
        .map(Reply::Outcome)
        .map_err(|e| Error::protocol(method, e))
}

/// Reads a response body, refusing more than `max` bytes when `strict` (else truncating).
pub(crate) fn read_limited(
    response: ureq::Response,
    max: usize,
    method: &str,
    strict: bool,
) -> Result<Vec<u8>> {
    let hint = response
        .header("Content-Length")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(0)
        .min(max)
        .min(64 << 20);
    let mut buf = Vec::with_capacity(hint);
    let limit = (max as u64).saturating_add(1);
    response
        .into_reader()
        .take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| io_error(method, e))?;
    if buf.len() > max {
        if strict {
            return Err(Error::protocol(
                method,
                DecodeError::new(format!("reply larger than the {max}-byte limit")),
            ));
        }
        buf.truncate(max);
    }
    Ok(buf)
}

/// An I/O error while reading a body, classified like ureq's transport errors.
pub(crate) fn io_error(method: &str, e: std::io::Error) -> Error {
    use super::error::TransportKind as K;
    let kind = match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => K::Timeout,
        _ => K::Io,
    };
    Error::transport(method, TransportError::new(kind, e.to_string()))
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
    use super::is_read_only;

    #[test]
    fn read_only_methods() {
        assert!(is_read_only("VM.get_all_records"));
        assert!(is_read_only("pool.get_all"));
        assert!(is_read_only("event.from"));
        assert!(!is_read_only("VM.start"));
        assert!(!is_read_only("VM.set_name_label"));
        assert!(!is_read_only("nonsense"));
    }
}
