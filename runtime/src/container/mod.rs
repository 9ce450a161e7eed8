//! The lifecycle verbs, one file each: [`create()`] and [`exec()`] (the
//! process model, in `crate::process`), [`start()`], [`run()`] (create,
//! start and wait in the foreground), [`kill()`], [`delete()`],
//! [`set_paused`] (pause/resume), [`update()`]. The CLI maps flags to their
//! options and prints their results; everything else is here.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cgroups;
use crate::state::{Record, StateDir, StateError, Status};

mod delete;
mod foreground;
mod kill;
mod pause;
mod run;
mod start;
mod tty;
mod update;

pub use crate::process::create::{create, CreateOpts, Created};
pub use crate::process::exec::{exec, ExecOpts};
pub use delete::delete;
pub use foreground::{exec_in_foreground, Foreground, ForegroundExec};
pub use kill::kill;
pub use pause::set_paused;
pub use run::{run, RunOpts};
pub use start::start;
pub use update::update;

/// Errors of container operations.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// State directory.
    #[error(transparent)]
    State(#[from] StateError),
    /// Cgroups.
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    /// An operation that needs another status.
    #[error("{0}")]
    Status(String),
    /// A signal could not be sent to the init (runc's words).
    #[error("unable to signal init: {source}")]
    Kill {
        /// Signal.
        sig: i32,
        /// Pid.
        pid: i32,
        /// Cause.
        source: nix::Error,
    },
    /// The exec fifo.
    #[error("{op} exec fifo: {source}")]
    Fifo {
        /// The step.
        op: &'static str,
        /// Cause.
        source: std::io::Error,
    },
}

/// A loaded container.
#[derive(Debug)]
pub struct Container {
    /// Its state directory.
    pub dir: StateDir,
    /// What was recorded at create.
    pub record: Record,
    /// Status now.
    pub status: Status,
}

impl Container {
    /// Loads container `id`.
    pub fn load(root: &Path, id: &str) -> Result<Container, ContainerError> {
        let dir = StateDir::new(root, id)?;
        let record = dir.load()?;
        let status = record.status(&dir);
        Ok(Container {
            dir,
            record,
            status,
        })
    }

    /// The OCI state as `corten state` prints it (owner `""`, as runc).
    pub fn container_state(&self) -> crate::state::ContainerState<'_> {
        self.record.container_state(self.status, "")
    }
}

/// Waits until the init has called execve (its executable is no longer
/// corten) or has gone.
fn wait_exec(rec: &Record, timeout: Duration) {
    let start = Instant::now();
    while rec.init_alive() && start.elapsed() < timeout && crate::sys::runs_corten(rec.pid) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until `pid` (with its start time) is gone or a zombie.
fn wait_gone(rec: &Record, timeout: Duration) -> bool {
    let start = Instant::now();
    while rec.init_alive() {
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// The processes of a container's cgroup (and the cgroups below it), told
/// apart by pid namespace: a cgroup can hold another container's processes
/// when two share a `cgroupsPath` (runc only warns), or someone else's in a
/// cgroup made before the container.
#[derive(Debug, Default)]
pub struct Processes {
    /// The container's: in its pid namespace, or in one below it when the
    /// namespace is the container's own.
    pub own: Vec<i32>,
    /// How many others.
    pub foreign: usize,
}

impl Processes {
    /// The processes of `rec`'s cgroup now. A record from before corten
    /// kept the pid namespace counts every process as the container's.
    pub fn of(rec: &Record) -> Processes {
        let all = rec.cgroup_paths.pids();
        let Some(ns) = rec.pid_ns else {
            return Processes {
                own: all,
                foreign: 0,
            };
        };
        let mut p = Processes::default();
        for pid in all {
            let own = match crate::sys::pid_ns_of(pid) {
                None => continue, // gone
                Some(n) if n == ns => true,
                Some(_) => rec.own_pid_ns && crate::sys::in_pid_ns_tree(pid, ns),
            };
            if own {
                p.own.push(pid);
            } else {
                p.foreign += 1;
            }
        }
        p
    }
}
