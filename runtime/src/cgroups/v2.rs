//! cgroup v2: one directory in the unified hierarchy.

use std::fs;
use std::path::{Path, PathBuf};

use super::{mkdir_levels, place, Cgroup, CgroupError, CGROUP_ROOT};

/// The caller's own cgroup (the `0::` line of `/proc/self/cgroup`).
fn own_cgroup() -> Result<String, CgroupError> {
    let s = fs::read_to_string("/proc/self/cgroup").map_err(|source| CgroupError::Read {
        path: PathBuf::from("/proc/self/cgroup"),
        source,
    })?;
    Ok(s.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .to_string())
}

/// The container's directory, not created yet.
pub fn plan(inner: &Path) -> Result<Cgroup, CgroupError> {
    Ok(Cgroup::V2(place(
        Path::new(CGROUP_ROOT),
        &own_cgroup()?,
        inner,
    )))
}

/// Creates the planned directory.
pub fn create(dir: &Path) -> Result<PathBuf, CgroupError> {
    // Every level above the container's directory delegates the controllers
    // it has to its children; a level holding processes refuses (EBUSY), and
    // then only the controllers already delegated are available.
    mkdir_levels(dir, &|d| {
        if let Some(parent) = d.parent() {
            enable_controllers(parent);
        }
        Ok(())
    })?;
    Ok(dir.to_path_buf())
}

/// Writes `+<controller>` for each controller of `dir` into its
/// `cgroup.subtree_control` (best effort).
fn enable_controllers(dir: &Path) {
    let Ok(available) = fs::read_to_string(dir.join("cgroup.controllers")) else {
        return;
    };
    let enabled = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    for c in available.split_whitespace() {
        if !enabled.split_whitespace().any(|e| e == c) {
            let _ = fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
        }
    }
}
