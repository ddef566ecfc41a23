//! The bonded host of the default inventory, through the raw API and through the event cache
//! and its network map view.
#![cfg(feature = "simulator")]

use std::sync::Arc;
use std::time::Duration;

use xo_core::events::views::network_map;
use xo_core::events::{Cache, WatchConfig};
use xo_core::model::Value;
use xo_core::simulator::{SimConfig, Simulator};

fn s(v: &str) -> Value {
    Value::from(v)
}

fn sim(hosts: usize) -> (Simulator, Value) {
    let sim = Simulator::start(SimConfig {
        hosts,
        serve: false,
        ..SimConfig::default()
    })
    .unwrap();
    let (u, p) = sim.credentials();
    let sess = sim
        .dispatch("session.login_with_password", vec![s(&u), s(&p)])
        .unwrap();
    (sim, sess)
}

fn call(sim: &Simulator, sess: &Value, m: &str, mut p: Vec<Value>) -> Value {
    p.insert(0, sess.clone());
    sim.dispatch(m, p).unwrap_or_else(|e| panic!("{m}: {e}"))
}

fn get(sim: &Simulator, sess: &Value, class: &str, f: &str, r: &Value) -> Value {
    call(sim, sess, &format!("{class}.get_{f}"), vec![r.clone()])
}

#[test]
fn the_last_host_has_a_bond() {
    for hosts in [1, 2, 3] {
        let (sim, sess) = sim(hosts);
        let bonds = call(&sim, &sess, "Bond.get_all", vec![]);
        let bonds = bonds.as_array().unwrap();
        assert_eq!(bonds.len(), 1, "{hosts} hosts");
        let bond = &bonds[0];
        let master = get(&sim, &sess, "Bond", "master", bond);
        let host = get(&sim, &sess, "PIF", "host", &master);
        let name = get(&sim, &sess, "host", "name_label", &host);
        assert_eq!(name, s(&format!("xcp-ng-{hosts:02}")));
        assert_eq!(get(&sim, &sess, "PIF", "device", &master), s("bond0"));
        assert_eq!(
            get(&sim, &sess, "PIF", "physical", &master),
            Value::Bool(false)
        );
        assert_eq!(
            get(&sim, &sess, "PIF", "bond_master_of", &master),
            Value::Array(vec![bond.clone()])
        );
        let net = get(&sim, &sess, "PIF", "network", &master);
        assert_eq!(
            get(&sim, &sess, "network", "name_label", &net),
            s("Bond 3+4")
        );
        assert_eq!(
            get(&sim, &sess, "network", "PIFs", &net),
            Value::Array(vec![master.clone()])
        );
        let slaves = get(&sim, &sess, "Bond", "slaves", bond);
        let mut devices: Vec<String> = slaves
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                assert_eq!(get(&sim, &sess, "PIF", "host", p), host);
                assert_eq!(get(&sim, &sess, "PIF", "physical", p), Value::Bool(true));
                assert_eq!(get(&sim, &sess, "PIF", "bond_slave_of", p), *bond);
                assert_eq!(
                    get(&sim, &sess, "PIF", "currently_attached", p),
                    Value::Bool(false)
                );
                get(&sim, &sess, "PIF", "device", p)
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        devices.sort();
        assert_eq!(devices, ["eth3", "eth4"]);
        let primary = get(&sim, &sess, "Bond", "primary_slave", bond);
        assert!(slaves.as_array().unwrap().contains(&primary));
        assert_eq!(
            get(&sim, &sess, "PIF", "MAC", &master),
            get(&sim, &sess, "PIF", "MAC", &primary)
        );
    }
}

#[test]
fn the_network_map_shows_the_bond() {
    let sim = Arc::new(
        Simulator::start(SimConfig {
            serve: false,
            ..SimConfig::default()
        })
        .unwrap(),
    );
    let src = sim.connect().unwrap();
    let classes = ["host", "PIF", "network", "VLAN", "Bond", "VM", "VIF"];
    let c = Cache::spawn(src, WatchConfig::new(classes).poll_timeout(0.5)).unwrap();
    assert!(c.wait_ready(Duration::from_secs(10)));
    let map = network_map(&c.read());
    let with_bond: Vec<_> = map
        .hosts
        .iter()
        .filter(|h| h.pifs.iter().any(|p| p.bond.is_some()))
        .collect();
    assert_eq!(with_bond.len(), 1);
    let h = with_bond[0];
    assert_eq!(h.host, "xcp-ng-02");
    let bond_of = |device: &str| {
        h.pifs
            .iter()
            .find(|p| p.device == device)
            .and_then(|p| p.bond.as_ref().map(ToString::to_string))
    };
    assert_eq!(
        bond_of("bond0").as_deref(),
        Some("bond of eth3+eth4 (active-backup)")
    );
    assert_eq!(bond_of("eth3").as_deref(), Some("in bond0"));
    assert_eq!(bond_of("eth4").as_deref(), Some("in bond0"));
    let master = h.pifs.iter().find(|p| p.device == "bond0").unwrap();
    assert_eq!(master.network, "Bond 3+4");
    c.stop();
}
