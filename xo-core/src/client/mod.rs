//! The synchronous XAPI client: one [`Client`] per pool, cheap to clone and shared between
//! threads, over one HTTP agent (keep-alive connection pool).
//!
//! ```no_run
//! use std::time::Duration;
//! use xo_core::client::{Client, ClientConfig};
//! use xo_core::model::{Vm, VmPowerState};
//!
//! fn main() -> xo_core::client::Result<()> {
//!     let config = ClientConfig::new("https://pool-master.lan")
//!         .with_fingerprint("5E:91:EE:56:DA:02:2D:BF:26:14:B3:EB:52:B4:17:B5:E1:C9:A9:D7:D5:52:93:ED:70:60:3A:F4:46:EE:B5:09")?
//!         .with_originator("my-tool");
//!     let client = Client::connect(config, "root", "secret")?;
//!     for (vm_ref, vm) in client.call(Vm::get_all_records())? {
//!         if !vm.is_a_template && vm.power_state == VmPowerState::Halted {
//!             client.call_async(Vm::start(&vm_ref, false, false))?.wait(Duration::from_secs(300))?;
//!             println!("started {}", vm.name_label);
//!             break;
//!         }
//!     }
//!     client.logout()
//! }
//! ```
//!
//! The fingerprint of a host's self-signed certificate comes from [`fetch_fingerprint`]
//! (trust on first use; compare it with the host's console), or on the host:
//! `openssl x509 -noout -fingerprint -sha256 -in /etc/xensource/xapi-ssl.pem`.
//!
//! # Behaviour
//!
//! - **Transport.** Requests go through a [`Transport`]: HTTP(S) by default
//!   ([`HttpTransport`]), xapi's Unix socket in dom0 ([`ClientConfig::unix`]), or the embedded
//!   simulator in-process (`Simulator::client_config`). Every request carries xapi's tracing
//!   headers (`originator`, and `traceparent` from the config or `TRACEPARENT`).
//! - **Protocol.** Unless [`ClientConfig::with_protocol`] fixes one, the client first speaks
//!   JSON-RPC v2 (`POST /jsonrpc`); if the reply is not `application/json` (hosts before
//!   XenServer 7.3 answer with XML or an HTML error), it switches to XML-RPC (`POST /`) for
//!   good and resends the call.
//! - **Observers.** [`ClientConfig::with_observer`] adds a [`CallObserver`] that sees every
//!   call before and after, with its params by datamodel name (XO-style pre/post hooks).
//! - **Sessions.** Credentials are kept (redacted, see [`Password`]) so that `SESSION_INVALID`
//!   leads to a new login and a retry, at most [`ClientConfig::relogin_retries`] times.
//!   Concurrent callers share one re-login.
//! - **Pool master.** A login on a member answers `HOST_IS_SLAVE [master address]`; the client
//!   follows it (IPv6 bracketed, scheme and port of the configured URL kept), up to
//!   [`ClientConfig::max_master_hops`] times. A call answered with `HOST_IS_SLAVE` (the master
//!   changed while logged in) moves to the named master and is resent.
//! - **Failover.** After login the client records every member's `host.address`. When the
//!   master cannot be reached (connection refused, reset, timeout), it asks every known member
//!   in parallel, each within [`ClientConfig::probe_timeout`]: a member answers
//!   `HOST_IS_SLAVE [new master]`, the master itself answers the probe. Calls then go to the new
//!   master. The failed call is resent only when it cannot have taken effect: the connection was
//!   never made, or the method only reads (`*.get_*`, `event.from`), as XO does. Slave-local
//!   sessions never fail over.
//! - **Timeouts.** Connect timeout on the agent; every call has a deadline for the whole
//!   exchange ([`ClientConfig::call_timeout`], or [`Client::call_with_timeout`]); `event.from`
//!   gets its server-side timeout plus [`ClientConfig::event_slack`].
//! - **Secrets.** Passwords are [`Password`]s and session refs print as `<redacted>`; errors never
//!   carry request bodies or URLs with a `session_id`.

mod config;
mod error;
mod http;
mod http_resources;
mod observer;
pub mod rrd;
mod session;
mod task;
mod tls;
mod transport;
#[cfg(unix)]
mod unix;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde::de::DeserializeOwned;

pub use config::ClientConfig;
pub use error::{Error, Password, Result, TransportError, TransportKind};
pub use http::HttpTransport;
pub use http_resources::{Download, Progress, ProgressReader, RrdQuery};
pub use observer::{message_meta, CallObserver, ObservedCall, Observers, REDACTED};
pub use rrd::{ObjectKind, RrdUpdates, Series};
pub use task::TaskHandle;
pub use tls::{fetch_fingerprint, Fingerprint, Tls};
pub use transport::{Request, Response, Transport};
#[cfg(unix)]
pub use unix::{UnixTransport, XAPI_SOCKET};

use crate::model::{Ref, Value};
use crate::rpc::{Call, Outcome, Protocol};
use session::State;
use transport::{Exchange, Reply};

/// A session ref: a credential, printed as `<redacted>`.
pub type SessionRef = Ref<crate::model::Session>;
/// A task ref.
pub type TaskRef = Ref<crate::model::Task>;

/// A connection to one pool. Clones share the session and the connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// The config's observers plus any added with [`Client::with_observer`].
    observers: Observers,
}

struct Inner {
    transport: Arc<dyn Transport>,
    /// The HTTP(S) agent for `/export`, `/import` and `/rrd_updates` (`None` over other
    /// transports).
    http: Option<HttpTransport>,
    /// `originator` and `traceparent`, fixed when the client is built.
    headers: Vec<(String, String)>,
    config: ClientConfig,
    state: Mutex<State>,
    /// Serialises re-logins so that concurrent callers hitting `SESSION_INVALID` share one.
    relogin: Mutex<()>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state();
        f.debug_struct("Client")
            .field("master", &st.base.as_str())
            .field("protocol", &st.protocol)
            .field("transport", &self.inner.transport)
            .field("logged_in", &st.session.is_some())
            .finish()
    }
}

impl Client {
    /// A client with no session yet. Checks the URL and TLS settings; does no IO.
    pub fn new(config: ClientConfig) -> Result<Client> {
        let base = config.base_url()?;
        let (transport, http): (Arc<dyn Transport>, _) = match &config.transport {
            Some(t) => (t.clone(), None),
            None => {
                let http = HttpTransport::new(&config)?;
                (Arc::new(http.clone()), Some(http))
            }
        };
        let state = State {
            base,
            protocol: config.protocol,
            session: None,
            generation: 0,
            login: None,
            hosts: Vec::new(),
        };
        Ok(Client {
            observers: config.observers.clone(),
            inner: Arc::new(Inner {
                transport,
                http,
                headers: config.trace_headers(),
                config,
                state: Mutex::new(state),
                relogin: Mutex::new(()),
            }),
        })
    }

    /// [`Client::new`] then [`Client::login_with_password`].
    pub fn connect(
        config: ClientConfig,
        user: &str,
        password: impl Into<Password>,
    ) -> Result<Client> {
        let client = Client::new(config)?;
        client.login_with_password(user, password)?;
        Ok(client)
    }

    /// This client (same session, same connections) with one more observer: calls made
    /// through the returned handle are observed, calls through `self` are not.
    pub fn with_observer(&self, observer: Arc<dyn CallObserver>) -> Client {
        let mut client = self.clone();
        client.observers.0.push(observer);
        client
    }

    /// The settings this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The HTTP agent, for the HTTP resources (`/export`, `/rrd_updates`…).
    pub(crate) fn http_agent(&self, method: &str) -> Result<&ureq::Agent> {
        match &self.inner.http {
            Some(h) => Ok(h.agent()),
            None => Err(Error::Unsupported {
                method: method.into(),
                reason: "HTTP resources need the HTTP(S) transport",
            }),
        }
    }

    pub(crate) fn relogin_guard(&self) -> MutexGuard<'_, ()> {
        self.inner.relogin.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated (single assignments).
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `HOST_IS_SLAVE` and failover may move calls to another host.
    pub(crate) fn reaches_other_hosts(&self) -> bool {
        self.inner.transport.reaches_other_hosts()
    }

    /// The current session, if logged in (a secret: do not log it).
    pub fn session_ref(&self) -> Option<SessionRef> {
        self.state().session.clone()
    }

    /// The URL calls currently go to (the pool master once known).
    pub fn master_url(&self) -> url::Url {
        self.state().base.clone()
    }

    /// The wire protocol in use, once settled.
    pub fn protocol(&self) -> Option<Protocol> {
        self.state().protocol
    }

    /// Pool members' addresses, as learned after login.
    pub fn pool_addresses(&self) -> Vec<String> {
        self.state().hosts.clone()
    }

    /// Runs a typed call with the default timeout; `event.from` gets its own.
    pub fn call<R: DeserializeOwned>(&self, call: Call<R>) -> Result<R> {
        let timeout = self.default_timeout(&call.method, &call.params);
        self.execute(&call.method, &call.params, call.session, timeout)
    }

    /// Runs a typed call with a deadline for the whole exchange.
    pub fn call_with_timeout<R: DeserializeOwned>(
        &self,
        call: Call<R>,
        timeout: Duration,
    ) -> Result<R> {
        self.execute(&call.method, &call.params, call.session, timeout)
    }

    /// Runs any method with dynamic params; the session ref is prepended, as XenAPI.py does.
    /// For calls without a session build a `Call::<Value>::new(..).without_session()`.
    pub fn call_value(&self, method: &str, params: Vec<Value>) -> Result<Value> {
        let timeout = self.default_timeout(method, &params);
        self.execute(method, &params, true, timeout)
    }

    /// Starts the `Async.` form of a call and returns its task handle.
    pub fn call_async<R: DeserializeOwned>(&self, call: Call<R>) -> Result<TaskHandle<R>> {
        let Some(async_method) = call.async_method else {
            return Err(Error::NoAsyncForm {
                method: call.method.into_owned(),
            });
        };
        let timeout = self.config().call_timeout;
        let task: TaskRef = self.execute(async_method, &call.params, call.session, timeout)?;
        Ok(TaskHandle::new(
            self.clone(),
            task,
            call.method.into_owned(),
        ))
    }

    fn default_timeout(&self, method: &str, params: &[Value]) -> Duration {
        let config = self.config();
        if method == "event.from" {
            // The last param is the server-side wait, in seconds.
            let wait = params.last().and_then(Value::as_f64).unwrap_or(0.0);
            let wait = Duration::try_from_secs_f64(wait).unwrap_or(Duration::ZERO);
            return config.call_timeout.max(wait + config.event_slack);
        }
        config.call_timeout
    }

    /// One logical call, between the observers' `before` and `after`.
    fn execute<R: DeserializeOwned>(
        &self,
        method: &str,
        params: &[Value],
        with_session: bool,
        timeout: Duration,
    ) -> Result<R> {
        let observers = &self.observers;
        if observers.is_empty() {
            return self.run(method, params, with_session, timeout);
        }
        static NEXT_CALL: AtomicU64 = AtomicU64::new(1);
        let redact = |values: &[Value]| -> Vec<Value> {
            match self.session_ref() {
                Some(s) => values
                    .iter()
                    .map(|v| observer::redact(v, s.as_str()))
                    .collect(),
                None => values.to_vec(),
            }
        };
        let shown = redact(params);
        let mut call = ObservedCall {
            id: NEXT_CALL.fetch_add(1, Ordering::Relaxed),
            method,
            params: &shown,
            started: SystemTime::now(),
            elapsed: Duration::ZERO,
        };
        observers.0.iter().for_each(|o| o.before(&call));
        let t0 = Instant::now();
        let (result, value) = if observers.want_results() {
            match self.run::<Value>(method, params, with_session, timeout) {
                Ok(v) => {
                    let typed = crate::model::from_value::<R>(v.clone())
                        .map_err(|e| Error::protocol(method, e));
                    (typed, redact(std::slice::from_ref(&v)).pop())
                }
                Err(e) => (Err(e), None),
            }
        } else {
            (self.run::<R>(method, params, with_session, timeout), None)
        };
        call.elapsed = t0.elapsed();
        let outcome = match &result {
            Ok(_) => Ok(value.as_ref()),
            Err(e) => Err(e),
        };
        observers.0.iter().for_each(|o| o.after(&call, outcome));
        result
    }

    /// The call loop: session prepended, re-login on `SESSION_INVALID`, master following on
    /// `HOST_IS_SLAVE`, failover on unreachable master.
    fn run<R: DeserializeOwned>(
        &self,
        method: &str,
        params: &[Value],
        with_session: bool,
        timeout: Duration,
    ) -> Result<R> {
        let config = self.config();
        let deadline = Instant::now() + timeout;
        let follow = self.reaches_other_hosts();
        let (mut relogins, mut hops, mut failovers) = (0, 0, 0);
        loop {
            // Retries share the caller's deadline: the call never takes much longer than asked.
            let left = deadline.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(5) && (relogins + hops + failovers) > 0 {
                return Err(Error::transport(
                    method,
                    TransportError::new(TransportKind::Timeout, "deadline passed while retrying"),
                ));
            }
            let (base, session, generation, slave_local) = {
                let st = self.state();
                let slave_local =
                    matches!(&st.login, Some(l) if l.kind == session::LoginKind::SlaveLocal);
                (
                    st.base.clone(),
                    st.session.clone(),
                    st.generation,
                    slave_local,
                )
            };
            let mut wire = Vec::with_capacity(params.len() + 1);
            if with_session {
                let Some(s) = &session else {
                    return Err(Error::NotLoggedIn {
                        method: method.into(),
                    });
                };
                wire.push(Value::from(s));
            }
            wire.extend_from_slice(params);
            match self.rpc_at::<R>(&base, method, &wire, left) {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(f)) => {
                    let can_relogin = with_session && self.state().login.is_some();
                    if f.code == "SESSION_INVALID"
                        && can_relogin
                        && relogins < config.relogin_retries
                    {
                        relogins += 1;
                        self.relogin(generation)?;
                        continue;
                    }
                    let may_hop = follow && !slave_local && hops < config.max_master_hops;
                    if f.code == "HOST_IS_SLAVE" && may_hop {
                        hops += 1;
                        let master = f.params.first().cloned().unwrap_or_default();
                        let url = config::sibling_url(&base, &master)?;
                        self.state().base = url;
                        continue;
                    }
                    return Err(Error::api(method, f));
                }
                Err(Error::Transport { method: m, source }) => {
                    // Resend only what cannot have taken effect: never connected, or a read.
                    let never_sent =
                        matches!(source.kind, TransportKind::Connect | TransportKind::Dns);
                    let retry_safe = never_sent || transport::is_read_only(method);
                    // A timeout already used the caller's time; TLS failures do not heal.
                    let transient =
                        !matches!(source.kind, TransportKind::Timeout | TransportKind::Tls);
                    if follow && retry_safe && transient && failovers < 2 {
                        failovers += 1;
                        let probe = !slave_local && !self.state().hosts.is_empty();
                        // A new master, or the same one answering again: resend there.
                        if !probe || self.find_master(&base, left).is_ok() {
                            continue;
                        }
                    }
                    return Err(Error::Transport { method: m, source });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The wire-level settings of one exchange.
    pub(crate) fn exchange(&self, timeout: Duration) -> Exchange<'_> {
        Exchange {
            transport: &*self.inner.transport,
            headers: &self.inner.headers,
            limits: self.config().limits,
            timeout,
        }
    }

    /// One call at one URL; the first call settles the protocol when none was configured.
    pub(crate) fn rpc_at<R: DeserializeOwned>(
        &self,
        base: &url::Url,
        method: &str,
        params: &[Value],
        timeout: Duration,
    ) -> Result<Outcome<R>> {
        let exchange = self.exchange(timeout);
        let settled = self.state().protocol;
        let protocol = settled.unwrap_or(Protocol::JsonRpcV2);
        match exchange.run::<R>(base, protocol, settled.is_none(), method, params)? {
            Reply::Outcome(o) => {
                if settled.is_none() {
                    self.state().protocol = Some(protocol);
                }
                Ok(o)
            }
            Reply::NotJson => {
                self.state().protocol = Some(Protocol::XmlRpc);
                exchange.outcome(base, Protocol::XmlRpc, method, params)
            }
        }
    }

    /// One call at the current master, no retries.
    pub(crate) fn rpc_once<R: DeserializeOwned>(
        &self,
        method: &str,
        params: &[Value],
        timeout: Duration,
    ) -> Result<Outcome<R>> {
        let base = self.state().base.clone();
        self.rpc_at(&base, method, params, timeout)
    }
}

impl Error {
    /// The typed API error (error code with named parameters), when xapi refused the call.
    pub fn typed(&self) -> Option<crate::model::ApiError> {
        self.api_failure().map(crate::model::ApiError::from_failure)
    }
}
