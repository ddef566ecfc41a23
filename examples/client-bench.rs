//! Client benchmark, one run, same simulator: calls per second for a small call
//! (`pool.get_all`) and the time of `VM.get_all_records`, for this client (XML-RPC and
//! JSON-RPC), the official Python `XenAPI` module and XO's `xen-api` npm client.
//!
//!   bench/client/run.sh            # installs the peers, then runs this in release mode
//!   cargo run --release --example client-bench -- [VMS] [SMALL_CALLS] [RUNS]
//!
//! Peers are skipped (with a note) when `.peers/venv` or `bench/client/node_modules` is
//! missing. The simulator serves plain HTTP here so that TLS costs do not blur the codecs.

use std::process::Command;
use std::time::{Duration, Instant};

use xo_core::client::{Client, ClientConfig};
use xo_core::model::Vm;
use xo_core::rpc::Call;
use xo_core::rpc::Protocol;
use xo_core::simulator::{SimConfig, Simulator};

struct Row {
    client: String,
    small_calls_per_s: f64,
    get_all_records_ms: f64,
    vms: usize,
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let vms = args.first().copied().unwrap_or(3000);
    let small = args.get(1).copied().unwrap_or(2000);
    let runs = args.get(2).copied().unwrap_or(5);

    let sim = match Simulator::start(SimConfig {
        hosts: 3,
        vms,
        tls: false,
        ..SimConfig::default()
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("simulator: {e}");
            std::process::exit(1);
        }
    };
    let url = sim.url();
    let (user, password) = sim.credentials();
    println!("simulator {url}: {vms} VMs requested; {small} small calls; median of {runs} get_all_records\n");

    let mut rows = Vec::new();
    // Server + HTTP only (no decoding): what every client pays before its own work.
    match bench_raw(&url, &user, &password, runs) {
        Ok(r) => rows.push(r),
        Err(e) => eprintln!("raw: {e}"),
    }
    for transport in [Protocol::XmlRpc, Protocol::JsonRpcV2] {
        match bench_rust(&url, &user, &password, transport, small, runs) {
            Ok(r) => rows.push(r),
            Err(e) => eprintln!("xo-rs {transport:?}: {e}"),
        }
    }
    let root = env!("CARGO_MANIFEST_DIR")
        .trim_end_matches("/examples")
        .to_owned();
    let python = format!("{root}/.peers/venv/bin/python");
    let script = format!("{root}/bench/client/xenapi_bench.py");
    if std::path::Path::new(&python).exists() {
        peer(
            &mut rows,
            Command::new(&python).args([
                &script,
                &url,
                &user,
                &password,
                &small.to_string(),
                &runs.to_string(),
            ]),
        );
    } else {
        eprintln!("skipping Python XenAPI: run bench/client/run.sh to install it");
    }
    let node_dir = format!("{root}/bench/client");
    if std::path::Path::new(&format!("{node_dir}/node_modules/xen-api")).exists() {
        for transport in ["xml-rpc", "json-rpc"] {
            let mut cmd = Command::new("node");
            cmd.current_dir(&node_dir).args([
                "xen_api_bench.mjs",
                &url,
                &user,
                &password,
                &small.to_string(),
                &runs.to_string(),
                transport,
            ]);
            peer(&mut rows, &mut cmd);
        }
    } else {
        eprintln!("skipping node xen-api: run bench/client/run.sh to install it");
    }

    let python_ms = rows
        .iter()
        .find(|r| r.client.starts_with("python"))
        .map(|r| r.get_all_records_ms);
    println!(
        "{:<28} {:>14} {:>22} {:>6} {:>12}",
        "client", "pool.get_all/s", "VM.get_all_records ms", "VMs", "vs Python"
    );
    for r in &rows {
        let ratio = python_ms
            .map(|p| format!("{:.1}x", p / r.get_all_records_ms))
            .unwrap_or_default();
        println!(
            "{:<28} {:>14.0} {:>22.1} {:>6} {:>12}",
            r.client, r.small_calls_per_s, r.get_all_records_ms, r.vms, ratio
        );
    }
}

fn bench_rust(
    url: &str,
    user: &str,
    password: &str,
    transport: Protocol,
    small: usize,
    runs: usize,
) -> Result<Row, xo_core::client::Error> {
    let config = ClientConfig::new(url)
        .with_plain_http(true)
        .with_protocol(transport)
        .with_call_timeout(Duration::from_secs(120));
    let client = Client::connect(config, user, password)?;
    let pool_get_all = || Call::<Vec<String>>::new("pool.get_all", vec![]);
    client.call(pool_get_all())?;
    let t = Instant::now();
    for _ in 0..small {
        client.call(pool_get_all())?;
    }
    let small_rate = small as f64 / t.elapsed().as_secs_f64();
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let records = client.call(Vm::get_all_records())?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        count = records.len();
    }
    client.logout()?;
    times.sort_by(f64::total_cmp);
    Ok(Row {
        client: format!("xo-rs ({transport:?})"),
        small_calls_per_s: small_rate,
        get_all_records_ms: times[times.len() / 2],
        vms: count,
    })
}

/// Times `VM.get_all_records` over XML-RPC with the reply read but not decoded.
fn bench_raw(
    url: &str,
    user: &str,
    password: &str,
    runs: usize,
) -> Result<Row, Box<dyn std::error::Error>> {
    let config = ClientConfig::new(url)
        .with_plain_http(true)
        .with_protocol(Protocol::XmlRpc);
    let client = Client::connect(config, user, password)?;
    let session = client.session_ref().ok_or("no session")?;
    let body = xo_core::rpc::xmlrpc::encode_call(
        "VM.get_all_records",
        &[xo_core::model::Value::from(session.as_str())],
    );
    let agent = ureq::AgentBuilder::new().build();
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let mut buf = Vec::new();
        let reply = agent
            .post(&format!("{url}/"))
            .set("Content-Type", "text/xml")
            .send_bytes(&body)?;
        std::io::Read::read_to_end(&mut reply.into_reader(), &mut buf)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        bytes = buf.len();
    }
    client.logout()?;
    times.sort_by(f64::total_cmp);
    Ok(Row {
        client: format!("(server+HTTP, {} MB XML)", bytes / 1_000_000),
        small_calls_per_s: f64::NAN,
        get_all_records_ms: times[times.len() / 2],
        vms: 0,
    })
}

fn peer(rows: &mut Vec<Row>, cmd: &mut Command) {
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => return eprintln!("{cmd:?}: {e}"),
    };
    if !out.status.success() {
        return eprintln!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().rev().find(|l| l.starts_with('{')) else {
        return eprintln!("{cmd:?}: no result line in {text:?}");
    };
    let v: serde_json::Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return eprintln!("{cmd:?}: {e}"),
    };
    rows.push(Row {
        client: v["client"].as_str().unwrap_or("?").trim().to_owned(),
        small_calls_per_s: v["small_calls_per_s"].as_f64().unwrap_or(f64::NAN),
        get_all_records_ms: v["get_all_records_ms"].as_f64().unwrap_or(f64::NAN),
        vms: v["vms"].as_u64().unwrap_or(0) as usize,
    });
}
