//! Typed XML-RPC decoding into a record with assorted field types: never panics, hangs or
//! allocates without bound.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use xo_core::rpc::xmlrpc::{decode_envelope_typed, from_fragment};
use xo_core::rpc::Limits;

#[derive(Debug, Deserialize)]
enum Mode {
    Running,
    Halted,
}

#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Rec {
    name: String,
    n: i64,
    u: u32,
    f: f64,
    b: bool,
    opt: Option<i64>,
    mode: Option<Mode>,
    tags: Vec<String>,
    map: BTreeMap<String, String>,
    by_int: BTreeMap<i64, f64>,
    nested: Option<Box<Rec>>,
    pair: Option<(String, i64)>,
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_depth: 32,
        max_size: 1 << 20,
    };
    let _ = decode_envelope_typed::<BTreeMap<String, Rec>>(data, limits);
    let _ = from_fragment::<Rec>(data, limits);
    let _ = decode_envelope_typed::<serde::de::IgnoredAny>(data, limits);
});
