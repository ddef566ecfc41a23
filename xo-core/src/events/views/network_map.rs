//! Network map: which NIC carries which network and VLAN on each host, and which VMs sit on
//! each network with which guest addresses.

use std::collections::BTreeMap;
use std::fmt;

use super::Table;
use crate::events::{Object, Objects};

/// The whole map, sorted by host name / network name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetworkMap {
    pub hosts: Vec<HostPifs>,
    pub networks: Vec<NetworkVms>,
}

/// One host and its PIFs, sorted by device then VLAN tag.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostPifs {
    pub host: String,
    pub host_ref: String,
    pub pifs: Vec<PifRow>,
}

/// One PIF with its network.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PifRow {
    pub pif_ref: String,
    pub device: String,
    pub mac: String,
    pub physical: bool,
    pub management: bool,
    /// `None`, `DHCP` or `Static`, as xapi says.
    pub ip_mode: String,
    pub ip: String,
    pub netmask: String,
    pub gateway: String,
    pub network_ref: String,
    pub network: String,
    pub bridge: String,
    pub mtu: i64,
    /// The 802.1Q tag when this PIF is a VLAN.
    pub vlan: Option<i64>,
    /// For a VLAN: the device of the tagged PIF it rides on.
    pub vlan_on: Option<String>,
    /// `bond of eth0+eth1 (active-backup)` for a bond master, `in bond0` for a slave.
    pub bond: Option<String>,
}

/// One network and the VMs attached to it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetworkVms {
    pub network_ref: String,
    pub network: String,
    pub bridge: String,
    pub mtu: i64,
    pub vms: Vec<VmAttachment>,
}

/// One VIF of a VM on the network.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VmAttachment {
    pub vm: String,
    pub vm_ref: String,
    pub vif_device: String,
    pub mac: String,
    /// Guest-reported addresses for this VIF: IPv4 first, then IPv6.
    pub addresses: Vec<GuestAddress>,
}

/// An address the guest agent reported.
pub type GuestAddress = String;

/// Builds the map from a snapshot. VMs: not templates, not snapshots.
pub fn network_map(o: &Objects) -> NetworkMap {
    let mut hosts: Vec<HostPifs> = o
        .all("host")
        .map(|h| HostPifs {
            host: h.name_label().to_owned(),
            host_ref: h.ref_.clone(),
            pifs: Vec::new(),
        })
        .collect();
    hosts.sort_by(|a, b| (&a.host, &a.host_ref).cmp(&(&b.host, &b.host_ref)));
    for pif in o.all("PIF") {
        let row = pif_row(o, pif);
        match hosts.iter_mut().find(|h| h.host_ref == pif.text("host")) {
            Some(h) => h.pifs.push(row),
            None => hosts.push(HostPifs {
                host: "(unknown host)".into(),
                host_ref: pif.text("host").into(),
                pifs: vec![row],
            }),
        }
    }
    for h in &mut hosts {
        h.pifs.sort_by(|a, b| {
            natural(&a.device)
                .cmp(&natural(&b.device))
                .then(a.vlan.cmp(&b.vlan))
                .then(a.pif_ref.cmp(&b.pif_ref))
        });
    }

    let mut networks: Vec<NetworkVms> = Vec::new();
    for net in o.all("network") {
        let mut vms = Vec::new();
        for vif in o.network_vifs(net) {
            let Some(vm) = o.vif_vm(vif) else { continue };
            if vm.bool("is_a_template") == Some(true) || vm.bool("is_a_snapshot") == Some(true) {
                continue;
            }
            let device = vif.text("device").to_owned();
            let addresses = o
                .vm_guest_metrics(vm)
                .map(|gm| guest_addresses(gm, &device))
                .unwrap_or_default();
            vms.push(VmAttachment {
                vm: vm.name_label().to_owned(),
                vm_ref: vm.ref_.clone(),
                mac: vif.text("MAC").to_owned(),
                vif_device: device,
                addresses,
            });
        }
        vms.sort_by(|a, b| {
            (&a.vm, natural(&a.vif_device), &a.vm_ref).cmp(&(
                &b.vm,
                natural(&b.vif_device),
                &b.vm_ref,
            ))
        });
        networks.push(NetworkVms {
            network_ref: net.ref_.clone(),
            network: net.name_label().to_owned(),
            bridge: net.text("bridge").to_owned(),
            mtu: net.int("MTU").unwrap_or(0),
            vms,
        });
    }
    networks.sort_by(|a, b| (&a.network, &a.network_ref).cmp(&(&b.network, &b.network_ref)));
    NetworkMap { hosts, networks }
}

fn pif_row(o: &Objects, pif: &Object) -> PifRow {
    let net = o.pif_network(pif);
    let vlan = pif.int("VLAN").filter(|t| *t >= 0);
    let vlan_on = o
        .pif_vlan(pif)
        .and_then(|v| o.follow(v, "tagged_PIF", "PIF"))
        .map(|p| p.text("device").to_owned());
    let bond = if let Some(b) = o.pif_bond(pif) {
        let mut slaves: Vec<&str> = o
            .follow_all(b, "slaves", "PIF")
            .into_iter()
            .map(|p| p.text("device"))
            .collect();
        slaves.sort_by_key(|d| natural(d));
        Some(format!("bond of {} ({})", slaves.join("+"), b.text("mode")))
    } else {
        o.pif_bond_slave_of(pif)
            .and_then(|b| o.follow(b, "master", "PIF"))
            .map(|m| format!("in {}", m.text("device")))
    };
    PifRow {
        pif_ref: pif.ref_.clone(),
        device: pif.text("device").to_owned(),
        mac: pif.text("MAC").to_owned(),
        physical: pif.bool("physical").unwrap_or(false),
        management: pif.bool("management").unwrap_or(false),
        ip_mode: pif.text("ip_configuration_mode").to_owned(),
        ip: pif.text("IP").to_owned(),
        netmask: pif.text("netmask").to_owned(),
        gateway: pif.text("gateway").to_owned(),
        network_ref: pif.text("network").to_owned(),
        network: net.map(|n| n.name_label().to_owned()).unwrap_or_default(),
        bridge: net.map(|n| n.text("bridge").to_owned()).unwrap_or_default(),
        mtu: net
            .and_then(|n| n.int("MTU"))
            .or_else(|| pif.int("MTU"))
            .unwrap_or(0),
        vlan,
        vlan_on,
        bond,
    }
}

/// The addresses `VM_guest_metrics.networks` gives for VIF device `device`: keys
/// `<n>/ipv4/<i>` and `<n>/ip` (space-separated, older agents) then `<n>/ipv6/<i>`,
/// joined on `<n> == VIF.device` as XO does; duplicates dropped.
pub fn guest_addresses(gm: &Object, device: &str) -> Vec<String> {
    let mut v4: BTreeMap<u64, &str> = BTreeMap::new();
    let mut v6: BTreeMap<u64, &str> = BTreeMap::new();
    let mut legacy: Vec<&str> = Vec::new();
    for (k, v) in gm.map("networks") {
        let mut parts = k.split('/');
        if parts.next() != Some(device) {
            continue;
        }
        match (
            parts.next(),
            parts.next().and_then(|i| i.parse::<u64>().ok()),
            parts.next(),
        ) {
            (Some("ip"), None, None) => legacy.extend(v.split_whitespace()),
            (Some("ipv4"), Some(i), None) => {
                v4.insert(i, v);
            }
            (Some("ipv6"), Some(i), None) => {
                v6.insert(i, v);
            }
            _ => {}
        }
    }
    let mut out: Vec<String> = Vec::new();
    for a in v4.into_values().chain(legacy).chain(v6.into_values()) {
        let a = a.trim();
        if !a.is_empty() && !out.iter().any(|x| x == a) {
            out.push(a.to_owned());
        }
    }
    out
}

/// Sort key that orders `eth2` before `eth10`.
fn natural(s: &str) -> (String, u64, String) {
    let split = s.find(|c: char| c.is_ascii_digit()).unwrap_or(s.len());
    let (head, rest) = s.split_at(split);
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    (
        head.to_owned(),
        rest[..end].parse().unwrap_or(0),
        rest[end..].to_owned(),
    )
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        ""
    }
}

impl NetworkMap {
    /// The PIF table: one row per host PIF.
    pub fn pif_table(&self) -> Table {
        let mut t = Table::new([
            "HOST", "PIF", "MAC", "PHYS", "MGMT", "IP MODE", "IP", "NETMASK", "GATEWAY", "NETWORK",
            "BRIDGE", "MTU", "VLAN", "BOND",
        ]);
        for h in &self.hosts {
            for p in &h.pifs {
                let vlan = match (p.vlan, &p.vlan_on) {
                    (Some(tag), Some(on)) => format!("{tag} on {on}"),
                    (Some(tag), None) => tag.to_string(),
                    _ => String::new(),
                };
                t.row([
                    h.host.clone(),
                    p.device.clone(),
                    p.mac.clone(),
                    yes(p.physical).into(),
                    yes(p.management).into(),
                    p.ip_mode.clone(),
                    p.ip.clone(),
                    p.netmask.clone(),
                    p.gateway.clone(),
                    p.network.clone(),
                    p.bridge.clone(),
                    p.mtu.to_string(),
                    vlan,
                    p.bond.clone().unwrap_or_default(),
                ]);
            }
        }
        t
    }

    /// The VM table: one row per VIF, grouped by network.
    pub fn vm_table(&self) -> Table {
        let mut t = Table::new(["NETWORK", "BRIDGE", "VM", "VIF", "MAC", "GUEST ADDRESSES"]);
        for n in self.networks.iter().filter(|n| !n.vms.is_empty()) {
            for a in &n.vms {
                t.row([
                    n.network.clone(),
                    n.bridge.clone(),
                    a.vm.clone(),
                    a.vif_device.clone(),
                    a.mac.clone(),
                    a.addresses.join(" "),
                ]);
            }
        }
        t
    }
}

impl fmt::Display for NetworkMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n{}", self.pif_table(), self.vm_table())
    }
}
