//! A programmable HTTP receiver on 127.0.0.1 for webhook tests (tiny_http, one thread per
//! request so a slow reply does not hold the others back).
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// The status the receiver answered.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn id(&self) -> String {
        self.header("webhook-id").unwrap_or_default().to_string()
    }
    pub fn status_ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn body(mut self, b: &str) -> Reply {
        self.body = b.into();
        self
    }
    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

type Handler = Arc<dyn Fn(&Received, usize) -> Reply + Send + Sync>;

pub struct Receiver {
    pub url: String,
    pub port: u16,
    log: Arc<(Mutex<Vec<Received>>, Condvar)>,
    handler: Arc<Mutex<Handler>>,
    server: Arc<tiny_http::Server>,
}

impl Receiver {
    /// Answers 200 to everything until told otherwise.
    pub fn start() -> Receiver {
        Self::with(|_, _| Reply::status(200))
    }

    /// `handler(request, n)` where n counts requests from 0.
    pub fn with(handler: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static) -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let log: Arc<(Mutex<Vec<Received>>, Condvar)> = Arc::default();
        let handler: Arc<Mutex<Handler>> = Arc::new(Mutex::new(Arc::new(handler)));
        let counter = Arc::new(Mutex::new(0usize));
        {
            let server = server.clone();
            let log = log.clone();
            let handler = handler.clone();
            std::thread::spawn(move || {
                for mut req in server.incoming_requests() {
                    let log = log.clone();
                    let handler = handler.lock().unwrap().clone();
                    let n = {
                        let mut c = counter.lock().unwrap();
                        *c += 1;
                        *c - 1
                    };
                    std::thread::spawn(move || {
                        let mut body = Vec::new();
                        let _ = req.as_reader().read_to_end(&mut body);
                        let r = Received {
                            path: req.url().to_string(),
                            headers: req
                                .headers()
                                .iter()
                                .map(|h| (h.field.to_string(), h.value.to_string()))
                                .collect(),
                            body,
                            at: Instant::now(),
                            status: 0,
                        };
                        let reply = handler(&r, n);
                        let mut r = r;
                        r.status = reply.status;
                        // Logged before answering, so the log is in arrival order: a FIFO
                        // sender only sends the next request after this one's answer.
                        {
                            let (m, cv) = &*log;
                            m.lock().unwrap().push(r);
                            cv.notify_all();
                        }
                        if !reply.delay.is_zero() {
                            std::thread::sleep(reply.delay);
                        }
                        // `Connection: close`: ureq 2 reusing a connection to tiny_http very
                        // occasionally gets no answer (seen ~1 in 1,500 requests under load,
                        // never without reuse); tests must not wait out a 15 s timeout.
                        let mut resp = tiny_http::Response::from_string(reply.body)
                            .with_status_code(reply.status)
                            .with_header(
                                tiny_http::Header::from_bytes(&b"Connection"[..], &b"close"[..])
                                    .unwrap(),
                            );
                        for (k, v) in &reply.headers {
                            resp.add_header(
                                tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap(),
                            );
                        }
                        let _ = req.respond(resp);
                    });
                }
            });
        }
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            log,
            handler,
            server,
        }
    }

    pub fn set(&self, handler: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static) {
        *self.handler.lock().unwrap() = Arc::new(handler);
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.0.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived (panics after `timeout`).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let until = Instant::now() + timeout;
        let (m, cv) = &*self.log;
        let mut g = m.lock().unwrap();
        while g.len() < n {
            let left = until.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "receiver got {} of {n} requests", g.len());
            g = cv.wait_timeout(g, left).unwrap().0;
        }
        g.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// A listener that accepts connections, reads a little and closes them without answering.
pub fn closing_listener() -> (String, Arc<Mutex<usize>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let count = Arc::new(Mutex::new(0usize));
    let c = count.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            *c.lock().unwrap() += 1;
            let mut buf = [0u8; 256];
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = s.read(&mut buf);
            drop(s);
        }
    });
    (format!("http://127.0.0.1:{port}/closed"), count)
}

/// Polls `f` until it returns Some, or panics after `timeout`.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "condition not met in {timeout:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
