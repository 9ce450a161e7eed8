//! cgroup v2: one directory in the unified hierarchy.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{mkdir_levels, place, CgroupError, CGROUP_ROOT};

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

/// Creates the cgroup.
pub fn create(inner: &Path) -> Result<BTreeMap<String, PathBuf>, CgroupError> {
    let dir = place(Path::new(CGROUP_ROOT), &own_cgroup()?, inner);
    mkdir_levels(&dir, &|_| Ok(()))?;
    Ok(BTreeMap::from([(String::new(), dir)]))
}
