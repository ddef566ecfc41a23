//! Runs the embedded XAPI simulator until killed.
//!
//! ```text
//! cargo run --example simulator -- [--listen 127.0.0.1:PORT] [--tls] [--hosts N] [--vms N]
//!     [--db FILE] [--user USER:PASSWORD] [--task-ms N] [--latency-ms N]
//!     [--event-delay-ms N] [--session-idle-s N]
//! ```
//!
//! `--event-delay-ms` is `event.from`'s batching delay (xapi: 50); `--session-idle-s` destroys
//! sessions idle that long (xapi: 86400; 0 never).
//!
//! The first stdout line is `listening on http://127.0.0.1:PORT` (or `https://…` followed by
//! `sha256 fingerprint AA:BB:…`), then `credentials: USER PASSWORD`.
//!
//! Faults can be injected at run time by writing commands on stdin, one per line:
//! `latency MS`, `drop N`, `http STATUS N`, `fail METHOD CODE N [PARAM…]`, `expire-sessions`,
//! `switch-master INDEX`, `clear`, `dump FILE`.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use xo_core::simulator::{Faults, SimConfig, Simulator};

fn usage(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    eprintln!("usage: simulator [--listen ADDR:PORT] [--tls] [--hosts N] [--vms N] [--db FILE] [--user USER:PASSWORD] [--task-ms N] [--latency-ms N] [--event-delay-ms N] [--session-idle-s N]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut cfg = SimConfig::default();
    let mut latency = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let r: Result<(), String> = (|| {
            match a.as_str() {
                "--listen" => {
                    cfg.listen = value("--listen")?
                        .parse::<SocketAddr>()
                        .map_err(|e| format!("--listen: {e}"))?
                }
                "--tls" => cfg.tls = true,
                "--hosts" => {
                    cfg.hosts = value("--hosts")?
                        .parse()
                        .map_err(|e| format!("--hosts: {e}"))?
                }
                "--vms" => cfg.vms = value("--vms")?.parse().map_err(|e| format!("--vms: {e}"))?,
                "--db" => cfg.db = Some(PathBuf::from(value("--db")?)),
                "--task-ms" => {
                    cfg.task_duration = Duration::from_millis(
                        value("--task-ms")?
                            .parse()
                            .map_err(|e| format!("--task-ms: {e}"))?,
                    )
                }
                "--event-delay-ms" => {
                    cfg.event_from_delay = Duration::from_millis(
                        value("--event-delay-ms")?
                            .parse()
                            .map_err(|e| format!("--event-delay-ms: {e}"))?,
                    )
                }
                "--session-idle-s" => {
                    let secs: u64 = value("--session-idle-s")?
                        .parse()
                        .map_err(|e| format!("--session-idle-s: {e}"))?;
                    cfg.session_idle_timeout = (secs > 0).then(|| Duration::from_secs(secs));
                }
                "--latency-ms" => {
                    latency = Some(Duration::from_millis(
                        value("--latency-ms")?
                            .parse()
                            .map_err(|e| format!("--latency-ms: {e}"))?,
                    ))
                }
                "--user" => {
                    let v = value("--user")?;
                    let (u, p) = v.split_once(':').ok_or("--user wants USER:PASSWORD")?;
                    cfg.users = vec![(u.to_owned(), p.to_owned())];
                }
                "-h" | "--help" => return Err("help".into()),
                other => return Err(format!("unknown argument {other}")),
            }
            Ok(())
        })();
        if let Err(e) = r {
            return usage(&e);
        }
    }
    let sim = match Simulator::start(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let faults = sim.faults();
    if let Some(l) = latency {
        faults.set_latency(l);
    }
    let (user, password) = sim.credentials();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", sim.url());
    if let Some(fp) = sim.fingerprint() {
        let _ = writeln!(out, "sha256 fingerprint {fp}");
    }
    let _ = writeln!(out, "credentials: {user} {password}");
    for (i, url) in sim.host_urls().iter().enumerate() {
        let _ = writeln!(out, "host {i}: {url}");
    }
    let _ = out.flush();
    drop(out);
    for w in sim.warnings() {
        eprintln!("warning: {w}");
    }
    // Commands on stdin; when stdin ends, keep serving until killed.
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match command(&sim, &faults, line.trim()) {
            Ok(msg) => eprintln!("ok: {msg}"),
            Err(e) => eprintln!("error: {e}"),
        }
    }
    loop {
        std::thread::park();
    }
}

fn command(sim: &Simulator, faults: &Faults, line: &str) -> Result<String, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| -> Result<u64, String> {
        words
            .get(i)
            .ok_or("missing number")?
            .parse::<u64>()
            .map_err(|e| e.to_string())
    };
    match words.first().copied() {
        None => Ok("".into()),
        Some("latency") => {
            faults.set_latency(Duration::from_millis(num(1)?));
            Ok("latency set".into())
        }
        Some("drop") => {
            faults.drop_connections(num(1)? as usize);
            Ok("next requests dropped".into())
        }
        Some("http") => {
            let status = u16::try_from(num(1)?).map_err(|e| e.to_string())?;
            faults.http_status(status, num(2)? as usize);
            Ok(format!("next requests get HTTP {status}"))
        }
        Some("fail") => {
            let method = words.get(1).ok_or("fail METHOD CODE N [PARAM…]")?;
            let code = words.get(2).ok_or("fail METHOD CODE N [PARAM…]")?;
            let n = num(3)? as usize;
            faults.fail_method(method, code, &words[4.min(words.len())..], n);
            Ok(format!("{method} fails with {code} {n} times"))
        }
        Some("expire-sessions") => {
            faults.expire_sessions();
            Ok("sessions expired".into())
        }
        Some("switch-master") => {
            if faults.switch_master(num(1)? as usize) {
                Ok(format!("master is now {}", sim.url()))
            } else {
                Err("no such host".into())
            }
        }
        Some("clear") => {
            faults.clear();
            Ok("faults cleared".into())
        }
        Some("dump") => {
            let path = words.get(1).ok_or("dump FILE")?;
            std::fs::write(path, sim.dump_state_db()).map_err(|e| e.to_string())?;
            Ok(format!("state written to {path}"))
        }
        Some(other) => Err(format!("unknown command {other}")),
    }
}
