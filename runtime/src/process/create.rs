//! The parent side of `create`: validate, record, clone the init, map its
//! ids, place it in its cgroup, wait until it is ready, save the state.

use std::fs;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;

use super::init::{self, InitArgs};
use super::namespaces::{NsKind, NsPlan};
use super::sync::{Channel, Msg};
use crate::bounds::Bound;
use crate::cgroups;
use crate::plan::Plan;
use crate::procfs::ProcFs;
use crate::spec::Spec;
use crate::state::{pid_start_time, Record};
use crate::sys::{self, Forked};

/// Options of `create` (and `run`) beyond the bundle.
#[derive(Debug, Default, Clone)]
pub struct CreateOpts {
    /// `--console-socket`.
    pub console_socket: Option<PathBuf>,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`: keep the caller's session keyring.
    pub no_new_keyring: bool,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// `--systemd-cgroup`.
    pub systemd_cgroup: bool,
    /// `--cgroup-manager disabled`: no cgroup, resources not applied.
    pub cgroups_disabled: bool,
    /// `--rootless` as given (`true`, `false`, `auto` or absent). Checked
    /// as runc checks it, after the config is read; corten runs containers
    /// as root only so far, so a valid value changes nothing yet.
    pub rootless: Option<String>,
}

/// Errors of `create`.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The bundle's config.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// State directory.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// Cgroups.
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    /// A prestart or createRuntime hook.
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    /// Namespaces.
    #[error(transparent)]
    Ns(#[from] super::namespaces::NsError),
    /// Console socket.
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    /// The rootfs is missing.
    #[error("invalid rootfs: stat {path}: {source}")]
    Rootfs {
        /// The path.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// A step of the parent.
    #[error("{op}: {source}")]
    Step {
        /// The step.
        op: String,
        /// Cause.
        source: io::Error,
    },
    /// The init reported a failure.
    #[error("unable to start container process: {0}")]
    Init(String),
    /// `terminal` without a console socket or the reverse.
    #[error("{0}")]
    Usage(&'static str),
    /// A configuration corten refuses on this host.
    #[error("{0}")]
    Refused(String),
}

pub(crate) fn step(op: impl Into<String>) -> impl FnOnce(io::Error) -> CreateError {
    let op = op.into();
    move |source| CreateError::Step { op, source }
}

/// A container the parent has created: enough to wait for or clean it up.
#[derive(Debug)]
pub struct Created {
    /// The init's host pid.
    pub pid: i32,
}

/// Creates container `id` from `bundle` under the state root `root`.
///
/// On any failure everything done so far is undone: the init is killed, the
/// cgroup and the state directory are removed. Mounts live only in the
/// init's mount namespace and vanish with it.
pub fn create(
    root: &Path,
    id: &str,
    bundle: &Path,
    opts: &CreateOpts,
) -> Result<Created, CreateError> {
    create_planned(root, Plan::new(root, id, bundle, opts.clone())?)
}

/// [`create`] from a [`Plan`].
pub fn create_planned(root: &Path, plan: Plan) -> Result<Created, CreateError> {
    let (spec, dir, opts) = (&plan.spec, &plan.dir, &plan.opts);
    let id = dir.id.as_str();
    let console = opts
        .console_socket
        .as_deref()
        .map(crate::console::connect)
        .transpose()?;
    // Counted now, before the init can mount anything (see the function).
    let _ = host_mounts_base(&plan.ns, &plan.rootfs);
    dir.create(root)?;
    let lock = dir.lock()?;
    crate::logging::step(|| format!("state directory {} created", dir.path.display()));
    let mut cg = cgroups::Cgroup::default();
    let res = (|| {
        let planned = if opts.cgroups_disabled {
            cgroups::Cgroup::default()
        } else {
            cgroups::plan(
                spec.linux().cgroups_path.as_deref(),
                id,
                opts.systemd_cgroup,
            )?
        };
        if !plan.ns.creates(NsKind::Pid) {
            refuse_indistinguishable(&planned, &plan.ns)?;
        }
        // Recorded before it exists: whatever happens to this process from
        // here on, `delete` finds what to remove.
        // Until the init exists, a cgroup this `create` makes holds only its
        // processes; in one that existed before, none is taken for its own
        // (the sentinel namespace matches no process).
        let preexisting = !planned.is_gone();
        dir.save(&Record {
            pid_ns: preexisting.then_some((0, 0)),
            ..new_record(&plan, &planned)
        })?;
        if opts.cgroups_disabled {
            if spec
                .linux()
                .resources
                .as_ref()
                .is_some_and(|r| r.has_limits())
            {
                crate::logging::warn("--cgroup-manager disabled: linux.resources is not applied");
            }
        } else if opts.systemd_cgroup {
            // systemd makes the scope once the init exists (`finish`).
            cg = planned;
        } else {
            match planned.create() {
                Ok(made) => {
                    cg = made;
                    if let Some(res) = &spec.linux().resources {
                        cgroups::resources::apply_writes(&cg, &plan.cgroup_writes, res)?;
                    }
                    crate::logging::step(|| {
                        format!(
                            "cgroup created and limited: {:?}",
                            cg.dirs().collect::<Vec<_>>()
                        )
                    });
                }
                Err(e) if rootless_without_cgroup(&plan, &e)? => {
                    // As runc: a rootless container that asks for no limits
                    // and names no cgroup runs in its caller's cgroups.
                    crate::logging::debug(&format!("rootless: no cgroup ({e})"));
                    dir.save(&new_record(&plan, &cgroups::Cgroup::default()))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        nix::unistd::mkfifo(&dir.fifo(), nix::sys::stat::Mode::from_bits_truncate(0o622))
            .map_err(|e| step("mkfifo exec.fifo")(e.into()))?;
        spawn(&plan, &cg, &lock, console.as_ref())
    })();
    match res {
        Ok(c) => Ok(c),
        Err(e) => {
            if let Some(base) = host_mounts_base(&plan.ns, &plan.rootfs) {
                crate::rootfs::unmount_to(&plan.rootfs, base);
            }
            if opts.systemd_cgroup {
                let _ = cgroups::systemd::stop_scope(&cg);
            }
            let _ = cg.remove();
            let _ = dir.remove();
            // runtime.md lifecycle: a failed create still ends with the
            // poststop hooks (failures only warned about).
            if let Some(h) = spec.hooks.as_ref().filter(|h| !h.poststop.is_empty()) {
                let state = plan.hook_state(crate::state::Status::Stopped, 0).to_json();
                crate::hooks::run_all_warn("poststop", &h.poststop, &state);
            }
            Err(e)
        }
    }
}

/// Whether a rootless `create` goes on without a cgroup after `e`: the
/// user may not make one (permission), the config names none, and asks for
/// no limits; with limits, runc's refusal.
fn rootless_without_cgroup(plan: &Plan, e: &cgroups::CgroupError) -> Result<bool, CreateError> {
    let denied = matches!(e.io_errno(), Some(libc::EACCES | libc::EPERM | libc::EROFS));
    if !plan.rootless || !denied {
        return Ok(false);
    }
    let limits = plan
        .spec
        .linux()
        .resources
        .as_ref()
        .is_some_and(|r| r.has_limits());
    let named = plan
        .spec
        .linux()
        .cgroups_path
        .as_deref()
        .is_some_and(|p| !p.is_empty());
    if limits {
        return Err(CreateError::Refused(format!(
            "rootless container cannot apply linux.resources: {e} (a cgroup this user may write is needed: cgroup v2 delegation, or the systemd user instance)"
        )));
    }
    Ok(!named)
}

fn spawn(
    plan: &Plan,
    cg: &crate::cgroups::Cgroup,
    lock: &fs::File,
    console: Option<&UnixStream>,
) -> Result<Created, CreateError> {
    let (ns, dir) = (&plan.ns, &plan.dir);
    let (parent_end, child_end) = Channel::pair().map_err(step("create sync socket"))?;
    parent_end
        .bound_recv(Bound::Init)
        .map_err(step("bound the sync socket"))?;
    // v1: the init moves itself into its cgroups (see SelfMove); under
    // systemd they exist only once the scope starts (`finish`).
    let self_move = if plan.opts.systemd_cgroup {
        cgroups::SelfMove::default()
    } else {
        cgroups::SelfMove::open(cg)?
    };
    let fifo = fs::OpenOptions::new()
        .read(true)
        .write(true) // std opens with O_CLOEXEC
        .open(dir.fifo())
        .map_err(step("open exec.fifo"))?;
    // In a new user namespace the init could not reach every source, nor
    // idmap any.
    let linux = plan.spec.linux();
    let bind_trees = crate::rootfs::mounts::prepare_trees(
        &plan.spec.mounts,
        &plan.bundle,
        (&linux.uid_mappings, &linux.gid_mappings),
        ns.creates(NsKind::User),
    )
    .map_err(|(op, e)| step(op)(e))?;
    let args = InitArgs {
        plan,
        bind_trees: &bind_trees,
        cgroup_paths: cg,
        fifo: std::os::fd::AsRawFd::as_raw_fd(&fifo),
        console_socket: console,
        session_keyring: (!plan.opts.no_new_keyring).then(|| format!("_ses.{}", dir.id)),
        parent_pid: nix::unistd::getpid().as_raw(),
        state_lock: std::os::fd::AsRawFd::as_raw_fd(lock),
        cgroup_move: &self_move,
        unprivileged_maps: ns.creates(NsKind::User) && !nix::unistd::geteuid().is_root(),
    };
    let fast = ns.single_clone();
    let flags = if fast { ns.clone_flags() } else { 0 };
    // On cgroup v2 the first child is born in the container's cgroup, and
    // the init (or the intermediate's child) inherits it.
    let (cloned, parent_moves) = super::clone_in_cgroup(flags, cg).map_err(step("clone init"))?;
    let first = match cloned {
        Forked::Child => {
            drop(parent_end);
            // The child's copy of the lock descriptor, which nothing in the
            // child uses; the parent's copy stays open.
            let _ = nix::unistd::close(args.state_lock);
            if fast {
                init::run(&args, &child_end)
            } else {
                intermediate(&args, &child_end)
            }
        }
        Forked::Parent(pid) => pid,
    };
    drop(child_end);
    drop(self_move);
    crate::logging::step(|| {
        format!(
            "init cloned (pid {first}, {})",
            if fast {
                "one clone3"
            } else {
                "through an intermediate"
            }
        )
    });
    let pid = if fast {
        first
    } else {
        let p = match parent_end.recv() {
            Ok(Some(Msg::Pid(p))) => Ok(p),
            Ok(Some(Msg::Error(e))) => Err(CreateError::Init(e)),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(CreateError::Init(
                Bound::Init.exceeded("the intermediate process"),
            )),
            _ => Err(CreateError::Init(
                "init process exited during set-up".into(),
            )),
        };
        // It has reported (or failed) and exits; bounded, as it could be
        // stuck in a frozen cgroup.
        sys::kill_and_reap(first, REAP_BOUND);
        p?
    };
    let res = finish(plan, cg, &parent_moves, pid, &parent_end);
    if res.is_err() {
        // A frozen init (a cgroup frozen behind corten's back) would not
        // die, nor be reaped, until thawed.
        if cg.is_frozen() {
            let _ = cg.set_frozen(false);
        }
        sys::kill_and_reap(pid, REAP_BOUND);
    }
    res
}

/// How long a failed `create` or `exec` waits for the process it killed
/// to be reaped (it is stuck only in a cgroup frozen behind corten's back).
pub(crate) const REAP_BOUND: std::time::Duration = std::time::Duration::from_secs(2);

/// The intermediate process used when namespaces are joined by path or a
/// time namespace is created: join, unshare, fork the init as a sibling
/// (`CLONE_PARENT`), report its pid, exit.
fn intermediate(args: &InitArgs<'_>, chan: &Channel) -> ! {
    let res = (|| -> Result<i32, String> {
        let ns = &args.plan.ns;
        ns.join_all().map_err(|e| e.to_string())?;
        NsPlan::unshare(ns.clone_flags()).map_err(|e| e.to_string())?;
        if ns.creates(NsKind::Time) {
            init::write_time_offsets(&args.plan.spec).map_err(|e| e.to_string())?;
        }
        match sys::clone3(sys::flag_bits(libc::CLONE_PARENT), None) {
            Ok(Forked::Child) => init::run(args, chan),
            Ok(Forked::Parent(pid)) => Ok(pid),
            Err(e) => Err(format!("clone init: {e}")),
        }
    })();
    let code = match res {
        Ok(pid) => {
            let _ = chan.send(&Msg::Pid(pid));
            0
        }
        Err(e) => {
            let _ = chan.send(&Msg::Error(e));
            1
        }
    };
    crate::sys::exit_child(code)
}

/// The procfs handle for the parent's writes, opened only when needed.
fn parent_procfs(cell: &mut Option<ProcFs>) -> Result<&ProcFs, CreateError> {
    if cell.is_none() {
        *cell = Some(ProcFs::open().map_err(step("open a procfs handle"))?);
    }
    Ok(cell.as_ref().expect("set above"))
}

fn finish(
    plan: &Plan,
    cg: &crate::cgroups::Cgroup,
    parent_moves: &[PathBuf],
    pid: i32,
    chan: &Channel,
) -> Result<Created, CreateError> {
    let (spec, ns, dir, opts) = (&plan.spec, &plan.ns, &plan.dir, &plan.opts);
    let mut proc = None;
    if ns.creates(NsKind::User) {
        let proc = parent_procfs(&mut proc)?;
        let linux = spec.linux();
        super::idmap::write_maps(proc, pid, &linux.uid_mappings, &linux.gid_mappings)
            .map_err(step("set the user namespace's id maps"))?;
    }
    if opts.systemd_cgroup && !opts.cgroups_disabled {
        // The scope, with the init in it, then the limits in its directory.
        cgroups::systemd::start(
            cg,
            pid,
            &format!("corten container {}", dir.id),
            spec.linux().resources.as_ref(),
        )?;
        if let Some(res) = &spec.linux().resources {
            cgroups::resources::apply_writes(cg, &plan.cgroup_writes, res)?;
        }
    } else {
        cgroups::add_pid(parent_moves, pid)?;
    }
    if let Some(adj) = spec.process().oom_score_adj {
        let proc = parent_procfs(&mut proc)?;
        proc.write(&format!("{pid}/oom_score_adj"), adj.to_string().as_bytes())
            .map_err(|e| {
                let hint = if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) {
                    " (lowering it needs CAP_SYS_RESOURCE)"
                } else {
                    ""
                };
                step(format!("set oom_score_adj to {adj}{hint}"))(e)
            })?;
    }
    if let Err(e) = chan.send(&Msg::Go) {
        // The init died before it was released (the OOM killer, at a memory
        // limit below what it needs, can be that fast): say why, as when it
        // dies a moment later.
        if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) {
            return Err(CreateError::Init(exit_reason(pid, cg, spec)));
        }
        return Err(step("release init")(e));
    }
    crate::logging::step(|| "id maps, cgroup and oom_score_adj set; init released".into());
    let state = |status| plan.hook_state(status, pid);
    loop {
        let msg = match chan.recv() {
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(CreateError::Init(Bound::Init.exceeded("container init")))
            }
            r => r.ok().flatten(),
        };
        match msg {
            Some(Msg::Created) => {
                crate::logging::step(|| "init reports the container created".into());
                break;
            }
            Some(Msg::SeccompFd(n)) => {
                // The init's seccomp notify listener: take it, hand it to
                // the agent, then let the init go on.
                let Some(f) = &plan.seccomp else {
                    return Err(CreateError::Init("unexpected seccomp listener".into()));
                };
                let fd = crate::sys::fd_of_process(pid, n)
                    .map_err(step(format!("take the seccomp listener of pid {pid}")))?;
                let path = f.listener_path().unwrap_or_default();
                crate::seccomp::send_to_listener(
                    path,
                    f.listener_metadata(),
                    std::os::fd::AsFd::as_fd(&fd),
                    pid,
                    &state(crate::state::Status::Creating),
                )
                .map_err(|e| CreateError::Init(format!("seccomp listener: {e}")))?;
                chan.send(&Msg::Go)
                    .map_err(step("resume init after seccomp"))?;
            }
            Some(Msg::Hooks) => {
                // The namespaces and mounts exist: prestart and createRuntime
                // hooks, in the runtime's namespaces.
                let state = state(crate::state::Status::Creating).to_json();
                if let Some(h) = &spec.hooks {
                    crate::hooks::run_all(&h.prestart, &state)?;
                    crate::hooks::run_all(&h.create_runtime, &state)?;
                }
                chan.send(&Msg::Pid(pid))
                    .map_err(step("resume init after hooks"))?;
            }
            Some(Msg::Error(e)) => return Err(CreateError::Init(e)),
            _ => return Err(CreateError::Init(exit_reason(pid, cg, spec))),
        }
    }
    let rec = Record {
        pid,
        pid_start_time: pid_start_time(pid).unwrap_or_default(),
        pid_ns: crate::sys::pid_ns_of(pid),
        creator: None,
        ..new_record(plan, cg)
    };
    dir.save(&rec)?;
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, pid)?;
    }
    crate::logging::step(|| "state.json and pid file written".into());
    chan.send(&Msg::Detach).map_err(step("detach init"))?;
    // The init closes its end once its parent-death signal is cleared.
    let _ = chan.recv();
    Ok(Created { pid })
}

/// A container without a pid namespace of its own can share an existing
/// cgroup only with processes of other pid namespaces: `kill --all` and
/// `delete` tell the container's processes from the others by their pid
/// namespace (see [`crate::container::Processes`]), and could not here.
/// (runc accepts it with a warning, and its `delete` then kills them all.)
fn refuse_indistinguishable(
    planned: &crate::cgroups::Cgroup,
    ns: &NsPlan,
) -> Result<(), CreateError> {
    let joined = ns.join.iter().find(|(k, _, _)| *k == NsKind::Pid);
    let target = match joined {
        Some((_, _, f)) => crate::sys::fstat(std::os::fd::AsFd::as_fd(f))
            .map(|st| (st.st_dev, st.st_ino))
            .ok(),
        None => crate::sys::pid_ns_of(i32::try_from(std::process::id()).unwrap_or(0)),
    };
    let Some(target) = target else {
        return Ok(());
    };
    let same = planned
        .pids()
        .into_iter()
        .filter(|&pid| crate::sys::pid_ns_of(pid) == Some(target))
        .count();
    if same > 0 {
        return Err(CreateError::Refused(format!(
            "container's cgroup is not empty: {same} process(es) found in the pid namespace \
             the container would share with them; without a pid namespace of its own it \
             cannot share a cgroup with them (its kill --all and delete could not tell its \
             processes apart)"
        )));
    }
    Ok(())
}

/// The record of a container whose init does not exist yet (`pid` 0, this
/// process as its creator); `finish` fills in the init.
fn new_record(plan: &Plan, cg: &crate::cgroups::Cgroup) -> Record {
    let (spec, ns, rootfs) = (&plan.spec, &plan.ns, &plan.rootfs);
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    Record {
        oci_version: spec.oci_version.clone(),
        id: plan.dir.id.clone(),
        pid: 0,
        pid_start_time: 0,
        bundle: plan.bundle.clone(),
        rootfs: rootfs.to_path_buf(),
        created: crate::logging::rfc3339_now(true),
        annotations: spec.annotations.clone(),
        cgroup_paths: cg.clone(),
        own_pid_ns: ns.creates(NsKind::Pid),
        host_mounts_base: host_mounts_base(ns, rootfs),
        systemd_cgroup: plan.opts.systemd_cgroup,
        process: spec.process.clone(),
        seccomp: spec.linux().seccomp.clone(),
        hooks: spec.hooks.clone(),
        personality: spec.linux().personality.clone(),
        memory_policy: spec.linux().memory_policy.clone(),
        pid_ns: None,
        creator: pid_start_time(me).map(|t| (me, t)),
    }
}

/// For a container without a mount namespace: the mounts its rootfs had
/// before corten's. Counted once per process, on the first call, which
/// `create` makes before the clone; later calls return that count.
fn host_mounts_base(ns: &NsPlan, rootfs: &Path) -> Option<usize> {
    static BASE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    (!ns.has(NsKind::Mount)).then(|| *BASE.get_or_init(|| crate::rootfs::mounts_at(rootfs)))
}

fn exit_reason(pid: i32, cg: &crate::cgroups::Cgroup, spec: &Spec) -> String {
    // The channel closes as the init exits, a moment before its status is
    // there to take: wait for it, briefly.
    let status = sys::reap_within(pid, REAP_BOUND);
    match status {
        Ok(WaitStatus::Exited(_, c)) => format!("init exited with status {c} during set-up"),
        Ok(WaitStatus::Signaled(_, Signal::SIGKILL, _))
            if cgroups::stats::oom_kills(cg).is_some_and(|n| n > 0) =>
        {
            // The limit was set before the init joined (runc sets it after,
            // and fails with the usage: `unable to set memory limit …`).
            let limit = spec
                .linux()
                .resources
                .as_ref()
                .and_then(|r| r.memory.as_ref()?.limit)
                .map(|l| format!(" of {l} bytes"))
                .unwrap_or_default();
            format!(
                "init killed by the OOM killer during set-up: the memory limit{limit} \
                 (linux.resources.memory.limit) is below what the container needs to start"
            )
        }
        Ok(WaitStatus::Signaled(_, s, _)) => format!("init killed by {s} during set-up"),
        _ => "init process exited during set-up".to_string(),
    }
}

/// Writes the pid file as runc does: the digits (no newline) into
/// `.<name>` beside it, created exclusively, then renamed over `<name>`;
/// a relative path is taken from the current directory.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), CreateError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(step("getcwd"))?.join(path)
    };
    let name = abs.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = abs.with_file_name(format!(".{}", name.unwrap_or_default()));
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_SYNC)
        .mode(0o666)
        .open(&tmp)
        .map_err(step(format!("open {}", tmp.display())))?;
    f.write_all(pid.to_string().as_bytes())
        .map_err(step(format!("write {}", tmp.display())))?;
    drop(f);
    fs::rename(&tmp, &abs).map_err(step(format!("rename {} {}", tmp.display(), abs.display())))
}
