//! cgroup v1: one directory per controller hierarchy (hybrid hosts included;
//! the near-empty unified hierarchy of a hybrid host is left alone).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{mkdir_levels, place, Cgroup, CgroupError};

/// A mounted v1 hierarchy.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    /// Mount point, e.g. `/sys/fs/cgroup/cpu,cpuacct`.
    pub mount: PathBuf,
    /// Controllers it carries, e.g. `["cpu", "cpuacct"]`.
    pub controllers: Vec<String>,
    /// The calling process's cgroup in it.
    pub own: String,
}

/// Reads the hierarchies a container joins from `/proc/self/mountinfo` and
/// `/proc/self/cgroup`, as runc does: every controller hierarchy, the
/// `name=systemd` one (it carries no resources but the init system tracks
/// processes by it), and on a hybrid host the unified (cgroup2) one, keyed
/// [`super::UNIFIED`]. Other named hierarchies are left alone.
pub fn hierarchies() -> Result<Vec<Hierarchy>, CgroupError> {
    let read = |p: &str| {
        fs::read_to_string(p).map_err(|source| CgroupError::Read {
            path: PathBuf::from(p),
            source,
        })
    };
    let own = read("/proc/self/cgroup")?;
    let own_of = |ctrls: &[String]| {
        own.lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, ':');
                let (_, list, path) = (it.next()?, it.next()?, it.next()?);
                let set: Vec<&str> = list.split(',').collect();
                let wanted = if ctrls == [super::UNIFIED] {
                    list.is_empty()
                } else {
                    ctrls.iter().all(|c| set.contains(&c.as_str()))
                };
                wanted.then(|| path.to_string())
            })
            .next()
            .unwrap_or_else(|| "/".to_string())
    };
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in read("/proc/self/mountinfo")?.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split(' ');
        let controllers: Vec<String> = match post.next() {
            Some("cgroup") => post
                .nth(1)
                .unwrap_or_default()
                .split(',')
                .filter(|o| {
                    *o == "name=systemd" || (!matches!(*o, "rw" | "ro") && !o.contains('='))
                })
                .map(str::to_string)
                .collect(),
            Some("cgroup2") => vec![super::UNIFIED.to_string()],
            _ => continue,
        };
        if controllers.is_empty() {
            continue;
        }
        let Some(mount) = pre.split(' ').nth(4) else {
            continue;
        };
        if out.iter().any(|h| h.controllers == controllers) {
            continue;
        }
        let own = own_of(&controllers);
        out.push(Hierarchy {
            mount: PathBuf::from(mount),
            controllers,
            own,
        });
    }
    Ok(out)
}

/// Copies `cpuset.cpus` and `cpuset.mems` from the parent where they are
/// empty: a new v1 cpuset cgroup starts empty and refuses tasks until they
/// are set. Parents are filled first, so a level that another `create`
/// made a moment ago but has not filled yet is handled too.
fn init_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let read = |d: &Path| {
            fs::read_to_string(d.join(f))
                .map(|s| s.trim().to_string())
                .map_err(|source| CgroupError::Read {
                    path: d.join(f),
                    source,
                })
        };
        if !read(dir)?.is_empty() {
            continue;
        }
        let mut v = read(parent)?;
        if v.is_empty() {
            init_cpuset(parent)?;
            v = read(parent)?;
        }
        super::write(&dir.join(f), &v)?;
    }
    Ok(())
}

/// The container's directory in every hierarchy, not created yet.
pub fn plan(inner: &Path) -> Result<Cgroup, CgroupError> {
    Ok(Cgroup::V1(
        hierarchies()?
            .into_iter()
            .map(|h| (h.controllers.join(","), place(&h.mount, &h.own, inner)))
            .collect(),
    ))
}

/// Creates the planned directories (missing levels too; cpuset levels get
/// their parent's cpus and mems).
pub fn create(
    planned: &BTreeMap<String, PathBuf>,
) -> Result<BTreeMap<String, PathBuf>, CgroupError> {
    let mut out = BTreeMap::new();
    for (key, dir) in planned {
        let dir = dir.clone();
        let cpuset = key.split(',').any(|c| c == "cpuset");
        let init = |d: &Path| if cpuset { init_cpuset(d) } else { Ok(()) };
        if let Err(e) =
            mkdir_levels(&dir, &init).and_then(|()| if cpuset { init_cpuset(&dir) } else { Ok(()) })
        {
            let _ = Cgroup::V1(out).remove();
            return Err(e);
        }
        out.insert(key.clone(), dir);
    }
    Ok(out)
}
