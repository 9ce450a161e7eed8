//! `pause` and `resume`: freeze and thaw the container's cgroup.

use std::path::Path;

use super::{Container, ContainerError};
use crate::state::Status;

/// Freezes every process of a running container (`pause`), or thaws a
/// paused one (`resume`).
pub fn set_paused(root: &Path, id: &str, pause: bool) -> Result<(), ContainerError> {
    let c = Container::load(root, id)?;
    let _lock = c.dir.lock()?;
    // runc's words: pause needs a running (or created) container,
    // resume a paused one.
    match (pause, c.status) {
        (true, Status::Running | Status::Created) | (false, Status::Paused) => {}
        (true, _) => return Err(ContainerError::Status("container not running".into())),
        (false, _) => return Err(ContainerError::Status("container not paused".into())),
    }
    c.record.cgroup_paths.set_frozen(pause)?;
    Ok(())
}
