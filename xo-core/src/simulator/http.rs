//! The HTTP/1.1 front end (hyper on a small tokio runtime): XML-RPC on POST `/`, `/RPC2` and
//! any other path (longest-prefix, as xapi), JSON-RPC on POST `/jsonrpc`, `GET /rrd_updates`,
//! `GET /export` and `PUT /import` (see `transfer`).
//! One listener per simulated host, same port, its own loopback address.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::faults::HttpFault;
use super::state::Shared;
use super::tls::TlsIdentity;
use super::{rpc_body, rrd, transfer, SimError};

/// Largest request body accepted.
const MAX_BODY: usize = 64 << 20;

pub struct Server {
    rt: Option<tokio::runtime::Runtime>,
}

impl Server {
    /// Binds every host address on one port (`port` 0: picked for the first, reused after).
    pub fn start(
        shared: Arc<Shared>,
        ips: &[IpAddr],
        port: u16,
        tls: Option<&TlsIdentity>,
        unix_socket: Option<&std::path::Path>,
    ) -> Result<(Server, u16), SimError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(512)
            .thread_name("xapi-sim-http")
            .enable_all()
            .build()?;
        let (listeners, port) = bind_all(ips, port)?;
        let acceptor = tls.map(|t| TlsAcceptor::from(t.config.clone()));
        // Every host serves the same certificate, so the master's thumbprint is this one.
        let thumbprint: Option<Arc<str>> = tls.map(|t| Arc::from(t.fingerprint.as_str()));
        for (host, l) in listeners.into_iter().enumerate() {
            let shared = shared.clone();
            let acceptor = acceptor.clone();
            let thumbprint = thumbprint.clone();
            let listener = {
                let _guard = rt.enter();
                TcpListener::from_std(l)?
            };
            rt.spawn(async move {
                loop {
                    let stream = match listener.accept().await {
                        Ok((s, _)) => s,
                        // Out of descriptors and the like: back off instead of spinning.
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    };
                    tokio::spawn(serve_connection(
                        shared.clone(),
                        host,
                        stream,
                        acceptor.clone(),
                        thumbprint.clone(),
                    ));
                }
            });
        }
        if let Some(path) = unix_socket {
            serve_unix(&rt, shared, path)?;
        }
        Ok((Server { rt: Some(rt) }, port))
    }

    pub fn stop(mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Binds every address on one port. With port 0, the master's random port may be taken on
/// a member address: try a few ports before giving up.
fn bind_all(ips: &[IpAddr], port: u16) -> std::io::Result<(Vec<std::net::TcpListener>, u16)> {
    let attempts = if port == 0 { 10 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let mut listeners = Vec::new();
        let mut p = port;
        let result = ips.iter().try_for_each(|ip| {
            let l = std::net::TcpListener::bind((*ip, p))?;
            p = l.local_addr()?.port();
            l.set_nonblocking(true)?;
            listeners.push(l);
            Ok::<(), std::io::Error>(())
        });
        match result {
            Ok(()) => return Ok((listeners, p)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no address to bind")))
}

/// dom0's local socket (`/var/lib/xcp/xapi` on a real host): plain HTTP, answered as the
/// first host.
fn serve_unix(
    rt: &tokio::runtime::Runtime,
    shared: Arc<Shared>,
    path: &std::path::Path,
) -> Result<(), SimError> {
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    listener.set_nonblocking(true)?;
    let listener = {
        let _guard = rt.enter();
        tokio::net::UnixListener::from_std(listener)?
    };
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(shared.clone(), 0, None, req));
                let io = TokioIo::new(stream);
                let _ = http1::Builder::new().serve_connection(io, svc).await;
            });
        }
    });
    Ok(())
}

async fn serve_connection(
    shared: Arc<Shared>,
    host: usize,
    stream: TcpStream,
    acceptor: Option<TlsAcceptor>,
    thumbprint: Option<Arc<str>>,
) {
    if shared.faults().unreachable.contains(&host) {
        // A powered-off host: the connection goes nowhere.
        return;
    }
    stream.set_nodelay(true).ok();
    let svc = service_fn(move |req| handle(shared.clone(), host, thumbprint.clone(), req));
    let builder = http1::Builder::new();
    match acceptor {
        Some(a) => {
            if let Ok(tls) = a.accept(stream).await {
                let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
            }
        }
        None => {
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        }
    }
}

pub(super) type Reply = Response<Full<Bytes>>;

pub(super) fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    if let Ok(v) = content_type.parse() {
        h.insert(hyper::header::CONTENT_TYPE, v);
    }
    h.insert(
        hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        hyper::header::HeaderValue::from_static("*"),
    );
    r
}

/// xapi's HTML error page for requests it cannot parse.
pub(super) fn internal_error(detail: &str) -> Reply {
    let body = rpc_body::internal_error_page(detail);
    reply(StatusCode::INTERNAL_SERVER_ERROR, "text/html", body)
}

/// The service: an `Err` makes hyper close the connection without a reply (dropped-connection fault).
async fn handle(
    shared: Arc<Shared>,
    host: usize,
    thumbprint: Option<Arc<str>>,
    req: Request<Incoming>,
) -> Result<Reply, std::io::Error> {
    let fault = shared.faults().take_http_fault();
    match fault {
        Some(HttpFault::Drop) => return Err(std::io::Error::other("simulated dropped connection")),
        Some(HttpFault::Status(s)) => {
            let status = StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Ok(reply(status, "text/plain", format!("simulated HTTP {s}\n")));
        }
        None => {}
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    if method == Method::OPTIONS {
        let mut r = reply(StatusCode::OK, "text/plain", "");
        r.headers_mut().insert(
            hyper::header::ACCESS_CONTROL_ALLOW_METHODS,
            hyper::header::HeaderValue::from_static("POST, GET, OPTIONS"),
        );
        r.headers_mut().insert(
            hyper::header::ACCESS_CONTROL_ALLOW_HEADERS,
            hyper::header::HeaderValue::from_static("content-type"),
        );
        return Ok(r);
    }
    if method == Method::GET && path == "/rrd_updates" {
        let cookie = req
            .headers()
            .get(hyper::header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let accept_json = req
            .headers()
            .get(hyper::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"));
        let (status, ctype, body) = rrd::handle(&shared, host, &query, &cookie, accept_json);
        return Ok(reply(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            ctype,
            body,
        ));
    }
    // XO asks for `/import/` with a trailing slash.
    match (&method, path.trim_end_matches('/')) {
        (&Method::GET, "/export") => {
            let cookie = header(&req, hyper::header::COOKIE);
            return Ok(transfer::export(&shared, host, &query, &cookie));
        }
        (&Method::PUT, "/import") => {
            let cookie = header(&req, hyper::header::COOKIE);
            let declared = header(&req, hyper::header::CONTENT_LENGTH).parse().ok();
            return transfer::import(shared, host, query, cookie, declared, req.into_body()).await;
        }
        _ => {}
    }
    if method != Method::POST {
        return Ok(reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"));
    }
    // A client following HOST_IS_SLAVE may ask for the master's certificate thumbprint.
    let wants_thumbprint = req
        .headers()
        .get(THUMBPRINT_REQUEST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("sha-256:master"));
    let thumbprint = thumbprint.filter(|_| wants_thumbprint);
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(internal_error(&format!("request body: {e}"))),
    };
    let (mut reply, slave) = answer(shared, host, path == "/jsonrpc", body).await;
    if let (true, Some(t)) = (slave, thumbprint) {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&t) {
            reply.headers_mut().insert(THUMBPRINT_RESPONSE, v);
        }
    }
    Ok(reply)
}

fn header(req: &Request<Incoming>, name: hyper::header::HeaderName) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

const THUMBPRINT_REQUEST: &str = "x-xenapi-request-host-certificate-thumbprint";
const THUMBPRINT_RESPONSE: &str = "x-xenapi-response-host-certificate-thumbprint";

async fn answer(shared: Arc<Shared>, host: usize, json: bool, body: Bytes) -> (Reply, bool) {
    // Calls may block (event.from long-polls), so they run off the async workers.
    let answered =
        tokio::task::spawn_blocking(move || rpc_body::answer(&shared, host, json, &body));
    match answered.await {
        Ok(a) => {
            let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK);
            (reply(status, a.content_type, a.body), a.slave)
        }
        Err(_) => (internal_error("internal error"), false),
    }
}
