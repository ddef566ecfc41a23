//! The watcher: a blocking iterator over `event.from`, driven by a small state machine
//! (kube-rs' watcher shape) and following XO's order: token first, then a listing, then events.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::calls;
use super::event::{parse_batch, Batch, ObjectEvent, Op};
use crate::client::{Client, Error};

/// What the watcher is told to follow.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// Class names (`VM`, `VIF`), `*` for everything, or one object (`VM/OpaqueRef:…`).
    pub classes: Vec<String>,
    /// Server-side `event.from` timeout in seconds; also bounds how long `stop` takes.
    pub poll_timeout: f64,
    /// First retry delay after an error; doubled on each failure up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Start from this token instead of listing (the caller kept its own state).
    pub resume_token: Option<String>,
    /// Keep every record exactly as xapi sent it ([`Record::Dynamic`](super::Record)),
    /// fields a newer host adds included, instead of decoding known classes into their types.
    pub wire_records: bool,
}

impl WatchConfig {
    /// Follows these classes, by name (`VM`, `vm_guest_metrics`, a class a newer host adds).
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(classes: I) -> Self {
        WatchConfig {
            classes: classes.into_iter().map(Into::into).collect(),
            poll_timeout: 10.0,
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            resume_token: None,
            wire_records: false,
        }
    }

    /// Follows nothing yet: add classes with [`WatchConfig::class`].
    pub fn empty() -> Self {
        WatchConfig::new(Vec::<String>::new())
    }

    /// Also follows class `T` (`.class::<Vm>().class::<VmGuestMetrics>()`).
    pub fn class<T: crate::model::XapiClass>(mut self) -> Self {
        self.classes.push(T::WIRE_NAME.to_owned());
        self
    }

    /// Also follows a class by name.
    pub fn named(mut self, class: impl Into<String>) -> Self {
        self.classes.push(class.into());
        self
    }

    /// Keeps records as xapi sent them (see [`WatchConfig::wire_records`]).
    pub fn keep_wire_records(mut self) -> Self {
        self.wire_records = true;
        self
    }

    /// Server-side `event.from` timeout in seconds.
    pub fn poll_timeout(mut self, seconds: f64) -> Self {
        self.poll_timeout = seconds;
        self
    }

    /// Retry delays after errors: from `min`, doubling up to `max`.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// Resumes from a saved token instead of listing.
    pub fn resume_from(mut self, token: impl Into<String>) -> Self {
        self.resume_token = Some(token.into());
        self
    }
}

/// Why the watcher threw its state away and listed again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResyncReason {
    /// `EVENTS_LOST`.
    EventsLost,
    /// The server rejected the token (`EVENT_FROM_TOKEN_PARSE_FAILURE`), e.g. a stale saved one.
    TokenRejected,
}

/// What the watcher yields.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    /// The watcher lost track and is about to list again; previous state is stale.
    Resync(ResyncReason),
    /// A full listing starts; `InitObject`s follow, then `InitDone`.
    Init,
    /// One object of the listing (`op` is `Add`).
    InitObject(ObjectEvent),
    /// The listing is complete; events from `token` on follow.
    InitDone { token: String },
    /// One change from `event.from`.
    Event(ObjectEvent),
    /// The end of one non-empty `event.from` batch: every change up to `token` was yielded.
    Bookmark {
        token: String,
        valid_ref_counts: BTreeMap<String, i64>,
    },
}

/// Where a watcher error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchPhase {
    /// Getting a token and listing the classes.
    List,
    /// Waiting in `event.from`.
    Watch,
}

/// A failure the watcher recovers from by itself: it retries after `retry_in`.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{phase:?} failed (retrying in {retry_in:?}): {source}")]
pub struct WatchError {
    /// Where it happened.
    pub phase: WatchPhase,
    /// The client's error, typed (`api_code()`, `is_timeout()`…).
    pub source: Arc<Error>,
    /// When the watcher tries again.
    pub retry_in: Duration,
}

/// Counters kept by the watcher.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchStats {
    pub batches: u64,
    pub empty_batches: u64,
    pub events: u64,
    pub listings: u64,
    pub resyncs: u64,
    pub errors: u64,
    /// Classes fetched again because `valid_ref_counts` disagreed with what was yielded.
    pub reconciles: u64,
}

/// Stops a watcher from another thread. The watcher notices before its next call and during
/// back-off sleeps; a blocked `event.from` returns within the poll timeout.
#[derive(Clone, Debug, Default)]
pub struct StopHandle(Arc<(Mutex<bool>, Condvar)>);

impl StopHandle {
    pub fn stop(&self) {
        let (lock, cv) = &*self.0;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps up to `d`; returns true if stopped meanwhile.
    pub fn sleep(&self, d: Duration) -> bool {
        let (lock, cv) = &*self.0;
        let deadline = Instant::now() + d;
        let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*stopped {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            stopped = cv
                .wait_timeout(stopped, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *stopped
    }
}

enum State {
    /// Needs a token and a listing.
    Init,
    Watching {
        token: String,
    },
}

/// A blocking iterator of [`WatchEvent`]s. Errors are yielded and then retried with bounded
/// exponential back-off; the iterator ends only when stopped.
pub struct Watcher {
    client: Client,
    cfg: WatchConfig,
    state: State,
    out: VecDeque<WatchEvent>,
    stop: StopHandle,
    /// Lower-case class → configured spelling.
    names: HashMap<String, String>,
    /// Lower-case class → refs yielded so far, for whole-class subscriptions.
    known: HashMap<String, HashSet<String>>,
    /// Token covering every event handed out so far.
    yielded_token: Option<String>,
    delay: Option<Duration>,
    backoff: Duration,
    stats: WatchStats,
}

impl Watcher {
    /// A watcher over `client` (logged in), following `cfg`. Does no IO until iterated.
    pub fn new(client: Client, cfg: WatchConfig) -> Self {
        let names = cfg
            .classes
            .iter()
            .map(|c| class_part(c).to_owned())
            .map(|c| (c.to_ascii_lowercase(), c))
            .collect();
        let state = match &cfg.resume_token {
            Some(t) => State::Watching { token: t.clone() },
            None => State::Init,
        };
        Watcher {
            yielded_token: cfg.resume_token.clone(),
            backoff: cfg.backoff_min,
            client,
            cfg,
            state,
            out: VecDeque::new(),
            stop: StopHandle::default(),
            names,
            known: HashMap::new(),
            delay: None,
            stats: WatchStats::default(),
        }
    }

    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Uses an existing stop handle (e.g. shared by several watchers).
    pub fn with_stop_handle(mut self, stop: StopHandle) -> Self {
        self.stop = stop;
        self
    }

    /// The token up to which every change has been yielded: save it and pass it to
    /// [`WatchConfig::resume_from`] to continue later. `None` before the first listing ends.
    pub fn token(&self) -> Option<&str> {
        self.yielded_token.as_deref()
    }

    pub fn stats(&self) -> WatchStats {
        self.stats
    }

    /// The client the watcher calls.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Does one call to the server and queues what it produced.
    fn step(&mut self) -> Result<(), WatchError> {
        match std::mem::replace(&mut self.state, State::Init) {
            State::Init => match self.list() {
                Ok(token) => {
                    self.stats.listings += 1;
                    self.succeeded();
                    self.state = State::Watching { token };
                    Ok(())
                }
                Err(e) => {
                    self.out.clear();
                    self.failed(WatchPhase::List, e)
                }
            },
            State::Watching { token } => {
                let names = &self.names;
                let res = calls::event_from(
                    &self.client,
                    &self.cfg.classes,
                    &token,
                    self.cfg.poll_timeout,
                )
                .and_then(|v| {
                    parse_batch(v, &|c| class_name(names, c), !self.cfg.wire_records)
                        .map_err(from_decode)
                });
                match res {
                    Ok(batch) => {
                        self.succeeded();
                        self.queue_batch(batch);
                        Ok(())
                    }
                    Err(e) => match e.api_code() {
                        Some("EVENTS_LOST") => self.resync(ResyncReason::EventsLost),
                        Some("EVENT_FROM_TOKEN_PARSE_FAILURE") => {
                            self.resync(ResyncReason::TokenRejected)
                        }
                        _ => {
                            self.state = State::Watching { token };
                            self.failed(WatchPhase::Watch, e)
                        }
                    },
                }
            }
        }
    }

    fn resync(&mut self, reason: ResyncReason) -> Result<(), WatchError> {
        self.stats.resyncs += 1;
        self.out.push_back(WatchEvent::Resync(reason));
        self.state = State::Init;
        Ok(())
    }

    fn queue_batch(&mut self, batch: Batch) {
        self.stats.batches += 1;
        let before = self.out.len();
        if batch.events.is_empty() {
            self.stats.empty_batches += 1;
        }
        self.stats.events += batch.events.len() as u64;
        for e in batch.events {
            self.track(&e);
            self.out.push_back(WatchEvent::Event(e));
        }
        self.reconcile(&batch.valid_ref_counts);
        if self.out.len() > before {
            self.out.push_back(WatchEvent::Bookmark {
                token: batch.token.clone(),
                valid_ref_counts: batch.valid_ref_counts,
            });
        } else if self.out.is_empty() {
            self.yielded_token = Some(batch.token.clone());
        }
        self.state = State::Watching { token: batch.token };
    }

    /// Keeps the per-class ref sets used by [`Self::reconcile`].
    fn track(&mut self, e: &ObjectEvent) {
        if let Some(set) = self.known.get_mut(&e.class.to_ascii_lowercase()) {
            match e.op {
                Op::Del => set.remove(&e.ref_),
                _ => set.insert(e.ref_.clone()),
            };
        }
    }

    /// xapi sends no `del` for an object created after our token and deleted before the next
    /// `event.from`, so an object that `get_all_records` returned in that window would stay
    /// cached forever. The batch's `valid_ref_counts` reveal it: when a class's count differs
    /// from ours, fetch that class again and queue the difference (as XO does for tasks).
    fn reconcile(&mut self, counts: &BTreeMap<String, i64>) {
        let stale: Vec<String> = self
            .known
            .iter()
            .filter(|(c, set)| counts.get(*c).is_some_and(|n| *n != set.len() as i64))
            .map(|(c, _)| c.clone())
            .collect();
        for lc in stale {
            let Some(class) = self.names.get(&lc).cloned() else {
                continue;
            };
            // On failure the counts still differ after the next batch, which retries.
            let Ok(records) = calls::get_all_records(&self.client, &class, !self.cfg.wire_records)
            else {
                continue;
            };
            self.stats.reconciles += 1;
            let fresh: HashSet<&str> = records.iter().map(|(r, _)| r.as_str()).collect();
            let known = self.known.entry(lc).or_default();
            for r in known.iter().filter(|r| !fresh.contains(r.as_str())) {
                let ev = ObjectEvent {
                    class: class.clone(),
                    op: Op::Del,
                    ref_: r.clone(),
                    snapshot: None,
                };
                self.out.push_back(WatchEvent::Event(ev));
            }
            known.retain(|r| fresh.contains(r.as_str()));
            for (r, record) in records {
                if known.insert(r.clone()) {
                    let ev = ObjectEvent {
                        class: class.clone(),
                        op: Op::Add,
                        ref_: r,
                        snapshot: Some(record),
                    };
                    self.out.push_back(WatchEvent::Event(ev));
                }
            }
        }
    }

    /// Token first, then the records (XO's order), queued as Init … InitDone.
    fn list(&mut self) -> Result<String, Error> {
        self.out.push_back(WatchEvent::Init);
        if self.cfg.classes.iter().any(|c| c == "*") {
            // No class list to walk: an event.from from the empty token lists everything.
            let names = &self.names;
            let v = calls::event_from(&self.client, &self.cfg.classes, "", 0.0)?;
            let batch = parse_batch(v, &|c| class_name(names, c), !self.cfg.wire_records)
                .map_err(from_decode)?;
            for e in batch.events.into_iter().filter(|e| e.op != Op::Del) {
                self.out
                    .push_back(WatchEvent::InitObject(ObjectEvent { op: Op::Add, ..e }));
            }
            self.out.push_back(WatchEvent::InitDone {
                token: batch.token.clone(),
            });
            return Ok(batch.token);
        }
        self.known.clear();
        let pool = calls::pool_ref(&self.client)?;
        let token = calls::inject(&self.client, "pool", &pool)?;
        for sub in self.cfg.classes.clone() {
            let class = class_part(&sub).to_owned();
            let records = match sub.split_once('/') {
                Some((_, r)) => calls::get_record(&self.client, &class, r, !self.cfg.wire_records)?
                    .map(|v| (r.to_owned(), v))
                    .into_iter()
                    .collect(),
                None => calls::get_all_records(&self.client, &class, !self.cfg.wire_records)?,
            };
            for (ref_, record) in records {
                let ev = ObjectEvent {
                    class: class.clone(),
                    op: Op::Add,
                    ref_,
                    snapshot: Some(record),
                };
                self.out.push_back(WatchEvent::InitObject(ev));
            }
        }
        // Refs per whole class, for `reconcile` (one-object subscriptions are not counted).
        for c in self.cfg.classes.iter().filter(|c| !c.contains('/')) {
            self.known.insert(c.to_ascii_lowercase(), HashSet::new());
        }
        for e in &self.out {
            if let WatchEvent::InitObject(e) = e {
                if let Some(set) = self.known.get_mut(&e.class.to_ascii_lowercase()) {
                    set.insert(e.ref_.clone());
                }
            }
        }
        self.out.push_back(WatchEvent::InitDone {
            token: token.clone(),
        });
        Ok(token)
    }

    fn succeeded(&mut self) {
        self.backoff = self.cfg.backoff_min;
    }

    /// Yields the error and retries after back-off. The client already logged in again and
    /// failed over where it could, so there is nothing else to try first.
    fn failed(&mut self, phase: WatchPhase, e: Error) -> Result<(), WatchError> {
        self.stats.errors += 1;
        let retry_in = self.backoff;
        self.backoff = (self.backoff * 2).min(self.cfg.backoff_max);
        self.delay = Some(retry_in);
        Err(WatchError {
            phase,
            source: Arc::new(e),
            retry_in,
        })
    }
}

fn from_decode(e: crate::rpc::DecodeError) -> Error {
    Error::Protocol {
        method: "event.from".into(),
        source: e,
    }
}

impl Iterator for Watcher {
    type Item = Result<WatchEvent, WatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.stop.is_stopped() {
                return None;
            }
            if let Some(ev) = self.out.pop_front() {
                match &ev {
                    WatchEvent::InitDone { token } | WatchEvent::Bookmark { token, .. } => {
                        self.yielded_token = Some(token.clone());
                    }
                    _ => {}
                }
                return Some(Ok(ev));
            }
            if let Some(d) = self.delay.take() {
                if self.stop.sleep(d) {
                    return None;
                }
            }
            if let Err(e) = self.step() {
                return Some(Err(e));
            }
        }
    }
}

/// `VM/OpaqueRef:…` → `VM`.
fn class_part(sub: &str) -> &str {
    sub.split_once('/').map_or(sub, |(c, _)| c)
}

/// The configured spelling, else the datamodel's (`vm_guest_metrics` → `VM_guest_metrics`),
/// else the server's.
fn class_name(names: &HashMap<String, String>, lower: &str) -> String {
    if let Some(n) = names.get(&lower.to_ascii_lowercase()) {
        return n.clone();
    }
    crate::model::meta::class(lower).map_or_else(|| lower.to_owned(), |c| c.name.to_owned())
}
