//! The datamodel's type grammar and its mapping to Rust types.

use crate::names::{camel, class_ident};

/// One parsed datamodel type.
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
    /// `event.snapshot`: a record of whatever class the event is about.
    AnyRecord,
    /// `event.from`'s result.
    EventBatch,
}

/// Parses `string`, `VM ref`, `(string -> enum x) map`, `int set`, `sr_stat record option`, ….
pub fn parse(s: &str) -> Result<Ty, String> {
    let s = s.trim();
    let ty = match s {
        "string" => Ty::String,
        "int" => Ty::Int,
        "float" => Ty::Float,
        "bool" => Ty::Bool,
        "datetime" => Ty::DateTime,
        "an event batch" => Ty::EventBatch,
        "<class> record" => Ty::AnyRecord,
        _ => {
            if let Some(inner) = s.strip_suffix(" set") {
                Ty::Set(Box::new(parse(inner)?))
            } else if let Some(inner) = s.strip_suffix(" option") {
                Ty::Option(Box::new(parse(inner)?))
            } else if s.starts_with('(')
                && s.ends_with(") map")
                && closing_paren(s) == Some(s.len() - 5)
            {
                let inner = &s[1..s.len() - 5];
                let arrow = top_level_arrow(inner).ok_or_else(|| format!("bad map type {s:?}"))?;
                Ty::Map(
                    Box::new(parse(&inner[..arrow])?),
                    Box::new(parse(&inner[arrow + 4..])?),
                )
            } else if let Some(name) = s.strip_prefix("enum ") {
                Ty::Enum(ident_like(name, s)?)
            } else if let Some(name) = s.strip_suffix(" ref") {
                Ty::Ref(ident_like(name, s)?)
            } else if let Some(name) = s.strip_suffix(" record") {
                Ty::Record(ident_like(name, s)?)
            } else {
                return Err(format!("unknown type {s:?}"));
            }
        }
    };
    Ok(ty)
}

fn ident_like(name: &str, whole: &str) -> Result<String, String> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(name.to_owned())
    } else {
        Err(format!("bad name in type {whole:?}"))
    }
}

/// Index of the `)` matching the `(` at 0.
fn closing_paren(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn top_level_arrow(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    let b = s.as_bytes();
    for i in 0..b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b' ' if depth == 0 && s[i..].starts_with(" -> ") => return Some(i),
            _ => {}
        }
    }
    None
}

/// Where a type is used: decides HashMap vs BTreeMap and owned vs borrowed forms.
#[derive(Clone, Copy, PartialEq)]
pub enum Use {
    /// Record fields and nested positions.
    Owned,
    /// The top level of a message result.
    Result,
}

/// The owned Rust type (field or result).
pub fn rust(ty: &Ty, at: Use) -> String {
    match ty {
        Ty::String => "String".into(),
        Ty::Int => "i64".into(),
        Ty::Float => "f64".into(),
        Ty::Bool => "bool".into(),
        Ty::DateTime => "DateTime".into(),
        Ty::Enum(n) => camel(n),
        Ty::Ref(c) => format!("Ref<{}>", class_ident(c)),
        Ty::Record(c) => class_ident(c),
        Ty::Set(t) => format!("Vec<{}>", rust(t, Use::Owned)),
        Ty::Map(k, v) => {
            let map = if at == Use::Result && matches!(**v, Ty::Record(_)) {
                "HashMap"
            } else {
                "BTreeMap"
            };
            format!("{map}<{}, {}>", rust(k, Use::Owned), rust(v, Use::Owned))
        }
        Ty::Option(t) => format!("Option<{}>", rust(t, Use::Owned)),
        Ty::AnyRecord => "Option<Value>".into(),
        Ty::EventBatch => "EventBatch".into(),
    }
}

/// The borrowed parameter type of a message argument.
pub fn param(ty: &Ty) -> String {
    match ty {
        Ty::String => "&str".into(),
        Ty::Int | Ty::Float | Ty::Bool | Ty::Enum(_) => rust(ty, Use::Owned),
        Ty::Set(t) => format!("&[{}]", rust(t, Use::Owned)),
        _ => format!("&{}", rust(ty, Use::Owned)),
    }
}

/// The type's natural empty value, as a Rust expression.
pub fn empty_value(ty: &Ty, first_enum_value: &dyn Fn(&str) -> Option<String>) -> String {
    match ty {
        Ty::String => "String::new()".into(),
        Ty::Int => "0".into(),
        Ty::Float => "0.0".into(),
        Ty::Bool => "false".into(),
        Ty::DateTime => "DateTime::epoch()".into(),
        Ty::Enum(n) => match first_enum_value(n) {
            Some(v) => format!("{}::{}", camel(n), v),
            None => format!("{}::default()", camel(n)),
        },
        Ty::Ref(_) => "Ref::null()".into(),
        Ty::Record(c) => format!("{}::default()", class_ident(c)),
        Ty::Set(_) => "Vec::new()".into(),
        Ty::Map(..) => "BTreeMap::new()".into(),
        Ty::Option(_) | Ty::AnyRecord => "None".into(),
        Ty::EventBatch => "EventBatch::default()".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        assert_eq!(
            parse("VM ref set").unwrap(),
            Ty::Set(Box::new(Ty::Ref("VM".into())))
        );
        let t = parse("(VM ref -> (string -> string) map) map").unwrap();
        assert_eq!(
            rust(&t, Use::Owned),
            "BTreeMap<Ref<Vm>, BTreeMap<String, String>>"
        );
        let t = parse("(VM ref -> VM record) map").unwrap();
        assert_eq!(rust(&t, Use::Result), "HashMap<Ref<Vm>, Vm>");
        assert_eq!(
            rust(&parse("sr_stat record option").unwrap(), Use::Owned),
            "Option<SrStat>"
        );
        assert_eq!(
            param(&parse("enum vm_power_state").unwrap()),
            "VmPowerState"
        );
        assert!(parse("strin").is_err());
        assert!(parse("(string - string) map").is_err());
    }
}
