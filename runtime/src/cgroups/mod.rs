//! The container's cgroup: where it lives (`linux.cgroupsPath`), creating it,
//! placing the init in it, and removing it on delete.
//!
//! Two backends: [`v1`] (one directory per controller hierarchy, hybrid hosts
//! included) and [`v2`] (the unified hierarchy). Resource limits, freezing and
//! statistics come with the cgroups issue; this module is their home.

pub mod devices;
#[cfg(test)]
pub(crate) mod fuzz;
mod paths;
pub mod resources;
pub mod stats;
pub mod systemd;
pub mod v1;
pub mod v2;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use paths::Cgroup;

/// Errors from cgroup handling.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Reading the host's cgroup layout failed.
    #[error("read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// A cgroup directory could not be created.
    #[error("create cgroup {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// Writing a cgroup file failed.
    #[error("write {value:?} to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// Cause.
        source: io::Error,
    },
    /// A cgroup could not be removed.
    #[error("remove cgroup {path}: {source}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// The systemd driver: the bus, a unit, or what it does not support.
    #[error("{0}")]
    Systemd(String),
    /// A resource this host's cgroup setup cannot express.
    #[error("{0}")]
    Unsupported(String),
    /// A path that escapes the hierarchy.
    #[error("invalid cgroupsPath {0:?}")]
    InvalidPath(String),
    /// The cgroup exists and is frozen: the init would stop in it.
    #[error("container's cgroup unexpectedly frozen")]
    Frozen,
}

/// The key of the unified (cgroup2) hierarchy of a hybrid host among a
/// container's v1 hierarchies.
pub const UNIFIED: &str = "unified";

/// The root of the cgroup filesystems.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Whether the host runs the unified (v2-only) hierarchy.
pub fn is_v2() -> bool {
    crate::sys::is_fs(Path::new(CGROUP_ROOT), CGROUP2_SUPER_MAGIC)
}

/// A cgroup version, for what is decided before a [`Cgroup`] exists (the
/// writes `linux.resources` becomes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// cgroup v1 (hybrid hosts included).
    V1,
    /// cgroup v2, the unified hierarchy only.
    V2,
}

impl Version {
    /// This host's.
    pub fn host() -> Version {
        if is_v2() {
            Version::V2
        } else {
            Version::V1
        }
    }
}

impl CgroupError {
    /// The system error behind it, if any.
    pub fn io_errno(&self) -> Option<i32> {
        match self {
            CgroupError::Read { source, .. }
            | CgroupError::Create { source, .. }
            | CgroupError::Write { source, .. }
            | CgroupError::Remove { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Normalises `cgroupsPath`: absolute stays absolute, relative stays
/// relative (to the runtime's own cgroup), absent becomes the id. `..` is
/// refused so the path can never leave the hierarchy.
pub fn normalise(cgroups_path: Option<&str>, id: &str) -> Result<PathBuf, CgroupError> {
    let raw = cgroups_path.filter(|p| !p.is_empty()).unwrap_or(id);
    let mut out = PathBuf::from(if raw.starts_with('/') { "/" } else { "" });
    for comp in raw.split('/') {
        match comp {
            "" | "." => {}
            ".." => return Err(CgroupError::InvalidPath(raw.to_string())),
            c => out.push(c),
        }
    }
    if out.as_os_str().is_empty() || out == Path::new("/") {
        return Err(CgroupError::InvalidPath(raw.to_string()));
    }
    Ok(out)
}

/// Joins `inner` to a hierarchy mounted at `mount` whose own-cgroup is `own`.
fn place(mount: &Path, own: &str, inner: &Path) -> PathBuf {
    let rel = if inner.is_absolute() {
        inner.strip_prefix("/").unwrap_or(inner).to_path_buf()
    } else {
        Path::new(own.trim_start_matches('/')).join(inner)
    };
    mount.join(rel)
}

/// The container's cgroup directories, not created yet: `create` records them before it makes them, so
/// that a `create` killed at any point leaves nothing `delete` cannot find.
/// An existing cgroup is checked as runc does ([`check_existing`]).
pub fn plan(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<Cgroup, CgroupError> {
    if systemd {
        return systemd::plan(cgroups_path, id);
    }
    let inner = normalise(cgroups_path, id)?;
    let planned = if is_v2() {
        v2::plan(&inner)?
    } else {
        v1::plan(&inner)?
    };
    check_existing(&planned)?;
    Ok(planned)
}

/// runc's checks of a cgroup that exists before the container: a frozen one
/// is refused (the init would stop in it and `create` never return); one
/// with processes in it (or its children) is used with runc's warning.
fn check_existing(planned: &Cgroup) -> Result<(), CgroupError> {
    if planned.is_frozen() {
        return Err(CgroupError::Frozen);
    }
    let mut found = Vec::new();
    if let Some(d) = planned.procs_dir() {
        collect_pids(d, &mut found);
    }
    let n = found.len();
    if n > 0 {
        crate::logging::warn(&format!(
            "container's cgroup is not empty: {n} process(es) found"
        ));
    }
    Ok(())
}

/// The `tasks` files of the container's v1 cgroups, opened by the runtime
/// before it clones, so that the new process moves itself in.
///
/// Writing `0` to a v1 `tasks` file moves the calling thread, and the kernel
/// migrates a thread that moves itself without taking its global
/// threadgroup lock for writing. That write lock is what makes the usual
/// move (the parent writing the pid to `cgroup.procs`, as runc does) slow
/// whenever the machine was idle for a moment: its first taker waits a full
/// RCU grace period, 8-20 ms on the test VMs (`bench/profile.py`). The
/// processes that move themselves are single-threaded (a freshly cloned init
/// or exec intermediate), so moving the thread moves the process. v2 needs
/// none of this: the init is cloned into its cgroup (`CLONE_INTO_CGROUP`).
#[derive(Debug, Default)]
pub struct SelfMove {
    files: Vec<(PathBuf, fs::File)>,
}

impl SelfMove {
    /// Opens `tasks` (close-on-exec) in every v1 hierarchy of `cg`; a
    /// cgroup2 directory is left to `CLONE_INTO_CGROUP` or
    /// [`Cgroup::add_pid`].
    pub fn open(cg: &Cgroup) -> Result<Self, CgroupError> {
        let mut files = Vec::new();
        for (key, dir) in cg.v1_hierarchies() {
            let path = dir.join("tasks");
            let f = fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|source| CgroupError::Write {
                    path: path.clone(),
                    value: "0".into(),
                    source,
                })?;
            files.push((key.contains("freezer"), path, f));
        }
        // The freezer last: a process moving itself into a frozen cgroup
        // (`exec --ignore-paused`) stops there until the container resumes,
        // and should by then be in every other cgroup.
        files.sort_by_key(|(freezer, _, _)| *freezer);
        Ok(Self {
            files: files.into_iter().map(|(_, p, f)| (p, f)).collect(),
        })
    }

    /// Run by the single-threaded child: moves itself into every cgroup,
    /// then closes its copies of the descriptors, which must never reach
    /// the container. The child leaves only by `execve` or `_exit`, so the
    /// `File`s it inherited in memory are never dropped (closed twice).
    pub fn move_self(&self) -> Result<(), CgroupError> {
        use std::io::Write;
        for (path, f) in &self.files {
            (&*f).write_all(b"0").map_err(|source| CgroupError::Write {
                path: path.clone(),
                value: "0".into(),
                source,
            })?;
        }
        for (_, f) in &self.files {
            // This process's copy, closed by number: the parent's copy is
            // unaffected, and the `File` is never dropped here (see above).
            let _ = nix::unistd::close(std::os::fd::AsRawFd::as_raw_fd(f));
        }
        Ok(())
    }
}

impl Cgroup {
    /// Creates the planned cgroup (every level that is missing) and returns
    /// its directories.
    pub fn create(&self) -> Result<Cgroup, CgroupError> {
        match self {
            Cgroup::V1(m) => v1::create(m).map(Cgroup::V1),
            Cgroup::V2(d) => v2::create(d).map(Cgroup::V2),
        }
    }

    /// The directories a new process does not enter by itself, for the
    /// parent to move it into with [`Cgroup::add_pid`]: none on v1 (the
    /// process writes its [`SelfMove`] files), the cgroup2 directory when
    /// the kernel refused `CLONE_INTO_CGROUP` (`cloned_into` false).
    pub fn left_to_parent(&self, cloned_into: bool) -> Vec<PathBuf> {
        match self.cgroup2_dir() {
            Some(d) if !cloned_into => vec![d.clone()],
            _ => Vec::new(),
        }
    }

    /// Pids in the container's cgroup and the cgroups below it (the first
    /// hierarchy that lists them), as runc's `GetAllPids`.
    pub fn pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        if let Some(d) = self.procs_dir() {
            collect_pids(d, &mut out);
        }
        out
    }

    /// The directories an `exec --cgroup` process joins: for each hierarchy,
    /// the sub-cgroup named for one of its controllers, else the one given
    /// without a controller (key `""`), else the container's own. `subs`
    /// maps a controller (or `""`) to a relative path, as runc parses
    /// `[<controller>[,<controller>…]:]<path>`.
    pub fn with_sub_cgroups(&self, subs: &BTreeMap<String, String>) -> Result<Cgroup, CgroupError> {
        let ctrl_of = |c: &str| c.strip_prefix("name=").unwrap_or(c).to_string();
        let hierarchies: Vec<&str> = match self {
            Cgroup::V1(m) => m.keys().map(String::as_str).collect(),
            Cgroup::V2(_) => Vec::new(),
        };
        for (ctrl, sub) in subs {
            if sub.split('/').any(|c| c == "..") {
                return Err(CgroupError::InvalidPath(sub.clone()));
            }
            let known = ctrl.is_empty()
                || hierarchies
                    .iter()
                    .any(|k| k.split(',').any(|c| ctrl_of(c) == *ctrl));
            if !known {
                return Err(CgroupError::Unsupported(format!(
                    "unknown controller {ctrl} in SubCgroupPaths"
                )));
            }
        }
        Ok(self.map_dirs(|key, dir| {
            let sub = key
                .split(',')
                .filter(|c| !c.is_empty())
                .find_map(|c| subs.get(&ctrl_of(c)))
                .or_else(|| subs.get(""));
            sub.map_or_else(|| dir.clone(), |s| dir.join(s.trim_start_matches('/')))
        }))
    }

    /// Whether the container's cgroup is frozen.
    pub fn is_frozen(&self) -> bool {
        match self {
            Cgroup::V1(m) => m.get("freezer").is_some_and(|d| {
                fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
            }),
            Cgroup::V2(d) => {
                fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
            }
        }
    }

    /// Freezes (`true`) or thaws the container's cgroup and waits until the
    /// kernel reports the new state (v1 `freezer.state`, v2 `cgroup.events`).
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let (file, value, state_file, want): (&str, &str, &str, &str) = match (self, frozen) {
            (Cgroup::V2(_), true) => ("cgroup.freeze", "1", "cgroup.events", "frozen 1"),
            (Cgroup::V2(_), false) => ("cgroup.freeze", "0", "cgroup.events", "frozen 0"),
            (Cgroup::V1(_), true) => ("freezer.state", "FROZEN", "freezer.state", "FROZEN"),
            (Cgroup::V1(_), false) => ("freezer.state", "THAWED", "freezer.state", "THAWED"),
        };
        let dir = self.dir_for("freezer").ok_or_else(|| {
            CgroupError::Unsupported("the freezer cgroup is not available".into())
        })?;
        for _ in 0..2000 {
            write(&dir.join(file), value)?;
            let state = fs::read_to_string(dir.join(state_file)).unwrap_or_default();
            if state.lines().any(|l| l.trim() == want) {
                return Ok(());
            }
            // v1 passes through FREEZING; writing again nudges the kernel on.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(CgroupError::Unsupported(format!(
            "the cgroup did not reach {want:?} in {}",
            dir.display()
        )))
    }

    /// Sends `sig` to every process of the cgroup. On v2 with `cgroup.kill`
    /// and SIGKILL, the kernel does it atomically; otherwise the cgroup is
    /// frozen first so no process can fork away, signalled, and thawed (as
    /// runc does).
    pub fn signal_all(&self, sig: i32) -> Result<(), CgroupError> {
        if let Cgroup::V2(dir) = self {
            if sig == libc::SIGKILL && dir.join("cgroup.kill").exists() {
                return write(&dir.join("cgroup.kill"), "1");
            }
        }
        let was_frozen = self.is_frozen();
        let froze = !was_frozen && self.set_frozen(true).is_ok();
        for pid in self.pids() {
            crate::sys::signal(pid, sig);
        }
        if froze {
            self.set_frozen(false)?;
        }
        Ok(())
    }

    /// Removes every directory (they must be empty of processes), retrying
    /// briefly while the kernel finishes tearing down exited tasks.
    pub fn remove(&self) -> Result<(), CgroupError> {
        for dir in self.dirs() {
            remove_tree(dir)?;
        }
        Ok(())
    }
}

/// Moves `pid` into every directory of `dirs`.
pub fn add_pid(dirs: &[PathBuf], pid: i32) -> Result<(), CgroupError> {
    for dir in dirs {
        write(&dir.join("cgroup.procs"), &pid.to_string())?;
    }
    Ok(())
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(s) = fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    for child in subdirs(dir) {
        collect_pids(&child, out);
    }
}

/// The cgroups directly below `dir`.
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Removes `dir` after the cgroups below it (made by `exec --cgroup`
/// users or by the container itself), deepest first, as runc does.
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    for child in subdirs(dir) {
        remove_tree(&child)?;
    }
    let mut tries = 0;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// Creates `dir` and its missing parents, calling `init` on each directory
/// created, top-down (cpuset needs its parent's values copied in).
pub(crate) fn mkdir_levels(
    dir: &Path,
    init: &dyn Fn(&Path) -> Result<(), CgroupError>,
) -> Result<(), CgroupError> {
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.exists() {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    for d in missing.iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => init(d)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(CgroupError::Create {
                    path: d.clone(),
                    source,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_paths() {
        assert_eq!(normalise(None, "abc").unwrap(), PathBuf::from("abc"));
        assert_eq!(
            normalise(Some("/a//b/"), "x").unwrap(),
            PathBuf::from("/a/b")
        );
        assert_eq!(normalise(Some("a/./b"), "x").unwrap(), PathBuf::from("a/b"));
        assert!(normalise(Some("/a/../../etc"), "x").is_err());
        assert!(normalise(Some("/"), "x").is_err());
    }

    #[test]
    fn only_cgroup2_is_left_to_the_parent_and_only_without_clone_into_cgroup() {
        let v1 = Cgroup::V1(
            [("pids", "/p"), ("cpu,cpuacct", "/c")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
                .collect(),
        );
        assert!(v1.left_to_parent(false).is_empty());
        let hybrid = Cgroup::V1(BTreeMap::from([(UNIFIED.to_string(), PathBuf::from("/h"))]));
        assert_eq!(hybrid.left_to_parent(false), [PathBuf::from("/h")]);
        let v2 = Cgroup::V2("/u".into());
        assert!(v2.left_to_parent(true).is_empty());
        assert_eq!(v2.left_to_parent(false), [PathBuf::from("/u")]);
    }

    #[test]
    fn places_relative_under_own_cgroup() {
        let m = Path::new("/sys/fs/cgroup/pids");
        assert_eq!(
            place(m, "/user.slice", Path::new("c1")),
            m.join("user.slice/c1")
        );
        assert_eq!(
            place(m, "/user.slice", Path::new("/abs/c1")),
            m.join("abs/c1")
        );
        assert_eq!(place(m, "/", Path::new("c1")), m.join("c1"));
    }
}
