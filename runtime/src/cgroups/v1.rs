//! cgroup v1: one directory per controller hierarchy (hybrid hosts included;
//! the near-empty unified hierarchy of a hybrid host is left alone).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{mkdir_levels, place, CgroupError};

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

/// Reads the controller hierarchies from `/proc/self/mountinfo` and
/// `/proc/self/cgroup` (named hierarchies such as `name=systemd` are skipped:
/// they carry no resources and belong to the init system).
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
                ctrls
                    .iter()
                    .all(|c| set.contains(&c.as_str()))
                    .then(|| path.to_string())
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
        if post.next() != Some("cgroup") {
            continue;
        }
        let super_opts = post.nth(1).unwrap_or_default();
        let controllers: Vec<String> = super_opts
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("name=") && !o.contains('='))
            .map(str::to_string)
            .collect();
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

/// Creates the cgroup in every hierarchy.
pub fn create(inner: &Path) -> Result<BTreeMap<String, PathBuf>, CgroupError> {
    let mut out = BTreeMap::new();
    for h in hierarchies()? {
        let dir = place(&h.mount, &h.own, inner);
        let cpuset = h.controllers.iter().any(|c| c == "cpuset");
        let init = |d: &Path| if cpuset { init_cpuset(d) } else { Ok(()) };
        if let Err(e) =
            mkdir_levels(&dir, &init).and_then(|()| if cpuset { init_cpuset(&dir) } else { Ok(()) })
        {
            let _ = super::remove(&out);
            return Err(e);
        }
        out.insert(h.controllers.join(","), dir);
    }
    Ok(out)
}
