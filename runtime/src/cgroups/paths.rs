//! [`Cgroup`]: where a container's cgroup lives, typed by the host's layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::UNIFIED;

/// A container's cgroup directories. This type is the seam between the
/// runtime and the cgroup drivers: everything that differs between cgroup
/// v1 and v2 (where a controller's files are, how to freeze, how to kill
/// all, which devices mechanism applies) is decided by its variant, never by
/// a flag passed around. A systemd scope is a `V2` directory, or the same
/// path in every `V1` hierarchy, that systemd made (`cgroups::systemd`);
/// the record's `systemd_cgroup` says which driver to ask for starting,
/// updating and stopping it.
///
/// In `state.json` it is recorded as the map runc's `cgroup_paths` is
/// (hierarchy → directory, `""` for the unified hierarchy of a v2 host), so
/// records written by earlier versions still load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "BTreeMap<String, PathBuf>", into = "BTreeMap<String, PathBuf>")]
pub enum Cgroup {
    /// cgroup v1, hybrid hosts included: one directory per mounted
    /// hierarchy, keyed by its controllers joined with `,` (`cpu,cpuacct`,
    /// `name=systemd`); a hybrid host's cgroup2 hierarchy under [`UNIFIED`].
    /// Empty when the container has no cgroup (yet).
    V1(BTreeMap<String, PathBuf>),
    /// cgroup v2: the one directory in the unified hierarchy.
    V2(PathBuf),
}

impl Default for Cgroup {
    fn default() -> Self {
        Cgroup::V1(BTreeMap::new())
    }
}

impl From<BTreeMap<String, PathBuf>> for Cgroup {
    fn from(mut m: BTreeMap<String, PathBuf>) -> Self {
        match m.remove("") {
            Some(dir) => Cgroup::V2(dir),
            None => Cgroup::V1(m),
        }
    }
}

impl From<Cgroup> for BTreeMap<String, PathBuf> {
    fn from(c: Cgroup) -> Self {
        match c {
            Cgroup::V1(m) => m,
            Cgroup::V2(dir) => BTreeMap::from([(String::new(), dir)]),
        }
    }
}

impl Cgroup {
    /// Its cgroup version.
    pub fn version(&self) -> super::Version {
        match self {
            Cgroup::V1(_) => super::Version::V1,
            Cgroup::V2(_) => super::Version::V2,
        }
    }

    /// The v2 directory.
    pub fn v2_dir(&self) -> Option<&PathBuf> {
        match self {
            Cgroup::V2(d) => Some(d),
            Cgroup::V1(_) => None,
        }
    }

    /// The cgroup2 directory a process can be cloned into
    /// (`CLONE_INTO_CGROUP`): the v2 directory, or a hybrid host's unified
    /// one.
    pub fn cgroup2_dir(&self) -> Option<&PathBuf> {
        match self {
            Cgroup::V2(d) => Some(d),
            Cgroup::V1(m) => m.get(UNIFIED),
        }
    }

    /// Every directory.
    pub fn dirs(&self) -> Box<dyn Iterator<Item = &PathBuf> + '_> {
        match self {
            Cgroup::V1(m) => Box::new(m.values()),
            Cgroup::V2(d) => Box::new(std::iter::once(d)),
        }
    }

    /// The v1 hierarchies (name, directory), the hybrid host's unified one
    /// left out; none on v2.
    pub fn v1_hierarchies(&self) -> impl Iterator<Item = (&str, &PathBuf)> {
        let m = match self {
            Cgroup::V1(m) => Some(m),
            Cgroup::V2(_) => None,
        };
        m.into_iter()
            .flatten()
            .filter(|(k, _)| *k != UNIFIED)
            .map(|(k, d)| (k.as_str(), d))
    }

    /// The directory holding `controller`'s files: the v2 directory, or the
    /// v1 hierarchy that has the controller.
    pub fn dir_for(&self, controller: &str) -> Option<&PathBuf> {
        match self {
            Cgroup::V2(d) => Some(d),
            Cgroup::V1(m) => m
                .iter()
                .find(|(k, _)| k.split(',').any(|c| c == controller))
                .map(|(_, d)| d),
        }
    }

    /// The directory whose `cgroup.procs` lists the container's processes:
    /// the pids hierarchy on v1 (else any), the directory on v2.
    pub fn procs_dir(&self) -> Option<&PathBuf> {
        match self {
            Cgroup::V2(d) => Some(d),
            Cgroup::V1(m) => m.get("pids").or_else(|| m.values().next()),
        }
    }

    /// Applies `f` to every directory, keeping the layout.
    pub fn map_dirs(&self, mut f: impl FnMut(&str, &PathBuf) -> PathBuf) -> Cgroup {
        match self {
            Cgroup::V1(m) => Cgroup::V1(m.iter().map(|(k, d)| (k.clone(), f(k, d))).collect()),
            Cgroup::V2(d) => Cgroup::V2(f("", d)),
        }
    }

    /// Whether every directory is gone.
    pub fn is_gone(&self) -> bool {
        !self.dirs().any(|d| Path::new(d).exists())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_as_runc_s_map_and_back() {
        let v2 = Cgroup::V2("/sys/fs/cgroup/c".into());
        let text = serde_json::to_string(&v2).unwrap();
        assert_eq!(text, r#"{"":"/sys/fs/cgroup/c"}"#);
        assert_eq!(serde_json::from_str::<Cgroup>(&text).unwrap(), v2);
        let v1 = Cgroup::V1(BTreeMap::from([
            ("pids".to_string(), PathBuf::from("/p")),
            (UNIFIED.to_string(), PathBuf::from("/u")),
        ]));
        let back: Cgroup = serde_json::from_str(&serde_json::to_string(&v1).unwrap()).unwrap();
        assert_eq!(back, v1);
        assert_eq!(back.cgroup2_dir(), Some(&PathBuf::from("/u")));
        assert_eq!(back.v1_hierarchies().count(), 1);
        assert_eq!(back.procs_dir(), Some(&PathBuf::from("/p")));
        assert_eq!(
            serde_json::from_str::<Cgroup>("{}").unwrap(),
            Cgroup::default()
        );
    }

    #[test]
    fn finds_a_controller_s_directory() {
        let paths = Cgroup::V1(BTreeMap::from([
            ("cpu,cpuacct".to_string(), PathBuf::from("/c")),
            ("memory".to_string(), PathBuf::from("/m")),
        ]));
        assert_eq!(paths.dir_for("cpu"), Some(&PathBuf::from("/c")));
        assert_eq!(paths.dir_for("cpuacct"), Some(&PathBuf::from("/c")));
        assert_eq!(paths.dir_for("pids"), None);
        assert_eq!(
            Cgroup::V2("/u".into()).dir_for("pids"),
            Some(&PathBuf::from("/u"))
        );
    }
}
