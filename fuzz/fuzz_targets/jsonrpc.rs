//! JSON-RPC decoding of arbitrary bytes: no panic, bounded work, and every value that
//! decodes survives encode → decode unchanged (compared in typed-JSON form, so NaN == NaN).
//!
//! `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run jsonrpc corpus/jsonrpc ../xo-core/tests/fixtures/jsonrpc
//!  -- -dict=jsonrpc.dict -max_len=4096 -max_total_time=300`

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use xo_core::model::{self, Value};
use xo_core::rpc::jsonrpc::{self, Id, Version};
use xo_core::rpc::{typed_json, Limits};

#[derive(Deserialize)]
#[allow(dead_code)]
struct Record {
    #[serde(default)]
    name_label: String,
    #[serde(default)]
    memory_target: i64,
    #[serde(default, deserialize_with = "model::de::float")]
    load: f64,
    #[serde(default, rename = "VCPUs_utilisation", deserialize_with = "model::de::int_float_map")]
    vcpus_utilisation: BTreeMap<i64, f64>,
    #[serde(default)]
    other_config: BTreeMap<String, String>,
    #[serde(default)]
    tags: Vec<String>,
}

fn typed(v: &Value) -> String {
    let mut out = String::new();
    typed_json::write_value(v, &mut out);
    out
}

fn limits() -> Limits {
    Limits { max_depth: 32, max_size: 1 << 20 }
}

fuzz_target!(|data: &[u8]| {
    let _ = jsonrpc::decode_call(data, limits());
    let _ = jsonrpc::decode_reply_typed::<Record>(data, limits());
    let _ = jsonrpc::decode_reply_typed::<BTreeMap<String, Record>>(data, limits());
    let _ = jsonrpc::decode_reply_typed::<f64>(data, limits());
    let typed_value = jsonrpc::decode_reply_typed::<Value>(data, limits());
    let reply = jsonrpc::decode_reply(data, limits());
    // Both paths agree on whether the bytes are a reply and on its value.
    match (&reply, &typed_value) {
        (Ok(a), Ok(b)) => match (&a.outcome, &b.outcome) {
            (Ok(x), Ok(y)) => assert_eq!(typed(x), typed(y)),
            (Err(x), Err(y)) => assert_eq!(x, y),
            _ => panic!("outcomes differ"),
        },
        (Err(_), Err(_)) => {}
        (a, b) => panic!("paths disagree: {a:?} / {b:?}"),
    }
    if let Ok(reply) = reply {
        let id = reply.id.clone().unwrap_or(Id::Int(0));
        for version in [Version::V1, Version::V2] {
            let bytes = jsonrpc::encode_reply(&reply.outcome, &id, version);
            let again = jsonrpc::decode_reply(&bytes, Limits { max_depth: 32, max_size: usize::MAX })
                .expect("re-decoding our own encoding");
            assert_eq!(again.version, version);
            assert_eq!(again.id.as_ref(), Some(&id));
            match (&reply.outcome, &again.outcome) {
                (Ok(x), Ok(y)) => assert_eq!(typed(x), typed(y)),
                (Err(x), Err(y)) => assert_eq!(x, y),
                _ => panic!("outcome changed in round trip"),
            }
        }
        if let Ok(v) = &reply.outcome {
            let _ = model::from_value_ref::<Record>(v);
            let _ = model::from_value_ref::<BTreeMap<i64, f64>>(v);
            let back = model::to_value(v).expect("to_value of a decoded Value");
            assert_eq!(typed(&back), typed(v));
        }
    }
});
