//! The client's transport seam: the real `Client` over the simulator in-process (no socket)
//! and over a Unix socket, with the simulator's faults standing in for a misbehaving pool:
//! protocol fallback, bounded re-login, master following and failover, deadlines, tasks,
//! typed errors, tracing headers and call observers.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use xo_core::client::{
    CallObserver, Client, ClientConfig, Error, ObservedCall, Request, Response, Transport,
    TransportError, TransportKind,
};
use xo_core::model::{Pool, Value, Vm, VmPowerState};
use xo_core::rpc::Protocol;
use xo_core::simulator::{InProcess, SimConfig, Simulator};

/// A pool that is not served on any socket: the in-process transport reaches it.
fn pool(hosts: usize) -> Simulator {
    Simulator::start(SimConfig {
        hosts,
        serve: false,
        task_duration: Duration::from_millis(30),
        ..SimConfig::default()
    })
    .expect("simulator")
}

/// Counts the requests that reach the simulator.
#[derive(Debug)]
struct Counting {
    inner: InProcess,
    requests: AtomicUsize,
}

impl Transport for Counting {
    fn send(&self, request: &Request<'_>) -> Result<Response, TransportError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.inner.send(request)
    }
}

fn login(sim: &Simulator, config: ClientConfig) -> Client {
    let (user, password) = sim.credentials();
    Client::connect(config, &user, password).expect("login")
}

#[test]
fn typed_calls_in_process_over_both_protocols() {
    let sim = pool(2);
    for protocol in [Protocol::XmlRpc, Protocol::JsonRpcV2] {
        let client = login(&sim, sim.client_config().with_protocol(protocol));
        let vms = client
            .call(Vm::get_all_records())
            .expect("VM.get_all_records");
        let halted = vms
            .iter()
            .find(|(_, vm)| !vm.is_a_template && vm.power_state == VmPowerState::Halted)
            .map(|(r, _)| r.clone())
            .expect("a halted guest");
        client
            .call(Vm::start(&halted, false, false))
            .expect("VM.start");
        let power = client.call(Vm::get_power_state(&halted)).expect("power");
        assert_eq!(power, VmPowerState::Running, "{protocol:?}");
        assert_eq!(client.protocol(), Some(protocol));
    }
    // The default probes JSON-RPC and keeps it.
    let client = sim.connect().expect("connect");
    assert_eq!(client.protocol(), Some(Protocol::JsonRpcV2));
}

#[test]
fn old_host_without_json_rpc_is_spoken_to_in_xml_rpc() {
    let sim = pool(1);
    sim.faults().xml_rpc_only(true);
    let client = sim.connect().expect("connect");
    assert_eq!(client.protocol(), Some(Protocol::XmlRpc));
    assert_eq!(client.call(Pool::get_all()).expect("pool").len(), 1);
    // Forcing JSON-RPC there: the HTML 500 page, as an HTTP error naming the method.
    let (user, password) = sim.credentials();
    let forced = Client::new(sim.client_config().with_protocol(Protocol::JsonRpcV2)).unwrap();
    let e = forced.login_with_password(&user, password).unwrap_err();
    assert!(
        matches!(&e, Error::Http { status: 500, method, .. } if method == "session.login_with_password"),
        "{e}"
    );
}

#[test]
fn session_invalid_relogs_in_a_bounded_number_of_times() {
    let sim = pool(1);
    let counting = Arc::new(Counting {
        inner: sim.transport(),
        requests: AtomicUsize::new(0),
    });
    let mut config = sim.client_config();
    config.transport = Some(counting.clone());
    let client = login(&sim, config.with_protocol(Protocol::XmlRpc));
    // An expired session: one re-login, then the call succeeds.
    sim.faults().expire_sessions();
    let before = counting.requests.load(Ordering::SeqCst);
    client.call(Pool::get_all()).expect("after re-login");
    assert_eq!(counting.requests.load(Ordering::SeqCst) - before, 3);
    // A host that keeps answering SESSION_INVALID: 1 try + 3 re-logins and retries.
    sim.faults()
        .fail_method("pool.get_all", "SESSION_INVALID", &[], 10);
    let before = counting.requests.load(Ordering::SeqCst);
    let e = client.call(Pool::get_all()).unwrap_err();
    assert_eq!(e.api_code(), Some("SESSION_INVALID"));
    assert_eq!(counting.requests.load(Ordering::SeqCst) - before, 1 + 3 * 2);
}

#[test]
fn bad_password_is_an_api_error_and_never_printed() {
    let sim = pool(1);
    let client = Client::new(sim.client_config()).unwrap();
    let e = client
        .login_with_password("root", "wrong-secret")
        .unwrap_err();
    assert_eq!(e.api_code(), Some("SESSION_AUTHENTICATION_FAILED"));
    assert!(!format!("{e} {e:?} {client:?}").contains("wrong-secret"));
    let client = sim.connect().unwrap();
    let session = client.session_ref().unwrap();
    assert!(!format!("{session:?} {session} {client:?}").contains(session.as_str()));
}

#[test]
fn login_on_a_member_follows_host_is_slave_and_failover_finds_the_new_master() {
    let sim = pool(3);
    // Start at the second host (127.0.0.2): the login is sent on to the master.
    let member = ClientConfig::new("http://127.0.0.2")
        .with_plain_http(true)
        .with_transport(sim.transport())
        .with_probe_timeout(Duration::from_secs(2));
    let client = login(&sim, member);
    assert_eq!(client.master_url().host_str(), Some("127.0.0.1"));
    assert_eq!(client.pool_addresses().len(), 3);
    // The master role moves while logged in: the call follows HOST_IS_SLAVE.
    sim.faults().switch_master(1);
    client.call(Pool::get_all()).expect("after the switch");
    assert_eq!(client.master_url().host_str(), Some("127.0.0.2"));
    // The new master goes down and the pool elects the first host again: the probe finds it
    // and the read is resent there.
    sim.faults().set_unreachable(1, true);
    sim.faults().switch_master(0);
    client.call(Pool::get_all()).expect("after failover");
    assert_eq!(client.master_url().host_str(), Some("127.0.0.1"));
}

#[test]
fn unreachable_pool_is_a_transport_error_without_the_session() {
    let sim = pool(1);
    let client = sim.connect().unwrap();
    sim.faults().set_unreachable(0, true);
    let e = client.call(Pool::get_all()).unwrap_err();
    assert!(
        matches!(&e, Error::Transport { method, source } if method == "pool.get_all" && source.kind == TransportKind::Connect),
        "{e}"
    );
    let session = client.session_ref().unwrap();
    assert!(!e.to_string().contains(session.as_str()));
}

#[test]
fn a_slow_host_times_out_at_the_deadline() {
    let sim = pool(1);
    let client = sim.connect().unwrap();
    sim.faults().set_latency(Duration::from_millis(1500));
    let started = std::time::Instant::now();
    let e = client
        .call_with_timeout(Pool::get_all(), Duration::from_millis(200))
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn async_tasks_report_progress_and_are_destroyed() {
    let sim = pool(1);
    let client = sim.connect().unwrap();
    let (vm, _) = client
        .call(Vm::get_all_records())
        .unwrap()
        .into_iter()
        .find(|(_, v)| !v.is_a_template && v.power_state == VmPowerState::Halted)
        .unwrap();
    let task = client
        .call_async(Vm::clone(&vm, "copy"))
        .expect("Async.VM.clone");
    let mut seen = Vec::new();
    let copy = task
        .wait_with_progress(Duration::from_secs(10), |p| seen.push(p))
        .expect("task result");
    assert_eq!(client.call(Vm::get_name_label(&copy)).unwrap(), "copy");
    assert_eq!(seen.last(), Some(&1.0), "{seen:?}");
    let tasks = client.call(xo_core::model::Task::get_all()).unwrap();
    assert!(!tasks.contains(task.task_ref()), "finished task destroyed");
    // A message without an Async form is refused before anything is sent.
    let e = client.call_async(Vm::get_all()).unwrap_err();
    assert!(
        matches!(&e, Error::NoAsyncForm { method } if method == "VM.get_all"),
        "{e}"
    );
}

#[test]
fn after_logout_calls_fail_as_not_logged_in() {
    let sim = pool(1);
    let client = sim.connect().unwrap();
    client.logout().unwrap();
    assert!(client.session_ref().is_none());
    let e = client.call(Pool::get_all()).unwrap_err();
    assert!(
        matches!(&e, Error::NotLoggedIn { method } if method == "pool.get_all"),
        "{e}"
    );
    let e = client.export_vm("uuid", &[], |_| {}).unwrap_err();
    assert!(matches!(e, Error::NotLoggedIn { .. }), "{e}");
    // HTTP resources need the HTTP transport: a typed refusal, not a connection attempt.
    let client = sim.connect().unwrap();
    let e = client.export_vm("uuid", &[], |_| {}).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
}

/// Records what observers see.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<String>>,
}

impl CallObserver for Recorder {
    fn before(&self, call: &ObservedCall<'_>) {
        let names: Vec<String> = call
            .named_params()
            .into_iter()
            .map(|(name, _, v)| format!("{name}={}", v.as_str().unwrap_or("?")))
            .collect();
        self.seen
            .lock()
            .unwrap()
            .push(format!("pre {} {}", call.method, names.join(",")));
    }

    fn after(&self, call: &ObservedCall<'_>, outcome: Result<Option<&Value>, &Error>) {
        let result = match outcome {
            Ok(Some(v)) => v.as_str().unwrap_or("value").to_owned(),
            Ok(None) => "no value".into(),
            Err(e) => e.api_code().unwrap_or("error").to_owned(),
        };
        self.seen
            .lock()
            .unwrap()
            .push(format!("post {} {result}", call.method));
    }

    fn wants_results(&self) -> bool {
        true
    }
}

#[test]
fn observers_see_each_call_by_datamodel_names_without_the_session() {
    let sim = pool(1);
    let recorder = Arc::new(Recorder::default());
    let config = sim.client_config().with_observer(recorder.clone());
    let client = login(&sim, config);
    let vm = client.call(Vm::get_all()).unwrap().remove(0);
    client.call(Vm::get_name_label(&vm)).unwrap();
    let _ = client.call(Vm::set_name_label(&vm, "renamed"));
    let e = client
        .call(Vm::get_name_label(&xo_core::model::Ref::new(
            "OpaqueRef:nope",
        )))
        .unwrap_err();
    assert_eq!(e.api_code(), Some("HANDLE_INVALID"));
    let seen = recorder.seen.lock().unwrap().clone();
    let session = client.session_ref().unwrap();
    assert!(
        seen.iter().all(|s| !s.contains(session.as_str())),
        "{seen:?}"
    );
    let get = format!("pre VM.get_name_label self={}", vm.as_str());
    assert!(seen.contains(&get), "{seen:?}");
    assert!(seen.contains(&format!(
        "pre VM.set_name_label self={},value=renamed",
        vm.as_str()
    )));
    assert!(
        seen.iter()
            .any(|s| s.starts_with("post VM.get_name_label ")),
        "{seen:?}"
    );
    assert_eq!(
        seen.last().unwrap(),
        "post VM.get_name_label HANDLE_INVALID"
    );
    // One logical call gives one pre and one post.
    let pres = seen.iter().filter(|s| s.starts_with("pre ")).count();
    assert_eq!(pres, seen.len() / 2);
}

#[test]
fn unix_socket_reaches_the_simulator_and_does_not_follow_host_is_slave() {
    let dir = tempdir();
    let socket = dir.join("xapi");
    let sim = Simulator::start(SimConfig {
        hosts: 2,
        unix_socket: Some(socket.clone()),
        ..SimConfig::default()
    })
    .expect("simulator");
    for protocol in [Protocol::XmlRpc, Protocol::JsonRpcV2] {
        let client = login(&sim, ClientConfig::unix(&socket).with_protocol(protocol));
        let vms = client.call(Vm::get_all_records()).expect("records");
        assert!(vms.len() > 2, "{protocol:?}");
        client.logout().unwrap();
    }
    // The socket belongs to the first host; once it is a member, logins are refused there.
    sim.faults().switch_master(1);
    let (user, password) = sim.credentials();
    let client = Client::new(ClientConfig::unix(&socket)).unwrap();
    let e = client.login_with_password(&user, password).unwrap_err();
    assert_eq!(e.api_code(), Some("HOST_IS_SLAVE"), "{e}");
    // No socket at all: a connection error.
    let client = Client::new(ClientConfig::unix(dir.join("missing"))).unwrap();
    let e = client.login_with_password("root", "x").unwrap_err();
    assert!(
        matches!(&e, Error::Transport { source, .. } if source.kind == TransportKind::Connect),
        "{e}"
    );
}

#[test]
fn unix_transport_sends_trace_headers_and_reads_chunked_replies() {
    let dir = tempdir();
    let path = dir.join("fake-xapi");
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_owned());
        }
        let length: usize = head
            .iter()
            .find_map(|h| h.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let reply = br#"{"jsonrpc":"2.0","result":"OpaqueRef:s1","id":1}"#;
        let (a, b) = reply.split_at(10);
        let mut out = stream;
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            a.len()
        )
        .unwrap();
        out.write_all(a).unwrap();
        write!(out, "\r\n{:x}\r\n", b.len()).unwrap();
        out.write_all(b).unwrap();
        out.write_all(b"\r\n0\r\n\r\n").unwrap();
        (head, String::from_utf8(body).unwrap())
    });
    let config = ClientConfig::unix(&path)
        .with_protocol(Protocol::JsonRpcV2)
        .with_originator("monitoring-glue")
        .with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    let client = Client::new(config).unwrap();
    client.login_with_password("root", "pw").expect("login");
    assert_eq!(client.session_ref().unwrap().as_str(), "OpaqueRef:s1");
    let (head, body) = server.join().unwrap();
    assert_eq!(head[0], "POST /jsonrpc HTTP/1.1");
    assert!(
        head.contains(&"originator: monitoring-glue".to_owned()),
        "{head:?}"
    );
    assert!(
        head.contains(
            &"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()
        ),
        "{head:?}"
    );
    assert!(body.contains("session.login_with_password"), "{body}");
}

/// A fresh directory under the system's temporary directory, for sockets.
fn tempdir() -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "xo-transport-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
