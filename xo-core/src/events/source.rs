//! What the watcher needs from a connection: a session-bound call and a way to log in again.
//! Implemented by the client (HTTP), the simulator (in-process) and [`super::MemorySource`].

use std::fmt;

use crate::model::{ApiFailure, Value};

/// Why a call to the source failed, sorted by what the watcher does about it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// `SESSION_INVALID`: log in again and retry the same call.
    #[error("session invalid")]
    SessionInvalid,
    /// `EVENTS_LOST`: the server dropped events for us; relist.
    #[error("events lost")]
    EventsLost,
    /// `EVENT_FROM_TOKEN_PARSE_FAILURE`: the server does not know our token; relist.
    #[error("token rejected by the server")]
    TokenRejected,
    /// Any other failure xapi reported.
    #[error("API failure: {0}")]
    Api(ApiFailure),
    /// The connection failed (refused, reset, timed out, TLS, master gone).
    #[error("transport: {0}")]
    Transport(String),
    /// The reply did not have the expected shape.
    #[error("bad reply: {0}")]
    Decode(String),
}

impl From<ApiFailure> for SourceError {
    fn from(f: ApiFailure) -> Self {
        match f.code.as_str() {
            "SESSION_INVALID" => SourceError::SessionInvalid,
            "EVENTS_LOST" => SourceError::EventsLost,
            "EVENT_FROM_TOKEN_PARSE_FAILURE" => SourceError::TokenRejected,
            _ => SourceError::Api(f),
        }
    }
}

/// A connection the watcher can drive. Implementations add the session ref themselves and
/// must be usable from the watcher's thread (`Send + Sync`).
pub trait EventSource: Send + Sync {
    /// Calls `method` with `params` (after the session ref) and returns the raw result.
    fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, SourceError>;

    /// Logs in again after `SESSION_INVALID` (same credentials, possibly a new master).
    fn relogin(&self) -> Result<(), SourceError>;

    /// `event.inject(class, ref)`: touches the object and returns a token from just before.
    fn inject(&self, class: &str, r: &str) -> Result<String, SourceError> {
        let v = self.call("event.inject", vec![class.into(), r.into()])?;
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| bad("event.inject", &v))
    }

    /// `<class>.get_all_records()`: every object of the class as `(ref, record)`.
    fn get_all_records(&self, class: &str) -> Result<Vec<(String, Value)>, SourceError> {
        let v = self.call(&format!("{class}.get_all_records"), vec![])?;
        match v {
            Value::Struct(s) => Ok(s.0),
            other => Err(bad("get_all_records", &other)),
        }
    }

    /// `<class>.get_record(ref)`; `None` when the object is gone (`HANDLE_INVALID`).
    fn get_record(&self, class: &str, r: &str) -> Result<Option<Value>, SourceError> {
        match self.call(&format!("{class}.get_record"), vec![r.into()]) {
            Ok(v @ Value::Struct(_)) => Ok(Some(v)),
            Ok(other) => Err(bad("get_record", &other)),
            Err(SourceError::Api(f)) if f.code == "HANDLE_INVALID" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The pool's ref (`pool.get_all`, first entry).
    fn pool_ref(&self) -> Result<String, SourceError> {
        let v = self.call("pool.get_all", vec![])?;
        let first = v.as_array().and_then(|a| a.first()).and_then(Value::as_str);
        first
            .map(str::to_owned)
            .ok_or_else(|| bad("pool.get_all", &v))
    }

    /// `event.from(classes, token, timeout)`: the raw batch struct.
    fn event_from(
        &self,
        classes: &[String],
        token: &str,
        timeout: f64,
    ) -> Result<Value, SourceError> {
        let classes = Value::Array(classes.iter().map(|c| Value::from(c.as_str())).collect());
        self.call(
            "event.from",
            vec![classes, token.into(), Value::Double(timeout)],
        )
    }
}

impl<S: EventSource + ?Sized> EventSource for std::sync::Arc<S> {
    fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, SourceError> {
        (**self).call(method, params)
    }
    fn relogin(&self) -> Result<(), SourceError> {
        (**self).relogin()
    }
}

fn bad(what: &str, v: &Value) -> SourceError {
    SourceError::Decode(format!("{what}: unexpected {}", v.kind()))
}

/// Shortens server text before it goes into an error message.
pub(crate) fn clip(s: &str) -> impl fmt::Display + '_ {
    struct Clip<'a>(&'a str);
    impl fmt::Display for Clip<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self.0.char_indices().nth(80) {
                Some((i, _)) => write!(f, "{:?}…", &self.0[..i]),
                None => write!(f, "{:?}", self.0),
            }
        }
    }
    Clip(s)
}
