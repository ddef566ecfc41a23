//! The bonded host of the default inventory: two more NICs, eth3 and eth4, bonded
//! active-backup into `bond0` on the network "Bond 3+4", as a fresh XCP-ng install with a
//! bond made from XO or XenCenter looks. The slaves keep their own (per-NIC) networks and are
//! not attached; the bond master PIF is.

use super::inventory_nic::{nic_metrics, nic_network, Pif};
use super::net::make_bond;
use super::state::State;
use super::storage::map;
use crate::model::{DateTime, Value};

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

/// Adds the NICs, networks, bond master PIF and Bond to `host` (index `hi` in the pool).
pub fn add_bond(st: &mut State, host: &str, hi: usize, now: &DateTime) {
    let (nc, pc) = (st.db.class_index("network"), st.db.class_index("PIF"));
    let mut slaves = Vec::new();
    for i in [3usize, 4] {
        let net = nic_network(st, i);
        let metrics = nic_metrics(st, &format!("0000:04:00.{}", i - 3), now);
        let mut vals = Pif {
            device: &format!("eth{i}"),
            network: &net,
            host,
            mac: &format!("b2:00:00:00:{:02x}:{i:02x}", hi + 1),
            vlan: -1,
            physical: true,
            attached: false,
        }
        .fields();
        vals.extend([
            ("metrics", s(&metrics)),
            ("ip_configuration_mode", s("None")),
        ]);
        slaves.push(st.db.create(pc, None, None, vals));
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
    // The same path as `Bond.create`: master PIF `bond0`, the slaves' MAC, slaves detached.
    if let Err(e) = make_bond(st, bond_net, &slaves, None, "active-backup", map(&[])) {
        log::warn!("simulator inventory: bonding eth3+eth4 failed: {}", e.code);
    }
}
