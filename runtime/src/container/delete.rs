//! `delete`: the container's processes, cgroup and state directory.

use std::path::Path;
use std::time::{Duration, Instant};

use super::kill::kill_all;
use super::{Container, ContainerError, Processes};
use crate::state::{StateDir, StateError, Status};

/// Deletes the container: its processes (with `force`, or when only
/// created), cgroup and state directory.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), ContainerError> {
    let dir = StateDir::new(root, id)?;
    // Locked first, so a `create` still running is waited for and the
    // status is read after it.
    let _lock = match dir.lock() {
        Ok(l) => l,
        // runc: `delete --force` of a container that does not exist succeeds.
        Err(StateError::NotExist(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let loaded = if force {
        dir.load_or_recover()
    } else {
        dir.load()
    };
    let record = match loaded {
        Ok(r) => r,
        Err(StateError::NotExist(_)) if force => {
            // Nothing recorded (a state directory from before corten wrote
            // its record first): remove it.
            dir.remove()?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let status = record.status(&dir);
    let c = Container {
        dir,
        record,
        status,
    };
    match c.status {
        Status::Stopped => {
            if !c.record.own_pid_ns || c.record.creator.is_some() {
                // Without its own pid namespace, the init's exit leaves the
                // other processes running: end them as runc does. Likewise
                // what a `create` that was killed left.
                kill_all(&c);
            }
        }
        Status::Created => kill_all(&c),
        s if force => {
            let _ = s;
            kill_all(&c);
        }
        s => {
            return Err(ContainerError::Status(format!(
                "cannot delete container {id} that is not stopped: {s}"
            )))
        }
    }
    let foreign = wait_cgroup_empty(&c);
    crate::logging::step(|| format!("container {id}: no process left"));
    if let Some(base) = c.record.host_mounts_base {
        crate::rootfs::unmount_to(&c.record.rootfs, base);
    }
    if foreign == 0 {
        if c.record.systemd_cgroup {
            // The scope ends with its last process; stopping it makes sure
            // no unit is left (one already gone is fine). Without the bus
            // the directory is still removed: delete never gets stuck.
            if let Err(e) = crate::cgroups::systemd::stop_scope(&c.record.cgroup_paths) {
                crate::logging::warn(&format!("container {id}: {e}"));
            }
        }
        c.record.cgroup_paths.remove()?;
    } else {
        // The last container in it (or its maker) removes it.
        crate::logging::step(|| {
            format!("container {id}: cgroup left in place, {foreign} other process(es) in it")
        });
    }
    c.dir.remove()?;
    crate::logging::step(|| format!("container {id}: cgroup and state directory removed"));
    if let Some(h) = c.record.hooks.as_ref().filter(|h| !h.poststop.is_empty()) {
        let state = c.record.hook_state(Status::Stopped).to_json();
        crate::hooks::run_all_warn("poststop", &h.poststop, &state);
    }
    Ok(())
}

/// Kills what is left of the container in its cgroup until none is (at
/// most 5 s) and returns how many other processes the cgroup holds.
fn wait_cgroup_empty(c: &Container) -> usize {
    let start = Instant::now();
    loop {
        let procs = Processes::of(&c.record);
        if procs.own.is_empty() || start.elapsed() > Duration::from_secs(5) {
            return procs.foreign;
        }
        for pid in procs.own {
            crate::sys::signal(pid, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
