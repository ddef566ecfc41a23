//! xo-core: a typed XAPI (XCP-ng / XenServer) SDK.
//!
//! Layers, bottom up (kube-rs shape): [`model`] and [`rpc`] have no IO; the client sits on
//! them; events and webhooks sit on the client.

#![forbid(unsafe_code)]

pub mod client;
pub mod events;
pub mod model;
pub mod rpc;
#[cfg(feature = "simulator")]
pub mod simulator;
pub mod webhooks;
