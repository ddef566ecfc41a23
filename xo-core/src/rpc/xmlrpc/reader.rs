//! Generic decoding into the dynamic [`Value`] tree, and the scalar parsers the typed
//! deserializer shares.

use std::borrow::Cow;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

use super::lex::{snippet, Ev, Head, Item, Lexer, Tag};
use super::{prefix_path, Response};
use crate::model::{parse_float, DateTime, Struct, Value};
use crate::rpc::{DecodeError, MethodCall};

/// Standard alphabet; padding optional, as senders differ.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn parse_int(text: &str) -> Result<i64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("expected int, found {}", snippet(text)))
}

pub(crate) fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(format!("expected boolean 0 or 1, found {}", snippet(text))),
    }
}

pub(crate) fn parse_double(text: &str) -> Result<f64, String> {
    parse_float(text).ok_or_else(|| format!("expected double, found {}", snippet(text)))
}

/// Base64 with any ASCII whitespace (line breaks) inside ignored.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let bad = |_| "invalid base64".to_string();
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        BASE64.decode(compact).map_err(bad)
    } else {
        BASE64.decode(text).map_err(bad)
    }
}

/// Reads a value whose `<value>` start tag (or `<value/>` when `empty`) was just consumed.
pub(crate) fn value(lx: &mut Lexer<'_>, empty: bool) -> Result<Value, DecodeError> {
    if empty {
        return Ok(Value::String(String::new()));
    }
    match lx.value_head()? {
        Head::Text(s) => Ok(Value::String(s.into_owned())),
        Head::Typed(tag, empty) => {
            let v = typed(lx, tag, empty)?;
            lx.end_value()?;
            Ok(v)
        }
    }
}

fn typed<'a>(lx: &mut Lexer<'a>, tag: Tag, empty: bool) -> Result<Value, DecodeError> {
    let pos = lx.pos();
    let text = |lx: &mut Lexer<'a>| -> Result<Cow<'a, str>, DecodeError> {
        if empty {
            Ok("".into())
        } else {
            lx.text(tag)
        }
    };
    let scalar = |r: Result<Value, String>| r.map_err(|m| DecodeError::new(m).at(pos));
    Ok(match tag {
        Tag::String => Value::String(text(lx)?.into_owned()),
        Tag::Int | Tag::I4 | Tag::I8 => scalar(parse_int(&text(lx)?).map(Value::Int))?,
        Tag::Boolean => scalar(parse_bool(&text(lx)?).map(Value::Bool))?,
        Tag::Double => scalar(parse_double(&text(lx)?).map(Value::Double))?,
        Tag::DateTime => scalar(
            DateTime::parse(&text(lx)?)
                .map(Value::DateTime)
                .map_err(|e| e.to_string()),
        )?,
        Tag::Base64 => scalar(decode_base64(&text(lx)?).map(Value::Base64))?,
        Tag::Nil => {
            if !text(lx)?.trim().is_empty() {
                return Err(DecodeError::new("<nil> must be empty").at(pos));
            }
            Value::Nil
        }
        Tag::Array => {
            lx.enter()?;
            let items = if empty { Vec::new() } else { array(lx)? };
            lx.leave();
            Value::Array(items)
        }
        Tag::Struct => {
            lx.enter()?;
            let members = if empty { Struct::new() } else { members(lx)? };
            lx.leave();
            Value::Struct(members)
        }
        other => return Err(DecodeError::new(format!("unexpected <{}>", other.name())).at(pos)),
    })
}

/// The body of a non-empty `<array>`, through `</array>`.
fn array(lx: &mut Lexer<'_>) -> Result<Vec<Value>, DecodeError> {
    let mut items = Vec::new();
    match lx.item(Tag::Data, Tag::Array)? {
        Item::Start => loop {
            let empty = match lx.item(Tag::Value, Tag::Data)? {
                Item::Start => false,
                Item::Empty => true,
                Item::End => break,
            };
            let i = items.len();
            items.push(value(lx, empty).map_err(|e| prefix_path(e, &format!("[{i}]")))?);
        },
        Item::Empty => {}
        Item::End => return Ok(items),
    }
    lx.expect_end(Tag::Array)?;
    Ok(items)
}

/// The body of a non-empty `<struct>`, through `</struct>`.
fn members(lx: &mut Lexer<'_>) -> Result<Struct, DecodeError> {
    let mut out = Struct::new();
    loop {
        match lx.item(Tag::Member, Tag::Struct)? {
            Item::Start => {}
            Item::End => return Ok(out),
            Item::Empty => return Err(lx.empty_member()),
        }
        let name = member_name(lx)?;
        let empty = lx.expect_start(Tag::Value)?;
        let v = value(lx, empty).map_err(|e| prefix_path(e, &format!(".{name}")))?;
        lx.expect_end(Tag::Member)?;
        out.0.push((name.into_owned(), v));
    }
}

/// `<name>…</name>` (or `<name/>`) right after `<member>`.
pub(crate) fn member_name<'a>(lx: &mut Lexer<'a>) -> Result<Cow<'a, str>, DecodeError> {
    if lx.expect_start(Tag::Name)? {
        Ok("".into())
    } else {
        lx.text(Tag::Name)
    }
}

/// `<params>` body: a list of `<param><value>…</value></param>`, through `</params>`.
/// Call params carry their index in error paths; a reply's single param does not.
fn params(lx: &mut Lexer<'_>, indexed: bool) -> Result<Vec<Value>, DecodeError> {
    let mut out = Vec::new();
    loop {
        match lx.next()? {
            Ev::Start(Tag::Param) => {}
            Ev::End(Tag::Params) => return Ok(out),
            other => return Err(lx.unexpected(other, "<param> or </params>")),
        }
        let empty = lx.expect_start(Tag::Value)?;
        let i = out.len();
        let v = value(lx, empty).map_err(|e| {
            if indexed {
                prefix_path(e, &format!("params[{i}]"))
            } else {
                e
            }
        })?;
        out.push(v);
        lx.expect_end(Tag::Param)?;
    }
}

/// `<methodCall>` body after its start tag, through the end of the document.
pub(crate) fn call(lx: &mut Lexer<'_>) -> Result<MethodCall, DecodeError> {
    if lx.expect_start(Tag::MethodName)? {
        return Err(lx.err("empty <methodName>"));
    }
    let method = lx.text(Tag::MethodName)?.trim().to_owned();
    if method.is_empty() {
        return Err(lx.err("empty <methodName>"));
    }
    let params = match lx.next()? {
        Ev::Start(Tag::Params) => {
            let p = params(lx, true)?;
            lx.expect_end(Tag::MethodCall)?;
            p
        }
        Ev::Empty(Tag::Params) => {
            lx.expect_end(Tag::MethodCall)?;
            Vec::new()
        }
        Ev::End(Tag::MethodCall) => Vec::new(),
        other => return Err(lx.unexpected(other, "<params> or </methodCall>")),
    };
    lx.expect_eof()?;
    Ok(MethodCall { method, params })
}

/// `<methodResponse>` body after its start tag, through the end of the document.
pub(crate) fn response(lx: &mut Lexer<'_>) -> Result<Response, DecodeError> {
    let out = match lx.next()? {
        Ev::Start(Tag::Params) => Response::Params(params(lx, false)?),
        Ev::Empty(Tag::Params) => Response::Params(Vec::new()),
        Ev::Start(Tag::Fault) => {
            let pos = lx.pos();
            let empty = lx.expect_start(Tag::Value)?;
            let v = value(lx, empty)?;
            lx.expect_end(Tag::Fault)?;
            fault(&v).map_err(|m| DecodeError::new(m).at(pos).in_path("fault"))?
        }
        other => return Err(lx.unexpected(other, "<params> or <fault>")),
    };
    lx.expect_end(Tag::MethodResponse)?;
    lx.expect_eof()?;
    Ok(out)
}

fn fault(v: &Value) -> Result<Response, String> {
    let s = v.as_struct().ok_or("fault value is not a struct")?;
    let code = s
        .get("faultCode")
        .and_then(Value::as_i64)
        .ok_or("fault has no int faultCode")?;
    let message = match s.get("faultString") {
        Some(Value::String(m)) => m.clone(),
        _ => return Err("fault has no string faultString".into()),
    };
    Ok(Response::Fault { code, message })
}

/// The root start tag, after an optional declaration, comments and whitespace.
pub(crate) fn root(lx: &mut Lexer<'_>) -> Result<Tag, DecodeError> {
    match lx.next()? {
        Ev::Start(t @ (Tag::MethodCall | Tag::MethodResponse)) => Ok(t),
        Ev::Eof => Err(lx.err("empty document")),
        other => Err(lx.unexpected(other, "<methodCall> or <methodResponse>")),
    }
}

/// A bare `<value>` fragment as the whole document.
pub(crate) fn fragment(lx: &mut Lexer<'_>) -> Result<Value, DecodeError> {
    let empty = lx.expect_start(Tag::Value)?;
    let v = value(lx, empty)?;
    lx.expect_eof()?;
    Ok(v)
}
