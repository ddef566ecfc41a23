//! Generic XML-RPC decoding: never panics; whatever decodes re-encodes and decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xo_core::model::Value;
use xo_core::rpc::xmlrpc::{
    decode_document, decode_envelope, decode_value, encode_value, Document, Response,
};
use xo_core::rpc::Limits;

/// Ints travel untagged, so they come back as strings; NaN never equals itself.
fn normalise(v: &Value) -> Value {
    match v {
        Value::Int(i) => Value::String(i.to_string()),
        Value::Int32(i) => Value::String(i.to_string()),
        Value::Double(f) if f.is_nan() => Value::String("NaN".into()),
        Value::String(s) => Value::String(
            s.chars()
                .filter(|&c| c >= ' ' || "\t\n\r".contains(c))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalise).collect()),
        Value::Struct(s) => Value::Struct(
            s.iter()
                .map(|(k, v)| {
                    (
                        k.chars()
                            .filter(|&c| c >= ' ' || "\t\n\r".contains(c))
                            .collect(),
                        normalise(v),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn round_trip(v: &Value, limits: Limits) {
    let mut out = Vec::new();
    encode_value(v, &mut out);
    let back = decode_value(&out, limits).expect("our own encoding decodes");
    assert_eq!(normalise(&back), normalise(v));
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_depth: 32,
        max_size: 1 << 20,
    };
    if let Ok(v) = decode_value(data, limits) {
        round_trip(&v, limits);
    }
    match decode_document(data, limits) {
        Ok(Document::Call(c)) => c.params.iter().for_each(|p| round_trip(p, limits)),
        Ok(Document::Response(Response::Params(p))) => p.iter().for_each(|p| round_trip(p, limits)),
        _ => {}
    }
    let _ = decode_envelope(data, limits);
});
