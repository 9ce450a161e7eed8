//! Terminals: the pty of a `terminal: true` container, its master sent to the
//! caller's `--console-socket`, its peer as the container's stdio and
//! `/dev/console`.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::rootfs::{resolve, Rootfs};
use crate::spec::ConsoleSize;
use crate::sys::{self, fd_path};

/// Errors from console set-up.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A step failed.
    #[error("console: {op}: {source}")]
    Step {
        /// The step.
        op: &'static str,
        /// Cause.
        source: io::Error,
    },
    /// The caller's console socket cannot be reached.
    #[error("console: connect to console socket {path}: {source}")]
    Connect {
        /// The socket's path.
        path: std::path::PathBuf,
        /// Cause.
        source: io::Error,
    },
}

fn step(op: &'static str) -> impl FnOnce(io::Error) -> ConsoleError {
    move |source| ConsoleError::Step { op, source }
}

/// Connects to the caller's console socket.
pub fn connect(path: &Path) -> Result<UnixStream, ConsoleError> {
    crate::bounds::connect(path).map_err(|source| ConsoleError::Connect {
        path: path.to_owned(),
        source,
    })
}

/// Opens a pty in the container's devpts, binds its peer over `/dev/console`
/// (the peer comes from `TIOCGPTPEER`, never from a path lookup), sends the
/// master over `socket` and returns the peer.
pub fn setup(
    rfs: &Rootfs<'_>,
    socket: &UnixStream,
    size: Option<ConsoleSize>,
) -> Result<OwnedFd, ConsoleError> {
    let ptmx = resolve::open_in_root(rfs.fd(), Path::new("/dev/pts/ptmx"), 0)
        .map_err(step("find /dev/pts/ptmx"))?;
    let (master, peer) = pty_pair(Path::new(&fd_path(&ptmx)), size)?;
    let console = resolve::ensure(rfs.fd(), Path::new("/dev/console"), true)
        .map_err(step("create /dev/console"))?;
    mount(
        Some(fd_path(&peer).as_str()),
        fd_path(&console).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| step("bind /dev/console")(e.into()))?;
    send_fd(socket, master.as_fd(), "/dev/ptmx")?;
    Ok(peer)
}

/// Opens a new pty through `ptmx` (a path to the devpts instance's ptmx):
/// the master, and the peer obtained with `TIOCGPTPEER` (never by path), with
/// `size` applied.
fn pty_pair(ptmx: &Path, size: Option<ConsoleSize>) -> Result<(OwnedFd, OwnedFd), ConsoleError> {
    let master: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(ptmx)
        .map_err(step("open /dev/pts/ptmx"))?
        .into();
    sys::unlockpt(master.as_fd()).map_err(step("unlock pty"))?;
    let peer = sys::pty_peer(master.as_fd()).map_err(step("open pty peer"))?;
    if let Some(s) = size {
        sys::set_winsize(peer.as_fd(), s.height, s.width).map_err(step("set window size"))?;
    }
    Ok((master, peer))
}

/// For `exec --tty`: a new pty from the container's devpts (the caller is
/// inside the container's mount namespace), size applied, master sent over
/// `socket`; returns the peer (opened with `TIOCGPTPEER`).
pub fn open_in_container(
    socket: &UnixStream,
    size: Option<ConsoleSize>,
) -> Result<OwnedFd, ConsoleError> {
    let (master, peer) = pty_pair(Path::new("/dev/pts/ptmx"), size)?;
    send_fd(socket, master.as_fd(), "/dev/ptmx")?;
    Ok(peer)
}

/// Sends `fd` with a name as payload (runc sends the pty's name).
pub fn send_fd(socket: &UnixStream, fd: BorrowedFd<'_>, name: &str) -> Result<(), ConsoleError> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|e| step("send pty master")(crate::bounds::socket_error(e.into())))?;
    Ok(())
}

/// Makes the pty peer the process's stdio and controlling terminal.
pub fn attach(peer: OwnedFd) -> Result<(), ConsoleError> {
    for target in 0..=2 {
        nix::unistd::dup2(peer.as_raw_fd(), target)
            .map_err(|e| step("dup pty to stdio")(e.into()))?;
    }
    sys::set_controlling_tty(peer.as_fd()).map_err(step("set controlling terminal"))?;
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;
