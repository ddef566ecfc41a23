//! VDI and VBD workflows: create, destroy, clone/snapshot, plug/unplug, CD insert/eject.

use super::dispatch::{check_ref, fail, settable_at_create, void, Cx};
use super::state::State;
use super::vm::{refs_of, RUNNING};
use crate::model::{is_null_ref, DateTime, Struct, Value, NULL_REF};
use crate::rpc::Outcome;

pub fn new_vdi(st: &mut State, sr: &str, name: &str, size: i64, ty: &str) -> String {
    let dc = st.db.class_index("VDI");
    let r = st.db.create(
        dc,
        None,
        None,
        vec![
            ("name_label", Value::String(name.to_owned())),
            ("SR", Value::String(sr.to_owned())),
            ("virtual_size", Value::Int(size)),
            ("physical_utilisation", Value::Int(size / 4)),
            ("type", Value::String(ty.to_owned())),
            ("managed", Value::Bool(true)),
            (
                "allowed_operations",
                ops(&[
                    "clone",
                    "copy",
                    "resize",
                    "snapshot",
                    "destroy",
                    "update",
                    "generate_config",
                ]),
            ),
        ],
    );
    account(st, sr, size);
    r
}

fn ops(list: &[&str]) -> Value {
    Value::Array(list.iter().map(|s| Value::from(*s)).collect())
}

/// Destroys a VDI and gives its space back to its SR.
pub fn forget_vdi(st: &mut State, vdi: &str) {
    let dc = st.db.class_index("VDI");
    let sr = st.db.get_str(dc, vdi, "SR");
    let size = st.db.get_i64(dc, vdi, "virtual_size");
    if st.db.destroy(dc, vdi) {
        account(st, &sr, -size);
    }
}

/// Keeps the SR's `virtual_allocation` and `physical_utilisation` in step.
fn account(st: &mut State, sr: &str, delta: i64) {
    let sc = st.db.class_index("SR");
    if !st.db.exists(sc, sr) {
        return;
    }
    let va = st.db.get_i64(sc, sr, "virtual_allocation") + delta;
    let pu = st.db.get_i64(sc, sr, "physical_utilisation") + delta / 4;
    st.db
        .set(sc, sr, "virtual_allocation", Value::Int(va.max(0)));
    st.db
        .set(sc, sr, "physical_utilisation", Value::Int(pu.max(0)));
}

pub fn new_vbd(
    st: &mut State,
    vm: &str,
    vdi: &str,
    userdevice: &str,
    ty: &str,
    bootable: bool,
) -> String {
    let bc = st.db.class_index("VBD");
    let empty = is_null_ref(vdi);
    let device = if ty == "CD" {
        String::new()
    } else {
        format!(
            "xvd{}",
            (b'a' + userdevice.parse::<u8>().unwrap_or(0) % 26) as char
        )
    };
    st.db.create(
        bc,
        None,
        None,
        vec![
            ("VM", Value::String(vm.to_owned())),
            ("VDI", Value::String(vdi.to_owned())),
            ("userdevice", Value::String(userdevice.to_owned())),
            ("device", Value::String(device)),
            ("type", Value::String(ty.to_owned())),
            (
                "mode",
                Value::String(if ty == "CD" { "RO" } else { "RW" }.into()),
            ),
            ("bootable", Value::Bool(bootable)),
            ("empty", Value::Bool(empty)),
            ("unpluggable", Value::Bool(true)),
            (
                "allowed_operations",
                ops(&["attach", if ty == "CD" { "insert" } else { "pause" }]),
            ),
        ],
    )
}

/// A clone (or snapshot) of a VDI, on `sr` or the same SR.
pub fn duplicate_vdi(st: &mut State, vdi: &str, sr: Option<&str>, snapshot: bool) -> String {
    let dc = st.db.class_index("VDI");
    let dm = st.db.dm;
    let c = &dm.classes[dc];
    let Some(o) = st.db.tables[dc].objs.get(vdi) else {
        return NULL_REF.into();
    };
    let skip = [
        "uuid",
        "VBDs",
        "crash_dumps",
        "snapshots",
        "snapshot_of",
        "current_operations",
        "SR",
        "is_a_snapshot",
        "snapshot_time",
    ];
    let mut vals: Vec<(&str, Value)> = c
        .fields
        .iter()
        .zip(&o.fields)
        .filter(|(f, _)| !skip.contains(&f.name.as_str()))
        .map(|(f, v)| (f.name.as_str(), v.clone()))
        .collect();
    let src_sr = st.db.get_str(dc, vdi, "SR");
    let sr = sr.map_or(src_sr, str::to_owned);
    vals.push(("SR", Value::String(sr.clone())));
    if snapshot {
        vals.extend([
            ("is_a_snapshot", Value::Bool(true)),
            ("snapshot_of", Value::String(vdi.to_owned())),
            ("snapshot_time", Value::DateTime(DateTime::now())),
        ]);
    }
    let size = st.db.get_i64(dc, vdi, "virtual_size");
    let r = st.db.create(dc, None, None, vals);
    account(st, &sr, size);
    r
}

pub fn vdi_create(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let Some(Value::Struct(rec)) = args.first() else {
        return Err(fail("FIELD_TYPE_ERROR", &["args"]));
    };
    let sr = rec.get("SR").cloned().unwrap_or(Value::from(NULL_REF));
    let sr = check_ref(cx.st, "SR", &sr)?;
    let dc = cx.st.db.class_index("VDI");
    let dm = cx.st.db.dm;
    let class = &dm.classes[dc];
    let vals: Vec<(&str, Value)> = rec
        .iter()
        .filter(|(k, _)| settable_at_create(class, k) && *k != "uuid")
        .map(|(k, v)| (k, v.clone()))
        .collect();
    let size = rec.get("virtual_size").and_then(Value::as_i64).unwrap_or(0);
    if size < 0 {
        return Err(fail("INVALID_VALUE", &["virtual_size", &size.to_string()]));
    }
    let r = cx.st.db.create(dc, None, None, vals);
    cx.st.db.set(
        dc,
        &r,
        "allowed_operations",
        ops(&[
            "clone",
            "copy",
            "resize",
            "snapshot",
            "destroy",
            "update",
            "generate_config",
        ]),
    );
    account(cx.st, &sr, size);
    Ok(Value::String(r))
}

fn vbd_attached_to_running(st: &State, vbd: &str) -> bool {
    let (bc, vc) = (st.db.class_index("VBD"), st.db.class_index("VM"));
    let vm = st.db.get_str(bc, vbd, "VM");
    st.db.get_bool(bc, vbd, "currently_attached")
        && st.db.get_str(vc, &vm, "power_state") == RUNNING
}

pub fn vdi_destroy(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vdi = check_ref(cx.st, "VDI", &args[0])?;
    let dc = cx.st.db.class_index("VDI");
    let bc = cx.st.db.class_index("VBD");
    let vbds = refs_of(cx.st, dc, &vdi, "VBDs");
    if vbds.iter().any(|b| vbd_attached_to_running(cx.st, b)) {
        return Err(fail("VDI_IN_USE", &[&vdi, "destroy"]));
    }
    for b in vbds {
        cx.st.db.destroy(bc, &b);
    }
    let sr = cx.st.db.get_str(dc, &vdi, "SR");
    let size = cx.st.db.get_i64(dc, &vdi, "virtual_size");
    cx.st.db.destroy(dc, &vdi);
    account(cx.st, &sr, -size);
    void()
}

pub fn vdi_snapshot(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vdi = check_ref(cx.st, "VDI", &args[0])?;
    Ok(Value::String(duplicate_vdi(cx.st, &vdi, None, true)))
}

pub fn vdi_clone(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vdi = check_ref(cx.st, "VDI", &args[0])?;
    Ok(Value::String(duplicate_vdi(cx.st, &vdi, None, false)))
}

pub fn vbd_create(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let Some(Value::Struct(rec)) = args.first() else {
        return Err(fail("FIELD_TYPE_ERROR", &["args"]));
    };
    let vm = check_ref(cx.st, "VM", rec.get("VM").unwrap_or(&Value::Nil))?;
    let vdi = rec
        .get("VDI")
        .and_then(Value::as_str)
        .unwrap_or(NULL_REF)
        .to_owned();
    if !is_null_ref(&vdi) {
        check_ref(cx.st, "VDI", &Value::String(vdi.clone()))?;
    }
    let (vc, bc) = (cx.st.db.class_index("VM"), cx.st.db.class_index("VBD"));
    let used: Vec<String> = refs_of(cx.st, vc, &vm, "VBDs")
        .iter()
        .map(|b| cx.st.db.get_str(bc, b, "userdevice"))
        .collect();
    let mut userdevice = rec
        .get("userdevice")
        .and_then(Value::as_str)
        .unwrap_or("autodetect")
        .to_owned();
    if userdevice == "autodetect" || userdevice.is_empty() {
        userdevice = (0..16)
            .map(|i| i.to_string())
            .find(|d| !used.contains(d))
            .unwrap_or_else(|| "16".into());
    } else if used.contains(&userdevice) {
        return Err(fail("DEVICE_ALREADY_EXISTS", &[&userdevice]));
    }
    let ty = rec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("Disk")
        .to_owned();
    let bootable = rec
        .get("bootable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let r = new_vbd(cx.st, &vm, &vdi, &userdevice, &ty, bootable);
    for key in [
        "mode",
        "other_config",
        "qos_algorithm_type",
        "qos_algorithm_params",
        "unpluggable",
    ] {
        if let Some(v) = rec.get(key) {
            cx.st.db.set(bc, &r, key, v.clone());
        }
    }
    if rec.get("empty").and_then(Value::as_bool) == Some(true) {
        cx.st.db.set(bc, &r, "empty", Value::Bool(true));
    }
    Ok(Value::String(r))
}

pub fn vbd_destroy(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vbd = check_ref(cx.st, "VBD", &args[0])?;
    if vbd_attached_to_running(cx.st, &vbd) {
        return Err(fail(
            "OPERATION_NOT_ALLOWED",
            &["VBD is currently attached to a running VM"],
        ));
    }
    let bc = cx.st.db.class_index("VBD");
    cx.st.db.destroy(bc, &vbd);
    void()
}

/// Plug/unplug for VBDs and VIFs: the VM must be running.
pub fn plug_device(cx: &mut Cx, class: &str, r: &Value, plug: bool) -> Outcome<Value> {
    let dev = check_ref(cx.st, class, r)?;
    let (ci, vc) = (cx.st.db.class_index(class), cx.st.db.class_index("VM"));
    let vm = cx.st.db.get_str(ci, &dev, "VM");
    let power = cx.st.db.get_str(vc, &vm, "power_state");
    if power != RUNNING {
        return Err(fail(
            "VM_BAD_POWER_STATE",
            &[&vm, "running", &power.to_ascii_lowercase()],
        ));
    }
    let attached = cx.st.db.get_bool(ci, &dev, "currently_attached");
    if plug && attached {
        return Err(fail("DEVICE_ALREADY_ATTACHED", &[&dev]));
    }
    if !plug && !attached {
        return Err(fail("DEVICE_ALREADY_DETACHED", &[&dev]));
    }
    if !plug && class == "VBD" && !cx.st.db.get_bool(ci, &dev, "unpluggable") {
        return Err(fail("VBD_NOT_UNPLUGGABLE", &[&dev]));
    }
    cx.st
        .db
        .set(ci, &dev, "currently_attached", Value::Bool(plug));
    void()
}

pub fn vbd_plug(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    plug_device(cx, "VBD", &args[0], true)
}
pub fn vbd_unplug(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    plug_device(cx, "VBD", &args[0], false)
}

pub fn vbd_insert(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vbd = check_ref(cx.st, "VBD", &args[0])?;
    let vdi = check_ref(cx.st, "VDI", &args[1])?;
    let bc = cx.st.db.class_index("VBD");
    if cx.st.db.get_str(bc, &vbd, "type") != "CD" {
        return Err(fail("VBD_NOT_REMOVABLE_MEDIA", &[&vbd]));
    }
    if !cx.st.db.get_bool(bc, &vbd, "empty") {
        return Err(fail("VBD_NOT_EMPTY", &[&vbd]));
    }
    cx.st.db.set(bc, &vbd, "VDI", Value::String(vdi));
    cx.st.db.set(bc, &vbd, "empty", Value::Bool(false));
    void()
}

pub fn vbd_eject(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vbd = check_ref(cx.st, "VBD", &args[0])?;
    let bc = cx.st.db.class_index("VBD");
    if cx.st.db.get_str(bc, &vbd, "type") != "CD" {
        return Err(fail("VBD_NOT_REMOVABLE_MEDIA", &[&vbd]));
    }
    if cx.st.db.get_bool(bc, &vbd, "empty") {
        return Err(fail("VBD_IS_EMPTY", &[&vbd]));
    }
    cx.st
        .db
        .set(bc, &vbd, "VDI", Value::String(NULL_REF.into()));
    cx.st.db.set(bc, &vbd, "empty", Value::Bool(true));
    void()
}

/// An empty struct value (for records the simulator fills in).
pub fn map(pairs: &[(&str, &str)]) -> Value {
    Value::Struct(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect::<Struct>(),
    )
}
