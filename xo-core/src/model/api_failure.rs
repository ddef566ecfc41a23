//! An API failure as xapi reports it: `[code, params…]`.

use std::fmt;

/// A failed call: the wire error code and its positional parameters.
///
/// xapi sends `ErrorDescription = [code, p1, p2, …]` over XML-RPC, `error: [code, …]` over
/// JSON-RPC v1 and `error: {code: 1, message: code, data: [p1, …]}` over JSON-RPC v2.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiFailure {
    pub code: String,
    pub params: Vec<String>,
}

impl ApiFailure {
    pub fn new(code: impl Into<String>, params: Vec<String>) -> Self {
        ApiFailure {
            code: code.into(),
            params,
        }
    }

    /// Builds a failure from xapi's flat `[code, params…]` list.
    pub fn from_description(mut description: Vec<String>) -> Self {
        if description.is_empty() {
            return ApiFailure::new("INTERNAL_ERROR", vec!["empty error description".into()]);
        }
        let code = description.remove(0);
        ApiFailure {
            code,
            params: description,
        }
    }

    /// A parameter by its datamodel name (`"expected"`, `"Master IP address"`) or by the
    /// `ApiError` field name (`"master_ip_address"`). `None` when the code does not name it or
    /// the server sent fewer params.
    pub fn param(&self, name: &str) -> Option<&str> {
        use super::ApiError;
        let wire = ApiError::param_names(&self.code)?;
        let fields = ApiError::param_fields(&self.code)?;
        let i = wire
            .iter()
            .position(|n| *n == name)
            .or_else(|| fields.iter().position(|n| *n == name))?;
        self.params.get(i).map(String::as_str)
    }

    /// The failure decoded by its code (see [`super::ApiError`]).
    pub fn typed(&self) -> super::ApiError {
        super::ApiError::from_failure(self)
    }

    /// The flat `[code, params…]` list.
    pub fn to_description(&self) -> Vec<String> {
        std::iter::once(self.code.clone())
            .chain(self.params.iter().cloned())
            .collect()
    }
}

impl fmt::Debug for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiFailure({self})")
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_failure(f, &self.code, &self.params)
    }
}

/// Whether param `index` of a failure is a session ref, which must never be printed: the
/// handle of `SESSION_INVALID` and `SESSION_NOT_REGISTERED`, and of `HANDLE_INVALID` for a session.
pub(crate) fn is_secret_param(code: &str, params: &[String], index: usize) -> bool {
    match (code, index) {
        ("SESSION_INVALID" | "SESSION_NOT_REGISTERED", 0) => true,
        ("HANDLE_INVALID", 1) => params
            .first()
            .is_some_and(|c| c.eq_ignore_ascii_case("session")),
        _ => false,
    }
}

/// `CODE ["p1", …]`, with session refs redacted (shared by `ApiFailure` and `ApiError`).
pub(crate) fn write_failure(
    f: &mut fmt::Formatter<'_>,
    code: &str,
    params: &[String],
) -> fmt::Result {
    f.write_str(code)?;
    if !params.is_empty() {
        let shown: Vec<&str> = params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if is_secret_param(code, params, i) {
                    "<redacted>"
                } else {
                    p.as_str()
                }
            })
            .collect();
        write!(f, " {shown:?}")?;
    }
    Ok(())
}

impl std::error::Error for ApiFailure {}
