//! A self-signed certificate generated at start (rcgen) and the rustls server config (ring).

use std::net::IpAddr;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::SimError;

pub struct TlsIdentity {
    pub cert_pem: String,
    /// SHA-256 of the DER certificate, `AA:BB:…`.
    pub fingerprint: String,
    pub config: Arc<rustls::ServerConfig>,
}

impl TlsIdentity {
    /// A certificate for `localhost` and every host address.
    pub fn generate(ips: &[IpAddr]) -> Result<TlsIdentity, SimError> {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        names.extend(ips.iter().map(IpAddr::to_string));
        names.sort();
        names.dedup();
        let ck =
            rcgen::generate_simple_self_signed(names).map_err(|e| SimError::Tls(e.to_string()))?;
        let der = ck.cert.der().to_vec();
        let digest = ring::digest::digest(&ring::digest::SHA256, &der);
        let fingerprint = digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SimError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(der)], key)
            .map_err(|e| SimError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsIdentity {
            cert_pem: ck.cert.pem(),
            fingerprint,
            config: Arc::new(config),
        })
    }
}
