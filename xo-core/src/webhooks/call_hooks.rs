//! XO-style pre/post call hooks as a client [`CallObserver`]: before each call a `pre`
//! [`CallEvent`] is routed (blocking up to the endpoint timeout for `waitForResponse` hooks),
//! after it a `post` event with the result or error and the duration. Params are sent by name
//! (from the datamodel), without the session ref, and secrets are obfuscated as XO does plus
//! xapi's own secret params (`pwd`, `old_pwd`, `new_pwd`, any `session ref`).
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use xo_core::client::{Client, ClientConfig};
//! # use xo_core::webhooks::{call_hooks::{CallHooks, Caller}, WebhookRouter, Engine};
//! # fn demo(router: Arc<WebhookRouter<Arc<Engine>>>) -> xo_core::client::Result<()> {
//! let hooks = Arc::new(CallHooks::new(router, Caller::default()));
//! let config = ClientConfig::new("https://pool-master.lan").with_observer(hooks);
//! let client = Client::connect(config, "root", "secret")?;
//! # Ok(()) }
//! ```

use super::engine::EngineError;
use super::payload::{CallInfo, CallOutcome, HookPhase, XoError};
use super::router::{CallEvent, Dispatched, Sink, WebhookRouter};
use crate::client::{message_meta, CallObserver, ObservedCall};
use crate::model::{ApiFailure, Value};
use serde_json::{Map, Value as Json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

impl<T: Sink + Send + Sync> Sink for Arc<T> {
    fn submit_many(
        &self,
        items: Vec<super::engine::Submission>,
    ) -> Result<Vec<super::store::MessageId>, EngineError> {
        (**self).submit_many(items)
    }
    fn submit_and_wait(
        &self,
        endpoint: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(super::store::MessageId, Option<super::engine::AttemptEvent>), EngineError> {
        (**self).submit_and_wait(endpoint, body, timeout)
    }
}

/// Who is calling, as XO's payload names them (`userId`, `userName`, `userIp`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Caller {
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub user_ip: Option<String>,
}

/// Routes every call of a client to a [`WebhookRouter`]. Errors submitting hooks are counted
/// and kept (last one) rather than failing the API call, as XO logs and carries on.
pub struct CallHooks<S: Sink> {
    router: Arc<WebhookRouter<S>>,
    caller: Caller,
    hook_errors: AtomicU64,
    last: std::sync::Mutex<Option<Dispatched>>,
}

impl<S: Sink> CallHooks<S> {
    /// Hooks that report calls as made by `caller`.
    pub fn new(router: Arc<WebhookRouter<S>>, caller: Caller) -> Self {
        CallHooks {
            router,
            caller,
            hook_errors: AtomicU64::new(0),
            last: std::sync::Mutex::new(None),
        }
    }

    /// How many hook submissions failed (the calls themselves went ahead).
    pub fn hook_errors(&self) -> u64 {
        self.hook_errors.load(Ordering::Relaxed)
    }

    /// What the most recent dispatch that sent anything produced (ids, waited pre hooks).
    pub fn last_dispatch(&self) -> Option<Dispatched> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    fn info(&self, call: &ObservedCall<'_>) -> CallInfo {
        CallInfo {
            call_id: call_id(call.id),
            user_id: self.caller.user_id.clone(),
            user_name: self.caller.user_name.clone(),
            user_ip: self.caller.user_ip.clone(),
            method: call.method.to_owned(),
            params: named_params(call.method, call.params),
            timestamp_ms: super::clock::unix_ms(call.started),
        }
    }

    fn dispatch(&self, ev: CallEvent) {
        match self.router.on_call(&ev) {
            Ok(d) if d.ids.is_empty() => {}
            Ok(d) => {
                if let Ok(mut l) = self.last.lock() {
                    *l = Some(d);
                }
            }
            Err(_) => {
                self.hook_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<S: Sink + Send + Sync> CallObserver for CallHooks<S> {
    fn before(&self, call: &ObservedCall<'_>) {
        self.dispatch(CallEvent {
            phase: HookPhase::Pre,
            call: self.info(call),
            outcome: None,
            end_ms: None,
        });
    }

    fn after(
        &self,
        call: &ObservedCall<'_>,
        outcome: Result<Option<&Value>, &crate::client::Error>,
    ) {
        let info = self.info(call);
        let end_ms = info.timestamp_ms + call.elapsed.as_millis() as i64;
        let outcome = match outcome {
            Ok(_) if returns_session(call.method) => {
                CallOutcome::Result(Some(Json::String(HIDDEN.into())))
            }
            // Void results (nil, or "" over XML-RPC) are JS `undefined`: XO sends `true`.
            Ok(_) if message_meta(call.method).is_some_and(|m| m.result == "void") => {
                CallOutcome::Result(None)
            }
            Ok(None | Some(Value::Nil)) => CallOutcome::Result(None),
            Ok(Some(v)) => CallOutcome::Result(Some(to_json(v))),
            Err(e) => CallOutcome::Error(xo_error(call.method, call.params, e, e.api_failure())),
        };
        self.dispatch(CallEvent {
            phase: HookPhase::Post,
            call: info,
            outcome: Some(outcome),
            end_ms: Some(end_ms),
        });
    }

    fn wants_results(&self) -> bool {
        true
    }
}

/// XO-style call ids: random per process, unique per call, shared by `pre` and `post`.
fn call_id(n: u64) -> String {
    static SALT: LazyLock<u32> = LazyLock::new(|| {
        let mut b = [0u8; 4];
        let _ = getrandom::fill(&mut b);
        u32::from_le_bytes(b)
    });
    format!("{:08x}{n:08x}", *SALT)
}

/// A dynamic value as JSON (non-finite floats become strings through `Value`'s serde form).
pub fn to_json(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

/// XO's placeholder for a hidden value; the client uses the same one for the session ref.
const HIDDEN: &str = crate::client::REDACTED;

/// Login methods return the session ref: their result is never sent.
fn returns_session(method: &str) -> bool {
    message_meta(method).is_some_and(|m| m.result == "session ref")
        || method.to_ascii_lowercase().contains("login")
}

fn is_xapi_secret(name: &str, ty: &str) -> bool {
    matches!(name, "pwd" | "old_pwd" | "new_pwd") || ty == "session ref"
}

/// Params as an object keyed by the datamodel's names (session excluded); xapi's secret params
/// are obfuscated here, XO's key rules are applied by the payload builder. Unknown methods give
/// `{"args": [...]}` with every string obfuscated, since we cannot tell which ones are secrets.
pub fn named_params(method: &str, params: &[Value]) -> Json {
    let Some(meta) = message_meta(method) else {
        let args = params
            .iter()
            .map(|p| match p {
                Value::String(_) => Json::String(HIDDEN.into()),
                other => to_json(other),
            })
            .collect();
        return Json::Object(Map::from_iter([("args".to_owned(), Json::Array(args))]));
    };
    let names = meta.params.iter().skip(usize::from(meta.session));
    let mut out = Map::new();
    for (i, p) in params.iter().enumerate() {
        let (name, ty) = names
            .clone()
            .nth(i)
            .map(|m| (m.name.to_owned(), m.ty))
            .unwrap_or_else(|| (format!("arg{i}"), ""));
        let v = if is_xapi_secret(&name, ty) {
            Json::String(HIDDEN.into())
        } else {
            to_json(p)
        };
        out.insert(name, v);
    }
    Json::Object(out)
}

/// An error as XO's xen-api library reports xapi failures (`XapiError`, `code`, `params`,
/// message `CODE(p1, p2)`), or a plain `Error` for transport problems.
fn xo_error<E: std::fmt::Display>(
    method: &str,
    params: &[Value],
    err: &E,
    failure: Option<&ApiFailure>,
) -> XoError {
    match failure {
        Some(f) => {
            let mut e = XoError::new("XapiError", format!("{}({})", f.code, f.params.join(", ")));
            e.code = Some(Json::String(f.code.clone()));
            e.extra.insert(
                "params".into(),
                Json::Array(f.params.iter().cloned().map(Json::String).collect()),
            );
            e.extra.insert(
                "call".into(),
                serde_json::json!({"method": method, "params": named_params(method, params)}),
            );
            e
        }
        None => XoError::new("Error", err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_named_and_secrets_hidden() {
        let p = named_params(
            "session.change_password",
            &[Value::String("old".into()), Value::String("new".into())],
        );
        assert_eq!(
            p,
            serde_json::json!({"old_pwd":"* obfuscated *","new_pwd":"* obfuscated *"})
        );
        let p = named_params(
            "VM.start",
            &[
                Value::String("OpaqueRef:v".into()),
                Value::Bool(false),
                Value::Bool(true),
            ],
        );
        assert_eq!(
            p,
            serde_json::json!({"vm":"OpaqueRef:v","start_paused":false,"force":true})
        );
        let p = named_params("Async.session.logout", &[]);
        assert_eq!(p, serde_json::json!({}));
        let p = named_params("nope.x", &[Value::String("s".into()), Value::Int(3)]);
        assert_eq!(p, serde_json::json!({"args":["* obfuscated *", 3]}));
    }
}
