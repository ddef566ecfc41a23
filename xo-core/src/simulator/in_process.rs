//! The in-process transport: the real [`Client`](crate::client::Client), the real codecs,
//! and no socket. Requests are encoded, answered by the same code as the HTTP front end, and
//! decoded, so tests see what a host on the network would send, minus the network.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::faults::HttpFault;
use super::rpc_body;
use super::state::Shared;
use crate::client::{Request, Response, Transport, TransportError, TransportKind};
use crate::rpc::Protocol;

/// A [`Transport`] into a running [`Simulator`](super::Simulator). The request's host picks
/// the simulated host (by address), so `HOST_IS_SLAVE` and failover behave as over HTTP.
/// HTTP faults apply (dropped connections, status codes); a reply that comes after the
/// request's deadline is reported as a timeout.
#[derive(Clone)]
pub struct InProcess {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcess")
    }
}

impl InProcess {
    /// The index of the simulated host at `url`'s address.
    fn host_index(&self, url: &url::Url) -> Result<usize, TransportError> {
        let ip: Option<IpAddr> = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(v4.into()),
            Some(url::Host::Ipv6(v6)) => Some(v6.into()),
            _ => None,
        };
        let st = self.shared.lock();
        ip.and_then(|ip| st.hosts.iter().position(|h| h.ip == ip))
            .ok_or_else(|| {
                let host = url.host_str().unwrap_or_default();
                TransportError::new(
                    TransportKind::Connect,
                    format!("no simulated host at {host}"),
                )
            })
    }
}

impl Transport for InProcess {
    fn send(&self, request: &Request<'_>) -> Result<Response, TransportError> {
        let host = self.host_index(request.host)?;
        if self.shared.faults().unreachable.contains(&host) {
            let message = "connection refused (simulated host down)";
            return Err(TransportError::new(TransportKind::Connect, message));
        }
        let fault = self.shared.faults().take_http_fault();
        match fault {
            Some(HttpFault::Drop) => {
                let message = "connection closed without a reply (simulated)";
                return Err(TransportError::new(TransportKind::Io, message));
            }
            Some(HttpFault::Status(s)) => {
                let body = format!("simulated HTTP {s}\n").into_bytes();
                return Ok(Response::new(s, "text/plain", body));
            }
            None => {}
        }
        let json = request.protocol != Protocol::XmlRpc;
        let latency = self.shared.faults().latency;
        if latency > request.timeout {
            // The server still runs the call; the client stops waiting at its deadline.
            let (shared, body) = (self.shared.clone(), request.body.to_vec());
            std::thread::spawn(move || rpc_body::answer(&shared, host, json, &body));
            std::thread::sleep(request.timeout);
            return Err(timed_out());
        }
        let started = Instant::now();
        let answer = rpc_body::answer(&self.shared, host, json, request.body);
        if started.elapsed() > request.timeout {
            return Err(timed_out());
        }
        Ok(Response::new(
            answer.status,
            answer.content_type,
            answer.body,
        ))
    }
}

fn timed_out() -> TransportError {
    TransportError::new(TransportKind::Timeout, "no reply before the deadline")
}
