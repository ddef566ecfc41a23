//! Guest tools report: which VMs run the guest agent, with which PV drivers, and which need
//! the tools ISO.
//!
//! Rules (from the cache alone, no RRD call):
//! - agent running: the VM is `Running`, its `guest_metrics` ref resolves, and that record
//!   says `live` (when `live` is absent, `PV_drivers_detected` stands in);
//! - PV drivers version: `PV_drivers_version` `major.minor.micro` plus `-build` when present;
//! - memory data: `memory_internal_free` is written by the same agent, so it is reported
//!   exactly when the agent is running; for a halted VM it is not applicable;
//! - verdict: halted → `Halted` (nothing to judge); running without guest metrics →
//!   `NeedsToolsIso`; guest metrics present but not live → `AgentNotRunning`; otherwise `Ok`.

use std::fmt;

use super::Table;
use crate::events::{Object, Objects};

/// Whether memory usage inside the guest can be known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryData {
    Available,
    Missing,
    /// The VM is not running.
    NotApplicable,
}

/// What the operator should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Running with no guest metrics at all: install the tools.
    NeedsToolsIso,
    /// Tools were seen but the agent is not reporting now.
    AgentNotRunning,
    /// Not running: cannot tell.
    Halted,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::NeedsToolsIso => "needs tools ISO",
            Verdict::AgentNotRunning => "agent not running",
            Verdict::Halted => "halted",
        }
    }
}

/// One VM's line.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolsRow {
    pub vm: String,
    pub vm_ref: String,
    pub power_state: String,
    pub agent_running: bool,
    pub pv_drivers: Option<String>,
    pub os: Option<String>,
    pub memory: MemoryData,
    pub verdict: Verdict,
}

/// The report, sorted by VM name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToolsReport {
    pub vms: Vec<ToolsRow>,
}

impl ToolsReport {
    /// VMs that need action (the tools ISO, or a look at the agent).
    pub fn needing_attention(&self) -> impl Iterator<Item = &ToolsRow> {
        self.vms
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::NeedsToolsIso | Verdict::AgentNotRunning))
    }

    pub fn get(&self, vm_name: &str) -> Option<&ToolsRow> {
        self.vms.iter().find(|r| r.vm == vm_name)
    }
}

/// Builds the report: every VM except templates, snapshots and control domains.
pub fn tools_report(o: &Objects) -> ToolsReport {
    let mut vms: Vec<ToolsRow> = o
        .all("VM")
        .filter(|vm| {
            !["is_a_template", "is_a_snapshot", "is_control_domain"]
                .iter()
                .any(|f| vm.bool(f) == Some(true))
        })
        .map(|vm| row(o, vm))
        .collect();
    vms.sort_by(|a, b| (&a.vm, &a.vm_ref).cmp(&(&b.vm, &b.vm_ref)));
    ToolsReport { vms }
}

fn row(o: &Objects, vm: &Object) -> ToolsRow {
    let power_state = vm.text("power_state").to_owned();
    let running = power_state.eq_ignore_ascii_case("running");
    let gm = o.vm_guest_metrics(vm);
    let live = gm
        .and_then(|g| g.bool("live").or_else(|| g.bool("PV_drivers_detected")))
        .unwrap_or(false);
    let agent_running = running && live;
    let verdict = match (running, gm, live) {
        (false, _, _) => Verdict::Halted,
        (true, None, _) => Verdict::NeedsToolsIso,
        (true, Some(_), false) => Verdict::AgentNotRunning,
        (true, Some(_), true) => Verdict::Ok,
    };
    let memory = match (running, agent_running) {
        (false, _) => MemoryData::NotApplicable,
        (true, true) => MemoryData::Available,
        (true, false) => MemoryData::Missing,
    };
    ToolsRow {
        vm: vm.name_label().to_owned(),
        vm_ref: vm.ref_.clone(),
        power_state,
        agent_running,
        pv_drivers: gm.and_then(|g| drivers_version(g)),
        // Windows agents append `|C:\Windows|\Device\…` to the name; keep the name.
        os: gm.and_then(|g| {
            g.map("os_version")
                .into_iter()
                .find(|(k, _)| *k == "name")
                .and_then(|(_, v)| v.split('|').next())
                .map(str::to_owned)
        }),
        memory,
        verdict,
    }
}

fn drivers_version(gm: &Object) -> Option<String> {
    let m = gm.map("PV_drivers_version");
    let get = |k: &str| {
        m.iter()
            .find(|(x, _)| *x == k)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_empty())
    };
    let major = get("major")?;
    let mut s = format!(
        "{major}.{}.{}",
        get("minor").unwrap_or("0"),
        get("micro").unwrap_or("0")
    );
    if let Some(b) = get("build") {
        s.push('-');
        s.push_str(b);
    }
    Some(s)
}

impl ToolsReport {
    pub fn table(&self) -> Table {
        let mut t = Table::new([
            "VM",
            "POWER",
            "AGENT",
            "PV DRIVERS",
            "MEMORY DATA",
            "OS",
            "VERDICT",
        ]);
        for r in &self.vms {
            t.row([
                r.vm.clone(),
                r.power_state.clone(),
                if r.agent_running { "running" } else { "-" }.to_owned(),
                r.pv_drivers.clone().unwrap_or_else(|| "-".into()),
                match r.memory {
                    MemoryData::Available => "yes",
                    MemoryData::Missing => "no",
                    MemoryData::NotApplicable => "-",
                }
                .to_owned(),
                r.os.clone().unwrap_or_else(|| "-".into()),
                r.verdict.as_str().to_owned(),
            ]);
        }
        t
    }
}

impl fmt::Display for ToolsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.table().fmt(f)
    }
}
