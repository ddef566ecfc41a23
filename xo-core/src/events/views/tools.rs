//! Guest tools report: which VMs run the guest agent, with which PV drivers, and which need
//! the tools ISO.
//!
//! Rules (from the cache alone, no RRD call):
//! - agent running: the VM is `Running`, its `guest_metrics` ref resolves, and that record
//!   says `live` (when `live` is absent, `PV_drivers_detected` stands in);
//! - PV drivers version: `PV_drivers_version` `major.minor.micro` plus `-build` when present;
//! - memory data: `memory_internal_free` is written by the same agent, so it is reported
//!   exactly when the agent is running; for a halted VM it is not applicable. Memory use
//!   inside the guest is what the agent's `memory` map says (`total`/`free`, KiB) and is
//!   unknown (`None`, never 0) without a running agent;
//! - verdict: halted → `Halted` (nothing to judge); running without guest metrics →
//!   `NeedsToolsIso`; guest metrics present but not live → `AgentNotRunning`; otherwise `Ok`.

use std::fmt;

use super::Table;
use crate::events::Objects;
use crate::model::{Ref, Vm, VmGuestMetrics, VmPowerState};

/// Whether memory usage inside the guest can be known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryData {
    /// The agent reports it.
    Available,
    /// The VM runs without a reporting agent.
    Missing,
    /// The VM is not running.
    NotApplicable,
}

/// What the operator should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The agent runs.
    Ok,
    /// Running with no guest metrics at all: install the tools.
    NeedsToolsIso,
    /// Tools were seen but the agent is not reporting now.
    AgentNotRunning,
    /// Not running: cannot tell.
    Halted,
}

impl Verdict {
    /// The verdict as the report prints it.
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
    /// The VM's name.
    pub vm: String,
    /// The VM.
    pub vm_ref: Ref<Vm>,
    /// Its power state.
    pub power_state: VmPowerState,
    /// The guest agent runs and reports.
    pub agent_running: bool,
    /// PV drivers version (`9.4.0-146`), when the agent reported one.
    pub pv_drivers: Option<String>,
    /// The guest OS name, when the agent reported one.
    pub os: Option<String>,
    /// Whether memory use inside the guest can be known.
    pub memory: MemoryData,
    /// Bytes in use inside the guest, as the agent reports; `None` when unknown.
    pub memory_used: Option<u64>,
    /// What to do.
    pub verdict: Verdict,
}

/// The report, sorted by VM name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToolsReport {
    /// One row per VM.
    pub vms: Vec<ToolsRow>,
}

impl ToolsReport {
    /// VMs that need action (the tools ISO, or a look at the agent).
    pub fn needing_attention(&self) -> impl Iterator<Item = &ToolsRow> {
        self.vms
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::NeedsToolsIso | Verdict::AgentNotRunning))
    }

    /// The row of the VM with this name.
    pub fn get(&self, vm_name: &str) -> Option<&ToolsRow> {
        self.vms.iter().find(|r| r.vm == vm_name)
    }
}

/// Builds the report: every VM except templates, snapshots and control domains.
pub fn tools_report(o: &Objects) -> ToolsReport {
    let mut vms: Vec<ToolsRow> = o
        .all::<Vm>()
        .filter(|(_, vm)| !(vm.is_a_template || vm.is_a_snapshot || vm.is_control_domain))
        .map(|(r, vm)| row(o, r, vm))
        .collect();
    vms.sort_by(|a, b| (&a.vm, &a.vm_ref).cmp(&(&b.vm, &b.vm_ref)));
    ToolsReport { vms }
}

fn row(o: &Objects, r: Ref<Vm>, vm: &Vm) -> ToolsRow {
    let running = vm.power_state == VmPowerState::Running;
    let gm = o.vm_guest_metrics(vm);
    let live = gm.is_some_and(|g| g.live || g.pv_drivers_detected);
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
        vm: vm.name_label.clone(),
        vm_ref: r,
        power_state: vm.power_state.clone(),
        agent_running,
        pv_drivers: gm.and_then(drivers_version),
        // Windows agents append `|C:\Windows|\Device\…` to the name; keep the name.
        os: gm
            .and_then(|g| g.os_version.get("name"))
            .and_then(|v| v.split('|').next())
            .map(str::to_owned),
        memory,
        memory_used: gm.filter(|_| agent_running).and_then(memory_used),
        verdict,
    }
}

/// `total - free` from the agent's `memory` map (KiB), in bytes.
fn memory_used(gm: &VmGuestMetrics) -> Option<u64> {
    let kib = |k: &str| gm.memory.get(k)?.trim().parse::<u64>().ok();
    let (total, free) = (kib("total")?, kib("free")?);
    Some(total.checked_sub(free)? * 1024)
}

fn drivers_version(gm: &VmGuestMetrics) -> Option<String> {
    let get = |k: &str| {
        gm.pv_drivers_version
            .get(k)
            .map(String::as_str)
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
    /// The report as a table.
    pub fn table(&self) -> Table {
        let mut t = Table::new([
            "VM",
            "POWER",
            "AGENT",
            "PV DRIVERS",
            "MEMORY DATA",
            "MEMORY USED",
            "OS",
            "VERDICT",
        ]);
        for r in &self.vms {
            t.row([
                r.vm.clone(),
                r.power_state.to_string(),
                if r.agent_running { "running" } else { "-" }.to_owned(),
                r.pv_drivers.clone().unwrap_or_else(|| "-".into()),
                match r.memory {
                    MemoryData::Available => "yes",
                    MemoryData::Missing => "no",
                    MemoryData::NotApplicable => "-",
                }
                .to_owned(),
                r.memory_used
                    .map_or_else(|| "unknown".to_owned(), |b| format!("{} MiB", b >> 20)),
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
