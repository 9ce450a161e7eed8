//! `--systemd-cgroup`: the container's cgroup is a transient systemd scope,
//! started over D-Bus, as runc does it. `linux.cgroupsPath` is
//! `slice:prefix:name` (empty: `:corten:<id>`); the scope `prefix-name.scope`
//! goes into the slice (`system.slice` when empty; `-.slice` is the root;
//! `a-b.slice` nests in `a.slice`). The scope is started with the init's pid
//! once the init exists, delegated to the container, with the limits
//! systemd knows as unit properties ([`properties`]); corten waits for the
//! start job to finish, then writes the resources into the cgroup's files
//! as with cgroupfs.
//!
//! Rootless (runc's `auto` rule), the scope is asked of the user's own
//! systemd over the user's bus, below that manager's cgroup, in
//! `user.slice` by default; cgroup v2 only.
//!
//! On a cgroup v1 (or hybrid) host systemd makes the scope's directory in
//! the hierarchies it manages (`name=systemd`, memory, cpu, pids, blkio,
//! devices, and the hybrid cgroup2 one); corten makes it in the others
//! (cpuset, freezer, net_cls, ...) at the same path and moves the init
//! there, as runc does.

mod dbus;
pub mod properties;

use std::path::{Path, PathBuf};
use std::time::Instant;

use dbus::{Arg, Bus, DbusError, Value};

use super::{Cgroup, CgroupError, CGROUP_ROOT};
use crate::bounds::Bound;
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
    unit_and_dir_in(cgroups_path, id, "system.slice", Path::new(CGROUP_ROOT))
}

/// [`unit_and_dir`] with the manager's default slice and its own cgroup
/// (`user.slice` and `…/user@<uid>.service` for a user's systemd).
fn unit_and_dir_in(
    cgroups_path: Option<&str>,
    id: &str,
    default_slice: &str,
    manager_dir: &Path,
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
        default_slice
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
    let dir = manager_dir.join(expand_slice(slice)?).join(&unit);
    Ok((unit, dir))
}

/// The container's cgroup under the systemd driver, not created yet:
/// systemd makes it when the scope starts ([`start`]). On v1 the scope's
/// path in every hierarchy.
pub fn plan(cgroups_path: Option<&str>, id: &str) -> Result<Cgroup, CgroupError> {
    if crate::rootless::auto() {
        // The user's own systemd, which has a cgroup v2 subtree delegated
        // to it; under v1 it has nothing to delegate.
        if !super::is_v2() {
            return Err(CgroupError::Systemd(
                "rootless systemd cgroup driver: a user's systemd can delegate cgroups only on a cgroup v2 host (this one is v1 or hybrid): run without --systemd-cgroup".into(),
            ));
        }
        let mut bus = connect()?;
        let own = bus
            .call(
                SYSTEMD,
                MANAGER_PATH,
                "org.freedesktop.DBus.Properties",
                "Get",
                &[Arg::Str(MANAGER.into()), Arg::Str("ControlGroup".into())],
            )
            .map_err(dbus_err("ask the user's systemd for its cgroup"))?
            .unwrap_or_default();
        let manager_dir = Path::new(CGROUP_ROOT).join(own.trim_start_matches('/'));
        let (_, dir) = unit_and_dir_in(cgroups_path, id, "user.slice", &manager_dir)?;
        return Ok(Cgroup::V2(dir));
    }
    let (_, dir) = unit_and_dir(cgroups_path, id)?;
    if super::is_v2() {
        return Ok(Cgroup::V2(dir));
    }
    let rel = dir.strip_prefix(CGROUP_ROOT).unwrap_or(&dir);
    super::v1::plan(&Path::new("/").join(rel))
}

/// The scope's unit name and its slice, from any of its directories.
fn unit_of(cg: &Cgroup) -> Option<(String, String)> {
    let dir = cg.dirs().next()?;
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

/// The signal a job's end is announced with; a client that made the job
/// receives it once it asked for it (`AddMatch`).
const JOB_REMOVED: &str = "type='signal',sender='org.freedesktop.systemd1',path='/org/freedesktop/systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'";

/// A connection to systemd that receives the ends of its jobs: the system
/// bus with a match for them (as runc and crun connect), or, rootless, the
/// user's own bus to the user's systemd ([`user_bus`]). systemd's private
/// socket (`/run/systemd/private`, root only, no bus daemon in between) was
/// measured slower: systemd sets up its whole object tree for every new
/// private connection (15.7 ms against 8.3 ms for the bus in the VM).
fn connect() -> Result<Bus, CgroupError> {
    if crate::rootless::auto() {
        let path = user_bus()?;
        let uid = crate::rootless::host_uid();
        let bus = Bus::connect_as(&path, uid, &[JOB_REMOVED]).map_err(|e| {
            CgroupError::Systemd(format!(
                "rootless systemd cgroup driver: connect to the user bus at {}: {e}",
                path.display()
            ))
        })?;
        crate::logging::step(|| format!("systemd: connected to the user bus as uid {uid}"));
        return Ok(bus);
    }
    let bus = Bus::system(&[JOB_REMOVED]).map_err(|e| {
        CgroupError::Systemd(format!(
            "systemd cgroup driver: connect to the system bus at {}: {e}",
            dbus::SYSTEM_BUS
        ))
    })?;
    crate::logging::step(|| "systemd: connected to the system bus".into());
    Ok(bus)
}

/// The user's bus: `unix:path=` of `$DBUS_SESSION_BUS_ADDRESS`, else
/// `$XDG_RUNTIME_DIR/bus` (where systemd's `dbus.socket` user unit
/// listens).
fn user_bus() -> Result<PathBuf, CgroupError> {
    user_bus_of(
        std::env::var("DBUS_SESSION_BUS_ADDRESS").ok().as_deref(),
        std::env::var_os("XDG_RUNTIME_DIR").as_deref(),
    )
    .ok_or_else(|| {
        CgroupError::Systemd(
            "rootless systemd cgroup driver: no user bus: neither DBUS_SESSION_BUS_ADDRESS (unix:path=…) nor XDG_RUNTIME_DIR is set".into(),
        )
    })
}

fn user_bus_of(address: Option<&str>, xdg: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let given = address.and_then(|addr| {
        addr.split(';')
            .filter_map(|a| a.strip_prefix("unix:"))
            .flat_map(|a| a.split(','))
            .find_map(|kv| kv.strip_prefix("path="))
    });
    given.map(PathBuf::from).or_else(|| {
        xdg.filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join("bus"))
    })
}

/// Calls `method` (which queues a job) and waits until the job
/// ends (bounded by `CORTEN_TIMEOUT_SOCKET`); its result (`done`,
/// `failed`, `canceled`, ...).
fn run_job(bus: &mut Bus, method: &str, args: &[Arg]) -> Result<String, DbusError> {
    let job = bus
        .call(SYSTEMD, MANAGER_PATH, MANAGER, method, args)?
        .unwrap_or_default();
    let deadline = Instant::now() + Bound::Socket.get();
    // JobRemoved(u id, o job, s unit, s result)
    let body = bus.wait_signal(
        "JobRemoved",
        deadline,
        |b| matches!(b.get(1), Some(Value::Str(p)) if *p == job),
    )?;
    Ok(match body.get(3) {
        Some(Value::Str(r)) => r.clone(),
        _ => String::new(),
    })
}

/// Starts the transient scope of `cg` holding `pid`, delegated to the
/// container, with the limits of `res` systemd knows, and waits for the
/// start job. On v1 the hierarchies systemd does not manage get the scope's
/// directory from corten, with the init moved in.
pub fn start(
    cg: &Cgroup,
    pid: i32,
    description: &str,
    res: Option<&Resources>,
) -> Result<(), CgroupError> {
    let (unit, slice) =
        unit_of(cg).ok_or_else(|| CgroupError::Systemd("no scope to start".into()))?;
    let pid_u32 = u32::try_from(pid).map_err(|_| CgroupError::Systemd(format!("bad pid {pid}")))?;
    let mut bus = connect()?;
    let base: Vec<(String, Arg)> = vec![
        ("Description".to_string(), Arg::Str(description.to_string())),
        ("Slice".to_string(), Arg::Str(slice)),
        ("Delegate".to_string(), Arg::Bool(true)),
        ("PIDs".to_string(), Arg::U32s(vec![pid_u32])),
        ("DefaultDependencies".to_string(), Arg::Bool(false)),
        ("MemoryAccounting".to_string(), Arg::Bool(true)),
        ("CPUAccounting".to_string(), Arg::Bool(true)),
        ("IOAccounting".to_string(), Arg::Bool(true)),
        ("TasksAccounting".to_string(), Arg::Bool(true)),
    ];
    let limits = res.map_or_else(Vec::new, |r| properties::limits(r, cg.version()));
    let call = |bus: &mut Bus, limits: &[(String, Arg)]| {
        let props = base.iter().chain(limits).cloned().collect();
        run_job(
            bus,
            "StartTransientUnit",
            &[
                Arg::Str(unit.clone()),
                Arg::Str("replace".into()),
                Arg::Props(props),
                Arg::NoAux,
            ],
        )
    };
    let refused = |e: &DbusError, what: &str| matches!(e, DbusError::Reply { name, .. } if name.ends_with(what));
    let result = match call(&mut bus, &limits).inspect(|_| {
        crate::logging::step(|| format!("systemd: unit {unit} started, job done"));
    }) {
        // An older systemd that does not know a recent property: the files
        // carry those limits anyway.
        Err(e) if refused(&e, ".PropertyReadOnly") => {
            crate::logging::debug(&format!(
                "unit {unit}: {e}; starting it without {:?}",
                properties::RECENT
            ));
            call(&mut bus, &properties::without_recent(&limits))
        }
        // A failed scope of the same name left from an earlier container:
        // forgotten, then started again (as runc does).
        Err(e) if refused(&e, ".UnitExists") => {
            let _ = bus.call(
                SYSTEMD,
                MANAGER_PATH,
                MANAGER,
                "ResetFailedUnit",
                &[Arg::Str(unit.clone())],
            );
            call(&mut bus, &limits)
        }
        r => r,
    }
    .map_err(dbus_err(&format!("start unit {unit}")))?;
    if result != "done" {
        return Err(CgroupError::Systemd(format!(
            "start unit {unit}: the job ended with result {result:?}"
        )));
    }
    join_the_rest(cg, pid)
}

/// v1: the scope's directory in the hierarchies systemd does not manage,
/// made by corten, with `pid` moved in.
fn join_the_rest(cg: &Cgroup, pid: i32) -> Result<(), CgroupError> {
    let missing: Vec<PathBuf> = cg
        .v1_hierarchies()
        .filter(|(_, d)| !d.exists())
        .map(|(_, d)| d.clone())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    cg.create()?;
    super::add_pid(&missing, pid)
}

/// `update`: the limits of `res` systemd knows, set on the scope of `cg`
/// (runtime only, as runc sets them), before the files are written.
pub fn set_limits(cg: &Cgroup, res: &Resources) -> Result<(), CgroupError> {
    let props = properties::limits(res, cg.version());
    let Some((unit, _)) = unit_of(cg).filter(|_| !props.is_empty()) else {
        return Ok(());
    };
    let mut bus = connect()?;
    let mut set = |props: Vec<(String, Arg)>| {
        bus.call(
            SYSTEMD,
            MANAGER_PATH,
            MANAGER,
            "SetUnitProperties",
            &[Arg::Str(unit.clone()), Arg::Bool(true), Arg::Props(props)],
        )
    };
    match set(props.clone()) {
        Err(DbusError::Reply { name, .. }) if name.ends_with(".PropertyReadOnly") => {
            set(properties::without_recent(&props))
        }
        r => r,
    }
    .map_err(dbus_err(&format!("set the limits of unit {unit}")))?;
    Ok(())
}

/// Stops the scope of `cg` and waits for the stop job (a unit already gone
/// is not an error).
pub fn stop_scope(cg: &Cgroup) -> Result<(), CgroupError> {
    let Some((unit, _)) = unit_of(cg) else {
        return Ok(());
    };
    // systemd removes a scope's directory once the unit has stopped (its
    // last process gone): then there is nothing to ask it.
    let own = match cg {
        Cgroup::V2(d) => Some(d),
        Cgroup::V1(m) => m.get("name=systemd").or_else(|| m.get(super::UNIFIED)),
    };
    if own.is_some_and(|d| !d.exists()) {
        crate::logging::step(|| format!("systemd: unit {unit} already gone"));
        return Ok(());
    }
    let mut bus = connect()?;
    match run_job(
        &mut bus,
        "StopUnit",
        &[Arg::Str(unit.clone()), Arg::Str("replace".into())],
    ) {
        Ok(result) => {
            crate::logging::step(|| format!("systemd: unit {unit} stopped ({result})"));
            Ok(())
        }
        Err(DbusError::Reply { name, .. }) if name.ends_with(".NoSuchUnit") => {
            crate::logging::step(|| format!("systemd: unit {unit} already gone"));
            Ok(())
        }
        Err(e) => Err(dbus_err(&format!("stop unit {unit}"))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_bus_is_found_as_sd_bus_finds_it() {
        let xdg = Some(std::ffi::OsStr::new("/run/user/1000"));
        let b = |a, x| user_bus_of(a, x).map(|p| p.display().to_string());
        assert_eq!(
            b(Some("unix:path=/run/user/1000/bus"), None).as_deref(),
            Some("/run/user/1000/bus")
        );
        assert_eq!(
            b(Some("tcp:host=x;unix:guid=1,path=/tmp/b"), xdg).as_deref(),
            Some("/tmp/b")
        );
        // An address corten cannot use (abstract socket): the XDG one.
        assert_eq!(
            b(Some("unix:abstract=/tmp/dbus-x"), xdg).as_deref(),
            Some("/run/user/1000/bus")
        );
        assert_eq!(b(None, Some(std::ffi::OsStr::new(""))), None);
        assert_eq!(b(None, None), None);
    }

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

    #[test]
    fn the_plan_is_the_scope_path_in_every_hierarchy_of_this_host() {
        let planned = plan(
            Some("kubepods-besteffort-podX.slice:cri-containerd:c1"),
            "c1",
        )
        .unwrap();
        let tail = Path::new("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podX.slice/cri-containerd-c1.scope");
        assert_eq!(planned.version(), crate::cgroups::Version::host());
        assert!(planned.dirs().count() > 0);
        for dir in planned.dirs() {
            assert!(dir.ends_with(tail), "{dir:?}");
        }
        if let Cgroup::V1(m) = &planned {
            // systemd's own hierarchy too: the scope's home on v1.
            assert!(m.keys().any(|k| k == "name=systemd"), "{m:?}");
        }
        assert_eq!(
            unit_of(&planned),
            Some((
                "cri-containerd-c1.scope".to_string(),
                "kubepods-besteffort-podX.slice".to_string()
            ))
        );
    }
}
