//! Host maintenance: `host.disable` / `host.enable`, and evacuation with xapi's plan
//! (`compute_evacuation_plan_no_wlb`): every running guest must fit on the other enabled
//! hosts, or the whole evacuation is refused before anything moves.

use super::dispatch::{check_ref, fail, void, Cx};
use super::migrate::{check_reachable, free_memory, move_vm, vm_memory};
use super::state::State;
use super::vm::{check_op, refs_of};
use crate::model::{ApiFailure, Struct, Value};
use crate::rpc::Outcome;

pub fn disable(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    set_enabled(cx, args, false)
}

pub fn enable(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    set_enabled(cx, args, true)
}

fn set_enabled(cx: &mut Cx, args: &[Value], enabled: bool) -> Outcome<Value> {
    let host = check_ref(cx.st, "host", &args[0])?;
    let hc = cx.st.db.class_index("host");
    // Only a real change writes (and so emits an event), as in xapi.
    if cx.st.db.get_bool(hc, &host, "enabled") != enabled {
        cx.st.db.set(hc, &host, "enabled", Value::Bool(enabled));
    }
    void()
}

/// Where each running guest of `host` would go, or why it cannot, in `resident_VMs` order.
///
/// As in xapi: with no other enabled host every guest gets `NO_HOSTS_AVAILABLE [vm]`; a guest
/// that cannot migrate or cannot run on some candidate host gets that error; the rest are
/// packed by memory (largest first, each onto the candidate with the most room), and those
/// that do not fit get `HOST_NOT_ENOUGH_FREE_MEMORY [vm]` (xapi names the VM here, not the
/// sizes).
pub fn evacuation_plan(st: &State, host: &str) -> Vec<(String, Result<String, ApiFailure>)> {
    let (hc, vc) = (st.db.class_index("host"), st.db.class_index("VM"));
    let guests: Vec<String> = refs_of(st, hc, host, "resident_VMs")
        .into_iter()
        .filter(|vm| !st.db.get_bool(vc, vm, "is_control_domain"))
        .collect();
    let targets: Vec<String> = st
        .hosts
        .iter()
        .map(|h| h.r.clone())
        .filter(|h| h != host && st.db.get_bool(hc, h, "enabled"))
        .collect();
    if targets.is_empty() {
        return guests
            .into_iter()
            .map(|vm| {
                let e = fail("NO_HOSTS_AVAILABLE", &[&vm]);
                (vm, Err(e))
            })
            .collect();
    }
    let mut plan: Vec<(String, Option<Result<String, ApiFailure>>)> = guests
        .into_iter()
        .map(|vm| {
            let blocked = check_op(st, &vm, "pool_migrate", None)
                .map(Err)
                .or_else(|| {
                    targets
                        .iter()
                        .find_map(|t| check_reachable(st, &vm, t).err())
                        .map(Err)
                });
            (vm, blocked)
        })
        .collect();
    let mut room: Vec<(String, i64)> = targets
        .iter()
        .map(|t| (t.clone(), free_memory(st, t)))
        .collect();
    let mut order: Vec<usize> = (0..plan.len()).filter(|&i| plan[i].1.is_none()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(vm_memory(st, &plan[i].0)));
    for i in order {
        let need = vm_memory(st, &plan[i].0);
        let best = room
            .iter_mut()
            .filter(|(_, free)| *free >= need)
            .max_by_key(|(_, free)| *free);
        plan[i].1 = Some(match best {
            Some((t, free)) => {
                *free -= need;
                Ok(t.clone())
            }
            None => Err(fail("HOST_NOT_ENOUGH_FREE_MEMORY", &[&plan[i].0])),
        });
    }
    plan.into_iter()
        .filter_map(|(vm, p)| p.map(|p| (vm, p)))
        .collect()
}

/// `host.evacuate(host, network?, batch_size?)`: refuses with the first blocking error, else
/// migrates every running guest (events: `VM.resident_on`, both hosts' `resident_VMs`).
pub fn evacuate(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let host = check_ref(cx.st, "host", &args[0])?;
    let plan = evacuation_plan(cx.st, &host);
    let mut moves = Vec::new();
    for (vm, p) in plan {
        moves.push((vm, p?));
    }
    let total = moves.len();
    for (i, (vm, to)) in moves.iter().enumerate() {
        move_vm(cx.st, vm, to);
        set_progress(cx.st, cx.task.as_deref(), (i + 1) as f64 / total as f64);
    }
    void()
}

fn set_progress(st: &mut State, task: Option<&str>, p: f64) {
    if let Some(t) = task {
        let tc = st.db.class_index("task");
        st.db.set(tc, t, "progress", Value::Double(p));
    }
}

/// `host.assert_can_evacuate`: xapi's old encoding, every reason in one parameter
/// (`CODE,param,…` joined by `|`).
pub fn assert_can_evacuate(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let host = check_ref(cx.st, "host", &args[0])?;
    let errors: Vec<String> = evacuation_plan(cx.st, &host)
        .into_iter()
        .filter_map(|(_, p)| p.err())
        .map(|e| e.to_description().join(","))
        .collect();
    if errors.is_empty() {
        void()
    } else {
        Err(fail("CANNOT_EVACUATE_HOST", &[&errors.join("|")]))
    }
}

/// `host.get_vms_which_prevent_evacuation`: VM → `[code, params…]`.
pub fn vms_preventing_evacuation(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let host = check_ref(cx.st, "host", &args[0])?;
    let out: Struct = evacuation_plan(cx.st, &host)
        .into_iter()
        .filter_map(|(vm, p)| {
            let e = p.err()?;
            let list = e.to_description().into_iter().map(Value::String).collect();
            Some((vm, Value::Array(list)))
        })
        .collect();
    Ok(Value::Struct(out))
}
