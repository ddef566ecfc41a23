//! The network pieces every simulated host is built from: per-NIC pool-wide networks, the
//! Intel X710 port metrics, and the PIF fields all PIFs share. Used by the default inventory,
//! its bonded host and `Bond.create`, so all describe a PIF the same way.

use super::state::State;
use super::storage::map;
use crate::model::{DateTime, Value};

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

/// `Pool-wide network associated with eth{i}` on bridge `xenbr{i}`, as XCP-ng names them.
pub fn nic_network(st: &mut State, i: usize) -> String {
    let nc = st.db.class_index("network");
    st.db.create(
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
    )
}

/// The metrics of one 10 GbE port at `pci_bus_path`.
pub fn nic_metrics(st: &mut State, pci_bus_path: &str, now: &DateTime) -> String {
    let pmc = st.db.class_index("PIF_metrics");
    st.db.create(
        pmc,
        None,
        None,
        vec![
            ("carrier", Value::Bool(true)),
            ("speed", Value::Int(10000)),
            ("duplex", Value::Bool(true)),
            ("vendor_name", s("Intel Corporation")),
            ("device_name", s("Ethernet Controller X710 for 10GbE SFP+")),
            ("pci_bus_path", s(pci_bus_path)),
            ("last_updated", Value::DateTime(now.clone())),
        ],
    )
}

/// What tells one PIF from another; everything else is the same on every PIF here.
pub struct Pif<'a> {
    pub device: &'a str,
    pub network: &'a str,
    pub host: &'a str,
    pub mac: &'a str,
    /// -1 for an untagged PIF.
    pub vlan: i64,
    pub physical: bool,
    pub attached: bool,
}

impl Pif<'_> {
    /// The PIF's fields; callers add addressing, metrics and roles.
    pub fn fields(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("device", s(self.device)),
            ("network", s(self.network)),
            ("host", s(self.host)),
            ("MAC", s(self.mac)),
            ("MTU", Value::Int(1500)),
            ("VLAN", Value::Int(self.vlan)),
            ("physical", Value::Bool(self.physical)),
            ("currently_attached", Value::Bool(self.attached)),
            ("managed", Value::Bool(true)),
            ("primary_address_type", s("IPv4")),
            ("ipv6_configuration_mode", s("None")),
        ]
    }
}
