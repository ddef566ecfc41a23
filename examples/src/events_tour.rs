//! The events part of the tour: network map, guest tools report, then live events while a VM
//! is started and stopped. Call [`run`] with a logged-in client.

use std::io::Write;
use std::time::{Duration, Instant};

use xo_core::client::Client;
use xo_core::events::views::{network_map, tools_report};
use xo_core::events::{Cache, Objects, WatchConfig, WatchEvent, Watcher};
use xo_core::model::{
    Bond, Host, Network, Pif, Pool, Ref, Vif, Vlan, Vm, VmGuestMetrics, VmMetrics, VmPowerState,
};

/// What the views need, by type.
pub fn classes() -> WatchConfig {
    WatchConfig::empty()
        .class::<Host>()
        .class::<Pif>()
        .class::<Network>()
        .class::<Vlan>()
        .class::<Bond>()
        .class::<Vm>()
        .class::<Vif>()
        .class::<VmGuestMetrics>()
        .class::<VmMetrics>()
        .class::<Pool>()
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Prints the network map and tools report from a cache; with `live`, then starts and stops a
/// halted VM while a second watcher prints the events it sees (leave it off on a real pool).
pub fn run(client: &Client, out: &mut dyn Write, live: bool) -> Res<()> {
    let t = Instant::now();
    let config = classes();
    let names = config.classes.clone();
    let cache = Cache::spawn(client.clone(), config.poll_timeout(5.0))?;
    if !cache.wait_ready(Duration::from_secs(30)) {
        return Err("the cache did not get its first listing in 30 s".into());
    }
    {
        let o = cache.read();
        let n: usize = names.iter().map(|c| o.len(c)).sum();
        writeln!(
            out,
            "\n== Object cache: {n} objects of {} classes in {:?}",
            names.len(),
            t.elapsed()
        )?;
        writeln!(out, "\n== Network map\n{}", network_map(&o))?;
        writeln!(out, "== Guest tools\n{}", tools_report(&o))?;
    }
    if !live {
        cache.stop();
        return Ok(());
    }

    // A VM to start: halted, not a template, preferably with a VIF so an address shows up.
    let vm = {
        let o = cache.read();
        pick_halted_vm(&o).ok_or("no halted VM to start")?
    };
    let (vm_ref, vm_name) = vm;
    let token = cache
        .read()
        .token()
        .map(str::to_owned)
        .ok_or("cache has no token")?;

    // A second watcher, resumed from the cache's token so it does not list again.
    let cfg = WatchConfig::empty()
        .class::<Vm>()
        .class::<VmGuestMetrics>()
        .class::<VmMetrics>()
        .poll_timeout(1.0)
        .resume_from(token);
    let watcher = Watcher::new(client.clone(), cfg);
    let stop = watcher.stop_handle();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let printer = std::thread::spawn(move || {
        for item in watcher {
            let line = match item {
                Ok(WatchEvent::Event(e)) => {
                    let vm = e.snapshot.as_ref().and_then(|r| r.get::<Vm>());
                    let what = match vm {
                        Some(vm) => format!("{} power_state={}", vm.name_label, vm.power_state),
                        None => short(&e.ref_).to_string(),
                    };
                    format!("  {:<3} {:<17} {what}", e.op, e.class)
                }
                Ok(WatchEvent::Resync(r)) => format!("  resync: {r:?}"),
                Ok(_) => continue,
                Err(e) => format!("  error (retrying): {e}"),
            };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    writeln!(out, "== Live events while {vm_name} starts and stops")?;
    client.call(Vm::start(&vm_ref, false, false))?;
    let addr = cache.wait_for_guest_ip(&vm_ref, Duration::from_secs(20));
    let running = cache.get(&vm_ref).map(|v| v.power_state.clone());
    drain(&rx, out)?;
    match (addr, running) {
        (Some(a), _) => writeln!(
            out,
            "  -> {vm_name} is running, its guest agent reports {a}"
        )?,
        (None, Some(VmPowerState::Running)) => writeln!(
            out,
            "  -> {vm_name} is running (no guest address within 20 s)"
        )?,
        (None, state) => writeln!(
            out,
            "  -> {vm_name} did not reach Running in 20 s ({state:?})"
        )?,
    }
    client.call(Vm::clean_shutdown(&vm_ref))?;
    let halted = cache.wait_for_power_state(&vm_ref, VmPowerState::Halted, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    drain(&rx, out)?;
    writeln!(
        out,
        "  -> {vm_name} {}",
        if halted {
            "is halted again"
        } else {
            "did not halt in 20 s"
        }
    )?;
    stop.stop();
    let _ = printer.join();
    let s = cache.stats();
    writeln!(
        out,
        "  cache: {} events applied in {} batches, {} resyncs",
        s.events_applied, s.batches_applied, s.resyncs
    )?;
    cache.stop();
    Ok(())
}

fn pick_halted_vm(o: &Objects) -> Option<(Ref<Vm>, String)> {
    let mut vms: Vec<_> = o
        .all::<Vm>()
        .filter(|(_, v)| v.power_state == VmPowerState::Halted)
        .filter(|(_, v)| !(v.is_a_template || v.is_a_snapshot || v.is_control_domain))
        .collect();
    vms.sort_by_key(|(_, v)| (v.vifs.is_empty(), v.name_label.clone()));
    vms.first().map(|(r, v)| (r.clone(), v.name_label.clone()))
}

fn drain(rx: &std::sync::mpsc::Receiver<String>, out: &mut dyn Write) -> std::io::Result<()> {
    std::thread::sleep(Duration::from_millis(200));
    while let Ok(line) = rx.try_recv() {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The tail of a ref, enough to tell objects apart in a live listing.
fn short(r: &str) -> &str {
    r.get(r.len().saturating_sub(8)..).unwrap_or(r)
}
