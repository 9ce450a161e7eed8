//! `linux.seccomp` (config-linux.md "Seccomp"). The names (actions,
//! operators, architectures, flags) stay strings here; `seccomp` checks
//! them and compiles the profile.

use serde::{Deserialize, Serialize};

/// `linux.seccomp`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seccomp {
    /// `SCMP_ACT_*` for calls no rule names (empty, with no `syscalls`:
    /// seccomp disabled, as with runc).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub default_action: String,
    /// errno of an `SCMP_ACT_ERRNO` default action (default EPERM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u64>,
    /// `SCMP_ARCH_*` the profile covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    /// `SECCOMP_FILTER_FLAG_*` (absent: runc's default, `SPEC_ALLOW`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
    /// Unix socket of the agent that receives the notify listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<String>,
    /// Opaque data passed to that agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    /// Rules, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<Vec<Syscall>>,
}

/// One of `linux.seccomp.syscalls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Syscall {
    /// System call names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    /// `SCMP_ACT_*`.
    #[serde(default)]
    pub action: String,
    /// errno of `SCMP_ACT_ERRNO` / data of `SCMP_ACT_TRACE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u64>,
    /// Argument checks (ANDed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<SeccompArg>>,
}

/// One of a rule's `args`: `args[index] op value`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompArg {
    /// Argument index (0..5).
    #[serde(default)]
    pub index: u64,
    /// Value compared.
    #[serde(default)]
    pub value: u64,
    /// Second value (`SCMP_CMP_MASKED_EQ`).
    #[serde(default)]
    pub value_two: u64,
    /// `SCMP_CMP_*`.
    #[serde(default)]
    pub op: String,
}
