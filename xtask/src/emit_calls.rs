//! Call descriptions: one associated fn per message, returning `crate::rpc::Call<R>` (no IO).

use std::fmt::Write as _;

use crate::names::snake;
use crate::spec::{Class, Message, Param};
use crate::types::{self, Ty, Use};
use crate::{defaults, doc, lit, md, unique, Model};

/// Classes with no `Async.` form at all (xenadmin's generated XML-RPC proxy lists none for
/// them; `blob.create`/`destroy` and every `message` call included).
const NO_ASYNC_CLASSES: &[&str] = &["event", "blob", "message", "auth", "data_source"];

/// Custom messages declared with `~flags:[`Session]` or `~flags:[]` (no async form). Taken from
/// the `XmlRpcMethod` table of xenadmin's `XenModel/XenAPI/Proxy.cs` (a XenServer 7.2-era
/// generated proxy: a sync method listed without its `Async.` twin), plus a few newer ones
/// checked against the generated Go SDK (`pool.set_ext_auth_max_threads`, …). Setters that
/// were implicit in 7.2 and are custom now are listed too: a sync call always works, a missing
/// `Async.` name fails with `MESSAGE_METHOD_UNKNOWN`, so doubt resolves to "no async".
/// Not exhaustive for messages newer than 7.2; a live host's `system.listMethods` is the authority.
#[rustfmt::skip]
const NO_ASYNC_MESSAGES: &[&str] = &[
    "PIF.set_disallow_unplug",
    "SR.forget_data_source_archives", "SR.get_data_sources", "SR.get_supported_types",
    "SR.query_data_source", "SR.record_data_source", "SR.set_physical_size",
    "VBD.set_mode",
    "VDI.set_read_only", "VDI.set_sharable",
    "VM.add_to_blocked_operations", "VM.add_to_other_config", "VM.add_to_platform",
    "VM.forget_data_source_archives", "VM.get_allowed_VBD_devices", "VM.get_allowed_VIF_devices",
    "VM.get_boot_record", "VM.get_data_sources", "VM.query_data_source", "VM.record_data_source",
    "VM.remove_from_blocked_operations", "VM.remove_from_other_config", "VM.remove_from_platform",
    "VM.set_HVM_boot_policy", "VM.set_HVM_shadow_multiplier", "VM.set_VCPUs_at_startup", "VM.set_VCPUs_max",
    "VM.set_actions_after_crash", "VM.set_blocked_operations", "VM.set_ha_always_run",
    "VM.set_ha_restart_priority", "VM.set_memory_dynamic_max", "VM.set_memory_dynamic_min",
    "VM.set_memory_static_max", "VM.set_memory_static_min", "VM.set_other_config", "VM.set_platform",
    "VM.set_protection_policy", "VM.set_snapshot_schedule",
    "VMPP.add_to_alarm_config", "VMPP.add_to_archive_schedule", "VMPP.add_to_archive_target_config",
    "VMPP.add_to_backup_schedule", "VMPP.archive_now", "VMPP.get_alerts", "VMPP.protect_now",
    "VMPP.remove_from_alarm_config", "VMPP.remove_from_archive_schedule",
    "VMPP.remove_from_archive_target_config", "VMPP.remove_from_backup_schedule", "VMPP.set_alarm_config",
    "VMPP.set_archive_frequency", "VMPP.set_archive_last_run_time", "VMPP.set_archive_schedule",
    "VMPP.set_archive_target_config", "VMPP.set_archive_target_type", "VMPP.set_backup_frequency",
    "VMPP.set_backup_last_run_time", "VMPP.set_backup_retention_value", "VMPP.set_backup_schedule",
    "VMPP.set_is_alarm_enabled",
    "VMSS.add_to_schedule", "VMSS.remove_from_schedule", "VMSS.set_frequency", "VMSS.set_last_run_time",
    "VMSS.set_retained_snapshots", "VMSS.set_schedule", "VMSS.set_type", "VMSS.snapshot_now",
    "auth.get_group_membership", "auth.get_subject_identifier",
    "auth.get_subject_information_from_identifier",
    "host.apply_edition", "host.backup_rrds", "host.call_extension", "host.disable_external_auth",
    "host.disable_local_storage_caching", "host.emergency_ha_disable", "host.enable_external_auth",
    "host.enable_local_storage_caching", "host.forget_data_source_archives", "host.get_data_sources",
    "host.get_server_localtime", "host.get_servertime", "host.get_system_status_capabilities",
    "host.list_methods", "host.local_management_reconfigure", "host.management_disable",
    "host.query_data_source", "host.record_data_source", "host.reset_cpu_features", "host.set_cpu_features",
    "host.set_hostname_live", "host.shutdown_agent", "host.sync_data",
    "pool.detect_nonhomogeneous_external_auth", "pool.disable_external_auth", "pool.emergency_reset_master",
    "pool.emergency_transition_to_master", "pool.enable_external_auth", "pool.enable_tls_verification",
    "pool.ha_compute_hypothetical_max_host_failures_to_tolerate",
    "pool.ha_compute_max_host_failures_to_tolerate", "pool.ha_compute_vm_failover_plan",
    "pool.ha_failover_plan_exists", "pool.ha_prevent_restarts_for", "pool.set_ext_auth_max_threads",
    "pool.set_local_auth_max_threads", "pool.test_archive_target",
    "role.get_by_permission", "role.get_by_permission_name_label", "role.get_permissions",
    "role.get_permissions_name_label",
    "session.change_password", "session.local_logout", "session.login_with_password", "session.logout",
    "session.slave_local_login_with_password",
    "subject.add_to_roles", "subject.get_permissions_name_label", "subject.remove_from_roles",
    "task.add_to_other_config", "task.create", "task.destroy", "task.remove_from_other_config",
    "task.set_error_info", "task.set_other_config", "task.set_progress", "task.set_result",
    "task.set_status",
];

/// Whether xapi offers `Async.<class>.<message>`. The datamodel JSON has no async flag, so
/// this is a rule: custom messages get one by default (`call ?(flags = [`Session; `Async])`
/// in xen-api's `datamodel_common.ml`), implicit messages only for `create` and `destroy`;
/// never for `NO_ASYNC_CLASSES` or `NO_ASYNC_MESSAGES`.
pub fn has_async(class: &str, m: &Message) -> bool {
    if NO_ASYNC_CLASSES.contains(&class) {
        return false;
    }
    let wire = format!("{class}.{}", m.name);
    if NO_ASYNC_MESSAGES.contains(&wire.as_str()) {
        return false;
    }
    !m.implicit || m.name == "create" || m.name == "destroy"
}

/// Whether the first param is the session ref (the transport supplies it).
pub fn takes_session(m: &Message) -> bool {
    m.params
        .first()
        .is_some_and(|p| p.name == "session_id" && p.ty == "session ref")
}

pub fn calls_impl(model: &Model, class: &Class, ident: &str) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "/// Call descriptions for `{}` messages (no IO; a client executes them).",
        class.name
    );
    let _ = writeln!(out, "impl {ident} {{");
    let fns: Vec<String> = class.messages.iter().map(|m| snake(&m.name)).collect();
    unique(
        fns.iter().map(String::as_str),
        &format!("messages of {}", class.name),
    )?;
    for (m, fname) in class.messages.iter().zip(&fns) {
        message(model, class, m, fname, &mut out)
            .map_err(|e| format!("message {}: {e}", m.name))?;
    }
    out.push_str("}\n");
    Ok(out)
}

fn message(
    model: &Model,
    class: &Class,
    m: &Message,
    fname: &str,
    out: &mut String,
) -> Result<(), String> {
    let wire = format!("{}.{}", class.name, m.name);
    let session = takes_session(m);
    let params: Vec<&Param> = m.params.iter().skip(usize::from(session)).collect();
    let idents: Vec<String> = params.iter().map(|p| snake(&p.name)).collect();
    unique(idents.iter().map(String::as_str), "params")?;
    let tys: Vec<Ty> = params
        .iter()
        .map(|p| types::parse(&p.ty))
        .collect::<Result<_, _>>()?;
    let first_optional = params
        .iter()
        .position(|p| !p.required)
        .unwrap_or(params.len());
    if params[first_optional..].iter().any(|p| p.required) {
        return Err("a required param follows an optional one".into());
    }
    let result = match m.result.first().map(String::as_str) {
        Some("void") | None => "Void".to_owned(),
        Some(t) => types::rust(&types::parse(t)?, Use::Result),
    };
    let asy = has_async(&class.name, m);

    // Docs: description, params, result, errors, async form.
    let description = match m.description.trim() {
        "" => format!(
            "no description in the datamodel; returns `{}`.",
            m.result.first().map_or("void", String::as_str)
        ),
        d => md(d),
    };
    doc(out, &format!("`{wire}`: {description}"));
    if let Some(note) = crate::emit_records::lifecycle_note(&m.lifecycle.state) {
        doc(out, &format!("\n{note}"));
    }
    if !params.is_empty() {
        doc(out, "\nParams:");
        for (p, i) in params.iter().zip(&idents) {
            let opt = if p.required {
                ""
            } else {
                " (optional: trailing `None`s are not sent)"
            };
            let pdoc = match one_line(&p.doc) {
                d if d.is_empty() => format!("the `{}` argument, of type `{}`", p.name, p.ty),
                d => md(&d),
            };
            doc(out, &format!("- `{i}`: {pdoc}{opt}"));
        }
    }
    if let Some(rdoc) = m.result.get(1).filter(|d| !d.trim().is_empty()) {
        doc(out, &format!("\nReturns: {}", md(&one_line(rdoc))));
    }
    if !m.errors.is_empty() {
        let codes: Vec<String> = m.errors.iter().map(|e| format!("`{}`", e.name)).collect();
        doc(out, &format!("\nErrors: {}.", codes.join(", ")));
    }
    if asy {
        doc(
            out,
            &format!("\nAsync form: `Async.{wire}` (returns a task)."),
        );
    }
    if !session {
        doc(out, "\nCalled without a session.");
    }

    // Signature.
    let args: Vec<String> = idents
        .iter()
        .zip(&tys)
        .zip(&params)
        .map(|((i, t), p)| {
            let ty = types::param(t);
            if p.required {
                format!("{i}: {ty}")
            } else {
                format!("{i}: Option<{ty}>")
            }
        })
        .collect();
    let _ = writeln!(
        out,
        "pub fn {fname}({}) -> Call<{result}> {{",
        args.join(", ")
    );

    // Body.
    let required: Vec<String> = idents[..first_optional]
        .iter()
        .map(|i| format!("{i}.to_value()"))
        .collect();
    let optional = &idents[first_optional..];
    let mutability = if optional.is_empty() { "" } else { "mut " };
    let _ = writeln!(
        out,
        "let {mutability}params: Vec<Value> = vec![{}];",
        required.join(", ")
    );
    if !optional.is_empty() {
        // Send optional params up to the last one given; a `None` before it is sent as the
        // class field's default when the names match, else the type's empty value.
        out.push_str("let given = ");
        for (k, i) in optional.iter().enumerate().rev() {
            let _ = write!(out, "if {i}.is_some() {{ {} }} else ", k + 1);
        }
        out.push_str("{ 0 };\n");
        for (k, i) in optional.iter().enumerate() {
            let idx = first_optional + k;
            let ty = &tys[idx];
            let field = class
                .fields
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(&params[idx].name) && f.ty == params[idx].ty);
            let dflt = match field {
                Some(f) => defaults::expr(model, ty, f.default.as_deref())?,
                None => defaults::empty(model, ty),
            };
            let owned = types::rust(ty, Use::Owned);
            let _ = writeln!(
                out,
                "if given > {k} {{ params.push(match {i} {{ Some(v) => v.to_value(), None => {{ let d: {owned} = {dflt}; d.to_value() }} }}); }}"
            );
        }
    }
    let _ = write!(out, "Call::new({}, params)", lit(&wire));
    if !session {
        out.push_str(".without_session()");
    }
    if asy {
        let _ = write!(out, ".with_async({})", lit(&format!("Async.{wire}")));
    }
    out.push_str("\n}\n\n");
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Lifecycle;

    fn msg(name: &str, implicit: bool) -> Message {
        Message {
            name: name.into(),
            description: String::new(),
            result: vec!["void".into()],
            params: Vec::new(),
            errors: Vec::new(),
            lifecycle: Lifecycle {
                state: "Published_s".into(),
            },
            implicit,
        }
    }

    #[test]
    fn async_rule_and_exceptions() {
        assert!(has_async("VM", &msg("start", false)));
        assert!(has_async("VM", &msg("create", true)));
        assert!(!has_async("VM", &msg("get_power_state", true)));
        assert!(!has_async("VM", &msg("set_VCPUs_max", false)));
        assert!(has_async("task", &msg("cancel", false)));
        assert!(!has_async("task", &msg("create", false)));
        assert!(!has_async("session", &msg("login_with_password", false)));
        assert!(has_async(
            "session",
            &msg("logout_subject_identifier", false)
        ));
        assert!(!has_async("event", &msg("from", false)));
        assert!(!has_async("blob", &msg("destroy", false)));
        assert!(has_async("secret", &msg("create", true)));
    }
}
