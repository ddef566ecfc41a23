//! VM memory and VCPU settings, with xapi's power-state rules and constraints.

use super::dispatch::{fail, void, Cx};
use super::vm::{ensure, vm_arg, RUNNING};
use crate::model::Value;
use crate::rpc::Outcome;

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
