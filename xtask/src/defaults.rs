//! The datamodel's `default` strings (OCaml-ish: `"text"`, `0.`, `19700101T00:00:00Z`, `Null`,
//! `OpaqueRef:NULL`, `{}`, `{k -> v, …}`, bare enum values) as Rust expressions.

use crate::names::camel;
use crate::types::{empty_value, Ty};
use crate::{lit, Model};

/// A Rust expression of the field's type for `default`, or the type's natural empty value.
pub fn expr(model: &Model, ty: &Ty, default: Option<&str>) -> Result<String, String> {
    match default {
        None => Ok(empty(model, ty)),
        Some(d) => value(model, ty, d.trim()).map_err(|e| format!("default {d:?} for {ty:?}: {e}")),
    }
}

pub fn empty(model: &Model, ty: &Ty) -> String {
    empty_value(ty, &|e| model.first_variant(e))
}

fn value(model: &Model, ty: &Ty, d: &str) -> Result<String, String> {
    Ok(match ty {
        Ty::String => {
            let s = unquote(d)?;
            if s.is_empty() {
                "String::new()".into()
            } else {
                format!("{}.to_owned()", lit(&s))
            }
        }
        Ty::Int => d.parse::<i64>().map_err(|e| e.to_string())?.to_string(),
        Ty::Float => {
            let f: f64 = d.parse().map_err(|_| "not a float".to_string())?;
            if !f.is_finite() {
                return Err("not finite".into());
            }
            format!("{f:?}")
        }
        Ty::Bool => match d {
            "true" => "true".into(),
            "false" => "false".into(),
            _ => return Err("not a bool".into()),
        },
        Ty::DateTime => {
            if d == "19700101T00:00:00Z" {
                "DateTime::epoch()".into()
            } else {
                format!("DateTime::parse({}).unwrap_or_default()", lit(d))
            }
        }
        Ty::Enum(n) => {
            let v = model
                .variant(n, d)
                .ok_or_else(|| format!("{d} is not a value of enum {n}"))?;
            format!("{}::{v}", camel(n))
        }
        Ty::Ref(_) => {
            if d == "Null" || d == "OpaqueRef:NULL" {
                "Ref::null()".into()
            } else {
                format!("Ref::new({})", lit(d))
            }
        }
        Ty::Set(t) => {
            let items = braces(d)?;
            if items.is_empty() {
                "Vec::new()".into()
            } else {
                let v: Result<Vec<_>, _> = items.iter().map(|i| value(model, t, i)).collect();
                format!("vec![{}]", v?.join(", "))
            }
        }
        Ty::Map(k, v) => {
            let items = braces(d)?;
            if items.is_empty() {
                "BTreeMap::new()".into()
            } else {
                let mut pairs = Vec::new();
                for item in items {
                    let (ks, vs) = split_top(&item, " -> ").ok_or("map entry without ->")?;
                    pairs.push(format!(
                        "({}, {})",
                        value(model, k, &ks)?,
                        value(model, v, &vs)?
                    ));
                }
                format!("BTreeMap::from([{}])", pairs.join(", "))
            }
        }
        Ty::Option(_) | Ty::AnyRecord | Ty::Record(_) | Ty::EventBatch => {
            return Err("unsupported".into())
        }
    })
}

/// `"a \"b\""` → `a "b"`.
fn unquote(d: &str) -> Result<String, String> {
    let inner = d
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or("not a quoted string")?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(c) => out.push(c),
                None => return Err("dangling escape".into()),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// `{a, b}` → `["a", "b"]`, splitting only outside quotes and nested braces.
fn braces(d: &str) -> Result<Vec<String>, String> {
    let inner = d
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or("not a {…} literal")?
        .trim();
    let mut out = Vec::new();
    let mut rest = inner.to_owned();
    while !rest.is_empty() {
        match split_top(&rest, ",") {
            Some((a, b)) => {
                out.push(a.trim().to_owned());
                rest = b.trim().to_owned();
            }
            None => {
                out.push(rest.trim().to_owned());
                break;
            }
        }
    }
    Ok(out)
}

/// Splits at the first `sep` outside quotes and braces.
fn split_top(s: &str, sep: &str) -> Option<(String, String)> {
    let (mut depth, mut quoted, mut escaped) = (0i32, false, false);
    for (i, c) in s.char_indices() {
        if quoted {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '{' => depth += 1,
            '}' => depth -= 1,
            _ if depth == 0 && s[i..].starts_with(sep) => {
                return Some((
                    s[..i].trim().to_owned(),
                    s[i + sep.len()..].trim().to_owned(),
                ))
            }
            _ => {}
        }
    }
    None
}
