//! Call routing as xapi does it: method lookup in the datamodel, parameter count and types,
//! session and pool-role checks, then a custom handler or an implicit message.

use std::sync::{Arc, OnceLock};

use super::datamodel::{Class, Datamodel, Message, Qualifier, Ty};
use super::state::{Session, Shared, State, MAX_ANONYMOUS_SESSIONS, MAX_SESSIONS_PER_ORIGINATOR};
use super::{events, implicit, ops, session_idle, tasks};
use crate::model::{ApiFailure, DateTime, Struct, Value};
use crate::rpc::Outcome;

/// What a handler sees: the locked state and who is calling.
pub struct Cx<'a> {
    pub st: &'a mut State,
    pub shared: &'a Arc<Shared>,
    pub session: Option<String>,
    /// The task this call runs under (async forms).
    pub task: Option<String>,
}

pub type Handler = fn(&mut Cx, &[Value]) -> Outcome<Value>;

#[derive(Clone, Copy)]
pub enum Action {
    Custom(Handler),
    Implicit(implicit::Implicit),
}

pub fn fail(code: &str, params: &[&str]) -> ApiFailure {
    ApiFailure::new(code, params.iter().map(|s| s.to_string()).collect())
}

pub fn void() -> Outcome<Value> {
    Ok(Value::String(String::new()))
}

/// Classes whose messages have no `Async.` form (the message API is synchronous too).
const NO_ASYNC_CLASSES: &[&str] = &[
    "session",
    "event",
    "task",
    "data_source",
    "blob",
    "user",
    "auth",
    "message",
];

/// Whether `Async.<class>.<msg>` exists: custom messages and implicit constructors and
/// destructors, never record reads (XO derives class names from `*.get_all_records`).
pub fn has_async(class: &Class, msg: &Message) -> bool {
    let reader = matches!(
        msg.name.as_str(),
        "get_all" | "get_all_records" | "get_record" | "get_by_uuid" | "get_all_records_where"
    );
    !NO_ASYNC_CLASSES.contains(&class.name.as_str())
        && !reader
        && (!msg.implicit || msg.name == "create" || msg.name == "destroy")
}

/// Finds how a message is served, if it is.
pub fn resolve(class: &Class, msg: &Message) -> Option<Action> {
    if let Some(h) = ops::handler(&class.name, &msg.name) {
        return Some(Action::Custom(h));
    }
    implicit::resolve(class, msg).map(Action::Implicit)
}

/// `system.listMethods`: every served method, with `Async.` forms.
pub fn list_methods() -> &'static [String] {
    static LIST: OnceLock<Vec<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        let dm = Datamodel::get();
        let mut out = vec!["system.listMethods".to_owned()];
        for c in &dm.classes {
            for m in &c.messages {
                if resolve(c, m).is_some() {
                    out.push(format!("{}.{}", c.name, m.name));
                    if has_async(c, m) {
                        out.push(format!("Async.{}.{}", c.name, m.name));
                    }
                }
            }
        }
        out
    })
}

/// Entry point for every call, from HTTP or in-process. `host` is the index of the host the
/// call arrived at.
pub fn call(shared: &Arc<Shared>, host: usize, method: &str, params: Vec<Value>) -> Outcome<Value> {
    let latency = shared.faults().latency;
    if !latency.is_zero() {
        std::thread::sleep(latency);
    }
    if let Some(f) = shared.faults().take_method_error(method) {
        return Err(f);
    }
    if method == "system.listMethods" {
        return Ok(Value::Array(
            list_methods()
                .iter()
                .map(|m| Value::String(m.clone()))
                .collect(),
        ));
    }
    let unknown = || fail("MESSAGE_METHOD_UNKNOWN", &[method]);
    let (is_async, name) = match method.strip_prefix("Async.") {
        Some(rest) => (true, rest),
        None => (false, method),
    };
    let (cname, mname) = name.split_once('.').ok_or_else(unknown)?;
    let dm = Datamodel::get();
    let class = dm.class(cname).ok_or_else(unknown)?;
    let msg = class.message(mname).ok_or_else(unknown)?;
    let action = resolve(class, msg).ok_or_else(unknown)?;
    if is_async && !has_async(class, msg) {
        return Err(unknown());
    }
    let required = msg.params.iter().filter(|p| p.required).count();
    if params.len() < required || params.len() > msg.params.len() {
        return Err(fail(
            "MESSAGE_PARAMETER_COUNT_MISMATCH",
            &[
                method,
                &msg.params.len().to_string(),
                &params.len().to_string(),
            ],
        ));
    }
    match name {
        "session.login_with_password" => return login(shared, host, &params, false),
        "session.slave_local_login_with_password" => return login(shared, host, &params, true),
        "event.from" => return events::from(shared, host, &params, msg),
        "event.next" => return events::next(shared, host, &params),
        _ => {}
    }
    let mut st = shared.lock();
    let session = if msg.session {
        Some(check_session(&mut st, host, &params[0])?)
    } else {
        None
    };
    let skip = usize::from(msg.session);
    let mut args = Vec::with_capacity(params.len());
    for (p, v) in msg
        .params
        .iter()
        .skip(skip)
        .zip(params.into_iter().skip(skip))
    {
        args.push(coerce(dm, &p.ty, v).ok_or_else(|| fail("FIELD_TYPE_ERROR", &[&p.name]))?);
    }
    // Optional parameters left out take their type's zero, so handlers see every position.
    for p in msg.params.iter().skip(skip + args.len()) {
        args.push(dm.zero(&p.ty));
    }
    let result = if is_async {
        tasks::spawn(shared, &mut st, session, method, class, msg, action, args)
    } else {
        let mut cx = Cx {
            st: &mut st,
            shared,
            session,
            task: None,
        };
        run(&mut cx, class, action, &args)
    };
    drop(st);
    shared.changed.notify_all();
    result
}

pub fn run(cx: &mut Cx, class: &Class, action: Action, args: &[Value]) -> Outcome<Value> {
    match action {
        Action::Custom(h) => h(cx, args),
        Action::Implicit(i) => implicit::run(cx, class, i, args),
    }
}

/// Validates a session for a call arriving at `host`, and marks it used.
pub fn check_session(st: &mut State, host: usize, v: &Value) -> Result<String, ApiFailure> {
    let r = v.as_str().unwrap_or_default();
    let usable = st.sessions.get(r).map(|s| {
        if host != st.master {
            // A member only serves its own emergency (local) sessions.
            s.local && s.host == host
        } else {
            !s.local || s.host == host
        }
    });
    match usable {
        Some(true) if session_idle::touch(st, r) => Ok(r.to_owned()),
        _ if host != st.master => Err(fail("HOST_IS_SLAVE", &[&st.master_address()])),
        _ => Err(fail("SESSION_INVALID", &[r])),
    }
}

fn login(shared: &Arc<Shared>, host: usize, params: &[Value], local: bool) -> Outcome<Value> {
    let mut st = shared.lock();
    if !local && host != st.master {
        return Err(fail("HOST_IS_SLAVE", &[&st.master_address()]));
    }
    let uname = params
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| fail("FIELD_TYPE_ERROR", &["uname"]))?;
    let pwd = params
        .get(1)
        .and_then(Value::as_str)
        .ok_or_else(|| fail("FIELD_TYPE_ERROR", &["pwd"]))?;
    let originator = params
        .get(3)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !st.users.iter().any(|(u, p)| u == uname && p == pwd) {
        return Err(fail(
            "SESSION_AUTHENTICATION_FAILED",
            &[uname, "Authentication failure"],
        ));
    }
    session_idle::sweep(&mut st);
    let r = format!("OpaqueRef:{}", secret_uuid());
    let class = st.db.class_index("session");
    let host_ref = st.hosts.get(host).map(|h| h.r.clone()).unwrap_or_default();
    st.db.create(
        class,
        Some(r.clone()),
        None,
        vec![
            ("this_host", Value::String(host_ref)),
            ("last_active", Value::DateTime(DateTime::now())),
            ("validation_time", Value::DateTime(DateTime::now())),
            ("is_local_superuser", Value::Bool(uname == "root")),
            ("auth_user_name", Value::String(uname.to_owned())),
            ("originator", Value::String(originator.clone())),
        ],
    );
    // Over xapi's limit, the oldest session of the same originator goes.
    let limit = if originator.is_empty() {
        MAX_ANONYMOUS_SESSIONS
    } else {
        MAX_SESSIONS_PER_ORIGINATOR
    };
    let same: Vec<(&String, u64)> = st
        .sessions
        .iter()
        .filter(|(_, s)| s.originator == originator)
        .map(|(r, s)| (r, s.seq))
        .collect();
    if same.len() >= limit {
        if let Some(oldest) = same
            .iter()
            .min_by_key(|(_, seq)| *seq)
            .map(|(r, _)| (*r).clone())
        {
            st.sessions.remove(&oldest);
            st.db.destroy(class, &oldest);
        }
    }
    st.session_seq += 1;
    let seq = st.session_seq;
    st.sessions.insert(
        r.clone(),
        Session {
            host,
            local,
            originator,
            seq,
            last_active: std::time::Instant::now(),
            last_written: std::time::Instant::now(),
        },
    );
    Ok(Value::String(r))
}

/// A uuid from the OS random generator: session refs are credentials.
pub fn secret_uuid() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        // No OS randomness: fall back to time-derived bytes rather than fail the login.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = t.to_le_bytes();
    }
    super::db::format_uuid(b)
}

/// Checks and normalises a parameter against its datamodel type, as xapi's unmarshaller does
/// (ints and floats from strings, enums case-insensitively, records with defaults).
pub fn coerce(dm: &Datamodel, ty: &Ty, v: Value) -> Option<Value> {
    Some(match ty {
        Ty::String | Ty::Ref(_) => match v {
            Value::String(s) => Value::String(s),
            _ => return None,
        },
        Ty::Int => Value::Int(v.as_i64()?),
        Ty::Float => Value::Double(v.as_f64()?),
        Ty::Bool => Value::Bool(v.as_bool()?),
        Ty::DateTime => match v {
            Value::DateTime(d) => Value::DateTime(d),
            Value::String(s) => Value::DateTime(DateTime::parse(&s).ok()?),
            _ => return None,
        },
        Ty::Enum(e) => {
            let s = v.as_str()?;
            let values = dm.enum_values(e)?;
            Value::String(values.iter().find(|x| x.eq_ignore_ascii_case(s))?.clone())
        }
        Ty::Set(inner) => match v {
            Value::Array(a) => Value::Array(
                a.into_iter()
                    .map(|x| coerce(dm, inner, x))
                    .collect::<Option<_>>()?,
            ),
            _ => return None,
        },
        Ty::Map(k, val) => match v {
            Value::Struct(s) => {
                let mut out = Struct::new();
                for (key, x) in s.0 {
                    let key = match coerce(dm, k, Value::String(key))? {
                        Value::Int(i) => i.to_string(),
                        Value::String(s) => s,
                        _ => return None,
                    };
                    out.0.push((key, coerce(dm, val, x)?));
                }
                Value::Struct(out)
            }
            _ => return None,
        },
        Ty::Record(c) => match v {
            Value::Struct(s) => {
                let class = dm.class(c)?;
                let mut out = Struct::new();
                for (key, x) in s.0 {
                    // Unknown fields are ignored, as xapi's record parser does.
                    if let Some(f) = class.field(&key) {
                        out.0.push((key, coerce(dm, &f.ty, x)?));
                    }
                }
                Value::Struct(out)
            }
            _ => return None,
        },
        Ty::Option(inner) => match v {
            Value::Nil => Value::Nil,
            x => coerce(dm, inner, x)?,
        },
    })
}

/// Fields a constructor accepts (read-write and static read-only).
pub fn settable_at_create(class: &Class, field: &str) -> bool {
    class
        .field(field)
        .is_some_and(|f| f.qualifier != Qualifier::DynamicRo)
}

/// Fails with `HANDLE_INVALID [class, ref]` unless the object exists.
pub fn check_ref(st: &State, class: &str, r: &Value) -> Result<String, ApiFailure> {
    let s = r.as_str().unwrap_or_default();
    let ci = st.db.class_index(class);
    if st.db.exists(ci, s) {
        Ok(s.to_owned())
    } else {
        Err(fail("HANDLE_INVALID", &[class, s]))
    }
}
