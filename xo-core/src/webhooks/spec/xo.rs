//! Xen Orchestra's web-hooks plugin configuration, read and written exactly:
//!
//! ```json
//! {"hooks": [{"method": "vm.start", "type": "pre/post", "url": "https://…",
//!             "format": "json", "waitForResponse": false}]}
//! ```
//!
//! `format` defaults to `json` and `waitForResponse` to false, as in the plugin. Fields we do
//! not know are kept, so a config written back is the one that was read.

use super::SpecError;
use super::{array, boolean, err, http_url, index, join, object, parse_json, required, string};
use serde_json::{Map, Value};

/// When a hook fires relative to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookType {
    Pre,
    Post,
    PrePost,
}

impl HookType {
    pub fn parse(s: &str) -> Option<HookType> {
        match s {
            "pre" => Some(HookType::Pre),
            "post" => Some(HookType::Post),
            "pre/post" => Some(HookType::PrePost),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            HookType::Pre => "pre",
            HookType::Post => "post",
            HookType::PrePost => "pre/post",
        }
    }
    pub fn has_pre(self) -> bool {
        matches!(self, HookType::Pre | HookType::PrePost)
    }
    pub fn has_post(self) -> bool {
        matches!(self, HookType::Post | HookType::PrePost)
    }
}

/// Payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    /// A Microsoft Teams / Office 365 connector MessageCard.
    Office365,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "json" => Some(Format::Json),
            "office365" => Some(Format::Office365),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Office365 => "office365",
        }
    }
}

/// One `hooks[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct XoHook {
    pub method: String,
    pub type_: HookType,
    pub url: String,
    /// `None` when the field was absent (the plugin then uses `json`).
    pub format: Option<Format>,
    /// `None` when absent (false).
    pub wait_for_response: Option<bool>,
    /// Fields the plugin schema does not define, kept for writing back.
    pub extra: Map<String, Value>,
}

impl XoHook {
    pub fn format(&self) -> Format {
        self.format.unwrap_or_default()
    }
    pub fn wait_for_response(&self) -> bool {
        self.wait_for_response.unwrap_or(false)
    }
}

/// The plugin's whole configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct XoConfig {
    pub hooks: Vec<XoHook>,
    pub extra: Map<String, Value>,
}

impl XoConfig {
    pub fn parse(text: &str) -> Result<XoConfig, SpecError> {
        Self::from_value(&parse_json(text)?)
    }

    pub fn from_value(v: &Value) -> Result<XoConfig, SpecError> {
        let root = object(v, "")?;
        let hooks_v = required(root, "", "hooks")?;
        let mut hooks = Vec::new();
        for (i, h) in array(hooks_v, "hooks")?.iter().enumerate() {
            hooks.push(parse_hook(h, &index("hooks", i))?);
        }
        let extra = root
            .iter()
            .filter(|(k, _)| k.as_str() != "hooks")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(XoConfig { hooks, extra })
    }

    pub fn to_value(&self) -> Value {
        let mut root = self.extra.clone();
        let hooks = self.hooks.iter().map(hook_to_value).collect();
        root.insert("hooks".into(), Value::Array(hooks));
        Value::Object(root)
    }

    pub fn to_json_pretty(&self) -> String {
        // Serialising a Value cannot fail.
        serde_json::to_string_pretty(&self.to_value()).unwrap_or_default()
    }
}

const KNOWN: [&str; 5] = ["method", "type", "url", "format", "waitForResponse"];

fn parse_hook(v: &Value, path: &str) -> Result<XoHook, SpecError> {
    let o = object(v, path)?;
    let method = string(required(o, path, "method")?, &join(path, "method"))?;
    if method.is_empty() {
        return Err(err(&join(path, "method"), "must not be empty"));
    }
    let tpath = join(path, "type");
    let type_ = HookType::parse(&string(required(o, path, "type")?, &tpath)?)
        .ok_or_else(|| err(&tpath, r#"expected "pre", "post" or "pre/post""#))?;
    let upath = join(path, "url");
    let url = string(required(o, path, "url")?, &upath)?;
    http_url(&url, &upath)?;
    let format = match o.get("format") {
        None => None,
        Some(f) => {
            let fpath = join(path, "format");
            Some(
                Format::parse(&string(f, &fpath)?)
                    .ok_or_else(|| err(&fpath, r#"expected "json" or "office365""#))?,
            )
        }
    };
    let wait_for_response = match o.get("waitForResponse") {
        None => None,
        Some(w) => Some(boolean(w, &join(path, "waitForResponse"))?),
    };
    let extra = o
        .iter()
        .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(XoHook {
        method,
        type_,
        url,
        format,
        wait_for_response,
        extra,
    })
}

fn hook_to_value(h: &XoHook) -> Value {
    let mut o = h.extra.clone();
    o.insert("method".into(), Value::String(h.method.clone()));
    o.insert("type".into(), Value::String(h.type_.as_str().into()));
    o.insert("url".into(), Value::String(h.url.clone()));
    if let Some(f) = h.format {
        o.insert("format".into(), Value::String(f.as_str().into()));
    }
    if let Some(w) = h.wait_for_response {
        o.insert("waitForResponse".into(), Value::Bool(w));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        let bad = r#"{"hooks":[
            {"method":"vm.start","type":"pre","url":"http://a/"},
            {"method":"vm.stop","type":"post","url":"http://a/"},
            {"method":"vm.start","type":"during","url":"http://a/"}]}"#;
        let e = XoConfig::parse(bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"hooks[2].type: expected "pre", "post" or "pre/post""#
        );
        let e = XoConfig::parse(r#"{"hooks":[{"type":"pre","url":"http://a"}]}"#).unwrap_err();
        assert_eq!(e.path, "hooks[0].method");
        let e = XoConfig::parse(r#"{"hooks":[{"method":"m","type":"pre","url":"ftp://a"}]}"#)
            .unwrap_err();
        assert_eq!(e.path, "hooks[0].url");
        let e = XoConfig::parse(
            r#"{"hooks":[{"method":"m","type":"pre","url":"http://a","format":"xml"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.path, "hooks[0].format");
        let e = XoConfig::parse(
            r#"{"hooks":[{"method":"m","type":"pre","url":"http://a","waitForResponse":"yes"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.path, "hooks[0].waitForResponse");
        assert_eq!(XoConfig::parse("{}").unwrap_err().path, "hooks");
        assert!(XoConfig::parse("[")
            .unwrap_err()
            .message
            .contains("invalid JSON"));
    }
}
