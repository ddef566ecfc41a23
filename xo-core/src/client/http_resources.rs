//! xapi's plain HTTP handlers: `/rrd_updates` (metrics), `GET /export` and `PUT /import`
//! (XVA streams). Bodies stream through; nothing is loaded whole into memory, except the
//! bounded rrd reply.

use std::io::{self, Read};

use super::error::{snippet, Error, Result, TransportError};
use super::http::read_limited;
use super::rrd::RrdUpdates;
use super::Client;

/// Which metrics to fetch from `/rrd_updates`.
#[derive(Clone, Debug)]
pub struct RrdQuery {
    /// Unix seconds; data newer than this. Negative: relative to the latest update.
    pub start: i64,
    /// Seconds between points: 5, 60, 3600 or 86400 (the archives xapi keeps).
    pub interval: u32,
    /// `AVERAGE`, `MIN` or `MAX`.
    pub cf: String,
    /// Include the host's own metrics.
    pub host: bool,
    /// Only these VMs (all VMs resident on the host when empty).
    pub vm_uuids: Vec<String>,
    /// The pool member to ask (metrics are per host); the master when `None`.
    pub host_address: Option<String>,
    /// Ask for the JSON form (xapi ≥ 23.17) instead of XML.
    pub json: bool,
}

impl Default for RrdQuery {
    fn default() -> Self {
        RrdQuery {
            start: -600,
            interval: 5,
            cf: "AVERAGE".into(),
            host: true,
            vm_uuids: Vec::new(),
            host_address: None,
            json: false,
        }
    }
}

/// Bytes moved so far and the total when known, for progress callbacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
}

/// A reader that reports how much went through it.
pub struct ProgressReader<Rd, F> {
    inner: Rd,
    progress: Progress,
    callback: F,
}

impl<Rd: Read, F: FnMut(Progress)> Read for ProgressReader<Rd, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.progress.done += n as u64;
            (self.callback)(self.progress);
        }
        Ok(n)
    }
}

impl<Rd, F> std::fmt::Debug for ProgressReader<Rd, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressReader")
            .field("progress", &self.progress)
            .finish()
    }
}

impl<Rd, F> ProgressReader<Rd, F> {
    pub fn new(inner: Rd, total: Option<u64>, callback: F) -> Self {
        ProgressReader {
            inner,
            progress: Progress { done: 0, total },
            callback,
        }
    }

    pub fn progress(&self) -> Progress {
        self.progress
    }
}

/// A streamed download (`GET /export`): read it like a file.
pub type Download =
    ProgressReader<Box<dyn Read + Send + Sync + 'static>, Box<dyn FnMut(Progress) + Send>>;

impl Client {
    /// `url` for a handler on `host` (the master when `None`) with the session in the query.
    fn resource_url(
        &self,
        path: &str,
        host: Option<&str>,
        query: &[(&str, &str)],
    ) -> Result<url::Url> {
        let (base, session) = {
            let st = self.state();
            (st.base.clone(), st.session.clone())
        };
        let session = session.ok_or_else(|| Error::NotLoggedIn {
            method: path.into(),
        })?;
        let mut url = match host {
            Some(h) => super::config::sibling_url(&base, h)?,
            None => base,
        };
        url.set_path(path);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("session_id", session.as_str());
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    fn http_error(&self, method: &str, e: ureq::Error) -> Error {
        match e {
            ureq::Error::Status(status, r) => {
                let body = read_limited(r, 4096, method, false).unwrap_or_default();
                Error::Http {
                    method: method.into(),
                    status,
                    body_snippet: snippet(&body, 300),
                }
            }
            ureq::Error::Transport(t) => Error::transport(method, TransportError::from_ureq(&t)),
        }
    }

    /// Fetches and parses `/rrd_updates` (host and VM metrics).
    pub fn rrd_updates(&self, query: &RrdQuery) -> Result<RrdUpdates> {
        const METHOD: &str = "GET /rrd_updates";
        let start = query.start.to_string();
        let interval = query.interval.to_string();
        let mut pairs: Vec<(&str, &str)> = vec![
            ("start", &start),
            ("cf", &query.cf),
            ("interval", &interval),
        ];
        if query.host {
            pairs.push(("host", "true"));
        }
        for uuid in &query.vm_uuids {
            pairs.push(("vm_uuid", uuid));
        }
        if query.json {
            pairs.push(("json", "true"));
        }
        let url = self.resource_url("/rrd_updates", query.host_address.as_deref(), &pairs)?;
        let response = self
            .http_agent(METHOD)?
            .request_url("GET", &url)
            .timeout(self.config().call_timeout)
            .call()
            .map_err(|e| self.http_error(METHOD, e))?;
        let limits = self.config().limits;
        let bytes = read_limited(response, limits.max_size, METHOD, true)?;
        RrdUpdates::parse(&bytes, limits).map_err(|e| Error::protocol(METHOD, e))
    }

    /// Starts `GET /export?uuid=…` and returns the XVA stream; `progress` is called as bytes
    /// are read. `extra` adds query parameters (`use_compression=zstd`,
    /// `preserve_power_state=true`, `task_id=…`). Only the headers must arrive within the
    /// call timeout; reading the body has no overall deadline (exports take hours), but each
    /// read stalls at most `call_timeout`.
    pub fn export_vm(
        &self,
        vm_uuid: &str,
        extra: &[(&str, &str)],
        progress: impl FnMut(Progress) + Send + 'static,
    ) -> Result<Download> {
        const METHOD: &str = "GET /export";
        let mut pairs = vec![("uuid", vm_uuid)];
        pairs.extend_from_slice(extra);
        let url = self.resource_url("/export", None, &pairs)?;
        let response = self
            .http_agent(METHOD)?
            .request_url("GET", &url)
            .call()
            .map_err(|e| self.http_error(METHOD, e))?;
        let total = response
            .header("Content-Length")
            .and_then(|l| l.parse().ok());
        Ok(ProgressReader::new(
            response.into_reader(),
            total,
            Box::new(progress),
        ))
    }

    /// Streams an XVA from `body` into `PUT /import?sr_id=…` (the default SR when `sr` is
    /// `None`). Give `len` when known: xapi reads up to the Content-Length (else the body is
    /// sent chunked). Returns the reply body (xapi answers the new VM refs in the task result
    /// when `task_id` is among `extra`).
    pub fn import_vm(
        &self,
        sr: Option<&str>,
        body: impl Read,
        len: Option<u64>,
        extra: &[(&str, &str)],
        progress: impl FnMut(Progress),
    ) -> Result<Vec<u8>> {
        const METHOD: &str = "PUT /import";
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(sr) = sr {
            pairs.push(("sr_id", sr));
        }
        pairs.extend_from_slice(extra);
        let url = self.resource_url("/import", None, &pairs)?;
        let mut request = self
            .http_agent(METHOD)?
            .request_url("PUT", &url)
            .set("Content-Type", "application/octet-stream");
        let length;
        if let Some(n) = len {
            length = n.to_string();
            request = request.set("Content-Length", &length);
        }
        let reader = ProgressReader::new(body, len, progress);
        let response = request
            .send(reader)
            .map_err(|e| self.http_error(METHOD, e))?;
        read_limited(response, 1 << 20, METHOD, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reader_counts_bytes() {
        let mut seen = Vec::new();
        let mut r = ProgressReader::new(&b"hello world"[..], Some(11), |p: Progress| {
            seen.push(p.done)
        });
        let mut out = Vec::new();
        let mut buf = [0u8; 4];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, b"hello world");
        assert_eq!(
            r.progress(),
            Progress {
                done: 11,
                total: Some(11)
            }
        );
        assert_eq!(seen, vec![4, 8, 11]);
    }
}
