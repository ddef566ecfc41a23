//! xapi's XVA handlers: `GET /export?session_id&uuid|ref[&task_id]` and
//! `PUT /import?session_id[&sr_id][&task_id]`.
//!
//! As xapi: the session comes from the query or a `session_id` cookie and a bad one is answered
//! `401` with a Basic challenge; the work is reported on the client's `task_id` task (or a new
//! one), which ends with progress 1 and its result (`""` for export, the new VM refs for
//! import); the task ref is in the `task-id` reply header. Unlike xapi, the import reply body
//! also carries the task result, and a failure is answered `500` (xapi has sent its `200`
//! before reading the stream, so only the task shows it).
//!
//! The archive is [`super::xva`]'s fake XVA. An import of one rebuilds the VM (halted, new
//! uuid, its disks recreated on the target SR); any other non-empty body becomes a fresh VM
//! named `Imported VM`. Import bodies are bounded by `SimConfig::max_import_bytes` (`413`).
//! Not modelled: HTTP Basic auth, `use_compression` (the stream is never compressed),
//! `preserve_power_state`, `restore`/`force`, and redirecting to the host that has the disks.

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, WWW_AUTHENTICATE};
use hyper::StatusCode;

use super::datamodel::Ty;
use super::dispatch::{coerce, fail, settable_at_create, Cx};
use super::http::{internal_error, reply, Reply};
use super::state::{Shared, State};
use super::{storage, tasks, vm, vm_copy, xva};
use crate::model::{is_null_ref, ApiFailure, Struct, Value};

/// Default bound on an import body (our fake XVAs are a few KiB).
pub const DEFAULT_MAX_IMPORT: usize = 64 << 20;
/// A refused import body is read and dropped up to this many bytes, so the client gets the
/// reply instead of a reset while it is still sending; past it the connection is closed.
const DRAIN_CAP: u64 = 256 << 20;
/// Disks an imported document may describe.
const MAX_DISKS: usize = 256;

type Query = Vec<(String, String)>;

fn parse_query(q: &str) -> Query {
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

fn get<'a>(q: &'a Query, key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The session from the query, else from a `session_id` cookie.
fn session<'a>(q: &'a Query, cookie: &'a str) -> &'a str {
    get(q, "session_id")
        .or_else(|| {
            cookie
                .split(';')
                .find_map(|c| c.trim().strip_prefix("session_id="))
        })
        .unwrap_or_default()
}

fn authorised(st: &mut State, host: usize, session: &str) -> bool {
    st.sessions
        .get(session)
        .is_some_and(|s| !s.local || s.host == host)
        && super::session_idle::touch(st, session)
}

/// xapi's answer to a missing or invalid session (`Http.Unauthorised`).
fn unauthorised() -> Reply {
    let mut r = reply(StatusCode::UNAUTHORIZED, "text/plain", "Unauthorized\n");
    r.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"xapi\""),
    );
    r
}

fn too_large(limit: usize) -> Reply {
    reply(
        StatusCode::PAYLOAD_TOO_LARGE,
        "text/plain",
        format!("import body larger than the simulator's limit of {limit} bytes\n"),
    )
}

fn failed(f: &ApiFailure) -> Reply {
    internal_error(&f.to_description().join(" "))
}

fn with_task(mut r: Reply, task: &str) -> Reply {
    if let Ok(v) = HeaderValue::from_str(task) {
        r.headers_mut().insert("task-id", v);
    }
    r
}

/// The task to report on: the client's `task_id` when it names a pending task, else a new one.
fn task_for(st: &mut State, q: &Query, label: &str) -> String {
    let tc = st.db.class_index("task");
    match get(q, "task_id") {
        Some(t) if st.db.exists(tc, t) && st.db.get_str(tc, t, "status") == "pending" => {
            t.to_owned()
        }
        _ => tasks::new_task(st, label, ""),
    }
}

fn finish(shared: &Arc<Shared>, task: &str, outcome: Result<Value, ApiFailure>) {
    let mut st = shared.lock();
    tasks::finish(&mut st, task, outcome);
    drop(st);
    shared.changed.notify_all();
}

/// `GET /export`.
pub fn export(shared: &Arc<Shared>, host: usize, query: &str, cookie: &str) -> Reply {
    let q = parse_query(query);
    let (task, outcome) = {
        let mut st = shared.lock();
        if !authorised(&mut st, host, session(&q, cookie)) {
            return unauthorised();
        }
        let task = task_for(&mut st, &q, "VM.export");
        (task, archive(&st, &q))
    };
    match outcome {
        Ok(bytes) => {
            finish(shared, &task, Ok(Value::String(String::new())));
            let len = bytes.len();
            let mut r = reply(StatusCode::OK, "application/octet-stream", bytes);
            r.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(len));
            with_task(r, &task)
        }
        Err(f) => {
            let r = failed(&f);
            finish(shared, &task, Err(f));
            with_task(r, &task)
        }
    }
}

/// The fake XVA of the VM named by `ref` or `uuid`.
fn archive(st: &State, q: &Query) -> Result<Vec<u8>, ApiFailure> {
    let vc = st.db.class_index("VM");
    let vm = match (get(q, "ref"), get(q, "uuid")) {
        (Some(r), _) if st.db.exists(vc, r) => r.to_owned(),
        (Some(r), _) => return Err(fail("HANDLE_INVALID", &["VM", r])),
        (None, Some(u)) => st
            .db
            .by_uuid(vc, u)
            .cloned()
            .ok_or_else(|| fail("UUID_INVALID", &["VM", u]))?,
        (None, None) => return Err(fail("HANDLE_INVALID", &["VM", ""])),
    };
    if let Some(f) = vm::check_op(st, &vm, "export", None) {
        return Err(f);
    }
    let (bc, dc) = (st.db.class_index("VBD"), st.db.class_index("VDI"));
    let mut disks = Vec::new();
    for vbd in vm::refs_of(st, vc, &vm, "VBDs") {
        let vdi = st.db.get_str(bc, &vbd, "VDI");
        if st.db.get_str(bc, &vbd, "type") != "Disk" || !st.db.exists(dc, &vdi) {
            continue;
        }
        let mut d = Struct::new();
        for f in ["name_label", "name_description", "virtual_size", "type"] {
            d.insert(
                f.to_owned(),
                st.db.get(dc, &vdi, f).cloned().unwrap_or(Value::Nil),
            );
        }
        for f in ["userdevice", "bootable"] {
            d.insert(
                f.to_owned(),
                st.db.get(bc, &vbd, f).cloned().unwrap_or(Value::Nil),
            );
        }
        disks.push(Value::Struct(d));
    }
    let mut doc = Struct::new();
    doc.insert("format", Value::from(xva::FORMAT));
    doc.insert("version", Value::Int(1));
    doc.insert("vm", st.db.record(vc, &vm).unwrap_or(Value::Nil));
    doc.insert("disks", Value::Array(disks));
    let json = serde_json::to_vec(&Value::Struct(doc))
        .map_err(|e| fail("INTERNAL_ERROR", &[&e.to_string()]))?;
    xva::write(&json).map_err(|e| fail("INTERNAL_ERROR", &[&e.to_string()]))
}

enum BodyError {
    TooLarge,
    /// The connection broke or the refused body went past [`DRAIN_CAP`].
    Broken(String),
}

/// Reads the body into memory, up to `limit` bytes.
async fn read_bounded(
    mut body: Incoming,
    limit: usize,
    declared: Option<u64>,
) -> Result<Vec<u8>, BodyError> {
    if declared.is_some_and(|n| n > limit as u64) {
        drain(body).await?;
        return Err(BodyError::TooLarge);
    }
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if out.len().saturating_add(data.len()) > limit {
                drain(body).await?;
                return Err(BodyError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// Reads and drops the rest of a refused body, up to [`DRAIN_CAP`].
async fn drain(mut body: Incoming) -> Result<(), BodyError> {
    let mut seen = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len() as u64);
            if seen > DRAIN_CAP {
                return Err(BodyError::Broken("refused body too long to drain".into()));
            }
        }
    }
    Ok(())
}

/// `PUT /import`. An `Err` drops the connection.
pub async fn import(
    shared: Arc<Shared>,
    host: usize,
    query: String,
    cookie: String,
    declared: Option<u64>,
    body: Incoming,
) -> Result<Reply, std::io::Error> {
    let q = parse_query(&query);
    let started = {
        let mut st = shared.lock();
        if authorised(&mut st, host, session(&q, &cookie)) {
            Some((task_for(&mut st, &q, "VM.import"), st.max_import_bytes))
        } else {
            None
        }
    };
    let Some((task, limit)) = started else {
        drain(body).await.map_err(broken)?;
        return Ok(unauthorised());
    };
    shared.changed.notify_all();
    let bytes = match read_bounded(body, limit, declared).await {
        Ok(b) => b,
        Err(e) => {
            let detail = match &e {
                BodyError::TooLarge => format!("import body larger than {limit} bytes"),
                BodyError::Broken(why) => format!("import body: {why}"),
            };
            finish(&shared, &task, Err(fail("IMPORT_ERROR", &[&detail])));
            return match e {
                BodyError::TooLarge => Ok(with_task(too_large(limit), &task)),
                e => Err(broken(e)),
            };
        }
    };
    let outcome = {
        let mut st = shared.lock();
        let mut cx = Cx {
            st: &mut st,
            shared: &shared,
            session: None,
            task: Some(task.clone()),
        };
        rebuild(&mut cx, &q, &bytes)
    };
    match outcome {
        Ok(vm) => {
            let result = Value::Array(vec![Value::String(vm)]);
            let body = tasks::fragment(&result);
            finish(&shared, &task, Ok(result));
            Ok(with_task(reply(StatusCode::OK, "text/xml", body), &task))
        }
        Err(f) => {
            let r = failed(&f);
            finish(&shared, &task, Err(f));
            Ok(with_task(r, &task))
        }
    }
}

fn broken(e: BodyError) -> std::io::Error {
    match e {
        BodyError::TooLarge => std::io::Error::other("import body too large"),
        BodyError::Broken(s) => std::io::Error::other(s),
    }
}

/// Creates the VM an import body describes; returns its ref.
fn rebuild(cx: &mut Cx, q: &Query, bytes: &[u8]) -> Result<String, ApiFailure> {
    let import_error = |why: &str| fail("IMPORT_ERROR", &[why]);
    if bytes.is_empty() {
        return Err(import_error("empty import stream"));
    }
    let (record, disks) = match xva::read(bytes) {
        Some(member) => {
            document(cx.st, &member).ok_or_else(|| import_error("bad simulator XVA"))?
        }
        None => {
            let mut rec = Struct::new();
            rec.insert("name_label", Value::from("Imported VM"));
            let about = format!("imported from a {}-byte stream", bytes.len());
            rec.insert("name_description", Value::String(about));
            (rec, Vec::new())
        }
    };
    let sr = target_sr(cx.st, get(q, "sr_id"))?;
    let vm = match vm_copy::create(cx, &[Value::Struct(record)])? {
        Value::String(r) => r,
        _ => return Err(import_error("VM not created")),
    };
    let st = &mut *cx.st;
    if !disks.is_empty() {
        let sr = sr.ok_or_else(|| fail("DEFAULT_SR_NOT_FOUND", &[crate::model::NULL_REF]))?;
        let dc = st.db.class_index("VDI");
        for d in disks {
            let vdi = storage::new_vdi(st, &sr, &d.name, d.size, &d.ty);
            st.db
                .set(dc, &vdi, "name_description", Value::String(d.description));
            storage::new_vbd(st, &vm, &vdi, &d.userdevice, "Disk", d.bootable);
        }
    }
    vm::refresh_ops(st, &vm);
    Ok(vm)
}

/// The SR disks go to: `sr_id`, else the pool's default SR (`None` when it has none).
fn target_sr(st: &State, sr_id: Option<&str>) -> Result<Option<String>, ApiFailure> {
    let sc = st.db.class_index("SR");
    if let Some(sr) = sr_id {
        return if st.db.exists(sc, sr) {
            Ok(Some(sr.to_owned()))
        } else {
            Err(fail("HANDLE_INVALID", &["SR", sr]))
        };
    }
    let pc = st.db.class_index("pool");
    let default = st.db.get_str(pc, &st.pool, "default_SR");
    Ok((!is_null_ref(&default) && st.db.exists(sc, &default)).then_some(default))
}

struct Disk {
    name: String,
    description: String,
    size: i64,
    ty: String,
    userdevice: String,
    bootable: bool,
}

/// VM fields an import never takes from the archive (identity, state, snapshot-ness).
const NOT_IMPORTED: &[&str] = &[
    "uuid",
    "power_state",
    "domid",
    "is_a_snapshot",
    "snapshot_time",
    "snapshot_info",
    "snapshot_metadata",
    "is_control_domain",
];

/// The VM record (constructor fields without refs into the exporting pool) and disks of
/// one of our documents; `None` when it is not one.
fn document(st: &State, member: &[u8]) -> Option<(Struct, Vec<Disk>)> {
    let Value::Struct(doc) = serde_json::from_slice::<Value>(member).ok()? else {
        return None;
    };
    if doc.get("format").and_then(Value::as_str) != Some(xva::FORMAT) {
        return None;
    }
    let dm = st.db.dm;
    let class = dm.class("VM")?;
    let Value::Struct(typed) = coerce(dm, &Ty::Record("VM".into()), doc.get("vm")?.clone())? else {
        return None;
    };
    let mut record = Struct::new();
    for (k, v) in typed.0 {
        let keep = settable_at_create(class, &k)
            && !NOT_IMPORTED.contains(&k.as_str())
            && class.field(&k).is_some_and(|f| !mentions_ref(&f.ty));
        if keep {
            record.insert(k, v);
        }
    }
    let vdi_types = dm.enum_values("vdi_type").unwrap_or_default();
    let mut disks = Vec::new();
    for d in doc.get("disks")?.as_array()? {
        let Value::Struct(d) = d else { return None };
        let text = |k: &str| {
            d.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let ty = text("type");
        disks.push(Disk {
            name: text("name_label"),
            description: text("name_description"),
            size: d.get("virtual_size").and_then(Value::as_i64)?.max(0),
            ty: if vdi_types.contains(&ty) {
                ty
            } else {
                "user".into()
            },
            userdevice: text("userdevice"),
            bootable: d.get("bootable").and_then(Value::as_bool).unwrap_or(false),
        });
    }
    (disks.len() <= MAX_DISKS).then_some((record, disks))
}

/// Whether a type holds refs (which would point into the exporting pool).
fn mentions_ref(ty: &Ty) -> bool {
    match ty {
        Ty::Ref(_) | Ty::Record(_) => true,
        Ty::Set(t) | Ty::Option(t) => mentions_ref(t),
        Ty::Map(k, v) => mentions_ref(k) || mentions_ref(v),
        _ => false,
    }
}
