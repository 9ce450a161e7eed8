//! The container's cgroup: where it lives (`linux.cgroupsPath`), creating it,
//! placing the init in it, and removing it on delete.
//!
//! Two backends: [`v1`] (one directory per controller hierarchy, hybrid hosts
//! included) and [`v2`] (the unified hierarchy). Resource limits, freezing and
//! statistics come with the cgroups issue; this module is their home.

pub mod bpf_devices;
#[cfg(test)]
pub(crate) mod fuzz;
pub mod resources;
pub mod schema;
pub mod stats;
pub mod v1;
pub mod v1_devices;
pub mod v2;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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
    /// `--systemd-cgroup` is not implemented yet.
    #[error("the systemd cgroup driver is not supported yet (cgroupsPath {0:?}); use the cgroupfs driver")]
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

/// The key of the unified (cgroup2) hierarchy of a hybrid host in a
/// container's cgroup paths; on a pure v2 host the one directory's key is
/// `""`.
pub const UNIFIED: &str = "unified";

/// The root of the cgroup filesystems.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Whether the host runs the unified (v2-only) hierarchy.
pub fn is_v2() -> bool {
    crate::sys::is_fs(Path::new(CGROUP_ROOT), CGROUP2_SUPER_MAGIC)
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

/// The container's cgroup directories, keyed by hierarchy name (`""` for
/// v2), not created yet: `create` records them before it makes them, so
/// that a `create` killed at any point leaves nothing `delete` cannot find.
/// An existing cgroup is checked as runc does ([`check_existing`]).
pub fn plan(
    cgroups_path: Option<&str>,
    id: &str,
    systemd: bool,
) -> Result<BTreeMap<String, PathBuf>, CgroupError> {
    if systemd {
        return Err(CgroupError::Systemd(
            cgroups_path.unwrap_or_default().to_string(),
        ));
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

/// Creates the planned cgroup (every level that is missing) and returns the
/// directories.
pub fn create(
    planned: &BTreeMap<String, PathBuf>,
) -> Result<BTreeMap<String, PathBuf>, CgroupError> {
    if is_v2() {
        v2::create(planned)
    } else {
        v1::create(planned)
    }
}

/// runc's checks of a cgroup that exists before the container: a frozen one
/// is refused (the init would stop in it and `create` never return); one
/// with processes in it (or its children) is used with runc's warning.
fn check_existing(planned: &BTreeMap<String, PathBuf>) -> Result<(), CgroupError> {
    if is_frozen(planned) {
        return Err(CgroupError::Frozen);
    }
    let dir = planned
        .get("pids")
        .or_else(|| planned.get(""))
        .or_else(|| planned.values().next());
    let mut found = Vec::new();
    if let Some(d) = dir {
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
    /// Opens `tasks` (close-on-exec) in every v1 directory of `paths`; the
    /// v2 directory (key `""`) is left to `CLONE_INTO_CGROUP` or [`add_pid`].
    pub fn open(paths: &BTreeMap<String, PathBuf>) -> Result<Self, CgroupError> {
        let mut files = Vec::new();
        for (key, dir) in paths {
            if key.is_empty() || key == UNIFIED {
                continue;
            }
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
            // SAFETY: closes this process's copy of a descriptor it owns and
            // will not use again; the parent's copy is unaffected, and the
            // `File` above is never dropped in this process (see the doc).
            unsafe { libc::close(std::os::fd::AsRawFd::as_raw_fd(f)) };
        }
        Ok(())
    }
}

/// The directories a new process does not enter by itself, for the parent
/// to move it into with [`add_pid`]: none on v1 (the process writes its
/// [`SelfMove`] files), the v2 directory when the kernel refused
/// `CLONE_INTO_CGROUP` (`cloned_into` false).
pub fn left_to_parent(
    paths: &BTreeMap<String, PathBuf>,
    cloned_into: bool,
) -> BTreeMap<String, PathBuf> {
    paths
        .iter()
        .filter(|(k, _)| (k.is_empty() || *k == UNIFIED) && !cloned_into)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Moves `pid` into every directory.
pub fn add_pid(paths: &BTreeMap<String, PathBuf>, pid: i32) -> Result<(), CgroupError> {
    for dir in paths.values() {
        write(&dir.join("cgroup.procs"), &pid.to_string())?;
    }
    Ok(())
}

/// Pids in the container's cgroup and the cgroups below it (the first
/// hierarchy that lists them), as runc's `GetAllPids`.
pub fn pids(paths: &BTreeMap<String, PathBuf>) -> Vec<i32> {
    let dir = paths
        .get("pids")
        .or_else(|| paths.get(""))
        .or_else(|| paths.values().next());
    let mut out = Vec::new();
    if let Some(d) = dir {
        collect_pids(d, &mut out);
    }
    out
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

/// The directories an `exec --cgroup` process joins: for each hierarchy of
/// `paths`, the sub-cgroup named for one of its controllers, else the one
/// given without a controller (key `""`), else the container's own.
/// `subs` maps a controller (or `""`) to a relative path, as runc parses
/// `[<controller>[,<controller>…]:]<path>`.
pub fn with_sub_cgroups(
    paths: &BTreeMap<String, PathBuf>,
    subs: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, PathBuf>, CgroupError> {
    let ctrl_of = |c: &str| c.strip_prefix("name=").unwrap_or(c).to_string();
    for (ctrl, sub) in subs {
        if sub.split('/').any(|c| c == "..") {
            return Err(CgroupError::InvalidPath(sub.clone()));
        }
        let known = ctrl.is_empty()
            || paths
                .keys()
                .any(|k| k.split(',').any(|c| ctrl_of(c) == *ctrl));
        if !known {
            return Err(CgroupError::Unsupported(format!(
                "unknown controller {ctrl} in SubCgroupPaths"
            )));
        }
    }
    Ok(paths
        .iter()
        .map(|(key, dir)| {
            let sub = key
                .split(',')
                .find_map(|c| subs.get(&ctrl_of(c)))
                .or_else(|| subs.get(""));
            let dir = sub.map_or_else(|| dir.clone(), |s| dir.join(s.trim_start_matches('/')));
            (key.clone(), dir)
        })
        .collect())
}

/// Whether the container's cgroup is frozen.
pub fn is_frozen(paths: &BTreeMap<String, PathBuf>) -> bool {
    if let Some(d) = paths.get("freezer") {
        return fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN");
    }
    if let Some(d) = paths.get("") {
        return fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
    }
    false
}

/// Freezes (`true`) or thaws the container's cgroup and waits until the
/// kernel reports the new state (v1 `freezer.state`, v2 `cgroup.events`).
pub fn set_frozen(paths: &BTreeMap<String, PathBuf>, frozen: bool) -> Result<(), CgroupError> {
    let (file, value, state_file, want): (&str, &str, &str, &str) = if paths.contains_key("") {
        (
            "cgroup.freeze",
            if frozen { "1" } else { "0" },
            "cgroup.events",
            if frozen { "frozen 1" } else { "frozen 0" },
        )
    } else if frozen {
        ("freezer.state", "FROZEN", "freezer.state", "FROZEN")
    } else {
        ("freezer.state", "THAWED", "freezer.state", "THAWED")
    };
    let dir = resources::dir_for(paths, "freezer")
        .ok_or_else(|| CgroupError::Unsupported("the freezer cgroup is not available".into()))?;
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
pub fn signal_all(paths: &BTreeMap<String, PathBuf>, sig: i32) -> Result<(), CgroupError> {
    if let Some(dir) = paths.get("") {
        if sig == libc::SIGKILL && dir.join("cgroup.kill").exists() {
            return write(&dir.join("cgroup.kill"), "1");
        }
    }
    let was_frozen = is_frozen(paths);
    let froze = !was_frozen && set_frozen(paths, true).is_ok();
    for pid in pids(paths) {
        crate::sys::signal(pid, sig);
    }
    if froze {
        set_frozen(paths, false)?;
    }
    Ok(())
}

/// Removes every directory (they must be empty of processes), retrying
/// briefly while the kernel finishes tearing down exited tasks.
pub fn remove(paths: &BTreeMap<String, PathBuf>) -> Result<(), CgroupError> {
    for dir in paths.values() {
        remove_tree(dir)?;
    }
    Ok(())
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
    fn only_v2_is_left_to_the_parent_and_only_without_clone_into_cgroup() {
        let v1: BTreeMap<String, PathBuf> = [("pids", "/p"), ("cpu,cpuacct", "/c")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
            .collect();
        assert!(left_to_parent(&v1, false).is_empty());
        let v2: BTreeMap<String, PathBuf> = [(String::new(), PathBuf::from("/u"))].into();
        assert!(left_to_parent(&v2, true).is_empty());
        assert_eq!(left_to_parent(&v2, false), v2);
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
