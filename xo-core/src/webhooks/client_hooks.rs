//! Pre/post call hooks around any XAPI caller (our client, the in-process simulator).
//!
//! [`HookedClient`] wraps a [`CallTarget`]: before each call it routes a `pre` [`CallEvent`]
//! (blocking up to the endpoint timeout for `waitForResponse` hooks), after it a `post` event
//! with the result or error and the duration. Params are sent by name (from the datamodel),
//! without the session ref, and secrets are obfuscated as XO does plus xapi's own secret params
//! (`pwd`, `old_pwd`, `new_pwd`, any `session ref`).

use super::engine::EngineError;
use super::payload::{CallInfo, CallOutcome, Phase, XoError};
use super::router::{CallEvent, Dispatched, Sink, WebhookRouter};
use crate::model::{ApiFailure, Value};
use serde_json::{Map, Value as Json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Something that runs XAPI calls with the session prepended (the client, the simulator).
pub trait CallTarget: Send + Sync {
    type Error: std::fmt::Display;
    /// Runs `method` with `params` (the session ref is not among them).
    fn call_value(&self, method: &str, params: Vec<Value>) -> Result<Value, Self::Error>;
    /// The xapi failure inside an error, if the server refused the call.
    fn api_failure(err: &Self::Error) -> Option<&ApiFailure>;
    /// The current session ref, so hooks can scrub it from results and params.
    fn session_ref(&self) -> Option<String> {
        None
    }
}

impl<T: CallTarget + ?Sized> CallTarget for Arc<T> {
    type Error = T::Error;
    fn call_value(&self, method: &str, params: Vec<Value>) -> Result<Value, T::Error> {
        (**self).call_value(method, params)
    }
    fn api_failure(err: &T::Error) -> Option<&ApiFailure> {
        T::api_failure(err)
    }
    fn session_ref(&self) -> Option<String> {
        (**self).session_ref()
    }
}

impl<T: CallTarget + ?Sized> CallTarget for &T {
    type Error = T::Error;
    fn call_value(&self, method: &str, params: Vec<Value>) -> Result<Value, T::Error> {
        (**self).call_value(method, params)
    }
    fn api_failure(err: &T::Error) -> Option<&ApiFailure> {
        T::api_failure(err)
    }
    fn session_ref(&self) -> Option<String> {
        (**self).session_ref()
    }
}

impl<T: Sink + Send> Sink for Arc<T> {
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

/// Sees every call: `before` and `after` return what the hooks dispatched (or why they could
/// not); hook failures never fail the call itself.
pub trait CallObserver: Send + Sync {
    fn before(&self, call_id: &str, method: &str, params: &[Value], at: SystemTime);
    fn after(
        &self,
        call_id: &str,
        method: &str,
        params: &[Value],
        outcome: &CallOutcome,
        started: SystemTime,
        duration: Duration,
    );
}

/// Routes calls to a [`WebhookRouter`]. Errors submitting hooks are counted and kept (last one)
/// rather than failing the API call, as XO logs and carries on.
pub struct RouterObserver<S: Sink> {
    router: Arc<WebhookRouter<S>>,
    caller: Caller,
    hook_errors: AtomicU64,
    last: std::sync::Mutex<Option<Dispatched>>,
}

impl<S: Sink> RouterObserver<S> {
    pub fn new(router: Arc<WebhookRouter<S>>, caller: Caller) -> Self {
        RouterObserver {
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

    fn info(&self, call_id: &str, method: &str, params: &[Value], at: SystemTime) -> CallInfo {
        CallInfo {
            call_id: call_id.to_owned(),
            user_id: self.caller.user_id.clone(),
            user_name: self.caller.user_name.clone(),
            user_ip: self.caller.user_ip.clone(),
            method: method.to_owned(),
            params: named_params(method, params),
            timestamp_ms: super::clock::unix_ms(at),
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

impl<S: Sink + Send> CallObserver for RouterObserver<S> {
    fn before(&self, call_id: &str, method: &str, params: &[Value], at: SystemTime) {
        let call = self.info(call_id, method, params, at);
        self.dispatch(CallEvent {
            phase: Phase::Pre,
            call,
            outcome: None,
            end_ms: None,
        });
    }

    fn after(
        &self,
        call_id: &str,
        method: &str,
        params: &[Value],
        outcome: &CallOutcome,
        started: SystemTime,
        duration: Duration,
    ) {
        let call = self.info(call_id, method, params, started);
        let end_ms = call.timestamp_ms + duration.as_millis() as i64;
        self.dispatch(CallEvent {
            phase: Phase::Post,
            call,
            outcome: Some(outcome.clone()),
            end_ms: Some(end_ms),
        });
    }
}

/// A caller with hooks: every `call_value` goes through the observer.
pub struct HookedClient<T: CallTarget> {
    inner: T,
    observer: Arc<dyn CallObserver>,
}

impl<T: CallTarget + Clone> Clone for HookedClient<T> {
    fn clone(&self) -> Self {
        HookedClient {
            inner: self.inner.clone(),
            observer: self.observer.clone(),
        }
    }
}

impl<T: CallTarget> HookedClient<T> {
    pub fn new(inner: T, observer: Arc<dyn CallObserver>) -> Self {
        HookedClient { inner, observer }
    }

    /// The unhooked caller (for calls that must not be reported, e.g. `event.from`).
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Runs the call between the pre and post hooks.
    pub fn call_value(&self, method: &str, params: Vec<Value>) -> Result<Value, T::Error> {
        let call_id = new_call_id();
        let started = SystemTime::now();
        // Observers see params with the session ref replaced wherever it appears.
        let shown = match self.inner.session_ref() {
            Some(s) => params.iter().map(|p| scrub_value(p, &s)).collect(),
            None => params.clone(),
        };
        self.observer.before(&call_id, method, &shown, started);
        let t0 = Instant::now();
        let res = self.inner.call_value(method, params.clone());
        let duration = t0.elapsed();
        let mut outcome = match &res {
            Ok(_) if returns_session(method) => {
                CallOutcome::Result(Some(Json::String(HIDDEN.into())))
            }
            // Void results (nil, or "" over XML-RPC) are JS `undefined`: XO sends `true`.
            Ok(_) if message_meta(method).is_some_and(|m| m.result == "void") => {
                CallOutcome::Result(None)
            }
            Ok(Value::Nil) => CallOutcome::Result(None),
            Ok(v) => CallOutcome::Result(Some(to_json(v))),
            Err(e) => CallOutcome::Error(xo_error(method, &params, e, T::api_failure(e))),
        };
        if let Some(s) = self.inner.session_ref() {
            scrub_outcome(&mut outcome, &s);
        }
        self.observer
            .after(&call_id, method, &shown, &outcome, started, duration);
        res
    }

    /// A typed call (decoded from the dynamic result with [`crate::model::from_value`]).
    pub fn call<R: serde::de::DeserializeOwned>(
        &self,
        call: crate::rpc::Call<R>,
    ) -> Result<Result<R, String>, T::Error> {
        let v = self.call_value(&call.method, call.params)?;
        Ok(crate::model::from_value::<R>(v).map_err(|e| e.to_string()))
    }
}

/// XO-style call ids: random, unique per call.
fn new_call_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        static N: AtomicU64 = AtomicU64::new(0);
        return format!("call-{}", N.fetch_add(1, Ordering::Relaxed));
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A dynamic value as JSON (non-finite floats become strings through `Value`'s serde form).
pub fn to_json(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

const HIDDEN: &str = "* obfuscated *";

fn message_meta(method: &str) -> Option<&'static crate::model::meta::MessageMeta> {
    method
        .strip_prefix("Async.")
        .unwrap_or(method)
        .split_once('.')
        .and_then(|(c, m)| crate::model::meta::class(c)?.message(m))
}

/// Login methods return the session ref: their result is never sent.
fn returns_session(method: &str) -> bool {
    message_meta(method).is_some_and(|m| m.result == "session ref")
        || method.to_ascii_lowercase().contains("login")
}

fn scrub_value(v: &Value, session: &str) -> Value {
    match v {
        Value::String(s) if s == session => Value::String(HIDDEN.into()),
        Value::Array(a) => Value::Array(a.iter().map(|x| scrub_value(x, session)).collect()),
        Value::Struct(st) => Value::Struct(
            st.0.iter()
                .map(|(k, x)| (k.clone(), scrub_value(x, session)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn scrub_json(v: &mut Json, session: &str) {
    match v {
        Json::String(s) if s == session => *s = HIDDEN.into(),
        Json::Array(a) => a.iter_mut().for_each(|x| scrub_json(x, session)),
        Json::Object(o) => o.values_mut().for_each(|x| scrub_json(x, session)),
        _ => {}
    }
}

fn scrub_outcome(o: &mut CallOutcome, session: &str) {
    match o {
        CallOutcome::Result(Some(v)) => scrub_json(v, session),
        CallOutcome::Result(None) => {}
        CallOutcome::Error(e) => {
            e.message = e.message.replace(session, HIDDEN);
            e.extra.values_mut().for_each(|x| scrub_json(x, session));
        }
    }
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

/// Our client: hooks see every call made through a [`HookedClient`] wrapping it.
impl CallTarget for crate::client::Client {
    type Error = crate::client::Error;
    fn call_value(&self, method: &str, params: Vec<Value>) -> Result<Value, Self::Error> {
        crate::client::Client::call_value(self, method, params)
    }
    fn api_failure(err: &Self::Error) -> Option<&ApiFailure> {
        err.api_failure()
    }
    fn session_ref(&self) -> Option<String> {
        crate::client::Client::session_ref(self).map(|r| r.as_str().to_owned())
    }
}

/// The in-process simulator as a call target (for tests, the tour and the daemon's default).
#[cfg(feature = "simulator")]
pub struct SimTarget {
    sim: Arc<crate::simulator::Simulator>,
    session: String,
}

#[cfg(feature = "simulator")]
impl SimTarget {
    /// Logs in with the simulator's first credentials.
    pub fn login(sim: Arc<crate::simulator::Simulator>) -> Result<SimTarget, ApiFailure> {
        let (u, p) = sim.credentials();
        let s = sim.dispatch(
            "session.login_with_password",
            vec![
                Value::String(u),
                Value::String(p),
                Value::String("1.0".into()),
                Value::String("xo-rs-webhooks".into()),
            ],
        )?;
        let session = s.as_str().unwrap_or_default().to_owned();
        Ok(SimTarget { sim, session })
    }

    pub fn simulator(&self) -> &Arc<crate::simulator::Simulator> {
        &self.sim
    }
}

#[cfg(feature = "simulator")]
impl CallTarget for SimTarget {
    type Error = ApiFailure;
    fn call_value(&self, method: &str, params: Vec<Value>) -> Result<Value, ApiFailure> {
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(Value::String(self.session.clone()));
        all.extend(params);
        self.sim.dispatch(method, all)
    }
    fn api_failure(err: &ApiFailure) -> Option<&ApiFailure> {
        Some(err)
    }
    fn session_ref(&self) -> Option<String> {
        Some(self.session.clone())
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
