//! Wire names → Rust identifiers. Every conversion is checked for collisions by the callers.

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "try",
    "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield",
];

/// Appends `_` to Rust keywords (`type` → `type_`, `self` → `self_`).
pub fn escape(ident: String) -> String {
    if KEYWORDS.contains(&ident.as_str()) {
        ident + "_"
    } else {
        ident
    }
}

/// Splits on non-alphanumerics and on lower→upper case changes (`restartHVM` → `restart`, `HVM`).
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `vm_power_state` → `VmPowerState`, `balance-slb` → `BalanceSlb`, `VM_guest_metrics` → `VmGuestMetrics`,
/// `restartHVM` → `RestartHvm`. A leading digit gets a `V` prefix.
pub fn camel(s: &str) -> String {
    let mut out = String::new();
    for w in words(s) {
        let mut cs = w.chars();
        if let Some(f) = cs.next() {
            out.push(f.to_ascii_uppercase());
            out.extend(cs.map(|c| c.to_ascii_lowercase()));
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    if out.is_empty() {
        out.push_str("Empty");
    }
    out
}

/// The record type name of a class: `VM` → `Vm`, `host` → `Host`, `DR_task` → `DrTask`.
pub fn class_ident(class: &str) -> String {
    camel(class)
}

/// The module (file) name of a class: `VM_guest_metrics` → `vm_guest_metrics`.
pub fn class_module(class: &str) -> String {
    escape(class.to_ascii_lowercase())
}

/// Field, param and message names: lower-cased wire names (`VCPUs_max` → `vcpus_max`,
/// `MAC` → `mac`, `type` → `type_`). Non-identifier characters become `_`.
pub fn snake(s: &str) -> String {
    let mut out: String = s
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    let mut out = out.trim_matches('_').to_owned();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, 'p');
    }
    escape(out)
}

/// Error codes: `VM_BAD_POWER_STATE` → `VmBadPowerState`.
pub fn error_variant(code: &str) -> String {
    camel(&code.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(class_ident("VM"), "Vm");
        assert_eq!(class_ident("VM_guest_metrics"), "VmGuestMetrics");
        assert_eq!(class_ident("PIF"), "Pif");
        assert_eq!(class_ident("network_sriov"), "NetworkSriov");
        assert_eq!(class_ident("VMPP"), "Vmpp");
        assert_eq!(class_ident("USB_group"), "UsbGroup");
        assert_eq!(camel("balance-slb"), "BalanceSlb");
        assert_eq!(camel("restartHVM"), "RestartHvm");
        assert_eq!(camel("IPv4"), "Ipv4");
        assert_eq!(camel("3d"), "V3d");
        assert_eq!(snake("VCPUs_max"), "vcpus_max");
        assert_eq!(snake("PV_drivers_version"), "pv_drivers_version");
        assert_eq!(snake("type"), "type_");
        assert_eq!(snake("Master IP address"), "master_ip_address");
        assert_eq!(snake("required_space "), "required_space");
        assert_eq!(error_variant("VM_BAD_POWER_STATE"), "VmBadPowerState");
    }
}
