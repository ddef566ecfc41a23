//! Host maintenance and storage lifecycle against the simulator: host.disable/enable,
//! host.evacuate (and its errors), VM.pool_migrate / VM.migrate_send checks, SR.create /
//! forget / destroy and PBD.plug / unplug, with the events they emit.
#![cfg(feature = "simulator")]

use std::time::Duration;

use xo_core::client::{Client, ClientConfig};
use xo_core::model::Host;
use xo_core::model::{ApiFailure, Ref, Struct, Value};
use xo_core::rpc::Protocol;
use xo_core::simulator::{SimConfig, Simulator};

const GIB: i64 = 1 << 30;

fn s(v: &str) -> Value {
    Value::from(v)
}

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Struct(Struct(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    ))
}

struct T {
    sim: Simulator,
    sess: Value,
}

impl T {
    fn new(serve: bool) -> T {
        let sim = Simulator::start(SimConfig {
            serve,
            ..SimConfig::default()
        })
        .unwrap();
        let (u, p) = sim.credentials();
        let sess = sim
            .dispatch("session.login_with_password", vec![s(&u), s(&p)])
            .unwrap();
        T { sim, sess }
    }
    fn call(&self, m: &str, mut p: Vec<Value>) -> Result<Value, ApiFailure> {
        p.insert(0, self.sess.clone());
        self.sim.dispatch(m, p)
    }
    fn ok(&self, m: &str, p: Vec<Value>) -> Value {
        self.call(m, p).unwrap_or_else(|e| panic!("{m}: {e}"))
    }
    fn err(&self, m: &str, p: Vec<Value>) -> ApiFailure {
        self.call(m, p).expect_err(m)
    }
    fn get(&self, class: &str, field: &str, r: &Value) -> Value {
        self.ok(&format!("{class}.get_{field}"), vec![r.clone()])
    }
    fn vm(&self, name: &str) -> Value {
        self.ok("VM.get_by_name_label", vec![s(name)])
            .as_array()
            .unwrap()[0]
            .clone()
    }
    fn hosts(&self) -> Vec<Value> {
        // host.get_all has no defined order; the names do (xcp-ng-01 is the master).
        let mut hs = list(&self.ok("host.get_all", vec![]));
        hs.sort_by_key(|h| {
            self.get("host", "name_label", h)
                .as_str()
                .unwrap()
                .to_owned()
        });
        hs
    }
    fn token(&self) -> String {
        let b = self.ok(
            "event.from",
            vec![list_of(&["*"]), s(""), Value::Double(0.0)],
        );
        b.get("token").unwrap().as_str().unwrap().to_owned()
    }
    /// (class, operation, ref) of the events since `token`.
    fn events(&self, classes: &[&str], token: &str) -> Vec<(String, String, Value)> {
        let b = self.ok(
            "event.from",
            vec![list_of(classes), s(token), Value::Double(0.5)],
        );
        list(b.get("events").unwrap())
            .iter()
            .map(|e| {
                let f = |k| e.get(k).unwrap().as_str().unwrap().to_owned();
                (f("class"), f("operation"), e.get("ref").unwrap().clone())
            })
            .collect()
    }
    /// The guests (not dom0) resident on a host.
    fn guests_on(&self, host: &Value) -> Vec<Value> {
        list(&self.get("host", "resident_VMs", host))
            .into_iter()
            .filter(|vm| self.get("VM", "is_control_domain", vm) == Value::Bool(false))
            .collect()
    }
    /// Free memory as xapi's placement counts it, from the records alone.
    fn free(&self, host: &Value) -> i64 {
        let metrics = self.get("host", "metrics", host);
        let total = self
            .get("host_metrics", "memory_total", &metrics)
            .as_i64()
            .unwrap();
        let overhead = self.get("host", "memory_overhead", host).as_i64().unwrap();
        let used: i64 = list(&self.get("host", "resident_VMs", host))
            .iter()
            .map(|vm| {
                self.get("VM", "memory_dynamic_min", vm).as_i64().unwrap()
                    + self.get("VM", "memory_overhead", vm).as_i64().unwrap()
            })
            .sum();
        total - overhead - used
    }
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().unwrap().to_vec()
}

fn list_of(v: &[&str]) -> Value {
    Value::Array(v.iter().map(|x| s(x)).collect())
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[test]
fn new_methods_are_listed_with_async_forms() {
    let methods = Simulator::methods();
    for m in [
        "host.evacuate",
        "host.disable",
        "host.enable",
        "host.assert_can_evacuate",
        "host.get_vms_which_prevent_evacuation",
        "host.migrate_receive",
        "VM.pool_migrate",
        "VM.migrate_send",
        "SR.create",
        "SR.forget",
        "SR.destroy",
        "PBD.plug",
        "PBD.unplug",
    ] {
        assert!(methods.iter().any(|x| x == m), "{m}");
        let a = format!("Async.{m}");
        assert!(methods.contains(&a), "{a}");
    }
}

#[test]
fn disable_and_enable_emit_host_events_and_steer_starts() {
    let t = T::new(false);
    let hosts = t.hosts();
    let tok = t.token();
    t.ok("host.disable", vec![hosts[1].clone()]);
    assert_eq!(t.get("host", "enabled", &hosts[1]), Value::Bool(false));
    let evs = t.events(&["host"], &tok);
    assert_eq!(evs, vec![("host".into(), "mod".into(), hosts[1].clone())]);
    // Disabling again changes nothing, so no event.
    let tok = t.token();
    t.ok("host.disable", vec![hosts[1].clone(), Value::Bool(false)]);
    assert!(t.events(&["host"], &tok).is_empty());
    // New VMs only land on enabled hosts.
    let vm = t.vm("app-01");
    t.ok(
        "VM.start",
        vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
    );
    assert_eq!(t.get("VM", "resident_on", &vm), hosts[0]);
    // And a migration onto the disabled host is refused.
    let web = t.vm("web-01");
    let e = t.err("VM.pool_migrate", vec![web, hosts[1].clone(), map(&[])]);
    assert_eq!(
        (e.code.as_str(), e.params.clone()),
        ("HOST_DISABLED", vec![text(&hosts[1]).to_owned()])
    );
    t.ok("host.enable", vec![hosts[1].clone()]);
    assert_eq!(t.get("host", "enabled", &hosts[1]), Value::Bool(true));
}

#[test]
fn evacuate_moves_every_running_guest() {
    let t = T::new(false);
    let hosts = t.hosts();
    let before = t.guests_on(&hosts[0]);
    assert!(before.len() >= 2, "the inventory runs guests on the master");
    let domids: Vec<Value> = before.iter().map(|vm| t.get("VM", "domid", vm)).collect();
    let tok = t.token();
    t.ok("host.disable", vec![hosts[0].clone()]);
    t.ok("host.evacuate", vec![hosts[0].clone()]);
    assert!(t.guests_on(&hosts[0]).is_empty());
    let dom0 = t.get("host", "control_domain", &hosts[0]);
    assert_eq!(t.get("VM", "resident_on", &dom0), hosts[0], "dom0 stays");
    for (vm, old) in before.iter().zip(&domids) {
        assert_eq!(t.get("VM", "resident_on", vm), hosts[1]);
        assert_eq!(t.get("VM", "power_state", vm), s("Running"));
        assert_ne!(
            &t.get("VM", "domid", vm),
            old,
            "a migrated VM gets a new domain"
        );
    }
    let evs = t.events(&["vm", "host"], &tok);
    for vm in &before {
        assert!(
            evs.contains(&("vm".into(), "mod".into(), vm.clone())),
            "{evs:?}"
        );
    }
    for h in &hosts {
        assert!(
            evs.contains(&("host".into(), "mod".into(), h.clone())),
            "{evs:?}"
        );
    }
    // Nothing left to move: a second evacuation is a no-op, even with no target.
    t.ok("host.disable", vec![hosts[1].clone()]);
    t.ok("host.evacuate", vec![hosts[0].clone()]);
}

#[test]
fn evacuate_refuses_before_moving_anything() {
    let t = T::new(false);
    let hosts = t.hosts();

    // Guests on host 2 have disks on its local SR: they cannot run on host 1.
    let on1 = t.guests_on(&hosts[1]);
    let e = t.err("host.evacuate", vec![hosts[1].clone()]);
    assert_eq!(e.code, "VM_REQUIRES_SR", "{e}");
    assert!(on1.iter().any(|vm| text(vm) == e.params[0]));
    let sr = s(&e.params[1]);
    assert_eq!(t.get("SR", "shared", &sr), Value::Bool(false));
    assert_eq!(t.guests_on(&hosts[1]), on1, "nothing moved");
    let e = t.err("host.assert_can_evacuate", vec![hosts[1].clone()]);
    assert_eq!(e.code, "CANNOT_EVACUATE_HOST");
    assert!(e.params[0].starts_with("VM_REQUIRES_SR,"), "{e}");
    let blockers = t.ok(
        "host.get_vms_which_prevent_evacuation",
        vec![hosts[1].clone()],
    );
    let Value::Struct(b) = &blockers else {
        panic!("{blockers:?}")
    };
    assert_eq!(b.0.len(), on1.len());
    for (vm, why) in &b.0 {
        assert!(on1.contains(&s(vm)));
        assert_eq!(list(why)[0], s("VM_REQUIRES_SR"));
    }

    // No other enabled host: xapi names the VM.
    let on0 = t.guests_on(&hosts[0]);
    t.ok("host.disable", vec![hosts[1].clone()]);
    let e = t.err("host.evacuate", vec![hosts[0].clone()]);
    assert_eq!(e.code, "NO_HOSTS_AVAILABLE");
    assert!(on0.iter().any(|vm| text(vm) == e.params[0]));
    assert_eq!(t.guests_on(&hosts[0]), on0);
    t.ok("host.enable", vec![hosts[1].clone()]);
    assert_eq!(
        t.ok(
            "host.get_vms_which_prevent_evacuation",
            vec![hosts[0].clone()]
        ),
        Value::Struct(Struct::new())
    );
    t.ok("host.assert_can_evacuate", vec![hosts[0].clone()]);
}

#[test]
fn memory_is_checked_on_migrate_and_evacuate() {
    let t = T::new(false);
    let hosts = t.hosts();
    // A guest started small on host 1, then grown past what host 2 has left (a start at
    // that size is refused: start_on checks memory too).
    let big = t.vm("build-01");
    t.ok(
        "VM.set_memory_limits",
        vec![
            big.clone(),
            Value::Int(GIB),
            Value::Int(70 * GIB),
            Value::Int(GIB),
            Value::Int(GIB),
        ],
    );
    t.ok(
        "VM.start_on",
        vec![
            big.clone(),
            hosts[0].clone(),
            Value::Bool(false),
            Value::Bool(false),
        ],
    );
    t.ok(
        "VM.set_memory_dynamic_range",
        vec![big.clone(), Value::Int(70 * GIB), Value::Int(70 * GIB)],
    );
    let available = t.free(&hosts[1]);
    let e = t.err(
        "VM.pool_migrate",
        vec![big.clone(), hosts[1].clone(), map(&[])],
    );
    assert_eq!(e.code, "HOST_NOT_ENOUGH_FREE_MEMORY");
    let needed = 70 * GIB + t.get("VM", "memory_overhead", &big).as_i64().unwrap();
    assert_eq!(e.params, vec![needed.to_string(), available.to_string()]);
    let e = t.err("host.evacuate", vec![hosts[0].clone()]);
    assert_eq!(
        (e.code.as_str(), e.params.clone()),
        ("HOST_NOT_ENOUGH_FREE_MEMORY", vec![text(&big).to_owned()])
    );
    assert_eq!(t.get("VM", "resident_on", &big), hosts[0]);
    // Shrunk to fit, it goes with the others.
    t.ok(
        "VM.set_memory_dynamic_range",
        vec![big.clone(), Value::Int(GIB), Value::Int(GIB)],
    );
    t.ok("host.evacuate", vec![hosts[0].clone()]);
    assert_eq!(t.get("VM", "resident_on", &big), hosts[1]);
}

fn start_on_args(vm: &Value, host: &Value) -> Vec<Value> {
    vec![
        vm.clone(),
        host.clone(),
        Value::Bool(false),
        Value::Bool(false),
    ]
}

#[test]
fn start_on_and_resume_on_refuse_a_disabled_host() {
    let t = T::new(false);
    let hosts = t.hosts();
    // app-01 is halted with its disk on the shared SR: it can run on either host.
    let vm = t.vm("app-01");
    t.ok("host.disable", vec![hosts[0].clone()]);
    let e = t.err("VM.start_on", start_on_args(&vm, &hosts[0]));
    assert_eq!(
        (e.code.as_str(), e.params.clone()),
        ("HOST_DISABLED", vec![text(&hosts[0]).to_owned()])
    );
    assert_eq!(t.get("VM", "power_state", &vm), s("Halted"));
    t.ok("VM.start_on", start_on_args(&vm, &hosts[1]));
    t.ok("VM.suspend", vec![vm.clone()]);
    let e = t.err("VM.resume_on", start_on_args(&vm, &hosts[0]));
    assert_eq!(
        (e.code.as_str(), e.params.clone()),
        ("HOST_DISABLED", vec![text(&hosts[0]).to_owned()])
    );
    assert_eq!(t.get("VM", "power_state", &vm), s("Suspended"));
}

#[test]
fn start_on_refuses_a_host_without_enough_memory() {
    let t = T::new(false);
    let hosts = t.hosts();
    let vm = t.vm("app-01");
    t.ok(
        "VM.set_memory_limits",
        vec![
            vm.clone(),
            Value::Int(GIB),
            Value::Int(70 * GIB),
            Value::Int(70 * GIB),
            Value::Int(70 * GIB),
        ],
    );
    let needed = 70 * GIB + t.get("VM", "memory_overhead", &vm).as_i64().unwrap();
    let available = t.free(&hosts[0]);
    assert!(available < needed);
    let e = t.err("VM.start_on", start_on_args(&vm, &hosts[0]));
    assert_eq!(e.code, "HOST_NOT_ENOUGH_FREE_MEMORY");
    assert_eq!(e.params, vec![needed.to_string(), available.to_string()]);
    assert_eq!(t.get("VM", "power_state", &vm), s("Halted"));
    // No host has room: a plain start fails the same way on the host it would pick.
    let e = t.err(
        "VM.start",
        vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
    );
    assert_eq!(e.code, "HOST_NOT_ENOUGH_FREE_MEMORY");
    assert_eq!(e.params[0], needed.to_string());
    let frees: Vec<String> = hosts.iter().map(|h| t.free(h).to_string()).collect();
    assert!(frees.contains(&e.params[1]), "{e}");
    // Shrunk to what only host 1 can hold after host 2 fills up, a plain start picks host 1.
    let fill = t.free(&hosts[1]) - GIB;
    let filler = t.vm("build-01");
    t.ok(
        "VM.set_memory_limits",
        vec![
            filler.clone(),
            Value::Int(GIB),
            Value::Int(fill),
            Value::Int(GIB),
            Value::Int(GIB),
        ],
    );
    t.ok("VM.start_on", start_on_args(&filler, &hosts[1]));
    t.ok(
        "VM.set_memory_dynamic_range",
        vec![filler.clone(), Value::Int(fill), Value::Int(fill)],
    );
    t.ok(
        "VM.set_memory_limits",
        vec![
            vm.clone(),
            Value::Int(GIB),
            Value::Int(2 * GIB),
            Value::Int(2 * GIB),
            Value::Int(2 * GIB),
        ],
    );
    assert!(t.free(&hosts[1]) < 2 * GIB);
    t.ok(
        "VM.start",
        vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
    );
    assert_eq!(t.get("VM", "resident_on", &vm), hosts[0]);
}

#[test]
fn plain_start_and_resume_skip_a_disabled_host() {
    for off in 0..2 {
        let t = T::new(false);
        let hosts = t.hosts();
        let on = &hosts[1 - off];
        let vm = t.vm("app-01");
        t.ok("host.disable", vec![hosts[off].clone()]);
        t.ok(
            "VM.start",
            vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
        );
        assert_eq!(&t.get("VM", "resident_on", &vm), on);
        t.ok("VM.suspend", vec![vm.clone()]);
        t.ok(
            "VM.resume",
            vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
        );
        assert_eq!(&t.get("VM", "resident_on", &vm), on);
        t.ok("VM.hard_shutdown", vec![vm.clone()]);
        // No enabled host left: xapi's NO_HOSTS_AVAILABLE, without parameters.
        t.ok("host.disable", vec![on.clone()]);
        let e = t.err(
            "VM.start",
            vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
        );
        assert_eq!((e.code.as_str(), e.params.len()), ("NO_HOSTS_AVAILABLE", 0));
    }
}

#[test]
fn plain_start_picks_a_host_that_sees_the_disks() {
    let t = T::new(false);
    let hosts = t.hosts();
    // build-01's disk is on host 2's local SR.
    let vm = t.vm("build-01");
    for _ in 0..2 {
        t.ok(
            "VM.start",
            vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
        );
        assert_eq!(t.get("VM", "resident_on", &vm), hosts[1]);
        t.ok("VM.hard_shutdown", vec![vm.clone()]);
    }
    t.ok("host.disable", vec![hosts[1].clone()]);
    let e = t.err(
        "VM.start",
        vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
    );
    assert_eq!(e.code, "NO_HOSTS_AVAILABLE");
}

#[test]
fn async_evacuate_through_the_client() {
    let t = T::new(true);
    let (user, password) = t.sim.credentials();
    let config = ClientConfig::new(t.sim.url())
        .with_protocol(Protocol::JsonRpcV2)
        .with_plain_http(true)
        .with_call_timeout(Duration::from_secs(10));
    let c = Client::connect(config, &user, password.as_str()).unwrap();
    let hosts = t.hosts();
    let h0 = Ref::<Host>::new(text(&hosts[0]));
    let task = c.call_async(Host::evacuate(&h0, None, None)).unwrap();
    // While pending, the host shows the operation.
    let ops = t.get("host", "current_operations", &hosts[0]);
    let Value::Struct(ops) = ops else { panic!() };
    assert_eq!(ops.0.len(), 1);
    assert_eq!(ops.0[0].1, s("evacuate"));
    task.wait(Duration::from_secs(10)).unwrap();
    assert!(t.guests_on(&hosts[0]).is_empty());
    assert_eq!(
        t.get("host", "current_operations", &hosts[0]),
        Value::Struct(Struct::new())
    );
    // A failing evacuation fails its task with xapi's error.
    let h1 = Ref::<Host>::new(text(&hosts[1]));
    c.call_value("host.disable", vec![s(text(&hosts[0]))])
        .unwrap();
    let task = c.call_async(Host::evacuate(&h1, None, None)).unwrap();
    let e = task.wait(Duration::from_secs(10)).unwrap_err();
    assert_eq!(e.api_code(), Some("NO_HOSTS_AVAILABLE"), "{e}");
}

#[test]
fn migrate_send_within_the_pool_moves_disks_and_nics() {
    let t = T::new(false);
    let hosts = t.hosts();
    // A running guest on host 2 whose disk is on host 2's local SR.
    let vm = t
        .guests_on(&hosts[1])
        .into_iter()
        .find(|vm| {
            list(&t.get("VM", "VBDs", vm)).iter().any(|b| {
                let vdi = t.get("VBD", "VDI", b);
                t.get("VBD", "type", b) == s("Disk")
                    && t.get("SR", "shared", &t.get("VDI", "SR", &vdi)) == Value::Bool(false)
            })
        })
        .expect("a guest on local storage");
    let disk_vbd = list(&t.get("VM", "VBDs", &vm))
        .into_iter()
        .find(|b| t.get("VBD", "type", b) == s("Disk"))
        .unwrap();
    let old_vdi = t.get("VBD", "VDI", &disk_vbd);
    let size = t.get("VDI", "virtual_size", &old_vdi);
    let pool = list(&t.ok("pool.get_all", vec![]))[0].clone();
    let shared = t.get("pool", "default_SR", &pool);
    let vif = list(&t.get("VM", "VIFs", &vm))[0].clone();
    let other_net = list(&t.ok("network.get_by_name_label", vec![s("VLAN 30")]))[0].clone();
    let mgmt = t.get(
        "PIF",
        "network",
        &list(&t.get("host", "PIFs", &hosts[0]))[0],
    );
    let dest = t.ok(
        "host.migrate_receive",
        vec![hosts[0].clone(), mgmt, map(&[])],
    );
    assert_eq!(dest.get("host"), Some(&hosts[0]));
    for k in ["SM", "xenops", "master", "session_id"] {
        assert!(dest.get(k).is_some(), "{k}");
    }
    let send = |vdi_map: Value, vif_map: Value| {
        t.call(
            "VM.migrate_send",
            vec![
                vm.clone(),
                dest.clone(),
                Value::Bool(true),
                vdi_map,
                vif_map,
                map(&[]),
            ],
        )
    };
    // Without moving the disk, host 1 cannot see it.
    let e = send(map(&[]), map(&[])).unwrap_err();
    assert_eq!(e.code, "VM_REQUIRES_SR");
    assert_eq!(t.get("VM", "resident_on", &vm), hosts[1]);
    let tok = t.token();
    let r = send(
        map(&[(text(&old_vdi), shared.clone())]),
        map(&[(text(&vif), other_net.clone())]),
    )
    .unwrap();
    assert_eq!(r, vm, "within a pool the VM keeps its ref");
    assert_eq!(t.get("VM", "resident_on", &vm), hosts[0]);
    let new_vdi = t.get("VBD", "VDI", &disk_vbd);
    assert_ne!(new_vdi, old_vdi);
    assert_eq!(t.get("VDI", "SR", &new_vdi), shared);
    assert_eq!(t.get("VDI", "virtual_size", &new_vdi), size);
    assert_eq!(
        t.err("VDI.get_record", vec![old_vdi.clone()]).code,
        "HANDLE_INVALID"
    );
    assert_eq!(t.get("VIF", "network", &vif), other_net);
    let evs = t.events(&["vm", "vdi", "vif"], &tok);
    assert!(evs.contains(&("vm".into(), "mod".into(), vm.clone())));
    assert!(evs.contains(&("vdi".into(), "add".into(), new_vdi.clone())));
    assert!(evs.contains(&("vdi".into(), "del".into(), old_vdi.clone())));
    assert!(evs.contains(&("vif".into(), "mod".into(), vif.clone())));

    // Another pool is out of reach of the simulator.
    let far = map(&[("host", s("OpaqueRef:00000000-0000-0000-0000-00000000abcd"))]);
    let e = t
        .call(
            "VM.migrate_send",
            vec![
                vm.clone(),
                far,
                Value::Bool(true),
                map(&[]),
                map(&[]),
                map(&[]),
            ],
        )
        .unwrap_err();
    assert_eq!(e.code, "VM_MIGRATE_CONTACT_REMOTE_SERVICE_FAILED");
    // A paused VM cannot be migrated, and says so in its allowed operations.
    let allowed = |vm: &Value| list(&t.get("VM", "allowed_operations", vm));
    assert!(allowed(&vm).contains(&s("migrate_send")));
    assert!(allowed(&vm).contains(&s("pool_migrate")));
    t.ok("VM.pause", vec![vm.clone()]);
    assert!(!allowed(&vm).contains(&s("migrate_send")));
    let e = send(map(&[]), map(&[])).unwrap_err();
    assert_eq!(e.code, "VM_BAD_POWER_STATE");
}

#[test]
fn sr_create_forget_destroy_and_pbds() {
    let t = T::new(false);
    let hosts = t.hosts();
    let create = |ty: &str, shared: bool| {
        t.call(
            "SR.create",
            vec![
                hosts[0].clone(),
                map(&[("server", s("192.0.2.60")), ("serverpath", s("/srv"))]),
                Value::Int(100 * GIB),
                s(&format!("new {ty}")),
                s("made by a test"),
                s(ty),
                s("user"),
                Value::Bool(shared),
                map(&[]),
            ],
        )
    };
    let e = create("xyz", true).unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.params.clone()),
        ("SR_UNKNOWN_DRIVER", vec!["xyz".to_owned()])
    );

    let tok = t.token();
    let sr = create("nfs", true).unwrap();
    let rec = t.ok("SR.get_record", vec![sr.clone()]);
    assert_eq!(rec.get("name_label"), Some(&s("new nfs")));
    assert_eq!(rec.get("type"), Some(&s("nfs")));
    assert_eq!(rec.get("content_type"), Some(&s("user")));
    assert_eq!(rec.get("shared"), Some(&Value::Bool(true)));
    assert_eq!(rec.get("physical_size"), Some(&Value::Int(100 * GIB)));
    let pbds = list(rec.get("PBDs").unwrap());
    assert_eq!(
        pbds.len(),
        hosts.len(),
        "a shared SR is plugged on every host"
    );
    let mut pbd_hosts: Vec<Value> = pbds.iter().map(|p| t.get("PBD", "host", p)).collect();
    pbd_hosts.sort_by_key(|h| t.get("host", "name_label", h).as_str().unwrap().to_owned());
    assert_eq!(pbd_hosts, hosts);
    for p in &pbds {
        assert_eq!(t.get("PBD", "currently_attached", p), Value::Bool(true));
        assert_eq!(
            t.get("PBD", "device_config", p).get("serverpath"),
            Some(&s("/srv"))
        );
    }
    let evs = t.events(&["sr", "pbd", "host"], &tok);
    assert!(evs.contains(&("sr".into(), "add".into(), sr.clone())));
    for p in &pbds {
        assert!(evs.contains(&("pbd".into(), "add".into(), p.clone())));
    }

    let local = create("ext", false).unwrap();
    let local_pbds = list(&t.get("SR", "PBDs", &local));
    assert_eq!(
        local_pbds.len(),
        1,
        "a local SR is plugged on its host only"
    );
    assert_eq!(t.get("PBD", "host", &local_pbds[0]), hosts[0]);

    // Plugged SRs cannot go; unplugged they can.
    let e = t.err("SR.forget", vec![sr.clone()]);
    assert_eq!(
        (e.code.as_str(), e.params.clone()),
        ("SR_HAS_PBD", vec![text(&sr).to_owned()])
    );
    t.ok("PBD.unplug", vec![pbds[0].clone()]);
    assert_eq!(t.err("SR.destroy", vec![sr.clone()]).code, "SR_HAS_PBD");
    for p in &pbds {
        t.ok("PBD.unplug", vec![p.clone()]);
    }
    let vdi = t.ok(
        "VDI.create",
        vec![map(&[
            ("SR", sr.clone()),
            ("virtual_size", Value::Int(GIB)),
            ("type", s("user")),
            ("sharable", Value::Bool(false)),
            ("read_only", Value::Bool(false)),
            ("other_config", map(&[])),
            ("name_label", s("d")),
        ])],
    );
    let tok = t.token();
    t.ok("SR.forget", vec![sr.clone()]);
    let evs = t.events(&["sr", "pbd", "vdi"], &tok);
    assert!(evs.contains(&("sr".into(), "del".into(), sr.clone())));
    assert!(evs.contains(&("vdi".into(), "del".into(), vdi.clone())));
    for p in &pbds {
        assert!(evs.contains(&("pbd".into(), "del".into(), p.clone())));
    }
    for gone in [("SR", &sr), ("PBD", &pbds[0]), ("VDI", &vdi)] {
        assert_eq!(
            t.err(&format!("{}.get_record", gone.0), vec![gone.1.clone()])
                .code,
            "HANDLE_INVALID"
        );
    }
    assert!(!list(&t.get("host", "PBDs", &hosts[0])).contains(&pbds[0]));

    t.ok(
        "SR.add_to_other_config",
        vec![local.clone(), s("indestructible"), s("true")],
    );
    t.ok("PBD.unplug", vec![local_pbds[0].clone()]);
    assert_eq!(
        t.err("SR.destroy", vec![local.clone()]).code,
        "SR_INDESTRUCTIBLE"
    );
    t.ok(
        "SR.remove_from_other_config",
        vec![local.clone(), s("indestructible")],
    );
    t.ok("PBD.plug", vec![local_pbds[0].clone()]);
    assert_eq!(
        t.get("PBD", "currently_attached", &local_pbds[0]),
        Value::Bool(true)
    );
    t.ok("PBD.unplug", vec![local_pbds[0].clone()]);
    t.ok("SR.destroy", vec![local.clone()]);
    assert_eq!(t.err("SR.get_record", vec![local]).code, "HANDLE_INVALID");
}

#[test]
fn pbd_unplug_refuses_while_running_guests_use_the_sr() {
    let t = T::new(false);
    let hosts = t.hosts();
    let pool = list(&t.ok("pool.get_all", vec![]))[0].clone();
    let shared = t.get("pool", "default_SR", &pool);
    let pbd = list(&t.get("SR", "PBDs", &shared))
        .into_iter()
        .find(|p| t.get("PBD", "host", p) == hosts[0])
        .unwrap();
    let e = t.err("PBD.unplug", vec![pbd.clone()]);
    assert_eq!(e.code, "VDI_IN_USE");
    for vdi in &e.params {
        assert_eq!(t.get("VDI", "SR", &s(vdi)), shared);
    }
    assert_eq!(t.get("PBD", "currently_attached", &pbd), Value::Bool(true));
}
