//! Fallbacks for kernels (or seccomp profiles around corten) without the
//! newer system calls corten prefers:
//!
//! - `clone3` (Linux 5.3): the classic `clone` with the same flags, when
//!   none of them needs clone3 (`CLONE_INTO_CGROUP`; a time namespace is
//!   unshared before the clone, which works with either);
//! - `openat2` (Linux 5.6): the path walked one component at a time with
//!   `openat(O_PATH|O_NOFOLLOW)`, symlinks read and resolved by corten
//!   inside the root, `..` clamped at the root without ever opening it, so
//!   the scoped lookups (`RESOLVE_IN_ROOT`, `RESOLVE_BENEATH`) still cannot
//!   leave their root through a symlink planted in the rootfs;
//! - `close_range` (5.9) and `CLONE_INTO_CGROUP` (5.7) have their fallbacks
//!   where they are used (`sys::cloexec_from`, `process::clone_into`).
//!
//! Each missing call is noticed once (ENOSYS), said in the debug log, and
//! not tried again by this process.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys::{
    RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV,
};

/// A system call found missing (ENOSYS) in this process.
#[derive(Debug)]
pub struct Missing {
    flag: AtomicBool,
    name: &'static str,
    fallback: &'static str,
}

impl Missing {
    const fn new(name: &'static str, fallback: &'static str) -> Missing {
        Missing {
            flag: AtomicBool::new(false),
            name,
            fallback,
        }
    }

    /// Whether the call was found missing before.
    pub fn is_missing(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Whether `e` says the call is missing; the first time, says so in the
    /// debug log.
    pub fn noticed(&self, e: &io::Error) -> bool {
        if e.raw_os_error() != Some(libc::ENOSYS) {
            return false;
        }
        if !self.flag.swap(true, Ordering::Relaxed) {
            crate::logging::debug(&format!(
                "{}: not available (ENOSYS); {}",
                self.name, self.fallback
            ));
        }
        true
    }
}

/// `clone3`, once found missing.
pub static CLONE3: Missing = Missing::new("clone3", "using clone");
/// `openat2`, once found missing.
pub static OPENAT2: Missing = Missing::new("openat2", "resolving paths one component at a time");

/// The classic `clone(flags | exit_signal)` with the child on a copy of the
/// caller's stack (as fork); ENOSYS for flags only clone3 can carry.
pub fn clone(flags: u64, exit_signal: u64) -> io::Result<libc::c_long> {
    if flags >> 32 != 0 || flags & crate::sys::CLONE_NEWTIME != 0 {
        // CLONE_NEWTIME's bit is CSIGNAL's in clone(2); corten unshares a
        // time namespace before cloning instead.
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    let flags = libc::c_ulong::try_from(flags | exit_signal)
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    crate::sys::clone_classic(flags)
}

/// The longest chain of symlinks followed, as the kernel's (ELOOP).
const MAX_LINKS: usize = 40;

fn errno(e: libc::c_int) -> io::Error {
    io::Error::from_raw_os_error(e)
}

fn openat(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    crate::sys::openat(
        dir,
        Path::new(name),
        nix::fcntl::OFlag::from_bits_retain(flags | libc::O_CLOEXEC),
        nix::sys::stat::Mode::from_bits_truncate(mode),
    )
}

fn readlinkat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OsString> {
    nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name).map_err(io::Error::from)
}

fn is_symlink(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(crate::sys::fstat(fd)?.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

/// Pushes `path`'s components to the front of `queue`; whether it was
/// absolute.
fn push_front(queue: &mut VecDeque<OsString>, path: &Path) -> bool {
    for c in path.components().rev() {
        match c {
            Component::Normal(n) => queue.push_front(n.to_os_string()),
            Component::ParentDir => queue.push_front(OsString::from("..")),
            _ => {}
        }
    }
    path.is_absolute()
}

/// `openat2(dirfd, path, flags, mode, resolve)` for a kernel without it:
/// the same answers for the lookups corten makes (see the module's doc).
/// `RESOLVE_NO_XDEV` compares device numbers (a bind mount of the same
/// filesystem is not noticed); `RESOLVE_NO_MAGICLINKS` refuses symlinks in
/// procfs below its root (`/proc/self` stays allowed).
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &Path,
    flags: libc::c_int,
    mode: libc::mode_t,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let scoped = resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH) != 0;
    let beneath = resolve & RESOLVE_BENEATH != 0;
    let no_symlinks = resolve & RESOLVE_NO_SYMLINKS != 0;
    let follow_last = flags & libc::O_NOFOLLOW == 0 && !no_symlinks;
    let mut queue = VecDeque::new();
    let absolute = push_front(&mut queue, path);
    if absolute && beneath {
        return Err(errno(libc::EXDEV));
    }
    let here = |p: &str| openat(dirfd, OsStr::new(p), libc::O_PATH | libc::O_DIRECTORY, 0);
    let root = if absolute && !scoped {
        here("/")?
    } else {
        here(".")?
    };
    let root_dev = crate::sys::fstat(root.as_fd())?.st_dev;
    // The directories walked so far: `..` pops instead of opening "..".
    let mut stack: Vec<OwnedFd> = vec![root];
    let mut links = 0;
    if queue.is_empty() {
        queue.push_back(OsString::from("."));
    }
    while let Some(name) = queue.pop_front() {
        let last = queue.is_empty();
        let cur = stack.last().ok_or_else(|| errno(libc::EINVAL))?.as_fd();
        if name == ".." {
            if stack.len() > 1 {
                stack.pop();
            } else if beneath {
                return Err(errno(libc::EXDEV));
            } else if !scoped {
                let up = openat(cur, &name, libc::O_PATH | libc::O_DIRECTORY, 0)?;
                stack[0] = up;
            }
            if last {
                queue.push_back(OsString::from("."));
            }
            continue;
        }
        let fd = if last {
            // A symlink to follow is found with O_PATH first (the caller's
            // flags may refuse it: O_DIRECTORY gives ENOTDIR). Should the
            // entry become a symlink between the two opens, O_NOFOLLOW
            // makes the second fail or open the link itself: never follow.
            let link = follow_last
                && match openat(cur, &name, libc::O_PATH | libc::O_NOFOLLOW, 0) {
                    Ok(fd) => is_symlink(fd.as_fd())?,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => false,
                    Err(e) => return Err(e),
                };
            if link {
                None
            } else {
                Some(openat(cur, &name, flags | libc::O_NOFOLLOW, mode)?)
            }
        } else {
            let fd = openat(cur, &name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
            if is_symlink(fd.as_fd())? {
                None
            } else {
                Some(fd)
            }
        };
        let Some(fd) = fd else {
            // A symlink: read it and resolve its target here.
            if no_symlinks {
                return Err(errno(libc::ELOOP));
            }
            if resolve & RESOLVE_NO_MAGICLINKS != 0
                && stack.len() > 1
                && crate::sys::fs_magic(cur)? == crate::procfs::PROC_SUPER_MAGIC
            {
                return Err(errno(libc::ELOOP));
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(errno(libc::ELOOP));
            }
            let target = readlinkat(cur, &name)?;
            if push_front(&mut queue, Path::new(&target)) {
                if beneath {
                    return Err(errno(libc::EXDEV));
                }
                stack.truncate(1);
                if !scoped {
                    stack[0] = here("/")?;
                }
            }
            if queue.is_empty() {
                queue.push_back(OsString::from("."));
            }
            continue;
        };
        if resolve & RESOLVE_NO_XDEV != 0 && crate::sys::fstat(fd.as_fd())?.st_dev != root_dev {
            return Err(errno(libc::EXDEV));
        }
        if last {
            return Ok(fd);
        }
        stack.push(fd);
    }
    Err(errno(libc::ENOENT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn base(name: &str) -> std::path::PathBuf {
        let b = std::env::temp_dir().join(format!("corten-compat-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&b);
        std::fs::create_dir_all(b.join("root/dir/sub")).unwrap();
        std::fs::write(b.join("root/dir/file"), b"inside").unwrap();
        std::fs::write(b.join("outside"), b"outside").unwrap();
        b
    }

    fn read(fd: OwnedFd) -> String {
        std::fs::read_to_string(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap()
    }

    #[test]
    fn in_root_lookups_stay_inside() {
        let b = base("inroot");
        let r = b.join("root");
        symlink("../../../../outside", r.join("up")).unwrap();
        symlink("/outside", r.join("abs")).unwrap();
        std::fs::write(r.join("outside"), b"root's own").unwrap();
        symlink("dir/../dir/./file", r.join("rel")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        symlink("missing/dir", r.join("reldir")).unwrap();
        let root = std::fs::File::open(&r).unwrap();
        let open = |p: &str, flags| openat2(root.as_fd(), Path::new(p), flags, 0, RESOLVE_IN_ROOT);
        assert_eq!(read(open("up", libc::O_RDONLY).unwrap()), "root's own");
        assert_eq!(read(open("/abs", libc::O_RDONLY).unwrap()), "root's own");
        assert_eq!(
            read(open("../../dir/file", libc::O_RDONLY).unwrap()),
            "inside"
        );
        assert_eq!(read(open("rel", libc::O_RDONLY).unwrap()), "inside");
        let e = open("loop1", libc::O_RDONLY).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        let e = open("dir/missing/x", libc::O_RDONLY).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        // O_PATH|O_NOFOLLOW opens the link itself, as openat2 does.
        let link = open("abs", libc::O_PATH | libc::O_NOFOLLOW).unwrap();
        assert!(is_symlink(link.as_fd()).unwrap());
        let d = open("reldir", libc::O_PATH | libc::O_DIRECTORY).unwrap_err();
        assert_eq!(d.raw_os_error(), Some(libc::ENOENT), "a dangling link");
        symlink("/dir/sub", r.join("subdir")).unwrap();
        let d = open("subdir", libc::O_PATH | libc::O_DIRECTORY).unwrap();
        assert!(
            !is_symlink(d.as_fd()).unwrap(),
            "a link to a directory is followed"
        );
        let dir = open("dir/sub/..", libc::O_PATH | libc::O_DIRECTORY).unwrap();
        let st = crate::sys::fstat(dir.as_fd()).unwrap();
        assert_eq!(
            st.st_ino,
            std::fs::metadata(r.join("dir"))
                .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
                .unwrap()
        );
        std::fs::remove_dir_all(&b).unwrap();
    }

    #[test]
    fn beneath_and_no_symlinks_refuse() {
        let b = base("beneath");
        let r = b.join("root");
        symlink("dir/file", r.join("link")).unwrap();
        let root = std::fs::File::open(&r).unwrap();
        let e = openat2(
            root.as_fd(),
            Path::new("../outside"),
            libc::O_RDONLY,
            0,
            RESOLVE_BENEATH,
        )
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EXDEV));
        let e = openat2(
            root.as_fd(),
            Path::new("link"),
            libc::O_RDONLY,
            0,
            RESOLVE_NO_SYMLINKS,
        )
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        let f = openat2(
            root.as_fd(),
            Path::new("link"),
            libc::O_RDONLY,
            0,
            RESOLVE_BENEATH,
        )
        .unwrap();
        assert_eq!(read(f), "inside");
        // Unscoped: an absolute path is the host's.
        let abs = b.join("outside");
        let f = openat2(root.as_fd(), &abs, libc::O_RDONLY, 0, 0).unwrap();
        assert_eq!(read(f), "outside");
        std::fs::remove_dir_all(&b).unwrap();
    }

    #[test]
    fn the_emulation_answers_as_the_kernel() {
        // Where the kernel has openat2, the two agree on the same lookups.
        let b = base("agree");
        let r = b.join("root");
        symlink("../../outside", r.join("up")).unwrap();
        let root = std::fs::File::open(&r).unwrap();
        for (p, res) in [
            ("up", RESOLVE_IN_ROOT),
            ("up", RESOLVE_BENEATH),
            ("dir/file", RESOLVE_NO_XDEV),
            ("up", RESOLVE_NO_SYMLINKS),
        ] {
            let ours = openat2(root.as_fd(), Path::new(p), libc::O_RDONLY, 0, res)
                .map(read)
                .map_err(|e| e.raw_os_error());
            let kernel =
                match crate::sys::openat2(root.as_fd(), Path::new(p), libc::O_RDONLY, 0, res) {
                    Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => continue,
                    r => r.map(read).map_err(|e| e.raw_os_error()),
                };
            assert_eq!(ours, kernel, "{p} with resolve {res:#x}");
        }
        std::fs::remove_dir_all(&b).unwrap();
    }
}
