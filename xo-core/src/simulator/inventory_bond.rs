//! The bonded host of the default inventory: two more NICs, eth3 and eth4, bonded
//! active-backup into `bond0` on the network "Bond 3+4", as a fresh XCP-ng install with a
//! bond made from XO or XenCenter looks. The slaves keep their own (per-NIC) networks and are
//! not attached; the bond master PIF is.

use super::state::State;
use super::storage::map;
use crate::model::{DateTime, Value};

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

/// Adds the NICs, networks, bond master PIF and Bond to `host` (index `hi` in the pool).
pub fn add_bond(st: &mut State, host: &str, hi: usize, now: &DateTime) {
    let (nc, pc, pmc, bc) = (
        st.db.class_index("network"),
        st.db.class_index("PIF"),
        st.db.class_index("PIF_metrics"),
        st.db.class_index("Bond"),
    );
    let mut slaves = Vec::new();
    for i in [3usize, 4] {
        let net = st.db.create(
            nc,
            None,
            None,
            vec![
                (
                    "name_label",
                    s(&format!("Pool-wide network associated with eth{i}")),
                ),
                ("bridge", s(&format!("xenbr{i}"))),
                ("MTU", Value::Int(1500)),
                ("managed", Value::Bool(true)),
                ("other_config", map(&[("automatic", "true")])),
            ],
        );
        let metrics = st.db.create(
            pmc,
            None,
            None,
            vec![
                ("carrier", Value::Bool(true)),
                ("speed", Value::Int(10000)),
                ("duplex", Value::Bool(true)),
                ("vendor_name", s("Intel Corporation")),
                ("device_name", s("Ethernet Controller X710 for 10GbE SFP+")),
                ("pci_bus_path", s(&format!("0000:04:00.{}", i - 3))),
                ("last_updated", Value::DateTime(now.clone())),
            ],
        );
        slaves.push(st.db.create(
            pc,
            None,
            None,
            vec![
                ("device", s(&format!("eth{i}"))),
                ("network", s(&net)),
                ("host", s(host)),
                ("MAC", s(&format!("b2:00:00:00:{:02x}:{i:02x}", hi + 1))),
                ("MTU", Value::Int(1500)),
                ("VLAN", Value::Int(-1)),
                ("physical", Value::Bool(true)),
                ("currently_attached", Value::Bool(false)),
                ("managed", Value::Bool(true)),
                ("metrics", s(&metrics)),
                ("ip_configuration_mode", s("None")),
                ("ipv6_configuration_mode", s("None")),
                ("primary_address_type", s("IPv4")),
            ],
        ));
    }
    let bond_net = st.db.create(
        nc,
        None,
        None,
        vec![
            ("name_label", s("Bond 3+4")),
            ("bridge", s("xapi3")),
            ("MTU", Value::Int(1500)),
            ("managed", Value::Bool(true)),
        ],
    );
    let mac = st.db.get_str(pc, &slaves[0], "MAC");
    let master = st.db.create(
        pc,
        None,
        None,
        vec![
            ("device", s("bond0")),
            ("network", s(&bond_net)),
            ("host", s(host)),
            ("MAC", s(&mac)),
            ("MTU", Value::Int(1500)),
            ("VLAN", Value::Int(-1)),
            ("physical", Value::Bool(false)),
            ("currently_attached", Value::Bool(true)),
            ("managed", Value::Bool(true)),
            ("ip_configuration_mode", s("None")),
            ("ipv6_configuration_mode", s("None")),
            ("primary_address_type", s("IPv4")),
        ],
    );
    let bond = st.db.create(
        bc,
        None,
        None,
        vec![
            ("master", s(&master)),
            ("primary_slave", s(&slaves[0])),
            ("mode", s("active-backup")),
            ("properties", map(&[])),
            ("links_up", Value::Int(2)),
        ],
    );
    for p in &slaves {
        st.db.set(pc, p, "bond_slave_of", s(&bond));
    }
}
