//! JSON-RPC codec: fixtures, round trips, NaN handling, int64 precision, typed decoding,
//! and bad input.

use std::collections::BTreeMap;

use serde::Deserialize;
use xo_core::model::{self, ApiFailure, DateTime, Ref, Struct, Value, XapiClass};
use xo_core::rpc::jsonrpc::{
    decode_call, decode_message, decode_reply, decode_reply_typed, encode_call, encode_reply,
    encode_value, Id, Message, Version,
};
use xo_core::rpc::{typed_json, DecodeError, Limits};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/jsonrpc/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn lim() -> Limits {
    Limits::default()
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

#[test]
fn requests_v1_and_v2() {
    let r = decode_call(&fixture("login_request_v2.json"), lim()).unwrap();
    assert_eq!(r.version, Version::V2);
    assert_eq!(r.method, "session.login_with_password");
    assert_eq!(
        r.params,
        vec![s("root"), s("hunter2"), s("2.21"), s("xo-rs/0.1")]
    );
    assert_eq!(r.id, Id::Int(1));
    // The password never shows in Debug.
    assert!(!format!("{r:?}").contains("hunter2"));

    let r = decode_call(&fixture("vm_start_request_v1.json"), lim()).unwrap();
    assert_eq!(r.version, Version::V1);
    assert_eq!(r.id, Id::Str("req-42".into()));
    assert_eq!(r.params[2..], [Value::Bool(false), Value::Bool(true)]);

    // v2: a params object is one struct argument.
    let r = decode_call(&fixture("params_object_v2.json"), lim()).unwrap();
    assert_eq!(r.params.len(), 1);
    assert_eq!(
        r.params[0].get("memory_static_max"),
        Some(&Value::Int(2147483648))
    );
}

#[test]
fn call_round_trip_both_versions() {
    let params = vec![
        s("OpaqueRef:abc"),
        Value::Int(i64::MIN),
        Value::Int(i64::MAX),
        Value::Double(0.1),
        Value::Double(f64::INFINITY),
        Value::Bool(true),
        Value::Array(vec![s("NaN"), s("\u{1}\"\\"), Value::Nil]),
        Value::Struct(Struct(vec![
            ("z".into(), Value::Int(1)),
            ("a".into(), Value::Double(-2.5e-300)),
        ])),
    ];
    for (version, id) in [
        (Version::V1, Id::Int(-3)),
        (Version::V2, Id::Str("x\"y".into())),
    ] {
        let bytes = encode_call("VM.set_memory", &params, &id, version);
        let r = decode_call(&bytes, lim()).unwrap();
        assert_eq!(
            (r.version, r.method.as_str(), &r.id),
            (version, "VM.set_memory", &id)
        );
        assert_eq!(r.params, params);
        assert_eq!(
            bytes.starts_with(br#"{"jsonrpc":"2.0","#),
            version == Version::V2
        );
    }
}

/// JSON has one number kind: an Int32 is written as a plain number and reads back as an int.
#[test]
fn int32_is_a_plain_number() {
    let counts = Value::Struct(Struct(vec![
        ("vm".into(), Value::Int32(12)),
        ("min".into(), Value::Int32(i32::MIN)),
    ]));
    let mut out = Vec::new();
    encode_value(&counts, &mut out);
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"{"vm":12,"min":-2147483648}"#
    );
    for version in [Version::V1, Version::V2] {
        let bytes = encode_call("x.y", std::slice::from_ref(&counts), &Id::Int(1), version);
        let back = decode_call(&bytes, lim()).unwrap().params.remove(0);
        assert_eq!(back.get("vm"), Some(&Value::Int(12)));
        assert_eq!(back.get("min").and_then(Value::as_i64), Some(-2147483648));
        let reply = encode_reply(&Ok(counts.clone()), &Id::Int(1), version);
        let back = decode_reply(&reply, lim()).unwrap().outcome.unwrap();
        assert_eq!(back.get("vm"), Some(&Value::Int(12)));
    }
}

#[test]
fn datetime_and_base64_encode_as_strings() {
    let mut out = Vec::new();
    let v = Value::Array(vec![
        Value::DateTime(DateTime::parse("20240101T00:00:00Z").unwrap()),
        Value::Base64(b"hi!".to_vec()),
        Value::Double(f64::NAN),
        Value::Double(f64::NEG_INFINITY),
        Value::Double(1.0),
    ]);
    encode_value(&v, &mut out);
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"["20240101T00:00:00Z","aGkh",NaN,-Infinity,1.0]"#
    );
}

#[test]
fn replies_and_both_error_shapes() {
    let r = decode_reply(&fixture("login_reply_v2.json"), lim()).unwrap();
    assert_eq!(r.version, Version::V2);
    assert_eq!(r.id, Some(Id::Int(1)));
    assert_eq!(
        r.outcome,
        Ok(s("OpaqueRef:3f1c2a5e-6f0b-4a37-9d2e-5a7c1b0e9d41"))
    );
    assert!(
        !format!("{r:?}").contains("3f1c2a5e"),
        "session ref in Debug"
    );

    let r = decode_reply(&fixture("login_reply_v1.json"), lim()).unwrap();
    assert_eq!(
        (r.version, r.id),
        (Version::V1, Some(Id::Str("login-1".into())))
    );
    assert!(r.outcome.is_ok());

    let v1 = decode_reply(&fixture("failure_v1.json"), lim()).unwrap();
    assert_eq!(
        v1.outcome,
        Err(ApiFailure::new(
            "SESSION_INVALID",
            vec!["OpaqueRef:3f1c2a5e-6f0b-4a37-9d2e-5a7c1b0e9d41".into()]
        ))
    );
    let v2 = decode_reply(&fixture("failure_v2.json"), lim()).unwrap();
    let want = ApiFailure::new(
        "VM_BAD_POWER_STATE",
        vec![
            "OpaqueRef:0a9d8c7b-1111-2222-3333-444455556666".into(),
            "halted".into(),
            "running".into(),
        ],
    );
    assert_eq!(v2.outcome, Err(want.clone()));

    // The typed path reads both shapes too, without touching the (null) result.
    let t = decode_reply_typed::<Vec<String>>(&fixture("failure_v2.json"), lim()).unwrap();
    assert_eq!(t.outcome, Err(want));
    let t = decode_reply_typed::<String>(&fixture("failure_v1.json"), lim()).unwrap();
    assert_eq!(t.outcome.unwrap_err().code, "SESSION_INVALID");
}

#[test]
fn reply_encoding_matches_xapi_shapes() {
    let f = ApiFailure::new("HANDLE_INVALID", vec!["VM".into(), "OpaqueRef:x".into()]);
    assert_eq!(
        String::from_utf8(encode_reply(&Err(f.clone()), &Id::Int(5), Version::V2)).unwrap(),
        r#"{"jsonrpc":"2.0","error":{"code":1,"message":"HANDLE_INVALID","data":["VM","OpaqueRef:x"]},"id":5}"#
    );
    assert_eq!(
        String::from_utf8(encode_reply(
            &Err(f.clone()),
            &Id::Str("a".into()),
            Version::V1
        ))
        .unwrap(),
        r#"{"result":null,"error":["HANDLE_INVALID","VM","OpaqueRef:x"],"id":"a"}"#
    );
    assert_eq!(
        String::from_utf8(encode_reply(
            &Ok(Value::Double(f64::NAN)),
            &Id::Int(1),
            Version::V1
        ))
        .unwrap(),
        r#"{"result":NaN,"error":null,"id":1}"#
    );
    for version in [Version::V1, Version::V2] {
        for outcome in [
            Ok(Value::Array(vec![Value::Int(9_007_199_254_740_993), s("")])),
            Err(f.clone()),
        ] {
            let r =
                decode_reply(&encode_reply(&outcome, &Id::Int(i64::MAX), version), lim()).unwrap();
            assert_eq!(
                (r.version, r.id, r.outcome),
                (version, Some(Id::Int(i64::MAX)), outcome)
            );
        }
    }
}

#[test]
fn non_finite_floats_and_strings_that_spell_them() {
    let r = decode_reply(&fixture("vm_metrics_nan_v2.json"), lim()).unwrap();
    let v = r.outcome.unwrap();
    let util = v.get("VCPUs_utilisation").unwrap();
    assert!(matches!(util.get("0"), Some(Value::Double(f)) if f.is_nan()));
    assert_eq!(util.get("1"), Some(&Value::Double(f64::INFINITY)));
    assert_eq!(util.get("2"), Some(&Value::Double(f64::NEG_INFINITY)));
    assert_eq!(util.get("3"), Some(&Value::Double(0.75)));
    assert_eq!(v.get("name_label"), Some(&s("NaN Infinity -Infinity")));
    assert_eq!(v.get("memory_actual"), Some(&Value::Int(8589934592)));

    // Strings holding the literals, escaped quotes before them, keys named like them.
    let text =
        br#"{"result":{"NaN":"NaN","a\"":["Infinity",-Infinity,"\\",NaN,"-Infinity"]},"id":1}"#;
    let v = decode_reply(text, lim()).unwrap().outcome.unwrap();
    assert_eq!(v.get("NaN"), Some(&s("NaN")));
    let list = v.get("a\"").unwrap().as_array().unwrap();
    assert_eq!(list[0], s("Infinity"));
    assert_eq!(list[1], Value::Double(f64::NEG_INFINITY));
    assert_eq!(list[2], s("\\"));
    assert!(matches!(list[3], Value::Double(f) if f.is_nan()));
    assert_eq!(list[4], s("-Infinity"));
}

#[test]
fn int64_precision() {
    let r = decode_reply(&fixture("int_limits_v2.json"), lim()).unwrap();
    assert_eq!(r.id, Some(Id::Int(-5)));
    let want = [
        i64::MAX,
        i64::MIN,
        9_007_199_254_740_993,
        -9_007_199_254_740_993,
        0,
    ];
    assert_eq!(
        r.outcome.unwrap(),
        Value::Array(want.iter().map(|&i| Value::Int(i)).collect())
    );
    let t = decode_reply_typed::<Vec<i64>>(&fixture("int_limits_v2.json"), lim()).unwrap();
    assert_eq!(t.outcome.unwrap(), want);

    let r = decode_reply(&fixture("vm_get_all_records_v2.json"), lim()).unwrap();
    let vms = r.outcome.unwrap();
    let vm = vms
        .get("OpaqueRef:0a9d8c7b-1111-2222-3333-444455556666")
        .unwrap();
    assert_eq!(
        vm.get("memory_overhead"),
        Some(&Value::Int(9_007_199_254_740_993))
    );
    assert_eq!(vm.get("start_delay"), Some(&Value::Int(-1)));
    // Member order is kept as sent.
    let keys: Vec<_> = vm
        .as_struct()
        .unwrap()
        .iter()
        .map(|(k, _)| k)
        .take(4)
        .collect();
    assert_eq!(
        keys,
        ["uuid", "name_label", "name_description", "power_state"]
    );
}

struct Vm;
impl XapiClass for Vm {
    const WIRE_NAME: &'static str = "VM";
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
enum PowerState {
    Halted,
    Running,
}

#[derive(Debug, Deserialize)]
struct VmLite {
    name_label: String,
    power_state: PowerState,
    #[serde(default)]
    domid: i64,
    memory_target: i64,
    #[serde(rename = "VCPUs_max")]
    vcpus_max: i64,
    #[serde(default)]
    other_config: BTreeMap<String, String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    resident_on: Ref<Vm>,
}

#[derive(Debug, Deserialize)]
struct VmMetricsLite {
    #[serde(
        rename = "VCPUs_utilisation",
        deserialize_with = "model::de::int_float_map"
    )]
    vcpus_utilisation: BTreeMap<i64, f64>,
    memory_actual: i64,
    last_updated: DateTime,
}

#[test]
fn typed_records() {
    let r = decode_reply_typed::<BTreeMap<Ref<Vm>, VmLite>>(
        &fixture("vm_get_all_records_v2.json"),
        lim(),
    )
    .unwrap();
    assert_eq!(r.id, Some(Id::Int(2)));
    let vms = r.outcome.unwrap();
    assert_eq!(vms.len(), 2);
    let vm = &vms[&Ref::new("OpaqueRef:0a9d8c7b-1111-2222-3333-444455556666")];
    assert_eq!(
        (
            vm.name_label.as_str(),
            vm.domid,
            vm.memory_target,
            vm.vcpus_max
        ),
        ("debian-12", 143, 8589934592, 4)
    );
    assert_eq!(vm.power_state, PowerState::Running);
    assert!(vm.resident_on.is_null());
    assert_eq!(vm.other_config["mac_seed"], "a1b2c3d4");
    let dom0 = &vms[&Ref::new("OpaqueRef:5e4d3c2b-aaaa-bbbb-cccc-ddddeeeeffff")];
    assert_eq!(dom0.tags, ["dom0", "NaN"]);

    let m = decode_reply_typed::<VmMetricsLite>(&fixture("vm_metrics_nan_v2.json"), lim())
        .unwrap()
        .outcome
        .unwrap();
    assert!(m.vcpus_utilisation[&0].is_nan());
    assert_eq!(m.vcpus_utilisation[&1], f64::INFINITY);
    assert_eq!(m.vcpus_utilisation[&2], f64::NEG_INFINITY);
    assert_eq!(m.vcpus_utilisation[&3], 0.75);
    assert_eq!(m.memory_actual, 8589934592);
    assert_eq!(m.last_updated.unix(), 1732251600);
}

#[derive(Debug, Deserialize)]
struct Floats {
    #[serde(deserialize_with = "model::de::float")]
    a: f64,
    #[serde(deserialize_with = "model::de::float")]
    b: f64,
    #[serde(deserialize_with = "model::de::float")]
    c: f64,
    #[serde(deserialize_with = "model::de::float")]
    d: f64,
    #[serde(deserialize_with = "model::de::float")]
    e: f64,
}

#[test]
fn typed_floats_receive_non_finite() {
    let text = br#"{"jsonrpc":"2.0","result":{"a":NaN,"b":Infinity,"c":-Infinity,"d":3,"e":"nan"},"id":1}"#;
    let f = decode_reply_typed::<Floats>(text, lim())
        .unwrap()
        .outcome
        .unwrap();
    assert!(f.a.is_nan() && f.e.is_nan());
    assert_eq!((f.b, f.c, f.d), (f64::INFINITY, f64::NEG_INFINITY, 3.0));
    // The same through the Value path.
    let v = decode_reply(text, lim()).unwrap().outcome.unwrap();
    let g: Floats = model::from_value(v).unwrap();
    assert!(g.a.is_nan() && g.e.is_nan());
    assert_eq!((g.b, g.c, g.d), (f64::INFINITY, f64::NEG_INFINITY, 3.0));
}

#[test]
fn typed_errors_carry_path_and_offset() {
    let text = br#"{"jsonrpc":"2.0","result":{"OpaqueRef:1":{"name_label":"x","power_state":"Running","memory_target":"lots","VCPUs_max":1}},"id":1}"#;
    let e = decode_reply_typed::<BTreeMap<Ref<Vm>, VmLite>>(text, lim()).unwrap_err();
    assert_eq!(
        e.path.as_deref(),
        Some(".result.OpaqueRef:1.memory_target"),
        "{e}"
    );
    assert!(
        e.message
            .contains("invalid type: string \"lots\", expected i64"),
        "{e}"
    );
    let at = e.offset.unwrap() as usize;
    assert!(text[..at].ends_with(b"\"lots\""), "offset {at}");

    let e = decode_reply_typed::<Vec<i64>>(br#"{"result":[1,2,"x"],"id":1}"#, lim()).unwrap_err();
    assert_eq!(e.path.as_deref(), Some(".result[2]"), "{e}");
    // A null result with no error fits only types that accept nothing.
    let e =
        decode_reply_typed::<String>(br#"{"result":null,"error":null,"id":1}"#, lim()).unwrap_err();
    assert!(e.message.starts_with("result is null"), "{e}");
    // A float result (`VM.query_data_source`) decodes into a plain f64, NaN included.
    for (text, want) in [
        ("NaN", f64::NAN),
        ("-Infinity", f64::NEG_INFINITY),
        ("2", 2.0),
        ("0.5", 0.5),
    ] {
        let body = format!(r#"{{"jsonrpc":"2.0","result":{text},"id":1}}"#);
        let got = decode_reply_typed::<f64>(body.as_bytes(), lim())
            .unwrap()
            .outcome
            .unwrap();
        assert_eq!(got.to_bits(), want.to_bits(), "{text}");
    }
    let e = decode_reply_typed::<f64>(br#"{"result":"x","id":1}"#, lim()).unwrap_err();
    assert!(e.message.contains("expected a float"), "{e}");
    // A plain f64 field cannot take NaN; the message names the literal, not the sentinel.
    let e =
        decode_reply_typed::<Vec<f64>>(br#"{"result":[1.5,-Infinity],"id":1}"#, lim()).unwrap_err();
    assert!(
        e.message
            .contains("invalid type: float literal -Infinity (float fields need model::de::float)"),
        "{e}"
    );
    assert_eq!(
        (e.path.as_deref(), e.offset),
        (Some(".result[1]"), Some(24)),
        "{e}"
    );
    let ok = decode_reply_typed::<Option<String>>(br#"{"result":null,"error":null,"id":1}"#, lim())
        .unwrap();
    assert_eq!(ok.outcome, Ok(None));
}

#[derive(Debug, PartialEq, serde::Serialize, Deserialize)]
enum Mode {
    Fast,
    Custom(i64),
}

#[derive(Debug, PartialEq, serde::Serialize, Deserialize)]
struct Record {
    name: String,
    count: u32,
    ratio: f64,
    when: DateTime,
    blob: Option<Ref<Vm>>,
    missing: Option<i64>,
    mode: Mode,
    other: Mode,
    by_int: BTreeMap<i64, String>,
    list: Vec<bool>,
}

#[test]
fn to_value_from_value_round_trip() {
    let r = Record {
        name: "vm".into(),
        count: 7,
        ratio: f64::INFINITY,
        when: DateTime::parse("20240101T00:00:00Z").unwrap(),
        blob: Some(Ref::new("OpaqueRef:1")),
        missing: None,
        mode: Mode::Fast,
        other: Mode::Custom(-1),
        by_int: [(3, "three".to_string()), (-1, "minus".to_string())].into(),
        list: vec![true, false],
    };
    let v = model::to_value(&r).unwrap();
    assert_eq!(v.get("count"), Some(&Value::Int(7)));
    assert_eq!(v.get("when"), Some(&Value::DateTime(r.when.clone())));
    assert_eq!(v.get("missing"), Some(&Value::Nil));
    assert_eq!(v.get("mode"), Some(&s("Fast")));
    assert_eq!(v.get("by_int").unwrap().get("-1"), Some(&s("minus")));
    let keys: Vec<_> = v.as_struct().unwrap().iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        ["name", "count", "ratio", "when", "blob", "missing", "mode", "other", "by_int", "list"]
    );
    assert_eq!(model::from_value::<Record>(v.clone()).unwrap(), r);
    assert_eq!(model::from_value_ref::<Record>(&v).unwrap(), r);

    // Value itself: to_value is the identity, DateTime and Base64 stay typed.
    let all = Value::Array(vec![
        Value::DateTime(DateTime::epoch()),
        Value::Base64(vec![1, 2, 3]),
        Value::Double(f64::NEG_INFINITY),
        Value::Nil,
        Value::Struct(Struct(vec![
            ("b".into(), Value::Int(1)),
            ("a".into(), Value::Int(2)),
        ])),
    ]);
    assert_eq!(model::to_value(&all).unwrap(), all);
    assert!(model::to_value(&u64::MAX)
        .unwrap_err()
        .message
        .contains("does not fit"));
}

#[test]
fn from_value_leniency() {
    assert_eq!(model::from_value::<i64>(s(" 143 ")).unwrap(), 143);
    assert_eq!(model::from_value::<u8>(s("255")).unwrap(), 255);
    assert!(model::from_value::<u8>(s("256"))
        .unwrap_err()
        .message
        .contains("out of range"));
    assert!(model::from_value::<i64>(Value::Double(1.0)).is_err());
    assert_eq!(model::from_value::<f64>(Value::Int(2)).unwrap(), 2.0);
    assert_eq!(model::from_value::<f64>(s("1.5")).unwrap(), 1.5);
    assert!(model::from_value::<f64>(s("nan")).unwrap().is_nan());
    assert_eq!(
        model::from_value::<f64>(s("-inf")).unwrap(),
        f64::NEG_INFINITY
    );
    assert_eq!(
        model::from_value::<f64>(s("Infinity")).unwrap(),
        f64::INFINITY
    );
    assert!(model::from_value::<bool>(s("true")).unwrap());
    assert!(!model::from_value::<bool>(s("false")).unwrap());
    assert!(model::from_value::<bool>(s("yes")).is_err());
    assert_eq!(
        model::from_value::<Option<String>>(Value::Nil).unwrap(),
        None
    );
    assert_eq!(model::from_value::<()>(s("")).unwrap(), ());
    assert_eq!(model::from_value::<Mode>(s("Fast")).unwrap(), Mode::Fast);
    let m: BTreeMap<i64, f64> = model::from_value(Value::Struct(Struct(vec![
        ("1".into(), s("0.5")),
        ("0".into(), Value::Int(1)),
    ])))
    .unwrap();
    assert_eq!(m, [(0, 1.0), (1, 0.5)].into());

    // Errors say where.
    let v = Value::Struct(Struct(vec![(
        "vms".into(),
        Value::Array(vec![
            Value::Struct(Struct::new()),
            Value::Struct(Struct(vec![("n".into(), s("x"))])),
        ]),
    )]));
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        #[serde(default)]
        n: i64,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        vms: Vec<Inner>,
    }
    let e = model::from_value::<Outer>(v).unwrap_err();
    assert_eq!(e.path.as_deref(), Some(".vms[1].n"), "{e}");
    assert!(
        e.message
            .contains("expected an integer, found string \"x\""),
        "{e}"
    );
    let e = model::from_value::<BTreeMap<i64, i64>>(Value::Struct(Struct(vec![(
        "k".into(),
        Value::Int(1),
    )])))
    .unwrap_err();
    assert_eq!(e.path.as_deref(), Some(".k"), "{e}");
}

fn bad(text: &[u8], limits: Limits) -> DecodeError {
    match (decode_call(text, limits), decode_reply(text, limits)) {
        (Err(e), Err(_)) => e,
        other => panic!("accepted {:?}: {other:?}", String::from_utf8_lossy(text)),
    }
}

#[test]
fn bad_input() {
    let cases: &[(&[u8], &str, Option<u64>)] = &[
        (b"", "EOF while parsing", Some(0)),
        (
            br#"{"result":1,"id":1"#,
            "EOF while parsing an object",
            Some(18),
        ),
        (
            br#"{"method":"x","params":[],"id":1} x"#,
            "trailing characters",
            Some(35),
        ),
        (
            b"{\"method\":\"a\xc3\",\"id\":1}",
            "invalid UTF-8",
            Some(12),
        ),
        (b"[1,2]", "expected a JSON-RPC object", Some(0)),
        (
            br#"{"method":"a","params":[NaNa],"id":1}"#,
            "expected value",
            Some(25),
        ),
        (
            br#"{"method":"a","params":[01],"id":1}"#,
            "invalid number",
            Some(26),
        ),
        (
            br#"{"method":"a","params":["\ud800\u0041"],"id":1}"#,
            "lone leading surrogate",
            None,
        ),
        (
            br#"{"method":"a","params":["\ud800"],"id":1}"#,
            "unexpected end of hex escape",
            None,
        ),
        (
            br#"{"method":"a","params":["abc"#,
            "EOF while parsing a string",
            Some(28),
        ),
        (
            br#"{"method":"a","id":1,"id":2}"#,
            "duplicate member \"id\"",
            None,
        ),
        (
            br#"{"jsonrpc":"3.0","method":"a","id":1,"result":1}"#,
            "unsupported JSON-RPC version",
            None,
        ),
    ];
    for (text, msg, offset) in cases {
        let e = bad(text, lim());
        assert!(
            e.message.contains(msg),
            "{:?}: {e}",
            String::from_utf8_lossy(text)
        );
        if offset.is_some() {
            assert_eq!(
                e.offset,
                *offset,
                "{:?}: {e}",
                String::from_utf8_lossy(text)
            );
        }
    }

    // Request-only problems.
    let calls: &[(&[u8], &str, Option<&str>)] = &[
        (br#"{"method":"a","params":[]}"#, "request has no id", None),
        (
            br#"{"method":"a","params":[],"id":null}"#,
            "request has no id",
            None,
        ),
        (
            br#"{"method":"a","params":[],"id":1.5}"#,
            "expected a string or an int64, found double",
            Some("id"),
        ),
        (
            br#"{"method":"a","params":[],"id":{}}"#,
            "found struct",
            Some("id"),
        ),
        (br#"{"params":[],"id":1}"#, "request has no method", None),
        (
            br#"{"method":5,"params":[],"id":1}"#,
            "expected a string, found int",
            Some("method"),
        ),
        (
            br#"{"method":"a","params":"x","id":1}"#,
            "expected an array",
            Some("params"),
        ),
        (
            br#"{"method":"a","params":{"a":1},"id":1}"#,
            "expected an array, found struct",
            Some("params"),
        ),
        (
            br#"{"method":"a","params":null,"id":1}"#,
            "found nil",
            Some("params"),
        ),
        (
            br#"{"jsonrpc":2,"method":"a","id":1}"#,
            "expected \"2.0\"",
            Some("jsonrpc"),
        ),
    ];
    for (text, msg, path) in calls {
        let e = decode_call(text, lim()).unwrap_err();
        assert!(
            e.message.contains(msg),
            "{:?}: {e}",
            String::from_utf8_lossy(text)
        );
        assert_eq!(
            e.path.as_deref(),
            *path,
            "{:?}: {e}",
            String::from_utf8_lossy(text)
        );
    }

    // Reply-only problems.
    let replies: &[(&[u8], &str)] = &[
        (br#"{"id":1}"#, "neither result nor error"),
        (br#"{"error":null,"id":1}"#, "neither result nor error"),
        (
            br#"{"error":5,"id":1}"#,
            "expected null, an array or an object",
        ),
        (
            br#"{"error":{"code":1},"id":1}"#,
            "error object has no message",
        ),
        (
            br#"{"error":[["nested"]],"id":1}"#,
            "expected a string, found array",
        ),
        (br#"{"result":1,"id":1e400}"#, "number out of range"),
    ];
    for (text, msg) in replies {
        let e = decode_reply(text, lim()).unwrap_err();
        assert!(
            e.message.contains(msg),
            "{:?}: {e}",
            String::from_utf8_lossy(text)
        );
        let e = decode_reply_typed::<Value>(text, lim()).unwrap_err();
        assert!(
            e.message.contains(msg),
            "typed {:?}: {e}",
            String::from_utf8_lossy(text)
        );
    }
}

#[test]
fn limits() {
    let deep = |n: usize| format!(r#"{{"result":{}1{},"id":1}}"#, "[".repeat(n), "]".repeat(n));
    let limits = Limits {
        max_depth: 10,
        max_size: 1 << 20,
    };
    assert!(decode_reply(deep(10).as_bytes(), limits).is_ok());
    let e = decode_reply(deep(12).as_bytes(), limits).unwrap_err();
    assert!(e.message.contains("nesting deeper than 12 levels"), "{e}");
    assert_eq!(e.offset, Some(21));
    // The default limit holds far below serde_json's own recursion limit and the stack.
    let e = decode_reply(deep(100_000).as_bytes(), lim()).unwrap_err();
    assert!(e.message.contains("nesting deeper"), "{e}");
    let e = decode_reply_typed::<Value>(deep(100_000).as_bytes(), lim()).unwrap_err();
    assert!(e.message.contains("nesting deeper"), "{e}");
    let small = Limits {
        max_depth: 10,
        max_size: 10,
    };
    assert!(decode_reply(br#"{"result":1,"id":1}"#, small)
        .unwrap_err()
        .message
        .contains("exceeds the limit of 10 bytes"));
}

#[test]
fn typed_json_lines_for_fixtures() {
    let line = |name: &str| typed_json::describe_jsonrpc(&fixture(name), lim()).unwrap();
    assert_eq!(
        line("login_request_v2.json"),
        r#""kind":"jsonrpc","methodName":"session.login_with_password","params":[{"string":"root"},{"string":"hunter2"},{"string":"2.21"},{"string":"xo-rs/0.1"}]"#
    );
    assert_eq!(
        line("failure_v2.json"),
        r#""kind":"jsonrpc","error":{"code":"VM_BAD_POWER_STATE","params":["OpaqueRef:0a9d8c7b-1111-2222-3333-444455556666","halted","running"]}"#
    );
    assert_eq!(
        line("int_limits_v2.json"),
        r#""kind":"jsonrpc","params":[{"array":[{"int":"9223372036854775807"},{"int":"-9223372036854775808"},{"int":"9007199254740993"},{"int":"-9007199254740993"},{"int":"0"}]}]"#
    );
    assert!(line("vm_metrics_nan_v2.json").contains(
        r#""VCPUs_utilisation":{"struct":{"0":{"double":"nan"},"1":{"double":"inf"},"2":{"double":"-inf"},"3":{"double":0.75}}}"#
    ));
    // Every fixture renders to valid JSON.
    let dir = format!("{}/tests/fixtures/jsonrpc", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let fields = typed_json::describe_jsonrpc(&std::fs::read(&path).unwrap(), lim())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str::<serde_json::Value>(&format!("{{{fields}}}")).unwrap();
        n += 1;
    }
    assert!(n >= 10);
}

#[test]
fn decode_message_tells_calls_from_replies() {
    assert!(matches!(
        decode_message(&fixture("vm_start_request_v1.json"), lim()),
        Ok(Message::Call(_))
    ));
    assert!(matches!(
        decode_message(&fixture("event_from_v1.json"), lim()),
        Ok(Message::Reply(_))
    ));
}

/// Found by fuzzing: floats must survive encode → decode bit for bit (needs serde_json's
/// `float_roundtrip`; its default parser can be one ULP off, e.g. for integers beyond u64).
#[test]
#[allow(clippy::excessive_precision)] // the literal is the input, digit for digit
fn floats_round_trip_exactly() {
    let text = br#"{"jsonrpc":"2.0","result":[92233720390071992740993,0.30000000000000004,1.7976931348623157e308,5e-324,-2.2250738585072014e-308,9007199254740993.0,0.1],"id":-5}"#;
    let v = decode_reply(text, lim()).unwrap().outcome.unwrap();
    let want = [
        9.2233720390071992740993e22,
        0.30000000000000004,
        f64::MAX,
        5e-324,
        -2.2250738585072014e-308,
        9007199254740993.0,
        0.1,
    ];
    let got: Vec<f64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(
        got.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
        want.iter().map(|f| f.to_bits()).collect::<Vec<_>>()
    );
    for version in [Version::V1, Version::V2] {
        let again =
            decode_reply(&encode_reply(&Ok(v.clone()), &Id::Int(1), version), lim()).unwrap();
        assert_eq!(again.outcome.unwrap(), v);
    }
}

#[test]
fn void_results() {
    use xo_core::rpc::Void;
    for text in [
        &br#"{"jsonrpc":"2.0","result":"","id":1}"#[..],
        br#"{"result":null,"error":null,"id":1}"#,
    ] {
        let r = decode_reply_typed::<Void>(text, lim()).unwrap();
        assert_eq!(r.outcome, Ok(Void));
    }
}
