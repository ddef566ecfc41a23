//! The delivery engine: durable submit, worker threads, retries, FIFO per endpoint, dead
//! letters, graceful shutdown.
//!
//! Threads: one dispatcher claims due messages from the store (respecting per-endpoint FIFO and
//! in-flight limits) and hands them to `workers` delivery threads over a channel. Each worker
//! POSTs, logs the attempt and applies the outcome in one store transaction, then wakes the
//! dispatcher. Nothing is kept only in memory: a message is in the store before `submit`
//! returns, and everything in flight at a crash is delivered again on the next start.

mod retry;
mod threads;

use threads::{dispatcher, worker};

use crate::webhooks::clock::{unix_ms, Clock, SystemClock};
use crate::webhooks::http;
use crate::webhooks::spec::{EndpointSpec, Spec};
use crate::webhooks::store::{
    AttemptQuery, AttemptRecord, Claimed, Counts, ListFilter, MessageId, MessageInfo, NewMessage,
    Retention, Store, StoreError,
};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Called once per delivery attempt (from a worker thread).
pub type Observer = Arc<dyn Fn(&AttemptEvent) + Send + Sync>;

pub struct EngineOptions {
    /// Delivery threads (concurrent HTTP requests).
    pub workers: usize,
    pub clock: Arc<dyn Clock>,
    pub observer: Option<Observer>,
    /// `Retry-After` is honoured up to this long.
    pub max_retry_after: Duration,
    /// Longest the dispatcher sleeps without being woken.
    pub poll_interval: Duration,
    pub user_agent: String,
    /// Largest body `submit` accepts.
    pub max_body: usize,
    /// Applied every `retention_interval` when set.
    pub retention: Option<Retention>,
    pub retention_interval: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            workers: 4,
            clock: Arc::new(SystemClock),
            observer: None,
            max_retry_after: Duration::from_secs(3600),
            poll_interval: Duration::from_millis(500),
            user_agent: concat!("xo-rs-webhooks/", env!("CARGO_PKG_VERSION")).to_string(),
            max_body: 4 << 20,
            retention: None,
            retention_interval: Duration::from_secs(60),
        }
    }
}

/// What an attempt led to.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    Delivered,
    /// Retried after this delay.
    Retry(Duration),
    /// Dead-lettered (retries exhausted or a non-retryable status).
    Dead(String),
    /// 410 Gone: the endpoint was disabled; the message waits, pending, for it to be enabled.
    EndpointDisabled,
}

/// One delivery attempt, for observers and `submit_and_wait`.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptEvent {
    pub msg_id: MessageId,
    pub endpoint: String,
    pub at: SystemTime,
    pub attempt: u32,
    pub status: Option<u16>,
    pub latency: Duration,
    pub error: Option<String>,
    pub result: AttemptResult,
}

impl fmt::Display for AttemptEvent {
    /// One line: `<time> <endpoint> <msg id> attempt <n> <status|error> <ms> -> <result>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let when = crate::model::DateTime::from_unix(unix_ms(self.at) / 1000).to_rfc3339();
        write!(
            f,
            "{when} {} {} attempt {} ",
            self.endpoint, self.msg_id, self.attempt
        )?;
        match (self.status, &self.error) {
            (Some(s), _) => write!(f, "HTTP {s}")?,
            (None, Some(e)) => write!(f, "error ({e})")?,
            (None, None) => f.write_str("no response")?,
        }
        write!(f, " {} ms -> ", self.latency.as_millis())?;
        match &self.result {
            AttemptResult::Delivered => f.write_str("delivered"),
            AttemptResult::Retry(d) => write!(f, "retry in {:.3} s", d.as_secs_f64()),
            AttemptResult::Dead(r) => write!(f, "dead ({r})"),
            AttemptResult::EndpointDisabled => f.write_str("endpoint disabled (410 Gone)"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no endpoint with id {0:?}")]
    UnknownEndpoint(String),
    #[error("body of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("engine is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One message to submit.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub endpoint: String,
    pub body: Vec<u8>,
    /// Defaults to `Content-Type: application/json` when empty.
    pub headers: Vec<(String, String)>,
}

impl Submission {
    pub fn json(endpoint: impl Into<String>, body: impl Into<Vec<u8>>) -> Submission {
        Submission {
            endpoint: endpoint.into(),
            body: body.into(),
            headers: Vec::new(),
        }
    }
}

/// How shutdown went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Every worker finished before the deadline.
    pub clean: bool,
    /// Workers still in an HTTP request at the deadline (their messages stay in flight in the
    /// store and are delivered again after the next start).
    pub abandoned: usize,
}

struct Job {
    msg: Claimed,
    endpoint: Arc<EndpointSpec>,
}

struct Shared {
    store: Arc<dyn Store>,
    endpoints: RwLock<HashMap<String, Arc<EndpointSpec>>>,
    /// Endpoint order for fair claiming.
    order: RwLock<Vec<String>>,
    /// Disabled at run time (410 or by hand), with the reason; persisted in the store.
    disabled: Mutex<HashMap<String, String>>,
    in_flight: Mutex<HashMap<String, usize>>,
    busy: AtomicUsize,
    live_workers: Mutex<usize>,
    workers_done: Condvar,
    wake_gen: Mutex<u64>,
    wake: Condvar,
    stopping: AtomicBool,
    waiters: Mutex<HashMap<MessageId, mpsc::Sender<AttemptEvent>>>,
    agent: ureq::Agent,
    opts: EngineOptions,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Engine {
    shared: Arc<Shared>,
    dispatcher: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    job_tx: Option<mpsc::Sender<Job>>,
}

impl Engine {
    /// Recovers messages a previous process left in flight, then starts the threads.
    pub fn start(
        store: Arc<dyn Store>,
        spec: Spec,
        opts: EngineOptions,
    ) -> Result<Engine, EngineError> {
        let now = unix_ms(opts.clock.now());
        store.recover_in_flight(now)?;
        let disabled: HashMap<String, String> = store.disabled_endpoints()?.into_iter().collect();
        let workers_n = opts.workers.max(1);
        let shared = Arc::new(Shared {
            store,
            order: RwLock::new(spec.endpoints.iter().map(|e| e.id.clone()).collect()),
            endpoints: RwLock::new(
                spec.endpoints
                    .into_iter()
                    .map(|e| (e.id.clone(), Arc::new(e)))
                    .collect(),
            ),
            disabled: Mutex::new(disabled),
            in_flight: Mutex::new(HashMap::new()),
            busy: AtomicUsize::new(0),
            live_workers: Mutex::new(workers_n),
            workers_done: Condvar::new(),
            wake_gen: Mutex::new(0),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            waiters: Mutex::new(HashMap::new()),
            agent: http::agent(workers_n),
            opts,
        });
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut workers = Vec::new();
        for i in 0..workers_n {
            let sh = shared.clone();
            let rx = job_rx.clone();
            let h = std::thread::Builder::new()
                .name(format!("webhook-worker-{i}"))
                .spawn(move || worker(sh, rx))
                .map_err(|e| StoreError::Other(format!("spawning a worker: {e}")))?;
            workers.push(h);
        }
        let sh = shared.clone();
        let tx = job_tx.clone();
        let dispatcher = std::thread::Builder::new()
            .name("webhook-dispatcher".into())
            .spawn(move || dispatcher(sh, tx, workers_n))
            .map_err(|e| StoreError::Other(format!("spawning the dispatcher: {e}")))?;
        Ok(Engine {
            shared,
            dispatcher: Some(dispatcher),
            workers,
            job_tx: Some(job_tx),
        })
    }

    /// Queues one JSON body for an endpoint; returns once it is durably stored.
    pub fn submit(
        &self,
        endpoint: &str,
        body: impl Into<Vec<u8>>,
    ) -> Result<MessageId, EngineError> {
        let ids = self.submit_many(vec![Submission::json(endpoint, body)])?;
        Ok(ids.into_iter().next().unwrap_or_default())
    }

    /// Queues several messages in one transaction.
    pub fn submit_many(&self, items: Vec<Submission>) -> Result<Vec<MessageId>, EngineError> {
        let ids: Vec<MessageId> = items.iter().map(|_| MessageId::new()).collect();
        self.submit_with_ids(items, ids.clone())?;
        Ok(ids)
    }

    fn submit_with_ids(
        &self,
        items: Vec<Submission>,
        ids: Vec<MessageId>,
    ) -> Result<(), EngineError> {
        let msgs = self.prepare(items.into_iter().zip(ids).collect())?;
        self.shared.store.enqueue(msgs)?;
        self.shared.notify();
        Ok(())
    }

    /// Checks submissions (known endpoint, body size) and turns them into store rows, for a
    /// producer that writes them itself in a transaction of its own
    /// ([`SqliteStore::enqueue_with`](crate::webhooks::SqliteStore::enqueue_with)); call
    /// [`Engine::wake`] after the commit.
    pub fn prepare(
        &self,
        items: Vec<(Submission, MessageId)>,
    ) -> Result<Vec<NewMessage>, EngineError> {
        if self.shared.stopping.load(AtomicOrdering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        let now = unix_ms(self.shared.opts.clock.now());
        let eps = self
            .shared
            .endpoints
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let mut msgs = Vec::with_capacity(items.len());
        for (s, id) in items {
            if !eps.contains_key(&s.endpoint) {
                return Err(EngineError::UnknownEndpoint(s.endpoint));
            }
            if s.body.len() > self.shared.opts.max_body {
                return Err(EngineError::TooLarge(s.body.len()));
            }
            let headers = if s.headers.is_empty() {
                vec![("content-type".to_string(), "application/json".to_string())]
            } else {
                s.headers
            };
            msgs.push(NewMessage {
                id,
                endpoint: s.endpoint,
                body: s.body,
                headers,
                created_ms: now,
                next_attempt_ms: now,
            });
        }
        Ok(msgs)
    }

    /// Tells the dispatcher new messages were stored behind its back.
    pub fn wake(&self) {
        self.shared.notify();
    }

    /// Submits, then waits up to `timeout` for the first attempt (for XO's `waitForResponse`
    /// pre hooks). The message stays queued and is retried as usual if that attempt fails.
    /// Returns `None` when no attempt finished in time.
    pub fn submit_and_wait(
        &self,
        endpoint: &str,
        body: impl Into<Vec<u8>>,
        timeout: Duration,
    ) -> Result<(MessageId, Option<AttemptEvent>), EngineError> {
        let id = MessageId::new();
        let (tx, rx) = mpsc::channel();
        lock(&self.shared.waiters).insert(id.clone(), tx);
        let res = self.submit_with_ids(vec![Submission::json(endpoint, body)], vec![id.clone()]);
        if let Err(e) = res {
            lock(&self.shared.waiters).remove(&id);
            return Err(e);
        }
        let ev = rx.recv_timeout(timeout).ok();
        lock(&self.shared.waiters).remove(&id);
        Ok((id, ev))
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    pub fn endpoint(&self, id: &str) -> Option<Arc<EndpointSpec>> {
        self.shared
            .endpoints
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub fn list(&self, filter: &ListFilter) -> Result<Vec<MessageInfo>, EngineError> {
        Ok(self.shared.store.list(filter)?)
    }

    pub fn attempts(&self, q: &AttemptQuery) -> Result<Vec<AttemptRecord>, EngineError> {
        Ok(self.shared.store.attempts(q)?)
    }

    pub fn counts(&self) -> Result<Counts, EngineError> {
        Ok(self.shared.store.counts()?)
    }

    /// Sends a dead (or delivered) message again, same `webhook-id`, fresh retry budget.
    pub fn replay(&self, id: &MessageId) -> Result<bool, EngineError> {
        let ok = self.shared.store.replay(id, self.now_ms())?;
        self.shared.notify();
        Ok(ok)
    }

    /// Replays every dead message, optionally of one endpoint.
    pub fn replay_dead(&self, endpoint: Option<&str>) -> Result<u64, EngineError> {
        let n = self.shared.store.replay_dead(endpoint, self.now_ms())?;
        self.shared.notify();
        Ok(n)
    }

    /// The reason an endpoint is disabled at run time, if it is.
    pub fn disabled_reason(&self, endpoint: &str) -> Option<String> {
        lock(&self.shared.disabled).get(endpoint).cloned()
    }

    pub fn disable_endpoint(&self, endpoint: &str, reason: &str) -> Result<(), EngineError> {
        self.shared
            .set_disabled(endpoint, Some(reason), self.now_ms())
    }

    /// Re-enables an endpoint disabled at run time; its pending messages go out again.
    pub fn enable_endpoint(&self, endpoint: &str) -> Result<(), EngineError> {
        self.shared.set_disabled(endpoint, None, self.now_ms())?;
        self.shared.notify();
        Ok(())
    }

    /// Applies retention limits now.
    pub fn apply_retention(
        &self,
        r: &Retention,
    ) -> Result<super::store::RetentionReport, EngineError> {
        Ok(self.shared.store.apply_retention(r, self.now_ms())?)
    }

    fn now_ms(&self) -> i64 {
        unix_ms(self.shared.opts.clock.now())
    }

    /// Stops claiming, lets in-flight deliveries finish until `deadline`, returns claimed but
    /// unstarted work to the store. Whatever is still running at the deadline is left in
    /// flight in the store and delivered again on the next start.
    pub fn shutdown(mut self, deadline: Duration) -> ShutdownReport {
        self.stop(deadline)
    }

    fn stop(&mut self, deadline: Duration) -> ShutdownReport {
        let until = Instant::now() + deadline;
        self.shared.stopping.store(true, AtomicOrdering::SeqCst);
        self.shared.notify();
        if let Some(d) = self.dispatcher.take() {
            let _ = d.join();
        }
        // Workers exit once the channel is closed and drained.
        self.job_tx = None;
        let mut live = lock(&self.shared.live_workers);
        while *live > 0 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            live = self
                .shared
                .workers_done
                .wait_timeout(live, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        let abandoned = *live;
        drop(live);
        if abandoned == 0 {
            for w in self.workers.drain(..) {
                let _ = w.join();
            }
        } else {
            self.workers.clear(); // detached; they finish on their own
        }
        ShutdownReport {
            clean: abandoned == 0,
            abandoned,
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if self.dispatcher.is_some() {
            self.stop(Duration::from_secs(5));
        }
    }
}
