//! The guest agent: what a VM with guest tools reports a moment after it boots
//! (`VM_guest_metrics`: OS, PV drivers, addresses per VIF device).

use super::state::State;
use super::vm::RUNNING;
use crate::model::{DateTime, Struct, Value};

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
