//! The delivery engine: durable submit, worker threads, retries, FIFO per endpoint, dead
//! letters, graceful shutdown.
//!
//! Threads: one dispatcher claims due messages from the store (respecting per-endpoint FIFO and
//! in-flight limits) and hands them to `workers` delivery threads over a channel. Each worker
//! POSTs, logs the attempt and applies the outcome in one store transaction, then wakes the
//! dispatcher. Nothing is kept only in memory: a message is in the store before `submit`
//! returns, and everything in flight at a crash is delivered again on the next start.

use super::clock::{unix_ms, Clock, SystemClock};
use super::http::{self, HttpResult};
use super::spec::{EndpointSpec, Ordering, Spec};
use super::store::{
    AttemptQuery, AttemptRecord, ClaimSlot, Claimed, Counts, ListFilter, MessageId, MessageInfo,
    NewMessage, Outcome, Retention, Store, StoreError,
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
        if self.shared.stopping.load(AtomicOrdering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        let now = unix_ms(self.shared.opts.clock.now());
        let mut msgs = Vec::with_capacity(items.len());
        {
            let eps = self
                .shared
                .endpoints
                .read()
                .unwrap_or_else(|e| e.into_inner());
            for (s, id) in items.into_iter().zip(ids) {
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
        }
        self.shared.store.enqueue(msgs)?;
        self.shared.notify();
        Ok(())
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

impl Shared {
    fn notify(&self) {
        *lock(&self.wake_gen) += 1;
        self.wake.notify_all();
    }

    fn set_disabled(
        &self,
        endpoint: &str,
        reason: Option<&str>,
        now: i64,
    ) -> Result<(), EngineError> {
        self.store.set_endpoint_disabled(endpoint, reason, now)?;
        let mut d = lock(&self.disabled);
        match reason {
            Some(r) => d.insert(endpoint.to_string(), r.to_string()),
            None => d.remove(endpoint),
        };
        Ok(())
    }

    /// Endpoints that may take more work now, rotated so every endpoint gets a turn first.
    fn slots(&self, round: usize) -> Vec<(ClaimSlot, Arc<EndpointSpec>)> {
        let eps = self.endpoints.read().unwrap_or_else(|e| e.into_inner());
        let order = self.order.read().unwrap_or_else(|e| e.into_inner());
        let disabled = lock(&self.disabled);
        let in_flight = lock(&self.in_flight);
        let n = order.len();
        let mut out = Vec::new();
        for i in 0..n {
            let id = &order[(i + round) % n];
            let Some(ep) = eps.get(id) else { continue };
            if !ep.enabled || disabled.contains_key(id) {
                continue;
            }
            let fifo = ep.ordering == Ordering::Fifo;
            let cap = if fifo { 1 } else { ep.max_in_flight.max(1) };
            let used = in_flight.get(id).copied().unwrap_or(0);
            if used < cap {
                out.push((
                    ClaimSlot {
                        endpoint: id.clone(),
                        fifo,
                        capacity: cap - used,
                    },
                    ep.clone(),
                ));
            }
        }
        out
    }

    fn log_store_error(&self, what: &str, e: &StoreError) {
        eprintln!("webhooks: {what}: {e}");
    }
}

fn dispatcher(sh: Arc<Shared>, jobs: mpsc::Sender<Job>, workers: usize) {
    let mut round = 0usize;
    let mut last_retention = Instant::now();
    loop {
        let seen = *lock(&sh.wake_gen);
        if sh.stopping.load(AtomicOrdering::SeqCst) {
            return;
        }
        let now = unix_ms(sh.opts.clock.now());
        // Claim up to twice the worker count so claims are batched and workers never idle
        // waiting for the next claim; queued jobs are released on shutdown.
        let free = (2 * workers).saturating_sub(sh.busy.load(AtomicOrdering::SeqCst));
        let slots = sh.slots(round);
        round = round.wrapping_add(1);
        let mut wait = sh.opts.poll_interval;
        if free > 0 && !slots.is_empty() {
            let plain: Vec<ClaimSlot> = slots.iter().map(|(s, _)| s.clone()).collect();
            match sh.store.claim_due(now, free, &plain) {
                Ok(claimed) => {
                    let got = claimed.len();
                    for msg in claimed {
                        let Some((_, ep)) = slots.iter().find(|(s, _)| s.endpoint == msg.endpoint)
                        else {
                            continue;
                        };
                        *lock(&sh.in_flight).entry(msg.endpoint.clone()).or_insert(0) += 1;
                        sh.busy.fetch_add(1, AtomicOrdering::SeqCst);
                        let job = Job {
                            msg,
                            endpoint: ep.clone(),
                        };
                        if jobs.send(job).is_err() {
                            return;
                        }
                    }
                    if got == free {
                        continue; // workers full; they wake us when done
                    }
                }
                Err(e) => sh.log_store_error("claiming messages", &e),
            }
            match sh.store.next_due_ms(&plain) {
                Ok(Some(t)) => {
                    let ms = (t - unix_ms(sh.opts.clock.now())).max(0) as u64;
                    wait = wait.min(Duration::from_millis(ms));
                }
                Ok(None) => {}
                Err(e) => sh.log_store_error("reading due times", &e),
            }
        }
        if let Some(r) = &sh.opts.retention {
            if last_retention.elapsed() >= sh.opts.retention_interval {
                last_retention = Instant::now();
                if let Err(e) = sh.store.apply_retention(r, now) {
                    sh.log_store_error("applying retention", &e);
                }
            }
        }
        if wait.is_zero() {
            continue;
        }
        let g = lock(&sh.wake_gen);
        if *g == seen {
            let _ = sh.wake.wait_timeout(g, wait);
        }
    }
}

struct WorkerExit(Arc<Shared>);

impl Drop for WorkerExit {
    fn drop(&mut self) {
        *lock(&self.0.live_workers) -= 1;
        self.0.workers_done.notify_all();
    }
}

fn worker(sh: Arc<Shared>, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let _exit = WorkerExit(sh.clone());
    loop {
        let job = match lock(&rx).recv() {
            Ok(j) => j,
            Err(_) => return,
        };
        if sh.stopping.load(AtomicOrdering::SeqCst) {
            // Claimed but not started: back to the store untouched.
            let now = unix_ms(sh.opts.clock.now());
            if let Err(e) = sh.store.release(std::slice::from_ref(&job.msg.id), now) {
                sh.log_store_error("releasing a message", &e);
            }
        } else {
            deliver(&sh, &job);
        }
        if let Some(n) = lock(&sh.in_flight).get_mut(&job.msg.endpoint) {
            *n = n.saturating_sub(1);
        }
        sh.busy.fetch_sub(1, AtomicOrdering::SeqCst);
        sh.notify();
    }
}

fn jittered(base: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 || base.is_zero() {
        return base;
    }
    let mut b = [0u8; 4];
    let r = if getrandom::fill(&mut b).is_ok() {
        u32::from_le_bytes(b) as f64 / u32::MAX as f64
    } else {
        0.5
    };
    base.mul_f64(1.0 - jitter + 2.0 * jitter * r)
}

/// Decides what a response means for the message. `attempt` counts from 1.
pub(crate) fn decide(
    ep: &EndpointSpec,
    attempt: u32,
    res: &HttpResult,
    max_retry_after: Duration,
) -> AttemptResult {
    let retryable = match res.status {
        Some(s) if (200..300).contains(&s) => return AttemptResult::Delivered,
        Some(410) => return AttemptResult::EndpointDisabled,
        None => true,
        Some(429) => true,
        Some(s) if (400..500).contains(&s) => ep.retry.retryable_status.contains(&s),
        Some(_) => true, // 1xx, 3xx, 5xx
    };
    let why = match (res.status, &res.error) {
        (Some(s), _) => format!("HTTP {s}"),
        (None, Some(e)) => e.clone(),
        (None, None) => "no response".into(),
    };
    if !retryable {
        return AttemptResult::Dead(format!("{why} is not retryable"));
    }
    let Some(base) = ep.retry.schedule.get(attempt as usize - 1) else {
        return AttemptResult::Dead(format!(
            "retries exhausted after {attempt} attempts, last: {why}"
        ));
    };
    let mut delay = jittered(*base, ep.retry.jitter);
    if let Some(ra) = res.retry_after {
        delay = delay.max(ra.min(max_retry_after));
    }
    AttemptResult::Retry(delay)
}

fn deliver(sh: &Shared, job: &Job) {
    let ep = &job.endpoint;
    let msg = &job.msg;
    let at = sh.opts.clock.now();
    let res = http::post(&sh.agent, ep, msg, at, &sh.opts.user_agent);
    let attempt = msg.attempts.saturating_add(1);
    let result = decide(ep, attempt, &res, sh.opts.max_retry_after);
    let done = sh.opts.clock.now();
    let now_ms = unix_ms(done);
    let outcome = match &result {
        AttemptResult::Delivered => Outcome::Delivered,
        AttemptResult::Retry(d) => Outcome::Retry {
            next_attempt_ms: now_ms + d.as_millis() as i64,
        },
        AttemptResult::Dead(r) => Outcome::Dead { reason: r.clone() },
        AttemptResult::EndpointDisabled => Outcome::Retry {
            next_attempt_ms: now_ms,
        },
    };
    if result == AttemptResult::EndpointDisabled {
        let reason = format!("410 Gone on message {}", msg.id);
        if let Err(e) = sh.set_disabled(&msg.endpoint, Some(&reason), now_ms) {
            eprintln!("webhooks: disabling endpoint: {e}");
        }
    }
    let rec = AttemptRecord {
        msg_id: msg.id.clone(),
        endpoint: msg.endpoint.clone(),
        at_ms: unix_ms(at),
        attempt,
        status: res.status,
        latency_ms: res.latency.as_millis() as u64,
        response: res.snippet.clone(),
        error: res.error.clone(),
    };
    if let Err(e) = sh.store.finish_attempt(&rec, &outcome, now_ms) {
        // The row stays in flight and is delivered again after a restart.
        sh.log_store_error("recording an attempt", &e);
    }
    let ev = AttemptEvent {
        msg_id: msg.id.clone(),
        endpoint: msg.endpoint.clone(),
        at,
        attempt,
        status: res.status,
        latency: res.latency,
        error: res.error,
        result,
    };
    if let Some(obs) = &sh.opts.observer {
        // A panicking observer must not take a worker (and its accounting) down with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| obs(&ev)));
    }
    if let Some(tx) = lock(&sh.waiters).remove(&msg.id) {
        let _ = tx.send(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(status: Option<u16>) -> HttpResult {
        HttpResult {
            status,
            latency: Duration::ZERO,
            snippet: None,
            error: None,
            retry_after: None,
        }
    }

    #[test]
    fn decisions() {
        let mut ep = EndpointSpec::new("e", "http://127.0.0.1:1/");
        ep.retry.jitter = 0.0;
        let max = Duration::from_secs(3600);
        assert_eq!(
            decide(&ep, 1, &res(Some(204)), max),
            AttemptResult::Delivered
        );
        assert_eq!(
            decide(&ep, 1, &res(Some(410)), max),
            AttemptResult::EndpointDisabled
        );
        assert_eq!(
            decide(&ep, 1, &res(Some(500)), max),
            AttemptResult::Retry(Duration::from_secs(5))
        );
        assert_eq!(
            decide(&ep, 2, &res(None), max),
            AttemptResult::Retry(Duration::from_secs(300))
        );
        assert!(matches!(
            decide(&ep, 1, &res(Some(404)), max),
            AttemptResult::Dead(_)
        ));
        assert!(matches!(
            decide(&ep, 1, &res(Some(408)), max),
            AttemptResult::Retry(_)
        ));
        assert!(matches!(
            decide(&ep, 1, &res(Some(302)), max),
            AttemptResult::Retry(_)
        ));
        assert!(matches!(
            decide(&ep, 8, &res(Some(500)), max),
            AttemptResult::Dead(_)
        ));
        let mut r = res(Some(429));
        r.retry_after = Some(Duration::from_secs(120));
        assert_eq!(
            decide(&ep, 1, &r, max),
            AttemptResult::Retry(Duration::from_secs(120))
        );
        r.retry_after = Some(Duration::from_secs(86400));
        assert_eq!(decide(&ep, 1, &r, max), AttemptResult::Retry(max));
    }

    #[test]
    fn jitter_stays_in_band() {
        for _ in 0..200 {
            let d = jittered(Duration::from_secs(100), 0.2);
            assert!(
                d >= Duration::from_secs(80) && d <= Duration::from_secs(120),
                "{d:?}"
            );
        }
    }
}
