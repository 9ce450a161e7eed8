//! The receiving end of `--console-socket`: the runtime connects to a Unix
//! socket and sends the pty master with `SCM_RIGHTS`.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A listening console socket. A background thread accepts one connection
/// and receives one file descriptor from it.
#[derive(Debug)]
pub struct ConsoleSocket {
    path: PathBuf,
    received: mpsc::Receiver<io::Result<OwnedFd>>,
}

impl ConsoleSocket {
    /// Listen on `path` (which must not exist yet).
    pub fn bind(path: &Path) -> ConsoleSocket {
        let listener =
            UnixListener::bind(path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let (tx, received) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(accept_and_receive(&listener, Duration::from_secs(30)));
        });
        ConsoleSocket {
            path: path.to_owned(),
            received,
        }
    }

    /// The socket's path, for `--console-socket`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pty master the runtime sent; fails the test after `timeout`.
    pub fn recv(&self, timeout: Duration) -> OwnedFd {
        let timeout = crate::scaled(timeout);
        match self.received.recv_timeout(timeout) {
            Ok(Ok(fd)) => fd,
            Ok(Err(e)) => panic!("console socket {}: {e}", self.path.display()),
            Err(_) => panic!(
                "no console fd received on {} within {timeout:?}",
                self.path.display()
            ),
        }
    }
}

fn accept_and_receive(listener: &UnixListener, timeout: Duration) -> io::Result<OwnedFd> {
    let deadline = Instant::now() + crate::scaled(timeout);
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(e),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(timeout))?;
    // SAFETY: the stream stays open for the duration of the borrow.
    recv_fd(unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) })
}

/// Receive one message carrying (at least) one descriptor with `SCM_RIGHTS`.
fn recv_fd(socket: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for a handful of descriptors, 8-byte aligned as cmsghdr requires.
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain old data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 16]>();
    // SAFETY: msg points at iov and control, both live and writable for the
    // whole call; the kernel writes at most iov_len / msg_controllen bytes.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: msg was filled in by recvmsg; CMSG_FIRSTHDR/CMSG_NXTHDR only
    // walk within msg_control/msg_controllen.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: cmsg is non-null and points inside `control` (see above).
        let header = unsafe { &*cmsg };
        if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN(0) is a pure computation.
            let payload = header.cmsg_len - unsafe { libc::CMSG_LEN(0) } as usize;
            // SAFETY: an SCM_RIGHTS payload is an array of ints of that length
            // inside `control`; read_unaligned copes with any alignment.
            let data_ptr = unsafe { libc::CMSG_DATA(cmsg) }.cast::<libc::c_int>();
            for i in 0..payload / size_of::<libc::c_int>() {
                // SAFETY: i is within the payload computed above.
                let fd = unsafe { data_ptr.add(i).read_unaligned() };
                // SAFETY: the kernel installed this descriptor for us; we own it.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    if fds.is_empty() {
        return Err(io::Error::other(
            "console socket message carried no descriptor",
        ));
    }
    Ok(fds.swap_remove(0))
}

/// Read a pty master until the container side is closed (EIO) or `timeout`
/// passes, and return what was read (with `\r\n` turned into `\n`).
pub fn read_pty(master: &OwnedFd, timeout: Duration) -> String {
    let deadline = Instant::now() + crate::scaled(timeout);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(left.as_millis())
            .unwrap_or(libc::c_int::MAX)
            .max(1);
        // SAFETY: pfd is a single valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ready < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if ready == 0 {
            continue;
        }
        // SAFETY: buf is writable for buf.len() bytes; the fd is open (borrowed).
        let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match usize::try_from(n) {
            Ok(0) | Err(_) => break, // EIO: every slave descriptor is closed
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}
