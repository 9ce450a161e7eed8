//! The container's init: what the cloned child does, in runc's order, from
//! the namespaces to `execve` of the user process.
//!
//! It runs on a copy of the parent's memory (fork semantics), so the parsed
//! spec is already here; nothing is re-executed or re-parsed.

use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::prctl;
use nix::sys::signal::Signal;

use super::namespaces::{NsError, NsKind, NsPlan};
use super::rlimits::{self, RlimitError};
use super::sync::{Channel, Msg};
use super::user::{self, UserError};
use crate::capabilities::{self, CapError};
use crate::console::{self, ConsoleError};
use crate::plan::Plan;
use crate::rootfs::{Rootfs, RootfsError};
use crate::spec::{Process, Spec};
use crate::sys;

/// Errors of the init, reported to the parent as one line.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Namespaces.
    #[error(transparent)]
    Ns(#[from] NsError),
    /// Rootfs.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// Console.
    #[error(transparent)]
    Console(#[from] ConsoleError),
    /// Capabilities.
    #[error(transparent)]
    Caps(#[from] CapError),
    /// Rlimits.
    #[error(transparent)]
    Rlimit(#[from] RlimitError),
    /// User switch.
    #[error(transparent)]
    User(#[from] UserError),
    /// Moving into the container's cgroups.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    /// Any other step, named.
    #[error("{op}: {source}")]
    Step {
        /// The step.
        op: String,
        /// Cause.
        source: io::Error,
    },
    /// The executable is missing.
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotFound(String),
    /// seccomp.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// The parent went away.
    #[error("parent process went away during set-up")]
    Orphaned,
    /// Scheduling/memory attributes.
    #[error(transparent)]
    Attr(#[from] super::attrs::AttrError),
    /// A createContainer hook.
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    /// The cwd resolved outside the container.
    #[error("cwd {0:?} is not inside the container's root")]
    CwdEscape(String),
}

fn step(op: impl Into<String>) -> impl FnOnce(io::Error) -> InitError {
    let op = op.into();
    move |source| InitError::Step { op, source }
}

pub(crate) fn nstep(op: &'static str) -> impl FnOnce(nix::Error) -> InitError {
    move |e| InitError::Step {
        op: op.to_string(),
        source: e.into(),
    }
}

/// Everything the init needs, prepared by the parent.
#[derive(Debug)]
pub struct InitArgs<'a> {
    /// The container's plan: config, namespaces, rootfs, seccomp program,
    /// options.
    pub plan: &'a Plan,
    /// Bind mount sources cloned before the user namespace existed.
    pub bind_trees: &'a [Option<OwnedFd>],
    /// The container's cgroup directories.
    pub cgroup_paths: &'a crate::cgroups::Cgroup,
    /// The exec fifo, opened read-write by the parent before the clone (so
    /// that an init in a user namespace, without access to the host's state
    /// directory, has it too); the init blocks reading it until `start`.
    pub fifo: std::os::fd::RawFd,
    /// The console socket, when `terminal` is set.
    pub console_socket: Option<&'a UnixStream>,
    /// Join a new session keyring with this name (the container id), so
    /// the container does not share the caller's keys; `None` with
    /// `--no-new-keyring`.
    pub session_keyring: Option<String>,
    /// Pid of `corten create`.
    pub parent_pid: i32,
    /// The state directory's lock: the child's copy of this descriptor is
    /// closed at once, or the lock would live as long as the init and
    /// block `start` and `delete`.
    pub state_lock: std::os::fd::RawFd,
    /// The v1 cgroups the init moves itself into before anything else.
    pub cgroup_move: &'a crate::cgroups::SelfMove,
    /// The parent is not root and writes this process's id maps: the init
    /// stays dumpable until released (see `setup`). Decided by the parent:
    /// in the new user namespace the init's own euid reads 0 as soon as
    /// the uid map is written.
    pub unprivileged_maps: bool,
}

/// Runs the init after the fork; never returns.
pub fn run(args: &InitArgs<'_>, chan: &Channel) -> ! {
    let err = match setup(args, chan) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = chan.send(&Msg::Error(err.to_string()));
    crate::sys::exit_child(1)
}

/// Writes `/proc/self/timens_offsets` for a new time namespace.
pub fn write_time_offsets(spec: &Spec) -> Result<(), InitError> {
    let offs = &spec.linux().time_offsets;
    if offs.is_empty() {
        return Ok(());
    }
    let text: String = offs
        .iter()
        .map(|(clock, o)| format!("{clock} {} {}\n", o.secs, o.nanosecs))
        .collect();
    crate::procfs::ProcFs::open()
        .and_then(|proc| proc.write("self/timens_offsets", text.as_bytes()))
        .map_err(step("write timens_offsets"))
}

fn setup(a: &InitArgs<'_>, chan: &Channel) -> Result<std::convert::Infallible, InitError> {
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(nstep("set parent-death signal"))?;
    // In a new pid namespace the parent is outside it and getppid() is 0;
    // either way a dead parent closes the channel and the recv below fails.
    let ppid = nix::unistd::getppid().as_raw();
    if ppid != 0 && ppid != a.parent_pid {
        return Err(InitError::Orphaned);
    }
    // Non-dumpable from here (CVE-2019-5736), except where an unprivileged
    // parent still has to write this process's id maps: /proc/<pid>/uid_map
    // of a non-dumpable process belongs to root. Such an init turns
    // non-dumpable once the parent has released it, as runc's does.
    let maps_by_unprivileged_parent = a.unprivileged_maps;
    if !maps_by_unprivileged_parent {
        prctl::set_dumpable(false).map_err(nstep("make non-dumpable"))?;
    }
    a.cgroup_move.move_self()?;
    match chan.recv() {
        Ok(Some(Msg::Go)) => {}
        _ => return Err(InitError::Orphaned),
    }
    if maps_by_unprivileged_parent {
        prctl::set_dumpable(false).map_err(nstep("make non-dumpable"))?;
    }
    crate::logging::step(|| "init: in its cgroups, released by the parent".into());
    let (plan, spec) = (a.plan, &a.plan.spec);
    let attrs = crate::process::attrs::Attrs::of(
        spec.process(),
        spec.linux().personality.as_ref(),
        spec.linux().memory_policy.as_ref(),
    );
    attrs.apply_initial()?;
    // In a user namespace, created or joined by path, the init becomes its
    // root before setting anything up.
    let userns =
        plan.ns.creates(NsKind::User) || plan.ns.join.iter().any(|(k, _, _)| *k == NsKind::User);
    if userns {
        let root = nix::unistd::Uid::from_raw(0);
        nix::unistd::setresuid(root, root, root)
            .map_err(nstep("become root in the user namespace"))?;
        let g = nix::unistd::Gid::from_raw(0);
        nix::unistd::setresgid(g, g, g)
            .map_err(nstep("become root group in the user namespace"))?;
    }
    if plan.ns.creates(NsKind::Cgroup) {
        NsPlan::unshare(NsKind::Cgroup.flag())?;
    }
    nix::unistd::setsid().map_err(nstep("setsid"))?;
    if let Some(name) = &a.session_keyring {
        match sys::join_session_keyring(name) {
            // Kernels without keys support: nothing to isolate.
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {}
            r => r.map_err(step("join session keyring"))?,
        }
    }
    let process = spec.process();

    // In any user namespace but the host's (a new one, or the caller's:
    // rootless podman runs the runtime in its own), mknod is refused:
    // device nodes are bound from the host's, as runc does.
    let rfs = Rootfs::new(
        &plan.rootfs,
        &plan.bundle,
        userns || crate::rootless::in_user_namespace(),
        plan.ns.creates(NsKind::Cgroup),
        a.cgroup_paths,
        plan.ns.has(NsKind::Mount),
        spec.linux().rootfs_propagation.as_deref(),
        a.bind_trees,
    )?;
    crate::logging::step(|| "init: namespaces and session ready".into());
    rfs.mount_all(spec)?;
    crate::logging::step(|| format!("init: {} mounts and the devices done", spec.mounts.len()));
    // Hooks: the parent runs prestart/createRuntime now (the namespaces and
    // mounts exist), then this process runs createContainer, still before
    // pivot_root, in the container's namespaces.
    // The state is built here, from the spec this process holds and the
    // host pid the parent sends: a large one (annotations) would not fit in
    // one message of the channel.
    let hook_state = match &spec.hooks {
        Some(h) if has_create_or_start_hooks(h) => {
            chan.send(&Msg::Hooks).map_err(step("request hooks"))?;
            let pid = match chan.recv() {
                Ok(Some(Msg::Pid(p))) => p,
                _ => return Err(InitError::Orphaned),
            };
            let state = |status| plan.hook_state(status, pid).to_json();
            crate::hooks::run_all(&h.create_container, &state(crate::state::Status::Creating))?;
            Some(state(crate::state::Status::Created))
        }
        _ => None,
    };
    let pty = match (process.terminal, a.console_socket) {
        (true, Some(sock)) => Some(console::setup(&rfs, sock, process.console_size)?),
        _ => None,
    };
    set_sysctls(spec)?;
    rfs.protect_paths(spec)?;
    crate::logging::step(|| "init: console, sysctls, masked and read-only paths done".into());
    if let Some(h) = spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(nstep("sethostname"))?;
    }
    if let Some(d) = spec.domainname.as_deref().filter(|d| !d.is_empty()) {
        crate::sys::setdomainname(d).map_err(step("setdomainname"))?;
    }
    rfs.enter(spec, plan.opts.no_pivot)?;
    crate::logging::step(|| {
        format!(
            "init: {} into the rootfs",
            if plan.opts.no_pivot {
                "moved"
            } else {
                "pivoted"
            }
        )
    });
    if let Some(peer) = pty {
        console::attach(peer)?;
    }

    let prepared = prepare_process(
        process,
        &attrs,
        plan.seccomp.as_ref(),
        plan.opts.preserve_fds,
        userns,
        chan,
    )?;

    crate::logging::step(|| {
        "init: process prepared (rlimits, user, capabilities, seccomp, cwd)".into()
    });
    chan.send(&Msg::Created).map_err(step("report created"))?;
    match chan.recv() {
        Ok(Some(Msg::Detach)) => {}
        _ => return Err(InitError::Orphaned),
    }
    prctl::set_pdeathsig(None).map_err(nstep("clear parent-death signal"))?;
    // Our copy of the channel, closed by number: the `Channel` is borrowed
    // and never used again in this process, which leaves only by execve or
    // _exit (so it is never closed twice).
    let _ = nix::unistd::close(std::os::fd::AsRawFd::as_raw_fd(chan));

    wait_for_start(a.fifo);
    // The time since the init's last step is the wait for `corten start`.
    crate::logging::step(|| "init: waited for start".into());
    if let (Some(h), Some(state)) = (&spec.hooks, &hook_state) {
        if !h.start_container.is_empty() {
            if let Err(e) = crate::hooks::run_all(&h.start_container, state) {
                eprintln!("corten: {e}");
                crate::sys::exit_child(1)
            }
        }
    }
    crate::logging::step(|| format!("init: execve {}", prepared.path.display()));
    exec(&prepared.path, &process.args, &prepared.env)
}

fn has_create_or_start_hooks(h: &crate::spec::Hooks) -> bool {
    !(h.prestart.is_empty()
        && h.create_runtime.is_empty()
        && h.create_container.is_empty()
        && h.start_container.is_empty())
}

/// The part of the set-up shared by the init and `exec`, inside the
/// container's root and namespaces: resolve the executable, user and `HOME`;
/// rlimits, `no_new_privs`, capabilities around the user switch, umask, cwd.
/// Returns the executable's path and the final environment.
/// What [`prepare_process`] leaves for the exec.
#[derive(Debug)]
pub struct Prepared {
    /// The resolved executable.
    pub path: PathBuf,
    /// The final environment.
    pub env: Vec<String>,
}

/// Every descriptor above stdio and the preserved ones is close-on-exec
/// from here on (done before seccomp, which may forbid close_range); the
/// seccomp filter is installed early (still privileged) without
/// `no_new_privs`, or last with it, as runc does.
pub fn prepare_process(
    process: &Process,
    attrs: &super::attrs::Attrs,
    seccomp: Option<&crate::seccomp::Filter>,
    preserve_fds: u32,
    userns: bool,
    chan: &Channel,
) -> Result<Prepared, InitError> {
    let path = find_executable(&process.args[0], &process.env)?;
    let (uid, gid) = user::resolve(&process.user)?;
    let env = user::env_with_home(&process.env, uid);
    rlimits::apply(&process.rlimits)?;
    // Before capabilities are dropped: realtime policies need CAP_SYS_NICE.
    attrs.apply_final()?;
    super::attrs::apply_lsm(
        process.apparmor_profile.as_deref(),
        process.selinux_label.as_deref(),
    )?;
    if process.no_new_privileges {
        prctl::set_no_new_privs().map_err(nstep("set no_new_privs"))?;
    }
    sys::cloexec_from(3 + preserve_fds).map_err(step("mark descriptors close-on-exec"))?;
    if let Some(f) = seccomp.filter(|_| !process.no_new_privileges) {
        install_seccomp(f, chan)?;
    }
    if let Some(c) = &process.capabilities {
        capabilities::apply_bounding(c)?;
    }
    // runc enters the cwd while still privileged, so a directory only the
    // runtime can reach works; on EACCES/EPERM it tries again as the user
    // (a volume owned by the container's user that root may not enter).
    let cwd_later = !enter_cwd(&process.cwd, true)?;
    user::fix_stdio_owner(uid)?;
    prctl::set_keepcaps(true).map_err(nstep("set keepcaps"))?;
    user::switch(uid, gid, &process.user.additional_gids, userns)?;
    prctl::set_keepcaps(false).map_err(nstep("clear keepcaps"))?;
    if let Some(c) = &process.capabilities {
        capabilities::apply_final(c)?;
    }
    if let Some(mask) = process.user.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    if cwd_later {
        enter_cwd(&process.cwd, false)?;
    }
    if let Some(f) = seccomp.filter(|_| process.no_new_privileges) {
        install_seccomp(f, chan)?;
    }
    Ok(Prepared { path, env })
}

/// Installs the filter; a notify listener is handed to the parent at once
/// (see [`Channel::report_listener`]), then closed here.
fn install_seccomp(f: &crate::seccomp::Filter, chan: &Channel) -> Result<(), InitError> {
    if let Some(listener) = f.install()? {
        chan.report_listener(std::os::fd::AsRawFd::as_raw_fd(&listener))
            .map_err(step("hand the seccomp listener to the runtime"))?;
    }
    Ok(())
}

fn set_sysctls(spec: &Spec) -> Result<(), InitError> {
    if spec.linux().sysctl.is_empty() {
        return Ok(());
    }
    // /proc/sys entries act on the namespaces of the writer, whichever
    // procfs instance they are reached through.
    let proc = crate::procfs::ProcFs::open().map_err(step("open a procfs handle"))?;
    for (k, v) in &spec.linux().sysctl {
        let p = format!("sys/{}", k.replace('.', "/"));
        proc.write(&p, v.as_bytes())
            .map_err(step(format!("write sysctl {k}")))?;
    }
    Ok(())
}

/// Changes to the process's cwd and checks it lies inside the new root
/// (CVE-2024-21626: a cwd reached through a leaked descriptor would not).
/// With `may_defer`, a permission error returns `Ok(false)`: try again
/// after the user switch.
fn enter_cwd(cwd: &str, may_defer: bool) -> Result<bool, InitError> {
    match nix::unistd::chdir(cwd) {
        Ok(()) => {}
        Err(nix::Error::EACCES | nix::Error::EPERM) if may_defer => return Ok(false),
        Err(e) => {
            return Err(step(format!(
                "chdir to cwd ({cwd:?}) set in config.json failed"
            ))(e.into()))
        }
    }
    match nix::unistd::getcwd() {
        Ok(p) if p.starts_with("/") => Ok(true),
        _ => Err(InitError::CwdEscape(cwd.to_string())),
    }
}

/// Resolves argv[0] with the process's `PATH`, as `execvp` would.
fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf, InitError> {
    let is_exec = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match std::fs::metadata(&p) {
            Ok(_) if is_exec(&p) => Ok(p),
            Ok(_) => Err(step(format!("exec: {arg0:?}"))(
                io::Error::from_raw_os_error(libc::EACCES),
            )),
            Err(e) => Err(step(format!("exec: {arg0:?}: stat {arg0}"))(e)),
        };
    }
    // Without PATH in the process's environment only paths with a slash
    // work, as with runc (Go's LookPath over an empty PATH).
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("");
    path.split(':')
        .filter(|_| !path.is_empty())
        .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(arg0))
        .find(|p| is_exec(p))
        .ok_or_else(|| InitError::NotFound(arg0.to_string()))
}

/// Blocks until `corten start` writes to the exec fifo.
fn wait_for_start(fifo: std::os::fd::RawFd) {
    // The descriptor was opened by the parent before the clone and is used
    // only here.
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(fifo, &mut b) {
            Ok(1) => break,
            Err(nix::Error::EINTR) => continue,
            // EOF or an error cannot happen while we hold the fifo open for
            // writing too; if it does, nobody can start us.
            _ => crate::sys::exit_child(1),
        }
    }
    let _ = nix::unistd::close(fifo);
}

/// Closes every descriptor beyond stdio and the preserved ones, then execs.
/// Every descriptor above stdio and the preserved ones is already
/// close-on-exec ([`prepare_process`]).
pub fn exec(path: &Path, args: &[String], env: &[String]) -> ! {
    let cpath = CString::new(path.as_os_str().as_bytes()).unwrap_or_default();
    let cargs: Vec<CString> = args
        .iter()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let cenv: Vec<CString> = env
        .iter()
        .filter_map(|e| CString::new(e.as_bytes()).ok())
        .collect();
    let err = nix::unistd::execve(&cpath, &cargs, &cenv).unwrap_err();
    eprintln!("exec {}: {err}", path.display());
    crate::sys::exit_child(127)
}
