//! Client errors: every variant says which method failed and keeps its kind (transport, HTTP,
//! protocol, API), so callers can retry, re-login or report precisely.

use std::fmt;

use crate::model::ApiFailure;
use crate::rpc::DecodeError;

/// What went wrong talking to a pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request never got an HTTP answer: DNS, connect, TLS, reset, timeout.
    #[error("{method}: transport error: {source}")]
    Transport {
        method: String,
        #[source]
        source: TransportError,
    },
    /// The server answered with a non-2xx status (xapi sends HTML 500 pages on parse errors).
    #[error("{method}: HTTP {status}: {body_snippet}")]
    Http {
        method: String,
        status: u16,
        body_snippet: String,
    },
    /// The reply was not a valid XML-RPC / JSON-RPC envelope, or did not fit the expected type.
    #[error("{method}: bad reply: {source}")]
    Protocol {
        method: String,
        #[source]
        source: DecodeError,
    },
    /// xapi refused the call (`[code, params…]`).
    #[error("{method}: {failure}")]
    Api { method: String, failure: ApiFailure },
    /// The client was configured wrongly (bad URL, bad fingerprint, TLS setup, …).
    #[error("configuration: {0}")]
    Config(String),
    /// The call needs a session and the client has none (or lost it with no credentials).
    #[error("{method}: not logged in")]
    NotLoggedIn { method: String },
    /// `call_async` on a message that has no `Async.` form.
    #[error("{method} has no Async form")]
    NoAsyncForm { method: String },
    /// A login was sent on by `HOST_IS_SLAVE` more times than allowed.
    #[error("{method}: more than {hops} HOST_IS_SLAVE redirections")]
    TooManyRedirections { method: String, hops: u32 },
    /// The master stopped answering and no pool member named a new one.
    #[error("master unreachable and none of {asked} other pool members named a new one")]
    MasterNotFound { asked: usize },
    /// The operation cannot run over this client's transport.
    #[error("{method}: {reason}")]
    Unsupported {
        method: String,
        reason: &'static str,
    },
    /// A task was cancelled before it finished.
    #[error("{method}: task cancelled")]
    TaskCancelled { method: String },
    /// Waiting for a task took longer than the caller allowed.
    #[error("{method}: timed out waiting for the task")]
    Timeout { method: String },
}

/// The result type of every client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The wire method this error is about (`""` for configuration errors).
    pub fn method(&self) -> &str {
        match self {
            Error::Transport { method, .. }
            | Error::Http { method, .. }
            | Error::Protocol { method, .. }
            | Error::Api { method, .. }
            | Error::TaskCancelled { method }
            | Error::Timeout { method }
            | Error::NotLoggedIn { method }
            | Error::NoAsyncForm { method }
            | Error::TooManyRedirections { method, .. }
            | Error::Unsupported { method, .. } => method,
            Error::Config(_) | Error::MasterNotFound { .. } => "",
        }
    }

    /// True when the call ran out of time (transport timeout or task wait timeout).
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Transport { source, .. } => source.is_timeout(),
            Error::Timeout { .. } => true,
            _ => false,
        }
    }

    /// The API failure, when xapi refused the call.
    pub fn api_failure(&self) -> Option<&ApiFailure> {
        match self {
            Error::Api { failure, .. } => Some(failure),
            _ => None,
        }
    }

    /// The xapi error code (`SESSION_INVALID`, `VM_BAD_POWER_STATE`, …), if any.
    pub fn api_code(&self) -> Option<&str> {
        self.api_failure().map(|f| f.code.as_str())
    }

    pub(crate) fn transport(method: &str, source: TransportError) -> Self {
        Error::Transport {
            method: method.to_owned(),
            source,
        }
    }

    pub(crate) fn protocol(method: &str, source: DecodeError) -> Self {
        Error::Protocol {
            method: method.to_owned(),
            source,
        }
    }

    pub(crate) fn api(method: &str, failure: ApiFailure) -> Self {
        Error::Api {
            method: method.to_owned(),
            failure,
        }
    }
}

/// Why no HTTP answer came back.
#[derive(Debug)]
pub struct TransportError {
    pub kind: TransportKind,
    /// Human text from the HTTP/TLS layer. Never contains request bodies or URLs with
    /// query strings (those carry session refs).
    pub message: String,
}

/// Coarse classes of transport failure, for retry decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    Dns,
    Connect,
    Tls,
    Timeout,
    Io,
    Other,
}

impl TransportError {
    pub fn new(kind: TransportKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            message: message.into(),
        }
    }

    pub fn is_timeout(&self) -> bool {
        self.kind == TransportKind::Timeout
    }

    /// Classifies an I/O error (timeouts apart from the rest).
    pub fn from_io(e: &std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => TransportKind::Timeout,
            _ => TransportKind::Io,
        };
        TransportError::new(kind, e.to_string())
    }

    /// Classifies a ureq transport error. The ureq message is kept but its URL is dropped,
    /// since export/import/rrd URLs carry the session ref in the query.
    pub(crate) fn from_ureq(t: &ureq::Transport) -> Self {
        use ureq::ErrorKind as K;
        let mut message = t.message().map(str::to_owned).unwrap_or_default();
        let source = std::error::Error::source(t)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let io_kind = std::error::Error::source(t)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .map(|e| e.kind());
        if !source.is_empty() {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&source);
        }
        let tls = std::error::Error::source(t)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .and_then(|e| e.get_ref())
            .is_some_and(|inner| inner.is::<rustls::Error>())
            || message.contains("tls");
        let timed_out = matches!(
            io_kind,
            Some(std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)
        );
        let kind = match t.kind() {
            _ if tls => TransportKind::Tls,
            K::Dns => TransportKind::Dns,
            // Includes connect timeouts: the request was never sent.
            K::ConnectionFailed => TransportKind::Connect,
            _ if timed_out => TransportKind::Timeout,
            K::Io => TransportKind::Io,
            _ => TransportKind::Other,
        };
        if message.is_empty() {
            message = t.kind().to_string();
        }
        TransportError { kind, message }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            TransportKind::Dns => "name resolution failed",
            TransportKind::Connect => "connection failed",
            TransportKind::Tls => "TLS failed",
            TransportKind::Timeout => "timed out",
            TransportKind::Io => "I/O error",
            TransportKind::Other => "request failed",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for TransportError {}

/// A password: usable, but never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(s: impl Into<String>) -> Self {
        Password(s.into())
    }

    /// The secret itself, for putting on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Password(s.to_owned())
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Password(s)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Keeps at most `max` bytes of an HTTP error body, on a char boundary, one line.
pub(crate) fn snippet(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(max)]);
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>();
    s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > max {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted() {
        let s = Password::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn every_error_names_its_method() {
        let e = Error::api(
            "VM.start",
            ApiFailure::new("VM_BAD_POWER_STATE", vec!["a".into()]),
        );
        assert_eq!(e.method(), "VM.start");
        assert_eq!(e.api_code(), Some("VM_BAD_POWER_STATE"));
        assert!(e.to_string().starts_with("VM.start: VM_BAD_POWER_STATE"));
        let e = Error::Http {
            method: "pool.get_all".into(),
            status: 500,
            body_snippet: "x".into(),
        };
        assert_eq!(e.to_string(), "pool.get_all: HTTP 500: x");
        let e = Error::transport(
            "VM.get_all",
            TransportError::new(TransportKind::Timeout, "read"),
        );
        assert!(e.is_timeout());
        assert!(e.to_string().contains("VM.get_all"));
        let e = Error::protocol("host.get_all", DecodeError::new("bad").at(3));
        assert_eq!(e.to_string(), "host.get_all: bad reply: bad (byte 3)");
    }

    #[test]
    fn snippet_is_bounded_and_single_line() {
        let body = b"<html>\n<body>Xmlrpc.Parse_error</body>\n</html>";
        assert_eq!(
            snippet(body, 1000),
            "<html> <body>Xmlrpc.Parse_error</body> </html>"
        );
        let s = snippet(&[b'a'; 5000], 100);
        assert_eq!(s.chars().count(), 101);
        // Invalid UTF-8 and a cut in the middle of a multi-byte char do not panic.
        let s = snippet("héllo".as_bytes(), 2);
        assert!(s.starts_with('h'));
    }
}
