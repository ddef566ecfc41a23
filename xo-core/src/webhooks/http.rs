//! One HTTP attempt: POST the stored bytes, signed for this attempt's timestamp.

use super::sign::signed_headers;
use super::spec::EndpointSpec;
use super::store::Claimed;
use std::io::Read;
use std::time::{Duration, Instant, SystemTime};

/// Bytes of response body kept in the attempt log.
pub const SNIPPET_LIMIT: usize = 1024;
/// Bytes of response body read at most (reading to the end lets the connection be reused).
const READ_LIMIT: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct HttpResult {
    pub status: Option<u16>,
    pub latency: Duration,
    pub snippet: Option<String>,
    pub error: Option<String>,
    pub retry_after: Option<Duration>,
}

/// An agent that never follows redirects (a 3xx is a failed attempt).
pub fn agent(pool_per_host: usize) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .redirects(0)
        .max_idle_connections_per_host(pool_per_host.max(1))
        .build()
}

/// `Retry-After`: delta seconds or an HTTP date.
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

fn snippet(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(SNIPPET_LIMIT + 4)]);
    let mut end = s.len().min(SNIPPET_LIMIT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(s[..end].to_string())
}

fn read_response(
    resp: ureq::Response,
    now: SystemTime,
) -> (u16, Option<Duration>, Vec<u8>, Option<String>) {
    let status = resp.status();
    let retry_after = resp
        .header("retry-after")
        .and_then(|v| parse_retry_after(v, now));
    let mut body = Vec::new();
    let err = resp
        .into_reader()
        .take(READ_LIMIT)
        .read_to_end(&mut body)
        .err()
        .map(|e| format!("reading response: {e}"));
    (status, retry_after, body, err)
}

pub fn post(
    agent: &ureq::Agent,
    ep: &EndpointSpec,
    msg: &Claimed,
    now: SystemTime,
    user_agent: &str,
) -> HttpResult {
    let ts = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut req = agent
        .post(&ep.url)
        .timeout(ep.timeout)
        .set("user-agent", user_agent);
    for (k, v) in msg.headers.iter().chain(ep.headers.iter()) {
        req = req.set(k, v);
    }
    let signed = signed_headers(
        msg.id.as_str(),
        ts,
        &msg.body,
        &ep.secrets,
        ep.github_secret.as_ref(),
    );
    for (k, v) in &signed {
        req = req.set(k, v);
    }
    let start = Instant::now();
    let res = req.send_bytes(&msg.body);
    let (status, retry_after, body, error) = match res {
        Ok(r) => {
            let (s, ra, b, e) = read_response(r, now);
            (Some(s), ra, b, e)
        }
        Err(ureq::Error::Status(_, r)) => {
            let (s, ra, b, e) = read_response(r, now);
            (Some(s), ra, b, e)
        }
        Err(ureq::Error::Transport(t)) => {
            // Not `t.to_string()`: it repeats the URL, which may carry a token.
            let mut text = t.kind().to_string();
            let parts = [
                t.message().map(str::to_string),
                std::error::Error::source(&t).map(|e| e.to_string()),
            ];
            for p in parts.into_iter().flatten() {
                if !text.contains(&p) {
                    text = if p.contains(&text) {
                        p
                    } else {
                        format!("{text}: {p}")
                    };
                }
            }
            (None, None, Vec::new(), Some(text))
        }
    };
    HttpResult {
        status,
        latency: start.elapsed(),
        snippet: snippet(&body),
        error,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn snippet_is_bounded() {
        let big = "é".repeat(2000);
        let s = snippet(big.as_bytes()).unwrap();
        assert!(s.len() <= SNIPPET_LIMIT);
        assert!(s.chars().all(|c| c == 'é'));
    }
}
