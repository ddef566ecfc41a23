//! Async tasks, event.from semantics and the guest agent, in-process.
#![cfg(feature = "simulator")]

use std::thread;
use std::time::{Duration, Instant};

use xo_core::model::{ApiFailure, Struct, Value};
use xo_core::rpc::xmlrpc;
use xo_core::simulator::{SimConfig, Simulator};

fn s(v: &str) -> Value {
    Value::from(v)
}

struct T {
    sim: Simulator,
    sess: Value,
}

impl T {
    fn with(cfg: SimConfig) -> T {
        let sim = Simulator::start(SimConfig {
            serve: false,
            ..cfg
        })
        .unwrap();
        let (u, p) = sim.credentials();
        let sess = sim
            .dispatch("session.login_with_password", vec![s(&u), s(&p)])
            .unwrap();
        T { sim, sess }
    }
    fn new() -> T {
        T::with(SimConfig::default())
    }
    fn call(&self, m: &str, mut p: Vec<Value>) -> Result<Value, ApiFailure> {
        p.insert(0, self.sess.clone());
        self.sim.dispatch(m, p)
    }
    fn ok(&self, m: &str, p: Vec<Value>) -> Value {
        self.call(m, p).unwrap_or_else(|e| panic!("{m}: {e}"))
    }
    fn vm(&self, name: &str) -> Value {
        self.ok("VM.get_by_name_label", vec![s(name)])
            .as_array()
            .unwrap()[0]
            .clone()
    }
    fn get(&self, class: &str, field: &str, r: &Value) -> Value {
        self.ok(&format!("{class}.get_{field}"), vec![r.clone()])
    }
    fn from(&self, classes: &[&str], token: &str, timeout: f64) -> Result<Value, ApiFailure> {
        self.call(
            "event.from",
            vec![
                Value::Array(classes.iter().map(|c| s(c)).collect()),
                s(token),
                Value::Double(timeout),
            ],
        )
    }
    fn wait_task(&self, task: &Value) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let st = self.get("task", "status", task);
            if st != s("pending") || Instant::now() > deadline {
                return st.as_str().unwrap().to_owned();
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn events(batch: &Value) -> Vec<(String, String, String, Option<Value>)> {
    batch
        .get("events")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e.get("class").unwrap().as_str().unwrap().to_owned(),
                e.get("operation").unwrap().as_str().unwrap().to_owned(),
                e.get("ref").unwrap().as_str().unwrap().to_owned(),
                e.get("snapshot").cloned(),
            )
        })
        .collect()
}

fn token(batch: &Value) -> String {
    batch.get("token").unwrap().as_str().unwrap().to_owned()
}

#[test]
fn async_task_lifecycle() {
    let t = T::with(SimConfig {
        task_duration: Duration::from_millis(300),
        ..SimConfig::default()
    });
    let vm = t.vm("build-01");
    let task = t.ok(
        "Async.VM.start",
        vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
    );
    let rec = t.ok("task.get_record", vec![task.clone()]);
    assert_eq!(rec.get("status"), Some(&s("pending")));
    assert_eq!(rec.get("name_label"), Some(&s("Async.VM.start")));
    // The VM is busy with the task: other operations are refused meanwhile.
    let cur = t.get("VM", "current_operations", &vm);
    assert_eq!(cur.get(task.as_str().unwrap()), Some(&s("start")));
    let e = t
        .call(
            "VM.start",
            vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
        )
        .unwrap_err();
    assert_eq!(e.code, "OTHER_OPERATION_IN_PROGRESS");
    assert_eq!(
        e.params,
        vec![
            "VM".to_owned(),
            vm.as_str().unwrap().to_owned(),
            "start".to_owned(),
            task.as_str().unwrap().to_owned()
        ]
    );
    // Progress moves before completion.
    thread::sleep(Duration::from_millis(120));
    let p = t.get("task", "progress", &task).as_f64().unwrap();
    assert!(p > 0.0 && p < 1.0, "{p}");
    assert_eq!(t.wait_task(&task), "success");
    let rec = t.ok("task.get_record", vec![task.clone()]);
    assert_eq!(rec.get("result"), Some(&s("")));
    assert_eq!(rec.get("progress"), Some(&Value::Double(1.0)));
    assert_eq!(t.get("VM", "power_state", &vm), s("Running"));
    assert_eq!(
        t.get("VM", "current_operations", &vm),
        Value::Struct(Struct::new())
    );

    // A result that is a ref is stored as an XML-RPC fragment.
    t.ok("VM.hard_shutdown", vec![vm.clone()]);
    let task = t.ok("Async.VM.clone", vec![vm.clone(), s("cloned")]);
    assert_eq!(t.wait_task(&task), "success");
    let result = t.get("task", "result", &task);
    let clone = t.vm("cloned");
    assert_eq!(
        result,
        s(&format!("<value>{}</value>", clone.as_str().unwrap()))
    );

    // Failures land in error_info.
    let task = t.ok("Async.VM.clean_shutdown", vec![vm.clone()]);
    assert_eq!(t.wait_task(&task), "failure");
    let info = t.get("task", "error_info", &task);
    let info: Vec<&str> = info
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        info,
        vec![
            "VM_BAD_POWER_STATE",
            vm.as_str().unwrap(),
            "running",
            "halted"
        ]
    );
    t.ok("task.destroy", vec![task.clone()]);
    assert_eq!(
        t.call("task.get_record", vec![task]).unwrap_err().code,
        "HANDLE_INVALID"
    );
}

#[test]
fn task_cancel() {
    let t = T::with(SimConfig {
        task_duration: Duration::from_millis(400),
        ..SimConfig::default()
    });
    let vm = t.vm("build-01");
    let task = t.ok(
        "Async.VM.start",
        vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
    );
    t.ok("task.cancel", vec![task.clone()]);
    assert_eq!(t.get("task", "status", &task), s("cancelled"));
    let info = t.get("task", "error_info", &task);
    assert_eq!(info, Value::Array(vec![s("TASK_CANCELLED"), task.clone()]));
    thread::sleep(Duration::from_millis(600));
    // The operation never ran.
    assert_eq!(t.get("VM", "power_state", &vm), s("Halted"));
    assert_eq!(
        t.get("VM", "current_operations", &vm),
        Value::Struct(Struct::new())
    );
    assert_eq!(
        t.call("task.cancel", vec![task]).unwrap_err().code,
        "OPERATION_NOT_ALLOWED"
    );
    // Client-created tasks (for HTTP transfers) can be cancelled too.
    let mine = t.ok("task.create", vec![s("upload"), s("desc")]);
    assert_eq!(t.get("task", "status", &mine), s("pending"));
    t.ok("task.cancel", vec![mine.clone()]);
    assert_eq!(t.get("task", "status", &mine), s("cancelled"));
}

#[test]
fn event_from_semantics() {
    let t = T::new();
    // From the beginning: one add per object of the subscribed classes.
    let all = t.from(&["VM"], "", 0.0).unwrap();
    let evs = events(&all);
    let nvms = t.ok("VM.get_all", vec![]).as_array().unwrap().len();
    assert_eq!(evs.len(), nvms);
    assert!(evs
        .iter()
        .all(|(c, op, _, snap)| c == "vm" && op == "add" && snap.is_some()));
    let counts = all.get("valid_ref_counts").unwrap();
    assert_eq!(counts.get("vm"), Some(&Value::Int32(nvms as i32)));
    // xapi's counts are Int32s: the XML-RPC encoder the server replies with writes `<i4>`.
    let xml = String::from_utf8(xmlrpc::encode_envelope(&Ok(all.clone()))).unwrap();
    assert!(
        xml.contains(&format!(
            "<name>valid_ref_counts</name><value><struct><member><name>vm</name><value><i4>{nvms}</i4></value></member></struct>"
        )),
        "{xml}"
    );
    let tok = token(&all);
    assert_eq!(tok.len(), 41);
    assert_eq!(&tok[20..21], ",");
    let first = all.get("events").unwrap().as_array().unwrap()[0].clone();
    assert_eq!(first.get("timestamp"), Some(&s("0.0")));
    assert!(matches!(first.get("id"), Some(Value::String(_))));

    // Several changes to one object coalesce into one mod; case-insensitive class names.
    let vm = t.vm("web-01");
    t.ok("VM.set_name_description", vec![vm.clone(), s("a")]);
    t.ok("VM.set_name_description", vec![vm.clone(), s("b")]);
    let b = t.from(&["vM"], &tok, 1.0).unwrap();
    let evs = events(&b);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(
        (evs[0].1.as_str(), evs[0].2.as_str()),
        ("mod", vm.as_str().unwrap())
    );
    assert_eq!(
        evs[0].3.as_ref().unwrap().get("name_description"),
        Some(&s("b"))
    );
    let tok = token(&b);

    // Created then destroyed between two calls: nothing. Destroyed: del without snapshot.
    let net = t.ok("network.create", vec![Value::Struct(Struct::new())]);
    t.ok("network.destroy", vec![net.clone()]);
    let vif = t.get("VM", "VIFs", &t.vm("build-01")).as_array().unwrap()[0].clone();
    let vif_net = t.get("VIF", "network", &vif);
    t.ok("VIF.destroy", vec![vif.clone()]);
    let b = t.from(&["network", "vif"], &tok, 1.0).unwrap();
    let evs = events(&b);
    assert!(!evs.iter().any(|e| e.2 == net.as_str().unwrap()), "{evs:?}");
    let del: Vec<_> = evs.iter().filter(|e| e.0 == "vif").collect();
    assert_eq!(del.len(), 1, "{evs:?}");
    assert_eq!(
        (del[0].1.as_str(), del[0].2.as_str()),
        ("del", vif.as_str().unwrap())
    );
    assert!(del[0].3.is_none());
    // The VIF's network lost it from its VIFs set: one mod for it.
    let m: Vec<_> = evs.iter().filter(|e| e.0 == "network").collect();
    assert_eq!(
        (m.len(), m[0].1.as_str(), m[0].2.as_str()),
        (1, "mod", vif_net.as_str().unwrap())
    );
    let tok = token(&b);

    // An add coalesced with later mods stays an add.
    let net = t.ok("network.create", vec![Value::Struct(Struct::new())]);
    t.ok("network.set_name_label", vec![net.clone(), s("n")]);
    let b = t.from(&["*"], &tok, 1.0).unwrap();
    let evs = events(&b);
    assert_eq!(
        evs.iter()
            .filter(|e| e.2 == net.as_str().unwrap())
            .map(|e| e.1.as_str())
            .collect::<Vec<_>>(),
        vec!["add"]
    );
    assert!(b.get("valid_ref_counts").unwrap().get("network").is_some());
    let tok = token(&b);

    // Per-object subscriptions.
    let other = t.vm("db-01");
    t.ok("VM.set_name_description", vec![other.clone(), s("x")]);
    t.ok("VM.set_name_description", vec![vm.clone(), s("y")]);
    let sub = format!("vm/{}", vm.as_str().unwrap());
    let b = t.from(&[&sub], &tok, 1.0).unwrap();
    let evs = events(&b);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].2, vm.as_str().unwrap());

    // Timeout: empty list and a new token, after the timeout.
    let tok = token(&b);
    let t0 = Instant::now();
    let b = t.from(&["vm"], &tok, 0.3).unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(290));
    assert!(events(&b).is_empty());
    assert!(!token(&b).is_empty());

    // Classes that never emit events stay silent even when they change.
    let tok = token(&b);
    let (u, p) = t.sim.credentials();
    let s2 = t
        .sim
        .dispatch("session.login_with_password", vec![s(&u), s(&p)])
        .unwrap();
    t.sim.dispatch("session.logout", vec![s2]).unwrap();
    let b = t.from(&["session", "user"], &tok, 0.2).unwrap();
    assert!(events(&b).is_empty());

    // Token and subscription errors.
    let e = t.from(&["vm"], "not-a-token", 0.0).unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.params[0].as_str()),
        ("EVENT_FROM_TOKEN_PARSE_FAILURE", "not-a-token")
    );
    let e = t.from(&["vm/"], "", 0.0).unwrap_err();
    assert_eq!(e.code, "EVENT_SUBSCRIPTION_PARSE_FAILURE");
    // The XO timeout spelled as a string also works (xapi's float_of_rpc accepts it).
    t.call(
        "event.from",
        vec![Value::Array(vec![s("vm")]), s(&tok), s("0.05")],
    )
    .unwrap();
}

#[test]
fn long_poll_wakes_on_change_and_inject() {
    let t = std::sync::Arc::new(T::new());
    let pool = t.ok("pool.get_all", vec![]).as_array().unwrap()[0].clone();
    let tok = t.ok("event.inject", vec![s("pool"), pool.clone()]);
    // The inject itself is visible from its token.
    let b = t.from(&["pool"], tok.as_str().unwrap(), 1.0).unwrap();
    assert_eq!(events(&b).len(), 1);
    let tok = token(&b);
    let vm = t.vm("web-01");
    let t2 = t.clone();
    let vm2 = vm.clone();
    let changer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        t2.ok("VM.set_name_description", vec![vm2, s("woken")]);
    });
    let t0 = Instant::now();
    let b = t.from(&["vm"], &tok, 30.0).unwrap();
    let waited = t0.elapsed();
    changer.join().unwrap();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(events(&b)[0].2, vm.as_str().unwrap());
    assert_eq!(
        t.call("event.inject", vec![s("pool"), s("OpaqueRef:nope")])
            .unwrap_err()
            .code,
        "HANDLE_INVALID"
    );
    // A session deleted while blocked ends the call with SESSION_INVALID.
    let tok = token(&b);
    let t3 = t.clone();
    let expirer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(150));
        t3.sim.faults().expire_sessions();
    });
    let e = t.from(&["vm"], &tok, 30.0).unwrap_err();
    expirer.join().unwrap();
    assert_eq!(e.code, "SESSION_INVALID");
}

#[test]
fn tasks_show_up_in_events() {
    let t = T::new();
    let b = t.from(&["task"], "", 0.0).unwrap();
    let tok = token(&b);
    let vm = t.vm("build-01");
    let task = t.ok(
        "Async.VM.start",
        vec![vm, Value::Bool(false), Value::Bool(false)],
    );
    let mut tok = tok;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut statuses = Vec::new();
    while Instant::now() < deadline {
        let b = t.from(&["task"], &tok, 2.0).unwrap();
        tok = token(&b);
        for (_, op, r, snap) in events(&b) {
            if r == task.as_str().unwrap() && op != "del" {
                statuses.push(
                    snap.unwrap()
                        .get("status")
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
        }
        if statuses.last().map(String::as_str) == Some("success") {
            break;
        }
    }
    assert_eq!(statuses.first().map(String::as_str), Some("pending"));
    assert_eq!(statuses.last().map(String::as_str), Some("success"));
    assert_eq!(b_count(&t), 1);
}

fn b_count(t: &T) -> i64 {
    let b = t.from(&["task"], "", 0.0).unwrap();
    b.get("valid_ref_counts")
        .unwrap()
        .get("task")
        .unwrap()
        .as_i64()
        .unwrap()
}

#[test]
fn guest_agent_only_with_tools() {
    let t = T::with(SimConfig {
        guest_agent_delay: Duration::from_millis(150),
        ..SimConfig::default()
    });
    // Inventory: running VMs with tools already report, the one without does not.
    let web = t.vm("web-01");
    let gm = t.get("VM", "guest_metrics", &web);
    let rec = t.ok("VM_guest_metrics.get_record", vec![gm.clone()]);
    assert_eq!(rec.get("PV_drivers_detected"), Some(&Value::Bool(true)));
    let nets = rec.get("networks").unwrap();
    let ip = nets.get("0/ip").unwrap().as_str().unwrap();
    assert!(
        ip.starts_with("198.51.100.") || ip.starts_with("203.0.113."),
        "{ip}"
    );
    assert_eq!(nets.get("0/ipv4/0"), nets.get("0/ip"));
    assert!(nets
        .get("0/ipv6/0")
        .unwrap()
        .as_str()
        .unwrap()
        .starts_with("2001:db8:"));
    assert!(rec.get("os_version").unwrap().get("name").is_some());
    assert!(rec
        .get("PV_drivers_version")
        .unwrap()
        .get("major")
        .is_some());
    let legacy = t.vm("legacy-01");
    assert_eq!(t.get("VM", "power_state", &legacy), s("Running"));
    assert_eq!(t.get("VM", "guest_metrics", &legacy), s("OpaqueRef:NULL"));

    // Shutdown drops guest metrics; a start brings them back a moment later.
    t.ok("VM.clean_shutdown", vec![web.clone()]);
    assert_eq!(t.get("VM", "guest_metrics", &web), s("OpaqueRef:NULL"));
    assert_eq!(
        t.call("VM_guest_metrics.get_record", vec![gm])
            .unwrap_err()
            .code,
        "HANDLE_INVALID"
    );
    t.ok(
        "VM.start",
        vec![web.clone(), Value::Bool(false), Value::Bool(false)],
    );
    assert_eq!(t.get("VM", "guest_metrics", &web), s("OpaqueRef:NULL"));
    thread::sleep(Duration::from_millis(400));
    assert_ne!(t.get("VM", "guest_metrics", &web), s("OpaqueRef:NULL"));

    t.ok("VM.hard_shutdown", vec![legacy.clone()]);
    t.ok(
        "VM.start",
        vec![legacy.clone(), Value::Bool(false), Value::Bool(false)],
    );
    thread::sleep(Duration::from_millis(400));
    assert_eq!(t.get("VM", "guest_metrics", &legacy), s("OpaqueRef:NULL"));
}

#[test]
fn finished_tasks_are_bounded_like_xapi() {
    let t = T::new();
    let first = t.ok("task.create", vec![s("t0"), s("")]);
    t.ok("task.cancel", vec![first.clone()]);
    for i in 1..=200 {
        let task = t.ok("task.create", vec![s(&format!("t{i}")), s("")]);
        t.ok("task.cancel", vec![task]);
    }
    // 201 finished tasks: the oldest one was deleted.
    assert_eq!(
        t.call("task.get_record", vec![first]).unwrap_err().code,
        "HANDLE_INVALID"
    );
    assert_eq!(t.ok("task.get_all", vec![]).as_array().unwrap().len(), 200);
}

#[test]
fn legacy_register_and_next() {
    let t = std::sync::Arc::new(T::new());
    let e = t.call("event.next", vec![]).unwrap_err();
    assert_eq!(e.code, "SESSION_NOT_REGISTERED");
    t.ok("event.register", vec![Value::Array(vec![s("VM")])]);
    let vm = t.vm("web-01");
    let (t2, vm2) = (t.clone(), vm.clone());
    let changer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        t2.ok("VM.set_name_description", vec![vm2, s("legacy")]);
    });
    let evs = t.ok("event.next", vec![]);
    changer.join().unwrap();
    let evs = evs.as_array().unwrap();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].get("ref"), Some(&vm));
    assert_eq!(evs[0].get("operation"), Some(&s("mod")));
    assert_eq!(evs[0].get("class"), Some(&s("vm")));
    assert_eq!(evs[0].get("id"), Some(&s("1")));
    let ts = evs[0]
        .get("timestamp")
        .unwrap()
        .as_str()
        .unwrap()
        .parse::<f64>()
        .unwrap();
    assert!(ts > 1.0e9);
    t.ok("event.unregister", vec![Value::Array(vec![s("VM")])]);
    assert_eq!(
        t.call("event.next", vec![]).unwrap_err().code,
        "SESSION_NOT_REGISTERED"
    );
}
