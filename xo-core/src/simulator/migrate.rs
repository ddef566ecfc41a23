//! Moving running VMs between hosts of the pool: the placement checks xapi runs before a
//! migration (`assert_can_boot_here`: host enabled, SRs and networks visible, memory), and
//! `VM.pool_migrate`, `VM.migrate_send` (pool-internal only) and `host.migrate_receive`.

use super::dispatch::{check_ref, fail, void, Cx};
use super::state::State;
use super::storage::{duplicate_vdi, forget_vdi};
use super::vm::{ensure, refresh_ops, refs_of, vm_arg, RUNNING};
use crate::model::{ApiFailure, Struct, Value};
use crate::rpc::Outcome;

/// Memory a VM needs on a host: `memory_dynamic_min` plus its overhead. This is xapi's
/// default accounting (`Memory_check`, dynamic-min policy: guests can balloon down).
pub fn vm_memory(st: &State, vm: &str) -> i64 {
    let vc = st.db.class_index("VM");
    st.db.get_i64(vc, vm, "memory_dynamic_min") + st.db.get_i64(vc, vm, "memory_overhead")
}

/// Free memory on a host: total − host overhead − what its resident domains need.
pub fn free_memory(st: &State, host: &str) -> i64 {
    let (hc, mc) = (st.db.class_index("host"), st.db.class_index("host_metrics"));
    let metrics = st.db.get_str(hc, host, "metrics");
    let total = st.db.get_i64(mc, &metrics, "memory_total");
    let used: i64 = refs_of(st, hc, host, "resident_VMs")
        .iter()
        .map(|vm| vm_memory(st, vm))
        .sum();
    total - st.db.get_i64(hc, host, "memory_overhead") - used
}

/// Whether `host` sees every SR and network the VM uses (xapi's `assert_can_boot_here`
/// without the memory part): `HOST_DISABLED`, `VM_REQUIRES_SR`, `VM_REQUIRES_NETWORK`.
pub fn check_reachable(st: &State, vm: &str, host: &str) -> Result<(), ApiFailure> {
    check_reachable_after(st, vm, host, &[], &[])
}

/// [`check_reachable`] as it will be once the VDIs in `srs` (VDI → SR) and the VIFs in `nets`
/// (VIF → network) have moved.
fn check_reachable_after(
    st: &State,
    vm: &str,
    host: &str,
    srs: &[(String, String)],
    nets: &[(String, String)],
) -> Result<(), ApiFailure> {
    check_enabled(st, host)?;
    let (vc, bc, dc) = (
        st.db.class_index("VM"),
        st.db.class_index("VBD"),
        st.db.class_index("VDI"),
    );
    for vbd in refs_of(st, vc, vm, "VBDs") {
        let vdi = st.db.get_str(bc, &vbd, "VDI");
        if st.db.get_bool(bc, &vbd, "empty") || !st.db.exists(dc, &vdi) {
            continue;
        }
        let sr = lookup(srs, &vdi).unwrap_or_else(|| st.db.get_str(dc, &vdi, "SR"));
        if !sr_plugged_on(st, &sr, host) {
            return Err(fail("VM_REQUIRES_SR", &[vm, &sr]));
        }
    }
    let (ic, nc, pc) = (
        st.db.class_index("VIF"),
        st.db.class_index("network"),
        st.db.class_index("PIF"),
    );
    for vif in refs_of(st, vc, vm, "VIFs") {
        let net = lookup(nets, &vif).unwrap_or_else(|| st.db.get_str(ic, &vif, "network"));
        let pifs = refs_of(st, nc, &net, "PIFs");
        // A network without PIFs is host-internal: every host has it.
        if !pifs.is_empty() && !pifs.iter().any(|p| st.db.get_str(pc, p, "host") == host) {
            return Err(fail("VM_REQUIRES_NETWORK", &[vm, &net]));
        }
    }
    Ok(())
}

/// `HOST_DISABLED [host]` unless `host` is enabled.
fn check_enabled(st: &State, host: &str) -> Result<(), ApiFailure> {
    let hc = st.db.class_index("host");
    if !st.db.get_bool(hc, host, "enabled") {
        return Err(fail("HOST_DISABLED", &[host]));
    }
    Ok(())
}

fn lookup(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// Whether `sr` has a plugged PBD on `host`.
pub fn sr_plugged_on(st: &State, sr: &str, host: &str) -> bool {
    let (sc, pc) = (st.db.class_index("SR"), st.db.class_index("PBD"));
    refs_of(st, sc, sr, "PBDs").iter().any(|p| {
        st.db.get_str(pc, p, "host") == host && st.db.get_bool(pc, p, "currently_attached")
    })
}

/// Every check before a running VM moves to `host` (a move to its own host is xapi's
/// localhost migration and always fits).
pub fn check_move(st: &State, vm: &str, host: &str) -> Result<(), ApiFailure> {
    check_reachable(st, vm, host)?;
    check_memory(st, vm, host)
}

/// The host a halted or suspended VM boots on: `host` itself if enabled and with room
/// (`VM.start_on`, `VM.resume_on`), or xapi's choice when `None`. Unlike xapi, a named host
/// is not checked for the VM's SRs and networks (existing tests start guests on a host
/// without their local SR).
pub fn boot_host(st: &State, vm: &str, host: Option<&str>) -> Result<String, ApiFailure> {
    match host {
        Some(h) => check_enabled(st, h)
            .and_then(|()| check_memory(st, vm, h))
            .map(|()| h.to_owned()),
        None => choose_host(st, vm),
    }
}

/// xapi's `choose_host_for_vm_no_wlb`: among the enabled hosts that see the VM's SRs and
/// networks, the one with the fewest resident VMs that has room; with none reachable,
/// `NO_HOSTS_AVAILABLE []`. When none has room xapi chooses again without the memory check
/// and the boot then fails on that host's reservation, so the error is that host's
/// `HOST_NOT_ENOUGH_FREE_MEMORY [needed, available]`.
fn choose_host(st: &State, vm: &str) -> Result<String, ApiFailure> {
    let hc = st.db.class_index("host");
    let mut reachable: Vec<&str> = st
        .hosts
        .iter()
        .map(|h| h.r.as_str())
        .filter(|h| check_reachable(st, vm, h).is_ok())
        .collect();
    reachable.sort_by_key(|h| refs_of(st, hc, h, "resident_VMs").len());
    let first = reachable
        .first()
        .ok_or_else(|| fail("NO_HOSTS_AVAILABLE", &[]))?;
    let fits = reachable.iter().find(|h| check_memory(st, vm, h).is_ok());
    match fits {
        Some(h) => Ok((*h).to_owned()),
        None => check_memory(st, vm, first).map(|()| (*first).to_owned()),
    }
}

/// `HOST_NOT_ENOUGH_FREE_MEMORY [needed, available]` unless the VM fits on `host`.
fn check_memory(st: &State, vm: &str, host: &str) -> Result<(), ApiFailure> {
    let vc = st.db.class_index("VM");
    if st.db.get_str(vc, vm, "resident_on") == host {
        return Ok(());
    }
    let (needed, available) = (vm_memory(st, vm), free_memory(st, host));
    if needed > available {
        return Err(fail(
            "HOST_NOT_ENOUGH_FREE_MEMORY",
            &[&needed.to_string(), &available.to_string()],
        ));
    }
    Ok(())
}

/// Moves a running VM: new residence and a new domain id, as after a live migration.
pub fn move_vm(st: &mut State, vm: &str, host: &str) {
    let vc = st.db.class_index("VM");
    if st.db.get_str(vc, vm, "resident_on") == host {
        return;
    }
    st.next_domid += 1;
    let domid = st.next_domid;
    st.db
        .set(vc, vm, "resident_on", Value::String(host.to_owned()));
    st.db.set(vc, vm, "domid", Value::Int(domid));
    refresh_ops(st, vm);
}

pub fn pool_migrate(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    let host = check_ref(cx.st, "host", &args[1])?;
    ensure(cx, &vm, "pool_migrate")?;
    check_move(cx.st, &vm, &host)?;
    move_vm(cx.st, &vm, &host);
    void()
}

fn map_of(v: &Value) -> &[(String, Value)] {
    match v {
        Value::Struct(s) => &s.0,
        _ => &[],
    }
}

/// `VM.migrate_send(vm, dest, live, vdi_map, vif_map, options, …)`. Only a destination host
/// of this pool is served (xapi's intra-pool path): disks in `vdi_map` move to their new SR
/// (new VDI refs, as storage motion gives), VIFs in `vif_map` move network, and a running VM
/// changes residence. The simulator cannot reach other pools: those fail with
/// `VM_MIGRATE_CONTACT_REMOTE_SERVICE_FAILED`.
pub fn migrate_send(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let vm = vm_arg(cx, args)?;
    let dest_host = map_of(&args[1])
        .iter()
        .find(|(k, _)| k == "host")
        .and_then(|(_, v)| v.as_str())
        .unwrap_or_default()
        .to_owned();
    ensure(cx, &vm, "migrate_send")?;
    let hc = cx.st.db.class_index("host");
    if !cx.st.db.exists(hc, &dest_host) {
        return Err(fail("VM_MIGRATE_CONTACT_REMOTE_SERVICE_FAILED", &[]));
    }
    let st = &mut *cx.st;
    let (vc, bc, dc, sc, ic, nc) = (
        st.db.class_index("VM"),
        st.db.class_index("VBD"),
        st.db.class_index("VDI"),
        st.db.class_index("SR"),
        st.db.class_index("VIF"),
        st.db.class_index("network"),
    );
    // Validate the maps and the destination before changing anything.
    let vbds = refs_of(st, vc, &vm, "VBDs");
    let mut srs = Vec::new();
    for (vdi, sr) in map_of(&args[3]) {
        let sr = sr.as_str().unwrap_or_default();
        if !st.db.exists(dc, vdi) {
            return Err(fail("HANDLE_INVALID", &["VDI", vdi]));
        }
        if !st.db.exists(sc, sr) {
            return Err(fail("HANDLE_INVALID", &["SR", sr]));
        }
        if st.db.get_str(dc, vdi, "SR") != sr {
            srs.push((vdi.clone(), sr.to_owned()));
        }
    }
    let vifs = refs_of(st, vc, &vm, "VIFs");
    let mut nets = Vec::new();
    for (vif, net) in map_of(&args[4]) {
        let net = net.as_str().unwrap_or_default();
        if !st.db.exists(ic, vif) {
            return Err(fail("HANDLE_INVALID", &["VIF", vif]));
        }
        if !st.db.exists(nc, net) {
            return Err(fail("HANDLE_INVALID", &["network", net]));
        }
        if vifs.contains(vif) {
            nets.push((vif.clone(), net.to_owned()));
        }
    }
    check_reachable_after(st, &vm, &dest_host, &srs, &nets)?;
    let running = st.db.get_str(vc, &vm, "power_state") == RUNNING;
    if running {
        check_memory(st, &vm, &dest_host)?;
    }
    for (vdi, sr) in srs {
        let copy = duplicate_vdi(st, &vdi, Some(&sr), false);
        let mine: Vec<&String> = vbds
            .iter()
            .filter(|b| st.db.get_str(bc, b, "VDI") == vdi)
            .collect();
        for vbd in mine {
            st.db.set(bc, vbd, "VDI", Value::String(copy.clone()));
        }
        // Another VM's VBD keeps the original; one left without VBDs has fully moved.
        if refs_of(st, dc, &vdi, "VBDs").is_empty() {
            forget_vdi(st, &vdi);
        }
    }
    for (vif, net) in nets {
        st.db.set(ic, &vif, "network", Value::String(net));
    }
    if running {
        move_vm(st, &vm, &dest_host);
    }
    Ok(Value::String(vm))
}

/// `host.migrate_receive(host, network, options)`: the `dest` map for `VM.migrate_send`,
/// with the keys xapi hands out.
pub fn migrate_receive(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let host = check_ref(cx.st, "host", &args[0])?;
    check_ref(cx.st, "network", &args[1])?;
    let hc = cx.st.db.class_index("host");
    let address = cx.st.db.get_str(hc, &host, "address");
    let session = cx.session.clone().unwrap_or_default();
    let master = cx.st.master_address();
    let s = |v: String| Value::String(v);
    Ok(Value::Struct(Struct(vec![
        ("SM".into(), s(format!("http://{address}/services/SM"))),
        ("host".into(), s(host.clone())),
        (
            "xenops".into(),
            s(format!("http://{address}/services/xenops")),
        ),
        ("session_id".into(), s(session)),
        ("master".into(), s(format!("http://{master}/"))),
    ])))
}
