//! The implicit messages every class answers, driven by the datamodel.
#![cfg(feature = "simulator")]

use xo_core::model::{ApiFailure, Struct, Value};
use xo_core::simulator::{SimConfig, Simulator};

fn s(v: &str) -> Value {
    Value::from(v)
}

fn setup() -> (Simulator, Value) {
    let sim = Simulator::start(SimConfig {
        serve: false,
        ..SimConfig::default()
    })
    .unwrap();
    let (u, p) = sim.credentials();
    let sess = sim
        .dispatch("session.login_with_password", vec![s(&u), s(&p)])
        .unwrap();
    (sim, sess)
}

fn ok(sim: &Simulator, m: &str, p: Vec<Value>) -> Value {
    sim.dispatch(m, p).unwrap_or_else(|e| panic!("{m}: {e}"))
}

fn err(sim: &Simulator, m: &str, p: Vec<Value>) -> ApiFailure {
    sim.dispatch(m, p).expect_err(m)
}

fn classes_with(method: &str) -> Vec<String> {
    let suffix = format!(".{method}");
    Simulator::methods()
        .into_iter()
        .filter(|m| !m.starts_with("Async.") && m.ends_with(&suffix))
        .map(|m| m[..m.len() - suffix.len()].to_owned())
        .collect()
}

#[test]
fn every_class_answers_get_all_and_get_all_records() {
    let (sim, sess) = setup();
    let classes = classes_with("get_all_records");
    // 72 classes; those without a get_all_records in the datamodel (session, event…) excepted.
    assert!(classes.len() >= 60, "{}", classes.len());
    for c in &classes {
        let all = ok(&sim, &format!("{c}.get_all"), vec![sess.clone()]);
        let recs = ok(&sim, &format!("{c}.get_all_records"), vec![sess.clone()]);
        let refs = all.as_array().unwrap();
        let recs = recs.as_struct().unwrap();
        assert_eq!(refs.len(), recs.len(), "{c}");
        for r in refs {
            let rec = recs
                .get(r.as_str().unwrap())
                .unwrap_or_else(|| panic!("{c} record missing"));
            let one = ok(
                &sim,
                &format!("{c}.get_record"),
                vec![sess.clone(), r.clone()],
            );
            assert_eq!(&one, rec, "{c}");
            if let Some(u) = rec.get("uuid") {
                assert_eq!(
                    &ok(
                        &sim,
                        &format!("{c}.get_by_uuid"),
                        vec![sess.clone(), u.clone()]
                    ),
                    r
                );
            }
        }
    }
}

#[test]
fn inventory_has_the_expected_shape() {
    let (sim, sess) = setup();
    let count = |c: &str| {
        ok(&sim, &format!("{c}.get_all"), vec![sess.clone()])
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count("host"), 2);
    assert_eq!(count("pool"), 1);
    assert_eq!(count("VLAN"), 6);
    // Per host: 3 NICs + 3 VLANs; the last host also has eth3, eth4 and their bond0.
    assert_eq!(count("PIF"), 15);
    assert_eq!(count("Bond"), 1);
    let vms = ok(&sim, "VM.get_all_records", vec![sess.clone()]);
    let vms = vms.as_struct().unwrap();
    let templates = vms
        .iter()
        .filter(|(_, r)| r.get("is_a_template") == Some(&Value::Bool(true)))
        .count();
    let dom0 = vms
        .iter()
        .filter(|(_, r)| r.get("is_control_domain") == Some(&Value::Bool(true)))
        .count();
    assert_eq!((templates, dom0), (3, 2));
    let names: Vec<&str> = vms
        .iter()
        .filter_map(|(_, r)| r.get("name_label").and_then(Value::as_str))
        .collect();
    for n in [
        "Debian Bullseye 11",
        "CentOS 7",
        "Windows 10 (64-bit)",
        "web-01",
        "legacy-01",
    ] {
        assert!(names.contains(&n), "{n}");
    }
    let nets = ok(
        &sim,
        "network.get_by_name_label",
        vec![sess.clone(), s("Pool-wide network associated with eth0")],
    );
    assert_eq!(nets.as_array().unwrap().len(), 1);
    // Cross-links hold both ways.
    for (r, rec) in vms.iter() {
        for vif in rec.get("VIFs").unwrap().as_array().unwrap() {
            assert_eq!(
                ok(&sim, "VIF.get_VM", vec![sess.clone(), vif.clone()]),
                s(r)
            );
            let net = ok(&sim, "VIF.get_network", vec![sess.clone(), vif.clone()]);
            let net_vifs = ok(&sim, "network.get_VIFs", vec![sess.clone(), net]);
            assert!(net_vifs.as_array().unwrap().contains(vif));
        }
        let host = rec.get("resident_on").unwrap().clone();
        if rec.get("power_state") == Some(&s("Running")) {
            let resident = ok(&sim, "host.get_resident_VMs", vec![sess.clone(), host]);
            assert!(resident.as_array().unwrap().contains(&s(r)));
        } else {
            assert_eq!(host, s("OpaqueRef:NULL"));
        }
    }
    let vlans = ok(&sim, "VLAN.get_all_records", vec![sess.clone()]);
    for (v, rec) in vlans.as_struct().unwrap().iter() {
        let untagged = rec.get("untagged_PIF").unwrap().clone();
        let tagged = rec.get("tagged_PIF").unwrap().clone();
        assert_eq!(
            ok(
                &sim,
                "PIF.get_VLAN_master_of",
                vec![sess.clone(), untagged.clone()]
            ),
            s(v)
        );
        assert!(ok(
            &sim,
            "PIF.get_VLAN_slave_of",
            vec![sess.clone(), tagged.clone()]
        )
        .as_array()
        .unwrap()
        .contains(&s(v)));
        assert_eq!(
            ok(&sim, "PIF.get_VLAN", vec![sess.clone(), untagged]),
            rec.get("tag").unwrap().clone()
        );
        assert_eq!(
            ok(&sim, "PIF.get_device", vec![sess.clone(), tagged]),
            s("eth1")
        );
    }
    let vdis = ok(
        &sim,
        "VDI.get_by_name_label",
        vec![sess.clone(), s("guest-tools.iso")],
    );
    assert_eq!(vdis.as_array().unwrap().len(), 1);
}

#[test]
fn getters_setters_maps_sets() {
    let (sim, sess) = setup();
    let vm = ok(
        &sim,
        "VM.get_by_name_label",
        vec![sess.clone(), s("build-01")],
    )
    .as_array()
    .unwrap()[0]
        .clone();
    assert_eq!(
        ok(&sim, "VM.get_name_label", vec![sess.clone(), vm.clone()]),
        s("build-01")
    );
    ok(
        &sim,
        "VM.set_name_label",
        vec![sess.clone(), vm.clone(), s("renamed")],
    );
    assert_eq!(
        ok(&sim, "VM.get_name_label", vec![sess.clone(), vm.clone()]),
        s("renamed")
    );
    // Ints arrive as strings over XML-RPC and are accepted.
    ok(
        &sim,
        "VM.set_user_version",
        vec![sess.clone(), vm.clone(), s("7")],
    );
    assert_eq!(
        ok(&sim, "VM.get_user_version", vec![sess.clone(), vm.clone()]),
        Value::Int(7)
    );
    let e = err(
        &sim,
        "VM.set_user_version",
        vec![sess.clone(), vm.clone(), s("seven")],
    );
    assert_eq!(
        (e.code.as_str(), e.params[0].as_str()),
        ("FIELD_TYPE_ERROR", "value")
    );
    let e = err(
        &sim,
        "VM.set_name_label",
        vec![sess.clone(), vm.clone(), Value::Int(3)],
    );
    assert_eq!(e.code, "FIELD_TYPE_ERROR");
    // Enums are matched case-insensitively and stored in canonical spelling.
    ok(
        &sim,
        "VM.set_actions_after_crash",
        vec![sess.clone(), vm.clone(), s("DESTROY")],
    );
    assert_eq!(
        ok(
            &sim,
            "VM.get_actions_after_crash",
            vec![sess.clone(), vm.clone()]
        ),
        s("destroy")
    );
    assert_eq!(
        err(
            &sim,
            "VM.set_actions_after_crash",
            vec![sess.clone(), vm.clone(), s("explode")]
        )
        .code,
        "FIELD_TYPE_ERROR"
    );

    ok(
        &sim,
        "VM.add_to_other_config",
        vec![sess.clone(), vm.clone(), s("k"), s("v")],
    );
    let e = err(
        &sim,
        "VM.add_to_other_config",
        vec![sess.clone(), vm.clone(), s("k"), s("w")],
    );
    assert_eq!(e.code, "MAP_DUPLICATE_KEY");
    assert_eq!(e.params[0], "VM");
    assert_eq!(e.params[1], "other_config");
    assert_eq!(e.params[3], "k");
    let oc = ok(&sim, "VM.get_other_config", vec![sess.clone(), vm.clone()]);
    assert_eq!(oc.get("k"), Some(&s("v")));
    ok(
        &sim,
        "VM.remove_from_other_config",
        vec![sess.clone(), vm.clone(), s("k")],
    );
    assert_eq!(
        ok(&sim, "VM.get_other_config", vec![sess.clone(), vm.clone()]).get("k"),
        None
    );
    let mut m = Struct::new();
    m.insert("a", s("1"));
    ok(
        &sim,
        "VM.set_other_config",
        vec![sess.clone(), vm.clone(), Value::Struct(m.clone())],
    );
    assert_eq!(
        ok(&sim, "VM.get_other_config", vec![sess.clone(), vm.clone()]),
        Value::Struct(m)
    );

    ok(
        &sim,
        "VM.add_tags",
        vec![sess.clone(), vm.clone(), s("blue")],
    );
    ok(
        &sim,
        "VM.add_tags",
        vec![sess.clone(), vm.clone(), s("blue")],
    );
    assert_eq!(
        ok(&sim, "VM.get_tags", vec![sess.clone(), vm.clone()]),
        Value::Array(vec![s("blue")])
    );
    ok(
        &sim,
        "VM.remove_tags",
        vec![sess.clone(), vm.clone(), s("blue")],
    );
    assert_eq!(
        ok(&sim, "VM.get_tags", vec![sess.clone(), vm.clone()]),
        Value::Array(vec![])
    );

    let e = err(
        &sim,
        "VM.get_name_label",
        vec![sess.clone(), s("OpaqueRef:missing")],
    );
    assert_eq!(
        e.params,
        vec!["VM".to_owned(), "OpaqueRef:missing".to_owned()]
    );
    assert_eq!(e.code, "HANDLE_INVALID");
    let e = err(&sim, "VM.get_by_uuid", vec![sess.clone(), s("nope")]);
    assert_eq!(
        (e.code.as_str(), e.params[0].as_str(), e.params[1].as_str()),
        ("UUID_INVALID", "VM", "nope")
    );
    assert_eq!(
        ok(
            &sim,
            "VM.get_by_name_label",
            vec![sess.clone(), s("no such vm")]
        ),
        Value::Array(vec![])
    );
}

#[test]
fn generic_create_and_destroy() {
    let (sim, sess) = setup();
    let mut rec = Struct::new();
    rec.insert("name_label", s("my appliance"));
    rec.insert("unknown_field_is_ignored", s("x"));
    let app = ok(
        &sim,
        "VM_appliance.create",
        vec![sess.clone(), Value::Struct(rec)],
    );
    let got = ok(
        &sim,
        "VM_appliance.get_record",
        vec![sess.clone(), app.clone()],
    );
    assert_eq!(got.get("name_label"), Some(&s("my appliance")));
    // Missing fields take datamodel defaults.
    assert_eq!(got.get("name_description"), Some(&s("")));
    assert_eq!(got.get("VMs"), Some(&Value::Array(vec![])));
    // Linking a VM to it fills the appliance's VMs set.
    let vm = ok(
        &sim,
        "VM.get_by_name_label",
        vec![sess.clone(), s("web-01")],
    )
    .as_array()
    .unwrap()[0]
        .clone();
    ok(
        &sim,
        "VM.set_appliance",
        vec![sess.clone(), vm.clone(), app.clone()],
    );
    assert_eq!(
        ok(
            &sim,
            "VM_appliance.get_VMs",
            vec![sess.clone(), app.clone()]
        ),
        Value::Array(vec![vm.clone()])
    );
    ok(
        &sim,
        "VM.set_appliance",
        vec![sess.clone(), vm.clone(), s("OpaqueRef:NULL")],
    );
    assert_eq!(
        ok(
            &sim,
            "VM_appliance.get_VMs",
            vec![sess.clone(), app.clone()]
        ),
        Value::Array(vec![])
    );
    ok(
        &sim,
        "VM_appliance.destroy",
        vec![sess.clone(), app.clone()],
    );
    assert_eq!(
        err(&sim, "VM_appliance.get_record", vec![sess.clone(), app]).code,
        "HANDLE_INVALID"
    );
    assert_eq!(
        err(&sim, "VM_appliance.create", vec![sess, s("not a record")]).code,
        "FIELD_TYPE_ERROR"
    );
}

#[test]
fn list_methods() {
    let (sim, _) = setup();
    let methods = sim.dispatch("system.listMethods", vec![]).unwrap();
    let methods: Vec<&str> = methods
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for m in [
        "VM.get_all_records",
        "Async.VM.start",
        "VM.start",
        "event.from",
        "session.login_with_password",
        "Async.VM.clone",
        "VM_guest_metrics.get_networks",
        "Async.VIF.create",
    ] {
        assert!(methods.contains(&m), "{m}");
    }
    for m in [
        "Async.VM.get_record",
        "Async.session.logout",
        "Async.event.from",
        "Async.task.cancel",
    ] {
        assert!(!methods.contains(&m), "{m}");
    }
    assert!(methods.len() > 1500, "{}", methods.len());
    // XO takes the text before the first dot of every `*.get_all_records` as a class name.
    for m in methods.iter().filter(|m| m.ends_with(".get_all_records")) {
        assert_eq!(m.matches('.').count(), 1, "{m}");
    }
}

#[test]
fn small_inventories_have_a_running_and_a_halted_vm() {
    let sim = Simulator::start(SimConfig {
        hosts: 1,
        vms: 2,
        serve: false,
        ..SimConfig::default()
    })
    .unwrap();
    let (u, p) = sim.credentials();
    let sess = sim
        .dispatch("session.login_with_password", vec![s(&u), s(&p)])
        .unwrap();
    let vms = ok(&sim, "VM.get_all_records", vec![sess]);
    let states: Vec<&str> = vms
        .as_struct()
        .unwrap()
        .iter()
        .filter(|(_, r)| {
            r.get("is_a_template") == Some(&Value::Bool(false))
                && r.get("is_control_domain") == Some(&Value::Bool(false))
        })
        .map(|(_, r)| r.get("power_state").unwrap().as_str().unwrap())
        .collect();
    assert_eq!(states.len(), 2);
    assert!(
        states.contains(&"Running") && states.contains(&"Halted"),
        "{states:?}"
    );
}
