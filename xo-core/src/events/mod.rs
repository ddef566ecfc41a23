//! Events: a watcher over `event.from`, an object cache kept in sync by it, and the views
//! operators ask for (network map, guest tools report) built on a cache snapshot.
//!
//! ```text
//! EventSource (client / simulator / MemorySource)
//!   └─ Watcher: Iterator<Item = Result<WatchEvent, WatchError>>   token → list → event.from loop
//!        └─ CacheWriter ──(Arc<RwLock<Objects>>)── CacheReader (clone, many threads)
//!                                                     └─ views::{NetworkMap, ToolsReport}
//! ```

mod cache;
mod event;
pub mod memory;
#[cfg(feature = "simulator")]
mod sim_source;
mod source;
pub mod views;
mod watcher;

pub use cache::{cache, Cache, CacheReader, CacheStats, CacheWriter, Object, Objects, Snapshot};
pub use event::{Batch, DynamicEvent, Op, TypeError, TypedEvent};
pub use memory::{Fault, MemorySource};
#[cfg(feature = "simulator")]
pub use sim_source::SimSource;
pub use source::{EventSource, SourceError};
pub use watcher::{
    Phase, ResyncReason, StopHandle, WatchConfig, WatchError, WatchEvent, WatchStats, Watcher,
};
