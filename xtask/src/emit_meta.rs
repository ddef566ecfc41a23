//! `generated/meta.rs`: a static table of classes, fields, messages and enums for dynamic code
//! (simulator, bindings). Types stay as the spec's strings.

use std::fmt::Write as _;

use crate::emit_calls::{has_async, takes_session};
use crate::names::class_ident;
use crate::{lit, Model};

pub fn meta_file(model: &Model) -> Result<String, String> {
    let mut out = String::new();
    out.push_str(
        "//! The datamodel as static data: every class with its fields and messages, every enum.\n\n\
         use crate::model::meta::{ClassMeta, EnumMeta, FieldMeta as F, MessageMeta as M, ParamMeta as P};\n\n\
         /// Every class, in datamodel order.\npub static CLASSES: &[ClassMeta] = &[\n",
    );
    for c in &model.spec.classes {
        let enums: Vec<String> = c.enums.iter().map(|e| lit(&e.name)).collect();
        let _ = writeln!(
            out,
            "ClassMeta {{ name: {}, rust_name: {}, lifecycle: {}, enums: &[{}], fields: &[",
            lit(&c.name),
            lit(&class_ident(&c.name)),
            lit(&c.lifecycle.state),
            enums.join(", ")
        );
        for f in &c.fields {
            let default = f
                .default
                .as_deref()
                .map_or("None".to_owned(), |d| format!("Some({})", lit(d)));
            let _ = writeln!(
                out,
                "    F {{ name: {}, ty: {}, qualifier: {}, default: {default}, lifecycle: {} }},",
                lit(&f.name),
                lit(&f.ty),
                lit(&f.qualifier),
                lit(&f.lifecycle.state)
            );
        }
        out.push_str("], messages: &[\n");
        for m in &c.messages {
            let params: Vec<String> = m
                .params
                .iter()
                .map(|p| {
                    format!(
                        "P {{ name: {}, ty: {}, required: {} }}",
                        lit(&p.name),
                        lit(&p.ty),
                        p.required
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "    M {{ name: {}, result: {}, implicit: {}, has_async: {}, session: {}, lifecycle: {}, params: &[{}] }},",
                lit(&m.name),
                lit(m.result.first().map_or("void", String::as_str)),
                m.implicit,
                has_async(&c.name, m),
                takes_session(m),
                lit(&m.lifecycle.state),
                params.join(", ")
            );
        }
        out.push_str("] },\n");
    }
    out.push_str("];\n\n/// Every enum with its wire values in datamodel order, sorted by name.\npub static ENUMS: &[EnumMeta] = &[\n");
    for (name, values) in &model.enums {
        let wires: Vec<String> = values.iter().map(|v| lit(&v.0)).collect();
        let _ = writeln!(
            out,
            "    EnumMeta {{ name: {}, values: &[{}] }},",
            lit(name),
            wires.join(", ")
        );
    }
    out.push_str("];\n");
    Ok(out)
}
