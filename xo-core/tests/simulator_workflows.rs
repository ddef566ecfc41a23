//! Workflows with xapi's state machine and errors, in-process.
#![cfg(feature = "simulator")]

use xo_core::model::{ApiFailure, Struct, Value};
use xo_core::simulator::{SimConfig, Simulator};

fn s(v: &str) -> Value {
    Value::from(v)
}

struct T {
    sim: Simulator,
    sess: Value,
}

impl T {
    fn new() -> T {
        let sim = Simulator::start(SimConfig {
            serve: false,
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
    fn vm(&self, name: &str) -> Value {
        self.ok("VM.get_by_name_label", vec![s(name)])
            .as_array()
            .unwrap()[0]
            .clone()
    }
    fn get(&self, class: &str, field: &str, r: &Value) -> Value {
        self.ok(&format!("{class}.get_{field}"), vec![r.clone()])
    }
    fn rec(&self, class: &str, r: &Value) -> Value {
        self.ok(&format!("{class}.get_record"), vec![r.clone()])
    }
}

fn ops(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn vm_power_cycle() {
    let t = T::new();
    let vm = t.vm("build-01");
    assert_eq!(t.get("VM", "power_state", &vm), s("Halted"));
    assert!(ops(&t.get("VM", "allowed_operations", &vm)).contains(&"start".to_owned()));
    let e = t.err("VM.clean_shutdown", vec![vm.clone()]);
    assert_eq!(e.code, "VM_BAD_POWER_STATE");
    assert_eq!(
        e.params,
        vec![
            vm.as_str().unwrap().to_owned(),
            "running".into(),
            "halted".into()
        ]
    );

    t.ok(
        "VM.start",
        vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
    );
    let rec = t.rec("VM", &vm);
    assert_eq!(rec.get("power_state"), Some(&s("Running")));
    let host = rec.get("resident_on").unwrap().clone();
    assert!(t
        .get("host", "resident_VMs", &host)
        .as_array()
        .unwrap()
        .contains(&vm));
    let domid = rec.get("domid").unwrap().as_i64().unwrap();
    assert!(domid > 0);
    let metrics = rec.get("metrics").unwrap().clone();
    let m = t.rec("VM_metrics", &metrics);
    assert_eq!(m.get("memory_actual"), rec.get("memory_dynamic_max"));
    assert_eq!(m.get("VCPUs_number"), rec.get("VCPUs_at_startup"));
    assert_ne!(
        m.get("start_time").unwrap(),
        &Value::DateTime(xo_core::model::DateTime::epoch())
    );
    let allowed = ops(rec.get("allowed_operations").unwrap());
    assert!(
        allowed.contains(&"clean_shutdown".to_owned()) && !allowed.contains(&"start".to_owned())
    );
    let e = t.err(
        "VM.start",
        vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
    );
    assert_eq!(e.params[1..], ["halted".to_owned(), "running".to_owned()]);

    t.ok("VM.pause", vec![vm.clone()]);
    assert_eq!(t.get("VM", "power_state", &vm), s("Paused"));
    assert_eq!(t.err("VM.suspend", vec![vm.clone()]).params[2], "paused");
    t.ok("VM.unpause", vec![vm.clone()]);
    t.ok("VM.clean_reboot", vec![vm.clone()]);
    assert!(t.get("VM", "domid", &vm).as_i64().unwrap() > domid);
    t.ok("VM.hard_reboot", vec![vm.clone()]);

    t.ok("VM.suspend", vec![vm.clone()]);
    assert_eq!(t.get("VM", "power_state", &vm), s("Suspended"));
    assert_eq!(t.get("VM", "resident_on", &vm), s("OpaqueRef:NULL"));
    let sv = t.get("VM", "suspend_VDI", &vm);
    assert_eq!(t.get("VDI", "type", &sv), s("suspend"));
    assert_eq!(t.err("VM.unpause", vec![vm.clone()]).params[1], "paused");
    t.ok(
        "VM.resume",
        vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
    );
    assert_eq!(t.get("VM", "power_state", &vm), s("Running"));
    assert_eq!(
        t.call("VDI.get_record", vec![sv]).unwrap_err().code,
        "HANDLE_INVALID"
    );

    let e = t.err("VM.hard_shutdown", vec![s("OpaqueRef:nope")]);
    assert_eq!(e.code, "HANDLE_INVALID");
    t.ok("VM.hard_shutdown", vec![vm.clone()]);
    let rec = t.rec("VM", &vm);
    assert_eq!(rec.get("power_state"), Some(&s("Halted")));
    assert_eq!(rec.get("domid"), Some(&Value::Int(-1)));
    assert_eq!(
        t.get("VM_metrics", "memory_actual", &metrics),
        Value::Int(0)
    );
    assert!(!t
        .get("host", "resident_VMs", &host)
        .as_array()
        .unwrap()
        .contains(&vm));
    let e = t.err("VM.hard_shutdown", vec![vm.clone()]);
    assert_eq!(e.params[1], "paused, suspended, running");

    // start_on a chosen host; then shutdown (clean).
    let hosts = t.ok("host.get_all", vec![]);
    let h2 = hosts.as_array().unwrap()[1].clone();
    t.ok(
        "VM.start_on",
        vec![
            vm.clone(),
            h2.clone(),
            Value::Bool(true),
            Value::Bool(false),
        ],
    );
    assert_eq!(t.get("VM", "power_state", &vm), s("Paused"));
    assert_eq!(t.get("VM", "resident_on", &vm), h2);
    t.ok("VM.unpause", vec![vm.clone()]);
    t.ok("VM.clean_shutdown", vec![vm.clone()]);
    assert_eq!(
        t.err(
            "VM.start_on",
            vec![
                vm.clone(),
                s("OpaqueRef:x"),
                Value::Bool(false),
                Value::Bool(false)
            ]
        )
        .code,
        "HANDLE_INVALID"
    );
}

#[test]
fn templates_snapshots_and_copies() {
    let t = T::new();
    let tpl = t.vm("Debian Bullseye 11");
    let e = t.err(
        "VM.start",
        vec![tpl.clone(), Value::Bool(false), Value::Bool(false)],
    );
    assert_eq!(
        (e.code.as_str(), e.params[1].as_str()),
        ("VM_IS_TEMPLATE", "start")
    );
    assert_eq!(
        t.err("VM.destroy", vec![tpl.clone()]).code,
        "VM_IS_TEMPLATE"
    );
    // The XO way to create a VM: clone the template, provision, unmark template.
    let vm = t.ok("VM.clone", vec![tpl.clone(), s("new-vm")]);
    assert_eq!(t.get("VM", "is_a_template", &vm), Value::Bool(true));
    assert!(t
        .get("VM", "other_config", &vm)
        .get("default_template")
        .is_none());
    t.ok("VM.provision", vec![vm.clone()]);
    t.ok("VM.set_is_a_template", vec![vm.clone(), Value::Bool(false)]);
    let vbds = t.get("VM", "VBDs", &vm);
    assert_eq!(vbds.as_array().unwrap().len(), 1);
    let vdi = t.get("VBD", "VDI", &vbds.as_array().unwrap()[0]);
    assert_eq!(t.get("VDI", "virtual_size", &vdi), Value::Int(10 << 30));
    assert!(t
        .get("VDI", "VBDs", &vdi)
        .as_array()
        .unwrap()
        .contains(&vbds.as_array().unwrap()[0]));
    t.ok(
        "VM.start",
        vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
    );

    // Snapshot of a running VM: a template-flagged snapshot pointing back.
    let snap = t.ok("VM.snapshot", vec![vm.clone(), s("snap-1")]);
    let rec = t.rec("VM", &snap);
    assert_eq!(rec.get("is_a_snapshot"), Some(&Value::Bool(true)));
    assert_eq!(rec.get("snapshot_of"), Some(&vm));
    assert_eq!(rec.get("power_state"), Some(&s("Halted")));
    assert!(t
        .get("VM", "snapshots", &vm)
        .as_array()
        .unwrap()
        .contains(&snap));
    let svdi = t.get(
        "VBD",
        "VDI",
        &rec.get("VBDs").unwrap().as_array().unwrap()[0],
    );
    assert_eq!(t.get("VDI", "snapshot_of", &svdi), vdi);
    assert_eq!(t.get("VDI", "is_a_snapshot", &svdi), Value::Bool(true));
    assert_eq!(
        t.err(
            "VM.start",
            vec![snap.clone(), Value::Bool(false), Value::Bool(false)]
        )
        .code,
        "VM_IS_SNAPSHOT"
    );

    // Clone needs a halted VM.
    let e = t.err("VM.clone", vec![vm.clone(), s("x")]);
    assert_eq!(
        (e.code.as_str(), e.params[1].as_str(), e.params[2].as_str()),
        ("VM_BAD_POWER_STATE", "halted, suspended", "running")
    );
    assert_eq!(
        t.err("VM.destroy", vec![vm.clone()]).code,
        "VM_BAD_POWER_STATE"
    );
    t.ok("VM.hard_shutdown", vec![vm.clone()]);

    // Copy to another SR: new disks there.
    let srs = t.ok(
        "SR.get_by_name_label",
        vec![s("Local storage on xcp-ng-02")],
    );
    let sr = srs.as_array().unwrap()[0].clone();
    let cp = t.ok("VM.copy", vec![vm.clone(), s("copy-1"), sr.clone()]);
    let cvbd = t.get("VM", "VBDs", &cp).as_array().unwrap()[0].clone();
    let cvdi = t.get("VBD", "VDI", &cvbd);
    assert_eq!(t.get("VDI", "SR", &cvdi), sr);
    assert_ne!(cvdi, vdi);
    assert_eq!(t.get("VM", "name_label", &cp), s("copy-1"));
    let vifs_before = t.get("VM", "VIFs", &vm).as_array().unwrap().len();
    assert_eq!(
        t.get("VM", "VIFs", &cp).as_array().unwrap().len(),
        vifs_before
    );

    // Destroy removes devices but keeps disks.
    let metrics = t.get("VM", "metrics", &cp);
    t.ok("VM.destroy", vec![cp.clone()]);
    assert_eq!(t.err("VM.get_record", vec![cp]).code, "HANDLE_INVALID");
    assert_eq!(t.err("VBD.get_record", vec![cvbd]).code, "HANDLE_INVALID");
    assert_eq!(
        t.err("VM_metrics.get_record", vec![metrics]).code,
        "HANDLE_INVALID"
    );
    t.ok("VDI.get_record", vec![cvdi.clone()]);
    assert_eq!(t.get("VDI", "VBDs", &cvdi), Value::Array(vec![]));
}

#[test]
fn memory_and_vcpus() {
    let t = T::new();
    let vm = t.vm("build-01");
    const G: i64 = 1 << 30;
    let lim = |a: i64, b: i64, c: i64, d: i64| {
        vec![
            vm.clone(),
            Value::Int(a),
            Value::Int(b),
            Value::Int(c),
            Value::Int(d),
        ]
    };
    t.ok("VM.set_memory_limits", lim(G, 4 * G, 2 * G, 3 * G));
    let rec = t.rec("VM", &vm);
    assert_eq!(rec.get("memory_static_max"), Some(&Value::Int(4 * G)));
    assert_eq!(rec.get("memory_dynamic_min"), Some(&Value::Int(2 * G)));
    let e = t.err("VM.set_memory_limits", lim(G, 2 * G, 3 * G, 3 * G));
    assert_eq!(e.code, "MEMORY_CONSTRAINT_VIOLATION");
    t.ok(
        "VM.set_memory_static_range",
        vec![vm.clone(), Value::Int(G), Value::Int(8 * G)],
    );
    t.ok("VM.set_memory", vec![vm.clone(), s("2147483648")]);
    assert_eq!(t.get("VM", "memory_dynamic_max", &vm), Value::Int(2 * G));
    t.ok("VM.set_VCPUs_max", vec![vm.clone(), Value::Int(4)]);
    t.ok("VM.set_VCPUs_at_startup", vec![vm.clone(), Value::Int(3)]);
    assert_eq!(
        t.err("VM.set_VCPUs_at_startup", vec![vm.clone(), Value::Int(5)])
            .code,
        "INVALID_VALUE"
    );
    assert_eq!(
        t.err("VM.set_VCPUs_max", vec![vm.clone(), Value::Int(2)])
            .code,
        "INVALID_VALUE"
    );
    assert_eq!(
        t.err("VM.set_VCPUs_number_live", vec![vm.clone(), Value::Int(2)])
            .code,
        "VM_BAD_POWER_STATE"
    );
    t.ok(
        "VM.start",
        vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
    );
    let metrics = t.get("VM", "metrics", &vm);
    assert_eq!(t.get("VM_metrics", "VCPUs_number", &metrics), Value::Int(3));
    assert_eq!(
        t.err("VM.set_memory_limits", lim(G, 4 * G, 2 * G, 3 * G))
            .code,
        "VM_BAD_POWER_STATE"
    );
    assert_eq!(
        t.err("VM.set_VCPUs_max", vec![vm.clone(), Value::Int(8)])
            .code,
        "VM_BAD_POWER_STATE"
    );
    t.ok(
        "VM.set_memory_dynamic_range",
        vec![vm.clone(), Value::Int(G), Value::Int(G + G / 2)],
    );
    assert_eq!(
        t.get("VM_metrics", "memory_actual", &metrics),
        Value::Int(G + G / 2)
    );
    t.ok("VM.set_VCPUs_number_live", vec![vm.clone(), Value::Int(4)]);
    assert_eq!(t.get("VM_metrics", "VCPUs_number", &metrics), Value::Int(4));
    assert_eq!(
        t.err("VM.set_VCPUs_number_live", vec![vm.clone(), Value::Int(9)])
            .code,
        "INVALID_VALUE"
    );
}

fn record(pairs: &[(&str, Value)]) -> Value {
    let mut s = Struct::new();
    for (k, v) in pairs {
        s.insert(*k, v.clone());
    }
    Value::Struct(s)
}

#[test]
fn vif_vbd_vdi() {
    let t = T::new();
    let vm = t.vm("build-01");
    let net = t
        .ok("network.get_by_name_label", vec![s("VLAN 30")])
        .as_array()
        .unwrap()[0]
        .clone();
    let vif = t.ok(
        "VIF.create",
        vec![record(&[
            ("device", s("1")),
            ("network", net.clone()),
            ("VM", vm.clone()),
            ("MAC", s("")),
            ("MTU", s("1500")),
        ])],
    );
    assert!(t.get("VM", "VIFs", &vm).as_array().unwrap().contains(&vif));
    assert!(t
        .get("network", "VIFs", &net)
        .as_array()
        .unwrap()
        .contains(&vif));
    assert_eq!(t.get("VIF", "MAC", &vif).as_str().unwrap().len(), 17);
    let e = t.err(
        "VIF.create",
        vec![record(&[
            ("device", s("1")),
            ("network", net.clone()),
            ("VM", vm.clone()),
        ])],
    );
    assert_eq!(
        (e.code.as_str(), e.params[0].as_str()),
        ("DEVICE_ALREADY_EXISTS", "1")
    );
    assert_eq!(
        t.err(
            "VIF.create",
            vec![record(&[
                ("device", s("2")),
                ("network", net.clone()),
                ("VM", s("OpaqueRef:x"))
            ])]
        )
        .code,
        "HANDLE_INVALID"
    );
    assert_eq!(
        t.err("VIF.plug", vec![vif.clone()]).code,
        "VM_BAD_POWER_STATE"
    );
    t.ok(
        "VM.start",
        vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
    );
    assert_eq!(t.get("VIF", "currently_attached", &vif), Value::Bool(true));
    assert_eq!(
        t.err("VIF.plug", vec![vif.clone()]).code,
        "DEVICE_ALREADY_ATTACHED"
    );
    assert_eq!(
        t.err("VIF.destroy", vec![vif.clone()]).code,
        "OPERATION_NOT_ALLOWED"
    );
    t.ok("VIF.unplug", vec![vif.clone()]);
    assert_eq!(
        t.err("VIF.unplug", vec![vif.clone()]).code,
        "DEVICE_ALREADY_DETACHED"
    );
    t.ok("VIF.destroy", vec![vif.clone()]);
    assert!(!t.get("VM", "VIFs", &vm).as_array().unwrap().contains(&vif));
    assert!(!t
        .get("network", "VIFs", &net)
        .as_array()
        .unwrap()
        .contains(&vif));

    // A new disk, hot-plugged.
    let sr = t
        .ok("SR.get_by_name_label", vec![s("NFS VM storage")])
        .as_array()
        .unwrap()[0]
        .clone();
    let before = t.get("SR", "virtual_allocation", &sr).as_i64().unwrap();
    let vdi = t.ok(
        "VDI.create",
        vec![record(&[
            ("name_label", s("data")),
            ("SR", sr.clone()),
            ("virtual_size", s("1073741824")),
            ("type", s("user")),
            ("sharable", Value::Bool(false)),
            ("read_only", Value::Bool(false)),
            ("other_config", record(&[])),
        ])],
    );
    assert!(t.get("SR", "VDIs", &sr).as_array().unwrap().contains(&vdi));
    assert_eq!(
        t.get("SR", "virtual_allocation", &sr).as_i64().unwrap(),
        before + (1 << 30)
    );
    assert_eq!(
        t.err(
            "VDI.create",
            vec![record(&[
                ("SR", s("OpaqueRef:x")),
                ("virtual_size", Value::Int(1))
            ])]
        )
        .code,
        "HANDLE_INVALID"
    );
    let vbd = t.ok(
        "VBD.create",
        vec![record(&[
            ("VM", vm.clone()),
            ("VDI", vdi.clone()),
            ("userdevice", s("autodetect")),
            ("type", s("Disk")),
            ("mode", s("RW")),
            ("bootable", Value::Bool(false)),
            ("empty", Value::Bool(false)),
        ])],
    );
    assert_eq!(t.get("VBD", "userdevice", &vbd), s("1"));
    assert!(t
        .get("VDI", "VBDs", &vdi)
        .as_array()
        .unwrap()
        .contains(&vbd));
    t.ok("VBD.plug", vec![vbd.clone()]);
    assert_eq!(t.err("VDI.destroy", vec![vdi.clone()]).code, "VDI_IN_USE");
    assert_eq!(
        t.err("VBD.destroy", vec![vbd.clone()]).code,
        "OPERATION_NOT_ALLOWED"
    );
    t.ok("VBD.unplug", vec![vbd.clone()]);
    t.ok("VBD.destroy", vec![vbd.clone()]);
    t.ok("VDI.destroy", vec![vdi.clone()]);
    assert_eq!(
        t.get("SR", "virtual_allocation", &sr).as_i64().unwrap(),
        before
    );
    let e = t.err(
        "VBD.create",
        vec![record(&[
            ("VM", vm.clone()),
            ("VDI", s("OpaqueRef:NULL")),
            ("userdevice", s("3")),
            ("type", s("CD")),
            ("mode", s("RO")),
            ("bootable", Value::Bool(false)),
            ("empty", Value::Bool(true)),
        ])],
    );
    assert_eq!(e.code, "DEVICE_ALREADY_EXISTS");

    // The CD drive: insert the tools ISO, eject it.
    let cd = t
        .get("VM", "VBDs", &vm)
        .as_array()
        .unwrap()
        .iter()
        .find(|b| t.get("VBD", "type", b) == s("CD"))
        .unwrap()
        .clone();
    let iso = t
        .ok("VDI.get_by_name_label", vec![s("guest-tools.iso")])
        .as_array()
        .unwrap()[0]
        .clone();
    assert_eq!(t.err("VBD.eject", vec![cd.clone()]).code, "VBD_IS_EMPTY");
    t.ok("VBD.insert", vec![cd.clone(), iso.clone()]);
    assert_eq!(t.get("VBD", "VDI", &cd), iso);
    assert_eq!(
        t.err("VBD.insert", vec![cd.clone(), iso.clone()]).code,
        "VBD_NOT_EMPTY"
    );
    t.ok("VBD.eject", vec![cd.clone()]);
    assert_eq!(t.get("VBD", "empty", &cd), Value::Bool(true));

    let snap = t.ok(
        "VDI.snapshot",
        vec![t.get(
            "VBD",
            "VDI",
            &t.get("VM", "VBDs", &vm)
                .as_array()
                .unwrap()
                .iter()
                .find(|b| t.get("VBD", "type", b) == s("Disk"))
                .unwrap()
                .clone(),
        )],
    );
    assert_eq!(t.get("VDI", "is_a_snapshot", &snap), Value::Bool(true));
    let clone = t.ok("VDI.clone", vec![snap.clone(), record(&[])]);
    assert_eq!(t.get("VDI", "is_a_snapshot", &clone), Value::Bool(false));
}

#[test]
fn networks_vlans_bonds_and_pifs() {
    let t = T::new();
    let net = t.ok(
        "network.create",
        vec![record(&[
            ("name_label", s("VLAN 40")),
            ("name_description", s("")),
            ("MTU", Value::Int(1500)),
            ("other_config", record(&[])),
        ])],
    );
    assert!(t
        .get("network", "bridge", &net)
        .as_str()
        .unwrap()
        .starts_with("xapi"));
    let pifs = t.ok("pool.create_VLAN", vec![s("eth1"), net.clone(), s("40")]);
    let pifs = pifs.as_array().unwrap();
    assert_eq!(pifs.len(), 2);
    for p in pifs {
        assert_eq!(t.get("PIF", "VLAN", p), Value::Int(40));
        let vlan = t.get("PIF", "VLAN_master_of", p);
        let tagged = t.get("VLAN", "tagged_PIF", &vlan);
        assert_eq!(t.get("PIF", "device", &tagged), s("eth1"));
        assert!(t
            .get("PIF", "VLAN_slave_of", &tagged)
            .as_array()
            .unwrap()
            .contains(&vlan));
    }
    assert_eq!(t.get("network", "PIFs", &net).as_array().unwrap().len(), 2);
    let e = t.err(
        "pool.create_VLAN",
        vec![s("eth1"), net.clone(), Value::Int(40)],
    );
    assert_eq!(
        (e.code.as_str(), e.params[0].as_str()),
        ("PIF_VLAN_EXISTS", "eth1")
    );
    assert_eq!(
        t.err(
            "pool.create_VLAN",
            vec![s("eth1"), net.clone(), Value::Int(5000)]
        )
        .params,
        vec!["5000".to_owned()]
    );
    assert_eq!(
        t.err(
            "pool.create_VLAN",
            vec![s("eth9"), net.clone(), Value::Int(41)]
        )
        .code,
        "PIF_DEVICE_NOT_FOUND"
    );
    let e = t.err(
        "VLAN.create",
        vec![pifs[0].clone(), Value::Int(41), net.clone()],
    );
    assert_eq!(e.code, "PIF_IS_VLAN");
    assert_eq!(
        t.err("network.destroy", vec![net.clone()]).code,
        "NETWORK_CONTAINS_PIF"
    );
    for p in pifs {
        let vlan = t.get("PIF", "VLAN_master_of", p);
        t.ok("VLAN.destroy", vec![vlan.clone()]);
        assert_eq!(
            t.err("PIF.get_record", vec![p.clone()]).code,
            "HANDLE_INVALID"
        );
    }
    t.ok("network.destroy", vec![net.clone()]);
    assert_eq!(
        t.err("network.get_record", vec![net]).code,
        "HANDLE_INVALID"
    );

    // A VLAN on one host through VLAN.create.
    let net2 = t.ok(
        "network.create",
        vec![record(&[("name_label", s("VLAN 50"))])],
    );
    let host = t.ok("host.get_all", vec![]).as_array().unwrap()[0].clone();
    let eth1 = t
        .get("host", "PIFs", &host)
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            t.get("PIF", "device", p) == s("eth1") && t.get("PIF", "VLAN", p) == Value::Int(-1)
        })
        .unwrap()
        .clone();
    let vlan = t.ok(
        "VLAN.create",
        vec![eth1.clone(), Value::Int(50), net2.clone()],
    );
    assert_eq!(t.get("VLAN", "tag", &vlan), Value::Int(50));

    // Bond eth0 + eth2 on the first host: management moves to the bond.
    let pifs = t.get("host", "PIFs", &host);
    let by_dev = |d: &str| {
        pifs.as_array()
            .unwrap()
            .iter()
            .find(|p| {
                t.get("PIF", "device", p) == s(d) && t.get("PIF", "VLAN", p) == Value::Int(-1)
            })
            .unwrap()
            .clone()
    };
    let (eth0, eth2) = (by_dev("eth0"), by_dev("eth2"));
    let ip = t.get("PIF", "IP", &eth0);
    let bnet = t.ok(
        "network.create",
        vec![record(&[("name_label", s("Bond 0+2"))])],
    );
    let bond = t.ok(
        "Bond.create",
        vec![
            bnet.clone(),
            Value::Array(vec![eth0.clone(), eth2.clone()]),
            s(""),
            s("active-backup"),
            record(&[]),
        ],
    );
    let master = t.get("Bond", "master", &bond);
    assert_eq!(t.get("Bond", "mode", &bond), s("active-backup"));
    assert_eq!(t.get("Bond", "slaves", &bond).as_array().unwrap().len(), 2);
    assert_eq!(
        t.get("PIF", "bond_master_of", &master),
        Value::Array(vec![bond.clone()])
    );
    assert_eq!(t.get("PIF", "bond_slave_of", &eth0), bond);
    assert_eq!(t.get("PIF", "management", &master), Value::Bool(true));
    assert_eq!(t.get("PIF", "IP", &master), ip);
    assert_eq!(t.get("PIF", "management", &eth0), Value::Bool(false));
    assert_eq!(
        t.err(
            "Bond.create",
            vec![
                bnet.clone(),
                Value::Array(vec![eth0.clone(), eth2.clone()]),
                s("")
            ]
        )
        .code,
        "PIF_ALREADY_BONDED"
    );
    assert_eq!(
        t.err(
            "Bond.create",
            vec![bnet.clone(), Value::Array(vec![eth1.clone()]), s("")]
        )
        .code,
        "PIF_BOND_NEEDS_MORE_MEMBERS"
    );
    t.ok("Bond.destroy", vec![bond.clone()]);
    assert_eq!(t.get("PIF", "management", &eth0), Value::Bool(true));
    assert_eq!(t.get("PIF", "bond_slave_of", &eth0), s("OpaqueRef:NULL"));

    // PIF.reconfigure_ip.
    t.ok(
        "PIF.reconfigure_ip",
        vec![
            eth2.clone(),
            s("Static"),
            s("192.0.2.150"),
            s("255.255.255.128"),
            s(""),
            s(""),
        ],
    );
    assert_eq!(t.get("PIF", "IP", &eth2), s("192.0.2.150"));
    assert_eq!(t.get("PIF", "ip_configuration_mode", &eth2), s("Static"));
    let e = t.err(
        "PIF.reconfigure_ip",
        vec![
            eth2.clone(),
            s("Static"),
            s("300.1.1.1"),
            s("255.255.255.0"),
            s(""),
            s(""),
        ],
    );
    assert_eq!(
        (e.code.as_str(), e.params[0].as_str()),
        ("INVALID_IP_ADDRESS_SPECIFIED", "IP")
    );
    t.ok(
        "PIF.reconfigure_ip",
        vec![eth2.clone(), s("None"), s(""), s(""), s(""), s("")],
    );
    assert_eq!(t.get("PIF", "IP", &eth2), s(""));
    assert_eq!(
        t.err(
            "PIF.reconfigure_ip",
            vec![eth2.clone(), s("Bogus"), s(""), s(""), s(""), s("")]
        )
        .code,
        "FIELD_TYPE_ERROR"
    );
}

#[test]
fn host_time_and_messages() {
    let t = T::new();
    let host = t.ok("host.get_all", vec![]).as_array().unwrap()[0].clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    match t.ok("host.get_servertime", vec![host.clone()]) {
        Value::DateTime(d) => assert!((d.unix() - now).abs() < 5 && d.as_str().ends_with('Z')),
        other => panic!("{other:?}"),
    }
    match t.ok("host.get_server_localtime", vec![host]) {
        Value::DateTime(d) => assert_eq!(d.offset_minutes(), None),
        other => panic!("{other:?}"),
    }
    let vm = t.vm("web-01");
    let uuid = t.get("VM", "uuid", &vm);
    let m = t.ok(
        "message.create",
        vec![s("VM_STARTED"), s("3"), s("VM"), uuid.clone(), s("hello")],
    );
    let all = t.ok("message.get_all_records", vec![]);
    let rec = all.get(m.as_str().unwrap()).unwrap();
    assert_eq!(rec.get("obj_uuid"), Some(&uuid));
    assert_eq!(rec.get("priority"), Some(&Value::Int(3)));
    let since = t.ok(
        "message.get_since",
        vec![Value::DateTime(xo_core::model::DateTime::from_unix(
            now - 60,
        ))],
    );
    assert!(since.get(m.as_str().unwrap()).is_some());
    t.ok("message.destroy", vec![m.clone()]);
    assert!(t
        .ok("message.get_all_records", vec![])
        .get(m.as_str().unwrap())
        .is_none());
    assert_eq!(
        t.err(
            "message.create",
            vec![s("X"), s("1"), s("NotAClass"), s(""), s("")]
        )
        .code,
        "FIELD_TYPE_ERROR"
    );
}

#[test]
fn optional_parameters_default() {
    let t = T::new();
    let host = t.ok("host.get_all", vec![]).as_array().unwrap()[1].clone();
    let pifs = t.get("host", "PIFs", &host);
    let phys: Vec<Value> = pifs
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            // Free NICs: not the management one, not already in the inventory's bond.
            t.get("PIF", "physical", p) == Value::Bool(true)
                && t.get("PIF", "device", p) != s("eth0")
                && t.get("PIF", "bond_slave_of", p) == s("OpaqueRef:NULL")
        })
        .cloned()
        .collect();
    assert_eq!(phys.len(), 2);
    let net = t.ok("network.create", vec![record(&[("name_label", s("bond"))])]);
    // Bond.create without mode and properties (optional in the datamodel).
    let bond = t.ok("Bond.create", vec![net, Value::Array(phys), s("")]);
    assert_eq!(t.get("Bond", "mode", &bond), s("balance-slb"));
    // VM.snapshot without ignore_vdis.
    let vm = t.vm("db-01");
    let snap = t.ok("VM.snapshot", vec![vm, s("s")]);
    assert_eq!(t.get("VM", "is_a_snapshot", &snap), Value::Bool(true));
}

#[test]
fn vm_create_gets_metrics_and_operations() {
    let t = T::new();
    let vm = t.ok(
        "VM.create",
        vec![record(&[
            ("name_label", s("from scratch")),
            ("memory_static_max", s("1073741824")),
            ("memory_dynamic_max", s("1073741824")),
            ("memory_dynamic_min", s("1073741824")),
            ("memory_static_min", s("536870912")),
            ("VCPUs_max", s("1")),
            ("VCPUs_at_startup", s("1")),
            ("power_state", s("Running")),
        ])],
    );
    let rec = t.rec("VM", &vm);
    assert_eq!(rec.get("power_state"), Some(&s("Halted")));
    assert_eq!(rec.get("memory_static_max"), Some(&Value::Int(1 << 30)));
    t.ok(
        "VM_metrics.get_record",
        vec![rec.get("metrics").unwrap().clone()],
    );
    assert!(ops(rec.get("allowed_operations").unwrap()).contains(&"start".to_owned()));
    t.ok(
        "VM.start",
        vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
    );
    assert_eq!(
        t.get(
            "VM_metrics",
            "VCPUs_number",
            &rec.get("metrics").unwrap().clone()
        ),
        Value::Int(1)
    );
}

#[test]
fn pool_migrate_moves_residence() {
    let t = T::new();
    let vm = t.vm("web-01");
    let from = t.get("VM", "resident_on", &vm);
    let hosts = t.ok("host.get_all", vec![]);
    let to = hosts
        .as_array()
        .unwrap()
        .iter()
        .find(|h| **h != from)
        .unwrap()
        .clone();
    t.ok("VM.pool_migrate", vec![vm.clone(), to.clone(), record(&[])]);
    assert_eq!(t.get("VM", "resident_on", &vm), to);
    assert!(t
        .get("host", "resident_VMs", &to)
        .as_array()
        .unwrap()
        .contains(&vm));
    assert!(!t
        .get("host", "resident_VMs", &from)
        .as_array()
        .unwrap()
        .contains(&vm));
    let halted = t.vm("build-01");
    assert_eq!(
        t.err("VM.pool_migrate", vec![halted, to, record(&[])]).code,
        "VM_BAD_POWER_STATE"
    );
}

#[test]
fn checkpoint_and_revert() {
    let t = T::new();
    const G: i64 = 1 << 30;
    let vm = t.vm("build-01");
    let disk_before = |t: &T, vm: &Value| -> Vec<Value> {
        t.get("VM", "VBDs", vm)
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| t.get("VBD", "type", b) == s("Disk"))
            .map(|b| t.get("VBD", "VDI", b))
            .collect()
    };
    let snap = t.ok("VM.snapshot", vec![vm.clone(), s("before")]);
    assert!(ops(&t.get("VM", "allowed_operations", &snap)).contains(&"revert".to_owned()));
    t.ok(
        "VM.set_memory_limits",
        vec![
            vm.clone(),
            Value::Int(G),
            Value::Int(4 * G),
            Value::Int(3 * G),
            Value::Int(4 * G),
        ],
    );
    let old_disks = disk_before(&t, &vm);
    t.ok(
        "VM.start",
        vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
    );
    t.ok("VM.revert", vec![snap.clone()]);
    let rec = t.rec("VM", &vm);
    assert_eq!(rec.get("power_state"), Some(&s("Halted")));
    assert_eq!(
        rec.get("memory_static_max"),
        t.rec("VM", &snap).get("memory_static_max")
    );
    let new_disks = disk_before(&t, &vm);
    assert_eq!(new_disks.len(), old_disks.len());
    assert!(
        new_disks.iter().all(|d| !old_disks.contains(d)),
        "disks are fresh clones of the snapshot's"
    );
    for d in &old_disks {
        assert_eq!(
            t.err("VDI.get_record", vec![d.clone()]).code,
            "HANDLE_INVALID",
            "replaced disks are destroyed"
        );
    }
    assert_eq!(
        t.err("VM.revert", vec![vm.clone()]).code,
        "REVERT_ONLY_ALLOWED_ON_SNAPSHOT"
    );

    // A checkpoint of a running VM keeps its memory: reverting leaves the VM suspended.
    let web = t.vm("web-01");
    assert_eq!(
        t.err("VM.checkpoint", vec![vm.clone(), s("x")]).code,
        "VM_BAD_POWER_STATE"
    );
    let cp = t.ok("VM.checkpoint", vec![web.clone(), s("cp")]);
    assert_eq!(t.get("VM", "power_state", &cp), s("Suspended"));
    assert_eq!(
        t.get("VDI", "type", &t.get("VM", "suspend_VDI", &cp)),
        s("suspend")
    );
    t.ok("VM.revert", vec![cp]);
    assert_eq!(t.get("VM", "power_state", &web), s("Suspended"));
    t.ok(
        "VM.resume",
        vec![web.clone(), Value::Bool(false), Value::Bool(false)],
    );
    assert_eq!(t.get("VM", "power_state", &web), s("Running"));
}
