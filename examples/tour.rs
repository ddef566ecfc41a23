//! A tour of the client. With no environment it starts the embedded simulator and, against it:
//! logs in over TLS with a pinned certificate, prints the pool's hosts, VMs and networks,
//! starts a halted VM through an async task with progress, and draws a memory graph from
//! `/rrd_updates`; then builds an object cache and prints the network map and the guest tools
//! report, watches events live while a VM starts and stops, and shows webhook deliveries (a
//! power-state hook, pre/post hooks on `VM.start`, a retried failure) with the delivery log.
//!
//! Against a real host (read-only parts only):
//!   XAPI_URL=https://192.0.2.10 XAPI_USER=root XAPI_PASSWORD=… \
//!   XAPI_FINGERPRINT=AA:BB:… cargo run --example tour
//! Without XAPI_FINGERPRINT the system CA roots are used; to learn the fingerprint of a host
//! that uses XCP-ng's self-signed certificate, run with XAPI_FINGERPRINT=fetch.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use xo_core::client::{fetch_fingerprint, Client, ClientConfig, Fingerprint, RrdQuery, Tls};
use xo_core::model::{
    Host, HostMetrics, Network, Ref, Vm, VmGuestMetrics, VmMetrics, VmPowerState,
};
use xo_core::simulator::{SimConfig, Simulator};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        if e.to_string().contains("UnknownIssuer") {
            eprintln!("hint: a self-signed host? run with XAPI_FINGERPRINT=fetch, then pin it");
        }
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    // Keep the simulator alive for the whole tour.
    let mut _sim = None;
    let (config, user, password, simulated) = match std::env::var("XAPI_URL") {
        Ok(url) => {
            let user = std::env::var("XAPI_USER").unwrap_or_else(|_| "root".into());
            let password =
                std::env::var("XAPI_PASSWORD").map_err(|_| "XAPI_PASSWORD is not set")?;
            let mut config = ClientConfig::new(url.clone()).with_originator("xo-rs tour");
            match std::env::var("XAPI_FINGERPRINT").ok().as_deref() {
                Some("fetch") => {
                    let fp = fetch_fingerprint(&url, Duration::from_secs(10))?;
                    println!("The certificate presented by {url} has SHA-256 fingerprint\n  {fp}");
                    println!("Check it on the host's console, then set XAPI_FINGERPRINT to it.");
                    return Ok(());
                }
                Some(fp) => config = config.with_tls(Tls::Pinned(Fingerprint::parse(fp)?)),
                None => {}
            }
            (config, user, password, false)
        }
        Err(_) => {
            let sim = Simulator::start(SimConfig {
                hosts: 3,
                vms: 8,
                tls: true,
                ..SimConfig::default()
            })?;
            let fp = sim.fingerprint().ok_or("simulator has no certificate")?;
            println!(
                "Embedded XAPI simulator at {} (3 hosts, self-signed certificate)",
                sim.url()
            );
            println!("  pinned SHA-256 fingerprint {fp}\n");
            let config = ClientConfig::new(sim.url())
                .with_fingerprint(&fp)?
                .with_originator("xo-rs tour");
            let (user, password) = sim.credentials();
            _sim = Some(sim);
            (config, user, password, true)
        }
    };

    let client = Client::connect(config, &user, password.as_str())?;
    println!(
        "Logged in as {user} to {} over {:?}\n",
        client.master_url(),
        client.protocol().ok_or("no protocol")?
    );

    let hosts = client.call(Host::get_all_records())?;
    let host_metrics = client.call(HostMetrics::get_all_records())?;
    let vms = client.call(Vm::get_all_records())?;
    let vm_metrics = client.call(VmMetrics::get_all_records())?;
    let guest_metrics = client.call(VmGuestMetrics::get_all_records())?;
    let networks = client.call(Network::get_all_records())?;

    print_hosts(&hosts, &host_metrics);
    print_vms(&vms, &hosts, &vm_metrics, &guest_metrics);
    print_networks(&networks);

    // Start a halted VM (simulator only: the real host is left untouched).
    let mut graph_vm = vms
        .iter()
        .find(|(_, v)| is_guest(v) && v.power_state == VmPowerState::Running)
        .map(|(r, v)| (r.clone(), v.clone()));
    if simulated {
        if let Some((vm_ref, vm)) = vms
            .iter()
            .find(|(_, v)| is_guest(v) && v.power_state == VmPowerState::Halted)
        {
            let task = client.call_async(Vm::start(vm_ref, false, false))?;
            task.wait_with_progress(Duration::from_secs(60), |p| {
                print!(
                    "\rStarting {:<20} {} {:>3.0}%",
                    vm.name_label,
                    bar(p, 30),
                    p * 100.0
                );
                let _ = std::io::stdout().flush();
            })?;
            let state = client.call(Vm::get_power_state(vm_ref))?;
            println!(
                "\rStarting {:<20} {} done: {state}\n",
                vm.name_label,
                bar(1.0, 30)
            );
            let vm = client.call(Vm::get_record(vm_ref))?;
            graph_vm = Some((vm_ref.clone(), vm));
        }
    }

    // Memory graphs from the metrics of the host running the VM.
    if let Some((_, vm)) = graph_vm {
        let host = hosts.get(&vm.resident_on);
        let query = RrdQuery {
            start: -600,
            interval: 5,
            host: true,
            vm_uuids: vec![vm.uuid.clone()],
            host_address: host.map(|h| h.address.clone()),
            ..RrdQuery::default()
        };
        let updates = client.rrd_updates(&query)?;
        if let Some(points) = updates.vm_memory_used(&vm.uuid) {
            graph(
                &format!("Memory used by VM {} (last 10 min)", vm.name_label),
                &points,
            );
        }
        if let Some(h) = host {
            if let Some(points) = updates.host_memory_used(&h.uuid) {
                graph(&format!("Memory used on host {}", h.name_label), &points);
            }
        }
    }

    // Network map, guest tools report and (simulator only) live events, from the object cache.
    xo_examples::events_tour::run(&client, &mut std::io::stdout(), simulated)
        .map_err(|e| e as Box<dyn std::error::Error>)?;

    // Webhooks (simulator only): a local receiver, a power-state hook and pre/post hooks on
    // VM.start, a delivery that fails once and is retried, and the delivery log.
    if simulated {
        println!();
        xo_core::webhooks::tour::run(&client, &mut std::io::stdout())?;
    }

    client.logout()?;
    println!("Logged out.");
    Ok(())
}

fn is_guest(vm: &Vm) -> bool {
    !vm.is_a_template && !vm.is_control_domain && !vm.is_a_snapshot
}

fn gib(bytes: f64) -> String {
    format!("{:.1} GiB", bytes / (1u64 << 30) as f64)
}

/// Prints an aligned table; columns whose header starts with '>' are right-aligned.
fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let right: Vec<bool> = headers.iter().map(|h| h.starts_with('>')).collect();
    let headers: Vec<String> = headers
        .iter()
        .map(|h| h.trim_start_matches('>').to_owned())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if right[i] {
                    format!("{c:>w$}", w = widths[i])
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(&headers);
    for row in &rows {
        line(row);
    }
    println!();
}

fn print_hosts(hosts: &HashMap<Ref<Host>, Host>, metrics: &HashMap<Ref<HostMetrics>, HostMetrics>) {
    let mut list: Vec<&Host> = hosts.values().collect();
    list.sort_by(|a, b| a.name_label.cmp(&b.name_label));
    let rows = list
        .into_iter()
        .map(|h| {
            let m = metrics.get(&h.metrics);
            vec![
                h.name_label.clone(),
                h.address.clone(),
                m.map(|m| gib(m.memory_total as f64))
                    .unwrap_or_else(|| "-".into()),
                m.map(|m| gib(m.memory_free as f64))
                    .unwrap_or_else(|| "-".into()),
                if h.enabled { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    table(&["HOST", "ADDRESS", ">MEMORY", ">FREE", "ENABLED"], rows);
}

fn print_vms(
    vms: &HashMap<Ref<Vm>, Vm>,
    hosts: &HashMap<Ref<Host>, Host>,
    metrics: &HashMap<Ref<VmMetrics>, VmMetrics>,
    guests: &HashMap<Ref<VmGuestMetrics>, VmGuestMetrics>,
) {
    let mut list: Vec<&Vm> = vms.values().filter(|v| is_guest(v)).collect();
    list.sort_by(|a, b| a.name_label.cmp(&b.name_label));
    let rows = list
        .into_iter()
        .map(|v| {
            let memory = metrics
                .get(&v.metrics)
                .map(|m| m.memory_actual)
                .filter(|m| *m > 0)
                .unwrap_or(v.memory_dynamic_max);
            let host = hosts
                .get(&v.resident_on)
                .map(|h| h.name_label.clone())
                .unwrap_or_else(|| "-".into());
            // networks maps "0/ip", "0/ipv4/0", "0/ipv6/0"… to addresses; show each once.
            let mut addresses: Vec<&str> = Vec::new();
            if let Some(g) = guests.get(&v.guest_metrics) {
                for a in g.networks.values() {
                    if !addresses.contains(&a.as_str()) {
                        addresses.push(a);
                    }
                }
            }
            vec![
                v.name_label.clone(),
                v.power_state.to_string(),
                gib(memory as f64),
                v.vcpus_max.to_string(),
                host,
                if addresses.is_empty() {
                    "-".into()
                } else {
                    addresses.join(", ")
                },
            ]
        })
        .collect();
    table(
        &["VM", "POWER", ">MEMORY", ">VCPUS", "HOST", "ADDRESSES"],
        rows,
    );
}

fn print_networks(networks: &HashMap<Ref<Network>, Network>) {
    let mut list: Vec<&Network> = networks.values().collect();
    list.sort_by(|a, b| a.name_label.cmp(&b.name_label));
    let rows = list
        .into_iter()
        .map(|n| {
            vec![
                n.name_label.clone(),
                n.bridge.clone(),
                n.mtu.to_string(),
                n.pifs.len().to_string(),
                n.vifs.len().to_string(),
            ]
        })
        .collect();
    table(&["NETWORK", "BRIDGE", ">MTU", ">PIFS", ">VIFS"], rows);
}

fn bar(fraction: f64, width: usize) -> String {
    let filled = ((fraction.clamp(0.0, 1.0)) * width as f64).round() as usize;
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

/// A small text chart: one column per point, eight rows high, labelled with min and max.
fn graph(title: &str, points: &[(i64, f64)]) {
    println!("{title}");
    if points.is_empty() {
        println!("  (no data yet)\n");
        return;
    }
    const HEIGHT: usize = 8;
    let step = points.len().div_ceil(60).max(1);
    let values: Vec<f64> = points.iter().step_by(step).map(|p| p.1).collect();
    let max = values.iter().cloned().fold(f64::MIN, f64::max);
    let min = values.iter().cloned().fold(f64::MAX, f64::min);
    let (lo, hi) = if max - min < 1.0 {
        (min - 1.0, max + 1.0)
    } else {
        (min, max)
    };
    for row in (0..HEIGHT).rev() {
        let label = match row {
            r if r == HEIGHT - 1 => gib(hi),
            0 => gib(lo),
            _ => String::new(),
        };
        let line: String = values
            .iter()
            .map(|v| {
                let level = (v - lo) / (hi - lo) * (HEIGHT as f64 - 1.0);
                if level.round() as usize >= row {
                    '█'
                } else {
                    ' '
                }
            })
            .collect();
        println!("{label:>10} │{line}");
    }
    println!("{:>10} └{}", "", "─".repeat(values.len()));
    let every = points.get(step).map(|p| p.0 - points[0].0).unwrap_or(0);
    println!(
        "{:>10}  {} points, every {every} s; last {}\n",
        "",
        values.len(),
        gib(values[values.len() - 1])
    );
}
