//! `--systemd-cgroup`: the container's cgroup is a transient systemd scope,
//! started over D-Bus, as runc does it. `linux.cgroupsPath` is
//! `slice:prefix:name` (empty: `:corten:<id>`); the scope `prefix-name.scope`
//! goes into the slice (`system.slice` when empty; `-.slice` is the root;
//! `a-b.slice` nests in `a.slice`). The scope is started with the init's pid
//! once the init exists and delegated to the container, then the resources
//! are written into its directory as with cgroupfs.
//!
//! Built so far for cgroup v2 hosts only; a v1 host refuses
//! `--systemd-cgroup` with a message saying so.

mod dbus;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dbus::{Arg, Bus, DbusError};

use super::{Cgroup, CgroupError, CGROUP_ROOT};
use crate::spec::Resources;

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// The directory of slice `slice` below the cgroup root, as systemd nests
/// it: `a-b-c.slice` is `a.slice/a-b.slice/a-b-c.slice`, `-.slice` the root
/// itself. runc's rules and message for a bad name.
pub fn expand_slice(slice: &str) -> Result<PathBuf, CgroupError> {
    let bad = || CgroupError::Unsupported(format!("invalid slice name: {slice}"));
    let name = slice.strip_suffix(".slice").ok_or_else(bad)?;
    if name.is_empty() || slice.contains('/') {
        return Err(bad());
    }
    if name == "-" {
        return Ok(PathBuf::new());
    }
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for part in name.split('-') {
        if part.is_empty() {
            return Err(bad());
        }
        path.push(format!("{prefix}{part}.slice"));
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

/// The scope's unit name and its directory for `cgroupsPath` (runc's
/// `slice:prefix:name`, empty: `:corten:<id>`).
pub fn unit_and_dir(
    cgroups_path: Option<&str>,
    id: &str,
) -> Result<(String, PathBuf), CgroupError> {
    let given = cgroups_path.filter(|p| !p.is_empty());
    let path = given.map_or_else(|| format!(":corten:{id}"), str::to_string);
    let parts: Vec<&str> = path.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(CgroupError::Unsupported(format!(
            "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {path:?} instead"
        )));
    };
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    if name.ends_with(".slice") {
        return Err(CgroupError::Unsupported(format!(
            "cgroupsPath {path:?} names a slice: corten's systemd driver places containers in scopes only"
        )));
    }
    let unit = format!("{prefix}-{name}.scope");
    if name.is_empty() || unit.contains('/') {
        return Err(CgroupError::Unsupported(format!(
            "invalid unit name {unit:?}"
        )));
    }
    let dir = Path::new(CGROUP_ROOT)
        .join(expand_slice(slice)?)
        .join(&unit);
    Ok((unit, dir))
}

/// The container's cgroup under the systemd driver, not created yet:
/// systemd makes it when the scope starts ([`start_scope`]).
pub fn plan(cgroups_path: Option<&str>, id: &str) -> Result<Cgroup, CgroupError> {
    if !super::is_v2() {
        return Err(CgroupError::Systemd(
            "the systemd cgroup driver is supported on cgroup v2 hosts only so far; use the cgroupfs driver here".into(),
        ));
    }
    let (_, dir) = unit_and_dir(cgroups_path, id)?;
    Ok(Cgroup::V2(dir))
}

fn unit_of(cg: &Cgroup) -> Option<(String, String)> {
    let dir = cg.v2_dir()?;
    let unit = dir.file_name()?.to_str()?.to_string();
    let slice = dir
        .parent()?
        .file_name()
        .and_then(|s| s.to_str())
        .filter(|s| s.ends_with(".slice"))
        .unwrap_or("-.slice")
        .to_string();
    Some((unit, slice))
}

fn dbus_err(what: &str) -> impl FnOnce(DbusError) -> CgroupError + '_ {
    move |e| CgroupError::Systemd(format!("{what}: {e}"))
}

/// The limits systemd itself knows, as unit properties (as runc passes
/// them), so that systemd keeps them when it re-applies the unit's
/// settings; the same values are also written into the directory.
fn limit_properties(res: Option<&Resources>) -> Vec<(String, Arg)> {
    let mut out = Vec::new();
    let Some(res) = res else { return out };
    let max = |n: i64| u64::try_from(n).unwrap_or(u64::MAX); // -1: infinity
    if let Some(l) = res
        .memory
        .as_ref()
        .and_then(|m| m.limit)
        .filter(|l| *l != 0)
    {
        out.push(("MemoryMax".to_string(), Arg::U64(max(l))));
    }
    if let Some(l) = res.pids.as_ref().and_then(|p| p.limit).filter(|l| *l != 0) {
        out.push(("TasksMax".to_string(), Arg::U64(max(l))));
    }
    if let Some(s) = res.cpu.as_ref().and_then(|c| c.shares).filter(|s| *s != 0) {
        out.push((
            "CPUWeight".to_string(),
            Arg::U64(super::resources::shares_to_weight(s)),
        ));
    }
    out
}

/// Starts the transient scope of `cg` holding `pid`, delegated to the
/// container, with the limits of `res` systemd knows, and waits until
/// `pid` is in it.
pub fn start_scope(
    cg: &Cgroup,
    pid: i32,
    description: &str,
    res: Option<&Resources>,
) -> Result<(), CgroupError> {
    let (unit, slice) =
        unit_of(cg).ok_or_else(|| CgroupError::Systemd("no scope to start".into()))?;
    let pid = u32::try_from(pid).map_err(|_| CgroupError::Systemd(format!("bad pid {pid}")))?;
    let mut bus = Bus::system().map_err(dbus_err("connect to the system bus"))?;
    let props: Vec<(String, Arg)> = vec![
        ("Description".to_string(), Arg::Str(description.to_string())),
        ("Slice".to_string(), Arg::Str(slice)),
        ("Delegate".to_string(), Arg::Bool(true)),
        ("PIDs".to_string(), Arg::U32s(vec![pid])),
        ("DefaultDependencies".to_string(), Arg::Bool(false)),
        ("MemoryAccounting".to_string(), Arg::Bool(true)),
        ("CPUAccounting".to_string(), Arg::Bool(true)),
        ("IOAccounting".to_string(), Arg::Bool(true)),
        ("TasksAccounting".to_string(), Arg::Bool(true)),
    ]
    .into_iter()
    .chain(limit_properties(res))
    .collect();
    bus.call(
        SYSTEMD,
        MANAGER_PATH,
        MANAGER,
        "StartTransientUnit",
        &[
            Arg::Str(unit.clone()),
            Arg::Str("replace".into()),
            Arg::Props(props),
            Arg::NoAux,
        ],
    )
    .map_err(dbus_err(&format!("start unit {unit}")))?;
    // The job moves the pid; wait until it is there (bounded).
    let want = format!("/{unit}");
    let deadline = Instant::now() + crate::bounds::Bound::Socket.get();
    loop {
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if cgroup
            .lines()
            .any(|l| l.starts_with("0::") && l.ends_with(&want))
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CgroupError::Systemd(format!(
                "unit {unit}: {}",
                crate::bounds::Bound::Socket.exceeded("systemd")
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `update`: the limits of `res` systemd knows, set on the scope of `cg`
/// (runtime only, as runc sets them), before the files are written.
pub fn set_limits(cg: &Cgroup, res: &Resources) -> Result<(), CgroupError> {
    let props = limit_properties(Some(res));
    let Some((unit, _)) = unit_of(cg).filter(|_| !props.is_empty()) else {
        return Ok(());
    };
    let mut bus = Bus::system().map_err(dbus_err("connect to the system bus"))?;
    bus.call(
        SYSTEMD,
        MANAGER_PATH,
        MANAGER,
        "SetUnitProperties",
        &[Arg::Str(unit.clone()), Arg::Bool(true), Arg::Props(props)],
    )
    .map_err(dbus_err(&format!("set the limits of unit {unit}")))?;
    Ok(())
}

/// Stops the scope of `cg` (a unit already gone is not an error).
pub fn stop_scope(cg: &Cgroup) -> Result<(), CgroupError> {
    let Some((unit, _)) = unit_of(cg) else {
        return Ok(());
    };
    let mut bus = Bus::system().map_err(dbus_err("connect to the system bus"))?;
    match bus.call(
        SYSTEMD,
        MANAGER_PATH,
        MANAGER,
        "StopUnit",
        &[Arg::Str(unit.clone()), Arg::Str("replace".into())],
    ) {
        Ok(_) => Ok(()),
        Err(DbusError::Reply { name, .. }) if name.ends_with(".NoSuchUnit") => Ok(()),
        Err(e) => Err(dbus_err(&format!("stop unit {unit}"))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_nest_as_systemd_nests_them() {
        let p = |s| expand_slice(s).map(|p| p.display().to_string());
        assert_eq!(p("system.slice").unwrap(), "system.slice");
        assert_eq!(
            p("kubepods-burstable-pod1234.slice").unwrap(),
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice"
        );
        assert_eq!(p("-.slice").unwrap(), "");
        for bad in [
            "",
            ".slice",
            "a--b.slice",
            "-a.slice",
            "a/b.slice",
            "system",
            "a-.slice",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cgroups_path_gives_the_scope_and_its_directory() {
        let (unit, dir) = unit_and_dir(Some("system.slice:docker:abc"), "x").unwrap();
        assert_eq!(unit, "docker-abc.scope");
        assert_eq!(
            dir,
            Path::new("/sys/fs/cgroup/system.slice/docker-abc.scope")
        );
        let (unit, dir) = unit_and_dir(None, "web").unwrap();
        assert_eq!(unit, "corten-web.scope");
        assert_eq!(
            dir,
            Path::new("/sys/fs/cgroup/system.slice/corten-web.scope")
        );
        let (_, dir) = unit_and_dir(
            Some("kubepods-besteffort-podX.slice:cri-containerd:c1"),
            "c1",
        )
        .unwrap();
        assert_eq!(
            dir,
            Path::new("/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podX.slice/cri-containerd-c1.scope")
        );
        let e = unit_and_dir(Some("/a/b"), "x").unwrap_err().to_string();
        assert!(e.contains("slice:prefix:name"), "{e}");
        assert!(unit_and_dir(Some("a/b.slice:p:n"), "x").is_err());
        assert!(unit_and_dir(Some("system.slice:p:"), "x").is_err());
    }
}
