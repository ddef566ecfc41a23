//! One file per class: the record struct, its `Default` (datamodel defaults), `XapiClass`,
//! `ToValue`, a redacting `Debug` where needed, and the call descriptions.

use std::fmt::Write as _;

use crate::names::{class_ident, snake};
use crate::spec::{Class, Field};
use crate::types::{self, Ty, Use};
use crate::{defaults, doc, emit_calls, lit, md, unique, Model};

/// Fields whose value is a credential: printed as `<redacted>` by `Debug`.
pub fn is_secret_field(class: &str, field: &str) -> bool {
    (class == "secret" && field == "value") || field.to_ascii_lowercase().contains("password")
}

pub fn lifecycle_note(state: &str) -> Option<&'static str> {
    match state {
        "Published_s" => None,
        "Prototyped_s" => Some("Prototyped: may change in future releases."),
        "Deprecated_s" => Some("Deprecated in the datamodel."),
        "Removed_s" => Some("Removed from the datamodel; still decoded for older hosts."),
        _ => Some("Unknown lifecycle state."),
    }
}

struct FieldOut<'a> {
    spec: &'a Field,
    ident: String,
    ty: Ty,
}

const PREAMBLE: &str = "use std::collections::{BTreeMap, HashMap};\n\n\
    use super::*;\n\
    use crate::model::{DateTime, EventBatch, Ref, Struct, ToValue, Value, XapiClass};\n\
    use crate::rpc::{Call, Void};\n\n";

pub fn class_file(model: &Model, class: &Class) -> Result<String, String> {
    let ident = class_ident(&class.name);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "//! `{}`: {}\n",
        class.name,
        md(first_line(&class.description))
    );
    out.push_str(PREAMBLE);
    if class.name == "event" {
        // The event record is hand-written (`model/event.rs`): xapi's wire form differs from the
        // datamodel (string ids, a snapshot of any class, no `obj_uuid`).
        out.push_str("/// `event`: the hand-written event record (see `crate::model::event`).\n");
        let _ = writeln!(out, "pub use crate::model::EventRecord as {ident};\n");
        xapi_class(&mut out, &ident, &class.name, &[]);
    } else {
        record(model, class, &ident, &mut out).map_err(|e| format!("class {}: {e}", class.name))?;
    }
    out.push_str(
        &emit_calls::calls_impl(model, class, &ident)
            .map_err(|e| format!("class {}: {e}", class.name))?,
    );
    Ok(out)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// `string_fields`: the class's string fields; `uuid` and `name_label` get accessors.
fn xapi_class(out: &mut String, ident: &str, wire: &str, string_fields: &[&str]) {
    let _ = writeln!(
        out,
        "impl XapiClass for {ident} {{\nconst WIRE_NAME: &'static str = {};",
        lit(wire)
    );
    if wire == "session" {
        out.push_str("const SECRET_REFS: bool = true;\n");
    }
    for name in ["uuid", "name_label"] {
        if string_fields.contains(&name) {
            let _ = writeln!(out, "fn {name}(&self) -> &str {{\n&self.{name}\n}}");
        }
    }
    out.push_str("}\n\n");
}

fn record(model: &Model, class: &Class, ident: &str, out: &mut String) -> Result<(), String> {
    let mut fields = Vec::new();
    for f in &class.fields {
        let ty = types::parse(&f.ty).map_err(|e| format!("field {}: {e}", f.name))?;
        fields.push(FieldOut {
            spec: f,
            ident: snake(&f.name),
            ty,
        });
    }
    unique(
        fields.iter().map(|f| f.ident.as_str()),
        &format!("fields of {}", class.name),
    )?;
    let secret = fields
        .iter()
        .any(|f| is_secret_field(&class.name, &f.spec.name));

    doc(out, &md(class.description.trim()));
    if let Some(note) = lifecycle_note(&class.lifecycle.state) {
        doc(out, &format!("\n{note}"));
    }
    let debug = if secret { "" } else { "Debug, " };
    let _ = writeln!(
        out,
        "#[derive(Clone, {debug}PartialEq, serde::Serialize, serde::Deserialize)]\npub struct {ident} {{"
    );
    // Missing fields take xapi's default. Field-level defaults (rather than a struct-level
    // `#[serde(default)]`) are only evaluated for fields that are actually missing, so decoding a
    // complete record does no default work at all (no `Ref::null()` clones, no epoch formatting).
    let mut default_fns = String::new();
    for f in &fields {
        let dflt = defaults::expr(model, &f.ty, f.spec.default.as_deref())
            .map_err(|e| format!("field {}: {e}", f.spec.name))?;
        doc(out, &field_doc(f));
        let mut note = f.spec.qualifier.clone();
        if let Some(l) = lifecycle_note(&f.spec.lifecycle.state) {
            note = format!("{note}. {l}");
        }
        doc(out, &format!("\n{note}"));
        let mut attrs = Vec::new();
        if dflt == defaults::empty(model, &f.ty) {
            attrs.push("default".to_owned());
        } else {
            let fname = format!("default_{}", f.ident.trim_end_matches('_'));
            let ty = types::rust(&f.ty, Use::Owned);
            let _ = writeln!(default_fns, "fn {fname}() -> {ty} {{\n{dflt}\n}}\n");
            attrs.push(format!("default = {}", lit(&fname)));
        }
        if f.ident != f.spec.name {
            attrs.push(format!("rename = {}", lit(&f.spec.name)));
        }
        if let Some(helper) = deserialize_helper(&f.ty)? {
            attrs.push(format!("deserialize_with = {}", lit(helper)));
        }
        if matches!(f.ty, Ty::Option(_)) {
            attrs.push("skip_serializing_if = \"Option::is_none\"".into());
        }
        let _ = writeln!(out, "#[serde({})]", attrs.join(", "));
        let _ = writeln!(out, "pub {}: {},", f.ident, types::rust(&f.ty, Use::Owned));
    }
    out.push_str("}\n\n");
    out.push_str(&default_fns);

    let _ = writeln!(
        out,
        "impl Default for {ident} {{\nfn default() -> Self {{\n{ident} {{"
    );
    for f in &fields {
        let e = defaults::expr(model, &f.ty, f.spec.default.as_deref())
            .map_err(|e| format!("field {}: {e}", f.spec.name))?;
        let _ = writeln!(out, "{}: {e},", f.ident);
    }
    out.push_str("}\n}\n}\n\n");

    let names: Vec<&str> = class
        .fields
        .iter()
        .filter(|f| f.ty == "string")
        .map(|f| f.name.as_str())
        .collect();
    xapi_class(out, ident, &class.name, &names);

    let mutability = if fields.is_empty() { "" } else { "mut " };
    let _ = writeln!(
        out,
        "impl ToValue for {ident} {{\nfn to_value(&self) -> Value {{\nlet {mutability}s = Struct(Vec::with_capacity({}));",
        fields.len()
    );
    for f in &fields {
        if matches!(f.ty, Ty::Option(_)) {
            let _ = writeln!(
                out,
                "if let Some(v) = &self.{} {{\ns.0.push(({}.into(), v.to_value()));\n}}",
                f.ident,
                lit(&f.spec.name)
            );
        } else {
            let _ = writeln!(
                out,
                "s.0.push(({}.into(), self.{}.to_value()));",
                lit(&f.spec.name),
                f.ident
            );
        }
    }
    out.push_str("Value::Struct(s)\n}\n}\n\n");

    if secret {
        let _ = writeln!(
            out,
            "/// Hand-rolled so credentials never reach logs (they print as `<redacted>`).\nimpl std::fmt::Debug for {ident} {{\n\
             fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{\nf.debug_struct({})",
            lit(ident)
        );
        for f in &fields {
            if is_secret_field(&class.name, &f.spec.name) {
                let _ = writeln!(
                    out,
                    ".field({}, &format_args!(\"<redacted>\"))",
                    lit(&f.ident)
                );
            } else {
                let _ = writeln!(out, ".field({}, &self.{})", lit(&f.ident), f.ident);
            }
        }
        out.push_str(".finish()\n}\n}\n\n");
    }
    Ok(())
}

/// The field's description, or a sentence from its name and type when the datamodel has none.
fn field_doc(f: &FieldOut) -> String {
    let text = f.spec.description.trim();
    if text.is_empty() {
        format!("The `{}` field, of type `{}`.", f.spec.name, f.spec.ty)
    } else {
        md(text)
    }
}

/// The lenient serde helper a field needs, if any. Floats anywhere else are refused so a new
/// spec shape is noticed instead of silently decoding strictly.
fn deserialize_helper(ty: &Ty) -> Result<Option<&'static str>, String> {
    match ty {
        Ty::Float => Ok(Some("crate::model::de::float")),
        Ty::Map(k, v) if **k == Ty::Int && **v == Ty::Float => {
            Ok(Some("crate::model::de::int_float_map"))
        }
        t if contains_float(t) => Err(format!("no lenient decoder for float inside {t:?}")),
        _ => Ok(None),
    }
}

fn contains_float(ty: &Ty) -> bool {
    match ty {
        Ty::Float => true,
        Ty::Set(t) | Ty::Option(t) => contains_float(t),
        Ty::Map(k, v) => contains_float(k) || contains_float(v),
        _ => false,
    }
}
