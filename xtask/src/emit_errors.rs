//! `generated/errors.rs`: `ApiError`, one variant per wire error code (`spec/api_errors.json`).

use std::fmt::Write as _;

use crate::names::{error_variant, snake};
use crate::spec::ApiErrors;
use crate::{doc, lit, md, unique};

struct Entry {
    code: String,
    variant: String,
    /// `None` for codes without a datamodel entry (their params are unnamed).
    params: Option<Vec<(String, String)>>,
    doc: String,
}

fn entries(errors: &ApiErrors) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for e in &errors.errors {
        let mut fields: Vec<(String, String)> = Vec::new();
        for p in &e.params {
            let mut f = snake(p);
            let base = f.clone();
            let mut n = 2;
            while fields.iter().any(|(_, g)| *g == f) {
                f = format!("{base}_{n}");
                n += 1;
            }
            fields.push((p.clone(), f));
        }
        out.push(Entry {
            code: e.name.clone(),
            variant: error_variant(&e.name),
            params: Some(fields),
            doc: e.doc.clone(),
        });
    }
    for code in &errors.codes_without_datamodel_entry {
        out.push(Entry {
            code: code.clone(),
            variant: error_variant(code),
            params: None,
            doc: "This code has no datamodel entry, so its parameters are not named.".into(),
        });
    }
    out.sort_by(|a, b| a.code.cmp(&b.code));
    unique(out.iter().map(|e| e.code.as_str()), "error codes")?;
    unique(
        out.iter().map(|e| e.variant.as_str()).chain(["Unknown"]),
        "ApiError variants",
    )?;
    Ok(out)
}

/// One `ApiError` variant: what the code means, its wire code and parameter names in order,
/// and a doc line on each field.
fn variant(e: &Entry, out: &mut String) {
    doc(out, &md(e.doc.trim()));
    let Some(ps) = &e.params else {
        doc(out, &format!("\nWire code: `{}`.", e.code));
        let _ = writeln!(
            out,
            "{} {{\n/// The parameters, as on the wire.\nparams: Vec<String>,\n}},",
            e.variant
        );
        return;
    };
    let names: Vec<String> = ps.iter().map(|p| format!("`{}`", p.0)).collect();
    let params = if names.is_empty() {
        "No parameters.".to_owned()
    } else {
        format!("Parameters: {}.", names.join(", "))
    };
    doc(out, &format!("\nWire code: `{}`. {params}", e.code));
    if ps.is_empty() {
        let _ = writeln!(out, "{},", e.variant);
        return;
    }
    let _ = writeln!(out, "{} {{", e.variant);
    for (i, (wire, field)) in ps.iter().enumerate() {
        let _ = writeln!(
            out,
            "/// Parameter {} of {}: `{wire}`.\n{field}: String,",
            i + 1,
            ps.len()
        );
    }
    out.push_str("},\n");
}

pub fn errors_file(errors: &ApiErrors) -> Result<String, String> {
    let entries = entries(errors)?;
    let mut out = String::new();
    out.push_str(
        "//! Typed API errors: one variant per wire code, its parameters named as in the datamodel.\n\n\
         use std::fmt;\n\nuse crate::model::ApiFailure;\n\n\
         /// An API failure decoded by its code. Missing parameters are empty strings; extra ones are\n\
         /// dropped (the [`ApiFailure`] keeps them). Codes this SDK does not know become `Unknown`.\n\
         #[derive(Clone, PartialEq, Eq)]\npub enum ApiError {\n",
    );
    for e in &entries {
        variant(e, &mut out);
    }
    out.push_str(
        "/// A code this SDK does not know.\nUnknown {\n/// The wire code.\ncode: String,\n\
         /// The parameters, as on the wire.\nparams: Vec<String>,\n},\n}\n\n",
    );

    out.push_str("/// Every wire code, sorted.\npub const ERROR_CODES: &[&str] = &[\n");
    for e in &entries {
        let _ = writeln!(out, "{},", lit(&e.code));
    }
    out.push_str("];\n\nimpl ApiError {\n");

    out.push_str(
        "/// Decodes a failure by its code.\npub fn from_failure(f: &ApiFailure) -> ApiError {\n\
         let p = |i: usize| f.params.get(i).cloned().unwrap_or_default();\nmatch f.code.as_str() {\n",
    );
    for e in &entries {
        match &e.params {
            Some(ps) if ps.is_empty() => {
                let _ = writeln!(out, "{} => ApiError::{},", lit(&e.code), e.variant);
            }
            Some(ps) => {
                let fields: Vec<String> = ps
                    .iter()
                    .enumerate()
                    .map(|(i, p)| format!("{}: p({i})", p.1))
                    .collect();
                let _ = writeln!(
                    out,
                    "{} => ApiError::{} {{ {} }},",
                    lit(&e.code),
                    e.variant,
                    fields.join(", ")
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "{} => ApiError::{} {{ params: f.params.clone() }},",
                    lit(&e.code),
                    e.variant
                );
            }
        }
    }
    out.push_str(
        "_ => ApiError::Unknown { code: f.code.clone(), params: f.params.clone() },\n}\n}\n\n",
    );

    out.push_str("/// The wire code.\npub fn code(&self) -> &str {\nmatch self {\n");
    for e in &entries {
        let pat = if matches!(&e.params, Some(ps) if ps.is_empty()) {
            ""
        } else {
            " { .. }"
        };
        let _ = writeln!(out, "ApiError::{}{pat} => {},", e.variant, lit(&e.code));
    }
    out.push_str("ApiError::Unknown { code, .. } => code,\n}\n}\n\n");

    out.push_str("/// The positional parameters, as on the wire.\npub fn params(&self) -> Vec<&str> {\nmatch self {\n");
    for e in &entries {
        match &e.params {
            Some(ps) if ps.is_empty() => {
                let _ = writeln!(out, "ApiError::{} => Vec::new(),", e.variant);
            }
            Some(ps) => {
                let names: Vec<&str> = ps.iter().map(|p| p.1.as_str()).collect();
                let _ = writeln!(
                    out,
                    "ApiError::{} {{ {} }} => vec![{}],",
                    e.variant,
                    names.join(", "),
                    names.join(", ")
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "ApiError::{} {{ params }} => params.iter().map(String::as_str).collect(),",
                    e.variant
                );
            }
        }
    }
    out.push_str("ApiError::Unknown { params, .. } => params.iter().map(String::as_str).collect(),\n}\n}\n\n");

    out.push_str(
        "/// Back to the wire form.\npub fn to_failure(&self) -> ApiFailure {\n\
         ApiFailure::new(self.code(), self.params().into_iter().map(str::to_owned).collect())\n}\n\n",
    );

    for (fname, what, idx) in [
        ("param_names", "wire names (as in the datamodel)", 0),
        ("param_fields", "Rust field names", 1),
    ] {
        let _ = writeln!(
            out,
            "/// The parameter {what} of a code; `None` for codes whose parameters are not named.\n\
             pub fn {fname}(code: &str) -> Option<&'static [&'static str]> {{\nSome(match code {{"
        );
        for e in &entries {
            if let Some(ps) = &e.params {
                let names: Vec<String> = ps
                    .iter()
                    .map(|p| lit(if idx == 0 { &p.0 } else { &p.1 }))
                    .collect();
                let _ = writeln!(out, "{} => &[{}],", lit(&e.code), names.join(", "));
            }
        }
        out.push_str("_ => return None,\n})\n}\n\n");
    }
    out.push_str("}\n\n");

    out.push_str(
        "impl From<&ApiFailure> for ApiError {\nfn from(f: &ApiFailure) -> Self {\nApiError::from_failure(f)\n}\n}\n\n\
         /// Redacts session refs (see `api_failure::write_failure`), like `Debug`.\n\
         impl fmt::Display for ApiError {\nfn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {\n\
         let params: Vec<String> = self.params().into_iter().map(str::to_owned).collect();\n\
         crate::model::api_failure::write_failure(f, self.code(), &params)\n}\n}\n\n\
         impl fmt::Debug for ApiError {\nfn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {\n\
         write!(f, \"ApiError({self})\")\n}\n}\n\n\
         impl std::error::Error for ApiError {}\n",
    );
    Ok(out)
}
