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
        f.write_str(&self.code)?;
        if !self.params.is_empty() {
            write!(f, " {:?}", self.params)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiFailure {}
