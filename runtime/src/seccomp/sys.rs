//! The one system call of this module that neither nix nor libc wraps:
//! `seccomp(SECCOMP_SET_MODE_FILTER)`.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// What a successful `seccomp(SECCOMP_SET_MODE_FILTER)` returned.
#[derive(Debug)]
pub(super) enum Installed {
    /// The filter is in place.
    Done,
    /// The filter is in place; the notify listener (`NEW_LISTENER`).
    Listener(OwnedFd),
    /// With `TSYNC` (and no `TSYNC_ESRCH`): this thread could not take the
    /// filter, so nothing was installed.
    TsyncFailed(libc::c_long),
}

/// Loads `program` as a seccomp filter of the calling thread with the
/// `SECCOMP_FILTER_FLAG_*` bits `flags`. Allocates nothing.
pub(super) fn set_filter(
    program: &[libc::sock_filter],
    flags: libc::c_ulong,
) -> io::Result<Installed> {
    let len =
        u16::try_from(program.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` describes `len` initialised instructions borrowed for
    // the whole call; the kernel only reads them (the `*mut` is the C
    // declaration's) and copies the program before returning, keeping no
    // pointer into it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        let fd = RawFd::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        // SAFETY: with NEW_LISTENER the kernel returns a descriptor it has
        // just created for this call; nothing else owns it.
        return Ok(Installed::Listener(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    if ret > 0 {
        return Ok(Installed::TsyncFailed(ret));
    }
    Ok(Installed::Done)
}
