//! The scheduling and memory attributes of config.json: `process.scheduler`,
//! `process.ioPriority`, `process.execCPUAffinity`, `linux.personality`,
//! `linux.memoryPolicy` (applied by `process::attrs`).

use serde::{Deserialize, Serialize};

/// `process.scheduler`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Scheduler {
    /// `SCHED_OTHER`, `SCHED_FIFO`, `SCHED_RR`, `SCHED_BATCH`, `SCHED_ISO`,
    /// `SCHED_IDLE`, `SCHED_DEADLINE`.
    pub policy: String,
    /// Nice value (-20..19) for the normal policies.
    #[serde(default)]
    pub nice: i32,
    /// Static priority for the realtime policies.
    #[serde(default)]
    pub priority: u32,
    /// `SCHED_FLAG_*` names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// SCHED_DEADLINE runtime, deadline and period (ns).
    #[serde(default)]
    pub runtime: u64,
    /// See `runtime`.
    #[serde(default)]
    pub deadline: u64,
    /// See `runtime`.
    #[serde(default)]
    pub period: u64,
}

/// `process.ioPriority`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct IoPriority {
    /// `IOPRIO_CLASS_RT`, `IOPRIO_CLASS_BE`, `IOPRIO_CLASS_IDLE`.
    pub class: String,
    /// 0 (highest) .. 7.
    #[serde(default)]
    pub priority: u32,
}

/// `process.execCPUAffinity`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExecCpuAffinity {
    /// CPUs while the runtime sets the process up (e.g. `0-3,7`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<String>,
    /// CPUs of the process from execve on.
    #[serde(rename = "final", default, skip_serializing_if = "Option::is_none")]
    pub final_: Option<String>,
}

/// `linux.personality`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Personality {
    /// `LINUX` or `LINUX32`.
    pub domain: String,
    /// Additional flags (the spec defines none yet).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// `linux.memoryPolicy`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemoryPolicy {
    /// `MPOL_DEFAULT`, `MPOL_BIND`, `MPOL_INTERLEAVE`, `MPOL_WEIGHTED_INTERLEAVE`,
    /// `MPOL_PREFERRED`, `MPOL_PREFERRED_MANY`, `MPOL_LOCAL`.
    pub mode: String,
    /// NUMA nodes, e.g. `0-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<String>,
    /// `MPOL_F_*` names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}
