//! `linux.seccomp` read and validated into rules with kernel action values,
//! in runc's terms (one rule per name, errno defaults, flag defaults).

use crate::spec::{Seccomp, SeccompArg};

use super::arch::{self, Arch};
use super::SeccompError;
use crate::logging::one_line;

/// The profile, validated.
#[derive(Debug)]
pub(super) struct Profile {
    /// `SECCOMP_RET_*` value of `defaultAction` (with its errno).
    pub default_action: u32,
    /// The ABIs named in `architectures` that corten compiles.
    pub listed: Vec<Arch>,
    /// runc's -ENOSYS for calls newer than the profile applies.
    pub enosys_stub: bool,
    /// One rule per name, in profile order; rules equal to the default
    /// action are still here (they count for the -ENOSYS boundary).
    pub rules: Vec<Rule>,
    /// `SECCOMP_FILTER_FLAG_*` from `flags`.
    pub flags: libc::c_ulong,
    /// `flags` was absent, so `SPEC_ALLOW` is runc's default, not a request.
    pub implied_spec_allow: bool,
    /// Some rule uses `SCMP_ACT_NOTIFY`.
    pub notify: bool,
    pub listener_path: Option<String>,
    pub listener_metadata: String,
}

/// One system call with its action and (ANDed) argument checks.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub name: String,
    pub action: u32,
    pub args: Vec<ArgCmp>,
}

/// `args[]` entry: `args[index] op value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ArgCmp {
    pub index: u8,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

/// `SCMP_CMP_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & value) == value_two`.
    MaskedEq,
}

/// Reads `linux.seccomp`; `None` when it disables seccomp (no
/// `defaultAction` and no `syscalls`), as with runc.
pub(super) fn parse(raw: &Seccomp) -> Result<Option<Profile>, SeccompError> {
    let syscalls = raw.syscalls.clone().unwrap_or_default();
    if raw.default_action.is_empty() && syscalls.is_empty() {
        return Ok(None);
    }

    let (flags, implied_spec_allow) = match &raw.flags {
        None => (libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW, true),
        Some(names) => (
            names
                .iter()
                .try_fold(0, |bits, n| Ok::<_, SeccompError>(bits | flag(n)?))?,
            false,
        ),
    };
    let mut listed = Vec::new();
    for name in raw.architectures.iter().flatten() {
        if let Some(a) = arch::parse(name)? {
            listed.push(a);
        }
    }
    let default_action = action(&raw.default_action, raw.default_errno_ret)?;
    if default_action == libc::SECCOMP_RET_USER_NOTIF {
        return Err(SeccompError::NotifyDefault);
    }

    let mut rules = Vec::new();
    for call in &syscalls {
        let action = action(&call.action, call.errno_ret)?;
        let names = call.names.as_deref().unwrap_or_default();
        for name in names {
            if name.is_empty() {
                return Err(SeccompError::EmptySyscallName);
            }
            if action == libc::SECCOMP_RET_USER_NOTIF && name == "write" {
                return Err(SeccompError::NotifyWrite);
            }
        }
        let args = call
            .args
            .iter()
            .flatten()
            .map(|a| arg(a, names.first().map_or("", String::as_str)))
            .collect::<Result<Vec<_>, _>>()?;
        // runc: when two conditions name the same argument, each becomes a
        // rule of its own (so they are ORed, not ANDed).
        let split = args
            .iter()
            .enumerate()
            .any(|(i, a)| args[..i].iter().any(|b| b.index == a.index));
        for name in names {
            if split {
                rules.extend(args.iter().map(|a| Rule {
                    name: name.clone(),
                    action,
                    args: vec![*a],
                }));
            } else {
                rules.push(Rule {
                    name: name.clone(),
                    action,
                    args: args.clone(),
                });
            }
        }
    }

    let notify = syscalls.iter().any(|c| c.action == "SCMP_ACT_NOTIFY");
    let listener_path = raw.listener_path.clone().filter(|p| !p.is_empty());
    if notify && listener_path.is_none() {
        return Err(SeccompError::ListenerPathNotSet);
    }
    let permissive = [
        libc::SECCOMP_RET_ALLOW,
        libc::SECCOMP_RET_LOG,
        libc::SECCOMP_RET_TRACE,
    ];
    Ok(Some(Profile {
        default_action,
        listed,
        enosys_stub: !permissive.contains(&(default_action & libc::SECCOMP_RET_ACTION_FULL)),
        rules,
        flags,
        implied_spec_allow,
        notify,
        listener_path,
        listener_metadata: raw.listener_metadata.clone().unwrap_or_default(),
    }))
}

/// `SECCOMP_FILTER_FLAG_*` of a runtime-spec flag name.
fn flag(name: &str) -> Result<libc::c_ulong, SeccompError> {
    Ok(match name {
        "SECCOMP_FILTER_FLAG_TSYNC" => libc::SECCOMP_FILTER_FLAG_TSYNC,
        "SECCOMP_FILTER_FLAG_LOG" => libc::SECCOMP_FILTER_FLAG_LOG,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
        _ => return Err(SeccompError::UnknownFlag(one_line(name))),
    })
}

/// The kernel's return value for an `SCMP_ACT_*` name; `errno_ret` (default
/// `EPERM`) goes into the data bits of `ERRNO` and `TRACE`.
fn action(name: &str, errno_ret: Option<u64>) -> Result<u32, SeccompError> {
    let data = || -> Result<u32, SeccompError> {
        match errno_ret {
            None => Ok(libc::EPERM.unsigned_abs()),
            Some(e) => u32::try_from(e)
                .ok()
                .filter(|e| *e <= libc::SECCOMP_RET_DATA)
                .ok_or(SeccompError::ErrnoRetRange(e)),
        }
    };
    let value = match name {
        "SCMP_ACT_ERRNO" => return Ok(libc::SECCOMP_RET_ERRNO | data()?),
        "SCMP_ACT_TRACE" => return Ok(libc::SECCOMP_RET_TRACE | data()?),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => libc::SECCOMP_RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => libc::SECCOMP_RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => libc::SECCOMP_RET_TRAP,
        "SCMP_ACT_ALLOW" => libc::SECCOMP_RET_ALLOW,
        "SCMP_ACT_LOG" => libc::SECCOMP_RET_LOG,
        "SCMP_ACT_NOTIFY" => libc::SECCOMP_RET_USER_NOTIF,
        _ => return Err(SeccompError::UnknownAction(one_line(name))),
    };
    // The runtime spec: "When the action doesn't support an errno, the
    // runtime MUST print and error and fail."
    if errno_ret.is_some() {
        return Err(SeccompError::ErrnoRetNotSupported(name.to_string()));
    }
    Ok(value)
}

fn arg(raw: &SeccompArg, name: &str) -> Result<ArgCmp, SeccompError> {
    let op = match raw.op.as_str() {
        "SCMP_CMP_NE" => Op::Ne,
        "SCMP_CMP_LT" => Op::Lt,
        "SCMP_CMP_LE" => Op::Le,
        "SCMP_CMP_EQ" => Op::Eq,
        "SCMP_CMP_GE" => Op::Ge,
        "SCMP_CMP_GT" => Op::Gt,
        "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
        other => return Err(SeccompError::UnknownOperator(one_line(other))),
    };
    let index = u8::try_from(raw.index)
        .ok()
        .filter(|i| *i < 6)
        .ok_or_else(|| SeccompError::ArgIndex {
            name: one_line(name),
            index: raw.index,
        })?;
    Ok(ArgCmp {
        index,
        op,
        value: raw.value,
        value_two: raw.value_two,
    })
}
