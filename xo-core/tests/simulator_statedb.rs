//! `state.db` dumps: write, load back, compare; xapi-format details and tolerance.
#![cfg(feature = "simulator")]

use xo_core::model::Value;
use xo_core::simulator::{SimConfig, Simulator};

fn s(v: &str) -> Value {
    Value::from(v)
}

fn session(sim: &Simulator) -> Value {
    let (u, p) = sim.credentials();
    sim.dispatch("session.login_with_password", vec![s(&u), s(&p)])
        .unwrap()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("xo-sim-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("state.db")
}

#[test]
fn round_trip() {
    let a = Simulator::start(SimConfig {
        serve: false,
        hosts: 4,
        ..SimConfig::default()
    })
    .unwrap();
    let sess = session(&a);
    // Some state that is not the default inventory: odd characters, a map and a set.
    let vm = a
        .dispatch("VM.get_by_name_label", vec![sess.clone(), s("web-01")])
        .unwrap()
        .as_array()
        .unwrap()[0]
        .clone();
    a.dispatch(
        "VM.set_name_description",
        vec![
            sess.clone(),
            vm.clone(),
            s("quote ' dq \" amp & lt < nl \n tab \t back \\ é"),
        ],
    )
    .unwrap();
    a.dispatch(
        "VM.add_to_other_config",
        vec![sess.clone(), vm.clone(), s("k'ey"), s("v(a)l ue")],
    )
    .unwrap();
    a.dispatch("VM.add_tags", vec![sess.clone(), vm.clone(), s("t 1")])
        .unwrap();
    let text = a.dump_state_db();
    assert!(text.contains("<database><manifest>"));
    assert!(text.contains("<table name=\"VM\">"));
    assert!(text.contains(" name__label=\"web-01\""));
    assert!(text.contains("<row ref=\"OpaqueRef:") && text.contains(" _ref=\"OpaqueRef:"));
    assert!(text.contains(" memory__static_max=\""));
    assert!(text.contains("other_config=\"(("));
    assert!(
        !text.contains("<table name=\"session\""),
        "sessions are credentials"
    );
    let path = tmp("rt");
    std::fs::write(&path, &text).unwrap();

    let b = Simulator::start(SimConfig {
        serve: false,
        db: Some(path.clone()),
        ..SimConfig::default()
    })
    .unwrap();
    // Nothing unknown, and every host keeps its address (members stay in order).
    assert!(b.warnings().is_empty(), "{:?}", b.warnings());
    let sb = session(&b);
    for class in [
        "VM",
        "VIF",
        "VBD",
        "VDI",
        "SR",
        "PBD",
        "network",
        "PIF",
        "VLAN",
        "host",
        "pool",
        "VM_metrics",
        "VM_guest_metrics",
        "host_cpu",
        "SM",
    ] {
        let ra = a
            .dispatch(&format!("{class}.get_all_records"), vec![sess.clone()])
            .unwrap();
        let rb = b
            .dispatch(&format!("{class}.get_all_records"), vec![sb.clone()])
            .unwrap();
        let (ra, rb) = (ra.as_struct().unwrap(), rb.as_struct().unwrap());
        assert_eq!(ra.len(), rb.len(), "{class}");
        for (r, rec) in ra.iter() {
            let other = rb.get(r).unwrap_or_else(|| panic!("{class} {r} missing"));
            for (f, v) in rec.as_struct().unwrap().iter() {
                let w = other.get(f).unwrap();
                // Floats print shortest-exact; sets keep their order.
                assert_eq!(v, w, "{class}.{f}");
            }
        }
    }
    let text2 = b.dump_state_db();
    let strip = |t: &str| {
        t.lines()
            .skip(1)
            .collect::<String>()
            .split("<table")
            .skip(1)
            .map(|x| x.to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&text).len(), strip(&text2).len());
    // The loaded pool works: a VM from the dump starts, with guest metrics (tools survive via guest_metrics).
    let web = b
        .dispatch("VM.get_by_name_label", vec![sb.clone(), s("build-01")])
        .unwrap()
        .as_array()
        .unwrap()[0]
        .clone();
    b.dispatch(
        "VM.start",
        vec![sb.clone(), web, Value::Bool(false), Value::Bool(false)],
    )
    .unwrap();
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[test]
fn loads_a_hand_written_dump_with_unknowns() {
    let dump = r#"<?xml version="1.0" encoding="UTF-8"?>
<database><manifest><pair key="schema_major_vsn" value="5"/><pair key="schema_minor_vsn" value="786"/><pair key="generation_count" value="10"/></manifest>
<table name="pool"><row ref="OpaqueRef:p1" uuid="00000000-0000-4000-8000-000000000001" name__label="prod" master="OpaqueRef:h2" other_config="(('a' 'b'))"/></table>
<table name="host"><row ref="OpaqueRef:h1" uuid="00000000-0000-4000-8000-0000000000a1" name__label="member" address="10.0.0.2" enabled="true"/><row ref="OpaqueRef:h2" uuid="00000000-0000-4000-8000-0000000000a2" name__label="master" address="10.0.0.1" enabled="true" API_version__major="2"/></table>
<table name="VM"><row ref="OpaqueRef:v1" uuid="00000000-0000-4000-8000-0000000000b1" name__label="vm one" power_state="Running" resident_on="OpaqueRef:h1" memory__static_max="1073741824" tags="('x' 'y')" future_field="1" domid="notanumber"/></table>
<table name="Frobnicator"><row ref="OpaqueRef:f1"/></table>
<table name="Bond"/>
<table name="network"><row ref="OpaqueRef:n1" _ref="OpaqueRef:n1" uuid="00000000-0000-4000-8000-0000000000c1" name__label="a &lt;b&gt; &amp; &quot;c&quot;" bridge="xenbr0"/></table>
<table name="session"><row ref="OpaqueRef:s1" uuid="s"/></table>
</database>"#;
    let path = tmp("hand");
    std::fs::write(&path, dump).unwrap();
    let sim = Simulator::start(SimConfig {
        serve: false,
        db: Some(path.clone()),
        ..SimConfig::default()
    })
    .unwrap();
    let w = sim.warnings().join("\n");
    assert!(w.contains("unknown table Frobnicator"), "{w}");
    assert!(w.contains("unknown field VM.future_field"), "{w}");
    assert!(w.contains("VM.domid"), "{w}");
    let sess = session(&sim);
    let vm = sim
        .dispatch("VM.get_record", vec![sess.clone(), s("OpaqueRef:v1")])
        .unwrap();
    assert_eq!(vm.get("name_label"), Some(&s("vm one")));
    assert_eq!(vm.get("memory_static_max"), Some(&Value::Int(1 << 30)));
    assert_eq!(vm.get("tags"), Some(&Value::Array(vec![s("x"), s("y")])));
    // Missing fields take defaults.
    assert_eq!(vm.get("VCPUs_max"), Some(&Value::Int(0)));
    let fresh = sim
        .dispatch(
            "VM.create",
            vec![sess.clone(), Value::Struct(Default::default())],
        )
        .unwrap();
    let fresh = sim
        .dispatch("VM.get_record", vec![sess.clone(), fresh])
        .unwrap();
    assert_eq!(
        vm.get("actions_after_crash"),
        fresh.get("actions_after_crash")
    );
    assert_eq!(vm.get("HVM_boot_policy"), fresh.get("HVM_boot_policy"));
    let net = sim
        .dispatch("network.get_record", vec![sess.clone(), s("OpaqueRef:n1")])
        .unwrap();
    assert_eq!(net.get("name_label"), Some(&s("a <b> & \"c\"")));
    assert!(!w.contains("_ref"), "{w}");
    // Relations are rebuilt from the child side.
    let resident = sim
        .dispatch(
            "host.get_resident_VMs",
            vec![sess.clone(), s("OpaqueRef:h1")],
        )
        .unwrap();
    assert_eq!(resident, Value::Array(vec![s("OpaqueRef:v1")]));
    // The master from the dump serves on 127.0.0.1; addresses follow the listeners.
    assert_eq!(
        sim.dispatch("host.get_address", vec![sess.clone(), s("OpaqueRef:h2")])
            .unwrap(),
        s("127.0.0.1")
    );
    assert_eq!(
        sim.dispatch("host.get_address", vec![sess.clone(), s("OpaqueRef:h1")])
            .unwrap(),
        s("127.0.0.2")
    );
    assert_eq!(
        sim.dispatch_on(1, "VM.get_all", vec![sess])
            .unwrap_err()
            .code,
        "HOST_IS_SLAVE"
    );
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[test]
fn bad_dumps_are_clear_errors() {
    for (name, text) in [
        ("notxml", "this is not xml <"),
        ("nodb", "<foo/>"),
        (
            "doctype",
            "<!DOCTYPE x [<!ENTITY a 'b'>]><database></database>",
        ),
        ("nohost", "<database><table name=\"VM\"></table></database>"),
    ] {
        let path = tmp(name);
        std::fs::write(&path, text).unwrap();
        let e = Simulator::start(SimConfig {
            serve: false,
            db: Some(path.clone()),
            ..SimConfig::default()
        })
        .unwrap_err();
        assert!(
            e.to_string().starts_with("simulator database"),
            "{name}: {e}"
        );
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }
    let e = Simulator::start(SimConfig {
        serve: false,
        db: Some("/nonexistent/state.db".into()),
        ..SimConfig::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("I/O"), "{e}");
}
