//! `exec`: a new process in every namespace and the cgroup of a running
//! container.
//!
//! ```text
//! corten exec ──clone3 (v2: CLONE_INTO_CGROUP)──► intermediate
//!                                                 v1: moves itself into the
//!                                                 cgroups (`0` to `tasks`)
//!   Go ────────────────────────────────────────►  setns into each of the init's
//!                                                 namespaces (user first)
//!                                                 clone3(CLONE_PARENT) ──► process
//!   ◄── Pid(process) ───────────────────────────  exits                   (in the pid ns)
//!   oom_score_adj                                                          console, user,
//!   ◄── Error, or EOF when the exec succeeded ──────────────────────────── caps, cwd, exec
//! ```
//!
//! Like `create`, `exec` runs from a read-only view of corten and the new
//! process is non-dumpable until it execs (CVE-2019-5736).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::prctl;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::init::{self, nstep, InitError};
use super::namespaces::{NsKind, NsPlan};
use super::sync::{Channel, Msg};
use crate::bounds::Bound;
use crate::cgroups;
use crate::container::Container;
use crate::spec::Process;
use crate::state::Status;
use crate::sys::{self, Forked};

/// Options of `exec`.
#[derive(Debug, Default)]
pub struct ExecOpts {
    /// `--console-socket`: receives the pty master of a terminal process.
    pub console_socket: Option<PathBuf>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// `--ignore-paused`.
    pub ignore_paused: bool,
    /// `--cgroup`: sub-cgroups to run in, by controller (`""`: all).
    pub sub_cgroups: BTreeMap<String, String>,
}

/// Errors of `exec`.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Loading the container.
    #[error(transparent)]
    Container(#[from] crate::container::ContainerError),
    /// The process spec.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// Namespaces of the container.
    #[error(transparent)]
    Ns(#[from] super::namespaces::NsError),
    /// Cgroup.
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    /// A state that forbids exec, or a usage error.
    #[error("{0}")]
    Refused(String),
    /// A step of the parent.
    #[error("{op}: {source}")]
    Step {
        /// The step.
        op: String,
        /// Cause.
        source: io::Error,
    },
    /// The new process failed before exec.
    #[error("unable to start container process: {0}")]
    Child(String),
}

fn step(op: impl Into<String>) -> impl FnOnce(io::Error) -> ExecError {
    let op = op.into();
    move |source| ExecError::Step { op, source }
}

/// The namespaces of `pid` that differ from ours, to join (user first).
fn namespaces_of(pid: i32) -> Result<NsPlan, ExecError> {
    let mut plan = NsPlan::default();
    for kind in NsKind::ALL {
        let theirs = format!("/proc/{pid}/ns/{}", kind.proc_name());
        let ours = format!("/proc/self/ns/{}", kind.proc_name());
        let (Ok(t), Ok(o)) = (fs::metadata(&theirs), fs::metadata(&ours)) else {
            continue; // a kind this kernel does not have
        };
        if t.ino() == o.ino() && t.dev() == o.dev() {
            continue;
        }
        let f = File::open(&theirs).map_err(step(format!("open {theirs}")))?;
        plan.join.push((kind, theirs, f));
    }
    Ok(plan)
}

/// What the new process needs after the fork.
struct Child<'a> {
    process: &'a Process,
    seccomp: Option<&'a crate::seccomp::Filter>,
    attrs: super::attrs::Attrs,
    ns: &'a NsPlan,
    console: Option<&'a UnixStream>,
    preserve_fds: u32,
    keyring: String,
    parent_pid: i32,
    /// The v1 cgroups the intermediate moves itself into.
    cgroup_move: &'a cgroups::SelfMove,
    /// The init's root directory (`/proc/<pid>/root`), entered after the
    /// namespaces are joined.
    root: &'a File,
}

/// Runs `process` in container `id`; returns the new process's pid once it
/// has exec'd (or failed with the reason).
pub fn exec(root: &Path, id: &str, process: &Process, opts: &ExecOpts) -> Result<i32, ExecError> {
    crate::plan::validate_process(process)?;
    if process.terminal != opts.console_socket.is_some() {
        return Err(ExecError::Refused(if process.terminal {
            "cannot allocate tty if corten will detach without setting console socket".into()
        } else {
            "cannot use console socket if corten will not detach or allocate tty".into()
        }));
    }
    let c = Container::load(root, id)?;
    match c.status {
        Status::Running | Status::Created => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            return Err(ExecError::Refused(
                "cannot exec in a paused container (use --ignore-paused to override)".into(),
            ))
        }
        _ => {
            return Err(ExecError::Refused(
                "cannot exec in a stopped container".into(),
            ))
        }
    }
    let ns = namespaces_of(c.record.pid)?;
    let console = opts
        .console_socket
        .as_deref()
        .map(|p| crate::console::connect(p).map_err(|e| ExecError::Refused(e.to_string())))
        .transpose()?;
    let (parent_end, child_end) = Channel::pair().map_err(step("create sync socket"))?;
    parent_end
        .bound_recv(Bound::Init)
        .map_err(step("bound the sync socket"))?;
    let attrs = crate::process::attrs::Attrs::of(
        process,
        c.record.personality.as_ref(),
        c.record.memory_policy.as_ref(),
    );
    attrs
        .validate()
        .map_err(|e| ExecError::Refused(e.to_string()))?;
    // The container's seccomp profile applies to exec'd processes too.
    let filter = c
        .record
        .seccomp
        .as_ref()
        .map(crate::seccomp::compile)
        .transpose()
        .map_err(|e| ExecError::Refused(format!("linux.seccomp: {e}")))?;
    // Joining a mount namespace puts a process at the namespace's root
    // mount, which is the container's root only when the runtime that
    // created it was not itself chrooted (pivot_root from a chroot leaves
    // the host's tree above the container's root in the namespace). The
    // init's own root is the container's in every case; runc lands the
    // process in the host's tree there.
    let root_path = format!("/proc/{}/root", c.record.pid);
    let root = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(&root_path)
        .map_err(step(format!("open {root_path}")))?;
    let cg = &c.record.cgroup_paths.with_sub_cgroups(&opts.sub_cgroups)?;
    // Rootless, the caller may be unable to move a process into the
    // container's cgroup (cgroup v2 asks for write access to the common
    // ancestor's cgroup.procs: a login shell's session scope and the
    // user's systemd meet only in root's user-<uid>.slice): the process
    // then stays in the caller's cgroup, as runc leaves it.
    let self_move = match cgroups::SelfMove::open(cg) {
        Err(cgroups::CgroupError::Write { source, .. }) if rootless_denied(&source) => {
            cgroups::SelfMove::default()
        }
        r => r?,
    };
    let child = Child {
        process,
        seccomp: filter.as_ref(),
        attrs,
        ns: &ns,
        console: console.as_ref(),
        preserve_fds: opts.preserve_fds,
        keyring: format!("_ses.{id}"),
        parent_pid: nix::unistd::getpid().as_raw(),
        cgroup_move: &self_move,
        root: &root,
    };
    crate::logging::step(|| {
        format!(
            "exec: container {id} loaded, {} namespaces to join",
            ns.join.len()
        )
    });
    let (cloned, parent_moves) = match super::clone_in_cgroup(0, cg) {
        Err(e) if rootless_denied(&e) => {
            crate::logging::debug(&format!(
                "exec: cannot join the container's cgroup ({e}); staying in this one, rootless"
            ));
            (sys::clone3(0, None).map_err(step("clone"))?, Vec::new())
        }
        r => r.map_err(step("clone"))?,
    };
    let intermediate = match cloned {
        Forked::Child => {
            drop(parent_end);
            intermediate(&child, &child_end)
        }
        Forked::Parent(pid) => pid,
    };
    drop(child_end);
    drop(self_move);
    let res = finish(
        &parent_moves,
        intermediate,
        &parent_end,
        process,
        filter.as_ref(),
        &c,
    );
    // It has reported (or failed) and exits; bounded, as it could be stuck
    // in a frozen cgroup.
    sys::kill_and_reap(intermediate, super::create::REAP_BOUND);
    res
}

/// A move into the container's cgroup the kernel refused to a rootless
/// caller (see [`exec`]): not an error.
fn rootless_denied(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) && crate::rootless::auto()
}

fn finish(
    parent_moves: &[PathBuf],
    intermediate: i32,
    chan: &Channel,
    process: &Process,
    seccomp: Option<&crate::seccomp::Filter>,
    container: &Container,
) -> Result<i32, ExecError> {
    let go = match cgroups::add_pid(parent_moves, intermediate) {
        Err(cgroups::CgroupError::Write { source, .. }) if rootless_denied(&source) => {
            crate::logging::debug(
                "exec: cannot join the container's cgroup; staying in this one, rootless",
            );
            Ok(())
        }
        r => r,
    };
    let go = go
        .map_err(ExecError::from)
        .and_then(|()| chan.send(&Msg::Go).map_err(step("release exec process")));
    if let Err(e) = go {
        let _ = kill(Pid::from_raw(intermediate), Signal::SIGKILL);
        return Err(e);
    }
    let pid = match chan.recv() {
        Ok(Some(Msg::Pid(p))) => p,
        Ok(Some(Msg::Error(e))) => return Err(ExecError::Child(e)),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            sys::kill_and_reap(intermediate, super::create::REAP_BOUND);
            return Err(ExecError::Child(Bound::Init.exceeded("the exec process")));
        }
        _ => {
            return Err(ExecError::Child(
                "the exec process exited during set-up".into(),
            ))
        }
    };
    if let Some(adj) = process.oom_score_adj {
        let written = crate::procfs::ProcFs::open().and_then(|proc| {
            proc.write(&format!("{pid}/oom_score_adj"), adj.to_string().as_bytes())
        });
        if let Err(e) = written {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
            return Err(step("set oom_score_adj")(e));
        }
    }
    crate::logging::step(|| format!("exec: process {pid} forked in the container's namespaces"));
    let _ = chan.send(&Msg::Go);
    let fail = |e: ExecError| {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        Err(e)
    };
    // The process's end of the channel is close-on-exec: EOF means exec'd.
    loop {
        match chan.recv() {
            Ok(None) => {
                crate::logging::step(|| format!("exec: process {pid} executed its program"));
                return Ok(pid);
            }
            Ok(Some(Msg::SeccompFd(n))) => {
                let Some(f) = seccomp else {
                    return fail(ExecError::Child("unexpected seccomp listener".into()));
                };
                let fd = match sys::fd_of_process(pid, n) {
                    Ok(fd) => fd,
                    Err(e) => {
                        return fail(ExecError::Child(format!(
                            "take the seccomp listener of pid {pid}: {e}"
                        )))
                    }
                };
                let state = container.record.hook_state(container.status);
                let sent = crate::seccomp::send_to_listener(
                    f.listener_path().unwrap_or_default(),
                    f.listener_metadata(),
                    fd.as_fd(),
                    pid,
                    &state,
                );
                if let Err(e) = sent {
                    return fail(ExecError::Child(format!("seccomp listener: {e}")));
                }
                let _ = chan.send(&Msg::Go);
            }
            Ok(Some(Msg::Error(e))) => {
                let _ = waitpid(Pid::from_raw(pid), None);
                return Err(ExecError::Child(e));
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                // Stuck before its exec (in a frozen cgroup it dies only
                // once thawed): killed, reaped if it can be.
                sys::kill_and_reap(pid, super::create::REAP_BOUND);
                return Err(ExecError::Child(Bound::Init.exceeded("the exec process")));
            }
            _ => {
                return fail(ExecError::Child(
                    "unexpected message from the exec process".into(),
                ))
            }
        }
    }
}

/// The intermediate: joins the namespaces, forks the process as a sibling
/// (so `corten exec` is its parent and reaps it), reports its pid, exits.
fn intermediate(c: &Child<'_>, chan: &Channel) -> ! {
    let res = (|| -> Result<i32, String> {
        prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| e.to_string())?;
        prctl::set_dumpable(false).map_err(|e| e.to_string())?;
        c.cgroup_move.move_self().map_err(|e| e.to_string())?;
        match chan.recv() {
            Ok(Some(Msg::Go)) => {}
            _ => return Err("corten exec went away".into()),
        }
        c.ns.join_all().map_err(|e| e.to_string())?;
        nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(c.root))
            .and_then(|()| nix::unistd::chroot("."))
            .and_then(|()| nix::unistd::chdir("/"))
            .map_err(|e| format!("enter the container's root: {e}"))?;
        match sys::clone3(sys::flag_bits(libc::CLONE_PARENT), None) {
            Ok(Forked::Child) => {
                let err = match process(c, chan) {
                    Ok(never) => match never {},
                    Err(e) => e.to_string(),
                };
                let _ = chan.send(&Msg::Error(err));
                sys::exit_child(1)
            }
            Ok(Forked::Parent(pid)) => Ok(pid),
            Err(e) => Err(format!("clone exec process: {e}")),
        }
    })();
    match res {
        Ok(pid) => {
            let _ = chan.send(&Msg::Pid(pid));
            sys::exit_child(0)
        }
        Err(e) => {
            let _ = chan.send(&Msg::Error(e));
            sys::exit_child(1)
        }
    }
}

/// The new process, inside every namespace: terminal, keyring, the
/// process set-up shared with the init, then exec.
fn process(c: &Child<'_>, chan: &Channel) -> Result<std::convert::Infallible, InitError> {
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(nstep("set parent-death signal"))?;
    if nix::unistd::getppid().as_raw() != c.parent_pid && nix::unistd::getppid().as_raw() != 0 {
        return Err(InitError::Orphaned);
    }
    prctl::set_dumpable(false).map_err(nstep("make non-dumpable"))?;
    // Wait until the parent has set oom_score_adj.
    match chan.recv() {
        Ok(Some(Msg::Go)) => {}
        _ => return Err(InitError::Orphaned),
    }
    c.attrs.apply_initial()?;
    let userns = c.ns.join.iter().any(|(k, _, _)| *k == NsKind::User);
    if let Some(sock) = c.console {
        nix::unistd::setsid().map_err(nstep("setsid"))?;
        let peer = crate::console::open_in_container(sock, c.process.console_size)?;
        crate::console::attach(peer)?;
    }
    match sys::join_session_keyring(&c.keyring) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {}
        r => r.map_err(|source| InitError::Step {
            op: "join session keyring".into(),
            source,
        })?,
    }
    let prepared =
        init::prepare_process(c.process, &c.attrs, c.seccomp, c.preserve_fds, userns, chan)?;
    prctl::set_pdeathsig(None).map_err(nstep("clear parent-death signal"))?;
    init::exec(&prepared.path, &c.process.args, &prepared.env)
}
