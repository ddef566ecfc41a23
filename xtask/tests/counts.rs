//! Counts the datamodel independently (plain JSON walking) and checks the committed generated
//! files contain every class, field, message, enum value and error code.

use std::collections::BTreeMap;

use serde_json::Value;

fn root() -> std::path::PathBuf {
    xtask::workspace_root()
}

fn json(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).expect("spec file");
    serde_json::from_str(&text).expect("valid JSON")
}

fn generated(file: &str) -> String {
    std::fs::read_to_string(root().join(xtask::OUT_DIR).join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Without whitespace, so checks do not depend on how the formatter wrapped a line.
fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not an array"))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string"))
}

#[test]
fn datamodel_counts() {
    let spec = json("spec/xenapi.json");
    let classes = spec.as_array().expect("array of classes");
    let fields: usize = classes.iter().map(|c| arr(c, "fields").len()).sum();
    let messages: Vec<&Value> = classes.iter().flat_map(|c| arr(c, "messages")).collect();
    let implicit = messages
        .iter()
        .filter(|m| m["implicit"] == Value::Bool(true))
        .count();
    let mut enums = BTreeMap::new();
    for c in classes {
        for e in arr(c, "enums") {
            enums.insert(s(e, "name").to_owned(), arr(e, "values").len());
        }
    }
    assert_eq!(classes.len(), 72);
    assert_eq!(fields, 922);
    assert_eq!(messages.len(), 2007);
    assert_eq!((messages.len() - implicit, implicit), (551, 1456));
    assert_eq!(enums.len(), 73);

    let errors = json("spec/api_errors.json");
    assert_eq!(arr(&errors, "errors").len(), 605);
    assert_eq!(arr(&errors, "codes_without_datamodel_entry").len(), 30);
}

#[test]
fn every_class_field_and_message_is_generated() {
    let spec = json("spec/xenapi.json");
    let mut files = 0;
    for c in spec.as_array().expect("classes") {
        let name = s(c, "name");
        let code = generated(&format!("{}.rs", name.to_ascii_lowercase()));
        let squeezed = squeeze(&code);
        files += 1;
        assert!(
            code.contains(&format!("const WIRE_NAME: &'static str = \"{name}\";")),
            "{name}: XapiClass"
        );
        if name != "event" {
            for f in arr(c, "fields") {
                let wire = s(f, "name");
                let plain = format!("pub {}:", wire.to_ascii_lowercase());
                let renamed = format!("rename = \"{wire}\"");
                assert!(
                    code.contains(&plain) || code.contains(&renamed),
                    "{name}.{wire} missing"
                );
                assert!(
                    squeezed.contains(&format!("((\"{wire}\".into(),")),
                    "{name}.{wire} not in ToValue"
                );
            }
        }
        for m in arr(c, "messages") {
            let wire = format!("{name}.{}", s(m, "name"));
            assert!(
                squeezed.contains(&format!("Call::new(\"{wire}\",params")),
                "{wire} missing"
            );
        }
    }
    assert_eq!(files, 72);
    let meta = generated("meta.rs");
    assert_eq!(meta.matches("ClassMeta { name:").count(), 72);
    assert_eq!(meta.matches("    F { name:").count(), 922);
    assert_eq!(meta.matches("    M { name:").count(), 2007);
}

#[test]
fn every_enum_value_is_generated() {
    let spec = json("spec/xenapi.json");
    let code = generated("enums.rs");
    let squeezed = squeeze(&code);
    let meta = generated("meta.rs");
    let mut seen = std::collections::BTreeSet::new();
    for c in spec.as_array().expect("classes") {
        for e in arr(c, "enums") {
            let name = s(e, "name");
            if !seen.insert(name.to_owned()) {
                continue;
            }
            assert!(
                code.contains(&format!("/// The datamodel enum `{name}`.\n")),
                "enum {name}"
            );
            let wires: Vec<String> = arr(e, "values")
                .iter()
                .map(|v| format!("{:?}", s(v, "name")))
                .collect();
            assert!(
                meta.contains(&format!(
                    "EnumMeta {{ name: {name:?}, values: &[{}] }}",
                    wires.join(", ")
                )),
                "meta enum {name}"
            );
            for v in arr(e, "values") {
                let wire = s(v, "name");
                // The formatter puts a long arm in a block: `"x" => { Self::X }`.
                let (plain, block) = (format!("{wire:?}=>Self::"), format!("{wire:?}=>{{Self::"));
                assert!(
                    squeezed.contains(&plain) || squeezed.contains(&block),
                    "{name}: {wire}"
                );
            }
        }
    }
    assert_eq!(seen.len(), 73);
    assert_eq!(code.matches("\npub enum ").count(), 73);
    assert_eq!(meta.matches("EnumMeta { name:").count(), 73);
}

#[test]
fn every_error_code_is_generated() {
    let errors = json("spec/api_errors.json");
    let code = squeeze(&generated("errors.rs"));
    let mut n = 0;
    for e in arr(&errors, "errors") {
        let c = s(e, "name");
        // ERROR_CODES, from_failure, code(), param_names, param_fields.
        assert_eq!(code.matches(&format!("{c:?}")).count(), 5, "{c}");
        let names: Vec<String> = arr(e, "params")
            .iter()
            .map(|p| squeeze(&format!("{:?}", p.as_str().expect("param"))))
            .collect();
        let (a, b) = (
            format!("{c:?}=>&[{}]", names.join(",")),
            format!("{c:?}=>{{&[{}]}}", names.join(",")),
        );
        assert!(code.contains(&a) || code.contains(&b), "{c} param names");
        n += 1;
    }
    for c in arr(&errors, "codes_without_datamodel_entry") {
        let c = c.as_str().expect("code");
        // ERROR_CODES, from_failure, code().
        assert_eq!(code.matches(&format!("{c:?}")).count(), 3, "{c}");
        n += 1;
    }
    assert_eq!(n, 635);
}
