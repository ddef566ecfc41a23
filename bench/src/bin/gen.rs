//! Writes a synthetic but realistic `VM.get_all_records` reply, twice: as xapi's compact
//! XML-RPC and as a JSON-RPC v2 reply, with the same data. Deterministic for a given seed.
//!
//! The field list and types come from the vendored datamodel (`spec/xenapi.json`), so every VM
//! field the datamodel has is present; the values imitate what a pool of mixed Linux/Windows
//! guests looks like (maps with their usual keys, sets of refs, enums, memory sizes in bytes).
//!
//! Usage: gen [--count 5000] [--seed 1] [--spec ../spec/xenapi.json] [--out out/fixtures]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// A value as the generator builds it, before it is written in either encoding.
enum V {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(String),
    Arr(Vec<V>),
    Map(Vec<(String, V)>),
}

/// splitmix64: tiny, seedable, good enough for fixture data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }
    fn opaque_ref(&mut self) -> V {
        V::Str(format!("OpaqueRef:{}", self.uuid()))
    }
    fn refs(&mut self, n: u64) -> V {
        V::Arr((0..n).map(|_| self.opaque_ref()).collect())
    }
    fn date(&mut self) -> V {
        V::Date(format!(
            "2024{:02}{:02}T{:02}:{:02}:{:02}Z",
            1 + self.below(12),
            1 + self.below(28),
            self.below(24),
            self.below(60),
            self.below(60)
        ))
    }
}

fn s(text: &str) -> V {
    V::Str(text.to_string())
}

fn map(pairs: &[(&str, &str)]) -> V {
    V::Map(pairs.iter().map(|(k, v)| (k.to_string(), s(v))).collect())
}

const NULL: &str = "OpaqueRef:NULL";
const GIB: i64 = 1 << 30;

/// Per-VM choices that several fields depend on.
struct Vm {
    running: bool,
    windows: bool,
    uefi: bool,
    memory: i64,
    vcpus: i64,
}

/// The value of one field: by name where the name says more than the type, else by type.
fn field(rng: &mut Rng, vm: &Vm, name: &str, ty: &str, enums: &HashMap<String, Vec<String>>) -> V {
    let running = vm.running;
    match name {
        "uuid" => V::Str(rng.uuid()),
        "allowed_operations" => {
            let ops = &enums["vm_operations"];
            // A run of distinct operations, as xapi lists them.
            let n = (if running { 10 } else { 6 } + rng.below(6)) as usize;
            let start = rng.below(ops.len() as u64) as usize;
            V::Arr((0..n.min(ops.len())).map(|i| s(&ops[(start + i) % ops.len()])).collect())
        }
        "current_operations" if rng.chance(3) => {
            V::Map(vec![(format!("OpaqueRef:{}", rng.uuid()), s("clean_reboot"))])
        }
        "name_label" => {
            let role = rng.pick(&["web", "db", "cache", "ci-runner", "mail", "dc", "k8s-node", "vpn"]);
            let env = rng.pick(&["prod", "staging", "dev", "lab"]);
            V::Str(format!("{role}-{:03}.{env}", rng.below(1000)))
        }
        "name_description" => s(rng.pick(&[
            "",
            "Installed via xe CLI",
            "Created by Xen Orchestra from template",
            "Backup target – do not delete <important>",
            "Ubuntu 22.04 LTS, managed by Ansible",
        ])),
        "power_state" => s(if running { "Running" } else { "Halted" }),
        "user_version" => V::Int(1),
        "resident_on" | "metrics" | "guest_metrics" | "affinity" if running || name == "metrics" => {
            rng.opaque_ref()
        }
        "memory_overhead" => V::Int(vm.memory / 128 + 8 * (1 << 20)),
        "memory_target" => V::Int(if running { vm.memory } else { 0 }),
        "memory_static_max" | "memory_dynamic_max" | "memory_dynamic_min" => V::Int(vm.memory),
        "memory_static_min" => V::Int(GIB / 2),
        "VCPUs_params" if rng.chance(20) => map(&[("weight", "256"), ("cap", "0")]),
        "VCPUs_max" | "VCPUs_at_startup" => V::Int(vm.vcpus),
        "actions_after_shutdown" => s("destroy"),
        "actions_after_reboot" => s("restart"),
        "actions_after_crash" => s(rng.pick(&["restart", "destroy", "coredump_and_restart"])),
        "consoles" => rng.refs(running as u64),
        "VIFs" => {
            let n = 1 + rng.below(3);
            rng.refs(n)
        }
        "VBDs" => {
            let n = 2 + rng.below(3);
            rng.refs(n)
        }
        "VTPMs" => rng.refs((vm.windows && vm.uefi) as u64),
        "snapshots" => {
            let n = rng.below(4);
            rng.refs(n)
        }
        "PV_args" if !vm.windows => s("console=hvc0 quiet"),
        "HVM_boot_policy" => s("BIOS order"),
        "HVM_boot_params" => {
            map(&[("order", "cdn"), ("firmware", if vm.uefi { "uefi" } else { "bios" })])
        }
        "HVM_shadow_multiplier" => V::Float(1.0),
        "platform" => platform(rng, vm),
        "other_config" => other_config(rng, vm),
        "domid" => V::Int(if running { 1 + rng.below(2000) as i64 } else { -1 }),
        "domarch" => s(if running { "x64" } else { "" }),
        "last_boot_CPU_flags" if running => map(&[
            ("vendor", "GenuineIntel"),
            ("features", "1fcbfbff-f7fa3223-2d93fbff-00000523-0000000f-219c07ab-0040060c-00000000-00101000-bc000400-00000000-00000000-00000000-00000000-00000000-00000000-00000000-00000000-00000000-00000000-00000000-00000000"),
        ]),
        "recommendations" => s(r#"<restrictions><restriction field="memory-static-max" max="137438953472" /><restriction field="vcpus-max" max="32" /><restriction field="has-vendor-device" value="false" /><restriction property="number-of-vbds" max="255" /><restriction property="number-of-vifs" max="7" /></restrictions>"#),
        "xenstore_data" => map(&[
            ("vm-data", ""),
            ("vm-data/mmio-hole-size", "268435456"),
        ]),
        "ha_restart_priority" => s(if rng.chance(30) { "restart" } else { "" }),
        "snapshot_time" => V::Date("19700101T00:00:00Z".into()),
        "tags" => {
            let tags = ["backup:daily", "owner:ops", "tier:1", "pci-dss", "xo:no-bak"];
            V::Arr((0..rng.below(4)).map(|_| s(rng.pick(&tags))).collect())
        }
        "blocked_operations" if rng.chance(10) => map(&[("destroy", "true")]),
        "bios_strings" => bios_strings(rng),
        "hardware_platform_version" => V::Int(2),
        "generation_id" if vm.windows => V::Str(format!("{}:{}", rng.next() >> 1, rng.next() >> 1)),
        "has_vendor_device" => V::Bool(vm.windows),
        "reference_label" => s(if vm.windows { "windows-server-2022-64" } else { "debian-12" }),
        "domain_type" => s("hvm"),
        "NVRAM" if vm.uefi && rng.chance(50) => {
            let blob: String = (0..480).map(|_| rng.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") as char).collect();
            V::Map(vec![("EFI-variables".into(), V::Str(blob + "=="))])
        }
        _ => by_type(rng, ty, enums),
    }
}

/// What the datamodel default would look like for an unremarkable field.
fn by_type(rng: &mut Rng, ty: &str, enums: &HashMap<String, Vec<String>>) -> V {
    match ty {
        "string" => s(""),
        "int" => V::Int(0),
        "float" => V::Float(0.0),
        "bool" => V::Bool(false),
        "datetime" => rng.date(),
        _ if ty.ends_with(" ref") => s(NULL),
        _ if ty.ends_with(" set") => V::Arr(Vec::new()),
        _ if ty.ends_with(" map") => V::Map(Vec::new()),
        _ => {
            let first = ty.strip_prefix("enum ").and_then(|e| enums.get(e)?.first());
            s(first.map_or("", String::as_str))
        }
    }
}

fn platform(rng: &mut Rng, vm: &Vm) -> V {
    let cores = vm.vcpus.min(4).to_string();
    let mut p = vec![
        ("timeoffset", "0"),
        ("device-model", "qemu-upstream-compat"),
        ("videoram", "8"),
        ("hpet", "true"),
        ("secureboot", if vm.uefi { "auto" } else { "false" }),
        ("vga", "std"),
        ("nx", "true"),
        ("pae", "true"),
        ("apic", "true"),
        ("acpi", "1"),
        ("cores-per-socket", cores.as_str()),
    ];
    if vm.windows {
        p.extend([
            ("viridian", "true"),
            ("viridian_time_ref_count", "true"),
            ("viridian_reference_tsc", "true"),
            ("device_id", "0002"),
        ]);
    } else if rng.chance(50) {
        p.push(("viridian", "false"));
    }
    map(&p)
}

fn other_config(rng: &mut Rng, vm: &Vm) -> V {
    let mut m = vec![
        (
            "base_template_name".to_string(),
            s(if vm.windows {
                "Windows Server 2022 (64-bit)"
            } else {
                "Debian Bookworm 12"
            }),
        ),
        ("mac_seed".to_string(), V::Str(rng.uuid())),
        ("import_task".to_string(), rng.opaque_ref()),
        (
            "auto_poweron".to_string(),
            s(if rng.chance(50) { "true" } else { "false" }),
        ),
        ("xo:resource:xva:version".to_string(), s("1.0.0")),
        ("xo:resource:namespace".to_string(), s("pool-a")),
    ];
    if !vm.windows {
        m.push(("linux_template".into(), s("true")));
        m.push(("install-methods".into(), s("cdrom,nfs,http,ftp")));
    }
    if rng.chance(40) {
        m.push((
            format!("xo:{}", &rng.uuid()[..8]),
            s("{\"creation\":{\"user\":\"admin\"}}"),
        ));
    }
    V::Map(m)
}

fn bios_strings(rng: &mut Rng) -> V {
    let serial = rng.uuid();
    map(&[
        ("bios-vendor", "Xen"),
        ("bios-version", ""),
        ("system-manufacturer", "Xen"),
        ("system-product-name", "HVM domU"),
        ("system-version", ""),
        ("system-serial-number", &serial),
        ("hp-rombios", ""),
        ("oem-1", "Xen"),
        (
            "oem-2",
            "MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d",
        ),
    ])
}

/// xapi's XML-RPC writer (rpclib `add_value`, non-strict): untagged strings and ints.
fn write_xml(out: &mut String, v: &V) {
    match v {
        V::Str(t) => {
            out.push_str("<value>");
            escape_xml(out, t);
            out.push_str("</value>");
        }
        V::Int(i) => {
            let _ = write!(out, "<value>{i}</value>");
        }
        V::Float(f) => {
            let _ = write!(out, "<value><double>{f}</double></value>");
        }
        V::Bool(b) => {
            let _ = write!(out, "<value><boolean>{}</boolean></value>", *b as u8);
        }
        V::Date(d) => {
            let _ = write!(
                out,
                "<value><dateTime.iso8601>{d}</dateTime.iso8601></value>"
            );
        }
        V::Arr(items) => {
            out.push_str("<value><array><data>");
            items.iter().for_each(|i| write_xml(out, i));
            out.push_str("</data></array></value>");
        }
        V::Map(members) => {
            out.push_str("<value><struct>");
            for (k, v) in members {
                out.push_str("<member><name>");
                escape_xml(out, k);
                out.push_str("</name>");
                write_xml(out, v);
                out.push_str("</member>");
            }
            out.push_str("</struct></value>");
        }
    }
}

fn escape_xml(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// rpclib's JSON writer: compact, ints as numbers, datetimes as strings.
fn write_json(out: &mut String, v: &V) {
    let quote =
        |out: &mut String, t: &str| out.push_str(&serde_json::to_string(t).unwrap_or_default());
    match v {
        V::Str(t) | V::Date(t) => quote(out, t),
        V::Int(i) => {
            let _ = write!(out, "{i}");
        }
        V::Float(f) => {
            let _ = write!(out, "{f}");
        }
        V::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        V::Arr(items) => {
            out.push('[');
            for (n, i) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_json(out, i);
            }
            out.push(']');
        }
        V::Map(members) => {
            out.push('{');
            for (n, (k, v)) in members.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                quote(out, k);
                out.push(':');
                write_json(out, v);
            }
            out.push('}');
        }
    }
}

struct Args {
    count: usize,
    seed: u64,
    spec: PathBuf,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        count: 5000,
        seed: 1,
        spec: PathBuf::from("../spec/xenapi.json"),
        out: PathBuf::from("out/fixtures"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--count" => args.count = value.parse().map_err(|e| format!("--count: {e}"))?,
            "--seed" => args.seed = value.parse().map_err(|e| format!("--seed: {e}"))?,
            "--spec" => args.spec = value.into(),
            "--out" => args.out = value.into(),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

/// VM fields (name, type) in datamodel order, and the enums the VM class uses.
type Fields = Vec<(String, String)>;
fn load_spec(path: &PathBuf) -> Result<(Fields, HashMap<String, Vec<String>>), String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let classes: serde_json::Value = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    let vm = classes
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "VM"))
        .ok_or("no VM class in the datamodel")?;
    let str_of = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let fields = vm["fields"]
        .as_array()
        .ok_or("VM has no fields")?
        .iter()
        .map(|f| (str_of(&f["name"]), str_of(&f["type"])))
        .collect();
    let enums = vm["enums"]
        .as_array()
        .ok_or("VM has no enums")?
        .iter()
        .map(|e| {
            let values = e["values"]
                .as_array()
                .map(|vs| vs.iter().map(|v| str_of(&v["name"])).collect());
            (str_of(&e["name"]), values.unwrap_or_default())
        })
        .collect();
    Ok((fields, enums))
}

fn main() {
    if let Err(e) = run() {
        eprintln!("gen: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let (fields, enums) = load_spec(&args.spec)?;
    if !enums.contains_key("vm_operations") {
        return Err("datamodel has no vm_operations enum".into());
    }
    let mut rng = Rng(args.seed);
    let mut records = Vec::with_capacity(args.count);
    for _ in 0..args.count {
        let windows = rng.chance(35);
        let vm = Vm {
            running: rng.chance(70),
            windows,
            uefi: windows || rng.chance(30),
            memory: rng.pick(&[1, 2, 4, 8, 16, 32]) * GIB,
            vcpus: rng.pick(&[1, 2, 4, 8]),
        };
        let record = fields
            .iter()
            .map(|(name, ty)| (name.clone(), field(&mut rng, &vm, name, ty, &enums)))
            .collect();
        records.push((format!("OpaqueRef:{}", rng.uuid()), V::Map(record)));
    }
    let all = V::Map(records);

    // Envelopes as xapi writes them (rpclib `add_response`, JSON-RPC v2 `result`).
    let mut xml = String::from("<?xml version=\"1.0\"?><methodResponse><params><param>");
    xml.push_str("<value><struct><member><name>Status</name><value>Success</value></member>");
    xml.push_str("<member><name>Value</name>");
    write_xml(&mut xml, &all);
    xml.push_str("</member></struct></value></param></params></methodResponse>");
    let mut json = String::from("{\"jsonrpc\":\"2.0\",\"result\":");
    write_json(&mut json, &all);
    json.push_str(",\"id\":1}");

    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    for (name, body) in [
        ("vm_get_all_records.xml", &xml),
        ("vm_get_all_records.json", &json),
    ] {
        let path = args.out.join(name);
        std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))?;
        let per = body.len() as f64 / args.count.max(1) as f64;
        println!(
            "{}: {} bytes, {} records, {per:.0} bytes/record",
            path.display(),
            body.len(),
            args.count
        );
    }
    // dxr rejects the `Z` zone suffix xapi writes on every datetime; give it the same reply
    // without it so it can still be timed (noted in the results).
    let no_zone = xml.replace("Z</dateTime.iso8601>", "</dateTime.iso8601>");
    let path = args.out.join("vm_get_all_records.nozone.xml");
    std::fs::write(&path, &no_zone).map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = serde_json::json!({ "records": args.count, "seed": args.seed, "fields": fields.len(),
        "xml_bytes": xml.len(), "json_bytes": json.len(), "nozone_xml_bytes": no_zone.len() });
    std::fs::write(args.out.join("meta.json"), meta.to_string()).map_err(|e| e.to_string())?;
    Ok(())
}
