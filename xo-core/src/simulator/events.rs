//! `event.from` and `event.inject` with xapi's semantics: `%020d,%020d` tokens, per-object
//! coalescing, `del` without snapshot, long-poll until a change or the timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::datamodel::{Datamodel, Message};
use super::db::{record_of, Change, Db};
use super::dispatch::{check_session, coerce, fail, Cx};
use super::state::{Registration, Shared, State};
use crate::model::{ApiFailure, Struct, Value};
use crate::rpc::Outcome;

#[derive(Clone, Debug, PartialEq)]
enum Sub {
    All,
    Class(usize),
    Object(usize, String),
}

fn parse_subs(dm: &Datamodel, classes: &[Value]) -> Result<Vec<Sub>, String> {
    let mut subs = Vec::new();
    for c in classes {
        let s = c.as_str().unwrap_or_default();
        if s == "*" {
            subs.push(Sub::All);
            continue;
        }
        let (name, obj) = match s.split_once('/') {
            Some((n, r)) if !r.is_empty() && !r.contains('/') => (n, Some(r)),
            Some(_) => return Err(s.to_owned()),
            None => (s, None),
        };
        if name.is_empty() {
            return Err(s.to_owned());
        }
        // An unknown class name is accepted and simply matches nothing, as in xapi.
        let Some(ci) = dm.index_lower(name) else {
            continue;
        };
        subs.push(match obj {
            Some(r) => Sub::Object(ci, r.to_owned()),
            None => Sub::Class(ci),
        });
    }
    Ok(subs)
}

fn matches(subs: &[Sub], class: usize, r: &str) -> bool {
    subs.iter().any(|s| match s {
        Sub::All => true,
        Sub::Class(c) => *c == class,
        Sub::Object(c, o) => *c == class && o == r,
    })
}

fn subscribed_classes(dm: &Datamodel, subs: &[Sub]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for s in subs {
        match s {
            Sub::All => out.extend((0..dm.classes.len()).filter(|&i| dm.classes[i].gen_events)),
            Sub::Class(c) | Sub::Object(c, _) => out.push(*c),
        }
    }
    out.sort_unstable();
    out.dedup();
    out.retain(|&c| dm.classes[c].gen_events);
    out
}

/// Parses `%020d,%020d` (also a bare generation); `""` means from the beginning.
fn parse_token(t: &str) -> Option<Option<u64>> {
    if t.is_empty() {
        return Some(None);
    }
    let first = t.split_once(',').map_or(t, |(a, b)| {
        if b.trim().parse::<u64>().is_ok() {
            a
        } else {
            ""
        }
    });
    first.trim().parse::<u64>().ok().map(Some)
}

pub fn token(st: &State) -> String {
    format!("{:020},{:020}", st.db.generation, st.message_gen)
}

fn event(db: &Db, id: u64, class: usize, op: &str, r: &str, with_snapshot: bool) -> Value {
    let c = &db.dm.classes[class];
    let mut ev = Struct(vec![
        ("id".into(), Value::String(id.to_string())),
        ("timestamp".into(), Value::String("0.0".into())),
        ("class".into(), Value::String(c.lower.clone())),
        ("operation".into(), Value::String(op.into())),
        ("ref".into(), Value::String(r.to_owned())),
    ]);
    if with_snapshot {
        if let Some(o) = db.tables[class].objs.get(r) {
            ev.0.push(("snapshot".into(), Value::Struct(record_of(c, o))));
        }
    }
    Value::Struct(ev)
}

/// Events since generation `from` (None: every object as `add`) for the subscriptions.
fn collect(db: &Db, subs: &[Sub], classes: &[usize], from: Option<u64>) -> Vec<Value> {
    let mut out = Vec::new();
    let scan = |out: &mut Vec<Value>, since: u64| {
        for &c in classes {
            for (r, o) in &db.tables[c].objs {
                if o.modified > since && matches(subs, c, r) {
                    let op = if o.created > since { "add" } else { "mod" };
                    out.push(event(db, o.modified, c, op, r, true));
                }
            }
        }
    };
    let g = match from {
        None => {
            scan(&mut out, 0);
            return out;
        }
        Some(g) if g < db.log_floor => {
            scan(&mut out, g);
            return out;
        }
        Some(g) => g,
    };
    let start = db.log.partition_point(|(gen, _)| *gen <= g);
    // Last change per object wins; the order of first appearance is kept.
    let mut last: HashMap<(usize, &str), usize> = HashMap::new();
    let mut order: Vec<(usize, &str)> = Vec::new();
    for (i, (_, ch)) in db.log[start..].iter().enumerate() {
        let key = ch.key();
        if !matches(subs, key.0, key.1) {
            continue;
        }
        if last.insert(key, start + i).is_none() {
            order.push(key);
        }
    }
    for key in order {
        let (gen, ch) = &db.log[last[&key]];
        match ch {
            Change::Touch { class, r } => {
                if let Some(o) = db.tables[*class].objs.get(r) {
                    let op = if o.created > g { "add" } else { "mod" };
                    out.push(event(db, *gen, *class, op, r, true));
                }
            }
            Change::Deleted { class, r, created } => {
                if *created <= g {
                    out.push(event(db, *gen, *class, "del", r, false));
                }
            }
        }
    }
    out
}

pub fn from(shared: &Arc<Shared>, host: usize, params: &[Value], msg: &Message) -> Outcome<Value> {
    let dm = Datamodel::get();
    let mut st = shared.lock();
    check_session(&mut st, host, &params[0])?;
    let classes = coerce(dm, &msg.params[1].ty, params[1].clone())
        .ok_or_else(|| fail("FIELD_TYPE_ERROR", &["classes"]))?;
    let tok = params[2]
        .as_str()
        .ok_or_else(|| fail("FIELD_TYPE_ERROR", &["token"]))?;
    // A timeout that cannot be read means a day, as in xapi.
    let timeout = params[3]
        .as_f64()
        .filter(|t| t.is_finite() && *t >= 0.0)
        .unwrap_or(86400.0)
        .min(86400.0);
    let subs = parse_subs(dm, classes.as_array().unwrap_or_default())
        .map_err(|s| fail("EVENT_SUBSCRIPTION_PARSE_FAILURE", &[&s]))?;
    let from = parse_token(tok).ok_or_else(|| fail("EVENT_FROM_TOKEN_PARSE_FAILURE", &[tok]))?;
    let class_list = subscribed_classes(dm, &subs);
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    let session = params[0].as_str().unwrap_or_default().to_owned();
    let mut since = from;
    // Set once the call has had to wait: the first change it sees then starts the batching
    // delay (xapi's `event_from_delay`), so that a burst comes back in one reply.
    let mut waited = false;
    loop {
        let events = collect(&st.db, &subs, &class_list, since);
        let now = Instant::now();
        let delay = st.event_from_delay;
        if waited && !events.is_empty() && !delay.is_zero() {
            waited = false;
            let until = (now + delay).min(deadline);
            drop(st);
            std::thread::sleep(until.saturating_duration_since(now));
            st = shared.lock();
            check_alive(shared, &st, &session)?;
            continue;
        }
        if !events.is_empty() || since.is_none() || now >= deadline {
            // xapi's counts are Int32s, so XML-RPC carries them as `<i4>` (its only tagged
            // ints); clients compare them as numbers.
            let counts = class_list
                .iter()
                .map(|&c| {
                    let n = i32::try_from(st.db.count(c)).unwrap_or(i32::MAX);
                    (dm.classes[c].lower.clone(), Value::Int32(n))
                })
                .collect::<Struct>();
            return Ok(Value::Struct(Struct(vec![
                ("events".into(), Value::Array(events)),
                ("valid_ref_counts".into(), Value::Struct(counts)),
                ("token".into(), Value::String(token(&st))),
            ])));
        }
        // Nothing yet: later calls only need changes after what we have seen.
        since = Some(st.db.generation.max(since.unwrap_or(0)));
        st = shared
            .changed
            .wait_timeout(st, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        waited = true;
        check_alive(shared, &st, &session)?;
    }
}

/// After a wait: the session may have been destroyed, or the simulator stopped.
fn check_alive(shared: &Shared, st: &State, session: &str) -> Result<(), ApiFailure> {
    if !st.sessions.contains_key(session) {
        return Err(fail("SESSION_INVALID", &[session]));
    }
    if shared.stopped.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(fail("INTERNAL_ERROR", &["the simulator is stopping"]));
    }
    Ok(())
}

/// Legacy `event.register(classes)`: adds classes to the session's subscription.
pub fn register(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let dm = cx.st.db.dm;
    let list = args[0].as_array().unwrap_or_default();
    parse_subs(dm, list).map_err(|s| fail("EVENT_SUBSCRIPTION_PARSE_FAILURE", &[&s]))?;
    let session = cx.session.clone().unwrap_or_default();
    let since = cx.st.db.generation;
    let reg = cx.st.registrations.entry(session).or_insert(Registration {
        classes: Vec::new(),
        since,
        next_id: 0,
    });
    for c in list.iter().filter_map(Value::as_str) {
        if !reg.classes.iter().any(|x| x == c) {
            reg.classes.push(c.to_owned());
        }
    }
    Ok(Value::String(String::new()))
}

/// Legacy `event.unregister(classes)`.
pub fn unregister(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let session = cx.session.clone().unwrap_or_default();
    let list: Vec<&str> = args[0]
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if let Some(reg) = cx.st.registrations.get_mut(&session) {
        reg.classes.retain(|c| !list.contains(&c.as_str()));
        if reg.classes.is_empty() {
            cx.st.registrations.remove(&session);
        }
    }
    Ok(Value::String(String::new()))
}

/// Legacy `event.next()`: blocks until a registered class changes. Events carry counter ids
/// and the current time as timestamp; a subscription that fell behind gets `EVENTS_LOST`.
pub fn next(shared: &Arc<Shared>, host: usize, params: &[Value]) -> Outcome<Value> {
    let dm = Datamodel::get();
    let mut st = shared.lock();
    let session = check_session(&mut st, host, &params[0])?;
    loop {
        let floor = st.db.log_floor;
        let generation = st.db.generation;
        let Some(reg) = st.registrations.get_mut(&session) else {
            return Err(fail("SESSION_NOT_REGISTERED", &[&session]));
        };
        if reg.since < floor {
            reg.since = generation;
            return Err(fail("EVENTS_LOST", &[]));
        }
        let list: Vec<Value> = reg
            .classes
            .iter()
            .map(|c| Value::String(c.clone()))
            .collect();
        let since = reg.since;
        let subs = parse_subs(dm, &list).unwrap_or_default();
        let classes = subscribed_classes(dm, &subs);
        let mut events = collect(&st.db, &subs, &classes, Some(since));
        if !events.is_empty() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            let reg = st
                .registrations
                .get_mut(&session)
                .ok_or_else(|| fail("SESSION_NOT_REGISTERED", &[&session]))?;
            reg.since = generation;
            for ev in &mut events {
                if let Value::Struct(s) = ev {
                    reg.next_id += 1;
                    s.insert("id", Value::String(reg.next_id.to_string()));
                    s.insert("timestamp", Value::String(format!("{now:.6}")));
                }
            }
            return Ok(Value::Array(events));
        }
        st = shared
            .changed
            .wait_timeout(st, Duration::from_secs(1))
            .unwrap_or_else(|e| e.into_inner())
            .0;
        if !st.sessions.contains_key(&session) {
            return Err(fail("SESSION_INVALID", &[&session]));
        }
        if shared.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(fail("INTERNAL_ERROR", &["the simulator is stopping"]));
        }
    }
}

/// `event.inject(class, ref)`: touches the object and returns a token just before the change.
pub fn inject(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let class = args[0].as_str().unwrap_or_default();
    let r = args[1].as_str().unwrap_or_default();
    let dm = cx.st.db.dm;
    let ci = dm
        .index(class)
        .or_else(|| dm.index_lower(class))
        .ok_or_else(|| fail("HANDLE_INVALID", &[class, r]))?;
    if !cx.st.db.touch(ci, r) {
        return Err(fail("HANDLE_INVALID", &[class, r]));
    }
    Ok(Value::String(format!(
        "{:020},{:020}",
        cx.st.db.generation - 1,
        cx.st.message_gen
    )))
}

pub fn get_current_id(cx: &mut Cx, _: &[Value]) -> Outcome<Value> {
    Ok(Value::Int(cx.st.db.generation as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert_eq!(parse_token(""), Some(None));
        assert_eq!(
            parse_token("00000000000000000012,00000000000000000000"),
            Some(Some(12))
        );
        assert_eq!(parse_token("12"), Some(Some(12)));
        assert_eq!(parse_token("abc"), None);
        assert_eq!(parse_token("1,x"), None);
    }

    #[test]
    fn subscriptions() {
        let dm = Datamodel::get();
        let vm = dm.index("VM").unwrap();
        let subs = parse_subs(
            dm,
            &[
                Value::from("vm"),
                Value::from("VM/OpaqueRef:x"),
                Value::from("*"),
            ],
        )
        .unwrap();
        assert_eq!(
            subs,
            vec![
                Sub::Class(vm),
                Sub::Object(vm, "OpaqueRef:x".into()),
                Sub::All
            ]
        );
        assert!(parse_subs(dm, &[Value::from("vm/")]).is_err());
        assert!(parse_subs(dm, &[Value::from("vm/a/b")]).is_err());
        assert!(parse_subs(dm, &[Value::from("")]).is_err());
    }
}
