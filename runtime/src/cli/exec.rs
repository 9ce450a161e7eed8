//! `corten exec`: run a process in a running container.

use std::path::PathBuf;

use anyhow::{bail, Context};
use nix::sys::signal::{SigSet, Signal};

use super::run::{wait_forwarding, FORWARDED};
use super::Globals;
use crate::container::Container;
use crate::process::create::write_pid_file;
use crate::process::exec::{exec, ExecOpts};
use crate::spec::Process;

/// `exec [flags] ID [COMMAND ARGS…]`, or `exec --process FILE ID`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Unix socket that receives the pty master (with `--tty --detach`).
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    cwd: Option<String>,
    /// Extra environment variables (KEY=value), repeatable.
    #[arg(short, long)]
    env: Vec<String>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    tty: bool,
    /// User as uid[:gid].
    #[arg(short, long)]
    user: Option<String>,
    /// Additional gids, repeatable.
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// A process.json to run instead of COMMAND.
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Detach from the process.
    #[arg(short, long)]
    detach: bool,
    /// File to write the process's pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// SELinux process label (refused when SELinux is not enabled).
    #[arg(long = "process-label")]
    process_label: Option<String>,
    /// AppArmor profile (refused when AppArmor is not enabled).
    #[arg(long)]
    apparmor: Option<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Add a capability to the process's sets, repeatable.
    #[arg(short, long)]
    cap: Vec<String>,
    /// Pass this many extra descriptors (from fd 3) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Exec even if the container is paused.
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    /// Container id.
    id: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// The process to run: `--process FILE`, or the container's own process
/// with the command and flags applied (as runc builds it).
fn build_process(a: &Args, base: Option<Process>) -> anyhow::Result<Process> {
    let mut p = match &a.process {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("open {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("parse process {}", path.display()))?
        }
        None => {
            if a.command.is_empty() {
                bail!("exec args cannot be empty");
            }
            let mut p = base.unwrap_or_default();
            p.args.clone_from(&a.command);
            p
        }
    };
    p.env.extend(a.env.iter().cloned());
    if let Some(cwd) = &a.cwd {
        p.cwd.clone_from(cwd);
    }
    if p.cwd.is_empty() {
        p.cwd = "/".into();
    }
    if a.tty {
        p.terminal = true;
    }
    if a.no_new_privs {
        p.no_new_privileges = true;
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, ""));
        p.user.uid = uid.parse().with_context(|| format!("parse uid {uid:?}"))?;
        if !gid.is_empty() {
            p.user.gid = gid.parse().with_context(|| format!("parse gid {gid:?}"))?;
        }
        p.user.username = None;
    }
    p.user
        .additional_gids
        .extend(a.additional_gids.iter().copied());
    if !a.cap.is_empty() {
        let caps = p.capabilities.get_or_insert_with(Default::default);
        for set in [
            &mut caps.bounding,
            &mut caps.effective,
            &mut caps.permitted,
            &mut caps.ambient,
        ] {
            let set = set.get_or_insert_with(Vec::new);
            for c in &a.cap {
                if !set.contains(c) {
                    set.push(c.clone());
                }
            }
        }
    }
    if a.process_label.is_some() {
        p.selinux_label.clone_from(&a.process_label);
    }
    if a.apparmor.is_some() {
        p.apparmor_profile.clone_from(&a.apparmor);
    }
    Ok(p)
}

/// Runs `exec`; the exit code is the process's unless `--detach`.
pub fn run(g: &Globals, a: Args) -> anyhow::Result<u8> {
    let c = Container::load(&g.root, &a.id)?;
    let process = build_process(&a, c.record.process.clone())?;
    // --tty in the foreground without a console socket: corten takes the
    // pty master itself and relays it (as runc does).
    let own_console = if process.terminal && !a.detach && a.console_socket.is_none() {
        Some(super::tty::OwnConsole::listen(&g.root).context("console socket")?)
    } else {
        None
    };
    let opts = ExecOpts {
        console_socket: own_console
            .as_ref()
            .map(|c| c.path().to_path_buf())
            .or_else(|| a.console_socket.clone()),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
    };
    let pid = exec(&g.root, &a.id, &process, &opts).context("exec failed")?;
    if let Some(pf) = &a.pid_file {
        write_pid_file(pf, pid)?;
    }
    if a.detach {
        return Ok(0);
    }
    if let Some(c) = own_console {
        let master = c.receive().context("receive the pty master")?;
        return super::tty::proxy(master, pid, &FORWARDED).context("relay the terminal");
    }
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(s);
    }
    set.thread_block().context("block signals")?;
    Ok(wait_forwarding(pid, &set))
}
