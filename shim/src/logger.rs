//! `binary:///path/to/logger?key=value` stdio URIs: containerd's logging
//! binary protocol. The logging program gets the process's stdout and stderr
//! pipes as descriptors 3 and 4 and a "ready" pipe as 5, which it closes (or
//! writes to) once it is ready; `CONTAINER_ID` and `CONTAINER_NAMESPACE`
//! are in its environment; the URI's query becomes its arguments. It reads
//! the pipes itself, so the shim copies nothing.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::pipe2;

use crate::reaper::{Exit, Reaper};

/// How long a logging program has to signal that it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The program and arguments of a `binary://` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoggerSpec {
    pub(crate) path: PathBuf,
    pub(crate) args: Vec<String>,
}

impl LoggerSpec {
    /// Parses what follows `binary://`: `/path?key=value&flag`.
    pub(crate) fn parse(rest: &str) -> LoggerSpec {
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut args = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((k, v)) => {
                    args.push(unescape(k));
                    args.push(unescape(v));
                }
                None => args.push(unescape(pair)),
            }
        }
        LoggerSpec {
            path: PathBuf::from(unescape(path)),
            args,
        }
    }
}

/// Percent-decoding of a URI component (`+` is left alone, as in a path).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Who the output belongs to, for the logging program's environment.
#[derive(Debug, Default, Clone)]
pub(crate) struct LogContext<'a> {
    pub(crate) container_id: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) reaper: Option<&'a Arc<Reaper>>,
}

/// A running logging program.
#[derive(Debug)]
pub(crate) struct Logger {
    pid: i32,
    exited: Receiver<Exit>,
    reaper: Arc<Reaper>,
}

impl Logger {
    /// Starts `spec` on the read ends of the process's pipes and waits until
    /// it is ready.
    pub(crate) fn start(
        spec: &LoggerSpec,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
        ctx: &LogContext<'_>,
    ) -> io::Result<Logger> {
        let reaper = ctx
            .reaper
            .ok_or_else(|| io::Error::other("no reaper to run the logging binary"))?;
        let null = File::open("/dev/null")?;
        let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC)?;
        let mut command = Command::new(&spec.path);
        command
            .args(&spec.args)
            .env("CONTAINER_ID", ctx.container_id)
            .env("CONTAINER_NAMESPACE", ctx.namespace)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let fds = [
            stdout.as_ref().map_or(null.as_fd(), AsFd::as_fd),
            stderr.as_ref().map_or(null.as_fd(), AsFd::as_fd),
            ready_w.as_fd(),
        ];
        let keep = crate::sys::pass_fds(&mut command, &fds)?;
        let (child, exited) = reaper
            .spawn(&mut command)
            .map_err(|e| io::Error::new(e.kind(), format!("start {}: {e}", spec.path.display())))?;
        drop(keep);
        drop((stdout, stderr, ready_w));
        let pid = i32::try_from(child.id()).unwrap_or(0);
        let logger = Logger {
            pid,
            exited,
            reaper: Arc::clone(reaper),
        };
        // Ready: the program wrote to or closed descriptor 5.
        let mut fd = [PollFd::new(ready_r.as_fd(), PollFlags::POLLIN)];
        let ms = u16::try_from(READY_TIMEOUT.as_millis()).unwrap_or(u16::MAX);
        let n = poll(&mut fd, PollTimeout::from(ms))?;
        if n == 0 {
            let _ = logger.reaper.signal_command(pid, Signal::SIGKILL);
            return Err(io::Error::other(format!(
                "{} did not get ready within {READY_TIMEOUT:?}",
                spec.path.display()
            )));
        }
        let mut byte = [0u8; 1];
        let _ = File::from(ready_r).read(&mut byte);
        Ok(logger)
    }

    /// Waits up to `timeout` for the program to exit (it does once the
    /// process's pipes are closed), then kills it.
    pub(crate) fn finish(&mut self, timeout: Duration) {
        if self.exited.recv_timeout(timeout).is_ok() {
            return;
        }
        let _ = self.reaper.signal_command(self.pid, Signal::SIGKILL);
        let _ = self.exited.recv_timeout(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_uri_query_becomes_arguments() {
        let spec = LoggerSpec::parse("/usr/bin/my%20logger?driver=json&tag=a%2Fb&flag");
        assert_eq!(spec.path, PathBuf::from("/usr/bin/my logger"));
        assert_eq!(spec.args, ["driver", "json", "tag", "a/b", "flag"]);
        let bare = LoggerSpec::parse("/bin/log");
        assert!(bare.args.is_empty());
    }
}
