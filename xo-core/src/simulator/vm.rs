//! VM lifecycle with xapi's state machine: power-state checks, `allowed_operations`,
//! `resident_on`, `domid`, `VM_metrics`, and the guest agent.

use super::dispatch::{check_ref, fail, void, Cx};
use super::state::State;
use super::tasks::busy;
use crate::model::{ApiFailure, DateTime, Struct, Value, NULL_REF};
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
        "snapshot" | "export" | "metadata_export" => &[HALTED, RUNNING, PAUSED, SUSPENDED],
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
    "clone",
    "copy",
    "snapshot",
    "checkpoint",
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

fn ensure(cx: &Cx, vm: &str, op: &str) -> Result<(), ApiFailure> {
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

fn vm_arg(cx: &Cx, args: &[Value]) -> Result<String, ApiFailure> {
    check_ref(cx.st, "VM", &args[0])
}

/// Picks the enabled host with the fewest resident VMs.
fn pick_host(st: &State) -> String {
    let hc = st.db.class_index("host");
    st.hosts
        .iter()
        .filter(|h| st.db.get_bool(hc, &h.r, "enabled"))
        .min_by_key(|h| {
            st.db
                .get(hc, &h.r, "resident_VMs")
                .and_then(Value::as_array)
                .map_or(0, <[Value]>::len)
        })
        .map(|h| h.r.clone())
        .unwrap_or_default()
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
            guest_agent_report(&mut sh.lock(), &vm);
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

/// What the guest agent reports once the VM has booted: OS, drivers and addresses per VIF.
pub fn guest_agent_report(st: &mut State, vm: &str) {
    let vc = st.db.class_index("VM");
    if !st.db.exists(vc, vm) || st.db.get_str(vc, vm, "power_state") != RUNNING {
        return;
    }
    let seed = st
        .db
        .get_str(vc, vm, "uuid")
        .bytes()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    let name = st.db.get_str(vc, vm, "name_label");
    let windows = name.to_ascii_lowercase().contains("win");
    let vifc = st.db.class_index("VIF");
    let mut networks = Struct::new();
    let vifs: Vec<String> = st
        .db
        .get(vc, vm, "VIFs")
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    for (i, vif) in vifs.iter().enumerate() {
        let dev = st.db.get_str(vifc, vif, "device");
        let n = seed.wrapping_add(i as u32);
        let v4 = if n % 2 == 0 {
            format!("198.51.100.{}", 2 + n % 250)
        } else {
            format!("203.0.113.{}", 2 + n % 250)
        };
        let v6 = format!("2001:db8:{:x}::{:x}", 1 + (n >> 16) % 0xfff, 1 + n % 0xffff);
        networks.insert(format!("{dev}/ip"), Value::String(v4.clone()));
        networks.insert(format!("{dev}/ipv4/0"), Value::String(v4));
        networks.insert(format!("{dev}/ipv6/0"), Value::String(v6));
    }
    let os_pairs: &[(&str, &str)] = if windows {
        &[
            (
                "name",
                "Microsoft Windows 10 Pro|C:\\Windows|\\Device\\Harddisk0\\Partition2",
            ),
            ("distro", "windows"),
            ("major", "10"),
            ("minor", "0"),
            ("spmajor", "0"),
            ("spminor", "0"),
        ]
    } else {
        &[
            ("name", "Debian GNU/Linux 11 (bullseye)"),
            ("uname", "5.10.0-28-amd64"),
            ("distro", "debian"),
            ("major", "11"),
            ("minor", "9"),
            ("spmajor", ""),
            ("spminor", ""),
        ]
    };
    let os: Struct = os_pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    let drivers: Struct = [
        ("major", "8"),
        ("minor", "3"),
        ("micro", "0"),
        ("build", "1"),
        ("application", "xe-guest-utilities"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
    .collect();
    let other: Struct = [
        ("feature-shutdown", "1"),
        ("feature-suspend", "1"),
        ("feature-vcpu-hotplug", "1"),
        ("has-vendor-device", "0"),
        ("platform-feature-multiprocessor-suspend", "1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
    .collect();
    let gc = st.db.class_index("VM_guest_metrics");
    let old = st.db.get_str(vc, vm, "guest_metrics");
    st.db.destroy(gc, &old);
    let gm = st.db.create(
        gc,
        None,
        None,
        vec![
            ("os_version", Value::Struct(os)),
            ("PV_drivers_version", Value::Struct(drivers)),
            ("PV_drivers_up_to_date", Value::Bool(true)),
            ("PV_drivers_detected", Value::Bool(true)),
            ("networks", Value::Struct(networks)),
            ("other", Value::Struct(other)),
            ("last_updated", Value::DateTime(DateTime::now())),
            ("live", Value::Bool(true)),
            ("can_use_hotplug_vbd", Value::String("yes".into())),
            ("can_use_hotplug_vif", Value::String("yes".into())),
        ],
    );
    st.db.set(vc, vm, "guest_metrics", Value::String(gm));
}

fn flag(args: &[Value], i: usize) -> bool {
    args.get(i).and_then(Value::as_bool).unwrap_or(false)
}

pub fn start(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    ensure(cx, &vm, "start")?;
    let host = pick_host(cx.st);
    if host.is_empty() {
        return Err(fail("NO_HOSTS_AVAILABLE", &[]));
    }
    power_on(cx, &vm, &host, flag(args, 1));
    void()
}

pub fn start_on(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    let host = check_ref(cx.st, "host", &args[1])?;
    ensure(cx, &vm, "start_on")?;
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

fn first_disk_sr(st: &State, vm: &str) -> String {
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

fn resume_as(cx: &mut Cx, vm: &str, host: &str, paused: bool, op: &str) -> Outcome<Value> {
    ensure(cx, vm, op)?;
    let vc = cx.st.db.class_index("VM");
    let dc = cx.st.db.class_index("VDI");
    let sv = cx.st.db.get_str(vc, vm, "suspend_VDI");
    cx.st.db.destroy(dc, &sv);
    cx.st
        .db
        .set(vc, vm, "suspend_VDI", Value::String(NULL_REF.into()));
    power_on(cx, vm, host, paused);
    void()
}

pub fn resume(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    let host = pick_host(cx.st);
    resume_as(cx, &vm, &host, flag(args, 1), "resume")
}

pub fn resume_on(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    let host = check_ref(cx.st, "host", &args[1])?;
    resume_as(cx, &vm, &host, flag(args, 2), "resume_on")
}

pub fn pool_migrate(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    let host = check_ref(cx.st, "host", &args[1])?;
    ensure(cx, &vm, "pool_migrate")?;
    let vc = cx.st.db.class_index("VM");
    cx.st.db.set(vc, &vm, "resident_on", Value::String(host));
    void()
}

/// Fields a copy does not inherit: identity, runtime state and the relation sets that the
/// copy's own devices fill in.
const NOT_COPIED: &[&str] = &[
    "uuid",
    "allowed_operations",
    "current_operations",
    "VIFs",
    "VBDs",
    "VUSBs",
    "VTPMs",
    "VGPUs",
    "consoles",
    "crash_dumps",
    "snapshots",
    "children",
    "attached_PCIs",
    "metrics",
    "guest_metrics",
    "resident_on",
    "suspend_VDI",
    "snapshot_of",
    "parent",
    "blocked_operations",
];

/// How the disks of a copy are made.
enum DiskMode<'a> {
    Clone,
    Copy(&'a str),
    Snapshot,
}

fn duplicate(cx: &mut Cx, vm: &str, name: &str, disks: DiskMode) -> String {
    let st = &mut *cx.st;
    let vc = st.db.class_index("VM");
    let dm = st.db.dm;
    let c = &dm.classes[vc];
    let Some(src) = st.db.tables[vc].objs.get(vm) else {
        return String::new();
    };
    let mut values: Vec<(&str, Value)> = c
        .fields
        .iter()
        .zip(&src.fields)
        .filter(|(f, _)| !NOT_COPIED.contains(&f.name.as_str()))
        .map(|(f, v)| (f.name.as_str(), v.clone()))
        .collect();
    values.retain(|(k, _)| *k != "name_label");
    values.push(("name_label", Value::String(name.to_owned())));
    let power = st.db.get_str(vc, vm, "power_state");
    let snapshot = matches!(disks, DiskMode::Snapshot);
    if snapshot {
        values.retain(|(k, _)| {
            ![
                "is_a_snapshot",
                "is_a_template",
                "power_state",
                "domid",
                "snapshot_time",
            ]
            .contains(k)
        });
        values.extend([
            ("is_a_snapshot", Value::Bool(true)),
            ("is_a_template", Value::Bool(true)),
            ("snapshot_of", Value::String(vm.to_owned())),
            ("snapshot_time", Value::DateTime(DateTime::now())),
            ("power_state", Value::String(HALTED.into())),
            ("domid", Value::Int(-1)),
        ]);
    } else {
        values.retain(|(k, _)| !["power_state", "domid"].contains(k));
        values.extend([
            (
                "power_state",
                Value::String(
                    if power == SUSPENDED {
                        SUSPENDED
                    } else {
                        HALTED
                    }
                    .into(),
                ),
            ),
            ("domid", Value::Int(-1)),
        ]);
        values.push(("parent", Value::String(vm.to_owned())));
    }
    let mut other = match st.db.get(vc, vm, "other_config") {
        Some(Value::Struct(s)) => s.clone(),
        _ => Struct::new(),
    };
    other.remove("default_template");
    values.retain(|(k, _)| *k != "other_config");
    values.push(("other_config", Value::Struct(other)));
    let mc = st.db.class_index("VM_metrics");
    let metrics = st.db.create(
        mc,
        None,
        None,
        vec![
            ("VCPUs_number", Value::Int(0)),
            ("install_time", Value::DateTime(DateTime::now())),
        ],
    );
    values.push(("metrics", Value::String(metrics)));
    let new = st.db.create(vc, None, None, values);
    if st.tools.contains(vm) {
        st.tools.insert(new.clone());
    }
    // Devices: VIFs get new MACs, disks are cloned, copied or snapshotted.
    let (vifc, vbdc, vdic) = (
        st.db.class_index("VIF"),
        st.db.class_index("VBD"),
        st.db.class_index("VDI"),
    );
    let vifs: Vec<String> = refs_of(st, vc, vm, "VIFs");
    for vif in vifs {
        let mut vals = copy_fields(
            st,
            vifc,
            &vif,
            &[
                "uuid",
                "VM",
                "MAC",
                "currently_attached",
                "allowed_operations",
                "current_operations",
                "metrics",
            ],
        );
        vals.push(("VM", Value::String(new.clone())));
        let mac = st.random_mac();
        vals.push(("MAC", Value::String(mac)));
        st.db.create(vifc, None, None, vals);
    }
    let vbds: Vec<String> = refs_of(st, vc, vm, "VBDs");
    for vbd in vbds {
        let mut vals = copy_fields(
            st,
            vbdc,
            &vbd,
            &[
                "uuid",
                "VM",
                "VDI",
                "currently_attached",
                "allowed_operations",
                "current_operations",
                "metrics",
            ],
        );
        let vdi = st.db.get_str(vbdc, &vbd, "VDI");
        let is_disk = st.db.get_str(vbdc, &vbd, "type") == "Disk";
        let new_vdi = if is_disk && st.db.exists(vdic, &vdi) {
            match disks {
                DiskMode::Clone => super::storage::duplicate_vdi(st, &vdi, None, false),
                DiskMode::Copy(sr) => super::storage::duplicate_vdi(st, &vdi, Some(sr), false),
                DiskMode::Snapshot => super::storage::duplicate_vdi(st, &vdi, None, true),
            }
        } else {
            vdi
        };
        vals.push(("VM", Value::String(new.clone())));
        vals.push(("VDI", Value::String(new_vdi)));
        st.db.create(vbdc, None, None, vals);
    }
    refresh_ops(st, &new);
    new
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

fn copy_fields(st: &State, class: usize, r: &str, skip: &[&str]) -> Vec<(&'static str, Value)> {
    let dm = st.db.dm;
    let c = &dm.classes[class];
    let Some(o) = st.db.tables[class].objs.get(r) else {
        return Vec::new();
    };
    c.fields
        .iter()
        .zip(&o.fields)
        .filter(|(f, _)| !skip.contains(&f.name.as_str()))
        .map(|(f, v)| (f.name.as_str(), v.clone()))
        .collect()
}

pub fn clone(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    ensure(cx, &vm, "clone")?;
    let name = args[1].as_str().unwrap_or_default().to_owned();
    Ok(Value::String(duplicate(cx, &vm, &name, DiskMode::Clone)))
}

pub fn copy(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    let sr = args[2].as_str().unwrap_or_default().to_owned();
    let src = cx.st.db.class_index("SR");
    if !crate::model::is_null_ref(&sr) && !cx.st.db.exists(src, &sr) {
        return Err(fail("HANDLE_INVALID", &["SR", &sr]));
    }
    ensure(cx, &vm, "copy")?;
    let name = args[1].as_str().unwrap_or_default().to_owned();
    let mode = if crate::model::is_null_ref(&sr) {
        DiskMode::Clone
    } else {
        DiskMode::Copy(&sr)
    };
    Ok(Value::String(duplicate(cx, &vm, &name, mode)))
}

pub fn snapshot(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    ensure(cx, &vm, "snapshot")?;
    let name = args[1].as_str().unwrap_or_default().to_owned();
    Ok(Value::String(duplicate(cx, &vm, &name, DiskMode::Snapshot)))
}

pub fn destroy(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    ensure(cx, &vm, "destroy")?;
    let st = &mut *cx.st;
    let vc = st.db.class_index("VM");
    for (class, field) in [
        ("VIF", "VIFs"),
        ("VBD", "VBDs"),
        ("console", "consoles"),
        ("VTPM", "VTPMs"),
    ] {
        let ci = st.db.class_index(class);
        for d in refs_of(st, vc, &vm, field) {
            st.db.destroy(ci, &d);
        }
    }
    for (class, field) in [
        ("VM_metrics", "metrics"),
        ("VM_guest_metrics", "guest_metrics"),
    ] {
        let ci = st.db.class_index(class);
        let r = st.db.get_str(vc, &vm, field);
        st.db.destroy(ci, &r);
    }
    st.db.destroy(vc, &vm);
    st.tools.remove(&vm);
    void()
}

pub fn provision(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    ensure(cx, &vm, "provision")?;
    let st = &mut *cx.st;
    let (vc, bc) = (st.db.class_index("VM"), st.db.class_index("VBD"));
    let has_disk = refs_of(st, vc, &vm, "VBDs")
        .iter()
        .any(|b| st.db.get_str(bc, b, "type") == "Disk");
    if !has_disk {
        let sr = first_disk_sr(st, &vm);
        let name = format!("{} 0", st.db.get_str(vc, &vm, "name_label"));
        let vdi = super::storage::new_vdi(st, &sr, &name, 10 << 30, "system");
        super::storage::new_vbd(st, &vm, &vdi, "0", "Disk", true);
    }
    void()
}

const MEMORY_CONSTRAINT: &str =
    "Memory limits must satisfy: static_min <= dynamic_min <= dynamic_max <= static_max";

fn set_limits(
    cx: &mut Cx,
    vm: &str,
    op: &str,
    smin: i64,
    smax: i64,
    dmin: i64,
    dmax: i64,
) -> Outcome<Value> {
    ensure(cx, vm, op)?;
    if !(0 <= smin && smin <= dmin && dmin <= dmax && dmax <= smax) {
        return Err(fail("MEMORY_CONSTRAINT_VIOLATION", &[MEMORY_CONSTRAINT]));
    }
    let vc = cx.st.db.class_index("VM");
    let db = &mut cx.st.db;
    db.set(vc, vm, "memory_static_min", Value::Int(smin));
    db.set(vc, vm, "memory_static_max", Value::Int(smax));
    db.set(vc, vm, "memory_dynamic_min", Value::Int(dmin));
    db.set(vc, vm, "memory_dynamic_max", Value::Int(dmax));
    if db.get_str(vc, vm, "power_state") == RUNNING {
        db.set(vc, vm, "memory_target", Value::Int(dmax));
        let mc = db.class_index("VM_metrics");
        let m = db.get_str(vc, vm, "metrics");
        db.set(mc, &m, "memory_actual", Value::Int(dmax));
    }
    void()
}

fn mem(cx: &Cx, vm: &str) -> [i64; 4] {
    let vc = cx.st.db.class_index("VM");
    [
        "memory_static_min",
        "memory_static_max",
        "memory_dynamic_min",
        "memory_dynamic_max",
    ]
    .map(|f| cx.st.db.get_i64(vc, vm, f))
}

fn int(args: &[Value], i: usize) -> i64 {
    args.get(i).and_then(Value::as_i64).unwrap_or(0)
}

pub fn set_memory_limits(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    set_limits(
        cx,
        &vm,
        "changing_memory_limits",
        int(args, 1),
        int(args, 2),
        int(args, 3),
        int(args, 4),
    )
}

pub fn set_memory_static_range(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    let [_, _, dmin, dmax] = mem(cx, &vm);
    set_limits(
        cx,
        &vm,
        "changing_static_range",
        int(args, 1),
        int(args, 2),
        dmin,
        dmax,
    )
}

pub fn set_memory_dynamic_range(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    let [smin, smax, _, _] = mem(cx, &vm);
    set_limits(
        cx,
        &vm,
        "changing_dynamic_range",
        smin,
        smax,
        int(args, 1),
        int(args, 2),
    )
}

pub fn set_memory(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    let [smin, ..] = mem(cx, &vm);
    let v = int(args, 1);
    set_limits(cx, &vm, "changing_memory_limits", smin.min(v), v, v, v)
}

pub fn set_vcpus_max(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    ensure(cx, &vm, "changing_VCPUs")?;
    let v = int(args, 1);
    let vc = cx.st.db.class_index("VM");
    if v < 1 || v < cx.st.db.get_i64(vc, &vm, "VCPUs_at_startup") {
        return Err(fail("INVALID_VALUE", &["VCPUs_max", &v.to_string()]));
    }
    cx.st.db.set(vc, &vm, "VCPUs_max", Value::Int(v));
    void()
}

pub fn set_vcpus_at_startup(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    ensure(cx, &vm, "changing_VCPUs")?;
    let v = int(args, 1);
    let vc = cx.st.db.class_index("VM");
    if v < 1 || v > cx.st.db.get_i64(vc, &vm, "VCPUs_max") {
        return Err(fail("INVALID_VALUE", &["VCPUs_at_startup", &v.to_string()]));
    }
    cx.st.db.set(vc, &vm, "VCPUs_at_startup", Value::Int(v));
    void()
}

pub fn set_vcpus_number_live(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    ensure(cx, &vm, "changing_VCPUs_live")?;
    let v = int(args, 1);
    let vc = cx.st.db.class_index("VM");
    if v < 1 || v > cx.st.db.get_i64(vc, &vm, "VCPUs_max") {
        return Err(fail("INVALID_VALUE", &["nvcpu", &v.to_string()]));
    }
    cx.st.db.set(vc, &vm, "VCPUs_at_startup", Value::Int(v));
    let mc = cx.st.db.class_index("VM_metrics");
    let m = cx.st.db.get_str(vc, &vm, "metrics");
    cx.st.db.set(mc, &m, "VCPUs_number", Value::Int(v));
    void()
}

/// `VM.create`: the generic constructor plus what xapi adds (metrics, allowed operations).
pub fn create(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let Some(Value::Struct(rec)) = args.first() else {
        return Err(fail("FIELD_TYPE_ERROR", &["args"]));
    };
    let st = &mut *cx.st;
    let vc = st.db.class_index("VM");
    let dm = st.db.dm;
    let class = &dm.classes[vc];
    let mut vals: Vec<(&str, Value)> = rec
        .iter()
        .filter(|(k, _)| {
            super::dispatch::settable_at_create(class, k)
                && !matches!(*k, "uuid" | "power_state" | "domid")
        })
        .map(|(k, v)| (k, v.clone()))
        .collect();
    let mc = st.db.class_index("VM_metrics");
    let metrics = st.db.create(
        mc,
        None,
        None,
        vec![("install_time", Value::DateTime(DateTime::now()))],
    );
    vals.push(("metrics", Value::String(metrics)));
    vals.push(("power_state", Value::String(HALTED.into())));
    vals.push(("domid", Value::Int(-1)));
    let vm = st.db.create(vc, None, None, vals);
    refresh_ops(st, &vm);
    Ok(Value::String(vm))
}
