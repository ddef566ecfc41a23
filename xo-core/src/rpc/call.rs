//! A typed call description: wire name, encoded params and the result type, with no IO.
//! Generated code builds these for every message; a transport executes them.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use crate::model::Value;

/// One XAPI method call, ready to be encoded. `R` is the decoded result type.
pub struct Call<R> {
    /// Wire name, e.g. `VM.start`.
    pub method: Cow<'static, str>,
    /// Params after the session ref (the transport prepends the session when `session`).
    pub params: Vec<Value>,
    /// Whether the call takes the session ref as its first wire parameter.
    pub session: bool,
    /// The `Async.` wire name, when xapi offers one for this message.
    pub async_method: Option<&'static str>,
    _result: PhantomData<fn() -> R>,
}

impl<R> Call<R> {
    pub fn new(method: impl Into<Cow<'static, str>>, params: Vec<Value>) -> Self {
        Call {
            method: method.into(),
            params,
            session: true,
            async_method: None,
            _result: PhantomData,
        }
    }

    /// A call made before a session exists (`session.login_with_password`).
    pub fn without_session(mut self) -> Self {
        self.session = false;
        self
    }

    pub fn with_async(mut self, async_method: &'static str) -> Self {
        self.async_method = Some(async_method);
        self
    }

    /// The same call with another result type, for dynamic use.
    pub fn cast<U>(self) -> Call<U> {
        Call {
            method: self.method,
            params: self.params,
            session: self.session,
            async_method: self.async_method,
            _result: PhantomData,
        }
    }
}

impl<R> Clone for Call<R> {
    fn clone(&self) -> Self {
        Call {
            method: self.method.clone(),
            params: self.params.clone(),
            session: self.session,
            async_method: self.async_method,
            _result: PhantomData,
        }
    }
}

impl<R> fmt::Debug for Call<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Params are left out: login calls carry passwords.
        f.debug_struct("Call")
            .field("method", &self.method)
            .field("params", &format_args!("[{} values]", self.params.len()))
            .field("session", &self.session)
            .field("async_method", &self.async_method)
            .finish()
    }
}

/// The result of a `void` message. xapi sends an empty string; anything is accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Void;

impl<'de> serde::Deserialize<'de> for Void {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Void)
    }
}

impl serde::Serialize for Void {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("")
    }
}
