//! The webhooks part of the tour on its own, against the embedded simulator:
//! `cargo run -p xo-examples --example tour_webhooks`. The main tour calls
//! `xo_core::webhooks::tour::run(&client, &mut std::io::stdout())`.

use std::sync::Arc;
use xo_core::simulator::{SimConfig, Simulator};

fn main() {
    let sim = match Simulator::start(SimConfig {
        hosts: 1,
        vms: 2,
        serve: false,
        ..SimConfig::default()
    }) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let client = match sim.connect() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: login: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = xo_core::webhooks::tour::run(&client, &mut std::io::stdout()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
