//! The `webhookd` service: watch a pool, route its changes per a spec, deliver durably, and
//! pick up where it left off after a restart.
//!
//! State directory:
//! - `queue.db`: the delivery engine's SQLite queue (every accepted message, the attempt log);
//! - `events.db`: the last `event.from` token and the last-known snapshot of every watched
//!   object, committed in one transaction after each batch's messages are durably queued.
//!
//! Recovery: on restart `event.from` resumes from the saved token, so every change made while
//! the daemon was down arrives (coalesced per object: xapi sends one event with the latest
//! record, so only the net change from the saved snapshot is seen, e.g. Halted → Running →
//! Halted while down is seen as nothing). If the token is rejected, the daemon lists every
//! object and diffs against the saved snapshots: adds, dels and one `mod` per changed object
//! are recovered; intermediate states and objects created and destroyed while down are not.
//! A crash between queueing a batch and saving its token replays that batch on restart: the
//! same changes are queued again under new message ids (at least once).

use super::client_hooks::CallTarget;
use super::engine::{AttemptEvent, Engine, EngineError, EngineOptions, Submission};
use super::pool_events::{watched_classes, ChangeTracker, EventFeed, FeedError, Known};
use super::router::{ObjectChange, WebhookRouter};
use super::spec::Spec;
use super::store::{SqliteStore, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Called with one line per delivery attempt and per daemon event (resync, errors).
pub type LogFn = Arc<dyn Fn(&str) + Send + Sync>;

pub struct DaemonOptions {
    pub spec: Spec,
    pub state_dir: PathBuf,
    /// Server-side wait of each `event.from`, seconds (also bounds how fast `stop` is seen).
    pub poll_timeout: f64,
    pub workers: usize,
    pub log: LogFn,
    /// How long in-flight deliveries may finish on stop.
    pub shutdown_grace: Duration,
}

impl DaemonOptions {
    pub fn new(spec: Spec, state_dir: impl Into<PathBuf>) -> Self {
        DaemonOptions {
            spec,
            state_dir: state_dir.into(),
            poll_timeout: 1.0,
            workers: 4,
            log: Arc::new(|l| println!("{l}")),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("state directory: {0}")]
    State(String),
    #[error("event state database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("queue: {0}")]
    Store(#[from] StoreError),
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Feed(#[from] FeedError),
}

/// What a run did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RunReport {
    pub batches: u64,
    pub changes: u64,
    pub queued: u64,
    pub resyncs: u64,
}

/// `events.db`: token and snapshots, written together.
pub struct EventState {
    conn: Connection,
}

impl EventState {
    pub fn open(path: &Path) -> Result<EventState, DaemonError> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS objects (ref TEXT PRIMARY KEY, class TEXT NOT NULL, snapshot TEXT NOT NULL);",
        )?;
        Ok(EventState { conn })
    }

    pub fn token(&self) -> Result<Option<String>, DaemonError> {
        Ok(self
            .conn
            .query_row("SELECT v FROM meta WHERE k = 'token'", [], |r| r.get(0))
            .optional()?)
    }

    /// Overwrites the saved token (tests use it to force a resync).
    pub fn set_token(&self, token: &str) -> Result<(), DaemonError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (k, v) VALUES ('token', ?1)",
            params![token],
        )?;
        Ok(())
    }

    pub fn load(&self) -> Result<ChangeTracker, DaemonError> {
        let mut st = self
            .conn
            .prepare("SELECT ref, class, snapshot FROM objects")?;
        let mut map = HashMap::new();
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (r, class, snap) = row?;
            let snapshot = serde_json::from_str(&snap)
                .map_err(|e| DaemonError::State(format!("snapshot of {r}: {e}")))?;
            map.insert(r, Known { class, snapshot });
        }
        Ok(ChangeTracker::from_known(map))
    }

    /// Saves the token and the tracker's current state of `refs` (all objects when `None`).
    pub fn commit(
        &mut self,
        token: &str,
        tracker: &ChangeTracker,
        refs: Option<&[String]>,
    ) -> Result<(), DaemonError> {
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO objects (ref, class, snapshot) VALUES (?1, ?2, ?3)",
            )?;
            let mut del = tx.prepare_cached("DELETE FROM objects WHERE ref = ?1")?;
            let mut save = |r: &str| -> Result<(), rusqlite::Error> {
                match tracker.get(r) {
                    Some(k) => put
                        .execute(params![r, k.class, k.snapshot.to_string()])
                        .map(|_| ()),
                    None => del.execute(params![r]).map(|_| ()),
                }
            };
            match refs {
                Some(refs) => refs.iter().try_for_each(|r| save(r))?,
                None => {
                    tx.execute("DELETE FROM objects", [])?;
                    tracker.objects().keys().try_for_each(|r| save(r))?;
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO meta (k, v) VALUES ('token', ?1)",
                params![token],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn submissions<S: super::router::Sink>(
    router: &WebhookRouter<S>,
    changes: &[ObjectChange],
) -> Vec<Submission> {
    let now = SystemTime::now();
    changes
        .iter()
        .flat_map(|c| router.route_change(c, now))
        .map(|r| Submission::json(r.endpoint, r.body))
        .collect()
}

/// Runs until `stop` is set: watches the pool through `target`, queues routed changes, saves
/// the token after each batch is queued. Returns after a graceful engine shutdown.
pub fn run<T: CallTarget>(
    target: T,
    opts: DaemonOptions,
    stop: Arc<AtomicBool>,
) -> Result<RunReport, DaemonError> {
    std::fs::create_dir_all(&opts.state_dir)
        .map_err(|e| DaemonError::State(format!("{}: {e}", opts.state_dir.display())))?;
    let log = opts.log.clone();
    let store = SqliteStore::open(opts.state_dir.join("queue.db"))?;
    let observer_log = log.clone();
    let engine = Arc::new(Engine::start(
        Arc::new(store),
        opts.spec.clone(),
        EngineOptions {
            workers: opts.workers,
            observer: Some(Arc::new(move |a: &AttemptEvent| {
                observer_log(&a.to_string())
            })),
            ..EngineOptions::default()
        },
    )?);
    let router = WebhookRouter::new(opts.spec.clone(), engine.clone());
    let result = watch(&target, &opts, &router, &engine, &stop);
    drop(router);
    if let Ok(engine) = Arc::try_unwrap(engine) {
        let r = engine.shutdown(opts.shutdown_grace);
        if !r.clean {
            log(&format!(
                "shutdown: {} deliveries left in flight (sent again on next start)",
                r.abandoned
            ));
        }
    }
    result
}

fn watch<T: CallTarget>(
    target: &T,
    opts: &DaemonOptions,
    router: &WebhookRouter<Arc<Engine>>,
    engine: &Engine,
    stop: &AtomicBool,
) -> Result<RunReport, DaemonError> {
    let log = &opts.log;
    let mut report = RunReport::default();
    let classes = watched_classes(&opts.spec);
    if classes.is_empty() {
        // No event subscriptions: only deliver what is queued.
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        return Ok(report);
    }
    let mut state = EventState::open(&opts.state_dir.join("events.db"))?;
    let mut tracker = state.load()?;
    let mut feed = EventFeed::new(target, classes.clone());
    feed.poll_timeout = opts.poll_timeout;
    let mut token = match state.token()? {
        Some(t) => t,
        None => {
            // First start: today's objects are the baseline, not news.
            let b = feed.list()?;
            tracker.baseline(&b.events);
            state.commit(&b.token, &tracker, None)?;
            log(&format!("baseline: {} objects", tracker.len()));
            b.token
        }
    };
    let mut backoff = Duration::from_millis(100);
    while !stop.load(Ordering::SeqCst) {
        let (changes, refs, next) = match feed.next(&token) {
            Ok(batch) => {
                let refs: Vec<String> = batch.events.iter().map(|e| e.ref_.clone()).collect();
                let changes: Vec<ObjectChange> = batch
                    .events
                    .iter()
                    .filter_map(|e| tracker.apply(e))
                    .collect();
                (changes, Some(refs), batch.token)
            }
            Err(FeedError::TokenRejected(why)) => {
                log(&format!("event token rejected ({why}): resynchronising"));
                let b = feed.list()?;
                report.resyncs += 1;
                (tracker.resync(&b.events, &classes), None, b.token)
            }
            Err(e) => {
                log(&format!("{e}; retrying in {} ms", backoff.as_millis()));
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        let subs = submissions(router, &changes);
        report.batches += 1;
        report.changes += changes.len() as u64;
        report.queued += subs.len() as u64;
        if !subs.is_empty() {
            // Durable (fsynced) before the token moves on.
            engine.submit_many(subs)?;
        }
        state.commit(&next, &tracker, refs.as_deref())?;
        token = next;
    }
    Ok(report)
}
