//! Watcher semantics against the in-memory source: listing, add/mod/del, coalescing,
//! filters, per-object subscriptions, resume, resync, session expiry, transport errors, stop.

mod memory_xapi;
use memory_xapi::{Fault, MemorySource};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xo_core::client::Error;
use xo_core::events::{
    ObjectEvent, Op, ResyncReason, WatchConfig, WatchEvent, WatchPhase, Watcher,
};
use xo_core::model::{Struct, Value, Vm, VmPowerState, XapiClass};

fn rec(name: &str) -> Struct {
    Struct(vec![
        ("name_label".into(), name.into()),
        ("power_state".into(), "Halted".into()),
    ])
}

fn cfg(classes: &[&str]) -> WatchConfig {
    WatchConfig::new(classes.iter().copied())
        .poll_timeout(0.2)
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
}

/// Pulls items until `n` object events (Event or InitObject) were seen, skipping markers.
fn take_objects(w: &mut Watcher, n: usize) -> Vec<ObjectEvent> {
    let mut out = Vec::new();
    while out.len() < n {
        match w.next().expect("watcher ended").expect("unexpected error") {
            WatchEvent::Event(e) | WatchEvent::InitObject(e) => out.push(e),
            _ => {}
        }
    }
    out
}

/// Pulls items until the end of the listing, returning the listed objects.
fn listing(w: &mut Watcher) -> Vec<ObjectEvent> {
    let mut out = Vec::new();
    loop {
        match w.next().expect("watcher ended").expect("unexpected error") {
            WatchEvent::InitObject(e) => out.push(e),
            WatchEvent::InitDone { .. } => return out,
            WatchEvent::Init => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Drains the watcher until a batch ends with no more pending events (an empty poll).
fn drain_now(w: &mut Watcher) -> Vec<ObjectEvent> {
    let mut out = Vec::new();
    loop {
        let before = w.stats().empty_batches;
        match w.next().expect("watcher ended").expect("unexpected error") {
            WatchEvent::Event(e) => out.push(e),
            WatchEvent::Bookmark { .. } => return out,
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(before, w.stats().empty_batches);
    }
}

#[test]
fn lists_then_follows_add_mod_del() {
    let src = Arc::new(MemorySource::new());
    let a = src.create("VM", rec("a"));
    let b = src.create("VM", rec("b"));
    let mut w = Watcher::new(memory_xapi::client(&src), cfg(&["VM"]));
    let mut listed: Vec<String> = listing(&mut w)
        .into_iter()
        .map(|e| {
            assert_eq!((e.class.as_str(), e.op), ("VM", Op::Add));
            e.ref_
        })
        .collect();
    listed.sort();
    assert_eq!(listed, vec![a.clone(), b.clone()]);

    src.modify("VM", &a, |r| r.insert("power_state", "Running".into()));
    let ev = drain_now(&mut w);
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].op, ev[0].ref_.as_str()), (Op::Mod, a.as_str()));
    assert_eq!(
        ev[0]
            .snapshot
            .as_ref()
            .and_then(|s| s.get::<Vm>())
            .map(|vm| &vm.power_state),
        Some(&VmPowerState::Running)
    );

    src.destroy("VM", &b);
    let ev = drain_now(&mut w);
    assert_eq!(
        (ev.len(), ev[0].op, ev[0].ref_.as_str()),
        (1, Op::Del, b.as_str())
    );
    assert_eq!(ev[0].snapshot, None, "del carries no snapshot");

    let c = src.create("VM", rec("c"));
    let ev = drain_now(&mut w);
    assert_eq!(
        (ev.len(), ev[0].op, ev[0].ref_.as_str()),
        (1, Op::Add, c.as_str())
    );
}

#[test]
fn changes_between_polls_are_coalesced_and_create_destroy_vanishes() {
    let src = Arc::new(MemorySource::new());
    let a = src.create("VM", rec("a"));
    let mut w = Watcher::new(memory_xapi::client(&src), cfg(&["VM"]));
    listing(&mut w);
    for i in 0..3 {
        src.modify("VM", &a, |r| r.insert("name_label", format!("a{i}").into()));
    }
    let tmp = src.create("VM", rec("tmp"));
    src.destroy("VM", &tmp);
    let ev = drain_now(&mut w);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].snapshot.as_ref().map(|s| s.name_label()), Some("a2"));
}

#[test]
fn class_filter_hides_other_classes() {
    let src = Arc::new(MemorySource::new());
    src.create("VIF", rec("vif-before"));
    let mut w = Watcher::new(memory_xapi::client(&src), cfg(&["VM"]));
    assert!(listing(&mut w).is_empty());
    src.create("VIF", rec("vif"));
    src.create("network", rec("net"));
    let vm = src.create("VM", rec("vm"));
    let ev = drain_now(&mut w);
    assert_eq!(
        ev.iter().map(|e| e.ref_.as_str()).collect::<Vec<_>>(),
        vec![vm.as_str()]
    );
}

#[test]
fn class_names_match_case_insensitively_and_keep_the_configured_spelling() {
    let src = Arc::new(MemorySource::new());
    src.create("VM_guest_metrics", rec("gm"));
    let mut w = Watcher::new(memory_xapi::client(&src), cfg(&["VM_guest_metrics"]));
    let l = listing(&mut w);
    assert_eq!(l[0].class, "VM_guest_metrics");
    src.create("VM_guest_metrics", rec("gm2"));
    // The server sends `vm_guest_metrics`; the watcher maps it back.
    assert_eq!(drain_now(&mut w)[0].class, "VM_guest_metrics");
}

#[test]
fn per_object_subscription_sees_only_that_object() {
    let src = Arc::new(MemorySource::new());
    let a = src.create("VM", rec("a"));
    let b = src.create("VM", rec("b"));
    let mut w = Watcher::new(memory_xapi::client(&src), cfg(&[&format!("VM/{a}")]));
    let l = listing(&mut w);
    assert_eq!(
        l.iter().map(|e| e.ref_.as_str()).collect::<Vec<_>>(),
        vec![a.as_str()]
    );
    src.modify("VM", &b, |r| r.insert("name_label", "b2".into()));
    src.modify("VM", &a, |r| r.insert("name_label", "a2".into()));
    let ev = drain_now(&mut w);
    assert_eq!(
        ev.iter()
            .map(|e| (e.op, e.ref_.as_str()))
            .collect::<Vec<_>>(),
        vec![(Op::Mod, a.as_str())]
    );
    assert_eq!(ev[0].class, "VM");
}

#[test]
fn star_lists_every_class_through_event_from() {
    let src = Arc::new(MemorySource::new());
    src.create("VM", rec("a"));
    src.create("network", rec("n"));
    let mut w = Watcher::new(memory_xapi::client(&src), cfg(&["*"]));
    let mut classes: Vec<String> = listing(&mut w).into_iter().map(|e| e.class).collect();
    classes.sort();
    // Classes the watcher was not told about get the datamodel's spelling.
    assert_eq!(classes, vec!["VM", "network", "pool"]);
}

#[test]
fn resumes_from_a_saved_token_without_listing() {
    let src = Arc::new(MemorySource::new());
    let a = src.create("VM", rec("a"));
    let mut w = Watcher::new(memory_xapi::client(&src), cfg(&["VM"]));
    assert_eq!(w.token(), None);
    listing(&mut w);
    src.modify("VM", &a, |r| r.insert("name_label", "a1".into()));
    drain_now(&mut w);
    let saved = w.token().expect("token after a batch").to_owned();
    drop(w);

    src.modify("VM", &a, |r| r.insert("name_label", "a2".into()));
    let b = src.create("VM", rec("b"));
    let mut w = Watcher::new(memory_xapi::client(&src), cfg(&["VM"]).resume_from(saved));
    let mut ev = drain_now(&mut w);
    ev.sort_by(|x, y| x.ref_.cmp(&y.ref_));
    assert_eq!(
        ev.iter()
            .map(|e| (e.op, e.ref_.as_str()))
            .collect::<Vec<_>>(),
        vec![(Op::Mod, a.as_str()), (Op::Add, b.as_str())]
    );
    assert_eq!(w.stats().listings, 0);
}

#[test]
fn a_rejected_token_resyncs_from_a_fresh_listing() {
    let src = Arc::new(MemorySource::new());
    let a = src.create("VM", rec("a"));
    let mut w = Watcher::new(
        memory_xapi::client(&src),
        cfg(&["VM"]).resume_from("not-a-token"),
    );
    assert_eq!(
        w.next().unwrap().unwrap(),
        WatchEvent::Resync(ResyncReason::TokenRejected)
    );
    assert_eq!(w.next().unwrap().unwrap(), WatchEvent::Init);
    let l = take_objects(&mut w, 1);
    assert_eq!(l[0].ref_, a);
    assert!(matches!(
        w.next().unwrap().unwrap(),
        WatchEvent::InitDone { .. }
    ));
    assert_eq!(w.stats().resyncs, 1);
}

#[test]
fn events_lost_resyncs_and_the_listing_reflects_deletions() {
    let src = Arc::new(MemorySource::new());
    let a = src.create("VM", rec("a"));
    let b = src.create("VM", rec("b"));
    let mut w = Watcher::new(memory_xapi::client(&src), cfg(&["VM"]));
    listing(&mut w);
    src.destroy("VM", &a);
    src.forget_history();
    assert_eq!(
        w.next().unwrap().unwrap(),
        WatchEvent::Resync(ResyncReason::EventsLost)
    );
    let l = listing(&mut w);
    assert_eq!(
        l.iter().map(|e| e.ref_.as_str()).collect::<Vec<_>>(),
        vec![b.as_str()]
    );
}

#[test]
fn session_expiry_logs_in_again_and_resumes_from_the_same_token() {
    let src = Arc::new(MemorySource::new());
    let a = src.create("VM", rec("a"));
    let mut w = Watcher::new(memory_xapi::client(&src), cfg(&["VM"]));
    listing(&mut w);
    src.inject_fault(Fault::ExpireSession);
    src.modify("VM", &a, |r| r.insert("name_label", "a1".into()));
    let ev = drain_now(&mut w);
    assert_eq!((ev.len(), ev[0].op), (1, Op::Mod));
    assert_eq!(src.relogins(), 1);
    // The client logged in again by itself: the watcher saw no error and did not relist.
    assert_eq!((w.stats().listings, w.stats().errors), (1, 0));
}

#[test]
fn session_expiry_during_the_listing_is_survived() {
    let src = Arc::new(MemorySource::new());
    src.create("VM", rec("a"));
    let client = memory_xapi::client(&src);
    src.inject_fault(Fault::ExpireSession);
    let mut w = Watcher::new(client, cfg(&["VM"]));
    assert_eq!(listing(&mut w).len(), 1);
    assert_eq!(src.relogins(), 1);
}

#[test]
fn transport_errors_are_yielded_and_retried_with_backoff() {
    let src = Arc::new(MemorySource::new());
    let a = src.create("VM", rec("a"));
    let mut w = Watcher::new(memory_xapi::client(&src), cfg(&["VM"]));
    listing(&mut w);
    // The client resends a read twice itself: each failure the watcher sees costs three.
    for _ in 0..9 {
        src.inject_fault(Fault::Transport);
    }
    src.modify("VM", &a, |r| r.insert("name_label", "a1".into()));
    let mut delays = Vec::new();
    let e = loop {
        match w.next().unwrap() {
            Err(e) => {
                assert_eq!(
                    (e.phase, matches!(&*e.source, Error::Transport { .. })),
                    (WatchPhase::Watch, true)
                );
                delays.push(e.retry_in);
            }
            Ok(WatchEvent::Event(e)) => break e,
            Ok(other) => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(e.op, Op::Mod);
    assert_eq!(
        delays,
        vec![
            Duration::from_millis(1),
            Duration::from_millis(2),
            Duration::from_millis(4)
        ]
    );
    assert_eq!(w.stats().errors, 3);
}

#[test]
fn other_api_errors_are_yielded_and_retried() {
    let src = Arc::new(MemorySource::new());
    // After the login: the client's own calls at login would take the fault.
    let client = memory_xapi::client(&src);
    src.inject_fault(Fault::Api("INTERNAL_ERROR".into()));
    let mut w = Watcher::new(client, cfg(&["VM"]));
    let e = w.next().unwrap().unwrap_err();
    assert_eq!(e.phase, WatchPhase::List);
    assert_eq!(e.source.api_code(), Some("INTERNAL_ERROR"));
    assert_eq!(listing(&mut w).len(), 0);
}

#[test]
fn stop_from_another_thread_ends_a_blocked_watcher() {
    let src = Arc::new(MemorySource::new());
    let mut w = Watcher::new(memory_xapi::client(&src), cfg(&["VM"]).poll_timeout(0.3));
    listing(&mut w);
    let stop = w.stop_handle();
    let t = std::thread::spawn(move || {
        let started = Instant::now();
        let rest: Vec<_> = w.by_ref().collect();
        (rest.len(), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    stop.stop();
    let (n, elapsed) = t.join().unwrap();
    assert_eq!(n, 0);
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

/// A stand-in for a generated record, to test typed decoding.
#[derive(Debug, PartialEq, serde::Deserialize)]
struct MiniVm {
    name_label: String,
    power_state: String,
}
impl XapiClass for MiniVm {
    const WIRE_NAME: &'static str = "VM";
}

#[test]
fn events_decode_into_typed_records() {
    let src = Arc::new(MemorySource::new());
    let a = src.create("VM", rec("a"));
    let mut w = Watcher::new(memory_xapi::client(&src), cfg(&["VM"]));
    let l = listing(&mut w);
    let t = l[0].typed::<MiniVm>().expect("VM class").expect("decodes");
    assert_eq!((t.op, t.ref_.as_str()), (Op::Add, a.as_str()));
    assert_eq!(
        t.snapshot.as_deref(),
        Some(&MiniVm {
            name_label: "a".into(),
            power_state: "Halted".into()
        })
    );
    // The generated type is the one the watcher decoded: shared, not decoded again.
    let vm = l[0].typed::<Vm>().unwrap().unwrap().snapshot.unwrap();
    let again = l[0].snapshot.as_ref().unwrap().get_arc::<Vm>().unwrap();
    assert!(Arc::ptr_eq(&vm, &again));
    src.destroy("VM", &a);
    let del = drain_now(&mut w)[0].typed::<MiniVm>().unwrap().unwrap();
    assert_eq!((del.op, del.snapshot), (Op::Del, None));
    // Another class is not typed as VM; a bad snapshot is an error, not a panic.
    let other = ObjectEvent {
        class: "VIF".into(),
        op: Op::Add,
        ref_: "r".into(),
        snapshot: None,
    };
    assert!(other.typed::<MiniVm>().is_none());
    let bad = ObjectEvent {
        class: "vm".into(),
        op: Op::Mod,
        ref_: "r".into(),
        snapshot: Some(xo_core::events::Record::Dynamic(Value::Int(3))),
    };
    assert!(bad.typed::<MiniVm>().unwrap().is_err());
}

#[test]
fn malformed_batches_are_errors_not_panics() {
    fn bad(v: Value) -> xo_core::client::Client {
        memory_xapi::scripted(move |method, _| match method {
            "pool.get_all" => Ok(Value::Array(vec!["OpaqueRef:p".into()])),
            "event.inject" => Ok("1,0".into()),
            "VM.get_all_records" => Ok(Value::Struct(Struct::new())),
            _ => Ok(v.clone()),
        })
    }
    let ev = |op: &str| {
        Value::Struct(Struct(vec![
            (
                "events".into(),
                Value::Array(vec![Value::Struct(Struct(vec![
                    ("class".into(), "vm".into()),
                    ("operation".into(), op.into()),
                    ("ref".into(), "OpaqueRef:x".into()),
                ]))]),
            ),
            ("token".into(), "2,0".into()),
        ]))
    };
    for v in [
        Value::Int(1),
        Value::Struct(Struct::new()),
        ev("mod"),
        ev("explode"),
    ] {
        let mut w = Watcher::new(bad(v), cfg(&["VM"]));
        let mut items = w.by_ref().take(4);
        assert!(matches!(items.next(), Some(Ok(WatchEvent::Init))));
        assert!(matches!(
            items.next(),
            Some(Ok(WatchEvent::InitDone { .. }))
        ));
        let e = items.next().unwrap().unwrap_err();
        assert!(matches!(&*e.source, Error::Protocol { .. }), "{e}");
    }
}

/// An object created after the listing's token and deleted before the first `event.from`
/// gets no `del` from xapi; the watcher notices from `valid_ref_counts` and removes it.
#[test]
fn object_created_and_deleted_around_the_listing_is_reconciled() {
    let src = Arc::new(MemorySource::new());
    let a = src.create("VM", rec("a"));
    let (inner, raced) = (src.clone(), std::sync::atomic::AtomicBool::new(false));
    let racy = memory_xapi::scripted(move |method, params| {
        if method == "VM.get_all_records" && !raced.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let x = inner.create("VM", rec("ghost"));
            let v = inner.handle(method, params);
            inner.destroy("VM", &x);
            return v;
        }
        inner.handle(method, params)
    });
    let mut w = Watcher::new(racy, cfg(&["VM"]));
    let mut listed = Vec::new();
    loop {
        match w.next().unwrap().unwrap() {
            WatchEvent::InitObject(e) => listed.push(e),
            WatchEvent::InitDone { .. } => break,
            _ => {}
        }
    }
    assert_eq!(listed.len(), 2, "the ghost is listed");
    let ghost = listed.iter().find(|e| e.ref_ != a).unwrap().ref_.clone();
    src.modify("VM", &a, |r| r.insert("name_label", "a1".into()));
    let mut seen = Vec::new();
    loop {
        match w.next().unwrap().unwrap() {
            WatchEvent::Event(e) => seen.push((e.op, e.ref_)),
            WatchEvent::Bookmark { .. } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(seen.contains(&(Op::Del, ghost)), "{seen:?}");
    assert!(seen.contains(&(Op::Mod, a)), "{seen:?}");
    assert_eq!(w.stats().reconciles, 1);
}
