//! The webhooks part of the tour: a local receiver, a hook on VM power-state changes and a
//! pre/post hook on `VM.start`, one VM started, the deliveries, a retried failure and the log.
//!
//! It changes the pool (starts a halted VM): run it against the simulator only.

use super::call_hooks::{CallHooks, Caller};
use super::engine::{AttemptEvent, Engine, EngineOptions, Submission};
use super::pool_events::{ChangeTracker, WatchAdapter};
use super::router::WebhookRouter;
use super::spec::Spec;
use super::store::{AttemptQuery, ListFilter, SqliteStore, State};
use crate::client::Client;
use crate::events::{WatchConfig, WatchEvent, Watcher};
use crate::model::{Vm, VmPowerState};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// One request the receiver got.
struct Got {
    path: String,
    status: u16,
    body: String,
}

/// A receiver on 127.0.0.1 that answers 500 to the first power-state delivery, 200 otherwise.
struct LocalReceiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
    server: Arc<tiny_http::Server>,
}

impl LocalReceiver {
    fn start() -> Res<LocalReceiver> {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").map_err(|e| e.to_string())?);
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or("receiver has no IP address")?;
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let (srv, log) = (server.clone(), got.clone());
        let power_seen = AtomicUsize::new(0);
        std::thread::spawn(move || {
            for mut req in srv.incoming_requests() {
                let mut body = String::new();
                // Bounded: the tour's payloads are small.
                let _ = req.as_reader().take(1 << 20).read_to_string(&mut body);
                let path = req.url().to_owned();
                let status = if path == "/power" && power_seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    500
                } else {
                    200
                };
                if let Ok(mut g) = log.lock() {
                    g.push(Got { path, status, body });
                }
                let close = tiny_http::Header::from_bytes(&b"Connection"[..], &b"close"[..]);
                let mut resp = tiny_http::Response::from_string(if status == 200 {
                    "ok"
                } else {
                    "try again"
                })
                .with_status_code(status);
                if let Ok(h) = close {
                    resp.add_header(h);
                }
                let _ = req.respond(resp);
            }
        });
        Ok(LocalReceiver {
            url: format!("http://127.0.0.1:{port}"),
            got,
            server,
        })
    }

    fn count(&self, pred: impl Fn(&Got) -> bool) -> usize {
        self.got
            .lock()
            .map(|g| g.iter().filter(|x| pred(x)).count())
            .unwrap_or(0)
    }
}

impl Drop for LocalReceiver {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// A halted guest VM (not a template, not dom0).
fn halted_guest(client: &Client) -> Res<(crate::model::Ref<Vm>, String)> {
    let vms = client.call(Vm::get_all_records())?;
    vms.into_iter()
        .find(|(_, vm)| {
            !vm.is_a_template && !vm.is_control_domain && vm.power_state == VmPowerState::Halted
        })
        .map(|(r, vm)| (r, vm.name_label))
        .ok_or_else(|| "no halted guest VM to start".into())
}

/// Runs the webhooks tour through `client` (logged in), writing to `out`.
pub fn run(client: &Client, out: &mut dyn Write) -> Res<()> {
    let rx = LocalReceiver::start()?;
    let dir = std::env::temp_dir().join(format!(
        "xo-webhooks-tour-{}-{}",
        std::process::id(),
        super::clock::unix_ms(SystemTime::now())
    ));
    std::fs::create_dir_all(&dir)?;
    let result = tour(client, out, &rx, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn tour(
    client: &Client,
    out: &mut dyn Write,
    rx: &LocalReceiver,
    dir: &std::path::Path,
) -> Res<()> {
    let spec_text = format!(
        r#"{{"version": 1,
  "endpoints": [
    {{"id": "power", "url": "{u}/power", "retry": {{"schedule": [0.5, 5]}}}},
    {{"id": "calls", "url": "{u}/calls"}}],
  "events": [{{"endpoints": ["power"], "class": "VM", "operations": ["mod"],
              "conditions": [{{"field": "power_state", "from": "Halted", "to": "Running"}}]}}],
  "calls": [{{"endpoints": ["calls"], "methods": ["VM.start"], "type": "pre/post"}}]}}"#,
        u = rx.url
    );
    writeln!(out, "\n== Webhooks ==")?;
    writeln!(out, "receiver listening on {}; spec:\n{spec_text}", rx.url)?;
    let spec = Spec::load(&spec_text)?;
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let l = lines.clone();
    let engine = Arc::new(Engine::start(
        Arc::new(SqliteStore::open(dir.join("queue.db"))?),
        spec.clone(),
        EngineOptions {
            observer: Some(Arc::new(move |a: &AttemptEvent| {
                if let Ok(mut l) = l.lock() {
                    l.push(a.to_string());
                }
            })),
            ..EngineOptions::default()
        },
    )?);
    let router = Arc::new(WebhookRouter::new(spec, engine.clone()));
    let caller = Caller {
        user_name: Some("tour".into()),
        ..Caller::default()
    };
    let hooked = client.with_observer(Arc::new(CallHooks::new(router.clone(), caller)));

    // Watch VMs: a baseline listing, then changes from its token.
    let cfg = WatchConfig::new(["VM"])
        .keep_wire_records()
        .poll_timeout(1.0);
    let mut watcher = Watcher::new(client.clone(), cfg);
    let mut adapter = WatchAdapter::new(ChangeTracker::new(), vec!["VM".into()], true);
    for ev in watcher.by_ref() {
        let ev = ev?;
        adapter.on_watch_event(&ev);
        if matches!(ev, WatchEvent::InitDone { .. }) {
            break;
        }
    }

    let (vm, name) = halted_guest(client)?;
    writeln!(out, "starting VM {name:?} through a hooked client")?;
    hooked.call(Vm::start(&vm, false, false))?;

    // Feed VM changes to the router until the power-state transition has been queued (or 10 s
    // have passed: the stop handle ends the watcher's blocking iteration).
    let stop = watcher.stop_handle();
    std::thread::scope(|s| -> Res<()> {
        let timer = stop.clone();
        s.spawn(move || {
            timer.sleep(Duration::from_secs(10));
            timer.stop();
        });
        for ev in watcher.by_ref() {
            let (changes, _) = adapter.on_watch_event(&ev?);
            let subs: Vec<Submission> = changes
                .iter()
                .flat_map(|c| router.route_change(c, SystemTime::now()))
                .map(|r| Submission::json(r.endpoint, r.body))
                .collect();
            if !subs.is_empty() {
                engine.submit_many(subs)?;
                break;
            }
        }
        stop.stop();
        Ok(())
    })?;
    // pre + post on /calls; the power change fails once (500), then is retried.
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until
        && (rx.count(|g| g.path == "/calls") < 2
            || rx.count(|g| g.path == "/power" && g.status == 200) < 1)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The receiver answers before the engine records the outcome: wait for the queue too,
    // so the log below shows final states.
    while Instant::now() < until
        && engine
            .list(&ListFilter::default())?
            .iter()
            .any(|m| matches!(m.state, State::Pending | State::InFlight))
    {
        std::thread::sleep(Duration::from_millis(20));
    }

    writeln!(out, "\ndeliveries received:")?;
    if let Ok(got) = rx.got.lock() {
        for g in got.iter() {
            let v: serde_json::Value = serde_json::from_str(&g.body).unwrap_or_default();
            let what = match v.get("type").and_then(|t| t.as_str()) {
                Some("pre") | Some("post") => format!(
                    "{} {} (callId {})",
                    v["type"].as_str().unwrap_or(""),
                    v["method"].as_str().unwrap_or(""),
                    v["callId"].as_str().unwrap_or("")
                ),
                Some(t) => {
                    let ps = &v["data"]["changes"]["power_state"];
                    format!(
                        "{t} power_state {} -> {} ({} fields changed)",
                        ps["from"],
                        ps["to"],
                        v["data"]["changes"].as_object().map_or(0, |o| o.len())
                    )
                }
                None => "(unparsed)".into(),
            };
            writeln!(out, "  {} -> HTTP {}  {what}", g.path, g.status)?;
        }
    }
    writeln!(out, "\nattempts (one line each, as webhookd prints them):")?;
    if let Ok(l) = lines.lock() {
        for line in l.iter() {
            writeln!(out, "  {line}")?;
        }
    }
    writeln!(out, "\ndelivery log (from the SQLite queue):")?;
    for m in engine.list(&ListFilter::default())? {
        writeln!(
            out,
            "  {} {} {:?} after {} attempt(s)",
            m.id, m.endpoint, m.state, m.attempts
        )?;
        let mut attempts = engine.attempts(&AttemptQuery {
            msg_id: Some(m.id.clone()),
            ..AttemptQuery::default()
        })?;
        attempts.reverse();
        for a in attempts {
            writeln!(
                out,
                "    #{} {} {} ms {}",
                a.attempt,
                a.status
                    .map(|s| format!("HTTP {s}"))
                    .unwrap_or_else(|| "no response".into()),
                a.latency_ms,
                a.response.or(a.error).unwrap_or_default()
            )?;
        }
    }
    drop(hooked);
    drop(router);
    if let Ok(engine) = Arc::try_unwrap(engine) {
        engine.shutdown(Duration::from_secs(2));
    }
    let ok = rx.count(|g| g.path == "/calls") >= 2
        && rx.count(|g| g.path == "/power" && g.status == 500) == 1
        && rx.count(|g| g.path == "/power" && g.status == 200) >= 1;
    if !ok {
        return Err("the expected deliveries did not all arrive within 10 s".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tour_against_the_simulator() {
        let sim = std::sync::Arc::new(
            crate::simulator::Simulator::start(crate::simulator::SimConfig {
                hosts: 1,
                vms: 2,
                serve: false,
                ..Default::default()
            })
            .unwrap(),
        );
        let client = sim.connect().unwrap();
        let mut out = Vec::new();
        super::run(&client, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("/power -> HTTP 500"), "{text}");
        assert!(text.contains("/power -> HTTP 200"), "{text}");
        assert!(text.contains("pre VM.start"), "{text}");
        assert!(text.contains("post VM.start"), "{text}");
        assert!(text.contains("Delivered after 2 attempt(s)"), "{text}");
    }
}
