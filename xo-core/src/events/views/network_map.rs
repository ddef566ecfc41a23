//! Network map: which NIC carries which network and VLAN on each host, and which VMs sit on
//! each network with which guest addresses.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use super::Table;
use crate::events::Objects;
use crate::model::{BondMode, Host, IpConfigurationMode, Network, Pif, Ref, Vm, VmGuestMetrics};

/// The whole map, sorted by host name / network name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetworkMap {
    /// Every host with its PIFs.
    pub hosts: Vec<HostPifs>,
    /// Every network with the VMs on it.
    pub networks: Vec<NetworkVms>,
}

/// One host and its PIFs, sorted by device then VLAN tag.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostPifs {
    /// The host's name (`(unknown host)` for PIFs whose host is not cached).
    pub host: String,
    /// The host.
    pub host_ref: Ref<Host>,
    /// Its PIFs.
    pub pifs: Vec<PifRow>,
}

/// One PIF with its network.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PifRow {
    /// The PIF.
    pub pif_ref: Ref<Pif>,
    /// `eth0`, `bond0`…
    pub device: String,
    /// The NIC's MAC address.
    pub mac: String,
    /// A physical NIC (not a VLAN or bond).
    pub physical: bool,
    /// The host's management interface.
    pub management: bool,
    /// How the PIF gets its address.
    pub ip_mode: IpConfigurationMode,
    /// Its IPv4 address, if any.
    pub ip: String,
    /// Its netmask.
    pub netmask: String,
    /// Its gateway.
    pub gateway: String,
    /// The network it connects.
    pub network_ref: Ref<Network>,
    /// That network's name.
    pub network: String,
    /// That network's bridge (`xenbr0`).
    pub bridge: String,
    /// The network's MTU (the PIF's when the network is not cached).
    pub mtu: i64,
    /// The 802.1Q tag when this PIF is a VLAN.
    pub vlan: Option<i64>,
    /// For a VLAN: the device of the tagged PIF it rides on.
    pub vlan_on: Option<String>,
    /// The bond this PIF is the master or a slave of.
    pub bond: Option<BondRole>,
}

/// A PIF's part in a bond.
#[derive(Clone, Debug, PartialEq)]
pub enum BondRole {
    /// The bond's master PIF: its slaves' devices and the bond mode.
    Master {
        /// The slaves' devices, in natural order.
        slaves: Vec<String>,
        /// `active-backup`, `balance-slb`, `lacp`.
        mode: BondMode,
    },
    /// A slave of the bond whose master PIF has this device.
    SlaveOf(String),
}

impl fmt::Display for BondRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BondRole::Master { slaves, mode } => write!(f, "bond of {} ({mode})", slaves.join("+")),
            BondRole::SlaveOf(master) => write!(f, "in {master}"),
        }
    }
}

/// One network and the VMs attached to it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetworkVms {
    /// The network.
    pub network_ref: Ref<Network>,
    /// Its name.
    pub network: String,
    /// Its bridge.
    pub bridge: String,
    /// Its MTU.
    pub mtu: i64,
    /// The VIFs of VMs on it.
    pub vms: Vec<VmAttachment>,
}

/// One VIF of a VM on the network.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VmAttachment {
    /// The VM's name.
    pub vm: String,
    /// The VM.
    pub vm_ref: Ref<Vm>,
    /// The VIF's device number (`0`, `1`…).
    pub vif_device: String,
    /// The VIF's MAC address.
    pub mac: String,
    /// Guest-reported addresses for this VIF: IPv4 first, then IPv6.
    pub addresses: Vec<IpAddr>,
}

/// Builds the map from a snapshot. VMs: not templates, not snapshots.
pub fn network_map(o: &Objects) -> NetworkMap {
    let mut hosts: Vec<HostPifs> = o
        .all::<Host>()
        .map(|(r, h)| HostPifs {
            host: h.name_label.clone(),
            host_ref: r,
            pifs: Vec::new(),
        })
        .collect();
    hosts.sort_by(|a, b| (&a.host, &a.host_ref).cmp(&(&b.host, &b.host_ref)));
    for (r, pif) in o.all::<Pif>() {
        let row = pif_row(o, r, pif);
        match hosts.iter_mut().find(|h| h.host_ref == pif.host) {
            Some(h) => h.pifs.push(row),
            None => hosts.push(HostPifs {
                host: "(unknown host)".into(),
                host_ref: pif.host.clone(),
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
    let mut networks: Vec<NetworkVms> = o
        .all::<Network>()
        .map(|(r, net)| network_vms(o, r, net))
        .collect();
    networks.sort_by(|a, b| (&a.network, &a.network_ref).cmp(&(&b.network, &b.network_ref)));
    NetworkMap { hosts, networks }
}

fn network_vms(o: &Objects, r: Ref<Network>, net: &Network) -> NetworkVms {
    let mut vms = Vec::new();
    for (_, vif) in o.network_vifs(net) {
        let Some((vm_ref, vm)) = o.vif_vm(vif) else {
            continue;
        };
        if vm.is_a_template || vm.is_a_snapshot {
            continue;
        }
        let addresses = o
            .vm_guest_metrics(vm)
            .map(|gm| guest_addresses(gm, &vif.device))
            .unwrap_or_default();
        vms.push(VmAttachment {
            vm: vm.name_label.clone(),
            vm_ref,
            mac: vif.mac.clone(),
            vif_device: vif.device.clone(),
            addresses,
        });
    }
    vms.sort_by(|a, b| {
        (&a.vm, natural(&a.vif_device), &a.vm_ref).cmp(&(&b.vm, natural(&b.vif_device), &b.vm_ref))
    });
    NetworkVms {
        network_ref: r,
        network: net.name_label.clone(),
        bridge: net.bridge.clone(),
        mtu: net.mtu,
        vms,
    }
}

fn pif_row(o: &Objects, r: Ref<Pif>, pif: &Pif) -> PifRow {
    let net = o.pif_network(pif).map(|(_, n)| n);
    let vlan_on = o
        .pif_vlan(pif)
        .and_then(|(_, v)| o.follow(&v.tagged_pif))
        .map(|(_, p)| p.device.clone());
    let bond = match o.pif_bond(pif) {
        Some((_, b)) => {
            let mut slaves: Vec<String> = o
                .follow_all(&b.slaves)
                .into_iter()
                .map(|(_, p)| p.device.clone())
                .collect();
            slaves.sort_by_key(|d| natural(d));
            Some(BondRole::Master {
                slaves,
                mode: b.mode.clone(),
            })
        }
        None => o
            .pif_bond_slave_of(pif)
            .and_then(|(_, b)| o.follow(&b.master))
            .map(|(_, m)| BondRole::SlaveOf(m.device.clone())),
    };
    PifRow {
        pif_ref: r,
        device: pif.device.clone(),
        mac: pif.mac.clone(),
        physical: pif.physical,
        management: pif.management,
        ip_mode: pif.ip_configuration_mode.clone(),
        ip: pif.ip.clone(),
        netmask: pif.netmask.clone(),
        gateway: pif.gateway.clone(),
        network_ref: pif.network.clone(),
        network: net.map(|n| n.name_label.clone()).unwrap_or_default(),
        bridge: net.map(|n| n.bridge.clone()).unwrap_or_default(),
        mtu: net.map_or(pif.mtu, |n| n.mtu),
        vlan: Some(pif.vlan).filter(|t| *t >= 0),
        vlan_on,
        bond,
    }
}

/// The addresses `VM_guest_metrics.networks` gives for VIF device `device`: keys
/// `<n>/ipv4/<i>` and `<n>/ip` (space-separated, older agents) then `<n>/ipv6/<i>`,
/// joined on `<n> == VIF.device` as XO does; duplicates and unparsable text dropped.
pub fn guest_addresses(gm: &VmGuestMetrics, device: &str) -> Vec<IpAddr> {
    let mut v4: BTreeMap<u64, &str> = BTreeMap::new();
    let mut v6: BTreeMap<u64, &str> = BTreeMap::new();
    let mut legacy: Vec<&str> = Vec::new();
    for (k, v) in &gm.networks {
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
    let mut out: Vec<IpAddr> = Vec::new();
    for a in v4.into_values().chain(legacy).chain(v6.into_values()) {
        if let Ok(ip) = a.trim().parse::<IpAddr>() {
            if !out.contains(&ip) {
                out.push(ip);
            }
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
                    p.ip_mode.to_string(),
                    p.ip.clone(),
                    p.netmask.clone(),
                    p.gateway.clone(),
                    p.network.clone(),
                    p.bridge.clone(),
                    p.mtu.to_string(),
                    vlan,
                    p.bond.as_ref().map(ToString::to_string).unwrap_or_default(),
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
                    a.addresses
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" "),
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
