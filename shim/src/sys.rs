//! The few system interfaces the shim needs that std does not wrap: the
//! terminal size ioctl, receiving the pty master on the console socket, and
//! the subreaper flag. All of the shim's `unsafe` is here.

use std::io;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// One malloc arena for the whole shim: glibc otherwise gives each thread
/// that allocates its own arena, which costs resident memory in a process
/// whose threads mostly sleep. Call it before any thread exists.
pub(crate) fn single_malloc_arena() {
    // SAFETY: mallopt only changes allocator tunables and takes no pointers;
    // it runs before any other thread exists, so no allocation races it.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}

/// `TIOCSWINSZ`: sets the size of the terminal behind `fd`.
pub(crate) fn set_window_size(fd: BorrowedFd<'_>, width: u32, height: u32) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: u16::try_from(height).unwrap_or(u16::MAX),
        ws_col: u16::try_from(width).unwrap_or(u16::MAX),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer, which
    // points to a live, initialised winsize for the duration of the call; the
    // kernel keeps no reference to it. `fd` is a valid open descriptor.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `command`'s child die (SIGKILL) when the calling thread ends, as
/// containerd's runc shim starts runc (go-runc's `Pdeathsig`): a shim
/// killed mid-`create` must not leave a `corten create` running on, racing
/// containerd's clean-up (`delete --force` before the container is
/// recorded, the container made after it).
pub(crate) fn die_with_parent(command: &mut Command) {
    let parent = nix::unistd::getpid().as_raw();
    // SAFETY: the closure runs in the child between fork and exec and calls
    // only async-signal-safe functions (prctl, getppid) on integers; it
    // allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The shim died between fork and prctl: no signal will come.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Makes `command`'s child get `fds` as descriptors 3, 4, 5, … (as the
/// logging binaries of containerd's `binary://` URIs expect). The returned
/// descriptors must be kept open until the command is spawned.
pub(crate) fn pass_fds(command: &mut Command, fds: &[BorrowedFd<'_>]) -> io::Result<Vec<OwnedFd>> {
    // Copies numbered above any target, so no dup2 overwrites a source.
    let high = fds
        .iter()
        .map(|fd| nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(100)))
        .map(|r| {
            r.map_err(io::Error::from)
                // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that
                // nothing else owns.
                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        })
        .collect::<io::Result<Vec<OwnedFd>>>()?;
    let raw: Vec<RawFd> = high.iter().map(AsRawFd::as_raw_fd).collect();
    // SAFETY: the closure runs in the child between fork and exec; it only
    // calls dup2 (async-signal-safe) on descriptors inherited from `high`,
    // which the parent keeps open until spawn returns, and it allocates
    // nothing (the Vec was built before the fork). dup2 clears close-on-exec
    // on the targets, so exactly these reach the program.
    unsafe {
        command.pre_exec(move || {
            for (target, fd) in (3..).zip(raw.iter()) {
                if libc::dup2(*fd, target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(high)
}

/// A listening unix socket for `--console-socket`: the runtime connects and
/// sends the pty master with `SCM_RIGHTS`. It lives in a fresh directory
/// only root can enter (`mkdtemp`, mode 0700, under the temporary
/// directory: bundle paths can exceed `sun_path`), so nobody else can
/// connect first; both are removed on drop.
#[derive(Debug)]
pub(crate) struct ConsoleSocket {
    dir: PathBuf,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub(crate) fn new() -> io::Result<ConsoleSocket> {
        let dir = nix::unistd::mkdtemp(&std::env::temp_dir().join("corten-pty-XXXXXX"))?;
        let path = dir.join("pty.sock");
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(e);
            }
        };
        listener.set_nonblocking(true)?;
        Ok(ConsoleSocket {
            dir,
            path,
            listener,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the runtime's connection and receives the pty master. The
    /// runtime has already sent it when `create`/`exec` returns, so the wait
    /// is short.
    pub(crate) fn receive(&self, timeout: Duration) -> io::Result<OwnedFd> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(e),
            }
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(timeout))?;
        let mut data = [0u8; 1024];
        let mut iov = [IoSliceMut::new(&mut data)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
        let msg = recvmsg::<()>(
            stream.as_fd().as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let mut received = Vec::new();
        for cmsg in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for fd in fds {
                    // SAFETY: the kernel installed `fd` in this process for
                    // this message (SCM_RIGHTS); nothing else owns it.
                    received.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        if received.is_empty() {
            return Err(io::Error::other(
                "the console socket message carried no descriptor",
            ));
        }
        Ok(received.swap_remove(0))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}
