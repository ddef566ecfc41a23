//! Test support: a scripted XAPI behind the client's transport seam, with xapi's `event.from`
//! semantics (generations, coalescing, `del` only for objects older than the token). The
//! watcher tests use it to produce exact event sequences (a create and destroy between two
//! polls, forgotten history, malformed batches) that the simulator has no way to script; all
//! else is tested against the simulator. It only knows the handful of calls the watcher makes.
#![allow(dead_code)] // each test file uses part of it

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use std::sync::Arc;

use xo_core::client::{
    Client, ClientConfig, Request, Response, Transport, TransportError, TransportKind,
};
use xo_core::model::{ApiFailure, Struct, Value};
use xo_core::rpc::{jsonrpc, Limits, Protocol};

/// Why a scripted call failed.
enum Failure {
    Api(ApiFailure),
    Transport,
}

impl From<ApiFailure> for Failure {
    fn from(f: ApiFailure) -> Self {
        Failure::Api(f)
    }
}

fn api(code: &str) -> Failure {
    Failure::Api(ApiFailure::new(code, Vec::<String>::new()))
}

/// A logged-in client over `src` (JSON-RPC, no probing).
pub fn client(src: &Arc<MemorySource>) -> Client {
    let config = ClientConfig::new("http://127.0.0.1")
        .with_plain_http(true)
        .with_protocol(Protocol::JsonRpcV2)
        .with_transport(src.clone());
    Client::connect(config, "root", "pw").expect("login on the memory XAPI")
}

/// A scripted failure for upcoming calls.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The next call fails at the transport level.
    Transport,
    /// The session is destroyed: calls fail with `SESSION_INVALID` until `relogin`.
    ExpireSession,
    /// The next call fails with this API error code.
    Api(String),
}

struct Row {
    class: String,
    record: Struct,
    created: u64,
    modified: u64,
}

struct Tomb {
    class: String,
    ref_: String,
    created: u64,
    deleted: u64,
}

#[derive(Default)]
struct Db {
    generation: u64,
    /// Lower-case class → ref → row.
    tables: BTreeMap<String, BTreeMap<String, Row>>,
    tombs: Vec<Tomb>,
    /// Tokens older than this get `EVENTS_LOST` (deletions before it were forgotten).
    horizon: u64,
    session_valid: bool,
    faults: VecDeque<Fault>,
    next_id: u64,
    relogins: u64,
    logins: u64,
    calls: u64,
}

/// See the module docs.
pub struct MemorySource {
    db: Mutex<Db>,
    changed: Condvar,
}

impl Default for MemorySource {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySource {
    /// An empty database holding one pool object.
    pub fn new() -> Self {
        let src = MemorySource {
            db: Mutex::new(Db {
                session_valid: true,
                ..Db::default()
            }),
            changed: Condvar::new(),
        };
        src.create("pool", Struct(vec![("name_label".into(), "pool".into())]));
        src
    }

    fn lock(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an object; fills `uuid` when missing. Returns its ref.
    pub fn create(&self, class: &str, mut record: Struct) -> String {
        let mut db = self.lock();
        db.next_id += 1;
        db.generation += 1;
        let (id, g) = (db.next_id, db.generation);
        let ref_ = format!("OpaqueRef:{id:08x}-0000-4000-8000-{:012x}", id);
        if record.get("uuid").is_none() {
            record.insert(
                "uuid",
                format!("{id:08x}-1111-4000-8000-{:012x}", id).into(),
            );
        }
        let row = Row {
            class: class.to_owned(),
            record,
            created: g,
            modified: g,
        };
        db.tables
            .entry(class.to_ascii_lowercase())
            .or_default()
            .insert(ref_.clone(), row);
        drop(db);
        self.changed.notify_all();
        ref_
    }

    /// Changes an object's record; false if it does not exist.
    pub fn modify(&self, class: &str, r: &str, f: impl FnOnce(&mut Struct)) -> bool {
        let mut db = self.lock();
        db.generation += 1;
        let g = db.generation;
        let Some(row) = db
            .tables
            .get_mut(&class.to_ascii_lowercase())
            .and_then(|t| t.get_mut(r))
        else {
            return false;
        };
        f(&mut row.record);
        row.modified = g;
        drop(db);
        self.changed.notify_all();
        true
    }

    /// Removes an object; false if it does not exist.
    pub fn destroy(&self, class: &str, r: &str) -> bool {
        let mut db = self.lock();
        let Some(row) = db
            .tables
            .get_mut(&class.to_ascii_lowercase())
            .and_then(|t| t.remove(r))
        else {
            return false;
        };
        db.generation += 1;
        let deleted = db.generation;
        db.tombs.push(Tomb {
            class: row.class,
            ref_: r.to_owned(),
            created: row.created,
            deleted,
        });
        drop(db);
        self.changed.notify_all();
        true
    }

    /// Refs of a class, sorted.
    pub fn refs(&self, class: &str) -> Vec<String> {
        self.lock()
            .tables
            .get(&class.to_ascii_lowercase())
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every `(ref, record)` of a class, bypassing faults (for checking a cache against).
    pub fn records(&self, class: &str) -> Vec<(String, Value)> {
        let db = self.lock();
        let t = db.tables.get(&class.to_ascii_lowercase());
        t.map(|t| {
            t.iter()
                .map(|(r, row)| (r.clone(), Value::Struct(row.record.clone())))
                .collect()
        })
        .unwrap_or_default()
    }

    /// Queues a fault for the next call.
    pub fn inject_fault(&self, f: Fault) {
        self.lock().faults.push_back(f);
    }

    /// Forgets deletion history: tokens from before now get `EVENTS_LOST`.
    pub fn forget_history(&self) {
        let mut db = self.lock();
        db.horizon = db.generation;
        db.tombs.clear();
    }

    pub fn relogins(&self) -> u64 {
        self.lock().relogins
    }

    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    fn event_from(&self, mut db: MutexGuard<'_, Db>, params: &[Value]) -> Result<Value, Failure> {
        let classes: Vec<String> = params
            .first()
            .and_then(Value::as_array)
            .unwrap_or(&[])
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect();
        let token = params.get(1).and_then(Value::as_str).unwrap_or("");
        let timeout = params
            .get(2)
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
            .clamp(0.0, 86400.0);
        let since = parse_token(token).ok_or_else(|| api("EVENT_FROM_TOKEN_PARSE_FAILURE"))?;
        if since < db.horizon {
            return Err(api("EVENTS_LOST"));
        }
        let all = classes.iter().any(|c| c == "*");
        let whole: HashSet<&str> = classes
            .iter()
            .filter(|c| !c.contains('/'))
            .map(String::as_str)
            .collect();
        let objects: HashSet<(&str, &str)> =
            classes.iter().filter_map(|c| c.split_once('/')).collect();
        let wants = |class: &str, r: &str| {
            all || whole.contains(class)
                || objects
                    .iter()
                    .any(|(c, o)| *c == class && o.eq_ignore_ascii_case(r))
        };
        let deadline = Instant::now() + Duration::from_secs_f64(timeout);
        loop {
            let mut events: Vec<(u64, Value)> = Vec::new();
            for (lc, table) in &db.tables {
                for (r, row) in table
                    .iter()
                    .filter(|(r, row)| row.modified > since && wants(lc, r))
                {
                    let op = if row.created > since { "add" } else { "mod" };
                    events.push((row.modified, event(lc, op, r, Some(&row.record))));
                }
            }
            for t in db
                .tombs
                .iter()
                .filter(|t| t.deleted > since && t.created <= since)
            {
                let lc = t.class.to_ascii_lowercase();
                if wants(&lc, &t.ref_) {
                    events.push((t.deleted, event(&lc, "del", &t.ref_, None)));
                }
            }
            let now = Instant::now();
            if !events.is_empty() || now >= deadline {
                events.sort_by_key(|(g, _)| *g);
                let counts = db
                    .tables
                    .iter()
                    // Int32, as xapi's counts are.
                    .map(|(c, t)| {
                        let n = i32::try_from(t.len()).unwrap_or(i32::MAX);
                        (c.clone(), Value::Int32(n))
                    })
                    .collect();
                return Ok(Value::Struct(Struct(vec![
                    (
                        "events".into(),
                        Value::Array(events.into_iter().map(|(_, e)| e).collect()),
                    ),
                    ("valid_ref_counts".into(), Value::Struct(counts)),
                    (
                        "token".into(),
                        format!("{:020},{:020}", db.generation, 0).into(),
                    ),
                ])));
            }
            db = self
                .changed
                .wait_timeout(db, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

fn event(class: &str, op: &str, r: &str, snapshot: Option<&Struct>) -> Value {
    let mut s = Struct(vec![
        ("id".into(), "0".into()),
        ("timestamp".into(), "0.0".into()),
        ("class".into(), class.into()),
        ("operation".into(), op.into()),
        ("ref".into(), r.into()),
    ]);
    if let Some(snap) = snapshot {
        s.insert("snapshot", Value::Struct(snap.clone()));
    }
    Value::Struct(s)
}

/// `""` → 0; `"<gen>,<msg gen>"` → gen.
fn parse_token(t: &str) -> Option<u64> {
    if t.is_empty() {
        return Some(0);
    }
    let (g, m) = t.split_once(',')?;
    m.parse::<u64>().ok()?;
    g.parse().ok()
}

impl MemorySource {
    fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, Failure> {
        let mut db = self.lock();
        db.calls += 1;
        match db.faults.pop_front() {
            Some(Fault::Transport) => return Err(Failure::Transport),
            Some(Fault::ExpireSession) => db.session_valid = false,
            Some(Fault::Api(code)) => return Err(ApiFailure::new(code, vec![]).into()),
            None => {}
        }
        if !db.session_valid {
            return Err(api("SESSION_INVALID"));
        }
        let (class, msg) = method.split_once('.').unwrap_or((method, ""));
        let lc = class.to_ascii_lowercase();
        match (lc.as_str(), msg) {
            ("event", "from") => self.event_from(db, &params),
            ("event", "inject") => {
                let c = params
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_ascii_lowercase();
                let r = params.get(1).and_then(Value::as_str).unwrap_or("");
                db.generation += 1;
                let g = db.generation;
                let row = db.tables.get_mut(&c).and_then(|t| t.get_mut(r));
                let row = row.ok_or_else(|| {
                    ApiFailure::new("HANDLE_INVALID", vec![c.clone(), r.to_owned()])
                })?;
                row.modified = g;
                drop(db);
                self.changed.notify_all();
                Ok(format!("{:020},{:020}", g - 1, 0).into())
            }
            (_, "get_all") => Ok(Value::Array(
                db.tables
                    .get(&lc)
                    .map(|t| t.keys().map(|r| Value::from(r.as_str())).collect())
                    .unwrap_or_default(),
            )),
            (_, "get_all_records") => {
                let t = db.tables.get(&lc);
                Ok(Value::Struct(
                    t.map(|t| {
                        t.iter()
                            .map(|(r, row)| (r.clone(), Value::Struct(row.record.clone())))
                            .collect()
                    })
                    .unwrap_or_default(),
                ))
            }
            (_, "get_record") => {
                let r = params.first().and_then(Value::as_str).unwrap_or("");
                let row = db.tables.get(&lc).and_then(|t| t.get(r));
                let row = row.ok_or_else(|| {
                    ApiFailure::new("HANDLE_INVALID", vec![class.to_owned(), r.to_owned()])
                })?;
                Ok(Value::Struct(row.record.clone()))
            }
            _ => Err(ApiFailure::new("MESSAGE_METHOD_UNKNOWN", vec![method.to_owned()]).into()),
        }
    }

    fn login(&self) -> Value {
        let mut db = self.lock();
        if db.logins > 0 {
            db.relogins += 1;
        }
        db.logins += 1;
        db.session_valid = true;
        Value::from("OpaqueRef:memory-session")
    }

    /// Answers one JSON-RPC request body.
    fn answer(&self, body: &[u8]) -> Result<Vec<u8>, Failure> {
        let req = jsonrpc::decode_call(body, Limits::default())
            .map_err(|e| Failure::Api(ApiFailure::new("INTERNAL_ERROR", vec![e.to_string()])))?;
        let outcome = if req.method == "session.login_with_password" {
            Ok(self.login())
        } else {
            // The session ref comes first; the scripted calls do not look at it.
            match self.call(&req.method, req.params.into_iter().skip(1).collect()) {
                Ok(v) => Ok(v),
                Err(Failure::Api(f)) => Err(f),
                Err(Failure::Transport) => return Err(Failure::Transport),
            }
        };
        Ok(jsonrpc::encode_reply(&outcome, &req.id, req.version))
    }
}

impl MemorySource {
    /// Runs one call as the transport would (the session ref already removed).
    pub fn handle(&self, method: &str, params: Vec<Value>) -> Result<Value, ApiFailure> {
        match self.call(method, params) {
            Ok(v) => Ok(v),
            Err(Failure::Api(f)) => Err(f),
            Err(Failure::Transport) => Err(ApiFailure::new(
                "INTERNAL_ERROR",
                vec!["transport fault".to_owned()],
            )),
        }
    }
}

/// A call handler: method and params (after the session ref) in, xapi's answer out.
type Handler = dyn Fn(&str, Vec<Value>) -> Result<Value, ApiFailure> + Send + Sync;

/// A transport answering with `handler` (logins always succeed).
struct Scripted(Box<Handler>);

impl std::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scripted")
    }
}

impl Transport for Scripted {
    fn send(&self, request: &Request<'_>) -> Result<Response, TransportError> {
        let req = jsonrpc::decode_call(request.body, Limits::default())
            .map_err(|e| TransportError::new(TransportKind::Other, e.to_string()))?;
        let outcome = if req.method == "session.login_with_password" {
            Ok(Value::from("OpaqueRef:scripted-session"))
        } else {
            (self.0)(&req.method, req.params.into_iter().skip(1).collect())
        };
        let body = jsonrpc::encode_reply(&outcome, &req.id, req.version);
        Ok(Response::new(200, "application/json", body))
    }
}

/// A logged-in client whose every call is answered by `handler`.
pub fn scripted(
    handler: impl Fn(&str, Vec<Value>) -> Result<Value, ApiFailure> + Send + Sync + 'static,
) -> Client {
    let config = ClientConfig::new("http://127.0.0.1")
        .with_plain_http(true)
        .with_protocol(Protocol::JsonRpcV2)
        .with_transport(Scripted(Box::new(handler)));
    Client::connect(config, "root", "pw").expect("login on the scripted XAPI")
}

impl std::fmt::Debug for MemorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemorySource")
    }
}

impl Transport for MemorySource {
    fn send(&self, request: &Request<'_>) -> Result<Response, TransportError> {
        match self.answer(request.body) {
            Ok(body) => Ok(Response::new(200, "application/json", body)),
            Err(_) => Err(TransportError::new(
                TransportKind::Io,
                "connection reset (injected)",
            )),
        }
    }
}
