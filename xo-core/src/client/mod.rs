//! The synchronous client (staging: more modules land with the codecs).

pub mod config;
pub mod error;
pub mod rrd;
pub mod tls;
