//! TLS for talking to xapi: system roots or a given CA by default; SHA-256 certificate pinning
//! for XCP-ng's self-signed certificates; "accept anything" only as a loud opt-in.
//!
//! Pinning accepts exactly one end-entity certificate, whatever its name or chain, but the
//! handshake signatures are still checked with the provider's algorithms, so the peer must hold
//! the certificate's private key.

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use super::error::{Error, Result};

/// How the server's certificate is checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Tls {
    /// The operating system's trusted roots (the default).
    #[default]
    System,
    /// Only the CA certificates in this PEM text.
    CaPem(String),
    /// Exactly the certificate with this SHA-256 fingerprint (trust on first use).
    Pinned(Fingerprint),
    /// Any certificate at all. Anyone on the path can read the password. Warns loudly.
    DangerAcceptInvalidCerts,
}

/// The SHA-256 fingerprint of a DER certificate.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of_der(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }

    /// Parses `AA:BB:…`, `aa-bb-…` or plain hex (case-insensitive), with an optional
    /// `sha256:`/`sha-256:` prefix as `openssl x509 -fingerprint` and xapi print it.
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        let lower = t.to_ascii_lowercase();
        let t = ["sha256:", "sha-256:", "sha256 fingerprint="]
            .iter()
            .find_map(|p| lower.strip_prefix(p))
            .unwrap_or(&lower);
        let hex: String = t
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | ' '))
            .collect();
        let bad = || Error::Config(format!("not a SHA-256 fingerprint: {text:?}"));
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Fingerprint(out))
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Fingerprint::parse(s)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Emits a security warning: through the `log` facade when a logger is installed, else on
/// stderr, so an insecure opt-in is never silent.
pub fn warn(message: &str) {
    if log::max_level() >= log::LevelFilter::Warn {
        log::warn!("{message}");
    } else {
        eprintln!("WARNING: {message}");
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls configuration for a TLS mode.
pub fn rustls_config(tls: &Tls) -> Result<Arc<rustls::ClientConfig>> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS setup: {e}")))?;
    let config = match tls {
        Tls::System => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = rustls_native_certs::load_native_certs()
                .map_err(|e| Error::Config(format!("loading system CA certificates: {e}")))?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                warn("no system CA certificates found: every TLS connection will fail");
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Tls::CaPem(pem) => {
            use rustls::pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| Error::Config(format!("CA PEM: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| Error::Config(format!("CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(Error::Config("CA PEM holds no certificate".into()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Tls::Pinned(fp) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                pin: Some(*fp),
                provider,
            }))
            .with_no_client_auth(),
        Tls::DangerAcceptInvalidCerts => {
            warn("TLS certificate verification is DISABLED: the connection can be intercepted");
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                    pin: None,
                    provider,
                }))
                .with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

/// Accepts the end-entity certificate whose fingerprint is `pin` (any certificate when
/// `None`), and checks handshake signatures as usual.
#[derive(Debug)]
struct PinnedVerifier {
    pin: Option<Fingerprint>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.pin {
            None => Ok(ServerCertVerified::assertion()),
            Some(pin) if Fingerprint::of_der(end_entity) == pin => {
                Ok(ServerCertVerified::assertion())
            }
            Some(_) => Err(rustls::Error::General(
                "certificate fingerprint does not match the pinned one".into(),
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Splits `host`, `host:port`, `[v6]:port` or a URL into a host (no brackets) and a port
/// (443 by default).
pub(crate) fn host_port(address: &str) -> Result<(String, u16)> {
    let with_scheme = if address.contains("://") {
        address.to_owned()
    } else {
        format!("https://{address}")
    };
    let url = url::Url::parse(&with_scheme)
        .map_err(|e| Error::Config(format!("bad address {address:?}: {e}")))?;
    let host = match url.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => return Err(Error::Config(format!("no host in {address:?}"))),
    };
    Ok((host, url.port_or_known_default().unwrap_or(443)))
}

/// Connects to `address` (`host[:port]`, default port 443), completes a TLS handshake
/// without trusting anything, and returns the SHA-256 fingerprint of the certificate the
/// server presented. Show it to the user, have them compare it with the host's console
/// (`openssl x509 -fingerprint -sha256 -in /etc/xensource/xapi-ssl.pem`), then pin it.
pub fn fetch_fingerprint(address: &str, timeout: Duration) -> Result<Fingerprint> {
    let (host, port) = host_port(address)?;
    let io_err = |what: &str, e: std::io::Error| {
        Error::transport(
            "fetch_fingerprint",
            super::error::TransportError::new(
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) {
                    super::error::TransportKind::Timeout
                } else {
                    super::error::TransportKind::Connect
                },
                format!("{what} {host}:{port}: {e}"),
            ),
        )
    };
    let addrs: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| io_err("resolving", e))?
        .collect();
    let mut last = None;
    let mut sock = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                sock = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut sock = match (sock, last) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(io_err("connecting to", e)),
        (None, None) => {
            return Err(io_err(
                "resolving",
                std::io::Error::other("no address found"),
            ));
        }
    };
    sock.set_read_timeout(Some(timeout))
        .map_err(|e| io_err("configuring", e))?;
    sock.set_write_timeout(Some(timeout))
        .map_err(|e| io_err("configuring", e))?;

    let provider = provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
            pin: None,
            provider,
        }))
        .with_no_client_auth();
    let name = ServerName::try_from(host.clone())
        .map_err(|e| Error::Config(format!("bad server name {host:?}: {e}")))?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| Error::Config(format!("TLS setup: {e}")))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .map_err(|e| io_err("TLS handshake with", e))?;
    }
    let cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| io_err("reading", std::io::Error::other("no certificate presented")))?;
    let fp = Fingerprint::of_der(cert);
    // Close politely; errors here do not matter.
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
    let _ = sock.flush();
    let _ = sock.read(&mut [0u8; 0]);
    Ok(fp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn fingerprint_parse_and_print() {
        let fp = Fingerprint::of_der(b"hello");
        let colons = fp.to_string();
        assert_eq!(colons.len(), 32 * 3 - 1);
        assert_eq!(Fingerprint::parse(&colons).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&colons.to_lowercase()).unwrap(), fp);
        let plain: String = colons.chars().filter(|c| *c != ':').collect();
        assert_eq!(Fingerprint::parse(&plain).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&format!("sha256:{plain}")).unwrap(), fp);
        assert_eq!(
            Fingerprint::parse(&format!(" SHA-256:{colons}\n")).unwrap(),
            fp
        );
        // sha256("hello"), computed independently with `printf hello | sha256sum`.
        assert!(plain.eq_ignore_ascii_case(
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        ));
        assert!(Fingerprint::parse("AA:BB").is_err());
        assert!(Fingerprint::parse(&"zz".repeat(32)).is_err());
        assert!(Fingerprint::parse(&"é".repeat(32)).is_err());
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(host_port("h").unwrap(), ("h".into(), 443));
        assert_eq!(host_port("h:8443").unwrap(), ("h".into(), 8443));
        assert_eq!(host_port("[fe80::1]:444").unwrap(), ("fe80::1".into(), 444));
        assert_eq!(host_port("http://h/").unwrap(), ("h".into(), 80));
        assert!(host_port("").is_err());
    }

    /// A one-shot TLS server on 127.0.0.1 that answers every request with "ok".
    pub(crate) fn tls_server(
        names: Vec<String>,
    ) -> (u16, Fingerprint, String, std::thread::JoinHandle<()>) {
        let ck = rcgen::generate_simple_self_signed(names).unwrap();
        let cert_der = ck.cert.der().clone();
        let fp = Fingerprint::of_der(&cert_der);
        let pem = ck.cert.pem();
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert_der], key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            for stream in listener.incoming().take(4) {
                let Ok(mut stream) = stream else { continue };
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                    continue;
                };
                let mut tls = rustls::StreamOwned::new(conn, &mut stream);
                let mut buf = [0u8; 4096];
                // Handshake failures (rejected certificates) just end this connection.
                if let Ok(n) = tls.read(&mut buf) {
                    if n > 0 {
                        let _ = tls.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                        tls.conn.send_close_notify();
                        let _ = tls.flush();
                    }
                }
            }
        });
        (port, fp, pem, handle)
    }

    fn get(tls: &Tls, port: u16) -> std::result::Result<String, String> {
        let agent = ureq::AgentBuilder::new()
            .tls_config(rustls_config(tls).map_err(|e| e.to_string())?)
            .timeout(Duration::from_secs(5))
            .build();
        match agent.get(&format!("https://127.0.0.1:{port}/")).call() {
            Ok(r) => r.into_string().map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn pinning_ca_and_fetch_against_a_local_server() {
        let (port, fp, pem, handle) = tls_server(vec!["127.0.0.1".into(), "localhost".into()]);
        // Trust on first use: the fetched fingerprint is the served certificate's.
        let fetched = fetch_fingerprint(&format!("127.0.0.1:{port}"), Duration::from_secs(5));
        assert_eq!(fetched.unwrap(), fp);
        // Pinned to the right certificate: accepted.
        assert_eq!(get(&Tls::Pinned(fp), port).unwrap(), "ok");
        // Pinned to another certificate: rejected.
        let wrong = Fingerprint::of_der(b"another certificate");
        let err = get(&Tls::Pinned(wrong), port).unwrap_err();
        assert!(err.contains("fingerprint"), "{err}");
        // The self-signed cert given as the CA: accepted (its SANs include 127.0.0.1).
        assert_eq!(get(&Tls::CaPem(pem), port).unwrap(), "ok");
        handle.join().unwrap();
    }

    #[test]
    fn unknown_ca_is_rejected() {
        let (port, _fp, _pem, handle) = tls_server(vec!["127.0.0.1".into()]);
        let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let err = get(&Tls::CaPem(other.cert.pem()), port).unwrap_err();
        assert!(err.to_lowercase().contains("certificate"), "{err}");
        // Drain the server's remaining accepts so the thread ends.
        for _ in 0..3 {
            let _ = fetch_fingerprint(&format!("127.0.0.1:{port}"), Duration::from_secs(5));
        }
        handle.join().unwrap();
    }

    #[test]
    fn bad_ca_pem_is_a_config_error() {
        assert!(matches!(
            rustls_config(&Tls::CaPem("nothing here".into())),
            Err(Error::Config(_))
        ));
    }
}
