//! SQLite backend: WAL journal, one connection, group commit.
//!
//! Durability choice: enqueue transactions run with `synchronous=FULL`, so the WAL is fsynced
//! before `enqueue` returns (a message survives power loss once accepted). Everything else
//! (claims, attempt results, the log) runs with `synchronous=NORMAL`: a process crash loses
//! nothing, and losing a "delivered" mark to power loss only means a re-delivery with the same
//! `webhook-id`, which at-least-once allows.
//!
//! Group commit: concurrent `enqueue` and `finish_attempt` callers queue their writes; whoever
//! gets the connection writes every queued one in one transaction (one fsync when it accepts
//! messages), and the others find theirs done when they get the connection.

use super::*;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// How hard enqueue commits hit the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync per (group) commit: survives power loss.
    #[default]
    Full,
    /// No fsync on commit: survives a process crash, not power loss.
    Normal,
}

type Slot = Arc<Mutex<Option<Result<(), String>>>>;

/// A write waiting for the next group commit.
enum Op {
    Enqueue(Vec<NewMessage>),
    Finish(AttemptRecord, AttemptOutcome, i64),
}

struct Batch {
    op: Op,
    slot: Slot,
}

struct Conn {
    conn: Connection,
    /// The `synchronous` level currently set, to switch only when needed.
    full: bool,
}

pub struct SqliteStore {
    conn: Mutex<Conn>,
    queue: Mutex<Vec<Batch>>,
    durability: Durability,
    /// Set to stop the background checkpointer (file databases only).
    checkpointer: Option<Arc<std::sync::atomic::AtomicBool>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  endpoint TEXT NOT NULL,
  body BLOB NOT NULL,
  headers TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  next_attempt_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL,
  updated_ms INTEGER NOT NULL,
  last_error TEXT
);
CREATE INDEX IF NOT EXISTS messages_endpoint ON messages(endpoint, state, seq);
CREATE INDEX IF NOT EXISTS messages_state ON messages(state, updated_ms);
CREATE INDEX IF NOT EXISTS messages_due ON messages(endpoint, state, next_attempt_ms);
CREATE TABLE IF NOT EXISTS attempts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  msg_id TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  status INTEGER,
  latency_ms INTEGER NOT NULL,
  response TEXT,
  error TEXT
);
CREATE INDEX IF NOT EXISTS attempts_msg ON attempts(msg_id, id);
CREATE INDEX IF NOT EXISTS attempts_endpoint ON attempts(endpoint, id);
CREATE INDEX IF NOT EXISTS attempts_at ON attempts(at_ms);
CREATE TABLE IF NOT EXISTS endpoint_state (
  endpoint TEXT PRIMARY KEY,
  disabled_reason TEXT NOT NULL,
  updated_ms INTEGER NOT NULL
);
PRAGMA user_version = 1;
";

const INFO_COLS: &str =
    "seq, id, endpoint, state, attempts, created_ms, next_attempt_ms, updated_ms, last_error, length(body)";

fn info_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageInfo> {
    let state: String = r.get(3)?;
    Ok(MessageInfo {
        seq: r.get(0)?,
        id: MessageId(r.get(1)?),
        endpoint: r.get(2)?,
        state: State::parse(&state).unwrap_or(State::Pending),
        attempts: r.get(4)?,
        created_ms: r.get(5)?,
        next_attempt_ms: r.get(6)?,
        updated_ms: r.get(7)?,
        last_error: r.get(8)?,
        body_len: r.get::<_, i64>(9)? as usize,
    })
}

fn headers_to_json(h: &[(String, String)]) -> String {
    serde_json::to_string(h).unwrap_or_else(|_| "[]".into())
}

fn headers_from_json(s: &str) -> Vec<(String, String)> {
    serde_json::from_str(s).unwrap_or_default()
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, in WAL mode.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, Durability::Full)
    }

    pub fn open_with(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        let conn = Connection::open(path)?;
        let mut store = Self::init(conn, durability)?;
        // Checkpoints copy the WAL into the database and fsync it. Left automatic they run
        // inside a commit, under our connection lock, and stall every writer; a second
        // connection does them in the background instead (PASSIVE: never blocks writers).
        let ckpt = Connection::open(path)?;
        ckpt.busy_timeout(Duration::from_secs(1))?;
        lock(&store.conn)
            .conn
            .execute_batch("PRAGMA wal_autocheckpoint=0")?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("webhook-checkpoint".into())
            .spawn(move || checkpoint_loop(ckpt, flag))
            .map_err(|e| StoreError::Other(format!("spawning the checkpointer: {e}")))?;
        store.checkpointer = Some(stop);
        Ok(store)
    }

    /// A throw-away in-memory store (tests).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        Self::init(Connection::open_in_memory()?, Durability::Normal)
    }

    fn init(conn: Connection, durability: Durability) -> Result<SqliteStore, StoreError> {
        conn.busy_timeout(Duration::from_secs(10))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if mode != "wal" && mode != "memory" {
            return Err(StoreError::Other(format!(
                "cannot use WAL journal (got {mode})"
            )));
        }
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;")?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStore {
            conn: Mutex::new(Conn { conn, full: false }),
            queue: Mutex::new(Vec::new()),
            durability,
            checkpointer: None,
        })
    }

    fn set_sync(c: &mut Conn, full: bool) -> rusqlite::Result<()> {
        if c.full != full {
            c.conn.execute_batch(if full {
                "PRAGMA synchronous=FULL"
            } else {
                "PRAGMA synchronous=NORMAL"
            })?;
            c.full = full;
        }
        Ok(())
    }

    /// The normal-durability connection for everything but enqueue.
    fn conn(&self) -> Result<MutexGuard<'_, Conn>, StoreError> {
        let mut c = lock(&self.conn);
        Self::set_sync(&mut c, false)?;
        Ok(c)
    }

    /// Writes ops in one transaction; FULL sync when it accepts new messages.
    fn write_ops(&self, c: &mut Conn, ops: &[&Op]) -> rusqlite::Result<()> {
        let accepts = ops.iter().any(|o| matches!(o, Op::Enqueue(_)));
        Self::set_sync(c, accepts && self.durability == Durability::Full)?;
        let tx = c.conn.transaction()?;
        for op in ops {
            match op {
                Op::Enqueue(msgs) => {
                    insert_messages(&tx, msgs, Existing::Fail)?;
                }
                Op::Finish(a, outcome, now_ms) => write_finish(&tx, a, outcome, *now_ms)?,
            }
        }
        tx.commit()
    }

    /// Writes `msgs` and whatever `also` writes in one transaction: all or none, fsynced like
    /// [`Store::enqueue`]. A producer commits its own progress with the messages it produced
    /// (the daemon: its `event.from` token and snapshots), so a crash can neither lose them nor
    /// queue them twice. A message whose id is already stored (queued, delivered or dead) is
    /// skipped, not replaced; returns how many were new, and what `also` returned.
    pub fn enqueue_with<R>(
        &self,
        msgs: &[NewMessage],
        also: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<R>,
    ) -> Result<(usize, R), StoreError> {
        let mut c = lock(&self.conn);
        Self::set_sync(&mut c, self.durability == Durability::Full)?;
        // Dropped without commit on any error: rolled back.
        let tx = c.conn.transaction()?;
        let new = insert_messages(&tx, msgs, Existing::Skip)?;
        let r = also(&tx)?;
        tx.commit()?;
        Ok((new, r))
    }

    /// Runs `f` on the store's connection (reads, schema of data kept with the queue).
    pub fn with_conn<R>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R, StoreError> {
        let c = self.conn()?;
        Ok(f(&c.conn)?)
    }

    /// Group commit: queue the op; whoever holds the connection writes every queued op in one
    /// transaction. If that transaction fails, each op is retried alone so one bad op does not
    /// fail the others.
    fn commit_op(&self, op: Op) -> Result<(), StoreError> {
        let slot: Slot = Arc::new(Mutex::new(None));
        lock(&self.queue).push(Batch {
            op,
            slot: slot.clone(),
        });
        let mut c = lock(&self.conn);
        // A previous holder of the connection may have committed our op already.
        if let Some(r) = lock(&slot).take() {
            return r.map_err(StoreError::Other);
        }
        let batches = std::mem::take(&mut *lock(&self.queue));
        let all: Vec<&Op> = batches.iter().map(|b| &b.op).collect();
        if self.write_ops(&mut c, &all).is_ok() {
            for b in &batches {
                *lock(&b.slot) = Some(Ok(()));
            }
        } else {
            let _ = c.conn.execute_batch("ROLLBACK");
            for b in &batches {
                let r = self.write_ops(&mut c, &[&b.op]).map_err(|e| e.to_string());
                if r.is_err() {
                    let _ = c.conn.execute_batch("ROLLBACK");
                }
                *lock(&b.slot) = Some(r);
            }
        }
        drop(c);
        let mine = lock(&slot).take();
        mine.unwrap_or(Ok(())).map_err(StoreError::Other)
    }
}

fn checkpoint_loop(conn: Connection, stop: Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering;
    let mut last = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if last.elapsed() >= Duration::from_millis(500) {
            last = std::time::Instant::now();
            // Errors (busy) just mean "try again next round".
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        }
    }
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Some(stop) = &self.checkpointer {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// What inserting a message whose id is already stored does.
#[derive(Clone, Copy)]
enum Existing {
    /// Fails the transaction: ids are fresh, a clash is a bug.
    Fail,
    /// Keeps the stored one: ids derived from the change, a replay after a crash.
    Skip,
}

/// Inserts `msgs` as pending; returns how many rows were written.
fn insert_messages(
    tx: &rusqlite::Transaction<'_>,
    msgs: &[NewMessage],
    existing: Existing,
) -> rusqlite::Result<usize> {
    let sql = match existing {
        Existing::Fail => "INSERT INTO messages",
        Existing::Skip => "INSERT OR IGNORE INTO messages",
    };
    let mut st = tx.prepare_cached(&format!(
        "{sql} (id, endpoint, body, headers, created_ms, next_attempt_ms, attempts, state, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 'pending', ?5)"
    ))?;
    let mut written = 0;
    for m in msgs {
        written += st.execute(params![
            m.id.0,
            m.endpoint,
            m.body,
            headers_to_json(&m.headers),
            m.created_ms,
            m.next_attempt_ms
        ])?;
    }
    Ok(written)
}

fn write_finish(
    tx: &rusqlite::Transaction<'_>,
    a: &AttemptRecord,
    outcome: &AttemptOutcome,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO attempts (msg_id, endpoint, at_ms, attempt, status, latency_ms, response, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        a.msg_id.0,
        a.endpoint,
        a.at_ms,
        a.attempt,
        a.status,
        a.latency_ms as i64,
        a.response,
        a.error
    ])?;
    let last_error = a
        .error
        .clone()
        .or_else(|| a.status.map(|s| format!("HTTP {s}")));
    match outcome {
        AttemptOutcome::Delivered => tx
            .prepare_cached(
                "UPDATE messages SET state = 'delivered', attempts = ?2, updated_ms = ?3,
                 last_error = NULL WHERE id = ?1",
            )?
            .execute(params![a.msg_id.0, a.attempt, now_ms])?,
        AttemptOutcome::Retry { next_attempt_ms } => tx
            .prepare_cached(
                "UPDATE messages SET state = 'pending', attempts = ?2, updated_ms = ?3,
                 next_attempt_ms = ?4, last_error = ?5 WHERE id = ?1",
            )?
            .execute(params![
                a.msg_id.0,
                a.attempt,
                now_ms,
                next_attempt_ms,
                last_error
            ])?,
        AttemptOutcome::Dead { reason } => tx
            .prepare_cached(
                "UPDATE messages SET state = 'dead', attempts = ?2, updated_ms = ?3,
                 last_error = ?4 WHERE id = ?1",
            )?
            .execute(params![a.msg_id.0, a.attempt, now_ms, reason])?,
    };
    Ok(())
}

impl Store for SqliteStore {
    fn enqueue(&self, msgs: Vec<NewMessage>) -> Result<(), StoreError> {
        if msgs.is_empty() {
            return Ok(());
        }
        self.commit_op(Op::Enqueue(msgs))
    }

    fn claim_due(
        &self,
        now_ms: i64,
        limit: usize,
        slots: &[ClaimSlot],
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut c = self.conn()?;
        let tx = c.conn.transaction()?;
        let mut out = Vec::new();
        {
            let mut head = tx.prepare_cached(
                "SELECT seq, state, next_attempt_ms FROM messages
                 WHERE endpoint = ?1 AND state IN ('pending', 'inflight') ORDER BY seq LIMIT 1",
            )?;
            let mut due = tx.prepare_cached(
                "SELECT seq FROM messages INDEXED BY messages_endpoint
                 WHERE endpoint = ?1 AND state = 'pending' AND next_attempt_ms <= ?2
                 ORDER BY seq LIMIT ?3",
            )?;
            let mut take = tx.prepare_cached(
                "UPDATE messages SET state = 'inflight', updated_ms = ?2 WHERE seq = ?1
                 RETURNING id, endpoint, body, headers, attempts, created_ms",
            )?;
            for s in slots {
                if out.len() >= limit {
                    break;
                }
                let room = s.capacity.min(limit - out.len());
                if room == 0 {
                    continue;
                }
                let seqs: Vec<i64> = if s.fifo {
                    let h: Option<(i64, String, i64)> = head
                        .query_row(params![s.endpoint], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })
                        .optional()?;
                    match h {
                        Some((seq, st, next)) if st == "pending" && next <= now_ms => vec![seq],
                        _ => vec![],
                    }
                } else {
                    due.query_map(params![s.endpoint, now_ms, room as i64], |r| r.get(0))?
                        .collect::<Result<_, _>>()?
                };
                for seq in seqs {
                    let claimed = take.query_row(params![seq, now_ms], |r| {
                        let headers: String = r.get(3)?;
                        Ok(Claimed {
                            seq,
                            id: MessageId(r.get(0)?),
                            endpoint: r.get(1)?,
                            body: r.get(2)?,
                            headers: headers_from_json(&headers),
                            attempts: r.get(4)?,
                            created_ms: r.get(5)?,
                        })
                    })?;
                    out.push(claimed);
                }
            }
        }
        tx.commit()?;
        Ok(out)
    }

    fn next_due_ms(&self, slots: &[ClaimSlot]) -> Result<Option<i64>, StoreError> {
        let c = self.conn()?;
        let mut head = c.conn.prepare_cached(
            "SELECT state, next_attempt_ms FROM messages
             WHERE endpoint = ?1 AND state IN ('pending', 'inflight') ORDER BY seq LIMIT 1",
        )?;
        let mut min = c.conn.prepare_cached(
            "SELECT MIN(next_attempt_ms) FROM messages WHERE endpoint = ?1 AND state = 'pending'",
        )?;
        let mut best: Option<i64> = None;
        for s in slots.iter().filter(|s| s.capacity > 0) {
            let t: Option<i64> = if s.fifo {
                head.query_row(params![s.endpoint], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()?
                .and_then(|(st, t)| (st == "pending").then_some(t))
            } else {
                min.query_row(params![s.endpoint], |r| r.get(0))?
            };
            if let Some(t) = t {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        }
        Ok(best)
    }

    fn finish_attempt(
        &self,
        a: &AttemptRecord,
        outcome: &AttemptOutcome,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.commit_op(Op::Finish(a.clone(), outcome.clone(), now_ms))
    }

    fn release(&self, ids: &[MessageId], now_ms: i64) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        let tx = c.conn.transaction()?;
        for id in ids {
            tx.execute(
                "UPDATE messages SET state = 'pending', updated_ms = ?2
                 WHERE id = ?1 AND state = 'inflight'",
                params![id.0, now_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn recover_in_flight(&self, now_ms: i64) -> Result<u64, StoreError> {
        let c = self.conn()?;
        let n = c.conn.execute(
            "UPDATE messages SET state = 'pending', updated_ms = ?1 WHERE state = 'inflight'",
            params![now_ms],
        )?;
        Ok(n as u64)
    }

    fn get(&self, id: &MessageId) -> Result<Option<MessageInfo>, StoreError> {
        let c = self.conn()?;
        let sql = format!("SELECT {INFO_COLS} FROM messages WHERE id = ?1");
        Ok(c.conn.query_row(&sql, params![id.0], info_row).optional()?)
    }

    fn body(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        let c = self.conn()?;
        Ok(c.conn
            .query_row(
                "SELECT body FROM messages WHERE id = ?1",
                params![id.0],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn list(&self, f: &ListFilter) -> Result<Vec<MessageInfo>, StoreError> {
        let c = self.conn()?;
        let mut sql = format!("SELECT {INFO_COLS} FROM messages WHERE seq > ?1");
        let mut args: Vec<rusqlite::types::Value> = vec![f.after_seq.unwrap_or(0).into()];
        if let Some(s) = f.state {
            args.push(s.as_str().to_string().into());
            sql.push_str(&format!(" AND state = ?{}", args.len()));
        }
        if let Some(e) = &f.endpoint {
            args.push(e.clone().into());
            sql.push_str(&format!(" AND endpoint = ?{}", args.len()));
        }
        let limit = if f.limit == 0 { 100 } else { f.limit };
        sql.push_str(&format!(" ORDER BY seq LIMIT {limit}"));
        let mut st = c.conn.prepare(&sql)?;
        let rows = st
            .query_map(params_from_iter(args), info_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn replay(&self, id: &MessageId, now_ms: i64) -> Result<bool, StoreError> {
        let c = self.conn()?;
        let n = c.conn.execute(
            "UPDATE messages SET state = 'pending', attempts = 0, next_attempt_ms = ?2,
             updated_ms = ?2 WHERE id = ?1 AND state IN ('dead', 'delivered')",
            params![id.0, now_ms],
        )?;
        Ok(n > 0)
    }

    fn replay_dead(&self, endpoint: Option<&str>, now_ms: i64) -> Result<u64, StoreError> {
        let c = self.conn()?;
        let n = c.conn.execute(
            "UPDATE messages SET state = 'pending', attempts = 0, next_attempt_ms = ?1,
             updated_ms = ?1 WHERE state = 'dead' AND (?2 IS NULL OR endpoint = ?2)",
            params![now_ms, endpoint],
        )?;
        Ok(n as u64)
    }

    fn attempts(&self, q: &AttemptQuery) -> Result<Vec<AttemptRecord>, StoreError> {
        let c = self.conn()?;
        let mut sql = String::from(
            "SELECT msg_id, endpoint, at_ms, attempt, status, latency_ms, response, error
             FROM attempts WHERE at_ms >= ?1",
        );
        let mut args: Vec<rusqlite::types::Value> = vec![q.since_ms.unwrap_or(i64::MIN).into()];
        if let Some(m) = &q.msg_id {
            args.push(m.0.clone().into());
            sql.push_str(&format!(" AND msg_id = ?{}", args.len()));
        }
        if let Some(e) = &q.endpoint {
            args.push(e.clone().into());
            sql.push_str(&format!(" AND endpoint = ?{}", args.len()));
        }
        let limit = if q.limit == 0 { 100 } else { q.limit };
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {limit}"));
        let mut st = c.conn.prepare(&sql)?;
        let rows = st
            .query_map(params_from_iter(args), |r| {
                Ok(AttemptRecord {
                    msg_id: MessageId(r.get(0)?),
                    endpoint: r.get(1)?,
                    at_ms: r.get(2)?,
                    attempt: r.get(3)?,
                    status: r.get(4)?,
                    latency_ms: r.get::<_, i64>(5)?.max(0) as u64,
                    response: r.get(6)?,
                    error: r.get(7)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn set_endpoint_disabled(
        &self,
        endpoint: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let c = self.conn()?;
        match reason {
            Some(r) => c.conn.execute(
                "INSERT INTO endpoint_state (endpoint, disabled_reason, updated_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(endpoint) DO UPDATE SET disabled_reason = ?2, updated_ms = ?3",
                params![endpoint, r, now_ms],
            )?,
            None => c.conn.execute(
                "DELETE FROM endpoint_state WHERE endpoint = ?1",
                params![endpoint],
            )?,
        };
        Ok(())
    }

    fn disabled_endpoints(&self) -> Result<Vec<(String, String)>, StoreError> {
        let c = self.conn()?;
        let mut st = c
            .conn
            .prepare("SELECT endpoint, disabled_reason FROM endpoint_state ORDER BY endpoint")?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn apply_retention(&self, r: &Retention, now_ms: i64) -> Result<RetentionReport, StoreError> {
        let mut c = self.conn()?;
        let tx = c.conn.transaction()?;
        let mut rep = RetentionReport::default();
        if let Some(age) = r.max_age {
            let cutoff = now_ms.saturating_sub(age.as_millis() as i64);
            rep.messages_removed += tx.execute(
                "DELETE FROM messages WHERE state IN ('delivered', 'dead') AND updated_ms < ?1",
                params![cutoff],
            )? as u64;
            rep.attempts_removed +=
                tx.execute("DELETE FROM attempts WHERE at_ms < ?1", params![cutoff])? as u64;
        }
        if let Some(max) = r.max_finished {
            rep.messages_removed += tx.execute(
                "DELETE FROM messages WHERE seq IN (
                   SELECT seq FROM messages WHERE state IN ('delivered', 'dead')
                   ORDER BY updated_ms DESC, seq DESC LIMIT -1 OFFSET ?1)",
                params![max as i64],
            )? as u64;
        }
        if let Some(max) = r.max_attempts {
            rep.attempts_removed += tx.execute(
                "DELETE FROM attempts WHERE id <= (
                   SELECT id FROM attempts ORDER BY id DESC LIMIT 1 OFFSET ?1)",
                params![max as i64],
            )? as u64;
        }
        tx.commit()?;
        Ok(rep)
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        let c = self.conn()?;
        let mut st = c
            .conn
            .prepare("SELECT state, COUNT(*) FROM messages GROUP BY state")?;
        let mut out = Counts::default();
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (s, n) = row?;
            let n = n as u64;
            match State::parse(&s) {
                Some(State::Pending) => out.pending = n,
                Some(State::InFlight) => out.in_flight = n,
                Some(State::Delivered) => out.delivered = n,
                Some(State::Dead) => out.dead = n,
                None => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ep: &str, n: i64) -> NewMessage {
        NewMessage {
            id: MessageId::new(),
            endpoint: ep.into(),
            body: format!("{{\"n\":{n}}}").into_bytes(),
            headers: vec![("content-type".into(), "application/json".into())],
            created_ms: n,
            next_attempt_ms: n,
        }
    }

    fn slot(ep: &str, fifo: bool, capacity: usize) -> ClaimSlot {
        ClaimSlot {
            endpoint: ep.into(),
            fifo,
            capacity,
        }
    }

    #[test]
    fn fifo_claims_only_the_head() {
        let s = SqliteStore::in_memory().unwrap();
        let a: Vec<_> = (0..3).map(|n| msg("a", n)).collect();
        let ids: Vec<_> = a.iter().map(|m| m.id.clone()).collect();
        s.enqueue(a).unwrap();
        let c = s.claim_due(10, 10, &[slot("a", true, 1)]).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].id, ids[0]);
        // Head in flight: nothing else.
        assert!(s
            .claim_due(10, 10, &[slot("a", true, 1)])
            .unwrap()
            .is_empty());
        let att = AttemptRecord {
            msg_id: ids[0].clone(),
            endpoint: "a".into(),
            at_ms: 10,
            attempt: 1,
            status: Some(500),
            latency_ms: 1,
            response: None,
            error: None,
        };
        s.finish_attempt(
            &att,
            &AttemptOutcome::Retry {
                next_attempt_ms: 100,
            },
            10,
        )
        .unwrap();
        // Head pending but not due: successors still held back.
        assert!(s
            .claim_due(50, 10, &[slot("a", true, 1)])
            .unwrap()
            .is_empty());
        assert_eq!(s.next_due_ms(&[slot("a", true, 1)]).unwrap(), Some(100));
        let c = s.claim_due(100, 10, &[slot("a", true, 1)]).unwrap();
        assert_eq!(c[0].id, ids[0]);
        assert_eq!(c[0].attempts, 1);
        // Unordered claims many.
        let c = s.claim_due(100, 10, &[slot("a", false, 5)]).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(s.recover_in_flight(0).unwrap(), 3);
        assert_eq!(s.counts().unwrap().pending, 3);
    }

    #[test]
    fn enqueue_with_is_atomic_and_skips_known_ids() {
        let s = SqliteStore::in_memory().unwrap();
        s.with_conn(|c| c.execute_batch("CREATE TABLE side (v TEXT)"))
            .unwrap();
        let a = msg("a", 1);
        let b = msg("a", 2);
        let (new, ()) = s
            .enqueue_with(std::slice::from_ref(&a), |tx| {
                tx.execute("INSERT INTO side VALUES ('one')", [])
                    .map(|_| ())
            })
            .unwrap();
        assert_eq!(new, 1);
        // Delivered, then submitted again with the same id: skipped, body kept.
        s.claim_due(10, 10, &[slot("a", false, 10)]).unwrap();
        let att = AttemptRecord {
            msg_id: a.id.clone(),
            endpoint: "a".into(),
            at_ms: 10,
            attempt: 1,
            status: Some(200),
            latency_ms: 1,
            response: None,
            error: None,
        };
        s.finish_attempt(&att, &AttemptOutcome::Delivered, 10)
            .unwrap();
        let mut again = a.clone();
        again.body = b"changed".to_vec();
        let (new, ()) = s.enqueue_with(&[again, b.clone()], |_| Ok(())).unwrap();
        assert_eq!(new, 1);
        assert_eq!(s.get(&a.id).unwrap().unwrap().state, State::Delivered);
        assert_eq!(s.body(&a.id).unwrap().unwrap(), a.body);
        // A failing side write rolls the messages back too.
        let c = msg("a", 3);
        let err = s.enqueue_with(std::slice::from_ref(&c), |tx| {
            tx.execute("INSERT INTO side VALUES ('two')", [])?;
            tx.execute("INSERT INTO nowhere VALUES (1)", []).map(|_| ())
        });
        assert!(err.is_err());
        assert!(s.get(&c.id).unwrap().is_none());
        let side: i64 = s
            .with_conn(|c| c.query_row("SELECT COUNT(*) FROM side", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(side, 1);
    }

    #[test]
    fn retention_keeps_pending() {
        let s = SqliteStore::in_memory().unwrap();
        let ms: Vec<_> = (0..5).map(|n| msg("a", n)).collect();
        let ids: Vec<_> = ms.iter().map(|m| m.id.clone()).collect();
        s.enqueue(ms).unwrap();
        s.claim_due(10, 10, &[slot("a", false, 10)]).unwrap();
        for (i, id) in ids.iter().enumerate().take(4) {
            let att = AttemptRecord {
                msg_id: id.clone(),
                endpoint: "a".into(),
                at_ms: i as i64,
                attempt: 1,
                status: Some(200),
                latency_ms: 1,
                response: Some("ok".into()),
                error: None,
            };
            s.finish_attempt(&att, &AttemptOutcome::Delivered, i as i64)
                .unwrap();
        }
        s.release(&ids[4..], 10).unwrap();
        let rep = s
            .apply_retention(
                &Retention {
                    max_age: None,
                    max_finished: Some(1),
                    max_attempts: Some(2),
                },
                10,
            )
            .unwrap();
        assert_eq!(rep.messages_removed, 3);
        assert_eq!(rep.attempts_removed, 2);
        let c = s.counts().unwrap();
        assert_eq!((c.pending, c.delivered), (1, 1));
        // The newest delivered one is kept.
        assert_eq!(s.get(&ids[3]).unwrap().unwrap().state, State::Delivered);
        let rep = s
            .apply_retention(
                &Retention {
                    max_age: Some(Duration::from_millis(1)),
                    ..Default::default()
                },
                1000,
            )
            .unwrap();
        assert_eq!(rep.messages_removed, 1);
        assert_eq!(s.counts().unwrap().pending, 1);
    }
}
