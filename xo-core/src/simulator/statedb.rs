//! xapi's own database dump format (`state.db`, `xe pool-dump-database`):
//! `<database><manifest>…</manifest><table name="VM"><row ref="OpaqueRef:…" uuid="…"
//! name__label="…"/></table></database>`, with `__` for namespaced fields, maps as
//! `(('k' 'v') ('k2' 'v2'))` and sets as `('a' 'b')`.

use std::net::IpAddr;
use std::path::Path;

use quick_xml::events::Event;
use quick_xml::Reader;

use super::datamodel::{Class, Ty};
use super::state::{HostSlot, State};
use super::SimError;
use crate::model::{parse_float, DateTime, Struct, Value};

/// Largest dump accepted.
const MAX_FILE: u64 = 1 << 30;
/// Deepest s-expression accepted (a map is depth 2).
const MAX_SEXPR_DEPTH: usize = 8;

pub fn read_file(path: &Path) -> Result<String, SimError> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_FILE {
        return Err(SimError::Db(format!(
            "{}: {len} bytes is more than the {MAX_FILE} accepted",
            path.display()
        )));
    }
    let bytes = std::fs::read(path)?;
    String::from_utf8(bytes)
        .map_err(|e| SimError::Db(format!("{}: not UTF-8 ({e})", path.display())))
}

/// One row: its (attribute, value) pairs as written.
pub type Row = Vec<(String, String)>;

/// A parsed dump: tables of rows.
pub struct Dump {
    pub tables: Vec<(String, Vec<Row>)>,
}

impl Dump {
    pub fn host_count(&self) -> usize {
        self.tables
            .iter()
            .filter(|(n, _)| n == "host")
            .map(|(_, rows)| rows.len())
            .sum()
    }
}

pub fn parse(text: &str) -> Result<Dump, String> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut tables: Vec<(String, Vec<Row>)> = Vec::new();
    let mut in_table = false;
    let mut seen_database = false;
    loop {
        let pos = reader.buffer_position();
        let ev = reader
            .read_event()
            .map_err(|e| format!("XML error at byte {pos}: {e}"))?;
        match ev {
            Event::Eof => break,
            Event::DocType(_) => return Err("DOCTYPE declarations are not accepted".into()),
            Event::Empty(e) if e.name().as_ref() == b"table" => {
                // An empty table is written `<table name="Bond"/>`.
                let name = attrs(&e)?
                    .into_iter()
                    .find(|(k, _)| k == "name")
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                tables.push((name, Vec::new()));
                in_table = false;
            }
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"database" => seen_database = true,
                b"table" => {
                    let name = attrs(&e)?
                        .into_iter()
                        .find(|(k, _)| k == "name")
                        .map(|(_, v)| v)
                        .unwrap_or_default();
                    tables.push((name, Vec::new()));
                    in_table = true;
                }
                b"row" if in_table => {
                    let row = attrs(&e)?;
                    if let Some(t) = tables.last_mut() {
                        t.1.push(row);
                    }
                }
                _ => {}
            },
            Event::End(e) if e.name().as_ref() == b"table" => in_table = false,
            _ => {}
        }
    }
    if !seen_database {
        return Err("not a state.db dump: no <database> element".into());
    }
    Ok(Dump { tables })
}

fn attrs(e: &quick_xml::events::BytesStart) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| format!("bad attribute: {e}"))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|e| format!("bad attribute value for {key}: {e}"))?
            .into_owned();
        out.push((key, value));
    }
    Ok(out)
}

/// A tiny strict parser for xapi's s-expressions: lists of quoted atoms, bounded depth.
#[derive(Debug, PartialEq)]
enum Sexp {
    Atom(String),
    List(Vec<Sexp>),
}

fn parse_sexp(text: &str) -> Result<Sexp, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let v = sexp_at(&chars, &mut i, 0)?;
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    if i != chars.len() {
        return Err(format!("trailing text at {i} in s-expression"));
    }
    Ok(v)
}

fn sexp_at(c: &[char], i: &mut usize, depth: usize) -> Result<Sexp, String> {
    while *i < c.len() && c[*i].is_whitespace() {
        *i += 1;
    }
    match c.get(*i) {
        None => Err("unexpected end of s-expression".into()),
        Some('(') => {
            if depth >= MAX_SEXPR_DEPTH {
                return Err("s-expression too deep".into());
            }
            *i += 1;
            let mut items = Vec::new();
            loop {
                while *i < c.len() && c[*i].is_whitespace() {
                    *i += 1;
                }
                match c.get(*i) {
                    Some(')') => {
                        *i += 1;
                        return Ok(Sexp::List(items));
                    }
                    None => return Err("unclosed ( in s-expression".into()),
                    _ => items.push(sexp_at(c, i, depth + 1)?),
                }
            }
        }
        Some(&q @ ('\'' | '"')) => {
            *i += 1;
            let mut s = String::new();
            loop {
                match c.get(*i) {
                    None => return Err("unterminated string in s-expression".into()),
                    Some('\\') => {
                        let n = c.get(*i + 1).ok_or("dangling backslash in s-expression")?;
                        s.push(*n);
                        *i += 2;
                    }
                    Some(&ch) if ch == q => {
                        *i += 1;
                        return Ok(Sexp::Atom(s));
                    }
                    Some(&ch) => {
                        s.push(ch);
                        *i += 1;
                    }
                }
            }
        }
        Some(')') => Err("unexpected ) in s-expression".into()),
        Some(_) => {
            // A bare symbol.
            let start = *i;
            while *i < c.len() && !c[*i].is_whitespace() && c[*i] != '(' && c[*i] != ')' {
                *i += 1;
            }
            Ok(Sexp::Atom(c[start..*i].iter().collect()))
        }
    }
}

fn scalar(ty: &Ty, s: &str) -> Option<Value> {
    Some(match ty {
        Ty::String | Ty::Ref(_) | Ty::Enum(_) => Value::String(s.to_owned()),
        Ty::Int => Value::Int(s.trim().parse().ok()?),
        Ty::Float => Value::Double(parse_float(s)?),
        Ty::Bool => Value::Bool(match s {
            "true" => true,
            "false" => false,
            _ => return None,
        }),
        Ty::DateTime => Value::DateTime(DateTime::parse(s).ok()?),
        Ty::Option(inner) => {
            if s.is_empty() {
                Value::Nil
            } else {
                scalar(inner, s)?
            }
        }
        Ty::Set(_) | Ty::Map(..) | Ty::Record(_) => return None,
    })
}

fn value_of(ty: &Ty, text: &str) -> Result<Value, String> {
    let bad = || format!("cannot read {text:?} as {ty:?}");
    match ty {
        Ty::Set(inner) => match parse_sexp(text)? {
            Sexp::List(items) => items
                .into_iter()
                .map(|x| match x {
                    Sexp::Atom(a) => scalar(inner, &a).ok_or_else(bad),
                    Sexp::List(_) => Err(bad()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Sexp::Atom(_) => Err(bad()),
        },
        Ty::Map(_, v) => match parse_sexp(text)? {
            Sexp::List(items) => {
                let mut out = Struct::new();
                for it in items {
                    match it {
                        Sexp::List(kv) => match kv.as_slice() {
                            [Sexp::Atom(k), Sexp::Atom(x)] => {
                                out.insert(k.clone(), scalar(v, x).ok_or_else(bad)?)
                            }
                            _ => return Err(bad()),
                        },
                        Sexp::Atom(_) => return Err(bad()),
                    }
                }
                Ok(Value::Struct(out))
            }
            Sexp::Atom(_) => Err(bad()),
        },
        _ => scalar(ty, text).ok_or_else(bad),
    }
}

/// Loads a parsed dump into an empty state. Returns the warnings (unknown tables and
/// fields, unreadable values).
pub fn load(st: &mut State, dump: &Dump, ips: &[IpAddr]) -> Result<Vec<String>, String> {
    let dm = st.db.dm;
    let mut warnings = Vec::new();
    for (table, rows) in &dump.tables {
        if table == "session" {
            continue; // Sessions are credentials; they do not carry over.
        }
        let Some(ci) = dm.index(table) else {
            warnings.push(format!(
                "unknown table {table} ({} rows) ignored",
                rows.len()
            ));
            continue;
        };
        let class = &dm.classes[ci];
        let mut unknown: Vec<String> = Vec::new();
        for row in rows {
            let mut fields: Vec<Value> = class.fields.iter().map(|f| f.default.clone()).collect();
            let mut r = None;
            for (k, v) in row {
                match k.as_str() {
                    "ref" | "_ref" => {
                        r = Some(v.clone());
                        continue;
                    }
                    "__mtime" | "__ctime" => continue,
                    _ => {}
                }
                let wire = k.replace("__", "_");
                let Some(&fi) = class.field_index.get(&wire) else {
                    if !unknown.contains(k) {
                        warnings.push(format!("unknown field {table}.{k} ignored"));
                        unknown.push(k.clone());
                    }
                    continue;
                };
                match value_of(&class.fields[fi].ty, v) {
                    Ok(x) => fields[fi] = x,
                    Err(e) => warnings.push(format!("{table}.{k}: {e}; default used")),
                }
            }
            let Some(r) = r else {
                warnings.push(format!("a row of {table} has no ref; ignored"));
                continue;
            };
            if let Some(&ui) = class.field_index.get("uuid") {
                if fields[ui].as_str().unwrap_or_default().is_empty() {
                    fields[ui] = Value::String(st.db.uuid());
                }
            }
            st.db.insert_raw(ci, r, fields);
        }
    }
    st.db.rebuild_relations();
    let (pc, hc, vc) = (
        st.db.class_index("pool"),
        st.db.class_index("host"),
        st.db.class_index("VM"),
    );
    let host_refs: Vec<String> = st.db.refs(hc).cloned().collect();
    if host_refs.is_empty() {
        return Err("the dump has no host".into());
    }
    let first_pool = st.db.refs(pc).next().cloned();
    st.pool = match first_pool {
        Some(p) => p,
        None => {
            warnings.push("no pool row; one was created".into());
            st.db.create(
                pc,
                None,
                None,
                vec![("master", Value::String(host_refs[0].clone()))],
            )
        }
    };
    // The master listens first (127.0.0.1); each host's address becomes its listener's.
    let master = st.db.get_str(pc, &st.pool, "master");
    // Members keep the order of their old addresses (then names), so the mapping is stable.
    let mut ordered = host_refs.clone();
    let key = |h: &String| {
        let addr = st.db.get_str(hc, h, "address");
        (
            addr.parse::<IpAddr>().ok(),
            addr,
            st.db.get_str(hc, h, "name_label"),
        )
    };
    ordered.sort_by_cached_key(key);
    if let Some(i) = ordered.iter().position(|h| *h == master) {
        let m = ordered.remove(i);
        ordered.insert(0, m);
    } else {
        warnings.push("pool.master is not a host; the first host was made master".into());
        let pool = st.pool.clone();
        st.db
            .set(pc, &pool, "master", Value::String(ordered[0].clone()));
    }
    for (h, ip) in ordered.iter().zip(ips) {
        let old = st.db.get_str(hc, h, "address");
        if old != ip.to_string() {
            warnings.push(format!(
                "host {} address {old} served at {ip}",
                st.db.get_str(hc, h, "name_label")
            ));
        }
        st.db.set(hc, h, "address", Value::String(ip.to_string()));
        st.hosts.push(HostSlot {
            r: h.clone(),
            ip: *ip,
        });
    }
    st.master = 0;
    let gc = st.db.class_index("VM_guest_metrics");
    let vms: Vec<String> = st.db.refs(vc).cloned().collect();
    for vm in vms {
        let gm = st.db.get_str(vc, &vm, "guest_metrics");
        if st.db.exists(gc, &gm) {
            st.tools.insert(vm.clone());
        }
        st.next_domid = st.next_domid.max(st.db.get_i64(vc, &vm, "domid"));
    }
    st.message_gen = st.db.count(st.db.class_index("message")) as u64;
    Ok(warnings)
}

/// Namespaced fields: (class, namespace). `*` applies to every class.
const NAMESPACES: &[(&str, &str)] = &[
    ("*", "name"),
    ("VM", "memory"),
    ("VM", "VCPUs"),
    ("VM", "actions"),
    ("VM", "PV"),
    ("VM", "HVM"),
    ("VM_metrics", "memory"),
    ("VM_metrics", "VCPUs"),
    ("host", "API_version"),
];

fn db_name(class: &str, field: &str) -> String {
    for (c, ns) in NAMESPACES {
        if *c == "*" && *ns == "name" && !(field == "name_label" || field == "name_description") {
            continue;
        }
        if *c == "*" || *c == class {
            if let Some(rest) = field.strip_prefix(ns).and_then(|r| r.strip_prefix('_')) {
                return format!("{ns}__{rest}");
            }
        }
    }
    field.to_owned()
}

fn xml_attr(s: &str, out: &mut String) {
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
}

fn sexp_atom(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Int32(i) => i.to_string(),
        Value::Double(f) => format!("{f}"),
        Value::Bool(b) => b.to_string(),
        Value::DateTime(d) => d.as_str().to_owned(),
        Value::Base64(_) | Value::Nil | Value::Array(_) | Value::Struct(_) => String::new(),
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Array(items) => format!(
            "({})",
            items
                .iter()
                .map(|x| sexp_atom(&scalar_text(x)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Value::Struct(s) => {
            format!(
                "({})",
                s.iter()
                    .map(|(k, x)| format!("({} {})", sexp_atom(k), sexp_atom(&scalar_text(x))))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
        _ => scalar_text(v),
    }
}

fn dump_class(st: &State, ci: usize, class: &Class, out: &mut String) {
    let table = &st.db.tables[ci];
    if table.objs.is_empty() {
        return;
    }
    out.push_str("<table name=\"");
    xml_attr(&class.name, out);
    out.push_str("\">");
    for (r, o) in &table.objs {
        // xapi writes the ref twice, as `ref` and `_ref`.
        out.push_str("<row ref=\"");
        xml_attr(r, out);
        out.push_str("\" _ref=\"");
        xml_attr(r, out);
        out.push_str(&format!(
            "\" __ctime=\"{}\" __mtime=\"{}\"",
            o.created, o.modified
        ));
        for (f, v) in class.fields.iter().zip(&o.fields) {
            if matches!(v, Value::Nil) {
                continue;
            }
            out.push(' ');
            out.push_str(&db_name(&class.name, &f.name));
            out.push_str("=\"");
            xml_attr(&text_of(v), out);
            out.push('"');
        }
        out.push_str("/>");
    }
    out.push_str("</table>");
}

/// The state as a `state.db` document. Sessions are left out (they are credentials).
pub fn dump(st: &State) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<database><manifest>");
    out.push_str("<pair key=\"schema_major_vsn\" value=\"5\"/><pair key=\"schema_minor_vsn\" value=\"786\"/>");
    out.push_str(&format!(
        "<pair key=\"generation_count\" value=\"{}\"/></manifest>",
        st.db.generation
    ));
    for (ci, class) in st.db.dm.classes.iter().enumerate() {
        if class.name == "session" {
            continue;
        }
        dump_class(st, ci, class, &mut out);
    }
    out.push_str("</database>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sexp() {
        assert_eq!(parse_sexp("()").unwrap(), Sexp::List(vec![]));
        assert_eq!(
            parse_sexp("(('k' 'v') ('a\\'b' ''))").unwrap(),
            Sexp::List(vec![
                Sexp::List(vec![Sexp::Atom("k".into()), Sexp::Atom("v".into())]),
                Sexp::List(vec![Sexp::Atom("a'b".into()), Sexp::Atom("".into())])
            ])
        );
        assert!(parse_sexp("(('k' 'v')").is_err());
        assert!(parse_sexp("('a') x").is_err());
        assert!(parse_sexp("'unterminated").is_err());
        assert!(parse_sexp(&"(".repeat(100)).is_err());
        let map = value_of(
            &Ty::Map(Box::new(Ty::String), Box::new(Ty::String)),
            "(('k' 'v'))",
        )
        .unwrap();
        assert_eq!(map.get("k"), Some(&Value::from("v")));
        assert_eq!(
            value_of(&Ty::Set(Box::new(Ty::Int)), "('1' '2')").unwrap(),
            Value::Array(vec![Value::Int(1), Value::Int(2)])
        );
        assert!(value_of(&Ty::Int, "x").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(db_name("VM", "name_label"), "name__label");
        assert_eq!(db_name("VM", "memory_static_max"), "memory__static_max");
        assert_eq!(db_name("VM", "other_config"), "other_config");
        assert_eq!(db_name("network", "name_description"), "name__description");
        assert_eq!(
            db_name("VM_guest_metrics", "PV_drivers_version"),
            "PV_drivers_version"
        );
        assert_eq!(
            text_of(&Value::Array(vec![Value::from("a'b")])),
            "('a\\'b')"
        );
    }
}
