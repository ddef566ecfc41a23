//! 10,000 VMs: the inventory builds quickly and stays consistent.
#![cfg(feature = "simulator")]

use std::time::{Duration, Instant};

use xo_core::model::Value;
use xo_core::simulator::{SimConfig, Simulator};

#[test]
fn ten_thousand_vms() {
    let t = Instant::now();
    let sim = Simulator::start(SimConfig {
        vms: 10_000,
        serve: false,
        ..SimConfig::default()
    })
    .unwrap();
    let started = t.elapsed();
    eprintln!("10,000-VM simulator started in {started:?}");
    // Generous for unoptimised builds on a loaded machine; the release build is far faster.
    assert!(started < Duration::from_secs(60), "{started:?}");
    let (u, p) = sim.credentials();
    let sess = sim
        .dispatch(
            "session.login_with_password",
            vec![Value::from(u), Value::from(p)],
        )
        .unwrap();
    let t = Instant::now();
    let vms = sim
        .dispatch("VM.get_all_records", vec![sess.clone()])
        .unwrap();
    eprintln!("VM.get_all_records in {:?}", t.elapsed());
    let guests = vms
        .as_struct()
        .unwrap()
        .iter()
        .filter(|(_, r)| {
            r.get("is_a_template") == Some(&Value::Bool(false))
                && r.get("is_control_domain") == Some(&Value::Bool(false))
        })
        .count();
    assert_eq!(guests, 10_000);
    let vifs = sim.dispatch("VIF.get_all", vec![sess.clone()]).unwrap();
    assert_eq!(vifs.as_array().unwrap().len(), 10_000);
    // An event.from from a recent token touches only what changed.
    let b = sim
        .dispatch(
            "event.from",
            vec![
                sess.clone(),
                Value::Array(vec![Value::from("*")]),
                Value::from(""),
                Value::Double(0.0),
            ],
        )
        .unwrap();
    let tok = b.get("token").unwrap().clone();
    let t = Instant::now();
    let b = sim
        .dispatch(
            "event.from",
            vec![
                sess,
                Value::Array(vec![Value::from("vm")]),
                tok,
                Value::Double(0.05),
            ],
        )
        .unwrap();
    assert!(b.get("events").unwrap().as_array().unwrap().is_empty());
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
#[ignore]
fn linearity() {
    for n in [1000, 4000] {
        let t = Instant::now();
        let _sim = Simulator::start(SimConfig {
            vms: n,
            serve: false,
            ..SimConfig::default()
        })
        .unwrap();
        eprintln!("{n}: {:?}", t.elapsed());
    }
}

#[test]
#[ignore]
fn empty_start() {
    for _ in 0..2 {
        let t = Instant::now();
        let _sim = Simulator::start(SimConfig {
            vms: 0,
            serve: false,
            ..SimConfig::default()
        })
        .unwrap();
        eprintln!("empty: {:?}", t.elapsed());
    }
}
