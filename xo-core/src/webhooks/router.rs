//! Sources → subscriptions → messages. The client (API calls) and the watcher (pool events)
//! feed [`WebhookRouter`]; it matches the spec's subscriptions, builds the payloads and submits
//! them to a [`Sink`] (the [`Engine`](super::engine::Engine) in production).

use super::engine::{AttemptEvent, Engine, EngineError, Submission};
use super::payload::{
    diff, event_type, render_xo, xo_call_post, xo_call_pre, CallInfo, CallOutcome, HookPhase,
    PoolEvent, PoolEventData,
};
use super::spec::{Condition, ConditionKind, Operation, Spec};
use super::store::MessageId;
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// An API call seen by the client, before (`Pre`) or after (`Post`) it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEvent {
    pub phase: HookPhase,
    pub call: CallInfo,
    /// Post only: how the call ended.
    pub outcome: Option<CallOutcome>,
    /// Post only: when the call ended, ms since the epoch.
    pub end_ms: Option<i64>,
}

/// One object change from the pool's event stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectChange {
    pub class: String,
    pub operation: Operation,
    pub ref_: String,
    pub uuid: Option<String>,
    /// The record before the change (from the cache), if known.
    pub old: Option<Value>,
    /// The record after the change; `None` for `del`.
    pub new: Option<Value>,
}

/// A message the router wants sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub endpoint: String,
    pub body: Vec<u8>,
    /// Pre hook with `waitForResponse`: the caller blocks up to the endpoint timeout.
    pub wait: bool,
}

/// Where routed messages go.
pub trait Sink: Sync {
    fn submit_many(&self, items: Vec<Submission>) -> Result<Vec<MessageId>, EngineError>;
    /// Submit and wait for the first attempt, up to `timeout`.
    fn submit_and_wait(
        &self,
        endpoint: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(MessageId, Option<AttemptEvent>), EngineError>;
}

impl Sink for Engine {
    fn submit_many(&self, items: Vec<Submission>) -> Result<Vec<MessageId>, EngineError> {
        Engine::submit_many(self, items)
    }
    fn submit_and_wait(
        &self,
        endpoint: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(MessageId, Option<AttemptEvent>), EngineError> {
        Engine::submit_and_wait(self, endpoint, body, timeout)
    }
}

/// `*` matches any run, `?` one character; ASCII case-insensitive.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let t: Vec<char> = text.chars().map(|c| c.to_ascii_lowercase()).collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A dotted path into a record (`other_config.owner`).
fn field<'a>(v: Option<&'a Value>, path: &str) -> Option<&'a Value> {
    let mut cur = v?;
    for part in path.split('.') {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

/// Whether a condition holds for a change. Transitions need both the old and the new record,
/// and the value must actually differ, so a condition fires once per transition.
pub fn condition_holds(c: &Condition, ch: &ObjectChange) -> bool {
    let old = field(ch.old.as_ref(), &c.field);
    let new = field(ch.new.as_ref(), &c.field);
    match &c.kind {
        ConditionKind::Equals(want) => {
            let cur = if ch.operation == Operation::Del {
                old
            } else {
                new
            };
            cur == Some(want)
        }
        ConditionKind::Transition { from, to } => {
            if ch.operation != Operation::Mod || old == new {
                return false;
            }
            let from_ok = from.as_ref().is_none_or(|f| old == Some(f));
            let to_ok = to.as_ref().is_none_or(|t| new == Some(t));
            from_ok && to_ok
        }
    }
}

pub struct WebhookRouter<S: Sink> {
    spec: Spec,
    sink: S,
}

/// What a routed call produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dispatched {
    pub ids: Vec<MessageId>,
    /// First-attempt results of the waited-for pre hooks (`None`: timed out).
    pub waited: Vec<(MessageId, Option<AttemptEvent>)>,
}

fn rfc3339_now_ms(t: SystemTime) -> String {
    let ms = super::clock::unix_ms(t);
    let base = crate::model::DateTime::from_unix(ms.div_euclid(1000)).to_rfc3339();
    // Insert milliseconds before the trailing Z.
    format!("{}.{:03}Z", base.trim_end_matches('Z'), ms.rem_euclid(1000))
}

impl<S: Sink> WebhookRouter<S> {
    pub fn new(spec: Spec, sink: S) -> Self {
        WebhookRouter { spec, sink }
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    fn enabled(&self, id: &str) -> bool {
        self.spec.endpoint(id).is_some_and(|e| e.enabled)
    }

    /// The messages a call event produces (no IO).
    pub fn route_call(&self, ev: &CallEvent) -> Vec<Routed> {
        let data = match (ev.phase, &ev.outcome) {
            (HookPhase::Pre, _) => xo_call_pre(&ev.call),
            (HookPhase::Post, outcome) => {
                let outcome = outcome.clone().unwrap_or(CallOutcome::Result(None));
                let end = ev.end_ms.unwrap_or(ev.call.timestamp_ms);
                xo_call_post(&ev.call, end, &outcome)
            }
        };
        let mut out = Vec::new();
        for sub in &self.spec.calls {
            let phase_ok = match ev.phase {
                HookPhase::Pre => sub.type_.has_pre(),
                HookPhase::Post => sub.type_.has_post(),
            };
            if !phase_ok || !sub.methods.iter().any(|m| glob_match(m, &ev.call.method)) {
                continue;
            }
            let body = render_xo(sub.format, &data, ev.phase);
            for ep in sub.endpoints.iter().filter(|e| self.enabled(e)) {
                out.push(Routed {
                    endpoint: ep.clone(),
                    body: body.clone(),
                    wait: ev.phase == HookPhase::Pre && sub.wait_for_response,
                });
            }
        }
        out
    }

    /// The messages an object change produces (no IO). `now` stamps the payload.
    pub fn route_change(&self, ch: &ObjectChange, now: SystemTime) -> Vec<Routed> {
        let mut out = Vec::new();
        let mut body: Option<Vec<u8>> = None;
        for sub in &self.spec.events {
            if !(sub.class == "*" || sub.class.eq_ignore_ascii_case(&ch.class))
                || !sub.operations.contains(&ch.operation)
                || !sub.conditions.iter().all(|c| condition_holds(c, ch))
            {
                continue;
            }
            let body = body.get_or_insert_with(|| pool_event(ch, now).to_bytes());
            for ep in sub.endpoints.iter().filter(|e| self.enabled(e)) {
                // One message per endpoint even when several subscriptions match.
                if !out.iter().any(|r: &Routed| &r.endpoint == ep) {
                    out.push(Routed {
                        endpoint: ep.clone(),
                        body: body.clone(),
                        wait: false,
                    });
                }
            }
        }
        out
    }

    /// Routes and submits a call event. Pre hooks with `waitForResponse` block until their first
    /// attempt ends or the endpoint's timeout passes (all waited in parallel, as XO does).
    pub fn on_call(&self, ev: &CallEvent) -> Result<Dispatched, EngineError> {
        let routed = self.route_call(ev);
        let (wait, plain): (Vec<Routed>, Vec<Routed>) = routed.into_iter().partition(|r| r.wait);
        let mut d = Dispatched::default();
        if !plain.is_empty() {
            d.ids = self.sink.submit_many(
                plain
                    .into_iter()
                    .map(|r| Submission::json(r.endpoint, r.body))
                    .collect(),
            )?;
        }
        if !wait.is_empty() {
            let results: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = wait
                    .into_iter()
                    .map(|r| {
                        let timeout = self
                            .spec
                            .endpoint(&r.endpoint)
                            .map(|e| e.timeout)
                            .unwrap_or(super::spec::extended::XO_TIMEOUT);
                        s.spawn(move || self.sink.submit_and_wait(&r.endpoint, r.body, timeout))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join()).collect()
            });
            for r in results {
                match r {
                    Ok(Ok((id, ev))) => {
                        d.ids.push(id.clone());
                        d.waited.push((id, ev));
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_) => {
                        return Err(EngineError::Store(super::store::StoreError::Other(
                            "a waiting thread panicked".into(),
                        )))
                    }
                }
            }
        }
        Ok(d)
    }

    /// Routes and submits an object change.
    pub fn on_change(&self, ch: &ObjectChange) -> Result<Vec<MessageId>, EngineError> {
        let routed = self.route_change(ch, SystemTime::now());
        if routed.is_empty() {
            return Ok(Vec::new());
        }
        self.sink.submit_many(
            routed
                .into_iter()
                .map(|r| Submission::json(r.endpoint, r.body))
                .collect(),
        )
    }
}

/// The Standard Webhooks shaped payload for a change.
pub fn pool_event(ch: &ObjectChange, now: SystemTime) -> PoolEvent {
    let snapshot = match ch.operation {
        Operation::Del => ch.old.clone(),
        _ => ch.new.clone(),
    }
    .unwrap_or(Value::Null);
    let changes = match (ch.operation, &ch.old, &ch.new) {
        (Operation::Mod, Some(o), Some(n)) => Some(diff(o, n)),
        _ => None,
    };
    PoolEvent {
        type_: event_type(&ch.class, ch.operation),
        timestamp: rfc3339_now_ms(now),
        data: PoolEventData {
            class: ch.class.clone(),
            operation: ch.operation,
            ref_: ch.ref_.clone(),
            uuid: ch.uuid.clone(),
            snapshot,
            changes,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    /// (endpoint, body, wait timeout) per submission.
    type Sent = Vec<(String, Vec<u8>, Option<Duration>)>;

    #[derive(Default)]
    struct FakeSink {
        sent: Mutex<Sent>,
    }

    impl Sink for FakeSink {
        fn submit_many(&self, items: Vec<Submission>) -> Result<Vec<MessageId>, EngineError> {
            let mut s = self.sent.lock().unwrap();
            Ok(items
                .into_iter()
                .map(|i| {
                    s.push((i.endpoint, i.body, None));
                    MessageId::new()
                })
                .collect())
        }
        fn submit_and_wait(
            &self,
            endpoint: &str,
            body: Vec<u8>,
            timeout: Duration,
        ) -> Result<(MessageId, Option<AttemptEvent>), EngineError> {
            self.sent
                .lock()
                .unwrap()
                .push((endpoint.into(), body, Some(timeout)));
            Ok((MessageId::new(), None))
        }
    }

    const SPEC: &str = r#"{"version":1,
      "endpoints":[{"id":"a","url":"http://127.0.0.1:1/a","timeoutSeconds":3},
                   {"id":"b","url":"http://127.0.0.1:1/b"},
                   {"id":"off","url":"http://127.0.0.1:1/off","enabled":false}],
      "events":[{"endpoints":["a"],"class":"VM","operations":["mod"],
                 "conditions":[{"field":"power_state","from":"Halted","to":"Running"},
                               {"field":"is_a_template","equals":false}]},
                {"endpoints":["a","b"],"class":"host","operations":["del"]},
                {"endpoints":["b","off"],"class":"*","operations":["add"]}],
      "calls":[{"endpoints":["a"],"methods":["VM.*"],"type":"pre","waitForResponse":true},
               {"endpoints":["b"],"methods":["vm.start","pool.*"],"type":"post","format":"office365"}]}"#;

    fn router() -> WebhookRouter<FakeSink> {
        WebhookRouter::new(Spec::load(SPEC).unwrap(), FakeSink::default())
    }

    fn vm(state: &str) -> Value {
        json!({"uuid":"u1","power_state":state,"is_a_template":false,"name_label":"web"})
    }

    fn change(old: Option<Value>, new: Option<Value>, op: Operation, class: &str) -> ObjectChange {
        ObjectChange {
            class: class.into(),
            operation: op,
            ref_: "OpaqueRef:1".into(),
            uuid: Some("u1".into()),
            old,
            new,
        }
    }

    #[test]
    fn glob() {
        assert!(glob_match("VM.*", "VM.start"));
        assert!(glob_match("vm.start", "VM.start"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("VM.?tart", "VM.start"));
        assert!(glob_match("*.get_*", "VM.get_record"));
        assert!(!glob_match("VM.*", "VMPP.create"));
        assert!(!glob_match("VM.start", "VM.start_on"));
    }

    #[test]
    fn power_state_transition_fires_once() {
        let r = router();
        let now = SystemTime::now();
        // Halted -> Running: fires.
        let up = change(
            Some(vm("Halted")),
            Some(vm("Running")),
            Operation::Mod,
            "VM",
        );
        let routed = r.route_change(&up, now);
        assert_eq!(routed.len(), 1);
        assert_eq!(routed[0].endpoint, "a");
        let ev = PoolEvent::parse(&routed[0].body).unwrap();
        assert_eq!(ev.type_, "vm.mod");
        assert_eq!(ev.data.ref_, "OpaqueRef:1");
        assert_eq!(ev.data.snapshot["power_state"], "Running");
        let ch = ev.data.changes.unwrap();
        assert_eq!(ch["power_state"].from, "Halted");
        assert_eq!(ch["power_state"].to, "Running");
        assert_eq!(ch.len(), 1);
        // A later mod that keeps Running (e.g. a name change) does not fire again.
        let mut renamed = vm("Running");
        renamed["name_label"] = "web2".into();
        let again = change(Some(vm("Running")), Some(renamed), Operation::Mod, "VM");
        assert!(r.route_change(&again, now).is_empty());
        // Other transitions and templates do not fire.
        let pause = change(
            Some(vm("Running")),
            Some(vm("Paused")),
            Operation::Mod,
            "VM",
        );
        assert!(r.route_change(&pause, now).is_empty());
        let mut t = vm("Running");
        t["is_a_template"] = true.into();
        let tmpl = change(Some(vm("Halted")), Some(t), Operation::Mod, "VM");
        assert!(r.route_change(&tmpl, now).is_empty());
        // No old record: a transition cannot be proven.
        let blind = change(None, Some(vm("Running")), Operation::Mod, "VM");
        assert!(r.route_change(&blind, now).is_empty());
    }

    #[test]
    fn class_and_operation_matching() {
        let r = router();
        let now = SystemTime::now();
        let del = change(Some(json!({"uuid":"h"})), None, Operation::Del, "host");
        let routed = r.route_change(&del, now);
        let eps: Vec<_> = routed.iter().map(|x| x.endpoint.as_str()).collect();
        assert_eq!(eps, ["a", "b"]);
        let ev = PoolEvent::parse(&routed[0].body).unwrap();
        assert_eq!(ev.type_, "host.del");
        assert_eq!(ev.data.snapshot, json!({"uuid":"h"}));
        // Wildcard class, disabled endpoint skipped.
        let add = change(None, Some(json!({"x":1})), Operation::Add, "SR");
        let eps: Vec<_> = r
            .route_change(&add, now)
            .into_iter()
            .map(|x| x.endpoint)
            .collect();
        assert_eq!(eps, ["b"]);
        let add_vm = change(None, Some(vm("Halted")), Operation::Add, "VM");
        assert_eq!(r.route_change(&add_vm, now).len(), 1);
    }

    fn call(phase: HookPhase, method: &str) -> CallEvent {
        CallEvent {
            phase,
            call: CallInfo {
                call_id: "c1".into(),
                user_id: None,
                user_name: None,
                user_ip: Some("10.0.0.1".into()),
                method: method.into(),
                params: json!({"vm":"OpaqueRef:1","password":"hunter2"}),
                timestamp_ms: 1000,
            },
            outcome: (phase == HookPhase::Post).then_some(CallOutcome::Result(None)),
            end_ms: (phase == HookPhase::Post).then_some(1250),
        }
    }

    #[test]
    fn call_routing_and_waiting() {
        let r = router();
        let pre = r.route_call(&call(HookPhase::Pre, "VM.start"));
        assert_eq!(pre.len(), 1);
        assert!(pre[0].wait);
        let body: Value = serde_json::from_slice(&pre[0].body).unwrap();
        assert_eq!(
            body,
            json!({"callId":"c1","userName":"(unknown user)","userIp":"10.0.0.1",
                   "method":"VM.start","params":{"vm":"OpaqueRef:1","password":"* obfuscated *"},
                   "timestamp":1000,"type":"pre"})
        );
        let post = r.route_call(&call(HookPhase::Post, "VM.start"));
        assert_eq!(post.len(), 1);
        assert_eq!(post[0].endpoint, "b");
        let card: Value = serde_json::from_slice(&post[0].body).unwrap();
        assert_eq!(card["@type"], "MessageCard");
        assert_eq!(card["sections"][0]["title"], "XO POST notification");
        assert!(r
            .route_call(&call(HookPhase::Post, "host.reboot"))
            .is_empty());
        assert!(r.route_call(&call(HookPhase::Pre, "pool.join")).is_empty());

        let d = r.on_call(&call(HookPhase::Pre, "VM.start")).unwrap();
        assert_eq!(d.waited.len(), 1);
        let sent = r.sink().sent.lock().unwrap();
        assert_eq!(sent[0].0, "a");
        assert_eq!(sent[0].2, Some(Duration::from_secs(3)));
    }
}
