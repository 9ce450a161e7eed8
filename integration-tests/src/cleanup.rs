//! Removal of what the tests create: cgroup directories under the test
//! process's own parent cgroup, and temporary directories (without ever
//! following a mount or a symlink out of them).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::inspect::mounts_under;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Number of live [`crate::Bundle`]s and [`crate::Runtime`]s. The per-process
/// parent cgroup is removed only when it drops to zero, under the lock, so a
/// runtime never finds its parent removed between its `mkdir -p` steps.
static LIVE: Mutex<usize> = Mutex::new(0);

/// The parent of every test cgroup of this process: `/corten-it-<pid>`.
pub fn cgroup_parent() -> String {
    format!("/corten-it-{}", std::process::id())
}

/// Register a live owner of test cgroups.
pub(crate) fn register_owner() {
    *LIVE.lock().unwrap_or_else(|e| e.into_inner()) += 1;
}

/// Unregister an owner: remove the given test cgroups (each must lie under
/// [`cgroup_parent`]) and, when no owner is left, the parent itself. With
/// `patient`, wait up to 2 s for killed processes to leave each cgroup.
pub(crate) fn release_owner(cgroups: &[String], patient: bool) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    for path in cgroups {
        remove_test_cgroup(path, patient);
    }
    *live = live.saturating_sub(1);
    if *live == 0 {
        for dir in cgroup_dirs(&cgroup_parent()) {
            // Fails with EBUSY/ENOTEMPTY if a leaked child remains: leave it.
            let _ = fs::remove_dir(&dir);
        }
    }
}

/// Existing directories for the cgroup path `path` (as in `cgroupsPath`):
/// one per cgroup v1 hierarchy mounted under `/sys/fs/cgroup/<name>`, plus
/// the cgroup v2 unified hierarchy wherever it is mounted there.
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return Vec::new();
    }
    let mut bases = vec![PathBuf::from(CGROUP_ROOT)];
    if let Ok(entries) = fs::read_dir(CGROUP_ROOT) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                bases.push(entry.path());
            }
        }
    }
    bases
        .into_iter()
        .map(|base| base.join(rel))
        .filter(|dir| dir.is_dir())
        .collect()
}

/// SIGKILL, by pid, every process in the test cgroups `cgroups` and every
/// process whose command line contains `marker` (a test-private path). All
/// of them were started by this test process (or are clones of processes it
/// started), so nothing else is ever signalled.
pub(crate) fn kill_leftovers(cgroups: &[String], marker: &str) {
    let mut pids: Vec<i32> = crate::processes_mentioning(marker);
    for path in cgroups.iter().filter(|p| is_test_cgroup(p)) {
        for dir in cgroup_dirs(path) {
            let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
    }
    pids.sort_unstable();
    pids.dedup();
    let me = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    for &pid in pids.iter().filter(|&&p| p > 1 && p != me) {
        eprintln!("corten-it: killing leftover process {pid}");
        // SAFETY: kill has no memory-safety preconditions; pid names a
        // process this test started (see above).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    if !pids.is_empty() {
        crate::wait_until(Duration::from_secs(2), || {
            pids.iter().all(|&p| !crate::pid_alive(p.into()))
        });
    }
}

/// Whether `path` is a test cgroup: strictly below this process's parent.
fn is_test_cgroup(path: &str) -> bool {
    path.strip_prefix(&cgroup_parent())
        .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1 && !rest.contains(".."))
}

/// rmdir the test cgroup `path` in every hierarchy, children first (if
/// `patient`, retrying briefly while killed processes are still leaving it).
/// Refuses any path outside this process's parent cgroup.
fn remove_test_cgroup(path: &str, patient: bool) {
    if !is_test_cgroup(path) {
        eprintln!(
            "corten-it: refusing to remove cgroup {path:?} outside {}",
            cgroup_parent()
        );
        return;
    }
    let patience = if patient {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    };
    for dir in cgroup_dirs(path) {
        let removed = crate::wait_until(patience, || {
            remove_cgroup_tree(&dir).is_ok() || !dir.exists()
        });
        if !removed && patient {
            eprintln!("corten-it: could not remove cgroup {}", dir.display());
        }
    }
}

/// rmdir a cgroup directory and the sub-cgroups below it (cgroup files
/// cannot be unlinked; a cgroup directory is removed with rmdir alone).
fn remove_cgroup_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&entry.path())?;
        }
    }
    fs::remove_dir(dir)
}

/// Remove a temporary directory tree of the tests. Mounts that leaked below
/// it into the host's mount namespace are detached first; the walk never
/// follows symlinks and never descends into another filesystem.
pub(crate) fn remove_temp_tree(root: &Path) {
    if !root.starts_with(crate::BASE_DIR) {
        eprintln!(
            "corten-it: refusing to remove {} outside {}",
            root.display(),
            crate::BASE_DIR
        );
        return;
    }
    let mut leaked = mounts_under(root);
    leaked.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    for mount in leaked {
        eprintln!("corten-it: detaching leaked mount {}", mount.display());
        detach(&mount);
    }
    let Ok(meta) = fs::symlink_metadata(root) else {
        return;
    };
    if let Err(err) = remove_same_fs(root, meta.dev()) {
        eprintln!("corten-it: could not remove {}: {err}", root.display());
    }
}

fn detach(path: &Path) {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return;
    };
    // SAFETY: c_path is a valid NUL-terminated string that outlives the call;
    // umount2 only reads it.
    let rc = unsafe { libc::umount2(c_path.as_ptr(), libc::MNT_DETACH) };
    if rc != 0 {
        eprintln!(
            "corten-it: umount {}: {}",
            path.display(),
            io::Error::last_os_error()
        );
    }
}

fn remove_same_fs(path: &Path, dev: u64) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return fs::remove_file(path);
    }
    if meta.dev() != dev {
        return Err(io::Error::other(format!(
            "{} is on another filesystem",
            path.display()
        )));
    }
    for entry in fs::read_dir(path)? {
        remove_same_fs(&entry?.path(), dev)?;
    }
    fs::remove_dir(path)
}
