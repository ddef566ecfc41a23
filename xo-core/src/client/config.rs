//! Client settings: where the pool is, how to trust it, which wire protocol, timeouts, limits.

use std::sync::Arc;
use std::time::Duration;

use super::error::{Error, Result};
use super::observer::{CallObserver, Observers};
use super::tls::Tls;
use super::transport::Transport;
use crate::rpc::{Limits, Protocol};

/// Settings for one pool connection. Build with [`ClientConfig::new`] and the `with_*`
/// methods; every field has a sensible default except the URL.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `https://host[:port]` (the scheme defaults to https; any path is ignored).
    pub url: String,
    pub tls: Tls,
    /// Plain `http://` is refused unless this is set.
    pub allow_plain_http: bool,
    /// The wire protocol; `None` (the default) speaks JSON-RPC v2 (`POST /jsonrpc`) and falls
    /// back to XML-RPC for good when the host answers with something other than
    /// `application/json` (hosts older than XenServer 7.3).
    pub protocol: Option<Protocol>,
    /// What carries requests; `None` is HTTP(S) ([`HttpTransport`](super::HttpTransport)).
    pub transport: Option<Arc<dyn Transport>>,
    /// Sent with logins and as the `originator` header: xapi counts (and caps at 500)
    /// sessions per originator.
    pub originator: String,
    /// W3C trace context sent as the `traceparent` header; `None` takes the `TRACEPARENT`
    /// environment variable when the client is built, as the official Python module does.
    pub traceparent: Option<String>,
    /// Called before and after every call.
    pub observers: Observers,
    pub connect_timeout: Duration,
    /// Default for a whole call (request, server work, reply).
    pub call_timeout: Duration,
    /// Extra client-side time granted to `event.from` beyond its server-side timeout.
    pub event_slack: Duration,
    /// Time allowed to each pool member when probing for a new master.
    pub probe_timeout: Duration,
    /// How many times a call is retried after logging in again on `SESSION_INVALID`.
    pub relogin_retries: u32,
    /// How many `HOST_IS_SLAVE` redirections a login follows.
    pub max_master_hops: u32,
    /// Size and depth bounds for every reply.
    pub limits: Limits,
}

impl ClientConfig {
    /// Settings for the pool at `url` (`https://` is assumed when no scheme is given).
    pub fn new(url: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            tls: Tls::System,
            allow_plain_http: false,
            protocol: None,
            transport: None,
            originator: "xo-rs".into(),
            traceparent: None,
            observers: Observers::default(),
            connect_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(300),
            event_slack: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(20),
            relogin_retries: 3,
            max_master_hops: 3,
            limits: Limits::default(),
        }
    }

    /// How to trust the server's certificate.
    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// Pins the server certificate's SHA-256 fingerprint (`AA:BB:…` or plain hex).
    pub fn with_fingerprint(mut self, fingerprint: &str) -> Result<Self> {
        self.tls = Tls::Pinned(fingerprint.parse()?);
        Ok(self)
    }

    /// Allows `http://` URLs (credentials then travel in clear; a warning is emitted).
    pub fn with_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// Settings for xapi's Unix socket in dom0 ([`XAPI_SOCKET`](super::XAPI_SOCKET) or
    /// another path). Only that host is reached: `HOST_IS_SLAVE` is reported, not followed.
    pub fn unix(path: impl Into<std::path::PathBuf>) -> Self {
        ClientConfig::new("http://localhost")
            .with_plain_http(true)
            .with_transport(super::UnixTransport::new(path))
    }

    /// Speaks this protocol from the first call (no JSON-RPC probe).
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// Carries requests over `transport` instead of HTTP(S).
    pub fn with_transport(mut self, transport: impl Transport + 'static) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// Names this tool to xapi (session accounting) and in the `originator` header.
    pub fn with_originator(mut self, originator: impl Into<String>) -> Self {
        self.originator = originator.into();
        self
    }

    /// Sends `traceparent` (W3C trace context) with every request.
    pub fn with_traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.traceparent = Some(traceparent.into());
        self
    }

    /// Adds an observer that sees every call before it is sent and after it ends.
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observers.0.push(observer);
        self
    }

    /// Time allowed to open a connection.
    pub fn with_connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Default deadline for a whole call.
    pub fn with_call_timeout(mut self, t: Duration) -> Self {
        self.call_timeout = t;
        self
    }

    /// Time allowed to each member when looking for a new master.
    pub fn with_probe_timeout(mut self, t: Duration) -> Self {
        self.probe_timeout = t;
        self
    }

    /// How many re-logins a call may trigger on `SESSION_INVALID`.
    pub fn with_relogin_retries(mut self, n: u32) -> Self {
        self.relogin_retries = n;
        self
    }

    /// Size and depth bounds for replies.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The headers every request carries: `originator` and, when known, `traceparent`.
    pub(crate) fn trace_headers(&self) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        if !self.originator.is_empty() {
            headers.push(("originator".to_owned(), self.originator.clone()));
        }
        let traceparent = self
            .traceparent
            .clone()
            .or_else(|| std::env::var("TRACEPARENT").ok());
        if let Some(t) = traceparent.filter(|t| is_header_safe(t)) {
            headers.push(("traceparent".to_owned(), t));
        }
        headers.retain(|(_, v)| is_header_safe(v));
        headers
    }

    /// Parses and checks the URL: scheme and authority only.
    pub(crate) fn base_url(&self) -> Result<url::Url> {
        let raw = self.url.trim();
        let with_scheme = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("https://{raw}")
        };
        let mut url = url::Url::parse(&with_scheme)
            .map_err(|e| Error::Config(format!("bad URL {raw:?}: {e}")))?;
        match url.scheme() {
            "https" => {}
            // A custom transport (Unix socket, in-process) never puts them on a network.
            "http" if self.allow_plain_http && self.transport.is_some() => {}
            "http" if self.allow_plain_http => super::tls::warn(
                "plain HTTP: the password and session travel unencrypted (allow_plain_http)",
            ),
            "http" => {
                return Err(Error::Config(
                    "plain http:// URL refused; use https or opt in with with_plain_http(true)"
                        .into(),
                ))
            }
            s => return Err(Error::Config(format!("unsupported URL scheme {s:?}"))),
        }
        if url.host().is_none() {
            return Err(Error::Config(format!("no host in URL {raw:?}")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::Config(
                "put credentials in login, not in the URL".into(),
            ));
        }
        url.set_path("/");
        url.set_query(None);
        url.set_fragment(None);
        Ok(url)
    }
}

/// The URL of another host of the pool, reached with the same scheme and port as `base`.
/// `address` is what xapi reports (`HOST_IS_SLAVE` param, `host.address`): a bare name,
/// IPv4 or IPv6 address, which gets brackets here.
pub(crate) fn sibling_url(base: &url::Url, address: &str) -> Result<url::Url> {
    let address = address.trim();
    if address.is_empty() {
        return Err(Error::Config("empty host address".into()));
    }
    let mut url = base.clone();
    // xapi sends bare addresses; `host:port` and `[v6]:port` (simulators, NAT setups) are
    // accepted too and then override the port.
    let (host, port) = split_port(address);
    let bare = host
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(host);
    let host = match bare.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => format!("[{v6}]"),
        Err(_) => bare.to_owned(),
    };
    url.set_host(Some(&host))
        .map_err(|e| Error::Config(format!("bad host {address:?}: {e}")))?;
    if let Some(port) = port {
        url.set_port(Some(port))
            .map_err(|_| Error::Config(format!("bad port in {address:?}")))?;
    }
    Ok(url)
}

/// Printable ASCII only: a header value must not smuggle a line break.
fn is_header_safe(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// `host:port` / `[v6]:port` → (host, Some(port)); anything else (incl. bare IPv6) unchanged.
fn split_port(address: &str) -> (&str, Option<u16>) {
    if let Some((h, p)) = address.rsplit_once(':') {
        let bracketed = h.starts_with('[') && h.ends_with(']');
        if (bracketed || !h.contains(':')) && !p.is_empty() {
            if let Ok(port) = p.parse() {
                return (h, Some(port));
            }
        }
    }
    (address, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised_and_http_is_opt_in() {
        let c = ClientConfig::new("pool.example:8443/some/path?x=1");
        assert_eq!(c.base_url().unwrap().as_str(), "https://pool.example:8443/");
        let c = ClientConfig::new("http://10.0.0.1");
        assert!(matches!(c.base_url(), Err(Error::Config(_))));
        let c = ClientConfig::new("http://10.0.0.1").with_plain_http(true);
        assert_eq!(c.base_url().unwrap().as_str(), "http://10.0.0.1/");
        assert!(ClientConfig::new("ftp://x").base_url().is_err());
        assert!(ClientConfig::new("https://root:pw@x").base_url().is_err());
    }

    #[test]
    fn sibling_urls_keep_scheme_and_port_and_bracket_ipv6() {
        let base = ClientConfig::new("https://10.0.0.1:8443")
            .base_url()
            .unwrap();
        assert_eq!(
            sibling_url(&base, "10.0.0.2").unwrap().as_str(),
            "https://10.0.0.2:8443/"
        );
        assert_eq!(
            sibling_url(&base, "fd00::2").unwrap().as_str(),
            "https://[fd00::2]:8443/"
        );
        assert_eq!(
            sibling_url(&base, "[fd00::3]").unwrap().as_str(),
            "https://[fd00::3]:8443/"
        );
        assert_eq!(
            sibling_url(&base, "h2.lan").unwrap().as_str(),
            "https://h2.lan:8443/"
        );
        let plain = ClientConfig::new("http://a:80")
            .with_plain_http(true)
            .base_url()
            .unwrap();
        assert_eq!(sibling_url(&plain, "b").unwrap().as_str(), "http://b/");
        assert!(sibling_url(&base, "").is_err());
        assert_eq!(
            sibling_url(&base, "h3:9000").unwrap().as_str(),
            "https://h3:9000/"
        );
        assert_eq!(
            sibling_url(&base, "[fd00::4]:9001").unwrap().as_str(),
            "https://[fd00::4]:9001/"
        );
        assert!(sibling_url(&base, "bad host/x").is_err());
    }

    #[test]
    fn trace_headers_skip_unsafe_values() {
        let c = ClientConfig::new("h")
            .with_originator("tool")
            .with_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        let h = c.trace_headers();
        assert_eq!(h[0], ("originator".into(), "tool".into()));
        assert_eq!(h[1].0, "traceparent");
        let c = ClientConfig::new("h").with_originator("a\r\nX-Evil: 1");
        assert!(c.trace_headers().iter().all(|(n, _)| n != "originator"));
    }

    #[test]
    fn fingerprint_config() {
        assert!(ClientConfig::new("h").with_fingerprint("zz").is_err());
        let fp = "AB".repeat(32);
        assert!(matches!(
            ClientConfig::new("h").with_fingerprint(&fp).unwrap().tls,
            Tls::Pinned(_)
        ));
    }
}
