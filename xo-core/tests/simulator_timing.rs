//! Time-dependent behaviour of the simulator: `event.from` batching (a burst of changes comes
//! back in one reply) and the idle session timeout (and the client logging in again).
//! Timings are asserted as lower bounds, or with wide margins, so a loaded machine does not
//! make them flaky.
#![cfg(feature = "simulator")]

use std::time::{Duration, Instant};

use xo_core::client::{Client, ClientConfig};
use xo_core::model::{Struct, Value};
use xo_core::rpc::Protocol;
use xo_core::simulator::{SimConfig, Simulator};

fn s(v: &str) -> Value {
    Value::from(v)
}

fn start(cfg: SimConfig) -> (Simulator, Value) {
    let sim = Simulator::start(cfg).unwrap();
    let (u, p) = sim.credentials();
    let sess = sim
        .dispatch("session.login_with_password", vec![s(&u), s(&p)])
        .unwrap();
    (sim, sess)
}

fn in_process() -> SimConfig {
    SimConfig {
        serve: false,
        ..SimConfig::default()
    }
}

fn from(sim: &Simulator, sess: &Value, token: &str, timeout: f64) -> (Vec<Value>, String) {
    let b = sim
        .dispatch(
            "event.from",
            vec![
                sess.clone(),
                Value::Array(vec![s("network")]),
                s(token),
                Value::Double(timeout),
            ],
        )
        .unwrap();
    let events = b.get("events").unwrap().as_array().unwrap().to_vec();
    (events, b.get("token").unwrap().as_str().unwrap().to_owned())
}

fn new_network(sim: &Simulator, sess: &Value) -> Value {
    sim.dispatch(
        "network.create",
        vec![sess.clone(), Value::Struct(Struct::new())],
    )
    .unwrap()
}

#[test]
fn defaults_follow_xapi() {
    let c = SimConfig::default();
    assert_eq!(c.event_from_delay, Duration::from_millis(50));
    assert_eq!(c.session_idle_timeout, Some(Duration::from_secs(86_400)));
}

#[test]
fn a_burst_arrives_in_one_batch() {
    const N: usize = 10;
    // Far wider than xapi's 50 ms so that the burst surely fits in it on a busy machine (10
    // creations took 0.5 s in a loaded CI run).
    let delay = Duration::from_secs(3);
    let (sim, sess) = start(SimConfig {
        event_from_delay: delay,
        ..in_process()
    });
    let (_, token) = from(&sim, &sess, "", 0.0);
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let (events, _) = from(&sim, &sess, &token, 10.0);
            (events, Instant::now())
        });
        // Let the waiter block first.
        std::thread::sleep(Duration::from_millis(400));
        let start = Instant::now();
        // A few milliseconds apart, so that without batching the waiter, woken by the first
        // change, would reply before the last ones.
        let made: Vec<Value> = (0..N)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(3));
                new_network(&sim, &sess)
            })
            .collect();
        let burst = start.elapsed();
        assert!(burst < delay, "the burst took {burst:?}");
        let (events, at) = waiter.join().unwrap();
        assert_eq!(events.len(), N, "{events:?}");
        for (e, r) in events.iter().zip(&made) {
            assert_eq!(e.get("operation"), Some(&s("add")));
            assert_eq!(e.get("ref"), Some(r));
        }
        assert!(at.duration_since(start) >= delay);
    });
}

#[test]
fn default_delay_holds_the_reply_after_the_first_change() {
    let (sim, sess) = start(in_process());
    let (_, token) = from(&sim, &sess, "", 0.0);
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let (events, _) = from(&sim, &sess, &token, 10.0);
            (events.len(), Instant::now())
        });
        // Let the waiter block first.
        std::thread::sleep(Duration::from_millis(400));
        let changed = Instant::now();
        new_network(&sim, &sess);
        let (n, at) = waiter.join().unwrap();
        assert_eq!(n, 1);
        assert!(at.duration_since(changed) >= Duration::from_millis(50));
    });
}

#[test]
fn pending_changes_are_returned_at_once() {
    // Only a call that had to wait batches: a client catching up is not slowed down.
    let (sim, sess) = start(SimConfig {
        event_from_delay: Duration::from_secs(3),
        ..in_process()
    });
    let (_, token) = from(&sim, &sess, "", 0.0);
    new_network(&sim, &sess);
    let t = Instant::now();
    let (events, _) = from(&sim, &sess, &token, 10.0);
    assert_eq!(events.len(), 1);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn idle_sessions_expire_and_used_ones_do_not() {
    let (sim, idle) = start(SimConfig {
        session_idle_timeout: Some(Duration::from_millis(1500)),
        ..in_process()
    });
    let (u, p) = sim.credentials();
    let busy = sim
        .dispatch("session.login_with_password", vec![s(&u), s(&p)])
        .unwrap();
    // `busy` is used every 250 ms for 2 s; `idle` is left alone.
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(250));
        sim.dispatch("host.get_all", vec![busy.clone()]).unwrap();
    }
    let e = sim
        .dispatch("host.get_all", vec![idle.clone()])
        .expect_err("idle session");
    assert_eq!(e.code, "SESSION_INVALID");
    assert_eq!(e.params, vec![idle.as_str().unwrap().to_owned()]);
    // Its record is gone too.
    let e = sim
        .dispatch("session.get_uuid", vec![busy.clone(), idle.clone()])
        .expect_err("record");
    assert_eq!(e.code, "HANDLE_INVALID");
    sim.dispatch("host.get_all", vec![busy]).unwrap();
}

#[test]
fn without_a_timeout_sessions_stay() {
    let (sim, sess) = start(SimConfig {
        session_idle_timeout: None,
        ..in_process()
    });
    std::thread::sleep(Duration::from_millis(50));
    sim.dispatch("host.get_all", vec![sess]).unwrap();
}

#[test]
fn the_client_logs_in_again_after_an_idle_timeout() {
    let sim = Simulator::start(SimConfig {
        hosts: 1,
        session_idle_timeout: Some(Duration::from_millis(300)),
        ..SimConfig::default()
    })
    .unwrap();
    let (user, password) = sim.credentials();
    let config = ClientConfig::new(sim.url())
        .with_protocol(Protocol::XmlRpc)
        .with_plain_http(true)
        .with_call_timeout(Duration::from_secs(10));
    let c = Client::connect(config, &user, password.as_str()).unwrap();
    let hosts = c.call_value("host.get_all", vec![]).unwrap();
    let first = c.session_ref().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // The server side really dropped it.
    let e = sim
        .dispatch("host.get_all", vec![s(first.as_str())])
        .expect_err("expired");
    assert_eq!(e.code, "SESSION_INVALID");
    assert_eq!(c.call_value("host.get_all", vec![]).unwrap(), hosts);
    let second = c.session_ref().unwrap();
    assert_ne!(first.as_str(), second.as_str());
}
