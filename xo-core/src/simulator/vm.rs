//! VM lifecycle with xapi's state machine: power-state checks, `allowed_operations`,
//! `resident_on`, `domid`, `VM_metrics`, and the guest agent.

use super::dispatch::{check_ref, fail, void, Cx};
use super::migrate::boot_host;
use super::state::State;
use super::tasks::busy;
use crate::model::{ApiFailure, DateTime, Value, NULL_REF};
use crate::rpc::Outcome;

pub const HALTED: &str = "Halted";
pub const RUNNING: &str = "Running";
pub const PAUSED: &str = "Paused";
pub const SUSPENDED: &str = "Suspended";

/// Power states in which xapi allows each operation.
fn allowed_states(op: &str) -> &'static [&'static str] {
    match op {
        "start"
        | "start_on"
        | "provision"
        | "changing_memory_limits"
        | "changing_static_range"
        | "changing_VCPUs"
        | "make_into_template" => &[HALTED],
        "clean_shutdown"
        | "clean_reboot"
        | "suspend"
        | "pause"
        | "pool_migrate"
        | "changing_VCPUs_live"
        | "checkpoint" => &[RUNNING],
        "hard_shutdown" | "shutdown" => &[PAUSED, SUSPENDED, RUNNING],
        "hard_reboot" => &[PAUSED, RUNNING],
        "unpause" => &[PAUSED],
        "resume" | "resume_on" => &[SUSPENDED],
        "clone" | "copy" | "destroy" => &[HALTED, SUSPENDED],
        "changing_dynamic_range" => &[HALTED, RUNNING],
        "migrate_send" => &[HALTED, SUSPENDED, RUNNING],
        "snapshot" | "export" | "metadata_export" => &[HALTED, RUNNING, PAUSED, SUSPENDED],
        "revert" => &[HALTED, SUSPENDED],
        _ => &[],
    }
}

/// Operations a template accepts (xapi's `check_template`).
const TEMPLATE_OPS: &[&str] = &[
    "changing_dynamic_range",
    "changing_static_range",
    "changing_memory_limits",
    "changing_shadow_memory",
    "changing_VCPUs",
    "clone",
    "copy",
    "export",
    "metadata_export",
    "provision",
];

const LISTED_OPS: &[&str] = &[
    "start",
    "start_on",
    "provision",
    "clean_shutdown",
    "clean_reboot",
    "hard_shutdown",
    "hard_reboot",
    "suspend",
    "resume",
    "resume_on",
    "pause",
    "unpause",
    "pool_migrate",
    "migrate_send",
    "clone",
    "copy",
    "snapshot",
    "checkpoint",
    "revert",
    "export",
    "metadata_export",
    "destroy",
    "changing_dynamic_range",
    "changing_static_range",
    "changing_memory_limits",
    "changing_VCPUs",
    "changing_VCPUs_live",
    "make_into_template",
];

fn lower(state: &str) -> String {
    let mut c = state.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// What the operation checks need to know about a VM, read once.
struct Facts {
    control: bool,
    template: bool,
    snapshot: bool,
    default_template: bool,
    busy: Option<ApiFailure>,
    power: String,
}

fn facts(st: &State, vm: &str, task: Option<&str>) -> Facts {
    let db = &st.db;
    let vc = db.class_index("VM");
    Facts {
        control: db.get_bool(vc, vm, "is_control_domain"),
        template: db.get_bool(vc, vm, "is_a_template"),
        snapshot: db.get_bool(vc, vm, "is_a_snapshot"),
        default_template: matches!(db.get(vc, vm, "other_config"), Some(Value::Struct(s)) if s.get("default_template").and_then(Value::as_str) == Some("true")),
        busy: busy(st, vc, vm, task),
        power: db.get_str(vc, vm, "power_state"),
    }
}

/// Why `op` is refused on `vm` right now, as xapi reports it (`None`: allowed).
pub fn check_op(st: &State, vm: &str, op: &str, task: Option<&str>) -> Option<ApiFailure> {
    check_facts(&facts(st, vm, task), vm, op)
}

/// Which rule refuses an operation (cheap: `allowed_operations` checks every operation).
enum Refusal {
    ControlDomain,
    Snapshot,
    Template,
    Busy,
    PowerState,
}

const SNAPSHOT_OPS: &[&str] = &[
    "clone",
    "copy",
    "export",
    "destroy",
    "hard_shutdown",
    "metadata_export",
    "revert",
];

fn refusal(f: &Facts, op: &str) -> Option<Refusal> {
    if f.control {
        return Some(Refusal::ControlDomain);
    }
    if f.snapshot && !SNAPSHOT_OPS.contains(&op) {
        return Some(Refusal::Snapshot);
    }
    if f.template
        && !f.snapshot
        && !(TEMPLATE_OPS.contains(&op) || (op == "destroy" && !f.default_template))
    {
        return Some(Refusal::Template);
    }
    if f.busy.is_some() {
        return Some(Refusal::Busy);
    }
    if !(allowed_states(op).contains(&f.power.as_str())
        || (f.template && TEMPLATE_OPS.contains(&op)))
    {
        return Some(Refusal::PowerState);
    }
    None
}

fn check_facts(f: &Facts, vm: &str, op: &str) -> Option<ApiFailure> {
    Some(match refusal(f, op)? {
        Refusal::ControlDomain => fail(
            "OPERATION_NOT_ALLOWED",
            &["This operation is not allowed on the control domain"],
        ),
        Refusal::Snapshot => fail("VM_IS_SNAPSHOT", &[vm, op]),
        Refusal::Template => fail("VM_IS_TEMPLATE", &[vm, op]),
        Refusal::Busy => f.busy.clone()?,
        Refusal::PowerState => {
            let expected = allowed_states(op)
                .iter()
                .map(|s| lower(s))
                .collect::<Vec<_>>()
                .join(", ");
            fail("VM_BAD_POWER_STATE", &[vm, &expected, &lower(&f.power)])
        }
    })
}

pub(super) fn ensure(cx: &Cx, vm: &str, op: &str) -> Result<(), ApiFailure> {
    match check_op(cx.st, vm, op, cx.task.as_deref()) {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// Recomputes `allowed_operations` from the power state.
pub fn refresh_ops(st: &mut State, vm: &str) {
    let f = facts(st, vm, None);
    let ops: Vec<Value> = LISTED_OPS
        .iter()
        .filter(|op| refusal(&f, op).is_none())
        .map(|op| Value::String((*op).to_owned()))
        .collect();
    let vc = st.db.class_index("VM");
    st.db.set(vc, vm, "allowed_operations", Value::Array(ops));
}

pub(super) fn vm_arg(cx: &Cx, args: &[Value]) -> Result<String, ApiFailure> {
    check_ref(cx.st, "VM", &args[0])
}

fn set_devices_attached(st: &mut State, vm: &str, attached: bool) {
    let vc = st.db.class_index("VM");
    for (class, field) in [("VBD", "VBDs"), ("VIF", "VIFs")] {
        let ci = st.db.class_index(class);
        let devs: Vec<String> = st
            .db
            .get(vc, vm, field)
            .and_then(Value::as_array)
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        for d in devs {
            if class == "VBD" && st.db.get_bool(ci, &d, "empty") {
                continue;
            }
            st.db
                .set(ci, &d, "currently_attached", Value::Bool(attached));
        }
    }
}

/// Brings a VM to Running (or Paused) on `host`, with a fresh domid and metrics.
pub fn power_on(cx: &mut Cx, vm: &str, host: &str, paused: bool) {
    let st = &mut *cx.st;
    let vc = st.db.class_index("VM");
    st.next_domid += 1;
    let domid = st.next_domid;
    let db = &mut st.db;
    db.set(
        vc,
        vm,
        "power_state",
        Value::String(if paused { PAUSED } else { RUNNING }.into()),
    );
    db.set(vc, vm, "resident_on", Value::String(host.to_owned()));
    db.set(vc, vm, "domid", Value::Int(domid));
    let target = db.get_i64(vc, vm, "memory_dynamic_max");
    db.set(vc, vm, "memory_target", Value::Int(target));
    let vcpus = db.get_i64(vc, vm, "VCPUs_at_startup");
    let metrics = db.get_str(vc, vm, "metrics");
    let mc = db.class_index("VM_metrics");
    if db.exists(mc, &metrics) {
        db.set(mc, &metrics, "start_time", Value::DateTime(DateTime::now()));
        db.set(mc, &metrics, "memory_actual", Value::Int(target));
        db.set(mc, &metrics, "VCPUs_number", Value::Int(vcpus));
        db.set(
            mc,
            &metrics,
            "state",
            Value::Array(vec![Value::from(if paused { "paused" } else { "running" })]),
        );
        db.set(
            mc,
            &metrics,
            "last_updated",
            Value::DateTime(DateTime::now()),
        );
    }
    set_devices_attached(st, vm, true);
    refresh_ops(st, vm);
    if st.tools.contains(vm) {
        let vm = vm.to_owned();
        cx.shared.schedule(st.guest_agent_delay, move |sh| {
            super::guest::guest_agent_report(&mut sh.lock(), &vm);
            sh.changed.notify_all();
        });
    }
}

/// Halted: no domain, no residence, guest metrics gone (xapi's force_state_reset).
pub fn power_off(st: &mut State, vm: &str, state: &str) {
    let vc = st.db.class_index("VM");
    let db = &mut st.db;
    db.set(vc, vm, "power_state", Value::String(state.into()));
    db.set(vc, vm, "resident_on", Value::String(NULL_REF.into()));
    db.set(vc, vm, "domid", Value::Int(-1));
    let metrics = db.get_str(vc, vm, "metrics");
    let mc = db.class_index("VM_metrics");
    if db.exists(mc, &metrics) {
        db.set(mc, &metrics, "memory_actual", Value::Int(0));
        db.set(mc, &metrics, "VCPUs_number", Value::Int(0));
        db.set(mc, &metrics, "state", Value::Array(Vec::new()));
        db.set(
            mc,
            &metrics,
            "last_updated",
            Value::DateTime(DateTime::now()),
        );
    }
    if state == HALTED {
        let gm = db.get_str(vc, vm, "guest_metrics");
        let gc = db.class_index("VM_guest_metrics");
        db.destroy(gc, &gm);
        db.set(vc, vm, "guest_metrics", Value::String(NULL_REF.into()));
    }
    set_devices_attached(st, vm, false);
    refresh_ops(st, vm);
}

fn flag(args: &[Value], i: usize) -> bool {
    args.get(i).and_then(Value::as_bool).unwrap_or(false)
}

pub fn start(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    ensure(cx, &vm, "start")?;
    let host = boot_host(cx.st, &vm, None)?;
    power_on(cx, &vm, &host, flag(args, 1));
    void()
}

pub fn start_on(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    let host = check_ref(cx.st, "host", &args[1])?;
    ensure(cx, &vm, "start_on")?;
    boot_host(cx.st, &vm, Some(&host))?;
    power_on(cx, &vm, &host, flag(args, 2));
    void()
}

fn shutdown_as(cx: &mut Cx, args: &[Value], op: &str) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    ensure(cx, &vm, op)?;
    power_off(cx.st, &vm, HALTED);
    void()
}

pub fn clean_shutdown(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    shutdown_as(cx, args, "clean_shutdown")
}
pub fn hard_shutdown(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    shutdown_as(cx, args, "hard_shutdown")
}
pub fn shutdown(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    shutdown_as(cx, args, "shutdown")
}

fn reboot_as(cx: &mut Cx, args: &[Value], op: &str) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    ensure(cx, &vm, op)?;
    let vc = cx.st.db.class_index("VM");
    let host = cx.st.db.get_str(vc, &vm, "resident_on");
    power_on(cx, &vm, &host, false);
    void()
}

pub fn clean_reboot(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    reboot_as(cx, args, "clean_reboot")
}
pub fn hard_reboot(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    reboot_as(cx, args, "hard_reboot")
}

pub fn pause(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    ensure(cx, &vm, "pause")?;
    set_power(cx.st, &vm, PAUSED);
    void()
}

pub fn unpause(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    ensure(cx, &vm, "unpause")?;
    set_power(cx.st, &vm, RUNNING);
    void()
}

fn set_power(st: &mut State, vm: &str, state: &str) {
    let vc = st.db.class_index("VM");
    st.db
        .set(vc, vm, "power_state", Value::String(state.into()));
    let mc = st.db.class_index("VM_metrics");
    let metrics = st.db.get_str(vc, vm, "metrics");
    st.db.set(
        mc,
        &metrics,
        "state",
        Value::Array(vec![Value::String(state.to_ascii_lowercase())]),
    );
    refresh_ops(st, vm);
}

pub fn suspend(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    ensure(cx, &vm, "suspend")?;
    let st = &mut *cx.st;
    let vc = st.db.class_index("VM");
    // The memory image lands in a suspend VDI on the SR of the first disk.
    let sr = first_disk_sr(st, &vm);
    let memory = st.db.get_i64(vc, &vm, "memory_static_max");
    let name = format!("Suspend image for {}", st.db.get_str(vc, &vm, "name_label"));
    let vdi = super::storage::new_vdi(st, &sr, &name, memory, "suspend");
    power_off(st, &vm, SUSPENDED);
    st.db.set(vc, &vm, "suspend_VDI", Value::String(vdi));
    refresh_ops(st, &vm);
    void()
}

pub(super) fn first_disk_sr(st: &State, vm: &str) -> String {
    let (vc, bc, dc) = (
        st.db.class_index("VM"),
        st.db.class_index("VBD"),
        st.db.class_index("VDI"),
    );
    let vbds = st
        .db
        .get(vc, vm, "VBDs")
        .and_then(Value::as_array)
        .unwrap_or_default();
    vbds.iter()
        .filter_map(Value::as_str)
        .map(|b| st.db.get_str(bc, b, "VDI"))
        .find(|d| st.db.exists(dc, d))
        .map(|d| st.db.get_str(dc, &d, "SR"))
        .unwrap_or_else(|| {
            let pc = st.db.class_index("pool");
            st.db.get_str(pc, &st.pool, "default_SR")
        })
}

fn resume_as(cx: &mut Cx, vm: &str, host: Option<&str>, paused: bool, op: &str) -> Outcome<Value> {
    ensure(cx, vm, op)?;
    let host = boot_host(cx.st, vm, host)?;
    let vc = cx.st.db.class_index("VM");
    let dc = cx.st.db.class_index("VDI");
    let sv = cx.st.db.get_str(vc, vm, "suspend_VDI");
    cx.st.db.destroy(dc, &sv);
    cx.st
        .db
        .set(vc, vm, "suspend_VDI", Value::String(NULL_REF.into()));
    power_on(cx, vm, &host, paused);
    void()
}

pub fn resume(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    resume_as(cx, &vm, None, flag(args, 1), "resume")
}

pub fn resume_on(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    let host = check_ref(cx.st, "host", &args[1])?;
    resume_as(cx, &vm, Some(&host), flag(args, 2), "resume_on")
}

pub fn refs_of(st: &State, class: usize, r: &str, field: &str) -> Vec<String> {
    st.db
        .get(class, r, field)
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}
