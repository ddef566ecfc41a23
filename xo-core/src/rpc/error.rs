//! Decode errors and the limits that keep hostile input bounded.

use std::fmt;

/// Bounds applied to every document a decoder reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of arrays and structs accepted. xapi's deepest real value (an event
    /// batch holding a record holding a map) is under 10.
    pub max_depth: usize,
    /// Largest document accepted, in bytes.
    pub max_size: usize,
}

impl Limits {
    pub const DEFAULT_MAX_DEPTH: usize = 64;
    /// 10,000 VM records are about 100 MB of XML-RPC; leave room for very large pools.
    pub const DEFAULT_MAX_SIZE: usize = 1 << 30;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_size: Self::DEFAULT_MAX_SIZE,
        }
    }
}

/// A document that could not be decoded, with where it went wrong.
#[derive(Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// What is wrong, e.g. "unknown tag <foo>" or "expected int, found \"abc\"".
    pub message: String,
    /// Byte offset into the input, when known.
    pub offset: Option<u64>,
    /// Path inside the value (`.Value.OpaqueRef:1.memory_target`, `[3]`), when known.
    pub path: Option<String>,
}

impl DecodeError {
    pub fn new(message: impl Into<String>) -> Self {
        DecodeError {
            message: message.into(),
            offset: None,
            path: None,
        }
    }

    pub fn at(mut self, offset: u64) -> Self {
        self.offset.get_or_insert(offset);
        self
    }

    pub fn in_path(mut self, path: impl Into<String>) -> Self {
        self.path.get_or_insert(path.into());
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(p) = &self.path {
            write!(f, " at {p}")?;
        }
        if let Some(o) = self.offset {
            write!(f, " (byte {o})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DecodeError({self})")
    }
}

impl std::error::Error for DecodeError {}

impl serde::de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError::new(msg.to_string())
    }
}
