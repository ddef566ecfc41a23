//! Webhooks wired to the pool: call hooks around our client, pool events through the daemon
//! loop, restarts. Simulator and receivers on 127.0.0.1.

mod webhook_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use webhook_support::{Receiver, Reply};
use xo_core::client::{Client, ClientConfig};
use xo_core::model::Value;
use xo_core::simulator::{SimConfig, Simulator};
use xo_core::webhooks::call_hooks::{CallHooks, Caller};
use xo_core::webhooks::daemon::{self, DaemonOptions, EventState};
use xo_core::webhooks::{Engine, EngineOptions, Spec, SqliteStore, WebhookRouter};

fn sim() -> Arc<Simulator> {
    Arc::new(
        Simulator::start(SimConfig {
            hosts: 1,
            vms: 4,
            ..SimConfig::default()
        })
        .unwrap(),
    )
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

/// A guest VM in the given power state.
fn guest(t: &Client, state: &str) -> String {
    let recs = t.call_value("VM.get_all_records", vec![]).unwrap();
    let recs = recs.as_struct().unwrap();
    recs.0
        .iter()
        .find(|(_, r)| {
            let f = |k: &str| {
                r.as_struct()
                    .unwrap()
                    .0
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|x| x.1.clone())
            };
            f("is_a_template") == Some(Value::Bool(false))
                && f("is_control_domain") == Some(Value::Bool(false))
                && f("power_state") == Some(s(state))
        })
        .map(|(r, _)| r.clone())
        .unwrap_or_else(|| panic!("no {state} guest"))
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "xo-hookglue-{name}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn call_hooks_around_the_client() {
    let sim = sim();
    let rx = Receiver::start();
    let dir = tempdir("calls");
    let spec = Spec::load(&format!(
        r#"{{"version":1,"endpoints":[{{"id":"ops","url":"{}"}}],
            "calls":[{{"endpoints":["ops"],"methods":["VM.start"],"type":"pre/post"}}]}}"#,
        rx.url
    ))
    .unwrap();
    let engine = Engine::start(
        Arc::new(SqliteStore::open(dir.join("q.db")).unwrap()),
        spec.clone(),
        EngineOptions::default(),
    )
    .unwrap();
    let router = Arc::new(WebhookRouter::new(spec, engine));
    let (user, pass) = sim.credentials();
    let client = Client::connect(
        ClientConfig::new(sim.url()).with_plain_http(true),
        &user,
        pass.as_str(),
    )
    .unwrap();
    let session = client.session_ref().unwrap().as_str().to_owned();
    let caller = Caller {
        user_name: Some("root".into()),
        ..Caller::default()
    };
    let hooked = client.with_observer(Arc::new(CallHooks::new(router, caller)));

    let vm = guest(&client, "Halted");
    // Unsubscribed methods send nothing.
    hooked
        .call_value("VM.get_power_state", vec![s(&vm)])
        .unwrap();
    hooked
        .call_value(
            "VM.start",
            vec![s(&vm), Value::Bool(false), Value::Bool(false)],
        )
        .unwrap();
    // Starting it again fails: the post hook carries xapi's error.
    let err = hooked
        .call_value(
            "VM.start",
            vec![s(&vm), Value::Bool(false), Value::Bool(false)],
        )
        .unwrap_err();
    assert_eq!(err.api_code(), Some("VM_BAD_POWER_STATE"));

    let got = rx.wait_for(4, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.received().len(), 4, "exactly the four VM.start hooks");
    let mut bodies: Vec<serde_json::Value> = got.iter().map(|r| r.json()).collect();
    bodies.sort_by_key(|b| (b["timestamp"].as_i64(), b["type"] == "post"));
    for b in &bodies {
        let text = b.to_string();
        assert!(!text.contains(&session), "session ref leaked: {text}");
        assert_eq!(b["method"], "VM.start");
        assert_eq!(b["userName"], "root");
        assert_eq!(b["params"]["vm"], vm.as_str());
        assert_eq!(b["params"]["force"], false);
    }
    let pre: Vec<_> = bodies.iter().filter(|b| b["type"] == "pre").collect();
    let post: Vec<_> = bodies.iter().filter(|b| b["type"] == "post").collect();
    assert_eq!((pre.len(), post.len()), (2, 2));
    // Pre and post of one call share the callId; post has the duration and result or error.
    let ok = post.iter().find(|b| b.get("result").is_some()).unwrap();
    let failed = post.iter().find(|b| b.get("error").is_some()).unwrap();
    assert_eq!(ok["result"], true);
    assert!(ok["duration"].as_i64().unwrap() >= 0);
    assert!(pre.iter().any(|p| p["callId"] == ok["callId"]));
    assert_eq!(failed["error"]["code"], "VM_BAD_POWER_STATE");
    assert_eq!(failed["error"]["name"], "XapiError");
    assert!(failed["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("VM_BAD_POWER_STATE("));
}

#[test]
fn wait_for_response_blocks_up_to_the_timeout() {
    let sim = sim();
    let target = sim.connect().unwrap();
    // The receiver takes 2 s; the endpoint timeout is 0.4 s: the call waits about 0.4 s.
    let rx = Receiver::with(|_, _| Reply::status(200).delay(Duration::from_secs(2)));
    let dir = tempdir("wait");
    let spec = Spec::load(&format!(
        r#"{{"version":1,"endpoints":[{{"id":"gate","url":"{}","timeoutSeconds":0.4}}],
            "calls":[{{"endpoints":["gate"],"methods":["VM.get_*"],"type":"pre","waitForResponse":true}}]}}"#,
        rx.url
    ))
    .unwrap();
    let engine = Engine::start(
        Arc::new(SqliteStore::open(dir.join("q.db")).unwrap()),
        spec.clone(),
        EngineOptions::default(),
    )
    .unwrap();
    let obs = Arc::new(CallHooks::new(
        Arc::new(WebhookRouter::new(spec, engine)),
        Caller::default(),
    ));
    let hooked = target.with_observer(obs.clone());
    let vm = guest(&target, "Halted");
    let t0 = Instant::now();
    hooked.call_value("VM.get_uuid", vec![s(&vm)]).unwrap();
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(350), "did not wait: {took:?}");
    assert!(
        took < Duration::from_millis(1500),
        "waited too long: {took:?}"
    );
    assert_eq!(rx.wait_for(1, Duration::from_secs(5)).len(), 1);
    assert_eq!(obs.hook_errors(), 0);
    assert_eq!(obs.last_dispatch().unwrap().waited.len(), 1);
}

const EVENTS_SPEC: &str = r#"{"version":1,
  "endpoints":[{"id":"up","url":"URL/up","retry":{"schedule":[0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2]}},
               {"id":"down","url":"URL/down","retry":{"schedule":[0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2]}}],
  "events":[{"endpoints":["up"],"class":"VM","operations":["mod"],
             "conditions":[{"field":"power_state","from":"Halted","to":"Running"}]},
            {"endpoints":["down"],"class":"VM","operations":["mod"],
             "conditions":[{"field":"power_state","from":"Running","to":"Halted"}]}]}"#;

struct Running {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Result<daemon::RunReport, daemon::DaemonError>>,
    log: Arc<Mutex<Vec<String>>>,
}

fn start_daemon(
    sim: &Arc<Simulator>,
    spec: &Spec,
    dir: &std::path::Path,
    grace: Duration,
) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut opts = DaemonOptions::new(spec.clone(), dir);
    opts.poll_timeout = 0.2;
    opts.shutdown_grace = grace;
    let l = log.clone();
    opts.log = Arc::new(move |line: &str| l.lock().unwrap().push(line.to_owned()));
    let target = sim.connect().unwrap();
    let st = stop.clone();
    let handle = std::thread::spawn(move || daemon::run(target, opts, st));
    Running { stop, handle, log }
}

impl Running {
    fn wait_ready(&self, dir: &std::path::Path) {
        webhook_support::eventually(Duration::from_secs(10), || {
            EventState::open(dir)
                .ok()
                .and_then(|s| s.token().ok().flatten())
        });
        // One poll cycle so the first `event.from` with the token is in place.
        std::thread::sleep(Duration::from_millis(300));
    }
    fn stop(self) -> daemon::RunReport {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap().unwrap()
    }
}

fn paths(rx: &Receiver) -> Vec<String> {
    rx.received()
        .iter()
        .filter(|r| r.status_ok())
        .map(|r| r.path.clone())
        .collect()
}

#[test]
fn power_transitions_fire_once_each() {
    let sim = sim();
    let rx = Receiver::start();
    let base = rx.url.trim_end_matches("/hook").to_owned();
    let spec = Spec::load(&EVENTS_SPEC.replace("URL", &base)).unwrap();
    let dir = tempdir("events");
    let d = start_daemon(&sim, &spec, &dir, Duration::from_secs(5));
    d.wait_ready(&dir);
    let t = sim.connect().unwrap();
    let vm = guest(&t, "Halted");
    // Baseline objects are not news.
    assert!(rx.received().is_empty());
    t.call_value(
        "VM.start",
        vec![s(&vm), Value::Bool(false), Value::Bool(false)],
    )
    .unwrap();
    let got = rx.wait_for(1, Duration::from_secs(10));
    let ev = got[0].json();
    assert_eq!(got[0].path, "/up");
    assert_eq!(ev["type"], "vm.mod");
    assert_eq!(ev["data"]["ref"], vm.as_str());
    assert_eq!(ev["data"]["changes"]["power_state"]["from"], "Halted");
    assert_eq!(ev["data"]["changes"]["power_state"]["to"], "Running");
    // A mod that does not touch power_state (and the guest agent's later updates) send nothing.
    t.call_value("VM.set_name_label", vec![s(&vm), s("renamed")])
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(paths(&rx), ["/up"]);
    t.call_value("VM.hard_shutdown", vec![s(&vm)]).unwrap();
    rx.wait_for(2, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(paths(&rx), ["/up", "/down"]);
    let r = d.stop();
    assert_eq!(r.queued, 2);
    assert!(r.changes >= 3);
}

#[test]
fn restart_resumes_from_the_saved_token_and_loses_nothing() {
    let sim = sim();
    // The receiver fails everything at first: messages pile up in the queue.
    let healthy = Arc::new(AtomicBool::new(false));
    let h = healthy.clone();
    let rx =
        Receiver::with(move |_, _| Reply::status(if h.load(Ordering::SeqCst) { 200 } else { 500 }));
    let base = rx.url.trim_end_matches("/hook").to_owned();
    let spec = Spec::load(&EVENTS_SPEC.replace("URL", &base)).unwrap();
    let dir = tempdir("restart");
    let t = sim.connect().unwrap();
    let vm = guest(&t, "Halted");

    // Run 1: start the VM; its delivery fails and stays queued; stop without grace.
    let d = start_daemon(&sim, &spec, &dir, Duration::ZERO);
    d.wait_ready(&dir);
    t.call_value(
        "VM.start",
        vec![s(&vm), Value::Bool(false), Value::Bool(false)],
    )
    .unwrap();
    webhook_support::eventually(Duration::from_secs(10), || {
        (!rx.received().is_empty()).then_some(())
    });
    d.stop();

    // While down: the VM stops. Resumed from the token, the transition is seen.
    t.call_value("VM.hard_shutdown", vec![s(&vm)]).unwrap();
    healthy.store(true, Ordering::SeqCst);
    let d = start_daemon(&sim, &spec, &dir, Duration::from_secs(5));
    webhook_support::eventually(Duration::from_secs(10), || {
        let p = paths(&rx);
        (p.contains(&"/up".to_owned()) && p.contains(&"/down".to_owned())).then_some(())
    });
    d.stop();

    // Run 3 with a token the server rejects: resync from a listing, diffed against the saved
    // snapshots, still sees the net change made while down (Halted → Running).
    EventState::open(&dir)
        .unwrap()
        .set_token("not-a-token")
        .unwrap();
    t.call_value(
        "VM.start",
        vec![s(&vm), Value::Bool(false), Value::Bool(false)],
    )
    .unwrap();
    let d = start_daemon(&sim, &spec, &dir, Duration::from_secs(5));
    webhook_support::eventually(Duration::from_secs(10), || {
        (paths(&rx).iter().filter(|p| *p == "/up").count() == 2).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let log = d.log.lock().unwrap().clone();
    let r = d.stop();
    assert_eq!(r.resyncs, 1);
    assert!(log.iter().any(|l| l.contains("resynchronising")));
    let p = paths(&rx);
    let count = |x: &str| p.iter().filter(|q| *q == x).count();
    assert_eq!((count("/up"), count("/down")), (2, 1), "{p:?}");
}

/// The tour entry point as the client tour calls it: our `Client` over HTTP.
#[test]
fn tour_with_the_client() {
    fn tour(client: &Client) -> Result<String, Box<dyn std::error::Error>> {
        let mut out = Vec::new();
        xo_core::webhooks::tour::run(client, &mut out)?;
        Ok(String::from_utf8(out)?)
    }
    let sim = sim();
    let (user, pass) = sim.credentials();
    let client = Client::connect(
        ClientConfig::new(sim.url()).with_plain_http(true),
        &user,
        pass.as_str(),
    )
    .unwrap();
    let text = tour(&client).unwrap();
    assert!(text.contains("/power -> HTTP 500"), "{text}");
    assert!(text.contains("Delivered after 2 attempt(s)"), "{text}");
    assert!(!text.contains(client.session_ref().unwrap().as_str()));
}
