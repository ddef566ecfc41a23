//! The simulator over real HTTP: XML-RPC and JSON-RPC envelopes, content types, parse errors,
//! per-host listeners, fault injection, rrd_updates and TLS. Everything on 127.0.0.x.
#![cfg(feature = "simulator")]
#![allow(clippy::result_large_err, clippy::cloned_ref_to_slice_refs)]
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use xo_core::model::Value;
use xo_core::rpc::{xmlrpc, Limits};
use xo_core::simulator::{SimConfig, Simulator};

fn s(v: &str) -> Value {
    Value::from(v)
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build()
}

/// POSTs a body, returning (status, content type, body) for any status.
fn post(
    agent: &ureq::Agent,
    url: &str,
    ctype: &str,
    body: &[u8],
) -> Result<(u16, String, String), ureq::Error> {
    let resp = match agent.post(url).set("Content-Type", ctype).send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e),
    };
    let status = resp.status();
    let ct = resp.header("Content-Type").unwrap_or_default().to_owned();
    let mut text = String::new();
    resp.into_reader()
        .take(64 << 20)
        .read_to_string(&mut text)
        .unwrap();
    Ok((status, ct, text))
}

fn xml(
    agent: &ureq::Agent,
    url: &str,
    method: &str,
    params: &[Value],
) -> Result<Value, xo_core::model::ApiFailure> {
    let (status, ct, body) =
        post(agent, url, "text/xml", &xmlrpc::encode_call(method, params)).unwrap();
    assert_eq!((status, ct.as_str()), (200, "text/xml"), "{body}");
    xmlrpc::decode_envelope(body.as_bytes(), Limits::default()).unwrap()
}

fn start() -> Simulator {
    Simulator::start(SimConfig::default()).unwrap()
}

#[test]
fn xml_rpc_on_every_path() {
    let sim = start();
    let a = agent();
    let (u, p) = sim.credentials();
    assert!(sim.url().starts_with("http://127.0.0.1:"));
    for path in ["/", "/RPC2", "/xmlrpc", "/json"] {
        let url = format!("{}{path}", sim.url());
        let sess = xml(&a, &url, "session.login_with_password", &[s(&u), s(&p)]).unwrap();
        let vms = xml(&a, &url, "VM.get_all_records", &[sess.clone()]).unwrap();
        let (_, rec) = vms
            .as_struct()
            .unwrap()
            .iter()
            .find(|(_, r)| r.get("name_label") == Some(&s("web-01")))
            .unwrap();
        // Ints travel untagged, as strings to a generic reader.
        assert!(
            matches!(rec.get("domid"), Some(Value::String(d)) if d.parse::<i64>().unwrap() > 0)
        );
        assert!(matches!(rec.get("is_a_template"), Some(Value::Bool(false))));
        let e = xml(&a, &url, "VM.get_record", &[sess, s("OpaqueRef:x")]).unwrap_err();
        assert_eq!(e.code, "HANDLE_INVALID");
    }
    // The raw envelope is xapi's: Status/Value, untagged strings.
    let (_, _, body) = post(
        &a,
        &sim.url(),
        "text/xml",
        &xmlrpc::encode_call("session.login_with_password", &[s(&u), s("bad")]),
    )
    .unwrap();
    assert!(
        body.contains("<name>Status</name><value>Failure</value>"),
        "{body}"
    );
    assert!(body.contains("SESSION_AUTHENTICATION_FAILED"));
    // event.from's valid_ref_counts are xapi's only <i4> ints; other ints stay untagged.
    let sess = xml(
        &a,
        &sim.url(),
        "session.login_with_password",
        &[s(&u), s(&p)],
    )
    .unwrap();
    let call = xmlrpc::encode_call(
        "event.from",
        &[sess, Value::Array(vec![s("vm")]), s(""), Value::Double(0.0)],
    );
    let (_, _, body) = post(&a, &sim.url(), "text/xml", &call).unwrap();
    assert!(
        body.contains(
            "<name>valid_ref_counts</name><value><struct><member><name>vm</name><value><i4>"
        ),
        "{}",
        &body[body.len().saturating_sub(400)..]
    );
    assert!(body.contains("<name>domid</name><value>"));
    assert!(!body.contains("<name>domid</name><value><i"));
}

#[test]
fn json_rpc_v1_and_v2() {
    let sim = start();
    let a = agent();
    let (u, p) = sim.credentials();
    let url = format!("{}/jsonrpc", sim.url());
    let v2 = serde_json::json!({"jsonrpc": "2.0", "method": "session.login_with_password", "params": [u, p], "id": 7});
    let (status, ct, body) = post(&a, &url, "application/json", v2.to_string().as_bytes()).unwrap();
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["jsonrpc"], "2.0");
    assert_eq!(r["id"], 7);
    let sess = r["result"].as_str().unwrap().to_owned();
    let v1 = serde_json::json!({"method": "VM.get_all_records", "params": [sess], "id": "a"});
    let (_, _, body) = post(&a, &url, "application/json", v1.to_string().as_bytes()).unwrap();
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(r["error"].is_null());
    assert_eq!(r["id"], "a");
    let recs = r["result"].as_object().unwrap();
    let web = recs.values().find(|v| v["name_label"] == "web-01").unwrap();
    assert!(web["memory_static_max"].is_i64(), "ints are JSON numbers");
    let bad = serde_json::json!({"jsonrpc": "2.0", "method": "session.login_with_password", "params": ["root", "bad"], "id": 1});
    let (_, _, body) = post(&a, &url, "application/json", bad.to_string().as_bytes()).unwrap();
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["error"]["code"], 1);
    assert_eq!(r["error"]["message"], "SESSION_AUTHENTICATION_FAILED");
    assert_eq!(r["error"]["data"][0], "root");
    let bad = serde_json::json!({"method": "VM.get_all", "params": ["OpaqueRef:x"], "id": 2});
    let (_, _, body) = post(&a, &url, "application/json", bad.to_string().as_bytes()).unwrap();
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        r["error"],
        serde_json::json!(["SESSION_INVALID", "OpaqueRef:x"])
    );
    // The XML-RPC session works over JSON-RPC and back.
    let xsess = xml(
        &a,
        &sim.url(),
        "session.login_with_password",
        &[s(&sim.credentials().0), s(&sim.credentials().1)],
    )
    .unwrap();
    let q = serde_json::json!({"jsonrpc": "2.0", "method": "pool.get_all", "params": [xsess.as_str().unwrap()], "id": 3});
    let (_, _, body) = post(&a, &url, "application/json", q.to_string().as_bytes()).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["result"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn unparsable_requests_get_500_with_a_body() {
    let sim = start();
    let a = agent();
    let (status, _, body) = post(&a, &sim.url(), "text/xml", b"<methodCall><oops").unwrap();
    assert_eq!(status, 500);
    assert!(body.contains("Parse_error"), "{body}");
    let (status, _, body) = post(
        &a,
        &format!("{}/jsonrpc", sim.url()),
        "application/json",
        b"{\"method\":",
    )
    .unwrap();
    assert_eq!(status, 500);
    assert!(body.contains("Malformed_method_request"), "{body}");
    // The server keeps serving.
    let (u, p) = sim.credentials();
    xml(
        &a,
        &sim.url(),
        "session.login_with_password",
        &[s(&u), s(&p)],
    )
    .unwrap();
}

#[test]
fn members_listen_on_their_own_address() {
    let sim = start();
    let a = agent();
    let urls = sim.host_urls();
    assert_eq!(urls.len(), 2);
    assert!(urls[1].starts_with("http://127.0.0.2:"));
    let (u, p) = sim.credentials();
    let e = xml(&a, &urls[1], "session.login_with_password", &[s(&u), s(&p)]).unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.params[0].as_str()),
        ("HOST_IS_SLAVE", "127.0.0.1")
    );
    let sess = xml(&a, &urls[0], "session.login_with_password", &[s(&u), s(&p)]).unwrap();
    let hosts = xml(&a, &urls[0], "host.get_all_records", &[sess.clone()]).unwrap();
    let mut addrs: Vec<&str> = hosts
        .as_struct()
        .unwrap()
        .iter()
        .map(|(_, h)| h.get("address").unwrap().as_str().unwrap())
        .collect();
    addrs.sort();
    assert_eq!(addrs, vec!["127.0.0.1", "127.0.0.2"]);
    // Failover: the member becomes master; the old master redirects there.
    sim.faults().switch_master(1);
    assert_eq!(sim.url(), urls[1]);
    let e = xml(&a, &urls[0], "VM.get_all", &[sess.clone()]).unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.params[0].as_str()),
        ("HOST_IS_SLAVE", "127.0.0.2")
    );
    xml(&a, &urls[1], "VM.get_all", &[sess]).unwrap();
}

#[test]
fn http_faults() {
    let sim = start();
    let a = agent();
    let (u, p) = sim.credentials();
    let login = xmlrpc::encode_call("session.login_with_password", &[s(&u), s(&p)]);
    sim.faults().http_status(503, 2);
    for _ in 0..2 {
        assert_eq!(post(&a, &sim.url(), "text/xml", &login).unwrap().0, 503);
    }
    assert_eq!(post(&a, &sim.url(), "text/xml", &login).unwrap().0, 200);
    sim.faults().drop_connections(1);
    // A fresh agent so no pooled connection hides the drop.
    assert!(post(&agent(), &sim.url(), "text/xml", &login).is_err());
    assert_eq!(
        post(&agent(), &sim.url(), "text/xml", &login).unwrap().0,
        200
    );
    sim.faults()
        .fail_method("pool.get_all", "HOST_OFFLINE", &["x"], 1);
    let sess = xml(
        &a,
        &sim.url(),
        "session.login_with_password",
        &[s(&u), s(&p)],
    )
    .unwrap();
    assert_eq!(
        xml(&a, &sim.url(), "pool.get_all", &[sess.clone()])
            .unwrap_err()
            .code,
        "HOST_OFFLINE"
    );
    xml(&a, &sim.url(), "pool.get_all", &[sess]).unwrap();
}

#[test]
fn long_poll_does_not_block_other_calls() {
    let sim = Arc::new(start());
    let (u, p) = sim.credentials();
    let a = agent();
    let sess = xml(
        &a,
        &sim.url(),
        "session.login_with_password",
        &[s(&u), s(&p)],
    )
    .unwrap();
    let b = xml(
        &a,
        &sim.url(),
        "event.from",
        &[
            sess.clone(),
            Value::Array(vec![s("vm")]),
            s(""),
            Value::Double(0.0),
        ],
    )
    .unwrap();
    let tok = b.get("token").unwrap().clone();
    let url = sim.url();
    let sess2 = sess.clone();
    let poll = std::thread::spawn(move || {
        xml(
            &agent(),
            &url,
            "event.from",
            &[sess2, Value::Array(vec![s("vm")]), tok, Value::Double(30.0)],
        )
        .unwrap()
    });
    std::thread::sleep(Duration::from_millis(200));
    let vm = xml(
        &a,
        &sim.url(),
        "VM.get_by_name_label",
        &[sess.clone(), s("web-01")],
    )
    .unwrap()
    .as_array()
    .unwrap()[0]
        .clone();
    xml(
        &a,
        &sim.url(),
        "VM.set_name_description",
        &[sess, vm.clone(), s("changed over HTTP")],
    )
    .unwrap();
    let batch = poll.join().unwrap();
    let ev = &batch.get("events").unwrap().as_array().unwrap()[0];
    assert_eq!(ev.get("ref"), Some(&vm));
    assert_eq!(ev.get("id").map(|v| v.kind()), Some("string"));
}

#[test]
fn rrd_updates_xml_and_json() {
    let sim = start();
    let a = agent();
    let (u, p) = sim.credentials();
    let sess = xml(
        &a,
        &sim.url(),
        "session.login_with_password",
        &[s(&u), s(&p)],
    )
    .unwrap();
    let sess = sess.as_str().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let url = format!(
        "{}/rrd_updates?session_id={sess}&start={}&cf=AVERAGE&interval=5&host=true",
        sim.url(),
        now - 120
    );
    let resp = a.get(&url).call().unwrap();
    assert_eq!(resp.header("Content-Type"), Some("text/xml"));
    let body = resp.into_string().unwrap();
    assert!(body.starts_with("<?xml"));
    assert!(body.contains("<step>5</step>"));
    assert!(body.contains(":memory_total_kib</entry>"));
    assert!(body.contains(":memory_internal_free</entry>"));
    assert!(body.contains(":cpu0</entry>"));
    let rows = body.matches("<row>").count();
    assert!((20..=26).contains(&rows), "{rows}");
    let resp = a.get(&format!("{url}&json")).call().unwrap();
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    let j: serde_json::Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
    let legend = j["meta"]["legend"].as_array().unwrap();
    assert!(legend
        .iter()
        .any(|l| l.as_str().unwrap().starts_with("AVERAGE:vm:")
            && l.as_str().unwrap().ends_with(":memory")));
    assert_eq!(
        j["data"][0]["values"].as_array().unwrap().len(),
        legend.len()
    );
    // Values vary over time.
    let col = legend
        .iter()
        .position(|l| l.as_str().unwrap().ends_with(":cpu_avg"))
        .unwrap();
    let series: Vec<f64> = j["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["values"][col].as_str().unwrap().parse::<f64>().unwrap())
        .collect();
    assert!(series.iter().any(|v| (v - series[0]).abs() > 1e-6));
    match a
        .get(&format!(
            "{}/rrd_updates?session_id=OpaqueRef:bad&start=0",
            sim.url()
        ))
        .call()
    {
        Err(ureq::Error::Status(code, _)) => assert_eq!(code, 401),
        other => panic!("{other:?}"),
    }
}

#[test]
fn tls_with_a_generated_certificate() {
    let sim = Simulator::start(SimConfig {
        tls: true,
        ..SimConfig::default()
    })
    .unwrap();
    assert!(sim.url().starts_with("https://127.0.0.1:"));
    let fp = sim.fingerprint().unwrap();
    assert_eq!(fp.len(), 32 * 3 - 1);
    assert!(fp.split(':').all(|b| b.len() == 2
        && b.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())));
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let pem = sim.certificate_pem().unwrap();
    let cert = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let a = ureq::AgentBuilder::new().tls_config(Arc::new(cfg)).build();
    let (u, p) = sim.credentials();
    for url in sim.host_urls() {
        let r = xml(&a, &url, "session.login_with_password", &[s(&u), s(&p)]);
        if url == sim.url() {
            assert!(r.unwrap().as_str().unwrap().starts_with("OpaqueRef:"));
        } else {
            assert_eq!(r.unwrap_err().code, "HOST_IS_SLAVE");
        }
    }
    // Asked for it, a member's HOST_IS_SLAVE carries the master's certificate thumbprint.
    let login = xmlrpc::encode_call("session.login_with_password", &[s(&u), s(&p)]);
    let resp = a
        .post(&sim.host_urls()[1])
        .set("Content-Type", "text/xml")
        .set(
            "x-xenapi-request-host-certificate-thumbprint",
            "sha-256:master",
        )
        .send_bytes(&login)
        .unwrap();
    assert_eq!(
        resp.header("x-xenapi-response-host-certificate-thumbprint"),
        Some(fp.as_str())
    );
    let resp = a
        .post(&sim.host_urls()[1])
        .set("Content-Type", "text/xml")
        .send_bytes(&login)
        .unwrap();
    assert_eq!(
        resp.header("x-xenapi-response-host-certificate-thumbprint"),
        None
    );
    // An agent that does not trust the certificate is refused.
    assert!(post(&agent(), &sim.url(), "text/xml", b"<methodCall/>").is_err());
}
