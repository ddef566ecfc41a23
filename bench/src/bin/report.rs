//! Runs every contender on the fixtures (each in its own process), then prints a markdown
//! table with the ratios the targets are stated in and writes `OUT/results.md` and `.json`.
//!
//! Usage (from bench/, after `gen`): report [--fixtures out/fixtures] [--out out]
//!        [--runs 7] [--min-secs 4] [--slow-runs 3]
//! Env: PYTHON (default python3), NODE (default node).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use xo_bench::Measurement;

/// One contender: how to run it and which fixture it reads.
struct Contender {
    label: String,
    fixture: &'static str,
    cmd: Vec<String>,
    /// Interpreted peers take seconds per decode: fewer runs keep the whole run short.
    slow: bool,
    /// Whether it must report exactly the record count (not for the raw event loop).
    check_records: bool,
    note: &'static str,
}

struct Row {
    c: Contender,
    result: Result<Measurement, String>,
}

struct Args {
    fixtures: PathBuf,
    out: PathBuf,
    runs: usize,
    min_secs: f64,
    slow_runs: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        fixtures: "out/fixtures".into(),
        out: "out".into(),
        runs: 7,
        min_secs: 4.0,
        slow_runs: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag}: {e}");
        match flag.as_str() {
            "--fixtures" => args.fixtures = value.into(),
            "--out" => args.out = value.into(),
            "--runs" => args.runs = value.parse().map_err(|e| bad(&e))?,
            "--min-secs" => args.min_secs = value.parse().map_err(|e| bad(&e))?,
            "--slow-runs" => args.slow_runs = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

const XML: &str = "vm_get_all_records.xml";
const XML_NO_ZONE: &str = "vm_get_all_records.nozone.xml";
const JSON: &str = "vm_get_all_records.json";

const RAW: &str = "quick-xml-raw";
const CPYTHON: &str = "CPython xmlrpc.client.loads";
const OURS_TYPED: &str = "xo-core xmlrpc typed";

fn contenders(decode_bin: &Path) -> Result<Vec<Contender>, String> {
    let decode = decode_bin.display().to_string();
    let listed = Command::new(&decode)
        .arg("--list")
        .output()
        .map_err(|e| format!("{decode}: {e}"))?;
    let rust: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let node = std::env::var("NODE").unwrap_or_else(|_| "node".into());

    let mut list = Vec::new();
    let rs = |name: &str, fixture, note| Contender {
        label: name.to_string(),
        fixture,
        cmd: vec![decode.clone(), name.to_string()],
        slow: false,
        check_records: name != RAW,
        note,
    };
    for name in rust.iter().filter(|n| n.starts_with("xo-core xmlrpc")) {
        list.push(rs(name, XML, ""));
    }
    list.push(rs(
        RAW,
        XML,
        "events only: no unescaping, no values (the floor)",
    ));
    list.push(rs("serde_xmlrpc", XML, "generic `serde_xmlrpc::Value`"));
    list.push(rs(
        "dxr",
        XML_NO_ZONE,
        "generic `dxr::Value`; rejects xapi's `Z` datetimes, so it reads a copy without them",
    ));
    list.push(Contender {
        label: CPYTHON.into(),
        fixture: XML,
        cmd: vec![python, "peers/cpython_xmlrpc.py".into()],
        slow: true,
        check_records: true,
        note: "expat + Unmarshaller, as the XenAPI module",
    });
    list.push(Contender {
        label: "@vates/xml-rpc (XO)".into(),
        fixture: XML,
        cmd: vec![node, "peers/node_vates.js".into()],
        slow: true,
        check_records: true,
        note: "`xmlRpcParser.parse(parseXml(text))`, as xen-api's XML-RPC transport",
    });
    for name in rust.iter().filter(|n| n.starts_with("xo-core jsonrpc")) {
        list.push(rs(name, JSON, ""));
    }
    list.push(rs(
        "serde_json-value",
        JSON,
        "`serde_json::Value`, reference point",
    ));
    Ok(list)
}

fn run_one(c: &Contender, args: &Args, records: u64) -> Result<Measurement, String> {
    let file = args.fixtures.join(c.fixture).display().to_string();
    let runs = if c.slow { args.slow_runs } else { args.runs };
    let min_secs = if c.slow { 0.0 } else { args.min_secs };
    let mut cmd = Command::new(&c.cmd[0]);
    cmd.args(&c.cmd[1..]).arg(&file);
    if c.slow {
        cmd.args([runs.to_string(), min_secs.to_string(), records.to_string()]);
    } else {
        cmd.args([
            "--runs",
            &runs.to_string(),
            "--min-secs",
            &min_secs.to_string(),
        ]);
        if c.check_records {
            cmd.args(["--expect", &records.to_string()]);
        }
        if c.fixture != JSON && c.label != RAW {
            cmd.args(["--paired", "raw"]);
        }
    }
    let out = cmd.output().map_err(|e| format!("{}: {e}", c.cmd[0]))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
        return Err(format!(
            "exit {}: {}",
            out.status,
            tail.chars().take(300).collect::<String>()
        ));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).map_err(|e| {
        format!(
            "bad output ({e}): {}",
            line.chars().take(200).collect::<String>()
        )
    })
}

fn first_line(cmd: &str, arg: &str) -> String {
    Command::new(cmd)
        .arg(arg)
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(if o.stdout.is_empty() {
                &o.stderr
            } else {
                &o.stdout
            })
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
        })
        .unwrap_or_else(|| "not found".into())
}

fn machine() -> Vec<(&'static str, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string());
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let node = std::env::var("NODE").unwrap_or_else(|_| "node".into());
    vec![
        (
            "nproc",
            std::thread::available_parallelism()
                .map(|n| n.to_string())
                .unwrap_or_default(),
        ),
        ("CPU", cpu.unwrap_or_else(|| "unknown".into())),
        (
            "load average at start",
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split(' ')
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        ("rustc", first_line("rustc", "--version")),
        ("python", first_line(&python, "--version")),
        ("node", first_line(&node, "--version")),
    ]
}

fn main() {
    if let Err(e) = run() {
        eprintln!("report: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let meta_path = args.fixtures.join("meta.json");
    let meta: serde_json::Value = std::fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            format!(
                "{}: missing or unreadable (run gen first)",
                meta_path.display()
            )
        })?;
    let records = meta["records"].as_u64().ok_or("meta.json: no records")?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let decode_bin = exe.with_file_name("decode");
    let machine = machine();

    // The typed decoders must agree with each other before their speed means anything.
    let fx = |name: &str| args.fixtures.join(name).display().to_string();
    let agree = Command::new(&decode_bin)
        .args(["--agree", &fx(XML), &fx(JSON)])
        .output();
    let agreement = match agree {
        Ok(o) if o.status.success() => {
            format!("yes, {} records", String::from_utf8_lossy(&o.stdout).trim())
        }
        Ok(o) => format!("no: {}", String::from_utf8_lossy(&o.stderr).trim()),
        Err(e) => format!("not checked: {e}"),
    };
    eprintln!("typed XML-RPC and JSON-RPC decodes agree: {agreement}");

    let mut rows = Vec::new();
    for c in contenders(&decode_bin)? {
        eprint!("{:<32} ", c.label);
        let result = run_one(&c, &args, records);
        match &result {
            Ok(m) => eprintln!(
                "{:>8.3} s CPU (median of {})",
                m.cpu_median(),
                m.cpu_times.len()
            ),
            Err(e) => eprintln!("FAILED: {e}"),
        }
        rows.push(Row { c, result });
    }

    let mut md = markdown(&rows, &machine, &meta);
    let _ = writeln!(md, "\nTyped XML-RPC and JSON-RPC decodes of the two fixtures are equal record for record: {agreement}.");
    println!("{md}");
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    std::fs::write(args.out.join("results.md"), &md).map_err(|e| e.to_string())?;
    let json = serde_json::json!({
        "machine": machine.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
        "fixtures": meta,
        "typed_decodes_agree": agreement,
        "results": rows.iter().map(|r| match &r.result {
            Ok(m) => serde_json::json!({ "label": r.c.label, "fixture": r.c.fixture, "measurement": m,
                "median_s": m.median(), "cpu_median_s": m.cpu_median(), "cpu_min_s": m.cpu_min() }),
            Err(e) => serde_json::json!({ "label": r.c.label, "fixture": r.c.fixture, "error": e }),
        }).collect::<Vec<_>>(),
    });
    let pretty = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    std::fs::write(args.out.join("results.json"), pretty).map_err(|e| e.to_string())?;
    eprintln!("wrote {}/results.md and results.json", args.out.display());
    Ok(())
}

/// A contender's (median, min) CPU time per decode.
fn cpu_of(rows: &[Row], label: &str) -> Option<(f64, f64)> {
    let m = rows
        .iter()
        .find(|r| r.c.label == label)?
        .result
        .as_ref()
        .ok()?;
    Some((m.cpu_median(), m.cpu_min()))
}

/// Peak RSS above the process's own start, over the input size (input buffer included).
fn peak_ratio(m: &Measurement) -> f64 {
    (m.hwm_kb.saturating_sub(m.rss_start_kb) * 1024) as f64 / m.bytes.max(1) as f64
}

fn markdown(rows: &[Row], machine: &[(&str, String)], meta: &serde_json::Value) -> String {
    let cpython = cpu_of(rows, CPYTHON);
    let raw = cpu_of(rows, RAW);
    let mb = |b: &serde_json::Value| b.as_u64().unwrap_or(0) as f64 / 1e6;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Input: {} VM records ({} fields each), XML-RPC {:.1} MB ({:.0} B/record), JSON-RPC {:.1} MB; seed {}.\n",
        meta["records"], meta["fields"], mb(&meta["xml_bytes"]),
        meta["xml_bytes"].as_f64().unwrap_or(0.0) / meta["records"].as_f64().unwrap_or(1.0),
        mb(&meta["json_bytes"]), meta["seed"],
    );
    s.push_str("| contender | input | CPU time, median (min) | wall, median | runs | MB/s | records/s | speed-up vs CPython, median (min) | time vs quick-xml raw, median (min) | peak RSS / input | notes |\n");
    s.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for r in rows {
        let fixture = if r.c.fixture.ends_with(".json") {
            "JSON-RPC"
        } else {
            "XML-RPC"
        };
        match &r.result {
            Ok(m) => {
                let (t, lo) = (m.cpu_median(), m.cpu_min());
                let speedup = cpython
                    .map(|(c, c_lo)| format!("{:.1}x ({:.1}x)", c / t, c_lo / lo))
                    .unwrap_or_default();
                let vs_raw = if !m.paired_raw_ratios.is_empty() {
                    format!("{:.2}x paired", xo_bench::median(&m.paired_raw_ratios))
                } else if fixture == "XML-RPC" {
                    raw.map(|(q, q_lo)| format!("{:.2}x ({:.2}x)", t / q, lo / q_lo))
                        .unwrap_or_default()
                } else {
                    "–".into()
                };
                let per_s = if r.c.check_records {
                    format!("{:.0}", m.records as f64 / t)
                } else {
                    "–".into()
                };
                let _ = writeln!(
                    s,
                    "| {} | {fixture} | {:.3} s ({:.3} s) | {:.3} s | {} | {:.0} | {per_s} | {speedup} | {vs_raw} | {:.2}x | {} |",
                    r.c.label, t, lo, m.median(), m.cpu_times.len(), m.bytes as f64 / 1e6 / t, peak_ratio(m), r.c.note
                );
            }
            Err(e) => {
                let _ = writeln!(
                    s,
                    "| {} | {fixture} | failed | | | | | | | | {} |",
                    r.c.label,
                    e.replace('|', "\\|")
                );
            }
        }
    }
    s.push_str("\nTime is process CPU time (user + system) per decode over the runs after one warm-up decode: the median, and in brackets the fastest run (the least disturbed one on a shared machine); MB/s and records/s use the median. Wall time is shown too; on a busy machine it is much noisier. ");
    s.push_str(r#""speed-up vs CPython" is CPython's time over this one; "time vs quick-xml raw" is this time over the raw event loop's: for the Rust XML-RPC decoders it is "paired", the median over runs of this decode's time divided by the raw loop's on the same bytes timed right after it in the same process (robust to the machine's load changing between processes); otherwise it compares medians (fastest runs) of separate processes. "#);
    s.push_str("Peak RSS / input is (VmHWM after the first decode − VmRSS at process start) / input size: it counts the input buffer and the decoded result.\n");

    s.push_str("\nTargets:\n\n");
    let typed = rows
        .iter()
        .find(|r| r.c.label == OURS_TYPED)
        .and_then(|r| r.result.as_ref().ok());
    match typed {
        Some(m) => {
            let (t, lo) = (m.cpu_median(), m.cpu_min());
            let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
            if let Some((c, c_lo)) = cpython {
                let _ = writeln!(
                    s,
                    "- typed XML-RPC decode ≥ 15x faster than CPython: {:.1}x on medians, {} ({:.1}x on fastest runs)",
                    c / t,
                    verdict(c / t >= 15.0),
                    c_lo / lo
                );
            }
            if !m.paired_raw_ratios.is_empty() {
                let r = xo_bench::median(&m.paired_raw_ratios);
                let _ = writeln!(
                    s,
                    "- typed XML-RPC decode ≤ 2x quick-xml's raw loop: {r:.2}x (median of {} paired runs), {}",
                    m.paired_raw_ratios.len(),
                    verdict(r <= 2.0)
                );
            }
            if let Some((q, q_lo)) = raw {
                let _ = writeln!(
                    s,
                    "  (across processes: {:.2}x on medians, {:.2}x on fastest runs)",
                    t / q,
                    lo / q_lo
                );
            }
            let p = peak_ratio(m);
            let _ = writeln!(
                s,
                "- peak memory ≤ 3x input (typed XML-RPC): {p:.2}x, {}",
                verdict(p <= 3.0)
            );
        }
        None => s.push_str(
            "- typed XML-RPC decode: not measured in this run (build with `--features ours`)\n",
        ),
    }
    s.push_str("\nMachine:\n\n");
    for (k, v) in machine {
        let _ = writeln!(s, "- {k}: {v}");
    }
    s
}
