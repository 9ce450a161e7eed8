//! Safe wrappers around the raw system calls that neither `nix` nor `libc`
//! wrap: `clone3`, `openat2`, `mount_setattr`, `close_range`, `TIOCGPTPEER`,
//! `mknodat`. Every `unsafe` block of the crate that calls the kernel
//! directly lives here.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// A C flag word (`int`, never negative for flags) as the `u64` that
/// `clone3` and `openat2` take. (`cast_unsigned` needs Rust 1.87; Debian's
/// rustc-web is 1.85.)
#[allow(clippy::cast_sign_loss)]
pub fn flag_bits(flags: libc::c_int) -> u64 {
    u64::from(flags as u32)
}

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `struct clone_args` of `clone3(2)`, version 2 (with `cgroup`).
#[repr(C)]
#[derive(Debug, Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// The side of a fork the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// In the parent; the child's pid (in the caller's pid namespace).
    Parent(libc::pid_t),
    /// In the child.
    Child,
}

/// `clone3` with fork semantics (no new stack): the child continues from the
/// same point on a copy of the address space. `flags` are `CLONE_*` flags;
/// `cgroup` puts the child into that cgroup v2 directory (`CLONE_INTO_CGROUP`).
///
/// The caller must be single-threaded (corten spawns no threads), so the
/// child's copy of every lock is consistent.
///
/// Without clone3 (ENOSYS: Linux before 5.3, or a seccomp profile around
/// corten), the classic `clone` with the same flags: see [`crate::compat`].
pub fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<Forked> {
    let exit_signal = if flags & flag_bits(libc::CLONE_PARENT) == 0 {
        libc::SIGCHLD as u64
    } else {
        0
    };
    if crate::compat::CLONE3.is_missing() {
        return forked(compat_clone(flags, cgroup, exit_signal)?);
    }
    let mut args = CloneArgs {
        flags,
        // With CLONE_PARENT the child inherits the caller's exit signal and
        // the kernel refuses any other (EINVAL).
        exit_signal,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = u64::try_from(fd.as_raw_fd()).unwrap_or_default();
    }
    // SAFETY: args is a valid, initialised clone_args of the size passed; with
    // stack = 0 the kernel gives the child a copy of this thread's stack, like
    // fork(), which is sound because the process is single-threaded.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match check(ret) {
        Err(e) if crate::compat::CLONE3.noticed(&e) => {
            forked(compat_clone(flags, cgroup, exit_signal)?)
        }
        r => forked(r?),
    }
}

/// clone3's fallback: `clone`, which cannot put the child in a cgroup
/// (ENOSYS then, and the caller moves the child itself).
fn compat_clone(
    flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
    exit_signal: u64,
) -> io::Result<libc::c_long> {
    if cgroup.is_some() {
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    crate::compat::clone(flags, exit_signal)
}

/// The classic `clone(flags)` with the child on a copy of the caller's
/// stack (as fork): clone3's fallback ([`crate::compat::clone`]).
pub fn clone_classic(flags: libc::c_ulong) -> io::Result<libc::c_long> {
    // SAFETY: no stack and no tid pointers: the child continues on a copy
    // of this (single-threaded) process's stack, as after fork().
    check(unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) })
}

/// The id of the mount `fd` is on: `statx(STATX_MNT_ID)` (Linux 5.8), else
/// the `mnt_id:` line of `/proc/thread-self/fdinfo/<fd>` (3.15). Two
/// descriptors on different mounts of one filesystem (a bind mount of one
/// procfs file over another) have different ids but the same `st_dev`.
pub fn mount_id(fd: BorrowedFd<'_>) -> io::Result<u64> {
    const STATX_MNT_ID: u32 = 0x1000;
    // SAFETY: an all-zero statx is a valid value of the plain C struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: the path is an empty NUL-terminated literal (AT_EMPTY_PATH:
    // the descriptor itself) and stx a live, writable statx.
    let ret = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            STATX_MNT_ID,
            &mut stx,
        )
    };
    // Mount ids start at 1: a 0 is an emulator's (qemu-user's statx keeps
    // the mask bit but not the field); fdinfo knows then.
    if ret == 0 && stx.stx_mask & STATX_MNT_ID != 0 && stx.stx_mnt_id != 0 {
        return Ok(stx.stx_mnt_id);
    }
    let info = std::fs::read_to_string(format!("/proc/thread-self/fdinfo/{}", fd.as_raw_fd()))?;
    info.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no mnt_id in fdinfo"))
}

fn forked(ret: libc::c_long) -> io::Result<Forked> {
    match ret {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(
            libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
        )),
    }
}

/// `CLONE_INTO_CGROUP` (not in every libc).
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// `CLONE_NEWTIME`.
pub const CLONE_NEWTIME: u64 = 0x80;

/// `struct open_how` of `openat2(2)`.
#[repr(C)]
#[derive(Debug, Default)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `RESOLVE_NO_MAGICLINKS`.
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
/// `RESOLVE_NO_SYMLINKS`.
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
/// `RESOLVE_NO_XDEV`.
pub const RESOLVE_NO_XDEV: u64 = 0x01;
/// `RESOLVE_BENEATH`: refuse anything that leaves `dirfd`.
pub const RESOLVE_BENEATH: u64 = 0x08;
/// `RESOLVE_IN_ROOT`: resolve as if `dirfd` were `/`.
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// `openat2(dirfd, path, flags, mode, resolve)`; `O_CLOEXEC` is always added.
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &Path,
    flags: libc::c_int,
    mode: libc::mode_t,
    resolve: u64,
) -> io::Result<OwnedFd> {
    if crate::compat::OPENAT2.is_missing() {
        return crate::compat::openat2(dirfd, path, flags, mode, resolve);
    }
    let c = cstring(path)?;
    let how = OpenHow {
        flags: flag_bits(flags | libc::O_CLOEXEC),
        mode: u64::from(mode),
        resolve,
    };
    loop {
        // SAFETY: c is a NUL-terminated string and how a valid open_how, both
        // alive for the call; the kernel returns a new descriptor we own.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        match check(ret) {
            // EAGAIN: a rename raced with RESOLVE_IN_ROOT; retry as the man page advises.
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
            Err(e) if crate::compat::OPENAT2.noticed(&e) => {
                return crate::compat::openat2(dirfd, path, flags, mode, resolve);
            }
            Err(e) => return Err(e),
            Ok(fd) => {
                let fd = libc::c_int::try_from(fd)
                    .map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
                // SAFETY: the kernel just returned this descriptor and nobody else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
}

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
#[derive(Debug, Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `MOUNT_ATTR_RDONLY` and friends.
pub mod mount_attr {
    /// Read-only.
    pub const RDONLY: u64 = 0x01;
    /// No set-user-id.
    pub const NOSUID: u64 = 0x02;
    /// No devices.
    pub const NODEV: u64 = 0x04;
    /// No exec.
    pub const NOEXEC: u64 = 0x08;
    /// Access-time mask.
    pub const ATIME_MASK: u64 = 0x70;
    /// relatime.
    pub const RELATIME: u64 = 0x00;
    /// noatime.
    pub const NOATIME: u64 = 0x10;
    /// strictatime.
    pub const STRICTATIME: u64 = 0x20;
    /// nodiratime.
    pub const NODIRATIME: u64 = 0x80;
    /// nosymfollow.
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

/// Sets and clears mount attributes on the mount at `fd` and, with
/// `recursive`, on every mount below it.
pub fn mount_setattr(fd: BorrowedFd<'_>, set: u64, clear: u64, recursive: bool) -> io::Result<()> {
    setattr(
        fd,
        &MountAttr {
            attr_set: set,
            attr_clr: clear,
            ..MountAttr::default()
        },
        recursive,
    )
}

/// Idmaps the detached mount at `fd` (and, with `recursive`, every mount
/// below it) with the maps of the user namespace `userns`
/// (`MOUNT_ATTR_IDMAP`, Linux ≥ 5.12, on filesystems that allow it).
pub fn mount_setattr_idmap(
    fd: BorrowedFd<'_>,
    userns: BorrowedFd<'_>,
    recursive: bool,
) -> io::Result<()> {
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    setattr(
        fd,
        &MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            userns_fd: u64::try_from(userns.as_raw_fd()).unwrap_or(u64::MAX),
            ..MountAttr::default()
        },
        recursive,
    )
}

fn setattr(fd: BorrowedFd<'_>, attr: &MountAttr, recursive: bool) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= 0x8000; // AT_RECURSIVE
    }
    // SAFETY: the path is the empty C string, attr a valid mount_attr alive
    // for the call; the kernel reads both and keeps neither.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(ret).map(drop)
}

/// Marks every descriptor from `first` upwards close-on-exec: one
/// `close_range(CLOSE_RANGE_CLOEXEC)`, or, where that is unavailable (old
/// kernel, or a seccomp profile that forbids it), `fcntl` on each entry of
/// `/proc/self/fd`.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on
    // descriptors; it touches no memory.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if check(ret).is_ok() {
        return Ok(());
    }
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| u32::try_from(*fd).is_ok_and(|f| f >= first))
        .collect();
    for fd in fds {
        // SAFETY: F_GETFD/F_SETFD on a descriptor number only change its
        // flags; a number closed meanwhile (the directory's own) gives EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Opens the peer (slave) of the pty master `master` without a path lookup.
pub fn pty_peer(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd.
    let ret = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

/// Unlocks the pty slave of `master` (`TIOCSPTLCK` 0).
pub fn unlockpt(master: BorrowedFd<'_>) -> io::Result<()> {
    let zero: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, valid for the call.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &zero) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the window size of a terminal.
pub fn set_winsize(tty: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize through the pointer, valid for the call.
    let ret = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `tty` the controlling terminal of the calling session.
pub fn set_controlling_tty(tty: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument by value.
    let ret = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `mknodat(dirfd, name, mode, dev)`.
pub fn mknodat(
    dirfd: BorrowedFd<'_>,
    name: &Path,
    mode: libc::mode_t,
    dev: libc::dev_t,
) -> io::Result<()> {
    let c = cstring(name)?;
    // SAFETY: c is a NUL-terminated string alive for the call.
    let ret = unsafe { libc::mknodat(dirfd.as_raw_fd(), c.as_ptr(), mode, dev) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The path through which the kernel resolves an open descriptor.
pub fn fd_path(fd: impl AsFd) -> String {
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

/// Duplicates descriptor `target_fd` of process `pid` into this process
/// (`pidfd_open` + `pidfd_getfd`, Linux 5.6), close-on-exec.
pub fn fd_of_process(pid: i32, target_fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; no memory is passed.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let pidfd = owned(pidfd)?;
    // SAFETY: pidfd_getfd takes a pidfd, a descriptor number and flags (0)
    // and returns a new close-on-exec descriptor or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target_fd, 0) };
    owned(fd)
}

/// The descriptor a system call returned, or its error.
fn owned(ret: libc::c_long) -> io::Result<OwnedFd> {
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstat` of a descriptor.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    nix::sys::stat::fstat(fd.as_raw_fd()).map_err(io::Error::from)
}

/// `fstatfs` magic number of the filesystem behind `fd`.
pub fn fs_magic(fd: BorrowedFd<'_>) -> io::Result<i64> {
    let st = nix::sys::statfs::fstatfs(fd).map_err(io::Error::from)?;
    Ok(st.filesystem_type().0 as i64)
}

/// Whether `path` is on a filesystem of magic `magic`.
pub fn is_fs(path: &Path, magic: i64) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 == magic)
}

/// Seals that make a memfd immutable: no writes, no size change, no unsealing.
const EXE_SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Whether nothing can write the running executable through
/// `/proc/<pid>/exe`: it is a write-sealed memfd, or it sits on a read-only
/// mount (the detached read-only bind of [`reexec_protected`], or a binary
/// installed on a read-only filesystem).
pub fn self_exe_is_protected() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS on a descriptor we own; no memory is passed.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & EXE_SEALS == EXE_SEALS {
        return true;
    }
    nix::sys::statvfs::fstatvfs(&f)
        .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Re-executes the running binary, with the same arguments and environment,
/// from a copy that nothing can write (CVE-2019-5736: a process inside the
/// container that reaches `/proc/<pid>/exe` of corten, or runs it through
/// `#!/proc/self/exe`, must never reach a writable host binary). Returns
/// only on failure.
///
/// First choice: a detached, read-only bind mount of the binary itself
/// (`open_tree(OPEN_TREE_CLONE)` + `mount_setattr(MOUNT_ATTR_RDONLY)`),
/// executed with `execveat`. It is attached nowhere, so no mount table
/// changes, and it copies nothing: `/proc/<pid>/exe` then names the host's
/// file through a mount where every open for writing fails with EROFS, and
/// no one can remount it (it belongs to no mount namespace). Measured: about
/// 2 ms less per `create`/`run`/`exec` than the copy below, which is the
/// fallback where the new mount API is missing (kernel < 5.12) or not
/// permitted (no CAP_SYS_ADMIN): a sealed memfd copy of the binary.
pub fn reexec_protected() -> io::Error {
    let (args, env) = match exec_args() {
        Ok(v) => v,
        Err(e) => return e,
    };
    let bind_err = match ro_bind_of_self() {
        Ok(fd) => execveat_fd(fd.as_fd(), &args, &env),
        Err(e) => e,
    };
    let memfd_err = match sealed_copy_of_self() {
        Ok(fd) => execveat_fd(fd.as_fd(), &args, &env),
        Err(e) => e,
    };
    io::Error::new(
        memfd_err.kind(),
        format!("read-only bind: {bind_err}; sealed memfd copy: {memfd_err}"),
    )
}

/// The process's arguments and environment as C strings.
fn exec_args() -> io::Result<(Vec<CString>, Vec<CString>)> {
    let args = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let env = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv)
        })
        .collect::<Result<_, _>>()?;
    Ok((args, env))
}

/// A detached copy of the mount at `path` (`open_tree(OPEN_TREE_CLONE)`,
/// with its submounts when `recursive`), close-on-exec: a bind mount that
/// belongs to no namespace until [`attach_tree`] puts it somewhere.
pub fn clone_tree(path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let c = CString::new(path.as_os_str().as_bytes())?;
    let rec = if recursive {
        libc::AT_RECURSIVE as libc::c_uint
    } else {
        0
    };
    // SAFETY: the path is a NUL-terminated string alive for the call;
    // open_tree returns a new descriptor or -1 and keeps no pointer.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | rec,
        )
    })?;
    let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: open_tree returned a new descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Attaches the detached mount `tree` (from [`clone_tree`]) over `target`
/// (`move_mount` between two descriptors).
pub fn attach_tree(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: both paths are empty NUL-terminated strings and both
    // descriptors are open for the call; nothing is retained.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// A detached read-only bind mount of `/proc/self/exe`'s file (an `O_PATH`
/// descriptor of it).
fn ro_bind_of_self() -> io::Result<OwnedFd> {
    let fd = clone_tree(Path::new("/proc/self/exe"), false)?;
    mount_setattr(fd.as_fd(), mount_attr::RDONLY, 0, false)?;
    Ok(fd)
}

/// A write-sealed memfd holding a copy of the running executable.
fn sealed_copy_of_self() -> io::Result<OwnedFd> {
    let mut src = std::fs::File::open("/proc/self/exe")?;
    // SAFETY: the name is NUL-terminated; the flags are valid.
    let fd = check(unsafe {
        libc::c_long::from(libc::memfd_create(
            c"corten".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        ))
    })?;
    let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: memfd_create returned a new descriptor that we now own.
    let mut mem = unsafe { std::fs::File::from_raw_fd(fd) };
    std::io::copy(&mut src, &mut mem)?;
    // SAFETY: F_ADD_SEALS on our own memfd with valid seal bits.
    if unsafe { libc::fcntl(mem.as_raw_fd(), libc::F_ADD_SEALS, EXE_SEALS) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(mem.into())
}

/// `execveat(fd, "", args, env, AT_EMPTY_PATH)`; returns only on failure.
fn execveat_fd(fd: BorrowedFd<'_>, args: &[CString], env: &[CString]) -> io::Error {
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: argv and envp are NULL-terminated arrays of pointers to
    // NUL-terminated strings that outlive the call; the path is "" with
    // AT_EMPTY_PATH so the descriptor itself is executed.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// Whether `pid` runs the same executable file as this process (the same
/// file through a read-only bind, or corten's sealed memfd copy).
pub fn runs_corten(pid: i32) -> bool {
    let exe = format!("/proc/{pid}/exe");
    if std::fs::read_link(&exe).is_ok_and(|p| p.to_string_lossy().starts_with("/memfd:corten")) {
        return true;
    }
    match (std::fs::metadata(&exe), std::fs::metadata("/proc/self/exe")) {
        (Ok(a), Ok(b)) => {
            use std::os::unix::fs::MetadataExt;
            a.dev() == b.dev() && a.ino() == b.ino()
        }
        _ => false,
    }
}

/// `keyctl(KEYCTL_JOIN_SESSION_KEYRING, name)`: a new session keyring for
/// this process, so it does not share the caller's; then, as runc does, the
/// kernel's default permissions plus search for the owning user
/// (possessor: all; user: view, read, search, link).
pub fn join_session_keyring(name: &str) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    const KEYCTL_SETPERM: libc::c_long = 5;
    const PERM: libc::c_ulong = 0x3f1b_0000;
    let name = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: name is a NUL-terminated string alive for the call; the kernel
    // only reads it.
    let id = check(unsafe {
        libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr())
    })?;
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, id, PERM) }).map(drop)
}

/// A namespace's identity: device and inode of its `nsfs` file.
pub type NsId = (u64, u64);

fn ns_id(fd: BorrowedFd<'_>) -> io::Result<NsId> {
    let st = fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// The pid namespace of `pid`, or `None` if it is gone.
pub fn pid_ns_of(pid: i32) -> Option<NsId> {
    let f = std::fs::File::open(format!("/proc/{pid}/ns/pid")).ok()?;
    ns_id(f.as_fd()).ok()
}

/// Whether `pid` lives in pid namespace `ns` or in one nested below it
/// (followed up with `NS_GET_PARENT`, at most 33 levels: the kernel's
/// nesting limit is 32).
pub fn in_pid_ns_tree(pid: i32, ns: NsId) -> bool {
    let Ok(f) = std::fs::File::open(format!("/proc/{pid}/ns/pid")) else {
        return false;
    };
    let mut current = OwnedFd::from(f);
    for _ in 0..33 {
        match ns_id(current.as_fd()) {
            Ok(id) if id == ns => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
        // SAFETY: NS_GET_PARENT takes no argument and returns a new
        // descriptor (or -1); `current` is a live nsfs descriptor.
        let ret = unsafe { libc::ioctl(current.as_raw_fd(), libc::NS_GET_PARENT) };
        if ret < 0 {
            return false; // the initial namespace, or a parent we cannot see
        }
        // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
        current = unsafe { OwnedFd::from_raw_fd(ret) };
    }
    false
}

/// `kill(pid, sig)` for any signal number (nix's `Signal` lacks 0 and the
/// real-time ones).
pub fn kill(pid: i32, sig: i32) -> nix::Result<()> {
    // SAFETY: kill takes two integers and touches no memory.
    nix::errno::Errno::result(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// [`kill`] where a pid that is already gone is not an error.
pub fn signal(pid: i32, sig: i32) {
    let _ = kill(pid, sig);
}

/// `openat` returning an owned descriptor (nix 0.29's returns a raw one).
pub fn openat(
    dir: BorrowedFd<'_>,
    name: &Path,
    flags: nix::fcntl::OFlag,
    mode: nix::sys::stat::Mode,
) -> io::Result<OwnedFd> {
    let name = cstring(name)?;
    // SAFETY: name is NUL-terminated and alive for the call; the kernel
    // returns a new descriptor or -1.
    let ret = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags.bits(),
            libc::c_uint::from(mode.bits()),
        )
    };
    owned(libc::c_long::from(ret))
}

/// `fsopen("proc")`, `fsconfig(FSCONFIG_CMD_CREATE)`, `fsmount`: a procfs
/// mount (nosuid, nodev, noexec) that is attached nowhere.
pub fn detached_procfs() -> io::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    /// `MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC`.
    const ATTRS: libc::c_uint = 0x02 | 0x04 | 0x08;
    let name = c"proc";
    // SAFETY: name is a NUL-terminated string alive for the call.
    let fs = owned(unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: fsconfig with CMD_CREATE takes no key, value or aux.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })?;
    // SAFETY: fsmount takes a descriptor and two integers.
    owned(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, ATTRS) })
}

/// The descriptor standing for the current directory in `*at` calls.
pub fn cwd_fd() -> BorrowedFd<'static> {
    // SAFETY: AT_FDCWD is no descriptor: the kernel reads it as "the current
    // directory", and it can never be closed.
    unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

/// The descriptors a message received over a unix socket carried
/// (`SCM_RIGHTS`), owned: the kernel installed them for this process.
pub fn received_fds(fds: Vec<std::os::fd::RawFd>) -> Vec<OwnedFd> {
    fds.into_iter()
        // SAFETY: each is a new descriptor the kernel just installed for
        // the receiver (nix hands them out raw); nothing else owns them.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect()
}

/// `setdomainname(2)` (nix wraps only `sethostname`).
pub fn setdomainname(name: &str) -> io::Result<()> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: c is a NUL-terminated string alive for the call; the kernel
    // copies `name.len()` bytes of it.
    if unsafe { libc::setdomainname(c.as_ptr(), name.len()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Copies the window size of terminal `from` to terminal `to` (best effort:
/// `from` may be no terminal).
pub fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize, which `ws` is, alive for the call.
    if unsafe { libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } == 0 {
        let _ = set_winsize(to, ws.ws_row, ws.ws_col);
    }
}

/// `personality(2)` (nix's wrapper knows only some flag bits).
pub fn personality(persona: libc::c_ulong) -> io::Result<()> {
    // SAFETY: personality takes an integer and touches no memory.
    if unsafe { libc::personality(persona) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `set_mempolicy(2)` with the node mask `mask` (`None`: no nodes).
pub fn set_mempolicy(mode: libc::c_int, mask: Option<&[libc::c_ulong]>) -> io::Result<()> {
    let (ptr, maxnode) = match mask {
        Some(m) => (m.as_ptr(), m.len() * libc::c_ulong::BITS as usize + 1),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: ptr is null or points to `mask`, alive for the call and
    // holding `maxnode - 1` bits, as set_mempolicy(2) reads it.
    check(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) }).map(drop)
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, value)`: the calling process.
pub fn ioprio_set(value: u32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) }).map(drop)
}

/// `sched_attr`, version 0 layout (sched_setattr(2)).
#[repr(C)]
#[derive(Debug, Default)]
pub struct SchedAttr {
    /// Size of this structure.
    pub size: u32,
    /// `SCHED_*` policy.
    pub sched_policy: u32,
    /// `SCHED_FLAG_*`.
    pub sched_flags: u64,
    /// Nice value (normal policies).
    pub sched_nice: i32,
    /// Static priority (real-time policies).
    pub sched_priority: u32,
    /// SCHED_DEADLINE runtime, ns.
    pub sched_runtime: u64,
    /// SCHED_DEADLINE deadline, ns.
    pub sched_deadline: u64,
    /// SCHED_DEADLINE period, ns.
    pub sched_period: u64,
}

/// `sched_setattr(0, attr, 0)`: the calling thread; `attr.size` is set here.
pub fn sched_setattr(mut attr: SchedAttr) -> io::Result<()> {
    attr.size = u32::try_from(std::mem::size_of::<SchedAttr>()).unwrap_or(48);
    // SAFETY: attr is a valid sched_attr (version 0 layout) whose size field
    // matches; the kernel only reads it.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) })
        .map(drop)
}

/// Reaps our child `pid`, waiting at most `bound` for it to end: its
/// status, or `StillAlive` when the bound passed first.
pub fn reap_within(
    pid: i32,
    bound: std::time::Duration,
) -> nix::Result<nix::sys::wait::WaitStatus> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let deadline = std::time::Instant::now() + bound;
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(nix::Error::EINTR) => {}
            other => return other,
        }
    }
}

/// SIGKILLs our child `pid` and reaps it, waiting at most `bound`: a child
/// stuck in a frozen cgroup dies only once thawed, and then, its parent
/// gone, is reaped by whoever inherits it. Whether it was reaped.
pub fn kill_and_reap(pid: i32, bound: std::time::Duration) -> bool {
    signal(pid, libc::SIGKILL);
    !matches!(
        reap_within(pid, bound),
        Ok(nix::sys::wait::WaitStatus::StillAlive)
    )
}

/// A program, its arguments and environment as execve(2) takes them, built
/// before a fork (the child must not allocate).
#[derive(Debug)]
pub struct Execve {
    strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into `strings`' heap buffers, which move with
// the struct and are never changed; the struct is only read.
unsafe impl Send for Execve {}
// SAFETY: as for Send: read-only.
unsafe impl Sync for Execve {}

impl Execve {
    /// `path` with argv `args` and environment `env`; fails on a NUL byte.
    pub fn new(path: &str, args: &[&str], env: &[&str]) -> io::Result<Execve> {
        let c = |s: &str| {
            CString::new(s)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "contains a NUL byte"))
        };
        let mut strings = vec![c(path)?];
        for s in args.iter().chain(env) {
            strings.push(c(s)?);
        }
        let ptrs = |r: std::ops::Range<usize>| {
            let mut v: Vec<_> = strings[r].iter().map(|s| s.as_ptr()).collect();
            v.push(std::ptr::null());
            v
        };
        let argv = ptrs(1..1 + args.len());
        let envp = ptrs(1 + args.len()..strings.len());
        Ok(Execve {
            strings,
            argv,
            envp,
        })
    }
}

/// Makes `cmd`'s child die with this process (parent-death SIGKILL, and
/// `_exit(1)` if this process is already gone) and run `exec` with
/// execve(2) instead of std's execvp.
pub fn execve_dying_with_parent(cmd: &mut std::process::Command, exec: Execve) {
    let parent = nix::unistd::getpid().as_raw();
    // SAFETY: runs in the forked child before exec; calls only
    // async-signal-safe functions (prctl, getppid, _exit, execve) on
    // integers and on `exec`'s buffers, built before the fork and not
    // touched by anyone else.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, move || {
            // The whole `Execve` is moved in (Send), not its raw fields.
            let exec = &exec;
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            libc::execve(
                exec.strings[0].as_ptr(),
                exec.argv.as_ptr(),
                exec.envp.as_ptr(),
            );
            Err(io::Error::last_os_error())
        });
    }
}

/// Ends a forked child with `_exit`: none of the parent's atexit handlers
/// run and no copied stdio buffer is flushed.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: _exit takes an integer, touches no memory and never returns.
    unsafe { libc::_exit(code) }
}

/// Probes for `corten check`: each makes a call the kernel refuses before
/// doing anything (a zero size, a bad descriptor) and returns the error;
/// ENOSYS means the call is missing (or a seccomp profile forbids it).
pub mod probe {
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd};

    fn errno_of(ret: libc::c_long) -> Option<io::Error> {
        (ret < 0).then(io::Error::last_os_error)
    }

    /// `clone3(NULL, 0)`: EINVAL (size too small) where clone3 exists.
    pub fn clone3() -> Option<io::Error> {
        // SAFETY: a null pointer with size 0 is refused (EINVAL) before the
        // kernel reads anything or clones.
        errno_of(unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) })
    }

    /// `openat2(AT_FDCWD, "/", NULL, 0)`: EINVAL where openat2 exists.
    pub fn openat2() -> Option<io::Error> {
        // SAFETY: the path is a NUL-terminated literal; a null open_how of
        // size 0 is refused (EINVAL) before it is read.
        errno_of(unsafe {
            libc::syscall(
                libc::SYS_openat2,
                libc::AT_FDCWD,
                c"/".as_ptr(),
                std::ptr::null::<u8>(),
                0usize,
            )
        })
    }

    /// `close_range(~0, ~0, CLOSE_RANGE_CLOEXEC)`, as corten calls it: no
    /// descriptor is that high, 0 where the call and the flag (5.11)
    /// exist, EINVAL on 5.9 and 5.10 (no flag).
    pub fn close_range_cloexec() -> Option<io::Error> {
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        // SAFETY: no memory is passed; the range holds no open descriptor.
        errno_of(unsafe {
            libc::syscall(
                libc::SYS_close_range,
                u32::MAX,
                u32::MAX,
                CLOSE_RANGE_CLOEXEC,
            )
        })
    }

    /// `clone3(CLONE_INTO_CGROUP)` with `not_a_cgroup` (a descriptor of a
    /// directory that is not a cgroup): EBADF where the flag exists,
    /// EINVAL (unknown flag) or ENOSYS where it does not.
    pub fn clone_into_cgroup(not_a_cgroup: BorrowedFd<'_>) -> Option<io::Error> {
        let mut args = super::CloneArgs {
            flags: super::CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: u64::try_from(not_a_cgroup.as_raw_fd()).unwrap_or_default(),
            ..super::CloneArgs::default()
        };
        // SAFETY: a valid clone_args of the size passed. The descriptor is
        // not a cgroup, so the kernel refuses; should it clone anyway, the
        // child (on a copy of this stack, as fork) exits at once and is
        // reaped below.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &mut args as *mut super::CloneArgs,
                std::mem::size_of::<super::CloneArgs>(),
            )
        };
        match ret {
            // SAFETY: in a cloned child that must not run anything else.
            0 => unsafe { libc::_exit(0) },
            r if r > 0 => {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(r as i32), None);
                None
            }
            r => errno_of(r),
        }
    }

    /// `open_tree(-1, "", 0)`: ENOENT (an empty path without
    /// AT_EMPTY_PATH) where open_tree exists.
    pub fn open_tree() -> Option<io::Error> {
        // SAFETY: a NUL-terminated literal path and a bad descriptor: the
        // kernel refuses without creating anything.
        errno_of(unsafe { libc::syscall(libc::SYS_open_tree, -1, c"".as_ptr(), 0u32) })
    }

    /// `mount_setattr(-1, "", 0, NULL, 0)`: EINVAL (size 0) where it exists.
    pub fn mount_setattr() -> Option<io::Error> {
        // SAFETY: a null attribute of size 0 is refused before it is read.
        errno_of(unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                -1,
                c"".as_ptr(),
                0u32,
                std::ptr::null::<u8>(),
                0usize,
            )
        })
    }

    /// `pidfd_getfd(-1, 0, 0)`: EBADF where it exists (seccomp user
    /// notification's listener is taken from the init with it).
    pub fn pidfd_getfd() -> Option<io::Error> {
        // SAFETY: no memory is passed; a bad pidfd is refused.
        errno_of(unsafe { libc::syscall(libc::SYS_pidfd_getfd, -1, 0, 0u32) })
    }

    /// Whether the kernel supports the seccomp action `action`
    /// (`SECCOMP_GET_ACTION_AVAIL`).
    pub fn seccomp_action(action: u32) -> Option<io::Error> {
        const SECCOMP_GET_ACTION_AVAIL: libc::c_uint = 2;
        // SAFETY: the kernel reads one u32 from the pointer, which points to
        // a live local.
        errno_of(unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_GET_ACTION_AVAIL,
                0u32,
                &action as *const u32,
            )
        })
    }

    /// The kernel's release (`uname -r`).
    pub fn kernel_release() -> String {
        nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}
