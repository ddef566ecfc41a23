//! Webhooks as a service: watch a pool and deliver its changes per a spec.
//!
//! ```text
//! XAPI_URL=https://pool-master XAPI_USER=root XAPI_PASSWORD=… XAPI_FINGERPRINT=AB:CD:… \
//!   cargo run -p xo-examples --example webhookd -- --spec hooks.json --state /var/lib/webhookd [--poll SECONDS]
//! ```
//!
//! Without `XAPI_URL` it watches an embedded simulator (handy to try a spec). `http://` URLs are
//! accepted with a warning (the password travels in clear). One line per delivery attempt on
//! stdout. Safe to kill at any moment (even SIGKILL): the queue and the event token live in the
//! state directory, and a restart delivers everything accepted and picks up changes made while
//! it was down (see `xo_core::webhooks::daemon` for what coalescing makes unrecoverable).
//! The spec is an extended spec or an XO web-hooks config; only its `events` subscriptions
//! apply here (call hooks need the process that makes the calls: `webhooks::call_hooks::CallHooks`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use xo_core::client::{Client, ClientConfig};
use xo_core::webhooks::daemon::{self, DaemonOptions};
use xo_core::webhooks::Spec;

fn usage(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    eprintln!("usage: webhookd --spec FILE --state DIR [--poll SECONDS]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let (mut spec, mut state, mut poll) = (None, None, 5.0f64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--spec", Some(v)) => spec = Some(PathBuf::from(v)),
            ("--state", Some(v)) => state = Some(PathBuf::from(v)),
            ("--poll", Some(v)) => match v.parse::<f64>() {
                Ok(p) if p.is_finite() && p > 0.0 && p <= 60.0 => poll = p,
                _ => return usage("--poll expects seconds in (0, 60]"),
            },
            (other, _) => return usage(&format!("unknown or incomplete option {other}")),
        }
    }
    let (Some(spec_path), Some(state)) = (spec, state) else {
        return usage("--spec and --state are required");
    };
    let text = match std::fs::read_to_string(&spec_path) {
        Ok(t) => t,
        Err(e) => return usage(&format!("{}: {e}", spec_path.display())),
    };
    let spec = match Spec::load(&text) {
        Ok(s) => s,
        Err(e) => return usage(&format!("{}: {e}", spec_path.display())),
    };
    let mut opts = DaemonOptions::new(spec, state);
    opts.poll_timeout = poll;
    let stop = Arc::new(AtomicBool::new(false));
    let result = match std::env::var("XAPI_URL") {
        Ok(url) if !url.is_empty() => {
            let user = std::env::var("XAPI_USER").unwrap_or_else(|_| "root".into());
            let password = std::env::var("XAPI_PASSWORD").unwrap_or_default();
            let mut config = ClientConfig::new(url.as_str()).with_originator("webhookd");
            if let Ok(fp) = std::env::var("XAPI_FINGERPRINT") {
                config = match config.with_fingerprint(&fp) {
                    Ok(c) => c,
                    Err(e) => return usage(&format!("XAPI_FINGERPRINT: {e}")),
                };
            }
            if url.starts_with("http://") {
                config = config.with_plain_http(true);
            }
            let client = match Client::connect(config, &user, password) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: connecting to {url}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            println!("watching {url}");
            daemon::run(client, opts, stop)
        }
        _ => {
            let sim = match xo_core::simulator::Simulator::start(Default::default()) {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    eprintln!("error: starting the simulator: {e}");
                    return ExitCode::FAILURE;
                }
            };
            println!("watching the embedded simulator at {}", sim.url());
            match sim.connect() {
                Ok(client) => daemon::run(client, opts, stop),
                Err(e) => {
                    eprintln!("error: simulator login: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    match result {
        Ok(r) => {
            println!(
                "stopped: {} batches, {} changes, {} messages queued",
                r.batches, r.changes, r.queued
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
