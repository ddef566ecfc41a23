//! HTTP/1.1 over a Unix-domain socket, for tools running in dom0: xapi listens on
//! `/var/lib/xcp/xapi` (the official Python module's `xapi_local()`). One connection per call
//! (`Connection: close`): connecting to a local socket costs microseconds, and no stale
//! keep-alive connection can then eat a request.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::error::{TransportError, TransportKind};
use super::transport::{Request, Response, Transport};

/// The socket xapi listens on in dom0.
pub const XAPI_SOCKET: &str = "/var/lib/xcp/xapi";

/// Largest response head accepted (status line and headers).
const MAX_HEAD: usize = 64 << 10;

/// RPC over a Unix-domain socket. Only one host is reachable: `HOST_IS_SLAVE` is reported,
/// not followed.
#[derive(Clone, Debug)]
pub struct UnixTransport {
    path: PathBuf,
}

impl UnixTransport {
    /// A transport to the socket at `path` (see [`XAPI_SOCKET`]). Does no IO.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        UnixTransport { path: path.into() }
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Transport for UnixTransport {
    fn send(&self, request: &Request<'_>) -> Result<Response, TransportError> {
        let deadline = Instant::now() + request.timeout;
        let mut stream = UnixStream::connect(&self.path).map_err(|e| {
            TransportError::new(
                TransportKind::Connect,
                format!("{}: {e}", self.path.display()),
            )
        })?;
        set_deadline(&stream, deadline)?;
        stream
            .write_all(&head(request))
            .and_then(|()| stream.write_all(request.body))
            .map_err(|e| TransportError::from_io(&e))?;
        let mut conn = Conn {
            stream,
            deadline,
            buf: Vec::with_capacity(8192),
        };
        conn.read_response(request.max_reply.saturating_add(1))
    }

    fn reaches_other_hosts(&self) -> bool {
        false
    }
}

fn head(request: &Request<'_>) -> Vec<u8> {
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: xo-rs/{}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        request.path(),
        env!("CARGO_PKG_VERSION"),
        request.content_type(),
        request.body.len()
    );
    for (name, value) in request.headers {
        // Header values come from our own config; refuse line breaks all the same.
        if !name.contains(['\r', '\n']) && !value.contains(['\r', '\n']) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn set_deadline(stream: &UnixStream, deadline: Instant) -> Result<(), TransportError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(TransportError::new(
            TransportKind::Timeout,
            "deadline passed",
        ));
    }
    stream
        .set_read_timeout(Some(left))
        .and_then(|()| stream.set_write_timeout(Some(left)))
        .map_err(|e| TransportError::from_io(&e))
}

/// A connection being read: bytes received but not consumed yet are in `buf`.
struct Conn {
    stream: UnixStream,
    deadline: Instant,
    buf: Vec<u8>,
}

impl Conn {
    /// Reads more bytes into `buf`; `Ok(0)` at end of stream.
    fn fill(&mut self) -> Result<usize, TransportError> {
        set_deadline(&self.stream, self.deadline)?;
        let mut chunk = [0u8; 16 << 10];
        let n = self
            .stream
            .read(&mut chunk)
            .map_err(|e| TransportError::from_io(&e))?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn read_response(&mut self, max: usize) -> Result<Response, TransportError> {
        let (status, content_type, framing, head_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = parsed.code.unwrap_or(0);
                    let (ct, framing) = describe(parsed.headers)?;
                    break (status, ct, framing, len);
                }
                Ok(httparse::Status::Partial) if self.buf.len() < MAX_HEAD => {
                    if self.fill()? == 0 {
                        return Err(bad("connection closed before the response head"));
                    }
                }
                Ok(httparse::Status::Partial) => return Err(bad("response head too large")),
                Err(e) => return Err(bad(&format!("malformed response: {e}"))),
            }
        };
        self.buf.drain(..head_len);
        let body = match framing {
            Framing::Length(n) => self.read_exact_up_to(n, max)?,
            Framing::Chunked => self.read_chunked(max)?,
            Framing::Eof => self.read_exact_up_to(usize::MAX, max)?,
        };
        Ok(Response::new(status, &content_type, body))
    }

    /// Reads `n` bytes (or to end of stream when `n` is `usize::MAX`), keeping at most `max`.
    fn read_exact_up_to(&mut self, n: usize, max: usize) -> Result<Vec<u8>, TransportError> {
        let want = n.min(max);
        while self.buf.len() < want {
            if self.fill()? == 0 {
                if n == usize::MAX {
                    break;
                }
                return Err(bad("connection closed inside the body"));
            }
        }
        self.buf.truncate(want);
        Ok(std::mem::take(&mut self.buf))
    }

    fn read_chunked(&mut self, max: usize) -> Result<Vec<u8>, TransportError> {
        let mut body = Vec::new();
        loop {
            let (start, size) = loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((start, size))) => break (start, size),
                    Ok(httparse::Status::Partial) if self.buf.len() < MAX_HEAD => {
                        if self.fill()? == 0 {
                            return Err(bad("connection closed inside a chunk header"));
                        }
                    }
                    _ => return Err(bad("malformed chunk header")),
                }
            };
            if size == 0 {
                return Ok(body);
            }
            let size = usize::try_from(size).map_err(|_| bad("chunk too large"))?;
            self.buf.drain(..start);
            let room = max - body.len();
            // Past the limit only `room` bytes matter; else the whole chunk and its CRLF.
            let need = if size > room { room } else { size + 2 };
            while self.buf.len() < need {
                if self.fill()? == 0 {
                    return Err(bad("connection closed inside a chunk"));
                }
            }
            if size > room {
                body.extend_from_slice(&self.buf[..room]);
                return Ok(body);
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
        }
    }
}

enum Framing {
    Length(usize),
    Chunked,
    Eof,
}

fn describe(headers: &[httparse::Header<'_>]) -> Result<(String, Framing), TransportError> {
    let mut content_type = String::new();
    let mut framing = Framing::Eof;
    for h in headers {
        let value = std::str::from_utf8(h.value).map_err(|_| bad("non-UTF-8 header"))?;
        if h.name.eq_ignore_ascii_case("content-type") {
            content_type = value.to_owned();
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = value
                .trim()
                .parse()
                .map_err(|_| bad("bad Content-Length"))?;
            framing = Framing::Length(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            framing = Framing::Chunked;
        }
    }
    Ok((content_type, framing))
}

fn bad(message: &str) -> TransportError {
    TransportError::new(TransportKind::Other, message)
}
