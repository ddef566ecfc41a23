//! Client settings: where the pool is, how to trust it, which wire protocol, timeouts, limits.

use std::time::Duration;

use super::error::{Error, Result};
use super::tls::Tls;
use crate::rpc::Limits;

/// Which RPC protocol to speak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// JSON-RPC v2 (`POST /jsonrpc`), falling back to XML-RPC for good when the host answers
    /// with something other than `application/json` (hosts older than XenServer 7.3).
    #[default]
    Auto,
    XmlRpc,
    JsonRpc,
}

/// Settings for one pool connection. Build with [`ClientConfig::new`] and the `with_*`
/// methods; every field has a sensible default except the URL.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `https://host[:port]` (the scheme defaults to https; any path is ignored).
    pub url: String,
    pub tls: Tls,
    /// Plain `http://` is refused unless this is set.
    pub allow_plain_http: bool,
    pub transport: Transport,
    /// Sent with logins: xapi counts (and caps at 500) sessions per originator.
    pub originator: String,
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
    pub fn new(url: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            tls: Tls::System,
            allow_plain_http: false,
            transport: Transport::Auto,
            originator: "xo-rs".into(),
            connect_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(300),
            event_slack: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(20),
            relogin_retries: 3,
            max_master_hops: 3,
            limits: Limits::default(),
        }
    }

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

    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    pub fn with_originator(mut self, originator: impl Into<String>) -> Self {
        self.originator = originator.into();
        self
    }

    pub fn with_connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    pub fn with_call_timeout(mut self, t: Duration) -> Self {
        self.call_timeout = t;
        self
    }

    pub fn with_probe_timeout(mut self, t: Duration) -> Self {
        self.probe_timeout = t;
        self
    }

    pub fn with_relogin_retries(mut self, n: u32) -> Self {
        self.relogin_retries = n;
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
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
    fn fingerprint_config() {
        assert!(ClientConfig::new("h").with_fingerprint("zz").is_err());
        let fp = "AB".repeat(32);
        assert!(matches!(
            ClientConfig::new("h").with_fingerprint(&fp).unwrap().tls,
            Tls::Pinned(_)
        ));
    }
}
