//! Operations on an existing container: load, start, kill, delete.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill as send_signal, Signal};
use nix::unistd::Pid;

use crate::cgroups;
use crate::state::{Record, StateDir, StateError, Status};

/// Errors of container operations.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// State directory.
    #[error(transparent)]
    State(#[from] StateError),
    /// Cgroups.
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    /// An operation that needs another status.
    #[error("{0}")]
    Status(String),
    /// A signal could not be sent to the init (runc's words).
    #[error("unable to signal init: {source}")]
    Kill {
        /// Signal.
        sig: i32,
        /// Pid.
        pid: i32,
        /// Cause.
        source: nix::Error,
    },
    /// The exec fifo.
    #[error("{op} exec fifo: {source}")]
    Fifo {
        /// The step.
        op: &'static str,
        /// Cause.
        source: std::io::Error,
    },
}

/// A loaded container.
#[derive(Debug)]
pub struct Container {
    /// Its state directory.
    pub dir: StateDir,
    /// What was recorded at create.
    pub record: Record,
    /// Status now.
    pub status: Status,
}

impl Container {
    /// Loads container `id`.
    pub fn load(root: &Path, id: &str) -> Result<Container, ContainerError> {
        let dir = StateDir::new(root, id)?;
        let record = dir.load()?;
        let status = record.status(&dir);
        Ok(Container {
            dir,
            record,
            status,
        })
    }

    /// The OCI state as `corten state` prints it (owner `""`, as runc).
    pub fn container_state(&self) -> crate::state::ContainerState<'_> {
        self.record.container_state(self.status, "")
    }
}

/// Releases a created container's init.
pub fn start(root: &Path, id: &str) -> Result<(), ContainerError> {
    let c = Container::load(root, id)?;
    let _lock = c.dir.lock()?;
    match c.status {
        Status::Created => {}
        Status::Stopped => {
            return Err(ContainerError::Status(
                "cannot start a container that has stopped".into(),
            ))
        }
        Status::Paused => {
            return Err(ContainerError::Status(
                "cannot start a container in the paused state".into(),
            ))
        }
        _ => {
            return Err(ContainerError::Status(
                "cannot start an already running container".into(),
            ))
        }
    }
    let fifo = c.dir.fifo();
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ENXIO) => {
                ContainerError::Status("container not running: init process is gone".into())
            }
            _ => ContainerError::Fifo { op: "open", source },
        })?;
    f.write_all(b"0").map_err(|source| ContainerError::Fifo {
        op: "write",
        source,
    })?;
    std::fs::remove_file(&fifo).map_err(|source| ContainerError::Fifo {
        op: "remove",
        source,
    })?;
    crate::logging::step(|| format!("container {id} released through the exec fifo"));
    if let Some(h) = c.record.hooks.as_ref().filter(|h| !h.poststart.is_empty()) {
        // poststart runs after the user process is executed (runtime spec):
        // wait until the init no longer runs corten.
        wait_exec(&c.record, Duration::from_secs(10));
        let state = c.record.hook_state(Status::Running).to_json();
        crate::hooks::run_all_warn("poststart", &h.poststart, &state);
    }
    Ok(())
}

/// Freezes every process of a running container (`pause`), or thaws a
/// paused one (`resume`).
pub fn set_paused(root: &Path, id: &str, pause: bool) -> Result<(), ContainerError> {
    let c = Container::load(root, id)?;
    let _lock = c.dir.lock()?;
    // runc's words: pause needs a running (or created) container,
    // resume a paused one.
    match (pause, c.status) {
        (true, Status::Running | Status::Created) | (false, Status::Paused) => {}
        (true, _) => return Err(ContainerError::Status("container not running".into())),
        (false, _) => return Err(ContainerError::Status("container not paused".into())),
    }
    c.record.cgroup_paths.set_frozen(pause)?;
    Ok(())
}

/// Sends `sig` to the init, or with `all` to every process of the cgroup,
/// as runc does: the init only while it exists (`container not running`
/// otherwise); SIGKILL to a paused container thaws it so the signal takes
/// effect; `--all` on a stopped container whose cgroup is gone does nothing.
pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<(), ContainerError> {
    let c = Container::load(root, id)?;
    if all {
        if c.status == Status::Stopped && c.record.cgroup_paths.is_gone() {
            return Ok(());
        }
        let procs = Processes::of(&c.record);
        if procs.foreign == 0 {
            return Ok(c.record.cgroup_paths.signal_all(sig)?);
        }
        // A shared cgroup: signal only this container's processes (without
        // freezing, which would stop the others too).
        for pid in procs.own {
            crate::sys::signal(pid, sig);
        }
        return Ok(());
    }
    if matches!(c.status, Status::Stopped | Status::Creating) {
        return Err(ContainerError::Status("container not running".into()));
    }
    let pid = c.record.pid;
    crate::sys::kill(pid, sig).map_err(|source| ContainerError::Kill { sig, pid, source })?;
    if c.status == Status::Paused && sig == libc::SIGKILL {
        let _ = c.record.cgroup_paths.set_frozen(false);
    }
    Ok(())
}

/// Waits until the init has called execve (its executable is no longer
/// corten) or has gone.
fn wait_exec(rec: &Record, timeout: Duration) {
    let start = Instant::now();
    while rec.init_alive() && start.elapsed() < timeout && crate::sys::runs_corten(rec.pid) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until `pid` (with its start time) is gone or a zombie.
fn wait_gone(rec: &Record, timeout: Duration) -> bool {
    let start = Instant::now();
    while rec.init_alive() {
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// The processes of a container's cgroup (and the cgroups below it), told
/// apart by pid namespace: a cgroup can hold another container's processes
/// when two share a `cgroupsPath` (runc only warns), or someone else's in a
/// cgroup made before the container.
#[derive(Debug, Default)]
pub struct Processes {
    /// The container's: in its pid namespace, or in one below it when the
    /// namespace is the container's own.
    pub own: Vec<i32>,
    /// How many others.
    pub foreign: usize,
}

impl Processes {
    /// The processes of `rec`'s cgroup now. A record from before corten
    /// kept the pid namespace counts every process as the container's.
    pub fn of(rec: &Record) -> Processes {
        let all = rec.cgroup_paths.pids();
        let Some(ns) = rec.pid_ns else {
            return Processes {
                own: all,
                foreign: 0,
            };
        };
        let mut p = Processes::default();
        for pid in all {
            let own = match crate::sys::pid_ns_of(pid) {
                None => continue, // gone
                Some(n) if n == ns => true,
                Some(_) => rec.own_pid_ns && crate::sys::in_pid_ns_tree(pid, ns),
            };
            if own {
                p.own.push(pid);
            } else {
                p.foreign += 1;
            }
        }
        p
    }
}

/// Kills every process of the container and waits for them. In a cgroup
/// shared with other processes, only the container's are killed: the init
/// (the kernel ends the rest of a pid namespace of the container's own with
/// it), or each of them by pid.
fn kill_all(c: &Container) {
    if c.record.init_alive() {
        let _ = send_signal(Pid::from_raw(c.record.pid), Signal::SIGKILL);
    }
    if Processes::of(&c.record).foreign > 0 {
        let start = Instant::now();
        loop {
            let own = Processes::of(&c.record).own;
            if own.is_empty() || start.elapsed() > Duration::from_secs(10) {
                break;
            }
            // A pid namespace of its own empties itself (its processes may
            // still be listed while they exit); otherwise kill each.
            if !c.record.own_pid_ns || c.record.init_alive() {
                own.iter()
                    .for_each(|&pid| crate::sys::signal(pid, libc::SIGKILL));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        return;
    }
    let _ = c.record.cgroup_paths.signal_all(libc::SIGKILL);
    // A frozen (paused) process only dies once thawed.
    if c.record.cgroup_paths.is_frozen() {
        let _ = c.record.cgroup_paths.set_frozen(false);
    }
    wait_gone(&c.record, Duration::from_secs(10));
}

/// Deletes the container: its processes (with `force`, or when only
/// created), cgroup and state directory.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), ContainerError> {
    let dir = StateDir::new(root, id)?;
    // Locked first, so a `create` still running is waited for and the
    // status is read after it.
    let _lock = match dir.lock() {
        Ok(l) => l,
        // runc: `delete --force` of a container that does not exist succeeds.
        Err(StateError::NotExist(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let loaded = if force {
        dir.load_or_recover()
    } else {
        dir.load()
    };
    let record = match loaded {
        Ok(r) => r,
        Err(StateError::NotExist(_)) if force => {
            // Nothing recorded (a state directory from before corten wrote
            // its record first): remove it.
            dir.remove()?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let status = record.status(&dir);
    let c = Container {
        dir,
        record,
        status,
    };
    match c.status {
        Status::Stopped => {
            if !c.record.own_pid_ns || c.record.creator.is_some() {
                // Without its own pid namespace, the init's exit leaves the
                // other processes running: end them as runc does. Likewise
                // what a `create` that was killed left.
                kill_all(&c);
            }
        }
        Status::Created => kill_all(&c),
        s if force => {
            let _ = s;
            kill_all(&c);
        }
        s => {
            return Err(ContainerError::Status(format!(
                "cannot delete container {id} that is not stopped: {s}"
            )))
        }
    }
    let foreign = wait_cgroup_empty(&c);
    crate::logging::step(|| format!("container {id}: no process left"));
    if let Some(base) = c.record.host_mounts_base {
        crate::rootfs::unmount_to(&c.record.rootfs, base);
    }
    if foreign == 0 {
        c.record.cgroup_paths.remove()?;
    } else {
        // The last container in it (or its maker) removes it.
        crate::logging::step(|| {
            format!("container {id}: cgroup left in place, {foreign} other process(es) in it")
        });
    }
    c.dir.remove()?;
    crate::logging::step(|| format!("container {id}: cgroup and state directory removed"));
    if let Some(h) = c.record.hooks.as_ref().filter(|h| !h.poststop.is_empty()) {
        let state = c.record.hook_state(Status::Stopped).to_json();
        crate::hooks::run_all_warn("poststop", &h.poststop, &state);
    }
    Ok(())
}

/// Kills what is left of the container in its cgroup until none is (at
/// most 5 s) and returns how many other processes the cgroup holds.
fn wait_cgroup_empty(c: &Container) -> usize {
    let start = Instant::now();
    loop {
        let procs = Processes::of(&c.record);
        if procs.own.is_empty() || start.elapsed() > Duration::from_secs(5) {
            return procs.foreign;
        }
        for pid in procs.own {
            crate::sys::signal(pid, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
