//! End-to-end webhook latency and throughput: a VM power-state change on the simulator (a call)
//! → `event.from` → change tracker → router → durable queue (fsync) → HTTP POST → receiver.
//!
//! ```text
//! cargo run --release -p xo-examples --example webhook-e2e-bench -- [--vms N] [--http]
//! ```
//!
//! `--http`: the daemon watches through our client over HTTP (JSON-RPC) instead of in-process
//! dispatch. Latency: sequential changes, from the call returning to the receiver reading the
//! request. Throughput: every VM changed at once, from the first call to the last delivery.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use xo_core::model::Value;
use xo_core::simulator::{SimConfig, Simulator};
use xo_core::webhooks::daemon::{self, DaemonOptions};
use xo_core::webhooks::Spec;

type Arrivals = Arc<(Mutex<HashMap<(String, String), Instant>>, Condvar)>;

fn receiver() -> (String, Arrivals) {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
    let port = server.server_addr().to_ip().expect("ip").port();
    let arrivals: Arrivals = Arc::default();
    for _ in 0..8 {
        let (server, arrivals) = (server.clone(), arrivals.clone());
        std::thread::spawn(move || {
            while let Ok(mut req) = server.recv() {
                let mut body = Vec::new();
                let _ = req.as_reader().read_to_end(&mut body);
                let at = Instant::now();
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                    let r = v["data"]["ref"].as_str().unwrap_or("").to_owned();
                    let to = v["data"]["changes"]["power_state"]["to"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned();
                    let (m, cv) = &*arrivals;
                    m.lock().expect("lock").entry((r, to)).or_insert(at);
                    cv.notify_all();
                }
                let _ = req.respond(tiny_http::Response::empty(200));
            }
        });
    }
    (format!("http://127.0.0.1:{port}/hook"), arrivals)
}

fn wait_for(arr: &Arrivals, key: &(String, String)) -> Option<Instant> {
    let (m, cv) = &**arr;
    let mut g = m.lock().ok()?;
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(t) = g.get(key) {
            return Some(*t);
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        g = cv.wait_timeout(g, left).ok()?.0;
    }
}

fn guests(t: &xo_core::client::Client) -> Vec<String> {
    let Ok(recs) = t.call_value("VM.get_all_records", vec![]) else {
        return Vec::new();
    };
    let Some(recs) = recs.as_struct() else {
        return Vec::new();
    };
    recs.0
        .iter()
        .filter(|(_, r)| {
            let f = |k: &str| {
                r.as_struct()
                    .and_then(|s| s.0.iter().find(|(n, _)| n == k).map(|x| x.1.clone()))
            };
            f("is_a_template") == Some(Value::Bool(false))
                && f("is_control_domain") == Some(Value::Bool(false))
                && f("power_state") == Some(Value::String("Halted".into()))
        })
        .map(|(r, _)| r.clone())
        .collect()
}

fn toggle(t: &xo_core::client::Client, vm: &str, up: bool) {
    let v = Value::String(vm.to_owned());
    let r = if up {
        t.call_value("VM.start", vec![v, Value::Bool(false), Value::Bool(false)])
    } else {
        t.call_value("VM.hard_shutdown", vec![v])
    };
    if let Err(e) = r {
        eprintln!("warning: {e}");
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn main() {
    let mut vms = 400usize;
    let mut http = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--vms" => vms = args.next().and_then(|v| v.parse().ok()).unwrap_or(vms),
            "--http" => http = true,
            other => {
                eprintln!("unknown option {other}");
                std::process::exit(2);
            }
        }
    }
    let sim = Arc::new(
        Simulator::start(SimConfig {
            hosts: 1,
            vms,
            ..SimConfig::default()
        })
        .expect("simulator"),
    );
    let t = sim.connect().expect("login");
    let (url, arrivals) = receiver();
    let spec = Spec::load(&format!(
        r#"{{"version":1,"endpoints":[{{"id":"r","url":"{url}","maxInFlight":8}}],
            "events":[{{"endpoints":["r"],"class":"VM","operations":["mod"],
                        "conditions":[{{"field":"power_state"}}]}}]}}"#
    ))
    .expect("spec");
    let dir = std::env::temp_dir().join(format!("xo-e2e-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut opts = DaemonOptions::new(spec, &dir);
    opts.poll_timeout = 5.0;
    opts.log = Arc::new(|_| {});
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let daemon = if http {
        let (user, pass) = sim.credentials();
        let client = xo_core::client::Client::connect(
            xo_core::client::ClientConfig::new(sim.url()).with_plain_http(true),
            &user,
            pass,
        )
        .expect("client");
        std::thread::spawn(move || daemon::run(client, opts, st).map(|_| ()))
    } else {
        let target = sim.connect().expect("login");
        std::thread::spawn(move || daemon::run(target, opts, st).map(|_| ()))
    };
    // Wait for the baseline.
    while !daemon::EventState::open(&dir)
        .and_then(|s| s.token())
        .is_ok_and(|t| t.is_some())
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let guests = guests(&t);
    println!(
        "{} halted guests; watching {}",
        guests.len(),
        if http {
            "over HTTP (client)"
        } else {
            "in-process"
        }
    );

    // Latency: one change at a time.
    let mut lat = Vec::new();
    for round in 0..2 {
        let up = round == 0;
        for vm in &guests {
            toggle(&t, vm, up);
            let t0 = Instant::now();
            let to = if up { "Running" } else { "Halted" };
            match wait_for(&arrivals, &(vm.clone(), to.into())) {
                Some(at) => lat.push(at.saturating_duration_since(t0)),
                None => eprintln!("lost: {vm} -> {to}"),
            }
        }
    }
    lat.sort();
    if !lat.is_empty() {
        println!(
            "latency, {} sequential changes: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            lat.len(),
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&lat, 1.0)
        );
    }

    // Throughput: every guest started back to back, then every guest stopped.
    if let Ok(mut g) = arrivals.0.lock() {
        g.clear();
    }
    let t0 = Instant::now();
    for up in [true, false] {
        for vm in &guests {
            toggle(&t, vm, up);
        }
        // A stop must not coalesce with its start: wait for the starts to be delivered.
        for vm in &guests {
            let to = if up { "Running" } else { "Halted" };
            let _ = wait_for(&arrivals, &(vm.clone(), to.into()));
        }
    }
    let took = t0.elapsed();
    let n = 2 * guests.len();
    println!(
        "throughput: {n} changes delivered in {:.3} s = {:.0} deliveries/s (end to end, fsync per batch)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    stop.store(true, Ordering::SeqCst);
    let _ = daemon.join();
    let _ = std::fs::remove_dir_all(&dir);
}
