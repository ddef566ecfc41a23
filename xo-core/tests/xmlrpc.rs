//! XML-RPC codec: xapi's wire forms both ways, round trips, typed decoding, hostile input.

use std::collections::BTreeMap;

use serde::Deserialize;
use xo_core::model::{ApiFailure, DateTime, Struct, Value};
use xo_core::rpc::xmlrpc::*;
use xo_core::rpc::{DecodeError, Limits, MethodCall, Void};

fn lim() -> Limits {
    Limits::default()
}

fn val(xml: &str) -> Value {
    decode_value(xml.as_bytes(), lim()).unwrap_or_else(|e| panic!("{xml}: {e}"))
}

fn val_err(xml: &str) -> DecodeError {
    match decode_value(xml.as_bytes(), lim()) {
        Ok(v) => panic!("{xml} decoded to {v:?}"),
        Err(e) => e,
    }
}

fn s(x: &str) -> Value {
    Value::String(x.into())
}

fn st(members: &[(&str, Value)]) -> Value {
    Value::Struct(
        members
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// Wraps a value in xapi's success envelope, as xapi writes it.
fn success(value_xml: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>\
         <member><name>Status</name><value>Success</value></member>\
         <member><name>Value</name>{value_xml}</member>\
         </struct></value></param></params></methodResponse>"
    )
}

// ---------------------------------------------------------------- scalars and forms

#[test]
fn untagged_text_is_a_string_with_whitespace_kept() {
    assert_eq!(val("<value>  a b\n\t</value>"), s("  a b\n\t"));
    assert_eq!(val("<value>\r\n</value>"), s("\r\n"));
    assert_eq!(val("<value>123</value>"), s("123"));
    assert_eq!(val("<value></value>"), s(""));
    assert_eq!(val("<value/>"), s(""));
    assert_eq!(val("<value>héllo ✓</value>"), s("héllo ✓"));
}

#[test]
fn tagged_scalars() {
    assert_eq!(val("<value><string> x </string></value>"), s(" x "));
    assert_eq!(val("<value><string/></value>"), s(""));
    assert_eq!(val("<value><int>-42</int></value>"), Value::Int(-42));
    assert_eq!(val("<value><i4>7</i4></value>"), Value::Int(7));
    assert_eq!(
        val("<value><i8>9223372036854775807</i8></value>"),
        Value::Int(i64::MAX)
    );
    assert_eq!(val("<value><int> +5 </int></value>"), Value::Int(5));
    assert_eq!(
        val("<value><boolean>1</boolean></value>"),
        Value::Bool(true)
    );
    assert_eq!(
        val("<value><boolean>0</boolean></value>"),
        Value::Bool(false)
    );
    assert_eq!(
        val("<value><double>1.5</double></value>"),
        Value::Double(1.5)
    );
    assert_eq!(val("<value><double>1</double></value>"), Value::Double(1.0));
    assert_eq!(
        val("<value><double>-2.5e-3</double></value>"),
        Value::Double(-0.0025)
    );
    assert_eq!(val("<value><nil/></value>"), Value::Nil);
    assert_eq!(val("<value><nil></nil></value>"), Value::Nil);
    // whitespace around a typed child is layout, not content
    assert_eq!(val("<value>\n  <int>3</int>\n</value>"), Value::Int(3));
}

#[test]
fn non_finite_doubles_in_every_spelling() {
    for t in ["nan", "NaN", "-nan"] {
        match val(&format!("<value><double>{t}</double></value>")) {
            Value::Double(f) => assert!(f.is_nan(), "{t}"),
            other => panic!("{t}: {other:?}"),
        }
    }
    for (t, want) in [
        ("inf", f64::INFINITY),
        ("Infinity", f64::INFINITY),
        ("-inf", f64::NEG_INFINITY),
        ("-Infinity", f64::NEG_INFINITY),
    ] {
        assert_eq!(
            val(&format!("<value><double>{t}</double></value>")),
            Value::Double(want),
            "{t}"
        );
    }
}

#[test]
fn datetimes_in_xapi_forms() {
    let cases = [
        ("20240101T00:00:00Z", Some(0), 1704067200),
        ("20240101T01:00:00+01:00", Some(60), 1704067200),
        ("20240101T00:00:00", None, 1704067200),
        ("2024-01-01T00:00:00Z", Some(0), 1704067200),
    ];
    for (text, offset, unix) in cases {
        match val(&format!(
            "<value><dateTime.iso8601>{text}</dateTime.iso8601></value>"
        )) {
            Value::DateTime(d) => {
                assert_eq!(d.as_str(), text);
                assert_eq!(d.offset_minutes(), offset, "{text}");
                assert_eq!(d.unix(), unix, "{text}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn base64_with_line_breaks() {
    // "hello world!" in base64 is aGVsbG8gd29ybGQh
    assert_eq!(
        val("<value><base64>aGVsbG8g\n  d29ybGQh\r\n</base64></value>"),
        Value::Base64(b"hello world!".to_vec())
    );
    assert_eq!(
        val("<value><base64></base64></value>"),
        Value::Base64(vec![])
    );
    assert_eq!(
        val("<value><base64>YQ</base64></value>"),
        Value::Base64(b"a".to_vec())
    );
}

#[test]
fn empty_containers_in_every_form() {
    for xml in [
        "<value><array><data/></array></value>",
        "<value><array><data></data></array></value>",
        "<value><array/></value>",
        "<value><array></array></value>",
        "<value><array>\n <data>\n </data>\n</array></value>",
    ] {
        assert_eq!(val(xml), Value::Array(vec![]), "{xml}");
    }
    assert_eq!(
        val("<value><struct/></value>"),
        Value::Struct(Struct::new())
    );
    assert_eq!(
        val("<value><struct></struct></value>"),
        Value::Struct(Struct::new())
    );
}

#[test]
fn containers_keep_order_and_nesting() {
    let v = val(
        "<value><struct><member><name>b</name><value><array><data><value>x</value><value/><value><i4>1</i4></value></data></array></value></member>\
         <member><name>a</name><value><struct><member><name></name><value>e</value></member></struct></value></member></struct></value>",
    );
    let want = st(&[
        ("b", Value::Array(vec![s("x"), s(""), Value::Int(1)])),
        ("a", st(&[("", s("e"))])),
    ]);
    assert_eq!(v, want);
}

#[test]
fn entities_char_refs_and_cdata() {
    assert_eq!(
        val("<value>a&amp;b&lt;c&gt;d&quot;e&apos;f</value>"),
        s("a&b<c>d\"e'f")
    );
    assert_eq!(val("<value>&#x41;&#66;&#x2713;</value>"), s("AB✓"));
    assert_eq!(val("<value><string>x&amp;y</string></value>"), s("x&y"));
    assert_eq!(
        val("<value><![CDATA[<not a tag> & ]]>tail</value>"),
        s("<not a tag> & tail")
    );
    assert_eq!(val("<value>a<!-- note -->b</value>"), s("ab"));
    let v = val(
        "<value><struct><member><name>a&amp;b</name><value>1</value></member></struct></value>",
    );
    assert_eq!(v, st(&[("a&b", s("1"))]));
}

#[test]
fn whitespace_inside_end_tags() {
    let xml = "<value ><struct\t><member><name>a</name ><value>x</value\n></member  ></struct\r\n></value >";
    let v = decode_value(xml.as_bytes(), lim()).unwrap();
    assert_eq!(v.get("a").and_then(Value::as_str), Some("x"));
    let typed: BTreeMap<String, String> = from_fragment(xml.as_bytes(), lim()).unwrap();
    assert_eq!(typed.get("a").map(String::as_str), Some("x"));
    // a different name is still a mismatch, whitespace or not
    assert!(decode_value(b"<value>x</valu >", lim()).is_err());
}

#[test]
fn prolog_comments_and_layout() {
    let xml = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->\n<methodResponse>\n  <params>\n    <param>\n      <value><int>1</int></value>\n    </param>\n  </params>\n</methodResponse>\n<!-- end -->\n";
    assert_eq!(
        decode_response(xml.as_bytes(), lim()).unwrap(),
        Response::Params(vec![Value::Int(1)])
    );
}

// ---------------------------------------------------------------- documents

#[test]
fn method_call_and_detection() {
    let xml = "<?xml version=\"1.0\"?><methodCall><methodName>VM.start</methodName><params>\
               <param><value>OpaqueRef:s</value></param><param><value><boolean>0</boolean></value></param></params></methodCall>";
    let want = MethodCall {
        method: "VM.start".into(),
        params: vec![s("OpaqueRef:s"), Value::Bool(false)],
    };
    assert_eq!(decode_call(xml.as_bytes(), lim()).unwrap(), want);
    assert_eq!(
        decode_document(xml.as_bytes(), lim()).unwrap(),
        Document::Call(want)
    );
    let bare = "<methodCall><methodName>system.listMethods</methodName></methodCall>";
    assert_eq!(decode_call(bare.as_bytes(), lim()).unwrap().params, vec![]);
    let empty_params = "<methodCall><methodName>a</methodName><params/></methodCall>";
    assert_eq!(
        decode_call(empty_params.as_bytes(), lim()).unwrap().method,
        "a"
    );
    let resp = success("<value>x</value>");
    assert!(matches!(
        decode_document(resp.as_bytes(), lim()).unwrap(),
        Document::Response(_)
    ));
    assert!(decode_call(resp.as_bytes(), lim())
        .unwrap_err()
        .message
        .contains("methodCall"));
    assert!(decode_response(xml.as_bytes(), lim())
        .unwrap_err()
        .message
        .contains("methodResponse"));
}

#[test]
fn fault_response() {
    let xml = "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>4</int></value></member>\
               <member><name>faultString</name><value><string>Too many parameters.</string></value></member></struct></value></fault></methodResponse>";
    let want = Response::Fault {
        code: 4,
        message: "Too many parameters.".into(),
    };
    assert_eq!(decode_response(xml.as_bytes(), lim()).unwrap(), want);
    let e = decode_envelope(xml.as_bytes(), lim()).unwrap_err();
    assert!(
        e.message.contains("fault 4") && e.message.contains("Too many"),
        "{e}"
    );
    let e = decode_envelope_typed::<String>(xml.as_bytes(), lim()).unwrap_err();
    assert!(e.message.contains("fault 4"), "{e}");
    // our own encoder's faults read back
    let enc = encode_fault(-32601, "no <such> method");
    assert_eq!(
        decode_response(&enc, lim()).unwrap(),
        Response::Fault {
            code: -32601,
            message: "no <such> method".into()
        }
    );
}

// ---------------------------------------------------------------- real-world shaped fixtures

const LOGIN: &str = "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value>OpaqueRef:2a8bb7a2-1a6c-4f09-b64f-a3b7e5e6a0c1</value></member></struct></value></param></params></methodResponse>";

const HOST_IS_SLAVE: &str = "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data><value>HOST_IS_SLAVE</value><value>192.168.1.10</value></data></array></value></member></struct></value></param></params></methodResponse>";

/// A VM.get_all_records reply trimmed to a few fields per record, in xapi's compact style.
const VM_RECORDS: &str = concat!(
    "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>",
    "<member><name>Status</name><value>Success</value></member>",
    "<member><name>Value</name><value><struct>",
    "<member><name>OpaqueRef:a1</name><value><struct>",
    "<member><name>uuid</name><value>0b8f2c6e-8a8c-4d0a-b0c9-7f1f5c2a9e11</value></member>",
    "<member><name>name_label</name><value>web &amp; db</value></member>",
    "<member><name>power_state</name><value>Running</value></member>",
    "<member><name>memory_target</name><value>8589934592</value></member>",
    "<member><name>VCPUs_max</name><value>4</value></member>",
    "<member><name>domid</name><value>143</value></member>",
    "<member><name>is_a_template</name><value><boolean>0</boolean></value></member>",
    "<member><name>other_config</name><value><struct><member><name>base_template_name</name><value>Debian Bookworm 12</value></member><member><name>import_task</name><value>OpaqueRef:NULL</value></member></struct></value></member>",
    "<member><name>tags</name><value><array><data><value>prod</value><value> web </value></data></array></value></member>",
    "<member><name>blocked_operations</name><value><struct/></value></member>",
    "<member><name>snapshot_time</name><value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value></member>",
    "<member><name>memory_overhead</name><value>84934656</value></member>",
    "<member><name>future_field</name><value><struct><member><name>x</name><value><array><data><value><i4>1</i4></value></data></array></value></member></struct></value></member>",
    "</struct></value></member>",
    "<member><name>OpaqueRef:b2</name><value><struct>",
    "<member><name>tags</name><value><array><data/></array></value></member>",
    "<member><name>is_a_template</name><value><boolean>1</boolean></value></member>",
    "<member><name>name_label</name><value>Debian Bookworm 12</value></member>",
    "<member><name>power_state</name><value>Halted</value></member>",
    "<member><name>domid</name><value>-1</value></member>",
    "</struct></value></member>",
    "</struct></value></member></struct></value></param></params></methodResponse>",
);

/// An event.from batch: the only place xapi writes `<i4>` is valid_ref_counts.
const EVENT_FROM: &str = concat!(
    "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>",
    "<member><name>Status</name><value>Success</value></member>",
    "<member><name>Value</name><value><struct>",
    "<member><name>events</name><value><array><data>",
    "<value><struct><member><name>id</name><value>1234</value></member>",
    "<member><name>timestamp</name><value>1700000000.123</value></member>",
    "<member><name>class</name><value>vm_metrics</value></member>",
    "<member><name>operation</name><value>mod</value></member>",
    "<member><name>ref</name><value>OpaqueRef:m1</value></member>",
    "<member><name>snapshot</name><value><struct><member><name>VCPUs_utilisation</name><value><struct>",
    "<member><name>0</name><value><double>0.25</double></value></member>",
    "<member><name>1</name><value><double>nan</double></value></member>",
    "</struct></value></member><member><name>memory_actual</name><value>1073741824</value></member></struct></value></member>",
    "</struct></value>",
    "<value><struct><member><name>id</name><value>1235</value></member><member><name>class</name><value>vm</value></member>",
    "<member><name>operation</name><value>del</value></member><member><name>ref</name><value>OpaqueRef:gone</value></member></struct></value>",
    "</data></array></value></member>",
    "<member><name>valid_ref_counts</name><value><struct><member><name>VM</name><value><i4>3</i4></value></member><member><name>VM_metrics</name><value><i4>3</i4></value></member></struct></value></member>",
    "<member><name>token</name><value>00000000000000001235,00000000000000000000</value></member>",
    "</struct></value></member></struct></value></param></params></methodResponse>",
);

#[test]
fn login_and_failure_envelopes() {
    assert_eq!(
        decode_envelope(LOGIN.as_bytes(), lim()).unwrap(),
        Ok(s("OpaqueRef:2a8bb7a2-1a6c-4f09-b64f-a3b7e5e6a0c1"))
    );
    let typed: Result<String, ApiFailure> = decode_envelope_typed(LOGIN.as_bytes(), lim()).unwrap();
    assert_eq!(
        typed.unwrap(),
        "OpaqueRef:2a8bb7a2-1a6c-4f09-b64f-a3b7e5e6a0c1"
    );
    let want = ApiFailure::new("HOST_IS_SLAVE", vec!["192.168.1.10".into()]);
    assert_eq!(
        decode_envelope(HOST_IS_SLAVE.as_bytes(), lim()).unwrap(),
        Err(want.clone())
    );
    // the typed path never tries to read T from a failure
    assert_eq!(
        decode_envelope_typed::<BTreeMap<String, i64>>(HOST_IS_SLAVE.as_bytes(), lim()).unwrap(),
        Err(want)
    );
}

#[test]
fn envelope_members_in_any_order() {
    let xml = "<methodResponse><params><param><value><struct>\
               <member><name>Value</name><value>4</value></member>\
               <member><name>extra</name><value><array><data><value>x</value></data></array></value></member>\
               <member><name>Status</name><value>Success</value></member>\
               </struct></value></param></params></methodResponse>";
    assert_eq!(
        decode_envelope_typed::<i64>(xml.as_bytes(), lim()).unwrap(),
        Ok(4)
    );
    assert_eq!(decode_envelope(xml.as_bytes(), lim()).unwrap(), Ok(s("4")));
    let fail = "<methodResponse><params><param><value><struct>\
                <member><name>ErrorDescription</name><value><array><data><value>SESSION_INVALID</value><value>OpaqueRef:x</value></data></array></value></member>\
                <member><name>Status</name><value>Failure</value></member></struct></value></param></params></methodResponse>";
    let want = ApiFailure::new("SESSION_INVALID", vec!["OpaqueRef:x".into()]);
    assert_eq!(
        decode_envelope_typed::<i64>(fail.as_bytes(), lim()).unwrap(),
        Err(want.clone())
    );
    assert_eq!(decode_envelope(fail.as_bytes(), lim()).unwrap(), Err(want));
}

#[test]
fn envelope_shape_errors() {
    let no_status = "<methodResponse><params><param><value><struct><member><name>Value</name><value>1</value></member></struct></value></param></params></methodResponse>";
    let odd_status = success("<value>1</value>").replace(">Success<", ">Maybe<");
    let no_value = "<methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member></struct></value></param></params></methodResponse>";
    let not_struct = "<methodResponse><params><param><value>OpaqueRef:x</value></param></params></methodResponse>";
    for (xml, want) in [
        (no_status, "no"),
        (&odd_status, "unknown Status"),
        (no_value, "no Value"),
        (not_struct, "not a struct"),
    ] {
        let e1 = decode_envelope(xml.as_bytes(), lim()).unwrap_err();
        let e2 = decode_envelope_typed::<Value2>(xml.as_bytes(), lim()).unwrap_err();
        assert!(e1.message.contains(want), "{e1}");
        assert!(e2.message.contains(want), "{e2}");
    }
}

/// Any shape at all, for envelope tests.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Value2(serde::de::IgnoredAny);

#[test]
fn void_result_and_fragments() {
    assert_eq!(
        decode_envelope_typed::<Void>(success("<value></value>").as_bytes(), lim()).unwrap(),
        Ok(Void)
    );
    assert_eq!(
        decode_envelope_typed::<()>(success("<value/>").as_bytes(), lim()).unwrap(),
        Ok(())
    );
    assert_eq!(
        decode_envelope_typed::<()>(success("<value><nil/></value>").as_bytes(), lim()).unwrap(),
        Ok(())
    );
    // task.result is a bare <value> fragment
    let r: String = from_fragment(b"<value>OpaqueRef:new-vm</value>", lim()).unwrap();
    assert_eq!(r, "OpaqueRef:new-vm");
    let n: Vec<i64> = from_fragment(
        b"<value><array><data><value>1</value><value><i8>2</i8></value></data></array></value>",
        lim(),
    )
    .unwrap();
    assert_eq!(n, vec![1, 2]);
    assert_eq!(
        decode_value(b"<value>OpaqueRef:x</value>", lim()).unwrap(),
        s("OpaqueRef:x")
    );
}

#[test]
fn event_batch_generic() {
    let v = decode_envelope(EVENT_FROM.as_bytes(), lim())
        .unwrap()
        .unwrap();
    let counts = v.get("valid_ref_counts").unwrap();
    assert_eq!(counts.get("VM"), Some(&Value::Int(3)));
    let events = v.get("events").and_then(Value::as_array).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].get("id").and_then(Value::as_i64), Some(1234));
    let util = events[0]
        .get("snapshot")
        .and_then(|s| s.get("VCPUs_utilisation"))
        .unwrap();
    assert_eq!(util.get("0"), Some(&Value::Double(0.25)));
    assert!(matches!(util.get("1"), Some(Value::Double(f)) if f.is_nan()));
    assert_eq!(events[1].get("snapshot"), None);
}

// ---------------------------------------------------------------- typed decoding

#[derive(Debug, Default, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
enum PowerState {
    #[default]
    Halted,
    Paused,
    Running,
    Suspended,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
struct Vm {
    uuid: String,
    name_label: String,
    power_state: PowerState,
    memory_target: i64,
    #[serde(rename = "VCPUs_max")]
    vcpus_max: i64,
    domid: i64,
    is_a_template: bool,
    other_config: BTreeMap<String, String>,
    tags: Vec<String>,
    blocked_operations: BTreeMap<String, String>,
    snapshot_time: String,
    memory_overhead: u64,
    /// Not on the wire: stays None.
    affinity: Option<String>,
}

#[test]
fn typed_vm_records() {
    let recs: BTreeMap<String, Vm> = decode_envelope_typed(VM_RECORDS.as_bytes(), lim())
        .unwrap()
        .unwrap();
    assert_eq!(recs.len(), 2);
    let a = &recs["OpaqueRef:a1"];
    assert_eq!(a.uuid, "0b8f2c6e-8a8c-4d0a-b0c9-7f1f5c2a9e11");
    assert_eq!(a.name_label, "web & db");
    assert_eq!(a.power_state, PowerState::Running);
    assert_eq!(a.memory_target, 8_589_934_592);
    assert_eq!(a.vcpus_max, 4);
    assert_eq!(a.domid, 143);
    assert!(!a.is_a_template);
    assert_eq!(
        a.other_config.get("import_task").map(String::as_str),
        Some("OpaqueRef:NULL")
    );
    assert_eq!(a.other_config.len(), 2);
    assert_eq!(a.tags, vec!["prod".to_string(), " web ".to_string()]);
    assert!(a.blocked_operations.is_empty());
    assert_eq!(a.snapshot_time, "19700101T00:00:00Z");
    assert_eq!(a.memory_overhead, 84_934_656);
    assert_eq!(a.affinity, None);
    // fields in another order, missing ones defaulted
    let b = &recs["OpaqueRef:b2"];
    let want = Vm {
        name_label: "Debian Bookworm 12".into(),
        is_a_template: true,
        domid: -1,
        ..Vm::default()
    };
    assert_eq!(b, &want);
    // the generic path sees the same ints as strings
    let v = decode_envelope(VM_RECORDS.as_bytes(), lim())
        .unwrap()
        .unwrap();
    assert_eq!(
        v.get("OpaqueRef:a1").and_then(|r| r.get("memory_target")),
        Some(&s("8589934592"))
    );
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
struct Snapshot {
    #[serde(rename = "VCPUs_utilisation")]
    vcpus_utilisation: BTreeMap<i64, f64>,
    memory_actual: i64,
}

#[derive(Debug, Deserialize)]
struct Event {
    id: i64,
    #[serde(default)]
    timestamp: f64,
    class: String,
    operation: String,
    #[serde(rename = "ref")]
    ref_: String,
    snapshot: Option<Snapshot>,
}

#[derive(Debug, Deserialize)]
struct Batch {
    events: Vec<Event>,
    valid_ref_counts: BTreeMap<String, i32>,
    token: String,
}

#[test]
fn typed_event_batch() {
    let b: Batch = decode_envelope_typed(EVENT_FROM.as_bytes(), lim())
        .unwrap()
        .unwrap();
    assert_eq!(b.events.len(), 2);
    let e = &b.events[0];
    assert_eq!(
        (
            e.id,
            e.class.as_str(),
            e.operation.as_str(),
            e.ref_.as_str()
        ),
        (1234, "vm_metrics", "mod", "OpaqueRef:m1")
    );
    assert_eq!(e.timestamp, 1_700_000_000.123);
    let snap = e.snapshot.as_ref().unwrap();
    assert_eq!(snap.vcpus_utilisation.get(&0), Some(&0.25));
    assert!(snap.vcpus_utilisation[&1].is_nan());
    assert_eq!(snap.memory_actual, 1 << 30);
    assert!(b.events[1].snapshot.is_none());
    assert_eq!(b.valid_ref_counts["VM_metrics"], 3);
    assert!(b.token.starts_with("00000000000000001235"));
}

#[derive(Debug, Deserialize, PartialEq)]
struct Hints {
    i: i64,
    u: u32,
    small: i8,
    f_untagged: f64,
    f_int: f64,
    f_inf: f64,
    b_text: bool,
    b_num: bool,
    s_from_int: String,
    o_nil: Option<i64>,
    o_some: Option<i64>,
    bytes: serde_bytes_like::Bytes,
    keys_f: BTreeMap<String, f64>,
    keys_bool: BTreeMap<bool, String>,
    enum_keys: BTreeMap<PowerState, i64>,
    tuple: (String, i64),
}

/// A byte buffer that only accepts serde's bytes form (what `<base64>` produces).
mod serde_bytes_like {
    #[derive(Debug, PartialEq)]
    pub struct Bytes(pub Vec<u8>);
    impl<'de> serde::Deserialize<'de> for Bytes {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Bytes;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                    Ok(Bytes(v))
                }
            }
            d.deserialize_byte_buf(V)
        }
    }
}

#[test]
fn typed_hints_parse_from_text() {
    let xml = "<value><struct>\
        <member><name>tuple</name><value><array><data><value>a</value><value>2</value></data></array></value></member>\
        <member><name>i</name><value> -12 </value></member>\
        <member><name>u</name><value><string>7</string></value></member>\
        <member><name>small</name><value><i4>-3</i4></value></member>\
        <member><name>f_untagged</name><value>2.5</value></member>\
        <member><name>f_int</name><value><int>3</int></value></member>\
        <member><name>f_inf</name><value>-Infinity</value></member>\
        <member><name>b_text</name><value>true</value></member>\
        <member><name>b_num</name><value><boolean>1</boolean></value></member>\
        <member><name>s_from_int</name><value><i8>99</i8></value></member>\
        <member><name>o_nil</name><value><nil/></value></member>\
        <member><name>o_some</name><value>5</value></member>\
        <member><name>bytes</name><value><base64>AAEC</base64></value></member>\
        <member><name>keys_f</name><value><struct><member><name>k</name><value><double>0.5</double></value></member></struct></value></member>\
        <member><name>keys_bool</name><value><struct><member><name>true</name><value>y</value></member></struct></value></member>\
        <member><name>enum_keys</name><value><struct><member><name>Paused</name><value>1</value></member></struct></value></member>\
        </struct></value>";
    let h: Hints = from_fragment(xml.as_bytes(), lim()).unwrap();
    let want = Hints {
        i: -12,
        u: 7,
        small: -3,
        f_untagged: 2.5,
        f_int: 3.0,
        f_inf: f64::NEG_INFINITY,
        b_text: true,
        b_num: true,
        s_from_int: "99".into(),
        o_nil: None,
        o_some: Some(5),
        bytes: serde_bytes_like::Bytes(vec![0, 1, 2]),
        keys_f: [("k".to_string(), 0.5)].into(),
        keys_bool: [(true, "y".to_string())].into(),
        enum_keys: [(PowerState::Paused, 1)].into(),
        tuple: ("a".into(), 2),
    };
    assert_eq!(h, want);
}

#[test]
fn typed_any_follows_the_wire_tags() {
    let xml = "<value><array><data><value>3</value><value><i4>3</i4></value><value><double>1.5</double></value>\
               <value><boolean>1</boolean></value><value><nil/></value><value><dateTime.iso8601>20240101T00:00:00Z</dateTime.iso8601></value>\
               <value><struct><member><name>k</name><value><array><data/></array></value></member></struct></value></data></array></value>";
    let j: serde_json::Value = from_fragment(xml.as_bytes(), lim()).unwrap();
    assert_eq!(
        j,
        serde_json::json!(["3", 3, 1.5, true, null, "20240101T00:00:00Z", {"k": []}])
    );
}

#[test]
fn typed_errors_name_the_path() {
    let bad = VM_RECORDS.replace("<value>8589934592</value>", "<value>lots</value>");
    let e = decode_envelope_typed::<BTreeMap<String, Vm>>(bad.as_bytes(), lim()).unwrap_err();
    assert!(
        e.message.contains("expected int") && e.message.contains("lots"),
        "{e}"
    );
    assert_eq!(
        e.path.as_deref(),
        Some(".Value.OpaqueRef:a1.memory_target"),
        "{e}"
    );
    let at = e.offset.unwrap() as usize;
    assert!(
        bad[..at].ends_with("<name>memory_target</name><value>"),
        "offset {at}: {e}"
    );

    let bad = EVENT_FROM.replace(
        "<i4>3</i4></value></member><member><name>VM_metrics",
        "<i4>x</i4></value></member><member><name>VM_metrics",
    );
    let e = decode_envelope_typed::<Batch>(bad.as_bytes(), lim()).unwrap_err();
    assert_eq!(e.path.as_deref(), Some(".Value.valid_ref_counts.VM"), "{e}");

    let bad = EVENT_FROM.replace("<double>0.25</double>", "<double>quarter</double>");
    let e = decode_envelope_typed::<Batch>(bad.as_bytes(), lim()).unwrap_err();
    assert_eq!(
        e.path.as_deref(),
        Some(".Value.events[0].snapshot.VCPUs_utilisation.0"),
        "{e}"
    );
    assert!(e.message.contains("expected double"), "{e}");

    let e = from_fragment::<Vm>(b"<value><struct><member><name>power_state</name><value>Exploded</value></member></struct></value>", lim()).unwrap_err();
    assert!(
        e.message.contains("Exploded") && e.path.as_deref() == Some(".power_state"),
        "{e}"
    );

    let e = from_fragment::<Batch>(
        b"<value><struct><member><name>token</name><value>t</value></member></struct></value>",
        lim(),
    )
    .unwrap_err();
    assert!(e.message.contains("missing field"), "{e}");

    let e = from_fragment::<bool>(b"<value>yes</value>", lim()).unwrap_err();
    assert!(e.message.contains("expected boolean"), "{e}");
    let e = from_fragment::<u8>(b"<value>300</value>", lim()).unwrap_err();
    assert!(e.message.contains("300"), "{e}");
    let e = from_fragment::<BTreeMap<i64, f64>>(
        b"<value><struct><member><name>zero</name><value>1</value></member></struct></value>",
        lim(),
    )
    .unwrap_err();
    assert!(
        e.message.contains("expected int") && e.message.contains("zero"),
        "{e}"
    );
}

#[test]
fn typed_skips_unknown_subtrees_but_not_broken_xml() {
    #[derive(Debug, Deserialize)]
    struct Only {
        a: i64,
    }
    let deep = "<array><data><value>".repeat(20) + "x" + &"</value></data></array>".repeat(20);
    let xml = format!("<value><struct><member><name>junk</name><value>{deep}</value></member><member><name>a</name><value>1</value></member></struct></value>");
    assert_eq!(from_fragment::<Only>(xml.as_bytes(), lim()).unwrap().a, 1);
    let broken = "<value><struct><member><name>junk</name><value><array><data></array></value></member></struct></value>";
    let e = from_fragment::<Only>(broken.as_bytes(), lim()).unwrap_err();
    assert!(
        e.message.contains("expected </data>, found </array>"),
        "{e}"
    );
    let entity = "<value><struct><member><name>junk</name><value><array><data><value>&bogus;</value></data></array></value></member></struct></value>";
    let e = from_fragment::<Only>(entity.as_bytes(), lim()).unwrap_err();
    assert!(e.message.contains("unknown entity"), "{e}");
    let unknown = "<value><struct><member><name>junk</name><value><array><data><value><foo/></value></data></array></value></member></struct></value>";
    assert!(from_fragment::<Only>(unknown.as_bytes(), lim())
        .unwrap_err()
        .message
        .contains("unknown tag <foo>"));
    let truncated = "<value><struct><member><name>junk</name><value><array><data>";
    assert!(from_fragment::<Only>(truncated.as_bytes(), lim())
        .unwrap_err()
        .message
        .contains("truncated"));
    // skipping is bounded by the depth limit as well
    let deep = "<value><struct><member><name>junk</name><value>".to_string()
        + &"<array><data><value>".repeat(1000);
    assert!(from_fragment::<Only>(deep.as_bytes(), lim())
        .unwrap_err()
        .message
        .contains("deeper"));
    // a fixed-size target leaves array elements unread; they are still checked and skipped
    let t: (i64,) = from_fragment(
        b"<value><array><data><value>1</value></data></array></value>",
        lim(),
    )
    .unwrap();
    assert_eq!(t, (1,));
}

// ---------------------------------------------------------------- encoding

#[test]
fn encodes_like_xapi() {
    let mut out = Vec::new();
    encode_value(&s("a<b>&\"c'\u{1}\u{1f}\t\n\rend"), &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "<value>a&lt;b&gt;&amp;&quot;c'\t\n\rend</value>"
    );
    let cases: Vec<(Value, &str)> = vec![
        (Value::Int(-5), "<value>-5</value>"),
        (Value::Bool(true), "<value><boolean>1</boolean></value>"),
        (Value::Bool(false), "<value><boolean>0</boolean></value>"),
        (Value::Double(1.0), "<value><double>1</double></value>"),
        (Value::Double(0.1), "<value><double>0.1</double></value>"),
        (Value::Double(1e300), "<value><double>1e300</double></value>"),
        (Value::Double(f64::NAN), "<value><double>nan</double></value>"),
        (Value::Double(f64::NEG_INFINITY), "<value><double>-inf</double></value>"),
        (Value::DateTime(DateTime::from_unix(0)), "<value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value>"),
        (Value::Base64(b"hello world!".to_vec()), "<value><base64>aGVsbG8gd29ybGQh</base64></value>"),
        (Value::Array(vec![]), "<value><array><data></data></array></value>"),
        (Value::Nil, "<value><nil/></value>"),
        (st(&[("b", s("1")), ("a&", Value::Array(vec![s("")]))]),
         "<value><struct><member><name>b</name><value>1</value></member><member><name>a&amp;</name><value><array><data><value></value></data></array></value></member></struct></value>"),
    ];
    for (v, want) in cases {
        let mut out = Vec::new();
        encode_value(&v, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }
}

/// rpclib's Int32 is xapi's only tagged int (`valid_ref_counts`); readers take it as any int.
#[test]
fn int32_writes_i4_and_reads_back_as_an_int() {
    let v = st(&[
        ("vm", Value::Int32(12)),
        ("min", Value::Int32(i32::MIN)),
        ("max", Value::Int32(i32::MAX)),
        ("plain", Value::Int(12)),
    ]);
    let mut out = Vec::new();
    encode_value(&v, &mut out);
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "<value><struct><member><name>vm</name><value><i4>12</i4></value></member>\
         <member><name>min</name><value><i4>-2147483648</i4></value></member>\
         <member><name>max</name><value><i4>2147483647</i4></value></member>\
         <member><name>plain</name><value>12</value></member></struct></value>"
    );
    let back = decode_value(&out, lim()).unwrap();
    assert_eq!(back.get("vm"), Some(&Value::Int(12)));
    assert_eq!(back.get("min"), Some(&Value::Int(i32::MIN.into())));
    assert_eq!(back.get("max"), Some(&Value::Int(i32::MAX.into())));
    // The untagged int64 still comes back as text.
    assert_eq!(back.get("plain"), Some(&s("12")));
    // Typed decoding and the xapi envelope carry it the same way.
    let counts: BTreeMap<String, i32> = from_fragment(&out, lim()).unwrap();
    assert_eq!(counts["min"], i32::MIN);
    let env = encode_envelope(&Ok(v.clone()));
    let text = String::from_utf8(env.clone()).unwrap();
    assert!(
        text.contains("<name>vm</name><value><i4>12</i4></value>"),
        "{text}"
    );
    let back = decode_envelope(&env, lim()).unwrap().unwrap();
    assert_eq!(back.get("max").and_then(Value::as_i64), Some(2147483647));
    // xapi-decode prints it as it prints a decoded `<i4>`.
    let typed = |v: &Value| {
        let mut line = String::new();
        xo_core::rpc::typed_json::write_value(v, &mut line);
        line
    };
    assert_eq!(
        typed(&Value::Int32(12)),
        typed(&val("<value><i4>12</i4></value>"))
    );
    assert_eq!(typed(&Value::Int32(-3)), r#"{"int":"-3"}"#);
}

#[test]
fn encodes_documents() {
    let call = encode_call("session.login_with_password", &[s("root"), s("p&ss")]);
    assert_eq!(
        String::from_utf8(call.clone()).unwrap(),
        "<?xml version=\"1.0\"?><methodCall><methodName>session.login_with_password</methodName><params>\
         <param><value>root</value></param><param><value>p&amp;ss</value></param></params></methodCall>"
    );
    assert_eq!(
        decode_call(&call, lim()).unwrap().params,
        vec![s("root"), s("p&ss")]
    );
    let ok = encode_envelope(&Ok(s("OpaqueRef:2a8bb7a2-1a6c-4f09-b64f-a3b7e5e6a0c1")));
    assert_eq!(String::from_utf8(ok).unwrap(), LOGIN);
    let fail = encode_envelope(&Err(ApiFailure::new(
        "HOST_IS_SLAVE",
        vec!["192.168.1.10".into()],
    )));
    assert_eq!(String::from_utf8(fail).unwrap(), HOST_IS_SLAVE);
    let r = encode_response(&Value::Int(1));
    assert_eq!(
        decode_response(&r, lim()).unwrap(),
        Response::Params(vec![s("1")])
    );
}

#[test]
fn round_trips() {
    let v = st(&[
        ("s", s("  spaced\r\n <&> \"q\" 'a' ✓ ")),
        ("empty", s("")),
        ("i", Value::Int(i64::MIN)),
        ("d", Value::Double(-1.25e-7)),
        ("big", Value::Double(1.7976931348623157e308)),
        ("b", Value::Bool(true)),
        (
            "t",
            Value::DateTime(DateTime::parse("20240101T01:00:00+01:00").unwrap()),
        ),
        ("bytes", Value::Base64((0u8..=255).collect())),
        ("nil", Value::Nil),
        (
            "arr",
            Value::Array(vec![Value::Array(vec![]), st(&[]), s("x")]),
        ),
    ]);
    let mut out = Vec::new();
    encode_value(&v, &mut out);
    let back = decode_value(&out, lim()).unwrap();
    // ints travel untagged, as xapi writes them: they come back as strings
    let mut want = v.clone();
    if let Value::Struct(m) = &mut want {
        m.insert("i", s(&i64::MIN.to_string()));
    }
    assert_eq!(back, want);
    // and through the envelope, both decoders
    let env = encode_envelope(&Ok(v.clone()));
    assert_eq!(decode_envelope(&env, lim()).unwrap(), Ok(want));
    #[derive(Deserialize)]
    struct Some3 {
        i: i64,
        big: f64,
        s: String,
    }
    let t: Some3 = decode_envelope_typed(&env, lim()).unwrap().unwrap();
    assert_eq!(
        (t.i, t.big, t.s.as_str()),
        (
            i64::MIN,
            1.7976931348623157e308,
            "  spaced\r\n <&> \"q\" 'a' ✓ "
        )
    );
    // control characters are dropped on the way out
    let mut out = Vec::new();
    encode_value(&s("a\u{0}b\u{7}c"), &mut out);
    assert_eq!(decode_value(&out, lim()).unwrap(), s("abc"));
    // every double survives
    for f in [
        0.1,
        1.0 / 3.0,
        5e-324,
        1e-5,
        9.999e15,
        1e16,
        -0.0,
        123456789.125,
    ] {
        let mut out = Vec::new();
        encode_value(&Value::Double(f), &mut out);
        match decode_value(&out, lim()).unwrap() {
            Value::Double(g) => assert_eq!(g.to_bits(), f.to_bits(), "{f}"),
            other => panic!("{other:?}"),
        }
    }
}

// ---------------------------------------------------------------- hostile and broken input

fn assert_bad(xml: &[u8], what: &str) {
    let e = match decode_value(xml, lim()) {
        Ok(v) => panic!("{} decoded to {v:?}", String::from_utf8_lossy(xml)),
        Err(e) => e,
    };
    assert!(
        e.message.contains(what),
        "{}: wanted {what:?}, got {e}",
        String::from_utf8_lossy(xml)
    );
    assert!(e.offset.is_some(), "no offset: {e}");
    // the typed path refuses it too
    assert!(
        from_fragment::<serde_json::Value>(xml, lim()).is_err(),
        "typed accepted {}",
        String::from_utf8_lossy(xml)
    );
}

#[test]
fn bad_input_is_refused_with_what_and_where() {
    let cases: &[(&str, &str)] = &[
        ("<value><foo>1</foo></value>", "unknown tag <foo>"),
        (
            "<value><int>1</i4></value>",
            "expected text or </int>, found </i4>",
        ),
        ("<value><int>1</value>", "found </value>"),
        ("<value>1</valu>", "unexpected end tag </valu>"),
        ("<value><int>1</int>", "truncated"),
        ("<value><struct><member><name>a</name>", "truncated"),
        ("<value>abc", "truncated"),
        ("", "truncated"),
        ("<value>1</value>x", "trailing"),
        ("<value>1</value><value>2</value>", "trailing"),
        ("junk<value>1</value>", "unexpected text"),
        (
            "<value><int>abc</int></value>",
            "expected int, found \"abc\"",
        ),
        ("<value><int/></value>", "expected int"),
        (
            "<value><i8>99999999999999999999</i8></value>",
            "expected int",
        ),
        ("<value><boolean>2</boolean></value>", "expected boolean"),
        ("<value><double>1.2.3</double></value>", "expected double"),
        ("<value><base64>!!!</base64></value>", "invalid base64"),
        (
            "<value><dateTime.iso8601>20241301T00:00:00Z</dateTime.iso8601></value>",
            "invalid datetime",
        ),
        ("<value>abc<int>1</int></value>", "mixed with <int>"),
        ("<value><int>1</int>abc</value>", "unexpected text"),
        (
            "<value><int>1</int><int>2</int></value>",
            "expected </value>",
        ),
        ("<value><nil>x</nil></value>", "<nil> must be empty"),
        ("<value a=\"1\">x</value>", "unexpected attributes"),
        ("<value>&foo;</value>", "unknown entity &foo;"),
        ("<value>&#0;</value>", "invalid character reference"),
        ("<value>a & b</value>", "malformed XML"),
        (
            "<?xml version=\"1.0\"?><!DOCTYPE v [<!ENTITY a \"aaaa\">]><value>&a;</value>",
            "DOCTYPE",
        ),
        (
            "<!DOCTYPE value SYSTEM \"file:///etc/passwd\"><value>x</value>",
            "DOCTYPE",
        ),
        ("<!ENTITY a \"b\"><value>x</value>", "malformed XML"),
        ("<value><!ENTITY a \"b\">x</value>", "malformed XML"),
        (
            "<value><int>1<int>2</int></int></value>",
            "expected text or </int>",
        ),
        (
            "<value><array><value>1</value></array></value>",
            "expected <data>",
        ),
        (
            "<value><struct><value>1</value></struct></value>",
            "expected <member>",
        ),
        (
            "<value><struct><member><value>1</value></member></struct></value>",
            "expected <name>",
        ),
        ("<value><value>1</value></value>", "typed value"),
        ("<value><data/></value>", "typed value"),
        ("<value>1</value><?xml version=\"1.0\"?>", "declaration"),
        (
            "<?xml version=\"1.0\"?><?xml version=\"1.0\"?><value>1</value>",
            "declaration",
        ),
        (" <?xml version=\"1.0\"?><value>1</value>", "declaration"),
        ("<value><?xml version=\"1.0\"?>1</value>", "declaration"),
        (
            "<value><struct><member><name>a<?xml version=\"1.0\"?></name><value/></member></struct></value>",
            "declaration",
        ),
        ("<value><struct><member/></struct></value>", "expected <member> or </struct>"),
        ("<value><array><data><member/></data></array></value>", "expected <value> or </data>"),
        ("<params/>", "expected <value>"),
    ];
    for (xml, what) in cases {
        assert_bad(xml.as_bytes(), what);
    }
}

#[test]
fn invalid_utf8_is_refused_up_front() {
    let e = decode_value(b"<value>ok\xff</value>", lim()).unwrap_err();
    assert!(e.message.contains("UTF-8"), "{e}");
    assert_eq!(e.offset, Some(9));
    // also in places the typed path would skip
    let xml = b"<value><struct><member><name>junk</name><value><array><data><value>\xc3</value></data></array></value></member></struct></value>";
    assert!(
        from_fragment::<BTreeMap<String, serde::de::IgnoredAny>>(xml, lim())
            .unwrap_err()
            .message
            .contains("UTF-8")
    );
}

#[test]
fn depth_limit() {
    let nest = |n: usize| "<value><array><data>".repeat(n) + &"</data></array></value>".repeat(n);
    let limits = Limits {
        max_depth: 8,
        ..Limits::default()
    };
    assert!(decode_value(nest(8).as_bytes(), limits).is_ok());
    let e = decode_value(nest(9).as_bytes(), limits).unwrap_err();
    assert!(
        e.message.contains("deeper than the limit of 8") && e.offset.is_some(),
        "{e}"
    );
    assert!(from_fragment::<serde_json::Value>(nest(8).as_bytes(), limits).is_ok());
    let e = from_fragment::<serde_json::Value>(nest(9).as_bytes(), limits).unwrap_err();
    assert!(e.message.contains("deeper"), "{e}");
    // very deep input with the default limit: an error, not a stack overflow
    let deep = nest(100_000);
    assert!(decode_value(deep.as_bytes(), lim())
        .unwrap_err()
        .message
        .contains("deeper"));
    assert!(from_fragment::<serde_json::Value>(deep.as_bytes(), lim())
        .unwrap_err()
        .message
        .contains("deeper"));
    let structs = "<value><struct><member><name>a</name>".repeat(100) + "<value>x</value>";
    assert!(decode_value(
        structs.as_bytes(),
        Limits {
            max_depth: 50,
            ..lim()
        }
    )
    .unwrap_err()
    .message
    .contains("deeper"));
}

#[test]
fn size_limit() {
    let limits = Limits {
        max_size: 16,
        ..Limits::default()
    };
    assert!(decode_value(b"<value>1</value>", limits).is_ok());
    let e = decode_value(b"<value>12</value>", limits).unwrap_err();
    assert!(e.message.contains("over the limit of 16"), "{e}");
    assert!(decode_envelope_typed::<String>(LOGIN.as_bytes(), limits)
        .unwrap_err()
        .message
        .contains("limit"));
    assert!(decode_document(LOGIN.as_bytes(), limits).is_err());
}

#[test]
fn generic_errors_name_the_path() {
    let e = val_err("<value><array><data><value>1</value><value><struct><member><name>x</name><value><int>z</int></value></member></struct></value></data></array></value>");
    assert_eq!(e.path.as_deref(), Some("[1].x"), "{e}");
    let call = "<methodCall><methodName>m</methodName><params><param><value>a</value></param><param><value><boolean>9</boolean></value></param></params></methodCall>";
    let e = decode_call(call.as_bytes(), lim()).unwrap_err();
    assert_eq!(e.path.as_deref(), Some("params[1]"), "{e}");
    let e = decode_envelope(
        VM_RECORDS.replace("19700101T", "1970010xT").as_bytes(),
        lim(),
    )
    .unwrap_err();
    assert_eq!(
        e.path.as_deref(),
        Some(".Value.OpaqueRef:a1.snapshot_time"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("at .Value.OpaqueRef:a1.snapshot_time (byte "),
        "{e}"
    );
}

#[test]
fn documents_refuse_wrong_roots_and_shapes() {
    for (xml, what) in [
        (
            "<value>1</value>",
            "expected <methodCall> or <methodResponse>",
        ),
        (
            "<methodCall><params/></methodCall>",
            "expected <methodName>",
        ),
        (
            "<methodCall><methodName> </methodName></methodCall>",
            "empty <methodName>",
        ),
        (
            "<methodResponse></methodResponse>",
            "expected <params> or <fault>",
        ),
        (
            "<methodResponse><fault><value>x</value></fault></methodResponse>",
            "fault value is not a struct",
        ),
        ("<methodResponse><params/></methodResponse><x/>", "trailing"),
        ("   ", "empty document"),
    ] {
        let e = decode_document(xml.as_bytes(), lim()).unwrap_err();
        assert!(e.message.contains(what), "{xml}: wanted {what:?}, got {e}");
    }
}
