//! `start`: release a created container's init.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use super::{wait_exec, Container, ContainerError};
use crate::state::Status;

/// Releases a created container's init.
pub fn start(root: &Path, id: &str) -> Result<(), ContainerError> {
    let c = Container::load(root, id)?;
    let _lock = c.dir.lock()?;
    match c.status {
        Status::Created => {}
        Status::Stopped => {
            return Err(ContainerError::Status(
                "cannot start a container that has stopped".into(),
            ))
        }
        Status::Paused => {
            return Err(ContainerError::Status(
                "cannot start a container in the paused state".into(),
            ))
        }
        _ => {
            return Err(ContainerError::Status(
                "cannot start an already running container".into(),
            ))
        }
    }
    let fifo = c.dir.fifo();
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ENXIO) => {
                ContainerError::Status("container not running: init process is gone".into())
            }
            _ => ContainerError::Fifo { op: "open", source },
        })?;
    f.write_all(b"0").map_err(|source| ContainerError::Fifo {
        op: "write",
        source,
    })?;
    std::fs::remove_file(&fifo).map_err(|source| ContainerError::Fifo {
        op: "remove",
        source,
    })?;
    crate::logging::step(|| format!("container {id} released through the exec fifo"));
    if let Some(h) = c.record.hooks.as_ref().filter(|h| !h.poststart.is_empty()) {
        // poststart runs after the user process is executed (runtime spec):
        // wait until the init no longer runs corten.
        wait_exec(&c.record, Duration::from_secs(10));
        let state = c.record.hook_state(Status::Running).to_json();
        crate::hooks::run_all_warn("poststart", &h.poststart, &state);
    }
    Ok(())
}
