//! A process in the foreground of `run` or `exec`: its terminal relayed
//! (as runc, corten takes the pty master itself when the process has a
//! terminal and no `--console-socket` was given), the usual signals
//! forwarded to it, its exit code returned.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::tty::{self, OwnConsole};
use crate::spec::Process;

/// The signals a foreground `run` or `exec` passes on to the process.
const FORWARDED: [Signal; 8] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// The foreground of one process, set up before the process exists.
#[derive(Debug)]
pub struct Foreground {
    console: Option<OwnConsole>,
}

impl Foreground {
    /// The foreground of a process with a terminal (`terminal`), waited for
    /// unless `detach`: without a `console_socket` of the caller's, corten
    /// listens on one of its own (under the state root `root`), sets it,
    /// and relays the pty master it receives.
    pub fn new(
        root: &Path,
        terminal: bool,
        detach: bool,
        console_socket: &mut Option<PathBuf>,
    ) -> anyhow::Result<Foreground> {
        if !terminal || detach || console_socket.is_some() {
            return Ok(Foreground { console: None });
        }
        let console = OwnConsole::listen(root).context("console socket")?;
        *console_socket = Some(console.path().to_path_buf());
        Ok(Foreground {
            console: Some(console),
        })
    }

    /// Blocks SIGCHLD and the forwarded signals, so none is lost between
    /// the moment the process can run and [`Foreground::wait`].
    pub fn block_signals() -> anyhow::Result<()> {
        signal_set().thread_block().context("block signals")
    }

    /// Waits for `pid` (a child of this process, or of it as subreaper),
    /// relaying the terminal or forwarding signals; its exit code (128 + the
    /// signal that ended it).
    pub fn wait(self, pid: i32) -> anyhow::Result<u8> {
        match self.console {
            Some(c) => {
                let master = c.receive().context("receive the pty master")?;
                tty::proxy(master, pid, &FORWARDED).context("relay the terminal")
            }
            None => {
                Foreground::block_signals()?;
                Ok(wait_forwarding(pid, &signal_set()))
            }
        }
    }
}

fn signal_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(s);
    }
    set
}

fn reap(pid: i32) -> Option<u8> {
    match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, c)) => Some(u8::try_from(c & 0xff).unwrap_or(255)),
        Ok(WaitStatus::Signaled(_, s, _)) => Some(u8::try_from(128 + s as i32).unwrap_or(255)),
        Err(nix::Error::ECHILD) => Some(255),
        _ => None,
    }
}

fn wait_forwarding(pid: i32, set: &SigSet) -> u8 {
    loop {
        if let Some(c) = reap(pid) {
            return c;
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(sig) => {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
            }
        }
    }
}

/// `exec`'s options beyond [`super::ExecOpts`]: the foreground and the pid
/// file.
#[derive(Debug, Default)]
pub struct ForegroundExec {
    /// The process's options; `console_socket` is the caller's
    /// `--console-socket`.
    pub opts: super::ExecOpts,
    /// Return once the process runs instead of waiting for it.
    pub detach: bool,
    /// Where to write the process's pid.
    pub pid_file: Option<PathBuf>,
}

/// Runs `process` in container `id` as `corten exec` does: the process's
/// exit code unless detached. Like runc, a process whose pid file cannot be
/// written is killed.
pub fn exec_in_foreground(
    root: &Path,
    id: &str,
    process: &Process,
    mut x: ForegroundExec,
) -> anyhow::Result<u8> {
    if process.terminal && x.detach && x.opts.console_socket.is_none() {
        bail!("cannot allocate tty if corten will detach without setting console socket");
    }
    if !process.terminal && x.opts.console_socket.is_some() {
        bail!("cannot use console socket if corten will not detach or allocate tty");
    }
    let fg = Foreground::new(root, process.terminal, x.detach, &mut x.opts.console_socket)?;
    let pid = super::exec(root, id, process, &x.opts)?;
    if let Some(pf) = &x.pid_file {
        if let Err(e) = crate::process::create::write_pid_file(pf, pid) {
            crate::sys::kill_and_reap(pid, crate::process::create::REAP_BOUND);
            return Err(e.into());
        }
    }
    if x.detach {
        return Ok(0);
    }
    fg.wait(pid)
}
