//! Views and cache navigation on a small hand-built pool: one host, eth0 management, eth1
//! carrying VLANs 10/20/30, a bond of eth2+eth3, four VMs with and without tools.

mod memory_xapi;
use memory_xapi::MemorySource;
use std::sync::Arc;
use std::time::Duration;

use xo_core::events::views::{network_map, tools_report, MemoryData, Verdict};
use xo_core::events::{Cache, WatchConfig};
use xo_core::model::{Ref, Struct, Value, Vm};

const CLASSES: [&str; 9] = [
    "host",
    "PIF",
    "network",
    "VLAN",
    "Bond",
    "VM",
    "VIF",
    "VM_guest_metrics",
    "VM_metrics",
];

fn s(pairs: &[(&str, Value)]) -> Struct {
    Struct(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}
fn v(x: &str) -> Value {
    Value::from(x)
}
fn refs(r: &[&String]) -> Value {
    Value::Array(r.iter().map(|x| v(x)).collect())
}
fn map(pairs: &[(&str, &str)]) -> Value {
    Value::Struct(pairs.iter().map(|(k, x)| (k.to_string(), v(x))).collect())
}
fn set(src: &MemorySource, class: &str, r: &str, field: &str, value: Value) {
    assert!(src.modify(class, r, |rec| rec.insert(field, value)));
}

struct Pool {
    src: Arc<MemorySource>,
    db: String,
}

fn build() -> Pool {
    let src = Arc::new(MemorySource::new());
    let host = src.create("host", s(&[("name_label", v("xcp-host-1"))]));
    let net = |name: &str, bridge: &str, mtu: i64| {
        src.create(
            "network",
            s(&[
                ("name_label", v(name)),
                ("bridge", v(bridge)),
                ("MTU", Value::Int(mtu)),
            ]),
        )
    };
    let n0 = net("Pool-wide network associated with eth0", "xenbr0", 1500);
    let n1 = net("eth1 trunk", "xenbr1", 1500);
    let vlan_nets: Vec<String> = [10, 20, 30]
        .iter()
        .map(|t| net(&format!("VLAN {t}"), &format!("xapi{t}"), 1500))
        .collect();
    let nb = net("Storage bond", "xapi4", 9000);
    let pif = |device: &str, network: &str, physical: bool, vlan: i64| {
        src.create(
            "PIF",
            s(&[
                ("device", v(device)),
                ("network", v(network)),
                ("host", v(&host)),
                (
                    "MAC",
                    v(&format!(
                        "00:16:3e:00:00:{:02x}",
                        device.len() as i64 * 16 + vlan.max(0)
                    )),
                ),
                ("physical", Value::Bool(physical)),
                ("management", Value::Bool(false)),
                ("ip_configuration_mode", v("None")),
                ("VLAN", Value::Int(vlan)),
            ]),
        )
    };
    let eth0 = pif("eth0", &n0, true, -1);
    set(&src, "PIF", &eth0, "management", Value::Bool(true));
    set(&src, "PIF", &eth0, "ip_configuration_mode", v("DHCP"));
    set(&src, "PIF", &eth0, "IP", v("10.0.0.2"));
    set(&src, "PIF", &eth0, "netmask", v("255.255.255.0"));
    set(&src, "PIF", &eth0, "gateway", v("10.0.0.1"));
    let eth1 = pif("eth1", &n1, true, -1);
    let mut net_pifs = vec![(n0.clone(), eth0.clone()), (n1.clone(), eth1.clone())];
    for (tag, n) in [10, 20, 30].iter().zip(&vlan_nets) {
        let p = pif("eth1", n, false, *tag);
        let vl = src.create(
            "VLAN",
            s(&[
                ("tagged_PIF", v(&eth1)),
                ("untagged_PIF", v(&p)),
                ("tag", Value::Int(*tag)),
            ]),
        );
        set(&src, "PIF", &p, "VLAN_master_of", v(&vl));
        net_pifs.push((n.clone(), p));
    }
    let eth2 = pif("eth2", &nb, true, -1);
    let eth3 = pif("eth3", &nb, true, -1);
    let bond0 = pif("bond0", &nb, false, -1);
    let bond = src.create(
        "Bond",
        s(&[
            ("master", v(&bond0)),
            ("slaves", refs(&[&eth3, &eth2])),
            ("mode", v("active-backup")),
        ]),
    );
    set(&src, "PIF", &bond0, "bond_master_of", refs(&[&bond]));
    for p in [&eth2, &eth3] {
        set(&src, "PIF", p, "bond_slave_of", v(&bond));
    }
    net_pifs.push((nb.clone(), bond0.clone()));
    for n in [&n0, &n1, &nb].into_iter().chain(&vlan_nets) {
        let ps: Vec<&String> = net_pifs
            .iter()
            .filter(|(x, _)| x == n)
            .map(|(_, p)| p)
            .collect();
        set(&src, "network", n, "PIFs", refs(&ps));
    }

    let mut net_vifs: Vec<(String, String)> = Vec::new();
    let mut vm =
        |name: &str, power: &str, flags: &[&str], vifs: &[(&str, &String)], gm: Option<Struct>| {
            let mut rec = s(&[
                ("name_label", v(name)),
                ("power_state", v(power)),
                ("guest_metrics", v("OpaqueRef:NULL")),
            ]);
            for f in ["is_a_template", "is_a_snapshot", "is_control_domain"] {
                rec.insert(f, Value::Bool(flags.contains(&f)));
            }
            let r = src.create("VM", rec);
            let mut mine = Vec::new();
            for (i, (device, n)) in vifs.iter().enumerate() {
                let mac = format!("aa:00:00:00:{:02x}:{i:02x}", name.len());
                let vif = src.create(
                    "VIF",
                    s(&[
                        ("device", v(device)),
                        ("network", v(n)),
                        ("VM", v(&r)),
                        ("MAC", v(&mac)),
                    ]),
                );
                net_vifs.push(((*n).clone(), vif.clone()));
                mine.push(vif);
            }
            set(
                &src,
                "VM",
                &r,
                "VIFs",
                Value::Array(mine.iter().map(|x| v(x)).collect()),
            );
            if let Some(gm) = gm {
                let g = src.create("VM_guest_metrics", gm);
                set(&src, "VM", &r, "guest_metrics", v(&g));
            }
            r
        };
    vm(
        "web",
        "Running",
        &[],
        &[("1", &vlan_nets[0]), ("0", &n0)],
        Some(s(&[
            ("live", Value::Bool(true)),
            (
                "PV_drivers_version",
                map(&[
                    ("major", "9"),
                    ("minor", "3"),
                    ("micro", "1"),
                    ("build", "42"),
                ]),
            ),
            ("os_version", map(&[("name", "Debian GNU/Linux 12")])),
            (
                "networks",
                map(&[
                    ("0/ip", "10.0.0.5"),
                    ("0/ipv4/0", "10.0.0.5"),
                    ("0/ipv6/0", "fe80::1"),
                    ("1/ipv4/1", "192.168.10.6"),
                    ("1/ipv4/0", "192.168.10.5"),
                ]),
            ),
        ])),
    );
    let db = vm("db", "Running", &[], &[("0", &vlan_nets[1])], None);
    vm(
        "legacy",
        "Running",
        &[],
        &[("0", &vlan_nets[2])],
        Some(s(&[
            ("live", Value::Bool(false)),
            (
                "os_version",
                map(&[(
                    "name",
                    "Microsoft Windows 10 Pro|C:\\Windows|\\Device\\Harddisk0\\Partition2",
                )]),
            ),
            ("networks", map(&[("0/ip", "192.168.30.7 192.168.30.8")])),
        ])),
    );
    vm("off", "Halted", &[], &[("0", &n0)], None);
    vm(
        "Debian template",
        "Halted",
        &["is_a_template"],
        &[("0", &n0)],
        None,
    );
    vm(
        "Control domain on host",
        "Running",
        &["is_control_domain"],
        &[],
        None,
    );
    for n in [&n0, &n1, &nb].into_iter().chain(&vlan_nets) {
        let vs: Vec<&String> = net_vifs
            .iter()
            .filter(|(x, _)| x == n)
            .map(|(_, p)| p)
            .collect();
        set(&src, "network", n, "VIFs", refs(&vs));
    }
    Pool { src, db }
}

fn spawn(p: &Pool) -> Cache {
    let cfg = WatchConfig::new(CLASSES)
        .poll_timeout(0.2)
        .backoff(Duration::from_millis(1), Duration::from_millis(5));
    let c = Cache::spawn(memory_xapi::client(&p.src), cfg).unwrap();
    assert!(c.wait_ready(Duration::from_secs(5)));
    c
}

#[test]
fn network_map_shows_pifs_vlans_bonds_and_vm_addresses() {
    let p = build();
    let c = spawn(&p);
    let map = network_map(&c.read());
    assert_eq!(map.hosts.len(), 1);
    let h = &map.hosts[0];
    assert_eq!(h.host, "xcp-host-1");
    let rows: Vec<(&str, Option<i64>)> =
        h.pifs.iter().map(|r| (r.device.as_str(), r.vlan)).collect();
    assert_eq!(
        rows,
        vec![
            ("bond0", None),
            ("eth0", None),
            ("eth1", None),
            ("eth1", Some(10)),
            ("eth1", Some(20)),
            ("eth1", Some(30)),
            ("eth2", None),
            ("eth3", None)
        ]
    );
    let eth1_vlans: Vec<(i64, &str, &str)> = h
        .pifs
        .iter()
        .filter_map(|r| Some((r.vlan?, r.vlan_on.as_deref()?, r.network.as_str())))
        .collect();
    assert_eq!(
        eth1_vlans,
        vec![
            (10, "eth1", "VLAN 10"),
            (20, "eth1", "VLAN 20"),
            (30, "eth1", "VLAN 30")
        ]
    );
    let mgmt: Vec<&str> = h
        .pifs
        .iter()
        .filter(|r| r.management)
        .map(|r| r.device.as_str())
        .collect();
    assert_eq!(mgmt, vec!["eth0"]);
    let eth0 = &h.pifs[1];
    assert_eq!(
        (
            eth0.ip_mode.to_string().as_str(),
            eth0.ip.as_str(),
            eth0.gateway.as_str(),
            eth0.bridge.as_str()
        ),
        ("DHCP", "10.0.0.2", "10.0.0.1", "xenbr0")
    );
    assert_eq!(
        h.pifs[0].bond.as_ref().map(ToString::to_string).as_deref(),
        Some("bond of eth2+eth3 (active-backup)")
    );
    assert_eq!(h.pifs[0].mtu, 9000);
    assert_eq!(
        h.pifs[6].bond,
        Some(xo_core::events::views::BondRole::SlaveOf("bond0".into()))
    );

    let net = |name: &str| map.networks.iter().find(|n| n.network == name).unwrap();
    let on_n0: Vec<(&str, &str, Vec<String>)> = net("Pool-wide network associated with eth0")
        .vms
        .iter()
        .map(|a| (a.vm.as_str(), a.vif_device.as_str(), texts(&a.addresses)))
        .collect();
    // The template is left out; web's device 0 gets device 0's addresses only.
    assert_eq!(
        on_n0,
        vec![
            ("off", "0", vec![]),
            (
                "web",
                "0",
                vec!["10.0.0.5".to_string(), "fe80::1".to_string()]
            )
        ]
    );
    let v10 = &net("VLAN 10").vms;
    assert_eq!(
        (v10.len(), v10[0].vm.as_str(), v10[0].vif_device.as_str()),
        (1, "web", "1")
    );
    assert_eq!(
        texts(&v10[0].addresses),
        vec!["192.168.10.5", "192.168.10.6"]
    );
    assert_eq!(
        texts(&net("VLAN 30").vms[0].addresses),
        vec!["192.168.30.7", "192.168.30.8"]
    );
    assert!(net("VLAN 20").vms[0].addresses.is_empty());
    assert!(net("eth1 trunk").vms.is_empty());

    // The text table is aligned: each column starts at the same offset on every line.
    let text = map.pif_table().to_string();
    let lines: Vec<&str> = text.lines().collect();
    let col = lines[0].find("NETWORK").unwrap();
    let row = lines.iter().find(|l| l.contains("VLAN 20")).unwrap();
    assert_eq!(row.find("VLAN 20"), Some(col));
    assert!(row.contains("20 on eth1"));
    assert!(map.to_string().contains("192.168.10.5 192.168.10.6"));
    c.stop();
}

#[test]
fn tools_report_flags_vms_without_a_running_agent() {
    let p = build();
    let c = spawn(&p);
    let r = tools_report(&c.read());
    let rows: Vec<(&str, Verdict)> = r.vms.iter().map(|x| (x.vm.as_str(), x.verdict)).collect();
    assert_eq!(
        rows,
        vec![
            ("db", Verdict::NeedsToolsIso),
            ("legacy", Verdict::AgentNotRunning),
            ("off", Verdict::Halted),
            ("web", Verdict::Ok)
        ]
    );
    let web = r.get("web").unwrap();
    assert_eq!(
        (web.agent_running, web.pv_drivers.as_deref(), web.memory),
        (true, Some("9.3.1-42"), MemoryData::Available)
    );
    assert_eq!(web.os.as_deref(), Some("Debian GNU/Linux 12"));
    let legacy = r.get("legacy").unwrap();
    assert_eq!(
        (
            legacy.agent_running,
            legacy.pv_drivers.as_deref(),
            legacy.memory
        ),
        (false, None, MemoryData::Missing)
    );
    assert_eq!(r.get("off").unwrap().memory, MemoryData::NotApplicable);
    assert_eq!(legacy.os.as_deref(), Some("Microsoft Windows 10 Pro"));
    let attention: Vec<&str> = r.needing_attention().map(|x| x.vm.as_str()).collect();
    assert_eq!(attention, vec!["db", "legacy"]);
    let text = r.to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("db ") && l.ends_with("needs tools ISO")),
        "{text}"
    );
    c.stop();
}

#[test]
fn wait_for_sees_tools_arrive_and_an_address_show_up() {
    let p = build();
    let c = spawn(&p);
    let src = p.src.clone();
    let db = p.db.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        let g = src.create(
            "VM_guest_metrics",
            s(&[
                ("live", Value::Bool(true)),
                ("networks", map(&[("0/ipv4/0", "192.168.20.9")])),
            ]),
        );
        set(&src, "VM", &db, "guest_metrics", v(&g));
    });
    let db_ref: Ref<Vm> = Ref::new(&p.db);
    let addr = c.wait_for_guest_ip(&db_ref, Duration::from_secs(5));
    t.join().unwrap();
    assert_eq!(addr, Some("192.168.20.9".parse().unwrap()));
    assert_eq!(
        tools_report(&c.read()).get("db").unwrap().verdict,
        Verdict::Ok
    );
    c.stop();
}

#[test]
fn lookups_and_navigation() {
    let p = build();
    let c = spawn(&p);
    let o = c.read();
    let (web_ref, web) = o.by_name::<Vm>("web").remove(0);
    assert_eq!(
        o.by_uuid::<Vm>(&web.uuid).map(|x| x.0),
        Some(web_ref.clone())
    );
    assert_eq!(o.get(&web_ref).map(|x| x.name_label.as_str()), Some("web"));
    assert_eq!(
        c.get(&web_ref).map(|x| x.name_label.clone()).as_deref(),
        Some("web")
    );
    let devices: Vec<&str> = o.vm_vifs(web).iter().map(|x| x.1.device.as_str()).collect();
    assert_eq!(devices, vec!["0", "1"], "sorted by device");
    let (_, vif1) = o.vm_vifs(web)[1].clone();
    let (_, net) = o.vif_network(vif1).unwrap();
    assert_eq!(net.name_label, "VLAN 10");
    let networks: Vec<&str> = o
        .vm_networks(web)
        .iter()
        .map(|n| n.1.name_label.as_str())
        .collect();
    assert_eq!(networks.len(), 2);
    let pifs = o.network_pifs(net);
    assert_eq!(pifs.len(), 1);
    let (_, vlan) = o.pif_vlan(pifs[0].1).unwrap();
    assert_eq!(vlan.tag, 10);
    assert_eq!(
        o.pif_host(pifs[0].1).map(|h| h.1.name_label.as_str()),
        Some("xcp-host-1")
    );
    assert!(o.vm_guest_metrics(web).is_some());
    assert!(o.vm_metrics(web).is_none());
    assert_eq!(o.len("VM"), 6);
    assert_eq!(o.all::<Vm>().count(), 6);
    assert!(o.by_name::<Vm>("nope").is_empty());
    // Records are typed once, when their event is applied: no dynamic copy kept.
    let obj = o.object("VM", web_ref.as_str()).unwrap();
    assert!(obj.record.dynamic().is_none());
}

/// Addresses as text, for comparing with literals.
fn texts(a: &[std::net::IpAddr]) -> Vec<String> {
    a.iter().map(ToString::to_string).collect()
}
