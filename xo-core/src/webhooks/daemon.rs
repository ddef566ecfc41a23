//! The `webhookd` service: watch a pool, route its changes per a spec, deliver durably, and
//! pick up where it left off after a restart.
//!
//! Events come from the events module's [`Watcher`] over the client: it owns the `event.from` loop, the listing, the resync on a rejected token
//! and the class filter. [`WatchAdapter`] turns its stream into changes against the last-known
//! snapshots.
//!
//! State directory: one SQLite database, `queue.db`, holding the delivery engine's queue (every
//! accepted message, the attempt log) and the daemon's event state (`daemon_meta`: the last
//! `event.from` token; `daemon_objects`: the last-known snapshot of every watched object).
//!
//! Exactly-once queueing: each batch's messages, the token after the batch and the snapshots it
//! changed are written in **one SQLite transaction** (fsynced before the watcher moves on). A
//! crash, even SIGKILL or power loss, leaves either all of them or none: after a restart the
//! daemon resumes from a token whose changes are all queued, and a batch whose commit did not
//! happen is read again from the older token and queued for the first time. So every change is
//! queued once, under one message id, and then delivered at least once under that id (a crash
//! during an HTTP attempt sends it again, same `webhook-id`; receivers de-duplicate on it).
//! Message ids are also derived from what identifies the change (endpoint, the token the batch
//! was read from, position in the batch, class, ref, operation) and the store skips an id it
//! already holds, so even two daemons on one state directory cannot queue a change twice.
//! (Why one database: the token used to live in `events.db`, and SQLite does not make a
//! transaction over attached WAL databases atomic as a whole, so the state moved into
//! `queue.db`. An `events.db` left by an older version is imported on the first start.)
//!
//! Recovery: on restart `event.from` resumes from the saved token, so every change made while
//! the daemon was down arrives (coalesced per object: xapi sends one event with the latest
//! record, so only the net change from the saved snapshot is seen, e.g. Halted → Running →
//! Halted while down is seen as nothing). If the token is rejected, the watcher lists every
//! object and the adapter diffs against the saved snapshots: adds, dels and one `mod` per
//! changed object are recovered; intermediate states and objects created and destroyed while
//! down are not.

use super::engine::{AttemptEvent, Engine, EngineError, EngineOptions, Submission};
use super::pool_events::{watched_classes, watcher_classes, ChangeTracker, Known, WatchAdapter};
use super::router::{ObjectChange, WebhookRouter};
use super::spec::Spec;
use super::store::{MessageId, SqliteStore, StoreError};
use crate::client::Client;
use crate::events::{WatchConfig, WatchEvent, Watcher};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Called with one line per delivery attempt and per daemon event (resync, errors).
pub type LogFn = Arc<dyn Fn(&str) + Send + Sync>;

/// Where a batch is when [`DaemonOptions::checkpoint`] is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// The batch's messages are built; nothing is written yet.
    BeforeCommit { messages: usize },
    /// Messages, token and snapshots are committed; the engine is not woken yet.
    AfterCommit { messages: usize },
}

pub struct DaemonOptions {
    pub spec: Spec,
    pub state_dir: PathBuf,
    /// Server-side wait of each `event.from`, seconds (also bounds how fast `stop` is seen).
    pub poll_timeout: f64,
    pub workers: usize,
    pub log: LogFn,
    /// How long in-flight deliveries may finish on stop.
    pub shutdown_grace: Duration,
    /// Called around each batch's commit (fault-injection tests kill the process there).
    pub checkpoint: Option<Arc<dyn Fn(Checkpoint) + Send + Sync>>,
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
            checkpoint: None,
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
}

/// What a run did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RunReport {
    /// Commits: one per non-empty `event.from` batch and per listing.
    pub batches: u64,
    pub changes: u64,
    /// Messages newly queued.
    pub queued: u64,
    /// Messages skipped because their id was already queued or delivered.
    pub duplicates: u64,
    pub resyncs: u64,
}

const STATE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS daemon_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS daemon_objects (ref TEXT PRIMARY KEY, class TEXT NOT NULL, snapshot TEXT NOT NULL);
";

fn read_token(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT v FROM daemon_meta WHERE k = 'token'", [], |r| {
        r.get(0)
    })
    .optional()
}

fn write_token(conn: &Connection, token: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO daemon_meta (k, v) VALUES ('token', ?1)",
        params![token],
    )?;
    Ok(())
}

/// The daemon's event state in `queue.db`, opened on its own connection: for tools and tests
/// (read the saved token, force a resync). The daemon itself writes through the store.
pub struct EventState {
    conn: Connection,
}

impl EventState {
    /// Opens (creating if needed) the state of the daemon whose state directory is `state_dir`.
    pub fn open(state_dir: &Path) -> Result<EventState, DaemonError> {
        let conn = Connection::open(state_dir.join("queue.db"))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
        conn.execute_batch(STATE_SCHEMA)?;
        Ok(EventState { conn })
    }

    /// The token saved with the last committed batch (`None` before the first baseline).
    pub fn token(&self) -> Result<Option<String>, DaemonError> {
        Ok(read_token(&self.conn)?)
    }

    /// Overwrites the saved token (tests use it to force a resync).
    pub fn set_token(&self, token: &str) -> Result<(), DaemonError> {
        Ok(write_token(&self.conn, token)?)
    }
}

fn load(conn: &Connection) -> rusqlite::Result<(Option<String>, HashMap<String, Known>)> {
    let mut st = conn.prepare("SELECT ref, class, snapshot FROM daemon_objects")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut map = HashMap::new();
    for row in rows {
        let (r, class, snap) = row?;
        // A snapshot we cannot read is dropped: the object then shows up as new (an `add`).
        if let Ok(snapshot) = serde_json::from_str(&snap) {
            map.insert(r, Known { class, snapshot });
        }
    }
    Ok((read_token(conn)?, map))
}

/// Writes the token and the tracker's current state of `refs` (all objects when `None`).
fn save(
    tx: &rusqlite::Transaction<'_>,
    token: &str,
    tracker: &ChangeTracker,
    refs: Option<&[String]>,
) -> rusqlite::Result<()> {
    let mut put = tx.prepare_cached(
        "INSERT OR REPLACE INTO daemon_objects (ref, class, snapshot) VALUES (?1, ?2, ?3)",
    )?;
    let mut del = tx.prepare_cached("DELETE FROM daemon_objects WHERE ref = ?1")?;
    let mut one = |r: &str| -> rusqlite::Result<()> {
        match tracker.get(r) {
            Some(k) => put.execute(params![r, k.class, k.snapshot.to_string()])?,
            None => del.execute(params![r])?,
        };
        Ok(())
    };
    match refs {
        Some(refs) => refs.iter().try_for_each(|r| one(r))?,
        None => {
            tx.execute("DELETE FROM daemon_objects", [])?;
            tracker.objects().keys().try_for_each(|r| one(r))?;
        }
    }
    write_token(tx, token)
}

/// Creates the state tables and imports an `events.db` left by an older version (once: it is
/// renamed `events.db.imported` afterwards).
fn init_state(store: &SqliteStore, dir: &Path) -> Result<(), DaemonError> {
    store.with_conn(|c| c.execute_batch(STATE_SCHEMA))?;
    let old = dir.join("events.db");
    if !old.exists() || store.with_conn(read_token)?.is_some() {
        return Ok(());
    }
    let path = old
        .to_str()
        .ok_or_else(|| DaemonError::State(format!("{}: not UTF-8", old.display())))?
        .to_owned();
    store.with_conn(|c| {
        c.execute("ATTACH DATABASE ?1 AS old", params![path])?;
        let r = c.execute_batch(
            "BEGIN;
             INSERT OR REPLACE INTO daemon_meta SELECT k, v FROM old.meta;
             INSERT OR REPLACE INTO daemon_objects SELECT ref, class, snapshot FROM old.objects;
             COMMIT;",
        );
        if r.is_err() {
            let _ = c.execute_batch("ROLLBACK");
        }
        c.execute_batch("DETACH DATABASE old")?;
        r
    })?;
    std::fs::rename(&old, dir.join("events.db.imported"))
        .map_err(|e| DaemonError::State(format!("{}: {e}", old.display())))?;
    Ok(())
}

/// The batch's messages, each with an id derived from what identifies it, so that the same
/// batch read again from the same token mints the same ids.
fn submissions<S: super::router::Sink>(
    router: &WebhookRouter<S>,
    from: &str,
    changes: &[ObjectChange],
) -> Vec<(Submission, MessageId)> {
    let now = SystemTime::now();
    let mut out = Vec::new();
    for c in changes {
        for r in router.route_change(c, now) {
            let n = out.len().to_string();
            let id = MessageId::derived(&[
                "webhookd",
                &r.endpoint,
                from,
                &n,
                &c.class,
                &c.ref_,
                c.operation.as_str(),
            ]);
            out.push((Submission::json(r.endpoint, r.body), id));
        }
    }
    out
}

/// Runs until `stop` is set: watches the pool through `client`, queues routed changes and
/// saves the token in the same transaction. Returns after a graceful engine shutdown.
pub fn run(
    client: Client,
    opts: DaemonOptions,
    stop: Arc<AtomicBool>,
) -> Result<RunReport, DaemonError> {
    std::fs::create_dir_all(&opts.state_dir)
        .map_err(|e| DaemonError::State(format!("{}: {e}", opts.state_dir.display())))?;
    let log = opts.log.clone();
    let store = Arc::new(SqliteStore::open(opts.state_dir.join("queue.db"))?);
    init_state(&store, &opts.state_dir)?;
    let observer_log = log.clone();
    let engine = Arc::new(Engine::start(
        store.clone(),
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
    let ctx = Ctx {
        opts: &opts,
        router: &router,
        engine: &engine,
        store: &store,
    };
    let result = watch(client, &ctx, &stop);
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

/// One batch being read: the changes so far and the refs they touched.
#[derive(Default)]
struct Pending {
    changes: Vec<ObjectChange>,
    refs: Vec<String>,
    /// A listing: save every snapshot, not only `refs`.
    full: bool,
}

/// What committing a batch needs.
struct Ctx<'a> {
    opts: &'a DaemonOptions,
    router: &'a WebhookRouter<Arc<Engine>>,
    engine: &'a Engine,
    store: &'a SqliteStore,
}

fn watch(client: Client, ctx: &Ctx<'_>, stop: &AtomicBool) -> Result<RunReport, DaemonError> {
    let (opts, store) = (ctx.opts, ctx.store);
    let log = &opts.log;
    let mut report = RunReport::default();
    if watched_classes(&opts.spec).is_empty() {
        // No event subscriptions: only deliver what is queued.
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        return Ok(report);
    }
    let classes = watcher_classes(&opts.spec);
    let (saved, known) = store.with_conn(load)?;
    // Payloads carry records as xapi sent them, fields newer than this datamodel included.
    let mut cfg = WatchConfig::new(classes.clone())
        .keep_wire_records()
        .poll_timeout(opts.poll_timeout)
        .backoff(Duration::from_millis(100), Duration::from_secs(30));
    if let Some(t) = &saved {
        cfg = cfg.resume_from(t.clone());
    }
    let first_start = saved.is_none();
    // The token the current batch is read from (the last one committed).
    let mut from = saved.unwrap_or_default();
    let mut adapter = WatchAdapter::new(ChangeTracker::from_known(known), classes, first_start);
    let mut watcher = Watcher::new(client, cfg);
    let handle = watcher.stop_handle();
    std::thread::scope(|s| {
        // The watcher has its own stop handle (it also cuts its back-off sleeps short).
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) && !handle.is_stopped() {
                std::thread::sleep(Duration::from_millis(50));
            }
            handle.stop();
        });
        let mut pending = Pending::default();
        let result = (|| -> Result<(), DaemonError> {
            for item in watcher.by_ref() {
                let ev = match item {
                    Ok(ev) => ev,
                    Err(e) => {
                        log(&e.to_string());
                        continue;
                    }
                };
                match &ev {
                    WatchEvent::Resync(why) => {
                        log(&format!(
                            "events lost or token rejected ({why:?}): resynchronising"
                        ));
                        report.resyncs += 1;
                    }
                    WatchEvent::InitDone { .. } => pending.full = true,
                    WatchEvent::Event(d) => pending.refs.push(d.ref_.clone()),
                    _ => {}
                }
                let (changes, token) = adapter.on_watch_event(&ev);
                pending.changes.extend(changes);
                let Some(next) = token else { continue };
                let batch = std::mem::take(&mut pending);
                ctx.commit(&adapter.tracker, &from, &next, batch, &mut report)?;
                if first_start && report.batches == 1 {
                    log(&format!("baseline: {} objects", adapter.tracker.len()));
                }
                from = next;
            }
            Ok(())
        })();
        handle.stop();
        result
    })?;
    Ok(report)
}

impl Ctx<'_> {
    /// Queues one batch's messages with the token after it and its snapshots, in one
    /// transaction.
    fn commit(
        &self,
        tracker: &ChangeTracker,
        from: &str,
        next: &str,
        batch: Pending,
        report: &mut RunReport,
    ) -> Result<(), DaemonError> {
        let msgs = self
            .engine
            .prepare(submissions(self.router, from, &batch.changes))?;
        let n = msgs.len();
        let hook = |c| {
            if let Some(h) = &self.opts.checkpoint {
                h(c)
            }
        };
        hook(Checkpoint::BeforeCommit { messages: n });
        let refs = (!batch.full).then_some(batch.refs.as_slice());
        let (new, ()) = self
            .store
            .enqueue_with(&msgs, |tx| save(tx, next, tracker, refs))?;
        hook(Checkpoint::AfterCommit { messages: n });
        if new > 0 {
            self.engine.wake();
        }
        if new < n {
            (self.opts.log)(&format!("{} message(s) already queued, skipped", n - new));
        }
        report.batches += 1;
        report.changes += batch.changes.len() as u64;
        report.queued += new as u64;
        report.duplicates += (n - new) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "xo-daemon-{name}-{}",
            super::super::secret::random_id("")
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn known(pairs: &[(&str, &str)]) -> ChangeTracker {
        let m = pairs
            .iter()
            .map(|(r, state)| {
                let snapshot = serde_json::json!({ "power_state": state });
                let class = "VM".to_owned();
                (r.to_string(), Known { class, snapshot })
            })
            .collect();
        ChangeTracker::from_known(m)
    }

    #[test]
    fn save_writes_the_token_and_the_touched_snapshots() {
        let dir = tmp("save");
        let store = SqliteStore::open(dir.join("queue.db")).unwrap();
        init_state(&store, &dir).unwrap();
        let all = known(&[("r1", "Halted"), ("r2", "Halted")]);
        store
            .enqueue_with(&[], |tx| save(tx, "t1", &all, None))
            .unwrap();
        // r1 changed, r2 went away: only the refs of the batch are rewritten.
        let later = known(&[("r1", "Running")]);
        let refs = ["r1".to_owned(), "r2".to_owned()];
        store
            .enqueue_with(&[], |tx| save(tx, "t2", &later, Some(&refs)))
            .unwrap();
        let (tok, objs) = store.with_conn(load).unwrap();
        assert_eq!(tok.as_deref(), Some("t2"));
        assert_eq!(objs.len(), 1);
        assert_eq!(objs["r1"].snapshot["power_state"], "Running");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_events_db_from_an_older_version_is_imported_once() {
        let dir = tmp("import");
        let old = Connection::open(dir.join("events.db")).unwrap();
        old.execute_batch(
            "CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
             CREATE TABLE objects (ref TEXT PRIMARY KEY, class TEXT NOT NULL, snapshot TEXT NOT NULL);
             INSERT INTO meta VALUES ('token', 'tok-7');
             INSERT INTO objects VALUES ('r1', 'VM', '{\"power_state\":\"Halted\"}');",
        )
        .unwrap();
        drop(old);
        let store = SqliteStore::open(dir.join("queue.db")).unwrap();
        init_state(&store, &dir).unwrap();
        let (tok, objs) = store.with_conn(load).unwrap();
        assert_eq!(tok.as_deref(), Some("tok-7"));
        assert_eq!(objs["r1"].snapshot["power_state"], "Halted");
        assert!(!dir.join("events.db").exists());
        assert!(dir.join("events.db.imported").exists());
        // Later starts keep the state and import nothing.
        store
            .enqueue_with(&[], |tx| write_token(tx, "tok-8"))
            .unwrap();
        init_state(&store, &dir).unwrap();
        let st = EventState::open(&dir).unwrap();
        assert_eq!(st.token().unwrap().as_deref(), Some("tok-8"));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
