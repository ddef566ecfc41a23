//! Shared bits of the codec benchmark: the measurement every contender prints (Rust, Python
//! and Node alike, one JSON line) and a reader for `/proc/self/status`.

use serde::{Deserialize, Serialize};

/// What one contender reports after decoding one file in its own process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measurement {
    pub contender: String,
    /// Interpreter or compiler version, filled in by the non-Rust runners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Input size.
    pub bytes: u64,
    /// Records decoded (for the raw XML loop: events read).
    pub records: u64,
    /// Wall-clock seconds per timed decode (the warm-up decode is not included).
    pub times: Vec<f64>,
    /// Process CPU seconds (user + system) per timed decode: steadier than wall time on a
    /// shared machine, and the same as wall time for these single-threaded decoders.
    pub cpu_times: Vec<f64>,
    /// Per run, this decode's CPU time over the raw quick-xml loop's on the same bytes, timed
    /// right after it in the same process (Rust XML-RPC contenders only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paired_raw_ratios: Vec<f64>,
    /// VmRSS before reading the file, after reading it, and VmHWM after the first decode.
    pub rss_start_kb: u64,
    pub rss_loaded_kb: u64,
    pub hwm_kb: u64,
}

impl Measurement {
    pub fn median(&self) -> f64 {
        median(&self.times)
    }
    pub fn cpu_median(&self) -> f64 {
        median(&self.cpu_times)
    }
    /// The least disturbed run: on a shared machine, noise only ever adds time.
    pub fn cpu_min(&self) -> f64 {
        self.cpu_times.iter().copied().fold(f64::NAN, f64::min)
    }
}

pub fn median(times: &[f64]) -> f64 {
    let mut t = times.to_vec();
    t.sort_by(f64::total_cmp);
    match t.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => t[n / 2],
        n => (t[n / 2 - 1] + t[n / 2]) / 2.0,
    }
}

/// A `kB` line of `/proc/self/status` (`VmRSS`, `VmHWM`), 0 where there is no procfs.
pub fn proc_status_kb(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time used by this process so far, in seconds.
pub fn process_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
