//! Resolving and creating paths inside the rootfs without ever leaving it:
//! every lookup is `openat2(rootfd, path, RESOLVE_IN_ROOT)`, so a symlink
//! planted in the rootfs or a volume resolves inside the container
//! (CVE-2021-30465).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use crate::sys::{self, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS};

/// Opens `path` (absolute inside the container) as an `O_PATH` descriptor.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, extra: u64) -> io::Result<OwnedFd> {
    sys::openat2(
        root,
        &relative(path),
        libc::O_PATH,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra,
    )
}

/// `path` without its leading `/`, `.` and empty components; `..` kept (the
/// kernel clamps it at the root).
pub fn relative(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => out.push(".."),
            _ => {}
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Opens directory `path` inside the root, creating missing components
/// (mode 0755).
pub fn mkdir_all(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    mkdir_all_links(root, path, 0)
}

/// [`mkdir_all`], `links` dangling symlinks deep.
fn mkdir_all_links(root: BorrowedFd<'_>, path: &Path, links: usize) -> io::Result<OwnedFd> {
    let rel = relative(path);
    let mut prefix = PathBuf::new();
    let mut cur = sys::openat2(root, Path::new("."), libc::O_PATH | libc::O_DIRECTORY, 0, 0)?;
    for comp in rel.components() {
        let parent = prefix.clone();
        prefix.push(comp);
        let next = match open_dir(root, &prefix) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                match nix::sys::stat::mkdirat(
                    Some(cur.as_raw_fd()),
                    comp.as_os_str(),
                    nix::sys::stat::Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) => {}
                    Err(nix::Error::EEXIST) => {
                        // A dangling symlink (images have `/var/run -> /run`
                        // without `/run`): make what it points to, inside the
                        // root, as runc does.
                        if let Ok(target) =
                            nix::fcntl::readlinkat(Some(cur.as_raw_fd()), comp.as_os_str())
                        {
                            if links >= 40 {
                                return Err(io::Error::from_raw_os_error(libc::ELOOP));
                            }
                            let target = parent.join(target); // absolute: replaces
                            drop(mkdir_all_links(root, &target, links + 1)?);
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
                open_dir(root, &prefix)?
            }
            Err(e) => return Err(e),
        };
        cur = next;
    }
    Ok(cur)
}

fn open_dir(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    sys::openat2(
        root,
        rel,
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )
}

/// Opens `path` inside the root as a directory or, with `file`, as a file,
/// creating it (and its parents) when missing.
pub fn ensure(root: BorrowedFd<'_>, path: &Path, file: bool) -> io::Result<OwnedFd> {
    if !file {
        return mkdir_all(root, path);
    }
    match open_in_root(root, path, 0) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
        Err(_) => {}
    }
    let rel = relative(path);
    let parent = mkdir_all(root, rel.parent().unwrap_or(Path::new("")))?;
    let name = rel
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    match nix::fcntl::openat(
        Some(parent.as_raw_fd()),
        name,
        nix::fcntl::OFlag::O_CREAT
            | nix::fcntl::OFlag::O_EXCL
            | nix::fcntl::OFlag::O_WRONLY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    ) {
        Ok(fd) => {
            let _ = nix::unistd::close(fd);
        }
        Err(nix::Error::EEXIST) => {}
        Err(e) => return Err(e.into()),
    }
    open_in_root(root, path, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("/a/./b//c")), PathBuf::from("a/b/c"));
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
        assert_eq!(relative(Path::new("/a/../b")), PathBuf::from("a/../b"));
    }

    #[test]
    fn symlink_cannot_escape_root() {
        let base = std::env::temp_dir().join(format!("corten-resolve-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink("../../../../", root.join("evil")).unwrap();
        let rootfd = std::fs::File::open(&root).unwrap();
        match mkdir_all(std::os::fd::AsFd::as_fd(&rootfd), Path::new("/evil/inside")) {
            Err(e)
                if e.raw_os_error() == Some(libc::ENOSYS)
                    && crate::test_support::skip_under_emulation(
                        "rootfs::resolve::tests::symlink_cannot_escape_root",
                        "the emulator has no openat2(2) (ENOSYS); covered by the arm64 VM",
                    ) =>
            {
                std::fs::remove_dir_all(&base).unwrap();
                return;
            }
            r => drop(r.unwrap()),
        }
        assert!(root.join("inside").is_dir(), "created inside the root");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
