//! The watcher and cache against the simulator: in-process (the client over `Simulator::transport`) and over HTTP with the
//! client, through a long seeded random sequence of changes with session expiry, dropped
//! connections, lost events, rejected tokens and master switches; then the views on the
//! simulator's default inventory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use xo_core::client::{Client, ClientConfig};
use xo_core::events::views::{network_map, tools_report, Verdict};
use xo_core::events::{Cache, Objects, WatchConfig};
use xo_core::model::{Struct, Value};
use xo_core::simulator::{SimConfig, Simulator};

const CLASSES: [&str; 6] = ["VM", "VIF", "VBD", "network", "VDI", "message"];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn s(x: &str) -> Value {
    Value::from(x)
}

fn rec(pairs: &[(&str, Value)]) -> Value {
    Value::Struct(Struct(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    ))
}

fn cached(o: &Objects) -> BTreeMap<String, BTreeMap<String, Value>> {
    CLASSES
        .iter()
        .map(|c| {
            (
                c.to_string(),
                o.objects(c)
                    .map(|x| (x.ref_.clone(), x.value().clone()))
                    .collect(),
            )
        })
        .collect()
}

/// Checker calls ride out the faults injected for the watcher under test (dropped
/// connections are shared by every client of the simulator).
trait Ask {
    fn ask(&self, method: &str, params: Vec<Value>) -> xo_core::client::Result<Value>;
}

impl Ask for xo_core::client::Client {
    fn ask(&self, method: &str, params: Vec<Value>) -> xo_core::client::Result<Value> {
        let mut tries = 0;
        loop {
            match self.call_value(method, params.clone()) {
                Err(e) if tries < 5 && matches!(e, xo_core::client::Error::Transport { .. }) => {
                    tries += 1;
                }
                other => return other,
            }
        }
    }
}

fn truth(src: &xo_core::client::Client) -> BTreeMap<String, BTreeMap<String, Value>> {
    CLASSES
        .iter()
        .map(|c| {
            (
                c.to_string(),
                match src.ask(&format!("{c}.get_all_records"), vec![]).unwrap() {
                    // Decoded as the cache decodes them: typed classes compare in wire form.
                    Value::Struct(s) => {
                        s.0.into_iter()
                            .map(|(r, v)| (r, xo_core::events::Record::decode(c, v).to_value()))
                            .collect()
                    }
                    other => panic!("{c}.get_all_records: {other:?}"),
                },
            )
        })
        .collect()
}

fn refs(src: &xo_core::client::Client, class: &str) -> Vec<String> {
    let v = src.ask(&format!("{class}.get_all"), vec![]).unwrap();
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    out.sort();
    out
}

/// Random changes through `src` (ignoring refusals such as destroying a running VM's disk).
/// Faults go through `faults` every ~20 operations when `fault` is set; returns how many.
fn random_ops(
    sim: &Simulator,
    src: &xo_core::client::Client,
    rng: &mut Rng,
    n: usize,
    fault: impl Fn(&mut Rng),
) -> usize {
    let mut faults = 0;
    let sr = refs(src, "SR").into_iter().find(|r| {
        src.ask("SR.get_name_label", vec![s(r)])
            .ok()
            .and_then(|v| v.as_str().map(|x| x == "NFS VM storage"))
            == Some(true)
    });
    let template = src
        .ask("VM.get_by_name_label", vec![s("build-01")])
        .unwrap()
        .as_array()
        .unwrap()[0]
        .clone();
    for i in 0..n {
        let seq = format!("{i}");
        let pick =
            |rng: &mut Rng, v: Vec<String>| v.get(rng.below(v.len() as u64) as usize).cloned();
        let _ = match rng.below(12) {
            0 | 1 => src.ask(
                "network.create",
                vec![rec(&[
                    ("name_label", s(&format!("net-{i}"))),
                    ("MTU", Value::Int(1500)),
                    ("other_config", rec(&[("seq", s(&seq))])),
                ])],
            ),
            2 => match pick(rng, refs(src, "network")) {
                Some(r) => src.ask("network.set_name_description", vec![s(&r), s(&seq)]),
                None => Ok(Value::Nil),
            },
            3 => match pick(
                rng,
                refs(src, "network")
                    .into_iter()
                    .filter(|r| {
                        src.ask("network.get_name_label", vec![s(r)])
                            .ok()
                            .and_then(|v| v.as_str().map(|x| x.starts_with("net-")))
                            == Some(true)
                    })
                    .collect(),
            ) {
                Some(r) => src.ask("network.destroy", vec![s(&r)]),
                None => Ok(Value::Nil),
            },
            4 | 5 => match pick(rng, refs(src, "VM")) {
                Some(r) => src.ask("VM.set_name_description", vec![s(&r), s(&seq)]),
                None => Ok(Value::Nil),
            },
            6 => src.ask("VM.clone", vec![template.clone(), s(&format!("clone-{i}"))]),
            7 => match pick(
                rng,
                refs(src, "VM")
                    .into_iter()
                    .filter(|r| {
                        src.ask("VM.get_name_label", vec![s(r)])
                            .ok()
                            .and_then(|v| v.as_str().map(|x| x.starts_with("clone-")))
                            == Some(true)
                    })
                    .collect(),
            ) {
                Some(r) => src.ask("VM.destroy", vec![s(&r)]),
                None => Ok(Value::Nil),
            },
            8 => match &sr {
                Some(sr) => src.ask(
                    "VDI.create",
                    vec![rec(&[
                        ("SR", s(sr)),
                        ("name_label", s(&format!("vdi-{i}"))),
                        ("virtual_size", Value::Int(1 << 30)),
                        ("type", s("user")),
                        ("sharable", Value::Bool(false)),
                        ("read_only", Value::Bool(false)),
                        ("other_config", rec(&[])),
                    ])],
                ),
                None => Ok(Value::Nil),
            },
            9 => match pick(
                rng,
                refs(src, "VDI")
                    .into_iter()
                    .filter(|r| {
                        src.ask("VDI.get_name_label", vec![s(r)])
                            .ok()
                            .and_then(|v| v.as_str().map(|x| x.starts_with("vdi-")))
                            == Some(true)
                    })
                    .collect(),
            ) {
                Some(r) => src.ask("VDI.destroy", vec![s(&r)]),
                None => Ok(Value::Nil),
            },
            10 => src.ask(
                "message.create",
                vec![
                    s(&format!("BENCH_{i}")),
                    Value::Int(3),
                    s("Pool"),
                    s(""),
                    s(&seq),
                ],
            ),
            _ => match pick(rng, refs(src, "message")) {
                Some(r) => src.ask("message.destroy", vec![s(&r)]),
                None => Ok(Value::Nil),
            },
        };
        if rng.below(20) == 0 {
            faults += 1;
            fault(rng);
        }
        // Let the watcher see many small batches, not one big one.
        if rng.below(8) == 0 {
            std::thread::sleep(Duration::from_millis(3));
        }
    }
    let _ = sim;
    faults
}

fn sim_faults(sim: &Simulator, rng: &mut Rng, http: bool) {
    let f = sim.faults();
    match rng.below(if http { 6 } else { 5 }) {
        0 => f.expire_sessions(),
        1 => {
            f.switch_master(rng.below(2) as usize);
        }
        2 => f.fail_method("event.from", "EVENTS_LOST", &[], 1),
        3 => f.fail_method("event.from", "EVENT_FROM_TOKEN_PARSE_FAILURE", &["x"], 1),
        4 => f.fail_method("event.from", "INTERNAL_ERROR", &["injected"], 1),
        _ => f.drop_connections(2),
    }
}

fn cfg() -> WatchConfig {
    WatchConfig::new(CLASSES)
        .poll_timeout(0.5)
        .backoff(Duration::from_millis(5), Duration::from_millis(100))
}

fn check(c: &Cache, checker: &xo_core::client::Client, what: &str) {
    let mut want = truth(checker);
    let ok = c.wait_until(Duration::from_secs(30), |o| {
        let got = cached(o);
        if got != want {
            want = truth(checker);
        }
        got == want
    });
    let stats = c.stats();
    assert!(ok, "{what}: cache diverged from get_all_records; {stats:?}");
}

#[test]
fn in_process_cache_matches_listing_under_faults() {
    let sim = Arc::new(
        Simulator::start(SimConfig {
            serve: false,
            ..SimConfig::default()
        })
        .unwrap(),
    );
    let src = sim.connect().unwrap();
    let checker = sim.connect().unwrap();
    let c = Cache::spawn(src, cfg()).unwrap();
    assert!(c.wait_ready(Duration::from_secs(10)));
    check(&c, &checker, "after listing");
    let mut rng = Rng(0x5EED_0001);
    let n = random_ops(&sim, &checker, &mut rng, 400, |rng| {
        sim_faults(&sim, rng, false);
    });
    assert!(n >= 10, "{n} faults");
    sim.faults().clear();
    check(&c, &checker, "after 400 random operations");
    assert!(c.stats().events_applied > 100, "{:?}", c.stats());
    c.stop();
}

#[test]
fn http_cache_matches_listing_under_faults() {
    let sim = Arc::new(Simulator::start(SimConfig::default()).unwrap());
    let (user, password) = sim.credentials();
    let client = Client::connect(
        ClientConfig::new(sim.url().as_str()).with_plain_http(true),
        &user,
        password,
    )
    .unwrap();
    let checker = sim.connect().unwrap();
    // Compared through the same wire path (dateTimes arrive as strings over HTTP).
    let reader = client.clone();
    let c = Cache::spawn(client, cfg()).unwrap();
    assert!(c.wait_ready(Duration::from_secs(10)));
    let mut rng = Rng(0x5EED_0002);
    let n = random_ops(&sim, &checker, &mut rng, 300, |rng| {
        sim_faults(&sim, rng, true);
    });
    assert!(n >= 8, "{n} faults");
    sim.faults().clear();
    check(&c, &reader, "over HTTP after 300 random operations");
    let stats = c.stats();
    assert!(stats.events_applied > 30, "{stats:?}");
    c.stop();
}

#[test]
fn views_on_the_default_inventory() {
    let sim = Arc::new(
        Simulator::start(SimConfig {
            serve: false,
            ..SimConfig::default()
        })
        .unwrap(),
    );
    let src = sim.connect().unwrap();
    let checker = sim.connect().unwrap();
    let classes = [
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
    let c = Cache::spawn(src, WatchConfig::new(classes).poll_timeout(0.5)).unwrap();
    assert!(c.wait_ready(Duration::from_secs(10)));
    let o = c.read();
    let map = network_map(&o);
    assert_eq!(map.hosts.len(), 2);
    for h in &map.hosts {
        let mut tags: Vec<(i64, String)> = h
            .pifs
            .iter()
            .filter_map(|p| Some((p.vlan?, p.vlan_on.clone()?)))
            .collect();
        tags.sort();
        assert_eq!(
            tags,
            vec![
                (10, "eth1".to_string()),
                (20, "eth1".to_string()),
                (30, "eth1".to_string())
            ],
            "{}",
            h.host
        );
        assert_eq!(h.pifs.iter().filter(|p| p.management).count(), 1);
    }
    // Every guest address in the map is the one the VM's guest metrics give for that VIF's
    // device, read straight from the simulator.
    let mut joined = 0;
    for n in &map.networks {
        for a in &n.vms {
            let gm = checker
                .ask("VM.get_guest_metrics", vec![s(a.vm_ref.as_str())])
                .unwrap();
            let want: Vec<String> = match checker.ask("VM_guest_metrics.get_networks", vec![gm]) {
                Ok(Value::Struct(m)) => {
                    let mut v4: Vec<(String, String)> = m
                        .iter()
                        .filter(|(k, _)| k.starts_with(&format!("{}/ipv4/", a.vif_device)))
                        .map(|(k, v)| (k.to_owned(), v.as_str().unwrap().to_owned()))
                        .collect();
                    v4.sort();
                    v4.into_iter().map(|(_, v)| v).collect()
                }
                _ => vec![],
            };
            let got: Vec<String> = a
                .addresses
                .iter()
                .filter(|x| x.is_ipv4())
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, want, "{} on {}", a.vm, n.network);
            joined += usize::from(!got.is_empty());
        }
    }
    assert!(joined >= 3, "{joined} VMs with addresses");
    // Every VIF of every VM sits under its network in the map, with its device.
    let mut attached = 0;
    for n in &map.networks {
        for a in &n.vms {
            let vifs = checker
                .ask("VM.get_VIFs", vec![s(a.vm_ref.as_str())])
                .unwrap();
            let on_net = vifs.as_array().unwrap().iter().any(|vif| {
                checker
                    .ask("VIF.get_network", vec![vif.clone()])
                    .unwrap()
                    .as_str()
                    == Some(n.network_ref.as_str())
                    && checker
                        .ask("VIF.get_device", vec![vif.clone()])
                        .unwrap()
                        .as_str()
                        == Some(a.vif_device.as_str())
            });
            assert!(on_net, "{} listed on {}", a.vm, n.network);
            attached += 1;
        }
    }
    assert_eq!(attached, 6, "one VIF per guest VM; templates left out");
    assert!(map
        .networks
        .iter()
        .any(|n| n.network.starts_with("VLAN ") && !n.vms.is_empty()));

    // The inventory's one VM without tools is flagged; the others follow their power state.
    let r = tools_report(&o);
    for row in &r.vms {
        let power = checker
            .ask("VM.get_power_state", vec![s(row.vm_ref.as_str())])
            .unwrap();
        let want = match (power.as_str(), row.vm.as_str()) {
            (Some("Halted"), _) => Verdict::Halted,
            (_, "legacy-01") => Verdict::NeedsToolsIso,
            _ => Verdict::Ok,
        };
        assert_eq!(row.verdict, want, "{}", row.vm);
        assert_eq!(row.pv_drivers.is_some(), want == Verdict::Ok, "{}", row.vm);
    }
    assert_eq!(
        r.needing_attention()
            .map(|x| x.vm.as_str())
            .collect::<Vec<_>>(),
        vec!["legacy-01"]
    );
    assert_eq!(r.vms.len(), 6, "templates and control domains left out");
}

#[test]
fn typed_events_and_cached_records_decode_into_generated_types() {
    use xo_core::events::{WatchEvent, Watcher};
    use xo_core::model::{Vm, VmPowerState};
    let sim = Arc::new(
        Simulator::start(SimConfig {
            serve: false,
            ..SimConfig::default()
        })
        .unwrap(),
    );
    let src = sim.connect().unwrap();
    let checker = sim.connect().unwrap();
    let c = Cache::spawn(
        sim.connect().unwrap(),
        WatchConfig::new(["VM"]).poll_timeout(0.5),
    )
    .unwrap();
    assert!(c.wait_ready(Duration::from_secs(10)));
    let mut w = Watcher::new(src, WatchConfig::new(["VM"]).poll_timeout(0.5));
    for item in w.by_ref() {
        if matches!(item.unwrap(), WatchEvent::InitDone { .. }) {
            break;
        }
    }
    let vm = checker
        .ask("VM.get_by_name_label", vec![s("build-01")])
        .unwrap()
        .as_array()
        .unwrap()[0]
        .clone();
    checker
        .ask(
            "VM.start",
            vec![vm.clone(), Value::Bool(false), Value::Bool(false)],
        )
        .unwrap();
    let ev = loop {
        if let WatchEvent::Event(e) = w.next().unwrap().unwrap() {
            if e.ref_ == vm.as_str().unwrap() {
                break e;
            }
        }
    };
    let t = ev
        .typed::<Vm>()
        .expect("a VM event")
        .expect("decodes into Vm");
    let snap = t.snapshot.unwrap();
    assert_eq!(
        (snap.name_label.as_str(), snap.power_state.clone()),
        ("build-01", VmPowerState::Running)
    );
    let r: xo_core::model::Ref<Vm> = xo_core::model::Ref::new(vm.as_str().unwrap());
    let typed = c.wait_for(Duration::from_secs(5), |o| {
        o.get_arc(&r)
            .filter(|v| v.power_state == VmPowerState::Running)
    });
    assert_eq!(
        typed.map(|v| v.name_label.clone()).as_deref(),
        Some("build-01")
    );
    c.stop();
}
