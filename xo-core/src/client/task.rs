//! Task handles for `Async.*` calls: wait through `event.from` on the one task (no busy
//! polling), report progress, cancel, decode the result, destroy the finished task.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::error::{Error, Result};
use super::{Client, TaskRef};
use crate::model::{ApiFailure, Value};
use crate::rpc::{xmlrpc, Call, Void};

/// Longest single `event.from` wait; the loop re-checks its own deadline between waits.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// A running server-side task whose result decodes into `R`.
pub struct TaskHandle<R> {
    client: Client,
    task: TaskRef,
    /// The synchronous method name, for errors (`VM.start`).
    method: String,
    _result: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for TaskHandle<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("task", &self.task.as_str())
            .field("method", &self.method)
            .finish()
    }
}

/// The fields of an event batch the wait loop reads.
#[derive(Deserialize)]
struct Batch {
    events: Vec<Event>,
    token: String,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "ref", default)]
    reference: String,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    snapshot: Option<TaskSnapshot>,
}

#[derive(Deserialize)]
struct TaskSnapshot {
    #[serde(default)]
    status: String,
    #[serde(default)]
    progress: f64,
    #[serde(default)]
    result: String,
    #[serde(default)]
    error_info: Vec<String>,
}

impl<R: DeserializeOwned> TaskHandle<R> {
    pub(crate) fn new(client: Client, task: TaskRef, method: String) -> Self {
        TaskHandle {
            client,
            task,
            method,
            _result: PhantomData,
        }
    }

    /// The task's ref, e.g. to show it or pass it to other calls.
    pub fn task_ref(&self) -> &TaskRef {
        &self.task
    }

    /// Waits up to `timeout` for the task to finish and returns its decoded result.
    pub fn wait(&self, timeout: Duration) -> Result<R> {
        self.wait_with_progress(timeout, |_| {})
    }

    /// Like [`TaskHandle::wait`], calling `progress` with each new progress value (0.0 to 1.0).
    /// On success, failure or cancellation the task is destroyed; on timeout it is left
    /// running (cancel it with [`TaskHandle::cancel`] if needed).
    pub fn wait_with_progress(
        &self,
        timeout: Duration,
        mut progress: impl FnMut(f64),
    ) -> Result<R> {
        let deadline = Instant::now() + timeout;
        let class = format!("task/{}", self.task.as_str());
        let mut token = String::new();
        let mut last = f64::NAN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    method: self.method.clone(),
                });
            }
            let wait = left.min(MAX_WAIT).as_secs_f64();
            let call = Call::<Batch>::new(
                "event.from",
                vec![
                    Value::Array(vec![Value::from(class.as_str())]),
                    Value::from(token.as_str()),
                    Value::Double(wait),
                ],
            );
            let batch = self.client.call(call)?;
            token = batch.token;
            for event in batch
                .events
                .into_iter()
                .filter(|e| e.reference == self.task.as_str())
            {
                if event.operation == "del" {
                    return Err(Error::api(
                        &self.method,
                        // Someone destroyed the task before it finished: xapi's code for a vanished object.
                        ApiFailure::new(
                            "HANDLE_INVALID",
                            vec!["task".into(), self.task.as_str().into()],
                        ),
                    ));
                }
                let Some(snap) = event.snapshot else { continue };
                if snap.progress != last && snap.progress.is_finite() {
                    last = snap.progress;
                    progress(snap.progress);
                }
                if let Some(done) = self.finish(snap) {
                    return done;
                }
            }
        }
    }

    /// Turns a finished task into the call's outcome, destroying it; `None` while pending.
    fn finish(&self, snap: TaskSnapshot) -> Option<Result<R>> {
        let outcome = match snap.status.as_str() {
            "pending" | "cancelling" | "" => return None,
            "success" => {
                // The result is an XML-RPC `<value>` even over JSON-RPC; void is "".
                let text = if snap.result.trim().is_empty() {
                    "<value></value>"
                } else {
                    &snap.result
                };
                xmlrpc::from_fragment::<R>(text.as_bytes(), self.client.config().limits)
                    .map_err(|e| Error::protocol(&self.method, e))
            }
            "failure" => Err(Error::api(
                &self.method,
                ApiFailure::from_description(snap.error_info),
            )),
            "cancelled" => Err(Error::TaskCancelled {
                method: self.method.clone(),
            }),
            other => Err(Error::protocol(
                &self.method,
                crate::rpc::DecodeError::new(format!("unknown task status {other:?}")),
            )),
        };
        // Best effort: a leftover task is collected by xapi after an hour anyway.
        let _ = self.destroy();
        Some(outcome)
    }

    /// Asks xapi to cancel the task; a later wait returns [`Error::TaskCancelled`] once it
    /// stopped (some operations cannot be cancelled and finish anyway).
    pub fn cancel(&self) -> Result<()> {
        self.client
            .call(Call::<Void>::new(
                "task.cancel",
                vec![Value::from(&self.task)],
            ))
            .map(|_| ())
    }

    /// Deletes the task record.
    pub fn destroy(&self) -> Result<()> {
        self.client
            .call(Call::<Void>::new(
                "task.destroy",
                vec![Value::from(&self.task)],
            ))
            .map(|_| ())
    }
}
