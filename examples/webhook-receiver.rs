//! A webhook receiver that verifies signatures and prints each delivery.
//!
//! ```text
//! cargo run --example webhook-receiver -- --port 8080 --secret whsec_… [--secret whsec_…]
//! ```
//!
//! Without `--secret` it prints deliveries unverified (XO's plugin does not sign). The raw body
//! bytes are verified before any JSON parsing: re-serialised JSON would not match the signature.
//! Deliveries are de-duplicated on `webhook-id` (delivery is at least once).

use std::collections::HashSet;
use std::io::Read;
use xo_core::webhooks::payload::{PoolEvent, XoPayload};
use xo_core::webhooks::verify::{verify, DEFAULT_TOLERANCE};
use xo_core::webhooks::SigningSecret;

fn main() {
    let mut port = 8080u16;
    let mut secrets = Vec::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        match (args[i].as_str(), args.get(i + 1)) {
            ("--port", Some(p)) => port = p.parse().expect("--port expects a number"),
            ("--secret", Some(s)) => match SigningSecret::parse(s) {
                Ok(s) => secrets.push(s),
                Err(e) => {
                    eprintln!("--secret: {e}");
                    std::process::exit(2);
                }
            },
            (other, _) => {
                eprintln!("unknown or incomplete option {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    let server = match tiny_http::Server::http(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "listening on http://127.0.0.1:{port}/ ({} secret(s))",
        secrets.len()
    );
    let mut seen = HashSet::new();
    for mut req in server.incoming_requests() {
        let mut body = Vec::new();
        // Bounded read: 1 MiB is plenty for a webhook.
        if req
            .as_reader()
            .take(1 << 20)
            .read_to_end(&mut body)
            .is_err()
        {
            let _ = req.respond(tiny_http::Response::empty(400));
            continue;
        }
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|h| (h.field.to_string(), h.value.to_string()))
            .collect();
        let id = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("webhook-id"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "-".into());
        if !secrets.is_empty() {
            if let Err(e) = verify(&headers, &body, &secrets, DEFAULT_TOLERANCE) {
                println!("REJECTED {id}: {e}");
                let _ = req.respond(tiny_http::Response::empty(401));
                continue;
            }
        }
        let dup = !seen.insert(id.clone());
        let what = if let Ok(ev) = PoolEvent::parse(&body) {
            format!(
                "{} {} {} changes={}",
                ev.type_,
                ev.data.ref_,
                ev.data.uuid.unwrap_or_default(),
                serde_json::to_string(&ev.data.changes).unwrap_or_default()
            )
        } else if let Ok(p) = XoPayload::parse(&body) {
            format!(
                "xo {:?} {} call {} by {}",
                p.type_,
                p.method,
                p.call_id,
                p.user_name.unwrap_or_default()
            )
        } else {
            String::from_utf8_lossy(&body).chars().take(200).collect()
        };
        println!("{}{} {}", if dup { "DUPLICATE " } else { "" }, id, what);
        let _ = req.respond(tiny_http::Response::empty(204));
    }
}
