//! Webhooks: XO-compatible and extended specs, payloads, Standard Webhooks signing and
//! verification, a durable SQLite queue and a threaded delivery engine.
//!
//! ```text
//! client calls ─┐                 ┌─ spec (endpoints, subscriptions)
//! pool events ──┴─ WebhookRouter ─┴─ Engine ── Store (SQLite, WAL) ── workers ── HTTP POST
//! ```
//!
//! Delivery is at least once: every message has a stable `webhook-id`; receivers de-duplicate
//! on it and check signatures with [`verify::verify`]. See `docs/webhooks.md`.

pub mod call_hooks;
pub mod clock;
pub mod daemon;
pub mod engine;
pub mod http;
pub mod payload;
pub mod pool_events;
pub mod router;
pub mod secret;
pub mod sign;
pub mod spec;
pub mod store;
#[cfg(feature = "webhooks-tour")]
pub mod tour;
pub mod verify;

pub use engine::{AttemptEvent, AttemptResult, Engine, EngineError, EngineOptions, Submission};
pub use payload::{PoolEvent, XoPayload};
pub use router::{CallEvent, ObjectChange, WebhookRouter};
pub use secret::SigningSecret;
pub use spec::{Spec, SpecError, XoConfig};
pub use store::{MessageId, SqliteStore, Store};
pub use verify::{verify, verify_github, VerifyError};
