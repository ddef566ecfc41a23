//! SR lifecycle: `SR.create` (SR + plugged PBDs), `SR.forget`, `SR.destroy`, and
//! `PBD.plug` / `PBD.unplug`, with xapi's checks (`SR_UNKNOWN_DRIVER`, `SR_HAS_PBD`,
//! `SR_INDESTRUCTIBLE`, `VDI_IN_USE`).

use super::dispatch::{check_ref, fail, void, Cx};
use super::state::State;
use super::storage::map;
use super::vm::refs_of;
use crate::model::Value;
use crate::rpc::Outcome;

/// What xapi allows on an attached SR; `forget` and `destroy` come on top for SRs made by
/// `SR.create` (the inventory's install-time SRs list only these).
const ATTACHED_SR_OPS: &[&str] = &[
    "vdi_create",
    "vdi_destroy",
    "vdi_clone",
    "vdi_snapshot",
    "vdi_resize",
    "scan",
    "plug",
    "unplug",
    "update",
];

/// `allowed_operations` of an SR, as a wire value.
pub fn sr_allowed_ops(forgettable: bool) -> Value {
    let extra: &[&str] = if forgettable {
        &["forget", "destroy"]
    } else {
        &[]
    };
    Value::Array(
        ATTACHED_SR_OPS
            .iter()
            .chain(extra)
            .map(|o| Value::from(*o))
            .collect(),
    )
}

/// `SR.create(host, device_config, physical_size, name_label, name_description, type,
/// content_type, shared, sm_config)`. The type must be a known SM driver. As in xapi, a
/// shared SR gets a plugged PBD on every host, a local one only on `host`.
pub fn create(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let host = check_ref(cx.st, "host", &args[0])?;
    let ty = args[5].as_str().unwrap_or_default().to_owned();
    let st = &mut *cx.st;
    let smc = st.db.class_index("SM");
    if st.db.find(smc, "type", &ty).is_empty() {
        return Err(fail("SR_UNKNOWN_DRIVER", &[&ty]));
    }
    let shared = args[7].as_bool().unwrap_or(false);
    let sm_config = match args.get(8) {
        Some(v @ Value::Struct(_)) => v.clone(),
        _ => map(&[]),
    };
    let sc = st.db.class_index("SR");
    let ops = sr_allowed_ops(true);
    let sr = st.db.create(
        sc,
        None,
        None,
        vec![
            ("name_label", args[3].clone()),
            ("name_description", args[4].clone()),
            ("type", Value::String(ty)),
            ("content_type", args[6].clone()),
            ("shared", Value::Bool(shared)),
            ("physical_size", Value::Int(args[2].as_i64().unwrap_or(0))),
            ("sm_config", sm_config),
            ("allowed_operations", ops),
        ],
    );
    let hosts: Vec<String> = if shared {
        st.hosts.iter().map(|h| h.r.clone()).collect()
    } else {
        vec![host]
    };
    let pc = st.db.class_index("PBD");
    for h in hosts {
        st.db.create(
            pc,
            None,
            None,
            vec![
                ("host", Value::String(h)),
                ("SR", Value::String(sr.clone())),
                ("device_config", args[1].clone()),
                ("currently_attached", Value::Bool(true)),
            ],
        );
    }
    Ok(Value::String(sr))
}

/// `SR_HAS_PBD [sr]` while any PBD of the SR is plugged.
fn check_unplugged(st: &State, sr: &str) -> Result<(), crate::model::ApiFailure> {
    let (sc, pc) = (st.db.class_index("SR"), st.db.class_index("PBD"));
    if refs_of(st, sc, sr, "PBDs")
        .iter()
        .any(|p| st.db.get_bool(pc, p, "currently_attached"))
    {
        return Err(fail("SR_HAS_PBD", &[sr]));
    }
    Ok(())
}

/// Removes the SR, its PBDs and VDIs from the database. VBDs that pointed at those VDIs are
/// left as they are, as xapi does (their `VDI` no longer resolves).
fn remove(st: &mut State, sr: &str) {
    let (sc, pc, dc) = (
        st.db.class_index("SR"),
        st.db.class_index("PBD"),
        st.db.class_index("VDI"),
    );
    for p in refs_of(st, sc, sr, "PBDs") {
        st.db.destroy(pc, &p);
    }
    for v in refs_of(st, sc, sr, "VDIs") {
        st.db.destroy(dc, &v);
    }
    st.db.destroy(sc, sr);
}

pub fn forget(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let sr = check_ref(cx.st, "SR", &args[0])?;
    check_unplugged(cx.st, &sr)?;
    remove(cx.st, &sr);
    void()
}

/// `SR.destroy`: like `forget`, after the `indestructible` flag check (the backend would also
/// delete the data, which the simulator does not have).
pub fn destroy(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let sr = check_ref(cx.st, "SR", &args[0])?;
    let sc = cx.st.db.class_index("SR");
    if let Some(Value::Struct(oc)) = cx.st.db.get(sc, &sr, "other_config") {
        if oc.get("indestructible").and_then(Value::as_str) == Some("true") {
            return Err(fail("SR_INDESTRUCTIBLE", &[&sr]));
        }
    }
    check_unplugged(cx.st, &sr)?;
    remove(cx.st, &sr);
    void()
}

/// `PBD.plug`: attaches the SR on the PBD's host (already attached: nothing to do).
pub fn pbd_plug(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let pbd = check_ref(cx.st, "PBD", &args[0])?;
    let pc = cx.st.db.class_index("PBD");
    if !cx.st.db.get_bool(pc, &pbd, "currently_attached") {
        cx.st
            .db
            .set(pc, &pbd, "currently_attached", Value::Bool(true));
    }
    void()
}

/// `PBD.unplug`: refused with `VDI_IN_USE [vdi…]` while VDIs of the SR are attached to VMs
/// running on the PBD's host.
pub fn pbd_unplug(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let pbd = check_ref(cx.st, "PBD", &args[0])?;
    let st = &mut *cx.st;
    let (pc, sc, dc, bc, vc) = (
        st.db.class_index("PBD"),
        st.db.class_index("SR"),
        st.db.class_index("VDI"),
        st.db.class_index("VBD"),
        st.db.class_index("VM"),
    );
    if !st.db.get_bool(pc, &pbd, "currently_attached") {
        return void();
    }
    let host = st.db.get_str(pc, &pbd, "host");
    let sr = st.db.get_str(pc, &pbd, "SR");
    let in_use: Vec<String> = refs_of(st, sc, &sr, "VDIs")
        .into_iter()
        .filter(|vdi| {
            refs_of(st, dc, vdi, "VBDs").iter().any(|b| {
                let vm = st.db.get_str(bc, b, "VM");
                st.db.get_bool(bc, b, "currently_attached")
                    && st.db.get_str(vc, &vm, "resident_on") == host
            })
        })
        .collect();
    if !in_use.is_empty() {
        let refs: Vec<&str> = in_use.iter().map(String::as_str).collect();
        return Err(fail("VDI_IN_USE", &refs));
    }
    st.db
        .set(pc, &pbd, "currently_attached", Value::Bool(false));
    void()
}
