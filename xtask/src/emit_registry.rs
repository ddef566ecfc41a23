//! `generated/registry.rs`: from a class's wire name to its generated record type, for code
//! that is configured by name (the events watcher) but wants typed records.

use std::fmt::Write as _;

use crate::names::class_ident;
use crate::{lit, Model};

pub fn registry_file(model: &Model) -> String {
    let mut out = String::new();
    out.push_str(
        "//! Every class's record type, reachable by the class's wire name.\n\n\
         use super::*;\n\
         use crate::model::{ClassVisitor};\n\n\
         /// Calls `visitor` with the record type of the class named `name` (any case: `VM`, `vm`);\n\
         /// `None` for a class this version does not know.\n\
         pub fn visit_class<V: ClassVisitor>(name: &str, visitor: V) -> Option<V::Output> {\n\
         let lower = name.to_ascii_lowercase();\n\
         Some(match lower.as_str() {\n",
    );
    // `event` records are the events themselves, not objects that events describe.
    for c in model.spec.classes.iter().filter(|c| c.name != "event") {
        let _ = writeln!(
            out,
            "{} => visitor.visit::<{}>(),",
            lit(&c.name.to_ascii_lowercase()),
            class_ident(&c.name)
        );
    }
    out.push_str("_ => return None,\n})\n}\n");
    out
}
