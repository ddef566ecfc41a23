//! Views over a cache snapshot: pure functions, no IO.

mod network_map;
mod table;
mod tools;

pub use network_map::{
    guest_addresses, network_map, BondRole, HostPifs, NetworkMap, NetworkVms, PifRow, VmAttachment,
};
pub use table::Table;
pub use tools::{tools_report, MemoryData, ToolsReport, ToolsRow, Verdict};
