//! [`EventSource`] for the HTTP client and for the in-process simulator.

use std::sync::Mutex;

use super::source::{EventSource, SourceError};
use crate::client::{Client, Error};
use crate::model::Value;

impl From<Error> for SourceError {
    fn from(e: Error) -> Self {
        match e {
            Error::Api { failure, .. } => SourceError::from(failure),
            Error::Protocol { source, .. } => SourceError::Decode(source.to_string()),
            // Transport, HTTP status, configuration: retry later (the client fails over itself).
            other => SourceError::Transport(other.to_string()),
        }
    }
}

/// The client logs in again on `SESSION_INVALID` and follows the master by itself, so the
/// watcher only sees those errors when that fails too.
impl EventSource for Client {
    fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, SourceError> {
        Ok(self.call_value(method, params)?)
    }

    fn relogin(&self) -> Result<(), SourceError> {
        // The next call re-logs in with the stored credentials.
        Ok(())
    }
}

/// The simulator called in-process (no HTTP), logged in with its first user.
#[cfg(feature = "simulator")]
pub struct SimSource {
    sim: std::sync::Arc<crate::simulator::Simulator>,
    session: Mutex<String>,
}

#[cfg(feature = "simulator")]
impl SimSource {
    pub fn new(sim: std::sync::Arc<crate::simulator::Simulator>) -> Result<Self, SourceError> {
        let s = SimSource { sim, session: Mutex::new(String::new()) };
        s.relogin()?;
        Ok(s)
    }

    pub fn simulator(&self) -> &crate::simulator::Simulator {
        &self.sim
    }
}

#[cfg(feature = "simulator")]
impl EventSource for SimSource {
    fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, SourceError> {
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(Value::String(session));
        all.extend(params);
        Ok(self.sim.dispatch(method, all)?)
    }

    fn relogin(&self) -> Result<(), SourceError> {
        let (user, password) = self.sim.credentials();
        let v = self.sim.dispatch("session.login_with_password", vec![user.into(), password.into()])?;
        let r = v.as_str().ok_or_else(|| SourceError::Decode("login did not return a ref".into()))?;
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = r.to_owned();
        Ok(())
    }
}
