//! `process.rlimits`.

use nix::sys::resource::{setrlimit, Resource};

use crate::spec::Rlimit;

/// Errors from rlimit handling.
#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    /// An unknown `RLIMIT_*` name.
    #[error("wrong rlimit value: {0}")]
    Unknown(String),
    /// The kernel refused the limit.
    #[error("error setting rlimit type {typ} (soft {soft}, hard {hard}): {source}")]
    Set {
        /// The name.
        typ: String,
        /// Soft limit.
        soft: u64,
        /// Hard limit.
        hard: u64,
        /// The cause.
        source: nix::Error,
    },
}

/// Maps an `RLIMIT_*` name to the resource.
pub fn resource(name: &str) -> Result<Resource, RlimitError> {
    Ok(match name {
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        _ => return Err(RlimitError::Unknown(name.to_string())),
    })
}

/// Applies every limit; raising a hard limit needs `CAP_SYS_RESOURCE`.
pub fn apply(limits: &[Rlimit]) -> Result<(), RlimitError> {
    for l in limits {
        let res = resource(&l.typ)?;
        setrlimit(res, l.soft, l.hard).map_err(|source| RlimitError::Set {
            typ: l.typ.clone(),
            soft: l.soft,
            hard: l.hard,
            source,
        })?;
    }
    Ok(())
}
