//! The implicit messages every class gets from the datamodel: getters, setters, map and set
//! updates, records, lookups, create and destroy.

use super::datamodel::{Class, Message, Ty};
use super::dispatch::{fail, settable_at_create, void, Cx};
use crate::model::{Struct, Value};
use crate::rpc::Outcome;

#[derive(Clone, Copy, Debug)]
pub enum Implicit {
    GetAll,
    GetAllRecords,
    GetRecord,
    GetByUuid,
    GetByNameLabel,
    Get(usize),
    Set(usize),
    MapAdd(usize),
    MapRemove(usize),
    SetAdd(usize),
    SetRemove(usize),
    Create,
    Destroy,
}

/// Recognises an implicit message by name. Custom messages spelled like an implicit one
/// (`VM.set_platform`) are served the same way when nothing more specific exists.
pub fn resolve(class: &Class, msg: &Message) -> Option<Implicit> {
    let n = msg.name.as_str();
    let field = |name: &str| class.field_index.get(name).copied();
    Some(match n {
        "get_all" => Implicit::GetAll,
        "get_all_records" => Implicit::GetAllRecords,
        "get_record" => Implicit::GetRecord,
        "get_by_uuid" => Implicit::GetByUuid,
        "get_by_name_label" => Implicit::GetByNameLabel,
        "create" if msg.implicit => Implicit::Create,
        "destroy" if msg.implicit => Implicit::Destroy,
        _ => {
            if let Some(f) = n.strip_prefix("get_").and_then(field) {
                Implicit::Get(f)
            } else if let Some(f) = n.strip_prefix("set_").and_then(field) {
                Implicit::Set(f)
            } else if let Some(f) = n
                .strip_prefix("add_to_")
                .and_then(field)
                .filter(|&f| is_map(class, f))
            {
                Implicit::MapAdd(f)
            } else if let Some(f) = n
                .strip_prefix("remove_from_")
                .and_then(field)
                .filter(|&f| is_map(class, f))
            {
                Implicit::MapRemove(f)
            } else if let Some(f) = n
                .strip_prefix("add_")
                .and_then(field)
                .filter(|&f| is_set(class, f))
            {
                Implicit::SetAdd(f)
            } else if let Some(f) = n
                .strip_prefix("remove_")
                .and_then(field)
                .filter(|&f| is_set(class, f))
            {
                Implicit::SetRemove(f)
            } else {
                return None;
            }
        }
    })
}

fn is_map(class: &Class, f: usize) -> bool {
    matches!(class.fields[f].ty, Ty::Map(..))
}

fn is_set(class: &Class, f: usize) -> bool {
    matches!(class.fields[f].ty, Ty::Set(_))
}

fn self_ref(cx: &Cx, class: &Class, args: &[Value]) -> Result<String, crate::model::ApiFailure> {
    let r = args.first().and_then(Value::as_str).unwrap_or_default();
    let ci = cx.st.db.class_index(&class.name);
    if cx.st.db.exists(ci, r) {
        Ok(r.to_owned())
    } else {
        Err(fail("HANDLE_INVALID", &[&class.name, r]))
    }
}

pub fn run(cx: &mut Cx, class: &Class, what: Implicit, args: &[Value]) -> Outcome<Value> {
    let ci = cx.st.db.class_index(&class.name);
    let db = &mut cx.st.db;
    match what {
        Implicit::GetAll => Ok(Value::Array(
            db.refs(ci).map(|r| Value::String(r.clone())).collect(),
        )),
        Implicit::GetAllRecords => {
            let table = &db.tables[ci];
            Ok(Value::Struct(Struct(
                table
                    .objs
                    .iter()
                    .map(|(r, o)| (r.clone(), Value::Struct(super::db::record_of(class, o))))
                    .collect(),
            )))
        }
        Implicit::GetByUuid => {
            let u = args.first().and_then(Value::as_str).unwrap_or_default();
            db.by_uuid(ci, u)
                .map(|r| Value::String(r.clone()))
                .ok_or_else(|| fail("UUID_INVALID", &[&class.name, u]))
        }
        Implicit::GetByNameLabel => {
            let label = args.first().and_then(Value::as_str).unwrap_or_default();
            Ok(Value::Array(
                db.find(ci, "name_label", label)
                    .into_iter()
                    .map(Value::String)
                    .collect(),
            ))
        }
        Implicit::GetRecord => {
            let r = self_ref(cx, class, args)?;
            Ok(cx.st.db.record(ci, &r).unwrap_or(Value::Nil))
        }
        Implicit::Get(f) => {
            let r = self_ref(cx, class, args)?;
            let v = cx
                .st
                .db
                .get(ci, &r, &class.fields[f].name)
                .cloned()
                .unwrap_or(Value::Nil);
            Ok(v)
        }
        Implicit::Set(f) => {
            let r = self_ref(cx, class, args)?;
            let v = args.get(1).cloned().unwrap_or(Value::Nil);
            cx.st.db.set_index(ci, &r, f, v);
            void()
        }
        Implicit::MapAdd(f) => {
            let r = self_ref(cx, class, args)?;
            let key = args
                .get(1)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let v = args.get(2).cloned().unwrap_or(Value::Nil);
            let name = &class.fields[f].name;
            let present = matches!(cx.st.db.get(ci, &r, name), Some(Value::Struct(s)) if s.get(&key).is_some());
            if present {
                let uuid = cx.st.db.get_str(ci, &r, "uuid");
                return Err(fail("MAP_DUPLICATE_KEY", &[&class.name, name, &uuid, &key]));
            }
            cx.st.db.update_map(ci, &r, name, |m| m.insert(key, v));
            void()
        }
        Implicit::MapRemove(f) => {
            let r = self_ref(cx, class, args)?;
            let key = args
                .get(1)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            cx.st.db.update_map(ci, &r, &class.fields[f].name, |m| {
                m.remove(&key);
            });
            void()
        }
        Implicit::SetAdd(f) => {
            let r = self_ref(cx, class, args)?;
            let v = args.get(1).cloned().unwrap_or(Value::Nil);
            cx.st.db.update_set(ci, &r, &class.fields[f].name, |s| {
                if !s.contains(&v) {
                    s.push(v)
                }
            });
            void()
        }
        Implicit::SetRemove(f) => {
            let r = self_ref(cx, class, args)?;
            let v = args.get(1).cloned().unwrap_or(Value::Nil);
            cx.st
                .db
                .update_set(ci, &r, &class.fields[f].name, |s| s.retain(|x| x != &v));
            void()
        }
        Implicit::Create => {
            let Some(Value::Struct(rec)) = args.first() else {
                return Err(fail("FIELD_TYPE_ERROR", &["args"]));
            };
            let values: Vec<(&str, Value)> = rec
                .iter()
                .filter(|(k, _)| settable_at_create(class, k) && *k != "uuid")
                .map(|(k, v)| (k, v.clone()))
                .collect();
            let r = cx.st.db.create(ci, None, None, values);
            Ok(Value::String(r))
        }
        Implicit::Destroy => {
            let r = self_ref(cx, class, args)?;
            cx.st.db.destroy(ci, &r);
            void()
        }
    }
}
