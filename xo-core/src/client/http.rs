//! HTTP(S) over ureq: the default transport, and the agent behind `/export`, `/import` and
//! `/rrd_updates`.

use std::io::Read;

use super::config::ClientConfig;
use super::error::{Error, Result, TransportError};
use super::transport::{Request, Response, Transport};
use crate::rpc::DecodeError;

/// RPC over HTTP(S) with a keep-alive pool, TLS per [`ClientConfig::tls`] (pinning, system
/// roots) and the config's connect timeout.
#[derive(Clone)]
pub struct HttpTransport {
    agent: ureq::Agent,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpTransport")
    }
}

impl HttpTransport {
    /// Builds the agent: keep-alive pool, connect timeout, TLS mode. Does no IO.
    pub fn new(config: &ClientConfig) -> Result<Self> {
        let builder = ureq::AgentBuilder::new()
            .timeout_connect(config.connect_timeout)
            // Streams (export/import) have no overall deadline, but a stalled read or write
            // fails. RPCs set a whole-exchange deadline per request, which overrides these.
            .timeout_read(config.call_timeout)
            .timeout_write(config.call_timeout)
            .user_agent(concat!("xo-rs/", env!("CARGO_PKG_VERSION")))
            // /export and /rrd_updates may 302 to the host holding the data.
            .redirects(3)
            .max_idle_connections_per_host(8);
        let tls = super::tls::rustls_config(&config.tls)?;
        Ok(HttpTransport {
            agent: builder.tls_config(tls).build(),
        })
    }

    pub(crate) fn agent(&self) -> &ureq::Agent {
        &self.agent
    }
}

impl Transport for HttpTransport {
    fn send(&self, request: &Request<'_>) -> Result<Response, TransportError> {
        let url = request
            .host
            .join(request.path())
            .map_err(|e| TransportError::new(super::TransportKind::Other, e.to_string()))?;
        let mut http = self
            .agent
            .request_url("POST", &url)
            .timeout(request.timeout)
            .set("Content-Type", request.content_type());
        for (name, value) in request.headers {
            http = http.set(name, value);
        }
        let response = match http.send_bytes(request.body) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => return Err(TransportError::from_ureq(&t)),
        };
        let (status, content_type) = (response.status(), response.content_type().to_owned());
        let body = read_up_to(response, request.max_reply.saturating_add(1))?;
        Ok(Response::new(status, &content_type, body))
    }
}

/// Reads at most `max` bytes of a body.
fn read_up_to(response: ureq::Response, max: usize) -> Result<Vec<u8>, TransportError> {
    let hint = response
        .header("Content-Length")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(0)
        .min(max)
        .min(64 << 20);
    let mut buf = Vec::with_capacity(hint);
    response
        .into_reader()
        .take(max as u64)
        .read_to_end(&mut buf)
        .map_err(|e| TransportError::from_io(&e))?;
    Ok(buf)
}

/// Reads a response body, refusing more than `max` bytes when `strict` (else truncating).
pub(crate) fn read_limited(
    response: ureq::Response,
    max: usize,
    method: &str,
    strict: bool,
) -> Result<Vec<u8>> {
    let mut buf =
        read_up_to(response, max.saturating_add(1)).map_err(|e| Error::transport(method, e))?;
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
