//! Sender side of Standard Webhooks v1 (HMAC-SHA256) and GitHub's `X-Hub-Signature-256`.

use super::secret::SigningSecret;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub(crate) fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

pub(crate) fn v1_mac(
    secret: &SigningSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> HmacSha256 {
    let mut m = mac(secret.key());
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// One `v1,<base64>` signature of `msg_id.timestamp.body`.
pub fn sign_v1(secret: &SigningSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = v1_mac(secret, msg_id, timestamp, body)
        .finalize()
        .into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// The `webhook-signature` value: one signature per secret, space separated (rotation).
pub fn signature_header(
    secrets: &[SigningSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let sigs: Vec<String> = secrets
        .iter()
        .map(|s| sign_v1(s, msg_id, timestamp, body))
        .collect();
    sigs.join(" ")
}

/// GitHub style: `sha256=<hex HMAC-SHA256(secret, body)>`, no timestamp.
pub fn github_signature(secret: &SigningSecret, body: &[u8]) -> String {
    let mut m = mac(secret.key());
    m.update(body);
    let tag = m.finalize().into_bytes();
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256=");
    for b in tag {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Every header a signed delivery carries, in sending order.
pub fn signed_headers(
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    secrets: &[SigningSecret],
    github: Option<&SigningSecret>,
) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("webhook-id", msg_id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
    ];
    if !secrets.is_empty() {
        h.push((
            "webhook-signature",
            signature_header(secrets, msg_id, timestamp, body),
        ));
    }
    if let Some(g) = github {
        h.push(("x-hub-signature-256", github_signature(g, body)));
    }
    h
}
