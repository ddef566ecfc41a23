//! The delivery engine against real HTTP receivers on 127.0.0.1.

mod webhook_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use webhook_support::{closing_listener, eventually, Receiver, Reply};
use xo_core::webhooks::engine::{AttemptEvent, AttemptResult, Engine, EngineOptions, Submission};
use xo_core::webhooks::spec::Spec;
use xo_core::webhooks::store::{AttemptQuery, ListFilter, Retention, SqliteStore, State, Store};
use xo_core::webhooks::verify::{verify, verify_github, DEFAULT_TOLERANCE};
use xo_core::webhooks::SigningSecret;

const T: Duration = Duration::from_secs(10);
const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET_B: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// One endpoint `e` at `url` with extra JSON fields merged in.
fn spec(endpoints: &[(&str, &str, &str)]) -> Spec {
    let eps: Vec<String> = endpoints
        .iter()
        .map(|(id, url, extra)| {
            let sep = if extra.is_empty() { "" } else { "," };
            format!(r#"{{"id":"{id}","url":"{url}"{sep}{extra}}}"#)
        })
        .collect();
    Spec::load(&format!(
        r#"{{"version":1,"endpoints":[{}]}}"#,
        eps.join(",")
    ))
    .unwrap()
}

type Events = Arc<Mutex<Vec<AttemptEvent>>>;

fn engine_with(store: Arc<dyn Store>, spec: Spec) -> (Engine, Events) {
    let events: Events = Arc::default();
    let ev = events.clone();
    let opts = EngineOptions {
        observer: Some(Arc::new(move |e: &AttemptEvent| {
            ev.lock().unwrap().push(e.clone())
        })),
        poll_interval: Duration::from_millis(50),
        ..EngineOptions::default()
    };
    (Engine::start(store, spec, opts).unwrap(), events)
}

fn engine(spec: Spec) -> (Engine, Events) {
    engine_with(Arc::new(SqliteStore::in_memory().unwrap()), spec)
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "xo-webhooks-{name}-{}-{}",
        std::process::id(),
        xo_core::webhooks::secret::random_id("")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("queue.db")
}

#[test]
fn success_is_signed_with_every_secret() {
    let rx = Receiver::start();
    let extra = format!(
        r#""secrets":["{SECRET_A}","{SECRET_B}"],"githubSecret":"gh-secret","headers":{{"X-Team":"infra"}}"#
    );
    let (eng, events) = engine(spec(&[("e", &rx.url, &extra)]));
    let body = br#"{"type":"vm.mod","n": 1}"#.to_vec();
    let id = eng.submit("e", body.clone()).unwrap();
    let got = rx.wait_for(1, T);
    let r = &got[0];
    assert_eq!(r.body, body, "the stored bytes are sent unchanged");
    assert_eq!(r.id(), id.as_str());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-team"), Some("infra"));
    let sig = r.header("webhook-signature").unwrap();
    assert_eq!(sig.split(' ').count(), 2, "one signature per secret");
    // A receiver holding either secret verifies (rotation).
    for s in [SECRET_A, SECRET_B] {
        verify(
            &r.headers,
            &r.body,
            &[SigningSecret::parse(s).unwrap()],
            DEFAULT_TOLERANCE,
        )
        .unwrap();
    }
    assert!(verify(
        &r.headers,
        &r.body,
        &[SigningSecret::generate().unwrap()],
        DEFAULT_TOLERANCE
    )
    .is_err());
    let gh = SigningSecret::from_bytes("gh-secret").unwrap();
    verify_github(&r.headers, &r.body, &[gh]).unwrap();

    eventually(T, || {
        (eng.store().get(&id).unwrap()?.state == State::Delivered).then_some(())
    });
    let log = eng
        .attempts(&AttemptQuery {
            msg_id: Some(id.clone()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, Some(200));
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].result, AttemptResult::Delivered);
    let line = ev[0].to_string();
    assert!(
        line.contains(id.as_str()) && line.contains("HTTP 200"),
        "{line}"
    );
}

#[test]
fn error_500_then_200_is_retried_with_the_same_id() {
    let rx = Receiver::with(|_, n| Reply::status(if n == 0 { 500 } else { 200 }).body("oops"));
    let (eng, events) = engine(spec(&[(
        "e",
        &rx.url,
        r#""retry":{"schedule":[0.05,0.05],"jitter":0}"#,
    )]));
    let id = eng.submit("e", b"{}".to_vec()).unwrap();
    let got = rx.wait_for(2, T);
    assert_eq!(got[0].id(), id.as_str());
    assert_eq!(got[1].id(), id.as_str());
    assert!(got[1].at - got[0].at >= Duration::from_millis(45));
    eventually(T, || (events.lock().unwrap().len() == 2).then_some(()));
    let ev = events.lock().unwrap().clone();
    assert!(matches!(ev[0].result, AttemptResult::Retry(_)));
    assert_eq!(ev[0].status, Some(500));
    assert_eq!(ev[1].result, AttemptResult::Delivered);
    let log = eng
        .attempts(&AttemptQuery {
            msg_id: Some(id.clone()),
            ..Default::default()
        })
        .unwrap();
    // Newest first.
    assert_eq!(
        log.iter().map(|a| a.status).collect::<Vec<_>>(),
        [Some(200), Some(500)]
    );
    assert_eq!(log[1].response.as_deref(), Some("oops"));
    assert_eq!(log.iter().map(|a| a.attempt).collect::<Vec<_>>(), [2, 1]);
}

#[test]
fn slow_receiver_times_out_and_is_retried() {
    let rx = Receiver::with(|_, n| {
        Reply::status(200).delay(if n == 0 {
            Duration::from_millis(1500)
        } else {
            Duration::ZERO
        })
    });
    let (eng, events) = engine(spec(&[(
        "e",
        &rx.url,
        r#""timeoutSeconds":0.3,"retry":{"schedule":[0.05],"jitter":0}"#,
    )]));
    let id = eng.submit("e", b"{}".to_vec()).unwrap();
    eventually(T, || {
        (eng.store().get(&id).unwrap()?.state == State::Delivered).then_some(())
    });
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].status, None);
    assert!(
        ev[0].latency < Duration::from_millis(1200),
        "{:?}",
        ev[0].latency
    );
    assert!(
        ev[0]
            .error
            .as_deref()
            .unwrap_or("")
            .to_lowercase()
            .contains("time"),
        "{:?}",
        ev[0].error
    );
    assert_eq!(ev[1].result, AttemptResult::Delivered);
}

#[test]
fn gone_410_disables_the_endpoint_until_enabled() {
    let rx = Receiver::with(|_, _| Reply::status(410));
    let (eng, _events) = engine(spec(&[("e", &rx.url, r#""retry":{"schedule":[0.01]}"#)]));
    let first = eng.submit("e", b"{\"n\":1}".to_vec()).unwrap();
    rx.wait_for(1, T);
    eventually(T, || eng.disabled_reason("e"));
    let second = eng.submit("e", b"{\"n\":2}".to_vec()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rx.received().len(),
        1,
        "nothing is sent to a disabled endpoint"
    );
    // Nothing was dropped: both wait, pending.
    for id in [&first, &second] {
        assert_eq!(eng.store().get(id).unwrap().unwrap().state, State::Pending);
    }
    assert!(eng.store().disabled_endpoints().unwrap()[0]
        .1
        .contains("410"));
    rx.set(|_, _| Reply::status(204));
    eng.enable_endpoint("e").unwrap();
    rx.wait_for(3, T);
    for id in [&first, &second] {
        eventually(T, || {
            (eng.store().get(id).unwrap()?.state == State::Delivered).then_some(())
        });
    }
}

#[test]
fn status_429_honours_retry_after() {
    let rx = Receiver::with(|_, n| {
        if n == 0 {
            Reply::status(429).header("Retry-After", "1")
        } else {
            Reply::status(200)
        }
    });
    let (eng, _events) = engine(spec(&[(
        "e",
        &rx.url,
        r#""retry":{"schedule":[0.01],"jitter":0}"#,
    )]));
    eng.submit("e", b"{}".to_vec()).unwrap();
    let got = rx.wait_for(2, T);
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}, not Retry-After"
    );
}

#[test]
fn closed_connections_are_retried_then_dead_lettered() {
    let (url, count) = closing_listener();
    let (eng, events) = engine(spec(&[(
        "e",
        &url,
        r#""timeoutSeconds":2,"retry":{"schedule":[0.02,0.02],"jitter":0}"#,
    )]));
    let id = eng.submit("e", b"{}".to_vec()).unwrap();
    eventually(T, || {
        (eng.store().get(&id).unwrap()?.state == State::Dead).then_some(())
    });
    assert_eq!(*count.lock().unwrap(), 3);
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev.len(), 3);
    assert!(ev.iter().all(|e| e.status.is_none() && e.error.is_some()));
    assert!(matches!(&ev[2].result, AttemptResult::Dead(r) if r.contains("exhausted")));
    let dead = eng
        .list(&ListFilter {
            state: Some(State::Dead),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
}

#[test]
fn redirects_are_not_followed() {
    let rx = Receiver::with(|r, _| {
        if r.path == "/hook" {
            Reply::status(302).header("Location", "/elsewhere")
        } else {
            Reply::status(200)
        }
    });
    let (eng, events) = engine(spec(&[("e", &rx.url, r#""retry":{"schedule":[]}"#)]));
    let id = eng.submit("e", b"{}".to_vec()).unwrap();
    eventually(T, || {
        (eng.store().get(&id).unwrap()?.state == State::Dead).then_some(())
    });
    std::thread::sleep(Duration::from_millis(100));
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/hook");
    assert_eq!(events.lock().unwrap()[0].status, Some(302));
}

#[test]
fn fifo_endpoint_holds_back_only_itself() {
    // Endpoint a fails its first three requests; b is healthy.
    let ra = Receiver::with(|_, n| Reply::status(if n < 3 { 503 } else { 200 }));
    let rb = Receiver::start();
    let (eng, _events) = engine(spec(&[
        (
            "a",
            &ra.url,
            r#""ordering":"fifo","retry":{"schedule":[0.1,0.1,0.1],"jitter":0}"#,
        ),
        ("b", &rb.url, ""),
    ]));
    let mut ids_a = Vec::new();
    let mut ids_b = Vec::new();
    for n in 0..5 {
        ids_a.push(eng.submit("a", format!("{{\"n\":{n}}}")).unwrap());
        ids_b.push(eng.submit("b", format!("{{\"n\":{n}}}")).unwrap());
    }
    let got_b = rb.wait_for(5, T);
    let got_a = ra.wait_for(3 + 5, T);
    // b finished while a was still retrying its head.
    let a_first_success = got_a[3].at;
    assert!(got_b.iter().all(|r| r.at < a_first_success));
    // a: the head four times, then the rest in submission order, nothing overtaking.
    let order: Vec<String> = got_a.iter().map(|r| r.id()).collect();
    let want: Vec<String> = [ids_a[0].clone(), ids_a[0].clone(), ids_a[0].clone()]
        .iter()
        .chain(ids_a.iter())
        .map(|i| i.to_string())
        .collect();
    assert_eq!(order, want);
}

#[test]
fn dead_letters_can_be_listed_and_replayed() {
    let rx = Receiver::with(|_, _| Reply::status(400).body("bad"));
    let (eng, _events) = engine(spec(&[("e", &rx.url, "")]));
    let a = eng.submit("e", b"{\"n\":1}".to_vec()).unwrap();
    let b = eng.submit("e", b"{\"n\":2}".to_vec()).unwrap();
    eventually(T, || (eng.counts().ok()?.dead == 2).then_some(()));
    let dead = eng
        .list(&ListFilter {
            state: Some(State::Dead),
            endpoint: Some("e".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(dead.iter().map(|m| &m.id).collect::<Vec<_>>(), [&a, &b]);
    assert!(dead[0].last_error.as_deref().unwrap().contains("400"));
    rx.set(|_, _| Reply::status(200));
    assert!(eng.replay(&a).unwrap());
    eventually(T, || {
        (eng.store().get(&a).unwrap()?.state == State::Delivered).then_some(())
    });
    assert_eq!(eng.replay_dead(Some("e")).unwrap(), 1);
    eventually(T, || (eng.counts().ok()?.delivered == 2).then_some(()));
    // Replays keep the webhook-id.
    let ids: Vec<String> = rx.received().iter().map(|r| r.id()).collect();
    assert_eq!(ids.iter().filter(|i| *i == a.as_str()).count(), 2);
    assert_eq!(ids.iter().filter(|i| *i == b.as_str()).count(), 2);
}

#[test]
fn delivery_log_queries_and_retention() {
    let big = "x".repeat(5000);
    let rx = Receiver::with(move |_, _| Reply::status(200).body(&big));
    let rx2 = Receiver::start();
    let (eng, _events) = engine(spec(&[("a", &rx.url, ""), ("b", &rx2.url, "")]));
    let mut items = Vec::new();
    for n in 0..6 {
        items.push(Submission::json(
            if n % 2 == 0 { "a" } else { "b" },
            format!("{{\"n\":{n}}}"),
        ));
    }
    let ids = eng.submit_many(items).unwrap();
    eventually(T, || (eng.counts().ok()?.delivered == 6).then_some(()));
    let per_ep = eng
        .attempts(&AttemptQuery {
            endpoint: Some("a".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(per_ep.len(), 3);
    assert!(per_ep.iter().all(|a| a.endpoint == "a"));
    let snippet = per_ep[0].response.as_deref().unwrap();
    assert_eq!(snippet.len(), 1024, "response snippet is capped at 1 KiB");
    let one = eng
        .attempts(&AttemptQuery {
            msg_id: Some(ids[1].clone()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].endpoint, "b");
    let rep = eng
        .apply_retention(&Retention {
            max_finished: Some(2),
            max_attempts: Some(3),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rep.messages_removed, 4);
    assert_eq!(rep.attempts_removed, 3);
    assert_eq!(eng.counts().unwrap().delivered, 2);
    let rep = eng
        .apply_retention(&Retention {
            max_age: Some(Duration::ZERO),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rep.messages_removed, 2);
}

#[test]
fn submit_and_wait_returns_the_first_attempt() {
    let rx = Receiver::with(|_, _| Reply::status(202));
    let (eng, _events) = engine(spec(&[("e", &rx.url, "")]));
    let (id, ev) = eng.submit_and_wait("e", b"{}".to_vec(), T).unwrap();
    let ev = ev.unwrap();
    assert_eq!(ev.msg_id, id);
    assert_eq!(ev.status, Some(202));
    // Bounded by the timeout when the receiver is slow.
    rx.set(|_, _| Reply::status(200).delay(Duration::from_millis(800)));
    let start = Instant::now();
    let (_, ev) = eng
        .submit_and_wait("e", b"{}".to_vec(), Duration::from_millis(200))
        .unwrap();
    assert!(ev.is_none());
    assert!(start.elapsed() < Duration::from_millis(700));
    assert!(eng.submit("nope", b"{}".to_vec()).is_err());
}

#[test]
fn shutdown_finishes_in_flight_and_restart_delivers_the_rest() {
    let db = temp_db("shutdown");
    let rx = Receiver::with(|_, _| Reply::status(200).delay(Duration::from_millis(300)));
    let sp = spec(&[("e", &rx.url, r#""ordering":"fifo""#)]);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
    let (eng, _events) = engine_with(store, sp.clone());
    let ids: Vec<_> = (0..4)
        .map(|n| eng.submit("e", format!("{{\"n\":{n}}}")).unwrap())
        .collect();
    rx.wait_for(0, T);
    std::thread::sleep(Duration::from_millis(100)); // the head is in flight
    let rep = eng.shutdown(Duration::from_secs(3));
    assert!(rep.clean);
    let store = SqliteStore::open(&db).unwrap();
    let c = store.counts().unwrap();
    assert_eq!(c.in_flight, 0, "in-flight work was finished, not abandoned");
    assert!(c.delivered >= 1 && c.delivered < 4, "{c:?}");
    assert_eq!(c.delivered + c.pending, 4);
    drop(store);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
    let (eng, _events) = engine_with(store, sp);
    for id in &ids {
        eventually(T, || {
            (eng.store().get(id).unwrap()?.state == State::Delivered).then_some(())
        });
    }
    drop(eng);
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

#[test]
fn fifo_dead_head_releases_its_successors() {
    // The first message is refused for good (400); the queue must not stay stuck behind it.
    let rx = Receiver::with(|r, _| {
        let n = r.json()["n"].as_u64().unwrap();
        Reply::status(if n == 0 { 400 } else { 200 })
    });
    let (eng, _events) = engine(spec(&[("e", &rx.url, r#""ordering":"fifo""#)]));
    let ids: Vec<_> = (0..3)
        .map(|n| eng.submit("e", format!("{{\"n\":{n}}}")).unwrap())
        .collect();
    let got = rx.wait_for(3, T);
    assert_eq!(
        got.iter().map(|r| r.id()).collect::<Vec<_>>(),
        ids.iter().map(|i| i.to_string()).collect::<Vec<_>>()
    );
    eventually(T, || (eng.counts().ok()?.delivered == 2).then_some(()));
    assert_eq!(
        eng.store().get(&ids[0]).unwrap().unwrap().state,
        State::Dead
    );
}

#[test]
fn disabled_endpoints_and_panicking_observers() {
    let rx = Receiver::start();
    let sp = spec(&[("off", &rx.url, r#""enabled":false"#), ("on", &rx.url, "")]);
    let opts = EngineOptions {
        workers: 1,
        observer: Some(Arc::new(|_: &AttemptEvent| panic!("observer bug"))),
        poll_interval: Duration::from_millis(20),
        ..EngineOptions::default()
    };
    let eng = Engine::start(Arc::new(SqliteStore::in_memory().unwrap()), sp, opts).unwrap();
    let off = eng.submit("off", b"{}".to_vec()).unwrap();
    // With one worker, a panicking observer would stall everything after the first message.
    for _ in 0..3 {
        eng.submit("on", b"{}".to_vec()).unwrap();
    }
    rx.wait_for(3, T);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(rx.received().len(), 3);
    assert_eq!(
        eng.store().get(&off).unwrap().unwrap().state,
        State::Pending
    );
}

#[test]
fn xo_config_pre_hook_waits_for_the_response_post_does_not() {
    use xo_core::webhooks::payload::{CallInfo, CallOutcome, HookPhase};
    use xo_core::webhooks::router::{CallEvent, WebhookRouter};
    let rx = Receiver::with(|r, _| {
        let slow = r.json()["type"] == "pre";
        Reply::status(200).delay(Duration::from_millis(if slow { 400 } else { 0 }))
    });
    let cfg = format!(
        r#"{{"hooks":[{{"method":"vm.start","type":"pre/post","url":"{}","format":"json","waitForResponse":true}}]}}"#,
        rx.url
    );
    let spec = Spec::load(&cfg).unwrap();
    let (eng, _events) = engine(spec.clone());
    let router = WebhookRouter::new(spec, eng);
    let call = CallInfo {
        call_id: "c42".into(),
        user_id: Some("u".into()),
        user_name: Some("admin@admin.net".into()),
        user_ip: None,
        method: "VM.start".into(), // XO's `vm.start` matches the XAPI name
        params: serde_json::json!({"vm": "OpaqueRef:1"}),
        timestamp_ms: 1,
    };
    let start = Instant::now();
    let d = router
        .on_call(&CallEvent {
            phase: HookPhase::Pre,
            call: call.clone(),
            outcome: None,
            end_ms: None,
        })
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(380),
        "pre hook did not wait"
    );
    assert_eq!(d.waited.len(), 1);
    assert_eq!(d.waited[0].1.as_ref().unwrap().status, Some(200));
    let start = Instant::now();
    let d = router
        .on_call(&CallEvent {
            phase: HookPhase::Post,
            call,
            outcome: Some(CallOutcome::Result(None)),
            end_ms: Some(9),
        })
        .unwrap();
    assert!(d.waited.is_empty());
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "post hook must not block"
    );
    let got = rx.wait_for(2, T);
    let post = got.iter().find(|r| r.json()["type"] == "post").unwrap();
    assert_eq!(post.json()["callId"], "c42");
    assert_eq!(post.json()["result"], true);
    // XO hooks are unsigned (no secret), but still carry the stable id and timestamp.
    assert!(post.header("webhook-signature").is_none());
    assert!(post.header("webhook-id").unwrap().starts_with("msg_"));
}

/// A clock that jumps 100 s every time it is read.
struct JumpingClock(std::sync::atomic::AtomicU64);

impl xo_core::webhooks::clock::Clock for JumpingClock {
    fn now(&self) -> std::time::SystemTime {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 100 * n)
    }
}

#[test]
fn every_attempt_is_signed_with_its_own_timestamp() {
    use xo_core::webhooks::verify::verify_at;
    let rx = Receiver::with(|_, n| Reply::status(if n == 0 { 500 } else { 200 }));
    let sp = spec(&[(
        "e",
        &rx.url,
        &format!(r#""secrets":["{SECRET_A}"],"retry":{{"schedule":[0],"jitter":0}}"#),
    )]);
    let opts = EngineOptions {
        clock: Arc::new(JumpingClock(Default::default())),
        poll_interval: Duration::from_millis(20),
        ..EngineOptions::default()
    };
    let eng = Engine::start(Arc::new(SqliteStore::in_memory().unwrap()), sp, opts).unwrap();
    eng.submit("e", b"{}".to_vec()).unwrap();
    let got = rx.wait_for(2, T);
    let ts: Vec<i64> = got
        .iter()
        .map(|r| r.header("webhook-timestamp").unwrap().parse().unwrap())
        .collect();
    assert!(ts[1] > ts[0], "timestamps {ts:?}");
    assert_eq!(got[0].id(), got[1].id());
    let key = [SigningSecret::parse(SECRET_A).unwrap()];
    for (r, t) in got.iter().zip(&ts) {
        verify_at(&r.headers, &r.body, &key, DEFAULT_TOLERANCE, *t).unwrap();
    }
    // The first signature does not verify at the second attempt's time (replay window).
    assert!(verify_at(
        &got[0].headers,
        &got[0].body,
        &key,
        DEFAULT_TOLERANCE,
        ts[1] + 301
    )
    .is_err());
}
