//! Events benchmark: how fast xo-core's watcher + cache absorb changes, and the lag from a
//! change on the server to the cache seeing it, next to XO's `xen-api` (Node) keeping the same
//! cache on the same simulator in the same run.
//!
//! ```text
//! cargo run --release --example simulator -- --vms 3000          # prints URL and credentials
//! cargo run --release --example events-bench -- URL USER PASSWORD \
//!     [--node bench/events/xo-cache.mjs] [--debounce MS] [--samples 200] [--burst 3000]
//! ```
//!
//! Lag: `samples` single changes (`VM.set_name_description`, 50 ms apart); lag = time the
//! cache holds the change − time the call was sent. Burst: one change per VM from 4 threads as
//! fast as the server takes them; absorbed rate = changes / (last one cached − burst start).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xo_core::client::{Client, ClientConfig};
use xo_core::events::{cache, WatchConfig, WatchEvent, Watcher};
use xo_core::model::Value;

const CLASSES: [&str; 11] = [
    "pool",
    "host",
    "VM",
    "VM_metrics",
    "VM_guest_metrics",
    "VIF",
    "network",
    "PIF",
    "VBD",
    "VDI",
    "SR",
];

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

enum Msg {
    Ready { ms: u128, objects: usize },
    Seen { seq: u64, at_us: u64 },
}

fn epoch_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Arrivals per peer, filled from its channel.
#[derive(Default)]
struct Peer {
    ready: Option<(u128, usize)>,
    seen: HashMap<u64, u64>,
}

fn collect(rx: Receiver<Msg>) -> Arc<Mutex<Peer>> {
    let peer = Arc::new(Mutex::new(Peer::default()));
    let p = peer.clone();
    std::thread::spawn(move || {
        for m in rx {
            let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
            match m {
                Msg::Ready { ms, objects } => p.ready = Some((ms, objects)),
                Msg::Seen { seq, at_us } => {
                    p.seen.entry(seq).or_insert(at_us);
                }
            }
        }
    });
    peer
}

fn bench_seq(snapshot: Option<&xo_core::events::Record>) -> Option<u64> {
    snapshot?
        .get::<xo_core::model::Vm>()?
        .name_description
        .strip_prefix("bench ")?
        .parse()
        .ok()
}

/// xo-core: a watcher feeding a cache writer; a change counts as seen once its batch is applied.
fn rust_peer(client: Client, tx: Sender<Msg>) {
    std::thread::spawn(move || {
        let (mut writer, reader) = cache();
        let t0 = Instant::now();
        let mut pending = Vec::new();
        for item in Watcher::new(client, WatchConfig::new(CLASSES).poll_timeout(30.0)) {
            let ev = match item {
                Ok(ev) => ev,
                Err(e) => {
                    eprintln!("xo-core watcher: {e}");
                    continue;
                }
            };
            if let WatchEvent::Event(e) = &ev {
                if e.class == "VM" {
                    pending.extend(bench_seq(e.snapshot.as_ref()));
                }
            }
            let (done, listed) = (
                matches!(ev, WatchEvent::Bookmark { .. }),
                matches!(ev, WatchEvent::InitDone { .. }),
            );
            writer.apply(ev);
            if listed {
                let o = reader.read();
                let objects = CLASSES.iter().map(|c| o.len(c)).sum();
                let _ = tx.send(Msg::Ready {
                    ms: t0.elapsed().as_millis(),
                    objects,
                });
            }
            if done {
                let at_us = epoch_us();
                for seq in pending.drain(..) {
                    let _ = tx.send(Msg::Seen { seq, at_us });
                }
            }
        }
    });
}

/// XO's xen-api in Node, reporting on stdout.
fn node_peer(
    script: &str,
    url: &str,
    user: &str,
    password: &str,
    debounce: Option<&str>,
    tx: Sender<Msg>,
) -> Res<std::process::Child> {
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .args([url, user, password, &CLASSES.join(",")]);
    if let Some(d) = debounce {
        cmd.arg(d);
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let w: Vec<&str> = line.split_whitespace().collect();
            let msg = match w.as_slice() {
                ["ready", ms, n] => Msg::Ready {
                    ms: ms.parse().unwrap_or(0),
                    objects: n.parse().unwrap_or(0),
                },
                ["seen", seq, at] => match (seq.parse(), at.parse()) {
                    (Ok(seq), Ok(at_us)) => Msg::Seen { seq, at_us },
                    _ => continue,
                },
                _ => continue,
            };
            if tx.send(msg).is_err() {
                break;
            }
        }
    });
    Ok(child)
}

fn wait_all(peers: &[(&str, Arc<Mutex<Peer>>)], seqs: std::ops::Range<u64>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let done = peers.iter().all(|(_, p)| {
            let p = p.lock().unwrap_or_else(|e| e.into_inner());
            seqs.clone().all(|s| p.seen.contains_key(&s))
        });
        if done {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lists, saves the token, waits while `vms` all change, then times one resumed drain.
fn catch_up(client: Client, gen: &Client, vms: &[String], base: u64) -> Res<(usize, f64, f64)> {
    let (mut writer, _reader) = cache();
    let mut w = Watcher::new(client, WatchConfig::new(CLASSES).poll_timeout(30.0));
    for ev in w.by_ref().flatten() {
        let listed = matches!(ev, WatchEvent::InitDone { .. });
        writer.apply(ev);
        if listed {
            break;
        }
    }
    for (i, vm) in vms.iter().enumerate() {
        gen.call_value(
            "VM.set_name_description",
            vec![
                vm.as_str().into(),
                format!("bench {}", base + i as u64).into(),
            ],
        )?;
    }
    // The raw call alone (server, HTTP, decoding into values), for comparison.
    let token = w.token().ok_or("no token after the listing")?.to_owned();
    let classes = Value::Array(CLASSES.iter().map(|c| Value::from(*c)).collect());
    let t_call = Instant::now();
    gen.call_value(
        "event.from",
        vec![classes, token.into(), Value::Double(30.0)],
    )?;
    let call_secs = t_call.elapsed().as_secs_f64();
    let (t0, mut seen) = (Instant::now(), 0);
    for item in w.by_ref() {
        match item? {
            WatchEvent::Event(e) => {
                seen += usize::from(bench_seq(e.snapshot.as_ref()).is_some_and(|s| s >= base));
                writer.apply(WatchEvent::Event(e));
            }
            ev @ WatchEvent::Bookmark { .. } => {
                writer.apply(ev);
                if seen >= vms.len() {
                    break;
                }
            }
            ev => writer.apply(ev),
        }
    }
    Ok((seen, t0.elapsed().as_secs_f64(), call_secs))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, user, password] = [0, 1, 2].map(|i| args.get(i).cloned().unwrap_or_default());
    if password.is_empty() {
        return Err("usage: events-bench URL USER PASSWORD [--node SCRIPT] [--debounce MS] [--samples N] [--burst N]".into());
    }
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let samples: u64 = opt("--samples").map_or(Ok(200), |s| s.parse())?;
    let burst_max: usize = opt("--burst").map_or(Ok(3000), |s| s.parse())?;
    let cfg = || ClientConfig::new(url.as_str()).with_plain_http(true);

    let (tx, rx) = channel();
    rust_peer(Client::connect(cfg(), &user, password.clone())?, tx);
    let mut peers = vec![("xo-core", collect(rx))];
    let mut child = None;
    if let Some(script) = opt("--node") {
        let (tx, rx) = channel();
        child = Some(node_peer(
            &script,
            &url,
            &user,
            &password,
            opt("--debounce").as_deref(),
            tx,
        )?);
        peers.push(("xen-api (node)", collect(rx)));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while peers
        .iter()
        .any(|(_, p)| p.lock().unwrap_or_else(|e| e.into_inner()).ready.is_none())
    {
        if Instant::now() > deadline {
            return Err("a peer did not finish its listing in 300 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let gen = Client::connect(cfg(), &user, password.clone())?;
    let records = gen.call_value("VM.get_all_records", vec![])?;
    let mut vms: Vec<String> = records
        .as_struct()
        .ok_or("VM.get_all_records: not a struct")?
        .iter()
        .filter(|(_, r)| {
            ["is_a_template", "is_a_snapshot", "is_control_domain"]
                .iter()
                .all(|f| r.get(f).and_then(Value::as_bool) != Some(true))
        })
        .map(|(k, _)| k.to_owned())
        .collect();
    vms.sort();
    if vms.is_empty() {
        return Err("no VMs to change".into());
    }

    // Lag: one change at a time.
    let mut sent = HashMap::new();
    for i in 0..samples {
        let vm = &vms[i as usize % vms.len()];
        sent.insert(i, epoch_us());
        gen.call_value(
            "VM.set_name_description",
            vec![vm.as_str().into(), format!("bench {i}").into()],
        )?;
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_all(&peers, 0..samples, Duration::from_secs(30));

    // Burst: one change per VM, 4 threads.
    let n = vms.len().min(burst_max);
    let base = samples;
    let start = epoch_us();
    let chunks: Vec<Vec<(u64, String)>> = (0..4)
        .map(|t| {
            (0..n)
                .filter(|i| i % 4 == t)
                .map(|i| (base + i as u64, vms[i].clone()))
                .collect()
        })
        .collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let gen = gen.clone();
            std::thread::spawn(move || -> Res<()> {
                for (seq, vm) in chunk {
                    gen.call_value(
                        "VM.set_name_description",
                        vec![vm.into(), format!("bench {seq}").into()],
                    )?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "generator thread panicked")??;
    }
    let gen_end = epoch_us();
    wait_all(&peers, base..base + n as u64, Duration::from_secs(120));

    println!(
        "VMs changed: {}; generator: {n} calls in {:.2} s ({:.0} calls/s)",
        vms.len(),
        (gen_end - start) as f64 / 1e6,
        n as f64 / ((gen_end - start) as f64 / 1e6)
    );
    println!();
    println!("| client | listing | objects | lag p50 | lag p90 | lag p99 | lag max | burst: all {n} cached after | absorbed |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, p) in &peers {
        let p = p.lock().unwrap_or_else(|e| e.into_inner());
        let (ms, objects) = p.ready.unwrap_or((0, 0));
        let mut lags: Vec<f64> = (0..samples)
            .filter_map(|s| Some((*p.seen.get(&s)? as f64 - sent[&s] as f64) / 1000.0))
            .collect();
        lags.sort_by(f64::total_cmp);
        let missing = samples as usize - lags.len();
        let burst_seen: Vec<u64> = (base..base + n as u64)
            .filter_map(|s| p.seen.get(&s).copied())
            .collect();
        let last = burst_seen.iter().max().copied().unwrap_or(start);
        let secs = (last.saturating_sub(start)) as f64 / 1e6;
        println!(
            "| {name} | {ms} ms | {objects} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.2} s ({} of {n}{}) | {:.0} ev/s |",
            percentile(&lags, 0.5),
            percentile(&lags, 0.9),
            percentile(&lags, 0.99),
            lags.last().copied().unwrap_or(f64::NAN),
            secs,
            burst_seen.len(),
            if missing > 0 { format!(", {missing} lag samples missing") } else { String::new() },
            burst_seen.len() as f64 / secs.max(1e-9),
        );
    }
    // Catch-up: a watcher that was away while every VM changed drains it in one go.
    let (events, secs, call_secs) = catch_up(
        Client::connect(cfg(), &user, password.clone())?,
        &gen,
        &vms[..n],
        base + n as u64,
    )?;
    println!();
    println!("xo-core catch-up: {events} events (one change per VM, made while the watcher was away) fetched, parsed and applied in {:.3} s = {:.0} ev/s (the bare event.from call alone: {:.3} s)", secs, events as f64 / secs.max(1e-9), call_secs);
    if let Some(mut c) = child {
        drop(c.stdin.take());
        let _ = c.kill();
        let _ = c.wait();
    }
    Ok(())
}
