//! The durable queue behind the engine. [`SqliteStore`] is the default backend; the trait is
//! small so a server-grade backend can be added later.
//!
//! Contract: a message returned by a successful [`Store::enqueue`] is durable. Messages are
//! `pending` → `inflight` (claimed) → `delivered` | `pending` (retry) | `dead`. One engine owns
//! a store at a time: on start it calls [`Store::recover_in_flight`], which puts rows claimed by
//! a crashed process back to `pending` (so they are delivered again, with the same id).

mod sqlite;

pub use sqlite::{Durability, SqliteStore};

use std::fmt;
use std::time::Duration;

/// A stable `msg_…` id, sent as `webhook-id` on every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub String);

impl MessageId {
    pub fn new() -> MessageId {
        MessageId(super::secret::random_id("msg_"))
    }
    /// The same id for the same `parts`, in the same `msg_` + 24 base62 form as a random one
    /// (SHA-256 of the length-prefixed parts). Lets a producer that may redo some work after a
    /// crash mint the id it minted the first time.
    pub fn derived(parts: &[&str]) -> MessageId {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
        }
        MessageId(super::secret::base62_id("msg_", &h.finalize()[..24]))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl Default for MessageId {
    fn default() -> Self {
        MessageId::new()
    }
}
impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Pending,
    InFlight,
    Delivered,
    Dead,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::InFlight => "inflight",
            State::Delivered => "delivered",
            State::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<State> {
        match s {
            "pending" => Some(State::Pending),
            "inflight" => Some(State::InFlight),
            "delivered" => Some(State::Delivered),
            "dead" => Some(State::Dead),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub id: MessageId,
    pub endpoint: String,
    pub body: Vec<u8>,
    /// Per-message headers (e.g. Content-Type); endpoint headers and signatures are added
    /// when sending.
    pub headers: Vec<(String, String)>,
    pub created_ms: i64,
    pub next_attempt_ms: i64,
}

/// A message handed to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub seq: i64,
    pub id: MessageId,
    pub endpoint: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    /// Attempts made before this one.
    pub attempts: u32,
    pub created_ms: i64,
}

/// Summary of a message, for listing.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageInfo {
    pub seq: i64,
    pub id: MessageId,
    pub endpoint: String,
    pub state: State,
    pub attempts: u32,
    pub created_ms: i64,
    pub next_attempt_ms: i64,
    pub updated_ms: i64,
    pub last_error: Option<String>,
    pub body_len: usize,
}

/// One delivery attempt, as logged.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub msg_id: MessageId,
    pub endpoint: String,
    pub at_ms: i64,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// HTTP status, `None` when no response came (timeout, refused, reset).
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// The start of the response body, at most 1 KiB.
    pub response: Option<String>,
    pub error: Option<String>,
}

/// What becomes of a message after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Delivered,
    Retry { next_attempt_ms: i64 },
    Dead { reason: String },
}

/// Which endpoints a claim may take messages for, and how many.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimSlot {
    pub endpoint: String,
    pub fifo: bool,
    /// How many more messages may be in flight for this endpoint.
    pub capacity: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    pub state: Option<State>,
    pub endpoint: Option<String>,
    /// Only messages with `seq` greater than this (paging).
    pub after_seq: Option<i64>,
    /// 0 means 100.
    pub limit: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptQuery {
    pub msg_id: Option<MessageId>,
    pub endpoint: Option<String>,
    pub since_ms: Option<i64>,
    /// 0 means 100. Newest first.
    pub limit: usize,
}

/// Limits on what is kept. Pending and in-flight messages are never removed: they were accepted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Retention {
    /// Delivered and dead messages, and attempts, older than this are removed.
    pub max_age: Option<Duration>,
    /// At most this many delivered + dead messages (oldest removed first).
    pub max_finished: Option<u64>,
    /// At most this many attempt log rows.
    pub max_attempts: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub messages_removed: u64,
    pub attempts_removed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: u64,
    pub in_flight: u64,
    pub delivered: u64,
    pub dead: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store: {0}")]
    Other(String),
}

pub trait Store: Send + Sync {
    /// Writes messages durably, all or none.
    fn enqueue(&self, msgs: Vec<NewMessage>) -> Result<(), StoreError>;
    /// Marks up to `limit` due messages in flight and returns them. For a FIFO slot only the
    /// oldest unfinished message of the endpoint qualifies.
    fn claim_due(
        &self,
        now_ms: i64,
        limit: usize,
        slots: &[ClaimSlot],
    ) -> Result<Vec<Claimed>, StoreError>;
    /// The earliest time a message for one of `slots` becomes claimable.
    fn next_due_ms(&self, slots: &[ClaimSlot]) -> Result<Option<i64>, StoreError>;
    /// Logs the attempt and applies the outcome, in one transaction.
    fn finish_attempt(
        &self,
        attempt: &AttemptRecord,
        outcome: &AttemptOutcome,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Puts claimed messages back to pending without counting an attempt.
    fn release(&self, ids: &[MessageId], now_ms: i64) -> Result<(), StoreError>;
    /// In-flight → pending, after a crash. Returns how many.
    fn recover_in_flight(&self, now_ms: i64) -> Result<u64, StoreError>;
    fn get(&self, id: &MessageId) -> Result<Option<MessageInfo>, StoreError>;
    /// The stored body bytes.
    fn body(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError>;
    fn list(&self, filter: &ListFilter) -> Result<Vec<MessageInfo>, StoreError>;
    /// Dead (or delivered) → pending, due now, attempt counter reset; same id. False if the
    /// message is unknown or still pending/in flight.
    fn replay(&self, id: &MessageId, now_ms: i64) -> Result<bool, StoreError>;
    /// Replays every dead message (of one endpoint). Returns how many.
    fn replay_dead(&self, endpoint: Option<&str>, now_ms: i64) -> Result<u64, StoreError>;
    fn attempts(&self, q: &AttemptQuery) -> Result<Vec<AttemptRecord>, StoreError>;
    fn set_endpoint_disabled(
        &self,
        endpoint: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Endpoints disabled at run time (410), with the reason.
    fn disabled_endpoints(&self) -> Result<Vec<(String, String)>, StoreError>;
    fn apply_retention(&self, r: &Retention, now_ms: i64) -> Result<RetentionReport, StoreError>;
    fn counts(&self) -> Result<Counts, StoreError>;
}
