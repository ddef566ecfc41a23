//! An embedded XAPI server that behaves like xapi on the wire (what moto is for AWS).
//!
//! ```no_run
//! use xo_core::simulator::{SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig::default()).unwrap();
//! println!("{} {:?}", sim.url(), sim.credentials().0);
//! ```
//!
//! Each simulated host listens on its own loopback address on the same port (127.0.0.1 is the
//! master, 127.0.0.2… the members), so `HOST_IS_SLAVE` and master failover are real. The object
//! model is driven by the vendored datamodel: every class answers its implicit messages.
//!
//! Layout:
//! - `datamodel`: the generated `model::meta` tables as typed classes (types, defaults,
//!   messages, one-to-many relations);
//! - `db`: class → ref → fields, uuid index, relation upkeep, change log keyed by generation;
//! - `dispatch`: method lookup, parameter count/type checks, sessions and pool role, `Async.`;
//! - `implicit`: getters, setters, map/set updates, records, lookups, create/destroy;
//! - `vm` (power state machine), `vm_copy`, `vm_config`, `guest`, `storage`, `net`, `ops`: the
//!   custom messages (state machines and their errors); `migrate`, `host_ops`, `sr_ops`:
//!   migrations and evacuation, host enable/disable, SR and PBD lifecycle;
//! - `tasks`, `events`: async tasks and `event.from`/`event.inject`;
//! - `inventory` (+ `inventory_bond`), `statedb`: the default pool, and xapi's `state.db`
//!   dump format;
//! - `http`, `tls`, `rrd`, `wire`: hyper server, rcgen/rustls identity, `/rrd_updates`, codecs;
//! - `transfer`, `xva`: `GET /export` and `PUT /import`, and the fake XVA they move;
//! - `faults`: the fault-injection handle.
//!
//! One mutex guards the state; a condvar wakes `event.from` long-polls; a scheduler thread
//! runs task progress and guest-agent reports. HTTP calls run on tokio's blocking pool.

mod datamodel;
mod db;
mod dispatch;
mod events;
mod faults;
mod guest;
mod host_ops;
mod http;
mod implicit;
mod in_process;
mod inventory;
mod inventory_bond;
mod inventory_nic;
mod migrate;
mod net;
mod ops;
mod rpc_body;
mod rrd;
mod session_idle;
mod sr_ops;
mod state;
mod statedb;
mod storage;
mod tasks;
mod tls;
mod transfer;
mod vm;
mod vm_config;
mod vm_copy;
mod wire;
mod xva;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use faults::Faults;
pub use in_process::InProcess;

use crate::model::Value;
use crate::rpc::Outcome;
use state::{Shared, State};

/// How to start a simulator.
#[derive(Clone)]
pub struct SimConfig {
    /// Hosts in the pool (the first is the master). Ignored with `db`.
    pub hosts: usize,
    /// Guest VMs in the default inventory (templates and control domains come on top).
    pub vms: usize,
    /// Serve HTTPS with a self-signed certificate generated at start.
    pub tls: bool,
    /// Master address; port 0 picks a free port. Members use the next IPv4 addresses.
    pub listen: SocketAddr,
    /// Accepted (user, password) pairs.
    pub users: Vec<(String, String)>,
    /// How long an `Async.*` task stays pending.
    pub task_duration: Duration,
    /// Delay between a VM start and its guest agent reporting.
    pub guest_agent_delay: Duration,
    /// Load this `state.db` dump instead of the default inventory.
    pub db: Option<PathBuf>,
    /// Whether to serve HTTP at all (false: in-process `dispatch` only).
    pub serve: bool,
    /// Largest `PUT /import` body accepted (larger ones get `413`); 64 MiB by default.
    pub max_import_bytes: usize,
    /// How long a blocked `event.from` waits after the first change it sees before it
    /// replies, so that a burst arrives in one batch. xapi's `event_from_delay`: 50 ms.
    /// Zero replies at once.
    pub event_from_delay: Duration,
    /// Sessions unused for this long are destroyed (`SESSION_INVALID` on next use). xapi's
    /// `inactive_session_timeout` is 24 h, the default here; `None` keeps sessions forever.
    pub session_idle_timeout: Option<Duration>,
    /// Also serve plain HTTP on this Unix socket, as the first host (xapi's
    /// `/var/lib/xcp/xapi` in dom0). Needs `serve`.
    pub unix_socket: Option<PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            hosts: 2,
            vms: 6,
            tls: false,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            users: vec![(
                "root".into(),
                dispatch::secret_uuid().replace('-', "")[..16].to_owned(),
            )],
            task_duration: Duration::from_millis(200),
            guest_agent_delay: Duration::from_millis(200),
            db: None,
            serve: true,
            max_import_bytes: transfer::DEFAULT_MAX_IMPORT,
            event_from_delay: Duration::from_millis(50),
            session_idle_timeout: Some(Duration::from_secs(86_400)),
            unix_socket: None,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Passwords stay out of logs.
        f.debug_struct("SimConfig")
            .field("hosts", &self.hosts)
            .field("vms", &self.vms)
            .field("tls", &self.tls)
            .field("listen", &self.listen)
            .field(
                "users",
                &self
                    .users
                    .iter()
                    .map(|(u, _)| u.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("task_duration", &self.task_duration)
            .field("db", &self.db)
            .field("max_import_bytes", &self.max_import_bytes)
            .field("event_from_delay", &self.event_from_delay)
            .field("session_idle_timeout", &self.session_idle_timeout)
            .finish()
    }
}

/// Why the simulator could not start.
#[derive(Debug)]
pub enum SimError {
    Io(std::io::Error),
    Tls(String),
    Db(String),
    Config(String),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Io(e) => write!(f, "simulator I/O: {e}"),
            SimError::Tls(e) => write!(f, "simulator TLS: {e}"),
            SimError::Db(e) => write!(f, "simulator database: {e}"),
            SimError::Config(e) => write!(f, "simulator configuration: {e}"),
        }
    }
}

impl std::error::Error for SimError {}

impl From<std::io::Error> for SimError {
    fn from(e: std::io::Error) -> Self {
        SimError::Io(e)
    }
}

/// A running simulator. Dropping it stops the servers.
pub struct Simulator {
    shared: Arc<Shared>,
    server: Option<http::Server>,
    urls: Vec<String>,
    tls: Option<tls::TlsIdentity>,
    credentials: (String, String),
    warnings: Vec<String>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("urls", &self.urls)
            .finish_non_exhaustive()
    }
}

/// Host addresses: the listen address, then the next IPv4 addresses.
fn host_ips(listen: IpAddr, n: usize) -> Result<Vec<IpAddr>, SimError> {
    match listen {
        IpAddr::V4(v4) => {
            let base = u32::from(v4);
            (0..n as u32)
                .map(|i| {
                    base.checked_add(i)
                        .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
                        .ok_or_else(|| SimError::Config("address overflow".into()))
                })
                .collect()
        }
        IpAddr::V6(_) if n == 1 => Ok(vec![listen]),
        IpAddr::V6(_) => Err(SimError::Config(
            "several hosts need an IPv4 listen address".into(),
        )),
    }
}

impl Simulator {
    pub fn start(cfg: SimConfig) -> Result<Simulator, SimError> {
        let credentials = cfg
            .users
            .first()
            .cloned()
            .ok_or_else(|| SimError::Config("no users".into()))?;
        let seed = u64::from_le_bytes(
            dispatch::secret_uuid().as_bytes()[..8]
                .try_into()
                .unwrap_or([7; 8]),
        );
        let mut st = State {
            db: db::Db::new(seed),
            sessions: Default::default(),
            users: cfg.users.clone(),
            hosts: Vec::new(),
            master: 0,
            pool: String::new(),
            task_duration: cfg.task_duration,
            guest_agent_delay: cfg.guest_agent_delay,
            message_gen: 0,
            tools: Default::default(),
            task_ops: Default::default(),
            next_domid: 0,
            session_seq: 0,
            registrations: Default::default(),
            completed_tasks: Default::default(),
            max_import_bytes: cfg.max_import_bytes,
            event_from_delay: cfg.event_from_delay,
            session_idle_timeout: cfg.session_idle_timeout,
        };
        let mut warnings = Vec::new();
        match &cfg.db {
            Some(path) => {
                let text = statedb::read_file(path)?;
                let dump = statedb::parse(&text).map_err(SimError::Db)?;
                let ips = host_ips(cfg.listen.ip(), dump.host_count().max(1))?;
                warnings = statedb::load(&mut st, &dump, &ips).map_err(SimError::Db)?;
            }
            None => {
                if cfg.hosts == 0 {
                    return Err(SimError::Config("at least one host".into()));
                }
                let ips = host_ips(cfg.listen.ip(), cfg.hosts)?;
                inventory::build(&mut st, &ips, cfg.vms);
            }
        }
        let ips: Vec<IpAddr> = st.hosts.iter().map(|h| h.ip).collect();
        let shared = Shared::new(st);
        let tls = if cfg.tls {
            Some(tls::TlsIdentity::generate(&ips)?)
        } else {
            None
        };
        let (server, urls) = if cfg.serve {
            let (server, port) = http::Server::start(
                shared.clone(),
                &ips,
                cfg.listen.port(),
                tls.as_ref(),
                cfg.unix_socket.as_deref(),
            )?;
            let scheme = if tls.is_some() { "https" } else { "http" };
            let urls = ips
                .iter()
                .map(|ip| format!("{scheme}://{}", SocketAddr::new(*ip, port)))
                .collect();
            (Some(server), urls)
        } else {
            (None, Vec::new())
        };
        Ok(Simulator {
            shared,
            server,
            urls,
            tls,
            credentials,
            warnings,
        })
    }

    /// The master's URL, e.g. `http://127.0.0.1:PORT` (empty when not serving).
    pub fn url(&self) -> String {
        let master = self.shared.lock().master;
        self.urls.get(master).cloned().unwrap_or_default()
    }

    /// One URL per host, in host order (index 0 is the first master).
    pub fn host_urls(&self) -> Vec<String> {
        self.urls.clone()
    }

    /// SHA-256 fingerprint of the certificate, `AA:BB:…`, when serving TLS.
    pub fn fingerprint(&self) -> Option<String> {
        self.tls.as_ref().map(|t| t.fingerprint.clone())
    }

    pub fn certificate_pem(&self) -> Option<String> {
        self.tls.as_ref().map(|t| t.cert_pem.clone())
    }

    /// The first configured (user, password).
    pub fn credentials(&self) -> (String, String) {
        self.credentials.clone()
    }

    pub fn faults(&self) -> Faults {
        Faults {
            shared: self.shared.clone(),
        }
    }

    /// A transport straight into this simulator (no socket); see [`InProcess`].
    pub fn transport(&self) -> InProcess {
        InProcess {
            shared: self.shared.clone(),
        }
    }

    /// Client settings for the current master over [`Simulator::transport`].
    pub fn client_config(&self) -> crate::client::ClientConfig {
        let ip = {
            let st = self.shared.lock();
            st.hosts.get(st.master).map(|h| h.ip)
        };
        let ip = ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        crate::client::ClientConfig::new(format!("http://{}", SocketAddr::new(ip, 80)))
            .with_plain_http(true)
            .with_transport(self.transport())
    }

    /// A client logged in as the first configured user, over [`Simulator::transport`].
    pub fn connect(&self) -> crate::client::Result<crate::client::Client> {
        let (user, password) = self.credentials();
        crate::client::Client::connect(self.client_config(), &user, password)
    }

    /// Calls a method in-process on the current master, as if it came over the wire.
    pub fn dispatch(&self, method: &str, params: Vec<Value>) -> Outcome<Value> {
        let master = self.shared.lock().master;
        dispatch::call(&self.shared, master, method, params)
    }

    /// Calls a method in-process as if it arrived at host `index`.
    pub fn dispatch_on(&self, index: usize, method: &str, params: Vec<Value>) -> Outcome<Value> {
        dispatch::call(&self.shared, index, method, params)
    }

    /// The state in xapi's `state.db` format (sessions left out).
    pub fn dump_state_db(&self) -> String {
        statedb::dump(&self.shared.lock())
    }

    /// Problems found while loading a `--db` dump (unknown tables and fields…).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Every method the simulator serves, as `system.listMethods` returns them.
    pub fn methods() -> Vec<String> {
        dispatch::list_methods().to_vec()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shared.stop();
        if let Some(s) = self.server.take() {
            s.stop();
        }
        // Wake long-polls so their threads return.
        self.shared.changed.notify_all();
    }
}
