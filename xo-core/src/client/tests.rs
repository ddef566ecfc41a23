//! Client behaviour against a tiny scripted xapi on 127.0.0.1 (the full simulator is tested
//! from the `xo-tests` package): protocol fallback, re-login, master following, failover,
//! tasks, timeouts, redaction.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::model::{ApiFailure, Struct, Value};
use crate::rpc::{jsonrpc, xmlrpc, Limits, Void};

#[derive(Default)]
struct FakeState {
    xml_only: bool,
    /// `None`: this host is the master; `Some(addr)`: a member pointing there.
    master: Option<String>,
    sessions: HashSet<String>,
    next: u64,
    /// Every method received, in order.
    calls: Vec<String>,
    /// Method → failures to return for its next calls.
    fail: HashMap<String, Vec<ApiFailure>>,
    /// Host addresses reported by host.get_all_records.
    hosts: Vec<String>,
    /// Task ref → (status, progress, polls left before success).
    tasks: HashMap<String, (String, f64, u32)>,
    /// Seconds to sleep before answering.
    delay: f64,
}

struct Fake {
    addr: String,
    state: Arc<Mutex<FakeState>>,
    killed: Arc<AtomicBool>,
}

impl Fake {
    fn start(setup: impl FnOnce(&mut FakeState)) -> Fake {
        let mut st = FakeState::default();
        setup(&mut st);
        let state = Arc::new(Mutex::new(st));
        let killed = Arc::new(AtomicBool::new(false));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (s, k) = (state.clone(), killed.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if k.load(Ordering::SeqCst) {
                    break; // dropping the listener: later connects are refused
                }
                let Ok(conn) = conn else { continue };
                let (s, k) = (s.clone(), k.clone());
                std::thread::spawn(move || serve(conn, s, k));
            }
        });
        Fake {
            addr,
            state,
            killed,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr); // wake the accept loop
    }

    fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }
}

fn serve(conn: TcpStream, state: Arc<Mutex<FakeState>>, killed: Arc<AtomicBool>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || killed.load(Ordering::SeqCst) {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut len = 0;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let delay = state.lock().unwrap().delay;
        std::thread::sleep(Duration::from_secs_f64(delay));
        let session_ok = |st: &FakeState| {
            st.sessions
                .iter()
                .any(|s| path.contains(&format!("session_id={}", s.replace(':', "%3A"))))
        };
        let (ctype, reply) = if path.starts_with("/export") || path.starts_with("/import") {
            let st = state.lock().unwrap();
            if !session_ok(&st) {
                ("text/plain", b"forbidden".to_vec())
            } else if path.starts_with("/export") {
                // 1 MiB of a known pattern.
                (
                    "application/octet-stream",
                    (0..1u32 << 20).map(|i| (i % 251) as u8).collect(),
                )
            } else {
                let sum: u64 = body.iter().map(|b| *b as u64).sum();
                ("text/plain", format!("{} {}", body.len(), sum).into_bytes())
            }
        } else if path == "/jsonrpc" {
            if state.lock().unwrap().xml_only {
                ("text/html", b"<html>Xmlrpc.Parse_error</html>".to_vec())
            } else {
                let req = jsonrpc::decode_call(&body, Limits::default()).unwrap();
                let outcome = dispatch(&state, &req.method, &req.params);
                (
                    "application/json",
                    jsonrpc::encode_reply(&outcome, &req.id, req.version),
                )
            }
        } else {
            let call = xmlrpc::decode_call(&body, Limits::default()).unwrap();
            (
                "text/xml",
                xmlrpc::encode_envelope(&dispatch(&state, &call.method, &call.params)),
            )
        };
        let status = match (ctype, reply.as_slice()) {
            ("text/html", _) => "500 Internal Error",
            (_, b"forbidden") => "403 Forbidden",
            _ => "200 OK",
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        );
        if out
            .write_all(head.as_bytes())
            .and_then(|_| out.write_all(&reply))
            .is_err()
        {
            return;
        }
    }
}

fn fail(code: &str, params: &[&str]) -> crate::rpc::Outcome<Value> {
    Err(ApiFailure::new(
        code,
        params.iter().map(|s| s.to_string()).collect(),
    ))
}

fn dispatch(
    state: &Mutex<FakeState>,
    method: &str,
    params: &[Value],
) -> crate::rpc::Outcome<Value> {
    let mut st = state.lock().unwrap();
    st.calls.push(method.to_owned());
    if let Some(f) = st
        .fail
        .get_mut(method)
        .and_then(|v| (!v.is_empty()).then(|| v.remove(0)))
    {
        return Err(f);
    }
    let arg = |i: usize| {
        params
            .get(i)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    if method == "session.login_with_password" {
        if let Some(m) = &st.master {
            return fail("HOST_IS_SLAVE", &[m]);
        }
        if arg(1) != "pw" {
            return fail("SESSION_AUTHENTICATION_FAILED", &[&arg(0), "bad password"]);
        }
        st.next += 1;
        let s = format!("OpaqueRef:session-{}", st.next);
        st.sessions.insert(s.clone());
        return Ok(Value::from(s.as_str()));
    }
    if let Some(m) = &st.master {
        return fail("HOST_IS_SLAVE", &[m]);
    }
    if !st.sessions.contains(&arg(0)) {
        return fail("SESSION_INVALID", &[&arg(0)]);
    }
    match method {
        "session.logout" => {
            st.sessions.remove(&arg(0));
            Ok(Value::from(""))
        }
        "pool.get_all" => Ok(Value::Array(vec![Value::from("OpaqueRef:pool")])),
        "host.get_all_records" => {
            let hosts = st.hosts.iter().enumerate().map(|(i, a)| {
                let rec: Struct = [("address".to_string(), Value::from(a.as_str()))]
                    .into_iter()
                    .collect();
                (format!("OpaqueRef:host-{i}"), Value::Struct(rec))
            });
            Ok(Value::Struct(hosts.collect()))
        }
        "Async.VM.clone" => {
            st.next += 1;
            let t = format!("OpaqueRef:task-{}", st.next);
            st.tasks.insert(t.clone(), ("pending".into(), 0.0, 3));
            Ok(Value::from(t.as_str()))
        }
        "task.cancel" => {
            if let Some(t) = st.tasks.get_mut(&arg(1)) {
                t.0 = "cancelled".into();
            }
            Ok(Value::from(""))
        }
        "task.destroy" => {
            st.tasks.remove(&arg(1));
            Ok(Value::from(""))
        }
        "event.from" => {
            let class = params[1].as_array().unwrap()[0]
                .as_str()
                .unwrap()
                .to_owned();
            let task = class.trim_start_matches("task/").to_owned();
            let token: u64 = arg(2).parse().unwrap_or(0);
            let mut events = Vec::new();
            if let Some(t) = st.tasks.get_mut(&task) {
                if t.0 == "pending" {
                    t.2 -= 1;
                    t.1 = 1.0 - t.2 as f64 / 3.0;
                    if t.2 == 0 {
                        t.0 = "success".into();
                    }
                }
                let mut snap: Struct = Struct::new();
                snap.insert("status", Value::from(t.0.as_str()));
                snap.insert("progress", Value::Double(t.1));
                snap.insert("result", Value::from("<value>OpaqueRef:new-vm</value>"));
                let mut ev = Struct::new();
                ev.insert("ref", Value::from(task.as_str()));
                ev.insert("class", Value::from("task"));
                ev.insert("operation", Value::from("mod"));
                ev.insert("snapshot", Value::Struct(snap));
                events.push(Value::Struct(ev));
            }
            let mut batch = Struct::new();
            batch.insert("events", Value::Array(events));
            batch.insert("valid_ref_counts", Value::Struct(Struct::new()));
            batch.insert("token", Value::from((token + 1).to_string().as_str()));
            Ok(Value::Struct(batch))
        }
        _ => fail("MESSAGE_METHOD_UNKNOWN", &[method]),
    }
}

fn client(fake: &Fake, transport: Transport) -> Client {
    let config = ClientConfig::new(fake.url())
        .with_plain_http(true)
        .with_transport(transport)
        .with_call_timeout(Duration::from_secs(5))
        .with_probe_timeout(Duration::from_secs(2));
    Client::new(config).unwrap()
}

fn pool_get_all() -> Call<Vec<String>> {
    Call::new("pool.get_all", vec![])
}

#[test]
fn auto_prefers_json_and_falls_back_to_xml() {
    let modern = Fake::start(|_| {});
    let c = client(&modern, Transport::Auto);
    c.login_with_password("root", "pw").unwrap();
    assert_eq!(c.protocol(), Some(crate::rpc::Protocol::JsonRpcV2));
    assert_eq!(c.call(pool_get_all()).unwrap(), vec!["OpaqueRef:pool"]);

    let old = Fake::start(|s| s.xml_only = true);
    let c = client(&old, Transport::Auto);
    c.login_with_password("root", "pw").unwrap();
    assert_eq!(c.protocol(), Some(crate::rpc::Protocol::XmlRpc));
    assert_eq!(c.call(pool_get_all()).unwrap(), vec!["OpaqueRef:pool"]);
    // Forced JSON-RPC against the old host: a clear HTTP error naming the method.
    let c = client(&old, Transport::JsonRpc);
    let e = c.login_with_password("root", "pw").unwrap_err();
    assert!(
        matches!(&e, Error::Http { status: 500, method, .. } if method == "session.login_with_password"),
        "{e}"
    );
}

#[test]
fn session_invalid_relogs_in_bounded() {
    for transport in [Transport::XmlRpc, Transport::JsonRpc] {
        let fake = Fake::start(|_| {});
        let c = client(&fake, transport);
        c.login_with_password("root", "pw").unwrap();
        // Sessions expire server-side: the next call logs in again and succeeds.
        fake.state.lock().unwrap().sessions.clear();
        assert_eq!(c.call(pool_get_all()).unwrap(), vec!["OpaqueRef:pool"]);
        let logins = fake
            .calls()
            .iter()
            .filter(|m| *m == "session.login_with_password")
            .count();
        assert_eq!(logins, 2);
        // A server that keeps saying SESSION_INVALID: bounded retries, then the API error.
        let invalid = vec![ApiFailure::new("SESSION_INVALID", vec![]); 10];
        fake.state
            .lock()
            .unwrap()
            .fail
            .insert("pool.get_all".into(), invalid);
        let e = c.call(pool_get_all()).unwrap_err();
        assert_eq!(e.api_code(), Some("SESSION_INVALID"));
        let tries = fake.calls().iter().filter(|m| *m == "pool.get_all").count();
        assert_eq!(tries, 2 + 1 + 3, "expired then resent, then 1 + 3 retries");
    }
}

#[test]
fn bad_password_is_an_api_error_and_never_printed() {
    let fake = Fake::start(|_| {});
    let c = client(&fake, Transport::XmlRpc);
    let e = c.login_with_password("root", "wrong-secret").unwrap_err();
    assert_eq!(e.api_code(), Some("SESSION_AUTHENTICATION_FAILED"));
    assert!(!format!("{e} {e:?} {c:?}").contains("wrong-secret"));
    c.login_with_password("root", "pw").unwrap();
    let s = c.session_ref().unwrap();
    assert!(!format!("{s:?} {s} {c:?}").contains(s.as_str()));
}

#[test]
fn login_on_member_follows_host_is_slave() {
    let master = Fake::start(|_| {});
    let m = master.addr.clone();
    let member = Fake::start(|s| s.master = Some(m));
    let c = client(&member, Transport::JsonRpc);
    c.login_with_password("root", "pw").unwrap();
    assert_eq!(c.master_url().as_str(), format!("{}/", master.url()));
    assert_eq!(c.call(pool_get_all()).unwrap(), vec!["OpaqueRef:pool"]);
}

#[test]
fn master_switch_and_master_death_fail_over() {
    let a = Fake::start(|_| {});
    let b = Fake::start(|_| {});
    let hosts = vec![a.addr.clone(), b.addr.clone()];
    for f in [&a, &b] {
        f.state.lock().unwrap().hosts = hosts.clone();
    }
    let c = client(&a, Transport::XmlRpc);
    c.login_with_password("root", "pw").unwrap();
    assert_eq!(c.pool_addresses().len(), 2);
    // Master switch while logged in: a answers HOST_IS_SLAVE [b]; b shares the session DB.
    let session = c.session_ref().unwrap().as_str().to_owned();
    b.state.lock().unwrap().sessions.insert(session);
    a.state.lock().unwrap().master = Some(b.addr.clone());
    assert_eq!(c.call(pool_get_all()).unwrap(), vec!["OpaqueRef:pool"]);
    assert_eq!(c.master_url().as_str(), format!("{}/", b.url()));
    // Now b dies and a becomes master again: the probe finds it, the read is resent.
    a.state.lock().unwrap().master = None;
    b.kill();
    let t = Instant::now();
    assert_eq!(c.call(pool_get_all()).unwrap(), vec!["OpaqueRef:pool"]);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(c.master_url().as_str(), format!("{}/", a.url()));
}

#[test]
fn unreachable_host_is_a_transport_error() {
    let fake = Fake::start(|_| {});
    let c = client(&fake, Transport::XmlRpc);
    c.login_with_password("root", "pw").unwrap();
    fake.kill();
    let e = c.call(pool_get_all()).unwrap_err();
    assert!(
        matches!(&e, Error::Transport { method, .. } if method == "pool.get_all"),
        "{e}"
    );
    assert!(!e.to_string().contains("session"), "{e}");
}

#[test]
fn slow_server_times_out_within_the_deadline() {
    let fake = Fake::start(|_| {});
    let c = client(&fake, Transport::XmlRpc);
    c.login_with_password("root", "pw").unwrap();
    fake.state.lock().unwrap().delay = 3.0;
    let t = Instant::now();
    let e = c
        .call_with_timeout(pool_get_all(), Duration::from_millis(500))
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn async_task_progress_result_and_destroy() {
    for transport in [Transport::XmlRpc, Transport::JsonRpc] {
        let fake = Fake::start(|_| {});
        let c = client(&fake, transport);
        c.login_with_password("root", "pw").unwrap();
        let call = Call::<String>::new(
            "VM.clone",
            vec![Value::from("OpaqueRef:vm"), Value::from("copy")],
        )
        .with_async("Async.VM.clone");
        let task = c.call_async(call).unwrap();
        let mut seen = Vec::new();
        let vm = task
            .wait_with_progress(Duration::from_secs(5), |p| seen.push(p))
            .unwrap();
        assert_eq!(vm, "OpaqueRef:new-vm");
        assert_eq!(seen.len(), 3);
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]) && seen[2] == 1.0,
            "{seen:?}"
        );
        assert!(fake.calls().contains(&"task.destroy".to_string()));
        assert!(fake.state.lock().unwrap().tasks.is_empty());
    }
}

#[test]
fn async_task_cancel() {
    let fake = Fake::start(|_| {});
    let c = client(&fake, Transport::XmlRpc);
    c.login_with_password("root", "pw").unwrap();
    let call = Call::<Void>::new("VM.clone", vec![]).with_async("Async.VM.clone");
    let task = c.call_async(call).unwrap();
    task.cancel().unwrap();
    let e = task.wait(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, Error::TaskCancelled { .. }), "{e}");
    // No Async form: a configuration error, nothing sent.
    let e = c
        .call_async(Call::<Void>::new("VM.get_all", vec![]))
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)));
}

#[test]
fn logout_ends_the_session() {
    let fake = Fake::start(|_| {});
    let c = client(&fake, Transport::JsonRpc);
    c.login_with_password("root", "pw").unwrap();
    c.logout().unwrap();
    assert!(c.session_ref().is_none());
    assert!(fake.state.lock().unwrap().sessions.is_empty());
    // No credentials left: calls fail clearly instead of logging in again.
    let e = c.call(pool_get_all()).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
}

#[test]
fn export_and_import_stream_with_progress() {
    let fake = Fake::start(|_| {});
    let c = client(&fake, Transport::XmlRpc);
    // Not logged in: a configuration error, nothing sent.
    assert!(matches!(
        c.export_vm("uuid", &[], |_| {}),
        Err(Error::Config(_))
    ));
    c.login_with_password("root", "pw").unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let mut download = c
        .export_vm("vm-uuid", &[], move |p| s2.lock().unwrap().push(p))
        .unwrap();
    let mut n = 0u64;
    let mut sum = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let k = download.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        n += k as u64;
        sum += buf[..k].iter().map(|b| *b as u64).sum::<u64>();
    }
    let expected: u64 = (0..1u32 << 20).map(|i| (i % 251) as u64).sum();
    assert_eq!((n, sum), (1 << 20, expected));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.last().unwrap().done, 1 << 20);
    assert_eq!(seen.last().unwrap().total, Some(1 << 20));

    // Import streams a reader of known length; the fake answers "<len> <byte sum>".
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 7) as u8).collect();
    let mut last = None;
    let reply = c
        .import_vm(
            Some("OpaqueRef:sr"),
            &data[..],
            Some(data.len() as u64),
            &[],
            |p| last = Some(p),
        )
        .unwrap();
    let want_sum: u64 = data.iter().map(|b| *b as u64).sum();
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        format!("{} {}", data.len(), want_sum)
    );
    assert_eq!(last.unwrap().done, data.len() as u64);

    // A refused session is an HTTP error that does not leak the session ref.
    c.state().session = Some(Ref::new("OpaqueRef:stale"));
    let e = c.export_vm("vm-uuid", &[], |_| {}).unwrap_err();
    assert!(matches!(e, Error::Http { status: 403, .. }), "{e}");
    assert!(!e.to_string().contains("stale"), "{e}");
}
