//! Call observers: a client layer that sees every call before it is sent and after its
//! outcome is known (XO-style pre/post webhooks, metrics, audit logs), so neither the
//! webhooks nor the bindings wrap the client to get hooks.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::error::Error;
use crate::model::meta;
use crate::model::Value;

/// What replaces the session ref wherever it would reach an observer.
pub const REDACTED: &str = "* obfuscated *";

/// Sees every call a [`Client`](super::Client) makes (one logical call: re-logins and
/// retries inside it are not reported separately). Observers run on the calling thread, so
/// a slow observer slows the call; a panicking one is not caught.
pub trait CallObserver: Send + Sync {
    /// Before the call is sent.
    fn before(&self, call: &ObservedCall<'_>) {
        let _ = call;
    }

    /// After the outcome is known. The result is given only when
    /// [`wants_results`](CallObserver::wants_results) says so (it costs a dynamic decode).
    fn after(&self, call: &ObservedCall<'_>, outcome: Result<Option<&Value>, &Error>) {
        let _ = (call, outcome);
    }

    /// Whether [`after`](CallObserver::after) needs the call's result.
    fn wants_results(&self) -> bool {
        false
    }
}

/// One call as observers see it: the session ref is never among the params.
#[derive(Debug)]
pub struct ObservedCall<'a> {
    /// Unique within this process, shared by `before` and `after`.
    pub id: u64,
    /// The wire method (`VM.start`, `Async.VM.start`).
    pub method: &'a str,
    /// The params after the session ref, with any copy of it replaced by [`REDACTED`].
    pub params: &'a [Value],
    /// When the call started.
    pub started: SystemTime,
    /// Time taken so far (zero in `before`).
    pub elapsed: Duration,
}

impl ObservedCall<'_> {
    /// The message's datamodel description (`None` for methods this version does not know).
    pub fn message(&self) -> Option<&'static meta::MessageMeta> {
        message_meta(self.method)
    }

    /// The params with their datamodel names (`arg0`, `arg1`… where the datamodel has none),
    /// each with its datamodel type (`""` when unknown).
    pub fn named_params(&self) -> Vec<(String, &'static str, &Value)> {
        let declared: Vec<&meta::ParamMeta> = match self.message() {
            Some(m) => m.params.iter().skip(usize::from(m.session)).collect(),
            None => Vec::new(),
        };
        self.params
            .iter()
            .enumerate()
            .map(|(i, v)| match declared.get(i) {
                Some(p) => (p.name.to_owned(), p.ty, v),
                None => (format!("arg{i}"), "", v),
            })
            .collect()
    }
}

/// The message a wire method names (`Async.` prefix ignored).
pub fn message_meta(method: &str) -> Option<&'static meta::MessageMeta> {
    method
        .strip_prefix("Async.")
        .unwrap_or(method)
        .split_once('.')
        .and_then(|(c, m)| meta::class(c)?.message(m))
}

/// The observers of one client, in the order they were added.
#[derive(Clone, Default)]
pub struct Observers(pub(crate) Vec<Arc<dyn CallObserver>>);

impl Observers {
    /// True when no observer is installed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn want_results(&self) -> bool {
        self.0.iter().any(|o| o.wants_results())
    }
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Observers({})", self.0.len())
    }
}

/// Replaces every copy of `session` inside `v` with [`REDACTED`].
pub(crate) fn redact(v: &Value, session: &str) -> Value {
    match v {
        Value::String(s) if s == session => Value::String(REDACTED.into()),
        Value::Array(a) => Value::Array(a.iter().map(|x| redact(x, session)).collect()),
        Value::Struct(st) => Value::Struct(
            st.0.iter()
                .map(|(k, x)| (k.clone(), redact(x, session)))
                .collect(),
        ),
        other => other.clone(),
    }
}
