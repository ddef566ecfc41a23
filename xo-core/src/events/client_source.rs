//! [`EventSource`] for the HTTP client.

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
