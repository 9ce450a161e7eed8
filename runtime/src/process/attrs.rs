//! Scheduling and memory attributes of the container's processes:
//! `process.scheduler` (sched_setattr), `process.ioPriority` (ioprio_set),
//! `process.execCPUAffinity` (sched_setaffinity), `linux.personality`
//! (personality) and `linux.memoryPolicy` (set_mempolicy). All survive
//! execve, so they are set in the process just before it execs.

use serde::{Deserialize, Serialize};

pub use crate::spec::attrs::{ExecCpuAffinity, IoPriority, MemoryPolicy, Personality, Scheduler};

/// The attributes a process is given before execve.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Attrs {
    /// `process.scheduler`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<Scheduler>,
    /// `process.ioPriority`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_priority: Option<IoPriority>,
    /// `process.execCPUAffinity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_cpu_affinity: Option<ExecCpuAffinity>,
    /// `linux.personality`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality: Option<Personality>,
    /// `linux.memoryPolicy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_policy: Option<MemoryPolicy>,
}

impl Attrs {
    /// The attributes of `process`, with the container's
    /// `linux.personality` and `linux.memoryPolicy`.
    pub fn of(
        process: &crate::spec::Process,
        personality: Option<&Personality>,
        memory_policy: Option<&MemoryPolicy>,
    ) -> Attrs {
        Attrs {
            scheduler: process.scheduler.clone(),
            io_priority: process.io_priority.clone(),
            exec_cpu_affinity: process.exec_cpu_affinity.clone(),
            personality: personality.cloned(),
            memory_policy: memory_policy.cloned(),
        }
    }
}

/// A bad or unappliable attribute.
#[derive(Debug, thiserror::Error)]
pub enum AttrError {
    /// Invalid in the config.
    #[error("{0}")]
    Invalid(String),
    /// The kernel refused.
    #[error("{op}: {source}")]
    Apply {
        /// The call.
        op: &'static str,
        /// Cause.
        source: std::io::Error,
    },
}

fn invalid(s: String) -> AttrError {
    AttrError::Invalid(s)
}

fn policy(name: &str) -> Result<u32, AttrError> {
    Ok(match name {
        "SCHED_OTHER" => 0,
        "SCHED_FIFO" => 1,
        "SCHED_RR" => 2,
        "SCHED_BATCH" => 3,
        "SCHED_ISO" => 4,
        "SCHED_IDLE" => 5,
        "SCHED_DEADLINE" => 6,
        _ => return Err(invalid(format!("scheduler: unknown policy {name:?}"))),
    })
}

fn sched_flag(name: &str) -> Result<u64, AttrError> {
    Ok(match name {
        "SCHED_FLAG_RESET_ON_FORK" => 0x01,
        "SCHED_FLAG_RECLAIM" => 0x02,
        "SCHED_FLAG_DL_OVERRUN" => 0x04,
        "SCHED_FLAG_KEEP_POLICY" => 0x08,
        "SCHED_FLAG_KEEP_PARAMS" => 0x10,
        "SCHED_FLAG_UTIL_CLAMP_MIN" => 0x20,
        "SCHED_FLAG_UTIL_CLAMP_MAX" => 0x40,
        _ => return Err(invalid(format!("scheduler: unknown flag {name:?}"))),
    })
}

fn io_class(name: &str) -> Result<u32, AttrError> {
    Ok(match name {
        "IOPRIO_CLASS_RT" => 1,
        "IOPRIO_CLASS_BE" => 2,
        "IOPRIO_CLASS_IDLE" => 3,
        _ => return Err(invalid(format!("ioPriority: unknown class {name:?}"))),
    })
}

fn mpol_mode(name: &str) -> Result<i32, AttrError> {
    Ok(match name {
        "MPOL_DEFAULT" => 0,
        "MPOL_PREFERRED" => 1,
        "MPOL_BIND" => 2,
        "MPOL_INTERLEAVE" => 3,
        "MPOL_LOCAL" => 4,
        "MPOL_PREFERRED_MANY" => 5,
        "MPOL_WEIGHTED_INTERLEAVE" => 6,
        _ => return Err(invalid(format!("memoryPolicy: unknown mode {name:?}"))),
    })
}

fn mpol_flag(name: &str) -> Result<i32, AttrError> {
    Ok(match name {
        "MPOL_F_NUMA_BALANCING" => 1 << 13,
        "MPOL_F_RELATIVE_NODES" => 1 << 14,
        "MPOL_F_STATIC_NODES" => 1 << 15,
        _ => return Err(invalid(format!("memoryPolicy: unknown flag {name:?}"))),
    })
}

/// Parses a CPU or node list (`0-3,7`) into indices.
pub fn parse_list(s: &str) -> Result<Vec<usize>, AttrError> {
    let bad = || invalid(format!("invalid CPU/node list {s:?}"));
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if a > b || b >= 8192 {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

impl Attrs {
    /// Checks every name and list without touching the system.
    pub fn validate(&self) -> Result<(), AttrError> {
        if let Some(s) = &self.scheduler {
            let p = policy(&s.policy)?;
            for f in &s.flags {
                sched_flag(f)?;
            }
            if !(-20..=19).contains(&s.nice) {
                return Err(invalid(format!(
                    "scheduler: nice {} is not in -20..19",
                    s.nice
                )));
            }
            if matches!(p, 1 | 2) && !(1..=99).contains(&s.priority) {
                return Err(invalid(format!(
                    "scheduler: priority {} is not in 1..99 for {}",
                    s.priority, s.policy
                )));
            }
        }
        if let Some(io) = &self.io_priority {
            io_class(&io.class)?;
            if io.priority > 7 {
                return Err(invalid(format!(
                    "ioPriority: priority {} is not in 0..7",
                    io.priority
                )));
            }
        }
        if let Some(a) = &self.exec_cpu_affinity {
            for l in [&a.initial, &a.final_].into_iter().flatten() {
                parse_list(l)?;
            }
        }
        if let Some(p) = &self.personality {
            if p.domain != "LINUX" && p.domain != "LINUX32" {
                return Err(invalid(format!(
                    "personality: unknown domain {:?}",
                    p.domain
                )));
            }
            if let Some(f) = p.flags.first() {
                return Err(invalid(format!("personality: unknown flag {f:?}")));
            }
        }
        if let Some(m) = &self.memory_policy {
            let mode = mpol_mode(&m.mode)?;
            for f in &m.flags {
                mpol_flag(f)?;
            }
            match (&m.nodes, mode) {
                (Some(n), _) => drop(parse_list(n)?),
                (None, 0 | 4) => {}
                (None, _) => return Err(invalid(format!("memoryPolicy: {} needs nodes", m.mode))),
            }
        }
        Ok(())
    }

    /// Applies `execCPUAffinity.initial` (as the process enters the container).
    pub fn apply_initial(&self) -> Result<(), AttrError> {
        match self
            .exec_cpu_affinity
            .as_ref()
            .and_then(|a| a.initial.as_deref())
        {
            Some(l) => set_affinity(l),
            None => Ok(()),
        }
    }

    /// Applies everything else, just before execve.
    pub fn apply_final(&self) -> Result<(), AttrError> {
        if let Some(p) = &self.personality {
            let persona: libc::c_ulong = if p.domain == "LINUX32" { 0x0008 } else { 0 };
            crate::sys::personality(persona).map_err(apply("personality"))?;
        }
        if let Some(m) = &self.memory_policy {
            let mut mode = mpol_mode(&m.mode)?;
            for f in &m.flags {
                mode |= mpol_flag(f)?;
            }
            let mut mask = [0 as libc::c_ulong; 8192 / 64];
            let bits = libc::c_ulong::BITS as usize;
            if let Some(n) = &m.nodes {
                for node in parse_list(n)? {
                    mask[node / bits] |= 1 << (node % bits);
                }
            }
            crate::sys::set_mempolicy(mode, m.nodes.as_ref().map(|_| &mask[..]))
                .map_err(apply("set_mempolicy"))?;
        }
        if let Some(io) = &self.io_priority {
            let value = (io_class(&io.class)? << 13) | io.priority;
            crate::sys::ioprio_set(value).map_err(apply("ioprio_set"))?;
        }
        if let Some(s) = &self.scheduler {
            let mut flags = 0;
            for f in &s.flags {
                flags |= sched_flag(f)?;
            }
            let attr = SchedAttr {
                size: 0,
                sched_policy: policy(&s.policy)?,
                sched_flags: flags,
                sched_nice: s.nice,
                sched_priority: s.priority,
                sched_runtime: s.runtime,
                sched_deadline: s.deadline,
                sched_period: s.period,
            };
            crate::sys::sched_setattr(attr).map_err(apply("sched_setattr"))?;
        }
        if let Some(l) = self
            .exec_cpu_affinity
            .as_ref()
            .and_then(|a| a.final_.as_deref())
        {
            set_affinity(l)?;
        }
        Ok(())
    }
}

use crate::sys::SchedAttr;

fn apply(op: &'static str) -> impl FnOnce(std::io::Error) -> AttrError {
    move |source| AttrError::Apply { op, source }
}

fn set_affinity(list: &str) -> Result<(), AttrError> {
    let mut set = nix::sched::CpuSet::new();
    for cpu in parse_list(list)? {
        set.set(cpu)
            .map_err(|_| invalid(format!("CPU {cpu} is out of range")))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(|e| {
        AttrError::Apply {
            op: "sched_setaffinity",
            source: e.into(),
        }
    })
}

/// Whether AppArmor is enabled on this host.
pub fn apparmor_enabled() -> bool {
    std::path::Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y")
}

/// Whether SELinux is enabled on this host.
pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// Sets the AppArmor profile and/or SELinux label the next execve switches
/// to (`/proc/self/attr/…/exec`). Validation refuses both when the host
/// lacks the LSM, so here they are only applied.
pub fn apply_lsm(apparmor: Option<&str>, selinux: Option<&str>) -> Result<(), AttrError> {
    if apparmor.filter(|p| !p.is_empty()).is_none() && selinux.filter(|l| !l.is_empty()).is_none() {
        return Ok(());
    }
    let proc = crate::procfs::ProcFs::open().map_err(|source| AttrError::Apply {
        op: "open a procfs handle",
        source,
    })?;
    let write = |paths: &[&str], value: &str| -> Result<(), AttrError> {
        let mut last = None;
        for p in paths {
            match proc.write(p, value.as_bytes()) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(AttrError::Apply {
            op: "set the LSM label for exec",
            source: last.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT)),
        })
    };
    if let Some(p) = apparmor.filter(|p| !p.is_empty()) {
        write(
            &["thread-self/attr/apparmor/exec", "thread-self/attr/exec"],
            &format!("exec {p}"),
        )?;
    }
    if let Some(l) = selinux.filter(|l| !l.is_empty()) {
        write(&["thread-self/attr/exec"], l)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(parse_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_list("3-1").is_err());
        assert!(parse_list("").is_err());
        assert!(parse_list("x").is_err());
    }

    #[test]
    fn validation() {
        let mut a = Attrs {
            scheduler: Some(Scheduler {
                policy: "SCHED_BATCH".into(),
                nice: 5,
                ..Default::default()
            }),
            io_priority: Some(IoPriority {
                class: "IOPRIO_CLASS_BE".into(),
                priority: 6,
            }),
            ..Default::default()
        };
        a.validate().unwrap();
        a.scheduler = Some(Scheduler {
            policy: "SCHED_FIFO".into(),
            priority: 0,
            ..Default::default()
        });
        assert!(a.validate().is_err());
        a.scheduler = None;
        a.memory_policy = Some(MemoryPolicy {
            mode: "MPOL_BIND".into(),
            nodes: None,
            flags: vec![],
        });
        assert!(a.validate().is_err());
        a.memory_policy = Some(MemoryPolicy {
            mode: "MPOL_FOO".into(),
            nodes: None,
            flags: vec![],
        });
        assert!(a.validate().is_err());
        assert_eq!(std::mem::size_of::<SchedAttr>(), 48);
    }
}
