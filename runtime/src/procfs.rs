//! Writes under `/proc` through a verified handle (the CVE-2025-52881
//! class).
//!
//! Every file the runtime writes in procfs (id maps, `setgroups`,
//! `oom_score_adj`, sysctls, LSM attributes, `timens_offsets`) changes the
//! kernel's idea of a process. Written through a plain path, a mount placed
//! over that path (a racing mount in a shared volume, a bind in the config)
//! would receive the write instead, and with it the runtime's privilege.
//! Here the path is resolved inside a procfs instance of our own:
//!
//! - a fresh, detached procfs (`fsopen("proc")`, `fsmount`): no one else
//!   has a path to it, so nothing can be mounted over anything in it. Where
//!   the kernel refuses that (an unprivileged user namespace, an old
//!   kernel), `/proc` opened once and checked to be the root of a procfs;
//! - each file opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_XDEV |
//!   RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`: a walk that crosses a
//!   mount or a symlink fails instead of being redirected; `self` is read
//!   once with `readlinkat` and replaced by the pid it names;
//! - the opened file checked with `fstatfs` to be procfs before the write.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::sys::{
    self, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV,
};

/// `PROC_SUPER_MAGIC`.
pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;
/// The inode of a procfs root (`PROC_ROOT_INO`).
pub const PROC_ROOT_INO: u64 = 1;

/// A procfs handle; see the module documentation.
#[derive(Debug)]
pub struct ProcFs {
    root: OwnedFd,
}

impl ProcFs {
    /// A private procfs instance for the caller's pid namespace, else the
    /// verified root of `/proc`.
    pub fn open() -> io::Result<ProcFs> {
        match private_instance() {
            Ok(root) => Ok(ProcFs { root }),
            Err(_) => {
                let root = sys::openat2(
                    cwd(),
                    Path::new("/proc"),
                    libc::O_PATH | libc::O_DIRECTORY,
                    0,
                    RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
                )?;
                let st = sys::fstat(root.as_fd())?;
                if sys::fs_magic(root.as_fd())? != PROC_SUPER_MAGIC || st.st_ino != PROC_ROOT_INO {
                    return Err(io::Error::other("/proc is not the root of a procfs mount"));
                }
                Ok(ProcFs { root })
            }
        }
    }

    /// Writes `data` to `path` (relative to the procfs root, such as
    /// `sys/net/ipv4/ip_forward`, `self/attr/exec` or `1234/uid_map`) in
    /// one `write(2)`, as procfs files expect.
    pub fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        let mut f = std::fs::File::from(self.open_file(path, libc::O_WRONLY)?);
        f.write_all(data)
    }

    /// Opens `path` as [`ProcFs::write`] resolves it.
    pub fn open_file(&self, path: &str, flags: libc::c_int) -> io::Result<OwnedFd> {
        let path = self.resolve_self(path)?;
        let fd = sys::openat2(
            self.root.as_fd(),
            &path,
            flags | libc::O_NOFOLLOW,
            0,
            RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        )?;
        if sys::fs_magic(fd.as_fd())? != PROC_SUPER_MAGIC {
            return Err(io::Error::other(format!(
                "/proc/{} is not on procfs",
                path.display()
            )));
        }
        Ok(fd)
    }

    /// `self/…` and `thread-self/…` with the pid (tid) the link names in
    /// this instance.
    fn resolve_self(&self, path: &str) -> io::Result<PathBuf> {
        for link in ["self", "thread-self"] {
            if let Some(rest) = path.strip_prefix(link).and_then(|r| r.strip_prefix('/')) {
                let target = nix::fcntl::readlinkat(Some(self.root.as_raw_fd()), link)
                    .map_err(io::Error::from)?;
                return Ok(PathBuf::from(target).join(rest));
            }
        }
        Ok(PathBuf::from(path))
    }
}

fn cwd() -> BorrowedFd<'static> {
    sys::cwd_fd()
}

/// A procfs mount that is attached nowhere, checked to be procfs.
fn private_instance() -> io::Result<OwnedFd> {
    let mnt = sys::detached_procfs()?;
    if sys::fs_magic(mnt.as_fd())? != PROC_SUPER_MAGIC {
        return Err(io::Error::other("fsmount(proc) is not procfs"));
    }
    Ok(mnt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reach_procfs_and_self_is_resolved() {
        let Ok(p) = ProcFs::open() else {
            return; // no procfs at all: nothing to check
        };
        // Our own oom_score_adj, raised by 0 (any process may write its
        // current value back).
        let now = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        p.write("self/oom_score_adj", now.trim().as_bytes())
            .unwrap();
        let me = std::process::id();
        p.write(&format!("{me}/oom_score_adj"), now.trim().as_bytes())
            .unwrap();
        // A symlink in the path is refused, not followed.
        let err = p.open_file("self/cwd/x", libc::O_RDONLY).unwrap_err();
        assert!(
            matches!(
                err.raw_os_error(),
                Some(libc::ELOOP | libc::EXDEV | libc::ENOENT)
            ),
            "{err}"
        );
        // `..` cannot leave the instance.
        assert!(p.open_file("../etc/passwd", libc::O_RDONLY).is_err());
    }
}
