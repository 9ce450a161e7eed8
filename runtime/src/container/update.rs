//! `update`: change the resource limits of a live container.

use std::path::Path;

use anyhow::bail;

use super::Container;
use crate::cgroups::{resources, stats};
use crate::spec::Resources;
use crate::state::Status;

/// Applies the resources `requested` gives (as `update` builds them from
/// its flags, asked for once the container is known to run, as runc does)
/// to container `id`'s cgroup. With `memory.checkBeforeUpdate`, a memory
/// limit below the current usage is refused.
pub fn update(
    root: &Path,
    id: &str,
    requested: impl FnOnce() -> anyhow::Result<Resources>,
) -> anyhow::Result<()> {
    let c = Container::load(root, id)?;
    if c.status == Status::Stopped {
        bail!("container not running");
    }
    let res = &requested()?;
    let memory = res.memory.clone().unwrap_or_default();
    if memory.check_before_update == Some(true) {
        if let Some(limit) = memory.limit.filter(|l| *l > 0) {
            let usage = stats::collect(&c.record.cgroup_paths)["memory"]["usage"]["usage"]
                .as_i64()
                .unwrap_or(0);
            if usage > limit {
                bail!(
                    "memory limit {limit} is below the current usage {usage} (checkBeforeUpdate)"
                );
            }
        }
    }
    let _lock = c.dir.lock()?;
    if c.record.systemd_cgroup {
        crate::cgroups::systemd::set_limits(&c.record.cgroup_paths, res)?;
    }
    resources::apply(&c.record.cgroup_paths, res)?;
    Ok(())
}
