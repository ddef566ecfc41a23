//! Idle session expiry, as xapi's session GC does it (`inactive_session_timeout`): a session
//! unused for longer than the configured timeout is destroyed. Here the check runs when the
//! session is next used (and at each login, for all sessions), so nothing needs a timer.

use std::time::{Duration, Instant};

use super::state::State;
use crate::model::{DateTime, Value};

/// xapi writes `session.last_active` at most this often (`threshold_last_active`), so that
/// busy sessions do not turn every call into a database write.
const LAST_ACTIVE_WRITE: Duration = Duration::from_secs(600);

fn expired(st: &State, r: &str, now: Instant) -> bool {
    match (st.session_idle_timeout, st.sessions.get(r)) {
        (Some(limit), Some(s)) => now.saturating_duration_since(s.last_active) > limit,
        _ => false,
    }
}

/// Marks session `r` used now. Returns false, after destroying it, when it sat idle too long;
/// also false when there is no such session.
pub fn touch(st: &mut State, r: &str) -> bool {
    let now = Instant::now();
    if expired(st, r, now) {
        destroy(st, r);
        return false;
    }
    let Some(s) = st.sessions.get_mut(r) else {
        return false;
    };
    s.last_active = now;
    if now.saturating_duration_since(s.last_written) >= LAST_ACTIVE_WRITE {
        s.last_written = now;
        let sc = st.db.class_index("session");
        st.db
            .set(sc, r, "last_active", Value::DateTime(DateTime::now()));
    }
    true
}

/// Destroys every session idle for too long (run at login, so they cannot pile up).
pub fn sweep(st: &mut State) {
    let now = Instant::now();
    let stale: Vec<String> = st
        .sessions
        .keys()
        .filter(|r| expired(st, r, now))
        .cloned()
        .collect();
    for r in stale {
        destroy(st, &r);
    }
}

/// Forgets a session: its record, its legacy event registration.
pub fn destroy(st: &mut State, r: &str) {
    st.sessions.remove(r);
    st.registrations.remove(r);
    let sc = st.db.class_index("session");
    st.db.destroy(sc, r);
}
