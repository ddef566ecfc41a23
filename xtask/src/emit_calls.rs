//! Call descriptions: one associated fn per message, returning `crate::rpc::Call<R>` (no IO).

use std::fmt::Write as _;

use crate::names::snake;
use crate::spec::{Class, Message, Param};
use crate::types::{self, Ty, Use};
use crate::{defaults, doc, lit, unique, Model};

/// Classes whose messages have no `Async.` form. xapi's datamodel declares the list
/// `no_async_messages_for` (session, event, task, data_source, blob); the wire-protocol doc says
/// session and task calls have no async form; auth, secret and user are added as they hold no
/// long-running operations. Uncertain for blob/auth/secret/user.
const NO_ASYNC_CLASSES: &[&str] = &[
    "session",
    "event",
    "task",
    "data_source",
    "blob",
    "auth",
    "secret",
    "user",
];

/// Custom messages known to be declared with `~flags:[`Session]` (no async) in xen-api's
/// `ocaml/idl/datamodel*.ml`. Not exhaustive: xen-api has 187 such calls (many hidden from the
/// docs, hence absent here); a live host's `system.listMethods` is the authority.
const NO_ASYNC_MESSAGES: &[&str] = &["host.emergency_reset_master", "host.local_assert_healthy"];

/// Whether xapi offers `Async.<class>.<message>`. The datamodel JSON has no async flag, so
/// this is a rule: custom messages get one by default (`call ?(flags = [`Session; `Async])`
/// in `datamodel_common.ml`), implicit messages only for `create` and `destroy`; never for the
/// classes in `NO_ASYNC_CLASSES` or the messages in `NO_ASYNC_MESSAGES`.
pub fn has_async(class: &str, m: &Message) -> bool {
    if NO_ASYNC_CLASSES.contains(&class)
        || NO_ASYNC_MESSAGES.contains(&format!("{class}.{}", m.name).as_str())
    {
        return false;
    }
    !m.implicit || m.name == "create" || m.name == "destroy"
}

/// Whether the first param is the session ref (the transport supplies it).
pub fn takes_session(m: &Message) -> bool {
    m.params
        .first()
        .is_some_and(|p| p.name == "session_id" && p.ty == "session ref")
}

pub fn calls_impl(model: &Model, class: &Class, ident: &str) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "/// Call descriptions for `{}` messages (no IO; a client executes them).",
        class.name
    );
    let _ = writeln!(out, "impl {ident} {{");
    let fns: Vec<String> = class.messages.iter().map(|m| snake(&m.name)).collect();
    unique(
        fns.iter().map(String::as_str),
        &format!("messages of {}", class.name),
    )?;
    for (m, fname) in class.messages.iter().zip(&fns) {
        message(model, class, m, fname, &mut out)
            .map_err(|e| format!("message {}: {e}", m.name))?;
    }
    out.push_str("}\n");
    Ok(out)
}

fn message(
    model: &Model,
    class: &Class,
    m: &Message,
    fname: &str,
    out: &mut String,
) -> Result<(), String> {
    let wire = format!("{}.{}", class.name, m.name);
    let session = takes_session(m);
    let params: Vec<&Param> = m.params.iter().skip(usize::from(session)).collect();
    let idents: Vec<String> = params.iter().map(|p| snake(&p.name)).collect();
    unique(idents.iter().map(String::as_str), "params")?;
    let tys: Vec<Ty> = params
        .iter()
        .map(|p| types::parse(&p.ty))
        .collect::<Result<_, _>>()?;
    let first_optional = params
        .iter()
        .position(|p| !p.required)
        .unwrap_or(params.len());
    if params[first_optional..].iter().any(|p| p.required) {
        return Err("a required param follows an optional one".into());
    }
    let result = match m.result.first().map(String::as_str) {
        Some("void") | None => "Void".to_owned(),
        Some(t) => types::rust(&types::parse(t)?, Use::Result),
    };
    let asy = has_async(&class.name, m);

    // Docs: description, params, result, errors, async form.
    doc(out, &format!("`{wire}`: {}", m.description.trim()));
    if let Some(note) = crate::emit_records::lifecycle_note(&m.lifecycle.state) {
        doc(out, &format!("\n{note}"));
    }
    if !params.is_empty() {
        doc(out, "\nParams:");
        for (p, i) in params.iter().zip(&idents) {
            let opt = if p.required {
                ""
            } else {
                " (optional: trailing `None`s are not sent)"
            };
            doc(out, &format!("- `{i}`: {}{opt}", one_line(&p.doc)));
        }
    }
    if let Some(rdoc) = m.result.get(1).filter(|d| !d.trim().is_empty()) {
        doc(out, &format!("\nReturns: {}", one_line(rdoc)));
    }
    if !m.errors.is_empty() {
        let codes: Vec<String> = m.errors.iter().map(|e| format!("`{}`", e.name)).collect();
        doc(out, &format!("\nErrors: {}.", codes.join(", ")));
    }
    if asy {
        doc(
            out,
            &format!("\nAsync form: `Async.{wire}` (returns a task)."),
        );
    }
    if !session {
        doc(out, "\nCalled without a session.");
    }

    // Signature.
    let args: Vec<String> = idents
        .iter()
        .zip(&tys)
        .zip(&params)
        .map(|((i, t), p)| {
            let ty = types::param(t);
            if p.required {
                format!("{i}: {ty}")
            } else {
                format!("{i}: Option<{ty}>")
            }
        })
        .collect();
    let _ = writeln!(
        out,
        "pub fn {fname}({}) -> Call<{result}> {{",
        args.join(", ")
    );

    // Body.
    let required: Vec<String> = idents[..first_optional]
        .iter()
        .map(|i| format!("{i}.to_value()"))
        .collect();
    let optional = &idents[first_optional..];
    let mutability = if optional.is_empty() { "" } else { "mut " };
    let _ = writeln!(
        out,
        "let {mutability}params: Vec<Value> = vec![{}];",
        required.join(", ")
    );
    if !optional.is_empty() {
        // Send optional params up to the last one given; a `None` before it is sent as the
        // class field's default when the names match, else the type's empty value.
        out.push_str("let given = ");
        for (k, i) in optional.iter().enumerate().rev() {
            let _ = write!(out, "if {i}.is_some() {{ {} }} else ", k + 1);
        }
        out.push_str("{ 0 };\n");
        for (k, i) in optional.iter().enumerate() {
            let idx = first_optional + k;
            let ty = &tys[idx];
            let field = class
                .fields
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(&params[idx].name) && f.ty == params[idx].ty);
            let dflt = match field {
                Some(f) => defaults::expr(model, ty, f.default.as_deref())?,
                None => defaults::empty(model, ty),
            };
            let owned = types::rust(ty, Use::Owned);
            let _ = writeln!(
                out,
                "if given > {k} {{ params.push(match {i} {{ Some(v) => v.to_value(), None => {{ let d: {owned} = {dflt}; d.to_value() }} }}); }}"
            );
        }
    }
    let _ = write!(out, "Call::new({}, params)", lit(&wire));
    if !session {
        out.push_str(".without_session()");
    }
    if asy {
        let _ = write!(out, ".with_async({})", lit(&format!("Async.{wire}")));
    }
    out.push_str("\n}\n\n");
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
