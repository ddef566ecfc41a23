//! Times one Rust contender on one file, in its own process so its peak RSS is its own.
//!
//! Usage: decode CONTENDER FILE [--runs N] [--min-secs S] [--expect RECORDS]
//! Prints one JSON line (see `xo_bench::Measurement`). `decode --list` names the contenders.

use std::time::{Duration, Instant};

use xo_bench::{proc_status_kb, process_cpu_secs, Measurement};

/// Decodes the bytes and returns how many records (or, for the raw loop, events) it saw.
type Decoder = fn(&[u8]) -> Result<usize, String>;

fn contenders() -> Vec<(&'static str, Decoder)> {
    let mut list: Vec<(&'static str, Decoder)> = vec![
        ("quick-xml-raw", quick_xml_raw),
        ("dxr", dxr),
        ("serde_xmlrpc", serde_xmlrpc),
        ("serde_json-value", serde_json_value),
    ];
    list.extend(ours::contenders());
    list
}

/// quick-xml's event loop over the borrowed bytes: no unescaping, no values. The floor.
fn quick_xml_raw(bytes: &[u8]) -> Result<usize, String> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut events = 0usize;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => return Ok(events),
            Ok(_) => events += 1,
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| e.to_string())
}

/// dxr's generic `MethodResponse` (serde over quick-xml into `dxr::Value`).
fn dxr(bytes: &[u8]) -> Result<usize, String> {
    // dxr's error copies the whole input; keep only its kind.
    let response =
        dxr::MethodResponse::from_xml(utf8(bytes)?).map_err(|_| "dxr: invalid data".to_string())?;
    match response.value {
        dxr::Value::Struct(envelope) => match envelope.get("Value") {
            Some(dxr::Value::Struct(records)) => Ok(records.len()),
            _ => Err("dxr: no Value struct".into()),
        },
        _ => Err("dxr: reply is not a struct".into()),
    }
}

/// serde_xmlrpc's `response_from_str` into its generic `Value`.
fn serde_xmlrpc(bytes: &[u8]) -> Result<usize, String> {
    let envelope: serde_xmlrpc::Value =
        serde_xmlrpc::response_from_str(utf8(bytes)?).map_err(|e| e.to_string())?;
    let serde_xmlrpc::Value::Struct(envelope) = envelope else {
        return Err("serde_xmlrpc: reply is not a struct".into());
    };
    match envelope.get("Value") {
        Some(serde_xmlrpc::Value::Struct(records)) => Ok(records.len()),
        _ => Err("serde_xmlrpc: no Value struct".into()),
    }
}

/// Reference point for the JSON fixture: serde_json into its generic tree.
fn serde_json_value(bytes: &[u8]) -> Result<usize, String> {
    let reply: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    reply["result"]
        .as_object()
        .map(|m| m.len())
        .ok_or_else(|| "no result object".into())
}

#[cfg(feature = "ours")]
mod ours {
    use xo_core::model::Value;
    use xo_core::rpc::{jsonrpc, xmlrpc, Limits};

    use super::Decoder;

    pub fn contenders() -> Vec<(&'static str, Decoder)> {
        let mut list: Vec<(&'static str, Decoder)> = vec![
            ("xo-core xmlrpc Value", xml_value),
            ("xo-core jsonrpc Value", json_value),
        ];
        list.extend(typed::contenders());
        list
    }

    fn struct_len(value: Value) -> Result<usize, String> {
        match value {
            Value::Struct(s) => Ok(s.len()),
            _ => Err("result is not a struct".into()),
        }
    }

    fn xml_value(bytes: &[u8]) -> Result<usize, String> {
        let outcome =
            xmlrpc::decode_envelope(bytes, Limits::default()).map_err(|e| e.to_string())?;
        struct_len(outcome.map_err(|f| format!("{f:?}"))?)
    }

    fn json_value(bytes: &[u8]) -> Result<usize, String> {
        let reply = jsonrpc::decode_reply(bytes, Limits::default()).map_err(|e| e.to_string())?;
        struct_len(reply.outcome.map_err(|f| format!("{f:?}"))?)
    }

    /// Straight into the generated records, as a client's `VM.get_all_records` does.
    #[cfg(feature = "typed")]
    mod typed {
        use std::collections::HashMap;

        use xo_core::model::{Ref, Vm};
        use xo_core::rpc::{jsonrpc, xmlrpc, Limits};

        use super::Decoder;

        type AllVms = HashMap<Ref<Vm>, Vm>;

        pub fn contenders() -> Vec<(&'static str, Decoder)> {
            vec![
                ("xo-core xmlrpc typed", xml_typed),
                ("xo-core jsonrpc typed", json_typed),
            ]
        }

        /// Both fixtures carry the same data: the typed decodes must be equal, record for record.
        pub fn agree(xml: &[u8], json: &[u8]) -> Result<usize, String> {
            let a = xmlrpc::decode_envelope_typed::<AllVms>(xml, Limits::default())
                .map_err(|e| e.to_string())?;
            let b = jsonrpc::decode_reply_typed::<AllVms>(json, Limits::default())
                .map_err(|e| e.to_string())?;
            let (a, b) = (
                a.map_err(|f| format!("{f:?}"))?,
                b.outcome.map_err(|f| format!("{f:?}"))?,
            );
            match a.iter().find(|(k, v)| b.get(*k) != Some(*v)) {
                None if a.len() == b.len() => Ok(a.len()),
                None => Err(format!(
                    "{} records from XML-RPC, {} from JSON-RPC",
                    a.len(),
                    b.len()
                )),
                Some((k, _)) => Err(format!(
                    "record {} differs between XML-RPC and JSON-RPC",
                    k.as_str()
                )),
            }
        }

        fn xml_typed(bytes: &[u8]) -> Result<usize, String> {
            let outcome = xmlrpc::decode_envelope_typed::<AllVms>(bytes, Limits::default())
                .map_err(|e| e.to_string())?;
            Ok(outcome.map_err(|f| format!("{f:?}"))?.len())
        }

        fn json_typed(bytes: &[u8]) -> Result<usize, String> {
            let reply = jsonrpc::decode_reply_typed::<AllVms>(bytes, Limits::default())
                .map_err(|e| e.to_string())?;
            Ok(reply.outcome.map_err(|f| format!("{f:?}"))?.len())
        }
    }

    #[cfg(not(feature = "typed"))]
    mod typed {
        pub fn contenders() -> Vec<(&'static str, super::Decoder)> {
            Vec::new()
        }
        pub fn agree(_: &[u8], _: &[u8]) -> Result<usize, String> {
            Err("built without feature typed".into())
        }
    }

    pub use typed::agree;
}

#[cfg(not(feature = "ours"))]
mod ours {
    pub fn contenders() -> Vec<(&'static str, super::Decoder)> {
        Vec::new()
    }
    pub fn agree(_: &[u8], _: &[u8]) -> Result<usize, String> {
        Err("built without feature typed".into())
    }
}

struct Args {
    contender: String,
    file: String,
    runs: usize,
    min_secs: f64,
    expect: Option<usize>,
    /// Also time the raw event loop right after each run, for a load-robust ratio.
    paired: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut rest = std::env::args().skip(1);
    let contender = rest.next().ok_or(
        "usage: decode CONTENDER FILE [--runs N] [--min-secs S] [--expect N] [--paired raw]",
    )?;
    if contender == "--agree" {
        // decode --agree XML JSON: the typed decodes of both fixtures must be equal.
        let (xml, json) = (
            rest.next().ok_or("missing XML")?,
            rest.next().ok_or("missing JSON")?,
        );
        let read = |p: &str| std::fs::read(p).map_err(|e| format!("{p}: {e}"));
        let n = ours::agree(&read(&xml)?, &read(&json)?)?;
        println!("{n}");
        std::process::exit(0);
    }
    if contender == "--list" {
        contenders().iter().for_each(|(name, _)| println!("{name}"));
        std::process::exit(0);
    }
    let file = rest.next().ok_or("missing FILE")?;
    let mut args = Args {
        contender,
        file,
        runs: 5,
        min_secs: 2.0,
        expect: None,
        paired: false,
    };
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag}: {e}");
        match flag.as_str() {
            "--runs" => args.runs = value.parse().map_err(|e| bad(&e))?,
            "--min-secs" => args.min_secs = value.parse().map_err(|e| bad(&e))?,
            "--expect" => args.expect = Some(value.parse().map_err(|e| bad(&e))?),
            "--paired" => args.paired = value == "raw",
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("decode: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let decode = contenders()
        .into_iter()
        .find(|(name, _)| *name == args.contender)
        .map(|(_, f)| f)
        .ok_or_else(|| format!("unknown contender {:?} (see --list)", args.contender))?;

    let rss_start_kb = proc_status_kb("VmRSS");
    let bytes = std::fs::read(&args.file).map_err(|e| format!("{}: {e}", args.file))?;
    let rss_loaded_kb = proc_status_kb("VmRSS");

    // The first decode doubles as warm-up; the high-water mark after it is one decode's peak.
    let count = decode(&bytes)?;
    let hwm_kb = proc_status_kb("VmHWM");
    if let Some(want) = args.expect.filter(|&want| want != count) {
        return Err(format!(
            "{} decoded {count} records, expected {want}",
            args.contender
        ));
    }

    let (mut times, mut cpu_times, mut paired) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    while times.len() < args.runs || started.elapsed() < Duration::from_secs_f64(args.min_secs) {
        let (t, cpu) = (Instant::now(), process_cpu_secs());
        let n = decode(std::hint::black_box(&bytes))?;
        times.push(t.elapsed().as_secs_f64());
        let spent = process_cpu_secs() - cpu;
        cpu_times.push(spent);
        std::hint::black_box(n);
        if args.paired {
            // Same process, same moment: the load on a shared machine hits both alike.
            let cpu = process_cpu_secs();
            std::hint::black_box(quick_xml_raw(std::hint::black_box(&bytes))?);
            paired.push(spent / (process_cpu_secs() - cpu));
        }
        if times.len() >= 1000 {
            break;
        }
    }

    let m = Measurement {
        contender: args.contender,
        runtime: None,
        bytes: bytes.len() as u64,
        records: count as u64,
        times,
        cpu_times,
        paired_raw_ratios: paired,
        rss_start_kb,
        rss_loaded_kb,
        hwm_kb,
    };
    println!("{}", serde_json::to_string(&m).map_err(|e| e.to_string())?);
    Ok(())
}
