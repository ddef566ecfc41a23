//! The client against the embedded simulator: both protocols, plain and TLS, typed calls,
//! failure modes from fault injection, tasks and metrics.

use std::time::{Duration, Instant};

use xo_core::client::{Client, ClientConfig, Error, Fingerprint, RrdQuery, Tls, TransportKind};
use xo_core::model::{Host, Vm, VmPowerState};
use xo_core::rpc::Protocol;
use xo_core::simulator::{SimConfig, Simulator};

fn sim(tls: bool) -> Simulator {
    Simulator::start(SimConfig {
        hosts: 3,
        vms: 6,
        tls,
        ..SimConfig::default()
    })
    .expect("simulator")
}

fn config(sim: &Simulator, protocol: Option<Protocol>) -> ClientConfig {
    let mut c = ClientConfig::new(sim.url());
    c.protocol = protocol;
    let c = c
        .with_call_timeout(Duration::from_secs(10))
        .with_probe_timeout(Duration::from_secs(3));
    match sim.fingerprint() {
        Some(fp) => c.with_fingerprint(&fp).expect("fingerprint"),
        None => c.with_plain_http(true),
    }
}

fn connect(sim: &Simulator, protocol: Option<Protocol>) -> Client {
    let (user, password) = sim.credentials();
    Client::connect(config(sim, protocol), &user, password.as_str()).expect("login")
}

fn guests(client: &Client) -> Vec<(xo_core::model::Ref<Vm>, Vm)> {
    let mut v: Vec<_> = client
        .call(Vm::get_all_records())
        .expect("VM.get_all_records")
        .into_iter()
        .filter(|(_, v)| !v.is_a_template && !v.is_control_domain && !v.is_a_snapshot)
        .collect();
    v.sort_by(|a, b| a.1.name_label.cmp(&b.1.name_label));
    v
}

#[test]
fn typed_calls_over_every_protocol_plain_and_tls() {
    for tls in [false, true] {
        let sim = sim(tls);
        for (transport, want) in [
            (Some(Protocol::XmlRpc), Protocol::XmlRpc),
            (Some(Protocol::JsonRpcV2), Protocol::JsonRpcV2),
            (None, Protocol::JsonRpcV2),
        ] {
            let client = connect(&sim, transport);
            assert_eq!(client.protocol(), Some(want));
            let hosts = client.call(Host::get_all_records()).unwrap();
            assert_eq!(hosts.len(), 3, "tls={tls} {transport:?}");
            assert_eq!(guests(&client).len(), 6, "tls={tls} {transport:?}");
            // Failover needs every member's address.
            assert_eq!(client.pool_addresses().len(), 3);
            // The dynamic path sees the same thing as the typed one.
            let all = client.call_value("VM.get_all", vec![]).unwrap();
            assert_eq!(
                all.as_array().unwrap().len(),
                client.call(Vm::get_all()).unwrap().len()
            );
            client.logout().unwrap();
        }
    }
}

#[test]
fn tls_wrong_fingerprint_and_unknown_ca_are_rejected() {
    let sim = sim(true);
    let (user, password) = sim.credentials();
    let wrong = ClientConfig::new(sim.url()).with_tls(Tls::Pinned(Fingerprint::of_der(b"not it")));
    let e = Client::connect(wrong, &user, password.as_str()).unwrap_err();
    assert!(
        matches!(&e, Error::Transport { source, .. } if source.kind == TransportKind::Tls),
        "{e}"
    );
    assert!(e.to_string().contains("fingerprint"), "{e}");

    let system = ClientConfig::new(sim.url()).with_tls(Tls::System);
    let e = Client::connect(system, &user, password.as_str()).unwrap_err();
    assert!(
        matches!(&e, Error::Transport { source, .. } if source.kind == TransportKind::Tls),
        "{e}"
    );

    // The fingerprint fetched on first use is the simulator's.
    let addr = sim.url().trim_start_matches("https://").to_owned();
    let fetched = xo_core::client::fetch_fingerprint(&addr, Duration::from_secs(5)).unwrap();
    assert_eq!(
        fetched,
        Fingerprint::parse(&sim.fingerprint().unwrap()).unwrap()
    );
}

#[test]
fn session_expiry_mid_run_logs_in_again() {
    for transport in [Some(Protocol::XmlRpc), Some(Protocol::JsonRpcV2)] {
        let sim = sim(false);
        let client = connect(&sim, transport);
        let before = client.session_ref().unwrap();
        sim.faults().expire_sessions();
        assert_eq!(client.call(Host::get_all_records()).unwrap().len(), 3);
        assert_ne!(client.session_ref().unwrap(), before);
    }
}

#[test]
fn master_switch_mid_run_is_followed() {
    for transport in [Some(Protocol::XmlRpc), Some(Protocol::JsonRpcV2)] {
        let sim = sim(false);
        let client = connect(&sim, transport);
        assert!(sim.faults().switch_master(2));
        assert_eq!(guests(&client).len(), 6);
        assert_eq!(
            client.master_url().as_str().trim_end_matches('/'),
            sim.host_urls()[2]
        );
    }
}

#[test]
fn login_on_a_member_lands_on_the_master() {
    let sim = sim(false);
    let (user, password) = sim.credentials();
    let member = ClientConfig::new(sim.host_urls()[1].clone()).with_plain_http(true);
    let client = Client::connect(member, &user, password.as_str()).unwrap();
    assert_eq!(
        client.master_url().as_str().trim_end_matches('/'),
        sim.url()
    );

    // Emergency access to a member: a slave-local session, not redirected.
    let member = ClientConfig::new(sim.host_urls()[1].clone()).with_plain_http(true);
    let local = Client::new(member).unwrap();
    local
        .slave_local_login_with_password(&user, password.as_str())
        .unwrap();
    assert_eq!(
        local.master_url().as_str().trim_end_matches('/'),
        sim.host_urls()[1]
    );
    local.logout().unwrap();
}

#[test]
fn dropped_connections_and_http_errors() {
    let sim = sim(false);
    let client = connect(&sim, Some(Protocol::XmlRpc));
    // A dropped connection under a read is resent.
    sim.faults().drop_connections(1);
    assert_eq!(client.call(Host::get_all_records()).unwrap().len(), 3);
    // HTTP 503 is reported with its status and method, then the next call works.
    sim.faults().http_status(503, 1);
    let e = client.call(Host::get_all()).unwrap_err();
    assert!(
        matches!(&e, Error::Http { status: 503, method, .. } if method == "host.get_all"),
        "{e}"
    );
    assert_eq!(client.call(Host::get_all()).unwrap().len(), 3);
    // A dropped connection under a write is not resent blindly: a clear transport error.
    let (vm, _) = guests(&client).remove(0);
    sim.faults().drop_connections(1);
    let e = client.call(Vm::set_name_label(&vm, "renamed")).unwrap_err();
    assert!(
        matches!(&e, Error::Transport { method, .. } if method == "VM.set_name_label"),
        "{e}"
    );
}

#[test]
fn api_errors_are_typed_and_latency_hits_the_deadline() {
    let sim = sim(false);
    let client = connect(&sim, Some(Protocol::JsonRpcV2));
    sim.faults()
        .fail_method("host.get_all", "HOST_OFFLINE", &["OpaqueRef:h"], 1);
    let e = client.call(Host::get_all()).unwrap_err();
    assert_eq!(e.api_code(), Some("HOST_OFFLINE"));
    assert_eq!(e.method(), "host.get_all");
    assert!(e.typed().is_some());

    sim.faults().set_latency(Duration::from_secs(3));
    let t = Instant::now();
    let e = client
        .call_with_timeout(Host::get_all(), Duration::from_millis(500))
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn async_start_with_progress_then_metrics() {
    for transport in [Some(Protocol::XmlRpc), Some(Protocol::JsonRpcV2)] {
        let sim = sim(false);
        let client = connect(&sim, transport);
        let (vm, _) = guests(&client)
            .into_iter()
            .find(|(_, v)| v.power_state == VmPowerState::Halted)
            .expect("a halted VM");
        let task = client.call_async(Vm::start(&vm, false, false)).unwrap();
        let mut seen = Vec::new();
        task.wait_with_progress(Duration::from_secs(20), |p| seen.push(p))
            .unwrap();
        assert!(!seen.is_empty());
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert_eq!(
            client.call(Vm::get_power_state(&vm)).unwrap(),
            VmPowerState::Running
        );
        // Starting it again fails with the typed error, through the task.
        let task = client.call_async(Vm::start(&vm, false, false)).unwrap();
        let e = task.wait(Duration::from_secs(20)).unwrap_err();
        assert_eq!(e.api_code(), Some("VM_BAD_POWER_STATE"), "{e}");

        // Metrics of the host the VM now runs on.
        let rec = client.call(Vm::get_record(&vm)).unwrap();
        assert_eq!(rec.power_state, VmPowerState::Running);
        let host = client.call(Host::get_record(&rec.resident_on)).unwrap();
        let query = RrdQuery {
            vm_uuids: vec![rec.uuid.clone()],
            host_address: Some(host.address.clone()),
            ..RrdQuery::default()
        };
        let updates = client.rrd_updates(&query).unwrap();
        let host_used = updates
            .host_memory_used(&host.uuid)
            .expect("host memory series");
        assert!(!host_used.is_empty());
        assert!(host_used.iter().all(|(_, v)| *v >= 0.0));
        let json = client
            .rrd_updates(&RrdQuery {
                json: true,
                ..query
            })
            .unwrap();
        assert_eq!(json.series.len(), updates.series.len());
    }
}

#[test]
fn async_cancel() {
    let sim = Simulator::start(SimConfig {
        hosts: 1,
        vms: 6,
        task_duration: Duration::from_secs(30),
        ..SimConfig::default()
    })
    .unwrap();
    let client = connect(&sim, Some(Protocol::XmlRpc));
    let (vm, _) = guests(&client)
        .into_iter()
        .find(|(_, v)| v.power_state == VmPowerState::Halted)
        .expect("a halted VM");
    let task = client.call_async(Vm::start(&vm, false, false)).unwrap();
    // Not done within a short wait: a timeout, task left running.
    let e = task.wait(Duration::from_millis(300)).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    task.cancel().unwrap();
    let t = Instant::now();
    let e = task.wait(Duration::from_secs(10)).unwrap_err();
    assert!(matches!(e, Error::TaskCancelled { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
}
