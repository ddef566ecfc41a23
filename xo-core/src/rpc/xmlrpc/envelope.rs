//! xapi's reply envelope: a struct with `Status` and either `Value` or `ErrorDescription`.

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;

use super::de::ValueDe;
use super::lex::{Ev, Head, Item, Lexer, Tag};
use super::{prefix_path, reader, Response};
use crate::model::{ApiFailure, Value};
use crate::rpc::{DecodeError, Outcome};

fn fault_error(code: i64, message: &str) -> DecodeError {
    DecodeError::new(format!("server sent XML-RPC fault {code}: {message}"))
}

/// The envelope from a generic decode.
pub(crate) fn from_response(r: Response) -> Result<Outcome<Value>, DecodeError> {
    let mut params = match r {
        Response::Fault { code, message } => return Err(fault_error(code, &message)),
        Response::Params(p) => p,
    };
    if params.len() != 1 {
        return Err(DecodeError::new(format!(
            "xapi reply must have one param, found {}",
            params.len()
        )));
    }
    let Some(Value::Struct(mut s)) = params.pop() else {
        return Err(DecodeError::new("xapi reply is not a struct"));
    };
    match s.get("Status").and_then(Value::as_str) {
        Some("Success") => s
            .remove("Value")
            .map(Ok)
            .ok_or_else(|| DecodeError::new("Success reply has no Value")),
        Some("Failure") => {
            let desc = match s.remove("ErrorDescription") {
                Some(Value::Array(items)) => items,
                _ => {
                    return Err(
                        DecodeError::new("Failure reply has no ErrorDescription array")
                            .in_path(".ErrorDescription"),
                    )
                }
            };
            let mut out = Vec::with_capacity(desc.len());
            for (i, v) in desc.into_iter().enumerate() {
                out.push(match v {
                    Value::String(s) => s,
                    Value::Int(n) => n.to_string(),
                    Value::Int32(n) => n.to_string(),
                    other => {
                        return Err(DecodeError::new(format!(
                            "expected string, found {}",
                            other.kind()
                        ))
                        .in_path(format!(".ErrorDescription[{i}]")))
                    }
                });
            }
            Ok(Err(ApiFailure::from_description(out)))
        }
        Some(other) => Err(DecodeError::new(format!(
            "unknown Status {}",
            super::lex::snippet(other)
        ))
        .in_path(".Status")),
        None => Err(DecodeError::new("xapi reply has no string Status")),
    }
}

/// The envelope decoded straight from the events: `Value` goes into `T` as it streams past.
pub(crate) fn typed<T: DeserializeOwned>(lx: &mut Lexer<'_>) -> Result<Outcome<T>, DecodeError> {
    if reader::root(lx)? != Tag::MethodResponse {
        return Err(DecodeError::new("expected <methodResponse>, found <methodCall>").at(0));
    }
    match lx.next()? {
        Ev::Start(Tag::Params) => {}
        Ev::Start(Tag::Fault) => {
            let empty = lx.expect_start(Tag::Value)?;
            let v = reader::value(lx, empty)?;
            let code = v.get("faultCode").and_then(Value::as_i64).unwrap_or(0);
            let msg = v.get("faultString").and_then(Value::as_str).unwrap_or("");
            return Err(fault_error(code, msg).at(lx.pos()));
        }
        other => return Err(lx.unexpected(other, "<params>")),
    }
    if lx.expect_start(Tag::Param)? || lx.expect_start(Tag::Value)? {
        return Err(lx.err("xapi reply is not a struct"));
    }
    let head = lx.value_head()?;
    let Head::Typed(Tag::Struct, empty) = head else {
        return Err(lx.err("xapi reply is not a struct"));
    };
    lx.enter()?;
    let mut status: Option<String> = None;
    let mut value: Option<T> = None;
    let mut desc: Option<Vec<String>> = None;
    let mut open = !empty;
    while open {
        match lx.item(Tag::Member, Tag::Struct)? {
            Item::Start => {}
            Item::End => {
                open = false;
                continue;
            }
            Item::Empty => return Err(lx.empty_member()),
        }
        let name = reader::member_name(lx)?;
        let vempty = lx.expect_start(Tag::Value)?;
        let de = ValueDe::new(lx, vempty);
        let path = |e| prefix_path(e, &format!(".{name}"));
        match &*name {
            "Status" => status = Some(String::deserialize(de).map_err(path)?),
            "Value" => value = Some(T::deserialize(de).map_err(path)?),
            "ErrorDescription" => desc = Some(Vec::<String>::deserialize(de).map_err(path)?),
            _ => {
                IgnoredAny::deserialize(de).map_err(path)?;
            }
        }
        lx.expect_end(Tag::Member)?;
    }
    lx.leave();
    lx.end_value()?;
    lx.expect_end(Tag::Param)?;
    lx.expect_end(Tag::Params)?;
    lx.expect_end(Tag::MethodResponse)?;
    lx.expect_eof()?;
    match status.as_deref() {
        Some("Success") => value
            .map(Ok)
            .ok_or_else(|| lx.err("Success reply has no Value")),
        Some("Failure") => match desc {
            Some(d) => Ok(Err(ApiFailure::from_description(d))),
            None => Err(lx.err("Failure reply has no ErrorDescription")),
        },
        Some(other) => Err(lx
            .err(format!("unknown Status {}", super::lex::snippet(other)))
            .in_path(".Status")),
        None => Err(lx.err("xapi reply has no Status")),
    }
}
