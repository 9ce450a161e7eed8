//! OCI hooks: running one hook with the container state on its stdin, its
//! `args`, `env` and `timeout`.
//!
//! Where each kind runs (runtime-spec config.md, "POSIX-platform Hooks"):
//!
//! | hook | run by | namespace | on failure |
//! |---|---|---|---|
//! | `prestart`, `createRuntime` | `create` (parent), after the namespaces exist, before pivot_root | runtime | create fails, everything undone |
//! | `createContainer` | the init, after the mounts, before pivot_root | container | create fails |
//! | `startContainer` | the init, after `start`, before the user process | container | the container fails to start |
//! | `poststart` | `start`, after the process started | runtime | warning, the rest goes on |
//! | `poststop` | `delete`, after the container is gone | runtime | warning, the rest goes on |

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags};

use crate::spec::Hook;

/// A hook that failed, in runc's words (`error running hook #0: …`).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// Could not be started.
    #[error("error running hook #{index}: fork/exec {path}: {source}")]
    Spawn {
        /// Position in its list.
        index: usize,
        /// Executable.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Ran and failed: Go's `exit status 3` / `signal: killed`, and the
    /// output as it was written (runc keeps the newlines).
    #[error("error running hook #{index}: error running hook: {status}, stdout: {stdout}, stderr: {stderr}")]
    Failed {
        /// Position in its list.
        index: usize,
        /// Exit status text.
        status: String,
        /// What it wrote to stdout.
        stdout: String,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// Did not finish in time; it was killed.
    #[error("error running hook #{index}: hook ran past specified timeout of {secs:.1}s")]
    Timeout {
        /// Position in its list.
        index: usize,
        /// The timeout.
        secs: f64,
    },
}

/// The hook's pipes while it runs: the state still to write, the output
/// read so far.
struct Io<'a> {
    input: &'a [u8],
    stdin: Option<std::process::ChildStdin>,
    stdout: Option<std::process::ChildStdout>,
    stderr: Option<std::process::ChildStderr>,
    out: Vec<u8>,
    err: Vec<u8>,
}

impl Io<'_> {
    /// Moves data for at most `wait`: writes stdin while the hook takes it,
    /// reads stdout and stderr as they come, so a hook never blocks on a
    /// full pipe. False once every pipe is closed.
    fn pump(&mut self, wait: Duration) -> bool {
        let mut fds = Vec::with_capacity(3);
        if let Some(i) = &self.stdin {
            fds.push(PollFd::new(i.as_fd(), PollFlags::POLLOUT));
        }
        if let Some(o) = &self.stdout {
            fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
        }
        if let Some(e) = &self.stderr {
            fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
        }
        if fds.is_empty() {
            return false;
        }
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        if poll(&mut fds, ms).unwrap_or(0) == 0 {
            return true;
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut ready = ready.into_iter();
        if self.stdin.is_some() && ready.next() == Some(true) {
            // A hook that does not read its stdin closes the pipe: not an error.
            let n = self.stdin.as_mut().map_or(Ok(0), |i| i.write(self.input));
            match n {
                Ok(n) if n < self.input.len() => self.input = &self.input[n..],
                _ => self.stdin = None,
            }
        }
        let out_ready = self.stdout.is_some() && ready.next() == Some(true);
        let err_ready = self.stderr.is_some() && ready.next() == Some(true);
        if out_ready {
            read_some(&mut self.stdout, &mut self.out);
        }
        if err_ready {
            read_some(&mut self.stderr, &mut self.err);
        }
        true
    }
}

/// Reads what `pipe` has into `buf`; closes it at EOF or on an error.
fn read_some<R: Read>(pipe: &mut Option<R>, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 16384];
    match pipe.as_mut().map(|p| p.read(&mut chunk)) {
        Some(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
        Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        _ => *pipe = None,
    }
}

fn nonblocking(fd: std::os::fd::BorrowedFd<'_>) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(flags) = fcntl(std::os::fd::AsRawFd::as_raw_fd(&fd), FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
        let _ = fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            FcntlArg::F_SETFL(flags),
        );
    }
}

/// Runs `hook` with `state` (the OCI state JSON) on its stdin, as runc
/// does; waits at most its `timeout` seconds, counted from the start
/// (killing it then). Output is collected while it runs, for the error.
pub fn run(index: usize, hook: &Hook, state: &str) -> Result<(), HookError> {
    let mut cmd = Command::new(&hook.path);
    if let Some((argv0, rest)) = hook.args.split_first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, argv0);
        cmd.args(rest);
    }
    cmd.env_clear()
        .envs(hook.env.iter().filter_map(|e| e.split_once('=')))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let args: Vec<&str> = if hook.args.is_empty() {
        vec![hook.path.as_str()]
    } else {
        hook.args.iter().map(String::as_str).collect()
    };
    let env: Vec<&str> = hook
        .env
        .iter()
        .filter(|e| e.contains('='))
        .map(String::as_str)
        .collect();
    let exec =
        crate::sys::Execve::new(&hook.path, &args, &env).map_err(|source| HookError::Spawn {
            index,
            path: hook.path.clone(),
            source,
        })?;
    // A hook never outlives the command that runs it: killing a corten
    // command stuck on a hook with no timeout ends the hook. The exec itself
    // is execve: std's (execvp) would run a file that is no program with
    // /bin/sh, where runc fails with ENOEXEC.
    crate::sys::execve_dying_with_parent(&mut cmd, exec);
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        index,
        path: hook.path.clone(),
        source,
    })?;
    let deadline = hook
        .timeout
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t.unsigned_abs()));
    let mut io = Io {
        input: state.as_bytes(),
        stdin: child.stdin.take(),
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        out: Vec::new(),
        err: Vec::new(),
    };
    for fd in [
        io.stdin.as_ref().map(AsFd::as_fd),
        io.stdout.as_ref().map(AsFd::as_fd),
        io.stderr.as_ref().map(AsFd::as_fd),
    ]
    .into_iter()
    .flatten()
    {
        nonblocking(fd);
    }
    let status = loop {
        if let Some(s) = child.try_wait().ok().flatten() {
            break s;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            kill(&mut child);
            return Err(HookError::Timeout {
                index,
                secs: hook.timeout.unwrap_or_default() as f64,
            });
        }
        if !io.pump(Duration::from_millis(20)) {
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    // What the hook wrote just before it exited; a descendant that keeps
    // the pipes open is not waited for.
    let drain_until = Instant::now() + Duration::from_millis(100);
    while Instant::now() < drain_until && io.pump(Duration::from_millis(10)) {}
    if status.success() {
        return Ok(());
    }
    Err(HookError::Failed {
        index,
        status: crate::gotext::exit_status(status),
        stdout: String::from_utf8_lossy(&io.out).into_owned(),
        stderr: String::from_utf8_lossy(&io.err).into_owned(),
    })
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs every hook of a list in order; stops at the first failure.
pub fn run_all(hooks: &[Hook], state: &str) -> Result<(), HookError> {
    for (i, h) in hooks.iter().enumerate() {
        run(i, h, state)?;
    }
    Ok(())
}

/// Runs every hook of a list, logging failures as warnings that name the
/// `kind` (poststart, poststop).
pub fn run_all_warn(kind: &str, hooks: &[Hook], state: &str) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run(i, h, state) {
            crate::logging::warn(&format!("{kind} hook failed: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Option<i64>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["X=1".into()],
            timeout,
        }
    }

    #[test]
    fn state_on_stdin_args_and_env() {
        let dir = std::env::temp_dir().join(format!("corten-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let script = format!("cat > {0}; echo \" $X $0\" >> {0}", out.display());
        run(0, &sh(&script, None), "{\"id\":\"c\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"c\"} 1 sh\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn output_beyond_a_pipe_buffer_and_a_large_state_do_not_block() {
        // 200 KiB out before reading stdin, then a state larger than a pipe
        // buffer: the timer runs from the start either way.
        let state = "x".repeat(300 * 1024);
        let t = Instant::now();
        run(
            0,
            &sh("head -c 204800 /dev/zero; cat > /dev/null", Some(5)),
            &state,
        )
        .unwrap();
        assert!(t.elapsed() < Duration::from_secs(5));
        let t = Instant::now();
        let e = run(0, &sh("sleep 3", Some(1)), &state).unwrap_err();
        assert!(matches!(e, HookError::Timeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[test]
    fn failure_and_timeout() {
        let e = run(2, &sh("echo bad >&2; exit 3", None), "{}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "error running hook #2: error running hook: exit status 3, stdout: , stderr: bad\n"
        );
        let t = Instant::now();
        let e = run(0, &sh("sleep 10", Some(1)), "{}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "error running hook #0: hook ran past specified timeout of 1.0s"
        );
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(run(
            0,
            &Hook {
                path: "/no/such".into(),
                ..sh("", None)
            },
            "{}"
        )
        .is_err());
    }
}
