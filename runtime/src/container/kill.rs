//! `kill`: signal the init, or every process of the container.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{wait_gone, Container, ContainerError, Processes};
use crate::state::Status;

/// Sends `sig` to the init, or with `all` to every process of the cgroup,
/// as runc does: the init only while it exists (`container not running`
/// otherwise); SIGKILL to a paused container thaws it so the signal takes
/// effect; `--all` on a stopped container whose cgroup is gone does nothing.
pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<(), ContainerError> {
    let c = Container::load(root, id)?;
    if all {
        if c.status == Status::Stopped && c.record.cgroup_paths.is_gone() {
            return Ok(());
        }
        let procs = Processes::of(&c.record);
        if procs.foreign == 0 {
            return Ok(c.record.cgroup_paths.signal_all(sig)?);
        }
        // A shared cgroup: signal only this container's processes (without
        // freezing, which would stop the others too).
        for pid in procs.own {
            crate::sys::signal(pid, sig);
        }
        return Ok(());
    }
    if matches!(c.status, Status::Stopped | Status::Creating) {
        return Err(ContainerError::Status("container not running".into()));
    }
    let pid = c.record.pid;
    crate::sys::kill(pid, sig).map_err(|source| ContainerError::Kill { sig, pid, source })?;
    if c.status == Status::Paused && sig == libc::SIGKILL {
        let _ = c.record.cgroup_paths.set_frozen(false);
    }
    Ok(())
}

/// Kills every process of the container and waits for them. In a cgroup
/// shared with other processes, only the container's are killed: the init
/// (the kernel ends the rest of a pid namespace of the container's own with
/// it), or each of them by pid.
pub(super) fn kill_all(c: &Container) {
    if c.record.init_alive() {
        crate::sys::signal(c.record.pid, libc::SIGKILL);
    }
    if Processes::of(&c.record).foreign > 0 {
        let start = Instant::now();
        loop {
            let own = Processes::of(&c.record).own;
            if own.is_empty() || start.elapsed() > Duration::from_secs(10) {
                break;
            }
            // A pid namespace of its own empties itself (its processes may
            // still be listed while they exit); otherwise kill each.
            if !c.record.own_pid_ns || c.record.init_alive() {
                own.iter()
                    .for_each(|&pid| crate::sys::signal(pid, libc::SIGKILL));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        return;
    }
    let _ = c.record.cgroup_paths.signal_all(libc::SIGKILL);
    // A frozen (paused) process only dies once thawed.
    if c.record.cgroup_paths.is_frozen() {
        let _ = c.record.cgroup_paths.set_frozen(false);
    }
    wait_gone(&c.record, Duration::from_secs(10));
}
