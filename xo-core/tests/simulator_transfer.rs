//! The client's `export_vm` / `import_vm` against the simulator's `/export` and `/import`:
//! round trip, tasks, sessions, body limits. Everything on 127.0.0.x.
#![cfg(feature = "simulator")]

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use xo_core::client::{Client, ClientConfig, Error, Progress};
use xo_core::model::Value;
use xo_core::rpc::Protocol;
use xo_core::simulator::{SimConfig, Simulator};

fn start(max_import_bytes: usize) -> Simulator {
    Simulator::start(SimConfig {
        hosts: 1,
        max_import_bytes,
        ..SimConfig::default()
    })
    .expect("simulator")
}

fn connect(sim: &Simulator) -> Client {
    let (user, password) = sim.credentials();
    let config = ClientConfig::new(sim.url())
        .with_protocol(Protocol::XmlRpc)
        .with_plain_http(true)
        .with_call_timeout(Duration::from_secs(10));
    Client::connect(config, &user, password.as_str()).expect("login")
}

fn call(c: &Client, method: &str, params: &[&str]) -> Value {
    let params = params.iter().map(|p| Value::from(*p)).collect();
    c.call_value(method, params)
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

fn text(v: Value) -> String {
    v.as_str().expect("string").to_owned()
}

fn field(c: &Client, class: &str, r: &str, f: &str) -> Value {
    call(c, &format!("{class}.get_{f}"), &[r])
}

fn refs(v: Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_str().expect("ref").to_owned())
        .collect()
}

/// (VDI name, size, userdevice) of a VM's disks, sorted.
fn disks(c: &Client, vm: &str) -> Vec<(String, i64, String, String)> {
    let mut out: Vec<_> = refs(field(c, "VM", vm, "VBDs"))
        .into_iter()
        .filter(|b| text(field(c, "VBD", b, "type")) == "Disk")
        .map(|b| {
            let vdi = text(field(c, "VBD", &b, "VDI"));
            let size = field(c, "VDI", &vdi, "virtual_size").as_i64().expect("int");
            let name = text(field(c, "VDI", &vdi, "name_label"));
            (name, size, text(field(c, "VBD", &b, "userdevice")), vdi)
        })
        .collect();
    out.sort();
    out
}

/// A guest VM (not a template, snapshot or dom0) that has at least one disk.
fn guest_with_disk(c: &Client) -> String {
    refs(call(c, "VM.get_all", &[]))
        .into_iter()
        .find(|vm| {
            let flag = |f| field(c, "VM", vm, f).as_bool() == Some(true);
            !flag("is_a_template")
                && !flag("is_control_domain")
                && !flag("is_a_snapshot")
                && !disks(c, vm).is_empty()
        })
        .expect("a guest with a disk")
}

fn vm_count(c: &Client) -> usize {
    refs(call(c, "VM.get_all", &[])).len()
}

fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).expect("read export");
    out
}

fn http_status(e: &Error) -> u16 {
    match e {
        Error::Http { status, .. } => *status,
        other => panic!("expected an HTTP status, got {other}"),
    }
}

#[test]
fn export_then_import_round_trips_a_vm() {
    let sim = start(1 << 20);
    let c = connect(&sim);
    let vm = guest_with_disk(&c);
    let uuid = text(field(&c, "VM", &vm, "uuid"));
    let name = text(field(&c, "VM", &vm, "name_label"));

    let export_task = text(call(&c, "task.create", &["export", ""]));
    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let log = seen.clone();
    let download = c
        .export_vm(&uuid, &[("task_id", &export_task)], move |p| {
            log.lock().unwrap().push(p)
        })
        .expect("export");
    let xva = read_all(download);
    let last = *seen.lock().unwrap().last().expect("progress reported");
    assert_eq!(last.done, xva.len() as u64);
    assert_eq!(last.total, Some(xva.len() as u64), "Content-Length sent");
    // A tar whose member names the simulator's format and holds the VM's identity.
    assert_eq!(&xva[257..262], b"ustar");
    let shown = String::from_utf8_lossy(&xva);
    assert!(shown.contains(&uuid) && shown.contains(&name));
    assert_eq!(text(field(&c, "task", &export_task, "status")), "success");
    assert_eq!(
        field(&c, "task", &export_task, "progress").as_f64(),
        Some(1.0)
    );
    let again = read_all(c.export_vm(&uuid, &[], |_| {}).expect("export again"));
    assert_eq!(again, xva, "exports are deterministic");

    let import_task = text(call(&c, "task.create", &["import", ""]));
    let body = c
        .import_vm(
            None,
            &xva[..],
            Some(xva.len() as u64),
            &[("task_id", &import_task)],
            |_| {},
        )
        .expect("import");
    assert_eq!(text(field(&c, "task", &import_task, "status")), "success");
    let result = text(field(&c, "task", &import_task, "result"));
    let new = result
        .split("<value>")
        .find_map(|s| s.strip_prefix("OpaqueRef:"))
        .and_then(|s| s.split('<').next())
        .map(|s| format!("OpaqueRef:{s}"))
        .expect("a VM ref in the task result");
    assert!(result.contains("<array>"), "a VM ref set: {result}");
    assert_eq!(String::from_utf8_lossy(&body), result);
    assert_ne!(new, vm);
    assert_eq!(text(field(&c, "VM", &new, "name_label")), name);
    assert_ne!(text(field(&c, "VM", &new, "uuid")), uuid);
    assert_eq!(text(field(&c, "VM", &new, "power_state")), "Halted");
    for f in ["memory_static_max", "VCPUs_max", "name_description"] {
        assert_eq!(field(&c, "VM", &new, f), field(&c, "VM", &vm, f), "{f}");
    }
    let (old_disks, new_disks) = (disks(&c, &vm), disks(&c, &new));
    assert_eq!(old_disks.len(), new_disks.len());
    for (o, n) in old_disks.iter().zip(&new_disks) {
        assert_eq!((&o.0, o.1, &o.2), (&n.0, n.1, &n.2), "same disk shape");
        assert_ne!(o.3, n.3, "a new VDI");
    }
}

#[test]
fn a_bad_session_is_refused() {
    let sim = start(1 << 20);
    let c = connect(&sim);
    let vm = guest_with_disk(&c);
    let uuid = text(field(&c, "VM", &vm, "uuid"));
    let xva = read_all(c.export_vm(&uuid, &[], |_| {}).expect("export"));
    let before = vm_count(&c);

    // The server forgets the session the client still holds.
    let session = c.session_ref().expect("logged in");
    sim.dispatch("session.logout", vec![Value::from(session.as_str())])
        .expect("logout");
    let e = c.export_vm(&uuid, &[], |_| {}).expect_err("export refused");
    assert_eq!(http_status(&e), 401, "{e}");
    let e = c
        .import_vm(None, &xva[..], Some(xva.len() as u64), &[], |_| {})
        .expect_err("import refused");
    assert_eq!(http_status(&e), 401, "{e}");

    // Without any session, with xapi's Basic challenge.
    let url = format!("{}/export?uuid={uuid}", sim.url());
    match ureq::get(&url).call() {
        Err(ureq::Error::Status(401, r)) => {
            assert_eq!(r.header("WWW-Authenticate"), Some("Basic realm=\"xapi\""))
        }
        other => panic!("expected 401, got {:?}", other.map(|r| r.status())),
    }
    let c = connect(&sim);
    assert_eq!(vm_count(&c), before, "no VM imported");
}

#[test]
fn an_oversized_import_is_refused() {
    let limit = 64 << 10;
    let sim = start(limit);
    let c = connect(&sim);
    let before = vm_count(&c);
    let big = vec![7u8; 1 << 20];
    let task = text(call(&c, "task.create", &["import", ""]));
    // With a Content-Length (refused up front) and chunked (refused while reading).
    for len in [Some(big.len() as u64), None] {
        let e = c
            .import_vm(None, &big[..], len, &[("task_id", &task)], |_| {})
            .expect_err("import refused");
        assert_eq!(http_status(&e), 413, "{e}");
        assert!(
            e.to_string().contains(&format!("limit of {limit} bytes")),
            "{e}"
        );
    }
    assert_eq!(text(field(&c, "task", &task, "status")), "failure");
    let info = refs(field(&c, "task", &task, "error_info"));
    assert_eq!(info.first().map(String::as_str), Some("IMPORT_ERROR"));
    assert_eq!(vm_count(&c), before, "no VM imported");
    // Just under the limit is fine.
    let small = vec![7u8; limit];
    c.import_vm(None, &small[..], Some(limit as u64), &[], |_| {})
        .expect("import at the limit");
    assert_eq!(vm_count(&c), before + 1);
}

#[test]
fn foreign_and_bad_imports_and_exports() {
    let sim = start(1 << 20);
    let c = connect(&sim);
    // Not one of our archives: a fresh halted VM.
    let body = c
        .import_vm(None, &b"not an xva"[..], None, &[], |_| {})
        .expect("import");
    let body = String::from_utf8(body).expect("utf-8");
    let new = body
        .split("<value>")
        .find_map(|s| s.strip_prefix("OpaqueRef:"))
        .and_then(|s| s.split('<').next())
        .map(|s| format!("OpaqueRef:{s}"))
        .expect("ref in body");
    assert_eq!(text(field(&c, "VM", &new, "name_label")), "Imported VM");
    assert_eq!(text(field(&c, "VM", &new, "power_state")), "Halted");
    // Empty stream, unknown SR, unknown VM.
    for (sr, body) in [(None, &b""[..]), (Some("OpaqueRef:nope"), &b"x"[..])] {
        let e = c
            .import_vm(sr, body, Some(body.len() as u64), &[], |_| {})
            .expect_err("refused");
        assert_eq!(http_status(&e), 500, "{e}");
    }
    let e = c
        .export_vm("00000000-0000-0000-0000-00000000dead", &[], |_| {})
        .expect_err("unknown VM");
    assert_eq!(http_status(&e), 500);
    assert!(e.to_string().contains("UUID_INVALID"), "{e}");
}
