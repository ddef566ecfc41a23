//! Timing sanity check (not a benchmark): typed decode of a large VM.get_all_records reply
//! against a bare quick-xml event loop over the same bytes. Run in release:
//! `cargo test --release -p xo-core --test xmlrpc_perf -- --ignored --nocapture`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use xo_core::model::{DateTime, Struct, Value};
use xo_core::rpc::xmlrpc::{decode_envelope, decode_envelope_typed, encode_envelope};
use xo_core::rpc::Limits;

#[derive(Deserialize)]
#[serde(default)]
#[allow(dead_code, non_snake_case)]
#[derive(Default)]
struct Vm {
    uuid: String,
    name_label: String,
    name_description: String,
    power_state: String,
    user_version: i64,
    is_a_template: bool,
    is_default_template: bool,
    suspend_VDI: String,
    resident_on: String,
    affinity: String,
    memory_overhead: i64,
    memory_target: i64,
    memory_static_max: i64,
    memory_dynamic_max: i64,
    memory_dynamic_min: i64,
    memory_static_min: i64,
    VCPUs_params: BTreeMap<String, String>,
    VCPUs_max: i64,
    VCPUs_at_startup: i64,
    actions_after_shutdown: String,
    actions_after_reboot: String,
    actions_after_crash: String,
    consoles: Vec<String>,
    VIFs: Vec<String>,
    VBDs: Vec<String>,
    VUSBs: Vec<String>,
    crash_dumps: Vec<String>,
    VTPMs: Vec<String>,
    PV_bootloader: String,
    PV_kernel: String,
    PV_ramdisk: String,
    PV_args: String,
    PV_bootloader_args: String,
    PV_legacy_args: String,
    HVM_boot_policy: String,
    HVM_boot_params: BTreeMap<String, String>,
    HVM_shadow_multiplier: f64,
    platform: BTreeMap<String, String>,
    PCI_bus: String,
    other_config: BTreeMap<String, String>,
    domid: i64,
    domarch: String,
    last_boot_CPU_flags: BTreeMap<String, String>,
    is_control_domain: bool,
    metrics: String,
    guest_metrics: String,
    last_booted_record: String,
    recommendations: String,
    xenstore_data: BTreeMap<String, String>,
    ha_always_run: bool,
    ha_restart_priority: String,
    is_a_snapshot: bool,
    snapshot_of: String,
    snapshots: Vec<String>,
    snapshot_time: String,
    transportable_snapshot_id: String,
    blobs: BTreeMap<String, String>,
    tags: Vec<String>,
    blocked_operations: BTreeMap<String, String>,
    snapshot_info: BTreeMap<String, String>,
    snapshot_metadata: String,
    parent: String,
    children: Vec<String>,
    bios_strings: BTreeMap<String, String>,
    protection_policy: String,
    is_snapshot_from_vmpp: bool,
    snapshot_schedule: String,
    is_vmss_snapshot: bool,
    appliance: String,
    start_delay: i64,
    shutdown_delay: i64,
    order: i64,
    VGPUs: Vec<String>,
    attached_PCIs: Vec<String>,
    suspend_SR: String,
    version: i64,
    generation_id: String,
    hardware_platform_version: i64,
    has_vendor_device: bool,
    requires_reboot: bool,
    reference_label: String,
    domain_type: String,
    NVRAM: BTreeMap<String, String>,
    pending_guidances: Vec<String>,
    allowed_operations: Vec<String>,
    current_operations: BTreeMap<String, String>,
}

fn record(i: usize) -> Value {
    let s = |x: &str| Value::String(x.into());
    let refs = |n: usize, p: &str| {
        Value::Array(
            (0..n)
                .map(|k| s(&format!("OpaqueRef:{p}-{i}-{k}")))
                .collect(),
        )
    };
    let map = |pairs: &[(&str, &str)]| {
        Value::Struct(pairs.iter().map(|(k, v)| (k.to_string(), s(v))).collect())
    };
    let mut r = Struct::new();
    let uuid = format!("{i:08x}-8a8c-4d0a-b0c9-7f1f5c2a9e11");
    for (k, v) in [
        ("uuid", s(&uuid)),
        ("allowed_operations", Value::Array(["changing_dynamic_range", "migrate_send", "pool_migrate", "changing_VCPUs_live", "suspend", "hard_reboot", "hard_shutdown", "clean_reboot", "clean_shutdown", "pause", "checkpoint", "snapshot", "export", "copy"].iter().map(|x| s(x)).collect())),
        ("current_operations", map(&[])),
        ("name_label", s(&format!("vm-{i} web & db"))),
        ("name_description", s("Production web server")),
        ("power_state", s("Running")),
        ("user_version", Value::Int(1)),
        ("is_a_template", Value::Bool(false)),
        ("is_default_template", Value::Bool(false)),
        ("suspend_VDI", s("OpaqueRef:NULL")),
        ("resident_on", s("OpaqueRef:8c3b9a2e-5d1f-4c6a-9e7b-2f4d6a8c0e1b")),
        ("scheduled_to_be_resident_on", s("OpaqueRef:NULL")),
        ("affinity", s("OpaqueRef:NULL")),
        ("memory_overhead", Value::Int(84934656)),
        ("memory_target", Value::Int(8589934592)),
        ("memory_static_max", Value::Int(8589934592)),
        ("memory_dynamic_max", Value::Int(8589934592)),
        ("memory_dynamic_min", Value::Int(4294967296)),
        ("memory_static_min", Value::Int(1073741824)),
        ("VCPUs_params", map(&[("weight", "256")])),
        ("VCPUs_max", Value::Int(4)),
        ("VCPUs_at_startup", Value::Int(4)),
        ("actions_after_softreboot", s("soft_reboot")),
        ("actions_after_shutdown", s("destroy")),
        ("actions_after_reboot", s("restart")),
        ("actions_after_crash", s("restart")),
        ("consoles", refs(1, "console")),
        ("VIFs", refs(2, "vif")),
        ("VBDs", refs(3, "vbd")),
        ("VUSBs", refs(0, "")),
        ("crash_dumps", refs(0, "")),
        ("VTPMs", refs(0, "")),
        ("PV_bootloader", s("")),
        ("PV_kernel", s("")),
        ("PV_ramdisk", s("")),
        ("PV_args", s("")),
        ("PV_bootloader_args", s("")),
        ("PV_legacy_args", s("")),
        ("HVM_boot_policy", s("BIOS order")),
        ("HVM_boot_params", map(&[("order", "cdn"), ("firmware", "bios")])),
        ("HVM_shadow_multiplier", Value::Double(1.0)),
        ("platform", map(&[("timeoffset", "0"), ("nx", "true"), ("acpi", "1"), ("apic", "true"), ("pae", "true"), ("viridian", "true"), ("hpet", "true"), ("device-model", "qemu-upstream-compat"), ("secureboot", "false"), ("cores-per-socket", "2")])),
        ("PCI_bus", s("")),
        ("other_config", map(&[("base_template_name", "Debian Bookworm 12"), ("import_task", "OpaqueRef:NULL"), ("mac_seed", "5e0f4d6e-0c3b-2a7f-9a1e-6d2c4b8f0a3e"), ("install-methods", "cdrom,nfs,http,ftp"), ("linux_template", "true")])),
        ("domid", Value::Int(143)),
        ("domarch", s("")),
        ("last_boot_CPU_flags", map(&[("vendor", "GenuineIntel"), ("features", "1fcbfbff-f7fa3223-2d93fbff-00000023-00000001-000007ab-00000000-00000000-00001000-0c000000")])),
        ("is_control_domain", Value::Bool(false)),
        ("metrics", s("OpaqueRef:3f2a1b4c-6d8e-4f0a-9b1c-2d3e4f5a6b7c")),
        ("guest_metrics", s("OpaqueRef:7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d")),
        ("last_booted_record", s("")),
        ("recommendations", s("<restrictions><restriction field=\"memory-static-max\" max=\"1649267441664\"/><restriction field=\"vcpus-max\" max=\"32\"/></restrictions>")),
        ("xenstore_data", map(&[("vm-data", ""), ("vm-data/mmio-hole-size", "268435456")])),
        ("ha_always_run", Value::Bool(false)),
        ("ha_restart_priority", s("")),
        ("is_a_snapshot", Value::Bool(false)),
        ("snapshot_of", s("OpaqueRef:NULL")),
        ("snapshots", refs(1, "snap")),
        ("snapshot_time", Value::DateTime(DateTime::from_unix(0))),
        ("transportable_snapshot_id", s("")),
        ("blobs", map(&[])),
        ("tags", Value::Array(vec![s("prod"), s("web")])),
        ("blocked_operations", map(&[])),
        ("snapshot_info", map(&[])),
        ("snapshot_metadata", s("")),
        ("parent", s("OpaqueRef:NULL")),
        ("children", refs(0, "")),
        ("bios_strings", map(&[("bios-vendor", "Xen"), ("bios-version", ""), ("system-manufacturer", "Xen"), ("system-product-name", "HVM domU"), ("system-version", ""), ("system-serial-number", ""), ("enclosure-asset-tag", ""), ("hp-rombios", ""), ("oem-1", "Xen"), ("oem-2", "MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d")])),
        ("protection_policy", s("OpaqueRef:NULL")),
        ("is_snapshot_from_vmpp", Value::Bool(false)),
        ("snapshot_schedule", s("OpaqueRef:NULL")),
        ("is_vmss_snapshot", Value::Bool(false)),
        ("appliance", s("OpaqueRef:NULL")),
        ("start_delay", Value::Int(0)),
        ("shutdown_delay", Value::Int(0)),
        ("order", Value::Int(0)),
        ("VGPUs", refs(0, "")),
        ("attached_PCIs", refs(0, "")),
        ("suspend_SR", s("OpaqueRef:NULL")),
        ("version", Value::Int(0)),
        ("generation_id", s("0:0")),
        ("hardware_platform_version", Value::Int(0)),
        ("has_vendor_device", Value::Bool(false)),
        ("requires_reboot", Value::Bool(false)),
        ("reference_label", s("debian-12")),
        ("domain_type", s("hvm")),
        ("NVRAM", map(&[])),
        ("pending_guidances", refs(0, "")),
    ] {
        r.insert(k, v);
    }
    Value::Struct(r)
}

fn best_of(n: usize, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

#[test]
#[ignore]
fn typed_decode_vs_raw_event_loop() {
    let count = std::env::var("XO_PERF_COUNT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2000);
    let all = Value::Struct(
        (0..count)
            .map(|i| {
                (
                    format!("OpaqueRef:{i:08x}-0000-4000-8000-000000000000"),
                    record(i),
                )
            })
            .collect(),
    );
    let bytes = encode_envelope(&Ok(all));
    let limits = Limits::default();
    let raw_loop = || {
        let mut rd = quick_xml::Reader::from_reader(bytes.as_slice());
        let mut n = 0usize;
        loop {
            match rd.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => n += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(n > 0);
    };
    // For profiling one path alone: XO_PERF_ONLY=setup|raw|typed|generic (XO_PERF_ITERS times).
    let iters = std::env::var("XO_PERF_ITERS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(10);
    match std::env::var("XO_PERF_ONLY").as_deref() {
        Ok("typed") => {
            for _ in 0..iters {
                let out: BTreeMap<String, Vm> =
                    decode_envelope_typed(&bytes, limits).unwrap().unwrap();
                assert_eq!(out.len(), count);
            }
            return;
        }
        Ok("setup") => return,
        Ok("raw") => {
            for _ in 0..iters {
                raw_loop();
            }
            return;
        }
        Ok("generic") => {
            for _ in 0..iters {
                assert!(decode_envelope(&bytes, limits).unwrap().is_ok());
            }
            return;
        }
        _ => {}
    }
    let raw = best_of(5, raw_loop);
    let typed = best_of(5, || {
        let out: BTreeMap<String, Vm> = decode_envelope_typed(&bytes, limits).unwrap().unwrap();
        assert_eq!(out.len(), count);
    });
    let generic = best_of(5, || {
        assert!(decode_envelope(&bytes, limits).unwrap().is_ok());
    });
    let mb = bytes.len() as f64 / 1e6;
    let rate = |d: Duration| mb / d.as_secs_f64();
    println!("{count} VM records, {mb:.1} MB");
    println!("raw quick-xml events: {raw:?} ({:.0} MB/s)", rate(raw));
    println!(
        "typed decode:         {typed:?} ({:.0} MB/s, {:.2}x raw)",
        rate(typed),
        typed.as_secs_f64() / raw.as_secs_f64()
    );
    println!(
        "generic Value decode: {generic:?} ({:.0} MB/s, {:.2}x raw)",
        rate(generic),
        generic.as_secs_f64() / raw.as_secs_f64()
    );
    std::fs::write(std::env::temp_dir().join("xo_vm_records.xml"), &bytes).unwrap();
}
