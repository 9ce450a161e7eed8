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

    /// The OCI state JSON as `corten state` prints it (owner `""`, as runc).
    pub fn oci_state(&self) -> serde_json::Value {
        self.record.oci_state(self.status, "")
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
        let state = c.record.hook_state(Status::Running).to_string();
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
    cgroups::set_frozen(&c.record.cgroup_paths, pause)?;
    Ok(())
}

/// Sends `sig` to the init, or with `all` to every process of the cgroup,
/// as runc does: the init only while it exists (`container not running`
/// otherwise); SIGKILL to a paused container thaws it so the signal takes
/// effect; `--all` on a stopped container whose cgroup is gone does nothing.
pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<(), ContainerError> {
    let c = Container::load(root, id)?;
    if all {
        if c.status == Status::Stopped && !c.record.cgroup_paths.values().any(|d| d.exists()) {
            return Ok(());
        }
        return Ok(cgroups::signal_all(&c.record.cgroup_paths, sig)?);
    }
    if c.status == Status::Stopped {
        return Err(ContainerError::Status("container not running".into()));
    }
    let pid = c.record.pid;
    let sent = match Signal::try_from(sig) {
        Ok(s) => send_signal(Pid::from_raw(pid), s),
        // 0 and real-time signals are not in nix's enum.
        // SAFETY: kill takes two integers and touches no memory.
        Err(_) => nix::errno::Errno::result(unsafe { libc::kill(pid, sig) }).map(drop),
    };
    sent.map_err(|source| ContainerError::Kill { sig, pid, source })?;
    if c.status == Status::Paused && sig == libc::SIGKILL {
        let _ = cgroups::set_frozen(&c.record.cgroup_paths, false);
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

/// Kills every process of the container and waits for the init.
fn kill_all(c: &Container) {
    if c.record.init_alive() {
        let _ = send_signal(Pid::from_raw(c.record.pid), Signal::SIGKILL);
    }
    let _ = cgroups::signal_all(&c.record.cgroup_paths, libc::SIGKILL);
    // A frozen (paused) process only dies once thawed.
    if cgroups::is_frozen(&c.record.cgroup_paths) {
        let _ = cgroups::set_frozen(&c.record.cgroup_paths, false);
    }
    wait_gone(&c.record, Duration::from_secs(10));
}

/// Deletes the container: its processes (with `force`, or when only
/// created), cgroup and state directory.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), ContainerError> {
    let c = match Container::load(root, id) {
        Ok(c) => c,
        Err(ContainerError::State(StateError::NotExist(_))) if force => {
            // Nothing recorded: remove a half-written directory, if any.
            let dir = StateDir::new(root, id)?;
            dir.remove()?;
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let _lock = c.dir.lock()?;
    match c.status {
        Status::Stopped => {
            if !c.record.own_pid_ns {
                // Without its own pid namespace, the init's exit leaves the
                // other processes running: end them as runc does.
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
    wait_cgroup_empty(&c);
    crate::logging::step(|| format!("container {id}: no process left"));
    if let Some(base) = c.record.host_mounts_base {
        crate::rootfs::unmount_to(&c.record.rootfs, base);
    }
    cgroups::remove(&c.record.cgroup_paths)?;
    c.dir.remove()?;
    crate::logging::step(|| format!("container {id}: cgroup and state directory removed"));
    if let Some(h) = c.record.hooks.as_ref().filter(|h| !h.poststop.is_empty()) {
        let state = c.record.hook_state(Status::Stopped).to_string();
        crate::hooks::run_all_warn("poststop", &h.poststop, &state);
    }
    Ok(())
}

fn wait_cgroup_empty(c: &Container) {
    let start = Instant::now();
    while !cgroups::pids(&c.record.cgroup_paths).is_empty()
        && start.elapsed() < Duration::from_secs(5)
    {
        for pid in cgroups::pids(&c.record.cgroup_paths) {
            let _ = send_signal(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
