//! Webhook specs: Xen Orchestra's web-hooks plugin configuration ([`xo`]) and our extended
//! spec ([`extended`]). Errors name the JSON path of the offending value.

pub mod extended;
mod write;
pub mod xo;

pub use extended::{
    CallSubscription, Condition, ConditionKind, EndpointSpec, EventSubscription, Operation,
    Ordering, RetryPolicy, Spec,
};
pub use xo::{Format, HookType, XoConfig, XoHook};

use serde_json::{Map, Value};
use std::fmt;

/// A spec was refused; `path` is like `hooks[2].type` or `endpoints[0].retry.schedule[3]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}
impl std::error::Error for SpecError {}

pub(crate) fn err(path: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        path: path.to_string(),
        message: message.into(),
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Parses JSON text, reporting syntax errors with line and column.
pub(crate) fn parse_json(text: &str) -> Result<Value, SpecError> {
    if text.len() > 16 << 20 {
        return Err(err("", "spec larger than 16 MiB"));
    }
    serde_json::from_str(text).map_err(|e| err("", format!("invalid JSON: {e}")))
}

pub(crate) fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, SpecError> {
    v.as_object().ok_or_else(|| err(path, "expected an object"))
}

pub(crate) fn array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, SpecError> {
    v.as_array().ok_or_else(|| err(path, "expected an array"))
}

pub(crate) fn string(v: &Value, path: &str) -> Result<String, SpecError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| err(path, "expected a string"))
}

pub(crate) fn boolean(v: &Value, path: &str) -> Result<bool, SpecError> {
    v.as_bool()
        .ok_or_else(|| err(path, "expected true or false"))
}

/// A required field of an object.
pub(crate) fn required<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a Value, SpecError> {
    obj.get(key)
        .ok_or_else(|| err(&join(path, key), "required field is missing"))
}

/// Checks that a URL is absolute http(s).
pub(crate) fn http_url(text: &str, path: &str) -> Result<(), SpecError> {
    let u = url::Url::parse(text).map_err(|e| err(path, format!("invalid URL: {e}")))?;
    match u.scheme() {
        "http" | "https" if u.host().is_some() => Ok(()),
        "http" | "https" => Err(err(path, "URL has no host")),
        other => Err(err(
            path,
            format!("expected an http or https URL, got scheme {other:?}"),
        )),
    }
}

/// Rejects keys not in `known` so typos surface instead of being ignored.
pub(crate) fn no_unknown(
    obj: &Map<String, Value>,
    path: &str,
    known: &[&str],
) -> Result<(), SpecError> {
    for k in obj.keys() {
        if !known.contains(&k.as_str()) {
            return Err(err(
                &join(path, k),
                format!("unknown field (expected one of: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}
