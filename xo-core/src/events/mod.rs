//! Events: a watcher over `event.from`, an object cache kept in sync by it, and the views
//! operators ask for (network map, guest tools report) built on a cache snapshot.
//!
//! ```text
//! Client (HTTP(S), Unix socket, or the simulator in-process)
//!   └─ Watcher: Iterator<Item = Result<WatchEvent, WatchError>>   token → list → event.from loop
//!        └─ CacheWriter ──(Arc<RwLock<Objects>>)── CacheReader (clone, many threads)
//!                                                     └─ views::{NetworkMap, ToolsReport}
//! ```
//!
//! XO's order is kept: a token first (`event.inject` on the pool), then `get_all_records` per
//! class, then the `event.from` loop. `SESSION_INVALID` logs in again and resumes from the same
//! token (the client does that); `EVENTS_LOST` or a rejected token yields [`WatchEvent::Resync`] and lists again;
//! other failures are yielded as [`WatchError`] and retried with bounded back-off. Because xapi
//! sends no `del` for an object created after the listing's token and deleted before the next
//! poll, the watcher compares each batch's `valid_ref_counts` with what it has yielded and
//! fetches a class again when they differ.
//!
//! ```no_run
//! use std::time::Duration;
//! use xo_core::client::{Client, ClientConfig};
//! use xo_core::events::{Cache, WatchConfig};
//! use xo_core::events::views::tools_report;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect(ClientConfig::new("https://pool-master.lan"), "root", "secret")?;
//! let cache = Cache::spawn(client, WatchConfig::new(["VM", "VM_guest_metrics"]))?;
//! cache.wait_ready(Duration::from_secs(30));
//! println!("{}", tools_report(&cache.read()));
//! // Block until some VM runs with an address reported by its guest agent.
//! let addr = cache.wait_for(Duration::from_secs(60), |o| {
//!     o.all("VM").filter(|vm| vm.str("power_state") == Some("Running")).find_map(|vm| {
//!         let gm = o.vm_guest_metrics(vm)?;
//!         gm.map("networks").into_iter().find(|(k, _)| k.ends_with("/ipv4/0")).map(|(_, a)| a.to_owned())
//!     })
//! });
//! # let _ = addr;
//! # Ok(())
//! # }
//! ```

mod cache;
mod calls;
mod event;
mod record;
pub mod views;
mod watcher;

pub use cache::{cache, Cache, CacheReader, CacheStats, CacheWriter, Object, Objects, Snapshot};
pub use event::{Batch, ObjectEvent, Op, TypeError, TypedEvent};
pub use record::{Record, TypedRecord};
pub use watcher::{
    ResyncReason, StopHandle, WatchConfig, WatchError, WatchEvent, WatchPhase, WatchStats, Watcher,
};
