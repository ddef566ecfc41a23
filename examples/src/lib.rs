//! Runnable examples live beside this crate as `[[example]]` targets.

pub mod events_tour;
