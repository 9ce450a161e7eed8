//! The channel between `corten create` and the container's init: a
//! `SOCK_SEQPACKET` socketpair carrying one-byte-tagged messages.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

/// A message on the sync channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// init → parent: the init's pid (when an intermediate process forked it).
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
    /// parent → init: hooks done; the state JSON for the container's hooks.
    State(String),
    /// process → parent: the seccomp notify listener follows (the fd is
    /// carried by the same message; see [`Channel::send_fd`]).
    SeccompFd,
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
            Msg::SeccompFd => vec![b'F'],
            Msg::State(s) => {
                let mut v = vec![b'S'];
                v.extend_from_slice(s.as_bytes());
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
            b'F' => Msg::SeccompFd,
            b'S' => Msg::State(String::from_utf8_lossy(&b[1..]).into_owned()),
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

    /// Sends `m` with `fd` attached (`SCM_RIGHTS`).
    pub fn send_fd(&self, m: &Msg, fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
        use nix::sys::socket::{sendmsg, ControlMessage};
        let data = m.encode();
        let iov = [std::io::IoSlice::new(&data)];
        let fds = [fd.as_raw_fd()];
        sendmsg::<()>(
            self.0.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        Ok(())
    }

    /// Receives a message and the descriptor attached to it, if any.
    pub fn recv_fd(&self) -> io::Result<(Option<Msg>, Option<OwnedFd>)> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned};
        use std::os::fd::FromRawFd;
        let mut buf = vec![0u8; 256 * 1024];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        loop {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.0.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(r) => {
                    let mut fd = None;
                    for c in r.cmsgs()? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for raw in fds {
                                // SAFETY: the kernel just installed this
                                // descriptor for us; nothing else owns it.
                                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    let n = r.bytes;
                    if n == 0 {
                        return Ok((None, fd));
                    }
                    return Ok((Some(Msg::decode(&buf[..n])?), fd));
                }
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Receives a message; `None` when the peer closed its end.
    pub fn recv(&self) -> io::Result<Option<Msg>> {
        // Room for a state JSON with large annotations (SOCK_SEQPACKET
        // would silently truncate a longer message).
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => return Msg::decode(&buf[..n]).map(Some),
                Err(nix::Error::EINTR) => continue,
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
            Msg::State("{}".into()),
        ] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap(), Some(m));
        }
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }
}
