//! Sessions, pool roles and call routing errors, in-process.
#![cfg(feature = "simulator")]

use xo_core::model::{ApiFailure, Value};
use xo_core::simulator::{SimConfig, Simulator};

fn sim() -> Simulator {
    Simulator::start(SimConfig {
        serve: false,
        ..SimConfig::default()
    })
    .unwrap()
}

fn s(v: &str) -> Value {
    Value::from(v)
}

fn login(sim: &Simulator) -> Value {
    let (u, p) = sim.credentials();
    sim.dispatch("session.login_with_password", vec![s(&u), s(&p)])
        .unwrap()
}

fn err(r: Result<Value, ApiFailure>) -> ApiFailure {
    r.expect_err("expected a failure")
}

#[test]
fn login_logout_and_invalid_sessions() {
    let sim = sim();
    let (u, p) = sim.credentials();
    assert_eq!(u, "root");
    let sess = login(&sim);
    assert!(sess.as_str().unwrap().starts_with("OpaqueRef:"));
    // With the optional version and originator.
    let other = sim
        .dispatch(
            "session.login_with_password",
            vec![s(&u), s(&p), s("1.0"), s("tests")],
        )
        .unwrap();
    assert_ne!(sess, other);
    let pools = sim.dispatch("pool.get_all", vec![sess.clone()]).unwrap();
    assert_eq!(pools.as_array().unwrap().len(), 1);

    let e = err(sim.dispatch("session.login_with_password", vec![s(&u), s("wrong")]));
    assert_eq!(e.code, "SESSION_AUTHENTICATION_FAILED");
    assert_eq!(e.params[0], "root");

    sim.dispatch("session.logout", vec![sess.clone()]).unwrap();
    let e = err(sim.dispatch("VM.get_all", vec![sess.clone()]));
    assert_eq!(e.code, "SESSION_INVALID");
    assert_eq!(e.params, vec![sess.as_str().unwrap().to_owned()]);
    let e = err(sim.dispatch("VM.get_all", vec![s("OpaqueRef:nope")]));
    assert_eq!(
        (e.code.as_str(), e.params[0].as_str()),
        ("SESSION_INVALID", "OpaqueRef:nope")
    );
    // The other session is unaffected.
    sim.dispatch("VM.get_all", vec![other]).unwrap();
}

#[test]
fn expired_sessions_are_invalid() {
    let sim = sim();
    let sess = login(&sim);
    sim.faults().expire_sessions();
    assert_eq!(
        err(sim.dispatch("host.get_all", vec![sess])).code,
        "SESSION_INVALID"
    );
    login(&sim);
}

#[test]
fn members_answer_host_is_slave() {
    let sim = sim();
    let (u, p) = sim.credentials();
    let e = err(sim.dispatch_on(1, "session.login_with_password", vec![s(&u), s(&p)]));
    assert_eq!(e.code, "HOST_IS_SLAVE");
    assert_eq!(e.params, vec!["127.0.0.1".to_owned()]);
    // A pool session used on a member is redirected too.
    let sess = login(&sim);
    let e = err(sim.dispatch_on(1, "VM.get_all", vec![sess.clone()]));
    assert_eq!(
        (e.code.as_str(), e.params[0].as_str()),
        ("HOST_IS_SLAVE", "127.0.0.1")
    );
    // Emergency login works on the member, its session only there.
    let local = sim
        .dispatch_on(
            1,
            "session.slave_local_login_with_password",
            vec![s(&u), s(&p)],
        )
        .unwrap();
    let vms = sim
        .dispatch_on(1, "VM.get_all", vec![local.clone()])
        .unwrap();
    assert!(!vms.as_array().unwrap().is_empty());
    assert_eq!(
        err(sim.dispatch_on(0, "VM.get_all", vec![local.clone()])).code,
        "SESSION_INVALID"
    );
    sim.dispatch_on(1, "session.local_logout", vec![local.clone()])
        .unwrap();
    assert_eq!(
        err(sim.dispatch_on(1, "VM.get_all", vec![local])).code,
        "HOST_IS_SLAVE"
    );
    let e = err(sim.dispatch_on(
        1,
        "session.slave_local_login_with_password",
        vec![s(&u), s("bad")],
    ));
    assert_eq!(e.code, "SESSION_AUTHENTICATION_FAILED");
}

#[test]
fn master_switch() {
    let sim = sim();
    let sess = login(&sim);
    assert!(sim.faults().switch_master(1));
    let e = err(sim.dispatch_on(0, "VM.get_all", vec![sess.clone()]));
    assert_eq!(
        (e.code.as_str(), e.params[0].as_str()),
        ("HOST_IS_SLAVE", "127.0.0.2")
    );
    // Sessions survive the switch (the database moves with the role).
    sim.dispatch_on(1, "VM.get_all", vec![sess.clone()])
        .unwrap();
    let pool = sim
        .dispatch("pool.get_all", vec![sess.clone()])
        .unwrap()
        .as_array()
        .unwrap()[0]
        .clone();
    let master = sim
        .dispatch("pool.get_master", vec![sess.clone(), pool.clone()])
        .unwrap();
    let addr = sim
        .dispatch("host.get_address", vec![sess.clone(), master])
        .unwrap();
    assert_eq!(addr, s("127.0.0.2"));
    // And back through the API.
    let hosts = sim.dispatch("host.get_all", vec![sess.clone()]).unwrap();
    let first = hosts
        .as_array()
        .unwrap()
        .iter()
        .find(|h| {
            sim.dispatch("host.get_address", vec![sess.clone(), (*h).clone()])
                .unwrap()
                == s("127.0.0.1")
        })
        .unwrap()
        .clone();
    sim.dispatch_on(1, "pool.designate_new_master", vec![sess.clone(), first])
        .unwrap();
    sim.dispatch_on(0, "VM.get_all", vec![sess.clone()])
        .unwrap();
    assert_eq!(
        err(sim.dispatch_on(1, "VM.get_all", vec![sess])).code,
        "HOST_IS_SLAVE"
    );
    assert!(!sim.faults().switch_master(7));
}

#[test]
fn routing_errors() {
    let sim = sim();
    let sess = login(&sim);
    let e = err(sim.dispatch("VM.no_such_thing", vec![sess.clone()]));
    assert_eq!(
        (e.code.as_str(), e.params[0].as_str()),
        ("MESSAGE_METHOD_UNKNOWN", "VM.no_such_thing")
    );
    assert_eq!(
        err(sim.dispatch("Nope.get_all", vec![sess.clone()])).code,
        "MESSAGE_METHOD_UNKNOWN"
    );
    assert_eq!(
        err(sim.dispatch("garbage", vec![])).code,
        "MESSAGE_METHOD_UNKNOWN"
    );
    // Getters have no async form.
    assert_eq!(
        err(sim.dispatch("Async.VM.get_all", vec![sess.clone()])).code,
        "MESSAGE_METHOD_UNKNOWN"
    );
    let e = err(sim.dispatch("VM.get_all", vec![]));
    assert_eq!(e.code, "MESSAGE_PARAMETER_COUNT_MISMATCH");
    assert_eq!(
        e.params,
        vec!["VM.get_all".to_owned(), "1".to_owned(), "0".to_owned()]
    );
    let e = err(sim.dispatch("session.login_with_password", vec![s("a")]));
    assert_eq!(
        e.params,
        vec![
            "session.login_with_password".to_owned(),
            "4".to_owned(),
            "1".to_owned()
        ]
    );
    let e = err(sim.dispatch("VM.get_record", vec![sess.clone(), s("a"), s("b")]));
    assert_eq!(e.code, "MESSAGE_PARAMETER_COUNT_MISMATCH");
}

#[test]
fn injected_method_errors() {
    let sim = sim();
    let sess = login(&sim);
    sim.faults()
        .fail_method("VM.get_all", "INTERNAL_ERROR", &["boom"], 2);
    for _ in 0..2 {
        let e = err(sim.dispatch("VM.get_all", vec![sess.clone()]));
        assert_eq!(
            (e.code.as_str(), e.params[0].as_str()),
            ("INTERNAL_ERROR", "boom")
        );
    }
    sim.dispatch("VM.get_all", vec![sess.clone()]).unwrap();
    sim.faults()
        .set_latency(std::time::Duration::from_millis(60));
    let t = std::time::Instant::now();
    sim.dispatch("VM.get_all", vec![sess]).unwrap();
    assert!(t.elapsed() >= std::time::Duration::from_millis(60));
}

#[test]
fn session_limit_drops_the_oldest() {
    let sim = sim();
    let (u, p) = sim.credentials();
    let first = sim
        .dispatch(
            "session.login_with_password",
            vec![s(&u), s(&p), s("1.0"), s("limit-test")],
        )
        .unwrap();
    let mut last = first.clone();
    for _ in 0..500 {
        last = sim
            .dispatch(
                "session.login_with_password",
                vec![s(&u), s(&p), s("1.0"), s("limit-test")],
            )
            .unwrap();
    }
    assert_eq!(
        err(sim.dispatch("pool.get_all", vec![first])).code,
        "SESSION_INVALID"
    );
    sim.dispatch("pool.get_all", vec![last]).unwrap();
    // Other originators are not affected.
    let other = login(&sim);
    sim.dispatch("pool.get_all", vec![other]).unwrap();
}
