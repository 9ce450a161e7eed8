//! Removal of what the tests leave on the host besides cgroups: their
//! temporary directories (without ever following a symlink or a mount out
//! of them) and processes that name a test-private path (killed by pid).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::procfs::{mounts_under, pid_alive, processes_mentioning};

/// Remove the temporary directory tree `root`, which must lie within
/// `within` (anything else is refused, with a message). Mounts below it are
/// detached first; if some cannot be, the tree is left (with a message).
/// The walk never follows symlinks and never descends into another
/// filesystem.
pub fn remove_tree(root: &Path, within: &Path) {
    if !root.starts_with(within) {
        eprintln!(
            "testkit: refusing to remove {} outside {}",
            root.display(),
            within.display()
        );
        return;
    }
    for _ in 0..3 {
        let mounts = mounts_under(root);
        if mounts.is_empty() {
            break;
        }
        for mount in mounts {
            if let Err(e) = umount2(&mount, MntFlags::MNT_DETACH) {
                eprintln!("testkit: umount {}: {e}", mount.display());
            }
        }
    }
    let left = mounts_under(root);
    if !left.is_empty() {
        eprintln!(
            "testkit: not removing {}: mounts remain below it: {left:?}",
            root.display()
        );
        return;
    }
    let Ok(meta) = fs::symlink_metadata(root) else {
        return;
    };
    if let Err(err) = remove_same_fs(root, meta.dev()) {
        eprintln!("testkit: could not remove {}: {err}", root.display());
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

/// SIGKILL, by pid, every process whose command line contains `marker` (a
/// test-private path, such as a runtime's `--root`: only processes the
/// test started, or clones of them, name it), and wait up to `bound` for
/// them to be gone. Returns the pids killed.
pub fn kill_mentioning(marker: &str, bound: Duration) -> Vec<i32> {
    let pids: Vec<i32> = processes_mentioning(marker)
        .into_iter()
        .filter(|&pid| pid > 1)
        .collect();
    for &pid in &pids {
        eprintln!("testkit: killing leftover process {pid} (mentions {marker})");
        // ESRCH: it is gone already.
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    if !pids.is_empty() {
        crate::wait_until(bound, || pids.iter().all(|&p| !pid_alive(p.into())));
    }
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_a_tree_without_following_symlinks() {
        let base = std::env::temp_dir().join(format!("testkit-cleanup-{}", std::process::id()));
        let keep = base.join("keep");
        let tree = base.join("tree");
        fs::create_dir_all(tree.join("a/b")).unwrap();
        fs::create_dir_all(&keep).unwrap();
        fs::write(keep.join("file"), "x").unwrap();
        std::os::unix::fs::symlink(&keep, tree.join("a/link")).unwrap();
        remove_tree(&keep, &tree);
        assert!(keep.join("file").exists(), "removed outside its base");
        remove_tree(&tree, &base);
        assert!(!tree.exists());
        assert!(keep.join("file").exists(), "followed a symlink");
        fs::remove_dir_all(&base).unwrap();
    }
}
