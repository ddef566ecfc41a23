//! The default inventory: a freshly installed two-host XCP-ng pool with three NICs per host,
//! VLANs 10/20/30 on the trunk, two more NICs bonded on the last host (`inventory_bond`),
//! local + shared + ISO storage, templates and a few VMs.
//! Addresses come from the documentation ranges (RFC 5737, RFC 3849).

use std::net::IpAddr;

use super::guest::guest_agent_report;
use super::inventory_nic::{nic_metrics, nic_network, Pif};
use super::sr_ops::sr_allowed_ops;
use super::state::{HostSlot, State};
use super::storage::{map, new_vbd, new_vdi};
use super::vm::{refresh_ops, HALTED, RUNNING};
use crate::model::{DateTime, Value, NULL_REF};

const GIB: i64 = 1 << 30;
const MIB: i64 = 1 << 20;

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

/// Memory of an inventory guest of the given kind (kind 5, Windows, has more).
fn guest_memory(kind: usize) -> i64 {
    if kind == 5 {
        4 * GIB
    } else {
        2 * GIB
    }
}

/// Fills `st` (which already has its host slots with IPs) with the default pool.
pub fn build(st: &mut State, ips: &[IpAddr], vms: usize) {
    let now = DateTime::now();
    let boot = DateTime::from_unix(now.unix() - 86400 * 3);
    let c = |st: &State, n: &str| st.db.class_index(n);
    let (hc, pc, nc, pifc) = (c(st, "host"), c(st, "pool"), c(st, "network"), c(st, "PIF"));

    // Networks first: pool-wide ones keep XCP-ng's default names.
    let nets: Vec<String> = (0..3).map(|i| nic_network(st, i)).collect();
    st.db.create(
        nc,
        None,
        None,
        vec![
            ("name_label", s("Host internal management network")),
            ("name_description", s("Network on which guests will be assigned a private link-local IP address which can be used to talk XenAPI")),
            ("bridge", s("xenapi")),
            ("MTU", Value::Int(1500)),
            ("managed", Value::Bool(true)),
            ("other_config", map(&[("is_guest_installer_network", "true"), ("is_host_internal_management_network", "true"), ("ip_begin", "169.254.0.1"), ("ip_end", "169.254.255.254"), ("netmask", "255.255.0.0")])),
        ],
    );
    let mut vlan_nets = Vec::new();
    for (i, tag) in [10, 20, 30].iter().enumerate() {
        vlan_nets.push((
            *tag,
            st.db.create(
                nc,
                None,
                None,
                vec![
                    ("name_label", s(&format!("VLAN {tag}"))),
                    ("bridge", s(&format!("xapi{i}"))),
                    ("MTU", Value::Int(1500)),
                    ("managed", Value::Bool(true)),
                ],
            ),
        ));
    }

    // Hosts, with metrics, CPUs, PIFs, VLANs and a control domain each.
    let (hmc, cpuc, vmc, mmc, vlc) = (
        c(st, "host_metrics"),
        c(st, "host_cpu"),
        c(st, "VM"),
        c(st, "VM_metrics"),
        c(st, "VLAN"),
    );
    let mut hosts = Vec::new();
    for (hi, ip) in ips.iter().enumerate() {
        let name = format!("xcp-ng-{:02}", hi + 1);
        // 64 GiB, or more so that every guest placed here (below) can run at once next to
        // dom0 (4 GiB) and the host overhead, with room to spare: VM.start's memory check
        // never refuses the inventory's own guests.
        let guests: i64 = (hi..vms)
            .step_by(ips.len())
            .map(|i| guest_memory(i % 6))
            .sum();
        let total = (64 * GIB).max(guests + 4 * GIB + 600 * MIB + 16 * GIB);
        let metrics = st.db.create(
            hmc,
            None,
            None,
            vec![
                ("memory_total", Value::Int(total)),
                ("memory_free", Value::Int(48 * GIB)),
                ("live", Value::Bool(true)),
                ("last_updated", Value::DateTime(now.clone())),
            ],
        );
        let h = st.db.create(
            hc,
            None,
            None,
            vec![
                ("name_label", s(&name)),
                ("name_description", s("Default install")),
                ("hostname", s(&name)),
                ("address", s(&ip.to_string())),
                ("enabled", Value::Bool(true)),
                ("API_version_major", Value::Int(2)),
                ("API_version_minor", Value::Int(21)),
                ("API_version_vendor", s("XenSource")),
                ("metrics", s(&metrics)),
                ("memory_overhead", Value::Int(600 * MIB)),
                ("software_version", map(&[("product_version", "8.3.0"), ("product_version_text", "8.3"), ("product_version_text_short", "8.3"), ("platform_name", "XCP"), ("platform_version", "3.4.0"), ("product_brand", "XCP-ng"), ("build_number", "cloud"), ("hostname", &name), ("xapi", "24.19"), ("xapi_build", "24.19.2"), ("xen", "4.17.5-3"), ("linux", "4.19.0+1"), ("dom0_kernel", "4.19.19-8.0.37.1.xcpng8.3")])),
                ("cpu_info", map(&[("cpu_count", "8"), ("socket_count", "1"), ("vendor", "GenuineIntel"), ("speed", "2400.000"), ("modelname", "Intel(R) Xeon(R) CPU E-2278G @ 3.40GHz"), ("family", "6"), ("model", "158"), ("stepping", "13"), ("flags", "fpu de tsc msr pae mce cx8 apic sep mca cmov pat clflush acpi mmx fxsr sse sse2 ht syscall nx lm constant_tsc rep_good nopl nonstop_tsc pni pclmulqdq monitor est ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm")])),
                ("other_config", map(&[("agent_start_time", &boot.unix().to_string()), ("boot_time", &boot.unix().to_string()), ("iscsi_iqn", &format!("iqn.2024-01.org.example:{name}"))])),
                ("capabilities", Value::Array(["xen-3.0-x86_64", "hvm-3.0-x86_32", "hvm-3.0-x86_32p", "hvm-3.0-x86_64"].iter().map(|x| s(x)).collect())),
                ("edition", s("xcp-ng")),
                ("license_params", map(&[("sku_type", "free"), ("expiry", "30000101T00:00:00Z")])),
                ("bios_strings", map(&[("bios-vendor", "Xen"), ("system-manufacturer", "Xen")])),
                ("sched_policy", s("credit")),
                ("allowed_operations", Value::Array(["provision", "evacuate", "reboot", "shutdown", "vm_start", "vm_resume", "vm_migrate"].iter().map(|x| s(x)).collect())),
            ],
        );
        for n in 0..8 {
            st.db.create(
                cpuc,
                None,
                None,
                vec![
                    ("host", s(&h)),
                    ("number", Value::Int(n)),
                    ("vendor", s("GenuineIntel")),
                    ("speed", Value::Int(2400)),
                    ("modelname", s("Intel(R) Xeon(R) CPU E-2278G @ 3.40GHz")),
                    ("family", Value::Int(6)),
                    ("model", Value::Int(158)),
                    ("utilisation", Value::Double(0.05)),
                ],
            );
        }
        // eth0 management (192.0.2.0/25), eth1 trunk, eth2 storage (192.0.2.128/25).
        let mut phys = Vec::new();
        for (i, net) in nets.iter().enumerate() {
            let pm = nic_metrics(st, &format!("0000:03:00.{i}"), &now);
            let mac = format!("b2:00:00:00:{:02x}:{:02x}", hi + 1, i);
            let mut vals = Pif {
                device: &format!("eth{i}"),
                network: net,
                host: &h,
                mac: &mac,
                vlan: -1,
                physical: true,
                attached: true,
            }
            .fields();
            vals.extend([
                ("metrics", s(&pm)),
                ("disallow_unplug", Value::Bool(i != 1)),
            ]);
            match i {
                0 => vals.extend([
                    ("management", Value::Bool(true)),
                    ("ip_configuration_mode", s("Static")),
                    ("IP", s(&format!("192.0.2.{}", 11 + hi))),
                    ("netmask", s("255.255.255.128")),
                    ("gateway", s("192.0.2.1")),
                    ("DNS", s("192.0.2.1")),
                ]),
                2 => vals.extend([
                    ("ip_configuration_mode", s("Static")),
                    ("IP", s(&format!("192.0.2.{}", 139 + hi))),
                    ("netmask", s("255.255.255.128")),
                    ("other_config", map(&[("management_purpose", "Storage")])),
                ]),
                _ => vals.push(("ip_configuration_mode", s("None"))),
            }
            phys.push(st.db.create(pifc, None, None, vals));
        }
        for (tag, net) in &vlan_nets {
            let mut vals = Pif {
                device: "eth1",
                network: net,
                host: &h,
                mac: &format!("b2:00:00:00:{:02x}:01", hi + 1),
                vlan: *tag,
                physical: false,
                attached: true,
            }
            .fields();
            vals.push(("ip_configuration_mode", s("None")));
            let pif = st.db.create(pifc, None, None, vals);
            let vlan = st.db.create(
                vlc,
                None,
                None,
                vec![
                    ("tagged_PIF", s(&phys[1])),
                    ("untagged_PIF", s(&pif)),
                    ("tag", Value::Int(*tag)),
                ],
            );
            st.db.set(pifc, &pif, "VLAN_master_of", s(&vlan));
        }
        // Control domain.
        let dm = st.db.create(
            mmc,
            None,
            None,
            vec![
                ("memory_actual", Value::Int(4 * GIB)),
                ("VCPUs_number", Value::Int(4)),
                ("start_time", Value::DateTime(boot.clone())),
                ("state", Value::Array(vec![s("running")])),
                ("last_updated", Value::DateTime(now.clone())),
            ],
        );
        let dom0 = st.db.create(
            vmc,
            None,
            None,
            vec![
                ("name_label", s(&format!("Control domain on host: {name}"))),
                (
                    "name_description",
                    s("The domain which manages physical devices and manages other domains"),
                ),
                ("is_control_domain", Value::Bool(true)),
                ("power_state", s(RUNNING)),
                ("resident_on", s(&h)),
                ("domid", Value::Int(0)),
                ("memory_static_max", Value::Int(4 * GIB)),
                ("memory_dynamic_max", Value::Int(4 * GIB)),
                ("memory_dynamic_min", Value::Int(4 * GIB)),
                ("memory_static_min", Value::Int(4 * GIB)),
                ("memory_target", Value::Int(4 * GIB)),
                ("VCPUs_max", Value::Int(4)),
                ("VCPUs_at_startup", Value::Int(4)),
                ("metrics", s(&dm)),
                ("domain_type", s("pv")),
                ("user_version", Value::Int(1)),
            ],
        );
        st.db.set(hc, &h, "control_domain", s(&dom0));
        // The last host (the master when alone) has its two extra NICs bonded.
        if hi + 1 == ips.len() {
            super::inventory_bond::add_bond(st, &h, hi, &now);
        }
        st.hosts.push(HostSlot {
            r: h.clone(),
            ip: *ip,
        });
        hosts.push(h);
    }

    // Storage: local LVM per host, a shared NFS SR, and the guest-tools ISO SR.
    let (src, pbdc, smc, vdic) = (c(st, "SR"), c(st, "PBD"), c(st, "SM"), c(st, "VDI"));
    // Drivers XCP-ng ships (`SR.create` refuses other types with SR_UNKNOWN_DRIVER).
    for (ty, name) in [
        ("lvm", "Local LVM"),
        ("ext", "Local EXT3 VHD"),
        ("nfs", "NFS"),
        ("smb", "SMB"),
        ("lvmoiscsi", "LVM over iSCSI"),
        ("lvmohba", "LVM over FC"),
        ("iso", "ISO"),
        ("udev", "Removable storage"),
    ] {
        st.db.create(
            smc,
            None,
            None,
            vec![
                ("name_label", s(name)),
                ("type", s(ty)),
                ("vendor", s("XCP-ng")),
                ("version", s("1.0")),
                ("required_api_version", s("1.0")),
            ],
        );
    }
    let mut local_srs = Vec::new();
    for (hi, h) in hosts.iter().enumerate() {
        let sr = st.db.create(
            src,
            None,
            None,
            vec![
                (
                    "name_label",
                    s(&format!("Local storage on xcp-ng-{:02}", hi + 1)),
                ),
                ("type", s("lvm")),
                ("content_type", s("user")),
                ("shared", Value::Bool(false)),
                ("physical_size", Value::Int(500 * GIB)),
                (
                    "sm_config",
                    map(&[
                        ("allocation", "thick"),
                        ("use_vhd", "true"),
                        ("devserial", "scsi-SATA_disk"),
                    ]),
                ),
                (
                    "other_config",
                    map(&[
                        ("i18n-key", "local-storage"),
                        ("i18n-original-value-name_label", "Local storage"),
                    ]),
                ),
                ("allowed_operations", sr_allowed_ops(false)),
            ],
        );
        st.db.create(
            pbdc,
            None,
            None,
            vec![
                ("host", s(h)),
                ("SR", s(&sr)),
                ("device_config", map(&[("device", "/dev/sdb")])),
                ("currently_attached", Value::Bool(true)),
            ],
        );
        local_srs.push(sr);
    }
    let nfs = st.db.create(
        src,
        None,
        None,
        vec![
            ("name_label", s("NFS VM storage")),
            ("type", s("nfs")),
            ("content_type", s("user")),
            ("shared", Value::Bool(true)),
            ("physical_size", Value::Int(2048 * GIB)),
            ("allowed_operations", sr_allowed_ops(false)),
        ],
    );
    let iso = st.db.create(
        src,
        None,
        None,
        vec![
            ("name_label", s("XCP-ng Tools")),
            ("name_description", s("XCP-ng guest tools")),
            ("type", s("iso")),
            ("content_type", s("iso")),
            ("shared", Value::Bool(true)),
            ("physical_size", Value::Int(0)),
            (
                "other_config",
                map(&[
                    ("xenserver_tools_sr", "true"),
                    ("i18n-key", "xenserver-tools"),
                ]),
            ),
            ("sm_config", map(&[("xs-tools", "true")])),
        ],
    );
    for h in &hosts {
        st.db.create(
            pbdc,
            None,
            None,
            vec![
                ("host", s(h)),
                ("SR", s(&nfs)),
                (
                    "device_config",
                    map(&[("server", "192.0.2.50"), ("serverpath", "/export/vms")]),
                ),
                ("currently_attached", Value::Bool(true)),
            ],
        );
        st.db.create(
            pbdc,
            None,
            None,
            vec![
                ("host", s(h)),
                ("SR", s(&iso)),
                (
                    "device_config",
                    map(&[
                        ("location", "/opt/xensource/packages/iso"),
                        ("legacy_mode", "true"),
                    ]),
                ),
                ("currently_attached", Value::Bool(true)),
            ],
        );
    }
    st.db.create(
        vdic,
        None,
        None,
        vec![
            ("name_label", s("guest-tools.iso")),
            ("SR", s(&iso)),
            ("virtual_size", Value::Int(60 * MIB)),
            ("physical_utilisation", Value::Int(60 * MIB)),
            ("type", s("user")),
            ("read_only", Value::Bool(true)),
            ("sharable", Value::Bool(true)),
            ("location", s("guest-tools.iso")),
            ("managed", Value::Bool(true)),
        ],
    );

    // Pool.
    st.pool = st.db.create(
        pc,
        None,
        None,
        vec![
            ("name_label", s("xcp-ng-pool")),
            ("master", s(&hosts[0])),
            ("default_SR", s(&nfs)),
            ("suspend_image_SR", s(&nfs)),
            ("crash_dump_SR", s(&nfs)),
            ("other_config", map(&[("auto_poweron", "false")])),
            (
                "cpu_info",
                map(&[
                    ("cpu_count", &(8 * hosts.len()).to_string()),
                    ("socket_count", &hosts.len().to_string()),
                    ("vendor", "GenuineIntel"),
                ]),
            ),
            (
                "restrictions",
                map(&[
                    ("restrict_vswitch_controller", "false"),
                    ("restrict_pooling", "false"),
                ]),
            ),
        ],
    );
    st.master = 0;

    // Templates.
    for (name, win) in [
        ("Debian Bullseye 11", false),
        ("CentOS 7", false),
        ("Windows 10 (64-bit)", true),
    ] {
        let t = st.db.create(
            vmc,
            None,
            None,
            vec![
                ("name_label", s(name)),
                ("name_description", s(&format!("Template which allows VM installation from install media ({name})"))),
                ("is_a_template", Value::Bool(true)),
                ("power_state", s(HALTED)),
                ("memory_static_max", Value::Int(if win { 4 * GIB } else { 2 * GIB })),
                ("memory_dynamic_max", Value::Int(if win { 4 * GIB } else { 2 * GIB })),
                ("memory_dynamic_min", Value::Int(if win { 4 * GIB } else { 2 * GIB })),
                ("memory_static_min", Value::Int(if win { 4 * GIB } else { 512 * MIB })),
                ("VCPUs_max", Value::Int(if win { 2 } else { 1 })),
                ("VCPUs_at_startup", Value::Int(if win { 2 } else { 1 })),
                ("HVM_boot_policy", s("BIOS order")),
                ("HVM_boot_params", map(&[("order", "cdn")])),
                ("platform", map(&[("viridian", if win { "true" } else { "false" }), ("acpi", "1"), ("apic", "true"), ("pae", "true"), ("nx", "true"), ("device_id", if win { "0002" } else { "0001" })])),
                ("other_config", map(&[("default_template", "true"), ("linux_template", if win { "false" } else { "true" }), ("install-methods", "cdrom,nfs,http,ftp"), ("disks", "<provision><disk device=\"0\" size=\"10737418240\" sr=\"\" bootable=\"true\" type=\"system\"/></provision>")])),
                ("domain_type", s("hvm")),
                ("user_version", Value::Int(1)),
                ("domid", Value::Int(-1)),
            ],
        );
        refresh_ops(st, &t);
    }

    // VMs, cycling through six kinds so that even two VMs give a running and a halted one:
    // (name, running, guest tools). Kind 5 is a Windows guest.
    let vifc = c(st, "VIF");
    const KINDS: [(&str, bool, bool); 6] = [
        ("web-01", true, true),
        ("build-01", false, true),
        ("legacy-01", true, false),
        ("db-01", true, true),
        ("app-01", false, true),
        ("win10-01", true, true),
    ];
    for i in 0..vms {
        let kind = i % 6;
        let (short, running, tools) = KINDS[kind];
        let name = if vms <= KINDS.len() {
            short.to_owned()
        } else {
            format!("vm-{:05}", i + 1)
        };
        let hi = i % hosts.len();
        let mem = guest_memory(kind);
        let metrics = st.db.create(
            mmc,
            None,
            None,
            vec![
                ("memory_actual", Value::Int(if running { mem } else { 0 })),
                ("VCPUs_number", Value::Int(if running { 2 } else { 0 })),
                (
                    "start_time",
                    Value::DateTime(if running {
                        boot.clone()
                    } else {
                        DateTime::epoch()
                    }),
                ),
                ("install_time", Value::DateTime(boot.clone())),
                (
                    "state",
                    Value::Array(if running {
                        vec![s("running")]
                    } else {
                        Vec::new()
                    }),
                ),
                ("last_updated", Value::DateTime(now.clone())),
                (
                    "current_domain_type",
                    s(if running { "hvm" } else { "unspecified" }),
                ),
            ],
        );
        st.next_domid += i64::from(running);
        let vm = st.db.create(
            vmc,
            None,
            None,
            vec![
                ("name_label", s(&name)),
                (
                    "name_description",
                    s(if !tools {
                        "Appliance without guest tools"
                    } else {
                        ""
                    }),
                ),
                ("power_state", s(if running { RUNNING } else { HALTED })),
                (
                    "resident_on",
                    s(if running { &hosts[hi] } else { NULL_REF }),
                ),
                ("affinity", s(&hosts[hi])),
                (
                    "domid",
                    Value::Int(if running { st.next_domid } else { -1 }),
                ),
                ("memory_static_max", Value::Int(mem)),
                ("memory_dynamic_max", Value::Int(mem)),
                ("memory_dynamic_min", Value::Int(mem)),
                ("memory_static_min", Value::Int(512 * MIB)),
                ("memory_target", Value::Int(if running { mem } else { 0 })),
                ("VCPUs_max", Value::Int(2)),
                ("VCPUs_at_startup", Value::Int(2)),
                ("HVM_boot_policy", s("BIOS order")),
                ("HVM_boot_params", map(&[("order", "cd")])),
                (
                    "platform",
                    map(&[
                        ("viridian", if kind == 5 { "true" } else { "false" }),
                        ("acpi", "1"),
                        ("apic", "true"),
                        ("pae", "true"),
                        ("nx", "true"),
                    ]),
                ),
                ("metrics", s(&metrics)),
                ("domain_type", s("hvm")),
                ("user_version", Value::Int(1)),
                (
                    "other_config",
                    map(&[(
                        "base_template_name",
                        if kind == 5 {
                            "Windows 10 (64-bit)"
                        } else {
                            "Debian Bullseye 11"
                        },
                    )]),
                ),
                (
                    "tags",
                    Value::Array(if kind == 3 {
                        vec![s("production")]
                    } else {
                        Vec::new()
                    }),
                ),
            ],
        );
        // One NIC: management network, or a VLAN for some.
        let net = match i % 4 {
            1 => &vlan_nets[0].1,
            2 => &vlan_nets[1].1,
            _ => &nets[0],
        };
        let mac = st.random_mac();
        st.db.create(
            vifc,
            None,
            None,
            vec![
                ("device", s("0")),
                ("network", s(net)),
                ("VM", s(&vm)),
                ("MAC", s(&mac)),
                ("MTU", Value::Int(1500)),
                ("currently_attached", Value::Bool(running)),
                ("locking_mode", s("network_default")),
                ("allowed_operations", Value::Array(vec![s("attach")])),
            ],
        );
        let sr = if i % 2 == 0 {
            nfs.clone()
        } else {
            local_srs[hi].clone()
        };
        let vdi = new_vdi(
            st,
            &sr,
            &format!("{name} 0"),
            if kind == 5 { 64 * GIB } else { 20 * GIB },
            "system",
        );
        let disk = new_vbd(st, &vm, &vdi, "0", "Disk", true);
        new_vbd(st, &vm, NULL_REF, "3", "CD", false);
        let bc = st.db.class_index("VBD");
        st.db
            .set(bc, &disk, "currently_attached", Value::Bool(running));
        if tools {
            st.tools.insert(vm.clone());
            if running {
                guest_agent_report(st, &vm);
            }
        }
        refresh_ops(st, &vm);
    }
}
