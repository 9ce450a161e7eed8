//! `corten run`: create, start and (unless `--detach`) wait, forwarding
//! signals to the container and returning its exit code.

use anyhow::Context;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create::CreateFlags;
use super::Globals;
use crate::container;
use crate::process::create::create;

/// `run [flags] ID`
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    flags: CreateFlags,
    /// Detach from the container's process.
    #[arg(short, long)]
    detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    keep: bool,
    /// Do not make corten a subreaper (accepted for compatibility).
    #[arg(long = "no-subreaper")]
    no_subreaper: bool,
    /// Container id.
    id: String,
}

pub(super) const FORWARDED: [Signal; 8] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// Runs `run`; the exit code is the container's.
pub fn run(g: &Globals, a: Args) -> anyhow::Result<u8> {
    let mut opts = a.flags.opts(g)?;
    // terminal: true in the foreground without a console socket: corten
    // takes the pty master itself and relays it (as runc does).
    let own_console = if !a.detach && opts.console_socket.is_none() {
        let terminal = crate::spec::Spec::load(&a.flags.bundle).is_ok_and(|s| s.process().terminal);
        if terminal {
            let c = super::tty::OwnConsole::listen(&g.root).context("console socket")?;
            opts.console_socket = Some(c.path().to_path_buf());
            Some(c)
        } else {
            None
        }
    } else {
        None
    };
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(s);
    }
    let created = create(&g.root, &a.id, &a.flags.bundle, &opts).context("corten run failed")?;
    if !a.detach {
        // Blocked before start so no SIGCHLD or forwarded signal is lost.
        set.thread_block().context("block signals")?;
    }
    if let Err(e) = container::start(&g.root, &a.id) {
        let _ = container::delete(&g.root, &a.id, true);
        return Err(e).context("corten run failed");
    }
    if a.detach {
        return Ok(0);
    }
    let code = match own_console {
        Some(c) => {
            let master = c.receive().context("receive the pty master")?;
            super::tty::proxy(master, created.pid, &FORWARDED).context("relay the terminal")?
        }
        None => wait_forwarding(created.pid, &set),
    };
    if !a.keep {
        container::delete(&g.root, &a.id, true)?;
    }
    Ok(code)
}

fn reap(pid: i32) -> Option<u8> {
    match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, c)) => Some(u8::try_from(c & 0xff).unwrap_or(255)),
        Ok(WaitStatus::Signaled(_, s, _)) => Some(u8::try_from(128 + s as i32).unwrap_or(255)),
        Err(nix::Error::ECHILD) => Some(255),
        _ => None,
    }
}

pub(super) fn wait_forwarding(pid: i32, set: &SigSet) -> u8 {
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
