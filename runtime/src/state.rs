//! The on-disk container record: `<root>/<id>/state.json`, the exec fifo and
//! the lock, and the status derived from them and from the live process.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

/// Name of the fifo that `start` opens to release the init.
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";
/// A second copy of the record, written after `state.json`: what `delete
/// --force` goes by when `state.json` is damaged.
const RECOVERY_FILE: &str = ".state.json.recovery";

/// Errors from the state directory.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Invalid container id.
    #[error("invalid container ID format: {0:?}")]
    InvalidId(String),
    /// No such container (runc's exact words, which clients match).
    #[error("container does not exist")]
    NotExist(String),
    /// The id is taken (runc's words).
    #[error("container with given ID already exists")]
    Exists(String),
    /// I/O on a state file.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// A damaged record that cannot be recovered: what to do about it.
    #[error("{0}")]
    Damaged(String),
    /// Another corten command held the container's lock too long.
    #[error("{0}")]
    Busy(String),
    /// A corrupt state file.
    #[error("parse {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
}

/// The process holding a `flock` on `f`, from `/proc/locks`
/// (`1: FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> 0 EOF`).
fn lock_holder(f: &File) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let md = f.metadata().ok()?;
    let (major, minor) = (libc::major(md.dev()), libc::minor(md.dev()));
    let id = format!("{major:02x}:{minor:02x}:{}", md.ino());
    let locks = fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.get(1) == Some(&"FLOCK") && w.get(5) == Some(&id.as_str()))
            .then(|| w.get(4)?.parse().ok())
            .flatten()
    })
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Container status, as the OCI state reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created.
    Creating,
    /// Created, waiting for `start`.
    Created,
    /// The user process runs.
    Running,
    /// Frozen.
    Paused,
    /// The process has exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What corten stores about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Spec version of the bundle.
    pub oci_version: String,
    /// Container id.
    pub id: String,
    /// Host pid of the init.
    pub pid: i32,
    /// Start time of the init (field 22 of `/proc/<pid>/stat`), so a reused
    /// pid is never mistaken for the container.
    pub pid_start_time: u64,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Annotations of the config.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The cgroup corten created (recorded as runc's per-hierarchy map).
    #[serde(default)]
    pub cgroup_paths: crate::cgroups::Cgroup,
    /// Whether the container has its own pid namespace.
    #[serde(default)]
    pub own_pid_ns: bool,
    /// Without a mount namespace of its own, the container's mounts are in
    /// the caller's: how many mounts the rootfs had before them, to detach
    /// the rest on delete (`crate::rootfs::unmount_to`).
    #[serde(default)]
    pub host_mounts_base: Option<usize>,
    /// Whether `--systemd-cgroup` was used.
    #[serde(default)]
    pub systemd_cgroup: bool,
    /// The config's `process`: what `exec` starts from (as runc keeps the
    /// config in its state, so later edits of config.json do not matter).
    #[serde(default)]
    pub process: Option<crate::spec::Process>,
    /// The config's `linux.seccomp`, applied to exec'd processes too.
    #[serde(default)]
    pub seccomp: Option<crate::spec::Seccomp>,
    /// The config's `linux.personality` and `linux.memoryPolicy`, which
    /// exec'd processes get too.
    #[serde(default)]
    pub personality: Option<crate::spec::attrs::Personality>,
    /// See `personality`.
    #[serde(default)]
    pub memory_policy: Option<crate::spec::attrs::MemoryPolicy>,
    /// The config's hooks (poststart runs at `start`, poststop at `delete`).
    #[serde(default)]
    pub hooks: Option<crate::spec::Hooks>,
    /// The init's pid namespace: a process of the cgroup belongs to the
    /// container when it lives in it (or, with a pid namespace of the
    /// container's own, below it), so that `kill --all` and `delete` never
    /// touch another container that shares the cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_ns: Option<crate::sys::NsId>,
    /// While `create` runs (`pid` is 0): the `corten create` process, as pid
    /// and start time. The record is written before anything else exists,
    /// so a `create` killed at any point leaves a record `delete` can undo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<(i32, u64)>,
}

/// Checks a container id like runc: letters, digits, `_ + - .`, not `.`/`..`.
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidId(id.to_string()))
    }
}

/// A container's state directory.
#[derive(Debug)]
pub struct StateDir {
    /// `<root>/<id>`.
    pub path: PathBuf,
    /// The id.
    pub id: String,
}

impl StateDir {
    /// The directory of `id` under `root` (not checked to exist).
    pub fn new(root: &Path, id: &str) -> Result<StateDir, StateError> {
        validate_id(id)?;
        Ok(StateDir {
            path: root.join(id),
            id: id.to_string(),
        })
    }

    /// Creates the directory atomically; fails if the id is taken.
    pub fn create(&self, root: &Path) -> Result<(), StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
            .map_err(io_err("mkdir", root))?;
        match fs::DirBuilder::new().mode(0o711).create(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(StateError::Exists(self.id.clone()))
            }
            Err(e) => Err(io_err("mkdir", &self.path)(e)),
        }
    }

    /// Takes an exclusive lock on the directory, held until the file drops.
    /// Waits for another corten command on the container at most
    /// `Bound::Lock`: a `create` stopped by a
    /// debugger, or stuck on a hook with no timeout, holds it.
    pub fn lock(&self) -> Result<Flock<File>, StateError> {
        let mut f = File::open(&self.path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StateError::NotExist(self.id.clone())
            } else {
                io_err("open", &self.path)(e)
            }
        })?;
        let bound = crate::bounds::Bound::Lock;
        let deadline = std::time::Instant::now() + bound.get();
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            f = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => return Ok(locked),
                Err((f, nix::Error::EWOULDBLOCK)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                    f
                }
                Err((f, nix::Error::EWOULDBLOCK)) => {
                    let holder = lock_holder(&f)
                        .map(|p| format!(" (pid {p})"))
                        .unwrap_or_default();
                    return Err(StateError::Busy(bound.exceeded(&format!(
                        "container {} is locked by another corten command{holder}",
                        self.id
                    ))));
                }
                Err((f, nix::Error::EINTR)) => f,
                Err((_, e)) => return Err(io_err("lock", &self.path)(e.into())),
            }
        }
    }

    /// Path of the exec fifo.
    pub fn fifo(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// Loads the record.
    pub fn load(&self) -> Result<Record, StateError> {
        self.load_file(STATE_FILE)
    }

    /// Loads the record; if `state.json` is damaged (unreadable or not a
    /// record), the recovery copy, with a warning. For `delete --force`,
    /// which must be able to remove a container whatever happened to its
    /// `state.json`.
    pub fn load_or_recover(&self) -> Result<Record, StateError> {
        match self.load() {
            Err(e @ (StateError::Parse { .. } | StateError::Io { .. })) => {
                let rec = self
                    .load_file(RECOVERY_FILE)
                    .map_err(|_| e_with_hint(&e, self))?;
                crate::logging::warn(&format!("{e}: using the copy {RECOVERY_FILE}"));
                Ok(rec)
            }
            // state.json removed: the copy, if there is one.
            Err(e @ StateError::NotExist(_)) => match self.load_file(RECOVERY_FILE) {
                Ok(rec) => {
                    crate::logging::warn(&format!(
                        "{} has no {STATE_FILE}: using the copy {RECOVERY_FILE}",
                        self.path.display()
                    ));
                    Ok(rec)
                }
                Err(_) => Err(e),
            },
            other => other,
        }
    }

    fn load_file(&self, name: &str) -> Result<Record, StateError> {
        let p = self.path.join(name);
        let data = fs::read(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StateError::NotExist(self.id.clone())
            } else {
                io_err("read", &p)(e)
            }
        })?;
        serde_json::from_slice(&data).map_err(|source| StateError::Parse { path: p, source })
    }

    /// Writes the record atomically (temp file + rename), then its recovery
    /// copy the same way.
    pub fn save(&self, rec: &Record) -> Result<(), StateError> {
        let data = serde_json::to_vec(rec).map_err(|source| StateError::Parse {
            path: self.path.join(STATE_FILE),
            source,
        })?;
        self.write_atomic(STATE_FILE, &data)?;
        self.write_atomic(RECOVERY_FILE, &data)
    }

    fn write_atomic(&self, name: &str, data: &[u8]) -> Result<(), StateError> {
        let p = self.path.join(name);
        let tmp = self.path.join(format!(".{name}.tmp"));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        f.write_all(data).map_err(io_err("write", &tmp))?;
        fs::rename(&tmp, &p).map_err(io_err("rename", &p))
    }

    /// Removes the directory and everything in it.
    pub fn remove(&self) -> Result<(), StateError> {
        match fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &self.path)(e)),
            _ => Ok(()),
        }
    }
}

/// `e` (a damaged `state.json` without a usable copy) with what the operator
/// has to remove by hand.
fn e_with_hint(e: &StateError, dir: &StateDir) -> StateError {
    StateError::Damaged(format!(
        "{e}; no usable copy either: the container's processes and cgroups cannot be found \
         from it: end them by hand (its cgroup is usually named after the id {:?}), then \
         remove {}",
        dir.id,
        dir.path.display()
    ))
}

/// Start time (clock ticks since boot) of `pid`, or `None` if it is gone or a zombie.
pub fn pid_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // fields[0] is the state (field 3); start time is field 22.
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl Record {
    /// Whether the recorded init still runs (same pid and start time).
    pub fn init_alive(&self) -> bool {
        self.pid > 0 && pid_start_time(self.pid) == Some(self.pid_start_time)
    }

    /// The status derived from the live system.
    pub fn status(&self, dir: &StateDir) -> Status {
        if let Some((pid, start)) = self.creator {
            // Recorded before the init exists: creating while the `create`
            // that wrote it runs, stopped (to be deleted) once it is gone.
            return if pid_start_time(pid) == Some(start) {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        if !self.init_alive() {
            return Status::Stopped;
        }
        // Frozen before anything else, as runc: a paused created container
        // is `paused` (and `resume` brings it back to `created`).
        if self.cgroup_paths.is_frozen() {
            return Status::Paused;
        }
        if dir.fifo().exists() {
            return Status::Created;
        }
        Status::Running
    }

    /// The pid the state reports: 0 once stopped, as runc.
    fn reported_pid(&self, status: Status) -> i32 {
        if status == Status::Stopped {
            0
        } else {
            self.pid
        }
    }

    /// The state `corten state` and `list --format json` print. `owner` is
    /// given by the caller: runc's `state` prints `""`, its `list` the
    /// owner's name.
    pub fn container_state<'a>(&'a self, status: Status, owner: &'a str) -> ContainerState<'a> {
        ContainerState {
            oci_version: &self.oci_version,
            id: &self.id,
            pid: self.reported_pid(status),
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: &self.annotations,
            owner,
        }
    }

    /// The state given to hooks and to a seccomp agent.
    pub fn hook_state(&self, status: Status) -> HookState<'_> {
        HookState {
            oci_version: &self.oci_version,
            id: &self.id,
            status,
            pid: self.reported_pid(status),
            bundle: &self.bundle,
            annotations: &self.annotations,
        }
    }
}

/// runc's `containerState`, what `state` and `list --format json` print:
/// its fields in runc's order, `annotations` left out when empty
/// (`omitempty`). Hooks get the other shape, [`HookState`]: runc encodes
/// the two differently (order of `pid`, `rootfs`/`created`/`owner`), and
/// clients compare the text.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState<'a> {
    /// Spec version of the bundle.
    pub oci_version: &'a str,
    /// Container id.
    pub id: &'a str,
    /// Host pid of the init, 0 once stopped.
    pub pid: i32,
    /// Status.
    pub status: Status,
    /// Absolute bundle path.
    pub bundle: &'a Path,
    /// Absolute rootfs path.
    pub rootfs: &'a Path,
    /// Creation time, RFC 3339.
    pub created: &'a str,
    /// Annotations of the config.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
    /// The owner's user name (`""` from `state`).
    pub owner: &'a str,
}

/// The runtime spec's `State`, given to hooks on stdin and to a seccomp
/// agent, as runc encodes it: `pid` and `annotations` left out when zero or
/// empty.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookState<'a> {
    /// Spec version of the bundle.
    pub oci_version: &'a str,
    /// Container id.
    pub id: &'a str,
    /// Status.
    pub status: Status,
    /// Host pid of the init; 0 (left out) when there is none.
    #[serde(skip_serializing_if = "is_zero")]
    pub pid: i32,
    /// Absolute bundle path.
    pub bundle: &'a Path,
    /// Annotations of the config.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

impl HookState<'_> {
    /// The JSON text hooks read on stdin.
    pub fn to_json(&self) -> String {
        // Serialising strings, numbers and a string map cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-1_2.3+x", &"x".repeat(1024)] {
            validate_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "../x", "a/b", "a b", &"x".repeat(1025), "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn own_start_time_is_readable() {
        let pid = i32::try_from(std::process::id()).unwrap();
        assert!(pid_start_time(pid).is_some());
        assert!(pid_start_time(i32::MAX).is_none());
    }
}
