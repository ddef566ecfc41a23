//! The generated model through the real codecs: typed decoding from xapi-shaped XML-RPC and
//! JSON-RPC replies (fixtures shared with the codec tests), the `Value` path, and calls encoded
//! for the wire.

use std::collections::HashMap;

use xo_core::model::*;
use xo_core::rpc::{jsonrpc, xmlrpc, Limits};

fn fixture(path: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const VM_REF: &str = "OpaqueRef:0a9d8c7b-1111-2222-3333-444455556666";

fn check_debian(vm: &Vm) {
    assert_eq!(vm.name_label, "debian-12");
    assert_eq!(vm.power_state, VmPowerState::Running);
    assert_eq!(vm.domid, 143);
    // Above 2^53: must not go through f64.
    assert_eq!(vm.memory_overhead, 9007199254740993);
    assert_eq!(vm.vcpus_max, 4);
    assert_eq!(vm.start_delay, -1);
    assert_eq!(vm.other_config["base_template_name"], "Debian Bookworm 12");
    assert!(vm.resident_on.is_null());
    assert_eq!(vm.snapshot_time, DateTime::epoch());
    // Not in the fixture: xapi's defaults.
    assert_eq!(vm.hvm_shadow_multiplier, 1.0);
    assert_eq!(vm.domain_type, DomainType::Unspecified);
}

#[test]
fn xmlrpc_get_all_records_decodes_into_records() {
    let reply = xmlrpc::decode_envelope_typed::<HashMap<Ref<Vm>, Vm>>(
        &fixture("xmlrpc/vm_get_all_records.xml"),
        Limits::default(),
    )
    .expect("valid reply")
    .expect("success");
    check_debian(&reply[VM_REF]);
}

#[test]
fn jsonrpc_get_all_records_decodes_into_records() {
    let reply = jsonrpc::decode_reply_typed::<HashMap<Ref<Vm>, Vm>>(
        &fixture("jsonrpc/vm_get_all_records_v2.json"),
        Limits::default(),
    )
    .expect("valid reply");
    let vms = reply.outcome.expect("success");
    assert_eq!(vms.len(), 2);
    check_debian(&vms[VM_REF]);
    let dom0 = vms.values().find(|v| v.is_control_domain).expect("dom0");
    assert_eq!(dom0.tags, vec!["dom0".to_owned(), "NaN".to_owned()]);
}

#[test]
fn non_finite_floats_in_float_maps() {
    let xml: VmMetrics =
        xmlrpc::decode_envelope_typed(&fixture("xmlrpc/vm_metrics_nan.xml"), Limits::default())
            .expect("valid reply")
            .expect("success");
    let json: VmMetrics = jsonrpc::decode_reply_typed(
        &fixture("jsonrpc/vm_metrics_nan_v2.json"),
        Limits::default(),
    )
    .expect("valid reply")
    .outcome
    .expect("success");
    for m in [&xml, &json] {
        let u = &m.vcpus_utilisation;
        assert!(u[&0].is_nan());
        assert_eq!(
            (u[&1], u[&2], u[&3]),
            (f64::INFINITY, f64::NEG_INFINITY, 0.75)
        );
    }
    assert_eq!(json.memory_actual, 8589934592);
}

#[test]
fn event_batches_from_both_codecs() {
    let json: EventBatch =
        jsonrpc::decode_reply_typed(&fixture("jsonrpc/event_from_v1.json"), Limits::default())
            .expect("valid reply")
            .outcome
            .expect("success");
    assert_eq!(json.events.len(), 3);
    let first = &json.events[0];
    assert_eq!(
        (first.id, first.class.as_str(), first.operation.clone()),
        (11, "vm", EventOperation::Mod)
    );
    let vm: Vm =
        from_value(first.snapshot.clone().expect("snapshot")).expect("VM snapshot decodes");
    assert_eq!(
        (vm.name_label.as_str(), vm.power_state.clone(), vm.domid),
        ("debian-12", VmPowerState::Halted, -1)
    );
    assert!(json.events[1].snapshot.is_none(), "del has no snapshot");
    let metrics: VmMetrics =
        from_value(json.events[2].snapshot.clone().expect("snapshot")).expect("metrics");
    assert_eq!(metrics.vcpus_utilisation[&1], 0.5);
    assert_eq!(metrics.start_time.as_str(), "20241122T05:00:00Z");

    let xml: EventBatch =
        xmlrpc::decode_envelope_typed(&fixture("xmlrpc/event_from.xml"), Limits::default())
            .expect("valid reply")
            .expect("success");
    assert_eq!(xml.events[0].id, 12);
    assert_eq!(xml.events[0].operation, EventOperation::Del);
    assert_eq!(xml.valid_ref_counts["task"], 0);
    assert_eq!(xml.token, "00000000000000000013,00000000000000000042");
}

#[test]
fn value_path_takes_xmlrpc_style_strings() {
    // Over XML-RPC ints arrive untagged, i.e. as strings in a `Value`.
    let mut s = Struct::new();
    s.insert("VCPUs_max", Value::String("8".into()));
    s.insert("HVM_shadow_multiplier", Value::String("1.5".into()));
    s.insert("power_state", Value::String("Paused".into()));
    s.insert("is_a_template", Value::Bool(true));
    s.insert(
        "snapshot_time",
        Value::DateTime(DateTime::parse("20240101T00:00:00Z").unwrap()),
    );
    s.insert("brand_new_field", Value::Int(1));
    let vm: Vm = from_value(Value::Struct(s)).expect("decodes");
    assert_eq!(
        (vm.vcpus_max, vm.hvm_shadow_multiplier, vm.is_a_template),
        (8, 1.5, true)
    );
    assert_eq!(vm.power_state, VmPowerState::Paused);
    assert_eq!(vm.snapshot_time.unix(), 1704067200);

    // A record encoded with ToValue decodes back to itself.
    let back: Vm = from_value(vm.to_value()).expect("round trip");
    assert_eq!(back, vm);
    let pool = Pool {
        name_label: "p".into(),
        ..Pool::default()
    };
    assert_eq!(from_value::<Pool>(pool.to_value()).unwrap(), pool);
}

#[test]
fn calls_encode_for_both_wires() {
    let vm = Ref::<Vm>::new(VM_REF);
    let call = Vm::start(&vm, false, true);
    let xml = String::from_utf8(xmlrpc::encode_call(&call.method, &call.params)).unwrap();
    assert!(xml.contains("<methodName>VM.start</methodName>"), "{xml}");
    assert!(
        xml.contains(VM_REF) && xml.contains("<boolean>1</boolean>"),
        "{xml}"
    );
    let login = Session::login_with_password("root", "secret", None, None);
    assert!(!login.session);
    let xml = String::from_utf8(xmlrpc::encode_call(&login.method, &login.params)).unwrap();
    assert_eq!(xml.matches("<param>").count(), 2, "{xml}");
}
