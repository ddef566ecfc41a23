//! Fault injection for reliability tests: latency, dropped connections, HTTP errors, chosen
//! XAPI errors, expired sessions and a master switch.

use std::sync::Arc;
use std::time::Duration;

use super::state::Shared;
use crate::model::ApiFailure;

#[derive(Default)]
pub struct FaultState {
    pub latency: Duration,
    /// Requests still to be answered by closing the connection without a reply.
    pub drop_next: usize,
    /// HTTP status and how many requests still get it.
    pub http_status: Option<(u16, usize)>,
    /// Method → (failure, remaining calls).
    pub method_errors: Vec<(String, ApiFailure, usize)>,
    /// Answer as a host older than XenServer 7.3: no JSON-RPC.
    pub xml_rpc_only: bool,
    /// Hosts that accept no connection, by index.
    pub unreachable: Vec<usize>,
}

impl FaultState {
    /// Takes one injected failure for `method`, if any is armed.
    pub fn take_method_error(&mut self, method: &str) -> Option<ApiFailure> {
        let i = self
            .method_errors
            .iter()
            .position(|(m, _, n)| m == method && *n > 0)?;
        let entry = &mut self.method_errors[i];
        entry.2 -= 1;
        let failure = entry.1.clone();
        if entry.2 == 0 {
            self.method_errors.remove(i);
        }
        Some(failure)
    }

    /// What the HTTP layer should do with the next request.
    pub fn take_http_fault(&mut self) -> Option<HttpFault> {
        if self.drop_next > 0 {
            self.drop_next -= 1;
            return Some(HttpFault::Drop);
        }
        if let Some((status, n)) = self.http_status.as_mut() {
            let s = *status;
            *n -= 1;
            if *n == 0 {
                self.http_status = None;
            }
            return Some(HttpFault::Status(s));
        }
        None
    }
}

pub enum HttpFault {
    Drop,
    Status(u16),
}

/// A handle to inject faults into a running simulator. Cheap to clone.
#[derive(Clone)]
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl Faults {
    /// Delays every call by `d` (HTTP and in-process).
    pub fn set_latency(&self, d: Duration) {
        self.shared.faults().latency = d;
    }

    /// The next `n` HTTP requests are answered by closing the connection.
    pub fn drop_connections(&self, n: usize) {
        self.shared.faults().drop_next = n;
    }

    /// The next `n` HTTP requests get this status (500, 503…) with a short body.
    pub fn http_status(&self, status: u16, n: usize) {
        self.shared.faults().http_status = if n == 0 { None } else { Some((status, n)) };
    }

    /// The next `n` calls of `method` (wire name, e.g. `VM.start`) fail with `code params…`.
    pub fn fail_method(&self, method: &str, code: &str, params: &[&str], n: usize) {
        if n == 0 {
            return;
        }
        let failure = ApiFailure::new(code, params.iter().map(|p| p.to_string()).collect());
        self.shared
            .faults()
            .method_errors
            .push((method.to_owned(), failure, n));
    }

    /// Destroys every session, as a host restart or the idle timeout does.
    pub fn expire_sessions(&self) {
        let mut st = self.shared.lock();
        let refs: Vec<String> = st.sessions.keys().cloned().collect();
        let class = st.db.class_index("session");
        for r in refs {
            st.db.destroy(class, &r);
        }
        st.sessions.clear();
        drop(st);
        self.shared.changed.notify_all();
    }

    /// Makes host `index` (0 = the first host) the pool master; the old master then answers
    /// `HOST_IS_SLAVE` with the new master's address. Returns false for a bad index.
    pub fn switch_master(&self, index: usize) -> bool {
        let ok = super::ops::designate_master(&mut self.shared.lock(), index);
        self.shared.changed.notify_all();
        ok
    }

    /// Behaves as a host older than XenServer 7.3, which has no JSON-RPC: a JSON body then
    /// meets the XML-RPC parser and gets xapi's HTML 500 page.
    pub fn xml_rpc_only(&self, on: bool) {
        self.shared.faults().xml_rpc_only = on;
    }

    /// Host `index` stops (or starts again) accepting connections, as when it is powered off:
    /// over HTTP its connections are closed at once, in-process a connection error is returned.
    pub fn set_unreachable(&self, index: usize, unreachable: bool) {
        let mut f = self.shared.faults();
        f.unreachable.retain(|&i| i != index);
        if unreachable {
            f.unreachable.push(index);
        }
    }

    /// Removes every armed fault.
    pub fn clear(&self) {
        *self.shared.faults() = FaultState::default();
    }
}
