//! The custom messages the simulator serves, and the small ones that fit nowhere else
//! (sessions, host time, messages, master designation).

use super::dispatch::{check_ref, fail, void, Cx, Handler};
use super::state::State;
use super::{events, host_ops, migrate, net, sr_ops, storage, tasks, vm, vm_config, vm_copy};
use crate::model::{DateTime, Struct, Value};
use crate::rpc::Outcome;

/// The handler for `class.message`, when the simulator implements it specifically.
pub fn handler(class: &str, msg: &str) -> Option<Handler> {
    Some(match (class, msg) {
        ("session", "logout") | ("session", "local_logout") => logout,
        ("session", "login_with_password") | ("session", "slave_local_login_with_password") => {
            unreachable_login
        }
        ("event", "inject") => events::inject,
        ("event", "get_current_id") => events::get_current_id,
        ("event", "from") | ("event", "next") => unreachable_login,
        ("event", "register") => events::register,
        ("event", "unregister") => events::unregister,
        ("task", "create") => tasks::create,
        ("task", "cancel") => tasks::cancel,
        ("task", "destroy") => tasks::destroy,
        ("VM", "start") => vm::start,
        ("VM", "start_on") => vm::start_on,
        ("VM", "clean_shutdown") => vm::clean_shutdown,
        ("VM", "hard_shutdown") => vm::hard_shutdown,
        ("VM", "shutdown") => vm::shutdown,
        ("VM", "clean_reboot") => vm::clean_reboot,
        ("VM", "hard_reboot") => vm::hard_reboot,
        ("VM", "suspend") => vm::suspend,
        ("VM", "resume") => vm::resume,
        ("VM", "resume_on") => vm::resume_on,
        ("VM", "pause") => vm::pause,
        ("VM", "unpause") => vm::unpause,
        ("VM", "pool_migrate") => migrate::pool_migrate,
        ("VM", "migrate_send") => migrate::migrate_send,
        ("VM", "clone") => vm_copy::clone,
        ("VM", "copy") => vm_copy::copy,
        ("VM", "snapshot") => vm_copy::snapshot,
        ("VM", "destroy") => vm_copy::destroy,
        ("VM", "provision") => vm_copy::provision,
        ("VM", "create") => vm_copy::create,
        ("VM", "checkpoint") => vm_copy::checkpoint,
        ("VM", "revert") => vm_copy::revert,
        ("VM", "set_memory") => vm_config::set_memory,
        ("VM", "set_memory_limits") => vm_config::set_memory_limits,
        ("VM", "set_memory_static_range") => vm_config::set_memory_static_range,
        ("VM", "set_memory_dynamic_range") => vm_config::set_memory_dynamic_range,
        ("VM", "set_VCPUs_max") => vm_config::set_vcpus_max,
        ("VM", "set_VCPUs_at_startup") => vm_config::set_vcpus_at_startup,
        ("VM", "set_VCPUs_number_live") => vm_config::set_vcpus_number_live,
        ("VIF", "create") => net::vif_create,
        ("VIF", "destroy") => net::vif_destroy,
        ("VIF", "plug") => net::vif_plug,
        ("VIF", "unplug") => net::vif_unplug,
        ("VBD", "create") => storage::vbd_create,
        ("VBD", "destroy") => storage::vbd_destroy,
        ("VBD", "plug") => storage::vbd_plug,
        ("VBD", "unplug") => storage::vbd_unplug,
        ("VBD", "insert") => storage::vbd_insert,
        ("VBD", "eject") => storage::vbd_eject,
        ("VDI", "create") => storage::vdi_create,
        ("VDI", "destroy") => storage::vdi_destroy,
        ("VDI", "snapshot") => storage::vdi_snapshot,
        ("VDI", "clone") => storage::vdi_clone,
        ("network", "create") => net::network_create,
        ("network", "destroy") => net::network_destroy,
        ("pool", "create_VLAN") => net::pool_create_vlan,
        ("pool", "create_VLAN_from_PIF") => net::pool_create_vlan_from_pif,
        ("pool", "designate_new_master") => designate_new_master,
        ("VLAN", "create") => net::vlan_create,
        ("VLAN", "destroy") => net::vlan_destroy,
        ("Bond", "create") => net::bond_create,
        ("Bond", "destroy") => net::bond_destroy,
        ("PIF", "reconfigure_ip") => net::pif_reconfigure_ip,
        ("PIF", "plug") => net::pif_plug,
        ("PIF", "unplug") => net::pif_unplug,
        ("host", "get_servertime") => servertime,
        ("host", "disable") => host_ops::disable,
        ("host", "enable") => host_ops::enable,
        ("host", "evacuate") => host_ops::evacuate,
        ("host", "assert_can_evacuate") => host_ops::assert_can_evacuate,
        ("host", "get_vms_which_prevent_evacuation") => host_ops::vms_preventing_evacuation,
        ("host", "migrate_receive") => migrate::migrate_receive,
        ("SR", "create") => sr_ops::create,
        ("SR", "forget") => sr_ops::forget,
        ("SR", "destroy") => sr_ops::destroy,
        ("PBD", "plug") => sr_ops::pbd_plug,
        ("PBD", "unplug") => sr_ops::pbd_unplug,
        ("host", "get_server_localtime") => localtime,
        ("message", "create") => message_create,
        ("message", "destroy") => message_destroy,
        ("message", "get_since") => message_get_since,
        _ => return None,
    })
}

/// Logins and `event.from` are routed before handlers run; this keeps them listed.
fn unreachable_login(_: &mut Cx, _: &[Value]) -> Outcome<Value> {
    Err(fail("INTERNAL_ERROR", &["routed elsewhere"]))
}

fn logout(cx: &mut Cx, _: &[Value]) -> Outcome<Value> {
    if let Some(s) = cx.session.take() {
        cx.st.sessions.remove(&s);
        cx.st.registrations.remove(&s);
        let sc = cx.st.db.class_index("session");
        cx.st.db.destroy(sc, &s);
    }
    void()
}

fn servertime(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    check_ref(cx.st, "host", &args[0])?;
    Ok(Value::DateTime(DateTime::now()))
}

fn localtime(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    check_ref(cx.st, "host", &args[0])?;
    // Simulated hosts run in UTC; xapi writes local times without a zone.
    let now = DateTime::now();
    let text = now.as_str().trim_end_matches('Z').to_owned();
    Ok(Value::DateTime(DateTime::parse(&text).unwrap_or(now)))
}

fn message_create(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let mc = cx.st.db.class_index("message");
    cx.st.message_gen += 1;
    let r = cx.st.db.create(
        mc,
        None,
        None,
        vec![
            ("name", args[0].clone()),
            ("priority", args[1].clone()),
            ("cls", args[2].clone()),
            ("obj_uuid", args[3].clone()),
            ("body", args[4].clone()),
            ("timestamp", Value::DateTime(DateTime::now())),
        ],
    );
    Ok(Value::String(r))
}

fn message_destroy(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let m = check_ref(cx.st, "message", &args[0])?;
    let mc = cx.st.db.class_index("message");
    cx.st.db.destroy(mc, &m);
    cx.st.message_gen += 1;
    void()
}

fn message_get_since(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let since = match &args[0] {
        Value::DateTime(d) => d.unix(),
        _ => 0,
    };
    let mc = cx.st.db.class_index("message");
    let dm = cx.st.db.dm;
    let table = &cx.st.db.tables[mc];
    let ti = dm.classes[mc].field_index.get("timestamp").copied();
    let out: Struct = table
        .objs
        .iter()
        .filter(|(_, o)| {
            ti.and_then(|i| match &o.fields[i] {
                Value::DateTime(d) => Some(d.unix() > since),
                _ => None,
            })
            .unwrap_or(false)
        })
        .map(|(r, o)| {
            (
                r.clone(),
                Value::Struct(super::db::record_of(&dm.classes[mc], o)),
            )
        })
        .collect();
    Ok(Value::Struct(out))
}

fn designate_new_master(cx: &mut Cx, args: &[Value]) -> Outcome<Value> {
    let host = check_ref(cx.st, "host", &args[0])?;
    let Some(i) = cx.st.host_index_of(&host) else {
        return Err(fail("HANDLE_INVALID", &["host", &host]));
    };
    designate_master(cx.st, i);
    void()
}

/// Makes host `index` the master: `pool.master` moves; the others answer `HOST_IS_SLAVE`.
pub fn designate_master(st: &mut State, index: usize) -> bool {
    let Some(h) = st.hosts.get(index).map(|h| h.r.clone()) else {
        return false;
    };
    st.master = index;
    let pc = st.db.class_index("pool");
    let pool = st.pool.clone();
    st.db.set(pc, &pool, "master", Value::String(h));
    true
}
