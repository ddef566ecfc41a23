//! The datamodel as the simulator uses it: classes, field types, defaults, messages and their
//! parameters. Built once, on first use, from the generated `model::meta` tables (the type
//! strings and OCaml-ish defaults there are parsed here).

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::model::meta::{ClassMeta, EnumMeta, CLASSES, ENUMS};
use crate::model::{DateTime, Struct, Value};

/// A datamodel type: `string|int|float|bool|datetime|enum X|C ref|C record|t set|(k -> v) map|t option`.
#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    String,
    Int,
    Float,
    Bool,
    DateTime,
    Enum(String),
    Ref(String),
    Record(String),
    Set(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    Option(Box<Ty>),
}

impl Ty {
    /// Parses the datamodel's type grammar.
    pub fn parse(text: &str) -> Option<Ty> {
        let t = text.trim();
        if let Some(inner) = t.strip_suffix(" set") {
            return Some(Ty::Set(Box::new(Ty::parse(inner)?)));
        }
        if let Some(inner) = t.strip_suffix(" option") {
            return Some(Ty::Option(Box::new(Ty::parse(inner)?)));
        }
        if let Some(inner) = t.strip_suffix(" map") {
            let inner = inner.trim().strip_prefix('(')?.strip_suffix(')')?;
            // The key is never compound, so the first arrow splits key from value.
            let (k, v) = inner.split_once(" -> ")?;
            return Some(Ty::Map(Box::new(Ty::parse(k)?), Box::new(Ty::parse(v)?)));
        }
        if let Some(c) = t.strip_suffix(" ref") {
            return Some(Ty::Ref(c.trim().to_owned()));
        }
        if let Some(c) = t.strip_suffix(" record") {
            return Some(Ty::Record(c.trim().to_owned()));
        }
        if let Some(e) = t.strip_prefix("enum ") {
            return Some(Ty::Enum(e.trim().to_owned()));
        }
        match t {
            "string" => Some(Ty::String),
            "int" => Some(Ty::Int),
            "float" => Some(Ty::Float),
            "bool" => Some(Ty::Bool),
            "datetime" => Some(Ty::DateTime),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qualifier {
    Rw,
    StaticRo,
    DynamicRo,
}

#[derive(Debug)]
pub struct Field {
    pub name: String,
    pub ty: Ty,
    pub qualifier: Qualifier,
    pub default: Value,
}

#[derive(Debug)]
pub struct Param {
    pub name: String,
    pub ty: Ty,
    pub required: bool,
}

#[derive(Debug)]
pub struct Message {
    pub name: String,
    pub params: Vec<Param>,
    pub implicit: bool,
    /// Whether the first parameter is the session.
    pub session: bool,
}

#[derive(Debug)]
pub struct Class {
    pub name: String,
    pub lower: String,
    pub fields: Vec<Field>,
    pub field_index: HashMap<String, usize>,
    pub messages: Vec<Message>,
    pub message_index: HashMap<String, usize>,
    pub enums: HashMap<String, Vec<String>>,
    /// xapi never emits events for these (`~gen_events:false`).
    pub gen_events: bool,
    /// Set fields maintained from the child side: (this field, child class, child field).
    pub relations: Vec<(usize, usize, usize)>,
}

impl Class {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.field_index.get(name).map(|&i| &self.fields[i])
    }

    pub fn message(&self, name: &str) -> Option<&Message> {
        self.message_index.get(name).map(|&i| &self.messages[i])
    }
}

#[derive(Debug)]
pub struct Datamodel {
    pub classes: Vec<Class>,
    by_name: HashMap<String, usize>,
    by_lower: HashMap<String, usize>,
    enums: HashMap<String, Vec<String>>,
}

impl Datamodel {
    pub fn get() -> &'static Datamodel {
        static DM: OnceLock<Datamodel> = OnceLock::new();
        DM.get_or_init(|| {
            // The generated tables are checked by tests; a failure here is a codegen defect.
            Datamodel::from_meta(CLASSES, ENUMS).unwrap_or_else(|e| panic!("model::meta: {e}"))
        })
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Case-insensitive class lookup (event subscriptions).
    pub fn index_lower(&self, name: &str) -> Option<usize> {
        self.by_lower.get(&name.to_ascii_lowercase()).copied()
    }

    pub fn class(&self, name: &str) -> Option<&Class> {
        self.index(name).map(|i| &self.classes[i])
    }

    /// The zero value of a type (used for omitted optional parameters).
    pub fn zero(&self, ty: &Ty) -> Value {
        zero(ty, &self.enums)
    }

    pub fn enum_values(&self, name: &str) -> Option<&[String]> {
        self.enums.get(name).map(Vec::as_slice)
    }

    /// Builds the view from the generated metadata (`model::meta`, from `cargo xtask codegen`).
    pub fn from_meta(metas: &[ClassMeta], enum_metas: &[EnumMeta]) -> Result<Datamodel, String> {
        let enums: HashMap<String, Vec<String>> = enum_metas
            .iter()
            .map(|e| {
                (
                    e.name.to_owned(),
                    e.values.iter().map(|v| v.to_string()).collect(),
                )
            })
            .collect();
        let mut classes = Vec::new();
        for c in metas {
            let mut fields = Vec::new();
            for f in c.fields {
                let ty = Ty::parse(f.ty)
                    .ok_or_else(|| format!("{}.{}: bad type {}", c.name, f.name, f.ty))?;
                let qualifier = match f.qualifier {
                    "RW" => Qualifier::Rw,
                    "RO/constructor" => Qualifier::StaticRo,
                    _ => Qualifier::DynamicRo,
                };
                let default = match f.default {
                    Some(d) => parse_default(&ty, d, &enums)
                        .ok_or_else(|| format!("{}.{}: bad default {d}", c.name, f.name))?,
                    None => zero(&ty, &enums),
                };
                fields.push(Field {
                    name: f.name.to_owned(),
                    ty,
                    qualifier,
                    default,
                });
            }
            let mut messages = Vec::new();
            for m in c.messages {
                let mut params = Vec::new();
                for p in m.params {
                    let ty = Ty::parse(p.ty)
                        .ok_or_else(|| format!("{}.{}: bad param type {}", c.name, m.name, p.ty))?;
                    params.push(Param {
                        name: p.name.to_owned(),
                        ty,
                        required: p.required,
                    });
                }
                messages.push(Message {
                    name: m.name.to_owned(),
                    params,
                    implicit: m.implicit,
                    session: m.session,
                });
            }
            let field_index = fields
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name.clone(), i))
                .collect();
            let message_index = messages
                .iter()
                .enumerate()
                .map(|(i, m)| (m.name.clone(), i))
                .collect();
            let class_enums = c
                .enums
                .iter()
                .map(|e| {
                    let values = enums
                        .get(*e)
                        .ok_or_else(|| format!("{}: unknown enum {e}", c.name))?;
                    Ok((e.to_string(), values.clone()))
                })
                .collect::<Result<_, String>>()?;
            classes.push(Class {
                name: c.name.to_owned(),
                lower: c.name.to_ascii_lowercase(),
                fields,
                field_index,
                messages,
                message_index,
                enums: class_enums,
                gen_events: !SILENT_CLASSES.contains(&c.name),
                relations: Vec::new(),
            });
        }
        let by_name: HashMap<String, usize> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let by_lower = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.lower.clone(), i))
            .collect();
        link_relations(&mut classes, &by_name);
        Ok(Datamodel {
            classes,
            by_name,
            by_lower,
            enums,
        })
    }
}

/// Classes declared with `~gen_events:false` in xapi's datamodel.
pub const SILENT_CLASSES: &[&str] = &[
    "session",
    "user",
    "data_source",
    "sr_stat",
    "probe_result",
    "vdi_nbd_server_info",
    "auth",
    "secret",
    "Diagnostics",
];

/// When a child class has several refs back to the parent, the one xapi's relation uses.
const RELATION_OVERRIDES: &[(&str, &str, &str)] = &[
    ("PGPU", "resident_VGPUs", "resident_on"),
    ("PIF", "VLAN_slave_of", "tagged_PIF"),
    ("PIF", "bond_master_of", "master"),
    ("PIF", "sriov_logical_PIF_of", "logical_PIF"),
    ("PIF", "sriov_physical_PIF_of", "physical_PIF"),
    ("PIF", "tunnel_access_PIF_of", "access_PIF"),
    ("PIF", "tunnel_transport_PIF_of", "transport_PIF"),
    ("VDI", "snapshots", "snapshot_of"),
    ("VM", "VTPMs", "VM"),
    ("VM", "children", "parent"),
    ("VM", "snapshots", "snapshot_of"),
    ("host", "resident_VMs", "resident_on"),
];

/// One-to-many relations: a runtime `C ref set` field on P kept equal to the C objects whose
/// single `P ref` field points back (xapi's `all_relations`).
fn link_relations(classes: &mut [Class], by_name: &HashMap<String, usize>) {
    let mut found = Vec::new();
    for (pi, p) in classes.iter().enumerate() {
        for (fi, f) in p.fields.iter().enumerate() {
            let Ty::Set(inner) = &f.ty else { continue };
            let Ty::Ref(child) = inner.as_ref() else {
                continue;
            };
            if f.qualifier != Qualifier::DynamicRo {
                continue;
            }
            let Some(&ci) = by_name.get(child) else {
                continue;
            };
            let back = Ty::Ref(p.name.clone());
            let candidates: Vec<usize> = classes[ci]
                .fields
                .iter()
                .enumerate()
                .filter(|(_, g)| g.ty == back)
                .map(|(i, _)| i)
                .collect();
            let chosen = match RELATION_OVERRIDES
                .iter()
                .find(|(c, fld, _)| *c == p.name && *fld == f.name)
            {
                Some((_, _, g)) => classes[ci].field_index.get(*g).copied(),
                None if candidates.len() == 1 => Some(candidates[0]),
                None => None,
            };
            if let Some(gi) = chosen {
                found.push((pi, fi, ci, gi));
            }
        }
    }
    for (pi, fi, ci, gi) in found {
        classes[pi].relations.push((fi, ci, gi));
    }
}

/// The value a field takes when nothing sets it and the datamodel gives no default.
pub fn zero(ty: &Ty, enums: &HashMap<String, Vec<String>>) -> Value {
    match ty {
        Ty::String => Value::String(String::new()),
        Ty::Int => Value::Int(0),
        Ty::Float => Value::Double(0.0),
        Ty::Bool => Value::Bool(false),
        Ty::DateTime => Value::DateTime(DateTime::epoch()),
        Ty::Enum(e) => Value::String(
            enums
                .get(e)
                .and_then(|v| v.first().cloned())
                .unwrap_or_default(),
        ),
        Ty::Ref(_) => Value::String(crate::model::NULL_REF.into()),
        Ty::Record(_) | Ty::Map(..) => Value::Struct(Struct::new()),
        Ty::Set(_) => Value::Array(Vec::new()),
        Ty::Option(_) => Value::Nil,
    }
}

/// Parses a default as the datamodel writes it (OCaml-ish: `""`, `0.`, `{}`, `{k -> v}`, `Null`).
fn parse_default(ty: &Ty, text: &str, enums: &HashMap<String, Vec<String>>) -> Option<Value> {
    let t = text.trim();
    Some(match ty {
        Ty::String => Value::String(unquote(t)),
        Ty::Int => Value::Int(t.parse().ok()?),
        Ty::Float => Value::Double(t.parse().ok()?),
        Ty::Bool => Value::Bool(t.parse().ok()?),
        Ty::DateTime => Value::DateTime(DateTime::parse(t).ok()?),
        Ty::Enum(_) => Value::String(t.to_owned()),
        Ty::Ref(_) => Value::String(if t == "Null" {
            crate::model::NULL_REF.into()
        } else {
            t.to_owned()
        }),
        Ty::Set(inner) => {
            let body = t.strip_prefix('{')?.strip_suffix('}')?.trim();
            if body.is_empty() {
                Value::Array(Vec::new())
            } else {
                Value::Array(
                    body.split(", ")
                        .map(|e| parse_default(inner, e, enums))
                        .collect::<Option<_>>()?,
                )
            }
        }
        Ty::Map(_, v) => {
            let body = t.strip_prefix('{')?.strip_suffix('}')?.trim();
            let mut s = Struct::new();
            if !body.is_empty() {
                for pair in body.split(", ") {
                    let (k, val) = pair.split_once(" -> ")?;
                    s.insert(unquote(k.trim()), parse_default(v, val, enums)?);
                }
            }
            Value::Struct(s)
        }
        Ty::Option(_) | Ty::Record(_) => zero(ty, enums),
    })
}

fn unquote(t: &str) -> String {
    t.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(t)
        .replace("\\\"", "\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_grammar() {
        assert_eq!(
            Ty::parse("(string -> enum vm_operations) map"),
            Some(Ty::Map(
                Box::new(Ty::String),
                Box::new(Ty::Enum("vm_operations".into()))
            ))
        );
        assert_eq!(
            Ty::parse("VM ref set"),
            Some(Ty::Set(Box::new(Ty::Ref("VM".into()))))
        );
        assert_eq!(
            Ty::parse("SR ref option"),
            Some(Ty::Option(Box::new(Ty::Ref("SR".into()))))
        );
        assert_eq!(
            Ty::parse("(VM ref -> VM record) map"),
            Some(Ty::Map(
                Box::new(Ty::Ref("VM".into())),
                Box::new(Ty::Record("VM".into()))
            ))
        );
        assert_eq!(Ty::parse("nonsense"), None);
    }

    #[test]
    fn spec_loads_with_defaults_and_relations() {
        let dm = Datamodel::get();
        assert_eq!(dm.classes.len(), 72);
        let vm = dm.class("VM").unwrap();
        assert_eq!(
            vm.field("power_state").unwrap().default,
            Value::String("Halted".into())
        );
        assert_eq!(
            vm.field("memory_static_max").unwrap().default,
            Value::Int(0)
        );
        let vif_rel = vm
            .relations
            .iter()
            .find(|(f, _, _)| vm.fields[*f].name == "VIFs")
            .unwrap();
        assert_eq!(dm.classes[vif_rel.1].name, "VIF");
        let host = dm.class("host").unwrap();
        let res = host
            .relations
            .iter()
            .find(|(f, _, _)| host.fields[*f].name == "resident_VMs")
            .unwrap();
        assert_eq!(vm.fields[res.2].name, "resident_on");
        assert!(!dm.class("session").unwrap().gen_events);
        assert!(dm.class("VM").unwrap().gen_events);
        let power = ["Halted", "Paused", "Running", "Suspended"].map(String::from);
        assert_eq!(dm.enum_values("vm_power_state"), Some(&power[..]));
        assert_eq!(
            vm.enums.get("vm_power_state").map(Vec::as_slice),
            Some(&power[..])
        );
        let start = vm.message("start").unwrap();
        let names: Vec<&str> = start.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["session_id", "vm", "start_paused", "force"]);
        assert!(start.session && !start.implicit);
    }

    #[test]
    fn bad_metadata_is_an_error() {
        use crate::model::meta::FieldMeta;
        static BAD_TYPE: &[FieldMeta] = &[FieldMeta {
            name: "x",
            ty: "nonsense",
            qualifier: "RW",
            default: None,
            lifecycle: "Published_s",
        }];
        let class = |fields, enums| ClassMeta {
            name: "c",
            rust_name: "C",
            lifecycle: "Published_s",
            enums,
            fields,
            messages: &[],
        };
        let e = Datamodel::from_meta(&[class(BAD_TYPE, &[])], &[]).unwrap_err();
        assert!(e.contains("c.x: bad type nonsense"), "{e}");
        let e = Datamodel::from_meta(&[class(&[], &["nope"])], &[]).unwrap_err();
        assert!(e.contains("unknown enum nope"), "{e}");
    }
}
