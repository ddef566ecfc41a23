//! VM clone, copy, snapshot, checkpoint, revert, destroy, provision and create.

use super::dispatch::{fail, void, Cx};
use super::state::State;
use super::vm::{ensure, first_disk_sr, refresh_ops, refs_of, vm_arg, HALTED, SUSPENDED};
use crate::model::{DateTime, Struct, Value};
use crate::rpc::Outcome;

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

/// `VM.checkpoint`: a snapshot that also keeps the memory image (the snapshot is Suspended).
pub fn checkpoint(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    ensure(cx, &vm, "checkpoint")?;
    let name = args[1].as_str().unwrap_or_default().to_owned();
    let snap = duplicate(cx, &vm, &name, DiskMode::Snapshot);
    let st = &mut *cx.st;
    let vc = st.db.class_index("VM");
    let sr = first_disk_sr(st, &vm);
    let memory = st.db.get_i64(vc, &vm, "memory_static_max");
    let image = super::storage::new_vdi(
        st,
        &sr,
        &format!("Suspend image for {name}"),
        memory,
        "suspend",
    );
    st.db
        .set(vc, &snap, "power_state", Value::String(SUSPENDED.into()));
    st.db.set(vc, &snap, "suspend_VDI", Value::String(image));
    refresh_ops(st, &snap);
    Ok(Value::String(snap))
}

/// Fields a revert restores from the snapshot.
const REVERTED: &[&str] = &[
    "memory_static_max",
    "memory_dynamic_max",
    "memory_dynamic_min",
    "memory_static_min",
    "VCPUs_max",
    "VCPUs_at_startup",
    "VCPUs_params",
    "platform",
    "HVM_boot_policy",
    "HVM_boot_params",
];

/// `VM.revert(snapshot)`: the snapshot's VM is stopped and gets clones of the snapshot's
/// disks and its configuration back (and its memory image, for a checkpoint).
pub fn revert(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let snap = vm_arg(cx, args)?;
    let vc = cx.st.db.class_index("VM");
    if !cx.st.db.get_bool(vc, &snap, "is_a_snapshot") {
        return Err(fail("REVERT_ONLY_ALLOWED_ON_SNAPSHOT", &[&snap]));
    }
    ensure(cx, &snap, "revert")?;
    let vm = cx.st.db.get_str(vc, &snap, "snapshot_of");
    if !cx.st.db.exists(vc, &vm) {
        return Err(fail("HANDLE_INVALID", &["VM", &vm]));
    }
    if let Some(f) = super::tasks::busy(cx.st, vc, &vm, cx.task.as_deref()) {
        return Err(f);
    }
    let st = &mut *cx.st;
    if st.db.get_str(vc, &vm, "power_state") != HALTED {
        super::vm::power_off(st, &vm, HALTED);
    }
    let (bc, dc) = (st.db.class_index("VBD"), st.db.class_index("VDI"));
    // The VM's current disks are replaced: their VBDs go, and so do the disks themselves
    // unless something else still uses them.
    for vbd in refs_of(st, vc, &vm, "VBDs") {
        if st.db.get_str(bc, &vbd, "type") == "Disk" {
            let vdi = st.db.get_str(bc, &vbd, "VDI");
            st.db.destroy(bc, &vbd);
            let unused = refs_of(st, dc, &vdi, "VBDs").is_empty();
            if unused && st.db.exists(dc, &vdi) && !st.db.get_bool(dc, &vdi, "is_a_snapshot") {
                super::storage::forget_vdi(st, &vdi);
            }
        }
    }
    for vbd in refs_of(st, vc, &snap, "VBDs") {
        if st.db.get_str(bc, &vbd, "type") != "Disk" {
            continue;
        }
        let vdi = st.db.get_str(bc, &vbd, "VDI");
        if !st.db.exists(dc, &vdi) {
            continue;
        }
        let disk = super::storage::duplicate_vdi(st, &vdi, None, false);
        let userdevice = st.db.get_str(bc, &vbd, "userdevice");
        let bootable = st.db.get_bool(bc, &vbd, "bootable");
        super::storage::new_vbd(st, &vm, &disk, &userdevice, "Disk", bootable);
    }
    for f in REVERTED {
        if let Some(v) = st.db.get(vc, &snap, f).cloned() {
            st.db.set(vc, &vm, f, v);
        }
    }
    let image = st.db.get_str(vc, &snap, "suspend_VDI");
    if st.db.get_str(vc, &snap, "power_state") == SUSPENDED && st.db.exists(dc, &image) {
        let copy = super::storage::duplicate_vdi(st, &image, None, false);
        st.db.set(vc, &vm, "suspend_VDI", Value::String(copy));
        st.db
            .set(vc, &vm, "power_state", Value::String(SUSPENDED.into()));
    }
    refresh_ops(st, &vm);
    void()
}
