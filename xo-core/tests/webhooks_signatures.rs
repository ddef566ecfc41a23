//! Every vector in tests/fixtures/webhook-vectors against our signer and verifier.

use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use xo_core::webhooks::secret::{SecretError, SigningSecret};
use xo_core::webhooks::sign::{github_signature, sign_v1};
use xo_core::webhooks::verify::{verify_at, verify_github, VerifyError};

fn load(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/webhook-vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[test]
fn standard_webhooks_sign_vectors() {
    let d = load("standard-webhooks-v1.json");
    let vs = d["sign_vectors_upstream"].as_array().unwrap();
    assert!(vs.len() >= 2);
    for v in vs {
        let secret = SigningSecret::parse(s(&v["secret"])).unwrap();
        let sig = sign_v1(
            &secret,
            s(&v["msg_id"]),
            v["timestamp"].as_i64().unwrap(),
            s(&v["payload"]).as_bytes(),
        );
        assert_eq!(sig, s(&v["expected_signature"]), "{}", v["name"]);
        // And the verifier accepts it.
        let ts = v["timestamp"].as_i64().unwrap();
        let h = vec![
            ("webhook-id", s(&v["msg_id"]).to_string()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", sig),
        ];
        verify_at(
            &h,
            s(&v["payload"]).as_bytes(),
            &[secret],
            Duration::from_secs(300),
            ts,
        )
        .unwrap();
    }
}

#[test]
fn secret_parsing_vectors() {
    let d = load("standard-webhooks-v1.json");
    for v in d["secret_parsing_upstream"].as_array().unwrap() {
        let r = SigningSecret::parse(s(&v["secret"]));
        assert_eq!(r.is_ok(), v["valid"].as_bool().unwrap(), "{v}");
        if !v["valid"].as_bool().unwrap() {
            assert_eq!(r.unwrap_err(), SecretError::Empty);
        }
    }
    // The prefix is optional: both spellings are the same key.
    let a = SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let b = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    assert_eq!(a, b);
}

#[test]
fn invalid_signature_strings() {
    let d = load("standard-webhooks-v1.json");
    let basic = &d["sign_vectors_upstream"][0];
    let secret = SigningSecret::parse(s(&basic["secret"])).unwrap();
    let ts = basic["timestamp"].as_i64().unwrap();
    for v in d["invalid_signature_strings_upstream"].as_array().unwrap() {
        let h = vec![
            ("webhook-id", s(&basic["msg_id"]).to_string()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", s(&v["signature"]).to_string()),
        ];
        let r = verify_at(
            &h,
            s(&basic["payload"]).as_bytes(),
            std::slice::from_ref(&secret),
            Duration::from_secs(300),
            ts,
        );
        assert_eq!(r, Err(VerifyError::NoMatchingSignature), "{v}");
    }
}

#[test]
fn derived_verify_cases() {
    let d = load("standard-webhooks-v1.json");
    let block = &d["verify_vectors_derived"];
    let secret = SigningSecret::parse(s(&block["secret"])).unwrap();
    let tol = Duration::from_secs(d["tolerance_seconds"].as_u64().unwrap());
    let cases = block["cases"].as_array().unwrap();
    assert!(cases.len() >= 14);
    for c in cases {
        let headers: HashMap<String, String> = c["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), s(v).to_string()))
            .collect();
        let body = c
            .get("payload_override")
            .map(s)
            .unwrap_or(s(&block["payload"]));
        let r = verify_at(
            &headers,
            body.as_bytes(),
            std::slice::from_ref(&secret),
            tol,
            c["now"].as_i64().unwrap(),
        );
        let name = s(&c["name"]);
        assert_eq!(r.is_ok(), c["valid"].as_bool().unwrap(), "{name}: {r:?}");
        // The typed error matches the case.
        let want = match name {
            "too_old_at_plus_301" => Some(VerifyError::TooOld { age_secs: 301 }),
            "too_new_at_minus_301" => Some(VerifyError::TooNew { ahead_secs: 301 }),
            "missing_webhook_id" => Some(VerifyError::MissingHeader("webhook-id")),
            "missing_webhook_timestamp" => Some(VerifyError::MissingHeader("webhook-timestamp")),
            "missing_webhook_signature" => Some(VerifyError::MissingHeader("webhook-signature")),
            "non_integer_timestamp" => Some(VerifyError::BadTimestamp),
            "tampered_payload"
            | "whitespace_changed_payload"
            | "wrong_msg_id"
            | "multi_signature_none_valid" => Some(VerifyError::NoMatchingSignature),
            _ => None,
        };
        if let Some(w) = want {
            assert_eq!(r, Err(w), "{name}");
        }
    }
}

#[test]
fn github_vectors() {
    let d = load("github-hub-signature-256.json");
    for v in d["vectors"].as_array().unwrap() {
        let secret = SigningSecret::from_bytes(s(&v["secret"]).as_bytes()).unwrap();
        let body = s(&v["payload"]).as_bytes();
        assert_eq!(
            github_signature(&secret, body),
            s(&v["x_hub_signature_256"])
        );
        let h = vec![("X-Hub-Signature-256", s(&v["x_hub_signature_256"]))];
        assert_eq!(
            verify_github(&h, body, std::slice::from_ref(&secret)),
            Ok(())
        );
        assert_eq!(
            verify_github(&h, b"Hello, World?", &[secret]),
            Err(VerifyError::NoMatchingSignature)
        );
    }
}

/// The Stripe-style file is for parsers; we check our HMAC core against its derived values
/// (HMAC-SHA256 over `t.body` with the UTF-8 secret, hex), which exercises the same primitive.
#[test]
fn stripe_style_derived_hmac() {
    let d = load("stripe-style-derived.json");
    let v = &d["vectors"][0];
    let secret = SigningSecret::from_bytes(s(&v["secret"]).as_bytes()).unwrap();
    let signed = format!("{}.{}", v["timestamp"], s(&v["payload"]));
    let want = s(&v["header"]).split("v1=").nth(1).unwrap();
    assert_eq!(
        github_signature(&secret, signed.as_bytes()),
        format!("sha256={want}")
    );
}
