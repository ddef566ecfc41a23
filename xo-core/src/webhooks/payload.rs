//! Payload bodies: XO-compatible call and backup-job payloads (json and office365), and
//! pool-event payloads in the Standard Webhooks shape. Bodies are built once into bytes;
//! the bytes are what get stored, signed and sent.

use super::spec::extended::Operation;
use super::spec::xo::Format;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const OBFUSCATED: &str = "* obfuscated *";
pub const UNKNOWN_USER: &str = "(unknown user)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookPhase {
    Pre,
    Post,
}

impl HookPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            HookPhase::Pre => "pre",
            HookPhase::Post => "post",
        }
    }
}

fn is_secret_key(key: &str) -> bool {
    key == "token"
        || key == "passphrase"
        || key == "encryptionKey"
        || key.to_ascii_lowercase().contains("password")
}

/// XO's `Obfuscate.replace(params, '* obfuscated *')`: string values whose key is `token`,
/// `passphrase`, `encryptionKey` or contains "password" (any case) are replaced, at any depth.
pub fn obfuscate(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| {
                    let x = match x {
                        Value::String(_) if is_secret_key(k) => Value::String(OBFUSCATED.into()),
                        other => obfuscate(other),
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(obfuscate).collect()),
        other => other.clone(),
    }
}

/// A serialised JS error as XO's `serializeError` writes it:
/// `{...enumerable props, code, message, name, stack}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct XoError {
    pub extra: Map<String, Value>,
    pub code: Option<Value>,
    pub message: String,
    pub name: String,
    pub stack: Option<String>,
}

impl XoError {
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> XoError {
        XoError {
            name: name.into(),
            message: message.into(),
            ..XoError::default()
        }
    }

    pub fn to_value(&self) -> Value {
        let mut o = self.extra.clone();
        if let Some(c) = &self.code {
            o.insert("code".into(), c.clone());
        }
        o.insert("message".into(), self.message.clone().into());
        o.insert("name".into(), self.name.clone().into());
        if let Some(s) = &self.stack {
            o.insert("stack".into(), s.clone().into());
        }
        Value::Object(o)
    }
}

/// XO's hook `data`: keys in the order XO builds them. `None` is a JS `undefined`: left out of
/// the json format, but still a (valueless) fact in office365, as in XO.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct XoData {
    pub fields: Vec<(String, Option<Value>)>,
}

impl XoData {
    fn push(&mut self, k: &str, v: Option<Value>) {
        self.fields.push((k.to_string(), v));
    }
    fn set(&mut self, k: &str, v: Option<Value>) {
        // JS semantics: assigning an existing key keeps its position.
        match self.fields.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v,
            None => self.push(k, v),
        }
    }
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(key, _)| key == k)
            .and_then(|(_, v)| v.as_ref())
    }
}

/// Who called what, for XO call payloads.
#[derive(Debug, Clone, PartialEq)]
pub struct CallInfo {
    pub call_id: String,
    pub user_id: Option<String>,
    /// `None` becomes "(unknown user)".
    pub user_name: Option<String>,
    pub user_ip: Option<String>,
    pub method: String,
    /// Raw params; obfuscated when the payload is built.
    pub params: Value,
    /// Start of the call, ms since the epoch.
    pub timestamp_ms: i64,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// `None` is JS `undefined`, sent as `true` like XO.
    Result(Option<Value>),
    Error(XoError),
}

/// XO's pre data: callId, userId, userName, userIp, method, params, timestamp.
pub fn xo_call_pre(c: &CallInfo) -> XoData {
    let mut d = XoData::default();
    d.push("callId", Some(c.call_id.clone().into()));
    d.push("userId", c.user_id.clone().map(Value::from));
    d.push(
        "userName",
        Some(
            c.user_name
                .clone()
                .unwrap_or_else(|| UNKNOWN_USER.into())
                .into(),
        ),
    );
    d.push("userIp", c.user_ip.clone().map(Value::from));
    d.push("method", Some(c.method.clone().into()));
    d.push("params", Some(obfuscate(&c.params)));
    d.push("timestamp", Some(c.timestamp_ms.into()));
    d
}

/// XO's post data: `{...pre, duration, result|error, timestamp: end}`.
pub fn xo_call_post(c: &CallInfo, end_ms: i64, outcome: &CallOutcome) -> XoData {
    let mut d = xo_call_pre(c);
    d.push("duration", Some((end_ms - c.timestamp_ms).into()));
    match outcome {
        CallOutcome::Result(r) => d.push("result", Some(r.clone().unwrap_or(Value::Bool(true)))),
        CallOutcome::Error(e) => d.push("error", Some(e.to_value())),
    }
    d.set("timestamp", Some(end_ms.into()));
    d
}

/// A backup job run, as xo-server's job runner describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupJobInfo {
    pub call_id: String,
    pub job_id: String,
    pub proxy: Option<String>,
    pub schedule: Option<String>,
    pub settings: Value,
    /// The job's VM pattern, e.g. `{"id": {"__or": [...]}}`.
    pub vms: Value,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub timestamp_ms: i64,
}

/// Backup pre data: callId, method (`backupNg.runJob`), params, timestamp, userId, userName.
pub fn xo_backup_pre(j: &BackupJobInfo) -> XoData {
    let mut params = Map::new();
    params.insert("id".into(), j.job_id.clone().into());
    if let Some(p) = &j.proxy {
        params.insert("proxy".into(), p.clone().into());
    }
    if let Some(s) = &j.schedule {
        params.insert("schedule".into(), s.clone().into());
    }
    params.insert("settings".into(), j.settings.clone());
    params.insert("vms".into(), j.vms.clone());
    let mut d = XoData::default();
    d.push("callId", Some(j.call_id.clone().into()));
    d.push("method", Some("backupNg.runJob".into()));
    d.push("params", Some(Value::Object(params)));
    d.push("timestamp", Some(j.timestamp_ms.into()));
    d.push("userId", j.user_id.clone().map(Value::from));
    d.push(
        "userName",
        Some(
            j.user_name
                .clone()
                .unwrap_or_else(|| UNKNOWN_USER.into())
                .into(),
        ),
    );
    d
}

/// Backup post data: the pre object with `result: true` or `error`, then duration, and the
/// timestamp updated in place.
pub fn xo_backup_post(j: &BackupJobInfo, end_ms: i64, error: Option<&XoError>) -> XoData {
    let mut d = xo_backup_pre(j);
    match error {
        None => d.push("result", Some(Value::Bool(true))),
        Some(e) => d.push("error", Some(e.to_value())),
    }
    d.push("duration", Some((end_ms - j.timestamp_ms).into()));
    d.set("timestamp", Some(end_ms.into()));
    d
}

/// Serialises key/value pairs in the given order.
struct Ordered<'a>(Vec<(&'a str, &'a Value)>);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// The body XO would send for `data` in `format` (`{...data, type}` or a MessageCard).
pub fn render_xo(format: Format, data: &XoData, phase: HookPhase) -> Vec<u8> {
    let type_ = Value::String(phase.as_str().into());
    match format {
        Format::Json => {
            let mut pairs: Vec<(&str, &Value)> = data
                .fields
                .iter()
                .filter(|(k, _)| k != "type")
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.as_str(), v)))
                .collect();
            pairs.push(("type", &type_));
            serde_json::to_vec(&Ordered(pairs)).unwrap_or_default()
        }
        Format::Office365 => {
            let facts: Vec<Value> = data
                .fields
                .iter()
                .map(|(k, v)| {
                    let mut f = Map::new();
                    f.insert("name".into(), k.clone().into());
                    match v {
                        Some(Value::String(s)) => {
                            f.insert("value".into(), s.clone().into());
                        }
                        Some(other) => {
                            f.insert("value".into(), other.to_string().into());
                        }
                        None => {} // JSON.stringify(undefined) drops the key
                    }
                    Value::Object(f)
                })
                .collect();
            let title = Value::from(format!("XO {} notification", phase.as_str().to_uppercase()));
            let facts = Value::Array(facts);
            let section = Ordered(vec![("title", &title), ("facts", &facts)]);
            let at_type = Value::from("MessageCard");
            let ctx = Value::from("https://schema.org/extensions");
            let color = Value::from("6B63BF");
            let summary = Value::from("New notification from the Xen-Orchestra webhook plugin");
            let head = Ordered(vec![
                ("@type", &at_type),
                ("@context", &ctx),
                ("themeColor", &color),
                ("summary", &summary),
            ]);
            // Nested key order matters for byte-exactness, so the card is assembled from
            // two ordered pieces: `{head…,"sections":[section]}`.
            let mut out = serde_json::to_vec(&head).unwrap_or_default();
            out.pop(); // the closing brace
            out.extend_from_slice(b",\"sections\":[");
            out.extend_from_slice(&serde_json::to_vec(&section).unwrap_or_default());
            out.extend_from_slice(b"]}");
            out
        }
    }
}

/// An XO json-format payload as a receiver parses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct XoPayload {
    #[serde(rename = "type")]
    pub type_: HookPhase,
    pub call_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_ip: Option<String>,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

impl XoPayload {
    pub fn parse(body: &[u8]) -> Result<XoPayload, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

/// One field's change in a `mod` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub from: Value,
    pub to: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolEventData {
    /// XAPI class name as the watcher reports it (`VM`, `host`, …).
    pub class: String,
    pub operation: Operation,
    #[serde(rename = "ref")]
    pub ref_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The record after the change (before it, for `del`); `null` when unknown.
    #[serde(default)]
    pub snapshot: Value,
    /// For `mod`: the fields that differ between the old and new record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<BTreeMap<String, FieldChange>>,
}

/// A pool event in the Standard Webhooks payload shape:
/// `{"type":"vm.mod","timestamp":"2026-…Z","data":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolEvent {
    #[serde(rename = "type")]
    pub type_: String,
    /// RFC 3339, when the change was seen.
    pub timestamp: String,
    pub data: PoolEventData,
}

/// `VM` + `mod` → `vm.mod`; characters outside `[a-zA-Z0-9_]` become `_`.
pub fn event_type(class: &str, op: Operation) -> String {
    let c: String = class
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{c}.{}", op.as_str())
}

/// The top-level fields whose values differ between `old` and `new` (both objects).
pub fn diff(old: &Value, new: &Value) -> BTreeMap<String, FieldChange> {
    let mut out = BTreeMap::new();
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    for (k, nv) in n {
        match o.get(k) {
            Some(ov) if ov == nv => {}
            ov => {
                out.insert(
                    k.clone(),
                    FieldChange {
                        from: ov.cloned().unwrap_or(Value::Null),
                        to: nv.clone(),
                    },
                );
            }
        }
    }
    for (k, ov) in o {
        if !n.contains_key(k) {
            out.insert(
                k.clone(),
                FieldChange {
                    from: ov.clone(),
                    to: Value::Null,
                },
            );
        }
    }
    out
}

impl PoolEvent {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    pub fn parse(body: &[u8]) -> Result<PoolEvent, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn obfuscates_like_xo() {
        let p = json!({"id":"x","password":"a","Old_PASSWORD":"b","token":"t","tokens":"keep",
            "nested":[{"passphrase":"p","encryptionKey":"k","passwordCount":3}]});
        let o = obfuscate(&p);
        assert_eq!(
            o,
            json!({"id":"x","password":OBFUSCATED,"Old_PASSWORD":OBFUSCATED,"token":OBFUSCATED,
                "tokens":"keep","nested":[{"passphrase":OBFUSCATED,"encryptionKey":OBFUSCATED,
                "passwordCount":3}]})
        );
    }

    #[test]
    fn event_types() {
        assert_eq!(event_type("VM", Operation::Mod), "vm.mod");
        assert_eq!(
            event_type("VM_guest_metrics", Operation::Add),
            "vm_guest_metrics.add"
        );
        assert_eq!(event_type("host-cpu", Operation::Del), "host_cpu.del");
    }
}
