//! `linux.namespaces`: which to create, which to join, and in what order.

use std::fs::File;
use std::os::fd::AsFd;

use nix::sched::{setns, unshare, CloneFlags};

use crate::spec::Namespace;
use crate::sys::CLONE_NEWTIME;

/// The eight Linux namespace kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NsKind {
    /// `user`
    User,
    /// `mount`
    Mount,
    /// `pid`
    Pid,
    /// `network`
    Net,
    /// `ipc`
    Ipc,
    /// `uts`
    Uts,
    /// `cgroup`
    Cgroup,
    /// `time`
    Time,
}

impl NsKind {
    /// Every kind, in the order namespaces are joined (user first).
    pub const ALL: [NsKind; 8] = [
        NsKind::User,
        NsKind::Mount,
        NsKind::Pid,
        NsKind::Net,
        NsKind::Ipc,
        NsKind::Uts,
        NsKind::Cgroup,
        NsKind::Time,
    ];

    /// The kind the spec calls `name`.
    pub fn from_spec(name: &str) -> Option<NsKind> {
        Self::ALL.into_iter().find(|k| k.spec_name() == name)
    }

    /// The spec's name for it.
    pub fn spec_name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Mount => "mount",
            NsKind::Pid => "pid",
            NsKind::Net => "network",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }

    /// The `CLONE_NEW*` flag.
    pub fn flag(self) -> u64 {
        let f = match self {
            NsKind::User => libc::CLONE_NEWUSER,
            NsKind::Mount => libc::CLONE_NEWNS,
            NsKind::Pid => libc::CLONE_NEWPID,
            NsKind::Net => libc::CLONE_NEWNET,
            NsKind::Ipc => libc::CLONE_NEWIPC,
            NsKind::Uts => libc::CLONE_NEWUTS,
            NsKind::Cgroup => libc::CLONE_NEWCGROUP,
            NsKind::Time => return CLONE_NEWTIME,
        };
        crate::sys::flag_bits(f)
    }

    /// The file name under `/proc/<pid>/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Mount => "mnt",
            NsKind::Pid => "pid",
            NsKind::Net => "net",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }
}

/// Errors from namespace handling.
#[derive(Debug, thiserror::Error)]
pub enum NsError {
    /// A namespace path could not be opened.
    #[error("open namespace {kind} at {path}: {source}")]
    Open {
        /// Kind.
        kind: &'static str,
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// `setns` failed.
    #[error("join namespace {kind} at {path}: {source}")]
    Join {
        /// Kind.
        kind: &'static str,
        /// Path.
        path: String,
        /// Cause.
        source: nix::Error,
    },
    /// `unshare` failed.
    #[error("unshare namespaces {flags:#x}: {source}")]
    Unshare {
        /// Flags.
        flags: u64,
        /// Cause.
        source: nix::Error,
    },
}

/// The namespace plan of a container.
#[derive(Debug, Default)]
pub struct NsPlan {
    /// `CLONE_NEW*` flags of namespaces to create.
    pub new_flags: u64,
    /// Namespaces to join, opened in the parent so that bad paths fail
    /// before any process exists; user namespace first.
    pub join: Vec<(NsKind, String, File)>,
}

impl NsPlan {
    /// Builds the plan, opening every path.
    pub fn new(namespaces: &[Namespace]) -> Result<NsPlan, NsError> {
        let mut plan = NsPlan::default();
        for ns in namespaces {
            let Some(kind) = NsKind::from_spec(&ns.typ) else {
                continue; // rejected by validation
            };
            match &ns.path {
                None => plan.new_flags |= kind.flag(),
                Some(path) => {
                    let f = File::open(path).map_err(|source| NsError::Open {
                        kind: kind.proc_name(),
                        path: path.clone(),
                        source,
                    })?;
                    plan.join.push((kind, path.clone(), f));
                }
            }
        }
        plan.join.sort_by_key(|(k, _, _)| *k != NsKind::User);
        Ok(plan)
    }

    /// Whether the namespace kind is created new.
    pub fn creates(&self, kind: NsKind) -> bool {
        self.new_flags & kind.flag() != 0
    }

    /// Whether the container has a namespace of `kind` of its own: a new
    /// one, or one joined by path.
    pub fn has(&self, kind: NsKind) -> bool {
        self.creates(kind) || self.join.iter().any(|(k, _, _)| *k == kind)
    }

    /// The namespaces created by clone/unshare before the init runs: all new
    /// ones but the cgroup namespace, which the init unshares itself once
    /// the parent has moved it into its cgroup, so that the container's
    /// cgroup becomes its cgroup root (as runc does).
    pub fn clone_flags(&self) -> u64 {
        self.new_flags & !NsKind::Cgroup.flag()
    }

    /// Whether one `clone3` can do everything: nothing to join and no time
    /// namespace (whose offsets must be written before a process enters it).
    pub fn single_clone(&self) -> bool {
        self.join.is_empty() && !self.creates(NsKind::Time)
    }

    /// Joins every namespace by path (user namespace first).
    pub fn join_all(&self) -> Result<(), NsError> {
        for (kind, path, file) in &self.join {
            let flag = CloneFlags::from_bits_retain(
                libc::c_int::try_from(kind.flag()).unwrap_or_default(),
            );
            setns(file.as_fd(), flag).map_err(|source| NsError::Join {
                kind: kind.proc_name(),
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Unshares the namespaces in `flags`.
    pub fn unshare(flags: u64) -> Result<(), NsError> {
        if flags == 0 {
            return Ok(());
        }
        let f = CloneFlags::from_bits_retain(libc::c_int::try_from(flags).unwrap_or_default());
        unshare(f).map_err(|source| NsError::Unshare { flags, source })
    }
}
