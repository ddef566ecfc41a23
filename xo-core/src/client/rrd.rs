//! Sans-IO parser for xapi's `/rrd_updates` reply (XML `xport`, or the JSON form) into named
//! time series, plus the memory formulas XenCenter's Performance tab plots.
//!
//! Legend entries name columns `CF:kind:uuid:metric` (`AVERAGE:vm:<uuid>:memory`). Rows come
//! newest first; series here are sorted oldest first. Values may be `NaN` or `±Infinity`.

use quick_xml::events::Event;
use serde::Deserialize;

use crate::model::parse_float;
use crate::rpc::{DecodeError, Limits};

/// Whose metric a column is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Host,
    Vm,
    Sr,
    Other(String),
}

impl ObjectKind {
    fn parse(s: &str) -> Self {
        match s {
            "host" => ObjectKind::Host,
            "vm" => ObjectKind::Vm,
            "sr" => ObjectKind::Sr,
            o => ObjectKind::Other(o.to_owned()),
        }
    }
}

/// One metric of one object over time.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Consolidation function: `AVERAGE`, `MIN`, `MAX`, `LAST`.
    pub cf: String,
    pub kind: ObjectKind,
    pub uuid: String,
    /// Data source name, e.g. `memory`, `cpu0`, `memory_internal_free`.
    pub metric: String,
    /// `(unix seconds, value)`, oldest first.
    pub points: Vec<(i64, f64)>,
}

/// A parsed `/rrd_updates` reply.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RrdUpdates {
    pub start: i64,
    pub step: i64,
    pub end: i64,
    pub series: Vec<Series>,
}

impl RrdUpdates {
    /// Parses either form: JSON when the first non-space byte is `{`, else XML.
    pub fn parse(bytes: &[u8], limits: Limits) -> Result<Self, DecodeError> {
        if bytes.len() > limits.max_size {
            return Err(DecodeError::new(format!(
                "rrd_updates reply larger than {} bytes",
                limits.max_size
            )));
        }
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => parse_json(bytes, limits),
            _ => parse_xml(bytes),
        }
    }

    /// The series for this object and metric (any consolidation function).
    pub fn find(&self, kind: &ObjectKind, uuid: &str, metric: &str) -> Option<&Series> {
        self.series
            .iter()
            .find(|s| &s.kind == kind && s.uuid == uuid && s.metric == metric)
    }

    /// UUIDs of the objects of this kind that have data, in legend order, deduplicated.
    pub fn uuids(&self, kind: &ObjectKind) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in self.series.iter().filter(|s| &s.kind == kind) {
            if !out.contains(&s.uuid.as_str()) {
                out.push(&s.uuid);
            }
        }
        out
    }

    /// VM memory in use, bytes: `memory − memory_internal_free × 1024` (the latter is KiB,
    /// reported by the guest agent). Points where either is missing or not finite are dropped.
    pub fn vm_memory_used(&self, vm_uuid: &str) -> Option<Vec<(i64, f64)>> {
        let total = self.find(&ObjectKind::Vm, vm_uuid, "memory")?;
        let free = self.find(&ObjectKind::Vm, vm_uuid, "memory_internal_free")?;
        Some(combine(&total.points, &free.points, |m, f| m - f * 1024.0))
    }

    /// Host memory in use, bytes: `(memory_total_kib − memory_free_kib) × 1024`.
    pub fn host_memory_used(&self, host_uuid: &str) -> Option<Vec<(i64, f64)>> {
        let total = self.find(&ObjectKind::Host, host_uuid, "memory_total_kib")?;
        let free = self.find(&ObjectKind::Host, host_uuid, "memory_free_kib")?;
        Some(combine(&total.points, &free.points, |t, f| {
            (t - f) * 1024.0
        }))
    }
}

/// Joins two series on timestamps.
fn combine(a: &[(i64, f64)], b: &[(i64, f64)], f: impl Fn(f64, f64) -> f64) -> Vec<(i64, f64)> {
    a.iter()
        .filter_map(|&(t, x)| {
            let y = b.iter().find(|(tb, _)| *tb == t)?.1;
            let v = f(x, y);
            (x.is_finite() && y.is_finite()).then_some((t, v))
        })
        .collect()
}

fn parse_value(s: &str) -> Result<f64, DecodeError> {
    parse_float(s).ok_or_else(|| DecodeError::new(format!("not a number: {:?}", s.trim())))
}

fn parse_int(s: &str, what: &str) -> Result<i64, DecodeError> {
    s.trim()
        .parse()
        .map_err(|_| DecodeError::new(format!("{what}: not an integer: {s:?}")))
}

/// Turns the legend and rows (newest first or not) into series, checking shapes.
fn build(
    start: i64,
    step: i64,
    end: i64,
    legend: Vec<String>,
    rows: Vec<(i64, Vec<f64>)>,
) -> Result<RrdUpdates, DecodeError> {
    let mut series = Vec::with_capacity(legend.len());
    for entry in &legend {
        let mut parts = entry.splitn(4, ':');
        let (Some(cf), Some(kind), Some(uuid), Some(metric)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(DecodeError::new(format!(
                "legend entry not CF:kind:uuid:metric: {entry:?}"
            )));
        };
        series.push(Series {
            cf: cf.to_owned(),
            kind: ObjectKind::parse(kind),
            uuid: uuid.to_owned(),
            metric: metric.to_owned(),
            points: Vec::with_capacity(rows.len()),
        });
    }
    for (i, (t, values)) in rows.iter().enumerate() {
        if values.len() != series.len() {
            return Err(DecodeError::new(format!(
                "row {i} has {} values for {} columns",
                values.len(),
                series.len()
            )));
        }
        for (s, v) in series.iter_mut().zip(values) {
            s.points.push((*t, *v));
        }
    }
    for s in &mut series {
        s.points.sort_by_key(|p| p.0);
    }
    Ok(RrdUpdates {
        start,
        step,
        end,
        series,
    })
}

fn parse_xml(bytes: &[u8]) -> Result<RrdUpdates, DecodeError> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let (mut start, mut step, mut end) = (0, 0, 0);
    let mut legend = Vec::new();
    let mut rows: Vec<(i64, Vec<f64>)> = Vec::new();
    let mut row: Option<(Option<i64>, Vec<f64>)> = None;
    let mut text = String::new();
    loop {
        let offset = reader.buffer_position();
        let err = |m: String| DecodeError::new(m).at(offset);
        match reader.read_event().map_err(|e| err(format!("XML: {e}")))? {
            Event::Start(e) => {
                if path.len() >= 8 {
                    return Err(err("rrd_updates nested too deep".into()));
                }
                path.push(e.name().as_ref().to_vec());
                text.clear();
                if e.name().as_ref() == b"row" {
                    row = Some((None, Vec::new()));
                }
            }
            Event::Text(t) => {
                let s = std::str::from_utf8(&t).map_err(|_| err("invalid UTF-8".into()))?;
                text.push_str(s);
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let parent = path.last().map(Vec::as_slice);
                match (parent, name.as_slice()) {
                    (Some(b"meta"), b"start") => start = parse_int(&text, "start")?,
                    (Some(b"meta"), b"step") => step = parse_int(&text, "step")?,
                    (Some(b"meta"), b"end") => end = parse_int(&text, "end")?,
                    (Some(b"legend"), b"entry") => legend.push(text.trim().to_owned()),
                    (Some(b"row"), b"t") => {
                        if let Some(r) = row.as_mut() {
                            r.0 = Some(parse_int(&text, "t")?);
                        }
                    }
                    (Some(b"row"), b"v") => {
                        if let Some(r) = row.as_mut() {
                            r.1.push(parse_value(&text).map_err(|e| e.at(offset))?);
                        }
                    }
                    (_, b"row") => match row.take() {
                        Some((Some(t), values)) => rows.push((t, values)),
                        _ => return Err(err("row without <t>".into())),
                    },
                    _ => {}
                }
                text.clear();
            }
            Event::DocType(_) => return Err(err("DOCTYPE not allowed".into())),
            Event::GeneralRef(_) => return Err(err("entity references not expected".into())),
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err(DecodeError::new("truncated rrd_updates document"));
    }
    build(start, step, end, legend, rows)
}

#[derive(Deserialize)]
struct JsonDoc {
    meta: JsonMeta,
    data: Vec<JsonRow>,
}

#[derive(Deserialize)]
struct JsonMeta {
    start: i64,
    step: i64,
    end: i64,
    legend: Vec<String>,
}

#[derive(Deserialize)]
struct JsonRow {
    t: i64,
    values: Vec<JsonNum>,
}

/// xapi writes values as strings (`"0.5"`, `"NaN"`); numbers are accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonNum {
    Num(f64),
    Text(String),
}

fn parse_json(bytes: &[u8], limits: Limits) -> Result<RrdUpdates, DecodeError> {
    // The JSON-RPC decoder's leniency also covers bare NaN/Infinity literals here.
    let doc: JsonDoc =
        crate::rpc::jsonrpc::from_slice_lenient(bytes, limits).map_err(|e| DecodeError {
            message: format!("rrd_updates JSON: {}", e.message),
            ..e
        })?;
    let mut rows = Vec::with_capacity(doc.data.len());
    for r in doc.data {
        let values = r
            .values
            .into_iter()
            .map(|v| match v {
                JsonNum::Num(f) => Ok(f),
                JsonNum::Text(s) => match crate::model::float_sentinel(&s) {
                    Some(f) => Ok(f),
                    None => parse_value(&s),
                },
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push((r.t, values));
    }
    build(
        doc.meta.start,
        doc.meta.step,
        doc.meta.end,
        doc.meta.legend,
        rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM: &str = "0b0cf1a6-1111-2222-3333-444455556666";
    const HOST: &str = "aaaa0000-1111-2222-3333-444455556666";

    fn xml() -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<xport><meta><start>1000</start><step>5</step><end>1010</end><rows>3</rows><columns>4</columns>
<legend><entry>AVERAGE:vm:{VM}:memory</entry><entry>AVERAGE:vm:{VM}:memory_internal_free</entry>
<entry>AVERAGE:host:{HOST}:memory_total_kib</entry><entry>AVERAGE:host:{HOST}:memory_free_kib</entry></legend></meta>
<data><row><t>1010</t><v>2147483648</v><v>1048576</v><v>8388608</v><v>4194304</v></row>
<row><t>1005</t><v>2147483648</v><v>NaN</v><v>8388608</v><v>6291456</v></row>
<row><t>1000</t><v>1.0737418240000000E+09</v><v>524288</v><v>Infinity</v><v>0</v></row></data></xport>"#
        )
    }

    #[test]
    fn xml_xport_parses_into_sorted_series() {
        let u = RrdUpdates::parse(xml().as_bytes(), Limits::default()).unwrap();
        assert_eq!((u.start, u.step, u.end), (1000, 5, 1010));
        assert_eq!(u.series.len(), 4);
        let mem = u.find(&ObjectKind::Vm, VM, "memory").unwrap();
        assert_eq!(mem.cf, "AVERAGE");
        assert_eq!(
            mem.points,
            vec![
                (1000, 1073741824.0),
                (1005, 2147483648.0),
                (1010, 2147483648.0)
            ]
        );
        let free = u.find(&ObjectKind::Vm, VM, "memory_internal_free").unwrap();
        assert!(free.points[1].1.is_nan());
        assert_eq!(u.uuids(&ObjectKind::Host), vec![HOST]);
    }

    #[test]
    fn memory_formulas() {
        let u = RrdUpdates::parse(xml().as_bytes(), Limits::default()).unwrap();
        // 1 GiB - 512 MiB at t=1000; NaN at 1005 dropped; 2 GiB - 1 GiB at 1010.
        assert_eq!(
            u.vm_memory_used(VM).unwrap(),
            vec![(1000, 536870912.0), (1010, 1073741824.0)]
        );
        // (8 GiB - 6 GiB) at 1005 and (8 - 4) GiB at 1010, in bytes; infinite total dropped.
        assert_eq!(
            u.host_memory_used(HOST).unwrap(),
            vec![(1005, 2147483648.0), (1010, 4294967296.0)]
        );
        assert!(u.vm_memory_used("nope").is_none());
    }

    #[test]
    fn json_form_with_string_and_number_values() {
        let json = format!(
            r#"{{"meta":{{"start":1000,"step":5,"end":1005,"rows":2,"columns":2,
            "legend":["AVERAGE:vm:{VM}:memory","MAX:vm:{VM}:cpu0"]}},
            "data":[{{"t":1005,"values":["3","NaN"]}},{{"t":1000,"values":[1.5,"-Infinity"]}}]}}"#
        );
        let u = RrdUpdates::parse(json.as_bytes(), Limits::default()).unwrap();
        assert_eq!(
            u.find(&ObjectKind::Vm, VM, "memory").unwrap().points,
            vec![(1000, 1.5), (1005, 3.0)]
        );
        let cpu = u.find(&ObjectKind::Vm, VM, "cpu0").unwrap();
        assert_eq!(cpu.cf, "MAX");
        assert_eq!(cpu.points[0].1, f64::NEG_INFINITY);
        assert!(cpu.points[1].1.is_nan());
    }

    #[test]
    fn json_form_with_bare_non_finite_literals() {
        // Older rrdd wrote NaN/Infinity unquoted; the JSON-RPC leniency covers them.
        let json = format!(
            r#"{{"meta":{{"start":1000,"step":5,"end":1005,"rows":2,"columns":1,
            "legend":["AVERAGE:vm:{VM}:memory"]}},
            "data":[{{"t":1005,"values":[NaN]}},{{"t":1000,"values":[-Infinity]}}]}}"#
        );
        let u = RrdUpdates::parse(json.as_bytes(), Limits::default()).unwrap();
        let points = &u.find(&ObjectKind::Vm, VM, "memory").unwrap().points;
        assert_eq!(points[0], (1000, f64::NEG_INFINITY));
        assert!(points[1].1.is_nan());
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let l = Limits::default();
        let cases: Vec<Vec<u8>> = vec![
            b"<xport><meta><legend><entry>bad</entry></legend></meta></xport>".to_vec(),
            format!("<xport><meta><legend><entry>AVERAGE:vm:{VM}:m</entry></legend></meta><data><row><t>1</t></row></data></xport>").into_bytes(),
            b"<xport><data><row><v>1</v></row></data></xport>".to_vec(),
            b"<xport><meta><start>x</start></meta></xport>".to_vec(),
            b"<xport><meta>".to_vec(),
            b"<!DOCTYPE x [<!ENTITY a 'b'>]><xport/>".to_vec(),
            b"<xport><data><row><t>1</t><v>abc</v></row></data></xport>".to_vec(),
            b"\xff\xfe<xport>".to_vec(),
            b"{\"meta\":{}}".to_vec(),
            b"{\"meta\":{\"start\":1,\"step\":1,\"end\":1,\"legend\":[]},\"data\":[{\"t\":1,\"values\":[\"1\"]}]}".to_vec(),
        ];
        for c in cases {
            assert!(
                RrdUpdates::parse(&c, l).is_err(),
                "{}",
                String::from_utf8_lossy(&c)
            );
        }
        let tiny = Limits {
            max_size: 10,
            ..Limits::default()
        };
        assert!(RrdUpdates::parse(xml().as_bytes(), tiny).is_err());
    }
}
