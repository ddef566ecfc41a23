//! The generated object model: decoding with datamodel defaults, enums, errors, calls, redaction.
//! Expected defaults and counts are read from `spec/` here, not copied from the generated code.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value as Json};
use xo_core::model::meta::{self, CLASSES};
use xo_core::model::*;
use xo_core::rpc::{Call, Void};

fn spec(file: &str) -> Json {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../spec")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).expect("spec file")).expect("spec JSON")
}

fn spec_class(name: &str) -> Json {
    spec("xenapi.json")
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .expect("class in spec")
}

/// A realistic VM record as JSON-RPC carries it (ints as numbers), trimmed to a few dozen fields.
fn vm_json() -> Json {
    json!({
        "uuid": "0f9b6b4a-3d0e-4c71-9c57-6b8f0f1d2e3a",
        "allowed_operations": ["changing_dynamic_range", "pause", "clean_shutdown", "hard_reboot", "snapshot"],
        "current_operations": {"OpaqueRef:task-1": "clean_reboot"},
        "name_label": "web-01",
        "name_description": "",
        "power_state": "Running",
        "user_version": 1,
        "is_a_template": false,
        "resident_on": "OpaqueRef:host-1",
        "memory_static_max": 4294967296i64,
        "memory_dynamic_max": 4294967296i64,
        "memory_dynamic_min": 2147483648i64,
        "memory_static_min": 1073741824,
        "memory_target": 0,
        "VCPUs_params": {"weight": "256"},
        "VCPUs_max": 4,
        "VCPUs_at_startup": 2,
        "actions_after_crash": "restart",
        "VIFs": ["OpaqueRef:vif-1", "OpaqueRef:vif-2"],
        "VBDs": ["OpaqueRef:vbd-1"],
        "HVM_shadow_multiplier": 1.0,
        "platform": {"viridian": "true", "nx": "true"},
        "other_config": {"base_template_name": "Debian Bookworm 12"},
        "domid": 143,
        "guest_metrics": "OpaqueRef:gm-1",
        "metrics": "OpaqueRef:m-1",
        "snapshot_time": "20240113T19:40:34Z",
        "tags": ["prod"],
        "blocked_operations": {"destroy": "protected"},
        "domain_type": "hvm",
        "NVRAM": {},
        "some_field_from_a_newer_host": {"x": 1}
    })
}

#[test]
fn decodes_a_realistic_vm_record() {
    let vm: Vm = serde_json::from_value(vm_json()).expect("decodes");
    assert_eq!(vm.name_label, "web-01");
    assert_eq!(vm.power_state, VmPowerState::Running);
    assert_eq!(vm.vcpus_max, 4);
    assert_eq!(vm.memory_static_max, 4294967296);
    assert_eq!(vm.vifs.len(), 2);
    assert_eq!(vm.vifs[1], Ref::<Vif>::new("OpaqueRef:vif-2"));
    assert_eq!(vm.resident_on.as_str(), "OpaqueRef:host-1");
    assert_eq!(
        vm.current_operations.get("OpaqueRef:task-1"),
        Some(&VmOperations::CleanReboot)
    );
    assert_eq!(
        vm.blocked_operations
            .get(&VmOperations::Destroy)
            .map(String::as_str),
        Some("protected")
    );
    assert_eq!(vm.allowed_operations[0], VmOperations::ChangingDynamicRange);
    assert_eq!(vm.actions_after_crash, OnCrashBehaviour::Restart);
    assert_eq!(vm.domain_type, DomainType::Hvm);
    assert_eq!(
        vm.snapshot_time.unix(),
        DateTime::parse("2024-01-13T19:40:34Z").unwrap().unix()
    );
    assert_eq!(vm.platform["viridian"], "true");
    // Fields absent from the record fall back to defaults.
    assert!(vm.suspend_vdi.is_null());
    assert!(vm.pci_bus.is_empty());
}

#[test]
fn missing_fields_take_the_datamodel_defaults() {
    let empty: Vm = serde_json::from_value(json!({})).expect("empty record decodes");
    assert_eq!(empty, Vm::default());

    // Compare each scalar default the spec gives with what decoding `{}` produces, for classes
    // that carry unusual defaults.
    fn check<T>(class: &str) -> usize
    where
        T: serde::de::DeserializeOwned + serde::Serialize + Default + PartialEq + std::fmt::Debug,
    {
        let decoded: T = serde_json::from_value(json!({})).unwrap();
        assert_eq!(
            decoded,
            T::default(),
            "{class}: decoding {{}} differs from Default"
        );
        let wire = serde_json::to_value(&decoded).unwrap();
        let mut checked = 0;
        for f in spec_class(class)["fields"].as_array().unwrap() {
            let (Some(d), Some(ty), name) = (
                f["default"].as_str(),
                f["type"].as_str(),
                f["name"].as_str().unwrap(),
            ) else {
                continue;
            };
            let expected = match ty {
                "int" => json!(d.parse::<i64>().unwrap()),
                "float" => json!(d.parse::<f64>().unwrap()),
                "bool" => json!(d == "true"),
                "string" => json!(d.trim_matches('"')),
                "datetime" => json!(d),
                t if t.ends_with(" set") && d == "{}" => json!([]),
                t if t.ends_with(" map") && d == "{}" => json!({}),
                t if t.ends_with(" set") || t.ends_with(" map") => continue,
                t if t.starts_with("enum ") => json!(d),
                t if t.ends_with(" ref") => json!(if d == "Null" { "OpaqueRef:NULL" } else { d }),
                _ => continue,
            };
            assert_eq!(wire[name], expected, "{class}.{name} default {d:?}");
            checked += 1;
        }
        checked
    }
    let mut n = 0;
    n += check::<Vm>("VM");
    n += check::<Host>("host");
    n += check::<Pool>("pool");
    n += check::<Network>("network");
    n += check::<Vlan>("VLAN");
    n += check::<Pusb>("PUSB");
    n += check::<Cluster>("Cluster");
    n += check::<Task>("task");
    n += check::<Vgpu>("VGPU");
    n += check::<PvsCacheStorage>("PVS_cache_storage");
    n += check::<Vmpp>("VMPP");
    n += check::<Pif>("PIF");
    n += check::<Session>("session");
    assert!(n > 150, "only {n} defaults checked");

    // Map and set defaults with content.
    let host: Host = serde_json::from_value(json!({})).unwrap();
    assert_eq!(
        host.license_server.get("port").map(String::as_str),
        Some("27000")
    );
    assert_eq!(host.virtual_hardware_platform_versions, vec![0]);
    let tunnel: Tunnel = serde_json::from_value(json!({})).unwrap();
    assert_eq!(
        tunnel.status.get("active").map(String::as_str),
        Some("false")
    );
    // No default in the datamodel: the type's empty value; enums take their first value.
    let metrics = VmMetrics::default();
    assert_eq!(metrics.start_time, DateTime::epoch());
    assert_eq!(Vm::default().power_state, VmPowerState::Halted);
}

#[test]
fn unknown_enum_values_survive_round_trips() {
    let mut j = vm_json();
    j["power_state"] = json!("Exploded");
    j["allowed_operations"] = json!(["start", "teleport"]);
    let vm: Vm = serde_json::from_value(j).unwrap();
    assert_eq!(vm.power_state, VmPowerState::Unknown("Exploded".into()));
    assert_eq!(
        vm.allowed_operations,
        vec![
            VmOperations::Start,
            VmOperations::Unknown("teleport".into())
        ]
    );
    let back = serde_json::to_value(&vm).unwrap();
    assert_eq!(back["power_state"], "Exploded");
    assert_eq!(back["VCPUs_max"], 4);
    assert_eq!(
        "Exploded".parse::<VmPowerState>().unwrap().to_string(),
        "Exploded"
    );
    assert_eq!(
        "Halted".parse::<VmPowerState>().unwrap(),
        VmPowerState::Halted
    );
    assert_eq!(BondMode::BalanceSlb.as_str(), "balance-slb");
    // A wire value spelt `unknown` is a known value, distinct from the catch-all.
    assert_eq!(
        "unknown".parse::<PifIgmpStatus>().unwrap(),
        PifIgmpStatus::UnknownValue
    );
}

#[test]
fn enums_match_the_spec() {
    let mut seen = BTreeMap::new();
    for c in spec("xenapi.json").as_array().unwrap() {
        for e in c["enums"].as_array().unwrap() {
            let values: Vec<String> = e["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_owned())
                .collect();
            seen.insert(e["name"].as_str().unwrap().to_owned(), values);
        }
    }
    assert_eq!(seen.len(), 73);
    let power: Vec<&str> = VmPowerState::ALL.iter().map(VmPowerState::as_str).collect();
    assert_eq!(power, seen["vm_power_state"]);
    let ops: Vec<&str> = VmOperations::ALL.iter().map(VmOperations::as_str).collect();
    assert_eq!(ops, seen["vm_operations"]);
    assert_eq!(
        VmPowerState::Paused.to_value(),
        Value::String("Paused".into())
    );
}

#[test]
fn lenient_floats_and_int_keyed_maps() {
    let m: VmMetrics = serde_json::from_value(json!({
        "VCPUs_utilisation": {"0": 0.25, "1": "0.5"},
        "VCPUs_CPU": {"0": 3},
        "memory_actual": 1024
    }))
    .unwrap();
    assert_eq!(m.vcpus_utilisation, BTreeMap::from([(0, 0.25), (1, 0.5)]));
    assert_eq!(m.vcpus_cpu, BTreeMap::from([(0, 3)]));
    let vm: Vm = serde_json::from_value(json!({"HVM_shadow_multiplier": "NaN"})).unwrap();
    assert!(vm.hvm_shadow_multiplier.is_nan());
    let vm: Vm = serde_json::from_value(json!({"HVM_shadow_multiplier": 2})).unwrap();
    assert_eq!(vm.hvm_shadow_multiplier, 2.0);
    assert!(serde_json::from_value::<Vm>(json!({"HVM_shadow_multiplier": "lots"})).is_err());
    assert!(serde_json::from_value::<Vm>(json!({"snapshot_time": "yesterday"})).is_err());
}

#[test]
fn records_encode_with_wire_names() {
    let vm: Vm = serde_json::from_value(vm_json()).unwrap();
    let v = vm.to_value();
    let s = v.as_struct().expect("struct");
    assert_eq!(
        s.len(),
        spec_class("VM")["fields"].as_array().unwrap().len()
    );
    assert_eq!(s.get("VCPUs_max"), Some(&Value::Int(4)));
    assert_eq!(s.get("power_state"), Some(&Value::String("Running".into())));
    assert_eq!(
        s.get("snapshot_time").and_then(|d| match d {
            Value::DateTime(d) => Some(d.as_str()),
            _ => None,
        }),
        Some("20240113T19:40:34Z")
    );
    // `None` options are left out, as xapi does.
    let stat = SrStat::default().to_value();
    assert!(stat.get("uuid").is_none());
    assert!(stat.get("name_label").is_some());
}

#[test]
fn typed_api_errors() {
    let f = ApiFailure::new(
        "VM_BAD_POWER_STATE",
        vec!["OpaqueRef:vm".into(), "halted".into(), "running".into()],
    );
    match f.typed() {
        ApiError::VmBadPowerState {
            vm,
            expected,
            actual,
        } => {
            assert_eq!(
                (vm.as_str(), expected.as_str(), actual.as_str()),
                ("OpaqueRef:vm", "halted", "running")
            )
        }
        other => panic!("wrong variant {other:?}"),
    }
    assert_eq!(f.param("expected"), Some("halted"));
    assert_eq!(f.param("nope"), None);
    assert_eq!(f.typed().code(), "VM_BAD_POWER_STATE");
    assert_eq!(f.typed().to_failure(), f);

    // Missing params become empty strings; extra ones are dropped.
    let short = ApiFailure::new("HOST_IS_SLAVE", vec![]);
    assert_eq!(
        short.typed(),
        ApiError::HostIsSlave {
            master_ip_address: String::new()
        }
    );
    let slave = ApiFailure::new("HOST_IS_SLAVE", vec!["10.0.0.1".into(), "extra".into()]);
    assert_eq!(slave.param("Master IP address"), Some("10.0.0.1"));
    assert_eq!(slave.param("master_ip_address"), Some("10.0.0.1"));
    assert_eq!(
        slave.typed(),
        ApiError::HostIsSlave {
            master_ip_address: "10.0.0.1".into()
        }
    );

    // Codes without a datamodel entry keep their params; unknown codes too.
    let b = ApiFailure::new("BALLOONING_DISABLED", vec!["x".into()]);
    assert_eq!(
        b.typed(),
        ApiError::BallooningDisabled {
            params: vec!["x".into()]
        }
    );
    let u = ApiFailure::new("FROM_THE_FUTURE", vec!["p".into()]);
    assert_eq!(
        u.typed(),
        ApiError::Unknown {
            code: "FROM_THE_FUTURE".into(),
            params: vec!["p".into()]
        }
    );
    assert_eq!(u.typed().to_string(), "FROM_THE_FUTURE [\"p\"]");

    let errors = spec("api_errors.json");
    let documented = errors["errors"].as_array().unwrap();
    let undocumented = errors["codes_without_datamodel_entry"].as_array().unwrap();
    assert_eq!(
        errors::ERROR_CODES.len(),
        documented.len() + undocumented.len()
    );
    for e in documented {
        let code = e["name"].as_str().unwrap();
        let names: Vec<&str> = e["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(
            ApiError::param_names(code),
            Some(names.as_slice()),
            "{code}"
        );
        let full = ApiFailure::new(code, names.iter().map(|n| format!("<{n}>")).collect());
        let typed = full.typed();
        assert_eq!(typed.code(), code);
        assert_eq!(typed.to_failure(), full, "{code} round trip");
        for n in &names {
            assert_eq!(full.param(n), Some(format!("<{n}>").as_str()), "{code}.{n}");
        }
    }
    for c in undocumented {
        let code = c.as_str().unwrap();
        assert_eq!(ApiError::param_names(code), None);
        assert!(
            !matches!(
                ApiFailure::new(code, vec![]).typed(),
                ApiError::Unknown { .. }
            ),
            "{code}"
        );
    }
}

#[test]
fn session_refs_in_errors_are_redacted() {
    let f = ApiFailure::new("SESSION_INVALID", vec!["OpaqueRef:sess-secret".into()]);
    let h = ApiFailure::new(
        "HANDLE_INVALID",
        vec!["session".into(), "OpaqueRef:sess-secret".into()],
    );
    for shown in [
        format!("{f} {f:?}"),
        format!("{} {:?}", f.typed(), f.typed()),
        format!("{h} {}", h.typed()),
    ] {
        assert!(!shown.contains("sess-secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
    // The value is still there for code that needs it, and other handles print normally.
    assert_eq!(f.param("handle"), Some("OpaqueRef:sess-secret"));
    let vm = ApiFailure::new("HANDLE_INVALID", vec!["VM".into(), "OpaqueRef:vm-1".into()]);
    assert!(vm.to_string().contains("OpaqueRef:vm-1"));
    assert!(format!("{:?}", vm.typed()).contains("OpaqueRef:vm-1"));
}

#[test]
fn call_descriptions() {
    let vm = Ref::<Vm>::new("OpaqueRef:vm-1");
    let c: Call<Void> = Vm::start(&vm, false, true);
    assert_eq!(c.method, "VM.start");
    assert_eq!(
        c.params,
        vec![
            Value::String("OpaqueRef:vm-1".into()),
            Value::Bool(false),
            Value::Bool(true)
        ]
    );
    assert!(c.session);
    assert_eq!(c.async_method, Some("Async.VM.start"));

    let all: Call<HashMap<Ref<Vm>, Vm>> = Vm::get_all_records();
    assert_eq!(
        (all.method.as_ref(), all.params.len(), all.async_method),
        ("VM.get_all_records", 0, None)
    );
    let p = Vm::get_power_state(&vm);
    assert_eq!(
        (p.method.as_ref(), p.async_method),
        ("VM.get_power_state", None)
    );
    let created: Call<Ref<Vm>> = Vm::create(&Vm::default());
    assert_eq!(created.async_method, Some("Async.VM.create"));
    assert!(created.params[0].get("VCPUs_max").is_some());
    assert_eq!(
        Task::cancel(&Ref::new("OpaqueRef:t")).async_method,
        Some("Async.task.cancel")
    );
    assert_eq!(Task::create("label", "").async_method, None);
    assert_eq!(Vm::set_vcpus_max(&vm, 4).async_method, None);
    assert_eq!(
        Vm::set_memory_limits(&vm, 1, 2, 1, 2).async_method,
        Some("Async.VM.set_memory_limits")
    );
    let ev: Call<EventBatch> = Event::from(&["vm".to_owned()], "", 60.0);
    assert_eq!((ev.method.as_ref(), ev.async_method), ("event.from", None));
    assert_eq!(ev.params[2], Value::Double(60.0));

    // Login: no session; trailing optional params are left off.
    let login = Session::login_with_password("root", "pw", None, None);
    assert_eq!(login.method, "session.login_with_password");
    assert!(!login.session);
    assert_eq!(login.params.len(), 2);
    assert_eq!(login.async_method, None);
    let login = Session::login_with_password("root", "pw", None, Some("xo-rs"));
    assert_eq!(login.params.len(), 4);
    assert_eq!(login.params[3], Value::String("xo-rs".into()));
    assert!(!format!("{login:?}").contains("pw\""));
    let logout = Session::logout();
    assert!(logout.session && logout.params.is_empty());

    // Enum, map and set params.
    let set = Vm::set_actions_after_crash(&vm, OnCrashBehaviour::Preserve);
    assert_eq!(set.params[1], Value::String("preserve".into()));
    let snap = Vm::snapshot(&vm, "snap", Some(&[Ref::new("OpaqueRef:vdi")]));
    assert_eq!(
        snap.params[2],
        Value::Array(vec![Value::String("OpaqueRef:vdi".into())])
    );
}

#[test]
fn secrets_are_redacted_in_debug() {
    let s: Secret = serde_json::from_value(json!({"uuid": "u-1", "value": "hunter2"})).unwrap();
    assert_eq!(s.value, "hunter2");
    let dbg = format!("{s:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert!(dbg.contains("u-1") && dbg.contains("<redacted>"));
    let pool = Pool {
        repository_proxy_password: Ref::new("OpaqueRef:pw-secret"),
        ..Pool::default()
    };
    assert!(!format!("{pool:?}").contains("pw-secret"));
    let vm: Vm = serde_json::from_value(vm_json()).unwrap();
    assert!(format!("{vm:?}").contains("web-01"));
}

#[test]
fn metadata_matches_the_spec() {
    let spec = spec("xenapi.json");
    let classes = spec.as_array().unwrap();
    assert_eq!(CLASSES.len(), classes.len());
    let fields: usize = classes
        .iter()
        .map(|c| c["fields"].as_array().unwrap().len())
        .sum();
    let messages: usize = classes
        .iter()
        .map(|c| c["messages"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        CLASSES.iter().map(|c| c.fields.len()).sum::<usize>(),
        fields
    );
    assert_eq!(
        CLASSES.iter().map(|c| c.messages.len()).sum::<usize>(),
        messages
    );
    let vm = meta::class("vm").expect("case-insensitive lookup");
    assert_eq!((vm.name, vm.rust_name), ("VM", "Vm"));
    assert_eq!(vm.field("VCPUs_max").map(|f| f.ty), Some("int"));
    let start = vm.message("start").unwrap();
    assert!(start.has_async && start.session && !start.implicit);
    let login = meta::class("session")
        .unwrap()
        .message("login_with_password")
        .unwrap();
    assert!(!login.session && !login.has_async);
    assert_eq!(login.params.iter().filter(|p| !p.required).count(), 2);
    assert_eq!(<Vm as XapiClass>::WIRE_NAME, "VM");
    assert_eq!(<VmGuestMetrics as XapiClass>::WIRE_NAME, "VM_guest_metrics");
    let session = Ref::<Session>::new("OpaqueRef:very-secret");
    assert!(!format!("{session:?} {session}").contains("very-secret"));
}
