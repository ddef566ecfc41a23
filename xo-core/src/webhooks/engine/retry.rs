//! Retry decisions: what a response means for the message, and when to try again.

use super::AttemptResult;
use crate::webhooks::http::HttpResult;
use crate::webhooks::spec::EndpointSpec;
use std::time::Duration;

fn jittered(base: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 || base.is_zero() {
        return base;
    }
    let mut b = [0u8; 4];
    let r = if getrandom::fill(&mut b).is_ok() {
        u32::from_le_bytes(b) as f64 / u32::MAX as f64
    } else {
        0.5
    };
    base.mul_f64(1.0 - jitter + 2.0 * jitter * r)
}

/// Decides what a response means for the message. `attempt` counts from 1.
pub(crate) fn decide(
    ep: &EndpointSpec,
    attempt: u32,
    res: &HttpResult,
    max_retry_after: Duration,
) -> AttemptResult {
    let retryable = match res.status {
        Some(s) if (200..300).contains(&s) => return AttemptResult::Delivered,
        Some(410) => return AttemptResult::EndpointDisabled,
        None => true,
        Some(429) => true,
        Some(s) if (400..500).contains(&s) => ep.retry.retryable_status.contains(&s),
        Some(_) => true, // 1xx, 3xx, 5xx
    };
    let why = match (res.status, &res.error) {
        (Some(s), _) => format!("HTTP {s}"),
        (None, Some(e)) => e.clone(),
        (None, None) => "no response".into(),
    };
    if !retryable {
        return AttemptResult::Dead(format!("{why} is not retryable"));
    }
    let Some(base) = ep.retry.schedule.get(attempt.saturating_sub(1) as usize) else {
        return AttemptResult::Dead(format!(
            "retries exhausted after {attempt} attempts, last: {why}"
        ));
    };
    let mut delay = jittered(*base, ep.retry.jitter);
    if let Some(ra) = res.retry_after {
        delay = delay.max(ra.min(max_retry_after));
    }
    AttemptResult::Retry(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(status: Option<u16>) -> HttpResult {
        HttpResult {
            status,
            latency: Duration::ZERO,
            snippet: None,
            error: None,
            retry_after: None,
        }
    }

    #[test]
    fn decisions() {
        let mut ep = EndpointSpec::new("e", "http://127.0.0.1:1/");
        ep.retry.jitter = 0.0;
        let max = Duration::from_secs(3600);
        assert_eq!(
            decide(&ep, 1, &res(Some(204)), max),
            AttemptResult::Delivered
        );
        assert_eq!(
            decide(&ep, 1, &res(Some(410)), max),
            AttemptResult::EndpointDisabled
        );
        assert_eq!(
            decide(&ep, 1, &res(Some(500)), max),
            AttemptResult::Retry(Duration::from_secs(5))
        );
        assert_eq!(
            decide(&ep, 2, &res(None), max),
            AttemptResult::Retry(Duration::from_secs(300))
        );
        assert!(matches!(
            decide(&ep, 1, &res(Some(404)), max),
            AttemptResult::Dead(_)
        ));
        assert!(matches!(
            decide(&ep, 1, &res(Some(408)), max),
            AttemptResult::Retry(_)
        ));
        assert!(matches!(
            decide(&ep, 1, &res(Some(302)), max),
            AttemptResult::Retry(_)
        ));
        assert!(matches!(
            decide(&ep, 8, &res(Some(500)), max),
            AttemptResult::Dead(_)
        ));
        let mut r = res(Some(429));
        r.retry_after = Some(Duration::from_secs(120));
        assert_eq!(
            decide(&ep, 1, &r, max),
            AttemptResult::Retry(Duration::from_secs(120))
        );
        r.retry_after = Some(Duration::from_secs(86400));
        assert_eq!(decide(&ep, 1, &r, max), AttemptResult::Retry(max));
    }

    #[test]
    fn jitter_stays_in_band() {
        for _ in 0..200 {
            let d = jittered(Duration::from_secs(100), 0.2);
            assert!(
                d >= Duration::from_secs(80) && d <= Duration::from_secs(120),
                "{d:?}"
            );
        }
    }
}
