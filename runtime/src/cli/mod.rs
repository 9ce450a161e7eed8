//! The runc-compatible command line: global flags, one file per command.

mod check;
mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
pub(crate) mod update;
mod usage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::logging;

/// Version line printed by `--version`.
const VERSION: &str = concat!(
    "corten version ",
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("CORTEN_COMMIT"),
    "\nspec: 1.0.2-dev"
);

/// What `corten --help` says before the commands.
const LONG_ABOUT: &str = "\
corten: a low-level OCI container runtime, compatible with runc.

corten runs containers from OCI bundles. A bundle is a directory holding a
specification file named config.json (write one with `corten spec`) and the
container's root filesystem (rootfs/ by default). Docker, containerd, podman
and Kubernetes drive corten as they drive runc; it can also be run by hand.";

/// Examples printed after the top-level help.
const EXAMPLES: &str = "\
Examples:
  mkdir -p demo/rootfs && cd demo        # fill rootfs/, e.g. with busybox
  corten spec                            # write config.json
  sudo corten run mycontainer            # create, start and wait
  corten check                           # is this host ready for corten?
  corten help run                        # the options of one command

Global options come before the command: corten --root /run/x --debug run ID";

/// The global options' names, which a command's help leaves out (they are
/// listed by `corten --help`, and belong before the command as in runc).
const GLOBAL_ARGS: [&str; 8] = [
    "root",
    "log",
    "log_format",
    "debug",
    "systemd_cgroup",
    "cgroup_manager",
    "rootless",
    "criu",
];

/// corten: a low-level OCI container runtime, compatible with runc.
#[derive(Debug, Parser)]
#[command(
    name = "corten",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    disable_help_subcommand = true,
    disable_version_flag = true
)]
pub struct Cli {
    /// Root directory for container state (tmpfs recommended) [default:
    /// /run/corten; $XDG_RUNTIME_DIR/corten when not root]
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Log file (default: stderr).
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Log format [possible values: text, json].
    #[arg(
        long = "log-format",
        global = true,
        default_value = "text",
        value_name = "FORMAT"
    )]
    log_format: String,
    /// Debug logging: each step of create, start, exec and delete with the
    /// microseconds it took.
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd for cgroups: a transient scope per container, cgroupsPath
    /// as slice:prefix:name (needs systemd as PID 1: see `corten check`).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Cgroup manager (as crun's flag); disabled: no cgroup at all, and
    /// linux.resources is not applied [possible values: cgroupfs, systemd,
    /// disabled].
    #[arg(
        long = "cgroup-manager",
        global = true,
        default_value = "cgroupfs",
        value_name = "MANAGER"
    )]
    cgroup_manager: String,
    /// Ignore cgroup permission errors [possible values: true, false, auto].
    #[arg(
        long,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    rootless: Option<String>,
    /// Path to the criu binary used for checkpoint and restore.
    #[arg(long, global = true, default_value = "criu", value_name = "PATH")]
    criu: String,
    /// Print the version (runc's three lines: version, commit, spec).
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a container.
    ///
    /// Creates a container from the bundle (-b, default: the current
    /// directory: a config.json and the root filesystem it names) and leaves
    /// it created: its process waits until `corten start ID`. The id must be
    /// unique under the state root. With "terminal": true in config.json,
    /// --console-socket must name the socket that receives the pty master.
    ///
    /// Example: corten create --bundle /containers/web web1
    Create(create::Args),
    /// Start a created container.
    ///
    /// Runs the user process of a container made by `corten create`.
    Start(start::Args),
    /// Output the state of a container.
    ///
    /// Prints the container's state as JSON (the OCI state: ociVersion, id,
    /// pid, status, bundle, rootfs, created, owner, annotations).
    State(state::Args),
    /// Send a signal to the container's init process.
    ///
    /// The signal is a name (SIGKILL or KILL) or a number. Example: corten
    /// kill web1 KILL
    Kill(kill::Args),
    /// Delete a container and its resources.
    ///
    /// Removes a stopped container's state, cgroup and mounts; --force also
    /// kills a running one first.
    Delete(delete::Args),
    /// Create and start a container.
    ///
    /// Creates the container from the bundle (-b, default: the current
    /// directory), starts it and, unless --detach, waits for it, forwarding
    /// signals; the exit code is the container's. With "terminal": true the
    /// container gets a pty on corten's own terminal.
    ///
    /// Example: cd /containers/web && corten run web1
    Run(run::Args),
    /// List containers.
    ///
    /// Lists the containers under the state root (--root).
    #[command(alias = "ps-list")]
    List(list::Args),
    /// Create a new specification file.
    ///
    /// Writes a config.json for a bundle in the current directory (or
    /// --bundle): runc's default, a shell on a terminal in rootfs/;
    /// --rootless writes one for an unprivileged user.
    Spec(spec::Args),
    /// Execute a new process inside a container.
    ///
    /// Example: corten exec -t web1 sh
    Exec(Box<exec::Args>),
    /// Display the processes running inside a container.
    Ps(ps::Args),
    /// Show the enabled features.
    ///
    /// Prints the OCI features document (JSON): namespaces, capabilities,
    /// mount options, seccomp actions and cgroup support.
    Features(features::Args),
    /// Suspend all processes of a container.
    Pause(pause::Args),
    /// Resume all processes of a paused container.
    Resume(pause::Args),
    /// Update the resource limits of a container.
    Update(Box<update::Args>),
    /// Display container statistics and OOM notifications.
    Events(events::Args),
    /// Report whether this host can run corten's containers.
    ///
    /// Checks the kernel and the features corten uses (clone3, openat2,
    /// close_range, CLONE_INTO_CGROUP, open_tree/mount_setattr, idmapped
    /// mounts, seccomp user notification), the cgroup hierarchy and its
    /// controllers, systemd, user namespaces, subordinate id ranges and the
    /// LSMs, each with what works or does not and why. Exit code 0 when
    /// corten can run containers here, 1 otherwise.
    Check(check::Args),
    /// Checkpoint a running container (needs CRIU; not supported yet).
    Checkpoint(Box<checkpoint::CheckpointArgs>),
    /// Restore a container from a checkpoint (needs CRIU; not supported yet).
    Restore(Box<checkpoint::RestoreArgs>),
}

/// Global options every command sees.
#[derive(Debug, Clone)]
pub struct Globals {
    /// `--root`.
    pub root: PathBuf,
    /// `--systemd-cgroup` (or `--cgroup-manager systemd`).
    pub systemd_cgroup: bool,
    /// `--cgroup-manager disabled`.
    pub cgroups_disabled: bool,
    /// `--rootless` (`true`, `false`, `auto`), checked by `create`/`run`.
    pub rootless: Option<String>,
}

/// The state root without `--root`: `/run/corten`, or for a rootless user
/// `$XDG_RUNTIME_DIR/corten`, made here (0700 and sticky, as runc makes its
/// own, so that the XDG directory's clean-up leaves it alone).
fn default_root() -> Result<PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let (root, xdg) = crate::rootless::default_root();
    if xdg {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .and_then(|()| std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o1700)))
            .map_err(|e| crate::gotext::go_errors(&format!("mkdir {}: {e}", root.display())))?;
    }
    Ok(root)
}

/// corten's command line as parsed: a repeated flag overrides the earlier
/// one (as Go's flag parsing does), and a command's help lists only that
/// command's options (the global ones are in `corten --help`).
pub fn command() -> clap::Command {
    let mut cmd = Cli::command().args_override_self(true);
    for name in GLOBAL_ARGS {
        cmd = cmd.mut_arg(name, |a| a.hide(true));
    }
    cmd.mut_subcommands(|c| {
        c.args_override_self(true)
            .after_help("Global options (see `corten --help`) come before the command.")
    })
}

/// The top-level help's command, with the global options shown.
pub fn top_level_command() -> clap::Command {
    Cli::command()
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = usage::help_command(&args) {
        return code;
    }
    let parsed = command()
        .try_get_matches_from(&args)
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => return usage::report(&e, &args),
    };
    let Some(command) = cli.command else {
        if cli.version {
            println!("{VERSION}");
        } else {
            // Only global flags: runc shows its help.
            let _ = top_level_command().print_long_help();
        }
        return ExitCode::SUCCESS;
    };
    // runc checks the format, then opens the log file, before any command.
    let format = match cli.log_format.as_str() {
        "json" => logging::Format::Json,
        "text" | "" => logging::Format::Text,
        f => {
            logging::error(&format!("invalid log-format: {f}"));
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = logging::init(cli.log.clone(), format, cli.debug) {
        logging::error(&crate::gotext::go_errors(&e.to_string()));
        return ExitCode::FAILURE;
    }
    // The commands whose processes enter a container run from a copy of the
    // binary that nothing can write (see `sys::reexec_protected`).
    if matches!(
        command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) && !crate::sys::self_exe_is_protected()
    {
        let e = crate::sys::reexec_protected();
        logging::error(&format!(
            "unable to re-execute from a protected copy of corten: {e}"
        ));
        return ExitCode::FAILURE;
    }
    if !matches!(
        cli.cgroup_manager.as_str(),
        "cgroupfs" | "systemd" | "disabled"
    ) {
        logging::error(&format!(
            "invalid cgroup manager {:?}: use cgroupfs, systemd or disabled",
            cli.cgroup_manager
        ));
        return ExitCode::FAILURE;
    }
    let root = match cli.root.clone() {
        Some(root) => root,
        None => match default_root() {
            Ok(root) => root,
            Err(e) => {
                logging::error(&e);
                return ExitCode::FAILURE;
            }
        },
    };
    let g = Globals {
        root,
        systemd_cgroup: cli.systemd_cgroup || cli.cgroup_manager == "systemd",
        cgroups_disabled: cli.cgroup_manager == "disabled",
        rootless: cli.rootless.clone(),
    };
    let res = match command {
        Command::Create(a) => create::run(&g, a).map(|()| 0),
        Command::Start(a) => start::run(&g, a).map(|()| 0),
        Command::State(a) => state::run(&g, a).map(|()| 0),
        Command::Kill(a) => kill::run(&g, a).map(|()| 0),
        Command::Delete(a) => delete::run(&g, a).map(|()| 0),
        Command::Run(a) => run::run(&g, a),
        Command::List(a) => list::run(&g, a).map(|()| 0),
        Command::Spec(a) => spec::run(a).map(|()| 0),
        Command::Ps(a) => ps::run(&g, a).map(|()| 0),
        Command::Exec(a) => match exec::run(&g, *a) {
            // runc: `exec failed: …`, exit code 255, for every failure to
            // set the process up.
            Err(e) => {
                logging::error(&error_line(&e.context("exec failed")));
                return ExitCode::from(255);
            }
            ok => ok,
        },
        Command::Features(a) => features::run(a).map(|()| 0),
        Command::Check(a) => check::run(&g, a),
        Command::Pause(a) => pause::run(&g, a, true).map(|()| 0),
        Command::Resume(a) => pause::run(&g, a, false).map(|()| 0),
        Command::Update(a) => update::run(&g, *a).map(|()| 0),
        Command::Events(a) => events::run(&g, a).map(|()| 0),
        Command::Checkpoint(a) => checkpoint::checkpoint(&g, &cli.criu, *a).map(|()| 0),
        Command::Restore(a) => checkpoint::restore(&g, &cli.criu, *a).map(|()| 0),
    };
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            logging::error(&error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// One line for an error chain: each cause appended unless its text is
/// already part of the message, system errors in Go's words (runc's:
/// `no such file or directory`, without Rust's ` (os error N)`).
pub fn error_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if !msg.contains(&c) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&c);
        }
    }
    crate::gotext::go_errors(&msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_are_deduplicated() {
        let io = std::io::Error::from_raw_os_error(2);
        let e = anyhow::Error::new(crate::spec::SpecError::Read {
            path: "/x/config.json".into(),
            source: io,
        })
        .context("corten create failed");
        assert_eq!(
            error_line(&e),
            "corten create failed: open /x/config.json: no such file or directory"
        );
    }
}
