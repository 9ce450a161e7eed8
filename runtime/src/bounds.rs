//! How long the runtime waits for anything it does not control.
//!
//! Every wait of a corten command ends: a wait for a process (the init or
//! an exec'd process reporting a step of its set-up), for another corten
//! command (the container's lock), or for a peer socket (the caller's
//! console socket, a seccomp agent) is bounded here. A hook waits for its
//! own `timeout` (none: as long as it runs, as runc waits; killing the
//! command kills the hook, see [`crate::hooks`]).
//!
//! Each bound can be changed by an environment variable, in seconds
//! (fractions allowed): for an operator on a slow host, and for the tests
//! that show each bound.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A bounded wait.
#[derive(Debug, Clone, Copy)]
pub enum Bound {
    /// Each step of a container's init or an exec'd process's set-up
    /// (mounts, then `created`; joining, then exec). `CORTEN_TIMEOUT_INIT`.
    Init,
    /// Another corten command holding the container's lock.
    /// `CORTEN_TIMEOUT_LOCK`.
    Lock,
    /// Connecting to and sending over a peer's socket (`--console-socket`,
    /// a seccomp agent's `listenerPath`). `CORTEN_TIMEOUT_SOCKET`.
    Socket,
}

impl Bound {
    fn var(self) -> &'static str {
        match self {
            Bound::Init => "CORTEN_TIMEOUT_INIT",
            Bound::Lock => "CORTEN_TIMEOUT_LOCK",
            Bound::Socket => "CORTEN_TIMEOUT_SOCKET",
        }
    }

    fn default_secs(self) -> u64 {
        match self {
            // Generous: an emulated (TCG) machine sets a container up in a
            // second or two, a real one in milliseconds.
            Bound::Init => 120,
            Bound::Lock => 60,
            Bound::Socket => 30,
        }
    }

    /// The bound: the variable's value when it is a positive number of
    /// seconds, else the default.
    pub fn get(self) -> Duration {
        std::env::var(self.var())
            .ok()
            .and_then(|v| parse(&v))
            .unwrap_or(Duration::from_secs(self.default_secs()))
    }

    /// The bound as the `timeval` of `SO_RCVTIMEO`/`SO_SNDTIMEO`.
    pub fn timeval(self) -> nix::sys::time::TimeVal {
        let d = self.get();
        nix::sys::time::TimeVal::new(
            d.as_secs().try_into().unwrap_or(i64::MAX as _),
            d.subsec_micros().into(),
        )
    }

    /// `<what>: no answer within <bound> (<variable>)`: the one-line error
    /// of a wait that reached its bound.
    /// (Without the `<what>: ` when `what` is empty.)
    pub fn exceeded(self, what: &str) -> String {
        let text = format!("no answer within {} ({})", show(self.get()), self.var());
        if what.is_empty() {
            text
        } else {
            format!("{what}: {text}")
        }
    }
}

/// Connects to the unix stream socket at `path` (a caller's console
/// socket, a seccomp agent), waiting for a listener whose backlog is full
/// at most [`Bound::Socket`]; every later send (in this process or one it
/// forks) is bounded the same way. Timeouts read as
/// `no answer within … (CORTEN_TIMEOUT_SOCKET)`.
pub fn connect(path: &Path) -> io::Result<UnixStream> {
    use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::SendTimeout, &Bound::Socket.timeval())?;
    let addr = UnixAddr::new(path)?;
    loop {
        match socket::connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
            Ok(()) => return Ok(UnixStream::from(fd)),
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(socket_error(e.into())),
        }
    }
}

/// A send or connect that reached [`Bound::Socket`] (`EAGAIN` under
/// `SO_SNDTIMEO`) as a timeout that says so; other errors unchanged.
pub fn socket_error(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, Bound::Socket.exceeded(""))
    } else {
        e
    }
}

fn parse(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs > 0.0 && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

/// `120s`, `1.5s`: a duration as the bound's messages print it.
pub fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_positive_seconds_only() {
        assert_eq!(parse("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse(" 0.5 "), Some(Duration::from_millis(500)));
        for bad in ["0", "-1", "x", "", "inf", "NaN", "1e30"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn shows_whole_and_fractional_seconds() {
        assert_eq!(show(Duration::from_secs(120)), "120s");
        assert_eq!(show(Duration::from_millis(1500)), "1.5s");
    }
}
