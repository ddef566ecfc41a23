//! [`EventSource`] for the in-process simulator (no HTTP).

use std::sync::{Arc, Mutex};

use super::source::{EventSource, SourceError};
use crate::model::Value;
use crate::simulator::Simulator;

/// The simulator called in-process (no HTTP), logged in with its first user.
pub struct SimSource {
    sim: Arc<Simulator>,
    session: Mutex<String>,
}

impl SimSource {
    pub fn new(sim: Arc<Simulator>) -> Result<Self, SourceError> {
        let s = SimSource {
            sim,
            session: Mutex::new(String::new()),
        };
        s.relogin()?;
        Ok(s)
    }

    pub fn simulator(&self) -> &Simulator {
        &self.sim
    }
}

impl EventSource for SimSource {
    fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, SourceError> {
        let session = self
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(Value::String(session));
        all.extend(params);
        Ok(self.sim.dispatch(method, all)?)
    }

    fn relogin(&self) -> Result<(), SourceError> {
        let (user, password) = self.sim.credentials();
        let v = self.sim.dispatch(
            "session.login_with_password",
            vec![user.into(), password.into()],
        )?;
        let r = v
            .as_str()
            .ok_or_else(|| SourceError::Decode("login did not return a ref".into()))?;
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = r.to_owned();
        Ok(())
    }
}
