//! `generated/enums.rs`: every datamodel enum, with a catch-all `Unknown(String)`.

use std::fmt::Write as _;

use crate::names::camel;
use crate::{doc, lit, md, Model};

pub fn enums_file(model: &Model) -> Result<String, String> {
    let mut out = String::new();
    out.push_str(
        "//! Every enum of the datamodel. Values from a newer host decode as `Unknown(text)` and\n\
         //! encode back unchanged.\n\n\
         use crate::model::wire_enum::{wire_enum_impls, WireEnum};\n\n",
    );
    for (name, values) in &model.enums {
        let ty = camel(name);
        doc(&mut out, &format!("The datamodel enum `{name}`."));
        out.push_str("#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]\n");
        let _ = writeln!(out, "pub enum {ty} {{");
        for (wire, vdoc, variant) in values {
            let vdoc = match vdoc.trim() {
                "" => "no description in the datamodel.".to_owned(),
                d => md(d),
            };
            doc(&mut out, &format!("`{wire}`: {vdoc}"));
            let _ = writeln!(out, "{variant},");
        }
        out.push_str("/// A value this SDK does not know (from a newer host), kept verbatim.\nUnknown(String),\n}\n\n");
        let _ = writeln!(out, "impl {ty} {{");
        out.push_str(
            "/// Every known value, in datamodel order.\npub const ALL: &'static [Self] = &[",
        );
        for (_, _, variant) in values {
            let _ = write!(out, "Self::{variant}, ");
        }
        out.push_str(
            "];\n\n/// The wire spelling.\npub fn as_str(&self) -> &str {\nmatch self {\n",
        );
        for (wire, _, variant) in values {
            let _ = writeln!(out, "Self::{variant} => {},", lit(wire));
        }
        out.push_str("Self::Unknown(s) => s,\n}\n}\n}\n\n");
        let _ = writeln!(out, "impl WireEnum for {ty} {{");
        out.push_str("fn known(s: &str) -> Option<Self> {\nSome(match s {\n");
        for (wire, _, variant) in values {
            let _ = writeln!(out, "{} => Self::{variant},", lit(wire));
        }
        out.push_str(
            "_ => return None,\n})\n}\n\nfn unknown(s: String) -> Self {\nSelf::Unknown(s)\n}\n\n",
        );
        out.push_str("fn wire(&self) -> &str {\nself.as_str()\n}\n}\n\n");
        let first = &values
            .first()
            .ok_or_else(|| format!("enum {name} has no values"))?
            .2;
        let _ = writeln!(out, "wire_enum_impls!({ty}, {first});\n");
    }
    Ok(out)
}
