//! `corten exec`: run a process in a running container.

use std::path::PathBuf;

use anyhow::{bail, Context};

use super::Globals;
use crate::container::{exec_in_foreground, Container, ExecOpts, ForegroundExec};
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
    #[arg(short, long, allow_hyphen_values = true)]
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
    /// Run in an existing sub-cgroup: [<controller>[,<controller>…]:]<path>,
    /// repeatable (one per controller set).
    #[arg(long)]
    cgroup: Vec<String>,
    /// Container id.
    id: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// The process to run, as runc builds it: a `--process` file as it is (the
/// other process flags are ignored); otherwise the `process` of the
/// bundle's `config.json` as it reads now, with the command and flags
/// applied. A terminal only with `--tty`, whatever the config says.
fn build_process(a: &Args, bundle: &std::path::Path) -> anyhow::Result<Process> {
    if let Some(path) = &a.process {
        let text = std::fs::read(path).with_context(|| format!("open {}", path.display()))?;
        let p: Process = crate::spec::gojson::from_slice(&text)?;
        crate::plan::validate_process(&p)?;
        return Ok(p);
    }
    let mut p = crate::spec::Spec::read(bundle)?
        .process
        .context("process property must not be empty")?;
    if a.command.is_empty() {
        bail!("process args cannot be empty");
    }
    p.args.clone_from(&a.command);
    if let Some(cwd) = a.cwd.as_ref().filter(|c| !c.is_empty()) {
        p.cwd.clone_from(cwd);
    }
    if let Some(ap) = a.apparmor.as_ref().filter(|p| !p.is_empty()) {
        p.apparmor_profile = Some(ap.clone());
    }
    if let Some(l) = a.process_label.as_ref().filter(|l| !l.is_empty()) {
        p.selinux_label = Some(l.clone());
    }
    if !a.cap.is_empty() {
        let caps = p.capabilities.get_or_insert_with(Default::default);
        for set in [
            &mut caps.bounding,
            &mut caps.effective,
            &mut caps.permitted,
            &mut caps.ambient,
        ] {
            set.get_or_insert_with(Vec::new)
                .extend(a.cap.iter().cloned());
        }
    }
    p.env.extend(a.env.iter().cloned());
    p.terminal = a.tty;
    if a.no_new_privs {
        p.no_new_privileges = true;
    }
    if let Some(u) = a.user.as_ref().filter(|u| !u.is_empty()) {
        let (uid, gid) = match u.split_once(':') {
            Some((uid, gid)) => (uid, Some(gid)),
            None => (u.as_str(), None),
        };
        if let Some(gid) = gid {
            p.user.gid = go_atoi(gid, "gid")?;
        }
        p.user.uid = go_atoi(uid, "uid")?;
        p.user.username = None;
    }
    p.user
        .additional_gids
        .extend(a.additional_gids.iter().copied());
    crate::plan::validate_process(&p)?;
    Ok(p)
}

/// `--cgroup` arguments, parsed and checked as runc does.
fn sub_cgroups(args: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for c in args {
        let parts: Vec<&str> = c.splitn(3, ':').collect();
        match parts[..] {
            [path] => {
                if args.len() != 1 {
                    bail!("invalid --cgroup argument: {c} (missing <controller>: prefix)");
                }
                out.insert(String::new(), path.to_string());
            }
            [ctrls, path] => {
                for ctrl in ctrls.split(',') {
                    if ctrl.is_empty() {
                        bail!("invalid --cgroup argument: {c} (empty <controller> prefix)");
                    }
                    // runc 1.1 lets a later argument win.
                    out.insert(ctrl.to_string(), path.to_string());
                }
            }
            _ => bail!("invalid --cgroup argument: {c}"),
        }
    }
    Ok(out)
}

/// `--user`'s numbers, with runc's message when one is not a number.
fn go_atoi(s: &str, what: &str) -> anyhow::Result<u32> {
    let n: i64 = s.parse().map_err(|e: std::num::ParseIntError| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        anyhow::anyhow!("parsing {s} as int for {what} failed: strconv.Atoi: parsing {s:?}: {why}")
    })?;
    // Go's Atoi takes a sign; runc's init then refuses what is no id.
    u32::try_from(n)
        .ok()
        .filter(|n| *n <= i32::MAX as u32)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "unable to start container process: unable to setup user: \
                 uids and gids must be in range 0-2147483647"
            )
        })
}

/// Runs `exec`; the exit code is the process's unless `--detach`. Like
/// runc, any failure to set the process up is reported as `exec failed: …`
/// with exit code 255 (by the caller), and a process whose pid file cannot
/// be written is killed.
pub fn run(g: &Globals, a: Args) -> anyhow::Result<u8> {
    let c = Container::load(&g.root, &a.id)?;
    let process = build_process(&a, &c.record.bundle)?;
    crate::capabilities::warn_unknown(process.capabilities.as_ref());
    let x = ForegroundExec {
        opts: ExecOpts {
            console_socket: a.console_socket.clone(),
            preserve_fds: a.preserve_fds,
            ignore_paused: a.ignore_paused,
            sub_cgroups: sub_cgroups(&a.cgroup)?,
        },
        detach: a.detach,
        pid_file: a.pid_file.clone(),
    };
    exec_in_foreground(&g.root, &a.id, &process, x)
}
