//! The events part of the tour: network map, guest tools report, then live events while a VM
//! is started and stopped. Call [`run`] with a logged-in client.

use std::io::Write;
use std::time::{Duration, Instant};

use xo_core::client::Client;
use xo_core::events::views::{network_map, tools_report};
use xo_core::events::{Cache, Objects, WatchConfig, WatchEvent, Watcher};
use xo_core::model::Value;

/// Classes the views need.
pub const CLASSES: [&str; 10] = [
    "host",
    "PIF",
    "network",
    "VLAN",
    "Bond",
    "VM",
    "VIF",
    "VM_guest_metrics",
    "VM_metrics",
    "pool",
];

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Prints the network map and tools report from a cache; with `live`, then starts and stops a
/// halted VM while a second watcher prints the events it sees (leave it off on a real pool).
pub fn run(client: &Client, out: &mut dyn Write, live: bool) -> Res<()> {
    let t = Instant::now();
    let cache = Cache::spawn(client.clone(), WatchConfig::new(CLASSES).poll_timeout(5.0))?;
    if !cache.wait_ready(Duration::from_secs(30)) {
        return Err("the cache did not get its first listing in 30 s".into());
    }
    {
        let o = cache.read();
        let n: usize = CLASSES.iter().map(|c| o.len(c)).sum();
        writeln!(
            out,
            "\n== Object cache: {n} objects of {} classes in {:?}",
            CLASSES.len(),
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
    let cfg = WatchConfig::new(["VM", "VM_guest_metrics", "VM_metrics"])
        .poll_timeout(1.0)
        .resume_from(token);
    let watcher = Watcher::new(client.clone(), cfg);
    let stop = watcher.stop_handle();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let printer = std::thread::spawn(move || {
        for item in watcher {
            let line = match item {
                Ok(WatchEvent::Event(e)) => {
                    let s = e.snapshot.as_ref();
                    let field = |f: &str| {
                        s.and_then(|v| v.get(f))
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned()
                    };
                    let what = match e.class.as_str() {
                        "VM" => format!(
                            "{} power_state={}",
                            field("name_label"),
                            field("power_state")
                        ),
                        _ => short(&e.ref_).to_string(),
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
    client.call_value(
        "VM.start",
        vec![vm_ref.as_str().into(), false.into(), false.into()],
    )?;
    let addr = cache.wait_for(Duration::from_secs(20), |o| {
        let vm = o.get("VM", &vm_ref)?;
        if vm.str("power_state") != Some("Running") {
            return None;
        }
        let gm = o.vm_guest_metrics(vm)?;
        gm.map("networks")
            .into_iter()
            .find(|(k, _)| k.contains("/ipv4/") || k.ends_with("/ip"))
            .map(|(_, a)| a.to_owned())
    });
    let running = cache
        .read()
        .get("VM", &vm_ref)
        .and_then(|v| v.str("power_state").map(str::to_owned));
    drain(&rx, out)?;
    match (addr, running.as_deref()) {
        (Some(a), _) => writeln!(
            out,
            "  -> {vm_name} is running, its guest agent reports {a}"
        )?,
        (None, Some("Running")) => writeln!(
            out,
            "  -> {vm_name} is running (no guest address within 20 s)"
        )?,
        (None, state) => writeln!(
            out,
            "  -> {vm_name} did not reach Running in 20 s ({state:?})"
        )?,
    }
    client.call_value("VM.clean_shutdown", vec![vm_ref.as_str().into()])?;
    let halted = cache.wait_until(Duration::from_secs(20), |o| {
        o.get("VM", &vm_ref).and_then(|v| v.str("power_state")) == Some("Halted")
    });
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

fn pick_halted_vm(o: &Objects) -> Option<(String, String)> {
    let mut vms: Vec<_> = o
        .all("VM")
        .filter(|v| v.str("power_state") == Some("Halted"))
        .filter(|v| {
            !["is_a_template", "is_a_snapshot", "is_control_domain"]
                .iter()
                .any(|f| v.bool(f) == Some(true))
        })
        .collect();
    vms.sort_by_key(|v| (v.strs("VIFs").is_empty(), v.name_label().to_owned()));
    vms.first()
        .map(|v| (v.ref_.clone(), v.name_label().to_owned()))
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
