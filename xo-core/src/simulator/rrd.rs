//! `GET /rrd_updates`: plausible, time-varying metrics in xapi's xport format (XML, or JSON
//! when `json` is in the query or asked for by `Accept`). 5 s steps, up to 10 minutes.

use std::fmt::Write;
use std::sync::Arc;

use super::state::Shared;
use crate::model::Value;

const STEP: i64 = 5;
const MAX_ROWS: i64 = 120;

fn param<'a>(query: &'a str, key: &str) -> impl Iterator<Item = &'a str> + 'a {
    let key = key.to_owned();
    query.split('&').filter_map(move |kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then_some(v)
    })
}

fn has_key(query: &str, key: &str) -> bool {
    query
        .split('&')
        .any(|kv| kv.split_once('=').map_or(kv, |(k, _)| k) == key)
}

/// Minimal percent-decoding for refs and uuids in the query.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A smooth pseudo-random wave in [0, 1] for a series, varying over minutes.
fn wave(seed: u64, t: i64) -> f64 {
    let phase = (seed % 1000) as f64 / 1000.0 * std::f64::consts::TAU;
    let slow = ((t as f64) / 300.0 + phase).sin();
    let fast = ((t as f64) / 37.0 + phase * 3.0).sin();
    (0.5 + 0.35 * slow + 0.15 * fast).clamp(0.0, 1.0)
}

fn seed_of(s: &str) -> u64 {
    s.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1099511628211)
    })
}

struct Series {
    legend: String,
    f: Box<dyn Fn(i64) -> f64>,
}

/// Returns (status, content type, body).
pub fn handle(
    shared: &Arc<Shared>,
    host: usize,
    query: &str,
    cookie: &str,
    accept_json: bool,
) -> (u16, &'static str, String) {
    let mut st = shared.lock();
    let session = param(query, "session_id")
        .next()
        .map(unescape)
        .or_else(|| {
            cookie
                .split(';')
                .filter_map(|c| c.trim().strip_prefix("session_id="))
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_default();
    if !super::session_idle::touch(&mut st, &session) {
        return (401, "text/plain", "Unauthorized\n".into());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let end = now - now % STEP;
    let start = param(query, "start")
        .next()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(end - 60);
    let start = start.clamp(end - (MAX_ROWS - 1) * STEP, end);
    let cf = param(query, "cf").next().unwrap_or("AVERAGE").to_owned();
    let want_host = param(query, "host").next() == Some("true");
    let vm_uuids: Vec<String> = param(query, "vm_uuid").map(unescape).collect();
    let json = has_key(query, "json") || accept_json;

    let mut series: Vec<Series> = Vec::new();
    let (vc, hc, mc) = (
        st.db.class_index("VM"),
        st.db.class_index("host"),
        st.db.class_index("VM_metrics"),
    );
    let host_ref = st.hosts.get(host).map(|h| h.r.clone()).unwrap_or_default();
    if want_host {
        let uuid = st.db.get_str(hc, &host_ref, "uuid");
        let s = seed_of(&uuid);
        let total_kib = 64.0 * 1024.0 * 1024.0;
        series.push(Series {
            legend: format!("{cf}:host:{uuid}:memory_total_kib"),
            f: Box::new(move |_| total_kib),
        });
        series.push(Series {
            legend: format!("{cf}:host:{uuid}:memory_free_kib"),
            f: Box::new(move |t| total_kib * (0.55 + 0.2 * wave(s, t))),
        });
        series.push(Series {
            legend: format!("{cf}:host:{uuid}:cpu_avg"),
            f: Box::new(move |t| 0.05 + 0.3 * wave(s ^ 1, t)),
        });
        series.push(Series {
            legend: format!("{cf}:host:{uuid}:loadavg"),
            f: Box::new(move |t| 0.2 + 2.0 * wave(s ^ 2, t)),
        });
    }
    // VMs resident on the host queried (as xapi: the data is per host).
    let resident: Vec<String> = st
        .db
        .get(hc, &host_ref, "resident_VMs")
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    for vm in resident {
        let uuid = st.db.get_str(vc, &vm, "uuid");
        if st.db.get_bool(vc, &vm, "is_control_domain") && !vm_uuids.contains(&uuid) {
            continue;
        }
        if !vm_uuids.is_empty() && !vm_uuids.contains(&uuid) {
            continue;
        }
        let metrics = st.db.get_str(vc, &vm, "metrics");
        let memory = st.db.get_i64(mc, &metrics, "memory_actual") as f64;
        let target = st.db.get_i64(vc, &vm, "memory_target") as f64;
        let vcpus = st.db.get_i64(mc, &metrics, "VCPUs_number").max(1);
        let s = seed_of(&uuid);
        series.push(Series {
            legend: format!("{cf}:vm:{uuid}:memory"),
            f: Box::new(move |_| memory),
        });
        series.push(Series {
            legend: format!("{cf}:vm:{uuid}:memory_target"),
            f: Box::new(move |_| target),
        });
        series.push(Series {
            legend: format!("{cf}:vm:{uuid}:memory_internal_free"),
            f: Box::new(move |t| memory / 1024.0 * (0.2 + 0.5 * wave(s, t))),
        });
        for c in 0..vcpus.min(64) {
            series.push(Series {
                legend: format!("{cf}:vm:{uuid}:cpu{c}"),
                f: Box::new(move |t| 0.02 + 0.6 * wave(s ^ (c as u64 + 7), t)),
            });
        }
    }
    drop(st);

    let rows: Vec<i64> = (0..=((end - start) / STEP))
        .map(|i| end - i * STEP)
        .collect();
    if json {
        let legend: Vec<String> = series
            .iter()
            .map(|s| serde_json::to_string(&s.legend).unwrap_or_default())
            .collect();
        let mut body = format!(
            "{{\"meta\":{{\"start\":{start},\"step\":{STEP},\"end\":{end},\"rows\":{},\"columns\":{},\"legend\":[{}]}},\"data\":[",
            rows.len(),
            series.len(),
            legend.join(",")
        );
        for (i, t) in rows.iter().enumerate() {
            // xapi writes each value as a JSON string (`string (Utils.f_to_s x)` in rrd_updates.ml).
            let values: Vec<String> = series
                .iter()
                .map(|s| format!("\"{}\"", num((s.f)(*t))))
                .collect();
            let _ = write!(
                body,
                "{}{{\"t\":{t},\"values\":[{}]}}",
                if i > 0 { "," } else { "" },
                values.join(",")
            );
        }
        body.push_str("]}");
        (200, "application/json", body)
    } else {
        let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><xport><meta>");
        let _ = write!(body, "<start>{start}</start><step>{STEP}</step><end>{end}</end><rows>{}</rows><columns>{}</columns><legend>", rows.len(), series.len());
        for s in &series {
            let _ = write!(body, "<entry>{}</entry>", s.legend);
        }
        body.push_str("</legend></meta><data>");
        for t in &rows {
            let _ = write!(body, "<row><t>{t}</t>");
            for s in &series {
                let _ = write!(body, "<v>{}</v>", num((s.f)(*t)));
            }
            body.push_str("</row>");
        }
        body.push_str("</data></xport>");
        (200, "text/xml", body)
    }
}

/// Numbers as xapi prints them (`%0.15g`-like; integral values without a fraction).
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_helpers() {
        let q = "session_id=OpaqueRef%3Aabc&start=10&host=true&vm_uuid=a&vm_uuid=b&json";
        assert_eq!(param(q, "vm_uuid").collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(
            unescape(param(q, "session_id").next().unwrap()),
            "OpaqueRef:abc"
        );
        assert!(has_key(q, "json"));
        assert!(!has_key(q, "jso"));
        assert_eq!(num(3.0), "3");
        assert_eq!(num(0.25), "0.25");
        assert!(wave(1, 0) >= 0.0 && wave(1, 0) <= 1.0);
        assert_ne!(wave(1, 0), wave(1, 100));
    }
}
