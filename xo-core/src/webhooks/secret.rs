//! Signing secrets (`whsec_…`) and message ids (`msg_…`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::fmt;

/// A signing key. Debug and Display never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
}

/// Why a secret string was refused (the secret itself is never included).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret is empty")]
    Empty,
    #[error("secret is not valid base64 after the whsec_ prefix")]
    NotBase64,
    #[error("no random source: {0}")]
    Random(String),
}

impl SigningSecret {
    /// Parses a Standard Webhooks secret: optional `whsec_` prefix, then base64 of the key.
    pub fn parse(text: &str) -> Result<SigningSecret, SecretError> {
        let b64 = text.strip_prefix("whsec_").unwrap_or(text).trim();
        if b64.is_empty() {
            return Err(SecretError::Empty);
        }
        let key = STANDARD.decode(b64).map_err(|_| SecretError::NotBase64)?;
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(SigningSecret { key })
    }

    /// A key from raw bytes, e.g. a GitHub secret (its UTF-8 bytes are the HMAC key).
    pub fn from_bytes(key: impl Into<Vec<u8>>) -> Result<SigningSecret, SecretError> {
        let key = key.into();
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(SigningSecret { key })
    }

    /// A fresh random 32-byte key.
    pub fn generate() -> Result<SigningSecret, SecretError> {
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(SigningSecret { key })
    }

    /// The `whsec_…` form, to hand to a receiver or write back to a spec file.
    pub fn expose_whsec(&self) -> String {
        format!("whsec_{}", STANDARD.encode(&self.key))
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}
impl fmt::Display for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random id: `prefix` + 24 base62 characters (~142 bits). Never contains a `.`, which
/// matters because the id is part of the signed `id.timestamp.body` string.
pub fn random_id(prefix: &str) -> String {
    let mut raw = [0u8; 24];
    if getrandom::fill(&mut raw).is_err() {
        // No OS randomness: fall back to time and a counter, still unique within the process.
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        raw[..8].copy_from_slice(&t.to_le_bytes());
        raw[8..16].copy_from_slice(&n.to_le_bytes());
        raw[16..24].copy_from_slice(&std::process::id().to_le_bytes().repeat(2));
    }
    base62_id(prefix, &raw)
}

/// `prefix` + one base62 character per byte (no `.`, see [`random_id`]).
pub(crate) fn base62_id(prefix: &str, raw: &[u8]) -> String {
    let mut s = String::with_capacity(prefix.len() + raw.len());
    s.push_str(prefix);
    for b in raw {
        // 256 % 62 bias is irrelevant for ids.
        s.push(ALPHABET[(b % 62) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_redact() {
        let s = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let t = SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(s, t);
        assert_eq!(format!("{s:?}"), "SigningSecret(<redacted>)");
        assert_eq!(s.to_string(), "<redacted>");
        assert_eq!(SigningSecret::parse(""), Err(SecretError::Empty));
        assert_eq!(SigningSecret::parse("whsec_"), Err(SecretError::Empty));
        assert_eq!(
            SigningSecret::parse("whsec_!!!"),
            Err(SecretError::NotBase64)
        );
        let g = SigningSecret::generate().unwrap();
        assert_eq!(SigningSecret::parse(&g.expose_whsec()).unwrap(), g);
    }

    #[test]
    fn derived_ids_are_stable_and_shaped_like_random_ones() {
        use crate::webhooks::MessageId;
        let a = MessageId::derived(&["up", "tok1", "0", "VM", "OpaqueRef:1", "mod"]);
        assert_eq!(
            a,
            MessageId::derived(&["up", "tok1", "0", "VM", "OpaqueRef:1", "mod"])
        );
        // Parts are length-prefixed: moving a boundary changes the id.
        assert_ne!(
            a,
            MessageId::derived(&["up", "tok10", "", "VM", "OpaqueRef:1", "mod"])
        );
        assert_ne!(
            a,
            MessageId::derived(&["up", "tok2", "0", "VM", "OpaqueRef:1", "mod"])
        );
        let s = a.as_str();
        assert_eq!(s.len(), 28);
        assert!(s.starts_with("msg_") && s[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn ids_are_distinct_and_dotless() {
        let a = random_id("msg_");
        let b = random_id("msg_");
        assert_ne!(a, b);
        assert_eq!(a.len(), 28);
        assert!(a.starts_with("msg_") && !a.contains('.'));
    }
}
