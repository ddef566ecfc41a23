//! Writing an extended spec back to JSON (secrets included: it is a config file).

use super::extended::{CallSubscription, ConditionKind, EndpointSpec, EventSubscription, Ordering};
use serde_json::{Map, Value};
use std::time::Duration;

fn dur_value(d: Duration) -> Value {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        Value::from(d.as_secs())
    } else {
        Value::from(s)
    }
}

pub(super) fn endpoint_to_value(e: &EndpointSpec) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), e.id.clone().into());
    o.insert("url".into(), e.url.clone().into());
    if !e.headers.is_empty() {
        let h: Map<String, Value> = e
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        o.insert("headers".into(), Value::Object(h));
    }
    if !e.secrets.is_empty() {
        o.insert(
            "secrets".into(),
            e.secrets
                .iter()
                .map(|s| Value::String(s.expose_whsec()))
                .collect(),
        );
    }
    if let Some(g) = &e.github_secret {
        o.insert(
            "githubSecret".into(),
            String::from_utf8_lossy(g.key()).into_owned().into(),
        );
    }
    o.insert("timeoutSeconds".into(), dur_value(e.timeout));
    let mut r = Map::new();
    r.insert(
        "schedule".into(),
        e.retry.schedule.iter().map(|d| dur_value(*d)).collect(),
    );
    r.insert("jitter".into(), e.retry.jitter.into());
    r.insert(
        "retryableStatus".into(),
        e.retry
            .retryable_status
            .iter()
            .map(|c| Value::from(*c))
            .collect(),
    );
    o.insert("retry".into(), Value::Object(r));
    let ord = match e.ordering {
        Ordering::Fifo => "fifo",
        Ordering::Unordered => "unordered",
    };
    o.insert("ordering".into(), ord.into());
    o.insert("maxInFlight".into(), e.max_in_flight.into());
    o.insert("enabled".into(), e.enabled.into());
    Value::Object(o)
}

pub(super) fn event_to_value(e: &EventSubscription) -> Value {
    let mut o = Map::new();
    if let Some(id) = &e.id {
        o.insert("id".into(), id.clone().into());
    }
    o.insert("endpoints".into(), e.endpoints.clone().into());
    o.insert("class".into(), e.class.clone().into());
    o.insert(
        "operations".into(),
        e.operations
            .iter()
            .map(|x| Value::from(x.as_str()))
            .collect(),
    );
    let conds = e
        .conditions
        .iter()
        .map(|c| {
            let mut m = Map::new();
            m.insert("field".into(), c.field.clone().into());
            match &c.kind {
                ConditionKind::Equals(v) => {
                    m.insert("equals".into(), v.clone());
                }
                ConditionKind::Transition { from, to } => {
                    if let Some(f) = from {
                        m.insert("from".into(), f.clone());
                    }
                    if let Some(t) = to {
                        m.insert("to".into(), t.clone());
                    }
                }
            }
            Value::Object(m)
        })
        .collect();
    o.insert("conditions".into(), conds);
    Value::Object(o)
}

pub(super) fn call_to_value(c: &CallSubscription) -> Value {
    let mut o = Map::new();
    o.insert("endpoints".into(), c.endpoints.clone().into());
    o.insert("methods".into(), c.methods.clone().into());
    o.insert("type".into(), c.type_.as_str().into());
    o.insert("waitForResponse".into(), c.wait_for_response.into());
    o.insert("format".into(), c.format.as_str().into());
    Value::Object(o)
}
