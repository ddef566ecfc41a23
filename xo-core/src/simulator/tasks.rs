//! `Async.*` calls and `task.*`: a task goes pending → success/failure with progress over the
//! configured duration; its result is an XML-RPC fragment as xapi stores it.

use std::sync::Arc;

use super::datamodel::{Class, Message, Ty};
use super::dispatch::{fail, run, void, Action, Cx};
use super::state::{Shared, State, MAX_TASKS};
use crate::model::{ApiFailure, DateTime, Value};
use crate::rpc::Outcome;

const STEPS: u32 = 4;

pub fn new_task(st: &mut State, label: &str, description: &str) -> String {
    let class = st.db.class_index("task");
    let host = st
        .hosts
        .get(st.master)
        .map(|h| h.r.clone())
        .unwrap_or_default();
    st.db.create(
        class,
        None,
        None,
        vec![
            ("name_label", Value::String(label.to_owned())),
            ("name_description", Value::String(description.to_owned())),
            ("status", Value::String("pending".into())),
            ("created", Value::DateTime(DateTime::now())),
            ("resident_on", Value::String(host)),
            ("progress", Value::Double(0.0)),
            (
                "allowed_operations",
                Value::Array(vec![Value::String("cancel".into())]),
            ),
        ],
    )
}

/// The operation an async call puts in the target object's `current_operations`, if the
/// class tracks operations and the message is one of them.
fn tracked_operation(
    class: &Class,
    msg: &Message,
    args: &[Value],
) -> Option<(usize, String, String)> {
    let p = msg.params.iter().find(|p| p.name != "session_id")?;
    if p.ty != Ty::Ref(class.name.clone()) {
        return None;
    }
    let f = class.field("current_operations")?;
    let Ty::Map(_, v) = &f.ty else { return None };
    let Ty::Enum(e) = v.as_ref() else { return None };
    let values = class.enums.get(e)?;
    let op = values.iter().find(|x| **x == msg.name)?.clone();
    let r = args.first()?.as_str()?.to_owned();
    super::datamodel::Datamodel::get()
        .index(&class.name)
        .map(|ci| (ci, r, op))
}

#[allow(clippy::too_many_arguments)]
pub fn spawn(
    shared: &Arc<Shared>,
    st: &mut State,
    session: Option<String>,
    method: &str,
    class: &'static Class,
    msg: &'static Message,
    action: Action,
    args: Vec<Value>,
) -> Outcome<Value> {
    let task = new_task(st, method, "");
    let op = tracked_operation(class, msg, &args).filter(|(ci, r, _)| st.db.exists(*ci, r));
    if let Some((ci, r, name)) = &op {
        if let Some(failure) = busy(st, *ci, r, None) {
            finish(st, &task, Err(failure));
            return Ok(Value::String(task));
        }
        let t = task.clone();
        let name = name.clone();
        st.db.update_map(*ci, r, "current_operations", |m| {
            m.insert(t, Value::String(name))
        });
        st.task_ops.insert(task.clone(), (*ci, r.clone()));
    }
    let d = st.task_duration;
    for i in 1..STEPS {
        let t = task.clone();
        shared.schedule(d * i / STEPS, move |sh| {
            let mut st = sh.lock();
            let tc = st.db.class_index("task");
            if st.db.get_str(tc, &t, "status") == "pending" {
                st.db.set(
                    tc,
                    &t,
                    "progress",
                    Value::Double(f64::from(i) / f64::from(STEPS)),
                );
            }
            drop(st);
            sh.changed.notify_all();
        });
    }
    let t = task.clone();
    shared.schedule(d, move |sh| {
        let mut st = sh.lock();
        let tc = st.db.class_index("task");
        if st.db.get_str(tc, &t, "status") != "pending" {
            return;
        }
        release(&mut st, &t);
        let result = {
            let mut cx = Cx {
                st: &mut st,
                shared: sh,
                session,
                task: Some(t.clone()),
            };
            run(&mut cx, class, action, &args)
        };
        finish(&mut st, &t, result);
        drop(st);
        sh.changed.notify_all();
    });
    Ok(Value::String(task))
}

/// `OTHER_OPERATION_IN_PROGRESS` when another task holds the object.
pub fn busy(st: &State, ci: usize, r: &str, own: Option<&str>) -> Option<ApiFailure> {
    let Some(Value::Struct(ops)) = st.db.get(ci, r, "current_operations") else {
        return None;
    };
    let (task, op) = ops.iter().find(|(t, _)| Some(*t) != own)?;
    let class = &st.db.dm.classes[ci].name;
    Some(fail(
        "OTHER_OPERATION_IN_PROGRESS",
        &[class, r, op.as_str().unwrap_or_default(), task],
    ))
}

/// Removes the task's entry from its object's `current_operations`.
fn release(st: &mut State, task: &str) {
    if let Some((ci, r)) = st.task_ops.remove(task) {
        st.db.update_map(ci, &r, "current_operations", |m| {
            m.remove(task);
        });
    }
}

pub fn finish(st: &mut State, task: &str, result: Outcome<Value>) {
    let tc = st.db.class_index("task");
    match result {
        Ok(v) => {
            st.db.set(tc, task, "result", Value::String(fragment(&v)));
            st.db
                .set(tc, task, "status", Value::String("success".into()));
        }
        Err(f) => {
            let info = f.to_description().into_iter().map(Value::String).collect();
            st.db.set(tc, task, "error_info", Value::Array(info));
            st.db
                .set(tc, task, "status", Value::String("failure".into()));
        }
    }
    st.db.set(tc, task, "progress", Value::Double(1.0));
    st.db
        .set(tc, task, "finished", Value::DateTime(DateTime::now()));
    st.db
        .set(tc, task, "allowed_operations", Value::Array(Vec::new()));
    retire(st, task);
}

/// Remembers a finished task and deletes the oldest finished ones over xapi's limit.
fn retire(st: &mut State, task: &str) {
    let tc = st.db.class_index("task");
    st.completed_tasks.push_back(task.to_owned());
    while st.completed_tasks.len() > MAX_TASKS {
        if let Some(old) = st.completed_tasks.pop_front() {
            st.db.destroy(tc, &old);
        }
    }
}

/// The task result as xapi stores it: `""` for void, else one XML-RPC `<value>` fragment.
pub fn fragment(v: &Value) -> String {
    if matches!(v, Value::String(s) if s.is_empty()) {
        return String::new();
    }
    let mut out = Vec::new();
    super::wire::encode_value(v, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

pub fn create(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let label = args[0].as_str().unwrap_or_default().to_owned();
    let description = args[1].as_str().unwrap_or_default().to_owned();
    Ok(Value::String(new_task(cx.st, &label, &description)))
}

pub fn cancel(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let t = super::dispatch::check_ref(cx.st, "task", &args[0])?;
    let tc = cx.st.db.class_index("task");
    if cx.st.db.get_str(tc, &t, "status") != "pending" {
        return Err(fail("OPERATION_NOT_ALLOWED", &["task is not pending"]));
    }
    release(cx.st, &t);
    let db = &mut cx.st.db;
    db.set(tc, &t, "status", Value::String("cancelled".into()));
    db.set(
        tc,
        &t,
        "error_info",
        Value::Array(vec![
            Value::from("TASK_CANCELLED"),
            Value::String(t.clone()),
        ]),
    );
    db.set(tc, &t, "finished", Value::DateTime(DateTime::now()));
    db.set(tc, &t, "allowed_operations", Value::Array(Vec::new()));
    retire(cx.st, &t);
    void()
}

pub fn destroy(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let t = super::dispatch::check_ref(cx.st, "task", &args[0])?;
    release(cx.st, &t);
    let tc = cx.st.db.class_index("task");
    cx.st.db.destroy(tc, &t);
    cx.st.completed_tasks.retain(|x| *x != t);
    void()
}
