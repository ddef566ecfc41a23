//! Our extended webhook spec (JSON, `"version": 1`). Full reference: `docs/webhooks.md`.
//!
//! ```json
//! {
//!   "version": 1,
//!   "endpoints": [{
//!     "id": "ops", "url": "https://hooks.example/xo",
//!     "headers": {"Authorization": "Bearer …"},
//!     "secrets": ["whsec_…", "whsec_…"],          // every secret signs (rotation)
//!     "githubSecret": "…",                          // optional X-Hub-Signature-256
//!     "timeoutSeconds": 15,
//!     "retry": {"schedule": [5, 300, 1800, 7200, 18000, 36000, 36000],
//!               "jitter": 0.2, "retryableStatus": [408, 429]},
//!     "ordering": "fifo",                           // or "unordered" (default)
//!     "maxInFlight": 8,                             // unordered only
//!     "enabled": true
//!   }],
//!   "events": [{"id": "vm-started", "endpoints": ["ops"], "class": "VM",
//!               "operations": ["mod"],
//!               "conditions": [{"field": "power_state", "from": "Halted", "to": "Running"}]}],
//!   "calls": [{"endpoints": ["ops"], "methods": ["VM.*"], "type": "pre/post",
//!              "waitForResponse": false, "format": "json"}]
//! }
//! ```
//!
//! `retry.schedule` lists the waits (seconds, fractions allowed) before each retry; the first
//! attempt is immediate, so the default makes 8 attempts over about 28 hours. 2xx is success,
//! 410 disables the endpoint, 429/5xx/3xx/timeouts/connection errors are retried, other 4xx
//! go to the dead-letter state unless listed in `retryableStatus`.

use super::write;
use super::xo::{Format, HookType, XoConfig};
use super::{
    array, boolean, err, http_url, index, join, no_unknown, object, parse_json, required, string,
    SpecError,
};
use crate::webhooks::secret::SigningSecret;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

/// Default waits before retries 1..7 (Svix's schedule).
pub const DEFAULT_SCHEDULE_SECS: [u64; 7] = [5, 300, 1800, 7200, 18000, 36000, 36000];
/// XO's own request timeout, used for converted XO hooks.
pub const XO_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Waits before each retry; its length is the number of retries.
    pub schedule: Vec<Duration>,
    /// Each wait is multiplied by a random factor in `[1 - jitter, 1 + jitter]`.
    pub jitter: f64,
    /// 4xx statuses that are retried rather than dead-lettered (429 always is).
    pub retryable_status: Vec<u16>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            schedule: DEFAULT_SCHEDULE_SECS
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            jitter: 0.2,
            retryable_status: vec![408, 429],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ordering {
    /// Concurrent deliveries, at most `max_in_flight` at once.
    #[default]
    Unordered,
    /// One at a time in submission order; a failing message holds back its successors.
    Fifo,
}

/// Where deliveries go and how.
#[derive(Clone, PartialEq)]
pub struct EndpointSpec {
    pub id: String,
    pub url: String,
    /// Extra request headers (values may hold credentials: never printed).
    pub headers: Vec<(String, String)>,
    pub secrets: Vec<SigningSecret>,
    pub github_secret: Option<SigningSecret>,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub ordering: Ordering,
    pub max_in_flight: usize,
    pub enabled: bool,
}

impl EndpointSpec {
    /// An endpoint with defaults: unsigned, unordered, default retries.
    pub fn new(id: impl Into<String>, url: impl Into<String>) -> EndpointSpec {
        EndpointSpec {
            id: id.into(),
            url: url.into(),
            headers: Vec::new(),
            secrets: Vec::new(),
            github_secret: None,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            ordering: Ordering::Unordered,
            max_in_flight: 8,
            enabled: true,
        }
    }
}

/// URLs may carry a token in the query string (XO hooks often do): keep it out of Debug.
fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?<redacted>"),
        None => url.to_string(),
    }
}

impl fmt::Debug for EndpointSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("EndpointSpec")
            .field("id", &self.id)
            .field("url", &redact_query(&self.url))
            .field("headers", &header_names)
            .field("secrets", &self.secrets.len())
            .field("github_secret", &self.github_secret.is_some())
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("ordering", &self.ordering)
            .field("max_in_flight", &self.max_in_flight)
            .field("enabled", &self.enabled)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Add,
    Mod,
    Del,
}

impl Operation {
    pub fn parse(s: &str) -> Option<Operation> {
        match s {
            "add" => Some(Operation::Add),
            "mod" => Some(Operation::Mod),
            "del" => Some(Operation::Del),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Add => "add",
            Operation::Mod => "mod",
            Operation::Del => "del",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConditionKind {
    /// The field changed, optionally from a value and/or to a value.
    Transition {
        from: Option<Value>,
        to: Option<Value>,
    },
    /// The field of the object (new, or old for `del`) equals this value.
    Equals(Value),
}

/// A condition on a field; `field` may be a dotted path (`other_config.owner`).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: String,
    pub kind: ConditionKind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventSubscription {
    pub id: Option<String>,
    pub endpoints: Vec<String>,
    /// XAPI class name (`VM`, `host`, …) or `*`; compared case-insensitively.
    pub class: String,
    pub operations: Vec<Operation>,
    /// All must hold.
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallSubscription {
    pub endpoints: Vec<String>,
    /// Glob patterns (`*` any run, `?` one char), ASCII case-insensitive, so XO's `vm.start`
    /// also matches the XAPI call `VM.start`.
    pub methods: Vec<String>,
    pub type_: HookType,
    pub wait_for_response: bool,
    pub format: Format,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Spec {
    pub endpoints: Vec<EndpointSpec>,
    pub events: Vec<EventSubscription>,
    pub calls: Vec<CallSubscription>,
}

impl Spec {
    /// Loads either an extended spec (`"version": 1`) or an XO web-hooks config (`"hooks"`).
    pub fn load(text: &str) -> Result<Spec, SpecError> {
        let v = parse_json(text)?;
        let o = object(&v, "")?;
        if !o.contains_key("version") && o.contains_key("hooks") {
            return Ok(Spec::from_xo(&XoConfig::from_value(&v)?));
        }
        Spec::from_value(&v)
    }

    /// One endpoint per XO hook (`xo-hook-<i>`, 10 s timeout like XO, unsigned) and one call
    /// subscription for it. Unlike XO, failed deliveries are retried with the default policy.
    pub fn from_xo(cfg: &XoConfig) -> Spec {
        let mut spec = Spec::default();
        for (i, h) in cfg.hooks.iter().enumerate() {
            let id = format!("xo-hook-{i}");
            let mut ep = EndpointSpec::new(id.clone(), h.url.clone());
            ep.timeout = XO_TIMEOUT;
            spec.endpoints.push(ep);
            spec.calls.push(CallSubscription {
                endpoints: vec![id],
                methods: vec![h.method.clone()],
                type_: h.type_,
                wait_for_response: h.wait_for_response(),
                format: h.format(),
            });
        }
        spec
    }

    pub fn endpoint(&self, id: &str) -> Option<&EndpointSpec> {
        self.endpoints.iter().find(|e| e.id == id)
    }

    pub fn from_value(v: &Value) -> Result<Spec, SpecError> {
        let root = object(v, "")?;
        no_unknown(root, "", &["version", "endpoints", "events", "calls"])?;
        match required(root, "", "version")?.as_u64() {
            Some(1) => {}
            _ => return Err(err("version", "expected 1")),
        }
        let mut spec = Spec::default();
        let mut ids = HashSet::new();
        if let Some(eps) = root.get("endpoints") {
            for (i, e) in array(eps, "endpoints")?.iter().enumerate() {
                let path = index("endpoints", i);
                let ep = parse_endpoint(e, &path)?;
                if !ids.insert(ep.id.clone()) {
                    return Err(err(&join(&path, "id"), format!("duplicate id {:?}", ep.id)));
                }
                spec.endpoints.push(ep);
            }
        }
        if let Some(evs) = root.get("events") {
            for (i, e) in array(evs, "events")?.iter().enumerate() {
                spec.events.push(parse_event(e, &index("events", i), &ids)?);
            }
        }
        if let Some(calls) = root.get("calls") {
            for (i, c) in array(calls, "calls")?.iter().enumerate() {
                spec.calls.push(parse_call(c, &index("calls", i), &ids)?);
            }
        }
        Ok(spec)
    }

    /// Writes the spec back, secrets included (it is a config file).
    pub fn to_value(&self) -> Value {
        let mut root = Map::new();
        root.insert("version".into(), 1.into());
        root.insert(
            "endpoints".into(),
            self.endpoints
                .iter()
                .map(write::endpoint_to_value)
                .collect(),
        );
        root.insert(
            "events".into(),
            self.events.iter().map(write::event_to_value).collect(),
        );
        root.insert(
            "calls".into(),
            self.calls.iter().map(write::call_to_value).collect(),
        );
        Value::Object(root)
    }
}

fn secs(v: &Value, path: &str, max: f64) -> Result<Duration, SpecError> {
    let s = v
        .as_f64()
        .ok_or_else(|| err(path, "expected a number of seconds"))?;
    if !(s.is_finite() && (0.0..=max).contains(&s)) {
        return Err(err(path, format!("expected 0 to {max} seconds")));
    }
    Ok(Duration::from_secs_f64(s))
}

fn valid_header_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

const RESERVED_HEADERS: [&str; 6] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-hub-signature-256",
    "content-length",
    "host",
];

fn parse_endpoint(v: &Value, path: &str) -> Result<EndpointSpec, SpecError> {
    let o = object(v, path)?;
    no_unknown(
        o,
        path,
        &[
            "id",
            "url",
            "headers",
            "secrets",
            "githubSecret",
            "timeoutSeconds",
            "retry",
            "ordering",
            "maxInFlight",
            "enabled",
        ],
    )?;
    let id = string(required(o, path, "id")?, &join(path, "id"))?;
    if id.is_empty() || id.len() > 200 || id.chars().any(|c| c.is_control()) {
        return Err(err(
            &join(path, "id"),
            "expected 1 to 200 printable characters",
        ));
    }
    let upath = join(path, "url");
    let url = string(required(o, path, "url")?, &upath)?;
    http_url(&url, &upath)?;
    let mut ep = EndpointSpec::new(id, url);
    if let Some(h) = o.get("headers") {
        let hpath = join(path, "headers");
        for (k, val) in object(h, &hpath)? {
            let kpath = join(&hpath, k);
            let val = string(val, &kpath)?;
            if !valid_header_name(k) {
                return Err(err(&kpath, "invalid header name"));
            }
            if RESERVED_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                return Err(err(&kpath, "header is set by the engine"));
            }
            if val.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(err(&kpath, "header value contains a line break"));
            }
            ep.headers.push((k.clone(), val));
        }
    }
    if let Some(s) = o.get("secrets") {
        let spath = join(path, "secrets");
        for (i, s) in array(s, &spath)?.iter().enumerate() {
            let p = index(&spath, i);
            let text = string(s, &p)?;
            ep.secrets
                .push(SigningSecret::parse(&text).map_err(|e| err(&p, e.to_string()))?);
        }
    }
    if let Some(g) = o.get("githubSecret") {
        let p = join(path, "githubSecret");
        ep.github_secret =
            Some(SigningSecret::from_bytes(string(g, &p)?).map_err(|e| err(&p, e.to_string()))?);
    }
    if let Some(t) = o.get("timeoutSeconds") {
        let p = join(path, "timeoutSeconds");
        ep.timeout = secs(t, &p, 300.0)?;
        if ep.timeout.is_zero() {
            return Err(err(&p, "must be more than 0"));
        }
    }
    if let Some(r) = o.get("retry") {
        ep.retry = parse_retry(r, &join(path, "retry"))?;
    }
    if let Some(ord) = o.get("ordering") {
        let p = join(path, "ordering");
        ep.ordering = match string(ord, &p)?.as_str() {
            "fifo" => Ordering::Fifo,
            "unordered" => Ordering::Unordered,
            _ => return Err(err(&p, r#"expected "fifo" or "unordered""#)),
        };
    }
    if let Some(m) = o.get("maxInFlight") {
        let p = join(path, "maxInFlight");
        ep.max_in_flight =
            m.as_u64()
                .filter(|n| (1..=256).contains(n))
                .ok_or_else(|| err(&p, "expected an integer from 1 to 256"))? as usize;
    }
    if let Some(e) = o.get("enabled") {
        ep.enabled = boolean(e, &join(path, "enabled"))?;
    }
    Ok(ep)
}

fn parse_retry(v: &Value, path: &str) -> Result<RetryPolicy, SpecError> {
    let o = object(v, path)?;
    no_unknown(o, path, &["schedule", "jitter", "retryableStatus"])?;
    let mut r = RetryPolicy::default();
    if let Some(s) = o.get("schedule") {
        let spath = join(path, "schedule");
        let items = array(s, &spath)?;
        if items.len() > 100 {
            return Err(err(&spath, "at most 100 retries"));
        }
        r.schedule = items
            .iter()
            .enumerate()
            .map(|(i, x)| secs(x, &index(&spath, i), 7.0 * 86400.0))
            .collect::<Result<_, _>>()?;
    }
    if let Some(j) = o.get("jitter") {
        let p = join(path, "jitter");
        r.jitter = j
            .as_f64()
            .filter(|j| (0.0..1.0).contains(j))
            .ok_or_else(|| err(&p, "expected a number from 0 to less than 1"))?;
    }
    if let Some(s) = o.get("retryableStatus") {
        let spath = join(path, "retryableStatus");
        r.retryable_status = array(s, &spath)?
            .iter()
            .enumerate()
            .map(|(i, x)| {
                x.as_u64()
                    .filter(|c| (400..=499).contains(c))
                    .map(|c| c as u16)
                    .ok_or_else(|| err(&index(&spath, i), "expected a 4xx status code"))
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(r)
}

fn endpoint_refs(
    o: &Map<String, Value>,
    path: &str,
    ids: &HashSet<String>,
) -> Result<Vec<String>, SpecError> {
    let p = join(path, "endpoints");
    let list = array(required(o, path, "endpoints")?, &p)?;
    if list.is_empty() {
        return Err(err(&p, "must name at least one endpoint"));
    }
    list.iter()
        .enumerate()
        .map(|(i, x)| {
            let ip = index(&p, i);
            let id = string(x, &ip)?;
            if ids.contains(&id) {
                Ok(id)
            } else {
                Err(err(&ip, format!("no endpoint with id {id:?}")))
            }
        })
        .collect()
}

fn parse_event(
    v: &Value,
    path: &str,
    ids: &HashSet<String>,
) -> Result<EventSubscription, SpecError> {
    let o = object(v, path)?;
    no_unknown(
        o,
        path,
        &["id", "endpoints", "class", "operations", "conditions"],
    )?;
    let id = o
        .get("id")
        .map(|x| string(x, &join(path, "id")))
        .transpose()?;
    let endpoints = endpoint_refs(o, path, ids)?;
    let cpath = join(path, "class");
    let class = string(required(o, path, "class")?, &cpath)?;
    if class.is_empty() {
        return Err(err(&cpath, "must not be empty (use \"*\" for every class)"));
    }
    let mut operations = vec![Operation::Add, Operation::Mod, Operation::Del];
    if let Some(ops) = o.get("operations") {
        let p = join(path, "operations");
        operations = array(ops, &p)?
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let ip = index(&p, i);
                Operation::parse(&string(x, &ip)?)
                    .ok_or_else(|| err(&ip, r#"expected "add", "mod" or "del""#))
            })
            .collect::<Result<_, _>>()?;
    }
    let mut conditions = Vec::new();
    if let Some(cs) = o.get("conditions") {
        let p = join(path, "conditions");
        for (i, c) in array(cs, &p)?.iter().enumerate() {
            conditions.push(parse_condition(c, &index(&p, i))?);
        }
    }
    Ok(EventSubscription {
        id,
        endpoints,
        class,
        operations,
        conditions,
    })
}

fn parse_condition(v: &Value, path: &str) -> Result<Condition, SpecError> {
    let o = object(v, path)?;
    no_unknown(o, path, &["field", "from", "to", "equals"])?;
    let fpath = join(path, "field");
    let field = string(required(o, path, "field")?, &fpath)?;
    if field.is_empty() {
        return Err(err(&fpath, "must not be empty"));
    }
    let kind = match (o.get("equals"), o.get("from"), o.get("to")) {
        (Some(eq), None, None) => ConditionKind::Equals(eq.clone()),
        (Some(_), _, _) => {
            return Err(err(
                &join(path, "equals"),
                "cannot be combined with from/to",
            ))
        }
        (None, from, to) => ConditionKind::Transition {
            from: from.cloned(),
            to: to.cloned(),
        },
    };
    Ok(Condition { field, kind })
}

fn parse_call(v: &Value, path: &str, ids: &HashSet<String>) -> Result<CallSubscription, SpecError> {
    let o = object(v, path)?;
    no_unknown(
        o,
        path,
        &["endpoints", "methods", "type", "waitForResponse", "format"],
    )?;
    let endpoints = endpoint_refs(o, path, ids)?;
    let mpath = join(path, "methods");
    let methods: Vec<String> = array(required(o, path, "methods")?, &mpath)?
        .iter()
        .enumerate()
        .map(|(i, x)| string(x, &index(&mpath, i)))
        .collect::<Result<_, _>>()?;
    if methods.is_empty() {
        return Err(err(&mpath, "must list at least one method pattern"));
    }
    let tpath = join(path, "type");
    let type_ = HookType::parse(&string(required(o, path, "type")?, &tpath)?)
        .ok_or_else(|| err(&tpath, r#"expected "pre", "post" or "pre/post""#))?;
    let wait_for_response = o
        .get("waitForResponse")
        .map(|w| boolean(w, &join(path, "waitForResponse")))
        .transpose()?
        .unwrap_or(false);
    let format = match o.get("format") {
        None => Format::Json,
        Some(f) => {
            let p = join(path, "format");
            Format::parse(&string(f, &p)?)
                .ok_or_else(|| err(&p, r#"expected "json" or "office365""#))?
        }
    };
    Ok(CallSubscription {
        endpoints,
        methods,
        type_,
        wait_for_response,
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"version":1,
      "endpoints":[{"id":"ops","url":"http://127.0.0.1:9/x","headers":{"X-Team":"infra"},
        "secrets":["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],"timeoutSeconds":2.5,
        "retry":{"schedule":[0.01,0.5],"jitter":0,"retryableStatus":[409]},"ordering":"fifo"}],
      "events":[{"endpoints":["ops"],"class":"VM","operations":["mod"],
        "conditions":[{"field":"power_state","from":"Halted","to":"Running"}]}],
      "calls":[{"endpoints":["ops"],"methods":["VM.*"],"type":"pre/post"}]}"#;

    #[test]
    fn parses_and_round_trips() {
        let s = Spec::load(GOOD).unwrap();
        let ep = &s.endpoints[0];
        assert_eq!(ep.ordering, Ordering::Fifo);
        assert_eq!(ep.timeout, Duration::from_millis(2500));
        assert_eq!(ep.retry.schedule[0], Duration::from_millis(10));
        assert_eq!(ep.retry.retryable_status, vec![409]);
        assert!(!format!("{ep:?}").contains("infra"));
        assert!(!format!("{ep:?}").contains("MfKQ"));
        let again = Spec::from_value(&s.to_value()).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn errors_name_the_path() {
        let cases = [
            (
                GOOD.replace("\"fifo\"", "\"lifo\""),
                "endpoints[0].ordering",
            ),
            (
                GOOD.replace("0.5]", "-1]"),
                "endpoints[0].retry.schedule[1]",
            ),
            (
                GOOD.replace("[409]", "[500]"),
                "endpoints[0].retry.retryableStatus[0]",
            ),
            (
                GOOD.replace(
                    "\"endpoints\":[\"ops\"],\"class\"",
                    "\"endpoints\":[\"nope\"],\"class\"",
                ),
                "events[0].endpoints[0]",
            ),
            (
                GOOD.replace("\"mod\"", "\"change\""),
                "events[0].operations[0]",
            ),
            (
                GOOD.replace("whsec_MfKQ", "whsec_!!"),
                "endpoints[0].secrets[0]",
            ),
            (
                GOOD.replace("X-Team", "X Team"),
                "endpoints[0].headers.X Team",
            ),
            (GOOD.replace("\"version\":1", "\"version\":2"), "version"),
            (
                GOOD.replace("\"type\":\"pre/post\"", "\"type\":\"around\""),
                "calls[0].type",
            ),
            (
                GOOD.replace("timeoutSeconds", "timeout"),
                "endpoints[0].timeout",
            ),
        ];
        for (text, path) in cases {
            let e = Spec::load(&text).unwrap_err();
            assert_eq!(e.path, path, "{e}");
        }
    }

    #[test]
    fn loads_xo_config() {
        let s = Spec::load(
            r#"{"hooks":[{"method":"vm.start","type":"pre/post","url":"http://127.0.0.1:1/h","waitForResponse":true}]}"#,
        )
        .unwrap();
        assert_eq!(s.endpoints[0].id, "xo-hook-0");
        assert_eq!(s.endpoints[0].timeout, XO_TIMEOUT);
        assert_eq!(s.calls[0].type_, HookType::PrePost);
        assert!(s.calls[0].wait_for_response);
        assert_eq!(s.calls[0].format, Format::Json);
    }
}
