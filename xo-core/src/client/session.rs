//! Session state: login, re-login, logout, following `HOST_IS_SLAVE` and finding a new master.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::config::sibling_url;
use super::error::{Error, Password, Result};
use super::{Client, SessionRef};
use crate::model::Value;
use crate::rpc::Protocol;

/// How the session was obtained, which decides how it is renewed and closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoginKind {
    /// `session.login_with_password` on the master; closed with `session.logout`.
    Pool,
    /// `session.slave_local_login_with_password` on one member (emergency mode); closed with
    /// `session.local_logout`; never follows `HOST_IS_SLAVE`.
    SlaveLocal,
}

#[derive(Clone, Debug)]
pub(crate) struct Login {
    pub user: String,
    pub password: Password,
    pub kind: LoginKind,
}

/// Mutable connection state, behind the client's mutex. Never held across IO.
#[derive(Debug)]
pub(crate) struct State {
    /// The host calls go to (the master, once known).
    pub base: url::Url,
    /// The wire protocol, once settled (`None` while `Transport::Auto` has not probed yet).
    pub protocol: Option<Protocol>,
    pub session: Option<SessionRef>,
    /// Bumped by every login, so concurrent callers re-login once, not once each.
    pub generation: u64,
    pub login: Option<Login>,
    /// `host.address` of every pool member, learned after login, for failover.
    pub hosts: Vec<String>,
}

/// Only the field failover needs from a host record.
#[derive(Deserialize)]
struct HostAddress {
    #[serde(default)]
    address: String,
}

impl Client {
    /// Logs in to the pool master (following `HOST_IS_SLAVE` from a member) and remembers
    /// the credentials to log in again when the session expires.
    pub fn login_with_password(&self, user: &str, password: impl Into<Password>) -> Result<()> {
        let login = Login {
            user: user.into(),
            password: password.into(),
            kind: LoginKind::Pool,
        };
        self.login(login)
    }

    /// Emergency login on one pool member whose master is unreachable. The session is only
    /// valid on that host; `HOST_IS_SLAVE` is not followed and [`Client::logout`] uses
    /// `session.local_logout`.
    pub fn slave_local_login_with_password(
        &self,
        user: &str,
        password: impl Into<Password>,
    ) -> Result<()> {
        let login = Login {
            user: user.into(),
            password: password.into(),
            kind: LoginKind::SlaveLocal,
        };
        self.login(login)
    }

    /// Closes the session (`session.logout`, or `session.local_logout` after a slave-local
    /// login) and forgets the credentials. Without a session this does nothing.
    pub fn logout(&self) -> Result<()> {
        let (session, kind) = {
            let mut st = self.state();
            let kind = st.login.take().map(|l| l.kind);
            (st.session.take(), kind)
        };
        let Some(session) = session else {
            return Ok(());
        };
        let method = match kind {
            Some(LoginKind::SlaveLocal) => "session.local_logout",
            _ => "session.logout",
        };
        let params = [Value::from(&session)];
        match self.rpc_once::<crate::rpc::Void>(method, &params, self.config().call_timeout) {
            Ok(Ok(_)) => Ok(()),
            // Already gone on the server: logged out either way.
            Ok(Err(f)) if f.code == "SESSION_INVALID" => Ok(()),
            Ok(Err(f)) => Err(Error::api(method, f)),
            Err(e) => Err(e),
        }
    }

    fn login(&self, login: Login) -> Result<()> {
        let start = self.state().base.clone();
        self.login_at(start, &login)?;
        self.state().login = Some(login.clone());
        if login.kind == LoginKind::Pool && self.reaches_other_hosts() {
            self.refresh_hosts();
        }
        Ok(())
    }

    /// Logs in at `base`, following `HOST_IS_SLAVE` a bounded number of times, and stores
    /// the new session and master on success.
    pub(crate) fn login_at(&self, mut base: url::Url, login: &Login) -> Result<()> {
        let config = self.config();
        let (method, params) = match login.kind {
            LoginKind::Pool => (
                "session.login_with_password",
                vec![
                    Value::from(login.user.as_str()),
                    Value::from(login.password.expose()),
                    Value::from("1.0"),
                    Value::from(config.originator.as_str()),
                ],
            ),
            LoginKind::SlaveLocal => (
                "session.slave_local_login_with_password",
                vec![
                    Value::from(login.user.as_str()),
                    Value::from(login.password.expose()),
                ],
            ),
        };
        for _ in 0..=config.max_master_hops {
            match self.rpc_at::<SessionRef>(&base, method, &params, config.call_timeout)? {
                Ok(session) => {
                    let mut st = self.state();
                    st.base = base;
                    st.session = Some(session);
                    st.generation += 1;
                    return Ok(());
                }
                Err(f)
                    if f.code == "HOST_IS_SLAVE"
                        && login.kind == LoginKind::Pool
                        && self.reaches_other_hosts() =>
                {
                    let master = f.params.first().cloned().unwrap_or_default();
                    base = sibling_url(&base, &master)?;
                }
                Err(f) => return Err(Error::api(method, f)),
            }
        }
        Err(Error::TooManyRedirections {
            method: method.into(),
            hops: config.max_master_hops,
        })
    }

    /// Logs in again after `SESSION_INVALID`, unless another thread already did since
    /// `seen_generation`.
    pub(crate) fn relogin(&self, seen_generation: u64) -> Result<()> {
        let _one_at_a_time = self.relogin_guard();
        let (login, base) = {
            let st = self.state();
            if st.generation != seen_generation && st.session.is_some() {
                return Ok(());
            }
            match &st.login {
                Some(l) => (l.clone(), st.base.clone()),
                None => {
                    return Err(Error::NotLoggedIn {
                        method: "session.login_with_password".into(),
                    })
                }
            }
        };
        self.login_at(base, &login)
    }

    /// Learns the pool members' addresses (for failover). Failures only cost failover.
    pub(crate) fn refresh_hosts(&self) {
        let call = crate::rpc::Call::<HashMap<String, HostAddress>>::new(
            "host.get_all_records",
            Vec::new(),
        );
        match self.call(call) {
            Ok(hosts) => {
                let mut addrs: Vec<String> = hosts
                    .into_values()
                    .map(|h| h.address)
                    .filter(|a| !a.is_empty())
                    .collect();
                addrs.sort();
                self.state().hosts = addrs;
            }
            Err(e) => super::tls::warn(&format!("could not list pool hosts for failover: {e}")),
        }
    }

    /// After the master stopped answering: asks every known member, in parallel, who the
    /// master is. A member answers `HOST_IS_SLAVE [master]`; the master answers the call
    /// itself (or any other error). Returns the new master's URL, already stored.
    pub(crate) fn find_master(&self, failed: &url::Url, budget: Duration) -> Result<url::Url> {
        let (hosts, session, protocol) = {
            let st = self.state();
            (
                st.hosts.clone(),
                st.session.clone(),
                st.protocol.unwrap_or(Protocol::XmlRpc),
            )
        };
        let config = self.config();
        let mut candidates: Vec<url::Url> = hosts
            .iter()
            .filter_map(|h| sibling_url(failed, h).ok())
            .collect();
        if let Ok(origin) = config.base_url() {
            candidates.push(origin);
        }
        candidates.retain(|c| c != failed);
        candidates.dedup();
        if candidates.is_empty() {
            return Err(Error::MasterNotFound { asked: 0 });
        }
        let params: Vec<Value> = session.iter().map(Value::from).collect();
        let (tx, rx) = mpsc::channel::<Option<url::Url>>();
        let n = candidates.len();
        let probe_timeout = config.probe_timeout.min(budget);
        for candidate in candidates {
            let (tx, client, params) = (tx.clone(), self.clone(), params.clone());
            std::thread::spawn(move || {
                let reply = client
                    .exchange(probe_timeout)
                    .outcome::<serde::de::IgnoredAny>(
                        &candidate,
                        protocol,
                        "pool.get_all",
                        &params,
                    );
                let found = match reply {
                    Ok(Err(f)) if f.code == "HOST_IS_SLAVE" => f
                        .params
                        .first()
                        .and_then(|m| sibling_url(&candidate, m).ok()),
                    Ok(_) => Some(candidate),
                    Err(_) => None,
                };
                let _ = tx.send(found);
            });
        }
        drop(tx);
        let deadline = Instant::now() + probe_timeout + Duration::from_millis(200);
        for _ in 0..n {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Some(master)) => {
                    self.state().base = master.clone();
                    return Ok(master);
                }
                Ok(None) => continue,
                Err(_) => break,
            }
        }
        Err(Error::MasterNotFound { asked: n })
    }
}
