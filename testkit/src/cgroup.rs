//! The tests' own cgroups: every `cgroupsPath` a test gives lies below one
//! parent cgroup named after the test process, and only cgroups below that
//! parent are ever removed. Processes left in them are killed by pid.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Where the cgroup hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Whether [`CGROUP_ROOT`] is a cgroup v2 mount.
pub fn is_cgroup2() -> bool {
    nix::sys::statfs::statfs(CGROUP_ROOT)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// Every cgroup hierarchy: the v2 root, or each v1 hierarchy mounted below
/// [`CGROUP_ROOT`] (not the symlinks to them, such as `cpu`).
pub fn hierarchies() -> Vec<PathBuf> {
    if is_cgroup2() {
        return vec![PathBuf::from(CGROUP_ROOT)];
    }
    subdirs(Path::new(CGROUP_ROOT))
        .into_iter()
        .filter(|p| p.join("cgroup.procs").exists())
        .collect()
}

/// The existing directories of the cgroup `path` (as in `cgroupsPath`),
/// one per hierarchy it exists in.
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return Vec::new();
    }
    hierarchies()
        .into_iter()
        .map(|h| h.join(rel))
        .filter(|dir| dir.is_dir())
        .collect()
}

/// How to remove a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// One `rmdir` of each directory, children first: a cgroup still in
    /// use is left to its owner.
    Once,
    /// SIGKILL (by pid) every process in it and below, thaw it, and retry
    /// the `rmdir`s until they succeed or the bound passes.
    Kill(Duration),
}

/// The parent cgroup of everything one test process creates, such as
/// `/corten-it-<pid>`.
#[derive(Debug, Clone)]
pub struct CgroupParent {
    path: String,
}

impl CgroupParent {
    /// The parent `/<name>-<pid of this process>`.
    pub fn for_process(name: &str) -> CgroupParent {
        CgroupParent {
            path: format!("/{name}-{}", std::process::id()),
        }
    }

    /// The parent as a cgroups path (`/<name>-<pid>`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The cgroups path of the child `name`.
    pub fn child(&self, name: &str) -> String {
        format!("{}/{name}", self.path)
    }

    /// Whether `path` lies strictly below this parent.
    pub fn owns(&self, path: &str) -> bool {
        path.strip_prefix(&self.path)
            .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1 && !rest.contains(".."))
    }

    /// Remove the child cgroup `path` in every hierarchy; refuses (and
    /// says so) any path that is not below this parent. Returns whether
    /// nothing of it is left.
    pub fn remove_child(&self, path: &str, how: Removal) -> bool {
        if !self.owns(path) {
            eprintln!(
                "testkit: refusing to remove cgroup {path:?} outside {}",
                self.path
            );
            return false;
        }
        remove_everywhere(path, how)
    }

    /// Remove the parent itself with whatever is left below it.
    pub fn remove(&self, how: Removal) -> bool {
        remove_everywhere(&self.path, how)
    }
}

fn remove_everywhere(path: &str, how: Removal) -> bool {
    let mut clean = true;
    for dir in cgroup_dirs(path) {
        if !remove_tree(&dir, how) {
            if how != Removal::Once {
                eprintln!("testkit: could not remove cgroup {}", dir.display());
            }
            clean = false;
        }
    }
    clean
}

/// Remove the cgroup directory `dir` and the cgroups below it.
fn remove_tree(dir: &Path, how: Removal) -> bool {
    let Removal::Kill(bound) = how else {
        return rmdir_tree(dir).is_ok() || !dir.exists();
    };
    let deadline = Instant::now() + bound;
    crate::wait_until(bound, || {
        let pids = pids_below(dir);
        for &pid in &pids {
            // ESRCH: it is gone already.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // A frozen cgroup keeps its killed tasks: thaw it (v1, v2).
        let _ = fs::write(dir.join("freezer.state"), "THAWED");
        let _ = fs::write(dir.join("cgroup.freeze"), "0");
        pids.is_empty()
    });
    let left = deadline.saturating_duration_since(Instant::now());
    crate::wait_until(left, || rmdir_tree(dir).is_ok() || !dir.exists())
}

/// The pids in `dir` and every cgroup below it (never this process).
fn pids_below(dir: &Path) -> Vec<i32> {
    let me = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    let mut pids: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|&pid| pid > 1 && pid != me)
        .collect();
    for sub in subdirs(dir) {
        pids.extend(pids_below(&sub));
    }
    pids
}

/// The directories (not symlinks) in `dir`.
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// rmdir a cgroup directory and the sub-cgroups below it (cgroup files
/// cannot be unlinked; a cgroup directory is removed with rmdir alone).
fn rmdir_tree(dir: &Path) -> io::Result<()> {
    for sub in subdirs(dir) {
        rmdir_tree(&sub)?;
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_owns_only_what_lies_below_it() {
        let parent = CgroupParent {
            path: "/corten-it-42".to_owned(),
        };
        assert_eq!(parent.child("t-1"), "/corten-it-42/t-1");
        assert!(parent.owns("/corten-it-42/t-1"));
        assert!(parent.owns("/corten-it-42/t-1/sub"));
        assert!(!parent.owns("/corten-it-42"));
        assert!(!parent.owns("/corten-it-42/"));
        assert!(!parent.owns("/corten-it-421/t"));
        assert!(!parent.owns("/corten-it-42/../system.slice"));
        assert!(!parent.remove_child("/system.slice", Removal::Once));
    }
}
