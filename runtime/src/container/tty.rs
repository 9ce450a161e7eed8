//! The terminal of a foreground `run` or `exec` with `terminal: true` and no
//! `--console-socket`: as runc does, corten receives the pty master itself
//! and copies between it and its own stdin/stdout (raw mode when stdin is a
//! terminal, window size followed on SIGWINCH) until the process exits.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// A console socket of our own, for the pty master of our own process.
#[derive(Debug)]
pub struct OwnConsole {
    path: PathBuf,
    listener: UnixListener,
}

impl OwnConsole {
    /// Listens on a fresh socket under `dir`.
    pub fn listen(dir: &Path) -> io::Result<OwnConsole> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!(".console-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        Ok(OwnConsole { path, listener })
    }

    /// The path to pass as the console socket.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Receives the pty master (the connection is already queued: the
    /// runtime connected and sent it before returning).
    pub fn receive(self) -> io::Result<OwnedFd> {
        self.listener.set_nonblocking(true)?;
        let (conn, _) = self.listener.accept()?;
        let _ = std::fs::remove_file(&self.path);
        recv_fd(&conn)
    }
}

impl Drop for OwnConsole {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn recv_fd(conn: &UnixStream) -> io::Result<OwnedFd> {
    conn.set_nonblocking(false)?;
    let mut buf = [0u8; 256];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = crate::sys::received_fds(fds).into_iter().next() {
                return Ok(fd);
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "no pty master received",
    ))
}

/// Restores the terminal mode on drop.
struct RawMode(Option<Termios>);

impl RawMode {
    fn enter() -> RawMode {
        let stdin = io::stdin();
        match tcgetattr(stdin.as_fd()) {
            Ok(orig) => {
                let mut raw = orig.clone();
                cfmakeraw(&mut raw);
                let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
                RawMode(Some(orig))
            }
            Err(_) => RawMode(None), // not a terminal
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

fn copy_winsize(master: BorrowedFd<'_>) {
    crate::sys::copy_winsize(io::stdin().as_fd(), master);
}

fn status_code(s: WaitStatus) -> Option<u8> {
    match s {
        WaitStatus::Exited(_, c) => Some(u8::try_from(c & 0xff).unwrap_or(255)),
        WaitStatus::Signaled(_, sig, _) => Some(u8::try_from(128 + sig as i32).unwrap_or(255)),
        _ => None,
    }
}

/// Copies between our stdio and `master` until `pid` (our child) exits;
/// forwards `forwarded` signals to it; returns its exit code.
pub fn proxy(master: OwnedFd, pid: i32, forwarded: &[Signal]) -> io::Result<u8> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in forwarded {
        set.add(*s);
    }
    set.thread_block()?;
    let sigfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)?;
    let _raw = RawMode::enter();
    copy_winsize(master.as_fd());
    let mut master_file = std::fs::File::from(master);
    let mut stdin_open = true;
    let mut master_open = true;
    let mut buf = [0u8; 8192];
    let mut code = None;
    loop {
        if let Ok(s) = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            code = code.or(status_code(s));
        }
        if code.is_some() && !master_open {
            break;
        }
        let stdin = io::stdin();
        let mut fds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
        if master_open {
            fds.push(PollFd::new(master_file.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        // Once the process is gone, only drain what the pty still holds.
        let timeout = if code.is_some() {
            PollTimeout::from(50u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) => break,
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (sig_ready, master_ready, stdin_ready) = (
            ready(0),
            master_open && ready(1),
            stdin_open && ready(if master_open { 2 } else { 1 }),
        );
        drop(fds);
        if sig_ready {
            if let Ok(Some(info)) = sigfd.read_signal() {
                let sig = i32::try_from(info.ssi_signo).unwrap_or(0);
                if sig == libc::SIGWINCH {
                    copy_winsize(master_file.as_fd());
                } else if sig != libc::SIGCHLD {
                    crate::sys::signal(pid, sig);
                }
            }
        }
        if master_ready {
            match master_file.read(&mut buf) {
                Ok(0) | Err(_) => master_open = false, // EIO: the last peer closed
                Ok(n) => {
                    let mut out = io::stdout().lock();
                    out.write_all(&buf[..n])?;
                    out.flush()?;
                }
            }
        }
        if stdin_ready {
            match io::stdin().lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => master_file.write_all(&buf[..n])?,
            }
        }
    }
    if code.is_none() {
        code = waitpid(Pid::from_raw(pid), None).ok().and_then(status_code);
    }
    Ok(code.unwrap_or(255))
}
