//! Durable webhook delivery benchmark against a local receiver.
//!
//! ```text
//! cargo run --release -p xo-core --example webhook-bench -- [--messages 5000] [--producers 8]
//!     [--workers 8] [--rate 500] [--seconds 3] [--dir /tmp]
//! ```
//!
//! Phase 1 (throughput): `producers` threads submit `messages` messages one `submit` call each
//! (so durability comes from group commit, every message fsynced in some batch); measures
//! deliveries per second until the receiver has them all.
//! Phase 2 (latency): submits at a steady `rate` per second for `seconds`; reports p50/p99/max
//! from `submit` returning to the receiver reading the request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xo_core::webhooks::engine::{Engine, EngineOptions};
use xo_core::webhooks::spec::Spec;
use xo_core::webhooks::store::{SqliteStore, Store};

struct Args {
    messages: usize,
    producers: usize,
    workers: usize,
    rate: u64,
    seconds: u64,
    dir: std::path::PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        messages: 5000,
        producers: 8,
        workers: 8,
        rate: 500,
        seconds: 3,
        dir: std::env::temp_dir(),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < v.len() {
        let val = &v[i + 1];
        let num = || {
            val.parse::<u64>()
                .unwrap_or_else(|_| panic!("{} expects a number", v[i]))
        };
        match v[i].as_str() {
            "--messages" => a.messages = num() as usize,
            "--producers" => a.producers = num() as usize,
            "--workers" => a.workers = num() as usize,
            "--rate" => a.rate = num().max(1),
            "--seconds" => a.seconds = num(),
            "--dir" => a.dir = val.into(),
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    a
}

type Seen = Arc<Mutex<HashMap<String, Instant>>>;

/// A receiver with several handler threads recording when each webhook-id arrived.
fn receiver(threads: usize) -> (String, Seen) {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
    let port = server.server_addr().to_ip().expect("ip").port();
    let seen: Seen = Arc::default();
    for _ in 0..threads {
        let server = server.clone();
        let seen = seen.clone();
        std::thread::spawn(move || loop {
            let Ok(mut req) = server.recv() else { return };
            let mut body = Vec::new();
            let _ = req.as_reader().read_to_end(&mut body);
            let id = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("webhook-id"))
                .map(|h| h.value.to_string())
                .unwrap_or_default();
            seen.lock().unwrap().entry(id).or_insert_with(Instant::now);
            let _ = req.respond(tiny_http::Response::empty(204));
        });
    }
    (format!("http://127.0.0.1:{port}/bench"), seen)
}

/// User + system CPU time of this process (Linux), to report cost independent of machine load.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10)) // USER_HZ is 100 on Linux
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn wait_all(seen: &Seen, ids: &[(String, Instant)], timeout: Duration) -> Instant {
    let until = Instant::now() + timeout;
    loop {
        {
            let s = seen.lock().unwrap();
            if ids.iter().all(|(id, _)| s.contains_key(id)) {
                return ids
                    .iter()
                    .map(|(id, _)| s[id])
                    .max()
                    .unwrap_or_else(Instant::now);
            }
        }
        assert!(
            Instant::now() < until,
            "deliveries did not finish in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn main() {
    let a = args();
    let (url, seen) = receiver(a.workers.max(4));
    let dir = a
        .dir
        .join(format!("xo-webhook-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("state dir");
    let db = dir.join("queue.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).expect("open store"));
    let spec = Spec::load(&format!(
        r#"{{"version":1,"endpoints":[{{"id":"bench","url":"{url}","maxInFlight":{w},
            "secrets":["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}}]}}"#,
        w = a.workers
    ))
    .expect("spec");
    let http_us = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let h2 = http_us.clone();
    let opts = EngineOptions {
        observer: Some(Arc::new(move |e: &xo_core::webhooks::AttemptEvent| {
            h2.fetch_add(
                e.latency.as_micros() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        })),
        workers: a.workers,
        poll_interval: Duration::from_millis(100),
        ..EngineOptions::default()
    };
    let eng = Arc::new(Engine::start(store, spec, opts).expect("engine"));
    let body = br#"{"type":"vm.mod","timestamp":"2026-01-01T00:00:00Z","data":{"class":"VM","operation":"mod","ref":"OpaqueRef:1","uuid":"u","snapshot":{"power_state":"Running"}}}"#;

    // Phase 1: throughput.
    let cpu0 = cpu_time();
    let start = Instant::now();
    let per = a.messages / a.producers.max(1);
    let handles: Vec<_> = (0..a.producers)
        .map(|_| {
            let eng = eng.clone();
            std::thread::spawn(move || {
                (0..per)
                    .map(|_| {
                        let id = eng.submit("bench", body.to_vec()).expect("submit");
                        (id.to_string(), Instant::now())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: Vec<(String, Instant)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let accepted = start.elapsed();
    let last = wait_all(&seen, &ids, Duration::from_secs(300));
    let total = last - start;
    println!(
        "throughput: {} messages, {} producers, {} workers: accepted (durable) in {:.2} s = {:.0}/s; all delivered in {:.2} s = {:.0} deliveries/s",
        ids.len(),
        a.producers,
        a.workers,
        accepted.as_secs_f64(),
        ids.len() as f64 / accepted.as_secs_f64(),
        total.as_secs_f64(),
        ids.len() as f64 / total.as_secs_f64()
    );

    if let (Some(a0), Some(a1)) = (cpu0, cpu_time()) {
        let cpu = a1.saturating_sub(a0);
        println!(
            "cpu: {:.2} s for {} deliveries = {:.0} us per durable delivery (engine + in-process receiver); mean HTTP attempt {} us",
            cpu.as_secs_f64(),
            ids.len(),
            cpu.as_secs_f64() * 1e6 / ids.len() as f64,
            http_us.load(std::sync::atomic::Ordering::Relaxed) / ids.len() as u64
        );
    }
    // Phase 2: latency at a steady rate.
    let interval = Duration::from_nanos(1_000_000_000 / a.rate);
    let n = (a.rate * a.seconds) as usize;
    let mut ids = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        let due = t0 + interval * i as u32;
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let id = eng.submit("bench", body.to_vec()).expect("submit");
        ids.push((id.to_string(), Instant::now()));
    }
    wait_all(&seen, &ids, Duration::from_secs(120));
    let s = seen.lock().unwrap();
    let mut lat: Vec<Duration> = ids
        .iter()
        .map(|(id, sent)| s[id].saturating_duration_since(*sent))
        .collect();
    lat.sort();
    println!(
        "latency at {}/s for {} s ({} messages), submit returned -> receiver got it: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        a.rate,
        a.seconds,
        n,
        pct(&lat, 0.5).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    drop(s);
    let c = eng.counts().expect("counts");
    println!("store: {c:?}");
    drop(eng);
    let _ = std::fs::remove_dir_all(&dir);
}
