//! The vendored datamodel (`spec/xenapi.json`, `spec/api_errors.json`) as plain structs.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Class {
    pub name: String,
    pub description: String,
    pub fields: Vec<Field>,
    pub messages: Vec<Message>,
    pub enums: Vec<Enum>,
    pub lifecycle: Lifecycle,
}

#[derive(Debug, Deserialize)]
pub struct Field {
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub qualifier: String,
    pub lifecycle: Lifecycle,
    pub default: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub name: String,
    pub description: String,
    /// `["void"]` or `[type, doc]`.
    pub result: Vec<String>,
    pub params: Vec<Param>,
    pub errors: Vec<MessageError>,
    pub lifecycle: Lifecycle,
    pub implicit: bool,
}

#[derive(Debug, Deserialize)]
pub struct Param {
    #[serde(rename = "type")]
    pub ty: String,
    pub name: String,
    pub doc: String,
    pub required: bool,
}

#[derive(Debug, Deserialize)]
pub struct MessageError {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct Enum {
    pub name: String,
    pub values: Vec<EnumValue>,
}

#[derive(Debug, Deserialize)]
pub struct EnumValue {
    pub name: String,
    pub doc: String,
}

#[derive(Debug, Deserialize)]
pub struct Lifecycle {
    pub state: String,
}

#[derive(Debug, Deserialize)]
pub struct ApiErrors {
    pub errors: Vec<ApiError>,
    pub codes_without_datamodel_entry: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct ApiError {
    pub name: String,
    pub params: Vec<String>,
    pub doc: String,
}

/// Both spec files, parsed.
pub struct Spec {
    pub classes: Vec<Class>,
    pub errors: ApiErrors,
}

impl Spec {
    pub fn parse(xenapi_json: &str, api_errors_json: &str) -> Result<Spec, String> {
        let classes =
            serde_json::from_str(xenapi_json).map_err(|e| format!("spec/xenapi.json: {e}"))?;
        let errors = serde_json::from_str(api_errors_json)
            .map_err(|e| format!("spec/api_errors.json: {e}"))?;
        Ok(Spec { classes, errors })
    }

    pub fn class(&self, name: &str) -> Option<&Class> {
        self.classes.iter().find(|c| c.name == name)
    }
}
