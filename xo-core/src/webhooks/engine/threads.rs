//! The dispatcher and worker threads, and one delivery.

use super::retry::decide;
use super::EngineError;
use super::{lock, AttemptEvent, AttemptResult, Job, Shared};
use crate::webhooks::clock::unix_ms;
use crate::webhooks::http;
use crate::webhooks::spec::{EndpointSpec, Ordering};
use crate::webhooks::store::{AttemptOutcome, AttemptRecord, ClaimSlot, StoreError};
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

impl Shared {
    pub(super) fn notify(&self) {
        *lock(&self.wake_gen) += 1;
        self.wake.notify_all();
    }

    pub(super) fn set_disabled(
        &self,
        endpoint: &str,
        reason: Option<&str>,
        now: i64,
    ) -> Result<(), EngineError> {
        self.store.set_endpoint_disabled(endpoint, reason, now)?;
        let mut d = lock(&self.disabled);
        match reason {
            Some(r) => d.insert(endpoint.to_string(), r.to_string()),
            None => d.remove(endpoint),
        };
        Ok(())
    }

    /// Endpoints that may take more work now, rotated so every endpoint gets a turn first.
    fn slots(&self, round: usize) -> Vec<(ClaimSlot, Arc<EndpointSpec>)> {
        let eps = self.endpoints.read().unwrap_or_else(|e| e.into_inner());
        let order = self.order.read().unwrap_or_else(|e| e.into_inner());
        let disabled = lock(&self.disabled);
        let in_flight = lock(&self.in_flight);
        let n = order.len();
        let mut out = Vec::new();
        for i in 0..n {
            let id = &order[(i + round) % n];
            let Some(ep) = eps.get(id) else { continue };
            if !ep.enabled || disabled.contains_key(id) {
                continue;
            }
            let fifo = ep.ordering == Ordering::Fifo;
            let cap = if fifo { 1 } else { ep.max_in_flight.max(1) };
            let used = in_flight.get(id).copied().unwrap_or(0);
            if used < cap {
                out.push((
                    ClaimSlot {
                        endpoint: id.clone(),
                        fifo,
                        capacity: cap - used,
                    },
                    ep.clone(),
                ));
            }
        }
        out
    }

    fn log_store_error(&self, what: &str, e: &StoreError) {
        eprintln!("webhooks: {what}: {e}");
    }
}

pub(super) fn dispatcher(sh: Arc<Shared>, jobs: mpsc::Sender<Job>, workers: usize) {
    let mut round = 0usize;
    let mut last_retention = Instant::now();
    loop {
        let seen = *lock(&sh.wake_gen);
        if sh.stopping.load(AtomicOrdering::SeqCst) {
            return;
        }
        let now = unix_ms(sh.opts.clock.now());
        // Claim up to twice the worker count so claims are batched and workers never idle
        // waiting for the next claim; queued jobs are released on shutdown.
        let free = (2 * workers).saturating_sub(sh.busy.load(AtomicOrdering::SeqCst));
        let slots = sh.slots(round);
        round = round.wrapping_add(1);
        let mut wait = sh.opts.poll_interval;
        if free > 0 && !slots.is_empty() {
            let plain: Vec<ClaimSlot> = slots.iter().map(|(s, _)| s.clone()).collect();
            match sh.store.claim_due(now, free, &plain) {
                Ok(claimed) => {
                    let got = claimed.len();
                    for msg in claimed {
                        let Some((_, ep)) = slots.iter().find(|(s, _)| s.endpoint == msg.endpoint)
                        else {
                            continue;
                        };
                        *lock(&sh.in_flight).entry(msg.endpoint.clone()).or_insert(0) += 1;
                        sh.busy.fetch_add(1, AtomicOrdering::SeqCst);
                        let job = Job {
                            msg,
                            endpoint: ep.clone(),
                        };
                        if jobs.send(job).is_err() {
                            return;
                        }
                    }
                    if got == free {
                        continue; // workers full; they wake us when done
                    }
                }
                Err(e) => sh.log_store_error("claiming messages", &e),
            }
            match sh.store.next_due_ms(&plain) {
                Ok(Some(t)) => {
                    let ms = (t - unix_ms(sh.opts.clock.now())).max(0) as u64;
                    wait = wait.min(Duration::from_millis(ms));
                }
                Ok(None) => {}
                Err(e) => sh.log_store_error("reading due times", &e),
            }
        }
        if let Some(r) = &sh.opts.retention {
            if last_retention.elapsed() >= sh.opts.retention_interval {
                last_retention = Instant::now();
                if let Err(e) = sh.store.apply_retention(r, now) {
                    sh.log_store_error("applying retention", &e);
                }
            }
        }
        if wait.is_zero() {
            continue;
        }
        let g = lock(&sh.wake_gen);
        if *g == seen {
            let _ = sh.wake.wait_timeout(g, wait);
        }
    }
}

struct WorkerExit(Arc<Shared>);

impl Drop for WorkerExit {
    fn drop(&mut self) {
        *lock(&self.0.live_workers) -= 1;
        self.0.workers_done.notify_all();
    }
}

pub(super) fn worker(sh: Arc<Shared>, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let _exit = WorkerExit(sh.clone());
    loop {
        let job = match lock(&rx).recv() {
            Ok(j) => j,
            Err(_) => return,
        };
        if sh.stopping.load(AtomicOrdering::SeqCst) {
            // Claimed but not started: back to the store untouched.
            let now = unix_ms(sh.opts.clock.now());
            if let Err(e) = sh.store.release(std::slice::from_ref(&job.msg.id), now) {
                sh.log_store_error("releasing a message", &e);
            }
        } else {
            deliver(&sh, &job);
        }
        if let Some(n) = lock(&sh.in_flight).get_mut(&job.msg.endpoint) {
            *n = n.saturating_sub(1);
        }
        sh.busy.fetch_sub(1, AtomicOrdering::SeqCst);
        sh.notify();
    }
}

fn deliver(sh: &Shared, job: &Job) {
    let ep = &job.endpoint;
    let msg = &job.msg;
    let at = sh.opts.clock.now();
    let res = http::post(&sh.agent, ep, msg, at, &sh.opts.user_agent);
    let attempt = msg.attempts.saturating_add(1);
    let result = decide(ep, attempt, &res, sh.opts.max_retry_after);
    let done = sh.opts.clock.now();
    let now_ms = unix_ms(done);
    let outcome = match &result {
        AttemptResult::Delivered => AttemptOutcome::Delivered,
        AttemptResult::Retry(d) => AttemptOutcome::Retry {
            next_attempt_ms: now_ms + d.as_millis() as i64,
        },
        AttemptResult::Dead(r) => AttemptOutcome::Dead { reason: r.clone() },
        AttemptResult::EndpointDisabled => AttemptOutcome::Retry {
            next_attempt_ms: now_ms,
        },
    };
    if result == AttemptResult::EndpointDisabled {
        let reason = format!("410 Gone on message {}", msg.id);
        if let Err(e) = sh.set_disabled(&msg.endpoint, Some(&reason), now_ms) {
            eprintln!("webhooks: disabling endpoint: {e}");
        }
    }
    let rec = AttemptRecord {
        msg_id: msg.id.clone(),
        endpoint: msg.endpoint.clone(),
        at_ms: unix_ms(at),
        attempt,
        status: res.status,
        latency_ms: res.latency.as_millis() as u64,
        response: res.snippet.clone(),
        error: res.error.clone(),
    };
    if let Err(e) = sh.store.finish_attempt(&rec, &outcome, now_ms) {
        // The row stays in flight and is delivered again after a restart.
        sh.log_store_error("recording an attempt", &e);
    }
    let ev = AttemptEvent {
        msg_id: msg.id.clone(),
        endpoint: msg.endpoint.clone(),
        at,
        attempt,
        status: res.status,
        latency: res.latency,
        error: res.error,
        result,
    };
    if let Some(obs) = &sh.opts.observer {
        // A panicking observer must not take a worker (and its accounting) down with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| obs(&ev)));
    }
    if let Some(tx) = lock(&sh.waiters).remove(&msg.id) {
        let _ = tx.send(ev);
    }
}
