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
//!   where they are used (`sys::cloexec_from`, `process::clone_in_cgroup`).
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
    /// EPERM also means missing: seccomp profiles written before the call
    /// existed answer it so (Docker's before 20.10.10 did for clone3).
    eperm: bool,
}

impl Missing {
    const fn new(name: &'static str, fallback: &'static str, eperm: bool) -> Missing {
        Missing {
            flag: AtomicBool::new(false),
            name,
            fallback,
            eperm,
        }
    }

    /// Whether the call was found missing before.
    pub fn is_missing(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Whether `e` says the call is missing; the first time, says so in the
    /// debug log.
    pub fn noticed(&self, e: &io::Error) -> bool {
        let why = match e.raw_os_error() {
            Some(libc::ENOSYS) => "not available (ENOSYS)",
            Some(libc::EPERM) if self.eperm => "refused (EPERM, a seccomp profile?)",
            _ => return false,
        };
        if !self.flag.swap(true, Ordering::Relaxed) {
            crate::logging::debug(&format!("{}: {why}; {}", self.name, self.fallback));
        }
        true
    }
}

/// `clone3`, once found missing.
/// (An EPERM that clone would give as well, for flags the caller may not
/// use, is given by clone then.)
pub static CLONE3: Missing = Missing::new("clone3", "using clone", true);
/// `openat2`, once found missing.
pub static OPENAT2: Missing =
    Missing::new("openat2", "resolving paths one component at a time", false);

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

/// The target of the symlink `link` (opened `O_PATH|O_NOFOLLOW`).
fn readlink(link: BorrowedFd<'_>) -> io::Result<OsString> {
    nix::fcntl::readlinkat(Some(link.as_raw_fd()), "").map_err(io::Error::from)
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

/// What one step of the walk found.
enum Found {
    /// A directory (or, last, the file) opened.
    Entry(OwnedFd),
    /// A symlink to resolve, opened itself (`O_PATH|O_NOFOLLOW`).
    Link(OwnedFd),
}

/// `openat2(dirfd, path, flags, mode, resolve)` for a kernel without it:
/// the same answers for the lookups corten makes (see the module's doc).
/// `RESOLVE_NO_XDEV` compares mount ids ([`crate::sys::mount_id`]), so a
/// bind mount of the same filesystem is noticed; `RESOLVE_NO_MAGICLINKS`
/// refuses a symlink in a procfs directory other than procfs's root
/// (`/proc/self` and `/proc/thread-self` stay allowed). Creating (`O_CREAT`,
/// `O_TMPFILE`) is refused (EINVAL): no caller creates through it. Each
/// symlink is read from the descriptor of the link that was checked, never
/// looked up again by name; `..` never opens "..": it returns to the
/// directory walked before (scoped lookups clamp it at their root).
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &Path,
    flags: libc::c_int,
    mode: libc::mode_t,
    resolve: u64,
) -> io::Result<OwnedFd> {
    if flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE {
        return Err(errno(libc::EINVAL));
    }
    if path.as_os_str().is_empty() {
        return Err(errno(libc::ENOENT));
    }
    let scoped = resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH) != 0;
    let beneath = resolve & RESOLVE_BENEATH != 0;
    let no_symlinks = resolve & RESOLVE_NO_SYMLINKS != 0;
    let nofollow = flags & libc::O_NOFOLLOW != 0;
    let follow_last = !nofollow && !no_symlinks;
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
    let root_mnt = if resolve & RESOLVE_NO_XDEV != 0 {
        Some(crate::sys::mount_id(root.as_fd())?)
    } else {
        None
    };
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
        let found = if last {
            last_component(
                cur,
                &name,
                flags,
                mode,
                follow_last,
                no_symlinks && !nofollow,
            )?
        } else {
            let fd = openat(cur, &name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
            if is_symlink(fd.as_fd())? {
                Found::Link(fd)
            } else {
                Found::Entry(fd)
            }
        };
        let fd = match found {
            Found::Entry(fd) => fd,
            Found::Link(link) => {
                // A symlink: read it and resolve its target here.
                if no_symlinks {
                    return Err(errno(libc::ELOOP));
                }
                if resolve & RESOLVE_NO_MAGICLINKS != 0
                    && crate::sys::fs_magic(cur)? == crate::procfs::PROC_SUPER_MAGIC
                    && crate::sys::fstat(cur)?.st_ino != crate::procfs::PROC_ROOT_INO
                {
                    return Err(errno(libc::ELOOP));
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(errno(libc::ELOOP));
                }
                let target = readlink(link.as_fd())?;
                if target.is_empty() {
                    return Err(errno(libc::ENOENT));
                }
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
            }
        };
        if let Some(root_mnt) = root_mnt {
            if crate::sys::mount_id(fd.as_fd())? != root_mnt {
                return Err(errno(libc::EXDEV));
            }
        }
        if last {
            return Ok(fd);
        }
        stack.push(fd);
    }
    Err(errno(libc::ENOENT))
}

/// Opens the last component `name` in `cur` with the caller's `flags`
/// (never following a symlink itself), or returns the symlink to resolve
/// when `follow` says so. `refuse_link`: a symlink is ELOOP
/// (`RESOLVE_NO_SYMLINKS` without `O_NOFOLLOW`).
fn last_component(
    cur: BorrowedFd<'_>,
    name: &OsStr,
    flags: libc::c_int,
    mode: libc::mode_t,
    follow: bool,
    refuse_link: bool,
) -> io::Result<Found> {
    // The entry is looked at with O_PATH first: the caller's flags may not
    // open a symlink at all (O_DIRECTORY gives ENOTDIR).
    let probe = match openat(cur, name, libc::O_PATH | libc::O_NOFOLLOW, 0) {
        Ok(fd) => Some(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
        Err(e) => return Err(e),
    };
    if let Some(link) = probe {
        if is_symlink(link.as_fd())? {
            if follow {
                return Ok(Found::Link(link));
            }
            if refuse_link {
                return Err(errno(libc::ELOOP));
            }
        }
    }
    // O_NOFOLLOW: should the entry have become a symlink meanwhile, this
    // open fails (ELOOP) or, with O_PATH, opens the link itself, which is
    // then resolved as any symlink when following was asked for.
    let fd = openat(cur, name, flags | libc::O_NOFOLLOW, mode)?;
    if follow && flags & libc::O_PATH != 0 && is_symlink(fd.as_fd())? {
        return Ok(Found::Link(fd));
    }
    Ok(Found::Entry(fd))
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
    fn mount_ids_tell_mounts_apart() {
        let m = |p: &str| crate::sys::mount_id(std::fs::File::open(p).unwrap().as_fd()).unwrap();
        assert_eq!(m("/proc"), m("/proc/self"));
        assert_ne!(m("/proc"), m("/"));
        // The fdinfo fallback gives the statx answer.
        let f = std::fs::File::open("/proc").unwrap();
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", f.as_raw_fd())).unwrap();
        let from_fdinfo: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("mnt_id:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        assert_eq!(from_fdinfo, m("/proc"));
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
        // Where the kernel has openat2, the two agree on every lookup:
        // the same file (device and inode) or the same errno.
        let b = base("agree");
        let r = b.join("root");
        symlink("../../outside", r.join("up")).unwrap();
        symlink("dir/file", r.join("link")).unwrap();
        symlink("/dir", r.join("dirlink")).unwrap();
        symlink("nowhere", r.join("dangling")).unwrap();
        let root = std::fs::File::open(&r).unwrap();
        let slash = std::fs::File::open("/").unwrap();
        let proc = std::fs::File::open("/proc").unwrap();
        let (rd, pa, nf, dir) = (
            libc::O_RDONLY,
            libc::O_PATH,
            libc::O_NOFOLLOW,
            libc::O_DIRECTORY,
        );
        let cases: &[(&std::fs::File, &str, libc::c_int, u64)] = &[
            (&root, "up", rd, RESOLVE_IN_ROOT),
            (&root, "up", rd, RESOLVE_BENEATH),
            (&root, "up", rd, RESOLVE_NO_SYMLINKS),
            (&root, "dir/file", rd, RESOLVE_NO_XDEV),
            (&root, "link", pa, RESOLVE_NO_SYMLINKS),
            (&root, "link", pa | nf, RESOLVE_NO_SYMLINKS),
            (&root, "link", rd | nf, 0),
            (&root, "link", pa | nf, RESOLVE_IN_ROOT),
            (&root, "link", rd, RESOLVE_IN_ROOT),
            (&root, "../..", pa | dir, RESOLVE_IN_ROOT),
            (&root, "..", pa | dir, RESOLVE_BENEATH),
            (&root, "dirlink", pa | dir, RESOLVE_IN_ROOT),
            (&root, "dirlink/sub/../file", pa, RESOLVE_IN_ROOT),
            (&root, "dangling", pa, RESOLVE_IN_ROOT),
            (&root, "dangling", pa | nf, RESOLVE_IN_ROOT),
            (&root, "dir/file/x", pa, RESOLVE_IN_ROOT),
            (&root, "/dir/sub", pa | dir, RESOLVE_IN_ROOT),
            (&root, "/dir", pa, RESOLVE_BENEATH),
            (&slash, "proc/self", pa, RESOLVE_NO_XDEV),
            (&slash, "sys/kernel", pa, RESOLVE_NO_XDEV),
            (&proc, "self", pa | dir, RESOLVE_NO_MAGICLINKS),
            (
                &proc,
                "self/status",
                rd,
                RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
            ),
            (&proc, "self/exe", pa, RESOLVE_NO_MAGICLINKS),
            (
                &proc,
                "self/cwd",
                pa,
                RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
            ),
            (&proc, "self/status", rd, RESOLVE_NO_SYMLINKS),
        ];
        let id = |r: io::Result<OwnedFd>| {
            r.map(|fd| {
                let st = crate::sys::fstat(fd.as_fd()).unwrap();
                (st.st_dev, st.st_ino)
            })
            .map_err(|e| e.raw_os_error())
        };
        let mut compared = 0;
        for &(dirf, p, flags, res) in cases {
            let kernel = crate::sys::openat2(dirf.as_fd(), Path::new(p), flags, 0, res);
            if matches!(&kernel, Err(e) if e.raw_os_error() == Some(libc::ENOSYS)) {
                continue;
            }
            let ours = openat2(dirf.as_fd(), Path::new(p), flags, 0, res);
            assert_eq!(
                id(ours),
                id(kernel),
                "{p} with flags {flags:#o}, resolve {res:#x}"
            );
            compared += 1;
        }
        eprintln!("compat: {compared} lookups compared with the kernel's openat2");
        std::fs::remove_dir_all(&b).unwrap();
    }
}
