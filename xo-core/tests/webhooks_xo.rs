//! XO compatibility: the web-hooks plugin config, call/backup payloads, office365 cards, and
//! our pool-event payloads. Expected bodies are written from the plugin's documented
//! behaviour (`{...data, type}`, key order as xo-server builds `data`).

use serde_json::{json, Value};
use xo_core::webhooks::payload::{
    obfuscate, render_xo, xo_backup_post, xo_backup_pre, xo_call_post, xo_call_pre, BackupJobInfo,
    CallInfo, CallOutcome, HookPhase, PoolEvent, XoError, XoPayload,
};
use xo_core::webhooks::router::{pool_event, ObjectChange};
use xo_core::webhooks::spec::{Format, HookType, Operation, Spec, XoConfig};

/// A config as xo-server stores it (defaults filled by Ajv `useDefaults`), plus a hook written
/// by hand without `format`/`waitForResponse`.
const XO_CONFIG: &str = r#"{
  "hooks": [
    {"method": "vm.start", "type": "pre/post", "url": "https://hooks.example.net/xo?action=vm.start",
     "format": "json", "waitForResponse": true},
    {"method": "backupNg.runJob", "type": "post", "url": "https://teams.example.net/webhook/abc",
     "format": "office365"},
    {"method": "vm.snapshot", "type": "pre", "url": "http://10.0.0.5:8080/"}
  ]
}"#;

#[test]
fn xo_config_loads_unchanged_and_round_trips() {
    let cfg = XoConfig::parse(XO_CONFIG).unwrap();
    assert_eq!(cfg.hooks.len(), 3);
    let h = &cfg.hooks[0];
    assert_eq!(h.method, "vm.start");
    assert_eq!(h.type_, HookType::PrePost);
    assert_eq!(h.url, "https://hooks.example.net/xo?action=vm.start");
    assert!(h.wait_for_response());
    assert_eq!(cfg.hooks[1].format(), Format::Office365);
    assert_eq!(
        cfg.hooks[2].format(),
        Format::Json,
        "format defaults to json"
    );
    assert!(!cfg.hooks[2].wait_for_response());
    // Written back, it is the same JSON (absent optional fields stay absent).
    let original: Value = serde_json::from_str(XO_CONFIG).unwrap();
    assert_eq!(cfg.to_value(), original);
    assert_eq!(XoConfig::parse(&cfg.to_json_pretty()).unwrap(), cfg);
    // Unknown fields survive too.
    let with_extra =
        r#"{"hooks":[{"method":"m","type":"post","url":"http://a/","note":"x"}],"v":2}"#;
    let c = XoConfig::parse(with_extra).unwrap();
    assert_eq!(
        c.to_value(),
        serde_json::from_str::<Value>(with_extra).unwrap()
    );
    // And the extended loader accepts it as is.
    let spec = Spec::load(XO_CONFIG).unwrap();
    assert_eq!(spec.endpoints.len(), 3);
    assert_eq!(spec.calls[1].format, Format::Office365);
    assert_eq!(spec.endpoints[0].url, h.url);
}

fn call(params: Value) -> CallInfo {
    CallInfo {
        call_id: "k2j4h5".into(),
        user_id: Some("722d17b9".into()),
        user_name: Some("admin@admin.net".into()),
        user_ip: Some("::ffff:10.0.0.9".into()),
        method: "vm.start".into(),
        params,
        timestamp_ms: 1_700_000_000_000,
    }
}

#[test]
fn call_payloads_field_for_field() {
    let c = call(json!({"id": "a1b2"}));
    let pre = render_xo(Format::Json, &xo_call_pre(&c), HookPhase::Pre);
    assert_eq!(
        String::from_utf8(pre.clone()).unwrap(),
        r#"{"callId":"k2j4h5","userId":"722d17b9","userName":"admin@admin.net","userIp":"::ffff:10.0.0.9","method":"vm.start","params":{"id":"a1b2"},"timestamp":1700000000000,"type":"pre"}"#
    );
    let parsed = XoPayload::parse(&pre).unwrap();
    assert_eq!(parsed.type_, HookPhase::Pre);
    assert_eq!(parsed.duration, None);

    // Post: same callId, end timestamp in place, duration, undefined result -> true.
    let post = render_xo(
        Format::Json,
        &xo_call_post(&c, 1_700_000_000_250, &CallOutcome::Result(None)),
        HookPhase::Post,
    );
    assert_eq!(
        String::from_utf8(post).unwrap(),
        r#"{"callId":"k2j4h5","userId":"722d17b9","userName":"admin@admin.net","userIp":"::ffff:10.0.0.9","method":"vm.start","params":{"id":"a1b2"},"timestamp":1700000000250,"duration":250,"result":true,"type":"post"}"#
    );

    // Error, unauthenticated caller: no userId, default userName.
    let mut anon = c.clone();
    anon.user_id = None;
    anon.user_name = None;
    let mut err = XoError::new("Error", "VM_BAD_POWER_STATE");
    err.code = Some(json!(13));
    err.stack = Some("Error: VM_BAD_POWER_STATE\n    at …".into());
    let body = render_xo(
        Format::Json,
        &xo_call_post(&anon, 1_700_000_001_000, &CallOutcome::Error(err)),
        HookPhase::Post,
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v.get("userId").is_none());
    assert_eq!(v["userName"], "(unknown user)");
    assert_eq!(v["duration"], 1000);
    assert!(v.get("result").is_none());
    assert_eq!(
        v["error"],
        json!({"code":13,"message":"VM_BAD_POWER_STATE","name":"Error","stack":"Error: VM_BAD_POWER_STATE\n    at …"})
    );
    let p = XoPayload::parse(&body).unwrap();
    assert_eq!(p.user_id, None);
    assert!(p.error.is_some());
}

#[test]
fn params_are_obfuscated_but_results_are_not() {
    let c = call(json!({
        "password": "s3cret", "token": "t", "passphrase": "p", "encryptionKey": "k",
        "remote": {"url": "nfs://x", "adminPassword": "a", "nested": [{"PASSWORD2": "b"}]},
        "tokens": "not a secret key", "passwordLength": 12
    }));
    let data = xo_call_post(
        &c,
        c.timestamp_ms + 1,
        &CallOutcome::Result(Some(json!({"token":"new"}))),
    );
    let v: Value =
        serde_json::from_slice(&render_xo(Format::Json, &data, HookPhase::Post)).unwrap();
    let o = "* obfuscated *";
    assert_eq!(
        v["params"],
        json!({"password":o,"token":o,"passphrase":o,"encryptionKey":o,
               "remote":{"url":"nfs://x","adminPassword":o,"nested":[{"PASSWORD2":o}]},
               "tokens":"not a secret key","passwordLength":12})
    );
    // XO sends the result as is (a token.create post hook sees the token).
    assert_eq!(v["result"], json!({"token":"new"}));
    assert_eq!(obfuscate(&json!("password")), json!("password"));
}

#[test]
fn office365_message_card() {
    let mut c = call(json!({"id": "a1b2"}));
    c.user_id = None;
    let card = render_xo(Format::Office365, &xo_call_pre(&c), HookPhase::Pre);
    let want = concat!(
        r#"{"@type":"MessageCard","@context":"https://schema.org/extensions","themeColor":"6B63BF","#,
        r#""summary":"New notification from the Xen-Orchestra webhook plugin","sections":[{"title":"XO PRE notification","facts":["#,
        r#"{"name":"callId","value":"k2j4h5"},{"name":"userId"},{"name":"userName","value":"admin@admin.net"},"#,
        r#"{"name":"userIp","value":"::ffff:10.0.0.9"},{"name":"method","value":"vm.start"},"#,
        r#"{"name":"params","value":"{\"id\":\"a1b2\"}"},{"name":"timestamp","value":"1700000000000"}]}]}"#
    );
    assert_eq!(String::from_utf8(card).unwrap(), want);
    let post = render_xo(
        Format::Office365,
        &xo_call_post(&c, c.timestamp_ms + 5, &CallOutcome::Result(None)),
        HookPhase::Post,
    );
    let v: Value = serde_json::from_slice(&post).unwrap();
    assert_eq!(v["sections"][0]["title"], "XO POST notification");
    let names: Vec<&str> = v["sections"][0]["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "callId",
            "userId",
            "userName",
            "userIp",
            "method",
            "params",
            "timestamp",
            "duration",
            "result"
        ],
        "no type fact"
    );
}

#[test]
fn backup_job_payloads() {
    let j = BackupJobInfo {
        call_id: "q9".into(),
        job_id: "job-1".into(),
        proxy: None,
        schedule: Some("sched-1".into()),
        settings: json!({"": {"retention": 3}}),
        vms: json!({"id": {"__or": ["vm-a", "vm-b"]}}),
        user_id: Some("u1".into()),
        user_name: None,
        timestamp_ms: 1000,
    };
    let pre = render_xo(Format::Json, &xo_backup_pre(&j), HookPhase::Pre);
    assert_eq!(
        String::from_utf8(pre).unwrap(),
        r#"{"callId":"q9","method":"backupNg.runJob","params":{"id":"job-1","schedule":"sched-1","settings":{"":{"retention":3}},"vms":{"id":{"__or":["vm-a","vm-b"]}}},"timestamp":1000,"userId":"u1","userName":"(unknown user)","type":"pre"}"#
    );
    let post = render_xo(
        Format::Json,
        &xo_backup_post(&j, 61_000, None),
        HookPhase::Post,
    );
    assert_eq!(
        String::from_utf8(post).unwrap(),
        r#"{"callId":"q9","method":"backupNg.runJob","params":{"id":"job-1","schedule":"sched-1","settings":{"":{"retention":3}},"vms":{"id":{"__or":["vm-a","vm-b"]}}},"timestamp":61000,"userId":"u1","userName":"(unknown user)","result":true,"duration":60000,"type":"post"}"#
    );
    let failed = xo_backup_post(&j, 2000, Some(&XoError::new("Error", "no space")));
    let v: Value =
        serde_json::from_slice(&render_xo(Format::Json, &failed, HookPhase::Post)).unwrap();
    assert_eq!(v["error"]["message"], "no space");
    assert!(v.get("result").is_none());
}

#[test]
fn pool_event_shape_and_parse() {
    let ch = ObjectChange {
        class: "VM".into(),
        operation: Operation::Mod,
        ref_: "OpaqueRef:5e0c".into(),
        uuid: Some("2f1d".into()),
        old: Some(json!({"power_state": "Halted", "name_label": "web"})),
        new: Some(json!({"power_state": "Running", "name_label": "web"})),
    };
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
    let ev = pool_event(&ch, t);
    let v: Value = serde_json::from_slice(&ev.to_bytes()).unwrap();
    assert_eq!(
        v,
        json!({"type":"vm.mod","timestamp":"2023-11-14T22:13:20.123Z","data":{
            "class":"VM","operation":"mod","ref":"OpaqueRef:5e0c","uuid":"2f1d",
            "snapshot":{"power_state":"Running","name_label":"web"},
            "changes":{"power_state":{"from":"Halted","to":"Running"}}}})
    );
    assert_eq!(PoolEvent::parse(&ev.to_bytes()).unwrap(), ev);
    // del carries the old record, no changes.
    let del = pool_event(
        &ObjectChange {
            operation: Operation::Del,
            new: None,
            ..ch
        },
        t,
    );
    assert_eq!(del.type_, "vm.del");
    assert_eq!(del.data.snapshot["power_state"], "Halted");
    assert!(del.data.changes.is_none());
    assert!(PoolEvent::parse(b"{\"type\":1}").is_err());
}
