//! The channel between `corten create` and the container's init: a
//! `SOCK_SEQPACKET` socketpair carrying one-byte-tagged messages.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

/// A message on the sync channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// init → parent: the init's pid (when an intermediate process forked
    /// it); parent → init: hooks done, the init's pid on the host (for the
    /// state of the container's own hooks).
    Pid(i32),
    /// parent → init: ids are mapped and the cgroup joined; go on.
    Go,
    /// init → parent: set up, waiting for `start`.
    Created,
    /// parent → init: the state is saved; drop the parent-death signal.
    Detach,
    /// init → parent: set-up failed.
    Error(String),
    /// init → parent: mounts done; run prestart/createRuntime hooks.
    Hooks,
    /// process → parent: the number of the process's seccomp notify
    /// listener, which the parent takes with `pidfd_getfd` (see
    /// [`Channel::report_listener`]).
    SeccompFd(i32),
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Pid(p) => {
                let mut v = vec![b'P'];
                v.extend_from_slice(&p.to_le_bytes());
                v
            }
            Msg::Go => vec![b'G'],
            Msg::Created => vec![b'C'],
            Msg::Detach => vec![b'D'],
            Msg::Error(e) => {
                let mut v = vec![b'E'];
                v.extend_from_slice(e.as_bytes());
                v
            }
            Msg::Hooks => vec![b'H'],
            Msg::SeccompFd(fd) => {
                let mut v = vec![b'F'];
                v.extend_from_slice(&fd.to_le_bytes());
                v
            }
        }
    }

    fn decode(b: &[u8]) -> io::Result<Msg> {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed sync message");
        Ok(match b.first().ok_or_else(bad)? {
            b'P' => Msg::Pid(i32::from_le_bytes(
                b.get(1..5).ok_or_else(bad)?.try_into().map_err(|_| bad())?,
            )),
            b'G' => Msg::Go,
            b'C' => Msg::Created,
            b'D' => Msg::Detach,
            b'E' => Msg::Error(String::from_utf8_lossy(&b[1..]).into_owned()),
            b'H' => Msg::Hooks,
            b'F' => Msg::SeccompFd(i32::from_le_bytes(
                b.get(1..5).ok_or_else(bad)?.try_into().map_err(|_| bad())?,
            )),
            _ => return Err(bad()),
        })
    }
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel(OwnedFd);

impl Channel {
    /// A connected pair (parent end, child end), close-on-exec.
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel(a), Channel(b)))
    }

    /// Sends a message.
    pub fn send(&self, m: &Msg) -> io::Result<()> {
        send(self.0.as_raw_fd(), &m.encode(), MsgFlags::MSG_NOSIGNAL)?;
        Ok(())
    }

    /// Called by a process right after it installed a seccomp filter with
    /// a notify listener: tells the parent the listener's number and waits
    /// until the parent has taken it (`pidfd_getfd`) and handed it to the
    /// seccomp agent. Only `write` and `read` run in between, with no
    /// allocation: every other system call may already stop for the agent
    /// (`SCMP_ACT_NOTIFY`), and `write` is the one a profile may not notify
    /// on. (runc passes the number the same way.)
    pub fn report_listener(&self, fd: std::os::fd::RawFd) -> io::Result<()> {
        let mut msg = [b'F', 0, 0, 0, 0];
        msg[1..].copy_from_slice(&fd.to_le_bytes());
        let sock = self.0.as_fd();
        nix::unistd::write(sock, &msg)?;
        let mut reply = [0u8; 8];
        loop {
            match nix::unistd::read(self.0.as_raw_fd(), &mut reply) {
                Ok(n) if n > 0 && reply[0] == b'G' => return Ok(()),
                Ok(_) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Err(nix::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Bounds every later [`Channel::recv`] on this end by `bound`: one
    /// that waits longer fails with [`io::ErrorKind::TimedOut`]. The parent
    /// bounds its end, so that a process stuck in its set-up (a frozen
    /// cgroup, a hung filesystem) cannot hang the command; the other end
    /// waits for its parent, whose death kills it.
    pub fn bound_recv(&self, bound: crate::bounds::Bound) -> io::Result<()> {
        nix::sys::socket::setsockopt(
            &self.0,
            nix::sys::socket::sockopt::ReceiveTimeout,
            &bound.timeval(),
        )?;
        Ok(())
    }

    /// Receives a message; `None` when the peer closed its end.
    pub fn recv(&self) -> io::Result<Option<Msg>> {
        // Messages are small (an error line is the longest); SOCK_SEQPACKET
        // would truncate a longer one, never split it.
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => return Msg::decode(&buf[..n]).map(Some),
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::EAGAIN) => return Err(io::ErrorKind::TimedOut.into()),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let (a, b) = Channel::pair().unwrap();
        for m in [
            Msg::Pid(4242),
            Msg::Go,
            Msg::Created,
            Msg::Detach,
            Msg::Error("boom".into()),
            Msg::Hooks,
            Msg::SeccompFd(7),
        ] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap(), Some(m));
        }
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }

    #[test]
    fn a_bounded_recv_times_out() {
        let (a, _b) = Channel::pair().unwrap();
        // The default bound is seconds: set the socket option directly.
        let tv = nix::sys::time::TimeVal::new(0, 50_000);
        nix::sys::socket::setsockopt(&a.0, nix::sys::socket::sockopt::ReceiveTimeout, &tv).unwrap();
        let t = std::time::Instant::now();
        let e = a.recv().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(
            t.elapsed() >= std::time::Duration::from_millis(40),
            "{:?}",
            t.elapsed()
        );
    }
}
