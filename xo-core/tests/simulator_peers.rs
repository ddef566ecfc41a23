//! Peer fidelity: the official Python `XenAPI` module and XO's `xen-api` npm client against
//! the simulator, over XML-RPC, JSON-RPC and TLS.
//!
//! These need the peers installed (`scripts/install-peers.sh`), so they are `#[ignore]`d by
//! default: run them with `cargo test -p xo-core --test simulator_peers -- --ignored`.
//! `XO_PEER_PYTHON` picks the Python interpreter (default `.peers/venv/bin/python`).
#![cfg(feature = "simulator")]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use xo_core::simulator::{SimConfig, Simulator};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn python() -> PathBuf {
    std::env::var_os("XO_PEER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".peers/venv/bin/python"))
}

/// Writes the certificate where the peer's TLS stack can be told to trust it.
fn ca_file(sim: &Simulator, name: &str) -> Option<PathBuf> {
    let pem = sim.certificate_pem()?;
    let dir = std::env::temp_dir().join(format!("xo-sim-peer-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ca.pem");
    std::fs::write(&path, pem).unwrap();
    Some(path)
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run ({e}); see scripts/install-peers.sh"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains(": ok"),
        "{what}: no success line\n{stdout}\n{stderr}"
    );
}

fn python_peer(tls: bool) {
    let sim = Simulator::start(SimConfig {
        tls,
        task_duration: Duration::from_millis(150),
        ..SimConfig::default()
    })
    .unwrap();
    // XenAPI re-logs in and retries on SESSION_INVALID: make its first real call see one.
    sim.faults()
        .fail_method("VM.get_all", "SESSION_INVALID", &["OpaqueRef:expired"], 1);
    let (u, p) = sim.credentials();
    let mut cmd = Command::new(python());
    cmd.arg(root().join("tests/peers/test_xenapi_peer.py"))
        .env("SIM_URL", sim.url())
        .env("SIM_USER", u)
        .env("SIM_PASSWORD", p);
    if let Some(ca) = ca_file(&sim, "py") {
        cmd.env("SSL_CERT_FILE", ca);
    }
    run(cmd, "python XenAPI peer");
}

fn js_peer(transport: &str, tls: bool) {
    let sim = Simulator::start(SimConfig {
        tls,
        task_duration: Duration::from_millis(150),
        ..SimConfig::default()
    })
    .unwrap();
    let (u, p) = sim.credentials();
    let mut cmd = Command::new("node");
    cmd.current_dir(root().join("tests/peers"))
        .arg("xen-api-peer.mjs")
        .env("SIM_URL", sim.url())
        .env("SIM_USER", u)
        .env("SIM_PASSWORD", p)
        .env("SIM_TRANSPORT", transport)
        .env("SIM_MEMBER_URL", &sim.host_urls()[1]);
    if let Some(ca) = ca_file(&sim, transport) {
        cmd.env("NODE_EXTRA_CA_CERTS", ca);
    }
    run(cmd, &format!("xen-api peer over {transport}"));
}

#[test]
#[ignore = "needs the Python XenAPI peer: scripts/install-peers.sh"]
fn python_xenapi_xml_rpc() {
    python_peer(false);
}

#[test]
#[ignore = "needs the Python XenAPI peer: scripts/install-peers.sh"]
fn python_xenapi_tls() {
    python_peer(true);
}

#[test]
#[ignore = "needs the xen-api npm peer: scripts/install-peers.sh"]
fn js_xen_api_json_rpc() {
    js_peer("json-rpc", false);
}

#[test]
#[ignore = "needs the xen-api npm peer: scripts/install-peers.sh"]
fn js_xen_api_xml_rpc() {
    js_peer("xml-rpc", false);
}

#[test]
#[ignore = "needs the xen-api npm peer: scripts/install-peers.sh"]
fn js_xen_api_auto_tls() {
    js_peer("auto", true);
}
