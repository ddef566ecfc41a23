//! Receiver side: check a delivery's signature against the raw body bytes.
//!
//! Always verify the bytes exactly as received: parsing and re-serialising JSON changes them
//! and breaks the signature (the most common receiver bug).

use super::secret::{SecretError, SigningSecret};
use super::sign::{mac, v1_mac};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::Mac;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The reference libraries' tolerance, in both directions.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Signature entries looked at, at most (senders rotate through a handful of secrets).
pub const MAX_SIGNATURES: usize = 32;

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("header {0} is malformed")]
    InvalidHeader(&'static str),
    #[error("webhook-timestamp is not an integer number of seconds")]
    BadTimestamp,
    #[error("timestamp too old ({age_secs} s)")]
    TooOld { age_secs: i64 },
    #[error("timestamp too far in the future ({ahead_secs} s)")]
    TooNew { ahead_secs: i64 },
    #[error("no signature matches")]
    NoMatchingSignature,
    #[error("bad secret: {0}")]
    BadSecret(SecretError),
    #[error("no secret to verify with")]
    NoSecrets,
}

/// Case-insensitive header lookup over whatever map the receiver's HTTP library gives.
pub trait HeaderSource {
    fn header(&self, name: &str) -> Option<&str>;
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}
impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}
impl<V: AsRef<str>> HeaderSource for HashMap<String, V> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}
impl<V: AsRef<str>> HeaderSource for BTreeMap<String, V> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

/// `webhook-*` first, then Svix's branded `svix-*` names.
fn get<'a, H: HeaderSource + ?Sized>(
    h: &'a H,
    name: &'static str,
    alt: &str,
) -> Result<&'a str, VerifyError> {
    h.header(name)
        .or_else(|| h.header(alt))
        .ok_or(VerifyError::MissingHeader(name))
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Verifies a Standard Webhooks delivery against the current time.
pub fn verify<H: HeaderSource + ?Sized>(
    headers: &H,
    raw_body: &[u8],
    secrets: &[SigningSecret],
    tolerance: Duration,
) -> Result<(), VerifyError> {
    verify_at(headers, raw_body, secrets, tolerance, now_unix())
}

/// Like [`verify`] with secrets given as `whsec_…` strings.
pub fn verify_with<H: HeaderSource + ?Sized>(
    headers: &H,
    raw_body: &[u8],
    secrets: &[&str],
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let parsed = secrets
        .iter()
        .map(|s| SigningSecret::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(VerifyError::BadSecret)?;
    verify(headers, raw_body, &parsed, tolerance)
}

/// [`verify`] with an explicit "now" (Unix seconds), for tests and replays.
pub fn verify_at<H: HeaderSource + ?Sized>(
    headers: &H,
    raw_body: &[u8],
    secrets: &[SigningSecret],
    tolerance: Duration,
    now: i64,
) -> Result<(), VerifyError> {
    let id = get(headers, "webhook-id", "svix-id")?;
    let ts_text = get(headers, "webhook-timestamp", "svix-timestamp")?;
    let sigs = get(headers, "webhook-signature", "svix-signature")?;
    if secrets.is_empty() {
        return Err(VerifyError::NoSecrets);
    }
    if id.is_empty() || id.contains('.') {
        return Err(VerifyError::InvalidHeader("webhook-id"));
    }
    let ts: i64 = ts_text
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let tol = tolerance.as_secs() as i64;
    if now.saturating_sub(ts) > tol {
        return Err(VerifyError::TooOld {
            age_secs: now.saturating_sub(ts),
        });
    }
    if ts.saturating_sub(now) > tol {
        return Err(VerifyError::TooNew {
            ahead_secs: ts.saturating_sub(now),
        });
    }
    let mut any_v1 = false;
    // Bounded so a hostile header cannot make us compute thousands of HMACs over the body.
    for entry in sigs
        .split(' ')
        .filter(|e| !e.is_empty())
        .take(MAX_SIGNATURES)
    {
        let Some(("v1", b64)) = entry.split_once(',') else {
            continue; // other versions (v1a, …) are not ours to check
        };
        any_v1 = true;
        let Ok(tag) = STANDARD.decode(b64) else {
            continue;
        };
        for secret in secrets {
            // verify_slice compares in constant time.
            if v1_mac(secret, id, ts, raw_body).verify_slice(&tag).is_ok() {
                return Ok(());
            }
        }
    }
    if !any_v1 && sigs.trim().is_empty() {
        return Err(VerifyError::InvalidHeader("webhook-signature"));
    }
    Err(VerifyError::NoMatchingSignature)
}

/// Verifies GitHub's `X-Hub-Signature-256: sha256=<hex>` (no timestamp, so no replay
/// protection; prefer [`verify`]).
pub fn verify_github<H: HeaderSource + ?Sized>(
    headers: &H,
    raw_body: &[u8],
    secrets: &[SigningSecret],
) -> Result<(), VerifyError> {
    const NAME: &str = "x-hub-signature-256";
    let value = headers
        .header(NAME)
        .ok_or(VerifyError::MissingHeader(NAME))?;
    if secrets.is_empty() {
        return Err(VerifyError::NoSecrets);
    }
    let hex = value
        .trim()
        .strip_prefix("sha256=")
        .ok_or(VerifyError::InvalidHeader(NAME))?;
    let tag = decode_hex(hex).ok_or(VerifyError::InvalidHeader(NAME))?;
    for secret in secrets {
        let mut m = mac(secret.key());
        m.update(raw_body);
        if m.verify_slice(&tag).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatchingSignature)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.len() > 128 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::sign::{github_signature, signature_header};

    #[test]
    fn roundtrip_and_rotation() {
        let a = SigningSecret::generate().unwrap();
        let b = SigningSecret::generate().unwrap();
        let body = br#"{"x":1}"#;
        let sig = signature_header(&[a.clone(), b.clone()], "msg_1", 1000, body);
        let h = vec![
            ("Webhook-Id", "msg_1".to_string()),
            ("webhook-timestamp", "1000".to_string()),
            ("webhook-signature", sig),
        ];
        let tol = DEFAULT_TOLERANCE;
        assert_eq!(
            verify_at(&h, body, std::slice::from_ref(&a), tol, 1000),
            Ok(())
        );
        assert_eq!(
            verify_at(&h, body, std::slice::from_ref(&b), tol, 1000),
            Ok(())
        );
        let c = SigningSecret::generate().unwrap();
        assert_eq!(
            verify_at(&h, body, &[c], tol, 1000),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            verify_at(&h, body, &[], tol, 1000),
            Err(VerifyError::NoSecrets)
        );
        assert_eq!(
            verify_at(&h, body, std::slice::from_ref(&a), tol, 1301),
            Err(VerifyError::TooOld { age_secs: 301 })
        );
        let g = vec![("X-Hub-Signature-256", github_signature(&a, body))];
        assert_eq!(verify_github(&g, body, &[b, a]), Ok(()));
        assert_eq!(
            verify_github(&g, b"other", &[SigningSecret::generate().unwrap()]),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn bad_hex_is_an_error_not_a_panic() {
        let s = SigningSecret::generate().unwrap();
        for v in ["sha256=zz", "sha256=abc", "md5=00", "sha256=é1"] {
            let h = vec![("x-hub-signature-256", v)];
            assert!(matches!(
                verify_github(&h, b"", std::slice::from_ref(&s)),
                Err(VerifyError::InvalidHeader(_))
            ));
        }
    }
}
